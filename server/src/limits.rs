//! What keeps a hostile or runaway client from holding the server: a time
//! limit on each request, a global limit on requests in flight with a fast
//! 503 past it, and per-client rate limits on the routes that call Sentry
//! with the app's secret or log people in. (The time limit on a request's
//! head is the connection's: [`crate::startup::serve_until`].)
//!
//! Operators tune them with the variables of [`RequestLimits`]; the README's
//! "Operations" section says how.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Json, Router};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use issuebridge::config::RequestLimits;
use serde_json::json;
use tower::ServiceBuilder;

/// Wraps every route of `router` in the global limits: at most
/// `max_in_flight` requests at once, the rest answered 503 at once (queuing
/// them would only make every answer late, and Sentry retries a 503), and
/// at most `request_timeout` to read a request's body and answer it, then
/// 503. A streamed answer (the live feed) counts until its head is sent.
pub fn bounded<S: Clone + Send + Sync + 'static>(router: Router<S>, limits: &RequestLimits) -> Router<S> {
    let timeout = limits.request_timeout;
    router.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(move |error: BoxError| async move { refusal(&error, timeout) }))
            .load_shed()
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(limits.max_in_flight))
            .timeout(timeout),
    )
}

fn refusal(error: &BoxError, timeout: Duration) -> Response {
    let message = if error.is::<tower::load_shed::error::Overloaded>() {
        "the server is at its limit of requests in flight; retry shortly".to_owned()
    } else if error.is::<tower::timeout::error::Elapsed>() {
        tracing::warn!(?timeout, "a request took longer than its time limit");
        format!("the request took longer than {} s; retry later", timeout.as_secs())
    } else {
        tracing::error!(%error, "a request failed in the limits layer");
        "the request could not be handled; retry later".to_owned()
    };
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "message": message }))).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Requests a minute per client address, on the routes that make each
/// visit cost a call to Sentry (`/sentry/setup`, the OAuth callback) or
/// that guess at secrets (login links).
#[derive(Clone)]
pub struct ClientRateLimit {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    client_ip_header: Option<String>,
}

/// Addresses remembered before the limiter forgets those whose allowance
/// is whole again: memory stays bounded however many addresses visit.
const REMEMBERED_CLIENTS: usize = 10_000;

impl ClientRateLimit {
    pub fn new(limits: &RequestLimits) -> Self {
        let per_minute = NonZeroU32::new(limits.rate_per_minute).unwrap_or(NonZeroU32::MIN);
        // A browser's login is a few requests in a row: allow a burst of a
        // third of the minute's allowance, refilled evenly.
        let burst = NonZeroU32::new((limits.rate_per_minute / 3).max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst))),
            client_ip_header: limits.client_ip_header.clone(),
        }
    }

    /// The client's address: the last one in the configured header (the
    /// one the trusted proxy added; earlier ones are the client's word),
    /// else the peer's. Requests with neither (only tests build those)
    /// share one allowance.
    fn client(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> IpAddr {
        let forwarded = self.client_ip_header.as_deref().and_then(|name| {
            let value = headers.get_all(name).iter().last()?.to_str().ok()?;
            value.rsplit(',').next()?.trim().parse::<IpAddr>().ok()
        });
        forwarded.or(peer.map(|peer| peer.ip())).unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }
}

/// Middleware: 429 with `Retry-After` once a client has used its allowance.
pub async fn rate_limited(State(limit): State<ClientRateLimit>, request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
    let client = limit.client(request.headers(), peer);
    if limit.limiter.len() > REMEMBERED_CLIENTS {
        limit.limiter.retain_recent();
    }
    match limit.limiter.check_key(&client) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            tracing::info!(%client, path = request.uri().path(), "rate limited");
            // Plain text: these are pages people open, and curl reads it too.
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many requests from your address. Retry in {} s.\n", seconds.max(1)),
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(header: Option<&str>) -> ClientRateLimit {
        ClientRateLimit::new(&RequestLimits { client_ip_header: header.map(str::to_owned), ..Default::default() })
    }

    #[test]
    fn the_client_is_the_peer_unless_a_proxy_header_is_trusted() {
        let peer = Some(SocketAddr::from(([10, 0, 0, 9], 5000)));
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.7"));
        assert_eq!(limit(None).client(&headers, peer), IpAddr::from([10, 0, 0, 9]), "the header is not trusted");
        let trusted = limit(Some("x-forwarded-for"));
        assert_eq!(
            trusted.client(&headers, peer),
            IpAddr::from([203, 0, 113, 7]),
            "the proxy's entry, not the client's"
        );
        headers.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(trusted.client(&headers, peer), IpAddr::from([10, 0, 0, 9]), "unreadable: the peer");
    }
}
