//! Installing by redirect: `GET /sentry/setup?code&installationId&orgSlug`
//! against the simulated Sentry, on both stores.

use axum::http::StatusCode;
use issuebridge::domain::access::OrgScope;
use issuebridge::domain::ids::InstallationUuid;
use issuebridge::installations::install::token_context;
use issuebridge::on_both_stores;
use issuebridge_server::sim::{PendingInstall, Simulator};

use crate::helpers::{follow_redirect, spawn_app, spawn_app_with_sim, spawn_app_with_sim_and, TestApp};

async fn stored(app: &TestApp, installation: &str) -> Option<issuebridge::store::InstallationRecord> {
    app.state.store.installation(&InstallationUuid::parse(installation).unwrap()).await.unwrap()
}

on_both_stores!(install_by_redirect_exchanges_verifies_and_stores_encrypted_tokens, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    assert_eq!(sim.installation(&pending.installation).unwrap().status, "pending");

    let page = follow_redirect(&app, &sim, &pending).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("installed in the Sentry organization acme"), "{}", page.body);
    assert!(page.body.contains(r#"href="http://issuebridge.test/""#), "links to the console: {}", page.body);

    // Verified in Sentry, stored here with both tokens.
    assert_eq!(sim.installation(&pending.installation).unwrap().status, "installed");
    let record = stored(&app, &pending.installation).await.expect("stored");
    assert!(record.is_installed_with_tokens());
    assert_eq!(record.org_slug, "acme");
    assert_eq!(record.app_slug.as_deref(), Some("issuebridge"));
    let expires = record.token_expires_at.unwrap();
    let eight_hours = 8 * 3600 * 1000;
    assert!((expires - issuebridge::domain::time::now_ms() - eight_hours).abs() < 60_000);

    // Encrypted at rest: the stored bytes are not the token, but open to it.
    let token = sim.current_token(&pending.installation).unwrap();
    let sealed = record.access_token.unwrap();
    assert!(!sealed.windows(token.len()).any(|w| w == token.as_bytes()));
    let uuid = InstallationUuid::parse(&pending.installation).unwrap();
    let opened = app.state.cipher.open(&sealed, &token_context(&uuid, "access_token")).unwrap();
    assert_eq!(opened, token.as_bytes());
});

on_both_stores!(a_replayed_redirect_changes_nothing, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    assert_eq!(follow_redirect(&app, &sim, &pending).await.status, StatusCode::OK);
    let token = sim.current_token(&pending.installation).unwrap();

    let again = follow_redirect(&app, &sim, &pending).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert!(again.body.contains("already installed"));
    // One exchange only: the second visit did not spend anything.
    assert_eq!(sim.requests("POST", "/authorizations/"), 1);
    assert_eq!(sim.current_token(&pending.installation).unwrap(), token);
});

on_both_stores!(concurrent_redirects_install_once, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    let (a, b) = tokio::join!(follow_redirect(&app, &sim, &pending), follow_redirect(&app, &sim, &pending));
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(sim.requests("POST", "/authorizations/"), 1);
});

on_both_stores!(a_code_spent_elsewhere_gets_a_clear_page, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    // Spend the code directly against the simulator, as another instance
    // with a database of its own would.
    let client = reqwest::Client::new();
    let spent = client
        .post(format!("{}api/0/sentry-app-installations/{}/authorizations/", sim.base_url(), pending.installation))
        .json(&serde_json::json!({"grant_type": "authorization_code", "code": pending.code, "client_id": sim.app().client_id, "client_secret": sim.app().client_secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(spent.status(), 201);

    let page = follow_redirect(&app, &sim, &pending).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("Could not find grant for given code"), "{}", page.body);
    assert!(stored(&app, &pending.installation).await.is_none(), "nothing half-stored");
});

on_both_stores!(an_expired_code_gets_a_clear_page, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    sim.expire_grants();
    let page = follow_redirect(&app, &sim, &pending).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("Grant has already expired"), "{}", page.body);
    assert!(stored(&app, &pending.installation).await.is_none());
    assert_eq!(sim.installation(&pending.installation).unwrap().status, "pending");
});

