//! The MCP surface: `tools/list` and `tools/call`, over stdio or streamable HTTP.
//!
//! A call flows one way: validate the arguments against the tool's schema → run the tool (a
//! plugin through the runtime, or a host tool) → a read's answer goes back as a short text
//! plus `structuredContent`; a write's plan is checked against the plugin's write grant and
//! caps, reviewed by the host against live state (`changes::review`: what the user sees, the
//! preconditions, the before-states), shown to the user (`confirm`), then applied and journaled
//! (`changes`). A stale plan — a 412, or a plugin claim the live state contradicts — is re-made
//! against fresh state and shown again: never a blind overwrite.
//!
//! Every failure is an `isError` result with a typed `structuredContent.error` (kind, message,
//! and the field for invalid input), so an agent can correct itself; only an unknown tool name
//! is a protocol error.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult, CompletionInfo,
    ContentBlock, GetPromptRequestParams, GetPromptResponse, Implementation, InputRequiredResult, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ServerCapabilities, ServerConfig,
};
use rmcp::service::{Peer, RequestContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};

use super::client_log::{CallLog, SessionLog};
use super::completion::Completer;
use super::confirm::{self, Channel, Decision};
use super::host_tools;
use super::pending::PendingPlans;
use super::progress;
use super::registry::{Registry, ToolEntry, ToolSource};
use super::{prompts, resources};
use crate::changes::journal::ClientInfo;
use crate::changes::{Applied, ChangeContext, ChangePipeline, MAX_PLAN_WRITES, Reviewed, ReviewedPlan};
use crate::runtime::api::{Plan, ToolError, ToolOutcome};
use crate::runtime::imports::{CallSinks, LogSink, ProgressSink};
use crate::runtime::{Grants, Runtime};
use crate::sandbox::SandboxControls;

/// How often a plan that keeps going stale is re-made before giving up.
const MAX_REPLANS: usize = 3;

/// What a call knows about its caller.
#[derive(Clone)]
pub struct CallSession {
    pub progress: Option<ProgressSink>,
    /// The call's log lines for the client, if it set a level (`logging/setLevel`).
    pub log: Option<LogSink>,
    pub client: Option<ClientInfo>,
    pub channel: Channel,
}

impl CallSession {
    /// A caller that cannot be asked anything (in-process use, tests).
    pub fn unattended() -> Self {
        Self { progress: None, log: None, client: None, channel: Channel::Unavailable }
    }

    /// A line of the host's about this call, for the client's log (if it asked for one).
    pub fn tell(&self, level: tracing::Level, message: &str) {
        if let Some(log) = &self.log {
            log(level, "host", message);
        }
    }
}

/// The MCP server. Cheap to clone (one per HTTP session shares everything).
#[derive(Clone)]
pub struct GatewayServer {
    inner: Arc<Inner>,
    /// This session's own state (its log level): one per stdio server or HTTP session.
    session: Arc<SessionLog>,
}

/// A session subscribed to resources (`resources/subscribe`).
struct Subscriber {
    /// Which session (the address of its `SessionLog`, alive while the session is).
    session: std::sync::Weak<SessionLog>,
    peer: Peer<RoleServer>,
    uris: std::collections::BTreeSet<String>,
}

struct Inner {
    runtime: Arc<Runtime>,
    registry: Registry,
    changes: Option<Arc<ChangePipeline>>,
    sandbox: Option<Arc<SandboxControls>>,
    completer: Completer,
    subscribers: std::sync::Mutex<Vec<Subscriber>>,
    instructions: String,
    skip_confirmation: bool,
    pending: PendingPlans,
}

/// How the server is set up.
pub struct ServerOptions {
    pub instructions: String,
    pub read_only: bool,
    pub skip_confirmation: bool,
    /// The sandbox's clock and outage controls (`sandbox` mode only; their tools exist only then).
    pub sandbox: Option<Arc<SandboxControls>>,
}

