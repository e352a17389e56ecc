//! APIs and their operations.
//!
//! APIs: `displayName` (1–300) and `path` (0–400, unique across the service's APIs) required;
//! defaults `protocols: ["https"]`, `subscriptionRequired: true`,
//! `subscriptionKeyParameterNames: {header: "Ocp-Apim-Subscription-Key", query:
//! "subscription-key"}`, `type: "http"`, `apiRevision: "1"`, `isCurrent: true`. Azure runs API
//! PUT as a long-running operation; the emulator completes it synchronously (201/200 with
//! `provisioningState: "Succeeded"`). Responses carry `isOnline: true` and
//! `authenticationSettings` (`null` when unset). DELETE answers 204 (Azure: 202 then 204; the
//! emulator is done at once).
//! Importing a definition (`format` + `value`) is not emulated and is refused with a clear 400.
//! An id with `;rev=N` addresses the API when N is its current revision; any other revision of
//! an existing API is answered 400 "… is not emulated" (a missing API is still 404). `$filter`: `name`, `displayName`, `description`, `serviceUrl`, `path`
//! (all operators), `isCurrent` (`eq`, `ne`). Deleting an API deletes its operations, policies,
//! diagnostics, product links and the subscriptions scoped to it.
//!
//! Operations: `displayName` (1–300), `method` and `urlTemplate` (1–1000) required.
//! `$filter`: `name`, `displayName`, `method`, `urlTemplate`, `description`.

use axum::http::Method;
use serde_json::{Value, json};

use super::crud::{self, fe};
use super::envelope::{ArmError, ArmResponse};
use super::filter::{FieldSpec, FieldValue, Ops, f};
use super::{Ctx, method_not_allowed, paging};
use crate::store::{Api, Entity, Operation, Props, Service, Table, key};

pub const TYPE: &str = "Microsoft.ApiManagement/service/apis";
const OP_TYPE: &str = "Microsoft.ApiManagement/service/apis/operations";

pub const FIELDS: &[FieldSpec] = &[
    f("name", Ops::All),
    f("displayName", Ops::All),
    f("description", Ops::All),
    f("serviceUrl", Ops::All),
    f("path", Ops::All),
    f("isCurrent", Ops::EqNe),
];
const OP_FIELDS: &[FieldSpec] = &[
    f("name", Ops::All),
    f("displayName", Ops::All),
    f("method", Ops::All),
    f("urlTemplate", Ops::All),
    f("description", Ops::All),
];
const HTTP_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"];

/// The API contract. `isOnline` is always true (every emulated API is served by the gateway);
/// `authenticationSettings` is `null` when unset, as Azure renders it.
pub fn render(svc: &Service, e: &Entity) -> Value {
    let mut props = e.properties.clone();
    props.entry("authenticationSettings").or_insert(Value::Null);
    props.insert("isOnline".into(), json!(true));
    crud::resource(format!("{}/apis/{}", svc.id(), e.name), TYPE, &e.name, Value::Object(props))
}

/// Azure keeps each of `oAuth2`/`openid` and its list form (`oAuth2AuthenticationSettings`,
/// `openidAuthenticationSettings`) in step: the single setting is the list's first item.
fn normalize_authentication(p: &mut Props) {
    let Some(Value::Object(auth)) = p.get_mut("authenticationSettings") else { return };
    for (single, list) in [("oAuth2", "oAuth2AuthenticationSettings"), ("openid", "openidAuthenticationSettings")] {
        let one = auth.get(single).filter(|v| v.is_object()).cloned();
        let many = auth.get(list).and_then(Value::as_array).filter(|a| !a.is_empty()).cloned();
        match (one, many) {
            (Some(one), None) => {
                auth.insert(list.into(), json!([one]));
            }
            (None, Some(many)) => {
                auth.insert(single.into(), many[0].clone());
            }
            _ => {}
        }
    }
}

/// Filter values of an API.
pub fn field(e: &Entity, name: &str) -> FieldValue {
    match name {
        "name" => FieldValue::Str(e.name.clone()),
        "isCurrent" => FieldValue::Bool(e.bool("isCurrent").unwrap_or(true)),
        other => e.str(other).map(|s| FieldValue::Str(s.to_string())).unwrap_or(FieldValue::Null),
    }
}