on_both_stores!(a_wrong_client_secret_is_named_as_such, |db| async move {
    let (app, sim) = spawn_app_with_sim_and(db, &[("SENTRY_CLIENT_SECRET", "not-the-secret")]).await;
    let pending = sim.create_installation("acme");
    let page = follow_redirect(&app, &sim, &pending).await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
    assert!(page.body.contains("SENTRY_CLIENT_SECRET"), "{}", page.body);
    assert!(!page.body.contains("not-the-secret"), "never shows a secret");
    assert!(stored(&app, &pending.installation).await.is_none());
});

on_both_stores!(a_failed_verification_stores_nothing, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    sim.fail_next("PUT", &format!("/sentry-app-installations/{}/", pending.installation), 400, 1);
    let page = follow_redirect(&app, &sim, &pending).await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
    assert!(page.body.contains("verification"), "{}", page.body);
    assert!(stored(&app, &pending.installation).await.is_none());
});

on_both_stores!(sentry_down_gets_a_clear_page, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    sim.fail_next("POST", "/authorizations/", 503, 1);
    let page = follow_redirect(&app, &sim, &pending).await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
    assert!(page.body.contains("could not be reached"), "{}", page.body);
    assert!(stored(&app, &pending.installation).await.is_none());

    // The code was not spent: once Sentry is back, the same link works.
    assert_eq!(follow_redirect(&app, &sim, &pending).await.status, StatusCode::OK);

    // And with Sentry gone entirely.
    let other = sim.create_installation("globex");
    let redirect = sim.setup_redirect(&"http://issuebridge.test/sentry/setup".parse().unwrap(), &other);
    drop(sim);
    let page = app.get(&format!("{}?{}", redirect.path(), redirect.query().unwrap())).await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
});

on_both_stores!(an_unknown_installation_gets_a_404_page, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let mut pending = sim.create_installation("acme");
    pending.installation = "0f0f0f0f-0000-4000-8000-000000000000".into();
    let page = follow_redirect(&app, &sim, &pending).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("does not know this installation"));
});

on_both_stores!(incomplete_or_damaged_links_are_explained, |db| async move {
    let (app, _sim) = spawn_app_with_sim(db).await;
    for path in ["/sentry/setup", "/sentry/setup?code=abc", "/sentry/setup?installationId=x&code=", "/sentry/setup?%zz"]
    {
        let page = app.get(path).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(page.body.contains("<h1>This link is"), "{path}: {}", page.body);
    }
    let page = app.get("/sentry/setup?code=abc&installationId=not-a-uuid").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("damaged"));
});

on_both_stores!(what_sentry_says_is_shown_as_text, |db| async move {
    // Sentry's answer is quoted on the page when it cannot be used; a
    // hostile one must not become markup.
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("<script>alert(1)</script>");
    let page = follow_redirect(&app, &sim, &pending).await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "quoted: {}", page.body);
    assert!(!page.body.contains("<script"), "{}", page.body);
    assert!(stored(&app, &pending.installation).await.is_none());
});

on_both_stores!(in_demo_mode_setup_talks_to_the_embedded_simulator, |db| async move {
    let app = spawn_app(db).await;
    let page = app.get("/sentry/setup?code=abc&installationId=0f0f0f0f-0000-4000-8000-000000000000").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND, "the simulator knows no such installation");

    let demo = app.state.demo.clone().expect("demo mode");
    let (installation, code) = demo.create_installation("demo-org-9", "jane@example.com");
    let page = app.get(&format!("/sentry/setup?code={code}&installationId={installation}&orgSlug=demo-org-9")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("demo-org-9"));
});

