//! The one store API the rest of the code uses, over SQLite or PostgreSQL.
//!
//! The backend is chosen at run time from `DATABASE_URL`. Both pools are
//! concrete sqlx pools (not `sqlx::Any`), which keeps native types and lets
//! the session store share them. Every query is written once, in SQL that
//! both dialects accept (`$1` placeholders, `bigint` times): [`on_pool!`]
//! runs that one text against whichever pool is live, and a query that the
//! worker's transaction needs too takes a [`conn::Conn`], which a pooled
//! connection and a transaction both give.
//!
//! This file holds the store itself: connecting, migrations, readiness and
//! SQLite's write gates. Each kind of data has a module of its own; console
//! access (scoping, login links, the audit log) is `access`.

pub mod access;
pub mod apply_tx;
pub mod comments;
pub mod components;
pub mod conn;
pub mod deliveries;
pub mod effects;
pub mod inbox_file;
pub mod installations;
pub mod outbox;
pub mod sentry_issues;
pub mod service_hooks;
pub mod teams;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod ticket_edit;
pub mod tickets;

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::config::{Backend, DatabaseUrl};

pub use access::{AuditReader, NewAuditEvent};
pub use apply_tx::ApplyTx;
pub use comments::CommentRecord;
pub use deliveries::{
    ClaimedDelivery, DeliveryInsert, DeliveryOutcome, DeliveryQuery, DeliveryRecord, NewDelivery, Replay,
};
pub use installations::{
    InstallationForUpdate, InstallationRecord, NewInstallation, SealedTokens, SealedValue, TokenWrite,
};
pub use sentry_issues::SentryIssueRecord;
pub use service_hooks::{NewServiceHook, ServiceHookRecord};
pub use teams::{TeamChoice, TeamError};
pub use tickets::{NewIssueLink, NewTicket, TicketRecord, TicketState};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Runs the same block against either pool. Each arm is type-checked on its
/// own, so one query text serves both dialects with native types.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("the database holds a value this version cannot read: {0}")]
    Corrupt(String),
    #[error(
        "the inbox file {0} is missing or empty, but the database's deliveries were moved into it: \
         restore it beside the database from the same backup (the two files are one database)"
    )]
    InboxMissing(String),
}

impl StoreError {
    /// True when a write failed only because the row exists already.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Query(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

/// An error that may be a transaction PostgreSQL gave up.
pub(crate) trait MaybeGivenUp {
    fn is_given_up(&self) -> bool;
}

impl MaybeGivenUp for StoreError {
    /// True when PostgreSQL ended the transaction so that another could go
    /// on: a deadlock (`40P01`) or a serialization failure (`40001`). Run
    /// again, the transaction is expected to succeed.
    fn is_given_up(&self) -> bool {
        matches!(self, Self::Query(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("40P01" | "40001")))
    }
}

/// Times a transaction is run in all when PostgreSQL keeps giving it up.
const GIVEN_UP_TRIES: u32 = 4;

/// Runs a whole transaction again when PostgreSQL gave it up. The worker's
/// batches lock teams, tickets and links in the order their deliveries
/// come, so a write from the console or Sentry's sidebar can meet one that
/// took the same rows the other way round. PostgreSQL then ends one of them;
/// the other has gone on, so running ours again succeeds, where answering
/// 503 would lose a person's edit or fail Sentry's issue-link form.
pub(crate) async fn again_if_given_up<T, E, Fut>(mut transaction: impl FnMut() -> Fut) -> Result<T, E>
where
    E: MaybeGivenUp,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut tries = 1;
    loop {
        match transaction().await {
            Err(e) if e.is_given_up() && tries < GIVEN_UP_TRIES => {
                tries += 1;
                tracing::info!(tries, "PostgreSQL gave the transaction up for another's sake; running it again");
            }
            done => return done,
        }
    }
}

/// Why `/readyz` says no.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("database unreachable: {0}")]
    Unreachable(sqlx::Error),
    #[error("{missing} migration(s) not applied yet")]
    Unmigrated { missing: usize },
}

/// Bytes of WAL each SQLite file (the database and its inbox file) keeps
/// once its WAL starts over (`journal_size_limit`): a burst's WAL is cut
/// back to this, and the WAL's usual size is reused without growing the
/// file at each commit.
const WAL_SIZE_LIMIT: u64 = 64 << 20;

