//! What Sentry's webhooks carry, read tolerantly (docs/sentry-protocol.md §1.4, §1.7, §1.8).
//!
//! Sentry's payloads disagree with themselves: an issue id is a string in
//! one payload and a number in the next, URLs are missing from most issue
//! actions, dates come in two forms, lists come as `null`, and newer
//! versions add fields. So every id here is a [`LooseId`], every field that
//! a version may leave out is optional, unknown fields are ignored, and
//! dates stay text until the server parses them (this module also compiles
//! to WASM, where the date parser is not built).

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// An id that Sentry sends as a JSON string or as a JSON number; kept as
/// its decimal text, so `"100"` and `100` are the same id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LooseId(pub String);

impl LooseId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for LooseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LooseId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(text) if !text.trim().is_empty() => Ok(Self(text.trim().to_owned())),
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => Ok(Self(i.to_string())),
                (_, Some(u), _) => Ok(Self(u.to_string())),
                (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Self(format!("{f:.0}"))),
                _ => Err(serde::de::Error::custom(format!("{n} is not an id"))),
            },
            other => Err(serde::de::Error::custom(format!("expected an id, found {other}"))),
        }
    }
}

/// `null` reads as the type's default (Sentry sends `"settings": null`).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Any JSON scalar as text: `"7"`, `7` and `7.0` alike; objects and lists
/// give nothing.
fn loose_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        Some(Value::String(text)) => Some(text),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    })
}

/// Reads a payload whose text will be stored. JSON may carry NUL
/// (`\u0000`) in any string, and PostgreSQL's text columns refuse it: each
/// becomes U+FFFD, so an event message with a stray NUL still makes its
/// ticket. Only a body that holds the escape pays for the second pass.
pub fn parse_storable<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    const NUL_ESCAPE: &[u8] = b"\\u0000";
    if !bytes.windows(NUL_ESCAPE.len()).any(|window| window == NUL_ESCAPE) {
        return serde_json::from_slice(bytes);
    }
    let mut value: Value = serde_json::from_slice(bytes)?;
    storable_strings(&mut value);
    serde_json::from_value(value)
}

fn storable_strings(value: &mut Value) {
    match value {
        Value::String(text) if text.contains('\0') => *text = text.replace('\0', "\u{FFFD}"),
        Value::Array(items) => items.iter_mut().for_each(storable_strings),
        Value::Object(map) => {
            let keys_with_nul: Vec<String> = map.keys().filter(|k| k.contains('\0')).cloned().collect();
            for key in keys_with_nul {
                if let Some(item) = map.remove(&key) {
                    map.insert(key.replace('\0', "\u{FFFD}"), item);
                }
            }
            map.values_mut().for_each(storable_strings);
        }
        _ => {}
    }
}

/// The envelope every app webhook shares (docs/sentry-protocol.md §1.4).
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope<D> {
    pub action: String,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
    pub data: D,
    #[serde(default)]
    pub actor: Option<Actor>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InstallationRef {
    pub uuid: String,
}

/// Who acted: a user (numeric id), the app's own proxy user (its uuid), or
/// Sentry itself (`"sentry"`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Actor {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub id: Option<LooseId>,
    #[serde(default)]
    pub name: Option<String>,
}

impl Actor {
    /// The app acting through its own token, i.e. issuebridge itself.
    pub fn is_this_app(&self) -> bool {
        self.kind == "application" && self.id.as_ref().is_some_and(|id| id.as_str() != "sentry")
    }
}

/// `data` of `issue.*`.
#[derive(Debug, Clone, Deserialize)]
pub struct IssueData {
    pub issue: Group,
    #[serde(default)]
    pub assignee: Option<Assignee>,
    #[serde(default)]
    pub resolution_type: Option<String>,
}

/// An issue as Sentry's GroupSerializer writes it, the fields we use.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: LooseId,
    #[serde(default)]
    pub short_id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub culprit: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub substatus: Option<String>,
    #[serde(default)]
    pub project: Option<ProjectRef>,
    #[serde(default)]
    pub permalink: Option<String>,
    /// Only `issue.created` has it (docs/sentry-protocol.md §1.7).
    #[serde(default, rename = "web_url")]
    pub web_url: Option<String>,
    #[serde(default)]
    pub assigned_to: Option<Assignee>,
}

