//! On SQLite the deliveries live in a file of their own beside the
//! database, attached to every connection as the schema `inbox`.
//!
//! SQLite lets one connection write to a file at a time. With the deliveries
//! in the database file, every acknowledgement waited for the worker's
//! transaction on the board to commit, which made the tail of webhook
//! latency (docs/architecture.md, "The inbox file (SQLite)"). Each attached
//! file has its own write lock: the inbox commits while the worker writes
//! tickets.
//!
//! What that costs: a transaction that writes both files is atomic in each
//! but not across them (SQLite's WAL mode has no shared commit). So nothing
//! writes both at once. The worker commits a batch's changes to the board
//! first and records the deliveries' outcomes in the inbox after. If it
//! stops between the two, the deliveries are claimed again and applied
//! again, which changes nothing twice: every handler is idempotent
//! (`crate::pipeline::apply`).
//!
//! Queries name the tables without a schema: SQLite finds `delivery` in the
//! inbox because the database file has none. PostgreSQL keeps one database.

use std::path::{Path, PathBuf};

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, SqlitePool};

use super::StoreError;

/// `issuebridge.db` → `issuebridge.inbox.db`, in the same folder.
pub fn inbox_file_beside(database: &Path) -> PathBuf {
    let name = match (database.file_stem(), database.extension()) {
        (Some(stem), Some(extension)) => {
            let mut name = stem.to_os_string();
            name.push(".inbox.");
            name.push(extension);
            name
        }
        _ => {
            let mut name = database.file_name().unwrap_or_default().to_os_string();
            name.push(".inbox");
            name
        }
    };
    database.with_file_name(name)
}

/// Attaches the inbox file to a new connection, with the database's own
/// durability: WAL, and a sync of the WAL at every commit, so an
/// acknowledged delivery survives a power cut. Both are settings of each
/// file, not of the connection.
pub(super) async fn attach(conn: &mut SqliteConnection, inbox: &Path) -> Result<(), sqlx::Error> {
    let file = inbox.to_string_lossy();
    sqlx::query("attach database $1 as inbox").bind(file.as_ref()).execute(&mut *conn).await?;
    sqlx::query("pragma inbox.journal_mode = wal").execute(&mut *conn).await?;
    sqlx::query("pragma inbox.synchronous = full").execute(&mut *conn).await?;
    sqlx::query(&format!("pragma inbox.journal_size_limit = {}", super::WAL_SIZE_LIMIT)).execute(&mut *conn).await?;
    Ok(())
}

/// Takes the database file's write lock in the transaction that `conn` has
/// open, and only that file's: a write that changes nothing locks the file
/// it names. `BEGIN IMMEDIATE` would lock the inbox file too.
pub(super) async fn lock_database_file(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::query("update main.installation set uuid = uuid where 0").execute(conn).await.map(|_| ())
}

/// The inbox's tables, as migrations 0001 to 0005 left them in the
/// database file. A later change to them goes here, as a statement that can
/// run again.
const INBOX_SCHEMA: &str = "
create table if not exists inbox.delivery (
    id                integer primary key autoincrement,
    received_at       bigint not null,
    source            text not null check (source in ('webhook', 'service_hook')),
    request_id        text,
    resource          text not null,
    action            text,
    installation_uuid text,
    dedupe_key        text not null unique,
    headers           text not null,
    body              blob not null,
    state             text not null default 'pending',
    attempts          bigint not null default 0,
    next_attempt_at   bigint,
    last_error        text,
    processed_at      bigint,
    duplicate_count   bigint not null default 0,
    last_duplicate_at bigint,
    note              text
);
create index if not exists inbox.delivery_recent on delivery (received_at desc, id desc);
create index if not exists inbox.delivery_due on delivery (state, next_attempt_at);
create index if not exists inbox.delivery_state_id on delivery (state, id);
create index if not exists inbox.delivery_resource_id on delivery (resource, id);
create index if not exists inbox.delivery_installation_id on delivery (installation_uuid, id);
create index if not exists inbox.delivery_action_id on delivery (action, id);
create table if not exists inbox.delivery_attempt (
    id                integer primary key autoincrement,
    delivery_id       bigint not null,
    attempt           bigint not null,
    finished_at       bigint not null,
    outcome           text not null,
    error             text
);
create index if not exists inbox.delivery_attempt_delivery on delivery_attempt (delivery_id, id);
";

const DELIVERY_COLUMNS: &str = "id, received_at, source, request_id, resource, action, installation_uuid, dedupe_key,
     headers, body, state, attempts, next_attempt_at, last_error, processed_at, duplicate_count,
     last_duplicate_at, note";
const ATTEMPT_COLUMNS: &str = "id, delivery_id, attempt, finished_at, outcome, error";

/// Records in the database file that its deliveries are in the inbox file,
/// so a start that finds the database without them stops instead of making
/// an empty inbox (delivery ids would start again at 1, and the board keeps
/// delivery ids to order changes by).
const MOVED_MARK: &str = "inbox_file_moved";

