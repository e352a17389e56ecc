//! What the traffic model writes, in the shapes Azure exposes it: gateway-log and LLM-log rows,
//! per-minute platform metric aggregates (`Requests`, `Duration`, `BackendDuration`) and
//! per-minute custom metric aggregates (what `llm-emit-token-metric` sends to Application
//! Insights).
//!
//! Rows are appended to column vectors as the model produces them ("pending") and turned into
//! `aigw_kql::Table`s only when a query needs them (`Data::tables`), then appended to the tables
//! built so far. Building columns directly (codes and raw integers, no per-cell `Value`) keeps
//! loading at well under a microsecond per row.
//!
//! Invariants:
//! - Rows are appended in simulated-time order; tables only grow (append-only, like a log).
//! - Minutes of metric aggregates are contiguous from `first_minute`; a minute is complete
//!   once the model has finished it (`finish_minute`).
//! - Every gateway-log row is counted in exactly one `Requests` aggregate of its minute, so
//!   `count()` over the logs equals the `Requests` total for the same minutes.

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::sync::Arc;

use aigw_kql::{Column, Dict, Schema, Table, schemas};
use serde_json::json;

/// Intern table for small keys (dimension tuples, names).
#[derive(Debug)]
pub struct Interner<T: std::hash::Hash + Eq + Clone> {
    map: FxHashMap<T, u32>,
    values: Vec<T>,
}

impl<T: std::hash::Hash + Eq + Clone> Default for Interner<T> {
    fn default() -> Self {
        Interner { map: FxHashMap::default(), values: Vec::new() }
    }
}

impl<T: std::hash::Hash + Eq + Clone> Interner<T> {
    pub fn intern(&mut self, v: &T) -> u32 {
        if let Some(&i) = self.map.get(v) {
            return i;
        }
        let i = self.values.len() as u32;
        self.map.insert(v.clone(), i);
        self.values.push(v.clone());
        i
    }
    pub fn get(&self, i: u32) -> &T {
        &self.values[i as usize]
    }
    pub fn values(&self) -> &[T] {
        &self.values
    }
}

impl Interner<String> {
    /// Like `intern`, without allocating when the string is known.
    pub fn intern_str(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.map.get(s) {
            return i;
        }
        self.intern(&s.to_string())
    }
}

/// A string column under construction (dictionary + codes).
///
/// `push_stable` is for strings whose address identifies their content for as long as the
/// cache lives: `'static` strings and strings owned by the current `World` (the cache is cleared
/// whenever the world changes, see `Data::set_world`). It looks them up by address, which is much
/// cheaper than hashing and comparing long URLs for every row.
#[derive(Debug, Default)]
struct StrCol {
    dict: Dict,
    codes: Vec<u32>,
    by_address: FxHashMap<(usize, usize), u32>,
}

impl StrCol {
    fn push(&mut self, s: &str) {
        let c = if s.is_empty() { 0 } else { self.dict.intern(s) };
        self.codes.push(c);
    }
    fn push_stable(&mut self, s: &str) {
        if s.is_empty() {
            self.codes.push(0);
            return;
        }
        let key = (s.as_ptr() as usize, s.len());
        let c = match self.by_address.get(&key) {
            Some(&c) => c,
            None => {
                let c = self.dict.intern(s);
                self.by_address.insert(key, c);
                c
            }
        };
        self.codes.push(c);
    }
    fn forget_addresses(&mut self) {
        self.by_address.clear();
    }
    fn take(&mut self) -> (Arc<Dict>, Vec<u32>) {
        self.by_address.clear();
        (Arc::new(std::mem::take(&mut self.dict)), std::mem::take(&mut self.codes))
    }
}

