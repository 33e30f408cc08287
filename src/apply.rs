//! The handlers: what each stored delivery does to issues and tickets.
//!
//! A batch of deliveries is applied in one transaction, each in its own
//! savepoint (see [`crate::store::sync`]). Handlers only touch the
//! database, never Sentry, so a batch holds no lock across the network.
//! Every handler is idempotent: statuses and assignments carry the order
//! of the change that set them (a late or replayed older delivery loses),
//! comments are keyed by Sentry's comment id, and effects that must happen
//! once (counting an event, opening a ticket) are keyed in `applied_effect`.
//!
//! Installation deliveries are not handled here: they call Sentry (token
//! exchange) and live in [`crate::worker`].

use serde::de::DeserializeOwned;

use crate::sentry::api::parse_datetime_ms;
use crate::sentry::payload::{
    setting, CommentData, Envelope, ErrorData, Event, EventAlertData, IssueData, MetricAlertData, ServiceHookPayload,
    Setting,
};
use crate::store::sync::{
    CommentChange, CommentKind, FinishedDelivery, IssueFacts, MirroredComment, SyncInstallation, SyncTicket, SyncTx,
    TicketState,
};
use crate::store::{ClaimedDelivery, DeliveryOutcome, Store, StoreError};
use crate::sync::{next_ticket_status, ChangeOrder, InstallationSettings, IssueStatus, MetricAlertState};
use crate::ticket::TicketStatus;
use crate::worker::retry_or_give_up;

/// Every resource and action with a handler (installations in
/// [`crate::worker`]); the README's table lists each, and a test keeps it so.
pub const HANDLED: [(&str, &[&str]); 7] = [
    ("installation", &["created", "deleted"]),
    ("issue", &["created", "resolved", "ignored", "archived", "unresolved", "assigned"]),
    ("comment", &["created", "updated", "deleted"]),
    ("error", &["created"]),
    ("event_alert", &["triggered"]),
    ("metric_alert", &["open", "warning", "critical", "resolved"]),
    ("service_hook", &["event.created", "event.alert"]),
];

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

/// How long one transaction may run before it commits and lets the inbox
/// write: on SQLite the inbox waits for it, and acknowledgements with it.
const MAX_TRANSACTION: std::time::Duration = std::time::Duration::from_millis(4);

/// An installation as its deliveries need it, read and parsed once per
/// transaction.
struct KnownInstallation {
    status: String,
    settings: InstallationSettings,
}

impl From<SyncInstallation> for KnownInstallation {
    fn from(row: SyncInstallation) -> Self {
        Self { settings: InstallationSettings::from_json(&row.settings), status: row.status }
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
    // Only SQLite's inbox waits for the worker's transaction.
    let cut_short = store.backend() == crate::config::Backend::Sqlite;
    let mut rest = deliveries;
    while !rest.is_empty() {
        // A run is mostly about a few installations: read each once per
        // transaction (an uninstall may commit between two of them).
        let mut installations = InstallationCache::new();
        let mut tx = store.begin_sync().await?;
        let started = std::time::Instant::now();
        let mut applied = Vec::new();
        let mut all_applied = true;
        for delivery in rest {
            if !applied.is_empty() && cut_short && started.elapsed() > MAX_TRANSACTION {
                break;
            }
            match apply_one(&mut tx, delivery, &mut installations).await {
                Ok(Applied::Done(note)) => applied.push((DeliveryOutcome::Processed, note)),
                Ok(Applied::Ignored(note)) => applied.push((DeliveryOutcome::Ignored, note)),
                _ => {
                    // Redone below with savepoints, this one included.
                    all_applied = false;
                    applied.push((DeliveryOutcome::Ignored, String::new()));
                    break;
                }
            }
        }
        let (run, after) = rest.split_at(applied.len());
        if all_applied {
            let notes = applied.iter().map(|(outcome, note)| (outcome, Some(note.as_str())));
            tx.finish_deliveries(&finished(run, notes)).await?;
            tx.commit().await?;
        } else {
            tx.rollback().await?;
            apply_carefully(store, run, &mut installations).await?;
        }
        rest = after;
    }
    Ok(())
}

/// Each delivery with how it ended.
fn finished<'a>(
    deliveries: &[ClaimedDelivery],
    outcomes: impl Iterator<Item = (&'a DeliveryOutcome, Option<&'a str>)>,
) -> Vec<FinishedDelivery<'a>> {
    deliveries
        .iter()
        .zip(outcomes)
        .map(|(d, (outcome, note))| FinishedDelivery { id: d.id, attempt: d.attempts, outcome, note })
        .collect()
}

