//! The handlers: what each stored delivery does to issues and tickets.
//!
//! This file is the engine: a batch of deliveries is applied in one
//! transaction ([`crate::store::apply_tx`]), with a savepoint per delivery
//! only when a run is redone after a failure; one file per resource family
//! holds its handlers. Handlers only touch the
//! database, never Sentry, so a batch holds no lock across the network.
//! Every handler is idempotent: statuses and assignments carry the order
//! of the change that set them (a late or replayed older delivery loses),
//! comments are keyed by Sentry's comment id, and effects that must happen
//! once (counting an event, opening a ticket) are keyed in `applied_effect`.
//!
//! Installation deliveries are not applied in a batch: they call Sentry
//! (token exchange), so [`installation`] applies them one by one, outside
//! any transaction.

mod alert;
mod comment;
mod event;
pub mod installation;
mod issue;

use serde::de::DeserializeOwned;

use crate::domain::installation::InstallationStatus;
use crate::domain::ticket_rules::{ChangeOrder, InstallationSettings};
use crate::domain::webhooks::Resource;
use crate::pipeline::retry::retry_or_give_up;
use crate::store::apply_tx::{ApplyTx, Renames};
use crate::store::deliveries::FinishedDelivery;
use crate::store::{ClaimedDelivery, DeliveryOutcome, InstallationRecord, Store, StoreError, TeamError};

