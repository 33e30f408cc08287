//! What each webhook does to issues and tickets, through the real path:
//! signed request → router → inbox → worker → store, on both stores.
//! Replays must change nothing, late deliveries must lose to newer ones,
//! and comments that issuebridge posted must not come back twice.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use issuebridge::domain::access::OrgScope;
use issuebridge::domain::ids::{InstallationUuid, TicketId};
use issuebridge::domain::ticket_rules::InstallationSettings;
use issuebridge::on_both_stores;
use issuebridge::store::{Replay, Store};
use issuebridge_server::sim::driver::{user_actor, CommentRef, SignedRequest};
use issuebridge_server::sim::Simulator;
use serde_json::{json, Value};

use crate::helpers::{fixture_corpus, follow_redirect, resigned, spawn_app_with_sim, to_request, webhook_url, TestApp};

async fn deliver(app: &TestApp, signed: &SignedRequest) -> i64 {
    let answer = app.send(to_request(signed)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    serde_json::from_str::<Value>(&answer.body).unwrap()["delivery"].as_i64().unwrap()
}

/// The same request as if Sentry had sent it at `seconds` (the timestamp
/// header is not signed).
fn sent_at(mut signed: SignedRequest, seconds: i64) -> SignedRequest {
    for (name, value) in signed.headers.iter_mut() {
        if name == "Sentry-Hook-Timestamp" {
            *value = seconds.to_string();
        }
    }
    signed
}

/// Runs the worker until nothing is due.
async fn work(app: &TestApp) {
    while issuebridge::pipeline::worker::run_once(&app.state).await.unwrap() > 0 {}
}

/// Installs the app in `org` through Sentry's redirect, as a person would.
async fn install(app: &TestApp, sim: &Simulator, org: &str) -> String {
    let pending = sim.create_installation(org);
    let answer = follow_redirect(app, sim, &pending).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    pending.installation
}

async fn settings(app: &TestApp, installation: &str, change: impl FnOnce(&mut InstallationSettings)) {
    let uuid = InstallationUuid::parse(installation).unwrap();
    let mut settings = app.state.store.installation_settings(&uuid).await.unwrap();
    change(&mut settings);
    let audit = issuebridge::store::NewAuditEvent::new(
        "test",
        issuebridge::domain::audit::AuditAction::SettingsChanged,
        "test",
    );
    assert!(app.state.store.set_installation_settings(&uuid, &settings, &audit).await.unwrap());
}

async fn ticket_of(app: &TestApp, installation: &str, issue: &str) -> issuebridge::store::TicketRecord {
    let id = app.state.store.ticket_for_issue(installation, issue).await.unwrap().expect("a linked ticket");
    app.state.store.ticket_record(id).await.unwrap().unwrap()
}

async fn delivery_state(app: &TestApp, id: i64) -> String {
    app.state.store.delivery(id).await.unwrap().unwrap().state.to_string()
}

/// A new Sentry issue in acme's `web` project whose `issue.created` opened
/// a ticket.
async fn issue_with_ticket(app: &TestApp, sim: &Simulator, installation: &str, title: &str) -> (String, TicketId) {
    let issue = sim.create_issue("acme", "web", title);
    deliver(app, &sim.issue_webhook(&webhook_url(), installation, &issue, "created", user_actor(1, "J"))).await;
    work(app).await;
    let ticket = app.state.store.ticket_for_issue(installation, &issue).await.unwrap().expect("a ticket");
    (issue, ticket)
}

/// Everything the sync writes, as sorted lines: two snapshots are equal
/// when nothing changed.
async fn snapshot(store: &Store) -> Vec<String> {
    let sql = "select 'ticket ' || cast(id as text) || ' ' || status || ' ' || coalesce(assignee_email, '-') || ' '
                      || cast(occurrences as text) || ' ' || coalesce(severity, '-') || ' ' || title from ticket
               union all
               select 'comment ' || cast(ticket_id as text) || ' ' || coalesce(sentry_comment_id, '-') || ' ' || body
                      || ' ' || case when deleted_at is null then 'live' else 'deleted' end from comment
               union all
               select 'issue ' || issue_id || ' ' || coalesce(status, '-') || ' ' || coalesce(assignee, '-') || ' '
                      || cast(event_count as text) from sentry_issue
               union all
               select 'link ' || sentry_issue_id || ' ' || cast(ticket_id as text) from ticket_link
               order by 1";
    match store {
        Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
    }
}

/// Processes every stored delivery again and checks nothing changed.
async fn replay_everything_changes_nothing(app: &TestApp) {
    let before = snapshot(&app.state.store).await;
    let requeued = app
        .state
        .store
        .requeue_deliveries(&Replay::Between { from_ms: 0, to_ms: i64::MAX }, &OrgScope::Everything)
        .await
        .unwrap();
    assert!(requeued > 0);
    work(app).await;
    assert_eq!(snapshot(&app.state.store).await, before, "a replay changed something");
}

on_both_stores!(an_issue_moves_its_ticket_through_the_status_mapping, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    let issue = sim.create_issue("acme", "web", "TypeError: x is undefined");
    let url = webhook_url();
    let send =
        |action: &str, at: i64| sent_at(sim.issue_webhook(&url, &acme, &issue, action, user_actor(1, "Jane")), at);

    deliver(&app, &send("created", 1000)).await;
    work(&app).await;
    let ticket = ticket_of(&app, &acme, &issue).await;
    assert_eq!((ticket.status.as_str(), ticket.title.as_str()), ("todo", "TypeError: x is undefined"));
    assert_eq!(ticket.source, "issue");

    deliver(&app, &send("assigned", 1001)).await;
    work(&app).await;
    assert_eq!(ticket_of(&app, &acme, &issue).await.assignee_email.as_deref(), Some("ada@example.com"));

    for (action, at, expected) in [
        ("resolved", 1002, "done"),
        ("unresolved", 1003, "todo"),
        ("ignored", 1004, "wont_do"),
        ("unresolved", 1005, "todo"),
        ("archived", 1006, "wont_do"),
    ] {
        deliver(&app, &send(action, at)).await;
        work(&app).await;
        assert_eq!(ticket_of(&app, &acme, &issue).await.status, expected, "after {action}");
    }
    let recorded = app.state.store.sentry_issue(&acme, &issue).await.unwrap().unwrap();
    assert_eq!(recorded.status.as_deref(), Some("ignored"));
    replay_everything_changes_nothing(&app).await;
});

