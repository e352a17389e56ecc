//! The change pipeline: what happens to a plan once the user has confirmed it.
//!
//! Order of operations, each step a guarantee:
//! 1. [`ChangePipeline::check`]: the plan's writes stay under the service, use PUT/PATCH/DELETE
//!    and touch only kinds in the plugin's write grant — checked before the user is even asked.
//! 2. (the MCP surface asks the user; see `mcp::confirm`)
//! 3. [`ChangePipeline::apply`]: the journal's `planned` record is on disk before the first write;
//!    writes go in the plan's order with the plan's `If-Match`; a failure stops the plan and the
//!    writes already made are restored to their before-state (compensation); the journal's
//!    `completed` record says exactly what happened.
//!
//! A 412 on the first write means someone changed the resource since the plan was made: nothing
//! was written, and the caller re-plans against fresh state (never a blind overwrite).

pub mod journal;
pub mod rollback;

use reqwest::Method;
use serde_json::{Value, json};

use crate::arm::{ArmClient, ArmError};
use crate::runtime::api::{Plan, PlannedWrite, ToolError};
use crate::runtime::{Access, Grants};
use journal::{ClientInfo, CompletedRecord, Journal, Outcome, PlannedRecord, WriteRecord};

/// Who asked for a change, and how they agreed to it (recorded in the journal).
#[derive(Debug, Clone)]
pub struct ChangeContext {
    pub tool: String,
    pub plugin: String,
    pub arguments: Value,
    pub client: Option<ClientInfo>,
    pub confirmation: String,
    pub rollback_of: Option<String>,
}

/// What became of a confirmed plan.
#[derive(Debug, Clone)]
pub enum Applied {
    /// Every write was made.
    Done { id: String, plan: Plan, writes: Vec<WriteRecord> },
    /// The first write got 412: nothing was written; plan again.
    Stale { id: String, plan: Plan, path: String, message: String },
    /// A write failed. `made` were applied before it and then compensated as `compensation` says.
    Failed {
        id: String,
        plan: Plan,
        made: Vec<WriteRecord>,
        failed: Box<PlannedWrite>,
        error: ToolError,
        not_attempted: Vec<PlannedWrite>,
        compensation: Vec<Value>,
        outcome: Outcome,
    },
}

impl Applied {
    /// A short text for the agent.
    pub fn text(&self) -> String {
        match self {
            Applied::Done { id, plan, writes } => {
                format!(
                    "Applied ({} write(s), change {id}): {}. Undo with rollback_change.",
                    writes.len(),
                    plan.summary
                )
            }
            Applied::Stale { path, .. } => {
                format!("Not applied: {path} changed since the plan was made. Nothing was written.")
            }
            Applied::Failed { failed, error, made, outcome, .. } => {
                let restored = match outcome {
                    Outcome::Compensated => format!("the {} write(s) made before it were restored", made.len()),
                    Outcome::CompensationFailed => {
                        "restoring the writes made before it FAILED: see compensation for what is left changed"
                            .to_string()
                    }
                    _ => "nothing was written".to_string(),
                };
                format!("Not applied: {} {} failed ({error}); {restored}.", failed.method, failed.path)
            }
        }
    }

    /// The structured result.
    pub fn to_json(&self) -> Value {
        match self {
            Applied::Done { id, plan, writes } => json!({
                "applied": true, "changeId": id, "summary": plan.summary, "diff": plan.diff,
                "details": plan.details, "writes": writes,
            }),
            Applied::Stale { id, path, message, .. } => json!({
                "applied": false, "changeId": id, "stale": true, "path": path, "message": message,
            }),
            Applied::Failed { id, plan, made, failed, error, not_attempted, compensation, outcome } => json!({
                "applied": false, "changeId": id, "outcome": outcome, "summary": plan.summary,
                "error": error.to_json()["error"], "failedWrite": failed, "writesMade": made,
                "compensation": compensation, "writesNotAttempted": not_attempted,
            }),
        }
    }

    /// Whether the client should see this as an error.
    pub fn is_error(&self) -> bool {
        !matches!(self, Applied::Done { .. })
    }
}

/// Checks, journals and applies plans.
pub struct ChangePipeline {
    arm: ArmClient,
    journal: Journal,
}

impl ChangePipeline {
    pub fn new(arm: ArmClient, journal: Journal) -> Self {
        Self { arm, journal }
    }

    /// The change journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The ARM client (rollback reads current state through it).
    pub fn arm(&self) -> &ArmClient {
        &self.arm
    }

    /// Refuses a plan whose writes leave the service, use a method other than PUT/PATCH/DELETE,
    /// or touch a kind outside `grants`.
    pub fn check(&self, plan: &Plan, grants: &Grants) -> Result<(), ToolError> {
        if plan.writes.is_empty() {
            return Err(ToolError::Internal("the plan has no writes".into()));
        }
        for write in &plan.writes {
            if !matches!(write.method.as_str(), "PUT" | "PATCH" | "DELETE") {
                return Err(ToolError::Denied(format!(
                    "plan write {} {}: only PUT, PATCH and DELETE may be planned",
                    write.method, write.path
                )));
            }
            let scoped = self.arm.scope(&write.path).map_err(|e| ToolError::Denied(e.to_string()))?;
            grants.check(Access::Write, &scoped.kind, &write.path).map_err(ToolError::Denied)?;
        }
        Ok(())
    }

