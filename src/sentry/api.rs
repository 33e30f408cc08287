//! Calls from the app to Sentry's API on behalf of an installation.
//!
//! Redirects are never followed (a redirect would carry the bearer token to
//! wherever it points), and every failure is sorted into what the caller can
//! act on: Sentry said no, Sentry was unreachable, or Sentry said something
//! we do not understand.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use crate::config::Secret;
use crate::domain::ids::{InstallationUuid, OrgSlug, SentryIssueId};

/// The Sentry App's identity towards one Sentry.
#[derive(Debug, Clone)]
pub struct SentryApp {
    pub base_url: Url,
    pub client_id: String,
    pub client_secret: Secret,
}

/// A token pair as Sentry hands it out: 8 hours for the token, and a refresh
/// token that works once.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub token: Secret,
    pub refresh_token: Secret,
    pub expires_at_ms: i64,
    pub scopes: Vec<String>,
}

/// What `GET`/`PUT /api/0/sentry-app-installations/{uuid}/` returns.
#[derive(Debug, Clone, Deserialize)]
pub struct InstallationDetails {
    pub uuid: String,
    pub status: String,
    pub app: AppRef,
    pub organization: OrganizationRef,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AppRef {
    pub slug: String,
    pub uuid: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrganizationRef {
    pub slug: String,
    #[serde(default)]
    pub id: Option<serde_json::Value>,
}

/// A Sentry issue (group), read tolerantly: unknown fields are ignored and
/// ids may be strings or numbers.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    pub id: SentryIssueId,
    #[serde(default)]
    pub short_id: Option<String>,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub permalink: Option<String>,
}

/// A comment (a "note" activity) on an issue.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    #[serde(default)]
    pub data: CommentData,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CommentData {
    #[serde(default)]
    pub text: String,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalIssueLink {
    /// Sentry's issue id; sent as a number, as Sentry expects.
    pub issue_id: i64,
    pub web_url: String,
    /// Strings, never numbers: a numeric identifier breaks Sentry's UI.
    pub project: String,
    pub identifier: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalIssue {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    #[serde(deserialize_with = "string_or_number")]
    pub issue_id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub web_url: String,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("expected an id, got {other}"))),
    }
}

/// A member of an organization, as `GET …/members/` lists them. `user` is
/// missing for invitations not yet accepted.
#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub user: Option<MemberUser>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MemberUser {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
}

/// A project service hook; its `secret` signs its deliveries.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceHook {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    pub url: String,
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub status: String,
    pub secret: Secret,
}

async fn decode<T: serde::de::DeserializeOwned>(response: reqwest::Response, what: &str) -> Result<T, SentryError> {
    response.json().await.map_err(|e| SentryError::BadResponse(format!("{what} response: {e}")))
}

#[derive(Debug, thiserror::Error)]
pub enum SentryError {
    /// A 4xx: retrying the same request will not help.
    #[error("Sentry refused the request ({status}): {detail}")]
    Refused { status: u16, detail: String },
    /// Connection errors, timeouts and 5xx: worth trying again later.
    #[error("Sentry could not be reached: {0}")]
    Unavailable(String),
    #[error("Sentry answered with something unexpected: {0}")]
    BadResponse(String),
}

impl SentryError {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SentryClient {
    http: reqwest::Client,
    app: SentryApp,
    policy: RetryPolicy,
    /// Set when Sentry said the rate limit is used up: no request leaves
    /// before this instant.
    blocked_until: std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

/// How resource calls are retried: on 429, on 5xx and on timeouts or
/// connection errors, with jittered exponential backoff. Token exchanges are
/// never retried: a grant code and a refresh token work once.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest a rate limit may hold a call back.
    pub max_rate_limit_wait: Duration,
    /// Per attempt; UI and API calls to Sentry should not hang a worker.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_rate_limit_wait: Duration::from_secs(60),
            request_timeout: Duration::from_secs(15),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenResponse {
    token: String,
    refresh_token: String,
    expires_at: String,
    #[serde(default)]
    scopes: Vec<String>,
}

impl SentryClient {
    pub fn new(app: SentryApp) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("issuebridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a TLS backend is compiled in");
        Self { http, app, policy: RetryPolicy::default(), blocked_until: Default::default() }
    }

    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sends a resource call, honouring Sentry's rate limit and retrying
    /// what is worth retrying. `build` makes a fresh request per attempt.
    async fn execute(&self, build: impl Fn() -> reqwest::RequestBuilder) -> Result<reqwest::Response, SentryError> {
        let mut attempt = 0;
        loop {
            self.wait_for_rate_limit().await;
            let outcome = build().timeout(self.policy.request_timeout).send().await;
            let retry_after = match &outcome {
                Ok(response) => {
                    self.note_rate_limit(response.headers());
                    let status = response.status();
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        // Nothing leaves before Sentry's wait is over, and
                        // callers (the outbox) can ask how long that is.
                        if let Some(wait) = rate_limit_wait(response.headers()) {
                            let until = std::time::Instant::now() + wait;
                            *self.blocked_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(until);
                        }
                        Some(rate_limit_wait(response.headers()).unwrap_or_else(|| self.backoff(attempt)))
                    } else if matches!(status.as_u16(), 500 | 502 | 503 | 504) {
                        Some(self.backoff(attempt))
                    } else {
                        None
                    }
                }
                Err(error) if error.is_timeout() || error.is_connect() => Some(self.backoff(attempt)),
                Err(_) => None,
            };
            match retry_after {
                Some(wait) if attempt < self.policy.max_retries => {
                    attempt += 1;
                    tokio::time::sleep(wait.min(self.policy.max_rate_limit_wait)).await;
                }
                _ => return check(outcome.map_err(unavailable)?).await,
            }
        }
    }

