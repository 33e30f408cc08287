//! A person's Sentry identity, through Sentry's OAuth provider
//! (docs/sentry-protocol.md §2.5): the authorization code flow with PKCE
//! and `state` by the `oauth2` crate, then who they are
//! (`/oauth/userinfo/`) and where they belong (`/api/0/organizations/`,
//! and each organization's detail for what they may do there).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use issuebridge::config::Secret;
use issuebridge::domain::access::Membership;
use issuebridge::domain::time::now_ms;
use issuebridge::LoginProvider;
use oauth2::basic::{BasicClient, BasicErrorResponse};
use oauth2::{
    AsyncHttpClient, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    HttpRequest, HttpResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    Scope, TokenResponse, TokenUrl,
};
use serde::Deserialize;
use url::Url;

/// What the console asks for: the person (`openid profile email`) and
/// their organizations (`org:read`). Nothing that writes.
pub const SCOPES: [&str; 4] = ["openid", "profile", "email", "org:read"];

/// The callback's path on this site; the OAuth application in Sentry must
/// list `<public URL>/auth/callback` as a redirect URI.
pub const CALLBACK_PATH: &str = "/auth/callback";

/// Sentry answers in well under a second; a person waits for this at most.
const SENTRY_TIMEOUT: Duration = Duration::from_secs(10);

/// An organization's membership list is asked in full; more than this many
/// organizations is not a person, and is cut.
const MAX_ORGANIZATIONS: usize = 100;

type OAuthClient = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Sentry said no: a spent or wrong code, a PKCE mismatch, a revoked
    /// token. The OAuth error name, or the status.
    #[error("Sentry refused: {0}")]
    Refused(String),
    #[error("Sentry could not be reached: {0}")]
    Unreachable(String),
    #[error("Sentry's answer was not understood: {0}")]
    Unexpected(String),
}

/// Why the token endpoint gave no answer to read: it could not be
/// reached, or it failed (5xx), which is Sentry being down, not a refusal.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(String);

impl From<RequestTokenError<Unavailable, BasicErrorResponse>> for IdentityError {
    fn from(error: RequestTokenError<Unavailable, BasicErrorResponse>) -> Self {
        match error {
            RequestTokenError::ServerResponse(response) => Self::Refused(oauth_error_name(&response)),
            RequestTokenError::Request(e) => Self::Unreachable(e.to_string()),
            RequestTokenError::Parse(e, _) => Self::Unexpected(e.to_string()),
            RequestTokenError::Other(e) => Self::Unexpected(e),
        }
    }
}

fn oauth_error_name(response: &BasicErrorResponse) -> String {
    response.error().to_string()
}

/// A person's tokens from Sentry, kept sealed in their session so their
/// memberships can be asked again.
#[derive(Debug, Clone)]
pub struct UserTokens {
    pub access: Secret,
    pub refresh: Option<Secret>,
    pub expires_at_ms: Option<i64>,
}

/// Who logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub user_id: String,
    pub name: String,
    pub email: String,
    /// Sentry confirmed the address. Anyone can give their Sentry account
    /// any address, so only a confirmed one can make an administrator.
    pub email_verified: bool,
}

/// The start of a login: where to send the browser, and what to keep in
/// the session to check the callback against.
pub struct Authorization {
    pub url: Url,
    pub state: CsrfToken,
    pub verifier: PkceCodeVerifier,
}

pub struct SentryIdentity {
    http: reqwest::Client,
    client: OAuthClient,
    base_url: Url,
}

impl SentryIdentity {
    pub fn new(provider: &LoginProvider, public_url: &Url) -> Result<Self, IdentityError> {
        let endpoint = |path: &str| {
            provider
                .base_url
                .join(path)
                .map(|url| url.to_string())
                .map_err(|e| IdentityError::Unexpected(e.to_string()))
        };
        let redirect = public_url.join(CALLBACK_PATH).map_err(|e| IdentityError::Unexpected(e.to_string()))?;
        let client = BasicClient::new(ClientId::new(provider.client_id.clone()))
            .set_client_secret(ClientSecret::new(provider.client_secret.expose().to_owned()))
            .set_auth_uri(
                AuthUrl::new(endpoint("/oauth/authorize/")?).map_err(|e| IdentityError::Unexpected(e.to_string()))?,
            )
            .set_token_uri(
                TokenUrl::new(endpoint("/oauth/token/")?).map_err(|e| IdentityError::Unexpected(e.to_string()))?,
            )
            .set_redirect_uri(RedirectUrl::from_url(redirect));
        // No redirects: a token endpoint that redirects could otherwise
        // send the code and secret anywhere (oauth2's upgrade notes).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(SENTRY_TIMEOUT)
            .build()
            .map_err(|e| IdentityError::Unexpected(e.to_string()))?;
        Ok(Self { http, client, base_url: provider.base_url.clone() })
    }

    /// Sentry's consent page, with a fresh `state` and PKCE (S256) pair.
    pub fn authorize(&self) -> Authorization {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(SCOPES.iter().map(|scope| Scope::new((*scope).to_owned())))
            .set_pkce_challenge(challenge)
            .url();
        Authorization { url, state, verifier }
    }

