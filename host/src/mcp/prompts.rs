//! The product's workflows as MCP prompts: how a person starts a known job from the client's
//! menu. Each prompt tells the agent which tools to use in which order and what to check, so
//! the safe order (look, simulate, dry-run, change, observe, undo) is the default one.
//!
//! Prompts name tools by their fixed names; a step whose tool this server does not offer (a
//! capability whose plugin is not loaded) says so instead of inventing an answer.

use std::collections::BTreeMap;

use rmcp::ErrorData as McpError;
use rmcp::model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role};

/// One argument of a workflow.
struct Arg {
    name: &'static str,
    description: &'static str,
    required: bool,
}

/// One workflow.
struct Workflow {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    args: &'static [Arg],
    /// The instructions, with `{arg}` placeholders (absent optional args read as their default).
    text: &'static str,
    defaults: &'static [(&'static str, &'static str)],
}

const WORKFLOWS: &[Workflow] = &[
    Workflow {
        name: "quota_change",
        title: "Change one team's token quota safely",
        description: "Cut or raise one subscription's TPM/RPM with a shadow what-if first, then watch its 429s.",
        args: &[
            Arg {
                name: "subscription_id",
                description: "The team's APIM subscription id, e.g. growth",
                required: true,
            },
            Arg { name: "tpm", description: "The new tokens-per-minute limit", required: false },
            Arg { name: "rpm", description: "The new requests-per-minute limit", required: false },
        ],
        defaults: &[("tpm", "(unchanged)"), ("rpm", "(unchanged)")],
        text: "Change the quota of subscription {subscription_id}: TPM {tpm}, RPM {rpm}. Leave every other team alone.\n\
               1. list_subscriptions: note {subscription_id}'s current TPM/RPM, where each limit comes from, and who \
               shares it (a shared branch or named value).\n\
               2. what_if_quota with the new limits: how many minutes of the last days would have been throttled. \
               If a cut would throttle a team that must not be affected, stop and say so.\n\
               3. update_quota with dry_run: true, and show me the plan: it must change only {subscription_id}.\n\
               4. update_quota for real; I confirm the change the server shows.\n\
               5. Observe: with get_metrics (if this server offers it) over the next hour, 429s per subscription, \
               gateway throttling separated from backend 429s; in the sandbox, sandbox_advance_clock 60 first.\n\
               6. If it misbehaves: list_changes, then rollback_change with the change id.",
    },
    Workflow {
        name: "failover_drill",
        title: "Multi-region failover drill",
        description: "Inspect the backend pool, add a secondary region with a circuit breaker, simulate a primary outage, confirm traffic shifts, roll back.",
        args: &[
            Arg { name: "api_id", description: "The API whose routing to drill, e.g. inference-api", required: true },
            Arg { name: "primary_backend", description: "The backend to take down, e.g. aoai-eastus", required: false },
        ],
        defaults: &[("primary_backend", "the priority-1 backend")],
        text: "Run a failover drill for API {api_id}.\n\
               1. get_backend_pool {api_id} (if offered): members, priorities, weights, circuit breakers, retry; read its \
               warnings (retry count below members − 1, members without a breaker, mismatched model versions).\n\
               2. To add a region: update_backend_pool with dry_run first, then for real (priority 2, breaker e.g. 5 \
               failures in 1 minute, open 5 minutes); I confirm.\n\
               3. Sandbox only: sandbox_set_outage {primary_backend} enabled for a few minutes, then \
               sandbox_advance_clock, then read requests per backend (get_metrics split by backend, if offered): traffic \
               must move to the next priority after the breaker trips, and come back after the outage.\n\
               4. Roll back the drill's changes with rollback_change (list_changes shows them).",
    },
    Workflow {
        name: "semantic_cache_rollout",
        title: "Semantic cache roll-out and tuning",
        description: "Enable semantic caching on an API at a similarity and TTL, measure hit rate and tokens saved, tune.",
        args: &[
            Arg { name: "api_id", description: "The API, e.g. inference-api", required: true },
            Arg {
                name: "similarity",
                description: "How similar a cached prompt must be, 0–1 (start high: 0.97)",
                required: false,
            },
            Arg { name: "ttl", description: "How long answers stay cached, e.g. 1h", required: false },
        ],
        defaults: &[("similarity", "0.97"), ("ttl", "1h")],
        text: "Roll out semantic caching on API {api_id} at similarity {similarity}, TTL {ttl}.\n\
               Careful: APIM's score-threshold is a distance (1 − similarity): similarity 0.95 is score-threshold 0.05. \
               Writing 0.95 would accept almost any prompt and serve wrong answers.\n\
               1. get_policy {api_id} (if offered): is there a cache lookup already, an embeddings backend, an external cache?\n\
               2. list_policy_templates / apply_policy_template for the semantic cache (if offered), else apply_policy with \
               llm-semantic-cache-lookup and llm-semantic-cache-store; dry_run first, then for real; I confirm.\n\
               3. After a day (sandbox: sandbox_advance_clock 1440), hit rate and tokens saved (get_metrics, if offered).\n\
               4. Below 20% hits: lower the similarity a little (0.95, then 0.92) and observe again; on quality complaints \
               raise it back. rollback_change undoes a step.",
    },
    Workflow {
        name: "weekly_governance_report",
        title: "Weekly governance report",
        description: "Per-team token usage against limits, 429s (gateway vs backend), cache hit rate, findings first.",
        args: &[
            Arg {
                name: "since",
                description: "Start of the window (ISO-8601 or relative, e.g. 7d ago)",
                required: false,
            },
            Arg { name: "format", description: "markdown, csv or html", required: false },
        ],
        defaults: &[("since", "7 days ago"), ("format", "markdown")],
        text: "Compile the governance report from {since} until now, as {format}.\n\
               1. governance_report (if offered) with that window and format; else list_subscriptions for the limits and \
               get_metrics for tokens per subscription, 429s and cache hits.\n\
               2. Lead with the findings: teams near or over their limit, throttled teams, unlimited keys, the sum of team \
               limits against backend capacity (429s that persist after raising a quota come from the deployment's own \
               TPM), caches with 0% hits, limits that never bind.",
    },
    Workflow {
        name: "investigate_5xx_spike",
        title: "Did the gateway cause a 5xx spike?",
        description: "Pull the gateway's metrics for a window and tell gateway-caused 5xx from backend ones.",
        args: &[
            Arg { name: "api_id", description: "The API, e.g. inference-api", required: true },
            Arg { name: "at", description: "When the spike was seen (ISO-8601)", required: true },
            Arg { name: "window_minutes", description: "Minutes around it to look at", required: false },
        ],
        defaults: &[("window_minutes", "30")],
        text: "Investigate a 5xx spike on API {api_id} around {at} (±{window_minutes} minutes).\n\
               1. get_metrics (if offered) for that window, split by status and backend: 5xx by origin (a gateway policy, \
               a backend, a timeout), requests per backend, backend latency p95.\n\
               2. list_changes: was anything changed just before {at}? A change there is a suspect; rollback_change \
               undoes it.\n\
               3. Answer plainly: gateway, backend or neither, with the numbers.",
    },
];

