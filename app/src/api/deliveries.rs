//! The delivery log's server functions.

use issuebridge::domain::deliveries::{DeliveryDetail, DeliveryFilter, DeliveryPage};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::ssr;

/// Deliveries shown per page of the log.
pub const DELIVERY_PAGE: i64 = 50;

/// A page of the delivery log, newest first, filtered as the page's URL
/// says (the filter travels typed, so a URL time keeps its seconds).
#[server(input = leptos::server_fn::codec::Json)]
pub async fn list_deliveries(filter: DeliveryFilter, before: Option<i64>) -> Result<DeliveryPage, ServerFnError> {
    let state = ssr::state()?;
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

/// One delivery in full: headers (secrets redacted), the body pretty
/// printed, and every processing attempt. `None` when there is no such
/// delivery.
#[server]
pub async fn load_delivery(id: i64) -> Result<Option<DeliveryDetail>, ServerFnError> {
    let state = ssr::state()?;
    let Some(record) = state.store.delivery(id).await.map_err(|e| ssr::store_failed("load the delivery", e))? else {
        return Ok(None);
    };
    let attempts =
        state.store.delivery_attempts(id).await.map_err(|e| ssr::store_failed("load the delivery's attempts", e))?;
    Ok(Some(record.detail(attempts)))
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
    let Some(target) = installations
        .into_iter()
        .find(|i| i.status == issuebridge::domain::installation::InstallationStatus::Installed)
    else {
        return Err(ServerFnError::new("Install into a demo organization first."));
    };
    let base = state.config.public_url_or(state.config.site_addr);
    let webhook_url = base.join("/sentry/webhook").map_err(|e| ServerFnError::new(e.to_string()))?;
    demo.send_sample_events(webhook_url, target.uuid, target.org_slug)
        .await
        .map_err(|e| ssr::store_failed("send sample events", e))
}

/// Processes again every dead delivery (`scope = "dead"`), or every one
/// received in the filter's time range (`scope = "range"`, Unix ms, as the
/// filter holds them). Returns how many
/// were requeued.
#[server]
pub async fn replay_deliveries(scope: String, from_ms: Option<i64>, to_ms: Option<i64>) -> Result<u64, ServerFnError> {
    use issuebridge::store::Replay;
    let state = ssr::state()?;
    let which = match scope.as_str() {
        "dead" => Replay::Dead,
        "range" => match (from_ms, to_ms) {
            (None, None) => return Err(ServerFnError::new("Choose a time range first.")),
            (from, to) => Replay::Between { from_ms: from.unwrap_or(0), to_ms: to.unwrap_or(i64::MAX) },
        },
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
