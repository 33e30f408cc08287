use leptos::prelude::*;

use super::{LoadError, Page};
use crate::api::load_console_info;

#[component]
pub fn SettingsPage() -> impl IntoView {
    let info = Resource::new(|| (), |_| load_console_info());
    view! {
        <Page title="Settings">
            {move || Suspend::new(async move {
                match info.await {
                    Ok(info) => {
                        let set_or_not = |set: bool| if set { "set" } else { "not set" };
                        let rows = [
                            ("Mode", if info.demo_mode { "demo (no Sentry credentials configured)".to_owned() } else { "connected to Sentry".to_owned() }),
                            ("Version", info.version),
                            ("Database", info.database),
                            ("Public URL", info.public_url),
                            ("Sentry URL", info.sentry_url),
                            ("Sentry App client id", info.app_client_id.unwrap_or_else(|| "not set".to_owned())),
                            ("Previous client secret", set_or_not(info.previous_secret_set).to_owned()),
                            ("Console login (OAuth)", if info.login_configured { "configured".to_owned() } else { "not configured".to_owned() }),
                        ];
                        view! {
                            <p class="muted">"Read from the environment at start-up; secrets are never shown."</p>
                            <dl class="settings">
                                {rows.into_iter().map(|(name, value)| view! { <dt>{name}</dt><dd>{value}</dd> }).collect_view()}
                            </dl>
                        }.into_any()
                    }
                    Err(error) => view! { <LoadError error/> }.into_any(),
                }
            })}
        </Page>
    }
}
