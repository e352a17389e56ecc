//! The ARM client: the only code in the host that talks to Azure (or to the emulator).
//!
//! Invariants:
//! - every request goes to `endpoint` + the configured service id + a [`ScopedPath`]; the only
//!   absolute URLs followed are `nextLink`s, and only when they point under the same prefix;
//! - every request carries a fresh `x-ms-client-request-id`, which errors and logs repeat;
//! - the bearer token is added here and nowhere else, and is never logged or returned.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::LazyHttp;
use super::credential::Credential;
use super::retry::{self, Failure, RawResponse};
use super::scope::ScopedPath;

/// How to reach ARM and which service to govern.
#[derive(Debug, Clone)]
pub struct ArmTarget {
    /// `https://management.azure.com`, or the emulator's base URL.
    pub endpoint: String,
    /// `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ApiManagement/service/{name}`.
    pub service_id: String,
    /// api-version sent when a path does not give one.
    pub api_version: String,
}

/// The condition a write is sent under (`If-Match` / `If-None-Match`).
///
/// The host derives it from the state it read itself (see `changes::review`): the live ETag for
/// a resource that exists, create-only for one that does not. `AfterPreviousWrite` is a plan's
/// second write to the same resource; the apply step resolves it to the ETag its previous write
/// left before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(tag = "kind", content = "etag", rename_all = "kebab-case")]
pub enum Precondition {
    /// No header (reads; plugins' own wishes before the host has reviewed them).
    #[default]
    None,
    /// `If-Match: ETAG`: the resource must still be exactly as read (`*`: it must exist).
    IfMatch(String),
    /// `If-None-Match: *`: the resource must not exist (ARM answers 412 if it does).
    CreateOnly,
    /// The ETag the plan's previous write to this resource left (resolved before sending).
    AfterPreviousWrite,
}

impl Precondition {
    /// The plain `If-Match` form of older call sites.
    pub fn from_if_match(if_match: Option<&str>) -> Self {
        if_match.map_or(Precondition::None, |etag| Precondition::IfMatch(etag.to_string()))
    }

    /// How the precondition reads in a confirmation.
    pub fn describe(&self) -> String {
        match self {
            Precondition::None => "unconditional".into(),
            Precondition::IfMatch(etag) if etag == "*" => "only if it exists".into(),
            Precondition::IfMatch(etag) => format!("only if unchanged (If-Match {etag})"),
            Precondition::CreateOnly => "only if it still does not exist (If-None-Match: *)".into(),
            Precondition::AfterPreviousWrite => "only if unchanged since the previous write".into(),
        }
    }
}

/// A successful ARM answer.
#[derive(Debug, Clone)]
pub struct ArmResponse {
    pub status: u16,
    pub etag: Option<String>,
    pub body: String,
    /// The `x-ms-client-request-id` sent with the request.
    pub request_id: String,
}

/// Why an ARM call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ArmError {
    /// ARM answered with an error status.
    #[error("ARM answered {status} {code}: {message} (client request id {request_id})")]
    Upstream { status: u16, code: String, message: String, request_id: String },
    /// The request never got an answer.
    #[error("could not reach ARM: {message} (client request id {request_id})")]
    Transport { message: String, request_id: String },
    /// The host refused the request before sending it.
    #[error("{0}")]
    Refused(String),
}

impl ArmError {
    /// The HTTP status, when ARM answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ArmError::Upstream { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The ARM client. Cheap to clone.
#[derive(Clone)]
pub struct ArmClient {
    http: LazyHttp,
    target: ArmTarget,
    credential: Credential,
    retry: retry::RetryPolicy,
}

/// Longest time one ARM request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Most pages `list` follows before giving up (100 items a page: 100,000 items).
const MAX_PAGES: usize = 1000;

impl ArmClient {
    /// A client for `target`, authenticating with `credential`.
    pub fn new(target: ArmTarget, credential: Credential) -> anyhow::Result<Self> {
        let http = LazyHttp::new(|| {
            reqwest::Client::builder()
                .user_agent(concat!("azure-ai-gateway-mcp/", env!("CARGO_PKG_VERSION")))
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(Duration::from_secs(10))
                .pool_max_idle_per_host(32)
                .build()
        });
        Ok(Self { http, target, credential, retry: retry::RetryPolicy::from_env()? })
    }

