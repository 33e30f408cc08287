//! Console sessions: tower-sessions over the store's own database, so
//! every instance on one PostgreSQL shares them and logging out anywhere
//! ends a session everywhere.
//!
//! The session store is chosen at run time like the store, so one layer
//! type needs one store type: [`ConsoleSessions`] delegates to
//! tower-sessions-sqlx-store's SQLite or PostgreSQL store.

use std::time::Duration;

use async_trait::async_trait;
use issuebridge::config::Config;
use issuebridge::store::Store;
use tower_sessions::cookie::time;
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// How often expired sessions are deleted.
const CLEAN_UP_EVERY: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone)]
pub enum ConsoleSessions {
    /// With the store, whose database-file write gate every write takes:
    /// the session table is in that file, and the worker's transaction
    /// commits early for whoever queues at the gate.
    Sqlite(SqliteStore, Store),
    Postgres(PostgresStore),
}

impl ConsoleSessions {
    /// Over the store's pool; [`ConsoleSessions::migrate`] creates the table.
    pub fn new(store: &Store) -> Self {
        match store {
            Store::Sqlite(pool) => Self::Sqlite(SqliteStore::new(pool.clone()), store.clone()),
            Store::Postgres(pool) => Self::Postgres(PostgresStore::new(pool.clone())),
        }
    }

    /// Creates tower-sessions' table if it is missing. Its own statement,
    /// idempotent, so several instances may run it at once.
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(store, _) => store.migrate().await,
            Self::Postgres(store) => store.migrate().await,
        }
    }

    /// Deletes expired sessions every few minutes, for as long as the
    /// process runs.
    pub fn clean_up_continuously(&self) -> tokio::task::JoinHandle<()> {
        let sessions = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(CLEAN_UP_EVERY);
            loop {
                every.tick().await;
                if let Err(error) = sessions.delete_expired().await {
                    tracing::warn!(%error, "could not delete expired console sessions");
                }
            }
        })
    }

    /// The cookie's settings: `HttpOnly`, `SameSite=Lax` (the OAuth
    /// callback is a top-level navigation from Sentry, which must carry
    /// it), and `Secure` with the `__Host-` prefix when the console is
    /// served over https. A session unused for the idle timeout expires:
    /// each request saves it, to push its expiry on (a logout still ends it
    /// for good: its login row is ended, whatever a late save writes back).
    pub fn layer(&self, config: &Config, https: bool) -> SessionManagerLayer<ConsoleSessions> {
        SessionManagerLayer::new(self.clone())
            .with_always_save(true)
            .with_name(cookie_name(https))
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_secure(https)
            .with_path("/")
            .with_expiry(Expiry::OnInactivity(time::Duration::seconds(config.session.idle_timeout_secs)))
    }
}

/// `__Host-` makes the browser refuse the cookie unless it is `Secure`,
/// has `Path=/` and no `Domain`: no other site (or subdomain) can plant it.
pub fn cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-issuebridge-session"
    } else {
        "issuebridge-session"
    }
}

#[async_trait]
impl SessionStore for ConsoleSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Self::Sqlite(store, board) => {
                let _turn = board.write_turn().await;
                store.create(record).await
            }
            Self::Postgres(store) => store.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Self::Sqlite(store, board) => {
                let _turn = board.write_turn().await;
                store.save(record).await
            }
            Self::Postgres(store) => store.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Self::Sqlite(store, _) => store.load(id).await,
            Self::Postgres(store) => store.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Self::Sqlite(store, board) => {
                let _turn = board.write_turn().await;
                store.delete(id).await
            }
            Self::Postgres(store) => store.delete(id).await,
        }
    }
}

#[async_trait]
impl ExpiredDeletion for ConsoleSessions {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            Self::Sqlite(store, board) => {
                let _turn = board.write_turn().await;
                store.delete_expired().await
            }
            Self::Postgres(store) => store.delete_expired().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session's save writes the database file: it queues at the file's
    /// write gate like every other writer of the board, so the worker's
    /// transaction, long while nobody waits, commits for it. This fails if
    /// sessions write past the gate.
    #[tokio::test]
    async fn a_session_save_queues_for_the_workers_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let url = issuebridge::config::DatabaseUrl::sqlite_file(&dir.path().join("ib.db"));
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let sessions = ConsoleSessions::new(&store);
        sessions.migrate().await.unwrap();
        let batch = store.begin_apply().await.unwrap();
        let record = Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        let saving = tokio::spawn(async move { sessions.save(&record).await.is_ok() });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !batch.holds_others_up() {
            assert!(std::time::Instant::now() < deadline, "the session's save never queued at the gate");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        batch.commit().await.unwrap();
        assert!(saving.await.unwrap(), "the save goes once the transaction commits");
    }
}
