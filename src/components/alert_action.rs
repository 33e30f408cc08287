//! The alert-rule action's settings (docs/sentry-protocol.md §3.5): what a
//! person chose when adding "Open an issuebridge ticket" to a Sentry alert
//! rule, checked when Sentry saves the rule and applied when it fires.
//!
//! Sentry shows a refusal's `message` under the rule, prefixed with the
//! app's name, and does not save the rule: each message says what to fix.

use super::definition::{field, TITLE_PLACEHOLDERS};
use crate::domain::team::{member_email, TeamKey};
use crate::domain::ticket::TicketStatus;
use crate::sentry::payload::{setting, Setting};

/// The settings of one alert-rule action, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertActionSettings {
    pub team: TeamKey,
    pub assignee: Option<String>,
    /// A title with placeholders; `None` uses the title.
    pub title_template: Option<String>,
    /// Where a new ticket starts: to do or in progress.
    pub status: TicketStatus,
}

/// A refusal to show to the person saving the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

impl AlertActionSettings {
    /// Reads the settings as the rule saved them. The team must be given;
    /// the rest may be blank.
    pub fn parse(fields: &[Setting]) -> Result<Self, SettingsError> {
        let team = setting(fields, field::TEAM)
            .ok_or_else(|| SettingsError("choose the team whose board gets the tickets".into()))?;
        let team = TeamKey::parse(team).map_err(|_| SettingsError(format!("{team:?} is not a team key")))?;
        let assignee = setting(fields, field::ASSIGNEE)
            .map(|raw| member_email(raw).map_err(|e| SettingsError(format!("assignee: {e}"))))
            .transpose()?;
        let title_template = setting(fields, field::TITLE).map(str::to_owned);
        if let Some(template) = &title_template {
            check_template(template)?;
        }
        let status =
            match setting(fields, field::STATUS) {
                None => TicketStatus::Todo,
                Some(raw) => raw.parse::<TicketStatus>().ok().filter(|s| s.is_open()).ok_or_else(|| {
                    SettingsError(format!("an alert opens tickets to do or in progress, not {raw:?}"))
                })?,
            };
        Ok(Self { team, assignee, title_template, status })
    }

    /// What saving the rule will make happen, in a sentence Sentry shows.
    pub fn describe(&self, team_name: &str) -> String {
        let mut text = format!("alerts will open tickets on {team_name} ({})", self.team);
        if let Some(assignee) = &self.assignee {
            text.push_str(&format!(", assigned to {assignee}"));
        }
        if self.status != TicketStatus::Todo {
            text.push_str(&format!(", {}", self.status.label().to_lowercase()));
        }
        if let Some(template) = &self.title_template {
            text.push_str(&format!(", titled \u{201c}{template}\u{201d}"));
        }
        text.push('.');
        text
    }
}

/// A template may use only the known placeholders, and must give a title.
pub fn check_template(template: &str) -> Result<(), SettingsError> {
    if template.chars().count() > 200 {
        return Err(SettingsError("the title template must be at most 200 characters".into()));
    }
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open..];
        let close = after.find('}').ok_or_else(|| SettingsError("the title template has a { without its }".into()))?;
        let placeholder = &after[..=close];
        if !TITLE_PLACEHOLDERS.contains(&placeholder) {
            return Err(SettingsError(format!(
                "the title template uses {placeholder}, which is not one of {}",
                TITLE_PLACEHOLDERS.join(", ")
            )));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// What a title template's placeholders stand for.
#[derive(Debug, Clone, Copy, Default)]
pub struct TitleFacts<'a> {
    pub title: &'a str,
    pub culprit: &'a str,
    pub project: &'a str,
    pub level: &'a str,
    pub rule: &'a str,
}

/// The title a template gives for an alert; an empty result falls back to
/// the alert's own title.
pub fn render_title(template: &str, facts: &TitleFacts<'_>) -> String {
    let rendered = template
        .replace("{title}", facts.title)
        .replace("{culprit}", facts.culprit)
        .replace("{project}", facts.project)
        .replace("{level}", facts.level)
        .replace("{rule}", facts.rule);
    let trimmed = rendered.trim();
    if trimmed.is_empty() {
        facts.title.to_owned()
    } else {
        trimmed.chars().take(500).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<Setting> {
        pairs.iter().map(|(n, v)| Setting { name: (*n).into(), value: Some((*v).into()), label: None }).collect()
    }

    #[test]
    fn valid_settings_parse_and_say_what_will_happen() {
        let settings = AlertActionSettings::parse(&fields(&[
            ("team", "eng"),
            ("assignee", "Ada@Example.com"),
            ("title", "[{level}] {title}"),
            ("status", "in_progress"),
        ]))
        .unwrap();
        assert_eq!(settings.team.as_str(), "ENG");
        assert_eq!(settings.assignee.as_deref(), Some("ada@example.com"));
        assert_eq!(settings.status, TicketStatus::InProgress);
        assert_eq!(
            settings.describe("Engineering"),
            "alerts will open tickets on Engineering (ENG), assigned to ada@example.com, in progress, titled “[{level}] {title}”."
        );
        let minimal = AlertActionSettings::parse(&fields(&[("team", "ENG"), ("assignee", " ")])).unwrap();
        assert_eq!((minimal.assignee, minimal.title_template, minimal.status), (None, None, TicketStatus::Todo));
    }

    #[test]
    fn each_invalid_setting_is_named() {
        for (pairs, words) in [
            (vec![], "choose the team"),
            (vec![("team", "e")], "not a team key"),
            (vec![("team", "ENG"), ("assignee", "ada")], "assignee"),
            (vec![("team", "ENG"), ("title", "{title} in {server}")], "{server}"),
            (vec![("team", "ENG"), ("title", "{title")], "without its }"),
            (vec![("team", "ENG"), ("status", "done")], "to do or in progress"),
        ] {
            let err = AlertActionSettings::parse(&fields(&pairs)).unwrap_err().to_string();
            assert!(err.contains(words), "{err:?} should contain {words:?}");
        }
    }

    #[test]
    fn templates_fill_every_placeholder() {
        let facts =
            TitleFacts { title: "TypeError", culprit: "app.views", project: "backend", level: "error", rule: "Paging" };
        assert_eq!(
            render_title("[{project}/{level}] {title} at {culprit} ({rule})", &facts),
            "[backend/error] TypeError at app.views (Paging)"
        );
        assert_eq!(render_title("{culprit}", &TitleFacts { title: "T", ..Default::default() }), "T");
    }
}
