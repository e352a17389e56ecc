//! The manifest: tools, their schemas and the grants the plugin needs.

use aigw_pdk::{Manifest, ToolSpec};
use aigw_policy_xml::{MAX_PER_MINUTE, MAX_TOKEN_QUOTA};
use serde_json::{Value, json};

use crate::list::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::whatif::{DEFAULT_DAYS, MAX_DAYS};

/// APIM's subscription id rule (`^[^*#&+:<>?]+$`, at most 256), without `/` (a path segment).
fn sid() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^*#&+:<>?/]+$",
           "description": "APIM subscription id (its resource name, e.g. growth), not the display name."})
}

fn per_minute(what: &str) -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": MAX_PER_MINUTE, "description": what})
}

fn limit_schema() -> Value {
    json!({
        "type": "object",
        "description": "{value, source[, period, also]} when limited (source: an id in sources); {unlimited: why}; or {unknown: why}.",
        "oneOf": [{"required": ["value", "source"]}, {"required": ["unlimited"]}, {"required": ["unknown"]}],
        "properties": {
            "value": {"type": "integer"},
            "period": {"type": "string"},
            "source": {"type": "string"},
            "also": {"type": "array", "items": {"type": "string"}},
            "unlimited": {"type": "string"},
            "unknown": {"type": "string"}
        }
    })
}

fn nullable(t: &str) -> Value {
    json!({"type": [t, "null"]})
}

/// The `list_subscriptions` output schema.
pub fn list_output() -> Value {
    json!({
        "type": "object",
        "required": ["total", "offset", "returned", "next_cursor", "subscriptions", "sources"],
        "properties": {
            "total": {"type": "integer"},
            "offset": {"type": "integer"},
            "returned": {"type": "integer"},
            "next_cursor": nullable("string"),
            "subscriptions": {"type": "array", "items": {
                "type": "object",
                "required": ["id", "state", "scope", "limits"],
                "properties": {
                    "id": {"type": "string"},
                    "display_name": nullable("string"),
                    "state": nullable("string"),
                    "scope": {"enum": ["product", "all_apis", "api", "service", "unknown"]},
                    "product": {"type": "string"},
                    "api": {"type": "string"},
                    "owner": nullable("string"),
                    "created": nullable("string"),
                    "limits": {"type": "array", "items": {
                        "type": "object",
                        "required": ["apis", "tpm", "rpm", "token_quota"],
                        "properties": {
                            "apis": {"type": "array", "items": {"type": "string"}},
                            "tpm": limit_schema(),
                            "rpm": limit_schema(),
                            "token_quota": limit_schema(),
                            "caveats": {"type": "array", "items": {"type": "string"}}
                        }
                    }},
                    "limits_unavailable": {"type": "string"}
                }
            }},
            "sources": {"type": "array", "items": {
                "type": "object",
                "required": ["id", "policy", "scope", "branch", "element", "attribute", "value"],
                "properties": {
                    "id": {"type": "string"},
                    "policy": {"type": "string"},
                    "scope": {"type": "string"},
                    "branch": {"type": "string"},
                    "element": {"type": "string"},
                    "attribute": {"type": "string"},
                    "value": {"type": "string"},
                    "named_value": {"type": "string"},
                    "secret": {"type": "boolean"},
                    "only_for": {"type": "string"},
                    "note": {"type": "string"}
                }
            }},
            "notes": {"type": "array", "items": {"type": "string"}}
        }
    })
}

/// The `what_if_quota` output schema.
pub fn what_if_output() -> Value {
    let minute = json!({"type": "object", "required": ["minute", "requests", "tokens"], "properties": {
        "minute": {"type": "string"}, "requests": {"type": "integer"}, "tokens": {"type": "integer"},
        "percent_of_proposed_tpm": {"type": "number"}, "percent_of_proposed_rpm": {"type": "number"},
        "throttled_requests": {"type": "integer"}
    }});
    let count = json!({"type": "integer", "minimum": 0});
    json!({
        "type": "object",
        "required": ["subscription_id", "days", "proposed", "observed", "throttled", "hours_utc", "worst_minutes"],
        "properties": {
            "subscription_id": {"type": "string"},
            "days": {"type": "integer"},
            "proposed": {"type": "object", "properties": {"tpm": nullable("integer"), "rpm": nullable("integer")}},
            "current": {"type": ["object", "null"], "properties": {
                "tpm": {"type": ["integer", "string"]}, "rpm": {"type": ["integer", "string"]}
            }},
            "observed": {"type": "object", "properties": {
                "requests": count, "tokens": count, "active_minutes": count,
                "first_minute": nullable("string"), "last_minute": nullable("string"),
                "peak_tokens_per_minute": {"anyOf": [minute, {"type": "null"}]},
                "peak_requests_per_minute": {"anyOf": [minute, {"type": "null"}]}
            }},
            "throttled": {"type": "object", "properties": {
                "minutes": count, "requests": count, "percent_of_requests": {"type": "number"}, "tokens": count,
                "minutes_over_tpm": count, "minutes_over_rpm": count
            }},
            "hours_utc": {"type": "array", "items": {"type": "object", "properties": {
                "hour": {"type": "integer", "minimum": 0, "maximum": 23}, "minutes": count, "requests": count
            }}},
            "worst_minutes": {"type": "array", "items": minute},
            "partial_error": nullable("string")
        }
    })
}

