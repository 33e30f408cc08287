//! `make bench`: how fast issuebridge acknowledges signed webhooks, measured
//! on this machine with the load generated on loopback, written into
//! BENCHMARKS.md with the machine it ran on.
//!
//! It starts the release server as a separate process (so its peak memory is
//! its own), once on SQLite and once on PostgreSQL when a server is
//! reachable, and drives it with Sentry-signed deliveries, each a distinct
//! `issue.created` of Sentry's real size: first as fast as 32 connections
//! can, then at a fixed 2,000 per second for latency. The worker runs all
//! along, as in production, applying what is acknowledged; the bench notes
//! how far it got when the load stopped and how long the rest took.
//! Afterwards it counts the stored deliveries: every acknowledged one must
//! be there.
//!
//! Then two more measurements on the same database: how fast the worker
//! applies a backlog (the server restarted over 100,000 pending deliveries of
//! mixed resources), and how fast the delivery log pages once it holds a
//! million rows.
//!
//! Last, the UI components Sentry calls, with 100,000 tickets in the
//! installation: ticket search by `query`, issue-link create and the
//! stacktrace link, one request at a time (latency at the HTTP boundary
//! over loopback, as Sentry's single request while a person types sees it).
//!
//! With the figures, where the time went ([`usage`]): the CPU of the
//! server, of the bench and of PostgreSQL while each webhook part ran, and
//! one statement's round trip to each database.
//!
//! `BENCH_PHASES=components` (or `webhooks`, `outbox`) runs one part only,
//! `BENCH_PHASES=backlog` the worker's backlog alone;
//! `BENCH_STORES=sqlite` (or `postgres`) one store only.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use issuebridge::config::DatabaseUrl;
use issuebridge::domain::deliveries::{DeliveryFilter, DeliveryState};
use issuebridge::domain::ids::InstallationUuid;
use issuebridge::domain::time::now_ms;
use issuebridge::sentry::signature::sign;
use issuebridge::store::{DeliveryQuery, NewDelivery, Store};
use tokio::io::{AsyncBufReadExt, BufReader};

#[path = "../bench/soak.rs"]
mod soak;
#[path = "../bench/usage.rs"]
mod usage;

use usage::{CpuSnapshot, CpuUsage, RoundTrip};

const SECRET: &str = "bench-client-secret";
/// Connections the load comes over, as a load tester such as wrk opens
/// them (Sentry's workers send from many).
const CONCURRENCY: usize = 32;
const FIXED_RATE: u64 = 2_000;
/// The installation every delivery is addressed to; installed beforehand so
/// the worker applies what arrives.
const INSTALLATION: &str = "7a485448-a9e2-4c85-8a3c-4f44175783c9";
/// Pending deliveries the restarted server's worker drains.
const APPLY_BACKLOG: u64 = 100_000;
/// Rows the delivery log holds when its paging is timed.
const LOG_ROWS: i64 = 1_000_000;

#[derive(Default)]
struct Figures {
    backend: &'static str,
    /// The UI components, p50 and p99 in ms, when measured.
    components: Option<ComponentFigures>,
    /// The sync back to Sentry, when measured.
    outbox: Option<OutboxFigures>,
    max_acked_per_sec: f64,
    max_p50_ms: f64,
    max_p99_ms: f64,
    fixed_p50_ms: f64,
    fixed_p99_ms: f64,
    fixed_achieved: f64,
    /// Deliveries finished by the worker (applied, ignored or dead) when
    /// the load stopped, and the seconds it then took to finish the rest.
    applied_during_load: i64,
    rest_applied_secs: f64,
    acked: u64,
    stored: i64,
    peak_rss_mb: f64,
    backlog: i64,
    /// Seconds the worker took to apply the backlog.
    backlog_secs: f64,
    applied_per_sec: f64,
    apply_failed: i64,
    apply_peak_rss_mb: f64,
    log_rows: i64,
    /// What was asked of the delivery log, and the median milliseconds.
    paging: Vec<(&'static str, f64)>,
    /// How the machine's CPU was shared while the load ran as fast as it
    /// could, at the fixed rate, and while the worker drained the backlog.
    cpu_max: Option<CpuUsage>,
    cpu_fixed: Option<CpuUsage>,
    cpu_backlog: Option<CpuUsage>,
    /// One statement's round trip to the database, measured before the
    /// server starts.
    round_trip: Option<RoundTrip>,
}

/// p50 / p99 (ms) of each component with [`TICKETS`] tickets.
struct ComponentFigures {
    tickets: i64,
    search: (f64, f64),
    create: (f64, f64),
    stacktrace: (f64, f64),
}

/// The sync back to Sentry, against the simulator.
struct OutboxFigures {
    /// Status changes queued at once, and how fast the sender sent them.
    items: usize,
    sent_per_sec: f64,
    /// Calls the simulator answered for them (each sent once: `items`).
    calls: usize,
    /// From a console change (the server function's request) until the
    /// simulated Sentry's issue has the new status: p50 / p99 ms.
    latency: (f64, f64),
    latency_samples: usize,
}

/// Status changes queued at once for the outbox's throughput.
const OUTBOX_ITEMS: usize = 2_000;
/// Console changes timed one at a time.
const OUTBOX_LATENCY_SAMPLES: usize = 200;
/// The installation the outbox is measured in (its Sentry is the simulator).
const SYNC_INSTALLATION: &str = "3f7d2c1e-5b6a-4c8d-9e0f-112233445566";
const BENCH_ADMIN: &str = "bench@issuebridge.bench";

/// Tickets in the installation while the components are measured.
const TICKETS: i64 = 100_000;
/// Requests per component.
const COMPONENT_REQUESTS: usize = 2_000;

/// The release server running as its own process.
struct Server {
    child: tokio::process::Child,
    pid: u32,
    base: String,
}

impl Server {
    async fn start(server: &str, database_url: &str, data_dir: &std::path::Path) -> anyhow::Result<Self> {
        Self::start_with(server, database_url, data_dir, "http://127.0.0.1:9", SECRET).await
    }

