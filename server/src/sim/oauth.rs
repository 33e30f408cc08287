//! The simulated Sentry's OAuth2 provider for console login (docs/sentry-protocol.md §2.5):
//! `/oauth/authorize/` with a consent page, `/oauth/token/` (form-encoded;
//! client credentials by Basic auth or form fields, never both; PKCE S256),
//! `/oauth/userinfo/`, and, with the person's token, `GET
//! /api/0/organizations/` and `GET /api/0/organizations/{slug}/` (whose
//! `access` lists what the person may do there). The consent page offers
//! each of the simulator's people, so one click logs in as any of them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use issuebridge::domain::time::now_ms;
use issuebridge::sentry::api::format_datetime_ms;
use leptos::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;

use super::api::{bearer_token, sentry_json};
use super::model::{OAuthCode, UserToken};
use super::{random_hex, Shared};

/// Sentry's OAuth tokens live 30 days; the simulator uses 8 hours like the
/// app tokens, which is enough for any test and shows refresh working.
const USER_TOKEN_LIFETIME_MS: i64 = 8 * 60 * 60 * 1000;
const CODE_LIFETIME_MS: i64 = 10 * 60 * 1000;

pub(super) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/oauth/authorize/", get(authorize_page).post(authorize_decision))
        .route("/oauth/token/", axum::routing::post(token))
        .route("/oauth/userinfo/", get(userinfo))
        .route("/api/0/organizations/", get(organizations))
        .route("/api/0/organizations/{slug}/", get(organization))
}

fn params(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn error_page(message: &'static str) -> Response {
    let page = view! {
        <!DOCTYPE html>
        <title>"Error"</title>
        <h1>"Authorization error"</h1>
        <p>{message}</p>
    };
    (StatusCode::BAD_REQUEST, Html(page.to_html())).into_response()
}

/// The checks made before any redirect: a bad client or redirect URI gets
/// an error page, never a redirect to an unvetted address.
fn checked_redirect(shared: &Shared, params: &[(String, String)]) -> Result<Url, &'static str> {
    let oauth = &shared.oauth;
    if param(params, "client_id") != Some(oauth.client_id.as_str()) {
        return Err("Invalid client_id");
    }
    let redirect = param(params, "redirect_uri").unwrap_or_default();
    let registered = shared.model().oauth_redirect_uris.clone();
    let allowed =
        if registered.is_empty() { redirect.starts_with("http") } else { registered.iter().any(|r| r == redirect) };
    match Url::parse(redirect) {
        Ok(url) if allowed => Ok(url),
        _ => Err("Invalid redirect_uri"),
    }
}

fn redirect_with(mut target: Url, pairs: &[(&str, &str)]) -> Response {
    {
        let mut query = target.query_pairs_mut();
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
    }
    Redirect::to(target.as_str()).into_response()
}

