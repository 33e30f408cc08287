//! `comment.*`: Sentry comments mirrored on the linked ticket, keyed by
//! Sentry's comment id; issuebridge's own comments recognised as echoes.

use super::{change_order, Applied, ApplyError, Context};
use crate::sentry::api::parse_datetime_ms;
use crate::sentry::payload::{CommentData, Envelope};
use crate::store::apply_tx::ApplyTx;
use crate::store::comments::{CommentChange, CommentKind, MirroredComment};

pub(super) async fn comment(tx: &mut ApplyTx, cx: &Context<'_>) -> Result<Applied, ApplyError> {
    let kind = match cx.action {
        "created" => CommentKind::Created,
        "updated" => CommentKind::Updated,
        "deleted" => CommentKind::Deleted,
        other => return Ok(Applied::Ignored(format!("comment.{other} is not handled"))),
    };
    let envelope: Envelope<CommentData> = cx.parse()?;
    let data = &envelope.data;
    let issue_id = data.issue_id.as_str();
    let created_at_ms = data.timestamp.as_deref().and_then(parse_datetime_ms).unwrap_or(cx.delivery.received_at);
    let author = envelope.actor.as_ref().and_then(|a| a.name.as_deref());
    let comment = MirroredComment {
        kind,
        sentry_id: data.comment_id.as_str(),
        author,
        body: &data.comment,
        created_at_ms,
        by_this_app: envelope.actor.as_ref().is_some_and(|actor| actor.is_this_app()),
        order: change_order(cx.delivery),
    };
    let comment_id = &data.comment_id;
    if kind == CommentKind::Created && !comment.by_this_app {
        if let Some(ticket) = tx.add_comment_to_linked_ticket(cx.installation, issue_id, &comment).await? {
            return Ok(Applied::Done(format!("comment {comment_id} added to {}", ticket.key)));
        }
    }
    let Some(ticket) = tx.linked_ticket(cx.installation, issue_id).await? else {
        return Ok(Applied::Done(format!("issue {issue_id} has no linked ticket; comment not mirrored")));
    };
    let change = tx.mirror_comment(ticket.id, &comment).await?;
    Ok(Applied::Done(match change {
        CommentChange::Created => format!("comment {comment_id} added to {}", ticket.key),
        CommentChange::Updated => format!("comment {comment_id} updated on {}", ticket.key),
        CommentChange::Deleted => format!("comment {comment_id} deleted on {}", ticket.key),
        CommentChange::Echo => format!("comment {comment_id} is issuebridge's own, already on {}", ticket.key),
        CommentChange::Unchanged => format!("comment {comment_id} on {} unchanged", ticket.key),
    }))
}
