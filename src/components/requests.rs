//! What Sentry sends to the component endpoints, parsed once
//! (docs/sentry-protocol.md §3.3–3.5). Every refusal is a sentence Sentry
//! can show to the person in front of the form.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::definition::field;
use crate::domain::ids::{InstallationUuid, SentryIssueId};
use crate::domain::team::{member_email, TeamKey};
use crate::domain::ticket::TicketStatus;
use crate::sentry::payload::Setting;

/// A refusal of a request's content (400 `{"message"}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadComponentRequest(pub String);

fn bad(message: impl Into<String>) -> BadComponentRequest {
    BadComponentRequest(message.into())
}

/// The query of a select request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SelectQuery {
    #[serde(rename = "installationId", default)]
    pub installation_id: Option<String>,
    #[serde(rename = "projectSlug", default)]
    pub project_slug: Option<String>,
    #[serde(default)]
    pub query: Option<String>,
    /// JSON text of `{field: value}` for the fields this one depends on.
    #[serde(rename = "dependentData", default)]
    pub dependent_data: Option<String>,
}

impl SelectQuery {
    pub fn installation(&self) -> Result<InstallationUuid, BadComponentRequest> {
        installation(self.installation_id.as_deref())
    }

    /// What was typed, trimmed; `None` when nothing was.
    pub fn typed(&self) -> Option<&str> {
        // Text with NUL is nothing anyone typed (and no database takes it).
        self.query.as_deref().map(str::trim).filter(|q| !q.is_empty() && !q.contains('\0'))
    }

    /// `dependentData`, read as Sentry encodes it: a JSON object of strings
    /// (or numbers). Absent or empty means no dependency was chosen.
    pub fn dependent(&self) -> Result<BTreeMap<String, String>, BadComponentRequest> {
        let Some(raw) = self.dependent_data.as_deref().filter(|d| !d.trim().is_empty()) else {
            return Ok(BTreeMap::new());
        };
        let value: Value =
            serde_json::from_str(raw).map_err(|_| bad("dependentData must be a JSON object of field values"))?;
        let Value::Object(map) = value else { return Err(bad("dependentData must be a JSON object of field values")) };
        map.into_iter()
            .filter_map(|(key, value)| match value {
                Value::String(s) => Some(Ok((key, s))),
                Value::Number(n) => Some(Ok((key, n.to_string()))),
                Value::Null => None,
                _ => Some(Err(bad(format!("dependentData.{key} must be a text value")))),
            })
            .collect()
    }

    /// The team the assignee select depends on.
    pub fn team(&self) -> Result<Option<TeamKey>, BadComponentRequest> {
        match self.dependent()?.get(field::TEAM).map(|t| t.trim()).filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(raw) => TeamKey::parse(raw).map(Some).map_err(|_| bad(format!("{raw:?} is not a team key"))),
        }
    }
}

fn installation(raw: Option<&str>) -> Result<InstallationUuid, BadComponentRequest> {
    let raw = raw.ok_or_else(|| bad("installationId is missing"))?;
    InstallationUuid::parse(raw).map_err(|e| bad(e.to_string()))
}

/// One option of a select, as Sentry reads it: `value` a string.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct SelectOption {
    pub label: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
}

/// The most options one select answers with: Sentry draws them all.
pub const MAX_OPTIONS: usize = 50;

/// The body of an issue-link create or link request.
#[derive(Debug, Clone, Deserialize)]
pub struct IssueLinkBody {
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
    #[serde(rename = "issueId")]
    pub issue_id: SentryIssueId,
    #[serde(rename = "installationId")]
    pub installation_id: InstallationUuid,
    #[serde(rename = "webUrl", default)]
    pub web_url: Option<String>,
    #[serde(default)]
    pub project: Option<IssueLinkProject>,
    #[serde(default)]
    pub actor: Option<IssueLinkActor>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IssueLinkProject {
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub id: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IssueLinkActor {
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default)]
    pub name: Option<String>,
}

impl IssueLinkBody {
    pub fn parse(body: &[u8]) -> Result<Self, BadComponentRequest> {
        serde_json::from_slice(body).map_err(|e| bad(format!("the request is not an issue-link body: {e}")))
    }

