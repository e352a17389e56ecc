//! Benchmark: `list_subscriptions` over a 10,000-subscription tenant with 5 ms of injected
//! latency on every ARM call (issue 6's budget: under 1 s), and an `update_quota` dry run.
//!
//! Run: `cargo build --release && cargo run --release -p azure-ai-gateway-mcp --example bench_quota`
//! It starts the emulator in-process on loopback, adds subscriptions through ARM PUTs, then
//! drives the release binary in `serve` mode over stdio with raw JSON-RPC.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

const TOKEN: &str = "bench-quota-token";
const SUBSCRIPTIONS: usize = 10_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let emulator =
        aigw_emulator::Emulator::new(aigw_emulator::Options::new(TOKEN))?.serve("127.0.0.1:0".parse()?).await?;
    let service = aigw_emulator::sandbox_service_id();
    let http = reqwest::Client::new();
    let base = emulator.base_url.clone();
    let existing = 6;
    let started = Instant::now();
    let results: Vec<bool> = futures::stream::iter(0..SUBSCRIPTIONS - existing)
        .map(|i| {
            let (http, base, service) = (http.clone(), base.clone(), service.clone());
            async move {
                let url = format!("{base}{service}/subscriptions/team-{i:05}?api-version=2024-05-01");
                let body = json!({"properties": {"displayName": format!("Team {i}"), "scope": "/products/aoai", "state": "active"}});
                http.put(url).bearer_auth(TOKEN).json(&body).send().await.map(|r| r.status().is_success()).unwrap_or(false)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    anyhow::ensure!(results.iter().all(|ok| *ok), "could not create the subscriptions");
    eprintln!("created {} subscriptions in {:?}", results.len(), started.elapsed());
    let fault = http.post(format!("{base}/_emulator/faults")).json(&json!({"latencyMs": 5})).send().await?;
    anyhow::ensure!(fault.status().is_success(), "could not inject latency");

    let exe = std::env::current_exe()?;
    let binary = exe.parent().and_then(|p| p.parent()).map(|p| p.join("azure-ai-gateway-mcp")).unwrap();
    anyhow::ensure!(binary.exists(), "build the host first: cargo build --release ({})", binary.display());
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("config.toml"), "")?;
    let mut child = Command::new(&binary)
        .args(["serve", "--service-id", &service, "--arm-endpoint", &base])
        .env("AIGW_ARM_BEARER_TOKEN", TOKEN)
        .env("AIGW_PLUGINS_DIR", dir.path().join("plugins"))
        .env("AIGW_CONFIG", dir.path().join("config.toml"))
        .env("AIGW_CACHE_DIR", dir.path().join("cache"))
        .env("AIGW_JOURNAL", dir.path().join("journal.jsonl"))
        .env("AIGW_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut next_id = 0u64;
    let mut rpc = |method: &str, params: Value| -> anyhow::Result<(Value, Duration)> {
        next_id += 1;
        let started = Instant::now();
        writeln!(stdin, "{}", json!({"jsonrpc": "2.0", "id": next_id, "method": method, "params": params}))?;
        stdin.flush()?;
        loop {
            let mut line = String::new();
            anyhow::ensure!(stdout.read_line(&mut line)? > 0, "the server exited");
            let message: Value = serde_json::from_str(&line)?;
            if message["id"] == next_id {
                return Ok((message, started.elapsed()));
            }
        }
    };
    rpc(
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}),
    )?;

    let mut rows = Vec::new();
    for _ in 0..2 {
        let (answer, elapsed) = rpc("tools/call", json!({"name": "list_subscriptions", "arguments": {}}))?;
        rows.push((
            "list_subscriptions {} (first page)".to_string(),
            elapsed,
            answer["result"]["structuredContent"]["total"].clone(),
        ));
    }
    let mut cursor: Option<String> = None;
    let all = Instant::now();
    let mut calls = 0;
    let mut seen = 0;
    loop {
        let mut args = json!({"limit": 1000});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let (answer, elapsed) = rpc("tools/call", json!({"name": "list_subscriptions", "arguments": args}))?;
        let result = &answer["result"]["structuredContent"];
        anyhow::ensure!(answer["result"]["isError"] == false, "list failed: {answer}");
        calls += 1;
        seen += result["returned"].as_u64().unwrap_or(0);
        if calls == 1 {
            rows.push(("list_subscriptions {limit: 1000}".to_string(), elapsed, result["total"].clone()));
        }
        match result["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    rows.push((format!("all {seen} rows, {calls} calls of limit 1000"), all.elapsed(), json!(seen)));
    let (answer, elapsed) = rpc(
        "tools/call",
        json!({"name": "update_quota", "arguments": {"subscription_id": "growth", "tpm": 100000, "dry_run": true}}),
    )?;
    anyhow::ensure!(answer["result"]["isError"] == false, "dry run failed: {answer}");
    rows.push(("update_quota growth dry run".to_string(), elapsed, json!(1)));

    println!("| measurement (10,000 subscriptions, +5 ms per ARM call) | wall time | rows |");
    println!("|---|---|---|");
    for (name, elapsed, n) in rows {
        println!("| {name} | {:.0} ms | {n} |", elapsed.as_secs_f64() * 1000.0);
    }
    drop(stdin);
    let _ = child.wait();
    emulator.shutdown().await;
    Ok(())
}
