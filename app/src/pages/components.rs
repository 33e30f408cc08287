//! The Components page: issuebridge's UI components drawn from the schema
//! Sentry is given (`components::definition`), as Sentry draws them: the
//! issue-link modal (create and link), the alert-rule action's settings,
//! and a stacktrace link to try. Selects ask the very endpoints Sentry asks
//! (signed as Sentry signs), so what works here works in Sentry.

use std::collections::BTreeMap;

use issuebridge::components::definition::{field as field_name, schema, uri};
use issuebridge::components::requests::ConsoleInstallation;
use issuebridge::domain::ticket::SentryIssueChoice;
use issuebridge::domain::time::format_utc_minutes;
use leptos::prelude::*;
use serde_json::Value;

use super::{LoadError, Page};
use crate::api::{
    component_options, load_component_installations, load_component_requests, load_sentry_issues, SubmitAlertSettings,
    SubmitIssueLink,
};

/// One form's values, by field name, as Sentry's modal keeps them.
type Values = RwSignal<BTreeMap<String, String>>;

fn text_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// The element of the schema of `kind`.
fn element(kind: &str) -> Value {
    schema()["elements"].as_array().into_iter().flatten().find(|e| e["type"] == kind).cloned().unwrap_or_default()
}

/// A form's fields: required first, then optional, each marked.
fn fields_of(form: &Value) -> Vec<(Value, bool)> {
    let list = |key: &str, required: bool| {
        form[key].as_array().cloned().unwrap_or_default().into_iter().map(move |f| (f, required))
    };
    list("required_fields", true).chain(list("optional_fields", false)).collect()
}

#[component]
pub fn ComponentsPage() -> impl IntoView {
    let installations = Resource::new(|| (), |_| load_component_installations());
    view! {
        <Page title="Components">
            <p class="muted">
                "What Sentry shows from issuebridge: the Link Issue modal in an issue's sidebar, the settings of the “Open an issuebridge ticket” alert action, and stacktrace links. Drawn from the schema issuebridge gives Sentry (" <a href="/sentry/schema.json">"schema.json"</a> "); every select and submit goes to the endpoint Sentry calls, signed as Sentry signs."
            </p>
            {move || Suspend::new(async move {
                match installations.await {
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">"None of your organizations has an installation: install issuebridge first."</p>
                    }.into_any(),
                    Ok(list) => view! { <Workbench installations=list/> }.into_any(),
                    Err(error) => view! { <LoadError error/> }.into_any(),
                }
            })}
        </Page>
    }
}

