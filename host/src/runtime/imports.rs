//! The host side of the contract: the bindings generated from `wit/plugin.wit`, the per-call
//! store state, and the imports a plugin may call (ARM reads, log queries, logging, progress,
//! config).
//!
//! Every import is checked here before anything leaves the process: ARM paths are resolved
//! under the service (`arm::scope`) and against the plugin's read grant; a plugin without the
//! `logs` grant cannot query logs. Credentials never enter this state: the ARM client adds the
//! token on its way out, and answers carry only status, ETag and body.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use reqwest::Method;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::grants::{Access, Grants};
use crate::arm::{ArmClient, ArmError, LogsClient};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "aigw:plugin/plugin-world",
    imports: { default: async },
    exports: { default: async },
});

pub use aigw::plugin::types as wit;

/// The contract version this host implements.
pub const CONTRACT_PACKAGE: &str = "aigw:plugin";
/// See [`CONTRACT_PACKAGE`].
pub const CONTRACT_VERSION: &str = "0.1.0";

/// How a progress report reaches the MCP client.
pub type ProgressSink = Arc<dyn Fn(f64, Option<f64>, Option<String>) + Send + Sync>;

/// What a plugin's imports may reach, fixed for the plugin's lifetime.
#[derive(Clone)]
pub struct PluginServices {
    pub plugin: Arc<str>,
    pub grants: Grants,
    /// `None` in `plugins check`, where nothing may reach Azure.
    pub arm: Option<ArmClient>,
    pub logs: Option<LogsClient>,
    pub config: Arc<BTreeMap<String, String>>,
}

/// The state of one store: one call of one plugin.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    services: PluginServices,
    progress: Option<ProgressSink>,
    /// What the plugin wrote to stderr and stdout, logged when the call ends.
    pub(crate) stderr: MemoryOutputPipe,
    pub(crate) stdout: MemoryOutputPipe,
}

/// Most bytes of a plugin's stderr (or stdout) kept per call.
const CAPTURE_BYTES: usize = 256 * 1024;
/// Most ARM GETs one `get-many` runs at once.
const GET_MANY_CONCURRENCY: usize = 8;

impl CallState {
    /// A store state with nothing granted from WASI: no files, no environment, no arguments,
    /// no sockets, no name lookups, no stdin; stdout and stderr are captured, never inherited
    /// (stdout is the MCP protocol in stdio mode).
    pub fn new(services: PluginServices, memory_bytes: usize, progress: Option<ProgressSink>) -> Self {
        let stderr = MemoryOutputPipe::new(CAPTURE_BYTES);
        let stdout = MemoryOutputPipe::new(CAPTURE_BYTES);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .stdout(stdout.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = wasmtime::StoreLimitsBuilder::new().memory_size(memory_bytes).trap_on_grow_failure(true).build();
        Self { wasi, table: ResourceTable::new(), limits, services, progress, stderr, stdout }
    }

    /// The limiter wasmtime consults on every memory or table growth.
    pub fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limits
    }

    fn arm(&self) -> Result<&ArmClient, wit::Error> {
        self.services.arm.as_ref().ok_or_else(|| wit::Error::Denied("no ARM access in this context".into()))
    }