on_both_stores!(late_deliveries_lose_to_newer_ones, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    let issue = sim.create_issue("acme", "web", "KeyError");
    let url = webhook_url();
    let send =
        |action: &str, at: i64| sent_at(sim.issue_webhook(&url, &acme, &issue, action, user_actor(1, "Jane")), at);

    deliver(&app, &send("created", 1000)).await;
    deliver(&app, &send("resolved", 1010)).await;
    work(&app).await;
    assert_eq!(ticket_of(&app, &acme, &issue).await.status, "done");

    // Sent before the resolution, arriving after it.
    let late_unresolved = deliver(&app, &send("unresolved", 1005)).await;
    let late_assigned = deliver(&app, &send("assigned", 1001)).await;
    work(&app).await;
    let ticket = ticket_of(&app, &acme, &issue).await;
    assert_eq!(ticket.status, "done", "a late unresolved or assigned does not reopen the ticket");
    assert_eq!(ticket.assignee_email.as_deref(), Some("ada@example.com"), "the assignment itself still applies");
    assert_eq!(delivery_state(&app, late_unresolved).await, "processed");
    assert_eq!(delivery_state(&app, late_assigned).await, "processed");

    // The same outcome whichever order the worker saw them in.
    replay_everything_changes_nothing(&app).await;
});

on_both_stores!(new_issues_open_tickets_only_when_the_setting_says_so, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    settings(&app, &acme, |s| s.open_ticket_on_new_issue = false).await;
    let issue = sim.create_issue("acme", "web", "Timeout");
    let id = deliver(&app, &sim.issue_webhook(&webhook_url(), &acme, &issue, "created", user_actor(1, "J"))).await;
    work(&app).await;
    assert_eq!(delivery_state(&app, id).await, "processed");
    assert!(app.state.store.ticket_for_issue(&acme, &issue).await.unwrap().is_none());
    let recorded = app.state.store.sentry_issue(&acme, &issue).await.unwrap().expect("the issue is recorded");
    assert_eq!(recorded.title.as_deref(), Some("Timeout"));
});

