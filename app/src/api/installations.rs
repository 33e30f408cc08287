//! The Installations page's server functions.

use issuebridge::domain::deliveries::InstallationSummary;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::ssr;

#[server]
pub async fn list_installations() -> Result<Vec<InstallationSummary>, ServerFnError> {
    let state = ssr::state()?;
    state.store.list_installations().await.map_err(|e| ssr::store_failed("load installations", e))
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