/// One gateway request as `ApiManagementGatewayLogs` records it.
///
/// Every `&str` except `backend_url` and `last_error_message` must be `'static`
/// or owned by the current `World` (see `StrCol::push_stable`).
#[derive(Debug, Clone, Default)]
pub struct GatewayRow<'a> {
    pub time_ms: i64,
    /// The request's GUID (`CorrelationId`).
    pub correlation_id: u128,
    pub url: &'a str,
    pub response_code: u16,
    pub request_size: u32,
    pub response_size: u32,
    /// 0 = no backend response.
    pub backend_response_code: u16,
    pub backend_id: &'a str,
    pub backend_url: &'a str,
    /// `None` when no backend was called.
    pub backend_time: Option<u32>,
    pub total_time: u32,
    pub client_time: u32,
    pub cache_time: u32,
    pub cache: &'a str,
    pub api_id: &'a str,
    pub operation_id: &'a str,
    pub product_id: &'a str,
    pub subscription_id: &'a str,
    pub user_id: &'a str,
    pub caller_ip: &'a str,
    pub last_error_reason: &'static str,
    pub last_error_message: &'a str,
    pub last_error_source: &'a str,
    pub last_error_section: &'a str,
    pub last_error_scope: &'a str,
    pub last_error_elapsed: Option<u32>,
}

/// One `ApiManagementGatewayLlmLog` header row (its strings are `'static` or owned by the
/// current `World`).
#[derive(Debug, Clone, Default)]
pub struct LlmRow<'a> {
    pub time_ms: i64,
    pub correlation_id: u128,
    pub deployment: &'a str,
    pub model: &'a str,
    pub api_version: &'a str,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// Constant per-service values of log rows.
#[derive(Debug, Clone)]
pub struct ServiceFacts {
    pub region: String,
    /// Lower-cased ARM id, as Log Analytics writes `_ResourceId`.
    pub resource_id: String,
    pub azure_subscription_id: String,
    pub workspace_id: String,
    pub app_insights_resource_id: String,
    pub app_insights_name: String,
    pub app_insights_app_id: String,
    pub instrumentation_key: String,
    pub role_name: String,
}

#[derive(Debug, Default)]
struct GatewayPending {
    time: Vec<i64>,
    correlation: Vec<u128>,
    url: StrCol,
    response_code: Vec<i64>,
    request_size: Vec<i64>,
    response_size: Vec<i64>,
    backend_response_code: Vec<i64>,
    backend_id: StrCol,
    backend_url: StrCol,
    backend_time: Vec<i64>,
    total_time: Vec<i64>,
    client_time: Vec<i64>,
    cache_time: Vec<i64>,
    cache: StrCol,
    api_id: StrCol,
    operation_id: StrCol,
    product_id: StrCol,
    subscription_id: StrCol,
    user_id: StrCol,
    caller_ip: StrCol,
    success: Vec<Option<bool>>,
    reason: StrCol,
    message: StrCol,
    source: StrCol,
    section: StrCol,
    scope: StrCol,
    elapsed: Vec<i64>,
    billed: Vec<Option<f64>>,
}

#[derive(Debug, Default)]
struct LlmPending {
    time: Vec<i64>,
    correlation: Vec<u128>,
    /// The index of the row's gateway-log row in the pending gateway rows (`u32::MAX`: unknown).
    gateway_row: Vec<u32>,
    deployment: StrCol,
    model: StrCol,
    api_version: StrCol,
    prompt: Vec<i64>,
    completion: Vec<i64>,
    total: Vec<i64>,
}

/// `Requests` metric dimensions of one request (values as Azure Monitor shows them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestDims {
    pub gateway_response_code: u16,
    /// 0 = no backend response.
    pub backend_response_code: u16,
    /// `""` when there was no error.
    pub last_error_reason: &'static str,
    /// Code in `Data::api_ids`.
    pub api: u32,
}

/// Sum/count/min/max of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agg {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Agg {
    pub fn one(v: f64) -> Agg {
        Agg { count: 1, sum: v, min: v, max: v }
    }
    pub fn add(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }
    pub fn merge(&mut self, o: &Agg) {
        self.count += o.count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

/// A custom metric series identity: namespace and dimension (name, value) pairs in policy order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CustomSeries {
    pub namespace: String,
    pub dimensions: Vec<(String, String)>,
}

/// The three metrics `llm-emit-token-metric` emits, in this order.
pub const TOKEN_METRICS: [&str; 3] = ["Prompt Tokens", "Completion Tokens", "Total Tokens"];

