//! Plugin tools as MCP tools: names, schemas, annotations, and argument validation.
//!
//! Invariants:
//! - names the host owns stay the host's: a plugin tool named like a host tool (or under a
//!   prefix the host reserves) is refused whatever the load order, logged and listed by
//!   `plugins list` — a plugin can never stand in for the journal or the sandbox controls;
//! - exposed names are unique; a later plugin offering a name already taken is refused for
//!   that tool with a message naming both plugins, unless the operator gave it a prefix;
//! - every write tool (not read-only) gets a `dry_run` boolean argument, handled by the host;
//! - arguments are validated against the tool's input schema before any plugin code runs, and
//!   a violation names the field.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

use crate::runtime::api::{ToolDecl, ToolError};
use crate::runtime::{LoadedPlugin, Runtime};

/// What runs a tool.
#[derive(Clone)]
pub enum ToolSource {
    /// A plugin's tool.
    Plugin(Arc<LoadedPlugin>),
    /// A tool of the host itself (the change journal).
    Host(HostTool),
}

/// The host's own tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostTool {
    ListChanges,
    RollbackChange,
    /// Sandbox only: the simulated clock.
    SandboxClock,
    /// Sandbox only: simulate minutes of traffic.
    SandboxAdvanceClock,
    /// Sandbox only: switch a backend outage.
    SandboxSetOutage,
}

impl HostTool {
    /// Whether the tool acts on the local sandbox directly instead of planning a change to the
    /// governed service: no plan, no confirmation, no `dry_run`, not hidden by read-only mode.
    pub fn acts_on_sandbox(self) -> bool {
        matches!(self, HostTool::SandboxClock | HostTool::SandboxAdvanceClock | HostTool::SandboxSetOutage)
    }
}

/// Tool names the host owns, whether or not this server offers them right now (the journal
/// tools exist only where changes can be applied; the template pair gathers every plugin's
/// templates; `select_service` picks the governed service).
pub const HOST_TOOL_NAMES: &[&str] =
    &["list_changes", "rollback_change", "list_policy_templates", "apply_policy_template", "select_service"];
/// Name prefixes the host reserves for its own tools (`sandbox_` for the sandbox's clock and
/// outage controls, `host_` for anything the host adds later).
pub const RESERVED_PREFIXES: &[&str] = &["sandbox_", "host_"];

/// Why a plugin may not expose a tool called `name`, if it may not.
fn reserved(name: &str) -> Option<String> {
    if HOST_TOOL_NAMES.contains(&name) {
        return Some(format!("{name:?} is a tool of the host itself"));
    }
    RESERVED_PREFIXES
        .iter()
        .find(|p| name.starts_with(*p))
        .map(|p| format!("the prefix {p:?} is reserved for the host's own tools"))
}

/// One exposed tool.
pub struct ToolEntry {
    /// The name agents call (with the operator's prefix, if any).
    pub name: String,
    pub source: ToolSource,
    pub decl: ToolDecl,
    pub tool: Tool,
    /// Not listed and refused (write tools in read-only mode).
    pub hidden: bool,
    /// Answers with plans (a plugin's or the host's write tool); sandbox controls do not.
    plans: bool,
    /// The validators for `tool`'s input schema (with `dry_run` for writes) and `decl`'s
    /// output schema, compiled on first use: the loader already proved they compile, and a
    /// start should not pay for tools never called.
    input: OnceLock<Result<jsonschema::Validator, String>>,
    output: OnceLock<Option<Result<jsonschema::Validator, String>>>,
}

fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::validator_for(schema).map_err(|e| e.to_string())
}

impl ToolEntry {
    /// The plugin's name, or `host` for the host's own tools.
    pub fn owner(&self) -> &str {
        match &self.source {
            ToolSource::Plugin(plugin) => &plugin.manifest.name,
            ToolSource::Host(_) => "host",
        }
    }

    /// Whether the tool answers with plans.
    pub fn is_write(&self) -> bool {
        self.plans
    }

