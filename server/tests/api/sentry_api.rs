//! The typed Sentry API client against the simulator: the calls of docs/sentry-protocol.md
//! §4, rate limits, retries, timeouts and redirects.

use std::time::{Duration, Instant};

use issuebridge::config::Secret;
use issuebridge::domain::ids::{InstallationUuid, OrgSlug, SentryIssueId};
use issuebridge::sentry::api::{ExternalIssueLink, RetryPolicy, SentryApp, SentryClient, SentryError};
use issuebridge_server::sim::Simulator;
use serde_json::json;

struct Setup {
    sim: Simulator,
    client: SentryClient,
    token: Secret,
    installation: InstallationUuid,
    org: OrgSlug,
    issue: SentryIssueId,
}

/// A client with quick retries, an installed organization `acme` with a
/// non-expiring token, and one issue.
async fn setup() -> Setup {
    let sim = Simulator::start(Default::default()).await.unwrap();
    let (installation, token) = sim.create_internal_installation("acme");
    let issue = sim.create_issue("acme", "web", "TypeError in checkout");
    let client = SentryClient::new(SentryApp {
        base_url: sim.base_url().clone(),
        client_id: sim.app().client_id.clone(),
        client_secret: Secret::new(sim.app().client_secret.clone()),
    })
    .with_policy(RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        max_rate_limit_wait: Duration::from_secs(5),
        request_timeout: Duration::from_millis(500),
    });
    Setup {
        client,
        token: Secret::new(token),
        installation: InstallationUuid::parse(&installation).unwrap(),
        org: OrgSlug::parse("acme").unwrap(),
        issue: SentryIssueId::parse(&issue).unwrap(),
        sim,
    }
}

#[tokio::test]
async fn issues_read_and_update() {
    let s = setup().await;
    let issue = s.client.get_issue(&s.token, &s.org, &s.issue).await.unwrap();
    assert_eq!(issue.title, "TypeError in checkout");
    assert_eq!(issue.short_id.as_deref(), Some("WEB-1"));
    assert_eq!(issue.status, "unresolved");

    let resolved = s.client.update_issue(&s.token, &s.org, &s.issue, &json!({"status": "resolved"})).await.unwrap();
    assert_eq!(resolved.status, "resolved");
    assert_eq!(s.sim.issue(s.issue.as_str()).unwrap().status, "resolved");

    let refused = s.client.update_issue(&s.token, &s.org, &s.issue, &json!({"status": "closed"})).await.unwrap_err();
    assert_eq!(refused.status(), Some(400));
    let other_org = OrgSlug::parse("globex").unwrap();
    assert_eq!(s.client.get_issue(&s.token, &other_org, &s.issue).await.unwrap_err().status(), Some(403));
}

#[tokio::test]
async fn comments_round_trip() {
    let s = setup().await;
    let comment = s.client.add_comment(&s.token, &s.org, &s.issue, "Looking into it").await.unwrap();
    assert_eq!(comment.data.text, "Looking into it");
    let duplicate = s.client.add_comment(&s.token, &s.org, &s.issue, "Looking into it").await.unwrap_err();
    assert!(matches!(&duplicate, SentryError::Refused { status: 400, detail } if detail.contains("already posted")));

    s.client.update_comment(&s.token, &s.org, &s.issue, &comment.id, "Fixed in 1.2").await.unwrap();
    let listed = s.client.list_comments(&s.token, &s.org, &s.issue).await.unwrap();
    assert_eq!(listed.iter().map(|c| c.data.text.as_str()).collect::<Vec<_>>(), ["Fixed in 1.2"]);
    s.client.delete_comment(&s.token, &s.org, &s.issue, &comment.id).await.unwrap();
    assert!(s.sim.comments_on(s.issue.as_str()).is_empty());
}

#[tokio::test]
async fn external_issues_link_and_unlink() {
    let s = setup().await;
    let link = ExternalIssueLink {
        issue_id: s.issue.as_str().parse().unwrap(),
        web_url: "https://issuebridge.test/tickets/7".into(),
        project: "IB".into(),
        identifier: "7".into(),
    };
    let linked = s.client.link_external_issue(&s.token, &s.installation, &link).await.unwrap();
    assert_eq!(linked.display_name, "IB#7");
    assert_eq!(linked.issue_id, s.issue.as_str());
    s.client.unlink_external_issue(&s.token, &s.installation, &linked.id).await.unwrap();
    assert!(s.sim.external_issues().is_empty());

    let unknown = ExternalIssueLink { issue_id: 1, ..link.clone() };
    assert_eq!(
        s.client.link_external_issue(&s.token, &s.installation, &unknown).await.unwrap_err().status(),
        Some(404)
    );
    let bad_url = ExternalIssueLink { web_url: "ftp://x".into(), ..link };
    assert_eq!(
        s.client.link_external_issue(&s.token, &s.installation, &bad_url).await.unwrap_err().status(),
        Some(400)
    );
}

