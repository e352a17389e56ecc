//! What every ARM response shares: the error envelope, the bearer-token check, api-version
//! rules, request/correlation ids, throttling headers, and fault injection.
//!
//! The middleware `layer` wraps every route except `/_emulator/*` (so routes added later, such
//! as the telemetry's `Microsoft.Insights` paths, get the same treatment). Order, as ARM does it:
//! authentication (401) → injected faults → `api-version` present (400) → handler. Which
//! api-versions are *supported* is per resource provider, so APIM's list is checked by the APIM
//! dispatcher (`SUPPORTED_API_VERSIONS`), not here.
//!
//! Every response carries `x-ms-request-id`, `x-ms-correlation-request-id` (the client's
//! `x-ms-correlation-request-id`, else its `x-ms-client-request-id`, else a new id),
//! `x-ms-routing-request-id`, the client's `x-ms-client-request-id` echoed, and
//! `x-ms-ratelimit-remaining-subscription-{reads|writes|deletes}` by verb class.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::Emulator;
use crate::faults::FaultAction;
use crate::store::PersistError;
use crate::util::uuid_v4;
use crate::validate::FieldError;

/// The APIM api-versions the emulator serves (the latest stable and the previews after it).
pub const SUPPORTED_API_VERSIONS: &[&str] = &[
    "2024-05-01",
    "2024-06-01-preview",
    "2024-10-01-preview",
    "2025-03-01-preview",
    "2025-09-01-preview",
    "2026-03-01-preview",
];

/// An ARM error: status plus `{"error":{"code","message","details"?}}` (field problems
/// carry their `target` in `details`).
#[derive(Debug, Clone)]
pub struct ArmError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Vec<Value>,
    pub headers: Vec<(&'static str, String)>,
}

impl ArmError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self { status, code: code.into(), message: message.into(), details: Vec::new(), headers: Vec::new() }
    }

    /// 404 `ResourceNotFound` with APIM's "<Entity> not found." message.
    pub fn not_found(label: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFound", format!("{label} not found."))
    }

    /// 400 `ValidationError` with one detail per field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let mut e =
            Self::new(StatusCode::BAD_REQUEST, "ValidationError", "One or more fields contain incorrect values:");
        e.details = errors
            .into_iter()
            .map(|f| json!({"code": "ValidationError", "target": f.target, "message": f.message}))
            .collect();
        e
    }

    /// 400 `ValidationError` about a single field.
    pub fn field(target: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError { target: target.into(), message: message.into() }])
    }

    /// A feature Azure has and the emulator does not: 400 `ValidationError` whose message and
    /// detail (at `target`) name the feature and say what the emulator supports instead.
    pub fn not_emulated(target: &str, feature: &str, instead: &str) -> Self {
        let sentence = format!("{feature} is not emulated by the APIM emulator; {instead}");
        let mut e = Self::field(target, sentence.clone());
        e.message = sentence;
        e
    }

    /// 409 `Conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", message)
    }

    /// 400 `InvalidRequestContent`, ARM's answer to a body it cannot deserialise.
    pub fn invalid_content(why: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: '{why}'."),
        )
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut err = json!({"code": self.code, "message": self.message});
        if !self.details.is_empty() {
            err["details"] = Value::Array(self.details.clone());
        }
        json!({ "error": err })
    }
}

impl From<PersistError> for ArmError {
    fn from(e: PersistError) -> Self {
        ArmError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", e.0)
    }
}

impl IntoResponse for ArmError {
    fn into_response(self) -> Response {
        let mut resp = json_response(self.status, &self.body());
        for (k, v) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(v) {
                resp.headers_mut().insert(*k, v);
            }
        }
        resp
    }
}

