//! People's changes to tickets in the console, each in one transaction with
//! its history line and the outbox rows that tell Sentry (docs/sync.md).
//!
//! A console change records its time in the same columns as Sentry's
//! (`status_at`, `assignee_at`), so a webhook about an older change in
//! Sentry loses to it, a newer one wins, and the sender drops an outbox row
//! that a newer change has overtaken.

use serde_json::json;

use super::access::push_org_scope;
use super::conn::on_conn;
use super::teams::{take_ticket_number, TeamChoice, TeamError};
use super::tickets::ticket_key;
use super::{again_if_given_up, on_pool, MaybeGivenUp, Store, StoreError};
use crate::domain::access::OrgScope;
use crate::domain::ids::TicketId;
use crate::domain::outbox::{ChangeSource, OutboxKind, TicketEdit};
use crate::domain::team::TicketKey;
use crate::domain::ticket::TicketStatus;
use crate::domain::time::now_ms;

/// A ticket a person may work on: found in their organizations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRef {
    pub id: TicketId,
    pub installation_uuid: String,
    pub org_slug: String,
    pub key: TicketKey,
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The person asked for something that cannot be; the text says why.
    #[error("{0}")]
    Invalid(String),
    #[error("there is no such {0}")]
    NotFound(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MaybeGivenUp for EditError {
    fn is_given_up(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_given_up())
    }
}

impl From<sqlx::Error> for EditError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// What an edit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    /// The ticket's identifier after the edit (a team change gives a new one).
    pub key: TicketKey,
    /// One line per change, as the history shows it.
    pub changes: Vec<String>,
    /// Outbox rows written.
    pub queued: u64,
}

#[derive(sqlx::FromRow)]
struct CurrentRow {
    title: String,
    description: String,
    status: String,
    assignee_email: Option<String>,
    team_id: i64,
    team_key: String,
    number: i64,
}

/// A ticket as the sender needs it to decide what to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncTicket {
    pub key: TicketKey,
    pub status: TicketStatus,
    pub status_at: Option<i64>,
    pub assignee: Option<String>,
    pub assignee_at: Option<i64>,
    /// Whether the outbox row's issue is still linked to the ticket.
    pub linked: bool,
}

/// A comment as the sender needs it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SyncComment {
    pub body: String,
    pub sentry_comment_id: Option<String>,
    pub deleted_at: Option<i64>,
}

impl Store {
    /// The ticket with this identifier (or a former one, before it moved
    /// team) in `installation`, if it is in `scope`.
    pub async fn ticket_ref(
        &self,
        scope: &OrgScope,
        installation: &str,
        key: &TicketKey,
    ) -> Result<Option<TicketRef>, StoreError> {
        let row: Option<(i64, String, String, String, i64)> = on_pool!(self, |pool| {
            let mut sql = sqlx::QueryBuilder::new(
                "select t.id, t.installation_uuid, i.org_slug, tm.key, t.number
                 from ticket t
                 join installation i on i.uuid = t.installation_uuid
                 join team tm on tm.id = t.team_id
                 where t.installation_uuid = ",
            );
            sql.push_bind(installation.to_owned());
            sql.push(" and (t.identifier = ").push_bind(key.to_string());
            sql.push(" or t.id = (select a.ticket_id from ticket_alias a where a.installation_uuid = ");
            sql.push_bind(installation.to_owned());
            sql.push(" and a.identifier = ").push_bind(key.to_string()).push("))");
            push_org_scope!(sql, "i.org_id", "i.org_slug", scope);
            sql.build_query_as().fetch_optional(pool).await
        })?;
        row.map(|(id, installation_uuid, org_slug, team, number)| {
            Ok(TicketRef { id: TicketId(id), installation_uuid, org_slug, key: ticket_key(id, &team, number)? })
        })
        .transpose()
    }

    /// Applies a person's edit: the ticket, its history and the outbox in
    /// one transaction.
    pub async fn edit_ticket(&self, ticket: &TicketRef, edit: &TicketEdit, actor: &str) -> Result<Edited, EditError> {
        again_if_given_up(|| self.edit_ticket_once(ticket, edit, actor)).await
    }

