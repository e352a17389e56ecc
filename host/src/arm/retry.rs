//! When and how the ARM client tries again.
//!
//! ARM throttles (429 with `Retry-After`) and has transient faults (5xx, dropped
//! connections). A request is retried with exponential backoff and jitter, waiting at least
//! what `Retry-After` asks, within a bounded number of attempts and a bounded total delay.
//!
//! What is retried, by method:
//! - `POST` never: ARM actions (`listSecrets`, `regenerateKey`, ...) are not idempotent.
//! - Everything else on 408, 429, 500, 502, 503, 504 and on transport failures. Writes are
//!   safe to retry because every write the host makes carries `If-Match`: if a first attempt
//!   did land before its answer was lost, the retry gets 412 and the plan is re-made against
//!   fresh state, never applied twice blindly.
//!
//! Limits come from the environment (`AIGW_ARM_MAX_RETRIES`, `AIGW_ARM_RETRY_BUDGET_MS`),
//! with defaults suited to interactive use.

use std::time::Duration;

use backon::ExponentialBuilder;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};

use super::client::{ArmClient, ArmError, ArmResponse};

/// Longest a long-running operation is polled.
pub const LRO_TIMEOUT: Duration = Duration::from_secs(300);
/// Poll interval when ARM does not say (`Retry-After`).
pub const LRO_DEFAULT_POLL: Duration = Duration::from_secs(1);
/// Longest single wait between polls, whatever `Retry-After` says.
pub const LRO_MAX_POLL: Duration = Duration::from_secs(10);

/// Longest single wait the client accepts from `Retry-After`; a longer ask ends the retries.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// A successful answer before it becomes an [`ArmResponse`].
pub struct RawResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl RawResponse {
    pub fn into_response(self, request_id: String) -> ArmResponse {
        let etag = self.headers.get("etag").and_then(|v| v.to_str().ok()).map(str::to_string);
        ArmResponse { status: self.status.as_u16(), etag, body: self.body, request_id }
    }
}

/// One failed attempt.
#[derive(Debug)]
pub enum Failure {
    /// ARM answered with an error status.
    Status { status: StatusCode, retry_after: Option<Duration>, body: String },
    /// No answer: connection refused or dropped, timeout.
    Transport(String),
    /// Refused before sending (e.g. no token).
    Refused(String),
}

impl Failure {
    /// A short description for logs (no body, no URL).
    pub fn describe(&self) -> String {
        match self {
            Failure::Status { status, .. } => status.to_string(),
            Failure::Transport(message) | Failure::Refused(message) => message.clone(),
        }
    }

    /// The final error once retries are over.
    pub fn into_error(self, client: &ArmClient, method: &Method, request_id: &str) -> ArmError {
        match self {
            Failure::Status { status, body, .. } => {
                client.upstream_error(status, method, &body, request_id.to_string())
            }
            Failure::Transport(message) => ArmError::Transport { message, request_id: request_id.to_string() },
            Failure::Refused(message) => ArmError::Refused(message),
        }
    }
}

/// Whether another attempt may help, and is safe, for `method`.
pub fn is_retryable(method: &Method, failure: &Failure) -> bool {
    if *method == Method::POST {
        return false;
    }
    match failure {
        Failure::Status { status, .. } => matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504),
        Failure::Transport(_) => true,
        Failure::Refused(_) => false,
    }
}

/// `Retry-After` (seconds or an HTTP date) or `x-ms-retry-after-ms`.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) =
        headers.get("x-ms-retry-after-ms").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok())
    {
        return Some(Duration::from_millis(ms));
    }
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

/// Bounds of the retry loop.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: usize,
    pub budget: Duration,
}

impl RetryPolicy {
    /// Defaults: 6 retries within 60 s of total delay; overridable by environment.
    pub fn from_env() -> anyhow::Result<Self> {
        let read = |name: &str, default: u64| -> anyhow::Result<u64> {
            match std::env::var(name) {
                Ok(v) => v.trim().parse().map_err(|_| anyhow::anyhow!("{name}={v:?} is not a whole number")),
                Err(_) => Ok(default),
            }
        };
        Ok(Self {
            max_retries: read("AIGW_ARM_MAX_RETRIES", 6)? as usize,
            budget: Duration::from_millis(read("AIGW_ARM_RETRY_BUDGET_MS", 60_000)?),
        })
    }

    /// Exponential backoff with jitter: 250 ms, 500 ms, 1 s, ... capped at 8 s a step.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(Duration::from_millis(250))
            .with_max_delay(Duration::from_secs(8))
            .with_factor(2.0)
            .with_max_times(self.max_retries)
            .with_total_delay(Some(self.budget))
    }

    /// Waits at least what the server asked; gives up when it asks for too long.
    pub fn adjust(&self, failure: &Failure, backoff: Option<Duration>) -> Option<Duration> {
        let backoff = backoff?;
        match failure {
            Failure::Status { retry_after: Some(asked), .. } if *asked > MAX_RETRY_AFTER => None,
            Failure::Status { retry_after: Some(asked), .. } => Some(backoff.max(*asked)),
            _ => Some(backoff),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Failure {
        Failure::Status { status: StatusCode::from_u16(code).unwrap(), retry_after: None, body: String::new() }
    }

    #[test]
    fn a_post_is_never_retried() {
        assert!(!is_retryable(&Method::POST, &status(429)));
        assert!(!is_retryable(&Method::POST, &Failure::Transport("dropped".into())));
    }

    #[test]
    fn throttling_and_transient_faults_are_retried_for_reads_and_conditional_writes() {
        for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
            for code in [429, 500, 502, 503, 504] {
                assert!(is_retryable(&method, &status(code)), "{method} {code}");
            }
            assert!(is_retryable(&method, &Failure::Transport("connection reset".into())));
        }
    }

    #[test]
    fn client_errors_are_not_retried() {
        for code in [400, 401, 403, 404, 409, 412] {
            assert!(!is_retryable(&Method::GET, &status(code)), "{code}");
        }
    }

    #[test]
    fn retry_after_is_read_in_seconds_dates_and_milliseconds() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert("x-ms-retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        let mut dated = HeaderMap::new();
        let soon = std::time::SystemTime::now() + Duration::from_secs(120);
        dated.insert("retry-after", httpdate::fmt_http_date(soon).parse().unwrap());
        let wait = retry_after(&dated).unwrap();
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120), "{wait:?}");
    }

    #[test]
    fn the_wait_honours_retry_after_and_gives_up_when_it_is_too_long() {
        let policy = RetryPolicy { max_retries: 3, budget: Duration::from_secs(60) };
        let asked = |s| Failure::Status {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(Duration::from_secs(s)),
            body: String::new(),
        };
        assert_eq!(policy.adjust(&asked(2), Some(Duration::from_millis(250))), Some(Duration::from_secs(2)));
        assert_eq!(policy.adjust(&asked(600), Some(Duration::from_millis(250))), None);
        assert_eq!(policy.adjust(&status(503), None), None, "backoff exhausted stays exhausted");
    }
}
