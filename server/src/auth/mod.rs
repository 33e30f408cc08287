//! Console login (docs/architecture.md, "login and access"): who a person
//! is, kept in a session, and the guards every console request passes.
//!
//! - [`identity`]: Sentry's OAuth (authorization code, PKCE, `state`), the
//!   person and their organizations;
//! - [`sessions`]: tower-sessions over the store's database;
//! - [`guard`]: the layers: a session for console pages and server
//!   functions, this site's origin for state changes, this site's host,
//!   and the security headers.
//!
//! This file holds the routes: the login page, the OAuth round trip,
//! logout, and single-use login links for administrators.

pub mod guard;
pub mod identity;
pub mod sessions;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use issuebridge::config::{Mode, Secret};
use issuebridge::domain::access::{safe_next, LoginMethod, Viewer};
use issuebridge::domain::audit::AuditAction;
use issuebridge::domain::time::now_ms;
use issuebridge::store::NewAuditEvent;
use issuebridge::AppState;
use issuebridge_app::document::{LoginLinkPage, LoginOptions, LoginPage};
use leptos::prelude::*;
use oauth2::PkceCodeVerifier;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tower_sessions::Session;

use crate::limits::{rate_limited, ClientRateLimit};
use crate::state::ServerState;
use identity::{IdentityError, UserTokens};

/// Session keys.
const PENDING_LOGIN: &str = "pending_login";
const LOGIN: &str = "login";

/// A login link is good for this long (`issuebridge login-link`).
pub const LOGIN_LINK_LIFETIME_MS: i64 = 10 * 60 * 1000;

/// What a session keeps between `/auth/login` and `/auth/callback`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingLogin {
    state: String,
    verifier: String,
    next: String,
}

/// What a logged-in session keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginSession {
    /// The login's row (`console_login`); logging out ends it.
    pub login_id: String,
    pub viewer: Viewer,
    /// Whether the email is confirmed (by Sentry, or by the configuration
    /// for a login link): an unconfirmed one never makes an administrator.
    #[serde(default)]
    pub email_verified: bool,
    pub logged_in_at_ms: i64,
    /// When Sentry was last asked for the memberships.
    pub memberships_checked_at_ms: i64,
    /// When it last answered: memberships older than the policy's limit
    /// are no longer trusted.
    pub memberships_confirmed_at_ms: i64,
    /// The person's Sentry tokens, sealed like installation tokens, to
    /// ask for their memberships again. None for a login link.
    pub tokens: Option<SealedUserTokens>,
}

/// Tokens as the session keeps them: sealed, then base64 for the JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedUserTokens {
    access: String,
    refresh: Option<String>,
    expires_at_ms: Option<i64>,
}

impl SealedUserTokens {
    fn context(user_id: &str, field: &str) -> String {
        format!("console-session/{user_id}/{field}")
    }

    pub fn seal(state: &AppState, user_id: &str, tokens: &UserTokens) -> Self {
        let seal = |secret: &Secret, field: &str| {
            STANDARD.encode(state.cipher.seal(secret.expose().as_bytes(), &Self::context(user_id, field)))
        };
        Self {
            access: seal(&tokens.access, "access"),
            refresh: tokens.refresh.as_ref().map(|refresh| seal(refresh, "refresh")),
            expires_at_ms: tokens.expires_at_ms,
        }
    }

    /// The tokens, if they still open with a configured key.
    pub fn open(&self, state: &AppState, user_id: &str) -> Option<UserTokens> {
        let open = |sealed: &str, field: &str| {
            let bytes = STANDARD.decode(sealed).ok()?;
            let plain = state.cipher.open(&bytes, &Self::context(user_id, field)).ok()?;
            String::from_utf8(plain).ok().map(Secret::new)
        };
        Some(UserTokens {
            access: open(&self.access, "access")?,
            refresh: match &self.refresh {
                Some(refresh) => Some(open(refresh, "refresh")?),
                None => None,
            },
            expires_at_ms: self.expires_at_ms,
        })
    }
}

