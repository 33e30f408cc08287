//! Property tests over every parser of outside input: no input makes one
//! panic, and what each accepts keeps its promises. `make test` runs a few
//! hundred cases of each; `make fuzz` runs `ISSUEBRIDGE_FUZZ_CASES` of
//! each (the Makefile says how many that is in all).

use std::collections::HashMap;

use issuebridge::components::alert_action::{check_template, render_title, AlertActionSettings, TitleFacts};
use issuebridge::components::requests::{AlertRuleActionBody, IssueLinkBody, SelectQuery};
use issuebridge::components::stacktrace::{best_mapping, line_number, normalize_path, MappingForm};
use issuebridge::domain::ids::{InstallationUuid, OrgSlug, SentryIssueId};
use issuebridge::domain::outbox::{comment_text, TicketEdit};
use issuebridge::domain::team::{TeamKey, TicketKey};
use issuebridge::domain::webhooks::Resource;
use issuebridge::fuzz::{body, config, json, text};
use issuebridge::sentry::payload::{
    CommentData, Envelope, ErrorData, EventAlertData, IssueData, MetricAlertData, ServiceHookPayload,
};
use issuebridge::sentry::signature::{sign, Signature};
use proptest::prelude::*;
use serde_json::Value;

proptest! {
    #![proptest_config(config(512))]

    /// Signature headers: anything parses or is refused; a parsed one
    /// verifies only the body it was made over.
    #[test]
    fn signature_headers(header in text(), body in body()) {
        if let Ok(signature) = Signature::parse(&header) {
            let _ = signature.verifies(b"secret", &body);
        }
        let made = sign(b"secret", &body);
        let parsed = Signature::parse(&made).expect("our own signature parses");
        prop_assert!(parsed.verifies(b"secret", &body));
        prop_assert!(!parsed.verifies(b"other", &body));
    }

    /// Webhook bodies, as every handler reads them.
    #[test]
    fn webhook_payloads(bytes in body()) {
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        if let Some(value) = &parsed {
            for resource in Resource::ALL {
                let _ = resource.carried_by(value);
            }
        }
        if let Ok(issue) = serde_json::from_slice::<Envelope<IssueData>>(&bytes) {
            let _ = issue.data.issue.page_url();
            let _ = issue.actor.map(|a| a.is_this_app());
        }
        let _ = serde_json::from_slice::<Envelope<CommentData>>(&bytes);
        if let Ok(error) = serde_json::from_slice::<Envelope<ErrorData>>(&bytes) {
            let event = &error.data.error;
            let _ = (event.project_slug(), event.key(), event.issue(), event.display_title());
        }
        let _ = serde_json::from_slice::<Envelope<EventAlertData>>(&bytes);
        if let Ok(alert) = serde_json::from_slice::<Envelope<MetricAlertData>>(&bytes) {
            let _ = alert.data.settings_for(&alert.action, "x");
            let _ = alert.data.display_title();
        }
        let _ = serde_json::from_slice::<ServiceHookPayload>(&bytes);
        let _ = serde_json::from_slice::<issuebridge::installations::install::InstallationWebhook>(&bytes);
    }

    /// Issue-link and alert-rule bodies, then the checks their fields go through.
    #[test]
    fn component_bodies(bytes in body(), fields in json()) {
        for candidate in [bytes, serde_json::to_vec(&serde_json::json!({
            "fields": fields, "installationId": "7a485448-a9e2-4c85-8a3c-4f44175783c9", "issueId": 1
        })).unwrap()] {
            if let Ok(link) = IssueLinkBody::parse(&candidate) {
                if let Ok(fields) = link.new_ticket() {
                    prop_assert!(!fields.title.trim().is_empty());
                    prop_assert!(fields.title.chars().count() <= 500);
                }
            }
            if let Ok(rule) = AlertRuleActionBody::parse(&candidate) {
                let _ = AlertActionSettings::parse(&rule.fields);
            }
        }
    }

    /// Select requests: `dependentData` is JSON text inside a query string.
    #[test]
    fn select_queries(dependent in prop_oneof![text(), json().prop_map(|v| v.to_string())], typed in text()) {
        let query = SelectQuery {
            installation_id: Some(typed.clone()),
            project_slug: Some(typed.clone()),
            query: Some(typed),
            dependent_data: Some(dependent),
        };
        let _ = query.installation();
        let _ = query.typed();
        if let Ok(values) = query.dependent() {
            prop_assert!(values.values().all(|v| !v.is_empty() || v.is_empty()));
        }
    }

    /// Stack-frame filenames: a path in the repository never climbs out of
    /// it, names no scheme, and has no empty segment.
    #[test]
    fn stacktrace_filenames(filename in text(), line in text()) {
        if let Ok(path) = normalize_path(&filename) {
            prop_assert!(!path.starts_with('/'), "{path}");
            prop_assert!(path.split('/').all(|segment| segment != ".." && (path.is_empty() || !segment.is_empty())), "{path}");
            prop_assert!(!path.contains("://"), "{path}");
            prop_assert!(!path.chars().any(char::is_control), "{path}");
        }
        let form = MappingForm {
            project_slug: "web".into(),
            stack_root: "src".into(),
            source_root: "app".into(),
            provider: "github".into(),
            repo_url: "https://github.com/acme/web".into(),
            branch: "main".into(),
        };
        let mapping = form.parse().expect("a valid mapping");
        if let Some((found, repo_path)) = best_mapping(std::slice::from_ref(&mapping), Some("web"), &filename) {
            let url = found.file_url(&repo_path, line_number(Some(&line)));
            prop_assert!(url.starts_with("https://github.com/acme/web/blob/main/"), "{url}");
        }
    }

    /// Code mappings as the console's form sends them.
    #[test]
    fn mapping_forms(parts in proptest::collection::vec(text(), 6)) {
        let form = MappingForm {
            project_slug: parts[0].clone(),
            stack_root: parts[1].clone(),
            source_root: parts[2].clone(),
            provider: parts[3].clone(),
            repo_url: parts[4].clone(),
            branch: parts[5].clone(),
        };
        if let Ok(mapping) = form.parse() {
            prop_assert!(mapping.repo_url.starts_with("http"));
        }
    }

    /// Identifiers: what parses prints back as itself.
    #[test]
    fn identifiers(raw in text()) {
        if let Ok(uuid) = InstallationUuid::parse(&raw) {
            prop_assert_eq!(InstallationUuid::parse(uuid.as_str()).unwrap(), uuid);
        }
        if let Ok(slug) = OrgSlug::parse(&raw) {
            prop_assert_eq!(OrgSlug::parse(slug.as_str()).unwrap(), slug);
        }
        if let Ok(id) = SentryIssueId::parse(&raw) {
            prop_assert_eq!(SentryIssueId::parse(id.as_str()).unwrap(), id);
        }
        if let Ok(team) = TeamKey::parse(&raw) {
            prop_assert_eq!(TeamKey::parse(&team.to_string()).unwrap(), team);
        }
        if let Ok(key) = raw.parse::<TicketKey>() {
            prop_assert_eq!(key.to_string().parse::<TicketKey>().unwrap(), key);
        }
        let _ = raw.parse::<Resource>();
    }

    /// Dates in Sentry's two forms, and whatever else comes.
    #[test]
    fn datetimes(raw in text()) {
        let _ = issuebridge::sentry::api::parse_datetime_ms(&raw);
        let _ = issuebridge::domain::time::parse_utc_minutes(&raw);
    }

    /// The headers that order changes: never later than a minute after arrival.
    #[test]
    fn change_order(headers in prop_oneof![json().prop_map(|v| v.to_string()), text()], received in any::<i64>()) {
        let delivery = issuebridge::store::ClaimedDelivery {
            id: 1,
            received_at: received,
            resource: "issue".into(),
            action: None,
            installation_uuid: None,
            headers,
            body: Vec::new(),
            attempts: 1,
        };
        let order = issuebridge::pipeline::apply::change_order(&delivery);
        prop_assert!(order.sent_at_ms <= received.saturating_add(60_000));
    }

    /// Console input: ticket edits, comments, Markdown and title templates.
    #[test]
    fn console_text(title in text(), description in text(), template in text()) {
        let edit = TicketEdit { title: Some(title.clone()), description: Some(description.clone()), ..Default::default() };
        if let Ok(edit) = edit.checked() {
            prop_assert!(edit.title.is_none_or(|t| !t.trim().is_empty()));
        }
        let _ = comment_text(&description);
        let html = issuebridge::markdown::render(&description);
        prop_assert!(!html.to_ascii_lowercase().contains("<script"), "{html}");
        prop_assert!(!html.to_ascii_lowercase().contains("href=\"javascript:"), "{html}");
        if check_template(&template).is_ok() {
            let facts = TitleFacts { title: &title, culprit: "c", project: "p", level: "error", rule: "r" };
            prop_assert!(render_title(&template, &facts).chars().count() <= 500);
        }
    }

    /// Every configuration variable, set to anything: a value or a named
    /// refusal, never a panic (the data folder stays in a temporary one).
    #[test]
    fn configuration_values(values in proptest::collection::vec(text(), issuebridge::config::ENV_VARS.len())) {
        static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
        let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
        let mut vars: HashMap<&str, String> = issuebridge::config::ENV_VARS
            .iter()
            .zip(values)
            .filter(|(var, _)| var.name != "ISSUEBRIDGE_DATA_DIR")
            .map(|(var, value)| (var.name, value))
            .collect();
        vars.insert("ISSUEBRIDGE_DATA_DIR", dir.path().display().to_string());
        if let Err(error) = issuebridge::config::Config::from_lookup(|name| vars.get(name).cloned()) {
            prop_assert!(issuebridge::config::ENV_VARS.iter().any(|var| var.name == error.var), "{error}");
        }
    }
}
