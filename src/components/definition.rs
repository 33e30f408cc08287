//! issuebridge's own UI components: the one definition that is served at
//! `GET /sentry/schema.json`, printed by `issuebridge schema` for Sentry's
//! Schema field, drawn by the console's Components page, and whose paths
//! the server routes. Checked against Sentry's rules by [`super::schema`].

use crate::domain::ticket::TicketStatus;
use serde_json::{json, Value};

/// The paths Sentry calls, relative to the webhook URL's host
/// (docs/sentry-protocol.md §3.2).
pub mod uri {
    pub const SELECT_TEAMS: &str = "/sentry/select/teams";
    pub const SELECT_ASSIGNEES: &str = "/sentry/select/assignees";
    pub const SELECT_TICKETS: &str = "/sentry/select/tickets";
    pub const ISSUE_LINK_CREATE: &str = "/sentry/issue-link/create";
    pub const ISSUE_LINK_LINK: &str = "/sentry/issue-link/link";
    pub const ALERT_RULE_ACTION: &str = "/sentry/alert-rule-action";
    pub const STACKTRACE_LINK: &str = "/sentry/stacktrace-link";
}

/// The form fields' names: what Sentry sends back as `fields` (issue link)
/// or `[{name, value}]` (alert-rule settings, and later in
/// `event_alert.triggered` / `metric_alert.*`).
pub mod field {
    pub const TITLE: &str = "title";
    pub const DESCRIPTION: &str = "description";
    pub const TEAM: &str = "team";
    pub const ASSIGNEE: &str = "assignee";
    pub const STATUS: &str = "status";
    pub const TICKET: &str = "ticket";
}

/// The placeholders an alert rule's title template may use.
pub const TITLE_PLACEHOLDERS: [&str; 5] = ["{title}", "{culprit}", "{project}", "{level}", "{rule}"];

fn team_select() -> Value {
    json!({"type": "select", "name": field::TEAM, "label": "Team", "uri": uri::SELECT_TEAMS})
}

fn assignee_select() -> Value {
    json!({
        "type": "select", "name": field::ASSIGNEE, "label": "Assignee",
        "uri": uri::SELECT_ASSIGNEES, "depends_on": [field::TEAM],
    })
}

/// Statuses are fixed, so they are `options` (`[value, label]` pairs) and
/// cost Sentry no request.
fn status_select() -> Value {
    let options: Vec<[&str; 2]> = TicketStatus::ALL.iter().map(|s| [s.as_str(), s.label()]).collect();
    json!({"type": "select", "name": field::STATUS, "label": "Status", "options": options})
}

/// The schema, as Sentry stores it.
pub fn schema() -> Value {
    json!({
        "elements": [
            {
                "type": "issue-link",
                "create": {
                    "uri": uri::ISSUE_LINK_CREATE,
                    "required_fields": [
                        {"type": "text", "name": field::TITLE, "label": "Title", "default": "issue.title"},
                        team_select(),
                    ],
                    "optional_fields": [
                        {"type": "textarea", "name": field::DESCRIPTION, "label": "Description",
                         "default": "issue.description"},
                        assignee_select(),
                        status_select(),
                    ],
                },
                "link": {
                    "uri": uri::ISSUE_LINK_LINK,
                    "required_fields": [
                        {"type": "select", "name": field::TICKET, "label": "Ticket",
                         "uri": uri::SELECT_TICKETS, "async": true},
                    ],
                },
            },
            {
                "type": "alert-rule-action",
                "title": "Open an issuebridge ticket",
                "settings": {
                    "type": "alert-rule-settings",
                    "uri": uri::ALERT_RULE_ACTION,
                    "description": "Opens a ticket on the team's board for the issue, or reopens its ticket.",
                    "required_fields": [team_select()],
                    "optional_fields": [
                        assignee_select(),
                        {"type": "text", "name": field::TITLE, "label": "Title template ({title}, {culprit}, {project}, {level}, {rule})"},
                        status_select(),
                    ],
                },
            },
            {"type": "stacktrace-link", "uri": uri::STACKTRACE_LINK},
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::schema::validate;

    /// Proves the schema Sentry is given passes every rule Sentry applies
    /// (docs/sentry-protocol.md §3.1), as checked rule by rule in `schema`.
    #[test]
    fn the_schema_passes_sentrys_validation() {
        assert_eq!(validate(&schema()), vec![]);
    }

    #[test]
    fn every_uri_is_a_path_sentry_accepts() {
        for path in [
            uri::SELECT_TEAMS,
            uri::SELECT_ASSIGNEES,
            uri::SELECT_TICKETS,
            uri::ISSUE_LINK_CREATE,
            uri::ISSUE_LINK_LINK,
            uri::ALERT_RULE_ACTION,
            uri::STACKTRACE_LINK,
        ] {
            assert!(path.starts_with('/') && !path.starts_with("//") && !path.contains(['@', '?']), "{path}");
        }
    }
}
