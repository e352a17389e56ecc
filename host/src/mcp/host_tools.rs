//! The host's own tools, over the change journal: `list_changes` and `rollback_change`.
//!
//! They are not plugins because the journal is the host's: no plugin can read it. A rollback is
//! still a plan, so it goes through the same confirmation, `If-Match` apply and journal as any
//! plugin's write.

use serde_json::{Value, json};

use super::registry::HostTool;
use crate::changes::ChangePipeline;
use crate::changes::journal::Change;
use crate::runtime::api::{ToolDecl, ToolError, ToolOutcome};

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
pub async fn call(tool: HostTool, pipeline: &ChangePipeline, arguments: &Value) -> Result<ToolOutcome, ToolError> {
    match tool {
        HostTool::ListChanges => list_changes(pipeline, arguments),
        HostTool::RollbackChange => {
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
