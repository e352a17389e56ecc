//! The runtime's isolation and limits, end to end through the MCP surface (in process) against
//! the sandbox emulator: misbehaving plugins cost one tool error, never the server.

mod common;

use std::sync::Arc;

use common::in_process::{InProcess, Setup, error_kind};
use common::{plugin_dir_with, text_of};
use serde_json::{Value, json};

const CONFIG: &str = r#"
[plugins.hostile]
deadline_ms = 1500
memory_mib = 16
max_output_kib = 1024
[plugins.testkit.config]
greeting = "hello from the config file"
"#;

async fn harness(stems: &[&str], config: &str) -> InProcess {
    InProcess::start(stems, config, Setup { builtins: true, read_only: false }).await
}

#[tokio::test]
async fn a_plugin_that_loops_forever_is_stopped_at_its_deadline_and_the_next_call_is_answered() {
    let h = harness(&["hostile", "testkit"], CONFIG).await;
    let started = std::time::Instant::now();
    let result = h.call("spin", json!({})).await;
    assert_eq!(error_kind(&result), "timeout");
    assert!(text_of(&result).contains("1500 ms deadline"), "{}", text_of(&result));
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    let next = h.call("echo", json!({"text": "still here"})).await;
    assert_eq!(next.is_error, Some(false));
    assert_eq!(text_of(&next), "still here");
}

#[tokio::test]
async fn a_plugin_that_allocates_without_bound_is_capped_at_its_memory_limit() {
    let h = harness(&["hostile"], CONFIG).await;
    let result = h.call("hog", json!({})).await;
    assert_eq!(error_kind(&result), "crashed");
    assert!(text_of(&result).contains("memory cap of 16 MiB"), "{}", text_of(&result));
    // The host keeps serving the same plugin.
    let again = h.call("print_stdout", json!({})).await;
    assert_eq!(again.is_error, Some(false));
}

#[tokio::test]
async fn a_trapping_plugin_gives_a_tool_error_with_its_panic_message() {
    let h = harness(&["hostile"], CONFIG).await;
    let result = h.call("trap", json!({})).await;
    assert_eq!(error_kind(&result), "crashed");
    assert!(text_of(&result).contains("hostile plugin panics on purpose"), "{}", text_of(&result));
}

#[tokio::test]
async fn a_plugin_cannot_read_files_environment_or_open_sockets() {
    let h = harness(&["hostile"], CONFIG).await;
    let file = h.call("read_file", json!({})).await;
    assert_eq!(file.structured_content.as_ref().unwrap()["denied"], true, "{file:?}");
    let env = h.call("read_env", json!({})).await;
    let env = env.structured_content.unwrap();
    assert_eq!(env["vars"], json!([]), "the plugin saw environment variables: {env}");
    assert_eq!(env["home"], Value::Null);
    let socket = h.call("open_socket", json!({})).await;
    assert_eq!(socket.structured_content.as_ref().unwrap()["connected"], false, "{socket:?}");
}

#[tokio::test]
async fn an_answer_over_the_output_cap_is_refused() {
    let h = harness(&["hostile"], CONFIG).await;
    let result = h.call("huge_output", json!({})).await;
    assert_eq!(error_kind(&result), "internal");
    assert!(text_of(&result).contains("1024 KiB cap"), "{}", text_of(&result));
}

#[tokio::test]
async fn arm_reads_outside_the_grant_or_the_service_are_denied() {
    let h = harness(&["hostile", "testkit"], CONFIG).await;
    let not_granted = h.call("read_backends", json!({})).await;
    assert_eq!(error_kind(&not_granted), "denied");
    assert!(text_of(&not_granted).contains("may not read \"backends\""), "{}", text_of(&not_granted));
    let escape = h.call("escape_path", json!({})).await;
    assert_eq!(error_kind(&escape), "denied");
    for path in [
        "https://evil.example/",
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/other/providers/Microsoft.KeyVault/vaults/kv",
        "apis/%2e%2e/%2e%2e",
    ] {
        let result = h.call("arm_get", json!({"path": path})).await;
        assert_eq!(error_kind(&result), "denied", "{path}: {result:?}");
    }
    let ok = h.call("arm_get", json!({"path": ""})).await;
    assert_eq!(ok.structured_content.unwrap()["name"], "apim-sandbox");
}

#[tokio::test]
async fn invalid_arguments_are_refused_before_the_plugin_runs_and_name_the_field() {
    let h = harness(&["testkit"], CONFIG).await;
    let missing = h.call("echo", json!({})).await;
    assert_eq!(error_kind(&missing), "invalid-input");
    assert_eq!(missing.structured_content.as_ref().unwrap()["error"]["field"], "text");
    let wrong_type = h.call("echo", json!({"text": 42})).await;
    assert_eq!(wrong_type.structured_content.as_ref().unwrap()["error"]["field"], "text");
}

#[tokio::test]
async fn a_plugin_reads_its_settings_from_the_config_file_and_nothing_else() {
    let h = harness(&["testkit"], CONFIG).await;
    let set = h.call("config_get", json!({"key": "greeting"})).await;
    assert_eq!(set.structured_content.unwrap()["value"], "hello from the config file");
    let unset = h.call("config_get", json!({"key": "HOME"})).await;
    assert_eq!(unset.structured_content.unwrap()["value"], Value::Null);
}

