//! Telemetry: the traffic model, the simulated clock, and the Azure APIs that read what the model
//! produced — Azure Monitor metrics (`metrics`), the Log Analytics and Application Insights query
//! APIs (`logs`) — plus the admin endpoints that drive it (`/_emulator/clock`,
//! `/_emulator/backends/{id}/outage`, `/_emulator/traffic`).
//!
//! Lifecycle: the history (the `history_minutes` before the start time, 7 days by default) is
//! simulated lazily, on the first telemetry request, from a snapshot of the state taken when the
//! emulator was created (or reset) — so it reflects the tenant as it was at start even if ARM
//! writes happen before anyone looks at telemetry. After that, time only moves through
//! `POST /_emulator/clock/advance`, and each advanced minute runs under the policies stored when
//! it is simulated. Telemetry is in memory only; it is regenerated (identically, for the same
//! seed and start) after a restart.
//!
//! Invariants: the simulated clock is minute-aligned and never moves backwards; telemetry exists
//! exactly for `[history_start, now)`; the lock is held while simulating, never while a KQL query
//! runs (queries work on cheap clones of the tables).

pub mod data;
pub mod expr;
pub mod logs;
pub mod metrics;
pub mod model;
pub mod policy_eval;
pub mod profile;
pub mod rng;
pub mod world;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use crate::Emulator;
use crate::store::{State as World0, Store};
use data::{Data, ServiceFacts};
use model::{Model, OutageMode};
use profile::Profile;
use world::World;

/// The sandbox tenant's Log Analytics workspace id.
pub const SANDBOX_WORKSPACE_ID: &str = "11111111-1111-1111-1111-111111111111";
/// The sandbox Application Insights component's application id (for `/v1/apps/{appId}/query`).
pub const SANDBOX_APP_ID: &str = "22222222-2222-2222-2222-222222222222";
/// The default seed of the traffic model.
pub const DEFAULT_SEED: u64 = 0x5EED_A16A_7E4A_0001;
/// Log Analytics' cap on rows returned by one query.
pub const LOG_ANALYTICS_ROW_CAP: usize = 500_000;

/// How the telemetry is generated.
#[derive(Debug, Clone)]
pub struct TelemetryOptions {
    /// Seed of the traffic model's randomness.
    pub seed: u64,
    /// The simulated "now" at start, in Unix seconds (rounded down to the minute). `None`: the
    /// wall clock when the emulator is created.
    pub start_unix: Option<i64>,
    /// Minutes of history simulated before the start (default 7 days).
    pub history_minutes: u32,
    /// Rows a Log Analytics query returns at most (Azure: 500,000).
    pub row_cap: usize,
    /// Client demand by subscription id; `None`: the seeded teams' profiles.
    pub profiles: Option<BTreeMap<String, Profile>>,
}

impl Default for TelemetryOptions {
    fn default() -> Self {
        TelemetryOptions {
            seed: DEFAULT_SEED,
            start_unix: None,
            history_minutes: 7 * 24 * 60,
            row_cap: LOG_ANALYTICS_ROW_CAP,
            profiles: None,
        }
    }
}

/// The running simulation.
pub struct Sim {
    /// Unix minute of the first simulated minute.
    pub history_start: i64,
    /// Unix minute the clock shows: everything before it has been simulated.
    pub now: i64,
    pub model: Model,
    pub data: Data,
    pub profiles: BTreeMap<String, Profile>,
    profiles_version: u64,
    world: World,
    world_key: (u64, u64),
    pub row_cap: usize,
}

enum Slot {
    /// Not simulated yet: the state to simulate the history from.
    Pending(Box<World0>),
    Ready(Box<Sim>),
}

/// The emulator's telemetry (shared through `Emulator`).
pub struct Telemetry {
    options: TelemetryOptions,
    start_minute: i64,
    slot: Mutex<Slot>,
}

/// The simulated time as a KQL datetime.
pub fn minute_dt(minute: i64) -> aigw_kql::DateTime {
    aigw_kql::DateTime::from_unix_seconds(minute * 60).unwrap_or(aigw_kql::DateTime::UNIX_EPOCH)
}