impl Group {
    /// The issue's page in Sentry, from whichever field this payload has.
    pub fn page_url(&self) -> Option<&str> {
        self.web_url.as_deref().or(self.permalink.as_deref()).filter(|url| !url.is_empty())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProjectRef {
    #[serde(default)]
    pub id: Option<LooseId>,
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// `data.assignee` of `issue.assigned`, or an issue's `assignedTo`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Assignee {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<LooseId>,
    /// Users only, and only without enhanced privacy.
    #[serde(default)]
    pub email: Option<String>,
}

/// `data` of `error.created`.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorData {
    pub error: Event,
}

/// An event as `event.as_dict()` plus Sentry's extras.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Event {
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub id: Option<LooseId>,
    /// A str in the app webhooks (docs/sentry-protocol.md §1.8).
    #[serde(default)]
    pub issue_id: Option<LooseId>,
    /// Service hooks' EventSerializer calls it this.
    #[serde(default, rename = "groupID")]
    pub group_id: Option<LooseId>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub culprit: Option<String>,
    #[serde(default)]
    pub web_url: Option<String>,
    /// The event in Sentry's API: `…/projects/{org}/{project}/events/{id}/`.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub datetime: Option<String>,
    /// Issue-platform events only; camelCased.
    #[serde(default)]
    pub occurrence: Option<Value>,
}

impl Event {
    /// The project's slug, read from the event's API address (the event
    /// itself carries only the project's numeric id).
    pub fn project_slug(&self) -> Option<&str> {
        let url = self.url.as_deref()?;
        let after = &url[url.find("/projects/")? + "/projects/".len()..];
        let mut parts = after.split('/');
        let (_org, project) = (parts.next()?, parts.next()?);
        (!project.is_empty()).then_some(project)
    }

    /// The event's own id, under whichever name this payload uses.
    pub fn key(&self) -> Option<String> {
        self.event_id.clone().filter(|id| !id.is_empty()).or_else(|| self.id.as_ref().map(|id| id.0.clone()))
    }

    /// The issue the event belongs to.
    pub fn issue(&self) -> Option<&LooseId> {
        self.issue_id.as_ref().or(self.group_id.as_ref())
    }

    /// A title for a ticket: the event's, else the occurrence's.
    pub fn display_title(&self) -> Option<String> {
        self.title.clone().filter(|t| !t.is_empty()).or_else(|| {
            let occurrence = self.occurrence.as_ref()?;
            occurrence.get("issueTitle").or_else(|| occurrence.get("title"))?.as_str().map(str::to_owned)
        })
    }
}

/// `data` of `comment.*`.
#[derive(Debug, Clone, Deserialize)]
pub struct CommentData {
    pub comment_id: LooseId,
    pub issue_id: LooseId,
    #[serde(default)]
    pub project_slug: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub comment: String,
}

/// `data` of `event_alert.triggered`.
#[derive(Debug, Clone, Deserialize)]
pub struct EventAlertData {
    pub event: Event,
    #[serde(default)]
    pub triggered_rule: Option<String>,
    /// Present only when the rule's action carries settings (docs/sentry-protocol.md §1.7).
    #[serde(default)]
    pub issue_alert: Option<IssueAlert>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct IssueAlert {
    #[serde(default)]
    pub id: Option<LooseId>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub settings: Vec<Setting>,
}

/// One field of an alert-rule-action form, as the rule saved it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Setting {
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "loose_text")]
    pub value: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
}

