//! The traffic model: simulates the gateway minute by minute under the policies in force.
//!
//! For each simulated minute: every subscription with a demand profile draws a Poisson number of
//! requests (see `profile`), each with an arrival time in the minute, prompt and completion sizes
//! and a client address. All requests of the minute are processed in arrival order (so teams
//! compete for shared backends realistically) through their subscription's pipeline:
//!
//! 1. inactive subscription → 401;
//! 2. inbound steps in document order: token limits (sliding 60 s TPM window and fixed quota
//!    periods per counter key), `rate-limit-by-key` (sliding window), `quota-by-key` (fixed
//!    window), semantic cache lookup (a hit answers from the cache), token-metric emission
//!    (recorded for the response), `set-backend-service`, `return-response`;
//! 3. the backend section: forward to the selected backend, with the `<retry>` around it; a pool
//!    picks among the available members of its best priority group by weight; circuit breakers
//!    trip on matching failures and close after `tripDuration` (or the backend's `Retry-After`
//!    when `acceptRetryAfter`); a deployment answers 429 above its capacity, 503 (or a connection
//!    failure) during an outage switched on with `/_emulator/backends/{id}/outage`;
//! 4. the outcome: a gateway-log row, an LLM-log row for model responses, `Requests`/`Duration`/
//!    `BackendDuration` samples, token metrics for backend responses, counters updated.
//!
//! Determinism: a request's random draws come from a stream keyed by (seed, minute,
//! subscription, index), and the state the model keeps (windows, breakers, cache warmth) only
//! depends on what was simulated before. The same seed, start time, policies and actions give the
//! same telemetry.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;

use aigw_kql::value::{civil_from_days, days_from_civil};
use rustc_hash::FxHashMap;

use super::data::{CustomSeries, Data, GatewayRow, LlmRow};
use super::expr::{self, Val};
use super::policy_eval::{BACKEND_MARK, IP_MARK, Period, Step, Target};
use super::rng::{Rng, hash, word};
use super::world::{Kind, Plan, Reach, World};

/// `LastErrorReason` values the model produces.
pub mod reason {
    pub const TOKEN_LIMIT: &str = "OpenAITokenLimitExceeded";
    pub const TOKEN_QUOTA: &str = "OpenAITokenQuotaExceeded";
    pub const RATE_LIMIT: &str = "RateLimitExceeded";
    pub const CALL_QUOTA: &str = "QuotaExceeded";
    pub const POOL_INACTIVE: &str = "PoolIsInactive";
    pub const BACKEND_INACTIVE: &str = "BackendIsInactive";
    pub const CONNECTION: &str = "BackendConnectionFailure";
    pub const SUBSCRIPTION_KEY: &str = "SubscriptionKeyInvalid";
    pub const BACKEND_NOT_FOUND: &str = "BackendNotFound";
}

/// How an outage shows itself to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OutageMode {
    /// The backend answers `503 Service Unavailable`.
    #[serde(rename = "503", alias = "status503")]
    Status503,
    /// Nothing answers: the gateway reports `BackendConnectionFailure` (HTTP 500).
    ConnectionFailure,
}

/// Sliding window of per-second sums over the last `len` seconds.
#[derive(Debug, Clone)]
struct Window {
    buckets: Vec<u64>,
    sum: u64,
    last: i64,
}

impl Window {
    fn new(len: usize) -> Window {
        Window { buckets: vec![0; len.max(1)], sum: 0, last: i64::MIN }
    }
    fn advance(&mut self, sec: i64) {
        let len = self.buckets.len() as i64;
        if self.last == i64::MIN || sec - self.last >= len {
            self.buckets.iter_mut().for_each(|b| *b = 0);
            self.sum = 0;
        } else {
            for s in (self.last + 1)..=sec {
                let i = s.rem_euclid(len) as usize;
                self.sum -= self.buckets[i];
                self.buckets[i] = 0;
            }
        }
        self.last = self.last.max(sec);
    }
    fn sum_at(&mut self, sec: i64) -> u64 {
        if sec > self.last {
            self.advance(sec);
        }
        self.sum
    }
    fn add(&mut self, sec: i64, v: u64) {
        if sec > self.last {
            self.advance(sec);
        }
        let len = self.buckets.len() as i64;
        self.buckets[sec.rem_euclid(len) as usize] += v;
        self.sum += v;
    }
    /// Seconds from `sec` until the window sum drops below `limit` (at least 1).
    fn retry_after(&mut self, sec: i64, limit: u64) -> u64 {
        let len = self.buckets.len() as i64;
        let mut sum = self.sum_at(sec);
        for d in 1..=len {
            // The bucket of second `sec - len + d` leaves the window at `sec + d`.
            let s = sec - len + d;
            sum -= self.buckets[s.rem_euclid(len) as usize];
            if sum < limit {
                return d as u64;
            }
        }
        len as u64
    }
}

