//! What Sentry's UI components read and write: ticket search for the link
//! select, tickets created or linked from an issue, and code mappings.

use super::conn::on_conn;
use super::teams::{TeamChoice, TeamError};
use super::tickets::{
    insert_link, IfLinked, LinkFacts, TicketState, TicketToOpen, TICKET_STATE_COLUMNS, TICKET_STATE_JOIN,
};
use super::{again_if_given_up, on_pool, ApplyTx, MaybeGivenUp, Store, StoreError};
use crate::components::stacktrace::CodeMapping;
use crate::domain::team::{TeamKey, TicketKey};
use crate::domain::ticket::TicketStatus;
use crate::domain::time::now_ms;

/// A ticket as a select offers it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketChoice {
    pub identifier: String,
    pub title: String,
}

/// How many of the most recent tickets a search looks through before it
/// asks the search index. Text as common as a word of many titles fills a
/// page of options from them (a handful of rows read instead of every match
/// sorted); only text rarer than that reaches the index, whose matches are
/// then few. Text shorter than a trigram never can: it stays in the window.
const RECENT_WINDOW: i64 = 2000;

/// `%` and `_` typed by a person are literal in a `like` pattern.
fn like_pattern(typed: &str) -> String {
    let escaped = typed.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// A phrase for FTS5: quoted, so what was typed is matched as a substring
/// and never read as query syntax.
fn fts_phrase(typed: &str) -> String {
    format!("\"{}\"", typed.replace('"', "\"\""))
}

/// What was typed, if it is the start of an identifier (`ENG-`, `eng-12`):
/// upper-cased, as identifiers are stored.
fn identifier_prefix(typed: &str) -> Option<String> {
    let (key, number) = typed.split_once('-')?;
    let key_ok = TeamKey::parse(key).is_ok();
    let number_ok = number.len() <= 15 && number.bytes().all(|b| b.is_ascii_digit());
    (key_ok && number_ok).then(|| typed.to_ascii_uppercase())
}

/// Why a ticket could not be made or linked for a Sentry issue.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("this Sentry issue is linked to {0} already")]
    AlreadyLinked(String),
    #[error("no ticket {0} in this installation")]
    NoSuchTicket(String),
    #[error("no team {0} in this installation")]
    NoSuchTeam(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MaybeGivenUp for LinkError {
    fn is_given_up(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_given_up())
    }
}

impl From<TeamError> for LinkError {
    fn from(e: TeamError) -> Self {
        match e {
            TeamError::Store(e) => Self::Store(e),
            TeamError::NotFound => Self::NoSuchTeam(String::new()),
            other => Self::Store(StoreError::Corrupt(other.to_string())),
        }
    }
}

/// The Sentry issue a ticket is created for or linked to.
#[derive(Debug, Clone, Copy)]
pub struct IssueToLink<'a> {
    pub installation: &'a str,
    pub issue_id: &'a str,
    pub web_url: Option<&'a str>,
    pub project_slug: Option<&'a str>,
}

/// A ticket to create for a Sentry issue.
#[derive(Debug, Clone)]
pub struct TicketForIssue<'a> {
    pub team: TeamChoice,
    pub title: &'a str,
    pub description: &'a str,
    pub status: TicketStatus,
    pub assignee: Option<&'a str>,
}

