//! What the console shows besides tickets, shared by server and browser.

use serde::{Deserialize, Serialize};

use super::installation::InstallationStatus;
use super::names::named_enum;

named_enum! {
    /// Where a delivery stands in the pipeline.
    pub enum DeliveryState ("delivery state") {
        /// Stored, waiting for the worker.
        Pending = "pending",
        /// Claimed by a worker (until its lease runs out).
        Processing = "processing",
        /// Failed in a way that may pass; tried again after a backoff.
        Retry = "retry",
        Processed = "processed",
        /// Given up; waits for a person to replay it.
        Dead = "dead",
        /// Kept, nothing to do: a resource or action not handled, or an
        /// installation that was uninstalled.
        Ignored = "ignored",
        /// Not JSON: kept as received, never processed.
        Invalid = "invalid",
    }
}

impl DeliveryState {
    /// The states a delivery can be processed again from, which the console
    /// offers to replay: `invalid` bodies cannot be processed, and
    /// `processing` ones are in flight. (The store also resets `pending`
    /// ones, harmlessly; there is nothing to offer for those.)
    pub const REPLAYABLE: [DeliveryState; 4] = [Self::Processed, Self::Ignored, Self::Dead, Self::Retry];

    pub fn is_replayable(self) -> bool {
        Self::REPLAYABLE.contains(&self)
    }
}

/// The most deliveries one replay from the console requeues: a range
/// larger than this must be narrowed (or replayed with the CLI), so a
/// click never requeues the whole log.
pub const MAX_CONSOLE_REPLAY: i64 = 1_000;

/// How big a replay would be, shown before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayPreview {
    pub count: i64,
    pub limit: i64,
}

/// One installation as the Installations page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationSummary {
    pub uuid: String,
    pub org_slug: String,
    pub org_id: Option<i64>,
    pub app_slug: Option<String>,
    pub status: InstallationStatus,
    pub created_at_ms: i64,
    pub tickets: i64,
}

/// The configuration as the Settings page shows it: never a secret, only
/// whether one is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleInfo {
    pub version: String,
    pub demo_mode: bool,
    pub database: String,
    pub public_url: String,
    pub sentry_url: String,
    pub app_client_id: Option<String>,
    pub previous_secret_set: bool,
    pub login_configured: bool,
}

/// One row of the delivery log (and, on the server, of its query).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct DeliverySummary {
    pub id: i64,
    #[cfg_attr(feature = "server", sqlx(rename = "received_at"))]
    pub received_at_ms: i64,
    pub resource: String,
    pub action: Option<String>,
    #[cfg_attr(feature = "server", sqlx(rename = "installation_uuid"))]
    pub installation: Option<String>,
    #[cfg_attr(feature = "server", sqlx(try_from = "String"))]
    pub state: DeliveryState,
    pub attempts: i64,
    #[cfg_attr(feature = "server", sqlx(rename = "duplicate_count"))]
    pub duplicates: i64,
    pub last_error: Option<String>,
    /// What processing did, in a sentence.
    pub note: Option<String>,
}

impl DeliverySummary {
    pub fn is_replayable(&self) -> bool {
        self.state.is_replayable()
    }
}

/// The delivery log's filters, as its URL carries them. Empty means all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryFilter {
    pub resource: Option<String>,
    pub action: Option<String>,
    /// The delivery's state: the outcome of processing.
    pub state: Option<DeliveryState>,
    pub installation: Option<String>,
    /// Received at or after (Unix ms).
    pub from_ms: Option<i64>,
    /// Received before (Unix ms).
    pub to_ms: Option<i64>,
}

impl DeliveryFilter {
    /// Reads the filters from query parameters; blank or unreadable values
    /// mean "no filter" (times are UTC, as the page shows them).
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Self {
        let text = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let time = |name: &str| text(name).and_then(|v| crate::domain::time::parse_utc_minutes(&v));
        Self {
            resource: text("resource"),
            action: text("action"),
            state: text("state").and_then(|state| state.parse().ok()),
            installation: text("installation"),
            from_ms: time("from"),
            to_ms: time("to"),
        }
    }

