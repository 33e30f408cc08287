//! `make soak`: ten minutes of mixed traffic against two instances sharing
//! one PostgreSQL database, with PostgreSQL restarted once and one instance
//! killed (SIGKILL) and started again. Sentry's part is played as Sentry
//! plays it: every webhook is sent until an instance acknowledges it,
//! alternating instances, a few seconds apart. At the end: every
//! acknowledged delivery is stored, none is applied twice (one ticket per
//! issue, one comment per Sentry comment), none is left unfinished, and the
//! first instance's memory over the run.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use issuebridge::config::DatabaseUrl;
use issuebridge::sentry::signature::sign;
use issuebridge::store::Store;

use super::{
    add_admin_session, count, count_where, memory_kb, mixed_delivery, percentile, postgres_database, Server,
    INSTALLATION, SECRET,
};

/// Webhooks a second, across both instances.
const WEBHOOK_RATE: u64 = 200;
/// Component and console requests a second, each.
const SIDE_RATE: u64 = 10;

pub struct SoakFigures {
    pub seconds: u64,
    pub sent: u64,
    pub acked: u64,
    pub lost: u64,
    pub retries: u64,
    pub tickets_twice: i64,
    pub comments_twice: i64,
    pub unfinished: i64,
    pub dead: i64,
    pub components: SideFigures,
    pub console: SideFigures,
    pub postgres_down_secs: f64,
    /// The first instance's resident memory (MB): after the first minute,
    /// the median, at the end, the most.
    pub rss: (f64, f64, f64, f64),
}

/// How one kind of side traffic (issue-link creates, board pages) fared.
#[derive(Default)]
pub struct SideFigures {
    pub ok: u64,
    /// Answered with an error status.
    pub refused: u64,
    /// No answer within the client's five seconds.
    pub timed_out: u64,
    /// No connection (an instance down).
    pub unreachable: u64,
    /// Each answered request's time, in ms.
    pub latencies_ms: Vec<f64>,
}

impl SideFigures {
    fn row(&self, what: &str) -> String {
        format!(
            "| {what}: ok / answered with an error / timed out / unreachable | {} / {} / {} / {} |\n\
             | {what}: p50 / p99 / slowest answer (ms) | {:.1} / {:.1} / {:.1} |\n",
            self.ok,
            self.refused,
            self.timed_out,
            self.unreachable,
            percentile(&self.latencies_ms, 0.50),
            percentile(&self.latencies_ms, 0.99),
            percentile(&self.latencies_ms, 1.0),
        )
    }
}

/// Restarts this machine's PostgreSQL cluster (the one the tests use).
fn restart_postgres() -> anyhow::Result<()> {
    let versions = std::fs::read_dir("/etc/postgresql")?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect::<Vec<_>>();
    anyhow::ensure!(!versions.is_empty(), "no PostgreSQL cluster under /etc/postgresql to restart");
    for version in versions {
        let status = std::process::Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &version, "main", "restart"])
            .status()?;
        anyhow::ensure!(status.success(), "pg_ctlcluster {version} main restart failed");
    }
    Ok(())
}

fn rss_mb(pid: u32) -> f64 {
    memory_kb(pid, "VmRSS:") as f64 / 1024.0
}

