//! Plugin development kit for azure-ai-gateway-mcp.
//!
//! A plugin is a WebAssembly component targeting the `aigw:plugin@0.1.0` contract in `wit/`.
//! This crate generates the bindings once and adds the helpers every plugin needs, so a plugin
//! crate is a `cdylib` with one type implementing [`Guest`]:
//!
//! ```ignore
//! use aigw_pdk::{Guest, Manifest, Outcome, Error, ToolSpec, arm, result};
//!
//! struct MyPlugin;
//! impl Guest for MyPlugin {
//!     fn describe() -> Manifest { /* name, version, tools, grants */ }
//!     fn call_tool(name: String, arguments: String) -> Result<Outcome, Error> { /* ... */ }
//! }
//! aigw_pdk::export_plugin!(MyPlugin);
//! ```
//!
//! Build with `cargo build --target wasm32-wasip2 --release` and drop the `.wasm` into the
//! host's plugin directory. Plugins never write to Azure: a write tool returns a [`Plan`] built
//! with [`PlanBuilder`], and the host confirms, applies and journals it.

pub mod bindings {
    //! Bindings generated from `wit/plugin.wit`.
    wit_bindgen::generate!({
        world: "plugin-world",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_plugin",
        default_bindings_module: "aigw_pdk::bindings",
    });
}

pub mod arm;
pub mod diff;
pub mod tool;

pub use bindings::aigw::plugin::types::{
    Annotations, ArmWrite, BeforeState, Error, FieldError, Manifest, Outcome, Plan, Tool, ToolResult, UpstreamError,
};
pub use bindings::export_plugin;
pub use bindings::exports::aigw::plugin::plugin::Guest;
pub use tool::{PlanBuilder, ToolSpec, args, result};

/// Writes a line to the host log at info level.
pub fn log_info(message: &str) {
    bindings::aigw::plugin::log::write(bindings::aigw::plugin::log::Level::Info, message);
}

/// Writes a line to the host log at warn level.
pub fn log_warn(message: &str) {
    bindings::aigw::plugin::log::write(bindings::aigw::plugin::log::Level::Warn, message);
}

/// Reports progress of a long call (forwarded to the MCP client if it asked for progress).
pub fn progress(done: f64, total: Option<f64>, message: Option<&str>) {
    bindings::aigw::plugin::progress::report(done, total, message);
}

/// The operator's setting `key` for this plugin (`[plugins.<name>.config]`), if set, as text:
/// a string as written, a number or boolean in its TOML spelling (`0.02`, `42`, `true`; parse
/// it with `str::parse`), a date-time in RFC 3339, an array or table as JSON text.
pub fn config(key: &str) -> Option<String> {
    bindings::aigw::plugin::config::get(key)
}

/// Runs a KQL query on the service's Log Analytics workspace (needs the `logs` read grant).
pub fn query_logs(query: &str, timespan: Option<&str>) -> Result<serde_json::Value, Error> {
    let body = bindings::aigw::plugin::telemetry::query_logs(query, timespan)?;
    serde_json::from_str(&body).map_err(|e| Error::Internal(format!("logs answer is not JSON: {e}")))
}

impl Error {
    /// An invalid-input error naming `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::InvalidInput(FieldError { field: field.to_string(), message: message.into() })
    }
}
