//! The console behind a login: Sentry OAuth through the simulated Sentry,
//! login links, sessions, what each person may see and change, CSRF and
//! host checks, and the security headers. Each test on both stores.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use issuebridge::domain::access::OrgScope;
use issuebridge::domain::audit::AuditPage;
use issuebridge::domain::settings::{SaveOutcome, SettingsForm};
use issuebridge::on_both_stores;
use issuebridge::store::testing::TestDatabase;
use issuebridge_app::api::{
    ListActivity, ListDeliveries, ListInstallations, ListTickets, LoadDelivery, ReplayDeliveries, ReplayDelivery,
    SaveInstallationSettings, UninstallInstallation,
};
use leptos::server_fn::ServerFn;

use crate::helpers::{
    path_and_query, spawn_app, spawn_app_tuned, spawn_app_with, spawn_app_with_sim, spawn_app_with_sim_and, TestApp,
};

const JANE: &str = "jane@example.com";
const SAM: &str = "sam@example.com";
const OLGA: &str = "olga@other.example";

/// The demo organization's one installation.
async fn demo_installation(app: &TestApp) -> String {
    app.state.store.list_installations(&OrgScope::Everything).await.unwrap().remove(0).uuid
}

/// A delivery of the demo organization, straight into the store.
async fn demo_delivery(app: &TestApp, key: &str) -> i64 {
    let installation = issuebridge::domain::ids::InstallationUuid::parse(&demo_installation(app).await).unwrap();
    let delivery = issuebridge::store::NewDelivery {
        installation: Some(installation),
        ..issuebridge::store::testing::pending_delivery(key)
    };
    match app.state.store.insert_deliveries(&[delivery]).await.unwrap()[0] {
        issuebridge::store::DeliveryInsert::Stored(id) => id,
        _ => panic!("a new delivery"),
    }
}

fn form(new_issues: bool) -> SettingsForm {
    SettingsForm {
        new_issues,
        resolved: "done".into(),
        ignored: "wont_do".into(),
        unresolved: "todo".into(),
        user_mapping: String::new(),
    }
}

on_both_stores!(without_a_session_pages_go_to_login_and_server_functions_answer_401, |db| async move {
    let app = spawn_app(db).await;
    let mut anonymous = app.anonymous();
    let page = anonymous.get("/deliveries?state=dead").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.headers["location"], "/login?next=%2Fdeliveries%3Fstate%3Ddead");
    for path in [ListTickets::PATH, ListInstallations::PATH] {
        let answer = anonymous.call_server_fn(path).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(!answer.body.contains("demo-org"), "{path} leaked data");
    }
    let login = anonymous.get("/login?next=/deliveries").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains("Log in with Sentry"), "{}", login.body);
    assert!(login.body.contains(r#"href="/auth/login?next=%2Fdeliveries""#), "{}", login.body);
    // The operations endpoints and Sentry's need no session.
    assert_eq!(anonymous.get("/healthz").await.status, StatusCode::OK);
    assert_eq!(anonymous.get("/sentry/setup").await.status, StatusCode::BAD_REQUEST);
});

