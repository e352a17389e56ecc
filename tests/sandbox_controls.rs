//! The sandbox's own controls, from a real MCP client (rmcp) against the real binary: the
//! simulated clock an agent can advance (with progress), backend outages it can switch (timed
//! ones end at their simulated minute), and none of it in `serve` mode.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::harness::{Env, call};
use common::{host_binary, plugin_dir_with, shared_cache_dir, text_of};
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, NumberOrString, ProgressNotificationParam,
    ProgressToken, RequestMetaObject,
};
use rmcp::service::NotificationContext;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::json;

#[derive(Clone, Default)]
struct Progress {
    received: Arc<AtomicU64>,
}

impl ClientHandler for Progress {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(ClientCapabilities::default(), Implementation::new("sandbox-controls-test", "1.0"))
    }

    async fn on_progress(&self, _params: ProgressNotificationParam, _context: NotificationContext<RoleClient>) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test]
async fn an_agent_advances_the_clock_and_times_an_outage_in_the_sandbox() {
    let plugins = plugin_dir_with(&[]);
    let config = tempfile::NamedTempFile::new().unwrap();
    let progress = Progress::default();
    let command = tokio::process::Command::new(host_binary()).configure(|cmd| {
        cmd.arg("sandbox")
            .env("AIGW_PLUGINS_DIR", plugins.path())
            .env("AIGW_CONFIG", config.path())
            .env("AIGW_CACHE_DIR", shared_cache_dir())
            .env("AIGW_LOG", "warn");
    });
    let client = progress.clone().serve(TokioChildProcess::new(command).unwrap()).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    for name in ["sandbox_clock", "sandbox_advance_clock", "sandbox_set_outage"] {
        let tool = tools.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{name} is listed"));
        assert!(tool.description.as_deref().unwrap().starts_with("SANDBOX ONLY"), "{name}");
        assert!(tool.input_schema.get("properties").unwrap().get("dry_run").is_none(), "{name} acts directly");
    }
    let start = call(&client, "sandbox_clock", json!({})).await.structured_content.unwrap();

    let down =
        call(&client, "sandbox_set_outage", json!({"backend_id": "aoai-eastus", "enabled": true, "minutes": 2})).await;
    assert_eq!(down.is_error, Some(false), "{}", text_of(&down));
    assert!(text_of(&down).contains("for 2 simulated minute"), "{}", text_of(&down));
    let clock = call(&client, "sandbox_clock", json!({})).await.structured_content.unwrap();
    assert_eq!(clock["timedOutages"][0]["backend"], "aoai-eastus");

    let mut request = CallToolRequestParams::new("sandbox_advance_clock")
        .with_arguments(json!({"minutes": 125}).as_object().unwrap().clone());
    request.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(NumberOrString::Number(1))));
    let advanced = client.call_tool(request).await.unwrap();
    assert_eq!(advanced.is_error, Some(false), "{advanced:?}");
    let done = advanced.structured_content.unwrap();
    assert_eq!(done["advancedMinutes"], 125);
    assert!(done["requestsSimulated"].as_u64().unwrap() > 0, "traffic was simulated: {done}");
    assert_eq!(done["outagesEnded"][0]["backend"], "aoai-eastus", "the outage ended at its minute: {done}");
    assert_eq!(done["simulatedMinutes"].as_i64().unwrap() - start["simulatedMinutes"].as_i64().unwrap(), 125, "{done}");
    assert!(progress.received.load(Ordering::Relaxed) >= 1, "progress while simulating");
    let clock = call(&client, "sandbox_clock", json!({})).await.structured_content.unwrap();
    assert_eq!(clock["timedOutages"], json!([]));

    let unknown = call(&client, "sandbox_set_outage", json!({"backend_id": "no-such-backend", "enabled": true})).await;
    assert_eq!(unknown.is_error, Some(true));
    assert!(text_of(&unknown).contains("no-such-backend"), "{}", text_of(&unknown));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn serve_mode_has_no_sandbox_controls() {
    let env = Env::with_plugins(&[]).await;
    let client = env.client((), &[]).await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(
        !tools.iter().any(|t| t.name.starts_with("sandbox_")),
        "{:?}",
        tools.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
    client.cancel().await.unwrap();
}