/// How long a SQLite statement waits for a lock another connection holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A pooled PostgreSQL connection idle this long is pinged before use.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Store {
    /// Opens a pool without touching the schema; [`Store::migrate`] does that.
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, StoreError> {
        let connect_error = |source| StoreError::Connect { url: url.to_string(), source };
        match url.backend() {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url.expose())
                    .map_err(connect_error)?
                    .create_if_missing(true)
                    // WAL lets the console read while the worker writes.
                    // FULL syncs the WAL at every commit, so an acknowledged
                    // delivery survives a power cut, not only a crash; the
                    // inbox's group commit makes that one fsync per batch
                    // rather than per request.
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(BUSY_TIMEOUT)
                    // Checkpoints run in the background (below), never in
                    // the commit that happens to cross the threshold: that
                    // commit's requests would wait for the whole checkpoint.
                    .pragma("wal_autocheckpoint", "0")
                    // A WAL that a burst grew is cut back to this when it
                    // starts over, so the disk gets the space back.
                    .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string());
                let file = options.get_filename().to_path_buf();
                if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                    private_files::create_dir_all(parent)
                        .map_err(|source| StoreError::CreateDir { path: parent.display().to_string(), source })?;
                }
                // Made owner-only before SQLite makes it: its WAL and
                // shared-memory files take the database's permissions.
                // Already there is fine.
                let _ = private_files::create_new(&file);
                let inbox = inbox_file::inbox_file_beside(&file);
                let _ = private_files::create_new(&inbox);
                let attached = inbox.clone();
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(5))
                    // A SQLite connection is a handle in this process, not
                    // a socket that the other end may have closed: pinging
                    // it before each use (sqlx's default) checks nothing, and
                    // costs a round trip to its thread on every statement
                    // run on the pool.
                    .test_before_acquire(false)
                    .after_connect(move |conn, _| {
                        let attached = attached.clone();
                        Box::pin(async move { inbox_file::attach(conn, &attached).await })
                    })
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                private_files::keep_database_private(&file);
                private_files::keep_database_private(&inbox);
                spawn_checkpointer(pool.clone());
                Ok(Self::Sqlite(pool))
            }
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(url.expose()).map_err(connect_error)?;
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(5))
                    // sqlx pings every connection before handing it out: a
                    // round trip to PostgreSQL before each statement run on
                    // the pool. It pings it when it comes back too, and
                    // closes it if that fails, so only a connection that sat
                    // idle since may have been cut (a restart, a proxy's idle
                    // timeout).
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for >= PING_IF_IDLE_FOR {
                                sqlx::Connection::ping(conn).await?;
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                Ok(Self::Postgres(pool))
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self {
            Self::Sqlite(_) => &SQLITE_MIGRATIONS,
            Self::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    /// Applies every embedded migration not yet applied. Safe to run from
    /// several instances at once: sqlx takes an advisory lock on PostgreSQL.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool| self.migrator().run(pool).await)?;
        if let Self::Sqlite(pool) = self {
            inbox_file::make_and_fill(pool).await?;
            // The checkpointer merges the search index instead (see
            // `merge_search_index`). A setting of the index, kept in it.
            sqlx::query("insert into ticket_search (ticket_search, rank) values ('automerge', 0)")
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// The versions this binary knows, in order.
    pub fn known_migrations(&self) -> Vec<i64> {
        self.migrator().iter().map(|m| m.version).collect()
    }

    /// The versions the database has applied successfully.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let exists = self.migration_table_exists().await?;
        if !exists {
            return Ok(Vec::new());
        }
        let sql = "select version from _sqlx_migrations where success = true order by version";
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql).fetch_all(pool).await)?)
    }

    async fn migration_table_exists(&self) -> Result<bool, StoreError> {
        let count: i64 = match self {
            Self::Sqlite(pool) => {
                sqlx::query_scalar("select count(*) from sqlite_master where type = 'table' and name = '_sqlx_migrations'")
                    .fetch_one(pool)
                    .await?
            }
            Self::Postgres(pool) => {
                sqlx::query_scalar("select count(*) from information_schema.tables where table_schema = current_schema() and table_name = '_sqlx_migrations'")
                    .fetch_one(pool)
                    .await?
            }
        };
        Ok(count > 0)
    }

    /// Reachable and at the schema this binary expects.
    pub async fn readiness(&self) -> Result<(), NotReady> {
        on_pool!(self, |pool| sqlx::query_scalar::<_, i32>("select 1").fetch_one(pool).await)
            .map_err(NotReady::Unreachable)?;
        let applied = match self.applied_migrations().await {
            Ok(applied) => applied,
            Err(StoreError::Query(e)) => return Err(NotReady::Unreachable(e)),
            Err(_) => Vec::new(),
        };
        let missing = self.known_migrations().iter().filter(|v| !applied.contains(v)).count();
        if missing > 0 {
            return Err(NotReady::Unmigrated { missing });
        }
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }
}

