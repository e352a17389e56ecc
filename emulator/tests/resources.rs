//! Products, API links, APIs, operations, named values, loggers, diagnostics, users, services.

mod common;

use aigw_emulator::sandbox_service_id;
use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_product_can_be_created_linked_to_the_api_and_deleted_with_its_subscriptions() {
    let e = Emu::start().await;
    let sid = sandbox_service_id();
    let r = e
        .put(
            "/products/gold",
            json!({"properties": {"displayName": "Gold", "state": "published", "subscriptionsLimit": 5}}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["properties"]["subscriptionRequired"], true);
    let link = e.put("/products/gold/apis/inference-api", json!({})).await;
    assert_eq!(link.status, 201);
    assert_eq!(link.body["name"], "inference-api");
    assert_eq!(e.put("/products/gold/apis/inference-api", json!({})).await.status, 200);
    assert_eq!(e.head("/products/gold/apis/inference-api").await.status, 204);
    let links = e.get("/products/gold/apiLinks").await;
    assert_eq!(links.body["value"][0]["properties"]["apiId"], format!("{sid}/apis/inference-api"));
    assert_eq!(links.body["value"][0]["type"], "Microsoft.ApiManagement/service/products/apiLinks");
    e.put("/subscriptions/gold-1", json!({"properties": {"displayName": "Gold 1", "scope": "/products/gold"}})).await;
    let r = e.delete("/products/gold", "*").await;
    assert_eq!(r.status, 409);
    let r = e.call(Method::DELETE, &e.svc("/products/gold?deleteSubscriptions=true"), None, &[("if-match", "*")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(e.get("/subscriptions/gold-1").await.status, 404);
    assert_eq!(e.get("/apis/inference-api/products").await.body["count"], 1);
}

#[tokio::test]
async fn api_links_can_be_made_with_the_apilinks_form_and_removed() {
    let e = Emu::start().await;
    e.put("/products/silver", json!({"properties": {"displayName": "Silver"}})).await;
    let r = e
        .put("/products/silver/apiLinks/silver-inference", json!({"properties": {"apiId": "/apis/inference-api"}}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["properties"]["apiId"], format!("{}/apis/inference-api", sandbox_service_id()));
    assert_eq!(e.get("/products/silver/apis").await.body["count"], 1);
    let r = e.put("/products/silver/apiLinks/x", json!({"properties": {"apiId": "/apis/ghost"}})).await;
    assert_eq!(r.status, 400);
    assert_eq!(e.delete("/products/silver/apis/inference-api", "*").await.status, 200);
    assert_eq!(e.head("/products/silver/apis/inference-api").await.status, 404);
    assert_eq!(e.get("/products/silver/apiLinks").await.body["count"], 0);
}

#[tokio::test]
async fn products_need_a_display_name_and_a_known_state() {
    let e = Emu::start().await;
    let r = e
        .put(
            "/products/p",
            json!({"properties": {"state": "live", "subscriptionRequired": false, "approvalRequired": true}}),
        )
        .await;
    assert_eq!(r.status, 400);
    let targets: Vec<&str> =
        r.body["error"]["details"].as_array().unwrap().iter().map(|d| d["target"].as_str().unwrap()).collect();
    assert_eq!(targets, ["displayName", "state", "approvalRequired"]);
}

#[tokio::test]
async fn apis_and_operations_have_their_full_lifecycle() {
    let e = Emu::start().await;
    let r = e.put("/apis/embeddings", json!({"properties": {"displayName": "Embeddings", "path": "inference/embeddings", "protocols": ["https"]}})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["properties"]["isCurrent"], true);
    assert_eq!(r.body["properties"]["subscriptionKeyParameterNames"]["header"], "Ocp-Apim-Subscription-Key");
    let clash = e.put("/apis/other", json!({"properties": {"displayName": "Other", "path": "inference/openai"}})).await;
    assert_eq!(clash.status, 400);
    assert!(clash.detail_messages()[0].contains("already used by API 'inference-api'"));
    let op = e.put("/apis/embeddings/operations/create", json!({"properties": {"displayName": "Create", "method": "post", "urlTemplate": "/deployments/{id}/embeddings"}})).await;
    assert_eq!(op.status, 201);
    assert_eq!(op.body["properties"]["method"], "POST");
    assert_eq!(op.body["type"], "Microsoft.ApiManagement/service/apis/operations");
    let bad = e.put("/apis/embeddings/operations/bad", json!({"properties": {"displayName": "Bad"}})).await;
    assert_eq!(bad.status, 400);
    assert_eq!(e.get("/apis/embeddings;rev=1").await.status, 200);
    let rev2 = e.get("/apis/embeddings;rev=2").await;
    assert_eq!(rev2.status, 400, "other revisions are refused as not emulated, not hidden as missing");
    assert!(rev2.message().contains("revision '2'") && rev2.message().contains("not emulated"), "{}", rev2.text);
    assert_eq!(e.get("/apis/nope;rev=2").await.status, 404);
    let p = e.patch("/apis/embeddings", json!({"properties": {"description": "Vectors"}}), "*").await;
    assert_eq!(p.body["properties"]["path"], "inference/embeddings");
    e.put("/subscriptions/emb", json!({"properties": {"displayName": "E", "scope": "/apis/embeddings"}})).await;
    // API delete is long-running in Azure (202 or 204); the emulator is done at once.
    assert_eq!(e.delete("/apis/embeddings", "*").await.status, 204);
    assert_eq!(e.get("/apis/embeddings/operations/create").await.status, 404);
    assert_eq!(e.get("/subscriptions/emb").await.status, 404);
    let imp = e
        .put(
            "/apis/imported",
            json!({"properties": {"displayName": "I", "path": "i", "format": "openapi+json", "value": "{}"}}),
        )
        .await;
    assert_eq!(imp.status, 400);
}

#[tokio::test]
async fn secret_named_values_never_show_their_value_except_through_list_value() {
    let e = Emu::start().await;
    let r = e.put("/namedValues/aoai-key", json!({"properties": {"displayName": "aoai-key", "value": "s3cr3t-value-xyz", "secret": true, "tags": ["aoai"]}})).await;
    assert_eq!(r.status, 201);
    for r in [
        r,
        e.get("/namedValues/aoai-key").await,
        e.get("/namedValues").await,
        e.patch("/namedValues/aoai-key", json!({"properties": {"tags": ["x"]}}), "*").await,
    ] {
        assert!(!r.text.contains("s3cr3t-value-xyz"), "{}", r.text);
    }
    let v = e.post("/namedValues/aoai-key/listValue").await;
    assert_eq!(v.status, 200);
    assert_eq!(v.body["value"], "s3cr3t-value-xyz");
    let plain = e.get("/namedValues/tpm-data-science").await;
    assert_eq!(plain.body["properties"]["value"], "50000");
    let state = e.admin(Method::GET, "/_emulator/state", None).await;
    assert!(!state.text.contains("s3cr3t-value-xyz"));
}

#[tokio::test]
async fn named_values_are_validated_and_cannot_be_deleted_while_a_policy_uses_them() {
    let e = Emu::start().await;
    let r = e.put("/namedValues/bad", json!({"properties": {"displayName": "has space", "tags": "x"}})).await;
    let targets: Vec<&str> =
        r.body["error"]["details"].as_array().unwrap().iter().map(|d| d["target"].as_str().unwrap()).collect();
    assert_eq!(targets, ["displayName", "value", "tags"]);
    let r = e.put("/namedValues/dup", json!({"properties": {"displayName": "tpm-data-science", "value": "1"}})).await;
    assert!(r.detail_messages()[0].contains("already used"));
    let r = e.delete("/namedValues/tpm-data-science", "*").await;
    assert_eq!(r.status, 409);
    assert!(r.message().contains("API 'inference-api'"));
    let etag = e.get("/namedValues/tpm-data-science").await.etag();
    let r = e.patch("/namedValues/tpm-data-science", json!({"properties": {"value": "75000"}}), &etag).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["properties"]["value"], "75000");
    assert_eq!(r.body["properties"]["displayName"], "tpm-data-science");
}

#[tokio::test]
async fn logger_credentials_are_moved_into_a_secret_named_value() {
    let e = Emu::start().await;
    let r = e.put("/loggers/ai2", json!({"properties": {"loggerType": "applicationInsights", "credentials": {"instrumentationKey": "11112222-3333-4444-5555-666677778888"}}})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(!r.text.contains("11112222-3333"));
    let reference = r.body["properties"]["credentials"]["instrumentationKey"].as_str().unwrap();
    let nv = reference.trim_matches(|c| c == '{' || c == '}');
    let v = e.post(&format!("/namedValues/{nv}/listValue")).await;
    assert_eq!(v.body["value"], "11112222-3333-4444-5555-666677778888");
    assert_eq!(r.body["properties"]["isBuffered"], true);
    let bad = e.put("/loggers/x", json!({"properties": {"loggerType": "splunk"}})).await;
    assert_eq!(bad.status, 400);
    let r = e.delete("/loggers/appinsights-logger", "*").await;
    assert_eq!(r.status, 409);
}

#[tokio::test]
async fn diagnostics_point_at_existing_loggers_by_full_id() {
    let e = Emu::start().await;
    let r = e.put("/diagnostics/applicationinsights", json!({"properties": {"loggerId": "/loggers/appinsights-logger", "metrics": true, "sampling": {"samplingType": "fixed", "percentage": 50}}})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["properties"]["loggerId"], format!("{}/loggers/appinsights-logger", sandbox_service_id()));
    let r = e
        .put("/apis/inference-api/diagnostics/azuremonitor", json!({"properties": {"loggerId": "/loggers/ghost"}}))
        .await;
    assert_eq!(r.status, 400);
    let r = e.put("/diagnostics/custom", json!({"properties": {"loggerId": "/loggers/appinsights-logger"}})).await;
    assert_eq!(r.status, 400);
    let r = e
        .put(
            "/diagnostics/applicationinsights",
            json!({"properties": {"loggerId": "/loggers/appinsights-logger", "sampling": {"percentage": 150}}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(e.get("/apis/inference-api/diagnostics").await.body["count"], 1);
}

#[tokio::test]
async fn users_can_be_created_and_own_subscriptions() {
    let e = Emu::start().await;
    let r = e
        .put("/users/sam", json!({"properties": {"firstName": "Sam", "lastName": "Ortiz", "email": "sam@contoso.com"}}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    e.put(
        "/subscriptions/sam-key",
        json!({"properties": {"displayName": "Sam", "scope": "/apis", "ownerId": "/users/sam"}}),
    )
    .await;
    assert_eq!(e.delete("/users/sam", "*").await.status, 409);
    let r = e.call(Method::DELETE, &e.svc("/users/sam?deleteSubscriptions=true"), None, &[("if-match", "*")]).await;
    assert_eq!(r.status, 204, "user delete is long-running in Azure (202 or 204); the emulator is done at once");
    assert_eq!(e.get("/subscriptions/sam-key").await.status, 404);
    assert_eq!(e.delete("/users/1", "*").await.status, 400);
}

#[tokio::test]
async fn a_second_service_can_be_created_in_the_resource_group_and_starts_with_built_ins() {
    let e = Emu::start().await;
    let id = sandbox_service_id().replace("apim-sandbox", "apim-second");
    let body = json!({"location": "West Europe", "sku": {"name": "BasicV2", "capacity": 1}, "properties": {"publisherEmail": "a@b.c", "publisherName": "B"}});
    let r = e.call(Method::PUT, &e.url(&id), Some(&body), &[]).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["properties"]["provisioningState"], "Succeeded");
    let m = e.call(Method::GET, &e.url(&format!("{id}/subscriptions/master")), None, &[]).await;
    assert_eq!(m.body["properties"]["scope"], format!("{id}/"));
    let bad = e.call(Method::PUT, &e.url(&id), Some(&json!({"sku": {"name": "Gigantic"}})), &[]).await;
    assert_eq!(bad.status, 400);
    let p = e.call(Method::PATCH, &e.url(&id), Some(&json!({"tags": {"env": "test"}})), &[]).await;
    assert_eq!(p.body["tags"]["env"], "test");
    let elsewhere = id.replace("rg-ai-gateway", "rg-missing");
    assert_eq!(e.call(Method::PUT, &e.url(&elsewhere), Some(&body), &[]).await.code(), "ResourceGroupNotFound");
    assert_eq!(e.call(Method::DELETE, &e.url(&id), None, &[]).await.status, 200);
    assert_eq!(e.call(Method::GET, &e.url(&id), None, &[]).await.status, 404);
}