/// Everything aggregated for one simulated minute.
#[derive(Debug, Default, Clone)]
pub struct MinuteAggs {
    /// (`RequestDims` id, request count).
    pub requests: Vec<(u32, u64)>,
    /// (API id code, `Duration` ms samples, `BackendDuration` ms samples (count 0 if none)).
    pub durations: Vec<(u32, Agg, Option<Agg>)>,
    /// (`CustomSeries` id, samples of Prompt/Completion/Total Tokens).
    pub tokens: Vec<(u32, [Agg; 3])>,
}

/// The telemetry the model has produced.
pub struct Data {
    pub facts: ServiceFacts,
    /// Unix minute of `minutes[0]`.
    pub first_minute: i64,
    pub minutes: Vec<MinuteAggs>,
    pub request_dims: Interner<RequestDims>,
    pub api_ids: Interner<String>,
    pub custom_series: Interner<CustomSeries>,
    // The minute being simulated.
    cur_requests: FxHashMap<u32, u64>,
    cur_durations: FxHashMap<u32, (Agg, Option<Agg>)>,
    cur_tokens: FxHashMap<u32, [Agg; 3]>,
    gw: GatewayPending,
    llm: LlmPending,
    api_by_address: FxHashMap<(usize, usize), u32>,
    dims_by_key: FxHashMap<(u16, u16, usize, u32), u32>,
    world: u64,
    tables: Tables,
    /// Minutes of custom metrics already loaded into `AppMetrics` / `customMetrics`.
    app_loaded: usize,
    custom_loaded: usize,
    pub total_requests: u64,
}

/// The KQL tables built so far.
struct Tables {
    gateway: Table,
    llm: Table,
    app_metrics: Table,
    custom_metrics: Table,
}

fn empty(name: &str) -> Table {
    schemas::empty_table(name).expect("known schema")
}

impl Data {
    pub fn new(facts: ServiceFacts, first_minute: i64) -> Data {
        Data {
            facts,
            first_minute,
            minutes: Vec::new(),
            request_dims: Interner::default(),
            api_ids: Interner::default(),
            custom_series: Interner::default(),
            cur_requests: FxHashMap::default(),
            cur_durations: FxHashMap::default(),
            cur_tokens: FxHashMap::default(),
            gw: GatewayPending::default(),
            llm: LlmPending::default(),
            api_by_address: FxHashMap::default(),
            dims_by_key: FxHashMap::default(),
            world: 0,
            tables: Tables {
                gateway: empty(schemas::GATEWAY_LOGS),
                llm: empty(schemas::GATEWAY_LLM_LOG),
                app_metrics: empty(schemas::APP_METRICS),
                custom_metrics: empty(schemas::CUSTOM_METRICS),
            },
            app_loaded: 0,
            custom_loaded: 0,
            total_requests: 0,
        }
    }

    /// Tells the data which `World` the strings of the next rows belong to; a new world
    /// invalidates the address caches (its strings may reuse freed addresses).
    pub fn set_world(&mut self, id: u64) {
        if self.world == id {
            return;
        }
        self.world = id;
        self.api_by_address.clear();
        self.dims_by_key.clear();
        let g = &mut self.gw;
        for c in [
            &mut g.url,
            &mut g.backend_id,
            &mut g.cache,
            &mut g.api_id,
            &mut g.operation_id,
            &mut g.product_id,
            &mut g.subscription_id,
            &mut g.user_id,
            &mut g.caller_ip,
            &mut g.reason,
            &mut g.source,
            &mut g.section,
            &mut g.scope,
        ] {
            c.forget_addresses();
        }
        for c in [&mut self.llm.deployment, &mut self.llm.model, &mut self.llm.api_version] {
            c.forget_addresses();
        }
    }

    /// The unix minute after the last finished one.
    pub fn end_minute(&self) -> i64 {
        self.first_minute + self.minutes.len() as i64
    }