#[derive(Debug, Clone, Default)]
struct BreakerState {
    failures: VecDeque<i64>,
    requests: VecDeque<i64>,
    open_until: i64,
}

#[derive(Debug, Clone)]
struct DeploymentLoad {
    tokens: Window,
    requests: Window,
}

/// Responses stored in one semantic-cache partition, per minute.
#[derive(Debug, Clone, Default)]
struct CacheState {
    stored: VecDeque<(i64, u64)>,
}

/// The model's state across minutes.
pub struct Model {
    seed: u64,
    tpm: FxHashMap<String, Window>,
    token_quota: FxHashMap<String, (i64, u64)>,
    rate: FxHashMap<(String, u32), Window>,
    call_quota: FxHashMap<String, (i64, u64)>,
    breakers: FxHashMap<String, BreakerState>,
    /// Load on each deployment (index in `State::aoai_deployments`).
    load: Vec<DeploymentLoad>,
    caches: FxHashMap<String, CacheState>,
    /// Backends (lower-cased names) with an outage switched on.
    pub outages: BTreeMap<String, OutageMode>,
    /// Compiled retry conditions: (condition, status) → retry?
    retry_cache: FxHashMap<(String, u16), bool>,
    /// Token-metric series ids by (plan, step, client address, backend), for `series_world`.
    series_cache: FxHashMap<(usize, usize, usize, usize), u32>,
    series_world: u64,
    scratch: Scratch,
}

#[derive(Default)]
struct Scratch {
    backend_url: String,
    message: String,
    token_steps: Vec<usize>,
    emit_steps: Vec<usize>,
}

/// One request arriving at the gateway.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    time_ms: i64,
    plan: usize,
    index: u64,
}

/// The result of forwarding to a backend.
#[derive(Debug, Clone)]
struct Forward {
    /// The backend the request went to last (member of a pool, or the single backend).
    backend: Option<usize>,
    /// The backend's status; 0 when none answered.
    status: u16,
    /// Gateway-side failure (no backend answer): reason and gateway status.
    gateway_error: Option<(&'static str, u16)>,
    backend_ms: u32,
    attempts: u32,
    deployment: Option<usize>,
}

impl Forward {
    fn none() -> Forward {
        Forward { backend: None, status: 0, gateway_error: None, backend_ms: 0, attempts: 0, deployment: None }
    }
}

/// Mean number of distinct prompt intents a team's cache must see before it is warm.
const CACHE_INTENTS: f64 = 500.0;
/// Probability of a transient backend 500 per call.
const TRANSIENT_ERROR: f64 = 0.0002;

fn window<'a, K: std::hash::Hash + Eq + std::borrow::Borrow<str>>(
    map: &'a mut FxHashMap<K, Window>,
    key: &str,
    len: usize,
    make: impl FnOnce() -> K,
) -> &'a mut Window {
    if !map.contains_key(key) {
        map.insert(make(), Window::new(len));
    }
    map.get_mut(key).expect("inserted")
}

impl Model {
    pub fn new(seed: u64) -> Model {
        Model {
            seed,
            tpm: FxHashMap::default(),
            token_quota: FxHashMap::default(),
            rate: FxHashMap::default(),
            call_quota: FxHashMap::default(),
            breakers: FxHashMap::default(),
            load: Vec::new(),
            caches: FxHashMap::default(),
            outages: BTreeMap::new(),
            retry_cache: FxHashMap::default(),
            series_cache: FxHashMap::default(),
            series_world: 0,
            scratch: Scratch::default(),
        }
    }

