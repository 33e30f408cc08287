//! `POST /sentry/webhook`: Sentry's signed webhooks, made durable before
//! they are acknowledged.
//!
//! The answer follows what Sentry does with it (docs/sentry-protocol.md §1.5): 200 for
//! anything well-signed we have stored (a retry of something stored, or a
//! resource we do not handle, included: refusing those would only make
//! Sentry retry them or drop them), 400 for a well-signed body that is not
//! JSON (kept for inspection; Sentry does not retry 4xx), 401 for a missing
//! or wrong signature (not stored), and 503 when the store cannot take it,
//! which Sentry retries. Refusals answer `{"message": …}`
//! ([`SentryEndpointError`]).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use issuebridge::domain::deliveries::DeliveryState;
use issuebridge::domain::ids::InstallationUuid;
use issuebridge::domain::time::now_ms;
use issuebridge::domain::webhooks::Resource;
use issuebridge::pipeline::inbox::InboxError;
use issuebridge::sentry::signature::Signature;
use issuebridge::store::{DeliveryInsert, NewDelivery};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::SentryEndpointError;
use crate::signed::{header_text, SentrySigned};
use crate::state::ServerState;

/// Headers kept with a delivery: what explains it, never a secret.
const KEPT_SERVICE_HOOK_HEADERS: [&str; 4] =
    ["content-type", "x-servicehook-guid", "x-servicehook-timestamp", "user-agent"];
const KEPT_HEADERS: [&str; 5] =
    ["content-type", "request-id", "sentry-hook-resource", "sentry-hook-timestamp", "user-agent"];

/// The Sentry-facing routes: webhooks and service hooks, each with the
/// configured body limit (413 past it).
pub fn router(max_body_bytes: usize) -> Router<ServerState> {
    let limit = || DefaultBodyLimit::max(max_body_bytes);
    Router::new()
        .route("/sentry/webhook", post(receive).layer(limit()))
        .route("/sentry/service-hook", post(receive_service_hook).layer(limit()))
}

pub async fn receive(State(state): State<ServerState>, signed: SentrySigned) -> Result<Response, SentryEndpointError> {
    let parsed: Option<Value> = serde_json::from_slice(&signed.body).ok().filter(Value::is_object);
    let resource = signed.header("sentry-hook-resource").unwrap_or_else(|| "unknown".to_owned());
    // Resources not processed are kept as `ignored`, never refused. One we
    // process whose payload is not in the body is kept as `invalid`: the
    // resource header is not signed.
    let (state_label, refusal) = match (&parsed, Resource::of_webhook(&resource)) {
        (None, _) => (DeliveryState::Invalid, Some(NOT_AN_OBJECT)),
        (Some(body), Some(known)) if !known.carried_by(body) => (DeliveryState::Invalid, Some(NOT_THE_RESOURCE)),
        (Some(_), Some(_)) => (DeliveryState::Pending, None),
        (Some(_), None) => (DeliveryState::Ignored, None),
    };
    let delivery = NewDelivery {
        received_at_ms: now_ms(),
        source: "webhook",
        request_id: signed.header("request-id"),
        // Text columns cannot hold NUL on PostgreSQL; the body keeps it.
        action: parsed.as_ref().and_then(|v| v.get("action")?.as_str().map(|a| a.replace('\0', "\u{FFFD}"))),
        installation: parsed
            .as_ref()
            .and_then(|v| InstallationUuid::parse(v.pointer("/installation/uuid")?.as_str()?).ok()),
        dedupe_key: dedupe_key("webhook", &signed.body),
        headers: kept_headers(&signed.headers, &KEPT_HEADERS),
        body: signed.body.to_vec(),
        state: state_label,
        resource,
    };
    store_and_answer(&state, delivery, refusal).await
}

/// Why a well-signed delivery is answered 400 (after it is kept).
const NOT_AN_OBJECT: &str = "the body is not a JSON object; it was kept for inspection";
const NOT_THE_RESOURCE: &str =
    "the body does not carry the payload its Sentry-Hook-Resource names; it was kept for inspection";

