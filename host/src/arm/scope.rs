//! Resolves the paths plugins ask for into URLs under the configured APIM service.
//!
//! This is the security boundary between plugins and Azure: the credential the host holds can
//! usually reach far more than one API Management service (a whole subscription, often). So a
//! plugin never names a URL; it names a path *relative to the service*, and this module makes
//! sure the result stays under it. Refused: absolute URLs, `..` and `.` segments (also
//! percent-encoded), empty segments, backslashes, control characters, full resource ids of
//! other resources, `providers/...` other than the service's Azure Monitor metrics, and paths
//! longer than [`MAX_PATH_BYTES`] (refused before anything is parsed, sent or logged in full).
//!
//! Every accepted path also gets a *kind* — its collection names joined with `/`
//! (`apis/inference-api/policies/policy` → `apis/policies`; `""` → `service`;
//! `providers/Microsoft.Insights/metrics` → `metrics`) — which the grants check.

use std::fmt;

/// A path that was checked to stay under the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedPath {
    /// Path segments below the service, percent-encoded as received (never `..`).
    pub segments: Vec<String>,
    /// Query parameters, in order, still percent-encoded.
    pub query: Vec<(String, String)>,
    /// The resource kind, for grants: `service`, `apis`, `apis/policies`, `metrics`, ...
    pub kind: String,
}

/// Why a path was refused. The message names the path and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeError(pub String);

impl fmt::Display for ScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Azure Monitor resources a plugin may read under the service (the service's own metrics).
const MONITOR_PROVIDERS: &[(&str, &str)] =
    &[("metrics", "metrics"), ("metricDefinitions", "metrics"), ("metricNamespaces", "metrics")];

/// Longest path (query included) a plugin may ask for, in bytes. The longest real ARM paths
/// under a service (a full resource id of an API operation's policy with a `$filter`) are a few
/// hundred bytes; ARM itself refuses URLs over about 8 KiB. 4 KiB leaves room for long filters
/// and keeps every path the host sends, retries or logs small.
pub const MAX_PATH_BYTES: usize = 4096;

/// At most this many characters of a refused path are repeated in the refusal.
const SHOWN_PATH_CHARS: usize = 200;

/// `path` for a message: quoted, and cut to [`SHOWN_PATH_CHARS`] characters with a marker.
pub fn shown(path: &str) -> String {
    match path.char_indices().nth(SHOWN_PATH_CHARS) {
        None => format!("{path:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes in all)", &path[..cut], path.len()),
    }
}

impl ScopedPath {
    /// Resolves `path` (relative to the service, or a full resource id under it) against the
    /// service id `service_id` (`/subscriptions/.../service/NAME`).
    pub fn resolve(service_id: &str, path: &str) -> Result<Self, ScopeError> {
        if path.len() > MAX_PATH_BYTES {
            return Err(ScopeError(format!(
                "path {} refused: it is {} bytes long, more than the {MAX_PATH_BYTES}-byte cap on ARM paths",
                shown(path),
                path.len()
            )));
        }
        let refuse = |why: &str| Err(ScopeError(format!("path {path:?} refused: {why}")));
        if path.contains("://") || path.starts_with("//") {
            return refuse("absolute URLs are not allowed; give a path relative to the service");
        }
        if path.chars().any(|c| c.is_control() || c == '\\' || c == '#') {
            return refuse("control characters, backslashes and fragments are not allowed");
        }
        let (path_part, query_part) = path.split_once('?').unwrap_or((path, ""));
        let mut rest = path_part.trim_start_matches('/');
        // A full resource id is accepted only when it names something under this service. It is
        // told apart from APIM's own `subscriptions` collection (`subscriptions/{sid}/...`) by its
        // third segment: `resourceGroups` or `providers` only ever follow an Azure subscription.
        if is_full_resource_id(rest) {
            let service = service_id.trim_start_matches('/');
            let under = rest.len() >= service.len()
                && rest[..service.len()].eq_ignore_ascii_case(service)
                && (rest.len() == service.len() || rest.as_bytes()[service.len()] == b'/');
            if !under {
                return refuse("it names a resource outside the configured API Management service");
            }
            rest = rest[service.len()..].trim_start_matches('/');
        }
        let rest = rest.trim_end_matches('/');
        let segments: Vec<String> =
            if rest.is_empty() { Vec::new() } else { rest.split('/').map(str::to_string).collect() };
        for segment in &segments {
            let decoded = percent_decode(segment);
            if segment.is_empty() {
                return refuse("empty path segments are not allowed");
            }
            if decoded == "." || decoded == ".." || decoded.contains('/') || decoded.contains('\\') {
                return refuse("'.' and '..' segments (or encoded slashes) are not allowed");
            }
        }
        let kind = kind_of(&segments).map_err(|why| ScopeError(format!("path {path:?} refused: {why}")))?;
        let mut query = Vec::new();
        for pair in query_part.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            query.push((k.to_string(), v.to_string()));
        }
        Ok(Self { segments, query, kind })
    }

    /// The query value for `key` (still percent-encoded), if present.
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }

    /// The URL below `arm_base` for this path, with `api-version` added when missing.
    pub fn url(&self, arm_base: &str, service_id: &str, default_api_version: &str) -> String {
        let mut url = format!("{}{}", arm_base.trim_end_matches('/'), service_id);
        for segment in &self.segments {
            url.push('/');
            url.push_str(segment);
        }
        let mut query = self.query.clone();
        if self.query_value("api-version").is_none() {
            let version = if self.kind == "metrics" { METRICS_API_VERSION } else { default_api_version };
            query.insert(0, ("api-version".into(), version.into()));
        }
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            if !v.is_empty() {
                url.push('=');
                url.push_str(v);
            }
        }
        url
    }

    /// The path relative to the service, as a plugin would write it (no query).
    pub fn relative(&self) -> String {
        self.segments.join("/")
    }
}

