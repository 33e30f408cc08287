//! The Installations and Settings pages' server functions.

use issuebridge::domain::deliveries::InstallationSummary;
use issuebridge::domain::settings::{InstallationSettingsView, SaveOutcome, SettingsForm};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::ssr;

/// The installations of the person's organizations.
#[server]
pub async fn list_installations() -> Result<Vec<InstallationSummary>, ServerFnError> {
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    state.store.list_installations(&viewer.read_scope()).await.map_err(|e| ssr::store_failed("load installations", e))
}

/// Demo mode only: the person installs the app into a new organization of
/// the simulated Sentry, which makes them its owner, through the same
/// exchange-and-verify path a real installation takes. Returns the
/// organization's slug.
#[server]
pub async fn install_demo_organization() -> Result<String, ServerFnError> {
    use issuebridge::domain::access::OrgScope;
    use issuebridge::domain::audit::AuditAction;
    use issuebridge::domain::ids::InstallationUuid;
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let Some(demo) = state.demo.clone() else {
        return Err(ssr::refuse(http::StatusCode::BAD_REQUEST, "Demo installations exist only in demo mode."));
    };
    let count = state
        .store
        .list_installations(&OrgScope::Everything)
        .await
        .map_err(|e| ssr::store_failed("count installations", e))?
        .len();
    let org = format!("demo-org-{}", count + 1);
    let (installation, code) = demo.create_installation(&org, &viewer.email);
    let installation = InstallationUuid::parse(&installation).map_err(|e| ServerFnError::new(e.to_string()))?;
    issuebridge::installations::install::complete_install(&state, &installation, &code)
        .await
        .map_err(|e| ssr::store_failed("install the demo organization", e))?;
    // The person now owns the new organization in the simulated Sentry.
    state.memberships_changed();
    let event =
        issuebridge::store::NewAuditEvent::new(&viewer.email, AuditAction::Install, format!("installed into {org}"))
            .about(org.clone(), installation.as_str());
    ssr::audit(&state, event).await;
    Ok(org)
}

/// Uninstalls the app from an organization: Sentry is told first, then the
/// uninstall policy applies here (tokens purged, issue links dropped,
/// tickets kept). Needs organization rights in Sentry.
#[server]
pub async fn uninstall_installation(installation: String) -> Result<(), ServerFnError> {
    use issuebridge::installations::uninstall::UninstallError;
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let (uuid, record) = ssr::manageable_installation(&state, &viewer, &installation).await?;
    if record.status == issuebridge::domain::installation::InstallationStatus::Deleted {
        return Err(ssr::refuse(http::StatusCode::CONFLICT, format!("{} is uninstalled already.", record.org_slug)));
    }
    match issuebridge::installations::uninstall::uninstall(&state, &uuid, &viewer.email).await {
        Ok(_) => Ok(()),
        Err(UninstallError::Sentry(error)) => {
            tracing::warn!(%error, %uuid, "Sentry refused an uninstall");
            Err(ssr::refuse(
                http::StatusCode::BAD_GATEWAY,
                "Sentry did not uninstall it, so nothing changed here. Try again, or uninstall from Sentry's Integrations settings.",
            ))
        }
        Err(UninstallError::NotConnected) => Err(ssr::refuse(
            http::StatusCode::CONFLICT,
            "This issuebridge is not connected to Sentry; uninstall from Sentry's Integrations settings.",
        )),
        Err(error) => Err(ssr::store_failed("uninstall", error)),
    }
}

/// Every installed installation the person may see, with its settings as
/// a form, and whether they may change them.
#[server]
pub async fn load_installation_settings() -> Result<Vec<InstallationSettingsView>, ServerFnError> {
    use issuebridge::domain::installation::InstallationStatus;
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let listed = state
        .store
        .list_installations(&viewer.read_scope())
        .await
        .map_err(|e| ssr::store_failed("load installations", e))?;
    let mut views = Vec::new();
    for summary in listed.into_iter().filter(|i| i.status != InstallationStatus::Deleted) {
        let (uuid, record) = ssr::visible_installation(&state, &viewer, &summary.uuid).await?;
        views.push(InstallationSettingsView {
            uuid: uuid.as_str().to_owned(),
            can_manage: viewer.can_manage(issuebridge::domain::access::OrgRef::new(record.org_id, &record.org_slug)),
            org_slug: record.org_slug.clone(),
            form: SettingsForm::from_settings(&record.settings()),
        });
    }
    Ok(views)
}

/// Saves an installation's settings from the form, and records the change
/// in the audit log in the same transaction. Fields that do not parse come
/// back with what to fix, and nothing is saved.
#[server(input = leptos::server_fn::codec::Json)]
pub async fn save_installation_settings(
    installation: String,
    form: SettingsForm,
) -> Result<SaveOutcome, ServerFnError> {
    use issuebridge::domain::audit::AuditAction;
    use issuebridge::domain::settings::describe_change;
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let (uuid, record) = ssr::manageable_installation(&state, &viewer, &installation).await?;
    let settings = match form.parse() {
        Ok(settings) => settings,
        Err(errors) => return Ok(SaveOutcome::Invalid(errors)),
    };
    let event = issuebridge::store::NewAuditEvent::new(
        &viewer.email,
        AuditAction::SettingsChanged,
        describe_change(&record.settings(), &settings),
    )
    .about(record.org_slug.clone(), uuid.as_str());
    state
        .store
        .set_installation_settings(&uuid, &settings, &event)
        .await
        .map_err(|e| ssr::store_failed("save the settings", e))?;
    Ok(SaveOutcome::Saved)
}