impl GatewayServer {
    /// A server exposing `runtime`'s plugins and, when `changes` is given, the change journal
    /// tools. Without `changes`, plans cannot be applied (only dry runs).
    pub fn new(runtime: Arc<Runtime>, changes: Option<Arc<ChangePipeline>>, options: ServerOptions) -> Self {
        let mut host_tools = if changes.is_some() { host_tools::declarations() } else { Vec::new() };
        if options.sandbox.is_some() {
            host_tools.extend(host_tools::sandbox_declarations());
        }
        let registry = Registry::build(&runtime, options.read_only, &host_tools);
        if options.skip_confirmation && !options.read_only {
            tracing::warn!(
                "--dangerously-skip-confirmation: plans are applied WITHOUT asking the user; every such write is logged"
            );
        }
        Self {
            session: Arc::default(),
            inner: Arc::new(Inner {
                runtime,
                registry,
                changes,
                sandbox: options.sandbox,
                completer: Completer::default(),
                subscribers: Default::default(),
                instructions: options.instructions,
                skip_confirmation: options.skip_confirmation,
                pending: PendingPlans::default(),
            }),
        }
    }

    /// The same server for a new session (HTTP): everything shared but the session's own state.
    pub fn for_session(&self) -> Self {
        Self { inner: self.inner.clone(), session: Arc::default() }
    }

    /// The tool registry (for `plugins list`).
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Runs one tool call (minus the protocol): validation, the tool, and for a write, the
    /// whole plan pipeline.
    pub async fn run_tool(
        &self,
        name: &str,
        arguments: Value,
        session: &CallSession,
    ) -> Result<CallToolResponse, McpError> {
        let entry = self.entry(name)?;
        if entry.hidden {
            return Ok(refused_read_only(name).into());
        }
        let mut arguments = if arguments.is_null() { Value::Object(Default::default()) } else { arguments };
        if let Err(e) = entry.validate_arguments(&arguments) {
            return Ok(error_result(&e).into());
        }
        let dry_run = entry.is_write() && arguments.get("dry_run").and_then(Value::as_bool).unwrap_or(false);
        if entry.is_write()
            && let Some(object) = arguments.as_object_mut()
        {
            object.remove("dry_run");
        }
        let started = std::time::Instant::now();
        let outcome = self.invoke(&entry, &arguments, session).await;
        tracing::debug!(
            tool = name,
            owner = entry.owner(),
            elapsed_us = started.elapsed().as_micros() as u64,
            ok = outcome.is_ok(),
            "tool call"
        );
        match outcome {
            Err(e) => Ok(error_result(&e).into()),
            Ok(ToolOutcome::Result { text, structured }) => {
                if let Some(structured) = &structured
                    && let Err(e) = entry.validate_output(structured)
                {
                    return Ok(error_result(&e).into());
                }
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = structured;
                Ok(result.into())
            }
            Ok(ToolOutcome::Plan(plan)) => Ok(self.handle_plan(&entry, &arguments, plan, dry_run, session).await),
        }
    }

    /// Continues a 2026-07-28 round trip: the client retried the call with the user's answer.
    async fn resume(
        &self,
        name: &str,
        arguments: Value,
        state: &str,
        request: &CallToolRequestParams,
        session: &CallSession,
    ) -> Result<CallToolResponse, McpError> {
        let entry = self.entry(name)?;
        let mut arguments = if arguments.is_null() { Value::Object(Default::default()) } else { arguments };
        if let Some(object) = arguments.as_object_mut() {
            object.remove("dry_run");
        }
        let pending = match self.inner.pending.take(state, name, &arguments) {
            Ok(pending) => pending,
            Err(why) => return Ok(error_result(&ToolError::Conflict(why)).into()),
        };
        match confirm::decision_from(request.input_responses.as_ref()) {
            Decision::Refuse(why) => Ok(not_applied(&pending.plan, &why).into()),
            Decision::Accept => {
                Ok(self.apply_confirmed(&entry, &arguments, pending.plan, session, "input-required", 0).await)
            }
        }
    }

    fn entry(&self, name: &str) -> Result<Arc<ToolEntry>, McpError> {
        self.inner
            .registry
            .get(name)
            .cloned()
            .ok_or_else(|| McpError::invalid_params(format!("unknown tool {name:?}"), None))
    }

