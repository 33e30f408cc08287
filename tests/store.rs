//! The store on both backends: every query runs against SQLite in a temp
//! folder and against a real PostgreSQL server.

use issuebridge::config::Backend;
use issuebridge::domain::access::OrgScope;
use issuebridge::domain::deliveries::DeliveryState;
use issuebridge::domain::ids::{InstallationUuid, OrgSlug, SentryIssueId};
use issuebridge::domain::installation::InstallationStatus;
use issuebridge::domain::team::TeamKey;
use issuebridge::domain::ticket::TicketStatus;
use issuebridge::on_both_stores;
use issuebridge::store::testing::{pending_delivery as delivery, TestDatabase};
use issuebridge::store::tickets::TicketToOpen;
use issuebridge::store::{NewInstallation, NewIssueLink, NewTicket, Store, TeamChoice, TeamError, TicketState};

const INSTALLATION: &str = "a8e5d37a-1b2c-4d5e-8f90-123456789abc";
/// Two installations the delivery log tells apart.
const ACME_INSTALLATION: &str = "0ac3e000-0000-4000-8000-000000000001";
const OTHER_INSTALLATION: &str = "07be2000-0000-4000-8000-000000000002";

async fn migrated(db: &TestDatabase) -> Store {
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

fn installation() -> NewInstallation {
    NewInstallation {
        uuid: InstallationUuid::parse(INSTALLATION).unwrap(),
        org_slug: OrgSlug::parse("acme").unwrap(),
        org_id: Some(34),
        app_slug: Some("issuebridge".into()),
        status: InstallationStatus::Installed,
    }
}

fn ticket(title: &str, status: TicketStatus) -> NewTicket {
    NewTicket {
        installation: InstallationUuid::parse(INSTALLATION).unwrap(),
        title: title.into(),
        description: String::new(),
        status,
        assignee_email: None,
    }
}

fn link(issue: &str, short: &str) -> NewIssueLink {
    NewIssueLink {
        installation: InstallationUuid::parse(INSTALLATION).unwrap(),
        issue_id: SentryIssueId::parse(issue).unwrap(),
        short_id: Some(short.into()),
        title: None,
        web_url: None,
        project_slug: None,
    }
}

fn migration_files(dialect: &str) -> Vec<String> {
    let dir = format!("{}/migrations/{dialect}", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn both_dialects_have_the_same_migration_versions() {
    assert_eq!(migration_files("sqlite"), migration_files("postgres"));
    assert!(!migration_files("sqlite").is_empty());
}

on_both_stores!(migrations_apply_once_and_readiness_follows, |db: TestDatabase| async move {
    let store = Store::connect(&db.url).await.unwrap();
    assert!(store.applied_migrations().await.unwrap().is_empty());
    assert!(store.readiness().await.is_err());
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.applied_migrations().await.unwrap(), store.known_migrations());
    assert_eq!(store.known_migrations().len(), migration_files("sqlite").len());
    store.readiness().await.unwrap();
    let expected = if db.url.expose().starts_with("sqlite") { Backend::Sqlite } else { Backend::Postgres };
    assert_eq!(store.backend(), expected);
});

on_both_stores!(tickets_list_newest_first_with_their_links, |db: TestDatabase| async move {
    let store = migrated(&db).await;
    store.upsert_installation(&installation()).await.unwrap();
    let first = store.create_ticket(&ticket("first", TicketStatus::Todo)).await.unwrap().id;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = store.create_ticket(&ticket("second", TicketStatus::Done)).await.unwrap().id;
    store.link_issue(second, &link("100", "WEB-1")).await.unwrap();
    store.link_issue(second, &link("101", "WEB-2")).await.unwrap();

    let board = store.list_tickets(&OrgScope::Everything, 10).await.unwrap();
    assert_eq!(board.iter().map(|t| t.id).collect::<Vec<_>>(), vec![second, first]);
    assert_eq!(board[0].status, TicketStatus::Done);
    assert_eq!(board[0].org_slug, "acme");
    assert_eq!(board[0].linked_issues, 2);
    assert_eq!(board[0].sentry_short_id.as_deref(), Some("WEB-1"));
    assert_eq!(board[1].linked_issues, 0);
    assert_eq!(board[1].sentry_short_id, None);
    assert_eq!(store.list_tickets(&OrgScope::Everything, 1).await.unwrap().len(), 1);
});

on_both_stores!(a_sentry_issue_links_to_one_ticket_per_installation, |db: TestDatabase| async move {
    let store = migrated(&db).await;
    store.upsert_installation(&installation()).await.unwrap();
    let a = store.create_ticket(&ticket("a", TicketStatus::Todo)).await.unwrap().id;
    let b = store.create_ticket(&ticket("b", TicketStatus::Todo)).await.unwrap().id;
    store.link_issue(a, &link("42", "API-1")).await.unwrap();
    let err = store.link_issue(b, &link("42", "API-1")).await.unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
});

on_both_stores!(tickets_need_a_known_installation, |db: TestDatabase| async move {
    let store = migrated(&db).await;
    // Foreign keys are enforced on SQLite too (they are off by default there).
    assert!(store.create_ticket(&ticket("orphan", TicketStatus::Todo)).await.is_err());
    assert!(store.list_tickets(&OrgScope::Everything, 10).await.unwrap().is_empty());
});

on_both_stores!(installations_upsert_without_duplicates, |db: TestDatabase| async move {
    let store = migrated(&db).await;
    store.upsert_installation(&installation()).await.unwrap();
    let mut again = installation();
    again.status = InstallationStatus::Pending;
    again.org_id = None;
    store.upsert_installation(&again).await.unwrap();
    let listed = store.list_installations(&OrgScope::Everything).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, "pending");
    assert_eq!(listed[0].org_slug, "acme");
    assert_eq!(listed[0].app_slug.as_deref(), Some("issuebridge"));
});

on_both_stores!(demo_tickets_are_seeded_with_their_links, |db: TestDatabase| async move {
    let store = migrated(&db).await;
    store.upsert_installation(&installation()).await.unwrap();
    issuebridge::demo::seed_tickets(&store, &InstallationUuid::parse(INSTALLATION).unwrap()).await.unwrap();
    let board = store.list_tickets(&OrgScope::Everything, 100).await.unwrap();
    assert_eq!(board.len(), 4);
    assert!(board.iter().all(|t| t.linked_issues == 1));
    let installations = store.list_installations(&OrgScope::Everything).await.unwrap();
    assert_eq!(installations.len(), 1);
    assert_eq!(installations[0].tickets, 4);
    assert_eq!(store.count_deliveries().await.unwrap(), 0);
});

#[tokio::test]
async fn sqlite_creates_the_database_folder_with_wal_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let url = issuebridge::config::DatabaseUrl::sqlite_file(&dir.path().join("nested/deeper/ib.db"));
    let store = Store::connect(&url).await.unwrap();
    let Store::Sqlite(pool) = &store else { panic!("a SQLite store") };
    let mode: String = sqlx::query_scalar("pragma journal_mode").fetch_one(pool).await.unwrap();
    assert_eq!(mode, "wal");
    let foreign_keys: i64 = sqlx::query_scalar("pragma foreign_keys").fetch_one(pool).await.unwrap();
    assert_eq!(foreign_keys, 1);
    assert!(dir.path().join("nested/deeper/ib.db").exists());
    // The deliveries' own file, as durable as the database.
    let inbox_mode: String = sqlx::query_scalar("pragma inbox.journal_mode").fetch_one(pool).await.unwrap();
    assert_eq!(inbox_mode, "wal");
    let inbox_sync: i64 = sqlx::query_scalar("pragma inbox.synchronous").fetch_one(pool).await.unwrap();
    assert_eq!(inbox_sync, 2, "FULL: the inbox's WAL is synced at every commit");
    // A WAL a burst grew is cut back when it starts over, in both files.
    for schema in ["main", "inbox"] {
        let limit: i64 =
            sqlx::query_scalar(&format!("pragma {schema}.journal_size_limit")).fetch_one(pool).await.unwrap();
        assert_eq!(limit, 64 << 20, "{schema}");
    }
    assert!(dir.path().join("nested/deeper/ib.inbox.db").exists());
}

