//! Plans waiting for the user's answer in a 2026-07-28 round trip.
//!
//! The opaque `requestState` we hand the client is a random key into this map, never the plan
//! itself: a client cannot forge or alter a plan, and a retry for another tool or other
//! arguments is refused. Entries expire after [`PENDING_TTL`] and are used at most once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::changes::ReviewedPlan;

/// How long a plan waits for its confirmation.
pub const PENDING_TTL: Duration = Duration::from_secs(600);

/// Most plans waiting at once: a client that asks for confirmations and never answers them must
/// not grow the server without bound. A person answers one at a time; 64 is far beyond that.
pub const MAX_PENDING: usize = 64;

/// A plan shown to the user, waiting for the answer.
#[derive(Debug, Clone)]
pub struct Pending {
    pub tool: String,
    pub arguments: Value,
    pub plan: ReviewedPlan,
    created: Instant,
}

/// The waiting plans.
#[derive(Default)]
pub struct PendingPlans {
    plans: Mutex<HashMap<String, Pending>>,
}

impl PendingPlans {
    /// Stores a plan and returns the state token for the client.
    pub fn insert(&self, tool: &str, arguments: &Value, plan: ReviewedPlan) -> String {
        let token = format!("plan-{}", uuid::Uuid::new_v4().simple());
        let mut plans = self.plans.lock().unwrap();
        plans.retain(|_, p| p.created.elapsed() < PENDING_TTL);
        if plans.len() >= MAX_PENDING {
            // The oldest waiting plan gives way: its retry will say it is unknown.
            if let Some(oldest) = plans.iter().min_by_key(|(_, p)| p.created).map(|(k, _)| k.clone()) {
                plans.remove(&oldest);
            }
        }
        plans.insert(
            token.clone(),
            Pending { tool: tool.into(), arguments: arguments.clone(), plan, created: Instant::now() },
        );
        token
    }

    /// Takes the plan for `token` if it is still valid and was made for `tool` and `arguments`.
    pub fn take(&self, token: &str, tool: &str, arguments: &Value) -> Result<Pending, String> {
        let mut plans = self.plans.lock().unwrap();
        let pending =
            plans.remove(token).ok_or("this confirmation is unknown or was already used; call the tool again")?;
        if pending.created.elapsed() >= PENDING_TTL {
            return Err("this confirmation expired; call the tool again to see a fresh plan".into());
        }
        if pending.tool != tool || pending.arguments != *arguments {
            return Err("this confirmation was for another call (tool or arguments differ); call the tool again".into());
        }
        Ok(pending)
    }
}