/// Validates the request and shows the consent page.
async fn authorize_page(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let params = params(&query.unwrap_or_default());
    let redirect = match checked_redirect(&shared, &params) {
        Ok(url) => url,
        Err(problem) => return error_page(problem),
    };
    let state = param(&params, "state").unwrap_or_default();
    if param(&params, "response_type") != Some("code") {
        return redirect_with(redirect, &[("error", "unsupported_response_type"), ("state", state)]);
    }
    if let Some(challenge) = param(&params, "code_challenge") {
        let valid = (43..=128).contains(&challenge.len())
            && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if !valid || param(&params, "code_challenge_method") != Some("S256") {
            return redirect_with(redirect, &[("error", "invalid_request"), ("state", state)]);
        }
    }
    let scope = param(&params, "scope").unwrap_or_default().to_owned();
    // Who is signed in to Sentry: each of the simulator's people, with the
    // organizations they belong to, is one button.
    let people: Vec<(i64, String)> = {
        let mut model = shared.model();
        let users = model.users.clone();
        users
            .iter()
            .map(|user| {
                let orgs: Vec<String> = model
                    .memberships_of(user.id)
                    .into_iter()
                    .map(|(member, _)| format!("{} of {}", member.role, member.org_slug))
                    .collect();
                let orgs = if orgs.is_empty() { "no organization".to_owned() } else { orgs.join(", ") };
                (user.id, format!("Approve as {} ({}): {orgs}", user.name, user.email))
            })
            .collect()
    };
    // The request's parameters go back with the decision.
    let hidden = params.into_iter().map(|(name, value)| view! { <input type="hidden" name=name value=value/> });
    let buttons = people.into_iter().map(|(id, label)| {
        view! { <p><button type="submit" name="user" value=id.to_string()>{label}</button></p> }
    });
    let page = view! {
        <!DOCTYPE html>
        <html>
            <head>
                <title>"Authorize · Sentry (simulated)"</title>
                // No icon to fetch: the browser asks for none.
                <link rel="icon" href="data:,"/>
            </head>
            <body>
                <h1>"Authorize the application"</h1>
                <p>"It asks for: " <code>{scope}</code></p>
                <p>"This simulated Sentry has several people; choose who you are."</p>
                <form method="post" action="/oauth/authorize/">
                    {hidden.collect_view()}
                    {buttons.collect_view()}
                    <p><button type="submit" name="op" value="deny">"Deny"</button></p>
                </form>
            </body>
        </html>
    };
    Html(page.to_html()).into_response()
}

/// The consent form's answer: a code (or `access_denied`) back to the app.
async fn authorize_decision(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let params = params(&String::from_utf8_lossy(&body));
    let redirect = match checked_redirect(&shared, &params) {
        Ok(url) => url,
        Err(problem) => return error_page(problem),
    };
    let state = param(&params, "state").unwrap_or_default().to_owned();
    // A person's button approves as them; a bare `op=approve` as the first.
    let user_id = match (param(&params, "user"), param(&params, "op")) {
        (Some(user), _) => user.parse::<i64>().ok().filter(|id| shared.model().users.iter().any(|u| u.id == *id)),
        (None, Some("approve")) => Some(super::model::OWNER.0),
        _ => None,
    };
    let Some(user_id) = user_id else {
        return redirect_with(redirect, &[("error", "access_denied"), ("state", &state)]);
    };
    let code = random_hex(16);
    shared.model().oauth_codes.insert(
        code.clone(),
        OAuthCode {
            user_id,
            redirect_uri: redirect.to_string(),
            scope: param(&params, "scope").unwrap_or_default().to_owned(),
            challenge: param(&params, "code_challenge").map(str::to_owned),
            expires_at_ms: now_ms() + CODE_LIFETIME_MS,
        },
    );
    redirect_with(redirect, &[("code", &code), ("state", &state)])
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    let mut response = sentry_json(status, json!({ "error": error }));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, "Basic realm=\"oauth\"".parse().expect("ascii"));
    }
    response
}