    /// Runs the tool itself: a plugin call, or a host tool.
    async fn invoke(
        &self,
        entry: &ToolEntry,
        arguments: &Value,
        session: &CallSession,
    ) -> Result<ToolOutcome, ToolError> {
        let progress = session.progress.clone();
        match &entry.source {
            ToolSource::Plugin(plugin) => {
                let sinks = CallSinks { progress, log: session.log.clone() };
                self.inner.runtime.call(plugin, &entry.decl.name, &arguments.to_string(), sinks).await
            }
            ToolSource::Host(tool) => {
                let context = host_tools::HostContext {
                    changes: self.inner.changes.as_deref(),
                    sandbox: self.inner.sandbox.as_deref(),
                    progress,
                };
                host_tools::call(*tool, context, arguments).await
            }
        }
    }

    fn changes(&self) -> Result<&ChangePipeline, ToolError> {
        self.inner.changes.as_deref().ok_or_else(|| ToolError::Denied("this server cannot apply changes".into()))
    }

    /// The write grant a plan from `entry` is checked against.
    fn grants(&self, entry: &ToolEntry, plan: &Plan) -> Grants {
        match &entry.source {
            ToolSource::Plugin(plugin) => plugin.grants().clone(),
            // A rollback writes back exactly what a journaled (and then granted) change wrote.
            ToolSource::Host(_) => {
                let kinds: Vec<String> = plan
                    .writes
                    .iter()
                    .filter_map(|w| self.changes().ok()?.arm().scope(&w.path).ok().map(|s| s.kind))
                    .collect();
                Grants::new("host", &[], &kinds, None, None)
            }
        }
    }

    /// Tells subscribed sessions which policy documents a change wrote.
    async fn notify_updated(&self, applied: &Applied) {
        let written: Vec<&str> = match applied {
            Applied::Done { writes, .. } => writes.iter().map(|w| w.path.as_str()).collect(),
            Applied::Failed { made, .. } => made.iter().map(|w| w.path.as_str()).collect(),
            Applied::Stale { .. } => return,
        };
        let uris: std::collections::BTreeSet<String> =
            written.iter().filter_map(|p| resources::policy_uri(p)).collect();
        let targets: Vec<(Peer<RoleServer>, String)> = {
            let mut subscribers = self.inner.subscribers.lock().unwrap();
            subscribers.retain(|s| s.session.strong_count() > 0);
            subscribers
                .iter()
                .flat_map(|s| uris.iter().filter(|u| s.uris.contains(*u)).map(|u| (s.peer.clone(), u.clone())))
                .collect()
        };
        for (peer, uri) in targets {
            let _ = peer.notify_resource_updated(rmcp::model::ResourceUpdatedNotificationParam::new(uri)).await;
        }
    }

    /// The most writes a plan from `entry` may make.
    fn max_plan_writes(entry: &ToolEntry) -> usize {
        match &entry.source {
            ToolSource::Plugin(plugin) => plugin.limits.max_plan_writes,
            ToolSource::Host(_) => MAX_PLAN_WRITES,
        }
    }

    async fn handle_plan(
        &self,
        entry: &ToolEntry,
        arguments: &Value,
        plan: Plan,
        dry_run: bool,
        session: &CallSession,
    ) -> CallToolResponse {
        if !entry.is_write() {
            return error_result(&ToolError::Denied(format!(
                "read-only tool {:?} answered with a plan; plans come only from write tools",
                entry.name
            )))
            .into();
        }
        let (reviewed, replans, note) = match self.reviewed(entry, arguments, plan, session, 0, None).await {
            Ok(done) => done,
            Err(response) => return response,
        };
        if dry_run {
            let mut text = format!(
                "Dry run, nothing was changed. The plan, as read from the live service:\n{}\n\n",
                reviewed.lines.join("\n")
            );
            text.push_str(&reviewed.diff());
            text.push_str(&format!("\nThe plugin's own words: {}", reviewed.proposed.summary));
            let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
            result.structured_content = Some(json!({ "dryRun": true, "applied": false, "plan": reviewed.to_json() }));
            return result.into();
        }
        self.confirm_then_apply(entry, arguments, reviewed, session, note, replans).await
    }

