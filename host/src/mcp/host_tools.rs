//! The host's own tools: over the change journal (`list_changes`, `rollback_change`) and, in
//! `sandbox` mode only, over the local emulator's simulated clock and outages (`sandbox_*`).
//!
//! They are not plugins because the journal and the sandbox are the host's: no plugin can read
//! the one or drive the other. A rollback is still a plan, so it goes through the same
//! confirmation, `If-Match` apply and journal as any plugin's write. The sandbox controls change
//! only the local simulation, never the governed service, so they act directly.

use serde_json::{Value, json};

use super::registry::HostTool;
use crate::changes::ChangePipeline;
use crate::changes::journal::Change;
use crate::runtime::api::{ToolDecl, ToolError, ToolOutcome};
use crate::runtime::imports::ProgressSink;
use crate::sandbox::{MAX_ADVANCE_MINUTES, SandboxControls};

/// What host tools work on: the journal (where changes can be applied) and the sandbox.
pub struct HostContext<'a> {
    pub changes: Option<&'a ChangePipeline>,
    pub sandbox: Option<&'a SandboxControls>,
    pub progress: Option<ProgressSink>,
}

/// Declarations of the sandbox-only tools.
pub fn sandbox_declarations() -> Vec<(HostTool, ToolDecl)> {
    let decl = |name: &str, title: &str, description: &str, schema: Value, read_only: bool| ToolDecl {
        name: name.into(),
        title: Some(title.into()),
        description: description.into(),
        input_schema: schema,
        output_schema: None,
        read_only,
        destructive: false,
        idempotent: read_only,
    };
    vec![
        (
            HostTool::SandboxClock,
            decl(
                "sandbox_clock",
                "Sandbox clock",
                "SANDBOX ONLY (this tool exists only when the server runs against its local emulator): the \
                 simulated clock (now, history start, requests simulated) and the backend outages switched on \
                 with sandbox_set_outage, with the simulated minutes timed ones have left.",
                json!({"type": "object", "properties": {}, "additionalProperties": false}),
                true,
            ),
        ),
        (
            HostTool::SandboxAdvanceClock,
            decl(
                "sandbox_advance_clock",
                "Advance the sandbox clock",
                "SANDBOX ONLY: simulate N more minutes of the demo tenant's traffic under the policies in force \
                 now (the emulator's clock stands still otherwise), so metrics and logs show what a change did. \
                 Sends progress notifications while it simulates. Timed outages end at their minute.",
                json!({"type": "object", "properties": {
                    "minutes": {"type": "integer", "minimum": 1, "maximum": MAX_ADVANCE_MINUTES,
                                "description": "Simulated minutes to add, e.g. 60 for an hour, 1440 for a day."}
                }, "required": ["minutes"], "additionalProperties": false}),
                false,
            ),
        ),
        (
            HostTool::SandboxSetOutage,
            decl(
                "sandbox_set_outage",
                "Switch a sandbox backend outage",
                "SANDBOX ONLY: take a backend of the local emulator down (it answers 503, or refuses \
                 connections) or bring it back, optionally for N minutes of simulated time — a failover drill \
                 without touching Azure. Then advance the clock and read the traffic per backend.",
                json!({"type": "object", "properties": {
                    "backend_id": {"type": "string", "pattern": "^[A-Za-z0-9._~-]{1,80}$", "description": "e.g. aoai-eastus"},
                    "enabled": {"type": "boolean", "description": "true: the outage starts now; false: it ends now."},
                    "minutes": {"type": "integer", "minimum": 1, "maximum": MAX_ADVANCE_MINUTES,
                                "description": "End the outage after this many simulated minutes."},
                    "mode": {"type": "string", "enum": ["503", "connectionFailure"], "default": "503"}
                }, "required": ["backend_id", "enabled"], "additionalProperties": false}),
                false,
            ),
        ),
    ]
}

