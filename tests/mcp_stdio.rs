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

/// How the test wires the server's stdin and stdout.
#[derive(Clone, Copy)]
enum Wiring {
    /// Anonymous pipes, as Rust, Python and Go clients spawn servers.
    Pipes,
    /// One Unix socketpair per stream, as Node's `child_process` does (Claude Desktop, VS Code,
    /// Cursor, Claude Code).
    Socketpairs,
}

/// A JSON-RPC session over the binary's stdio, written by hand.
struct Raw {
    child: std::process::Child,
    stdin: Option<Box<dyn Write>>,
    stdout: BufReader<Box<dyn std::io::Read>>,
    _plugins: tempfile::TempDir,
    _config: tempfile::NamedTempFile,
}

impl Raw {
    fn start() -> Self {
        Self::start_with(Wiring::Pipes)
    }

    fn start_with(wiring: Wiring) -> Self {
        let plugins = plugin_dir_with(&[]);
        let config = config_file("");
        let mut command = Command::new(host_binary());
        command
            .arg("sandbox")
            .env("AIGW_PLUGINS_DIR", plugins.path())
            .env("AIGW_CONFIG", config.path())
            .env("AIGW_CACHE_DIR", shared_cache_dir())
            .env("AIGW_LOG", "warn")
            .stderr(Stdio::inherit());
        let (child, stdin, stdout): (_, Box<dyn Write>, Box<dyn std::io::Read>) = match wiring {
            Wiring::Pipes => {
                let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
                let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
                (child, Box::new(stdin), Box::new(stdout))
            }
            Wiring::Socketpairs => {
                use std::os::unix::net::UnixStream;
                let (ours_in, theirs_in) = UnixStream::pair().unwrap();
                let (ours_out, theirs_out) = UnixStream::pair().unwrap();
                let child = command
                    .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs_in)))
                    .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs_out)))
                    .spawn()
                    .unwrap();
                (child, Box::new(ours_in), Box::new(ours_out))
            }
        };
        Self { child, stdin: Some(stdin), stdout: BufReader::new(stdout), _plugins: plugins, _config: config }
    }

    fn send(&mut self, message: Value) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next line; it must be a JSON-RPC message.
    fn next_message(&mut self) -> Value {
        let mut line = String::new();
        assert!(self.stdout.read_line(&mut line).unwrap() > 0, "the server closed stdout");
        let message: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("non-JSON on stdout: {line:?}: {e}"));
        assert_eq!(message["jsonrpc"], "2.0", "{message}");
        message
    }

    /// Reads messages until the response with `id`.
    fn response(&mut self, id: u64) -> Value {
        loop {
            let message = self.next_message();
            if message["id"] == id {
                return message;
            }
        }
    }

    /// Closes stdin and expects exit status 0 within 5 s.
    fn close_and_expect_clean_exit(&mut self) {
        let closed = Instant::now();
        drop(self.stdin.take());
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit status {status}");
                return;
            }
            assert!(closed.elapsed() < Duration::from_secs(5), "still running 5 s after stdin closed");
            std::thread::sleep(Duration::from_millis(20));
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
    raw.close_and_expect_clean_exit();
}

#[test]
fn a_node_style_client_on_socketpairs_gets_every_answer_of_concurrent_calls_and_a_clean_exit() {
    let mut raw = Raw::start_with(Wiring::Socketpairs);
    raw.send(json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"node-like","version":"1"}}}));
    assert_eq!(raw.response(1)["result"]["protocolVersion"], "2025-11-25");
    raw.send(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    // 32 calls written back to back, then 32 answers read in whatever order they come.
    for id in 100..132 {
        raw.send(
            json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"get_service_info","arguments":{}}}),
        );
    }
    let mut answered = std::collections::BTreeSet::new();
    while answered.len() < 32 {
        let message = raw.next_message();
        assert_eq!(message["result"]["structuredContent"]["name"], "apim-sandbox", "{message}");
        assert!(answered.insert(message["id"].as_u64().unwrap()), "answered twice: {message}");
    }
    raw.close_and_expect_clean_exit();
}

#[tokio::test]
async fn a_sandbox_leaves_nothing_behind_in_the_temporary_directory() {
    let plugins = plugin_dir_with(&[]);
    let config = config_file("");
    let tmp = tempfile::tempdir().unwrap();
    let transport = TokioChildProcess::new(tokio::process::Command::new(host_binary()).configure(|cmd| {
        cmd.arg("sandbox").env("TMPDIR", tmp.path());
        isolated(cmd, plugins.path(), config.path());
    }))
    .unwrap();
    let client = ().serve(transport).await.unwrap();
    assert!(!client.list_all_tools().await.unwrap().is_empty());
    client.cancel().await.unwrap();
    // The server exits on EOF; give it a moment to clean up.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left behind: {left:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
