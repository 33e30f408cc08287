//! Alerts: `event_alert.triggered` keeps one open ticket per issue;
//! `metric_alert.*` keeps one ticket per alert, following its severity.

use super::event::{event_issue, record_event};
use super::{change_order, describe, Applied, ApplyError, Context};
use crate::components::alert_action::{render_title, TitleFacts};
use crate::components::definition::field;
use crate::domain::outbox::ChangeSource;
use crate::domain::team::TeamKey;
use crate::domain::ticket::TicketStatus;
use crate::domain::ticket_rules::{next_ticket_status, MetricAlertState};
use crate::sentry::payload::{setting, Envelope, EventAlertData, MetricAlertData, Setting};
use crate::store::apply_tx::ApplyTx;
use crate::store::sentry_issues::IssueFacts;
use crate::store::tickets::{TicketState, TicketToOpen};
use crate::store::{TeamChoice, TeamError};

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
            if tx.set_ticket_status(ticket.id, TicketStatus::Todo, None, change_order(cx.delivery)).await? {
                let summary = format!("reopened by the alert rule {rule}");
                tx.record_ticket_event(ticket.id, ChangeSource::Rule, data.triggered_rule.as_deref(), &summary).await?;
            }
            Ok(Applied::Done(format!("alert reopened {}", ticket.key)))
        }
        Some(ticket) => Ok(Applied::Done(format!("alert counted on {}", ticket.key))),
        None => {
            let rule_name = data.triggered_rule.as_deref().unwrap_or("an alert rule");
            let event_title = title.unwrap_or_else(|| format!("Sentry issue {issue_id}"));
            let facts = TitleFacts {
                title: &event_title,
                culprit: event.culprit.as_deref().unwrap_or_default(),
                project: event.project_slug().unwrap_or_default(),
                level: event.level.as_deref().unwrap_or_default(),
                rule: rule_name,
            };
            let rule = RuleSettings::read(settings, cx, facts);
            let description =
                describe(&[Some(&format!("Opened by the Sentry alert rule “{rule_name}”.")), event.web_url.as_deref()]);
            let ticket = TicketToOpen {
                installation: cx.installation,
                team: rule.team.clone(),
                title: &rule.title,
                description: &description,
                status: rule.status,
                status_order: None,
                assignee: rule.assignee.as_deref(),
                source: "event_alert",
                metric_alert_id: None,
                severity: None,
                issue: Some(issue_id),
            };
            let (ticket, fallback) = open_in_team(tx, &ticket).await?;
            Ok(Applied::Done(format!("alert opened {} for issue {issue_id}{fallback}", ticket.key)))
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
            let alert_title = data.display_title();
            let rule_name = data.metric_alert.alert_rule.as_ref().and_then(|r| r.name.as_deref()).unwrap_or_default();
            let facts = TitleFacts {
                title: &alert_title,
                culprit: data.description_text.as_deref().unwrap_or_default(),
                project: data.metric_alert.projects.first().map(String::as_str).unwrap_or_default(),
                level: state.as_str(),
                rule: rule_name,
            };
            let rule = RuleSettings::read(&settings, cx, facts);
            let description = describe(&[data.description_text.as_deref(), data.web_url.as_deref()]);
            let ticket = TicketToOpen {
                installation: cx.installation,
                team: rule.team.clone(),
                title: &rule.title,
                description: &description,
                // A metric alert's ticket follows the alert's severity.
                status: state.ticket_status(),
                status_order: None,
                assignee: rule.assignee.as_deref(),
                source: "metric_alert",
                metric_alert_id: Some(alert_id),
                severity: Some(state.as_str()),
                issue: None,
            };
            open_in_team(tx, &ticket).await?.0
        }
    };
    let status = match state {
        MetricAlertState::Resolved => TicketStatus::Done,
        _ => next_ticket_status(ticket.status, TicketStatus::Todo),
    };
    if !tx.set_ticket_status(ticket.id, status, Some(state.as_str()), order).await? {
        return Ok(Applied::Done(format!("a newer state of metric alert {alert_id} was applied already")));
    }
    if status != ticket.status {
        let summary = format!("moved to {} (metric alert {})", status.label(), state.as_str());
        tx.record_ticket_event(ticket.id, ChangeSource::Rule, None, &summary).await?;
    }
    Ok(Applied::Done(format!("{} follows metric alert {alert_id}: {}", ticket.key, state.as_str())))
}

/// What an alert rule's action settings ask of a new ticket
/// (`components::alert_action`), read leniently: Sentry checked them with
/// issuebridge when the rule was saved, and a rule saved before a setting
/// existed must still open tickets.
struct RuleSettings {
    team: TeamChoice,
    title: String,
    assignee: Option<String>,
    status: TicketStatus,
}

impl RuleSettings {
    fn read(settings: &[Setting], cx: &Context<'_>, facts: TitleFacts<'_>) -> Self {
        let team = setting(settings, field::TEAM)
            .and_then(|key| TeamKey::parse(key).ok())
            .map_or(TeamChoice::Default, TeamChoice::Key);
        let title = setting(settings, field::TITLE)
            .map(|template| render_title(template, &facts))
            .unwrap_or_else(|| facts.title.to_owned());
        let assignee = setting(settings, field::ASSIGNEE).map(|email| cx.settings.map_email(email));
        let status = setting(settings, field::STATUS)
            .and_then(|s| s.parse::<TicketStatus>().ok())
            .filter(|s| s.is_open())
            .unwrap_or(TicketStatus::Todo);
        Self { team, title, assignee, status }
    }
}

/// Opens the ticket in the rule's team, or in the default team when that
/// team is gone; the second value says so for the delivery's note.
async fn open_in_team(tx: &mut ApplyTx, ticket: &TicketToOpen<'_>) -> Result<(TicketState, String), ApplyError> {
    match tx.open_ticket(ticket).await {
        Err(TeamError::NotFound) => {
            let missing = match &ticket.team {
                TeamChoice::Key(key) => key.to_string(),
                _ => "the rule's team".to_owned(),
            };
            let fallback = TicketToOpen { team: TeamChoice::Default, ..ticket.clone() };
            let opened = tx.open_ticket(&fallback).await?;
            Ok((opened, format!(" (no team {missing}: opened in the default team)")))
        }
        other => Ok((other?, String::new())),
    }
}
