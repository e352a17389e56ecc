//! Everything a plugin can make the host do is bounded (DESIGN.md rule 8), each proved by a
//! hostile component doing it: progress and log floods, forged log lines, a looping plugin next
//! to a quick one, stack overflows, huge paths and path lists, queries of other workspaces, too
//! many tools, and a tampered compile cache.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::harness::{Env, call};
use common::in_process::{InProcess, Setup, error_kind};
use common::{host_binary, plugin_dir_with, shared_cache_dir, text_of};
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, NumberOrString, ProgressNotificationParam,
    ProgressToken, RequestMetaObject,
};
use rmcp::service::NotificationContext;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::json;

const CONFIG: &str = "[plugins.hostile]\ndeadline_ms = 3000\nmemory_mib = 32\n";

async fn in_process(stems: &[&str], config: &str) -> InProcess {
    InProcess::start(stems, config, Setup { builtins: false, read_only: true }).await
}

/// A field of /proc/PID/status in KiB (VmRSS, VmHWM).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// An MCP client that counts the progress notifications it receives.
#[derive(Clone, Default)]
struct ProgressCounter {
    received: Arc<AtomicU64>,
    last: Arc<std::sync::Mutex<Option<f64>>>,
}

impl ClientHandler for ProgressCounter {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(ClientCapabilities::default(), Implementation::new("bounds-test", "1.0"))
    }

    async fn on_progress(&self, params: ProgressNotificationParam, _context: NotificationContext<RoleClient>) {
        self.received.fetch_add(1, Ordering::Relaxed);
        *self.last.lock().unwrap() = Some(params.progress);
    }
}

/// The real binary in sandbox mode over stdio, with its stderr in a file.
async fn spawn_server<H: ClientHandler>(
    handler: H,
    plugins: &Path,
    config: &str,
    stderr: &Path,
) -> (rmcp::service::RunningService<RoleClient, H>, u32) {
    let config_path = stderr.with_extension("toml");
    std::fs::write(&config_path, config).unwrap();
    let stderr = std::fs::File::create(stderr).unwrap();
    let command = tokio::process::Command::new(host_binary()).configure(|cmd| {
        cmd.arg("sandbox")
            .env("AIGW_PLUGINS_DIR", plugins)
            .env("AIGW_CONFIG", &config_path)
            .env("AIGW_CACHE_DIR", shared_cache_dir())
            .env("AIGW_LOG", "info")
            .env_remove("AIGW_WORKER_THREADS");
    });
    let (transport, _) = TokioChildProcess::builder(command).stderr(std::process::Stdio::from(stderr)).spawn().unwrap();
    let pid = transport.id().expect("the server is running");
    (handler.serve(transport).await.unwrap(), pid)
}