/// Every workflow as an MCP prompt.
pub fn list() -> Vec<Prompt> {
    WORKFLOWS
        .iter()
        .map(|w| {
            let args = w
                .args
                .iter()
                .map(|a| PromptArgument::new(a.name).with_description(a.description).with_required(a.required))
                .collect();
            Prompt::new(w.name, Some(w.description), Some(args)).with_title(w.title)
        })
        .collect()
}

/// The names of the prompts' arguments, for completion.
pub fn argument_names(prompt: &str) -> Vec<&'static str> {
    WORKFLOWS.iter().find(|w| w.name == prompt).map(|w| w.args.iter().map(|a| a.name).collect()).unwrap_or_default()
}

/// The prompt `name` with `arguments` filled in; a missing required or unknown argument is an
/// invalid-params error naming it.
pub fn get(name: &str, arguments: &BTreeMap<String, String>) -> Result<GetPromptResult, McpError> {
    let workflow = WORKFLOWS.iter().find(|w| w.name == name).ok_or_else(|| {
        let known: Vec<&str> = WORKFLOWS.iter().map(|w| w.name).collect();
        McpError::invalid_params(format!("unknown prompt {name:?}; the prompts are {}", known.join(", ")), None)
    })?;
    if let Some(unknown) = arguments.keys().find(|k| !workflow.args.iter().any(|a| a.name == k.as_str())) {
        return Err(McpError::invalid_params(format!("prompt {name:?} has no argument {unknown:?}"), None));
    }
    let mut text = workflow.text.to_string();
    for arg in workflow.args {
        let value = match arguments.get(arg.name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            Some(value) => value.to_string(),
            None if arg.required => {
                return Err(McpError::invalid_params(
                    format!("prompt {name:?} needs the argument {:?} ({})", arg.name, arg.description),
                    None,
                ));
            }
            None => workflow.defaults.iter().find(|(k, _)| *k == arg.name).map_or("", |(_, d)| d).to_string(),
        };
        text = text.replace(&format!("{{{}}}", arg.name), &value);
    }
    let mut result = GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]);
    result.description = Some(workflow.description.to_string());
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_an_argument_and_every_optional_argument_has_a_default() {
        for w in WORKFLOWS {
            for a in w.args.iter().filter(|a| !a.required) {
                assert!(w.defaults.iter().any(|(k, _)| *k == a.name), "{}: {} has no default", w.name, a.name);
            }
            let filled: BTreeMap<String, String> =
                w.args.iter().filter(|a| a.required).map(|a| (a.name.to_string(), "x".to_string())).collect();
            let text = get(w.name, &filled).unwrap().messages[0].content.as_text().unwrap().text.clone();
            assert!(!text.contains('{') && !text.contains('}'), "{}: unfilled placeholder in {text}", w.name);
        }
    }

    #[test]
    fn a_missing_or_unknown_argument_is_named() {
        let err = get("quota_change", &BTreeMap::new()).unwrap_err();
        assert!(err.message.contains("subscription_id"), "{err:?}");
        let args = BTreeMap::from([("subscription_id".to_string(), "growth".to_string()), ("x".into(), "1".into())]);
        assert!(get("quota_change", &args).unwrap_err().message.contains("\"x\""));
        assert!(get("nope", &BTreeMap::new()).unwrap_err().message.contains("quota_change"));
    }
}