fn default_profiles() -> BTreeMap<String, Profile> {
    profile::seeded().into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

impl Telemetry {
    /// Telemetry for a tenant whose state at start is `initial`.
    pub fn new(options: TelemetryOptions, initial: World0) -> Telemetry {
        let start = options.start_unix.unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
        });
        Telemetry { start_minute: start.div_euclid(60), options, slot: Mutex::new(Slot::Pending(Box::new(initial))) }
    }

    /// The options it was created with.
    pub fn options(&self) -> &TelemetryOptions {
        &self.options
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the simulation, simulating the history first if that has not happened yet.
    pub fn with<R>(&self, store: &Store, f: impl FnOnce(&mut Sim, &Store) -> R) -> R {
        let mut slot = self.lock();
        if let Slot::Pending(initial) = &*slot {
            let sim = self.fill(initial);
            *slot = Slot::Ready(Box::new(sim));
        }
        let Slot::Ready(sim) = &mut *slot else { unreachable!("filled above") };
        f(sim, store)
    }

    /// Whether the history has been simulated.
    pub fn is_ready(&self) -> bool {
        matches!(&*self.lock(), Slot::Ready(_))
    }

    /// Simulates the history now (e.g. on a background thread right after start) instead of on
    /// the first telemetry request.
    pub fn warm(&self, store: &Store) {
        self.with(store, |_, _| ());
    }

    /// Forgets all telemetry: the history is simulated again (lazily) from `initial`, the clock
    /// goes back to the start time, outages are cleared, profiles return to the options'.
    pub fn reset(&self, initial: World0) {
        *self.lock() = Slot::Pending(Box::new(initial));
    }

    fn fill(&self, initial: &World0) -> Sim {
        let history_start = self.start_minute - self.options.history_minutes as i64;
        let profiles = self.options.profiles.clone().unwrap_or_else(default_profiles);
        let mut sim = Sim {
            history_start,
            now: history_start,
            model: Model::new(self.options.seed),
            data: Data::new(service_facts(initial), history_start),
            profiles,
            profiles_version: 0,
            world: World::default(),
            world_key: (u64::MAX, u64::MAX),
            row_cap: self.options.row_cap,
        };
        sim.world = World::compile(initial, &sim.profiles, u64::MAX);
        sim.world_key = (u64::MAX, 0);
        while sim.now < self.start_minute {
            sim.model.simulate_minute(&sim.world, sim.now, &mut sim.data);
            sim.now += 1;
        }
        sim
    }
}

impl Sim {
    /// Simulates `minutes` more minutes under the state in `store` at each minute.
    pub fn advance(&mut self, store: &Store, minutes: u32) {
        for _ in 0..minutes {
            let generation = store.generation();
            if self.world_key != (generation, self.profiles_version) {
                self.world = store.read(|s| World::compile(s, &self.profiles, generation));
                self.world_key = (generation, self.profiles_version);
            }
            self.model.simulate_minute(&self.world, self.now, &mut self.data);
            self.now += 1;
        }
    }

    /// Replaces (or with `None` removes) a subscription's demand profile.
    pub fn set_profile(&mut self, sid: &str, profile: Option<Profile>) {
        match profile {
            Some(p) => self.profiles.insert(sid.to_ascii_lowercase(), p),
            None => self.profiles.remove(&sid.to_ascii_lowercase()),
        };
        self.profiles_version += 1;
    }

    /// A simulation over hand-made data (tests of the query APIs).
    #[cfg(test)]
    pub(crate) fn for_test(data: Data, now: i64) -> Sim {
        Sim {
            history_start: data.first_minute,
            now,
            model: Model::new(0),
            data,
            profiles: BTreeMap::new(),
            profiles_version: 0,
            world: World::default(),
            world_key: (0, 0),
            row_cap: LOG_ANALYTICS_ROW_CAP,
        }
    }

    /// The world the last simulated minute ran under.
    pub fn world(&self) -> &World {
        &self.world
    }
}