    /// Simulates unix minute `minute` (`data.end_minute()` must equal it).
    pub fn simulate_minute(&mut self, world: &World, minute: i64, data: &mut Data) {
        debug_assert_eq!(minute, data.end_minute());
        if self.series_world != world.id {
            self.series_cache.clear();
            self.series_world = world.id;
        }
        data.set_world(world.id);
        while self.load.len() < world.deployments.len() {
            self.load.push(DeploymentLoad { tokens: Window::new(60), requests: Window::new(60) });
        }
        let start_ms = minute * 60_000;
        let hour = minute.div_euclid(60);
        let day = minute.div_euclid(1440);
        // 1970-01-01 was a Thursday: day 2 (Sat) and 3 (Sun) modulo 7.
        let weekend = matches!(day.rem_euclid(7), 2 | 3);
        let h = (minute.rem_euclid(1440)) as f64 / 60.0;
        let mut arrivals = Vec::new();
        for (pi, plan) in world.plans.iter().enumerate() {
            let p = &plan.profile;
            let sub_word = word(&plan.sub);
            let mut drift = Rng::new(hash(&[self.seed, 1, sub_word, hour as u64]));
            let mut noise = Rng::new(hash(&[self.seed, 2, sub_word, minute as u64]));
            let lambda = p.peak_rpm
                * p.curve.at(h)
                * if weekend { p.weekend } else { 1.0 }
                * drift.lognormal(0.08)
                * noise.lognormal(0.10);
            let n = noise.poisson(lambda);
            let mut r = Rng::new(hash(&[self.seed, 3, sub_word, minute as u64]));
            for k in 0..n {
                arrivals.push(Arrival { time_ms: start_ms + r.below(60_000) as i64, plan: pi, index: k });
            }
        }
        arrivals.sort_unstable_by_key(|a| (a.time_ms, a.plan, a.index));
        for a in arrivals {
            self.request(world, a, minute, data);
        }
        data.finish_minute();
    }

    fn request(&mut self, world: &World, a: Arrival, minute: i64, data: &mut Data) {
        let plan = &world.plans[a.plan];
        let p = &plan.profile;
        let mut rng = Rng::new(hash(&[self.seed, 4, word(&plan.sub), minute as u64, a.index]));
        let prompt = (p.prompt_tokens * rng.lognormal(0.35)).round().max(1.0) as u32;
        let completion = (p.completion_tokens * rng.lognormal(0.5)).round().max(1.0) as u32;
        let ip_index = rng.below(p.client_ips.len() as u64) as usize;
        let ip = p.client_ips[ip_index].as_str();
        let corr = rng.guid();
        let mut message = std::mem::take(&mut self.scratch.message);
        message.clear();
        let mut token_steps = std::mem::take(&mut self.scratch.token_steps);
        token_steps.clear();
        let mut emit_steps = std::mem::take(&mut self.scratch.emit_steps);
        emit_steps.clear();
        let mut backend_url = std::mem::take(&mut self.scratch.backend_url);
        backend_url.clear();

        self.process(
            world,
            plan,
            a,
            minute,
            data,
            &mut rng,
            prompt,
            completion,
            ip_index,
            corr,
            &mut message,
            &mut token_steps,
            &mut emit_steps,
            &mut backend_url,
        );
        let _ = ip;
        self.scratch = Scratch { backend_url, message, token_steps, emit_steps };
    }