on_both_stores!(alerts_open_one_ticket_per_issue_and_count_occurrences, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    settings(&app, &acme, |s| {
        s.open_ticket_on_new_issue = false;
        s.user_mapping.insert("ada@sentry.example".into(), "ada@board.example".into());
    })
    .await;
    let issue = sim.create_issue("acme", "web", "Checkout fails");
    let url = webhook_url();
    let alert = || {
        sim.event_alert_triggered(
            &url,
            &acme,
            &issue,
            "Checkout errors",
            &[("assignee", json!("ada@sentry.example")), ("title", json!("Fix checkout")), ("points", json!(3))],
        )
    };

    deliver(&app, &alert()).await;
    deliver(&app, &alert()).await;
    deliver(&app, &sim.error_created(&url, &acme, &issue)).await;
    work(&app).await;
    let ticket = ticket_of(&app, &acme, &issue).await;
    assert_eq!(ticket.title, "Fix checkout", "the rule's settings name the ticket");
    assert_eq!(ticket.assignee_email.as_deref(), Some("ada@board.example"), "through the user mapping");
    assert_eq!(ticket.source, "event_alert");
    assert_eq!(ticket.occurrences, 3, "two alerted events and one more error");
    assert_eq!(app.state.store.sentry_issue(&acme, &issue).await.unwrap().unwrap().event_count, 3);

    // Resolved, then alerted again: the same ticket reopens.
    deliver(&app, &sim.issue_webhook(&url, &acme, &issue, "resolved", user_actor(1, "J"))).await;
    work(&app).await;
    assert_eq!(ticket_of(&app, &acme, &issue).await.status, "done");
    deliver(&app, &alert()).await;
    work(&app).await;
    let reopened = ticket_of(&app, &acme, &issue).await;
    assert_eq!((reopened.id, reopened.status.as_str(), reopened.occurrences), (ticket.id, "todo", 4));
    // The ticket's history says who did what: Sentry's person, then the rule.
    let history: Vec<(String, String)> = app
        .state
        .store
        .ticket_history(TicketId(ticket.id))
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.source.as_str().to_owned(), e.summary))
        .collect();
    let last_two = &history[history.len() - 2..];
    assert_eq!(last_two[0].0, "sentry");
    assert!(last_two[0].1.starts_with("moved to Done"), "{history:?}");
    assert_eq!(last_two[1].0, "rule");
    assert!(last_two[1].1.starts_with("reopened by the alert rule"), "{history:?}");
    replay_everything_changes_nothing(&app).await;
});

on_both_stores!(service_hook_events_attach_to_the_issues_ticket, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    let issue = sim.create_issue("acme", "web", "ZeroDivisionError");
    deliver(&app, &sim.issue_webhook(&webhook_url(), &acme, &issue, "created", user_actor(1, "J"))).await;
    let hook = issuebridge::installations::service_hooks::register(
        &app.state,
        &InstallationUuid::parse(&acme).unwrap(),
        "web",
        &["event.created", "event.alert"],
    )
    .await
    .unwrap();
    for _ in 0..2 {
        deliver(&app, &sim.service_hook_delivery(&hook, &issue)).await;
    }
    work(&app).await;
    assert_eq!(ticket_of(&app, &acme, &issue).await.occurrences, 2);
    replay_everything_changes_nothing(&app).await;
});

on_both_stores!(metric_alerts_follow_their_lifecycle, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    let url = webhook_url();
    let send = |action: &str, at: i64| sent_at(sim.metric_alert(&url, &acme, action, "42", "Too many errors"), at);
    let ticket = |app: &TestApp| {
        let store = app.state.store.clone();
        let acme = acme.clone();
        async move {
            let mut tx = store.begin_apply().await.unwrap();
            let (ticket, _) = tx.metric_alert_ticket(&acme, "42").await.unwrap().expect("the alert's ticket");
            tx.rollback().await.unwrap();
            store.ticket_record(ticket.id).await.unwrap().unwrap()
        }
    };

    deliver(&app, &send("open", 1000)).await;
    work(&app).await;
    let opened = ticket(&app).await;
    assert_eq!((opened.status.as_str(), opened.severity.as_deref()), ("todo", Some("open")));
    assert_eq!(opened.title, "Too many errors");

    let critical = deliver(&app, &send("critical", 1001)).await;
    work(&app).await;
    assert_eq!(ticket(&app).await.severity.as_deref(), Some("critical"));

    deliver(&app, &send("resolved", 1003)).await;
    deliver(&app, &send("warning", 1002)).await;
    work(&app).await;
    let closed = ticket(&app).await;
    assert_eq!(closed.id, opened.id, "one ticket per metric alert");
    assert_eq!((closed.status.as_str(), closed.severity.as_deref()), ("done", Some("resolved")));

    // Closed for good: a critical sent after the resolution is newer, so
    // only that rule (not the ordering of changes) keeps the ticket closed.
    let later = deliver(&app, &send("critical", 1004)).await;
    assert_ne!(later, critical, "a new delivery, not a duplicate of the first critical");
    work(&app).await;
    let still = ticket(&app).await;
    assert_eq!((still.status.as_str(), still.severity.as_deref()), ("done", Some("resolved")), "not reopened");
    let later = app.state.store.delivery(later).await.unwrap().unwrap();
    assert_eq!(later.state, "processed");
    assert_eq!(later.note.as_deref(), Some("metric alert 42 was resolved; late critical ignored"));
    replay_everything_changes_nothing(&app).await;
});

