//! Undoing a change: a rollback is itself a plan, built from the journal and the current state.
//!
//! By default a rollback is a *revert* (see [`super::revert`]): the change's own edits are
//! reversed on top of the current state and later changes survive. `force: true` is the blunt
//! instrument kept here: every resource the change wrote is restored to the journal's
//! before-state — the state the *host* read before the change, never a plugin's account of it —
//! with `If-Match` on the resource's *current* ETag (create-only when it is gone now), so nothing
//! that changes *during* the rollback is lost; later edits to those resources are discarded, and
//! the plan's details list them (`drift`).

use serde_json::{Value, json};

use super::ChangePipeline;
use super::journal::{Change, contains_redaction};
use super::review::READ_ONLY_FIELDS;
use crate::arm::Precondition;
use crate::runtime::api::{BeforeState, Plan, PlannedWrite, ToolError};

/// The write that puts `path` back to `before` (the state the host read before the change),
/// conditioned on `current_etag`; `None` when there is nothing to do (it did not exist then and
/// does not now). A resource that existed is always put back with a PUT, never deleted.
pub fn restore_write(
    path: &str,
    before: Option<&BeforeState>,
    current_etag: Option<String>,
    currently_absent: bool,
) -> Result<Option<PlannedWrite>, String> {
    let current = || Precondition::IfMatch(current_etag.clone().unwrap_or_else(|| "*".into()));
    match before.and_then(|b| b.body.as_ref()) {
        None if currently_absent => Ok(None),
        None => {
            Ok(Some(PlannedWrite { method: "DELETE".into(), path: path.into(), precondition: current(), body: None }))
        }
        Some(body) if contains_redaction(body) || is_unreadable_secret(body) => Err(format!(
            "{path} cannot be restored automatically: its before-state holds a secret that is never read or recorded"
        )),
        Some(body) => Ok(Some(PlannedWrite {
            method: "PUT".into(),
            path: path.into(),
            precondition: if currently_absent { Precondition::CreateOnly } else { current() },
            body: Some(restorable(body)),
        })),
    }
}

/// A secret named value as ARM returns it: marked secret, without its value.
fn is_unreadable_secret(body: &Value) -> bool {
    let properties = &body["properties"];
    properties["secret"].as_bool() == Some(true) && properties.get("value").is_none_or(Value::is_null)
}

