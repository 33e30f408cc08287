//! The router's state: the application's own state, plus what only the HTTP
//! layer needs. Its own module, so that handlers and `startup` both import
//! it without importing each other.

use std::sync::Arc;

use axum::extract::FromRef;
use issuebridge::AppState;
use leptos::config::LeptosOptions;

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct ServerState {
    pub app: AppState,
    pub leptos_options: LeptosOptions,
    pub metrics: Arc<Metrics>,
}

impl FromRef<ServerState> for LeptosOptions {
    fn from_ref(state: &ServerState) -> Self {
        state.leptos_options.clone()
    }
}
