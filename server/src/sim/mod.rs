//! A simulated Sentry that speaks Sentry's wire protocol (docs/sentry-protocol.md)
//! to the byte: the test suites run against it in-process, and demo mode
//! runs against it when no real Sentry is configured.
//!
//! [`Simulator::start`] serves the fake Sentry on a free loopback port; its
//! driver methods act as Sentry would towards a running app (create an
//! installation, build the setup redirect, expire grants and tokens, make
//! endpoints fail).

mod api;
pub mod driver;
mod model;
mod oauth;
mod resources;

use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

use model::Model;
pub use model::{random_hex, SimMember, SimUser, MEMBER, OTHER_ORG, OUTSIDER, OWNER};
pub use model::{SimComment, SimExternalIssue, SimInstallation, SimIssue, SimServiceHook};

/// The organization demo mode installs into; the simulator's plain member
/// belongs to it from the start.
pub const DEMO_ORG_SLUG: &str = issuebridge::demo::DEMO_ORG;

/// The Sentry App as registered in the simulated Sentry.
#[derive(Debug, Clone)]
pub struct SimApp {
    pub uuid: String,
    pub slug: String,
    pub client_id: String,
    pub client_secret: String,
    /// Sentry's default: installations stay pending until the app verifies.
    pub verify_install: bool,
}

impl Default for SimApp {
    fn default() -> Self {
        Self {
            uuid: model::random_uuid(),
            slug: "issuebridge".to_owned(),
            client_id: random_hex(32),
            client_secret: random_hex(32),
            verify_install: true,
        }
    }
}

/// An installation Sentry has created but the app has not completed yet.
#[derive(Debug, Clone)]
pub struct PendingInstall {
    pub installation: String,
    pub org_slug: String,
    pub code: String,
}

/// The OAuth application people log into the console with (registered in
/// Sentry under User Settings → API → Applications).
#[derive(Debug, Clone)]
pub struct SimOAuthApp {
    pub client_id: String,
    pub client_secret: String,
}

pub(crate) struct Shared {
    pub app: SimApp,
    pub oauth: SimOAuthApp,
    pub base_url: String,
    pub model: Mutex<Model>,
}

impl Shared {
    pub fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub struct Simulator {
    base_url: Url,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Simulator {
    /// Serves a fresh simulated Sentry on `127.0.0.1` at a free port.
    pub async fn start(app: SimApp) -> std::io::Result<Self> {
        Self::start_on(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), app).await
    }

    /// Serves a fresh simulated Sentry at `address`.
    pub async fn start_on(address: std::net::SocketAddr, app: SimApp) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let base_url = Url::parse(&format!("http://{}", listener.local_addr()?)).expect("an address makes a URL");
        let oauth = SimOAuthApp { client_id: random_hex(32), client_secret: random_hex(32) };
        let shared =
            Arc::new(Shared { app, oauth, base_url: base_url.to_string(), model: Mutex::new(Model::default()) });
        let router = api::router(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { base_url, shared, server })
    }

    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    pub fn app(&self) -> &SimApp {
        &self.shared.app
    }

    /// The OAuth application for console login.
    pub fn oauth_app(&self) -> &SimOAuthApp {
        &self.shared.oauth
    }

    /// Registers the OAuth application's redirect URIs; with none, any
    /// http(s) URI is accepted (demo mode does not know its own address in
    /// advance).
    pub fn set_oauth_redirect_uris(&self, uris: &[&str]) {
        self.shared.model().oauth_redirect_uris = uris.iter().map(|u| (*u).to_owned()).collect();
    }

    /// A user installs the app into `org_slug`: Sentry creates the
    /// installation (pending, or installed without `verify_install`) and a
    /// grant code valid for 10 minutes.
    pub fn create_installation(&self, org_slug: &str) -> PendingInstall {
        let verify = self.shared.app.verify_install;
        self.shared.model().create_installation(org_slug, verify)
    }

    /// An internal integration in `org_slug`: installed from the start, with
    /// a token that does not expire. Returns the installation and its token.
    pub fn create_internal_installation(&self, org_slug: &str) -> (String, String) {
        let mut model = self.shared.model();
        let pending = model.create_installation(org_slug, false);
        model.grants.remove(&pending.code);
        let (token, _) = model.issue_token(&pending.installation);
        if let Some(record) = model.tokens.get_mut(&token) {
            record.expires_at_ms = i64::MAX;
        }
        (pending.installation, token)
    }

    /// An issue in `org_slug`'s project `project`; returns its id.
    pub fn create_issue(&self, org_slug: &str, project: &str, title: &str) -> String {
        let mut model = self.shared.model();
        let id = model.next_id().to_string();
        let short_id = format!("{}-{}", project.to_uppercase(), model.issues.len() + 1);
        model.issues.insert(
            id.clone(),
            SimIssue {
                id: id.clone(),
                org_slug: org_slug.to_owned(),
                project_slug: project.to_owned(),
                short_id,
                title: title.to_owned(),
                status: "unresolved".to_owned(),
                assigned_to: None,
            },
        );
        id
    }

