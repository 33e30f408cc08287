//! Server functions: the console's only way to the data.
//!
//! Each one finds [`issuebridge::AppState`] in the Leptos context (the server
//! provides it for every request) and goes through the store. Errors are
//! logged here with their cause and reach the browser as a plain sentence.

use issuebridge::console::{ConsoleInfo, DeliveryPage, InstallationSummary};
use issuebridge::ticket::TicketSummary;
use leptos::prelude::*;

/// The board shows at most this many tickets; paging comes with search.
pub const BOARD_LIMIT: i64 = 500;

#[cfg(feature = "ssr")]
mod ssr {
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
pub async fn list_tickets() -> Result<Vec<TicketSummary>, ServerFnError> {
    let state = ssr::state()?;
    state.store.list_tickets(BOARD_LIMIT).await.map_err(|e| ssr::store_failed("load tickets", e))
}

#[server]
pub async fn list_installations() -> Result<Vec<InstallationSummary>, ServerFnError> {
    let state = ssr::state()?;
    state.store.list_installations().await.map_err(|e| ssr::store_failed("load installations", e))
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

/// Demo mode only: a person installs the app into a new organization of the
/// simulated Sentry, through the same exchange-and-verify path a real
/// installation takes. Returns the organization's slug.
#[server]
pub async fn install_demo_organization() -> Result<String, ServerFnError> {
    use issuebridge::domain::InstallationUuid;
    let state = ssr::state()?;
    let Some(demo) = state.demo.clone() else {
        return Err(ServerFnError::new("Demo installations exist only in demo mode."));
    };
    let count = state.store.count_installations().await.map_err(|e| ssr::store_failed("count installations", e))?;
    let org = format!("demo-org-{}", count + 1);
    let (installation, code) = demo.create_installation(&org);
    let installation = InstallationUuid::parse(&installation).map_err(|e| ServerFnError::new(e.to_string()))?;
    issuebridge::install::complete_install(&state, &installation, &code)
        .await
        .map_err(|e| ssr::store_failed("install the demo organization", e))?;
    Ok(org)
}

/// Deliveries shown per page of the log.
pub const DELIVERY_PAGE: i64 = 50;

/// A page of the delivery log, newest first, optionally filtered.
#[server]
pub async fn list_deliveries(
    resource: Option<String>,
    state_filter: Option<String>,
    before: Option<i64>,
) -> Result<DeliveryPage, ServerFnError> {
    let state = ssr::state()?;
    let query = issuebridge::store::DeliveryQuery {
        resource: resource.filter(|r| !r.is_empty()),
        state: state_filter.filter(|s| !s.is_empty()),
        before_id: before,
        limit: DELIVERY_PAGE + 1,
    };
    let mut deliveries =
        state.store.recent_deliveries(&query).await.map_err(|e| ssr::store_failed("load deliveries", e))?;
    // One more than a page was asked for: its presence says there is more.
    let older = (deliveries.len() as i64 > DELIVERY_PAGE).then(|| {
        deliveries.truncate(DELIVERY_PAGE as usize);
        deliveries.last().map(|d| d.id)
    });
    Ok(DeliveryPage { deliveries, older: older.flatten() })
}

/// Demo mode only: the simulated Sentry sends a sample of signed webhooks
/// for the demo organization to this server's own webhook URL.
#[server]
pub async fn send_demo_events() -> Result<usize, ServerFnError> {
    let state = ssr::state()?;
    let Some(demo) = state.demo.clone() else {
        return Err(ServerFnError::new("Sample events exist only in demo mode."));
    };
    let installations =
        state.store.list_installations().await.map_err(|e| ssr::store_failed("load installations", e))?;
    let Some(target) = installations.into_iter().find(|i| i.status == "installed") else {
        return Err(ServerFnError::new("Install into a demo organization first."));
    };
    let base = state.config.public_url_or(state.config.site_addr);
    let webhook_url = base.join("/sentry/webhook").map_err(|e| ServerFnError::new(e.to_string()))?;
    demo.send_sample_events(webhook_url, target.uuid, target.org_slug)
        .await
        .map_err(|e| ssr::store_failed("send sample events", e))
}

/// Uninstalls the app from an organization: Sentry is told first, then the
/// uninstall policy applies here (tokens purged, issue links dropped,
/// tickets kept). Demo mode only until the console has a login: anyone who
/// can reach an unauthenticated console must not be able to uninstall a
/// real organization.
#[server]
pub async fn uninstall_installation(installation: String) -> Result<(), ServerFnError> {
    use issuebridge::domain::InstallationUuid;
    let state = ssr::state()?;
    if state.demo.is_none() {
        return Err(ServerFnError::new(
            "Uninstalling from the console needs console login; uninstall from Sentry's Integrations settings.",
        ));
    }
    let installation = InstallationUuid::parse(&installation).map_err(|e| ServerFnError::new(e.to_string()))?;
    let client = state.sentry.clone().ok_or_else(|| ServerFnError::new("not connected to Sentry"))?;
    issuebridge::tokens::with_token(&state, &installation, |token| {
        let client = client.clone();
        let installation = installation.clone();
        async move { client.uninstall(&installation, &token).await }
    })
    .await
    .map_err(|e| ssr::store_failed("uninstall from Sentry", e))?;
    issuebridge::install::forget_installation(&state, &installation)
        .await
        .map_err(|e| ssr::store_failed("apply the uninstall", e))?;
    Ok(())
}

/// Processes a stored delivery again (handlers are idempotent).
#[server]
pub async fn replay_delivery(id: i64) -> Result<u64, ServerFnError> {
    let state = ssr::state()?;
    state
        .store
        .requeue_deliveries(&issuebridge::store::Replay::One(id))
        .await
        .map_err(|e| ssr::store_failed("requeue the delivery", e))
}