/// The Azure Monitor metrics API version used when the plugin does not give one.
pub const METRICS_API_VERSION: &str = "2024-02-01";

fn is_full_resource_id(path: &str) -> bool {
    let mut segments = path.split('/');
    let first = segments.next().unwrap_or_default();
    let third = segments.nth(1).unwrap_or_default();
    first.eq_ignore_ascii_case("subscriptions")
        && (third.eq_ignore_ascii_case("resourceGroups") || third.eq_ignore_ascii_case("providers"))
}

fn kind_of(segments: &[String]) -> Result<String, String> {
    if segments.is_empty() {
        return Ok("service".into());
    }
    if segments[0].eq_ignore_ascii_case("providers") {
        let provider = segments.get(1).map(String::as_str).unwrap_or_default();
        let resource = segments.get(2).map(String::as_str).unwrap_or_default();
        if provider.eq_ignore_ascii_case("Microsoft.Insights")
            && segments.len() == 3
            && let Some((_, kind)) = MONITOR_PROVIDERS.iter().find(|(r, _)| r.eq_ignore_ascii_case(resource))
        {
            return Ok((*kind).into());
        }
        return Err("only the service's Microsoft.Insights metrics may be read under providers/".into());
    }
    // Collection names sit at even positions: apis/{id}/policies/{id} → apis/policies.
    Ok(segments.iter().step_by(2).map(String::as_str).collect::<Vec<_>>().join("/"))
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&segment[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-ai-gateway/providers/Microsoft.ApiManagement/service/apim-sandbox";

    fn resolve(path: &str) -> Result<ScopedPath, ScopeError> {
        ScopedPath::resolve(SERVICE, path)
    }

    #[test]
    fn a_path_over_the_length_cap_is_refused_naming_the_cap_and_not_repeated_in_full() {
        let long = format!("apis/{}", "a".repeat(1 << 20));
        let refusal = resolve(&long).unwrap_err().to_string();
        assert!(refusal.contains("4096-byte cap"), "{refusal}");
        assert!(refusal.len() < 400, "{} bytes", refusal.len());
        assert!(resolve(&format!("apis/{}", "a".repeat(MAX_PATH_BYTES - 5))).is_ok());
    }

    #[test]
    fn empty_path_is_the_service_itself() {
        let p = resolve("").unwrap();
        assert_eq!(p.kind, "service");
        assert_eq!(
            p.url("https://management.azure.com", SERVICE, "2024-05-01"),
            format!("https://management.azure.com{SERVICE}?api-version=2024-05-01")
        );
    }

    #[test]
    fn nested_paths_get_their_collection_kind() {
        assert_eq!(resolve("apis/inference-api/policies/policy").unwrap().kind, "apis/policies");
        assert_eq!(resolve("/backends/aoai-pool").unwrap().kind, "backends");
        assert_eq!(resolve("subscriptions").unwrap().kind, "subscriptions");
    }

    #[test]
    fn query_is_kept_and_api_version_added_once() {
        let p = resolve("apis/a/policies/policy?format=rawxml").unwrap();
        let url = p.url("http://127.0.0.1:1", SERVICE, "2024-05-01");
        assert!(url.ends_with("/apis/a/policies/policy?api-version=2024-05-01&format=rawxml"), "{url}");
        let p = resolve("backends?api-version=2024-06-01-preview").unwrap();
        assert!(p.url("http://x", SERVICE, "2024-05-01").ends_with("backends?api-version=2024-06-01-preview"));
    }

    #[test]
    fn dot_dot_segments_are_refused_even_when_encoded() {
        for path in ["../other", "apis/../../x", "apis/%2e%2e/x", "apis/%2E%2E", "apis/./x", "apis/a%2Fb"] {
            let err = resolve(path).unwrap_err();
            assert!(err.0.contains("refused"), "{path}: {err}");
        }
    }

    #[test]
    fn absolute_urls_are_refused() {
        for path in ["https://evil.example/x", "//evil.example/x", "http://169.254.169.254/metadata"] {
            assert!(resolve(path).unwrap_err().0.contains("absolute URLs"), "{path}");
        }
    }

    #[test]
    fn full_ids_under_the_service_are_accepted_and_others_refused() {
        let p = resolve(&format!("{SERVICE}/backends/aoai-eastus")).unwrap();
        assert_eq!(p.relative(), "backends/aoai-eastus");
        let other = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-other/providers/Microsoft.KeyVault/vaults/kv";
        assert!(resolve(other).unwrap_err().0.contains("outside"));
        // A sibling service whose name merely starts with ours is another resource.
        assert!(resolve(&format!("{SERVICE}-evil/backends")).is_err());
    }

    #[test]
    fn apim_subscriptions_are_a_collection_not_an_azure_subscription() {
        let p = resolve("subscriptions/growth").unwrap();
        assert_eq!((p.kind.as_str(), p.relative()), ("subscriptions", "subscriptions/growth".to_string()));
        // Actions are kinds of their own: a `subscriptions` read grant does not reach the keys.
        assert_eq!(resolve("/subscriptions/growth/listSecrets").unwrap().kind, "subscriptions/listSecrets");
        assert!(resolve("subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/other").is_err());
        assert!(
            resolve(
                "subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Authorization/roleAssignments"
            )
            .is_err()
        );
    }

    #[test]
    fn only_the_services_own_metrics_are_allowed_under_providers() {
        let p = resolve("providers/Microsoft.Insights/metrics?metricnames=Requests").unwrap();
        assert_eq!(p.kind, "metrics");
        assert!(p.url("http://x", SERVICE, "2024-05-01").contains("api-version=2024-02-01"));
        assert!(resolve("providers/Microsoft.Authorization/roleAssignments").is_err());
        assert!(resolve("providers/Microsoft.Insights/diagnosticSettings").is_err());
    }

    #[test]
    fn control_characters_and_backslashes_are_refused() {
        assert!(resolve("apis\\..\\x").is_err());
        assert!(resolve("apis/a\nHost: evil").is_err());
        assert!(resolve("apis/a#frag").is_err());
        assert!(resolve("apis//x").is_err());
    }
}
