use std::collections::{BTreeSet, HashMap};

use issuebridge::domain::outbox::TicketEdit;
use issuebridge::domain::ticket::{TicketStatus, TicketSummary};
use issuebridge::domain::time::format_utc_minutes;
use leptos::prelude::*;
use leptos_meta::Title;

use super::LoadError;
use crate::api::{list_tickets, update_ticket};
use crate::live::use_live_changes;

/// A card moved to another column: the ticket and where it goes.
pub type CardMove = (TicketSummary, TicketStatus);

#[component]
pub fn BoardPage() -> impl IntoView {
    let live = use_live_changes();
    // Moves made here load the board again once saved; the live feed does
    // for everyone else's changes (webhooks, other people, other instances).
    let saved = RwSignal::new(0u64);
    let tickets = Resource::new(move || (live.count.get(), saved.get()), |_| list_tickets());
    let (query, set_query) = signal(String::new());
    let (team, set_team) = signal(String::new());
    let (assignee, set_assignee) = signal(String::new());
    let (notice, set_notice) = signal(String::new());
    // The card last moved by keyboard keeps the focus when the board is
    // drawn again.
    let focused = RwSignal::new(None::<i64>);
    let on_move = Callback::new(move |(ticket, status): CardMove| {
        let edit = TicketEdit { status: Some(status), ..Default::default() };
        let (installation, key) = (ticket.installation_uuid.clone(), ticket.key.to_string());
        leptos::task::spawn_local(async move {
            match update_ticket(installation, key.clone(), edit).await {
                Ok(_) => set_notice.set(format!("{key} moved to {}.", status.label())),
                Err(error) => set_notice.set(format!("{key} was not moved: {error}")),
            }
            saved.update(|n| *n += 1);
        });
    });

    view! {
        <Title text="Board"/>
        <section class="page">
            <header class="page-head">
                <h1>"Board"</h1>
            </header>
            // Filtering happens in the browser: it only works once the WASM
            // has hydrated the page.
            <div class="filters board-filters">
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
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        let list = tickets.await.unwrap_or_default();
                        let teams: BTreeSet<String> = list.iter().map(|t| t.key.team.to_string()).collect();
                        let people: BTreeSet<String> = list.iter().filter_map(|t| t.assignee.clone()).collect();
                        view! {
                            <select aria-label="Team" id="team-filter" prop:value=team on:change=move |ev| set_team.set(event_target_value(&ev))>
                                <option value="">"All teams"</option>
                                {teams.into_iter().map(|t| view! { <option value=t.clone()>{t.clone()}</option> }).collect_view()}
                            </select>
                            <select aria-label="Assignee" id="assignee-filter" prop:value=assignee on:change=move |ev| set_assignee.set(event_target_value(&ev))>
                                <option value="">"Anyone"</option>
                                <option value="-">"Unassigned"</option>
                                {people.into_iter().map(|p| view! { <option value=p.clone()>{p.clone()}</option> }).collect_view()}
                            </select>
                        }
                    })}
                </Transition>
            </div>
            <p class="muted hint">"Drag a card to another column, or focus it and press Shift+→ or Shift+←. Changes made anywhere appear here as they happen."</p>
            <p class="notice" role="status" data-testid="board-notice">{move || notice.get()}</p>
            <Transition fallback=|| view! { <p class="muted">"Loading tickets…"</p> }>
                {move || Suspend::new(async move {
                    match tickets.await {
                        Ok(list) => view! { <TicketBoard tickets=list query team assignee on_move focused/> }.into_any(),
                        Err(error) => view! { <LoadError error/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// The tickets in one column per status, narrowed by the filters (text,
/// team key, assignee: `-` for unassigned). With `on_move`, cards move by
/// drag and drop and by keyboard, at once on screen.
#[component]
pub fn TicketBoard(
    tickets: Vec<TicketSummary>,
    #[prop(into)] query: Signal<String>,
    #[prop(into, optional)] team: Signal<String>,
    #[prop(into, optional)] assignee: Signal<String>,
    #[prop(optional)] on_move: Option<Callback<CardMove>>,
    /// The card to focus once drawn (set by a keyboard move).
    #[prop(optional)]
    focused: Option<RwSignal<Option<i64>>>,
) -> impl IntoView {
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
    // Moves shown before the board loads again.
    let moved = RwSignal::new(HashMap::<i64, TicketStatus>::new());
    // Every read on the board's render path is a `try_*` read. On the server,
    // Leptos' <Transition> re-walks this view (`dry_resolve`) from an effect
    // task on another tokio worker; when the client goes away mid-stream the
    // request's owner tree is cleaned up on the connection's thread at the
    // same time, and a panicking read (`with`/`get`) of a value that was just
    // disposed kills that task. The walk's output is thrown away, so an empty
    // board is as good as any there.
    let visible = Memo::new(move |_| {
        let (Some(query), Some(team), Some(assignee), Some(moved)) =
            (query.try_get(), team.try_get(), assignee.try_get(), moved.try_get())
        else {
            return Vec::new();
        };
        tickets
            .try_with_value(|all| {
                all.iter()
                    .filter(|t| t.matches(&query))
                    .filter(|t| team.is_empty() || t.key.team.as_str() == team)
                    .filter(|t| match assignee.as_str() {
                        "" => true,
                        "-" => t.assignee.is_none(),
                        email => t.assignee.as_deref() == Some(email),
                    })
                    .map(|t| {
                        let mut t = t.clone();
                        if let Some(status) = moved.get(&t.id.0) {
                            t.status = *status;
                        }
                        t
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    });
    let focus_later = move |id: i64| {
        // After the card is drawn anew (in its new column, or when the board
        // loads again).
        set_timeout(
            move || {
                let selector = format!(r#"[data-ticket="{id}"]"#);
                if let Ok(Some(card)) = document().query_selector(&selector) {
                    use leptos::wasm_bindgen::JsCast;
                    if let Ok(card) = card.dyn_into::<leptos::web_sys::HtmlElement>() {
                        let _ = card.focus();
                    }
                }
            },
            std::time::Duration::from_millis(30),
        );
    };
    if let Some(focused) = focused {
        if let Some(id) = focused.try_get_untracked().flatten() {
            Effect::new(move |_| {
                focus_later(id);
                // Once: a later reload (someone else's change) leaves the
                // focus where the person put it.
                focused.set(None);
            });
        }
    }
    let move_card = move |id: i64, status: TicketStatus, by_keyboard: bool| {
        if by_keyboard {
            if let Some(focused) = focused {
                focused.set(Some(id));
            }
            focus_later(id);
        }
        let Some(on_move) = on_move else { return };
        let Some(ticket) = tickets.with_value(|all| all.iter().find(|t| t.id.0 == id).cloned()) else { return };
        let current = moved.with_untracked(|m| m.get(&id).copied()).unwrap_or(ticket.status);
        if current == status {
            return;
        }
        moved.update(|m| {
            m.insert(id, status);
        });
        on_move.run((ticket, status));
    };

    view! {
        <p class="count" data-testid="ticket-count">
            {move || {
                let shown = visible.try_with(Vec::len).unwrap_or(0);
                if shown == total { format!("{total} tickets") } else { format!("{shown} of {total} tickets") }
            }}
        </p>
        <div class="board">
            {TicketStatus::ALL
                .into_iter()
                .map(|status| {
                    let in_column = move || {
                        visible
                            .try_with(|v| v.iter().filter(|t| t.status == status).cloned().collect::<Vec<_>>())
                            .unwrap_or_default()
                    };
                    let (over, set_over) = signal(false);
                    view! {
                        <section
                            class="column"
                            class:drop-target=over
                            data-status=status.as_str()
                            on:dragover=move |ev| {
                                ev.prevent_default();
                                set_over.set(true);
                            }
                            on:dragleave=move |_| set_over.set(false)
                            on:drop=move |ev: leptos::ev::DragEvent| {
                                ev.prevent_default();
                                set_over.set(false);
                                let id = ev.data_transfer().and_then(|d| d.get_data("text/plain").ok());
                                if let Some(id) = id.and_then(|id| id.parse::<i64>().ok()) {
                                    move_card(id, status, false);
                                }
                            }
                        >
                            <h2>
                                {status.label()}
                                <span class="badge">{move || visible.try_with(|v| v.iter().filter(|t| t.status == status).count()).unwrap_or(0)}</span>
                            </h2>
                            <ul class="cards">
                                <For each=in_column key=|t| (t.id.0, t.status) let:ticket>
                                    <TicketCard ticket movable=on_move.is_some() move_card/>
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

/// The column before or after `status`, for keyboard moves.
fn neighbour(status: TicketStatus, step: isize) -> Option<TicketStatus> {
    let at = TicketStatus::ALL.iter().position(|s| *s == status)?;
    TicketStatus::ALL.get(at.checked_add_signed(step)?).copied()
}

#[component]
fn TicketCard(
    ticket: TicketSummary,
    movable: bool,
    move_card: impl Fn(i64, TicketStatus, bool) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let page = ticket.page();
    let (id, status) = (ticket.id.0, ticket.status);
    let more_issues = (ticket.linked_issues > 1).then(|| format!("+{}", ticket.linked_issues - 1));
    let events = (ticket.occurrences > 0).then(|| {
        let label =
            if ticket.occurrences == 1 { "1 event".to_owned() } else { format!("{} events", ticket.occurrences) };
        view! { <span class="events" title="Sentry events counted on this ticket">{label}</span> }
    });
    let severity = ticket.severity.map(|severity| {
        view! { <span class=format!("severity {severity}") title="The metric alert's state">{severity.clone()}</span> }
    });
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        if !movable || !ev.shift_key() {
            return;
        }
        let step = match ev.key().as_str() {
            "ArrowRight" => 1,
            "ArrowLeft" => -1,
            _ => return,
        };
        if let Some(to) = neighbour(status, step) {
            ev.prevent_default();
            move_card(id, to, true);
        }
    };
    view! {
        <li
            class="card"
            data-ticket=id
            tabindex=movable.then_some("0")
            draggable=movable.then_some("true")
            aria-keyshortcuts=movable.then_some("Shift+ArrowLeft Shift+ArrowRight")
            on:dragstart=move |ev: leptos::ev::DragEvent| {
                if let Some(data) = ev.data_transfer() {
                    let _ = data.set_data("text/plain", &id.to_string());
                    data.set_effect_allowed("move");
                }
            }
            on:keydown=on_key
        >
            <div class="card-top">
                <span class="ticket-id">{ticket.key.to_string()}</span>
                {ticket.sentry_short_id.map(|short| view! { <span class="issue">{short}</span> })}
                {more_issues.map(|more| view! { <span class="issue more">{more}</span> })}
                {severity}
                {events}
            </div>
            <p class="title"><a href=page draggable="false">{ticket.title.clone()}</a></p>
            <div class="card-bottom">
                <span class="assignee">{ticket.assignee.unwrap_or_else(|| "unassigned".to_owned())}</span>
                <span class="org">{ticket.org_slug}</span>
                <time>{format_utc_minutes(ticket.updated_at_ms)}</time>
            </div>
        </li>
    }
}
