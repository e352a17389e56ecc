//! Backend validation as APIM does it on PUT/PATCH, and ISO-8601 durations.
//!
//! A backend is `Single` (a `url` and a `protocol`; the url is `http(s)://…`, or `fabric:/app/service`
//! for a Service Fabric backend, which then needs `properties.serviceFabricCluster`) or `Pool` (`pool.services`: 1–30 members,
//! each an existing, non-pool backend of the same service, with `priority` and `weight` 0–100
//! or null). Pool members may be given as relative ids (`/backends/x`, what the labs send) or
//! full ARM ids; they are stored and returned as full ids. A `circuitBreaker` holds one rule
//! (Azure's docs: "currently only one rule is supported") with an ISO-8601 `interval` and
//! `tripDuration`, `count` or `percentage`, up to 10 `statusCodeRanges` within 200–599 and up
//! to 10 `errorReasons`.
//!
//! Invariant: `validate` returns the properties to store (type canonicalised, ids expanded) or
//! every field error it found; it never touches the service.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::FieldError;
use crate::store::{Props, Service, key};

/// Parses an ISO-8601 duration (`PT1M`, `PT30S`, `P1D`, `PT1H30M`, `PT0.5S`, `P1W`).
/// Years and months count as 365 and 30 days. Returns `None` for anything else, including
/// `P`/`PT` with no components.
pub fn parse_iso8601_duration(s: &str) -> Option<Duration> {
    let rest = s.strip_prefix('P').or_else(|| s.strip_prefix('p'))?;
    let (date, time) = match rest.find(['T', 't']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut secs = 0f64;
    let mut any = false;
    let mut parse_part = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        let mut last_unit = -1i32;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' || c == ',' {
                num.push(if c == ',' { '.' } else { c });
                continue;
            }
            let idx = units.iter().position(|(u, _)| u.eq_ignore_ascii_case(&c))? as i32;
            if idx <= last_unit || num.is_empty() {
                return None;
            }
            last_unit = idx;
            let n: f64 = num.parse().ok()?;
            secs += n * units[idx as usize].1;
            num.clear();
            any = true;
        }
        num.is_empty().then_some(())
    };
    parse_part(date, &[('Y', 365.0 * 86400.0), ('M', 30.0 * 86400.0), ('W', 7.0 * 86400.0), ('D', 86400.0)])?;
    if let Some(t) = time {
        if t.is_empty() {
            return None;
        }
        parse_part(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    (any && secs.is_finite()).then(|| Duration::from_secs_f64(secs))
}

/// Resolves a pool member id (`/backends/x`, `backends/x` or a full ARM id under `svc`) to the
/// member's backend name.
pub fn member_name(svc: &Service, id: &str) -> Option<String> {
    let sid = svc.id();
    let rest = if id.len() > sid.len() && id[..sid.len()].eq_ignore_ascii_case(&sid) { &id[sid.len()..] } else { id };
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [c, name] if c.eq_ignore_ascii_case("backends") => Some(name.to_string()),
        _ => None,
    }
}

fn err(out: &mut Vec<FieldError>, target: &str, message: impl Into<String>) {
    out.push(FieldError { target: target.to_string(), message: message.into() });
}

fn int_field(v: Option<&Value>, min: i64, max: i64, target: &str, out: &mut Vec<FieldError>) -> Option<i64> {
    match v {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                err(out, target, format!("'{target}' must be an integer from {min} to {max}; it is {v}."));
                None
            }
        },
    }
}

fn duration_field(v: Option<&Value>, target: &str, required: bool, out: &mut Vec<FieldError>) {
    match v {
        None | Some(Value::Null) if required => err(out, target, format!("'{target}' is required.")),
        None | Some(Value::Null) => {}
        Some(v) => {
            let ok = v.as_str().and_then(parse_iso8601_duration).is_some_and(|d| !d.is_zero());
            if !ok {
                err(out, target, format!("'{target}' must be a positive ISO 8601 duration such as 'PT1M'; it is {v}."));
            }
        }
    }
}

