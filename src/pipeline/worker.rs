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
/// holds the database file's write lock while it runs (not the inbox's),
/// which the console and Sentry's sidebar wait for, so it stays small
/// enough to take a few milliseconds.
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

/// `limit` deliveries for each lane.
async fn run_batch(state: &AppState, limit: i64) -> Result<usize, StoreError> {
    let lanes = lanes(state.store.backend());
    let claimed = state.store.claim_deliveries(limit * lanes as i64, LEASE_MS).await?;
    let count = claimed.len();
    // Open boards load again; the worker cannot cheaply tell which
    // deliveries changed a ticket, so every installation it touched says so.
    let mut touched: Vec<String> = claimed.iter().filter_map(|d| d.installation_uuid.clone()).collect();
    touched.sort_unstable();
    touched.dedup();
    let (installations, others): (Vec<_>, Vec<_>) =
        claimed.into_iter().partition(|delivery| delivery.resource == Resource::Installation.as_str());
    for delivery in &installations {
        let outcome = apply::installation::apply(state, delivery).await;
        if let DeliveryOutcome::Dead { error } | DeliveryOutcome::Retry { error, .. } = &outcome {
            tracing::warn!(delivery = delivery.id, %error, ?outcome, "delivery not processed");
        }
        state.store.finish_delivery(delivery, &outcome).await?;
    }
    // A few deliveries go in one transaction (one commit, and tickets
    // numbered in the order their deliveries came); lanes only share a
    // claim that fills them.
    let lanes = lanes.min(others.len().div_ceil(MIN_LANE)).max(1);
    let mut by_lane: Vec<Vec<_>> = (0..lanes).map(|_| Vec::new()).collect();
    for delivery in others {
        by_lane[lane_of(&delivery, lanes)].push(delivery);
    }
    let applying = by_lane.iter().filter(|lane| !lane.is_empty()).map(|lane| apply::apply_batch(&state.store, lane));
    for applied in futures_util::future::join_all(applying).await {
        applied?;
    }
    for installation in touched {
        let change = crate::domain::outbox::LiveChange { installation_uuid: installation, tickets: Vec::new() };
        state.live.publish(change).await;
    }
    // The worker queues external-issue links for the tickets it opens.
    if count > 0 {
        state.outbox_ready.notify_one();
    }
    Ok(count)
}

/// Batches applied side by side on PostgreSQL, where most of a batch's
/// time is spent waiting for the database. SQLite has one writer: one lane.
///
/// One loop claims for all lanes and puts each Sentry issue's deliveries in
/// one lane, in order. Lanes that claimed for themselves split an issue's
/// deliveries, which Sentry sends together (`issue.created`, then its
/// first `error.created`): the second lane then waited on the first's
/// uncommitted row of that issue, batch after batch, until the lanes ran
/// one at a time.
const POSTGRES_LANES: usize = 4;

/// Deliveries a lane should have before another lane opens.
const MIN_LANE: usize = 32;

fn lanes(backend: crate::config::Backend) -> usize {
    match backend {
        crate::config::Backend::Postgres => POSTGRES_LANES,
        crate::config::Backend::Sqlite => 1,
    }
}

/// The lane of a delivery: its subject's, else any.
fn lane_of(delivery: &crate::store::ClaimedDelivery, lanes: usize) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash = match apply::subject_of(delivery) {
        // Fixed keys, so a lane is the same across claims and restarts.
        Some(subject) => BuildHasherDefault::<DefaultHasher>::default()
            .hash_one((delivery.installation_uuid.as_deref(), subject.as_str())),
        None => delivery.id as u64,
    };
    (hash % lanes as u64) as usize
}

/// Runs until `shutdown` resolves, polling when idle.
pub async fn run(state: AppState, shutdown: tokio::sync::watch::Receiver<bool>) {
    match state.store.release_orphaned_claims().await {
        Ok(0) => {}
        Ok(freed) => tracing::info!(freed, "resuming deliveries a previous run had claimed"),
        Err(error) => tracing::warn!(%error, "could not free the claims of a previous run"),
    }
    work_loop(state, shutdown).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ClaimedDelivery;

    fn about_issue(id: i64, issue: i64, body: &str) -> ClaimedDelivery {
        ClaimedDelivery {
            id,
            received_at: 0,
            resource: "issue".into(),
            action: None,
            installation_uuid: Some("inst".into()),
            headers: "{}".into(),
            body: body.replace("ISSUE", &issue.to_string()).into_bytes(),
            attempts: 1,
        }
    }

    #[test]
    fn one_issues_deliveries_share_a_lane_and_issues_spread_over_lanes() {
        let kinds = [
            r#"{"data":{"issue":{"id":"ISSUE"}}}"#,
            r#"{"data":{"error":{"issue_id":"ISSUE"}}}"#,
            r#"{"data":{"issue_id":ISSUE}}"#,
            r#"{"data":{"event":{"issue_id":ISSUE}}}"#,
        ];
        let mut used = std::collections::BTreeSet::new();
        for issue in 0..40 {
            let lanes: Vec<usize> = kinds
                .iter()
                .enumerate()
                .map(|(n, body)| lane_of(&about_issue(issue * 4 + n as i64, issue, body), POSTGRES_LANES))
                .collect();
            assert!(lanes.iter().all(|lane| *lane == lanes[0]), "issue {issue} split over lanes {lanes:?}");
            used.insert(lanes[0]);
        }
        assert_eq!(used.len(), POSTGRES_LANES, "40 issues use every lane");
        assert_eq!(lane_of(&about_issue(5, 1, "not json"), POSTGRES_LANES), 1, "no subject: by delivery id");
    }
}