    /// The same client with another retry policy.
    pub fn with_retry_policy(mut self, policy: retry::RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The governed service and endpoint.
    pub fn target(&self) -> &ArmTarget {
        &self.target
    }

    /// Who the credential is (for messages).
    pub fn identity(&self) -> String {
        self.credential.describe()
    }

    /// Resolves a plugin's path under the service.
    pub fn scope(&self, path: &str) -> Result<ScopedPath, ArmError> {
        ScopedPath::resolve(&self.target.service_id, path).map_err(|e| ArmError::Refused(e.0))
    }

    /// The URL of a scoped path.
    pub fn url(&self, path: &ScopedPath) -> String {
        path.url(&self.target.endpoint, &self.target.service_id, &self.target.api_version)
    }

    /// Sends one request to a scoped path.
    pub async fn send(
        &self,
        method: Method,
        path: &ScopedPath,
        if_match: Option<&str>,
        body: Option<&str>,
    ) -> Result<ArmResponse, ArmError> {
        self.send_url(method, &self.url(path), &Precondition::from_if_match(if_match), body).await
    }

    /// Sends one write to a scoped path under `precondition`.
    pub async fn write(
        &self,
        method: Method,
        path: &ScopedPath,
        precondition: &Precondition,
        body: Option<&str>,
    ) -> Result<ArmResponse, ArmError> {
        if *precondition == Precondition::AfterPreviousWrite {
            return Err(ArmError::Refused("internal: an unresolved precondition reached the ARM client".into()));
        }
        self.send_url(method, &self.url(path), precondition, body).await
    }

    /// GETs every item of a collection, following `nextLink`s that stay under the service.
    pub async fn list(&self, path: &ScopedPath) -> Result<Vec<String>, ArmError> {
        let prefix = format!("{}{}", self.target.endpoint.trim_end_matches('/'), self.target.service_id);
        let mut url = self.url(path);
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self.send_url(Method::GET, &url, &Precondition::None, None).await?;
            let parsed: Value = serde_json::from_str(&page.body).map_err(|e| ArmError::Upstream {
                status: page.status,
                code: "InvalidResponse".into(),
                message: format!("the collection page is not JSON: {e}"),
                request_id: page.request_id.clone(),
            })?;
            match parsed.get("value") {
                Some(Value::Array(values)) => items.extend(values.iter().map(Value::to_string)),
                _ => {
                    return Err(ArmError::Upstream {
                        status: page.status,
                        code: "InvalidResponse".into(),
                        message: "the answer is not a collection (no `value` array)".into(),
                        request_id: page.request_id,
                    });
                }
            }
            match parsed.get("nextLink").and_then(Value::as_str).filter(|l| !l.is_empty()) {
                None => return Ok(items),
                Some(next) if starts_with_ignore_case(next, &prefix) => url = next.to_string(),
                Some(next) => {
                    return Err(ArmError::Refused(format!(
                        "ARM's nextLink {next:?} points outside the configured service; not followed"
                    )));
                }
            }
        }
        Err(ArmError::Refused(format!("the collection has more than {MAX_PAGES} pages; narrow it with $filter")))
    }

    async fn send_url(
        &self,
        method: Method,
        url: &str,
        precondition: &Precondition,
        body: Option<&str>,
    ) -> Result<ArmResponse, ArmError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let response = self.send_with_retries(&method, url, precondition, body, &request_id).await?;
        if method == Method::GET || method == Method::HEAD {
            return Ok(response.into_response(request_id));
        }
        match lro_url(&response) {
            Some(poll) => self.await_operation(&method, url, &poll, response, request_id).await,
            None => Ok(response.into_response(request_id)),
        }
    }

