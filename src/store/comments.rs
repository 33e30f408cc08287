//! Comments on tickets: mirrored from Sentry, or written here and posted.

use super::apply_tx::unless_newer;
use super::conn::on_conn;
use super::tickets::{TicketState, TicketStateRow};
use super::ApplyTx;
use super::{on_pool, Store, StoreError};
use crate::domain::ids::TicketId;
use crate::domain::ticket_rules::ChangeOrder;
use crate::domain::time::now_ms;

impl Store {
    /// Records the id Sentry gave a comment we posted, unless its echo came
    /// back first and recorded it already.
    pub async fn set_comment_sentry_id(&self, comment: i64, sentry_id: &str) -> Result<(), StoreError> {
        let sql = "update comment set sentry_comment_id = $2 where id = $1 and sentry_comment_id is null";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(comment)
            .bind(sentry_id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }
}

#[cfg(feature = "testing")]
impl Store {
    /// A ticket's comments, oldest first, deleted ones included (marked).
    pub async fn ticket_comments(&self, ticket: TicketId) -> Result<Vec<CommentRecord>, StoreError> {
        let sql = "select id, sentry_comment_id, origin, author, body, created_at, deleted_at
                   from comment where ticket_id = $1 order by created_at, id";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, CommentRecord>(sql).bind(ticket.0).fetch_all(pool).await)?)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CommentRecord {
    pub id: i64,
    pub sentry_comment_id: Option<String>,
    /// `sentry` or `console`.
    pub origin: String,
    pub author: Option<String>,
    pub body: String,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
}

impl ApplyTx {
    /// Adds a new Sentry comment to the ticket linked to its issue, in one
    /// statement (most comments the worker sees are new); returns that
    /// ticket. None if the issue has no linked ticket or the ticket has the
    /// comment already: then [`ApplyTx::mirror_comment`] tells which. Not
    /// for the app's own comments, which may be echoes of console ones.
    pub async fn add_comment_to_linked_ticket(
        &mut self,
        installation: &str,
        issue: &str,
        comment: &MirroredComment<'_>,
    ) -> Result<Option<TicketState>, StoreError> {
        // The ticket as `linked_ticket` reads it, which joins its team.
        let sql = "insert into comment (ticket_id, sentry_comment_id, origin, author, body, created_at, updated_at,
                                        edit_at, edit_delivery)
                   select l.ticket_id, $3, 'sentry', $4, $5, $6, $7, $8, $9
                   from ticket_link l join ticket t on t.id = l.ticket_id join team tm on tm.id = t.team_id
                   where l.installation_uuid = $1 and l.sentry_issue_id = $2
                   on conflict (ticket_id, sentry_comment_id) do nothing
                   returning ticket_id as id,
                             (select t.status from ticket t where t.id = comment.ticket_id) as status,
                             (select tm.key from ticket t join team tm on tm.id = t.team_id
                              where t.id = comment.ticket_id) as team_key,
                             (select t.number from ticket t where t.id = comment.ticket_id) as number";
        let row = on_conn!(self.conn(), |conn| sqlx::query_as::<_, TicketStateRow>(sql)
            .bind(installation)
            .bind(issue)
            .bind(comment.sentry_id)
            .bind(comment.author)
            .bind(comment.body)
            .bind(comment.created_at_ms)
            .bind(now_ms())
            .bind(comment.order.sent_at_ms)
            .bind(comment.order.delivery_id)
            .fetch_optional(conn)
            .await)?;
        row.map(TryInto::try_into).transpose()
    }