/// How applying one delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Changes made (or none needed); the note says which.
    Done(String),
    /// Nothing to do for this delivery, on purpose.
    Ignored(String),
    /// Cannot be applied yet (its installation is not known or not ready);
    /// retried with backoff.
    Wait(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The payload is not what the contract describes: retrying cannot help.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TeamError> for ApplyError {
    fn from(e: TeamError) -> Self {
        match e {
            TeamError::Store(e) => Self::Store(e),
            other => Self::Invalid(other.to_string()),
        }
    }
}

/// On SQLite the worker's transaction holds the database file's write
/// lock, which the sidebar's issue-link create, a person's edit and the
/// console's session writes wait for (deliveries do not: they are in a file
/// of their own, `crate::store::inbox_file`). It commits as soon as one of
/// them queues for the lock, and after this long in any case, so a writer
/// that does not queue at the gate waits no longer than that. While nobody
/// waits, one transaction (one fsync) applies a whole claim.
const MAX_TRANSACTION: std::time::Duration = std::time::Duration::from_millis(50);

/// An installation as its deliveries need it, read and parsed once per
/// transaction.
struct KnownInstallation {
    status: InstallationStatus,
    settings: InstallationSettings,
}

impl From<InstallationRecord> for KnownInstallation {
    fn from(record: InstallationRecord) -> Self {
        Self { settings: record.settings(), status: record.status }
    }
}

type InstallationCache = std::collections::HashMap<String, Option<KnownInstallation>>;

/// Applies deliveries and records each outcome, many to a transaction.
///
/// The fast path applies a run of deliveries in one transaction with no
/// savepoints, and keeps it only if every one of them applied. If one did
/// not (it waits, is invalid, or the store failed), the run is rolled back
/// and applied again carefully, each delivery in its own savepoint, so the
/// failure is recorded alone and the others still apply. Failures are rare;
/// savepoints cost two statements a delivery.
pub async fn apply_batch(store: &Store, deliveries: &[ClaimedDelivery]) -> Result<(), StoreError> {
    // Only on SQLite do other writers wait for the whole transaction.
    let cut_short = store.backend() == crate::config::Backend::Sqlite;
    let mut rest = deliveries;
    while !rest.is_empty() {
        // A run is mostly about a few installations: read each once per
        // transaction (an uninstall may commit between two of them).
        let mut installations = InstallationCache::new();
        let mut tx = store.begin_apply().await?;
        let started = std::time::Instant::now();
        let mut applied = Vec::new();
        let mut all_applied = true;
        for delivery in rest {
            if !applied.is_empty() && cut_short && (tx.holds_others_up() || started.elapsed() > MAX_TRANSACTION) {
                break;
            }
            match apply_one(&mut tx, delivery, &mut installations).await {
                Ok(Applied::Done(note)) => applied.push((DeliveryOutcome::Processed, Some(note))),
                Ok(Applied::Ignored(note)) => applied.push((DeliveryOutcome::Ignored, Some(note))),
                _ => {
                    // Redone below with savepoints, this one included.
                    all_applied = false;
                    applied.push((DeliveryOutcome::Ignored, None));
                    break;
                }
            }
        }
        let (run, after) = rest.split_at(applied.len());
        if all_applied {
            finish_run(store, tx, run, &applied).await?;
        } else {
            tx.rollback().await?;
            apply_carefully(store, run, &mut installations).await?;
        }
        rest = after;
    }
    Ok(())
}

/// Ends a run's transaction: numbers the tickets it opened (last, see
/// `ApplyTx`), puts their numbers in the notes that named them, records
/// how each delivery ended, and commits.
async fn finish_run(
    store: &Store,
    mut tx: ApplyTx,
    deliveries: &[ClaimedDelivery],
    outcomes: &[(DeliveryOutcome, Option<String>)],
) -> Result<(), StoreError> {
    let renames = Renames::new(&tx.number_new_tickets().await?);
    let notes: Vec<Option<String>> =
        outcomes.iter().map(|(_, note)| note.as_deref().map(|n| renames.apply(n))).collect();
    let finished: Vec<FinishedDelivery<'_>> = deliveries
        .iter()
        .zip(outcomes.iter().zip(&notes))
        .map(|(d, ((outcome, _), note))| FinishedDelivery {
            id: d.id,
            attempt: d.attempts,
            outcome,
            note: note.as_deref(),
        })
        .collect();
    tx.commit_finishing(store, &finished).await
}

/// The slow path: each delivery in its own savepoint, one transaction.
async fn apply_carefully(
    store: &Store,
    deliveries: &[ClaimedDelivery],
    installations: &mut InstallationCache,
) -> Result<(), StoreError> {
    let mut tx = store.begin_apply().await?;
    let mut outcomes = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        tx.savepoint().await?;
        let (outcome, note) = match apply_one(&mut tx, delivery, installations).await {
            Ok(Applied::Done(note)) => (DeliveryOutcome::Processed, Some(note)),
            Ok(Applied::Ignored(note)) => (DeliveryOutcome::Ignored, Some(note)),
            Ok(Applied::Wait(reason)) => (retry_or_give_up(delivery, reason), None),
            Err(ApplyError::Invalid(error)) => (DeliveryOutcome::Dead { error }, None),
            Err(ApplyError::Store(error)) => (retry_or_give_up(delivery, error.to_string()), None),
        };
        if matches!(outcome, DeliveryOutcome::Processed | DeliveryOutcome::Ignored) {
            tx.release().await?;
        } else {
            tx.rollback_to_savepoint().await?;
            tracing::warn!(delivery = delivery.id, ?outcome, "delivery not applied");
        }
        outcomes.push((outcome, note));
    }
    finish_run(store, tx, deliveries, &outcomes).await
}

/// How far after its arrival a delivery may say it was sent: clocks differ
/// a little, never by more.
pub const SENT_AFTER_ARRIVAL_MAX_MS: i64 = 60 * 1000;

/// When Sentry sent the delivery (its timestamp header, whole seconds),
/// else when it arrived; then the delivery id. The header is not signed,
/// so it may not lie later than a minute after the arrival: a far-future
/// value would otherwise win against every later change and freeze the
/// ticket. An early value is kept as sent: it can only make the change
/// lose, and moving it later could make a replayed old change win.
pub fn change_order(delivery: &ClaimedDelivery) -> ChangeOrder {
    let headers: serde_json::Value = serde_json::from_str(&delivery.headers).unwrap_or_default();
    let arrived = delivery.received_at;
    let sent_at_ms = ["sentry-hook-timestamp", "x-servicehook-timestamp"]
        .iter()
        .find_map(|name| headers.get(*name)?.as_str()?.trim().parse::<i64>().ok())
        .filter(|seconds| *seconds > 0)
        .map_or(arrived, |seconds| seconds.saturating_mul(1000).min(arrived.saturating_add(SENT_AFTER_ARRIVAL_MAX_MS)));
    ChangeOrder { sent_at_ms, delivery_id: delivery.id }
}

