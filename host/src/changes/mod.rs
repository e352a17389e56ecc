//! The change pipeline: what happens to a plan a write tool returned.
//!
//! A plan is checked against the plugin's write grant before anything else (a plan touching a
//! kind the plugin may not change is refused outright), then either returned untouched
//! (`dry_run`) or applied: writes in the plan's order, each with the plan's `If-Match` ETag,
//! stopping at the first failure and reporting exactly which writes were made and which not.
//!
//! Confirmation, the journal, compensation and rollback slot in here (the next issue); the
//! MCP surface only calls [`ChangePipeline::handle`].

use reqwest::Method;
use serde_json::{Value, json};

use crate::arm::{ArmClient, ArmError};
use crate::runtime::api::{Plan, PlannedWrite, ToolError};
use crate::runtime::{Access, Grants};

/// A write that was made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppliedWrite {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub etag: Option<String>,
    #[serde(rename = "clientRequestId")]
    pub request_id: String,
}

/// What became of a plan.
#[derive(Debug, Clone)]
pub enum PlanOutcome {
    /// `dry_run`: nothing was sent.
    DryRun(Plan),
    /// Every write was made.
    Applied { plan: Plan, writes: Vec<AppliedWrite> },
    /// A write failed; `made` were applied before it, the rest were not attempted.
    Failed {
        plan: Plan,
        made: Vec<AppliedWrite>,
        failed: Box<PlannedWrite>,
        error: ToolError,
        not_attempted: Vec<PlannedWrite>,
    },
}

impl PlanOutcome {
    /// A short text for the agent.
    pub fn text(&self) -> String {
        match self {
            PlanOutcome::DryRun(plan) => {
                format!("Dry run, nothing was changed. Plan: {}\n\n{}", plan.summary, plan.diff)
            }
            PlanOutcome::Applied { plan, writes } => format!("Applied ({} write(s)): {}", writes.len(), plan.summary),
            PlanOutcome::Failed { made, failed, error, not_attempted, .. } => format!(
                "Not applied: {} {} failed: {error}. {} write(s) had been made before it; {} were not attempted.",
                failed.method,
                failed.path,
                made.len(),
                not_attempted.len()
            ),
        }
    }

    /// The structured result.
    pub fn to_json(&self) -> Value {
        match self {
            PlanOutcome::DryRun(plan) => json!({ "dryRun": true, "applied": false, "plan": plan }),
            PlanOutcome::Applied { plan, writes } => json!({
                "dryRun": false, "applied": true, "summary": plan.summary, "diff": plan.diff,
                "details": plan.details, "writes": writes,
            }),
            PlanOutcome::Failed { plan, made, failed, error, not_attempted } => json!({
                "dryRun": false, "applied": false, "summary": plan.summary,
                "error": error.to_json()["error"], "failedWrite": failed,
                "writesMade": made, "writesNotAttempted": not_attempted,
            }),
        }
    }

    /// Whether the client should see this as an error.
    pub fn is_error(&self) -> bool {
        matches!(self, PlanOutcome::Failed { .. })
    }
}

/// Applies plans through the ARM client.
#[derive(Clone)]
pub struct ChangePipeline {
    arm: ArmClient,
}

impl ChangePipeline {
    pub fn new(arm: ArmClient) -> Self {
        Self { arm }
    }

    /// Checks `plan` against `grants`, then returns it (`dry_run`) or applies it.
    pub async fn handle(&self, plan: Plan, grants: &Grants, dry_run: bool) -> Result<PlanOutcome, ToolError> {
        self.check(&plan, grants)?;
        if dry_run {
            return Ok(PlanOutcome::DryRun(plan));
        }
        Ok(self.apply(plan).await)
    }

    /// Refuses a plan whose writes leave the service, use a method other than PUT/PATCH/DELETE,
    /// or touch a kind outside the plugin's write grant.
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

    async fn apply(&self, plan: Plan) -> PlanOutcome {
        let mut made = Vec::new();
        for (index, write) in plan.writes.iter().enumerate() {
            match self.send(write).await {
                Ok(applied) => made.push(applied),
                Err(error) => {
                    let error = match error {
                        ArmError::Upstream { status: 412, message, request_id, .. } => ToolError::Conflict(format!(
                            "{} changed since the plan was made (ETag no longer matches; {message}; client request id {request_id}). Nothing was overwritten: plan again.",
                            write.path
                        )),
                        other => arm_to_tool_error(other),
                    };
                    return PlanOutcome::Failed {
                        failed: Box::new(write.clone()),
                        not_attempted: plan.writes[index + 1..].to_vec(),
                        plan,
                        made,
                        error,
                    };
                }
            }
        }
        PlanOutcome::Applied { plan, writes: made }
    }

    async fn send(&self, write: &PlannedWrite) -> Result<AppliedWrite, ArmError> {
        let scoped = self.arm.scope(&write.path)?;
        let method = Method::from_bytes(write.method.as_bytes())
            .map_err(|_| ArmError::Refused(format!("bad method {}", write.method)))?;
        let body = write.body.as_ref().map(Value::to_string);
        let response = self.arm.send(method, &scoped, write.if_match.as_deref(), body.as_deref()).await?;
        tracing::info!(method = %write.method, path = %write.path, status = response.status, client_request_id = %response.request_id, "plan write applied");
        Ok(AppliedWrite {
            method: write.method.clone(),
            path: write.path.clone(),
            status: response.status,
            etag: response.etag,
            request_id: response.request_id,
        })
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
