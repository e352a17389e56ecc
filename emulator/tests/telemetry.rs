//! Telemetry over real HTTP: the traffic model reacting to ARM changes, the simulated clock,
//! outages, the semantic cache, the seeded history, and the metrics / Log Analytics APIs'
//! shapes and errors.

mod common;

use aigw_emulator::seed::WESTEUROPE_ENDPOINT;
use aigw_emulator::telemetry::{SANDBOX_APP_ID, SANDBOX_WORKSPACE_ID, TelemetryOptions};
use aigw_emulator::{Options, sandbox_service_id};
use common::{Emu, Resp, TOKEN};
use reqwest::Method;
use serde_json::{Value, json};

/// 2026-11-24T14:00:00Z, a Tuesday: the next hours are the business-day peak.
const PEAK: i64 = 1_795_528_800;

async fn emu_at(start: i64, history_minutes: u32) -> Emu {
    emu_with(TelemetryOptions { start_unix: Some(start), history_minutes, ..Default::default() }).await
}

async fn emu_with(t: TelemetryOptions) -> Emu {
    Emu::with(Options::new(TOKEN).with_telemetry(t)).await
}

async fn kql(emu: &Emu, query: &str, timespan: Option<&str>) -> Resp {
    let mut body = json!({ "query": query });
    if let Some(t) = timespan {
        body["timespan"] = json!(t);
    }
    let url = format!("{}/v1/workspaces/{SANDBOX_WORKSPACE_ID}/query", emu.running.base_url);
    emu.call(Method::POST, &url, Some(&body), &[]).await
}

/// The rows of a successful query.
async fn rows(emu: &Emu, query: &str) -> Vec<Vec<Value>> {
    let r = kql(emu, query, None).await;
    assert_eq!(r.status, 200, "{query}: {}", r.text);
    r.body["tables"][0]["rows"].as_array().unwrap().iter().map(|r| r.as_array().unwrap().clone()).collect()
}

async fn advance(emu: &Emu, minutes: u32) -> Resp {
    let r = emu.admin(Method::POST, "/_emulator/clock/advance", Some(json!({ "minutes": minutes }))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r
}

fn iso(unix: i64) -> String {
    aigw_kql::DateTime::from_unix_seconds(unix).unwrap().to_string()
}

/// Per subscription: (requests, 429s, 200s) at or after `from`.
async fn by_subscription(emu: &Emu, from: i64) -> Vec<(String, i64, i64, i64)> {
    let q = format!(
        "ApiManagementGatewayLogs | where TimeGenerated >= datetime({}) | summarize n = count(), e429 = countif(ResponseCode == 429), ok = countif(ResponseCode == 200) by ApimSubscriptionId | order by ApimSubscriptionId asc",
        iso(from)
    );
    rows(emu, &q)
        .await
        .into_iter()
        .map(|r| {
            (r[0].as_str().unwrap().to_string(), r[1].as_i64().unwrap(), r[2].as_i64().unwrap(), r[3].as_i64().unwrap())
        })
        .collect()
}

async fn api_policy(emu: &Emu) -> String {
    let r = emu.get("/apis/inference-api/policies/policy?format=rawxml").await;
    assert_eq!(r.status, 200);
    r.body["properties"]["value"].as_str().unwrap().to_string()
}

async fn put_api_policy(emu: &Emu, xml: &str) {
    let r =
        emu.put("/apis/inference-api/policies/policy", json!({"properties": {"format": "rawxml", "value": xml}})).await;
    assert!(r.status == 200 || r.status == 201, "{}", r.text);
}

fn metrics_url(emu: &Emu, query: &str) -> String {
    let q = query.replace(' ', "%20").replace('\'', "%27");
    format!(
        "{}{}/providers/Microsoft.Insights/metrics?api-version=2024-02-01&{q}",
        emu.running.base_url,
        sandbox_service_id()
    )
}

async fn metrics(emu: &Emu, query: &str) -> Resp {
    emu.call(Method::GET, &metrics_url(emu, query), None, &[]).await
}

#[tokio::test]
async fn lowering_one_tpm_raises_its_429s_and_leaves_the_others_unchanged() {
    let (changed, same) = tokio::join!(emu_at(PEAK, 15), emu_at(PEAK, 15));
    // Cut growth from 200k to 100k TPM through ARM, as update_quota would.
    let xml = api_policy(&changed).await;
    assert_eq!(xml.matches("tokens-per-minute=\"200000\"").count(), 1);
    put_api_policy(&changed, &xml.replace("tokens-per-minute=\"200000\"", "tokens-per-minute=\"100000\"")).await;
    advance(&changed, 60).await;
    advance(&same, 60).await;
    let (a, b) = (by_subscription(&changed, PEAK).await, by_subscription(&same, PEAK).await);
    assert_eq!(a.len(), 6, "{a:?}");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.0, y.0);
        if x.0 == "growth" {
            assert_eq!(x.1, y.1, "the same demand");
            assert!(x.2 >= y.2 + 100 && x.2 >= 5 * y.2.max(1), "growth 429s: {} after the cut vs {} before", x.2, y.2);
            assert!(x.3 < y.3);
        } else {
            assert_eq!(x, y, "{} must not change", x.0);
        }
    }
    // The platform metric sees the same: gateway-generated token-limit 429s in the last hour.
    let q = "metricnames=Requests&aggregation=Total&interval=FULL&timespan=PT1H&$filter=LastErrorReason eq 'OpenAITokenLimitExceeded'";
    let total = |r: &Resp| r.body["value"][0]["timeseries"][0]["data"][0]["total"].as_f64().unwrap();
    let (ma, mb) = (metrics(&changed, q).await, metrics(&same, q).await);
    assert_eq!(ma.status, 200, "{}", ma.text);
    let growth_cut = a.iter().find(|x| x.0 == "growth").unwrap().2;
    let others: i64 = a.iter().filter(|x| x.0 != "growth").map(|x| x.2).sum();
    assert_eq!(total(&ma) as i64, growth_cut + others, "metrics and logs agree");
    assert!(total(&ma) > total(&mb));
}

