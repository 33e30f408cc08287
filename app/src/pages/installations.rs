use issuebridge::time::format_utc_minutes;
use leptos::prelude::*;

use super::{LoadError, Page};
use crate::api::{list_installations, load_console_info, InstallDemoOrganization};

#[component]
pub fn InstallationsPage() -> impl IntoView {
    let install_demo = ServerAction::<InstallDemoOrganization>::new();
    // Reloads after each demo install.
    let installations = Resource::new(move || install_demo.version().get(), |_| list_installations());
    let info = Resource::new(|| (), |_| load_console_info());
    view! {
        <Page title="Installations">
            {move || Suspend::new(async move {
                let demo = info.await.map(|info| info.demo_mode).unwrap_or(false);
                demo.then(|| view! {
                    <div class="actions">
                        <button
                            class="button"
                            on:click=move |_| { install_demo.dispatch(InstallDemoOrganization {}); }
                            disabled=move || install_demo.pending().get()
                        >
                            "Install into a new demo organization"
                        </button>
                        <span class="muted" role="status">
                            {move || match install_demo.value().get() {
                                Some(Ok(org)) => format!("Installed into {org}."),
                                Some(Err(error)) => error.to_string(),
                                None => String::new(),
                            }}
                        </span>
                    </div>
                })
            })}
            {move || Suspend::new(async move {
                match installations.await {
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">"Not installed in any Sentry organization yet."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <table class="table">
                            <thead><tr>
                                <th>"Organization"</th><th>"Status"</th><th>"Tickets"</th><th>"Installed"</th><th>"Installation"</th>
                            </tr></thead>
                            <tbody>
                                {list.into_iter().map(|i| view! {
                                    <tr>
                                        <td>{i.org_slug}</td>
                                        <td><span class=format!("status {}", i.status)>{status_label(&i.status)}</span></td>
                                        <td>{i.tickets}</td>
                                        <td>{format_utc_minutes(i.created_at_ms)}</td>
                                        <td><code>{i.uuid}</code></td>
                                    </tr>
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
fn status_label(status: &str) -> String {
    match status {
        "installed" => "installed".to_owned(),
        "pending" => "pending verification".to_owned(),
        "needs_reauth" => "needs re-authorization".to_owned(),
        "deleted" => "uninstalled".to_owned(),
        other => other.replace('_', " "),
    }
}
