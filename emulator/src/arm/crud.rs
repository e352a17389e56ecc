//! The verbs every APIM child resource shares: ETag preconditions, request bodies, PATCH merge,
//! name rules, and the shapes of read/write/delete responses.
//!
//! ETag rules (reference §1.3):
//! - `PUT`: `If-Match` optional. Without it, PUT is an upsert. With `*` it always proceeds. With
//!   a tag, the entity must exist with that ETag, else 412 `PreconditionFailed` (a tag for an
//!   entity that no longer exists fails too: the client meant to update what it had read).
//! - `PATCH` and `DELETE`: `If-Match` required (`*` allowed). Missing → 400 `ValidationError`
//!   with target `If-Match` (Azure's exact answer is undocumented; this is the emulator's choice).
//! - `PUT` with `If-None-Match: *` is create-only: if the entity exists, 412
//!   `PreconditionFailed` and nothing changes (ARM's conditional create; the host sends it for
//!   every write that creates a resource, so a resource that appeared meanwhile is never replaced).
//! - Responses: 201 + ETag on create, 200 + ETag on update; DELETE 200 when something was
//!   deleted, 204 when it did not exist.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::ArmRequest;
use super::envelope::{ArmError, ArmResponse};
use crate::store::{Entity, EtagSeq, Props, Table, key};

/// A parsed `If-Match` header.
#[derive(Debug, Clone, PartialEq)]
pub enum IfMatch {
    Any,
    Tags(Vec<String>),
}

impl IfMatch {
    pub fn matches(&self, etag: &str) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Tags(tags) => tags.iter().any(|t| t == etag),
        }
    }
}

/// Reads `If-Match`: `*`, or a comma-separated list of quoted (or bare) tags, `W/` ignored.
pub fn if_match(req: &ArmRequest) -> Option<IfMatch> {
    let raw = req.headers.get("if-match")?.to_str().ok()?.trim();
    if raw.is_empty() {
        return None;
    }
    if raw == "*" || raw == "\"*\"" {
        return Some(IfMatch::Any);
    }
    let tags = raw
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"').to_string())
        .filter(|t| !t.is_empty())
        .collect();
    Some(IfMatch::Tags(tags))
}

fn precondition_failed(label: &str, name: &str, sent: &IfMatch) -> ArmError {
    let sent = match sent {
        IfMatch::Any => "*".to_string(),
        IfMatch::Tags(t) => t.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(", "),
    };
    ArmError::new(
        StatusCode::PRECONDITION_FAILED,
        "PreconditionFailed",
        format!(
            "The {} '{name}' has been modified since the ETag {sent} was issued, or it no longer exists. Read it again and retry with its current ETag.",
            label.to_lowercase()
        ),
    )
}

/// Whether the request carries `If-None-Match: *` (create only).
pub fn create_only(req: &ArmRequest) -> bool {
    req.headers.get("if-none-match").and_then(|v| v.to_str().ok()).is_some_and(|v| matches!(v.trim(), "*" | "\"*\""))
}

/// The PUT precondition: `If-None-Match: *` (the entity must not exist), else an optional
/// `If-Match` against the current ETag (if any).
pub fn check_put(req: &ArmRequest, current: Option<&str>, label: &str, name: &str) -> Result<(), ArmError> {
    if create_only(req) && current.is_some() {
        return Err(ArmError::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            format!(
                "The {} '{name}' already exists, and the request was sent with If-None-Match: * (create only).",
                label.to_lowercase()
            ),
        ));
    }
    match (if_match(req), current) {
        (None, _) | (Some(IfMatch::Any), _) => Ok(()),
        (Some(m), Some(etag)) if m.matches(etag) => Ok(()),
        (Some(m), _) => Err(precondition_failed(label, name, &m)),
    }
}

/// `If-Match` for PATCH/DELETE: required.
pub fn require_if_match(req: &ArmRequest) -> Result<IfMatch, ArmError> {
    if_match(req).ok_or_else(|| {
        ArmError::field(
            "If-Match",
            "The 'If-Match' header is required for this operation. Send the entity's ETag, or '*' to apply the change unconditionally.",
        )
    })
}

/// Checks a required `If-Match` against the current ETag.
pub fn check_match(m: &IfMatch, etag: &str, label: &str, name: &str) -> Result<(), ArmError> {
    if m.matches(etag) { Ok(()) } else { Err(precondition_failed(label, name, m)) }
}