/// The constant facts of log rows, from the sandbox service and its Application Insights logger.
fn service_facts(state: &World0) -> ServiceFacts {
    let svc = state.sandbox();
    let resource_id = svc.map(|s| s.id()).unwrap_or_else(crate::sandbox_service_id);
    let logger = svc.and_then(|s| {
        s.loggers.values().find(|l| l.str("loggerType").is_some_and(|t| t.eq_ignore_ascii_case("applicationInsights")))
    });
    let ai_id = logger.and_then(|l| l.str("resourceId")).map(str::to_string).unwrap_or_else(|| {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/microsoft.insights/components/appi-ai-gateway",
            crate::SANDBOX_SUBSCRIPTION_ID,
            crate::SANDBOX_RESOURCE_GROUP
        )
    });
    let ikey =
        match (svc, logger.and_then(|l| l.properties.get("credentials")).and_then(|c| c.get("instrumentationKey"))) {
            (Some(s), Some(Value::String(k))) => s.substitute_named_values(k),
            _ => String::new(),
        };
    let region = svc.map(|s| s.location.clone()).unwrap_or_else(|| "East US".into());
    ServiceFacts {
        role_name: format!("{} {}", svc.map(|s| s.name.as_str()).unwrap_or(crate::SANDBOX_SERVICE_NAME), region),
        region,
        resource_id: resource_id.to_ascii_lowercase(),
        azure_subscription_id: crate::SANDBOX_SUBSCRIPTION_ID.into(),
        workspace_id: SANDBOX_WORKSPACE_ID.into(),
        app_insights_name: ai_id.rsplit('/').next().unwrap_or_default().to_string(),
        app_insights_resource_id: ai_id.to_ascii_lowercase(),
        app_insights_app_id: SANDBOX_APP_ID.into(),
        instrumentation_key: ikey,
    }
}

// ---------------------------------------------------------------------------------------------
// Admin endpoints.

/// The telemetry admin routes, merged into `/_emulator`.
pub fn admin_routes() -> Router<Emulator> {
    Router::new()
        .route("/clock", get(clock))
        .route("/clock/advance", post(advance))
        .route("/backends/{id}/outage", post(set_outage).get(get_outage))
        .route("/traffic", get(list_traffic))
        .route("/traffic/{sid}", put(put_traffic).get(get_traffic).delete(delete_traffic))
}

fn admin_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": {"code": "BadRequest", "message": message.into()}}))).into_response()
}

fn clock_json(sim: &Sim) -> Value {
    json!({
        "now": minute_dt(sim.now).to_string(),
        "historyStart": minute_dt(sim.history_start).to_string(),
        "simulatedMinutes": sim.now - sim.history_start,
        "requests": sim.data.total_requests,
    })
}

/// Runs a blocking telemetry job off the async workers.
async fn blocking<R: Send + 'static>(emu: Emulator, f: impl FnOnce(&Emulator) -> R + Send + 'static) -> R {
    match tokio::task::spawn_blocking(move || f(&emu)).await {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

async fn clock(State(emu): State<Emulator>) -> Response {
    blocking(emu, |emu| Json(emu.telemetry().with(emu.store(), |sim, _| clock_json(sim))).into_response()).await
}

/// The most minutes one `advance` simulates (30 days).
pub const MAX_ADVANCE_MINUTES: u64 = 30 * 24 * 60;

async fn advance(State(emu): State<Emulator>, body: axum::body::Bytes) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return admin_error(
                StatusCode::BAD_REQUEST,
                format!("The body must be JSON like {{\"minutes\": 60}}: {e}"),
            );
        }
    };
    let minutes = match v.get("minutes") {
        Some(m) => match m.as_u64() {
            Some(n) if (1..=MAX_ADVANCE_MINUTES).contains(&n) => n as u32,
            _ => {
                return admin_error(
                    StatusCode::BAD_REQUEST,
                    format!("'minutes' must be an integer from 1 to {MAX_ADVANCE_MINUTES}, got {m}"),
                );
            }
        },
        None => return admin_error(StatusCode::BAD_REQUEST, "'minutes' is required (an integer number of minutes)"),
    };
    if let Some(k) = v.as_object().and_then(|o| o.keys().find(|k| *k != "minutes")) {
        return admin_error(StatusCode::BAD_REQUEST, format!("Unknown field '{k}'; only 'minutes' is accepted"));
    }
    blocking(emu, move |emu| {
        emu.telemetry().with(emu.store(), |sim, store| {
            let before = sim.data.total_requests;
            sim.advance(store, minutes);
            let mut out = clock_json(sim);
            out["advancedMinutes"] = json!(minutes);
            out["requestsSimulated"] = json!(sim.data.total_requests - before);
            Json(out).into_response()
        })
    })
    .await
}

fn outage_json(id: &str, mode: Option<OutageMode>) -> Value {
    json!({"backend": id, "enabled": mode.is_some(), "mode": mode})
}

fn backend_name(emu: &Emulator, id: &str) -> Option<String> {
    emu.store().read(|s| s.sandbox().and_then(|svc| svc.backend(id)).map(|b| b.name))
}

