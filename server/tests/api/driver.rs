//! The simulator's drivers produce what Sentry sends, byte for byte.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::Router;
use issuebridge::sentry::signature::Signature;
use issuebridge_server::sim::driver::{installation_data, user_actor};
use issuebridge_server::sim::{SimApp, Simulator};
use serde_json::json;
use url::Url;

const SECRET: &str = "test-client-secret";

/// The §1.3 vector of docs/sentry-protocol.md for `installation.created`.
const INSTALLATION_VECTOR: &str = r#"{"action":"created","installation":{"uuid":"7a485448-a9e2-4c85-8a3c-4f44175783c9"},"data":{"installation":{"app":{"uuid":"64bf2cf4-37ca-4365-8dd3-6b6e56d741b8","slug":"my-app","sentryAppId":1},"organization":{"slug":"example","id":2},"uuid":"7a485448-a9e2-4c85-8a3c-4f44175783c9","status":"pending","code":"abc123"}},"actor":{"type":"user","id":1,"name":"Jane"}}"#;

async fn contract_sim() -> Simulator {
    let app = SimApp {
        uuid: "64bf2cf4-37ca-4365-8dd3-6b6e56d741b8".into(),
        slug: "my-app".into(),
        client_id: "client".into(),
        client_secret: SECRET.into(),
        verify_install: true,
    };
    Simulator::start(app).await.unwrap()
}

type Captured = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;

