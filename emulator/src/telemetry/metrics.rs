//! Azure Monitor metrics over what the traffic model produced:
//!
//! - `GET {service}/providers/Microsoft.Insights/metrics` — APIM platform metrics `Requests`
//!   (dimensions `GatewayResponseCode`, `GatewayResponseCodeCategory`, `BackendResponseCode`,
//!   `BackendResponseCodeCategory`, `LastErrorReason`, `ApiId`, `Location`, `Hostname`),
//!   `Duration` and `BackendDuration` (dimensions `Location`, `Hostname`, `ApiId`);
//! - `GET {appInsightsComponent}/providers/Microsoft.Insights/metrics?metricnamespace=<ns>` —
//!   the custom metrics `llm-emit-token-metric` sends (`Prompt Tokens`, `Completion Tokens`,
//!   `Total Tokens`) with the policy's dimensions (e.g. `Subscription ID`). The component is the
//!   one the sandbox service's Application Insights logger points at;
//! - `…/providers/Microsoft.Insights/metricDefinitions` for both.
//!
//! Parameters as in the 2024-02-01 spec: `timespan` (`start/end`, `start/duration`,
//! `duration/end`, or a duration ending now; default the last hour), `interval` (default `PT1M`,
//! `FULL` = one point; other grains than PT1M/5M/15M/30M/1H/6H/12H/P1D are an error unless
//! `AutoAdjustTimegrain=true`), `metricnames` (≤ 20), `aggregation`, `$filter`, `top` (default
//! 10, with `$filter`), `orderby`, `resultType`, `metricnamespace`, `rollupby`,
//! `ValidateDimensions`.
//!
//! `$filter` semantics (Azure's): `or` binds tighter than `and` and may only combine conditions
//! on the same dimension; every dimension named in the filter splits the result into one time
//! series per value (unless listed in `rollupby`); `eq '*'` selects all values. Values compare
//! case-insensitively.
//!
//! Aggregation semantics: platform metrics are pre-aggregated per minute. For `Requests` each
//! minute's count is one sample (`total` = requests, `count` = minutes with data, `maximum` =
//! the busiest minute); for `Duration`, `BackendDuration` and token metrics every request is a
//! sample. Intervals without data have `total`/`count` 0 for count-like metrics (`Requests`,
//! token metrics) and no values otherwise.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::Emulator;
use crate::arm::envelope::{ArmError, json_response};
use crate::arm::{ArmRequest, ServiceRef};

use super::data::{Agg, Data, RequestDims, TOKEN_METRICS, category};
use super::{Sim, minute_dt};

/// The Microsoft.Insights api-versions the metrics routes serve.
pub const METRICS_API_VERSIONS: &[&str] = &["2018-01-01", "2019-07-01", "2021-05-01", "2023-10-01", "2024-02-01"];

const GRAINS: &[(&str, i64)] = &[
    ("PT1M", 1),
    ("PT5M", 5),
    ("PT15M", 15),
    ("PT30M", 30),
    ("PT1H", 60),
    ("PT6H", 360),
    ("PT12H", 720),
    ("P1D", 1440),
];

const REQUEST_DIMS: &[(&str, &str)] = &[
    ("Location", "Location"),
    ("Hostname", "Hostname"),
    ("LastErrorReason", "Last Error Reason"),
    ("BackendResponseCode", "Backend Response Code"),
    ("GatewayResponseCode", "Gateway Response Code"),
    ("BackendResponseCodeCategory", "Backend Response Code Category"),
    ("GatewayResponseCodeCategory", "Gateway Response Code Category"),
    ("ApiId", "API ID"),
];
const DURATION_DIMS: &[(&str, &str)] = &[("Location", "Location"), ("Hostname", "Hostname"), ("ApiId", "API ID")];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AggKind {
    Average,
    Minimum,
    Maximum,
    Total,
    Count,
}

