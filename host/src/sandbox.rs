//! The sandbox: the same server, pointed at the in-process APIM emulator.
//!
//! Nothing in the host or the plugins knows it is a sandbox except the ARM endpoint and the
//! credential: the emulator listens on a loopback port and the host talks to it over HTTP with
//! the same ARM client it uses for Azure.

use std::net::{Ipv4Addr, SocketAddr};

use aigw_emulator::{Emulator, RunningEmulator};

use serde_json::{Value, json};

use crate::arm::{ArmTarget, Credential};
use crate::runtime::api::ToolError;
use crate::runtime::imports::ProgressSink;

/// The sandbox tenant's Log Analytics workspace id.
pub const SANDBOX_WORKSPACE_ID: &str = "11111111-1111-1111-1111-111111111111";

/// A running sandbox emulator and how to reach it.
pub struct Sandbox {
    pub emulator: RunningEmulator,
    pub target: ArmTarget,
    pub credential: Credential,
}

/// Starts the emulator on `127.0.0.1:port` (0: any free port) with a fresh random token.
pub async fn start(port: u16, api_version: &str) -> anyhow::Result<Sandbox> {
    let token = format!("sandbox-{}", uuid::Uuid::new_v4().simple());
    let emulator = Emulator::new(aigw_emulator::Options::new(token.clone()))?;
    let running = emulator.serve(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    tracing::info!("sandbox emulator listening on {}", running.base_url);
    let target = ArmTarget {
        endpoint: running.base_url.clone(),
        service_id: aigw_emulator::sandbox_service_id(),
        api_version: api_version.to_string(),
    };
    Ok(Sandbox { target, credential: Credential::Static(token.into()), emulator: running })
}

/// The server's instructions in sandbox mode: say plainly that nothing reaches Azure.
pub fn instructions(base_url: &str) -> String {
    format!(
        "LOCAL SANDBOX. This server governs a local emulator of Azure API Management ({base_url}), seeded \
         with a demo tenant: service apim-sandbox, API inference-api, product aoai, team subscriptions \
         growth, prod-critical, data-science, search and support, backend pool aoai-pool. Changes you \
         make go to the emulator only; nothing reaches Azure. The simulated clock stands still until you \
         advance it with sandbox_advance_clock; sandbox_set_outage takes a backend down for a failover drill. {}",
        crate::cli::TOOL_GUIDANCE
    )
}

/// The sandbox's controls for an agent: the simulated clock and backend outages.
///
/// The emulator's clock stands still between advances and outages are admin switches, so an
/// agent could neither "wait an hour" nor "take East US down". These controls drive the
/// emulator's admin endpoints (`/_emulator/clock`, `/_emulator/backends/{id}/outage`) over
/// loopback HTTP. They exist only in `sandbox` mode: `serve` has no emulator, and the host
/// tools built on them are not registered there.
///
/// Invariant: a timed outage ("for 2 minutes") ends at exactly that simulated minute — an
/// advance is cut into steps at every outage's end, and the outage is switched off there.
pub struct SandboxControls {
    admin: String,
    http: reqwest::Client,
    /// Backend → simulated minutes its timed outage has left.
    timed: tokio::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

/// Minutes simulated per step of an advance: each step ends with a progress notification.
const ADVANCE_STEP_MINUTES: u64 = 60;
/// The most minutes the emulator simulates per advance (its own limit, not a copy of it).
pub use aigw_emulator::telemetry::MAX_ADVANCE_MINUTES;

impl SandboxControls {
    pub fn new(base_url: &str) -> Self {
        Self {
            admin: format!("{}/_emulator", base_url.trim_end_matches('/')),
            http: reqwest::Client::new(),
            timed: Default::default(),
        }
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, ToolError> {
        let mut request = self.http.request(method, format!("{}/{path}", self.admin));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ToolError::Internal(format!("the sandbox emulator did not answer: {e}")))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(ToolError::NotFound(answer["error"]["message"].as_str().unwrap_or("not found").to_string()));
        }
        if !status.is_success() {
            let message = answer["error"]["message"].as_str().unwrap_or("the emulator refused").to_string();
            return Err(ToolError::InvalidInput { field: "arguments".into(), message });
        }
        Ok(answer)
    }

    /// The simulated clock, with the outages that are on (and the minutes the timed ones have left).
    pub async fn clock(&self) -> Result<Value, ToolError> {
        let mut clock = self.admin(reqwest::Method::GET, "clock", None).await?;
        let timed = self.timed.lock().await;
        clock["timedOutages"] =
            json!(timed.iter().map(|(b, m)| json!({"backend": b, "minutesLeft": m})).collect::<Vec<_>>());
        Ok(clock)
    }

    /// Switches `backend`'s outage on (optionally for `minutes` of simulated time) or off.
    pub async fn set_outage(
        &self,
        backend: &str,
        enabled: bool,
        minutes: Option<u64>,
        mode: Option<&str>,
    ) -> Result<Value, ToolError> {
        // The tool's schema admits only unreserved characters, so the id is one path segment as is.
        let path = format!("backends/{backend}/outage");
        let mut body = json!({"enabled": enabled});
        if let Some(mode) = mode {
            body["mode"] = mode.into();
        }
        let mut answer = self.admin(reqwest::Method::POST, &path, Some(body)).await?;
        let mut timed = self.timed.lock().await;
        let name = answer["backend"].as_str().unwrap_or(backend).to_string();
        match (enabled, minutes) {
            (true, Some(minutes)) => {
                timed.insert(name, minutes);
                answer["minutesLeft"] = minutes.into();
            }
            _ => {
                timed.remove(&name);
            }
        }
        Ok(answer)
    }

    /// Simulates `minutes` more minutes, in steps, reporting progress after each; timed outages
    /// end at their minute.
    pub async fn advance(&self, minutes: u64, progress: Option<ProgressSink>) -> Result<Value, ToolError> {
        let mut done = 0;
        let mut requests = 0;
        let mut ended = Vec::new();
        let mut last = Value::Null;
        while done < minutes {
            let next_end = self.timed.lock().await.values().copied().min();
            let step = (minutes - done).min(ADVANCE_STEP_MINUTES).min(next_end.filter(|m| *m > 0).unwrap_or(u64::MAX));
            last = self.admin(reqwest::Method::POST, "clock/advance", Some(json!({"minutes": step}))).await?;
            requests += last["requestsSimulated"].as_u64().unwrap_or(0);
            done += step;
            let expired: Vec<String> = {
                let mut timed = self.timed.lock().await;
                for left in timed.values_mut() {
                    *left = left.saturating_sub(step);
                }
                let expired = timed.iter().filter(|(_, m)| **m == 0).map(|(b, _)| b.clone()).collect();
                timed.retain(|_, m| *m > 0);
                expired
            };
            for backend in expired {
                let path = format!("backends/{backend}/outage");
                self.admin(reqwest::Method::POST, &path, Some(json!({"enabled": false}))).await?;
                ended.push(json!({"backend": backend, "endedAt": last["now"]}));
            }
            if let Some(progress) = &progress {
                progress(done as f64, Some(minutes as f64), Some(format!("simulated {done} of {minutes} minutes")));
            }
        }
        last["advancedMinutes"] = minutes.into();
        last["requestsSimulated"] = requests.into();
        last["outagesEnded"] = ended.into();
        Ok(last)
    }
}
