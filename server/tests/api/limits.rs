//! Holding under hostile load, on a real listening server: a head that
//! never ends, a body that never ends, more requests in flight than
//! allowed, and clients calling the rate-limited routes too often.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use issuebridge::on_both_stores;
use issuebridge::store::testing::TestDatabase;
use issuebridge_server::startup::Application;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::helpers::{spawn_app_with, test_config};

/// A running server with `extra` configuration, stopped when the returned
/// sender is dropped.
async fn serve(
    db: &TestDatabase,
    data_dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> (SocketAddr, oneshot::Sender<()>) {
    let app = Application::build(test_config(db, data_dir, extra)).await.expect("a server");
    let addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_with_grace(
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(1),
    ));
    (addr, stop)
}

/// Everything the server writes on `stream` until it closes it (or 20 s).
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the server still holds the connection open after 20 s");
    String::from_utf8_lossy(&received).into_owned()
}

on_both_stores!(a_client_that_never_finishes_its_head_is_disconnected, |db: TestDatabase| async move {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _stop) = serve(&db, dir.path(), &[("ISSUEBRIDGE_HEADER_TIMEOUT_SECS", "1")]).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A client that sends its head in time is answered as always.
    let healthy = reqwest::get(format!("http://{addr}/healthz")).await.unwrap();
    assert_eq!(healthy.status(), 200);
});

on_both_stores!(past_the_in_flight_limit_requests_get_an_immediate_503, |db: TestDatabase| async move {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _stop) =
        serve(&db, dir.path(), &[("ISSUEBRIDGE_MAX_IN_FLIGHT", "1"), ("ISSUEBRIDGE_REQUEST_TIMEOUT_SECS", "2")]).await;
    // A webhook whose body never arrives in full holds the one place, and
    // until then others are refused at once and told when to retry. On a
    // loaded machine the slow request can run out of time before a poll
    // lands inside its window: then it proves nothing, so start again.
    let client = reqwest::Client::new();
    let mut polls = 0;
    let mut held = None;
    'attempt: for _ in 0..3 {
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(
            b"POST /sentry/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
              Sentry-Hook-Resource: issue\r\nSentry-Hook-Signature: 00\r\nContent-Length: 1000\r\n\r\n{\"action\"",
        )
        .await
        .unwrap();
        let polling_since = Instant::now();
        while polling_since.elapsed() < Duration::from_secs(10) {
            let answer = client.get(format!("http://{addr}/healthz")).send().await.unwrap();
            polls += 1;
            if answer.status() == StatusCode::SERVICE_UNAVAILABLE {
                held = Some((slow, answer));
                break 'attempt;
            }
            if !matches!(slow.try_read(&mut [0; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock) {
                continue 'attempt; // answered or closed before any poll saw it in flight
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let (mut slow, refused) =
        held.unwrap_or_else(|| panic!("no 503 in {polls} polls while three slow requests each held the only place"));
    assert_eq!(refused.headers()["retry-after"], "1");
    assert!(refused.text().await.unwrap().contains("limit of requests in flight"));

    // The slow body runs out of time: 503 (Sentry retries it), and the
    // place is free again.
    let answer = read_until_closed(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("took longer than 2 s"), "{answer}");
    let healthy = client.get(format!("http://{addr}/healthz")).send().await.unwrap();
    assert_eq!(healthy.status(), 200);
});

on_both_stores!(setup_and_login_routes_are_rate_limited_per_client, |db: TestDatabase| async move {
    let app = spawn_app_with(
        db,
        &[("ISSUEBRIDGE_RATE_LIMIT_PER_MINUTE", "6"), ("ISSUEBRIDGE_CLIENT_IP_HEADER", "X-Forwarded-For")],
    )
    .await;
    let from = |client: &str, path: &str| {
        Request::get(path).header("x-forwarded-for", format!("198.51.100.1, {client}")).body(Body::empty()).unwrap()
    };
    // A burst of two, then one every ten seconds.
    for path in ["/sentry/setup?code=x&installationId=y", "/auth/login"] {
        assert_ne!(app.send(from("203.0.113.1", path)).await.status, StatusCode::TOO_MANY_REQUESTS, "{path}");
    }
    for path in
        ["/sentry/setup?code=x&installationId=y", "/auth/login", "/auth/callback?code=x&state=y", "/auth/link/guess"]
    {
        let answer = app.send(from("203.0.113.1", path)).await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS, "{path}");
        let wait: u64 = answer.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=10).contains(&wait), "{wait}");
        assert!(answer.body.contains("Too many requests"), "{}", answer.body);
    }
    // Another client has its own allowance; pages that call nobody, and
    // Sentry's signed routes, are not limited.
    assert_ne!(app.send(from("203.0.113.2", "/auth/login")).await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.send(from("203.0.113.1", "/login")).await.status, StatusCode::OK);
    assert_eq!(app.send(from("203.0.113.1", "/healthz")).await.status, StatusCode::OK);
});
