//! Diagnostics at service scope (`diagnostics/{id}`) and API scope (`apis/{a}/diagnostics/{id}`).
//!
//! Ids are APIM's: `applicationinsights` or `azuremonitor`. `loggerId` is required, must name an
//! existing logger (relative `/loggers/x` or full id) and is stored and returned as a full id.
//! Checked: `verbosity` (`error|information|verbose`), `alwaysLog` (`allErrors`),
//! `httpCorrelationProtocol` (`None|Legacy|W3C`), `operationNameFormat` (`Name|Url`),
//! `sampling.percentage` 0–100, `logClientIp`/`metrics` booleans. Other blocks (`frontend`,
//! `backend`, the preview `largeLanguageModel`) are stored as given. Unset, `logClientIp` renders
//! `false`, `sampling` fixed 100 %, and an `applicationinsights` diagnostic's
//! `httpCorrelationProtocol` `Legacy`, as Azure does. `$filter`: `name`.

use axum::http::Method;
use serde_json::{Value, json};

use super::crud::{self, fe};
use super::envelope::{ArmError, ArmResponse};
use super::filter::{FieldSpec, FieldValue, Ops, f};
use super::{Ctx, apis, method_not_allowed, paging};
use crate::store::{Entity, Props, Service, Table, key};

const LABEL: &str = "Diagnostic";
const FIELDS: &[FieldSpec] = &[f("name", Ops::All)];
const IDS: &[&str] = &["applicationinsights", "azuremonitor"];

fn type_name(api: Option<&str>) -> &'static str {
    if api.is_some() {
        "Microsoft.ApiManagement/service/apis/diagnostics"
    } else {
        "Microsoft.ApiManagement/service/diagnostics"
    }
}

fn render(svc: &Service, api: Option<&str>, e: &Entity) -> Value {
    let base = match api {
        Some(a) => format!("{}/apis/{a}/diagnostics", svc.id()),
        None => format!("{}/diagnostics", svc.id()),
    };
    let mut props = e.properties.clone();
    // Azure renders its defaults for what was never set: client IPs not logged (the documented
    // default), fixed 100 % sampling, and for Application Insights the `Legacy` correlation
    // protocol (ApiManagementListDiagnostics.json, ApiManagementUpdateDiagnostic.json).
    props.entry("logClientIp").or_insert(json!(false));
    props.entry("sampling").or_insert(json!({"samplingType": "fixed", "percentage": 100}));
    if e.name.eq_ignore_ascii_case("applicationinsights") {
        props.entry("httpCorrelationProtocol").or_insert(json!("Legacy"));
    }
    crud::resource(format!("{base}/{}", e.name), type_name(api), &e.name, Value::Object(props))
}

fn table<'a>(svc: &'a Service, api: Option<&str>) -> Result<(&'a Table, Option<String>), ArmError> {
    match api {
        None => Ok((&svc.diagnostics, None)),
        Some(a) => {
            let x = apis::api(svc, a)?;
            Ok((&x.diagnostics, Some(x.entity.name.clone())))
        }
    }
}

fn table_mut<'a>(svc: &'a mut Service, api: Option<&str>) -> Result<&'a mut Table, ArmError> {
    match api {
        None => Ok(&mut svc.diagnostics),
        Some(a) => {
            let k = key(&apis::api(svc, a)?.entity.name);
            Ok(&mut svc.apis.get_mut(&k).expect("exists").diagnostics)
        }
    }
}

