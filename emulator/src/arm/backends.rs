//! Backends: `Single` and `Pool`, with circuit-breaker rules.
//!
//! Validation is `validate::backend` (pool members exist and are not pools, priority/weight
//! 0–100, ≤ 30 members, ISO-8601 durations, status ranges 200–599). Pool member ids are stored
//! and returned as full ARM ids. A pool renders `url`, `protocol` and `title` as `null` when
//! unset, as Azure does. Deleting a backend that a pool still lists is refused with 409
//! `Conflict` (emulator choice; Azure's answer is undocumented). `POST .../reconnect` answers
//! 202. `$filter`: `name`, `title`, `url`.

use axum::http::{Method, StatusCode};
use serde_json::Value;

use super::crud;
use super::envelope::{ArmError, ArmResponse};
use super::filter::{FieldSpec, FieldValue, Ops, f};
use super::{Ctx, method_not_allowed, paging};
use crate::store::{Entity, Service, key};
use crate::validate::backend::{member_name, validate};

pub const TYPE: &str = "Microsoft.ApiManagement/service/backends";
const LABEL: &str = "Backend";
const FIELDS: &[FieldSpec] = &[f("name", Ops::All), f("title", Ops::All), f("url", Ops::All)];

/// The backend contract.
pub fn render(svc: &Service, e: &Entity) -> Value {
    let mut props = e.properties.clone();
    if e.str("type") == Some("Pool") {
        for k in ["url", "protocol", "title"] {
            props.entry(k).or_insert(Value::Null);
        }
    }
    crud::resource(format!("{}/backends/{}", svc.id(), e.name), TYPE, &e.name, Value::Object(props))
}

fn field(e: &Entity, name: &str) -> FieldValue {
    match name {
        "name" => FieldValue::Str(e.name.clone()),
        other => e.str(other).map(|s| FieldValue::Str(s.to_string())).unwrap_or(FieldValue::Null),
    }
}

/// Pools that list backend `name`.
fn pools_containing(svc: &Service, name: &str) -> Vec<String> {
    svc.backends
        .values()
        .filter(|b| {
            b.properties.get("pool").and_then(|p| p.get("services")).and_then(Value::as_array).is_some_and(|m| {
                m.iter().any(|m| {
                    m.get("id")
                        .and_then(Value::as_str)
                        .and_then(|id| member_name(svc, id))
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
            })
        })
        .map(|b| b.name.clone())
        .collect()
}

/// `backends`
pub fn collection(ctx: &Ctx) -> Result<ArmResponse, ArmError> {
    if ctx.req.method != Method::GET {
        return Err(method_not_allowed(ctx.req));
    }
    ctx.read(|svc| paging::list(ctx.req, svc.backends.values(), FIELDS, field, |e| render(svc, e)))
}

/// `backends/{b}`
pub fn item(ctx: &Ctx, name: &str) -> Result<ArmResponse, ArmError> {
    let req = ctx.req;
    match req.method {
        Method::GET | Method::HEAD => ctx.read(|svc| {
            let e = svc.backends.get(&key(name)).ok_or_else(|| ArmError::not_found(LABEL))?;
            Ok(crud::read_response(req, render(svc, e), &e.etag))
        }),
        Method::PUT => {
            crud::check_name(name, 80, "backend id")?;
            let input = crud::body_properties(req)?;
            ctx.write(|svc, seq| {
                let existing = svc.backends.get(&key(name));
                crud::check_put(req, existing.map(|e| e.etag.as_str()), LABEL, name)?;
                let props = validate(svc, name, &input).map_err(ArmError::validation)?;
                if props.get("type").and_then(Value::as_str) == Some("Pool") {
                    let pools = pools_containing(svc, name);
                    if !pools.is_empty() {
                        return Err(ArmError::field(
                            "type",
                            format!(
                                "Backend '{name}' is a member of pool '{}' and cannot become a pool.",
                                pools.join("', '")
                            ),
                        ));
                    }
                }
                let (created, k) = crud::upsert(&mut svc.backends, seq, name, props);
                let e = &svc.backends[&k];
                Ok(crud::written(created, render(svc, e), &e.etag))
            })
        }
        Method::PATCH => {
            let m = crud::require_if_match(req)?;
            let input = crud::body_properties(req)?;
            ctx.write(|svc, seq| {
                let e = svc.backends.get(&key(name)).ok_or_else(|| ArmError::not_found(LABEL))?;
                crud::check_match(&m, &e.etag, LABEL, name)?;
                let props =
                    validate(svc, &e.name, &crud::merge(&e.properties, &input)).map_err(ArmError::validation)?;
                let (_, k) = crud::upsert(&mut svc.backends, seq, name, props);
                let e = &svc.backends[&k];
                Ok(crud::read_response(req, render(svc, e), &e.etag))
            })
        }
        Method::DELETE => {
            let m = crud::require_if_match(req)?;
            ctx.write(|svc, seq| {
                let Some(e) = svc.backends.get(&key(name)) else {
                    return Ok(crud::deleted(false));
                };
                crud::check_match(&m, &e.etag, LABEL, name)?;
                let pools = pools_containing(svc, name);
                if !pools.is_empty() {
                    return Err(ArmError::conflict(format!(
                        "Backend '{name}' is a member of pool '{}'. Remove it from the pool first.",
                        pools.join("', '")
                    )));
                }
                svc.backends.remove(&key(name));
                seq.bump();
                Ok(crud::deleted(true))
            })
        }
        _ => Err(method_not_allowed(req)),
    }
}

/// `POST backends/{b}/reconnect` → 202.
pub fn reconnect(ctx: &Ctx, name: &str) -> Result<ArmResponse, ArmError> {
    ctx.read(|svc| {
        svc.backends.get(&key(name)).ok_or_else(|| ArmError::not_found(LABEL))?;
        Ok(ArmResponse::new(StatusCode::ACCEPTED, None, None))
    })
}
