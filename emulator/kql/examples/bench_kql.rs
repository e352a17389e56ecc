//! Benchmark of the KQL engine over a million generated gateway requests.
//!
//! `cargo run --release -p aigw-kql --example bench_kql [-- ROWS]`
//!
//! The data is deterministic (a fixed-seed SplitMix64): 50 subscriptions over 7 days, rows in
//! time order as the traffic model appends them. Three tables are built:
//! - `ApiManagementGatewayLogs` and `ApiManagementGatewayLlmLog` with their full schemas (one
//!   LLM header row per request that reached a backend),
//! - `GatewayRequests`: the gateway-log schema plus a `TotalTokens` column, a denormalised view
//!   so the headline query (`summarize count(), sum(TotalTokens) by ApimSubscriptionId,
//!   bin(TimeGenerated, 1h)`) runs over exactly one million rows of one table.
//!
//! Each query runs once to warm up, then `RUNS` times; min and median wall times are printed.
//! Results in `BENCHMARKS.md`.

use std::time::{Duration, Instant};

use aigw_kql::{ColumnDef, ColumnType, DateTime, Schema, Table, Timespan, Value, parse, run, schemas};

const RUNS: usize = 7;
const SUBSCRIPTIONS: usize = 50;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the generator knows the answers to, to check the engine against.
struct Truth {
    tokens: i64,
    throttled: i64,
}

