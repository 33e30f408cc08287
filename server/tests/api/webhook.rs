//! `POST /sentry/webhook`: verification, durability before the answer,
//! deduplication of Sentry's retries, and every answer code.

use axum::http::StatusCode;
use issuebridge::domain::access::OrgScope;
use issuebridge::on_both_stores;
use issuebridge_server::sim::driver::{user_actor, CommentRef, SignedRequest};
use issuebridge_server::sim::Simulator;
use serde_json::Value;

use crate::helpers::{
    follow_redirect, resigned, spawn_app_with_sim, spawn_app_with_sim_and, to_request, webhook_url, Answer, TestApp,
};

async fn deliver(app: &TestApp, signed: &SignedRequest) -> (Answer, Value) {
    let answer = app.send(to_request(signed)).await;
    let json = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    (answer, json)
}

fn created(sim: &Simulator) -> SignedRequest {
    let pending = sim.create_installation("acme");
    sim.installation_created(&webhook_url(), &pending, user_actor(1, "Jane"))
}

on_both_stores!(a_signed_delivery_is_stored_before_the_answer, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let signed = created(&sim);
    let (answer, json) = deliver(&app, &signed).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(json["status"], "accepted");

    let stored = app.state.store.delivery(json["delivery"].as_i64().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.body, signed.body, "the raw bytes, as signed");
    assert_eq!(stored.resource, "installation");
    assert_eq!(stored.action.as_deref(), Some("created"));
    assert_eq!(stored.state, "pending");
    assert_eq!(stored.request_id.as_deref(), signed.header("Request-ID"));
    let headers: Value = serde_json::from_str(&stored.headers).unwrap();
    assert_eq!(headers["sentry-hook-resource"], "installation");
    assert!(headers.get("sentry-hook-signature").is_none(), "no signature kept");
});

on_both_stores!(a_retry_with_a_new_request_id_is_a_duplicate, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    let first = sim.installation_created(&webhook_url(), &pending, user_actor(1, "Jane"));
    let retry = sim.installation_created(&webhook_url(), &pending, user_actor(1, "Jane"));
    assert_ne!(first.header("Request-ID"), retry.header("Request-ID"));

    let (_, a) = deliver(&app, &first).await;
    let (answer, b) = deliver(&app, &retry).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(b["status"], "duplicate");
    assert_eq!(a["delivery"], b["delivery"]);
    assert_eq!(app.state.store.count_deliveries().await.unwrap(), 1);
    let stored = app.state.store.delivery(a["delivery"].as_i64().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.duplicate_count, 1);
});