    #[allow(clippy::too_many_arguments)]
    fn process(
        &mut self,
        world: &World,
        plan: &Plan,
        a: Arrival,
        minute: i64,
        data: &mut Data,
        rng: &mut Rng,
        prompt: u32,
        completion: u32,
        ip_index: usize,
        corr: u128,
        message: &mut String,
        token_steps: &mut Vec<usize>,
        emit_steps: &mut Vec<usize>,
        backend_url: &mut String,
    ) {
        let p = &plan.profile;
        let ip = p.client_ips[ip_index].as_str();
        let sec = a.time_ms.div_euclid(1000);
        let overhead = 3 + rng.below(9) as u32;
        let mut row = GatewayRow {
            time_ms: a.time_ms,
            correlation_id: corr,
            url: &plan.url,
            request_size: prompt * 4 + 260,
            api_id: &plan.api,
            operation_id: &plan.operation,
            product_id: &plan.product,
            subscription_id: &plan.sub,
            user_id: &plan.user,
            caller_ip: ip,
            cache: "none",
            ..GatewayRow::default()
        };

        if !plan.active {
            row.response_code = 401;
            row.response_size = 170;
            row.total_time = 1 + rng.below(3) as u32;
            row.last_error_reason = reason::SUBSCRIPTION_KEY;
            row.last_error_message = "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.";
            row.last_error_section = "inbound";
            row.last_error_elapsed = Some(row.total_time);
            data.request(&row);
            return;
        }

        let pipe = &plan.pipeline;
        let mut target: Option<&Target> = None;
        let mut cache_lookup: Option<String> = None;
        let mut rejected: Option<(u16, &'static str, &str, &'static str)> = None;
        let mut cache_ms = 0u32;

        for (si, step) in pipe.inbound.iter().enumerate() {
            match step {
                Step::TokenLimit { element, key, tpm, quota, estimate } => {
                    let key = resolve(key, ip);
                    if let Some(limit) = tpm {
                        let w = window(&mut self.tpm, &key, 60, || key.to_string());
                        // Without estimation the limit only sees tokens already consumed (a
                        // request may overshoot); with it, this prompt must fit as well.
                        let incoming = if *estimate { prompt as u64 } else { 0 };
                        if w.sum_at(sec) + incoming >= *limit + u64::from(*estimate) {
                            let wait = w.retry_after(sec, limit.saturating_sub(incoming).max(1));
                            let _ = write!(message, "Token limit is exceeded. Try again in {wait} seconds.");
                            rejected = Some((429, reason::TOKEN_LIMIT, element, pipe.inbound_scopes[si]));
                            break;
                        }
                    }
                    if let Some((q, period)) = quota {
                        let (start, next) = period_bounds(*period, sec);
                        let e = self.token_quota.entry(format!("{key}\u{0}{period:?}")).or_insert((start, 0));
                        if e.0 != start {
                            *e = (start, 0);
                        }
                        if e.1 >= *q {
                            let _ =
                                write!(message, "Token quota is exceeded. Try again in {}.", human_wait(next - sec));
                            rejected = Some((403, reason::TOKEN_QUOTA, element, pipe.inbound_scopes[si]));
                            break;
                        }
                    }
                    token_steps.push(si);
                }
                Step::RateLimitByKey { key, calls, period_s } => {
                    let key = resolve(key, ip);
                    let rk = (key.into_owned(), *period_s);
                    let w = self.rate.entry(rk).or_insert_with(|| Window::new(*period_s as usize));
                    if w.sum_at(sec) >= *calls {
                        let wait = w.retry_after(sec, *calls);
                        let _ = write!(message, "Rate limit is exceeded. Try again in {wait} seconds.");
                        rejected = Some((429, reason::RATE_LIMIT, "rate-limit-by-key", pipe.inbound_scopes[si]));
                        break;
                    }
                    w.add(sec, 1);
                }
                Step::QuotaByKey { key, calls, period_s } => {
                    let key = resolve(key, ip);
                    let (start, next) = if *period_s == 0 {
                        (0, i64::MAX)
                    } else {
                        let s = sec - sec.rem_euclid(*period_s as i64);
                        (s, s + *period_s as i64)
                    };
                    let e = self.call_quota.entry(key.into_owned()).or_insert((start, 0));
                    if e.0 != start {
                        *e = (start, 0);
                    }
                    if e.1 >= *calls {
                        let wait = if next == i64::MAX { "never".to_string() } else { hms(next - sec) };
                        let _ = write!(message, "Out of call volume quota. Quota will be replenished in {wait}.");
                        rejected = Some((403, reason::CALL_QUOTA, "quota-by-key", pipe.inbound_scopes[si]));
                        break;
                    }
                    e.1 += 1;
                }
                Step::CacheLookup { element, threshold, partition } => {
                    let part = format!("{element}\u{0}{partition}");
                    cache_ms += 12 + rng.below(25) as u32;
                    let warm = match (pipe.cache_store_s, self.caches.get_mut(&part)) {
                        (Some(ttl), Some(c)) => {
                            let oldest = minute - (ttl as i64 + 59) / 60;
                            while c.stored.front().is_some_and(|(m, _)| *m < oldest) {
                                c.stored.pop_front();
                            }
                            let stored: u64 = c.stored.iter().map(|(_, n)| n).sum();
                            1.0 - (-(stored as f64) / CACHE_INTENTS).exp()
                        }
                        _ => 0.0,
                    };
                    let p_hit = warm * hit_share(*threshold, p.repeat_share);
                    cache_lookup = Some(part);
                    if rng.f64() < p_hit {
                        // Served from the cache: the rest of the pipeline and the backend are skipped.
                        row.cache = "hit";
                        row.response_code = 200;
                        row.response_size = completion * 4 + 350;
                        row.cache_time = cache_ms;
                        row.total_time = cache_ms + overhead;
                        row.client_time = 1 + rng.below(4) as u32;
                        data.request(&row);
                        data.llm(&LlmRow {
                            time_ms: a.time_ms,
                            correlation_id: corr,
                            deployment: &p.deployment,
                            model: model_name(world, None, &p.deployment),
                            api_version: super::world::AOAI_API_VERSION,
                            prompt_tokens: prompt,
                            completion_tokens: completion,
                        });
                        return;
                    }
                    row.cache = "miss";
                }
                Step::EmitTokenMetric { .. } => emit_steps.push(si),
                Step::SetBackend(t) => target = Some(t),
                Step::Respond { status } => {
                    row.response_code = *status;
                    row.response_size = 120;
                    row.cache_time = cache_ms;
                    row.total_time = cache_ms + 1 + rng.below(3) as u32;
                    data.request(&row);
                    return;
                }
            }
        }

        if let Some((status, why, source, scope)) = rejected {
            row.response_code = status;
            row.response_size = 90 + message.len() as u32;
            row.cache_time = cache_ms;
            row.total_time = cache_ms + 1 + rng.below(4) as u32;
            row.last_error_reason = why;
            row.last_error_message = message;
            row.last_error_source = source;
            row.last_error_section = "inbound";
            row.last_error_scope = scope;
            row.last_error_elapsed = Some(row.total_time);
            data.request(&row);
            return;
        }

        if let Some(t) = &pipe.backend_target {
            target = Some(t);
        }
        let fwd = self.forward(world, plan, target, sec, prompt, completion, rng);
        let backend_name = fwd.backend.map(|b| world.backends[b].name.as_str()).unwrap_or("");
        if let Some(b) = fwd.backend
            && !world.backends[b].url.is_empty()
        {
            backend_url.push_str(world.backends[b].url.trim_end_matches('/'));
            backend_url.push_str(&plan.backend_path);
        }
        row.backend_id = backend_name;
        row.backend_url = backend_url;
        row.cache_time = cache_ms;
        row.backend_response_code = fwd.status;
        if fwd.attempts > 0 {
            row.backend_time = Some(fwd.backend_ms);
        }
        let ok = fwd.status == 200 && fwd.gateway_error.is_none();
        row.client_time = if ok { 1 + rng.below(6) as u32 } else { 1 };
        row.total_time = cache_ms + fwd.backend_ms + overhead + row.client_time;
        match fwd.gateway_error {
            Some((why, status)) => {
                row.response_code = status;
                row.response_size = 180;
                row.last_error_reason = why;
                message.push_str(match why {
                    reason::POOL_INACTIVE => "Backend pool is temporarily unavailable.",
                    reason::BACKEND_INACTIVE => "Backend is temporarily unavailable.",
                    reason::CONNECTION => "Unable to connect to the remote server",
                    _ => "Backend not found.",
                });
                row.last_error_message = message;
                row.last_error_source = "forward-request";
                row.last_error_section = "backend";
                row.last_error_scope = "api";
                row.last_error_elapsed = Some(row.total_time);
            }
            None => {
                row.response_code = fwd.status;
                row.response_size = if ok { completion * 4 + 350 } else { 310 };
            }
        }
        data.request(&row);
        if !ok {
            return;
        }
        let deployment = fwd.deployment.map(|d| world.deployments[d].deployment.as_str()).unwrap_or(&p.deployment);
        data.llm(&LlmRow {
            time_ms: a.time_ms,
            correlation_id: corr,
            deployment,
            model: model_name(world, fwd.deployment, deployment),
            api_version: super::world::AOAI_API_VERSION,
            prompt_tokens: prompt,
            completion_tokens: completion,
        });
        let total = (prompt + completion) as u64;
        for &si in token_steps.iter() {
            let Step::TokenLimit { key, quota, .. } = &pipe.inbound[si] else { continue };
            let key = resolve(key, ip);
            window(&mut self.tpm, &key, 60, || key.to_string()).add(sec, total);
            if let Some((_, period)) = quota {
                let (start, _) = period_bounds(*period, sec);
                let e = self.token_quota.entry(format!("{key}\u{0}{period:?}")).or_insert((start, 0));
                if e.0 != start {
                    *e = (start, 0);
                }
                e.1 += total;
            }
        }
        for &si in emit_steps.iter() {
            let backend = fwd.backend.unwrap_or(usize::MAX);
            let id = match self.series_cache.get(&(a.plan, si, ip_index, backend)) {
                Some(id) => *id,
                None => {
                    let Step::EmitTokenMetric { namespace, dimensions } = &pipe.inbound[si] else { continue };
                    let dims = dimensions
                        .iter()
                        .map(|(k, v)| (k.clone(), v.replace(IP_MARK, ip).replace(BACKEND_MARK, backend_name)))
                        .collect();
                    let id = data.series_id(&CustomSeries { namespace: namespace.clone(), dimensions: dims });
                    self.series_cache.insert((a.plan, si, ip_index, backend), id);
                    id
                }
            };
            data.tokens(id, prompt, completion);
        }
        if let (Some(part), Some(_)) = (cache_lookup, pipe.cache_store_s) {
            let c = self.caches.entry(part).or_default();
            match c.stored.back_mut() {
                Some((m, n)) if *m == minute => *n += 1,
                _ => c.stored.push_back((minute, 1)),
            }
        }
    }

