//! Sentry issues as the webhooks describe them: status, assignee, events.

use super::apply_tx::unless_newer;
use super::conn::on_conn;
use super::ApplyTx;
use super::StoreError;
#[cfg(feature = "testing")]
use super::{on_pool, Store};
use crate::domain::ids::TicketId;
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
        on_conn!(self.conn(), |conn| sqlx::query(sql)
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
        let changed = on_conn!(self.conn(), |conn| sqlx::query(&sql)
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

    /// A Sentry issue's recorded status and the change that set it.
    pub async fn issue_status(
        &mut self,
        installation: &str,
        issue: &str,
    ) -> Result<Option<(String, ChangeOrder)>, StoreError> {
        let sql = "select status, status_at, status_delivery from sentry_issue
                   where installation_uuid = $1 and issue_id = $2 and status is not null and status_at is not null";
        let row = on_conn!(self.conn(), |conn| sqlx::query_as::<_, (String, i64, Option<i64>)>(sql)
            .bind(installation)
            .bind(issue)
            .fetch_optional(conn)
            .await)?;
        Ok(row.map(|(status, at, delivery)| {
            (status, ChangeOrder { sent_at_ms: at, delivery_id: delivery.unwrap_or_default() })
        }))
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
        on_conn!(self.conn(), |conn| sqlx::query(on_issue)
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
        on_conn!(self.conn(), |conn| sqlx::query(on_ticket)
            .bind(ticket.0)
            .bind(at_ms)
            .bind(now)
            .execute(conn)
            .await
            .map(|_| ()))?;
        Ok(())
    }
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