/// Validates backend `name`'s properties against `svc`; returns what to store.
pub fn validate(svc: &Service, name: &str, props: &Props) -> Result<Props, Vec<FieldError>> {
    let mut out = Vec::new();
    let mut stored = props.clone();
    let kind = match props.get("type") {
        None | Some(Value::Null) => "Single",
        Some(Value::String(t)) if t.eq_ignore_ascii_case("single") => "Single",
        Some(Value::String(t)) if t.eq_ignore_ascii_case("pool") => "Pool",
        Some(t) => {
            err(&mut out, "type", format!("Backend 'type' must be 'Single' or 'Pool'; it is {t}."));
            "Single"
        }
    };
    stored.insert("type".into(), json!(kind));

    for (field, max) in [("title", 300), ("description", 2000)] {
        if let Some(v) = props.get(field).filter(|v| !v.is_null()) {
            match v.as_str() {
                Some(s) if !s.is_empty() && s.chars().count() <= max => {}
                _ => err(&mut out, field, format!("'{field}' must be a string of 1 to {max} characters.")),
            }
        }
    }

    let url = props.get("url").filter(|v| !v.is_null());
    let protocol = props.get("protocol").filter(|v| !v.is_null());
    if kind == "Single" {
        match url.and_then(Value::as_str) {
            None => err(&mut out, "url", "'url' is required for a Single backend."),
            Some(u) if u.starts_with("fabric:/") => {
                if !props.get("properties").and_then(|p| p.get("serviceFabricCluster")).is_some_and(Value::is_object) {
                    err(
                        &mut out,
                        "url",
                        format!(
                            "'url' '{u}' is a Service Fabric address; it needs 'properties.serviceFabricCluster' (the cluster's management endpoints and certificates)."
                        ),
                    );
                } else if u.len() > 2000 || u.contains(char::is_whitespace) {
                    err(&mut out, "url", format!("'url' must be at most 2000 characters without spaces; it is '{u}'."));
                }
            }
            Some(u) => {
                let scheme_ok = u.starts_with("http://") || u.starts_with("https://");
                let host =
                    u.split_once("://").map(|(_, r)| r.split(['/', '?', '#']).next().unwrap_or("")).unwrap_or("");
                if !scheme_ok || host.is_empty() || u.len() > 2000 || u.contains(char::is_whitespace) {
                    err(
                        &mut out,
                        "url",
                        format!("'url' must be an absolute http or https URL of at most 2000 characters; it is '{u}'."),
                    );
                }
            }
        }
        if protocol.is_none() {
            err(&mut out, "protocol", "'protocol' is required for a Single backend ('http' or 'soap').");
        }
        if props.get("pool").is_some_and(|p| !p.is_null()) {
            err(&mut out, "pool", "'pool' can only be set on a backend of type 'Pool'.");
        }
    }
    if let Some(p) = protocol {
        let ok = p.as_str().is_some_and(|p| p.eq_ignore_ascii_case("http") || p.eq_ignore_ascii_case("soap"));
        if !ok {
            err(&mut out, "protocol", format!("'protocol' must be 'http' or 'soap'; it is {p}."));
        }
    }

    if kind == "Pool" {
        validate_pool(svc, name, props.get("pool"), &mut stored, &mut out);
    }

    if let Some(cb) = props.get("circuitBreaker").filter(|v| !v.is_null()) {
        let consumption =
            svc.sku.get("name").and_then(Value::as_str).is_some_and(|s| s.eq_ignore_ascii_case("consumption"));
        if consumption {
            err(&mut out, "circuitBreaker", "Circuit breakers are not supported in the Consumption tier.");
        }
        validate_breaker(cb, &mut out);
    }

    if out.is_empty() { Ok(stored) } else { Err(out) }
}

fn validate_pool(svc: &Service, name: &str, pool: Option<&Value>, stored: &mut Props, out: &mut Vec<FieldError>) {
    let Some(services) = pool.and_then(|p| p.get("services")).and_then(Value::as_array) else {
        err(out, "pool.services", "'pool.services' is required for a Pool backend and must list at least one backend.");
        return;
    };
    if services.is_empty() {
        err(out, "pool.services", "'pool.services' must list at least one backend.");
    }
    if services.len() > 30 {
        err(out, "pool.services", format!("A pool can have at most 30 backends; it has {}.", services.len()));
    }
    let mut seen: Vec<String> = Vec::new();
    let mut members = Vec::new();
    for (i, m) in services.iter().enumerate() {
        let t = |f: &str| format!("pool.services[{i}].{f}");
        let Some(id) = m.get("id").and_then(Value::as_str) else {
            err(out, &t("id"), format!("'{}' is required.", t("id")));
            continue;
        };
        let mut item = m.as_object().cloned().unwrap_or_default();
        match member_name(svc, id) {
            None => err(
                out,
                &t("id"),
                format!(
                    "'{id}' is not a backend id of this service (expected '/backends/{{backendId}}' or '{}/backends/{{backendId}}').",
                    svc.id()
                ),
            ),
            Some(member) => match svc.backends.get(&key(&member)) {
                None => err(
                    out,
                    &t("id"),
                    format!("Backend '{member}' referenced by the pool does not exist. Create it before the pool."),
                ),
                Some(_) if member.eq_ignore_ascii_case(name) => err(out, &t("id"), "A pool cannot contain itself."),
                Some(b) if b.str("type").is_some_and(|t| t.eq_ignore_ascii_case("pool")) => {
                    err(out, &t("id"), format!("Backend '{member}' is a pool; pools cannot contain pools."))
                }
                Some(b) => {
                    if seen.iter().any(|s| s.eq_ignore_ascii_case(&member)) {
                        err(out, &t("id"), format!("Backend '{member}' is listed more than once."));
                    }
                    seen.push(member.clone());
                    item.insert("id".into(), json!(format!("{}/backends/{}", svc.id(), b.name)));
                }
            },
        }
        int_field(m.get("priority"), 0, 100, &t("priority"), out);
        int_field(m.get("weight"), 0, 100, &t("weight"), out);
        members.push(Value::Object(item));
    }
    let mut pool_obj: Map<String, Value> = pool.and_then(Value::as_object).cloned().unwrap_or_default();
    pool_obj.insert("services".into(), Value::Array(members));
    stored.insert("pool".into(), Value::Object(pool_obj));
}

