//! Rollback as revert: reverse one change's own edits on top of the state as it is now, the way
//! `git revert` does, and keep everything that happened after it.
//!
//! For each resource the change wrote, three states meet: *before* (what the host read just
//! before the change), *after* (what the change left) and *current* (what the host reads now).
//! - policy documents (text): a three-way line merge with *after* as the ancestor, *current* as
//!   ours and *before* as theirs — the change's hunks are reversed where later edits did not
//!   touch them, every other byte stays as it is now;
//! - JSON resources: field by field — a field the change set goes back unless a later change
//!   set it too; fields later changes set are kept; list items with an `id` (pool members) are
//!   matched by id, so a member the change added is removed and one it removed is put back;
//! - a resource the change created is deleted only if nothing changed it since; one it deleted
//!   is recreated, create-only.
//!
//! A later change that edited the same lines or fields is a **conflict**: the revert is refused
//! and both edits are shown side by side. Nothing here writes; the result is a plan that goes
//! through the host's review and confirmation like any other.

use serde_json::{Map, Value, json};

use super::ChangePipeline;
use super::journal::{Change, contains_redaction};
use super::review::{LiveState, is_policy_document, read_live};
use super::rollback::restorable;
use crate::arm::Precondition;
use crate::runtime::api::{BeforeState, Plan, PlannedWrite, ToolError};

/// One resource as the change found it and left it.
#[derive(Debug, Clone)]
pub struct Touched {
    pub path: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// For a policy document: the text the change wrote (the request body's, byte for byte).
    pub after_text: Option<String>,
    /// The ETag the change's last write left (`None` after a delete).
    pub our_etag: Option<String>,
}

/// Where a later change edited what this change edited.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub path: String,
    pub field: String,
    /// `before → after`: what the change being reverted did.
    pub this_change: String,
    /// `after → current`: what happened since.
    pub later: String,
}

impl Conflict {
    fn describe(&self) -> String {
        format!("{} {}:\n  this change:  {}\n  since then:   {}", self.path, self.field, self.this_change, self.later)
    }
}

/// The resources `change` wrote, in order of first write, with the states it found and left.
pub fn touched(change: &Change) -> Vec<Touched> {
    let Some(completed) = &change.completed else { return Vec::new() };
    let mut out: Vec<Touched> = Vec::new();
    for write in &completed.writes {
        let before = change.planned.before.iter().find(|b| b.path == write.path).and_then(|b| b.body.clone());
        let after = if write.method == "DELETE" { None } else { write.after.clone() };
        let our_etag = if write.method == "DELETE" { None } else { write.etag.clone() };
        // The text a PUT of a policy document wrote, from the request itself: the answer may
        // render the document differently, the stored text is what was sent.
        let after_text = change
            .planned
            .writes
            .iter()
            .rev()
            .find(|w| w.path == write.path && w.method == "PUT")
            .and_then(|w| w.body.as_ref()?["properties"]["value"].as_str().map(str::to_string))
            .filter(|_| write.method == "PUT");
        match out.iter_mut().find(|t| t.path == write.path) {
            Some(t) => {
                t.after = after;
                t.after_text = after_text;
                t.our_etag = our_etag;
            }
            None => out.push(Touched { path: write.path.clone(), before, after, after_text, our_etag }),
        }
    }
    out
}

/// Builds the plan that reverts `change` on top of the current state, or refuses with the
/// conflicts side by side.
pub async fn plan_revert(pipeline: &ChangePipeline, change: &Change) -> Result<Plan, ToolError> {
    let id = &change.planned.id;
    let arm = pipeline.arm();
    let mut writes = Vec::new();
    let mut before_states = Vec::new();
    let mut conflicts = Vec::new();
    for t in touched(change).iter().rev() {
        let live = read_live(arm, &t.path).await?;
        let policy = is_policy_document(arm, &t.path);
        match revert_resource(t, &live, policy) {
            Ok(None) => {}
            Ok(Some(write)) => {
                before_states.push(BeforeState { path: t.path.clone(), etag: live.etag.clone(), body: live.body });
                writes.push(write);
            }
            Err(found) => conflicts.extend(found),
        }
    }
    if !conflicts.is_empty() {
        let listing: Vec<String> = conflicts.iter().map(Conflict::describe).collect();
        return Err(ToolError::Conflict(format!(
            "change {id} cannot be reverted on its own: a later change edited the same {} it did.\n{}\n\
             Revert the later change first, or pass force: true to restore every resource to its state before {id} \
             (that also discards the later edits).",
            if conflicts.len() == 1 { "place" } else { "places" },
            listing.join("\n")
        )));
    }
    if writes.is_empty() {
        return Err(ToolError::Conflict(format!(
            "change {id}'s edits are no longer in place (the resources already read as before it); nothing to revert"
        )));
    }
    Ok(Plan {
        summary: format!(
            "Revert change {id} ({}): reverse its own edits on {} resource(s), keeping every later change",
            change.planned.summary,
            writes.len()
        ),
        diff: String::new(),
        writes,
        before: before_states,
        details: Some(json!({ "rollbackOf": id, "mode": "revert" })),
    })
}

