use issuebridge::domain::outbox::{TicketEdit, TicketEventView};
use issuebridge::domain::team::TeamKey;
use issuebridge::domain::ticket::{ticket_page, CommentView, LinkedIssueView, TicketDetail, TicketStatus};
use issuebridge::domain::time::format_utc_minutes;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::{LoadError, OutboxTable};
use crate::api::{add_comment, change_comment, load_ticket, retry_outbox, unlink_issue, update_ticket};
use crate::live::use_live_changes;

/// `/tickets/ENG-12`: where Sentry's sidebar links a ticket (`webUrl`).
/// The link names the installation, since identifiers are unique within
/// one; without it, every ticket of that identifier in the person's
/// organizations is offered. Members of the ticket's organization edit it
/// here; what Sentry should know goes to Sentry (see the Outbox).
#[component]
pub fn TicketPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let live = use_live_changes();
    let saved = RwSignal::new(0u64);
    // Outside the ticket's view, which is drawn anew when the ticket loads
    // again: what a change did stays on screen.
    let (notice, set_notice) = signal(String::new());
    let drafts = Drafts::new();
    let ticket = Resource::new(
        move || {
            (
                params.get().get("key").unwrap_or_default(),
                query.get().get("installation"),
                live.count.get(),
                saved.get(),
            )
        },
        |(key, installation, _, _)| load_ticket(key, installation),
    );
    view! {
        <Title text=move || params.get().get("key").unwrap_or_default()/>
        <section class="page">
            <p class="notice" role="status" data-testid="ticket-notice">{move || notice.get()}</p>
            <Transition fallback=|| view! { <p class="muted">"Loading the ticket…"</p> }>
                {move || Suspend::new(async move {
                    match ticket.await {
                        Ok(mut tickets) if tickets.len() == 1 => {
                            view! { <TicketView ticket=tickets.remove(0) saved notice=set_notice drafts/> }.into_any()
                        }
                        Ok(tickets) => view! { <Choose tickets/> }.into_any(),
                        Err(error) => view! {
                            <header class="page-head"><h1>"Ticket"</h1></header>
                            <LoadError error/>
                        }.into_any(),
                    }
                })}
            </Transition>
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

/// What people are writing, kept by the page rather than by the ticket's
/// view: a change arriving live draws the view anew, and must not throw
/// away a half-written comment or an open editor.
#[derive(Clone, Copy)]
struct Drafts {
    /// The title editor's text, while it is open.
    title: RwSignal<Option<String>>,
    /// The description editor's text, while it is open.
    description: RwSignal<Option<String>>,
    /// A comment being edited: its id and text.
    comment_edit: RwSignal<Option<(i64, String)>>,
    new_comment: RwSignal<String>,
}

impl Drafts {
    fn new() -> Self {
        Self {
            title: RwSignal::new(None),
            description: RwSignal::new(None),
            comment_edit: RwSignal::new(None),
            new_comment: RwSignal::new(String::new()),
        }
    }
}

/// What the page's controls share: the ticket's address, where to say how
/// a change went, and what to load again after it.
#[derive(Clone, Copy)]
struct Editing {
    installation: StoredValue<String>,
    key: StoredValue<String>,
    notice: WriteSignal<String>,
    saved: RwSignal<u64>,
    drafts: Drafts,
}

impl Editing {
    /// Saves an edit; a new identifier (another team) moves the page to it.
    fn save(self, edit: TicketEdit, done: &'static str) {
        let (installation, key) = (self.installation.get_value(), self.key.get_value());
        leptos::task::spawn_local(async move {
            match update_ticket(installation.clone(), key.clone(), edit).await {
                Ok(new_key) if new_key != key => {
                    self.notice.set(format!("{done} It is {new_key} now."));
                    if let Ok(new_key) = new_key.parse() {
                        let _ = window().location().set_href(&ticket_page(&new_key, &installation));
                    }
                }
                Ok(_) => self.notice.set(done.to_owned()),
                Err(error) => self.notice.set(problem(error)),
            }
            self.saved.update(|n| *n += 1);
        });
    }

    /// Runs another call about the ticket, then loads it again.
    fn run<F>(self, call: F, done: &'static str)
    where
        F: std::future::Future<Output = Result<(), ServerFnError>> + 'static,
    {
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(()) => self.notice.set(done.to_owned()),
                Err(error) => self.notice.set(problem(error)),
            }
            self.saved.update(|n| *n += 1);
        });
    }
}

