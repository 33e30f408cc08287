//! Events: `error.created` and service-hook events are counted once per
//! event on their issue and its ticket.

use super::{Applied, ApplyError, Context};
use crate::sentry::api::parse_datetime_ms;
use crate::sentry::payload::{Envelope, ErrorData, Event, ServiceHookPayload};
use crate::store::apply_tx::ApplyTx;
use crate::store::sentry_issues::IssueFacts;
use crate::store::tickets::TicketState;

/// Records the event's issue and counts the event on it (and its ticket)
/// once, however many deliveries mention the event.
pub(super) async fn record_event(
    tx: &mut ApplyTx,
    cx: &Context<'_>,
    event: &Event,
    facts: IssueFacts<'_>,
) -> Result<(Option<TicketState>, bool), ApplyError> {
    let counted = match event.key() {
        Some(key) => tx.claim_effect(cx.installation, &format!("event:{key}"), cx.delivery.id).await?,
        None => false,
    };
    let counted_at =
        counted.then(|| event.datetime.as_deref().and_then(parse_datetime_ms).unwrap_or(cx.delivery.received_at));
    tx.record_issue(&facts, None, counted_at).await?;
    let ticket = match counted_at {
        Some(at) => tx.count_event_on_linked_ticket(cx.installation, facts.issue_id, at).await?,
        None => tx.linked_ticket(cx.installation, facts.issue_id).await?,
    };
    Ok((ticket, counted))
}

pub(super) fn event_issue(event: &Event) -> Result<&str, ApplyError> {
    event.issue().map(|id| id.as_str()).ok_or_else(|| ApplyError::Invalid("the event names no issue".into()))
}

pub(super) async fn error_created(tx: &mut ApplyTx, cx: &Context<'_>) -> Result<Applied, ApplyError> {
    let envelope: Envelope<ErrorData> = cx.parse()?;
    let event = &envelope.data.error;
    let issue_id = event_issue(event)?;
    let title = event.display_title();
    let facts = IssueFacts { installation: cx.installation, issue_id, title: title.as_deref(), ..Default::default() };
    let (ticket, counted) = record_event(tx, cx, event, facts).await?;
    Ok(Applied::Done(counted_note(issue_id, ticket, counted)))
}

pub(super) fn counted_note(issue_id: &str, ticket: Option<TicketState>, counted: bool) -> String {
    match (counted, ticket) {
        (false, _) => format!("event on issue {issue_id} was counted before"),
        (true, Some(ticket)) => format!("event counted on issue {issue_id} and {}", ticket.key),
        (true, None) => format!("event counted on issue {issue_id}"),
    }
}

pub(super) async fn service_hook(tx: &mut ApplyTx, cx: &Context<'_>) -> Result<Applied, ApplyError> {
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