/// The slow path: each delivery in its own savepoint, one transaction.
async fn apply_carefully(
    store: &Store,
    deliveries: &[ClaimedDelivery],
    installations: &mut InstallationCache,
) -> Result<(), StoreError> {
    let mut tx = store.begin_sync().await?;
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
    let notes = outcomes.iter().map(|(outcome, note)| (outcome, note.as_deref()));
    tx.finish_deliveries(&finished(deliveries, notes)).await?;
    tx.commit().await
}

/// When Sentry sent the delivery (its unsigned timestamp header, whole
/// seconds), else when it arrived; then the delivery id.
pub fn change_order(delivery: &ClaimedDelivery) -> ChangeOrder {
    let headers: serde_json::Value = serde_json::from_str(&delivery.headers).unwrap_or_default();
    let sent_at_ms = ["sentry-hook-timestamp", "x-servicehook-timestamp"]
        .iter()
        .find_map(|name| headers.get(*name)?.as_str()?.trim().parse::<i64>().ok())
        .filter(|seconds| *seconds > 0)
        .map_or(delivery.received_at, |seconds| seconds.saturating_mul(1000));
    ChangeOrder { sent_at_ms, delivery_id: delivery.id }
}

/// Everything a handler needs about the delivery it applies.
struct Context<'a> {
    delivery: &'a ClaimedDelivery,
    installation: &'a str,
    settings: &'a InstallationSettings,
    action: &'a str,
}

impl Context<'_> {
    fn parse<T: DeserializeOwned>(&self) -> Result<T, ApplyError> {
        serde_json::from_slice(&self.delivery.body).map_err(|e| {
            ApplyError::Invalid(format!("not the {}.{} payload Sentry sends: {e}", self.delivery.resource, self.action))
        })
    }
}

async fn apply_one(
    tx: &mut SyncTx,
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
    match record.status.as_str() {
        "deleted" => return Ok(Applied::Ignored("the installation was uninstalled".into())),
        "pending" => return Ok(Applied::Wait(format!("installation {installation} is not installed yet"))),
        _ => {}
    }
    let context = Context {
        delivery,
        installation,
        settings: &record.settings,
        action: delivery.action.as_deref().unwrap_or(""),
    };
    match (delivery.resource.as_str(), context.action) {
        ("issue", _) => issue(tx, &context).await,
        ("error", "created") => error_created(tx, &context).await,
        ("comment", _) => comment(tx, &context).await,
        ("event_alert", "triggered") => event_alert(tx, &context).await,
        ("metric_alert", _) => metric_alert(tx, &context).await,
        ("service_hook", _) => service_hook(tx, &context).await,
        (resource, action) => Ok(Applied::Ignored(format!("{resource}.{action} is not handled"))),
    }
}

