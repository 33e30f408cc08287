//! The writes the worker makes while applying deliveries, inside one
//! transaction per batch.
//!
//! A batch of deliveries shares one transaction (one fsync on SQLite), and
//! each delivery runs inside its own savepoint, so one that fails rolls back
//! alone while the others commit. Effects that must happen once carry a key
//! ([`SyncTx::claim_effect`]) written in the same transaction, which is what
//! makes a replay change nothing twice.

use sqlx::{Postgres, Sqlite, Transaction};

use super::{now_ms, DeliveryOutcome, Store, StoreError};
use crate::domain::TicketId;
use crate::sync::ChangeOrder;
use crate::ticket::TicketStatus;

/// A write transaction on either backend. On SQLite it holds the write
/// gate until it ends, so the inbox queues behind it rather than sleeping
/// in SQLite's busy handler.
pub enum SyncTx {
    Sqlite(Transaction<'static, Sqlite>, tokio::sync::OwnedMutexGuard<()>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs the same block against either transaction's connection.
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            SyncTx::Sqlite(tx, _) => {
                let $conn = &mut **tx;
                $body
            }
            SyncTx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

impl Store {
    /// Opens the worker's write transaction. On SQLite it takes the write
    /// lock at once (`BEGIN IMMEDIATE`): a deferred transaction that read
    /// first could not upgrade while the inbox writes, and would fail
    /// instead of waiting.
    pub async fn begin_sync(&self) -> Result<SyncTx, StoreError> {
        Ok(match self {
            Store::Sqlite(pool) => {
                let turn = super::sqlite_write_gate(pool).lock_owned().await;
                SyncTx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?, turn)
            }
            Store::Postgres(pool) => SyncTx::Postgres(pool.begin().await?),
        })
    }
}

/// An installation as the handlers need it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SyncInstallation {
    pub status: String,
    pub settings: String,
}

/// A ticket as the handlers need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketState {
    pub id: TicketId,
    pub status: TicketStatus,
}

/// A ticket the worker opens.
#[derive(Debug, Clone)]
pub struct SyncTicket<'a> {
    pub installation: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub status: TicketStatus,
    pub assignee: Option<&'a str>,
    /// `issue`, `event_alert` or `metric_alert`.
    pub source: &'static str,
    pub metric_alert_id: Option<&'a str>,
    pub severity: Option<&'a str>,
    /// The Sentry issue the ticket is opened for, and linked to.
    pub issue: Option<&'a str>,
}

/// What a payload says about a Sentry issue; missing fields keep what is
/// stored.
#[derive(Debug, Clone, Default)]
pub struct IssueFacts<'a> {
    pub installation: &'a str,
    pub issue_id: &'a str,
    pub short_id: Option<&'a str>,
    pub title: Option<&'a str>,
    pub project_slug: Option<&'a str>,
    pub web_url: Option<&'a str>,
}

/// The guard of an ordered update: the row's `<prefix>_at` and
/// `<prefix>_delivery` (the last applied change) are not newer than the
/// change in parameters `$at` and `$delivery` (see [`ChangeOrder`]).
fn unless_newer(prefix: &str, at: u8, delivery: u8) -> String {
    format!(
        "({prefix}_at is null or {prefix}_at < ${at} or ({prefix}_at = ${at} and {prefix}_delivery <= ${delivery}))"
    )
}

fn ticket_state(id: i64, status: String) -> Result<TicketState, StoreError> {
    let status = status.parse().map_err(|e| StoreError::Corrupt(format!("ticket {id}: {e}")))?;
    Ok(TicketState { id: TicketId(id), status })
}

