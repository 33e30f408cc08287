//! Alert-rule-action settings (docs/sentry-protocol.md §3.5): Sentry posts
//! the settings while a person saves an alert rule and refuses to save it
//! unless the answer is a 2xx. Its `message` is shown either way, after the
//! app's name, so a refusal says what to fix and a success what will
//! happen.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use issuebridge::components::alert_action::AlertActionSettings;
use issuebridge::components::requests::AlertRuleActionBody;
use serde_json::json;

use super::{answer, installed, signed_or_refused, Served};
use crate::error::SentryEndpointError;
use crate::signed::SentrySigned;
use crate::state::ServerState;

pub(super) async fn settings(State(state): State<ServerState>, signed: Result<SentrySigned, Response>) -> Response {
    const COMPONENT: &str = "alert-rule-action";
    let signed = match signed_or_refused(&state, COMPONENT, signed) {
        Ok(signed) => signed,
        Err(refusal) => return refusal,
    };
    let mut served = Served::new(COMPONENT);
    let result = async {
        let body = AlertRuleActionBody::parse(&signed.body).map_err(|e| SentryEndpointError::Invalid(e.to_string()))?;
        served.installation = Some(body.installation_id.to_string());
        installed(&state, &body.installation_id).await?;
        let settings =
            AlertActionSettings::parse(&body.fields).map_err(|e| SentryEndpointError::Invalid(e.to_string()))?;
        served.request = format!("team {}", settings.team);
        let installation = body.installation_id.as_str();
        let Some(team) = state.app.store.team_by_key(installation, &settings.team).await? else {
            let teams = state.app.store.teams(installation).await?;
            let keys: Vec<String> = teams.iter().map(|t| t.key.to_string()).collect();
            return Err(SentryEndpointError::Invalid(format!(
                "there is no team {}; choose one of {}",
                settings.team,
                if keys.is_empty() { "the teams made in issuebridge".to_owned() } else { keys.join(", ") }
            )));
        };
        if let Some(assignee) = &settings.assignee {
            team.check_assignee(assignee).map_err(|e| SentryEndpointError::Invalid(e.to_string()))?;
        }
        let sentence = settings.describe(&team.name);
        let mut message = sentence[..1].to_uppercase();
        message.push_str(&sentence[1..]);
        Ok((StatusCode::OK, json!({ "message": message })))
    }
    .await;
    answer(&state, served, result)
}