pub async fn soak(server: &str, seconds: u64) -> anyhow::Result<SoakFigures> {
    let (url, _guard) = postgres_database().await.ok_or_else(|| anyhow::anyhow!("the soak needs PostgreSQL"))?;
    let store = Store::connect(&DatabaseUrl::parse(&url).map_err(anyhow::Error::msg)?).await?;
    store.migrate().await?;
    issuebridge::store::testing::add_installed(&store, INSTALLATION, "bench").await?;
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let first = Server::start(server, &url, dir_a.path()).await?;
    let second = Server::start(server, &url, dir_b.path()).await?;
    let bases = Arc::new(RwLock::new([first.base.clone(), second.base.clone()]));
    let first_pid = first.pid;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()?;
    let cookie = add_admin_session(&client, &store, &first.base).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let retries = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let length = Duration::from_secs(seconds);

    // Sentry: each delivery at its time, sent until acknowledged.
    let webhooks = {
        let (client, bases, stop, next, acked, retries) =
            (client.clone(), bases.clone(), stop.clone(), next.clone(), acked.clone(), retries.clone());
        tokio::spawn(async move {
            let mut sends = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / WEBHOOK_RATE as f64));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let n = next.fetch_add(1, Ordering::Relaxed);
                let (client, bases, acked, retries) = (client.clone(), bases.clone(), acked.clone(), retries.clone());
                sends.push(tokio::spawn(async move {
                    let delivery = mixed_delivery(n);
                    let signature = sign(SECRET.as_bytes(), &delivery.body);
                    for attempt in 0..120u64 {
                        let base = bases.read().expect("bases")[((n + attempt) % 2) as usize].clone();
                        let answer = client
                            .post(format!("{base}/sentry/webhook"))
                            .header("content-type", "application/json")
                            .header("sentry-hook-resource", delivery.resource.as_str())
                            .header("sentry-hook-signature", &signature)
                            .body(delivery.body.clone())
                            .send()
                            .await;
                        if answer.is_ok_and(|a| a.status().is_success()) {
                            acked.lock().expect("acked").insert(n);
                            return;
                        }
                        retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }));
            }
            for send in sends {
                let _ = send.await;
            }
        })
    };

    // Sentry's issue-link form and a person on the board, on both instances.
    let side = |console: bool| {
        let (client, bases, stop, cookie) = (client.clone(), bases.clone(), stop.clone(), cookie.clone());
        tokio::spawn(async move {
            let mut figures = SideFigures::default();
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / SIDE_RATE as f64));
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                i += 1;
                let base = bases.read().expect("bases")[(i % 2) as usize].clone();
                let sent = Instant::now();
                let answer = if console {
                    client.get(format!("{base}/")).header("cookie", &cookie).send().await
                } else {
                    let issue = 8_000_000_000u64 + i;
                    let body = format!(
                        r#"{{"fields":{{"title":"Soak #{i}"}},"issueId":{issue},"installationId":"{INSTALLATION}","webUrl":"https://sentry.example/organizations/bench/issues/{issue}/","project":{{"slug":"web","id":1}},"actor":{{"type":"user","id":1,"name":"Soak"}}}}"#
                    );
                    client
                        .post(format!("{base}/sentry/issue-link/create"))
                        .header("content-type", "application/json")
                        .header("sentry-app-signature", sign(SECRET.as_bytes(), body.as_bytes()))
                        .body(body)
                        .send()
                        .await
                };
                match answer {
                    Ok(answer) => {
                        figures.latencies_ms.push(sent.elapsed().as_secs_f64() * 1000.0);
                        if answer.status().is_success() {
                            figures.ok += 1;
                        } else {
                            figures.refused += 1;
                        }
                    }
                    Err(error) if error.is_timeout() => figures.timed_out += 1,
                    Err(_) => figures.unreachable += 1,
                }
            }
            figures
        })
    };
    let (components, console) = (side(false), side(true));

    // The first instance's memory, every five seconds.
    let memory = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(5)).await;
                samples.push((started.elapsed().as_secs_f64(), rss_mb(first_pid)));
            }
            samples
        })
    };

    // The chaos: PostgreSQL restarted at 30 %, the second instance killed
    // at 55 % and started again five seconds later.
    tokio::time::sleep(length.mul_f64(0.30)).await;
    eprintln!("soak: restarting PostgreSQL");
    let down = Instant::now();
    restart_postgres()?;
    let postgres_down_secs = down.elapsed().as_secs_f64();
    tokio::time::sleep(length.mul_f64(0.25)).await;
    eprintln!("soak: killing the second instance");
    let _ = std::process::Command::new("kill").args(["-KILL", &second.pid.to_string()]).status();
    drop(second);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let restarted = Server::start(server, &url, dir_b.path()).await?;
    bases.write().expect("bases")[1] = restarted.base.clone();
    tokio::time::sleep(length.saturating_sub(started.elapsed())).await;

    eprintln!("soak: traffic stops; the workers finish");
    stop.store(true, Ordering::Relaxed);
    webhooks.await?;
    let (components, console) = (components.await?, console.await?);
    let samples = memory.await?;
    let sent = next.load(Ordering::Relaxed);
    let acked: HashSet<u64> = acked.lock().expect("acked").clone();
    let unfinished_sql = "state in ('pending', 'processing', 'retry')";
    let draining = Instant::now();
    while count_where(&store, unfinished_sql).await? > 0 && draining.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let mut lost = 0;
    for n in &acked {
        let key = issuebridge_server::webhook::dedupe_key("webhook", &mixed_delivery(*n).body);
        if !store.has_delivery(&key).await? {
            lost += 1;
        }
    }
    let tickets_twice = count(
        &store,
        "select count(*) from (select sentry_issue_id from ticket_link group by installation_uuid, sentry_issue_id
                                having count(*) > 1) as twice",
    )
    .await?;
    let comments_twice = count(
        &store,
        "select count(*) from (select sentry_comment_id from comment where sentry_comment_id is not null
                                group by ticket_id, sentry_comment_id having count(*) > 1) as twice",
    )
    .await?;
    let unfinished = count_where(&store, unfinished_sql).await?;
    let dead = count_where(&store, "state = 'dead'").await?;
    let end_rss = rss_mb(first_pid);
    first.stop().await;
    restarted.stop().await;
    store.close().await;

    let after_first_minute: Vec<f64> = samples.iter().filter(|(t, _)| *t >= 60.0).map(|(_, mb)| *mb).collect();
    let settled = after_first_minute.first().copied().unwrap_or(f64::NAN);
    let median = percentile(&after_first_minute, 0.5);
    let most = percentile(&after_first_minute, 1.0);
    Ok(SoakFigures {
        seconds,
        sent,
        acked: acked.len() as u64,
        lost,
        retries: retries.load(Ordering::Relaxed),
        tickets_twice,
        comments_twice,
        unfinished,
        dead,
        components,
        console,
        postgres_down_secs,
        rss: (settled, median, end_rss, most),
    })
}