fn build(rows: usize, now: DateTime) -> (Table, Table, Table, Duration, Truth) {
    let started = Instant::now();
    let mut rng = Rng(0x5EED_2026_1124);
    let subs: Vec<Value> = (0..SUBSCRIPTIONS).map(|i| Value::from(format!("sub-{i:02}"))).collect();
    let products: Vec<Value> = ["gold", "silver", "bronze"].map(Value::from).to_vec();
    let backends: Vec<Value> = ["aoai-eastus", "aoai-westeurope", "aoai-swedencentral"].map(Value::from).to_vec();
    let regions: Vec<Value> = ["East US", "West Europe"].map(Value::from).to_vec();
    let none = Value::from("none");
    let miss = Value::from("miss");
    let hit = Value::from("hit");
    let api = Value::from("inference-api");
    let op = Value::from("chat-completions");
    let post = Value::from("POST");
    let token_limit = Value::from("TokenLimitExceeded");
    let gpt4o = Value::from("gpt-4o");
    let empty = Value::from("");

    let gschema = schemas::gateway_logs();
    let mut rcols = gschema.columns().to_vec();
    rcols.push(ColumnDef::new("TotalTokens", ColumnType::Int));
    let rschema = Schema::new(rcols).unwrap();
    let gi = |n: &str| gschema.index_of(n).unwrap();
    let (c_time, c_corr, c_sub, c_code, c_bcode, c_backend, c_cache, c_total, c_region) = (
        gi("TimeGenerated"),
        gi("CorrelationId"),
        gi("ApimSubscriptionId"),
        gi("ResponseCode"),
        gi("BackendResponseCode"),
        gi("BackendId"),
        gi("Cache"),
        gi("TotalTime"),
        gi("Region"),
    );
    let (c_api, c_op, c_product, c_method, c_success, c_err) =
        (gi("ApiId"), gi("OperationId"), gi("ProductId"), gi("Method"), gi("IsRequestSuccess"), gi("LastErrorReason"));
    let c_tokens = rschema.index_of("TotalTokens").unwrap();
    let lschema = schemas::gateway_llm_log();
    let li = |n: &str| lschema.index_of(n).unwrap();
    let (l_time, l_corr, l_dep, l_model, l_prompt, l_compl, l_total, l_seq) = (
        li("TimeGenerated"),
        li("CorrelationId"),
        li("DeploymentName"),
        li("ModelName"),
        li("PromptTokens"),
        li("CompletionTokens"),
        li("TotalTokens"),
        li("SequenceNumber"),
    );

    let mut g = Table::builder(schemas::GATEWAY_LOGS, gschema.clone());
    let mut r = Table::builder("GatewayRequests", rschema);
    let mut l = Table::builder(schemas::GATEWAY_LLM_LOG, lschema.clone());
    let mut truth = Truth { tokens: 0, throttled: 0 };
    let span = Timespan::from_days(7).ticks();
    let start = now.ticks() - span;
    for i in 0..rows {
        let t = DateTime::from_ticks(start + (i as i64 * span) / rows as i64).unwrap();
        let s = rng.below(SUBSCRIPTIONS as u64) as usize;
        let roll = rng.below(1000);
        // ~6% gateway 429s, ~1% backend 5xx, ~4% cache hits.
        let (code, bcode, cache, backend) = if roll < 60 {
            (429, None, &none, &empty)
        } else if roll < 70 {
            (503, Some(503), &miss, &backends[rng.below(3) as usize])
        } else if roll < 110 {
            (200, None, &hit, &empty)
        } else {
            (200, Some(200), &miss, &backends[rng.below(3) as usize])
        };
        let tokens = if bcode == Some(200) { 200 + rng.below(3000) as i64 } else { 0 };
        truth.tokens += tokens;
        truth.throttled += (code == 429) as i64;
        let corr = Value::from(format!("{:016x}-{i:08x}", rng.next()));
        let total_time = 5 + rng.below(2000) as i64;
        let mut fields = vec![
            (c_time, Value::DateTime(t)),
            (c_corr, corr.clone()),
            (c_sub, subs[s].clone()),
            (c_code, Value::Long(code)),
            (c_bcode, bcode.map_or(Value::Null, Value::Long)),
            (c_backend, backend.clone()),
            (c_cache, cache.clone()),
            (c_total, Value::Long(total_time)),
            (c_region, regions[s % 2].clone()),
            (c_api, api.clone()),
            (c_op, op.clone()),
            (c_product, products[s % 3].clone()),
            (c_method, post.clone()),
            (c_success, Value::Bool(code < 400)),
            (c_err, if code == 429 { token_limit.clone() } else { empty.clone() }),
        ];
        g.push_indexed(fields.clone()).unwrap();
        fields.push((c_tokens, Value::Long(tokens)));
        r.push_indexed(fields).unwrap();
        if bcode == Some(200) {
            let prompt = tokens * 2 / 3;
            l.push_indexed([
                (l_time, Value::DateTime(t)),
                (l_corr, corr),
                (l_dep, gpt4o.clone()),
                (l_model, gpt4o.clone()),
                (l_prompt, Value::Long(prompt)),
                (l_compl, Value::Long(tokens - prompt)),
                (l_total, Value::Long(tokens)),
                (l_seq, Value::Long(0)),
            ])
            .unwrap();
        }
    }
    (g.build(), l.build(), r.build(), started.elapsed(), truth)
}

fn time_query(
    name: &str,
    query: &str,
    catalog: &[Table],
    now: DateTime,
    timespan: Option<(DateTime, DateTime)>,
) -> Table {
    let q = parse(query).expect("query parses");
    let first = run(query, catalog, now, timespan).expect("query runs");
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            let out = aigw_kql::execute_with_timespan(&q, catalog, now, timespan).unwrap();
            let e = t.elapsed();
            assert_eq!(out.len(), first.len());
            e
        })
        .collect();
    times.sort();
    let ser = Instant::now();
    let body = serde_json::to_string(&first.to_response_json()).unwrap();
    let ser = ser.elapsed();
    println!(
        "{name:<34} min {:>7.1} ms  median {:>7.1} ms   ({} result rows; response JSON {} KB in {:.1} ms)",
        times[0].as_secs_f64() * 1e3,
        times[RUNS / 2].as_secs_f64() * 1e3,
        first.len(),
        body.len() / 1024,
        ser.as_secs_f64() * 1e3,
    );
    first
}