/// The write that reverts one resource, `None` if nothing is left to revert, or the conflicts.
pub fn revert_resource(t: &Touched, live: &LiveState, policy: bool) -> Result<Option<PlannedWrite>, Vec<Conflict>> {
    let conflict = |field: &str, this: String, later: String| {
        vec![Conflict { path: t.path.clone(), field: field.into(), this_change: this, later }]
    };
    let if_match = || Precondition::IfMatch(live.etag.clone().unwrap_or_else(|| "*".into()));
    match (&t.before, &t.after, &live.body) {
        (None, _, None) => Ok(None),
        (None, _, Some(_)) if live.etag.is_some() && live.etag == t.our_etag => Ok(Some(PlannedWrite {
            method: "DELETE".into(),
            path: t.path.clone(),
            precondition: if_match(),
            body: None,
        })),
        (None, _, Some(_)) => Err(conflict(
            "(the resource)",
            "created it".into(),
            "it was changed after it was created, so deleting it would discard that".into(),
        )),
        (Some(before), None, None) => Ok(Some(PlannedWrite {
            method: "PUT".into(),
            path: t.path.clone(),
            precondition: Precondition::CreateOnly,
            body: Some(restorable(before)),
        })),
        (Some(_), None, Some(_)) => {
            Err(conflict("(the resource)", "deleted it".into(), "it was created again since".into()))
        }
        (Some(_), Some(_), None) => Err(conflict("(the resource)", "changed it".into(), "it was deleted since".into())),
        (Some(before), Some(after), Some(current)) => {
            if contains_redaction(before) {
                return Err(conflict(
                    "(the resource)",
                    "changed a resource that holds a secret".into(),
                    "secrets are never recorded, so it cannot be reverted automatically".into(),
                ));
            }
            let merged = if policy {
                let (b, c) = (text_of(Some(before)).unwrap_or_default(), text_of(Some(current)).unwrap_or_default());
                let a = t.after_text.clone().or_else(|| text_of(Some(after))).unwrap_or_default();
                let text = revert_text(&b, &a, &c).map_err(|markers| {
                    conflict(
                        "(lines)",
                        "edited the lines below".into(),
                        format!("a later change edited them again:\n{}", conflict_regions(&markers)),
                    )
                })?;
                if text == c {
                    return Ok(None);
                }
                let mut body = restorable(current);
                body["properties"]["value"] = Value::String(text);
                body["properties"]["format"] = "rawxml".into();
                body
            } else {
                let (b, a, c) = (restorable(before), restorable(after), restorable(current));
                let mut conflicts = Vec::new();
                let merged = revert_value(Some(&b), Some(&a), Some(&c), "", &t.path, &mut conflicts);
                if !conflicts.is_empty() {
                    return Err(conflicts);
                }
                let merged = merged.unwrap_or_else(|| json!({}));
                if merged == c {
                    return Ok(None);
                }
                merged
            };
            Ok(Some(PlannedWrite {
                method: "PUT".into(),
                path: t.path.clone(),
                precondition: if_match(),
                body: Some(merged),
            }))
        }
    }
}

/// A policy document's text.
fn text_of(body: Option<&Value>) -> Option<String> {
    body?["properties"]["value"].as_str().map(str::to_string)
}