fn problem(error: ServerFnError) -> String {
    match error {
        ServerFnError::ServerError(message) => message,
        other => other.to_string(),
    }
}

#[component]
fn TicketView(
    ticket: TicketDetail,
    saved: RwSignal<u64>,
    notice: WriteSignal<String>,
    drafts: Drafts,
) -> impl IntoView {
    let set_notice = notice;
    let editing = Editing {
        drafts,
        installation: StoredValue::new(ticket.installation_uuid.clone()),
        key: StoredValue::new(ticket.key.to_string()),
        notice: set_notice,
        saved,
    };
    let events = match ticket.occurrences {
        0 => "no events".to_owned(),
        1 => "1 event".to_owned(),
        n => format!("{n} events"),
    };
    let source = ticket.source_label();
    let linked = !ticket.links.is_empty();
    let comment_target = ticket.links.first().map(|l| l.short_id.clone().unwrap_or_else(|| l.issue_id.clone()));
    let retry = Callback::new(move |id: i64| editing.run(retry_outbox(id), "The change will be sent again."));

    view! {
        <header class="page-head ticket-head">
            <TitleEditor key=ticket.key.to_string() title=ticket.title.clone() editing/>
        </header>
        <div class="ticket-page">
            <div class="ticket-main">
                <DescriptionEditor text=ticket.description.clone() html=ticket.description_html.clone() editing/>
                <h2>"Linked Sentry issues"</h2>
                {if linked {
                    view! { <LinkedIssues links=ticket.links.clone() editing/> }.into_any()
                } else {
                    view! { <p class="muted">"None yet: link one from the issue's sidebar in Sentry."</p> }.into_any()
                }}
                <h2>"Comments"</h2>
                <Comments comments=ticket.comments.clone() editing/>
                <NewComment target=comment_target editing/>
                <h2>"History"</h2>
                <History events=ticket.history.clone()/>
                <h2>"Sync with Sentry"</h2>
                <OutboxTable items=ticket.outbox.clone() retry/>
            </div>
            <aside class="ticket-side">
                <TicketFields ticket=ticket.clone() editing/>
                <dl class="settings">
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

#[component]
fn TitleEditor(key: String, title: String, editing: Editing) -> impl IntoView {
    let draft = editing.drafts.title;
    let heading = format!("{key} {title}");
    view! {
        <Show
            when=move || draft.try_with(Option::is_some).unwrap_or(false)
            fallback=move || {
                let title = title.clone();
                view! {
                    <h1 data-testid="ticket-title">{heading.clone()}</h1>
                    <button class="button small secondary" on:click=move |_| draft.set(Some(title.clone()))>"Edit title"</button>
                }
            }
        >
            <form class="inline-form" on:submit=move |ev| {
                ev.prevent_default();
                let title = draft.get_untracked();
                draft.set(None);
                editing.save(TicketEdit { title, ..Default::default() }, "Title saved.");
            }>
                <input class="title-input" aria-label="Title" prop:value=move || draft.get().unwrap_or_default()
                    on:input=move |ev| draft.set(Some(event_target_value(&ev))) required/>
                <button class="button" type="submit">"Save"</button>
                <button class="button secondary" type="button" on:click=move |_| draft.set(None)>"Cancel"</button>
            </form>
        </Show>
    }
}

#[component]
fn DescriptionEditor(text: String, html: String, editing: Editing) -> impl IntoView {
    let draft = editing.drafts.description;
    let empty = text.trim().is_empty();
    view! {
        <div class="section-head">
            <h2>"Description"</h2>
            <button class="button small secondary" on:click=move |_| {
                draft.update(|d| *d = if d.is_some() { None } else { Some(text.clone()) });
            }>
                {move || if draft.try_with(Option::is_some).unwrap_or(false) { "Close" } else { "Edit" }}
            </button>
        </div>
        <Show
            when=move || draft.try_with(Option::is_some).unwrap_or(false)
            fallback=move || if empty {
                view! { <p class="muted">"No description."</p> }.into_any()
            } else {
                // Rendered from Markdown on the server, with raw HTML and
                // script links taken out (issuebridge::markdown).
                view! { <div class="markdown" data-testid="description" inner_html=html.clone()></div> }.into_any()
            }
        >
            <form on:submit=move |ev| {
                ev.prevent_default();
                let description = draft.get_untracked();
                draft.set(None);
                editing.save(TicketEdit { description, ..Default::default() }, "Description saved.");
            }>
                <textarea class="description-input" aria-label="Description (Markdown)" rows="10"
                    prop:value=move || draft.get().unwrap_or_default()
                    on:input=move |ev| draft.set(Some(event_target_value(&ev)))></textarea>
                <p class="muted">"Markdown: **bold**, `code`, lists, links."</p>
                <button class="button" type="submit">"Save description"</button>
            </form>
        </Show>
    }
}

#[component]
fn TicketFields(ticket: TicketDetail, editing: Editing) -> impl IntoView {
    let current_team = ticket.key.team.clone();
    let members = ticket.teams.iter().find(|t| t.key == current_team).map(|t| t.members.clone()).unwrap_or_default();
    let assignee = ticket.assignee.clone().unwrap_or_default();
    let status = ticket.status;
    let teams = ticket.teams.clone();
    let team_value = current_team.to_string();
    let free_assignee = RwSignal::new(assignee.clone());
    let assignee_control = if members.is_empty() {
        // A team without members takes anyone's email.
        view! {
            <form class="inline-form" on:submit=move |ev| {
                ev.prevent_default();
                let email = free_assignee.get_untracked();
                editing.save(TicketEdit { assignee: Some(Some(email)), ..Default::default() }, "Assignee saved.");
            }>
                <input type="email" id="ticket-assignee" aria-label="Assignee" placeholder="name@example.com"
                    prop:value=free_assignee on:input=move |ev| free_assignee.set(event_target_value(&ev))/>
                <button class="button small" type="submit">"Assign"</button>
            </form>
        }
        .into_any()
    } else {
        let mut options = members.clone();
        if !assignee.is_empty() && !options.contains(&assignee) {
            options.push(assignee.clone());
        }
        view! {
            <select id="ticket-assignee" aria-label="Assignee" prop:value=assignee.clone() on:change=move |ev| {
                let email = event_target_value(&ev);
                let edit = TicketEdit { assignee: Some((!email.is_empty()).then_some(email)), ..Default::default() };
                editing.save(edit, "Assignee saved.");
            }>
                <option value="">"Unassigned"</option>
                {options.into_iter().map(|m| view! { <option value=m.clone()>{m.clone()}</option> }).collect_view()}
            </select>
        }
        .into_any()
    };
    view! {
        <dl class="settings">
            <dt><label for="ticket-status">"Status"</label></dt>
            <dd>
                <select id="ticket-status" data-testid="ticket-status" prop:value=status.as_str() on:change=move |ev| {
                    let Ok(status) = event_target_value(&ev).parse::<TicketStatus>() else { return };
                    editing.save(TicketEdit { status: Some(status), ..Default::default() }, "Status saved.");
                }>
                    {TicketStatus::ALL.into_iter().map(|s| view! { <option value=s.as_str()>{s.label()}</option> }).collect_view()}
                </select>
            </dd>
            <dt><label for="ticket-assignee">"Assignee"</label></dt>
            <dd>{assignee_control}</dd>
            <dt><label for="ticket-team">"Team"</label></dt>
            <dd>
                <select id="ticket-team" prop:value=team_value on:change=move |ev| {
                    let Ok(team) = TeamKey::parse(&event_target_value(&ev)) else { return };
                    editing.save(TicketEdit { team: Some(team), ..Default::default() }, "Moved to the team.");
                }>
                    {teams.into_iter().map(|t| {
                        let label = format!("{} ({})", t.name, t.key);
                        view! { <option value=t.key.to_string()>{label}</option> }
                    }).collect_view()}
                </select>
            </dd>
        </dl>
    }
}

#[component]
fn LinkedIssues(links: Vec<LinkedIssueView>, editing: Editing) -> impl IntoView {
    view! {
        <table class="table" data-testid="linked-issues">
            <thead><tr><th>"Issue"</th><th>"Title"</th><th>"Project"</th><th>"Status"</th><th>"Events"</th><th>"Last seen"</th><th></th></tr></thead>
            <tbody>
                {links.into_iter().map(|link| {
                    let name = link.short_id.clone().unwrap_or_else(|| link.issue_id.clone());
                    let issue = link.issue_id.clone();
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
                            <td>{link.last_seen_ms.map_or_else(|| "—".to_owned(), format_utc_minutes)}</td>
                            <td><button class="button small secondary" on:click=move |_| {
                                let (installation, key) = (editing.installation.get_value(), editing.key.get_value());
                                editing.run(unlink_issue(installation, key, issue.clone()), "Unlinked.");
                            }>"Unlink"</button></td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn Comments(comments: Vec<CommentView>, editing: Editing) -> impl IntoView {
    if comments.is_empty() {
        return view! { <p class="muted">"No comments."</p> }.into_any();
    }
    view! {
        <ul class="comments" data-testid="comments">
            {comments.into_iter().map(|c| view! { <Comment comment=c editing/> }).collect_view()}
        </ul>
    }
    .into_any()
}

#[component]
fn Comment(comment: CommentView, editing: Editing) -> impl IntoView {
    let author = comment.author.clone().unwrap_or_else(|| "someone".into());
    let from = if comment.origin == "sentry" { "in Sentry" } else { "in issuebridge" };
    let edited = if comment.edited && !comment.deleted { " · edited" } else { "" };
    let byline = format!("{author} · {from} · {}{edited}", format_utc_minutes(comment.created_at_ms));
    let draft = editing.drafts.comment_edit;
    let id = comment.id;
    let open = move || draft.try_with(|d| d.as_ref().is_some_and(|(editing, _)| *editing == id)).unwrap_or(false);
    let body = comment.body.clone();
    let controls = (comment.mine && !comment.deleted).then(|| {
        let body = body.clone();
        view! {
            <span class="comment-actions">
                <button class="link-button" on:click=move |_| {
                    draft.update(|d| *d = if open() { None } else { Some((id, body.clone())) });
                }>"Edit"</button>
                <button class="link-button" on:click=move |_| {
                    let (installation, key) = (editing.installation.get_value(), editing.key.get_value());
                    editing.run(change_comment(installation, key, id, None), "Comment deleted.");
                }>"Delete"</button>
            </span>
        }
    });
    view! {
        <li class="comment">
            <p class="muted">{byline} {controls}</p>
            {if comment.deleted {
                view! { <p class="muted">"(deleted)"</p> }.into_any()
            } else {
                view! {
                    <Show when=open fallback=move || view! { <p class="comment-body">{body.clone()}</p> }>
                        <form on:submit=move |ev| {
                            ev.prevent_default();
                            // No text would mean "delete": never from this form.
                            let Some((_, text)) = draft.get_untracked() else { return };
                            draft.set(None);
                            let (installation, key) = (editing.installation.get_value(), editing.key.get_value());
                            editing.run(change_comment(installation, key, id, Some(text)), "Comment saved.");
                        }>
                            <textarea aria-label="Edit comment" rows="3"
                                prop:value=move || draft.get().map(|(_, text)| text).unwrap_or_default()
                                on:input=move |ev| draft.set(Some((id, event_target_value(&ev))))></textarea>
                            <button class="button small" type="submit">"Save"</button>
                        </form>
                    </Show>
                }.into_any()
            }}
        </li>
    }
}

#[component]
fn NewComment(target: Option<String>, editing: Editing) -> impl IntoView {
    let draft = editing.drafts.new_comment;
    let hint = match target {
        Some(issue) => format!("Posted to {issue} in Sentry too."),
        None => "Kept here: the ticket has no Sentry issue.".to_owned(),
    };
    view! {
        <form class="new-comment" on:submit=move |ev| {
            ev.prevent_default();
            let text = draft.get_untracked();
            draft.set(String::new());
            let (installation, key) = (editing.installation.get_value(), editing.key.get_value());
            editing.run(add_comment(installation, key, text), "Comment added.");
        }>
            <textarea id="new-comment" aria-label="New comment" rows="3" placeholder="Write a comment…"
                prop:value=draft on:input=move |ev| draft.set(event_target_value(&ev)) required></textarea>
            <div class="actions">
                <button class="button" type="submit">"Comment"</button>
                <span class="muted">{hint}</span>
            </div>
        </form>
    }
}

#[component]
fn History(events: Vec<TicketEventView>) -> impl IntoView {
    if events.is_empty() {
        return view! { <p class="muted">"No changes recorded yet."</p> }.into_any();
    }
    view! {
        <ul class="history" data-testid="history">
            {events.into_iter().rev().map(|e| {
                let who = match &e.actor {
                    Some(actor) => format!("{actor} · {}", e.source.label()),
                    None => e.source.label().to_owned(),
                };
                let line = format!("{} — {} ({who})", format_utc_minutes(e.at_ms), e.summary);
                view! { <li class=format!("history-{}", e.source.as_str())>{line}</li> }
            }).collect_view()}
        </ul>
    }
    .into_any()
}