    /// Trades the callback's code for the person's tokens. The client
    /// authenticates by HTTP Basic only (never also in the form, which
    /// Sentry refuses).
    pub async fn exchange(&self, code: &str, verifier: PkceCodeVerifier) -> Result<UserTokens, IdentityError> {
        let token = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(verifier)
            .request_async(&TokenTransport(&self.http))
            .await?;
        Ok(tokens_of(&token))
    }

    pub async fn refresh(&self, refresh: &Secret) -> Result<UserTokens, IdentityError> {
        let token = self
            .client
            .exchange_refresh_token(&RefreshToken::new(refresh.expose().to_owned()))
            .request_async(&TokenTransport(&self.http))
            .await?;
        Ok(tokens_of(&token))
    }

    /// The person, from `/oauth/userinfo/`.
    pub async fn person(&self, access: &Secret) -> Result<Person, IdentityError> {
        #[derive(Deserialize)]
        struct UserInfo {
            sub: serde_json::Value,
            name: Option<String>,
            email: Option<String>,
            #[serde(default)]
            email_verified: bool,
        }
        let info: UserInfo = self.get_json("/oauth/userinfo/", access).await?;
        let user_id = match info.sub {
            serde_json::Value::String(id) => id,
            serde_json::Value::Number(id) => id.to_string(),
            other => return Err(IdentityError::Unexpected(format!("userinfo `sub` is {other}"))),
        };
        let email = info
            .email
            .filter(|email| email.contains('@'))
            .ok_or_else(|| IdentityError::Unexpected("userinfo has no email (is the `email` scope granted?)".into()))?;
        Ok(Person {
            name: info.name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| email.clone()),
            email,
            user_id,
            email_verified: info.email_verified,
        })
    }

    /// The person's organizations, each with what Sentry says they may do
    /// there (the detailed organization's `access`).
    pub async fn memberships(&self, access: &Secret) -> Result<Vec<Membership>, IdentityError> {
        #[derive(Deserialize)]
        struct Organization {
            /// A string of digits in Sentry's answers; a number in some.
            id: Option<serde_json::Value>,
            slug: String,
            name: Option<String>,
            #[serde(default)]
            access: Vec<String>,
            /// Newer Sentry versions; older ones send `role`.
            #[serde(default, rename = "orgRole", alias = "role")]
            org_role: Option<String>,
        }
        let listed: Vec<Organization> = self.get_json("/api/0/organizations/?member=1", access).await?;
        let mut memberships = Vec::new();
        for org in listed.into_iter().take(MAX_ORGANIZATIONS) {
            let path = format!("/api/0/organizations/{}/", org.slug);
            let detail: Organization = match self.get_json(&path, access).await {
                Ok(detail) => detail,
                // Listed but refused in detail (an organization that wants
                // its own SSO first, say): Sentry does not let them in, so
                // neither does issuebridge.
                Err(IdentityError::Refused(_)) => continue,
                Err(other) => return Err(other),
            };
            let org_id = detail.id.as_ref().and_then(|id| id.as_i64().or_else(|| id.as_str()?.parse().ok()));
            memberships.push(Membership {
                org_id,
                org_name: detail.name.unwrap_or_else(|| detail.slug.clone()),
                org_slug: detail.slug,
                access: detail.access,
                role: detail.org_role,
            });
        }
        Ok(memberships)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str, access: &Secret) -> Result<T, IdentityError> {
        let url = self.base_url.join(path).map_err(|e| IdentityError::Unexpected(e.to_string()))?;
        let response = self
            .http
            .get(url)
            .bearer_auth(access.expose())
            .send()
            .await
            .map_err(|e| IdentityError::Unreachable(e.to_string()))?;
        let status = response.status();
        // Overloaded or down (a 429 too) is not a refusal of the person.
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(IdentityError::Unreachable(format!("{path} answered {status}")));
        }
        if !status.is_success() {
            return Err(IdentityError::Refused(format!("{path} answered {status}")));
        }
        response.json().await.map_err(|e| IdentityError::Unexpected(format!("{path}: {e}")))
    }
}

/// The token endpoint's transport for `oauth2`: reqwest, with a 5xx
/// answer taken as Sentry being unavailable (`oauth2` would otherwise try
/// to read it as an OAuth error, and the login would look refused).
struct TokenTransport<'a>(&'a reqwest::Client);

impl<'c> AsyncHttpClient<'c> for TokenTransport<'_> {
    type Error = Unavailable;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Unavailable>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let response = self
                .0
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(|e| Unavailable(e.to_string()))?;
            let status = response.status();
            if status.is_server_error() {
                return Err(Unavailable(format!("the token endpoint answered {status}")));
            }
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(|e| Unavailable(e.to_string()))?;
            let mut answer = HttpResponse::new(body.to_vec());
            *answer.status_mut() = status;
            *answer.headers_mut() = headers;
            Ok(answer)
        })
    }
}

fn tokens_of(token: &oauth2::basic::BasicTokenResponse) -> UserTokens {
    UserTokens {
        access: Secret::new(token.access_token().secret().clone()),
        refresh: token.refresh_token().map(|refresh| Secret::new(refresh.secret().clone())),
        expires_at_ms: token.expires_in().map(|lifetime| now_ms() + lifetime.as_millis() as i64),
    }
}
