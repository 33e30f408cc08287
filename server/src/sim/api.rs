//! The simulated Sentry's HTTP endpoints, with Sentry's status codes and
//! error bodies (docs/sentry-protocol.md §2).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use issuebridge::domain::time::now_ms;
use issuebridge::sentry::api::format_datetime_ms;
use issuebridge::sentry::wire::to_sentry_json;
use serde_json::{json, Value};

use super::model::Token;
use super::Shared;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/0/sentry-app-installations/{uuid}/authorizations/", post(authorizations))
        .route(
            "/api/0/sentry-app-installations/{uuid}/",
            get(get_installation).put(verify_installation).delete(delete_installation),
        )
        .merge(super::resources::router(shared.clone()))
        .merge(super::oauth::router())
        .layer(middleware::from_fn_with_state(shared.clone(), log_and_inject_failures))
        .with_state(shared)
}

/// Answers with Sentry's compact JSON encoding.
pub(super) fn sentry_json(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], to_sentry_json(&body)).into_response()
}

pub(super) fn detail(status: StatusCode, text: &str) -> Response {
    sentry_json(status, json!({ "detail": text }))
}

/// Records every request; answers an armed failure instead of serving.
async fn log_and_inject_failures(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let delay = {
        let mut model = shared.model();
        model.arrivals.push((method.clone(), path.clone()));
        model.take_delay(&method, &path)
    };
    if let Some(millis) = delay {
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
    }
    let injected = {
        let mut model = shared.model();
        if model.down {
            Some(503)
        } else {
            model.take_failure(&method, &path)
        }
    };
    let response = match injected {
        Some(status) => {
            let mut answer =
                detail(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), "simulated failure");
            // Sentry's 429 says when to come back.
            if status == 429 {
                answer.headers_mut().insert("retry-after", header::HeaderValue::from_static("1"));
            }
            answer
        }
        None => next.run(request).await,
    };
    shared.model().log.push((method, path, response.status().as_u16()));
    response
}

/// `POST /api/0/sentry-app-installations/{uuid}/authorizations/`: grant
/// exchange and refresh. Client credentials come from the JSON body; a form
/// body has none and fails authentication, as in Sentry.
async fn authorizations(
    State(shared): State<Arc<Shared>>,
    Path(uuid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let body: Value = match serde_json::from_slice(&body) {
        Ok(Value::Object(map)) if is_json => Value::Object(map),
        _ => return detail(StatusCode::UNAUTHORIZED, "Invalid request"),
    };
    if body.get("grant_type").and_then(Value::as_str) == Some(JWT_BEARER) {
        return manual_refresh(&shared, &uuid, &headers, body);
    }
    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    let app = &shared.app;
    if field("client_id").as_deref() != Some(app.client_id.as_str())
        || field("client_secret").as_deref() != Some(app.client_secret.as_str())
    {
        return detail(StatusCode::UNAUTHORIZED, "Invalid Client ID / Secret pair");
    }

    let mut model = shared.model();
    if !model.installations.contains_key(&uuid) {
        return detail(StatusCode::NOT_FOUND, "Could not find given sentry app installation");
    }
    let (token, record) = match field("grant_type").as_deref() {
        Some("authorization_code") => {
            let Some(code) = field("code") else {
                return sentry_json(StatusCode::BAD_REQUEST, json!({ "code": ["This field is required."] }));
            };
            let Some(grant) = model.grants.get(&code).cloned() else {
                return detail(StatusCode::UNAUTHORIZED, "Could not find grant for given code");
            };
            if grant.installation != uuid {
                return detail(StatusCode::UNAUTHORIZED, "Forbidden grant");
            }
            if grant.expires_at_ms <= now_ms() {
                return detail(StatusCode::UNAUTHORIZED, "Grant has already expired");
            }
            // Single use: the grant is deleted on exchange.
            model.grants.remove(&code);
            model.issue_token(&uuid)
        }
        Some("refresh_token") => {
            let Some(refresh_token) = field("refresh_token") else {
                return sentry_json(StatusCode::BAD_REQUEST, json!({ "refresh_token": ["This field is required."] }));
            };
            let known = model.tokens.values().any(|t| t.refresh_token == refresh_token && t.installation == uuid);
            if !known {
                return detail(StatusCode::UNAUTHORIZED, "Given refresh token does not exist");
            }
            model.refresh_count += 1;
            model.issue_token(&uuid)
        }
        _ => return detail(StatusCode::FORBIDDEN, "Invalid grant_type"),
    };
    sentry_json(StatusCode::CREATED, token_body(&token, &record, body.get("state").cloned()))
}

const JWT_BEARER: &str = "urn:sentry:params:oauth:grant-type:jwt-bearer";

/// The manual refresh of docs/sentry-protocol.md §2.3: a one-minute HS256 JWT signed with
/// the client secret, each `jti` usable once.
fn manual_refresh(shared: &Shared, uuid: &str, headers: &HeaderMap, body: Value) -> Response {
    let Some(authorization) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return detail(StatusCode::UNAUTHORIZED, "Header is in invalid form");
    };
    let Some(jwt) = authorization.strip_prefix("Bearer ") else {
        return detail(StatusCode::UNAUTHORIZED, "Bearer not present in token");
    };
    let Some(claims) = issuebridge::sentry::jwt::decode(jwt.trim(), shared.app.client_secret.as_bytes()) else {
        return detail(StatusCode::UNAUTHORIZED, "Could not validate JWT");
    };
    if claims.exp <= now_ms() / 1000 {
        return detail(StatusCode::UNAUTHORIZED, "Could not validate JWT");
    }
    if claims.iss != shared.app.client_id || claims.sub != shared.app.client_id {
        return detail(StatusCode::UNAUTHORIZED, "JWT is not valid for this application");
    }
    let mut model = shared.model();
    if !model.used_jtis.insert(claims.jti) {
        return detail(StatusCode::UNAUTHORIZED, "JWT has already been used");
    }
    if !model.installations.contains_key(uuid) {
        return detail(StatusCode::UNAUTHORIZED, "Installation not found");
    }
    if !model.manual_refresh_enabled {
        return detail(StatusCode::FORBIDDEN, "Manual token refresh is not enabled for this organization");
    }
    model.manual_refresh_count += 1;
    let (token, record) = model.issue_token(uuid);
    sentry_json(StatusCode::CREATED, token_body(&token, &record, body.get("state").cloned()))
}

