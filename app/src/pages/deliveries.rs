use issuebridge::time::format_utc_minutes;
use leptos::prelude::*;

use super::{outcome_text, DemoAction, LoadError, Page};
use crate::api::{list_deliveries, load_console_info, ReplayDelivery, SendDemoEvents};

#[component]
pub fn DeliveriesPage() -> impl IntoView {
    let send_samples = ServerAction::<SendDemoEvents>::new();
    let replay = ServerAction::<ReplayDelivery>::new();
    let deliveries =
        Resource::new(move || (send_samples.version().get(), replay.version().get()), |_| list_deliveries());
    let info = Resource::new(|| (), |_| load_console_info());
    view! {
        <Page title="Deliveries">
            {move || Suspend::new(async move {
                let demo = info.await.map(|info| info.demo_mode).unwrap_or(false);
                demo.then(|| view! {
                    <DemoAction
                        label="Send sample events"
                        on_click=Callback::new(move |()| { send_samples.dispatch(SendDemoEvents {}); })
                        pending=send_samples.pending()
                        message=Signal::derive(move || outcome_text(send_samples.value().get(), |count| {
                            format!("Sentry (simulated) sent {count} signed webhooks; they landed below.")
                        }))
                    />
                })
            })}
            {move || Suspend::new(async move {
                match deliveries.await {
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty" data-testid="delivery-count">"No deliveries yet."</p>
                        <p class="muted">
                            "Every signed webhook from Sentry is stored here before it is acknowledged."
                        </p>
                    }.into_any(),
                    Ok(list) => view! {
                        <p class="count" data-testid="delivery-count">{format!("{} most recent deliveries", list.len())}</p>
                        <table class="table deliveries">
                            <thead><tr>
                                <th>"#"</th><th>"Received"</th><th>"Event"</th><th>"State"</th><th>"Attempts"</th><th>"Installation"</th><th></th>
                            </tr></thead>
                            <tbody>
                                {list.into_iter().map(|d| {
                                    let event = match &d.action {
                                        Some(action) => format!("{}.{action}", d.resource),
                                        None => d.resource.clone(),
                                    };
                                    let duplicates = (d.duplicates > 0).then(|| format!(" (+{} retries)", d.duplicates));
                                    let id = d.id;
                                    let replayable = matches!(d.state.as_str(), "processed" | "dead" | "retry");
                                    let action = replayable.then(|| view! {
                                        <button
                                            class="link-button"
                                            aria-label=format!("Replay delivery {id}")
                                            on:click=move |_| { replay.dispatch(ReplayDelivery { id }); }
                                        >
                                            "Replay"
                                        </button>
                                    });
                                    view! {
                                        <tr data-delivery=d.id>
                                            <td>{d.id}</td>
                                            <td>{format_utc_minutes(d.received_at_ms)}</td>
                                            <td><code>{event}</code>{duplicates}</td>
                                            <td><span class=format!("status {}", d.state) title=d.last_error.clone().unwrap_or_default()>{d.state.clone()}</span></td>
                                            <td>{d.attempts}</td>
                                            <td><code>{d.installation.unwrap_or_default()}</code></td>
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