/// The JSON body as an object (`{}` when the body is empty).
pub fn body_object(req: &ArmRequest) -> Result<Map<String, Value>, ArmError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ArmError::invalid_content("The request body must be a JSON object")),
        Err(e) => Err(ArmError::invalid_content(e)),
    }
}

/// `body.properties` as an object (`{}` when absent).
pub fn body_properties(req: &ArmRequest) -> Result<Props, ArmError> {
    let mut body = body_object(req)?;
    match body.remove("properties") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(p)) => Ok(p),
        Some(_) => Err(ArmError::field("properties", "'properties' must be a JSON object.")),
    }
}

/// PATCH semantics: top-level properties in `patch` replace those in `existing`; `null`
/// removes a property (resets it to its default).
pub fn merge(existing: &Props, patch: &Props) -> Props {
    let mut out = existing.clone();
    for (k, v) in patch {
        if v.is_null() {
            out.remove(k);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// Entity ids: 1..=`max` characters, none of `*#&+:<>?` (APIM's pattern `^[^*#&+:<>?]+$`).
pub fn check_name(name: &str, max: usize, what: &str) -> Result<(), ArmError> {
    let len = name.chars().count();
    if len == 0 || len > max || name.contains(['*', '#', '&', '+', ':', '<', '>', '?', '/']) {
        return Err(ArmError::field(
            what,
            format!("'{name}' is not a valid {what}: use 1 to {max} characters, none of * # & + : < > ? /."),
        ));
    }
    Ok(())
}

/// An ARM proxy resource: `{id, type, name, properties}`.
pub fn resource(id: String, type_name: &str, name: &str, properties: Value) -> Value {
    json!({ "id": id, "type": type_name, "name": name, "properties": properties })
}

/// 200 with body and ETag (no body for HEAD).
pub fn read_response(req: &ArmRequest, body: Value, etag: &str) -> ArmResponse {
    let body = (req.method != axum::http::Method::HEAD).then_some(body);
    ArmResponse::new(StatusCode::OK, body, Some(etag.to_string()))
}

/// 201 (created) or 200 (updated) with body and ETag.
pub fn written(created: bool, body: Value, etag: &str) -> ArmResponse {
    ArmResponse::new(if created { StatusCode::CREATED } else { StatusCode::OK }, Some(body), Some(etag.to_string()))
}

/// A list item of a nested collection (`products/{p}/apis`, `users/{u}/subscriptions`): Azure
/// names it under the parent (`{parent_id}/{collection}/{name}`) with the nested `type`
/// (`Microsoft.ApiManagement/service/products/apis`), not as the top-level resource.
pub fn nested_item(mut item: Value, parent_id: &str, collection: &str, type_name: &str) -> Value {
    let name = item["name"].as_str().unwrap_or_default().to_string();
    item["id"] = Value::String(format!("{parent_id}/{collection}/{name}"));
    item["type"] = Value::String(type_name.to_string());
    item
}

/// The answer of a long-running write (API, named value) that the emulator finished at once:
/// `properties.provisioningState` is `Succeeded` (Azure's first answer says `InProgress`).
pub fn finished_operation(mut body: Value) -> Value {
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("provisioningState".into(), Value::String("Succeeded".into()));
    }
    body
}

/// DELETE of a resource whose delete Azure runs as a long-running operation (APIs, users): the
/// spec's answers are 202 (accepted, poll) and 204 (done); the emulator is done at once, so it
/// is always 204, whether or not there was something to delete.
pub fn deleted_long_running() -> ArmResponse {
    ArmResponse::new(StatusCode::NO_CONTENT, None, None)
}

/// 200 when something was deleted, 204 when there was nothing to delete.
pub fn deleted(existed: bool) -> ArmResponse {
    ArmResponse::new(if existed { StatusCode::OK } else { StatusCode::NO_CONTENT }, None, None)
}

/// Inserts or replaces entity `name` with `props` and a fresh ETag. Returns (created, key).
/// The stored name keeps the case of the first creation.
pub fn upsert(table: &mut Table, seq: &mut EtagSeq, name: &str, props: Props) -> (bool, String) {
    let k = key(name);
    let etag = seq.issue();
    match table.get_mut(&k) {
        Some(e) => {
            e.properties = props;
            e.etag = etag;
            (false, k)
        }
        None => {
            table.insert(k.clone(), Entity { name: name.to_string(), etag, properties: props });
            (true, k)
        }
    }
}

/// Inserts or replaces an optional single entity (policies). Returns whether it was created.
pub fn upsert_single(slot: &mut Option<Entity>, seq: &mut EtagSeq, name: &str, props: Props) -> bool {
    let etag = seq.issue();
    match slot {
        Some(e) => {
            e.properties = props;
            e.etag = etag;
            false
        }
        None => {
            *slot = Some(Entity { name: name.to_string(), etag, properties: props });
            true
        }
    }
}

/// A string property of a request body that must be present and 1..=`max` characters.
pub fn required_string(
    props: &Props,
    field: &str,
    max: usize,
    errors: &mut Vec<crate::validate::FieldError>,
) -> Option<String> {
    match props.get(field) {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= max => Some(s.clone()),
        Some(Value::String(_)) => {
            errors.push(fe(field, format!("'{field}' must be 1 to {max} characters long.")));
            None
        }
        None | Some(Value::Null) => {
            errors.push(fe(field, format!("'{field}' is required.")));
            None
        }
        Some(v) => {
            errors.push(fe(field, format!("'{field}' must be a string; it is {v}.")));
            None
        }
    }
}

/// An optional string property of at most `max` characters.
pub fn optional_string(props: &Props, field: &str, max: usize, errors: &mut Vec<crate::validate::FieldError>) {
    match props.get(field) {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.chars().count() <= max => {}
        Some(Value::String(_)) => errors.push(fe(field, format!("'{field}' must be at most {max} characters long."))),
        Some(v) => errors.push(fe(field, format!("'{field}' must be a string; it is {v}."))),
    }
}

/// An optional boolean property.
pub fn optional_bool(props: &Props, field: &str, errors: &mut Vec<crate::validate::FieldError>) {
    if let Some(v) = props.get(field)
        && !v.is_null()
        && !v.is_boolean()
    {
        errors.push(fe(field, format!("'{field}' must be true or false; it is {v}.")));
    }
}

/// An optional enum property (case-insensitive); returns the canonical spelling if valid.
pub fn optional_enum(
    props: &Props,
    field: &str,
    allowed: &[&str],
    errors: &mut Vec<crate::validate::FieldError>,
) -> Option<String> {
    match props.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match allowed.iter().find(|a| a.eq_ignore_ascii_case(s)) {
            Some(a) => Some(a.to_string()),
            None => {
                errors.push(fe(field, format!("'{field}' must be one of {}; it is '{s}'.", allowed.join(", "))));
                None
            }
        },
        Some(v) => {
            errors.push(fe(field, format!("'{field}' must be one of {}; it is {v}.", allowed.join(", "))));
            None
        }
    }
}

/// A `FieldError`.
pub fn fe(target: &str, message: impl Into<String>) -> crate::validate::FieldError {
    crate::validate::FieldError { target: target.into(), message: message.into() }
}

/// `Err(ValidationError)` if `errors` is not empty.
pub fn finish(errors: Vec<crate::validate::FieldError>) -> Result<(), ArmError> {
    if errors.is_empty() { Ok(()) } else { Err(ArmError::validation(errors)) }
}

/// Resolves a reference given relative (`/products/x`) or as a full id under `service_id`;
/// returns the path after the service id (`/products/x`), or `None` for a foreign id.
pub fn relative_to_service<'a>(service_id: &str, reference: &'a str) -> Option<&'a str> {
    if reference.len() >= service_id.len() && reference[..service_id.len()].eq_ignore_ascii_case(service_id) {
        Some(&reference[service_id.len()..])
    } else if reference.starts_with("/subscriptions/") {
        None
    } else {
        Some(reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_replaces_top_level_properties_and_null_removes() {
        let a = json!({"a": 1, "b": {"x": 1}, "c": 3}).as_object().unwrap().clone();
        let p = json!({"b": {"y": 2}, "c": null, "d": 4}).as_object().unwrap().clone();
        assert_eq!(Value::Object(merge(&a, &p)), json!({"a": 1, "b": {"y": 2}, "d": 4}));
    }

    #[test]
    fn names_follow_apim_rules() {
        assert!(check_name("growth-team_1.a", 256, "subscription id").is_ok());
        assert!(check_name("", 256, "x").is_err());
        assert!(check_name("a:b", 256, "x").is_err());
        assert!(check_name(&"a".repeat(81), 80, "x").is_err());
    }
}
