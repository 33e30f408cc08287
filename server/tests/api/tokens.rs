//! Token life after install: refresh before expiry, single-flight refresh,
//! the JWT fallback, and re-authorization when all else fails.

use std::sync::Arc;

use issuebridge::domain::ids::InstallationUuid;
use issuebridge::domain::time::now_ms;
use issuebridge::installations::tokens::{access_token, with_token, ApiCallError, TokenError};
use issuebridge::on_both_stores;
use issuebridge::store::testing::TestDatabase;
use issuebridge::store::Store;
use issuebridge::AppState;
use issuebridge_server::sim::Simulator;

use crate::helpers::{follow_redirect, spawn_app_with, spawn_app_with_sim, TestApp};

/// Installs into `org` through the setup redirect; returns the installation.
async fn installed(app: &TestApp, sim: &Simulator, org: &str) -> InstallationUuid {
    let pending = sim.create_installation(org);
    let page = follow_redirect(app, sim, &pending).await;
    assert_eq!(page.status, 200, "{}", page.body);
    InstallationUuid::parse(&pending.installation).unwrap()
}

/// One authenticated call to Sentry, retried once after a refresh on 401.
async fn call_sentry(state: &AppState, installation: &InstallationUuid) -> Result<String, ApiCallError> {
    let client = state.sentry.clone().unwrap();
    with_token(state, installation, |token| {
        let client = client.clone();
        async move { client.get_installation(installation, &token).await }
    })
    .await
    .map(|details| details.status)
}

async fn set_expiry(store: &Store, installation: &InstallationUuid, expires_at: i64) {
    let sql = "update installation set token_expires_at = $1 where uuid = $2";
    match store {
        Store::Sqlite(pool) => {
            sqlx::query(sql).bind(expires_at).bind(installation.as_str()).execute(pool).await.unwrap();
        }
        Store::Postgres(pool) => {
            sqlx::query(sql).bind(expires_at).bind(installation.as_str()).execute(pool).await.unwrap();
        }
    }
}

on_both_stores!(a_fresh_token_is_served_without_asking_sentry, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let installation = installed(&app, &sim, "acme").await;
    for _ in 0..3 {
        let token = access_token(&app.state, &installation).await.unwrap();
        assert_eq!(token.expose(), sim.current_token(installation.as_str()).unwrap());
    }
    assert_eq!(sim.requests("POST", "/authorizations/"), 1, "only the install's exchange");
});

on_both_stores!(a_token_near_expiry_is_refreshed_and_stored_before_use, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let installation = installed(&app, &sim, "acme").await;
    let before = access_token(&app.state, &installation).await.unwrap();
    set_expiry(&app.state.store, &installation, now_ms() + 60_000).await;

    let after = access_token(&app.state, &installation).await.unwrap();
    assert_ne!(before.expose(), after.expose());
    assert_eq!(after.expose(), sim.current_token(installation.as_str()).unwrap());
    assert_eq!(sim.refreshes(), 1);
    let record = app.state.store.installation(&installation).await.unwrap().unwrap();
    assert!(record.token_expires_at.unwrap() > now_ms() + 7 * 3600 * 1000, "the new expiry is stored");
    // The stored pair is the new one: using it again needs no refresh.
    assert_eq!(access_token(&app.state, &installation).await.unwrap().expose(), after.expose());
    assert_eq!(sim.refreshes(), 1);
});

on_both_stores!(fifty_concurrent_calls_with_an_expired_token_refresh_once, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let installation = installed(&app, &sim, "acme").await;
    sim.expire_tokens();

    let state = Arc::new(app.state.clone());
    let calls = (0..50).map(|_| {
        let (state, installation) = (state.clone(), installation.clone());
        tokio::spawn(async move { call_sentry(&state, &installation).await })
    });
    for outcome in futures_util::future::join_all(calls).await {
        assert_eq!(outcome.unwrap().unwrap(), "installed");
    }
    assert_eq!(sim.refreshes(), 1, "single-flight refresh");
    assert_eq!(sim.manual_refreshes(), 0);
});

on_both_stores!(a_reused_refresh_token_falls_back_to_the_jwt_refresh, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let installation = installed(&app, &sim, "acme").await;
    // Someone else refreshed: our token and refresh token are both dead.
    sim.rotate_token_elsewhere(installation.as_str());

    assert_eq!(call_sentry(&app.state, &installation).await.unwrap(), "installed");
    assert_eq!(sim.refreshes(), 0, "the dead refresh token was refused");
    assert_eq!(sim.manual_refreshes(), 1);
    let token = access_token(&app.state, &installation).await.unwrap();
    assert_eq!(token.expose(), sim.current_token(installation.as_str()).unwrap());
});

