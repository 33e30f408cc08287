//! The worker: the loop that claims stored deliveries and hands them to
//! [`crate::pipeline::apply`].
//!
//! `installation` deliveries are applied one by one, because they call
//! Sentry; every other resource as a batch in one transaction. A failure that may pass (Sentry unreachable, the store
//! busy, an installation not known yet) is retried with backoff; one that
//! cannot (a spent grant code, a payload that is not what the contract
//! says) or that keeps failing is parked as dead, with its error, for a
//! person to look at and replay.

use std::time::Duration;

use crate::domain::webhooks::Resource;
use crate::pipeline::apply;
use crate::store::{DeliveryOutcome, StoreError};
use crate::AppState;

/// How long a claim lasts before another worker may take it over.
pub const LEASE_MS: i64 = 60_000;
/// Deliveries claimed at once. A batch is one transaction; on SQLite it
/// holds the write lock while it runs, which the inbox waits for, so it
/// stays small enough to take a few milliseconds.
const BATCH: i64 = 128;

/// While deliveries are arriving, the worker takes small batches and pauses
/// between them: acknowledging within Sentry's one second comes first, and
/// what is stored is applied as soon as the burst is over.
const BATCH_DURING_INTAKE: i64 = 16;
const PAUSE_DURING_INTAKE: Duration = Duration::from_millis(25);
const INTAKE_WINDOW_MS: i64 = 50;

/// Processes one batch of due deliveries; returns how many it claimed.
pub async fn run_once(state: &AppState) -> Result<usize, StoreError> {
    run_batch(state, BATCH).await
}

async fn run_batch(state: &AppState, limit: i64) -> Result<usize, StoreError> {
    let claimed = state.store.claim_deliveries(limit, LEASE_MS).await?;
    let count = claimed.len();
    let (installations, others): (Vec<_>, Vec<_>) =
        claimed.into_iter().partition(|delivery| delivery.resource == Resource::Installation.as_str());
    for delivery in &installations {
        let outcome = apply::installation::apply(state, delivery).await;
        if let DeliveryOutcome::Dead { error } | DeliveryOutcome::Retry { error, .. } = &outcome {
            tracing::warn!(delivery = delivery.id, %error, ?outcome, "delivery not processed");
        }
        state.store.finish_delivery(delivery, &outcome).await?;
    }
    if !others.is_empty() {
        apply::apply_batch(&state.store, &others).await?;
    }
    // Open boards load again; the worker cannot cheaply tell which
    // deliveries changed a ticket, so every installation it touched says so.
    let mut touched: Vec<&str> =
        installations.iter().chain(&others).filter_map(|d| d.installation_uuid.as_deref()).collect();
    touched.sort_unstable();
    touched.dedup();
    for installation in touched {
        let change =
            crate::domain::outbox::LiveChange { installation_uuid: installation.to_owned(), tickets: Vec::new() };
        state.live.publish(change).await;
    }
    // The worker queues external-issue links for the tickets it opens.
    if count > 0 {
        state.outbox_ready.notify_one();
    }
    Ok(count)
}

/// Batches applied at once on PostgreSQL, where `skip locked` keeps them
/// apart and most of a batch's time is spent waiting for the database.
/// SQLite has one writer: one loop.
const POSTGRES_LOOPS: usize = 4;

/// Runs until `shutdown` resolves, polling when idle.
pub async fn run(state: AppState, shutdown: tokio::sync::watch::Receiver<bool>) {
    match state.store.release_orphaned_claims().await {
        Ok(0) => {}
        Ok(freed) => tracing::info!(freed, "resuming deliveries a previous run had claimed"),
        Err(error) => tracing::warn!(%error, "could not free the claims of a previous run"),
    }
    let loops = match state.store.backend() {
        crate::config::Backend::Postgres => POSTGRES_LOOPS,
        crate::config::Backend::Sqlite => 1,
    };
    let tasks: Vec<_> = (0..loops).map(|_| tokio::spawn(work_loop(state.clone(), shutdown.clone()))).collect();
    for task in tasks {
        let _ = task.await;
    }
}

async fn work_loop(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        let intake = state.inbox.active_within(INTAKE_WINDOW_MS);
        if intake {
            tokio::select! {
                () = tokio::time::sleep(PAUSE_DURING_INTAKE) => {}
                _ = shutdown.changed() => {}
            }
        }
        let limit = if intake { BATCH_DURING_INTAKE } else { BATCH };
        let idle = match run_batch(&state, limit).await {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => {
                tracing::error!(%error, "worker could not reach the store");
                true
            }
        };
        if idle {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.changed() => {}
            }
        }
        if *shutdown.borrow() {
            return;
        }
    }
}
