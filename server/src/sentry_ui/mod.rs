//! The UI components Sentry calls (docs/sentry-protocol.md §3): the schema,
//! selects, issue-link create and link, alert-rule-action settings, and
//! stacktrace links. What the forms contain is defined once, in
//! `issuebridge::components::definition`.
//!
//! Sentry hides a component whose requests fail, so every answer is JSON
//! `{"message"}` on failure, never a panic or a 500 for a bad body; each
//! request is counted in `/metrics` by component and outcome and kept in
//! the console's request log.

mod alert_rule;
mod issue_link;
mod select;
mod stacktrace;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use issuebridge::components::definition::{schema, uri};
use issuebridge::components::dispatch::{ComponentAnswer, ComponentCall, ComponentDispatch};
use issuebridge::components::log::ComponentRequest;
use issuebridge::domain::ids::InstallationUuid;
use issuebridge::domain::installation::InstallationStatus;
use issuebridge::domain::time::now_ms;
use issuebridge::store::InstallationRecord;
use serde_json::Value;

use crate::error::SentryEndpointError;
use crate::signed::SentrySigned;
use crate::state::ServerState;

/// The routes Sentry's servers call, signed. The stacktrace link is opened
/// by a person's browser and lives with the console's routes
/// ([`stacktrace_router`]).
pub fn router() -> Router<ServerState> {
    Router::new()
        .route("/sentry/schema.json", get(serve_schema))
        .route("/sentry/select/{source}", get(select::options))
        .route(uri::ISSUE_LINK_CREATE, post(issue_link::create))
        .route(uri::ISSUE_LINK_LINK, post(issue_link::link))
        .route(uri::ALERT_RULE_ACTION, post(alert_rule::settings))
}

/// The stacktrace link: a browser's GET, unsigned, answered by a redirect
/// or a page, so it needs the console's session to know who is asking.
pub fn stacktrace_router() -> Router<ServerState> {
    Router::new().route(uri::STACKTRACE_LINK, get(stacktrace::open))
}

/// How the console's Components page reaches these routes: each call is
/// signed with the app's client secret, as Sentry signs it, and answered by
/// the same handlers, in process.
pub fn console_dispatch(state: &ServerState) -> ComponentDispatch {
    use tower::ServiceExt;
    let routes = router().with_state(state.clone());
    let secret = state.app.webhook_secrets().into_iter().next();
    ComponentDispatch::new(move |call: ComponentCall| {
        let routes = routes.clone();
        let secret = secret.clone();
        async move {
            let secret = secret.ok_or("no Sentry App client secret is configured")?;
            let signature = issuebridge::sentry::signature::sign(secret.expose().as_bytes(), &call.body);
            let request = axum::http::Request::builder()
                .method(call.method)
                .uri(call.path_and_query)
                .header("content-type", "application/json")
                .header("sentry-app-signature", signature)
                .body(axum::body::Body::from(call.body))
                .map_err(|e| e.to_string())?;
            let response = routes.oneshot(request).await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.map_err(|e| e.to_string())?;
            Ok(ComponentAnswer { status, body: body.to_vec() })
        }
    })
}

async fn serve_schema() -> Json<Value> {
    Json(schema())
}

/// What a component request was, for its metric and its log entry.
pub(crate) struct Served {
    pub component: &'static str,
    pub installation: Option<String>,
    pub request: String,
}

impl Served {
    pub fn new(component: &'static str) -> Self {
        Self { component, installation: None, request: String::new() }
    }
}

/// The answer to a signed component request, counted and logged.
pub(crate) fn answer(
    state: &ServerState,
    served: Served,
    result: Result<(StatusCode, Value), SentryEndpointError>,
) -> Response {
    let (status, summary, response) = match result {
        Ok((status, body)) => {
            let summary = match &body {
                Value::Array(options) => format!("{} options", options.len()),
                Value::Object(map) => map
                    .get("message")
                    .or_else(|| map.get("identifier"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                _ => String::new(),
            };
            (status, summary, (status, Json(body)).into_response())
        }
        Err(error) => (error.status(), error.to_string(), error.into_response()),
    };
    record(state, served, status, summary);
    response
}

/// Counts a request by component and outcome and keeps it in the log.
pub(crate) fn record(state: &ServerState, served: Served, status: StatusCode, answer: String) {
    let outcome = match status.as_u16() {
        200..=399 => "ok",
        401 => "unauthorized",
        400..=499 => "refused",
        _ => "error",
    };
    state.metrics.record_component(served.component, outcome);
    state.app.component_log.record(ComponentRequest {
        at_ms: now_ms(),
        component: served.component.to_owned(),
        installation_uuid: served.installation,
        status: status.as_u16(),
        request: served.request,
        answer,
    });
}

/// The signature check's outcome, counted like any other answer when it
/// refused the request.
pub(crate) fn signed_or_refused(
    state: &ServerState,
    component: &'static str,
    signed: Result<SentrySigned, Response>,
) -> Result<SentrySigned, Response> {
    signed.map_err(|refusal| {
        record(state, Served::new(component), refusal.status(), "invalid or missing signature".into());
        refusal
    })
}

/// The installation a request names, if it is installed: an unknown,
/// pending or uninstalled one is answered as not found.
pub(crate) async fn installed(
    state: &ServerState,
    uuid: &InstallationUuid,
) -> Result<InstallationRecord, SentryEndpointError> {
    match state.app.store.installation(uuid).await? {
        // Components need no token, so one waiting for re-authorization still answers.
        Some(record) if matches!(record.status, InstallationStatus::Installed | InstallationStatus::NeedsReauth) => {
            Ok(record)
        }
        _ => Err(SentryEndpointError::NotFound(format!("installation {uuid} is not installed here"))),
    }
}
