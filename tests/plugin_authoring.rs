//! Writing a plugin from the README alone: what a plugin author and the operator who installs
//! it notice. Config values of any TOML type reach the plugin as text; a mistake in one plugin's
//! config section costs that plugin, never the server; a query error reaches the plugin with
//! Log Analytics' innermost message.

mod common;

use common::harness::{Confirmer, Env, call};
use common::in_process::{InProcess, Setup};
use common::text_of;
use rmcp::model::ElicitationAction;
use serde_json::json;

/// The sandbox emulator, its Log Analytics workspace, and `stems` loaded under `config`.
async fn in_process(stems: &[&str], config: &str) -> InProcess {
    InProcess::start(stems, config, Setup { builtins: false, read_only: true }).await
}

#[tokio::test]
async fn numbers_and_booleans_in_a_plugins_config_reach_it_as_their_toml_text_and_the_server_starts() {
    let env = Env::with_plugins(&["testkit"]).await;
    env.set_config(
        "[plugins.testkit.config]\nteam = \"platform\"\nprice_per_1k = 0.02\nmonthly_budget = 1500\nstrict = true\n\
         teams = [\"growth\", \"search\"]\n",
    );
    let client = env.client(Confirmer::new(ElicitationAction::Accept), &[]).await;
    for (key, text) in [
        ("team", "platform"),
        ("price_per_1k", "0.02"),
        ("monthly_budget", "1500"),
        ("strict", "true"),
        ("teams", r#"["growth","search"]"#),
    ] {
        let read = call(&client, "config_get", json!({ "key": key })).await;
        assert_eq!(read.structured_content.unwrap()["value"], text, "{key}");
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_mistake_in_one_plugins_section_disables_that_plugin_and_the_rest_of_the_server_starts() {
    let env = Env::with_plugins(&["testkit"]).await;
    env.set_config(
        "[plugins.testkit]\nmemory_mib = 999999\n\
         [plugins.quota]\ndeadline = 5\n\
         [plugins.service_info.config]\nprice_per_1k = 0.02\n",
    );
    let (stdout, stderr) = env.plugins_list();
    let not_loaded = |name: &str, why: &str| {
        stdout
            .lines()
            .any(|l| l.starts_with("NOT LOADED") && l.contains(&format!("[plugins.{name}]")) && l.contains(why))
    };
    assert!(not_loaded("testkit", "memory_mib = 999999"), "{stdout}");
    assert!(not_loaded("quota", "unknown field `deadline`"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("WARNING [plugins.service_info]")
                && l.contains("did you mean [plugins.service-info]?")),
        "{stdout}"
    );
    assert!(stdout.contains("service-info 0.1.0"), "the other plugins load: {stdout}");
    assert!(stderr.contains("did you mean [plugins.service-info]?"), "logged: {stderr}");

    let client = env.client(Confirmer::new(ElicitationAction::Accept), &[]).await;
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(names.contains(&"get_service_info") && names.contains(&"list_changes"), "{names:?}");
    assert!(!names.contains(&"config_get") && !names.contains(&"update_quota"), "{names:?}");
    let info = call(&client, "get_service_info", json!({})).await;
    assert_eq!(info.is_error, Some(false), "{info:?}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_config_file_that_is_not_toml_stops_the_start_naming_the_file() {
    let env = Env::with_plugins(&["testkit"]).await;
    env.set_config("[plugins.testkit\nmemory_mib = 64\n");
    let (_, stderr) = env.plugins_list();
    assert!(stderr.contains("config.toml is invalid"), "{stderr}");
}

#[tokio::test]
async fn a_query_error_reaches_the_plugin_with_the_innermost_message_code_and_position() {
    // A real query runs on the emulator's KQL engine, slow in debug builds: a long deadline.
    let config = "[plugins.testkit]\ndeadline_ms = 60000\n[plugins.hostile]\ndeadline_ms = 60000\n";
    let h = in_process(&["testkit", "hostile"], config).await;
    let query = "ApiManagementGatewayLogs | summarize count() by Foo";
    let answer = h.call("query_logs", json!({ "query": query })).await;
    let error = answer.structured_content.unwrap()["error"].clone();
    assert_eq!(error["code"], "BadArgumentError", "{error}");
    assert_eq!(error["status"], 400, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("Failed to resolve") && message.contains("'Foo'"), "{message}");
    assert!(message.contains("SEM0100") && message.contains("line 1"), "{message}");
    assert!(!message.contains("A semantic error occurred"), "{message}");

    // A plugin that passes the error on shows the agent the same sentence.
    let passed_on = h.call("query_other_workspace", json!({ "query": query })).await;
    assert_eq!(passed_on.is_error, Some(true), "{passed_on:?}");
    assert!(text_of(&passed_on).contains("Failed to resolve"), "{}", text_of(&passed_on));

    let fine = h.call("query_logs", json!({"query": "ApiManagementGatewayLogs | take 1"})).await;
    assert!(fine.structured_content.unwrap()["body"]["tables"].is_array());
}