impl AggKind {
    const ALL: [AggKind; 5] = [AggKind::Average, AggKind::Minimum, AggKind::Maximum, AggKind::Total, AggKind::Count];
    fn parse(s: &str) -> Option<AggKind> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "average" | "avg" => AggKind::Average,
            "minimum" | "min" => AggKind::Minimum,
            "maximum" | "max" => AggKind::Maximum,
            "total" | "sum" => AggKind::Total,
            "count" => AggKind::Count,
            _ => return None,
        })
    }
    fn key(self) -> &'static str {
        match self {
            AggKind::Average => "average",
            AggKind::Minimum => "minimum",
            AggKind::Maximum => "maximum",
            AggKind::Total => "total",
            AggKind::Count => "count",
        }
    }
    fn display(self) -> &'static str {
        match self {
            AggKind::Average => "Average",
            AggKind::Minimum => "Minimum",
            AggKind::Maximum => "Maximum",
            AggKind::Total => "Total",
            AggKind::Count => "Count",
        }
    }
    fn of(self, a: &Agg) -> f64 {
        match self {
            AggKind::Average => {
                if a.count == 0 {
                    0.0
                } else {
                    a.sum / a.count as f64
                }
            }
            AggKind::Minimum => a.min,
            AggKind::Maximum => a.max,
            AggKind::Total => a.sum,
            AggKind::Count => a.count as f64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    Requests,
    Duration,
    BackendDuration,
    Tokens(usize),
}

pub(crate) struct MetricDef {
    name: String,
    localized: String,
    description: &'static str,
    unit: &'static str,
    primary: AggKind,
    supported: &'static [AggKind],
    dims: Vec<(String, String)>,
    source: Source,
    /// Count-like: empty intervals report total/count 0.
    zero_fill: bool,
}

pub(crate) fn apim_metrics() -> Vec<MetricDef> {
    let dims = |d: &[(&str, &str)]| d.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    vec![
        MetricDef {
            name: "Requests".into(),
            localized: "Requests".into(),
            description: "Gateway request metrics with multiple dimensions",
            unit: "Count",
            primary: AggKind::Total,
            supported: &[AggKind::Total, AggKind::Maximum, AggKind::Minimum],
            dims: dims(REQUEST_DIMS),
            source: Source::Requests,
            zero_fill: true,
        },
        MetricDef {
            name: "Duration".into(),
            localized: "Overall Duration of Gateway Requests".into(),
            description: "Overall Duration of Gateway Requests in milliseconds",
            unit: "MilliSeconds",
            primary: AggKind::Average,
            supported: &[AggKind::Average, AggKind::Maximum, AggKind::Minimum],
            dims: dims(DURATION_DIMS),
            source: Source::Duration,
            zero_fill: false,
        },
        MetricDef {
            name: "BackendDuration".into(),
            localized: "Duration of Backend Requests".into(),
            description: "Duration of Backend Requests in milliseconds",
            unit: "MilliSeconds",
            primary: AggKind::Average,
            supported: &[AggKind::Average, AggKind::Maximum, AggKind::Minimum],
            dims: dims(DURATION_DIMS),
            source: Source::BackendDuration,
            zero_fill: false,
        },
    ]
}

/// The token metrics of `namespace` (case-insensitive), with the dimensions they were emitted
/// with (union over series, in first-seen order).
pub(crate) fn token_metrics(data: &Data, namespace: &str) -> Vec<MetricDef> {
    let mut dims: Vec<(String, String)> = Vec::new();
    let mut any = false;
    for s in data.custom_series.values() {
        if !s.namespace.eq_ignore_ascii_case(namespace) {
            continue;
        }
        any = true;
        for (d, _) in &s.dimensions {
            if !dims.iter().any(|(x, _)| x.eq_ignore_ascii_case(d)) {
                dims.push((d.clone(), d.clone()));
            }
        }
    }
    if !any {
        return Vec::new();
    }
    TOKEN_METRICS
        .iter()
        .enumerate()
        .map(|(k, name)| MetricDef {
            name: name.to_string(),
            localized: name.to_string(),
            description: "Tokens counted by llm-emit-token-metric",
            unit: "Count",
            primary: AggKind::Total,
            supported: &[AggKind::Total, AggKind::Average, AggKind::Minimum, AggKind::Maximum, AggKind::Count],
            dims: dims.clone(),
            source: Source::Tokens(k),
            zero_fill: true,
        })
        .collect()
}

/// The resource a metrics request addresses.
enum Resource {
    Service(ServiceRef),
    Component { sub: String, rg: String, name: String },
}

fn bad(message: impl Into<String>) -> Response {
    json_response(StatusCode::BAD_REQUEST, &json!({"code": "BadRequest", "message": message.into()}))
}

/// Whether `path` ends in `/providers/Microsoft.Insights/metrics` or `/metricDefinitions`
/// (case-insensitive).
pub fn is_metrics_path(path: &str) -> bool {
    let p = path.trim_end_matches('/').to_ascii_lowercase();
    p.ends_with("/providers/microsoft.insights/metrics")
        || p.ends_with("/providers/microsoft.insights/metricdefinitions")
}

/// If `req` is a `…/providers/Microsoft.Insights/{metrics|metricDefinitions}` request for the
/// sandbox service or its Application Insights component, answers it (blocking: run it off the
/// async workers). `None`: not a metrics path; ARM dispatch handles (and 404s) it.
pub fn route(emu: &Emulator, req: &ArmRequest) -> Option<Response> {
    let segs: Vec<String> =
        req.path.split('/').filter(|s| !s.is_empty()).map(|s| crate::util::percent_decode(s, false)).collect();
    let n = segs.len();
    if n < 11 {
        return None;
    }
    let lit = |i: usize, s: &str| segs[i].eq_ignore_ascii_case(s);
    if !(lit(n - 3, "providers") && lit(n - 2, "Microsoft.Insights")) {
        return None;
    }
    let kind = segs[n - 1].to_ascii_lowercase();
    if !matches!(kind.as_str(), "metrics" | "metricdefinitions") {
        return None;
    }
    if !(n == 11 && lit(0, "subscriptions") && lit(2, "resourceGroups") && lit(4, "providers")) {
        return None;
    }
    let resource = if lit(5, "Microsoft.ApiManagement") && lit(6, "service") {
        Resource::Service(ServiceRef {
            subscription_id: segs[1].clone(),
            resource_group: segs[3].clone(),
            name: segs[7].clone(),
        })
    } else if lit(5, "Microsoft.Insights") && lit(6, "components") {
        Resource::Component { sub: segs[1].clone(), rg: segs[3].clone(), name: segs[7].clone() }
    } else {
        return None;
    };
    Some(answer(emu, req, resource, &kind))
}

fn answer(emu: &Emulator, req: &ArmRequest, resource: Resource, kind: &str) -> Response {
    if req.method != axum::http::Method::GET {
        return crate::arm::method_not_allowed(req).into_response();
    }
    let version = req.api_version();
    if !METRICS_API_VERSIONS.contains(&version) {
        let type_name = if kind == "metrics" { "metrics" } else { "metricDefinitions" };
        return ArmError::new(
            StatusCode::BAD_REQUEST,
            "NoRegisteredProviderFound",
            format!(
                "No registered resource provider found for location 'eastus' and API version '{version}' for type '{type_name}'. The supported api-versions are '{}'. The supported locations are 'eastus, westeurope, swedencentral, northcentralus, westus3'.",
                METRICS_API_VERSIONS.join(", ")
            ),
        )
        .into_response();
    }
    // The resource must exist.
    let (resource_id, is_service) = match &resource {
        Resource::Service(svc) => {
            let id = emu.store().read(|w| {
                w.service(&svc.subscription_id, &svc.resource_group, &svc.name)
                    .map(|s| s.id())
                    .ok_or_else(|| svc.missing(w))
            });
            match id {
                Ok(id) => (id, true),
                Err(e) => return e.into_response(),
            }
        }
        Resource::Component { sub, rg, name } => {
            let wanted =
                format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/microsoft.insights/components/{name}");
            let known = emu.store().read(|w| {
                w.sandbox().is_some_and(|s| {
                    s.loggers.values().any(|l| l.str("resourceId").is_some_and(|r| r.eq_ignore_ascii_case(&wanted)))
                })
            });
            if !known {
                return ArmError::new(
                    StatusCode::NOT_FOUND,
                    "ResourceNotFound",
                    format!(
                        "The Resource 'microsoft.insights/components/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
                    ),
                )
                .into_response();
            }
            (wanted, false)
        }
    };
    let sandbox_service =
        emu.store().read(|w| w.sandbox().map(|s| s.id())).is_some_and(|id| id.eq_ignore_ascii_case(&resource_id));
    let namespace = req.query("metricnamespace").map(str::to_string);
    emu.telemetry().with(emu.store(), |sim, _| {
        let defs = if is_service {
            if let Some(ns) = &namespace
                && !ns.eq_ignore_ascii_case("Microsoft.ApiManagement/service")
            {
                return bad(format!(
                    "Failed to find metric configuration for provider: microsoft.apimanagement, resource Type: service, metric namespace: {ns}. Valid metric namespaces: Microsoft.ApiManagement/service"
                ));
            }
            apim_metrics()
        } else {
            match &namespace {
                Some(ns) => token_metrics(&sim.data, ns),
                None => Vec::new(),
            }
        };
        let ns_out = if is_service { "Microsoft.ApiManagement/service".to_string() } else { namespace.clone().unwrap_or_default() };
        if kind == "metricdefinitions" {
            return definitions(&resource_id, &ns_out, &defs);
        }
        match query(sim, req, &resource_id, &ns_out, &defs, is_service, sandbox_service) {
            Ok(v) => json_response(StatusCode::OK, &v),
            Err(message) => bad(message),
        }
    })
}

fn definitions(resource_id: &str, namespace: &str, defs: &[MetricDef]) -> Response {
    let value: Vec<Value> = defs
        .iter()
        .map(|d| {
            json!({
                "id": format!("{resource_id}/providers/microsoft.insights/metricdefinitions/{}", d.name),
                "resourceId": resource_id,
                "namespace": namespace,
                "name": {"value": d.name, "localizedValue": d.localized},
                "displayDescription": d.description,
                "category": if d.source == Source::Requests { "Gateway Requests" } else { "Latency" },
                "metricClass": if matches!(d.source, Source::Duration | Source::BackendDuration) { "Latency" } else { "Transactions" },
                "isDimensionRequired": false,
                "unit": d.unit,
                "primaryAggregationType": d.primary.display(),
                "supportedAggregationTypes": d.supported.iter().map(|a| a.display()).collect::<Vec<_>>(),
                "metricAvailabilities": GRAINS.iter().filter(|g| matches!(g.0, "PT1M" | "PT5M" | "PT15M" | "PT30M" | "PT1H" | "PT6H" | "PT12H" | "P1D")).map(|g| json!({"timeGrain": g.0, "retention": "P93D"})).collect::<Vec<_>>(),
                "dimensions": d.dims.iter().map(|(v, l)| json!({"value": v, "localizedValue": l})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({"value": value}))
}

/// A parsed `$filter`: a conjunction of disjunctions, each on one dimension.
#[derive(Debug, Clone, PartialEq)]
struct Filter {
    /// Each entry: dimension name (as written) and the alternatives (`None` value = `'*'`, with
    /// `negate` for `ne`).
    groups: Groups,
}

#[derive(Debug, Clone, PartialEq)]
enum FTok {
    Word(String),
    Str(String),
    Open,
    Close,
}

impl FTok {
    fn describe(&self) -> String {
        match self {
            FTok::Word(w) => format!("'{w}'"),
            FTok::Str(v) => format!("the value '{v}'"),
            FTok::Open => "'('".into(),
            FTok::Close => "')'".into(),
        }
    }
}

fn ftokens(s: &str) -> Result<Vec<FTok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(FTok::Open);
            i += 1;
        } else if c == ')' {
            out.push(FTok::Close);
            i += 1;
        } else if c == '\'' || c == '\u{2018}' || c == '\u{2019}' {
            let mut v = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("a quoted value is not closed".into()),
                    Some('\'') | Some('\u{2019}') if chars.get(i + 1) == Some(&'\'') => {
                        v.push('\'');
                        i += 2;
                    }
                    Some('\'') | Some('\u{2019}') | Some('\u{2018}') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        v.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(FTok::Str(v));
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !matches!(chars[i], '(' | ')' | '\'') {
                i += 1;
            }
            out.push(FTok::Word(chars[start..i].iter().collect()));
        }
    }
    Ok(out)
}

fn parse_filter(s: &str) -> Result<Filter, String> {
    let toks = ftokens(s)?;
    let mut pos = 0;
    let groups = parse_and(&toks, &mut pos, 0)?;
    if pos != toks.len() {
        return Err(format!("unexpected {} after a complete condition", toks[pos].describe()));
    }
    Ok(Filter { groups })
}

/// The alternatives of one dimension: (negated, value; `None` = `'*'`).
type Alternatives = Vec<(bool, Option<String>)>;
type Groups = Vec<(String, Alternatives)>;

fn is_kw(t: Option<&FTok>, kw: &str) -> bool {
    matches!(t, Some(FTok::Word(w)) if w.eq_ignore_ascii_case(kw))
}

fn parse_and(toks: &[FTok], pos: &mut usize, depth: usize) -> Result<Groups, String> {
    if depth > 16 {
        return Err("parentheses nested too deeply".into());
    }
    let mut groups = parse_or(toks, pos, depth)?;
    while is_kw(toks.get(*pos), "and") {
        *pos += 1;
        groups.extend(parse_or(toks, pos, depth)?);
    }
    Ok(groups)
}

fn parse_or(toks: &[FTok], pos: &mut usize, depth: usize) -> Result<Groups, String> {
    let mut groups = parse_term(toks, pos, depth)?;
    while is_kw(toks.get(*pos), "or") {
        *pos += 1;
        let next = parse_term(toks, pos, depth)?;
        // `or` may only combine alternatives of one dimension.
        if groups.len() != 1 || next.len() != 1 || !groups[0].0.eq_ignore_ascii_case(&next[0].0) {
            let a = groups.iter().map(|g| g.0.as_str()).collect::<Vec<_>>().join("', '");
            let b = next.iter().map(|g| g.0.as_str()).collect::<Vec<_>>().join("', '");
            return Err(format!("'or' cannot combine conditions on different dimensions ('{a}' and '{b}')"));
        }
        let alts = next.into_iter().next().map(|g| g.1).unwrap_or_default();
        groups[0].1.extend(alts);
    }
    Ok(groups)
}

fn parse_term(toks: &[FTok], pos: &mut usize, depth: usize) -> Result<Groups, String> {
    if toks.get(*pos) == Some(&FTok::Open) {
        *pos += 1;
        let g = parse_and(toks, pos, depth + 1)?;
        if toks.get(*pos) != Some(&FTok::Close) {
            return Err("a '(' is not closed".into());
        }
        *pos += 1;
        return Ok(g);
    }
    let mut name = Vec::new();
    while let Some(FTok::Word(w)) = toks.get(*pos) {
        if w.eq_ignore_ascii_case("eq") || w.eq_ignore_ascii_case("ne") {
            break;
        }
        if matches!(w.to_ascii_lowercase().as_str(), "and" | "or" | "lt" | "gt" | "le" | "ge" | "sw") {
            return Err(format!("unexpected '{w}': expected '<dimension> eq '<value>''"));
        }
        name.push(w.clone());
        *pos += 1;
    }
    if name.is_empty() {
        return Err(match toks.get(*pos) {
            Some(t) => format!("expected a dimension name, found {}", t.describe()),
            None => "expected a dimension name at the end".into(),
        });
    }
    let op = match toks.get(*pos) {
        Some(FTok::Word(w)) => w.to_ascii_lowercase(),
        _ => return Err(format!("expected 'eq' or 'ne' after '{}'", name.join(" "))),
    };
    *pos += 1;
    let value = match toks.get(*pos) {
        Some(FTok::Str(v)) => v.clone(),
        _ => return Err(format!("expected a quoted value after '{} {op}'", name.join(" "))),
    };
    *pos += 1;
    let negate = op == "ne";
    if negate && value == "*" {
        return Err(format!("'{} ne '*'' is not allowed", name.join(" ")));
    }
    Ok(vec![(name.join(" "), vec![(negate, (value != "*").then_some(value))])])
}

struct Params {
    start: i64,
    end: i64,
    grain: Option<i64>,
    interval_text: String,
    aggs: Vec<AggKind>,
    filter: Option<Filter>,
    top: usize,
    orderby: Option<(AggKind, bool)>,
    metadata_only: bool,
    rollup: Vec<String>,
    validate_dims: bool,
}

/// Parses an Azure Monitor `timespan` relative to the simulated clock. Returns unix seconds.
fn parse_timespan(s: Option<&str>, now: i64) -> Result<(i64, i64), String> {
    let now_s = now * 60;
    let Some(s) = s else { return Ok((now_s - 3600, now_s)) };
    let bad = |why: &str| {
        format!(
            "Invalid timespan '{s}': {why}. Use 'start/end' (ISO 8601), e.g. 2026-11-24T09:00:00Z/2026-11-24T10:00:00Z."
        )
    };
    let dt = |x: &str| aigw_kql::DateTime::parse(x.trim()).map(|d| d.unix_seconds());
    let dur =
        |x: &str| aigw_kql::Timespan::parse_iso8601(x.trim()).filter(|t| t.ticks() > 0).map(|t| t.ticks() / 10_000_000);
    let (a, b) = match s.split_once('/') {
        None => match dur(s) {
            Some(d) => (now_s - d, now_s),
            None => return Err(bad("not an interval")),
        },
        Some((x, y)) => match (dt(x), dt(y), dur(x), dur(y)) {
            (Some(a), Some(b), _, _) => (a, b),
            (Some(a), None, _, Some(d)) => (a, a + d),
            (None, Some(b), Some(d), _) => (b - d, b),
            _ => return Err(bad("start and end must be ISO 8601 date-times")),
        },
    };
    if a >= b {
        return Err(bad("the end must be after the start"));
    }
    Ok((a, b))
}

fn params(req: &ArmRequest, now: i64, def: &MetricDef) -> Result<Params, String> {
    let (start, end) = parse_timespan(req.query("timespan"), now)?;
    let auto = req.query("AutoAdjustTimegrain").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let interval = req.query("interval").unwrap_or("PT1M").trim().to_string();
    let (grain, interval_text) = if interval.eq_ignore_ascii_case("FULL") {
        (None, "FULL".to_string())
    } else {
        let exact = GRAINS.iter().find(|g| g.0.eq_ignore_ascii_case(&interval));
        match (exact, auto) {
            (Some(g), _) => (Some(g.1), g.0.to_string()),
            (None, true) => {
                let minutes = aigw_kql::Timespan::parse_iso8601(&interval)
                    .map(|t| t.ticks() / 600_000_000)
                    .ok_or_else(|| format!("Invalid interval '{interval}': expected an ISO 8601 duration or FULL."))?;
                let g = GRAINS.iter().min_by_key(|g| (g.1 - minutes).abs()).expect("grains");
                (Some(g.1), g.0.to_string())
            }
            (None, false) => {
                return Err(format!(
                    "Invalid interval '{interval}'. Supported intervals: {}, FULL (or set AutoAdjustTimegrain=true).",
                    GRAINS.iter().map(|g| g.0).collect::<Vec<_>>().join(", ")
                ));
            }
        }
    };
    if let Some(g) = grain {
        let points = (end - start) / 60 / g;
        if points > 100_000 {
            return Err(format!(
                "The timespan '{}' at interval {interval_text} needs {points} data points; at most 100000 are returned. Use a larger interval.",
                req.query("timespan").unwrap_or("")
            ));
        }
    }
    let aggs = match req.query("aggregation") {
        None => vec![def.primary],
        Some(a) => {
            let mut v = Vec::new();
            for part in a.split(',').filter(|p| !p.trim().is_empty()) {
                let k = AggKind::parse(part).ok_or_else(|| {
                    format!(
                        "Invalid aggregation '{}'. Valid aggregations: Average, Count, Minimum, Maximum, Total.",
                        part.trim()
                    )
                })?;
                if !v.contains(&k) {
                    v.push(k);
                }
            }
            if v.is_empty() { vec![def.primary] } else { v }
        }
    };
    let filter_text = req.query("$filter").or_else(|| req.query("filter"));
    let filter = match filter_text {
        Some(f) if !f.trim().is_empty() => {
            Some(parse_filter(f).map_err(|e| format!("The $filter '{f}' is invalid: {e}."))?)
        }
        _ => None,
    };
    let top = match req.query("top") {
        None => 10,
        Some(t) => match t.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(format!("Invalid top '{t}': it must be a positive integer.")),
        },
    };
    let orderby = match req.query("orderby") {
        None => None,
        Some(o) => {
            let mut parts = o.split_whitespace();
            let agg = parts.next().and_then(AggKind::parse);
            let dir = parts.next().map(str::to_ascii_lowercase);
            match (agg, dir.as_deref(), parts.next()) {
                (Some(a), None | Some("desc"), None) => Some((a, true)),
                (Some(a), Some("asc"), None) => Some((a, false)),
                _ => {
                    return Err(format!(
                        "Invalid orderby '{o}': expected '<aggregation> [asc|desc]', e.g. 'sum desc'."
                    ));
                }
            }
        }
    };
    let metadata_only = match req.query("resultType") {
        None => false,
        Some(r) if r.eq_ignore_ascii_case("Data") => false,
        Some(r) if r.eq_ignore_ascii_case("Metadata") => true,
        Some(r) => return Err(format!("Invalid resultType '{r}': it must be Data or Metadata.")),
    };
    let rollup = req
        .query("rollupby")
        .map(|r| r.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
        .unwrap_or_default();
    let validate_dims = !req.query("ValidateDimensions").is_some_and(|v| v.eq_ignore_ascii_case("false"));
    Ok(Params { start, end, grain, interval_text, aggs, filter, top, orderby, metadata_only, rollup, validate_dims })
}

/// The dimension values of each key of a metric's source, aligned with `def.dims`.
fn keys(sim: &Sim, def: &MetricDef, hostname: &str, region: &str) -> HashMap<u32, Vec<String>> {
    let data = &sim.data;
    let mut out = HashMap::new();
    match def.source {
        Source::Requests => {
            for (i, d) in data.request_dims.values().iter().enumerate() {
                out.insert(i as u32, def.dims.iter().map(|(n, _)| request_dim(d, n, data, hostname, region)).collect());
            }
        }
        Source::Duration | Source::BackendDuration => {
            for (i, api) in data.api_ids.values().iter().enumerate() {
                let vals = def
                    .dims
                    .iter()
                    .map(|(n, _)| match n.as_str() {
                        "Location" => region.to_string(),
                        "Hostname" => hostname.to_string(),
                        _ => api.clone(),
                    })
                    .collect();
                out.insert(i as u32, vals);
            }
        }
        Source::Tokens(_) => {
            for (i, s) in data.custom_series.values().iter().enumerate() {
                let vals = def
                    .dims
                    .iter()
                    .map(|(n, _)| {
                        s.dimensions
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(n))
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default()
                    })
                    .collect();
                out.insert(i as u32, vals);
            }
        }
    }
    out
}

fn request_dim(d: &RequestDims, name: &str, data: &Data, hostname: &str, region: &str) -> String {
    match name {
        "GatewayResponseCode" => d.gateway_response_code.to_string(),
        "GatewayResponseCodeCategory" => category(d.gateway_response_code),
        "BackendResponseCode" => d.backend_response_code.to_string(),
        "BackendResponseCodeCategory" => category(d.backend_response_code),
        "LastErrorReason" => if d.last_error_reason.is_empty() { "None" } else { d.last_error_reason }.to_string(),
        "ApiId" => data.api_ids.get(d.api).clone(),
        "Location" => region.to_string(),
        _ => hostname.to_string(),
    }
}

pub(crate) fn query(
    sim: &Sim,
    req: &ArmRequest,
    resource_id: &str,
    namespace: &str,
    defs: &[MetricDef],
    is_service: bool,
    sandbox_service: bool,
) -> Result<Value, String> {
    let names_param = req
        .query("metricnames")
        .map(str::to_string)
        .unwrap_or_else(|| if is_service { "Requests".to_string() } else { TOKEN_METRICS[2].to_string() });
    let names: Vec<String> =
        names_param.split(',').map(|n| n.trim().replace("%2", ",")).filter(|n| !n.is_empty()).collect();
    if names.len() > 20 {
        return Err(format!("At most 20 metric names can be requested; {} were given.", names.len()));
    }
    let valid = defs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(",");
    let mut chosen = Vec::new();
    for n in &names {
        match defs.iter().find(|d| d.name.eq_ignore_ascii_case(n)) {
            Some(d) => chosen.push(d),
            None => {
                let (provider, rtype) = if is_service {
                    ("microsoft.apimanagement", "service")
                } else {
                    ("microsoft.insights", "components")
                };
                let ns = if is_service { String::new() } else { format!(", metric namespace: {namespace}") };
                return Err(format!(
                    "Failed to find metric configuration for provider: {provider}, resource Type: {rtype}, metric: {n}{ns}, Valid metrics: {valid}"
                ));
            }
        }
    }
    let (hostname, region) = (sim.world().hostname.clone(), sim.world().region.clone());
    let (hostname, region) = if hostname.is_empty() {
        (format!("{}.azure-api.net", crate::SANDBOX_SERVICE_NAME), "East US".to_string())
    } else {
        (hostname, region)
    };
    let mut value = Vec::new();
    let mut cost = 0i64;
    let mut out_params: Option<(i64, i64, String)> = None;
    for def in chosen {
        let p = params(req, sim.now, def)?;
        // Dimension validation.
        let mut split: Vec<usize> = Vec::new();
        let mut conds: Vec<(usize, Alternatives)> = Vec::new();
        if let Some(f) = &p.filter {
            let mut unknown = Vec::new();
            for (dim, alts) in &f.groups {
                match def.dims.iter().position(|(n, _)| n.eq_ignore_ascii_case(dim)) {
                    Some(i) => {
                        conds.push((i, alts.clone()));
                        if !split.contains(&i) && !p.rollup.iter().any(|r| r.eq_ignore_ascii_case(dim)) {
                            split.push(i);
                        }
                    }
                    None => unknown.push(dim.clone()),
                }
            }
            if !unknown.is_empty() && p.validate_dims {
                return Err(format!(
                    "Metric: {} does not support requested dimension combination: {}, supported ones are: {}, please check metric definitions api for details.",
                    def.name,
                    unknown.join(","),
                    def.dims.iter().map(|d| d.0.as_str()).collect::<Vec<_>>().join(",")
                ));
            }
        }
        let key_vals = if sandbox_service || !is_service { keys(sim, def, &hostname, &region) } else { HashMap::new() };
        // Which keys pass the filter, and their series.
        let mut series_of: HashMap<u32, usize> = HashMap::new();
        let mut series: Vec<Vec<String>> = Vec::new();
        let mut series_index: HashMap<Vec<String>, usize> = HashMap::new();
        for (k, vals) in &key_vals {
            let pass = conds.iter().all(|(i, alts)| {
                alts.iter().any(|(neg, v)| match v {
                    None => true,
                    Some(v) => vals[*i].eq_ignore_ascii_case(v) != *neg,
                })
            });
            if !pass {
                continue;
            }
            let sk: Vec<String> = split.iter().map(|i| vals[*i].clone()).collect();
            let idx = *series_index.entry(sk.clone()).or_insert_with(|| {
                series.push(sk);
                series.len() - 1
            });
            series_of.insert(*k, idx);
        }
        // Bucket the minutes.
        let start_min = p.start.div_euclid(60);
        let end_min = (p.end + 59).div_euclid(60);
        let (bucket_start, bucket_len) = match p.grain {
            Some(g) => (start_min - start_min.rem_euclid(g), g),
            None => (start_min, (end_min - start_min).max(1)),
        };
        let nbuckets = ((end_min - bucket_start + bucket_len - 1) / bucket_len).max(1) as usize;
        let mut aggs: Vec<Vec<Option<Agg>>> = vec![vec![None; nbuckets]; series.len()];
        let mut has_data = vec![false; series.len()];
        let mut per_minute: HashMap<usize, f64> = HashMap::new();
        let mut per_minute_agg: HashMap<usize, Agg> = HashMap::new();
        for (minute, m) in sim.data.minutes_in(start_min, end_min) {
            let b = ((minute - bucket_start) / bucket_len) as usize;
            per_minute.clear();
            per_minute_agg.clear();
            match def.source {
                Source::Requests => {
                    for (k, c) in &m.requests {
                        if let Some(&s) = series_of.get(k) {
                            *per_minute.entry(s).or_insert(0.0) += *c as f64;
                        }
                    }
                }
                Source::Duration | Source::BackendDuration => {
                    for (k, total, backend) in &m.durations {
                        let a = if def.source == Source::Duration { Some(total) } else { backend.as_ref() };
                        if let (Some(&s), Some(a)) = (series_of.get(k), a) {
                            per_minute_agg.entry(s).and_modify(|x| x.merge(a)).or_insert(*a);
                        }
                    }
                }
                Source::Tokens(t) => {
                    for (k, a3) in &m.tokens {
                        if !sim.data.custom_series.get(*k).namespace.eq_ignore_ascii_case(namespace) {
                            continue;
                        }
                        if let Some(&s) = series_of.get(k) {
                            per_minute_agg.entry(s).and_modify(|x| x.merge(&a3[t])).or_insert(a3[t]);
                        }
                    }
                }
            }
            for (&s, &v) in &per_minute {
                let slot = &mut aggs[s][b];
                match slot {
                    Some(a) => a.add(v),
                    None => *slot = Some(Agg::one(v)),
                }
                has_data[s] = true;
            }
            for (&s, a) in &per_minute_agg {
                let slot = &mut aggs[s][b];
                match slot {
                    Some(x) => x.merge(a),
                    None => *slot = Some(*a),
                }
                has_data[s] = true;
            }
        }
        cost += (end_min - start_min) * series.len().max(1) as i64;
        // Without a split there is always exactly one series; with one, only series with data
        // (or the single series pinned by `eq` values).
        let mut order: Vec<usize> = (0..series.len()).filter(|&s| has_data[s]).collect();
        let pinned =
            !split.is_empty() && conds.iter().all(|(_, alts)| alts.len() == 1 && alts[0].1.is_some() && !alts[0].0);
        if split.is_empty() {
            if series.is_empty() {
                series.push(Vec::new());
                aggs.push(vec![None; nbuckets]);
            }
            order = vec![0];
        } else if order.is_empty() && pinned {
            let sk: Vec<String> = split
                .iter()
                .map(|i| conds.iter().find(|(j, _)| j == i).and_then(|(_, a)| a[0].1.clone()).unwrap_or_default())
                .collect();
            series.push(sk);
            aggs.push(vec![None; nbuckets]);
            order = vec![series.len() - 1];
        }
        if !split.is_empty() {
            let (by, desc) = p.orderby.unwrap_or((p.aggs[0], true));
            let rank = |s: usize| {
                let mut all: Option<Agg> = None;
                for a in aggs[s].iter().flatten() {
                    match &mut all {
                        Some(x) => x.merge(a),
                        None => all = Some(*a),
                    }
                }
                all.map_or(0.0, |a| by.of(&a))
            };
            let mut ranked: Vec<(f64, usize)> = order.iter().map(|&s| (rank(s), s)).collect();
            ranked.sort_by(|a, b| {
                let c = a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal);
                (if desc { c.reverse() } else { c }).then_with(|| series[a.1].cmp(&series[b.1]))
            });
            order = ranked.into_iter().map(|x| x.1).take(p.top).collect();
        }
        let timeseries: Vec<Value> = order
            .iter()
            .map(|&s| {
                let meta: Vec<Value> = split
                    .iter()
                    .zip(&series[s])
                    .map(|(i, v)| {
                        let n = def.dims[*i].0.to_ascii_lowercase();
                        json!({"name": {"value": n, "localizedValue": n}, "value": v})
                    })
                    .collect();
                let mut ts = Map::new();
                ts.insert("metadatavalues".into(), Value::Array(meta));
                if !p.metadata_only {
                    let data: Vec<Value> = (0..nbuckets)
                        .map(|b| {
                            let t = bucket_start + b as i64 * bucket_len;
                            let mut point = Map::new();
                            let ts_text = if p.grain.is_none() {
                                aigw_kql::DateTime::from_unix_seconds(p.start)
                                    .map(|d| d.to_string())
                                    .unwrap_or_default()
                            } else {
                                minute_dt(t).to_string()
                            };
                            point.insert("timeStamp".into(), json!(ts_text));
                            for k in AggKind::ALL {
                                if !p.aggs.contains(&k) {
                                    continue;
                                }
                                match &aggs[s][b] {
                                    Some(a) => {
                                        point.insert(k.key().into(), json!(k.of(a)));
                                    }
                                    None if def.zero_fill && matches!(k, AggKind::Total | AggKind::Count) => {
                                        point.insert(k.key().into(), json!(0.0));
                                    }
                                    None => {}
                                }
                            }
                            Value::Object(point)
                        })
                        .collect();
                    ts.insert("data".into(), Value::Array(data));
                }
                Value::Object(ts)
            })
            .collect();
        let mut m = Map::new();
        m.insert("id".into(), json!(format!("{resource_id}/providers/Microsoft.Insights/metrics/{}", def.name)));
        m.insert("type".into(), json!("Microsoft.Insights/metrics"));
        m.insert("name".into(), json!({"value": def.name, "localizedValue": def.localized}));
        m.insert("displayDescription".into(), json!(def.description));
        m.insert("unit".into(), json!(def.unit));
        m.insert("timeseries".into(), Value::Array(timeseries));
        m.insert("errorCode".into(), json!("Success"));
        value.push(Value::Object(m));
        out_params = Some((p.start, p.end, p.interval_text.clone()));
    }
    let (start, end, interval) = match out_params {
        Some(x) => x,
        None => {
            let (s, e) = parse_timespan(req.query("timespan"), sim.now)?;
            (s, e, req.query("interval").unwrap_or("PT1M").to_string())
        }
    };
    let fmt = |s: i64| aigw_kql::DateTime::from_unix_seconds(s).map(|d| d.to_string()).unwrap_or_default();
    let mut body = Map::new();
    body.insert("cost".into(), json!(cost));
    body.insert("timespan".into(), json!(format!("{}/{}", fmt(start), fmt(end))));
    if req.query("resultType").is_none_or(|r| !r.eq_ignore_ascii_case("Metadata")) {
        body.insert("interval".into(), json!(interval));
    }
    body.insert("value".into(), Value::Array(value));
    body.insert("namespace".into(), json!(namespace));
    body.insert("resourceregion".into(), json!(region.to_ascii_lowercase().replace(' ', "")));
    Ok(Value::Object(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_follow_azure_precedence_and_rules() {
        let f = parse_filter(
            "ApiId eq 'a' and GatewayResponseCode eq '429' or GatewayResponseCode eq '503' and LastErrorReason eq '*'",
        )
        .unwrap();
        assert_eq!(
            f.groups,
            vec![
                ("ApiId".to_string(), vec![(false, Some("a".to_string()))]),
                (
                    "GatewayResponseCode".to_string(),
                    vec![(false, Some("429".to_string())), (false, Some("503".to_string()))]
                ),
                ("LastErrorReason".to_string(), vec![(false, None)]),
            ]
        );
        let f = parse_filter("Subscription ID eq '*' and (API ID eq 'x' or API ID eq 'it''s')").unwrap();
        assert_eq!(f.groups[0].0, "Subscription ID");
        assert_eq!(f.groups[1].1[1].1.as_deref(), Some("it's"));
        assert_eq!(parse_filter("ApiId ne 'x'").unwrap().groups[0].1, vec![(true, Some("x".to_string()))]);
        for (bad, why) in [
            ("A eq 'a1' and B eq 'b1' and C eq '*' or B eq 'b2'", "different dimensions"),
            ("ApiId eq", "quoted value"),
            ("ApiId gt '3'", "unexpected 'gt'"),
            ("ApiId eq 'x", "not closed"),
            ("(ApiId eq 'x'", "not closed"),
            ("ApiId ne '*'", "not allowed"),
            ("eq 'x'", "dimension name"),
            ("ApiId eq 'x' ApiId", "unexpected 'ApiId' after a complete condition"),
        ] {
            let e = parse_filter(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn timespans_and_defaults() {
        let now = 29_000_000; // unix minutes
        assert_eq!(parse_timespan(None, now).unwrap(), (now * 60 - 3600, now * 60));
        assert_eq!(parse_timespan(Some("PT2H"), now).unwrap(), (now * 60 - 7200, now * 60));
        assert_eq!(
            parse_timespan(Some("2026-11-24T09:00:00Z/2026-11-24T10:00:00.000Z"), now).unwrap(),
            (1_795_510_800, 1_795_514_400)
        );
        assert_eq!(parse_timespan(Some("2026-11-24T09:00:00Z/PT30M"), now).unwrap(), (1_795_510_800, 1_795_512_600));
        assert!(parse_timespan(Some("2026-11-24T10:00:00Z/2026-11-24T09:00:00Z"), now).unwrap_err().contains("after"));
        assert!(parse_timespan(Some("yesterday"), now).is_err());
    }
}