on_both_stores!(comments_mirror_by_sentry_id, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    let issue = sim.create_issue("acme", "web", "ValueError");
    let url = webhook_url();
    deliver(&app, &sim.issue_webhook(&url, &acme, &issue, "created", user_actor(1, "J"))).await;
    let comment = |id: i64, text: &'static str, action: &str| {
        sim.comment_webhook(
            &url,
            &acme,
            &CommentRef { issue_id: &issue, comment_id: id, text },
            action,
            user_actor(1, "Jane"),
        )
    };
    deliver(&app, &comment(1, "first look", "created")).await;
    deliver(&app, &comment(1, "first look: a race", "updated")).await;
    deliver(&app, &comment(2, "noise", "created")).await;
    deliver(&app, &comment(2, "noise", "deleted")).await;
    // Arriving after its deletion, a create does not bring it back.
    deliver(&app, &sent_at(comment(2, "noise", "created"), 1)).await;
    work(&app).await;

    let ticket = app.state.store.ticket_for_issue(&acme, &issue).await.unwrap().unwrap();
    let comments = app.state.store.ticket_comments(ticket).await.unwrap();
    let view: Vec<_> = comments
        .iter()
        .map(|c| (c.sentry_comment_id.as_deref().unwrap(), c.body.as_str(), c.deleted_at.is_some()))
        .collect();
    assert_eq!(view, vec![("1", "first look: a race", false), ("2", "noise", true)]);
    assert_eq!(comments[0].author.as_deref(), Some("Jane"));
    replay_everything_changes_nothing(&app).await;
});

on_both_stores!(comments_issuebridge_posted_are_not_mirrored_back, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    let (issue, ticket) = issue_with_ticket(&app, &sim, &acme, "ValueError").await;
    let url = webhook_url();
    let app_actor = json!({ "type": "application", "id": sim.app().uuid, "name": "issuebridge" });

    // Posted through the outbox, Sentry answered with the id, then the
    // webhook came back.
    app.state.store.add_ticket_comment(ticket, "ada", "Deployed a fix").await.unwrap();
    while issuebridge::outbound::sender::run_once(&app.state).await.unwrap() > 0 {}
    assert_eq!(sim.comments_on(&issue).len(), 1, "posted to Sentry");
    let sentry_id = app.state.store.ticket_comments(ticket).await.unwrap()[0].sentry_comment_id.clone().unwrap();
    let echo = |id: &str, text: &'static str| {
        sim.comment_webhook(
            &url,
            &acme,
            &CommentRef { issue_id: &issue, comment_id: id.parse().unwrap(), text },
            "created",
            app_actor.clone(),
        )
    };
    deliver(&app, &echo(&sentry_id, "Deployed a fix")).await;

    // The webhook overtook Sentry's answer: the comment has no id yet.
    app.state.store.add_ticket_comment(ticket, "ada", "Rolling back").await.unwrap();
    deliver(&app, &echo("777", "Rolling back")).await;
    work(&app).await;

    let comments = app.state.store.ticket_comments(ticket).await.unwrap();
    let view: Vec<_> =
        comments.iter().map(|c| (c.origin.as_str(), c.body.as_str(), c.sentry_comment_id.clone())).collect();
    assert_eq!(
        view,
        vec![("console", "Deployed a fix", Some(sentry_id.clone())), ("console", "Rolling back", Some("777".into()))],
        "each comment once, with the id Sentry gave it"
    );
    replay_everything_changes_nothing(&app).await;
});

on_both_stores!(deliveries_for_an_unknown_installation_wait_and_then_apply, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let pending = sim.create_installation("acme");
    let issue = sim.create_issue("acme", "web", "TypeError");
    let id =
        deliver(&app, &sim.issue_webhook(&webhook_url(), &pending.installation, &issue, "created", user_actor(1, "J")))
            .await;
    work(&app).await;
    let waiting = app.state.store.delivery(id).await.unwrap().unwrap();
    assert_eq!(waiting.state, "retry");
    assert!(waiting.last_error.unwrap().contains("not known yet"));

    // The setup redirect completes the install; the retry then applies.
    let answer = follow_redirect(&app, &sim, &pending).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    app.state.store.requeue_deliveries(&Replay::One(id), &OrgScope::Everything).await.unwrap();
    work(&app).await;
    assert_eq!(delivery_state(&app, id).await, "processed");
    assert!(app.state.store.ticket_for_issue(&pending.installation, &issue).await.unwrap().is_some());
});

