//! The sync back to Sentry, through the real path: a change on a ticket →
//! outbox row in the change's transaction → sender → the simulated Sentry,
//! whose own state is checked after each step, on both stores. Sentry's
//! echoes of our changes come back as the webhooks Sentry would send, and
//! must change nothing and send nothing.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use issuebridge::domain::access::OrgScope;
use issuebridge::domain::ids::TicketId;
use issuebridge::domain::outbox::{OutboxKind, OutboxState, TicketEdit};
use issuebridge::domain::ticket::TicketStatus;
use issuebridge::on_both_stores;
use issuebridge::outbound::sender;
use issuebridge::sentry::api::RetryPolicy;
use issuebridge::store::outbox::OutboxQuery;
use issuebridge::store::ticket_edit::TicketRef;
use issuebridge::store::{Replay, Store};
use issuebridge_server::sim::driver::{user_actor, SignedRequest};
use issuebridge_server::sim::Simulator;

use crate::helpers::{follow_redirect, spawn_app_with_sim, to_request, webhook_url, TestApp};

async fn deliver(app: &TestApp, signed: &SignedRequest) {
    let answer = app.send(to_request(signed)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

async fn work(app: &TestApp) {
    while issuebridge::pipeline::worker::run_once(&app.state).await.unwrap() > 0 {}
}

/// An app on the simulator whose sender and API client wait milliseconds,
/// not seconds, between attempts; with acme installed.
async fn sync_app(db: issuebridge::store::testing::TestDatabase) -> (TestApp, Simulator, String) {
    let (mut app, sim) = spawn_app_with_sim(db).await;
    quick(&mut app.state);
    let pending = sim.create_installation("acme");
    let answer = follow_redirect(&app, &sim, &pending).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    (app, sim, pending.installation)
}

fn quick(state: &mut issuebridge::AppState) {
    state.outbox_policy.base_delay = Duration::from_millis(5);
    state.outbox_policy.max_delay = Duration::from_millis(20);
    let client = state.sentry.as_deref().expect("a Sentry").clone().with_policy(RetryPolicy {
        max_retries: 0,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_rate_limit_wait: Duration::from_secs(3),
        request_timeout: Duration::from_secs(5),
    });
    state.sentry = Some(Arc::new(client));
}

/// Runs the sender until no row is pending (waiting out retries).
async fn drain(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if sender::run_once(&app.state).await.unwrap() == 0 {
            if app.state.store.outbox_pending().await.unwrap() == 0 {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "the outbox did not drain");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Runs the sender a few rounds without waiting for it to drain.
async fn try_sending(app: &TestApp, rounds: usize) {
    for _ in 0..rounds {
        sender::run_once(&app.state).await.unwrap();
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The request as if Sentry had sent it `seconds` from now (the timestamp
/// header is not signed).
fn sent_in(mut signed: SignedRequest, seconds: i64) -> SignedRequest {
    let at = issuebridge::domain::time::now_ms() / 1000 + seconds;
    for (name, value) in signed.headers.iter_mut() {
        if name == "Sentry-Hook-Timestamp" {
            *value = at.to_string();
        }
    }
    signed
}

/// Delivers the webhooks Sentry sends about our own changes, and applies
/// them. They are dated a little later than now, as echoes arriving after
/// more changes were made here would be: applying one would undo those.
async fn deliver_echoes(app: &TestApp, sim: &Simulator) -> usize {
    let echoes = sim.take_echoes(&webhook_url());
    for echo in echoes.iter().cloned() {
        deliver(app, &sent_in(echo, 5)).await;
    }
    work(app).await;
    echoes.len()
}

/// A new Sentry issue whose `issue.created` opened a ticket; the ticket as
/// the console finds it.
async fn issue_with_ticket(app: &TestApp, sim: &Simulator, acme: &str, title: &str) -> (String, TicketRef) {
    let issue = sim.create_issue("acme", "web", title);
    deliver(app, &sim.issue_webhook(&webhook_url(), acme, &issue, "created", user_actor(1, "Jane Doe"))).await;
    work(app).await;
    let id = app.state.store.ticket_for_issue(acme, &issue).await.unwrap().expect("a ticket");
    (issue, ticket_ref(app, acme, id).await)
}

async fn ticket_ref(app: &TestApp, installation: &str, id: TicketId) -> TicketRef {
    let board = app.state.store.list_tickets(&OrgScope::Everything, 500).await.unwrap();
    let key = board.into_iter().find(|t| t.id == id).expect("on the board").key;
    app.state.store.ticket_ref(&OrgScope::Everything, installation, &key).await.unwrap().expect("found")
}

async fn edit(app: &TestApp, ticket: &TicketRef, edit: TicketEdit) {
    app.state.store.edit_ticket(ticket, &edit, "jane@example.com").await.unwrap();
}

fn status(status: TicketStatus) -> TicketEdit {
    TicketEdit { status: Some(status), ..Default::default() }
}

fn assignee(email: Option<&str>) -> TicketEdit {
    TicketEdit { assignee: Some(email.map(str::to_owned)), ..Default::default() }
}

async fn rows(app: &TestApp, state: Option<OutboxState>) -> Vec<issuebridge::domain::outbox::OutboxItem> {
    let query = OutboxQuery { state, limit: 500, ..Default::default() };
    app.state.store.outbox_items(&OrgScope::Everything, &query).await.unwrap()
}

async fn ticket_status(app: &TestApp, ticket: &TicketRef) -> String {
    app.state.store.ticket_record(ticket.id).await.unwrap().unwrap().status
}

/// Everything the sync writes, as sorted lines (tickets, comments, links,
/// outbox rows): equal snapshots mean nothing changed.
async fn snapshot(store: &Store) -> Vec<String> {
    let sql =
        "select 'ticket ' || cast(id as text) || ' ' || status || ' ' || coalesce(assignee_email, '-') from ticket
               union all
               select 'comment ' || cast(id as text) || ' ' || coalesce(sentry_comment_id, '-') || ' ' || body
                      || case when deleted_at is null then '' else ' deleted' end from comment
               union all
               select 'link ' || sentry_issue_id || ' ' || cast(ticket_id as text) from ticket_link
               union all
               select 'outbox ' || cast(id as text) || ' ' || kind || ' ' || state from outbox
               union all
               select 'history ' || cast(id as text) || ' ' || summary from ticket_event
               order by 1";
    match store {
        Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
    }
}

on_both_stores!(each_kind_of_change_reaches_sentry_once_and_its_echo_changes_nothing, |db| async move {
    let (app, sim, acme) = sync_app(db).await;
    let (issue, ticket) = issue_with_ticket(&app, &sim, &acme, "TypeError: cart is undefined").await;

    // A ticket issuebridge opened by itself is linked in Sentry's sidebar.
    drain(&app).await;
    let links = sim.external_issues();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0].issue_id, issue);
    assert_eq!(links[0].identifier, ticket.key.to_string());
    assert_eq!(links[0].project, ticket.key.team.to_string());
    assert_eq!(
        links[0].web_url,
        format!("http://issuebridge.test/tickets/{}?installation={acme}", ticket.key),
        "the sidebar links the ticket's page"
    );

    // Status, both ways through the mapping.
    for (to, sentry) in [
        (TicketStatus::Done, "resolved"),
        (TicketStatus::InProgress, "unresolved"),
        (TicketStatus::WontDo, "ignored"),
        (TicketStatus::Todo, "unresolved"),
    ] {
        let puts = sim.requests("PUT", &format!("/issues/{issue}/"));
        edit(&app, &ticket, status(to)).await;
        drain(&app).await;
        assert_eq!(sim.issue(&issue).unwrap().status, sentry, "{to:?}");
        assert_eq!(sim.requests("PUT", &format!("/issues/{issue}/")), puts + 1, "{to:?} sent once");
    }

    // Assignee: a member by email; unassigning; an email Sentry does not
    // know leaves Sentry's assignee alone and says so on the ticket.
    edit(&app, &ticket, assignee(Some("jane@example.com"))).await;
    drain(&app).await;
    assert_eq!(sim.issue(&issue).unwrap().assigned_to.as_deref(), Some("user:1"));
    edit(&app, &ticket, assignee(Some("nobody@example.com"))).await;
    drain(&app).await;
    assert_eq!(sim.issue(&issue).unwrap().assigned_to.as_deref(), Some("user:1"), "left alone");
    let history = app.state.store.ticket_history(ticket.id).await.unwrap();
    assert!(
        history.iter().any(|e| e.summary.contains("no member of acme has the email nobody@example.com")),
        "{history:?}"
    );
    assert_eq!(rows(&app, Some(OutboxState::Skipped)).await.len(), 1);
    edit(&app, &ticket, assignee(None)).await;
    drain(&app).await;
    assert_eq!(sim.issue(&issue).unwrap().assigned_to, None);

    // Comments: posted, edited, deleted.
    let comment = app.state.store.add_ticket_comment(ticket.id, "jane@example.com", "Deploying a fix").await.unwrap();
    drain(&app).await;
    let in_sentry = sim.comments_on(&issue);
    assert_eq!(in_sentry.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(), ["Deploying a fix"]);
    app.state
        .store
        .change_ticket_comment(&ticket, comment, "jane@example.com", false, Some("Fix deployed in 4.2"))
        .await
        .unwrap();
    drain(&app).await;
    assert_eq!(sim.comments_on(&issue)[0].text, "Fix deployed in 4.2");

    // Sentry's webhooks about all of that come back (the app is the actor):
    // they change nothing here and send nothing back.
    let before = snapshot(&app.state.store).await;
    let requests_before = sim.requests("PUT", "/") + sim.requests("POST", "/") + sim.requests("DELETE", "/");
    let echoed = deliver_echoes(&app, &sim).await;
    assert!(echoed >= 7, "Sentry announced our changes ({echoed})");
    drain(&app).await;
    assert_eq!(snapshot(&app.state.store).await, before, "an echo changed something");
    assert_eq!(
        sim.requests("PUT", "/") + sim.requests("POST", "/") + sim.requests("DELETE", "/"),
        requests_before,
        "an echo sent something back"
    );

    app.state.store.change_ticket_comment(&ticket, comment, "jane@example.com", false, None).await.unwrap();
    drain(&app).await;
    assert!(sim.comments_on(&issue).is_empty(), "deleted in Sentry");

    // Another person's comment may not be changed by Jane.
    let theirs = app.state.store.add_ticket_comment(ticket.id, "sam@example.com", "Mine").await.unwrap();
    let refused = app.state.store.change_ticket_comment(&ticket, theirs, "jane@example.com", false, Some("x")).await;
    assert!(refused.is_err());

    // Replaying every inbound delivery sends nothing new.
    drain(&app).await;
    let queued = rows(&app, None).await.len();
    let requeued = app
        .state
        .store
        .requeue_deliveries(&Replay::Between { from_ms: 0, to_ms: i64::MAX }, &OrgScope::Everything)
        .await
        .unwrap();
    assert!(requeued > 0);
    work(&app).await;
    assert_eq!(rows(&app, None).await.len(), queued, "a replay queued changes for Sentry");
    assert!(rows(&app, Some(OutboxState::Failed)).await.is_empty());
});

on_both_stores!(a_change_made_in_sentry_while_ours_waits_wins_when_it_is_newer, |db| async move {
    let (app, sim, acme) = sync_app(db).await;
    let (issue, ticket) = issue_with_ticket(&app, &sim, &acme, "KeyError: user").await;
    drain(&app).await;

    // Sentry is down: our "done" waits.
    sim.set_down(true);
    edit(&app, &ticket, status(TicketStatus::Done)).await;
    try_sending(&app, 3).await;
    assert_eq!(sim.issue(&issue).unwrap().status, "unresolved");
    let waiting = rows(&app, Some(OutboxState::Pending)).await;
    assert_eq!(waiting.len(), 1);
    assert!(waiting[0].last_error.as_deref().unwrap_or("").contains("could not be reached"), "{waiting:?}");

    // Meanwhile a person ignores the issue in Sentry (a newer change).
    sim.set_issue_status(&issue, "ignored");
    let webhook = sim.issue_webhook(&webhook_url(), &acme, &issue, "ignored", user_actor(1, "Jane Doe"));
    deliver(&app, &sent_in(webhook, 2)).await;
    work(&app).await;
    assert_eq!(ticket_status(&app, &ticket).await, "wont_do", "the person's newer change applies");

    // Sentry is back: our older change does not undo theirs.
    sim.set_down(false);
    drain(&app).await;
    assert_eq!(sim.issue(&issue).unwrap().status, "ignored");
    assert_eq!(ticket_status(&app, &ticket).await, "wont_do");
    let superseded = rows(&app, Some(OutboxState::Superseded)).await;
    assert_eq!(superseded.len(), 1, "{superseded:?}");

    // A person's change older than ours loses to ours, here and in Sentry.
    edit(&app, &ticket, status(TicketStatus::Done)).await;
    drain(&app).await;
    let stale = sim.issue_webhook(&webhook_url(), &acme, &issue, "unresolved", user_actor(1, "Jane Doe"));
    deliver(&app, &sent_in(stale, -30)).await;
    work(&app).await;
    assert_eq!(ticket_status(&app, &ticket).await, "done");
    assert_eq!(sim.issue(&issue).unwrap().status, "resolved");
});

on_both_stores!(while_sentry_is_down_changes_wait_and_then_go_in_order, |db| async move {
    let (app, sim, acme) = sync_app(db).await;
    let (issue, ticket) = issue_with_ticket(&app, &sim, &acme, "ZeroDivisionError").await;
    drain(&app).await;

    sim.set_down(true);
    for text in ["first", "second", "third"] {
        app.state.store.add_ticket_comment(ticket.id, "jane@example.com", text).await.unwrap();
    }
    edit(&app, &ticket, status(TicketStatus::Done)).await;
    edit(&app, &ticket, assignee(Some("jane@example.com"))).await;
    try_sending(&app, 4).await;
    assert!(sim.comments_on(&issue).is_empty());
    assert_eq!(app.state.store.outbox_pending().await.unwrap(), 5, "nothing is dropped while Sentry is down");
    // Only the head of the issue's queue is tried: order is kept.
    let tried: Vec<_> = rows(&app, Some(OutboxState::Pending)).await.into_iter().filter(|r| r.attempts > 0).collect();
    assert_eq!(tried.len(), 1, "{tried:?}");
    assert_eq!(tried[0].kind, OutboxKind::CommentCreated);

    sim.set_down(false);
    drain(&app).await;
    let texts: Vec<String> = sim.comments_on(&issue).into_iter().map(|c| c.text).collect();
    assert_eq!(texts, ["first", "second", "third"], "in the order they were written");
    let issue_now = sim.issue(&issue).unwrap();
    assert_eq!((issue_now.status.as_str(), issue_now.assigned_to.as_deref()), ("resolved", Some("user:1")));
    assert!(rows(&app, Some(OutboxState::Failed)).await.is_empty());
});

on_both_stores!(a_429_is_retried_after_sentrys_retry_after, |db| async move {
    let (app, sim, acme) = sync_app(db).await;
    let (issue, ticket) = issue_with_ticket(&app, &sim, &acme, "RateLimited").await;
    drain(&app).await;
    sim.fail_next("PUT", &format!("/issues/{issue}/"), 429, 1);
    edit(&app, &ticket, status(TicketStatus::Done)).await;
    sender::run_once(&app.state).await.unwrap();
    let waiting = rows(&app, Some(OutboxState::Pending)).await;
    assert_eq!(waiting.len(), 1, "waits, not failed: {waiting:?}");
    let wait_ms = waiting[0].next_attempt_at_ms - issuebridge::domain::time::now_ms();
    assert!(wait_ms >= 800, "not before Retry-After's second is over ({wait_ms} ms)");
    drain(&app).await;
    assert_eq!(sim.issue(&issue).unwrap().status, "resolved");
    assert_eq!(sim.requests("PUT", &format!("/issues/{issue}/")), 2, "refused once, then sent once");
    assert!(rows(&app, Some(OutboxState::Failed)).await.is_empty());
});

on_both_stores!(a_change_sentry_refuses_is_marked_and_can_be_retried, |db| async move {
    let (app, sim, acme) = sync_app(db).await;
    let (issue, ticket) = issue_with_ticket(&app, &sim, &acme, "IndexError").await;
    drain(&app).await;

    // The issue was deleted in Sentry: 404, for good.
    sim.delete_issue(&issue);
    edit(&app, &ticket, status(TicketStatus::Done)).await;
    app.state.store.add_ticket_comment(ticket.id, "jane@example.com", "still there?").await.unwrap();
    drain(&app).await;
    let failed = rows(&app, Some(OutboxState::Failed)).await;
    assert_eq!(failed.len(), 2, "both refused, the second not stuck behind the first: {failed:?}");
    assert!(failed.iter().all(|r| r.last_error.as_deref().unwrap_or("").contains("404")));
    let history = app.state.store.ticket_history(ticket.id).await.unwrap();
    assert!(history.iter().any(|e| e.summary.starts_with("Sentry did not take a change")), "{history:?}");

    // It comes back; a person retries both.
    sim.adopt_issue(&issue, "acme", "web", "WEB-1", "IndexError");
    for row in &failed {
        assert!(app.state.store.retry_outbox(&OrgScope::Everything, row.id).await.unwrap());
    }
    // Not in someone else's organizations.
    let outsider = OrgScope::Orgs(vec![]);
    assert!(!app.state.store.retry_outbox(&outsider, failed[0].id).await.unwrap());
    drain(&app).await;
    assert_eq!(sim.issue(&issue).unwrap().status, "resolved");
    assert_eq!(sim.comments_on(&issue).len(), 1);
    assert!(rows(&app, Some(OutboxState::Failed)).await.is_empty());

    // Uninstalled: nothing more can be sent, and it says so.
    app.state.store.add_ticket_comment(ticket.id, "jane@example.com", "after uninstall").await.unwrap();
    deliver(&app, &sim.uninstall(&webhook_url(), &acme, user_actor(1, "Jane Doe"))).await;
    work(&app).await;
    drain(&app).await;
    let failed = rows(&app, Some(OutboxState::Failed)).await;
    assert_eq!(failed.len(), 1);
    assert!(failed[0].last_error.as_deref().unwrap().contains("uninstalled"), "{failed:?}");
});

on_both_stores!(two_instances_share_the_outbox_and_send_each_change_once, |db| async move {
    let (app, sim, acme) = sync_app(db).await;
    let mut tickets = Vec::new();
    for n in 0..12 {
        tickets.push(issue_with_ticket(&app, &sim, &acme, &format!("Shared {n}")).await);
    }
    let mut other = issuebridge_server::startup::prepare_state((*app.state.config).clone()).await.unwrap();
    quick(&mut other);
    // Small claims, so the two take turns.
    let mut app = app;
    app.state.outbox_policy.batch = 3;
    other.outbox_policy.batch = 3;
    for (_, ticket) in &tickets {
        edit(&app, ticket, status(TicketStatus::Done)).await;
        app.state.store.add_ticket_comment(ticket.id, "jane@example.com", "on it").await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (mut a, mut b) = (0, 0);
    while app.state.store.outbox_pending().await.unwrap() > 0 {
        assert!(tokio::time::Instant::now() < deadline);
        let (x, y) = tokio::join!(sender::run_once(&app.state), sender::run_once(&other));
        a += x.unwrap();
        b += y.unwrap();
    }
    assert!(a > 0 && b > 0, "both instances sent ({a}, {b})");
    for (issue, _) in &tickets {
        assert_eq!(sim.requests("PUT", &format!("/issues/{issue}/")), 1, "status sent once");
        assert_eq!(sim.comments_on(issue).len(), 1, "comment sent once");
        assert_eq!(sim.issue(issue).unwrap().status, "resolved");
    }
    assert_eq!(sim.external_issues().len(), 12, "each link made once");
});

on_both_stores!(moving_or_unlinking_updates_the_link_in_sentrys_sidebar, |db| async move {
    let (app, sim, acme) = sync_app(db).await;
    let (issue, ticket) = issue_with_ticket(&app, &sim, &acme, "TimeoutError").await;
    drain(&app).await;
    let uuid = issuebridge::domain::ids::InstallationUuid::parse(&acme).unwrap();
    app.state
        .store
        .create_team(uuid.as_str(), &issuebridge::domain::team::TeamKey::parse("OPS").unwrap(), "Operations")
        .await
        .unwrap();

    // Moving the ticket to another team gives it a new identifier; the
    // sidebar follows, and the old identifier still finds the ticket.
    let old_key = ticket.key.clone();
    let moved = app
        .state
        .store
        .edit_ticket(
            &ticket,
            &TicketEdit { team: Some(issuebridge::domain::team::TeamKey::parse("OPS").unwrap()), ..Default::default() },
            "jane@example.com",
        )
        .await
        .unwrap();
    assert_eq!(moved.key.to_string(), "OPS-1");
    drain(&app).await;
    let links = sim.external_issues();
    assert_eq!(links.len(), 1, "the old link went, a new one came: {links:?}");
    assert_eq!(links[0].identifier, "OPS-1");
    let found = app.state.store.ticket_ref(&OrgScope::Everything, &acme, &old_key).await.unwrap().unwrap();
    assert_eq!(found.id, ticket.id);
    assert_eq!(found.key.to_string(), "OPS-1");

    // Unlinking the issue removes the link from Sentry's sidebar.
    app.state.store.unlink_ticket_issue(&found, &issue, "jane@example.com").await.unwrap();
    drain(&app).await;
    assert!(sim.external_issues().is_empty());
    assert!(rows(&app, Some(OutboxState::Failed)).await.is_empty());
});

/// The live feed crosses instances on PostgreSQL: a change published by one
/// reaches a subscriber of the other.
#[tokio::test]
async fn live_changes_cross_instances_on_postgres() {
    let Some(db) = issuebridge::store::testing::TestDatabase::postgres().await else { return };
    let (app, _sim) = spawn_app_with_sim(db).await;
    let other = issuebridge_server::startup::prepare_state((*app.state.config).clone()).await.unwrap();
    let mut heard = other.live.subscribe();
    let change = issuebridge::domain::outbox::LiveChange {
        installation_uuid: "9b6c4d7e-0000-4000-8000-000000000001".into(),
        tickets: vec!["ENG-1".into()],
    };
    // The other instance's listener connects in the background: publish
    // until it hears.
    let received = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            app.state.live.publish(change.clone()).await;
            if let Ok(Ok(got)) = tokio::time::timeout(Duration::from_millis(200), heard.recv()).await {
                return got;
            }
        }
    })
    .await
    .expect("the other instance heard the change");
    assert_eq!(received, change);
}

on_both_stores!(console_changes_are_for_members_of_the_tickets_organization, |db| async move {
    use issuebridge_app::api::{AddComment, LoadOutbox, RetryOutbox, UnlinkIssue, UpdateTicket};
    use leptos::server_fn::ServerFn;
    use serde_json::json;
    let (app, sim, acme) = sync_app(db).await;
    let (issue, ticket) = issue_with_ticket(&app, &sim, &acme, "Scoped").await;
    let key = ticket.key.to_string();
    let mut jane = app.login_as("jane@example.com").await;
    let mut olga = app.login_as("olga@other.example").await;

    let edit = json!({ "installation": acme, "key": key, "edit": { "status": "done" } });
    // Another organization's ticket answers as a missing one, and is untouched.
    let refused = olga.call_json_fn(UpdateTicket::PATH, edit.clone()).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    let missing = jane
        .call_json_fn(
            UpdateTicket::PATH,
            json!({ "installation": acme, "key": "IB-999", "edit": { "status": "done" } }),
        )
        .await;
    assert_eq!((refused.status, refused.body.as_str()), (missing.status, missing.body.as_str()));
    let comment = json!({ "installation": acme, "key": key, "text": "not mine to say" });
    assert_eq!(olga.call_json_fn(AddComment::PATH, comment).await.status, StatusCode::NOT_FOUND);
    let unlink = json!({ "installation": acme, "key": key, "issue": issue });
    assert_eq!(olga.call_json_fn(UnlinkIssue::PATH, unlink).await.status, StatusCode::NOT_FOUND);
    assert_eq!(ticket_status(&app, &ticket).await, "todo");

    // A member's change goes through, to Sentry too.
    let done = jane.call_json_fn(UpdateTicket::PATH, edit).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let bad = jane
        .call_json_fn(UpdateTicket::PATH, json!({ "installation": acme, "key": key, "edit": { "title": "  " } }))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("needs a title"), "{}", bad.body);
    drain(&app).await;
    assert_eq!(sim.issue(&issue).unwrap().status, "resolved");

    // The Outbox view shows only one's own organizations' rows; retrying
    // another's is refused as missing.
    let theirs = olga.call_json_fn(LoadOutbox::PATH, json!({ "state_filter": null, "before": null })).await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert!(serde_json::from_str::<serde_json::Value>(&theirs.body).unwrap()["items"].as_array().unwrap().is_empty());
    let ours = jane.call_json_fn(LoadOutbox::PATH, json!({ "state_filter": "sent", "before": null })).await;
    let items = serde_json::from_str::<serde_json::Value>(&ours.body).unwrap()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2, "the sidebar link and the status: {}", ours.body);
    let id = items[0]["id"].as_i64().unwrap();
    assert_eq!(olga.post_form(RetryOutbox::PATH, &format!("id={id}")).await.status, StatusCode::NOT_FOUND);
});

on_both_stores!(a_comment_sentry_already_has_is_not_posted_twice, |db| async move {
    use issuebridge::installations::tokens::with_token;
    let (app, sim, acme) = sync_app(db).await;
    let (issue, ticket) = issue_with_ticket(&app, &sim, &acme, "LostAnswer").await;
    drain(&app).await;
    // Sentry took the comment but its answer was lost (the sender crashed
    // before recording it, and the row's lease ran out): Sentry has it.
    let comment = app.state.store.add_ticket_comment(ticket.id, "jane@example.com", "Rolled back").await.unwrap();
    let installation = issuebridge::domain::ids::InstallationUuid::parse(&acme).unwrap();
    let org = issuebridge::domain::ids::OrgSlug::parse("acme").unwrap();
    let issue_id = issuebridge::domain::ids::SentryIssueId::parse(&issue).unwrap();
    let client = app.state.sentry.as_deref().unwrap();
    with_token(&app.state, &installation, |token| {
        let (org, issue_id) = (&org, &issue_id);
        async move { client.add_comment(&token, org, issue_id, "Rolled back").await }
    })
    .await
    .unwrap();

    // Sending it again meets Sentry's "already posted": it is there, done.
    drain(&app).await;
    assert_eq!(sim.comments_on(&issue).len(), 1);
    assert!(rows(&app, Some(OutboxState::Failed)).await.is_empty());
    // Its webhook gives it its Sentry id.
    deliver_echoes(&app, &sim).await;
    let stored = app.state.store.ticket_comments(ticket.id).await.unwrap();
    let ours = stored.iter().find(|c| c.id == comment).unwrap();
    assert_eq!(ours.sentry_comment_id.as_deref(), Some(sim.comments_on(&issue)[0].id.to_string().as_str()));
});

/// The next `change` event of a live stream, if one comes within `within`.
async fn next_change(body: &mut axum::body::Body, within: Duration) -> Option<String> {
    use http_body_util::BodyExt;
    tokio::time::timeout(within, async {
        loop {
            let frame = body.frame().await?.ok()?;
            if let Ok(data) = frame.into_data() {
                let text = String::from_utf8_lossy(&data).into_owned();
                if text.contains("event: change") {
                    return Some(text);
                }
            }
        }
    })
    .await
    .ok()
    .flatten()
}

on_both_stores!(the_live_feed_tells_each_person_only_of_their_organizations, |db| async move {
    use issuebridge_app::api::UpdateTicket;
    use leptos::server_fn::ServerFn;
    use tower::ServiceExt;
    let (app, sim, acme) = sync_app(db).await;
    let (_, ticket) = issue_with_ticket(&app, &sim, &acme, "Live").await;
    let mut jane = app.login_as("jane@example.com").await;
    let olga = app.login_as("olga@other.example").await;
    let open = |cookie: Option<String>| {
        let mut request = axum::http::Request::get("/api/live").body(axum::body::Body::empty()).unwrap();
        if let Some(cookie) = cookie {
            request.headers_mut().insert("cookie", cookie.parse().unwrap());
        }
        app.router.clone().oneshot(request)
    };
    // Without a session there is no feed.
    assert_eq!(open(None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let jane_feed = open(jane.cookie.clone()).await.unwrap();
    assert_eq!(jane_feed.status(), StatusCode::OK);
    assert_eq!(jane_feed.headers()["content-type"], "text/event-stream");
    let mut jane_feed = jane_feed.into_body();
    let mut olga_feed = open(olga.cookie.clone()).await.unwrap().into_body();

    // Jane changes her ticket (with PostgreSQL the feed's listener may
    // still be connecting: change until she hears it).
    let mut heard = None;
    for status in ["done", "todo", "done", "todo", "done"] {
        let edit =
            serde_json::json!({ "installation": acme, "key": ticket.key.to_string(), "edit": { "status": status } });
        assert_eq!(jane.call_json_fn(UpdateTicket::PATH, edit).await.status, StatusCode::OK);
        heard = next_change(&mut jane_feed, Duration::from_secs(2)).await;
        if heard.is_some() {
            break;
        }
    }
    let heard = heard.expect("Jane hears of her organization's change");
    assert!(heard.contains(&acme) && heard.contains(&ticket.key.to_string()), "{heard}");
    // Olga, of another organization, hears nothing of it.
    assert_eq!(next_change(&mut olga_feed, Duration::from_millis(500)).await, None);
});
