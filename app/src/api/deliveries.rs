//! The delivery log's server functions.

use issuebridge::domain::deliveries::{DeliveryDetail, DeliveryFilter, DeliveryPage, ReplayPreview};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::ssr;

/// Deliveries shown per page of the log.
pub const DELIVERY_PAGE: i64 = 50;

/// A page of the delivery log, newest first, filtered as the page's URL
/// says (the filter travels typed, so a URL time keeps its seconds): the
/// deliveries of the person's organizations' installations.
#[server(input = leptos::server_fn::codec::Json)]
pub async fn list_deliveries(filter: DeliveryFilter, before: Option<i64>) -> Result<DeliveryPage, ServerFnError> {
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let query = issuebridge::store::DeliveryQuery {
        scope: viewer.read_scope(),
        filter,
        before_id: before,
        limit: DELIVERY_PAGE + 1,
    };
    let deliveries =
        state.store.recent_deliveries(&query).await.map_err(|e| ssr::store_failed("load deliveries", e))?;
    let (deliveries, older) = ssr::page_of(deliveries, DELIVERY_PAGE, |d| d.id);
    Ok(DeliveryPage { deliveries, older })
}

/// One delivery in full: headers (secrets redacted), the body pretty
/// printed, and every processing attempt. `None` when there is no such
/// delivery, or when it is another organization's: the two answer alike.
#[server]
pub async fn load_delivery(id: i64) -> Result<Option<DeliveryDetail>, ServerFnError> {
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let found = state.store.delivery_in(&viewer.read_scope(), id).await;
    let Some(record) = found.map_err(|e| ssr::store_failed("load the delivery", e))? else {
        return Ok(None);
    };
    let attempts =
        state.store.delivery_attempts(id).await.map_err(|e| ssr::store_failed("load the delivery's attempts", e))?;
    Ok(Some(record.detail(attempts)))
}

/// Demo mode only: the simulated Sentry sends a sample of signed webhooks
/// to this server's own webhook URL, for an installation the person may
/// manage.
#[server]
pub async fn send_demo_events() -> Result<usize, ServerFnError> {
    use http::StatusCode;
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let Some(demo) = state.demo.clone() else {
        return Err(ssr::refuse(StatusCode::BAD_REQUEST, "Sample events exist only in demo mode."));
    };
    let installations = state
        .store
        .list_installations(&viewer.manage_scope())
        .await
        .map_err(|e| ssr::store_failed("load installations", e))?;
    let Some(target) = installations
        .into_iter()
        .find(|i| i.status == issuebridge::domain::installation::InstallationStatus::Installed)
    else {
        return Err(ssr::refuse(
            StatusCode::FORBIDDEN,
            "None of your organizations has an installation you may manage; log in as its owner (Jane Doe in the demo).",
        ));
    };
    let base = state.config.public_url_or(state.config.site_addr);
    let webhook_url = base.join("/sentry/webhook").map_err(|e| ServerFnError::new(e.to_string()))?;
    demo.send_sample_events(webhook_url, target.uuid, target.org_slug)
        .await
        .map_err(|e| ssr::store_failed("send sample events", e))
}

/// Which deliveries a bulk replay means: every dead one (`scope = "dead"`),
/// or every one received in the filter's time range (`scope = "range"`,
/// Unix ms, as the filter holds them).
#[cfg(feature = "ssr")]
fn replay_of(
    scope: &str,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
) -> Result<issuebridge::store::Replay, ServerFnError> {
    use issuebridge::store::Replay;
    let bad = |message: &str| ssr::refuse(http::StatusCode::BAD_REQUEST, message);
    match scope {
        "dead" => Ok(Replay::Dead),
        "range" => match (from_ms, to_ms) {
            (None, None) => Err(bad("Choose a time range first.")),
            (from, to) => Ok(Replay::Between { from_ms: from.unwrap_or(0), to_ms: to.unwrap_or(i64::MAX) }),
        },
        _ => Err(bad("Replay either the dead deliveries or a time range.")),
    }
}