    /// `forward-request` with the retry policy around it.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &mut self,
        world: &World,
        plan: &Plan,
        target: Option<&Target>,
        sec: i64,
        prompt: u32,
        completion: u32,
        rng: &mut Rng,
    ) -> Forward {
        let retry = plan.pipeline.retry.as_ref();
        let max_attempts = 1 + retry.map_or(0, |r| r.count);
        let mut total_ms = 0u32;
        let mut last = Forward::none();
        for attempt in 0..max_attempts {
            if attempt > 0
                && let Some(r) = retry
                && !(attempt == 1 && r.first_fast_retry)
            {
                total_ms += r.interval_s * 1000;
            }
            let mut f = self.attempt(world, target, sec, prompt, completion, rng);
            total_ms += f.backend_ms;
            f.attempts = last.attempts + u32::from(f.gateway_error.is_none() || f.backend.is_some());
            f.backend_ms = total_ms;
            let status = f.gateway_error.map_or(f.status, |(_, s)| s);
            let again = status != 200
                && attempt + 1 < max_attempts
                && retry.is_some_and(|r| self.retry_condition(&r.condition, status));
            last = f;
            if !again {
                break;
            }
        }
        last
    }

    fn retry_condition(&mut self, condition: &str, status: u16) -> bool {
        if let Some(&b) = self.retry_cache.get(&(condition.to_string(), status)) {
            return b;
        }
        let ctx = |path: &[&str]| match path {
            ["Response", "StatusCode"] => Some(Val::Int(status as i64)),
            ["Response", "StatusReason"] => Some(Val::Str(String::new())),
            _ => None,
        };
        let b = expr::eval_attr(condition, &ctx).map(|v| v.is_true()).unwrap_or(false);
        self.retry_cache.insert((condition.to_string(), status), b);
        b
    }

    /// One `forward-request`: pick the backend, call it, account for its breaker.
    fn attempt(
        &mut self,
        world: &World,
        target: Option<&Target>,
        sec: i64,
        prompt: u32,
        completion: u32,
        rng: &mut Rng,
    ) -> Forward {
        let mut f = Forward::none();
        let member = match target {
            Some(Target::BackendId(id)) => {
                let Some(b) = world.backend(id) else {
                    f.gateway_error = Some((reason::BACKEND_NOT_FOUND, 500));
                    return f;
                };
                match &world.backends[b].kind {
                    Kind::Pool(members) => match self.pick(world, members, sec, rng) {
                        Some(m) => Some(m),
                        None => {
                            f.backend = Some(b);
                            f.gateway_error = Some((reason::POOL_INACTIVE, 503));
                            return f;
                        }
                    },
                    Kind::Single(_) => {
                        if self.is_open(&world.backends[b].key, sec) {
                            f.backend = Some(b);
                            f.gateway_error = Some((reason::BACKEND_INACTIVE, 503));
                            return f;
                        }
                        Some(b)
                    }
                }
            }
            _ => None,
        };
        let reach = match (member, target) {
            (Some(m), _) => {
                f.backend = Some(m);
                match &world.backends[m].kind {
                    Kind::Single(r) => r.clone(),
                    // A pool inside a pool is rejected at PUT; treat it as unreachable.
                    Kind::Pool(_) => Reach::Unreachable,
                }
            }
            (None, Some(Target::BaseUrl(url))) => super::world::reach(url, &world.deployments),
            (None, _) => Reach::Unreachable,
        };
        let outage = member.and_then(|m| self.outages.get(&world.backends[m].key).copied());
        let mut retry_after = None;
        match (outage, &reach) {
            (Some(OutageMode::ConnectionFailure), _) | (None, Reach::Unreachable) => {
                f.gateway_error = Some((reason::CONNECTION, 500));
                f.backend_ms = 20 + rng.below(40) as u32;
            }
            (Some(OutageMode::Status503), _) => {
                f.status = 503;
                f.backend_ms = 8 + rng.below(30) as u32;
            }
            (None, Reach::WrongPath(_)) => {
                f.status = 404;
                f.backend_ms = 20 + rng.below(30) as u32;
            }
            (None, Reach::Deployment(d)) => {
                let dep = &world.deployments[*d];
                f.deployment = Some(*d);
                let load = &mut self.load[*d];
                let total = (prompt + completion) as u64;
                if load.tokens.sum_at(sec) + total > dep.capacity_tpm || load.requests.sum_at(sec) >= dep.capacity_rpm {
                    f.status = 429;
                    f.backend_ms = 15 + rng.below(30) as u32;
                    retry_after = Some(load.tokens.retry_after(sec, dep.capacity_tpm.saturating_sub(total).max(1)));
                } else if rng.f64() < TRANSIENT_ERROR {
                    f.status = 500;
                    f.backend_ms = 100 + rng.below(400) as u32;
                } else {
                    load.tokens.add(sec, total);
                    load.requests.add(sec, 1);
                    f.status = 200;
                    let ms = (250.0 + 0.02 * prompt as f64 + 9.0 * completion as f64) * rng.lognormal(0.25);
                    f.backend_ms = ms.round() as u32;
                }
            }
        }
        if let Some(m) = member
            && let Some(rule) = &world.backends[m].breaker
        {
            let key = &world.backends[m].key;
            let failed_status = if f.gateway_error.is_some() { 500 } else { f.status };
            let failure = (failed_status >= 400 || f.gateway_error.is_some())
                && (rule.status_code_ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&failed_status))
                    || (f.gateway_error.is_some()
                        && rule.error_reasons.iter().any(|r| r.to_ascii_lowercase().contains("connection"))));
            if !self.breakers.contains_key(key.as_str()) {
                self.breakers.insert(key.clone(), BreakerState::default());
            }
            let st = self.breakers.get_mut(key.as_str()).expect("inserted");
            let window = rule.interval.as_secs().max(1) as i64;
            if rule.percentage.is_some() {
                st.requests.push_back(sec);
            }
            if failure {
                st.failures.push_back(sec);
            }
            while st.requests.front().is_some_and(|s| *s <= sec - window) {
                st.requests.pop_front();
            }
            while st.failures.front().is_some_and(|s| *s <= sec - window) {
                st.failures.pop_front();
            }
            let trips = match (rule.count, rule.percentage) {
                (Some(c), _) => failure && st.failures.len() as u32 >= c,
                (None, Some(pct)) => {
                    failure && st.requests.len() >= 10 && st.failures.len() * 100 >= pct as usize * st.requests.len()
                }
                _ => false,
            };
            if trips {
                let trip = match (rule.accept_retry_after, retry_after) {
                    (true, Some(ra)) => ra as i64,
                    _ => rule.trip_duration.as_secs().max(1) as i64,
                };
                st.open_until = sec + trip;
                st.failures.clear();
                st.requests.clear();
            }
        }
        f
    }

    fn is_open(&self, key: &str, sec: i64) -> bool {
        self.breakers.get(key).is_some_and(|b| b.open_until > sec)
    }

    /// The pool member to call: the best (lowest) priority group with a member whose breaker is
    /// closed, then by weight within it. `None` if every member is tripped.
    fn pick(&self, world: &World, members: &[(usize, u32, u32)], sec: i64, rng: &mut Rng) -> Option<usize> {
        let mut best: Option<u32> = None;
        for m in members {
            if !self.is_open(&world.backends[m.0].key, sec) && best.is_none_or(|b| m.1 < b) {
                best = Some(m.1);
            }
        }
        let prio = best?;
        let avail = || members.iter().filter(move |m| m.1 == prio && !self.is_open(&world.backends[m.0].key, sec));
        let total: u64 = avail().map(|m| m.2 as u64).sum();
        if total == 0 {
            let n = avail().count() as u64;
            return avail().nth(rng.below(n) as usize).map(|m| m.0);
        }
        let mut x = rng.below(total);
        for m in avail() {
            if x < m.2 as u64 {
                return Some(m.0);
            }
            x -= m.2 as u64;
        }
        None
    }

    /// Whether a backend's breaker is open at unix second `sec`.
    pub fn breaker_open(&self, backend: &str, sec: i64) -> bool {
        self.is_open(&backend.to_ascii_lowercase(), sec)
    }
}

