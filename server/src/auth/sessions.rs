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
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl ConsoleSessions {
    /// Over the store's pool; [`ConsoleSessions::migrate`] creates the table.
    pub fn new(store: &Store) -> Self {
        match store {
            Store::Sqlite(pool) => Self::Sqlite(SqliteStore::new(pool.clone())),
            Store::Postgres(pool) => Self::Postgres(PostgresStore::new(pool.clone())),
        }
    }

    /// Creates tower-sessions' table if it is missing. Its own statement,
    /// idempotent, so several instances may run it at once.
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(store) => store.migrate().await,
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
            Self::Sqlite(store) => store.create(record).await,
            Self::Postgres(store) => store.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Self::Sqlite(store) => store.save(record).await,
            Self::Postgres(store) => store.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Self::Sqlite(store) => store.load(id).await,
            Self::Postgres(store) => store.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Self::Sqlite(store) => store.delete(id).await,
            Self::Postgres(store) => store.delete(id).await,
        }
    }
}

#[async_trait]
impl ExpiredDeletion for ConsoleSessions {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            Self::Sqlite(store) => store.delete_expired().await,
            Self::Postgres(store) => store.delete_expired().await,
        }
    }
}
