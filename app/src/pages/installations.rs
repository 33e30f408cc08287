use issuebridge::time::format_utc_minutes;
use leptos::prelude::*;

use super::{LoadError, Page};
use crate::api::list_installations;

#[component]
pub fn InstallationsPage() -> impl IntoView {
    let installations = Resource::new(|| (), |_| list_installations());
    view! {
        <Page title="Installations">
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
