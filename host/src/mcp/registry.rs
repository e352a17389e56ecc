//! Plugin tools as MCP tools: names, schemas, annotations, and argument validation.
//!
//! Invariants:
//! - exposed names are unique; a later plugin offering a name already taken is refused for
//!   that tool with a message naming both plugins, unless the operator gave it a prefix;
//! - every write tool (not read-only) gets a `dry_run` boolean argument, handled by the host;
//! - arguments are validated against the tool's input schema before any plugin code runs, and
//!   a violation names the field.

use std::collections::BTreeMap;
use std::sync::Arc;

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
    input: jsonschema::Validator,
    output: Option<jsonschema::Validator>,
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
        !self.decl.read_only
    }

    /// Checks `arguments` against the input schema; the first violation names its field.
    pub fn validate_arguments(&self, arguments: &Value) -> Result<(), ToolError> {
        let Some(error) = self.input.iter_errors(arguments).next() else {
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
        match self.output.as_ref().and_then(|v| v.iter_errors(structured).next()) {
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
                match ToolEntry::new(name.clone(), ToolSource::Plugin(plugin.clone()), decl.clone(), read_only) {
                    Ok(entry) => {
                        registry.entries.insert(name, Arc::new(entry));
                    }
                    Err(e) => registry
                        .refusals
                        .push(format!("tool {name:?} of plugin {:?} refused: {e}", plugin.manifest.name)),
                }
            }
        }
        for (tool, decl) in host_tools {
            if let Some(existing) = registry.entries.get(&decl.name) {
                registry.refusals.push(format!(
                    "tool {:?} of plugin {:?} hides the host's own tool of that name; give the plugin a prefix",
                    decl.name,
                    existing.owner()
                ));
                continue;
            }
            let entry = ToolEntry::new(decl.name.clone(), ToolSource::Host(*tool), decl.clone(), read_only)
                .expect("the host's own tool schemas are valid");
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
    fn new(name: String, source: ToolSource, decl: ToolDecl, read_only: bool) -> Result<Self, String> {
        let mut schema = decl.input_schema.clone();
        if !decl.read_only {
            if schema.get("properties").is_none() {
                schema["properties"] = json!({});
            }
            schema["properties"]["dry_run"] = json!({
                "type": "boolean",
                "default": false,
                "description": "Return the plan (summary, diff, exact writes) without changing anything."
            });
        }
        let input = jsonschema::validator_for(&schema).map_err(|e| e.to_string())?;
        let output =
            decl.output_schema.as_ref().map(jsonschema::validator_for).transpose().map_err(|e| e.to_string())?;
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
        let hidden = read_only && !decl.read_only;
        Ok(Self { name, source, decl, tool, hidden, input, output })
    }
}
