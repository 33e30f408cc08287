//! An installation's settings as the console edits them: a form of plain
//! fields, and the rules that turn it into [`InstallationSettings`] or say,
//! field by field, what to fix. The CLI's `settings` command takes the same
//! values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ticket::TicketStatus;
use super::ticket_rules::{InstallationSettings, StatusMapping};

/// The Settings page's form for one installation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsForm {
    pub new_issues: bool,
    /// Ticket statuses by name (`todo`, `in_progress`, `done`, `wont_do`).
    pub resolved: String,
    pub ignored: String,
    pub unresolved: String,
    /// One `sentry@example.com = board@example.com` per line.
    pub user_mapping: String,
}

/// What is wrong with one field, for the person to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl SettingsForm {
    pub fn from_settings(settings: &InstallationSettings) -> Self {
        let StatusMapping { resolved, ignored, unresolved } = settings.status_mapping;
        Self {
            new_issues: settings.open_ticket_on_new_issue,
            resolved: resolved.as_str().to_owned(),
            ignored: ignored.as_str().to_owned(),
            unresolved: unresolved.as_str().to_owned(),
            user_mapping: settings.user_mapping.iter().map(|(from, to)| format!("{from} = {to}\n")).collect(),
        }
    }

    /// The settings the form describes, or every field's problem.
    pub fn parse(&self) -> Result<InstallationSettings, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut status = |field: &str, text: &str| -> TicketStatus {
            match TicketStatus::ALL.into_iter().find(|s| s.as_str() == text.trim()) {
                Some(status) => status,
                None => {
                    errors.push(FieldError {
                        field: field.to_owned(),
                        message: format!("{text:?} is not a ticket status (todo, in_progress, done, wont_do)."),
                    });
                    TicketStatus::Todo
                }
            }
        };
        let status_mapping = StatusMapping {
            resolved: status("resolved", &self.resolved),
            ignored: status("ignored", &self.ignored),
            unresolved: status("unresolved", &self.unresolved),
        };
        let mut user_mapping = BTreeMap::new();
        for (number, line) in self.user_mapping.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let problem = match line.split_once('=') {
                None => Some("is not `sentry email = board email`".to_owned()),
                Some((from, to)) => {
                    let (from, to) = (from.trim().to_lowercase(), to.trim());
                    if !is_email(&from) {
                        Some(format!("{from:?} is not an email address"))
                    } else if !is_email(to) {
                        Some(format!("{to:?} is not an email address"))
                    } else if user_mapping.insert(from.clone(), to.to_owned()).is_some() {
                        Some(format!("maps {from} a second time"))
                    } else {
                        None
                    }
                }
            };
            if let Some(problem) = problem {
                errors.push(FieldError {
                    field: "user_mapping".to_owned(),
                    message: format!("Line {}: {problem}.", number + 1),
                });
            }
        }
        if errors.is_empty() {
            Ok(InstallationSettings { open_ticket_on_new_issue: self.new_issues, status_mapping, user_mapping })
        } else {
            Err(errors)
        }
    }
}

/// One installation on the Settings page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationSettingsView {
    pub uuid: String,
    pub org_slug: String,
    /// Whether the person may change them (organization rights in Sentry).
    pub can_manage: bool,
    pub form: SettingsForm,
}

/// How a save went: saved, or the fields to fix (nothing was changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaveOutcome {
    Saved,
    Invalid(Vec<FieldError>),
}

/// What changed between two settings, in words, for the audit log.
pub fn describe_change(before: &InstallationSettings, after: &InstallationSettings) -> String {
    let mut changes = Vec::new();
    let switch = |on: bool| if on { "on" } else { "off" };
    if before.open_ticket_on_new_issue != after.open_ticket_on_new_issue {
        changes.push(format!("tickets for new issues {}", switch(after.open_ticket_on_new_issue)));
    }
    let (b, a) = (before.status_mapping, after.status_mapping);
    for (name, old, new) in [
        ("resolved", b.resolved, a.resolved),
        ("ignored", b.ignored, a.ignored),
        ("unresolved", b.unresolved, a.unresolved),
    ] {
        if old != new {
            changes.push(format!("{name} → {} (was {})", new.as_str(), old.as_str()));
        }
    }
    for (from, to) in &after.user_mapping {
        if before.user_mapping.get(from) != Some(to) {
            changes.push(format!("maps {from} to {to}"));
        }
    }
    for from in before.user_mapping.keys().filter(|from| !after.user_mapping.contains_key(*from)) {
        changes.push(format!("no longer maps {from}"));
    }
    if changes.is_empty() {
        "saved without changes".to_owned()
    } else {
        changes.join("; ")
    }
}

fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else { return false };
    !local.is_empty() && domain.contains('.') && !text.chars().any(|c| c.is_whitespace() || c == ',')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_round_trips_its_settings() {
        let mut settings = InstallationSettings::default();
        settings.open_ticket_on_new_issue = false;
        settings.status_mapping.ignored = TicketStatus::Done;
        settings.user_mapping.insert("ada@sentry.example".into(), "ada@board.example".into());
        let form = SettingsForm::from_settings(&settings);
        assert_eq!(form.user_mapping, "ada@sentry.example = ada@board.example\n");
        assert_eq!(form.parse().unwrap(), settings);
    }

    #[test]
    fn a_change_is_described_in_words() {
        let before = InstallationSettings::default();
        let mut after = before.clone();
        after.open_ticket_on_new_issue = false;
        after.status_mapping.resolved = TicketStatus::WontDo;
        after.user_mapping.insert("a@x.io".into(), "b@y.io".into());
        assert_eq!(
            describe_change(&before, &after),
            "tickets for new issues off; resolved → wont_do (was done); maps a@x.io to b@y.io"
        );
        assert_eq!(describe_change(&after, &before).matches("no longer maps a@x.io").count(), 1);
        assert_eq!(describe_change(&before, &before), "saved without changes");
    }

    #[test]
    fn each_bad_field_is_named_with_what_to_fix() {
        let form = SettingsForm {
            new_issues: true,
            resolved: "finished".into(),
            ignored: "wont_do".into(),
            unresolved: "todo".into(),
            user_mapping: "ada@example.com = ada@board.example\n\nnot a mapping\nbob@example.com = nobody\nADA@example.com = x@y.z"
                .into(),
        };
        let errors = form.parse().unwrap_err();
        let named: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.message.as_str())).collect();
        assert_eq!(
            named,
            [
                ("resolved", "\"finished\" is not a ticket status (todo, in_progress, done, wont_do)."),
                ("user_mapping", "Line 3: is not `sentry email = board email`."),
                ("user_mapping", "Line 4: \"nobody\" is not an email address."),
                ("user_mapping", "Line 5: maps ada@example.com a second time."),
            ]
        );
    }
}
