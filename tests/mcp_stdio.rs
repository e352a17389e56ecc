//! The real binary over stdio: an rmcp client and raw JSON-RPC, against the sandbox.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{host_binary, plugin_dir_with, shared_cache_dir, text_of};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use serde_json::{Value, json};

/// Environment that isolates a spawned server from the user's own config, plugins and cache.
fn isolated(cmd: &mut tokio::process::Command, plugins: &std::path::Path, config: &std::path::Path) {
    cmd.env("AIGW_PLUGINS_DIR", plugins)
        .env("AIGW_CONFIG", config)
        .env("AIGW_CACHE_DIR", shared_cache_dir())
        .env("AIGW_LOG", "warn")
        .stderr(Stdio::inherit());
}

fn config_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

#[tokio::test]
async fn an_rmcp_client_sees_the_example_tool_and_calls_it_in_the_sandbox() {
    let plugins = plugin_dir_with(&[]);
    let config = config_file("");
    let transport = TokioChildProcess::new(tokio::process::Command::new(host_binary()).configure(|cmd| {
        cmd.arg("sandbox");
        isolated(cmd, plugins.path(), config.path());
    }))
    .unwrap();
    let client = ().serve(transport).await.unwrap();
    let info = client.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "azure-ai-gateway-mcp");
    assert!(info.instructions.as_deref().unwrap().contains("LOCAL SANDBOX"), "{:?}", info.instructions);

    let tools = client.list_all_tools().await.unwrap();
    let tool = tools.iter().find(|t| t.name == "get_service_info").expect("the example tool is listed");
    assert_eq!(tool.annotations.as_ref().unwrap().read_only_hint, Some(true));
    assert!(tool.output_schema.is_some());

    let result = client.call_tool(CallToolRequestParams::new("get_service_info")).await.unwrap();
    assert_eq!(result.is_error, Some(false));
    let structured = result.structured_content.unwrap();
    assert_eq!(structured["name"], "apim-sandbox");
    assert_eq!(structured["location"], "East US");
    assert!(text_of(&rmcp::model::CallToolResult::success(result.content)).contains("apim-sandbox"));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_dropped_in_plugin_is_callable_and_its_stdout_never_reaches_the_protocol() {
    let plugins = plugin_dir_with(&["testkit", "hostile"]);
    let config = config_file("[plugins.hostile]\ndeadline_ms = 1000\n");
    let transport = TokioChildProcess::new(tokio::process::Command::new(host_binary()).configure(|cmd| {
        cmd.arg("sandbox");
        isolated(cmd, plugins.path(), config.path());
    }))
    .unwrap();
    let client = ().serve(transport).await.unwrap();
    let names: Vec<String> = client.list_all_tools().await.unwrap().into_iter().map(|t| t.name.to_string()).collect();
    assert!(names.contains(&"echo".to_string()) && names.contains(&"spin".to_string()), "{names:?}");

    // The plugin prints a JSON-RPC-looking line to stdout; the client must not see it.
    let printed = client.call_tool(CallToolRequestParams::new("print_stdout")).await.unwrap();
    assert_eq!(printed.is_error, Some(false));
    let spun = client.call_tool(CallToolRequestParams::new("spin")).await.unwrap();
    assert_eq!(spun.is_error, Some(true));
    let args = json!({"text": "after the storm"}).as_object().unwrap().clone();
    let echoed = client.call_tool(CallToolRequestParams::new("echo").with_arguments(args)).await.unwrap();
    assert_eq!(echoed.structured_content.unwrap()["text"], "after the storm");
    client.cancel().await.unwrap();
}

/// A JSON-RPC session over the binary's stdio, written by hand.
struct Raw {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: BufReader<std::process::ChildStdout>,
    _plugins: tempfile::TempDir,
    _config: tempfile::NamedTempFile,
}

impl Raw {
    fn start() -> Self {
        let plugins = plugin_dir_with(&[]);
        let config = config_file("");
        let mut child = Command::new(host_binary())
            .arg("sandbox")
            .env("AIGW_PLUGINS_DIR", plugins.path())
            .env("AIGW_CONFIG", config.path())
            .env("AIGW_CACHE_DIR", shared_cache_dir())
            .env("AIGW_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self { child, stdin, stdout, _plugins: plugins, _config: config }
    }

    fn send(&mut self, message: Value) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    }

    /// Reads lines until the response with `id`; every line must be JSON-RPC.
    fn response(&mut self, id: u64) -> Value {
        loop {
            let mut line = String::new();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "the server closed stdout");
            let message: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("non-JSON on stdout: {line:?}: {e}"));
            assert_eq!(message["jsonrpc"], "2.0", "{message}");
            if message["id"] == id {
                return message;
            }
        }
    }
}

#[test]
fn the_2025_11_25_revision_is_negotiated_with_an_initialize_handshake() {
    let mut raw = Raw::start();
    raw.send(json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}));
    let init = raw.response(1);
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25", "{init}");
    raw.send(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    raw.send(json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_service_info","arguments":{}}}));
    let call = raw.response(2);
    assert_eq!(call["result"]["structuredContent"]["name"], "apim-sandbox", "{call}");
}

#[test]
fn the_2026_07_28_revision_is_served_statelessly_without_a_handshake() {
    let mut raw = Raw::start();
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    raw.send(json!({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta": meta}}));
    let discover = raw.response(1);
    let versions = discover["result"]["supportedVersions"].as_array().unwrap_or_else(|| panic!("{discover}"));
    assert!(versions.contains(&json!("2026-07-28")) && versions.contains(&json!("2025-11-25")), "{discover}");
    raw.send(json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"_meta": meta, "name":"get_service_info","arguments":{}}}));
    let call = raw.response(2);
    assert_eq!(call["result"]["structuredContent"]["name"], "apim-sandbox", "{call}");
    assert_eq!(call["result"]["resultType"], "complete", "{call}");
}

#[test]
fn the_server_exits_promptly_and_cleanly_when_the_client_closes_stdin() {
    let mut raw = Raw::start();
    raw.send(json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}));
    raw.response(1);
    let closed = Instant::now();
    drop(raw.stdin.take());
    loop {
        if let Some(status) = raw.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(closed.elapsed() < Duration::from_secs(5), "still running 5 s after stdin closed");
        std::thread::sleep(Duration::from_millis(20));
    }
}
