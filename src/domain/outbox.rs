//! The two-way sync as the console shows it: what issuebridge tells Sentry
//! (the outbox), a ticket's history, and the edits people make.
//!
//! Wasm-safe, so the ticket page, the board and the Outbox view read the
//! same names the sender writes.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::domain::team::{TeamKey, TicketKey};
use crate::domain::ticket::TicketStatus;

/// What an outbox row tells Sentry about one of its issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxKind {
    /// The issue's status, from the ticket's (the reverse status mapping).
    Status,
    /// The issue's assignee, from the ticket's (a Sentry member by email).
    Assignee,
    CommentCreated,
    CommentUpdated,
    CommentDeleted,
    /// The external-issue link Sentry's sidebar shows (`ENG-12`), for tickets
    /// issuebridge opened by itself.
    LinkExternal,
    UnlinkExternal,
}

impl OutboxKind {
    pub const ALL: [OutboxKind; 7] = [
        Self::Status,
        Self::Assignee,
        Self::CommentCreated,
        Self::CommentUpdated,
        Self::CommentDeleted,
        Self::LinkExternal,
        Self::UnlinkExternal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Assignee => "assignee",
            Self::CommentCreated => "comment_created",
            Self::CommentUpdated => "comment_updated",
            Self::CommentDeleted => "comment_deleted",
            Self::LinkExternal => "link_external",
            Self::UnlinkExternal => "unlink_external",
        }
    }

    /// In words, for the Outbox view.
    pub fn label(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Assignee => "assignee",
            Self::CommentCreated => "new comment",
            Self::CommentUpdated => "edited comment",
            Self::CommentDeleted => "deleted comment",
            Self::LinkExternal => "link in Sentry's sidebar",
            Self::UnlinkExternal => "unlink from Sentry's sidebar",
        }
    }
}

impl fmt::Display for OutboxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown outbox {0}")]
pub struct UnknownName(pub String);

impl FromStr for OutboxKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownName(format!("kind {s:?}")))
    }
}

/// Where an outbox row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting its turn, or retrying after Sentry could not be reached.
    Pending,
    Sent,
    /// Sentry refused it for good (a 4xx other than 429, a deleted issue, an
    /// uninstalled installation): it waits for a person to retry it.
    Failed,
    /// A newer change of the same thing, made here or in Sentry, came
    /// after it: sending it would undo that change.
    Superseded,
    /// Nothing to send (no Sentry member has the assignee's email, a comment
    /// deleted before Sentry heard of it).
    Skipped,
}

impl OutboxState {
    pub const ALL: [OutboxState; 5] = [Self::Pending, Self::Sent, Self::Failed, Self::Superseded, Self::Skipped];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Superseded => "superseded",
            Self::Skipped => "skipped",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Sent => "Sent",
            Self::Failed => "Failed",
            Self::Superseded => "Superseded",
            Self::Skipped => "Skipped",
        }
    }
}

impl fmt::Display for OutboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutboxState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownName(format!("state {s:?}")))
    }
}

/// One outbox row, for the Outbox view and the ticket page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub id: i64,
    pub installation_uuid: String,
    pub org_slug: String,
    pub sentry_issue_id: String,
    pub short_id: Option<String>,
    /// `None` if the ticket is gone.
    pub ticket: Option<TicketKey>,
    pub kind: OutboxKind,
    pub state: OutboxState,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub next_attempt_at_ms: i64,
    pub finished_at_ms: Option<i64>,
}

impl OutboxItem {
    /// The issue as people know it.
    pub fn issue_name(&self) -> String {
        self.short_id.clone().unwrap_or_else(|| format!("issue {}", self.sentry_issue_id))
    }

    /// Whether a person may send it again.
    pub fn can_retry(&self) -> bool {
        matches!(self.state, OutboxState::Failed | OutboxState::Skipped)
    }
}

/// Who made a change to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    /// Someone in the console.
    Person,
    /// A Sentry webhook (a person or automation in Sentry).
    Sentry,
    /// An alert rule's action.
    Rule,
    /// The sync with Sentry (a change Sentry refused, an assignee it does
    /// not know).
    Sync,
}

