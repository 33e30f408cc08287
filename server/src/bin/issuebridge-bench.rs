//! `make bench`: how fast issuebridge acknowledges signed webhooks, measured
//! on this machine with the load generated on loopback, written into
//! BENCHMARKS.md with the machine it ran on.
//!
//! It starts the release server as a separate process (so its peak memory is
//! its own), once on SQLite and once on PostgreSQL when a server is
//! reachable, and drives it with Sentry-signed deliveries: first as fast as
//! 64 concurrent senders can, then at a fixed 2,000 per second for latency.
//! Afterwards it counts the stored deliveries: every acknowledged one must
//! be there.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use issuebridge::sentry::signature::sign;
use issuebridge::store::Store;
use tokio::io::{AsyncBufReadExt, BufReader};

const SECRET: &str = "bench-client-secret";
const CONCURRENCY: usize = 64;
const FIXED_RATE: u64 = 2_000;

struct Figures {
    backend: &'static str,
    max_acked_per_sec: f64,
    max_p50_ms: f64,
    max_p99_ms: f64,
    fixed_p50_ms: f64,
    fixed_p99_ms: f64,
    fixed_achieved: f64,
    acked: u64,
    stored: i64,
    peak_rss_mb: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let server = std::env::var("ISSUEBRIDGE_BENCH_SERVER").unwrap_or_else(|_| "target/release/issuebridge".into());
    let out = std::env::var("BENCH_OUT").unwrap_or_else(|_| "BENCHMARKS.md".into());

    let mut results = Vec::new();
    let dir = tempfile::tempdir()?;
    let sqlite_url = format!("sqlite://{}/bench.db", dir.path().display());
    results.push(run("SQLite", &server, &sqlite_url, dir.path(), seconds).await?);
    match postgres_database().await {
        Some((url, _guard)) => results.push(run("PostgreSQL", &server, &url, dir.path(), seconds).await?),
        None => eprintln!("PostgreSQL is not reachable: measuring SQLite only"),
    }
    let mut report = report(&results, seconds);
    // Notes written by people below the figures survive a new run.
    if let Ok(previous) = std::fs::read_to_string(&out) {
        if let Some(at) = previous.find("\n## Notes") {
            report.push_str(&previous[at..]);
        }
    }
    std::fs::write(&out, &report)?;
    println!("{report}");
    Ok(())
}

async fn run(
    backend: &'static str,
    server: &str,
    database_url: &str,
    data_dir: &std::path::Path,
    seconds: u64,
) -> anyhow::Result<Figures> {
    eprintln!("{backend}: starting the server");
    let mut child = tokio::process::Command::new(server)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("ISSUEBRIDGE_DATA_DIR", data_dir)
        .env("ISSUEBRIDGE_SECRET_KEY", "42".repeat(32))
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("SENTRY_URL", "http://127.0.0.1:9")
        .env("SENTRY_CLIENT_ID", "bench")
        .env("SENTRY_CLIENT_SECRET", SECRET)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().unwrap_or_default();
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let base = loop {
        let line = lines.next_line().await?.ok_or_else(|| anyhow::anyhow!("the server exited"))?;
        if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            break url.trim_end_matches('/').to_owned();
        }
    };
    let url = format!("{base}/sentry/webhook");
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build()?;
    let sequence = Arc::new(AtomicU64::new(0));

    eprintln!("{backend}: {seconds} s as fast as {CONCURRENCY} senders go");
    let (latencies_max, elapsed) = saturate(&client, &url, &sequence, Duration::from_secs(seconds)).await;
    eprintln!("{backend}: {seconds} s at {FIXED_RATE}/s");
    let (latencies_fixed, fixed_elapsed) = fixed_rate(&client, &url, &sequence, Duration::from_secs(seconds)).await;

    let peak_rss_mb = peak_rss_kb(pid) as f64 / 1024.0;
    let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;

    let store =
        Store::connect(&issuebridge::config::DatabaseUrl::parse(database_url).map_err(anyhow::Error::msg)?).await?;
    let stored = store.count_deliveries().await?;
    store.close().await;
    Ok(Figures {
        backend,
        max_acked_per_sec: latencies_max.len() as f64 / elapsed.as_secs_f64(),
        max_p50_ms: percentile(&latencies_max, 0.50),
        max_p99_ms: percentile(&latencies_max, 0.99),
        fixed_p50_ms: percentile(&latencies_fixed, 0.50),
        fixed_p99_ms: percentile(&latencies_fixed, 0.99),
        fixed_achieved: latencies_fixed.len() as f64 / fixed_elapsed.as_secs_f64(),
        acked: (latencies_max.len() + latencies_fixed.len()) as u64,
        stored,
        peak_rss_mb,
    })
}

