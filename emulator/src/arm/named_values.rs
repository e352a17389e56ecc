//! Named values: plain and secret, with `listValue`.
//!
//! `displayName` required (1–256, `^[A-Za-z0-9-._]+$`, unique in the service because policies
//! reference named values by display name as `{{displayName}}`); `value` required (≤ 4096)
//! unless `keyVault` is given; `secret` defaults to false; `tags` ≤ 32. A secret's `value` is
//! never rendered (GET, list, PUT, PATCH); `POST .../listValue` returns `{"value": ...}` with the
//! ETag. Azure may answer PUT/PATCH with 202 and finish asynchronously; the emulator finishes at
//! once (201/200, `provisioningState: "Succeeded"` in the answer). A Key Vault reference gets
//! `keyVault.lastStatus` `{code: "Success", timeStampUtc}` when written or refreshed: the
//! emulator cannot reach Key Vault, so it reports the fetch as done. Deleting a named value that a stored policy references is refused with 409
//! `Conflict` naming the policies (emulator choice). `$filter`: `name`, `displayName` (all
//! operators), `tags` (`any`/`all`).

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::crud::{self, fe};
use super::envelope::{ArmError, ArmResponse};
use super::filter::{FieldSpec, FieldValue, Ops, f};
use super::{Ctx, method_not_allowed, paging};
use crate::store::{Entity, PolicyScope, Props, Service, key};
use crate::validate::policy::named_value_references;

pub const TYPE: &str = "Microsoft.ApiManagement/service/namedValues";
const LABEL: &str = "Named value";
const FIELDS: &[FieldSpec] = &[f("name", Ops::All), f("displayName", Ops::All), f("tags", Ops::List)];

/// The named value contract; secret values are omitted.
pub fn render(svc: &Service, e: &Entity) -> Value {
    let mut props = e.properties.clone();
    if e.bool("secret") == Some(true) {
        props.remove("value");
    }
    crud::resource(format!("{}/namedValues/{}", svc.id(), e.name), TYPE, &e.name, Value::Object(props))
}

fn field(e: &Entity, name: &str) -> FieldValue {
    match name {
        "name" => FieldValue::Str(e.name.clone()),
        "tags" => FieldValue::List(
            e.properties
                .get("tags")
                .and_then(Value::as_array)
                .map(|t| t.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
        ),
        other => e.str(other).map(|s| FieldValue::Str(s.to_string())).unwrap_or(FieldValue::Null),
    }
}

fn validate(svc: &Service, name: &str, input: &Props) -> Result<Props, ArmError> {
    let mut errors = Vec::new();
    if let Some(d) = crud::required_string(input, "displayName", 256, &mut errors) {
        if !d.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
            errors.push(fe(
                "displayName",
                format!("'displayName' may contain only letters, digits, '-', '.' and '_'; it is '{d}'."),
            ));
        }
        if let Some(other) = svc.named_values.values().find(|n| {
            !n.name.eq_ignore_ascii_case(name) && n.str("displayName").is_some_and(|x| x.eq_ignore_ascii_case(&d))
        }) {
            errors.push(fe(
                "displayName",
                format!("Display name '{d}' is already used by named value '{}'.", other.name),
            ));
        }
    }
    let key_vault = input.get("keyVault").filter(|v| !v.is_null());
    match input.get("value") {
        Some(Value::String(v)) if v.chars().count() <= 4096 => {}
        Some(Value::String(_)) => errors.push(fe("value", "'value' must be at most 4096 characters long.")),
        None | Some(Value::Null) if key_vault.is_some() => {}
        None | Some(Value::Null) => errors.push(fe("value", "'value' is required unless 'keyVault' is given.")),
        Some(v) => errors.push(fe("value", format!("'value' must be a string; it is {v}."))),
    }
    if let Some(kv) = key_vault
        && !kv.get("secretIdentifier").and_then(Value::as_str).is_some_and(|s| s.starts_with("https://"))
    {
        errors.push(fe(
            "keyVault.secretIdentifier",
            "'keyVault.secretIdentifier' must be the https URL of a Key Vault secret.",
        ));
    }
    crud::optional_bool(input, "secret", &mut errors);
    if let Some(t) = input.get("tags").filter(|v| !v.is_null()) {
        let ok = t.as_array().is_some_and(|a| {
            a.len() <= 32 && a.iter().all(|x| x.as_str().is_some_and(|s| !s.is_empty() && s.len() <= 160))
        });
        if !ok {
            errors.push(fe("tags", "'tags' must be an array of at most 32 non-empty strings."));
        }
    }
    crud::finish(errors)?;
    let mut p = input.clone();
    if let Some(Value::Object(kv)) = p.get_mut("keyVault") {
        // The emulator cannot reach Key Vault: a reference counts as fetched when written.
        kv.entry("identityClientId").or_insert(Value::Null);
        kv.insert("lastStatus".into(), json!({"code": "Success", "timeStampUtc": crate::util::now_rfc3339()}));
    }
    p.entry("secret").or_insert(json!(key_vault.is_some()));
    p.entry("tags").or_insert(json!([]));
    Ok(p)
}