    /// An issue with a known id (demo mode gives its stored issues back to
    /// a fresh simulator); an issue with that id already stays as it is.
    pub fn adopt_issue(&self, id: &str, org_slug: &str, project: &str, short_id: &str, title: &str) {
        self.shared.model().issues.entry(id.to_owned()).or_insert_with(|| SimIssue {
            id: id.to_owned(),
            org_slug: org_slug.to_owned(),
            project_slug: project.to_owned(),
            short_id: short_id.to_owned(),
            title: title.to_owned(),
            status: "unresolved".to_owned(),
            assigned_to: None,
        });
    }

    /// Sentry goes down (every call answers 503) or comes back.
    pub fn set_down(&self, down: bool) {
        self.shared.model().down = down;
    }

    /// The issue is deleted in Sentry: calls about it answer 404.
    pub fn delete_issue(&self, id: &str) {
        self.shared.model().issues.remove(id);
    }

    /// A person changes the issue's status in Sentry's UI (the test then
    /// sends the webhook Sentry would, with that person as the actor).
    pub fn set_issue_status(&self, id: &str, status: &str) {
        if let Some(issue) = self.shared.model().issues.get_mut(id) {
            issue.status = status.to_owned();
        }
    }

    /// `{"type":"application","id":<app uuid>}`: the app itself, as the
    /// actor of what it changed through the API.
    pub fn app_actor(&self) -> serde_json::Value {
        serde_json::json!({ "type": "application", "id": self.app().uuid, "name": self.app().slug })
    }

    /// The webhooks Sentry sends about the changes the app made through the
    /// API since the last call (its echoes), signed, addressed to `url`.
    pub fn take_echoes(&self, url: &Url) -> Vec<driver::SignedRequest> {
        let echoes = std::mem::take(&mut self.shared.model().echoes);
        echoes
            .into_iter()
            .filter(|echo| match echo {
                model::Echo::Issue { issue, .. } | model::Echo::Comment { issue, .. } => self.issue(issue).is_some(),
            })
            .map(|echo| match echo {
                model::Echo::Issue { installation, issue, action } => {
                    self.issue_webhook(url, &installation, &issue, &action, self.app_actor())
                }
                model::Echo::Comment { installation, issue, comment_id, text, action } => {
                    let comment = driver::CommentRef { issue_id: &issue, comment_id, text: &text };
                    self.comment_webhook(url, &installation, &comment, &action, self.app_actor())
                }
            })
            .collect()
    }

    pub fn issue(&self, id: &str) -> Option<SimIssue> {
        self.shared.model().issues.get(id).cloned()
    }

    pub fn comments_on(&self, issue: &str) -> Vec<SimComment> {
        self.shared.model().comments.iter().filter(|c| c.issue == issue).cloned().collect()
    }

    pub fn service_hooks(&self) -> Vec<SimServiceHook> {
        self.shared.model().service_hooks.clone()
    }

    pub fn external_issues(&self) -> Vec<SimExternalIssue> {
        self.shared.model().external_issues.clone()
    }

    /// Resource calls allowed per `window_ms`, with Sentry's rate-limit
    /// headers on every answer and 429 once they are used up.
    pub fn set_rate_limit(&self, limit: u32, window_ms: i64) {
        self.shared.model().rate_limit = Some(model::RateLimit {
            limit,
            remaining: limit,
            window_ms,
            reset_at_ms: issuebridge::domain::time::now_ms() + window_ms,
        });
    }

    /// The next `times` matching requests wait `millis` before an answer.
    pub fn delay_next(&self, method: &str, path_end: &str, millis: u64, times: usize) {
        self.shared.model().delays.push(model::Delay {
            method: method.to_owned(),
            path_end: path_end.to_owned(),
            millis,
            remaining: times,
        });
    }

    /// Takes over an installation the app already knows (demo mode after a
    /// restart): it exists here as installed, with a fresh token pair.
    /// Returns the token, the refresh token and the expiry.
    pub fn adopt_installation(&self, uuid: &str, org_slug: &str, org_id: Option<i64>) -> (String, String, i64) {
        let mut model = self.shared.model();
        if let Some(id) = org_id {
            model.orgs.insert(org_slug.to_owned(), id);
        }
        let org_id = model.organization(org_slug);
        model.installations.insert(
            uuid.to_owned(),
            SimInstallation {
                uuid: uuid.to_owned(),
                org_slug: org_slug.to_owned(),
                org_id,
                status: "installed".to_owned(),
            },
        );
        let (token, record) = model.issue_token(uuid);
        (token, record.refresh_token, record.expires_at_ms)
    }

    /// The people of the simulated Sentry.
    pub fn users(&self) -> Vec<SimUser> {
        self.shared.model().users.clone()
    }

    /// Adds the person with `email` to `org_slug` with `role` (owner,
    /// manager, admin or member), replacing any role they had there.
    pub fn set_member(&self, org_slug: &str, email: &str, role: &str) {
        let mut model = self.shared.model();
        let Some(user_id) = model.users.iter().find(|u| u.email == email).map(|u| u.id) else { return };
        model.members.retain(|m| !(m.org_slug == org_slug && m.user_id == user_id));
        model.members.push(SimMember { org_slug: org_slug.to_owned(), user_id, role: role.to_owned() });
    }

