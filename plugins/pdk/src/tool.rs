//! Builders for manifests, tool results and plans.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Annotations, ArmWrite, BeforeState, Error, Outcome, Plan, Tool, ToolResult};

/// A tool description, built fluently.
pub struct ToolSpec(Tool);

impl ToolSpec {
    /// A read-only tool named `name` taking arguments described by `input_schema`.
    pub fn read(name: &str, description: &str, input_schema: Value) -> Self {
        Self(Tool {
            name: name.into(),
            title: None,
            description: description.into(),
            input_schema: input_schema.to_string(),
            output_schema: None,
            annotations: Annotations { read_only: true, destructive: false, idempotent: true },
        })
    }

    /// A write tool: it answers with a plan that the host confirms and applies.
    pub fn write(name: &str, description: &str, input_schema: Value) -> Self {
        let mut spec = Self::read(name, description, input_schema);
        spec.0.annotations = Annotations { read_only: false, destructive: false, idempotent: true };
        spec
    }

    /// Sets the human title.
    pub fn title(mut self, title: &str) -> Self {
        self.0.title = Some(title.into());
        self
    }

    /// Declares the JSON Schema of the result's structured value. Read tools only: a write
    /// tool answers with a plan and the host answers the client in its own shape, so the host
    /// refuses a plugin whose write tool declares one.
    pub fn output_schema(mut self, schema: Value) -> Self {
        self.0.output_schema = Some(schema.to_string());
        self
    }

    /// Marks the tool's plans as destructive (they may replace or delete configuration).
    pub fn destructive(mut self) -> Self {
        self.0.annotations.destructive = true;
        self
    }

    /// Marks the tool as not idempotent.
    pub fn not_idempotent(mut self) -> Self {
        self.0.annotations.idempotent = false;
        self
    }

    /// The finished description.
    pub fn build(self) -> Tool {
        self.0
    }
}

/// Parses the call's arguments into `T`. The host already validated them against the tool's
/// input schema, so a failure here means the schema and `T` disagree.
pub fn args<T: DeserializeOwned>(arguments: &str) -> Result<T, Error> {
    serde_json::from_str(arguments).map_err(|e| Error::invalid("arguments", e.to_string()))
}

/// A read tool's answer: a short text and the structured value.
pub fn result(text: impl Into<String>, structured: Value) -> Outcome {
    Outcome::Result(ToolResult { text: text.into(), structured: Some(structured.to_string()) })
}

/// Builds a plan write by write, recording each resource's before-state.
#[derive(Default)]
pub struct PlanBuilder {
    writes: Vec<ArmWrite>,
    before: Vec<BeforeState>,
    diff: String,
}

impl PlanBuilder {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// PUT `body` at `path`. `before` is the resource as read (with its ETag), or `None` when
    /// the write creates it.
    pub fn put(mut self, path: &str, before: Option<&crate::arm::Resource>, body: Value) -> Self {
        self.record_before(path, before);
        self.writes.push(ArmWrite {
            method: "PUT".into(),
            path: path.into(),
            if_match: before.and_then(|r| r.etag.clone()),
            body: Some(body.to_string()),
        });
        self
    }

    /// PATCH `body` onto the existing resource at `path`.
    pub fn patch(mut self, path: &str, before: &crate::arm::Resource, body: Value) -> Self {
        self.record_before(path, Some(before));
        self.writes.push(ArmWrite {
            method: "PATCH".into(),
            path: path.into(),
            if_match: before.etag.clone().or(Some("*".into())),
            body: Some(body.to_string()),
        });
        self
    }

    /// DELETE the existing resource at `path`.
    pub fn delete(mut self, path: &str, before: &crate::arm::Resource) -> Self {
        self.record_before(path, Some(before));
        self.writes.push(ArmWrite {
            method: "DELETE".into(),
            path: path.into(),
            if_match: before.etag.clone().or(Some("*".into())),
            body: None,
        });
        self
    }

    /// Appends a section to the plan's unified diff.
    pub fn diff(mut self, diff: &str) -> Self {
        self.diff.push_str(diff);
        self
    }

    /// The finished plan.
    pub fn build(self, summary: impl Into<String>, details: Option<Value>) -> Outcome {
        Outcome::Plan(Plan {
            summary: summary.into(),
            diff: self.diff,
            writes: self.writes,
            before: self.before,
            details: details.map(|d| d.to_string()),
        })
    }

    fn record_before(&mut self, path: &str, before: Option<&crate::arm::Resource>) {
        if self.before.iter().any(|b| b.path == path) {
            return;
        }
        self.before.push(BeforeState {
            path: path.into(),
            etag: before.and_then(|r| r.etag.clone()),
            body: before.map(|r| r.body.to_string()),
        });
    }
}