/// A GET body made fit for a PUT: without the fields ARM computes.
pub fn restorable(body: &Value) -> Value {
    match body {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !READ_ONLY_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The text a reviewer wants to compare: a policy's XML or a named value's value when the body
/// has one, otherwise the pretty-printed JSON.
fn reviewable(body: Option<&Value>) -> String {
    match body {
        None => "(does not exist)\n".into(),
        Some(body) => match body["properties"]["value"].as_str() {
            Some(text) => format!("{}\n", text.trim_end()),
            None => format!("{}\n", serde_json::to_string_pretty(body).unwrap_or_default()),
        },
    }
}

/// A unified diff of two resource states.
pub fn diff(path: &str, before: Option<&Value>, after: Option<&Value>) -> String {
    let (a, b) = (reviewable(before), reviewable(after));
    if a == b {
        return String::new();
    }
    similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

/// Builds the plan that undoes `change`: a revert (later changes survive), or with `force` a
/// restore of every resource to its state before the change.
pub async fn plan_rollback(pipeline: &ChangePipeline, change: &Change, force: bool) -> Result<Plan, ToolError> {
    check_revertible(change)?;
    if !force {
        return super::revert::plan_revert(pipeline, change).await;
    }
    plan_restore(pipeline, change).await
}

fn check_revertible(change: &Change) -> Result<(), ToolError> {
    let id = &change.planned.id;
    if change.completed.is_none() {
        return Err(ToolError::Conflict(format!(
            "change {id} was interrupted before it completed; inspect its before-states with list_changes and restore by hand"
        )));
    }
    if change.status() != "applied" {
        return Err(ToolError::Conflict(format!(
            "change {id} was not applied (it is {}); there is nothing to roll back",
            change.status()
        )));
    }
    Ok(())
}

/// The plan that restores every resource `change` wrote to its state before it (`force`).
async fn plan_restore(pipeline: &ChangePipeline, change: &Change) -> Result<Plan, ToolError> {
    let id = &change.planned.id;
    let Some(completed) = &change.completed else {
        return Err(ToolError::Conflict(format!("change {id} was interrupted; there is nothing to restore from")));
    };
    // The resources written, in order of first write, with the ETag our last write left.
    let mut paths: Vec<(String, Option<String>, Option<Value>)> = Vec::new();
    for write in &completed.writes {
        let etag = if write.method == "DELETE" { None } else { write.etag.clone() };
        match paths.iter_mut().find(|(p, ..)| *p == write.path) {
            Some(entry) => *entry = (write.path.clone(), etag, write.after.clone()),
            None => paths.push((write.path.clone(), etag, write.after.clone())),
        }
    }
    let arm = pipeline.arm();
    let mut writes = Vec::new();
    let mut before_states = Vec::new();
    let mut diffs = String::new();
    let mut drift = Vec::new();
    for (path, our_etag, our_after) in paths.iter().rev() {
        let live = super::review::read_live(arm, path).await?;
        let current = live.body.map(|body| (live.etag, body));
        let current_etag = current.as_ref().and_then(|(etag, _)| etag.clone());
        let current_body = current.as_ref().map(|(_, body)| body.clone());
        if current_etag != *our_etag {
            drift.push(json!({
                "path": path,
                "etagAfterChange": our_etag,
                "currentEtag": current_etag,
                "diff": diff(path, our_after.as_ref(), current_body.as_ref()),
            }));
        }
        let before = change.planned.before.iter().find(|b| b.path == *path);
        let Some(write) =
            restore_write(path, before, current_etag.clone(), current_body.is_none()).map_err(ToolError::Conflict)?
        else {
            continue;
        };
        diffs.push_str(&diff(path, current_body.as_ref(), before.and_then(|b| b.body.as_ref())));
        before_states.push(BeforeState { path: path.clone(), etag: current_etag, body: current_body });
        writes.push(write);
    }
    if writes.is_empty() {
        return Err(ToolError::Conflict(format!(
            "change {id} left nothing that differs from before it; nothing to roll back"
        )));
    }
    Ok(Plan {
        summary: format!(
            "Roll back change {id} ({}) by force: restore {} resource(s) to their state before {}, discarding any later edits",
            change.planned.summary,
            writes.len(),
            change.planned.time
        ),
        diff: diffs,
        writes,
        before: before_states,
        details: Some(json!({ "rollbackOf": id, "mode": "restore", "forced": true, "drift": drift })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_resource_is_restored_by_deleting_it_with_the_current_etag() {
        let w = restore_write("backends/new", None, Some("\"e2\"".into()), false).unwrap().unwrap();
        assert_eq!((w.method.as_str(), &w.precondition), ("DELETE", &Precondition::IfMatch("\"e2\"".into())));
        assert_eq!(restore_write("backends/new", None, None, true).unwrap(), None, "gone already: nothing to do");
    }

    #[test]
    fn an_existing_resource_is_put_back_without_read_only_fields() {
        let before = BeforeState {
            path: "namedValues/x".into(),
            etag: Some("\"e1\"".into()),
            body: Some(json!({"id": "/s/namedValues/x", "name": "x", "type": "t", "properties": {"value": "1"}})),
        };
        let w = restore_write("namedValues/x", Some(&before), Some("\"e2\"".into()), false).unwrap().unwrap();
        assert_eq!(w.method, "PUT");
        assert_eq!(w.precondition, Precondition::IfMatch("\"e2\"".into()));
        assert_eq!(w.body.unwrap(), json!({"properties": {"value": "1"}}));
        let recreate = restore_write("namedValues/x", Some(&before), None, true).unwrap().unwrap();
        assert_eq!((recreate.method.as_str(), recreate.precondition), ("PUT", Precondition::CreateOnly));
    }

    #[test]
    fn a_redacted_secret_is_never_written_back() {
        let before = BeforeState {
            path: "namedValues/s".into(),
            etag: None,
            body: Some(json!({"properties": {"secret": true, "value": super::super::journal::REDACTED}})),
        };
        assert!(restore_write("namedValues/s", Some(&before), None, false).unwrap_err().contains("secret"));
        let unread = BeforeState {
            path: "namedValues/s".into(),
            etag: Some("\"e1\"".into()),
            body: Some(json!({"properties": {"secret": true, "displayName": "s"}})),
        };
        assert!(restore_write("namedValues/s", Some(&unread), None, false).unwrap_err().contains("secret"));
    }

    #[test]
    fn diffs_show_policy_xml_as_text() {
        let a = json!({"properties": {"value": "<policies>\n<a tpm=\"1\" />\n</policies>"}});
        let b = json!({"properties": {"value": "<policies>\n<a tpm=\"2\" />\n</policies>"}});
        let d = diff("apis/x/policies/policy", Some(&a), Some(&b));
        assert!(d.contains("-<a tpm=\"1\" />") && d.contains("+<a tpm=\"2\" />"), "{d}");
    }
}
