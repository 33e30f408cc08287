//! Demo mode: with no Sentry credentials, issuebridge talks to a simulated
//! Sentry embedded in the process, so every path (install, token refresh,
//! API calls) runs for real without a Sentry account.

use std::sync::Arc;

use anyhow::Context;
use issuebridge::config::Secret;
use issuebridge::demo::{seed_tickets, DemoSentry, DEMO_ORG};
use issuebridge::domain::ids::{InstallationUuid, OrgSlug};
use issuebridge::installations::install::{complete_install, seal};
use issuebridge::sentry::api::{SentryApp, SentryClient, TokenGrant};
use issuebridge::store::NewInstallation;
use issuebridge::AppState;

use crate::sim::{SimApp, Simulator};

impl DemoSentry for Simulator {
    fn create_installation(&self, org_slug: &str, owner: &str) -> (String, String) {
        let pending = Simulator::create_installation(self, org_slug);
        self.set_member(org_slug, owner, "owner");
        (pending.installation, pending.code)
    }

    fn login_app(&self) -> (String, Secret) {
        (self.oauth_app().client_id.clone(), Secret::new(self.oauth_app().client_secret.clone()))
    }

    fn send_sample_events(
        &self,
        webhook_url: url::Url,
        installation: String,
        org_slug: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<usize, String>> + Send + '_>> {
        Box::pin(async move {
            use crate::sim::driver::{sentry_actor, user_actor, CommentRef};
            let issue =
                self.create_issue(&org_slug, "web", "TypeError: Cannot read properties of undefined (reading 'cart')");
            let note =
                CommentRef { issue_id: &issue, comment_id: 9001, text: "Seen on checkout since the last deploy." };
            let samples = [
                self.issue_webhook(&webhook_url, &installation, &issue, "created", sentry_actor()),
                self.error_created(&webhook_url, &installation, &issue),
                self.comment_webhook(&webhook_url, &installation, &note, "created", user_actor(1, "Jane Doe")),
                self.event_alert_triggered(&webhook_url, &installation, &issue, "Checkout errors", &[]),
                self.metric_alert(&webhook_url, &installation, "critical", "42", "Too many errors"),
            ];
            let mut acknowledged = 0;
            for request in &samples {
                let response = request.send().await.map_err(|e| format!("sending a sample webhook: {e}"))?;
                if response.status().is_success() {
                    acknowledged += 1;
                }
            }
            Ok(acknowledged)
        })
    }
}

/// Starts the simulator and connects `state` to it. A first run installs the
/// demo organization through the real install path and seeds its board; a
/// later run finds the simulator new (it keeps nothing), so each stored
/// installation is adopted by it with a fresh token pair.
pub async fn start(state: AppState) -> anyhow::Result<AppState> {
    let sim = Arc::new(
        Simulator::start(SimApp { slug: "issuebridge-demo".to_owned(), ..SimApp::default() })
            .await
            .context("starting the simulated Sentry for demo mode")?,
    );
    let client = SentryClient::new(SentryApp {
        base_url: sim.base_url().clone(),
        client_id: sim.app().client_id.clone(),
        client_secret: Secret::new(sim.app().client_secret.clone()),
    });
    let state = state.with_demo(client, sim.clone());

    let known = state.store.list_installations(&issuebridge::domain::access::OrgScope::Everything).await?;
    if known.is_empty() {
        let pending = Simulator::create_installation(&sim, DEMO_ORG);
        let installation = InstallationUuid::parse(&pending.installation).expect("the simulator makes uuids");
        complete_install(&state, &installation, &pending.code).await.context("installing the demo organization")?;
        seed_tickets(&state.store, &installation).await?;
        tracing::info!(org = DEMO_ORG, "demo mode: installed the demo organization with sample tickets");
    }
    for known in known.iter().filter(|i| i.status == issuebridge::domain::installation::InstallationStatus::Installed) {
        let (Ok(uuid), Ok(org)) = (InstallationUuid::parse(&known.uuid), OrgSlug::parse(&known.org_slug)) else {
            continue;
        };
        // The organization keeps its id, which the console's access goes by.
        let (token, refresh_token, expires_at_ms) = sim.adopt_installation(uuid.as_str(), org.as_str(), known.org_id);
        let grant = TokenGrant {
            token: Secret::new(token),
            refresh_token: Secret::new(refresh_token),
            expires_at_ms,
            scopes: Vec::new(),
        };
        let record = NewInstallation {
            uuid: uuid.clone(),
            org_slug: org,
            org_id: None,
            app_slug: known.app_slug.clone(),
            status: issuebridge::domain::installation::InstallationStatus::Installed,
        };
        state.store.install_with_tokens(&record, &seal(&state.cipher, &uuid, &grant)).await?;
    }
    // The simulator keeps nothing: it learns the issues the board knows, so
    // changes made on the board reach "Sentry" in demo mode too.
    for known in state.store.list_installations(&issuebridge::domain::access::OrgScope::Everything).await? {
        for issue in state.store.recent_sentry_issues(&known.uuid, 1000).await? {
            sim.adopt_issue(
                &issue.issue_id,
                &known.org_slug,
                issue.project_slug.as_deref().unwrap_or("web"),
                issue.short_id.as_deref().unwrap_or(&issue.issue_id),
                issue.title.as_deref().unwrap_or("Sentry issue"),
            );
        }
    }
    if let Some(public) = state.config.public_url.clone() {
        forward_echoes(sim.clone(), public.join("sentry/webhook").context("the webhook URL")?);
    }
    Ok(state)
}

/// Sends the webhooks the simulated Sentry makes about the app's own
/// changes, as Sentry would: the app recognises them as its own echoes.
fn forward_echoes(sim: Arc<Simulator>, webhook_url: url::Url) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
        loop {
            tick.tick().await;
            for echo in sim.take_echoes(&webhook_url) {
                if let Err(error) = echo.send().await {
                    tracing::debug!(%error, "demo mode: an echo webhook was not delivered");
                }
            }
        }
    });
}
