//! MCP resources: what a person opens and attaches — one resource per journaled change (with
//! the diff the user confirmed), and the policy document of each scope as stored (raw XML).
//!
//! URIs (also listed as templates):
//! - `aigw://changes/{change_id}` — the change's journal records as JSON;
//! - `aigw://policies/global`, `aigw://policies/apis/{api_id}`,
//!   `aigw://policies/products/{product_id}`,
//!   `aigw://policies/apis/{api_id}/operations/{operation_id}` — the policy document, read from
//!   the live service by the host (the same read a plan's review makes).
//!
//! Invariant: a resource is read through the host's own journal or ARM client, never through a
//! plugin, and the journal is already redacted: no secret appears in a resource.
//!
//! Subscriptions (`resources/subscribe`, 2025-11-25): a client subscribed to a policy document
//! is sent `notifications/resources/updated` when a change this server applies writes it.
//! Changes made elsewhere (the portal, another tool) are not seen until the next read.

use rmcp::ErrorData as McpError;
use rmcp::model::{Resource, ResourceContents, ResourceTemplate};
use serde_json::{Value, json};

use crate::changes::ChangePipeline;
use crate::changes::review::read_live;

/// How many of the newest changes `resources/list` shows (older ones are still readable).
const LISTED_CHANGES: usize = 50;
const CHANGES: &str = "aigw://changes/";
const POLICIES: &str = "aigw://policies/";

/// The parameterised resources.
pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("aigw://changes/{change_id}", "change")
            .with_title("A change from the journal")
            .with_description("What was planned and confirmed (the host's diff), what was written, how it ended.")
            .with_mime_type("application/json"),
        ResourceTemplate::new("aigw://policies/apis/{api_id}", "api-policy")
            .with_title("An API's policy document")
            .with_mime_type("application/xml"),
        ResourceTemplate::new("aigw://policies/products/{product_id}", "product-policy")
            .with_title("A product's policy document")
            .with_mime_type("application/xml"),
        ResourceTemplate::new("aigw://policies/apis/{api_id}/operations/{operation_id}", "operation-policy")
            .with_title("An operation's policy document")
            .with_mime_type("application/xml"),
    ]
}

/// The concrete resources: the newest changes, the global policy and each API's policy.
pub async fn list(pipeline: &ChangePipeline) -> Result<Vec<Resource>, McpError> {
    let mut out = vec![
        Resource::new("aigw://policies/global", "global-policy")
            .with_title("The global (all APIs) policy document")
            .with_mime_type("application/xml"),
    ];
    let apis = pipeline.arm().scope("apis").map_err(internal)?;
    for api in pipeline.arm().list(&apis).await.map_err(internal)? {
        let api: Value = serde_json::from_str(&api).unwrap_or_default();
        if let Some(name) = api["name"].as_str() {
            out.push(
                Resource::new(format!("{POLICIES}apis/{name}"), format!("api-policy-{name}"))
                    .with_title(format!("Policy of API {name}"))
                    .with_mime_type("application/xml"),
            );
        }
    }
    let changes = pipeline.journal().changes().map_err(internal)?;
    for change in changes.iter().rev().take(LISTED_CHANGES) {
        out.push(
            Resource::new(format!("{CHANGES}{}", change.planned.id), change.planned.id.clone())
                .with_title(format!("{} [{}]", change.planned.summary, change.status()))
                .with_mime_type("application/json"),
        );
    }
    Ok(out)
}

/// Reads `uri`.
pub async fn read(pipeline: &ChangePipeline, uri: &str) -> Result<ResourceContents, McpError> {
    if let Some(id) = uri.strip_prefix(CHANGES) {
        let change = pipeline
            .journal()
            .find(id)
            .map_err(internal)?
            .ok_or_else(|| McpError::resource_not_found(format!("no change {id:?} in the journal"), None))?;
        let body = json!({
            "id": change.planned.id,
            "status": change.status(),
            "planned": change.planned,
            "completed": change.completed,
        });
        let text = serde_json::to_string_pretty(&body).map_err(internal)?;
        return Ok(ResourceContents::text(text, uri).with_mime_type("application/json"));
    }
    let Some(scope) = uri.strip_prefix(POLICIES) else {
        return Err(McpError::resource_not_found(format!("unknown resource {uri:?}"), None));
    };
    let path = policy_path(scope)
        .ok_or_else(|| McpError::resource_not_found(format!("{uri:?} names no policy scope"), None))?;
    let live = read_live(pipeline.arm(), &path).await.map_err(|e| McpError::internal_error(e.to_string(), None))?;
    let text = live
        .body
        .as_ref()
        .and_then(|b| b["properties"]["value"].as_str())
        .ok_or_else(|| McpError::resource_not_found(format!("{uri:?}: that scope has no policy document"), None))?;
    Ok(ResourceContents::text(text, uri).with_mime_type("application/xml"))
}

/// Whether this server serves `uri` (what may be subscribed to).
pub fn is_ours(uri: &str) -> bool {
    uri.strip_prefix(POLICIES).is_some_and(|scope| policy_path(scope).is_some()) || uri.starts_with(CHANGES)
}

/// The resource URI of the policy document at ARM `path` (the inverse of [`policy_path`]).
pub fn policy_uri(path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path).trim_matches('/');
    let scope = path.strip_suffix("policies/policy")?.trim_end_matches('/');
    let uri = if scope.is_empty() { "global".to_string() } else { scope.to_string() };
    policy_path(&uri).map(|_| format!("{POLICIES}{uri}"))
}

/// The ARM path of a policy scope named in a URI (`global`, `apis/x`, `products/x`,
/// `apis/x/operations/y`). Names are single path segments of unreserved characters.
fn policy_path(scope: &str) -> Option<String> {
    let segments: Vec<&str> = scope.split('/').collect();
    let named =
        |s: &str| s.chars().any(|c| c != '.') && s.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
    match segments.as_slice() {
        ["global"] => Some("policies/policy".into()),
        ["apis", api] if named(api) => Some(format!("apis/{api}/policies/policy")),
        ["products", product] if named(product) => Some(format!("products/{product}/policies/policy")),
        ["apis", api, "operations", op] if named(api) && named(op) => {
            Some(format!("apis/{api}/operations/{op}/policies/policy"))
        }
        _ => None,
    }
}

fn internal(error: impl std::fmt::Display) -> McpError {
    McpError::internal_error(error.to_string(), None)
}

#[cfg(test)]
mod tests {
    use super::policy_path;

    #[test]
    fn policy_uris_map_to_scopes_and_nothing_else() {
        assert_eq!(policy_path("global").unwrap(), "policies/policy");
        assert_eq!(policy_path("apis/inference-api").unwrap(), "apis/inference-api/policies/policy");
        assert_eq!(policy_path("apis/a/operations/chat").unwrap(), "apis/a/operations/chat/policies/policy");
        for bad in ["apis/..", "apis/a%2F..", "backends/x", "apis/", "apis/a/b"] {
            assert_eq!(policy_path(bad), None, "{bad}");
        }
        assert_eq!(
            super::policy_uri("apis/inference-api/policies/policy?format=rawxml").unwrap(),
            "aigw://policies/apis/inference-api"
        );
        assert_eq!(super::policy_uri("policies/policy").unwrap(), "aigw://policies/global");
        assert_eq!(super::policy_uri("namedValues/x"), None);
    }
}