// An acknowledgement waits for its delivery's commit only: not for a
// transaction on the board, such as the worker's batch, still open. On
// SQLite the deliveries are in a file of their own for this; it fails (the
// insert waits for the whole batch) with them in the database file.
on_both_stores!(deliveries_are_stored_and_claimed_while_a_board_transaction_is_open, |db: TestDatabase| async move {
    let store = migrated(&db).await;
    store.upsert_installation(&installation()).await.unwrap();
    let mut batch = store.begin_apply().await.unwrap();
    batch.open_ticket(&to_open("a ticket the worker's batch opens")).await.unwrap();
    let within = std::time::Duration::from_secs(5);
    let stored = tokio::time::timeout(within, store.insert_deliveries(&[delivery("while the batch runs")]))
        .await
        .expect("the delivery is stored while the batch is open")
        .unwrap();
    let claimed = tokio::time::timeout(within, store.claim_deliveries(10, 60_000)).await.expect("and claimed").unwrap();
    assert_eq!(claimed.len(), 1);
    batch.commit().await.unwrap();
    let issuebridge::store::DeliveryInsert::Stored(id) = stored[0] else { panic!("{stored:?}") };
    assert_eq!(store.delivery(id).await.unwrap().unwrap().state, DeliveryState::Processing);
    assert_eq!(store.list_tickets(&OrgScope::Everything, 10).await.unwrap().len(), 1);
});

/// The worker's transaction takes the database file's write lock as it
/// begins, not at its first write: a transaction that read first could not
/// take it later once another connection (a session) had written, and would
/// fail rather than wait. It opens without `BEGIN IMMEDIATE`, which would
/// lock the inbox file too; this fails if its first write goes.
#[tokio::test]
async fn the_workers_transaction_holds_the_database_files_lock_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = migrated_at(&issuebridge::config::DatabaseUrl::sqlite_file(&dir.path().join("ib.db"))).await;
    let Store::Sqlite(pool) = &store else { panic!("a SQLite store") };
    let batch = store.begin_apply().await.unwrap();
    let mut other = pool.acquire().await.unwrap();
    sqlx::query("pragma busy_timeout = 0").execute(&mut *other).await.unwrap();
    let write = sqlx::query("create table main.another_writer (x)").execute(&mut *other).await;
    let error = write.expect_err("the database file is locked by the open transaction");
    assert!(error.to_string().contains("locked"), "{error}");
    batch.rollback().await.unwrap();
    sqlx::query("pragma busy_timeout = 5000").execute(&mut *other).await.unwrap();
}

/// The worker's transaction is long while nobody else writes the database
/// file (one fsync for a whole claim) and commits once someone queues at
/// the file's write gate (`pipeline::apply`): it must see them queue, and
/// stop counting them once they went. This fails if the gate stops
/// counting who waits.
#[tokio::test]
async fn the_workers_transaction_sees_another_writer_queue_for_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = migrated_at(&issuebridge::config::DatabaseUrl::sqlite_file(&dir.path().join("ib.db"))).await;
    let batch = store.begin_apply().await.unwrap();
    assert!(!batch.holds_others_up(), "nobody waits yet");
    let other = store.clone();
    let writer = tokio::spawn(async move { other.write_turn().await.is_some() });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !batch.holds_others_up() {
        assert!(std::time::Instant::now() < deadline, "the waiting writer is never seen");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert!(!writer.is_finished(), "the writer waits for the transaction");
    batch.commit().await.unwrap();
    assert!(writer.await.unwrap(), "and goes once it commits");
    let next = store.begin_apply().await.unwrap();
    assert!(!next.holds_others_up(), "a writer that went is no longer counted");
    next.rollback().await.unwrap();
}