#[tokio::test]
async fn the_rate_limit_holds_calls_back_instead_of_failing_them() {
    let s = setup().await;
    s.sim.set_rate_limit(2, 1000);
    let started = Instant::now();
    for _ in 0..5 {
        s.client.get_issue(&s.token, &s.org, &s.issue).await.expect("rate limited calls wait, then succeed");
    }
    // Five calls at two per second need at least two windows.
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_sentry_asks_for() {
    let s = setup().await;
    let path = format!("/issues/{}/", s.issue);
    s.sim.fail_next("GET", &path, 429, 2);
    s.client.get_issue(&s.token, &s.org, &s.issue).await.unwrap();
    assert_eq!(s.sim.requests("GET", &path), 3);
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_given_up() {
    let s = setup().await;
    let path = format!("/issues/{}/", s.issue);
    s.sim.fail_next("GET", &path, 502, 2);
    s.client.get_issue(&s.token, &s.org, &s.issue).await.unwrap();
    assert_eq!(s.sim.requests("GET", &path), 3);

    s.sim.fail_next("GET", &path, 500, 4);
    let error = s.client.get_issue(&s.token, &s.org, &s.issue).await.unwrap_err();
    assert!(matches!(error, SentryError::Unavailable(_)), "{error}");
    assert_eq!(s.sim.requests("GET", &path), 3 + 4, "one try and three retries");

    // A 4xx is an answer, not a failure: never retried.
    s.sim.fail_next("GET", &path, 404, 1);
    assert_eq!(s.client.get_issue(&s.token, &s.org, &s.issue).await.unwrap_err().status(), Some(404));
    assert_eq!(s.sim.requests("GET", &path), 8);
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let s = setup().await;
    let path = format!("/issues/{}/", s.issue);
    // Ten times the 500 ms per-attempt timeout: only the timeout ends the
    // first attempt before its answer comes.
    s.sim.delay_next("GET", &path, 5_000, 1);
    let started = Instant::now();
    s.client.get_issue(&s.token, &s.org, &s.issue).await.unwrap();
    let took = started.elapsed();
    assert_eq!(s.sim.requests("GET", &path), 1, "the slow one is still sleeping when the retry lands");
    // Counted on arrival: the slow attempt, given up on, and its retry.
    assert_eq!(s.sim.arrivals("GET", &path), 2, "the slow attempt was abandoned and retried");
    assert!(took >= Duration::from_millis(500), "the first attempt waited out its timeout, not less: {took:?}");
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let s = setup().await;
    let path = format!("/issues/{}/", s.issue);
    s.sim.fail_next("GET", &path, 302, 1);
    let error = s.client.get_issue(&s.token, &s.org, &s.issue).await.unwrap_err();
    assert!(matches!(&error, SentryError::BadResponse(why) if why.contains("redirect")), "{error}");
}

#[tokio::test]
async fn service_hooks_are_registered_listed_delivered_and_removed() {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    use issuebridge::sentry::signature::Signature;
    use std::sync::{Arc, Mutex};

    let s = setup().await;
    let captured: Arc<Mutex<Option<(HeaderMap, Bytes)>>> = Arc::default();
    let store = captured.clone();
    let receiver = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let store = store.clone();
        async move {
            *store.lock().unwrap() = Some((headers, body));
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = url::Url::parse(&format!("http://{}/sentry/service-hook", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let hook = s.client.create_service_hook(&s.token, &s.org, "web", &hook_url, &["event.created"]).await.unwrap();
    assert_eq!(hook.events, ["event.created"]);
    assert_eq!(hook.status, "active");
    let listed = s.client.list_service_hooks(&s.token, &s.org, "web").await.unwrap();
    assert_eq!(listed.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), [hook.id.as_str()]);

    let delivery = s.sim.service_hook_delivery(&hook.id, s.issue.as_str());
    assert_eq!(delivery.send().await.unwrap().status(), 200);
    let (headers, body) = captured.lock().unwrap().take().unwrap();
    let guid = headers["x-servicehook-guid"].to_str().unwrap();
    assert_eq!(guid.len(), 32);
    let signature = Signature::parse(headers["x-servicehook-signature"].to_str().unwrap()).unwrap();
    assert!(signature.verifies(hook.secret.expose().as_bytes(), &body), "signed with the hook's own secret");
    assert!(!signature.verifies(s.sim.app().client_secret.as_bytes(), &body), "not with the app's");
    let payload: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["group"]["id"], s.issue.as_str());
    assert_eq!(payload["project"]["slug"], "web");

    let bad = s.client.create_service_hook(&s.token, &s.org, "web", &hook_url, &["issue.created"]).await.unwrap_err();
    assert_eq!(bad.status(), Some(400));
    s.client.delete_service_hook(&s.token, &s.org, "web", &hook.id).await.unwrap();
    assert!(s.client.list_service_hooks(&s.token, &s.org, "web").await.unwrap().is_empty());
    assert_eq!(s.client.delete_service_hook(&s.token, &s.org, "web", &hook.id).await.unwrap_err().status(), Some(404));
}
