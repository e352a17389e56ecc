//! A local emulator of Azure API Management as seen through Azure Resource Manager.
//!
//! It serves the ARM paths of one or more APIM services on a loopback port, with Azure's status
//! codes, headers and error envelopes, seeded with the sandbox tenant. The host talks to it with
//! the same ARM client it uses for Azure: only the base URL and the bearer token differ.
//!
//! This first version serves the service resource only; the control plane grows in `arm`.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// The sandbox tenant's Azure subscription.
pub const SANDBOX_SUBSCRIPTION_ID: &str = "00000000-0000-0000-0000-000000000000";
/// The sandbox tenant's resource group.
pub const SANDBOX_RESOURCE_GROUP: &str = "rg-ai-gateway";
/// The sandbox tenant's APIM service.
pub const SANDBOX_SERVICE_NAME: &str = "apim-sandbox";

/// The ARM id of the sandbox service.
pub fn sandbox_service_id() -> String {
    format!(
        "/subscriptions/{SANDBOX_SUBSCRIPTION_ID}/resourceGroups/{SANDBOX_RESOURCE_GROUP}/providers/Microsoft.ApiManagement/service/{SANDBOX_SERVICE_NAME}"
    )
}

/// How to run the emulator.
#[derive(Debug, Clone)]
pub struct Options {
    /// The bearer token every request must carry.
    pub token: String,
}

/// An emulator, ready to serve.
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Options>,
}

impl Emulator {
    /// Creates an emulator seeded with the sandbox tenant.
    pub fn new(options: Options) -> anyhow::Result<Self> {
        Ok(Self { inner: Arc::new(options) })
    }

    /// The emulator's HTTP routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ApiManagement/service/{name}",
                get(get_service),
            )
            .with_state(self.clone())
    }

    /// Serves on `addr` (use port 0 for any free port) until the returned handle is shut down.
    pub async fn serve(self, addr: SocketAddr) -> anyhow::Result<RunningEmulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let token = self.inner.token.clone();
        let app = self.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(RunningEmulator { base_url: format!("http://{local_addr}"), token, local_addr, shutdown: Some(tx), task })
    }
}

/// A running emulator. Dropping it leaves the server running until the runtime stops.
pub struct RunningEmulator {
    /// `http://127.0.0.1:PORT`: use it where ARM's `https://management.azure.com` would go.
    pub base_url: String,
    /// The bearer token it accepts.
    pub token: String,
    /// The bound address.
    pub local_addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningEmulator {
    /// Stops accepting connections and waits for in-flight requests.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

fn arm_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({"error": {"code": code, "message": message}}))).into_response()
}

async fn get_service(
    State(emu): State<Emulator>,
    Path((sub, rg, name)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let expected = format!("Bearer {}", emu.inner.token);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return arm_error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing or invalid.",
        );
    }
    if !query.contains_key("api-version") {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    }
    if sub != SANDBOX_SUBSCRIPTION_ID
        || !rg.eq_ignore_ascii_case(SANDBOX_RESOURCE_GROUP)
        || name != SANDBOX_SERVICE_NAME
    {
        return arm_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!(
                "The Resource 'Microsoft.ApiManagement/service/{name}' under resource group '{rg}' was not found."
            ),
        );
    }
    let body: Value = json!({
        "id": sandbox_service_id(),
        "name": SANDBOX_SERVICE_NAME,
        "type": "Microsoft.ApiManagement/service",
        "location": "East US",
        "etag": "AAAAAAAAAAA=",
        "sku": {"name": "StandardV2", "capacity": 1},
        "properties": {
            "publisherEmail": "platform@contoso.example",
            "publisherName": "Contoso Platform",
            "provisioningState": "Succeeded",
            "gatewayUrl": format!("https://{SANDBOX_SERVICE_NAME}.azure-api.net"),
            "platformVersion": "stv2",
            "publicNetworkAccess": "Enabled",
            "virtualNetworkType": "None"
        }
    });
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().insert("etag", "\"AAAAAAAAAAA=\"".parse().unwrap());
    resp
}
