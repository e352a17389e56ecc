//! `what_if_quota`: shadow mode. Replays a subscription's real per-minute usage from Log
//! Analytics against proposed TPM/RPM limits, and reports what would have been throttled.
//!
//! The query joins `ApiManagementGatewayLogs` (one row per request, `ApimSubscriptionId`) with
//! `ApiManagementGatewayLlmLog` on `CorrelationId` (tokens; only the rows with a
//! `DeploymentName` carry them, so streamed/split responses are not double counted), and
//! returns requests and tokens per minute. The replay, per calendar minute with R requests and
//! T tokens, assumes the requests share the tokens evenly and arrive one after another; the
//! gateway admits a request while the tokens admitted so far are below the TPM (so one request
//! may overshoot, as `llm-token-limit` does) and while fewer than RPM requests were admitted:
//! admitted = min(R, ceil(TPM·R/T), RPM), throttled = R − admitted. Requests the current limits
//! already rejected are counted as demand with no tokens (they reached no model), so token
//! demand above today's limit is underestimated.

use std::collections::BTreeMap;

use aigw_pdk::Error;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::arm::{self, Arm, seg};
use crate::limits::Lim;
use crate::model::Subscription;
use crate::tenant::{Tenant, limits_of};
use crate::util::thousands;

/// Default look-back.
pub const DEFAULT_DAYS: u32 = 7;
/// Longest look-back.
pub const MAX_DAYS: u32 = 30;

/// The tool's arguments.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The APIM subscription (sid).
    pub subscription_id: String,
    /// Proposed tokens per minute.
    pub tpm: Option<u64>,
    /// Proposed requests per minute.
    pub rpm: Option<u64>,
    /// Days to replay.
    pub days: Option<u32>,
}

/// A KQL string literal.
pub fn kql_string(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The query: requests and tokens per minute of subscription `sid`.
pub fn query(sid: &str) -> String {
    format!(
        "ApiManagementGatewayLogs\n\
         | where ApimSubscriptionId == {}\n\
         | project TimeGenerated, CorrelationId\n\
         | join kind=leftouter (\n    \
             ApiManagementGatewayLlmLog\n    \
             | where DeploymentName != ''\n    \
             | summarize Tokens = sum(TotalTokens) by CorrelationId\n\
         ) on CorrelationId\n\
         | summarize Requests = count(), Tokens = sum(Tokens) by Minute = bin(TimeGenerated, 1m)\n\
         | order by Minute asc",
        kql_string(sid)
    )
}

/// One minute of usage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Minute {
    /// The minute (ISO-8601, UTC).
    pub minute: String,
    /// Requests in that minute.
    pub requests: u64,
    /// Tokens in that minute.
    pub tokens: u64,
}

/// Parses the Log Analytics answer to [`query`]; also returns a partial-error message, if any.
pub fn parse_minutes(body: &str) -> Result<(Vec<Minute>, Option<String>), Error> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| Error::Internal(format!("the Log Analytics answer is not JSON: {e}")))?;
    let partial = v.get("error").map(|e| e["message"].as_str().map_or_else(|| e.to_string(), str::to_string));
    let table = v["tables"]
        .as_array()
        .and_then(|t| t.first())
        .ok_or_else(|| Error::Internal("the Log Analytics answer has no table".into()))?;
    let columns: Vec<&str> = table["columns"]
        .as_array()
        .map(|c| c.iter().map(|c| c["name"].as_str().unwrap_or("")).collect())
        .unwrap_or_default();
    let col = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| Error::Internal(format!("the Log Analytics answer has no {name} column")))
    };
    let (m, r, t) = (col("Minute")?, col("Requests")?, col("Tokens")?);
    let number = |x: &Value| -> u64 {
        x.as_u64()
            .or_else(|| x.as_f64().map(|f| f.max(0.0) as u64))
            .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0)
    };
    let mut minutes = Vec::new();
    for row in table["rows"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let Some(minute) = row[m].as_str() else {
            continue;
        };
        minutes.push(Minute { minute: minute.to_string(), requests: number(&row[r]), tokens: number(&row[t]) });
    }
    minutes.sort_by(|a, b| a.minute.cmp(&b.minute));
    Ok((minutes, partial))
}