    /// A form field as text: strings as sent, numbers written out, blank and
    /// absent alike.
    pub fn field(&self, name: &str) -> Option<String> {
        match self.fields.get(name)? {
            // NUL cannot be stored (PostgreSQL's text refuses it).
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().replace('\0', "\u{FFFD}")),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The fields of a create, checked.
    pub fn new_ticket(&self) -> Result<NewTicketFields, BadComponentRequest> {
        let title = self.field(field::TITLE).ok_or_else(|| bad("a title is required"))?;
        if title.chars().count() > 500 {
            return Err(bad("the title must be at most 500 characters"));
        }
        let description = self.field(field::DESCRIPTION).unwrap_or_default();
        if description.len() > 64 * 1024 {
            return Err(bad("the description must be at most 64 KB"));
        }
        let team = match self.field(field::TEAM) {
            None => None,
            Some(raw) => Some(TeamKey::parse(&raw).map_err(|_| bad(format!("{raw:?} is not a team key")))?),
        };
        let assignee =
            self.field(field::ASSIGNEE).map(|raw| member_email(&raw).map_err(|e| bad(e.to_string()))).transpose()?;
        let status = match self.field(field::STATUS) {
            None => TicketStatus::Todo,
            Some(raw) => raw.parse().map_err(|_| bad(format!("{raw:?} is not a ticket status")))?,
        };
        Ok(NewTicketFields { title, description, team, assignee, status })
    }
}

/// A create's fields, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicketFields {
    pub title: String,
    pub description: String,
    pub team: Option<TeamKey>,
    pub assignee: Option<String>,
    pub status: TicketStatus,
}

/// The body of an alert-rule-action settings request.
#[derive(Debug, Clone, Deserialize)]
pub struct AlertRuleActionBody {
    #[serde(default)]
    pub fields: Vec<Setting>,
    #[serde(rename = "installationId")]
    pub installation_id: InstallationUuid,
}

impl AlertRuleActionBody {
    pub fn parse(body: &[u8]) -> Result<Self, BadComponentRequest> {
        serde_json::from_slice(body).map_err(|e| bad(format!("the request is not an alert-rule settings body: {e}")))
    }
}

/// What trying an issue-link form in the console came to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct IssueLinkOutcome {
    /// The component's HTTP status, as Sentry would have seen it.
    pub status: u16,
    /// On success: the ticket's identifier and page.
    pub identifier: Option<String>,
    pub web_url: Option<String>,
    /// On failure: the `message` Sentry would show.
    pub message: Option<String>,
}

/// What trying alert-rule settings in the console came to: Sentry saves
/// the rule only when `saved`, and shows `message` either way.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct AlertSettingsOutcome {
    pub status: u16,
    pub saved: bool,
    pub message: String,
}

/// An installation the console lists, with what the person may do there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct ConsoleInstallation {
    pub uuid: String,
    pub org_slug: String,
    pub can_manage: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependent_data_is_a_json_object_of_values() {
        let query = |raw: &str| SelectQuery { dependent_data: Some(raw.into()), ..Default::default() };
        assert_eq!(query(r#"{"team":"eng"}"#).team().unwrap().unwrap().as_str(), "ENG");
        assert_eq!(query(r#"{"team":null}"#).team().unwrap(), None);
        assert_eq!(query("").team().unwrap(), None);
        for bad in ["{", "[1]", r#"{"team":["eng"]}"#, r#"{"team":"e"}"#, "\"eng\""] {
            assert!(query(bad).team().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn issue_link_bodies_take_sentrys_int_ids_and_check_fields() {
        let body = br#"{"fields":{"title":"Boom","team":"eng","status":"in_progress","assignee":""},"issueId":1170820242,
            "installationId":"7a485448-a9e2-4c85-8a3c-4f44175783c9","webUrl":"https://sentry.io/organizations/acme/issues/1170820242/",
            "project":{"slug":"frontend","id":456},"actor":{"type":"user","id":1,"name":"Jane"}}"#;
        let parsed = IssueLinkBody::parse(body).unwrap();
        assert_eq!(parsed.issue_id.as_str(), "1170820242");
        let fields = parsed.new_ticket().unwrap();
        assert_eq!(fields.team.unwrap().as_str(), "ENG");
        assert_eq!((fields.assignee, fields.status), (None, TicketStatus::InProgress));
        for broken in [&b"{"[..], b"[]", br#"{"issueId":"x","installationId":"7a485448-a9e2-4c85-8a3c-4f44175783c9"}"#]
        {
            assert!(IssueLinkBody::parse(broken).is_err());
        }
        let untitled = IssueLinkBody::parse(
            br#"{"fields":{"title":"  "},"issueId":1,"installationId":"7a485448-a9e2-4c85-8a3c-4f44175783c9"}"#,
        )
        .unwrap();
        assert_eq!(untitled.new_ticket().unwrap_err().to_string(), "a title is required");
    }
}