    /// Checks `plan` (grant, caps) and reviews it against the live service. A plan the live state
    /// contradicts is made again by its tool, at most [`MAX_REPLANS`] times in all, and the note
    /// says why the user sees a second plan.
    async fn reviewed(
        &self,
        entry: &ToolEntry,
        arguments: &Value,
        mut plan: Plan,
        session: &CallSession,
        mut replans: usize,
        mut note: Option<String>,
    ) -> Result<(ReviewedPlan, usize, Option<String>), CallToolResponse> {
        let changes = self.changes().map_err(|e| CallToolResponse::from(error_result(&e)))?;
        loop {
            changes
                .check(&plan, &self.grants(entry, &plan), Self::max_plan_writes(entry))
                .map_err(|e| CallToolResponse::from(error_result(&e)))?;
            let (path, reason) = match changes.review(entry.owner(), plan).await {
                Err(e) => return Err(error_result(&e).into()),
                Ok(Reviewed::Ready(reviewed)) => return Ok((*reviewed, replans, note)),
                Ok(Reviewed::Stale { path, reason }) => (path, reason),
            };
            replans += 1;
            tracing::info!(tool = %entry.name, path = %path, "stale plan ({reason}): re-planning against fresh state");
            if replans >= MAX_REPLANS {
                return Err(error_result(&ToolError::Conflict(format!(
                    "{reason}. The tool's plan disagreed with the live state of {path} {MAX_REPLANS} times, so \
                     nothing was written; try again later"
                )))
                .into());
            }
            let why = format!("The first plan did not match the live service ({reason}), so it was made again.");
            plan = self.replan(entry, arguments, session, &why).await?;
            note = Some(why);
        }
    }

    /// Runs the tool again for a fresh plan.
    async fn replan(
        &self,
        entry: &ToolEntry,
        arguments: &Value,
        session: &CallSession,
        note: &str,
    ) -> Result<Plan, CallToolResponse> {
        session.tell(tracing::Level::INFO, note);
        match self.invoke(entry, arguments, session).await {
            Ok(ToolOutcome::Plan(fresh)) => Ok(fresh),
            Ok(ToolOutcome::Result { text, .. }) => {
                Err(error_result(&ToolError::Conflict(format!("{note} The tool now says: {text}"))).into())
            }
            Err(e) => Err(error_result(&e).into()),
        }
    }

    /// Asks the user (as the channel allows), then applies; re-plans on a stale ETag.
    async fn confirm_then_apply(
        &self,
        entry: &ToolEntry,
        arguments: &Value,
        plan: ReviewedPlan,
        session: &CallSession,
        note: Option<String>,
        replans: usize,
    ) -> CallToolResponse {
        let how = match &session.channel {
            Channel::Skip => {
                session.tell(tracing::Level::WARN, "applying WITHOUT confirmation (--dangerously-skip-confirmation)");
                tracing::warn!(tool = %entry.name, writes = plan.writes.len(), "applying WITHOUT confirmation (--dangerously-skip-confirmation): {}", plan.lines.join(" | "));
                "skipped"
            }
            Channel::Unavailable => return refused_unconfirmable(&plan).into(),
            Channel::InputRequired => {
                let requests = confirm::input_requests(&plan, note.as_deref());
                let state = self.inner.pending.insert(&entry.name, arguments, plan);
                return CallToolResponse::InputRequired(InputRequiredResult::new(Some(requests), Some(state)));
            }
            Channel::Elicit(peer) => match confirm::elicit(peer, &plan, note.as_deref()).await {
                Decision::Accept => "elicitation",
                Decision::Refuse(why) => return not_applied(&plan, &why).into(),
            },
        };
        self.apply_confirmed(entry, arguments, plan, session, how, replans).await
    }

