//! The Log Analytics query API (`/v1/workspaces/{workspaceId}/query`) over the sandbox
//! workspace, and the Application Insights query API (`/v1/apps/{appId}/query`) over the sandbox
//! component, both answered by `aigw-kql` over the tables the traffic model wrote.
//!
//! - Workspace tables: `ApiManagementGatewayLogs`, `ApiManagementGatewayLlmLog`, `AppMetrics`.
//!   Application tables: `customMetrics`.
//! - `POST` with `{"query": "...", "timespan": "PT1H" | "start/end" | ...}` (other body fields,
//!   such as `workspaces`, are accepted and ignored), or `GET ?query=...&timespan=...`.
//! - `now()`/`ago()` and a relative `timespan` are relative to the simulated clock. Without a
//!   `timespan` the query sees all data (as the API does; only the portal adds a default).
//! - Results are capped at `row_cap` rows (Azure: 500,000): the first rows are returned with
//!   HTTP 200 and a `PartialError` in `error`, the way Log Analytics reports truncation.
//! - Authentication is the emulator's bearer token (checked by the envelope middleware).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::HashMap;

use crate::Emulator;
use crate::arm::envelope::json_response;
use crate::util::uuid_v4;
use aigw_kql::{KqlError, Table, parse_timespan_param, response::BAD_ARGUMENT_MESSAGE};

use super::{SANDBOX_APP_ID, SANDBOX_WORKSPACE_ID};

/// Which query API a request came to.
#[derive(Clone, Copy)]
enum Target {
    Workspace,
    App,
}

fn error(status: StatusCode, code: &str, message: &str, inner: Option<(&str, String)>) -> Response {
    let mut e = json!({"message": message, "code": code, "correlationId": uuid_v4()});
    if let Some((c, m)) = inner {
        e["innererror"] = json!({"code": c, "message": m});
    }
    json_response(status, &json!({ "error": e }))
}

fn bad_argument(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, "BadArgumentError", BAD_ARGUMENT_MESSAGE, Some(("InvalidArgument", message)))
}

/// `POST|GET /v1/workspaces/{workspaceId}/query`.
pub async fn workspace_query(
    State(emu): State<Emulator>,
    Path(id): Path<String>,
    method: Method,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match unknown(Target::Workspace, &id) {
        Some(not_found) => not_found,
        None => handle(emu, Target::Workspace, method, q, headers, body).await,
    }
}

/// `POST|GET /v1/apps/{appId}/query`.
pub async fn app_query(
    State(emu): State<Emulator>,
    Path(id): Path<String>,
    method: Method,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match unknown(Target::App, &id) {
        Some(not_found) => not_found,
        None => handle(emu, Target::App, method, q, headers, body).await,
    }
}

/// The 404 Azure answers for a workspace or application id other than the sandbox's.
fn unknown(target: Target, id: &str) -> Option<Response> {
    let (sandbox, code, noun) = match target {
        Target::Workspace => (SANDBOX_WORKSPACE_ID, "WorkspaceNotFoundError", "workspace"),
        Target::App => (SANDBOX_APP_ID, "ApplicationNotFoundError", "application"),
    };
    (!id.eq_ignore_ascii_case(sandbox)).then(|| {
        let message = format!("The {noun} '{id}' could not be found. The sandbox {noun} is '{sandbox}'.");
        error(StatusCode::NOT_FOUND, code, &message, None)
    })
}

async fn handle(
    emu: Emulator,
    target: Target,
    method: Method,
    q: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (query, timespan) = if method == Method::GET {
        match q.get("query") {
            Some(query) => (query.clone(), q.get("timespan").cloned()),
            None => return bad_argument("The 'query' parameter is required.".into()),
        }
    } else {
        let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("application/json");
        if !ct.to_ascii_lowercase().contains("json") {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaTypeError",
                &format!("Content type '{ct}' is not supported; send application/json."),
                None,
            );
        }
        let v: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return bad_argument(format!("The request body is not valid JSON: {e}")),
        };
        let query = match v.get("query") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => return bad_argument(format!("'query' must be a string, got {other}")),
            None => return bad_argument("The request body must have a 'query' (the KQL text).".into()),
        };
        let timespan = match v.get("timespan") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => return bad_argument(format!("'timespan' must be an ISO 8601 string, got {other}")),
        };
        (query, timespan)
    };
    if query.trim().is_empty() {
        return bad_argument("'query' must not be empty.".into());
    }
    super::blocking(emu, move |emu| run(emu, target, &query, timespan.as_deref())).await
}

fn run(emu: &Emulator, target: Target, query: &str, timespan: Option<&str>) -> Response {
    // Only tables the query names are loaded (a table can only be used by naming it).
    let (tables, now, cap) =
        emu.telemetry().with(emu.store(), |sim, _| (sim.data.tables(|t| query.contains(t)), sim.now, sim.row_cap));
    let catalog: Vec<Table> = match target {
        Target::Workspace => tables.into_iter().filter(|t| t.name() != aigw_kql::schemas::CUSTOM_METRICS).collect(),
        Target::App => tables.into_iter().filter(|t| t.name() == aigw_kql::schemas::CUSTOM_METRICS).collect(),
    };
    let now = super::minute_dt(now);
    let result = timespan
        .map(|t| parse_timespan_param(t, now))
        .transpose()
        .and_then(|span| aigw_kql::run(query, &catalog, now, span));
    match result {
        Ok(table) => {
            if table.len() > cap {
                let mut body = table.head(cap).to_response_json();
                body["error"] = json!({
                    "code": "PartialError",
                    "message": "There were some errors when processing your query.",
                    "details": [{
                        "code": "EngineError",
                        "message": format!(
                            "Query result set has exceeded the internal record count limit {cap} records (E_QUERY_RESULT_SET_TOO_LARGE). {} of {} rows were returned.",
                            cap,
                            table.len()
                        ),
                    }]
                });
                json_response(StatusCode::OK, &body)
            } else {
                json_response(StatusCode::OK, &table.to_response_json())
            }
        }
        Err(e) => kql_error(&e),
    }
}

fn kql_error(e: &KqlError) -> Response {
    let mut body = e.to_response_json();
    body["error"]["correlationId"] = json!(uuid_v4());
    json_response(StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST), &body)
}
