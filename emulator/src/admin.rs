//! The emulator's own admin endpoints under `/_emulator/` (no authentication, outside ARM).
//!
//! - `GET /_emulator` — index of these endpoints.
//! - `POST /_emulator/reset` — restore the seeded sandbox tenant (faults are kept).
//! - `POST /_emulator/faults` — add a fault rule (`faults::FaultSpec`); 201 with its `id`.
//! - `GET /_emulator/faults` — the active rules with `remaining` and `fired` counts.
//! - `DELETE /_emulator/faults` — clear every rule; `DELETE /_emulator/faults/{id}` — one rule.
//! - `GET /_emulator/state` — dump the whole state; subscription keys and secret values are
//!   redacted unless `?secrets=true`.
//!
//! - Telemetry (`telemetry::admin_routes`): `GET /_emulator/clock`, `POST /_emulator/clock/advance`,
//!   `POST|GET /_emulator/backends/{id}/outage`, `GET /_emulator/traffic`,
//!   `GET|PUT|DELETE /_emulator/traffic/{sid}`.
//!
//! Admin routes get the `Emulator` as state and bypass ARM authentication and fault injection.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};
use std::collections::HashMap;

use crate::Emulator;
use crate::faults::FaultSpec;

/// The admin router, nested at `/_emulator`.
pub fn routes() -> Router<Emulator> {
    Router::new()
        .route("/", get(index))
        .route("/reset", post(reset))
        .route("/faults", post(add_fault).get(list_faults).delete(clear_faults))
        .route("/faults/{id}", delete(remove_fault))
        .route("/state", get(state))
        .merge(crate::telemetry::admin_routes())
}

fn admin_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": {"code": "BadRequest", "message": message.into()}}))).into_response()
}

async fn index() -> Json<Value> {
    Json(json!({
        "endpoints": {
            "POST /_emulator/reset": "restore the seeded sandbox tenant",
            "POST /_emulator/faults": "inject faults on ARM calls: {path, method, status, retryAfter, rate, count, latencyMs, drop, code, message}",
            "GET /_emulator/faults": "list active fault rules",
            "DELETE /_emulator/faults": "clear all fault rules",
            "DELETE /_emulator/faults/{id}": "remove one fault rule",
            "GET /_emulator/state": "dump the state (?secrets=true to include keys and secret values)",
            "GET /_emulator/clock": "the simulated clock: now, history start, requests simulated",
            "POST /_emulator/clock/advance": "simulate {\"minutes\": N} more minutes under the policies in force",
            "POST /_emulator/backends/{id}/outage": "switch a backend's outage {\"enabled\": true|false, \"mode\": \"503\"|\"connectionFailure\"}",
            "GET /_emulator/backends/{id}/outage": "a backend's outage switch and breaker state",
            "GET /_emulator/traffic": "client demand profiles by subscription, and policy parts the model could not evaluate",
            "PUT /_emulator/traffic/{sid}": "set a subscription's demand profile {peakRpm, promptTokens, completionTokens, curve, weekend, repeatShare, deployment, clientIps}",
            "DELETE /_emulator/traffic/{sid}": "stop a subscription's traffic"
        }
    }))
}

async fn reset(State(emu): State<Emulator>) -> Response {
    match emu.store().reset() {
        Ok(()) => {
            // Telemetry starts over too: the history is simulated again from the restored tenant.
            emu.telemetry().reset(emu.store().snapshot());
            Json(json!({"reset": true, "generation": emu.store().generation()})).into_response()
        }
        Err(e) => admin_error(StatusCode::INTERNAL_SERVER_ERROR, e.0),
    }
}

async fn add_fault(State(emu): State<Emulator>, body: axum::body::Bytes) -> Response {
    let spec: FaultSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, format!("Invalid fault rule: {e}")),
    };
    match emu.faults().add(spec) {
        Ok(rule) => (StatusCode::CREATED, Json(rule)).into_response(),
        Err(e) => admin_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn list_faults(State(emu): State<Emulator>) -> Json<Value> {
    Json(json!({ "value": emu.faults().list() }))
}

async fn clear_faults(State(emu): State<Emulator>) -> Json<Value> {
    Json(json!({ "cleared": emu.faults().clear() }))
}

async fn remove_fault(State(emu): State<Emulator>, Path(id): Path<String>) -> Response {
    if emu.faults().remove(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        admin_error(StatusCode::NOT_FOUND, format!("No fault rule '{id}'."))
    }
}

async fn state(State(emu): State<Emulator>, Query(q): Query<HashMap<String, String>>) -> Response {
    let secrets = q.get("secrets").is_some_and(|v| v == "true");
    let snapshot = emu.store().snapshot();
    let mut v = serde_json::to_value(&snapshot).unwrap_or(Value::Null);
    if !secrets && let Some(services) = v.get_mut("services").and_then(Value::as_object_mut) {
        for svc in services.values_mut() {
            if let Some(subs) = svc.get_mut("subscriptions").and_then(Value::as_object_mut) {
                for s in subs.values_mut() {
                    for k in ["primaryKey", "secondaryKey"] {
                        if let Some(p) = s.pointer_mut(&format!("/properties/{k}")) {
                            *p = json!("<redacted>");
                        }
                    }
                }
            }
            if let Some(nvs) = svc.get_mut("named_values").and_then(Value::as_object_mut) {
                for n in nvs.values_mut() {
                    if n.pointer("/properties/secret") == Some(&json!(true))
                        && let Some(p) = n.pointer_mut("/properties/value")
                    {
                        *p = json!("<redacted>");
                    }
                }
            }
        }
    }
    Json(v).into_response()
}
