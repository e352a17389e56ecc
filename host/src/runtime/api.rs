//! The host's own view of what plugins describe and answer.
//!
//! The generated bindings stay inside `runtime`; everything above it (the MCP surface, the
//! change pipeline) sees only these types, so a new contract version changes one conversion,
//! not the whole host.

use serde::Serialize;
use serde_json::Value;

pub use crate::arm::Precondition;

/// A plugin's manifest, validated.
#[derive(Debug, Clone, Serialize)]
pub struct PluginManifest {
    pub name: String,
    pub version: String,
    pub description: String,
    pub tools: Vec<ToolDecl>,
    pub reads: Vec<String>,
    pub writes: Vec<String>,
}

/// One tool as its plugin declares it.
#[derive(Debug, Clone, Serialize)]
pub struct ToolDecl {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub input_schema: Value,
    pub output_schema: Option<Value>,
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
}

/// What a tool call answered.
#[derive(Debug, Clone)]
pub enum ToolOutcome {
    /// A read's answer.
    Result { text: String, structured: Option<Value> },
    /// A write's proposed change.
    Plan(Plan),
}

/// A proposed change (see `wit/plugin.wit`).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Plan {
    pub summary: String,
    pub diff: String,
    pub writes: Vec<PlannedWrite>,
    pub before: Vec<BeforeState>,
    pub details: Option<Value>,
}

/// One write of a plan.
///
/// In a plugin's [`Plan`], `precondition` is the plugin's *claim* (the ETag it read, or
/// create-only); the host checks that claim against live state and then sends its own derived
/// precondition instead (`changes::review`), which is what the journal records.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct PlannedWrite {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub precondition: Precondition,
    pub body: Option<Value>,
}

/// A resource as it was when the plan was made (`etag`/`body` are `None` if it did not exist).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct BeforeState {
    pub path: String,
    pub etag: Option<String>,
    pub body: Option<Value>,
}

/// A typed tool error, from the plugin or from the host on its behalf.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    #[error("invalid argument `{field}`: {message}")]
    InvalidInput { field: String, message: String },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("denied: {0}")]
    Denied(String),
    #[error("Azure answered {status} {code}: {message}")]
    Upstream { status: u16, code: String, message: String, request_id: Option<String> },
    #[error("{0}")]
    Internal(String),
    /// The plugin ran past its deadline and was stopped.
    #[error("plugin {plugin:?} ran past its {deadline_ms} ms deadline and was stopped")]
    Timeout { plugin: String, deadline_ms: u64 },
    /// Every call slot of the plugin stayed taken for the whole deadline of this call.
    #[error(
        "plugin {plugin:?} is busy: all {slots} of its call slots (max_concurrent_calls) stayed taken for this call's \
         whole {deadline_ms} ms deadline; try again when its running calls end"
    )]
    Busy { plugin: String, slots: u32, deadline_ms: u64 },
    /// The plugin trapped (panic, out of memory, unreachable, ...).
    #[error("plugin {plugin:?} crashed: {reason}")]
    Crashed { plugin: String, reason: String },
}

impl ToolError {
    /// A stable machine-readable kind, for `structuredContent`.
    pub fn kind(&self) -> &'static str {
        match self {
            ToolError::InvalidInput { .. } => "invalid-input",
            ToolError::NotFound(_) => "not-found",
            ToolError::Conflict(_) => "conflict",
            ToolError::Denied(_) => "denied",
            ToolError::Upstream { .. } => "upstream",
            ToolError::Internal(_) => "internal",
            ToolError::Timeout { .. } | ToolError::Busy { .. } => "timeout",
            ToolError::Crashed { .. } => "crashed",
        }
    }

    /// The error as JSON for `structuredContent`.
    pub fn to_json(&self) -> Value {
        let mut error = serde_json::json!({ "kind": self.kind(), "message": self.to_string() });
        match self {
            ToolError::InvalidInput { field, .. } => error["field"] = field.clone().into(),
            ToolError::Upstream { status, code, request_id, .. } => {
                error["status"] = (*status).into();
                error["code"] = code.clone().into();
                error["clientRequestId"] = request_id.clone().into();
            }
            _ => {}
        }
        serde_json::json!({ "error": error })
    }
}
