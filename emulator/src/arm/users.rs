//! Users: the owners subscriptions point at (`ownerId`).
//!
//! `firstName`, `lastName` (1–100) and `email` (1–254) required; `state` `active|blocked|pending|
//! deleted` (default `active`); `registrationDate` set on create; `identities` default to a
//! `Basic` identity with the email; `password` and `confirmation` are write-only (never stored
//! or echoed); `groups` is always `[]` (groups are not emulated). DELETE answers 204 (Azure:
//! 202 then 204). The built-in user `1` (Administrator) cannot be deleted.
//! DELETE refuses a user who still owns subscriptions unless `deleteSubscriptions=true` (409,
//! emulator choice). `$filter`: `name`, `firstName`, `lastName`, `email` (all), `state` (`eq`).

use axum::http::Method;
use serde_json::{Value, json};

use super::crud;
use super::envelope::{ArmError, ArmResponse};
use super::filter::{FieldSpec, FieldValue, Ops, f};
use super::{Ctx, method_not_allowed, paging};
use crate::store::{Entity, Props, Service, key};

pub const TYPE: &str = "Microsoft.ApiManagement/service/users";
const LABEL: &str = "User";
const FIELDS: &[FieldSpec] = &[
    f("name", Ops::All),
    f("firstName", Ops::All),
    f("lastName", Ops::All),
    f("email", Ops::All),
    f("state", Ops::Eq),
];

/// The user contract. Groups are not emulated, so `groups` is always `[]`.
fn render(svc: &Service, e: &Entity) -> Value {
    let mut props = e.properties.clone();
    props.insert("groups".into(), json!([]));
    crud::resource(format!("{}/users/{}", svc.id(), e.name), TYPE, &e.name, Value::Object(props))
}

fn field(e: &Entity, name: &str) -> FieldValue {
    match name {
        "name" => FieldValue::Str(e.name.clone()),
        other => e.str(other).map(|s| FieldValue::Str(s.to_string())).unwrap_or(FieldValue::Null),
    }
}

fn validate(input: &Props, existing: Option<&Entity>) -> Result<Props, ArmError> {
    let mut errors = Vec::new();
    crud::required_string(input, "firstName", 100, &mut errors);
    crud::required_string(input, "lastName", 100, &mut errors);
    let email = crud::required_string(input, "email", 254, &mut errors);
    let state = crud::optional_enum(input, "state", &["active", "blocked", "pending", "deleted"], &mut errors);
    crud::finish(errors)?;
    let mut p = input.clone();
    p.insert("state".into(), json!(state.unwrap_or_else(|| "active".into())));
    // Write-only inputs: never stored, never echoed.
    for k in ["password", "confirmation", "groups"] {
        p.remove(k);
    }
    p.insert(
        "registrationDate".into(),
        existing
            .and_then(|e| e.properties.get("registrationDate").cloned())
            .unwrap_or_else(|| json!(crate::util::now_rfc3339())),
    );
    p.entry("note").or_insert(Value::Null);
    p.entry("identities").or_insert(json!([{"provider": "Basic", "id": email}]));
    Ok(p)
}

/// `users`
pub fn collection(ctx: &Ctx) -> Result<ArmResponse, ArmError> {
    if ctx.req.method != Method::GET {
        return Err(method_not_allowed(ctx.req));
    }
    ctx.read(|svc| paging::list(ctx.req, svc.users.values(), FIELDS, field, |e| render(svc, e)))
}

/// `users/{u}`
pub fn item(ctx: &Ctx, name: &str) -> Result<ArmResponse, ArmError> {
    let req = ctx.req;
    match req.method {
        Method::GET | Method::HEAD => ctx.read(|svc| {
            let e = svc.users.get(&key(name)).ok_or_else(|| ArmError::not_found(LABEL))?;
            Ok(crud::read_response(req, render(svc, e), &e.etag))
        }),
        Method::PUT | Method::PATCH => {
            let patch = req.method == Method::PATCH;
            let m = if patch { Some(crud::require_if_match(req)?) } else { None };
            crud::check_name(name, 80, "user id")?;
            let input = crud::body_properties(req)?;
            ctx.write(|svc, seq| {
                let existing = svc.users.get(&key(name));
                let merged = match (&m, existing) {
                    (Some(m), Some(e)) => {
                        crud::check_match(m, &e.etag, LABEL, name)?;
                        crud::merge(&e.properties, &input)
                    }
                    (Some(_), None) => return Err(ArmError::not_found(LABEL)),
                    (None, e) => {
                        crud::check_put(req, e.map(|e| e.etag.as_str()), LABEL, name)?;
                        input.clone()
                    }
                };
                let props = validate(&merged, existing)?;
                let (created, k) = crud::upsert(&mut svc.users, seq, name, props);
                let e = &svc.users[&k];
                Ok(if patch {
                    crud::read_response(req, render(svc, e), &e.etag)
                } else {
                    crud::written(created, render(svc, e), &e.etag)
                })
            })
        }
        Method::DELETE => {
            let m = crud::require_if_match(req)?;
            let delete_subs = req.query("deleteSubscriptions").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            ctx.write(|svc, seq| {
                let Some(e) = svc.users.get(&key(name)) else { return Ok(crud::deleted_long_running()) };
                crud::check_match(&m, &e.etag, LABEL, name)?;
                if e.name == "1" {
                    return Err(ArmError::field("userId", "The built-in administrator (user '1') cannot be deleted."));
                }
                let owner = format!("{}/users/{}", svc.id(), e.name).to_ascii_lowercase();
                let owned: Vec<String> = svc
                    .subscriptions
                    .iter()
                    .filter(|(_, s)| s.str("ownerId").is_some_and(|o| o.to_ascii_lowercase() == owner))
                    .map(|(k, _)| k.clone())
                    .collect();
                if !owned.is_empty() && !delete_subs {
                    return Err(ArmError::conflict(format!(
                        "User '{name}' owns {} subscription(s). Delete them first, or pass deleteSubscriptions=true.",
                        owned.len()
                    )));
                }
                for k in owned {
                    svc.subscriptions.remove(&k);
                }
                svc.users.remove(&key(name));
                seq.bump();
                Ok(crud::deleted_long_running())
            })
        }
        _ => Err(method_not_allowed(req)),
    }
}
