//! Tickets as the board shows them.

use crate::domain::ids::TicketId;
use crate::domain::outbox::{OutboxItem, TicketEventView};
use crate::domain::team::{Team, TicketKey};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a ticket stands. Stored as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    Todo,
    InProgress,
    Done,
    WontDo,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 4] = [Self::Todo, Self::InProgress, Self::Done, Self::WontDo];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Todo => "todo",
            Self::InProgress => "in_progress",
            Self::Done => "done",
            Self::WontDo => "wont_do",
        }
    }

    /// The words a person reads on the board.
    pub fn label(self) -> &'static str {
        match self {
            Self::Todo => "To do",
            Self::InProgress => "In progress",
            Self::Done => "Done",
            Self::WontDo => "Won't do",
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, Self::Todo | Self::InProgress)
    }
}

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ticket status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for TicketStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// One row of the board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketSummary {
    pub id: TicketId,
    /// What people call it: `ENG-12`.
    pub key: TicketKey,
    pub title: String,
    pub status: TicketStatus,
    pub assignee: Option<String>,
    /// Identifiers are unique within one installation.
    pub installation_uuid: String,
    pub org_slug: String,
    /// The short id (`PROJ-1A`) of the first linked Sentry issue, if any.
    pub sentry_short_id: Option<String>,
    pub linked_issues: i64,
    pub updated_at_ms: i64,
    /// Sentry events counted on the ticket (errors, alerts, service hooks).
    pub occurrences: i64,
    /// A metric alert's ticket: its last severity (`critical`, `resolved`…).
    pub severity: Option<String>,
}

impl TicketSummary {
    /// The ticket's page in the console.
    pub fn page(&self) -> String {
        ticket_page(&self.key, &self.installation_uuid)
    }

    /// Whether the board's filter box keeps this row: every word of the query
    /// must appear, case-insensitively, in the id, title, status, assignee,
    /// organization or Sentry short id.
    pub fn matches(&self, query: &str) -> bool {
        let haystack = format!(
            "{} {} {} {} {} {}",
            self.key,
            self.title,
            self.status.label(),
            self.assignee.as_deref().unwrap_or(""),
            self.org_slug,
            self.sentry_short_id.as_deref().unwrap_or(""),
        )
        .to_lowercase();
        query.split_whitespace().all(|word| haystack.contains(&word.to_lowercase()))
    }
}

/// The console's page of a ticket: `/tickets/ENG-12?installation=…`.
pub fn ticket_page(key: &TicketKey, installation: &str) -> String {
    format!("/tickets/{key}?installation={installation}")
}

/// A ticket in full, for its page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketDetail {
    pub id: i64,
    pub installation_uuid: String,
    pub org_slug: String,
    pub key: TicketKey,
    pub team_name: String,
    pub title: String,
    pub description: String,
    pub status: TicketStatus,
    pub assignee: Option<String>,
    /// How it was made: `issue`, `issue_link`, `event_alert`, `metric_alert`,
    /// `console`.
    pub source: String,
    pub occurrences: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub links: Vec<LinkedIssueView>,
    pub comments: Vec<CommentView>,
    /// The description's Markdown as safe HTML (rendered on the server).
    pub description_html: String,
    /// Every change, oldest first.
    pub history: Vec<TicketEventView>,
    /// What was told (or is waiting to be told) to Sentry, newest first.
    pub outbox: Vec<OutboxItem>,
    /// The installation's teams with their members: what the ticket may
    /// move to, and who may be assigned.
    pub teams: Vec<Team>,
}

impl TicketDetail {
    /// Where the ticket came from, in words.
    pub fn source_label(&self) -> &'static str {
        match self.source.as_str() {
            "issue" => "opened for a new Sentry issue",
            "issue_link" => "created from Sentry's issue sidebar",
            "event_alert" => "opened by a Sentry alert rule",
            "metric_alert" => "opened by a Sentry metric alert",
            _ => "made in issuebridge",
        }
    }
}

/// A Sentry issue linked to a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedIssueView {
    pub issue_id: String,
    pub short_id: Option<String>,
    pub title: Option<String>,
    pub web_url: Option<String>,
    pub project_slug: Option<String>,
    pub status: Option<String>,
    pub event_count: i64,
    /// When Sentry last counted an event on it here.
    pub last_seen_ms: Option<i64>,
}

/// A comment on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentView {
    pub id: i64,
    pub author: Option<String>,
    pub body: String,
    /// `sentry` or `console`.
    pub origin: String,
    pub created_at_ms: i64,
    pub deleted: bool,
    pub edited: bool,
    /// Written here by the person looking: they may edit or delete it.
    pub mine: bool,
}

/// A Sentry issue an installation heard of, to fill a form's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct SentryIssueChoice {
    pub issue_id: String,
    pub short_id: Option<String>,
    pub title: Option<String>,
    pub project_slug: Option<String>,
    pub web_url: Option<String>,
    /// The ticket it is linked to, if any.
    pub ticket: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> TicketSummary {
        TicketSummary {
            id: TicketId(7),
            key: "IB-7".parse().unwrap(),
            title: "TypeError in checkout".into(),
            status: TicketStatus::InProgress,
            assignee: Some("ada@example.com".into()),
            installation_uuid: String::new(),
            org_slug: "acme".into(),
            sentry_short_id: Some("WEB-1A".into()),
            linked_issues: 1,
            updated_at_ms: 0,
            occurrences: 0,
            severity: None,
        }
    }

    #[test]
    fn status_round_trips_through_its_name() {
        for status in TicketStatus::ALL {
            assert_eq!(status.as_str().parse::<TicketStatus>().unwrap(), status);
        }
        assert!("closed".parse::<TicketStatus>().is_err());
    }

    #[test]
    fn filter_matches_every_word_in_any_field() {
        let t = ticket();
        assert!(t.matches(""));
        assert!(t.matches("typeerror"));
        assert!(t.matches("CHECKOUT ada"));
        assert!(t.matches("web-1a"));
        assert!(t.matches("ib-7"));
        assert!(t.matches("in progress"));
        assert!(!t.matches("checkout bob"));
    }
}