impl Store {
    /// Tickets of an installation for the link select. Nothing typed: the
    /// most recent. The start of an identifier (`eng-1`): those it starts,
    /// the exact one first. Other text: tickets whose identifier or title
    /// holds it, titles that start with it first, recent before old; read
    /// from the [`RECENT_WINDOW`] most recent tickets, and from the search
    /// index only when those do not fill a page.
    pub async fn search_tickets(
        &self,
        installation: &str,
        typed: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TicketChoice>, StoreError> {
        let Some(typed) = typed.map(str::trim).filter(|t| !t.is_empty()) else {
            let sql = "select identifier, title from ticket where installation_uuid = $1
                       order by updated_at desc, id desc limit $2";
            return Ok(on_pool!(self, |pool| sqlx::query_as::<_, TicketChoice>(sql)
                .bind(installation)
                .bind(limit)
                .fetch_all(pool)
                .await)?);
        };
        if let Some(prefix) = identifier_prefix(typed) {
            return self.tickets_by_identifier_prefix(installation, &prefix, limit).await;
        }
        // SQLite's `like` ignores ASCII case already; PostgreSQL's needs `ilike`.
        let like = match self {
            Store::Sqlite(_) => "like",
            Store::Postgres(_) => "ilike",
        };
        let sql = format!(
            "select identifier, title from (
                 select identifier, title, updated_at, id from ticket where installation_uuid = $1
                 order by updated_at desc, id desc limit $4) recent
             where (identifier || ' ' || title) {like} $2 escape '\\'
             order by title {like} $3 escape '\\' desc, updated_at desc, id desc limit $5"
        );
        let starts = format!("{}%", &like_pattern(typed)[1..]);
        let recent = on_pool!(self, |pool| sqlx::query_as::<_, TicketChoice>(&sql)
            .bind(installation)
            .bind(like_pattern(typed))
            .bind(starts.as_str())
            .bind(RECENT_WINDOW)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        let page_full = i64::try_from(recent.len()).unwrap_or(i64::MAX) >= limit;
        if page_full || typed.chars().count() < 3 {
            return Ok(recent);
        }
        Ok(match self {
            Store::Sqlite(pool) => {
                let sql = "select t.identifier, t.title from ticket_search s join ticket t on t.id = s.rowid
                               where ticket_search match $2 and t.installation_uuid = $1
                               order by instr(lower(t.title), lower($3)) = 1 desc, t.updated_at desc, t.id desc
                               limit $4";
                sqlx::query_as::<_, TicketChoice>(sql)
                    .bind(installation)
                    .bind(fts_phrase(typed))
                    .bind(typed)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            Store::Postgres(pool) => {
                let sql = "select identifier, title from ticket
                               where installation_uuid = $1 and (identifier || ' ' || title) ilike $2 escape '\\'
                               order by strpos(lower(title), lower($3)) = 1 desc, updated_at desc, id desc
                               limit $4";
                sqlx::query_as::<_, TicketChoice>(sql)
                    .bind(installation)
                    .bind(like_pattern(typed))
                    .bind(typed)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        })
    }

    /// Tickets whose identifier starts with `prefix`, the exact one first
    /// (shortest first, then by number), by the identifier index: a search
    /// index would read every identifier's `IB-` trigrams.
    async fn tickets_by_identifier_prefix(
        &self,
        installation: &str,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<TicketChoice>, StoreError> {
        // A range, not `like`: PostgreSQL's generic plan for a prepared
        // `like $2` cannot use the index. Identifiers are letters, digits and
        // `-`, all below `~`, so [prefix, prefix~) holds exactly those that
        // start with it; `~>=~`/`~<~` compare bytes, as text_pattern_ops sorts.
        let range = match self {
            Store::Sqlite(_) => "identifier >= $2 and identifier < $3",
            Store::Postgres(_) => "identifier ~>=~ $2 and identifier ~<~ $3",
        };
        let sql = format!(
            "select identifier, title from ticket where installation_uuid = $1 and {range}
             order by length(identifier), identifier limit $4"
        );
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, TicketChoice>(&sql)
            .bind(installation)
            .bind(prefix)
            .bind(format!("{prefix}~"))
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    /// Creates a ticket for a Sentry issue and links the two, in one
    /// transaction: either both exist afterwards or neither does.
    pub async fn create_ticket_for_issue(
        &self,
        issue: &IssueToLink<'_>,
        ticket: &TicketForIssue<'_>,
    ) -> Result<TicketState, LinkError> {
        again_if_given_up(|| self.create_ticket_for_issue_once(issue, ticket)).await
    }

    async fn create_ticket_for_issue_once(
        &self,
        issue: &IssueToLink<'_>,
        ticket: &TicketForIssue<'_>,
    ) -> Result<TicketState, LinkError> {
        let mut tx = self.begin_apply().await?;
        if let Some(linked) = tx.linked_ticket(issue.installation, issue.issue_id).await? {
            return Err(LinkError::AlreadyLinked(linked.key.to_string()));
        }
        let team_name = match &ticket.team {
            TeamChoice::Key(key) => key.to_string(),
            _ => String::new(),
        };
        let opened = tx
            .open_ticket(&TicketToOpen {
                installation: issue.installation,
                team: ticket.team.clone(),
                title: ticket.title,
                description: ticket.description,
                status: ticket.status,
                status_order: None,
                assignee: ticket.assignee,
                source: "issue_link",
                metric_alert_id: None,
                severity: None,
                issue: None,
            })
            .await
            .map_err(|e| match LinkError::from(e) {
                LinkError::NoSuchTeam(_) => LinkError::NoSuchTeam(team_name.clone()),
                other => other,
            })?;
        link_and_commit(tx, opened, issue).await
    }

    /// Links an existing ticket, by identifier, to a Sentry issue. Linking
    /// it again to the same ticket changes nothing.
    pub async fn link_ticket_to_issue(
        &self,
        issue: &IssueToLink<'_>,
        identifier: &TicketKey,
    ) -> Result<TicketState, LinkError> {
        again_if_given_up(|| self.link_ticket_to_issue_once(issue, identifier)).await
    }

    async fn link_ticket_to_issue_once(
        &self,
        issue: &IssueToLink<'_>,
        identifier: &TicketKey,
    ) -> Result<TicketState, LinkError> {
        let mut tx = self.begin_apply().await?;
        let sql = format!(
            "select {TICKET_STATE_COLUMNS} from ticket t {TICKET_STATE_JOIN}
             where t.installation_uuid = $1 and t.identifier = $2"
        );
        let row = on_conn!(tx.conn(), |c| sqlx::query_as::<_, super::tickets::TicketStateRow>(&sql)
            .bind(issue.installation)
            .bind(identifier.to_string())
            .fetch_optional(c)
            .await)
        .map_err(StoreError::from)?;
        let ticket: TicketState = row.ok_or_else(|| LinkError::NoSuchTicket(identifier.to_string()))?.try_into()?;
        match tx.linked_ticket(issue.installation, issue.issue_id).await? {
            Some(linked) if linked.id == ticket.id => return Ok(ticket),
            Some(linked) => return Err(LinkError::AlreadyLinked(linked.key.to_string())),
            None => {}
        }
        link_and_commit(tx, ticket, issue).await
    }

    /// An installation's code mappings, of one project or all.
    pub async fn code_mappings(
        &self,
        installation: &str,
        project: Option<&str>,
    ) -> Result<Vec<CodeMapping>, StoreError> {
        let sql = "select id, project_slug, stack_root, source_root, provider, repo_url, branch from code_mapping
                   where installation_uuid = $1 and ($2 is null or project_slug = $2)
                   order by project_slug, stack_root";
        let rows = on_pool!(self, |pool| sqlx::query_as::<_, CodeMappingRow>(sql)
            .bind(installation)
            .bind(project)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Adds a mapping (checked by `MappingForm::parse`), or replaces the one
    /// of the same project and stack root.
    pub async fn save_code_mapping(&self, installation: &str, mapping: &CodeMapping) -> Result<i64, StoreError> {
        let _turn = self.write_turn().await;
        let sql = "insert into code_mapping (installation_uuid, project_slug, stack_root, source_root, provider,
                                             repo_url, branch, created_at, updated_at)
                   values ($1, $2, $3, $4, $5, $6, $7, $8, $8)
                   on conflict (installation_uuid, project_slug, stack_root) do update
                   set source_root = excluded.source_root, provider = excluded.provider,
                       repo_url = excluded.repo_url, branch = excluded.branch, updated_at = excluded.updated_at
                   returning id";
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql)
            .bind(installation)
            .bind(&mapping.project_slug)
            .bind(&mapping.stack_root)
            .bind(&mapping.source_root)
            .bind(mapping.provider.as_str())
            .bind(&mapping.repo_url)
            .bind(&mapping.branch)
            .bind(now_ms())
            .fetch_one(pool)
            .await)?)
    }

    /// Deletes a mapping of the installation; `false` if it has none by that id.
    pub async fn delete_code_mapping(&self, installation: &str, id: i64) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let sql = "delete from code_mapping where installation_uuid = $1 and id = $2";
        let deleted = on_pool!(self, |pool| sqlx::query(sql)
            .bind(installation)
            .bind(id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(deleted == 1)
    }
}

/// Links the issue to the ticket and commits. A unique violation means
/// another request linked the issue meanwhile.
async fn link_and_commit(
    mut tx: ApplyTx,
    mut ticket: TicketState,
    issue: &IssueToLink<'_>,
) -> Result<TicketState, LinkError> {
    let facts = LinkFacts {
        installation: issue.installation,
        issue_id: issue.issue_id,
        web_url: issue.web_url,
        project_slug: issue.project_slug,
        ..Default::default()
    };
    insert_link(tx.conn(), ticket.id, &facts, IfLinked::Refuse)
        .await
        .map_err(|e| already_linked(e, "another ticket"))?;
    // A ticket created here takes its number only now, so the team's row
    // is locked for the commit alone.
    ticket.take_number(&tx.commit_numbering().await?);
    Ok(ticket)
}

/// A unique violation on a link means the issue was linked meanwhile.
fn already_linked(e: StoreError, to: &str) -> LinkError {
    if e.is_unique_violation() {
        LinkError::AlreadyLinked(to.to_owned())
    } else {
        LinkError::Store(e)
    }
}

#[derive(sqlx::FromRow)]
struct CodeMappingRow {
    id: i64,
    project_slug: String,
    stack_root: String,
    source_root: String,
    provider: String,
    repo_url: String,
    branch: String,
}

impl TryFrom<CodeMappingRow> for CodeMapping {
    type Error = StoreError;
    fn try_from(row: CodeMappingRow) -> Result<Self, StoreError> {
        let provider =
            row.provider.parse().map_err(|e| StoreError::Corrupt(format!("code mapping {}: {e}", row.id)))?;
        Ok(CodeMapping {
            id: row.id,
            project_slug: row.project_slug,
            stack_root: row.stack_root,
            source_root: row.source_root,
            provider,
            repo_url: row.repo_url,
            branch: row.branch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_prefixes_are_recognised() {
        assert_eq!(identifier_prefix("eng-12").as_deref(), Some("ENG-12"));
        assert_eq!(identifier_prefix("IB-").as_deref(), Some("IB-"));
        for other in ["checkout", "eng-12a", "e-1", "-12", "eng 12", "a-b-1"] {
            assert_eq!(identifier_prefix(other), None, "{other}");
        }
    }

    #[test]
    fn typed_text_is_literal_in_patterns() {
        assert_eq!(like_pattern("50%_Off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(fts_phrase("say \"hi\" OR x"), "\"say \"\"hi\"\" OR x\"");
    }
}