/// Policies whose text references display name `d`.
fn referencing_policies(svc: &Service, d: &str) -> Vec<String> {
    svc.policies()
        .into_iter()
        .filter(|(_, xml)| named_value_references(xml).iter().any(|n| n.eq_ignore_ascii_case(d)))
        .map(|(scope, _)| match scope {
            PolicyScope::Global => "global".to_string(),
            PolicyScope::Product(p) => format!("product '{p}'"),
            PolicyScope::Api(a) => format!("API '{a}'"),
            PolicyScope::Operation(a, o) => format!("operation '{a}/{o}'"),
        })
        .collect()
}

/// `namedValues`
pub fn collection(ctx: &Ctx) -> Result<ArmResponse, ArmError> {
    if ctx.req.method != Method::GET {
        return Err(method_not_allowed(ctx.req));
    }
    ctx.read(|svc| paging::list(ctx.req, svc.named_values.values(), FIELDS, field, |e| render(svc, e)))
}

/// `namedValues/{n}`
pub fn item(ctx: &Ctx, name: &str) -> Result<ArmResponse, ArmError> {
    let req = ctx.req;
    match req.method {
        Method::GET | Method::HEAD => ctx.read(|svc| {
            let e = svc.named_values.get(&key(name)).ok_or_else(|| ArmError::not_found(LABEL))?;
            Ok(crud::read_response(req, render(svc, e), &e.etag))
        }),
        Method::PUT => {
            crud::check_name(name, 256, "named value id")?;
            let input = crud::body_properties(req)?;
            ctx.write(|svc, seq| {
                let existing = svc.named_values.get(&key(name));
                crud::check_put(req, existing.map(|e| e.etag.as_str()), LABEL, name)?;
                let props = validate(svc, name, &input)?;
                let (created, k) = crud::upsert(&mut svc.named_values, seq, name, props);
                let e = &svc.named_values[&k];
                Ok(crud::written(created, crud::finished_operation(render(svc, e)), &e.etag))
            })
        }
        Method::PATCH => {
            let m = crud::require_if_match(req)?;
            let input = crud::body_properties(req)?;
            ctx.write(|svc, seq| {
                let e = svc.named_values.get(&key(name)).ok_or_else(|| ArmError::not_found(LABEL))?;
                crud::check_match(&m, &e.etag, LABEL, name)?;
                let props = validate(svc, name, &crud::merge(&e.properties, &input))?;
                let (_, k) = crud::upsert(&mut svc.named_values, seq, name, props);
                let e = &svc.named_values[&k];
                Ok(crud::read_response(req, crud::finished_operation(render(svc, e)), &e.etag))
            })
        }
        Method::DELETE => {
            let m = crud::require_if_match(req)?;
            ctx.write(|svc, seq| {
                let Some(e) = svc.named_values.get(&key(name)) else { return Ok(crud::deleted(false)) };
                crud::check_match(&m, &e.etag, LABEL, name)?;
                let display = e.str("displayName").unwrap_or(&e.name).to_string();
                let users = referencing_policies(svc, &display);
                if !users.is_empty() {
                    return Err(ArmError::conflict(format!(
                        "Named value '{display}' is referenced by the {} policy; remove the {{{{{display}}}}} references first.",
                        users.join(", ")
                    )));
                }
                svc.named_values.remove(&key(name));
                seq.bump();
                Ok(crud::deleted(true))
            })
        }
        _ => Err(method_not_allowed(req)),
    }
}

/// `POST namedValues/{n}/listValue`
pub fn list_value(ctx: &Ctx, name: &str) -> Result<ArmResponse, ArmError> {
    ctx.read(|svc| {
        let e = svc.named_values.get(&key(name)).ok_or_else(|| ArmError::not_found(LABEL))?;
        Ok(ArmResponse::new(StatusCode::OK, Some(json!({ "value": e.str("value") })), Some(e.etag.clone())))
    })
}

/// `POST namedValues/{n}/refreshSecret`: only for Key Vault references.
pub fn refresh_secret(ctx: &Ctx, name: &str) -> Result<ArmResponse, ArmError> {
    ctx.write(|svc, seq| {
        let e = svc.named_values.get_mut(&key(name)).ok_or_else(|| ArmError::not_found(LABEL))?;
        if e.properties.get("keyVault").is_none_or(Value::is_null) {
            return Err(ArmError::field(
                "keyVault",
                format!("Named value '{name}' is not a Key Vault reference; there is nothing to refresh."),
            ));
        }
        e.etag = seq.issue();
        if let Some(Value::Object(kv)) = e.properties.get_mut("keyVault") {
            kv.insert("lastStatus".into(), json!({"code": "Success", "timeStampUtc": crate::util::now_rfc3339()}));
        }
        let e = &svc.named_values[&key(name)];
        Ok(ArmResponse::new(StatusCode::OK, Some(render(svc, e)), Some(e.etag.clone())))
    })
}
