//! `installation.*`: `created` completes the install (it calls Sentry to
//! exchange the grant), `deleted` applies the uninstall policy. Applied one
//! by one, outside the batch transaction, because they call Sentry.

use crate::installations::install::{installation_created, InstallError, InstallationWebhook};
use crate::installations::uninstall::forget_installation;
use crate::pipeline::retry::retry_or_give_up;
use crate::store::{ClaimedDelivery, DeliveryOutcome};
use crate::AppState;

pub async fn apply(state: &AppState, delivery: &ClaimedDelivery) -> DeliveryOutcome {
    let event: InstallationWebhook = match crate::sentry::payload::parse_storable(&delivery.body) {
        Ok(event) => event,
        Err(e) => return DeliveryOutcome::Dead { error: format!("not an installation payload: {e}") },
    };
    let result = match delivery.action.as_deref() {
        Some("created") => installation_created(state, &event).await.map(|_| ()),
        Some("deleted") => forget_installation(state, &event.data.installation.uuid, crate::domain::audit::SENTRY)
            .await
            .map(|_| ())
            .map_err(InstallError::from),
        other => return DeliveryOutcome::Dead { error: format!("unknown installation action {other:?}") },
    };
    match result {
        Ok(()) => DeliveryOutcome::Processed,
        Err(error @ (InstallError::SentryUnavailable(_) | InstallError::Store(_))) => {
            retry_or_give_up(delivery, error.to_string())
        }
        Err(error) => DeliveryOutcome::Dead { error: error.to_string() },
    }
}