    /// Mirrors a Sentry comment on a ticket, keyed by Sentry's comment id.
    /// Returns what happened, for the delivery's note.
    pub async fn mirror_comment(
        &mut self,
        ticket: TicketId,
        comment: &MirroredComment<'_>,
    ) -> Result<CommentChange, StoreError> {
        let now = now_ms();
        let existing = on_conn!(self.conn(), |conn| sqlx::query_as::<_, (i64, String, Option<i64>)>(
            "select id, origin, deleted_at from comment where ticket_id = $1 and sentry_comment_id = $2"
        )
        .bind(ticket.0)
        .bind(comment.sentry_id)
        .fetch_optional(conn)
        .await)?;
        match (comment.kind, existing) {
            // A tombstone stays: a late create or update does not bring a
            // deleted comment back.
            (_, Some((_, _, Some(_)))) => Ok(CommentChange::Unchanged),
            (CommentKind::Deleted, Some((id, _, None))) => {
                on_conn!(self.conn(), |conn| sqlx::query(
                    "update comment set deleted_at = $2, updated_at = $2 where id = $1"
                )
                .bind(id)
                .bind(now)
                .execute(conn)
                .await
                .map(|_| ()))?;
                Ok(CommentChange::Deleted)
            }
            (CommentKind::Created, Some((_, origin, None))) => {
                Ok(if origin == "console" { CommentChange::Echo } else { CommentChange::Unchanged })
            }
            (CommentKind::Updated, Some((id, _, None))) => {
                let sql = format!(
                    "update comment set body = $2, updated_at = $3, edit_at = $4, edit_delivery = $5
                     where id = $1 and {}",
                    unless_newer("edit", 4, 5)
                );
                let changed = on_conn!(self.conn(), |conn| sqlx::query(&sql)
                    .bind(id)
                    .bind(comment.body)
                    .bind(now)
                    .bind(comment.order.sent_at_ms)
                    .bind(comment.order.delivery_id)
                    .execute(conn)
                    .await
                    .map(|d| d.rows_affected()))?;
                Ok(if changed == 1 { CommentChange::Updated } else { CommentChange::Unchanged })
            }
            (kind, None) => {
                // A comment this app posted whose id we have not heard back
                // yet: written by the app, the same text as a console
                // comment still without a Sentry id. It is the echo; it
                // takes the id.
                if kind == CommentKind::Created && comment.by_this_app {
                    let claimed = on_conn!(self.conn(), |conn| sqlx::query(
                        "update comment set sentry_comment_id = $2
                         where id = (select id from comment
                                     where ticket_id = $1 and origin = 'console' and sentry_comment_id is null
                                       and body = $3 and deleted_at is null
                                     order by id limit 1)"
                    )
                    .bind(ticket.0)
                    .bind(comment.sentry_id)
                    .bind(comment.body)
                    .execute(conn)
                    .await
                    .map(|d| d.rows_affected()))?;
                    if claimed == 1 {
                        return Ok(CommentChange::Echo);
                    }
                }
                let deleted_at = (kind == CommentKind::Deleted).then_some(now);
                on_conn!(self.conn(), |conn| {
                    sqlx::query(
                    "insert into comment (ticket_id, sentry_comment_id, origin, author, body, created_at, updated_at,
                                          deleted_at, edit_at, edit_delivery)
                     values ($1, $2, 'sentry', $3, $4, $5, $6, $7, $8, $9)"
                )
                .bind(ticket.0)
                .bind(comment.sentry_id)
                .bind(comment.author)
                .bind(comment.body)
                .bind(comment.created_at_ms)
                .bind(now)
                .bind(deleted_at)
                .bind(comment.order.sent_at_ms)
                .bind(comment.order.delivery_id)
                .execute(conn)
                .await
                .map(|_| ())
                })?;
                Ok(match kind {
                    CommentKind::Deleted => CommentChange::Deleted,
                    _ => CommentChange::Created,
                })
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentKind {
    Created,
    Updated,
    Deleted,
}

#[derive(Debug, Clone)]
pub struct MirroredComment<'a> {
    pub kind: CommentKind,
    pub sentry_id: &'a str,
    pub author: Option<&'a str>,
    pub body: &'a str,
    pub created_at_ms: i64,
    /// Sentry says the app itself wrote it (through its own token).
    pub by_this_app: bool,
    /// When the change was sent: an older edit does not overwrite a newer.
    pub order: ChangeOrder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentChange {
    Created,
    Updated,
    Deleted,
    /// A comment this app posted, come back from Sentry: not added again.
    Echo,
    Unchanged,
}
