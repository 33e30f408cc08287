//! Requests Sentry signs with the app's client secret: one extractor for
//! every endpoint Sentry calls (the webhook today, the UI components next).
//!
//! The HMAC-SHA256 covers the raw body bytes exactly as sent (for a `GET`,
//! the empty body), so the body is read raw and verified before anything
//! parses it (docs/sentry-protocol.md §1.3). Every configured secret is
//! tried, the current and the previous one, so rotating the client secret
//! loses no delivery; no secret configured accepts nothing.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use issuebridge::config::Secret;
use issuebridge::sentry::signature::Signature;

use crate::error::SentryEndpointError;
use crate::state::ServerState;

/// The headers Sentry signs with, in the order they are looked for:
/// webhooks carry `Sentry-Hook-Signature`, UI-component requests
/// `Sentry-App-Signature`.
const SIGNATURE_HEADERS: [&str; 2] = ["sentry-hook-signature", "sentry-app-signature"];

/// A request whose signature verified: its headers and raw body.
#[derive(Debug)]
pub struct SentrySigned {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl SentrySigned {
    /// A header's value as text, if present and readable.
    pub fn header(&self, name: &str) -> Option<String> {
        header_text(&self.headers, name)
    }
}

/// A header's value as text, if present and readable.
pub fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

impl FromRequest<ServerState> for SentrySigned {
    type Rejection = axum::response::Response;

    async fn from_request(request: Request, state: &ServerState) -> Result<Self, Self::Rejection> {
        let headers = request.headers().clone();
        // The route's body limit applies here (413 past it).
        let body = Bytes::from_request(request, state).await.map_err(IntoResponse::into_response)?;
        if let Err(reason) = verify(&state.app.webhook_secrets(), &headers, &body) {
            state.metrics.record_webhook_rejection(reason);
            tracing::warn!(reason, "signed request refused");
            return Err(SentryEndpointError::Unauthorized.into_response());
        }
        Ok(Self { headers, body })
    }
}

/// Checks the HMAC over the raw bytes against every secret; the reason it
/// failed otherwise, as the rejection metric counts it.
pub fn verify(secrets: &[Secret], headers: &HeaderMap, body: &[u8]) -> Result<(), &'static str> {
    let raw = SIGNATURE_HEADERS.iter().find_map(|name| headers.get(*name)).ok_or("missing signature")?;
    let signature = raw.to_str().ok().and_then(|text| Signature::parse(text).ok()).ok_or("malformed signature")?;
    if secrets.is_empty() {
        return Err("no secret configured");
    }
    // Every secret is tried, so the timing does not tell which one matched;
    // each comparison is constant-time (`Signature::verifies`).
    let matched = secrets.iter().fold(false, |ok, secret| signature.verifies(secret.expose().as_bytes(), body) | ok);
    if matched {
        Ok(())
    } else {
        Err("wrong signature")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use issuebridge::sentry::signature::sign;

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        headers
    }

    #[test]
    fn either_header_and_either_secret_verify_and_nothing_else_does() {
        let secrets = [Secret::new("current"), Secret::new("previous")];
        let body = br#"{"action":"created"}"#;
        for name in SIGNATURE_HEADERS {
            for secret in ["current", "previous"] {
                assert_eq!(verify(&secrets, &headers(name, &sign(secret.as_bytes(), body)), body), Ok(()));
            }
        }
        let wrong = headers("sentry-hook-signature", &sign(b"stranger", body));
        assert_eq!(verify(&secrets, &wrong, body), Err("wrong signature"));
        assert_eq!(verify(&secrets, &HeaderMap::new(), body), Err("missing signature"));
        assert_eq!(verify(&secrets, &headers("sentry-hook-signature", "zz"), body), Err("malformed signature"));
        let signed = headers("sentry-app-signature", &sign(b"current", b""));
        assert_eq!(verify(&[], &signed, b""), Err("no secret configured"));
        assert_eq!(verify(&secrets, &signed, b""), Ok(()), "a GET is signed over the empty body");
    }
}