// The sender records a claim's outcomes in two statements, however many
// rows it claimed: each row still gets its own state and error, and only
// the failed and skipped ones a line in their ticket's history.
on_both_stores!(a_claims_outbox_outcomes_are_recorded_each_on_its_own_row, |db: TestDatabase| async move {
    use issuebridge::domain::outbox::OutboxState;
    use issuebridge::store::outbox::{FinishedRow, OutboxOutcome, OutboxQuery};
    let store = migrated(&db).await;
    store.upsert_installation(&installation()).await.unwrap();
    let issues = ["101", "102", "103", "104"];
    let mut tx = store.begin_apply().await.unwrap();
    let mut tickets = Vec::new();
    for issue in issues {
        let ticket = tx.open_ticket(&TicketToOpen { issue: Some(issue), source: "issue", ..to_open(issue) }).await;
        tickets.push(ticket.unwrap().id);
    }
    tx.commit().await.unwrap();
    let rows = store.claim_outbox(32, 60_000).await.unwrap();
    assert_eq!(rows.len(), 4, "each ticket queued its link");
    let retry_at = 4_000_000_000_000;
    let outcomes = [
        OutboxOutcome::Sent { sentry_ref: Some("ext-1".into()) },
        OutboxOutcome::Failed { error: "refused".into() },
        OutboxOutcome::Retry { at_ms: retry_at, error: "unreachable".into() },
        OutboxOutcome::Skipped { why: "nothing to send".into() },
    ];
    let mut finished: Vec<FinishedRow> = rows
        .into_iter()
        .map(|row| FinishedRow { row, outcome: OutboxOutcome::Sent { sentry_ref: None }, issue_status: None })
        .collect();
    finished.sort_by(|a, b| a.row.sentry_issue_id.cmp(&b.row.sentry_issue_id));
    for (row, outcome) in finished.iter_mut().zip(outcomes) {
        row.outcome = outcome;
    }
    store.finish_outbox(&finished).await.unwrap();
    let query = OutboxQuery { state: None, ticket: None, before: None, limit: 10 };
    let items = store.outbox_items(&OrgScope::Everything, &query).await.unwrap();
    let item = |issue: &str| items.iter().find(|i| i.sentry_issue_id == issue).unwrap();
    assert_eq!((item("101").state, item("101").last_error.as_deref()), (OutboxState::Sent, None));
    assert!(item("101").finished_at_ms.is_some());
    assert_eq!((item("102").state, item("102").last_error.as_deref()), (OutboxState::Failed, Some("refused")));
    assert_eq!((item("103").state, item("103").last_error.as_deref()), (OutboxState::Pending, Some("unreachable")));
    assert_eq!((item("103").next_attempt_at_ms, item("103").finished_at_ms), (retry_at, None));
    assert_eq!((item("104").state, item("104").last_error.as_deref()), (OutboxState::Skipped, Some("nothing to send")));
    let mut history = Vec::new();
    for ticket in &tickets {
        let lines = store.ticket_history(*ticket).await.unwrap();
        history.push(lines.into_iter().map(|line| line.summary).filter(|s| !s.contains("opened")).collect::<Vec<_>>());
    }
    assert!(history[0].is_empty() && history[2].is_empty(), "{history:?}");
    assert_eq!(history[1].len(), 1, "{history:?}");
    assert!(
        history[1][0].starts_with("Sentry did not take a change") && history[1][0].ends_with("refused"),
        "{history:?}"
    );
    assert_eq!(history[3], ["nothing to send"]);
});

/// The outbox sender writes the database file in the background: it lets
/// the worker's transaction run on for a while (10 ms) before asking it to
/// commit. Asking at once, its claims and outcomes (one of each for every
/// few tickets the worker opens, each ticket queueing its link to Sentry)
/// made the worker commit after every delivery or two (BENCHMARKS.md,
/// notes). Fails if the sender's claim hurries the worker at once, or never.
#[tokio::test]
async fn the_outbox_sender_lets_the_workers_transaction_run_on_for_a_while() {
    let dir = tempfile::tempdir().unwrap();
    let store = migrated_at(&issuebridge::config::DatabaseUrl::sqlite_file(&dir.path().join("ib.db"))).await;
    let batch = store.begin_apply().await.unwrap();
    let sender = store.clone();
    let started = std::time::Instant::now();
    let claim = tokio::spawn(async move { sender.claim_outbox(32, 60_000).await.unwrap().len() });
    let deadline = started + std::time::Duration::from_secs(5);
    while !batch.holds_others_up() {
        assert!(std::time::Instant::now() < deadline, "the waiting sender never asks the worker to commit");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let waited = started.elapsed();
    assert!(waited >= std::time::Duration::from_millis(10), "the sender hurried the worker after {waited:?}");
    assert!(!claim.is_finished(), "the claim waits for the transaction");
    batch.commit().await.unwrap();
    assert_eq!(claim.await.unwrap(), 0, "and goes once it commits");
}

/// SQLite starts a WAL over only when a writer begins after every frame was
/// copied back, which never happens while transactions follow each other
/// without a pause, as the worker's do through a backlog: the board's WAL
/// grew to 3 GB in a minute of the bench. The checkpointer then copies the
/// rest holding the board's write gate and waits for the reads still on
/// the WAL, so it starts over (its header counts the times), readers or
/// not. Fails without that gated pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_boards_wal_starts_over_while_the_worker_writes_without_a_pause() {
    let dir = tempfile::tempdir().unwrap();
    let store = migrated_at(&issuebridge::config::DatabaseUrl::sqlite_file(&dir.path().join("ib.db"))).await;
    store.upsert_installation(&installation()).await.unwrap();
    let wal = dir.path().join("ib.db-wal");
    // The WAL header's checkpoint sequence: one more each time it starts over.
    let restarts = || {
        use std::io::Read;
        let mut header = [0u8; 16];
        let read = std::fs::File::open(&wal).and_then(|mut file| file.read_exact(&mut header));
        read.map_or(0, |()| u32::from_be_bytes([header[12], header[13], header[14], header[15]]))
    };
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = {
        let (store, writing) = (store.clone(), writing.clone());
        tokio::spawn(async move {
            let description = "a long description ".repeat(2_000);
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                let mut batch = store.begin_apply().await.unwrap();
                for _ in 0..8 {
                    batch.open_ticket(&TicketToOpen { description: &description, ..to_open("busy") }).await.unwrap();
                }
                batch.commit().await.unwrap();
            }
        })
    };
    // People reading the board meanwhile, as the console and the outbox
    // sender do: a read still open on the old log keeps it from starting over.
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (store, writing) = (store.clone(), writing.clone());
            tokio::spawn(async move {
                while writing.load(std::sync::atomic::Ordering::Relaxed) {
                    store.list_tickets(&OrgScope::Everything, 50).await.unwrap();
                }
            })
        })
        .collect();
    let before = restarts();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut grown = 0;
    while restarts() == before {
        grown = grown.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        assert!(std::time::Instant::now() < deadline, "the WAL never started over (grew to {grown} bytes)");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!writer.is_finished(), "the writer never paused");
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    for reader in readers {
        reader.await.unwrap();
    }
}