async fn issue(tx: &mut SyncTx, cx: &Context<'_>) -> Result<Applied, ApplyError> {
    if !matches!(cx.action, "created" | "assigned") && IssueStatus::from_action(cx.action).is_none() {
        return Ok(Applied::Ignored(format!("issue.{} is not handled", cx.action)));
    }
    let event: Envelope<IssueData> = cx.parse()?;
    let group = &event.data.issue;
    let issue_id = group.id.as_str();
    tx.upsert_issue(&IssueFacts {
        installation: cx.installation,
        issue_id,
        short_id: group.short_id.as_deref(),
        title: group.title.as_deref(),
        project_slug: group.project.as_ref().and_then(|p| p.slug.as_deref()),
        web_url: group.page_url(),
    })
    .await?;
    let order = change_order(cx.delivery);

    if cx.action == "created" {
        if let Some(status) = group.status.as_deref() {
            tx.set_issue_status(cx.installation, issue_id, status, group.substatus.as_deref(), order).await?;
        }
        if let Some(ticket) = tx.linked_ticket(cx.installation, issue_id).await? {
            return Ok(Applied::Done(format!("issue {issue_id} is linked to {} already", ticket.id)));
        }
        if !cx.settings.open_ticket_on_new_issue {
            return Ok(Applied::Done(format!("recorded issue {issue_id}; new issues do not open tickets here")));
        }
        if !tx.claim_effect(cx.installation, &format!("ticket:issue:{issue_id}"), cx.delivery.id).await? {
            return Ok(Applied::Done(format!("a ticket was opened for issue {issue_id} before")));
        }
        let assignee = group.assigned_to.as_ref().and_then(|a| cx.settings.assignee_for(a));
        let title = group.title.clone().unwrap_or_else(|| format!("Sentry issue {issue_id}"));
        let description = describe(&[group.culprit.as_deref(), group.page_url()]);
        let ticket = tx
            .open_ticket(&SyncTicket {
                installation: cx.installation,
                title: &title,
                description: &description,
                status: TicketStatus::Todo,
                assignee: assignee.as_deref(),
                source: "issue",
                metric_alert_id: None,
                severity: None,
                issue: Some(issue_id),
            })
            .await?;
        // A `resolved` sent later may have been applied first: the ticket
        // starts where the issue stands, as of that change.
        if let Some((status, changed)) = tx.issue_status(cx.installation, issue_id).await? {
            if let Some(status) = IssueStatus::from_action(&status) {
                let mapped =
                    next_ticket_status(TicketStatus::Todo, cx.settings.status_mapping.for_issue_status(status));
                tx.set_ticket_status(ticket, mapped, None, changed).await?;
            }
        }
        return Ok(Applied::Done(format!("opened {ticket} for issue {issue_id}")));
    }

    if cx.action == "assigned" {
        let Some(assignee) = &event.data.assignee else {
            return Err(ApplyError::Invalid("issue.assigned without an assignee".into()));
        };
        let label = assignee
            .email
            .clone()
            .or_else(|| Some(format!("{}:{}", assignee.kind, assignee.name.as_deref()?)))
            .unwrap_or_else(|| assignee.kind.clone());
        if !tx.set_issue_assignee(cx.installation, issue_id, Some(&label), order).await? {
            return Ok(Applied::Done(format!("a newer assignment of issue {issue_id} was applied already")));
        }
        // Only the assignee moves: the status in an `assigned` payload is
        // the issue's status when it was assigned, which may be old news.
        let (Some(ticket), Some(email)) =
            (tx.linked_ticket(cx.installation, issue_id).await?, cx.settings.assignee_for(assignee))
        else {
            return Ok(Applied::Done(format!("issue {issue_id} assigned to {label}; no ticket assignee to change")));
        };
        tx.set_ticket_assignee(ticket.id, &email).await?;
        return Ok(Applied::Done(format!("{} assigned to {email}", ticket.id)));
    }

    let status = IssueStatus::from_action(cx.action).expect("checked above");
    if !tx.set_issue_status(cx.installation, issue_id, status.as_str(), group.substatus.as_deref(), order).await? {
        return Ok(Applied::Done(format!("a newer status of issue {issue_id} was applied already")));
    }
    let Some(ticket) = tx.linked_ticket(cx.installation, issue_id).await? else {
        return Ok(Applied::Done(format!("issue {issue_id} is {}; no linked ticket", status.as_str())));
    };
    let next = next_ticket_status(ticket.status, cx.settings.status_mapping.for_issue_status(status));
    if !tx.set_ticket_status(ticket.id, next, None, order).await? {
        return Ok(Applied::Done(format!("{} was moved by a newer change already", ticket.id)));
    }
    Ok(Applied::Done(format!("{} is {} (issue {issue_id} {})", ticket.id, next.label(), status.as_str())))
}

/// Lines of a ticket's description, the missing ones left out.
fn describe(lines: &[Option<&str>]) -> String {
    lines.iter().flatten().filter(|line| !line.is_empty()).copied().collect::<Vec<_>>().join("\n")
}

/// Records the event's issue and counts the event on it (and its ticket)
/// once, however many deliveries mention the event.
async fn record_event(
    tx: &mut SyncTx,
    cx: &Context<'_>,
    event: &Event,
    facts: IssueFacts<'_>,
) -> Result<(Option<TicketState>, bool), ApplyError> {
    tx.upsert_issue(&facts).await?;
    let ticket = tx.linked_ticket(cx.installation, facts.issue_id).await?;
    let counted = match event.key() {
        Some(key) => tx.claim_effect(cx.installation, &format!("event:{key}"), cx.delivery.id).await?,
        None => false,
    };
    if counted {
        let at = event.datetime.as_deref().and_then(parse_datetime_ms).unwrap_or(cx.delivery.received_at);
        tx.count_event(cx.installation, facts.issue_id, ticket.map(|t| t.id), at).await?;
    }
    Ok((ticket, counted))
}

fn event_issue(event: &Event) -> Result<&str, ApplyError> {
    event.issue().map(|id| id.as_str()).ok_or_else(|| ApplyError::Invalid("the event names no issue".into()))
}