    /// Exponential backoff with full jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        use rand::Rng;
        let ceiling = self.policy.base_delay.saturating_mul(2u32.saturating_pow(attempt)).min(self.policy.max_delay);
        ceiling.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }

    async fn wait_for_rate_limit(&self) {
        let until = *self.blocked_until.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = until {
            let now = std::time::Instant::now();
            if until > now {
                tokio::time::sleep((until - now).min(self.policy.max_rate_limit_wait)).await;
            }
        }
    }

    /// `X-Sentry-Rate-Limit-Remaining: 0` holds further calls back until
    /// `X-Sentry-Rate-Limit-Reset` (Unix seconds).
    fn note_rate_limit(&self, headers: &reqwest::header::HeaderMap) {
        let remaining = header_number(headers, "x-sentry-rate-limit-remaining");
        let mut blocked = self.blocked_until.lock().unwrap_or_else(|p| p.into_inner());
        *blocked = match (remaining, rate_limit_wait(headers)) {
            (Some(0), Some(wait)) => Some(std::time::Instant::now() + wait),
            _ => None,
        };
    }

    /// How long Sentry's rate limit still holds calls back, if it does.
    pub fn rate_limited_for(&self) -> Option<Duration> {
        let until = (*self.blocked_until.lock().unwrap_or_else(|p| p.into_inner()))?;
        until.checked_duration_since(std::time::Instant::now())
    }

    pub fn app(&self) -> &SentryApp {
        &self.app
    }

    fn url(&self, path: &str) -> Url {
        let base = self.app.base_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{path}")).expect("a base URL plus a path is a URL")
    }

    /// Exchanges an installation's grant code for its first token pair. The
    /// body must be JSON: Sentry reads the client credentials from it.
    pub async fn exchange_grant(&self, installation: &InstallationUuid, code: &str) -> Result<TokenGrant, SentryError> {
        self.authorize(
            installation,
            json!({
                "grant_type": "authorization_code",
                "code": code,
                "client_id": self.app.client_id,
                "client_secret": self.app.client_secret.expose(),
            }),
        )
        .await
    }

    /// Trades a refresh token (usable once) for a new pair.
    pub async fn refresh(
        &self,
        installation: &InstallationUuid,
        refresh_token: &Secret,
    ) -> Result<TokenGrant, SentryError> {
        self.authorize(
            installation,
            json!({
                "grant_type": "refresh_token",
                "refresh_token": refresh_token.expose(),
                "client_id": self.app.client_id,
                "client_secret": self.app.client_secret.expose(),
            }),
        )
        .await
    }

    /// The last resort when the refresh token is gone: a JWT signed with the
    /// client secret asks for a new pair (docs/sentry-protocol.md §2.3).
    pub async fn manual_refresh(&self, installation: &InstallationUuid) -> Result<TokenGrant, SentryError> {
        let now = crate::domain::time::now_ms() / 1000;
        let jti = {
            use rand::RngCore;
            let mut bytes = [0u8; 16];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            hex::encode(bytes)
        };
        let claims = crate::sentry::jwt::Claims::for_client(&self.app.client_id, now, jti);
        let jwt = crate::sentry::jwt::encode(&claims, self.app.client_secret.expose().as_bytes());
        let body = json!({ "grant_type": "urn:sentry:params:oauth:grant-type:jwt-bearer" });
        self.send_authorization(installation, body, Some(jwt)).await
    }

    async fn authorize(
        &self,
        installation: &InstallationUuid,
        body: serde_json::Value,
    ) -> Result<TokenGrant, SentryError> {
        self.send_authorization(installation, body, None).await
    }

    async fn send_authorization(
        &self,
        installation: &InstallationUuid,
        body: serde_json::Value,
        bearer: Option<String>,
    ) -> Result<TokenGrant, SentryError> {
        let url = self.url(&format!("/api/0/sentry-app-installations/{installation}/authorizations/"));
        let mut request = self.http.post(url).json(&body);
        if let Some(jwt) = bearer {
            request = request.bearer_auth(jwt);
        }
        let response = request.send().await.map_err(unavailable)?;
        let response = check(response).await?;
        let token: TokenResponse =
            response.json().await.map_err(|e| SentryError::BadResponse(format!("token response: {e}")))?;
        Ok(TokenGrant {
            expires_at_ms: parse_datetime_ms(&token.expires_at)
                .ok_or_else(|| SentryError::BadResponse(format!("expiresAt {:?} is not a date", token.expires_at)))?,
            token: Secret::new(token.token),
            refresh_token: Secret::new(token.refresh_token),
            scopes: token.scopes,
        })
    }

    /// `GET /api/0/sentry-app-installations/{uuid}/` with the installation's
    /// token: the cheapest authenticated call, and how the app checks it is
    /// still installed.
    pub async fn get_installation(
        &self,
        installation: &InstallationUuid,
        token: &Secret,
    ) -> Result<InstallationDetails, SentryError> {
        let url = self.url(&format!("/api/0/sentry-app-installations/{installation}/"));
        let response = self.execute(|| self.http.get(url.clone()).bearer_auth(token.expose())).await?;
        decode(response, "installation").await
    }

    /// `DELETE /api/0/sentry-app-installations/{uuid}/`: uninstalls the app
    /// from the organization; Sentry then sends `installation.deleted`.
    pub async fn uninstall(&self, installation: &InstallationUuid, token: &Secret) -> Result<(), SentryError> {
        let url = self.url(&format!("/api/0/sentry-app-installations/{installation}/"));
        self.execute(|| self.http.delete(url.clone()).bearer_auth(token.expose())).await?;
        Ok(())
    }

    // ----- issues (docs/sentry-protocol.md §4) -----

    pub async fn get_issue(&self, token: &Secret, org: &OrgSlug, issue: &SentryIssueId) -> Result<Issue, SentryError> {
        let url = self.url(&format!("/api/0/organizations/{org}/issues/{issue}/"));
        decode(self.execute(|| self.http.get(url.clone()).bearer_auth(token.expose())).await?, "issue").await
    }

    /// `PUT` on the issue, e.g. `{"status": "resolved"}` or
    /// `{"assignedTo": "user:1"}`.
    pub async fn update_issue(
        &self,
        token: &Secret,
        org: &OrgSlug,
        issue: &SentryIssueId,
        update: &serde_json::Value,
    ) -> Result<Issue, SentryError> {
        let url = self.url(&format!("/api/0/organizations/{org}/issues/{issue}/"));
        let response = self.execute(|| self.http.put(url.clone()).bearer_auth(token.expose()).json(update)).await?;
        decode(response, "issue").await
    }

    pub async fn list_comments(
        &self,
        token: &Secret,
        org: &OrgSlug,
        issue: &SentryIssueId,
    ) -> Result<Vec<Comment>, SentryError> {
        let url = self.url(&format!("/api/0/organizations/{org}/issues/{issue}/comments/"));
        decode(self.execute(|| self.http.get(url.clone()).bearer_auth(token.expose())).await?, "comments").await
    }

    /// Posts a comment; Sentry answers 400 to the same text twice.
    pub async fn add_comment(
        &self,
        token: &Secret,
        org: &OrgSlug,
        issue: &SentryIssueId,
        text: &str,
    ) -> Result<Comment, SentryError> {
        let url = self.url(&format!("/api/0/organizations/{org}/issues/{issue}/comments/"));
        let body = json!({ "text": text });
        let response = self.execute(|| self.http.post(url.clone()).bearer_auth(token.expose()).json(&body)).await?;
        decode(response, "comment").await
    }

    pub async fn update_comment(
        &self,
        token: &Secret,
        org: &OrgSlug,
        issue: &SentryIssueId,
        comment_id: &str,
        text: &str,
    ) -> Result<Comment, SentryError> {
        let url = self.url(&format!("/api/0/organizations/{org}/issues/{issue}/comments/{comment_id}/"));
        let body = json!({ "text": text });
        let response = self.execute(|| self.http.put(url.clone()).bearer_auth(token.expose()).json(&body)).await?;
        decode(response, "comment").await
    }

    pub async fn delete_comment(
        &self,
        token: &Secret,
        org: &OrgSlug,
        issue: &SentryIssueId,
        comment_id: &str,
    ) -> Result<(), SentryError> {
        let url = self.url(&format!("/api/0/organizations/{org}/issues/{issue}/comments/{comment_id}/"));
        self.execute(|| self.http.delete(url.clone()).bearer_auth(token.expose())).await?;
        Ok(())
    }

    /// The organization's members, every page (`GET
    /// /api/0/organizations/{org}/members/`, scope `member:read`). Sentry
    /// pages with a `Link` header whose `rel="next"` says `results="true"`
    /// while there is more.
    pub async fn list_members(&self, token: &Secret, org: &OrgSlug) -> Result<Vec<Member>, SentryError> {
        const MAX_PAGES: usize = 50;
        let mut url = self.url(&format!("/api/0/organizations/{org}/members/"));
        let mut members = Vec::new();
        for _ in 0..MAX_PAGES {
            let response = self.execute(|| self.http.get(url.clone()).bearer_auth(token.expose())).await?;
            let next = next_page(response.headers());
            members.extend(decode::<Vec<Member>>(response, "members").await?);
            match next.and_then(|next| Url::parse(&next).ok()) {
                // Only pages of the same Sentry: the token goes with them.
                Some(next) if next.origin() == url.origin() => url = next,
                _ => break,
            }
        }
        Ok(members)
    }

    // ----- service hooks: raw events of chosen projects (docs/sentry-protocol.md §7) -----

    pub async fn create_service_hook(
        &self,
        token: &Secret,
        org: &OrgSlug,
        project: &str,
        url: &Url,
        events: &[&str],
    ) -> Result<ServiceHook, SentryError> {
        let endpoint = self.url(&format!("/api/0/projects/{org}/{project}/hooks/"));
        let body = json!({ "url": url.as_str(), "events": events });
        let response =
            self.execute(|| self.http.post(endpoint.clone()).bearer_auth(token.expose()).json(&body)).await?;
        decode(response, "service hook").await
    }

    pub async fn list_service_hooks(
        &self,
        token: &Secret,
        org: &OrgSlug,
        project: &str,
    ) -> Result<Vec<ServiceHook>, SentryError> {
        let endpoint = self.url(&format!("/api/0/projects/{org}/{project}/hooks/"));
        decode(self.execute(|| self.http.get(endpoint.clone()).bearer_auth(token.expose())).await?, "service hooks")
            .await
    }

    pub async fn delete_service_hook(
        &self,
        token: &Secret,
        org: &OrgSlug,
        project: &str,
        hook_id: &str,
    ) -> Result<(), SentryError> {
        let endpoint = self.url(&format!("/api/0/projects/{org}/{project}/hooks/{hook_id}/"));
        self.execute(|| self.http.delete(endpoint.clone()).bearer_auth(token.expose())).await?;
        Ok(())
    }

    // ----- external issues: the link Sentry shows on the issue -----

    pub async fn link_external_issue(
        &self,
        token: &Secret,
        installation: &InstallationUuid,
        link: &ExternalIssueLink,
    ) -> Result<ExternalIssue, SentryError> {
        let url = self.url(&format!("/api/0/sentry-app-installations/{installation}/external-issues/"));
        let response = self.execute(|| self.http.post(url.clone()).bearer_auth(token.expose()).json(link)).await?;
        decode(response, "external issue").await
    }

    pub async fn unlink_external_issue(
        &self,
        token: &Secret,
        installation: &InstallationUuid,
        external_issue_id: &str,
    ) -> Result<(), SentryError> {
        let url =
            self.url(&format!("/api/0/sentry-app-installations/{installation}/external-issues/{external_issue_id}/"));
        self.execute(|| self.http.delete(url.clone()).bearer_auth(token.expose())).await?;
        Ok(())
    }

    /// Marks the installation installed (`verify_install`): until then
    /// Sentry sends it no webhooks but `installation.created`.
    pub async fn verify_installation(
        &self,
        installation: &InstallationUuid,
        token: &Secret,
    ) -> Result<InstallationDetails, SentryError> {
        let url = self.url(&format!("/api/0/sentry-app-installations/{installation}/"));
        let response = self
            .http
            .put(url)
            .bearer_auth(token.expose())
            .json(&json!({ "status": "installed" }))
            .send()
            .await
            .map_err(unavailable)?;
        let response = check(response).await?;
        response.json().await.map_err(|e| SentryError::BadResponse(format!("installation response: {e}")))
    }
}

