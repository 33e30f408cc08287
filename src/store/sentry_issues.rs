//! Sentry issues as the webhooks describe them: status, assignee, events.

use std::sync::LazyLock;

use sqlx::{FromRow, Row};

use super::apply_tx::{unless_newer, Tx};
use super::conn::on_conn;
use super::tickets::{TicketState, TicketStateRow};
use super::ApplyTx;
use super::StoreError;
#[cfg(feature = "testing")]
use super::{on_pool, Store};
use crate::domain::ticket_rules::ChangeOrder;
use crate::domain::time::now_ms;

#[cfg(feature = "testing")]
impl Store {
    /// A Sentry issue as the sync recorded it.
    pub async fn sentry_issue(&self, installation: &str, issue: &str) -> Result<Option<SentryIssueRecord>, StoreError> {
        let sql = "select issue_id, short_id, title, status, assignee, event_count
                   from sentry_issue where installation_uuid = $1 and issue_id = $2";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, SentryIssueRecord>(sql)
            .bind(installation)
            .bind(issue)
            .fetch_optional(pool)
            .await)?)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SentryIssueRecord {
    pub issue_id: String,
    pub short_id: Option<String>,
    pub title: Option<String>,
    pub status: Option<String>,
    pub assignee: Option<String>,
    pub event_count: i64,
}

impl ApplyTx {
    /// Records a Sentry issue, or fills in what the stored record lacks, in
    /// one statement with what else the delivery changes on it: its status
    /// unless a newer change set it ([`ChangeOrder`]), and one event.
    /// Returns the issue's status as it stands afterwards.
    ///
    /// One statement rather than three: the worker spends most of its time
    /// on the round trip each statement costs, not on the writes.
    pub async fn record_issue(
        &mut self,
        facts: &IssueFacts<'_>,
        status: Option<StatusChange<'_>>,
        event_at_ms: Option<i64>,
    ) -> Result<RecordedIssue, StoreError> {
        let row = on_conn!(self.conn(), |conn| bind_issue!(
            sqlx::query_as::<_, RecordRow>(&RECORD_ISSUE),
            facts,
            status,
            event_at_ms
        )
        .fetch_one(conn)
        .await)?;
        Ok(recorded(row, status))
    }

    /// Records a new issue ([`ApplyTx::record_issue`]) and claims the
    /// effect of opening its ticket unless it is linked already
    /// ([`ApplyTx::claim_effect_unless_linked`]): true if this delivery is
    /// the one to open it.
    ///
    /// On SQLite both statements go as one query, one round trip to the
    /// connection's thread instead of two: that round trip costs the worker
    /// several times what SQLite spends on either statement (BENCHMARKS.md,
    /// "Where the time goes"). Neither needs the other's answer. PostgreSQL
    /// takes one statement at a time (and its limit is its own CPU).
    pub async fn record_new_issue_claiming_ticket(
        &mut self,
        facts: &IssueFacts<'_>,
        status: Option<StatusChange<'_>>,
        key: &str,
        delivery: i64,
    ) -> Result<(RecordedIssue, bool), StoreError> {
        if let Tx::Sqlite(tx, ..) = self.tx() {
            let rows = bind_issue!(sqlx::query(&RECORD_ISSUE_AND_CLAIM_TICKET), facts, status, None::<i64>)
                .bind(key)
                .bind(delivery)
                .fetch_all(&mut **tx)
                .await?;
            let (record, claim) = record_row_and_rest(&rows)?;
            return Ok((recorded(record, status), !claim.is_empty()));
        }
        let recorded = self.record_issue(facts, status, None).await?;
        let claimed = self.claim_effect_unless_linked(facts.installation, key, delivery, facts.issue_id).await?;
        Ok((recorded, claimed))
    }

