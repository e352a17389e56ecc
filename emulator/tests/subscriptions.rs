//! APIM subscriptions: keys stay secret, scopes and owners are full ids, actions work.

mod common;

use aigw_emulator::sandbox_service_id;
use common::*;
use serde_json::json;

#[tokio::test]
async fn keys_never_appear_in_get_list_put_or_patch_responses() {
    let e = Emu::start().await;
    let secrets = e.post("/subscriptions/growth/listSecrets").await;
    let pk = secrets.body["primaryKey"].as_str().unwrap().to_string();
    let sk = secrets.body["secondaryKey"].as_str().unwrap().to_string();
    assert_eq!(pk.len(), 32);
    assert_ne!(pk, sk);
    let created = e.put("/subscriptions/team-a", json!({"properties": {"displayName": "Team A", "scope": "/products/aoai", "primaryKey": "my-own-primary-key-0001"}})).await;
    let patched = e.patch("/subscriptions/growth", json!({"properties": {"stateComment": "x"}}), "*").await;
    for r in [
        e.get("/subscriptions/growth").await,
        e.get("/subscriptions").await,
        e.get("/products/aoai/subscriptions").await,
        created,
        patched,
    ] {
        assert!(!r.text.contains(&pk) && !r.text.contains(&sk), "{}", r.text);
        assert!(!r.text.contains("primaryKey") && !r.text.contains("secondaryKey"), "{}", r.text);
        assert!(!r.text.contains("my-own-primary-key-0001"));
    }
    let own = e.post("/subscriptions/team-a/listSecrets").await;
    assert_eq!(own.body["primaryKey"], "my-own-primary-key-0001");
    assert_eq!(own.body["secondaryKey"].as_str().unwrap().len(), 32);
}

#[tokio::test]
async fn list_secrets_returns_the_keys_with_the_etag() {
    let e = Emu::start().await;
    let g = e.get("/subscriptions/search").await;
    let s = e.post("/subscriptions/search/listSecrets").await;
    assert_eq!(s.status, 200);
    assert_eq!(s.etag(), g.etag());
    assert_eq!(e.post("/subscriptions/nope/listSecrets").await.status, 404);
    let r = e.get("/subscriptions/search/listSecrets").await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn regenerating_a_key_answers_204_replaces_only_that_key_and_changes_the_etag() {
    let e = Emu::start().await;
    let before = e.post("/subscriptions/support/listSecrets").await;
    let etag = e.get("/subscriptions/support").await.etag();
    let r = e.post("/subscriptions/support/regeneratePrimaryKey").await;
    assert_eq!(r.status, 204);
    let after = e.post("/subscriptions/support/listSecrets").await;
    assert_ne!(after.body["primaryKey"], before.body["primaryKey"]);
    assert_eq!(after.body["secondaryKey"], before.body["secondaryKey"]);
    assert_ne!(e.get("/subscriptions/support").await.etag(), etag);
    assert_eq!(e.post("/subscriptions/support/regenerateSecondaryKey").await.status, 204);
    let last = e.post("/subscriptions/support/listSecrets").await;
    assert_ne!(last.body["secondaryKey"], before.body["secondaryKey"]);
}

#[tokio::test]
async fn scope_and_owner_come_back_as_full_resource_ids() {
    let e = Emu::start().await;
    let sid = sandbox_service_id();
    let r = e.put("/subscriptions/team-b", json!({"properties": {"displayName": "Team B", "scope": "/products/aoai", "ownerId": "/users/lena-fischer"}})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["properties"]["scope"], format!("{sid}/products/aoai"));
    assert_eq!(r.body["properties"]["ownerId"], format!("{sid}/users/lena-fischer"));
    assert_eq!(r.body["properties"]["state"], "submitted");
    assert!(r.body["properties"]["createdDate"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r.body["id"], format!("{sid}/subscriptions/team-b"));
    assert_eq!(r.body["type"], "Microsoft.ApiManagement/service/subscriptions");
    // Full ids are accepted too, as are /apis scopes.
    let r = e
        .put(
            "/subscriptions/all-apis",
            json!({"properties": {"displayName": "All", "scope": format!("{sid}/apis"), "state": "active"}}),
        )
        .await;
    assert_eq!(r.body["properties"]["scope"], format!("{sid}/apis"));
    assert!(r.body["properties"]["startDate"].as_str().unwrap().ends_with("T00:00:00Z"));
    let r = e
        .put("/subscriptions/one-api", json!({"properties": {"displayName": "One", "scope": "/apis/inference-api"}}))
        .await;
    assert_eq!(r.body["properties"]["scope"], format!("{sid}/apis/inference-api"));
}

#[tokio::test]
async fn invalid_subscriptions_are_refused_with_errors_that_name_the_field() {
    let e = Emu::start().await;
    let r = e
        .put(
            "/subscriptions/bad",
            json!({"properties": {"scope": "/products/nope", "ownerId": "/users/ghost", "state": "paused"}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "ValidationError");
    assert_eq!(r.message(), "One or more fields contain incorrect values:");
    let targets: Vec<&str> =
        r.body["error"]["details"].as_array().unwrap().iter().map(|d| d["target"].as_str().unwrap()).collect();
    assert!(
        targets.contains(&"displayName")
            && targets.contains(&"scope")
            && targets.contains(&"ownerId")
            && targets.contains(&"state"),
        "{targets:?}"
    );
    assert!(r.detail_messages().iter().any(|m| m.contains("Product 'nope'")));
    let r = e.put("/subscriptions/a:b", json!({"properties": {"displayName": "x", "scope": "/apis"}})).await;
    assert_eq!(r.status, 400);
    assert_eq!(e.get("/subscriptions/bad").await.status, 404);
}

#[tokio::test]
async fn suspending_and_reactivating_a_subscription_is_a_patch_of_state() {
    let e = Emu::start().await;
    let r = e
        .patch(
            "/subscriptions/growth",
            json!({"properties": {"state": "suspended", "stateComment": "Over budget"}}),
            "*",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["properties"]["state"], "suspended");
    assert_eq!(r.body["properties"]["displayName"], "Growth team");
    let r = e.get("/subscriptions?$filter=state eq 'suspended'").await;
    assert_eq!(r.body["count"], 1);
    let r = e.patch("/subscriptions/growth", json!({"properties": {"state": "active"}}), "*").await;
    assert_eq!(r.body["properties"]["state"], "active");
}

#[tokio::test]
async fn user_subscriptions_list_what_a_user_owns() {
    let e = Emu::start().await;
    let r = e.get("/users/priya-raman/subscriptions").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["count"], 1);
    assert_eq!(r.body["value"][0]["name"], "growth");
    let u = e.get("/users/priya-raman").await;
    assert_eq!(u.body["properties"]["email"], "priya.raman@contoso.com");
    assert_eq!(e.get("/users/ghost/subscriptions").await.status, 404);
}

#[tokio::test]
async fn deleting_a_subscription_removes_it_from_every_list() {
    let e = Emu::start().await;
    assert_eq!(e.delete("/subscriptions/search", "*").await.status, 200);
    let r = e.get("/products/aoai/subscriptions").await;
    assert_eq!(r.body["count"], 4);
    assert_eq!(e.post("/subscriptions/search/listSecrets").await.status, 404);
}