/// Declarations of the host tools.
pub fn declarations() -> Vec<(HostTool, ToolDecl)> {
    vec![
        (
            HostTool::ListChanges,
            ToolDecl {
                name: "list_changes".into(),
                title: Some("Change journal".into()),
                description: "List the changes this server applied (newest first): id, time, client, tool, \
                              summary, outcome and the resources written. Use an id with rollback_change."
                    .into(),
                input_schema: json!({
                    "type": "object",
                    "properties": {
                        "since": {"type": "string", "description": "Only changes at or after this time (RFC 3339, e.g. 2026-11-24T00:00:00Z)."},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 20}
                    },
                    "additionalProperties": false
                }),
                output_schema: None,
                read_only: true,
                destructive: false,
                idempotent: true,
            },
        ),
        (
            HostTool::RollbackChange,
            ToolDecl {
                name: "rollback_change".into(),
                title: Some("Roll back a change".into()),
                description: "Undo one change from list_changes, like git revert: reverse that change's own \
                              edits on the resources as they are now, keeping every later change (policy text \
                              merged line by line, JSON resources field by field, pool members by id). Refused, \
                              with both edits side by side, if a later change edited the same lines or fields; \
                              force: true instead restores every resource the change wrote to its state before \
                              it, discarding later edits. The rollback is itself confirmed and journaled, and \
                              rolling back a rollback re-applies the change."
                    .into(),
                input_schema: json!({
                    "type": "object",
                    "properties": {
                        "change_id": {"type": "string", "minLength": 1, "description": "The id from list_changes."},
                        "force": {"type": "boolean", "default": false, "description": "Restore the state before the change, discarding later edits to the same resources."}
                    },
                    "required": ["change_id"],
                    "additionalProperties": false
                }),
                output_schema: None,
                read_only: false,
                destructive: true,
                idempotent: false,
            },
        ),
    ]
}

/// Runs a host tool.
pub async fn call(tool: HostTool, context: HostContext<'_>, arguments: &Value) -> Result<ToolOutcome, ToolError> {
    let unavailable = || ToolError::Denied("this server cannot apply changes".into());
    let no_sandbox = || ToolError::Denied("the sandbox controls exist only in sandbox mode".into());
    match tool {
        HostTool::ListChanges => list_changes(context.changes.ok_or_else(unavailable)?, arguments),
        HostTool::RollbackChange => {
            let pipeline = context.changes.ok_or_else(unavailable)?;
            let id = arguments["change_id"].as_str().unwrap_or_default();
            let force = arguments["force"].as_bool().unwrap_or(false);
            let changes = pipeline.journal().changes().map_err(|e| ToolError::Internal(format!("{e:#}")))?;
            let change = changes.iter().find(|c| c.planned.id == id).cloned().ok_or_else(|| {
                ToolError::NotFound(format!("no change {id:?} in the journal; list_changes shows the ids"))
            })?;
            if let Some(revert) = reverted_by(&changes, id) {
                return Err(ToolError::Conflict(format!(
                    "change {id} was already reverted by change {revert}; roll back {revert} to apply it again"
                )));
            }
            let plan = crate::changes::rollback::plan_rollback(pipeline, &change, force).await?;
            Ok(ToolOutcome::Plan(plan))
        }
        HostTool::SandboxClock => {
            let clock = context.sandbox.ok_or_else(no_sandbox)?.clock().await?;
            let text = format!(
                "Sandbox clock: {} ({} simulated minutes since {}).",
                clock["now"].as_str().unwrap_or("?"),
                clock["simulatedMinutes"],
                clock["historyStart"].as_str().unwrap_or("?")
            );
            Ok(ToolOutcome::Result { text, structured: Some(clock) })
        }
        HostTool::SandboxAdvanceClock => {
            let minutes = arguments["minutes"].as_u64().unwrap_or(1);
            let done = context.sandbox.ok_or_else(no_sandbox)?.advance(minutes, context.progress).await?;
            let mut text = format!(
                "Simulated {minutes} minute(s): the sandbox clock is now {} ({} requests simulated).",
                done["now"].as_str().unwrap_or("?"),
                done["requestsSimulated"]
            );
            for ended in done["outagesEnded"].as_array().into_iter().flatten() {
                text.push_str(&format!(
                    " The outage of {} ended at {}.",
                    ended["backend"].as_str().unwrap_or("?"),
                    ended["endedAt"].as_str().unwrap_or("?")
                ));
            }
            Ok(ToolOutcome::Result { text, structured: Some(done) })
        }
        HostTool::SandboxSetOutage => {
            let backend = arguments["backend_id"].as_str().unwrap_or_default();
            let enabled = arguments["enabled"].as_bool().unwrap_or(false);
            let minutes = arguments["minutes"].as_u64();
            let mode = arguments["mode"].as_str();
            let done = context.sandbox.ok_or_else(no_sandbox)?.set_outage(backend, enabled, minutes, mode).await?;
            let name = done["backend"].as_str().unwrap_or(backend);
            let text = match (enabled, minutes) {
                (false, _) => format!("The outage of {name} is over (sandbox): it answers again."),
                (true, Some(m)) => format!(
                    "{name} is down in the sandbox for {m} simulated minute(s), from {}.",
                    done["now"].as_str().unwrap_or("now")
                ),
                (true, None) => format!(
                    "{name} is down in the sandbox from {} until you switch it back.",
                    done["now"].as_str().unwrap_or("now")
                ),
            };
            Ok(ToolOutcome::Result { text, structured: Some(done) })
        }
    }
}

