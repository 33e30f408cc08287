use axum::body::Body;
use axum::http::{Request, StatusCode};
use issuebridge::on_both_stores;
use issuebridge::ticket::TicketSummary;
use issuebridge_app::api::{ListTickets, LoadConsoleInfo};
use leptos::server_fn::ServerFn;

use crate::helpers::{spawn_app, spawn_app_with};

on_both_stores!(board_is_server_rendered_from_the_store, |db| async move {
    let app = spawn_app(db).await;
    let page = app.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.content_type.as_deref(), Some("text/html; charset=utf-8"));
    let html = page.body;
    assert!(html.contains("<title>Board · issuebridge</title>"), "{html}");
    for title in
        ["ConnectionResetError in payment webhook", "Slow query on /api/orders", "ZeroDivisionError in invoice totals"]
    {
        assert!(html.contains(title), "{title} missing from the board");
    }
    assert!(html.contains("4 tickets"));
    assert!(html.contains(r#"id="ticket-filter""#));
    for link in [r#"href="/deliveries""#, r#"href="/installations""#, r#"href="/settings""#] {
        assert!(html.contains(link), "navigation lacks {link}");
    }
    assert!(html.contains("Demo mode"));
    // The page loads the front end that hydrates it.
    assert!(html.contains("/pkg/issuebridge.js"));
    assert!(html.contains("/pkg/issuebridge.css"));
});

on_both_stores!(server_function_lists_tickets_over_http, |db| async move {
    let app = spawn_app(db).await;
    let request = Request::post(ListTickets::PATH)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::empty())
        .unwrap();
    let answer = app.send(request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let tickets: Vec<TicketSummary> = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(tickets.len(), 4);
    assert!(tickets.iter().all(|t| t.org_slug == "demo-org" && t.linked_issues == 1));
    // Most recently changed first.
    assert!(tickets.windows(2).all(|w| (w[0].updated_at_ms, w[0].id) >= (w[1].updated_at_ms, w[1].id)));
});

on_both_stores!(installations_page_lists_the_demo_organization, |db| async move {
    let app = spawn_app(db).await;
    let page = app.get("/installations").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("demo-org"));
    assert!(page.body.contains(issuebridge::demo::DEMO_INSTALLATION));
});

on_both_stores!(settings_never_show_secrets, |db| async move {
    let app = spawn_app_with(
        db,
        &[
            ("SENTRY_CLIENT_ID", "client-id-123"),
            ("SENTRY_CLIENT_SECRET", "very-secret-client-secret"),
            ("SENTRY_CLIENT_SECRET_PREVIOUS", "older-secret"),
        ],
    )
    .await;
    let page = app.get("/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("client-id-123"));
    assert!(page.body.contains("connected to Sentry"));
    assert!(!page.body.contains("very-secret-client-secret"));
    assert!(!page.body.contains("older-secret"));
    assert!(!page.body.contains(crate::helpers::TEST_SECRET_KEY));

    let request = Request::post(LoadConsoleInfo::PATH)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::empty())
        .unwrap();
    let answer = app.send(request).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(!answer.body.contains("very-secret-client-secret"));
    // Connected mode seeds no demo data.
    assert!(app.state.store.list_tickets(10).await.unwrap().is_empty());
});

on_both_stores!(unknown_pages_answer_404_inside_the_console, |db| async move {
    let app = spawn_app(db).await;
    let page = app.get("/no-such-page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("Not found"));
    assert!(page.body.contains(r#"href="/settings""#));
});

on_both_stores!(static_files_come_from_the_site_root, |db| async move {
    let app = spawn_app(db).await;
    let pkg = app.data_dir.path().join("site/pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("issuebridge.css"), "body{}").unwrap();
    let answer = app.get("/pkg/issuebridge.css").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "body{}");
    assert_eq!(answer.content_type.as_deref(), Some("text/css"));
    // No way out of the site root.
    assert_ne!(app.get("/pkg/../../secret.key").await.status, StatusCode::OK);
});