    fn scoped(&self, path: &str) -> Result<crate::arm::ScopedPath, wit::Error> {
        let arm = self.arm()?;
        let scoped = arm.scope(path).map_err(|e| wit::Error::Denied(e.to_string()))?;
        self.services.grants.check(Access::Read, &scoped.kind, path).map_err(wit::Error::Denied)?;
        Ok(scoped)
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// ARM errors as the contract's typed errors.
pub fn to_wit_error(error: ArmError) -> wit::Error {
    match error {
        ArmError::Upstream { status: 404, message, .. } => wit::Error::NotFound(message),
        ArmError::Upstream { status: 412, message, .. } => wit::Error::Conflict(message),
        ArmError::Upstream { status, code, message, request_id } => {
            wit::Error::Upstream(wit::UpstreamError { status, code, message, request_id: Some(request_id) })
        }
        ArmError::Transport { message, request_id } => wit::Error::Upstream(wit::UpstreamError {
            status: 0,
            code: "TransportError".into(),
            message,
            request_id: Some(request_id),
        }),
        ArmError::Refused(message) => wit::Error::Denied(message),
    }
}

impl wit::Host for CallState {}

impl aigw::plugin::arm::Host for CallState {
    async fn get(&mut self, path: String) -> Result<aigw::plugin::arm::Response, wit::Error> {
        let scoped = self.scoped(&path)?;
        let response = self.arm()?.send(Method::GET, &scoped, None, None).await.map_err(to_wit_error)?;
        Ok(aigw::plugin::arm::Response { status: response.status, etag: response.etag, body: response.body })
    }

    async fn list(&mut self, path: String) -> Result<Vec<String>, wit::Error> {
        let scoped = self.scoped(&path)?;
        self.arm()?.list(&scoped).await.map_err(to_wit_error)
    }

    async fn get_many(&mut self, paths: Vec<String>) -> Vec<Result<aigw::plugin::arm::Response, wit::Error>> {
        let prepared: Vec<_> = paths.iter().map(|p| self.scoped(p)).collect();
        let arm = match self.arm() {
            Ok(arm) => arm.clone(),
            Err(e) => return paths.iter().map(|_| Err(e.clone())).collect(),
        };
        futures::stream::iter(prepared)
            .map(|scoped| {
                let arm = arm.clone();
                async move {
                    let scoped = scoped?;
                    let response = arm.send(Method::GET, &scoped, None, None).await.map_err(to_wit_error)?;
                    Ok(aigw::plugin::arm::Response {
                        status: response.status,
                        etag: response.etag,
                        body: response.body,
                    })
                }
            })
            .buffered(GET_MANY_CONCURRENCY)
            .collect()
            .await
    }
}

impl aigw::plugin::telemetry::Host for CallState {
    async fn query_logs(&mut self, query: String, timespan: Option<String>) -> Result<String, wit::Error> {
        self.services.grants.check(Access::Read, "logs", "query-logs").map_err(wit::Error::Denied)?;
        let logs = self.services.logs.as_ref().ok_or_else(|| {
            wit::Error::Denied(
                "no Log Analytics workspace is configured (--logs-workspace-id or AIGW_LOGS_WORKSPACE_ID)".into(),
            )
        })?;
        logs.query(&query, timespan.as_deref()).await.map_err(to_wit_error)
    }
}

impl aigw::plugin::log::Host for CallState {
    async fn write(&mut self, level: aigw::plugin::log::Level, message: String) {
        use aigw::plugin::log::Level;
        let plugin = &*self.services.plugin;
        match level {
            Level::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        }
    }
}

impl aigw::plugin::progress::Host for CallState {
    async fn report(&mut self, done: f64, total: Option<f64>, message: Option<String>) {
        if let Some(sink) = &self.progress {
            sink(done, total, message);
        }
    }
}

impl aigw::plugin::config::Host for CallState {
    async fn get(&mut self, key: String) -> Option<String> {
        self.services.config.get(&key).cloned()
    }
}

/// Logs what the plugin wrote to stderr/stdout during a call, one event per line.
pub fn flush_captured_output(state: &CallState) {
    let plugin = &*state.services.plugin;
    for line in String::from_utf8_lossy(&state.stderr.contents()).lines().filter(|l| !l.trim().is_empty()) {
        tracing::info!(target: "plugin", plugin, "{line}");
    }
    let stdout = state.stdout.contents();
    if !stdout.is_empty() {
        tracing::warn!(target: "plugin", plugin, bytes = stdout.len(), "plugin wrote to stdout; stdout is not connected (it carries the MCP protocol), output discarded");
    }
}
