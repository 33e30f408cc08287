use issuebridge::time::format_utc_minutes;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::{outcome_text, DemoAction, LoadError, Page};
use crate::api::{list_deliveries, load_console_info, ReplayDelivery, SendDemoEvents};

#[component]
pub fn DeliveriesPage() -> impl IntoView {
    let send_samples = ServerAction::<SendDemoEvents>::new();
    let replay = ServerAction::<ReplayDelivery>::new();
    // Filters and the page live in the URL (?resource=&state=&before=), so
    // a filtered view can be linked and works before the WASM loads.
    let query = use_query_map();
    let deliveries = Resource::new(
        move || {
            let q = query.get();
            (
                q.get("resource"),
                q.get("state"),
                q.get("before").and_then(|b| b.parse::<i64>().ok()),
                send_samples.version().get(),
                replay.version().get(),
            )
        },
        |(resource, state, before, _, _)| list_deliveries(resource, state, before),
    );
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
                let filters = query.get_untracked();
                let resource = filters.get("resource").unwrap_or_default();
                let state = filters.get("state").unwrap_or_default();
                let filter_form = view! {
                    <form method="get" action="/deliveries" class="filters">
                        <label>"Resource "
                            <select name="resource">
                                {["", "installation", "issue", "error", "comment", "event_alert", "metric_alert", "service_hook"].into_iter().map(|r| {
                                    view! { <option value=r selected=r == resource>{if r.is_empty() { "all" } else { r }}</option> }
                                }).collect_view()}
                            </select>
                        </label>
                        <label>"State "
                            <select name="state">
                                {["", "pending", "processing", "retry", "processed", "dead", "ignored", "invalid"].into_iter().map(|s| {
                                    view! { <option value=s selected=s == state>{if s.is_empty() { "all" } else { s }}</option> }
                                }).collect_view()}
                            </select>
                        </label>
                        <button class="button" type="submit">"Filter"</button>
                    </form>
                };
                match deliveries.await {
                    Ok(page) if page.deliveries.is_empty() => view! {
                        {filter_form}
                        <p class="empty" data-testid="delivery-count">"No deliveries here."</p>
                        <p class="muted">
                            "Every signed webhook from Sentry is stored here before it is acknowledged."
                        </p>
                    }.into_any(),
                    Ok(page) => {
                        let older = page.older.map(|before| {
                            let mut href = format!("/deliveries?before={before}");
                            if !resource.is_empty() { href.push_str(&format!("&resource={resource}")); }
                            if !state.is_empty() { href.push_str(&format!("&state={state}")); }
                            view! { <p><a href=href>"Older deliveries →"</a></p> }
                        });
                        let list = page.deliveries;
                        view! {
                        {filter_form}
                        <p class="count" data-testid="delivery-count">{format!("{} deliveries", list.len())}</p>
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
                        {older}
                    }.into_any()
                    }
                    Err(error) => view! { <LoadError error/> }.into_any(),
                }
            })}
        </Page>
    }
}