/// Everything a handler needs about the delivery it applies.
pub(super) struct Context<'a> {
    pub(super) delivery: &'a ClaimedDelivery,
    pub(super) installation: &'a str,
    pub(super) settings: &'a InstallationSettings,
    pub(super) action: &'a str,
}

impl Context<'_> {
    pub(super) fn parse<T: DeserializeOwned>(&self) -> Result<T, ApplyError> {
        crate::sentry::payload::parse_storable(&self.delivery.body).map_err(|e| {
            ApplyError::Invalid(format!("not the {}.{} payload Sentry sends: {e}", self.delivery.resource, self.action))
        })
    }
}

async fn apply_one(
    tx: &mut ApplyTx,
    delivery: &ClaimedDelivery,
    installations: &mut InstallationCache,
) -> Result<Applied, ApplyError> {
    let Some(installation) = delivery.installation_uuid.as_deref() else {
        return Err(ApplyError::Invalid("the delivery names no installation".into()));
    };
    if !installations.contains_key(installation) {
        let record = tx.installation(installation).await?.map(KnownInstallation::from);
        installations.insert(installation.to_owned(), record);
    }
    let Some(record) = &installations[installation] else {
        return Ok(Applied::Wait(format!("installation {installation} is not known yet")));
    };
    // The handlers never call Sentry, so an installation whose token needs
    // re-authorizing still gets its tickets updated.
    match record.status {
        InstallationStatus::Deleted => return Ok(Applied::Ignored("the installation was uninstalled".into())),
        InstallationStatus::Pending => {
            return Ok(Applied::Wait(format!("installation {installation} is not installed yet")))
        }
        InstallationStatus::Installed | InstallationStatus::NeedsReauth => {}
    }
    let context = Context {
        delivery,
        installation,
        settings: &record.settings,
        action: delivery.action.as_deref().unwrap_or(""),
    };
    match (delivery.resource.parse::<Resource>(), context.action) {
        (Ok(Resource::Issue), _) => issue::issue(tx, &context).await,
        (Ok(Resource::Error), "created") => event::error_created(tx, &context).await,
        (Ok(Resource::Comment), _) => comment::comment(tx, &context).await,
        (Ok(Resource::EventAlert), "triggered") => alert::event_alert(tx, &context).await,
        (Ok(Resource::MetricAlert), _) => alert::metric_alert(tx, &context).await,
        (Ok(Resource::ServiceHook), _) => event::service_hook(tx, &context).await,
        (_, action) => Ok(Applied::Ignored(format!("{}.{action} is not handled", delivery.resource))),
    }
}

/// The Sentry issue (or metric alert) a delivery is about, read without
/// the rest of its payload, so the worker can keep one subject's
/// deliveries in one lane ([`crate::pipeline::worker`]). None when the
/// payload names none or is not what Sentry sends: then any lane will do,
/// and the handler says what is wrong.
pub fn subject_of(delivery: &ClaimedDelivery) -> Option<String> {
    use crate::sentry::payload::LooseId;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Probe {
        data: Option<Data>,
        // Service hooks put the group and event at the top.
        group: Option<WithId>,
        event: Option<EventIds>,
    }
    #[derive(Deserialize)]
    struct Data {
        issue: Option<WithId>,
        error: Option<EventIds>,
        event: Option<EventIds>,
        issue_id: Option<LooseId>,
        metric_alert: Option<WithId>,
    }
    #[derive(Deserialize)]
    struct WithId {
        id: Option<LooseId>,
    }
    #[derive(Deserialize)]
    struct EventIds {
        issue_id: Option<LooseId>,
        #[serde(rename = "groupID")]
        group_id: Option<LooseId>,
    }
    let event_issue = |e: Option<EventIds>| e.and_then(|e| e.issue_id.or(e.group_id));
    let probe: Probe = serde_json::from_slice(&delivery.body).ok()?;
    let issue = match probe.data {
        Some(data) => {
            if let Some(alert) = data.metric_alert.and_then(|a| a.id) {
                return Some(format!("metric-alert:{alert}"));
            }
            data.issue.and_then(|i| i.id).or(data.issue_id).or(event_issue(data.error)).or(event_issue(data.event))
        }
        None => probe.group.and_then(|g| g.id).or(event_issue(probe.event)),
    };
    issue.map(|id| format!("issue:{id}"))
}

