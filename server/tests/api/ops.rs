use axum::http::StatusCode;
use issuebridge::on_both_stores;
use issuebridge::store::Store;
use issuebridge_server::startup::{leptos_options, router};

use crate::helpers::{answer, spawn_app, test_config};

on_both_stores!(healthz_answers_ok, |db| async move {
    let app = spawn_app(db).await;
    let answer = app.get("/healthz").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, r#"{"status":"ok"}"#);
});

on_both_stores!(readyz_is_ready_once_migrated, |db| async move {
    let app = spawn_app(db).await;
    let answer = app.get("/readyz").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let expected = app.state.store.backend().name();
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body, serde_json::json!({ "status": "ready", "database": expected }));
});

on_both_stores!(readyz_refuses_an_unmigrated_database, |db| async move {
    let data_dir = tempfile::tempdir().unwrap();
    let config = test_config(&db, data_dir.path(), &[]);
    let store = Store::connect(&config.database_url).await.unwrap();
    let options = leptos_options(&config, config.site_addr);
    let router = router(issuebridge::AppState::new(config, store), options);

    let answer = answer(&router, get("/readyz")).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    let count = crate::helpers::migration_count();
    assert_eq!(answer.body, format!(r#"{{"error":"not ready: {count} migration(s) not applied yet"}}"#));
});

on_both_stores!(readyz_refuses_when_the_database_is_gone, |db| async move {
    let app = spawn_app(db).await;
    app.state.store.close().await;
    let answer = app.get("/readyz").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer.body.contains("database unreachable"), "{}", answer.body);
    // Liveness does not depend on the database.
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
});

on_both_stores!(metrics_count_requests_by_route_and_status, |db| async move {
    let app = spawn_app(db).await;
    app.get("/healthz").await;
    app.get("/healthz").await;
    app.get("/no/such/path/12345").await;
    let answer = app.get("/metrics").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.content_type.as_deref(), Some("text/plain; version=0.0.4; charset=utf-8"));
    let text = answer.body;
    assert!(
        text.contains(r#"issuebridge_http_requests_total{method="GET",route="/healthz",status="200"} 2"#),
        "{text}"
    );
    // Unknown paths share one label: clients cannot blow up the cardinality.
    assert!(
        text.contains(r#"issuebridge_http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(!text.contains("12345"));
    assert!(text.contains(r#"issuebridge_http_request_duration_seconds_count{route="/healthz"} 2"#), "{text}");
    assert!(
        text.contains(r#"issuebridge_http_request_duration_seconds_bucket{route="/healthz",le="+Inf"} 2"#),
        "{text}"
    );
});

on_both_stores!(made_up_methods_share_one_metrics_label, |db| async move {
    let app = spawn_app(db).await;
    // Any token is a valid method on the wire; each one must not become a
    // series of its own, printed on every scrape.
    let made_up = "X".repeat(4_000);
    for path in ["/healthz", "/no/such/path"] {
        let request =
            axum::http::Request::builder().method(made_up.as_str()).uri(path).body(axum::body::Body::empty()).unwrap();
        app.send(request).await;
    }
    let text = app.get("/metrics").await.body;
    assert!(!text.contains("XXXX"), "{text}");
    for counted in [
        r#"issuebridge_http_requests_total{method="other",route="/healthz",status="405"} 1"#,
        r#"issuebridge_http_requests_total{method="other",route="unmatched",status="404"} 1"#,
    ] {
        assert!(text.contains(counted), "{counted} missing from:\n{text}");
    }
});

fn get(path: &str) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap()
}