on_both_stores!(deliveries_that_cannot_apply_are_retried_then_parked_dead, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    // Well-signed, JSON, with an issue, but not as Sentry sends one:
    // retrying cannot help.
    let issue = sim.create_issue("acme", "web", "E");
    let signed = sim.issue_webhook(&webhook_url(), &acme, &issue, "resolved", user_actor(1, "J"));
    let body =
        serde_json::to_vec(&json!({ "action": "resolved", "installation": { "uuid": acme }, "data": { "issue": {} } }))
            .unwrap();
    let broken = resigned(&signed, &body, &sim.app().client_secret);
    let id = deliver(&app, &broken).await;
    work(&app).await;
    let dead = app.state.store.delivery(id).await.unwrap().unwrap();
    assert_eq!(dead.state, "dead");
    assert!(dead.last_error.unwrap().contains("not the issue.resolved payload Sentry sends"));

    // An action nobody handles is kept and marked ignored.
    let issue = sim.create_issue("acme", "web", "F");
    let signed = sim.issue_webhook(&webhook_url(), &acme, &issue, "created", user_actor(1, "J"));
    let mut body: Value = serde_json::from_slice(&signed.body).unwrap();
    body["action"] = json!("unassigned");
    let unknown = resigned(&signed, &issuebridge::sentry::wire::to_sentry_json(&body), &sim.app().client_secret);
    let id = deliver(&app, &unknown).await;
    work(&app).await;
    assert_eq!(delivery_state(&app, id).await, "ignored");
});

/// The installation every fixture of the corpus is addressed to.
const FIXTURE_INSTALLATION: &str = "6a4d3b1c-0000-4000-8000-000000000001";

/// What each fixture of the corpus (but the installation ones) does when
/// the corpus is delivered in order: the worker's note on its delivery, as
/// the console shows it.
const FIXTURE_OUTCOMES: [(&str, &str); 28] = [
    ("issue.created.ids-as-ints.json", "opened IB-1 for issue 1117540176"),
    ("issue.created.json", "issue 1117540176 is linked to IB-1 already"),
    ("issue.created.z-dates-extra-fields.json", "opened IB-2 for issue 1117540177"),
    ("comment.created.app-actor.json", "comment 9002 added to IB-1"),
    ("comment.created.ids-as-strings.json", "comment 9002 on IB-1 unchanged"),
    ("comment.created.json", "comment 9001 added to IB-1"),
    ("comment.deleted.json", "comment 9001 deleted on IB-1"),
    ("comment.updated.json", "comment 9001 on IB-1 unchanged"),
    ("error.created.issue-url-legacy.json", "event counted on issue 1117540176 and IB-1"),
    ("error.created.json", "event counted on issue 1117540176 and IB-1"),
    ("error.created.occurrence.json", "event counted on issue 1117540178"),
    ("event_alert.triggered.json", "alert counted on IB-1"),
    ("event_alert.triggered.no-issue-alert.json", "alert counted on IB-2"),
    ("event_alert.triggered.occurrence.json", "alert opened IB-3 for issue 1117540178"),
    ("issue.archived.json", "IB-1 is Won't do (issue 1117540176 ignored)"),
    ("issue.assigned.json", "IB-1 assigned to omar@acme.example"),
    ("issue.assigned.no-email.json", "issue 1117540177 assigned to user:Omar Haddad; no ticket assignee to change"),
    ("issue.assigned.team.json", "issue 1117540176 assigned to team:frontend; no ticket assignee to change"),
    ("issue.ignored.json", "IB-1 is Won't do (issue 1117540176 ignored)"),
    ("issue.resolved.json", "IB-1 is Done (issue 1117540176 resolved)"),
    ("issue.unresolved.json", "IB-1 is To do (issue 1117540176 unresolved)"),
    ("metric_alert.critical.json", "IB-4 follows metric alert 42: critical"),
    ("metric_alert.critical.other-installation.json", "IB-5 follows metric alert 43: critical"),
    ("metric_alert.open.json", "IB-4 follows metric alert 42: open"),
    ("metric_alert.resolved.json", "IB-4 follows metric alert 42: resolved"),
    // Sent after the resolution: the incident is closed for good.
    ("metric_alert.warning.json", "metric alert 42 was resolved; late warning ignored"),
    // Events an earlier delivery counted already: counted once.
    ("service_hook.event.alert.json", "event on issue 1117540177 was counted before"),
    ("service_hook.event.created.json", "event on issue 1117540176 was counted before"),
];