/// Makes the inbox's tables, and moves the deliveries that the migrations
/// keep in the database file (all of them, in a database made before the
/// inbox file) into it. Runs after the migrations, at every start.
///
/// The move is two transactions, in this order, because a transaction
/// over both files could commit in one and not the other: the copy, which
/// writes only the inbox; then, once it is durable, the old tables are
/// dropped from the database, in a transaction that first takes the
/// database's write lock and checks that every row is in the inbox as it
/// is in the database (a process still writing the old tables, such as the
/// previous version left running, would otherwise lose what it wrote
/// meanwhile; the copy then runs again). Stopped between the two, the next
/// start copies again and drops.
pub(super) async fn make_and_fill(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let exists =
        |schema: &str, name: &str| format!("select count(*) from {schema}.sqlite_master where name = '{name}'");
    let moved_before: i64 = sqlx::query_scalar(&exists("main", MOVED_MARK)).fetch_one(&mut *conn).await?;
    let inbox_made: i64 = sqlx::query_scalar(&exists("inbox", "delivery")).fetch_one(&mut *conn).await?;
    if moved_before > 0 && inbox_made == 0 {
        let file: Option<String> = sqlx::query_scalar("select file from pragma_database_list where name = 'inbox'")
            .fetch_optional(&mut *conn)
            .await?;
        return Err(StoreError::InboxMissing(file.unwrap_or_else(|| "beside the database".into())));
    }
    sqlx::raw_sql(INBOX_SCHEMA).execute(&mut *conn).await?;
    const MOVES_TRIED: usize = 5;
    for _ in 0..MOVES_TRIED {
        let left_in_database: i64 = sqlx::query_scalar(&exists("main", "delivery")).fetch_one(&mut *conn).await?;
        if left_in_database == 0 {
            if moved_before == 0 {
                mark_moved(&mut conn).await?;
            }
            return Ok(());
        }
        copy_into_inbox(&mut conn).await?;
        let mut drop = conn.begin().await?;
        lock_database_file(&mut drop).await?;
        let mut missing = 0;
        for (table, columns) in [("delivery", DELIVERY_COLUMNS), ("delivery_attempt", ATTEMPT_COLUMNS)] {
            // Rows not in the inbox as they are now in the database file.
            let same: Vec<String> =
                columns.split(',').map(str::trim).map(|column| format!("new.{column} is old.{column}")).collect();
            let sql = format!(
                "select count(*) from main.{table} as old
                 where not exists (select 1 from inbox.{table} as new where {})",
                same.join(" and ")
            );
            missing += sqlx::query_scalar::<_, i64>(&sql).fetch_one(&mut *drop).await?;
        }
        if missing > 0 {
            tracing::warn!(missing, "deliveries changed in the database file during the move; copying again");
            drop.rollback().await?;
            continue;
        }
        sqlx::query("drop table if exists main.delivery_attempt").execute(&mut *drop).await?;
        sqlx::query("drop table if exists main.delivery").execute(&mut *drop).await?;
        mark_moved(&mut drop).await?;
        drop.commit().await?;
        return Ok(());
    }
    Err(StoreError::Corrupt(format!(
        "deliveries kept changing in the database file during {MOVES_TRIED} attempts to move them into the \
         inbox file: stop the previous version of issuebridge, then start again"
    )))
}

/// Writes the mark, once.
async fn mark_moved(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("create table if not exists main.{MOVED_MARK} (moved_at bigint not null)"))
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!(
        "insert into main.{MOVED_MARK} (moved_at) select $1 where not exists (select 1 from main.{MOVED_MARK})"
    ))
    .bind(crate::domain::time::now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Copies the database file's deliveries and attempts into the inbox, in
/// a transaction that writes only the inbox. A row copied before is
/// copied again (its state may have changed since); a row that clashes
/// with another (a dedupe key taken by a different delivery) fails the
/// copy rather than being left behind.
async fn copy_into_inbox(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let mut copy = conn.begin().await?;
    for (table, columns) in [("delivery", DELIVERY_COLUMNS), ("delivery_attempt", ATTEMPT_COLUMNS)] {
        let updates: Vec<String> = columns
            .split(',')
            .map(str::trim)
            .filter(|column| *column != "id")
            .map(|column| format!("{column} = excluded.{column}"))
            .collect();
        // `where true` tells SQLite's parser that `on conflict` belongs to
        // the insert, not to a join of the select.
        let sql = format!(
            "insert into inbox.{table} ({columns}) select {columns} from main.{table} where true
             on conflict (id) do update set {}",
            updates.join(", ")
        );
        let moved = sqlx::query(&sql).execute(&mut *copy).await?.rows_affected();
        tracing::info!(table, moved, "copied into the inbox file");
    }
    copy.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inbox_file_is_named_after_the_database() {
        assert_eq!(inbox_file_beside(Path::new("data/issuebridge.db")), Path::new("data/issuebridge.inbox.db"));
        assert_eq!(
            inbox_file_beside(Path::new("/var/lib/ib/store.sqlite3")),
            Path::new("/var/lib/ib/store.inbox.sqlite3")
        );
        assert_eq!(inbox_file_beside(Path::new("/srv/ib")), Path::new("/srv/ib.inbox"));
    }
}
