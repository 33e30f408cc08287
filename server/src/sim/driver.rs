//! The simulated Sentry acting towards a running app: signed webhooks and
//! UI-component requests, built exactly as Sentry builds them (docs/sentry-protocol.md §1.2,
//! §1.3, §3): compact `ensure_ascii` JSON, `Request-ID`, the `Sentry-Hook-*`
//! headers on webhooks and `Sentry-App-Signature` on component requests.

use std::time::Duration;

use issuebridge::domain::time::now_ms;
use issuebridge::sentry::signature::sign;
use issuebridge::sentry::wire::to_sentry_json;
use serde_json::{json, Value};
use url::Url;

use super::{random_hex, PendingInstall, SimApp, Simulator};

/// Sentry's `User-Agent` on outgoing requests.
pub const SENTRY_USER_AGENT: &str = "sentry/26.1.0 (https://sentry.io)";

/// A request Sentry would send, ready to be sent (or inspected).
#[derive(Debug, Clone)]
pub struct SignedRequest {
    pub method: reqwest::Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Sentry's own timeout: 1 s for webhooks, 30 s for components.
    pub timeout: Duration,
}

impl SignedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Sends it as Sentry does: no redirects followed.
    pub async fn send(&self) -> reqwest::Result<reqwest::Response> {
        let client =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(self.timeout).build()?;
        let mut request = client.request(self.method.clone(), self.url.clone()).body(self.body.clone());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request.send().await
    }
}

/// `{"type":"application","id":"sentry","name":"Sentry"}`: automatic actions.
pub fn sentry_actor() -> Value {
    json!({ "type": "application", "id": "sentry", "name": "Sentry" })
}

/// A person; Sentry sends user ids as JSON integers.
pub fn user_actor(id: i64, name: &str) -> Value {
    json!({ "type": "user", "id": id, "name": name })
}

/// `installation.created` / `installation.deleted` data, key order as Sentry's.
pub fn installation_data(
    app: &SimApp,
    sentry_app_id: i64,
    org_slug: &str,
    org_id: i64,
    installation: &str,
    status: &str,
    code: Option<&str>,
) -> Value {
    let mut inner = json!({
        "app": { "uuid": app.uuid, "slug": app.slug, "sentryAppId": sentry_app_id },
        "organization": { "slug": org_slug, "id": org_id },
        "uuid": installation,
        "status": status,
    });
    if let Some(code) = code {
        inner["code"] = json!(code);
    }
    json!({ "installation": inner })
}