/// The sum of a long column of a result.
fn total(t: &Table, col: &str) -> i64 {
    let c = t.schema().index_of(col).unwrap();
    (0..t.len())
        .map(|i| match t.value(i, c) {
            Value::Long(x) => x,
            _ => 0,
        })
        .sum()
}

fn main() {
    let rows: usize = std::env::args().nth(1).map(|a| a.parse().expect("ROWS is a number")).unwrap_or(1_000_000);
    let now = DateTime::parse("2026-11-24T12:00:00Z").unwrap();
    let (g, l, r, built, truth) = build(rows, now);
    println!(
        "generated {} gateway rows, {} LLM rows, {} request rows in {:.2} s (TableBuilder::push_indexed)",
        g.len(),
        l.len(),
        r.len(),
        built.as_secs_f64()
    );
    let catalog = vec![g, l, r];
    let queries = [
        (
            "headline: count+sum by sub, 1h",
            "GatewayRequests | summarize count(), sum(TotalTokens) by ApimSubscriptionId, bin(TimeGenerated, 1h)",
        ),
        (
            "where 429 + ago | summarize",
            "GatewayRequests | where ResponseCode == 429 and TimeGenerated > ago(3d) | summarize count(), sum(TotalTokens) by ApimSubscriptionId, bin(TimeGenerated, 1h)",
        ),
        (
            "where 200 (94%) | summarize",
            "GatewayRequests | where ResponseCode == 200 | summarize count(), sum(TotalTokens) by ApimSubscriptionId, bin(TimeGenerated, 1h)",
        ),
        (
            "unsorted key: by sub, bin(ms, 10)",
            "GatewayRequests | summarize count(), sum(TotalTokens) by ApimSubscriptionId, bin(TotalTime, 10)",
        ),
        (
            "gateway logs: 429s by sub, 1h",
            "ApiManagementGatewayLogs | where ResponseCode == 429 | summarize count() by ApimSubscriptionId, bin(TimeGenerated, 1h)",
        ),
        (
            "cache hit rate by sub",
            "ApiManagementGatewayLogs | summarize hits = countif(Cache == 'hit'), lookups = countif(Cache in ('hit', 'miss')) by ApimSubscriptionId | extend rate = round(100.0 * hits / lookups, 2)",
        ),
        (
            "p95 latency + dcount by sub",
            "ApiManagementGatewayLogs | summarize p95 = percentile(TotalTime, 95), backends = dcount(BackendId) by ApimSubscriptionId",
        ),
        (
            "top 10 by TotalTime",
            "ApiManagementGatewayLogs | top 10 by TotalTime desc | project TimeGenerated, CorrelationId, TotalTime",
        ),
        (
            "join llm->gateway, sum by sub, 1h",
            "ApiManagementGatewayLlmLog | where DeploymentName != '' | join kind=leftouter ApiManagementGatewayLogs on CorrelationId | summarize sum(TotalTokens) by ApimSubscriptionId, bin(TimeGenerated, 1h)",
        ),
    ];
    for (k, (name, query)) in queries.iter().enumerate() {
        let out = time_query(name, query, &catalog, now, None);
        // The answers are checked against what the generator knows, so the timings are of
        // correct results.
        match k {
            0 => {
                assert_eq!(total(&out, "count_"), rows as i64);
                assert_eq!(total(&out, "sum_TotalTokens"), truth.tokens);
            }
            3 => assert_eq!(total(&out, "count_"), rows as i64),
            4 => assert_eq!(total(&out, "count_"), truth.throttled),
            8 => assert_eq!(total(&out, "sum_TotalTokens"), truth.tokens),
            _ => {}
        }
    }
    let day = aigw_kql::parse_timespan_param("P1D", now).unwrap();
    time_query("headline with timespan=P1D", queries[0].1, &catalog, now, Some(day));
}
