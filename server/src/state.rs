//! The router's state: the application's own state, plus what only the HTTP
//! layer needs. Its own module, so that handlers and `startup` both import
//! it without importing each other.

use std::sync::Arc;

use axum::extract::FromRef;
use issuebridge::AppState;
use leptos::config::LeptosOptions;

use crate::auth::guard::SiteOrigin;
use crate::auth::identity::SentryIdentity;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct ServerState {
    pub app: AppState,
    pub leptos_options: LeptosOptions,
    pub metrics: Arc<Metrics>,
    /// The names and scheme this site answers to (from the public URL).
    pub site: SiteOrigin,
    /// Sentry's OAuth for console login; `None` without an OAuth
    /// application (then only login links open the console).
    pub identity: Option<Arc<SentryIdentity>>,
}

impl FromRef<ServerState> for LeptosOptions {
    fn from_ref(state: &ServerState) -> Self {
        state.leptos_options.clone()
    }
}
