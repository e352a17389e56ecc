//! The seeded sandbox tenant, as an ARM client sees it.

mod common;

use aigw_emulator::sandbox_service_id;
use common::*;
use reqwest::Method;

#[tokio::test]
async fn the_sandbox_service_is_apim_sandbox_in_east_us_on_standard_v2() {
    let e = Emu::start().await;
    let r = e.call(Method::GET, &e.url(&sandbox_service_id()), None, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["id"], sandbox_service_id());
    assert_eq!(r.body["name"], "apim-sandbox");
    assert_eq!(r.body["type"], "Microsoft.ApiManagement/service");
    assert_eq!(r.body["location"], "East US");
    assert_eq!(r.body["sku"]["name"], "StandardV2");
    assert_eq!(r.body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(r.body["properties"]["gatewayUrl"], "https://apim-sandbox.azure-api.net");
    assert_eq!(r.body["etag"].as_str().unwrap(), r.etag());
    let list = e.call(Method::GET, &e.url("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-ai-gateway/providers/Microsoft.ApiManagement/service"), None, &[]).await;
    assert_eq!(list.body["value"][0]["name"], "apim-sandbox");
    let list = e
        .call(
            Method::GET,
            &e.url("/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.ApiManagement/service"),
            None,
            &[],
        )
        .await;
    assert_eq!(list.body["value"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_aoai_product_has_the_five_team_subscriptions() {
    let e = Emu::start().await;
    let r = e.get("/products/aoai/subscriptions").await;
    assert_eq!(r.status, 200);
    let names: Vec<&str> = r.body["value"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["data-science", "growth", "prod-critical", "search", "support"]);
    assert_eq!(r.body["count"], 5);
    for s in r.body["value"].as_array().unwrap() {
        assert_eq!(s["properties"]["scope"], format!("{}/products/aoai", sandbox_service_id()));
        assert!(s["properties"]["ownerId"].as_str().unwrap().starts_with(&format!("{}/users/", sandbox_service_id())));
        assert_eq!(s["properties"]["state"], "active");
        assert!(s["properties"]["createdDate"].as_str().unwrap().starts_with("2025-"));
        assert!(s["properties"].get("primaryKey").is_none());
    }
    let growth = e.get("/subscriptions/growth").await;
    assert_eq!(growth.body["properties"]["displayName"], "Growth team");
}

#[tokio::test]
async fn master_is_the_built_in_all_access_subscription() {
    let e = Emu::start().await;
    let r = e.get("/subscriptions/master").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["properties"]["scope"], format!("{}/", sandbox_service_id()));
    assert_eq!(r.body["properties"]["displayName"], "Built-in all-access subscription");
    assert_eq!(r.body["properties"]["state"], "active");
    assert_eq!(r.body["properties"]["allowTracing"], false);
    let d = e.delete("/subscriptions/master", "*").await;
    assert_eq!(d.status, 400);
}

#[tokio::test]
async fn the_inference_api_has_the_chat_completions_operation_and_the_aoai_link() {
    let e = Emu::start().await;
    let api = e.get("/apis/inference-api").await;
    assert_eq!(api.body["properties"]["path"], "inference/openai");
    assert_eq!(api.body["properties"]["displayName"], "Inference API");
    let op = e.get("/apis/inference-api/operations/chat-completions").await;
    assert_eq!(op.body["properties"]["method"], "POST");
    assert!(op.body["properties"]["urlTemplate"].as_str().unwrap().contains("/chat/completions"));
    let linked = e.get("/products/aoai/apis").await;
    assert_eq!(linked.body["value"][0]["name"], "inference-api");
    let products = e.get("/apis/inference-api/products").await;
    assert_eq!(products.body["value"][0]["name"], "aoai");
}

#[tokio::test]
async fn the_limits_live_in_one_api_policy_with_choose_branches() {
    let e = Emu::start().await;
    let r = e.get("/apis/inference-api/policies/policy?format=rawxml").await;
    assert_eq!(r.status, 200);
    let xml = r.body["properties"]["value"].as_str().unwrap();
    for needle in [
        "<when condition=\"@(context.Subscription.Id == &quot;growth&quot;)\">",
        "tokens-per-minute=\"200000\"",
        "calls=\"1200\" renewal-period=\"60\" counter-key=\"@(context.Subscription.Id)\"",
        "context.Subscription.Id == \"prod-critical\"",
        "tokens-per-minute=\"400000\"",
        "calls=\"2400\"",
        "tokens-per-minute=\"{{tpm-data-science}}\"",
        "calls=\"300\"",
        "context.Product?.Id == \"aoai\"",
        "tokens-per-minute=\"100000\"",
        "calls=\"600\"",
        "<llm-emit-token-metric namespace=\"openai\">",
        "<dimension name=\"Subscription ID\" />",
        "<set-backend-service backend-id=\"aoai-pool\" />",
        "<retry count=\"1\"",
        "<forward-request buffer-request-body=\"true\" />",
        "\r\n\t\t<choose>\r\n",
    ] {
        assert!(xml.contains(needle), "policy lacks {needle}");
    }
    let nv = e.get("/namedValues/tpm-data-science").await;
    assert_eq!(nv.body["properties"]["value"], "50000");
}

#[tokio::test]
async fn east_us_is_a_breaker_protected_backend_in_the_pool_and_west_europe_is_not_a_backend() {
    let e = Emu::start().await;
    let east = e.get("/backends/aoai-eastus").await;
    assert_eq!(east.body["properties"]["url"], "https://aoai-eastus.openai.azure.com/openai");
    let rule = &east.body["properties"]["circuitBreaker"]["rules"][0];
    assert_eq!(rule["failureCondition"]["count"], 5);
    assert_eq!(rule["failureCondition"]["interval"], "PT1M");
    assert_eq!(rule["tripDuration"], "PT5M");
    assert_eq!(rule["acceptRetryAfter"], true);
    let pool = e.get("/backends/aoai-pool").await;
    assert_eq!(pool.body["properties"]["type"], "Pool");
    assert_eq!(pool.body["properties"]["url"], serde_json::Value::Null);
    assert_eq!(
        pool.body["properties"]["pool"]["services"][0]["id"],
        format!("{}/backends/aoai-eastus", sandbox_service_id())
    );
    assert_eq!(pool.body["properties"]["pool"]["services"][0]["priority"], 1);
    let all = e.get("/backends").await;
    assert_eq!(all.body["count"], 2);
    assert!(!all.text.contains("westeurope"));
    let state = e.admin(Method::GET, "/_emulator/state", None).await;
    assert!(state.text.contains("https://aoai-westeurope.openai.azure.com/openai"));
}

#[tokio::test]
async fn token_metrics_reach_application_insights_through_a_logger_and_diagnostic() {
    let e = Emu::start().await;
    let d = e.get("/apis/inference-api/diagnostics/applicationinsights").await;
    assert_eq!(d.status, 200);
    assert_eq!(d.body["properties"]["metrics"], true);
    assert_eq!(d.body["properties"]["loggerId"], format!("{}/loggers/appinsights-logger", sandbox_service_id()));
    let l = e.get("/loggers/appinsights-logger").await;
    assert_eq!(l.body["properties"]["loggerType"], "applicationInsights");
    let key = l.body["properties"]["credentials"]["instrumentationKey"].as_str().unwrap();
    assert!(key.starts_with("{{Logger-Credentials--"), "{key}");
}
