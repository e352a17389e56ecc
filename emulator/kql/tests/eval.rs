//! Evaluator tests against a small hand-written dataset. Every expected value below was worked
//! out by hand from the rows in `gateway_rows()` / `llm_rows()` (see the comments), not by
//! running the engine.

use aigw_kql::{DateTime, ErrorKind, Table, Value, parse_timespan_param, run, schemas};
use serde_json::json;

const NOW: &str = "2026-11-24T12:00:00Z";

fn now() -> DateTime {
    DateTime::parse(NOW).unwrap()
}

fn at(hhmm: &str) -> Value {
    Value::DateTime(DateTime::parse(&format!("2026-11-24T{hhmm}:00Z")).unwrap())
}

fn opt(v: Option<i64>) -> Value {
    v.map_or(Value::Null, Value::Long)
}

/// 20 gateway requests between 09:05 and 11:58 on 2026-11-24.
///
/// | # | time  | corr | subscription  | code | backend code | backend         | cache | ms   | last error               |
/// |---|-------|------|---------------|------|--------------|-----------------|-------|------|--------------------------|
/// | 1 | 09:05 | c01  | growth        | 200  | 200          | aoai-eastus     | miss  | 120  |                          |
/// | 2 | 09:15 | c02  | growth        | 429  | null         |                 | none  | 5    | TokenLimitExceeded       |
/// | 3 | 09:40 | c03  | prod-critical | 200  | 200          | aoai-eastus     | miss  | 300  |                          |
/// | 4 | 09:55 | c04  | search        | 200  | null         |                 | hit   | 10   |                          |
/// | 5 | 10:00 | c05  | growth        | 429  | null         |                 | none  | 3    | TokenLimitExceeded       |
/// | 6 | 10:10 | c06  | growth        | 200  | 200          | aoai-eastus     | miss  | 250  |                          |
/// | 7 | 10:20 | c07  | search        | 429  | 429          | aoai-westeurope | miss  | 80   |                          |
/// | 8 | 10:30 | c08  | prod-critical | 200  | 200          | aoai-eastus     | miss  | 410  |                          |
/// | 9 | 10:45 | c09  | growth        | 429  | null         |                 | none  | 4    | TokenLimitExceeded       |
/// |10 | 10:59 | c10  | search        | 200  | 200          | aoai-westeurope | miss  | 150  |                          |
/// |11 | 11:00 | c11  | growth        | 200  | 200          | aoai-eastus     | miss  | 220  |                          |
/// |12 | 11:05 | c12  | prod-critical | 503  | 503          | aoai-eastus     | miss  | 1000 | BackendConnectionFailure |
/// |13 | 11:10 | c13  | growth        | 429  | null         |                 | none  | 2    | TokenLimitExceeded       |
/// |14 | 11:20 | c14  | search        | 200  | null         |                 | hit   | 12   |                          |
/// |15 | 11:30 | c15  | prod-critical | 200  | 200          | aoai-westeurope | miss  | 330  |                          |
/// |16 | 11:35 | c16  | growth        | 200  | 200          | aoai-eastus     | miss  | 270  |                          |
/// |17 | 11:40 | c17  | search        | 429  | 429          | aoai-westeurope | miss  | 90   |                          |
/// |18 | 11:50 | c18  | growth        | 429  | null         |                 | none  | 6    | TokenLimitExceeded       |
/// |19 | 11:55 | c19  | prod-critical | 200  | 200          | aoai-eastus     | miss  | 290  |                          |
/// |20 | 11:58 | c20  | growth        | 200  | 200          | aoai-westeurope | miss  | 310  |                          |
#[allow(clippy::type_complexity)]
fn gateway_rows()
-> Vec<(&'static str, &'static str, &'static str, i64, Option<i64>, &'static str, &'static str, i64, &'static str)> {
    vec![
        ("09:05", "c01", "growth", 200, Some(200), "aoai-eastus", "miss", 120, ""),
        ("09:15", "c02", "growth", 429, None, "", "none", 5, "TokenLimitExceeded"),
        ("09:40", "c03", "prod-critical", 200, Some(200), "aoai-eastus", "miss", 300, ""),
        ("09:55", "c04", "search", 200, None, "", "hit", 10, ""),
        ("10:00", "c05", "growth", 429, None, "", "none", 3, "TokenLimitExceeded"),
        ("10:10", "c06", "growth", 200, Some(200), "aoai-eastus", "miss", 250, ""),
        ("10:20", "c07", "search", 429, Some(429), "aoai-westeurope", "miss", 80, ""),
        ("10:30", "c08", "prod-critical", 200, Some(200), "aoai-eastus", "miss", 410, ""),
        ("10:45", "c09", "growth", 429, None, "", "none", 4, "TokenLimitExceeded"),
        ("10:59", "c10", "search", 200, Some(200), "aoai-westeurope", "miss", 150, ""),
        ("11:00", "c11", "growth", 200, Some(200), "aoai-eastus", "miss", 220, ""),
        ("11:05", "c12", "prod-critical", 503, Some(503), "aoai-eastus", "miss", 1000, "BackendConnectionFailure"),
        ("11:10", "c13", "growth", 429, None, "", "none", 2, "TokenLimitExceeded"),
        ("11:20", "c14", "search", 200, None, "", "hit", 12, ""),
        ("11:30", "c15", "prod-critical", 200, Some(200), "aoai-westeurope", "miss", 330, ""),
        ("11:35", "c16", "growth", 200, Some(200), "aoai-eastus", "miss", 270, ""),
        ("11:40", "c17", "search", 429, Some(429), "aoai-westeurope", "miss", 90, ""),
        ("11:50", "c18", "growth", 429, None, "", "none", 6, "TokenLimitExceeded"),
        ("11:55", "c19", "prod-critical", 200, Some(200), "aoai-eastus", "miss", 290, ""),
        ("11:58", "c20", "growth", 200, Some(200), "aoai-westeurope", "miss", 310, ""),
    ]
}