/// FTS5 merges the ticket search index's segments inside the transaction
/// that wrote them, unless told not to: on a large index every 32nd
/// issue-link create then took 20 ms instead of 1.5. The index is told not
/// to, and the checkpointer merges it in the background: a run of creates,
/// each its own transaction and segment, is merged down within seconds,
/// and every ticket is still found. Fails without either half (no merging
/// in the background: the segments stay; merging left to FTS5: the
/// setting).
#[tokio::test]
async fn the_search_index_is_merged_in_the_background_not_by_the_create() {
    let dir = tempfile::tempdir().unwrap();
    let store = migrated_at(&issuebridge::config::DatabaseUrl::sqlite_file(&dir.path().join("ib.db"))).await;
    store.upsert_installation(&installation()).await.unwrap();
    let Store::Sqlite(pool) = &store else { unreachable!("a SQLite file") };
    let automerge: i64 = sqlx::query_scalar("select v from ticket_search_config where k = 'automerge'")
        .fetch_one(pool)
        .await
        .expect("automerge is set");
    assert_eq!(automerge, 0, "creates leave merging to the checkpointer");
    // One segment per transaction (FTS5 merges a level at once only when it
    // reaches 16).
    let segments = || async {
        sqlx::query_scalar::<_, i64>("select count(distinct segid) from ticket_search_idx")
            .fetch_one(pool)
            .await
            .unwrap()
    };
    for n in 0..60 {
        store.create_ticket(&ticket(&format!("checkout timeout number {n}"), TicketStatus::Todo)).await.unwrap();
    }
    let written = segments().await;
    assert!(written >= 8, "each create wrote its own segment ({written} segments)");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while segments().await >= written {
        assert!(std::time::Instant::now() < deadline, "the segments were never merged ({written})");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let found: i64 = sqlx::query_scalar("select count(*) from ticket_search where ticket_search match 'timeout'")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(found, 60);
}

/// A database made before the inbox file kept its deliveries in the
/// database file. They move into the inbox file at the next start, with
/// their ids and attempts, and the ids go on after them.
#[tokio::test]
async fn deliveries_of_an_older_database_move_into_the_inbox_file() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ib.db");
    let url = issuebridge::config::DatabaseUrl::sqlite_file(&file);
    // The older layout: the migrations alone, on a connection with no inbox.
    let mut old = sqlx::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new().filename(&file).create_if_missing(true),
    )
    .await
    .unwrap();
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    sqlx::migrate::Migrator::new(migrations).await.unwrap().run(&mut old).await.unwrap();
    sqlx::query(
        "insert into delivery (id, received_at, source, resource, action, dedupe_key, headers, body, state, attempts, note)
         values (41, 1000, 'webhook', 'issue', 'created', 'old-key', '{}', x'7b7d', 'processed', 1, 'opened IB-1')",
    )
    .execute(&mut old)
    .await
    .unwrap();
    sqlx::query(
        "insert into delivery_attempt (delivery_id, attempt, finished_at, outcome) values (41, 1, 1001, 'processed')",
    )
    .execute(&mut old)
    .await
    .unwrap();
    old.close().await.unwrap();

    let store = migrated_at(&url).await;
    let moved = store.delivery(41).await.unwrap().expect("the old delivery is kept");
    assert_eq!((moved.body.as_slice(), moved.note.as_deref()), (&b"{}"[..], Some("opened IB-1")));
    assert_eq!(store.delivery_attempts(41).await.unwrap().len(), 1);
    assert!(store.has_delivery("old-key").await.unwrap(), "its dedupe key still marks a retry");
    let Store::Sqlite(pool) = &store else { panic!("a SQLite store") };
    let left: i64 = sqlx::query_scalar("select count(*) from main.sqlite_master where name like 'delivery%'")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "nothing of the deliveries is left in the database file");
    let next = store.insert_deliveries(&[delivery("new")]).await.unwrap();
    assert!(matches!(next[0], issuebridge::store::DeliveryInsert::Stored(id) if id > 41), "{next:?}");
    store.close().await;

    // Started again, nothing moves twice.
    let store = migrated_at(&url).await;
    assert_eq!(store.count_deliveries().await.unwrap(), 2);
    store.close().await;

    // Restored without its inbox file, the database does not start with an
    // empty one: delivery ids would begin again at 1.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("ib.inbox.db{suffix}")));
    }
    let store = Store::connect(&url).await.unwrap();
    let refused = store.migrate().await.expect_err("a database without its inbox file");
    assert!(refused.to_string().contains("ib.inbox.db is missing"), "{refused}");
}