fn list_changes(pipeline: &ChangePipeline, arguments: &Value) -> Result<ToolOutcome, ToolError> {
    let limit = arguments["limit"].as_u64().unwrap_or(20) as usize;
    let since = match arguments["since"].as_str() {
        None => None,
        Some(text) => Some(humantime::parse_rfc3339_weak(text).map_err(|e| ToolError::InvalidInput {
            field: "since".into(),
            message: format!("{text:?} is not an RFC 3339 time ({e}); e.g. 2026-11-24T00:00:00Z"),
        })?),
    };
    let changes = pipeline.journal().changes().map_err(|e| ToolError::Internal(format!("{e:#}")))?;
    let selected: Vec<&Change> = changes
        .iter()
        .rev()
        .filter(|c| match since {
            None => true,
            Some(since) => humantime::parse_rfc3339_weak(&c.planned.time).is_ok_and(|t| t >= since),
        })
        .take(limit)
        .collect();
    let items: Vec<Value> = selected.iter().map(|c| summarize(c, reverted_by(&changes, &c.planned.id))).collect();
    let mut text = if items.is_empty() { "No changes in the journal.".to_string() } else { String::new() };
    for c in &selected {
        let reverted = reverted_by(&changes, &c.planned.id).map(|r| format!(" (reverted by {r})")).unwrap_or_default();
        text.push_str(&format!(
            "{} {} {} [{}{reverted}] {}\n",
            c.planned.id,
            c.planned.time,
            c.planned.tool,
            c.status(),
            c.planned.summary
        ));
    }
    Ok(ToolOutcome::Result {
        text,
        structured: Some(json!({ "changes": items, "journal": pipeline.journal().path().display().to_string() })),
    })
}

/// The applied rollback that currently undoes change `id`, if any: a rollback of it that was
/// applied and has not itself been rolled back (a rollback of a rollback re-applies the change).
fn reverted_by(changes: &[Change], id: &str) -> Option<String> {
    changes
        .iter()
        .rev()
        .filter(|c| c.planned.rollback_of.as_deref() == Some(id) && c.status() == "applied")
        .find(|c| reverted_by(changes, &c.planned.id).is_none())
        .map(|c| c.planned.id.clone())
}

fn summarize(change: &Change, reverted_by: Option<String>) -> Value {
    let p = &change.planned;
    json!({
        "revertedBy": reverted_by,
        "id": p.id,
        "time": p.time,
        "client": p.client,
        "tool": p.tool,
        "plugin": p.plugin,
        "arguments": p.arguments,
        "summary": p.summary,
        "outcome": change.status(),
        "rollbackOf": p.rollback_of,
        "resources": p.writes.iter().map(|w| format!("{} {}", w.method, w.path)).collect::<Vec<_>>(),
        "completedAt": change.completed.as_ref().map(|c| c.time.clone()),
    })
}
