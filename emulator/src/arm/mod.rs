//! The ARM control plane of Microsoft.ApiManagement: request parsing and dispatch.
//!
//! One fallback handler (`entry`) serves every ARM path, because ARM paths are
//! case-insensitive in their fixed segments (`resourceGroups` vs `resourcegroups`, `namedValues`
//! vs `namedvalues`) while router patterns are not. `dispatch` splits the path, checks the
//! api-version against APIM's list, finds the service, and routes on the chain of collection
//! names after it to one module per resource family. Explicit axum routes added to the router
//! (for example the telemetry's `.../providers/Microsoft.Insights/metrics`) take precedence over
//! this fallback and still pass through the envelope middleware.
//!
//! Invariants: handlers for GET/HEAD take the store's read lock; every other verb takes the
//! write lock once and validates before mutating. Handlers never see secrets leave: rendering
//! is done by each family's `render`, which drops keys and secret values.

pub mod apis;
pub mod backends;
pub mod crud;
pub mod diagnostics;
pub mod envelope;
pub mod filter;
pub mod loggers;
pub mod named_values;
pub mod paging;
pub mod policies;
pub mod products;
pub mod service;
pub mod subscriptions;
pub mod users;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::Emulator;
use crate::store::{EtagSeq, Service, State as World};
use crate::util::{parse_query, percent_decode};
use envelope::{ArmError, ArmResponse, SUPPORTED_API_VERSIONS, unsupported_api_version};
use policies::Scope;

/// One ARM request, parsed.
#[derive(Debug)]
pub struct ArmRequest {
    pub method: Method,
    /// The raw path (as sent, not decoded).
    pub path: String,
    query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ArmRequest {
    pub fn new(method: Method, uri: &Uri, headers: HeaderMap, body: Bytes) -> Self {
        Self {
            method,
            path: uri.path().to_string(),
            query: uri.query().map(parse_query).unwrap_or_default(),
            headers,
            body,
        }
    }

    /// A query parameter by name (case-insensitive, first occurrence).
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// All query parameters, decoded, in order.
    pub fn query_pairs(&self) -> &[(String, String)] {
        &self.query
    }

    /// The api-version (the middleware has already checked it is present).
    pub fn api_version(&self) -> &str {
        self.query("api-version").unwrap_or("")
    }

    /// `scheme://host` as the client addressed us (for absolute `nextLink`s).
    pub fn base_url(&self) -> String {
        let host = self.headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        let scheme = self
            .headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|p| *p == "https")
            .unwrap_or("http");
        format!("{scheme}://{host}")
    }
}

/// Identifies the service a request addresses.
#[derive(Debug, Clone)]
pub struct ServiceRef {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
}

impl ServiceRef {
    fn key(&self) -> String {
        World::service_key(&self.subscription_id, &self.resource_group, &self.name)
    }

    /// ARM's 404s for a missing subscription, resource group or service.
    pub fn missing(&self, world: &World) -> ArmError {
        let sub_known =
            world.resource_groups.values().any(|g| g.subscription_id.eq_ignore_ascii_case(&self.subscription_id));
        if !sub_known {
            return ArmError::new(
                StatusCode::NOT_FOUND,
                "SubscriptionNotFound",
                format!("The subscription '{}' could not be found.", self.subscription_id),
            );
        }
        let rg_key = format!("{}/{}", self.subscription_id, self.resource_group).to_ascii_lowercase();
        if !world.resource_groups.contains_key(&rg_key) {
            return ArmError::new(
                StatusCode::NOT_FOUND,
                "ResourceGroupNotFound",
                format!("Resource group '{}' could not be found.", self.resource_group),
            );
        }
        ArmError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!(
                "The Resource 'Microsoft.ApiManagement/service/{}' under resource group '{}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
                self.name, self.resource_group
            ),
        )
    }
}

/// What a family handler gets: the emulator, the request, and the addressed service.
pub struct Ctx<'a> {
    pub emu: &'a Emulator,
    pub req: &'a ArmRequest,
    pub svc: ServiceRef,
}

