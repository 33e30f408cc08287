use issuebridge::domain::ticket::{ticket_page, TicketDetail};
use issuebridge::domain::time::format_utc_minutes;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::LoadError;
use crate::api::load_ticket;

/// `/tickets/ENG-12`: where Sentry's sidebar links a ticket (`webUrl`).
/// The link names the installation, since identifiers are unique within
/// one; without it, every ticket of that identifier in the person's
/// organizations is offered.
#[component]
pub fn TicketPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let ticket = Resource::new(
        move || (params.get().get("key").unwrap_or_default(), query.get().get("installation")),
        |(key, installation)| load_ticket(key, installation),
    );
    view! {
        <Title text=move || params.get().get("key").unwrap_or_default()/>
        <section class="page">
            <Suspense fallback=|| view! { <p class="muted">"Loading the ticket…"</p> }>
                {move || Suspend::new(async move {
                    match ticket.await {
                        Ok(mut tickets) if tickets.len() == 1 => {
                            view! { <TicketView ticket=tickets.remove(0)/> }.into_any()
                        }
                        Ok(tickets) => view! { <Choose tickets/> }.into_any(),
                        Err(error) => view! {
                            <header class="page-head"><h1>"Ticket"</h1></header>
                            <LoadError error/>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// Several installations have a ticket with this identifier.
#[component]
fn Choose(tickets: Vec<TicketDetail>) -> impl IntoView {
    let key = tickets.first().map(|t| t.key.to_string()).unwrap_or_default();
    view! {
        <header class="page-head"><h1>{key}</h1></header>
        <p>"Several of your organizations have a ticket by this name:"</p>
        <ul>
            {tickets.into_iter().map(|t| {
                let href = ticket_page(&t.key, &t.installation_uuid);
                view! { <li><a href=href>{t.title}</a> " " <span class="muted">{t.org_slug}</span></li> }
            }).collect_view()}
        </ul>
    }
}

#[component]
fn TicketView(ticket: TicketDetail) -> impl IntoView {
    let events = match ticket.occurrences {
        0 => "no events".to_owned(),
        1 => "1 event".to_owned(),
        n => format!("{n} events"),
    };
    let source = ticket.source_label();
    let description = (!ticket.description.trim().is_empty()).then(|| ticket.description.clone());
    view! {
        <header class="page-head ticket-head">
            <h1><span class="ticket-id">{ticket.key.to_string()}</span> " " {ticket.title.clone()}</h1>
        </header>
        <div class="ticket-page">
            <div class="ticket-main">
                <h2>"Description"</h2>
                {match description {
                    // Shown as text, so nothing in it can run.
                    Some(text) => view! { <pre class="description">{text}</pre> }.into_any(),
                    None => view! { <p class="muted">"No description."</p> }.into_any(),
                }}
                <h2>"Linked Sentry issues"</h2>
                {if ticket.links.is_empty() {
                    view! { <p class="muted">"None yet: link one from the issue's sidebar in Sentry."</p> }.into_any()
                } else {
                    view! {
                        <table class="table" data-testid="linked-issues">
                            <thead><tr><th>"Issue"</th><th>"Title"</th><th>"Project"</th><th>"Status"</th><th>"Events"</th></tr></thead>
                            <tbody>
                                {ticket.links.iter().cloned().map(|link| {
                                    let name = link.short_id.clone().unwrap_or_else(|| link.issue_id.clone());
                                    view! {
                                        <tr>
                                            <td>{match link.web_url.clone() {
                                                Some(url) => view! { <a href=url rel="noopener noreferrer" target="_blank">{name}</a> }.into_any(),
                                                None => view! { <span>{name}</span> }.into_any(),
                                            }}</td>
                                            <td>{link.title.clone().unwrap_or_default()}</td>
                                            <td>{link.project_slug.clone().unwrap_or_default()}</td>
                                            <td>{link.status.clone().unwrap_or_else(|| "—".into())}</td>
                                            <td>{link.event_count}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }}
                <h2>"Comments"</h2>
                {if ticket.comments.is_empty() {
                    view! { <p class="muted">"No comments."</p> }.into_any()
                } else {
                    view! {
                        <ul class="comments">
                            {ticket.comments.iter().cloned().map(|c| {
                                let author = c.author.clone().unwrap_or_else(|| "someone".into());
                                let from = if c.origin == "sentry" { "in Sentry" } else { "in issuebridge" };
                                view! {
                                    <li class="comment">
                                        <p class="muted">{author} " · " {from} " · " {format_utc_minutes(c.created_at_ms)}</p>
                                        {if c.deleted {
                                            view! { <p class="muted">"(deleted)"</p> }.into_any()
                                        } else {
                                            view! { <p class="comment-body">{c.body.clone()}</p> }.into_any()
                                        }}
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            </div>
            <aside class="ticket-side">
                <dl class="settings">
                    <dt>"Status"</dt><dd data-testid="ticket-status">{ticket.status.label()}</dd>
                    <dt>"Assignee"</dt><dd>{ticket.assignee.clone().unwrap_or_else(|| "unassigned".into())}</dd>
                    <dt>"Team"</dt><dd>{format!("{} ({})", ticket.team_name, ticket.key.team)}</dd>
                    <dt>"Organization"</dt><dd>{ticket.org_slug.clone()}</dd>
                    <dt>"Events"</dt><dd>{events}</dd>
                    <dt>"Origin"</dt><dd>{source}</dd>
                    <dt>"Created"</dt><dd>{format_utc_minutes(ticket.created_at_ms)}</dd>
                    <dt>"Updated"</dt><dd>{format_utc_minutes(ticket.updated_at_ms)}</dd>
                </dl>
            </aside>
        </div>
    }
}