    /// An organization's owner renames its slug: its id stays, and the old
    /// slug is free for another organization to take.
    pub fn rename_org(&self, old: &str, new: &str) {
        let mut model = self.shared.model();
        if let Some(id) = model.orgs.remove(old) {
            model.orgs.insert(new.to_owned(), id);
        }
        for member in model.members.iter_mut().filter(|m| m.org_slug == old) {
            member.org_slug = new.to_owned();
        }
        for installation in model.installations.values_mut().filter(|i| i.org_slug == old) {
            installation.org_slug = new.to_owned();
        }
    }

    /// Whether the person's email counts as confirmed in `userinfo`.
    pub fn set_email_verified(&self, email: &str, verified: bool) {
        if let Some(user) = self.shared.model().users.iter_mut().find(|u| u.email == email) {
            user.email_verified = verified;
        }
    }

    /// Removes the person with `email` from `org_slug`, as an organization
    /// owner would in Sentry's settings.
    pub fn remove_member(&self, org_slug: &str, email: &str) {
        let mut model = self.shared.model();
        let Some(user_id) = model.users.iter().find(|u| u.email == email).map(|u| u.id) else { return };
        model.members.retain(|m| !(m.org_slug == org_slug && m.user_id == user_id));
    }

    /// The installation is being deleted, as after an uninstall in Sentry.
    pub fn mark_uninstalled(&self, installation: &str) {
        let mut model = self.shared.model();
        if let Some(record) = model.installations.get_mut(installation) {
            record.status = "pending_deletion".to_owned();
        }
        model.tokens.retain(|_, token| token.installation != installation);
    }

    /// Sentry revokes every token of the installation.
    pub fn revoke_tokens(&self, installation: &str) {
        self.shared.model().tokens.retain(|_, token| token.installation != installation);
    }

    /// The URL Sentry sends the browser to after an install: the app's
    /// redirect URL with `code`, `installationId` and `orgSlug` added.
    pub fn setup_redirect(&self, redirect_url: &Url, pending: &PendingInstall) -> Url {
        let mut url = redirect_url.clone();
        url.query_pairs_mut()
            .append_pair("code", &pending.code)
            .append_pair("installationId", &pending.installation)
            .append_pair("orgSlug", &pending.org_slug);
        url
    }

    pub fn installation(&self, uuid: &str) -> Option<SimInstallation> {
        self.shared.model().installations.get(uuid).cloned()
    }

    /// Whether the grant code has not been exchanged yet.
    pub fn grant_unspent(&self, code: &str) -> bool {
        self.shared.model().grants.contains_key(code)
    }

    /// Every grant code expires now (they last 10 minutes in Sentry).
    pub fn expire_grants(&self) {
        self.shared.model().expire_grants();
    }

    /// Every token expires now (they last 8 hours in Sentry).
    pub fn expire_tokens(&self) {
        self.shared.model().expire_tokens();
    }

    /// The next `times` requests with `method` whose path ends with
    /// `path_end` answer `status` instead of being served.
    pub fn fail_next(&self, method: &str, path_end: &str, status: u16, times: usize) {
        self.shared.model().failures.push(model::Failure {
            method: method.to_owned(),
            path_part: path_end.to_owned(),
            status,
            remaining: times,
        });
    }

    /// The installation's current token, as Sentry knows it.
    pub fn current_token(&self, installation: &str) -> Option<String> {
        self.shared.model().tokens.iter().find(|(_, t)| t.installation == installation).map(|(token, _)| token.clone())
    }

    /// How many requests reached `path_part` with `method` and were
    /// answered, failed or not (a delayed one counts once answered).
    pub fn requests(&self, method: &str, path_part: &str) -> usize {
        self.shared.model().log.iter().filter(|(m, p, _)| m == method && p.contains(path_part)).count()
    }

    /// How many requests reached `path_part` with `method`, counted on
    /// arrival: a delayed request counts even if the client gave up on it.
    pub fn arrivals(&self, method: &str, path_part: &str) -> usize {
        self.shared.model().arrivals.iter().filter(|(m, p)| m == method && p.contains(path_part)).count()
    }

    /// How many token pairs were handed out by refresh.
    pub fn refreshes(&self) -> usize {
        self.shared.model().refresh_count
    }

    /// How many token pairs were handed out by the JWT manual refresh.
    pub fn manual_refreshes(&self) -> usize {
        self.shared.model().manual_refresh_count
    }

    /// Turns the organization feature flag for manual refresh on or off.
    pub fn set_manual_refresh(&self, enabled: bool) {
        self.shared.model().manual_refresh_enabled = enabled;
    }

    /// Sentry refreshes the installation's token behind the app's back (as
    /// another holder of the refresh token would): the app's refresh token
    /// stops working.
    pub fn rotate_token_elsewhere(&self, installation: &str) {
        self.shared.model().issue_token(installation);
    }
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator").field("base_url", &self.base_url.as_str()).finish_non_exhaustive()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}