    /// Applies a plan the user accepted. On 412, re-makes the plan against fresh state and asks
    /// again (with skipped confirmation: returns the new plan unapplied).
    async fn apply_confirmed(
        &self,
        entry: &ToolEntry,
        arguments: &Value,
        plan: ReviewedPlan,
        session: &CallSession,
        how: &str,
        replans: usize,
    ) -> CallToolResponse {
        let Ok(changes) = self.changes() else {
            return error_result(&ToolError::Denied("this server cannot apply changes".into())).into();
        };
        let context = ChangeContext {
            tool: entry.name.clone(),
            plugin: entry.owner().to_string(),
            arguments: arguments.clone(),
            client: session.client.clone(),
            confirmation: how.to_string(),
            rollback_of: match &entry.source {
                // Only the host's own rollback tool may say what it rolls back.
                ToolSource::Host(_) => {
                    plan.proposed.details.as_ref().and_then(|d| d["rollbackOf"].as_str()).map(str::to_string)
                }
                ToolSource::Plugin(_) => None,
            },
        };
        let applied = match changes.apply(plan, context).await {
            Ok(applied) => applied,
            Err(e) => return error_result(&e).into(),
        };
        self.notify_updated(&applied).await;
        let Applied::Stale { path, .. } = &applied else {
            return applied_result(&applied).into();
        };
        if replans + 1 >= MAX_REPLANS {
            return error_result(&ToolError::Conflict(format!(
                "{path} kept changing while the plan was applied ({MAX_REPLANS} attempts); nothing was written; try again later"
            )))
            .into();
        }
        let note = format!(
            "{path} was changed by someone else after you saw the plan, so nothing was written. \
             This is the plan made again against its current state."
        );
        tracing::info!(tool = %entry.name, path = %path, "stale plan: re-planning against fresh state");
        let plan = match self.replan(entry, arguments, session, &note).await {
            Ok(plan) => plan,
            Err(response) => return response,
        };
        let (plan, replans, note) = match self.reviewed(entry, arguments, plan, session, replans + 1, Some(note)).await
        {
            Ok(done) => done,
            Err(response) => return response,
        };
        if let Channel::Skip = session.channel {
            let note = note.unwrap_or_default();
            let mut result = CallToolResult::error(vec![ContentBlock::text(format!(
                "{note} It was not applied; call the tool again to apply it.\n\n{}\n\n{}",
                plan.lines.join("\n"),
                plan.diff()
            ))]);
            result.structured_content =
                Some(json!({"applied": false, "stale": true, "message": note, "newPlan": plan.to_json()}));
            return result.into();
        }
        Box::pin(self.confirm_then_apply(entry, arguments, plan, session, note, replans)).await
    }
}

/// A tool error as an `isError` result the agent can act on.
pub fn error_result(error: &ToolError) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(error.to_string())]);
    result.structured_content = Some(error.to_json());
    result
}

fn applied_result(applied: &Applied) -> CallToolResult {
    let mut result = if applied.is_error() {
        CallToolResult::error(vec![ContentBlock::text(applied.text())])
    } else {
        CallToolResult::success(vec![ContentBlock::text(applied.text())])
    };
    result.structured_content = Some(applied.to_json());
    result
}

fn not_applied(plan: &ReviewedPlan, why: &str) -> CallToolResult {
    let mut result =
        CallToolResult::success(vec![ContentBlock::text(format!("Not applied: the user {why}. Nothing was written."))]);
    result.structured_content =
        Some(json!({"applied": false, "confirmed": false, "reason": why, "summary": plan.lines}));
    result
}

fn refused_unconfirmable(plan: &ReviewedPlan) -> CallToolResult {
    let message = "Not applied: this change needs the user's confirmation, and this MCP client cannot ask for it \
                   (it did not declare the elicitation capability). Nothing was written. Use dry_run: true to see \
                   the plan. An operator who accepts unconfirmed writes can start the server with \
                   --dangerously-skip-confirmation or AIGW_DANGEROUSLY_SKIP_CONFIRMATION=1.";
    let mut result = CallToolResult::error(vec![ContentBlock::text(message)]);
    result.structured_content = Some(json!({
        "error": {"kind": "denied", "message": message},
        "applied": false,
        "plan": plan.to_json(),
    }));
    result
}

fn refused_read_only(name: &str) -> CallToolResult {
    error_result(&ToolError::Denied(format!(
        "{name} changes the service, and this server runs in read-only mode (--read-only / AIGW_READ_ONLY)"
    )))
}

