use issuebridge::domain::audit::{AuditAction, AuditFilter};
use issuebridge::domain::time::format_utc_minutes;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::{LoadError, Page};
use crate::api::list_activity;

/// `/activity`: the audit log. Filters and the page live in the URL, as on
/// the delivery log, so a view can be linked and works before hydration.
#[component]
pub fn ActivityPage() -> impl IntoView {
    let query = use_query_map();
    let activity = Resource::new(
        move || {
            let q = query.get();
            (AuditFilter::from_params(|name| q.get(name)), q.get("before").and_then(|b| b.parse::<i64>().ok()))
        },
        |(filter, before)| list_activity(filter, before),
    );
    view! {
        <Page title="Activity">
            {move || Suspend::new(async move {
                let params = query.get_untracked();
                let filter = AuditFilter::from_params(|name| params.get(name));
                let form = filter_form(&filter);
                match activity.await {
                    Ok(page) if page.events.is_empty() => view! {
                        {form}
                        <p class="empty" data-testid="activity-count">"Nothing recorded here."</p>
                    }.into_any(),
                    Ok(page) => {
                        let older = page.older.map(|before| {
                            let mut pairs = url_pairs(&filter);
                            pairs.push(("before".to_owned(), before.to_string()));
                            view! { <p><a href=format!("/activity?{}", encode_pairs(&pairs))>"Older activity →"</a></p> }
                        });
                        view! {
                            {form}
                            <table class="table activity">
                                <thead><tr><th>"When (UTC)"</th><th>"Who"</th><th>"What"</th><th>"Organization"</th><th>"Details"</th></tr></thead>
                                <tbody>
                                    {page.events.into_iter().map(|event| view! {
                                        <tr data-action=event.action.as_str()>
                                            <td>{format_utc_minutes(event.at_ms)}</td>
                                            <td>{event.actor}</td>
                                            <td>{event.action.label()}</td>
                                            <td>{event.org_slug.unwrap_or_default()}</td>
                                            <td class="note">{event.detail}</td>
                                        </tr>
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

fn url_pairs(filter: &AuditFilter) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    if let Some(action) = filter.action {
        pairs.push(("action".to_owned(), action.as_str().to_owned()));
    }
    if let Some(actor) = &filter.actor {
        pairs.push(("actor".to_owned(), actor.clone()));
    }
    if let Some(org) = &filter.org {
        pairs.push(("org".to_owned(), org.clone()));
    }
    pairs
}

fn encode_pairs(pairs: &[(String, String)]) -> String {
    let encode = |value: &str| -> String {
        value
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
                other => format!("%{other:02X}"),
            })
            .collect()
    };
    pairs.iter().map(|(name, value)| format!("{name}={}", encode(value))).collect::<Vec<_>>().join("&")
}

/// The filter form: a plain GET form.
fn filter_form(filter: &AuditFilter) -> impl IntoView {
    let selected = filter.action.map(AuditAction::as_str).unwrap_or_default();
    let options = std::iter::once(("", "all"))
        .chain(AuditAction::ALL.iter().map(|a| (a.as_str(), a.label())))
        .map(|(value, label)| view! { <option value=value selected=value == selected>{label}</option> })
        .collect_view();
    view! {
        <form method="get" action="/activity" class="filters">
            <label>"What "<select name="action">{options}</select></label>
            <label>"Who "<input name="actor" size="18" placeholder="any email" value=filter.actor.clone().unwrap_or_default()/></label>
            <label>"Organization "<input name="org" size="12" placeholder="any" value=filter.org.clone().unwrap_or_default()/></label>
            <button class="button" type="submit">"Filter"</button>
            <a href="/activity">"Clear"</a>
        </form>
    }
}
