//! The state every request handler and server function shares.

use std::sync::Arc;

use crate::config::{Config, Secret};
use crate::crypto::TokenCipher;
use crate::demo::DemoSentry;
use crate::installations::locks::KeyedLocks;
use crate::pipeline::inbox::Inbox;
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
    /// Where deliveries are made durable before they are acknowledged.
    pub inbox: Inbox,
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
        let inbox = Inbox::start(store.clone());
        Self {
            config: Arc::new(config),
            store,
            cipher: Arc::new(cipher),
            sentry,
            locks: Arc::default(),
            demo: None,
            inbox,
        }
    }

    /// The secrets a webhook's signature may be made with: the app's client
    /// secret and, during a rotation, the previous one. Empty when nothing
    /// is configured, and then every webhook is refused.
    pub fn webhook_secrets(&self) -> Vec<Secret> {
        let mut secrets: Vec<Secret> = self.sentry.iter().map(|client| client.app().client_secret.clone()).collect();
        if let Some(previous) = self.config.app.as_ref().and_then(|app| app.previous_client_secret.clone()) {
            secrets.push(previous);
        }
        secrets
    }

    /// Demo mode: Sentry is the simulator, reached through `client`.
    pub fn with_demo(mut self, client: SentryClient, demo: Arc<dyn DemoSentry>) -> Self {
        self.sentry = Some(Arc::new(client));
        self.demo = Some(demo);
        self
    }
}