on_both_stores!(logging_in_through_sentry_lands_where_the_person_was_going, |db| async move {
    let app = spawn_app(db).await;
    let mut browser = app.anonymous();
    let start = browser.get("/auth/login?next=%2Fdeliveries").await;
    assert_eq!(start.status, StatusCode::SEE_OTHER);
    let before = browser.cookie.clone().expect("a session for the pending login");
    let authorize = url::Url::parse(start.headers["location"].to_str().unwrap()).unwrap();
    let asked: std::collections::HashMap<String, String> = authorize.query_pairs().into_owned().collect();
    assert_eq!(authorize.path(), "/oauth/authorize/");
    assert_eq!(asked["response_type"], "code");
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(asked["scope"], "openid profile email org:read");
    assert!(asked["redirect_uri"].ends_with("/auth/callback"));
    assert!(asked["state"].len() >= 16);

    let mut browser = app.anonymous();
    let back = browser.consent_as(JANE, "/deliveries").await;
    let pending_cookie = browser.cookie.clone().unwrap();
    let landed = browser.get(&path_and_query(&back)).await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.body);
    assert_eq!(landed.headers["location"], "/deliveries");
    let cookie = landed.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("issuebridge-session="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "http: no Secure flag");
    assert_ne!(browser.cookie.as_ref(), Some(&pending_cookie), "the session id changes at login");
    assert_ne!(before, pending_cookie);

    let board = browser.get("/").await;
    assert_eq!(board.status, StatusCode::OK);
    assert!(board.body.contains("Jane Doe"), "the header names the person");
    assert!(board.body.contains("ConnectionResetError in payment webhook"));
    assert!(board.body.contains(r#"action="/auth/logout""#), "a logout form");

    // Logging out ends the session in the store: the cookie is worth nothing.
    let cookie = browser.cookie.clone();
    let out = browser.post_form("/auth/logout", "").await;
    assert_eq!((out.status, out.headers["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, "/login"));
    let mut stale = app.anonymous();
    stale.cookie = cookie;
    assert_eq!(stale.get("/").await.status, StatusCode::SEE_OTHER);
    assert_eq!(stale.call_server_fn(ListTickets::PATH).await.status, StatusCode::UNAUTHORIZED);
});

on_both_stores!(a_next_off_this_site_lands_on_the_board, |db| async move {
    let app = spawn_app(db).await;
    for next in ["https://evil.example/", "//evil.example/x", "/\\evil.example"] {
        let mut browser = app.anonymous();
        let back = browser.consent_as(JANE, next).await;
        let landed = browser.get(&path_and_query(&back)).await;
        assert_eq!(landed.headers["location"], "/", "{next}");
    }
});

on_both_stores!(refused_consent_wrong_or_reused_state_and_sentry_down_give_no_session, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    sim.create_installation("acme");

    // Refused consent: Sentry sends `error=access_denied`.
    let mut browser = app.anonymous();
    let back = browser.consent_as(JANE, "/").await;
    let state = back.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let denied = browser.get(&format!("/auth/callback?error=access_denied&state={state}")).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(denied.body.contains("You did not allow issuebridge"), "{}", denied.body);
    assert_eq!(browser.get("/").await.status, StatusCode::SEE_OTHER, "no session");

    // A wrong state.
    let mut browser = app.anonymous();
    let back = browser.consent_as(JANE, "/").await;
    let code = back.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let wrong = browser.get(&format!("/auth/callback?code={code}&state=not-the-state")).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.body.contains("does not match"), "{}", wrong.body);
    assert_eq!(browser.get("/").await.status, StatusCode::SEE_OTHER);

    // A state used twice: the second callback finds nothing pending.
    let mut browser = app.anonymous();
    let back = browser.consent_as(JANE, "/").await;
    assert_eq!(browser.get(&path_and_query(&back)).await.status, StatusCode::SEE_OTHER);
    let mut replayer = app.anonymous();
    let replayed = replayer.get(&path_and_query(&back)).await;
    assert_eq!(replayed.status, StatusCode::BAD_REQUEST);
    assert!(replayed.body.contains("expired or was already used"), "{}", replayed.body);

    // A spent code under a fresh state: Sentry refuses it (invalid_grant).
    let mut other = app.anonymous();
    let fresh = other.consent_as(JANE, "/").await;
    let fresh_state = fresh.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let spent_code = back.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let spent = other.get(&format!("/auth/callback?code={spent_code}&state={fresh_state}")).await;
    assert_eq!(spent.status, StatusCode::BAD_REQUEST);
    assert!(spent.body.contains("did not accept this login"), "{}", spent.body);

    // PKCE: a code made for one login, brought back under another's state,
    // fails its verifier.
    let mut first = app.anonymous();
    let first_back = first.consent_as(JANE, "/").await;
    let mut second = app.anonymous();
    let second_back = second.consent_as(JANE, "/").await;
    let first_code = first_back.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let second_state = second_back.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let mismatch = second.get(&format!("/auth/callback?code={first_code}&state={second_state}")).await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    assert_eq!(second.get("/").await.status, StatusCode::SEE_OTHER);

    // Sentry down while trading the code.
    let mut browser = app.anonymous();
    let back = browser.consent_as(JANE, "/").await;
    sim.fail_next("POST", "/oauth/token/", 503, 1);
    let down = browser.get(&path_and_query(&back)).await;
    assert_eq!(down.status, StatusCode::BAD_GATEWAY);
    assert!(down.body.contains("Sentry did not answer"), "{}", down.body);
    assert_eq!(browser.get("/").await.status, StatusCode::SEE_OTHER);

    // Every failure is in the audit log.
    let mut admin = app.admin().await;
    let activity =
        admin.call_json_fn(ListActivity::PATH, serde_json::json!({"filter": {"action": "login_failed"}})).await;
    let page: AuditPage = serde_json::from_str(&activity.body).unwrap();
    assert_eq!(page.events.len(), 6, "{:?}", page.events);
});

on_both_stores!(people_see_only_their_organizations, |db| async move {
    let app = spawn_app(db).await;
    let installation = demo_installation(&app).await;
    let delivery = demo_delivery(&app, "demo-delivery").await;
    let mut olga = app.login_as(OLGA).await;

    // The board and lists are empty for her.
    let tickets = olga.call_server_fn(ListTickets::PATH).await;
    assert_eq!((tickets.status, tickets.body.as_str()), (StatusCode::OK, "[]"));
    assert_eq!(olga.call_server_fn(ListInstallations::PATH).await.body, "[]");
    let listed = olga.call_json_fn(ListDeliveries::PATH, serde_json::json!({"filter": {}})).await;
    assert!(!listed.body.contains(&installation), "{}", listed.body);
    let board = olga.get("/").await.body;
    assert!(!board.contains("ConnectionResetError"), "{board}");
    assert!(board.contains("Olga Other"));

    // By id, demo-org's delivery answers exactly as one that does not exist.
    let foreign = olga.get(&format!("/deliveries/{delivery}")).await;
    let missing = olga.get("/deliveries/99999999").await;
    assert_eq!(foreign.status, missing.status);
    assert!(foreign.body.contains("There is no such delivery."));
    let foreign = olga.post_form(LoadDelivery::PATH, &format!("id={delivery}")).await;
    let missing = olga.post_form(LoadDelivery::PATH, "id=99999999").await;
    assert_eq!((foreign.status, foreign.body.as_str()), (missing.status, missing.body.as_str()));
    assert_eq!(foreign.body, "null");
    let foreign = olga.post_form(ReplayDelivery::PATH, &format!("id={delivery}")).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.body);
    let foreign = olga.post_form(UninstallInstallation::PATH, &format!("installation={installation}")).await;
    let missing =
        olga.post_form(UninstallInstallation::PATH, "installation=0f0f0f0f-0000-4000-8000-000000000000").await;
    assert_eq!((foreign.status, foreign.body.as_str()), (missing.status, missing.body.as_str()));
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    let save = olga
        .call_json_fn(
            SaveInstallationSettings::PATH,
            serde_json::json!({"installation": installation, "form": form(false)}),
        )
        .await;
    assert_eq!(save.status, StatusCode::NOT_FOUND, "{}", save.body);
    // Malformed calls are the caller's fault: 400, never 500.
    for (path, body) in [(LoadDelivery::PATH, "id=abc"), (LoadDelivery::PATH, ""), (ReplayDelivery::PATH, "id=1.5")] {
        let answer = olga.post_form(path, body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path} {body}: {}", answer.body);
    }
    let garbled = olga.call_json_fn(SaveInstallationSettings::PATH, serde_json::json!({"installation": 5})).await;
    assert_eq!(garbled.status, StatusCode::BAD_REQUEST, "{}", garbled.body);
    // Her replays touch nothing of demo-org's.
    let replayed = olga.post_form(ReplayDeliveries::PATH, "scope=range&from_ms=0&to_ms=4102444800000").await;
    assert_eq!((replayed.status, replayed.body.as_str()), (StatusCode::OK, "0"));

    // Sam, a plain member of demo-org, sees it, and may not change it.
    let mut sam = app.login_as(SAM).await;
    assert!(sam.get("/").await.body.contains("ConnectionResetError"));
    assert!(sam.post_form(LoadDelivery::PATH, &format!("id={delivery}")).await.body.contains("demo-delivery"));
    let save = sam
        .call_json_fn(
            SaveInstallationSettings::PATH,
            serde_json::json!({"installation": installation, "form": form(false)}),
        )
        .await;
    assert_eq!(save.status, StatusCode::FORBIDDEN, "{}", save.body);
    assert!(save.body.contains("org:write"), "{}", save.body);
    assert_eq!(sam.post_form(ReplayDelivery::PATH, &format!("id={delivery}")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        sam.post_form(UninstallInstallation::PATH, &format!("installation={installation}")).await.status,
        StatusCode::FORBIDDEN
    );
    let uuid = issuebridge::domain::ids::InstallationUuid::parse(&installation).unwrap();
    assert!(app.state.store.installation_settings(&uuid).await.unwrap().open_ticket_on_new_issue, "unchanged");
});

on_both_stores!(an_owner_changes_settings_and_the_change_is_in_activity, |db| async move {
    let app = spawn_app(db).await;
    let installation = demo_installation(&app).await;
    let mut jane = app.login_as(JANE).await;

    // A bad field comes back with what to fix; nothing is saved.
    let mut bad = form(false);
    bad.user_mapping = "ada@example.com = nobody".into();
    let answer = jane
        .call_json_fn(SaveInstallationSettings::PATH, serde_json::json!({"installation": installation, "form": bad}))
        .await;
    let outcome: SaveOutcome = serde_json::from_str(&answer.body).unwrap();
    assert!(matches!(&outcome, SaveOutcome::Invalid(errors) if errors[0].field == "user_mapping"), "{outcome:?}");
    let uuid = issuebridge::domain::ids::InstallationUuid::parse(&installation).unwrap();
    assert!(app.state.store.installation_settings(&uuid).await.unwrap().open_ticket_on_new_issue);

    let answer = jane
        .call_json_fn(
            SaveInstallationSettings::PATH,
            serde_json::json!({"installation": installation, "form": form(false)}),
        )
        .await;
    assert_eq!(serde_json::from_str::<SaveOutcome>(&answer.body).unwrap(), SaveOutcome::Saved);
    assert!(!app.state.store.installation_settings(&uuid).await.unwrap().open_ticket_on_new_issue);

    let activity = jane.call_json_fn(ListActivity::PATH, serde_json::json!({"filter": {}})).await;
    let page: AuditPage = serde_json::from_str(&activity.body).unwrap();
    let change = page.events.iter().find(|e| e.action.as_str() == "settings_changed").expect("the change is recorded");
    assert_eq!(change.actor, JANE);
    assert_eq!(change.org_slug.as_deref(), Some("demo-org"));
    assert_eq!(change.detail, "tickets for new issues off");
    assert!(page.events.iter().any(|e| e.action.as_str() == "login" && e.actor == JANE));
    assert!(jane.get("/activity").await.body.contains("tickets for new issues off"));

    // Olga reads nothing of demo-org's activity, nor Jane's logins.
    let mut olga = app.login_as(OLGA).await;
    let theirs: AuditPage =
        serde_json::from_str(&olga.call_json_fn(ListActivity::PATH, serde_json::json!({"filter": {}})).await.body)
            .unwrap();
    assert!(theirs.events.iter().all(|e| e.actor == OLGA), "{:?}", theirs.events);
});

on_both_stores!(a_removed_membership_loses_access_at_the_next_refresh, |db| async move {
    let (app, sim) =
        crate::helpers::spawn_app_with_sim_tuned(db, &[], |config| config.session.membership_refresh_secs = 0).await;
    let pending = sim.create_installation("acme");
    crate::helpers::follow_redirect(&app, &sim, &pending).await;
    sim.set_member("acme", SAM, "member");

    let mut sam = app.login_as(SAM).await;
    assert!(sam.call_server_fn(ListInstallations::PATH).await.body.contains("acme"));
    sim.remove_member("acme", SAM);
    let answer = sam.call_server_fn(ListInstallations::PATH).await;
    assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "[]"), "removed in Sentry, gone here");
});

