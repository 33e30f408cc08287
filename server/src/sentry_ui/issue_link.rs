//! Issue-link create and link (docs/sentry-protocol.md §3.4): Sentry's
//! issue sidebar makes or links a ticket, and shows `project#identifier`
//! with `webUrl` from the answer, all three JSON strings.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use issuebridge::components::definition::field;
use issuebridge::components::requests::IssueLinkBody;
use issuebridge::domain::team::TicketKey;
use issuebridge::store::components::{IssueToLink, LinkError, TicketForIssue};
use issuebridge::store::{TeamChoice, TicketState};
use serde_json::{json, Value};

use super::{answer, installed, signed_or_refused, Served};
use crate::error::SentryEndpointError;
use crate::signed::SentrySigned;
use crate::state::ServerState;

pub(super) async fn create(State(state): State<ServerState>, signed: Result<SentrySigned, Response>) -> Response {
    const COMPONENT: &str = "issue-link:create";
    let signed = match signed_or_refused(&state, COMPONENT, signed) {
        Ok(signed) => signed,
        Err(refusal) => return refusal,
    };
    let mut served = Served::new(COMPONENT);
    let result =
        async {
            let body = IssueLinkBody::parse(&signed.body).map_err(|e| SentryEndpointError::Invalid(e.to_string()))?;
            served.installation = Some(body.installation_id.to_string());
            served.request = format!("issue {}", body.issue_id);
            installed(&state, &body.installation_id).await?;
            let fields = body.new_ticket().map_err(|e| SentryEndpointError::Invalid(e.to_string()))?;
            let installation = body.installation_id.as_str();
            let team =
                match &fields.team {
                    Some(key) => {
                        Some(state.app.store.team_by_key(installation, key).await?.ok_or_else(|| {
                            SentryEndpointError::Invalid(format!("no team {key} in this installation"))
                        })?)
                    }
                    None => None,
                };
            if let (Some(team), Some(assignee)) = (&team, &fields.assignee) {
                team.check_assignee(assignee).map_err(|e| SentryEndpointError::Invalid(e.to_string()))?;
            }
            let ticket = TicketForIssue {
                team: fields.team.clone().map_or(TeamChoice::Default, TeamChoice::Key),
                title: &fields.title,
                description: &fields.description,
                status: fields.status,
                assignee: fields.assignee.as_deref(),
            };
            let opened = state.app.store.create_ticket_for_issue(&issue(&body), &ticket).await.map_err(link_error)?;
            Ok((StatusCode::CREATED, reply(&state, installation, &opened)))
        }
        .await;
    answer(&state, served, result)
}

pub(super) async fn link(State(state): State<ServerState>, signed: Result<SentrySigned, Response>) -> Response {
    const COMPONENT: &str = "issue-link:link";
    let signed = match signed_or_refused(&state, COMPONENT, signed) {
        Ok(signed) => signed,
        Err(refusal) => return refusal,
    };
    let mut served = Served::new(COMPONENT);
    let result = async {
        let body = IssueLinkBody::parse(&signed.body).map_err(|e| SentryEndpointError::Invalid(e.to_string()))?;
        served.installation = Some(body.installation_id.to_string());
        installed(&state, &body.installation_id).await?;
        let raw = body.field(field::TICKET).ok_or_else(|| SentryEndpointError::Invalid("choose a ticket".into()))?;
        served.request = format!("issue {} to {raw}", body.issue_id);
        let key: TicketKey = raw
            .parse()
            .map_err(|e: issuebridge::domain::team::InvalidTeam| SentryEndpointError::Invalid(e.to_string()))?;
        let linked = state.app.store.link_ticket_to_issue(&issue(&body), &key).await.map_err(link_error)?;
        Ok((StatusCode::OK, reply(&state, body.installation_id.as_str(), &linked)))
    }
    .await;
    answer(&state, served, result)
}

fn issue(body: &IssueLinkBody) -> IssueToLink<'_> {
    IssueToLink {
        installation: body.installation_id.as_str(),
        issue_id: body.issue_id.as_str(),
        web_url: body.web_url.as_deref(),
        project_slug: body.project.as_ref().and_then(|p| p.slug.as_deref()),
    }
}

fn link_error(error: LinkError) -> SentryEndpointError {
    match error {
        LinkError::AlreadyLinked(_) => SentryEndpointError::Conflict(error.to_string()),
        LinkError::NoSuchTicket(_) => SentryEndpointError::NotFound(error.to_string()),
        LinkError::NoSuchTeam(_) => SentryEndpointError::Invalid(error.to_string()),
        LinkError::Store(e) => e.into(),
    }
}

/// What Sentry needs to show the link: `project#identifier` and the
/// ticket's page in the console.
fn reply(state: &ServerState, installation: &str, ticket: &TicketState) -> Value {
    json!({
        "webUrl": ticket_url(state, installation, &ticket.key),
        "project": ticket.key.team.to_string(),
        "identifier": ticket.key.to_string(),
    })
}

/// The ticket's page: `/tickets/ENG-12`, with its installation, since
/// identifiers are unique only within one.
pub(crate) fn ticket_url(state: &ServerState, installation: &str, key: &TicketKey) -> String {
    let mut url = state.app.config.public_url_or(state.leptos_options.site_addr);
    url.set_path(&format!("{}/tickets/{key}", url.path().trim_end_matches('/')));
    url.query_pairs_mut().clear().append_pair("installation", installation);
    url.to_string()
}
