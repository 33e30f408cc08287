//! Hostile requests through the real router, on both stores: signed and
//! unsigned webhooks with generated bodies and resource names, generated
//! component requests and stacktrace links. Nothing may answer 5xx, and the
//! worker must apply or refuse every stored delivery without a panic.
//! `make test` sends a few dozen of each; `make fuzz` many more.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use issuebridge::fuzz::{body, config, http_cases, json, text};
use issuebridge::on_both_stores;
use issuebridge::sentry::signature::sign;
use issuebridge::store::testing::TestDatabase;
use issuebridge::store::Store;
use issuebridge_server::sim::Simulator;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::Value;

use crate::helpers::{fixture_corpus, follow_redirect, spawn_app_with_sim, TestApp};

/// `n` values of `strategy`. Generated up front, without shrinking: a
/// failure prints the request whole.
fn generate<S: Strategy>(strategy: S, n: u32) -> Vec<S::Value> {
    let mut runner = TestRunner::new(config(n));
    (0..n).map(|_| strategy.new_tree(&mut runner).expect("a value").current()).collect()
}

/// An app with acme installed, and that installation's uuid.
async fn installed(db: TestDatabase) -> (TestApp, Simulator, String) {
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    assert_eq!(follow_redirect(&app, &sim, &pending).await.status, StatusCode::OK);
    (app, sim, pending.installation)
}

/// Points a generated body at `installation` when it is an envelope (or
/// a component body), so it reaches the handlers rather than waiting.
fn addressed(body: Vec<u8>, installation: &str, readdress: bool) -> Vec<u8> {
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(mut map)) if readdress => {
            map.insert("installation".into(), serde_json::json!({ "uuid": installation }));
            map.insert("installationId".into(), Value::String(installation.to_owned()));
            serde_json::to_vec(&Value::Object(map)).unwrap()
        }
        _ => body,
    }
}

/// Replaces the leaves of `value` that `picks` name (by their position in
/// a walk, modulo the number of leaves) with generated scalars: Sentry's
/// real payloads, with one field after another of the wrong type or text.
fn mutate(value: &mut Value, picks: &[(usize, Value)]) {
    fn leaves(value: &mut Value) -> Vec<&mut Value> {
        match value {
            Value::Array(items) => items.iter_mut().flat_map(leaves).collect(),
            Value::Object(map) => map.values_mut().flat_map(leaves).collect(),
            leaf => vec![leaf],
        }
    }
    for (pick, replacement) in picks {
        let mut found = leaves(value);
        if !found.is_empty() {
            let index = pick % found.len();
            *found[index] = replacement.clone();
        }
    }
}