on_both_stores!(an_unconfirmed_email_never_makes_an_administrator, |db| async move {
    use issuebridge_app::api::CurrentViewer;
    let (app, sim) = spawn_app_with_sim_and(db, &[("ISSUEBRIDGE_ADMINS", "jane@example.com")]).await;
    let mut confirmed = app.login_as(JANE).await;
    let viewer: issuebridge::domain::access::Viewer =
        serde_json::from_str(&confirmed.call_server_fn(CurrentViewer::PATH).await.body).unwrap();
    assert!(viewer.admin, "a confirmed address named in ISSUEBRIDGE_ADMINS");

    // Anyone may type Jane's address into a Sentry account of their own.
    sim.set_email_verified(JANE, false);
    let mut impostor = app.login_as(JANE).await;
    let viewer: issuebridge::domain::access::Viewer =
        serde_json::from_str(&impostor.call_server_fn(CurrentViewer::PATH).await.body).unwrap();
    assert!(!viewer.admin);
    let orphan = orphan_delivery(&app).await;
    assert_eq!(impostor.post_form(LoadDelivery::PATH, &format!("id={orphan}")).await.body, "null");
    assert_ne!(confirmed.post_form(LoadDelivery::PATH, &format!("id={orphan}")).await.body, "null");
});

/// A delivery that belongs to no installation: administrators' only.
async fn orphan_delivery(app: &TestApp) -> i64 {
    let orphan = issuebridge::store::testing::pending_delivery("orphan");
    match app.state.store.insert_deliveries(&[orphan]).await.unwrap()[0] {
        issuebridge::store::DeliveryInsert::Stored(id) => id,
        _ => panic!("a new delivery"),
    }
}