/// How many deliveries a bulk replay would requeue, among the
/// installations the person may manage, and the most one may.
#[server]
pub async fn preview_replay(
    scope: String,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
) -> Result<ReplayPreview, ServerFnError> {
    use issuebridge::domain::deliveries::MAX_CONSOLE_REPLAY;
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let which = replay_of(&scope, from_ms, to_ms)?;
    let count = state
        .store
        .replay_size(&which, &viewer.manage_scope())
        .await
        .map_err(|e| ssr::store_failed("count the deliveries to replay", e))?;
    Ok(ReplayPreview { count, limit: MAX_CONSOLE_REPLAY })
}

/// Processes again the deliveries [`preview_replay`] counted, if they are
/// no more than the limit. Returns how many were requeued.
#[server]
pub async fn replay_deliveries(scope: String, from_ms: Option<i64>, to_ms: Option<i64>) -> Result<u64, ServerFnError> {
    use issuebridge::domain::audit::AuditAction;
    use issuebridge::domain::deliveries::MAX_CONSOLE_REPLAY;
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let which = replay_of(&scope, from_ms, to_ms)?;
    let allowed = viewer.manage_scope();
    let count =
        state.store.replay_size(&which, &allowed).await.map_err(|e| ssr::store_failed("count the deliveries", e))?;
    if count > MAX_CONSOLE_REPLAY {
        return Err(ssr::refuse(
            http::StatusCode::BAD_REQUEST,
            format!(
                "{count} deliveries match; one replay from the console takes at most {MAX_CONSOLE_REPLAY}. Narrow the time range, or use `issuebridge replay` on the server."
            ),
        ));
    }
    let requeued = state
        .store
        .requeue_deliveries(&which, &allowed)
        .await
        .map_err(|e| ssr::store_failed("requeue deliveries", e))?;
    let what = match which {
        issuebridge::store::Replay::Dead => "every dead delivery".to_owned(),
        _ => {
            use issuebridge::domain::time::format_utc_minutes;
            let since = from_ms.map(format_utc_minutes).unwrap_or_else(|| "the start".to_owned());
            let until = to_ms.map(format_utc_minutes).unwrap_or_else(|| "now".to_owned());
            format!("the deliveries received from {since} until {until}")
        }
    };
    let mut event = issuebridge::store::NewAuditEvent::new(
        &viewer.email,
        AuditAction::Replay,
        format!("replayed {requeued}: {what}"),
    );
    // Within one organization, its members read it in Activity; a replay
    // across several is the actor's and the administrators'.
    if let issuebridge::domain::access::OrgScope::Orgs(orgs) = &allowed {
        if let [only] = orgs.as_slice() {
            event.org_slug = Some(only.slug.clone());
        }
    }
    ssr::audit(&state, event).await;
    Ok(requeued)
}

/// Processes a stored delivery again (handlers are idempotent); needs
/// organization rights on its installation (an administrator's, for a
/// delivery of no known installation).
#[server]
pub async fn replay_delivery(id: i64) -> Result<u64, ServerFnError> {
    use issuebridge::domain::audit::AuditAction;
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let found = state.store.delivery_in(&viewer.read_scope(), id).await;
    let Some(record) = found.map_err(|e| ssr::store_failed("load the delivery", e))? else {
        return Err(ssr::not_found("delivery"));
    };
    let mut event =
        issuebridge::store::NewAuditEvent::new(&viewer.email, AuditAction::Replay, format!("replayed delivery {id}"));
    if let Some(installation) = &record.installation_uuid {
        let found = if viewer.admin {
            // An administrator may replay a delivery of an installation that
            // was never completed here: nothing to refuse, only to name.
            match issuebridge::domain::ids::InstallationUuid::parse(installation) {
                Ok(uuid) => {
                    state.store.installation(&uuid).await.map_err(|e| ssr::store_failed("load the installation", e))?
                }
                Err(_) => None,
            }
        } else {
            Some(ssr::manageable_installation(&state, &viewer, installation).await?.1)
        };
        if let Some(found) = found {
            event = event.about(found.org_slug, found.uuid);
        }
    }
    let requeued = state
        .store
        .requeue_deliveries(&issuebridge::store::Replay::One(id), &viewer.manage_scope())
        .await
        .map_err(|e| ssr::store_failed("requeue the delivery", e))?;
    if requeued > 0 {
        ssr::audit(&state, event).await;
    }
    Ok(requeued)
}