fn render_op(svc: &Service, api: &Entity, op: &Entity) -> Value {
    crud::resource(
        format!("{}/apis/{}/operations/{}", svc.id(), api.name, op.name),
        OP_TYPE,
        &op.name,
        Value::Object(op.properties.clone()),
    )
}

/// Strips `;rev=N` and checks N is the current revision. Returns the bare id.
pub fn api_id<'a>(svc: &Service, a: &'a str) -> Result<&'a str, ArmError> {
    match a.split_once(";rev=") {
        None => Ok(a),
        Some((bare, rev)) => {
            let Some(x) = svc.apis.get(&key(bare)) else { return Err(ArmError::not_found("Api")) };
            let current = x.entity.str("apiRevision").unwrap_or("1");
            if current == rev {
                Ok(bare)
            } else {
                Err(ArmError::not_emulated(
                    "apiId",
                    &format!("API revision '{rev}' of '{}' (API revisions other than the current one)", x.entity.name),
                    &format!("address the API as '{}' or '{};rev={current}'.", x.entity.name, x.entity.name),
                ))
            }
        }
    }
}

/// The API `a` (with optional `;rev=`), or 404.
pub fn api<'a>(svc: &'a Service, a: &str) -> Result<&'a Api, ArmError> {
    let bare = api_id(svc, a)?;
    svc.apis.get(&key(bare)).ok_or_else(|| ArmError::not_found("Api"))
}

fn validate_api(svc: &Service, name: &str, input: &Props, existing: Option<&Entity>) -> Result<Props, ArmError> {
    let mut errors = Vec::new();
    if input.contains_key("format") || input.contains_key("value") {
        return Err(ArmError::validation(vec![fe(
            "format",
            "Importing an API definition ('format'/'value') is not supported by the emulator; create the API and its operations explicitly.",
        )]));
    }
    crud::required_string(input, "displayName", 300, &mut errors);
    crud::optional_string(input, "description", 100_000, &mut errors);
    match input.get("path") {
        Some(Value::String(p)) if p.len() <= 400 => {
            let clash = svc.apis.values().find(|a| {
                !a.entity.name.eq_ignore_ascii_case(name)
                    && a.entity
                        .str("path")
                        .is_some_and(|x| x.trim_matches('/').eq_ignore_ascii_case(p.trim_matches('/')))
            });
            if let Some(c) = clash {
                errors.push(fe("path", format!("Path '{p}' is already used by API '{}'.", c.entity.name)));
            }
        }
        Some(Value::String(_)) => errors.push(fe("path", "'path' must be at most 400 characters long.")),
        None | Some(Value::Null) => errors.push(fe("path", "'path' is required.")),
        Some(v) => errors.push(fe("path", format!("'path' must be a string; it is {v}."))),
    }
    if let Some(u) = input.get("serviceUrl").filter(|v| !v.is_null()) {
        let ok = u.as_str().is_some_and(|u| {
            (u.starts_with("http://") || u.starts_with("https://") || u.starts_with("ws")) && u.len() <= 2000
        });
        if !ok {
            errors.push(fe(
                "serviceUrl",
                format!("'serviceUrl' must be an absolute URL of at most 2000 characters; it is {u}."),
            ));
        }
    }
    if let Some(p) = input.get("protocols").filter(|v| !v.is_null()) {
        let ok = p.as_array().is_some_and(|a| {
            !a.is_empty() && a.iter().all(|x| x.as_str().is_some_and(|s| ["http", "https", "ws", "wss"].contains(&s)))
        });
        if !ok {
            errors.push(fe("protocols", "'protocols' must be a non-empty array of 'http', 'https', 'ws', 'wss'."));
        }
    }
    crud::optional_bool(input, "subscriptionRequired", &mut errors);
    crud::finish(errors)?;
    let mut p = input.clone();
    p.remove("apiType");
    let keep = |k: &str, default: Value, p: &mut Props| {
        if p.get(k).is_none_or(Value::is_null) {
            p.insert(k.into(), existing.and_then(|e| e.properties.get(k).cloned()).unwrap_or(default));
        }
    };
    keep("apiRevision", json!("1"), &mut p);
    keep("isCurrent", json!(true), &mut p);
    keep("subscriptionRequired", json!(true), &mut p);
    keep("protocols", json!(["https"]), &mut p);
    keep(
        "subscriptionKeyParameterNames",
        json!({"header": "Ocp-Apim-Subscription-Key", "query": "subscription-key"}),
        &mut p,
    );
    let t = input.get("apiType").or_else(|| input.get("type")).cloned().unwrap_or(json!("http"));
    p.insert("type".into(), t);
    p.entry("serviceUrl").or_insert(Value::Null);
    normalize_authentication(&mut p);
    Ok(p)
}

