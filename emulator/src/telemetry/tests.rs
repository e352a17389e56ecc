//! The query APIs over a small hand-made dataset, checked against values computed by hand.
//!
//! Three minutes from 2026-11-24T10:00Z (unix minute `M`); the clock shows `M + 3`:
//!
//! | minute | subscription | gateway | backend | reason | total ms | backend ms | prompt+completion |
//! |---|---|---|---|---|---|---|---|
//! | M   | growth | 200 | 200 | —   | 120 | 100 | 100 + 50 |
//! | M   | growth | 429 | —   | OpenAITokenLimitExceeded | 2 | — | — |
//! | M   | search | 200 | 200 | —   | 330 | 300 | 1000 + 100 |
//! | M+1 | growth | 200 | 200 | —   | 100 | 80  | 200 + 20 |
//! | M+1 | growth | 200 | 200 | —   | 140 | 120 | 300 + 30 |
//! | M+1 | search | 503 | 503 | —   | 50  | 40  | — |
//! | M+2 | (none) | | | | | | |

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use serde_json::{Value, json};

use super::Sim;
use super::data::{CustomSeries, Data, GatewayRow, LlmRow, ServiceFacts};
use super::metrics;
use crate::arm::ArmRequest;

const M: i64 = 1_795_514_400 / 60; // 2026-11-24T10:00:00Z

fn facts() -> ServiceFacts {
    ServiceFacts {
        region: "East US".into(),
        resource_id: "/subscriptions/s/resourcegroups/rg/providers/microsoft.apimanagement/service/x".into(),
        azure_subscription_id: "s".into(),
        workspace_id: super::SANDBOX_WORKSPACE_ID.into(),
        app_insights_resource_id: "/subscriptions/s/resourcegroups/rg/providers/microsoft.insights/components/ai"
            .into(),
        app_insights_name: "ai".into(),
        app_insights_app_id: super::SANDBOX_APP_ID.into(),
        instrumentation_key: "ikey".into(),
        role_name: "x East US".into(),
    }
}

/// (minute offset, second, sub, gateway, backend, reason, total, backend ms, prompt, completion)
type Req = (i64, i64, &'static str, u16, u16, &'static str, u32, Option<u32>, u32, u32);

const REQUESTS: &[Req] = &[
    (0, 5, "growth", 200, 200, "", 120, Some(100), 100, 50),
    (0, 10, "growth", 429, 0, "OpenAITokenLimitExceeded", 2, None, 0, 0),
    (0, 20, "search", 200, 200, "", 330, Some(300), 1000, 100),
    (1, 1, "growth", 200, 200, "", 100, Some(80), 200, 20),
    (1, 2, "growth", 200, 200, "", 140, Some(120), 300, 30),
    (1, 3, "search", 503, 503, "", 50, Some(40), 0, 0),
];

fn dataset() -> Sim {
    let mut data = Data::new(facts(), M);
    data.set_world(1);
    for minute in 0..3 {
        for (i, &(m, sec, sub, code, backend, reason, total, backend_ms, p, c)) in REQUESTS.iter().enumerate() {
            if m != minute {
                continue;
            }
            let t = (M + m) * 60_000 + sec * 1000;
            data.request(&GatewayRow {
                time_ms: t,
                correlation_id: i as u128 + 1,
                url: "https://x.azure-api.net/inference/openai/deployments/gpt-4o/chat/completions",
                response_code: code,
                backend_response_code: backend,
                backend_id: if backend > 0 { "aoai-eastus" } else { "" },
                backend_time: backend_ms,
                total_time: total,
                cache: "none",
                api_id: "inference-api",
                subscription_id: sub,
                last_error_reason: reason,
                ..GatewayRow::default()
            });
            if code == 200 {
                data.llm(&LlmRow {
                    time_ms: t,
                    correlation_id: i as u128 + 1,
                    deployment: "gpt-4o",
                    model: "gpt-4o-2024-08-06",
                    api_version: "2024-10-21",
                    prompt_tokens: p,
                    completion_tokens: c,
                });
                let id = data.series_id(&CustomSeries {
                    namespace: "openai".into(),
                    dimensions: vec![("Subscription ID".into(), sub.into()), ("API ID".into(), "inference-api".into())],
                });
                data.tokens(id, p, c);
            }
        }
        data.finish_minute();
    }
    Sim::for_test(data, M + 3)
}

