//! Policies at global (`policies/policy`), product, API and operation scope.
//!
//! PUT body: `{"properties": {"value": "<policies>...</policies>", "format": "xml"|"rawxml"}}`
//! (`format` defaults to `xml`; the `*-link` formats would make APIM fetch a URL and are refused
//! with 400). The value is normalised (`validate::policy::normalize`: CRLF line endings, no BOM —
//! nothing else), validated (`validate::policy::validate`: failures are 400 `ValidationError`
//! with one detail per problem, `target: "representation"`, messages carrying line and column),
//! and stored as sent. The PUT response echoes the stored value in the format of the request,
//! without a `format` field (Azure's PUT answers have none).
//!
//! GET `?format=rawxml` returns the stored text byte for byte with `"format": "rawxml"`.
//! GET without `format` (or `format=xml`) returns APIM's `xml` export: the same bytes except
//! that `<`, `>` and bare `&` inside policy expressions are escaped as entities, which makes the
//! document well-formed XML; `format` is then omitted from the body. A policy PUT in `xml` format
//! is stored as sent, so `rawxml` returns it still escaped (APIM would unescape it; documented).
//! The policy id must be `policy` (APIM answers other names with 400 `BadRequest`).
//! API- and operation-scope collections are single-page; the global one has one item at most.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::crud;
use super::envelope::{ArmError, ArmResponse};
use super::{Ctx, apis, method_not_allowed, paging};
use crate::store::{Entity, Props, Service, key};
use crate::validate::policy::{normalize, validate};
use crate::validate::xml::{self, Format};

/// Where a policy lives, as addressed by a request.
#[derive(Debug, Clone)]
pub enum Scope {
    Global,
    Product(String),
    Api(String),
    Operation(String, String),
}

impl Scope {
    fn type_name(&self) -> &'static str {
        match self {
            Scope::Global => "Microsoft.ApiManagement/service/policies",
            Scope::Product(_) => "Microsoft.ApiManagement/service/products/policies",
            Scope::Api(_) => "Microsoft.ApiManagement/service/apis/policies",
            Scope::Operation(..) => "Microsoft.ApiManagement/service/apis/operations/policies",
        }
    }

    /// The collection id (`.../policies`) with names as stored.
    fn collection_id(&self, svc: &Service) -> Result<String, ArmError> {
        let id = svc.id();
        Ok(match self {
            Scope::Global => format!("{id}/policies"),
            Scope::Product(p) => {
                let prod = svc.products.get(&key(p)).ok_or_else(|| ArmError::not_found("Product"))?;
                format!("{id}/products/{}/policies", prod.entity.name)
            }
            Scope::Api(a) => format!("{id}/apis/{}/policies", apis::api(svc, a)?.entity.name),
            Scope::Operation(a, o) => {
                let x = apis::api(svc, a)?;
                let op = x.operations.get(&key(o)).ok_or_else(|| ArmError::not_found("Operation"))?;
                format!("{id}/apis/{}/operations/{}/policies", x.entity.name, op.entity.name)
            }
        })
    }

    fn slot<'a>(&self, svc: &'a Service) -> Result<&'a Option<Entity>, ArmError> {
        Ok(match self {
            Scope::Global => &svc.policy,
            Scope::Product(p) => &svc.products.get(&key(p)).ok_or_else(|| ArmError::not_found("Product"))?.policy,
            Scope::Api(a) => &apis::api(svc, a)?.policy,
            Scope::Operation(a, o) => {
                &apis::api(svc, a)?.operations.get(&key(o)).ok_or_else(|| ArmError::not_found("Operation"))?.policy
            }
        })
    }

    fn slot_mut<'a>(&self, svc: &'a mut Service) -> Result<&'a mut Option<Entity>, ArmError> {
        let api_key = |svc: &Service, a: &str| apis::api(svc, a).map(|x| key(&x.entity.name));
        Ok(match self {
            Scope::Global => &mut svc.policy,
            Scope::Product(p) => {
                &mut svc.products.get_mut(&key(p)).ok_or_else(|| ArmError::not_found("Product"))?.policy
            }
            Scope::Api(a) => {
                let k = api_key(svc, a)?;
                &mut svc.apis.get_mut(&k).expect("exists").policy
            }
            Scope::Operation(a, o) => {
                let k = api_key(svc, a)?;
                &mut svc
                    .apis
                    .get_mut(&k)
                    .expect("exists")
                    .operations
                    .get_mut(&key(o))
                    .ok_or_else(|| ArmError::not_found("Operation"))?
                    .policy
            }
        })
    }
}