/// The SQLite database holds tickets and sealed tokens, its inbox file the
/// delivery log: they, their WALs and the folder made for them are readable
/// by the owner only.
pub mod private_files {
    use std::path::Path;

    /// Creates `dir` and its missing parents, owner-only. An existing
    /// folder is left as it is (it may be shared, like `/tmp`), with a
    /// warning if others can read it.
    pub fn create_dir_all(dir: &Path) -> std::io::Result<()> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            if let Ok(meta) = std::fs::metadata(dir) {
                if meta.is_dir() && meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(folder = %dir.display(), "the data folder can be read by other users; make it owner-only (chmod 700)");
                }
            }
            builder.mode(0o700);
        }
        builder.create(dir)
    }

    /// Creates `file`, owner-only; fails if it exists (two processes
    /// starting at once never overwrite each other's).
    pub fn create_new(file: &Path) -> std::io::Result<std::fs::File> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options.open(file)
    }

    /// Takes group and other access away from the database and its WAL
    /// files (a database made by an earlier version, or copied in).
    pub fn keep_database_private(file: &Path) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for suffix in ["", "-wal", "-shm"] {
                let mut path = file.as_os_str().to_owned();
                path.push(suffix);
                let path = std::path::PathBuf::from(path);
                let Ok(meta) = std::fs::metadata(&path) else { continue };
                if meta.permissions().mode() & 0o077 != 0 {
                    match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
                        Ok(()) => {
                            tracing::warn!(file = %path.display(), "the database could be read by other users; it is owner-only now")
                        }
                        Err(error) => {
                            tracing::warn!(file = %path.display(), %error, "the database can be read by other users and could not be made owner-only")
                        }
                    }
                }
            }
        }
        #[cfg(not(unix))]
        let _ = file;
    }
}

/// SQLite lets one connection write to a file at a time. A writer that
/// finds the lock taken waits in SQLite's busy handler, which sleeps in
/// steps that grow to 100 ms, so an acknowledgement could wait a whole step
/// after the lock was already free. The busy writers queue on these gates
/// instead and go the moment the previous one is done. One gate per file
/// (the database, and the inbox file beside it), shared by every pool on
/// it in the process.
fn sqlite_write_gate(file: PathBuf) -> Arc<WriteGate> {
    static GATES: OnceLock<std::sync::Mutex<HashMap<PathBuf, Arc<WriteGate>>>> = OnceLock::new();
    let mut gates = GATES.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    gates.entry(file).or_default().clone()
}

/// A file's write gate, and how many writers are queued at it: the
/// worker's transaction, long while nobody else writes, commits as soon as
/// someone does (`pipeline::apply`).
#[derive(Default)]
pub(crate) struct WriteGate {
    turn: Arc<tokio::sync::Mutex<()>>,
    queued: AtomicUsize,
}

/// How long a writer in the background waits for the turn before the
/// worker's transaction is asked to end ([`WriteGate::enter_patiently`]).
const PATIENCE: Duration = Duration::from_millis(10);

/// Holding it is having the file's write turn.
pub(crate) type WriteTurn = tokio::sync::OwnedMutexGuard<()>;

impl WriteGate {
    /// Waits for the turn, counted as queued while waiting (also when the
    /// wait is given up).
    pub(crate) async fn enter(&self) -> WriteTurn {
        if let Ok(turn) = self.turn.clone().try_lock_owned() {
            return turn;
        }
        self.wait_queued(std::pin::pin!(self.turn.clone().lock_owned())).await
    }

