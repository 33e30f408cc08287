//! The state every request handler and server function shares.

use std::sync::Arc;

use crate::config::Config;
use crate::crypto::TokenCipher;
use crate::demo::DemoSentry;
use crate::locks::KeyedLocks;
use crate::sentry::api::{SentryApp, SentryClient};
use crate::store::Store;

/// One context rather than one extractor per dependency: handlers and Leptos
/// server functions take what they need from it, and tests build it the same
/// way `main` does.
#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub cipher: Arc<TokenCipher>,
    /// `None` in demo mode without a simulator: nothing to talk to.
    pub sentry: Option<Arc<SentryClient>>,
    /// Serialises work per installation (installs, token refreshes).
    pub locks: Arc<KeyedLocks>,
    /// Demo mode's simulated Sentry, for the console's "install" action.
    pub demo: Option<Arc<dyn DemoSentry>>,
}

impl AppState {
    pub fn new(config: Config, store: Store) -> Self {
        let cipher = TokenCipher::new(&config.secret_key, &config.previous_secret_keys);
        let sentry = config.app.as_ref().map(|app| {
            Arc::new(SentryClient::new(SentryApp {
                base_url: config.sentry_url.clone(),
                client_id: app.client_id.clone(),
                client_secret: app.client_secret.clone(),
            }))
        });
        Self { config: Arc::new(config), store, cipher: Arc::new(cipher), sentry, locks: Arc::default(), demo: None }
    }

    /// Demo mode: Sentry is the simulator, reached through `client`.
    pub fn with_demo(mut self, client: SentryClient, demo: Arc<dyn DemoSentry>) -> Self {
        self.sentry = Some(Arc::new(client));
        self.demo = Some(demo);
        self
    }
}
