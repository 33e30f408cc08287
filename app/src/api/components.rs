//! The Components page, the ticket page, teams and code mappings.
//!
//! Trying a component goes through the very endpoint Sentry calls: the
//! request is built as Sentry builds it (docs/sentry-protocol.md §3), signed
//! with the app's client secret by the server's dispatcher, and answered by
//! the same handler, so what works here works from Sentry.

use issuebridge::components::log::ComponentRequest;
use issuebridge::components::requests::{AlertSettingsOutcome, ConsoleInstallation, IssueLinkOutcome, SelectOption};
use issuebridge::components::stacktrace::{CodeMapping, MappingForm};
use issuebridge::domain::team::{Team, TeamChange};
use issuebridge::domain::ticket::{SentryIssueChoice, TicketDetail};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::ssr;

/// An installation's teams, for the Teams page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationTeams {
    pub installation: ConsoleInstallation,
    pub teams: Vec<Team>,
}

/// An installation's code mappings, for the Code mappings page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationMappings {
    pub installation: ConsoleInstallation,
    pub mappings: Vec<CodeMapping>,
}

#[cfg(feature = "ssr")]
mod inner {
    use issuebridge::components::dispatch::{ComponentAnswer, ComponentCall, ComponentDispatch};
    use issuebridge::components::requests::ConsoleInstallation;
    use issuebridge::domain::access::{OrgRef, Viewer};
    use issuebridge::domain::installation::InstallationStatus;
    use leptos::prelude::*;

    use super::ssr;

    /// The installations the person sees that are installed, with whether
    /// they may manage each.
    pub async fn installed(
        state: &issuebridge::AppState,
        viewer: &Viewer,
    ) -> Result<Vec<ConsoleInstallation>, ServerFnError> {
        let listed = state
            .store
            .list_installations(&viewer.read_scope())
            .await
            .map_err(|e| ssr::store_failed("load installations", e))?;
        Ok(listed
            .into_iter()
            .filter(|i| matches!(i.status, InstallationStatus::Installed | InstallationStatus::NeedsReauth))
            .map(|i| ConsoleInstallation {
                can_manage: viewer.can_manage(OrgRef::new(i.org_id, &i.org_slug)),
                uuid: i.uuid,
                org_slug: i.org_slug,
            })
            .collect())
    }

    /// Sends a call as Sentry would, through the server's dispatcher.
    pub async fn dispatch(call: ComponentCall) -> Result<ComponentAnswer, ServerFnError> {
        let dispatch = use_context::<ComponentDispatch>()
            .ok_or_else(|| ServerFnError::new("the components are not reachable from the console"))?;
        dispatch.send(call).await.map_err(|reason| {
            tracing::error!(%reason, "a component call from the console failed");
            ServerFnError::new(format!("Could not call the component: {reason}."))
        })
    }

    /// The `message` of a component's JSON answer.
    pub fn message(answer: &ComponentAnswer) -> Option<String> {
        serde_json::from_slice::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
    }

    /// A `uri` the schema names, or a refusal: the console calls nothing else.
    pub fn schema_uri(uri: &str) -> Result<(), ServerFnError> {
        use issuebridge::components::definition::uri as u;
        let known = [u::SELECT_TEAMS, u::SELECT_ASSIGNEES, u::SELECT_TICKETS, u::ISSUE_LINK_CREATE, u::ISSUE_LINK_LINK];
        if known.contains(&uri) {
            Ok(())
        } else {
            Err(ssr::refuse(http::StatusCode::BAD_REQUEST, format!("{uri} is not a component of the schema.")))
        }
    }
}

/// The installed installations the person sees.
#[server]
pub async fn load_component_installations() -> Result<Vec<ConsoleInstallation>, ServerFnError> {
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    inner::installed(&state, &viewer).await
}

/// The Sentry issues an installation heard of, to fill a form's defaults.
#[server]
pub async fn load_sentry_issues(installation: String) -> Result<Vec<SentryIssueChoice>, ServerFnError> {
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let (uuid, _) = ssr::visible_installation(&state, &viewer, &installation).await?;
    state.store.recent_sentry_issues(uuid.as_str(), 50).await.map_err(|e| ssr::store_failed("load Sentry issues", e))
}