fn validate(svc: &Service, input: &Props) -> Result<Props, ArmError> {
    let mut errors = Vec::new();
    let logger = match input.get("loggerId").and_then(Value::as_str) {
        None => {
            errors.push(fe("loggerId", "'loggerId' is required."));
            None
        }
        Some(l) => {
            let sid = svc.id();
            let name = crud::relative_to_service(&sid, l).and_then(|rel| {
                let parts: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
                match parts.as_slice() {
                    [c, n] if c.eq_ignore_ascii_case("loggers") => svc.loggers.get(&key(n)).map(|e| e.name.clone()),
                    _ => None,
                }
            });
            match name {
                Some(n) => Some(format!("{sid}/loggers/{n}")),
                None => {
                    errors.push(fe("loggerId", format!("Logger '{l}' does not exist in this service.")));
                    None
                }
            }
        }
    };
    crud::optional_enum(input, "verbosity", &["error", "information", "verbose"], &mut errors);
    crud::optional_enum(input, "alwaysLog", &["allErrors"], &mut errors);
    crud::optional_enum(input, "httpCorrelationProtocol", &["None", "Legacy", "W3C"], &mut errors);
    crud::optional_enum(input, "operationNameFormat", &["Name", "Url"], &mut errors);
    crud::optional_bool(input, "logClientIp", &mut errors);
    crud::optional_bool(input, "metrics", &mut errors);
    if let Some(s) = input.get("sampling").filter(|v| !v.is_null()) {
        if let Some(t) = s.get("samplingType")
            && t != "fixed"
        {
            errors.push(fe("sampling.samplingType", format!("'sampling.samplingType' must be 'fixed'; it is {t}.")));
        }
        if let Some(p) = s.get("percentage")
            && !p.as_f64().is_some_and(|p| (0.0..=100.0).contains(&p))
        {
            errors.push(fe("sampling.percentage", format!("'sampling.percentage' must be from 0 to 100; it is {p}.")));
        }
    }
    crud::finish(errors)?;
    let mut p = input.clone();
    p.insert("loggerId".into(), json!(logger));
    Ok(p)
}

/// `diagnostics` / `apis/{a}/diagnostics`
pub fn collection(ctx: &Ctx, api: Option<&str>) -> Result<ArmResponse, ArmError> {
    if ctx.req.method != Method::GET {
        return Err(method_not_allowed(ctx.req));
    }
    ctx.read(|svc| {
        let (t, a) = table(svc, api)?;
        paging::list(
            ctx.req,
            t.values(),
            FIELDS,
            |e: &Entity, _| FieldValue::Str(e.name.clone()),
            |e| render(svc, a.as_deref(), e),
        )
    })
}

/// `diagnostics/{d}` / `apis/{a}/diagnostics/{d}`
pub fn item(ctx: &Ctx, api: Option<&str>, name: &str) -> Result<ArmResponse, ArmError> {
    let req = ctx.req;
    match req.method {
        Method::GET | Method::HEAD => ctx.read(|svc| {
            let (t, a) = table(svc, api)?;
            let e = t.get(&key(name)).ok_or_else(|| ArmError::not_found(LABEL))?;
            Ok(crud::read_response(req, render(svc, a.as_deref(), e), &e.etag))
        }),
        Method::PUT | Method::PATCH => {
            let patch = req.method == Method::PATCH;
            let m = if patch { Some(crud::require_if_match(req)?) } else { None };
            if !IDS.iter().any(|i| i.eq_ignore_ascii_case(name)) {
                return Err(ArmError::field(
                    "diagnosticId",
                    format!("Diagnostic id '{name}' is not supported; use 'applicationinsights' or 'azuremonitor'."),
                ));
            }
            let input = crud::body_properties(req)?;
            ctx.write(|svc, seq| {
                let (t, a) = table(svc, api)?;
                let existing = t.get(&key(name));
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
                let props = validate(svc, &merged)?;
                let (created, k) = crud::upsert(table_mut(svc, api)?, seq, &name.to_ascii_lowercase(), props);
                let (t, _) = table(svc, api)?;
                let e = &t[&k];
                let body = render(svc, a.as_deref(), e);
                Ok(if patch { crud::read_response(req, body, &e.etag) } else { crud::written(created, body, &e.etag) })
            })
        }
        Method::DELETE => {
            let m = crud::require_if_match(req)?;
            ctx.write(|svc, seq| {
                let (t, _) = table(svc, api)?;
                let Some(e) = t.get(&key(name)) else {
                    return Ok(crud::deleted(false));
                };
                crud::check_match(&m, &e.etag, LABEL, name)?;
                table_mut(svc, api)?.remove(&key(name));
                seq.bump();
                Ok(crud::deleted(true))
            })
        }
        _ => Err(method_not_allowed(req)),
    }
}
