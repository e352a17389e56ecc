//! The MCP surface: `tools/list` and `tools/call`, over stdio or streamable HTTP.
//!
//! A call flows one way: validate the arguments against the tool's schema → run the plugin
//! (runtime) → a read's answer goes back as a short text plus `structuredContent`; a write's
//! plan goes to the change pipeline. Every failure is an `isError` result with a typed
//! `structuredContent.error` (kind, message, and the field for invalid input), so an agent can
//! correct itself; only an unknown tool name is a protocol error.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::Value;

use super::registry::Registry;
use crate::changes::ChangePipeline;
use crate::runtime::Runtime;
use crate::runtime::api::{ToolError, ToolOutcome};
use crate::runtime::imports::ProgressSink;

/// The MCP server. Cheap to clone (one per HTTP session shares everything).
#[derive(Clone)]
pub struct GatewayServer {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Arc<Runtime>,
    registry: Registry,
    changes: Option<ChangePipeline>,
    instructions: String,
}

impl GatewayServer {
    /// A server exposing `runtime`'s plugins. `changes` is `None` when writes cannot be applied
    /// (no ARM access); `read_only` leaves write tools out.
    pub fn new(runtime: Arc<Runtime>, changes: Option<ChangePipeline>, instructions: String, read_only: bool) -> Self {
        let registry = Registry::build(&runtime, read_only);
        Self { inner: Arc::new(Inner { runtime, registry, changes, instructions }) }
    }

    /// The tool registry (for `plugins list`).
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Runs one tool call: the whole pipeline, minus the protocol.
    pub async fn run_tool(
        &self,
        name: &str,
        arguments: Value,
        progress: Option<ProgressSink>,
    ) -> Result<CallToolResult, McpError> {
        let Some(entry) = self.inner.registry.get(name) else {
            return Err(McpError::invalid_params(format!("unknown tool {name:?}"), None));
        };
        let mut arguments = if arguments.is_null() { Value::Object(Default::default()) } else { arguments };
        if let Err(e) = entry.validate_arguments(&arguments) {
            return Ok(error_result(&e));
        }
        let dry_run = entry.is_write() && arguments.get("dry_run").and_then(Value::as_bool).unwrap_or(false);
        if entry.is_write()
            && let Some(object) = arguments.as_object_mut()
        {
            object.remove("dry_run");
        }
        let started = std::time::Instant::now();
        let outcome = self.inner.runtime.call(&entry.plugin, &entry.decl.name, &arguments.to_string(), progress).await;
        tracing::debug!(tool = name, plugin = %entry.plugin.manifest.name, elapsed_us = started.elapsed().as_micros() as u64, ok = outcome.is_ok(), "tool call");
        match outcome {
            Err(e) => Ok(error_result(&e)),
            Ok(ToolOutcome::Result { text, structured }) => {
                if let Some(structured) = &structured
                    && let Err(e) = entry.validate_output(structured)
                {
                    return Ok(error_result(&e));
                }
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = structured;
                Ok(result)
            }
            Ok(ToolOutcome::Plan(plan)) => {
                if !entry.is_write() {
                    return Ok(error_result(&ToolError::Denied(format!(
                        "read-only tool {name:?} answered with a plan; plans come only from write tools"
                    ))));
                }
                let Some(changes) = &self.inner.changes else {
                    return Ok(error_result(&ToolError::Denied("this server cannot apply changes".into())));
                };
                match changes.handle(plan, entry.plugin.grants(), dry_run).await {
                    Err(e) => Ok(error_result(&e)),
                    Ok(outcome) => {
                        let mut result = if outcome.is_error() {
                            CallToolResult::error(vec![ContentBlock::text(outcome.text())])
                        } else {
                            CallToolResult::success(vec![ContentBlock::text(outcome.text())])
                        };
                        result.structured_content = Some(outcome.to_json());
                        Ok(result)
                    }
                }
            }
        }
    }
}

/// A tool error as an `isError` result the agent can act on.
pub fn error_result(error: &ToolError) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(error.to_string())]);
    result.structured_content = Some(error.to_json());
    result
}

impl ServerHandler for GatewayServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("azure-ai-gateway-mcp", env!("CARGO_PKG_VERSION"))
                    .with_title("Azure AI Gateway (API Management) governance"),
            )
            .with_instructions(self.inner.instructions.clone())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.inner.registry.tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let progress: Option<ProgressSink> = context.meta.get_progress_token().map(|token| {
            let peer = context.peer.clone();
            let sink: ProgressSink = Arc::new(move |done, total, message| {
                let mut param = ProgressNotificationParam::new(token.clone(), done);
                if let Some(total) = total {
                    param = param.with_total(total);
                }
                if let Some(message) = message {
                    param = param.with_message(message);
                }
                let peer = peer.clone();
                tokio::spawn(async move {
                    let _ = peer.notify_progress(param).await;
                });
            });
            sink
        });
        let arguments = request.arguments.map(Value::Object).unwrap_or(Value::Null);
        tokio::select! {
            result = self.run_tool(&request.name, arguments, progress) => result.map(Into::into),
            _ = context.ct.cancelled() => Ok(error_result(&ToolError::Internal("the client cancelled the call".into())).into()),
        }
    }
}