/// LLM log rows: one header row per successful backend call, plus a continuation row for c16
/// (no DeploymentName, tokens repeated: the double count the labs filter out) and an orphan
/// row c99 with no gateway row.
///
/// | corr | time  | deployment  | seq | prompt | completion | total |
/// |------|-------|-------------|-----|--------|------------|-------|
/// | c01  | 09:05 | gpt-4o      | 0   | 100    | 50         | 150   |
/// | c03  | 09:40 | gpt-4o      | 0   | 200    | 100        | 300   |
/// | c06  | 10:10 | gpt-4o      | 0   | 120    | 80         | 200   |
/// | c08  | 10:30 | gpt-4o      | 0   | 300    | 200        | 500   |
/// | c10  | 10:59 | gpt-4o-mini | 0   | 50     | 30         | 80    |
/// | c11  | 11:00 | gpt-4o      | 0   | 90     | 60         | 150   |
/// | c15  | 11:30 | gpt-4o      | 0   | 250    | 150        | 400   |
/// | c16  | 11:35 | gpt-4o      | 0   | 110    | 90         | 200   |
/// | c16  | 11:35 |             | 1   | 110    | 90         | 200   |
/// | c19  | 11:55 | gpt-4o      | 0   | 220    | 130        | 350   |
/// | c20  | 11:58 | gpt-4o      | 0   | 130    | 70         | 200   |
/// | c99  | 11:59 | gpt-4o      | 0   | 10     | 10         | 20    |
#[allow(clippy::type_complexity)]
fn llm_rows() -> Vec<(&'static str, &'static str, &'static str, i64, i64, i64, i64)> {
    vec![
        ("c01", "09:05", "gpt-4o", 0, 100, 50, 150),
        ("c03", "09:40", "gpt-4o", 0, 200, 100, 300),
        ("c06", "10:10", "gpt-4o", 0, 120, 80, 200),
        ("c08", "10:30", "gpt-4o", 0, 300, 200, 500),
        ("c10", "10:59", "gpt-4o-mini", 0, 50, 30, 80),
        ("c11", "11:00", "gpt-4o", 0, 90, 60, 150),
        ("c15", "11:30", "gpt-4o", 0, 250, 150, 400),
        ("c16", "11:35", "gpt-4o", 0, 110, 90, 200),
        ("c16", "11:35", "", 1, 110, 90, 200),
        ("c19", "11:55", "gpt-4o", 0, 220, 130, 350),
        ("c20", "11:58", "gpt-4o", 0, 130, 70, 200),
        ("c99", "11:59", "gpt-4o", 0, 10, 10, 20),
    ]
}

fn catalog() -> Vec<Table> {
    let mut g = Table::builder(schemas::GATEWAY_LOGS, schemas::gateway_logs());
    for (t, corr, sub, code, bcode, backend, cache, ms, err) in gateway_rows() {
        g.push_named([
            ("TimeGenerated", at(t)),
            ("CorrelationId", corr.into()),
            ("ApimSubscriptionId", sub.into()),
            ("ResponseCode", code.into()),
            ("BackendResponseCode", opt(bcode)),
            ("BackendId", backend.into()),
            ("Cache", cache.into()),
            ("TotalTime", ms.into()),
            ("LastErrorReason", err.into()),
            ("IsRequestSuccess", (code < 400).into()),
        ])
        .unwrap();
    }
    let mut l = Table::builder(schemas::GATEWAY_LLM_LOG, schemas::gateway_llm_log());
    for (corr, t, dep, seq, p, c, total) in llm_rows() {
        l.push_named([
            ("TimeGenerated", at(t)),
            ("CorrelationId", corr.into()),
            ("DeploymentName", dep.into()),
            ("SequenceNumber", seq.into()),
            ("PromptTokens", p.into()),
            ("CompletionTokens", c.into()),
            ("TotalTokens", total.into()),
        ])
        .unwrap();
    }
    vec![g.build(), l.build()]
}

fn q(query: &str) -> Table {
    run(query, &catalog(), now(), None).unwrap_or_else(|e| panic!("{query}\n{e}"))
}

fn rows(t: &Table) -> Vec<Vec<Value>> {
    (0..t.len()).map(|i| t.row(i)).collect()
}

/// Rows sorted by their debug text, for results whose order KQL leaves open.
fn sorted_rows(t: &Table) -> Vec<Vec<Value>> {
    let mut r = rows(t);
    r.sort_by_key(|row| format!("{row:?}"));
    r
}

fn s(x: &str) -> Value {
    Value::from(x)
}

fn l(x: i64) -> Value {
    Value::Long(x)
}

