//! What the user confirms, computed by the host from live state — never taken from a plugin.
//!
//! A plugin's plan is a list of writes plus the plugin's own words about them (summary, diff,
//! before-states). Words can lie. So before anyone is asked, [`review`] reads every resource
//! the plan writes, itself, from ARM (concurrently, with its ETag), and derives from that live
//! state and the plan's actual request bodies everything that matters:
//!
//! - **what the user sees**: one line per write and a diff per resource rendered by the host
//!   (policy documents as text, JSON resources field by field, creates and deletes said as
//!   such, secrets redacted); the plugin's summary and diff follow, quoted as the plugin's words;
//! - **the preconditions sent**: the live ETag for a resource that exists, create-only
//!   (`If-None-Match: *`) for one that does not; a plan's later write to the same resource is
//!   conditioned on the ETag its previous write left;
//! - **the before-states** the journal, compensation and rollback use.
//!
//! Invariants: a plugin's claim (the ETag or absence it planned against, the before-state it
//! declared) that disagrees with the live state makes the plan *stale* — it is re-made against
//! fresh state, as after a 412 — and is never used as an instruction. Nothing in a
//! [`ReviewedPlan`] that is sent, shown or journaled comes from the plugin except the request
//! bodies themselves (which the user sees as diffs) and the quoted words.

use std::collections::BTreeMap;

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::journal::{REDACTED, redact};
use crate::arm::{ArmClient, ArmError, Precondition};
use crate::runtime::api::{BeforeState, Plan, PlannedWrite, ToolError};

/// Most resources read at once while reviewing a plan.
const READ_CONCURRENCY: usize = 8;
/// Longest diff shown per resource, in lines; the rest is counted. A confirmation is read by a
/// person: past a screenful they stop reading, so we say how much more there is instead.
const MAX_DIFF_LINES_PER_RESOURCE: usize = 40;
/// Past this many characters of diffs, further resources are shown as counts only.
const MAX_DIFFS_CHARS: usize = 8000;
/// The plugin's own words shown in a confirmation, at most (they are context, not the truth).
const MAX_PLUGIN_WORDS_CHARS: usize = 2000;
/// Longest JSON value shown in a field-by-field diff.
const MAX_VALUE_CHARS: usize = 160;
/// Top-level fields ARM computes itself; neither written nor worth showing.
pub const READ_ONLY_FIELDS: &[&str] = &["id", "name", "type", "etag", "systemData"];

/// A resource as the host read it (or predicts it after a write).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveState {
    pub etag: Option<String>,
    /// `None`: the resource does not exist.
    pub body: Option<Value>,
}

/// One resource the plan changes, as the user is shown it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ResourceChange {
    pub path: String,
    /// `create`, `update`, `delete`, `create and delete` or `unchanged`.
    pub change: String,
    /// The host-rendered diff (complete; the confirmation shortens it).
    pub diff: String,
    pub added: usize,
    pub removed: usize,
}

/// A plan after the host reviewed it against live state.
#[derive(Debug, Clone)]
pub struct ReviewedPlan {
    /// The plugin's plan: its words (summary, diff, details) and request bodies.
    pub proposed: Plan,
    /// The plugin's writes with the host's preconditions, in order.
    pub writes: Vec<PlannedWrite>,
    /// Every resource written, as the host read it before the change (plan order).
    pub before: Vec<BeforeState>,
    /// One line per write.
    pub lines: Vec<String>,
    pub resources: Vec<ResourceChange>,
    /// Who proposed it (shown with its words).
    pub plugin: String,
}

/// The outcome of a review.
#[derive(Debug, Clone)]
pub enum Reviewed {
    Ready(Box<ReviewedPlan>),
    /// The plugin planned against a state that is not the live one: plan again.
    Stale {
        path: String,
        reason: String,
    },
}

/// The identity of a resource: its path below the service, without query, lowercased (APIM
/// names are case-insensitive).
pub fn resource_key(arm: &ArmClient, path: &str) -> Result<String, ToolError> {
    let scoped = arm.scope(path).map_err(|e| ToolError::Denied(e.to_string()))?;
    Ok(scoped.relative().to_ascii_lowercase())
}