on_both_stores!(uninstall_purges_tokens_drops_links_and_keeps_tickets, |db| async move {
    use issuebridge::domain::ids::SentryIssueId;
    use issuebridge::domain::ticket::TicketStatus;
    use issuebridge::installations::uninstall::forget_installation;
    use issuebridge::store::{NewIssueLink, NewTicket};

    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    assert_eq!(follow_redirect(&app, &sim, &pending).await.status, StatusCode::OK);
    let uuid = InstallationUuid::parse(&pending.installation).unwrap();
    let store = &app.state.store;
    let ticket = store
        .create_ticket(&NewTicket {
            installation: uuid.clone(),
            title: "kept after uninstall".into(),
            description: String::new(),
            status: TicketStatus::Todo,
            assignee_email: None,
        })
        .await
        .unwrap();
    let link = NewIssueLink {
        installation: uuid.clone(),
        issue_id: SentryIssueId::parse("77").unwrap(),
        short_id: Some("WEB-7".into()),
        title: None,
        web_url: None,
        project_slug: None,
    };
    store.link_issue(ticket.id, &link).await.unwrap();

    assert!(forget_installation(&app.state, &uuid, "test").await.unwrap());

    let record = stored(&app, &pending.installation).await.unwrap();
    assert_eq!(record.status, "deleted");
    assert!(record.access_token.is_none() && record.refresh_token.is_none() && record.token_expires_at.is_none());
    let board = store.list_tickets(&OrgScope::Everything, 10).await.unwrap();
    assert_eq!(board.len(), 1, "the ticket stays");
    assert_eq!(board[0].linked_issues, 0, "its link to the Sentry issue goes");
    assert!(matches!(
        issuebridge::installations::tokens::access_token(&app.state, &uuid).await,
        Err(issuebridge::installations::tokens::TokenError::NotInstalled)
    ));
    assert!(app.admin().await.get("/installations").await.body.contains("uninstalled"));

    // Again, or for an installation never seen: nothing to do, no error.
    assert!(forget_installation(&app.state, &uuid, "test").await.unwrap());
    let stranger = InstallationUuid::parse("0f0f0f0f-0000-4000-8000-000000000000").unwrap();
    assert!(!forget_installation(&app.state, &stranger, "test").await.unwrap());
});

/// `installation.created` as the webhook path will hand it over.
fn created_event(
    sim: &Simulator,
    pending: &PendingInstall,
) -> issuebridge::installations::install::InstallationWebhook {
    let url = "http://issuebridge.test/sentry/webhook".parse().unwrap();
    let request = sim.installation_created(&url, pending, issuebridge_server::sim::driver::user_actor(1, "Jane"));
    serde_json::from_slice(&request.body).expect("Sentry's installation payload parses")
}

on_both_stores!(install_by_webhook_then_redirect_installs_once, |db| async move {
    use issuebridge::installations::install::{installation_created, InstallOutcome};
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    let outcome = installation_created(&app.state, &created_event(&sim, &pending)).await.unwrap();
    assert_eq!(outcome, InstallOutcome::Installed { org_slug: "acme".into() });
    assert!(stored(&app, &pending.installation).await.unwrap().is_installed_with_tokens());

    let page = follow_redirect(&app, &sim, &pending).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("already installed"));
    assert_eq!(sim.requests("POST", "/authorizations/"), 1);
});

on_both_stores!(install_by_redirect_then_webhook_installs_once, |db| async move {
    use issuebridge::installations::install::{installation_created, InstallOutcome};
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    assert_eq!(follow_redirect(&app, &sim, &pending).await.status, StatusCode::OK);
    let outcome = installation_created(&app.state, &created_event(&sim, &pending)).await.unwrap();
    assert_eq!(outcome, InstallOutcome::AlreadyInstalled { org_slug: "acme".into() });
    assert_eq!(sim.requests("POST", "/authorizations/"), 1);
});

on_both_stores!(webhook_and_redirect_racing_install_once, |db| async move {
    use issuebridge::installations::install::installation_created;
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    let event = created_event(&sim, &pending);
    let (by_webhook, by_redirect) =
        tokio::join!(installation_created(&app.state, &event), follow_redirect(&app, &sim, &pending));
    assert!(by_webhook.is_ok(), "{by_webhook:?}");
    assert_eq!(by_redirect.status, StatusCode::OK);
    assert_eq!(sim.requests("POST", "/authorizations/"), 1);
});