/// `select count(*) …` on either store.
async fn count(store: &Store, sql: &str) -> i64 {
    match store {
        Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

on_both_stores!(no_generated_webhook_fails_the_server_or_the_worker, |db| async move {
    let (app, sim, installation) = installed(db).await;
    let secret = sim.app().client_secret.clone();
    let resources = ["issue", "error", "comment", "event_alert", "metric_alert", "installation", "seer", ""];
    let inputs =
        generate((body(), 0..resources.len(), any::<bool>(), prop::bool::weighted(0.9), text()), http_cases(48));
    for (body, resource, readdress, signed, timestamp) in inputs {
        let body = addressed(body, &installation, readdress);
        let signature = if signed { sign(secret.as_bytes(), &body) } else { format!("sha256={}", "0".repeat(64)) };
        let request = Request::post("/sentry/webhook")
            .header("content-type", "application/json")
            .header("sentry-hook-resource", resources[resource])
            .header("sentry-hook-signature", signature)
            .header("sentry-hook-timestamp", timestamp.chars().filter(|c| c.is_ascii_graphic()).collect::<String>())
            .body(Body::from(body.clone()))
            .unwrap();
        let answer = app.send(request).await;
        let expected: &[u16] = if signed { &[200, 400] } else { &[401] };
        assert!(
            expected.contains(&answer.status.as_u16()),
            "{} ({}signed, resource {:?}): {}",
            answer.status,
            if signed { "" } else { "un" },
            resources[resource],
            String::from_utf8_lossy(&body)
        );
    }
    // The worker takes each stored delivery to an end (or a later retry).
    while issuebridge::pipeline::worker::run_once(&app.state).await.expect("the worker runs") > 0 {}
    let store = &app.state.store;
    assert_eq!(
        count(store, "select count(*) from delivery where state = 'processing'").await,
        0,
        "left half-processed"
    );
    // Refused as not Sentry's payload is fine; refused by the database
    // (text it cannot store) would lose a delivery Sentry sent.
    let store_errors = count(store, "select count(*) from delivery where last_error like '%database error%'").await;
    assert_eq!(store_errors, 0, "the store refused what a handler wrote");
    let handled = count(store, "select count(*) from delivery where state in ('processed', 'ignored', 'dead')").await;
    assert!(handled > 0, "no generated delivery reached a handler");
});

on_both_stores!(sentrys_payloads_with_fields_gone_wrong_apply_or_are_refused, |db| async move {
    let (app, sim, installation) = installed(db).await;
    let secret = sim.app().client_secret.clone();
    let corpus: Vec<(String, Value)> = fixture_corpus()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("service_hook") && !name.starts_with("installation"))
        .map(|(name, bytes)| (name.split('.').next().unwrap().to_owned(), serde_json::from_slice(&bytes).unwrap()))
        .collect();
    let picks = proptest::collection::vec((any::<usize>(), issuebridge::fuzz::scalar()), 1..4);
    for (which, picks) in generate((0..corpus.len(), picks), http_cases(48)) {
        let (resource, mut payload) = corpus[which].clone();
        mutate(&mut payload, &picks);
        payload["installation"] = serde_json::json!({ "uuid": installation });
        let body = serde_json::to_vec(&payload).unwrap();
        let request = Request::post("/sentry/webhook")
            .header("content-type", "application/json")
            .header("sentry-hook-resource", resource.as_str())
            .header("sentry-hook-signature", sign(secret.as_bytes(), &body))
            .body(Body::from(body.clone()))
            .unwrap();
        let answer = app.send(request).await;
        assert!(matches!(answer.status.as_u16(), 200 | 400), "{}: {}", answer.status, String::from_utf8_lossy(&body));
    }
    while issuebridge::pipeline::worker::run_once(&app.state).await.expect("the worker runs") > 0 {}
    let store = &app.state.store;
    let sql = "select count(*) from delivery where state = 'processing' or last_error like '%database error%'";
    assert_eq!(count(store, sql).await, 0, "a delivery left half-processed, or refused by the store");
    let processed = count(store, "select count(*) from delivery where state = 'processed'").await;
    assert!(processed > 0, "no mutated payload was applied: the mutations never reach the handlers");
});

on_both_stores!(no_generated_component_request_fails_the_server, |db| async move {
    let (app, sim, installation) = installed(db).await;
    let secret = sim.app().client_secret.clone();
    let paths = [
        issuebridge::components::definition::uri::ISSUE_LINK_CREATE,
        issuebridge::components::definition::uri::ISSUE_LINK_LINK,
        issuebridge::components::definition::uri::ALERT_RULE_ACTION,
    ];
    for (body, path, readdress) in generate((body(), 0..paths.len(), any::<bool>()), http_cases(48)) {
        let body = addressed(body, &installation, readdress);
        let request = Request::post(paths[path])
            .header("content-type", "application/json")
            .header("sentry-app-signature", sign(secret.as_bytes(), &body))
            .body(Body::from(body.clone()))
            .unwrap();
        let answer = app.send(request).await;
        assert!(
            !answer.status.is_server_error(),
            "{} {}: {}",
            answer.status,
            paths[path],
            String::from_utf8_lossy(&body)
        );
    }

    let selects = ["/sentry/select/teams", "/sentry/select/assignees", "/sentry/select/tickets", "/sentry/select/x"];
    let queries = generate((0..selects.len(), text(), json(), text(), any::<bool>()), http_cases(48));
    for (select, typed, dependent, project, readdress) in queries {
        let mut url = url::Url::parse("http://issuebridge.test").unwrap();
        url.set_path(selects[select]);
        url.query_pairs_mut()
            .append_pair("installationId", if readdress { &installation } else { &typed })
            .append_pair("projectSlug", &project)
            .append_pair("query", &typed)
            .append_pair("dependentData", &dependent.to_string());
        let request = Request::get(format!("{}?{}", url.path(), url.query().unwrap_or_default()))
            .header("sentry-app-signature", sign(secret.as_bytes(), b""))
            .body(Body::empty())
            .unwrap();
        let answer = app.send(request).await;
        assert!(!answer.status.is_server_error(), "{} for {url}", answer.status);
    }

    for (filename, line, project) in generate((text(), text(), text()), http_cases(48)) {
        let mut url = url::Url::parse("http://issuebridge.test/sentry/stacktrace-link").unwrap();
        url.query_pairs_mut()
            .append_pair("installationId", &installation)
            .append_pair("projectSlug", &project)
            .append_pair("filename", &filename)
            .append_pair("lineNo", &line);
        let answer = app.get(&format!("{}?{}", url.path(), url.query().unwrap_or_default())).await;
        assert!(!answer.status.is_server_error(), "{} for {url}", answer.status);
    }
});
