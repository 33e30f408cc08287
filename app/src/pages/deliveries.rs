use leptos::prelude::*;

use super::{LoadError, Page};
use crate::api::load_console_info;

#[component]
pub fn DeliveriesPage() -> impl IntoView {
    let info = Resource::new(|| (), |_| load_console_info());
    view! {
        <Page title="Deliveries">
            {move || Suspend::new(async move {
                match info.await {
                    Ok(info) => view! {
                        <p data-testid="delivery-count">{format!("{} deliveries stored.", info.deliveries)}</p>
                        <p class="muted">
                            "Every signed webhook from Sentry is stored here before it is acknowledged, with its headers, body and processing attempts."
                        </p>
                    }.into_any(),
                    Err(error) => view! { <LoadError error/> }.into_any(),
                }
            })}
        </Page>
    }
}
