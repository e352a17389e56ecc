//! APIM subscriptions (API keys): CRUD, `listSecrets`, `regeneratePrimaryKey` /
//! `regenerateSecondaryKey`, and the product- and user-scoped lists.
//!
//! Invariants:
//! - `primaryKey`/`secondaryKey` are stored but never rendered by GET, HEAD, list, PUT or PATCH;
//!   only `POST .../listSecrets` returns them (200 + ETag). Regenerating a key answers 204 and
//!   changes the ETag.
//! - `scope` and `ownerId` are accepted relative (`/products/aoai`, `/apis`, `/apis/{id}`,
//!   `/users/{id}`) or as full ids of this service, must point at something that exists, and
//!   are stored and returned as full ARM ids. The built-in `master` subscription's scope is the
//!   service id followed by `/`.
//! - `state` defaults to `submitted` on create. Becoming `active` sets `startDate` (today,
//!   midnight UTC) if unset; becoming `cancelled`/`expired`/`rejected` sets `endDate`.
//! - The built-in `master` subscription cannot be deleted (400, emulator choice).
//!
//! `$filter` fields: `name`, `displayName`, `stateComment`, `ownerId`, `scope`, `userId`,
//! `productId` (all operators) and `state` (`eq`), on the service, product and user lists.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::crud::{self, fe};
use super::envelope::{ArmError, ArmResponse};
use super::filter::{FieldSpec, FieldValue, Ops, f};
use super::{Ctx, method_not_allowed, paging};
use crate::store::{Entity, Props, Service, key};
use crate::util::{now_rfc3339, random_key};

pub const TYPE: &str = "Microsoft.ApiManagement/service/subscriptions";
const LABEL: &str = "Subscription";
const STATES: &[&str] = &["active", "suspended", "submitted", "rejected", "cancelled", "expired"];
const SECRETS: &[&str] = &["primaryKey", "secondaryKey"];

pub const FIELDS: &[FieldSpec] = &[
    f("name", Ops::All),
    f("displayName", Ops::All),
    f("stateComment", Ops::All),
    f("ownerId", Ops::All),
    f("scope", Ops::All),
    f("userId", Ops::All),
    f("productId", Ops::All),
    f("state", Ops::Eq),
];