/// A receiver that records every request and answers 200.
async fn receiver() -> (Url, Captured) {
    let captured: Captured = Arc::default();
    let store = captured.clone();
    let router = Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
        let store = store.clone();
        async move {
            store.lock().unwrap().push((uri.to_string(), headers, body));
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/sentry/webhook?tenant=a", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, captured)
}

#[tokio::test]
async fn webhooks_are_serialized_and_signed_exactly_as_sentry_does() {
    let sim = contract_sim().await;
    let data = installation_data(
        sim.app(),
        1,
        "example",
        2,
        "7a485448-a9e2-4c85-8a3c-4f44175783c9",
        "pending",
        Some("abc123"),
    );
    let (url, captured) = receiver().await;
    let request = sim.webhook(
        &url,
        "installation",
        "created",
        "7a485448-a9e2-4c85-8a3c-4f44175783c9",
        data,
        user_actor(1, "Jane"),
    );
    assert_eq!(request.body, INSTALLATION_VECTOR.as_bytes());
    assert_eq!(
        request.header("Sentry-Hook-Signature"),
        Some("d7f446f8d67f9042266bf676b604715b574646bfff564ee19bf0896a1b9fe81a")
    );

    assert_eq!(request.send().await.unwrap().status(), 200);
    let (uri, headers, body) = captured.lock().unwrap().pop().unwrap();
    assert_eq!(uri, "/sentry/webhook?tenant=a", "posted to the webhook URL as configured");
    assert_eq!(body, INSTALLATION_VECTOR.as_bytes());
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["sentry-hook-resource"], "installation");
    let request_id = headers["request-id"].to_str().unwrap();
    assert_eq!(request_id.len(), 32);
    assert!(request_id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert!(headers["sentry-hook-timestamp"].to_str().unwrap().parse::<i64>().is_ok());
    assert!(headers.get("sentry-app-signature").is_none(), "webhooks never carry the component header");
    let signature = Signature::parse(headers["sentry-hook-signature"].to_str().unwrap()).unwrap();
    assert!(signature.verifies(SECRET.as_bytes(), &body));
}

#[tokio::test]
async fn retries_carry_a_new_request_id_but_the_same_body() {
    let sim = contract_sim().await;
    let pending = sim.create_installation("example");
    let url = Url::parse("http://127.0.0.1:9/sentry/webhook").unwrap();
    let first = sim.installation_created(&url, &pending, user_actor(1, "Jane"));
    let retry = sim.installation_created(&url, &pending, user_actor(1, "Jane"));
    assert_eq!(first.body, retry.body);
    assert_ne!(first.header("Request-ID"), retry.header("Request-ID"));
    let body: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(body["data"]["installation"]["code"], pending.code.as_str());
    assert_eq!(body["data"]["installation"]["status"], "pending");
}

#[tokio::test]
async fn component_requests_use_the_app_signature_header() {
    let sim = contract_sim().await;
    let webhook = Url::parse("https://issuebridge.test/sentry/webhook?keep=1#frag").unwrap();

    // Select: a GET signed over the empty string, query replaced.
    let select = sim.select_request(
        &webhook,
        "/sentry/select/boards",
        "7a485448-a9e2-4c85-8a3c-4f44175783c9",
        Some("web"),
        Some("bu g"),
        None,
    );
    assert_eq!(select.method, reqwest::Method::GET);
    assert!(select.body.is_empty());
    assert_eq!(
        select.header("Sentry-App-Signature"),
        Some("cff7ccd625537ce1a726fd29f7fc4beca8a15c96b6c9ee9b9461e149f57d4e88")
    );
    assert_eq!(select.header("Content-Type"), Some("application/json"));
    assert_eq!(
        select.url.as_str(),
        "https://issuebridge.test/sentry/select/boards?installationId=7a485448-a9e2-4c85-8a3c-4f44175783c9&projectSlug=web&query=bu+g#frag"
    );
    assert!(select.header("Sentry-Hook-Signature").is_none());

    // Alert-rule action: keeps the webhook URL's query; the contract vector.
    let body = json!({"fields": [{"name": "title", "value": "An Alert"}], "installationId": "7a485448-a9e2-4c85-8a3c-4f44175783c9"});
    let alert = sim.alert_rule_action_request(&webhook, "/sentry/alert-rule-action", &body);
    assert_eq!(
        alert.header("Sentry-App-Signature"),
        Some("1be335e9946f0917c755f5ffb88b8767881ba12d9d9685241ae7c733213444da")
    );
    assert_eq!(alert.url.query(), Some("keep=1"));

    // Issue link: drops the webhook URL's path, query and fragment.
    let link = sim.issue_link_request(&webhook, "/sentry/issue-link/create", &json!({"fields": {}}));
    assert_eq!(link.url.as_str(), "https://issuebridge.test/sentry/issue-link/create");
}

#[tokio::test]
async fn every_webhook_resource_has_sentrys_types() {
    use issuebridge_server::sim::driver::{isoformat, sentry_actor};
    let sim = contract_sim().await;
    let pending = sim.create_installation("example");
    let installation = pending.installation.as_str();
    let issue = sim.create_issue("example", "web", "TypeError: héllo");
    let url = Url::parse("http://127.0.0.1:9/sentry/webhook").unwrap();
    let parse = |request: &issuebridge_server::sim::driver::SignedRequest| -> serde_json::Value {
        let signature = Signature::parse(request.header("Sentry-Hook-Signature").unwrap()).unwrap();
        assert!(signature.verifies(SECRET.as_bytes(), &request.body));
        assert!(request.body.is_ascii(), "ensure_ascii output");
        serde_json::from_slice(&request.body).unwrap()
    };

    let created = parse(&sim.issue_webhook(&url, installation, &issue, "created", sentry_actor()));
    assert_eq!(created["action"], "created");
    assert_eq!(created["installation"]["uuid"], installation);
    let group = &created["data"]["issue"];
    assert!(group["id"].is_string() && group["count"].is_string() && group["userCount"].is_i64());
    assert!(group["project"]["id"].is_string());
    assert!(group["url"].is_string() && group["web_url"].is_string() && group["project_url"].is_string());
    assert!(group["firstSeen"].as_str().unwrap().ends_with("+00:00"));
    assert_eq!(created["actor"]["id"], "sentry");

    let resolved = parse(&sim.issue_webhook(&url, installation, &issue, "resolved", user_actor(1, "Jane")));
    assert!(resolved["data"]["issue"].get("url").is_none(), "workflow webhooks carry no URLs");
    assert!(resolved["data"]["issue"]["lastSeen"].as_str().unwrap().ends_with('Z'));
    assert_eq!(resolved["data"]["resolution_type"], "now");
    assert!(resolved["actor"]["id"].is_i64());
    let assigned = parse(&sim.issue_webhook(&url, installation, &issue, "assigned", user_actor(1, "Jane")));
    assert!(assigned["data"]["assignee"]["id"].is_i64());

    let note = issuebridge_server::sim::driver::CommentRef { issue_id: &issue, comment_id: 55, text: "héllo" };
    let comment = parse(&sim.comment_webhook(&url, installation, &note, "created", user_actor(1, "Jane")));
    assert!(comment["data"]["comment_id"].is_i64() && comment["data"]["issue_id"].is_i64());
    assert_eq!(comment["data"]["comment"], "héllo");

    let error = parse(&sim.error_created(&url, installation, &issue));
    assert!(error["data"]["error"]["issue_id"].is_string() && error["data"]["error"]["project"].is_i64());
    assert!(error["data"]["error"]["datetime"].as_str().unwrap().ends_with("+00:00"));
    assert!(error["data"]["error"]["timestamp"].is_f64());

    let alert =
        parse(&sim.event_alert_triggered(&url, installation, &issue, "Checkout errors", &[("board", json!("ops"))]));
    assert!(alert["data"]["issue_alert"]["id"].is_i64());
    assert_eq!(alert["data"]["issue_alert"]["settings"][0], json!({"name": "board", "value": "ops"}));
    assert!(alert["data"]["event"]["datetime"].as_str().unwrap().ends_with('Z'));

    for action in ["open", "critical", "warning", "resolved"] {
        let metric = parse(&sim.metric_alert(&url, installation, action, "42", "Too many errors"));
        let alert = &metric["data"]["metric_alert"];
        assert!(alert["id"].is_string() && alert["status"].is_i64() && alert["alert_rule"]["id"].is_string());
        let action_record = &alert["alert_rule"]["triggers"][0]["actions"][0];
        assert_eq!(action_record["sentry_app_installation_uuid"], installation);
        assert_eq!(metric["action"], action);
    }

    assert_eq!(isoformat(1_700_000_000_000), "2023-11-14T22:13:20+00:00");
    assert_eq!(isoformat(1_700_000_000_123), "2023-11-14T22:13:20.123000+00:00");
}