impl ChangeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Sentry => "sentry",
            Self::Rule => "rule",
            Self::Sync => "sync",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "person" => Self::Person,
            "rule" => Self::Rule,
            "sync" => Self::Sync,
            _ => Self::Sentry,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Person => "in issuebridge",
            Self::Sentry => "from Sentry",
            Self::Rule => "by a rule",
            Self::Sync => "sync",
        }
    }
}

/// One line of a ticket's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketEventView {
    pub at_ms: i64,
    pub source: ChangeSource,
    pub actor: Option<String>,
    pub summary: String,
}

/// What a person changes on a ticket; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketEdit {
    pub title: Option<String>,
    pub description: Option<String>,
    pub status: Option<TicketStatus>,
    /// `Some(None)` unassigns.
    pub assignee: Option<Option<String>>,
    pub team: Option<TeamKey>,
}

/// Longest title and description a person may write.
pub const MAX_TITLE: usize = 500;
pub const MAX_DESCRIPTION: usize = 50_000;
pub const MAX_COMMENT: usize = 10_000;

impl TicketEdit {
    /// The edit with its text trimmed and checked, or what is wrong with it.
    pub fn checked(mut self) -> Result<Self, String> {
        if let Some(title) = &mut self.title {
            *title = title.trim().to_owned();
            if title.is_empty() {
                return Err("A ticket needs a title.".into());
            }
            if title.chars().count() > MAX_TITLE {
                return Err(format!("A title has at most {MAX_TITLE} characters."));
            }
        }
        if let Some(description) = &self.description {
            if description.chars().count() > MAX_DESCRIPTION {
                return Err(format!("A description has at most {MAX_DESCRIPTION} characters."));
            }
        }
        if let Some(Some(assignee)) = &mut self.assignee {
            let email = assignee.trim().to_lowercase();
            if email.is_empty() {
                self.assignee = Some(None);
            } else if !email.contains('@') {
                return Err("An assignee is an email address.".into());
            } else {
                *assignee = email;
            }
        }
        Ok(self)
    }

    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// A comment's text, trimmed and checked.
pub fn comment_text(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("A comment needs some text.".into());
    }
    if text.chars().count() > MAX_COMMENT {
        return Err(format!("A comment has at most {MAX_COMMENT} characters."));
    }
    Ok(text.to_owned())
}

/// What the live feed says: something about these tickets changed. The
/// board and the ticket page load again what they show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveChange {
    pub installation_uuid: String,
    /// The identifiers of changed tickets, when known; empty means "some
    /// tickets of this installation".
    pub tickets: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_states_round_trip_through_their_names() {
        for kind in OutboxKind::ALL {
            assert_eq!(kind.as_str().parse::<OutboxKind>().unwrap(), kind);
        }
        for state in OutboxState::ALL {
            assert_eq!(state.as_str().parse::<OutboxState>().unwrap(), state);
        }
        assert!("bounced".parse::<OutboxState>().is_err());
    }

    #[test]
    fn edits_are_trimmed_and_checked() {
        let edit = TicketEdit {
            title: Some("  Fix it ".into()),
            assignee: Some(Some(" Ada@Example.com ".into())),
            ..Default::default()
        };
        let edit = edit.checked().unwrap();
        assert_eq!(edit.title.as_deref(), Some("Fix it"));
        assert_eq!(edit.assignee, Some(Some("ada@example.com".into())));
        assert!(TicketEdit { title: Some("  ".into()), ..Default::default() }.checked().is_err());
        assert!(TicketEdit { assignee: Some(Some("ada".into())), ..Default::default() }.checked().is_err());
        let unassign = TicketEdit { assignee: Some(Some(" ".into())), ..Default::default() }.checked().unwrap();
        assert_eq!(unassign.assignee, Some(None));
        assert_eq!(comment_text("  hi "), Ok("hi".into()));
        assert!(comment_text(" ").is_err());
    }
}
