//! Telemetry benchmark (results in `emulator/BENCHMARKS.md`):
//!
//! 1. a week of history for the seeded tenant: simulation, then loading the log tables;
//! 2. a week of history for a 50-subscription tenant sharing the same East US capacity;
//! 3. `summarize … by ApimSubscriptionId, bin(TimeGenerated, 1h)` over about a million gateway-log
//!    rows through the Log Analytics endpoint (HTTP, in-process server), first call (includes
//!    loading) and warm calls.
//!
//! `cargo run --release -p aigw-emulator --example bench_telemetry`

use std::time::{Duration, Instant};

use aigw_emulator::store::Entity;
use aigw_emulator::telemetry::profile::{Curve, Profile};
use aigw_emulator::telemetry::{SANDBOX_WORKSPACE_ID, TelemetryOptions};
use aigw_emulator::{Emulator, Options, sandbox_service_id};
use serde_json::json;

/// 2026-11-24T10:00:00Z.
const START: i64 = 1_795_514_400;
const RUNS: usize = 5;

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    println!("## Seeded tenant, one week ({RUNS} runs)");
    let mut sims = Vec::new();
    let mut loads = Vec::new();
    let mut rows = 0;
    for _ in 0..RUNS {
        let emu = Emulator::new(options(None))?;
        let (s, l, n) = fill(&emu);
        sims.push(s);
        loads.push(l);
        rows = n;
    }
    report(&sims, &loads, rows);
    println!("peak RSS so far: {} MB", peak_rss_mb());

    println!("\n## 50 subscriptions, one week ({RUNS} runs)");
    let profiles = fifty_profiles();
    let mut sims = Vec::new();
    let mut loads = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let emu = Emulator::new(options(Some(profiles.clone())))?;
        add_subscriptions(&emu, 50);
        let (s, l, n) = fill(&emu);
        sims.push(s);
        loads.push(l);
        rows = n;
        last = Some(emu);
    }
    report(&sims, &loads, rows);
    let emu = last.expect("ran");
    let check = emu.telemetry().with(emu.store(), |sim, _| {
        let t = sim.data.tables(|_| true);
        let q = "ApiManagementGatewayLogs | summarize n = count(), e429 = countif(ResponseCode == 429) by ApimSubscriptionId | summarize subs = count(), requests = sum(n), throttled = sum(e429)";
        aigw_kql::run(q, &t, aigw_kql::DateTime::from_unix_seconds(START).expect("valid"), None).expect("query").row(0)
    });
    println!("check: {check:?}");

    println!("\n## Through the Log Analytics endpoint ({} gateway-log rows)", rows);
    let query = "ApiManagementGatewayLogs | summarize requests = count(), throttled = countif(ResponseCode == 429), bytes = sum(ResponseSize) by ApimSubscriptionId, bin(TimeGenerated, 1h)";
    rt.block_on(async {
        // A fresh emulator: the first query also loads the tables.
        let emu = Emulator::new(options(Some(profiles.clone()))).expect("emulator");
        add_subscriptions(&emu, 50);
        emu.telemetry().warm(emu.store());
        let running = emu.clone().serve("127.0.0.1:0".parse().expect("addr")).await.expect("serve");
        let http = reqwest::Client::new();
        let url = format!("{}/v1/workspaces/{SANDBOX_WORKSPACE_ID}/query", running.base_url);
        let call = || {
            let http = http.clone();
            let url = url.clone();
            async move {
                let t = Instant::now();
                let r = http.post(&url).bearer_auth("bench").json(&json!({"query": query})).send().await.expect("send");
                assert_eq!(r.status(), 200);
                let body = r.bytes().await.expect("body");
                let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
                (t.elapsed(), v["tables"][0]["rows"].as_array().map_or(0, Vec::len), body.len())
            }
        };
        let (first, n, bytes) = call().await;
        println!("first call (loads the tables): {first:?}, {n} result rows, {} KB", bytes / 1024);
        let mut warm = Vec::new();
        for _ in 0..7 {
            warm.push(call().await.0);
        }
        warm.sort();
        println!("warm calls: min {:?}, median {:?}, max {:?}", warm[0], warm[3], warm[6]);
        // The same through the metrics API: Requests per hour for a week, split by response code.
        let murl = format!(
            "{}{}/providers/Microsoft.Insights/metrics?api-version=2024-02-01&metricnames=Requests&interval=PT1H&timespan=P7D&$filter=GatewayResponseCode%20eq%20%27*%27",
            running.base_url,
            sandbox_service_id()
        );
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let r = http.get(&murl).bearer_auth("bench").send().await.expect("send");
            assert_eq!(r.status(), 200);
            let _ = r.bytes().await;
            times.push(t.elapsed());
        }
        times.sort();
        println!("metrics API, Requests by GatewayResponseCode, PT1H over P7D: median {:?}", times[2]);
        running.shutdown().await;
    });
    println!("\npeak RSS: {} MB", peak_rss_mb());
    Ok(())
}

