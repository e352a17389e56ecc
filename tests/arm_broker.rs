//! The ARM client against a scripted ARM: long-running operations, auth errors that name the
//! role and identity, nextLink scoping, client request ids.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aigw_host::arm::{ArmClient, ArmError, ArmTarget, Credential};
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use reqwest::Method;
use serde_json::json;

const SERVICE: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim";

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn client(base: &str) -> ArmClient {
    let target = ArmTarget { endpoint: base.into(), service_id: SERVICE.into(), api_version: "2024-05-01".into() };
    ArmClient::new(target, Credential::Static("t0ken".into())).unwrap()
}

#[tokio::test]
async fn a_long_running_write_is_polled_to_the_end_and_returns_the_final_resource() {
    let polls = Arc::new(AtomicUsize::new(0));
    let counter = polls.clone();
    let router = Router::new()
        .route(
            &format!("{SERVICE}/namedValues/nv"),
            any(|method: Method, headers: HeaderMap| async move {
                if method == Method::PUT {
                    let host = headers.get("host").unwrap().to_str().unwrap().to_string();
                    let mut h = HeaderMap::new();
                    h.insert(
                        "azure-asyncoperation",
                        format!("http://{host}/operations/op1?api-version=2024-05-01").parse().unwrap(),
                    );
                    h.insert("retry-after", "0".parse().unwrap());
                    return (StatusCode::ACCEPTED, h, String::new()).into_response();
                }
                let mut h = HeaderMap::new();
                h.insert("etag", "\"final\"".parse().unwrap());
                (StatusCode::OK, h, json!({"properties": {"value": "done"}}).to_string()).into_response()
            }),
        )
        .route(
            "/operations/op1",
            get(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                async move { axum::Json(json!({"status": if n < 2 { "InProgress" } else { "Succeeded" }})) }
            }),
        );
    let base = serve(router).await;
    let arm = client(&base);
    let path = arm.scope("namedValues/nv").unwrap();
    let response = arm.send(Method::PUT, &path, Some("\"e1\""), Some("{}")).await.unwrap();
    assert_eq!(polls.load(Ordering::SeqCst), 3, "polled until Succeeded");
    assert_eq!(response.etag.as_deref(), Some("\"final\""));
    assert!(response.body.contains("done"));
}

#[tokio::test]
async fn a_failed_long_running_operation_is_an_error_with_its_code() {
    let router = Router::new()
        .route(
            &format!("{SERVICE}/namedValues/nv"),
            any(|headers: HeaderMap| async move {
                let host = headers.get("host").unwrap().to_str().unwrap().to_string();
                let mut h = HeaderMap::new();
                h.insert("azure-asyncoperation", format!("http://{host}/operations/op2").parse().unwrap());
                h.insert("retry-after", "0".parse().unwrap());
                (StatusCode::ACCEPTED, h, String::new())
            }),
        )
        .route(
            "/operations/op2",
            get(|| async { axum::Json(json!({"status": "Failed", "error": {"code": "KeyVaultSecretNotFound", "message": "the secret is gone"}})) }),
        );
    let arm = client(&serve(router).await);
    let err = arm.send(Method::PUT, &arm.scope("namedValues/nv").unwrap(), None, Some("{}")).await.unwrap_err();
    assert!(matches!(&err, ArmError::Upstream { code, .. } if code == "KeyVaultSecretNotFound"), "{err}");
}

#[tokio::test]
async fn a_403_names_the_role_needed_and_the_identity_used_and_the_request_id() {
    let seen = Arc::new(std::sync::Mutex::new(None::<String>));
    let record = seen.clone();
    let router = Router::new().route(
        &format!("{SERVICE}/backends/b"),
        any(move |headers: HeaderMap| {
            *record.lock().unwrap() = headers.get("x-ms-client-request-id").map(|v| v.to_str().unwrap().to_string());
            async {
                (StatusCode::FORBIDDEN, axum::Json(json!({"error": {"code": "AuthorizationFailed", "message": "The client does not have authorization."}})))
            }
        }),
    );
    let arm = client(&serve(router).await);
    let path = arm.scope("backends/b").unwrap();
    let read = arm.send(Method::GET, &path, None, None).await.unwrap_err().to_string();
    assert!(read.contains("Reader") && read.contains("static token") && read.contains("AuthorizationFailed"), "{read}");
    let id = seen.lock().unwrap().clone().expect("x-ms-client-request-id was sent");
    assert!(read.contains(&id), "the error shows the client request id: {read}");
    let write = arm.send(Method::PUT, &path, None, Some("{}")).await.unwrap_err().to_string();
    assert!(write.contains("API Management Service Contributor"), "{write}");
    assert!(!write.contains("t0ken") && !read.contains("t0ken"), "no token in errors");
}

#[tokio::test]
async fn a_next_link_outside_the_service_is_not_followed() {
    let router = Router::new().route(
        &format!("{SERVICE}/subscriptions"),
        get(|| async { axum::Json(json!({"value": [{"name": "a"}], "nextLink": "http://evil.example/steal"})) }),
    );
    let arm = client(&serve(router).await);
    let err = arm.list(&arm.scope("subscriptions").unwrap()).await.unwrap_err();
    assert!(matches!(&err, ArmError::Refused(m) if m.contains("outside")), "{err}");
}

#[tokio::test]
async fn a_post_is_not_retried_but_a_get_is() {
    let posts = Arc::new(AtomicUsize::new(0));
    let gets = Arc::new(AtomicUsize::new(0));
    let (p, g) = (posts.clone(), gets.clone());
    let router = Router::new().route(
        &format!("{SERVICE}/subscriptions/x/listSecrets"),
        any(move |method: Method| {
            if method == Method::POST {
                p.fetch_add(1, Ordering::SeqCst)
            } else {
                g.fetch_add(1, Ordering::SeqCst)
            };
            async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(json!({"error": {"code": "ServiceUnavailable", "message": "busy"}})),
                )
            }
        }),
    );
    let policy = aigw_host::arm::retry::RetryPolicy { max_retries: 2, budget: std::time::Duration::from_secs(5) };
    let arm = client(&serve(router).await).with_retry_policy(policy);
    let path = arm.scope("subscriptions/x/listSecrets").unwrap();
    assert!(arm.send(Method::POST, &path, None, None).await.is_err());
    assert_eq!(posts.load(Ordering::SeqCst), 1, "a POST is sent once");
    assert!(arm.send(Method::GET, &path, None, None).await.is_err());
    assert_eq!(gets.load(Ordering::SeqCst), 3, "a GET is retried, within the policy's bound");
}
