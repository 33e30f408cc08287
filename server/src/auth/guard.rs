//! The layers between a browser and the console:
//!
//! - [`require_viewer`]: console pages and server functions need a
//!   session; the person ([`Viewer`]) rides in the request's extensions,
//!   where server functions find it;
//! - [`same_origin`]: a state change from a browser must come from this
//!   site (`Origin`, else `Sec-Fetch-Site`, else `Referer`), against
//!   cross-site request forgery;
//! - [`allowed_host`]: the `Host` must be this site's, against DNS
//!   rebinding (a hostile name resolving to a console on localhost);
//! - [`security_headers`]: a strict Content-Security-Policy (pages get one
//!   with their script nonce from the Leptos context), no framing, no
//!   sniffing, no referrer, no caching of data, and HSTS over https.

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use issuebridge::domain::access::{LoginMethod, Viewer};
use issuebridge::domain::time::now_ms;
use tower_sessions::Session;
use url::Url;

use super::identity::IdentityError;
use super::{LoginSession, SealedUserTokens, LOGIN};
use crate::state::ServerState;

/// The policy of every response that does not bring its own: nothing runs,
/// nothing frames it. Console pages replace it with [`page_csp`].
const DEFAULT_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                           frame-ancestors 'none'; base-uri 'none'";

/// A console page's policy: its own scripts, the one inline hydration
/// script by its nonce, and WebAssembly compiled from this site's module.
pub fn page_csp(nonce: &str, live_reload: bool) -> String {
    // Live reload (development only) talks to cargo-leptos over a socket.
    let connect = if live_reload { "'self' ws:" } else { "'self'" };
    format!(
        "default-src 'none'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src {connect}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The addresses this site answers to, from its public URL: that
/// authority, and when it is a loopback address, the other loopback names
/// at the same port (people open `localhost:3000` for `127.0.0.1:3000`; no
/// outside name can point a browser there without being refused).
#[derive(Debug, Clone)]
pub struct SiteOrigin {
    scheme: String,
    authorities: Vec<String>,
}

impl SiteOrigin {
    pub fn new(public_url: &Url) -> Self {
        let host = public_url.host_str().unwrap_or_default().to_ascii_lowercase();
        let port = public_url.port();
        let with_port = |host: &str| match port {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let loopback = ["localhost", "127.0.0.1", "[::1]"];
        let mut authorities = vec![with_port(&host)];
        if loopback.contains(&host.as_str()) {
            authorities.extend(loopback.iter().filter(|name| **name != host).map(|name| with_port(name)));
        }
        Self { scheme: public_url.scheme().to_owned(), authorities }
    }

    pub fn https(&self) -> bool {
        self.scheme == "https"
    }

    fn allows_authority(&self, authority: &str) -> bool {
        let authority = authority.trim().to_ascii_lowercase();
        // An explicit default port names the same site.
        let default_port = if self.https() { ":443" } else { ":80" };
        let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
        self.authorities.iter().any(|allowed| allowed == authority)
    }

    /// `scheme://authority`, as `Origin` and `Referer` carry it.
    fn allows_origin(&self, origin: &str) -> bool {
        match origin.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case(&self.scheme) => {
                let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
                self.allows_authority(authority)
            }
            _ => false,
        }
    }
}

fn header_text<'a>(request: &'a Request, name: header::HeaderName) -> Option<&'a str> {
    request.headers().get(name).and_then(|value| value.to_str().ok())
}

/// Refuses a request whose `Host` is not this site's. A request without
/// one did not come from a browser (HTTP/1.1 browsers always send it), so
/// it cannot be a rebinding attack and passes.
pub async fn allowed_host(State(state): State<ServerState>, request: Request, next: Next) -> Response {
    let host = header_text(&request, header::HOST)
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    match host {
        Some(host) if !state.site.allows_authority(&host) => {
            (StatusCode::MISDIRECTED_REQUEST, "This server does not answer to that host name.").into_response()
        }
        _ => next.run(request).await,
    }
}

