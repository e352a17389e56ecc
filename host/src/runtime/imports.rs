//! The host side of the contract: the bindings generated from `wit/plugin.wit`, the per-call
//! store state, and the imports a plugin may call (ARM reads, log queries, logging, progress,
//! config).
//!
//! Every import is checked here before anything leaves the process: ARM paths are resolved
//! under the service (`arm::scope`) and against the plugin's read grant; a plugin without the
//! `logs` grant cannot query logs, and a query that reaches beyond the workspace is refused
//! (`arm::kql_guard`). Credentials never enter this state: the ARM client adds the token on
//! its way out, and answers carry only status, ETag and body.
//!
//! Everything a plugin can make the host do here is bounded per call: log lines (count and
//! length; control characters escaped so a plugin cannot forge or repaint host log lines),
//! paths per `get-many`, captured stderr. Progress is coalesced by the sink (`mcp::progress`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use futures::StreamExt;
use reqwest::Method;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::grants::{Access, Grants};
use crate::arm::{ArmClient, ArmError, LogsClient, kql_guard};
use crate::config::Limits;

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

/// How a plugin's log line reaches the MCP client that made the call (level, plugin, message;
/// the message already capped and escaped).
pub type LogSink = Arc<dyn Fn(tracing::Level, &str, &str) + Send + Sync>;

/// Where a call's progress and log lines go besides the host's own log.
#[derive(Clone, Default)]
pub struct CallSinks {
    pub progress: Option<ProgressSink>,
    pub log: Option<LogSink>,
}

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
    client_log: Option<LogSink>,
    /// What the plugin wrote to stderr and stdout, logged when the call ends.
    pub(crate) stderr: MemoryOutputPipe,
    pub(crate) stdout: MemoryOutputPipe,
    log: LogBudget,
}

/// How many more log lines this call may write, and how many it tried past that.
struct LogBudget {
    left: u32,
    cap: u32,
    suppressed: u64,
}

/// Most bytes of a plugin's stderr (or stdout) kept per call.
const CAPTURE_BYTES: usize = 256 * 1024;
/// Most ARM GETs one `get-many` runs at once.
const GET_MANY_CONCURRENCY: usize = 8;
/// Most paths in one `get-many`. A plugin that needs more splits them over several calls (at
/// eight in flight, 1000 GETs take seconds: more in one call is a bug or an attack). A longer
/// list is refused as a whole, every entry denied with this number and nothing sent: a partial
/// answer would let a plugin silently miss the tail, and a refusal costs ARM nothing.
pub const MAX_GET_MANY_PATHS: usize = 1000;
/// Longest plugin log line kept, in bytes (after escaping). A line is for a human reading the
/// server's stderr; 4 KiB holds a stack of context, and with [`crate::config::DEFAULT_MAX_LOG_LINES`]
/// bounds one call's log output to about 4 MiB. Longer lines are cut and marked.
pub const MAX_LOG_LINE_BYTES: usize = 4096;