/// One minute's replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// The minute.
    pub minute: Minute,
    /// Requests the proposed limits would have rejected.
    pub throttled: u64,
    /// Tokens of those requests.
    pub throttled_tokens: u64,
    /// Tokens above the proposed TPM.
    pub over_tpm: bool,
    /// Requests above the proposed RPM.
    pub over_rpm: bool,
}

/// Replays one minute (see the module documentation).
pub fn replay_minute(m: &Minute, tpm: Option<u64>, rpm: Option<u64>) -> Replayed {
    let r = u128::from(m.requests);
    let t = u128::from(m.tokens);
    let by_tokens = match tpm {
        Some(l) if t > 0 => r.min((u128::from(l) * r).div_ceil(t)),
        _ => r,
    };
    let by_calls = rpm.map_or(r, |n| r.min(u128::from(n)));
    let admitted = by_tokens.min(by_calls);
    let throttled = (r - admitted) as u64;
    let served_tokens = (t * admitted).checked_div(r).unwrap_or(t);
    Replayed {
        minute: m.clone(),
        throttled,
        throttled_tokens: (t - served_tokens) as u64,
        over_tpm: tpm.is_some_and(|l| m.tokens > l),
        over_rpm: rpm.is_some_and(|n| m.requests > n),
    }
}

/// The hour (UTC) of an ISO-8601 minute.
pub fn hour_of(minute: &str) -> Option<u32> {
    let t = minute.find('T')?;
    minute.get(t + 1..t + 3)?.parse().ok()
}

/// The whole replay.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Requests in the period.
    pub requests: u64,
    /// Tokens in the period.
    pub tokens: u64,
    /// Minutes with traffic.
    pub active_minutes: usize,
    /// The busiest minute by tokens.
    pub peak_tokens: Option<Minute>,
    /// The busiest minute by requests.
    pub peak_requests: Option<Minute>,
    /// Minutes with throttled requests.
    pub throttled_minutes: usize,
    /// Throttled requests.
    pub throttled_requests: u64,
    /// Tokens of throttled requests.
    pub throttled_tokens: u64,
    /// Minutes above the proposed TPM.
    pub minutes_over_tpm: usize,
    /// Minutes above the proposed RPM.
    pub minutes_over_rpm: usize,
    /// Per hour of day (UTC): (throttled minutes, throttled requests).
    pub hours: BTreeMap<u32, (usize, u64)>,
    /// The minutes with the most throttled requests (at most 5).
    pub worst: Vec<Replayed>,
}

/// Replays every minute.
pub fn replay(minutes: &[Minute], tpm: Option<u64>, rpm: Option<u64>) -> Report {
    let mut rep = Report {
        requests: 0,
        tokens: 0,
        active_minutes: minutes.len(),
        peak_tokens: None,
        peak_requests: None,
        throttled_minutes: 0,
        throttled_requests: 0,
        throttled_tokens: 0,
        minutes_over_tpm: 0,
        minutes_over_rpm: 0,
        hours: BTreeMap::new(),
        worst: Vec::new(),
    };
    let mut throttled = Vec::new();
    for m in minutes {
        rep.requests += m.requests;
        rep.tokens += m.tokens;
        if rep.peak_tokens.as_ref().is_none_or(|p| m.tokens > p.tokens) {
            rep.peak_tokens = Some(m.clone());
        }
        if rep.peak_requests.as_ref().is_none_or(|p| m.requests > p.requests) {
            rep.peak_requests = Some(m.clone());
        }
        let r = replay_minute(m, tpm, rpm);
        rep.minutes_over_tpm += usize::from(r.over_tpm);
        rep.minutes_over_rpm += usize::from(r.over_rpm);
        if r.throttled > 0 {
            rep.throttled_minutes += 1;
            rep.throttled_requests += r.throttled;
            rep.throttled_tokens += r.throttled_tokens;
            if let Some(h) = hour_of(&m.minute) {
                let e = rep.hours.entry(h).or_default();
                e.0 += 1;
                e.1 += r.throttled;
            }
            throttled.push(r);
        }
    }
    throttled.sort_by(|a, b| {
        b.throttled
            .cmp(&a.throttled)
            .then(b.minute.tokens.cmp(&a.minute.tokens))
            .then(a.minute.minute.cmp(&b.minute.minute))
    });
    throttled.truncate(5);
    rep.worst = throttled;
    rep
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 1000.0 / whole as f64).round() / 10.0
}

