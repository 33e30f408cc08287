//! Alerts: `event_alert.triggered` keeps one open ticket per issue;
//! `metric_alert.*` keeps one ticket per alert, following its severity.

use super::event::{event_issue, record_event};
use super::{change_order, describe, Applied, ApplyError, Context};
use crate::domain::ticket::TicketStatus;
use crate::domain::ticket_rules::{next_ticket_status, MetricAlertState};
use crate::sentry::payload::{setting, Envelope, EventAlertData, MetricAlertData, Setting};
use crate::store::apply_tx::ApplyTx;
use crate::store::sentry_issues::IssueFacts;
use crate::store::tickets::{TicketState, TicketToOpen};

pub(super) async fn event_alert(tx: &mut ApplyTx, cx: &Context<'_>) -> Result<Applied, ApplyError> {
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
                .open_ticket(&TicketToOpen {
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

pub(super) async fn metric_alert(tx: &mut ApplyTx, cx: &Context<'_>) -> Result<Applied, ApplyError> {
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
                .open_ticket(&TicketToOpen {
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
