//! The Outbox: every change issuebridge told Sentry or is about to, with
//! what Sentry answered; a refused one can be sent again.

use issuebridge::domain::outbox::{OutboxItem, OutboxState};
use issuebridge::domain::ticket::ticket_page;
use issuebridge::domain::time::format_utc_minutes;
use leptos::prelude::*;
use leptos_meta::Title;

use super::LoadError;
use crate::api::{load_outbox, retry_outbox};
use crate::live::use_live_changes;

#[component]
pub fn OutboxPage() -> impl IntoView {
    let live = use_live_changes();
    let (filter, set_filter) = signal(None::<OutboxState>);
    let retried = RwSignal::new(0u64);
    let listing = Resource::new(
        move || (filter.get(), live.count.get(), retried.get()),
        |(state, _, _)| load_outbox(state, None),
    );
    let (notice, set_notice) = signal(String::new());
    let retry = Callback::new(move |id: i64| {
        leptos::task::spawn_local(async move {
            match retry_outbox(id).await {
                Ok(()) => set_notice.set(format!("Change {id} will be sent again.")),
                Err(error) => set_notice.set(format!("Change {id} was not retried: {error}")),
            }
            retried.update(|n| *n += 1);
        });
    });
    let states = [
        None,
        Some(OutboxState::Failed),
        Some(OutboxState::Pending),
        Some(OutboxState::Sent),
        Some(OutboxState::Skipped),
        Some(OutboxState::Superseded),
    ];

    view! {
        <Title text="Outbox"/>
        <section class="page">
            <header class="page-head"><h1>"Outbox"</h1></header>
            <p class="muted">
                "What issuebridge tells Sentry: status, assignee, comments and sidebar links, sent in order per Sentry issue. "
                "Changes wait while Sentry cannot be reached; one Sentry refuses stays here, and on its ticket, until someone retries it."
            </p>
            <div class="tabs" role="tablist">
                {states.into_iter().map(|state| {
                    let label = state.map_or("All", OutboxState::label);
                    view! {
                        <button
                            class="tab"
                            role="tab"
                            aria-selected=move || (filter.get() == state).to_string()
                            on:click=move |_| set_filter.set(state)
                        >{label}</button>
                    }
                }).collect_view()}
            </div>
            <p class="notice" role="status">{move || notice.get()}</p>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match listing.await {
                        Ok(listing) => {
                            let counts = listing.counts.iter().map(|(state, n)| format!("{n} {}", state.label().to_lowercase())).collect::<Vec<_>>().join(" · ");
                            view! {
                                <p class="count" data-testid="outbox-counts">{if counts.is_empty() { "Nothing sent yet.".to_owned() } else { counts }}</p>
                                <OutboxTable items=listing.items retry/>
                            }.into_any()
                        }
                        Err(error) => view! { <LoadError error/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// Outbox rows as a table; the ticket page shows its own with it.
#[component]
pub fn OutboxTable(items: Vec<OutboxItem>, retry: Callback<i64>) -> impl IntoView {
    if items.is_empty() {
        return view! { <p class="muted">"No changes here."</p> }.into_any();
    }
    view! {
        <table class="table" data-testid="outbox">
            <thead><tr><th>"When"</th><th>"Ticket"</th><th>"Sentry issue"</th><th>"Change"</th><th>"State"</th><th>"Sentry said"</th><th></th></tr></thead>
            <tbody>
                {items.into_iter().map(|item| {
                    let ticket = item.ticket.as_ref().map(|key| {
                        let href = ticket_page(key, &item.installation_uuid);
                        view! { <a href=href>{key.to_string()}</a> }
                    });
                    let detail = match item.state {
                        OutboxState::Pending if item.attempts > 0 => format!(
                            "{} (attempt {}; next at {})",
                            item.last_error.clone().unwrap_or_default(),
                            item.attempts,
                            format_utc_minutes(item.next_attempt_at_ms)
                        ),
                        _ => item.last_error.clone().unwrap_or_default(),
                    };
                    let id = item.id;
                    view! {
                        <tr data-state=item.state.as_str()>
                            <td>{format_utc_minutes(item.created_at_ms)}</td>
                            <td>{ticket}</td>
                            <td>{item.issue_name()} " " <span class="muted">{item.org_slug.clone()}</span></td>
                            <td>{item.kind.label()}</td>
                            <td><span class=format!("state {}", item.state.as_str())>{item.state.label()}</span></td>
                            <td class="wrap">{detail}</td>
                            <td>{item.can_retry().then(|| view! {
                                <button class="button small" on:click=move |_| retry.run(id)>"Retry"</button>
                            })}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
