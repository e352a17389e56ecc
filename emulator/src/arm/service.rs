//! `Microsoft.ApiManagement/service`: the tracked service resource and its lists.
//!
//! GET/HEAD return the resource with `etag` in the body and the `ETag` header. PUT creates
//! (201) or replaces (200) a service in a known resource group; it requires `location`,
//! `sku.name` and `properties.publisherEmail`/`publisherName`, and completes synchronously with
//! `provisioningState: Succeeded` (Azure runs it as a long-running operation; the emulator
//! finishes at once — documented choice). A new service gets the built-in `master`
//! subscription, the `1` (Administrator) user and APIM's default global policy. PATCH merges
//! `tags`, `sku`, `identity` and top-level `properties`. DELETE removes the service and
//! everything in it (200; 204 when absent). `If-Match` is optional on all service writes.
//! Lists (`/subscriptions/{s}/providers/...` and `/resourceGroups/{rg}/providers/...`) return
//! every service in one page.

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::crud::{self, fe};
use super::envelope::{ArmError, ArmResponse};
use super::{ArmRequest, Ctx, method_not_allowed};
use crate::Emulator;
use crate::store::{Entity, EtagSeq, Props, Service, State as World, Table};
use crate::util::now_rfc3339;

const TYPE: &str = "Microsoft.ApiManagement/service";
const SKUS: &[&str] =
    &["Basic", "BasicV2", "Consumption", "Developer", "Isolated", "Premium", "PremiumV2", "Standard", "StandardV2"];
const READ_ONLY: &[&str] = &[
    "provisioningState",
    "targetProvisioningState",
    "createdAtUtc",
    "gatewayUrl",
    "gatewayRegionalUrl",
    "portalUrl",
    "managementApiUrl",
    "scmUrl",
    "developerPortalUrl",
    "platformVersion",
    "publicIPAddresses",
    "privateIPAddresses",
];

/// The service resource as ARM returns it.
pub fn render(svc: &Service) -> Value {
    let mut v = json!({
        "id": svc.id(),
        "name": svc.name,
        "type": TYPE,
        "tags": svc.tags,
        "location": svc.location,
        "etag": svc.etag,
        "sku": svc.sku,
    });
    if let Some(i) = &svc.identity {
        v["identity"] = i.clone();
    }
    let mut props = svc.properties.clone();
    let v2 = svc.sku.get("name").and_then(Value::as_str).is_some_and(|s| s.ends_with("V2"));
    for (k, default) in render_defaults(&svc.name, &svc.location, v2) {
        props.entry(k).or_insert(default);
    }
    let created = props.get("createdAtUtc").cloned().unwrap_or(Value::Null);
    let by = props.get("publisherEmail").cloned().unwrap_or(Value::Null);
    v["properties"] = Value::Object(props);
    // ARM's systemData: who created the service and when. The emulator has one principal per
    // tenant, so the publisher stands in for it, and the last change is reported as the creation.
    v["systemData"] = json!({
        "createdBy": by,
        "createdByType": "User",
        "createdAt": created,
        "lastModifiedBy": by,
        "lastModifiedByType": "User",
        "lastModifiedAt": created,
    });
    v
}

/// Properties Azure always renders for a service, with the values a service that never set them
/// has: no custom hostnames beyond the default, no extra regions, no private endpoints, the
/// default TLS settings. Added when rendering (stored data is not changed).
fn render_defaults(name: &str, location: &str, v2: bool) -> Vec<(&'static str, Value)> {
    let region = location.to_ascii_lowercase().replace(' ', "");
    let off = json!("False");
    vec![
        ("notificationSenderEmail", json!("apimgmt-noreply@mail.windowsazure.com")),
        (
            "hostnameConfigurations",
            json!([{
                "type": "Proxy",
                "hostName": format!("{name}.azure-api.net"),
                "negotiateClientCertificate": false,
                "defaultSslBinding": true,
                "certificateSource": "BuiltIn",
            }]),
        ),
        ("disableGateway", json!(false)),
        ("apiVersionConstraint", json!({"minApiVersion": null})),
        (
            "gatewayRegionalUrl",
            if v2 { Value::Null } else { json!(format!("https://{name}-{region}-01.regional.azure-api.net")) },
        ),
        ("scmUrl", Value::Null),
        ("additionalLocations", Value::Null),
        (
            "customProperties",
            json!({
                "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Ciphers.TripleDes168": off,
                "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Protocols.Tls11": off,
                "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Protocols.Tls10": off,
                "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Protocols.Ssl30": off,
                "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Backend.Protocols.Tls11": off,
                "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Backend.Protocols.Tls10": off,
                "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Backend.Protocols.Ssl30": off,
                "Microsoft.WindowsAzure.ApiManagement.Gateway.Protocols.Server.Http2": off,
            }),
        ),
        ("certificates", Value::Null),
        ("privateEndpointConnections", Value::Null),
    ]
}

