//! The change pipeline: what happens to a plan once the user has confirmed it.
//!
//! Order of operations, each step a guarantee:
//! 1. [`ChangePipeline::check`]: the plan has at most its plugin's cap of writes, they stay
//!    under the service, use PUT/PATCH/DELETE and touch only kinds in the plugin's write grant —
//!    checked before the user is even asked.
//! 2. [`ChangePipeline::review`] ([`review`]): the host reads every resource the plan writes and
//!    derives from that live state what the user is shown, the preconditions sent and the
//!    before-states; a plugin's claim that disagrees with the live state makes the plan stale.
//! 3. (the MCP surface asks the user with the reviewed text; see `mcp::confirm`)
//! 4. [`ChangePipeline::apply`]: the journal's `planned` record (host before-states, host
//!    preconditions, host diff) is on disk before the first write; writes go in the plan's
//!    order under the host's preconditions; a failure stops the plan and the writes already
//!    made are put back to the state *the host read* (compensation), never to a plugin's word;
//!    the journal's `completed` record says exactly what happened and what could not be restored.
//!
//! A 412 on the first write means someone changed the resource since the review: nothing was
//! written, and the caller re-plans against fresh state (never a blind overwrite).

pub mod journal;
pub mod revert;
pub mod review;
pub mod rollback;

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::arm::{ArmClient, ArmError, Precondition};
use crate::runtime::api::{Plan, PlannedWrite, ToolError};
use crate::runtime::{Access, Grants};
use journal::{ClientInfo, CompletedRecord, Journal, Outcome, PlannedRecord, WriteRecord};
pub use review::{Reviewed, ReviewedPlan};

