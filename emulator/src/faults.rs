//! Fault injection for ARM calls, configured through `POST /_emulator/faults`.
//!
//! A rule matches a request by path (a glob where `*` matches anything including `/` and `?`
//! one character, or a regex when the pattern starts with `^`; both case-insensitive, matched
//! against the path without the query string) and optionally by method. When it matches, it
//! fires with probability `rate`; a firing rule adds `latencyMs`, then either drops the
//! connection (`drop`), answers with `status` (an ARM error envelope; 429 carries `Retry-After`,
//! default 1 s), or — with neither — lets the request through late. `count` limits how many
//! times it fires; a rule that has fired `count` times is removed. Rules are evaluated in the
//! order they were added and the first that fires wins. Faults never apply to `/_emulator/*`.
//!
//! Invariant: with no rules, `check` takes no lock (one atomic load), so the benchmark path is
//! unaffected.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use axum::http::Method;
use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};

/// A fault rule as posted to `/_emulator/faults`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    /// Glob (`*`, `?`) or, when it starts with `^`, a regex. Default: every ARM path.
    #[serde(default)]
    pub path: Option<String>,
    /// HTTP method to match (`*` or absent: any).
    #[serde(default)]
    pub method: Option<String>,
    /// Status to answer with (400–599).
    #[serde(default)]
    pub status: Option<u16>,
    /// `Retry-After` seconds (default 1 for 429).
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Probability that a matching request is faulted (0–1, default 1).
    #[serde(default)]
    pub rate: Option<f64>,
    /// How many times the rule fires before it is removed (default: until cleared).
    #[serde(default)]
    pub count: Option<u64>,
    /// Delay added before answering (or before handling, when no status/drop).
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Close the connection without a response.
    #[serde(default)]
    pub drop: Option<bool>,
    /// Override the error code in the envelope.
    #[serde(default)]
    pub code: Option<String>,
    /// Override the error message in the envelope.
    #[serde(default)]
    pub message: Option<String>,
}

/// What a firing rule does to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultAction {
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    pub latency_ms: u64,
    pub drop: bool,
    pub code: Option<String>,
    pub message: Option<String>,
}

struct Rule {
    id: String,
    spec: FaultSpec,
    path: Regex,
    remaining: Option<u64>,
    fired: u64,
}

/// The active fault rules.
#[derive(Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    active: AtomicUsize,
    next_id: AtomicU64,
}

fn glob_to_regex(glob: &str) -> String {
    let mut re = String::from("(?i)^");
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    re
}