/// Read-only properties of a service named `name` created at `created`.
pub fn computed_properties(name: &str, created: &str, sku: &str) -> Props {
    let v2 = sku.ends_with("V2");
    let mut p = Map::new();
    p.insert("provisioningState".into(), json!("Succeeded"));
    p.insert("targetProvisioningState".into(), json!(""));
    p.insert("createdAtUtc".into(), json!(created));
    p.insert("gatewayUrl".into(), json!(format!("https://{name}.azure-api.net")));
    p.insert("developerPortalUrl".into(), json!(format!("https://{name}.developer.azure-api.net")));
    p.insert("managementApiUrl".into(), json!(format!("https://{name}.management.azure-api.net")));
    p.insert("portalUrl".into(), json!(format!("https://{name}.portal.azure-api.net")));
    if !v2 {
        p.insert("scmUrl".into(), json!(format!("https://{name}.scm.azure-api.net")));
    }
    p.insert("platformVersion".into(), json!(if v2 { "stv2.1" } else { "stv2" }));
    p.insert("publicIPAddresses".into(), if v2 { Value::Null } else { json!(["20.119.0.17"]) });
    p.insert("privateIPAddresses".into(), Value::Null);
    p
}

/// Lists services in a subscription or resource group.
pub fn list(emu: &Emulator, req: &ArmRequest, sub: &str, rg: Option<&str>) -> Result<ArmResponse, ArmError> {
    if req.method != Method::GET {
        return Err(method_not_allowed(req));
    }
    emu.store().read(|w| {
        if let Some(rg) = rg {
            let k = format!("{sub}/{rg}").to_ascii_lowercase();
            if !w.resource_groups.contains_key(&k) {
                return Err(ArmError::new(
                    StatusCode::NOT_FOUND,
                    "ResourceGroupNotFound",
                    format!("Resource group '{rg}' could not be found."),
                ));
            }
        }
        let value: Vec<Value> = w
            .services
            .values()
            .filter(|s| {
                s.subscription_id.eq_ignore_ascii_case(sub)
                    && rg.is_none_or(|rg| s.resource_group.eq_ignore_ascii_case(rg))
            })
            .map(render)
            .collect();
        Ok(ArmResponse::ok(json!({ "value": value })))
    })
}

/// The service item.
pub fn item(ctx: &Ctx) -> Result<ArmResponse, ArmError> {
    let req = ctx.req;
    match req.method {
        Method::GET | Method::HEAD => ctx.read(|svc| Ok(crud::read_response(req, render(svc), &svc.etag))),
        Method::PUT => put(ctx),
        Method::PATCH => ctx.write(|svc, seq| {
            if let Some(m) = crud::if_match(req) {
                crud::check_match(&m, &svc.etag, "Service", &svc.name)?;
            }
            let body = crud::body_object(req)?;
            let mut errors = Vec::new();
            if let Some(sku) = body.get("sku") {
                check_sku(sku, &mut errors);
            }
            crud::finish(errors)?;
            if let Some(Value::Object(t)) = body.get("tags") {
                svc.tags = t.clone();
            }
            if let Some(sku) = body.get("sku") {
                svc.sku = sku.clone();
            }
            if let Some(i) = body.get("identity") {
                svc.identity = Some(i.clone());
            }
            if let Some(Value::Object(p)) = body.get("properties") {
                for (k, v) in p {
                    if !READ_ONLY.contains(&k.as_str()) {
                        svc.properties.insert(k.clone(), v.clone());
                    }
                }
            }
            svc.etag = seq.issue();
            Ok(ArmResponse::new(StatusCode::OK, Some(render(svc)), Some(svc.etag.clone())))
        }),
        Method::DELETE => ctx.emu.store().write(|w| {
            let key = World::service_key(&ctx.svc.subscription_id, &ctx.svc.resource_group, &ctx.svc.name);
            let Some(svc) = w.services.get(&key) else {
                return Ok(crud::deleted(false));
            };
            if let Some(m) = crud::if_match(req) {
                crud::check_match(&m, &svc.etag, "Service", &svc.name)?;
            }
            w.services.remove(&key);
            w.etag_seq.bump();
            Ok(crud::deleted(true))
        }),
        _ => Err(method_not_allowed(req)),
    }
}

fn check_sku(sku: &Value, errors: &mut Vec<crate::validate::FieldError>) {
    match sku.get("name").and_then(Value::as_str) {
        Some(n) if SKUS.iter().any(|s| s.eq_ignore_ascii_case(n)) => {}
        Some(n) => errors.push(fe("sku.name", format!("'sku.name' must be one of {}; it is '{n}'.", SKUS.join(", ")))),
        None => errors.push(fe("sku.name", "'sku.name' is required.")),
    }
    if let Some(c) = sku.get("capacity")
        && c.as_i64().is_none_or(|c| c < 0)
    {
        errors.push(fe("sku.capacity", "'sku.capacity' must be a non-negative integer."));
    }
}

