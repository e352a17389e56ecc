//! The ARM envelope: authentication, api-version, request ids, throttling headers, 404 shapes.

mod common;

use aigw_emulator::sandbox_service_id;
use common::*;
use reqwest::Method;

#[tokio::test]
async fn a_request_without_a_bearer_token_gets_arm_401() {
    let e = Emu::start().await;
    let r = e.http.get(e.svc("/apis")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get("www-authenticate").unwrap().to_str().unwrap().starts_with("Bearer "));
    assert!(r.headers().get("x-ms-request-id").is_some());
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "AuthenticationFailed");
    assert!(body["error"]["message"].as_str().unwrap().contains("'Authorization' header is missing"));
}

#[tokio::test]
async fn a_wrong_token_gets_invalid_authentication_token() {
    let e = Emu::start().await;
    let r = e.http.get(e.svc("/apis")).header("authorization", "Bearer nope").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    let r = e.http.get(e.svc("/apis")).header("authorization", "Basic abc").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn api_version_is_required_and_checked() {
    let e = Emu::start().await;
    let url = format!("{}{}/apis", e.running.base_url, sandbox_service_id());
    let r = e.call(Method::GET, &url, None, &[]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "MissingApiVersionParameter");
    assert_eq!(r.message(), "The api-version query parameter (?api-version=) is required for all requests.");

    let r = e.call(Method::GET, &format!("{url}?api-version=2019-01-01"), None, &[]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "NoRegisteredProviderFound");
    assert!(
        r.message().contains("location 'eastus' and API version '2019-01-01' for type 'service/apis'"),
        "{}",
        r.message()
    );
    assert!(r.message().contains("2024-05-01"));

    for v in ["2024-05-01", "2024-06-01-preview", "2024-10-01-preview", "2025-03-01-preview", "2025-09-01-preview"] {
        let r = e.call(Method::GET, &format!("{url}?api-version={v}"), None, &[]).await;
        assert_eq!(r.status, 200, "{v}");
    }
}

#[tokio::test]
async fn every_response_carries_request_and_correlation_ids_and_rate_limit_headers() {
    let e = Emu::start().await;
    let r = e.call(Method::GET, &e.svc("/apis"), None, &[("x-ms-client-request-id", "my-client-id")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-ms-request-id").unwrap().len(), 36);
    assert_eq!(r.header("x-ms-correlation-request-id").as_deref(), Some("my-client-id"));
    assert_eq!(r.header("x-ms-client-request-id").as_deref(), Some("my-client-id"));
    assert!(r.header("x-ms-ratelimit-remaining-subscription-reads").unwrap().parse::<u32>().is_ok());
    assert!(r.header("x-ms-routing-request-id").unwrap().starts_with("EASTUS:"));
    assert_eq!(r.header("content-type").as_deref(), Some("application/json; charset=utf-8"));

    let r2 = e.get("/apis").await;
    assert_ne!(r2.header("x-ms-request-id"), r.header("x-ms-request-id"));
    assert_eq!(r2.header("x-ms-correlation-request-id").unwrap().len(), 36);

    let w = e.put("/namedValues/x", serde_json::json!({"properties": {"displayName": "x", "value": "1"}})).await;
    assert_eq!(w.status, 201);
    assert!(w.header("x-ms-ratelimit-remaining-subscription-writes").is_some());
    let d = e.delete("/namedValues/x", "*").await;
    assert!(d.header("x-ms-ratelimit-remaining-subscription-deletes").is_some());
}

#[tokio::test]
async fn missing_things_get_arm_404s_that_say_what_is_missing() {
    let e = Emu::start().await;
    let r = e.get("/apis/nope").await;
    assert_eq!((r.status, r.code(), r.message()), (404, "ResourceNotFound", "Api not found."));
    let r = e.get("/subscriptions/nope").await;
    assert_eq!(r.message(), "Subscription not found.");
    let r = e.get("/backends/nope").await;
    assert_eq!(r.message(), "Backend not found.");

    let other_service = sandbox_service_id().replace("apim-sandbox", "apim-other");
    let r = e.call(Method::GET, &e.url(&other_service), None, &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "ResourceNotFound");
    assert!(
        r.message().contains(
            "'Microsoft.ApiManagement/service/apim-other' under resource group 'rg-ai-gateway' was not found"
        )
    );

    let other_rg = sandbox_service_id().replace("rg-ai-gateway", "rg-nope");
    let r = e.call(Method::GET, &e.url(&format!("{other_rg}/apis")), None, &[]).await;
    assert_eq!((r.status, r.code()), (404, "ResourceGroupNotFound"));

    let other_sub =
        sandbox_service_id().replace("00000000-0000-0000-0000-000000000000", "11111111-1111-1111-1111-111111111111");
    let r = e.call(Method::GET, &e.url(&other_sub), None, &[]).await;
    assert_eq!((r.status, r.code()), (404, "SubscriptionNotFound"));

    let r = e.get("/widgets").await;
    assert_eq!((r.status, r.code()), (404, "InvalidResourceType"));
}

#[tokio::test]
async fn arm_path_segments_are_case_insensitive_like_azure() {
    let e = Emu::start().await;
    let lower = sandbox_service_id()
        .replace("resourceGroups", "resourcegroups")
        .replace("Microsoft.ApiManagement", "microsoft.apimanagement");
    let r = e.call(Method::GET, &e.url(&format!("{lower}/NAMEDVALUES/TPM-DATA-SCIENCE")), None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "tpm-data-science");
}

#[tokio::test]
async fn head_returns_the_etag_without_a_body() {
    let e = Emu::start().await;
    let g = e.get("/backends/aoai-eastus").await;
    let h = e.head("/backends/aoai-eastus").await;
    assert_eq!(h.status, 200);
    assert!(h.text.is_empty());
    assert_eq!(h.etag(), g.etag());
    let h = e.head("/backends/nope").await;
    assert_eq!(h.status, 404);
}

#[tokio::test]
async fn unsupported_verbs_and_bad_bodies_get_arm_errors() {
    let e = Emu::start().await;
    let r = e.call(Method::POST, &e.svc("/apis"), None, &[]).await;
    assert_eq!((r.status, r.code()), (405, "MethodNotAllowed"));
    let r = e
        .http
        .put(e.svc("/products/p"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidRequestContent");
}