impl CallState {
    /// A store state with nothing granted from WASI: no files, no environment, no arguments,
    /// no sockets, no name lookups, no stdin; stdout and stderr are captured, never inherited
    /// (stdout is the MCP protocol in stdio mode).
    pub fn new(services: PluginServices, limits: &Limits, sinks: CallSinks) -> Self {
        let CallSinks { progress, log: client_log } = sinks;
        let stderr = MemoryOutputPipe::new(CAPTURE_BYTES);
        let stdout = MemoryOutputPipe::new(CAPTURE_BYTES);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .stdout(stdout.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let log = LogBudget { left: limits.max_log_lines, cap: limits.max_log_lines, suppressed: 0 };
        let limits =
            wasmtime::StoreLimitsBuilder::new().memory_size(limits.memory_bytes).trap_on_grow_failure(true).build();
        Self { wasi, table: ResourceTable::new(), limits, services, progress, client_log, stderr, stdout, log }
    }

    /// Whether one more log line fits this call's budget (counting it either way).
    fn take_log_line(&mut self) -> bool {
        if self.log.left == 0 {
            self.log.suppressed += 1;
            return false;
        }
        self.log.left -= 1;
        true
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
        if paths.len() > MAX_GET_MANY_PATHS {
            let refused = wit::Error::Denied(format!(
                "get-many with {} paths refused: at most {MAX_GET_MANY_PATHS} paths per call; split the list",
                paths.len()
            ));
            return vec![Err(refused); paths.len()];
        }
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
        kql_guard::check(&query).map_err(|refusal| wit::Error::Denied(refusal.to_string()))?;
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
        if !self.take_log_line() {
            return;
        }
        let plugin = &*self.services.plugin;
        let message = sanitize_log_line(&message);
        let level = match level {
            Level::Trace => {
                tracing::trace!(target: "plugin", plugin, "{message}");
                tracing::Level::TRACE
            }
            Level::Debug => {
                tracing::debug!(target: "plugin", plugin, "{message}");
                tracing::Level::DEBUG
            }
            Level::Info => {
                tracing::info!(target: "plugin", plugin, "{message}");
                tracing::Level::INFO
            }
            Level::Warn => {
                tracing::warn!(target: "plugin", plugin, "{message}");
                tracing::Level::WARN
            }
            Level::Error => {
                tracing::error!(target: "plugin", plugin, "{message}");
                tracing::Level::ERROR
            }
        };
        if let Some(client_log) = &self.client_log {
            client_log(level, plugin, &message);
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

/// Logs what the plugin wrote to stderr/stdout during a call, one event per line (escaped and
/// counted against the call's log budget like `log::write`), then one line saying how many
/// lines the budget suppressed, if any.
pub fn flush_captured_output(state: &mut CallState) {
    let stderr = state.stderr.contents();
    for line in String::from_utf8_lossy(&stderr).lines().filter(|l| !l.trim().is_empty()) {
        if state.take_log_line() {
            let plugin = &*state.services.plugin;
            tracing::info!(target: "plugin", plugin, "{}", sanitize_log_line(line));
        }
    }
    let plugin = &*state.services.plugin;
    if stderr.len() >= CAPTURE_BYTES {
        tracing::warn!(target: "plugin", plugin, "the plugin's stderr was cut at {} KiB", CAPTURE_BYTES >> 10);
    }
    let stdout = state.stdout.contents();
    if !stdout.is_empty() {
        tracing::warn!(target: "plugin", plugin, bytes = stdout.len(), "plugin wrote to stdout; stdout is not connected (it carries the MCP protocol), output discarded");
    }
    if state.log.suppressed > 0 {
        tracing::warn!(
            target: "plugin",
            plugin,
            "{} more log lines suppressed (at most {} per call: max_log_lines)",
            state.log.suppressed,
            state.log.cap
        );
        state.log.suppressed = 0;
    }
}

/// A plugin's log message as one safe line: control characters (newlines, carriage returns,
/// ANSI escapes, C1 codes) and Unicode line separators and bidi overrides are escaped (`\n`,
/// `\u{1b}`), so a message can neither start a forged host log line nor repaint the terminal;
/// and the line is cut at [`MAX_LOG_LINE_BYTES`] with a marker saying how much was dropped.
pub fn sanitize_log_line(message: &str) -> Cow<'_, str> {
    let needs_escape = |c: char| {
        c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if message.len() <= MAX_LOG_LINE_BYTES && !message.chars().any(needs_escape) {
        return Cow::Borrowed(message);
    }
    let mut line = String::with_capacity(message.len().min(MAX_LOG_LINE_BYTES + 64));
    for (at, c) in message.char_indices() {
        let before = line.len();
        if needs_escape(c) {
            match c {
                '\n' => line.push_str("\\n"),
                '\r' => line.push_str("\\r"),
                '\t' => line.push_str("\\t"),
                other => {
                    let _ = write!(line, "\\u{{{:x}}}", other as u32);
                }
            }
        } else {
            line.push(c);
        }
        if line.len() > MAX_LOG_LINE_BYTES {
            line.truncate(before);
            let _ = write!(line, "… [{} more bytes cut]", message.len() - at);
            break;
        }
    }
    Cow::Owned(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_message_is_logged_as_is() {
        assert!(matches!(sanitize_log_line("fetched 3 backends"), Cow::Borrowed("fetched 3 backends")));
    }

    #[test]
    fn newlines_and_terminal_escapes_cannot_forge_or_repaint_a_host_line() {
        let forged = "ok\n2026-01-01T00:00:00Z  INFO plan write applied\r\x1b[2K\u{202e}";
        let line = sanitize_log_line(forged);
        assert_eq!(line, "ok\\n2026-01-01T00:00:00Z  INFO plan write applied\\r\\u{1b}[2K\\u{202e}");
        assert!(!line.chars().any(char::is_control));
    }

    #[test]
    fn a_long_line_is_cut_with_a_marker_naming_what_was_dropped() {
        let long = "é".repeat(10_000);
        let line = sanitize_log_line(&long);
        assert!(line.len() <= MAX_LOG_LINE_BYTES + 40, "{}", line.len());
        assert!(line.ends_with("… [15904 more bytes cut]"), "{}", &line[line.len() - 40..]);
        let escapes = "\x1b".repeat(10_000);
        let escaped = sanitize_log_line(&escapes);
        assert!(escaped.len() <= MAX_LOG_LINE_BYTES + 40);
    }
}