/// Sentry's retries carry the same body with a new Request-ID, so the body
/// identifies a delivery within its source (`webhook`, or a service hook
/// by its id). Never the unsigned headers: a captured body posted again
/// under other resource names or guids is the same delivery, not a new row.
pub fn dedupe_key(source: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(source.as_bytes());
    hash.update(b"\n");
    hash.update(body);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The named headers that are present, as a JSON object.
fn kept_headers(headers: &HeaderMap, names: &[&str]) -> String {
    let kept: serde_json::Map<String, Value> = names
        .iter()
        .filter_map(|name| Some((name.to_string(), Value::String(headers.get(*name)?.to_str().ok()?.to_owned()))))
        .collect();
    Value::Object(kept).to_string()
}

/// `POST /sentry/service-hook`: a project service hook's delivery, verified
/// with that hook's own secret (found by `X-ServiceHook-GUID`), stored in
/// the same inbox.
pub async fn receive_service_hook(
    State(state): State<ServerState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, SentryEndpointError> {
    let header = |name: &str| header_text(&headers, name);
    let refuse = |reason: &'static str| {
        state.metrics.record_webhook_rejection(reason);
        Err(SentryEndpointError::Unauthorized)
    };
    let (Some(guid), Some(raw)) = (header("x-servicehook-guid"), header("x-servicehook-signature")) else {
        return refuse("missing signature");
    };
    let Ok(signature) = Signature::parse(&raw) else { return refuse("malformed signature") };
    let candidates = match state.app.store.service_hook_candidates(&guid).await {
        Ok(candidates) => candidates,
        Err(error) => {
            return Err(SentryEndpointError::Unavailable { public: "retry later", cause: error.to_string() });
        }
    };
    // Every hook is a candidate, the one known by this guid first: a hook's
    // guid is re-learnt whenever its own secret verifies, so a hook Sentry
    // renamed (or one a forged guid header once claimed) finds its way back.
    let hook = candidates.into_iter().find(|hook| {
        state
            .app
            .cipher
            .open(&hook.secret, &issuebridge::installations::service_hooks::secret_context(&hook.id))
            .is_ok_and(|secret| signature.verifies(&secret, &body))
    });
    let Some(hook) = hook else { return refuse("wrong signature") };
    if hook.guid.as_deref() != Some(guid.as_str()) {
        if let Err(error) = state.app.store.set_service_hook_guid(&hook.id, &guid).await {
            tracing::warn!(%error, "could not remember the hook's guid");
        }
    }

    let is_json = serde_json::from_slice::<Value>(&body).is_ok_and(|v| v.is_object());
    let refusal = (!is_json).then_some(NOT_AN_OBJECT);
    let delivery = NewDelivery {
        received_at_ms: now_ms(),
        source: "service_hook",
        request_id: None,
        resource: Resource::ServiceHook.as_str().to_owned(),
        action: Some("event".to_owned()),
        installation: InstallationUuid::parse(&hook.installation_uuid).ok(),
        dedupe_key: dedupe_key(&format!("service_hook:{}", hook.id), &body),
        headers: kept_headers(&headers, &KEPT_SERVICE_HOOK_HEADERS),
        body: body.to_vec(),
        state: if is_json { DeliveryState::Pending } else { DeliveryState::Invalid },
    };
    store_and_answer(&state, delivery, refusal).await
}

/// Makes the delivery durable (or finds it stored already), then answers
/// as Sentry needs to hear it: `refusal` is the 400 of one kept as invalid.
async fn store_and_answer(
    state: &ServerState,
    delivery: NewDelivery,
    refusal: Option<&'static str>,
) -> Result<Response, SentryEndpointError> {
    let stored =
        state.app.inbox.submit(delivery).await.map_err(|error: InboxError| SentryEndpointError::Unavailable {
            public: "the delivery could not be stored; retry later",
            cause: error.to_string(),
        })?;
    match (refusal, stored) {
        (Some(refusal), _) => Err(SentryEndpointError::BadRequest(refusal)),
        (None, DeliveryInsert::Stored(id)) => Ok(Json(json!({ "status": "accepted", "delivery": id })).into_response()),
        (None, DeliveryInsert::Duplicate(id)) => {
            Ok(Json(json!({ "status": "duplicate", "delivery": id })).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_keys_follow_source_and_body() {
        assert_eq!(dedupe_key("webhook", b"{}"), dedupe_key("webhook", b"{}"));
        assert_ne!(dedupe_key("webhook", b"{}"), dedupe_key("service_hook:1", b"{}"));
        assert_ne!(dedupe_key("webhook", b"{}"), dedupe_key("webhook", b"{ }"));
        assert_eq!(dedupe_key("webhook", b"{}").len(), 64);
    }
}
