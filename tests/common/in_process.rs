//! The runtime and MCP surface in process against the sandbox emulator (ARM and Log
//! Analytics), with a change journal: the harness of the isolation and bounds tests.
#![allow(dead_code)]

use std::sync::Arc;

use aigw_host::arm::{ArmClient, LogsClient};
use aigw_host::changes::ChangePipeline;
use aigw_host::changes::journal::Journal;
use aigw_host::mcp::{CallSession, GatewayServer, ServerOptions};
use aigw_host::runtime::{Runtime, RuntimeOptions};
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::{plugin_dir_with, shared_cache_dir};

/// A server in process, its runtime, and what they need kept alive.
pub struct InProcess {
    pub server: GatewayServer,
    pub runtime: Arc<Runtime>,
    _dir: tempfile::TempDir,
    _sandbox: aigw_host::sandbox::Sandbox,
}

/// Which parts of a real server the test wants.
#[derive(Clone, Copy)]
pub struct Setup {
    /// Load the built-in plugins too.
    pub builtins: bool,
    pub read_only: bool,
}

impl InProcess {
    /// A server with the test components `stems` in its plugin directory and `config` as its
    /// config file.
    pub async fn start(stems: &[&str], config: &str, setup: Setup) -> Self {
        let sandbox = aigw_host::sandbox::start(0, "2024-05-01").await.unwrap();
        let arm = ArmClient::new(sandbox.target.clone(), sandbox.credential.clone()).unwrap();
        let logs = LogsClient::new(
            &sandbox.emulator.base_url,
            aigw_host::sandbox::SANDBOX_WORKSPACE_ID,
            sandbox.credential.clone(),
        )
        .unwrap();
        let dir = plugin_dir_with(stems);
        let runtime = Arc::new(
            Runtime::load(RuntimeOptions {
                plugins_dir: Some(dir.path().to_path_buf()),
                cache_dir: Some(shared_cache_dir()),
                config: toml::from_str(config).unwrap(),
                arm: Some(arm.clone()),
                logs: Some(logs),
                builtins: setup.builtins,
                extra_files: vec![],
            })
            .await
            .unwrap(),
        );
        let journal = Journal::open(&dir.path().join("journal.jsonl")).unwrap();
        let options = ServerOptions {
            instructions: "test".into(),
            read_only: setup.read_only,
            skip_confirmation: false,
            sandbox: None,
        };
        let server = GatewayServer::new(runtime.clone(), Some(Arc::new(ChangePipeline::new(arm, journal))), options);
        Self { server, runtime, _dir: dir, _sandbox: sandbox }
    }

    /// One tool call, as an unattended caller (nobody can confirm).
    pub async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        match self.server.run_tool(tool, args, &CallSession::unattended()).await.expect("the call is routed") {
            rmcp::model::CallToolResponse::Complete(result) => result,
            other => panic!("expected a complete result, got {other:?}"),
        }
    }
}

/// The `kind` of a tool error result.
pub fn error_kind(result: &CallToolResult) -> String {
    assert_eq!(result.is_error, Some(true), "expected a tool error, got {result:?}");
    result.structured_content.as_ref().unwrap()["error"]["kind"].as_str().unwrap().to_string()
}