/// The next page's URL from Sentry's `Link` header, if it has results.
fn next_page(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.contains(r#"rel="next""#) && params.contains(r#"results="true""#);
        is_next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
    })
}

fn header_number(headers: &reqwest::header::HeaderMap, name: &str) -> Option<i64> {
    headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok().map(|n| n as i64)
}

/// How long Sentry asks us to wait: `Retry-After` seconds, or until
/// `X-Sentry-Rate-Limit-Reset`.
fn rate_limit_wait(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(seconds) = header_number(headers, "retry-after") {
        return Some(Duration::from_secs(seconds.max(0) as u64));
    }
    let reset_ms = header_number(headers, "x-sentry-rate-limit-reset")? * 1000;
    Some(Duration::from_millis((reset_ms - crate::domain::time::now_ms()).max(0) as u64))
}

fn unavailable(error: reqwest::Error) -> SentryError {
    // Without the URL: it is ours, and the message is shown to people.
    SentryError::Unavailable(error.without_url().to_string())
}

/// Passes 2xx through; turns everything else into a [`SentryError`].
async fn check(response: reqwest::Response) -> Result<reqwest::Response, SentryError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Err(SentryError::Unavailable(format!("HTTP {}", status.as_u16())));
    }
    if status.is_redirection() {
        return Err(SentryError::BadResponse(format!("a redirect ({}), which is never followed", status.as_u16())));
    }
    Err(SentryError::Refused { status: status.as_u16(), detail: error_detail(&text) })
}