/// `POST /oauth/token/`, form-encoded only.
async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let form_encoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_encoded {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let params = params(&String::from_utf8_lossy(&body));
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| pair.split_once(':').map(|(id, secret)| (id.to_owned(), secret.to_owned())));
    let in_form = param(&params, "client_id")
        .map(|id| (id.to_owned(), param(&params, "client_secret").unwrap_or_default().to_owned()));
    let (client_id, client_secret) = match (basic, in_form) {
        (Some(_), Some(_)) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request"),
        (Some(pair), None) | (None, Some(pair)) => pair,
        (None, None) => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client"),
    };
    if client_id != shared.oauth.client_id || client_secret != shared.oauth.client_secret {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }

    let mut model = shared.model();
    let (user_id, scope) = match param(&params, "grant_type") {
        Some("authorization_code") => {
            let Some(grant) = param(&params, "code").and_then(|code| model.oauth_codes.remove(code)) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            if grant.expires_at_ms <= now_ms() || param(&params, "redirect_uri") != Some(grant.redirect_uri.as_str()) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            if let Some(challenge) = &grant.challenge {
                let verifier = param(&params, "code_verifier").unwrap_or_default();
                if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != *challenge {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
                }
            }
            (grant.user_id, grant.scope)
        }
        Some("refresh_token") => {
            if param(&params, "scope").is_some() {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
            }
            let refresh = param(&params, "refresh_token").unwrap_or_default();
            let Some((old, record)) =
                model.user_tokens.iter().find(|(_, t)| t.refresh_token == refresh).map(|(k, v)| (k.clone(), v.clone()))
            else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            model.user_tokens.remove(&old);
            (record.user_id, record.scope)
        }
        _ => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    let access = random_hex(32);
    let record =
        UserToken { user_id, refresh_token: random_hex(32), scope, expires_at_ms: now_ms() + USER_TOKEN_LIFETIME_MS };
    model.user_tokens.insert(access.clone(), record.clone());
    let Some(user) = model.users.iter().find(|u| u.id == user_id).cloned() else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    sentry_json(
        StatusCode::OK,
        json!({
            "access_token": access,
            "refresh_token": record.refresh_token,
            "expires_in": USER_TOKEN_LIFETIME_MS / 1000,
            "expires_at": format_datetime_ms(record.expires_at_ms),
            "token_type": "Bearer",
            "scope": record.scope,
            "user": { "id": user.id.to_string(), "name": user.name, "email": user.email },
        }),
    )
}

/// The live user token's record.
fn user_token(shared: &Shared, headers: &HeaderMap) -> Option<UserToken> {
    let token = bearer_token(headers).unwrap_or_default();
    shared.model().user_tokens.get(token).filter(|record| record.expires_at_ms > now_ms()).cloned()
}

async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(record) = user_token(&shared, &headers) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_token");
    };
    let scopes: Vec<&str> = record.scope.split_whitespace().collect();
    if !scopes.contains(&"openid") {
        return sentry_json(StatusCode::FORBIDDEN, json!({ "error": "insufficient_scope" }));
    }
    let Some(user) = shared.model().users.iter().find(|u| u.id == record.user_id).cloned() else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_token");
    };
    let mut info = json!({ "sub": user.id.to_string() });
    if scopes.contains(&"profile") {
        info["name"] = json!(user.name);
        info["avatar_type"] = json!("letter_avatar");
        info["avatar_url"] = Value::Null;
        info["date_joined"] = json!(format_datetime_ms(0));
    }
    if scopes.contains(&"email") {
        info["email"] = json!(user.email);
        info["email_verified"] = json!(user.email_verified);
    }
    sentry_json(StatusCode::OK, info)
}

/// The organizations the token's person belongs to (Sentry's short form).
async fn organizations(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(record) = user_token(&shared, &headers) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_token");
    };
    let list: Vec<Value> = shared
        .model()
        .memberships_of(record.user_id)
        .into_iter()
        .map(|(member, id)| json!({ "id": id.to_string(), "slug": member.org_slug, "name": member.org_slug }))
        .collect();
    sentry_json(StatusCode::OK, Value::Array(list))
}

/// One organization in Sentry's detailed form, with `access`: what the
/// token's person may do there. Not a member: 404, as Sentry answers.
async fn organization(State(shared): State<Arc<Shared>>, Path(slug): Path<String>, headers: HeaderMap) -> Response {
    let Some(record) = user_token(&shared, &headers) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_token");
    };
    let found = shared.model().memberships_of(record.user_id).into_iter().find(|(member, _)| member.org_slug == slug);
    // As Sentry does for a token, `access` is the role's scopes narrowed
    // to the token's own: a console token (org:read) shows no org:write.
    let granted: Vec<&str> = record.scope.split_whitespace().collect();
    match found {
        Some((member, id)) => sentry_json(
            StatusCode::OK,
            json!({
                "id": id.to_string(),
                "slug": member.org_slug,
                "name": member.org_slug,
                "access": member.access().into_iter().filter(|scope| granted.contains(scope)).collect::<Vec<_>>(),
                "orgRole": member.role,
            }),
        ),
        None => super::api::detail(StatusCode::NOT_FOUND, "The requested resource does not exist"),
    }
}