/// Renders a stored policy in `format` (`None` = default `xml` export without a `format` field).
fn render(svc: &Service, scope: &Scope, e: &Entity, format: Option<Format>) -> Result<Value, ArmError> {
    let stored = e.str("value").unwrap_or_default();
    let value = match format {
        Some(Format::RawXml) => stored.to_string(),
        _ => match xml::parse(stored, Format::RawXml) {
            Ok(doc) => xml::to_xml_format(&doc),
            Err(_) => stored.to_string(),
        },
    };
    let mut props = json!({ "value": value });
    match format {
        Some(Format::RawXml) => props["format"] = json!("rawxml"),
        Some(Format::Xml) => props["format"] = json!("xml"),
        None => {}
    }
    Ok(crud::resource(format!("{}/{}", scope.collection_id(svc)?, e.name), scope.type_name(), &e.name, props))
}

fn format_param(v: Option<&str>, target: &str) -> Result<Option<Format>, ArmError> {
    match v {
        None => Ok(None),
        Some(f) if f.eq_ignore_ascii_case("xml") => Ok(Some(Format::Xml)),
        Some(f) if f.eq_ignore_ascii_case("rawxml") => Ok(Some(Format::RawXml)),
        Some(f) if f.to_ascii_lowercase().ends_with("-link") => Err(ArmError::field(
            target,
            format!(
                "Policy format '{f}' (fetching the policy from a URL) is not supported by the emulator; send the XML inline with 'xml' or 'rawxml'."
            ),
        )),
        Some(f) => Err(ArmError::field(target, format!("'{target}' must be 'xml' or 'rawxml'; it is '{f}'."))),
    }
}

/// `.../policies`
pub fn collection(ctx: &Ctx, scope: Scope) -> Result<ArmResponse, ArmError> {
    if ctx.req.method != Method::GET {
        return Err(method_not_allowed(ctx.req));
    }
    ctx.read(|svc| {
        let value: Vec<Value> = match scope.slot(svc)? {
            Some(e) => vec![render(svc, &scope, e, None)?],
            None => vec![],
        };
        paging::single_page(ctx.req, value)
    })
}

/// `.../policies/policy`
pub fn item(ctx: &Ctx, scope: Scope, id: &str) -> Result<ArmResponse, ArmError> {
    let req = ctx.req;
    if !id.eq_ignore_ascii_case("policy") {
        return Err(match req.method {
            Method::PUT => ArmError::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("Policy identifier '{id}' is invalid: the policy of a scope is always named 'policy'."),
            ),
            _ => ArmError::not_found("Policy"),
        });
    }
    match req.method {
        Method::GET | Method::HEAD => {
            let format = format_param(req.query("format"), "format")?;
            ctx.read(|svc| {
                let e = scope.slot(svc)?.as_ref().ok_or_else(|| ArmError::not_found("Policy"))?;
                Ok(crud::read_response(req, render(svc, &scope, e, format)?, &e.etag))
            })
        }
        Method::PUT => {
            let input = crud::body_properties(req)?;
            let format = format_param(input.get("format").and_then(Value::as_str), "format")?;
            let Some(value) = input.get("value").and_then(Value::as_str) else {
                return Err(ArmError::field("value", "'value' is required: the policy document."));
            };
            let text = normalize(value);
            ctx.write(|svc, seq| {
                let current = scope.slot(svc)?.as_ref().map(|e| e.etag.clone());
                crud::check_put(req, current.as_deref(), "Policy", "policy")?;
                if let Err(issues) = validate(&text, format.unwrap_or(Format::Xml), svc) {
                    let mut e = ArmError::new(
                        StatusCode::BAD_REQUEST,
                        "ValidationError",
                        "One or more fields contain incorrect values:",
                    );
                    e.details = issues
                        .into_iter()
                        .map(|i| json!({"code": "ValidationError", "target": "representation", "message": i.message}))
                        .collect();
                    return Err(e);
                }
                let props: Props = json!({ "value": text }).as_object().cloned().unwrap_or_default();
                let created = crud::upsert_single(scope.slot_mut(svc)?, seq, "policy", props);
                let e = scope.slot(svc)?.as_ref().expect("just written");
                // The value comes back in the request's format, but without a `format` field:
                // Azure's PUT answers never carry one.
                let mut body = render(svc, &scope, e, format)?;
                if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
                    p.remove("format");
                }
                Ok(crud::written(created, body, &e.etag))
            })
        }
        Method::DELETE => {
            let m = crud::require_if_match(req)?;
            ctx.write(|svc, seq| {
                let Some(e) = scope.slot(svc)?.as_ref() else {
                    return Ok(crud::deleted(false));
                };
                crud::check_match(&m, &e.etag, "Policy", "policy")?;
                *scope.slot_mut(svc)? = None;
                seq.bump();
                Ok(crud::deleted(true))
            })
        }
        _ => Err(method_not_allowed(req)),
    }
}