async fn migrated_at(url: &issuebridge::config::DatabaseUrl) -> Store {
    let store = Store::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

on_both_stores!(a_batch_stores_new_deliveries_once_and_counts_repeats, |db: TestDatabase| async move {
    use issuebridge::store::DeliveryInsert::{Duplicate, Stored};
    let store = migrated(&db).await;
    let first = store.insert_deliveries(&[delivery("a"), delivery("a"), delivery("b")]).await.unwrap();
    let (Stored(a), Duplicate(a_again), Stored(b)) = (first[0], first[1], first[2]) else { panic!("{first:?}") };
    assert_eq!(a, a_again);
    assert_ne!(a, b);
    let second = store.insert_deliveries(&[delivery("b"), delivery("c")]).await.unwrap();
    assert!(matches!(second[..], [Duplicate(id), Stored(_)] if id == b));
    assert_eq!(store.count_deliveries().await.unwrap(), 3);
    assert_eq!(store.delivery(a).await.unwrap().unwrap().duplicate_count, 1);
    assert_eq!(store.delivery(b).await.unwrap().unwrap().duplicate_count, 1);
    assert!(store.insert_deliveries(&[]).await.unwrap().is_empty());
});

on_both_stores!(the_delivery_log_filters_and_pages_by_id, |db: TestDatabase| async move {
    use issuebridge::domain::deliveries::DeliveryFilter;
    use issuebridge::store::DeliveryQuery;
    let store = migrated(&db).await;
    let mut batch = Vec::new();
    for n in 0..7 {
        let mut d = delivery(&format!("key-{n}"));
        d.resource = if n % 2 == 0 { "issue".into() } else { "comment".into() };
        d.action = Some(if n < 4 { "created".into() } else { "resolved".into() });
        let uuid = if n == 6 { OTHER_INSTALLATION } else { ACME_INSTALLATION };
        d.installation = Some(InstallationUuid::parse(uuid).unwrap());
        d.received_at_ms = 1_000_000 + n * 1000;
        batch.push(d);
    }
    store.insert_deliveries(&batch).await.unwrap();
    let all = store
        .recent_deliveries(&DeliveryQuery { scope: OrgScope::Everything, limit: 100, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(all.len(), 7);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");

    let issues = DeliveryQuery {
        filter: DeliveryFilter { resource: Some("issue".into()), ..Default::default() },
        limit: 2,
        scope: OrgScope::Everything,
        ..Default::default()
    };
    let first = store.recent_deliveries(&issues).await.unwrap();
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|d| d.resource == "issue"));
    let next = DeliveryQuery { before_id: Some(first[1].id), ..issues.clone() };
    let second = store.recent_deliveries(&next).await.unwrap();
    assert_eq!(second.len(), 2);
    assert!(second[0].id < first[1].id);
    let dead = DeliveryQuery {
        filter: DeliveryFilter { state: Some(DeliveryState::Dead), ..Default::default() },
        limit: 10,
        scope: OrgScope::Everything,
        ..Default::default()
    };
    assert!(store.recent_deliveries(&dead).await.unwrap().is_empty());

    let matching = |filter: DeliveryFilter| {
        let store = store.clone();
        async move {
            let page = store
                .recent_deliveries(&DeliveryQuery { scope: OrgScope::Everything, filter, limit: 100, before_id: None })
                .await
                .unwrap();
            page.into_iter().map(|d| d.received_at_ms).collect::<Vec<_>>()
        }
    };
    let resolved_issues =
        DeliveryFilter { resource: Some("issue".into()), action: Some("resolved".into()), ..Default::default() };
    assert_eq!(matching(resolved_issues).await, vec![1_006_000, 1_004_000]);
    let other = DeliveryFilter { installation: Some(OTHER_INSTALLATION.into()), ..Default::default() };
    assert_eq!(matching(other).await, vec![1_006_000]);
    let window = DeliveryFilter { from_ms: Some(1_002_000), to_ms: Some(1_004_000), ..Default::default() };
    assert_eq!(matching(window).await, vec![1_003_000, 1_002_000], "from inclusive, to exclusive");
});

/// Opens a ticket in a team through the worker's transaction, as issue-link
/// create and alert rules do.
async fn open_in(store: &Store, team: TeamChoice, title: &str) -> Result<TicketState, TeamError> {
    let mut tx = store.begin_apply().await?;
    let ticket = TicketToOpen { team, ..to_open(title) };
    match tx.open_ticket(&ticket).await {
        Ok(mut opened) => {
            opened.take_number(&tx.commit_numbering().await?);
            Ok(opened)
        }
        Err(e) => {
            tx.rollback().await?;
            Err(e)
        }
    }
}

on_both_stores!(tickets_are_numbered_per_team, |db: TestDatabase| async move {
    let store = migrated(&db).await;
    store.upsert_installation(&installation()).await.unwrap();
    let first = store.create_ticket(&ticket("first", TicketStatus::Todo)).await.unwrap();
    let second = store.create_ticket(&ticket("second", TicketStatus::Todo)).await.unwrap();
    assert_eq!((first.key.to_string(), second.key.to_string()), ("IB-1".into(), "IB-2".into()));

    let eng = store.create_team(INSTALLATION, &TeamKey::parse("eng").unwrap(), "Engineering").await.unwrap();
    let one = open_in(&store, TeamChoice::Team(eng), "one").await.unwrap();
    let two = open_in(&store, TeamChoice::Team(eng), "two").await.unwrap();
    assert_eq!((one.key.to_string(), two.key.to_string()), ("ENG-1".into(), "ENG-2".into()));
    assert_eq!(open_in(&store, TeamChoice::Default, "third").await.unwrap().key.to_string(), "IB-3");

    let taken = store.create_team(INSTALLATION, &TeamKey::parse("ENG").unwrap(), "Again").await.unwrap_err();
    assert!(matches!(taken, TeamError::KeyTaken(_)), "{taken}");
    // Another installation's team is not this one's.
    let mut other = installation();
    other.uuid = InstallationUuid::parse(OTHER_INSTALLATION).unwrap();
    other.org_slug = OrgSlug::parse("other").unwrap();
    store.upsert_installation(&other).await.unwrap();
    let foreign = store.create_team(OTHER_INSTALLATION, &TeamKey::parse("OPS").unwrap(), "Ops").await.unwrap();
    assert!(matches!(open_in(&store, TeamChoice::Team(foreign), "x").await, Err(TeamError::NotFound)));
    assert!(store.team(INSTALLATION, foreign).await.unwrap().is_none());
    assert!(matches!(store.add_team_member(INSTALLATION, foreign, "a@b.example").await, Err(TeamError::NotFound)));

    store.add_team_member(INSTALLATION, eng, "ada@example.com").await.unwrap();
    store.add_team_member(INSTALLATION, eng, "ada@example.com").await.unwrap();
    store.add_team_member(INSTALLATION, eng, "bob@example.com").await.unwrap();
    store.remove_team_member(INSTALLATION, eng, "bob@example.com").await.unwrap();
    store.rename_team(INSTALLATION, eng, "Platform").await.unwrap();
    let teams = store.teams(INSTALLATION).await.unwrap();
    let summary: Vec<_> =
        teams.iter().map(|t| (t.key.as_str(), t.name.as_str(), t.is_default, t.members.clone())).collect();
    assert_eq!(
        summary,
        vec![("IB", "Issues", true, vec![]), ("ENG", "Platform", false, vec!["ada@example.com".to_string()])]
    );

    let board = store.list_tickets(&OrgScope::Everything, 10).await.unwrap();
    let mut keys: Vec<String> = board.iter().map(|t| t.key.to_string()).collect();
    keys.sort();
    assert_eq!(keys, ["ENG-1", "ENG-2", "IB-1", "IB-2", "IB-3"]);
});

on_both_stores!(tickets_made_before_teams_keep_their_ib_numbers, |db: TestDatabase| async move {
    // Migrate to the schema before teams, make tickets there, then migrate on.
    let store = Store::connect(&db.url).await.unwrap();
    let before_teams = |migrator: sqlx::migrate::Migrator| {
        let mut migrator = migrator;
        migrator.migrations = migrator.migrations.iter().filter(|m| m.version < 7).cloned().collect::<Vec<_>>().into();
        migrator
    };
    let now = 1_700_000_000_000_i64;
    let insert_installation = "insert into installation (uuid, org_slug, status, created_at, updated_at)
                               values ($1, $2, 'installed', $3, $3)";
    let insert_ticket = "insert into ticket (installation_uuid, title, created_at, updated_at) values ($1, $2, $3, $3)";
    macro_rules! seed {
        ($pool:expr, $migrator:expr) => {{
            before_teams($migrator).run($pool).await.unwrap();
            for (uuid, slug) in [(INSTALLATION, "acme"), (OTHER_INSTALLATION, "other")] {
                sqlx::query(insert_installation).bind(uuid).bind(slug).bind(now).execute($pool).await.unwrap();
            }
            // Ids 1, 2 and 4 in acme, 3 in other.
            for (uuid, title) in
                [(INSTALLATION, "a"), (INSTALLATION, "b"), (OTHER_INSTALLATION, "c"), (INSTALLATION, "d")]
            {
                sqlx::query(insert_ticket).bind(uuid).bind(title).bind(now).execute($pool).await.unwrap();
            }
        }};
    }
    match &store {
        Store::Sqlite(pool) => seed!(pool, sqlx::migrate!("migrations/sqlite")),
        Store::Postgres(pool) => seed!(pool, sqlx::migrate!("migrations/postgres")),
    }
    store.migrate().await.unwrap();

    let board = store.list_tickets(&OrgScope::Everything, 10).await.unwrap();
    let mut keys: Vec<(String, String)> = board.iter().map(|t| (t.title.clone(), t.key.to_string())).collect();
    keys.sort();
    let expected = [("a", "IB-1"), ("b", "IB-2"), ("c", "IB-3"), ("d", "IB-4")];
    assert_eq!(keys, expected.map(|(t, k)| (t.to_string(), k.to_string())));
    // The next ticket of each installation goes on from its highest number.
    assert_eq!(store.create_ticket(&ticket("e", TicketStatus::Todo)).await.unwrap().key.to_string(), "IB-5");
});

on_both_stores!(
    ticket_search_puts_the_exact_identifier_first_then_matches_recent_first,
    |db: TestDatabase| async move {
        use issuebridge::store::components::TicketChoice;
        let store = migrated(&db).await;
        store.upsert_installation(&installation()).await.unwrap();
        let mut other = installation();
        other.uuid = InstallationUuid::parse(OTHER_INSTALLATION).unwrap();
        other.org_slug = OrgSlug::parse("other").unwrap();
        store.upsert_installation(&other).await.unwrap();
        for title in ["Checkout fails with 500", "TypeError in cart", "Slow checkout page", "100% CPU on worker_1"] {
            store.create_ticket(&ticket(title, TicketStatus::Todo)).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
        let mut foreign = ticket("Checkout elsewhere", TicketStatus::Todo);
        foreign.installation = other.uuid.clone();
        store.create_ticket(&foreign).await.unwrap();
        for n in 5..=12 {
            store.create_ticket(&ticket(&format!("filler {n}"), TicketStatus::Todo)).await.unwrap();
        }
        let ids = |found: Vec<TicketChoice>| found.into_iter().map(|c| c.identifier).collect::<Vec<_>>();
        let search = |typed: &'static str| {
            let store = store.clone();
            async move { ids(store.search_tickets(INSTALLATION, Some(typed), 50).await.unwrap()) }
        };
        // Titles starting with the text come first, then the rest by recency;
        // another installation's ticket never shows.
        assert_eq!(search("checkout").await, ["IB-1", "IB-3"]);
        assert_eq!(search("CHECKOUT P").await, ["IB-3"]);
        assert_eq!(search("eckou").await, ["IB-3", "IB-1"], "a substring, most recent first");
        assert_eq!(search("ib-1").await[0], "IB-1", "the exact identifier first");
        assert_eq!(search("IB-1").await, ["IB-1", "IB-10", "IB-11", "IB-12"], "identifiers by their start, in order");
        assert_eq!(search("100%").await, ["IB-4"], "% is literal");
        assert_eq!(search("r_1").await, ["IB-4"], "_ is literal");
        assert_eq!(search("t").await, ["IB-2", "IB-3", "IB-1"], "short text: a title that starts with it, then recent");
        assert!(search("\"unbalanced OR").await.is_empty(), "query syntax is literal");
        let recent = ids(store.search_tickets(INSTALLATION, None, 3).await.unwrap());
        assert_eq!(recent, ["IB-12", "IB-11", "IB-10"]);
    }
);

on_both_stores!(issue_links_create_once_and_link_only_this_installations_tickets, |db: TestDatabase| async move {
    use issuebridge::store::components::{IssueToLink, LinkError, TicketForIssue};
    let store = migrated(&db).await;
    store.upsert_installation(&installation()).await.unwrap();
    store.create_team(INSTALLATION, &TeamKey::parse("ENG").unwrap(), "Engineering").await.unwrap();
    let issue = IssueToLink {
        installation: INSTALLATION,
        issue_id: "1170820242",
        web_url: Some("https://sentry.example/organizations/acme/issues/1170820242/"),
        project_slug: Some("frontend"),
    };
    let new = TicketForIssue {
        team: TeamChoice::Key(TeamKey::parse("ENG").unwrap()),
        title: "Boom",
        description: "",
        status: TicketStatus::InProgress,
        assignee: Some("ada@example.com"),
    };
    let created = store.create_ticket_for_issue(&issue, &new).await.unwrap();
    assert_eq!(created.key.to_string(), "ENG-1");
    let again = store.create_ticket_for_issue(&issue, &new).await.unwrap_err();
    assert!(matches!(&again, LinkError::AlreadyLinked(key) if key == "ENG-1"), "{again}");
    let board = store.list_tickets(&OrgScope::Everything, 10).await.unwrap();
    assert_eq!(board.len(), 1, "a refused create leaves nothing behind");
    assert_eq!(board[0].linked_issues, 1);

    let missing_team = TicketForIssue { team: TeamChoice::Key(TeamKey::parse("OPS").unwrap()), ..new.clone() };
    let other_issue = IssueToLink { issue_id: "9", ..issue };
    let err = store.create_ticket_for_issue(&other_issue, &missing_team).await.unwrap_err();
    assert!(matches!(&err, LinkError::NoSuchTeam(key) if key == "OPS"), "{err}");
    assert_eq!(store.list_tickets(&OrgScope::Everything, 10).await.unwrap().len(), 1, "nothing half made");

    // Linking: the same ticket again is fine, another ticket is refused.
    let eng1 = "ENG-1".parse().unwrap();
    assert_eq!(store.link_ticket_to_issue(&issue, &eng1).await.unwrap().id, created.id);
    assert_eq!(store.link_ticket_to_issue(&other_issue, &eng1).await.unwrap().id, created.id);
    let ib1 = store.create_ticket(&ticket("plain", TicketStatus::Todo)).await.unwrap();
    let err = store.link_ticket_to_issue(&issue, &ib1.key).await.unwrap_err();
    assert!(matches!(&err, LinkError::AlreadyLinked(key) if key == "ENG-1"), "{err}");
    let err = store.link_ticket_to_issue(&issue, &"ENG-99".parse().unwrap()).await.unwrap_err();
    assert!(matches!(err, LinkError::NoSuchTicket(_)));
    // Another installation cannot reach this one's tickets.
    let mut other = installation();
    other.uuid = InstallationUuid::parse(OTHER_INSTALLATION).unwrap();
    other.org_slug = OrgSlug::parse("other").unwrap();
    store.upsert_installation(&other).await.unwrap();
    let foreign = IssueToLink { installation: OTHER_INSTALLATION, ..issue };
    assert!(matches!(store.link_ticket_to_issue(&foreign, &eng1).await, Err(LinkError::NoSuchTicket(_))));
});

on_both_stores!(code_mappings_are_kept_per_installation_and_project, |db: TestDatabase| async move {
    use issuebridge::components::stacktrace::MappingForm;
    let store = migrated(&db).await;
    store.upsert_installation(&installation()).await.unwrap();
    let form = MappingForm {
        project_slug: "backend".into(),
        stack_root: "src".into(),
        source_root: "api/src".into(),
        provider: "github".into(),
        repo_url: "https://github.com/acme/monorepo".into(),
        branch: "main".into(),
    };
    let id = store.save_code_mapping(INSTALLATION, &form.parse().unwrap()).await.unwrap();
    let moved = MappingForm { branch: "trunk".into(), ..form.clone() };
    assert_eq!(
        store.save_code_mapping(INSTALLATION, &moved.parse().unwrap()).await.unwrap(),
        id,
        "same root: replaced"
    );
    let web = MappingForm { project_slug: "web".into(), ..form.clone() };
    store.save_code_mapping(INSTALLATION, &web.parse().unwrap()).await.unwrap();
    let backend = store.code_mappings(INSTALLATION, Some("backend")).await.unwrap();
    assert_eq!(backend.len(), 1);
    assert_eq!(backend[0].branch, "trunk");
    assert_eq!(store.code_mappings(INSTALLATION, None).await.unwrap().len(), 2);
    assert!(store.code_mappings(OTHER_INSTALLATION, None).await.unwrap().is_empty());
    assert!(!store.delete_code_mapping(OTHER_INSTALLATION, id).await.unwrap(), "not another installation's");
    assert!(store.delete_code_mapping(INSTALLATION, id).await.unwrap());
    assert_eq!(store.code_mappings(INSTALLATION, None).await.unwrap().len(), 1);
});

/// PostgreSQL ends one of two transactions that wait on each other. Here a
/// worker-like transaction holds the team's row and then links issue 77,
/// while Sentry's issue-link create has linked issue 77 and waits for the
/// team's row to number its ticket: PostgreSQL gives the create up, and the
/// store runs it again instead of answering Sentry's sidebar with an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issue_link_create_given_up_in_a_deadlock_is_run_again() {
    use issuebridge::store::components::{IssueToLink, TicketForIssue};
    use sqlx::{Connection, PgConnection};
    let Some(db) = TestDatabase::postgres().await else { return };
    let store = migrated(&db).await;
    store.upsert_installation(&installation()).await.unwrap();
    let held = store.create_ticket(&ticket("held", TicketStatus::Todo)).await.unwrap().id;

    // A worker batch at its end: it has numbered its tickets, so it holds
    // the team's row.
    let mut worker = PgConnection::connect(db.url.expose()).await.unwrap();
    sqlx::query("begin").execute(&mut worker).await.unwrap();
    sqlx::query("update team set next_number = next_number where installation_uuid = $1 and is_default")
        .bind(INSTALLATION)
        .execute(&mut worker)
        .await
        .unwrap();

    let create = tokio::spawn({
        let store = store.clone();
        async move {
            let issue = IssueToLink { installation: INSTALLATION, issue_id: "77", web_url: None, project_slug: None };
            let ticket = TicketForIssue {
                team: TeamChoice::Default,
                title: "from the sidebar",
                description: "",
                status: TicketStatus::Todo,
                assignee: None,
            };
            store.create_ticket_for_issue(&issue, &ticket).await
        }
    });
    // The create has linked issue 77 and waits for the team's row to take
    // its number.
    let mut waits = 0;
    while waits < 1 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        waits = sqlx::query_scalar::<_, i64>(
            "select count(*) from pg_stat_activity where datname = current_database()
               and wait_event_type = 'Lock' and pid <> pg_backend_pid()",
        )
        .fetch_one(&mut worker)
        .await
        .unwrap();
    }
    // Closing the cycle: the worker links the same issue. The create, which
    // has waited longer, finds the deadlock first and is the one ended.
    sqlx::query(
        "insert into ticket_link (installation_uuid, sentry_issue_id, ticket_id, created_at) values ($1, '77', $2, 0)",
    )
    .bind(INSTALLATION)
    .bind(held.0)
    .execute(&mut worker)
    .await
    .expect("the worker goes on once the create is given up");
    sqlx::query("rollback").execute(&mut worker).await.unwrap();

    let opened = create.await.unwrap().expect("the create, run again, succeeds");
    assert_eq!(opened.key.to_string(), "IB-2");
    assert_eq!(store.list_tickets(&OrgScope::Everything, 10).await.unwrap().len(), 2);
}