    /// Records one gateway request: its log row and its platform metric samples.
    pub fn request(&mut self, r: &GatewayRow) {
        let g = &mut self.gw;
        g.time.push(ms_ticks(r.time_ms));
        g.correlation.push(r.correlation_id);
        g.url.push_stable(r.url);
        g.response_code.push(r.response_code as i64);
        g.request_size.push(r.request_size as i64);
        g.response_size.push(r.response_size as i64);
        g.backend_response_code.push(if r.backend_response_code == 0 {
            Column::NULL_I64
        } else {
            r.backend_response_code as i64
        });
        g.backend_id.push_stable(r.backend_id);
        g.backend_url.push(r.backend_url);
        g.backend_time.push(r.backend_time.map_or(Column::NULL_I64, |t| t as i64));
        g.total_time.push(r.total_time as i64);
        g.client_time.push(r.client_time as i64);
        g.cache_time.push(r.cache_time as i64);
        g.cache.push_stable(r.cache);
        g.api_id.push_stable(r.api_id);
        g.operation_id.push_stable(r.operation_id);
        g.product_id.push_stable(r.product_id);
        g.subscription_id.push_stable(r.subscription_id);
        g.user_id.push_stable(r.user_id);
        g.caller_ip.push_stable(r.caller_ip);
        g.success.push(Some(r.response_code < 400));
        g.reason.push_stable(r.last_error_reason);
        g.message.push(r.last_error_message);
        g.source.push_stable(r.last_error_source);
        g.section.push_stable(r.last_error_section);
        g.scope.push_stable(r.last_error_scope);
        g.elapsed.push(r.last_error_elapsed.map_or(Column::NULL_I64, |t| t as i64));
        g.billed.push(Some((r.request_size + r.response_size) as f64 + 1800.0));

        let api_key = (r.api_id.as_ptr() as usize, r.api_id.len());
        let api = match self.api_by_address.get(&api_key) {
            Some(&a) => a,
            None => {
                let a = self.api_ids.intern_str(r.api_id);
                self.api_by_address.insert(api_key, a);
                a
            }
        };
        let dims_key = (r.response_code, r.backend_response_code, r.last_error_reason.as_ptr() as usize, api);
        let d = match self.dims_by_key.get(&dims_key) {
            Some(&d) => d,
            None => {
                let d = self.request_dims.intern(&RequestDims {
                    gateway_response_code: r.response_code,
                    backend_response_code: r.backend_response_code,
                    last_error_reason: r.last_error_reason,
                    api,
                });
                self.dims_by_key.insert(dims_key, d);
                d
            }
        };
        *self.cur_requests.entry(d).or_insert(0) += 1;
        let (total, backend) = (r.total_time as f64, r.backend_time.map(|b| b as f64));
        match self.cur_durations.get_mut(&api) {
            Some((t, b)) => {
                t.add(total);
                match (b, backend) {
                    (Some(a), Some(x)) => a.add(x),
                    (b @ None, Some(x)) => *b = Some(Agg::one(x)),
                    (_, None) => {}
                }
            }
            None => {
                self.cur_durations.insert(api, (Agg::one(total), backend.map(Agg::one)));
            }
        }
        self.total_requests += 1;
    }

    /// Records an LLM-log header row.
    pub fn llm(&mut self, r: &LlmRow) {
        let gateway_row = match self.gw.correlation.last() {
            Some(&c) if c == r.correlation_id => (self.gw.correlation.len() - 1) as u32,
            _ => u32::MAX,
        };
        let l = &mut self.llm;
        l.time.push(ms_ticks(r.time_ms));
        l.correlation.push(r.correlation_id);
        l.gateway_row.push(gateway_row);
        l.deployment.push_stable(r.deployment);
        l.model.push_stable(r.model);
        l.api_version.push_stable(r.api_version);
        l.prompt.push(r.prompt_tokens as i64);
        l.completion.push(r.completion_tokens as i64);
        l.total.push((r.prompt_tokens + r.completion_tokens) as i64);
    }

    /// The id of a token-metric series (interned).
    pub fn series_id(&mut self, series: &CustomSeries) -> u32 {
        self.custom_series.intern(series)
    }

    /// Records the token metric samples of one response (`llm-emit-token-metric`) in series `id`.
    pub fn tokens(&mut self, id: u32, prompt: u32, completion: u32) {
        let v = [prompt as f64, completion as f64, (prompt + completion) as f64];
        match self.cur_tokens.get_mut(&id) {
            Some(aggs) => {
                for (a, x) in aggs.iter_mut().zip(v) {
                    a.add(x);
                }
            }
            None => {
                self.cur_tokens.insert(id, v.map(Agg::one));
            }
        }
    }

