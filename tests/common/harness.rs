//! A controlled emulator, the real binary in `serve` mode against it, and an rmcp client that
//! answers elicitations: the harness of the end-to-end tests of writes.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use aigw_emulator::{Emulator, Options, RunningEmulator};
use futures::future::BoxFuture;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult,
    ElicitationAction, ElicitationCapability, Implementation,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use serde_json::{Value, json};

use super::{host_binary, plugin_dir_with, shared_cache_dir};

pub const TOKEN: &str = "safe-changes-test-token-7d1f";
pub const POLICY: &str = "apis/inference-api/policies/policy";

/// An emulator, a plugin directory with the test components, and a journal.
pub struct Env {
    pub emulator: RunningEmulator,
    pub http: reqwest::Client,
    pub plugins: tempfile::TempDir,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub async fn start() -> Self {
        Self::with_plugins(&["testkit"]).await
    }

    /// An environment whose plugin directory holds these test components.
    pub async fn with_plugins(stems: &[&str]) -> Self {
        let emulator = Emulator::new(Options::new(TOKEN)).unwrap().serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        Self {
            emulator,
            http: reqwest::Client::new(),
            plugins: plugin_dir_with(stems),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes the operator's config file the server starts with.
    pub fn set_config(&self, toml: &str) {
        std::fs::write(self.dir.path().join("config.toml"), toml).unwrap();
    }

    /// `plugins list` for this environment's plugin directory and config: (stdout, stderr).
    pub fn plugins_list(&self) -> (String, String) {
        let mut command = self.command(&[]);
        let command = command.as_std_mut();
        let args: Vec<String> = vec!["plugins".into(), "list".into()];
        let output = std::process::Command::new(command.get_program())
            .args(&args)
            .envs(command.get_envs().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))))
            .output()
            .unwrap();
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
    }

    /// PUT straight to the emulator, as another writer would (no precondition).
    pub async fn put(&self, path: &str, body: Value) {
        let response = self
            .http
            .put(format!("{}?api-version=2024-05-01", self.url(path)))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    }

    pub fn journal(&self) -> PathBuf {
        self.dir.path().join("journal.jsonl")
    }

    pub fn stderr_log(&self) -> PathBuf {
        self.dir.path().join("stderr.log")
    }

    pub fn command(&self, extra_env: &[(&str, &str)]) -> tokio::process::Command {
        let config = self.dir.path().join("config.toml");
        if !config.exists() {
            std::fs::write(&config, "").unwrap();
        }
        tokio::process::Command::new(host_binary()).configure(|cmd| {
            cmd.args([
                "serve",
                "--service-id",
                &aigw_emulator::sandbox_service_id(),
                "--arm-endpoint",
                &self.emulator.base_url,
            ])
            .env("AIGW_ARM_BEARER_TOKEN", TOKEN)
            .env("AIGW_PLUGINS_DIR", self.plugins.path())
            .env("AIGW_CONFIG", &config)
            .env("AIGW_CACHE_DIR", shared_cache_dir())
            .env("AIGW_JOURNAL", self.journal())
            .env("AIGW_LOG", "debug")
            .env("AIGW_ARM_MAX_RETRIES", "3")
            .env_remove("AIGW_DANGEROUSLY_SKIP_CONFIRMATION")
            .env_remove("AIGW_READ_ONLY");
            for (k, v) in extra_env {
                cmd.env(k, v);
            }
        })
    }

    pub async fn client<H: ClientHandler>(
        &self,
        handler: H,
        extra_env: &[(&str, &str)],
    ) -> RunningService<RoleClient, H> {
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(self.stderr_log()).unwrap();
        let (transport, _) =
            TokioChildProcess::builder(self.command(extra_env)).stderr(Stdio::from(stderr)).spawn().unwrap();
        handler.serve(transport).await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}/{path}", self.emulator.base_url, aigw_emulator::sandbox_service_id())
    }

    /// GET straight from the emulator: (ETag, body).
    pub async fn get(&self, path: &str) -> (Option<String>, Value) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let response = self
            .http
            .get(format!("{}{sep}api-version=2024-05-01", self.url(path)))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let etag = response.headers().get("etag").map(|v| v.to_str().unwrap().to_string());
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status == 404 {
            return (None, Value::Null);
        }
        (etag, body)
    }

    pub async fn policy_xml(&self) -> String {
        self.get(&format!("{POLICY}?format=rawxml")).await.1["properties"]["value"].as_str().unwrap().to_string()
    }

    /// Another writer edits the policy directly, with If-Match, behind the server's back.
    pub async fn other_writer_annotates(&self, note: &str) {
        let (etag, body) = self.get(&format!("{POLICY}?format=rawxml")).await;
        let xml = body["properties"]["value"].as_str().unwrap().replacen(
            "<inbound>",
            &format!("<inbound><!-- {note} -->"),
            1,
        );
        let response = self
            .http
            .put(format!("{}?api-version=2024-05-01", self.url(POLICY)))
            .bearer_auth(TOKEN)
            .header("if-match", etag.unwrap())
            .json(&json!({"properties": {"format": "rawxml", "value": xml}}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    }

    pub async fn fault(&self, rule: Value) {
        let response =
            self.http.post(format!("{}/_emulator/faults", self.emulator.base_url)).json(&rule).send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    }

    pub fn journal_records(&self) -> Vec<Value> {
        std::fs::read_to_string(self.journal())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("every journal line is JSON"))
            .collect()
    }
}

/// A client that answers every elicitation the same way, after an optional hook.
#[derive(Clone)]
pub struct Confirmer {
    pub action: ElicitationAction,
    pub asked: Arc<Mutex<Vec<String>>>,
    pub hook: Option<Arc<dyn Fn(usize) -> BoxFuture<'static, ()> + Send + Sync>>,
}

impl Confirmer {
    pub fn new(action: ElicitationAction) -> Self {
        Self { action, asked: Arc::default(), hook: None }
    }

    /// Accepts every plan, but while the first one is being shown, another writer annotates
    /// the API policy with `note`: the plan the user accepted is stale by the time it applies.
    pub fn accepting_after_another_writer(env: Arc<Env>, note: &'static str) -> Self {
        let mut confirmer = Self::new(ElicitationAction::Accept);
        confirmer.hook = Some(Arc::new(move |round| {
            let env = env.clone();
            Box::pin(async move {
                if round == 1 {
                    env.other_writer_annotates(note).await;
                }
            })
        }));
        confirmer
    }

    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl ClientHandler for Confirmer {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        capabilities.elicitation = Some(ElicitationCapability::new());
        ClientConfig::new(capabilities, Implementation::new("safe-changes-test", "1.0"))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let ElicitRequestParams::FormElicitationParams { message, .. } = request else {
            panic!("expected a form elicitation");
        };
        let round = {
            let mut asked = self.asked.lock().unwrap();
            asked.push(message);
            asked.len()
        };
        if let Some(hook) = &self.hook {
            hook(round).await;
        }
        let mut result = ElicitResult::new(self.action.clone());
        if self.action == ElicitationAction::Accept {
            result.content = Some(json!({"apply": true}));
        }
        Ok(result)
    }
}

pub async fn call<H: ClientHandler>(client: &RunningService<RoleClient, H>, tool: &str, args: Value) -> CallToolResult {
    let request = CallToolRequestParams::new(tool.to_string()).with_arguments(args.as_object().unwrap().clone());
    client.call_tool(request).await.unwrap()
}