    async fn edit_ticket_once(&self, ticket: &TicketRef, edit: &TicketEdit, actor: &str) -> Result<Edited, EditError> {
        let now = now_ms();
        let mut tx = self.begin_apply().await?;
        let lock = if matches!(self, Store::Postgres(_)) { " for update of t" } else { "" };
        let sql = format!(
            "select t.title, t.description, t.status, t.assignee_email, t.team_id, tm.key as team_key, t.number
             from ticket t join team tm on tm.id = t.team_id where t.id = $1{lock}"
        );
        let current =
            on_conn!(tx.conn(), |c| sqlx::query_as::<_, CurrentRow>(&sql).bind(ticket.id.0).fetch_optional(c).await)?
                .ok_or(EditError::NotFound("ticket"))?;
        let mut key = ticket_key(ticket.id.0, &current.team_key, current.number)?;
        let mut changes = Vec::new();
        let mut queued = 0;
        let mut team_id = current.team_id;

        if let Some(team) = edit.team.as_ref().filter(|team| **team != key.team) {
            let (new_team, new_key) =
                take_ticket_number(tx.conn(), &ticket.installation_uuid, &TeamChoice::Key(team.clone()))
                    .await
                    .map_err(|e| match e {
                        TeamError::Store(e) => EditError::Store(e),
                        TeamError::NotFound => EditError::Invalid(format!("There is no team {team}.")),
                        other => EditError::Invalid(other.to_string()),
                    })?;
            let sql = "update ticket set team_id = $2, number = $3, identifier = $4 where id = $1";
            on_conn!(tx.conn(), |c| sqlx::query(sql)
                .bind(ticket.id.0)
                .bind(new_team)
                .bind(new_key.number)
                .bind(new_key.to_string())
                .execute(c)
                .await
                .map(|_| ()))?;
            let sql = "insert into ticket_alias (installation_uuid, identifier, ticket_id) values ($1, $2, $3)
                       on conflict (installation_uuid, identifier) do update set ticket_id = excluded.ticket_id";
            on_conn!(tx.conn(), |c| sqlx::query(sql)
                .bind(&ticket.installation_uuid)
                .bind(key.to_string())
                .bind(ticket.id.0)
                .execute(c)
                .await
                .map(|_| ()))?;
            // Sentry's sidebar names the ticket: links issuebridge made show
            // the new identifier.
            let links = links_of(&mut tx, ticket.id).await?;
            for (installation, issue) in links {
                if tx.has_external_link(&installation, &issue, ticket.id).await? {
                    for kind in [OutboxKind::UnlinkExternal, OutboxKind::LinkExternal] {
                        tx.enqueue_for_issue(&installation, &issue, ticket.id, kind, &json!({}), now).await?;
                        queued += 1;
                    }
                }
            }
            changes.push(format!("moved to team {} as {new_key} (was {key})", new_key.team));
            key = new_key;
            team_id = new_team;
        }

        if let Some(title) = edit.title.as_deref().filter(|t| *t != current.title) {
            on_conn!(tx.conn(), |c| sqlx::query("update ticket set title = $2 where id = $1")
                .bind(ticket.id.0)
                .bind(title)
                .execute(c)
                .await
                .map(|_| ()))?;
            changes.push(format!("renamed to “{title}”"));
        }
        if let Some(description) = edit.description.as_deref().filter(|d| *d != current.description) {
            on_conn!(tx.conn(), |c| sqlx::query("update ticket set description = $2 where id = $1")
                .bind(ticket.id.0)
                .bind(description)
                .execute(c)
                .await
                .map(|_| ()))?;
            changes.push("edited the description".to_owned());
        }
        if let Some(status) = edit.status.filter(|s| s.as_str() != current.status) {
            let sql = "update ticket set status = $2, status_at = $3, status_delivery = 0 where id = $1";
            on_conn!(tx.conn(), |c| sqlx::query(sql)
                .bind(ticket.id.0)
                .bind(status.as_str())
                .bind(now)
                .execute(c)
                .await
                .map(|_| ()))?;
            queued += tx.enqueue_for_ticket(ticket.id, OutboxKind::Status, &json!({ "status": status }), now).await?;
            changes.push(format!("moved to {}", status.label()));
        }
        if let Some(assignee) = edit.assignee.as_ref().filter(|a| **a != current.assignee_email) {
            if let Some(email) = assignee {
                let sql = "select email from team_member where team_id = $1";
                let members: Vec<String> =
                    on_conn!(tx.conn(), |c| sqlx::query_scalar(sql).bind(team_id).fetch_all(c).await)?;
                if !members.is_empty() && !members.iter().any(|m| m == email) {
                    return Err(EditError::Invalid(format!(
                        "{email} is not a member of team {}; choose one of its members.",
                        key.team
                    )));
                }
            }
            let sql = "update ticket set assignee_email = $2, assignee_at = $3 where id = $1";
            on_conn!(tx.conn(), |c| sqlx::query(sql)
                .bind(ticket.id.0)
                .bind(assignee.as_deref())
                .bind(now)
                .execute(c)
                .await
                .map(|_| ()))?;
            queued +=
                tx.enqueue_for_ticket(ticket.id, OutboxKind::Assignee, &json!({ "assignee": assignee }), now).await?;
            changes.push(match assignee {
                Some(email) => format!("assigned to {email}"),
                None => "unassigned".to_owned(),
            });
        }
        if changes.is_empty() {
            tx.rollback().await?;
            return Ok(Edited { key, changes, queued: 0 });
        }
        touch(&mut tx, ticket.id, now).await?;
        for change in &changes {
            tx.record_ticket_event(ticket.id, ChangeSource::Person, Some(actor), change).await?;
        }
        tx.commit().await?;
        Ok(Edited { key, changes, queued })
    }