/// A transaction that opens tickets takes its team's numbers only as it
/// ends, so a second one (the sidebar's create, another worker loop) opens
/// and numbers its own ticket meanwhile instead of waiting for the whole
/// first transaction. PostgreSQL only: SQLite has one writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_opening_tickets_does_not_hold_its_team_until_it_ends() {
    let Some(db) = TestDatabase::postgres().await else { return };
    let store = migrated(&db).await;
    store.upsert_installation(&installation()).await.unwrap();
    store.create_ticket(&ticket("makes the default team", TicketStatus::Todo)).await.unwrap();

    let mut batch = store.begin_apply().await.unwrap();
    let opened_first = batch.open_ticket(&to_open("in a long batch")).await.unwrap();
    let second = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        store.create_ticket(&ticket("while the batch runs", TicketStatus::Todo)),
    )
    .await
    .expect("the second ticket does not wait for the batch")
    .unwrap();
    assert_eq!(second.key.to_string(), "IB-2");
    let numbered = batch.commit_numbering().await.unwrap();
    assert_eq!(numbered.len(), 1);
    assert_eq!(numbered[0].ticket, opened_first.id);
    assert_eq!(numbered[0].key.to_string(), "IB-3", "numbered as it committed, after the second");
}

on_both_stores!(a_ticket_undone_with_its_savepoint_takes_no_number, |db: TestDatabase| async move {
    let store = migrated(&db).await;
    store.upsert_installation(&installation()).await.unwrap();
    let mut tx = store.begin_apply().await.unwrap();
    tx.savepoint().await.unwrap();
    let undone = tx.open_ticket(&to_open("undone")).await.unwrap();
    assert!(undone.key.number < 0, "no number until the transaction ends: {}", undone.key);
    tx.rollback_to_savepoint().await.unwrap();
    tx.savepoint().await.unwrap();
    let mut kept = tx.open_ticket(&to_open("kept")).await.unwrap();
    tx.release().await.unwrap();
    kept.take_number(&tx.commit_numbering().await.unwrap());
    assert_eq!(kept.key.to_string(), "IB-1", "the undone ticket left no gap");
    let next = store.create_ticket(&ticket("next", TicketStatus::Todo)).await.unwrap();
    assert_eq!(next.key.to_string(), "IB-2");
});

