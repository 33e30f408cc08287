//! The outbox: every change Sentry should hear about, written in the
//! transaction of the change, and sent by [`crate::outbound::sender`].
//!
//! A row concerns one Sentry issue. The sender only ever takes the oldest
//! pending row of an issue, so each issue's changes reach Sentry in the
//! order they were made; rows of different issues go side by side. A claim
//! is a lease (`claimed_until`), taken with `for update skip locked` on
//! PostgreSQL, so several instances share the rows and each row is sent by
//! one of them.

use super::access::push_org_scope;
use super::conn::on_conn;
use super::{on_pool, ApplyTx, Store, StoreError};
use crate::domain::access::OrgScope;
use crate::domain::ids::TicketId;
use crate::domain::outbox::{ChangeSource, OutboxItem, OutboxKind, OutboxState, TicketEventView};
use crate::domain::time::now_ms;

/// A claimed row, as the sender needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub installation_uuid: String,
    pub sentry_issue_id: String,
    pub ticket_id: i64,
    pub kind: String,
    pub payload: String,
    pub change_at: i64,
    pub attempts: i64,
}

/// A sent (or not) row, as [`Store::finish_outbox`] records it.
#[derive(Debug, Clone)]
pub struct FinishedRow {
    pub row: OutboxRow,
    pub outcome: OutboxOutcome,
    /// The issue's status as Sentry answered a status change.
    pub issue_status: Option<String>,
}

/// How sending a row went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxOutcome {
    /// Sentry took it; `sentry_ref` is what later rows need of its answer.
    Sent { sentry_ref: Option<String> },
    /// Sentry could not be reached (or asked us to wait): try again then.
    Retry { at_ms: i64, error: String },
    /// Refused for good; marked on the ticket, waits for a person.
    Failed { error: String },
    /// A newer change came after it; sending it would undo that.
    Superseded { why: String },
    /// Nothing to send; said on the ticket.
    Skipped { why: String },
}

impl OutboxOutcome {
    pub fn state(&self) -> OutboxState {
        match self {
            Self::Sent { .. } => OutboxState::Sent,
            Self::Retry { .. } => OutboxState::Pending,
            Self::Failed { .. } => OutboxState::Failed,
            Self::Superseded { .. } => OutboxState::Superseded,
            Self::Skipped { .. } => OutboxState::Skipped,
        }
    }
}

const INSERT_COLUMNS: &str =
    "insert into outbox (installation_uuid, sentry_issue_id, ticket_id, kind, payload, change_at, next_attempt_at, created_at)";

