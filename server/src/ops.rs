//! Operations endpoints: liveness, readiness and metrics.

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use axum::routing::get;
use axum::Router;

use crate::error::ApiResult;
use crate::state::ServerState;

/// `/healthz`, `/readyz` and `/metrics`: no session, ever.
pub fn router() -> Router<ServerState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
}

/// Alive: the process answers. Touches nothing else, so a slow database
/// never gets a healthy process restarted.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Ready: the database answers and has every migration this binary knows.
pub async fn readyz(State(state): State<ServerState>) -> ApiResult<impl IntoResponse> {
    state.app.store.readiness().await?;
    Ok(Json(json!({ "status": "ready", "database": state.app.store.backend().name() })))
}

/// Prometheus text exposition; with `ISSUEBRIDGE_METRICS_TOKEN` set, only
/// for requests that bear it (compared in constant time).
pub async fn metrics(State(state): State<ServerState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.app.config.metrics_token {
        let bearer = headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !issuebridge::crypto::constant_time_eq(bearer.trim().as_bytes(), token.expose().as_bytes()) {
            return (StatusCode::UNAUTHORIZED, [(WWW_AUTHENTICATE, "Bearer")], "metrics need the bearer token\n")
                .into_response();
        }
    }
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render()).into_response()
}