fn col_names(t: &Table) -> Vec<&str> {
    t.schema().columns().iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn counts_of_429_per_subscription() {
    // 429s: growth rows 2, 5, 9, 13, 18; search rows 7, 17; prod-critical none.
    let t = q("ApiManagementGatewayLogs | where ResponseCode == 429 | summarize count() by ApimSubscriptionId");
    assert_eq!(col_names(&t), ["ApimSubscriptionId", "count_"]);
    assert_eq!(sorted_rows(&t), vec![vec![s("growth"), l(5)], vec![s("search"), l(2)]]);
    // The same with countif keeps the zero row for prod-critical.
    let t = q(
        "ApiManagementGatewayLogs | summarize throttled = countif(ResponseCode == 429), total = count() by ApimSubscriptionId | order by ApimSubscriptionId asc",
    );
    assert_eq!(
        rows(&t),
        vec![vec![s("growth"), l(5), l(10)], vec![s("prod-critical"), l(0), l(5)], vec![s("search"), l(2), l(5)],]
    );
}

#[test]
fn gateway_and_backend_429s_are_told_apart() {
    // Gateway 429s have no backend response code (rows 2, 5, 9, 13, 18); backend 429s pass
    // a 429 through (rows 7, 17).
    let t = q(
        "ApiManagementGatewayLogs | where ResponseCode == 429 | summarize gateway = countif(isnull(BackendResponseCode)), backend = countif(BackendResponseCode == 429), policy = countif(LastErrorReason has 'TokenLimitExceeded')",
    );
    assert_eq!(rows(&t), vec![vec![l(5), l(2), l(5)]]);
}

#[test]
fn token_sum_by_subscription_through_leftouter_join() {
    // Header rows only (DeploymentName != ''), joined to their gateway rows:
    // growth c01 150 + c06 200 + c11 150 + c16 200 + c20 200 = 900;
    // prod-critical c03 300 + c08 500 + c15 400 + c19 350 = 1550; search c10 80;
    // c99 has no gateway row: leftouter keeps it with an empty subscription, 20.
    let t = q("ApiManagementGatewayLlmLog
        | where DeploymentName != ''
        | join kind=leftouter ApiManagementGatewayLogs on CorrelationId
        | summarize tokens = sum(TotalTokens), prompt = sum(PromptTokens) by ApimSubscriptionId
        | order by tokens desc");
    assert_eq!(col_names(&t), ["ApimSubscriptionId", "tokens", "prompt"]);
    assert_eq!(
        rows(&t),
        vec![
            // prompt: 200 + 300 + 250 + 220
            vec![s("prod-critical"), l(1550), l(970)],
            // prompt: 100 + 120 + 90 + 110 + 130
            vec![s("growth"), l(900), l(550)],
            vec![s("search"), l(80), l(50)],
            vec![s(""), l(20), l(10)],
        ]
    );
    // Without the header filter c16 counts twice: growth 1100.
    let t = q(
        "ApiManagementGatewayLlmLog | join kind=inner ApiManagementGatewayLogs on CorrelationId | where ApimSubscriptionId == 'growth' | summarize sum(TotalTokens)",
    );
    assert_eq!(col_names(&t), ["sum_TotalTokens"]);
    assert_eq!(rows(&t), vec![vec![l(1100)]]);
}

#[test]
fn leftouter_join_fills_missing_right_rows_with_nulls() {
    // Gateway rows with an LLM header row: 1, 3, 6, 8, 10, 11, 15, 16, 19, 20; the other 10
    // have none, so their right-side columns are null (empty for strings).
    let t = q("ApiManagementGatewayLogs
        | join kind=leftouter (ApiManagementGatewayLlmLog | where DeploymentName != '') on CorrelationId
        | where isnull(TotalTokens)
        | project CorrelationId, CorrelationId1, DeploymentName, TotalTokens, TimeGenerated1");
    assert_eq!(
        t.schema().columns().iter().map(|c| (c.name.as_str(), c.ty.name())).collect::<Vec<_>>(),
        [
            ("CorrelationId", "string"),
            ("CorrelationId1", "string"),
            ("DeploymentName", "string"),
            ("TotalTokens", "int"),
            ("TimeGenerated1", "datetime"),
        ]
    );
    let corr: Vec<Value> = rows(&t).iter().map(|r| r[0].clone()).collect();
    assert_eq!(corr, ["c02", "c04", "c05", "c07", "c09", "c12", "c13", "c14", "c17", "c18"].map(s).to_vec());
    for r in rows(&t) {
        assert_eq!(r[1..], [s(""), s(""), Value::Null, Value::Null]);
    }
    // Matched rows carry the right side's key as CorrelationId1.
    let t = q(
        "ApiManagementGatewayLogs | join kind=inner (ApiManagementGatewayLlmLog | where DeploymentName != '') on CorrelationId | project CorrelationId, CorrelationId1 | take 1",
    );
    assert_eq!(rows(&t), vec![vec![s("c01"), s("c01")]]);
    // leftanti / leftsemi split the gateway rows 10 / 10; the default (innerunique) keeps one
    // left row per key, so c16 pairs with both of its LLM rows: 10 + 1.
    assert_eq!(
        rows(&q("ApiManagementGatewayLogs | join kind=leftanti ApiManagementGatewayLlmLog on CorrelationId | count")),
        vec![vec![l(10)]]
    );
    assert_eq!(
        rows(&q("ApiManagementGatewayLogs | join kind=leftsemi ApiManagementGatewayLlmLog on CorrelationId | count")),
        vec![vec![l(10)]]
    );
    assert_eq!(
        rows(&q("ApiManagementGatewayLogs | join ApiManagementGatewayLlmLog on CorrelationId | count")),
        vec![vec![l(11)]]
    );
    // $left/$right keys.
    let t = q(
        "ApiManagementGatewayLogs | project Corr = CorrelationId, ApimSubscriptionId | join kind=inner (ApiManagementGatewayLlmLog | where DeploymentName == 'gpt-4o-mini') on $left.Corr == $right.CorrelationId | project ApimSubscriptionId, TotalTokens",
    );
    assert_eq!(rows(&t), vec![vec![s("search"), l(80)]]);
}

#[test]
fn bin_time_generated_by_hour() {
    // 09:xx rows 1-4, 10:xx rows 5-10, 11:xx rows 11-20.
    let t = q("ApiManagementGatewayLogs | summarize count() by bin(TimeGenerated, 1h) | order by TimeGenerated asc");
    assert_eq!(col_names(&t), ["TimeGenerated", "count_"]);
    assert_eq!(rows(&t), vec![vec![at("09:00"), l(4)], vec![at("10:00"), l(6)], vec![at("11:00"), l(10)],]);
    // 429s per subscription per hour: growth 09:00 1 (row 2), 10:00 2 (5, 9), 11:00 2 (13, 18);
    // search 10:00 1 (7), 11:00 1 (17).
    let t = q(
        "ApiManagementGatewayLogs | where ResponseCode == 429 | summarize n = count() by ApimSubscriptionId, bin(TimeGenerated, 1h)",
    );
    assert_eq!(
        sorted_rows(&t),
        vec![
            vec![s("growth"), at("09:00"), l(1)],
            vec![s("growth"), at("10:00"), l(2)],
            vec![s("growth"), at("11:00"), l(2)],
            vec![s("search"), at("10:00"), l(1)],
            vec![s("search"), at("11:00"), l(1)],
        ]
    );
    // bin on numbers: TotalTime in hundreds: 0-99: 2,3,4,5,6,10,12,80,90 (9);
    // 100-199: 120,150 (2); 200-299: 220,250,270,290 (4); 300-399: 300,310,330 (3);
    // 400-499: 410 (1); 1000: 1.
    let t = q("ApiManagementGatewayLogs | summarize n = count() by b = bin(TotalTime, 100) | order by b asc");
    assert_eq!(
        rows(&t),
        [(0, 9), (100, 2), (200, 4), (300, 3), (400, 1), (1000, 1)].map(|(b, n)| vec![l(b), l(n)]).to_vec()
    );
}

#[test]
fn percentiles_are_nearest_rank() {
    // TotalTime sorted: 2,3,4,5,6,10,12,80,90,120,150,220,250,270,290,300,310,330,410,1000.
    // p50 = rank ceil(10) = 10th = 120; p90 = 18th = 330; p95 = 19th = 410; p99 = 20th = 1000.
    let t = q(
        "ApiManagementGatewayLogs | summarize percentile(TotalTime, 50), percentile(TotalTime, 90), p95 = percentile(TotalTime, 95), percentile(TotalTime, 99.5)",
    );
    assert_eq!(
        col_names(&t),
        ["percentile_TotalTime_50", "percentile_TotalTime_90", "p95", "percentile_TotalTime_99_5"]
    );
    assert_eq!(rows(&t), vec![vec![l(120), l(330), l(410), l(1000)]]);
    // Per subscription p50: growth 2,3,4,5,6,120,220,250,270,310 -> 5th = 6;
    // prod-critical 290,300,330,410,1000 -> 3rd = 330; search 10,12,80,90,150 -> 3rd = 80.
    let t = q("ApiManagementGatewayLogs | summarize p50 = percentile(TotalTime, 50) by ApimSubscriptionId");
    assert_eq!(
        sorted_rows(&t),
        vec![vec![s("growth"), l(6)], vec![s("prod-critical"), l(330)], vec![s("search"), l(80)],]
    );
}

#[test]
fn dcount_avg_min_max() {
    // Backends in use (non-empty): growth eastus + westeurope (row 20), prod-critical eastus +
    // westeurope (row 15), search westeurope only.
    let t =
        q("ApiManagementGatewayLogs | where isnotempty(BackendId) | summarize dcount(BackendId) by ApimSubscriptionId");
    assert_eq!(col_names(&t), ["ApimSubscriptionId", "dcount_BackendId"]);
    assert_eq!(
        sorted_rows(&t),
        vec![vec![s("growth"), l(2)], vec![s("prod-critical"), l(2)], vec![s("search"), l(1)],]
    );
    // prod-critical TotalTime: 300, 410, 1000, 330, 290 -> avg 2330 / 5 = 466, min 290, max 1000.
    let t = q(
        "ApiManagementGatewayLogs | where ApimSubscriptionId == 'prod-critical' | summarize avg(TotalTime), min(TotalTime), max(TotalTime), max(TimeGenerated), dcount(ApimSubscriptionId)",
    );
    assert_eq!(rows(&t), vec![vec![Value::Real(466.0), l(290), l(1000), at("11:55"), l(1)]]);
}

#[test]
fn cache_hit_rate_is_an_expression_over_aggregates() {
    // Hits: rows 4, 14 (2). Lookups: hits + 13 misses = 15. 2 * 100.0 / 15 = 13.33..
    let t = q(
        "ApiManagementGatewayLogs | summarize hits = countif(Cache == 'hit'), lookups = countif(Cache in ('hit', 'miss')), rate = round(100.0 * countif(Cache == 'hit') / countif(Cache in ('hit', 'miss')), 2)",
    );
    assert_eq!(rows(&t), vec![vec![l(2), l(15), Value::Real(13.33)]]);
}

#[test]
fn let_scalars_and_ago_follow_the_given_clock() {
    // now = 12:00. After 11:00 strictly: rows 12-20 (9); from 11:00 inclusive: 10.
    assert_eq!(
        rows(&q("let since = ago(1h); ApiManagementGatewayLogs | where TimeGenerated > since | count")),
        vec![vec![l(9)]]
    );
    assert_eq!(
        rows(&q("let since = ago(1h); ApiManagementGatewayLogs | where TimeGenerated >= since | count")),
        vec![vec![l(10)]]
    );
    // 30 minutes: rows 15-20 (11:30 .. 11:58).
    assert_eq!(
        rows(&q(
            "let window = 30m;\nlet floor_code = 400 + 29;\nApiManagementGatewayLogs\n| where TimeGenerated >= ago(window)\n| summarize total = count(), throttled = countif(ResponseCode == floor_code)"
        )),
        vec![vec![l(6), l(2)]]
    );
    // between with datetime bounds, and a datetime literal: 10:00 .. 10:30 = rows 5-8.
    assert_eq!(
        rows(&q(
            "let start = datetime(2026-11-24T10:00:00Z); ApiManagementGatewayLogs | where TimeGenerated between (start .. 30m) | count"
        )),
        vec![vec![l(4)]]
    );
    assert_eq!(
        rows(&q(
            "ApiManagementGatewayLogs | where TimeGenerated between (datetime(2026-11-24 10:00) .. datetime(2026-11-24 10:30)) | count"
        )),
        vec![vec![l(4)]]
    );
    // A different clock moves the window: at 10:00, ago(1h) = 09:00 -> rows 1-5 (5 rows <= 10:00).
    let t = run(
        "ApiManagementGatewayLogs | where TimeGenerated >= ago(1h) and TimeGenerated <= now() | count",
        &catalog(),
        DateTime::parse("2026-11-24T10:00:00Z").unwrap(),
        None,
    )
    .unwrap();
    assert_eq!(rows(&t), vec![vec![l(5)]]);
    // Tabular let.
    assert_eq!(
        rows(&q(
            "let throttled = ApiManagementGatewayLogs | where ResponseCode == 429; throttled | where ApimSubscriptionId == 'search' | count"
        )),
        vec![vec![l(2)]]
    );
}

#[test]
fn top_take_and_order() {
    let t = q("ApiManagementGatewayLogs | top 3 by TotalTime desc | project CorrelationId, TotalTime");
    assert_eq!(rows(&t), vec![vec![s("c12"), l(1000)], vec![s("c08"), l(410)], vec![s("c15"), l(330)],]);
    let t = q("ApiManagementGatewayLogs | order by TotalTime asc | take 2 | project CorrelationId");
    assert_eq!(rows(&t), vec![vec![s("c13")], vec![s("c05")]]);
    // Default order is descending; ties keep input order (c06, c20 ... no ties on TotalTime,
    // so sort by code then time): 503 first, then the 429s in time order.
    let t = q("ApiManagementGatewayLogs | sort by ResponseCode, TimeGenerated asc | limit 3 | project CorrelationId");
    assert_eq!(rows(&t), vec![vec![s("c12")], vec![s("c02")], vec![s("c05")]]);
    assert_eq!(q("ApiManagementGatewayLogs | take 5").len(), 5);
    assert_eq!(q("ApiManagementGatewayLogs | take 0").len(), 0);
    // top N by a string, ascending.
    let t = q("ApiManagementGatewayLogs | distinct ApimSubscriptionId | top 2 by ApimSubscriptionId asc");
    assert_eq!(rows(&t), vec![vec![s("growth")], vec![s("prod-critical")]]);
}

#[test]
fn where_operators() {
    let count = |w: &str| {
        let t = q(&format!("ApiManagementGatewayLogs | where {w} | count"));
        match &rows(&t)[0][0] {
            Value::Long(n) => *n,
            v => panic!("{v:?}"),
        }
    };
    assert_eq!(count("ResponseCode in (429, 503)"), 8);
    assert_eq!(count("ResponseCode !in (429, 503)"), 12);
    assert_eq!(count("ApimSubscriptionId =~ 'GROWTH'"), 10);
    assert_eq!(count("ApimSubscriptionId !~ 'GROWTH'"), 10);
    assert_eq!(count("ApimSubscriptionId in~ ('Search', 'PROD-critical')"), 10);
    assert_eq!(count("BackendId has 'westeurope'"), 5);
    assert_eq!(count("BackendId has 'west'"), 0);
    assert_eq!(count("BackendId contains 'west'"), 5);
    assert_eq!(count("BackendId !has 'eastus' and isnotempty(BackendId)"), 5);
    assert_eq!(count("BackendId startswith 'AOAI'"), 13);
    assert_eq!(count("BackendId startswith_cs 'AOAI'"), 0);
    assert_eq!(count("isempty(BackendId)"), 7);
    assert_eq!(count("isnotnull(BackendResponseCode)"), 13);
    assert_eq!(count("not(IsRequestSuccess)"), 8);
    assert_eq!(count("TotalTime between (100 .. 300)"), 7);
    assert_eq!(count("TotalTime !between (100 .. 300)"), 13);
    assert_eq!(count("(ResponseCode == 429 or ResponseCode == 503) and ApimSubscriptionId != 'growth'"), 3);
    assert_eq!(count("TotalTime * 2 > 600 and TotalTime / 2 < 300"), 3);
    assert_eq!(count("LastErrorReason == ''"), 14);
    assert_eq!(count("strlen(CorrelationId) == 3 and CorrelationId endswith '0'"), 2);
    assert_eq!(
        count(
            "ApimSubscriptionId in (ApiManagementGatewayLogs | where ResponseCode == 503 | project ApimSubscriptionId)"
        ),
        5
    );
}

#[test]
fn extend_project_and_scalar_functions() {
    let t = q(
        "ApiManagementGatewayLogs | where CorrelationId == 'c20' | extend age = now() - TimeGenerated, ms2 = TotalTime * 2, secs = todouble(TotalTime) / 1000, label = strcat(ApimSubscriptionId, '/', ResponseCode), slow = iff(TotalTime > 300, 'slow', 'ok') | project CorrelationId, age, ms2, secs, label, slow, hour = hourofday(TimeGenerated), code = tostring(ResponseCode)",
    );
    assert_eq!(
        rows(&t),
        vec![vec![
            s("c20"),
            Value::Timespan(aigw_kql::Timespan::from_minutes(2)),
            l(620),
            Value::Real(0.31),
            s("growth/200"),
            s("slow"),
            l(11),
            s("200"),
        ]]
    );
    let t = q(
        "ApiManagementGatewayLogs | take 1 | project-away TimeGenerated | project-rename Sub = ApimSubscriptionId | project Sub, TotalTime",
    );
    assert_eq!(rows(&t), vec![vec![s("growth"), l(120)]]);
    // Extending an existing name replaces it in place.
    let t = q(
        "ApiManagementGatewayLogs | take 1 | project TotalTime, ResponseCode | extend TotalTime = TotalTime + 1, TotalTime * 10",
    );
    assert_eq!(col_names(&t), ["TotalTime", "ResponseCode", "Column1"]);
    assert_eq!(rows(&t), vec![vec![l(121), l(200), l(1210)]]);
}

#[test]
fn timespan_restricts_every_table_reference() {
    // [11:00, 12:00]: gateway rows 11-20 (10), LLM rows c11..c99 (7) of which 6 are headers.
    let span = parse_timespan_param("PT1H", now()).unwrap();
    let t = run("ApiManagementGatewayLogs | count", &catalog(), now(), Some(span)).unwrap();
    assert_eq!(rows(&t), vec![vec![l(10)]]);
    let t = run(
        "ApiManagementGatewayLlmLog | where DeploymentName != '' | join kind=leftouter ApiManagementGatewayLogs on CorrelationId | summarize sum(TotalTokens) by ApimSubscriptionId",
        &catalog(),
        now(),
        Some(span),
    )
    .unwrap();
    // growth c11 150 + c16 200 + c20 200 = 550; prod-critical c15 400 + c19 350 = 750; c99 20.
    assert_eq!(sorted_rows(&t), vec![vec![s(""), l(20)], vec![s("growth"), l(550)], vec![s("prod-critical"), l(750)]]);
}

#[test]
fn summarize_over_no_rows() {
    let t = q("ApiManagementGatewayLogs | where ResponseCode == 999 | summarize count(), sum(TotalTime)");
    assert_eq!(rows(&t), vec![vec![l(0), Value::Null]]);
    let t = q("ApiManagementGatewayLogs | where ResponseCode == 999 | summarize count() by ApimSubscriptionId");
    assert_eq!(t.len(), 0);
    assert_eq!(col_names(&t), ["ApimSubscriptionId", "count_"]);
}

#[test]
fn response_json_has_the_log_analytics_shape() {
    let t = q(
        "ApiManagementGatewayLogs | where ApimSubscriptionId == 'search' | summarize n = count(), avg_ms = avg(TotalTime) by bin(TimeGenerated, 1h) | order by TimeGenerated asc",
    );
    // search: 09:55 (10); 10:20 (80), 10:59 (150); 11:20 (12), 11:40 (90).
    assert_eq!(
        t.to_response_json(),
        json!({"tables": [{
            "name": "PrimaryResult",
            "columns": [
                {"name": "TimeGenerated", "type": "datetime"},
                {"name": "n", "type": "long"},
                {"name": "avg_ms", "type": "real"}
            ],
            "rows": [
                ["2026-11-24T09:00:00Z", 1, 10.0],
                ["2026-11-24T10:00:00Z", 2, 115.0],
                ["2026-11-24T11:00:00Z", 2, 51.0]
            ]
        }]})
    );
}

#[test]
fn unsupported_operator_error_names_operator_and_position() {
    let query = "ApiManagementGatewayLogs\n| where ResponseCode == 429\n| mv-expand Errors";
    let e = run(query, &catalog(), now(), None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let p = e.position().unwrap();
    assert_eq!((p.line, p.column, p.offset), (3, 3, 55));
    assert_eq!(
        e.to_response_json(),
        json!({"error": {
            "message": "The request had some invalid properties",
            "code": "BadArgumentError",
            "innererror": {
                "code": "SyntaxError",
                "message": "A recognition error occurred in the query.",
                "innererror": {
                    "code": "SYN0002",
                    "message": format!("Query could not be parsed at 'mv-expand' on line [3,2]: the 'mv-expand' operator is not supported by the emulator's KQL subset (supported: {})", aigw_kql::parser::SUPPORTED_OPERATORS.join(", ")),
                    "line": 3,
                    "pos": 2,
                    "token": "mv-expand"
                }
            }
        }})
    );
}

#[test]
fn unknown_column_error_names_the_column() {
    let query = "ApiManagementGatewayLogs | where ResponseCod == 429";
    let e = run(query, &catalog(), now(), None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnresolvedName);
    assert_eq!(e.message(), "'where' operator: Failed to resolve scalar expression named 'ResponseCod'");
    assert_eq!(e.token(), Some("ResponseCod"));
    assert_eq!(e.position().unwrap().column, 34);
    let body = e.to_response_json();
    assert_eq!(body["error"]["code"], "BadArgumentError");
    assert_eq!(body["error"]["innererror"]["code"], "SemanticError");
    assert_eq!(body["error"]["innererror"]["innererror"]["code"], "SEM0100");
    assert_eq!(body["error"]["innererror"]["innererror"]["pos"], 33);
    // Also on an empty table, in summarize, and for tables.
    let e =
        run("ApiManagementGatewayLogs | take 0 | summarize sum(Tokens) by ApimSubscriptionId", &catalog(), now(), None)
            .unwrap_err();
    assert_eq!(e.message(), "'summarize' operator: Failed to resolve scalar expression named 'Tokens'");
    let e = run("ApiManagementGatewayLog | count", &catalog(), now(), None).unwrap_err();
    assert_eq!(e.message(), "Failed to resolve table or column expression named 'ApiManagementGatewayLog'");
    assert_eq!(e.position().unwrap().column, 1);
    let e =
        run("ApiManagementGatewayLogs | join kind=inner ApiManagementGatewayLlmLog on Corr", &catalog(), now(), None)
            .unwrap_err();
    assert_eq!(e.token(), Some("Corr"));
}

#[test]
fn type_errors_are_semantic_and_positioned() {
    let e = run("ApiManagementGatewayLogs | where ResponseCode == '429'", &catalog(), now(), None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Semantic);
    assert!(e.message().contains("Cannot compare values of types int and string"), "{}", e.message());
    assert_eq!(e.position().unwrap().column, 34);
    let e = run("ApiManagementGatewayLogs | where TotalTime", &catalog(), now(), None).unwrap_err();
    assert!(e.message().contains("must be of type bool"));
    let e = run("ApiManagementGatewayLogs | extend x = count()", &catalog(), now(), None).unwrap_err();
    assert!(e.message().contains("can only be used in summarize"));
    let e = run("ApiManagementGatewayLogs | summarize TotalTime by ApimSubscriptionId", &catalog(), now(), None)
        .unwrap_err();
    assert!(e.message().contains("not an aggregate"));
    let e = run("ApiManagementGatewayLogs | summarize sum(ApimSubscriptionId)", &catalog(), now(), None).unwrap_err();
    assert_eq!(e.token(), Some("ApimSubscriptionId"));
    assert_eq!(e.to_response_json()["error"]["innererror"]["innererror"]["code"], "SEM0001");
}

#[test]
fn deep_expressions_are_bounded() {
    // Just under the limits evaluates; far over is an error, not a stack overflow.
    let nested = format!("ApiManagementGatewayLogs | where {}true{} | count", "(".repeat(50), ")".repeat(50));
    assert_eq!(rows(&q(&nested)), vec![vec![l(20)]]);
    let chain = format!("ApiManagementGatewayLogs | extend x = 0{} | summarize max(x)", " + 1".repeat(200));
    assert_eq!(rows(&q(&chain)), vec![vec![l(200)]]);
    let too_long = format!("ApiManagementGatewayLogs | extend x = 0{}", " + 1".repeat(5000));
    assert_eq!(run(&too_long, &catalog(), now(), None).unwrap_err().kind(), ErrorKind::Syntax);
}

/// `customMetrics` / `AppMetrics` rows as `llm-emit-token-metric` writes them.
///
/// | name          | value | Subscription ID |
/// |---------------|-------|-----------------|
/// | Total Tokens  | 100   | growth          |
/// | Total Tokens  | 50    | growth          |
/// | Total Tokens  | 70    | search          |
/// | Prompt Tokens | 60    | growth          |
fn metrics_catalog() -> Vec<Table> {
    let rows = [
        ("10:00", "Total Tokens", 100.0, "growth"),
        ("10:05", "Total Tokens", 50.0, "growth"),
        ("10:10", "Total Tokens", 70.0, "search"),
        ("10:15", "Prompt Tokens", 60.0, "growth"),
    ];
    let mut cm = Table::builder(schemas::CUSTOM_METRICS, schemas::custom_metrics());
    let mut am = Table::builder(schemas::APP_METRICS, schemas::app_metrics());
    for (t, name, v, sub) in rows {
        let dims = Value::dynamic(json!({"Subscription ID": sub, "API ID": "inference-api"}));
        cm.push_named([
            ("timestamp", at(t)),
            ("name", name.into()),
            ("value", v.into()),
            ("valueSum", v.into()),
            ("valueCount", 1.into()),
            ("customDimensions", dims.clone()),
        ])
        .unwrap();
        am.push_named([
            ("TimeGenerated", at(t)),
            ("Name", name.into()),
            ("Sum", v.into()),
            ("ItemCount", 1.into()),
            ("Properties", dims),
        ])
        .unwrap();
    }
    vec![cm.build(), am.build()]
}

#[test]
fn token_metrics_through_dynamic_dimensions() {
    let mq = |query: &str| run(query, &metrics_catalog(), now(), None).unwrap_or_else(|e| panic!("{query}\n{e}"));
    // The AI-Gateway lab's query shape: growth 100 + 50, search 70 (Prompt Tokens excluded).
    let t = mq(
        "customMetrics | where name == 'Total Tokens' | extend d = parse_json(customDimensions) | extend apimSubscription = tostring(d.['Subscription ID']) | summarize tokens = sum(value) by apimSubscription | order by tokens desc",
    );
    assert_eq!(rows(&t), vec![vec![s("growth"), Value::Real(150.0)], vec![s("search"), Value::Real(70.0)],]);
    let t = mq(
        "AppMetrics | where Name == 'Total Tokens' | summarize sum(Sum), sum(ItemCount) by sub = tostring(Properties['Subscription ID']) | order by sub asc",
    );
    assert_eq!(col_names(&t), ["sub", "sum_Sum", "sum_ItemCount"]);
    assert_eq!(
        rows(&t),
        vec![vec![s("growth"), Value::Real(150.0), l(2)], vec![s("search"), Value::Real(70.0), l(1)],]
    );
    // Dynamic values come back as JSON text; the timespan restricts on `timestamp` here.
    let span = (DateTime::parse("2026-11-24T10:05:00Z").unwrap(), DateTime::parse("2026-11-24T10:10:00Z").unwrap());
    let t = run(
        "customMetrics | project timestamp, customDimensions.['API ID'], customDimensions",
        &metrics_catalog(),
        now(),
        Some(span),
    )
    .unwrap();
    let body = t.to_response_json();
    assert_eq!(body["tables"][0]["columns"][1], json!({"name": "customDimensions_API ID", "type": "dynamic"}));
    assert_eq!(body["tables"][0]["rows"][0][1], json!("\"inference-api\""));
    // Compare as JSON: key order inside the text depends on serde_json's `preserve_order`
    // feature, which other crates in the workspace may switch on.
    let dims: serde_json::Value = serde_json::from_str(body["tables"][0]["rows"][1][2].as_str().unwrap()).unwrap();
    assert_eq!(dims, json!({"API ID": "inference-api", "Subscription ID": "search"}));
    assert_eq!(t.len(), 2);
}

#[test]
fn distinct_count_and_render() {
    let t = q("ApiManagementGatewayLogs | where ResponseCode == 429 | distinct ApimSubscriptionId, Cache");
    assert_eq!(rows(&t), vec![vec![s("growth"), s("none")], vec![s("search"), s("miss")]]);
    let t = q(
        "ApiManagementGatewayLogs | summarize count() by bin(TimeGenerated, 1h) | render timechart with (title='hourly')",
    );
    assert_eq!(t.len(), 3);
    assert_eq!(col_names(&q("ApiManagementGatewayLogs | count")), ["Count"]);
    // Comments and line breaks anywhere.
    let t = q("// 429s\nApiManagementGatewayLogs // the gateway\n| where ResponseCode == 429 // throttled\n| count");
    assert_eq!(rows(&t), vec![vec![l(7)]]);
}

#[test]
fn more_error_positions() {
    let err = |query: &str| run(query, &catalog(), now(), None).unwrap_err();
    let e = err("ApiManagementGatewayLogs\n| project-away Nope");
    assert_eq!(e.token(), Some("Nope"));
    assert_eq!((e.position().unwrap().line, e.position().unwrap().column), (2, 16));
    let e = err("ApiManagementGatewayLogs | summarize percentiles(TotalTime, 50, 95)");
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(e.token(), Some("percentiles"));
    let e = err("ApiManagementGatewayLogs | where ResponseCode !=~ 429");
    assert_eq!(e.kind(), ErrorKind::Syntax);
    assert_eq!(e.token(), Some("~"));
    let e = err("let x = ; ApiManagementGatewayLogs");
    assert_eq!(e.token(), Some(";"));
    assert_eq!(e.position().unwrap().offset, 8);
    let e = err("ApiManagementGatewayLogs | where TimeGenerated > ago(1x)");
    assert_eq!(e.token(), Some("x"));
    let e = err("ApiManagementGatewayLogs | where TimeGenerated > ago(5)");
    assert_eq!(e.kind(), ErrorKind::Semantic);
    assert_eq!(e.token(), Some("5"));
    let e = err("ApiManagementGatewayLogs | take TotalTime");
    assert_eq!(e.token(), Some("TotalTime"));
}
