//! `GET /sentry/setup`: where Sentry sends the browser after someone
//! installs the app (the app's Redirect URL). It completes the installation
//! and tells the person, in plain words, what happened and where to go.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use issuebridge::domain::ids::InstallationUuid;
use issuebridge::installations::install::{complete_install, InstallError, InstallOutcome};
use issuebridge_app::document::PageLink;

use crate::error::PageError;
use crate::limits::{rate_limited, ClientRateLimit};
use crate::page::message_page;
use crate::state::ServerState;

/// The browser-facing install redirect; each visit makes a call to Sentry
/// with the app's secret, so each client's visits are rate-limited.
pub fn router(limit: ClientRateLimit) -> Router<ServerState> {
    Router::new()
        .route("/sentry/setup", get(setup))
        .route_layer(axum::middleware::from_fn_with_state(limit, rate_limited))
}

pub async fn setup(State(state): State<ServerState>, RawQuery(query): RawQuery) -> Result<Response, PageError> {
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
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "This link is incomplete",
            "Sentry sends you here after an installation, with a code and an installation id. This address has neither: install issuebridge from your organization's Integrations settings in Sentry.",
        ));
    };
    let Ok(installation) = InstallationUuid::parse(&installation_id) else {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "This link is damaged",
            "The installation id in it is not one Sentry makes.",
        ));
    };

    let console = PageLink {
        href: state.app.config.public_url.as_ref().map(|url| url.to_string()).unwrap_or_else(|| "/".to_owned()),
        label: "Open the console".to_owned(),
    };
    match complete_install(&state.app, &installation, &code).await {
        Ok(InstallOutcome::Installed { org_slug }) => Ok(message_page(
            StatusCode::OK,
            "issuebridge is installed",
            &format!("issuebridge is now installed in the Sentry organization {org_slug}. Link Sentry issues to tickets from an issue's sidebar, or open the console to see the board."),
            Some(console),
        )),
        Ok(InstallOutcome::AlreadyInstalled { org_slug }) => Ok(message_page(
            StatusCode::OK,
            "issuebridge is installed",
            &format!("issuebridge was already installed in {org_slug}; nothing more to do."),
            Some(console),
        )),
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
            Err(PageError::new(status, title, message))
        }
    }
}
