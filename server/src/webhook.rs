//! `POST /sentry/webhook`: Sentry's signed webhooks, made durable before
//! they are acknowledged.
//!
//! The answer follows what Sentry does with it (contract §1.5): 200 for
//! anything well-signed we have stored (a retry of something stored, or a
//! resource we do not handle, included: refusing those would only make
//! Sentry retry them or drop them), 400 for a well-signed body that is not
//! JSON (kept for inspection; Sentry does not retry 4xx), 401 for a missing
//! or wrong signature (not stored), and 503 when the store cannot take it,
//! which Sentry retries.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use issuebridge::domain::time::now_ms;
use issuebridge::pipeline::inbox::InboxError;
use issuebridge::sentry::signature::Signature;
use issuebridge::store::{DeliveryInsert, NewDelivery};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::startup::ServerState;

/// The resources whose deliveries are processed; others are kept as
/// `ignored`.
pub const KNOWN_RESOURCES: [&str; 6] = ["installation", "issue", "error", "comment", "event_alert", "metric_alert"];

/// Headers kept with a delivery: what explains it, never a secret.
const KEPT_SERVICE_HOOK_HEADERS: [&str; 4] =
    ["content-type", "x-servicehook-guid", "x-servicehook-timestamp", "user-agent"];
const KEPT_HEADERS: [&str; 5] =
    ["content-type", "request-id", "sentry-hook-resource", "sentry-hook-timestamp", "user-agent"];

pub async fn receive(State(state): State<ServerState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(reason) = verify(&state, &headers, &body) {
        state.metrics.record_webhook_rejection(reason);
        tracing::warn!(reason, "webhook refused");
        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "invalid or missing signature" }))).into_response();
    }

    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let parsed: Option<Value> = serde_json::from_slice(&body).ok().filter(Value::is_object);
    let resource = header("sentry-hook-resource").unwrap_or_else(|| "unknown".to_owned());
    let state_label = match &parsed {
        None => "invalid",
        Some(_) if KNOWN_RESOURCES.contains(&resource.as_str()) => "pending",
        Some(_) => "ignored",
    };
    let delivery = NewDelivery {
        received_at_ms: now_ms(),
        source: "webhook",
        request_id: header("request-id"),
        action: parsed.as_ref().and_then(|v| v.get("action")?.as_str().map(str::to_owned)),
        installation: parsed.as_ref().and_then(|v| v.pointer("/installation/uuid")?.as_str().map(str::to_owned)),
        dedupe_key: dedupe_key(&resource, &body),
        headers: kept_headers(&headers, &KEPT_HEADERS),
        body: body.to_vec(),
        state: state_label,
        resource,
    };

    store_and_answer(&state, delivery).await
}

/// Checks the HMAC over the raw bytes against every configured secret.
/// No secret configured means no webhook is accepted.
fn verify(state: &ServerState, headers: &HeaderMap, body: &[u8]) -> Result<(), &'static str> {
    let raw = headers
        .get("sentry-hook-signature")
        .or_else(|| headers.get("sentry-app-signature"))
        .ok_or("missing signature")?;
    let signature = raw.to_str().ok().and_then(|text| Signature::parse(text).ok()).ok_or("malformed signature")?;
    let secrets = state.app.webhook_secrets();
    if secrets.is_empty() {
        return Err("no secret configured");
    }
    // Every secret is tried, so the timing does not tell which one matched.
    let matched = secrets.iter().fold(false, |ok, secret| signature.verifies(secret.expose().as_bytes(), body) | ok);
    if matched {
        Ok(())
    } else {
        Err("wrong signature")
    }
}

/// Sentry's retries carry the same body with a new Request-ID: the resource
/// and the body identify a delivery.
pub fn dedupe_key(resource: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(resource.as_bytes());
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
pub async fn receive_service_hook(State(state): State<ServerState>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let refuse = |reason: &'static str| {
        state.metrics.record_webhook_rejection(reason);
        (StatusCode::UNAUTHORIZED, Json(json!({ "error": "invalid or missing signature" }))).into_response()
    };
    let (Some(guid), Some(raw)) = (header("x-servicehook-guid"), header("x-servicehook-signature")) else {
        return refuse("missing signature");
    };
    let Ok(signature) = Signature::parse(&raw) else { return refuse("malformed signature") };
    let candidates = match state.app.store.service_hook_candidates(&guid).await {
        Ok(candidates) => candidates,
        Err(error) => {
            tracing::error!(%error, "service hooks could not be read");
            return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": "retry later" }))).into_response();
        }
    };
    let hook = candidates.into_iter().find(|hook| {
        state
            .app
            .cipher
            .open(&hook.secret, &issuebridge::installations::service_hooks::secret_context(&hook.id))
            .is_ok_and(|secret| signature.verifies(&secret, &body))
    });
    let Some(hook) = hook else { return refuse("wrong signature") };
    if hook.guid.is_none() {
        if let Err(error) = state.app.store.set_service_hook_guid(&hook.id, &guid).await {
            tracing::warn!(%error, "could not remember the hook's guid");
        }
    }

    let is_json = serde_json::from_slice::<Value>(&body).is_ok_and(|v| v.is_object());
    let delivery = NewDelivery {
        received_at_ms: now_ms(),
        source: "service_hook",
        request_id: None,
        resource: "service_hook".to_owned(),
        action: Some("event".to_owned()),
        installation: Some(hook.installation_uuid.clone()),
        dedupe_key: dedupe_key(&format!("service_hook:{guid}"), &body),
        headers: kept_headers(&headers, &KEPT_SERVICE_HOOK_HEADERS),
        body: body.to_vec(),
        state: if is_json { "pending" } else { "invalid" },
    };
    store_and_answer(&state, delivery).await
}

/// Makes the delivery durable, then answers as Sentry needs to hear it.
async fn store_and_answer(state: &ServerState, delivery: NewDelivery) -> Response {
    let invalid = delivery.state == "invalid";
    match state.app.inbox.submit(delivery).await {
        Ok(_) if invalid => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "the body is not a JSON object; it was kept for inspection" })),
        )
            .into_response(),
        Ok(DeliveryInsert::Stored(id)) => Json(json!({ "status": "accepted", "delivery": id })).into_response(),
        Ok(DeliveryInsert::Duplicate(id)) => Json(json!({ "status": "duplicate", "delivery": id })).into_response(),
        Err(error) => {
            tracing::error!(%error, "delivery could not be stored");
            let message = match error {
                InboxError::Store(_) | InboxError::Closed => "the delivery could not be stored; retry later",
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": message }))).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_keys_follow_resource_and_body() {
        assert_eq!(dedupe_key("issue", b"{}"), dedupe_key("issue", b"{}"));
        assert_ne!(dedupe_key("issue", b"{}"), dedupe_key("comment", b"{}"));
        assert_ne!(dedupe_key("issue", b"{}"), dedupe_key("issue", b"{ }"));
        assert_eq!(dedupe_key("issue", b"{}").len(), 64);
    }
}
