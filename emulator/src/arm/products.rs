//! Products, and the product↔API links in both of APIM's forms.
//!
//! Products: `displayName` required (1–300), `description` ≤ 1000, `state`
//! `notPublished|published` (default `notPublished`), `subscriptionRequired` (default true),
//! `approvalRequired` (default false), `subscriptionsLimit`. `$filter`: `name`, `displayName`,
//! `description`, `terms` (all operators) and `state` (`eq`). DELETE takes
//! `deleteSubscriptions=true` to remove the product's subscriptions; without it a product that
//! still has subscriptions is refused with 409 `Conflict` (emulator choice). Deleting a product
//! removes its policy and API links.
//!
//! Links: `products/{p}/apis/{a}` (PUT 201/200 returning the API contract, HEAD 204/404,
//! DELETE 200/204, GET on the collection lists linked APIs) and `products/{p}/apiLinks/{link}`
//! (body `{"properties":{"apiId": <full or relative id>}}`; `apiId` returned as a full id). Both
//! views read and write the same links; a link made through `apis/{a}` is named after the API.
//! `apis/{a}/products` lists the products an API is in.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::crud::{self, fe};
use super::envelope::{ArmError, ArmResponse};
use super::filter::{FieldValue, Ops, f};
use super::{Ctx, apis, method_not_allowed, paging};
use crate::store::{Entity, Product, Props, Service, Table, key};

pub const TYPE: &str = "Microsoft.ApiManagement/service/products";
const LINK_TYPE: &str = "Microsoft.ApiManagement/service/products/apiLinks";
const LABEL: &str = "Product";

pub const FIELDS: &[super::filter::FieldSpec] = &[
    f("name", Ops::All),
    f("displayName", Ops::All),
    f("description", Ops::All),
    f("terms", Ops::All),
    f("state", Ops::Eq),
];

/// The product contract.
pub fn render(svc: &Service, e: &Entity) -> Value {
    crud::resource(format!("{}/products/{}", svc.id(), e.name), TYPE, &e.name, Value::Object(e.properties.clone()))
}

fn field(e: &Entity, name: &str) -> FieldValue {
    match name {
        "name" => FieldValue::Str(e.name.clone()),
        other => e.str(other).map(|s| FieldValue::Str(s.to_string())).unwrap_or(FieldValue::Null),
    }
}

fn product<'a>(svc: &'a Service, p: &str) -> Result<&'a Product, ArmError> {
    svc.products.get(&key(p)).ok_or_else(|| ArmError::not_found(LABEL))
}

fn product_mut<'a>(svc: &'a mut Service, p: &str) -> Result<&'a mut Product, ArmError> {
    svc.products.get_mut(&key(p)).ok_or_else(|| ArmError::not_found(LABEL))
}

fn validate(props: &Props) -> Result<Props, ArmError> {
    let mut errors = Vec::new();
    crud::required_string(props, "displayName", 300, &mut errors);
    crud::optional_string(props, "description", 1000, &mut errors);
    crud::optional_string(props, "terms", 10_000, &mut errors);
    crud::optional_bool(props, "subscriptionRequired", &mut errors);
    crud::optional_bool(props, "approvalRequired", &mut errors);
    let state = crud::optional_enum(props, "state", &["notPublished", "published"], &mut errors);
    if let Some(v) = props.get("subscriptionsLimit")
        && !v.is_null()
        && v.as_i64().is_none_or(|n| n < 0)
    {
        errors.push(fe("subscriptionsLimit", "'subscriptionsLimit' must be a non-negative integer or null."));
    }
    let sub_required = props.get("subscriptionRequired").and_then(Value::as_bool).unwrap_or(true);
    if !sub_required && props.get("approvalRequired").and_then(Value::as_bool) == Some(true) {
        errors.push(fe("approvalRequired", "'approvalRequired' can only be true when 'subscriptionRequired' is true."));
    }
    crud::finish(errors)?;
    let mut out = props.clone();
    out.insert("state".into(), json!(state.unwrap_or_else(|| "notPublished".into())));
    out.entry("subscriptionRequired").or_insert(json!(true));
    if sub_required {
        out.entry("approvalRequired").or_insert(json!(false));
        out.entry("subscriptionsLimit").or_insert(Value::Null);
    }
    Ok(out)
}

/// `products`
pub fn collection(ctx: &Ctx) -> Result<ArmResponse, ArmError> {
    if ctx.req.method != Method::GET {
        return Err(method_not_allowed(ctx.req));
    }
    ctx.read(|svc| paging::list(ctx.req, svc.products.values().map(|p| &p.entity), FIELDS, field, |e| render(svc, e)))
}