async fn error_created(tx: &mut SyncTx, cx: &Context<'_>) -> Result<Applied, ApplyError> {
    let envelope: Envelope<ErrorData> = cx.parse()?;
    let event = &envelope.data.error;
    let issue_id = event_issue(event)?;
    let title = event.display_title();
    let facts = IssueFacts { installation: cx.installation, issue_id, title: title.as_deref(), ..Default::default() };
    let (ticket, counted) = record_event(tx, cx, event, facts).await?;
    Ok(Applied::Done(counted_note(issue_id, ticket, counted)))
}

fn counted_note(issue_id: &str, ticket: Option<TicketState>, counted: bool) -> String {
    match (counted, ticket) {
        (false, _) => format!("event on issue {issue_id} was counted before"),
        (true, Some(ticket)) => format!("event counted on issue {issue_id} and {}", ticket.id),
        (true, None) => format!("event counted on issue {issue_id}"),
    }
}

async fn event_alert(tx: &mut SyncTx, cx: &Context<'_>) -> Result<Applied, ApplyError> {
    let envelope: Envelope<EventAlertData> = cx.parse()?;
    let data = &envelope.data;
    let event = &data.event;
    let issue_id = event_issue(event)?;
    let title = event.display_title();
    let facts = IssueFacts { installation: cx.installation, issue_id, title: title.as_deref(), ..Default::default() };
    let (ticket, _) = record_event(tx, cx, event, facts).await?;

    let settings: &[Setting] = data.issue_alert.as_ref().map_or(&[], |alert| &alert.settings);
    let rule = data
        .issue_alert
        .as_ref()
        .and_then(|alert| alert.id.as_ref().map(ToString::to_string))
        .or_else(|| data.triggered_rule.clone())
        .unwrap_or_default();
    let occurrence = event.key().unwrap_or_else(|| format!("delivery-{}", cx.delivery.id));
    if !tx.claim_effect(cx.installation, &format!("alert:{rule}:{occurrence}"), cx.delivery.id).await? {
        return Ok(Applied::Done(format!("alert on issue {issue_id} was applied before")));
    }
    match ticket {
        // One open ticket per issue: an alert on an issue whose ticket was
        // done reopens it; one marked "won't do" stays as the team left it.
        Some(ticket) if ticket.status == TicketStatus::Done => {
            tx.set_ticket_status(ticket.id, TicketStatus::Todo, None, change_order(cx.delivery)).await?;
            Ok(Applied::Done(format!("alert reopened {}", ticket.id)))
        }
        Some(ticket) => Ok(Applied::Done(format!("alert counted on {}", ticket.id))),
        None => {
            let rule_name = data.triggered_rule.as_deref().unwrap_or("an alert rule");
            let title = setting(settings, "title")
                .map(str::to_owned)
                .or(title)
                .unwrap_or_else(|| format!("Sentry issue {issue_id}"));
            let status = setting(settings, "status")
                .and_then(|s| s.parse::<TicketStatus>().ok())
                .filter(|s| s.is_open())
                .unwrap_or(TicketStatus::Todo);
            let assignee = setting(settings, "assignee").map(|email| cx.settings.map_email(email));
            let description =
                describe(&[Some(&format!("Opened by the Sentry alert rule “{rule_name}”.")), event.web_url.as_deref()]);
            let ticket = tx
                .open_ticket(&SyncTicket {
                    installation: cx.installation,
                    title: &title,
                    description: &description,
                    status,
                    assignee: assignee.as_deref(),
                    source: "event_alert",
                    metric_alert_id: None,
                    severity: None,
                    issue: Some(issue_id),
                })
                .await?;
            Ok(Applied::Done(format!("alert opened {ticket} for issue {issue_id}")))
        }
    }
}