/// The share of lookups that find a cached answer close enough, for a warm cache.
///
/// Convention (Azure's, documented in the README): `score-threshold` (0–1) is the largest
/// *distance* (1 − cosine similarity) between the prompt and a cached prompt that still counts
/// as a match — "lower values require higher semantic similarity". So a lower threshold is
/// stricter and hits less; 0.05 means "at least 95% similar". The best cached match of a
/// repeated intent is at a distance uniform in [0, 0.25]; a novel prompt's best match at one
/// uniform in [0.20, 0.70] (so a loose threshold serves novel prompts answers to other questions).
pub fn hit_share(threshold: f64, repeat_share: f64) -> f64 {
    let t = threshold.clamp(0.0, 1.0);
    let repeats = (t / 0.25).clamp(0.0, 1.0);
    let novel = ((t - 0.20) / 0.50).clamp(0.0, 1.0);
    repeat_share * repeats + (1.0 - repeat_share) * novel
}

fn resolve<'a>(key: &'a str, ip: &str) -> Cow<'a, str> {
    if key.contains(IP_MARK) { Cow::Owned(key.replace(IP_MARK, ip)) } else { Cow::Borrowed(key) }
}

fn model_name<'a>(world: &'a World, deployment: Option<usize>, name: &'a str) -> &'a str {
    let d =
        deployment.map(|d| &world.deployments[d]).or_else(|| world.deployments.iter().find(|d| d.deployment == name));
    match d {
        Some(d) if d.model == "gpt-4o" && d.model_version == "2024-08-06" => "gpt-4o-2024-08-06",
        Some(d) => &d.model,
        None => name,
    }
}