    /// Closes the current minute (`end_minute()` advances by one).
    pub fn finish_minute(&mut self) {
        let mut m = MinuteAggs {
            requests: self.cur_requests.drain().collect(),
            durations: self.cur_durations.drain().map(|(k, (a, b))| (k, a, b)).collect(),
            tokens: self.cur_tokens.drain().collect(),
        };
        m.requests.sort_unstable_by_key(|x| x.0);
        m.durations.sort_unstable_by_key(|x| x.0);
        m.tokens.sort_unstable_by_key(|x| x.0);
        self.minutes.push(m);
    }

    /// The per-minute aggregates of unix minutes `[from, to)` that exist, with their minute.
    pub fn minutes_in(&self, from: i64, to: i64) -> impl Iterator<Item = (i64, &MinuteAggs)> {
        let lo = (from - self.first_minute).clamp(0, self.minutes.len() as i64) as usize;
        let hi = (to - self.first_minute).clamp(0, self.minutes.len() as i64) as usize;
        self.minutes[lo..hi.max(lo)].iter().enumerate().map(move |(i, m)| (self.first_minute + (lo + i) as i64, m))
    }

    /// Number of log rows not yet loaded into the tables.
    pub fn pending_rows(&self) -> usize {
        self.gw.time.len() + self.llm.time.len()
    }

    /// The workspace tables (`ApiManagementGatewayLogs`, `ApiManagementGatewayLlmLog`,
    /// `AppMetrics`) and the Application Insights `customMetrics`, with every row produced so far
    /// for the tables `wanted` selects (the others are returned empty, unloaded). Cheap to clone
    /// (columns are shared).
    pub fn tables(&mut self, wanted: impl Fn(&str) -> bool) -> Vec<Table> {
        let mut out = Vec::new();
        let (want_gw, want_llm) = (wanted(schemas::GATEWAY_LOGS), wanted(schemas::GATEWAY_LLM_LOG));
        // Loading both logs together lets the LLM log reuse the gateway log's dictionary of
        // correlation ids (every LLM row has its gateway row in the same batch): half the work
        // and memory for the most expensive column.
        let mut shared = None;
        if (want_gw || want_llm) && !self.gw.time.is_empty() {
            let (chunk, dict, codes) = self.gateway_chunk();
            append(&mut self.tables.gateway, chunk);
            shared = Some((dict, codes));
        }
        out.push(if want_gw { self.tables.gateway.clone() } else { empty(schemas::GATEWAY_LOGS) });
        if want_llm && !self.llm.time.is_empty() {
            let chunk = self.llm_chunk(shared.as_ref());
            append(&mut self.tables.llm, chunk);
        }
        out.push(if want_llm { self.tables.llm.clone() } else { empty(schemas::GATEWAY_LLM_LOG) });
        for (name, custom) in [(schemas::APP_METRICS, false), (schemas::CUSTOM_METRICS, true)] {
            if !wanted(name) {
                out.push(empty(name));
                continue;
            }
            let loaded = if custom { self.custom_loaded } else { self.app_loaded };
            if loaded < self.minutes.len() {
                let chunk = self.metric_chunk(loaded, custom);
                let t = if custom { &mut self.tables.custom_metrics } else { &mut self.tables.app_metrics };
                append(t, chunk);
                if custom {
                    self.custom_loaded = self.minutes.len();
                } else {
                    self.app_loaded = self.minutes.len();
                }
            }
            out.push(if custom { self.tables.custom_metrics.clone() } else { self.tables.app_metrics.clone() });
        }
        out
    }