/// Most writes one plan may make, unless the operator raises it for a plugin
/// (`max_plan_writes`). The largest real change (a pool of 30 members, its pool and a policy)
/// is ~32 writes; past 100 a confirmation is no longer something a person can review, and a
/// runaway plan could flood ARM.
pub const MAX_PLAN_WRITES: usize = 100;

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
    Done { id: String, plan: Box<ReviewedPlan>, writes: Vec<WriteRecord> },
    /// The first write got 412: nothing was written; plan again.
    Stale { id: String, plan: Box<ReviewedPlan>, path: String, message: String },
    /// A write failed. `made` were applied before it and then compensated as `compensation` says.
    Failed {
        id: String,
        plan: Box<ReviewedPlan>,
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
                    "Applied ({} write(s), change {id}):\n{}\nThe plugin {:?} summarised it as: {}\nUndo with rollback_change.",
                    writes.len(),
                    plan.lines.join("\n"),
                    plan.plugin,
                    plan.proposed.summary
                )
            }
            Applied::Stale { path, .. } => {
                format!("Not applied: {path} changed since the plan was made. Nothing was written.")
            }
            Applied::Failed { failed, error, outcome, compensation, .. } => {
                let restored = match outcome {
                    Outcome::Compensated => format!(
                        "every resource written before it was put back as the server read it: {}",
                        compensation_summary(compensation)
                    ),
                    Outcome::CompensationFailed => format!(
                        "putting back what was written before it did NOT fully succeed: {}",
                        compensation_summary(compensation)
                    ),
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
                "applied": true, "changeId": id, "summary": plan.lines, "diff": plan.diff(),
                "plugin": {"summary": plan.proposed.summary}, "details": plan.proposed.details, "writes": writes,
            }),
            Applied::Stale { id, path, message, .. } => json!({
                "applied": false, "changeId": id, "stale": true, "path": path, "message": message,
            }),
            Applied::Failed { id, plan, made, failed, error, not_attempted, compensation, outcome } => json!({
                "applied": false, "changeId": id, "outcome": outcome, "summary": plan.lines,
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

    /// Refuses a plan with more than `max_writes` writes, or whose writes leave the service, use
    /// a method other than PUT/PATCH/DELETE, or touch a kind outside `grants`.
    pub fn check(&self, plan: &Plan, grants: &Grants, max_writes: usize) -> Result<(), ToolError> {
        if plan.writes.is_empty() {
            return Err(ToolError::Internal("the plan has no writes".into()));
        }
        if plan.writes.len() > max_writes {
            return Err(ToolError::Denied(format!(
                "the plan has {} writes, more than the {max_writes} one plan may make (max_plan_writes); \
                 nobody could review it. Nothing was written",
                plan.writes.len()
            )));
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

    /// Reads the live state of everything `plan` writes and derives what the user confirms.
    pub async fn review(&self, plugin: &str, plan: Plan) -> Result<Reviewed, ToolError> {
        review::review(&self.arm, plugin, plan).await
    }

    /// Journals and applies a confirmed, reviewed plan. Errors only if the journal cannot be
    /// written, in which case nothing is sent.
    pub async fn apply(&self, plan: ReviewedPlan, context: ChangeContext) -> Result<Applied, ToolError> {
        let plan = Box::new(plan);
        let id = journal::new_change_id();
        self.journal
            .planned(PlannedRecord {
                id: id.clone(),
                time: journal::now_rfc3339(),
                client: context.client.clone(),
                tool: context.tool.clone(),
                plugin: context.plugin.clone(),
                arguments: context.arguments.clone(),
                summary: plan.proposed.summary.clone(),
                diff: plan.diff(),
                plugin_diff: Some(plan.proposed.diff.clone()).filter(|d| !d.is_empty()),
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
            let precondition = resolve(&write.precondition, &write.path, &made);
            match self.send(write, &precondition).await {
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

    async fn send(&self, write: &PlannedWrite, precondition: &Precondition) -> Result<WriteRecord, ArmError> {
        let scoped = self.arm.scope(&write.path)?;
        let method = Method::from_bytes(write.method.as_bytes())
            .map_err(|_| ArmError::Refused(format!("bad method {}", write.method)))?;
        let body = write.body.as_ref().map(Value::to_string);
        let response = self.arm.write(method, &scoped, precondition, body.as_deref()).await?;
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

    /// Puts every resource written in `made` back to the state the host read before the change,
    /// newest first, each conditioned on the ETag our own write left (so a third party's change
    /// made meanwhile is not undone). A resource the plan created is deleted; one that existed is
    /// put back, never deleted; nothing outside `made` is touched. Returns a report per resource
    /// and whether every one was restored.
    async fn compensate(&self, plan: &ReviewedPlan, made: &[WriteRecord]) -> (Vec<Value>, bool) {
        let mut report = Vec::new();
        let mut all_restored = true;
        let mut done: Vec<String> = Vec::new();
        for last in made.iter().rev() {
            let key = review::resource_key(&self.arm, &last.path).unwrap_or_else(|_| last.path.clone());
            if done.contains(&key) {
                continue;
            }
            done.push(key);
            let before = plan.before_of(&self.arm, &last.path);
            let restore = rollback::restore_write(&last.path, before, last.etag.clone(), last.method == "DELETE");
            let result = match restore {
                Err(why) => Err(why),
                Ok(None) => Ok(None),
                Ok(Some(restore)) => {
                    self.send(&restore, &restore.precondition).await.map(Some).map_err(|e| e.to_string())
                }
            };
            match result {
                Ok(None) => report.push(json!({"path": last.path, "restored": true, "action": "nothing to do"})),
                Ok(Some(done)) => report.push(json!({
                    "method": done.method, "path": done.path, "status": done.status, "restored": true,
                    "action": if done.method == "DELETE" { "deleted (this change created it)" } else { "put back as it was" },
                })),
                Err(why) => {
                    all_restored = false;
                    tracing::error!(path = %last.path, "could not restore after a failed plan: {why}");
                    report.push(json!({"path": last.path, "restored": false, "error": why}));
                }
            }
        }
        (report, all_restored)
    }
}

/// The precondition to send for `precondition` now: a plan's later write to a resource is
/// conditioned on the ETag its previous write left (or create-only after a delete).
fn resolve(precondition: &Precondition, path: &str, made: &[WriteRecord]) -> Precondition {
    if *precondition != Precondition::AfterPreviousWrite {
        return precondition.clone();
    }
    match made.iter().rev().find(|w| w.path.eq_ignore_ascii_case(path)) {
        Some(w) if w.method == "DELETE" => Precondition::CreateOnly,
        Some(WriteRecord { etag: Some(etag), .. }) => Precondition::IfMatch(etag.clone()),
        _ => Precondition::IfMatch("*".into()),
    }
}

/// One line per restored resource, for the agent.
fn compensation_summary(report: &[Value]) -> String {
    let lines: BTreeMap<String, String> = report
        .iter()
        .map(|r| {
            let path = r["path"].as_str().unwrap_or_default().to_string();
            let what = match r["restored"].as_bool() {
                Some(true) => r["action"].as_str().unwrap_or("restored").to_string(),
                _ => format!("NOT restored ({})", r["error"].as_str().unwrap_or("unknown")),
            };
            (path, what)
        })
        .collect();
    lines.iter().map(|(p, w)| format!("{p}: {w}")).collect::<Vec<_>>().join("; ")
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