impl Faults {
    /// Adds a rule; returns its JSON description (with `id`) or why it is invalid.
    pub fn add(&self, mut spec: FaultSpec) -> Result<Value, String> {
        if let Some(s) = spec.status
            && !(400..=599).contains(&s)
        {
            return Err(format!("'status' must be from 400 to 599; it is {s}."));
        }
        if spec.status.is_none() && !spec.drop.unwrap_or(false) && spec.latency_ms.unwrap_or(0) == 0 {
            return Err("A fault needs 'status', 'drop': true or 'latencyMs'.".into());
        }
        if let Some(r) = spec.rate
            && !(0.0..=1.0).contains(&r)
        {
            return Err(format!("'rate' must be from 0 to 1; it is {r}."));
        }
        if spec.count == Some(0) {
            return Err("'count' must be at least 1 (omit it to fault until cleared).".into());
        }
        if spec.status == Some(429) && spec.retry_after.is_none() {
            spec.retry_after = Some(1);
        }
        let pattern = spec.path.clone().unwrap_or_else(|| "*".into());
        let source = if pattern.starts_with('^') { format!("(?i){pattern}") } else { glob_to_regex(&pattern) };
        let path = Regex::new(&source).map_err(|e| format!("'path' is not a valid pattern: {e}"))?;
        let id = format!("fault-{}", self.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        let rule = Rule { id, remaining: spec.count, spec, path, fired: 0 };
        let desc = describe(&rule);
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        rules.push(rule);
        self.active.store(rules.len(), Ordering::Release);
        Ok(desc)
    }

    /// Removes every rule; returns how many there were.
    pub fn clear(&self) -> usize {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let n = rules.len();
        rules.clear();
        self.active.store(0, Ordering::Release);
        n
    }

    /// Removes rule `id`; false if there is no such rule.
    pub fn remove(&self, id: &str) -> bool {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let before = rules.len();
        rules.retain(|r| r.id != id);
        self.active.store(rules.len(), Ordering::Release);
        rules.len() != before
    }

    /// The active rules as JSON.
    pub fn list(&self) -> Value {
        let rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        Value::Array(rules.iter().map(describe).collect())
    }

    /// The action for this request, if a rule fires.
    pub fn check(&self, method: &Method, path: &str) -> Option<FaultAction> {
        if self.active.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let idx = rules.iter().position(|r| {
            let method_ok = match r.spec.method.as_deref() {
                None | Some("*") => true,
                Some(m) => m.eq_ignore_ascii_case(method.as_str()),
            };
            method_ok && r.path.is_match(path) && rand::random::<f64>() < r.spec.rate.unwrap_or(1.0)
        })?;
        let rule = &mut rules[idx];
        rule.fired += 1;
        let action = FaultAction {
            status: rule.spec.status,
            retry_after: rule.spec.retry_after,
            latency_ms: rule.spec.latency_ms.unwrap_or(0),
            drop: rule.spec.drop.unwrap_or(false),
            code: rule.spec.code.clone(),
            message: rule.spec.message.clone(),
        };
        if let Some(rem) = rule.remaining.as_mut() {
            *rem -= 1;
            if *rem == 0 {
                rules.remove(idx);
                self.active.store(rules.len(), Ordering::Release);
            }
        }
        Some(action)
    }
}

fn describe(r: &Rule) -> Value {
    json!({
        "id": r.id,
        "path": r.spec.path.clone().unwrap_or_else(|| "*".into()),
        "method": r.spec.method.clone().unwrap_or_else(|| "*".into()),
        "status": r.spec.status,
        "retryAfter": r.spec.retry_after,
        "rate": r.spec.rate.unwrap_or(1.0),
        "count": r.spec.count,
        "remaining": r.remaining,
        "fired": r.fired,
        "latencyMs": r.spec.latency_ms.unwrap_or(0),
        "drop": r.spec.drop.unwrap_or(false),
        "code": r.spec.code,
        "message": r.spec.message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> FaultSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn globs_match_whole_paths_case_insensitively() {
        let f = Faults::default();
        f.add(spec(json!({"path": "*/backends/*", "method": "PUT", "status": 503}))).unwrap();
        assert!(f.check(&Method::GET, "/x/backends/a").is_none());
        assert!(f.check(&Method::PUT, "/x/Backends/a").is_some());
        assert!(f.check(&Method::PUT, "/x/apis/a").is_none());
    }

    #[test]
    fn count_limits_firing_and_then_the_rule_is_gone() {
        let f = Faults::default();
        let d = f.add(spec(json!({"status": 429, "count": 2}))).unwrap();
        assert_eq!(d["retryAfter"], json!(1));
        assert!(f.check(&Method::GET, "/a").is_some());
        assert!(f.check(&Method::GET, "/a").is_some());
        assert!(f.check(&Method::GET, "/a").is_none());
        assert_eq!(f.list(), json!([]));
    }

    #[test]
    fn regex_patterns_and_rate_zero() {
        let f = Faults::default();
        f.add(spec(json!({"path": "^/subscriptions/[^/]+/resourceGroups/.*/apis$", "status": 500}))).unwrap();
        assert!(f.check(&Method::GET, "/subscriptions/s/resourceGroups/r/x/apis").is_some());
        assert!(f.check(&Method::GET, "/subscriptions/s/resourceGroups/r/x/apis/a").is_none());
        f.clear();
        f.add(spec(json!({"status": 500, "rate": 0.0}))).unwrap();
        assert!((0..100).all(|_| f.check(&Method::GET, "/a").is_none()));
    }

    #[test]
    fn invalid_rules_are_refused_with_a_reason() {
        let f = Faults::default();
        assert!(f.add(spec(json!({"status": 200}))).unwrap_err().contains("400 to 599"));
        assert!(f.add(spec(json!({}))).unwrap_err().contains("needs"));
        assert!(f.add(spec(json!({"status": 500, "rate": 2}))).unwrap_err().contains("rate"));
        assert!(f.add(spec(json!({"status": 500, "path": "^("}))).unwrap_err().contains("not a valid pattern"));
    }
}