    /// The pending gateway rows as a table, and the dictionary and codes of its `CorrelationId`
    /// column.
    fn gateway_chunk(&mut self) -> (Table, Arc<Dict>, Vec<u32>) {
        let n = self.gw.time.len();
        let f = &self.facts;
        let g = std::mem::take(&mut self.gw);
        let (corr_dict, corr_codes) = guids(&g.correlation).take();
        let cols = Cols {
            consts: [
                ("Method", "POST".to_string()),
                ("BackendMethod", "POST".to_string()),
                ("BackendProtocol", "HTTP/1.1".to_string()),
                ("ApiRevision", "1".to_string()),
                ("Category", "GatewayLogs".to_string()),
                ("ClientProtocol", "HTTP/1.1".to_string()),
                ("ClientTlsVersion", "TLSv1.2".to_string()),
                ("Region", f.region.clone()),
                ("_ResourceId", f.resource_id.clone()),
                ("_SubscriptionId", f.azure_subscription_id.clone()),
                ("TenantId", f.workspace_id.clone()),
                ("SourceSystem", "Azure".to_string()),
                ("Type", schemas::GATEWAY_LOGS.to_string()),
                ("_IsBillable", "True".to_string()),
            ]
            .into_iter()
            .collect(),
            strs: [
                ("Url", g.url),
                ("BackendId", g.backend_id),
                ("BackendUrl", g.backend_url),
                ("Cache", g.cache),
                ("ApiId", g.api_id),
                ("OperationId", g.operation_id),
                ("ProductId", g.product_id),
                ("ApimSubscriptionId", g.subscription_id),
                ("UserId", g.user_id),
                ("CallerIpAddress", g.caller_ip),
                ("LastErrorReason", g.reason),
                ("LastErrorMessage", g.message),
                ("LastErrorSource", g.source),
                ("LastErrorSection", g.section),
                ("LastErrorScope", g.scope),
            ]
            .into_iter()
            .collect(),
            ints: [
                ("TimeGenerated", g.time),
                ("ResponseCode", g.response_code),
                ("RequestSize", g.request_size),
                ("ResponseSize", g.response_size),
                ("BackendResponseCode", g.backend_response_code),
                ("BackendTime", g.backend_time),
                ("TotalTime", g.total_time),
                ("ClientTime", g.client_time),
                ("CacheTime", g.cache_time),
                ("LastErrorElapsed", g.elapsed),
            ]
            .into_iter()
            .collect(),
            bools: [
                ("IsRequestSuccess", g.success),
                ("IsMasterTrace", vec![Some(false); n]),
                ("IsTraceAllowed", vec![Some(false); n]),
                ("IsTraceExpired", vec![Some(false); n]),
                ("IsTraceRequested", vec![Some(false); n]),
            ]
            .into_iter()
            .collect(),
            reals: [("_BilledSize", g.billed)].into_iter().collect(),
            dyns: HashMap::new(),
            coded: [("CorrelationId", (corr_dict.clone(), corr_codes.clone()))].into_iter().collect(),
        };
        (build(schemas::GATEWAY_LOGS, &schemas::gateway_logs(), n, cols), corr_dict, corr_codes)
    }

    /// The pending LLM rows as a table. With `shared` (the gateway rows pending with these LLM
    /// rows: dictionary and codes of their correlation ids) each LLM row takes its gateway row's
    /// code, so the two columns share one dictionary.
    fn llm_chunk(&mut self, shared: Option<&(Arc<Dict>, Vec<u32>)>) -> Table {
        let n = self.llm.time.len();
        let f = &self.facts;
        let l = std::mem::take(&mut self.llm);
        let corr = match shared {
            Some((dict, gw_codes)) => {
                let mut buf = [0u8; 36];
                let codes = l
                    .correlation
                    .iter()
                    .zip(&l.gateway_row)
                    .map(|(&g, &row)| match gw_codes.get(row as usize) {
                        Some(&c) => c,
                        None => dict.lookup(super::rng::guid_text(g, &mut buf)).expect("LLM rows have gateway rows"),
                    })
                    .collect();
                (dict.clone(), codes)
            }
            None => guids(&l.correlation).take(),
        };
        let cols = Cols {
            consts: [
                ("OperationName", "ChatCompletions_Create".to_string()),
                ("Region", f.region.clone()),
                ("_ResourceId", f.resource_id.clone()),
                ("_SubscriptionId", f.azure_subscription_id.clone()),
                ("TenantId", f.workspace_id.clone()),
                ("SourceSystem", "Azure".to_string()),
                ("Type", schemas::GATEWAY_LLM_LOG.to_string()),
                ("_IsBillable", "True".to_string()),
            ]
            .into_iter()
            .collect(),
            strs: [("DeploymentName", l.deployment), ("ModelName", l.model), ("ApiVersion", l.api_version)]
                .into_iter()
                .collect(),
            ints: [
                ("TimeGenerated", l.time),
                ("PromptTokens", l.prompt),
                ("CompletionTokens", l.completion),
                ("TotalTokens", l.total),
                ("SequenceNumber", vec![0; n]),
            ]
            .into_iter()
            .collect(),
            bools: [("IsStreamCompletion", vec![Some(false); n])].into_iter().collect(),
            reals: [("_BilledSize", vec![Some(1200.0); n])].into_iter().collect(),
            dyns: HashMap::new(),
            coded: [("CorrelationId", corr)].into_iter().collect(),
        };
        build(schemas::GATEWAY_LLM_LOG, &schemas::gateway_llm_log(), n, cols)
    }

