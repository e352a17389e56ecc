//! The plugin's view of ARM and Log Analytics, behind a trait so the tools' orchestration (which
//! calls are made, in which batches) runs natively in the unit tests against fixtures.
//!
//! Every read the tools make goes through [`Arm::get_many`] (the host runs the paths of one call
//! concurrently), so a tool's latency is a few round trips, not one per resource. Collections
//! are read page by page with `$top`/`$skip` when ARM says how many items there are (`count`),
//! so the pages of one listing are fetched concurrently too; otherwise [`Arm::list`] follows
//! `nextLink`.

use aigw_pdk::{Error, UpstreamError};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// One ARM answer.
#[derive(Debug, Clone)]
pub struct Resp {
    /// HTTP status.
    pub status: u16,
    /// The `ETag` header.
    pub etag: Option<String>,
    /// The JSON body.
    pub body: String,
}

/// Reads from the configured APIM service and its Log Analytics workspace.
pub trait Arm {
    /// GETs `paths` concurrently; each entry answers the path at the same index.
    fn get_many(&self, paths: &[String]) -> Vec<Result<Resp, Error>>;
    /// GETs every item of a collection, following `nextLink`.
    fn list(&self, path: &str) -> Result<Vec<String>, Error>;
    /// Runs a KQL query; returns the Log Analytics response body.
    fn query_logs(&self, query: &str, timespan: Option<&str>) -> Result<String, Error>;
}

/// ARM's page size (APIM serves at most 100 items per page).
pub const PAGE: usize = 100;

/// Whether an error means "the resource does not exist".
pub fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::NotFound(_)) || matches!(e, Error::Upstream(UpstreamError { status: 404, .. }))
}

/// Percent-encodes one path segment (ids are usually `[A-Za-z0-9._-]`; anything else is encoded).
pub fn seg(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes a query value.
pub fn query_value(v: &str) -> String {
    seg(v)
}

/// Parses a JSON body into `T`, naming the path on failure.
pub fn parse<T: DeserializeOwned>(path: &str, body: &str) -> Result<T, Error> {
    serde_json::from_str(body).map_err(|e| Error::Internal(format!("ARM answered {path} with unexpected JSON: {e}")))
}

/// One page of a collection.
#[derive(Deserialize)]
pub struct Page<T> {
    /// The items.
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    /// How many items match in total (APIM collections carry it on every page).
    #[serde(default)]
    pub count: Option<u64>,
    /// The next page, absent or empty on the last one.
    #[serde(default, rename = "nextLink")]
    pub next_link: Option<String>,
}

impl<T> Page<T> {
    /// Whether more pages follow.
    pub fn has_more(&self) -> bool {
        self.next_link.as_deref().is_some_and(|l| !l.is_empty())
    }
}

/// `path` with `$top`/`$skip` (and any extra query) appended.
pub fn page_path(path: &str, top: usize, skip: usize, extra: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut p = format!("{path}{sep}$top={top}");
    if skip > 0 {
        p.push_str(&format!("&$skip={skip}"));
    }
    p.push_str(extra);
    p
}

/// A whole collection read from its first page: when more pages follow, the rest is fetched
/// with `$skip` concurrently (if the first page gave `count`), else with [`Arm::list`].
pub fn complete<T: DeserializeOwned>(arm: &dyn Arm, path: &str, first: Page<T>) -> Result<Vec<T>, Error> {
    if !first.has_more() {
        return Ok(first.value);
    }
    match first.count {
        Some(count) if !first.value.is_empty() => {
            let got = first.value.len();
            let mut items = first.value;
            let rest: Vec<String> =
                (got..count as usize).step_by(PAGE).map(|skip| page_path(path, PAGE, skip, "")).collect();
            for (p, r) in rest.iter().zip(arm.get_many(&rest)) {
                let page: Page<T> = parse(p, &r?.body)?;
                items.extend(page.value);
            }
            Ok(items)
        }
        _ => arm.list(path)?.iter().map(|item| parse(path, item)).collect(),
    }
}

/// A collection from one `get_many` answer (the first page, fetched with `page_path(path, PAGE,
/// 0, "")`), completed with [`complete`]. `Ok(None)` when the collection's parent does not exist.
pub fn collection<T: DeserializeOwned>(
    arm: &dyn Arm,
    path: &str,
    answer: Result<Resp, Error>,
) -> Result<Option<Vec<T>>, Error> {
    match answer {
        Ok(r) => {
            let first: Page<T> = parse(path, &r.body)?;
            complete(arm, path, first).map(Some)
        }
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A policy document read with `?format=rawxml`.
#[derive(Debug, Clone)]
pub struct PolicyRead {
    /// The policy's ETag, for `If-Match`.
    pub etag: Option<String>,
    /// The response body, kept as the plan's before-state.
    pub body: serde_json::Value,
    /// The raw XML.
    pub xml: String,
}

/// Parses a policy GET answer; `Ok(None)` when the scope has no policy.
pub fn policy(path: &str, answer: Result<Resp, Error>) -> Result<Option<PolicyRead>, Error> {
    match answer {
        Ok(r) => {
            let body: serde_json::Value = parse(path, &r.body)?;
            let xml = body["properties"]["value"]
                .as_str()
                .ok_or_else(|| Error::Internal(format!("{path}: the policy has no properties.value")))?
                .to_string();
            Ok(Some(PolicyRead { etag: r.etag, body, xml }))
        }
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_pages() {
        assert_eq!(seg("inference-api"), "inference-api");
        assert_eq!(seg("team a/b'c"), "team%20a%2Fb%27c");
        assert_eq!(page_path("subscriptions", 100, 0, ""), "subscriptions?$top=100");
        assert_eq!(
            page_path("products/aoai/subscriptions", 50, 200, "&$filter=x"),
            "products/aoai/subscriptions?$top=50&$skip=200&$filter=x"
        );
        assert_eq!(page_path("a?b=1", 100, 100, ""), "a?b=1&$top=100&$skip=100");
    }
}