impl SyncTx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            SyncTx::Sqlite(tx, _turn) => tx.commit().await?,
            SyncTx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Undoes everything the transaction did.
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self {
            SyncTx::Sqlite(tx, _turn) => tx.rollback().await?,
            SyncTx::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }

    async fn execute(&mut self, sql: &str) -> Result<(), StoreError> {
        on_tx!(self, |conn| sqlx::query(sql).execute(conn).await.map(|_| ()))?;
        Ok(())
    }

    /// Starts the savepoint one delivery's changes live in.
    pub async fn savepoint(&mut self) -> Result<(), StoreError> {
        self.execute("savepoint delivery").await
    }

    /// Keeps the delivery's changes.
    pub async fn release(&mut self) -> Result<(), StoreError> {
        self.execute("release savepoint delivery").await
    }

    /// Undoes the delivery's changes, keeping the rest of the batch.
    pub async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        self.execute("rollback to savepoint delivery").await?;
        self.execute("release savepoint delivery").await
    }

    pub async fn installation(&mut self, uuid: &str) -> Result<Option<SyncInstallation>, StoreError> {
        let sql = "select status, settings from installation where uuid = $1";
        Ok(on_tx!(self, |conn| sqlx::query_as::<_, SyncInstallation>(sql).bind(uuid).fetch_optional(conn).await)?)
    }

    /// Writes an effect's key; true if it was not written before, i.e. the
    /// effect is to happen now.
    pub async fn claim_effect(&mut self, installation: &str, key: &str, delivery: i64) -> Result<bool, StoreError> {
        let sql = "insert into applied_effect (installation_uuid, effect_key, delivery_id, created_at)
                   values ($1, $2, $3, $4) on conflict do nothing";
        let written = on_tx!(self, |conn| sqlx::query(sql)
            .bind(installation)
            .bind(key)
            .bind(delivery)
            .bind(now_ms())
            .execute(conn)
            .await
            .map(|d| d.rows_affected()))?;
        Ok(written == 1)
    }

    /// Records a Sentry issue, or fills in what the stored record lacks.
    pub async fn upsert_issue(&mut self, facts: &IssueFacts<'_>) -> Result<(), StoreError> {
        let sql =
            "insert into sentry_issue (installation_uuid, issue_id, short_id, title, project_slug, web_url, updated_at)
                   values ($1, $2, $3, $4, $5, $6, $7)
                   on conflict (installation_uuid, issue_id) do update set
                       short_id = coalesce(excluded.short_id, sentry_issue.short_id),
                       title = coalesce(excluded.title, sentry_issue.title),
                       project_slug = coalesce(excluded.project_slug, sentry_issue.project_slug),
                       web_url = coalesce(excluded.web_url, sentry_issue.web_url),
                       updated_at = excluded.updated_at";
        on_tx!(self, |conn| sqlx::query(sql)
            .bind(facts.installation)
            .bind(facts.issue_id)
            .bind(facts.short_id)
            .bind(facts.title)
            .bind(facts.project_slug)
            .bind(facts.web_url)
            .bind(now_ms())
            .execute(conn)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Sets the issue's Sentry status unless a newer change was applied;
    /// returns whether it was set.
    pub async fn set_issue_status(
        &mut self,
        installation: &str,
        issue: &str,
        status: &str,
        substatus: Option<&str>,
        order: ChangeOrder,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "update sentry_issue set status = $3, substatus = $4, status_at = $5, status_delivery = $6, updated_at = $7
             where installation_uuid = $1 and issue_id = $2 and {}",
            unless_newer("status", 5, 6)
        );
        let changed = on_tx!(self, |conn| sqlx::query(&sql)
            .bind(installation)
            .bind(issue)
            .bind(status)
            .bind(substatus)
            .bind(order.sent_at_ms)
            .bind(order.delivery_id)
            .bind(now_ms())
            .execute(conn)
            .await
            .map(|d| d.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Sets the issue's assignee unless a newer assignment was applied.
    pub async fn set_issue_assignee(
        &mut self,
        installation: &str,
        issue: &str,
        assignee: Option<&str>,
        order: ChangeOrder,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "update sentry_issue set assignee = $3, assigned_at = $4, assigned_delivery = $5, updated_at = $6
             where installation_uuid = $1 and issue_id = $2 and {}",
            unless_newer("assigned", 4, 5)
        );
        let changed = on_tx!(self, |conn| sqlx::query(&sql)
            .bind(installation)
            .bind(issue)
            .bind(assignee)
            .bind(order.sent_at_ms)
            .bind(order.delivery_id)
            .bind(now_ms())
            .execute(conn)
            .await
            .map(|d| d.rows_affected()))?;
        Ok(changed == 1)
    }

    /// A Sentry issue's recorded status and the change that set it.
    pub async fn issue_status(
        &mut self,
        installation: &str,
        issue: &str,
    ) -> Result<Option<(String, ChangeOrder)>, StoreError> {
        let sql = "select status, status_at, status_delivery from sentry_issue
                   where installation_uuid = $1 and issue_id = $2 and status is not null and status_at is not null";
        let row = on_tx!(self, |conn| sqlx::query_as::<_, (String, i64, Option<i64>)>(sql)
            .bind(installation)
            .bind(issue)
            .fetch_optional(conn)
            .await)?;
        Ok(row.map(|(status, at, delivery)| {
            (status, ChangeOrder { sent_at_ms: at, delivery_id: delivery.unwrap_or_default() })
        }))
    }

    /// The ticket a Sentry issue is linked to.
    pub async fn linked_ticket(&mut self, installation: &str, issue: &str) -> Result<Option<TicketState>, StoreError> {
        let sql = "select t.id, t.status from ticket_link l join ticket t on t.id = l.ticket_id
                   where l.installation_uuid = $1 and l.sentry_issue_id = $2";
        let row = on_tx!(self, |conn| sqlx::query_as::<_, (i64, String)>(sql)
            .bind(installation)
            .bind(issue)
            .fetch_optional(conn)
            .await)?;
        row.map(|(id, status)| ticket_state(id, status)).transpose()
    }

    /// The ticket following a metric alert.
    pub async fn metric_alert_ticket(
        &mut self,
        installation: &str,
        alert: &str,
    ) -> Result<Option<(TicketState, Option<String>)>, StoreError> {
        let sql = "select id, status, severity from ticket where installation_uuid = $1 and metric_alert_id = $2";
        let row = on_tx!(self, |conn| sqlx::query_as::<_, (i64, String, Option<String>)>(sql)
            .bind(installation)
            .bind(alert)
            .fetch_optional(conn)
            .await)?;
        row.map(|(id, status, severity)| Ok((ticket_state(id, status)?, severity))).transpose()
    }

    /// Opens a ticket and links it to its Sentry issue, if it has one.
    pub async fn open_ticket(&mut self, ticket: &SyncTicket<'_>) -> Result<TicketId, StoreError> {
        // A ticket opened after its issue's events were counted starts
        // with them.
        let sql = "insert into ticket (installation_uuid, title, description, status, assignee_email, source,
                                       metric_alert_id, severity, occurrences, created_at, updated_at)
                   values ($1, $2, $3, $4, $5, $6, $7, $8,
                           coalesce((select event_count from sentry_issue
                                     where installation_uuid = $1 and issue_id = $10), 0),
                           $9, $9)
                   returning id";
        let id = on_tx!(self, |conn| sqlx::query_scalar::<_, i64>(sql)
            .bind(ticket.installation)
            .bind(ticket.title)
            .bind(ticket.description)
            .bind(ticket.status.as_str())
            .bind(ticket.assignee)
            .bind(ticket.source)
            .bind(ticket.metric_alert_id)
            .bind(ticket.severity)
            .bind(now_ms())
            .bind(ticket.issue)
            .fetch_one(conn)
            .await)?;
        let id = TicketId(id);
        if let Some(issue) = ticket.issue {
            self.link_issue(ticket.installation, issue, id).await?;
        }
        Ok(id)
    }

    /// Links an issue to a ticket, copying what we know of the issue.
    async fn link_issue(&mut self, installation: &str, issue: &str, ticket: TicketId) -> Result<(), StoreError> {
        let sql = "insert into ticket_link (installation_uuid, sentry_issue_id, ticket_id, short_id, title, web_url,
                                            project_slug, created_at)
                   select installation_uuid, issue_id, $3, short_id, title, web_url, project_slug, $4
                   from sentry_issue where installation_uuid = $1 and issue_id = $2
                   on conflict (installation_uuid, sentry_issue_id) do nothing";
        on_tx!(self, |conn| sqlx::query(sql)
            .bind(installation)
            .bind(issue)
            .bind(ticket.0)
            .bind(now_ms())
            .execute(conn)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Moves a ticket (and a metric alert's ticket to a severity) unless a
    /// newer change moved it already: a replayed `resolved` must not close a
    /// ticket that a later alert reopened.
    pub async fn set_ticket_status(
        &mut self,
        ticket: TicketId,
        status: TicketStatus,
        severity: Option<&str>,
        order: ChangeOrder,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "update ticket set status = $2, severity = coalesce($3, severity), status_at = $4, status_delivery = $5,
                    updated_at = case when status = $2 and coalesce(severity, '') = coalesce($3, severity, '')
                                      then updated_at else $6 end
             where id = $1 and {}",
            unless_newer("status", 4, 5)
        );
        let changed = on_tx!(self, |conn| sqlx::query(&sql)
            .bind(ticket.0)
            .bind(status.as_str())
            .bind(severity)
            .bind(order.sent_at_ms)
            .bind(order.delivery_id)
            .bind(now_ms())
            .execute(conn)
            .await
            .map(|d| d.rows_affected()))?;
        Ok(changed == 1)
    }

    pub async fn set_ticket_assignee(&mut self, ticket: TicketId, assignee: &str) -> Result<(), StoreError> {
        let sql = "update ticket set assignee_email = $2, updated_at = $3
                   where id = $1 and (assignee_email is null or assignee_email <> $2)";
        on_tx!(self, |conn| sqlx::query(sql)
            .bind(ticket.0)
            .bind(assignee)
            .bind(now_ms())
            .execute(conn)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Counts one event on its issue and on the issue's linked ticket, if
    /// it has one (the caller has looked it up already).
    pub async fn count_event(
        &mut self,
        installation: &str,
        issue: &str,
        ticket: Option<TicketId>,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let on_issue = "update sentry_issue set event_count = event_count + 1, updated_at = $4,
                            last_event_at = case when last_event_at > $3 then last_event_at else $3 end
                        where installation_uuid = $1 and issue_id = $2";
        on_tx!(self, |conn| sqlx::query(on_issue)
            .bind(installation)
            .bind(issue)
            .bind(at_ms)
            .bind(now)
            .execute(conn)
            .await
            .map(|_| ()))?;
        let Some(ticket) = ticket else { return Ok(()) };
        let on_ticket = "update ticket set occurrences = occurrences + 1, updated_at = $3,
                             last_event_at = case when last_event_at > $2 then last_event_at else $2 end
                         where id = $1";
        on_tx!(self, |conn| sqlx::query(on_ticket)
            .bind(ticket.0)
            .bind(at_ms)
            .bind(now)
            .execute(conn)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Mirrors a Sentry comment on a ticket, keyed by Sentry's comment id.
    /// Returns what happened, for the delivery's note.
    pub async fn mirror_comment(
        &mut self,
        ticket: TicketId,
        comment: &MirroredComment<'_>,
    ) -> Result<CommentChange, StoreError> {
        let now = now_ms();
        let existing = on_tx!(self, |conn| sqlx::query_as::<_, (i64, String, Option<i64>)>(
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
                on_tx!(self, |conn| sqlx::query("update comment set deleted_at = $2, updated_at = $2 where id = $1")
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
                let changed = on_tx!(self, |conn| sqlx::query(&sql)
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
                    let claimed = on_tx!(self, |conn| sqlx::query(
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
                on_tx!(self, |conn| {
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

    /// Records how deliveries went: each one's state and note, and an
    /// attempt row each, in two statements however many there are.
    pub async fn finish_deliveries(&mut self, finished: &[FinishedDelivery<'_>]) -> Result<(), StoreError> {
        if finished.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let rows: Vec<_> = finished.iter().map(|f| (f, f.outcome.columns(now))).collect();
        on_tx!(self, |conn| {
            // `values` names its columns column1, column2, … in both dialects.
            let mut update = sqlx::QueryBuilder::new(
                "update delivery set state = v.column2, next_attempt_at = v.column3, last_error = v.column4,
                        processed_at = v.column5, note = v.column6
                 from (",
            );
            update.push_values(&rows, |mut row, (f, (state, next_attempt, error, processed_at))| {
                row.push_bind(f.id)
                    .push_bind(*state)
                    .push_bind(*next_attempt)
                    .push_bind(*error)
                    .push_bind(*processed_at)
                    .push_bind(f.note);
            });
            update.push(") as v where delivery.id = v.column1");
            update.build().execute(&mut *conn).await?;
            let mut attempts = sqlx::QueryBuilder::new(
                "insert into delivery_attempt (delivery_id, attempt, finished_at, outcome, error) ",
            );
            attempts.push_values(&rows, |mut row, (f, (state, _, error, _))| {
                row.push_bind(f.id).push_bind(f.attempt).push_bind(now).push_bind(*state).push_bind(*error);
            });
            attempts.build().execute(&mut *conn).await.map(|_| ())
        })?;
        Ok(())
    }
}

/// How processing one claimed delivery ended.
#[derive(Debug, Clone)]
pub struct FinishedDelivery<'a> {
    pub id: i64,
    /// Counted from 1, as the claim counted it.
    pub attempt: i64,
    pub outcome: &'a DeliveryOutcome,
    pub note: Option<&'a str>,
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