async fn set_outage(State(emu): State<Emulator>, Path(id): Path<String>, body: axum::body::Bytes) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return admin_error(
                StatusCode::BAD_REQUEST,
                format!("The body must be JSON like {{\"enabled\": true}}: {e}"),
            );
        }
    };
    let Some(enabled) = v.get("enabled").and_then(Value::as_bool) else {
        return admin_error(StatusCode::BAD_REQUEST, "'enabled' is required and must be true or false");
    };
    let mode = match v.get("mode") {
        None | Some(Value::Null) => OutageMode::Status503,
        Some(m) => match serde_json::from_value::<OutageMode>(m.clone()) {
            Ok(m) => m,
            Err(_) => {
                return admin_error(
                    StatusCode::BAD_REQUEST,
                    format!("'mode' must be \"503\" or \"connectionFailure\", got {m}"),
                );
            }
        },
    };
    let Some(name) = backend_name(&emu, &id) else {
        return admin_error(StatusCode::NOT_FOUND, format!("Backend '{id}' does not exist in the sandbox service."));
    };
    blocking(emu, move |emu| {
        emu.telemetry().with(emu.store(), |sim, _| {
            let key = name.to_ascii_lowercase();
            if enabled {
                sim.model.outages.insert(key, mode);
            } else {
                sim.model.outages.remove(&key);
            }
            let mut out = outage_json(&name, enabled.then_some(mode));
            out["now"] = json!(minute_dt(sim.now).to_string());
            Json(out).into_response()
        })
    })
    .await
}

async fn get_outage(State(emu): State<Emulator>, Path(id): Path<String>) -> Response {
    let Some(name) = backend_name(&emu, &id) else {
        return admin_error(StatusCode::NOT_FOUND, format!("Backend '{id}' does not exist in the sandbox service."));
    };
    blocking(emu, move |emu| {
        emu.telemetry().with(emu.store(), |sim, _| {
            let key = name.to_ascii_lowercase();
            let mut out = outage_json(&name, sim.model.outages.get(&key).copied());
            out["breakerOpen"] = json!(sim.model.breaker_open(&name, sim.now * 60));
            Json(out).into_response()
        })
    })
    .await
}

async fn list_traffic(State(emu): State<Emulator>) -> Response {
    blocking(emu, |emu| {
        emu.telemetry().with(emu.store(), |sim, _| {
            let notes: serde_json::Map<String, Value> = sim
                .world()
                .plans
                .iter()
                .filter(|p| !p.pipeline.notes.is_empty())
                .map(|p| (p.sub.clone(), json!(p.pipeline.notes)))
                .collect();
            Json(json!({"value": sim.profiles, "policyNotes": notes})).into_response()
        })
    })
    .await
}

async fn get_traffic(State(emu): State<Emulator>, Path(sid): Path<String>) -> Response {
    blocking(emu, move |emu| {
        emu.telemetry().with(emu.store(), |sim, _| match sim.profiles.get(&sid.to_ascii_lowercase()) {
            Some(p) => Json(json!(p)).into_response(),
            None => admin_error(StatusCode::NOT_FOUND, format!("Subscription '{sid}' has no traffic profile.")),
        })
    })
    .await
}

async fn put_traffic(State(emu): State<Emulator>, Path(sid): Path<String>, body: axum::body::Bytes) -> Response {
    let p: Profile = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, format!("Invalid traffic profile: {e}")),
    };
    if let Err(e) = p.validate() {
        return admin_error(StatusCode::BAD_REQUEST, format!("Invalid traffic profile: {e}"));
    }
    blocking(emu, move |emu| {
        emu.telemetry().with(emu.store(), |sim, _| {
            sim.set_profile(&sid, Some(p.clone()));
            Json(json!(p)).into_response()
        })
    })
    .await
}

async fn delete_traffic(State(emu): State<Emulator>, Path(sid): Path<String>) -> Response {
    blocking(emu, move |emu| {
        emu.telemetry().with(emu.store(), |sim, _| {
            if sim.profiles.contains_key(&sid.to_ascii_lowercase()) {
                sim.set_profile(&sid, None);
                StatusCode::NO_CONTENT.into_response()
            } else {
                admin_error(StatusCode::NOT_FOUND, format!("Subscription '{sid}' has no traffic profile."))
            }
        })
    })
    .await
}