/// The soak's section of BENCHMARKS.md.
pub fn report(figures: &SoakFigures, machine: &str, date: &str) -> String {
    let f = figures;
    format!(
        "## Soak (`make soak`)\n\n\
         Written by `make soak` (server/src/bench/soak.rs); `make bench` keeps it.\n\n\
         - Machine: {machine}\n- Date: {date}\n\
         - Method: two release servers on one PostgreSQL database; for {} s, {WEBHOOK_RATE} Sentry-signed webhooks a second (issue.created, error.created, comment.created, issue.resolved in turn), each sent until acknowledged, a second apart, alternating instances, as Sentry retries; {SIDE_RATE} issue-link creates and {SIDE_RATE} board pages (logged in) a second. PostgreSQL restarted at 30 % of the run; the second instance killed with SIGKILL at 55 % and started again five seconds later. Then the workers finish.\n\n\
         | Figure | Value |\n| --- | ---: |\n\
         | webhooks sent / acknowledged | {} / {} |\n\
         | acknowledged but not stored (lost) | {} |\n\
         | sends answered with an error or not at all, then retried | {} |\n\
         | issues with two tickets, comments mirrored twice (applied twice) | {} / {} |\n\
         | deliveries unfinished at the end / dead | {} / {} |\n\
         {}{}\
         | PostgreSQL restart took | {:.1} s |\n\
         | first instance's RSS after the first minute / median / at the end / most (MB) | {:.1} / {:.1} / {:.1} / {:.1} |\n\n",
        f.seconds,
        f.sent,
        f.acked,
        f.lost,
        f.retries,
        f.tickets_twice,
        f.comments_twice,
        f.unfinished,
        f.dead,
        f.components.row("issue-link creates"),
        f.console.row("board pages"),
        f.postgres_down_secs,
        f.rss.0,
        f.rss.1,
        f.rss.2,
        f.rss.3,
    )
}
