//! Tickets and their links to Sentry issues.

use super::access::push_org_scope;
use super::apply_tx::{unless_newer, unnumbered_key};
use super::conn::{on_conn, Conn};
use super::teams::{TeamChoice, TeamError};
use super::{on_pool, ApplyTx, Store, StoreError};
use crate::config::Backend;
use crate::domain::access::OrgScope;
use crate::domain::ids::{InstallationUuid, SentryIssueId, TicketId};
use crate::domain::team::{TeamKey, TicketKey};
use crate::domain::ticket::{
    CommentView, LinkedIssueView, SentryIssueChoice, TicketDetail, TicketStatus, TicketSummary,
};
use crate::domain::ticket_rules::ChangeOrder;
use crate::domain::time::now_ms;

/// The ticket a Sentry issue ($2) is linked to, in an installation ($1),
/// as a [`TicketStateRow`]. Made once: the worker reads it for many
/// deliveries.
pub(crate) static LINKED_TICKET: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "select {TICKET_STATE_COLUMNS} from ticket_link l join ticket t on t.id = l.ticket_id {TICKET_STATE_JOIN}
         where l.installation_uuid = $1 and l.sentry_issue_id = $2"
    )
});

/// The ticket a Sentry issue is linked to, in an installation.
async fn linked_ticket(conn: Conn<'_>, installation: &str, issue: &str) -> Result<Option<TicketState>, StoreError> {
    let row = on_conn!(conn, |c| sqlx::query_as::<_, TicketStateRow>(&LINKED_TICKET)
        .bind(installation)
        .bind(issue)
        .fetch_optional(c)
        .await)?;
    row.map(TryInto::try_into).transpose()
}

/// What linking an issue that is linked already does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfLinked {
    /// A unique violation: the caller asked for a link that cannot be.
    Refuse,
    /// Nothing: the worker may open a ticket for an issue twice in a replay.
    KeepTheFirst,
}

/// A link as it is written; what is `None` comes from the recorded issue.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LinkFacts<'a> {
    pub installation: &'a str,
    pub issue_id: &'a str,
    pub short_id: Option<&'a str>,
    pub title: Option<&'a str>,
    pub web_url: Option<&'a str>,
    pub project_slug: Option<&'a str>,
}