#[tokio::test]
async fn calls_to_the_same_plugin_run_concurrently() {
    let h = Arc::new(harness(&["testkit"], CONFIG).await);
    let calls = (0..16).map(|i| {
        let h = h.clone();
        tokio::spawn(async move { h.call("echo", json!({"text": format!("call {i}")})).await })
    });
    for (i, call) in calls.enumerate() {
        assert_eq!(text_of(&call.await.unwrap()), format!("call {i}"));
    }
}

#[tokio::test]
async fn a_plugin_built_for_another_contract_version_is_refused_naming_both_versions() {
    let h = harness(&["future_contract", "testkit"], CONFIG).await;
    let failure = h.runtime.failures().iter().find(|f| f.source.contains("future_contract")).expect("refused");
    assert!(
        failure.error.contains("aigw:plugin@0.2.0") && failure.error.contains("aigw:plugin@0.1.0"),
        "{}",
        failure.error
    );
    // The others still load.
    assert!(h.runtime.plugins().iter().any(|p| p.manifest.name == "testkit"));
}

#[tokio::test]
async fn a_colliding_tool_name_is_refused_naming_both_plugins_unless_prefixed() {
    let h = harness(&["testkit", "twin"], CONFIG).await;
    let refusal = h.server.registry().refusals().first().expect("a refusal").clone();
    assert!(refusal.contains("\"twin\"") && refusal.contains("\"testkit\""), "{refusal}");
    assert_eq!(text_of(&h.call("echo", json!({"text": "first"})).await), "first");

    let prefixed = harness(&["testkit", "twin"], &format!("{CONFIG}\n[plugins.twin]\nprefix = \"twin_\"\n")).await;
    assert!(prefixed.server.registry().refusals().is_empty());
    assert_eq!(text_of(&prefixed.call("twin_echo", json!({})).await), "twin");
}

#[tokio::test]
async fn write_tools_get_dry_run_and_a_dry_run_changes_nothing() {
    let h = harness(&["testkit"], CONFIG).await;
    let tool = h.server.registry().get("tag_service").unwrap();
    assert!(tool.tool.input_schema.get("properties").unwrap().get("dry_run").is_some());
    assert_eq!(tool.tool.annotations.as_ref().unwrap().read_only_hint, Some(false));
    let plan = h.call("tag_service", json!({"tag": "platform", "dry_run": true})).await;
    assert_eq!(plan.is_error, Some(false), "{plan:?}");
    let s = plan.structured_content.unwrap();
    assert_eq!(s["dryRun"], true);
    assert_eq!(s["plan"]["writes"][0]["method"], "PATCH");
    assert_eq!(s["plan"]["writes"][0]["path"], "");
    // The diff is the host's, field by field from the live service; the plugin's is kept as its words.
    assert!(s["plan"]["diff"].as_str().unwrap().contains("~ tags.owner: \"platform-ai\" → \"platform\""), "{s}");
    assert!(s["plan"]["plugin"]["diff"].as_str().unwrap().contains("+    \"owner\": \"platform\""), "{s}");
    assert_eq!(s["plan"]["writes"][0]["precondition"]["kind"], "if-match", "{s}");
}

#[tokio::test]
async fn the_compile_cache_is_used_and_never_trusts_a_stale_or_foreign_entry() {
    use aigw_host::runtime::cache::CacheOutcome;
    let cache = tempfile::tempdir().unwrap();
    let load = |dir: tempfile::TempDir| {
        let cache = cache.path().to_path_buf();
        async move {
            let runtime = common::load_plugins(dir.path(), cache).await;
            let plugin = runtime.plugins()[0].clone();
            (plugin.cache, plugin.manifest.name.clone(), plugin.digest.clone())
        }
    };
    let (first, _, testkit_digest) = load(plugin_dir_with(&["testkit"])).await;
    assert_eq!(first, CacheOutcome::Compiled);
    let (second, _, _) = load(plugin_dir_with(&["testkit"])).await;
    assert_eq!(second, CacheOutcome::Hit, "a warm start deserialises");

    // A corrupt entry is discarded and rebuilt.
    let entry_of = |digest: &str| {
        std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(digest))
            .unwrap()
    };
    let testkit_entry = entry_of(&testkit_digest);
    std::fs::write(&testkit_entry, b"garbage").unwrap();
    let (after_corruption, name, _) = load(plugin_dir_with(&["testkit"])).await;
    assert_eq!((after_corruption, name.as_str()), (CacheOutcome::Compiled, "testkit"));

    // Another component's artifact planted under testkit's name is not trusted.
    let (_, _, twin_digest) = load(plugin_dir_with(&["twin"])).await;
    std::fs::copy(entry_of(&twin_digest), &testkit_entry).unwrap();
    let (after_planting, name, _) = load(plugin_dir_with(&["testkit"])).await;
    assert_eq!((after_planting, name.as_str()), (CacheOutcome::Compiled, "testkit"), "the planted twin was not loaded");
    let (healed, _, _) = load(plugin_dir_with(&["testkit"])).await;
    assert_eq!(healed, CacheOutcome::Hit);
}
