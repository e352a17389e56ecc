//! The first product scenario end to end: list the quotas, cut one team's TPM with a confirmed,
//! journaled, reversible change that touches nothing else (the built-in `quota` plugin, the real
//! binary, the emulator's seeded tenant).

mod common;

use std::sync::Arc;

use common::harness::{Confirmer, Env, POLICY, call};
use common::text_of;
use rmcp::model::ElicitationAction;
use serde_json::{Value, json};

const SKIP: &[(&str, &str)] = &[("AIGW_DANGEROUSLY_SKIP_CONFIRMATION", "1")];

/// `id → (tpm, rpm)` from a list_subscriptions answer (the first limit group of each).
fn limits(list: &Value) -> std::collections::BTreeMap<String, (Value, Value)> {
    list["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let group = &row["limits"][0];
            let value = |kind: &str| {
                group[kind]
                    .get("value")
                    .cloned()
                    .unwrap_or_else(|| json!(group[kind].get("unlimited").map(|_| "unlimited")))
            };
            (row["id"].as_str().unwrap().to_string(), (value("tpm"), value("rpm")))
        })
        .collect()
}

#[tokio::test]
async fn list_subscriptions_shows_each_teams_limits_and_where_they_come_from_without_keys() {
    let env = Env::with_plugins(&[]).await;
    let client = env.client((), SKIP).await;
    let result = call(&client, "list_subscriptions", json!({})).await;
    assert_eq!(result.is_error, Some(false), "{}", text_of(&result));
    let list = result.structured_content.clone().unwrap();
    let l = limits(&list);
    assert_eq!(l["growth"], (json!(200000), json!(1200)));
    assert_eq!(l["prod-critical"], (json!(400000), json!(2400)));
    assert_eq!(l["data-science"].0, json!(50000));
    assert_eq!(l["search"], (json!(100000), json!(600)));
    assert_eq!(l["support"], (json!(100000), json!(600)));
    assert_eq!(l["master"].0, json!("unlimited"));
    let text = serde_json::to_string(&list).unwrap();
    assert!(text.contains("tpm-data-science"), "the named value is named as the source");

    let state: Value = env
        .http
        .get(format!("{}/_emulator/state?secrets=true", env.emulator.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let growth_key = find_key(&state, "growth").expect("the emulator has keys");
    assert!(!serde_json::to_string(&result).unwrap().contains(&growth_key), "a key leaked");
    client.cancel().await.unwrap();
}

fn find_key(state: &Value, sid: &str) -> Option<String> {
    match state {
        Value::Object(map) => {
            if map.get("name").and_then(Value::as_str) == Some(sid)
                && let Some(k) = map.get("properties").and_then(|p| p.get("primaryKey")).and_then(Value::as_str)
            {
                return Some(k.to_string());
            }
            map.values().find_map(|v| find_key(v, sid))
        }
        Value::Array(items) => items.iter().find_map(|v| find_key(v, sid)),
        _ => None,
    }
}

#[tokio::test]
async fn cutting_growth_changes_only_growth_and_rolls_back_byte_for_byte() {
    let env = Env::with_plugins(&[]).await;
    let before = env.policy_xml().await;
    let confirmer = Confirmer::new(ElicitationAction::Accept);
    let client = env.client(confirmer.clone(), &[]).await;
    let listed_before = limits(&call(&client, "list_subscriptions", json!({})).await.structured_content.unwrap());

    let result = call(&client, "update_quota", json!({"subscription_id": "growth", "tpm": 100000})).await;
    assert_eq!(result.is_error, Some(false), "{}", text_of(&result));
    assert!(confirmer.asked()[0].contains("200,000 → 100,000"), "{}", confirmer.asked()[0]);
    let after = env.policy_xml().await;
    let changed: Vec<(&str, &str)> = before.lines().zip(after.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(changed.len(), 1, "exactly one line changed: {changed:?}");
    assert_eq!(changed[0].1, changed[0].0.replace("200000", "100000"));
    assert_eq!(before.lines().count(), after.lines().count());

    let listed_after = limits(&call(&client, "list_subscriptions", json!({})).await.structured_content.unwrap());
    for (id, value) in &listed_before {
        if id == "growth" {
            assert_eq!(listed_after[id], (json!(100000), json!(1200)));
        } else {
            assert_eq!(&listed_after[id], value, "{id} must not change");
        }
    }

    let changes = call(&client, "list_changes", json!({})).await.structured_content.unwrap();
    let id = changes["changes"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(changes["changes"][0]["tool"], "update_quota");
    let rolled_back = call(&client, "rollback_change", json!({"change_id": id})).await;
    assert_eq!(rolled_back.is_error, Some(false), "{}", text_of(&rolled_back));
    assert_eq!(env.policy_xml().await, before, "byte for byte");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn cutting_a_shared_limit_adds_an_override_and_leaves_the_other_team_alone() {
    let env = Env::with_plugins(&[]).await;
    let before = env.policy_xml().await;
    let client = env.client((), SKIP).await;
    let result = call(&client, "update_quota", json!({"subscription_id": "search", "tpm": 50000})).await;
    assert_eq!(result.is_error, Some(false), "{}", text_of(&result));
    assert!(text_of(&result).contains("support"), "says who shared the old value: {}", text_of(&result));
    let after = env.policy_xml().await;
    assert!(after.len() > before.len() && after.contains("search"), "an override was inserted");
    let l = limits(&call(&client, "list_subscriptions", json!({})).await.structured_content.unwrap());
    assert_eq!(l["search"].0, json!(50000));
    assert_eq!(l["support"], (json!(100000), json!(600)));
    assert_eq!(l["growth"], (json!(200000), json!(1200)));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_limit_from_a_named_value_is_changed_in_the_named_value() {
    let env = Env::with_plugins(&[]).await;
    let (policy_etag, _) = env.get(POLICY).await;
    let client = env.client((), SKIP).await;
    let result = call(&client, "update_quota", json!({"subscription_id": "data-science", "tpm": 40000})).await;
    assert_eq!(result.is_error, Some(false), "{}", text_of(&result));
    let (_, named) = env.get("namedValues/tpm-data-science").await;
    assert_eq!(named["properties"]["value"], "40000");
    assert_eq!(env.get(POLICY).await.0, policy_etag, "the policy was not touched");
    let l = limits(&call(&client, "list_subscriptions", json!({})).await.structured_content.unwrap());
    assert_eq!(l["data-science"].0, json!(40000));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_quota_change_planned_against_a_stale_policy_is_replanned_not_overwritten() {
    let env = Arc::new(Env::with_plugins(&[]).await);
    let confirmer = Confirmer::accepting_after_another_writer(env.clone(), "edited by the portal");
    let client = env.client(confirmer.clone(), &[]).await;
    let result = call(&client, "update_quota", json!({"subscription_id": "growth", "tpm": 150000})).await;
    assert_eq!(result.is_error, Some(false), "{}", text_of(&result));
    assert_eq!(confirmer.asked().len(), 2);
    let xml = env.policy_xml().await;
    assert!(xml.contains("edited by the portal") && xml.contains("150000"), "{xml}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn bad_quota_arguments_name_the_field() {
    let env = Env::with_plugins(&[]).await;
    let client = env.client((), SKIP).await;
    let none = call(&client, "update_quota", json!({"subscription_id": "growth"})).await;
    assert_eq!(none.is_error, Some(true));
    assert!(none.structured_content.unwrap()["error"]["field"].as_str().unwrap().contains("tpm"));
    let zero = call(&client, "update_quota", json!({"subscription_id": "growth", "tpm": 0})).await;
    assert_eq!(zero.structured_content.unwrap()["error"]["field"], "tpm");
    let missing = call(&client, "update_quota", json!({"subscription_id": "nope", "tpm": 5})).await;
    assert_eq!(missing.structured_content.unwrap()["error"]["kind"], "not-found");
    client.cancel().await.unwrap();
}