on_both_stores!(every_fixture_of_the_corpus_is_applied_and_replays_change_nothing, |db| async move {
    use issuebridge::sentry::signature::sign;
    use issuebridge::store::NewServiceHook;
    let (app, sim) = spawn_app_with_sim(db).await;
    let installation = InstallationUuid::parse(FIXTURE_INSTALLATION).unwrap();
    let store = &app.state.store;
    issuebridge::store::testing::add_installed(store, FIXTURE_INSTALLATION, "acme").await.unwrap();
    let hook_secret = "fixture-hook-secret";
    store
        .add_service_hook(&NewServiceHook {
            id: "fixture-hook".into(),
            installation: installation.clone(),
            project_slug: "web".into(),
            url: "http://issuebridge.test/sentry/service-hook".into(),
            events: r#"["event.created","event.alert"]"#.into(),
            sealed_secret: app.state.cipher.seal(
                hook_secret.as_bytes(),
                &issuebridge::installations::service_hooks::secret_context("fixture-hook"),
            ),
        })
        .await
        .unwrap();

    let corpus = fixture_corpus();
    assert!(corpus.len() >= 30, "the corpus is there");
    let mut delivered = Vec::new();
    for (at, (name, body)) in (1_700_000_000i64..).zip(&corpus) {
        let resource = name.split('.').next().unwrap();
        if resource == "installation" {
            // These call Sentry to exchange a code; the install tests cover
            // that path. Here: they parse as the handler reads them.
            serde_json::from_slice::<issuebridge::installations::install::InstallationWebhook>(body)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            continue;
        }
        let request = if resource == "service_hook" {
            Request::post("/sentry/service-hook")
                .header("content-type", "application/json")
                .header("x-servicehook-guid", "0123456789abcdef0123456789abcdef")
                .header("x-servicehook-timestamp", at.to_string())
                .header("x-servicehook-signature", sign(hook_secret.as_bytes(), body))
        } else {
            Request::post("/sentry/webhook")
                .header("content-type", "application/json")
                .header("request-id", format!("{at:032x}"))
                .header("sentry-hook-resource", resource)
                .header("sentry-hook-timestamp", at.to_string())
                .header("sentry-hook-signature", sign(sim.app().client_secret.as_bytes(), body))
        };
        let answer = app.send(request.body(Body::from(body.clone())).unwrap()).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.body);
        let id = serde_json::from_str::<Value>(&answer.body).unwrap()["delivery"].as_i64().unwrap();
        delivered.push((name.clone(), id));
    }
    work(&app).await;

    let names: Vec<&str> = delivered.iter().map(|(name, _)| name.as_str()).collect();
    let expected: Vec<&str> = FIXTURE_OUTCOMES.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, expected, "each fixture has its expected outcome, in delivery order");
    for ((name, id), (_, note)) in delivered.iter().zip(FIXTURE_OUTCOMES) {
        let delivery = store.delivery(*id).await.unwrap().unwrap();
        assert!(
            matches!(delivery.state.as_str(), "processed" | "ignored"),
            "{name} ended {} ({:?})",
            delivery.state,
            delivery.last_error
        );
        // Every fixture is a resource and action issuebridge handles: none
        // may end ignored, and each did what its note says.
        assert_eq!(
            (delivery.state.as_str(), delivery.note.as_deref()),
            ("processed", Some(note)),
            "{name} ({:?})",
            delivery.last_error
        );
    }
    // What the corpus leaves behind, every handler's effect in one view.
    let mut after = snapshot(store).await;
    after.sort();
    assert_eq!(
        after,
        [
            "comment 1 9001 Looks like the list is rendered before the fetch resolves. deleted",
            "comment 1 9002 Linked to ACME-812 by issuebridge. live",
            "issue 1117540176 unresolved team:frontend 2",
            "issue 1117540177 unresolved user:Omar Haddad 0",
            "issue 1117540178 - - 1",
            "link 1117540176 1",
            "link 1117540177 2",
            "link 1117540178 3",
            "ticket 1 todo omar@acme.example 2 - TypeError: Cannot read properties of undefined (reading 'map')",
            "ticket 2 todo - 0 - ReferenceError: checkoutTotal is not defined",
            "ticket 3 todo - 1 - N+1 Query",
            "ticket 4 done - 0 resolved Too many errors",
            "ticket 5 todo - 0 critical Payment failures",
        ]
    );
    let primary = ticket_of(&app, FIXTURE_INSTALLATION, "1117540176").await;
    assert!(primary.occurrences > 0, "errors, alerts and service-hook events count on the issue's ticket");
    let issue = store.sentry_issue(FIXTURE_INSTALLATION, "1117540176").await.unwrap().unwrap();
    assert_eq!(issue.short_id.as_deref(), Some("WEB-3"));
    replay_everything_changes_nothing(&app).await;
});

