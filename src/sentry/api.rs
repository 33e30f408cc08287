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
use crate::domain::InstallationUuid;

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
        Self { http, app }
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
    /// client secret asks for a new pair (contract §2.3).
    pub async fn manual_refresh(&self, installation: &InstallationUuid) -> Result<TokenGrant, SentryError> {
        let now = crate::store::now_ms() / 1000;
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
        let response = self.http.get(url).bearer_auth(token.expose()).send().await.map_err(unavailable)?;
        let response = check(response).await?;
        response.json().await.map_err(|e| SentryError::BadResponse(format!("installation response: {e}")))
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