/// The subscription's current TPM and RPM (on its first API group), best effort.
fn current(arm: &dyn Arm, sub: &Subscription, answers: Vec<Result<arm::Resp, Error>>) -> Option<(Lim, Lim)> {
    let mut tenant = Tenant::from_first(arm, answers).ok()?;
    tenant.read_for(arm, std::slice::from_ref(sub)).ok()?;
    let analyses = tenant.docs.analyse();
    let groups = limits_of(&tenant, &analyses, sub).ok()?;
    let g = groups.into_iter().next()?;
    Some((g.limits.tpm, g.limits.rpm))
}

fn lim_value(l: &Lim) -> Value {
    match l {
        Lim::Limited { value, .. } => json!(value),
        Lim::Unlimited { .. } => json!("unlimited"),
        Lim::Unknown { .. } => json!("unknown"),
    }
}

/// Runs the tool: (text, structured).
pub fn run(arm: &dyn Arm, args: &Args) -> Result<(String, Value), Error> {
    let sid = args.subscription_id.as_str();
    if args.tpm.is_none() && args.rpm.is_none() {
        return Err(Error::invalid("tpm, rpm", "give the proposed tpm, rpm or both"));
    }
    for (field, v) in [("tpm", args.tpm), ("rpm", args.rpm)] {
        if v == Some(0) {
            return Err(Error::invalid(field, "must be a positive whole number, not 0"));
        }
    }
    let days = args.days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(Error::invalid("days", format!("must be between 1 and {MAX_DAYS}")));
    }

    // One batch: the subscription (it must exist) and the tenant basics for its current limits.
    let mut paths = vec![format!("subscriptions/{}", seg(sid))];
    paths.extend(Tenant::first_paths());
    let mut answers = arm.get_many(&paths);
    let rest = answers.split_off(1);
    let sub: Subscription = match answers.pop().expect("asked") {
        Ok(r) => arm::parse(&paths[0], &r.body)?,
        Err(e) if arm::is_not_found(&e) => {
            return Err(Error::NotFound(format!("subscription '{sid}' not found")));
        }
        Err(e) => return Err(e),
    };
    let now = current(arm, &sub, rest);

    let body = arm.query_logs(&query(sid), Some(&format!("P{days}D")))?;
    let (minutes, partial) = parse_minutes(&body)?;
    let rep = replay(&minutes, args.tpm, args.rpm);

    // Text.
    let mut proposed = Vec::new();
    if let Some(t) = args.tpm {
        let now_t = now.as_ref().map(|(t, _)| t.short());
        proposed.push(format!(
            "{} TPM{}",
            thousands(t),
            now_t.map_or(String::new(), |n| format!(" (now {})", crate::util::pretty(&n)))
        ));
    }
    if let Some(r) = args.rpm {
        let now_r = now.as_ref().map(|(_, r)| r.short());
        proposed.push(format!(
            "{} RPM{}",
            thousands(r),
            now_r.map_or(String::new(), |n| format!(" (now {})", crate::util::pretty(&n)))
        ));
    }
    let head = format!("What-if for {sid} at {}, last {days} days", proposed.join(" and "));
    let mut text = if minutes.is_empty() {
        format!(
            "{head}: no requests from '{sid}' in Log Analytics, so nothing to replay (are the gateway logs sent to the workspace?)."
        )
    } else if rep.throttled_minutes == 0 {
        format!(
            "{head}: no minute would have been throttled ({} requests in {} active minutes).",
            thousands(rep.requests),
            thousands(rep.active_minutes as u64)
        )
    } else {
        format!(
            "{head}: {} of {} active minutes and {} of {} requests ({}%) would have been throttled.",
            thousands(rep.throttled_minutes as u64),
            thousands(rep.active_minutes as u64),
            thousands(rep.throttled_requests),
            thousands(rep.requests),
            percent(rep.throttled_requests, rep.requests)
        )
    };
    if let Some(p) = &rep.peak_tokens {
        text.push_str(&format!(" Peak {} tokens/min", thousands(p.tokens)));
        if let Some(t) = args.tpm {
            text.push_str(&format!(" ({}% of the proposed TPM)", percent(p.tokens, t)));
        }
        text.push_str(&format!(" at {}", p.minute));
        if let Some(q) = &rep.peak_requests {
            text.push_str(&format!("; peak {} requests/min", thousands(q.requests)));
            if let Some(r) = args.rpm {
                text.push_str(&format!(" ({}% of the proposed RPM)", percent(q.requests, r)));
            }
        }
        text.push('.');
    }
    if !rep.hours.is_empty() {
        let mut hours: Vec<(&u32, &(usize, u64))> = rep.hours.iter().collect();
        hours.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
        let top: Vec<String> = hours.iter().take(4).map(|(h, (m, _))| format!("{h:02}:00 ({m} min)")).collect();
        text.push_str(&format!(" Throttled hours (UTC): {}.", top.join(", ")));
    }
    if let Some(p) = &partial {
        text.push_str(&format!(" Log Analytics answered partially: {p}."));
    }
    text.push_str(" Nothing was changed.");

    let minute_json = |m: &Minute| json!({"minute": m.minute, "requests": m.requests, "tokens": m.tokens});
    let structured = json!({
        "subscription_id": sid,
        "days": days,
        "proposed": {"tpm": args.tpm, "rpm": args.rpm},
        "current": now.as_ref().map(|(t, r)| json!({"tpm": lim_value(t), "rpm": lim_value(r)})),
        "observed": {
            "requests": rep.requests,
            "tokens": rep.tokens,
            "active_minutes": rep.active_minutes,
            "first_minute": minutes.first().map(|m| m.minute.clone()),
            "last_minute": minutes.last().map(|m| m.minute.clone()),
            "peak_tokens_per_minute": rep.peak_tokens.as_ref().map(|p| {
                let mut v = minute_json(p);
                if let Some(t) = args.tpm { v["percent_of_proposed_tpm"] = json!(percent(p.tokens, t)); }
                v
            }),
            "peak_requests_per_minute": rep.peak_requests.as_ref().map(|p| {
                let mut v = minute_json(p);
                if let Some(r) = args.rpm { v["percent_of_proposed_rpm"] = json!(percent(p.requests, r)); }
                v
            }),
        },
        "throttled": {
            "minutes": rep.throttled_minutes,
            "requests": rep.throttled_requests,
            "percent_of_requests": percent(rep.throttled_requests, rep.requests),
            "tokens": rep.throttled_tokens,
            "minutes_over_tpm": rep.minutes_over_tpm,
            "minutes_over_rpm": rep.minutes_over_rpm,
        },
        "hours_utc": rep.hours.iter().map(|(h, (m, r))| json!({"hour": h, "minutes": m, "requests": r})).collect::<Vec<_>>(),
        "worst_minutes": rep.worst.iter().map(|w| {
            let mut v = minute_json(&w.minute);
            v["throttled_requests"] = json!(w.throttled);
            v
        }).collect::<Vec<_>>(),
        "partial_error": partial,
    });
    Ok((text, structured))
}
