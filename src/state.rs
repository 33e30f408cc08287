//! The state every request handler and server function shares.

use std::sync::Arc;

use crate::config::Config;
use crate::store::Store;

/// One context rather than one extractor per dependency: handlers and Leptos
/// server functions take what they need from it, and tests build it the same
/// way `main` does.
#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
}

impl AppState {
    pub fn new(config: Config, store: Store) -> Self {
        Self { config: Arc::new(config), store }
    }
}