impl Simulator {
    /// A webhook as Sentry signs it: envelope keys `action`, `installation`,
    /// `data`, `actor` in that order, HMAC over the exact body.
    pub fn webhook(
        &self,
        url: &Url,
        resource: &str,
        action: &str,
        installation: &str,
        data: Value,
        actor: Value,
    ) -> SignedRequest {
        let envelope = json!({
            "action": action,
            "installation": { "uuid": installation },
            "data": data,
            "actor": actor,
        });
        let body = to_sentry_json(&envelope);
        let signature = sign(self.app().client_secret.as_bytes(), &body);
        SignedRequest {
            method: reqwest::Method::POST,
            url: url.clone(),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Request-ID".into(), random_hex(16)),
                ("Sentry-Hook-Resource".into(), resource.into()),
                ("Sentry-Hook-Timestamp".into(), (now_ms() / 1000).to_string()),
                ("Sentry-Hook-Signature".into(), signature),
                ("User-Agent".into(), SENTRY_USER_AGENT.into()),
            ],
            body,
            timeout: Duration::from_secs(1),
        }
    }

    /// `installation.created` for a new installation, with its grant code
    /// while the code is unspent: how an app without a Redirect URL learns
    /// it. Like Sentry's task, each call (a retry too) serializes the
    /// installation as it is now.
    pub fn installation_created(&self, webhook_url: &Url, pending: &PendingInstall, actor: Value) -> SignedRequest {
        let installation = self.installation(&pending.installation).expect("a known installation");
        let code = self.grant_unspent(&pending.code).then_some(pending.code.as_str());
        let data = installation_data(
            self.app(),
            1,
            &installation.org_slug,
            installation.org_id,
            &installation.uuid,
            &installation.status,
            code,
        );
        self.webhook(webhook_url, "installation", "created", &installation.uuid, data, actor)
    }

    /// A person uninstalls the app in Sentry: the installation goes to
    /// pending deletion, its tokens die, and Sentry sends
    /// `installation.deleted` (once, never retried).
    pub fn uninstall(&self, webhook_url: &Url, installation: &str, actor: Value) -> SignedRequest {
        self.mark_uninstalled(installation);
        self.installation_deleted(webhook_url, installation, actor)
    }

    /// `installation.deleted`, as sent after an uninstall (no code).
    pub fn installation_deleted(&self, webhook_url: &Url, installation: &str, actor: Value) -> SignedRequest {
        let record = self.installation(installation).expect("a known installation");
        let data =
            installation_data(self.app(), 1, &record.org_slug, record.org_id, &record.uuid, &record.status, None);
        self.webhook(webhook_url, "installation", "deleted", installation, data, actor)
    }

    /// A select-options request: a GET whose signature covers the empty
    /// string, with the query replaced as Sentry does.
    pub fn select_request(
        &self,
        webhook_url: &Url,
        uri: &str,
        installation: &str,
        project_slug: Option<&str>,
        query: Option<&str>,
        dependent_data: Option<&Value>,
    ) -> SignedRequest {
        let mut url = webhook_url.clone();
        url.set_path(uri);
        url.set_query(None);
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("installationId", installation);
            if let Some(project) = project_slug {
                pairs.append_pair("projectSlug", project);
            }
            if let Some(query) = query {
                pairs.append_pair("query", query);
            }
            if let Some(dependent) = dependent_data {
                pairs.append_pair("dependentData", &dependent.to_string());
            }
        }
        self.component_request(reqwest::Method::GET, url, Vec::new())
    }

    /// An issue-link create/link request: POST to the webhook host with the
    /// given `uri`, the webhook URL's path, query and fragment dropped.
    pub fn issue_link_request(&self, webhook_url: &Url, uri: &str, body: &Value) -> SignedRequest {
        let mut url = webhook_url.clone();
        url.set_path(uri);
        url.set_query(None);
        url.set_fragment(None);
        self.component_request(reqwest::Method::POST, url, to_sentry_json(body))
    }

    /// The body Sentry posts to an issue-link `uri` for one of its issues,
    /// with the form's `fields` as the frontend sent them: `issueId`,
    /// `project.id` and `actor.id` are ints, keys in Sentry's order
    /// (docs/sentry-protocol.md §3.4).
    pub fn issue_link_body(&self, installation: &str, issue_id: &str, fields: Value, actor: Value) -> Value {
        let issue = self.issue(issue_id).expect("a known issue");
        let web_url = format!("{}organizations/{}/issues/{}/", self.base_url(), issue.org_slug, issue.id);
        // Sentry's project ids are ints; the simulator derives a stable one.
        let project_id = issue.project_slug.bytes().fold(7_i64, |h, b| h * 31 % 1_000_003 + i64::from(b));
        json!({
            "fields": fields,
            "issueId": issue.id.parse::<i64>().expect("numeric issue ids"),
            "installationId": installation,
            "webUrl": web_url,
            "project": {"slug": issue.project_slug, "id": project_id},
            "actor": actor,
        })
    }

    /// An alert-rule-action request: the webhook URL's query is kept.
    pub fn alert_rule_action_request(&self, webhook_url: &Url, uri: &str, body: &Value) -> SignedRequest {
        let mut url = webhook_url.clone();
        url.set_path(uri);
        self.component_request(reqwest::Method::POST, url, to_sentry_json(body))
    }

    fn component_request(&self, method: reqwest::Method, url: Url, body: Vec<u8>) -> SignedRequest {
        let signature = sign(self.app().client_secret.as_bytes(), &body);
        SignedRequest {
            method,
            url,
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Request-ID".into(), random_hex(16)),
                ("Sentry-App-Signature".into(), signature),
                ("User-Agent".into(), SENTRY_USER_AGENT.into()),
            ],
            body,
            timeout: Duration::from_secs(30),
        }
    }
}