/// Whether `path` is a policy document (read and diffed as raw XML text).
pub fn is_policy_document(arm: &ArmClient, path: &str) -> bool {
    arm.scope(path).is_ok_and(|s| s.kind == "policies" || s.kind.ends_with("/policies") || s.kind == "policyFragments")
}

/// The path the host reads `path` at: policy documents as raw XML, so the text the user
/// compares is the text stored.
fn read_path(arm: &ArmClient, path: &str) -> String {
    if is_policy_document(arm, path) && !path.contains("format=") {
        let sep = if path.contains('?') { '&' } else { '?' };
        return format!("{path}{sep}format=rawxml");
    }
    path.to_string()
}

/// Reads `path` as it is now: `body: None` when it does not exist.
pub async fn read_live(arm: &ArmClient, path: &str) -> Result<LiveState, ToolError> {
    let read = read_path(arm, path);
    let scoped = arm.scope(&read).map_err(|e| ToolError::Denied(e.to_string()))?;
    match arm.send(Method::GET, &scoped, None, None).await {
        Ok(response) => {
            let mut body: Value = serde_json::from_str(&response.body).unwrap_or(Value::Null);
            // Read as raw XML, so written back as raw XML (a restore must be byte for byte).
            if read != path
                && let Some(properties) = body.get_mut("properties").and_then(Value::as_object_mut)
            {
                properties.entry("format").or_insert_with(|| "rawxml".into());
            }
            Ok(LiveState { etag: response.etag, body: Some(body) })
        }
        Err(ArmError::Upstream { status: 404, .. }) => Ok(LiveState { etag: None, body: None }),
        Err(e) => Err(super::arm_to_tool_error(e)),
    }
}

/// ETags compared as ARM does: quotes and a weak `W/` prefix do not matter.
fn same_etag(a: &str, b: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").trim_matches('"').to_string();
    bare(a) == bare(b)
}

/// Reviews `plan` (from `plugin`) against the live service.
pub async fn review(arm: &ArmClient, plugin: &str, plan: Plan) -> Result<Reviewed, ToolError> {
    // The distinct resources, in order of first write.
    let mut keys: Vec<(String, String)> = Vec::new(); // (key, path as first written)
    for write in &plan.writes {
        let key = resource_key(arm, &write.path)?;
        if !keys.iter().any(|(k, _)| *k == key) {
            keys.push((key, write.path.clone()));
        }
    }
    let paths: Vec<String> = keys.iter().map(|(_, path)| path.clone()).collect();
    let reads: Vec<Result<LiveState, ToolError>> = futures::stream::iter(paths)
        .map(|path: String| {
            let arm = arm.clone();
            async move { read_live(&arm, &path).await }
        })
        .buffered(READ_CONCURRENCY)
        .collect()
        .await;
    let mut live: BTreeMap<String, LiveState> = BTreeMap::new();
    for ((key, _), read) in keys.iter().zip(reads) {
        live.insert(key.clone(), read?);
    }

    if let Some((path, reason)) = contradicted_claim(arm, &plan, &live)? {
        return Ok(Reviewed::Stale { path, reason });
    }

    // Preconditions, and the state after each write (for the diffs).
    let mut state: BTreeMap<String, LiveState> = live.clone();
    let mut seen: Vec<String> = Vec::new();
    let mut writes = Vec::with_capacity(plan.writes.len());
    let mut lines = Vec::with_capacity(plan.writes.len());
    for (index, write) in plan.writes.iter().enumerate() {
        let key = resource_key(arm, &write.path)?;
        let now = state[&key].clone();
        let precondition = if seen.contains(&key) {
            Precondition::AfterPreviousWrite
        } else {
            seen.push(key.clone());
            match (&now.body, write.method.as_str()) {
                (Some(_), _) => Precondition::IfMatch(now.etag.clone().unwrap_or_else(|| "*".into())),
                (None, "PUT") => Precondition::CreateOnly,
                (None, method) => {
                    return Ok(Reviewed::Stale {
                        path: write.path.clone(),
                        reason: format!("the plan would {method} {}, which does not exist", write.path),
                    });
                }
            }
        };
        let next = after_write(&now, write);
        lines.push(format!(
            "{}. {} {} — {} [{}]",
            index + 1,
            write.method,
            shown_path(&write.path),
            one_line(arm, &write.path, &now, &next),
            precondition.describe()
        ));
        state.insert(key, next);
        writes.push(PlannedWrite { precondition, ..write.clone() });
    }

    let mut resources = Vec::new();
    let mut before = Vec::new();
    for (key, path) in &keys {
        let (was, will) = (&live[key], &state[key]);
        resources.push(render_change(arm, path, was, will));
        before.push(BeforeState { path: path.clone(), etag: was.etag.clone(), body: was.body.clone() });
    }
    Ok(Reviewed::Ready(Box::new(ReviewedPlan {
        proposed: plan,
        writes,
        before,
        lines,
        resources,
        plugin: plugin.to_string(),
    })))
}