/// Lines of a ticket's description, the missing ones left out.
pub(super) fn describe(lines: &[Option<&str>]) -> String {
    lines.iter().flatten().filter(|line| !line.is_empty()).copied().collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(headers: &str) -> ClaimedDelivery {
        ClaimedDelivery {
            id: 7,
            received_at: 1_700_000_000_123,
            resource: "issue".into(),
            action: Some("resolved".into()),
            installation_uuid: None,
            headers: headers.into(),
            body: Vec::new(),
            attempts: 1,
        }
    }

    #[test]
    fn changes_are_ordered_by_sentrys_send_time_then_arrival() {
        let sent = change_order(&delivery(r#"{"sentry-hook-timestamp": "1700000005"}"#));
        assert_eq!(sent, ChangeOrder { sent_at_ms: 1_700_000_005_000, delivery_id: 7 });
        let hook = change_order(&delivery(r#"{"x-servicehook-timestamp": "1700000006"}"#));
        assert_eq!(hook.sent_at_ms, 1_700_000_006_000);
        for missing in ["{}", r#"{"sentry-hook-timestamp": "soon"}"#, "not json"] {
            assert_eq!(change_order(&delivery(missing)).sent_at_ms, 1_700_000_000_123);
        }
    }

    #[test]
    fn a_sent_time_far_after_the_arrival_is_held_to_a_minute_after_it() {
        let arrived = 1_700_000_000_123;
        let future = change_order(&delivery(r#"{"sentry-hook-timestamp": "99999999999"}"#));
        assert_eq!(future.sent_at_ms, arrived + SENT_AFTER_ARRIVAL_MAX_MS, "a far-future stamp cannot freeze a ticket");
        let past = change_order(&delivery(r#"{"sentry-hook-timestamp": "1"}"#));
        assert_eq!(past.sent_at_ms, 1000, "an early stamp only loses, so it is kept");
        let huge = change_order(&delivery(&format!(r#"{{"sentry-hook-timestamp": "{}"}}"#, i64::MAX)));
        assert_eq!(huge.sent_at_ms, arrived + SENT_AFTER_ARRIVAL_MAX_MS, "no overflow");
        let skewed = change_order(&delivery(r#"{"sentry-hook-timestamp": "1700000030"}"#));
        assert_eq!(skewed.sent_at_ms, 1_700_000_030_000, "a little clock skew is kept as sent");
    }

    #[test]
    fn a_deliverys_subject_is_the_issue_or_metric_alert_it_is_about() {
        let about = |body: &str| subject_of(&ClaimedDelivery { body: body.as_bytes().to_vec(), ..delivery("{}") });
        let issue = Some("issue:42".to_string());
        assert_eq!(about(r#"{"action":"created","data":{"issue":{"id":"42","title":"t"}}}"#), issue);
        assert_eq!(about(r#"{"data":{"error":{"issue_id":"42"}}}"#), issue);
        assert_eq!(about(r#"{"data":{"event":{"issue_id":42}}}"#), issue, "ids as numbers too");
        assert_eq!(about(r#"{"data":{"issue_id":42,"comment":"hi"}}"#), issue);
        assert_eq!(about(r#"{"group":{"id":"42"},"event":{"groupID":"42"}}"#), issue, "service hooks");
        assert_eq!(about(r#"{"data":{"metric_alert":{"id":"7"}}}"#), Some("metric-alert:7".into()));
        for nothing in [r#"{"data":{}}"#, r#"{"data":{"issue":"not an object"}}"#, "not json", "[]"] {
            assert_eq!(about(nothing), None, "{nothing}");
        }
    }

    #[test]
    fn descriptions_leave_out_missing_lines() {
        assert_eq!(describe(&[Some("a"), None, Some(""), Some("b")]), "a\nb");
    }
}
