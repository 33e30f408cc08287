//! The rules that turn what Sentry says into changes to tickets.
//!
//! Pure functions over plain values, so they are tested without a database
//! and the console shows the very same defaults it applies. The worker
//! (`crate::pipeline::apply`, server side) reads the state, asks these rules, and
//! writes the answer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::ticket::TicketStatus;
use crate::sentry::payload::Assignee;

/// What an installation wants done with what Sentry sends. Stored as JSON
/// on the installation; every field has a default, so `{}` is a complete
/// setting and new fields never break stored ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InstallationSettings {
    /// Open a ticket for every new Sentry issue (`issue.created`). When off,
    /// tickets come only from alert rules, metric alerts and the console.
    pub open_ticket_on_new_issue: bool,
    pub status_mapping: StatusMapping,
    /// Sentry user email → the assignee on the board. Emails not listed are
    /// used as they are.
    pub user_mapping: BTreeMap<String, String>,
}

impl Default for InstallationSettings {
    fn default() -> Self {
        Self { open_ticket_on_new_issue: true, status_mapping: StatusMapping::default(), user_mapping: BTreeMap::new() }
    }
}

impl InstallationSettings {
    /// Reads stored settings; text that does not parse gives the defaults
    /// rather than stopping the sync (the console shows what is in force).
    pub fn from_json(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_default()
    }

    /// The board's assignee for a Sentry assignee: a user's email, through
    /// the mapping. Teams, and users whose email Sentry withholds, give
    /// nothing: the ticket's assignee is left as it is.
    pub fn assignee_for(&self, assignee: &Assignee) -> Option<String> {
        if assignee.kind != "user" {
            return None;
        }
        let email = assignee.email.as_deref().map(str::trim).filter(|e| e.contains('@'))?;
        Some(self.map_email(email))
    }

    /// The Sentry email for a board assignee: the user mapping read
    /// backwards (the first Sentry email mapped to it), else the email as
    /// it is.
    pub fn sentry_email_for(&self, board_email: &str) -> String {
        self.user_mapping
            .iter()
            .find(|(_, to)| to.eq_ignore_ascii_case(board_email))
            .map_or_else(|| board_email.to_owned(), |(from, _)| from.clone())
    }

    /// An email through the user mapping (case-insensitively).
    pub fn map_email(&self, email: &str) -> String {
        self.user_mapping
            .iter()
            .find(|(from, _)| from.eq_ignore_ascii_case(email))
            .map_or_else(|| email.to_owned(), |(_, to)| to.clone())
    }
}

/// Which ticket status each Sentry issue status moves a linked ticket to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusMapping {
    pub resolved: TicketStatus,
    /// `ignored`, and its legacy name `archived`.
    pub ignored: TicketStatus,
    pub unresolved: TicketStatus,
}

impl Default for StatusMapping {
    fn default() -> Self {
        Self { resolved: TicketStatus::Done, ignored: TicketStatus::WontDo, unresolved: TicketStatus::Todo }
    }
}

impl StatusMapping {
    /// The ticket status for a Sentry issue status, if it maps to one.
    pub fn for_issue_status(&self, status: IssueStatus) -> TicketStatus {
        match status {
            IssueStatus::Resolved => self.resolved,
            IssueStatus::Ignored => self.ignored,
            IssueStatus::Unresolved => self.unresolved,
        }
    }
}

impl StatusMapping {
    /// The Sentry status a ticket status is sent as: the inbound mapping
    /// read backwards. An open ticket is an unresolved issue; a closed one
    /// is the first of resolved, ignored that maps to its status, and
    /// otherwise done → resolved, won't do → ignored.
    pub fn issue_status_for(&self, status: TicketStatus) -> IssueStatus {
        if status.is_open() {
            return IssueStatus::Unresolved;
        }
        if self.resolved == status {
            IssueStatus::Resolved
        } else if self.ignored == status || status == TicketStatus::WontDo {
            IssueStatus::Ignored
        } else {
            IssueStatus::Resolved
        }
    }
}

/// A Sentry issue's status as the webhooks move it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueStatus {
    Resolved,
    Ignored,
    Unresolved,
}

impl IssueStatus {
    /// The status an `issue.<action>` webhook announces. `created` and
    /// `assigned` announce none: a late `assigned` must not move a ticket.
    pub fn from_action(action: &str) -> Option<Self> {
        match action {
            "resolved" => Some(Self::Resolved),
            "ignored" | "archived" => Some(Self::Ignored),
            "unresolved" => Some(Self::Unresolved),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resolved => "resolved",
            Self::Ignored => "ignored",
            Self::Unresolved => "unresolved",
        }
    }
}

/// The status a ticket moves to when the mapping asks for `wanted`. A ticket
/// that is open already stays as it is when asked to be open (`unresolved`
/// must not push "in progress" back to "to do").
pub fn next_ticket_status(current: TicketStatus, wanted: TicketStatus) -> TicketStatus {
    if current.is_open() && wanted.is_open() {
        current
    } else {
        wanted
    }
}

/// Where a change sits in time, to let late deliveries lose to newer ones:
/// Sentry's send time (`Sentry-Hook-Timestamp`, whole seconds) first, then
/// the order deliveries arrived in (the delivery id) for changes sent within
/// the same second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChangeOrder {
    pub sent_at_ms: i64,
    pub delivery_id: i64,
}