/// Two instances on one PostgreSQL database share the batches and apply
/// each delivery once: one attempt each, one ticket per issue, each event
/// counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres_apply_each_delivery_once() {
    let Some(db) = issuebridge::store::testing::TestDatabase::postgres().await else { return };
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    let url = webhook_url();
    // 660 deliveries: more than one claim of the worker's (4 lanes of 128),
    // so both instances must get a share.
    let mut issues = Vec::new();
    for n in 0..330 {
        let issue = sim.create_issue("acme", "web", &format!("Error {n}"));
        deliver(&app, &sim.issue_webhook(&url, &acme, &issue, "created", user_actor(1, "J"))).await;
        deliver(&app, &sim.error_created(&url, &acme, &issue)).await;
        issues.push(issue);
    }
    let (a, b) = crate::helpers::drain_with_two_instances(&app).await;
    assert_eq!(a + b, 660, "every delivery claimed once");
    assert!(a > 0 && b > 0, "both instances took a share ({a} and {b})");
    let Store::Postgres(pool) = &app.state.store else { unreachable!() };
    let attempts: Vec<i64> =
        sqlx::query_scalar("select count(*) from delivery_attempt group by delivery_id").fetch_all(pool).await.unwrap();
    assert_eq!(attempts.len(), 660);
    assert!(attempts.iter().all(|n| *n == 1), "one attempt per delivery");
    for issue in &issues {
        let ticket = ticket_of(&app, &acme, issue).await;
        assert_eq!(ticket.occurrences, 1, "issue {issue}");
    }
}

on_both_stores!(a_late_issue_created_opens_its_ticket_where_the_issue_stands, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    let issue = sim.create_issue("acme", "web", "Resolved before it was created");
    let url = webhook_url();
    let send = |action: &str, at: i64| sent_at(sim.issue_webhook(&url, &acme, &issue, action, user_actor(1, "J")), at);
    deliver(&app, &send("resolved", 1010)).await;
    work(&app).await;
    deliver(&app, &send("created", 1000)).await;
    work(&app).await;
    assert_eq!(ticket_of(&app, &acme, &issue).await.status, "done");
    replay_everything_changes_nothing(&app).await;
});

on_both_stores!(comments_are_echoes_only_when_the_app_wrote_them_and_edits_keep_their_order, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    let (issue, ticket) = issue_with_ticket(&app, &sim, &acme, "ValueError").await;
    let url = webhook_url();
    // A console "+1" that Sentry never took keeps no Sentry id; a person's
    // "+1" in Sentry is theirs, not its echo.
    app.state.store.add_ticket_comment(ticket, "ada", "+1").await.unwrap();
    let comment = |id: i64, text: &'static str, action: &str, at: i64| {
        let reference = CommentRef { issue_id: &issue, comment_id: id, text };
        sent_at(sim.comment_webhook(&url, &acme, &reference, action, user_actor(7, "Grace")), at)
    };
    deliver(&app, &comment(5, "+1", "created", 1000)).await;
    deliver(&app, &comment(6, "draft", "created", 1000)).await;
    deliver(&app, &comment(6, "final", "updated", 1002)).await;
    deliver(&app, &comment(6, "second draft", "updated", 1001)).await;
    work(&app).await;
    let comments = app.state.store.ticket_comments(ticket).await.unwrap();
    let view: Vec<_> =
        comments.iter().map(|c| (c.origin.as_str(), c.body.as_str(), c.sentry_comment_id.as_deref())).collect();
    assert_eq!(view, vec![("console", "+1", None), ("sentry", "+1", Some("5")), ("sentry", "final", Some("6"))]);
});

on_both_stores!(an_installation_needing_reauthorization_still_syncs, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    let reauth = "update installation set status = 'needs_reauth'";
    match &app.state.store {
        Store::Sqlite(pool) => drop(sqlx::query(reauth).execute(pool).await.unwrap()),
        Store::Postgres(pool) => drop(sqlx::query(reauth).execute(pool).await.unwrap()),
    }
    let issue = sim.create_issue("acme", "web", "Still synced");
    let id = deliver(&app, &sim.issue_webhook(&webhook_url(), &acme, &issue, "created", user_actor(1, "J"))).await;
    work(&app).await;
    assert_eq!(delivery_state(&app, id).await, "processed");
    assert!(app.state.store.ticket_for_issue(&acme, &issue).await.unwrap().is_some());
});