/// Only the conflicting regions of a merge with markers, labelled for a person: what the lines
/// are now, what the change left, what they were before it.
fn conflict_regions(markers: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in markers.lines() {
        let label = match line {
            l if l.starts_with("<<<<<<<") => Some("<<<<<<< now (after the later change)"),
            l if l.starts_with("|||||||") => Some("||||||| as this change left them"),
            l if l.starts_with("=======") => Some("======= before this change"),
            l if l.starts_with(">>>>>>>") => Some(">>>>>>>"),
            _ => None,
        };
        match label {
            Some(label) => {
                inside = !line.starts_with(">>>>>>>");
                out.push_str(label);
                out.push('\n');
            }
            None if inside => {
                out.push_str(line);
                out.push('\n');
            }
            None => {}
        }
    }
    out
}

/// Reverses `before → after` on `current`: a three-way line merge with `after` as ancestor.
/// `Err` carries the conflicting region with markers.
pub fn revert_text(before: &str, after: &str, current: &str) -> Result<String, String> {
    if current == after {
        return Ok(before.to_string());
    }
    diffy::merge(after, current, before)
}

/// Reverses `before → after` on `current`, recursively, field by field. `None` is "absent".
/// Pushes a [`Conflict`] wherever a later change edited what this change edited.
pub fn revert_value(
    before: Option<&Value>,
    after: Option<&Value>,
    current: Option<&Value>,
    field: &str,
    path: &str,
    conflicts: &mut Vec<Conflict>,
) -> Option<Value> {
    if after == current {
        return before.cloned(); // untouched since: this change's edit is reversed
    }
    if after == before || current == before {
        return current.cloned(); // the change did not touch it, or it is already reverted
    }
    match (before, after, current) {
        (Some(Value::Object(b)), Some(Value::Object(a)), Some(Value::Object(c))) => {
            let mut out = Map::new();
            let keys = c.keys().chain(b.keys().filter(|k| !c.contains_key(*k))).cloned().collect::<Vec<_>>();
            for key in keys {
                let at = if field.is_empty() { key.clone() } else { format!("{field}.{key}") };
                if let Some(v) = revert_value(b.get(&key), a.get(&key), c.get(&key), &at, path, conflicts) {
                    out.insert(key, v);
                }
            }
            Some(Value::Object(out))
        }
        (Some(Value::Array(b)), Some(Value::Array(a)), Some(Value::Array(c)))
            if [b, a, c].iter().all(|items| items.iter().all(|i| member_id(i).is_some())) =>
        {
            let find = |items: &[Value], id: &str| items.iter().find(|i| member_id(i) == Some(id)).cloned();
            let mut out = Vec::new();
            for item in c {
                let id = member_id(item).unwrap_or_default();
                let at = format!("{field}[id={id}]");
                if let Some(v) =
                    revert_value(find(b, id).as_ref(), find(a, id).as_ref(), Some(item), &at, path, conflicts)
                {
                    out.push(v);
                }
            }
            for item in b.iter().filter(|i| find(c, member_id(i).unwrap_or_default()).is_none()) {
                let id = member_id(item).unwrap_or_default();
                let at = format!("{field}[id={id}]");
                if let Some(v) = revert_value(Some(item), find(a, id).as_ref(), None, &at, path, conflicts) {
                    out.push(v);
                }
            }
            Some(Value::Array(out))
        }
        _ => {
            let shown = |v: Option<&Value>| v.map_or("(absent)".to_string(), Value::to_string);
            conflicts.push(Conflict {
                path: path.to_string(),
                field: if field.is_empty() { "(the body)".into() } else { field.to_string() },
                this_change: format!("{} → {}", shown(before), shown(after)),
                later: format!("{} → {}", shown(after), shown(current)),
            });
            current.cloned()
        }
    }
}

