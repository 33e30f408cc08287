//! Project service hooks: raw `event.created` / `event.alert` deliveries for
//! chosen projects (docs/sentry-protocol.md §7). Each hook signs with its own secret, which
//! is kept sealed like the tokens.

use crate::domain::ids::{InstallationUuid, OrgSlug};
use crate::installations::tokens::{with_token, ApiCallError};
use crate::store::{NewServiceHook, StoreError};
use crate::AppState;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("the installation is not installed here")]
    NotInstalled,
    #[error(transparent)]
    Sentry(#[from] ApiCallError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn secret_context(hook_id: &str) -> String {
    format!("service_hook/{hook_id}/secret")
}

/// Registers a hook on `project` that delivers to this server's
/// `/sentry/service-hook`; returns Sentry's id for it.
pub async fn register(
    state: &AppState,
    installation: &InstallationUuid,
    project: &str,
    events: &[&str],
) -> Result<String, HookError> {
    let record = state.store.installation(installation).await?.ok_or(HookError::NotInstalled)?;
    let org = OrgSlug::parse(&record.org_slug).map_err(|_| HookError::NotInstalled)?;
    let client = state.sentry.clone().ok_or(HookError::NotInstalled)?;
    let url = state
        .config
        .public_url_or(state.config.site_addr)
        .join("/sentry/service-hook")
        .expect("a base URL takes a path");
    let hook = with_token(state, installation, |token| {
        let (client, org, url) = (client.clone(), org.clone(), url.clone());
        async move { client.create_service_hook(&token, &org, project, &url, events).await }
    })
    .await?;
    state
        .store
        .add_service_hook(&NewServiceHook {
            id: hook.id.clone(),
            installation: installation.clone(),
            project_slug: project.to_owned(),
            url: hook.url.clone(),
            events: serde_json::to_string(&hook.events).unwrap_or_else(|_| "[]".into()),
            sealed_secret: state.cipher.seal(hook.secret.expose().as_bytes(), &secret_context(&hook.id)),
        })
        .await?;
    tracing::info!(%installation, project, hook = %hook.id, "service hook registered");
    Ok(hook.id)
}