/// The subscription contract, without keys.
pub fn render(svc: &Service, e: &Entity) -> Value {
    let props: Props = e
        .properties
        .iter()
        .filter(|(k, _)| !SECRETS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    crud::resource(format!("{}/subscriptions/{}", svc.id(), e.name), TYPE, &e.name, Value::Object(props))
}

fn field(svc: &Service, e: &Entity, name: &str) -> FieldValue {
    let s = |v: Option<&str>| v.map(|s| FieldValue::Str(s.to_string())).unwrap_or(FieldValue::Null);
    match name {
        "name" => FieldValue::Str(e.name.clone()),
        "userId" => s(e.str("ownerId").and_then(|o| o.rsplit('/').next())),
        "productId" => {
            let (p, _, _) = svc.classify_scope(e.str("scope").unwrap_or_default());
            s(p.as_deref())
        }
        other => s(e.str(other)),
    }
}

/// Normalises a scope to a full id and checks its target exists.
fn resolve_scope(svc: &Service, scope: &str) -> Result<String, String> {
    let sid = svc.id();
    let rel =
        crud::relative_to_service(&sid, scope).ok_or_else(|| format!("Scope '{scope}' is not in this service."))?;
    let parts: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
    match parts.as_slice() {
        [] => Ok(format!("{sid}/")),
        [c] if c.eq_ignore_ascii_case("apis") => Ok(format!("{sid}/apis")),
        [c, a] if c.eq_ignore_ascii_case("apis") => match svc.apis.get(&key(a)) {
            Some(api) => Ok(format!("{sid}/apis/{}", api.entity.name)),
            None => Err(format!("API '{a}' in scope '{scope}' does not exist.")),
        },
        [c, p] if c.eq_ignore_ascii_case("products") => match svc.products.get(&key(p)) {
            Some(prod) => Ok(format!("{sid}/products/{}", prod.entity.name)),
            None => Err(format!("Product '{p}' in scope '{scope}' does not exist.")),
        },
        _ => Err(format!("Scope '{scope}' is invalid: use '/products/{{productId}}', '/apis' or '/apis/{{apiId}}'.")),
    }
}

fn resolve_owner(svc: &Service, owner: &str) -> Result<String, String> {
    let sid = svc.id();
    let rel = crud::relative_to_service(&sid, owner)
        .ok_or_else(|| format!("Owner '{owner}' is not a user of this service."))?;
    let parts: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
    match parts.as_slice() {
        [c, u] if c.eq_ignore_ascii_case("users") => match svc.users.get(&key(u)) {
            Some(user) => Ok(format!("{sid}/users/{}", user.name)),
            None => Err(format!("User '{u}' does not exist.")),
        },
        _ => Err(format!("Owner '{owner}' is invalid: use '/users/{{userId}}'.")),
    }
}

fn midnight_today() -> String {
    let now = now_rfc3339();
    format!("{}T00:00:00Z", &now[..10])
}

/// Validates `input` (full PUT body properties, or PATCH-merged) against `existing`.
fn validate(svc: &Service, input: &Props, existing: Option<&Entity>) -> Result<Props, ArmError> {
    let mut errors = Vec::new();
    crud::required_string(input, "displayName", 100, &mut errors);
    crud::optional_string(input, "stateComment", 1000, &mut errors);
    crud::optional_bool(input, "allowTracing", &mut errors);
    let state = crud::optional_enum(input, "state", STATES, &mut errors);
    let scope = match input.get("scope").and_then(Value::as_str) {
        None => {
            errors.push(fe("scope", "'scope' is required: '/products/{productId}', '/apis' or '/apis/{apiId}'."));
            None
        }
        Some(s) => resolve_scope(svc, s).map_err(|m| errors.push(fe("scope", m))).ok(),
    };
    let owner = match input.get("ownerId") {
        None | Some(Value::Null) => None,
        Some(Value::String(o)) => resolve_owner(svc, o).map_err(|m| errors.push(fe("ownerId", m))).ok(),
        Some(v) => {
            errors.push(fe("ownerId", format!("'ownerId' must be a string; it is {v}.")));
            None
        }
    };
    for k in SECRETS {
        match input.get(*k) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if (1..=256).contains(&s.len()) => {}
            Some(_) => errors.push(fe(k, format!("'{k}' must be 1 to 256 characters long."))),
        }
    }
    for k in ["expirationDate", "startDate", "endDate", "notificationDate"] {
        if let Some(v) = input.get(k)
            && !v.is_null()
            && !v.as_str().is_some_and(|s| s.len() >= 10 && s.as_bytes()[4] == b'-')
        {
            errors.push(fe(k, format!("'{k}' must be an ISO 8601 date-time; it is {v}.")));
        }
    }
    crud::finish(errors)?;

    let prev = |k: &str| existing.and_then(|e| e.properties.get(k)).cloned().unwrap_or(Value::Null);
    let state = state.unwrap_or_else(|| existing.and_then(|e| e.str("state")).unwrap_or("submitted").to_string());
    let mut p = Props::new();
    p.insert("ownerId".into(), owner.map(Value::from).unwrap_or(Value::Null));
    p.insert("scope".into(), json!(scope));
    p.insert("displayName".into(), input["displayName"].clone());
    p.insert("state".into(), json!(state));
    p.insert(
        "createdDate".into(),
        existing.and_then(|e| e.properties.get("createdDate").cloned()).unwrap_or_else(|| json!(now_rfc3339())),
    );
    let date = |k: &str| input.get(k).filter(|v| !v.is_null()).cloned().unwrap_or_else(|| prev(k));
    let mut start = date("startDate");
    if state == "active" && start.is_null() {
        start = json!(midnight_today());
    }
    let mut end = date("endDate");
    if matches!(state.as_str(), "cancelled" | "expired" | "rejected") && end.is_null() {
        end = json!(now_rfc3339());
    }
    p.insert("startDate".into(), start);
    p.insert("expirationDate".into(), date("expirationDate"));
    p.insert("endDate".into(), end);
    p.insert("notificationDate".into(), date("notificationDate"));
    p.insert("stateComment".into(), input.get("stateComment").cloned().unwrap_or(Value::Null));
    p.insert(
        "allowTracing".into(),
        input.get("allowTracing").cloned().filter(|v| !v.is_null()).unwrap_or(json!(false)),
    );
    for k in SECRETS {
        let v = input
            .get(*k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| existing.and_then(|e| e.str(k)).map(str::to_string))
            .unwrap_or_else(random_key);
        p.insert((*k).into(), json!(v));
    }
    Ok(p)
}

/// `subscriptions`
pub fn collection(ctx: &Ctx) -> Result<ArmResponse, ArmError> {
    if ctx.req.method != Method::GET {
        return Err(method_not_allowed(ctx.req));
    }
    ctx.read(|svc| {
        paging::list(ctx.req, svc.subscriptions.values(), FIELDS, |e, n| field(svc, e, n), |e| render(svc, e))
    })
}

/// `products/{p}/subscriptions`
pub fn by_product(ctx: &Ctx, p: &str) -> Result<ArmResponse, ArmError> {
    nested(ctx, "scope", "Microsoft.ApiManagement/service/products/subscriptions", |svc| {
        let prod = svc.products.get(&key(p)).ok_or_else(|| ArmError::not_found("Product"))?;
        Ok(format!("{}/products/{}", svc.id(), prod.entity.name))
    })
}

