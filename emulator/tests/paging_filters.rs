//! Paging (100 per page, $top, $skip, nextLink, count) and $filter on every collection.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

async fn add_subscriptions(e: &Emu, n: usize) {
    for i in 0..n {
        let r = e
            .put(&format!("/subscriptions/team-{i:04}"), json!({"properties": {"displayName": format!("Team {i:04}"), "scope": "/products/aoai", "state": if i % 10 == 0 { "suspended" } else { "active" }}}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
}

#[tokio::test]
async fn listing_1000_subscriptions_follows_next_links_100_at_a_time() {
    let e = Emu::start().await;
    add_subscriptions(&e, 1000).await;
    let mut url = e.svc("/subscriptions");
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let r = e.call(Method::GET, &url, None, &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["count"], 1006);
        let value = r.body["value"].as_array().unwrap();
        pages += 1;
        names.extend(value.iter().map(|s| s["name"].as_str().unwrap().to_string()));
        match r.body.get("nextLink").and_then(|l| l.as_str()).filter(|l| !l.is_empty()) {
            Some(next) => {
                assert_eq!(value.len(), 100);
                assert!(next.starts_with(&e.running.base_url), "nextLink must be absolute: {next}");
                assert!(next.contains("api-version=2024-05-01"));
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 11);
    assert_eq!(names.len(), 1006);
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 1006, "no duplicates or gaps across pages");
}

#[tokio::test]
async fn top_and_skip_select_a_window_and_next_link_keeps_the_filter() {
    let e = Emu::start().await;
    add_subscriptions(&e, 250).await;
    let r = e.get("/subscriptions?$top=7&$skip=3").await;
    let names: Vec<&str> = r.body["value"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 7);
    assert_eq!(names[0], "prod-critical");
    let next = r.body["nextLink"].as_str().unwrap();
    assert!(next.contains("%24top=7") && next.contains("%24skip=10"), "{next}");

    let r = e.get("/subscriptions?$filter=startswith(name,'team-00')&$top=50").await;
    assert_eq!(r.body["count"], 100);
    let next = r.body["nextLink"].as_str().unwrap().to_string();
    assert!(next.contains("%24filter="));
    let r2 = e.call(Method::GET, &next, None, &[]).await;
    assert_eq!(r2.body["value"].as_array().unwrap().len(), 50);
    assert_eq!(r2.body["nextLink"], "", "the last page ends with an empty nextLink, as Azure's do");
    assert!(r2.body["value"].as_array().unwrap().iter().all(|s| s["name"].as_str().unwrap().starts_with("team-00")));

    let r = e.get("/subscriptions?$top=1000").await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 100, "page size is capped at 100");
    let r = e.get("/subscriptions?$skip=5000").await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 0);
    assert_eq!(r.body["count"], 256);
}

#[tokio::test]
async fn next_link_is_built_from_the_host_the_client_used() {
    let e = Emu::start().await;
    add_subscriptions(&e, 120).await;
    let r = e.call(Method::GET, &e.svc("/subscriptions"), None, &[("host", "management.example.test:8443")]).await;
    assert!(r.body["nextLink"].as_str().unwrap().starts_with("http://management.example.test:8443/subscriptions/"));
}

#[tokio::test]
async fn bad_paging_parameters_are_validation_errors() {
    let e = Emu::start().await;
    for (q, target) in [("$top=0", "$top"), ("$top=abc", "$top"), ("$skip=-1", "$skip")] {
        let r = e.get(&format!("/subscriptions?{q}")).await;
        assert_eq!(r.status, 400, "{q}");
        assert_eq!(r.body["error"]["details"][0]["target"], target);
    }
}

#[tokio::test]
async fn subscription_filters_cover_the_documented_fields() {
    let e = Emu::start().await;
    add_subscriptions(&e, 30).await;
    let count = |r: &Resp| r.body["count"].as_u64().unwrap();
    assert_eq!(count(&e.get("/subscriptions?$filter=name eq 'growth'").await), 1);
    assert_eq!(
        count(&e.get("/subscriptions?$filter=displayName eq 'GROWTH TEAM'").await),
        1,
        "string comparison ignores case"
    );
    assert_eq!(count(&e.get("/subscriptions?$filter=state eq 'suspended'").await), 3);
    assert_eq!(count(&e.get("/subscriptions?$filter=productId eq 'aoai'").await), 35);
    assert_eq!(count(&e.get("/subscriptions?$filter=userId eq 'marcus-lee'").await), 1);
    assert_eq!(
        count(&e.get("/subscriptions?$filter=contains(scope,'/products/aoai') and not startswith(name,'team')").await),
        5
    );
    assert_eq!(count(&e.get("/subscriptions?$filter=endswith(ownerId,'/users/1')").await), 1);
    assert_eq!(count(&e.get("/subscriptions?$filter=substringof('Prod', displayName) or name eq 'search'").await), 2);
    let r = e.get("/products/aoai/subscriptions?$filter=state eq 'active' and startswith(name,'team-000')").await;
    assert_eq!(count(&r), 9);
}

#[tokio::test]
async fn filters_outside_the_documented_subset_are_refused_with_the_reason() {
    let e = Emu::start().await;
    let r = e.get("/subscriptions?$filter=state ne 'active'").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["details"][0]["target"], "$filter");
    assert!(r.detail_messages()[0].contains("only 'eq' is supported for field 'state'"));
    let r = e.get("/subscriptions?$filter=primaryKey eq 'x'").await;
    assert!(r.detail_messages()[0].contains("field 'primaryKey' is not supported"));
    let r = e.get("/apis/inference-api/policies?$filter=name eq 'policy'").await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn other_collections_filter_on_their_own_fields() {
    let e = Emu::start().await;
    let count = |r: &Resp| r.body["count"].as_u64().unwrap();
    assert_eq!(count(&e.get("/products?$filter=state eq 'published'").await), 1);
    assert_eq!(count(&e.get("/products?$filter=contains(displayName,'openai')").await), 1);
    assert_eq!(count(&e.get("/apis?$filter=path eq 'inference/openai'").await), 1);
    assert_eq!(count(&e.get("/apis?$filter=isCurrent eq true").await), 1);
    assert_eq!(count(&e.get("/backends?$filter=startswith(url,'https://aoai-eastus')").await), 1);
    assert_eq!(count(&e.get("/backends?$filter=name eq 'aoai-pool'").await), 1);
    assert_eq!(count(&e.get("/namedValues?$filter=tags/any(t: t eq 'quota')").await), 1);
    assert_eq!(count(&e.get("/namedValues?$filter=startswith(displayName,'tpm-')").await), 1);
    assert_eq!(count(&e.get("/apis/inference-api/operations?$filter=method eq 'POST'").await), 1);
    assert_eq!(count(&e.get("/loggers?$filter=loggerType eq 'applicationInsights'").await), 1);
    assert_eq!(count(&e.get("/users?$filter=endswith(email,'@contoso.com')").await), 6);
}
