//! Telemetry benchmark: simulates a week of history for the seeded tenant and for a 50-subscription
//! tenant, loads the log tables, and times KQL queries through the Log Analytics endpoint.
//!
//! `cargo run --release -p aigw-emulator --example bench_telemetry`

use std::time::Instant;

use aigw_emulator::telemetry::TelemetryOptions;
use aigw_emulator::{Emulator, Options};

fn main() -> anyhow::Result<()> {
    let start = 1_795_514_400; // 2026-11-24T10:00:00Z
    let opts = Options::new("bench").with_telemetry(TelemetryOptions { start_unix: Some(start), ..Default::default() });
    let emu = Emulator::new(opts)?;
    let t = Instant::now();
    emu.telemetry().warm(emu.store());
    let sim_time = t.elapsed();
    let t = Instant::now();
    let tables = emu.telemetry().with(emu.store(), |sim, _| sim.data.tables(|_| true));
    let load_time = t.elapsed();
    let now = aigw_kql::DateTime::from_unix_seconds(start).unwrap();
    println!(
        "seeded tenant: simulate {sim_time:?}, load tables {load_time:?}, rows {}, peak RSS {} MB",
        tables[0].len(),
        peak_rss_mb()
    );
    for q in [
        "ApiManagementGatewayLogs | summarize n=count(), e429=countif(ResponseCode == 429), gw429=countif(ResponseCode == 429 and isempty(BackendResponseCode)) by ApimSubscriptionId | order by ApimSubscriptionId asc",
        "ApiManagementGatewayLlmLog | join kind=inner ApiManagementGatewayLogs on CorrelationId | summarize tok=sum(TotalTokens) by ApimSubscriptionId, bin(TimeGenerated, 1m) | summarize peak=max(tok), p99=percentile(tok, 99), p50=percentile(tok, 50) by ApimSubscriptionId | order by ApimSubscriptionId asc",
        "ApiManagementGatewayLogs | summarize count() by ResponseCode, BackendResponseCode, LastErrorReason | order by count_ desc",
    ] {
        let t = Instant::now();
        let r = aigw_kql::run(q, &tables, now, None).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        println!("{:?} {}", t.elapsed(), q);
        for i in 0..r.len() {
            println!("   {:?}", r.row(i));
        }
    }
    Ok(())
}

fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0))
        })
        .unwrap_or(0)
        / 1024
}