/// `products/{p}`
pub fn item(ctx: &Ctx, name: &str) -> Result<ArmResponse, ArmError> {
    let req = ctx.req;
    match req.method {
        Method::GET | Method::HEAD => ctx.read(|svc| {
            let p = product(svc, name)?;
            Ok(crud::read_response(req, render(svc, &p.entity), &p.entity.etag))
        }),
        Method::PUT => {
            crud::check_name(name, 256, "product id")?;
            let input = crud::body_properties(req)?;
            let props = validate(&input)?;
            ctx.write(|svc, seq| {
                let existing = svc.products.get(&key(name)).map(|p| p.entity.etag.as_str());
                crud::check_put(req, existing, LABEL, name)?;
                let etag = seq.issue();
                let created = match svc.products.get_mut(&key(name)) {
                    Some(p) => {
                        p.entity.properties = props;
                        p.entity.etag = etag;
                        false
                    }
                    None => {
                        let entity = Entity { name: name.to_string(), etag, properties: props };
                        svc.products.insert(key(name), Product { entity, policy: None, api_links: Table::new() });
                        true
                    }
                };
                let p = &svc.products[&key(name)];
                Ok(crud::written(created, render(svc, &p.entity), &p.entity.etag))
            })
        }
        Method::PATCH => {
            let m = crud::require_if_match(req)?;
            let input = crud::body_properties(req)?;
            ctx.write(|svc, seq| {
                let p = product(svc, name)?;
                crud::check_match(&m, &p.entity.etag, LABEL, name)?;
                let props = validate(&crud::merge(&p.entity.properties, &input))?;
                let p = product_mut(svc, name)?;
                p.entity.properties = props;
                p.entity.etag = seq.issue();
                let p = &svc.products[&key(name)];
                Ok(crud::read_response(req, render(svc, &p.entity), &p.entity.etag))
            })
        }
        Method::DELETE => {
            let m = crud::require_if_match(req)?;
            let delete_subs = req.query("deleteSubscriptions").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            ctx.write(|svc, seq| {
                let Some(p) = svc.products.get(&key(name)) else { return Ok(crud::deleted(false)) };
                crud::check_match(&m, &p.entity.etag, LABEL, name)?;
                let scope = format!("{}/products/{}", svc.id(), p.entity.name).to_ascii_lowercase();
                let subs: Vec<String> = svc
                    .subscriptions
                    .iter()
                    .filter(|(_, s)| s.str("scope").is_some_and(|sc| sc.eq_ignore_ascii_case(&scope)))
                    .map(|(k, _)| k.clone())
                    .collect();
                if !subs.is_empty() && !delete_subs {
                    return Err(ArmError::conflict(format!(
                        "Product '{name}' has {} subscription(s). Delete them first, or pass deleteSubscriptions=true to delete them with the product.",
                        subs.len()
                    )));
                }
                for k in subs {
                    svc.subscriptions.remove(&k);
                }
                svc.products.remove(&key(name));
                seq.bump();
                Ok(crud::deleted(true))
            })
        }
        _ => Err(method_not_allowed(req)),
    }
}

/// The API id a link points at (last segment of `apiId`).
fn linked_api(link: &Entity) -> Option<&str> {
    link.str("apiId").and_then(|id| id.rsplit('/').next())
}

fn find_link<'a>(p: &'a Product, api: &str) -> Option<(&'a String, &'a Entity)> {
    p.api_links.iter().find(|(_, l)| linked_api(l).is_some_and(|a| a.eq_ignore_ascii_case(api)))
}

/// `products/{p}/apis`: the linked APIs.
pub fn apis_collection(ctx: &Ctx, p: &str) -> Result<ArmResponse, ArmError> {
    if ctx.req.method != Method::GET {
        return Err(method_not_allowed(ctx.req));
    }
    ctx.read(|svc| {
        let prod = product(svc, p)?;
        let linked: Vec<&Entity> = prod
            .api_links
            .values()
            .filter_map(linked_api)
            .filter_map(|a| svc.apis.get(&key(a)).map(|a| &a.entity))
            .collect();
        let parent = format!("{}/products/{}", svc.id(), prod.entity.name);
        paging::list(ctx.req, linked.into_iter(), apis::FIELDS, apis::field, |e| {
            crud::nested_item(apis::render(svc, e), &parent, "apis", "Microsoft.ApiManagement/service/products/apis")
        })
    })
}

/// `products/{p}/apis/{a}`: link (PUT), check (HEAD), unlink (DELETE).
pub fn api_link_by_api(ctx: &Ctx, p: &str, a: &str) -> Result<ArmResponse, ArmError> {
    let req = ctx.req;
    match req.method {
        Method::HEAD => ctx.read(|svc| {
            let prod = product(svc, p)?;
            if find_link(prod, a).is_some() && svc.apis.contains_key(&key(a)) {
                Ok(ArmResponse::new(StatusCode::NO_CONTENT, None, None))
            } else {
                Err(ArmError::not_found("Api"))
            }
        }),
        Method::PUT => ctx.write(|svc, seq| {
            product(svc, p)?;
            let api = svc.apis.get(&key(a)).ok_or_else(|| ArmError::not_found("Api"))?;
            let api_name = api.entity.name.clone();
            let api_id = format!("{}/apis/{}", svc.id(), api_name);
            let prod = product_mut(svc, p)?;
            let created = find_link(prod, a).is_none();
            if created {
                let props = json!({ "apiId": api_id }).as_object().cloned().unwrap_or_default();
                crud::upsert(&mut prod.api_links, seq, &api_name, props);
            }
            let api = &svc.apis[&key(a)];
            Ok(crud::written(created, apis::render(svc, &api.entity), &api.entity.etag))
        }),
        Method::DELETE => ctx.write(|svc, seq| {
            let prod = product_mut(svc, p)?;
            let Some((k, _)) = find_link(prod, a) else {
                return Ok(crud::deleted(false));
            };
            let k = k.clone();
            prod.api_links.remove(&k);
            seq.bump();
            Ok(crud::deleted(true))
        }),
        _ => Err(method_not_allowed(req)),
    }
}