fn to_open(title: &str) -> TicketToOpen<'_> {
    TicketToOpen {
        installation: INSTALLATION,
        team: TeamChoice::Default,
        title,
        description: "",
        status: TicketStatus::Todo,
        status_order: None,
        assignee: None,
        source: "console",
        metric_alert_id: None,
        severity: None,
        issue: None,
    }
}

/// The PostgreSQL pool does not ping a connection before every use (a round
/// trip before each statement), but it still pings one that sat idle: when
/// the server has cut it meanwhile (a restart, a proxy's idle timeout), the
/// next query gets a new connection instead of failing on the dead one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_connection_cut_while_idle_is_replaced_before_use() {
    use sqlx::{Connection, PgConnection};
    let Some(db) = TestDatabase::postgres().await else { return };
    let store = migrated(&db).await;
    store.count_deliveries().await.expect("the pool has a connection");

    let mut admin = PgConnection::connect(db.url.expose()).await.unwrap();
    let cut: i64 = sqlx::query_scalar(
        "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity
                               where datname = current_database() and pid <> pg_backend_pid()) as cut",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(cut >= 1, "the server cut the pool's connections");
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;

    assert_eq!(store.count_deliveries().await.expect("a live connection, not the cut one"), 0);
}

/// PostgreSQL gives a statement kept prepared a generic plan after five
/// runs, costed with the statistics of that moment. The outbox's claim,
/// planned so while the outbox held a few rows, walked the whole outbox for
/// each due row once it filled: one claim over 20,000 rows took 110 s, and
/// one in the bench went on in PostgreSQL after its instance had stopped. The
/// claim is planned at each run; this fails if it is kept prepared again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_first_planned_on_a_nearly_empty_postgres_outbox_stays_quick_when_it_fills() {
    use sqlx::{Connection, PgConnection};
    let Some(db) = TestDatabase::postgres().await else { return };
    let store = migrated(&db).await;
    let mut admin = PgConnection::connect(db.url.expose()).await.unwrap();
    let add_rows = |from: i64, to: i64| {
        format!(
            "insert into outbox (installation_uuid, sentry_issue_id, ticket_id, kind, change_at, next_attempt_at, created_at)
             select 'an-installation', cast(g as text), g, 'status', g, g, g from generate_series({from}, {to}) g"
        )
    };
    sqlx::query(&add_rows(1, 20)).execute(&mut admin).await.unwrap();
    // More runs than PostgreSQL needs to settle on a generic plan, on each
    // of the pool's connections that may take them.
    for _ in 0..24 {
        assert_eq!(store.claim_outbox(32, 60_000).await.unwrap().len(), 20);
        sqlx::query("update outbox set claimed_until = null").execute(&mut admin).await.unwrap();
    }

    sqlx::query(&add_rows(21, 10_000)).execute(&mut admin).await.unwrap();
    // Milliseconds when planned for what the table holds; more than the
    // 10 s below with the plan made for twenty rows.
    let claim = tokio::time::timeout(std::time::Duration::from_secs(10), store.claim_outbox(32, 60_000)).await;
    let claimed = claim.expect("a claim over 10,000 rows within 10 s").unwrap();
    assert_eq!(claimed.len(), 32);
}

