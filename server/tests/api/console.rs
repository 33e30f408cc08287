use axum::http::StatusCode;
use issuebridge::domain::access::OrgScope;
use issuebridge::domain::ticket::TicketSummary;
use issuebridge::on_both_stores;
use issuebridge_app::api::{ListTickets, LoadConsoleInfo};
use leptos::server_fn::ServerFn;

use crate::helpers::{spawn_app, spawn_app_with};

on_both_stores!(board_is_server_rendered_from_the_store, |db| async move {
    let app = spawn_app(db).await;
    let page = app.admin().await.get("/").await;
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

// A browser that leaves before the page's end (a tab closed, a `HEAD`)
// must not leave the page behind. Leptos frees a page in its stream's last
// step; a stream dropped before it left three tasks per page waiting for
// ever, holding the page's reactive state (about 210 KB for a full board:
// `make soak` grew by 570 MB in ten minutes). Served over a real
// connection, since hyper is what drops an unread body.
on_both_stores!(a_page_left_unread_is_freed, |db| async move {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const INSTALLATION: &str = "5eed0000-0000-4000-8000-000000000001";
    let app = spawn_app(db).await;
    // A board with tickets: its list arrives after the page's shell.
    issuebridge::store::testing::add_installed(&app.state.store, INSTALLATION, "acme").await.unwrap();
    issuebridge::store::testing::seed_tickets(&app.state.store, INSTALLATION, 300).await.unwrap();
    let cookie = app.admin().await.cookie.clone().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(issuebridge_server::startup::serve_until(
        listener,
        app.router.clone(),
        async {
            let _ = stopped.await;
        },
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(10),
    ));
    let alive_tasks = || tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let before = alive_tasks();

    // `HEAD` is answered without the body being read at all: the surest way
    // to leave a page unread (a client that closes early may still find the
    // whole page written to its socket's buffer).
    for _ in 0..5 {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        // No `Host`: the site answers only its own, and a request without one passes.
        let head = format!("HEAD / HTTP/1.1\r\nCookie: {cookie}\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut first = [0u8; 512];
        let read = stream.read(&mut first).await.unwrap();
        let answer = String::from_utf8_lossy(&first[..read]);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let mut left = alive_tasks().saturating_sub(before);
    for _ in 0..500 {
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        left = alive_tasks().saturating_sub(before);
    }
    let _ = stop.send(());
    let _ = server.await;
    assert_eq!(left, 0, "tasks of pages nobody read are still waiting");
});

on_both_stores!(server_function_lists_tickets_over_http, |db| async move {
    let app = spawn_app(db).await;
    let answer = app.admin().await.call_server_fn(ListTickets::PATH).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let tickets: Vec<TicketSummary> = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(tickets.len(), 4);
    assert!(tickets.iter().all(|t| t.org_slug == "demo-org" && t.linked_issues == 1));
    // Most recently changed first.
    assert!(tickets.windows(2).all(|w| (w[0].updated_at_ms, w[0].id) >= (w[1].updated_at_ms, w[1].id)));
});

on_both_stores!(installations_page_lists_the_demo_organization, |db| async move {
    let app = spawn_app(db).await;
    let page = app.admin().await.get("/installations").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("demo-org"));
    assert!(page.body.contains("installed"));
    // Installed for real, through the simulated Sentry: it holds tokens.
    let listed = app.state.store.list_installations(&OrgScope::Everything).await.unwrap();
    assert_eq!(listed.len(), 1);
    let uuid = issuebridge::domain::ids::InstallationUuid::parse(&listed[0].uuid).unwrap();
    assert!(app.state.store.installation(&uuid).await.unwrap().unwrap().is_installed_with_tokens());
    issuebridge::installations::tokens::access_token(&app.state, &uuid).await.expect("a working token");
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
    let mut browser = app.admin().await;
    let page = browser.get("/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("client-id-123"));
    assert!(page.body.contains("connected to Sentry"));
    assert!(!page.body.contains("very-secret-client-secret"));
    assert!(!page.body.contains("older-secret"));
    assert!(!page.body.contains(crate::helpers::TEST_SECRET_KEY));

    let answer = browser.call_server_fn(LoadConsoleInfo::PATH).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(!answer.body.contains("very-secret-client-secret"));
    // Connected mode seeds no demo data.
    assert!(app.state.store.list_tickets(&OrgScope::Everything, 10).await.unwrap().is_empty());
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
    // No way out of the site root: a file beside it is not served, however
    // the way out is spelled.
    std::fs::write(app.data_dir.path().join("secret.key"), "a key outside the site root").unwrap();
    for path in
        ["/pkg/../../secret.key", "/pkg/%2e%2e/%2e%2e/secret.key", "/..%2fsecret.key", "/pkg/..%2F..%2Fsecret.key"]
    {
        let answer = app.get(path).await;
        assert_ne!(answer.status, StatusCode::OK, "{path}");
        assert!(!answer.body.contains("outside the site root"), "{path} served the file");
    }
});

on_both_stores!(demo_mode_installs_more_organizations_from_the_console, |db| async move {
    use issuebridge_app::api::InstallDemoOrganization;
    let app = spawn_app(db).await;
    let answer = app.admin().await.call_server_fn(InstallDemoOrganization::PATH).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, r#""demo-org-2""#);
    let orgs: Vec<String> = app
        .state
        .store
        .list_installations(&OrgScope::Everything)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.org_slug)
        .collect();
    assert_eq!(orgs, ["demo-org", "demo-org-2"]);
});

on_both_stores!(outside_demo_mode_there_are_no_demo_installs, |db| async move {
    use issuebridge_app::api::InstallDemoOrganization;
    let (app, _sim) = crate::helpers::spawn_app_with_sim(db).await;
    let answer = app.admin().await.call_server_fn(InstallDemoOrganization::PATH).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("only in demo mode"), "{}", answer.body);
});

on_both_stores!(demo_mode_adopts_its_installations_after_a_restart, |db| async move {
    let app = spawn_app(db).await;
    // A restart: a new process, a new (empty) simulated Sentry, the same store.
    let restarted = issuebridge_server::startup::prepare_state((*app.state.config).clone()).await.unwrap();
    let listed = restarted.store.list_installations(&OrgScope::Everything).await.unwrap();
    assert_eq!(listed.len(), 1, "no second demo organization");
    assert_eq!(
        restarted.store.list_tickets(&OrgScope::Everything, 10).await.unwrap().len(),
        4,
        "no second set of samples"
    );
    let uuid = issuebridge::domain::ids::InstallationUuid::parse(&listed[0].uuid).unwrap();
    let client = restarted.sentry.clone().unwrap();
    let details = issuebridge::installations::tokens::with_token(&restarted, &uuid, |token| {
        let client = client.clone();
        let uuid = uuid.clone();
        async move { client.get_installation(&uuid, &token).await }
    })
    .await
    .expect("the new simulator accepts the adopted installation's token");
    assert_eq!(details.status, "installed");
});

on_both_stores!(demo_sample_events_land_in_the_delivery_log, |db| async move {
    use issuebridge_app::api::{ListDeliveries, SendDemoEvents};
    // Over a real socket: the simulated Sentry posts to the app's own URL.
    let app = spawn_app(db).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = (*app.state.config).clone();
    config.public_url = Some(base.parse().unwrap());
    let mut state = app.state.clone();
    state.config = std::sync::Arc::new(config);
    let router = issuebridge_server::startup::router(
        state,
        issuebridge_server::startup::leptos_options(&app.state.config, app.state.config.site_addr),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    // The session lives in the store, which both routers share.
    let mut browser = app.admin().await;
    let client = reqwest::Client::new();
    let sent = client
        .post(format!("{base}{}", SendDemoEvents::PATH))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", browser.cookie.clone().unwrap())
        .header("origin", base.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    assert_eq!(sent.text().await.unwrap(), "5");
    // The page sends its typed filter as JSON; an empty one lists everything.
    let listed = browser.call_json_fn(ListDeliveries::PATH, serde_json::json!({"filter": {}})).await;
    let page: issuebridge::domain::deliveries::DeliveryPage = serde_json::from_str(&listed.body).unwrap();
    let deliveries = page.deliveries;
    let events: Vec<String> =
        deliveries.iter().map(|d| format!("{}.{}", d.resource, d.action.clone().unwrap_or_default())).collect();
    assert_eq!(
        events,
        ["metric_alert.critical", "event_alert.triggered", "comment.created", "error.created", "issue.created"]
    );
    assert!(deliveries.iter().all(|d| d.state == "pending"));
    assert!(browser.get("/deliveries").await.body.contains("issue.created"));
});

on_both_stores!(demo_mode_uninstalls_from_the_console, |db| async move {
    use issuebridge_app::api::UninstallInstallation;
    let app = spawn_app(db).await;
    let installation = app.state.store.list_installations(&OrgScope::Everything).await.unwrap().remove(0);
    let mut browser = app.login_as("jane@example.com").await;
    let answer = browser.post_form(UninstallInstallation::PATH, &format!("installation={}", installation.uuid)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let uuid = issuebridge::domain::ids::InstallationUuid::parse(&installation.uuid).unwrap();
    let record = app.state.store.installation(&uuid).await.unwrap().unwrap();
    assert_eq!(record.status, "deleted");
    assert!(record.access_token.is_none());
    assert_eq!(app.state.store.list_tickets(&OrgScope::Everything, 10).await.unwrap().len(), 4, "tickets stay");
    assert!(browser.get("/installations").await.body.contains("uninstalled"));
});

on_both_stores!(outside_demo_mode_an_organization_owner_uninstalls_and_sentry_is_told, |db| async move {
    use issuebridge_app::api::UninstallInstallation;
    let (app, sim) = crate::helpers::spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    crate::helpers::follow_redirect(&app, &sim, &pending).await;
    let mut owner = app.login_as("jane@example.com").await;
    // An installation that does not exist, and a uuid that is none, answer
    // 404, not 500.
    for missing in ["0f0f0f0f-0000-4000-8000-000000000000", "not-a-uuid"] {
        let answer = owner.post_form(UninstallInstallation::PATH, &format!("installation={missing}")).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{missing}: {}", answer.body);
    }
    let answer = owner.post_form(UninstallInstallation::PATH, &format!("installation={}", pending.installation)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(sim.requests("DELETE", &pending.installation), 1, "Sentry is told first");
    let uuid = issuebridge::domain::ids::InstallationUuid::parse(&pending.installation).unwrap();
    assert_eq!(app.state.store.installation(&uuid).await.unwrap().unwrap().status, "deleted");
});

on_both_stores!(the_delivery_log_filters_by_url, |db| async move {
    let (app, sim) = crate::helpers::spawn_app_with_sim(db).await;
    let url: url::Url = "http://issuebridge.test/sentry/webhook".parse().unwrap();
    let issue = sim.create_issue("acme", "web", "TypeError");
    let installation = "7a485448-a9e2-4c85-8a3c-4f44175783c9";
    for signed in [
        sim.issue_webhook(&url, installation, &issue, "created", issuebridge_server::sim::driver::sentry_actor()),
        sim.error_created(&url, installation, &issue),
    ] {
        let mut request = axum::http::Request::post("/sentry/webhook");
        for (name, value) in &signed.headers {
            request = request.header(name, value);
        }
        let answer = app.send(request.body(axum::body::Body::from(signed.body.clone())).unwrap()).await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    let mut browser = app.admin().await;
    let all = browser.get("/deliveries").await.body;
    assert!(all.contains("issue.created") && all.contains("error.created"));
    let only_errors = browser.get("/deliveries?resource=error").await.body;
    assert!(only_errors.contains("error.created") && !only_errors.contains("issue.created"), "{only_errors}");
    assert!(browser.get("/deliveries?state=dead").await.body.contains("No deliveries here."));
});

on_both_stores!(a_delivery_in_full_shows_redacted_headers_the_body_and_every_attempt, |db| async move {
    use issuebridge::domain::time::now_ms;
    use issuebridge::store::NewDelivery;
    let (app, sim) = crate::helpers::spawn_app_with_sim(db).await;
    let installation = sim.create_installation("acme").installation;
    let url: url::Url = "http://issuebridge.test/sentry/webhook".parse().unwrap();
    let issue = sim.create_issue("acme", "web", "TypeError");
    let signed =
        sim.issue_webhook(&url, &installation, &issue, "created", issuebridge_server::sim::driver::sentry_actor());
    // Kept headers never hold a secret; should one slip in, it is not shown.
    let stored = app
        .state
        .store
        .insert_deliveries(&[NewDelivery {
            received_at_ms: now_ms(),
            source: "webhook",
            request_id: Some("0123abcd".into()),
            resource: "issue".into(),
            action: Some("created".into()),
            installation: Some(issuebridge::domain::ids::InstallationUuid::parse(&installation).unwrap()),
            dedupe_key: "detail-test".into(),
            headers: r#"{"request-id":"0123abcd","sentry-hook-signature":"deadbeefcafe"}"#.into(),
            body: signed.body.clone(),
            state: issuebridge::domain::deliveries::DeliveryState::Pending,
        }])
        .await
        .unwrap();
    let issuebridge::store::DeliveryInsert::Stored(id) = stored[0] else { panic!("stored") };
    // The installation is not known yet: one attempt, retried later.
    issuebridge::pipeline::worker::run_once(&app.state).await.unwrap();

    let mut browser = app.admin().await;
    let page = browser.get(&format!("/deliveries/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("[redacted]") && !page.body.contains("deadbeefcafe"), "{}", page.body);
    assert!(page.body.contains("0123abcd"));
    assert!(
        page.body.contains("\n  &quot;action&quot;: &quot;created&quot;")
            || page.body.contains("\n  \"action\": \"created\""),
        "pretty JSON"
    );
    assert!(page.body.contains("is not known yet"), "the attempt's error");
    assert!(page.body.contains(r#"class="status retry""#));
    assert!(browser.get("/deliveries/999999").await.body.contains("There is no such delivery."));

    // The list filters by action, installation and time, and links here.
    let listed = browser.get(&format!("/deliveries?action=created&installation={installation}")).await.body;
    assert!(listed.contains(&format!(r#"href="/deliveries/{id}""#)), "{listed}");
    assert!(browser.get("/deliveries?action=resolved").await.body.contains("No deliveries here."));
    assert!(browser.get("/deliveries?to=2000-01-01T00:00").await.body.contains("No deliveries here."));
    assert!(browser.get("/deliveries?from=2000-01-01T00:00").await.body.contains("issue.created"));
});

on_both_stores!(the_console_replays_all_dead_deliveries_or_a_time_range, |db| async move {
    use issuebridge::store::{DeliveryInsert, DeliveryOutcome, NewDelivery};
    use issuebridge_app::api::ReplayDeliveries;
    let app = spawn_app(db).await;
    let mut browser = app.admin().await;
    let answer = browser.post_form(ReplayDeliveries::PATH, "scope=dead").await;
    assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "0"));

    // A log to replay: a dead delivery and a processed one in 2020, a
    // processed one from 2010, and a body that is not JSON (never replayed).
    let store = &app.state.store;
    let seed = |received: &str, state: &str, key: &str| NewDelivery {
        received_at_ms: issuebridge::domain::time::parse_utc_minutes(received).unwrap(),
        state: state.parse().unwrap(),
        ..issuebridge::store::testing::pending_delivery(key)
    };
    let inserted = store
        .insert_deliveries(&[
            seed("2020-06-01T00:00", "pending", "dead-2020"),
            seed("2020-06-02T00:00", "pending", "processed-2020"),
            seed("2010-01-01T00:00", "pending", "processed-2010"),
            seed("2020-06-03T00:00", "invalid", "invalid-2020"),
        ])
        .await
        .unwrap();
    let ids: Vec<i64> = inserted
        .iter()
        .map(|outcome| match outcome {
            DeliveryInsert::Stored(id) => *id,
            DeliveryInsert::Duplicate(_) => panic!("each seed is new"),
        })
        .collect();
    let [dead, processed, old, invalid] = ids[..] else { panic!("four seeds") };
    for claimed in store.claim_deliveries(10, 60_000).await.unwrap() {
        let outcome = if claimed.id == dead {
            DeliveryOutcome::Dead { error: "gave up".into() }
        } else {
            DeliveryOutcome::Processed
        };
        store.finish_delivery(&claimed, &outcome).await.unwrap();
    }
    let record = |id: i64| async move { store.delivery(id).await.unwrap().unwrap() };
    assert_eq!(record(dead).await.state, "dead");

    // The dead one only, back in the queue with a clean slate.
    let answer = browser.post_form(ReplayDeliveries::PATH, "scope=dead").await;
    assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "1"));
    let requeued = record(dead).await;
    assert_eq!((requeued.state.as_str(), requeued.attempts, requeued.last_error), ("pending", 0, None));
    assert_eq!(record(processed).await.state, "processed");

    // A range takes what was received in it, whatever its state, but the
    // body that cannot be processed.
    let answer =
        browser.post_form(ReplayDeliveries::PATH, "scope=range&from_ms=1577836800000&to_ms=1609459200000").await;
    assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "2"));
    assert_eq!(record(processed).await.state, "pending");
    assert_eq!(record(old).await.state, "processed", "received before the range");
    assert_eq!(record(invalid).await.state, "invalid");

    let answer =
        browser.post_form(ReplayDeliveries::PATH, "scope=range&from_ms=946684800000&to_ms=4102444800000").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, "3", "every replayable delivery of the century");
    assert_eq!(record(old).await.state, "pending");
    let answer = browser.post_form(ReplayDeliveries::PATH, "scope=range").await;
    assert!(answer.body.contains("Choose a time range first."), "{}", answer.body);
});
