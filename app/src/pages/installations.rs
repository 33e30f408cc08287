use issuebridge::domain::installation::InstallationStatus;
use issuebridge::domain::time::format_utc_minutes;
use leptos::prelude::*;

use super::{outcome_text, DemoAction, LoadError, Page};
use crate::api::{
    current_viewer, list_installations, load_console_info, InstallDemoOrganization, UninstallInstallation,
};

#[component]
pub fn InstallationsPage() -> impl IntoView {
    let install_demo = ServerAction::<InstallDemoOrganization>::new();
    let uninstall = ServerAction::<UninstallInstallation>::new();
    // Reloads after each install or uninstall.
    let installations =
        Resource::new(move || (install_demo.version().get(), uninstall.version().get()), |_| list_installations());
    let info = Resource::new(|| (), |_| load_console_info());
    let viewer = Resource::new(move || install_demo.version().get(), |_| current_viewer());
    view! {
        <Page title="Installations">
            {move || Suspend::new(async move {
                let demo = info.await.map(|info| info.demo_mode).unwrap_or(false);
                demo.then(|| view! {
                    <DemoAction
                        label="Install into a new demo organization"
                        on_click=Callback::new(move |()| { install_demo.dispatch(InstallDemoOrganization {}); })
                        pending=install_demo.pending()
                        message=Signal::derive(move || outcome_text(install_demo.value().get(), |org| format!("Installed into {org}.")))
                    />
                })
            })}
            <p class="muted" role="status">{move || outcome_text(uninstall.value().get(), |()| "Uninstalled: Sentry was told, tokens are gone, tickets stay.".to_owned())}</p>
            {move || Suspend::new(async move {
                let viewer = viewer.await.ok();
                match installations.await {
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">"Not installed in any Sentry organization yet."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <table class="table">
                            <thead><tr>
                                <th>"Organization"</th><th>"Status"</th><th>"Tickets"</th><th>"Installed"</th><th>"Installation"</th><th></th>
                            </tr></thead>
                            <tbody>
                                {list.into_iter().map(|i| {
                                    // Offered to those with organization rights in Sentry; the
                                    // server checks again.
                                    let org = issuebridge::domain::access::OrgRef::new(i.org_id, &i.org_slug);
                                    let may_manage = viewer.as_ref().is_some_and(|v| v.can_manage(org));
                                    let action = (may_manage && i.status == InstallationStatus::Installed).then(|| {
                                        let uuid = i.uuid.clone();
                                        view! {
                                            <button
                                                class="link-button"
                                                aria-label=format!("Uninstall from {}", i.org_slug)
                                                on:click=move |_| {
                                                    let sure = window()
                                                        .confirm_with_message("Uninstall issuebridge from this organization? Sentry stops sending it webhooks; tickets stay.")
                                                        .unwrap_or(false);
                                                    if sure {
                                                        uninstall.dispatch(UninstallInstallation { installation: uuid.clone() });
                                                    }
                                                }
                                            >
                                                "Uninstall"
                                            </button>
                                        }
                                    });
                                    view! {
                                        <tr>
                                            <td>{i.org_slug.clone()}</td>
                                            <td><span class=format!("status {}", i.status)>{status_label(i.status)}</span></td>
                                            <td>{i.tickets}</td>
                                            <td>{format_utc_minutes(i.created_at_ms)}</td>
                                            <td><code>{i.uuid.clone()}</code></td>
                                            <td>{action}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                    Err(error) => view! { <LoadError error/> }.into_any(),
                }
            })}
        </Page>
    }
}

/// The words a person reads for an installation's status.
fn status_label(status: InstallationStatus) -> &'static str {
    match status {
        InstallationStatus::Installed => "installed",
        InstallationStatus::Pending => "pending verification",
        InstallationStatus::NeedsReauth => "needs re-authorization",
        InstallationStatus::Deleted => "uninstalled",
    }
}
