//! Safe changes, end to end: the real binary (`serve`) against an emulator this test controls,
//! driven by an rmcp client that answers elicitations. Confirmation, stale-ETag re-planning,
//! compensation under injected faults, retries, the journal, rollback, read-only mode, secrets.

mod common;

use std::sync::Arc;

use common::harness::{Confirmer, Env, POLICY, TOKEN, call};
use common::text_of;
use rmcp::model::ElicitationAction;
use serde_json::{Value, json};

#[tokio::test]
async fn an_accepted_confirmation_applies_the_plan_and_journals_it_completely() {
    let env = Env::start().await;
    let before_xml = env.policy_xml().await;
    let confirmer = Confirmer::new(ElicitationAction::Accept);
    let client = env.client(confirmer.clone(), &[]).await;
    let result = call(&client, "annotate_policy", json!({"note": "reviewed by sre"})).await;
    assert_eq!(result.is_error, Some(false), "{}", text_of(&result));

    let asked = confirmer.asked();
    assert_eq!(asked.len(), 1);
    assert!(
        asked[0].contains("Add the comment \"reviewed by sre\"")
            && asked[0].contains("+")
            && asked[0].contains("PUT apis/inference-api"),
        "{}",
        asked[0]
    );
    let after_xml = env.policy_xml().await;
    assert_eq!(after_xml, before_xml.replacen("<inbound>", "<inbound><!-- reviewed by sre -->", 1));

    let records = env.journal_records();
    assert_eq!(records.len(), 2, "a planned and a completed line: {records:?}");
    let (planned, completed) = (&records[0], &records[1]);
    assert_eq!(planned["record"], "planned");
    assert_eq!(planned["id"], completed["id"]);
    assert_eq!(planned["client"]["name"], "safe-changes-test");
    assert_eq!(planned["tool"], "annotate_policy");
    assert_eq!(planned["arguments"]["note"], "reviewed by sre");
    assert_eq!(planned["confirmation"], "elicitation");
    assert!(planned["diff"].as_str().unwrap().contains("+"));
    assert_eq!(planned["before"][0]["body"]["properties"]["value"], before_xml.as_str());
    assert!(planned["before"][0]["etag"].is_string());
    assert_eq!(completed["record"], "completed");
    assert_eq!(completed["outcome"], "applied");
    assert_eq!(completed["writes"][0]["after"]["properties"]["value"], after_xml.as_str());
    assert!(completed["writes"][0]["etag"].is_string());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_declined_or_cancelled_confirmation_writes_nothing() {
    let env = Env::start().await;
    let (etag, _) = env.get(POLICY).await;
    for action in [ElicitationAction::Decline, ElicitationAction::Cancel] {
        let client = env.client(Confirmer::new(action.clone()), &[]).await;
        let result = call(&client, "annotate_policy", json!({"note": "never"})).await;
        assert!(text_of(&result).contains("Nothing was written"), "{action:?}: {}", text_of(&result));
        assert_eq!(result.structured_content.unwrap()["applied"], false);
        client.cancel().await.unwrap();
    }
    assert_eq!(env.get(POLICY).await.0, etag, "the policy did not change");
    assert!(env.journal_records().is_empty(), "nothing unconfirmed is journaled");
}

#[tokio::test]
async fn a_client_that_cannot_confirm_is_refused_with_how_an_operator_can_turn_confirmation_off() {
    let env = Env::start().await;
    let (etag, _) = env.get(POLICY).await;
    let client = env.client((), &[]).await;
    let result = call(&client, "annotate_policy", json!({"note": "x"})).await;
    assert_eq!(result.is_error, Some(true));
    let text = text_of(&result);
    assert!(
        text.contains("--dangerously-skip-confirmation") && text.contains("AIGW_DANGEROUSLY_SKIP_CONFIRMATION"),
        "{text}"
    );
    // A dry run still shows the plan.
    let dry = call(&client, "annotate_policy", json!({"note": "x", "dry_run": true})).await;
    assert_eq!(dry.structured_content.unwrap()["plan"]["writes"][0]["method"], "PUT");
    assert_eq!(env.get(POLICY).await.0, etag);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_skip_flag_applies_without_asking_and_logs_a_warning() {
    let env = Env::start().await;
    let client = env.client((), &[("AIGW_DANGEROUSLY_SKIP_CONFIRMATION", "1")]).await;
    let result = call(&client, "annotate_policy", json!({"note": "unattended"})).await;
    assert_eq!(result.is_error, Some(false), "{}", text_of(&result));
    assert!(env.policy_xml().await.contains("<!-- unattended -->"));
    client.cancel().await.unwrap();
    let log = std::fs::read_to_string(env.stderr_log()).unwrap();
    assert!(log.contains("WITHOUT confirmation"), "{log}");
    assert_eq!(env.journal_records()[0]["confirmation"], "skipped");
}

#[tokio::test]
async fn a_concurrent_writer_causes_a_replan_and_both_changes_survive() {
    let env = Arc::new(Env::start().await);
    let confirmer = Confirmer::accepting_after_another_writer(env.clone(), "the other writer was here");
    let client = env.client(confirmer.clone(), &[]).await;
    let result = call(&client, "annotate_policy", json!({"note": "ours"})).await;
    assert_eq!(result.is_error, Some(false), "{}", text_of(&result));
    let asked = confirmer.asked();
    assert_eq!(asked.len(), 2, "the user saw the new plan");
    assert!(asked[1].contains("changed by someone else"), "{}", asked[1]);
    assert!(asked[1].contains("the other writer was here"), "the new diff is against the fresh state: {}", asked[1]);
    let xml = env.policy_xml().await;
    assert!(xml.contains("<!-- ours -->") && xml.contains("<!-- the other writer was here -->"), "{xml}");
    // The stale attempt is journaled as failed with nothing written, the re-plan as applied.
    let outcomes: Vec<String> =
        env.journal_records().iter().filter_map(|r| r["outcome"].as_str().map(str::to_string)).collect();
    assert_eq!(outcomes, ["failed", "applied"]);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_fault_in_the_middle_of_a_plan_is_compensated_and_nothing_is_left_half_applied() {
    let env = Env::start().await;
    let (_, seeded) = env.get("namedValues/tpm-data-science").await;
    env.fault(json!({"path": "*/namedValues/zz-third", "method": "PUT", "status": 500})).await;
    let client = env.client((), &[("AIGW_DANGEROUSLY_SKIP_CONFIRMATION", "1")]).await;
    let result =
        call(&client, "set_named_values", json!({"values": {"tpm-data-science": "1", "aa-new": "2", "zz-third": "3"}}))
            .await;
    assert_eq!(result.is_error, Some(true), "{}", text_of(&result));
    let structured = result.structured_content.unwrap();
    assert_eq!(structured["outcome"], "compensated", "{structured}");
    assert_eq!(structured["writesMade"].as_array().unwrap().len(), 2);
    assert!(text_of_value(&structured["failedWrite"]["path"]).ends_with("zz-third"));

    // The pre-existing value is back exactly; the created one is gone; the failed one never existed.
    let (_, restored) = env.get("namedValues/tpm-data-science").await;
    assert_eq!(restored["properties"], seeded["properties"]);
    assert_eq!(env.get("namedValues/aa-new").await.1, Value::Null);
    assert_eq!(env.get("namedValues/zz-third").await.1, Value::Null);
    let records = env.journal_records();
    assert_eq!(records[1]["outcome"], "compensated");
    assert_eq!(records[1]["compensation"].as_array().unwrap().len(), 2);
    client.cancel().await.unwrap();
}

fn text_of_value(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn throttling_with_retry_after_and_503_bursts_are_absorbed() {
    let env = Env::start().await;
    env.fault(json!({"path": "*/apis/inference-api/policies/policy", "method": "GET", "status": 429, "retryAfter": 1, "count": 2})).await;
    env.fault(json!({"path": "*/apis/inference-api/policies/policy", "method": "PUT", "status": 503, "count": 2}))
        .await;
    let client = env.client((), &[("AIGW_DANGEROUSLY_SKIP_CONFIRMATION", "1")]).await;
    let started = std::time::Instant::now();
    let result = call(&client, "annotate_policy", json!({"note": "through the storm"})).await;
    assert_eq!(result.is_error, Some(false), "{}", text_of(&result));
    assert!(started.elapsed() >= std::time::Duration::from_secs(2), "Retry-After was honoured twice");
    assert_eq!(env.policy_xml().await.matches("through the storm").count(), 1, "applied exactly once");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn rollback_restores_the_exact_before_state_and_is_journaled() {
    let env = Env::start().await;
    let original = env.policy_xml().await;
    let client = env.client((), &[("AIGW_DANGEROUSLY_SKIP_CONFIRMATION", "1")]).await;
    let applied = call(&client, "annotate_policy", json!({"note": "to be undone"})).await;
    let id = applied.structured_content.unwrap()["changeId"].as_str().unwrap().to_string();

    let listed = call(&client, "list_changes", json!({})).await;
    assert_eq!(listed.structured_content.as_ref().unwrap()["changes"][0]["id"], id.as_str());
    assert_eq!(listed.structured_content.unwrap()["changes"][0]["outcome"], "applied");

    let rolled_back = call(&client, "rollback_change", json!({"change_id": id})).await;
    assert_eq!(rolled_back.is_error, Some(false), "{}", text_of(&rolled_back));
    assert_eq!(env.policy_xml().await, original, "byte for byte");
    let last = env.journal_records().into_iter().rev().find(|r| r["record"] == "planned").unwrap();
    assert_eq!(last["tool"], "rollback_change");
    assert_eq!(last["rollbackOf"], id.as_str());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn rollback_refuses_when_a_resource_drifted_and_force_overrides() {
    let env = Env::start().await;
    let original = env.policy_xml().await;
    let client = env.client((), &[("AIGW_DANGEROUSLY_SKIP_CONFIRMATION", "1")]).await;
    let applied = call(&client, "annotate_policy", json!({"note": "first"})).await;
    let id = applied.structured_content.unwrap()["changeId"].as_str().unwrap().to_string();
    env.other_writer_annotates("later change").await;

    let refused = call(&client, "rollback_change", json!({"change_id": id})).await;
    assert_eq!(refused.is_error, Some(true));
    assert!(text_of(&refused).contains("later change") && text_of(&refused).contains("force"), "{}", text_of(&refused));
    assert!(env.policy_xml().await.contains("later change"), "nothing was written");

    let forced = call(&client, "rollback_change", json!({"change_id": id, "force": true})).await;
    assert_eq!(forced.is_error, Some(false), "{}", text_of(&forced));
    assert_eq!(env.policy_xml().await, original);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn read_only_mode_hides_and_refuses_writes() {
    let env = Env::start().await;
    let client = env.client((), &[("AIGW_READ_ONLY", "1"), ("AIGW_DANGEROUSLY_SKIP_CONFIRMATION", "1")]).await;
    let names: Vec<String> = client.list_all_tools().await.unwrap().into_iter().map(|t| t.name.to_string()).collect();
    assert!(names.contains(&"echo".to_string()) && names.contains(&"list_changes".to_string()), "{names:?}");
    for write in ["annotate_policy", "set_named_values", "tag_service", "rollback_change"] {
        assert!(!names.contains(&write.to_string()), "{write} is listed in read-only mode");
    }
    let (etag, _) = env.get(POLICY).await;
    let refused = call(&client, "annotate_policy", json!({"note": "x"})).await;
    assert_eq!(refused.is_error, Some(true));
    assert!(text_of(&refused).contains("read-only"), "{}", text_of(&refused));
    assert_eq!(env.get(POLICY).await.0, etag);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn no_token_or_key_appears_in_logs_the_journal_or_results() {
    let env = Env::start().await;
    let state: Value = env
        .http
        .get(format!("{}/_emulator/state?secrets=true", env.emulator.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut secrets = vec![TOKEN.to_string()];
    collect_keys(&state, &mut secrets);
    assert!(secrets.len() > 2, "found subscription keys to look for: {secrets:?}");

    let client = env.client((), &[("AIGW_DANGEROUSLY_SKIP_CONFIRMATION", "1")]).await;
    let mut results = String::new();
    for (tool, args) in [
        ("annotate_policy", json!({"note": "audit"})),
        ("arm_get", json!({"path": ""})),
        ("list_changes", json!({})),
        ("set_named_values", json!({"values": {"some-setting": "x"}})),
    ] {
        let result = call(&client, tool, args).await;
        results.push_str(&serde_json::to_string(&result).unwrap());
    }
    client.cancel().await.unwrap();
    let log = std::fs::read_to_string(env.stderr_log()).unwrap();
    let journal = std::fs::read_to_string(env.journal()).unwrap();
    assert!(log.contains("ARM"), "debug logging was on: {log}");
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "a secret is in the log");
        assert!(!journal.contains(secret.as_str()), "a secret is in the journal");
        assert!(!results.contains(secret.as_str()), "a secret is in a tool result");
    }
}

fn collect_keys(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if (k == "primaryKey" || k == "secondaryKey") && v.is_string() {
                    out.push(v.as_str().unwrap().to_string());
                }
                collect_keys(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_keys(v, out)),
        _ => {}
    }
}