impl Simulator {
    /// A service-hook delivery (docs/sentry-protocol.md §7) for a new event on `issue_id`:
    /// payload version 0, signed with the hook's own secret, the
    /// `X-ServiceHook-*` headers (no event name among them), 5 s timeout.
    pub fn service_hook_delivery(&self, hook_id: &str, issue_id: &str) -> SignedRequest {
        let hook = self.service_hooks().into_iter().find(|h| h.id == hook_id).expect("a known hook");
        let issue = self.issue(issue_id).expect("a known issue");
        let base = self.base_url().as_str().trim_end_matches('/');
        let event_id = random_hex(16);
        let payload = json!({
            "project": { "slug": hook.project, "name": hook.project },
            "group": {
                "id": issue.id,
                "shortId": issue.short_id,
                "title": issue.title,
                "status": issue.status,
                "url": format!("{base}/api/0/issues/{}/", issue.id),
            },
            "event": {
                "event_id": event_id,
                "id": event_id,
                "groupID": issue.id,
                "title": issue.title,
                "message": issue.title,
                "platform": "python",
                "datetime": issuebridge::sentry::api::format_datetime_ms(now_ms()),
                "url": format!("{base}/api/0/projects/{}/{}/events/{event_id}/", hook.org_slug, hook.project),
            },
        });
        let body = to_sentry_json(&payload);
        let signature = sign(hook.secret.as_bytes(), &body);
        SignedRequest {
            method: reqwest::Method::POST,
            url: Url::parse(&hook.url).expect("hook URLs are validated on creation"),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("X-ServiceHook-Timestamp".into(), (now_ms() / 1000).to_string()),
                ("X-ServiceHook-GUID".into(), hook.guid.clone()),
                ("X-ServiceHook-Signature".into(), signature),
                ("User-Agent".into(), SENTRY_USER_AGENT.into()),
            ],
            body,
            timeout: Duration::from_secs(5),
        }
    }
}

/// The comment a `comment.*` webhook is about.
#[derive(Debug, Clone, Copy)]
pub struct CommentRef<'a> {
    pub issue_id: &'a str,
    pub comment_id: i64,
    pub text: &'a str,
}

/// Python's `datetime.isoformat()` for UTC, as issue.created and
/// error.created carry it: `+00:00`, microseconds only when not zero.
pub fn isoformat(unix_ms: i64) -> String {
    let z = issuebridge::sentry::api::format_datetime_ms(unix_ms);
    let (seconds, fraction) = z.trim_end_matches('Z').split_once('.').expect("a fraction");
    if fraction.bytes().all(|b| b == b'0') {
        format!("{seconds}+00:00")
    } else {
        format!("{seconds}.{fraction}+00:00")
    }
}

impl Simulator {
    fn group_json(&self, issue_id: &str, dates: fn(i64) -> String) -> Value {
        let issue = self.issue(issue_id).expect("a known issue");
        let base = self.base_url().as_str().trim_end_matches('/');
        let now = now_ms();
        json!({
            "id": issue.id,
            "shortId": issue.short_id,
            "title": issue.title,
            "culprit": "app.views in checkout",
            "permalink": format!("{base}/organizations/{}/issues/{}/", issue.org_slug, issue.id),
            "logger": null,
            "level": "error",
            "status": issue.status,
            "substatus": "new",
            "statusDetails": {},
            "isPublic": false,
            "platform": "python",
            "project": { "id": "1", "name": issue.project_slug, "slug": issue.project_slug, "platform": "python" },
            "type": "error",
            "metadata": { "type": "TypeError", "value": issue.title },
            "numComments": 0,
            "assignedTo": null,
            "isBookmarked": false,
            "isSubscribed": false,
            "subscriptionDetails": null,
            "hasSeen": false,
            "annotations": [],
            "isUnhandled": true,
            "count": "1",
            "userCount": 1,
            "firstSeen": dates(now - 60_000),
            "lastSeen": dates(now),
        })
    }

