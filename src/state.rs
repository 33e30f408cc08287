//! The state every request handler and server function shares.

use std::sync::Arc;

use crate::config::{Config, Secret};
use crate::crypto::TokenCipher;
use crate::demo::DemoSentry;
use crate::installations::locks::KeyedLocks;
use crate::pipeline::inbox::Inbox;
use crate::sentry::api::{SentryApp, SentryClient};
use crate::store::Store;

/// The Sentry that people log into the console through: its OAuth
/// application (docs/sentry-protocol.md §2.5). Sentry itself with
/// `SENTRY_OAUTH_CLIENT_ID`/`SECRET`, or demo mode's simulator.
#[derive(Clone, Debug)]
pub struct LoginProvider {
    pub base_url: url::Url,
    pub client_id: String,
    pub client_secret: Secret,
}

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
    /// `None` when no OAuth application is configured: only login links
    /// (for administrators) then open the console.
    pub login: Option<LoginProvider>,
    /// When this process last changed someone's memberships in Sentry
    /// (demo mode's installs): sessions checked before then ask again.
    pub memberships_changed_at_ms: Arc<std::sync::atomic::AtomicI64>,
    /// The last requests Sentry made to the UI components, for the console.
    pub component_log: Arc<crate::components::log::RequestLog>,
    /// "These tickets changed", for the console's open pages.
    pub live: crate::live::LiveFeed,
    /// Wakes the outbox sender when a change is queued.
    pub outbox_ready: Arc<tokio::sync::Notify>,
    /// How the outbox sender waits between attempts.
    pub outbox_policy: crate::outbound::sender::OutboxPolicy,
    /// Each organization's Sentry members, to send assignees by email.
    pub members: Arc<crate::outbound::members::MemberCache>,
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
        let inbox = Inbox::start(store.clone(), config.dedupe_window_ms);
        let live = crate::live::LiveFeed::new(store.clone());
        let login = config.oauth.as_ref().map(|oauth| LoginProvider {
            base_url: config.sentry_url.clone(),
            client_id: oauth.client_id.clone(),
            client_secret: oauth.client_secret.clone(),
        });
        Self {
            config: Arc::new(config),
            store,
            cipher: Arc::new(cipher),
            sentry,
            locks: Arc::default(),
            demo: None,
            inbox,
            login,
            memberships_changed_at_ms: Arc::default(),
            component_log: Arc::default(),
            live,
            outbox_ready: Arc::default(),
            outbox_policy: Default::default(),
            members: Arc::default(),
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

    /// Memberships changed in Sentry through us: every session asks again.
    pub fn memberships_changed(&self) {
        self.memberships_changed_at_ms.store(crate::domain::time::now_ms(), std::sync::atomic::Ordering::SeqCst);
    }

    /// Demo mode: Sentry is the simulator, reached through `client`.
    /// People log in through the simulator's OAuth provider.
    pub fn with_demo(mut self, client: SentryClient, demo: Arc<dyn DemoSentry>) -> Self {
        let (client_id, client_secret) = demo.login_app();
        self.login = Some(LoginProvider { base_url: client.app().base_url.clone(), client_id, client_secret });
        self.sentry = Some(Arc::new(client));
        self.demo = Some(demo);
        self
    }
}
