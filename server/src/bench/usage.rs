//! Where a timed part's time went, so that every run of `make bench` says
//! what limits its figures, not only what they are.
//!
//! - CPU: the server's process, the bench's own (the load generator, and
//!   the simulated Sentry when it runs), PostgreSQL's processes, and the
//!   share of the machine left idle, read from `/proc` at the start and
//!   the end of the part. A server whose figure stays under its cores
//!   while the machine idles waits on something other than CPU.
//! - One statement's round trip from an async task to the database, against
//!   the same statements run by the database in one script: what each
//!   statement the worker sends costs before the database does any work.
//!
//! Linux only: elsewhere the CPU figures read as zero.

use std::time::Instant;

use sqlx::{ConnectOptions, Connection};

/// CPU time so far, in the kernel's ticks, of the parts that share the cores.
pub struct CpuSnapshot {
    server: u64,
    bench: u64,
    postgres: u64,
    idle: u64,
    steal: u64,
    total: u64,
}

/// How a part used the machine: cores' worth of CPU, and the idle share.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUsage {
    pub server_cores: f64,
    pub bench_cores: f64,
    pub postgres_cores: f64,
    /// Of all the cores' time, the part no process used (idle or waiting
    /// on the disk), 0 to 1.
    pub idle: f64,
    /// The share a virtual machine's host gave to others (steal), 0 to 1:
    /// when runs of one build differ widely, whether the host was why.
    pub steal: f64,
}

impl CpuSnapshot {
    pub fn take(server_pid: u32) -> Self {
        let MachineTicks { idle, steal, total } = machine_ticks();
        Self {
            server: process_ticks(&server_pid.to_string()),
            bench: process_ticks("self"),
            postgres: postgres_ticks(),
            idle,
            steal,
            total,
        }
    }

    /// What happened between this snapshot and now. The server must still
    /// be running.
    pub fn until_now(&self, server_pid: u32) -> CpuUsage {
        let now = Self::take(server_pid);
        let total = now.total.saturating_sub(self.total);
        if total == 0 {
            return CpuUsage::default();
        }
        // `/proc/stat`'s total counts every core's ticks; a process's
        // ticks over it, times the cores, is the cores it kept busy.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let share = |before: u64, after: u64| after.saturating_sub(before) as f64 / total as f64 * cores;
        CpuUsage {
            server_cores: share(self.server, now.server),
            bench_cores: share(self.bench, now.bench),
            postgres_cores: share(self.postgres, now.postgres),
            idle: now.idle.saturating_sub(self.idle) as f64 / total as f64,
            steal: now.steal.saturating_sub(self.steal) as f64 / total as f64,
        }
    }
}

/// User and system ticks of a process (`self`, or a pid), all its threads.
fn process_ticks(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    // The command name may hold spaces; the fields after it do not.
    let Some(after_name) = stat.rfind(')').map(|at| &stat[at + 1..]) else { return 0 };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are the 14th and 15th fields, 12th and 13th here.
    let field = |n: usize| fields.get(n).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

/// Ticks of every process named `postgres` (the server and its backends;
/// a backend that exits within the part takes its ticks with it).
fn postgres_ticks() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with("postgres")))
        .map(|pid| process_ticks(&pid))
        .sum()
}

/// Ticks of every core together, from `/proc/stat`.
struct MachineTicks {
    /// Idle, and waiting on the disk.
    idle: u64,
    steal: u64,
    total: u64,
}

fn machine_ticks() -> MachineTicks {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().find(|l| l.starts_with("cpu ")).unwrap_or_default();
    let ticks: Vec<u64> = line.split_whitespace().skip(1).filter_map(|t| t.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is
    // counted in user already).
    let tick = |n: usize| ticks.get(n).copied().unwrap_or(0);
    MachineTicks { idle: tick(3) + tick(4), steal: tick(7), total: ticks.iter().take(8).sum() }
}

/// Statements timed each way.
const ROUND_TRIPS: usize = 5_000;

/// One statement's cost in µs: sent alone and awaited (a round trip), and
/// inside one script of many (the database's own work, with parsing: the
/// script's statements are not kept prepared).
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundTrip {
    pub each_us: f64,
    pub in_script_us: f64,
}

/// The same timing on either backend's connection (a macro rather than a
/// function generic over sqlx's executor traits, which say far more than
/// this does).
macro_rules! time_round_trips {
    ($conn:ident) => {{
        // Warm: the statement prepared, the connection's thread running.
        for _ in 0..100 {
            sqlx::query_scalar::<_, i32>("select 1").fetch_one(&mut $conn).await?;
        }
        let started = Instant::now();
        for _ in 0..ROUND_TRIPS {
            sqlx::query_scalar::<_, i32>("select 1").fetch_one(&mut $conn).await?;
        }
        let each_us = started.elapsed().as_secs_f64() * 1e6 / ROUND_TRIPS as f64;
        let script = "select 1;".repeat(ROUND_TRIPS);
        let started = Instant::now();
        sqlx::raw_sql(&script).execute(&mut $conn).await?;
        let in_script_us = started.elapsed().as_secs_f64() * 1e6 / ROUND_TRIPS as f64;
        RoundTrip { each_us, in_script_us }
    }};
}

/// Measures [`RoundTrip`] on a connection of its own to `url` (for
/// SQLite, a file of its own beside the bench's database, with the store's
/// journal and sync settings).
pub async fn statement_round_trip(url: &str) -> anyhow::Result<RoundTrip> {
    if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        let file = std::path::Path::new(path).with_file_name("round-trip.db");
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(file)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
        let mut conn = options.connect().await?;
        let timed = time_round_trips!(conn);
        conn.close().await?;
        Ok(timed)
    } else {
        let options: sqlx::postgres::PgConnectOptions = url.parse()?;
        let mut conn = options.connect().await?;
        let timed = time_round_trips!(conn);
        conn.close().await?;
        Ok(timed)
    }
}