impl ApplyTx {
    /// One row per Sentry issue linked to the ticket; returns how many.
    pub async fn enqueue_for_ticket(
        &mut self,
        ticket: TicketId,
        kind: OutboxKind,
        payload: &serde_json::Value,
        change_at: i64,
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "{INSERT_COLUMNS} select installation_uuid, sentry_issue_id, $1, $2, $3, $4, $5, $5
             from ticket_link where ticket_id = $1 order by created_at, sentry_issue_id"
        );
        let written = on_conn!(self.conn(), |conn| sqlx::query(&sql)
            .bind(ticket.0)
            .bind(kind.as_str())
            .bind(payload.to_string())
            .bind(change_at)
            .bind(now_ms())
            .execute(conn)
            .await
            .map(|d| d.rows_affected()))?;
        Ok(written)
    }

    /// One row about one Sentry issue.
    pub async fn enqueue_for_issue(
        &mut self,
        installation: &str,
        issue: &str,
        ticket: TicketId,
        kind: OutboxKind,
        payload: &serde_json::Value,
        change_at: i64,
    ) -> Result<(), StoreError> {
        let sql = format!("{INSERT_COLUMNS} values ($1, $2, $3, $4, $5, $6, $7, $7)");
        on_conn!(self.conn(), |conn| sqlx::query(&sql)
            .bind(installation)
            .bind(issue)
            .bind(ticket.0)
            .bind(kind.as_str())
            .bind(payload.to_string())
            .bind(change_at)
            .bind(now_ms())
            .execute(conn)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// A line of the ticket's history.
    pub async fn record_ticket_event(
        &mut self,
        ticket: TicketId,
        source: ChangeSource,
        actor: Option<&str>,
        summary: &str,
    ) -> Result<(), StoreError> {
        let sql = "insert into ticket_event (ticket_id, at, source, actor, summary) values ($1, $2, $3, $4, $5)";
        on_conn!(self.conn(), |conn| sqlx::query(sql)
            .bind(ticket.0)
            .bind(now_ms())
            .bind(source.as_str())
            .bind(actor)
            .bind(summary)
            .execute(conn)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Whether issuebridge linked this issue in Sentry's sidebar for this
    /// ticket (a link row exists, sent or not): unlinking must remove it.
    pub async fn has_external_link(
        &mut self,
        installation: &str,
        issue: &str,
        ticket: TicketId,
    ) -> Result<bool, StoreError> {
        let sql = "select count(*) from outbox
                   where installation_uuid = $1 and sentry_issue_id = $2 and ticket_id = $3 and kind = 'link_external'";
        let count = on_conn!(self.conn(), |conn| sqlx::query_scalar::<_, i64>(sql)
            .bind(installation)
            .bind(issue)
            .bind(ticket.0)
            .fetch_one(conn)
            .await)?;
        Ok(count > 0)
    }
}

/// The claim's statement: `$1` the lease's end, `$2` now, `$3` the most
/// rows.
///
/// On SQLite it names the index to walk. Without statistics (nothing runs
/// `ANALYZE`), SQLite's planner took `outbox_state` for `state = 'pending'`
/// and sorted every pending row by due time for each claim: a claim cost
/// what the whole queue does, 20 to 40 ms with the tens of thousands of
/// links a burst of new issues queues, holding the board's write gate
/// the worker needs (BENCHMARKS.md, notes). Walking `outbox_due` in order
/// stops after `$3` rows that qualify. PostgreSQL plans with statistics
/// and walks it already.
pub(crate) fn claim_outbox_sql(backend: crate::config::Backend) -> String {
    let (due_index, lock) = match backend {
        crate::config::Backend::Sqlite => (" indexed by outbox_due", ""),
        crate::config::Backend::Postgres => ("", " for update skip locked"),
    };
    format!(
        "update outbox set claimed_until = $1, attempts = attempts + 1
         where id in (
             select o.id from outbox o{due_index}
             where o.state = 'pending' and o.next_attempt_at <= $2
               and (o.claimed_until is null or o.claimed_until < $2)
               and not exists (select 1 from outbox e
                               where e.state = 'pending' and e.installation_uuid = o.installation_uuid
                                 and e.sentry_issue_id = o.sentry_issue_id and e.id < o.id)
             order by o.next_attempt_at, o.id limit $3{lock})
         returning id, installation_uuid, sentry_issue_id, ticket_id, kind, payload, change_at, attempts"
    )
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    id: i64,
    installation_uuid: String,
    org_slug: Option<String>,
    sentry_issue_id: String,
    short_id: Option<String>,
    team_key: Option<String>,
    number: Option<i64>,
    ticket_id: i64,
    kind: String,
    state: String,
    attempts: i64,
    last_error: Option<String>,
    created_at: i64,
    next_attempt_at: i64,
    finished_at: Option<i64>,
}

impl TryFrom<ItemRow> for OutboxItem {
    type Error = StoreError;
    fn try_from(row: ItemRow) -> Result<Self, StoreError> {
        let corrupt = |e: crate::domain::outbox::UnknownName| StoreError::Corrupt(format!("outbox {}: {e}", row.id));
        let ticket = match (&row.team_key, row.number) {
            (Some(team), Some(number)) => Some(super::tickets::ticket_key(row.ticket_id, team, number)?),
            _ => None,
        };
        Ok(OutboxItem {
            id: row.id,
            installation_uuid: row.installation_uuid.clone(),
            org_slug: row.org_slug.clone().unwrap_or_default(),
            sentry_issue_id: row.sentry_issue_id.clone(),
            short_id: row.short_id.clone(),
            ticket,
            kind: row.kind.parse().map_err(corrupt)?,
            state: row.state.parse().map_err(corrupt)?,
            attempts: row.attempts,
            last_error: row.last_error.clone(),
            created_at_ms: row.created_at,
            next_attempt_at_ms: row.next_attempt_at,
            finished_at_ms: row.finished_at,
        })
    }
}

/// Which rows the Outbox view lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxQuery {
    pub state: Option<OutboxState>,
    pub ticket: Option<TicketId>,
    /// Rows older than this id (paging).
    pub before: Option<i64>,
    pub limit: i64,
}

impl Store {
    /// Claims up to `limit` rows that are due, each the oldest pending row
    /// of its Sentry issue, for `lease_ms`. Rows are taken in the order they
    /// came due (the `outbox_due` index, so a backlog of many issues costs a
    /// claim what a short queue does); order matters only within an issue,
    /// which the `not exists` keeps.
    pub async fn claim_outbox(&self, limit: i64, lease_ms: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let now = now_ms();
        let sql = claim_outbox_sql(self.backend());
        // The sender is in less of a hurry than a person: it lets the
        // worker's transaction run on for a while.
        let _turn = self.write_turn_patiently().await;
        // Planned at each run, not kept prepared. PostgreSQL gives a kept
        // statement a generic plan after five runs, costed with the
        // statistics of that moment: planned while the outbox was nearly
        // empty, the `not exists` became a walk of the whole outbox for each
        // due row: one claim over 20,000 rows took 110 s in psql, and one in
        // the bench ran for minutes (a burst of webhooks fills the outbox
        // that fast). Planning costs under a millisecond a claim.
        let mut rows = on_pool!(self, |pool| sqlx::query_as::<_, OutboxRow>(&sql)
            .persistent(false)
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// Records how sending went for a batch of rows, in one transaction (one
    /// commit, which on SQLite is what a row's cost is mostly made of). A
    /// failure or a skip is also written into the ticket's history, so it
    /// shows where people look; a status Sentry reported back is recorded on
    /// its issue, unless a newer webhook said otherwise already.
    ///
    /// The rows' outcomes are one statement and the history's lines another,
    /// however many rows there are: a statement is a round trip, and written
    /// row by row the sender spent as long recording a row as the worker
    /// applying a delivery, and fell behind the tickets the worker opened.
    pub async fn finish_outbox(&self, finished: &[FinishedRow]) -> Result<(), StoreError> {
        if finished.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let outcomes: Vec<_> = finished
            .iter()
            .map(|FinishedRow { row, outcome, .. }| {
                let (error, sentry_ref, next_attempt_at, finished_at) = match outcome {
                    OutboxOutcome::Sent { sentry_ref } => (None, sentry_ref.as_deref(), now, Some(now)),
                    OutboxOutcome::Retry { at_ms, error } => (Some(error.as_str()), None, *at_ms, None),
                    OutboxOutcome::Failed { error } => (Some(error.as_str()), None, now, Some(now)),
                    OutboxOutcome::Superseded { why } | OutboxOutcome::Skipped { why } => {
                        (Some(why.as_str()), None, now, Some(now))
                    }
                };
                (row.id, outcome.state().as_str(), error, sentry_ref, next_attempt_at, finished_at)
            })
            .collect();
        let notes: Vec<(i64, String)> = finished
            .iter()
            .filter_map(|FinishedRow { row, outcome, .. }| {
                let note = match outcome {
                    OutboxOutcome::Failed { error } => {
                        format!("Sentry did not take a change ({}): {error}", kind_label(row))
                    }
                    OutboxOutcome::Skipped { why } => why.clone(),
                    _ => return None,
                };
                Some((row.ticket_id, note))
            })
            .collect();
        let mut tx = self.begin_apply_patiently().await?;
        on_conn!(tx.conn(), |conn| {
            // `values` names its columns column1, column2, … in both dialects.
            let mut update = sqlx::QueryBuilder::new(
                "update outbox set state = v.column2, claimed_until = null, last_error = v.column3,
                        sentry_ref = coalesce(v.column4, outbox.sentry_ref), next_attempt_at = v.column5,
                        finished_at = v.column6
                 from (",
            );
            update.push_values(&outcomes, |mut values, (id, state, error, sentry_ref, next, finished_at)| {
                values
                    .push_bind(*id)
                    .push_bind(*state)
                    .push_bind(*error)
                    .push_bind(*sentry_ref)
                    .push_bind(*next)
                    .push_bind(*finished_at);
            });
            update.push(") as v where outbox.id = v.column1");
            // Sized by the batch, so not kept prepared (as the worker's
            // outcomes, `super::deliveries`).
            update.build().persistent(false).execute(&mut *conn).await?;
            if !notes.is_empty() {
                let mut history =
                    sqlx::QueryBuilder::new("insert into ticket_event (ticket_id, at, source, actor, summary) ");
                history.push_values(&notes, |mut values, (ticket, note)| {
                    values
                        .push_bind(*ticket)
                        .push_bind(now)
                        .push_bind(ChangeSource::Sync.as_str())
                        .push_bind(None::<&str>)
                        .push_bind(note.as_str());
                });
                history.build().persistent(false).execute(&mut *conn).await?;
            }
            Ok::<_, sqlx::Error>(())
        })?;
        for FinishedRow { row, issue_status, .. } in finished {
            let Some(status) = issue_status else { continue };
            let sql = "update sentry_issue set status = $3, updated_at = $4
                       where installation_uuid = $1 and issue_id = $2 and (status_at is null or status_at <= $4)";
            on_conn!(tx.conn(), |conn| sqlx::query(sql)
                .bind(&row.installation_uuid)
                .bind(&row.sentry_issue_id)
                .bind(status)
                .bind(now)
                .execute(conn)
                .await
                .map(|_| ()))?;
        }
        tx.commit().await
    }

    /// Outbox rows of the organizations in `scope`, newest first.
    pub async fn outbox_items(&self, scope: &OrgScope, query: &OutboxQuery) -> Result<Vec<OutboxItem>, StoreError> {
        let rows = on_pool!(self, |pool| {
            let mut sql = sqlx::QueryBuilder::new(
                "select o.id, o.installation_uuid, i.org_slug, o.sentry_issue_id, s.short_id, tm.key as team_key,
                        t.number, o.ticket_id, o.kind, o.state, o.attempts, o.last_error, o.created_at,
                        o.next_attempt_at, o.finished_at
                 from outbox o
                 join installation i on i.uuid = o.installation_uuid
                 left join sentry_issue s on s.installation_uuid = o.installation_uuid and s.issue_id = o.sentry_issue_id
                 left join ticket t on t.id = o.ticket_id
                 left join team tm on tm.id = t.team_id
                 where true",
            );
            if let Some(state) = query.state {
                sql.push(" and o.state = ").push_bind(state.as_str());
            }
            if let Some(ticket) = query.ticket {
                sql.push(" and o.ticket_id = ").push_bind(ticket.0);
            }
            if let Some(before) = query.before {
                sql.push(" and o.id < ").push_bind(before);
            }
            push_org_scope!(sql, "i.org_id", "i.org_slug", scope);
            sql.push(" order by o.id desc limit ").push_bind(query.limit);
            sql.build_query_as::<ItemRow>().fetch_all(pool).await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// How many rows are in each state, in `scope`.
    pub async fn outbox_counts(&self, scope: &OrgScope) -> Result<Vec<(OutboxState, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, |pool| {
            let mut sql = sqlx::QueryBuilder::new(
                "select o.state, count(*) from outbox o join installation i on i.uuid = o.installation_uuid where true",
            );
            push_org_scope!(sql, "i.org_id", "i.org_slug", scope);
            sql.push(" group by o.state");
            sql.build_query_as::<(String, i64)>().fetch_all(pool).await
        })?;
        Ok(rows.into_iter().filter_map(|(state, count)| Some((state.parse().ok()?, count))).collect())
    }

    /// Sends a failed or skipped row again, if it is in `scope`: it goes
    /// now, and later rows of its issue wait for it again.
    pub async fn retry_outbox(&self, scope: &OrgScope, id: i64) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let changed = on_pool!(self, |pool| {
            let mut sql = sqlx::QueryBuilder::new(
                "update outbox set state = 'pending', attempts = 0, finished_at = null, next_attempt_at = ",
            );
            sql.push_bind(now_ms());
            sql.push(" where state in ('failed', 'skipped') and id = ").push_bind(id);
            sql.push(" and installation_uuid in (select i.uuid from installation i where true");
            push_org_scope!(sql, "i.org_id", "i.org_slug", scope);
            sql.push(")");
            sql.build().execute(pool).await.map(|d| d.rows_affected())
        })?;
        Ok(changed == 1)
    }

    /// The id Sentry gave the external-issue link issuebridge made for this
    /// ticket and issue, if it made one.
    pub async fn external_link_ref(
        &self,
        installation: &str,
        issue: &str,
        ticket: i64,
    ) -> Result<Option<String>, StoreError> {
        let sql = "select sentry_ref from outbox
                   where installation_uuid = $1 and sentry_issue_id = $2 and ticket_id = $3
                     and kind = 'link_external' and state = 'sent' and sentry_ref is not null
                   order by id desc limit 1";
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, String>(sql)
            .bind(installation)
            .bind(issue)
            .bind(ticket)
            .fetch_optional(pool)
            .await)?)
    }

    /// A ticket's history, oldest first: how it was opened (from the
    /// ticket itself), then every change recorded since.
    pub async fn ticket_history(&self, ticket: TicketId) -> Result<Vec<TicketEventView>, StoreError> {
        let opened_sql = "select created_at, source from ticket where id = $1";
        let opened: Option<(i64, String)> =
            on_pool!(self, |pool| sqlx::query_as(opened_sql).bind(ticket.0).fetch_optional(pool).await)?;
        let sql = "select at, source, actor, summary from ticket_event where ticket_id = $1 order by id";
        let rows: Vec<(i64, String, Option<String>, String)> =
            on_pool!(self, |pool| sqlx::query_as(sql).bind(ticket.0).fetch_all(pool).await)?;
        let opened = opened.map(|(at_ms, source)| {
            let (source, summary) = match source.as_str() {
                "issue" => (ChangeSource::Sentry, "opened for a new Sentry issue"),
                "issue_link" => (ChangeSource::Sentry, "created from Sentry's issue sidebar"),
                "event_alert" | "metric_alert" => (ChangeSource::Rule, "opened by a Sentry alert"),
                _ => (ChangeSource::Person, "created"),
            };
            TicketEventView { at_ms, source, actor: None, summary: summary.to_owned() }
        });
        Ok(opened
            .into_iter()
            .chain(rows.into_iter().map(|(at_ms, source, actor, summary)| TicketEventView {
                at_ms,
                source: ChangeSource::parse(&source),
                actor,
                summary,
            }))
            .collect())
    }

    /// Rows not finished yet, in every installation (the bench's and the
    /// tests' "has the outbox drained?").
    pub async fn outbox_pending(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, i64>("select count(*) from outbox where state = 'pending'")
            .fetch_one(pool)
            .await)?)
    }
}

fn kind_label(row: &OutboxRow) -> &'static str {
    row.kind.parse::<OutboxKind>().map_or("change", OutboxKind::label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Backend, DatabaseUrl};

    /// SQLite walks `outbox_due` in due order and stops at the claim's
    /// size. Fails if it plans the claim as it did unguided: every pending
    /// row found through `outbox_state`, then sorted, for each claim.
    #[tokio::test]
    async fn sqlites_claim_walks_the_due_index_and_sorts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&DatabaseUrl::sqlite_file(&dir.path().join("ib.db"))).await.unwrap();
        store.migrate().await.unwrap();
        let Store::Sqlite(pool) = &store else { unreachable!("a SQLite URL") };
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("explain query plan {}", claim_outbox_sql(Backend::Sqlite)))
                .bind(0_i64)
                .bind(0_i64)
                .bind(32_i64)
                .fetch_all(pool)
                .await
                .unwrap();
        let steps: Vec<&str> = plan.iter().map(|(.., step)| step.as_str()).collect();
        assert!(steps.iter().any(|step| step.starts_with("SEARCH o USING INDEX outbox_due")), "{steps:?}");
        assert!(!steps.iter().any(|step| step.contains("TEMP B-TREE")), "nothing is sorted: {steps:?}");
    }
}