/// A successful ARM response: status, optional JSON body, optional ETag (sent quoted).
#[derive(Debug)]
pub struct ArmResponse {
    pub status: StatusCode,
    pub body: Option<Value>,
    pub etag: Option<String>,
    pub headers: Vec<(&'static str, String)>,
}

impl ArmResponse {
    pub fn new(status: StatusCode, body: Option<Value>, etag: Option<String>) -> Self {
        Self { status, body, etag, headers: Vec::new() }
    }
    pub fn ok(body: Value) -> Self {
        Self::new(StatusCode::OK, Some(body), None)
    }
}

impl IntoResponse for ArmResponse {
    fn into_response(self) -> Response {
        let mut resp = match &self.body {
            Some(b) => json_response(self.status, b),
            None => {
                let mut r = Response::new(Body::empty());
                *r.status_mut() = self.status;
                r
            }
        };
        if let Some(etag) = &self.etag
            && let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\""))
        {
            resp.headers_mut().insert(header::ETAG, v);
        }
        for (k, v) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(v) {
                resp.headers_mut().insert(*k, v);
            }
        }
        resp
    }
}

/// Serialises `body` as `application/json; charset=utf-8`.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    r
}

/// Checks the `Authorization: Bearer <token>` header the way ARM answers bad credentials.
pub fn authenticate(headers: &HeaderMap, token: &str) -> Result<(), ArmError> {
    let www = |desc: &str| {
        format!(
            "Bearer authorization_uri=\"https://login.microsoftonline.com/common\", error=\"invalid_token\", error_description=\"{desc}\""
        )
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        let mut e = ArmError::new(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        );
        e.headers
            .push(("www-authenticate", www("The authentication failed because of missing 'Authorization' header.")));
        return Err(e);
    };
    let value = value.to_str().unwrap_or("");
    let Some(presented) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) else {
        let mut e = ArmError::new(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        );
        e.headers.push((
            "www-authenticate",
            www("The authentication failed because the 'Authorization' header is not a bearer token."),
        ));
        return Err(e);
    };
    if !constant_time_eq(presented.trim().as_bytes(), token.as_bytes()) {
        let mut e =
            ArmError::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "The access token is invalid.");
        e.headers.push(("www-authenticate", www("The access token is invalid.")));
        return Err(e);
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of the `api-version` query parameter, if present (first occurrence).
pub fn api_version(query: Option<&str>) -> Option<String> {
    let q = query?;
    q.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == "api-version").then(|| crate::util::percent_decode(v, true))
    })
}

/// 400 `MissingApiVersionParameter`.
pub fn missing_api_version() -> ArmError {
    ArmError::new(
        StatusCode::BAD_REQUEST,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )
}

/// 400 `NoRegisteredProviderFound` for an api-version APIM does not serve.
pub fn unsupported_api_version(version: &str, location: &str, resource_type: &str) -> ArmError {
    ArmError::new(
        StatusCode::BAD_REQUEST,
        "NoRegisteredProviderFound",
        format!(
            "No registered resource provider found for location '{location}' and API version '{version}' for type '{resource_type}'. The supported api-versions are '{}'. The supported locations are 'eastus, westeurope, swedencentral, northcentralus, westus3'.",
            SUPPORTED_API_VERSIONS.join(", ")
        ),
    )
}

/// Marks a response whose connection must be dropped without an answer (fault injection).
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// The remaining-request headers. ARM's per-principal token buckets hold 250 reads and 200
/// writes/deletes; the emulator reports a full bucket minus this request (it does not throttle
/// unless a fault says so).
fn ratelimit_header(method: &Method) -> (&'static str, &'static str) {
    match *method {
        Method::GET | Method::HEAD => ("x-ms-ratelimit-remaining-subscription-reads", "249"),
        Method::DELETE => ("x-ms-ratelimit-remaining-subscription-deletes", "199"),
        _ => ("x-ms-ratelimit-remaining-subscription-writes", "199"),
    }
}

/// The ARM middleware (see the module docs).
pub async fn layer(State(emu): State<Emulator>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/_emulator") {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let (uri, headers) = (req.uri().clone(), req.headers().clone());
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let client_request_id = header("x-ms-client-request-id");
    let correlation =
        header("x-ms-correlation-request-id").or_else(|| client_request_id.clone()).unwrap_or_else(uuid_v4);
    let request_id = uuid_v4();

    let mut resp = match pre_checks(&emu, &method, &uri, &headers).await {
        Ok(()) => next.run(req).await,
        Err(r) => r,
    };

    let h = resp.headers_mut();
    let mut put = |k: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    put("x-ms-request-id", &request_id);
    put("x-ms-correlation-request-id", &correlation);
    put("x-ms-routing-request-id", &format!("EASTUS:{}:{request_id}", routing_time()));
    if let Some(c) = &client_request_id {
        put("x-ms-client-request-id", c);
    }
    let (k, v) = ratelimit_header(&method);
    put(k, v);
    put("cache-control", "no-cache");
    resp
}

