use issuebridge::components::stacktrace::{MappingForm, Provider};
use issuebridge::domain::team::TeamChange;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::{outcome_text, LoadError, Page};
use crate::api::{
    load_code_mappings, load_teams, ChangeTeam, DeleteCodeMapping, InstallationMappings, InstallationTeams,
    SaveCodeMapping,
};

/// Teams of each installation: their keys (tickets are numbered `KEY-N`),
/// names and members (whom Sentry's forms offer as assignees).
#[component]
pub fn TeamsPage() -> impl IntoView {
    let change = ServerAction::<ChangeTeam>::new();
    let teams = Resource::new(move || change.version().get(), |_| load_teams());
    view! {
        <Page title="Teams">
            <p class="muted">
                "Tickets belong to a team and are numbered by it (ENG-12). Sentry's issue sidebar and alert rules offer these teams, and each team's members as assignees. Changing them needs organization rights (org:write) in Sentry."
            </p>
            <p class="muted" role="status" data-testid="team-change">
                {move || outcome_text(change.value().get(), |done| format!("Done: {done}."))}
            </p>
            {move || Suspend::new(async move {
                match teams.await {
                    Ok(list) if list.is_empty() => view! { <p class="empty">"None of your organizations has an installation."</p> }.into_any(),
                    Ok(list) => list.into_iter().map(|teams| view! { <InstallationTeamsView teams change/> }).collect_view().into_any(),
                    Err(error) => view! { <LoadError error/> }.into_any(),
                }
            })}
        </Page>
    }
}