    /// Checks `arguments` against the input schema; the first violation names its field.
    pub fn validate_arguments(&self, arguments: &Value) -> Result<(), ToolError> {
        let input = self
            .input
            .get_or_init(|| compile(&Value::Object(self.tool.input_schema.as_ref().clone())))
            .as_ref()
            .map_err(|e| ToolError::Internal(format!("the input schema of {:?} cannot be used: {e}", self.name)))?;
        if input.is_valid(arguments) {
            return Ok(()); // the common case, without building an error iterator
        }
        let Some(error) = input.iter_errors(arguments).next() else {
            return Ok(());
        };
        let pointer = error.instance_path().to_string();
        let mut field = pointer.trim_start_matches('/').replace('/', ".");
        let message = error.to_string();
        if let jsonschema::error::ValidationErrorKind::Required { property } = error.kind() {
            let missing = property.as_str().map(str::to_string).unwrap_or_else(|| property.to_string());
            field = if field.is_empty() { missing } else { format!("{field}.{missing}") };
        } else if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } = error.kind() {
            field = unexpected.join(", ");
        }
        if field.is_empty() {
            field = "arguments".into();
        }
        Err(ToolError::InvalidInput { field, message })
    }

    /// Checks a plugin's structured answer against its declared output schema.
    pub fn validate_output(&self, structured: &Value) -> Result<(), ToolError> {
        let output = match self.output.get_or_init(|| self.decl.output_schema.as_ref().map(compile)) {
            None => return Ok(()),
            Some(Ok(validator)) => validator,
            Some(Err(e)) => {
                return Err(ToolError::Internal(format!("the output schema of {:?} cannot be used: {e}", self.name)));
            }
        };
        if output.is_valid(structured) {
            return Ok(());
        }
        match output.iter_errors(structured).next() {
            None => Ok(()),
            Some(e) => Err(ToolError::Internal(format!(
                "plugin {:?} answered with a result that does not match its output schema at {:?}: {e}",
                self.owner(),
                e.instance_path().to_string()
            ))),
        }
    }
}

/// All exposed tools, by name.
#[derive(Default)]
pub struct Registry {
    entries: BTreeMap<String, Arc<ToolEntry>>,
    refusals: Vec<String>,
}