#[tokio::test]
async fn a_progress_flood_reaches_the_client_as_a_few_notifications_and_the_server_stays_small() {
    let plugins = plugin_dir_with(&["hostile"]);
    let dir = tempfile::tempdir().unwrap();
    let counter = ProgressCounter::default();
    let (client, pid) = spawn_server(
        counter.clone(),
        plugins.path(),
        "[plugins.hostile]\ndeadline_ms = 60000\n",
        &dir.path().join("stderr.log"),
    )
    .await;
    let before_kib = status_kib(pid, "VmRSS");

    let mut request = CallToolRequestParams::new("progress_flood")
        .with_arguments(json!({"count": 300_000, "message_bytes": 100}).as_object().unwrap().clone());
    request.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(NumberOrString::Number(7))));
    let started = Instant::now();
    let result = client.call_tool(request).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(result.is_error, Some(false), "{result:?}");
    assert_eq!(text_of(&result), "reported 300000 times");

    let rss_kib = status_kib(pid, "VmRSS");
    let peak_kib = status_kib(pid, "VmHWM");
    let received = counter.received.load(Ordering::Relaxed);
    eprintln!(
        "300,000 reports in {elapsed:?}: {received} notifications; server RSS {before_kib} KiB before, {rss_kib} KiB after (peak {peak_kib} KiB)"
    );
    assert!(rss_kib < 100 << 10, "the server grew to {rss_kib} KiB");
    // At most one per 100 ms, plus the first and the last.
    let bound = 2 + elapsed.as_millis() as u64 / 100;
    assert!(received >= 1 && received <= bound, "{received} notifications in {elapsed:?} (bound {bound})");
    // The latest report arrives, and before the result.
    assert_eq!(*counter.last.lock().unwrap(), Some(299_999.0));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_log_flood_is_cut_at_the_line_cap_with_one_summary_line() {
    let env = Env::with_plugins(&["hostile"]).await;
    let client = env.client((), &[("AIGW_LOG", "info")]).await;
    let started = Instant::now();
    let result = call(&client, "log_flood", json!({"count": 1_000_000})).await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let elapsed = started.elapsed();
    // Another call afterwards: the budget is per call.
    let again = call(&client, "log_flood", json!({"count": 10})).await;
    assert_eq!(again.is_error, Some(false));
    client.cancel().await.unwrap();

    let stderr = std::fs::read_to_string(env.stderr_log()).unwrap();
    let flood_lines = stderr.lines().filter(|l| l.contains("flood flood")).count();
    eprintln!("1,000,000 log lines in {elapsed:?}: {} bytes of stderr, {flood_lines} flood lines", stderr.len());
    assert_eq!(flood_lines, 1000 + 20, "1000 lines of the first call, 10 + 10 of the second");
    assert!(stderr.len() < 1 << 20, "{} bytes of stderr", stderr.len());
    let summary: Vec<&str> = stderr.lines().filter(|l| l.contains("more log lines suppressed")).collect();
    assert_eq!(summary.len(), 1, "{summary:?}");
    assert!(
        summary[0].contains("1001000 more log lines suppressed (at most 1000 per call: max_log_lines)"),
        "{}",
        summary[0]
    );
}

#[tokio::test]
async fn a_plugin_cannot_forge_or_repaint_a_host_log_line() {
    let env = Env::with_plugins(&["hostile"]).await;
    let client = env.client((), &[]).await;
    let result = call(&client, "forge_log", json!({})).await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    client.cancel().await.unwrap();

    let stderr = std::fs::read_to_string(env.stderr_log()).unwrap();
    let forged = "2099-01-01T00:00:00.000000Z  INFO plan write applied";
    assert!(!stderr.split(['\n', '\r']).any(|l| l.starts_with(forged)), "a forged line starts a line:\n{stderr}");
    assert!(!stderr.contains('\x1b'), "an escape sequence reached stderr");
    assert!(stderr.contains(&format!("harmless\\n{forged}")), "{stderr}");
    assert!(stderr.contains(&format!("stderr line\\r{forged} path=apis/forged via-stderr\\u{{1b}}[0m")), "{stderr}");
}

