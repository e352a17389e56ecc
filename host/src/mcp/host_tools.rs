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
                description: "Undo a change from list_changes: restore every resource it wrote to its state \
                              before the change. Refused, showing what changed since, if a resource was modified \
                              after the change; force: true rolls back anyway. The rollback is itself confirmed \
                              and journaled."
                    .into(),
                input_schema: json!({
                    "type": "object",
                    "properties": {
                        "change_id": {"type": "string", "minLength": 1, "description": "The id from list_changes."},
                        "force": {"type": "boolean", "default": false, "description": "Roll back even if resources changed since."}
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
            let change =
                pipeline.journal().find(id).map_err(|e| ToolError::Internal(format!("{e:#}")))?.ok_or_else(|| {
                    ToolError::NotFound(format!("no change {id:?} in the journal; list_changes shows the ids"))
                })?;
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
    let items: Vec<Value> = selected.iter().map(|c| summarize(c)).collect();
    let mut text = if items.is_empty() { "No changes in the journal.".to_string() } else { String::new() };
    for c in &selected {
        text.push_str(&format!(
            "{} {} {} [{}] {}\n",
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

fn summarize(change: &Change) -> Value {
    let p = &change.planned;
    json!({
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