impl Registry {
    /// Registers the tools of every loaded plugin, in load order, then `host_tools`. With
    /// `read_only`, write tools are hidden: not listed, and refused if called.
    pub fn build(runtime: &Runtime, read_only: bool, host_tools: &[(HostTool, ToolDecl)]) -> Self {
        let mut registry = Self::default();
        for plugin in runtime.plugins() {
            for decl in &plugin.manifest.tools {
                let name = format!("{}{}", plugin.prefix.as_deref().unwrap_or(""), decl.name);
                if let Some(why) = reserved(&name) {
                    let refusal = format!(
                        "tool {name:?} of plugin {:?} ({}) refused: {why}; a plugin cannot stand in for it",
                        plugin.manifest.name, plugin.source
                    );
                    tracing::error!("{refusal}");
                    registry.refusals.push(refusal);
                    continue;
                }
                if let Some(existing) = registry.entries.get(&name) {
                    let refusal = format!(
                        "tool {name:?} of plugin {:?} ({}) refused: plugin {:?} already offers a tool with that name; \
                         set `prefix` in [plugins.{}] of the config file to expose it under another name",
                        plugin.manifest.name,
                        plugin.source,
                        existing.owner(),
                        plugin.manifest.name
                    );
                    tracing::error!("{refusal}");
                    registry.refusals.push(refusal);
                    continue;
                }
                let entry = ToolEntry::new(name.clone(), ToolSource::Plugin(plugin.clone()), decl.clone(), read_only);
                registry.entries.insert(name, Arc::new(entry));
            }
        }
        for (tool, decl) in host_tools {
            debug_assert!(reserved(&decl.name).is_some(), "host tool {} must be reserved", decl.name);
            let entry = ToolEntry::new(decl.name.clone(), ToolSource::Host(*tool), decl.clone(), read_only);
            registry.entries.insert(decl.name.clone(), Arc::new(entry));
        }
        registry
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<ToolEntry>> {
        self.entries.get(name)
    }

    /// Every listed tool, sorted by name (MCP asks for a deterministic order).
    pub fn tools(&self) -> Vec<Tool> {
        self.entries.values().filter(|e| !e.hidden).map(|e| e.tool.clone()).collect()
    }

    /// Every entry, sorted by name.
    pub fn entries(&self) -> impl Iterator<Item = &Arc<ToolEntry>> {
        self.entries.values()
    }

    /// Tools refused at registration, with the reason.
    pub fn refusals(&self) -> &[String] {
        &self.refusals
    }
}

impl ToolEntry {
    /// An entry for `decl`, whose schemas the loader (or, for host tools, this module's tests)
    /// checked against the JSON Schema meta-schema.
    fn new(name: String, source: ToolSource, decl: ToolDecl, read_only: bool) -> Self {
        let plans = !decl.read_only && !matches!(source, ToolSource::Host(tool) if tool.acts_on_sandbox());
        let mut schema = decl.input_schema.clone();
        if plans {
            if schema.get("properties").is_none() {
                schema["properties"] = json!({});
            }
            schema["properties"]["dry_run"] = json!({
                "type": "boolean",
                "default": false,
                "description": "Return the plan (summary, diff, exact writes) without changing anything."
            });
        }
        let object: JsonObject = schema.as_object().cloned().unwrap_or_default();
        let mut tool = Tool::new(name.clone(), decl.description.clone(), Arc::new(object));
        if let Some(title) = &decl.title {
            tool = tool.with_title(title.clone());
        }
        if let Some(Value::Object(output_schema)) = &decl.output_schema {
            tool = tool.with_raw_output_schema(Arc::new(output_schema.clone()));
        }
        let annotations = ToolAnnotations::from_raw(
            decl.title.clone(),
            Some(decl.read_only),
            Some(!decl.read_only && decl.destructive),
            Some(decl.idempotent),
            // Every tool reads or changes a live Azure service.
            Some(true),
        );
        tool = tool.with_annotations(annotations);
        let hidden = read_only && plans;
        Self { name, source, decl, tool, hidden, plans, input: OnceLock::new(), output: OnceLock::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_and_reserved_prefixes_are_not_for_plugins() {
        for name in ["list_changes", "rollback_change", "apply_policy_template", "sandbox_outage", "host_x"] {
            assert!(reserved(name).is_some(), "{name}");
        }
        for name in ["list_subscriptions", "my_sandbox_tool", "changes_list"] {
            assert!(reserved(name).is_none(), "{name}");
        }
        let every =
            crate::mcp::host_tools::declarations().into_iter().chain(crate::mcp::host_tools::sandbox_declarations());
        for (_, decl) in every {
            assert!(reserved(&decl.name).is_some(), "every host tool's name is reserved: {}", decl.name);
        }
    }

    #[test]
    fn the_host_tools_schemas_are_valid_json_schemas_that_compile() {
        let every =
            crate::mcp::host_tools::declarations().into_iter().chain(crate::mcp::host_tools::sandbox_declarations());
        for (tool, decl) in every {
            let entry = ToolEntry::new(decl.name.clone(), ToolSource::Host(tool), decl.clone(), false);
            let input = Value::Object(entry.tool.input_schema.as_ref().clone());
            jsonschema::meta::validate(&input).unwrap_or_else(|e| panic!("{}: {e}", decl.name));
            let compiled = !matches!(entry.validate_arguments(&json!({})), Err(ToolError::Internal(_)));
            assert!(compiled, "the input schema of {} does not compile", decl.name);
            if let Some(output) = &decl.output_schema {
                jsonschema::meta::validate(output).unwrap_or_else(|e| panic!("{} output: {e}", decl.name));
            }
        }
    }

    #[test]
    fn a_bad_argument_names_its_field_and_a_write_tool_accepts_dry_run() {
        let decl = ToolDecl {
            name: "set_limit".into(),
            title: None,
            description: "test".into(),
            input_schema: json!({"type": "object", "properties": {"limit": {"type": "integer"}}, "required": ["limit"], "additionalProperties": false}),
            output_schema: None,
            read_only: false,
            destructive: false,
            idempotent: true,
        };
        let entry = ToolEntry::new(decl.name.clone(), ToolSource::Host(HostTool::ListChanges), decl, false);
        assert!(entry.validate_arguments(&json!({"limit": 5, "dry_run": true})).is_ok());
        match entry.validate_arguments(&json!({"limit": "five"})) {
            Err(ToolError::InvalidInput { field, .. }) => assert_eq!(field, "limit"),
            other => panic!("{other:?}"),
        }
        match entry.validate_arguments(&json!({})) {
            Err(ToolError::InvalidInput { field, .. }) => assert_eq!(field, "limit"),
            other => panic!("{other:?}"),
        }
    }
}