/// A select's options, asked as Sentry asks: `GET uri?installationId=…
/// [&projectSlug=…][&query=…][&dependentData=…]`, signed over the empty body.
#[server(input = leptos::server_fn::codec::Json)]
pub async fn component_options(
    installation: String,
    uri: String,
    project: Option<String>,
    query: Option<String>,
    dependent_data: Option<String>,
) -> Result<Vec<SelectOption>, ServerFnError> {
    use issuebridge::components::dispatch::ComponentCall;
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let (uuid, _) = ssr::visible_installation(&state, &viewer, &installation).await?;
    inner::schema_uri(&uri)?;
    let mut pairs = vec![("installationId", uuid.to_string())];
    pairs.extend(project.filter(|p| !p.is_empty()).map(|p| ("projectSlug", p)));
    pairs.extend(query.filter(|q| !q.is_empty()).map(|q| ("query", q)));
    pairs.extend(dependent_data.map(|d| ("dependentData", d)));
    let query = pairs
        .iter()
        .map(|(name, value)| {
            format!("{name}={}", percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC))
        })
        .collect::<Vec<_>>()
        .join("&");
    let answer =
        inner::dispatch(ComponentCall { method: "GET", path_and_query: format!("{uri}?{query}"), body: Vec::new() })
            .await?;
    if answer.status != 200 {
        let message = inner::message(&answer).unwrap_or_else(|| format!("the select answered {}", answer.status));
        return Err(ssr::refuse(http::StatusCode::BAD_GATEWAY, message));
    }
    serde_json::from_slice(&answer.body).map_err(|e| ServerFnError::new(format!("the select's answer: {e}")))
}

/// Creates or links a ticket from a Sentry issue's form, as Sentry's
/// sidebar does: the body carries the form's fields, `issueId`,
/// `installationId`, `webUrl`, `project` and `actor` (ints where Sentry
/// sends ints).
#[server(input = leptos::server_fn::codec::Json)]
pub async fn submit_issue_link(
    installation: String,
    link: bool,
    issue_id: String,
    fields: std::collections::BTreeMap<String, String>,
) -> Result<IssueLinkOutcome, ServerFnError> {
    use issuebridge::components::definition::uri;
    use issuebridge::components::dispatch::ComponentCall;
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let (uuid, _) = ssr::visible_installation(&state, &viewer, &installation).await?;
    let found = state
        .store
        .sentry_issue_choice(uuid.as_str(), &issue_id)
        .await
        .map_err(|e| ssr::store_failed("load the issue", e))?;
    let Some(issue) = found else { return Err(ssr::not_found("Sentry issue")) };
    let issue_number: i64 = issue.issue_id.parse().map_err(|_| ssr::not_found("Sentry issue"))?;
    let body = serde_json::json!({
        "fields": fields,
        "issueId": issue_number,
        "installationId": uuid.as_str(),
        "webUrl": issue.web_url,
        "project": {"slug": issue.project_slug, "id": 0},
        "actor": {"type": "user", "id": viewer.user_id.parse::<i64>().unwrap_or(0), "name": viewer.name},
    });
    let path = if link { uri::ISSUE_LINK_LINK } else { uri::ISSUE_LINK_CREATE };
    let body = issuebridge::sentry::wire::to_sentry_json(&body);
    let answer = inner::dispatch(ComponentCall { method: "POST", path_and_query: path.to_owned(), body }).await?;
    let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    let text = |key: &str| json.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    Ok(IssueLinkOutcome {
        status: answer.status,
        identifier: text("identifier"),
        web_url: text("webUrl"),
        message: text("message"),
    })
}

/// Tries alert-rule settings as Sentry does while saving a rule.
#[server(input = leptos::server_fn::codec::Json)]
pub async fn submit_alert_settings(
    installation: String,
    fields: Vec<(String, String)>,
) -> Result<AlertSettingsOutcome, ServerFnError> {
    use issuebridge::components::definition::uri;
    use issuebridge::components::dispatch::ComponentCall;
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let (uuid, _) = ssr::visible_installation(&state, &viewer, &installation).await?;
    let fields: Vec<serde_json::Value> =
        fields.into_iter().map(|(name, value)| serde_json::json!({"name": name, "value": value})).collect();
    let body = serde_json::json!({"fields": fields, "installationId": uuid.as_str()});
    let body = issuebridge::sentry::wire::to_sentry_json(&body);
    let answer =
        inner::dispatch(ComponentCall { method: "POST", path_and_query: uri::ALERT_RULE_ACTION.to_owned(), body })
            .await?;
    let saved = (200..300).contains(&answer.status);
    // Sentry's words around the app's message (docs/sentry-protocol.md §3.5).
    let said =
        inner::message(&answer).unwrap_or_else(|| if saved { "Success!" } else { "Something went wrong!" }.into());
    Ok(AlertSettingsOutcome { status: answer.status, saved, message: format!("issuebridge: {said}") })
}

/// The last component requests of the person's installations.
#[server]
pub async fn load_component_requests() -> Result<Vec<ComponentRequest>, ServerFnError> {
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let visible: std::collections::HashSet<String> =
        inner::installed(&state, &viewer).await?.into_iter().map(|i| i.uuid).collect();
    Ok(state.component_log.recent(50, |uuid| visible.contains(uuid)))
}