/// A setting's value by name, blank values counting as absent.
pub fn setting<'a>(settings: &'a [Setting], name: &str) -> Option<&'a str> {
    settings.iter().find(|s| s.name == name)?.value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `data` of `metric_alert.*`: keys are snake_case.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricAlertData {
    pub metric_alert: MetricAlert,
    #[serde(default)]
    pub description_text: Option<String>,
    #[serde(default)]
    pub description_title: Option<String>,
    #[serde(default)]
    pub web_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MetricAlert {
    pub id: LooseId,
    #[serde(default)]
    pub identifier: Option<LooseId>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub projects: Vec<String>,
    #[serde(default)]
    pub alert_rule: Option<AlertRule>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AlertRule {
    #[serde(default)]
    pub id: Option<LooseId>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub triggers: Vec<Trigger>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Trigger {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub actions: Vec<TriggerAction>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TriggerAction {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub sentry_app_installation_uuid: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub settings: Vec<Setting>,
}

impl MetricAlertData {
    /// This installation's action settings for the trigger the webhook's
    /// action names, the way Sentry's example app finds them: the trigger
    /// whose label is the action, then the action whose installation is
    /// ours. `resolved` and `open` name no trigger; any of ours serves.
    pub fn settings_for(&self, action: &str, installation: &str) -> Vec<Setting> {
        let Some(rule) = &self.metric_alert.alert_rule else { return Vec::new() };
        let ours = |trigger: &Trigger| {
            trigger
                .actions
                .iter()
                .find(|a| a.sentry_app_installation_uuid.as_deref() == Some(installation))
                .map(|a| a.settings.clone())
        };
        rule.triggers
            .iter()
            .filter(|t| t.label.as_deref() == Some(action))
            .find_map(ours)
            .or_else(|| rule.triggers.iter().find_map(ours))
            .unwrap_or_default()
    }

    /// A title for the alert's ticket.
    pub fn display_title(&self) -> String {
        let alert = &self.metric_alert;
        alert
            .title
            .clone()
            .filter(|t| !t.is_empty())
            .or_else(|| alert.alert_rule.as_ref()?.name.clone())
            .unwrap_or_else(|| format!("Metric alert {}", alert.id))
    }
}

/// A project service hook's body, payload version 0 (docs/sentry-protocol.md §7).
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceHookPayload {
    #[serde(default)]
    pub project: Option<ProjectRef>,
    #[serde(default)]
    pub group: Option<Group>,
    #[serde(default)]
    pub event: Option<Event>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_in_any_string_becomes_storable() {
        let body = br#"{"a\u0000": ["x\u0000y", {"k": "\u0000"}], "plain": "\\u0000 is text"}"#;
        let value: Value = parse_storable(body).unwrap();
        assert_eq!(value, json!({"a\u{FFFD}": ["x\u{FFFD}y", {"k": "\u{FFFD}"}], "plain": "\\u0000 is text"}));
        let untouched: Value = parse_storable(br#"{"a": "b"}"#).unwrap();
        assert_eq!(untouched, json!({"a": "b"}));
    }

    #[test]
    fn ids_read_the_same_from_strings_and_numbers() {
        let from_str: LooseId = serde_json::from_value(json!("100")).unwrap();
        let from_int: LooseId = serde_json::from_value(json!(100)).unwrap();
        let from_float: LooseId = serde_json::from_value(json!(100.0)).unwrap();
        assert_eq!(from_str, from_int);
        assert_eq!(from_int, from_float);
        assert!(serde_json::from_value::<LooseId>(json!(null)).is_err());
        assert!(serde_json::from_value::<LooseId>(json!("")).is_err());
        assert!(serde_json::from_value::<LooseId>(json!(1.5)).is_err());
    }

    #[test]
    fn actors_tell_the_app_from_sentry_and_users() {
        let actor = |v| serde_json::from_value::<Actor>(v).unwrap();
        assert!(actor(json!({"type": "application", "id": "4f1d…", "name": "issuebridge"})).is_this_app());
        assert!(!actor(json!({"type": "application", "id": "sentry", "name": "Sentry"})).is_this_app());
        assert!(!actor(json!({"type": "user", "id": 1, "name": "Ada"})).is_this_app());
    }

    #[test]
    fn comments_take_int_or_string_ids_and_null_text() {
        let data: CommentData = serde_json::from_value(json!({
            "comment_id": 9001, "issue_id": "100", "timestamp": "2022-03-02T21:51:44.118160Z", "comment": null
        }))
        .unwrap();
        assert_eq!(data.comment_id.as_str(), "9001");
        assert_eq!(data.issue_id.as_str(), "100");
        assert_eq!(data.comment, "");
    }

    #[test]
    fn settings_values_may_be_numbers_and_lists_may_be_null() {
        let alert: IssueAlert = serde_json::from_value(json!({
            "id": "12", "settings": [{"name": "assignee", "value": "ada@example.com"}, {"name": "points", "value": 3}]
        }))
        .unwrap();
        assert_eq!(setting(&alert.settings, "points"), Some("3"));
        assert_eq!(setting(&alert.settings, "assignee"), Some("ada@example.com"));
        assert_eq!(setting(&alert.settings, "missing"), None);
        let empty: IssueAlert = serde_json::from_value(json!({"id": 1, "settings": null})).unwrap();
        assert!(empty.settings.is_empty());
    }

    #[test]
    fn metric_alert_settings_come_from_the_matching_trigger_and_installation() {
        let action = |uuid: &str, team: &str| {
            json!({"type": "sentry_app", "sentry_app_installation_uuid": uuid,
                   "settings": [{"name": "team", "label": "Team", "value": team}]})
        };
        let data: MetricAlertData = serde_json::from_value(json!({
            "metric_alert": {"id": "42", "title": "Too many errors", "alert_rule": {"name": "Errors", "triggers": [
                {"label": "critical", "actions": [action("other", "x"), action("ours", "crit")]},
                {"label": "warning", "actions": [action("ours", "warn")]}
            ]}},
            "description_text": "1000 events"
        }))
        .unwrap();
        assert_eq!(setting(&data.settings_for("critical", "ours"), "team"), Some("crit"));
        assert_eq!(setting(&data.settings_for("warning", "ours"), "team"), Some("warn"));
        assert_eq!(setting(&data.settings_for("resolved", "ours"), "team"), Some("crit"));
        assert!(data.settings_for("critical", "nobody").is_empty());
        assert_eq!(data.display_title(), "Too many errors");
    }

    #[test]
    fn events_find_their_issue_and_id_under_either_name() {
        let hook: Event =
            serde_json::from_value(json!({"id": "abc", "groupID": 7, "occurrence": {"issueTitle": "Slow DB"}}))
                .unwrap();
        assert_eq!(hook.key().as_deref(), Some("abc"));
        assert_eq!(hook.issue().map(LooseId::as_str), Some("7"));
        assert_eq!(hook.display_title().as_deref(), Some("Slow DB"));
    }
}
