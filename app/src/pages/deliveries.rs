use issuebridge::domain::deliveries::{DeliveryDetail, DeliveryFilter, DeliveryState, DeliverySummary};
use issuebridge::domain::time::{format_input_minutes, format_utc_minutes};
use issuebridge::domain::webhooks::Resource as WebhookResource;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::{outcome_text, DemoAction, LoadError, Page};
use crate::api::{
    list_deliveries, load_console_info, load_delivery, PreviewReplay, ReplayDeliveries, ReplayDelivery, SendDemoEvents,
};

/// `resource.action`, as Sentry names a webhook.
fn event_name(d: &DeliverySummary) -> String {
    match &d.action {
        Some(action) => format!("{}.{action}", d.resource),
        None => d.resource.clone(),
    }
}

/// A query string for `filter`, plus `extra` parameters.
fn query_string(filter: &DeliveryFilter, extra: &[(&str, String)]) -> String {
    let pairs: Vec<String> = filter
        .to_params()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .chain(extra.iter().map(|(name, value)| ((*name).to_owned(), value.clone())))
        .map(|(name, value)| format!("{name}={}", encode(&value)))
        .collect();
    pairs.join("&")
}

/// Percent-encodes a query value (the few characters these values carry).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b':' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[component]
pub fn DeliveriesPage() -> impl IntoView {
    let send_samples = ServerAction::<SendDemoEvents>::new();
    let replay = ServerAction::<ReplayDelivery>::new();
    let replay_many = ServerAction::<ReplayDeliveries>::new();
    let preview = ServerAction::<PreviewReplay>::new();
    // Filters and the page live in the URL, so a filtered view can be linked
    // and works before the WASM loads.
    let query = use_query_map();
    let deliveries = Resource::new(
        move || {
            let q = query.get();
            let filter = DeliveryFilter::from_params(|name| q.get(name));
            (
                filter,
                q.get("before").and_then(|b| b.parse::<i64>().ok()),
                (send_samples.version().get(), replay.version().get(), replay_many.version().get()),
            )
        },
        |(filter, before, _)| list_deliveries(filter, before),
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
                let params = query.get_untracked();
                let filter = DeliveryFilter::from_params(|name| params.get(name));
                let filter_form = filter_form(&filter);
                let bulk = bulk_replays(&filter, preview, replay_many, replay);
                match deliveries.await {
                    Ok(page) if page.deliveries.is_empty() => view! {
                        {filter_form}
                        {bulk}
                        <p class="empty" data-testid="delivery-count">"No deliveries here."</p>
                        <p class="muted">
                            "Every signed webhook from Sentry is stored here before it is acknowledged."
                        </p>
                    }.into_any(),
                    Ok(page) => {
                        let older = page.older.map(|before| {
                            let href = format!("/deliveries?{}", query_string(&filter, &[("before", before.to_string())]));
                            view! { <p><a href=href>"Older deliveries →"</a></p> }
                        });
                        let list = page.deliveries;
                        view! {
                        {filter_form}
                        {bulk}
                        <p class="count" data-testid="delivery-count">{format!("{} deliveries", list.len())}</p>
                        <table class="table deliveries">
                            <thead><tr>
                                <th>"#"</th><th>"Received"</th><th>"Event"</th><th>"State"</th><th>"What happened"</th><th>"Attempts"</th><th>"Installation"</th><th></th>
                            </tr></thead>
                            <tbody>
                                {list.into_iter().map(|d| {
                                    let event = event_name(&d);
                                    let duplicates = (d.duplicates > 0).then(|| format!(" (+{} retries)", d.duplicates));
                                    let id = d.id;
                                    let replayable = d.is_replayable();
                                    let action = replayable.then(|| view! {
                                        <button
                                            class="link-button"
                                            aria-label=format!("Replay delivery {id}")
                                            on:click=move |_| { replay.dispatch(ReplayDelivery { id }); }
                                        >
                                            "Replay"
                                        </button>
                                    });
                                    let outcome = d.note.clone().or_else(|| d.last_error.clone()).unwrap_or_default();
                                    view! {
                                        <tr data-delivery=d.id>
                                            <td><a href=format!("/deliveries/{id}") aria-label=format!("Delivery {id} in full")>{d.id}</a></td>
                                            <td>{format_utc_minutes(d.received_at_ms)}</td>
                                            <td><code>{event}</code>{duplicates}</td>
                                            <td><span class=format!("status {}", d.state)>{d.state.as_str()}</span></td>
                                            <td class="note">{outcome}</td>
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

/// The filter form: a plain GET form, so it works before hydration.
fn filter_form(filter: &DeliveryFilter) -> impl IntoView {
    let resource = filter.resource.clone().unwrap_or_default();
    let state = filter.state.map(DeliveryState::as_str).unwrap_or_default();
    // The empty choice means "all".
    let resources: Vec<&'static str> =
        std::iter::once("").chain(WebhookResource::ALL.iter().map(|r| r.as_str())).collect();
    let states: Vec<&'static str> = std::iter::once("").chain(DeliveryState::ALL.iter().map(|s| s.as_str())).collect();
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let time = |ms: Option<i64>| ms.map(format_input_minutes).unwrap_or_default();
    view! {
        <form method="get" action="/deliveries" class="filters">
            <label>"Resource "{choice("resource", &resources, &resource)}</label>
            <label>"Action "<input name="action" size="10" placeholder="any" value=text(&filter.action)/></label>
            <label>"State "{choice("state", &states, state)}</label>
            <label>"Installation "<input name="installation" size="12" placeholder="any" value=text(&filter.installation)/></label>
            <label>"From (UTC) "<input type="datetime-local" name="from" value=time(filter.from_ms)/></label>
            <label>"To (UTC) "<input type="datetime-local" name="to" value=time(filter.to_ms)/></label>
            <button class="button" type="submit">"Filter"</button>
            <a href="/deliveries">"Clear"</a>
        </form>
    }
}

/// A filter's drop-down; the empty option means "all".
fn choice(name: &'static str, options: &[&'static str], selected: &str) -> impl IntoView {
    let options = options
        .iter()
        .map(|&option| {
            view! { <option value=option selected=option == selected>{if option.is_empty() { "all" } else { option }}</option> }
        })
        .collect_view();
    view! { <select name=name>{options}</select> }
}

/// Replays of many deliveries: all dead ones, or all in the chosen range.
/// The first click counts them ([`PreviewReplay`]); only then is the
/// replay offered, with its size, and refused past the console's limit.
fn bulk_replays(
    filter: &DeliveryFilter,
    preview: ServerAction<PreviewReplay>,
    replay_many: ServerAction<ReplayDeliveries>,
    replay_one: ServerAction<ReplayDelivery>,
) -> impl IntoView {
    // The replay that was counted last, to run once its size is seen.
    let counted = RwSignal::new(None::<ReplayDeliveries>);
    let ask = move |scope: &str, from_ms: Option<i64>, to_ms: Option<i64>| {
        counted.set(Some(ReplayDeliveries { scope: scope.to_owned(), from_ms, to_ms }));
        preview.dispatch(PreviewReplay { scope: scope.to_owned(), from_ms, to_ms });
    };
    let range = filter.has_time_range().then(|| {
        // The filter's own times, to the millisecond: what the list shows is
        // what is replayed.
        let (from_ms, to_ms) = (filter.from_ms, filter.to_ms);
        view! {
            <button class="button" on:click=move |_| ask("range", from_ms, to_ms)>
                "Replay every delivery in this time range…"
            </button>
        }
    });
    let offer = move || match (preview.value().get(), counted.get()) {
        (Some(Err(error)), _) => view! { <span class="error" role="alert">{error.to_string()}</span> }.into_any(),
        (Some(Ok(size)), Some(asked)) if size.count == 0 => {
            let _ = asked;
            view! { <span class="muted" role="status">"Nothing to replay among the installations you manage."</span> }
                .into_any()
        }
        (Some(Ok(size)), Some(_)) if size.count > size.limit => view! {
            <span class="error" role="alert">
                {format!(
                    "{} deliveries match; one replay from the console takes at most {}. Narrow the time range.",
                    size.count, size.limit
                )}
            </span>
        }
        .into_any(),
        (Some(Ok(size)), Some(asked)) => {
            let label = format!("Replay {} deliveries", size.count);
            view! {
                <button class="button primary" on:click=move |_| {
                    replay_many.dispatch(asked.clone());
                    preview.clear();
                }>{label}</button>
            }
            .into_any()
        }
        _ => ().into_any(),
    };
    view! {
        <div class="actions">
            <button class="button" on:click=move |_| ask("dead", None, None)>"Replay all dead deliveries…"</button>
            {range}
            {offer}
            <span class="muted" role="status">{move || outcome_text(replay_many.value().get(), |count| {
                format!("{count} deliveries queued to be processed again.")
            })}</span>
            <span class="muted" role="status">{move || outcome_text(replay_one.value().get(), |count| {
                if count == 1 { "Queued to be processed again.".to_owned() } else { "Nothing to replay.".to_owned() }
            })}</span>
        </div>
    }
}

/// `/deliveries/:id`: one delivery in full.
#[component]
pub fn DeliveryPage() -> impl IntoView {
    let params = use_params_map();
    let replay = ServerAction::<ReplayDelivery>::new();
    let id = move || params.get().get("id").and_then(|id| id.parse::<i64>().ok());
    let detail = Resource::new(
        move || (id(), replay.version().get()),
        |(id, _)| async move {
            match id {
                Some(id) => load_delivery(id).await,
                None => Ok(None),
            }
        },
    );
    view! {
        <Page title="Delivery">
            <p><a href="/deliveries">"← All deliveries"</a></p>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(Some(detail)) => delivery_view(detail, replay).into_any(),
                    Ok(None) => view! { <p class="empty">"There is no such delivery."</p> }.into_any(),
                    Err(error) => view! { <LoadError error/> }.into_any(),
                }
            })}
        </Page>
    }
}

fn delivery_view(detail: DeliveryDetail, replay: ServerAction<ReplayDelivery>) -> impl IntoView {
    let d = &detail.summary;
    let id = d.id;
    let replayable = d.is_replayable();
    let facts = [
        ("Event", event_name(d)),
        ("Received", format_utc_minutes(d.received_at_ms)),
        ("Source", detail.source.clone()),
        ("Installation", d.installation.clone().unwrap_or_else(|| "—".into())),
        ("Request-ID", detail.request_id.clone().unwrap_or_else(|| "—".into())),
        ("Retries from Sentry", d.duplicates.to_string()),
        ("Processed", detail.processed_at_ms.map(format_utc_minutes).unwrap_or_else(|| "—".into())),
        ("What happened", d.note.clone().unwrap_or_else(|| "—".into())),
    ];
    let last_error = d.last_error.clone().map(|error| view! { <p class="error" role="alert">{error}</p> });
    let attempts = if detail.attempts.is_empty() {
        view! { <p class="muted">"Not processed yet."</p> }.into_any()
    } else {
        view! {
            <table class="table attempts">
                <thead><tr><th>"Attempt"</th><th>"Finished"</th><th>"Outcome"</th><th>"Error"</th></tr></thead>
                <tbody>
                    {detail.attempts.iter().map(|a| view! {
                        <tr>
                            <td>{a.attempt}</td>
                            <td>{format_utc_minutes(a.finished_at_ms)}</td>
                            <td><span class=format!("status {}", a.outcome)>{a.outcome.as_str()}</span></td>
                            <td>{a.error.clone().unwrap_or_default()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        }
        .into_any()
    };
    let body_label = if detail.body_is_json {
        format!("Body ({} bytes, JSON, shown pretty-printed)", detail.body_bytes)
    } else {
        format!("Body ({} bytes, not JSON, shown as received)", detail.body_bytes)
    };
    view! {
        <div class="delivery-detail" data-delivery=id>
            <h2>
                {format!("Delivery {id} ")}
                <span class=format!("status {}", d.state)>{d.state.as_str()}</span>
            </h2>
            {replayable.then(|| view! {
                <div class="actions">
                    <button class="button" on:click=move |_| { replay.dispatch(ReplayDelivery { id }); }>"Replay"</button>
                    <span class="muted" role="status">{move || outcome_text(replay.value().get(), |count| {
                        if count == 1 { "Queued to be processed again.".to_owned() } else { "Nothing to replay.".to_owned() }
                    })}</span>
                </div>
            })}
            {last_error}
            <dl class="facts">
                {facts.into_iter().map(|(name, value)| view! { <dt>{name}</dt><dd>{value}</dd> }).collect_view()}
            </dl>
            <h3>"Headers"</h3>
            <dl class="facts headers">
                {detail.headers.iter().map(|(name, value)| view! { <dt><code>{name.clone()}</code></dt><dd><code>{value.clone()}</code></dd> }).collect_view()}
            </dl>
            <h3>"Processing attempts"</h3>
            {attempts}
            <h3>{body_label}</h3>
            <pre class="body" data-testid="delivery-body">{detail.body.clone()}</pre>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_the_filters() {
        let filter = DeliveryFilter {
            resource: Some("issue".into()),
            installation: Some("a b&c".into()),
            from_ms: Some(0),
            ..Default::default()
        };
        assert_eq!(
            query_string(&filter, &[("before", "9".into())]),
            "resource=issue&installation=a%20b%26c&from=1970-01-01T00:00&before=9"
        );
    }
}