/// A ticket by identifier, in the person's organizations (of one
/// installation, when the link names it). Several installations may use
/// the same identifier; each is returned.
#[server]
pub async fn load_ticket(identifier: String, installation: Option<String>) -> Result<Vec<TicketDetail>, ServerFnError> {
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let Ok(key) = identifier.parse() else { return Err(ssr::not_found("ticket")) };
    let tickets = state
        .store
        .ticket_details(&viewer.read_scope(), &key, installation.as_deref().filter(|i| !i.is_empty()))
        .await
        .map_err(|e| ssr::store_failed("load the ticket", e))?;
    if tickets.is_empty() {
        return Err(ssr::not_found("ticket"));
    }
    let mut tickets = tickets;
    for ticket in &mut tickets {
        for comment in &mut ticket.comments {
            comment.mine = comment.origin == "console" && comment.author.as_deref() == Some(viewer.email.as_str());
        }
    }
    Ok(tickets)
}

/// Every installed installation's teams, with whether the person may
/// change them.
#[server]
pub async fn load_teams() -> Result<Vec<InstallationTeams>, ServerFnError> {
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let mut all = Vec::new();
    for installation in inner::installed(&state, &viewer).await? {
        let teams =
            state.store.teams_with_default(&installation.uuid).await.map_err(|e| ssr::store_failed("load teams", e))?;
        all.push(InstallationTeams { installation, teams });
    }
    Ok(all)
}

/// Changes a team, for those who may manage the installation; recorded in
/// the audit log.
#[server(input = leptos::server_fn::codec::Json)]
pub async fn change_team(installation: String, change: TeamChange) -> Result<String, ServerFnError> {
    use issuebridge::domain::audit::AuditAction;
    use issuebridge::store::TeamError;
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let (uuid, record) = ssr::manageable_installation(&state, &viewer, &installation).await?;
    let done = state.store.change_team(uuid.as_str(), &change).await.map_err(|e| match e {
        TeamError::Invalid(e) => ssr::refuse(http::StatusCode::BAD_REQUEST, e.0),
        TeamError::NotFound => ssr::not_found("team"),
        TeamError::KeyTaken(_) => ssr::refuse(http::StatusCode::CONFLICT, format!("{e}.")),
        TeamError::Store(e) => ssr::store_failed("change the team", e),
    })?;
    let event = issuebridge::store::NewAuditEvent::new(&viewer.email, AuditAction::TeamChanged, done.clone())
        .about(record.org_slug.clone(), uuid.as_str());
    ssr::audit(&state, event).await;
    Ok(done)
}

/// Every installed installation's code mappings.
#[server]
pub async fn load_code_mappings() -> Result<Vec<InstallationMappings>, ServerFnError> {
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let mut all = Vec::new();
    for installation in inner::installed(&state, &viewer).await? {
        let mappings = state
            .store
            .code_mappings(&installation.uuid, None)
            .await
            .map_err(|e| ssr::store_failed("load code mappings", e))?;
        all.push(InstallationMappings { installation, mappings });
    }
    Ok(all)
}

/// Adds a code mapping (or replaces the one with its project and stack
/// root), for those who may manage the installation.
#[server(input = leptos::server_fn::codec::Json)]
pub async fn save_code_mapping(installation: String, form: MappingForm) -> Result<String, ServerFnError> {
    use issuebridge::domain::audit::AuditAction;
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let (uuid, record) = ssr::manageable_installation(&state, &viewer, &installation).await?;
    let mapping = form.parse().map_err(|e| ssr::refuse(http::StatusCode::BAD_REQUEST, e.0))?;
    state
        .store
        .save_code_mapping(uuid.as_str(), &mapping)
        .await
        .map_err(|e| ssr::store_failed("save the mapping", e))?;
    let done = format!("mapped {} {}/ to {}", mapping.project_slug, mapping.stack_root, mapping.repo_url);
    let event = issuebridge::store::NewAuditEvent::new(&viewer.email, AuditAction::CodeMappingChanged, done.clone())
        .about(record.org_slug.clone(), uuid.as_str());
    ssr::audit(&state, event).await;
    Ok(done)
}

#[server]
pub async fn delete_code_mapping(installation: String, id: i64) -> Result<(), ServerFnError> {
    use issuebridge::domain::audit::AuditAction;
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let (uuid, record) = ssr::manageable_installation(&state, &viewer, &installation).await?;
    let deleted = state
        .store
        .delete_code_mapping(uuid.as_str(), id)
        .await
        .map_err(|e| ssr::store_failed("delete the mapping", e))?;
    if !deleted {
        return Err(ssr::not_found("code mapping"));
    }
    let event = issuebridge::store::NewAuditEvent::new(
        &viewer.email,
        AuditAction::CodeMappingChanged,
        format!("deleted code mapping {id}"),
    )
    .about(record.org_slug.clone(), uuid.as_str());
    ssr::audit(&state, event).await;
    Ok(())
}