fn render_link(svc: &Service, p: &Product, l: &Entity) -> Value {
    crud::resource(
        format!("{}/products/{}/apiLinks/{}", svc.id(), p.entity.name, l.name),
        LINK_TYPE,
        &l.name,
        Value::Object(l.properties.clone()),
    )
}

/// `products/{p}/apiLinks`
pub fn links_collection(ctx: &Ctx, p: &str) -> Result<ArmResponse, ArmError> {
    if ctx.req.method != Method::GET {
        return Err(method_not_allowed(ctx.req));
    }
    ctx.read(|svc| {
        let prod = product(svc, p)?;
        let fields = &[f("name", Ops::All), f("apiId", Ops::All)];
        paging::list(
            ctx.req,
            prod.api_links.values(),
            fields,
            |l: &Entity, n| match n {
                "name" => FieldValue::Str(l.name.clone()),
                _ => l.str("apiId").map(|s| FieldValue::Str(s.to_string())).unwrap_or(FieldValue::Null),
            },
            |l| render_link(svc, prod, l),
        )
    })
}

/// `products/{p}/apiLinks/{link}`
pub fn link_item(ctx: &Ctx, p: &str, link: &str) -> Result<ArmResponse, ArmError> {
    let req = ctx.req;
    match req.method {
        Method::GET | Method::HEAD => ctx.read(|svc| {
            let prod = product(svc, p)?;
            let l = prod.api_links.get(&key(link)).ok_or_else(|| ArmError::not_found("Product API link"))?;
            Ok(crud::read_response(req, render_link(svc, prod, l), &l.etag))
        }),
        Method::PUT => {
            crud::check_name(link, 80, "API link id")?;
            let input = crud::body_properties(req)?;
            ctx.write(|svc, seq| {
                product(svc, p)?;
                let Some(api_ref) = input.get("apiId").and_then(Value::as_str) else {
                    return Err(ArmError::validation(vec![fe(
                        "apiId",
                        "'apiId' is required: the full resource id of the API to link.",
                    )]));
                };
                let sid = svc.id();
                let api = crud::relative_to_service(&sid, api_ref)
                    .and_then(|rel| {
                        let parts: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
                        match parts.as_slice() {
                            [c, a] if c.eq_ignore_ascii_case("apis") => svc.apis.get(&key(a)),
                            _ => None,
                        }
                    })
                    .ok_or_else(|| {
                        ArmError::validation(vec![fe(
                            "apiId",
                            format!("API '{api_ref}' does not exist in this service."),
                        )])
                    })?;
                let api_id = format!("{sid}/apis/{}", api.entity.name);
                let prod = product_mut(svc, p)?;
                crud::check_put(
                    req,
                    prod.api_links.get(&key(link)).map(|l| l.etag.as_str()),
                    "Product API link",
                    link,
                )?;
                if let Some((k, _)) = find_link(prod, api_id.rsplit('/').next().unwrap_or_default())
                    && *k != key(link)
                {
                    return Err(ArmError::conflict(format!(
                        "The API is already linked to product '{p}' by link '{k}'."
                    )));
                }
                let props = json!({ "apiId": api_id }).as_object().cloned().unwrap_or_default();
                let (created, k) = crud::upsert(&mut prod.api_links, seq, link, props);
                let prod = &svc.products[&key(p)];
                let l = &prod.api_links[&k];
                Ok(crud::written(created, render_link(svc, prod, l), &l.etag))
            })
        }
        Method::DELETE => ctx.write(|svc, seq| {
            let prod = product_mut(svc, p)?;
            if let Some(m) = crud::if_match(req)
                && let Some(l) = prod.api_links.get(&key(link))
            {
                crud::check_match(&m, &l.etag, "Product API link", link)?;
            }
            let existed = prod.api_links.remove(&key(link)).is_some();
            if existed {
                seq.bump();
            }
            Ok(crud::deleted(existed))
        }),
        _ => Err(method_not_allowed(req)),
    }
}

/// `apis/{a}/products`: products that contain the API.
pub fn by_api(ctx: &Ctx, a: &str) -> Result<ArmResponse, ArmError> {
    if ctx.req.method != Method::GET {
        return Err(method_not_allowed(ctx.req));
    }
    ctx.read(|svc| {
        if !svc.apis.contains_key(&key(a)) {
            return Err(ArmError::not_found("Api"));
        }
        let prods: Vec<&Entity> =
            svc.products.values().filter(|p| find_link(p, a).is_some()).map(|p| &p.entity).collect();
        paging::list(ctx.req, prods.into_iter(), FIELDS, field, |e| render(svc, e))
    })
}