/// The fixed window of `period` containing unix second `sec`: (start, next start).
fn period_bounds(period: Period, sec: i64) -> (i64, i64) {
    let day = sec.div_euclid(86_400);
    match period {
        Period::Hourly => {
            let s = sec - sec.rem_euclid(3600);
            (s, s + 3600)
        }
        Period::Daily => (day * 86_400, (day + 1) * 86_400),
        Period::Weekly => {
            // Weeks start on Monday (1970-01-05 was a Monday).
            let monday = day - (day - 4).rem_euclid(7);
            (monday * 86_400, (monday + 7) * 86_400)
        }
        Period::Monthly | Period::Yearly => {
            let (y, m, _) = civil_from_days(day);
            let (start, next) = if period == Period::Monthly {
                (
                    days_from_civil(y, m, 1),
                    if m == 12 { days_from_civil(y + 1, 1, 1) } else { days_from_civil(y, m + 1, 1) },
                )
            } else {
                (days_from_civil(y, 1, 1), days_from_civil(y + 1, 1, 1))
            };
            (start * 86_400, next * 86_400)
        }
    }
}

/// "21 minutes and 33 seconds", the way the token quota message words its wait.
fn human_wait(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s} seconds"),
        (0, _) => format!("{m} minutes and {s} seconds"),
        _ => format!("{h} hours, {m} minutes and {s} seconds"),
    }
}