    /// Waits for the turn, counted as queued only once it has waited
    /// [`PATIENCE`]: for writers in the background (the outbox sender, the
    /// checkpointer), which then leave the worker's transaction its length.
    /// Counted at once, the sender's claims and outcomes (one of each for
    /// every few tickets the worker opens, as each ticket queues its link to
    /// Sentry) made the worker commit after every delivery or two: an fsync
    /// each. Never counted, the sender waited out every transaction and fell
    /// behind by tens of thousands of rows (BENCHMARKS.md, notes).
    pub(crate) async fn enter_patiently(&self) -> WriteTurn {
        let mut waiting = std::pin::pin!(self.turn.clone().lock_owned());
        tokio::select! {
            turn = &mut waiting => turn,
            () = tokio::time::sleep(PATIENCE) => self.wait_queued(waiting).await,
        }
    }

    /// Waits for `turn` (already in the queue), counted as queued.
    async fn wait_queued(&self, turn: std::pin::Pin<&mut impl std::future::Future<Output = WriteTurn>>) -> WriteTurn {
        struct Queued<'a>(&'a AtomicUsize);
        impl Drop for Queued<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.queued.fetch_add(1, Ordering::SeqCst);
        let _queued = Queued(&self.queued);
        turn.await
    }

    /// Whether another writer waits for the turn now.
    pub(crate) fn others_queued(&self) -> bool {
        self.queued.load(Ordering::SeqCst) > 0
    }
}

/// The gate of the database file: tickets, teams, installations, the board.
pub(crate) fn sqlite_board_gate(pool: &SqlitePool) -> Arc<WriteGate> {
    sqlite_write_gate(pool.connect_options().get_filename().to_path_buf())
}

/// The gate of the inbox file: deliveries and their attempts.
fn sqlite_inbox_gate(pool: &SqlitePool) -> Arc<WriteGate> {
    sqlite_write_gate(inbox_file::inbox_file_beside(pool.connect_options().get_filename()))
}

impl Store {
    /// Waits for the SQLite database file's write gate (see
    /// [`sqlite_write_gate`]); nothing to wait for on PostgreSQL, which has
    /// row locks. Every writer of the database file takes it, the session
    /// store's too, so the worker knows when someone waits.
    pub async fn write_turn(&self) -> Option<WriteTurn> {
        match self {
            Self::Sqlite(pool) => Some(sqlite_board_gate(pool).enter().await),
            Self::Postgres(_) => None,
        }
    }

    /// [`Store::write_turn`] for a writer in the background, which lets the
    /// worker's transaction run on for a while ([`WriteGate::enter_patiently`]).
    pub(crate) async fn write_turn_patiently(&self) -> Option<WriteTurn> {
        match self {
            Self::Sqlite(pool) => Some(sqlite_board_gate(pool).enter_patiently().await),
            Self::Postgres(_) => None,
        }
    }

    /// Waits for the SQLite inbox file's write gate: for writes to
    /// deliveries only, which never wait for the board's.
    pub(crate) async fn inbox_turn(&self) -> Option<WriteTurn> {
        match self {
            Self::Sqlite(pool) => Some(sqlite_inbox_gate(pool).enter().await),
            Self::Postgres(_) => None,
        }
    }
}

/// Copies the WALs back into their files every second without blocking
/// writers (PASSIVE), so the WALs stay small while no commit pays for it.
/// Stops when the pool is closed.
///
/// SQLite starts a WAL over only when a writer begins after every frame was
/// copied back, which never happens while commits follow each other without
/// a pause: as the worker's do while it applies a backlog. The board's WAL
/// then grew to 3 GB in a minute of the bench, all of it on disk, and in
/// the index that every read of the board looks pages up in. So when
/// the board's WAL holds more than [`BOARD_WAL_RESTART_FRAMES`] after a free
/// pass, a second, short pass copies the rest while holding the board's
/// write gate, and waits for the reads still on the WAL: no writer is at
/// work when it ends and nobody reads the old WAL, so the next writer
/// starts it over. That holds up the worker and the console's writes for the
/// pass, never an acknowledgement. The inbox's WAL is left to grow during a
/// burst (cut back after it, [`WAL_SIZE_LIMIT`]): there the gated pass held
/// up acknowledgements (BENCHMARKS.md, notes).
///
/// Each tick first merges the ticket search index ([`merge_search_index`]).
fn spawn_checkpointer(pool: SqlitePool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let gate = sqlite_board_gate(&pool);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                return;
            }
            if !goes_on(&pool, "merging the ticket search index", merge_search_index(&pool, &gate).await)
                || !goes_on(&pool, "WAL checkpoint", checkpoint_pass(&pool, &gate).await)
            {
                return;
            }
        }
    });
}