    /// `AppMetrics` (workspace-based Application Insights) and classic `customMetrics` rows: one
    /// per minute, metric and dimension set, as the Application Insights SDK pre-aggregates
    /// metrics over 60 s. The metric namespace is recorded in the dimensions as
    /// `_MS.MetricNamespace`.
    fn metric_chunk(&mut self, from: usize, custom_table: bool) -> Table {
        let mut time = Vec::new();
        let mut name = StrCol::default();
        let (mut sum, mut min, mut max, mut count) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut props = Vec::new();
        let mut props_cache: HashMap<u32, Arc<serde_json::Value>> = HashMap::new();
        for (i, m) in self.minutes[from..].iter().enumerate() {
            let minute = self.first_minute + (from + i) as i64;
            let ticks = aigw_kql::DateTime::from_unix_seconds(minute * 60).expect("valid").ticks();
            for (series, aggs) in &m.tokens {
                let p = props_cache
                    .entry(*series)
                    .or_insert_with(|| {
                        let s = self.custom_series.get(*series);
                        let mut obj = serde_json::Map::new();
                        for (k, v) in &s.dimensions {
                            obj.insert(k.clone(), json!(v));
                        }
                        obj.insert("_MS.MetricNamespace".into(), json!(s.namespace));
                        Arc::new(serde_json::Value::Object(obj))
                    })
                    .clone();
                for (k, a) in aggs.iter().enumerate() {
                    time.push(ticks);
                    name.push_stable(TOKEN_METRICS[k]);
                    sum.push(Some(a.sum));
                    min.push(Some(a.min));
                    max.push(Some(a.max));
                    count.push(a.count as i64);
                    props.push(Some(p.clone()));
                }
            }
        }
        let n = time.len();
        let f = &self.facts;
        if !custom_table {
            let app = Cols {
                consts: [
                    ("AppRoleName", f.role_name.clone()),
                    ("IKey", f.instrumentation_key.clone()),
                    ("_ResourceId", f.app_insights_resource_id.clone()),
                    ("Type", schemas::APP_METRICS.to_string()),
                    ("SourceSystem", "Azure".to_string()),
                    ("_SubscriptionId", f.azure_subscription_id.clone()),
                ]
                .into_iter()
                .collect(),
                strs: [("Name", name)].into_iter().collect(),
                ints: [("TimeGenerated", time), ("ItemCount", count)].into_iter().collect(),
                reals: [("Sum", sum), ("Min", min), ("Max", max)].into_iter().collect(),
                dyns: [("Properties", props)].into_iter().collect(),
                bools: HashMap::new(),
                coded: HashMap::new(),
            };
            return build(schemas::APP_METRICS, &schemas::app_metrics(), n, app);
        }
        let custom = Cols {
            consts: [
                ("cloud_RoleName", f.role_name.clone()),
                ("iKey", f.instrumentation_key.clone()),
                ("appName", f.app_insights_name.clone()),
                ("appId", f.app_insights_app_id.clone()),
                ("itemType", "customMetric".to_string()),
                ("_ResourceId", f.app_insights_resource_id.clone()),
            ]
            .into_iter()
            .collect(),
            strs: [("name", name)].into_iter().collect(),
            ints: [("timestamp", time), ("valueCount", count), ("itemCount", vec![1; n])].into_iter().collect(),
            reals: [("value", sum.clone()), ("valueSum", sum), ("valueMin", min), ("valueMax", max)]
                .into_iter()
                .collect(),
            dyns: [("customDimensions", props)].into_iter().collect(),
            bools: HashMap::new(),
            coded: HashMap::new(),
        };
        build(schemas::CUSTOM_METRICS, &schemas::custom_metrics(), n, custom)
    }
}