async fn pre_checks(
    emu: &Emulator,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> Result<(), Response> {
    // The Log Analytics / Application Insights query APIs (`/v1/...`) take the same bearer token
    // but answer with their own error shape and need no api-version.
    let query_api = uri.path().starts_with("/v1/");
    if let Err(e) = authenticate(headers, emu.token()) {
        if query_api {
            let mut r = json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"error": {"message": "Valid authentication was not provided", "code": "AuthorizationRequiredError", "correlationId": uuid_v4()}}),
            );
            for (k, v) in &e.headers {
                if let Ok(v) = HeaderValue::from_str(v) {
                    r.headers_mut().insert(*k, v);
                }
            }
            return Err(r);
        }
        return Err(e.into_response());
    }
    if let Some(action) = emu.faults().check(method, uri.path()) {
        if action.latency_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(action.latency_ms)).await;
        }
        if action.drop || action.status.is_some() {
            return Err(fault_response(action, method, uri));
        }
    }
    if !query_api && api_version(uri.query()).is_none() {
        return Err(missing_api_version().into_response());
    }
    Ok(())
}

fn fault_response(action: FaultAction, method: &Method, uri: &axum::http::Uri) -> Response {
    if action.drop {
        let stream = error_stream();
        let mut r = Response::new(Body::from_stream(stream));
        r.extensions_mut().insert(DropConnection);
        return r;
    }
    let status = StatusCode::from_u16(action.status.unwrap_or(500)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let read = matches!(*method, Method::GET | Method::HEAD);
    let sub = uri.path().split('/').nth(2).unwrap_or("").to_string();
    let (code, message) = match (action.code.clone(), action.message.clone()) {
        (Some(c), Some(m)) => (c, m),
        (c, m) => {
            let (dc, dm) = match status.as_u16() {
                429 => (
                    "SubscriptionRequestsThrottled".to_string(),
                    format!(
                        "Number of '{}' requests for subscription '{sub}' actor '00000000-0000-0000-0000-0000000000aa' exceeded. Please try again after '{}' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling for additional information.",
                        if read { "read" } else { "write" },
                        action.retry_after.unwrap_or(1)
                    ),
                ),
                500 => ("InternalServerError".to_string(), "Encountered internal server error. Diagnostic information: timestamp, subscription id, tracking id and correlation id are in the response headers.".to_string()),
                502 => ("BadGateway".to_string(), "The gateway did not receive a response from 'Microsoft.ApiManagement' within the specified time period.".to_string()),
                503 => ("ServiceUnavailable".to_string(), "The server (leader) is currently unable to handle the request due to a temporary overloading or maintenance of the server. Please try again later.".to_string()),
                504 => ("GatewayTimeout".to_string(), "The gateway did not receive a response from 'Microsoft.ApiManagement' within the specified time period.".to_string()),
                _ => (status.canonical_reason().unwrap_or("Error").replace(' ', ""), format!("Injected fault: HTTP {}.", status.as_u16())),
            };
            (c.unwrap_or(dc), m.unwrap_or(dm))
        }
    };
    let mut e = ArmError::new(status, &code, message);
    if let Some(s) = action.retry_after {
        e.headers.push(("retry-after", s.to_string()));
    }
    e.into_response()
}

/// A body that fails at once, so even a plain `axum::serve` aborts the connection.
fn error_stream() -> impl futures_util::Stream<Item = Result<axum::body::Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::once(async {
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "fault injection: connection dropped"))
    })
}

fn routing_time() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let ts = crate::util::format_rfc3339_millis(d.as_secs() as i64, 0);
    // 2025-03-11T09:14:27.000Z -> 20250311T091427Z
    format!("{}{}{}T{}{}{}Z", &ts[0..4], &ts[5..7], &ts[8..10], &ts[11..13], &ts[14..16], &ts[17..19])
}