/// Whether the checkpointer goes on after a pass: a pass that failed
/// because the pool closed ends it; any other failure is logged.
fn goes_on(pool: &SqlitePool, pass: &str, result: Result<(), sqlx::Error>) -> bool {
    match result {
        Ok(()) => true,
        Err(_) if pool.is_closed() => false,
        Err(error) => {
            tracing::warn!(%error, pass, "a background pass over the SQLite files failed");
            true
        }
    }
}

/// Pages of the ticket search index one merge step writes, and the most
/// steps a tick takes, each in its own turn at the board's gate.
const SEARCH_MERGE_PAGES: i64 = 256;
const SEARCH_MERGE_STEPS: usize = 8;

/// Merges the ticket search index's segments, a step at a time, while
/// there are levels to merge.
///
/// FTS5 writes each transaction's new entries as a segment of its own and,
/// left to itself (`automerge`), merges segments inside the transaction
/// that wrote them: every 64 pages written, 64 pages for each level the
/// index has. On the bench's index (200,000 tickets) every 32nd issue-link
/// create took 20 ms instead of 1.5, the merge's time, holding the board's
/// write lock (BENCHMARKS.md, notes). `Store::migrate` turns `automerge`
/// off; the checkpointer merges here instead, off every request's path.
/// FTS5 still merges a level at once if it reaches 16 segments
/// (`crisismerge`), so the index stays searchable at speed meanwhile.
async fn merge_search_index(pool: &SqlitePool, gate: &WriteGate) -> Result<(), sqlx::Error> {
    // Not there until the migrations have run (the checkpointer starts at
    // connect).
    let made: i64 = sqlx::query_scalar("select count(*) from main.sqlite_master where name = 'ticket_search'")
        .fetch_one(pool)
        .await?;
    if made == 0 {
        return Ok(());
    }
    for _ in 0..SEARCH_MERGE_STEPS {
        let _turn = gate.enter_patiently().await;
        let mut conn = pool.acquire().await?;
        // A step did something if it changed two rows or more (FTS5's
        // documentation of the `merge` command).
        let before: i64 = sqlx::query_scalar("select total_changes()").fetch_one(&mut *conn).await?;
        sqlx::query("insert into ticket_search (ticket_search, rank) values ('merge', $1)")
            .bind(SEARCH_MERGE_PAGES)
            .execute(&mut *conn)
            .await?;
        let after: i64 = sqlx::query_scalar("select total_changes()").fetch_one(&mut *conn).await?;
        if after - before < 2 {
            break;
        }
    }
    Ok(())
}

/// Frames in the board's WAL (4 KB each) past which the checkpointer makes
/// sure it starts over: 16 MB, a quarter of [`WAL_SIZE_LIMIT`].
const BOARD_WAL_RESTART_FRAMES: i64 = 4096;

/// How long the gated pass waits for readers still on the old WAL.
const RESTART_WAIT: Duration = Duration::from_millis(100);

async fn checkpoint_pass(pool: &SqlitePool, gate: &WriteGate) -> Result<(), sqlx::Error> {
    sqlx::query("pragma inbox.wal_checkpoint(PASSIVE)").execute(pool).await?;
    // (busy, frames in the WAL, frames copied back)
    let (_, frames, _): (i64, i64, i64) = sqlx::query_as("pragma main.wal_checkpoint(PASSIVE)").fetch_one(pool).await?;
    if frames <= BOARD_WAL_RESTART_FRAMES {
        return Ok(());
    }
    let _turn = gate.enter_patiently().await;
    let mut conn = pool.acquire().await?;
    // RESTART also waits for the reads still on the old WAL to end, so the
    // next writer surely starts it over (after PASSIVE, a read that was
    // under way could stop it). Readers of the board take milliseconds;
    // the board's writers wait meanwhile, so not for long.
    sqlx::query(&format!("pragma busy_timeout = {}", RESTART_WAIT.as_millis())).execute(&mut *conn).await?;
    let restarted = sqlx::query("pragma main.wal_checkpoint(RESTART)").execute(&mut *conn).await;
    let restored =
        sqlx::query(&format!("pragma busy_timeout = {}", BUSY_TIMEOUT.as_millis())).execute(&mut *conn).await;
    if restored.is_err() {
        // Not back in the pool with the short wait.
        conn.close_on_drop();
    }
    restarted.and(restored).map(|_| ())
}