/// A burst of webhooks grows the inbox's WAL (SQLite cannot start it over
/// while commits keep coming: 1.9 GB for 100,000 deliveries in the bench).
/// Once the burst is over it is cut back to 64 MB, so the disk gets the
/// space back. Fails without `journal_size_limit` on the inbox.
#[tokio::test]
async fn a_wal_a_burst_grew_is_cut_back_once_the_burst_is_over() {
    const LIMIT: u64 = 64 << 20;
    let dir = tempfile::tempdir().unwrap();
    let store = migrated_at(&issuebridge::config::DatabaseUrl::sqlite_file(&dir.path().join("ib.db"))).await;
    let wal = dir.path().join("ib.inbox.db-wal");
    let wal_size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    let burst = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (store, burst) = (store.clone(), burst.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while burst.load(std::sync::atomic::Ordering::Relaxed) {
                    let batch: Vec<_> = (0..4)
                        .map(|i| issuebridge::store::NewDelivery {
                            body: vec![b'x'; 1300],
                            ..delivery(&format!("burst {writer}-{n}-{i}"))
                        })
                        .collect();
                    store.insert_deliveries(&batch).await.unwrap();
                    n += 1;
                }
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while wal_size() < LIMIT + (16 << 20) {
        assert!(std::time::Instant::now() < deadline, "the burst grew the WAL to {} bytes only", wal_size());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    burst.store(false, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let grown = wal_size();
    // The checkpointer copies it back within a second; the next commit
    // starts it over and cuts it back.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut n = 0;
    while wal_size() > LIMIT {
        assert!(std::time::Instant::now() < deadline, "the WAL is still {} bytes (grown to {grown})", wal_size());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        store.insert_deliveries(&[delivery(&format!("after the burst {n}"))]).await.unwrap();
        n += 1;
    }
}
