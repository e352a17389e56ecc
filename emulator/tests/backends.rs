//! Backends and pools, with circuit breakers, validated like APIM.

mod common;

use aigw_emulator::sandbox_service_id;
use common::*;
use serde_json::json;

fn west_europe() -> serde_json::Value {
    json!({"properties": {
        "url": "https://aoai-westeurope.openai.azure.com/openai",
        "protocol": "http",
        "circuitBreaker": {"rules": [{
            "name": "we-breaker",
            "failureCondition": {"count": 5, "interval": "PT1M", "statusCodeRanges": [{"min": 429, "max": 429}, {"min": 500, "max": 599}]},
            "tripDuration": "PT5M",
            "acceptRetryAfter": true
        }]}
    }})
}

#[tokio::test]
async fn adding_west_europe_at_priority_2_is_two_puts_with_relative_ids() {
    let e = Emu::start().await;
    let r = e.put("/backends/aoai-westeurope", west_europe()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["properties"]["type"], "Single");
    let pool = e.get("/backends/aoai-pool").await;
    let r = e
        .put_if(
            "/backends/aoai-pool",
            json!({"properties": {"type": "Pool", "description": "priority pool", "pool": {"services": [
                {"id": "/backends/aoai-eastus", "priority": 1, "weight": 1},
                {"id": "/backends/aoai-westeurope", "priority": 2, "weight": 1}
            ]}}}),
            &pool.etag(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let services = r.body["properties"]["pool"]["services"].as_array().unwrap();
    assert_eq!(services[1]["id"], format!("{}/backends/aoai-westeurope", sandbox_service_id()));
    assert_eq!(services[1]["priority"], 2);
    assert_eq!(r.body["properties"]["url"], serde_json::Value::Null);
    assert_eq!(r.body["properties"]["protocol"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_pool_can_only_list_existing_non_pool_backends_within_limits() {
    let e = Emu::start().await;
    let r = e
        .put(
            "/backends/bad-pool",
            json!({"properties": {"type": "Pool", "pool": {"services": [
                {"id": "/backends/ghost"},
                {"id": "/backends/aoai-pool"},
                {"id": "/backends/aoai-eastus", "priority": 101, "weight": 7},
                {"id": "/subscriptions/x/resourceGroups/y/providers/Microsoft.ApiManagement/service/z/backends/aoai-eastus"}
            ]}}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "ValidationError");
    let targets: Vec<&str> =
        r.body["error"]["details"].as_array().unwrap().iter().map(|d| d["target"].as_str().unwrap()).collect();
    assert_eq!(
        targets,
        ["pool.services[0].id", "pool.services[1].id", "pool.services[2].priority", "pool.services[3].id"]
    );
    assert!(r.detail_messages()[0].contains("Backend 'ghost' referenced by the pool does not exist"));
    let many: Vec<serde_json::Value> = (0..31).map(|_| json!({"id": "/backends/aoai-eastus"})).collect();
    let r = e.put("/backends/big", json!({"properties": {"type": "Pool", "pool": {"services": many}}})).await;
    assert!(r.detail_messages().iter().any(|m| m.contains("at most 30 backends")));
    assert_eq!(e.get("/backends/bad-pool").await.status, 404);
}

#[tokio::test]
async fn circuit_breaker_rules_need_iso_durations_and_status_codes_between_200_and_599() {
    let e = Emu::start().await;
    let r = e
        .put(
            "/backends/x",
            json!({"properties": {"url": "https://x.example.com", "protocol": "http", "circuitBreaker": {"rules": [{
                "name": "r",
                "failureCondition": {"count": 3, "interval": "60s", "statusCodeRanges": [{"min": 199, "max": 600}]},
                "tripDuration": "5 minutes"
            }]}}}),
        )
        .await;
    assert_eq!(r.status, 400);
    let targets: Vec<&str> =
        r.body["error"]["details"].as_array().unwrap().iter().map(|d| d["target"].as_str().unwrap()).collect();
    assert_eq!(
        targets,
        [
            "circuitBreaker.rules[0].failureCondition.interval",
            "circuitBreaker.rules[0].failureCondition.statusCodeRanges[0].min",
            "circuitBreaker.rules[0].failureCondition.statusCodeRanges[0].max",
            "circuitBreaker.rules[0].tripDuration"
        ]
    );
}

#[tokio::test]
async fn single_backends_need_an_absolute_url_and_a_protocol() {
    let e = Emu::start().await;
    let r = e.put("/backends/x", json!({"properties": {"url": "aoai.example.com"}})).await;
    let targets: Vec<&str> =
        r.body["error"]["details"].as_array().unwrap().iter().map(|d| d["target"].as_str().unwrap()).collect();
    assert_eq!(targets, ["url", "protocol"]);
}

#[tokio::test]
async fn a_backend_in_a_pool_cannot_be_deleted_until_it_leaves_the_pool() {
    let e = Emu::start().await;
    let r = e.delete("/backends/aoai-eastus", "*").await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "Conflict");
    assert!(r.message().contains("aoai-pool"));
    assert_eq!(e.delete("/backends/aoai-pool", "*").await.status, 200);
    assert_eq!(e.delete("/backends/aoai-eastus", "*").await.status, 200);
}

#[tokio::test]
async fn patching_a_breaker_keeps_the_rest_of_the_backend() {
    let e = Emu::start().await;
    let etag = e.get("/backends/aoai-eastus").await.etag();
    let r = e
        .patch(
            "/backends/aoai-eastus",
            json!({"properties": {"circuitBreaker": {"rules": [{"name": "r", "failureCondition": {"count": 1, "interval": "PT10S", "errorReasons": ["Server errors"]}, "tripDuration": "PT30S"}]}}}),
            &etag,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["properties"]["url"], "https://aoai-eastus.openai.azure.com/openai");
    assert_eq!(r.body["properties"]["circuitBreaker"]["rules"][0]["tripDuration"], "PT30S");
}

#[tokio::test]
async fn reconnect_is_accepted_with_202() {
    let e = Emu::start().await;
    assert_eq!(e.post("/backends/aoai-eastus/reconnect").await.status, 202);
    assert_eq!(e.post("/backends/ghost/reconnect").await.status, 404);
}