impl ChangeOrder {
    /// Whether a change at `self` may overwrite one recorded at `applied`.
    /// Equal orders are the same delivery again: applying it again is
    /// harmless, so it is allowed.
    pub fn supersedes(self, applied: Option<ChangeOrder>) -> bool {
        applied.is_none_or(|applied| self >= applied)
    }
}

/// What a metric alert's webhook action means for its ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricAlertState {
    Open,
    Warning,
    Critical,
    Resolved,
}

impl MetricAlertState {
    pub fn from_action(action: &str) -> Option<Self> {
        match action {
            "open" => Some(Self::Open),
            "warning" => Some(Self::Warning),
            "critical" => Some(Self::Critical),
            "resolved" => Some(Self::Resolved),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Warning => "warning",
            Self::Critical => "critical",
            Self::Resolved => "resolved",
        }
    }

    /// An incident that Sentry closed stays closed: a new one gets a new id.
    pub fn ticket_status(self) -> TicketStatus {
        match self {
            Self::Resolved => TicketStatus::Done,
            _ => TicketStatus::Todo,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(email: Option<&str>) -> Assignee {
        Assignee { kind: "user".into(), name: Some("Ada".into()), id: None, email: email.map(str::to_owned) }
    }

    #[test]
    fn ticket_statuses_go_back_to_sentry_through_the_mapping_reversed() {
        let mapping = StatusMapping::default();
        assert_eq!(mapping.issue_status_for(TicketStatus::Done), IssueStatus::Resolved);
        assert_eq!(mapping.issue_status_for(TicketStatus::WontDo), IssueStatus::Ignored);
        assert_eq!(mapping.issue_status_for(TicketStatus::Todo), IssueStatus::Unresolved);
        assert_eq!(mapping.issue_status_for(TicketStatus::InProgress), IssueStatus::Unresolved);
        // Ignored issues close tickets as done, resolved ones as won't do.
        let swapped = StatusMapping {
            resolved: TicketStatus::WontDo,
            ignored: TicketStatus::Done,
            unresolved: TicketStatus::Todo,
        };
        assert_eq!(swapped.issue_status_for(TicketStatus::Done), IssueStatus::Ignored);
        assert_eq!(swapped.issue_status_for(TicketStatus::WontDo), IssueStatus::Resolved);
    }

    #[test]
    fn board_emails_go_back_to_sentry_through_the_user_mapping() {
        let mut settings = InstallationSettings::default();
        settings.user_mapping.insert("ada@corp.example".into(), "ada@example.com".into());
        assert_eq!(settings.sentry_email_for("ADA@example.com"), "ada@corp.example");
        assert_eq!(settings.sentry_email_for("grace@example.com"), "grace@example.com");
    }

    #[test]
    fn empty_settings_are_the_documented_defaults() {
        let settings = InstallationSettings::from_json("{}");
        assert!(settings.open_ticket_on_new_issue);
        assert_eq!(settings.status_mapping.for_issue_status(IssueStatus::Resolved), TicketStatus::Done);
        assert_eq!(settings.status_mapping.for_issue_status(IssueStatus::Ignored), TicketStatus::WontDo);
        assert_eq!(settings.status_mapping.for_issue_status(IssueStatus::Unresolved), TicketStatus::Todo);
        assert_eq!(InstallationSettings::from_json("not json"), InstallationSettings::default());
        let partial = InstallationSettings::from_json(r#"{"status_mapping": {"ignored": "done"}}"#);
        assert_eq!(partial.status_mapping.ignored, TicketStatus::Done);
        assert_eq!(partial.status_mapping.resolved, TicketStatus::Done);
    }

    #[test]
    fn assignees_map_by_email_and_teams_map_to_nobody() {
        let mut settings = InstallationSettings::default();
        settings.user_mapping.insert("Ada@Sentry.example".into(), "ada@board.example".into());
        assert_eq!(settings.assignee_for(&user(Some("ada@sentry.example"))).as_deref(), Some("ada@board.example"));
        assert_eq!(settings.assignee_for(&user(Some("bob@example.com"))).as_deref(), Some("bob@example.com"));
        assert_eq!(settings.assignee_for(&user(None)), None);
        let team = Assignee { kind: "team".into(), ..user(None) };
        assert_eq!(settings.assignee_for(&team), None);
    }

    #[test]
    fn issue_actions_announce_statuses_but_assigned_does_not() {
        assert_eq!(IssueStatus::from_action("archived"), Some(IssueStatus::Ignored));
        assert_eq!(IssueStatus::from_action("assigned"), None);
        assert_eq!(IssueStatus::from_action("created"), None);
    }

    #[test]
    fn reopening_keeps_work_in_progress() {
        use TicketStatus::*;
        assert_eq!(next_ticket_status(InProgress, Todo), InProgress);
        assert_eq!(next_ticket_status(Done, Todo), Todo);
        assert_eq!(next_ticket_status(InProgress, Done), Done);
    }

    #[test]
    fn later_changes_supersede_earlier_ones() {
        let at = |s, id| ChangeOrder { sent_at_ms: s, delivery_id: id };
        assert!(at(2000, 1).supersedes(None));
        assert!(at(2000, 1).supersedes(Some(at(1000, 9))));
        assert!(!at(1000, 9).supersedes(Some(at(2000, 1))));
        assert!(at(1000, 5).supersedes(Some(at(1000, 4))));
        assert!(!at(1000, 4).supersedes(Some(at(1000, 5))));
        assert!(at(1000, 5).supersedes(Some(at(1000, 5))));
    }
}