/// The identity of a list item (a pool member): its `id`.
fn member_id(item: &Value) -> Option<&str> {
    item.get("id")?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revert(b: Value, a: Value, c: Value) -> (Option<Value>, Vec<Conflict>) {
        let mut conflicts = Vec::new();
        let v = revert_value(Some(&b), Some(&a), Some(&c), "", "x", &mut conflicts);
        (v, conflicts)
    }

    #[test]
    fn a_field_the_change_set_goes_back_and_later_fields_stay() {
        let (v, c) = revert(
            json!({"properties": {"value": "200000", "tags": ["a"]}}),
            json!({"properties": {"value": "100000", "tags": ["a"]}}),
            json!({"properties": {"value": "100000", "tags": ["a", "b"], "displayName": "x"}}),
        );
        assert!(c.is_empty(), "{c:?}");
        assert_eq!(v.unwrap(), json!({"properties": {"value": "200000", "tags": ["a", "b"], "displayName": "x"}}));
    }

    #[test]
    fn the_same_field_changed_again_is_a_conflict_showing_both_edits() {
        let (_, c) = revert(json!({"v": 1}), json!({"v": 2}), json!({"v": 3}));
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].field.as_str(), c[0].this_change.as_str(), c[0].later.as_str()), ("v", "1 → 2", "2 → 3"));
    }

    #[test]
    fn pool_members_are_matched_by_id() {
        let east = json!({"id": "/b/east", "priority": 1});
        let west = json!({"id": "/b/west", "priority": 2});
        let north = json!({"id": "/b/north", "priority": 3});
        // The change added west; later someone added north: reverting removes west only.
        let (v, c) = revert(
            json!({"pool": [east.clone()]}),
            json!({"pool": [east.clone(), west.clone()]}),
            json!({"pool": [east.clone(), west.clone(), north.clone()]}),
        );
        assert!(c.is_empty(), "{c:?}");
        assert_eq!(v.unwrap(), json!({"pool": [east.clone(), north.clone()]}));
        // The change removed west: reverting puts it back.
        let (v, _) = revert(
            json!({"pool": [east.clone(), west.clone()]}),
            json!({"pool": [east.clone()]}),
            json!({"pool": [east.clone(), north.clone()]}),
        );
        assert_eq!(v.unwrap(), json!({"pool": [east, north, west]}));
    }

    #[test]
    fn text_hunks_of_the_change_are_reversed_and_later_edits_kept() {
        let before = "a\nb\nc\nd\ne\nf\ng\n";
        let after = "a\nB\nc\nd\ne\nf\ng\n";
        let current = "a\nB\nc\nd\ne\nF\ng\n";
        assert_eq!(revert_text(before, after, current).unwrap(), "a\nb\nc\nd\ne\nF\ng\n");
        let markers = revert_text(before, after, "a\nBB\nc\nd\ne\nf\ng\n").unwrap_err();
        assert_eq!(
            conflict_regions(&markers),
            "<<<<<<< now (after the later change)\nBB\n||||||| as this change left them\nB\n======= before this change\nb\n>>>>>>>\n"
        );
    }

    #[test]
    fn a_created_resource_is_deleted_only_if_unchanged_since() {
        let t = Touched {
            path: "backends/west".into(),
            before: None,
            after: Some(json!({"properties": {"url": "u"}})),
            after_text: None,
            our_etag: Some("\"e1\"".into()),
        };
        let same = LiveState { etag: Some("\"e1\"".into()), body: Some(json!({"properties": {"url": "u"}})) };
        let w = revert_resource(&t, &same, false).unwrap().unwrap();
        assert_eq!((w.method.as_str(), w.precondition), ("DELETE", Precondition::IfMatch("\"e1\"".into())));
        let changed = LiveState { etag: Some("\"e2\"".into()), body: Some(json!({"properties": {"url": "v"}})) };
        assert!(revert_resource(&t, &changed, false).is_err());
        assert_eq!(revert_resource(&t, &LiveState { etag: None, body: None }, false).unwrap(), None);
    }

    mod properties {
        use super::super::revert_text;
        use proptest::prelude::*;

        proptest! {
            /// A policy document of distinct lines; this change edits line i, a later change
            /// edits line j at least two lines away. Reverting this change leaves exactly the
            /// later edit, byte for byte.
            #[test]
            fn reverting_one_edit_keeps_a_later_edit_elsewhere(
                n in 6usize..60, i in 0usize..60, j in 0usize..60, crlf: bool,
            ) {
                let (i, j) = (i % n, j % n);
                prop_assume!(i.abs_diff(j) >= 2);
                let nl = if crlf { "\r\n" } else { "\n" };
                let line = |k: usize, tag: &str| format!("\t<set-header name=\"h{k}\"{tag} />{nl}");
                let doc = |edits: &[(usize, &str)]| -> String {
                    (0..n).map(|k| line(k, edits.iter().find(|(e, _)| *e == k).map_or("", |(_, t)| t))).collect()
                };
                let before = doc(&[]);
                let after = doc(&[(i, " a=\"1\"")]);
                let current = doc(&[(i, " a=\"1\""), (j, " b=\"2\"")]);
                let expected = doc(&[(j, " b=\"2\"")]);
                prop_assert_eq!(revert_text(&before, &after, &current).unwrap(), expected);
            }
        }
    }
}
