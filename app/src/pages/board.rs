use issuebridge::domain::ticket::{TicketStatus, TicketSummary};
use issuebridge::domain::time::format_utc_minutes;
use leptos::prelude::*;
use leptos_meta::Title;

use super::LoadError;
use crate::api::list_tickets;

#[component]
pub fn BoardPage() -> impl IntoView {
    let tickets = Resource::new(|| (), |_| list_tickets());
    let (query, set_query) = signal(String::new());

    view! {
        <Title text="Board"/>
        <section class="page">
            <header class="page-head">
                <h1>"Board"</h1>
                // Filtering happens in the browser: it only works once the
                // WASM has hydrated the page.
                <input
                    type="search"
                    id="ticket-filter"
                    class="filter"
                    placeholder="Filter by title, id, assignee, issue…"
                    aria-label="Filter tickets"
                    autocomplete="off"
                    prop:value=query
                    on:input=move |ev| set_query.set(event_target_value(&ev))
                />
            </header>
            <Suspense fallback=|| view! { <p class="muted">"Loading tickets…"</p> }>
                {move || Suspend::new(async move {
                    match tickets.await {
                        Ok(list) => view! { <TicketBoard tickets=list query/> }.into_any(),
                        Err(error) => view! { <LoadError error/> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The tickets in one column per status, narrowed by the filter query.
#[component]
pub fn TicketBoard(tickets: Vec<TicketSummary>, #[prop(into)] query: Signal<String>) -> impl IntoView {
    let total = tickets.len();
    if total == 0 {
        return view! {
            <div class="empty">
                <p>"No tickets yet."</p>
                <p class="muted">
                    "Tickets appear here when Sentry issues are linked to them: from an issue's sidebar, from an alert rule, or automatically for new issues."
                </p>
            </div>
        }
        .into_any();
    }
    let tickets = StoredValue::new(tickets);
    let visible = Memo::new(move |_| {
        let query = query.get();
        tickets.with_value(|all| all.iter().filter(|t| t.matches(&query)).cloned().collect::<Vec<_>>())
    });

    view! {
        <p class="count" data-testid="ticket-count">
            {move || {
                let shown = visible.with(Vec::len);
                if shown == total { format!("{total} tickets") } else { format!("{shown} of {total} tickets") }
            }}
        </p>
        <div class="board">
            {TicketStatus::ALL
                .into_iter()
                .map(|status| {
                    let in_column = move || {
                        visible.with(|v| v.iter().filter(|t| t.status == status).cloned().collect::<Vec<_>>())
                    };
                    view! {
                        <section class="column" data-status=status.as_str()>
                            <h2>
                                {status.label()}
                                <span class="badge">{move || visible.with(|v| v.iter().filter(|t| t.status == status).count())}</span>
                            </h2>
                            <ul class="cards">
                                <For each=in_column key=|t| t.id.0 let:ticket>
                                    <TicketCard ticket/>
                                </For>
                            </ul>
                        </section>
                    }
                })
                .collect_view()}
        </div>
    }
    .into_any()
}

#[component]
fn TicketCard(ticket: TicketSummary) -> impl IntoView {
    let page = ticket.page();
    let more_issues = (ticket.linked_issues > 1).then(|| format!("+{}", ticket.linked_issues - 1));
    let events = (ticket.occurrences > 0).then(|| {
        let label =
            if ticket.occurrences == 1 { "1 event".to_owned() } else { format!("{} events", ticket.occurrences) };
        view! { <span class="events" title="Sentry events counted on this ticket">{label}</span> }
    });
    let severity = ticket.severity.map(|severity| {
        view! { <span class=format!("severity {severity}") title="The metric alert's state">{severity.clone()}</span> }
    });
    view! {
        <li class="card" data-ticket=ticket.id.0>
            <div class="card-top">
                <span class="ticket-id">{ticket.key.to_string()}</span>
                {ticket.sentry_short_id.map(|short| view! { <span class="issue">{short}</span> })}
                {more_issues.map(|more| view! { <span class="issue more">{more}</span> })}
                {severity}
                {events}
            </div>
            <p class="title"><a href=page>{ticket.title.clone()}</a></p>
            <div class="card-bottom">
                <span class="assignee">{ticket.assignee.unwrap_or_else(|| "unassigned".to_owned())}</span>
                <span class="org">{ticket.org_slug}</span>
                <time>{format_utc_minutes(ticket.updated_at_ms)}</time>
            </div>
        </li>
    }
}
