//! Removing an installation: from Sentry's side (the `installation.deleted`
//! webhook) or from ours (the console asks Sentry first, then forgets).

use crate::domain::audit::AuditAction;
use crate::domain::ids::InstallationUuid;
use crate::installations::tokens::{with_token, ApiCallError};
use crate::store::{NewAuditEvent, StoreError};
use crate::AppState;

#[derive(Debug, thiserror::Error)]
pub enum UninstallError {
    #[error("not connected to Sentry")]
    NotConnected,
    #[error("Sentry did not uninstall: {0}")]
    Sentry(#[from] ApiCallError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Uninstalls from our side: Sentry is told first (with the installation's
/// own token), then the uninstall policy applies here. If Sentry refuses,
/// nothing changes here, so the two never disagree about the installation.
/// `actor` (a person's email) is recorded in the audit log.
pub async fn uninstall(state: &AppState, installation: &InstallationUuid, actor: &str) -> Result<bool, UninstallError> {
    let client = state.sentry.clone().ok_or(UninstallError::NotConnected)?;
    with_token(state, installation, |token| {
        let client = client.clone();
        let installation = installation.clone();
        async move { client.uninstall(&installation, &token).await }
    })
    .await?;
    Ok(forget_installation(state, installation, actor).await?)
}

/// `installation.deleted` (or [`uninstall`], after Sentry agreed): purge the
/// tokens and apply the uninstall policy of [`Store::uninstall`], recording
/// `actor` in the audit log in the same transaction.
///
/// [`Store::uninstall`]: crate::store::Store::uninstall
pub async fn forget_installation(
    state: &AppState,
    installation: &InstallationUuid,
    actor: &str,
) -> Result<bool, StoreError> {
    // Not while a refresh for it is in flight: it would write tokens back.
    let _guard = state.locks.lock(installation.as_str()).await;
    let org = state.store.installation(installation).await?.map(|record| record.org_slug).unwrap_or_default();
    let audit = NewAuditEvent::new(actor, AuditAction::Uninstall, format!("uninstalled from {org}"))
        .about(org, installation.as_str());
    let known = state.store.uninstall(installation, &audit).await?;
    if known {
        tracing::info!(%installation, "uninstalled: tokens purged, issue links dropped, tickets kept");
    }
    Ok(known)
}
