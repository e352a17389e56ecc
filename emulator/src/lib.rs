//! A local emulator of Azure API Management as seen through Azure Resource Manager.
//!
//! It serves the ARM paths of one or more APIM services on a loopback port, with Azure's status
//! codes, headers, ETags, paging and error envelopes, seeded with the sandbox tenant. The host
//! talks to it with the same ARM client it uses for Azure: only the base URL and the bearer
//! token differ.
//!
//! Architecture (one concern per module):
//! - `store` — the state (services and their entities, ETag sequence, AOAI deployments), its
//!   read API for other modules (telemetry), and atomic persistence to a state file;
//! - `arm` — the ARM surface: `envelope` (auth, errors, headers, api-version, faults),
//!   `paging`, `filter`, `crud` (ETag rules), and one module per resource family;
//! - `validate` — APIM's validation of backends and policy XML, independent of HTTP;
//! - `seed` — the sandbox tenant; `faults` — fault injection; `admin` — `/_emulator/*`;
//! - `telemetry` — the traffic model, the simulated clock, Azure Monitor metrics and the Log
//!   Analytics / Application Insights query APIs;
//! - `util` — timestamps, ids, ETag encoding, percent-encoding.
//!
//! Request flow: `envelope::layer` (401 → faults → missing api-version) → `arm::entry`
//! (api-version supported? → service exists? → family handler) → response headers.

pub mod admin;
pub mod arm;
pub mod faults;
pub mod seed;
pub mod store;
pub mod telemetry;
pub mod util;
pub mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::TokioIo;
use tower::ServiceExt;

use crate::arm::envelope::DropConnection;
use crate::faults::Faults;
use crate::store::Store;
use crate::telemetry::{Telemetry, TelemetryOptions};

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
    /// The bearer token every ARM request must carry.
    pub token: String,
    /// Where to keep state across restarts. `None`: in memory only.
    pub state_file: Option<PathBuf>,
    /// How the traffic model generates telemetry (seed, start time, history length).
    pub telemetry: TelemetryOptions,
}

impl Options {
    /// In-memory options with `token`.
    pub fn new(token: impl Into<String>) -> Self {
        Self { token: token.into(), state_file: None, telemetry: TelemetryOptions::default() }
    }

    /// The same options, persisting to `path`.
    pub fn with_state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }

    /// The same options with these telemetry settings.
    pub fn with_telemetry(mut self, telemetry: TelemetryOptions) -> Self {
        self.telemetry = telemetry;
        self
    }
}

struct Inner {
    options: Options,
    store: Store,
    faults: Faults,
    telemetry: Telemetry,
}

/// An emulator, ready to serve. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
}

impl Emulator {
    /// Creates an emulator: loads `options.state_file` if it exists (a corrupt file is an error
    /// and is left untouched), otherwise starts from the seeded sandbox tenant.
    pub fn new(options: Options) -> anyhow::Result<Self> {
        let store = Store::open(seed::sandbox_state(), options.state_file.clone())?;
        let telemetry = Telemetry::new(options.telemetry.clone(), store.snapshot());
        Ok(Self { inner: Arc::new(Inner { options, store, faults: Faults::default(), telemetry }) })
    }

    /// The state (read it with `store().read(|state| ...)`).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The fault rules.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// The telemetry: traffic model, simulated clock, metrics and logs.
    pub fn telemetry(&self) -> &Telemetry {
        &self.inner.telemetry
    }

    /// Simulates the telemetry history on a background thread now, so the first metrics or logs
    /// request does not wait for it (the sandbox calls this after starting). Needs a Tokio runtime.
    pub fn warm_telemetry(&self) {
        let emu = self.clone();
        tokio::task::spawn_blocking(move || emu.telemetry().warm(emu.store()));
    }

    /// The bearer token ARM requests must carry.
    pub fn token(&self) -> &str {
        &self.inner.options.token
    }

    /// The options it was created with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// The emulator's HTTP routes: `/_emulator/*` admin endpoints, the Log Analytics and
    /// Application Insights query APIs (`/v1/...`), and every ARM path.
    pub fn router(&self) -> Router {
        use axum::routing::post;
        Router::new()
            .nest("/_emulator", admin::routes())
            .route(
                "/v1/workspaces/{id}/query",
                post(telemetry::logs::workspace_query).get(telemetry::logs::workspace_query),
            )
            .route("/v1/apps/{id}/query", post(telemetry::logs::app_query).get(telemetry::logs::app_query))
            .fallback(arm::entry)
            .layer(axum::middleware::from_fn_with_state(self.clone(), arm::envelope::layer))
            .with_state(self.clone())
    }

    /// Serves on `addr` (use port 0 for any free port) until the returned handle is shut down.
    /// Connections are HTTP/1.1 with keep-alive; a fault with `drop: true` closes the
    /// connection without a response.
    pub async fn serve(self, addr: SocketAddr) -> anyhow::Result<RunningEmulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let token = self.inner.options.token.clone();
        let app = self.router();
        let task = tokio::spawn(async move {
            let graceful = hyper_util::server::graceful::GracefulShutdown::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let stream = match accepted {
                            Ok((stream, _)) => stream,
                            Err(e) => {
                                tracing::warn!("emulator accept failed: {e}");
                                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                                continue;
                            }
                        };
                        let _ = stream.set_nodelay(true);
                        let app = app.clone();
                        let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                            let app = app.clone();
                            async move {
                                let resp = app.oneshot(req.map(axum::body::Body::new)).await.unwrap_or_else(|e| match e {});
                                if resp.extensions().get::<DropConnection>().is_some() {
                                    Err(DroppedByFault)
                                } else {
                                    Ok(resp)
                                }
                            }
                        });
                        let conn = hyper::server::conn::http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), service);
                        let conn = graceful.watch(conn);
                        tokio::spawn(async move {
                            let _ = conn.await;
                        });
                    }
                    _ = &mut rx => break,
                }
            }
            drop(listener);
            tokio::select! {
                _ = graceful.shutdown() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            }
        });
        Ok(RunningEmulator { base_url: format!("http://{local_addr}"), token, local_addr, shutdown: Some(tx), task })
    }
}

/// The error that makes hyper close a connection without answering (fault injection).
#[derive(Debug)]
struct DroppedByFault;

impl std::fmt::Display for DroppedByFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DroppedByFault {}

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
    /// Stops accepting connections and waits (up to 5 s) for in-flight requests.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// The one line to print on stderr when the emulator starts: where it listens and the token.
pub fn banner(running: &RunningEmulator) -> String {
    format!(
        "APIM emulator listening on {} (bearer token: {}; sandbox service: {}; admin: {}/_emulator)",
        running.base_url,
        running.token,
        sandbox_service_id(),
        running.base_url
    )
}
