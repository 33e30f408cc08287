//! `issue.*`: a Sentry issue is recorded, opens a ticket, and moves or
//! assigns the ticket linked to it.

use super::{change_order, describe, Applied, ApplyError, Context};
use crate::domain::outbox::ChangeSource;
use crate::domain::ticket::TicketStatus;
use crate::domain::ticket_rules::{next_ticket_status, IssueStatus};
use crate::sentry::payload::{Envelope, IssueData};
use crate::store::apply_tx::ApplyTx;
use crate::store::sentry_issues::{IssueFacts, StatusChange};
use crate::store::tickets::TicketToOpen;
use crate::store::TeamChoice;

pub(super) async fn issue(tx: &mut ApplyTx, cx: &Context<'_>) -> Result<Applied, ApplyError> {
    if !matches!(cx.action, "created" | "assigned") && IssueStatus::from_action(cx.action).is_none() {
        return Ok(Applied::Ignored(format!("issue.{} is not handled", cx.action)));
    }
    let event: Envelope<IssueData> = cx.parse()?;
    let group = &event.data.issue;
    let issue_id = group.id.as_str();
    // Sentry tells us of our own changes too (the actor is the app): the
    // ticket made that change, so applying it again could only undo a newer
    // one made here since, and answering it would loop (docs/sync.md).
    if cx.action != "created" && event.actor.as_ref().is_some_and(|actor| actor.is_this_app()) {
        return Ok(Applied::Done(format!(
            "issue.{} of issue {issue_id} is issuebridge's own change, echoed by Sentry: nothing applied",
            cx.action
        )));
    }
    let actor = event.actor.as_ref().and_then(|a| a.name.as_deref());
    let facts = IssueFacts {
        installation: cx.installation,
        issue_id,
        short_id: group.short_id.as_deref(),
        title: group.title.as_deref(),
        project_slug: group.project.as_ref().and_then(|p| p.slug.as_deref()),
        web_url: group.page_url(),
    };
    let order = change_order(cx.delivery);
    // `created` and the status actions carry a status to record with the
    // issue; `assigned` carries the status of when it was assigned, which
    // may be old news.
    let status_action = IssueStatus::from_action(cx.action);
    let status = match (cx.action, status_action) {
        ("created", _) => group.status.as_deref(),
        (_, Some(status)) => Some(status.as_str()),
        _ => None,
    }
    .map(|status| StatusChange { status, substatus: group.substatus.as_deref(), order });

    if cx.action == "created" {
        let key = format!("ticket:issue:{issue_id}");
        let (recorded, to_open) = match cx.settings.open_ticket_on_new_issue {
            true => tx.record_new_issue_claiming_ticket(&facts, status, &key, cx.delivery.id).await?,
            false => (tx.record_issue(&facts, status, None).await?, false),
        };
        if !to_open {
            if let Some(ticket) = tx.linked_ticket(cx.installation, issue_id).await? {
                return Ok(Applied::Done(format!("issue {issue_id} is linked to {} already", ticket.key)));
            }
            return Ok(Applied::Done(match cx.settings.open_ticket_on_new_issue {
                true => format!("a ticket was opened for issue {issue_id} before"),
                false => format!("recorded issue {issue_id}; new issues do not open tickets here"),
            }));
        }
        // A `resolved` sent later may have been applied first: the ticket
        // starts where the issue stands, as of that change.
        let issue_status =
            recorded.status.as_ref().and_then(|(status, changed)| Some((IssueStatus::from_action(status)?, *changed)));
        let (status, status_order) = match issue_status {
            Some((status, changed)) => (
                next_ticket_status(TicketStatus::Todo, cx.settings.status_mapping.for_issue_status(status)),
                Some(changed),
            ),
            None => (TicketStatus::Todo, None),
        };
        let assignee = group.assigned_to.as_ref().and_then(|a| cx.settings.assignee_for(a));
        let title = group.title.clone().unwrap_or_else(|| format!("Sentry issue {issue_id}"));
        let description = describe(&[group.culprit.as_deref(), group.page_url()]);
        let ticket = tx
            .open_ticket(&TicketToOpen {
                installation: cx.installation,
                team: TeamChoice::Default,
                title: &title,
                description: &description,
                status,
                status_order,
                assignee: assignee.as_deref(),
                source: "issue",
                metric_alert_id: None,
                severity: None,
                issue: Some(issue_id),
            })
            .await?;
        return Ok(Applied::Done(format!("opened {} for issue {issue_id}", ticket.key)));
    }

    if cx.action == "assigned" {
        tx.record_issue(&facts, status, None).await?;
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
        if !tx.set_ticket_assignee(ticket.id, &email, order.sent_at_ms).await? {
            return Ok(Applied::Done(format!("{} keeps its assignee (the same, or a newer assignment)", ticket.key)));
        }
        let summary = format!("assigned to {email} in Sentry");
        tx.record_ticket_event(ticket.id, ChangeSource::Sentry, actor, &summary).await?;
        return Ok(Applied::Done(format!("{} assigned to {email}", ticket.key)));
    }

    let (recorded, linked) = tx.record_issue_reading_linked_ticket(&facts, status).await?;
    let status = status_action.expect("checked above");
    if !recorded.status_set {
        return Ok(Applied::Done(format!("a newer status of issue {issue_id} was applied already")));
    }
    let Some(ticket) = linked else {
        return Ok(Applied::Done(format!("issue {issue_id} is {}; no linked ticket", status.as_str())));
    };
    let next = next_ticket_status(ticket.status, cx.settings.status_mapping.for_issue_status(status));
    if !tx.set_ticket_status(ticket.id, next, None, order).await? {
        return Ok(Applied::Done(format!("{} was moved by a newer change already", ticket.key)));
    }
    if next != ticket.status {
        let summary = format!("moved to {} (issue {} in Sentry)", next.label(), status.as_str());
        tx.record_ticket_event(ticket.id, ChangeSource::Sentry, actor, &summary).await?;
    }
    Ok(Applied::Done(format!("{} is {} (issue {issue_id} {})", ticket.key, next.label(), status.as_str())))
}