    /// Started against `sentry_url` (the simulator, for the outbox) with
    /// that Sentry's client secret.
    async fn start_with(
        server: &str,
        database_url: &str,
        data_dir: &std::path::Path,
        sentry_url: &str,
        client_secret: &str,
    ) -> anyhow::Result<Self> {
        let mut child = tokio::process::Command::new(server)
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("ISSUEBRIDGE_DATA_DIR", data_dir)
            .env("ISSUEBRIDGE_SECRET_KEY", "42".repeat(32))
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .env("SENTRY_URL", sentry_url)
            .env("SENTRY_CLIENT_ID", "bench")
            .env("SENTRY_CLIENT_SECRET", client_secret)
            .env("ISSUEBRIDGE_ADMINS", BENCH_ADMIN)
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
        Ok(Self { child, pid, base })
    }

    /// Stops it as an operator would (SIGTERM, graceful); returns its peak
    /// memory in MB.
    async fn stop(mut self) -> f64 {
        let peak = peak_rss_kb(self.pid) as f64 / 1024.0;
        let _ = std::process::Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        peak
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let server = std::env::var("ISSUEBRIDGE_BENCH_SERVER").unwrap_or_else(|_| "target/release/issuebridge".into());

    let phases = std::env::var("BENCH_PHASES").unwrap_or_else(|_| "webhooks,components,outbox".into());
    if phases == "soak" {
        let seconds: u64 = std::env::var("SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
        let figures = soak::soak(&server, seconds).await?;
        let date = issuebridge::sentry::api::format_datetime_ms(now_ms());
        let section = soak::report(&figures, &machine(), &date);
        let out = std::env::var("BENCH_OUT").unwrap_or_else(|_| "BENCHMARKS.md".into());
        let previous = std::fs::read_to_string(&out).unwrap_or_default();
        // The soak's section sits at the end, after the notes, which a
        // new `make bench` keeps; a new soak replaces only its own.
        let kept = match previous.find("## Soak (`make soak`)") {
            Some(at) => previous[..at].trim_end().to_owned(),
            None => previous.trim_end().to_owned(),
        };
        std::fs::write(&out, format!("{kept}\n\n{section}"))?;
        println!("{section}");
        return Ok(());
    }
    let phases = Phases {
        webhooks: phases.contains("webhooks"),
        components: phases.contains("components"),
        outbox: phases.contains("outbox"),
        backlog_only: phases == "backlog",
    };
    // A run of one part leaves BENCHMARKS.md alone unless told otherwise.
    let everything = phases.webhooks && phases.components && phases.outbox;
    let default_out = if everything { "BENCHMARKS.md" } else { "target/bench-partial.md" };
    let out = std::env::var("BENCH_OUT").unwrap_or_else(|_| default_out.into());
    let mut results = Vec::new();
    let dir = tempfile::tempdir()?;
    // `BENCH_STORES=postgres` (or `sqlite`) measures one store only.
    let stores = std::env::var("BENCH_STORES").unwrap_or_else(|_| "sqlite,postgres".into());
    if stores.contains("sqlite") {
        let sqlite_url = format!("sqlite://{}/bench.db", dir.path().display());
        results.push(run("SQLite", &server, &sqlite_url, dir.path(), seconds, phases).await?);
    }
    if stores.contains("postgres") {
        match postgres_database().await {
            Some((url, _guard)) => results.push(run("PostgreSQL", &server, &url, dir.path(), seconds, phases).await?),
            None => eprintln!("PostgreSQL is not reachable: measuring SQLite only"),
        }
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

#[derive(Debug, Clone, Copy)]
struct Phases {
    webhooks: bool,
    components: bool,
    outbox: bool,
    /// The worker's backlog without the load before it (to compare two
    /// builds of the worker quickly).
    backlog_only: bool,
}

async fn run(
    backend: &'static str,
    server: &str,
    database_url: &str,
    data_dir: &std::path::Path,
    seconds: u64,
    phases: Phases,
) -> anyhow::Result<Figures> {
    let url = DatabaseUrl::parse(database_url).map_err(anyhow::Error::msg)?;
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    issuebridge::store::testing::add_installed(&store, INSTALLATION, "bench").await?;
    let round_trip = match phases.webhooks || phases.backlog_only {
        true => Some(usage::statement_round_trip(database_url).await?),
        false => None,
    };
    let mut figures = if phases.webhooks {
        webhooks(backend, server, database_url, data_dir, seconds, &store).await?
    } else if phases.backlog_only {
        let drained = drain_backlog(server, database_url, data_dir, &store, &AtomicU64::new(0)).await?;
        Figures {
            backend,
            backlog: drained.backlog,
            backlog_secs: drained.secs,
            applied_per_sec: drained.applied_per_sec,
            apply_failed: drained.failed,
            apply_peak_rss_mb: drained.peak_rss_mb,
            cpu_backlog: Some(drained.cpu),
            ..Default::default()
        }
    } else {
        Figures { backend, ..Default::default() }
    };
    figures.round_trip = round_trip;
    if phases.components {
        figures.components = Some(components(backend, server, database_url, data_dir, &store).await?);
    }
    if phases.outbox {
        // A database of its own: the phases above leave the outbox full of
        // links for tickets of an installation whose Sentry is unreachable,
        // which would be drained here too and measured with it.
        let (url, _guard) = match backend {
            "PostgreSQL" => {
                let (url, guard) = postgres_database().await.ok_or_else(|| anyhow::anyhow!("PostgreSQL went away"))?;
                (url, Some(guard))
            }
            _ => (format!("sqlite://{}/outbox.db", data_dir.display()), None),
        };
        let outbox_store = Store::connect(&DatabaseUrl::parse(&url).map_err(anyhow::Error::msg)?).await?;
        outbox_store.migrate().await?;
        figures.outbox = Some(outbox(backend, server, &url, data_dir, &outbox_store).await?);
        outbox_store.close().await;
    }
    store.close().await;
    Ok(figures)
}

/// Webhook intake, the worker's backlog, and the delivery log's pages.
async fn webhooks(
    backend: &'static str,
    server: &str,
    database_url: &str,
    data_dir: &std::path::Path,
    seconds: u64,
    store: &Store,
) -> anyhow::Result<Figures> {
    eprintln!("{backend}: starting the server");
    let server_process = Server::start(server, database_url, data_dir).await?;
    let url = format!("{}/sentry/webhook", server_process.base);
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build()?;
    let sequence = Arc::new(AtomicU64::new(0));

    eprintln!("{backend}: {seconds} s as fast as {CONCURRENCY} senders go");
    let cpu = CpuSnapshot::take(server_process.pid);
    let (latencies_max, elapsed) = saturate(&client, &url, &sequence, Duration::from_secs(seconds)).await;
    let cpu_max = cpu.until_now(server_process.pid);
    eprintln!("{backend}: {seconds} s at {FIXED_RATE}/s");
    let cpu = CpuSnapshot::take(server_process.pid);
    let (latencies_fixed, fixed_elapsed) = fixed_rate(&client, &url, &sequence, Duration::from_secs(seconds)).await;
    let cpu_fixed = cpu.until_now(server_process.pid);
    // The worker ran all along: how far it got, then how long the rest takes.
    let applied_during_load = count_where(store, "state in ('processed', 'ignored', 'dead')").await?;
    let draining = Instant::now();
    while any_unfinished(store).await? {
        anyhow::ensure!(
            draining.elapsed() < Duration::from_secs(900),
            "the worker did not finish the load's deliveries"
        );
        tokio::time::sleep(POLL).await;
    }
    let rest_applied_secs = draining.elapsed().as_secs_f64();
    let peak_rss_mb = server_process.stop().await;
    let stored = store.count_deliveries().await?;
    let store = store.clone();

    let drained = drain_backlog(server, database_url, data_dir, &store, &sequence).await?;

    eprintln!("{backend}: the delivery log grows to {LOG_ROWS} rows");
    let log_rows = fill_log(&store, LOG_ROWS).await?;
    let paging = time_paging(&store).await?;
    Ok(Figures {
        backend,
        components: None,
        outbox: None,
        max_acked_per_sec: latencies_max.len() as f64 / elapsed.as_secs_f64(),
        max_p50_ms: percentile(&latencies_max, 0.50),
        max_p99_ms: percentile(&latencies_max, 0.99),
        fixed_p50_ms: percentile(&latencies_fixed, 0.50),
        fixed_p99_ms: percentile(&latencies_fixed, 0.99),
        fixed_achieved: latencies_fixed.len() as f64 / fixed_elapsed.as_secs_f64(),
        applied_during_load,
        rest_applied_secs,
        acked: (latencies_max.len() + latencies_fixed.len()) as u64,
        stored,
        peak_rss_mb,
        backlog: drained.backlog,
        backlog_secs: drained.secs,
        applied_per_sec: drained.applied_per_sec,
        apply_failed: drained.failed,
        apply_peak_rss_mb: drained.peak_rss_mb,
        log_rows,
        paging,
        cpu_max: Some(cpu_max),
        cpu_fixed: Some(cpu_fixed),
        cpu_backlog: Some(drained.cpu),
        round_trip: None,
    })
}

/// How the worker drained a backlog.
struct Drained {
    backlog: i64,
    secs: f64,
    applied_per_sec: f64,
    failed: i64,
    peak_rss_mb: f64,
    cpu: CpuUsage,
}

/// Stores [`APPLY_BACKLOG`] pending deliveries while the server is down,
/// starts it, and times its worker until none is pending.
async fn drain_backlog(
    server: &str,
    database_url: &str,
    data_dir: &std::path::Path,
    store: &Store,
    sequence: &AtomicU64,
) -> anyhow::Result<Drained> {
    eprintln!("the worker drains a backlog of {APPLY_BACKLOG} deliveries");
    let first = sequence.fetch_add(APPLY_BACKLOG, Ordering::Relaxed);
    let backlog: Vec<NewDelivery> = (first..first + APPLY_BACKLOG).map(mixed_delivery).collect();
    for chunk in backlog.chunks(1000) {
        store.insert_deliveries(chunk).await?;
    }
    let pending = unfinished(store).await?;
    let server_process = Server::start(server, database_url, data_dir).await?;
    let started = Instant::now();
    let cpu = CpuSnapshot::take(server_process.pid);
    loop {
        tokio::time::sleep(POLL).await;
        if !any_unfinished(store).await? {
            break;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(900), "the worker did not drain the backlog");
    }
    let elapsed = started.elapsed();
    let cpu = cpu.until_now(server_process.pid);
    let peak_rss_mb = server_process.stop().await;
    Ok(Drained {
        backlog: pending,
        secs: elapsed.as_secs_f64(),
        applied_per_sec: pending as f64 / elapsed.as_secs_f64(),
        failed: count_where(store, "state in ('dead', 'retry')").await?,
        peak_rss_mb,
        cpu,
    })
}

/// A stored delivery of the backlog: issue.created, error.created,
/// comment.created and issue.resolved in turn, each about an issue the
/// backlog created, as Sentry sends them.
fn mixed_delivery(n: u64) -> NewDelivery {
    let issue = n - n % 4;
    let envelope = |action: &str, data: String| {
        format!(
            r#"{{"action":"{action}","installation":{{"uuid":"{INSTALLATION}"}},"data":{data},"actor":{{"type":"application","id":"sentry","name":"Sentry"}}}}"#
        )
    };
    let group = format!(
        r#"{{"id":"{issue}","shortId":"WEB-{issue}","title":"TypeError in checkout {issue}","status":"unresolved","project":{{"id":"1","slug":"web"}}}}"#
    );
    let (resource, action, body) = match n % 4 {
        0 => ("issue", "created", envelope("created", format!(r#"{{"issue":{group}}}"#))),
        1 => (
            "error",
            "created",
            envelope(
                "created",
                format!(
                    r#"{{"error":{{"event_id":"{n:032x}","issue_id":"{issue}","title":"TypeError","datetime":"2026-11-27T10:00:00+00:00"}}}}"#
                ),
            ),
        ),
        2 => (
            "comment",
            "created",
            envelope(
                "created",
                format!(
                    r#"{{"comment_id":{n},"issue_id":{issue},"project_slug":"web","timestamp":"2026-11-27T10:00:00.000000Z","comment":"Looking into it"}}"#
                ),
            ),
        ),
        _ => ("issue", "resolved", envelope("resolved", format!(r#"{{"resolution_type":"now","issue":{group}}}"#))),
    };
    NewDelivery {
        received_at_ms: now_ms(),
        source: "webhook",
        request_id: Some(format!("{n:032x}")),
        resource: resource.into(),
        action: Some(action.into()),
        installation: Some(InstallationUuid::parse(INSTALLATION).expect("a uuid")),
        dedupe_key: format!("bench-backlog-{n}"),
        headers: format!(r#"{{"sentry-hook-resource":"{resource}","sentry-hook-timestamp":"{}"}}"#, now_ms() / 1000),
        body: body.into_bytes(),
        state: DeliveryState::Pending,
    }
}

/// Marks every pending outbox row failed; returns how many.
async fn settle_outbox(store: &Store) -> anyhow::Result<u64> {
    let sql = "update outbox set state = 'failed', last_error = 'the bench runs no Sentry' where state = 'pending'";
    Ok(match store {
        Store::Sqlite(pool) => sqlx::query(sql).execute(pool).await?.rows_affected(),
        Store::Postgres(pool) => sqlx::query(sql).execute(pool).await?.rows_affected(),
    })
}

async fn count_where(store: &Store, condition: &str) -> anyhow::Result<i64> {
    count(store, &format!("select count(*) from delivery where {condition}")).await
}

/// A `select count(*) …` on either store.
async fn count(store: &Store, sql: &str) -> anyhow::Result<i64> {
    Ok(match store {
        Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await?,
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await?,
    })
}

/// Deliveries the worker still has to finish.
async fn unfinished(store: &Store) -> anyhow::Result<i64> {
    count_where(store, "state in ('pending', 'processing')").await
}

/// How often the bench looks whether the worker is done. Counting the
/// unfinished deliveries every 50 ms read most of PostgreSQL's delivery
/// table each time once its rows outgrew the buffer cache, and slowed the
/// very worker it watched; this asks only whether one is left.
const POLL: Duration = Duration::from_millis(200);

async fn any_unfinished(store: &Store) -> anyhow::Result<bool> {
    let sql = "select exists (select 1 from delivery where state in ('pending', 'processing'))";
    Ok(match store {
        Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await?,
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await?,
    })
}

/// Adds processed-looking rows (one in a thousand dead, resources in turn)
/// until the log holds `rows`; returns how many it holds.
async fn fill_log(store: &Store, rows: i64) -> anyhow::Result<i64> {
    let missing = rows - store.count_deliveries().await?;
    let oldest = now_ms() - 30 * 86_400_000;
    let columns = "insert into delivery (received_at, source, resource, action, installation_uuid, dedupe_key,
                                         headers, body, state, attempts, processed_at)";
    let values = "$2 + i * 2000, 'webhook',
                  case i % 5 when 0 then 'issue' when 1 then 'error' when 2 then 'comment'
                             when 3 then 'event_alert' else 'metric_alert' end,
                  case i % 5 when 3 then 'triggered' when 4 then 'critical' else 'created' end,
                  $3, 'fill-' || cast(i as text), '{}', BODY,
                  case when i % 1000 = 0 then 'dead' else 'processed' end, 1, $2 + i * 2000";
    if missing > 0 {
        match store {
            Store::Sqlite(pool) => {
                let sql = format!(
                    "with recursive n(i) as (select 1 union all select i + 1 from n where i < $1)
                     {columns} select {} from n",
                    values.replace("BODY", "cast('{}' as blob)")
                );
                sqlx::query(&sql).bind(missing).bind(oldest).bind(INSTALLATION).execute(pool).await?;
            }
            Store::Postgres(pool) => {
                let sql = format!(
                    "{columns} select {} from generate_series(1, $1) as i",
                    values.replace("BODY", "convert_to('{}', 'UTF8')")
                );
                sqlx::query(&sql).bind(missing).bind(oldest).bind(INSTALLATION).execute(pool).await?;
                sqlx::query("analyze delivery").execute(pool).await?;
            }
        }
    }
    Ok(store.count_deliveries().await?)
}

/// The median time of the delivery log's queries at its full size: the
/// newest page, a page at the oldest end, and each filter the page offers.
async fn time_paging(store: &Store) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let min_id: i64 = match store {
        Store::Sqlite(pool) => sqlx::query_scalar("select min(id) from delivery").fetch_one(pool).await?,
        Store::Postgres(pool) => sqlx::query_scalar("select min(id) from delivery").fetch_one(pool).await?,
    };
    let middle = now_ms() - 15 * 86_400_000;
    let filter = |f: DeliveryFilter| DeliveryQuery {
        scope: issuebridge::domain::access::OrgScope::Everything,
        filter: f,
        before_id: None,
        limit: 51,
    };
    let cases: Vec<(&'static str, DeliveryQuery)> = vec![
        ("newest page", filter(DeliveryFilter::default())),
        ("oldest page (keyset)", DeliveryQuery { before_id: Some(min_id + 51), ..filter(DeliveryFilter::default()) }),
        (
            "state = dead (1 in 1,000)",
            filter(DeliveryFilter { state: Some(DeliveryState::Dead), ..Default::default() }),
        ),
        ("resource = comment", filter(DeliveryFilter { resource: Some("comment".into()), ..Default::default() })),
        (
            "resource + action = issue.resolved (backlog only)",
            filter(DeliveryFilter {
                resource: Some("issue".into()),
                action: Some("resolved".into()),
                ..Default::default()
            }),
        ),
        ("action = resolved, alone", filter(DeliveryFilter { action: Some("resolved".into()), ..Default::default() })),
        ("installation", filter(DeliveryFilter { installation: Some(INSTALLATION.into()), ..Default::default() })),
        (
            "one hour, two weeks back",
            filter(DeliveryFilter { from_ms: Some(middle), to_ms: Some(middle + 3_600_000), ..Default::default() }),
        ),
    ];
    let mut timings = Vec::new();
    for (label, query) in cases {
        let mut runs = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let page = store.recent_deliveries(&query).await?;
            runs.push(started.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(!page.is_empty() || label.contains("dead"), "{label}: an empty page");
        }
        timings.push((label, percentile(&runs, 0.5)));
    }
    Ok(timings)
}

/// One distinct, signed `issue.created` of the size Sentry sends (about
/// 1.5 KB): the corpus's real payload, with the issue's id, short id,
/// title and links made distinct by `n`.
fn delivery(n: u64) -> (Vec<u8>, String) {
    static TEMPLATE: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        let mut value: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/webhooks/issue.created.json"))
                .expect("the fixture");
        value["installation"]["uuid"] = serde_json::json!(INSTALLATION);
        value
    });
    let mut value = template.clone();
    let issue = &mut value["data"]["issue"];
    issue["id"] = serde_json::json!(format!("{}", 4_000_000_000u64 + n));
    issue["shortId"] = serde_json::json!(format!("WEB-{n}"));
    issue["title"] = serde_json::json!(format!(
        "TypeError: Cannot read properties of undefined (reading 'map') in CheckoutItems #{n}"
    ));
    for link in ["permalink", "url", "web_url"] {
        if let Some(text) = issue[link].as_str() {
            let replaced = text.replace("1117540176", &format!("{}", 4_000_000_000u64 + n));
            issue[link] = serde_json::json!(replaced);
        }
    }
    let body = issuebridge::sentry::wire::to_sentry_json(&value);
    let signature = sign(SECRET.as_bytes(), &body);
    (body, signature)
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

/// The UI components with [`TICKETS`] tickets in the installation.
async fn components(
    backend: &'static str,
    server: &str,
    database_url: &str,
    data_dir: &std::path::Path,
    store: &Store,
) -> anyhow::Result<ComponentFigures> {
    use issuebridge::components::stacktrace::MappingForm;
    use issuebridge::store::testing::{seed_tickets, TITLE_WORDS};
    // The webhook phases opened tickets whose external-issue links wait in
    // the outbox for a Sentry this bench does not run (the server's Sentry
    // is unreachable, its installation has no token); left pending, the
    // sender would fail them by the thousand while the components are
    // timed. Settled first, as a person would after an install went wrong.
    let settled = settle_outbox(store).await?;
    if settled > 0 {
        eprintln!("{backend}: {settled} outbox rows for an unreachable Sentry marked failed");
    }
    eprintln!("{backend}: {TICKETS} tickets for the components");
    seed_tickets(store, INSTALLATION, TICKETS).await?;
    let mapping = MappingForm {
        project_slug: "backend".into(),
        stack_root: "src".into(),
        source_root: "services/api/src".into(),
        provider: "github".into(),
        repo_url: "https://github.com/acme/monorepo".into(),
        branch: "main".into(),
    };
    store.save_code_mapping(INSTALLATION, &mapping.parse().map_err(anyhow::Error::msg)?).await?;
    let server_process = Server::start(server, database_url, data_dir).await?;
    let base = server_process.base.clone();
    // One connection, one request at a time: the latency a person typing
    // into Sentry's select waits for.
    let client =
        reqwest::Client::builder().pool_max_idle_per_host(1).redirect(reqwest::redirect::Policy::none()).build()?;
    let empty_signature = sign(SECRET.as_bytes(), b"");
    // Warm the connection and the caches, as a running server would be.
    for _ in 0..50 {
        client.get(format!("{base}/healthz")).send().await?;
    }

    eprintln!("{backend}: ticket search");
    // Each pooled database connection prepares a statement the first time
    // it runs it (a round trip more, and on PostgreSQL tens of ms): a
    // server that has been running has done so. Warm them up first.
    for i in 0..200 {
        let url = format!(
            "{base}/sentry/select/tickets?installationId={INSTALLATION}&query={}",
            ["check", "ib-12", "pa"][i % 3]
        );
        client.get(&url).header("sentry-app-signature", &empty_signature).send().await?.bytes().await?;
    }
    let mut search = Vec::with_capacity(COMPONENT_REQUESTS);
    let mut by_kind: [Vec<f64>; 5] = Default::default();
    for i in 0..COMPONENT_REQUESTS {
        let word = TITLE_WORDS[i % TITLE_WORDS.len()].to_lowercase();
        // What people type: a word's start, a whole word, two words, an
        // identifier, one or two letters.
        let query = match i % 5 {
            0 => word[..word.len().min(4)].to_owned(),
            1 => word.clone(),
            2 => format!("{word} in"),
            3 => format!("ib-{}", 1 + (i as i64 * 7919) % TICKETS),
            _ => word[..2].to_owned(),
        };
        let url = format!(
            "{base}/sentry/select/tickets?installationId={INSTALLATION}&projectSlug=backend&query={}",
            query.replace(' ', "+")
        );
        let started = Instant::now();
        let answer = client.get(&url).header("sentry-app-signature", &empty_signature).send().await?;
        anyhow::ensure!(answer.status().is_success(), "search answered {}", answer.status());
        answer.bytes().await?;
        search.push(started.elapsed().as_secs_f64() * 1000.0);
        by_kind[i % 5].push(started.elapsed().as_secs_f64() * 1000.0);
    }
    for (kind, latencies) in ["word start", "word", "two words", "identifier", "two letters"].iter().zip(&by_kind) {
        eprintln!(
            "{backend}: search by {kind}: p50 {:.2} ms, p99 {:.2} ms",
            percentile(latencies, 0.5),
            percentile(latencies, 0.99)
        );
    }

    eprintln!("{backend}: issue-link create");
    let mut create = Vec::with_capacity(COMPONENT_REQUESTS);
    for i in 0..COMPONENT_REQUESTS {
        let issue = 9_000_000_000_u64 + i as u64;
        let body = format!(
            r#"{{"fields":{{"title":"TypeError in checkout #{i}","description":"from the bench","team":"IB"}},"issueId":{issue},"installationId":"{INSTALLATION}","webUrl":"https://sentry.example/organizations/bench/issues/{issue}/","project":{{"slug":"backend","id":1}},"actor":{{"type":"user","id":1,"name":"Bench"}}}}"#
        );
        let signature = sign(SECRET.as_bytes(), body.as_bytes());
        let started = Instant::now();
        let answer = client
            .post(format!("{base}/sentry/issue-link/create"))
            .header("content-type", "application/json")
            .header("sentry-app-signature", signature)
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(answer.status().as_u16() == 201, "create answered {}", answer.status());
        answer.bytes().await?;
        create.push(started.elapsed().as_secs_f64() * 1000.0);
    }

    eprintln!("{backend}: stacktrace link");
    let mut stacktrace = Vec::with_capacity(COMPONENT_REQUESTS);
    for i in 0..COMPONENT_REQUESTS {
        let url = format!(
            "{base}/sentry/stacktrace-link?installationId={INSTALLATION}&projectSlug=backend&lineNo={}&filename=webpack%3A%2F%2F%2F.%2Fsrc%2Fmodule{}%2Fviews.py",
            i % 500 + 1,
            i % 97
        );
        let started = Instant::now();
        let answer = client.get(&url).send().await?;
        anyhow::ensure!(answer.status().as_u16() == 302, "stacktrace link answered {}", answer.status());
        answer.bytes().await?;
        stacktrace.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    server_process.stop().await;
    let p = |v: &[f64]| (percentile(v, 0.50), percentile(v, 0.99));
    Ok(ComponentFigures { tickets: TICKETS, search: p(&search), create: p(&create), stacktrace: p(&stacktrace) })
}

/// The outbox against the simulated Sentry: a burst of status changes
/// queued at once (the sender's throughput), then console changes made one
/// at a time through the server function a browser calls, each timed until
/// the simulated Sentry's issue has the new status.
async fn outbox(
    backend: &'static str,
    server: &str,
    database_url: &str,
    data_dir: &std::path::Path,
    store: &Store,
) -> anyhow::Result<OutboxFigures> {
    use issuebridge::domain::outbox::TicketEdit;
    use issuebridge::domain::ticket::TicketStatus;
    use issuebridge_server::sim::{SimApp, Simulator};

    let sim_secret = "bench-sim-client-secret";
    let sim =
        Simulator::start(SimApp { client_id: "bench".into(), client_secret: sim_secret.into(), ..SimApp::default() })
            .await?;
    let org = "bench-sync";
    let uuid = InstallationUuid::parse(SYNC_INSTALLATION).map_err(anyhow::Error::msg)?;
    let (token, refresh_token, expires_at_ms) = sim.adopt_installation(SYNC_INSTALLATION, org, None);
    let key = issuebridge::config::SecretKey::parse_hex(&"42".repeat(32)).map_err(anyhow::Error::msg)?;
    let cipher = issuebridge::crypto::TokenCipher::new(&key, &[]);
    let grant = issuebridge::sentry::api::TokenGrant {
        token: issuebridge::config::Secret::new(token),
        refresh_token: issuebridge::config::Secret::new(refresh_token),
        expires_at_ms,
        scopes: Vec::new(),
    };
    let record = issuebridge::store::NewInstallation {
        uuid: uuid.clone(),
        org_slug: issuebridge::domain::ids::OrgSlug::parse(org).map_err(anyhow::Error::msg)?,
        org_id: None,
        app_slug: None,
        status: issuebridge::domain::installation::InstallationStatus::Installed,
    };
    store.install_with_tokens(&record, &issuebridge::installations::install::seal(&cipher, &uuid, &grant)).await?;

    let tickets = OUTBOX_ITEMS + OUTBOX_LATENCY_SAMPLES;
    eprintln!("{backend}: {tickets} tickets linked to Sentry issues for the outbox");
    let mut linked = Vec::with_capacity(tickets);
    for n in 0..tickets {
        let issue = (8_000_000_000_u64 + n as u64).to_string();
        sim.adopt_issue(&issue, org, "backend", &format!("BACKEND-{n}"), &format!("Sync error {n}"));
        let ticket = store
            .create_ticket(&issuebridge::store::NewTicket {
                installation: uuid.clone(),
                title: format!("Sync error {n}"),
                description: String::new(),
                status: TicketStatus::Todo,
                assignee_email: None,
            })
            .await?;
        let link = issuebridge::store::NewIssueLink {
            installation: uuid.clone(),
            issue_id: issuebridge::domain::ids::SentryIssueId::parse(&issue).map_err(anyhow::Error::msg)?,
            short_id: Some(format!("BACKEND-{n}")),
            title: None,
            web_url: None,
            project_slug: Some("backend".into()),
        };
        store.link_issue(ticket.id, &link).await?;
        linked.push((ticket.key, issue));
    }
    // Queued while the server is down, so what is timed is the sending
    // alone, not this process's writes competing with it for the database.
    eprintln!("{backend}: {OUTBOX_ITEMS} status changes queued, then the server starts and sends them");
    let calls_before = sim.requests("PUT", "/issues/");
    for (key, _) in &linked[..OUTBOX_ITEMS] {
        let ticket = store
            .ticket_ref(&issuebridge::domain::access::OrgScope::Everything, SYNC_INSTALLATION, key)
            .await?
            .ok_or_else(|| anyhow::anyhow!("ticket {key} not found"))?;
        let edit = TicketEdit { status: Some(TicketStatus::Done), ..Default::default() };
        store.edit_ticket(&ticket, &edit, BENCH_ADMIN).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let server_process =
        Server::start_with(server, database_url, data_dir, sim.base_url().as_str().trim_end_matches('/'), sim_secret)
            .await?;
    let base = server_process.base.clone();
    let started = Instant::now();
    loop {
        if store.outbox_pending().await? == 0 {
            break;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(300), "the outbox did not drain");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let calls = sim.requests("PUT", "/issues/") - calls_before;
    let resolved = linked[..OUTBOX_ITEMS]
        .iter()
        .filter(|(_, issue)| sim.issue(issue).is_some_and(|i| i.status == "resolved"))
        .count();
    anyhow::ensure!(resolved == OUTBOX_ITEMS, "only {resolved} of {OUTBOX_ITEMS} issues were resolved in Sentry");

    eprintln!("{backend}: {OUTBOX_LATENCY_SAMPLES} console changes, each until Sentry has it");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let cookie = add_admin_session(&client, store, &base).await?;
    let path = <issuebridge_app::api::UpdateTicket as leptos::server_fn::ServerFn>::PATH;
    let mut latency = Vec::with_capacity(OUTBOX_LATENCY_SAMPLES);
    for (key, issue) in &linked[OUTBOX_ITEMS..] {
        let body = serde_json::json!({ "installation": SYNC_INSTALLATION, "key": key.to_string(), "edit": { "status": "done" } });
        let started = Instant::now();
        let answer = client
            .post(format!("{base}{path}"))
            .header("origin", &base)
            .header("cookie", &cookie)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(answer.status().is_success(), "the console change answered {}", answer.status());
        loop {
            if sim.issue(issue).is_some_and(|i| i.status == "resolved") {
                break;
            }
            anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "Sentry never heard of {key}");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        latency.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    server_process.stop().await;
    Ok(OutboxFigures {
        items: OUTBOX_ITEMS,
        sent_per_sec: OUTBOX_ITEMS as f64 / elapsed.as_secs_f64(),
        calls,
        latency: (percentile(&latency, 0.50), percentile(&latency, 0.99)),
        latency_samples: latency.len(),
    })
}

/// Logs the bench's administrator in through a login link, as
/// `issuebridge login-link` makes one; returns the session's cookie.
async fn add_admin_session(client: &reqwest::Client, store: &Store, base: &str) -> anyhow::Result<String> {
    let link_token = format!("bench-{}", now_ms());
    store
        .add_login_link(&issuebridge_server::auth::login_link_hash(&link_token), BENCH_ADMIN, now_ms() + 60_000)
        .await?;
    let login = client.post(format!("{base}/auth/link/{link_token}")).header("origin", base).send().await?;
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ");
    anyhow::ensure!(!cookie.is_empty(), "the login link gave no session ({})", login.status());
    Ok(cookie)
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
    memory_kb(pid, "VmHWM:")
}

/// A memory figure of a process's `/proc/<pid>/status` (`VmHWM:`, `VmRSS:`), in KB.
fn memory_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok())
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
    out.push_str(&format!(
        "- Date: {}\n",
        issuebridge::sentry::api::format_datetime_ms(issuebridge::domain::time::now_ms())
    ));
    out.push_str(&format!(
        "- Method: the release server as its own process; Sentry-signed deliveries from the same machine over loopback (HTTP/1.1 keep-alive), each a distinct `issue.created` of {} bytes (the corpus's real payload, ids made distinct); {seconds} s with {CONCURRENCY} concurrent connections, then {seconds} s open-loop at {FIXED_RATE}/s. The worker applies all along (each delivery opens a ticket). Client and server share the cores.\n\n",
        delivery(0).0.len()
    ));
    let webhooks_ran = results.iter().any(|r| r.acked > 0);
    if webhooks_ran {
        out.push_str("| Store | Acked/s (max) | p50 / p99 at max (ms) | At 2,000/s: achieved, p50 / p99 (ms) | Acked | Stored | Lost | Applied while the load ran | Rest applied in (s) | Peak RSS (MB) |\n");
        out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for r in results {
            out.push_str(&format!(
                "| {} | {:.0} | {:.2} / {:.2} | {:.0}/s, {:.2} / {:.2} | {} | {} | {} | {} | {:.1} | {:.1} |\n",
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
                r.applied_during_load,
                r.rest_applied_secs,
                r.peak_rss_mb
            ));
        }
        out.push_str(
            "\nThe worker runs throughout, applying every acknowledged `issue.created` (each opens a ticket).\n\n",
        );
    }
    if results.iter().any(|r| r.backlog > 0) {
        out.push_str("### The worker\n\n");
        out.push_str(&format!("The server restarted over a backlog (the {APPLY_BACKLOG} deliveries added, mixed `issue.created`, `error.created`, `comment.created`, `issue.resolved`, plus anything left from above); time until none is pending.\n\n"));
        out.push_str(
            "| Store | Backlog | Applied in (s) | Applied/s | Not applied | Peak RSS (MB) |\n| --- | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for r in results {
            out.push_str(&format!(
                "| {} | {} | {:.1} | {:.0} | {} | {:.1} |\n",
                r.backend, r.backlog, r.backlog_secs, r.applied_per_sec, r.apply_failed, r.apply_peak_rss_mb
            ));
        }
    }
    out.push_str(&where_the_time_goes(results));
    if webhooks_ran {
        out.push_str("\n### The delivery log at a million rows\n\n");
        out.push_str(
            "A page is 51 rows (50 shown, one to know there is more), newest first, paged by id; median of 5 (ms).\n\n",
        );
        out.push_str("| Query |");
        for r in results {
            out.push_str(&format!(" {} ({} rows) |", r.backend, r.log_rows));
        }
        out.push_str("\n| --- |");
        out.push_str(&" ---: |".repeat(results.len()));
        out.push('\n');
        if let Some(first) = results.first() {
            for (i, (label, _)) in first.paging.iter().enumerate() {
                out.push_str(&format!("| {label} |"));
                for r in results {
                    out.push_str(&format!(" {:.2} |", r.paging.get(i).map_or(f64::NAN, |(_, ms)| *ms)));
                }
                out.push('\n');
            }
        }
        out.push_str("\nTargets from the webhook issue: at least 10,000 acknowledged/s on SQLite, p99 at most 10 ms at 2,000/s, at least 5,000 applied/s, peak RSS at most 64 MB, none lost.\n");
    }
    if results.iter().any(|r| r.components.is_some()) {
        out.push_str("\n### Sentry's UI components\n\n");
        out.push_str(&format!(
            "{COMPONENT_REQUESTS} signed requests per component, one at a time over one keep-alive connection, with {TICKETS} tickets in the installation; p50 / p99 in ms. Searches cycle through a word's start, a whole word, two words, an exact identifier and two letters; each create makes a ticket and its link.\n\n"
        ));
        out.push_str("| Store | Ticket search (target p99 ≤ 5) | Issue-link create (≤ 20) | Stacktrace link (≤ 2) |\n| --- | ---: | ---: | ---: |\n");
        for r in results {
            if let Some(c) = &r.components {
                out.push_str(&format!(
                    "| {} ({} tickets) | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} |\n",
                    r.backend,
                    c.tickets,
                    c.search.0,
                    c.search.1,
                    c.create.0,
                    c.create.1,
                    c.stacktrace.0,
                    c.stacktrace.1
                ));
            }
        }
    }
    if results.iter().any(|r| r.outbox.is_some()) {
        out.push_str("\n### The sync back to Sentry\n\n");
        out.push_str(&format!(
            "Against the simulated Sentry (in the bench's process, over loopback). Throughput: {OUTBOX_ITEMS} status changes queued while the server is stopped (each a ticket linked to its own issue), then timed from the server's start until the outbox is empty and every issue is resolved in the simulator. Latency: {OUTBOX_LATENCY_SAMPLES} changes one at a time through the console's server function (`update_ticket`, logged in), from the request until the simulator's issue is resolved.\n\n"
        ));
        out.push_str("| Store | Sent/s | Calls to Sentry | Console change → Sentry p50 / p99 (ms) |\n| --- | ---: | ---: | ---: |\n");
        for r in results {
            if let Some(o) = &r.outbox {
                out.push_str(&format!(
                    "| {} | {:.0} | {} for {} changes | {:.2} / {:.2} ({} samples) |\n",
                    r.backend, o.sent_per_sec, o.calls, o.items, o.latency.0, o.latency.1, o.latency_samples
                ));
            }
        }
    }
    out
}

/// The CPU each part used and a statement's round trip: what limits the
/// figures above (docs in [`usage`]).
fn where_the_time_goes(results: &[Figures]) -> String {
    let mut out = String::new();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parts = |r: &Figures| {
        [
            (format!("{CONCURRENCY} senders, as fast as they go"), r.cpu_max),
            (format!("{FIXED_RATE}/s"), r.cpu_fixed),
            ("the worker's backlog".to_owned(), r.cpu_backlog),
        ]
    };
    if results.iter().any(|r| parts(r).iter().any(|(_, cpu)| cpu.is_some())) {
        out.push_str("\n### Where the time goes\n\n");
        out.push_str(&format!(
            "CPU while each part ran, in cores (the machine has {cores}): the server's process, this bench's (the load it sends: bodies, signatures, HTTP), PostgreSQL's processes, the share of all the cores' time nobody used (waiting on the disk included), and the share the virtual machine's host kept (steal). A server below its cores while the machine idles is waiting, not computing.\n\n"
        ));
        out.push_str("| Store | Part | Server | Bench | PostgreSQL | Idle | Steal |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
        for r in results {
            for (part, cpu) in parts(r) {
                let Some(cpu) = cpu else { continue };
                out.push_str(&format!(
                    "| {} | {part} | {:.2} | {:.2} | {:.2} | {:.0} % | {:.0} % |\n",
                    r.backend,
                    cpu.server_cores,
                    cpu.bench_cores,
                    cpu.postgres_cores,
                    cpu.idle * 100.0,
                    cpu.steal * 100.0
                ));
            }
        }
    }
    if results.iter().any(|r| r.round_trip.is_some()) {
        out.push_str(
            "\nOne statement sent alone and awaited (`select 1`, 5,000 times over a connection of its own, as sqlx sends each of the worker's statements), against 5,000 in one script (which the database parses as it goes): what a statement costs before the database does any work (µs).\n\n",
        );
        out.push_str("| Store | A statement's round trip | The same inside one script |\n| --- | ---: | ---: |\n");
        for r in results {
            if let Some(trip) = r.round_trip {
                out.push_str(&format!("| {} | {:.1} | {:.1} |\n", r.backend, trip.each_us, trip.in_script_us));
            }
        }
    }
    out
}
