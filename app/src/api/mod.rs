//! Server functions: the console's only way to the data, one file per
//! feature. They hold no domain logic: each finds the state, calls one core
//! service or store method, and maps its error.
//!
//! Each one finds [`issuebridge::AppState`] in the Leptos context (the server
//! provides it for every request) and goes through the store. Errors are
//! logged here with their cause and reach the browser as a plain sentence.

mod board;
mod deliveries;
mod installations;

pub use board::*;
pub use deliveries::*;
pub use installations::*;

use issuebridge::domain::deliveries::ConsoleInfo;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use leptos::prelude::*;

    pub fn state() -> Result<issuebridge::AppState, ServerFnError> {
        use_context::<issuebridge::AppState>()
            .ok_or_else(|| ServerFnError::new("the console is not connected to its store"))
    }

    /// Logs the cause, returns a message that leaks nothing.
    pub fn store_failed(what: &str, error: impl std::fmt::Display) -> ServerFnError {
        tracing::error!(%error, "console could not {what}");
        ServerFnError::new(format!("Could not {what}; the server log has the details."))
    }
}

#[server]
pub async fn load_console_info() -> Result<ConsoleInfo, ServerFnError> {
    let state = ssr::state()?;
    let config = &state.config;
    let deliveries = state.store.count_deliveries().await.map_err(|e| ssr::store_failed("count deliveries", e))?;
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
        deliveries,
    })
}