on_both_stores!(when_every_refresh_fails_the_installation_needs_reauthorization, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let installation = installed(&app, &sim, "acme").await;
    sim.rotate_token_elsewhere(installation.as_str());
    sim.set_manual_refresh(false);

    let error = call_sentry(&app.state, &installation).await.unwrap_err();
    assert!(matches!(error, ApiCallError::Token(TokenError::NeedsReauth)), "{error}");
    let record = app.state.store.installation(&installation).await.unwrap().unwrap();
    assert_eq!(record.status, "needs_reauth");
    assert!(record.access_token.is_none() && record.refresh_token.is_none(), "dead tokens are purged");

    // No more calls to Sentry for it, and the console says so.
    let requests = sim.requests("POST", "/authorizations/");
    assert!(matches!(access_token(&app.state, &installation).await, Err(TokenError::NeedsReauth)));
    assert_eq!(sim.requests("POST", "/authorizations/"), requests);
    let page = app.admin().await.get("/installations").await;
    assert!(page.body.contains("needs re-authorization"), "{}", page.body);
});

on_both_stores!(sentry_down_during_refresh_keeps_the_tokens, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let installation = installed(&app, &sim, "acme").await;
    set_expiry(&app.state.store, &installation, now_ms() - 1).await;
    sim.fail_next("POST", "/authorizations/", 503, 1);

    assert!(matches!(access_token(&app.state, &installation).await, Err(TokenError::SentryUnavailable(_))));
    let record = app.state.store.installation(&installation).await.unwrap().unwrap();
    assert_eq!(record.status, "installed");
    // Once Sentry is back, the same refresh token still works.
    access_token(&app.state, &installation).await.unwrap();
    assert_eq!(sim.refreshes(), 1);
});

/// Two instances on one PostgreSQL database: the row lock makes the refresh
/// single-flight across processes, not only within one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres_refresh_once_between_them() {
    let Some(db) = TestDatabase::postgres().await else { return };
    let (app, sim) = spawn_app_with_sim(db).await;
    let installation = installed(&app, &sim, "acme").await;
    let other =
        AppState::new((*app.state.config).clone(), Store::connect(&app.state.config.database_url).await.unwrap());
    set_expiry(&app.state.store, &installation, now_ms() - 1).await;

    let (a, b) = tokio::join!(access_token(&app.state, &installation), access_token(&other, &installation));
    assert_eq!(a.unwrap().expose(), b.unwrap().expose());
    assert_eq!(sim.refreshes(), 1);
    assert_eq!(sim.manual_refreshes(), 0);
}

on_both_stores!(internal_integration_mode_uses_the_configured_token, |db| async move {
    let sim = Simulator::start(Default::default()).await.unwrap();
    let (installation, token) = sim.create_internal_installation("acme");
    let base = sim.base_url().to_string();
    let app = spawn_app_with(
        db,
        &[
            ("SENTRY_URL", base.as_str()),
            ("SENTRY_CLIENT_ID", sim.app().client_id.as_str()),
            ("SENTRY_CLIENT_SECRET", sim.app().client_secret.as_str()),
            ("SENTRY_INTERNAL_TOKEN", token.as_str()),
            ("SENTRY_INTERNAL_INSTALLATION", installation.as_str()),
            ("SENTRY_INTERNAL_ORG", "acme"),
        ],
    )
    .await;
    let uuid = InstallationUuid::parse(&installation).unwrap();

    assert_eq!(call_sentry(&app.state, &uuid).await.unwrap(), "installed");
    assert_eq!(sim.requests("POST", "/authorizations/"), 0, "no OAuth exchange, no refresh");
    let record = app.state.store.installation(&uuid).await.unwrap().unwrap();
    assert_eq!((record.status.as_str(), record.org_slug.as_str()), ("installed", "acme"));
    assert!(app.admin().await.get("/installations").await.body.contains("acme"));

    // A revoked internal token cannot be refreshed: a person must act.
    sim.revoke_tokens(&installation);
    let error = call_sentry(&app.state, &uuid).await.unwrap_err();
    assert!(matches!(error, ApiCallError::Token(TokenError::NeedsReauth)), "{error}");
    assert_eq!(sim.requests("POST", "/authorizations/"), 0);
});