fn token_body(token: &str, record: &Token, state: Option<Value>) -> Value {
    json!({
        "id": (record.created_at_ms % 100_000).to_string(),
        "scopes": ["event:read", "event:write", "org:read", "project:read", "project:write"],
        "name": null,
        "application": null,
        "expiresAt": format_datetime_ms(record.expires_at_ms),
        "dateCreated": format_datetime_ms(record.created_at_ms),
        "state": state.unwrap_or(Value::Null),
        "token": token,
        "refreshToken": record.refresh_token,
        "tokenLastCharacters": &token[token.len() - 4..],
    })
}

/// Sentry's refusal as status and detail text.
pub(super) type Refusal = (StatusCode, &'static str);

/// The token of an `Authorization: Bearer …` header.
pub(super) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

/// The installation whose live bearer token the request carries.
pub(super) fn token_installation(shared: &Shared, headers: &HeaderMap) -> Result<String, Refusal> {
    let Some(token) = bearer_token(headers) else {
        return Err((StatusCode::UNAUTHORIZED, "Authentication credentials were not provided."));
    };
    let model = shared.model();
    let Some(record) = model.tokens.get(token) else {
        return Err((StatusCode::UNAUTHORIZED, "Invalid token"));
    };
    if record.expires_at_ms <= now_ms() {
        return Err((StatusCode::UNAUTHORIZED, "Token expired"));
    }
    Ok(record.installation.clone())
}

const FORBIDDEN: Refusal = (StatusCode::FORBIDDEN, "You do not have permission to perform this action.");

/// A token of the installation `uuid` itself.
pub(super) fn authenticate(shared: &Shared, headers: &HeaderMap, uuid: &str) -> Result<(), Refusal> {
    if token_installation(shared, headers)? != uuid {
        return Err(FORBIDDEN);
    }
    Ok(())
}

/// A token of an installed installation in `org`: what the org-scoped
/// resource endpoints require.
pub(super) fn authenticate_org(shared: &Shared, headers: &HeaderMap, org: &str) -> Result<(), Refusal> {
    let installation = token_installation(shared, headers)?;
    match shared.model().installations.get(&installation) {
        Some(installation) if installation.org_slug == org && installation.status == "installed" => Ok(()),
        _ => Err(FORBIDDEN),
    }
}

/// 200 with the serialized installation, or Sentry's 404.
fn installation_answer(shared: &Shared, uuid: &str) -> Response {
    match installation_body(shared, uuid) {
        Some(body) => sentry_json(StatusCode::OK, body),
        None => detail(StatusCode::NOT_FOUND, "The requested resource does not exist"),
    }
}

fn installation_body(shared: &Shared, uuid: &str) -> Option<Value> {
    let model = shared.model();
    let installation = model.installations.get(uuid)?;
    Some(json!({
        "app": { "uuid": shared.app.uuid, "slug": shared.app.slug, "sentryAppId": 1 },
        "organization": { "slug": installation.org_slug, "id": installation.org_id },
        "uuid": installation.uuid,
        "status": installation.status,
    }))
}

async fn get_installation(State(shared): State<Arc<Shared>>, Path(uuid): Path<String>, headers: HeaderMap) -> Response {
    if let Err((status, text)) = authenticate(&shared, &headers, &uuid) {
        return detail(status, text);
    }
    installation_answer(&shared, &uuid)
}

/// `PUT {"status": "installed"}`: the app verifies the installation.
async fn verify_installation(
    State(shared): State<Arc<Shared>>,
    Path(uuid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err((status, text)) = authenticate(&shared, &headers, &uuid) {
        return detail(status, text);
    }
    let status = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("status").cloned());
    match status.as_ref().and_then(Value::as_str) {
        Some("installed") => {}
        other => {
            let shown = other.map(str::to_owned).unwrap_or_else(|| status.map(|s| s.to_string()).unwrap_or_default());
            return sentry_json(
                StatusCode::BAD_REQUEST,
                json!({ "status": [format!("Invalid value '{shown}' for status. Valid values: 'installed'")] }),
            );
        }
    }
    if let Some(installation) = shared.model().installations.get_mut(&uuid) {
        installation.status = "installed".to_owned();
    }
    installation_answer(&shared, &uuid)
}

async fn delete_installation(
    State(shared): State<Arc<Shared>>,
    Path(uuid): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, text)) = authenticate(&shared, &headers, &uuid) {
        return detail(status, text);
    }
    let mut model = shared.model();
    if let Some(installation) = model.installations.get_mut(&uuid) {
        installation.status = "pending_deletion".to_owned();
    }
    model.tokens.retain(|_, token| token.installation != uuid);
    StatusCode::NO_CONTENT.into_response()
}
