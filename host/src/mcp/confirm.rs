//! Asking the user before a plan is applied, in whichever way the client can answer.
//!
//! - 2025-11-25 clients that declared elicitation: a form elicitation (`elicitation/create`)
//!   sent while the tool call waits, showing what the host computed from live state (each
//!   write, each resource's diff) and, quoted below, the plugin's own summary and diff.
//! - 2026-07-28 clients that declared elicitation: the tool call answers `input_required` with
//!   the same form; the client retries the call with the user's answer and our opaque state.
//! - Clients that cannot elicit: the call is refused, and the message says how an operator can
//!   turn confirmation off (`--dangerously-skip-confirmation`).
//!
//! Only an explicit accept with `apply: true` applies a plan. Decline, cancel, a timeout, a
//! malformed answer: nothing is written.

use std::collections::BTreeMap;
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::{
    ElicitRequest, ElicitRequestParams, ElicitationAction, ElicitationSchema, InputRequest, InputRequests,
    InputResponses, ProtocolVersion,
};
use rmcp::service::{Peer, RequestContext};

use crate::changes::ReviewedPlan;

/// The key of our elicitation in an MRTR round trip.
pub const INPUT_KEY: &str = "confirm_change";
/// How long the user has to answer an elicitation.
const ELICIT_TIMEOUT: Duration = Duration::from_secs(600);

/// How this call can be confirmed.
#[derive(Clone)]
pub enum Channel {
    /// The operator turned confirmation off.
    Skip,
    /// Ask now, while the call waits (2025-11-25 elicitation).
    Elicit(Peer<RoleServer>),
    /// Answer `input_required` and wait for the client's retry (2026-07-28).
    InputRequired,
    /// The client cannot be asked.
    Unavailable,
}

impl Channel {
    /// The channel for a request, from the negotiated revision and the client's capabilities.
    pub fn for_request(context: &RequestContext<RoleServer>, skip: bool) -> Self {
        if skip {
            return Channel::Skip;
        }
        let can_elicit = context.client_capabilities().is_some_and(|c| c.elicitation.is_some());
        if !can_elicit {
            return Channel::Unavailable;
        }
        let modern = context.protocol_version().is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
        if modern { Channel::InputRequired } else { Channel::Elicit(context.peer.clone()) }
    }
}

/// What the user said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Accept,
    /// Not accepted: `declined`, `cancelled`, `unanswered`, ...
    Refuse(String),
}

/// The message shown to the user: computed by the host from live state (see
/// `changes::review`); the plugin's words are quoted below the host's.
pub fn message(plan: &ReviewedPlan, note: Option<&str>) -> String {
    plan.message(note)
}

fn params(plan: &ReviewedPlan, note: Option<&str>) -> ElicitRequestParams {
    let schema = ElicitationSchema::builder()
        .required_bool_property("apply", |b| {
            b.title("Apply this change")
                .description("Yes applies the writes listed above; no leaves everything as it is.")
        })
        .build_unchecked();
    ElicitRequestParams::FormElicitationParams { meta: None, message: message(plan, note), requested_schema: schema }
}

/// Asks the user now (2025-11-25 elicitation).
pub async fn elicit(peer: &Peer<RoleServer>, plan: &ReviewedPlan, note: Option<&str>) -> Decision {
    match tokio::time::timeout(ELICIT_TIMEOUT, peer.create_elicitation(params(plan, note))).await {
        Err(_) => Decision::Refuse("unanswered (timed out)".into()),
        Ok(Err(e)) => Decision::Refuse(format!("the confirmation could not be asked ({e})")),
        Ok(Ok(result)) => decide(result.action, result.content.as_ref()),
    }
}

/// The `input_required` requests for a 2026-07-28 round trip.
pub fn input_requests(plan: &ReviewedPlan, note: Option<&str>) -> InputRequests {
    let mut requests = BTreeMap::new();
    requests.insert(INPUT_KEY.to_string(), InputRequest::Elicitation(ElicitRequest::new(params(plan, note))));
    requests
}

/// The user's answer in a 2026-07-28 retry.
pub fn decision_from(responses: Option<&InputResponses>) -> Decision {
    let Some(answer) = responses.and_then(|r| r.get(INPUT_KEY)) else {
        return Decision::Refuse("unanswered (no confirmation in the retry)".into());
    };
    let action: Option<ElicitationAction> = serde_json::from_value(answer["action"].clone()).ok();
    match action {
        Some(action) => decide(action, answer.get("content")),
        None => Decision::Refuse("unanswered (malformed confirmation)".into()),
    }
}

fn decide(action: ElicitationAction, content: Option<&serde_json::Value>) -> Decision {
    match action {
        ElicitationAction::Accept if content.and_then(|c| c["apply"].as_bool()) == Some(true) => Decision::Accept,
        ElicitationAction::Accept => Decision::Refuse("declined (apply was not ticked)".into()),
        ElicitationAction::Decline => Decision::Refuse("declined".into()),
        ElicitationAction::Cancel => Decision::Refuse("cancelled".into()),
        _ => Decision::Refuse("gave an answer this server does not understand".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_an_accept_with_apply_true_applies() {
        assert_eq!(decide(ElicitationAction::Accept, Some(&json!({"apply": true}))), Decision::Accept);
        assert!(matches!(decide(ElicitationAction::Accept, Some(&json!({"apply": false}))), Decision::Refuse(_)));
        assert!(matches!(decide(ElicitationAction::Accept, None), Decision::Refuse(_)));
        assert!(matches!(decide(ElicitationAction::Decline, None), Decision::Refuse(_)));
        assert!(matches!(decide(ElicitationAction::Cancel, None), Decision::Refuse(_)));
    }

    #[test]
    fn a_retry_without_our_answer_is_not_an_accept() {
        assert!(matches!(decision_from(None), Decision::Refuse(_)));
        let mut responses = InputResponses::new();
        responses.insert("other".into(), json!({"action": "accept", "content": {"apply": true}}));
        assert!(matches!(decision_from(Some(&responses)), Decision::Refuse(_)));
        responses.insert(INPUT_KEY.into(), json!({"action": "accept", "content": {"apply": true}}));
        assert_eq!(decision_from(Some(&responses)), Decision::Accept);
    }
}