/// A string column of GUID texts (each unique: the dictionary is sized up front).
fn guids(ids: &[u128]) -> StrCol {
    let mut col =
        StrCol { dict: Dict::with_capacity(ids.len()), codes: Vec::with_capacity(ids.len()), ..StrCol::default() };
    let mut buf = [0u8; 36];
    for &g in ids {
        let c = col.dict.intern(super::rng::guid_text(g, &mut buf));
        col.codes.push(c);
    }
    col
}

/// Appends `chunk` to `table` (taking it whole when `table` is empty: no re-interning).
fn append(table: &mut Table, chunk: Table) {
    if table.is_empty() {
        *table = chunk;
    } else {
        table.append(&chunk).expect("same schema");
    }
}

fn ms_ticks(ms: i64) -> i64 {
    aigw_kql::DateTime::from_unix_millis(ms).map_or(Column::NULL_I64, |d| d.ticks())
}

/// Columns for `build`, by name; schema columns not given are null.
#[derive(Default)]
struct Cols<'a> {
    consts: HashMap<&'a str, String>,
    strs: HashMap<&'a str, StrCol>,
    ints: HashMap<&'a str, Vec<i64>>,
    bools: HashMap<&'a str, Vec<Option<bool>>>,
    reals: HashMap<&'a str, Vec<Option<f64>>>,
    dyns: HashMap<&'a str, Vec<Option<Arc<serde_json::Value>>>>,
    /// String columns already coded into a (possibly shared) dictionary.
    coded: HashMap<&'a str, (Arc<Dict>, Vec<u32>)>,
}

/// Builds a table of `schema` with `n` rows from `cols`.
fn build(name: &str, schema: &Schema, n: usize, mut cols: Cols) -> Table {
    let mut columns = Vec::with_capacity(schema.len());
    for def in schema.columns() {
        let c = def.name.as_str();
        let col = if let Some(v) = cols.consts.get(c) {
            let mut d = Dict::new();
            let code = d.intern(v);
            Column::from_codes(def.ty, Arc::new(d), vec![code; n]).expect("own dictionary")
        } else if let Some((d, codes)) = cols.coded.remove(c) {
            Column::from_codes(def.ty, d, codes).expect("coded into this dictionary")
        } else if let Some(mut s) = cols.strs.remove(c) {
            let (d, codes) = s.take();
            Column::from_codes(def.ty, d, codes).expect("own dictionary")
        } else if let Some(v) = cols.ints.remove(c) {
            Column::from_i64s(def.ty, v).expect("typed by the model")
        } else if let Some(v) = cols.bools.remove(c) {
            Column::from_bools(v)
        } else if let Some(v) = cols.reals.remove(c) {
            Column::from_reals(v)
        } else if let Some(v) = cols.dyns.remove(c) {
            Column::from_dynamics(v)
        } else {
            Column::nulls(def.ty, n)
        };
        debug_assert_eq!((col.ty(), col.len()), (def.ty, n), "{c}");
        columns.push(col);
    }
    debug_assert!(
        cols.strs.is_empty()
            && cols.ints.is_empty()
            && cols.bools.is_empty()
            && cols.reals.is_empty()
            && cols.dyns.is_empty(),
        "unknown columns for {name}"
    );
    Table::from_schema_columns(name, schema.clone(), columns).expect("columns match the schema")
}

/// `2xx`-style category of a status code (`0xx` when there was no backend response).
pub fn category(code: u16) -> String {
    format!("{}xx", code / 100)
}