/// The login page, the OAuth round trip, logout and login links. They need
/// the session layer (startup adds it) and no session of their own. The
/// round trip (its callback calls Sentry with the app's secret) and the
/// login links (a guess at a token) are rate-limited per client.
pub fn router(limit: ClientRateLimit) -> Router<ServerState> {
    let limited = Router::new()
        .route("/auth/login", get(start_login))
        .route("/auth/callback", get(callback))
        .route("/auth/link/{token}", get(link_page).post(use_link))
        .route_layer(axum::middleware::from_fn_with_state(limit, rate_limited));
    Router::new().route("/login", get(login_page)).route("/auth/logout", axum::routing::post(logout)).merge(limited)
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

fn login_options(state: &ServerState, next: &str, error: Option<String>) -> LoginOptions {
    let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish();
    LoginOptions {
        sentry_href: state.identity.is_some().then(|| format!("/auth/login?{query}")),
        demo: state.app.config.mode() == Mode::Demo,
        login_links: !state.app.config.admins.is_empty(),
        error,
    }
}

fn render_login(status: StatusCode, options: LoginOptions) -> Response {
    (status, Html(view! { <LoginPage options/> }.to_html())).into_response()
}

/// A failed login: the login page with what went wrong, and no session.
fn login_failed(state: &ServerState, status: StatusCode, message: &str) -> Response {
    render_login(status, login_options(state, "/", Some(message.to_owned())))
}

async fn login_page(State(state): State<ServerState>, session: Session, Query(query): Query<NextQuery>) -> Response {
    let next = safe_next(query.next.as_deref());
    if guard::logged_in(&state, &session).await.is_some() {
        return Redirect::to(&next).into_response();
    }
    render_login(StatusCode::OK, login_options(&state, &next, None))
}

/// Off to Sentry's consent page, with `state` and the PKCE verifier kept
/// in the session for the callback.
async fn start_login(State(state): State<ServerState>, session: Session, Query(query): Query<NextQuery>) -> Response {
    let Some(identity) = state.identity.clone() else {
        return Redirect::to("/login").into_response();
    };
    let authorization = identity.authorize();
    let pending = PendingLogin {
        state: authorization.state.secret().clone(),
        verifier: authorization.verifier.secret().clone(),
        next: safe_next(query.next.as_deref()),
    };
    if let Err(error) = session.insert(PENDING_LOGIN, pending).await {
        tracing::error!(%error, "could not keep a pending login in the session");
        return login_failed(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            "Logging in is not possible right now; try again in a moment.",
        );
    }
    Redirect::to(authorization.url.as_str()).into_response()
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Sentry sends the browser back here with a code (or an error). The
/// pending login is taken out of the session first, so a `state` works
/// once: a replayed callback finds nothing to match.
async fn callback(State(state): State<ServerState>, session: Session, Query(query): Query<CallbackQuery>) -> Response {
    let pending: Option<PendingLogin> = session.remove(PENDING_LOGIN).await.ok().flatten();
    let Some(pending) = pending else {
        return failed_login(
            &state,
            None,
            StatusCode::BAD_REQUEST,
            "no pending login (state unknown or reused)",
            "This login has expired or was already used. Start again.",
        )
        .await;
    };
    let state_matches = query
        .state
        .as_deref()
        .is_some_and(|given| issuebridge::crypto::constant_time_eq(given.as_bytes(), pending.state.as_bytes()));
    if !state_matches {
        return failed_login(
            &state,
            None,
            StatusCode::BAD_REQUEST,
            "state did not match",
            "This login did not start here (its state does not match). Start again.",
        )
        .await;
    }
    if let Some(error) = query.error.as_deref() {
        let message = if error == "access_denied" {
            "You did not allow issuebridge to read your Sentry identity, so you are not logged in."
        } else {
            "Sentry did not log you in. Start again."
        };
        return failed_login(&state, None, StatusCode::FORBIDDEN, &format!("Sentry answered {error}"), message).await;
    }
    let (Some(code), Some(identity)) = (query.code.as_deref(), state.identity.clone()) else {
        return failed_login(
            &state,
            None,
            StatusCode::BAD_REQUEST,
            "no code",
            "Sentry sent no code back. Start again.",
        )
        .await;
    };

    let verifier = PkceCodeVerifier::new(pending.verifier);
    let outcome = async {
        let tokens = identity.exchange(code, verifier).await?;
        let person = identity.person(&tokens.access).await?;
        let memberships = identity.memberships(&tokens.access).await?;
        Ok::<_, IdentityError>((tokens, person, memberships))
    }
    .await;
    let (tokens, person, memberships) = match outcome {
        Ok(found) => found,
        Err(error @ IdentityError::Unreachable(_)) => {
            return failed_login(
                &state,
                None,
                StatusCode::BAD_GATEWAY,
                &error.to_string(),
                "Sentry did not answer, so you are not logged in. Try again in a moment.",
            )
            .await;
        }
        Err(error) => {
            return failed_login(
                &state,
                None,
                StatusCode::BAD_REQUEST,
                &error.to_string(),
                "Sentry did not accept this login (the code was spent, or did not match). Start again.",
            )
            .await;
        }
    };
    let now = now_ms();
    let viewer = Viewer {
        admin: person.email_verified && state.app.config.is_admin(&person.email),
        user_id: person.user_id.clone(),
        name: person.name,
        email: person.email,
        memberships,
        method: LoginMethod::Sentry,
    };
    let login = LoginSession {
        login_id: new_login_id(),
        memberships_confirmed_at_ms: now,
        email_verified: person.email_verified,
        tokens: Some(SealedUserTokens::seal(&state.app, &viewer.user_id, &tokens)),
        viewer,
        logged_in_at_ms: now,
        memberships_checked_at_ms: now,
    };
    start_session(&state, &session, login, &pending.next, "with Sentry").await
}

/// A new session id for the logged-in person (so a session id planted
/// before login is worth nothing after it), the login recorded, and on to
/// where they were going.
async fn start_session(state: &ServerState, session: &Session, login: LoginSession, next: &str, how: &str) -> Response {
    let email = login.viewer.email.clone();
    if let Err(error) = state.app.store.start_login(&login.login_id, &email).await {
        tracing::error!(%error, "could not record a login");
        return login_failed(
            state,
            StatusCode::SERVICE_UNAVAILABLE,
            "Logging in is not possible right now; try again in a moment.",
        );
    }
    let stored = async {
        session.cycle_id().await?;
        session.insert(LOGIN, login).await
    }
    .await;
    if let Err(error) = stored {
        tracing::error!(%error, "could not store a console session");
        return login_failed(
            state,
            StatusCode::SERVICE_UNAVAILABLE,
            "Logging in is not possible right now; try again in a moment.",
        );
    }
    audit(&state.app, NewAuditEvent::new(&email, AuditAction::Login, format!("logged in {how}"))).await;
    Redirect::to(next).into_response()
}

async fn failed_login(
    state: &ServerState,
    who: Option<&str>,
    status: StatusCode,
    cause: &str,
    message: &str,
) -> Response {
    tracing::info!(%cause, "a console login failed");
    audit(&state.app, NewAuditEvent::new(who.unwrap_or("unknown"), AuditAction::LoginFailed, cause)).await;
    login_failed(state, status, message)
}

/// Records a login-related event; a failure to record is logged, and does
/// not stop the person (the log has it).
async fn audit(state: &AppState, event: NewAuditEvent) {
    if let Err(error) = state.store.record_audit(&event).await {
        tracing::error!(%error, action = %event.action, "could not write the audit log");
    }
}

/// Ends the session in the store, so the cookie is worth nothing on any
/// instance. A POST (a form in the header), from this site only.
async fn logout(State(state): State<ServerState>, session: Session) -> Response {
    if let Some(login) = guard::logged_in(&state, &session).await {
        if let Err(error) = state.app.store.end_login(&login.login_id).await {
            tracing::error!(%error, "could not end a login");
            return (StatusCode::SERVICE_UNAVAILABLE, "Could not log out; try again.").into_response();
        }
        audit(&state.app, NewAuditEvent::new(&login.viewer.email, AuditAction::Logout, "logged out")).await;
    }
    if let Err(error) = session.flush().await {
        tracing::error!(%error, "could not end a console session");
        return (StatusCode::SERVICE_UNAVAILABLE, "Could not log out; try again.").into_response();
    }
    Redirect::to("/login").into_response()
}

fn new_login_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The hash a login link's secret is kept under.
pub fn login_link_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn link_not_valid() -> Response {
    crate::page::error_page(
        StatusCode::NOT_FOUND,
        "This login link is not valid",
        "It was used already, has expired (links last ten minutes), or names someone who is no longer an administrator. Run `issuebridge login-link --email …` again for a new one.",
    )
}

async fn link_page(State(state): State<ServerState>, Path(token): Path<String>) -> Response {
    match state.app.store.login_link_email(&login_link_hash(&token)).await {
        Ok(Some(email)) if state.app.config.is_admin(&email) => {
            let action = format!("/auth/link/{token}");
            Html(view! { <LoginLinkPage email action/> }.to_html()).into_response()
        }
        Ok(_) => link_not_valid(),
        Err(error) => {
            tracing::error!(%error, "could not read a login link");
            crate::page::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "The link could not be checked right now.",
            )
        }
    }
}

async fn use_link(State(state): State<ServerState>, session: Session, Path(token): Path<String>) -> Response {
    let email = match state.app.store.spend_login_link(&login_link_hash(&token)).await {
        Ok(Some(email)) if state.app.config.is_admin(&email) => email,
        Ok(_) => {
            audit(&state.app, NewAuditEvent::new("unknown", AuditAction::LoginFailed, "login link not valid")).await;
            return link_not_valid();
        }
        Err(error) => {
            tracing::error!(%error, "could not spend a login link");
            return crate::page::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "The link could not be checked right now.",
            );
        }
    };
    let now = now_ms();
    let login = LoginSession {
        viewer: Viewer {
            user_id: email.clone(),
            name: email.clone(),
            email,
            admin: true,
            memberships: Vec::new(),
            method: LoginMethod::LoginLink,
        },
        login_id: new_login_id(),
        logged_in_at_ms: now,
        memberships_checked_at_ms: now,
        memberships_confirmed_at_ms: now,
        email_verified: true,
        tokens: None,
    };
    start_session(&state, &session, login, "/", "with a login link").await
}
