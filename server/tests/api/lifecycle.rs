use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use issuebridge_server::startup::serve_until;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};

/// A router with one slow route, to have a request in flight at shutdown.
/// `started` is notified once the request is inside the handler, so a test
/// stops the server only then (a fixed sleep can lose that race on a busy
/// machine).
async fn slow_server(delay: Duration) -> (String, TcpListener, Router, Arc<Notify>) {
    let started = Arc::new(Notify::new());
    let in_handler = started.clone();
    let router = Router::new().route(
        "/slow",
        get(move || {
            let in_handler = in_handler.clone();
            async move {
                in_handler.notify_one();
                tokio::time::sleep(delay).await;
                "finished"
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slow", listener.local_addr().unwrap());
    (url, listener, router, started)
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_then_stops_accepting() {
    let (url, listener, router, started) = slow_server(Duration::from_millis(500)).await;
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_until(
        listener,
        router,
        async {
            let _ = stop_rx.await;
        },
        Duration::from_secs(10),
        Duration::from_secs(10),
    ));

    let in_flight = tokio::spawn(reqwest::get(url));
    started.notified().await;
    stop_tx.send(()).unwrap();

    let response = in_flight.await.unwrap().expect("the request in flight is answered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "finished");
    server.await.unwrap().expect("a clean stop");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still accepting after shutdown");
}

#[tokio::test]
async fn shutdown_gives_up_on_requests_after_the_grace_period() {
    let (url, listener, router, started) = slow_server(Duration::from_secs(3600)).await;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let grace = Duration::from_millis(300);
    let server = tokio::spawn(serve_until(
        listener,
        router,
        async {
            let _ = stop_rx.await;
        },
        grace,
        Duration::from_secs(10),
    ));

    let _hanging = tokio::spawn(reqwest::get(url));
    started.notified().await;
    let stopped_at = Instant::now();
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops after its grace period")
        .unwrap()
        .unwrap();
    assert!(stopped_at.elapsed() >= grace);
}
