//! Rollback as revert, end to end: the built-in quota plugin, the real binary and an emulator
//! with the seeded tenant. Three changes edit the same policy document and a named value; each
//! one is rolled back on its own and the others survive, byte for byte; a genuine conflict is
//! refused with both edits shown; a revert of a revert re-applies the change.

mod common;

use common::harness::{Env, call};
use common::text_of;
use serde_json::{Value, json};

const SKIP: &[(&str, &str)] = &[("AIGW_DANGEROUSLY_SKIP_CONFIRMATION", "1")];

/// TPM per subscription from list_subscriptions.
fn tpm(list: &Value, id: &str) -> Value {
    let row = list["subscriptions"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap();
    row["limits"][0]["tpm"]["value"].clone()
}

/// The lines of `a` that `b` changed, and what they became (both documents have the same
/// number of lines when a change edits lines in place).
fn changed_lines(a: &str, b: &str) -> Vec<(String, String)> {
    a.lines().zip(b.lines()).filter(|(x, y)| x != y).map(|(x, y)| (x.to_string(), y.to_string())).collect()
}

#[tokio::test]
async fn each_change_reverts_on_its_own_and_later_changes_survive_byte_for_byte() {
    let env = Env::with_plugins(&[]).await;
    let client = env.client((), SKIP).await;
    let change = |r: &rmcp::model::CallToolResult| {
        assert_eq!(r.is_error, Some(false), "{}", text_of(r));
        r.structured_content.as_ref().unwrap()["changeId"].as_str().unwrap().to_string()
    };
    let original = env.policy_xml().await;
    let growth = change(&call(&client, "update_quota", json!({"subscription_id": "growth", "tpm": 100000})).await);
    let after_growth = env.policy_xml().await;
    let search = change(&call(&client, "update_quota", json!({"subscription_id": "search", "tpm": 120000})).await);
    let after_search = env.policy_xml().await;
    let science =
        change(&call(&client, "update_quota", json!({"subscription_id": "data-science", "tpm": 60000})).await);
    let list = call(&client, "list_subscriptions", json!({})).await.structured_content.unwrap();
    assert_eq!(
        (tpm(&list, "growth"), tpm(&list, "search"), tpm(&list, "data-science")),
        (json!(100000), json!(120000), json!(60000))
    );

    // Revert growth's cut alone: growth is back, search keeps its override, data-science its value.
    let reverted = call(&client, "rollback_change", json!({"change_id": growth})).await;
    assert_eq!(reverted.is_error, Some(false), "{}", text_of(&reverted));
    let growth_edit = changed_lines(&original, &after_growth);
    assert_eq!(growth_edit.len(), 1, "growth's cut edits one line: {growth_edit:?}");
    let (old_line, new_line) = &growth_edit[0];
    let expected = after_search.replacen(new_line.as_str(), old_line, 1);
    assert_eq!(env.policy_xml().await, expected, "the current document minus growth's hunk, byte for byte");
    let list = call(&client, "list_subscriptions", json!({})).await.structured_content.unwrap();
    assert_eq!(tpm(&list, "growth"), json!(200000));
    assert_eq!(tpm(&list, "search"), json!(120000));
    assert_eq!(tpm(&list, "data-science"), json!(60000));

    // The journal says who reverted what; a second revert of growth is refused, naming the first.
    let changes = call(&client, "list_changes", json!({})).await.structured_content.unwrap();
    let entry = changes["changes"].as_array().unwrap().iter().find(|c| c["id"] == growth.as_str()).unwrap().clone();
    let revert_id = entry["revertedBy"].as_str().expect("reverted by").to_string();
    let again = call(&client, "rollback_change", json!({"change_id": growth})).await;
    assert_eq!(again.is_error, Some(true));
    assert!(text_of(&again).contains(&revert_id), "{}", text_of(&again));

    // Revert search too: the document is back to the original; then data-science's named value.
    let reverted = call(&client, "rollback_change", json!({"change_id": search})).await;
    assert_eq!(reverted.is_error, Some(false), "{}", text_of(&reverted));
    assert_eq!(env.policy_xml().await, original);
    let reverted = call(&client, "rollback_change", json!({"change_id": science})).await;
    assert_eq!(reverted.is_error, Some(false), "{}", text_of(&reverted));
    assert_eq!(env.get("namedValues/tpm-data-science").await.1["properties"]["value"], "50000");

    // A revert of a revert applies the change again.
    let reapplied = call(&client, "rollback_change", json!({"change_id": revert_id})).await;
    assert_eq!(reapplied.is_error, Some(false), "{}", text_of(&reapplied));
    let list = call(&client, "list_subscriptions", json!({})).await.structured_content.unwrap();
    assert_eq!(tpm(&list, "growth"), json!(100000));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_later_edit_of_the_same_limit_is_a_conflict_shown_side_by_side() {
    let env = Env::with_plugins(&[]).await;
    let client = env.client((), SKIP).await;
    let first = call(&client, "update_quota", json!({"subscription_id": "growth", "tpm": 150000})).await;
    let id = first.structured_content.unwrap()["changeId"].as_str().unwrap().to_string();
    let _second = call(&client, "update_quota", json!({"subscription_id": "growth", "tpm": 120000})).await;
    let before = env.policy_xml().await;

    let refused = call(&client, "rollback_change", json!({"change_id": id})).await;
    let text = text_of(&refused);
    assert_eq!(refused.is_error, Some(true), "{text}");
    assert!(text.contains("this change") && text.contains("since then"), "{text}");
    assert!(text.contains("150000") && text.contains("120000"), "both edits are shown: {text}");
    assert!(text.contains("force"), "{text}");
    assert_eq!(env.policy_xml().await, before, "nothing was written");
    client.cancel().await.unwrap();
}
