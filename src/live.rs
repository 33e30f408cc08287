//! The live feed: "these tickets changed", for the console's open boards
//! and ticket pages, which load again what they show.
//!
//! With SQLite there is one instance, and a change goes straight to this
//! process's subscribers. With PostgreSQL several instances may serve the
//! console, so a change is published with `pg_notify` and every instance
//! hears it through `LISTEN` (its own included) and passes it on to its
//! subscribers. The listener starts with the first subscriber, so instances
//! nobody watches hold no extra connection.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::domain::outbox::LiveChange;
use crate::store::Store;

/// PostgreSQL's channel for the feed.
pub const CHANNEL: &str = "issuebridge_live";

/// How many changes a slow subscriber may fall behind before it misses
/// some (it then loads everything again, see [`broadcast::error::RecvError::Lagged`]).
const BACKLOG: usize = 1024;

#[derive(Clone, Debug)]
pub struct LiveFeed {
    sender: broadcast::Sender<LiveChange>,
    store: Store,
    listening: Arc<AtomicBool>,
}

impl LiveFeed {
    pub fn new(store: Store) -> Self {
        let (sender, _) = broadcast::channel(BACKLOG);
        Self { sender, store, listening: Arc::default() }
    }

    /// Changes from now on, from every instance.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveChange> {
        let receiver = self.sender.subscribe();
        if let Store::Postgres(pool) = &self.store {
            if !self.listening.swap(true, Ordering::SeqCst) {
                tokio::spawn(listen(pool.clone(), self.sender.clone()));
            }
        }
        receiver
    }

    /// Tells every open console that these tickets changed. Never fails:
    /// a missed notice costs a stale board until the next one, not data.
    pub async fn publish(&self, change: LiveChange) {
        match &self.store {
            Store::Postgres(pool) => {
                let Ok(payload) = serde_json::to_string(&change) else { return };
                let sent = sqlx::query("select pg_notify($1, $2)").bind(CHANNEL).bind(payload).execute(pool).await;
                if let Err(error) = sent {
                    tracing::warn!(%error, "could not publish a live change; this instance's consoles still hear it");
                    let _ = self.sender.send(change);
                }
            }
            Store::Sqlite(_) => {
                let _ = self.sender.send(change);
            }
        }
    }
}

/// Passes PostgreSQL's notifications on to this process's subscribers,
/// reconnecting after a lost connection.
async fn listen(pool: sqlx::PgPool, sender: broadcast::Sender<LiveChange>) {
    loop {
        match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(error) = listener.listen(CHANNEL).await {
                    tracing::warn!(%error, "could not listen for live changes");
                } else {
                    loop {
                        match listener.recv().await {
                            Ok(notice) => {
                                if let Ok(change) = serde_json::from_str::<LiveChange>(notice.payload()) {
                                    let _ = sender.send(change);
                                }
                            }
                            Err(error) => {
                                tracing::warn!(%error, "lost the live-change listener; reconnecting");
                                break;
                            }
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "could not connect the live-change listener"),
        }
        if pool.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