#[component]
fn Workbench(installations: Vec<ConsoleInstallation>) -> impl IntoView {
    let installation = RwSignal::new(installations[0].uuid.clone());
    let issues = Resource::new(move || installation.get(), load_sentry_issues);
    let issue = RwSignal::new(None::<SentryIssueChoice>);
    let link_action = ServerAction::<SubmitIssueLink>::new();
    let alert_action = ServerAction::<SubmitAlertSettings>::new();
    // In the browser only: the log changes with every request, the page's
    // own selects among them, so what the server rendered would be stale
    // by the time the page hydrates.
    let requests = LocalResource::new(move || {
        (link_action.version().get(), alert_action.version().get());
        load_component_requests()
    });
    view! {
        <div class="field">
            <label for="component-installation">"Organization"</label>
            <select id="component-installation" on:change=move |ev| { issue.set(None); installation.set(event_target_value(&ev)); }>
                {installations.iter().map(|i| view! { <option value=i.uuid.clone()>{i.org_slug.clone()}</option> }).collect_view()}
            </select>
        </div>
        <div class="field">
            <label for="component-issue">"Sentry issue"</label>
            <Transition fallback=|| view! { <select id="component-issue" disabled=true></select> }>
                {move || Suspend::new(async move {
                    let list = issues.await.unwrap_or_default();
                    let empty = list.is_empty();
                    let choices = StoredValue::new(list.clone());
                    view! {
                        <select id="component-issue" disabled=empty on:change=move |ev| {
                            let id = event_target_value(&ev);
                            issue.set(choices.with_value(|all| all.iter().find(|i| i.issue_id == id).cloned()));
                        }>
                            <option value="">{if empty { "No Sentry issues yet" } else { "Choose an issue…" }}</option>
                            {list.into_iter().map(|i| {
                                let label = format!(
                                    "{} · {}{}",
                                    i.short_id.clone().unwrap_or_else(|| i.issue_id.clone()),
                                    i.title.clone().unwrap_or_default(),
                                    i.ticket.as_ref().map(|t| format!(" (linked to {t})")).unwrap_or_default()
                                );
                                view! { <option value=i.issue_id.clone()>{label}</option> }
                            }).collect_view()}
                        </select>
                    }
                })}
            </Transition>
        </div>
        <div class="components">
            <IssueLinkModal installation issue action=link_action/>
            <AlertRuleSettings installation action=alert_action/>
            <StacktraceTry installation/>
        </div>
        <h2>"Request log"</h2>
        <p class="muted">"The last requests to the components, from Sentry or from this page, as Sentry's request log shows an app's."</p>
        {move || {
                match requests.get() {
                    None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                    Some(Ok(list)) if list.is_empty() => view! { <p class="muted">"No requests yet."</p> }.into_any(),
                    Some(Ok(list)) => view! {
                        <table class="table" data-testid="component-requests">
                            <thead><tr><th>"When"</th><th>"Component"</th><th>"Status"</th><th>"Request"</th><th>"Answer"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|r| view! {
                                    <tr>
                                        <td>{format_utc_minutes(r.at_ms)}</td>
                                        <td><code>{r.component}</code></td>
                                        <td>{r.status}</td>
                                        <td>{r.request}</td>
                                        <td>{r.answer}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                    Some(Err(error)) => view! { <LoadError error/> }.into_any(),
                }
        }}
    }
}

/// The Link Issue modal: a Create and a Link tab, each a form of the schema.
#[component]
fn IssueLinkModal(
    installation: RwSignal<String>,
    issue: RwSignal<Option<SentryIssueChoice>>,
    action: ServerAction<SubmitIssueLink>,
) -> impl IntoView {
    let link_element = element("issue-link");
    let (linking, set_linking) = signal(false);
    let create_values: Values = RwSignal::new(BTreeMap::new());
    let link_values: Values = RwSignal::new(BTreeMap::new());
    let project = Signal::derive(move || issue.get().and_then(|i| i.project_slug));
    // Sentry fills `issue.title` / `issue.description` defaults from the issue.
    Effect::new(move |_| {
        if let Some(chosen) = issue.get() {
            create_values.update(|v| {
                v.insert(field_name::TITLE.into(), chosen.title.clone().unwrap_or_default());
                v.insert(
                    field_name::DESCRIPTION.into(),
                    chosen.web_url.clone().map(|url| format!("Sentry issue: {url}")).unwrap_or_default(),
                );
            });
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(chosen) = issue.get_untracked() else { return };
        let link = linking.get_untracked();
        let fields = if link { link_values.get_untracked() } else { create_values.get_untracked() };
        action.dispatch(SubmitIssueLink {
            installation: installation.get_untracked(),
            link,
            issue_id: chosen.issue_id,
            fields,
        });
    };
    let create_fields = fields_of(&link_element["create"]);
    let link_fields = fields_of(&link_element["link"]);
    view! {
        <section class="modal" aria-label="Link Issue">
            <h2>"Link Issue"</h2>
            <div class="tabs" role="tablist">
                <button type="button" role="tab" aria-selected=move || (!linking.get()).to_string() on:click=move |_| set_linking.set(false)>"Create"</button>
                <button type="button" role="tab" aria-selected=move || linking.get().to_string() on:click=move |_| set_linking.set(true)>"Link"</button>
            </div>
            // One form per tab: a hidden tab's required fields must not
            // hold up the other's submit.
            <form on:submit=submit hidden=move || linking.get() aria-label="Create a ticket">
                {create_fields.into_iter().map(|(f, required)| view! { <SchemaField form="create" field=f required values=create_values installation project/> }).collect_view()}
                <SubmitRow label="Create ticket" issue action/>
            </form>
            <form on:submit=submit hidden=move || !linking.get() aria-label="Link a ticket">
                {link_fields.into_iter().map(|(f, required)| view! { <SchemaField form="link" field=f required values=link_values installation project/> }).collect_view()}
                <SubmitRow label="Link ticket" issue action/>
            </form>
            <div role="status" data-testid="issue-link-outcome">
                {move || match action.value().get() {
                    Some(Ok(outcome)) => match (outcome.identifier, outcome.web_url) {
                        (Some(identifier), Some(web_url)) => {
                            let page = url_path(&web_url);
                            view! {
                                <p>"Sentry would show " <strong>{format!("{}#{}", identifier.split('-').next().unwrap_or_default(), identifier)}</strong> " linking to " <a href=page>{identifier.clone()}</a> "."</p>
                            }.into_any()
                        }
                        _ => view! {
                            <p class="error">{format!("Sentry would show: {} (HTTP {})", outcome.message.unwrap_or_default(), outcome.status)}</p>
                        }.into_any(),
                    },
                    Some(Err(error)) => view! { <p class="error">{error.to_string()}</p> }.into_any(),
                    None => ().into_any(),
                }}
            </div>
        </section>
    }
}

/// A form's submit button, usable once a Sentry issue is chosen.
#[component]
fn SubmitRow(
    label: &'static str,
    issue: RwSignal<Option<SentryIssueChoice>>,
    action: ServerAction<SubmitIssueLink>,
) -> impl IntoView {
    view! {
        <div class="actions">
            <button class="button" type="submit" disabled=move || issue.get().is_none() || action.pending().get()>{label}</button>
            {move || issue.get().is_none().then(|| view! { <span class="muted">"Choose a Sentry issue first."</span> })}
        </div>
    }
}

/// The path and query of this site's address (the `webUrl` Sentry keeps is
/// absolute; the console links within itself).
fn url_path(web_url: &str) -> String {
    match web_url.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned())) {
        Some(path) => path,
        None => web_url.to_owned(),
    }
}

/// The alert-rule action's settings form, saved as Sentry saves a rule.
#[component]
fn AlertRuleSettings(installation: RwSignal<String>, action: ServerAction<SubmitAlertSettings>) -> impl IntoView {
    let alert = element("alert-rule-action");
    let settings = alert["settings"].clone();
    let values: Values = RwSignal::new(BTreeMap::new());
    let no_project = Signal::derive(|| None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let fields = values.get_untracked().into_iter().filter(|(_, v)| !v.is_empty()).collect();
        action.dispatch(SubmitAlertSettings { installation: installation.get_untracked(), fields });
    };
    view! {
        <section class="modal" aria-label="Alert rule action">
            <h2>{text_of(&alert, "title")}</h2>
            <p class="muted">{text_of(&settings, "description")}</p>
            <form on:submit=submit>
                {fields_of(&settings).into_iter().map(|(f, required)| view! { <SchemaField form="alert" field=f required values installation project=no_project/> }).collect_view()}
                <div class="actions"><button class="button" type="submit" disabled=move || action.pending().get()>"Save rule"</button></div>
            </form>
            <div role="status" data-testid="alert-outcome">
                {move || match action.value().get() {
                    Some(Ok(outcome)) => {
                        let class = if outcome.saved { "ok" } else { "error" };
                        let verdict = if outcome.saved { "Sentry saves the rule" } else { "Sentry refuses to save the rule" };
                        view! { <p class=class>{verdict} ": " {outcome.message}</p> }.into_any()
                    }
                    Some(Err(error)) => view! { <p class="error">{error.to_string()}</p> }.into_any(),
                    None => ().into_any(),
                }}
            </div>
        </section>
    }
}

/// A frame to open as Sentry's stacktrace link would.
#[component]
fn StacktraceTry(installation: RwSignal<String>) -> impl IntoView {
    let project = RwSignal::new(String::new());
    let filename = RwSignal::new(String::new());
    let line = RwSignal::new(String::new());
    let href = move || {
        let encode =
            |v: String| percent_encoding::utf8_percent_encode(&v, percent_encoding::NON_ALPHANUMERIC).to_string();
        format!(
            "{}?installationId={}&projectSlug={}&lineNo={}&filename={}",
            uri::STACKTRACE_LINK,
            encode(installation.get()),
            encode(project.get()),
            encode(line.get()),
            encode(filename.get())
        )
    };
    let input = move |label: &'static str, id: &'static str, value: RwSignal<String>, placeholder: &'static str| {
        view! {
            <div class="field">
                <label for=id>{label}</label>
                <input id=id placeholder=placeholder prop:value=value on:input=move |ev| value.set(event_target_value(&ev))/>
            </div>
        }
    };
    view! {
        <section class="modal" aria-label="Stacktrace link">
            <h2>"Stacktrace link"</h2>
            <p class="muted">"Sentry links each frame to issuebridge, which opens the file by the " <a href="/code-mappings">"code mappings"</a> "."</p>
            {input("Project", "frame-project", project, "backend")}
            {input("File", "frame-file", filename, "src/app/views.py")}
            {input("Line", "frame-line", line, "42")}
            <a class="button" href=href target="_blank" rel="noopener">"Open the frame"</a>
        </section>
    }
}

/// One field of a schema form: a text input, a text area, or a select
/// (from fixed `options`, or from its `uri`, searched when `async`,
/// reloaded when a field it `depends_on` changes).
#[component]
fn SchemaField(
    form: &'static str,
    field: Value,
    required: bool,
    values: Values,
    installation: RwSignal<String>,
    #[prop(into)] project: Signal<Option<String>>,
) -> impl IntoView {
    let name = text_of(&field, "name");
    let label = text_of(&field, "label");
    let id = format!("{form}-{name}");
    let value = {
        let name = name.clone();
        // `try_with`: a server render its client left is walked again after
        // the page's values are gone (see the board's `visible`).
        move || values.try_with(|v| v.get(&name).cloned().unwrap_or_default()).unwrap_or_default()
    };
    let set = {
        let name = name.clone();
        move |new: String| {
            values.update(|v| {
                v.insert(name.clone(), new);
            })
        }
    };
    // One text node: an empty second one would not survive the trip
    // through HTML, and hydration would miss it.
    let label = if required { format!("{label} *") } else { label };
    let input = match field["type"].as_str().unwrap_or_default() {
        "textarea" => {
            let set = set.clone();
            view! { <textarea id=id.clone() rows="3" required=required prop:value=value on:input=move |ev| set(event_target_value(&ev))></textarea> }.into_any()
        }
        "select" if field.get("options").is_some() => {
            let options: Vec<(String, String)> = field["options"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|pair| (value_text(&pair[0]), value_text(&pair[1])))
                .collect();
            let set = set.clone();
            let current = value.clone();
            view! {
                <select id=id.clone() required=required on:change=move |ev| set(event_target_value(&ev))>
                    <option value="">"—"</option>
                    {options.into_iter().map(|(v, l)| {
                        let current = current.clone();
                        let selected_value = v.clone();
                        view! { <option value=v selected=move || current() == selected_value>{l}</option> }
                    }).collect_view()}
                </select>
            }
            .into_any()
        }
        "select" => {
            view! { <RemoteSelect id=id.clone() field=field.clone() required values installation project/> }.into_any()
        }
        _ => {
            let set = set.clone();
            view! { <input id=id.clone() required=required prop:value=value on:input=move |ev| set(event_target_value(&ev))/> }.into_any()
        }
    };
    view! {
        <div class="field">
            <label for=id>{label}</label>
            {input}
        </div>
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A select whose options come from its `uri`, as Sentry loads them.
#[component]
fn RemoteSelect(
    id: String,
    field: Value,
    required: bool,
    values: Values,
    installation: RwSignal<String>,
    project: Signal<Option<String>>,
) -> impl IntoView {
    let name = text_of(&field, "name");
    let label = text_of(&field, "label");
    let uri_path = text_of(&field, "uri");
    let searchable = field["async"].as_bool().unwrap_or(false);
    let depends_on: Vec<String> =
        field["depends_on"].as_array().into_iter().flatten().filter_map(|d| d.as_str().map(str::to_owned)).collect();
    let typed = RwSignal::new(String::new());
    // `dependentData` as Sentry sends it: the JSON of the fields depended
    // on, or nothing to ask until each has a value.
    let dependent = {
        let depends_on = depends_on.clone();
        Memo::new(move |_| {
            if depends_on.is_empty() {
                return Some(None);
            }
            values
                .try_with(|v| {
                    let chosen: BTreeMap<&str, &str> = depends_on
                        .iter()
                        .filter_map(|d| v.get(d).filter(|x| !x.is_empty()).map(|x| (d.as_str(), x.as_str())))
                        .collect();
                    (chosen.len() == depends_on.len()).then(|| Some(serde_json::to_string(&chosen).unwrap_or_default()))
                })
                .flatten()
        })
    };
    // A parent's change empties its dependents, as in Sentry's modal.
    {
        let name = name.clone();
        Effect::new(move |previous: Option<Option<Option<String>>>| {
            let now = dependent.get();
            if previous.is_some_and(|p| p != now) {
                values.update(|v| {
                    v.remove(&name);
                });
            }
            now
        });
    }
    // Loaded in the browser, as Sentry's modal loads them: the server
    // renders the select empty, and the page hydrates before it fills.
    let options = LocalResource::new(move || {
        let (installation, project, typed, dependent) =
            (installation.get(), project.get(), typed.get(), dependent.get());
        let uri_path = uri_path.clone();
        async move {
            match dependent {
                None => Ok(Vec::new()),
                Some(dependent_data) => {
                    component_options(installation, uri_path, project, Some(typed), dependent_data).await
                }
            }
        }
    });
    let loaded = move || options.get().and_then(Result::ok).unwrap_or_default();
    // Sentry's `default`: chosen while nothing is (in the browser, once the
    // options are in).
    {
        let name = name.clone();
        Effect::new(move |_| {
            let Some(default) = loaded().into_iter().find(|o| o.default) else { return };
            if values.with_untracked(|v| v.get(&name).is_none_or(String::is_empty)) {
                values.update(|v| {
                    v.insert(name.clone(), default.value);
                });
            }
        });
    }
    let waiting_for = (!depends_on.is_empty()).then(|| format!("Choose {} first", depends_on.join(", ")));
    let first = move || match (&waiting_for, dependent.get().is_none(), options.get()) {
        (Some(wait), true, _) => wait.clone(),
        (_, _, None) => "Loading…".to_owned(),
        (_, _, Some(Ok(list))) if list.is_empty() => "No options".to_owned(),
        _ => "—".to_owned(),
    };
    let failed = move || match options.get() {
        Some(Err(error)) => Some(view! { <LoadError error/> }),
        _ => None,
    };
    let value_name = name.clone();
    let current = move || values.try_with(|v| v.get(&value_name).cloned().unwrap_or_default()).unwrap_or_default();
    let set_name = name.clone();
    let set = move |new: String| {
        values.update(|v| {
            v.insert(set_name.clone(), new);
        })
    };
    view! {
        {searchable.then(|| view! {
            <input type="search" class="select-search" placeholder="Type to search…" aria-label=format!("Search {label}")
                prop:value=typed on:input=move |ev| typed.set(event_target_value(&ev))/>
        })}
        <select
            id=id
            required=required
            prop:disabled=move || dependent.get().is_none()
            data-options=move || loaded().len()
            on:change=move |ev| set(event_target_value(&ev))
        >
            <option value="">{first}</option>
            {move || {
                let current = current.clone();
                loaded()
                    .into_iter()
                    .map(|o| {
                        let current = current.clone();
                        let mine = o.value.clone();
                        view! { <option value=o.value selected=move || current() == mine>{o.label}</option> }
                    })
                    .collect_view()
            }}
        </select>
        {failed}
    }
}