/// The first claim of the plugin's that the live state contradicts: the precondition of its
/// first write to a resource, or a before-state it declared for a resource it writes.
fn contradicted_claim(
    arm: &ArmClient,
    plan: &Plan,
    live: &BTreeMap<String, LiveState>,
) -> Result<Option<(String, String)>, ToolError> {
    let mut checked: Vec<String> = Vec::new();
    for write in &plan.writes {
        let key = resource_key(arm, &write.path)?;
        if checked.contains(&key) {
            continue;
        }
        checked.push(key.clone());
        let now = &live[&key];
        let reason = match (&write.precondition, &now.body, &now.etag) {
            (Precondition::IfMatch(tag), None, _) if tag != "*" => {
                Some(format!("the plan was made against ETag {tag} of {}, which no longer exists", write.path))
            }
            (Precondition::IfMatch(tag), Some(_), Some(etag)) if tag != "*" && !same_etag(tag, etag) => {
                Some(format!("the plan was made against ETag {tag} of {}, which is now {etag}", write.path))
            }
            (Precondition::CreateOnly, Some(_), _) => {
                Some(format!("the plan creates {}, but it exists (the plan was made without its ETag)", write.path))
            }
            _ => None,
        };
        if let Some(reason) = reason {
            return Ok(Some((write.path.clone(), reason)));
        }
    }
    for declared in &plan.before {
        let Ok(key) = resource_key(arm, &declared.path) else { continue };
        let Some(now) = live.get(&key) else { continue }; // not written: not a claim that matters
        let reason = match (&declared.etag, &declared.body, &now.body) {
            (None, None, Some(_)) => Some("the plugin says it does not exist, but it does".to_string()),
            (Some(_), _, None) | (None, Some(_), None) => {
                Some("the plugin describes it as it was, but it does not exist".to_string())
            }
            (Some(tag), _, Some(_)) if now.etag.as_deref().is_some_and(|etag| !same_etag(tag, etag)) => {
                Some(format!("the plugin read ETag {tag}; it is now {}", now.etag.as_deref().unwrap_or("")))
            }
            (_, Some(body), Some(current)) => disagreement(body, current),
            _ => None,
        };
        if let Some(reason) = reason {
            return Ok(Some((declared.path.clone(), format!("{}: {reason}", declared.path))));
        }
    }
    Ok(None)
}

/// Where a declared before-body disagrees with the live one: a field under `properties` that
/// the plugin declared with another value than ARM holds.
fn disagreement(declared: &Value, live: &Value) -> Option<String> {
    let mut declared_fields = BTreeMap::new();
    leaves(&declared["properties"], "properties", &mut declared_fields);
    let mut live_fields = BTreeMap::new();
    leaves(&live["properties"], "properties", &mut live_fields);
    declared_fields.iter().find_map(|(field, value)| match live_fields.get(field) {
        Some(actual) if actual == value => None,
        // Declared as absent/null is consistent with absent.
        None if value.is_null() => None,
        actual => Some(format!(
            "the plugin says {field} was {}, but it is {}",
            shown(value),
            actual.map_or("absent".to_string(), shown)
        )),
    })
}