fn options(profiles: Option<std::collections::BTreeMap<String, Profile>>) -> Options {
    Options::new("bench").with_telemetry(TelemetryOptions { start_unix: Some(START), profiles, ..Default::default() })
}

/// Simulates the history and loads every table; returns (simulate, load, gateway-log rows).
fn fill(emu: &Emulator) -> (Duration, Duration, usize) {
    let t = Instant::now();
    emu.telemetry().warm(emu.store());
    let sim = t.elapsed();
    let t = Instant::now();
    let tables = emu.telemetry().with(emu.store(), |sim, _| sim.data.tables(|_| true));
    (sim, t.elapsed(), tables[0].len())
}

fn report(sims: &[Duration], loads: &[Duration], rows: usize) {
    let mut totals: Vec<Duration> = sims.iter().zip(loads).map(|(a, b)| *a + *b).collect();
    let mut s = sims.to_vec();
    let mut l = loads.to_vec();
    s.sort();
    l.sort();
    totals.sort();
    let m = RUNS / 2;
    println!(
        "gateway-log rows {rows}; simulate min {:?} median {:?}; load tables min {:?} median {:?}; total min {:?} median {:?}",
        s[0], s[m], l[0], l[m], totals[0], totals[m]
    );
}

/// 50 teams sharing East US (1,000k TPM): each peaks at about 15k tokens per minute (750k in
/// all), with the seeded teams' mix of day shapes.
fn fifty_profiles() -> std::collections::BTreeMap<String, Profile> {
    let curves = [Curve::Business, Curve::AlwaysOn, Curve::Business, Curve::NightlyBatch, Curve::Business];
    (0..50)
        .map(|i| {
            let p = Profile {
                peak_rpm: 5.0,
                prompt_tokens: 2_400.0,
                completion_tokens: 600.0,
                curve: curves[i % curves.len()],
                weekend: 0.5,
                repeat_share: 0.2,
                deployment: "gpt-4o".into(),
                client_ips: vec![format!("10.70.{}.10", i)],
            };
            (format!("team-{i:02}"), p)
        })
        .collect()
}

/// Adds `n` active subscriptions `team-00…` in product `aoai` (limited by the product branch:
/// 100k TPM / 600 RPM each), then restarts the telemetry from that state.
fn add_subscriptions(emu: &Emulator, n: usize) {
    let scope = format!("{}/products/aoai", sandbox_service_id());
    emu.store()
        .write(|state| {
            let svc = state.services.values_mut().next().expect("sandbox");
            for i in 0..n {
                let name = format!("team-{i:02}");
                let props = json!({
                    "displayName": name, "scope": scope, "state": "active",
                    "ownerId": format!("{}/users/1", sandbox_service_id()),
                    "primaryKey": "k1", "secondaryKey": "k2", "createdDate": "2026-01-01T00:00:00Z"
                });
                let e = Entity {
                    name: name.clone(),
                    etag: "AAAA".into(),
                    properties: props.as_object().cloned().unwrap_or_default(),
                };
                svc.subscriptions.insert(name, e);
            }
            state.etag_seq.issue();
            Ok::<_, aigw_emulator::store::PersistError>(())
        })
        .expect("write");
    emu.telemetry().reset(emu.store().snapshot());
}

fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        })
        .unwrap_or(0)
        / 1024
}