/// The plugin's manifest.
pub fn manifest() -> Manifest {
    let states = ["active", "suspended", "submitted", "rejected", "cancelled", "expired"];
    Manifest {
        name: "quota".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        description: "Subscriptions and their TPM/RPM/token quotas: list with sources, change one subscription's limits, what-if replay.".into(),
        tools: vec![
            ToolSpec::read(
                "list_subscriptions",
                "List APIM subscriptions (API keys) with their effective TPM, RPM and token quota on each API they reach. \
                 Each number cites its source (policy scope, <choose> branch, element, named value; in `sources`) or says \
                 why it is unlimited (e.g. the master key, or an all-APIs key no product branch matches). Keys are never \
                 returned. Paged: pass next_cursor as cursor. Operation-level policies are not read.",
                json!({
                    "type": "object",
                    "properties": {
                        "product_id": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^*#&+:<>?/]+$",
                                       "description": "Only subscriptions of this product (its id, e.g. aoai)."},
                        "state": {"type": "string", "enum": states, "description": "Only subscriptions in this state."},
                        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT,
                                  "description": "Page size."},
                        "cursor": {"type": "string", "minLength": 3, "maxLength": 40,
                                   "description": "next_cursor from the previous page (same product_id and state)."}
                    },
                    "additionalProperties": false
                }),
            )
            .title("APIM subscriptions and quotas")
            .output_schema(list_output())
            .build(),
            ToolSpec::write(
                "update_quota",
                "Change one APIM subscription's TPM, RPM (60 s window) and/or token quota, leaving every other subscription's \
                 limits unchanged. Returns a plan (old → new per number, who shares the old value, policy diff, ARM writes \
                 with ETags) that the server confirms and applies: an own limit is edited in place; a shared product or API \
                 limit gets an override branch for this subscription only; a limit held in a named value that only this \
                 subscription uses changes the named value. Before lowering a limit, run what_if_quota to see what it would \
                 have throttled.",
                json!({
                    "type": "object",
                    "required": ["subscription_id"],
                    "properties": {
                        "subscription_id": sid(),
                        "tpm": per_minute("New tokens per minute."),
                        "rpm": per_minute("New requests per minute."),
                        "token_quota": {"type": "integer", "minimum": 1, "maximum": MAX_TOKEN_QUOTA,
                                        "description": "New token quota per token_quota_period."},
                        "token_quota_period": {"type": "string", "enum": ["Hourly", "Daily", "Weekly", "Monthly", "Yearly"],
                                               "description": "Required with a new token quota unless one already applies."}
                    },
                    "additionalProperties": false
                }),
            )
            .title("Change a subscription's quota")
            .build(),
            ToolSpec::read(
                "what_if_quota",
                "Shadow mode before enforcing: replay a subscription's real per-minute requests and tokens from Log \
                 Analytics over the last `days` against a proposed TPM and/or RPM, and report the minutes and requests \
                 that would have been throttled, the peak burn (tokens/min, % of the proposed limit) and the UTC hours \
                 affected. Changes nothing.",
                json!({
                    "type": "object",
                    "required": ["subscription_id"],
                    "properties": {
                        "subscription_id": sid(),
                        "tpm": per_minute("Proposed tokens per minute."),
                        "rpm": per_minute("Proposed requests per minute."),
                        "days": {"type": "integer", "minimum": 1, "maximum": MAX_DAYS, "default": DEFAULT_DAYS,
                                 "description": "Days of history to replay."}
                    },
                    "additionalProperties": false
                }),
            )
            .title("What-if for a quota")
            .output_schema(what_if_output())
            .build(),
        ],
        reads: [
            "subscriptions",
            "products",
            "products/subscriptions",
            "products/apis",
            "products/policies",
            "apis",
            "apis/policies",
            "policies",
            "namedValues",
            "logs",
        ]
        .map(String::from)
        .to_vec(),
        writes: ["apis/policies", "products/policies", "policies", "namedValues"].map(String::from).to_vec(),
    }
}