/// `users/{u}/subscriptions`
pub fn by_user(ctx: &Ctx, u: &str) -> Result<ArmResponse, ArmError> {
    nested(ctx, "ownerId", "Microsoft.ApiManagement/service/users/subscriptions", |svc| {
        let user = svc.users.get(&key(u)).ok_or_else(|| ArmError::not_found("User"))?;
        Ok(format!("{}/users/{}", svc.id(), user.name))
    })
}

/// The subscriptions whose `property` names the parent `parent_id` resolves to, listed under it
/// as Azure lists them there: each item's id under the parent and the nested `type`.
fn nested(
    ctx: &Ctx,
    property: &str,
    item_type: &str,
    parent_id: impl Fn(&Service) -> Result<String, ArmError>,
) -> Result<ArmResponse, ArmError> {
    if ctx.req.method != Method::GET {
        return Err(method_not_allowed(ctx.req));
    }
    ctx.read(|svc| {
        let parent = parent_id(svc)?;
        let subs =
            svc.subscriptions.values().filter(|e| e.str(property).is_some_and(|s| s.eq_ignore_ascii_case(&parent)));
        paging::list(
            ctx.req,
            subs,
            FIELDS,
            |e, n| field(svc, e, n),
            |e| crud::nested_item(render(svc, e), &parent, "subscriptions", item_type),
        )
    })
}

/// `subscriptions/{sid}`
pub fn item(ctx: &Ctx, name: &str) -> Result<ArmResponse, ArmError> {
    let req = ctx.req;
    match req.method {
        Method::GET | Method::HEAD => ctx.read(|svc| {
            let e = svc.subscriptions.get(&key(name)).ok_or_else(|| ArmError::not_found(LABEL))?;
            Ok(crud::read_response(req, render(svc, e), &e.etag))
        }),
        Method::PUT => {
            crud::check_name(name, 256, "subscription id")?;
            let input = crud::body_properties(req)?;
            ctx.write(|svc, seq| {
                let existing = svc.subscriptions.get(&key(name));
                crud::check_put(req, existing.map(|e| e.etag.as_str()), LABEL, name)?;
                let props = validate(svc, &input, existing)?;
                let (created, k) = crud::upsert(&mut svc.subscriptions, seq, name, props);
                let e = &svc.subscriptions[&k];
                Ok(crud::written(created, render(svc, e), &e.etag))
            })
        }
        Method::PATCH => {
            let m = crud::require_if_match(req)?;
            let input = crud::body_properties(req)?;
            ctx.write(|svc, seq| {
                let e = svc.subscriptions.get(&key(name)).ok_or_else(|| ArmError::not_found(LABEL))?;
                crud::check_match(&m, &e.etag, LABEL, name)?;
                let merged = crud::merge(&e.properties, &input);
                let props = validate(svc, &merged, Some(e))?;
                let (_, k) = crud::upsert(&mut svc.subscriptions, seq, name, props);
                let e = &svc.subscriptions[&k];
                Ok(crud::read_response(req, render(svc, e), &e.etag))
            })
        }
        Method::DELETE => {
            let m = crud::require_if_match(req)?;
            ctx.write(|svc, seq| {
                let Some(e) = svc.subscriptions.get(&key(name)) else {
                    return Ok(crud::deleted(false));
                };
                crud::check_match(&m, &e.etag, LABEL, name)?;
                if e.name.eq_ignore_ascii_case("master") {
                    return Err(ArmError::field(
                        "subscriptionId",
                        "The built-in 'master' subscription cannot be deleted.",
                    ));
                }
                svc.subscriptions.remove(&key(name));
                seq.bump();
                Ok(crud::deleted(true))
            })
        }
        _ => Err(method_not_allowed(req)),
    }
}

/// `POST subscriptions/{sid}/listSecrets`
pub fn list_secrets(ctx: &Ctx, name: &str) -> Result<ArmResponse, ArmError> {
    ctx.read(|svc| {
        let e = svc.subscriptions.get(&key(name)).ok_or_else(|| ArmError::not_found(LABEL))?;
        let body = json!({ "primaryKey": e.str("primaryKey"), "secondaryKey": e.str("secondaryKey") });
        Ok(ArmResponse::new(StatusCode::OK, Some(body), Some(e.etag.clone())))
    })
}

/// `POST subscriptions/{sid}/regenerate{Primary|Secondary}Key` → 204.
pub fn regenerate(ctx: &Ctx, name: &str, which: &str) -> Result<ArmResponse, ArmError> {
    ctx.write(|svc, seq| {
        let e = svc.subscriptions.get_mut(&key(name)).ok_or_else(|| ArmError::not_found(LABEL))?;
        e.properties.insert(which.into(), json!(random_key()));
        e.etag = seq.issue();
        Ok(ArmResponse::new(StatusCode::NO_CONTENT, None, None))
    })
}