fn put(ctx: &Ctx) -> Result<ArmResponse, ArmError> {
    let req = ctx.req;
    let s = &ctx.svc;
    let name_ok = {
        let b = s.name.as_bytes();
        (1..=50).contains(&b.len())
            && b[0].is_ascii_alphabetic()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[b.len() - 1] != b'-'
    };
    if !name_ok {
        return Err(ArmError::field(
            "name",
            format!(
                "The service name '{}' is invalid: use 1 to 50 letters, digits and hyphens, starting with a letter and not ending with a hyphen.",
                s.name
            ),
        ));
    }
    let body = crud::body_object(req)?;
    let mut errors = Vec::new();
    let location = match body.get("location").and_then(Value::as_str) {
        Some(l) if !l.is_empty() => l.to_string(),
        _ => {
            errors.push(fe("location", "'location' is required."));
            String::new()
        }
    };
    match body.get("sku") {
        Some(sku) => check_sku(sku, &mut errors),
        None => errors.push(fe("sku", "'sku' is required.")),
    }
    let props: Props = match body.get("properties") {
        Some(Value::Object(p)) => p.clone(),
        _ => Map::new(),
    };
    crud::required_string(&props, "publisherEmail", 100, &mut errors);
    crud::required_string(&props, "publisherName", 100, &mut errors);
    crud::finish(errors)?;

    ctx.emu.store().write(|w| {
        let rg_key = format!("{}/{}", s.subscription_id, s.resource_group).to_ascii_lowercase();
        let Some(rg) = w.resource_groups.get(&rg_key) else {
            return Err(s.missing(w));
        };
        let rg_name = rg.name.clone();
        let key = World::service_key(&s.subscription_id, &s.resource_group, &s.name);
        let World { services, etag_seq, .. } = w;
        let existing = services.get(&key);
        crud::check_put(req, existing.map(|e| e.etag.as_str()), "Service", &s.name)?;
        let sku = body["sku"].clone();
        let sku_name = sku["name"].as_str().unwrap_or("").to_string();
        let mut properties: Props = props.into_iter().filter(|(k, _)| !READ_ONLY.contains(&k.as_str())).collect();
        let created_at = existing
            .and_then(|e| e.properties.get("createdAtUtc").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(now_rfc3339);
        for (k, v) in computed_properties(&s.name, &created_at, &sku_name) {
            properties.entry(k).or_insert(v);
        }
        properties.entry("publicNetworkAccess").or_insert(json!("Enabled"));
        properties.entry("virtualNetworkType").or_insert(json!("None"));
        let etag = etag_seq.issue();
        let tags = body.get("tags").and_then(Value::as_object).cloned().unwrap_or_default();
        let identity = body.get("identity").cloned();
        let created = match services.get_mut(&key) {
            Some(svc) => {
                svc.location = location;
                svc.sku = sku;
                svc.tags = tags;
                svc.identity = identity;
                svc.properties = properties;
                svc.etag = etag;
                false
            }
            None => {
                let mut svc = Service {
                    subscription_id: s.subscription_id.clone(),
                    resource_group: rg_name,
                    name: s.name.clone(),
                    etag,
                    location,
                    sku,
                    identity,
                    tags,
                    properties,
                    policy: None,
                    products: Table::new(),
                    apis: Table::new(),
                    subscriptions: Table::new(),
                    backends: Table::new(),
                    named_values: Table::new(),
                    loggers: Table::new(),
                    diagnostics: Table::new(),
                    users: Table::new(),
                };
                add_builtins(&mut svc, etag_seq, &created_at);
                services.insert(key.clone(), svc);
                true
            }
        };
        let svc = &services[&key];
        let mut r = crud::written(created, render(svc), &svc.etag);
        if created {
            r.status = StatusCode::CREATED;
        }
        Ok(r)
    })
}

/// The built-ins every new APIM instance has: the Administrator user, the `master`
/// subscription and the default global policy.
pub fn add_builtins(svc: &mut Service, seq: &mut EtagSeq, created: &str) {
    let id = svc.id();
    svc.users.insert(
        "1".into(),
        Entity {
            name: "1".into(),
            etag: seq.issue(),
            properties: json!({
                "firstName": "Administrator", "lastName": "", "email": svc.properties.get("publisherEmail").cloned().unwrap_or(json!("admin@contoso.com")),
                "state": "active", "registrationDate": created, "note": null, "identities": [{"provider": "Azure", "id": "admin@contoso.com"}]
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        },
    );
    svc.subscriptions.insert(
        "master".into(),
        Entity {
            name: "master".into(),
            etag: seq.issue(),
            properties: json!({
                "ownerId": format!("{id}/users/1"),
                "scope": format!("{id}/"),
                "displayName": "Built-in all-access subscription",
                "state": "active",
                "createdDate": created,
                "startDate": null, "expirationDate": null, "endDate": null, "notificationDate": null, "stateComment": null,
                "allowTracing": false,
                "primaryKey": crate::util::random_key(),
                "secondaryKey": crate::util::random_key(),
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        },
    );
    svc.policy = Some(Entity {
        name: "policy".into(),
        etag: seq.issue(),
        properties: json!({"value": crate::validate::policy::normalize(crate::seed::DEFAULT_GLOBAL_POLICY)})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    });
}