fn get(sim: &Sim, query: &str, service: bool) -> Result<Value, (u16, Value)> {
    let query = query.replace(' ', "%20").replace('\'', "%27");
    let uri: Uri = format!("/x?api-version=2024-02-01&{query}").parse().unwrap();
    let req = ArmRequest::new(Method::GET, &uri, HeaderMap::new(), Bytes::new());
    let (defs, ns) = if service {
        (metrics::apim_metrics(), "Microsoft.ApiManagement/service".to_string())
    } else {
        (metrics::token_metrics(&sim.data, "openai"), "openai".to_string())
    };
    metrics::query(sim, &req, "/r", &ns, &defs, service, true)
        .map_err(|m| (400, json!({"code": "BadRequest", "message": m})))
}

const SPAN: &str = "timespan=2026-11-24T10:00:00Z/2026-11-24T10:03:00Z";

fn series(v: &Value) -> &Vec<Value> {
    v["value"][0]["timeseries"].as_array().unwrap()
}

fn points(ts: &Value, agg: &str) -> Vec<Value> {
    ts["data"].as_array().unwrap().iter().map(|p| p.get(agg).cloned().unwrap_or(Value::Null)).collect()
}

#[test]
fn requests_per_minute_and_splits() {
    let sim = dataset();
    let v = get(&sim, &format!("metricnames=Requests&aggregation=Total&{SPAN}"), true).unwrap();
    assert_eq!(v["timespan"], "2026-11-24T10:00:00Z/2026-11-24T10:03:00Z");
    assert_eq!(v["interval"], "PT1M");
    assert_eq!(v["namespace"], "Microsoft.ApiManagement/service");
    assert_eq!(v["value"][0]["name"], json!({"value": "Requests", "localizedValue": "Requests"}));
    assert_eq!(v["value"][0]["unit"], "Count");
    let ts = series(&v);
    assert_eq!(ts.len(), 1);
    assert_eq!(ts[0]["metadatavalues"], json!([]));
    assert_eq!(points(&ts[0], "total"), vec![json!(3.0), json!(3.0), json!(0.0)]);
    assert_eq!(ts[0]["data"][0]["timeStamp"], "2026-11-24T10:00:00Z");
    assert_eq!(ts[0]["data"][2]["timeStamp"], "2026-11-24T10:02:00Z");
    assert!(ts[0]["data"][0].get("average").is_none(), "only requested aggregations");

    // Split by gateway code, ordered by total descending.
    let v = get(
        &sim,
        &format!("metricnames=Requests&aggregation=Total&interval=FULL&$filter=GatewayResponseCode eq '*'&{SPAN}"),
        true,
    )
    .unwrap();
    let got: Vec<(Value, Value)> =
        series(&v).iter().map(|t| (t["metadatavalues"][0]["value"].clone(), t["data"][0]["total"].clone())).collect();
    assert_eq!(got, vec![(json!("200"), json!(4.0)), (json!("429"), json!(1.0)), (json!("503"), json!(1.0))]);
    assert_eq!(
        series(&v)[0]["metadatavalues"][0]["name"],
        json!({"value": "gatewayresponsecode", "localizedValue": "gatewayresponsecode"})
    );
    assert_eq!(v["interval"], "FULL");

    // Gateway 429s vs backend responses; `or` on one dimension; top.
    let one = |f: &str| {
        let v = get(&sim, &format!("metricnames=Requests&aggregation=Total&interval=FULL&$filter={f}&{SPAN}"), true)
            .unwrap();
        series(&v)
            .iter()
            .map(|t| (t["metadatavalues"].clone(), t["data"][0]["total"].as_f64().unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(one("BackendResponseCode eq '0'")[0].1, 1.0);
    assert_eq!(one("BackendResponseCodeCategory eq '5xx'")[0].1, 1.0);
    assert_eq!(one("GatewayResponseCode eq '429' or GatewayResponseCode eq '503'").len(), 2);
    let reasons = one("LastErrorReason eq '*'");
    assert_eq!(reasons[0].0[0]["value"], "None");
    assert_eq!((reasons[0].1, reasons[1].1), (5.0, 1.0));
    assert_eq!(reasons[1].0[0]["value"], "OpenAITokenLimitExceeded");
    // A pinned value with no data is one zero series.
    assert_eq!(one("GatewayResponseCode eq '500'")[0].1, 0.0);
    let v = get(
        &sim,
        &format!(
            "metricnames=Requests&interval=FULL&top=1&orderby=Total asc&$filter=GatewayResponseCode eq '*'&{SPAN}"
        ),
        true,
    )
    .unwrap();
    assert_eq!(series(&v).len(), 1);
    assert_eq!(series(&v)[0]["metadatavalues"][0]["value"], "429", "ascending, ties by value");

    // Maximum/minimum are over per-minute counts.
    let v =
        get(&sim, &format!("metricnames=Requests&aggregation=Maximum,Minimum,Total,Count&interval=PT5M&{SPAN}"), true)
            .unwrap();
    let p = &series(&v)[0]["data"][0];
    assert_eq!(
        p,
        &json!({"timeStamp": "2026-11-24T10:00:00Z", "minimum": 3.0, "maximum": 3.0, "total": 6.0, "count": 2.0})
    );
}

#[test]
fn durations_average_over_requests() {
    let sim = dataset();
    let v = get(
        &sim,
        &format!("metricnames=Duration,BackendDuration&aggregation=Average,Maximum,Minimum&interval=FULL&{SPAN}"),
        true,
    )
    .unwrap();
    let d = &v["value"][0]["timeseries"][0]["data"][0];
    assert!((d["average"].as_f64().unwrap() - 742.0 / 6.0).abs() < 1e-9, "{d}");
    assert_eq!((d["maximum"].as_f64(), d["minimum"].as_f64()), (Some(330.0), Some(2.0)));
    let b = &v["value"][1]["timeseries"][0]["data"][0];
    assert_eq!(b["average"].as_f64(), Some(128.0));
    assert_eq!(v["value"][1]["unit"], "MilliSeconds");
    // An empty minute has no average (not zero) for a latency metric.
    let v = get(&sim, &format!("metricnames=Duration&{SPAN}"), true).unwrap();
    assert_eq!(v["value"][0]["timeseries"][0]["data"][2], json!({"timeStamp": "2026-11-24T10:02:00Z"}));
    // Split by API.
    let v = get(&sim, &format!("metricnames=Duration&interval=FULL&$filter=ApiId eq '*'&{SPAN}"), true).unwrap();
    assert_eq!(v["value"][0]["timeseries"][0]["metadatavalues"][0]["value"], "inference-api");
}

#[test]
fn token_metrics_by_subscription() {
    let sim = dataset();
    let v = get(&sim, &format!("metricnames=Total Tokens,Prompt Tokens&aggregation=Total,Count&interval=FULL&$filter=Subscription ID eq '*'&{SPAN}"), false).unwrap();
    let got = |i: usize| -> Vec<(Value, Value, Value)> {
        v["value"][i]["timeseries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (t["metadatavalues"][0]["value"].clone(), t["data"][0]["total"].clone(), t["data"][0]["count"].clone())
            })
            .collect()
    };
    assert_eq!(got(0), vec![(json!("search"), json!(1100.0), json!(1.0)), (json!("growth"), json!(700.0), json!(3.0))]);
    assert_eq!(got(1), vec![(json!("search"), json!(1000.0), json!(1.0)), (json!("growth"), json!(600.0), json!(3.0))]);
    assert_eq!(v["value"][0]["timeseries"][0]["metadatavalues"][0]["name"]["value"], "subscription id");
    assert_eq!(v["namespace"], "openai");
}

#[test]
fn azure_errors_for_bad_names_dimensions_and_parameters() {
    let sim = dataset();
    let err = |q: &str, service: bool| {
        let (status, body) = get(&sim, q, service).unwrap_err();
        assert_eq!(status, 400, "{q}");
        assert_eq!(body["code"], "BadRequest", "{q}");
        body["message"].as_str().unwrap().to_string()
    };
    assert_eq!(
        err("metricnames=Requestz", true),
        "Failed to find metric configuration for provider: microsoft.apimanagement, resource Type: service, metric: Requestz, Valid metrics: Requests,Duration,BackendDuration"
    );
    assert_eq!(
        err("metricnames=Duration&$filter=GatewayResponseCode eq '*'", true),
        "Metric: Duration does not support requested dimension combination: GatewayResponseCode, supported ones are: Location,Hostname,ApiId, please check metric definitions api for details."
    );
    assert!(
        err("metricnames=Requests&$filter=ApiId eq 'a' and GatewayResponseCode eq '200' or ApiId eq 'b'", true)
            .contains("different dimensions")
    );
    assert!(err("metricnames=Requests&interval=PT2M", true).starts_with("Invalid interval 'PT2M'"));
    assert!(err("metricnames=Requests&aggregation=median", true).starts_with("Invalid aggregation 'median'"));
    assert!(err("metricnames=Requests&timespan=2026-11-24T10:00:00Z", true).starts_with("Invalid timespan"));
    assert!(err("metricnames=Requests&top=0&$filter=ApiId eq '*'", true).starts_with("Invalid top"));
    assert!(err("metricnames=Requests&resultType=Everything", true).starts_with("Invalid resultType"));
    assert!(err("metricnames=Pizza Tokens", false).contains("metric: Pizza Tokens, metric namespace: openai"));
    // ValidateDimensions=false ignores unknown dimensions; AutoAdjustTimegrain picks a grain.
    let v = get(
        &sim,
        &format!("metricnames=Requests&interval=FULL&ValidateDimensions=false&$filter=Nope eq 'x'&{SPAN}"),
        true,
    )
    .unwrap();
    assert_eq!(series(&v)[0]["data"][0]["total"], 6.0);
    let v = get(&sim, &format!("metricnames=Requests&interval=PT2M&AutoAdjustTimegrain=true&{SPAN}"), true).unwrap();
    assert_eq!(v["interval"], "PT1M");
}

#[test]
fn kql_over_the_same_rows() {
    let mut sim = dataset();
    let tables = sim.data.tables(|_| true);
    let now = super::minute_dt(sim.now);
    let run = |q: &str| aigw_kql::run(q, &tables, now, None).unwrap();
    let t = run(
        "ApiManagementGatewayLogs | summarize n = count(), e = countif(ResponseCode == 429), gw = countif(ResponseCode == 429 and isempty(BackendResponseCode)) by ApimSubscriptionId | order by ApimSubscriptionId asc",
    );
    assert_eq!(
        (0..t.len()).map(|i| t.row(i)).collect::<Vec<_>>(),
        vec![
            vec!["growth".into(), 4i64.into(), 1i64.into(), 1i64.into()],
            vec!["search".into(), 2i64.into(), 0i64.into(), 0i64.into()],
        ]
    );
    let t = run(
        "ApiManagementGatewayLlmLog | where DeploymentName != '' | join kind=leftouter ApiManagementGatewayLogs on CorrelationId | summarize tokens = sum(TotalTokens) by ApimSubscriptionId | order by tokens desc",
    );
    assert_eq!(t.row(0), vec!["search".into(), 1100i64.into()]);
    assert_eq!(t.row(1), vec!["growth".into(), 700i64.into()]);
    let t = run("ApiManagementGatewayLogs | where TimeGenerated > ago(2m) | count");
    assert_eq!(t.row(0), vec![3i64.into()], "ago() is relative to the simulated clock (M+3): minute M+1 only");
    let t = run("ApiManagementGatewayLogs | summarize by CorrelationId | count");
    assert_eq!(t.row(0), vec![6i64.into()]);
    let t = run(
        "ApiManagementGatewayLogs | where CorrelationId == '00000000-0000-0000-0000-000000000001' | project Type, _ResourceId, Region, Cache, TotalTime",
    );
    assert_eq!(
        t.row(0),
        vec![
            "ApiManagementGatewayLogs".into(),
            facts().resource_id.as_str().into(),
            "East US".into(),
            "none".into(),
            120i64.into()
        ]
    );
    let t = run(
        "AppMetrics | where Name == 'Total Tokens' | extend sub = tostring(Properties['Subscription ID']) | summarize total = sum(Sum), n = sum(ItemCount) by sub | order by sub asc",
    );
    assert_eq!(t.row(0), vec!["growth".into(), 700.0.into(), 3i64.into()]);
    let t = run(
        "customMetrics | where name == 'Total Tokens' | summarize total = sum(valueSum) by sub = tostring(customDimensions['Subscription ID']) | order by sub asc",
    );
    assert_eq!(t.row(1), vec!["search".into(), 1100.0.into()]);
    // Loading is incremental: a later minute is appended to the tables built so far, and the
    // logs still join (the first load shared one dictionary of correlation ids between them).
    assert_eq!(tables[0].len(), 6);
    let t = (M + 3) * 60_000;
    sim.data.request(&GatewayRow {
        time_ms: t,
        correlation_id: 99,
        response_code: 200,
        backend_response_code: 200,
        api_id: "inference-api",
        subscription_id: "support",
        cache: "none",
        ..GatewayRow::default()
    });
    sim.data.llm(&LlmRow {
        time_ms: t,
        correlation_id: 99,
        prompt_tokens: 40,
        completion_tokens: 2,
        ..LlmRow::default()
    });
    sim.data.finish_minute();
    let held = tables; // a query result still holding the old columns must not see the new rows
    let tables = sim.data.tables(|_| true);
    assert_eq!((held[0].len(), tables[0].len(), tables[1].len()), (6, 7, 5));
    let t = aigw_kql::run(
        "ApiManagementGatewayLlmLog | join kind=inner ApiManagementGatewayLogs on CorrelationId | summarize sum(TotalTokens) by ApimSubscriptionId | order by ApimSubscriptionId asc",
        &tables,
        now,
        None,
    )
    .unwrap();
    assert_eq!(t.row(2), vec!["support".into(), 42i64.into()]);
    assert_eq!(t.len(), 3);
}
