//! ARM control-plane benchmark for the emulator, over loopback only.
//!
//! Run: `cargo run --release -p aigw-emulator --example bench_arm`
//! Optional: `BENCH_SECONDS` (GET phase duration, default 5, max 30), `BENCH_CONNECTIONS`
//! (default 32), `BENCH_SUBSCRIPTIONS` (default 10000, max 50000).
//!
//! Phases (bounded in count and time):
//! 1. GET throughput: N keep-alive connections issue authenticated ARM GETs (service,
//!    subscription, backend, product, named value, API policy in rawxml) for a fixed time.
//!    Target: ≥ 20,000 GETs/s on 2 cores.
//! 2. Paging: create `BENCH_SUBSCRIPTIONS` more subscriptions through ARM PUTs, then list them
//!    page by page (100 per page, following `nextLink`) five times. Target: < 1 s per full
//!    listing of 10,000.
//!
//! The client is a minimal HTTP/1.1 keep-alive client on the same runtime (same 2 cores), so
//! the numbers include the client's cost.

use std::time::{Duration, Instant};

use aigw_emulator::{Emulator, Options, sandbox_service_id};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

const TOKEN: &str = "bench-token";
const V: &str = "2024-05-01";

struct Conn {
    io: BufStream<TcpStream>,
    host: String,
}

impl Conn {
    async fn open(addr: std::net::SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).await.expect("connect");
        s.set_nodelay(true).unwrap();
        Conn { io: BufStream::new(s), host: addr.to_string() }
    }

    async fn request(&mut self, method: &str, path: &str, body: Option<&str>) -> (u16, Vec<u8>) {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\n", self.host);
        if let Some(b) = body {
            req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
        }
        req.push_str("\r\n");
        if let Some(b) = body {
            req.push_str(b);
        }
        self.io.write_all(req.as_bytes()).await.unwrap();
        self.io.flush().await.unwrap();
        let mut line = String::new();
        self.io.read_line(&mut line).await.unwrap();
        let status: u16 = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            self.io.read_line(&mut line).await.unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        self.io.read_exact(&mut body).await.unwrap();
        (status, body)
    }
}

fn env(name: &str, default: u64, max: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default).min(max)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds = env("BENCH_SECONDS", 5, 30);
    let connections = env("BENCH_CONNECTIONS", 32, 256) as usize;
    let subs = env("BENCH_SUBSCRIPTIONS", 10_000, 50_000) as usize;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);

    let emu = Emulator::new(Options::new(TOKEN)).unwrap();
    let running = emu.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = running.local_addr;
    let sid = sandbox_service_id();
    println!("bench_arm: emulator at {} ({cores} cores visible, {connections} connections)", running.base_url);

    // Phase 1: GET throughput.
    let paths: Vec<String> = [
        String::new(),
        "/subscriptions/growth".into(),
        "/backends/aoai-pool".into(),
        "/products/aoai".into(),
        "/namedValues/tpm-data-science".into(),
        "/apis/inference-api/policies/policy?format=rawxml".into(),
    ]
    .iter()
    .map(|p| {
        let sep = if p.contains('?') { '&' } else { '?' };
        format!("{sid}{p}{sep}api-version={V}")
    })
    .collect();
    let warmup = Instant::now() + Duration::from_millis(500);
    let deadline = warmup + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let paths = paths.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let mut n = 0u64;
            let mut lat = Vec::with_capacity(1 << 16);
            let mut i = c;
            loop {
                let t = Instant::now();
                if t >= deadline {
                    break;
                }
                let (status, _) = conn.request("GET", &paths[i % paths.len()], None).await;
                assert_eq!(status, 200);
                i += 1;
                if t >= warmup {
                    n += 1;
                    lat.push(t.elapsed().as_micros() as u32);
                }
            }
            (n, lat)
        }));
    }
    let mut total = 0u64;
    let mut lat = Vec::new();
    for t in tasks {
        let (n, l) = t.await.unwrap();
        total += n;
        lat.extend(l);
    }
    lat.sort_unstable();
    let pct =
        |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(0);
    let rps = total as f64 / seconds as f64;
    println!(
        "GET throughput: {total} GETs in {seconds} s = {rps:.0} GETs/s (p50 {} µs, p99 {} µs) — target ≥ 20,000/s: {}",
        pct(0.50),
        pct(0.99),
        if rps >= 20_000.0 { "PASS" } else { "FAIL" }
    );

    // Phase 2: create subscriptions, then list them page by page.
    let t = Instant::now();
    let per = subs.div_ceil(connections);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let sid = sid.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            for i in (c * per)..((c + 1) * per).min(subs) {
                let body = format!(
                    r#"{{"properties":{{"displayName":"Bench team {i}","scope":"/products/aoai","state":"active"}}}}"#
                );
                let (status, _) = conn
                    .request("PUT", &format!("{sid}/subscriptions/bench-{i:05}?api-version={V}"), Some(&body))
                    .await;
                assert_eq!(status, 201);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let created = t.elapsed();
    println!(
        "created {subs} subscriptions through ARM PUT in {:.2} s ({:.0} PUTs/s)",
        created.as_secs_f64(),
        subs as f64 / created.as_secs_f64()
    );

    let mut conn = Conn::open(addr).await;
    let mut times = Vec::new();
    let mut pages = 0;
    let mut items = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let mut path = format!("{sid}/subscriptions?api-version={V}");
        pages = 0;
        items = 0;
        loop {
            let (status, body) = conn.request("GET", &path, None).await;
            assert_eq!(status, 200);
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            pages += 1;
            items += v["value"].as_array().unwrap().len();
            match v.get("nextLink").and_then(|l| l.as_str()) {
                Some(next) => {
                    let rest = next.split_once("://").map(|(_, r)| r).unwrap_or(next);
                    path = rest[rest.find('/').unwrap()..].to_string();
                }
                None => break,
            }
        }
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "paged listing of {items} subscriptions ({pages} pages of ≤100): best {:.0} ms, median {:.0} ms, worst {:.0} ms — target < 1 s: {}",
        times[0].as_secs_f64() * 1000.0,
        times[2].as_secs_f64() * 1000.0,
        times[4].as_secs_f64() * 1000.0,
        if times[4] < Duration::from_secs(1) { "PASS" } else { "FAIL" }
    );
    running.shutdown().await;
}