fn validate_breaker(cb: &Value, out: &mut Vec<FieldError>) {
    let Some(rules) = cb.get("rules").and_then(Value::as_array) else {
        err(out, "circuitBreaker.rules", "'circuitBreaker.rules' must be an array with one rule.");
        return;
    };
    if rules.len() > 1 {
        err(
            out,
            "circuitBreaker.rules",
            format!("Only one circuit breaker rule is supported; {} were given.", rules.len()),
        );
    }
    for (i, r) in rules.iter().enumerate() {
        let t = |f: &str| format!("circuitBreaker.rules[{i}].{f}");
        if r.get("name").and_then(Value::as_str).is_none_or(str::is_empty) {
            err(out, &t("name"), format!("'{}' is required.", t("name")));
        }
        let Some(fc) = r.get("failureCondition").filter(|v| v.is_object()) else {
            err(out, &t("failureCondition"), format!("'{}' is required.", t("failureCondition")));
            continue;
        };
        let count = int_field(fc.get("count"), 1, i64::from(i32::MAX), &t("failureCondition.count"), out);
        let pct = int_field(fc.get("percentage"), 1, 100, &t("failureCondition.percentage"), out);
        let has = |k: &str| fc.get(k).is_some_and(|v| !v.is_null());
        if !has("count") && !has("percentage") {
            err(out, &t("failureCondition"), "A failure condition needs 'count' or 'percentage'.");
        }
        let _ = (count, pct);
        duration_field(fc.get("interval"), &t("failureCondition.interval"), true, out);
        if let Some(ranges) = fc.get("statusCodeRanges").filter(|v| !v.is_null()) {
            match ranges.as_array() {
                None => err(out, &t("failureCondition.statusCodeRanges"), "'statusCodeRanges' must be an array."),
                Some(rs) => {
                    if rs.len() > 10 {
                        err(
                            out,
                            &t("failureCondition.statusCodeRanges"),
                            format!("At most 10 status code ranges are allowed; {} were given.", rs.len()),
                        );
                    }
                    for (j, range) in rs.iter().enumerate() {
                        let rt = |f: &str| t(&format!("failureCondition.statusCodeRanges[{j}].{f}"));
                        let min = int_field(range.get("min"), 200, 599, &rt("min"), out);
                        let max = int_field(range.get("max"), 200, 599, &rt("max"), out);
                        if range.get("min").is_none_or(Value::is_null) {
                            err(out, &rt("min"), format!("'{}' is required.", rt("min")));
                        }
                        if range.get("max").is_none_or(Value::is_null) {
                            err(out, &rt("max"), format!("'{}' is required.", rt("max")));
                        }
                        if let (Some(a), Some(b)) = (min, max)
                            && a > b
                        {
                            err(out, &rt("min"), format!("Status code range min {a} is greater than max {b}."));
                        }
                    }
                }
            }
        }
        if let Some(reasons) = fc.get("errorReasons").filter(|v| !v.is_null()) {
            match reasons.as_array() {
                Some(rs) if rs.len() <= 10 => {
                    for (j, x) in rs.iter().enumerate() {
                        if !x.as_str().is_some_and(|s| !s.is_empty() && s.chars().count() <= 200) {
                            err(
                                out,
                                &t(&format!("failureCondition.errorReasons[{j}]")),
                                "Error reasons must be strings of 1 to 200 characters.",
                            );
                        }
                    }
                }
                _ => err(
                    out,
                    &t("failureCondition.errorReasons"),
                    "'errorReasons' must be an array of at most 10 strings.",
                ),
            }
        }
        duration_field(r.get("tripDuration"), &t("tripDuration"), true, out);
        if let Some(v) = r.get("acceptRetryAfter").filter(|v| !v.is_null())
            && !v.is_boolean()
        {
            err(out, &t("acceptRetryAfter"), "'acceptRetryAfter' must be true or false.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_durations() {
        assert_eq!(parse_iso8601_duration("PT1M"), Some(Duration::from_secs(60)));
        assert_eq!(parse_iso8601_duration("PT1H30M"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_iso8601_duration("P1DT2S"), Some(Duration::from_secs(86402)));
        assert_eq!(parse_iso8601_duration("PT0.5S"), Some(Duration::from_millis(500)));
        assert_eq!(parse_iso8601_duration("P1W"), Some(Duration::from_secs(604800)));
        for bad in ["", "P", "PT", "1M", "PT1", "PTM", "PT1S1M", "P1H", "PT1X", "5 minutes"] {
            assert_eq!(parse_iso8601_duration(bad), None, "{bad}");
        }
    }

    fn svc() -> Service {
        crate::seed::sandbox_state().sandbox().unwrap().clone()
    }

    fn errors(v: Value) -> Vec<String> {
        match validate(&svc(), "b", v.as_object().unwrap()) {
            Ok(_) => vec![],
            Err(e) => e.into_iter().map(|e| format!("{}: {}", e.target, e.message)).collect(),
        }
    }

    #[test]
    fn pool_members_are_checked_and_expanded() {
        let s = svc();
        let p = json!({"type":"Pool","pool":{"services":[{"id":"/backends/aoai-eastus","priority":1,"weight":50}]}});
        let stored = validate(&s, "p2", p.as_object().unwrap()).unwrap();
        assert_eq!(stored["pool"]["services"][0]["id"], json!(format!("{}/backends/aoai-eastus", s.id())));
        let e = errors(json!({"type":"Pool","pool":{"services":[
            {"id":"/backends/nope"},
            {"id":"/backends/aoai-pool"},
            {"id":"/backends/aoai-eastus","priority":101,"weight":-1},
            {"id":"/backends/aoai-eastus"}]}}));
        assert!(e.iter().any(|x| x.contains("Backend 'nope' referenced by the pool does not exist")), "{e:?}");
        assert!(e.iter().any(|x| x.contains("pools cannot contain pools")));
        assert!(e.iter().any(|x| x.starts_with("pool.services[2].priority")));
        assert!(e.iter().any(|x| x.starts_with("pool.services[2].weight")));
        assert!(e.iter().any(|x| x.contains("listed more than once")));
        let many: Vec<Value> = (0..31).map(|_| json!({"id":"/backends/aoai-eastus"})).collect();
        assert!(errors(json!({"type":"Pool","pool":{"services":many}})).iter().any(|x| x.contains("at most 30")));
        assert!(errors(json!({"type":"Pool"})).iter().any(|x| x.contains("'pool.services' is required")));
    }

    #[test]
    fn single_backends_need_url_and_protocol_and_a_sane_breaker() {
        let e = errors(json!({"url":"ftp://x","protocol":"grpc"}));
        assert!(e.iter().any(|x| x.starts_with("url:")));
        assert!(e.iter().any(|x| x.starts_with("protocol:")));
        let e = errors(json!({"url":"https://x.example/openai","protocol":"http","circuitBreaker":{"rules":[
            {"name":"r","failureCondition":{"count":5,"interval":"1 minute","statusCodeRanges":[{"min":100,"max":599},{"min":503,"max":500}]},"tripDuration":"PT0S"}]}}));
        assert!(e.iter().any(|x| x.contains("failureCondition.interval") && x.contains("ISO 8601")), "{e:?}");
        assert!(e.iter().any(|x| x.contains("statusCodeRanges[0].min") && x.contains("200 to 599")));
        assert!(e.iter().any(|x| x.contains("min 503 is greater than max 500")));
        assert!(e.iter().any(|x| x.starts_with("circuitBreaker.rules[0].tripDuration")));
        assert!(errors(json!({"url":"https://x.example","protocol":"http","circuitBreaker":{"rules":[
            {"name":"r","failureCondition":{"count":5,"interval":"PT1M","statusCodeRanges":[{"min":429,"max":429}]},"tripDuration":"PT5M","acceptRetryAfter":true}]}})).is_empty());
    }
}
