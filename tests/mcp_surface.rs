//! The rest of the MCP surface from a real client (rmcp) against the real binary: the workflow
//! prompts, resources (changes and policy documents) and argument completion from the live
//! service and the journal.

mod common;

use common::harness::{Env, POLICY, call};
use common::text_of;
use rmcp::model::{GetPromptRequestParams, ReadResourceRequestParams, ResourceContents};
use serde_json::{Value, json};

const SKIP: &[(&str, &str)] = &[("AIGW_DANGEROUSLY_SKIP_CONFIRMATION", "1")];

#[tokio::test]
async fn the_workflows_are_prompts_with_their_arguments_filled_in() {
    let env = Env::with_plugins(&[]).await;
    let client = env.client((), SKIP).await;
    let prompts = client.list_all_prompts().await.unwrap();
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    for name in [
        "quota_change",
        "failover_drill",
        "semantic_cache_rollout",
        "weekly_governance_report",
        "investigate_5xx_spike",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let quota = prompts.iter().find(|p| p.name == "quota_change").unwrap();
    let args = quota.arguments.as_ref().unwrap();
    assert!(args.iter().any(|a| a.name == "subscription_id" && a.required == Some(true)));

    let params = GetPromptRequestParams::new("quota_change")
        .with_arguments(json!({"subscription_id": "growth", "tpm": "100000"}).as_object().unwrap().clone());
    let prompt = client.get_prompt(params).await.unwrap();
    let text = prompt.messages[0].content.as_text().unwrap().text.clone();
    assert!(text.contains("subscription growth") && text.contains("TPM 100000"), "{text}");
    let order =
        ["list_subscriptions", "what_if_quota", "dry_run: true", "rollback_change"].map(|t| text.find(t).unwrap());
    assert!(order.windows(2).all(|w| w[0] < w[1]), "look, simulate, dry-run, undo — in that order: {text}");

    let missing = client.get_prompt(GetPromptRequestParams::new("quota_change")).await.unwrap_err();
    assert!(missing.to_string().contains("subscription_id"), "{missing}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn changes_and_policies_are_resources_a_client_can_open() {
    let env = Env::with_plugins(&[]).await;
    let client = env.client((), SKIP).await;
    let templates = client.list_all_resource_templates().await.unwrap();
    assert!(templates.iter().any(|t| t.uri_template == "aigw://changes/{change_id}"));
    assert!(templates.iter().any(|t| t.uri_template == "aigw://policies/apis/{api_id}"));

    let changed = call(&client, "update_quota", json!({"subscription_id": "growth", "tpm": 100000})).await;
    assert_eq!(changed.is_error, Some(false), "{}", text_of(&changed));
    let id = changed.structured_content.unwrap()["changeId"].as_str().unwrap().to_string();
    let listed = client.list_all_resources().await.unwrap();
    let uris: Vec<&str> = listed.iter().map(|r| r.uri.as_str()).collect();
    let change_uri = format!("aigw://changes/{id}");
    assert!(uris.contains(&change_uri.as_str()), "{uris:?}");
    assert!(uris.contains(&"aigw://policies/apis/inference-api"), "{uris:?}");

    let read = client.read_resource(ReadResourceRequestParams::new(change_uri.clone())).await.unwrap();
    let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else { panic!("text") };
    let change: Value = serde_json::from_str(text).unwrap();
    assert_eq!(change["status"], "applied");
    assert!(change["planned"]["diff"].as_str().unwrap().contains("tokens-per-minute=\"100000\""), "{change}");

    let read =
        client.read_resource(ReadResourceRequestParams::new("aigw://policies/apis/inference-api")).await.unwrap();
    let ResourceContents::TextResourceContents { text, mime_type, .. } = &read.contents[0] else { panic!("text") };
    assert_eq!(mime_type.as_deref(), Some("application/xml"));
    assert_eq!(*text, env.policy_xml().await, "the document as stored");
    assert!(env.get(POLICY).await.0.is_some());

    let missing = client.read_resource(ReadResourceRequestParams::new("aigw://changes/chg-nope")).await.unwrap_err();
    assert!(missing.to_string().contains("chg-nope"), "{missing}");
    let escape = client.read_resource(ReadResourceRequestParams::new("aigw://policies/apis/..")).await;
    assert!(escape.is_err());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn arguments_complete_from_the_live_service_and_the_journal() {
    let env = Env::with_plugins(&[]).await;
    let client = env.client((), SKIP).await;
    let subs = client.complete_prompt_simple("quota_change", "subscription_id", "gr").await.unwrap();
    assert_eq!(subs, ["growth"]);
    let apis = client.complete_prompt_simple("failover_drill", "api_id", "INF").await.unwrap();
    assert_eq!(apis, ["inference-api"]);
    let backends = client.complete_prompt_simple("failover_drill", "primary_backend", "east").await.unwrap();
    assert!(backends.contains(&"aoai-eastus".to_string()), "{backends:?}");
    let formats = client.complete_prompt_simple("weekly_governance_report", "format", "").await.unwrap();
    assert_eq!(formats, ["markdown", "csv", "html"]);

    let changed = call(&client, "update_quota", json!({"subscription_id": "search", "tpm": 120000})).await;
    let id = changed.structured_content.unwrap()["changeId"].as_str().unwrap().to_string();
    let ids = client.complete_resource_simple("aigw://changes/{change_id}", "change_id", "chg-").await.unwrap();
    assert_eq!(ids, [id]);
    client.cancel().await.unwrap();
}

/// A client that keeps the log notifications it receives.
#[allow(deprecated)] // MCP logging, see below
#[derive(Clone, Default)]
struct LogKeeper {
    lines: std::sync::Arc<std::sync::Mutex<Vec<rmcp::model::LoggingMessageNotificationParam>>>,
}

#[allow(deprecated)]
impl rmcp::ClientHandler for LogKeeper {
    async fn on_logging_message(
        &self,
        params: rmcp::model::LoggingMessageNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.lines.lock().unwrap().push(params);
    }
}

#[tokio::test]
#[allow(deprecated)] // MCP logging (SEP-2577 deprecates it for 2026-07-28; 2025-11-25 clients use it)
async fn log_lines_of_a_call_reach_the_client_at_the_level_it_set() {
    use rmcp::model::{LoggingLevel, SetLevelRequestParams};
    let env = Env::with_plugins(&["hostile"]).await;
    let keeper = LogKeeper::default();
    let client = env.client(keeper.clone(), SKIP).await;

    // Nothing is sent before the client asks.
    call(&client, "log_flood", json!({"count": 3})).await;
    assert!(keeper.lines.lock().unwrap().is_empty());

    client.set_level(SetLevelRequestParams::new(LoggingLevel::Info)).await.unwrap();
    let done = call(&client, "log_flood", json!({"count": 3})).await;
    assert_eq!(done.is_error, Some(false), "{}", text_of(&done));
    {
        let lines = keeper.lines.lock().unwrap();
        let plugin: Vec<_> = lines.iter().filter(|l| l.logger.as_deref() == Some("hostile")).collect();
        assert_eq!(plugin.len(), 3, "{lines:?}");
        assert!(plugin.iter().all(|l| l.level == LoggingLevel::Info && l.data.as_str().unwrap().starts_with("flood")));
    }
    // A forged line stays one escaped line.
    call(&client, "forge_log", json!({})).await;
    let forged = keeper.lines.lock().unwrap().last().unwrap().data.as_str().unwrap().to_string();
    assert!(!forged.contains('\n') && !forged.contains('\u{1b}'), "{forged:?}");

    // Host lines about the call: a write applied without confirmation is a warning.
    call(&client, "update_quota", json!({"subscription_id": "growth", "tpm": 150000})).await;
    assert!(
        keeper
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.logger.as_deref() == Some("host") && l.level == LoggingLevel::Warning),
        "{:?}",
        keeper.lines.lock().unwrap()
    );

    // Above the level, nothing more.
    client.set_level(SetLevelRequestParams::new(LoggingLevel::Error)).await.unwrap();
    let before = keeper.lines.lock().unwrap().len();
    call(&client, "log_flood", json!({"count": 3})).await;
    assert_eq!(keeper.lines.lock().unwrap().len(), before);
    client.cancel().await.unwrap();
}

/// A client that keeps the URIs of the resource updates it is sent.
#[derive(Clone, Default)]
struct UpdateKeeper {
    uris: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl rmcp::ClientHandler for UpdateKeeper {
    async fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.uris.lock().unwrap().push(params.uri);
    }
}

#[tokio::test]
#[allow(deprecated)] // resources/subscribe is the 2025-11-25 mechanism
async fn a_subscribed_policy_document_announces_the_changes_this_server_applies() {
    use rmcp::model::{SubscribeRequestParams, UnsubscribeRequestParams};
    let env = Env::with_plugins(&[]).await;
    let keeper = UpdateKeeper::default();
    let client = env.client(keeper.clone(), SKIP).await;
    let uri = "aigw://policies/apis/inference-api";
    client.subscribe(SubscribeRequestParams::new(uri)).await.unwrap();
    assert!(client.subscribe(SubscribeRequestParams::new("test://watched-resource")).await.is_err(), "not ours");

    // A named-value change does not touch the document; a TPM cut in it does.
    call(&client, "update_quota", json!({"subscription_id": "data-science", "tpm": 60000})).await;
    call(&client, "update_quota", json!({"subscription_id": "growth", "tpm": 100000})).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while keeper.uris.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(*keeper.uris.lock().unwrap(), [uri]);

    client.unsubscribe(UnsubscribeRequestParams::new(uri)).await.unwrap();
    call(&client, "update_quota", json!({"subscription_id": "growth", "tpm": 90000})).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(keeper.uris.lock().unwrap().len(), 1, "no update after unsubscribing");
    client.cancel().await.unwrap();
}
