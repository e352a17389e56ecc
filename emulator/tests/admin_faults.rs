//! The `/_emulator` admin endpoints: reset, fault injection, state dump.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn reset_brings_back_the_seed_with_the_same_keys() {
    let e = Emu::start().await;
    let keys = e.post("/subscriptions/growth/listSecrets").await.body;
    let old_etag = e.get("/subscriptions/growth").await.etag();
    e.delete("/subscriptions/growth", "*").await;
    e.put("/products/extra", json!({"properties": {"displayName": "Extra"}})).await;
    let r = e.admin(Method::POST, "/_emulator/reset", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["reset"], true);
    assert_eq!(e.get("/products/extra").await.status, 404);
    let g = e.get("/subscriptions/growth").await;
    assert_eq!(g.status, 200);
    assert_eq!(g.etag(), old_etag, "the seed's entities come back as they were");
    assert_eq!(e.post("/subscriptions/growth/listSecrets").await.body, keys);
    // New writes after a reset never reuse an ETag handed out before it.
    let w = e.patch("/subscriptions/growth", json!({"properties": {"stateComment": "x"}}), "*").await;
    assert_ne!(w.etag(), old_etag);
}

#[tokio::test]
async fn an_injected_429_carries_retry_after_and_the_arm_throttling_error() {
    let e = Emu::start().await;
    let r = e
        .admin(
            Method::POST,
            "/_emulator/faults",
            Some(json!({"path": "*/subscriptions*", "method": "GET", "status": 429, "retryAfter": 2, "count": 2})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("fault-"));
    for _ in 0..2 {
        let r = e.get("/subscriptions").await;
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after").as_deref(), Some("2"));
        assert_eq!(r.code(), "SubscriptionRequestsThrottled");
        assert!(
            r.message().contains("Number of 'read' requests for subscription '00000000-0000-0000-0000-000000000000'")
        );
        assert!(r.header("x-ms-request-id").is_some());
    }
    assert_eq!(e.get("/subscriptions").await.status, 200, "count: 2 means two faults, then normal service");
    // Other paths and methods were never affected.
    assert_eq!(e.get("/apis").await.status, 200);
}

#[tokio::test]
async fn faults_match_by_method_and_path_until_cleared() {
    let e = Emu::start().await;
    e.admin(Method::POST, "/_emulator/faults", Some(json!({"path": "*/backends/*", "method": "PUT", "status": 503})))
        .await;
    e.admin(
        Method::POST,
        "/_emulator/faults",
        Some(json!({"path": "^.*/namedValues$", "status": 500, "code": "InternalServerError", "message": "boom"})),
    )
    .await;
    let r = e.put("/backends/b", json!({"properties": {"url": "https://b.example", "protocol": "http"}})).await;
    assert_eq!((r.status, r.code()), (503, "ServiceUnavailable"));
    assert_eq!(e.get("/backends/aoai-eastus").await.status, 200);
    let r = e.get("/namedValues").await;
    assert_eq!((r.status, r.code(), r.message()), (500, "InternalServerError", "boom"));
    assert_eq!(e.get("/namedValues/tpm-data-science").await.status, 200);
    let list = e.admin(Method::GET, "/_emulator/faults", None).await;
    assert_eq!(list.body["value"].as_array().unwrap().len(), 2);
    assert_eq!(list.body["value"][0]["fired"], 1);
    let cleared = e.admin(Method::DELETE, "/_emulator/faults", None).await;
    assert_eq!(cleared.body["cleared"], 2);
    assert_eq!(
        e.put("/backends/b", json!({"properties": {"url": "https://b.example", "protocol": "http"}})).await.status,
        201
    );
}

#[tokio::test]
async fn a_single_fault_can_be_removed_by_id() {
    let e = Emu::start().await;
    let a = e.admin(Method::POST, "/_emulator/faults", Some(json!({"path": "*/apis", "status": 500}))).await;
    let id = a.body["id"].as_str().unwrap();
    assert_eq!(e.get("/apis").await.status, 500);
    assert_eq!(e.admin(Method::DELETE, &format!("/_emulator/faults/{id}"), None).await.status, 204);
    assert_eq!(e.admin(Method::DELETE, &format!("/_emulator/faults/{id}"), None).await.status, 404);
    assert_eq!(e.get("/apis").await.status, 200);
}

#[tokio::test]
async fn added_latency_delays_the_real_answer() {
    let e = Emu::start().await;
    e.admin(Method::POST, "/_emulator/faults", Some(json!({"path": "*/products/aoai", "latencyMs": 300, "count": 1})))
        .await;
    let t = Instant::now();
    let r = e.get("/products/aoai").await;
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.status, 200);
    let t = Instant::now();
    e.get("/products/aoai").await;
    assert!(t.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn a_dropped_connection_gives_the_client_a_transport_error() {
    let e = Emu::start().await;
    e.admin(Method::POST, "/_emulator/faults", Some(json!({"path": "*/apis", "drop": true, "count": 1}))).await;
    let r = e.http.get(e.svc("/apis")).header("authorization", format!("Bearer {TOKEN}")).send().await;
    assert!(r.is_err(), "expected a transport error, got {:?}", r.map(|r| r.status()));
    assert_eq!(e.get("/apis").await.status, 200);
}

#[tokio::test]
async fn rate_zero_never_fires_and_invalid_rules_are_refused() {
    let e = Emu::start().await;
    e.admin(Method::POST, "/_emulator/faults", Some(json!({"status": 500, "rate": 0.0}))).await;
    for _ in 0..20 {
        assert_eq!(e.get("/apis").await.status, 200);
    }
    for bad in [
        json!({"status": 200}),
        json!({}),
        json!({"status": 500, "rate": 1.5}),
        json!({"status": 500, "path": "^("}),
        json!({"status": 500, "bogus": 1}),
    ] {
        let r = e.admin(Method::POST, "/_emulator/faults", Some(bad.clone())).await;
        assert_eq!(r.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn faults_never_touch_admin_endpoints_and_auth_comes_first() {
    let e = Emu::start().await;
    e.admin(Method::POST, "/_emulator/faults", Some(json!({"status": 503}))).await;
    assert_eq!(e.admin(Method::GET, "/_emulator/state", None).await.status, 200);
    let r = e.http.get(e.svc("/apis")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(e.get("/apis").await.status, 503);
}

#[tokio::test]
async fn the_state_dump_redacts_keys_unless_asked() {
    let e = Emu::start().await;
    let key = e.post("/subscriptions/growth/listSecrets").await.body["primaryKey"].as_str().unwrap().to_string();
    let s = e.admin(Method::GET, "/_emulator/state", None).await;
    assert_eq!(s.status, 200);
    assert!(s.text.contains("apim-sandbox") && !s.text.contains(&key));
    assert!(s.text.contains("<redacted>"));
    let s = e.admin(Method::GET, "/_emulator/state?secrets=true", None).await;
    assert!(s.text.contains(&key));
    let index = e.admin(Method::GET, "/_emulator", None).await;
    assert!(index.body["endpoints"]["POST /_emulator/faults"].is_string());
}
