//! Argument completion (`completion/complete`) for the workflow prompts and the resource
//! templates: API, subscription, product, backend and operation ids from the live service,
//! change ids from the journal, and the few fixed choices.
//!
//! Live lists are cached for [`CACHE_TTL`]: a person types a few characters a second and each
//! keystroke asks again; half a minute is fresh enough to pick from and spares ARM the calls.
//! Values are matched by prefix, then by substring, case-insensitively, at most 100 of them
//! (MCP's cap).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rmcp::model::CompletionInfo;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::changes::ChangePipeline;

/// How long a live list is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(30);

/// Cached live lists, by collection path.
#[derive(Default)]
pub struct Completer {
    cache: Mutex<HashMap<String, (Instant, Vec<String>)>>,
}

/// Where the values of an argument come from.
enum Source {
    /// The `name`s of an ARM collection under the service.
    Collection(String),
    Changes,
    Fixed(&'static [&'static str]),
}

/// The source for an argument name; `context` holds the arguments already given (an
/// operation id needs its API).
fn source(argument: &str, context: &HashMap<String, String>) -> Option<Source> {
    Some(match argument {
        "api_id" => Source::Collection("apis".into()),
        "subscription_id" => Source::Collection("subscriptions".into()),
        "product_id" => Source::Collection("products".into()),
        "backend_id" | "primary_backend" => Source::Collection("backends".into()),
        "operation_id" => Source::Collection(format!("apis/{}/operations", context.get("api_id")?)),
        "change_id" => Source::Changes,
        "format" => Source::Fixed(&["markdown", "csv", "html"]),
        "similarity" => Source::Fixed(&["0.97", "0.95", "0.92"]),
        "ttl" => Source::Fixed(&["15m", "1h", "24h"]),
        _ => return None,
    })
}

impl Completer {
    /// Completions of `argument` starting from `typed`.
    pub async fn complete(
        &self,
        pipeline: Option<&ChangePipeline>,
        argument: &str,
        typed: &str,
        context: &HashMap<String, String>,
    ) -> CompletionInfo {
        let values = match (source(argument, context), pipeline) {
            (Some(Source::Fixed(values)), _) => values.iter().map(|v| v.to_string()).collect(),
            (Some(Source::Changes), Some(pipeline)) => pipeline
                .journal()
                .changes()
                .map(|changes| changes.iter().rev().map(|c| c.planned.id.clone()).collect())
                .unwrap_or_default(),
            (Some(Source::Collection(path)), Some(pipeline)) => self.collection(pipeline, &path).await,
            _ => Vec::new(),
        };
        matching(values, typed)
    }

    async fn collection(&self, pipeline: &ChangePipeline, path: &str) -> Vec<String> {
        if let Some((at, names)) = self.cache.lock().await.get(path)
            && at.elapsed() < CACHE_TTL
        {
            return names.clone();
        }
        let Ok(scoped) = pipeline.arm().scope(path) else { return Vec::new() };
        let names: Vec<String> = match pipeline.arm().list(&scoped).await {
            Ok(items) => items
                .iter()
                .filter_map(|item| serde_json::from_str::<Value>(item).ok()?["name"].as_str().map(str::to_string))
                .collect(),
            Err(e) => {
                tracing::debug!(path, "completion could not list: {e}");
                return Vec::new();
            }
        };
        self.cache.lock().await.insert(path.to_string(), (Instant::now(), names.clone()));
        names
    }
}

/// Prefix matches first, then substring matches, case-insensitively; at most MCP's 100.
fn matching(values: Vec<String>, typed: &str) -> CompletionInfo {
    let typed = typed.to_ascii_lowercase();
    let (mut prefixed, mut containing): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for value in values {
        let lower = value.to_ascii_lowercase();
        if lower.starts_with(&typed) {
            prefixed.push(value);
        } else if lower.contains(&typed) {
            containing.push(value);
        }
    }
    prefixed.append(&mut containing);
    let total = prefixed.len();
    prefixed.truncate(CompletionInfo::MAX_VALUES);
    let has_more = total > prefixed.len();
    CompletionInfo::with_pagination(prefixed, Some(total as u32), has_more).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_matches_come_first_and_the_list_is_capped() {
        let values = vec!["search".to_string(), "growth".into(), "research".into(), "Search-2".into()];
        assert_eq!(matching(values, "sea").values, ["search", "Search-2", "research"]);
        let many: Vec<String> = (0..150).map(|i| format!("team-{i}")).collect();
        let info = matching(many, "team");
        assert_eq!((info.values.len(), info.total, info.has_more), (100, Some(150), Some(true)));
    }

    #[test]
    fn an_operation_needs_its_api() {
        assert!(source("operation_id", &HashMap::new()).is_none());
        let context = HashMap::from([("api_id".to_string(), "inference-api".to_string())]);
        assert!(
            matches!(source("operation_id", &context), Some(Source::Collection(p)) if p == "apis/inference-api/operations")
        );
    }
}