on_both_stores!(bad_signatures_are_refused_and_not_stored, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let signed = created(&sim);
    let mut cases = Vec::new();
    cases.push(resigned(&signed, &signed.body, "another-secret"));
    let mut tampered = signed.clone();
    tampered.body = String::from_utf8(signed.body.clone()).unwrap().replace("Jane", "John").into_bytes();
    cases.push(tampered);
    let mut missing = signed.clone();
    missing.headers.retain(|(name, _)| name != "Sentry-Hook-Signature");
    cases.push(missing);
    let mut junk = signed.clone();
    for (name, value) in junk.headers.iter_mut() {
        if name == "Sentry-Hook-Signature" {
            *value = "sha256=not-hex".into();
        }
    }
    cases.push(junk);
    for case in &cases {
        let (answer, _) = deliver(&app, case).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.state.store.count_deliveries().await.unwrap(), 0);
    let metrics = app.get("/metrics").await.body;
    assert!(metrics.contains(r#"issuebridge_webhook_rejected_total{reason="wrong signature"} 2"#), "{metrics}");
    assert!(metrics.contains(r#"issuebridge_webhook_rejected_total{reason="missing signature"} 1"#));
    assert!(metrics.contains(r#"issuebridge_webhook_rejected_total{reason="malformed signature"} 1"#));
});

on_both_stores!(the_previous_secret_still_verifies_during_a_rotation, |db| async move {
    let sim = Simulator::start(Default::default()).await.unwrap();
    let old_secret = sim.app().client_secret.clone();
    let (app, _) = spawn_app_with_sim_and(
        db,
        &[("SENTRY_CLIENT_SECRET", "the-new-secret"), ("SENTRY_CLIENT_SECRET_PREVIOUS", old_secret.as_str())],
    )
    .await;
    let signed = created(&sim);
    assert_eq!(deliver(&app, &signed).await.0.status, StatusCode::OK);
    let with_new = resigned(&signed, b"{\"action\":\"x\",\"data\":{\"installation\":{}}}", "the-new-secret");
    assert_eq!(deliver(&app, &with_new).await.0.status, StatusCode::OK);
    // The component header is accepted too (the example app's behaviour).
    let mut app_header = resigned(&signed, b"{\"action\":\"y\",\"data\":{\"installation\":{}}}", "the-new-secret");
    for (name, _) in app_header.headers.iter_mut() {
        if name == "Sentry-Hook-Signature" {
            *name = "Sentry-App-Signature".into();
        }
    }
    assert_eq!(deliver(&app, &app_header).await.0.status, StatusCode::OK);
});

on_both_stores!(well_signed_oddities_are_kept, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let signed = created(&sim);
    let secret = sim.app().client_secret.clone();

    for body in [&b"not json"[..], b"", b"[1,2]"] {
        let (answer, _) = deliver(&app, &resigned(&signed, body, &secret)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{:?}", String::from_utf8_lossy(body));
    }
    let mut unknown = resigned(&signed, b"{\"action\":\"completed\",\"data\":{}}", &secret);
    for (name, value) in unknown.headers.iter_mut() {
        if name == "Sentry-Hook-Resource" {
            *value = "size_analysis".into();
        }
    }
    let (answer, json) = deliver(&app, &unknown).await;
    assert_eq!(answer.status, StatusCode::OK, "a well-signed unknown resource is never refused");
    let stored = app.state.store.delivery(json["delivery"].as_i64().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.state, "ignored");
    assert_eq!(app.state.store.count_deliveries().await.unwrap(), 4, "all kept for inspection");
    // A replay takes the ignored one again; the bodies that are not JSON
    // cannot be processed and stay as they are.
    let everything = issuebridge::store::Replay::Between { from_ms: 0, to_ms: i64::MAX };
    assert_eq!(app.state.store.requeue_deliveries(&everything, &OrgScope::Everything).await.unwrap(), 1);

    // \\u escapes are verified over the raw bytes, never re-serialized.
    let issue = sim.create_issue("acme", "web", "héllo");
    let note = CommentRef { issue_id: &issue, comment_id: 1, text: "héllo wörld" };
    let comment = sim.comment_webhook(
        &webhook_url(),
        "7a485448-a9e2-4c85-8a3c-4f44175783c9",
        &note,
        "created",
        user_actor(1, "Jane"),
    );
    assert!(String::from_utf8(comment.body.clone()).unwrap().contains("h\\u00e9llo"));
    assert_eq!(deliver(&app, &comment).await.0.status, StatusCode::OK);
});

on_both_stores!(a_body_over_the_limit_is_413, |db| async move {
    let (app, sim) = spawn_app_with_sim_and(db, &[("ISSUEBRIDGE_WEBHOOK_MAX_BYTES", "1024")]).await;
    let signed = created(&sim);
    let big = format!("{{\"action\":\"created\",\"pad\":\"{}\"}}", "x".repeat(2000));
    let (answer, _) = deliver(&app, &resigned(&signed, big.as_bytes(), &sim.app().client_secret)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.state.store.count_deliveries().await.unwrap(), 0);
});

on_both_stores!(a_store_that_cannot_take_it_answers_503, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    app.state.store.close().await;
    let (answer, _) = deliver(&app, &created(&sim)).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "Sentry retries a 503");
});

on_both_stores!(concurrent_deliveries_are_all_stored, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let requests: Vec<SignedRequest> = (0..200).map(|_| created(&sim)).collect();
    let answers = futures_util::future::join_all(requests.iter().map(|r| deliver(&app, r))).await;
    assert!(answers.iter().all(|(a, j)| a.status == StatusCode::OK && j["status"] == "accepted"));
    assert_eq!(app.state.store.count_deliveries().await.unwrap(), 200);
});

async fn set_due_now(store: &issuebridge::store::Store, id: i64) {
    let sql = "update delivery set next_attempt_at = 0 where id = $1";
    match store {
        issuebridge::store::Store::Sqlite(pool) => {
            sqlx::query(sql).bind(id).execute(pool).await.unwrap();
        }
        issuebridge::store::Store::Postgres(pool) => {
            sqlx::query(sql).bind(id).execute(pool).await.unwrap();
        }
    }
}

on_both_stores!(installation_created_by_webhook_installs_through_the_worker, |db| async move {
    use issuebridge::domain::ids::InstallationUuid;
    use issuebridge::pipeline::worker::run_once;
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    let signed = sim.installation_created(&webhook_url(), &pending, user_actor(1, "Jane"));
    let (_, json) = deliver(&app, &signed).await;
    let id = json["delivery"].as_i64().unwrap();

    assert_eq!(run_once(&app.state).await.unwrap(), 1);
    let uuid = InstallationUuid::parse(&pending.installation).unwrap();
    assert!(app.state.store.installation(&uuid).await.unwrap().unwrap().is_installed_with_tokens());
    assert_eq!(app.state.store.delivery(id).await.unwrap().unwrap().state, "processed");
    assert_eq!(sim.installation(&pending.installation).unwrap().status, "installed");

    // Sentry's retry task serializes the installation anew (installed, the
    // code spent): a new delivery, applied without a second exchange.
    let retry = sim.installation_created(&webhook_url(), &pending, user_actor(1, "Jane"));
    assert!(!String::from_utf8_lossy(&retry.body).contains(&pending.code));
    assert_eq!(deliver(&app, &retry).await.1["status"], "accepted");
    assert_eq!(run_once(&app.state).await.unwrap(), 1);
    assert_eq!(sim.requests("POST", "/authorizations/"), 1);

    // Uninstalled in Sentry: installation.deleted applies the policy.
    let deleted = sim.uninstall(&webhook_url(), &pending.installation, user_actor(1, "Jane"));
    assert_eq!(sim.installation(&pending.installation).unwrap().status, "pending_deletion");
    assert_eq!(deliver(&app, &deleted).await.0.status, StatusCode::OK);
    assert_eq!(run_once(&app.state).await.unwrap(), 1);
    let record = app.state.store.installation(&uuid).await.unwrap().unwrap();
    assert_eq!(record.status, "deleted");
    assert!(record.access_token.is_none());
});

on_both_stores!(a_failing_delivery_is_retried_later_and_a_hopeless_one_parked, |db| async move {
    use issuebridge::pipeline::worker::run_once;
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    let (_, json) = deliver(&app, &sim.installation_created(&webhook_url(), &pending, user_actor(1, "Jane"))).await;
    let id = json["delivery"].as_i64().unwrap();

    sim.fail_next("POST", "/authorizations/", 503, 1);
    assert_eq!(run_once(&app.state).await.unwrap(), 1);
    let stored = app.state.store.delivery(id).await.unwrap().unwrap();
    assert_eq!((stored.state.as_str(), stored.attempts), ("retry", 1));
    assert!(stored.last_error.unwrap().contains("could not be reached"));
    assert_eq!(run_once(&app.state).await.unwrap(), 0, "not due yet: backoff");
    set_due_now(&app.state.store, id).await;
    assert_eq!(run_once(&app.state).await.unwrap(), 1);
    assert_eq!(app.state.store.delivery(id).await.unwrap().unwrap().state, "processed");

    // An expired code cannot be helped by retrying: parked as dead.
    let late = sim.create_installation("globex");
    sim.expire_grants();
    let (_, json) = deliver(&app, &sim.installation_created(&webhook_url(), &late, user_actor(1, "Jane"))).await;
    assert_eq!(run_once(&app.state).await.unwrap(), 1);
    let dead = app.state.store.delivery(json["delivery"].as_i64().unwrap()).await.unwrap().unwrap();
    assert_eq!(dead.state, "dead");
    assert!(dead.last_error.unwrap().contains("Grant has already expired"));
});

/// Two instances on one PostgreSQL database share the work and process
/// each delivery once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_postgres_process_each_delivery_once() {
    let Some(db) = issuebridge::store::testing::TestDatabase::postgres().await else { return };
    let (app, sim) = spawn_app_with_sim(db).await;
    for _ in 0..40 {
        let pending = sim.create_installation("acme");
        deliver(&app, &sim.installation_created(&webhook_url(), &pending, user_actor(1, "Jane"))).await;
    }
    let (a, b) = crate::helpers::drain_with_two_instances(&app).await;
    assert_eq!(a + b, 40, "every delivery once");
    assert_eq!(sim.requests("POST", "/authorizations/"), 40, "one exchange per installation");
}

on_both_stores!(stored_deliveries_can_be_replayed, |db| async move {
    use issuebridge::domain::time::now_ms;
    use issuebridge::pipeline::worker::run_once;
    use issuebridge::store::Replay;
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    let (_, json) = deliver(&app, &sim.installation_created(&webhook_url(), &pending, user_actor(1, "Jane"))).await;
    let id = json["delivery"].as_i64().unwrap();
    run_once(&app.state).await.unwrap();
    let late = sim.create_installation("globex");
    sim.expire_grants();
    let (_, dead) = deliver(&app, &sim.installation_created(&webhook_url(), &late, user_actor(1, "Jane"))).await;
    let dead_id = dead["delivery"].as_i64().unwrap();
    run_once(&app.state).await.unwrap();
    assert_eq!(app.state.store.delivery(dead_id).await.unwrap().unwrap().state, "dead");

    // One: processed again, harmlessly (the install is already done).
    assert_eq!(app.state.store.requeue_deliveries(&Replay::One(id), &OrgScope::Everything).await.unwrap(), 1);
    assert_eq!(app.state.store.delivery(id).await.unwrap().unwrap().state, "pending");
    assert_eq!(run_once(&app.state).await.unwrap(), 1);
    assert_eq!(app.state.store.delivery(id).await.unwrap().unwrap().state, "processed");
    assert_eq!(sim.requests("POST", "/authorizations/"), 2, "no new exchange for the replay");

    // Every dead one.
    assert_eq!(app.state.store.requeue_deliveries(&Replay::Dead, &OrgScope::Everything).await.unwrap(), 1);
    assert_eq!(app.state.store.delivery(dead_id).await.unwrap().unwrap().state, "pending");

    // A time range.
    let range = Replay::Between { from_ms: now_ms() - 60_000, to_ms: now_ms() + 1 };
    assert_eq!(app.state.store.requeue_deliveries(&range, &OrgScope::Everything).await.unwrap(), 2);
    let past = Replay::Between { from_ms: 0, to_ms: 1 };
    assert_eq!(app.state.store.requeue_deliveries(&past, &OrgScope::Everything).await.unwrap(), 0);

    // From the console.
    let path = <issuebridge_app::api::ReplayDelivery as leptos::server_fn::ServerFn>::PATH;
    let answer = app.admin().await.post_form(path, &format!("id={id}")).await;
    assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "1"));
});