    /// One logical request: attempts with exponential backoff and jitter while the failure
    /// is retryable for this method (see [`retry::is_retryable`]), honouring `Retry-After`,
    /// within [`retry::RetryPolicy`]'s bounds. All attempts share one client request id.
    async fn send_with_retries(
        &self,
        method: &Method,
        url: &str,
        precondition: &Precondition,
        body: Option<&str>,
        request_id: &str,
    ) -> Result<RawResponse, ArmError> {
        use backon::Retryable;
        let policy = &self.retry;
        let attempt = || self.attempt(method, url, precondition, body, request_id);
        attempt
            .retry(policy.backoff())
            .sleep(tokio::time::sleep)
            .when(|failure: &Failure| retry::is_retryable(method, failure))
            .adjust(|failure: &Failure, delay| policy.adjust(failure, delay))
            .notify(|failure: &Failure, delay| {
                tracing::warn!(%method, client_request_id = %request_id, delay_ms = delay.as_millis() as u64, "ARM {} failed ({}); retrying", path_of(url), failure.describe());
            })
            .await
            .map_err(|failure| failure.into_error(self, method, request_id))
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        precondition: &Precondition,
        body: Option<&str>,
        request_id: &str,
    ) -> Result<RawResponse, Failure> {
        let token = self.credential.token().await.map_err(Failure::Refused)?;
        let http = self.http.get().map_err(Failure::Refused)?;
        let mut request = http
            .request(method.clone(), url)
            .bearer_auth(token)
            .header("x-ms-client-request-id", request_id)
            .header("accept", "application/json");
        match precondition {
            Precondition::IfMatch(etag) => request = request.header("if-match", etag),
            Precondition::CreateOnly => request = request.header("if-none-match", "*"),
            Precondition::None | Precondition::AfterPreviousWrite => {}
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let started = std::time::Instant::now();
        // A request reqwest cannot even build (an unparsable URL, a bad header value) fails the
        // same way every time: refuse it rather than retry it.
        let response = request.send().await.map_err(|e| {
            if e.is_builder() {
                Failure::Refused(format!("invalid request: {}", without_url(&e)))
            } else {
                Failure::Transport(without_url(&e))
            }
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.map_err(|e| Failure::Transport(without_url(&e)))?;
        tracing::debug!(%method, status = status.as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, client_request_id = %request_id, "ARM {}", path_of(url));
        if status.is_success() {
            return Ok(RawResponse { status, headers, body });
        }
        Err(Failure::Status { retry_after: retry::retry_after(&headers), status, body })
    }

    /// Polls a long-running operation (`Azure-AsyncOperation` or `Location`) to its end, then
    /// returns the resource as a GET sees it (for PUT/PATCH) or the final answer.
    async fn await_operation(
        &self,
        method: &Method,
        resource_url: &str,
        poll: &str,
        first: RawResponse,
        request_id: String,
    ) -> Result<ArmResponse, ArmError> {
        if !same_origin(poll, &self.target.endpoint) {
            return Err(ArmError::Refused(format!(
                "ARM's operation URL {poll:?} is not on {}; not polled",
                self.target.endpoint
            )));
        }
        let deadline = std::time::Instant::now() + retry::LRO_TIMEOUT;
        let mut wait = retry::retry_after(&first.headers).unwrap_or(retry::LRO_DEFAULT_POLL);
        let async_operation = first.headers.contains_key("azure-asyncoperation");
        loop {
            if std::time::Instant::now() + wait > deadline {
                return Err(ArmError::Transport {
                    message: format!("the operation did not finish within {} s", retry::LRO_TIMEOUT.as_secs()),
                    request_id,
                });
            }
            tokio::time::sleep(wait.min(retry::LRO_MAX_POLL)).await;
            let status = self.send_with_retries(&Method::GET, poll, &Precondition::None, None, &request_id).await?;
            wait = retry::retry_after(&status.headers).unwrap_or(retry::LRO_DEFAULT_POLL);
            let done = if async_operation {
                let parsed: Value = serde_json::from_str(&status.body).unwrap_or_default();
                match parsed["status"].as_str().unwrap_or("InProgress") {
                    "Succeeded" => true,
                    "Failed" | "Canceled" | "Cancelled" => {
                        let error = &parsed["error"];
                        return Err(ArmError::Upstream {
                            status: 200,
                            code: error["code"].as_str().unwrap_or("OperationFailed").into(),
                            message: error["message"].as_str().unwrap_or("the long-running operation failed").into(),
                            request_id,
                        });
                    }
                    _ => false,
                }
            } else {
                status.status != StatusCode::ACCEPTED
            };
            if done {
                break;
            }
        }
        if *method == Method::DELETE {
            return Ok(ArmResponse { status: 200, etag: None, body: String::new(), request_id });
        }
        let final_state =
            self.send_with_retries(&Method::GET, resource_url, &Precondition::None, None, &request_id).await?;
        Ok(final_state.into_response(request_id))
    }

    /// An ARM error answer as an [`ArmError`], with the role hint on 401/403.
    pub(super) fn upstream_error(
        &self,
        status: StatusCode,
        method: &Method,
        body: &str,
        request_id: String,
    ) -> ArmError {
        let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let error = &parsed["error"];
        let code = error["code"].as_str().unwrap_or(status.canonical_reason().unwrap_or("Error")).to_string();
        let mut message =
            error["message"].as_str().map(str::to_string).unwrap_or_else(|| body.chars().take(500).collect());
        if let Some(details) = error["details"].as_array() {
            for detail in details.iter().filter_map(|d| d["message"].as_str()) {
                message.push_str("; ");
                message.push_str(detail);
            }
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let role = if *method == Method::GET { "Reader" } else { "API Management Service Contributor" };
            message = format!(
                "{message} — the request was made as {}; it needs the {role} role on {}",
                self.identity(),
                self.target.service_id
            );
        }
        ArmError::Upstream { status: status.as_u16(), code, message, request_id }
    }
}

/// The URL to poll when a write was accepted as a long-running operation.
fn lro_url(response: &RawResponse) -> Option<String> {
    let header = |name: &str| response.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Some(url) = header("azure-asyncoperation") {
        return Some(url);
    }
    (response.status == StatusCode::ACCEPTED).then(|| header("location")).flatten()
}

/// Whether `url` has the scheme, host and port of `endpoint`.
fn same_origin(url: &str, endpoint: &str) -> bool {
    let origin = |u: &str| {
        let (scheme, rest) = u.split_once("://").unwrap_or(("", u));
        let host = rest.split('/').next().unwrap_or("");
        format!("{}://{}", scheme.to_ascii_lowercase(), host.to_ascii_lowercase())
    };
    origin(url) == origin(endpoint)
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len() && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Most bytes of a URL's path repeated in a log line.
const LOGGED_PATH_BYTES: usize = 512;

/// The path of a URL, for logs (no host, no query), cut to [`LOGGED_PATH_BYTES`].
fn path_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    let path = path.split('?').next().unwrap_or(path);
    let mut cut = path.len().min(LOGGED_PATH_BYTES);
    while !path.is_char_boundary(cut) {
        cut -= 1;
    }
    &path[..cut]
}

/// reqwest errors print the URL; keep the message short and free of query strings.
pub(super) fn without_url(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "the response body could not be read"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() { kind.to_string() } else { format!("{kind}: {detail}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_url_that_cannot_be_built_is_refused_at_once_and_never_retried() {
        let target = ArmTarget {
            endpoint: "http://not a host".into(),
            service_id: "/s".into(),
            api_version: "2024-05-01".into(),
        };
        let client = ArmClient::new(target, Credential::Static("t".to_string().into()))
            .unwrap()
            .with_retry_policy(retry::RetryPolicy { max_retries: 6, budget: Duration::from_secs(60) });
        let started = std::time::Instant::now();
        let error = client.send(Method::GET, &client.scope("apis").unwrap(), None, None).await.unwrap_err();
        assert!(matches!(&error, ArmError::Refused(m) if m.starts_with("invalid request")), "{error:?}");
        assert!(started.elapsed() < Duration::from_millis(200), "took {:?}: retried", started.elapsed());
    }

    #[test]
    fn logged_paths_are_cut() {
        let url = format!("http://h/{}?q=1", "é".repeat(1000));
        assert!(path_of(&url).len() <= LOGGED_PATH_BYTES);
    }
}