on_both_stores!(sentry_not_answering_keeps_a_session_for_a_while_then_ends_it, |db| async move {
    // Memberships due again every second: an outage keeps them for six.
    let (app, sim) =
        crate::helpers::spawn_app_with_sim_tuned(db, &[], |config| config.session.membership_refresh_secs = 1).await;
    let pending = sim.create_installation("acme");
    crate::helpers::follow_redirect(&app, &sim, &pending).await;
    let mut jane = app.login_as(JANE).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    sim.fail_next("GET", "/api/0/organizations/", 503, 1);
    let kept = jane.call_server_fn(ListInstallations::PATH).await;
    assert_eq!(kept.status, StatusCode::OK);
    assert!(kept.body.contains("acme"), "the known memberships serve: {}", kept.body);

    // Unconfirmed past the limit (here at once): the session ends.
    let (app, sim) = crate::helpers::spawn_app_with_sim_tuned(TestDatabase::sqlite(), &[], |config| {
        config.session.membership_refresh_secs = 0
    })
    .await;
    let mut jane = app.login_as(JANE).await;
    sim.fail_next("GET", "/api/0/organizations/", 503, 1);
    assert_eq!(jane.call_server_fn(ListInstallations::PATH).await.status, StatusCode::UNAUTHORIZED);
});

