//! Hostile and random input: parsing and running must return `Ok` or a positioned `Err`, never
//! panic. The query text is generated deterministically from KQL fragments.

use aigw_kql::{DateTime, Table, Value, run, schemas};

const FRAGMENTS: &[&str] = &[
    "ApiManagementGatewayLogs",
    "ApiManagementGatewayLlmLog",
    "T",
    "|",
    "| where",
    "| summarize",
    "| extend",
    "| project",
    "| order by",
    "| top",
    "| take",
    "| join",
    "| distinct",
    "| count",
    "| project-away",
    "| project-rename",
    "| mv-expand",
    "by",
    "on",
    "kind=leftouter",
    "kind=inner",
    "$left.CorrelationId",
    "==",
    "$right.CorrelationId",
    "(",
    ")",
    "[",
    "]",
    ",",
    ";",
    "let",
    "x",
    "=",
    "==",
    "!=",
    "<",
    ">=",
    "=~",
    "!~",
    "+",
    "-",
    "*",
    "/",
    "%",
    "..",
    ".",
    "and",
    "or",
    "not(",
    "in",
    "!in",
    "in~",
    "has",
    "!has",
    "contains",
    "startswith",
    "between",
    "count()",
    "countif(",
    "sum(",
    "avg(",
    "max(",
    "min(",
    "percentile(",
    "dcount(",
    "bin(",
    "ago(",
    "now()",
    "iff(",
    "tostring(",
    "tolong(",
    "todouble(",
    "strcat(",
    "round(",
    "isempty(",
    "isnotnull(",
    "ResponseCode",
    "TimeGenerated",
    "ApimSubscriptionId",
    "TotalTokens",
    "CorrelationId",
    "TotalTime",
    "Errors",
    "RequestHeaders",
    "Cache",
    "429",
    "0",
    "-1",
    "1.5",
    "1e308",
    "1h",
    "30m",
    "100ms",
    "'a'",
    "\"b\"",
    "@'c'",
    "''",
    "datetime(2026-11-24)",
    "datetime(null)",
    "timespan(01:00:00)",
    "long(null)",
    "dynamic([1,2])",
    "dynamic({\"a\":1})",
    "true",
    "false",
    "asc",
    "desc",
    "nulls",
    "first",
    "last",
    "//c\n",
    "\n",
    " ",
    "é",
    "'unterminated",
    "0x",
    "datetime(",
    "9223372036854775807",
    "-9223372036854775808",
    "render",
    "timechart",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn catalog() -> Vec<Table> {
    let now = DateTime::parse("2026-11-24T12:00:00Z").unwrap();
    let mut g = Table::builder(schemas::GATEWAY_LOGS, schemas::gateway_logs());
    let mut l = Table::builder(schemas::GATEWAY_LLM_LOG, schemas::gateway_llm_log());
    for i in 0..30i64 {
        let t = Value::DateTime(now.checked_add(aigw_kql::Timespan::from_minutes(-7 * i)).unwrap());
        let corr = Value::from(format!("c{}", i % 17));
        g.push_named([
            ("TimeGenerated", t.clone()),
            ("CorrelationId", corr.clone()),
            ("ApimSubscriptionId", Value::from(["a", "b", ""][i as usize % 3])),
            ("ResponseCode", Value::from([200, 429, 503][i as usize % 3])),
            ("TotalTime", if i % 5 == 0 { Value::Null } else { Value::from(i * 13) }),
            ("Cache", Value::from("miss")),
            ("Errors", Value::dynamic(serde_json::json!([{"i": i}]))),
        ])
        .unwrap();
        l.push_named([("TimeGenerated", t), ("CorrelationId", corr), ("TotalTokens", Value::from(i * 100))]).unwrap();
    }
    let mut t = Table::builder("T", schemas::gateway_llm_log());
    t.push_named([("TotalTokens", Value::from(1))]).unwrap();
    vec![g.build(), l.build(), t.build()]
}

#[test]
fn random_fragment_soup_never_panics() {
    let cat = catalog();
    let now = DateTime::parse("2026-11-24T12:00:00Z").unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut err) = (0, 0);
    for _ in 0..20_000 {
        let n = 1 + (rng.next() % 14) as usize;
        let mut q = String::new();
        for _ in 0..n {
            q.push_str(FRAGMENTS[(rng.next() % FRAGMENTS.len() as u64) as usize]);
            q.push(' ');
        }
        match run(&q, &cat, now, None) {
            Ok(t) => {
                ok += 1;
                let _ = t.to_response_json();
            }
            Err(e) => {
                err += 1;
                let body = e.to_response_json();
                assert_eq!(body["error"]["code"], "BadArgumentError", "{q}");
                assert!(e.position().is_some(), "{q}: {e}");
            }
        }
    }
    assert!(ok > 0 && err > 0, "ok {ok}, err {err}");
}

#[test]
fn valid_queries_with_random_operator_chains_never_panic() {
    // Every stage is valid on its own; chains exercise type and name interactions.
    let stages = [
        "where ResponseCode >= 400",
        "where TimeGenerated > ago(1h) or isempty(ApimSubscriptionId)",
        "summarize n = count(), s = sum(TotalTime), p = percentile(TotalTime, 90) by ApimSubscriptionId",
        "summarize count() by bin(TimeGenerated, 15m)",
        "extend x = iff(TotalTime > 100, TotalTime, -1), y = strcat(ApimSubscriptionId, '-', x)",
        "project ApimSubscriptionId, TotalTime, TimeGenerated",
        "order by TotalTime asc nulls first",
        "top 3 by TimeGenerated desc",
        "take 4",
        "distinct ApimSubscriptionId",
        "join kind=leftouter (ApiManagementGatewayLlmLog) on CorrelationId",
        "join kind=leftanti ApiManagementGatewayLlmLog on CorrelationId",
        "count",
        "extend e = Errors[0].i, h = tostring(RequestHeaders['x'])",
        "where ApimSubscriptionId in ('a', 'b') and TotalTime between (10 .. 200)",
        "summarize dcount(CorrelationId), max(TimeGenerated), min(ApimSubscriptionId)",
    ];
    let cat = catalog();
    let now = DateTime::parse("2026-11-24T12:00:00Z").unwrap();
    let mut rng = Rng(42);
    let mut ok = 0;
    for _ in 0..3_000 {
        let mut q = String::from("ApiManagementGatewayLogs");
        for _ in 0..(1 + rng.next() % 5) {
            q.push_str(" | ");
            q.push_str(stages[(rng.next() % stages.len() as u64) as usize]);
        }
        match run(&q, &cat, now, None) {
            Ok(t) => {
                ok += 1;
                let _ = t.to_response_json();
            }
            Err(e) => assert!(e.position().is_some(), "{q}: {e}"),
        }
    }
    assert!(ok > 100, "{ok}");
}