    /// A comment written here: kept, and queued for the ticket's first
    /// linked Sentry issue. Returns the comment's id.
    pub async fn add_ticket_comment(&self, ticket: TicketId, author: &str, body: &str) -> Result<i64, EditError> {
        again_if_given_up(|| self.add_ticket_comment_once(ticket, author, body)).await
    }

    async fn add_ticket_comment_once(&self, ticket: TicketId, author: &str, body: &str) -> Result<i64, EditError> {
        let now = now_ms();
        let mut tx = self.begin_apply().await?;
        let first = links_of(&mut tx, ticket).await?.into_iter().next();
        let sql = "insert into comment (ticket_id, origin, author, body, created_at, updated_at, sentry_issue_id)
                   values ($1, 'console', $2, $3, $4, $4, $5) returning id";
        let id = on_conn!(tx.conn(), |c| sqlx::query_scalar::<_, i64>(sql)
            .bind(ticket.0)
            .bind(author)
            .bind(body)
            .bind(now)
            .bind(first.as_ref().map(|(_, issue)| issue.as_str()))
            .fetch_one(c)
            .await)?;
        if let Some((installation, issue)) = &first {
            let payload = json!({ "comment": id });
            tx.enqueue_for_issue(installation, issue, ticket, OutboxKind::CommentCreated, &payload, now).await?;
        }
        tx.record_ticket_event(ticket, ChangeSource::Person, Some(author), "commented").await?;
        touch(&mut tx, ticket, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Edits (`Some(text)`) or deletes (`None`) a comment written here by
    /// `author` (anyone's, with `any_author`); Sentry follows.
    pub async fn change_ticket_comment(
        &self,
        ticket: &TicketRef,
        comment: i64,
        author: &str,
        any_author: bool,
        body: Option<&str>,
    ) -> Result<(), EditError> {
        again_if_given_up(|| self.change_ticket_comment_once(ticket, comment, author, any_author, body)).await
    }

    async fn change_ticket_comment_once(
        &self,
        ticket: &TicketRef,
        comment: i64,
        author: &str,
        any_author: bool,
        body: Option<&str>,
    ) -> Result<(), EditError> {
        let now = now_ms();
        let mut tx = self.begin_apply().await?;
        let sql = "select origin, author, deleted_at, sentry_issue_id from comment where id = $1 and ticket_id = $2";
        // origin, author, deleted_at, the Sentry issue it was posted to
        type Row = (String, Option<String>, Option<i64>, Option<String>);
        let row: Option<Row> =
            on_conn!(tx.conn(), |c| sqlx::query_as(sql).bind(comment).bind(ticket.id.0).fetch_optional(c).await)?;
        let Some((origin, written_by, _, issue)) = row.filter(|(_, _, deleted_at, _)| deleted_at.is_none()) else {
            return Err(EditError::NotFound("comment"));
        };
        if origin != "console" {
            return Err(EditError::Invalid("Comments written in Sentry are edited in Sentry.".into()));
        }
        if !any_author && written_by.as_deref() != Some(author) {
            return Err(EditError::Invalid("Only the comment's author can change it.".into()));
        }
        let (kind, summary) = match body {
            Some(body) => {
                let sql = "update comment set body = $2, updated_at = $3 where id = $1";
                on_conn!(tx.conn(), |c| sqlx::query(sql)
                    .bind(comment)
                    .bind(body)
                    .bind(now)
                    .execute(c)
                    .await
                    .map(|_| ()))?;
                (OutboxKind::CommentUpdated, "edited a comment")
            }
            None => {
                let sql = "update comment set deleted_at = $2 where id = $1";
                on_conn!(tx.conn(), |c| sqlx::query(sql).bind(comment).bind(now).execute(c).await.map(|_| ()))?;
                (OutboxKind::CommentDeleted, "deleted a comment")
            }
        };
        if let Some(issue) = issue {
            let payload = json!({ "comment": comment });
            tx.enqueue_for_issue(&ticket.installation_uuid, &issue, ticket.id, kind, &payload, now).await?;
        }
        tx.record_ticket_event(ticket.id, ChangeSource::Person, Some(author), summary).await?;
        touch(&mut tx, ticket.id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Unlinks a Sentry issue from the ticket; the link issuebridge made in
    /// Sentry's sidebar, if any, is removed too.
    pub async fn unlink_ticket_issue(&self, ticket: &TicketRef, issue: &str, actor: &str) -> Result<(), EditError> {
        again_if_given_up(|| self.unlink_ticket_issue_once(ticket, issue, actor)).await
    }

    async fn unlink_ticket_issue_once(&self, ticket: &TicketRef, issue: &str, actor: &str) -> Result<(), EditError> {
        let now = now_ms();
        let mut tx = self.begin_apply().await?;
        let sql = "delete from ticket_link where ticket_id = $1 and installation_uuid = $2 and sentry_issue_id = $3";
        let removed = on_conn!(tx.conn(), |c| sqlx::query(sql)
            .bind(ticket.id.0)
            .bind(&ticket.installation_uuid)
            .bind(issue)
            .execute(c)
            .await
            .map(|d| d.rows_affected()))?;
        if removed == 0 {
            return Err(EditError::NotFound("linked issue"));
        }
        if tx.has_external_link(&ticket.installation_uuid, issue, ticket.id).await? {
            let kind = OutboxKind::UnlinkExternal;
            tx.enqueue_for_issue(&ticket.installation_uuid, issue, ticket.id, kind, &json!({}), now).await?;
        }
        let name: Option<String> = on_conn!(tx.conn(), |c| sqlx::query_scalar(
            "select short_id from sentry_issue where installation_uuid = $1 and issue_id = $2"
        )
        .bind(&ticket.installation_uuid)
        .bind(issue)
        .fetch_optional(c)
        .await)?
        .flatten();
        let summary = format!("unlinked {}", name.unwrap_or_else(|| format!("Sentry issue {issue}")));
        tx.record_ticket_event(ticket.id, ChangeSource::Person, Some(actor), &summary).await?;
        touch(&mut tx, ticket.id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The ticket as the sender needs it, and whether `issue` is still
    /// linked to it.
    pub async fn sync_ticket(&self, ticket: i64, issue: &str) -> Result<Option<SyncTicket>, StoreError> {
        let sql = "select tm.key, t.number, t.status, t.status_at, t.assignee_email, t.assignee_at,
                          exists (select 1 from ticket_link l where l.ticket_id = t.id and l.sentry_issue_id = $2)
                   from ticket t join team tm on tm.id = t.team_id where t.id = $1";
        type Row = (String, i64, String, Option<i64>, Option<String>, Option<i64>, bool);
        let row: Option<Row> =
            on_pool!(self, |pool| sqlx::query_as(sql).bind(ticket).bind(issue).fetch_optional(pool).await)?;
        row.map(|(team, number, status, status_at, assignee, assignee_at, linked)| {
            Ok(SyncTicket {
                key: ticket_key(ticket, &team, number)?,
                status: status.parse().map_err(|e| StoreError::Corrupt(format!("ticket {ticket}: {e}")))?,
                status_at,
                assignee,
                assignee_at,
                linked,
            })
        })
        .transpose()
    }

    pub async fn sync_comment(&self, comment: i64) -> Result<Option<SyncComment>, StoreError> {
        let sql = "select body, sentry_comment_id, deleted_at from comment where id = $1";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, SyncComment>(sql).bind(comment).fetch_optional(pool).await)?)
    }
}

/// The ticket's linked issues, first linked first.
async fn links_of(tx: &mut super::ApplyTx, ticket: TicketId) -> Result<Vec<(String, String)>, StoreError> {
    let sql = "select installation_uuid, sentry_issue_id from ticket_link where ticket_id = $1
               order by created_at, sentry_issue_id";
    Ok(on_conn!(tx.conn(), |c| sqlx::query_as(sql).bind(ticket.0).fetch_all(c).await)?)
}

async fn touch(tx: &mut super::ApplyTx, ticket: TicketId, now: i64) -> Result<(), StoreError> {
    on_conn!(tx.conn(), |c| sqlx::query("update ticket set updated_at = $2 where id = $1")
        .bind(ticket.0)
        .bind(now)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}