/// The state after `write` is applied to `now` (for the diffs; the real answer is journaled).
fn after_write(now: &LiveState, write: &PlannedWrite) -> LiveState {
    match write.method.as_str() {
        "DELETE" => LiveState { etag: None, body: None },
        "PATCH" => {
            let mut body = now.body.clone().unwrap_or_else(|| json!({}));
            if let Some(patch) = &write.body {
                merge_patch(&mut body, patch);
            }
            LiveState { etag: None, body: Some(body) }
        }
        _ => LiveState { etag: None, body: write.body.clone() },
    }
}

/// JSON merge patch (RFC 7396), which is how a PATCH's fields read to a person: each field it
/// names is set, `null` removes it. (Only for display; what ARM actually answered is journaled.)
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let map = target.as_object_mut().expect("made an object");
    for (key, value) in patch {
        if value.is_null() {
            map.remove(key);
        } else {
            merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// The reviewable text of a policy document, if `state` is one.
fn policy_text(arm: &ArmClient, path: &str, state: &LiveState) -> Option<String> {
    if !is_policy_document(arm, path) {
        return None;
    }
    state.body.as_ref()?["properties"]["value"].as_str().map(str::to_string)
}

/// Flattens JSON into `dotted.path[0].field → leaf value`.
fn leaves(value: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let at = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                leaves(v, &at, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                leaves(v, &format!("{prefix}[{i}]"), out);
            }
        }
        Value::Null if prefix == "properties" => {}
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// The fields of a resource body a person reviews: without what ARM computes, secrets redacted.
fn reviewable_fields(body: Option<&Value>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    if let Some(Value::Object(map)) = body.map(redact) {
        for (k, v) in map.iter().filter(|(k, _)| !READ_ONLY_FIELDS.contains(&k.as_str())) {
            leaves(v, k, &mut out);
        }
    }
    out.remove("properties.provisioningState");
    out
}

fn shown(value: &Value) -> String {
    let text = match value {
        Value::String(s) if s == REDACTED => "(secret, not shown)".to_string(),
        other => other.to_string(),
    };
    if text.chars().count() > MAX_VALUE_CHARS {
        let cut: String = text.chars().take(MAX_VALUE_CHARS).collect();
        format!("{cut}… ({} characters)", text.chars().count())
    } else {
        text
    }
}

/// What kind of change `was → will` is.
fn change_kind(was: &LiveState, will: &LiveState) -> &'static str {
    match (&was.body, &will.body) {
        (None, Some(_)) => "create",
        (Some(_), None) => "delete",
        (None, None) => "create and delete",
        (Some(a), Some(b)) if a == b => "unchanged",
        _ => "update",
    }
}

/// The host's diff of one resource, from the state it read to the state the plan leaves.
fn render_change(arm: &ArmClient, path: &str, was: &LiveState, will: &LiveState) -> ResourceChange {
    let change = change_kind(was, will).to_string();
    let (old_text, new_text) = (policy_text(arm, path, was), policy_text(arm, path, will));
    let (diff, added, removed) = if old_text.is_some() || new_text.is_some() {
        text_diff(path, &old_text.unwrap_or_default(), &new_text.unwrap_or_default())
    } else {
        field_diff(was.body.as_ref(), will.body.as_ref())
    };
    ResourceChange { path: path.to_string(), change, diff, added, removed }
}

/// A unified diff of two policy documents (context 3), with its +/− line counts.
fn text_diff(path: &str, old: &str, new: &str) -> (String, usize, usize) {
    let (old, new) = (ensure_newline(old), ensure_newline(new));
    let diff = similar::TextDiff::from_lines(&old, &new);
    let (mut added, mut removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    let text = diff.unified_diff().context_radius(3).header(&format!("a/{path}"), &format!("b/{path}")).to_string();
    (text, added, removed)
}

fn ensure_newline(text: &str) -> String {
    if text.is_empty() || text.ends_with('\n') { text.to_string() } else { format!("{text}\n") }
}

/// A field-by-field diff of two JSON resources: `+ field: value`, `- field: value`,
/// `~ field: old → new`.
fn field_diff(was: Option<&Value>, will: Option<&Value>) -> (String, usize, usize) {
    let (old, new) = (reviewable_fields(was), reviewable_fields(will));
    let mut out = String::new();
    let (mut added, mut removed) = (0, 0);
    for (field, value) in &old {
        match new.get(field) {
            None => {
                removed += 1;
                out.push_str(&format!("- {field}: {}\n", shown(value)));
            }
            Some(next) if next != value => {
                added += 1;
                removed += 1;
                out.push_str(&format!("~ {field}: {} → {}\n", shown(value), shown(next)));
            }
            Some(_) => {}
        }
    }
    for (field, value) in new.iter().filter(|(f, _)| !old.contains_key(*f)) {
        added += 1;
        out.push_str(&format!("+ {field}: {}\n", shown(value)));
    }
    (out, added, removed)
}

/// The one-line description of a write for the list of writes.
fn one_line(arm: &ArmClient, path: &str, now: &LiveState, next: &LiveState) -> String {
    let kind = change_kind(now, next);
    if kind == "delete" {
        return "deletes it".into();
    }
    let change = render_change(arm, path, now, next);
    if policy_text(arm, path, now).is_some() || policy_text(arm, path, next).is_some() {
        return format!("{kind} of the policy document: +{} −{} lines", change.added, change.removed);
    }
    // Changed values first, then added fields, then removed ones: what a reviewer looks for.
    let mut all: Vec<&str> = change.diff.lines().collect();
    all.sort_by_key(|l| ["~", "+", "-"].iter().position(|p| l.starts_with(p)).unwrap_or(3));
    let fields: Vec<&str> = all.iter().copied().take(2).collect();
    let more = all.len().saturating_sub(2);
    match (fields.is_empty(), more) {
        (true, _) => format!("{kind}: no field changes"),
        (false, 0) => format!("{kind}: {}", fields.join("; ")),
        (false, more) => format!("{kind}: {}; and {more} more field(s)", fields.join("; ")),
    }
}

/// A path as a person reads it (`""` is the service itself).
fn shown_path(path: &str) -> &str {
    if path.trim_matches('/').is_empty() { "(the service itself)" } else { path }
}

/// Indents text as a quotation, so nothing in it can pass for the host's own lines.
fn quoted(text: &str, max_chars: usize) -> String {
    let mut text: String = text.trim_end().to_string();
    if text.chars().count() > max_chars {
        text = text.chars().take(max_chars).collect();
        text.push_str(" … (shortened)");
    }
    // Each line escaped as plugin log lines are, so no control character, ANSI escape or bidi
    // override can repaint the host's lines above.
    text.lines().map(|l| format!("  > {}\n", crate::runtime::imports::sanitize_log_line(l))).collect()
}

impl ReviewedPlan {
    /// The complete host-rendered diff of every resource.
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for r in &self.resources {
            out.push_str(&format!("{} ({}):\n{}", shown_path(&r.path), r.change, r.diff));
            if !r.diff.ends_with('\n') && !r.diff.is_empty() {
                out.push('\n');
            }
        }
        out
    }

    /// The text the user confirms: the host's lines and diffs, then the plugin's words.
    pub fn message(&self, note: Option<&str>) -> String {
        let mut out = String::new();
        if let Some(note) = note {
            out.push_str(note);
            out.push_str("\n\n");
        }
        out.push_str(&format!(
            "Apply this change? It makes {} write(s) to {} resource(s), as read from the live service just now:\n",
            self.writes.len(),
            self.resources.len()
        ));
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        let mut budget = MAX_DIFFS_CHARS;
        for r in &self.resources {
            let header = format!("{} ({}, +{} −{}):\n", shown_path(&r.path), r.change, r.added, r.removed);
            let lines: Vec<&str> = r.diff.lines().collect();
            let shown_lines = lines.len().min(MAX_DIFF_LINES_PER_RESOURCE);
            let body: String = lines[..shown_lines].iter().map(|l| format!("{l}\n")).collect();
            if body.len() > budget {
                out.push_str(&header);
                out.push_str(&format!("  ({} diff lines not shown; see the dry run)\n", lines.len()));
                continue;
            }
            budget -= body.len();
            out.push_str(&header);
            out.push_str(&body);
            if lines.len() > shown_lines {
                out.push_str(&format!("  … and {} more diff lines in this resource\n", lines.len() - shown_lines));
            }
        }
        out.push_str(&format!(
            "\nThe plugin {:?} describes this change in its own words (not checked by the server):\n",
            self.plugin
        ));
        out.push_str(&quoted(&self.proposed.summary, MAX_PLUGIN_WORDS_CHARS));
        if !self.proposed.diff.trim().is_empty() {
            out.push_str(&quoted(&self.proposed.diff, MAX_PLUGIN_WORDS_CHARS));
        }
        out
    }

    /// The reviewed plan for a dry run or a structured answer.
    pub fn to_json(&self) -> Value {
        json!({
            "writes": self.writes.iter().map(|w| json!({
                "method": w.method, "path": w.path, "precondition": w.precondition,
                "body": w.body.as_ref().map(redact),
            })).collect::<Vec<_>>(),
            "changes": self.resources,
            "lines": self.lines,
            "diff": self.diff(),
            "plugin": {"name": self.plugin, "summary": self.proposed.summary, "diff": self.proposed.diff},
            "details": self.proposed.details,
        })
    }

    /// The host's before-state of the resource at `key` (see [`resource_key`]).
    pub fn before_of(&self, arm: &ArmClient, path: &str) -> Option<&BeforeState> {
        let key = resource_key(arm, path).ok()?;
        self.before.iter().find(|b| resource_key(arm, &b.path).ok().as_deref() == Some(key.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_resource_is_diffed_field_by_field_without_what_arm_computes() {
        let was =
            json!({"id": "/x", "name": "n", "properties": {"value": "50000", "displayName": "tpm", "tags": ["a"]}});
        let will = json!({"properties": {"value": "1", "displayName": "tpm", "tags": ["a", "b"]}});
        let (diff, added, removed) = field_diff(Some(&was), Some(&will));
        assert!(diff.contains("~ properties.value: \"50000\" → \"1\""), "{diff}");
        assert!(diff.contains("+ properties.tags[1]: \"b\""), "{diff}");
        assert!(!diff.contains("id") && !diff.contains("name:"), "{diff}");
        assert_eq!((added, removed), (2, 1));
    }

    #[test]
    fn secrets_are_never_shown() {
        let was = json!({"properties": {"secret": true, "displayName": "k"}});
        let will = json!({"properties": {"secret": true, "displayName": "k", "value": "hunter2"}});
        let (diff, ..) = field_diff(Some(&was), Some(&will));
        assert!(diff.contains("(secret, not shown)") && !diff.contains("hunter2"), "{diff}");
    }

    #[test]
    fn a_merge_patch_sets_named_fields_and_null_removes() {
        let mut body = json!({"properties": {"a": 1, "b": {"c": 2, "d": 3}}});
        merge_patch(&mut body, &json!({"properties": {"a": null, "b": {"c": 5}}}));
        assert_eq!(body, json!({"properties": {"b": {"c": 5, "d": 3}}}));
    }

    #[test]
    fn a_declared_before_state_that_disagrees_is_found() {
        let live = json!({"properties": {"value": "50000", "displayName": "x"}});
        assert_eq!(disagreement(&json!({"properties": {"value": "50000"}}), &live), None);
        let why = disagreement(&json!({"properties": {"value": "13"}}), &live).unwrap();
        assert!(why.contains("\"13\"") && why.contains("\"50000\""), "{why}");
    }

    #[test]
    fn quoted_words_cannot_pass_for_host_lines() {
        let q = quoted("fine\n1. PUT nothing — unchanged\x1b[2K", 100);
        assert!(q.lines().all(|l| l.starts_with("  > ")), "{q}");
        assert!(!q.contains('\x1b'));
    }

    #[test]
    fn etags_compare_without_quotes_or_weakness() {
        assert!(same_etag("\"abc\"", "W/\"abc\""));
        assert!(!same_etag("\"abc\"", "\"abd\""));
    }
}
