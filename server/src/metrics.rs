//! Request metrics in Prometheus' text format: a counter by method, route
//! and status, and a latency histogram by route.
//!
//! Routes are labelled by their pattern (`/api/{fn}`), never by the concrete
//! path, so label cardinality stays bounded whatever clients send.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// Upper bounds in seconds: fine-grained below 10 ms, where webhook
/// acknowledgements are expected to land.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The label for requests no route matched (static files, 404s).
const UNMATCHED: &str = "unmatched";

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    webhook_rejections: BTreeMap<&'static str, u64>,
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

#[derive(Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    pub fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *inner.requests.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
        let histogram = inner.latency.entry(route.to_owned()).or_default();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// A webhook refused before it was stored (bad or missing signature).
    pub fn record_webhook_rejection(&self, reason: &'static str) {
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *inner.webhook_rejections.entry(reason).or_default() += 1;
    }

    pub fn render(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out = String::new();
        out.push_str("# HELP issuebridge_http_requests_total HTTP requests answered, by method, route and status.\n");
        out.push_str("# TYPE issuebridge_http_requests_total counter\n");
        for ((method, route, status), count) in &inner.requests {
            let _ = writeln!(
                out,
                "issuebridge_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {count}",
                escape(method),
                escape(route)
            );
        }
        out.push_str("# HELP issuebridge_webhook_rejected_total Webhooks refused before storage, by reason.\n");
        out.push_str("# TYPE issuebridge_webhook_rejected_total counter\n");
        for (reason, count) in &inner.webhook_rejections {
            let _ = writeln!(out, "issuebridge_webhook_rejected_total{{reason=\"{}\"}} {count}", escape(reason));
        }
        out.push_str("# HELP issuebridge_http_request_duration_seconds Time to answer HTTP requests, by route.\n");
        out.push_str("# TYPE issuebridge_http_request_duration_seconds histogram\n");
        for (route, histogram) in &inner.latency {
            let route = escape(route);
            for (count, bound) in histogram.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "issuebridge_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "issuebridge_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ =
                writeln!(out, "issuebridge_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", histogram.sum);
            let _ = writeln!(
                out,
                "issuebridge_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count
            );
        }
        out
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Middleware: times every request and records it under its route pattern.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| UNMATCHED.to_owned());
    let response = next.run(request).await;
    metrics.record(&method, &route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.record("GET", "/healthz", 200, 0.0007);
        metrics.record("GET", "/healthz", 200, 0.003);
        metrics.record("POST", "/api/{fn}", 500, 20.0);
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
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