    /// Journals and applies a confirmed plan. Errors only if the journal cannot be written, in
    /// which case nothing is sent.
    pub async fn apply(&self, plan: Plan, context: ChangeContext) -> Result<Applied, ToolError> {
        let id = journal::new_change_id();
        self.journal
            .planned(PlannedRecord {
                id: id.clone(),
                time: journal::now_rfc3339(),
                client: context.client.clone(),
                tool: context.tool.clone(),
                plugin: context.plugin.clone(),
                arguments: context.arguments.clone(),
                summary: plan.summary.clone(),
                diff: plan.diff.clone(),
                writes: plan.writes.clone(),
                before: plan.before.clone(),
                confirmation: context.confirmation.clone(),
                rollback_of: context.rollback_of.clone(),
            })
            .await
            .map_err(|e| ToolError::Internal(format!("{e:#}; nothing was written")))?;

        let mut made: Vec<WriteRecord> = Vec::new();
        let mut failure = None;
        for (index, write) in plan.writes.iter().enumerate() {
            match self.send(write).await {
                Ok(record) => made.push(record),
                Err(error) => {
                    failure = Some((index, error));
                    break;
                }
            }
        }
        let applied = match failure {
            None => Applied::Done { id: id.clone(), plan, writes: made.clone() },
            Some((0, ArmError::Upstream { status: 412, message, request_id, .. })) => Applied::Stale {
                id: id.clone(),
                path: plan.writes[0].path.clone(),
                message: format!("{message} (client request id {request_id})"),
                plan,
            },
            Some((index, error)) => {
                let (compensation, restored) = self.compensate(&plan, &made).await;
                let outcome = match (made.is_empty(), restored) {
                    (true, _) => Outcome::Failed,
                    (false, true) => Outcome::Compensated,
                    (false, false) => Outcome::CompensationFailed,
                };
                let error = match error {
                    ArmError::Upstream { status: 412, message, .. } => ToolError::Conflict(format!(
                        "{} changed since the plan was made ({message}); nothing was overwritten",
                        plan.writes[index].path
                    )),
                    other => arm_to_tool_error(other),
                };
                Applied::Failed {
                    id: id.clone(),
                    failed: Box::new(plan.writes[index].clone()),
                    not_attempted: plan.writes[index + 1..].to_vec(),
                    plan,
                    made: made.clone(),
                    error,
                    compensation,
                    outcome,
                }
            }
        };
        let (outcome, error, compensation) = match &applied {
            Applied::Done { .. } => (Outcome::Applied, None, vec![]),
            Applied::Stale { message, .. } => {
                (Outcome::Failed, Some(json!({"kind": "stale", "message": message})), vec![])
            }
            Applied::Failed { error, compensation, outcome, .. } => {
                (*outcome, Some(error.to_json()["error"].clone()), compensation.clone())
            }
        };
        let completed =
            CompletedRecord { id, time: journal::now_rfc3339(), outcome, writes: made, error, compensation };
        if let Err(e) = self.journal.completed(completed).await {
            tracing::error!("the change was {outcome:?} but its journal entry could not be completed: {e:#}");
        }
        Ok(applied)
    }

    async fn send(&self, write: &PlannedWrite) -> Result<WriteRecord, ArmError> {
        let scoped = self.arm.scope(&write.path)?;
        let method = Method::from_bytes(write.method.as_bytes())
            .map_err(|_| ArmError::Refused(format!("bad method {}", write.method)))?;
        let body = write.body.as_ref().map(Value::to_string);
        let response = self.arm.send(method, &scoped, write.if_match.as_deref(), body.as_deref()).await?;
        tracing::info!(method = %write.method, path = %write.path, status = response.status, client_request_id = %response.request_id, "plan write applied");
        Ok(WriteRecord {
            method: write.method.clone(),
            path: write.path.clone(),
            status: response.status,
            etag: response.etag,
            after: serde_json::from_str(&response.body).ok(),
            client_request_id: response.request_id,
        })
    }

    /// Restores the writes in `made`, newest first, to the plan's before-states, each with
    /// `If-Match` on the ETag our own write left (so a third party's change is not undone).
    /// Returns what each restore did and whether all succeeded.
    async fn compensate(&self, plan: &Plan, made: &[WriteRecord]) -> (Vec<Value>, bool) {
        let mut report = Vec::new();
        let mut all_restored = true;
        let mut restored_paths: Vec<&str> = Vec::new();
        for write in made.iter().rev() {
            if restored_paths.contains(&write.path.as_str()) {
                continue;
            }
            restored_paths.push(&write.path);
            let before = plan.before.iter().find(|b| b.path == write.path);
            let restore = rollback::restore_write(&write.path, before, write.etag.clone());
            let result = match restore {
                Err(why) => Err(why),
                Ok(restore) => self.send(&restore).await.map_err(|e| e.to_string()),
            };
            match result {
                Ok(done) => report
                    .push(json!({"method": done.method, "path": done.path, "status": done.status, "restored": true})),
                Err(why) => {
                    all_restored = false;
                    tracing::error!(path = %write.path, "could not restore after a failed plan: {why}");
                    report.push(json!({"path": write.path, "restored": false, "error": why}));
                }
            }
        }
        (report, all_restored)
    }
}

/// ARM errors as tool errors.
pub fn arm_to_tool_error(error: ArmError) -> ToolError {
    match error {
        ArmError::Upstream { status: 404, message, .. } => ToolError::NotFound(message),
        ArmError::Upstream { status, code, message, request_id } => {
            ToolError::Upstream { status, code, message, request_id: Some(request_id) }
        }
        ArmError::Transport { message, request_id } => {
            ToolError::Upstream { status: 0, code: "TransportError".into(), message, request_id: Some(request_id) }
        }
        ArmError::Refused(message) => ToolError::Denied(message),
    }
}