/// One distinct, signed `issue.created`-shaped delivery.
fn delivery(n: u64) -> (Vec<u8>, String) {
    let body = format!(
        r#"{{"action":"created","installation":{{"uuid":"7a485448-a9e2-4c85-8a3c-4f44175783c9"}},"data":{{"issue":{{"id":"{n}","shortId":"WEB-{n}","title":"TypeError in checkout","status":"unresolved","project":{{"id":"1","slug":"web"}}}}}},"actor":{{"type":"application","id":"sentry","name":"Sentry"}}}}"#
    );
    let signature = sign(SECRET.as_bytes(), body.as_bytes());
    (body.into_bytes(), signature)
}

async fn send(client: &reqwest::Client, url: &str, n: u64) -> Option<Duration> {
    let (body, signature) = delivery(n);
    let started = Instant::now();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("sentry-hook-resource", "issue")
        .header("sentry-hook-signature", signature)
        .header("request-id", format!("{n:032x}"))
        .body(body)
        .send()
        .await
        .ok()?;
    response.status().is_success().then(|| started.elapsed())
}

async fn saturate(
    client: &reqwest::Client,
    url: &str,
    sequence: &Arc<AtomicU64>,
    length: Duration,
) -> (Vec<f64>, Duration) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, url, sequence) = (client.clone(), url.to_owned(), sequence.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while started.elapsed() < length {
                    let n = sequence.fetch_add(1, Ordering::Relaxed);
                    if let Some(latency) = send(&client, &url, n).await {
                        latencies.push(latency.as_secs_f64() * 1000.0);
                    }
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap_or_default());
    }
    (all, started.elapsed())
}

async fn fixed_rate(
    client: &reqwest::Client,
    url: &str,
    sequence: &Arc<AtomicU64>,
    length: Duration,
) -> (Vec<f64>, Duration) {
    let started = Instant::now();
    let total = FIXED_RATE * length.as_secs();
    let mut handles = Vec::with_capacity(total as usize);
    for i in 0..total {
        // Open-loop: each request leaves at its scheduled time, whatever
        // the answers before it do.
        let due = started + Duration::from_secs_f64(i as f64 / FIXED_RATE as f64);
        tokio::time::sleep_until(due.into()).await;
        let (client, url) = (client.clone(), url.to_owned());
        let n = sequence.fetch_add(1, Ordering::Relaxed);
        handles.push(tokio::spawn(async move { send(&client, &url, n).await }));
    }
    let mut latencies = Vec::new();
    for handle in handles {
        if let Ok(Some(latency)) = handle.await {
            latencies.push(latency.as_secs_f64() * 1000.0);
        }
    }
    (latencies, started.elapsed())
}

fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// A fresh database on the local PostgreSQL, dropped afterwards.
async fn postgres_database() -> Option<(String, issuebridge::store::testing::TestDatabase)> {
    let db = issuebridge::store::testing::TestDatabase::postgres().await?;
    Some((db.url.expose().to_owned(), db))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let memory_gb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next()?.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores ({cpu}), {memory_gb:.0} GiB memory, Linux {}", kernel.trim())
}

fn report(results: &[Figures], seconds: u64) -> String {
    let mut out = String::from("# Benchmarks\n\n");
    out.push_str("Written by `make bench` (server/src/bin/issuebridge-bench.rs); edit only the Notes section, which a new run keeps.\n\n");
    out.push_str(&format!("- Machine: {}\n", machine()));
    out.push_str(&format!("- Date: {}\n", issuebridge::sentry::api::format_datetime_ms(issuebridge::store::now_ms())));
    out.push_str(&format!(
        "- Method: the release server as its own process; Sentry-signed deliveries from the same machine over loopback (HTTP/1.1 keep-alive); {seconds} s with {CONCURRENCY} concurrent senders, then {seconds} s open-loop at {FIXED_RATE}/s. Client and server share the cores.\n\n"
    ));
    out.push_str("| Store | Acked/s (max) | p50 / p99 at max (ms) | At 2,000/s: achieved, p50 / p99 (ms) | Acked | Stored | Lost | Peak RSS (MB) |\n");
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for r in results {
        out.push_str(&format!(
            "| {} | {:.0} | {:.2} / {:.2} | {:.0}/s, {:.2} / {:.2} | {} | {} | {} | {:.1} |\n",
            r.backend,
            r.max_acked_per_sec,
            r.max_p50_ms,
            r.max_p99_ms,
            r.fixed_achieved,
            r.fixed_p50_ms,
            r.fixed_p99_ms,
            r.acked,
            r.stored,
            (r.acked as i64 - r.stored).max(0),
            r.peak_rss_mb
        ));
    }
    out.push_str("\nTargets from the webhook issue: at least 10,000 acknowledged/s on SQLite, p99 at most 10 ms at 2,000/s, peak RSS at most 64 MB, none lost. Deliveries applied per second by the worker are not measured yet: the worker handles only the `installation` resource so far.\n");
    out
}