on_both_stores!(an_owner_manages_by_role_though_the_token_shows_only_org_read, |db| async move {
    use issuebridge_app::api::CurrentViewer;
    let app = spawn_app(db).await;
    let mut jane = app.login_as(JANE).await;
    let viewer: issuebridge::domain::access::Viewer =
        serde_json::from_str(&jane.call_server_fn(CurrentViewer::PATH).await.body).unwrap();
    let demo = viewer.memberships.iter().find(|m| m.org_slug == "demo-org").expect("a member of demo-org");
    assert!(demo.org_id.is_some(), "Sentry's organization id is kept");
    assert_eq!(demo.access, ["org:read"], "Sentry narrows access to the console token's scopes");
    assert_eq!(demo.role.as_deref(), Some("owner"));
    assert!(demo.can_manage());
});

on_both_stores!(a_renamed_organization_keeps_its_installation_and_its_old_slug_opens_nothing, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    crate::helpers::follow_redirect(&app, &sim, &pending).await;
    sim.rename_org("acme", "acme-renamed");
    // Another organization takes the freed slug.
    sim.set_member("acme", OLGA, "owner");

    let mut jane = app.login_as(JANE).await;
    assert!(jane.call_server_fn(ListInstallations::PATH).await.body.contains(&pending.installation));
    let mut olga = app.login_as(OLGA).await;
    let theirs = olga.call_server_fn(ListInstallations::PATH).await;
    assert!(!theirs.body.contains(&pending.installation), "{}", theirs.body);
    let uninstall =
        olga.post_form(UninstallInstallation::PATH, &format!("installation={}", pending.installation)).await;
    assert_eq!(uninstall.status, StatusCode::NOT_FOUND);
});