    /// Records a status change of an issue ([`ApplyTx::record_issue`]) and
    /// reads the ticket linked to it ([`ApplyTx::linked_ticket`]), in one
    /// round trip on SQLite (as [`ApplyTx::record_new_issue_claiming_ticket`]).
    pub async fn record_issue_reading_linked_ticket(
        &mut self,
        facts: &IssueFacts<'_>,
        status: Option<StatusChange<'_>>,
    ) -> Result<(RecordedIssue, Option<TicketState>), StoreError> {
        if let Tx::Sqlite(tx, ..) = self.tx() {
            let rows = bind_issue!(sqlx::query(&RECORD_ISSUE_AND_READ_LINKED_TICKET), facts, status, None::<i64>)
                .fetch_all(&mut **tx)
                .await?;
            let (record, linked) = record_row_and_rest(&rows)?;
            let ticket = match linked.first() {
                Some(row) => Some(TicketStateRow::from_row(row)?.try_into()?),
                None => None,
            };
            return Ok((recorded(record, status), ticket));
        }
        let recorded = self.record_issue(facts, status, None).await?;
        let ticket = self.linked_ticket(facts.installation, facts.issue_id).await?;
        Ok((recorded, ticket))
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
        let changed = on_conn!(self.conn(), |conn| sqlx::query(&sql)
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

    /// Counts one event on the ticket linked to the issue, if there is
    /// one ([`ApplyTx::record_issue`] counts it on the issue), and returns
    /// that ticket: the lookup and the count in one statement.
    pub async fn count_event_on_linked_ticket(
        &mut self,
        installation: &str,
        issue: &str,
        at_ms: i64,
    ) -> Result<Option<TicketState>, StoreError> {
        // The team's key as `linked_ticket` reads it, which joins the team.
        let sql = "update ticket set occurrences = occurrences + 1, updated_at = $4,
                          last_event_at = case when last_event_at > $3 then last_event_at else $3 end
                   where id = (select ticket_id from ticket_link where installation_uuid = $1 and sentry_issue_id = $2)
                     and team_id is not null
                   returning id, status, (select key from team where team.id = ticket.team_id) as team_key, number";
        let row = on_conn!(self.conn(), |conn| sqlx::query_as::<_, TicketStateRow>(sql)
            .bind(installation)
            .bind(issue)
            .bind(at_ms)
            .bind(now_ms())
            .fetch_optional(conn)
            .await)?;
        row.map(TryInto::try_into).transpose()
    }
}

/// The worker's texts, made once: they run for nearly every delivery.
static RECORD_ISSUE: LazyLock<String> = LazyLock::new(record_issue_sql);
/// SQLite only ([`ApplyTx::record_new_issue_claiming_ticket`]): the claim
/// takes the record's installation ($1), time ($7) and issue ($2), and
/// returns a row if it was written.
static RECORD_ISSUE_AND_CLAIM_TICKET: LazyLock<String> = LazyLock::new(|| {
    let claim = super::effects::claim_unless_linked_sql(["$1", "$14", "$15", "$7", "$2"]);
    format!("{}; {claim} returning 1", *RECORD_ISSUE)
});
/// SQLite only ([`ApplyTx::record_issue_reading_linked_ticket`]).
static RECORD_ISSUE_AND_READ_LINKED_TICKET: LazyLock<String> =
    LazyLock::new(|| format!("{}; {}", *RECORD_ISSUE, *super::tickets::LINKED_TICKET));

/// The statement that records an issue ([`ApplyTx::record_issue`]), with
/// parameters $1 to $13 as [`bind_issue`] binds them. The delivery's status
/// ($8 to $11) is set only if it carries one, and only if nothing newer
/// set the stored one.
fn record_issue_sql() -> String {
    let newer = format!("$10 is not null and {}", unless_newer("sentry_issue.status", 10, 11));
    format!(
        "insert into sentry_issue (installation_uuid, issue_id, short_id, title, project_slug, web_url, updated_at,
                                   status, substatus, status_at, status_delivery, event_count, last_event_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         on conflict (installation_uuid, issue_id) do update set
             short_id = coalesce(excluded.short_id, sentry_issue.short_id),
             title = coalesce(excluded.title, sentry_issue.title),
             project_slug = coalesce(excluded.project_slug, sentry_issue.project_slug),
             web_url = coalesce(excluded.web_url, sentry_issue.web_url),
             updated_at = excluded.updated_at,
             status = case when {newer} then excluded.status else sentry_issue.status end,
             substatus = case when {newer} then excluded.substatus else sentry_issue.substatus end,
             status_at = case when {newer} then excluded.status_at else sentry_issue.status_at end,
             status_delivery = case when {newer} then excluded.status_delivery else sentry_issue.status_delivery end,
             event_count = sentry_issue.event_count + excluded.event_count,
             last_event_at = case when excluded.last_event_at is null then sentry_issue.last_event_at
                                  when sentry_issue.last_event_at > excluded.last_event_at
                                       then sentry_issue.last_event_at
                                  else excluded.last_event_at end
         returning status, status_at, status_delivery"
    )
}

/// Binds [`record_issue_sql`]'s parameters to a query on either backend.
macro_rules! bind_issue {
    ($query:expr, $facts:expr, $status:expr, $event_at_ms:expr) => {
        $query
            .bind($facts.installation)
            .bind($facts.issue_id)
            .bind($facts.short_id)
            .bind($facts.title)
            .bind($facts.project_slug)
            .bind($facts.web_url)
            .bind(now_ms())
            .bind($status.map(|s| s.status))
            .bind($status.and_then(|s| s.substatus))
            .bind($status.map(|s| s.order.sent_at_ms))
            .bind($status.map(|s| s.order.delivery_id))
            .bind(i64::from($event_at_ms.is_some()))
            .bind($event_at_ms)
    };
}
use bind_issue;

/// What the record statement returns: the issue's status, and the time
/// and delivery of the change that set it.
type RecordRow = (Option<String>, Option<i64>, Option<i64>);

/// The recorded issue's row (the first of a query that starts with
/// [`record_issue_sql`]) and the rows of the statements after it.
fn record_row_and_rest(
    rows: &[sqlx::sqlite::SqliteRow],
) -> Result<(RecordRow, &[sqlx::sqlite::SqliteRow]), StoreError> {
    let (first, rest) =
        rows.split_first().ok_or_else(|| StoreError::Corrupt("recording an issue returned no row".into()))?;
    Ok(((first.try_get(0)?, first.try_get(1)?, first.try_get(2)?), rest))
}

/// What the record statement answered, as [`RecordedIssue`].
fn recorded(row: RecordRow, status: Option<StatusChange<'_>>) -> RecordedIssue {
    let (stored, at, delivery) = row;
    let status_now = match (stored, at) {
        (Some(status), Some(at)) => {
            Some((status, ChangeOrder { sent_at_ms: at, delivery_id: delivery.unwrap_or_default() }))
        }
        _ => None,
    };
    // Set now if it stands as this change left it.
    let status_set = status.is_some_and(|change| status_now.as_ref().is_some_and(|(_, order)| *order == change.order));
    RecordedIssue { status: status_now, status_set }
}

/// A status a delivery gives its Sentry issue, and when it was sent.
#[derive(Debug, Clone, Copy)]
pub struct StatusChange<'a> {
    pub status: &'a str,
    pub substatus: Option<&'a str>,
    pub order: ChangeOrder,
}

/// A Sentry issue as [`ApplyTx::record_issue`] left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedIssue {
    /// Its status and the change that set it, if it has one.
    pub status: Option<(String, ChangeOrder)>,
    /// Whether the delivery's own status change was applied (not beaten by
    /// a newer one).
    pub status_set: bool,
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
