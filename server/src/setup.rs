//! `GET /sentry/setup`: where Sentry sends the browser after someone
//! installs the app (the app's Redirect URL). It completes the installation
//! and tells the person, in plain words, what happened and where to go.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use issuebridge::domain::ids::InstallationUuid;
use issuebridge::installations::install::{complete_install, InstallError, InstallOutcome};

use crate::html::escape;
use crate::state::ServerState;

/// The browser-facing install redirect.
pub fn router() -> Router<ServerState> {
    Router::new().route("/sentry/setup", get(setup))
}

pub async fn setup(State(state): State<ServerState>, RawQuery(query): RawQuery) -> Response {
    // Read by hand: a malformed query gets our page, not a bare 400.
    let mut code = None;
    let mut installation_id = None;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "code" => code = Some(value.into_owned()),
            "installationId" => installation_id = Some(value.into_owned()),
            _ => {}
        }
    }
    let (Some(code), Some(installation_id)) = (code.filter(|c| !c.is_empty()), installation_id) else {
        return page(
            StatusCode::BAD_REQUEST,
            "This link is incomplete",
            "Sentry sends you here after an installation, with a code and an installation id. This address has neither: install issuebridge from your organization's Integrations settings in Sentry.",
            None,
        );
    };
    let Ok(installation) = InstallationUuid::parse(&installation_id) else {
        return page(
            StatusCode::BAD_REQUEST,
            "This link is damaged",
            "The installation id in it is not one Sentry makes.",
            None,
        );
    };

    let console = state.app.config.public_url.clone().map(|url| url.to_string()).unwrap_or_else(|| "/".to_owned());
    match complete_install(&state.app, &installation, &code).await {
        Ok(InstallOutcome::Installed { org_slug }) => page(
            StatusCode::OK,
            "issuebridge is installed",
            &format!("issuebridge is now installed in the Sentry organization {org_slug}. Link Sentry issues to tickets from an issue's sidebar, or open the console to see the board."),
            Some(&console),
        ),
        Ok(InstallOutcome::AlreadyInstalled { org_slug }) => page(
            StatusCode::OK,
            "issuebridge is installed",
            &format!("issuebridge was already installed in {org_slug}; nothing more to do."),
            Some(&console),
        ),
        Err(error) => {
            let (status, title) = match &error {
                InstallError::CodeRejected(_) => (StatusCode::BAD_REQUEST, "The installation could not be completed"),
                InstallError::UnknownInstallation => (StatusCode::NOT_FOUND, "Sentry does not know this installation"),
                InstallError::BadCredentials(_) => (StatusCode::BAD_GATEWAY, "issuebridge's Sentry credentials are wrong"),
                InstallError::SentryUnavailable(_) | InstallError::VerifyFailed(_) | InstallError::BadAnswer(_) => {
                    (StatusCode::BAD_GATEWAY, "Sentry did not complete the installation")
                }
                InstallError::NotConfigured => (StatusCode::SERVICE_UNAVAILABLE, "issuebridge is not connected to Sentry"),
                InstallError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "issuebridge could not save the installation"),
            };
            if status.is_server_error() {
                tracing::error!(installation = %installation, %error, "installation failed");
            } else {
                tracing::warn!(installation = %installation, %error, "installation refused");
            }
            let message = match &error {
                // The cause is ours; the person only needs to know it is safe to retry.
                InstallError::Store(_) => "The installation was not saved. Please try installing again in a moment.".to_owned(),
                other => format!("{other}. Nothing was saved: uninstall and install issuebridge again from Sentry when this is resolved."),
            };
            page(status, title, &message, None)
        }
    }
}

/// A small standalone page in the console's style.
fn page(status: StatusCode, title: &str, message: &str, console: Option<&str>) -> Response {
    let link = console
        .map(|href| format!(r#"<p><a class="button" href="{}">Open the console</a></p>"#, escape(href)))
        .unwrap_or_default();
    let html = format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"/><meta name="viewport" content="width=device-width, initial-scale=1"/><title>{title} · issuebridge</title><link rel="stylesheet" href="/pkg/issuebridge.css"/></head><body><header class="topbar"><span class="brand">issuebridge</span></header><main><section class="page"><h1>{title}</h1><p>{message}</p>{link}</section></main></body></html>"#,
        title = escape(title),
        message = escape(message),
    );
    (status, Html(html)).into_response()
}