on_both_stores!(idle_sessions_expire_and_are_deleted, |db| async move {
    use tower_sessions::session_store::ExpiredDeletion;
    use tower_sessions::SessionStore;
    let app = spawn_app_tuned(db, &[], |config| config.session.idle_timeout_secs = 1).await;
    let mut jane = app.login_as(JANE).await;
    assert_eq!(jane.get("/").await.status, StatusCode::OK, "used within the idle time");
    let cookie = jane.cookie.clone().unwrap();
    let id: tower_sessions::session::Id = cookie.split_once('=').unwrap().1.parse().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    assert_eq!(jane.get("/").await.status, StatusCode::SEE_OTHER, "unused past the idle time");
    // The clean-up deletes what expired (loading filters expired records
    // already; the row itself must go).
    let rows = || async {
        match &app.state.store {
            issuebridge::store::Store::Sqlite(pool) => {
                sqlx::query_scalar::<_, i64>("select count(*) from tower_sessions").fetch_one(pool).await.unwrap()
            }
            issuebridge::store::Store::Postgres(pool) => {
                sqlx::query_scalar::<_, i64>("select count(*) from tower_sessions.session")
                    .fetch_one(pool)
                    .await
                    .unwrap()
            }
        }
    };
    assert!(rows().await >= 1, "the expired record is still there");
    let sessions = issuebridge_server::auth::sessions::ConsoleSessions::new(&app.state.store);
    assert!(sessions.load(&id).await.unwrap().is_none());
    sessions.delete_expired().await.unwrap();
    assert_eq!(rows().await, 0);
});

on_both_stores!(expired_sessions_end, |db| async move {
    let app = spawn_app_tuned(db, &[], |config| config.session.absolute_timeout_secs = 0).await;
    let mut jane = app.login_as(JANE).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(jane.get("/").await.status, StatusCode::SEE_OTHER, "past the absolute limit");
});

on_both_stores!(a_session_works_on_a_second_instance_and_logout_ends_it_there, |db| async move {
    let app = spawn_app(db).await;
    let mut jane = app.login_as(JANE).await;
    // Another instance over the same database (several instances share
    // one PostgreSQL; on SQLite, a restart).
    let other_state = issuebridge_server::startup::prepare_state((*app.state.config).clone()).await.unwrap();
    let other = issuebridge_server::startup::router(
        other_state,
        issuebridge_server::startup::leptos_options(&app.state.config, app.state.config.site_addr),
    );
    let cookie = jane.cookie.clone().unwrap();
    let on_other = |cookie: String| Request::get("/").header("cookie", cookie).body(Body::empty()).unwrap();
    let page = crate::helpers::answer(&other, on_other(cookie.clone())).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Jane Doe"));

    // A request still in flight at logout writes the session record back
    // afterwards; it must open nothing.
    use tower_sessions::SessionStore;
    let sessions = issuebridge_server::auth::sessions::ConsoleSessions::new(&app.state.store);
    let id: tower_sessions::session::Id = cookie.split_once('=').unwrap().1.parse().unwrap();
    let record = sessions.load(&id).await.unwrap().expect("the session is stored");
    jane.post_form("/auth/logout", "").await;
    assert!(sessions.load(&id).await.unwrap().is_none(), "logout deletes the record");
    sessions.save(&record).await.unwrap();
    let page = crate::helpers::answer(&other, on_other(cookie.clone())).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "logged out everywhere");
    let page = crate::helpers::answer(&app.router, on_other(cookie)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
});

