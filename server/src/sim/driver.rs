//! The simulated Sentry acting towards a running app: signed webhooks and
//! UI-component requests, built exactly as Sentry builds them (contract §1.2,
//! §1.3, §3): compact `ensure_ascii` JSON, `Request-ID`, the `Sentry-Hook-*`
//! headers on webhooks and `Sentry-App-Signature` on component requests.

use std::time::Duration;

use issuebridge::sentry::signature::sign;
use issuebridge::sentry::wire::to_sentry_json;
use issuebridge::store::now_ms;
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

    /// `installation.created` for a new installation, with its grant code:
    /// how an app without a Redirect URL learns the code.
    pub fn installation_created(&self, webhook_url: &Url, pending: &PendingInstall, actor: Value) -> SignedRequest {
        let installation = self.installation(&pending.installation).expect("a known installation");
        let data = installation_data(
            self.app(),
            1,
            &installation.org_slug,
            installation.org_id,
            &installation.uuid,
            &installation.status,
            Some(&pending.code),
        );
        self.webhook(webhook_url, "installation", "created", &installation.uuid, data, actor)
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
    /// A service-hook delivery (contract §7) for a new event on `issue_id`:
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
