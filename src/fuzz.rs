//! Generators of hostile input for the property tests (`make fuzz`, and a
//! shorter run in `make test`): text, and JSON shaped like Sentry's
//! payloads, close enough to reach deep into each parser and wrong enough
//! to test every refusal.
//!
//! proptest rather than a coverage-guided fuzzer: it runs on stable Rust
//! inside `cargo test`, needs no extra toolchain, and shrinks a failure to
//! a small input.

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::{Map, Number, Value};

/// Cases per property: `ISSUEBRIDGE_FUZZ_CASES`, else `default` (what
/// `make test` runs). `make fuzz` sets it high.
pub fn cases(default: u32) -> u32 {
    cases_from("ISSUEBRIDGE_FUZZ_CASES", default)
}

/// Requests per property of the HTTP-level fuzzers, which go through the
/// router and the store: `ISSUEBRIDGE_FUZZ_HTTP_CASES`, else `default`.
pub fn http_cases(default: u32) -> u32 {
    cases_from("ISSUEBRIDGE_FUZZ_HTTP_CASES", default)
}

fn cases_from(var: &str, default: u32) -> u32 {
    std::env::var(var).ok().and_then(|n| n.parse().ok()).unwrap_or(default)
}

/// The configuration every property uses: `cases(default)` cases, failures
/// printed (shrunk) rather than written into the source tree.
pub fn config(default: u32) -> Config {
    Config {
        cases: cases(default),
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        max_shrink_iters: 2_000,
        ..Config::default()
    }
}

/// Keys Sentry's payloads and component requests use, so generated objects
/// reach past the first missing field.
pub const KEYS: &[&str] = &[
    "action",
    "installation",
    "uuid",
    "data",
    "actor",
    "type",
    "id",
    "name",
    "issue",
    "error",
    "event",
    "comment",
    "comment_id",
    "issue_id",
    "project_slug",
    "timestamp",
    "title",
    "culprit",
    "status",
    "statusDetails",
    "assignee",
    "email",
    "assignedTo",
    "project",
    "slug",
    "shortId",
    "permalink",
    "web_url",
    "url",
    "issue_url",
    "firstSeen",
    "lastSeen",
    "count",
    "userCount",
    "level",
    "metadata",
    "triggered_rule",
    "issue_alert",
    "settings",
    "value",
    "label",
    "metric_alert",
    "alert_rule",
    "triggers",
    "actions",
    "sentry_app_id",
    "sentry_app_installation_uuid",
    "description_text",
    "description_title",
    "fields",
    "installationId",
    "issueId",
    "webUrl",
    "resolution_type",
    "groupID",
    "event_id",
    "exception",
    "values",
    "stacktrace",
    "frames",
    "filename",
    "abs_path",
    "lineno",
    "tags",
    "code",
    "app",
    "organization",
    "team",
    "identifier",
];

/// Text as Sentry or an attacker might send it: ids, uuids, slugs, dates,
/// paths, template placeholders, markup, and anything at all.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[0-9]{1,20}",
        "[a-z0-9_-]{1,40}",
        "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        "[A-Z]{1,6}-[0-9]{1,6}",
        "20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})?",
        "(webpack|app|file|https?|javascript|data)?:?/{0,3}[a-zA-Z0-9._/\\\\~%?#-]{0,60}",
        "[a-z]+@[a-z]+\\.[a-z]{2,4}",
        "\\{(title|culprit|project|level|rule|other)\\}",
        "<script>[a-z]{0,8}</script>|\\[x\\]\\(javascript:[a-z]*\\)|&#[0-9]{1,6};",
        ".{0,64}",
        any::<String>(),
    ]
}

/// A JSON scalar: every type Sentry has sent where another was expected.
pub fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<u64>().prop_map(|n| Value::Number(n.into())),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        text().prop_map(Value::String),
    ]
}

/// JSON up to a few levels deep whose objects mostly use Sentry's keys.
pub fn json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![4 => proptest::sample::select(KEYS).prop_map(str::to_owned), 1 => text()];
    scalar().prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// An envelope as Sentry sends it (`action`, `installation`, `data`,
/// `actor`), its parts generated, sometimes missing or of the wrong type.
pub fn envelope() -> impl Strategy<Value = Value> {
    let resource =
        proptest::sample::select(&["issue", "error", "comment", "event", "metric_alert", "installation"][..]);
    (text(), json(), resource, json(), json()).prop_map(|(action, payload, resource, installation, actor)| {
        let mut data = Map::new();
        data.insert(resource.to_owned(), payload);
        let mut envelope = Map::new();
        envelope.insert("action".into(), Value::String(action));
        envelope.insert("installation".into(), installation);
        envelope.insert("data".into(), Value::Object(data));
        envelope.insert("actor".into(), actor);
        Value::Object(envelope)
    })
}

/// Bodies: generated JSON, Sentry-shaped envelopes, and arbitrary bytes.
pub fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => envelope().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        2 => json().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        1 => proptest::collection::vec(any::<u8>(), 0..256),
    ]
}
