use issuebridge::domain::settings::{FieldError, InstallationSettingsView, SaveOutcome, SettingsForm};
use issuebridge::domain::ticket::TicketStatus;
use leptos::prelude::*;

use super::{LoadError, Page};
use crate::api::{load_console_info, load_installation_settings, SaveInstallationSettings};

#[component]
pub fn SettingsPage() -> impl IntoView {
    let info = Resource::new(|| (), |_| load_console_info());
    let installations = Resource::new(|| (), |_| load_installation_settings());
    view! {
        <Page title="Settings">
            <h2>"Installations"</h2>
            <p class="muted">
                "What each installation does with Sentry's webhooks. Changing them needs organization rights (org:write) in Sentry; every change is recorded in Activity."
            </p>
            {move || Suspend::new(async move {
                match installations.await {
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">"None of your organizations has an installation."</p>
                    }.into_any(),
                    Ok(list) => list.into_iter().map(|view| view! { <InstallationSettingsForm view/> }).collect_view().into_any(),
                    Err(error) => view! { <LoadError error/> }.into_any(),
                }
            })}
            <h2>"This server"</h2>
            {move || Suspend::new(async move {
                match info.await {
                    Ok(info) => {
                        let set_or_not = |set: bool| if set { "set" } else { "not set" };
                        let rows = [
                            ("Mode", if info.demo_mode { "demo (no Sentry credentials configured)".to_owned() } else { "connected to Sentry".to_owned() }),
                            ("Version", info.version),
                            ("Database", info.database),
                            ("Public URL", info.public_url),
                            ("Sentry URL", info.sentry_url),
                            ("Sentry App client id", info.app_client_id.unwrap_or_else(|| "not set".to_owned())),
                            ("Previous client secret", set_or_not(info.previous_secret_set).to_owned()),
                            ("Console login", if info.demo_mode {
                                "through the simulated Sentry (demo mode)".to_owned()
                            } else if info.login_configured {
                                "with Sentry (OAuth application configured)".to_owned()
                            } else {
                                "login links for administrators only (no OAuth application)".to_owned()
                            }),
                        ];
                        view! {
                            <p class="muted">"Read from the environment at start-up; secrets are never shown."</p>
                            <dl class="settings">
                                {rows.into_iter().map(|(name, value)| view! { <dt>{name}</dt><dd>{value}</dd> }).collect_view()}
                            </dl>
                        }.into_any()
                    }
                    Err(error) => view! { <LoadError error/> }.into_any(),
                }
            })}
        </Page>
    }
}

/// The messages for one field, from a save that was refused.
fn field_errors(errors: &[FieldError], field: &str) -> Vec<String> {
    errors.iter().filter(|e| e.field == field).map(|e| e.message.clone()).collect()
}

/// One installation's settings: editable by those who may manage it, read
/// only for the others. Problems show next to their field.
#[component]
fn InstallationSettingsForm(view: InstallationSettingsView) -> impl IntoView {
    let InstallationSettingsView { uuid, org_slug, can_manage, form } = view;
    let save = ServerAction::<SaveInstallationSettings>::new();
    let new_issues = RwSignal::new(form.new_issues);
    let resolved = RwSignal::new(form.resolved.clone());
    let ignored = RwSignal::new(form.ignored.clone());
    let unresolved = RwSignal::new(form.unresolved.clone());
    let user_mapping = RwSignal::new(form.user_mapping.clone());
    let errors = move || match save.value().get() {
        Some(Ok(SaveOutcome::Invalid(errors))) => errors,
        _ => Vec::new(),
    };
    let status = move || match save.value().get() {
        Some(Ok(SaveOutcome::Saved)) => "Saved.".to_owned(),
        Some(Ok(SaveOutcome::Invalid(_))) => "Not saved: fix the fields marked below.".to_owned(),
        Some(Err(error)) => match error {
            ServerFnError::ServerError(message) => message,
            other => other.to_string(),
        },
        None => String::new(),
    };
    let id = |field: &str| format!("{field}-{uuid}");
    let status_choice = move |field: &'static str, label: &'static str, value: RwSignal<String>| {
        let options = TicketStatus::ALL
            .into_iter()
            .map(|s| view! { <option value=s.as_str() selected=move || value.get() == s.as_str()>{s.label()}</option> })
            .collect_view();
        let (label_for, field_id) = (id(field), id(field));
        view! {
            <div class="field">
                <label for=label_for>{label}</label>
                <select id=field_id name=field disabled=!can_manage on:change=move |ev| value.set(event_target_value(&ev))>{options}</select>
                {move || field_errors(&errors(), field).into_iter().map(|m| view! { <p class="field-error" role="alert">{m}</p> }).collect_view()}
            </div>
        }
    };
    let uuid_for_save = uuid.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        save.dispatch(SaveInstallationSettings {
            installation: uuid_for_save.clone(),
            form: SettingsForm {
                new_issues: new_issues.get_untracked(),
                resolved: resolved.get_untracked(),
                ignored: ignored.get_untracked(),
                unresolved: unresolved.get_untracked(),
                user_mapping: user_mapping.get_untracked(),
            },
        });
    };
    let heading = format!("{org_slug}");
    let (new_issues_label, new_issues_id) = (id("new-issues"), id("new-issues"));
    let (mapping_label, mapping_id) = (id("user-mapping"), id("user-mapping"));
    view! {
        <form class="settings-form" data-installation=uuid.clone() on:submit=submit aria-label=format!("Settings of {org_slug}")>
            <h3>{heading} " " <code class="muted">{uuid.clone()}</code></h3>
            {(!can_manage).then(|| view! { <p class="muted">"You may look, not change: that needs org:write in this organization."</p> })}
            <div class="field">
                <label for=new_issues_label>
                    <input
                        type="checkbox"
                        id=new_issues_id
                        name="new_issues"
                        disabled=!can_manage
                        prop:checked=move || new_issues.get()
                        on:change=move |ev| new_issues.set(event_target_checked(&ev))
                    />
                    " Open a ticket for every new Sentry issue"
                </label>
            </div>
            <fieldset>
                <legend>"When Sentry marks an issue…"</legend>
                {status_choice("resolved", "resolved, its ticket moves to", resolved)}
                {status_choice("ignored", "ignored (archived), to", ignored)}
                {status_choice("unresolved", "unresolved, to", unresolved)}
            </fieldset>
            <div class="field">
                <label for=mapping_label>"User mapping: one " <code>"sentry email = board email"</code> " per line"</label>
                <textarea
                    id=mapping_id
                    name="user_mapping"
                    rows="3"
                    disabled=!can_manage
                    prop:value=move || user_mapping.get()
                    on:input=move |ev| user_mapping.set(event_target_value(&ev))
                ></textarea>
                {move || field_errors(&errors(), "user_mapping").into_iter().map(|m| view! { <p class="field-error" role="alert">{m}</p> }).collect_view()}
            </div>
            {can_manage.then(|| view! {
                <div class="actions">
                    <button class="button" type="submit" disabled=move || save.pending().get()>"Save"</button>
                    <span class="muted" role="status">{status}</span>
                </div>
            })}
        </form>
    }
}