/// `apis`
pub fn collection(ctx: &Ctx) -> Result<ArmResponse, ArmError> {
    if ctx.req.method != Method::GET {
        return Err(method_not_allowed(ctx.req));
    }
    ctx.read(|svc| paging::list(ctx.req, svc.apis.values().map(|a| &a.entity), FIELDS, field, |e| render(svc, e)))
}

/// `apis/{a}`
pub fn item(ctx: &Ctx, a: &str) -> Result<ArmResponse, ArmError> {
    let req = ctx.req;
    match req.method {
        Method::GET | Method::HEAD => ctx.read(|svc| {
            let x = api(svc, a)?;
            Ok(crud::read_response(req, render(svc, &x.entity), &x.entity.etag))
        }),
        Method::PUT => {
            let input = crud::body_properties(req)?;
            ctx.write(|svc, seq| {
                let name = api_id(svc, a)?.to_string();
                crud::check_name(&name, 256, "API id")?;
                let existing = svc.apis.get(&key(&name)).map(|x| &x.entity);
                crud::check_put(req, existing.map(|e| e.etag.as_str()), "Api", &name)?;
                let props = validate_api(svc, &name, &input, existing)?;
                let etag = seq.issue();
                let created = match svc.apis.get_mut(&key(&name)) {
                    Some(x) => {
                        x.entity.properties = props;
                        x.entity.etag = etag;
                        false
                    }
                    None => {
                        let entity = Entity { name: name.clone(), etag, properties: props };
                        svc.apis.insert(
                            key(&name),
                            Api { entity, policy: None, operations: Table::new(), diagnostics: Table::new() },
                        );
                        true
                    }
                };
                let x = &svc.apis[&key(&name)];
                Ok(crud::written(created, crud::finished_operation(render(svc, &x.entity)), &x.entity.etag))
            })
        }
        Method::PATCH => {
            let m = crud::require_if_match(req)?;
            let input = crud::body_properties(req)?;
            ctx.write(|svc, seq| {
                let x = api(svc, a)?;
                let name = x.entity.name.clone();
                crud::check_match(&m, &x.entity.etag, "Api", &name)?;
                let props = validate_api(svc, &name, &crud::merge(&x.entity.properties, &input), Some(&x.entity))?;
                let x = svc.apis.get_mut(&key(&name)).expect("exists");
                x.entity.properties = props;
                x.entity.etag = seq.issue();
                let x = &svc.apis[&key(&name)];
                Ok(crud::read_response(req, render(svc, &x.entity), &x.entity.etag))
            })
        }
        Method::DELETE => {
            let m = crud::require_if_match(req)?;
            ctx.write(|svc, seq| {
                let x = match api(svc, a) {
                    Ok(x) => x,
                    Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => return Ok(crud::deleted_long_running()),
                    Err(e) => return Err(e),
                };
                let name = x.entity.name.clone();
                crud::check_match(&m, &x.entity.etag, "Api", &name)?;
                let api_full = format!("{}/apis/{}", svc.id(), name);
                svc.apis.remove(&key(&name));
                for p in svc.products.values_mut() {
                    p.api_links.retain(|_, l| !l.str("apiId").is_some_and(|id| id.eq_ignore_ascii_case(&api_full)));
                }
                svc.subscriptions.retain(|_, s| !s.str("scope").is_some_and(|sc| sc.eq_ignore_ascii_case(&api_full)));
                seq.bump();
                Ok(crud::deleted_long_running())
            })
        }
        _ => Err(method_not_allowed(req)),
    }
}