    /// `issue.created` (with `url`, `web_url`, `project_url` and isoformat
    /// dates) or a workflow action `resolved`, `ignored`, `archived`,
    /// `unresolved`, `assigned` (no URLs, `…Z` dates, the action's extras).
    pub fn issue_webhook(
        &self,
        url: &Url,
        installation: &str,
        issue_id: &str,
        action: &str,
        actor: Value,
    ) -> SignedRequest {
        let issue = self.issue(issue_id).expect("a known issue");
        let base = self.base_url().as_str().trim_end_matches('/');
        let data = if action == "created" {
            let mut group = self.group_json(issue_id, isoformat);
            group["url"] = json!(format!("{base}/api/0/organizations/{}/issues/{}/", issue.org_slug, issue.id));
            group["web_url"] = json!(format!("{base}/organizations/{}/issues/{}/", issue.org_slug, issue.id));
            group["project_url"] =
                json!(format!("{base}/organizations/{}/projects/{}/", issue.org_slug, issue.project_slug));
            json!({ "issue": group })
        } else {
            let group = self.group_json(issue_id, issuebridge::sentry::api::format_datetime_ms);
            match action {
                "resolved" => json!({ "resolution_type": "now", "issue": group }),
                "assigned" => {
                    // The issue's assignee if it has one (`user:<id>`),
                    // else the sample person tests assign.
                    let user = issue
                        .assigned_to
                        .as_deref()
                        .and_then(|a| a.strip_prefix("user:"))
                        .and_then(|id| self.users().into_iter().find(|u| u.id.to_string() == id));
                    let assignee = match user {
                        Some(user) => json!({ "type": "user", "name": user.name, "id": user.id, "email": user.email }),
                        None => json!({ "type": "user", "name": "Ada Lovelace", "id": 2, "email": "ada@example.com" }),
                    };
                    json!({ "assignee": assignee, "issue": group })
                }
                _ => json!({ "issue": group }),
            }
        };
        self.webhook(url, "issue", action, installation, data, actor)
    }

    /// `comment.created`/`updated`/`deleted`: ids are JSON integers here.
    pub fn comment_webhook(
        &self,
        url: &Url,
        installation: &str,
        comment: &CommentRef<'_>,
        action: &str,
        actor: Value,
    ) -> SignedRequest {
        let issue = self.issue(comment.issue_id).expect("a known issue");
        let data = json!({
            "comment_id": comment.comment_id,
            "issue_id": issue.id.parse::<i64>().expect("numeric issue ids"),
            "project_slug": issue.project_slug,
            "timestamp": issuebridge::sentry::api::format_datetime_ms(now_ms()),
            "comment": comment.text,
        });
        self.webhook(url, "comment", action, installation, data, actor)
    }

    fn event_json(&self, issue_id: &str, dates: fn(i64) -> String) -> Value {
        let issue = self.issue(issue_id).expect("a known issue");
        let base = self.base_url().as_str().trim_end_matches('/');
        let event_id = random_hex(16);
        let now = now_ms();
        json!({
            "event_id": event_id,
            "project": 1,
            "release": null,
            "dist": null,
            "platform": "python",
            "message": "",
            "datetime": dates(now),
            "tags": [["level", "error"]],
            "title": issue.title,
            "culprit": "app.views in checkout",
            "level": "error",
            "timestamp": now as f64 / 1000.0,
            "received": now as f64 / 1000.0,
            "url": format!("{base}/api/0/projects/{}/{}/events/{event_id}/", issue.org_slug, issue.project_slug),
            "web_url": format!("{base}/organizations/{}/issues/{}/events/{event_id}/", issue.org_slug, issue.id),
            "issue_url": format!("{base}/api/0/organizations/{}/issues/{}/", issue.org_slug, issue.id),
            "issue_id": issue.id,
        })
    }