// Sentry's uuids are lower-case, but the parser accepts any case and the
// store keeps them lower-case: a delivery naming its installation in upper
// case must find it, from intake to the handler.
on_both_stores!(an_upper_case_installation_uuid_finds_its_installation, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    let issue = sim.create_issue("acme", "web", "Shouted uuid");
    let signed = sim.issue_webhook(&webhook_url(), &acme, &issue, "created", user_actor(1, "Jane"));
    let shouted = String::from_utf8(signed.body.clone()).unwrap().replace(&acme, &acme.to_ascii_uppercase());
    assert_ne!(shouted.as_bytes(), signed.body.as_slice(), "the payload names the installation");
    let id = deliver(&app, &resigned(&signed, shouted.as_bytes(), &sim.app().client_secret)).await;
    work(&app).await;
    assert_eq!(delivery_state(&app, id).await, "processed");
    assert_eq!(ticket_of(&app, &acme, &issue).await.title, "Shouted uuid");
});

/// Moves every stored delivery `ms` into the past, as if it had arrived then.
async fn age_deliveries(store: &Store, ms: i64) {
    let sql = "update delivery set received_at = received_at - $1";
    match store {
        Store::Sqlite(pool) => sqlx::query(sql).bind(ms).execute(pool).await.map(drop).unwrap(),
        Store::Postgres(pool) => sqlx::query(sql).bind(ms).execute(pool).await.map(drop).unwrap(),
    }
}

on_both_stores!(an_identical_delivery_after_the_dedupe_window_is_applied_again, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    let (issue, _) = issue_with_ticket(&app, &sim, &acme, "KeyError").await;
    let now = issuebridge::domain::time::now_ms() / 1000;
    let url = webhook_url();
    let resolved = sim.issue_webhook(&url, &acme, &issue, "resolved", user_actor(1, "Jane"));
    let unresolved = sim.issue_webhook(&url, &acme, &issue, "unresolved", user_actor(1, "Jane"));

    deliver(&app, &sent_at(resolved.clone(), now + 1)).await;
    deliver(&app, &sent_at(unresolved, now + 2)).await;
    work(&app).await;
    assert_eq!(ticket_of(&app, &acme, &issue).await.status, "todo");

    // Sentry's retry of the resolution, within the window: counted, not applied.
    let retry = app.send(to_request(&sent_at(resolved.clone(), now + 3))).await;
    assert_eq!(serde_json::from_str::<Value>(&retry.body).unwrap()["status"], "duplicate");
    work(&app).await;
    assert_eq!(ticket_of(&app, &acme, &issue).await.status, "todo");

    // An hour and more later the issue is resolved again, and Sentry sends
    // a body identical to the first: a new delivery, applied.
    age_deliveries(&app.state.store, 2 * 60 * 60 * 1000).await;
    let again = app.send(to_request(&sent_at(resolved, now + 4))).await;
    let again: Value = serde_json::from_str(&again.body).unwrap();
    assert_eq!(again["status"], "accepted", "{again}");
    work(&app).await;
    assert_eq!(ticket_of(&app, &acme, &issue).await.status, "done");
    assert_eq!(delivery_state(&app, again["delivery"].as_i64().unwrap()).await, "processed");
    // Both copies stay in the delivery log.
    assert_eq!(app.state.store.count_deliveries().await.unwrap(), 4);
});

on_both_stores!(a_far_future_timestamp_cannot_freeze_a_ticket, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    let (issue, _) = issue_with_ticket(&app, &sim, &acme, "KeyError").await;
    let url = webhook_url();
    let year_2100 = 4_102_444_800;
    deliver(&app, &sent_at(sim.issue_webhook(&url, &acme, &issue, "resolved", user_actor(1, "J")), year_2100)).await;
    work(&app).await;
    assert_eq!(ticket_of(&app, &acme, &issue).await.status, "done");

    // Sentry's clock two minutes ahead of ours: later than the forged
    // change as far as anyone can tell, so it applies.
    let ahead = issuebridge::domain::time::now_ms() / 1000 + 120;
    deliver(&app, &sent_at(sim.issue_webhook(&url, &acme, &issue, "unresolved", user_actor(1, "J")), ahead)).await;
    work(&app).await;
    assert_eq!(ticket_of(&app, &acme, &issue).await.status, "todo", "the year-2100 change did not freeze the ticket");
});