fn validate_op(input: &Props) -> Result<Props, ArmError> {
    let mut errors = Vec::new();
    crud::required_string(input, "displayName", 300, &mut errors);
    let method = match input.get("method").and_then(Value::as_str) {
        Some(m)
            if HTTP_METHODS.iter().any(|x| x.eq_ignore_ascii_case(m))
                || (!m.is_empty() && m.chars().all(|c| c.is_ascii_alphabetic())) =>
        {
            Some(m.to_ascii_uppercase())
        }
        Some(m) => {
            errors.push(fe("method", format!("'method' must be an HTTP method such as GET or POST; it is '{m}'.")));
            None
        }
        None => {
            errors.push(fe("method", "'method' is required."));
            None
        }
    };
    crud::required_string(input, "urlTemplate", 1000, &mut errors);
    crud::optional_string(input, "description", 1000, &mut errors);
    crud::finish(errors)?;
    let mut p = input.clone();
    p.insert("method".into(), json!(method));
    p.entry("templateParameters").or_insert(json!([]));
    p.entry("responses").or_insert(json!([]));
    Ok(p)
}

/// `apis/{a}/operations`
pub fn operations_collection(ctx: &Ctx, a: &str) -> Result<ArmResponse, ArmError> {
    if ctx.req.method != Method::GET {
        return Err(method_not_allowed(ctx.req));
    }
    ctx.read(|svc| {
        let x = api(svc, a)?;
        paging::list(
            ctx.req,
            x.operations.values().map(|o| &o.entity),
            OP_FIELDS,
            |e, n| match n {
                "name" => FieldValue::Str(e.name.clone()),
                other => e.str(other).map(|s| FieldValue::Str(s.to_string())).unwrap_or(FieldValue::Null),
            },
            |e| render_op(svc, &x.entity, e),
        )
    })
}

/// `apis/{a}/operations/{o}`
pub fn operation_item(ctx: &Ctx, a: &str, o: &str) -> Result<ArmResponse, ArmError> {
    let req = ctx.req;
    const LABEL: &str = "Operation";
    match req.method {
        Method::GET | Method::HEAD => ctx.read(|svc| {
            let x = api(svc, a)?;
            let op = x.operations.get(&key(o)).ok_or_else(|| ArmError::not_found(LABEL))?;
            Ok(crud::read_response(req, render_op(svc, &x.entity, &op.entity), &op.entity.etag))
        }),
        Method::PUT => {
            crud::check_name(o, 80, "operation id")?;
            let input = crud::body_properties(req)?;
            let props = validate_op(&input)?;
            ctx.write(|svc, seq| {
                let name = api(svc, a)?.entity.name.clone();
                let x = svc.apis.get_mut(&key(&name)).expect("exists");
                crud::check_put(req, x.operations.get(&key(o)).map(|op| op.entity.etag.as_str()), LABEL, o)?;
                let etag = seq.issue();
                let created = match x.operations.get_mut(&key(o)) {
                    Some(op) => {
                        op.entity.properties = props;
                        op.entity.etag = etag;
                        false
                    }
                    None => {
                        x.operations.insert(
                            key(o),
                            Operation { entity: Entity { name: o.to_string(), etag, properties: props }, policy: None },
                        );
                        true
                    }
                };
                let x = &svc.apis[&key(&name)];
                let op = &x.operations[&key(o)];
                Ok(crud::written(created, render_op(svc, &x.entity, &op.entity), &op.entity.etag))
            })
        }
        Method::PATCH => {
            let m = crud::require_if_match(req)?;
            let input = crud::body_properties(req)?;
            ctx.write(|svc, seq| {
                let name = api(svc, a)?.entity.name.clone();
                let x = svc.apis.get_mut(&key(&name)).expect("exists");
                let op = x.operations.get_mut(&key(o)).ok_or_else(|| ArmError::not_found(LABEL))?;
                crud::check_match(&m, &op.entity.etag, LABEL, o)?;
                op.entity.properties = validate_op(&crud::merge(&op.entity.properties, &input))?;
                op.entity.etag = seq.issue();
                let x = &svc.apis[&key(&name)];
                let op = &x.operations[&key(o)];
                Ok(crud::read_response(req, render_op(svc, &x.entity, &op.entity), &op.entity.etag))
            })
        }
        Method::DELETE => {
            let m = crud::require_if_match(req)?;
            ctx.write(|svc, seq| {
                let name = api(svc, a)?.entity.name.clone();
                let x = svc.apis.get_mut(&key(&name)).expect("exists");
                let Some(op) = x.operations.get(&key(o)) else {
                    return Ok(crud::deleted(false));
                };
                crud::check_match(&m, &op.entity.etag, LABEL, o)?;
                x.operations.remove(&key(o));
                seq.bump();
                Ok(crud::deleted(true))
            })
        }
        _ => Err(method_not_allowed(req)),
    }
}