on_both_stores!(service_hook_deliveries_verify_with_each_hooks_own_secret, |db| async move {
    use issuebridge::domain::ids::InstallationUuid;
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    assert_eq!(follow_redirect(&app, &sim, &pending).await.status, StatusCode::OK);
    let uuid = InstallationUuid::parse(&pending.installation).unwrap();

    let web = issuebridge::installations::service_hooks::register(
        &app.state,
        &uuid,
        "web",
        &["event.created", "event.alert"],
    )
    .await
    .unwrap();
    let api = issuebridge::installations::service_hooks::register(&app.state, &uuid, "api", &["event.created"])
        .await
        .unwrap();
    let registered = sim.service_hooks();
    assert_eq!(registered.len(), 2);
    assert!(registered.iter().all(|h| h.url == "http://issuebridge.test/sentry/service-hook"));

    let issue = sim.create_issue("acme", "web", "TypeError");
    for hook in [&web, &api, &web] {
        let (answer, json) = deliver(&app, &sim.service_hook_delivery(hook, &issue)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let stored = app.state.store.delivery(json["delivery"].as_i64().unwrap()).await.unwrap().unwrap();
        assert_eq!(stored.resource, "service_hook");
        assert_eq!(stored.installation_uuid.as_deref(), Some(uuid.as_str()));
        assert_eq!(stored.state, "pending");
    }
    assert_eq!(app.state.store.count_deliveries().await.unwrap(), 3);

    // A signature made with a secret no hook has, or over a tampered body,
    // fails (a guid names where to look first, not who signed).
    let genuine = sim.service_hook_delivery(&web, &issue);
    let mut forged = genuine.clone();
    let forged_signature = issuebridge::sentry::signature::sign(b"not-a-hook-secret", &genuine.body);
    for (name, value) in forged.headers.iter_mut() {
        if name == "X-ServiceHook-Signature" {
            *value = forged_signature.clone();
        }
    }
    assert_eq!(deliver(&app, &forged).await.0.status, StatusCode::UNAUTHORIZED);
    let mut tampered = sim.service_hook_delivery(&web, &issue);
    tampered.body.push(b' ');
    assert_eq!(deliver(&app, &tampered).await.0.status, StatusCode::UNAUTHORIZED);
    let mut unsigned = sim.service_hook_delivery(&web, &issue);
    unsigned.headers.retain(|(name, _)| name != "X-ServiceHook-Signature");
    assert_eq!(deliver(&app, &unsigned).await.0.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.state.store.count_deliveries().await.unwrap(), 3);
});

/// The same request with its (unsigned) header `name` set to `value`.
fn with_header(signed: &SignedRequest, name: &str, value: &str) -> SignedRequest {
    let mut copy = signed.clone();
    for (header, current) in copy.headers.iter_mut() {
        if header.eq_ignore_ascii_case(name) {
            *current = value.into();
        }
    }
    copy
}

on_both_stores!(a_body_posted_again_under_other_resource_names_is_the_same_delivery, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let signed = created(&sim);
    let (_, first) = deliver(&app, &signed).await;
    assert_eq!(first["status"], "accepted");
    for name in ["issue", "comment", "error", "event_alert", "metric_alert", "service_hook", "seer", "installation"] {
        let (answer, json) = deliver(&app, &with_header(&signed, "Sentry-Hook-Resource", name)).await;
        if name == "installation" || name == "seer" || name == "service_hook" {
            assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.body);
            assert_eq!(json["status"], "duplicate", "{name}");
            assert_eq!(json["delivery"], first["delivery"], "{name}");
        } else {
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{name}: the body is not a {name} webhook");
        }
    }
    assert_eq!(app.state.store.count_deliveries().await.unwrap(), 1, "one row however often it is re-posted");
    let stored = app.state.store.delivery(first["delivery"].as_i64().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.duplicate_count, 8);

    // A new body under a resource whose payload it does not carry is kept
    // for inspection, never applied, and stored once.
    let other = with_header(&created(&sim), "Sentry-Hook-Resource", "issue");
    let (answer, json) = deliver(&app, &other).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(json["message"].as_str().unwrap().contains("Sentry-Hook-Resource"), "{json}");
    assert_eq!(app.state.store.count_deliveries().await.unwrap(), 2);
    let (answer, _) = deliver(&app, &with_header(&other, "Sentry-Hook-Resource", "comment")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.state.store.count_deliveries().await.unwrap(), 2);
    assert_eq!(issuebridge::pipeline::worker::run_once(&app.state).await.unwrap(), 1, "only the real one applies");
});

