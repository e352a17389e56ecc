//! What the user confirms is the host's, not the plugin's: each attack of the `liar` test
//! component (plugins/testing/liar) against the real binary in `serve` mode and an emulator
//! this test controls. Asserted: what the user is shown, what reaches the service, what the
//! journal records and what compensation does.

mod common;

use std::sync::Arc;

use common::harness::{Confirmer, Env, call};
use common::{test_plugin, text_of};
use rmcp::model::ElicitationAction;
use serde_json::{Value, json};

const TARGET: &str = "namedValues/tpm-data-science";

async fn value(env: &Env) -> (Option<String>, Value) {
    let (etag, body) = env.get(TARGET).await;
    (etag, body["properties"]["value"].clone())
}

#[tokio::test]
async fn a_lying_summary_and_diff_cannot_hide_the_real_write() {
    let env = Env::with_plugins(&["liar"]).await;
    let confirmer = Confirmer::new(ElicitationAction::Decline);
    let client = env.client(confirmer.clone(), &[]).await;
    let result = call(&client, "lying_diff", json!({})).await;
    assert!(text_of(&result).contains("Nothing was written"), "{}", text_of(&result));

    let asked = confirmer.asked();
    assert_eq!(asked.len(), 1);
    let message = &asked[0];
    let truth = message.find("~ properties.value: \"50000\" → \"1\"").unwrap_or_else(|| panic!("{message}"));
    let write = message.find("PUT namedValues/tpm-data-science — update").unwrap_or_else(|| panic!("{message}"));
    let words = message.find("  > The value (50,000 TPM) is unchanged").unwrap_or_else(|| panic!("{message}"));
    assert!(write < words && truth < words, "the host's account comes first, the plugin's words after: {message}");
    assert!(message.contains("(not checked by the server)"), "{message}");
    assert_eq!(value(&env).await.1, "50000");

    // The dry run tells the same truth.
    let dry = call(&client, "lying_diff", json!({"dry_run": true})).await;
    let plan = &dry.structured_content.unwrap()["plan"];
    assert!(plan["diff"].as_str().unwrap().contains("\"50000\" → \"1\""), "{plan}");
    assert_eq!(plan["writes"][0]["precondition"]["kind"], "if-match");
    assert!(env.journal_records().is_empty());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_forged_or_false_before_state_is_a_stale_plan_not_an_instruction() {
    let env = Env::with_plugins(&["liar"]).await;
    let (etag, _) = value(&env).await;
    let confirmer = Confirmer::new(ElicitationAction::Accept);
    let client = env.client(confirmer.clone(), &[]).await;
    for (tool, says) in [("forged_before", "\"13\""), ("absent_before", "does not exist")] {
        let result = call(&client, tool, json!({})).await;
        let text = text_of(&result);
        assert_eq!(result.is_error, Some(true), "{tool}: {text}");
        assert!(text.contains(says) && text.contains("nothing was written"), "{tool}: {text}");
        assert_eq!(result.structured_content.unwrap()["error"]["kind"], "conflict");
    }
    assert!(confirmer.asked().is_empty(), "nobody is asked to approve a plan built on a false state");
    assert_eq!(value(&env).await, (etag, json!("50000")), "nothing was written");
    assert!(env.journal_records().is_empty());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn compensation_puts_back_what_the_host_read_and_never_deletes_what_existed() {
    let env = Env::with_plugins(&["liar"]).await;
    let (etag_before, _) = value(&env).await;
    let client = env.client(Confirmer::new(ElicitationAction::Accept), &[]).await;
    let result = call(&client, "second_write_fails", json!({})).await;
    let text = text_of(&result);
    assert_eq!(result.is_error, Some(true), "{text}");
    let structured = result.structured_content.unwrap();
    assert_eq!(structured["outcome"], "compensated", "{structured}");
    assert!(text.contains("namedValues/tpm-data-science: put back as it was"), "{text}");

    let (etag_after, restored) = value(&env).await;
    assert_eq!(restored, "50000", "back to what the host read, not to anything the plugin said");
    assert_ne!(etag_after, etag_before, "it was written, then put back");
    assert_eq!(env.get("namedValues/liar-helper").await.1, Value::Null, "the refused create left nothing");
    let compensation = structured["compensation"].as_array().unwrap();
    assert_eq!(compensation.len(), 1, "only the resource that was written is touched: {compensation:?}");
    assert_eq!(compensation[0]["method"], "PUT", "an existing resource is put back, never deleted");

    let records = env.journal_records();
    assert_eq!(records[0]["before"][0]["body"]["properties"]["value"], "50000", "the host's before-state");
    assert_eq!(records[0]["writes"][1]["precondition"]["kind"], "create-only");
    assert_eq!(records[1]["outcome"], "compensated");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn every_write_carries_a_precondition_the_host_derived() {
    let env = Env::with_plugins(&["liar"]).await;
    let client = env.client(Confirmer::new(ElicitationAction::Accept), &[]).await;

    // A PUT without an ETag on a resource that exists claims "this creates it": a stale plan.
    let result = call(&client, "overwrite_without_etag", json!({})).await;
    assert_eq!(result.is_error, Some(true), "{}", text_of(&result));
    assert!(text_of(&result).contains("exists"), "{}", text_of(&result));
    assert_eq!(value(&env).await.1, "50000");

    // A PATCH that claims nothing is sent with the live ETag (the emulator, like ARM, refuses a
    // PATCH without If-Match, so success shows the host added it).
    let result = call(&client, "patch_without_etag", json!({})).await;
    assert_eq!(result.is_error, Some(false), "{}", text_of(&result));
    assert_eq!(value(&env).await.1, "80000");
    let records = env.journal_records();
    assert_eq!(records[0]["writes"][0]["precondition"]["kind"], "if-match", "{}", records[0]);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_create_is_create_only_and_a_concurrent_create_is_never_overwritten() {
    let env = Arc::new(Env::with_plugins(&["liar"]).await);
    let theirs = json!({"properties": {"url": "https://theirs.openai.azure.com/openai", "protocol": "http"}});
    let mut confirmer = Confirmer::new(ElicitationAction::Accept);
    let (writer, body) = (env.clone(), theirs.clone());
    confirmer.hook = Some(Arc::new(move |round| {
        let (writer, body) = (writer.clone(), body.clone());
        Box::pin(async move {
            if round == 1 {
                writer.put("backends/liar-west", body).await; // someone else creates it meanwhile
            }
        })
    }));
    let client = env.client(confirmer.clone(), &[]).await;
    let result = call(&client, "create_backend", json!({})).await;
    let text = text_of(&result);
    assert_eq!(result.is_error, Some(true), "{text}");
    assert_eq!(confirmer.asked().len(), 1, "the re-made plan still creates it, which the live state contradicts");
    let (_, backend) = env.get("backends/liar-west").await;
    assert_eq!(backend["properties"]["url"], "https://theirs.openai.azure.com/openai", "theirs survives: {text}");
    let records = env.journal_records();
    assert_eq!(records[0]["writes"][0]["precondition"]["kind"], "create-only");
    assert_eq!(records[1]["outcome"], "failed");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_create_applies_and_its_rollback_deletes_only_what_it_created() {
    let env = Env::with_plugins(&["liar"]).await;
    let client = env.client(Confirmer::new(ElicitationAction::Accept), &[]).await;
    let result = call(&client, "create_backend", json!({})).await;
    assert_eq!(result.is_error, Some(false), "{}", text_of(&result));
    let id = result.structured_content.unwrap()["changeId"].as_str().unwrap().to_string();
    assert!(env.get("backends/liar-west").await.0.is_some());
    let rollback = call(&client, "rollback_change", json!({"change_id": id})).await;
    assert_eq!(rollback.is_error, Some(false), "{}", text_of(&rollback));
    assert_eq!(env.get("backends/liar-west").await.1, Value::Null);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_runaway_plan_is_refused_before_anyone_is_asked() {
    let env = Env::with_plugins(&["liar"]).await;
    let confirmer = Confirmer::new(ElicitationAction::Accept);
    let client = env.client(confirmer.clone(), &[]).await;
    let result = call(&client, "runaway_plan", json!({})).await;
    let text = text_of(&result);
    assert_eq!(result.is_error, Some(true));
    assert!(text.contains("1000 writes") && text.contains("100") && text.contains("max_plan_writes"), "{text}");
    assert!(confirmer.asked().is_empty());
    assert_eq!(env.get("namedValues/runaway-0").await.1, Value::Null);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn host_tool_names_stay_the_hosts() {
    let env = Env::with_plugins(&["liar"]).await;
    let client = env.client(Confirmer::new(ElicitationAction::Accept), &[]).await;
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(!names.contains(&"sandbox_advance_clock"), "{names:?}");
    let listed = call(&client, "list_changes", json!({})).await;
    assert!(listed.structured_content.unwrap()["journal"].is_string(), "the host's own journal answers");
    client.cancel().await.unwrap();

    let (stdout, stderr) = env.plugins_list();
    for tool in ["list_changes", "rollback_change", "sandbox_advance_clock"] {
        assert!(
            stdout.lines().any(|l| l.starts_with("REFUSED") && l.contains(&format!("{tool:?}"))),
            "{tool}: {stdout}"
        );
        assert!(stderr.lines().any(|l| l.contains("refused") && l.contains(tool)), "logged: {stderr}");
    }
}

#[tokio::test]
async fn a_second_file_cannot_claim_a_plugins_name_or_read_its_config() {
    let env = Env::with_plugins(&["testkit"]).await;
    std::fs::copy(test_plugin("impostor"), env.plugins.path().join("a_testkit.wasm")).unwrap();
    env.set_config("[plugins.testkit.config]\nsecret = \"only-for-testkit\"\n");
    let (stdout, _) = env.plugins_list();
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("NOT LOADED") && l.contains("a_testkit.wasm") && l.contains("named after")),
        "{stdout}"
    );
    assert!(stdout.contains("testkit 0.1.0"), "the real plugin loads: {stdout}");

    let client = env.client(Confirmer::new(ElicitationAction::Accept), &[]).await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(!tools.iter().any(|t| t.name == "steal_config"));
    let read = call(&client, "config_get", json!({"key": "secret"})).await;
    assert_eq!(read.structured_content.unwrap()["value"], "only-for-testkit");
    client.cancel().await.unwrap();
}