on_both_stores!(cross_site_state_changes_and_foreign_hosts_are_refused, |db| async move {
    let app = spawn_app(db).await;
    let mut admin = app.admin().await;
    let cookie = admin.cookie.clone().unwrap();
    let post = |headers: &[(&str, &str)], content_type: &str| {
        let mut request = Request::post(ReplayDeliveries::PATH)
            .header("content-type", content_type)
            .header("cookie", cookie.as_str());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(Body::from("scope=dead")).unwrap()
    };
    for (headers, why) in [
        (vec![("origin", "http://evil.example")], "another origin"),
        (vec![("origin", "null")], "an opaque origin alone"),
        (vec![("origin", "null"), ("sec-fetch-site", "cross-site")], "an opaque origin from another site"),
        (vec![("origin", "http://evil.example"), ("sec-fetch-site", "same-origin")], "another origin, whatever else"),
        (vec![("sec-fetch-site", "cross-site")], "cross-site by fetch metadata"),
        (vec![("referer", "http://evil.example/page")], "a foreign referer"),
        (vec![], "no origin at all"),
    ] {
        let answer = app.send(post(&headers, "text/plain")).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{why}: {}", answer.body);
    }
    let origin = app.origin();
    assert_eq!(
        app.send(post(&[("origin", &origin)], "application/x-www-form-urlencoded")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.send(post(&[("sec-fetch-site", "same-origin")], "application/x-www-form-urlencoded")).await.status,
        StatusCode::OK
    );
    // What Chromium sends from this site's pages under `no-referrer`.
    let from_our_page = [("origin", "null"), ("sec-fetch-site", "same-origin")];
    assert_eq!(app.send(post(&from_our_page, "application/x-www-form-urlencoded")).await.status, StatusCode::OK);
    // Logout too: another site cannot log a person out.
    let logout = Request::post("/auth/logout")
        .header("cookie", cookie.as_str())
        .header("origin", "http://evil.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(logout).await.status, StatusCode::FORBIDDEN);
    assert_eq!(admin.get("/").await.status, StatusCode::OK, "still logged in");

    // DNS rebinding: a page asked for under another name is refused; the
    // operations endpoints answer any name.
    let rebound = |path: &str| {
        Request::get(path).header("host", "evil.example").header("cookie", cookie.as_str()).body(Body::empty()).unwrap()
    };
    assert_eq!(app.send(rebound("/")).await.status, StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(app.send(rebound("/login")).await.status, StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(app.send(rebound("/healthz")).await.status, StatusCode::OK);
    // Sentry's signed webhooks answer whatever a proxy calls the host: this
    // one is refused for its missing signature, not for its host.
    let webhook = Request::post("/sentry/webhook").header("host", "evil.example").body(Body::from("{}")).unwrap();
    assert_eq!(app.send(webhook).await.status, StatusCode::UNAUTHORIZED);
    let host = app.origin().trim_start_matches("http://").to_owned();
    let local = Request::get("/").header("host", host).header("cookie", cookie.as_str()).body(Body::empty()).unwrap();
    assert_eq!(app.send(local).await.status, StatusCode::OK);
});

on_both_stores!(console_responses_carry_the_security_headers, |db| async move {
    let app = spawn_app(db).await;
    let mut admin = app.admin().await;
    let page = admin.get("/deliveries").await;
    let csp = page.headers["content-security-policy"].to_str().unwrap().to_owned();
    let nonce = csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect("a nonce");
    assert!(page.body.contains(&format!(r#"nonce="{nonce}""#)), "the hydration script carries the nonce");
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("'wasm-unsafe-eval'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(page.headers.get("strict-transport-security").is_none(), "no HSTS over http");
    // A second page gets another nonce.
    let again = admin.get("/deliveries").await.headers["content-security-policy"].to_str().unwrap().to_owned();
    assert_ne!(again, csp);
    for answer in [admin.call_server_fn(ListTickets::PATH).await, app.anonymous().get("/login").await] {
        assert!(answer.headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
        assert_eq!(answer.headers["cache-control"], "no-store");
    }
});

on_both_stores!(over_https_the_cookie_is_secure_and_hsts_is_sent, |db| async move {
    let app = spawn_app_with(db, &[("ISSUEBRIDGE_PUBLIC_URL", "https://ib.example.com")]).await;
    let mut admin = app.admin().await;
    assert!(admin.cookie.as_ref().unwrap().starts_with("__Host-issuebridge-session="));
    let page = admin.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["strict-transport-security"], "max-age=31536000");
    let link = app.anonymous().get("/login").await;
    assert!(link.headers.get("strict-transport-security").is_some());
});

on_both_stores!(login_links_work_once_for_administrators_only, |db| async move {
    let app = spawn_app_with(db, &[("ISSUEBRIDGE_ADMINS", "root@example.com, admin@issuebridge.test")]).await;
    let store = &app.state.store;
    let in_ten = issuebridge::domain::time::now_ms() + 600_000;
    let hash = issuebridge_server::auth::login_link_hash;
    store.add_login_link(&hash("good"), "root@example.com", in_ten).await.unwrap();
    store.add_login_link(&hash("stale"), "root@example.com", issuebridge::domain::time::now_ms() - 1).await.unwrap();
    store.add_login_link(&hash("stranger"), "eve@example.com", in_ten).await.unwrap();

    let mut browser = app.anonymous();
    let page = browser.get("/auth/link/good").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("root@example.com") && page.body.contains(r#"method="post""#), "{}", page.body);
    assert!(browser.cookie.is_none(), "looking at the link does not log in");
    let used = browser.post_form("/auth/link/good", "").await;
    assert_eq!(used.status, StatusCode::SEE_OTHER);
    // An administrator sees everything, deliveries of no installation too.
    assert!(browser.get("/").await.body.contains("ConnectionResetError"));

    for token in ["good", "stale", "stranger", "never-made"] {
        let mut other = app.anonymous();
        let answer = other.post_form(&format!("/auth/link/{token}"), "").await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{token}");
        assert!(other.cookie.is_none() || other.get("/").await.status == StatusCode::SEE_OTHER, "{token}");
    }
});

on_both_stores!(with_no_way_to_log_in_the_console_explains_and_serves_nothing, |db| async move {
    let app = spawn_app_with(
        db,
        &[("SENTRY_CLIENT_ID", "id"), ("SENTRY_CLIENT_SECRET", "secret"), ("ISSUEBRIDGE_ADMINS", "")],
    )
    .await;
    let mut anonymous = app.anonymous();
    let login = anonymous.get("/login").await;
    assert!(login.body.contains("Nobody can log in yet"), "{}", login.body);
    assert!(login.body.contains("SENTRY_OAUTH_CLIENT_ID") && login.body.contains("ISSUEBRIDGE_ADMINS"));
    assert!(!login.body.contains("Log in with Sentry"));
    assert_eq!(anonymous.get("/auth/login").await.headers["location"], "/login");
    assert_eq!(anonymous.call_server_fn(ListTickets::PATH).await.status, StatusCode::UNAUTHORIZED);
});

on_both_stores!(a_range_replay_names_its_size_and_is_bounded, |db| async move {
    use issuebridge_app::api::PreviewReplay;
    let app = spawn_app(db).await;
    let seeds: Vec<_> =
        (0..1_001).map(|n| issuebridge::store::testing::pending_delivery(&format!("bulk-{n}"))).collect();
    app.state.store.insert_deliveries(&seeds).await.unwrap();
    let mut admin = app.admin().await;
    let everything = "scope=range&from_ms=0&to_ms=4102444800000";
    let preview = admin.post_form(PreviewReplay::PATH, everything).await;
    assert_eq!(preview.body, r#"{"count":1001,"limit":1000}"#);
    let refused = admin.post_form(ReplayDeliveries::PATH, everything).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("1001 deliveries match"), "{}", refused.body);
    let some = admin.post_form(ReplayDeliveries::PATH, "scope=dead").await;
    assert_eq!((some.status, some.body.as_str()), (StatusCode::OK, "0"));
});

on_both_stores!(metrics_can_require_a_bearer_token, |db| async move {
    let app = spawn_app_with(db, &[("ISSUEBRIDGE_METRICS_TOKEN", "scrape-secret")]).await;
    assert_eq!(app.get("/metrics").await.status, StatusCode::UNAUTHORIZED);
    let wrong = Request::get("/metrics").header("authorization", "Bearer nope").body(Body::empty()).unwrap();
    assert_eq!(app.send(wrong).await.status, StatusCode::UNAUTHORIZED);
    let right = Request::get("/metrics").header("authorization", "Bearer scrape-secret").body(Body::empty()).unwrap();
    let answer = app.send(right).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.contains("# TYPE"), "{}", answer.body);
});