fn hms(secs: i64) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, (secs % 3600) / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window_sums_and_waits() {
        let mut w = Window::new(60);
        w.add(100, 50);
        w.add(130, 30);
        assert_eq!(w.sum_at(130), 80);
        assert_eq!(w.sum_at(159), 80);
        assert_eq!(w.sum_at(160), 30); // second 100 left the window
        let mut w = Window::new(60);
        w.add(100, 50);
        w.add(130, 30);
        // Below 40 once second 100's tokens leave: at 160, i.e. 30 s after 130.
        assert_eq!(w.retry_after(130, 40), 30);
        assert_eq!(w.retry_after(130, 81), 1);
        assert_eq!(w.sum_at(1000), 0);
    }

    #[test]
    fn quota_periods_are_utc_calendar_windows() {
        let t = 1_764_000_000; // 2025-11-24T16:00:00Z, a Monday
        assert_eq!(period_bounds(Period::Hourly, t + 59), (t, t + 3600));
        assert_eq!(period_bounds(Period::Daily, t), (t - 16 * 3600, t + 8 * 3600));
        assert_eq!(period_bounds(Period::Weekly, t).0, t - 16 * 3600);
        assert_eq!(period_bounds(Period::Monthly, t), (1_761_955_200, 1_764_547_200)); // Nov 1 → Dec 1
        assert_eq!(period_bounds(Period::Yearly, t).0, 1_735_689_600); // 2025-01-01
        assert_eq!(human_wait(1293), "21 minutes and 33 seconds");
        assert_eq!(hms(3725), "01:02:05");
    }

    #[test]
    fn higher_thresholds_are_looser_and_hit_more() {
        let shares: Vec<f64> = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5].iter().map(|t| hit_share(*t, 0.4)).collect();
        assert!(shares.windows(2).all(|w| w[0] < w[1]), "{shares:?}");
        assert_eq!(hit_share(0.0, 0.4), 0.0, "distance 0: only identical prompts");
        assert!((hit_share(0.05, 0.4) - 0.08).abs() < 1e-9, "95% similar: a fifth of repeats");
        assert!(hit_share(0.95, 0.4) > 0.99, "0.95 read as a distance accepts almost anything");
    }
}
