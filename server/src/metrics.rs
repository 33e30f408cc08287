//! Request metrics in Prometheus' text format: a counter by method, route
//! and status, a latency histogram by route, and refused webhooks by reason.
//!
//! Label cardinality stays bounded whatever clients send: routes are
//! labelled by their pattern (`/api/{fn}`), never by the concrete path, and
//! methods outside HTTP's standard set share the label `other`.
//!
//! Each router owns its [`Registry`] (no process-wide recorder), so tests
//! that build routers side by side never see each other's counts.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

/// Upper bounds in seconds: fine-grained below 10 ms, where webhook
/// acknowledgements are expected to land.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The label for requests no route matched (static files, 404s).
const UNMATCHED: &str = "unmatched";

/// The label shared by every method outside HTTP's standard set: a client
/// can make up any token as a method, and each would otherwise be a series.
const OTHER_METHOD: &str = "other";

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    webhook_rejections: IntCounterVec,
    component_requests: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = IntCounterVec::new(
            Opts::new("issuebridge_http_requests_total", "HTTP requests answered, by method, route and status."),
            &["method", "route", "status"],
        )
        .expect("a valid counter");
        let latency = HistogramVec::new(
            HistogramOpts::new("issuebridge_http_request_duration_seconds", "Time to answer HTTP requests, by route.")
                .buckets(BUCKETS.to_vec()),
            &["route"],
        )
        .expect("a valid histogram");
        let webhook_rejections = IntCounterVec::new(
            Opts::new("issuebridge_webhook_rejected_total", "Webhooks refused before storage, by reason."),
            &["reason"],
        )
        .expect("a valid counter");
        let component_requests = IntCounterVec::new(
            Opts::new(
                "issuebridge_component_requests_total",
                "Requests to the UI components Sentry calls, by component and outcome (ok, refused, unauthorized, error).",
            ),
            &["component", "outcome"],
        )
        .expect("a valid counter");
        let registry = Registry::new();
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(webhook_rejections.clone()),
            Box::new(component_requests.clone()),
        ] {
            registry.register(collector).expect("metric names are unique");
        }
        Self { registry, requests, latency, webhook_rejections, component_requests }
    }
}

impl Metrics {
    pub fn record(&self, method: &Method, route: &str, status: StatusCode, seconds: f64) {
        self.requests.with_label_values(&[method_label(method), route, status.as_str()]).inc();
        self.latency.with_label_values(&[route]).observe(seconds);
    }

    /// A webhook refused before it was stored (bad or missing signature).
    pub fn record_webhook_rejection(&self, reason: &'static str) {
        self.webhook_rejections.with_label_values(&[reason]).inc();
    }

    /// A request to a UI component; `component` and `outcome` come from a
    /// fixed set in `sentry_ui`, never from the request.
    pub fn record_component(&self, component: &'static str, outcome: &'static str) {
        self.component_requests.with_label_values(&[component, outcome]).inc();
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        // Encoding fails only on malformed metric families, which the fixed
        // set above cannot produce; a scrape still gets what was written.
        if let Err(error) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut text) {
            tracing::error!(%error, "encoding metrics");
        }
        text
    }
}

/// The method's own name if HTTP defines it, else [`OTHER_METHOD`].
fn method_label(method: &Method) -> &'static str {
    static STANDARD: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::CONNECT,
        Method::OPTIONS,
        Method::TRACE,
        Method::PATCH,
    ];
    STANDARD.iter().find(|standard| *standard == method).map_or(OTHER_METHOD, Method::as_str)
}

/// Middleware: times every request and records it under its route pattern.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| UNMATCHED.to_owned());
    let response = next.run(request).await;
    metrics.record(&method, &route, response.status(), started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.record(&Method::GET, "/healthz", StatusCode::OK, 0.0007);
        metrics.record(&Method::GET, "/healthz", StatusCode::OK, 0.003);
        metrics.record(&Method::POST, "/api/{fn}", StatusCode::INTERNAL_SERVER_ERROR, 20.0);
        let text = metrics.render();
        assert!(text.contains("issuebridge_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"));
        assert!(text.contains("issuebridge_http_requests_total{method=\"POST\",route=\"/api/{fn}\",status=\"500\"} 1"));
        assert!(text.contains("issuebridge_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.0005\"} 0"));
        assert!(text.contains("issuebridge_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.001\"} 1"));
        assert!(text.contains("issuebridge_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.005\"} 2"));
        assert!(text.contains("issuebridge_http_request_duration_seconds_bucket{route=\"/api/{fn}\",le=\"10\"} 0"));
        assert!(text.contains("issuebridge_http_request_duration_seconds_bucket{route=\"/api/{fn}\",le=\"+Inf\"} 1"));
        assert!(text.contains("issuebridge_http_request_duration_seconds_count{route=\"/healthz\"} 2"));
    }

    #[test]
    fn keeps_the_help_and_type_lines_scrapers_read() {
        let metrics = Metrics::default();
        metrics.record(&Method::GET, "/healthz", StatusCode::OK, 0.001);
        metrics.record_webhook_rejection("wrong signature");
        let text = metrics.render();
        for line in [
            "# HELP issuebridge_http_requests_total HTTP requests answered, by method, route and status.",
            "# TYPE issuebridge_http_requests_total counter",
            "# HELP issuebridge_webhook_rejected_total Webhooks refused before storage, by reason.",
            "# TYPE issuebridge_webhook_rejected_total counter",
            "issuebridge_webhook_rejected_total{reason=\"wrong signature\"} 1",
            "# HELP issuebridge_http_request_duration_seconds Time to answer HTTP requests, by route.",
            "# TYPE issuebridge_http_request_duration_seconds histogram",
            "issuebridge_http_request_duration_seconds_sum{route=\"/healthz\"} 0.001",
        ] {
            assert!(text.lines().any(|printed| printed == line), "{line} missing from:\n{text}");
        }
    }

    #[test]
    fn made_up_methods_share_one_label() {
        let metrics = Metrics::default();
        let made_up = Method::from_bytes(b"BREW").unwrap();
        let lower_case = Method::from_bytes(b"get").unwrap();
        metrics.record(&made_up, "unmatched", StatusCode::NOT_FOUND, 0.001);
        metrics.record(&lower_case, "unmatched", StatusCode::NOT_FOUND, 0.001);
        metrics.record(&Method::PATCH, "unmatched", StatusCode::NOT_FOUND, 0.001);
        let text = metrics.render();
        assert!(text.contains("{method=\"other\",route=\"unmatched\",status=\"404\"} 2"), "{text}");
        assert!(text.contains("{method=\"PATCH\",route=\"unmatched\",status=\"404\"} 1"), "{text}");
        assert!(!text.contains("BREW") && !text.contains("\"get\""), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::default();
        metrics.record(&Method::GET, "a\"b\\c\nd", StatusCode::OK, 0.001);
        assert!(metrics.render().contains(r#"route="a\"b\\c\nd""#));
    }
}