#[tokio::test]
async fn a_looping_plugin_does_not_slow_another_plugins_calls() {
    let plugins = plugin_dir_with(&["hostile", "testkit"]);
    let dir = tempfile::tempdir().unwrap();
    // One async worker, as every stdio server runs; the loops hold 8 of hostile's slots.
    let config = "[plugins.hostile]\ndeadline_ms = 4000\nmax_concurrent_calls = 8\n";
    let (client, _) = spawn_server((), plugins.path(), config, &dir.path().join("stderr.log")).await;
    let echo = |text: String| {
        let peer = client.peer().clone();
        async move {
            let args = json!({"text": text}).as_object().unwrap().clone();
            let started = Instant::now();
            let result = peer.call_tool(CallToolRequestParams::new("echo").with_arguments(args)).await.unwrap();
            assert_eq!(result.is_error, Some(false), "{result:?}");
            started.elapsed()
        }
    };
    let quiet = echo("warm-up".into()).await;

    let spins: Vec<_> = (0..8)
        .map(|_| {
            let peer = client.peer().clone();
            tokio::spawn(async move { peer.call_tool(CallToolRequestParams::new("spin")).await.unwrap() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut latencies = Vec::new();
    for i in 0..20 {
        latencies.push(echo(format!("call {i}")).await);
    }
    let slowest = *latencies.iter().max().unwrap();
    eprintln!("echo alone {quiet:?}; next to 8 looping calls: slowest {slowest:?}, all {latencies:?}");
    assert!(slowest < Duration::from_millis(200), "an echo took {slowest:?} next to the loops");
    for spin in spins {
        let result = spin.await.unwrap();
        assert_eq!(error_kind(&result), "timeout", "{result:?}");
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn calls_beyond_a_plugins_concurrency_cap_wait_on_their_own_deadline() {
    let config = "[plugins.hostile]\ndeadline_ms = 1000\nmax_concurrent_calls = 2\n";
    let h = Arc::new(in_process(&["hostile", "testkit"], config).await);
    let started = Instant::now();
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move { h.call("spin", json!({})).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Another plugin is not queued behind them.
    let quick = Instant::now();
    assert_eq!(text_of(&h.call("echo", json!({"text": "not queued"})).await), "not queued");
    assert!(quick.elapsed() < Duration::from_millis(500), "{:?}", quick.elapsed());
    let mut messages = Vec::new();
    for call in calls {
        let result = call.await.unwrap();
        assert_eq!(error_kind(&result), "timeout");
        messages.push(text_of(&result));
    }
    // Two calls ran and two waited: had the wait not counted, the last two would have ended a
    // whole deadline later (2 s).
    let elapsed = started.elapsed();
    eprintln!("4 calls, 2 slots: all over in {elapsed:?}: {messages:?}");
    assert!(elapsed < Duration::from_millis(1600), "the queued calls waited past their deadline: {elapsed:?}");
}

#[tokio::test]
async fn a_stack_overflow_is_reported_as_one_whatever_stack_overflowed() {
    let h = in_process(&["hostile"], CONFIG).await;
    for tool in ["deep_stack", "deep_calls"] {
        let result = h.call(tool, json!({})).await;
        assert_eq!(error_kind(&result), "crashed", "{tool}");
        assert!(text_of(&result).contains("it overflowed its stack"), "{tool}: {}", text_of(&result));
    }
    // The plugin keeps working.
    assert_eq!(h.call("forge_log", json!({})).await.is_error, Some(false));
}

#[tokio::test]
async fn a_huge_arm_path_is_refused_at_once_naming_the_cap() {
    let h = in_process(&["hostile"], CONFIG).await;
    let started = Instant::now();
    let result = h.call("long_path", json!({"count": 1 << 20})).await;
    assert_eq!(error_kind(&result), "denied");
    let text = text_of(&result);
    assert!(text.contains("4096-byte cap"), "{text}");
    assert!(text.len() < 1000, "the refusal repeats the path: {} bytes", text.len());
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_huge_arm_path_leaves_the_servers_stderr_small() {
    let env = Env::with_plugins(&["hostile"]).await;
    // Debug logging, as an operator chasing a problem would run it: every ARM request is logged.
    let client = env.client((), &[]).await;
    let started = Instant::now();
    let result = call(&client, "long_path", json!({"count": 1 << 20})).await;
    let elapsed = started.elapsed();
    assert_eq!(error_kind(&result), "denied");
    assert!(text_of(&result).contains("4096-byte cap"), "{}", text_of(&result));
    client.cancel().await.unwrap();
    let stderr = std::fs::read_to_string(env.stderr_log()).unwrap();
    assert!(!stderr.contains(&"a".repeat(1000)), "the path was logged");
    assert!(!stderr.contains("retrying"), "the request was retried:\n{stderr}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

#[tokio::test]
async fn a_get_many_over_the_path_cap_is_refused_whole_and_a_small_one_served() {
    let h = in_process(&["hostile"], CONFIG).await;
    let refused = h.call("many_paths", json!({"count": 1001})).await;
    let s = refused.structured_content.unwrap();
    assert_eq!(s["served"], 0, "{s}");
    assert!(s["errors"][0].as_str().unwrap().contains("at most 1000 paths per call"), "{s}");
    let served = h.call("many_paths", json!({"count": 3})).await;
    assert_eq!(served.structured_content.unwrap()["served"], 3);
}

#[tokio::test]
async fn a_query_that_reaches_another_workspace_is_refused_before_it_is_sent() {
    // A real query runs on the emulator's KQL engine, slow in debug builds: a long deadline.
    let h = in_process(&["hostile"], "[plugins.hostile]\ndeadline_ms = 60000\n").await;
    let refused = h.call("query_other_workspace", json!({})).await;
    assert_eq!(error_kind(&refused), "denied");
    assert!(text_of(&refused).contains("workspace() at line 1, column 34"), "{}", text_of(&refused));
    for query in ["cluster('help').database('Samples').StormEvents", "app('x').requests", "T | union adx('u').T"] {
        let result = h.call("query_other_workspace", json!({"query": query})).await;
        assert_eq!(error_kind(&result), "denied", "{query}");
    }
    // The function names inside strings and comments are fine.
    let fine = h
        .call(
            "query_other_workspace",
            json!({"query": "ApiManagementGatewayLogs // not workspace('x')\n| where ApiId != 'app(' | take 1"}),
        )
        .await;
    assert_eq!(fine.is_error, Some(false), "{fine:?}");
}

#[tokio::test]
async fn a_plugin_with_too_many_tools_is_refused_saying_why() {
    let h = in_process(&["crowded", "testkit"], CONFIG).await;
    let failure = h.runtime.failures().iter().find(|f| f.source.contains("crowded")).expect("refused");
    assert!(failure.error.contains("declares 200 tools, more than the 128"), "{}", failure.error);
    assert!(h.runtime.plugins().iter().any(|p| p.manifest.name == "testkit"));
}

#[tokio::test]
async fn a_cache_entry_whose_code_was_swapped_is_recompiled_and_the_plugin_loads_as_itself() {
    use aigw_host::runtime::cache::CacheOutcome;
    let cache = tempfile::tempdir().unwrap();
    let load = |stem: &'static str| {
        let cache = cache.path().to_path_buf();
        async move {
            let dir = plugin_dir_with(&[stem]);
            let runtime = common::load_plugins(dir.path(), cache).await;
            let plugin = runtime.plugins()[0].clone();
            (plugin.cache, plugin.manifest.name.clone(), plugin.digest.clone())
        }
    };
    let (_, _, testkit) = load("testkit").await;
    let (_, _, twin) = load("twin").await;
    let entry_of = |digest: &str| {
        std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(digest))
            .unwrap()
    };
    let (testkit_entry, twin_entry) = (entry_of(&testkit), entry_of(&twin));
    let (a, b) = (std::fs::read(&testkit_entry).unwrap(), std::fs::read(&twin_entry).unwrap());
    // The trailer is the last line: keep each entry's, swap the code before it.
    let split = |bytes: &[u8]| bytes[..bytes.len() - 1].iter().rposition(|&b| b == b'\n').unwrap();
    let (sa, sb) = (split(&a), split(&b));
    std::fs::write(&testkit_entry, [&b[..sb], &a[sa..]].concat()).unwrap();
    std::fs::write(&twin_entry, [&a[..sa], &b[sb..]].concat()).unwrap();

    let (outcome, name, _) = load("testkit").await;
    assert_eq!((outcome, name.as_str()), (CacheOutcome::Compiled, "testkit"), "the swapped code was loaded");
    let (outcome, name, _) = load("twin").await;
    assert_eq!((outcome, name.as_str()), (CacheOutcome::Compiled, "twin"));
    let (healed, _, _) = load("testkit").await;
    assert_eq!(healed, CacheOutcome::Hit);
}