#[component]
fn InstallationTeamsView(teams: InstallationTeams, change: ServerAction<ChangeTeam>) -> impl IntoView {
    let InstallationTeams { installation, teams } = teams;
    let can_manage = installation.can_manage;
    let uuid = StoredValue::new(installation.uuid.clone());
    let send = move |change_to: TeamChange| {
        change.dispatch(ChangeTeam { installation: uuid.get_value(), change: change_to });
    };
    let (new_key, set_new_key) = signal(String::new());
    let (new_name, set_new_name) = signal(String::new());
    view! {
        <section class="settings-form" aria-label=format!("Teams of {}", installation.org_slug)>
            <h2>{installation.org_slug.clone()}</h2>
            <table class="table">
                <thead><tr><th>"Key"</th><th>"Name"</th><th>"Members"</th></tr></thead>
                <tbody>
                    {teams.into_iter().map(|team| {
                        let key = StoredValue::new(team.key.to_string());
                        let (email, set_email) = signal(String::new());
                        let members = team.members.clone();
                        view! {
                            <tr data-team=team.key.to_string()>
                                <td><code>{team.key.to_string()}</code>{team.is_default.then(|| view! { " " <span class="muted">"(default)"</span> })}</td>
                                <td>{team.name.clone()}</td>
                                <td>
                                    <ul class="members">
                                        {members.into_iter().map(|member| {
                                            let who = member.clone();
                                            view! {
                                                <li>
                                                    {member.clone()}
                                                    {can_manage.then(|| view! {
                                                        " "
                                                        <button class="link-button" type="button" aria-label=format!("Remove {who}")
                                                            on:click=move |_| send(TeamChange::RemoveMember { key: key.get_value(), email: who.clone() })>
                                                            "remove"
                                                        </button>
                                                    })}
                                                </li>
                                            }
                                        }).collect_view()}
                                    </ul>
                                    {can_manage.then(|| view! {
                                        <form class="inline" on:submit=move |ev| {
                                            ev.prevent_default();
                                            send(TeamChange::AddMember { key: key.get_value(), email: email.get_untracked() });
                                            set_email.set(String::new());
                                        }>
                                            <input type="email" placeholder="email" aria-label=format!("New member of {}", key.get_value())
                                                prop:value=email on:input=move |ev| set_email.set(event_target_value(&ev))/>
                                            <button class="button" type="submit">"Add member"</button>
                                        </form>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            {can_manage.then(|| view! {
                <form class="inline" aria-label="New team" on:submit=move |ev| {
                    ev.prevent_default();
                    send(TeamChange::Add { key: new_key.get_untracked(), name: new_name.get_untracked() });
                }>
                    <input placeholder="KEY" size="8" aria-label="New team's key" prop:value=new_key
                        on:input=move |ev| set_new_key.set(event_target_value(&ev))/>
                    <input placeholder="Name" aria-label="New team's name" prop:value=new_name
                        on:input=move |ev| set_new_name.set(event_target_value(&ev))/>
                    <button class="button" type="submit">"Add team"</button>
                </form>
            })}
        </section>
    }
}

/// Code mappings: how a stack frame's file becomes a link to the code.
/// A stacktrace link without a mapping offers to add one here, with the
/// form filled in from the frame.
#[component]
pub fn CodeMappingsPage() -> impl IntoView {
    let save = ServerAction::<SaveCodeMapping>::new();
    let delete = ServerAction::<DeleteCodeMapping>::new();
    let mappings = Resource::new(move || (save.version().get(), delete.version().get()), |_| load_code_mappings());
    view! {
        <Page title="Code mappings">
            <p class="muted">
                "Sentry links each stack frame to issuebridge; issuebridge sends the browser to the file in its repository, by the mapping with the longest stack root that holds the frame's path. Prefixes such as ./, webpack:///, app:/// and a URL's host are dropped first."
            </p>
            <p class="muted" role="status" data-testid="mapping-change">
                // One text node: two, both empty, would not hydrate.
                {move || {
                    let saved = outcome_text(save.value().get(), |done| format!("Saved: {done}."));
                    let deleted = outcome_text(delete.value().get(), |()| "Deleted.".to_owned());
                    [saved, deleted].into_iter().filter(|t| !t.is_empty()).collect::<Vec<_>>().join(" ")
                }}
            </p>
            {move || Suspend::new(async move {
                match mappings.await {
                    Ok(list) if list.is_empty() => view! { <p class="empty">"None of your organizations has an installation."</p> }.into_any(),
                    Ok(list) => list.into_iter().map(|m| view! { <InstallationMappingsView mappings=m save delete/> }).collect_view().into_any(),
                    Err(error) => view! { <LoadError error/> }.into_any(),
                }
            })}
        </Page>
    }
}

#[component]
fn InstallationMappingsView(
    mappings: InstallationMappings,
    save: ServerAction<SaveCodeMapping>,
    delete: ServerAction<DeleteCodeMapping>,
) -> impl IntoView {
    let InstallationMappings { installation, mappings } = mappings;
    let can_manage = installation.can_manage;
    let uuid = StoredValue::new(installation.uuid.clone());
    // A stacktrace link without a mapping sends people here with the frame.
    let query = use_query_map();
    let prefill = move |name: &str| {
        let q = query.get_untracked();
        if q.get("installation").as_deref() == Some(uuid.get_value().as_str()) {
            q.get(name).unwrap_or_default()
        } else {
            String::new()
        }
    };
    let project = RwSignal::new(prefill("project"));
    let stack_root = RwSignal::new(prefill("stack_root"));
    let source_root = RwSignal::new(String::new());
    let provider = RwSignal::new(Provider::Github.as_str().to_owned());
    let repo = RwSignal::new(String::new());
    let branch = RwSignal::new("main".to_owned());
    let field = move |label: &'static str, value: RwSignal<String>, placeholder: &'static str| {
        view! {
            <label class="field">
                <span>{label}</span>
                <input placeholder=placeholder prop:value=value on:input=move |ev| value.set(event_target_value(&ev))/>
            </label>
        }
    };
    view! {
        <section class="settings-form" aria-label=format!("Code mappings of {}", installation.org_slug)>
            <h2>{installation.org_slug.clone()}</h2>
            {if mappings.is_empty() {
                view! { <p class="muted">"No code mappings yet."</p> }.into_any()
            } else {
                view! {
                    <table class="table">
                        <thead><tr><th>"Project"</th><th>"Stack root"</th><th>"Source root"</th><th>"Repository"</th><th>"Branch"</th><th></th></tr></thead>
                        <tbody>
                            {mappings.into_iter().map(|m| {
                                let id = m.id;
                                view! {
                                    <tr>
                                        <td>{m.project_slug.clone()}</td>
                                        <td><code>{format!("{}/", m.stack_root)}</code></td>
                                        <td><code>{format!("{}/", m.source_root)}</code></td>
                                        <td>{format!("{} · {}", m.provider.label(), m.repo_url)}</td>
                                        <td>{m.branch.clone()}</td>
                                        <td>{can_manage.then(|| view! {
                                            <button class="link-button" type="button"
                                                on:click=move |_| { delete.dispatch(DeleteCodeMapping { installation: uuid.get_value(), id }); }>
                                                "delete"
                                            </button>
                                        })}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
            {can_manage.then(|| view! {
                <form class="mapping-form" aria-label="New code mapping" on:submit=move |ev| {
                    ev.prevent_default();
                    save.dispatch(SaveCodeMapping {
                        installation: uuid.get_value(),
                        form: MappingForm {
                            project_slug: project.get_untracked(),
                            stack_root: stack_root.get_untracked(),
                            source_root: source_root.get_untracked(),
                            provider: provider.get_untracked(),
                            repo_url: repo.get_untracked(),
                            branch: branch.get_untracked(),
                        },
                    });
                }>
                    {field("Project", project, "backend")}
                    {field("Stack root", stack_root, "src/")}
                    {field("Source root", source_root, "services/api/src/")}
                    <label class="field">
                        <span>"Provider"</span>
                        <select on:change=move |ev| provider.set(event_target_value(&ev))>
                            {Provider::ALL.into_iter().map(|p| view! {
                                <option value=p.as_str() selected=move || provider.get() == p.as_str()>{p.label()}</option>
                            }).collect_view()}
                        </select>
                    </label>
                    {field("Repository (or URL template)", repo, "https://github.com/acme/backend")}
                    {field("Branch", branch, "main")}
                    <button class="button" type="submit">"Save mapping"</button>
                </form>
            })}
        </section>
    }
}
