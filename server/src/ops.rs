//! Operations endpoints: liveness, readiness and metrics.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
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

/// Prometheus text exposition.
pub async fn metrics(State(state): State<ServerState>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}