on_both_stores!(a_service_hooks_guid_is_relearnt_whenever_its_secret_verifies, |db| async move {
    use issuebridge::domain::ids::InstallationUuid;
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    assert_eq!(follow_redirect(&app, &sim, &pending).await.status, StatusCode::OK);
    let uuid = InstallationUuid::parse(&pending.installation).unwrap();
    let hook = issuebridge::installations::service_hooks::register(&app.state, &uuid, "web", &["event.created"])
        .await
        .unwrap();
    let issue = sim.create_issue("acme", "web", "TypeError");
    let guid_of = |app: &TestApp| {
        let store = app.state.store.clone();
        let hook = hook.clone();
        async move {
            let hooks = store.service_hook_candidates("").await.unwrap();
            hooks.into_iter().find(|h| h.id == hook).unwrap().guid
        }
    };

    let real = sim.service_hook_delivery(&hook, &issue);
    let real_guid = real.header("X-ServiceHook-GUID").unwrap().to_owned();
    assert_eq!(deliver(&app, &real).await.0.status, StatusCode::OK);
    assert_eq!(guid_of(&app).await.as_deref(), Some(real_guid.as_str()), "learnt from the first delivery");

    // Sentry (or anyone replaying a captured delivery) names another guid:
    // the hook's own secret verifies it, so that guid is the hook's now,
    // and the body is the same delivery, not a new row.
    let renamed = "fedcba9876543210fedcba9876543210";
    let (answer, json) = deliver(&app, &with_header(&real, "X-ServiceHook-GUID", renamed)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(json["status"], "duplicate");
    assert_eq!(guid_of(&app).await.as_deref(), Some(renamed));
    let next = sim.service_hook_delivery(&hook, &issue);
    assert_eq!(deliver(&app, &next).await.1["status"], "accepted", "the real guid still finds its hook");
    assert_eq!(guid_of(&app).await.as_deref(), Some(real_guid.as_str()), "and is learnt again");
    assert_eq!(app.state.store.count_deliveries().await.unwrap(), 2);

    // A guid with a signature no hook's secret makes is still refused.
    let mut forged = with_header(&next, "X-ServiceHook-GUID", renamed);
    forged.body.push(b' ');
    assert_eq!(deliver(&app, &forged).await.0.status, StatusCode::UNAUTHORIZED);
    assert_eq!(guid_of(&app).await.as_deref(), Some(real_guid.as_str()));
});
