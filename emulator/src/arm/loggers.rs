//! Loggers (Application Insights, Event Hub, Azure Monitor).
//!
//! `loggerType` required (`applicationInsights`, `azureEventHub`, `azureMonitor`);
//! `applicationInsights` and `azureEventHub` need `credentials`; `isBuffered` defaults to true;
//! `description` ≤ 256. Like APIM, a raw credential (`instrumentationKey`, `connectionString`)
//! is moved into a new secret named value `Logger-Credentials--{hex}` and the logger stores and
//! returns the `{{Logger-Credentials--{hex}}}` reference instead, so secrets never come back.
//! Deleting a logger a diagnostic uses is refused with 409 `Conflict` (emulator choice).
//! `$filter`: `name`, `description`, `loggerType`, `resourceId`.

use axum::http::Method;
use serde_json::{Value, json};

use super::crud::{self, fe};
use super::envelope::{ArmError, ArmResponse};
use super::filter::{FieldSpec, FieldValue, Ops, f};
use super::{Ctx, method_not_allowed, paging};
use crate::store::{Entity, EtagSeq, Props, Service, key};

pub const TYPE: &str = "Microsoft.ApiManagement/service/loggers";
const LABEL: &str = "Logger";
const FIELDS: &[FieldSpec] =
    &[f("name", Ops::All), f("description", Ops::All), f("loggerType", Ops::All), f("resourceId", Ops::All)];

/// The logger contract.
/// The logger contract; `resourceId` and `description` are `null` when unset, as Azure renders
/// them (Azure may infer `resourceId` from an instrumentation key; the emulator cannot).
pub fn render(svc: &Service, e: &Entity) -> Value {
    let mut props = e.properties.clone();
    for k in ["resourceId", "description"] {
        props.entry(k).or_insert(Value::Null);
    }
    crud::resource(format!("{}/loggers/{}", svc.id(), e.name), TYPE, &e.name, Value::Object(props))
}

fn field(e: &Entity, name: &str) -> FieldValue {
    match name {
        "name" => FieldValue::Str(e.name.clone()),
        other => e.str(other).map(|s| FieldValue::Str(s.to_string())).unwrap_or(FieldValue::Null),
    }
}

fn validate(input: &Props) -> Result<Props, ArmError> {
    let mut errors = Vec::new();
    let t = crud::optional_enum(
        input,
        "loggerType",
        &["applicationInsights", "azureEventHub", "azureMonitor"],
        &mut errors,
    );
    if input.get("loggerType").is_none_or(Value::is_null) {
        errors.push(fe("loggerType", "'loggerType' is required: applicationInsights, azureEventHub or azureMonitor."));
    }
    crud::optional_string(input, "description", 256, &mut errors);
    crud::optional_bool(input, "isBuffered", &mut errors);
    let creds = input.get("credentials").filter(|v| !v.is_null());
    match (t.as_deref(), creds) {
        (Some("applicationInsights"), c) => {
            let ok = c.is_some_and(|c| c.get("instrumentationKey").is_some() || c.get("connectionString").is_some());
            if !ok {
                errors.push(fe("credentials", "An applicationInsights logger needs 'credentials.instrumentationKey' or 'credentials.connectionString'."));
            }
        }
        (Some("azureEventHub"), None) => errors.push(fe(
            "credentials",
            "An azureEventHub logger needs 'credentials' (name and connectionString, or identityClientId).",
        )),
        _ => {}
    }
    crud::finish(errors)?;
    let mut p = input.clone();
    p.insert("loggerType".into(), json!(t));
    p.entry("isBuffered").or_insert(json!(true));
    Ok(p)
}

/// Moves raw credentials into secret named values, as APIM does.
fn protect_credentials(svc: &mut Service, seq: &mut EtagSeq, props: &mut Props) {
    let Some(Value::Object(creds)) = props.get_mut("credentials") else {
        return;
    };
    for k in ["instrumentationKey", "connectionString"] {
        let Some(Value::String(v)) = creds.get(k) else {
            continue;
        };
        if v.starts_with("{{") && v.ends_with("}}") {
            continue;
        }
        let nv = format!("Logger-Credentials--{}", &crate::util::random_key()[..24]);
        let nv_props =
            json!({"displayName": nv, "value": v, "secret": true, "tags": []}).as_object().cloned().unwrap_or_default();
        crud::upsert(&mut svc.named_values, seq, &nv, nv_props);
        creds.insert(k.into(), json!(format!("{{{{{nv}}}}}")));
    }
}

/// Diagnostics (service or API scope) that use logger `name`.
fn users_of(svc: &Service, name: &str) -> Vec<String> {
    let id = format!("{}/loggers/{}", svc.id(), name).to_ascii_lowercase();
    let uses = |d: &Entity| d.str("loggerId").is_some_and(|l| l.to_ascii_lowercase() == id);
    let mut out: Vec<String> =
        svc.diagnostics.values().filter(|d| uses(d)).map(|d| format!("diagnostics/{}", d.name)).collect();
    for a in svc.apis.values() {
        out.extend(
            a.diagnostics
                .values()
                .filter(|d| uses(d))
                .map(|d| format!("apis/{}/diagnostics/{}", a.entity.name, d.name)),
        );
    }
    out
}

/// `loggers`
pub fn collection(ctx: &Ctx) -> Result<ArmResponse, ArmError> {
    if ctx.req.method != Method::GET {
        return Err(method_not_allowed(ctx.req));
    }
    ctx.read(|svc| paging::list(ctx.req, svc.loggers.values(), FIELDS, field, |e| render(svc, e)))
}

/// `loggers/{l}`
pub fn item(ctx: &Ctx, name: &str) -> Result<ArmResponse, ArmError> {
    let req = ctx.req;
    match req.method {
        Method::GET | Method::HEAD => ctx.read(|svc| {
            let e = svc.loggers.get(&key(name)).ok_or_else(|| ArmError::not_found(LABEL))?;
            Ok(crud::read_response(req, render(svc, e), &e.etag))
        }),
        Method::PUT | Method::PATCH => {
            let patch = req.method == Method::PATCH;
            let m = if patch { Some(crud::require_if_match(req)?) } else { None };
            crud::check_name(name, 256, "logger id")?;
            let input = crud::body_properties(req)?;
            ctx.write(|svc, seq| {
                let existing = svc.loggers.get(&key(name));
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
                let mut props = validate(&merged)?;
                protect_credentials(svc, seq, &mut props);
                let (created, k) = crud::upsert(&mut svc.loggers, seq, name, props);
                let e = &svc.loggers[&k];
                if patch {
                    Ok(crud::read_response(req, render(svc, e), &e.etag))
                } else {
                    Ok(crud::written(created, render(svc, e), &e.etag))
                }
            })
        }
        Method::DELETE => {
            let m = crud::require_if_match(req)?;
            ctx.write(|svc, seq| {
                let Some(e) = svc.loggers.get(&key(name)) else {
                    return Ok(crud::deleted(false));
                };
                crud::check_match(&m, &e.etag, LABEL, name)?;
                let users = users_of(svc, &e.name);
                if !users.is_empty() {
                    return Err(ArmError::conflict(format!(
                        "Logger '{name}' is used by {}; delete or repoint those diagnostics first.",
                        users.join(", ")
                    )));
                }
                svc.loggers.remove(&key(name));
                seq.bump();
                Ok(crud::deleted(true))
            })
        }
        _ => Err(method_not_allowed(req)),
    }
}