impl Ctx<'_> {
    /// Runs `f` on the service under the read lock (404 if the service does not exist).
    pub fn read<R>(&self, f: impl FnOnce(&Service) -> Result<R, ArmError>) -> Result<R, ArmError> {
        self.emu.store().read(|w| match w.services.get(&self.svc.key()) {
            Some(s) => f(s),
            None => Err(self.svc.missing(w)),
        })
    }

    /// Runs `f` on the service under the write lock; persisted if it succeeds.
    pub fn write<R>(&self, f: impl FnOnce(&mut Service, &mut EtagSeq) -> Result<R, ArmError>) -> Result<R, ArmError> {
        self.emu.store().write(|w| {
            if !w.services.contains_key(&self.svc.key()) {
                return Err(self.svc.missing(w));
            }
            let World { services, etag_seq, .. } = w;
            let svc = services.get_mut(&self.svc.key()).expect("checked above");
            f(svc, etag_seq)
        })
    }

    /// Read lock for GET/HEAD, write lock otherwise.
    pub fn is_read(&self) -> bool {
        matches!(self.req.method, Method::GET | Method::HEAD)
    }
}

/// 405 for a verb the resource does not support.
pub fn method_not_allowed(req: &ArmRequest) -> ArmError {
    ArmError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("The requested resource does not support http method '{}'.", req.method),
    )
}

/// The axum fallback that serves every ARM path.
pub async fn entry(State(emu): State<Emulator>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let req = ArmRequest::new(method, &uri, headers, body);
    if crate::telemetry::metrics::is_metrics_path(&req.path) {
        // Azure Monitor metrics (Microsoft.Insights) on the service or its App Insights
        // component: may simulate the telemetry history first, so run it off the async workers.
        let job = tokio::task::spawn_blocking(move || {
            crate::telemetry::metrics::route(&emu, &req).unwrap_or_else(|| match dispatch(&emu, &req) {
                Ok(r) => r.into_response(),
                Err(e) => e.into_response(),
            })
        });
        return match job.await {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
    }
    match dispatch(&emu, &req) {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    }
}

fn invalid_path(req: &ArmRequest) -> ArmError {
    ArmError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("No HTTP resource was found that matches the request URI '{}'.", req.path),
    )
}