    /// `error.created`: the event with isoformat `datetime`, str `issue_id`.
    pub fn error_created(&self, url: &Url, installation: &str, issue_id: &str) -> SignedRequest {
        let data = json!({ "error": self.event_json(issue_id, isoformat) });
        self.webhook(url, "error", "created", installation, data, sentry_actor())
    }

    /// `event_alert.triggered` from an issue alert rule whose action is this
    /// app, with the settings the rule's form saved.
    pub fn event_alert_triggered(
        &self,
        url: &Url,
        installation: &str,
        issue_id: &str,
        rule: &str,
        settings: &[(&str, Value)],
    ) -> SignedRequest {
        let settings: Vec<Value> =
            settings.iter().map(|(name, value)| json!({ "name": name, "value": value })).collect();
        let data = json!({
            "event": self.event_json(issue_id, issuebridge::sentry::api::format_datetime_ms),
            "triggered_rule": rule,
            "issue_alert": { "id": 123, "title": rule, "sentry_app_id": 1, "settings": settings },
        });
        self.webhook(url, "event_alert", "triggered", installation, data, sentry_actor())
    }

    /// `metric_alert.{open,critical,warning,resolved}`, snake_case keys,
    /// with this app's action (and its settings) under the matching trigger.
    pub fn metric_alert(
        &self,
        url: &Url,
        installation: &str,
        action: &str,
        alert_id: &str,
        title: &str,
    ) -> SignedRequest {
        self.metric_alert_with_settings(url, installation, action, alert_id, title, &[("team", json!("platform"))])
    }

    /// `metric_alert.*` whose trigger actions carry the settings the alert
    /// rule's issuebridge action saved (as `[{name, label, value}]`).
    pub fn metric_alert_with_settings(
        &self,
        url: &Url,
        installation: &str,
        action: &str,
        alert_id: &str,
        title: &str,
        settings: &[(&str, Value)],
    ) -> SignedRequest {
        let settings: Vec<Value> =
            settings.iter().map(|(name, value)| json!({ "name": name, "label": name, "value": value })).collect();
        let org = self.installation(installation).map(|i| i.org_id).unwrap_or(1);
        let status = match action {
            "resolved" => 2,
            "warning" => 10,
            "critical" => 20,
            _ => 1,
        };
        let trigger = |label: &str| {
            json!({
                "id": format!("{label}-1"),
                "label": label,
                "threshold_type": 0,
                "alert_threshold": 100.0,
                "actions": [{
                    "id": "1",
                    "type": "sentry_app",
                    "target_type": "sentry_app",
                    "sentry_app_id": 1,
                    "sentry_app_installation_uuid": installation,
                    "settings": settings,
                }],
            })
        };
        let base = self.base_url().as_str().trim_end_matches('/');
        let data = json!({
            "metric_alert": {
                "id": alert_id,
                "identifier": alert_id,
                "organization_id": org.to_string(),
                "projects": ["web"],
                "title": title,
                "status": status,
                "status_method": 1,
                "type": 2,
                "date_started": issuebridge::sentry::api::format_datetime_ms(now_ms() - 600_000),
                "date_detected": issuebridge::sentry::api::format_datetime_ms(now_ms() - 600_000),
                "date_created": issuebridge::sentry::api::format_datetime_ms(now_ms() - 600_000),
                "date_closed": if status == 2 { json!(issuebridge::sentry::api::format_datetime_ms(now_ms())) } else { Value::Null },
                "alert_rule": {
                    "id": "7",
                    "name": title,
                    "aggregate": "count()",
                    "dataset": "events",
                    "query": "",
                    "threshold_type": 0,
                    "time_window": 60,
                    "resolution": 1,
                    "triggers": [trigger("critical"), trigger("warning")],
                },
            },
            "description_text": format!("{title}: 1000 events in the last hour"),
            "description_title": match action { "resolved" => format!("Resolved: {title}"), "warning" => format!("Warning: {title}"), _ => format!("Critical: {title}") },
            "web_url": format!("{base}/organizations/alerts/rules/details/7/"),
        });
        self.webhook(url, "metric_alert", action, installation, data, sentry_actor())
    }
}