impl ServerHandler for GatewayServer {
    #[allow(deprecated)] // logging: see `client_log`
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_completions()
                .enable_logging()
                .build(),
        )
        .with_server_info(
            Implementation::new("azure-ai-gateway-mcp", env!("CARGO_PKG_VERSION"))
                .with_title("Azure AI Gateway (API Management) governance"),
        )
        .with_instructions(self.inner.instructions.clone())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let resources = match self.inner.changes.as_deref() {
            Some(changes) => resources::list(changes).await?,
            None => Vec::new(),
        };
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(resources::templates()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let changes = self
            .inner
            .changes
            .as_deref()
            .ok_or_else(|| McpError::resource_not_found("this server has no journal or service to read", None))?;
        let contents = resources::read(changes, &request.uri).await?;
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let context = request.context.and_then(|c| c.arguments).unwrap_or_default();
        let known = match request.r#ref.as_prompt_name() {
            Some(prompt) => prompts::argument_names(prompt).contains(&request.argument.name.as_str()),
            None => true, // a resource template's variable
        };
        let info = if known {
            self.inner
                .completer
                .complete(self.inner.changes.as_deref(), &request.argument.name, &request.argument.value, &context)
                .await
        } else {
            CompletionInfo::default()
        };
        Ok(CompleteResult::new(info))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let arguments: std::collections::BTreeMap<String, String> = request
            .arguments
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
            .collect();
        Ok(prompts::get(&request.name, &arguments)?.into())
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
        // Progress is coalesced and rate-limited (see `progress`), and its last report is sent
        // before the result.
        let forwarder = context.meta.get_progress_token().map(|token| {
            let peer = context.peer.clone();
            let notify: progress::Notify = Arc::new(move |param| {
                let peer = peer.clone();
                Box::pin(async move {
                    let _ = peer.notify_progress(param).await;
                })
            });
            progress::ProgressForwarder::start(token, self.inner.runtime.progress_interval(), notify)
        });
        let progress = forwarder.as_ref().map(progress::ProgressForwarder::sink);
        // 2026-07-28 clients opt in per request (`_meta` `io.modelcontextprotocol/logLevel`);
        // 2025-11-25 clients once per session (`logging/setLevel`).
        #[allow(deprecated)]
        let level = context.meta.log_level().or_else(|| self.session.level());
        let call_log = level.map(|level| CallLog::start(context.peer.clone(), level));
        let session = CallSession {
            progress,
            log: call_log.as_ref().map(CallLog::sink),
            client: context.client_info().map(|i| ClientInfo { name: i.name, version: i.version }),
            channel: Channel::for_request(&context, self.inner.skip_confirmation),
        };
        let arguments = request.arguments.clone().map(Value::Object).unwrap_or(Value::Null);
        let work = async {
            match request.request_state.as_deref() {
                Some(state) => self.resume(&request.name, arguments, state, &request, &session).await,
                None => self.run_tool(&request.name, arguments, &session).await,
            }
        };
        let result = tokio::select! {
            result = work => result,
            _ = context.ct.cancelled() => Ok(error_result(&ToolError::Internal("the client cancelled the call".into())).into()),
        };
        drop(session);
        if let Some(forwarder) = forwarder {
            forwarder.finish().await;
        }
        if let Some(call_log) = call_log {
            call_log.finish().await;
        }
        result
    }

    #[allow(deprecated)] // legacy (2025-11-25) subscriptions; see `resources`
    async fn subscribe(
        &self,
        request: rmcp::model::SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if !resources::is_ours(&request.uri) {
            return Err(McpError::resource_not_found(format!("unknown resource {:?}", request.uri), None));
        }
        let mut subscribers = self.inner.subscribers.lock().unwrap();
        let me = Arc::downgrade(&self.session);
        match subscribers.iter_mut().find(|s| s.session.ptr_eq(&me)) {
            Some(s) => {
                s.peer = context.peer.clone();
                s.uris.insert(request.uri);
            }
            None => subscribers.push(Subscriber {
                session: me,
                peer: context.peer.clone(),
                uris: std::iter::once(request.uri).collect(),
            }),
        }
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: rmcp::model::UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let me = Arc::downgrade(&self.session);
        if let Some(s) = self.inner.subscribers.lock().unwrap().iter_mut().find(|s| s.session.ptr_eq(&me)) {
            s.uris.remove(&request.uri);
        }
        Ok(())
    }

    #[allow(deprecated)] // MCP logging: see `client_log`
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.session.set(request.level);
        Ok(())
    }
}