/// Routes one request.
pub fn dispatch(emu: &Emulator, req: &ArmRequest) -> Result<ArmResponse, ArmError> {
    let segs: Vec<String> = req.path.split('/').filter(|s| !s.is_empty()).map(|s| percent_decode(s, false)).collect();
    let lit = |i: usize, s: &str| segs.get(i).is_some_and(|x| x.eq_ignore_ascii_case(s));
    if !lit(0, "subscriptions") || segs.len() < 2 {
        return Err(invalid_path(req));
    }
    let sub = segs[1].clone();
    // GET /subscriptions/{sub}/providers/Microsoft.ApiManagement/service
    if segs.len() == 5 && lit(2, "providers") && lit(3, "Microsoft.ApiManagement") && lit(4, "service") {
        check_api_version(emu, req, None, "service")?;
        return service::list(emu, req, &sub, None);
    }
    if !(segs.len() >= 7 && lit(2, "resourceGroups") && lit(4, "providers")) {
        return Err(invalid_path(req));
    }
    if !lit(5, "Microsoft.ApiManagement") {
        return Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "InvalidResourceNamespace",
            format!("The resource namespace '{}' is invalid.", segs[5]),
        ));
    }
    if !lit(6, "service") {
        return Err(invalid_type(req, &segs[6..], &segs[6]));
    }
    let rg = segs[3].clone();
    if segs.len() == 7 {
        check_api_version(emu, req, None, "service")?;
        return service::list(emu, req, &sub, Some(&rg));
    }
    let svc = ServiceRef { subscription_id: sub, resource_group: rg, name: segs[7].clone() };
    // Collections are at even positions after the service name; lower-case them for matching.
    let rest: Vec<String> = segs[8..]
        .iter()
        .enumerate()
        .map(|(i, s)| if i % 2 == 0 { s.to_ascii_lowercase() } else { s.clone() })
        .collect();
    let type_name =
        std::iter::once("service".to_string()).chain(rest.iter().step_by(2).cloned()).collect::<Vec<_>>().join("/");
    check_api_version(emu, req, Some(&svc), &type_name)?;
    let ctx = Ctx { emu, req, svc };
    let r: Vec<&str> = rest.iter().map(String::as_str).collect();
    let m = &req.method;
    match r.as_slice() {
        [] => service::item(&ctx),

        ["products"] => products::collection(&ctx),
        ["products", p] => products::item(&ctx, p),
        ["products", p, "policies"] => policies::collection(&ctx, Scope::Product(p.to_string())),
        ["products", p, "policies", id] => policies::item(&ctx, Scope::Product(p.to_string()), id),
        ["products", p, "apis"] => products::apis_collection(&ctx, p),
        ["products", p, "apis", a] => products::api_link_by_api(&ctx, p, a),
        ["products", p, "apilinks"] => products::links_collection(&ctx, p),
        ["products", p, "apilinks", l] => products::link_item(&ctx, p, l),
        ["products", p, "subscriptions"] => subscriptions::by_product(&ctx, p),

        ["subscriptions"] => subscriptions::collection(&ctx),
        ["subscriptions", s] => subscriptions::item(&ctx, s),
        ["subscriptions", s, "listsecrets"] if m == Method::POST => subscriptions::list_secrets(&ctx, s),
        ["subscriptions", s, "regenerateprimarykey"] if m == Method::POST => {
            subscriptions::regenerate(&ctx, s, "primaryKey")
        }
        ["subscriptions", s, "regeneratesecondarykey"] if m == Method::POST => {
            subscriptions::regenerate(&ctx, s, "secondaryKey")
        }
        ["subscriptions", _, "listsecrets" | "regenerateprimarykey" | "regeneratesecondarykey"] => {
            Err(method_not_allowed(req))
        }

        ["apis"] => apis::collection(&ctx),
        ["apis", a] => apis::item(&ctx, a),
        ["apis", a, "operations"] => apis::operations_collection(&ctx, a),
        ["apis", a, "operations", o] => apis::operation_item(&ctx, a, o),
        ["apis", a, "operations", o, "policies"] => {
            policies::collection(&ctx, Scope::Operation(a.to_string(), o.to_string()))
        }
        ["apis", a, "operations", o, "policies", id] => {
            policies::item(&ctx, Scope::Operation(a.to_string(), o.to_string()), id)
        }
        ["apis", a, "policies"] => policies::collection(&ctx, Scope::Api(a.to_string())),
        ["apis", a, "policies", id] => policies::item(&ctx, Scope::Api(a.to_string()), id),
        ["apis", a, "products"] => products::by_api(&ctx, a),
        ["apis", a, "diagnostics"] => diagnostics::collection(&ctx, Some(a)),
        ["apis", a, "diagnostics", d] => diagnostics::item(&ctx, Some(a), d),

        ["policies"] => policies::collection(&ctx, Scope::Global),
        ["policies", id] => policies::item(&ctx, Scope::Global, id),

        ["backends"] => backends::collection(&ctx),
        ["backends", b] => backends::item(&ctx, b),
        ["backends", b, "reconnect"] if m == Method::POST => backends::reconnect(&ctx, b),

        ["namedvalues"] => named_values::collection(&ctx),
        ["namedvalues", n] => named_values::item(&ctx, n),
        ["namedvalues", n, "listvalue"] if m == Method::POST => named_values::list_value(&ctx, n),
        ["namedvalues", n, "refreshsecret"] if m == Method::POST => named_values::refresh_secret(&ctx, n),

        ["loggers"] => loggers::collection(&ctx),
        ["loggers", l] => loggers::item(&ctx, l),

        ["diagnostics"] => diagnostics::collection(&ctx, None),
        ["diagnostics", d] => diagnostics::item(&ctx, None, d),

        ["users"] => users::collection(&ctx),
        ["users", u] => users::item(&ctx, u),
        ["users", u, "subscriptions"] => subscriptions::by_user(&ctx, u),

        _ => Err(invalid_type(req, &segs[6..], &type_name)),
    }
}

fn invalid_type(req: &ArmRequest, _segs: &[String], type_name: &str) -> ArmError {
    ArmError::new(
        StatusCode::NOT_FOUND,
        "InvalidResourceType",
        format!(
            "The resource type '{type_name}' could not be found in the namespace 'Microsoft.ApiManagement' for api version '{}'.",
            req.api_version()
        ),
    )
}

fn check_api_version(
    emu: &Emulator,
    req: &ArmRequest,
    svc: Option<&ServiceRef>,
    type_name: &str,
) -> Result<(), ArmError> {
    let v = req.api_version();
    if SUPPORTED_API_VERSIONS.contains(&v) {
        return Ok(());
    }
    let location = svc
        .and_then(|s| emu.store().read(|w| w.services.get(&s.key()).map(|s| s.location.clone())))
        .unwrap_or_else(|| "East US".to_string())
        .to_ascii_lowercase()
        .replace(' ', "");
    Err(unsupported_api_version(v, &location, type_name))
}
