//! Select options (docs/sentry-protocol.md §3.3): a signed `GET` whose
//! signature covers the empty body; the answer is a bare JSON array of
//! `{label, value}` with string values.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use issuebridge::components::requests::{SelectOption, SelectQuery, MAX_OPTIONS};

use super::{answer, installed, signed_or_refused, Served};
use crate::error::SentryEndpointError;
use crate::signed::SentrySigned;
use crate::state::ServerState;

/// The selects the schema names, by the last segment of their `uri`.
#[derive(Debug, Clone, Copy)]
enum Source {
    Teams,
    Assignees,
    Tickets,
}

impl Source {
    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "teams" => Some(Self::Teams),
            "assignees" => Some(Self::Assignees),
            "tickets" => Some(Self::Tickets),
            _ => None,
        }
    }

    fn component(self) -> &'static str {
        match self {
            Self::Teams => "select:teams",
            Self::Assignees => "select:assignees",
            Self::Tickets => "select:tickets",
        }
    }
}

pub(super) async fn options(
    State(state): State<ServerState>,
    Path(source): Path<String>,
    query: Result<Query<SelectQuery>, axum::extract::rejection::QueryRejection>,
    signed: Result<SentrySigned, Response>,
) -> Response {
    let component = Source::parse(&source).map_or("select:unknown", Source::component);
    if let Err(refusal) = signed_or_refused(&state, component, signed) {
        return refusal;
    }
    let mut served = Served::new(component);
    let result = async {
        let Some(source) = Source::parse(&source) else {
            return Err(SentryEndpointError::NotFound(format!("no select named {source:?}")));
        };
        let Query(query) = query.map_err(|_| SentryEndpointError::Invalid("the query string cannot be read".into()))?;
        let uuid = query.installation().map_err(|e| SentryEndpointError::Invalid(e.to_string()))?;
        served.installation = Some(uuid.to_string());
        served.request = query.typed().map(|q| format!("query {q:?}")).unwrap_or_default();
        installed(&state, &uuid).await?;
        let options = match source {
            Source::Teams => teams(&state, uuid.as_str()).await?,
            Source::Assignees => assignees(&state, uuid.as_str(), &query, &mut served).await?,
            Source::Tickets => tickets(&state, uuid.as_str(), query.typed()).await?,
        };
        let value = serde_json::to_value(options).expect("options serialize");
        Ok((StatusCode::OK, value))
    }
    .await;
    answer(&state, served, result)
}

/// Every team, the default one chosen.
async fn teams(state: &ServerState, installation: &str) -> Result<Vec<SelectOption>, SentryEndpointError> {
    let teams = state.app.store.teams_with_default(installation).await?;
    Ok(teams
        .into_iter()
        .take(MAX_OPTIONS)
        .map(|team| SelectOption {
            label: format!("{} ({})", team.name, team.key),
            value: team.key.to_string(),
            default: team.is_default,
        })
        .collect())
}

/// The members of the team chosen above (`dependentData`), narrowed by what
/// was typed. No team chosen yet: no one.
async fn assignees(
    state: &ServerState,
    installation: &str,
    query: &SelectQuery,
    served: &mut Served,
) -> Result<Vec<SelectOption>, SentryEndpointError> {
    let team = query.team().map_err(|e| SentryEndpointError::Invalid(e.to_string()))?;
    let Some(key) = team else { return Ok(Vec::new()) };
    served.request = format!("team {key}{}", query.typed().map(|q| format!(", query {q:?}")).unwrap_or_default());
    let team = state
        .app
        .store
        .team_by_key(installation, &key)
        .await?
        .ok_or_else(|| SentryEndpointError::NotFound(format!("no team {key} in this installation")))?;
    let typed = query.typed().map(str::to_lowercase);
    Ok(team
        .members
        .into_iter()
        .filter(|email| typed.as_deref().is_none_or(|t| email.contains(t)))
        .take(MAX_OPTIONS)
        .map(|email| SelectOption { label: email.clone(), value: email, default: false })
        .collect())
}

/// Tickets to link, searched by what was typed.
async fn tickets(
    state: &ServerState,
    installation: &str,
    typed: Option<&str>,
) -> Result<Vec<SelectOption>, SentryEndpointError> {
    let found = state.app.store.search_tickets(installation, typed, MAX_OPTIONS as i64).await?;
    Ok(found
        .into_iter()
        .map(|ticket| SelectOption {
            label: format!("{} · {}", ticket.identifier, ticket.title),
            value: ticket.identifier,
            default: false,
        })
        .collect())
}