/// Sentry's errors are `{"detail": "…"}`, or DRF field errors such as
/// `{"code": ["This field is required."]}`; older versions used `error`.
fn error_detail(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => {
            for key in ["detail", "error", "message"] {
                if let Some(serde_json::Value::String(text)) = map.get(key) {
                    return text.clone();
                }
            }
            serde_json::Value::Object(map).to_string()
        }
        _ => body.chars().take(200).collect(),
    }
}

/// Both of Sentry's datetime forms: `…123456Z` and `…123456+00:00`, with or
/// without a fraction.
pub fn parse_datetime_ms(text: &str) -> Option<i64> {
    let parsed = time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Sentry's encoder's datetime form, `%Y-%m-%dT%H:%M:%S.%fZ`.
pub fn format_datetime_ms(unix_ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_is_the_link_with_results() {
        let mut headers = reqwest::header::HeaderMap::new();
        let link = r#"<https://sentry.io/api/0/organizations/acme/members/?&cursor=100:-1:1>; rel="previous"; results="false"; cursor="100:-1:1", <https://sentry.io/api/0/organizations/acme/members/?&cursor=100:1:0>; rel="next"; results="true"; cursor="100:1:0""#;
        headers.insert(reqwest::header::LINK, link.parse().unwrap());
        assert_eq!(
            next_page(&headers).as_deref(),
            Some("https://sentry.io/api/0/organizations/acme/members/?&cursor=100:1:0")
        );
        let last = link.replace(r#"results="true""#, r#"results="false""#);
        headers.insert(reqwest::header::LINK, last.parse().unwrap());
        assert_eq!(next_page(&headers), None);
    }

    #[test]
    fn parses_both_datetime_forms() {
        let z = parse_datetime_ms("2019-08-08T04:25:09.870000Z").unwrap();
        assert_eq!(parse_datetime_ms("2019-08-08T04:25:09.870000+00:00"), Some(z));
        assert_eq!(parse_datetime_ms("2019-08-08T04:25:09.870Z"), Some(z));
        assert_eq!(parse_datetime_ms("2019-08-08T04:25:09Z"), Some(z - 870));
        assert_eq!(parse_datetime_ms("yesterday"), None);
    }

    #[test]
    fn formats_like_sentrys_encoder() {
        let ms = parse_datetime_ms("2019-08-08T04:25:09.870000Z").unwrap();
        assert_eq!(format_datetime_ms(ms), "2019-08-08T04:25:09.870000Z");
    }

    #[test]
    fn error_details_come_from_the_usual_keys() {
        assert_eq!(error_detail(r#"{"detail":"Grant has already expired"}"#), "Grant has already expired");
        assert_eq!(error_detail(r#"{"error":"Invalid grant_type"}"#), "Invalid grant_type");
        assert_eq!(error_detail(r#"{"code":["This field is required."]}"#), r#"{"code":["This field is required."]}"#);
        assert_eq!(error_detail("<html>oops</html>"), "<html>oops</html>");
    }
}