async fn metric_alert(tx: &mut SyncTx, cx: &Context<'_>) -> Result<Applied, ApplyError> {
    let Some(state) = MetricAlertState::from_action(cx.action) else {
        return Ok(Applied::Ignored(format!("metric_alert.{} is not handled", cx.action)));
    };
    let envelope: Envelope<MetricAlertData> = cx.parse()?;
    let data = &envelope.data;
    let alert_id = data.metric_alert.id.as_str();
    let order = change_order(cx.delivery);
    let ticket = match tx.metric_alert_ticket(cx.installation, alert_id).await? {
        Some((ticket, severity)) => {
            // Sentry closes an incident for good (a new one gets a new id),
            // so a warning or critical arriving after `resolved` is late.
            if severity.as_deref() == Some("resolved") && state != MetricAlertState::Resolved {
                return Ok(Applied::Done(format!("metric alert {alert_id} was resolved; late {} ignored", cx.action)));
            }
            ticket
        }
        None => {
            let settings = data.settings_for(cx.action, cx.installation);
            let title = data.display_title();
            let description = describe(&[data.description_text.as_deref(), data.web_url.as_deref()]);
            let assignee = setting(&settings, "assignee").map(|email| cx.settings.map_email(email));
            let id = tx
                .open_ticket(&SyncTicket {
                    installation: cx.installation,
                    title: &title,
                    description: &description,
                    status: state.ticket_status(),
                    assignee: assignee.as_deref(),
                    source: "metric_alert",
                    metric_alert_id: Some(alert_id),
                    severity: Some(state.as_str()),
                    issue: None,
                })
                .await?;
            TicketState { id, status: state.ticket_status() }
        }
    };
    let status = match state {
        MetricAlertState::Resolved => TicketStatus::Done,
        _ => next_ticket_status(ticket.status, TicketStatus::Todo),
    };
    if !tx.set_ticket_status(ticket.id, status, Some(state.as_str()), order).await? {
        return Ok(Applied::Done(format!("a newer state of metric alert {alert_id} was applied already")));
    }
    Ok(Applied::Done(format!("{} follows metric alert {alert_id}: {}", ticket.id, state.as_str())))
}

async fn service_hook(tx: &mut SyncTx, cx: &Context<'_>) -> Result<Applied, ApplyError> {
    let payload: ServiceHookPayload = cx.parse()?;
    let event = payload.event.clone().unwrap_or_default();
    let group = payload.group.as_ref();
    let issue_id = match (group, event.issue()) {
        (Some(group), _) => group.id.as_str(),
        (None, Some(id)) => id.as_str(),
        (None, None) => return Err(ApplyError::Invalid("the service hook's event names no issue".into())),
    };
    let title = group.and_then(|g| g.title.clone()).or_else(|| event.display_title());
    let facts = IssueFacts {
        installation: cx.installation,
        issue_id,
        short_id: group.and_then(|g| g.short_id.as_deref()),
        title: title.as_deref(),
        project_slug: payload.project.as_ref().and_then(|p| p.slug.as_deref()),
        web_url: group.and_then(|g| g.page_url()),
    };
    let (ticket, counted) = record_event(tx, cx, &event, facts).await?;
    Ok(Applied::Done(counted_note(issue_id, ticket, counted)))
}

async fn comment(tx: &mut SyncTx, cx: &Context<'_>) -> Result<Applied, ApplyError> {
    let kind = match cx.action {
        "created" => CommentKind::Created,
        "updated" => CommentKind::Updated,
        "deleted" => CommentKind::Deleted,
        other => return Ok(Applied::Ignored(format!("comment.{other} is not handled"))),
    };
    let envelope: Envelope<CommentData> = cx.parse()?;
    let data = &envelope.data;
    let issue_id = data.issue_id.as_str();
    let Some(ticket) = tx.linked_ticket(cx.installation, issue_id).await? else {
        return Ok(Applied::Done(format!("issue {issue_id} has no linked ticket; comment not mirrored")));
    };
    let created_at_ms = data.timestamp.as_deref().and_then(parse_datetime_ms).unwrap_or(cx.delivery.received_at);
    let author = envelope.actor.as_ref().and_then(|a| a.name.as_deref());
    let change = tx
        .mirror_comment(
            ticket.id,
            &MirroredComment {
                kind,
                sentry_id: data.comment_id.as_str(),
                author,
                body: &data.comment,
                created_at_ms,
                by_this_app: envelope.actor.as_ref().is_some_and(|actor| actor.is_this_app()),
                order: change_order(cx.delivery),
            },
        )
        .await?;
    let comment_id = &data.comment_id;
    Ok(Applied::Done(match change {
        CommentChange::Created => format!("comment {comment_id} added to {}", ticket.id),
        CommentChange::Updated => format!("comment {comment_id} updated on {}", ticket.id),
        CommentChange::Deleted => format!("comment {comment_id} deleted on {}", ticket.id),
        CommentChange::Echo => format!("comment {comment_id} is issuebridge's own, already on {}", ticket.id),
        CommentChange::Unchanged => format!("comment {comment_id} on {} unchanged", ticket.id),
    }))
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
    fn descriptions_leave_out_missing_lines() {
        assert_eq!(describe(&[Some("a"), None, Some(""), Some("b")]), "a\nb");
    }
}