    /// The filters as query parameters (for links that keep them).
    pub fn to_params(&self) -> Vec<(&'static str, String)> {
        let time = |ms: Option<i64>| ms.map(crate::domain::time::format_input_minutes);
        [
            ("resource", self.resource.clone()),
            ("action", self.action.clone()),
            ("state", self.state.map(|state| state.as_str().to_owned())),
            ("installation", self.installation.clone()),
            ("from", time(self.from_ms)),
            ("to", time(self.to_ms)),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect()
    }

    pub fn has_time_range(&self) -> bool {
        self.from_ms.is_some() || self.to_ms.is_some()
    }
}

/// One delivery in full, for the log's detail view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryDetail {
    pub summary: DeliverySummary,
    pub source: String,
    pub request_id: Option<String>,
    /// As kept, with anything secret-looking redacted.
    pub headers: Vec<(String, String)>,
    /// Pretty-printed when it is JSON; else the text as received.
    pub body: String,
    pub body_is_json: bool,
    pub body_bytes: usize,
    pub processed_at_ms: Option<i64>,
    pub attempts: Vec<DeliveryAttempt>,
}

/// What the detail view is made from: a stored delivery's parts.
pub struct DeliveryShown<'a> {
    pub summary: DeliverySummary,
    pub source: String,
    pub request_id: Option<String>,
    /// The kept headers, a JSON object.
    pub headers_json: &'a str,
    pub body: &'a [u8],
    pub processed_at_ms: Option<i64>,
    pub attempts: Vec<DeliveryAttempt>,
}

impl DeliveryDetail {
    /// The largest body the detail view shows; the rest is cut, with a note.
    pub const BODY_LIMIT: usize = 256 * 1024;

    /// Headers with anything secret-looking redacted, the body pretty
    /// printed when it is JSON and cut at [`Self::BODY_LIMIT`].
    pub fn new(shown: DeliveryShown<'_>) -> Self {
        let headers = match serde_json::from_str::<serde_json::Value>(shown.headers_json) {
            Ok(serde_json::Value::Object(map)) => map
                .iter()
                .map(|(name, value)| {
                    let value = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
                    (name.clone(), redacted_header(name, &value))
                })
                .collect(),
            _ => Vec::new(),
        };
        let (body, body_is_json) = match serde_json::from_slice::<serde_json::Value>(shown.body) {
            Ok(json) => (serde_json::to_string_pretty(&json).unwrap_or_default(), true),
            Err(_) => (String::from_utf8_lossy(shown.body).into_owned(), false),
        };
        let body = if body.len() > Self::BODY_LIMIT {
            let mut cut = Self::BODY_LIMIT;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}\n… cut at {} KB of {} bytes", &body[..cut], Self::BODY_LIMIT / 1024, body.len())
        } else {
            body
        };
        Self {
            summary: shown.summary,
            source: shown.source,
            request_id: shown.request_id,
            headers,
            body,
            body_is_json,
            body_bytes: shown.body.len(),
            processed_at_ms: shown.processed_at_ms,
            attempts: shown.attempts,
        }
    }
}

/// One try at processing a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    pub attempt: i64,
    pub finished_at_ms: i64,
    pub outcome: DeliveryState,
    pub error: Option<String>,
}

/// A header's value as the console may show it: signatures, tokens and
/// the like never leave the server, even if one was kept by mistake.
pub fn redacted_header(name: &str, value: &str) -> String {
    const SECRET_WORDS: [&str; 6] = ["signature", "authorization", "secret", "token", "cookie", "api-key"];
    let lower = name.to_ascii_lowercase();
    if SECRET_WORDS.iter().any(|word| lower.contains(word)) {
        "[redacted]".to_owned()
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_round_trip_through_the_query_string() {
        let params = [("resource", "issue"), ("state", " "), ("from", "2024-02-29T23:59"), ("to", "never")];
        let get = |name: &str| params.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
        let filter = DeliveryFilter::from_params(get);
        assert_eq!(filter.resource.as_deref(), Some("issue"));
        assert_eq!(filter.state, None, "blank is no filter");
        assert_eq!(filter.from_ms, Some(1_709_251_140_000));
        assert_eq!(filter.to_ms, None, "unreadable is no filter");
        assert_eq!(filter.to_params(), vec![("resource", "issue".into()), ("from", "2024-02-29T23:59".into())]);
    }

    #[test]
    fn secret_headers_are_redacted() {
        assert_eq!(redacted_header("Sentry-Hook-Signature", "abc"), "[redacted]");
        assert_eq!(redacted_header("x-servicehook-signature", "abc"), "[redacted]");
        assert_eq!(redacted_header("Authorization", "Bearer x"), "[redacted]");
        assert_eq!(redacted_header("request-id", "abc"), "abc");
    }
}

/// One page of the delivery log; `older` continues below it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliverySummary>,
    pub older: Option<i64>,
}
