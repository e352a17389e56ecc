//! ETags and If-Match: what protects one writer from overwriting another.

mod common;

use common::*;
use serde_json::json;

fn product(name: &str) -> serde_json::Value {
    json!({"properties": {"displayName": name}})
}

#[tokio::test]
async fn put_creates_with_201_then_updates_with_200_and_the_etag_changes_every_time() {
    let e = Emu::start().await;
    let a = e.put("/products/gold", product("Gold")).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["properties"]["state"], "notPublished");
    let b = e.put("/products/gold", product("Gold tier")).await;
    assert_eq!(b.status, 200);
    assert_ne!(a.etag(), b.etag());
    let g = e.get("/products/gold").await;
    assert_eq!(g.etag(), b.etag());
    assert_eq!(g.body["properties"]["displayName"], "Gold tier");
    let p = e.patch("/products/gold", json!({"properties": {"state": "published"}}), &g.etag()).await;
    assert_eq!(p.status, 200);
    assert_ne!(p.etag(), g.etag());
    assert_eq!(p.body["properties"]["displayName"], "Gold tier");
    assert_eq!(p.body["properties"]["state"], "published");
}

#[tokio::test]
async fn a_write_with_a_stale_etag_fails_with_412_and_changes_nothing() {
    let e = Emu::start().await;
    let first = e.get("/subscriptions/growth").await;
    let stale = first.etag();
    let ok = e.patch("/subscriptions/growth", json!({"properties": {"stateComment": "first writer"}}), &stale).await;
    assert_eq!(ok.status, 200);
    for r in [
        e.patch("/subscriptions/growth", json!({"properties": {"stateComment": "second writer"}}), &stale).await,
        e.put_if(
            "/subscriptions/growth",
            json!({"properties": {"displayName": "x", "scope": "/products/aoai"}}),
            &stale,
        )
        .await,
        e.delete("/subscriptions/growth", &stale).await,
    ] {
        assert_eq!(r.status, 412, "{}", r.text);
        assert_eq!(r.code(), "PreconditionFailed");
        assert!(r.message().contains("growth"));
    }
    let now = e.get("/subscriptions/growth").await;
    assert_eq!(now.body["properties"]["stateComment"], "first writer");
    assert_eq!(now.etag(), ok.etag());
}

#[tokio::test]
async fn patch_and_delete_require_if_match_but_star_is_enough() {
    let e = Emu::start().await;
    let r = e
        .call(
            reqwest::Method::PATCH,
            &e.svc("/subscriptions/growth"),
            Some(&json!({"properties": {"state": "suspended"}})),
            &[],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "ValidationError");
    assert_eq!(r.body["error"]["details"][0]["target"], "If-Match");
    let r = e.call(reqwest::Method::DELETE, &e.svc("/subscriptions/growth"), None, &[]).await;
    assert_eq!(r.status, 400);
    let r = e.patch("/subscriptions/growth", json!({"properties": {"state": "suspended"}}), "*").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["properties"]["state"], "suspended");
}

#[tokio::test]
async fn put_without_if_match_is_an_upsert_and_with_a_matching_etag_succeeds() {
    let e = Emu::start().await;
    let g = e.get("/products/aoai").await;
    let r = e
        .put_if(
            "/products/aoai",
            json!({"properties": {"displayName": "Azure OpenAI", "state": "published"}}),
            &g.etag(),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = e
        .put("/products/aoai", json!({"properties": {"displayName": "Azure OpenAI (shared)", "state": "published"}}))
        .await;
    assert_eq!(r.status, 200);
    // A specific ETag for something that does not exist cannot match.
    let r = e.put_if("/products/new-one", product("New"), "AAAAAAAAAAE=").await;
    assert_eq!(r.status, 412);
    let r = e.put_if("/products/new-one", product("New"), "*").await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn delete_answers_200_when_it_deleted_and_204_when_nothing_was_there() {
    let e = Emu::start().await;
    e.put("/products/tmp", product("Tmp")).await;
    assert_eq!(e.delete("/products/tmp", "*").await.status, 200);
    assert_eq!(e.delete("/products/tmp", "*").await.status, 204);
    assert_eq!(e.get("/products/tmp").await.status, 404);
}

#[tokio::test]
async fn if_match_accepts_unquoted_weak_and_listed_etags() {
    let e = Emu::start().await;
    let forms: [fn(&str) -> String; 4] =
        [|t| t.to_string(), |t| format!("\"{t}\""), |t| format!("W/\"{t}\""), |t| format!("\"AAAAAAAAAAA=\", \"{t}\"")];
    for form in forms {
        let etag = e.get("/products/aoai").await.etag();
        let header = form(&etag);
        let r = e
            .call(
                reqwest::Method::PATCH,
                &e.svc("/products/aoai"),
                Some(&json!({"properties": {"terms": header.clone()}})),
                &[("if-match", &header)],
            )
            .await;
        assert_eq!(r.status, 200, "{header}: {}", r.text);
        assert_ne!(r.etag(), etag);
    }
}

#[tokio::test]
async fn etags_never_repeat_across_entities_or_after_delete_and_recreate() {
    let e = Emu::start().await;
    let mut seen = std::collections::HashSet::new();
    for i in 0..5 {
        let r = e.put("/products/p", product(&format!("P{i}"))).await;
        assert!(seen.insert(r.etag()));
        let r = e
            .put(&format!("/namedValues/n{i}"), json!({"properties": {"displayName": format!("n{i}"), "value": "v"}}))
            .await;
        assert!(seen.insert(r.etag()));
        e.delete("/products/p", "*").await;
    }
}