/// Refuses a state-changing request that a browser sent from another site.
///
/// `Origin` decides when it names a site. Under this site's
/// `Referrer-Policy: no-referrer` browsers send `Origin: null` even on
/// same-origin POSTs (Fetch, "serializing a request origin"), so then
/// `Sec-Fetch-Site` decides, which browsers send whatever the policy; an
/// older browser without it is judged by `Referer`. A request that proves
/// nothing is refused: the console's own pages always send one of them.
pub async fn same_origin(State(state): State<ServerState>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let origin = header_text(&request, header::ORIGIN).filter(|origin| *origin != "null");
    let allowed = if let Some(origin) = origin {
        state.site.allows_origin(origin)
    } else if let Some(site) = header_text(&request, header::HeaderName::from_static("sec-fetch-site")) {
        site == "same-origin"
    } else if let Some(referer) = header_text(&request, header::REFERER) {
        state.site.allows_origin(referer)
    } else {
        false
    };
    if allowed {
        next.run(request).await
    } else {
        (StatusCode::FORBIDDEN, "Refused: this change did not come from this site's pages.").into_response()
    }
}

/// Adds the security headers a response does not set itself.
pub async fn security_headers(State(state): State<ServerState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set_default = |name: header::HeaderName, value: &'static str| {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set_default(header::CONTENT_SECURITY_POLICY, DEFAULT_CSP);
    set_default(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(header::X_FRAME_OPTIONS, "DENY");
    // The setup URL carries a grant code: it must not leak onwards.
    set_default(header::REFERRER_POLICY, "no-referrer");
    // Static files set their own (revalidated) caching; everything else
    // may carry someone's data.
    set_default(header::CACHE_CONTROL, "no-store");
    if state.site.https() {
        set_default(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    response
}

/// The logged-in session, if there is one and it is still good: its login
/// not ended (by a logout anywhere), within its absolute lifetime, and (for
/// a login link) still an administrator's. An instance administrator is
/// who the configuration names today.
pub async fn logged_in(state: &ServerState, session: &Session) -> Option<LoginSession> {
    let mut login: LoginSession = session.get(LOGIN).await.ok().flatten()?;
    let config = &state.app.config;
    let too_old = now_ms() - login.logged_in_at_ms > config.session.absolute_timeout_secs * 1000;
    login.viewer.admin = login.email_verified && config.is_admin(&login.viewer.email);
    let ended = match state.app.store.login_is_active(&login.login_id).await {
        Ok(active) => !active,
        Err(error) => {
            // Fail closed: without the store nothing could be shown anyway.
            tracing::error!(%error, "could not check a login");
            return None;
        }
    };
    if ended || too_old || (login.viewer.method == LoginMethod::LoginLink && !login.viewer.admin) {
        let _ = session.flush().await;
        return None;
    }
    Some(login)
}

/// Ends the session (and its login, so no copy of the record revives it).
async fn end_session(state: &ServerState, session: &Session, login: &LoginSession) {
    if let Err(error) = state.app.store.end_login(&login.login_id).await {
        tracing::error!(%error, "could not end a login");
    }
    let _ = session.flush().await;
}

/// How many refresh intervals memberships may go unconfirmed (Sentry not
/// answering, a token refresh lost to a parallel request) before the
/// session is no longer trusted and ends: someone removed from an
/// organization must not keep it through an outage.
const UNCONFIRMED_INTERVALS: i64 = 6;

/// The person, with memberships asked of Sentry again when they are older
/// than the policy allows. Sentry refusing the person's token for their
/// organizations ends the session; any other failure keeps what is known,
/// is tried again an interval later, and ends the session once the
/// memberships have gone unconfirmed for [`UNCONFIRMED_INTERVALS`].
pub async fn current_viewer(state: &ServerState, session: &Session) -> Option<Viewer> {
    let mut login = logged_in(state, session).await?;
    let now = now_ms();
    let interval_ms = state.app.config.session.membership_refresh_secs * 1000;
    let changed_here = state.app.memberships_changed_at_ms.load(std::sync::atomic::Ordering::SeqCst);
    let due = now - login.memberships_checked_at_ms >= interval_ms || login.memberships_checked_at_ms <= changed_here;
    if login.viewer.method != LoginMethod::Sentry || !due {
        return Some(login.viewer);
    }
    let user_id = login.viewer.user_id.clone();
    let (Some(identity), Some(mut tokens)) =
        (state.identity.clone(), login.tokens.as_ref().and_then(|sealed| sealed.open(&state.app, &user_id)))
    else {
        end_session(state, session, &login).await;
        return None;
    };
    login.memberships_checked_at_ms = now;
    if tokens.expires_at_ms.is_some_and(|expiry| expiry <= now + 60_000) {
        // Refresh tokens work once: the new pair is kept before anything
        // else can fail.
        match tokens.refresh.clone() {
            Some(refresh) => match identity.refresh(&refresh).await {
                Ok(fresh) => {
                    tokens = fresh;
                    login.tokens = Some(SealedUserTokens::seal(&state.app, &user_id, &tokens));
                }
                Err(error) => return kept_or_ended(state, session, login, now, &error.to_string()).await,
            },
            None => return kept_or_ended(state, session, login, now, "the token expired").await,
        }
    }
    match identity.memberships(&tokens.access).await {
        Ok(memberships) => {
            login.viewer.memberships = memberships;
            login.memberships_confirmed_at_ms = now;
            keep(session, &login).await;
            Some(login.viewer)
        }
        Err(IdentityError::Refused(reason)) => {
            tracing::info!(%reason, email = %login.viewer.email, "Sentry refused a person's token: session ended");
            end_session(state, session, &login).await;
            None
        }
        Err(error) => kept_or_ended(state, session, login, now, &error.to_string()).await,
    }
}

async fn keep(session: &Session, login: &LoginSession) {
    if let Err(error) = session.insert(LOGIN, login).await {
        tracing::warn!(%error, "could not keep the refreshed login in the session");
    }
}

/// A refresh that failed: the known memberships serve until they have gone
/// unconfirmed too long, and the next attempt waits an interval.
async fn kept_or_ended(
    state: &ServerState,
    session: &Session,
    login: LoginSession,
    now: i64,
    why: &str,
) -> Option<Viewer> {
    let limit_ms = UNCONFIRMED_INTERVALS * state.app.config.session.membership_refresh_secs * 1000;
    if now - login.memberships_confirmed_at_ms > limit_ms {
        tracing::info!(%why, email = %login.viewer.email, "memberships unconfirmed for too long: session ended");
        end_session(state, session, &login).await;
        return None;
    }
    tracing::warn!(%why, "could not refresh a person's memberships; keeping the known ones for now");
    keep(session, &login).await;
    Some(login.viewer)
}

/// A server function called with arguments it cannot read answers 400, not
/// the 500 Leptos gives every error: the caller sent something malformed,
/// nothing failed here. Errors travel as `Variant|message`
/// (server_fn's encoding); only the argument variants are the caller's.
pub async fn malformed_calls_are_bad_requests(request: Request, next: Next) -> Response {
    const CALLERS_FAULT: [&str; 3] = ["Args|", "Deserialization|", "MissingArg|"];
    let response = next.run(request).await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Error answers are a sentence; anything larger is passed on as it was.
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    };
    if CALLERS_FAULT.iter().any(|prefix| bytes.starts_with(prefix.as_bytes())) {
        parts.status = StatusCode::BAD_REQUEST;
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Console pages and server functions: a person, or off to log in. A
/// page is answered with a redirect to `/login` (and back afterwards); a
/// server function with 401.
pub async fn require_viewer(
    State(state): State<ServerState>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(viewer) = current_viewer(&state, &session).await {
        request.extensions_mut().insert(viewer);
        return next.run(request).await;
    }
    let is_page = matches!(*request.method(), Method::GET | Method::HEAD) && !request.uri().path().starts_with("/api/");
    if is_page {
        let wanted = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("next", wanted).finish();
        Redirect::to(&format!("/login?{query}")).into_response()
    } else {
        (StatusCode::UNAUTHORIZED, "Log in to use the console.").into_response()
    }
}
