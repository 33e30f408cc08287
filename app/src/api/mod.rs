//! Server functions: the console's only way to the data, one file per
//! feature. They hold no domain logic: each finds the state and the person,
//! checks what the person may do ([`issuebridge::domain::access`]), calls
//! one core service or store method, and maps its error.
//!
//! Each one finds [`issuebridge::AppState`] and the logged-in
//! [`Viewer`](issuebridge::domain::access::Viewer) in the Leptos context
//! (the server provides both for every request; the session guard refuses
//! requests without a person before they get here). A refused call answers
//! 400, 403 or 404 with a sentence for the person; a failure inside is
//! logged with its cause and reaches the browser as a plain sentence.

mod activity;
mod board;
mod components;
mod deliveries;
mod installations;
mod tickets;

pub use activity::*;
pub use board::*;
pub use components::*;
pub use deliveries::*;
pub use installations::*;
pub use tickets::*;

use issuebridge::domain::access::Viewer;
use issuebridge::domain::deliveries::ConsoleInfo;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use http::StatusCode;
    use issuebridge::domain::access::{OrgRef, Viewer};
    use issuebridge::domain::ids::InstallationUuid;
    use issuebridge::store::InstallationRecord;
    use leptos::prelude::*;

    pub fn state() -> Result<issuebridge::AppState, ServerFnError> {
        use_context::<issuebridge::AppState>()
            .ok_or_else(|| ServerFnError::new("the console is not connected to its store"))
    }

    /// The logged-in person. The session guard lets no request through
    /// without one; this only fails if a function is called outside it.
    pub fn viewer() -> Result<Viewer, ServerFnError> {
        use_context::<Viewer>().ok_or_else(|| refuse(StatusCode::UNAUTHORIZED, "Log in to use the console."))
    }

    /// A refusal the person can act on. Called over HTTP, the function
    /// answers with `status`; called while a page renders on the server,
    /// the page keeps its own status and shows the message where the data
    /// would have been.
    pub fn refuse(status: StatusCode, message: impl Into<String>) -> ServerFnError {
        let called_over_http =
            use_context::<http::request::Parts>().is_some_and(|parts| parts.uri.path().starts_with("/api/"));
        if called_over_http {
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(status);
            }
        }
        ServerFnError::ServerError(message.into())
    }

    pub fn not_found(what: &str) -> ServerFnError {
        refuse(StatusCode::NOT_FOUND, format!("There is no such {what}."))
    }

    /// A page of a log asked for with one row more than `limit`: that row's
    /// presence says there is more, below the id of the page's last row.
    pub fn page_of<T>(mut rows: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> (Vec<T>, Option<i64>) {
        let limit = usize::try_from(limit).unwrap_or(0);
        if rows.len() <= limit {
            return (rows, None);
        }
        rows.truncate(limit);
        let older = rows.last().map(id);
        (rows, older)
    }

    /// Logs the cause, returns a message that leaks nothing.
    pub fn store_failed(what: &str, error: impl std::fmt::Display) -> ServerFnError {
        tracing::error!(%error, "console could not {what}");
        ServerFnError::new(format!("Could not {what}; the server log has the details."))
    }

    /// Records what a person did that the store did not record with the
    /// change itself (a replay spans several short transactions, so that
    /// the inbox is never held up). A failure is logged, not shown.
    pub async fn audit(state: &issuebridge::AppState, event: issuebridge::store::NewAuditEvent) {
        if let Err(error) = state.store.record_audit(&event).await {
            tracing::error!(%error, action = %event.action, "could not write the audit log");
        }
    }

    /// The installation, if the person may see it. Another organization's
    /// answers exactly as one that does not exist, and so does a malformed
    /// uuid.
    pub async fn visible_installation(
        state: &issuebridge::AppState,
        viewer: &Viewer,
        uuid: &str,
    ) -> Result<(InstallationUuid, InstallationRecord), ServerFnError> {
        let Ok(uuid) = InstallationUuid::parse(uuid) else { return Err(not_found("installation")) };
        match state.store.installation(&uuid).await.map_err(|e| store_failed("load the installation", e))? {
            Some(record) if viewer.can_see(OrgRef::new(record.org_id, &record.org_slug)) => Ok((uuid, record)),
            _ => Err(not_found("installation")),
        }
    }

    /// The installation, if the person may change it as a whole: 404 if
    /// they may not see it, 403 if they may only look.
    pub async fn manageable_installation(
        state: &issuebridge::AppState,
        viewer: &Viewer,
        uuid: &str,
    ) -> Result<(InstallationUuid, InstallationRecord), ServerFnError> {
        let (uuid, record) = visible_installation(state, viewer, uuid).await?;
        if !viewer.can_manage(OrgRef::new(record.org_id, &record.org_slug)) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                format!(
                    "Changing {}'s installation needs organization rights (org:write) in Sentry; ask an owner or manager.",
                    record.org_slug
                ),
            ));
        }
        Ok((uuid, record))
    }
}

/// The person looking at the console, for the header.
#[server]
pub async fn current_viewer() -> Result<Viewer, ServerFnError> {
    ssr::viewer()
}

#[server]
pub async fn load_console_info() -> Result<ConsoleInfo, ServerFnError> {
    let state = ssr::state()?;
    ssr::viewer()?;
    let config = &state.config;
    Ok(ConsoleInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        demo_mode: config.mode() == issuebridge::config::Mode::Demo,
        database: state.store.backend().name().to_owned(),
        public_url: config.public_url_or(config.site_addr).to_string(),
        // In demo mode this is the embedded simulator.
        sentry_url: state
            .sentry
            .as_ref()
            .map(|client| client.app().base_url.to_string())
            .unwrap_or_else(|| config.sentry_url.to_string()),
        app_client_id: config.app.as_ref().map(|app| app.client_id.clone()),
        previous_secret_set: config.app.as_ref().is_some_and(|app| app.previous_client_secret.is_some()),
        login_configured: config.oauth.is_some(),
    })
}