/// The one insert of a link, for the pool and the worker alike. What the
/// link leaves out about the issue (short id, title, URL, project) comes
/// from the recorded Sentry issue, if there is one.
pub(crate) async fn insert_link(
    conn: Conn<'_>,
    ticket: TicketId,
    link: &LinkFacts<'_>,
    if_linked: IfLinked,
) -> Result<(), StoreError> {
    // `where true`: SQLite needs it to read `on conflict` after a join.
    let mut sql = String::from(
        "insert into ticket_link (installation_uuid, sentry_issue_id, ticket_id, short_id, title, web_url,
                                  project_slug, created_at)
         select $1, $2, $3, coalesce($4, s.short_id), coalesce($5, s.title), coalesce($6, s.web_url),
                coalesce($7, s.project_slug), $8
         from (select 1 as one) as link
         left join sentry_issue s on s.installation_uuid = $1 and s.issue_id = $2
         where true",
    );
    if if_linked == IfLinked::KeepTheFirst {
        sql.push_str(" on conflict (installation_uuid, sentry_issue_id) do nothing");
    }
    on_conn!(conn, |c| sqlx::query(&sql)
        .bind(link.installation)
        .bind(link.issue_id)
        .bind(ticket.0)
        .bind(link.short_id)
        .bind(link.title)
        .bind(link.web_url)
        .bind(link.project_slug)
        .bind(now_ms())
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

impl Store {
    /// A ticket made by hand (the CLI, tests), in the installation's
    /// default team.
    pub async fn create_ticket(&self, new: &NewTicket) -> Result<TicketState, StoreError> {
        let mut tx = self.begin_apply().await?;
        let ticket = TicketToOpen {
            installation: new.installation.as_str(),
            team: TeamChoice::Default,
            title: &new.title,
            description: &new.description,
            status: new.status,
            status_order: None,
            assignee: new.assignee_email.as_deref(),
            source: "console",
            metric_alert_id: None,
            severity: None,
            issue: None,
        };
        let mut opened = tx.open_ticket(&ticket).await.map_err(|e| match e {
            TeamError::Store(e) => e,
            other => StoreError::Corrupt(other.to_string()),
        })?;
        opened.take_number(&tx.commit_numbering().await?);
        Ok(opened)
    }

    /// Links a Sentry issue to a ticket. A Sentry issue belongs to one ticket
    /// per installation: linking it again is refused as a unique violation.
    pub async fn link_issue(&self, ticket: TicketId, link: &NewIssueLink) -> Result<(), StoreError> {
        let facts = LinkFacts {
            installation: link.installation.as_str(),
            issue_id: link.issue_id.as_str(),
            short_id: link.short_id.as_deref(),
            title: link.title.as_deref(),
            web_url: link.web_url.as_deref(),
            project_slug: link.project_slug.as_deref(),
        };
        insert_link(self.acquire().await?.conn(), ticket, &facts, IfLinked::Refuse).await
    }

    /// The board: most recently changed first, of the organizations in
    /// `scope`.
    pub async fn list_tickets(&self, scope: &OrgScope, limit: i64) -> Result<Vec<TicketSummary>, StoreError> {
        let rows = on_pool!(self, |pool| {
            let mut sql = sqlx::QueryBuilder::new(
                "select t.id, tm.key as team_key, t.number, t.title, t.status, t.assignee_email, t.installation_uuid, i.org_slug,
                        t.updated_at,
                        t.occurrences, t.severity,
                        (select l.short_id from ticket_link l where l.ticket_id = t.id
                         order by l.created_at, l.sentry_issue_id limit 1) as sentry_short_id,
                        (select count(*) from ticket_link l where l.ticket_id = t.id) as linked_issues
                 from ticket t
                 join installation i on i.uuid = t.installation_uuid
                 join team tm on tm.id = t.team_id
                 where 1 = 1",
            );
            push_org_scope!(sql, "i.org_id", "i.org_slug", scope);
            sql.push(" order by t.updated_at desc, t.id desc limit ").push_bind(limit);
            sql.build_query_as::<TicketRow>().fetch_all(pool).await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}

#[cfg(feature = "testing")]
impl Store {
    /// One ticket as the sync left it.
    pub async fn ticket_record(&self, ticket: TicketId) -> Result<Option<TicketRecord>, StoreError> {
        let sql = "select id, installation_uuid, title, description, status, assignee_email, source, metric_alert_id,
                          severity, occurrences
                   from ticket where id = $1";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, TicketRecord>(sql).bind(ticket.0).fetch_optional(pool).await)?)
    }

    /// The ticket a Sentry issue is linked to, in an installation.
    pub async fn ticket_for_issue(&self, installation: &str, issue: &str) -> Result<Option<TicketId>, StoreError> {
        Ok(linked_ticket(self.acquire().await?.conn(), installation, issue).await?.map(|ticket| ticket.id))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketRecord {
    pub id: i64,
    pub installation_uuid: String,
    pub title: String,
    pub description: String,
    pub status: String,
    pub assignee_email: Option<String>,
    pub source: String,
    pub metric_alert_id: Option<String>,
    pub severity: Option<String>,
    pub occurrences: i64,
}

#[derive(Debug, Clone)]
pub struct NewTicket {
    pub installation: InstallationUuid,
    pub title: String,
    pub description: String,
    pub status: TicketStatus,
    pub assignee_email: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewIssueLink {
    pub installation: InstallationUuid,
    pub issue_id: SentryIssueId,
    pub short_id: Option<String>,
    pub title: Option<String>,
    pub web_url: Option<String>,
    pub project_slug: Option<String>,
}

#[derive(sqlx::FromRow)]
struct TicketRow {
    id: i64,
    team_key: String,
    number: i64,
    title: String,
    status: String,
    assignee_email: Option<String>,
    installation_uuid: String,
    org_slug: String,
    updated_at: i64,
    sentry_short_id: Option<String>,
    linked_issues: i64,
    occurrences: i64,
    severity: Option<String>,
}

impl TryFrom<TicketRow> for TicketSummary {
    type Error = StoreError;
    fn try_from(row: TicketRow) -> Result<Self, StoreError> {
        let status = row.status.parse().map_err(|e| StoreError::Corrupt(format!("ticket {}: {e}", row.id)))?;
        Ok(Self {
            id: TicketId(row.id),
            key: ticket_key(row.id, &row.team_key, row.number)?,
            title: row.title,
            status,
            assignee: row.assignee_email,
            installation_uuid: row.installation_uuid,
            org_slug: row.org_slug,
            sentry_short_id: row.sentry_short_id,
            linked_issues: row.linked_issues,
            updated_at_ms: row.updated_at,
            occurrences: row.occurrences,
            severity: row.severity,
        })
    }
}

impl ApplyTx {
    /// The ticket a Sentry issue is linked to.
    pub async fn linked_ticket(&mut self, installation: &str, issue: &str) -> Result<Option<TicketState>, StoreError> {
        linked_ticket(self.conn(), installation, issue).await
    }

    /// The ticket following a metric alert.
    pub async fn metric_alert_ticket(
        &mut self,
        installation: &str,
        alert: &str,
    ) -> Result<Option<(TicketState, Option<String>)>, StoreError> {
        let sql = format!(
            "select {TICKET_STATE_COLUMNS}, t.severity from ticket t {TICKET_STATE_JOIN}
             where t.installation_uuid = $1 and t.metric_alert_id = $2"
        );
        let row = on_conn!(self.conn(), |conn| sqlx::query_as::<_, MetricTicketRow>(&sql)
            .bind(installation)
            .bind(alert)
            .fetch_optional(conn)
            .await)?;
        row.map(|row| Ok((row.ticket.try_into()?, row.severity))).transpose()
    }

    /// Opens a ticket in its team and links it to its Sentry issue, if it
    /// has one. The ticket takes its team's next number when the
    /// transaction commits; until then its key is
    /// [`super::apply_tx::unnumbered_key`].
    pub async fn open_ticket(&mut self, ticket: &TicketToOpen<'_>) -> Result<TicketState, TeamError> {
        let (team_id, team) = self.team_for_ticket(ticket.installation, &ticket.team).await?;
        // A ticket issuebridge opened by itself shows in Sentry's sidebar
        // through an external-issue link. One made from the sidebar's
        // issue-link form needs none: Sentry records that link itself.
        let shows_in_sidebar = ticket.issue.is_some() && ticket.source != "issue_link";
        let sql = match (shows_in_sidebar, self.backend()) {
            (false, _) => OPEN_TICKET.to_owned(),
            (true, Backend::Sqlite) => format!("{OPEN_TICKET}; {SQLITE_THEN_QUEUE_AND_LINK}"),
            (true, Backend::Postgres) => format!("with t as ({OPEN_TICKET}) {POSTGRES_THEN_LINK_AND_QUEUE}"),
        };
        let ids = on_conn!(self.conn(), |conn| sqlx::query_scalar::<_, i64>(&sql)
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
            .bind(team_id)
            .bind(ticket.status_order.map(|o| o.sent_at_ms))
            .bind(ticket.status_order.map(|o| o.delivery_id))
            // Every statement of the text runs only if every row is read.
            .fetch_all(conn)
            .await)
        .map_err(StoreError::from)?;
        let id = TicketId(*ids.first().ok_or_else(|| StoreError::Corrupt("a ticket insert returned no id".into()))?);
        let key = self.awaits_number(id, team_id, team);
        if let (Some(issue), false) = (ticket.issue, shows_in_sidebar) {
            let link = LinkFacts { installation: ticket.installation, issue_id: issue, ..Default::default() };
            insert_link(self.conn(), id, &link, IfLinked::KeepTheFirst).await?;
        }
        // Its history starts from the ticket's own row (`Store::ticket_history`),
        // not a line written here: the worker opens tickets by the thousand.
        Ok(TicketState { id, key, status: ticket.status })
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
        let changed = on_conn!(self.conn(), |conn| sqlx::query(&sql)
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

    /// Assigns the ticket, unless a newer assignment (here or in Sentry)
    /// was applied already; true if the assignee changed.
    pub async fn set_ticket_assignee(&mut self, ticket: TicketId, assignee: &str, at: i64) -> Result<bool, StoreError> {
        let sql = "update ticket set assignee_email = $2, updated_at = $3, assignee_at = $4
                   where id = $1 and (assignee_email is null or assignee_email <> $2)
                     and (assignee_at is null or assignee_at <= $4)";
        let changed = on_conn!(self.conn(), |conn| sqlx::query(sql)
            .bind(ticket.0)
            .bind(assignee)
            .bind(now_ms())
            .bind(at)
            .execute(conn)
            .await
            .map(|d| d.rows_affected()))?;
        Ok(changed == 1)
    }
}

impl TicketState {
    /// The key the ticket took if it was numbered at its transaction's end.
    pub fn take_number(&mut self, numbered: &[super::apply_tx::Numbered]) {
        if let Some(n) = numbered.iter().find(|n| n.ticket == self.id) {
            self.key = n.key.clone();
        }
    }
}

/// A ticket as the handlers need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketState {
    pub id: TicketId,
    /// What people call it (`ENG-12`).
    pub key: TicketKey,
    pub status: TicketStatus,
}

/// The columns of a [`TicketStateRow`], from `ticket t` joined by
/// [`TICKET_STATE_JOIN`].
pub(crate) const TICKET_STATE_COLUMNS: &str = "t.id, t.status, tm.key as team_key, t.number";
pub(crate) const TICKET_STATE_JOIN: &str = "join team tm on tm.id = t.team_id";

#[derive(sqlx::FromRow)]
pub(crate) struct TicketStateRow {
    id: i64,
    status: String,
    team_key: String,
    /// None for a ticket opened in the running transaction.
    number: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct MetricTicketRow {
    #[sqlx(flatten)]
    ticket: TicketStateRow,
    severity: Option<String>,
}

impl TryFrom<TicketStateRow> for TicketState {
    type Error = StoreError;
    fn try_from(row: TicketStateRow) -> Result<Self, StoreError> {
        let status = row.status.parse().map_err(|e| StoreError::Corrupt(format!("ticket {}: {e}", row.id)))?;
        let key = match row.number {
            Some(number) => ticket_key(row.id, &row.team_key, number)?,
            None => unnumbered_key(ticket_team(row.id, &row.team_key)?, TicketId(row.id)),
        };
        Ok(TicketState { id: TicketId(row.id), key, status })
    }
}

/// A stored ticket's identifier.
pub(crate) fn ticket_key(id: i64, team_key: &str, number: i64) -> Result<TicketKey, StoreError> {
    Ok(TicketKey { team: ticket_team(id, team_key)?, number })
}

/// A stored ticket's team key.
fn ticket_team(id: i64, team_key: &str) -> Result<TeamKey, StoreError> {
    TeamKey::parse(team_key).map_err(|e| StoreError::Corrupt(format!("ticket {id}: {e}")))
}

/// A ticket the worker opens.
#[derive(Debug, Clone)]
pub struct TicketToOpen<'a> {
    pub installation: &'a str,
    pub team: TeamChoice,
    pub title: &'a str,
    pub description: &'a str,
    pub status: TicketStatus,
    /// The change its status comes from, if it starts where a Sentry
    /// issue's status stands: a change older than that one cannot move it.
    pub status_order: Option<ChangeOrder>,
    pub assignee: Option<&'a str>,
    /// `issue`, `event_alert` or `metric_alert`.
    pub source: &'static str,
    pub metric_alert_id: Option<&'a str>,
    pub severity: Option<&'a str>,
    /// The Sentry issue the ticket is opened for, and linked to.
    pub issue: Option<&'a str>,
}

/// Sentry issues with the ticket each is linked to; a `where` follows.
const SENTRY_ISSUE_CHOICES: &str = "select s.issue_id, s.short_id, s.title, s.project_slug, s.web_url,
                                           t.identifier as ticket
                                    from sentry_issue s
                                    left join ticket_link l on l.installation_uuid = s.installation_uuid
                                                           and l.sentry_issue_id = s.issue_id
                                    left join ticket t on t.id = l.ticket_id";

#[derive(sqlx::FromRow)]
struct DetailRow {
    id: i64,
    installation_uuid: String,
    org_slug: String,
    team_key: String,
    number: i64,
    team_name: String,
    title: String,
    description: String,
    status: String,
    assignee_email: Option<String>,
    source: String,
    occurrences: i64,
    created_at: i64,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    sentry_issue_id: String,
    short_id: Option<String>,
    title: Option<String>,
    web_url: Option<String>,
    project_slug: Option<String>,
    status: Option<String>,
    event_count: Option<i64>,
    last_event_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct CommentRow {
    id: i64,
    author: Option<String>,
    body: String,
    origin: String,
    created_at: i64,
    updated_at: i64,
    deleted_at: Option<i64>,
}

impl Store {
    /// The tickets with this identifier in the organizations of `scope`
    /// (identifiers are unique per installation), of one installation if
    /// given, each in full: its linked Sentry issues and its comments.
    pub async fn ticket_details(
        &self,
        scope: &OrgScope,
        key: &TicketKey,
        installation: Option<&str>,
    ) -> Result<Vec<TicketDetail>, StoreError> {
        let rows = on_pool!(self, |pool| {
            let mut sql = sqlx::QueryBuilder::new(
                "select t.id, t.installation_uuid, i.org_slug, tm.key as team_key, t.number, tm.name as team_name,
                        t.title, t.description, t.status, t.assignee_email, t.source, t.occurrences,
                        t.created_at, t.updated_at
                 from ticket t
                 join installation i on i.uuid = t.installation_uuid
                 join team tm on tm.id = t.team_id
                 where (t.identifier = ",
            );
            sql.push_bind(key.to_string());
            // A former identifier (before the ticket moved team) finds it too.
            sql.push(" or t.id in (select a.ticket_id from ticket_alias a where a.identifier = ")
                .push_bind(key.to_string())
                .push(" and a.installation_uuid = t.installation_uuid))");
            if let Some(installation) = installation {
                sql.push(" and t.installation_uuid = ").push_bind(installation.to_owned());
            }
            push_org_scope!(sql, "i.org_id", "i.org_slug", scope);
            sql.push(" order by t.created_at desc limit 20");
            sql.build_query_as::<DetailRow>().fetch_all(pool).await
        })?;
        let mut details = Vec::with_capacity(rows.len());
        for row in rows {
            let links_sql = "select l.sentry_issue_id, coalesce(l.short_id, s.short_id) as short_id,
                                    coalesce(l.title, s.title) as title, coalesce(l.web_url, s.web_url) as web_url,
                                    coalesce(l.project_slug, s.project_slug) as project_slug, s.status, s.event_count,
                                    s.last_event_at
                             from ticket_link l
                             left join sentry_issue s on s.installation_uuid = l.installation_uuid
                                                     and s.issue_id = l.sentry_issue_id
                             where l.ticket_id = $1 order by l.created_at, l.sentry_issue_id";
            let links =
                on_pool!(self, |pool| sqlx::query_as::<_, LinkRow>(links_sql).bind(row.id).fetch_all(pool).await)?;
            let comments_sql = "select id, author, body, origin, created_at, updated_at, deleted_at from comment
                                where ticket_id = $1 order by created_at, id";
            let comments = on_pool!(self, |pool| sqlx::query_as::<_, CommentRow>(comments_sql)
                .bind(row.id)
                .fetch_all(pool)
                .await)?;
            let status = row.status.parse().map_err(|e| StoreError::Corrupt(format!("ticket {}: {e}", row.id)))?;
            let history = self.ticket_history(TicketId(row.id)).await?;
            let outbox_query =
                super::outbox::OutboxQuery { ticket: Some(TicketId(row.id)), limit: 20, ..Default::default() };
            let outbox = self.outbox_items(scope, &outbox_query).await?;
            let teams = self.teams(&row.installation_uuid).await?;
            details.push(TicketDetail {
                id: row.id,
                description_html: crate::markdown::render(&row.description),
                history,
                outbox,
                teams,
                key: ticket_key(row.id, &row.team_key, row.number)?,
                installation_uuid: row.installation_uuid,
                org_slug: row.org_slug,
                team_name: row.team_name,
                title: row.title,
                description: row.description,
                status,
                assignee: row.assignee_email,
                source: row.source,
                occurrences: row.occurrences,
                created_at_ms: row.created_at,
                updated_at_ms: row.updated_at,
                links: links
                    .into_iter()
                    .map(|l| LinkedIssueView {
                        issue_id: l.sentry_issue_id,
                        short_id: l.short_id,
                        title: l.title,
                        web_url: l.web_url,
                        project_slug: l.project_slug,
                        status: l.status,
                        event_count: l.event_count.unwrap_or(0),
                        last_seen_ms: l.last_event_at,
                    })
                    .collect(),
                comments: comments
                    .into_iter()
                    .map(|c| CommentView {
                        id: c.id,
                        // Only for comments written here: a mirrored one's
                        // creation time is Sentry's and its `updated_at` when
                        // it arrived, so the two cannot tell an edit.
                        edited: c.origin == "console" && c.updated_at > c.created_at,
                        mine: false,
                        author: c.author,
                        body: if c.deleted_at.is_some() { String::new() } else { c.body },
                        origin: c.origin,
                        created_at_ms: c.created_at,
                        deleted: c.deleted_at.is_some(),
                    })
                    .collect(),
            });
        }
        Ok(details)
    }

    /// The Sentry issues an installation told us about, most recently
    /// changed first, with the ticket each is linked to.
    pub async fn recent_sentry_issues(
        &self,
        installation: &str,
        limit: i64,
    ) -> Result<Vec<SentryIssueChoice>, StoreError> {
        let sql = format!(
            "{SENTRY_ISSUE_CHOICES} where s.installation_uuid = $1 order by s.updated_at desc, s.issue_id desc limit $2"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, SentryIssueChoice>(&sql)
            .bind(installation)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// One Sentry issue an installation told us about, as
    /// [`Store::recent_sentry_issues`] lists it.
    pub async fn sentry_issue_choice(
        &self,
        installation: &str,
        issue: &str,
    ) -> Result<Option<SentryIssueChoice>, StoreError> {
        let sql = format!("{SENTRY_ISSUE_CHOICES} where s.installation_uuid = $1 and s.issue_id = $2");
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, SentryIssueChoice>(&sql)
            .bind(installation)
            .bind(issue)
            .fetch_optional(pool)
            .await)?)
    }
}

/// A ticket the worker opens; `$1`… as [`ApplyTx::open_ticket`] binds them.
/// It starts with the events its issue has counted already.
const OPEN_TICKET: &str = "insert into ticket (installation_uuid, title, description, status, assignee_email, source,
                                               metric_alert_id, severity, occurrences, created_at, updated_at,
                                               team_id, status_at, status_delivery)
                           values ($1, $2, $3, $4, $5, $6, $7, $8,
                                   coalesce((select event_count from sentry_issue
                                             where installation_uuid = $1 and issue_id = $10), 0),
                                   $9, $9, $11, $12, $13)
                           returning id";

// A ticket opened for a Sentry issue is linked to it (unless a replay
// linked it before) and queues its external-issue link, in the same round
// trip as its insert: the worker opens tickets by the thousand, and each
// round trip costs it more than the writes do. The row's kind is
// `OutboxKind::LinkExternal`, written out. The statements are written per
// dialect, since SQLite has no writes in `with` and
// PostgreSQL no statements after `;` in one prepared query.

/// SQLite: after `OPEN_TICKET`, in the same query text (sqlx binds `$N`
/// in every statement). `last_insert_rowid()` is the ticket's id, then
/// the outbox row's.
const SQLITE_THEN_QUEUE_AND_LINK: &str = "
    insert into outbox (installation_uuid, sentry_issue_id, ticket_id, kind, payload, change_at, next_attempt_at,
                        created_at)
    values ($1, $10, last_insert_rowid(), 'link_external', '{}', $9, $9, $9);
    insert into ticket_link (installation_uuid, sentry_issue_id, ticket_id, short_id, title, web_url, project_slug,
                             created_at)
    select $1, $10, o.ticket_id, s.short_id, s.title, s.web_url, s.project_slug, $9
    from outbox o left join sentry_issue s on s.installation_uuid = $1 and s.issue_id = $10
    where o.id = last_insert_rowid()
    on conflict (installation_uuid, sentry_issue_id) do nothing";

/// PostgreSQL: after `with t as (OPEN_TICKET)`.
const POSTGRES_THEN_LINK_AND_QUEUE: &str = ",
    link as (insert into ticket_link (installation_uuid, sentry_issue_id, ticket_id, short_id, title, web_url,
                                      project_slug, created_at)
             select $1, $10, t.id, s.short_id, s.title, s.web_url, s.project_slug, $9
             from t left join sentry_issue s on s.installation_uuid = $1 and s.issue_id = $10
             on conflict (installation_uuid, sentry_issue_id) do nothing),
    queued as (insert into outbox (installation_uuid, sentry_issue_id, ticket_id, kind, payload, change_at,
                                   next_attempt_at, created_at)
               select $1, $10, t.id, 'link_external', '{}', $9, $9, $9 from t)
    select id from t";