#[tokio::test]
async fn an_outage_moves_traffic_to_priority_2_and_back_after_recovery() {
    let emu = emu_at(PEAK, 10).await;
    // Add West Europe (a known deployment) as priority 2 with the same breaker.
    let east = emu.get("/backends/aoai-eastus").await;
    let breaker = east.body["properties"]["circuitBreaker"].clone();
    let r = emu
        .put(
            "/backends/aoai-westeurope",
            json!({"properties": {"url": WESTEUROPE_ENDPOINT, "protocol": "http", "circuitBreaker": breaker}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = emu
        .put(
            "/backends/aoai-pool",
            json!({"properties": {"type": "Pool", "pool": {"services": [
                {"id": "/backends/aoai-eastus", "priority": 1, "weight": 1},
                {"id": "/backends/aoai-westeurope", "priority": 2, "weight": 1}
            ]}}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let backends_between = |from: i64, to: i64| {
        format!(
            "ApiManagementGatewayLogs | where TimeGenerated >= datetime({}) and TimeGenerated < datetime({}) and isnotempty(BackendId) | summarize n = count(), ok = countif(ResponseCode == 200), b503 = countif(BackendResponseCode == 503) by BackendId | order by BackendId asc",
            iso(from),
            iso(to)
        )
    };
    advance(&emu, 5).await;
    let healthy = rows(&emu, &backends_between(PEAK, PEAK + 300)).await;
    assert_eq!(healthy.len(), 1, "priority 2 is idle while priority 1 is healthy: {healthy:?}");
    assert_eq!(healthy[0][0], "aoai-eastus");

    let r = emu.admin(Method::POST, "/_emulator/backends/aoai-eastus/outage", Some(json!({"enabled": true}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["enabled"], true);
    advance(&emu, 10).await;
    let outage = rows(&emu, &backends_between(PEAK + 300, PEAK + 900)).await;
    let get = |rows: &Vec<Vec<Value>>, b: &str, col: usize| {
        rows.iter().find(|r| r[0] == b).map(|r| r[col].as_i64().unwrap()).unwrap_or(0)
    };
    let east_503 = get(&outage, "aoai-eastus", 3);
    // Each failing request made two attempts (retry count 1); the breaker opens on the fifth
    // failed attempt, whose retry already lands on West Europe. It closes after 5 minutes, fails
    // again, and reopens: two client-visible 503s per trip.
    assert!((2..=12).contains(&east_503), "the breaker trips after 5 failed attempts: {outage:?}");
    assert_eq!(get(&outage, "aoai-eastus", 2), 0, "East US serves nothing during the outage");
    assert!(get(&outage, "aoai-westeurope", 2) > 500, "West Europe takes the traffic: {outage:?}");
    let state = emu.admin(Method::GET, "/_emulator/backends/aoai-eastus/outage", None).await;
    assert_eq!(state.body["enabled"], true);

    let r = emu.admin(Method::POST, "/_emulator/backends/aoai-eastus/outage", Some(json!({"enabled": false}))).await;
    assert_eq!(r.body["enabled"], false);
    advance(&emu, 10).await;
    // The breaker closes at most tripDuration (5 min) later; then everything is back on East US.
    let back = rows(&emu, &backends_between(PEAK + 1200, PEAK + 1500)).await;
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(back[0][0], "aoai-eastus");
    assert!(
        back[0][1].as_i64().unwrap() - back[0][2].as_i64().unwrap() <= 2,
        "all 200 (but a rare transient 500): {back:?}"
    );
    // The platform metric shows the backend 503s.
    let m = metrics(
        &emu,
        &format!(
            "metricnames=Requests&interval=FULL&timespan={}/{}&$filter=BackendResponseCode eq '503'",
            iso(PEAK + 300),
            iso(PEAK + 900)
        ),
    )
    .await;
    assert_eq!(m.body["value"][0]["timeseries"][0]["data"][0]["total"].as_f64().unwrap() as i64, east_503);
}

#[tokio::test]
async fn unknown_backend_urls_fail_and_a_known_deployment_serves() {
    let emu = emu_at(PEAK, 5).await;
    let r = emu
        .put(
            "/backends/aoai-swedencentral",
            json!({"properties": {"url": "https://aoai-swedencentral.openai.azure.com/openai", "protocol": "http"}}),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = emu
        .put("/backends/aoai-westeurope", json!({"properties": {"url": WESTEUROPE_ENDPOINT, "protocol": "http"}}))
        .await;
    assert_eq!(r.status, 201);
    let xml = api_policy(&emu).await.replace("backend-id=\"aoai-pool\"", "backend-id=\"aoai-swedencentral\"");
    put_api_policy(&emu, &xml).await;
    advance(&emu, 2).await;
    let q = format!(
        "ApiManagementGatewayLogs | where TimeGenerated >= datetime({}) | summarize n = count() by ResponseCode, LastErrorReason, BackendId",
        iso(PEAK)
    );
    let r = rows(&emu, &q).await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        (r[0][0].as_i64(), r[0][1].as_str(), r[0][2].as_str()),
        (Some(500), Some("BackendConnectionFailure"), Some("aoai-swedencentral"))
    );
    put_api_policy(&emu, &xml.replace("aoai-swedencentral", "aoai-westeurope")).await;
    advance(&emu, 2).await;
    let q = format!(
        "ApiManagementGatewayLogs | where TimeGenerated >= datetime({}) and isnotempty(BackendId) | summarize n = count(), ok = countif(ResponseCode == 200) by BackendId, BackendUrl",
        iso(PEAK + 120)
    );
    let r = rows(&emu, &q).await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0][0], "aoai-westeurope");
    assert!(
        r[0][1].as_str().unwrap().starts_with(&format!("{WESTEUROPE_ENDPOINT}/deployments/gpt-4o/chat/completions"))
    );
    let (n, ok) = (r[0][2].as_i64().unwrap(), r[0][3].as_i64().unwrap());
    assert!(ok > 100 && n - ok <= 2, "West Europe serves (a rare transient 500 aside): {r:?}");
    let models = rows(
        &emu,
        &format!(
            "ApiManagementGatewayLlmLog | where TimeGenerated >= datetime({}) | distinct DeploymentName, ModelName",
            iso(PEAK + 120)
        ),
    )
    .await;
    assert_eq!(models, vec![vec![json!("gpt-4o"), json!("gpt-4o-2024-08-06")]]);
}

async fn with_cache(emu: &Emu, threshold: &str) {
    let xml = api_policy(emu).await;
    let lookup = format!(
        "<base />\r\n\t\t<llm-semantic-cache-lookup score-threshold=\"{threshold}\" embeddings-backend-id=\"aoai-eastus\" embeddings-backend-auth=\"system-assigned\">\r\n\t\t\t<vary-by>@(context.Subscription.Id)</vary-by>\r\n\t\t</llm-semantic-cache-lookup>"
    );
    let xml = xml.replacen("<base />", &lookup, 1);
    let xml = xml.replacen(
        "<outbound>\r\n\t\t<base />",
        "<outbound>\r\n\t\t<base />\r\n\t\t<llm-semantic-cache-store duration=\"3600\" />",
        1,
    );
    assert!(xml.contains("llm-semantic-cache-store"));
    put_api_policy(emu, &xml).await;
}

/// (hits, misses, no lookup) since `PEAK`.
async fn cache(e: &Emu) -> Vec<i64> {
    let q = format!(
        "ApiManagementGatewayLogs | where TimeGenerated >= datetime({}) | summarize hits = countif(Cache == 'hit'), misses = countif(Cache == 'miss'), none = countif(Cache == 'none')",
        iso(PEAK)
    );
    rows(e, &q).await[0].iter().map(|v| v.as_i64().unwrap()).collect()
}

/// Total Tokens over the last hour, from the App Insights component's metrics.
async fn backend_tokens(e: &Emu) -> f64 {
    let url = format!(
        "{}/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-ai-gateway/providers/microsoft.insights/components/appi-ai-gateway/providers/Microsoft.Insights/metrics?api-version=2024-02-01&metricnamespace=openai&metricnames=Total%20Tokens&aggregation=Total&interval=FULL&timespan=PT1H",
        e.running.base_url
    );
    let r = e.call(Method::GET, &url, None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["value"][0]["timeseries"][0]["data"][0]["total"].as_f64().unwrap()
}

#[tokio::test]
async fn a_semantic_cache_produces_hits_and_lowers_backend_tokens() {
    let (strict, loose, none) = tokio::join!(emu_at(PEAK, 10), emu_at(PEAK, 10), emu_at(PEAK, 10));
    // score-threshold is a distance, as in Azure: 0.05 is "95% similar", 0.2 "80% similar".
    with_cache(&strict, "0.05").await;
    with_cache(&loose, "0.2").await;
    for e in [&strict, &loose, &none] {
        advance(e, 60).await;
    }
    let (s, l, n) = (cache(&strict).await, cache(&loose).await, cache(&none).await);
    assert_eq!((n[0], n[1]), (0, 0), "no cache, no lookups: {n:?}");
    assert!(s[0] > 0 && l[0] > 0, "hits: strict {s:?}, loose {l:?}");
    assert!(l[0] > 2 * s[0], "a higher distance threshold (looser) hits more: {l:?} vs {s:?}");
    assert_eq!(s[2], 0, "every request looked the cache up");
    // Hits never reach a backend.
    let q = format!(
        "ApiManagementGatewayLogs | where TimeGenerated >= datetime({}) and Cache == 'hit' | summarize backends = dcount(BackendId), withBackend = countif(isnotempty(BackendResponseCode))",
        iso(PEAK)
    );
    let r = rows(&loose, &q).await;
    assert_eq!(r[0][1], 0);
    // Backend tokens (the token metric counts backend responses) fall; tokens served from the cache are visible in the LLM log.
    let (tl, tn) = (backend_tokens(&loose).await, backend_tokens(&none).await);
    assert!(tl < 0.95 * tn, "backend tokens with the cache {tl} vs without {tn}");
    let q = format!(
        "ApiManagementGatewayLlmLog | where TimeGenerated >= datetime({}) | join kind=inner ApiManagementGatewayLogs on CorrelationId | summarize saved = sumif(TotalTokens, Cache == 'hit'), backend = sumif(TotalTokens, Cache != 'hit')",
        iso(PEAK)
    );
    let r = rows(&loose, &q).await;
    assert!(r[0][0].as_i64().unwrap() > 0);
    assert_eq!(r[0][1].as_f64().unwrap(), tl, "the LLM log's backend tokens equal the token metric");
}

#[tokio::test]
async fn the_seeded_history_tells_the_documented_story() {
    // Two days of history ending Wednesday 00:00 UTC: Monday and Tuesday's business days.
    let start = 1_795_564_800; // 2026-11-25T00:00:00Z
    let emu = emu_at(start, 2 * 24 * 60).await;
    let q = "ApiManagementGatewayLlmLog | join kind=inner ApiManagementGatewayLogs on CorrelationId | summarize tokens = sum(TotalTokens) by ApimSubscriptionId, bin(TimeGenerated, 1m) | summarize p99 = percentile(tokens, 99), peak = max(tokens) by ApimSubscriptionId | order by ApimSubscriptionId asc";
    let peaks: Vec<(String, f64, f64)> = rows(&emu, q)
        .await
        .into_iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_f64().unwrap(), r[2].as_f64().unwrap()))
        .collect();
    let subs = by_subscription(&emu, start - 2 * 86_400).await;
    let peak = |s: &str| peaks.iter().find(|p| p.0 == s).unwrap().clone();
    let sub = |s: &str| subs.iter().find(|p| p.0 == s).unwrap().clone();
    // growth runs near 90 % of its 200k TPM at the daily peak, with some 429s.
    let g = peak("growth");
    assert!((170_000.0..=215_000.0).contains(&g.1), "growth p99 minute {g:?}");
    let gs = sub("growth");
    assert!(gs.2 > 0 && (gs.2 as f64) < 0.05 * gs.1 as f64, "growth 429s {gs:?}");
    // prod-critical is comfortable.
    assert!(peak("prod-critical").2 < 0.75 * 400_000.0, "{:?}", peak("prod-critical"));
    assert_eq!(sub("prod-critical").2, 0);
    // search and support are moderate.
    for s in ["search", "support"] {
        assert!(peak(s).1 < 0.85 * 100_000.0, "{:?}", peak(s));
        assert!((sub(s).2 as f64) < 0.005 * sub(s).1 as f64, "{:?}", sub(s));
    }
    // No semantic cache yet.
    assert_eq!(rows(&emu, "ApiManagementGatewayLogs | where Cache != 'none' | count").await[0][0], 0);
    // Logs and platform metrics count the same requests.
    let last_day =
        rows(&emu, "ApiManagementGatewayLogs | where TimeGenerated >= ago(1d) | count").await[0][0].as_i64().unwrap();
    let m = metrics(&emu, "metricnames=Requests&interval=FULL&timespan=P1D").await;
    assert_eq!(m.body["value"][0]["timeseries"][0]["data"][0]["total"].as_f64().unwrap() as i64, last_day);
    // Token metrics and the LLM log agree on growth's tokens.
    let llm = rows(&emu, "ApiManagementGatewayLlmLog | join kind=inner (ApiManagementGatewayLogs | where ApimSubscriptionId == 'growth') on CorrelationId | summarize sum(TotalTokens)").await[0][0].as_i64().unwrap();
    let url = format!(
        "{}/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-ai-gateway/providers/microsoft.insights/components/appi-ai-gateway/providers/Microsoft.Insights/metrics?api-version=2019-07-01&metricnamespace=openai&metricnames=Total%20Tokens&interval=FULL&timespan=P2D&$filter=Subscription%20ID%20eq%20%27growth%27",
        emu.running.base_url
    );
    let r = emu.call(Method::GET, &url, None, &[]).await;
    assert_eq!(r.body["value"][0]["timeseries"][0]["data"][0]["total"].as_f64().unwrap() as i64, llm, "{}", r.text);
}

#[tokio::test]
async fn metrics_api_shapes_and_errors() {
    let emu = emu_at(PEAK, 30).await;
    let clock = emu.admin(Method::GET, "/_emulator/clock", None).await;
    assert_eq!(clock.body["now"], iso(PEAK));
    assert_eq!(clock.body["historyStart"], iso(PEAK - 1800));
    // Default timespan: the last hour of the simulated clock.
    let r = metrics(&emu, "metricnames=Requests").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["timespan"], format!("{}/{}", iso(PEAK - 3600), iso(PEAK)));
    assert_eq!(r.body["resourceregion"], "eastus");
    assert_eq!(
        r.body["value"][0]["id"],
        format!("{}/providers/Microsoft.Insights/metrics/Requests", sandbox_service_id())
    );
    assert_eq!(r.body["value"][0]["type"], "Microsoft.Insights/metrics");
    assert_eq!(r.body["value"][0]["errorCode"], "Success");
    assert_eq!(r.body["value"][0]["timeseries"][0]["data"].as_array().unwrap().len(), 60);
    assert!(r.header("x-ms-request-id").is_some());
    let data = r.body["value"][0]["timeseries"][0]["data"].as_array().unwrap().clone();
    assert!(data[..30].iter().all(|p| p["total"] == 0.0), "no history before history start");
    assert!(data[30..].iter().all(|p| p["total"].as_f64().unwrap() > 0.0));
    // After advancing, the default window moves with the clock.
    advance(&emu, 15).await;
    let r = metrics(&emu, "metricnames=Requests").await;
    assert_eq!(r.body["timespan"], format!("{}/{}", iso(PEAK + 900 - 3600), iso(PEAK + 900)));

    let bad = |q: &'static str| {
        let emu = &emu;
        async move { metrics(emu, q).await }
    };
    let r = bad("metricnames=Requestz").await;
    assert_eq!((r.status, r.body["code"].as_str()), (400, Some("BadRequest")));
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .starts_with("Failed to find metric configuration for provider: microsoft.apimanagement")
    );
    let r = bad("metricnames=Requests&$filter=Subscription eq '*'").await;
    assert!(
        r.body["message"].as_str().unwrap().contains("does not support requested dimension combination: Subscription"),
        "{}",
        r.text
    );
    let r = bad("metricnames=Requests&$filter=ApiId eq").await;
    assert!(r.body["message"].as_str().unwrap().starts_with("The $filter 'ApiId eq' is invalid"), "{}", r.text);
    let url = metrics_url(&emu, "metricnames=Requests").replace("2024-02-01", "2020-01-01");
    let r = emu.call(Method::GET, &url, None, &[]).await;
    assert_eq!((r.status, r.code()), (400, "NoRegisteredProviderFound"));
    let r = emu.call(Method::GET, &url.replace("apim-sandbox", "apim-nope"), None, &[]).await;
    assert_eq!(r.code(), "NoRegisteredProviderFound", "api-version is checked first");
    let r = emu
        .call(Method::GET, &metrics_url(&emu, "metricnames=Requests").replace("apim-sandbox", "apim-nope"), None, &[])
        .await;
    assert_eq!((r.status, r.code()), (404, "ResourceNotFound"));
    let r = reqwest::get(metrics_url(&emu, "metricnames=Requests")).await.unwrap();
    assert_eq!(r.status(), 401);
    // Definitions.
    let url = metrics_url(&emu, "").replace("/metrics?", "/metricDefinitions?");
    let r = emu.call(Method::GET, &url, None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let defs = r.body["value"].as_array().unwrap();
    assert_eq!(defs.len(), 3);
    assert_eq!(defs[0]["name"]["value"], "Requests");
    assert_eq!(defs[0]["dimensions"].as_array().unwrap().len(), 8);
    assert_eq!(defs[1]["primaryAggregationType"], "Average");
    // The App Insights component exists only as the sandbox logger's resource.
    let comp = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-ai-gateway/providers/microsoft.insights/components";
    let url = format!(
        "{}{comp}/appi-ai-gateway/providers/Microsoft.Insights/metrics?api-version=2024-02-01&metricnamespace=openai&metricnames=Total%20Tokens&interval=FULL&$filter=Subscription%20ID%20eq%20%27*%27",
        emu.running.base_url
    );
    let r = emu.call(Method::GET, &url, None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let subs: Vec<&str> = r.body["value"][0]["timeseries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["metadatavalues"][0]["value"].as_str().unwrap())
        .collect();
    assert!(subs.contains(&"growth") && subs.contains(&"prod-critical"), "{subs:?}");
    let r = emu.call(Method::GET, &url.replace("appi-ai-gateway", "appi-other"), None, &[]).await;
    assert_eq!((r.status, r.code()), (404, "ResourceNotFound"));
}

#[tokio::test]
async fn log_analytics_api_shapes_and_errors() {
    let emu =
        emu_with(TelemetryOptions { start_unix: Some(PEAK), history_minutes: 20, row_cap: 100, ..Default::default() })
            .await;
    let r = kql(&emu, "ApiManagementGatewayLogs | summarize n = count(), latest = max(TimeGenerated)", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let t = &r.body["tables"][0];
    assert_eq!(t["name"], "PrimaryResult");
    assert_eq!(t["columns"], json!([{"name": "n", "type": "long"}, {"name": "latest", "type": "datetime"}]));
    let latest = t["rows"][0][1].as_str().unwrap();
    assert!(latest < iso(PEAK).as_str() && latest >= iso(PEAK - 60).as_str(), "{latest}");
    // timespan is relative to the simulated clock.
    let all = t["rows"][0][0].as_i64().unwrap();
    let r = kql(&emu, "ApiManagementGatewayLogs | count", Some("PT10M")).await;
    let last10 = r.body["tables"][0]["rows"][0][0].as_i64().unwrap();
    assert!(last10 > 0 && last10 < all);
    // GET form.
    let url = format!(
        "{}/v1/workspaces/{SANDBOX_WORKSPACE_ID}/query?query=ApiManagementGatewayLogs%20%7C%20count",
        emu.running.base_url
    );
    let r = emu.call(Method::GET, &url, None, &[]).await;
    assert_eq!(r.body["tables"][0]["rows"][0][0], all);
    // Row cap: the first rows and a PartialError.
    let r = kql(&emu, "ApiManagementGatewayLogs | project CorrelationId", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["tables"][0]["rows"].as_array().unwrap().len(), 100);
    assert_eq!(r.body["error"]["code"], "PartialError");
    // Errors.
    let r = kql(&emu, "ApiManagementGatewayLogs\n| mv-expand Errors", None).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "BadArgumentError");
    let inner = &r.body["error"]["innererror"]["innererror"];
    assert_eq!(
        (inner["line"].as_i64(), inner["pos"].as_i64(), inner["token"].as_str()),
        (Some(2), Some(2), Some("mv-expand"))
    );
    let r = kql(&emu, "ApiManagementGatewayLogs | where ResponseCod == 429", None).await;
    assert_eq!(r.body["error"]["innererror"]["code"], "SemanticError");
    let r = kql(&emu, "ApiManagementGatewayLogs | count", Some("yesterday")).await;
    assert_eq!(r.status, 400);
    let url = format!("{}/v1/workspaces/{SANDBOX_WORKSPACE_ID}/query", emu.running.base_url);
    let r = emu.call(Method::POST, &url, Some(&json!({"timespan": "PT1H"})), &[]).await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"]["innererror"]["message"].as_str().unwrap().contains("'query'"), "{}", r.text);
    let r = emu
        .call(
            Method::POST,
            &url.replace(SANDBOX_WORKSPACE_ID, "99999999-1111-1111-1111-111111111111"),
            Some(&json!({"query": "print 1"})),
            &[],
        )
        .await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (404, Some("WorkspaceNotFoundError")));
    let r = reqwest::Client::new()
        .post(&url)
        .json(&json!({"query": "ApiManagementGatewayLogs | count"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "AuthorizationRequiredError");
    // Application Insights query API over customMetrics; AppMetrics in the workspace.
    let url = format!("{}/v1/apps/{SANDBOX_APP_ID}/query", emu.running.base_url);
    let r = emu
        .call(Method::POST, &url, Some(&json!({"query": "customMetrics | where name == 'Total Tokens' | summarize sum(valueSum) by tostring(customDimensions['Subscription ID'])"})), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["tables"][0]["rows"].as_array().unwrap().len(), 6);
    let app =
        rows(&emu, "AppMetrics | where Name == 'Total Tokens' | summarize sum(Sum)").await[0][0].as_f64().unwrap();
    let llm = rows(&emu, "ApiManagementGatewayLlmLog | summarize sum(TotalTokens)").await[0][0].as_f64().unwrap();
    assert_eq!(app, llm);
}

#[tokio::test]
async fn admin_endpoints_validate_and_reset_restarts_the_clock() {
    let emu = emu_at(PEAK, 5).await;
    for (body, field) in [
        (json!({}), "'minutes' is required"),
        (json!({"minutes": 0}), "'minutes' must be an integer from 1"),
        (json!({"minutes": "ten"}), "'minutes' must be an integer"),
        (json!({"minutes": 5, "hours": 1}), "Unknown field 'hours'"),
    ] {
        let r = emu.admin(Method::POST, "/_emulator/clock/advance", Some(body)).await;
        assert_eq!(r.status, 400);
        assert!(r.message().contains(field), "{}", r.text);
    }
    let r = emu.admin(Method::POST, "/_emulator/backends/nope/outage", Some(json!({"enabled": true}))).await;
    assert_eq!(r.status, 404);
    let r = emu
        .admin(Method::POST, "/_emulator/backends/aoai-eastus/outage", Some(json!({"enabled": true, "mode": "fire"})))
        .await;
    assert!(r.message().contains("'mode'"), "{}", r.text);
    let r = emu.admin(Method::POST, "/_emulator/backends/aoai-eastus/outage", Some(json!({"on": true}))).await;
    assert!(r.message().contains("'enabled'"), "{}", r.text);
    // Traffic profiles.
    let r = emu.admin(Method::GET, "/_emulator/traffic", None).await;
    assert_eq!(r.body["value"]["growth"]["peakRpm"], 40.0);
    let r = emu.admin(Method::PUT, "/_emulator/traffic/newteam", Some(json!({"peakRpm": 10, "promptTokens": 500, "completionTokens": 100, "curve": "flat", "repeatShare": 1.5}))).await;
    assert!(r.message().contains("repeatShare"), "{}", r.text);
    // A subscription with a profile sends traffic once it exists.
    let r = emu
        .put(
            "/subscriptions/newteam",
            json!({"properties": {"displayName": "New team", "scope": "/products/aoai", "state": "active"}}),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = emu
        .admin(
            Method::PUT,
            "/_emulator/traffic/newteam",
            Some(json!({"peakRpm": 10, "promptTokens": 500, "completionTokens": 100, "curve": "flat"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = advance(&emu, 3).await;
    assert_eq!(r.body["now"], iso(PEAK + 180));
    assert!(r.body["requestsSimulated"].as_i64().unwrap() > 0);
    let n = rows(&emu, "ApiManagementGatewayLogs | where ApimSubscriptionId == 'newteam' | count").await[0][0]
        .as_i64()
        .unwrap();
    assert!(n > 10, "{n}");
    // A suspended subscription's callers get 401s.
    let r = emu.patch("/subscriptions/growth", json!({"properties": {"state": "suspended"}}), "*").await;
    assert_eq!(r.status, 200);
    advance(&emu, 2).await;
    let r = rows(&emu, &format!("ApiManagementGatewayLogs | where TimeGenerated >= datetime({}) and ApimSubscriptionId == 'growth' | summarize count() by ResponseCode, LastErrorReason", iso(PEAK + 180))).await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!((r[0][0].as_i64(), r[0][1].as_str()), (Some(401), Some("SubscriptionKeyInvalid")));
    // Reset: the tenant and the telemetry start over.
    let r = emu.admin(Method::POST, "/_emulator/reset", None).await;
    assert_eq!(r.status, 200);
    let clock = emu.admin(Method::GET, "/_emulator/clock", None).await;
    assert_eq!(clock.body["now"], iso(PEAK));
    assert_eq!(rows(&emu, "ApiManagementGatewayLogs | where ApimSubscriptionId == 'newteam' | count").await[0][0], 0);
}

#[tokio::test]
async fn token_quotas_and_request_rates_are_enforced_per_key() {
    let emu = emu_at(PEAK, 5).await;
    // search and support share the product branch: an hourly token quota of 20,000 for each key,
    // and growth's RPM cut to 10.
    let xml = api_policy(&emu).await;
    let product_branch = "tokens-per-minute=\"100000\" estimate-prompt-tokens=\"false\"";
    assert_eq!(xml.matches(product_branch).count(), 1);
    let xml = xml
        .replace(product_branch, "tokens-per-minute=\"100000\" token-quota=\"20000\" token-quota-period=\"Hourly\" estimate-prompt-tokens=\"false\"")
        .replace("calls=\"1200\"", "calls=\"10\"");
    put_api_policy(&emu, &xml).await;
    advance(&emu, 62).await;
    let q = |sub: &str, from: i64, to: i64| {
        format!(
            "ApiManagementGatewayLogs | where ApimSubscriptionId == '{sub}' and TimeGenerated >= datetime({}) and TimeGenerated < datetime({}) | summarize n = count(), ok = countif(ResponseCode == 200) by ResponseCode, LastErrorReason, LastErrorSource | order by n desc",
            iso(from),
            iso(to)
        )
    };
    for sub in ["search", "support"] {
        let r = rows(&emu, &q(sub, PEAK, PEAK + 3600)).await;
        assert_eq!(
            (r[0][0].as_i64(), r[0][1].as_str(), r[0][2].as_str()),
            (Some(403), Some("OpenAITokenQuotaExceeded"), Some("llm-token-limit")),
            "{sub}: {r:?}"
        );
        let ok: i64 = r.iter().map(|x| x[4].as_i64().unwrap()).sum();
        assert!((1..40).contains(&ok), "{sub}: about 20,000 tokens of answers, then 403s: {r:?}");
        // A new hour, a new quota.
        let r = rows(&emu, &q(sub, PEAK + 3600, PEAK + 3720)).await;
        assert!(r.iter().any(|x| x[0] == 200), "{sub} after the hour: {r:?}");
    }
    let msg = rows(&emu, &format!("ApiManagementGatewayLogs | where ResponseCode == 403 and TimeGenerated < datetime({}) | top 1 by TimeGenerated asc | project LastErrorMessage", iso(PEAK + 600))).await;
    let msg = msg[0][0].as_str().unwrap();
    assert!(msg.starts_with("Token quota is exceeded. Try again in ") && msg.contains(" minutes and "), "{msg}");
    let r = rows(&emu, &q("growth", PEAK, PEAK + 3600)).await;
    let limited = r.iter().find(|x| x[1] == "RateLimitExceeded").unwrap_or_else(|| panic!("{r:?}"));
    assert_eq!((limited[0].as_i64(), limited[2].as_str()), (Some(429), Some("rate-limit-by-key")));
    let ok: i64 = r.iter().map(|x| x[4].as_i64().unwrap()).sum();
    assert!(ok <= 10 * 60 + 10, "at most 10 calls per sliding minute: {ok}");
    assert!(ok >= 10 * 50, "the limit is reached every minute at peak: {ok}");
}
