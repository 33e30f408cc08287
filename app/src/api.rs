//! Server functions: the console's only way to the data.
//!
//! Each one finds [`issuebridge::AppState`] in the Leptos context (the server
//! provides it for every request) and goes through the store. Errors are
//! logged here with their cause and reach the browser as a plain sentence.

#[cfg(feature = "ssr")]
use issuebridge::domain::deliveries::DeliveryFilter;
use issuebridge::domain::deliveries::{ConsoleInfo, DeliveryDetail, DeliveryPage, InstallationSummary};
use issuebridge::domain::ticket::TicketSummary;
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
    use issuebridge::domain::ids::InstallationUuid;
    let state = ssr::state()?;
    let Some(demo) = state.demo.clone() else {
        return Err(ServerFnError::new("Demo installations exist only in demo mode."));
    };
    let count = state.store.count_installations().await.map_err(|e| ssr::store_failed("count installations", e))?;
    let org = format!("demo-org-{}", count + 1);
    let (installation, code) = demo.create_installation(&org);
    let installation = InstallationUuid::parse(&installation).map_err(|e| ServerFnError::new(e.to_string()))?;
    issuebridge::installations::install::complete_install(&state, &installation, &code)
        .await
        .map_err(|e| ssr::store_failed("install the demo organization", e))?;
    Ok(org)
}

/// Deliveries shown per page of the log.
pub const DELIVERY_PAGE: i64 = 50;

/// A page of the delivery log, newest first, filtered as the URL says
/// (`resource`, `action`, `state`, `installation`, `from`, `to`; times in
/// UTC as `2026-11-27T10:00`).
#[server]
pub async fn list_deliveries(
    resource: Option<String>,
    action: Option<String>,
    state_filter: Option<String>,
    installation: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<i64>,
) -> Result<DeliveryPage, ServerFnError> {
    let state = ssr::state()?;
    let filter = DeliveryFilter::from_params(|name| match name {
        "resource" => resource.clone(),
        "action" => action.clone(),
        "state" => state_filter.clone(),
        "installation" => installation.clone(),
        "from" => from.clone(),
        "to" => to.clone(),
        _ => None,
    });
    let query = issuebridge::store::DeliveryQuery { filter, before_id: before, limit: DELIVERY_PAGE + 1 };
    let mut deliveries =
        state.store.recent_deliveries(&query).await.map_err(|e| ssr::store_failed("load deliveries", e))?;
    // One more than a page was asked for: its presence says there is more.
    let older = (deliveries.len() as i64 > DELIVERY_PAGE).then(|| {
        deliveries.truncate(DELIVERY_PAGE as usize);
        deliveries.last().map(|d| d.id)
    });
    Ok(DeliveryPage { deliveries, older: older.flatten() })
}

/// The largest body the detail view shows; the rest is cut, with a note.
pub const DETAIL_BODY_LIMIT: usize = 256 * 1024;

/// One delivery in full: headers (secrets redacted), the body pretty
/// printed, and every processing attempt. `None` when there is no such
/// delivery.
#[server]
pub async fn load_delivery(id: i64) -> Result<Option<DeliveryDetail>, ServerFnError> {
    use issuebridge::domain::deliveries::{redacted_header, DeliverySummary};
    let state = ssr::state()?;
    let Some(record) = state.store.delivery(id).await.map_err(|e| ssr::store_failed("load the delivery", e))? else {
        return Ok(None);
    };
    let attempts =
        state.store.delivery_attempts(id).await.map_err(|e| ssr::store_failed("load the delivery's attempts", e))?;
    let headers = match serde_json::from_str::<serde_json::Value>(&record.headers) {
        Ok(serde_json::Value::Object(map)) => map
            .iter()
            .map(|(name, value)| {
                let value = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
                (name.clone(), redacted_header(name, &value))
            })
            .collect(),
        _ => Vec::new(),
    };
    let (body, body_is_json) = match serde_json::from_slice::<serde_json::Value>(&record.body) {
        Ok(json) => (serde_json::to_string_pretty(&json).unwrap_or_default(), true),
        Err(_) => (String::from_utf8_lossy(&record.body).into_owned(), false),
    };
    let body = if body.len() > DETAIL_BODY_LIMIT {
        let mut cut = DETAIL_BODY_LIMIT;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}\n… cut at {} KB of {} bytes", &body[..cut], DETAIL_BODY_LIMIT / 1024, body.len())
    } else {
        body
    };
    Ok(Some(DeliveryDetail {
        summary: DeliverySummary {
            id: record.id,
            received_at_ms: record.received_at,
            resource: record.resource,
            action: record.action,
            installation: record.installation_uuid,
            state: record.state,
            attempts: record.attempts,
            duplicates: record.duplicate_count,
            last_error: record.last_error,
            note: record.note,
        },
        source: record.source,
        request_id: record.request_id,
        headers,
        body,
        body_is_json,
        body_bytes: record.body.len(),
        processed_at_ms: record.processed_at,
        attempts,
    }))
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
    use issuebridge::domain::ids::InstallationUuid;
    let state = ssr::state()?;
    if state.demo.is_none() {
        return Err(ServerFnError::new(
            "Uninstalling from the console needs console login; uninstall from Sentry's Integrations settings.",
        ));
    }
    let installation = InstallationUuid::parse(&installation).map_err(|e| ServerFnError::new(e.to_string()))?;
    issuebridge::installations::uninstall::uninstall(&state, &installation)
        .await
        .map_err(|e| ssr::store_failed("uninstall", e))?;
    Ok(())
}

/// Processes again every dead delivery (`scope = "dead"`), or every one
/// received in the filter's time range (`scope = "range"`). Returns how many
/// were requeued.
#[server]
pub async fn replay_deliveries(scope: String, from: Option<String>, to: Option<String>) -> Result<u64, ServerFnError> {
    use issuebridge::store::Replay;
    let state = ssr::state()?;
    let which = match scope.as_str() {
        "dead" => Replay::Dead,
        "range" => {
            let time = |text: Option<String>| text.as_deref().and_then(issuebridge::domain::time::parse_utc_minutes);
            match (time(from), time(to)) {
                (None, None) => return Err(ServerFnError::new("Choose a time range first.")),
                (from, to) => Replay::Between { from_ms: from.unwrap_or(0), to_ms: to.unwrap_or(i64::MAX) },
            }
        }
        _ => return Err(ServerFnError::new("Replay either the dead deliveries or a time range.")),
    };
    state.store.requeue_deliveries(&which).await.map_err(|e| ssr::store_failed("requeue deliveries", e))
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
