//! The UI components Sentry calls, through the simulator's component
//! drivers (requests built and signed exactly as Sentry builds them), on
//! both stores: the schema, selects, issue-link create and link,
//! alert-rule-action settings and their effect, stacktrace links.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use issuebridge::components::definition::uri;
use issuebridge::domain::team::TeamKey;
use issuebridge::on_both_stores;
use issuebridge_server::sim::driver::{user_actor, SignedRequest};
use issuebridge_server::sim::Simulator;
use serde_json::{json, Value};

use crate::helpers::{follow_redirect, spawn_app_with_sim, to_request, webhook_url, Answer, TestApp};

/// Installs the app in `org` through Sentry's redirect.
async fn install(app: &TestApp, sim: &Simulator, org: &str) -> String {
    let pending = sim.create_installation(org);
    let answer = follow_redirect(app, sim, &pending).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    pending.installation
}

/// A team `key` with `members` in an installation.
async fn team(app: &TestApp, installation: &str, key: &str, name: &str, members: &[&str]) -> i64 {
    let store = &app.state.store;
    let id = store.create_team(installation, &TeamKey::parse(key).unwrap(), name).await.unwrap();
    for member in members {
        store.add_team_member(installation, id, member).await.unwrap();
    }
    id
}

async fn send(app: &TestApp, signed: &SignedRequest) -> (Answer, Value) {
    let answer = app.send(to_request(signed)).await;
    let json = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    (answer, json)
}

fn select(
    sim: &Simulator,
    uri: &str,
    installation: &str,
    query: Option<&str>,
    dependent: Option<Value>,
) -> SignedRequest {
    sim.select_request(&webhook_url(), uri, installation, Some("web"), query, dependent.as_ref())
}

/// The `value`s of a select's options.
fn values(options: &Value) -> Vec<String> {
    options.as_array().expect("a bare JSON array").iter().map(|o| o["value"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_schema_is_served_and_printed_as_defined() {
    let db = issuebridge::store::testing::TestDatabase::sqlite();
    let (app, _sim) = spawn_app_with_sim(db).await;
    let answer = app.get("/sentry/schema.json").await;
    assert_eq!(answer.status, StatusCode::OK);
    let served: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(served, issuebridge::components::definition::schema());
    assert_eq!(issuebridge::components::schema::validate(&served), vec![]);
}

on_both_stores!(selects_answer_with_this_installations_teams_members_and_tickets, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    let other = install(&app, &sim, "other-org").await;
    team(&app, &acme, "ENG", "Engineering", &["ada@acme.example", "bob@acme.example"]).await;
    team(&app, &acme, "OPS", "Operations", &["olga@acme.example"]).await;
    team(&app, &other, "SEC", "Security", &["eve@other.example"]).await;

    let (answer, teams) = send(&app, &select(&sim, uri::SELECT_TEAMS, &acme, None, None)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(values(&teams), ["IB", "ENG", "OPS"], "the default team first; never another installation's");
    assert_eq!(teams[0]["default"], true);
    assert_eq!(teams[1]["label"], "Engineering (ENG)");

    // Assignees depend on the team.
    let members = |team: &str| select(&sim, uri::SELECT_ASSIGNEES, &acme, None, Some(json!({"team": team})));
    assert_eq!(values(&send(&app, &members("ENG")).await.1), ["ada@acme.example", "bob@acme.example"]);
    assert_eq!(values(&send(&app, &members("ops")).await.1), ["olga@acme.example"]);
    assert_eq!(values(&send(&app, &members("IB")).await.1), Vec::<String>::new());
    let typed = select(&sim, uri::SELECT_ASSIGNEES, &acme, Some("BO"), Some(json!({"team": "ENG"})));
    assert_eq!(values(&send(&app, &typed).await.1), ["bob@acme.example"]);
    let (missing, body) = send(&app, &members("SEC")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "another installation's team does not exist here");
    assert_eq!(body["message"], "no team SEC in this installation");
    assert_eq!(
        values(&send(&app, &select(&sim, uri::SELECT_ASSIGNEES, &acme, None, None)).await.1),
        Vec::<String>::new()
    );
    let mut broken = select(&sim, uri::SELECT_ASSIGNEES, &acme, None, None);
    broken.url.query_pairs_mut().append_pair("dependentData", "{not json");
    let (bad, body) = send(&app, &broken).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("dependentData"), "{body}");

    // Tickets: searched by what was typed, the exact identifier first.
    for title in ["Checkout fails with 500", "Slow checkout page", "TypeError in cart"] {
        let new = issuebridge::store::NewTicket {
            installation: issuebridge::domain::ids::InstallationUuid::parse(&acme).unwrap(),
            title: title.into(),
            description: String::new(),
            status: issuebridge::domain::ticket::TicketStatus::Todo,
            assignee_email: None,
        };
        app.state.store.create_ticket(&new).await.unwrap();
    }
    let tickets = |query: Option<&str>| select(&sim, uri::SELECT_TICKETS, &acme, query, None);
    let (_, found) = send(&app, &tickets(Some("checkout"))).await;
    assert_eq!(values(&found), ["IB-1", "IB-2"]);
    assert_eq!(found[0]["label"], "IB-1 · Checkout fails with 500");
    assert_eq!(values(&send(&app, &tickets(Some("ib-3"))).await.1)[0], "IB-3");
    assert_eq!(values(&send(&app, &tickets(None)).await.1), ["IB-3", "IB-2", "IB-1"]);
    let other_tickets = select(&sim, uri::SELECT_TICKETS, &other, Some("checkout"), None);
    assert_eq!(values(&send(&app, &other_tickets).await.1), Vec::<String>::new(), "never another installation's");

    // Unknown installations and selects.
    let (unknown, body) =
        send(&app, &select(&sim, uri::SELECT_TEAMS, "7a485448-a9e2-4c85-8a3c-4f44175783c9", None, None)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(body["message"].is_string());
    let (nameless, _) = send(&app, &select(&sim, "/sentry/select/nope", &acme, None, None)).await;
    assert_eq!(nameless.status, StatusCode::NOT_FOUND);
    let mut no_installation = select(&sim, uri::SELECT_TEAMS, &acme, None, None);
    no_installation.url.set_query(Some("query=x"));
    assert_eq!(send(&app, &no_installation).await.0.status, StatusCode::BAD_REQUEST);

    // Uninstalled: not found.
    issuebridge::installations::uninstall::forget_installation(
        &app.state,
        &issuebridge::domain::ids::InstallationUuid::parse(&other).unwrap(),
        "test",
    )
    .await
    .unwrap();
    assert_eq!(send(&app, &select(&sim, uri::SELECT_TEAMS, &other, None, None)).await.0.status, StatusCode::NOT_FOUND);
});

on_both_stores!(every_component_refuses_wrong_and_missing_signatures, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    let issue = sim.create_issue("acme", "web", "Boom");
    let body = sim.issue_link_body(&acme, &issue, json!({"title": "Boom"}), user_actor(1, "Jane"));
    let requests = [
        select(&sim, uri::SELECT_TEAMS, &acme, None, None),
        sim.issue_link_request(&webhook_url(), uri::ISSUE_LINK_CREATE, &body),
        sim.issue_link_request(&webhook_url(), uri::ISSUE_LINK_LINK, &body),
        sim.alert_rule_action_request(
            &webhook_url(),
            uri::ALERT_RULE_ACTION,
            &json!({"fields": [], "installationId": acme}),
        ),
    ];
    for request in requests {
        let mut wrong = request.clone();
        for (name, value) in wrong.headers.iter_mut() {
            if name == "Sentry-App-Signature" {
                *value = issuebridge::sentry::signature::sign(b"not the secret", &request.body);
            }
        }
        assert_eq!(send(&app, &wrong).await.0.status, StatusCode::UNAUTHORIZED, "{}", request.url);
        let mut missing = request.clone();
        missing.headers.retain(|(name, _)| name != "Sentry-App-Signature");
        assert_eq!(send(&app, &missing).await.0.status, StatusCode::UNAUTHORIZED, "{}", request.url);
    }
    assert!(app
        .state
        .store
        .list_tickets(&issuebridge::domain::access::OrgScope::Everything, 10)
        .await
        .unwrap()
        .is_empty());
    let metrics = app.get("/metrics").await.body;
    assert!(
        metrics.contains(
            r#"issuebridge_component_requests_total{component="issue-link:create",outcome="unauthorized"} 2"#
        ),
        "{metrics}"
    );
});

on_both_stores!(issue_link_create_makes_a_linked_ticket_once, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    team(&app, &acme, "ENG", "Engineering", &["ada@acme.example"]).await;
    let issue = sim.create_issue("acme", "web", "TypeError: x is undefined");
    let create = |fields: Value| {
        let body = sim.issue_link_body(&acme, &issue, fields, user_actor(1, "Jane"));
        sim.issue_link_request(&webhook_url(), uri::ISSUE_LINK_CREATE, &body)
    };
    let fields = json!({"title": "TypeError: x is undefined", "description": "in checkout", "team": "ENG",
                        "assignee": "ada@acme.example", "status": "in_progress"});
    let (answer, reply) = send(&app, &create(fields.clone())).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(reply["identifier"], "ENG-1");
    assert_eq!(reply["project"], "ENG");
    assert_eq!(reply["webUrl"], format!("http://issuebridge.test/tickets/ENG-1?installation={acme}"));

    let board = app.state.store.list_tickets(&issuebridge::domain::access::OrgScope::Everything, 10).await.unwrap();
    assert_eq!(board.len(), 1);
    assert_eq!(board[0].assignee.as_deref(), Some("ada@acme.example"));
    assert_eq!(board[0].status, issuebridge::domain::ticket::TicketStatus::InProgress);
    assert_eq!(board[0].linked_issues, 1);

    // The same issue again: refused, naming the ticket.
    let (again, body) = send(&app, &create(fields.clone())).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(body["message"], "this Sentry issue is linked to ENG-1 already");

    // Invalid fields are named; nothing is made.
    let other_issue = sim.create_issue("acme", "web", "Other");
    for (fields, words) in [
        (json!({"title": " "}), "a title is required"),
        (json!({"title": "x", "team": "NOPE"}), "no team NOPE"),
        (json!({"title": "x", "team": "ENG", "assignee": "mallory@evil.example"}), "not a member of Engineering"),
        (json!({"title": "x", "status": "closed"}), "not a ticket status"),
    ] {
        let body = sim.issue_link_body(&acme, &other_issue, fields, user_actor(1, "Jane"));
        let (answer, reply) = send(&app, &sim.issue_link_request(&webhook_url(), uri::ISSUE_LINK_CREATE, &body)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{words}: {}", answer.body);
        assert!(reply["message"].as_str().unwrap().contains(words), "{reply}");
    }
    // Without a team: the default team.
    let body = sim.issue_link_body(&acme, &other_issue, json!({"title": "Other"}), user_actor(1, "Jane"));
    let (answer, reply) = send(&app, &sim.issue_link_request(&webhook_url(), uri::ISSUE_LINK_CREATE, &body)).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(reply["identifier"], "IB-1");

    // Malformed but well-signed bodies: 400, never a 500.
    for raw in [&b"{"[..], b"[]", b"null", br#"{"issueId": "abc", "installationId": "x"}"#, b"\xff\xfe"] {
        let mut request = create(json!({}));
        request.body = raw.to_vec();
        let request = crate::helpers::resigned_component(&request, &sim.app().client_secret);
        let (answer, reply) = send(&app, &request).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{raw:?}: {}", answer.body);
        assert!(reply["message"].is_string());
    }
    // Another installation's uuid in the body: not found.
    let stranger = sim.issue_link_body(
        "7a485448-a9e2-4c85-8a3c-4f44175783c9",
        &other_issue,
        json!({"title": "x"}),
        user_actor(1, "J"),
    );
    let (answer, _) = send(&app, &sim.issue_link_request(&webhook_url(), uri::ISSUE_LINK_CREATE, &stranger)).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
});

on_both_stores!(issue_link_link_reaches_only_this_installations_tickets, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    let other = install(&app, &sim, "other-org").await;
    let store = &app.state.store;
    let new = |installation: &str, title: &str| issuebridge::store::NewTicket {
        installation: issuebridge::domain::ids::InstallationUuid::parse(installation).unwrap(),
        title: title.into(),
        description: String::new(),
        status: issuebridge::domain::ticket::TicketStatus::Todo,
        assignee_email: None,
    };
    store.create_ticket(&new(&acme, "Ours")).await.unwrap();
    store.create_ticket(&new(&other, "Theirs")).await.unwrap();
    store.create_ticket(&new(&other, "Theirs too")).await.unwrap();
    let issue = sim.create_issue("acme", "web", "Boom");
    let link = |ticket: &str| {
        let body = sim.issue_link_body(&acme, &issue, json!({"ticket": ticket}), user_actor(1, "Jane"));
        sim.issue_link_request(&webhook_url(), uri::ISSUE_LINK_LINK, &body)
    };
    let (answer, reply) = send(&app, &link("IB-1")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!((reply["identifier"].as_str(), reply["project"].as_str()), (Some("IB-1"), Some("IB")));
    assert_eq!(send(&app, &link("ib-1")).await.0.status, StatusCode::OK, "linking again changes nothing");
    for (ticket, status) in
        [("IB-2", StatusCode::NOT_FOUND), ("IB-99", StatusCode::NOT_FOUND), ("nonsense", StatusCode::BAD_REQUEST)]
    {
        let (answer, reply) = send(&app, &link(ticket)).await;
        assert_eq!(answer.status, status, "{ticket}: {}", answer.body);
        assert!(reply["message"].is_string());
    }
    let board = store.list_tickets(&issuebridge::domain::access::OrgScope::Everything, 10).await.unwrap();
    let linked: Vec<_> = board.iter().filter(|t| t.linked_issues > 0).map(|t| t.title.as_str()).collect();
    assert_eq!(linked, ["Ours"]);
});

on_both_stores!(alert_rule_settings_are_checked_then_applied_when_the_alert_fires, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    team(&app, &acme, "ENG", "Engineering", &["ada@acme.example"]).await;
    let save = |fields: Value| {
        let body = json!({"fields": fields, "installationId": acme});
        sim.alert_rule_action_request(&webhook_url(), uri::ALERT_RULE_ACTION, &body)
    };
    for (fields, words) in [
        (json!([]), "choose the team"),
        (json!([{"name": "team", "value": "OPS"}]), "there is no team OPS; choose one of IB, ENG"),
        (json!([{"name": "team", "value": "ENG"}, {"name": "assignee", "value": "eve@acme.example"}]), "not a member"),
        (json!([{"name": "team", "value": "ENG"}, {"name": "title", "value": "{title} on {host}"}]), "{host}"),
        (json!([{"name": "team", "value": "ENG"}, {"name": "status", "value": "done"}]), "to do or in progress"),
    ] {
        let (answer, reply) = send(&app, &save(fields)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{words}: {}", answer.body);
        assert!(reply["message"].as_str().unwrap().contains(words), "{reply}");
    }
    let mut malformed = save(json!([]));
    malformed.body = b"{\"fields\": {}}".to_vec();
    let malformed = crate::helpers::resigned_component(&malformed, &sim.app().client_secret);
    assert_eq!(send(&app, &malformed).await.0.status, StatusCode::BAD_REQUEST);

    let settings = [
        ("team", json!("ENG")),
        ("assignee", json!("ada@acme.example")),
        ("title", json!("[{project}/{level}] {title}")),
        ("status", json!("in_progress")),
    ];
    let fields: Vec<Value> = settings.iter().map(|(n, v)| json!({"name": n, "value": v})).collect();
    let (answer, reply) = send(&app, &save(Value::Array(fields))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        reply["message"],
        "Alerts will open tickets on Engineering (ENG), assigned to ada@acme.example, in progress, titled “[{project}/{level}] {title}”."
    );

    // The alert fires with those settings: the ticket follows them.
    let issue = sim.create_issue("acme", "web", "Checkout fails");
    let alert = sim.event_alert_triggered(&webhook_url(), &acme, &issue, "Checkout errors", &settings);
    let answer = app.send(to_request(&alert)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    while issuebridge::pipeline::worker::run_once(&app.state).await.unwrap() > 0 {}
    let board = app.state.store.list_tickets(&issuebridge::domain::access::OrgScope::Everything, 10).await.unwrap();
    assert_eq!(board.len(), 1);
    assert_eq!(board[0].key.to_string(), "ENG-1");
    assert_eq!(board[0].title, "[web/error] Checkout fails");
    assert_eq!(board[0].assignee.as_deref(), Some("ada@acme.example"));
    assert_eq!(board[0].status, issuebridge::domain::ticket::TicketStatus::InProgress);

    // A rule whose team has gone opens in the default team, and says so.
    let other_issue = sim.create_issue("acme", "web", "Other");
    let alert = sim.event_alert_triggered(&webhook_url(), &acme, &other_issue, "Old rule", &[("team", json!("GONE"))]);
    app.send(to_request(&alert)).await;
    while issuebridge::pipeline::worker::run_once(&app.state).await.unwrap() > 0 {}
    let query = issuebridge::store::DeliveryQuery {
        scope: issuebridge::domain::access::OrgScope::Everything,
        filter: Default::default(),
        before_id: None,
        limit: 10,
    };
    let notes = app.state.store.recent_deliveries(&query).await.unwrap();
    assert!(
        notes.iter().any(|d| d.note.as_deref().is_some_and(|n| n.contains("no team GONE: opened in the default team"))),
        "{notes:?}"
    );
});

on_both_stores!(metric_alerts_open_their_ticket_as_the_rule_action_says, |db| async move {
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    team(&app, &acme, "OPS", "Operations", &["olga@acme.example"]).await;
    let settings = [
        ("team", json!("ops")),
        ("assignee", json!("olga@acme.example")),
        ("title", json!("[{level}] {title} in {project} ({rule})")),
    ];
    let alert = sim.metric_alert_with_settings(&webhook_url(), &acme, "critical", "77", "Too many errors", &settings);
    assert_eq!(app.send(to_request(&alert)).await.status, StatusCode::OK);
    while issuebridge::pipeline::worker::run_once(&app.state).await.unwrap() > 0 {}
    let board = app.state.store.list_tickets(&issuebridge::domain::access::OrgScope::Everything, 10).await.unwrap();
    assert_eq!(board.len(), 1);
    assert_eq!(board[0].key.to_string(), "OPS-1");
    assert!(board[0].title.starts_with("[critical] Too many errors in web ("), "{}", board[0].title);
    assert_eq!(board[0].assignee.as_deref(), Some("olga@acme.example"));
});

on_both_stores!(stacktrace_links_redirect_by_the_longest_mapping_and_never_off_its_host, |db| async move {
    use issuebridge::components::stacktrace::MappingForm;
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    let mapping = |project: &str, stack_root: &str, source_root: &str, provider: &str, repo: &str| MappingForm {
        project_slug: project.into(),
        stack_root: stack_root.into(),
        source_root: source_root.into(),
        provider: provider.into(),
        repo_url: repo.into(),
        branch: "main".into(),
    };
    for form in [
        mapping("backend", "", "", "github", "https://github.com/acme/backend"),
        mapping("backend", "src/billing", "billing", "gitlab", "https://gitlab.com/acme/billing"),
        mapping("web", "static/js", "frontend/src", "bitbucket", "https://bitbucket.org/acme/web"),
        mapping("docs", "", "", "template", "https://code.acme.example/{branch}/{path}?line={line}"),
    ] {
        app.state.store.save_code_mapping(&acme, &form.parse().unwrap()).await.unwrap();
    }
    let open = |project: &str, filename: &str, line: &str| {
        let mut url = url::Url::parse("http://issuebridge.test/sentry/stacktrace-link").unwrap();
        url.query_pairs_mut()
            .append_pair("installationId", &acme)
            .append_pair("projectSlug", project)
            .append_pair("lineNo", line)
            .append_pair("filename", filename);
        let path = format!("{}?{}", url.path(), url.query().unwrap());
        let app = &app;
        async move { app.send(Request::get(path).header("host", "issuebridge.test").body(Body::empty()).unwrap()).await }
    };
    for (project, filename, line, target) in [
        ("backend", "app/views.py", "12", "https://github.com/acme/backend/blob/main/app/views.py#L12"),
        (
            "backend",
            "/src/billing/invoice.py",
            "7",
            "https://gitlab.com/acme/billing/-/blob/main/billing/invoice.py#L7",
        ),
        ("web", "webpack:///./static/js/cart.js", "", "https://bitbucket.org/acme/web/src/main/frontend/src/cart.js"),
        (
            "web",
            "https://shop.acme.example/static/js/app.js?v=2",
            "3",
            "https://bitbucket.org/acme/web/src/main/frontend/src/app.js#lines-3",
        ),
        ("docs", "guide/intro.md", "5", "https://code.acme.example/main/guide/intro.md?line=5"),
        // Frames that try to leave the mapping's host stay on it.
        ("backend", "//evil.example/x.py", "1", "https://github.com/acme/backend/blob/main/evil.example/x.py#L1"),
        ("backend", "\\\\evil.example\\x.py", "1", "https://github.com/acme/backend/blob/main/evil.example/x.py#L1"),
        ("backend", "@evil.example/x.py", "1", "https://github.com/acme/backend/blob/main/%40evil.example/x.py#L1"),
        ("backend", "https://evil.example/x.py", "1", "https://github.com/acme/backend/blob/main/x.py#L1"),
    ] {
        let answer = open(project, filename, line).await;
        assert_eq!(answer.status, StatusCode::FOUND, "{filename}: {}", answer.body);
        assert_eq!(answer.headers["location"], target, "{filename}");
    }
    for (project, filename) in [
        ("backend", "../../etc/passwd"),
        ("backend", "javascript:alert(1)"),
        ("backend", ""),
        ("ios", "Sources/App.swift"),
    ] {
        let answer = open(project, filename, "3").await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{filename}");
        assert!(answer.headers.get("location").is_none());
        assert!(answer.body.contains("No code mapping for this frame"), "{}", answer.body);
        assert!(!answer.body.contains("Add a code mapping"), "only for someone who manages the organization");
    }
    // A manager of the organization is offered to add one.
    let mut jane = app.login_as("jane@example.com").await;
    let mut url = url::Url::parse("http://issuebridge.test/sentry/stacktrace-link").unwrap();
    url.query_pairs_mut()
        .append_pair("installationId", &acme)
        .append_pair("projectSlug", "ios")
        .append_pair("filename", "Sources/App/Main.swift");
    let answer = jane.get(&format!("{}?{}", url.path(), url.query().unwrap())).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(answer.body.contains("Add a code mapping"), "{}", answer.body);
    assert!(answer.body.contains("stack_root=Sources%2FApp"), "{}", answer.body);
    let unknown =
        app.get("/sentry/stacktrace-link?installationId=7a485448-a9e2-4c85-8a3c-4f44175783c9&filename=x").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
});

// The console's side of the components: the ticket page, teams, code
// mappings and the Components page's calls follow the login's access
// rules (a foreign id answers as if it did not exist; changes need
// organization rights).
on_both_stores!(the_console_pages_of_the_components_keep_to_the_persons_organizations, |db| async move {
    use issuebridge_app::api::{
        ChangeTeam, ComponentOptions, LoadCodeMappings, LoadComponentRequests, LoadTeams, LoadTicket, SaveCodeMapping,
        SubmitIssueLink,
    };
    use leptos::server_fn::ServerFn;
    let (app, sim) = spawn_app_with_sim(db).await;
    let acme = install(&app, &sim, "acme").await;
    sim.set_member("acme", "sam@example.com", "member");
    team(&app, &acme, "ENG", "Engineering", &["ada@acme.example"]).await;
    let issue = sim.create_issue("acme", "web", "Checkout fails");
    // Sentry tells issuebridge of the issue (issue.created), as it would.
    let created = sim.issue_webhook(&webhook_url(), &acme, &issue, "created", user_actor(1, "Jane"));
    assert_eq!(app.send(to_request(&created)).await.status, StatusCode::OK);
    while issuebridge::pipeline::worker::run_once(&app.state).await.unwrap() > 0 {}

    let mut jane = app.login_as("jane@example.com").await;
    let mut sam = app.login_as("sam@example.com").await;
    let mut olga = app.login_as("olga@other.example").await;

    // The ticket page, by identifier.
    let form = format!("identifier=IB-1&installation={acme}");
    let answer = jane.post_form(LoadTicket::PATH, &form).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body.contains("Checkout fails"), "{}", answer.body);
    assert_eq!(olga.post_form(LoadTicket::PATH, &form).await.status, StatusCode::NOT_FOUND);
    assert_eq!(jane.post_form(LoadTicket::PATH, "identifier=IB-99").await.status, StatusCode::NOT_FOUND);
    assert_eq!(jane.post_form(LoadTicket::PATH, "identifier=not-a-key").await.status, StatusCode::NOT_FOUND);

    // Teams: read by members, changed by managers only.
    assert!(sam.call_server_fn(LoadTeams::PATH).await.body.contains("Engineering"));
    assert_eq!(olga.call_server_fn(LoadTeams::PATH).await.body, "[]");
    let add = json!({"installation": acme, "change": {"Add": {"key": "ops", "name": "Operations"}}});
    assert_eq!(sam.call_json_fn(ChangeTeam::PATH, add.clone()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(olga.call_json_fn(ChangeTeam::PATH, add.clone()).await.status, StatusCode::NOT_FOUND);
    let answer = jane.call_json_fn(ChangeTeam::PATH, add.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(jane.call_json_fn(ChangeTeam::PATH, add).await.status, StatusCode::CONFLICT, "the key is taken");
    let bad = json!({"installation": acme, "change": {"AddMember": {"key": "OPS", "email": "nobody"}}});
    assert_eq!(jane.call_json_fn(ChangeTeam::PATH, bad).await.status, StatusCode::BAD_REQUEST);

    // Code mappings: the same rules.
    let mapping = json!({"installation": acme, "form": {"project_slug": "web", "stack_root": "src", "source_root": "",
        "provider": "github", "repo_url": "https://github.com/acme/web", "branch": "main"}});
    assert_eq!(sam.call_json_fn(SaveCodeMapping::PATH, mapping.clone()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(olga.call_json_fn(SaveCodeMapping::PATH, mapping.clone()).await.status, StatusCode::NOT_FOUND);
    assert_eq!(jane.call_json_fn(SaveCodeMapping::PATH, mapping).await.status, StatusCode::OK);
    assert!(sam.call_server_fn(LoadCodeMappings::PATH).await.body.contains("https://github.com/acme/web"));
    assert!(!olga.call_server_fn(LoadCodeMappings::PATH).await.body.contains("acme"));

    // The Components page's calls go through the signed endpoints.
    let options = json!({"installation": acme, "uri": "/sentry/select/assignees", "project": null, "query": null,
        "dependent_data": "{\"team\":\"ENG\"}"});
    let answer = sam.call_json_fn(ComponentOptions::PATH, options.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body.contains("ada@acme.example"), "{}", answer.body);
    assert_eq!(olga.call_json_fn(ComponentOptions::PATH, options).await.status, StatusCode::NOT_FOUND);
    let elsewhere =
        json!({"installation": acme, "uri": "/sentry/webhook", "project": null, "query": null, "dependent_data": null});
    assert_eq!(jane.call_json_fn(ComponentOptions::PATH, elsewhere).await.status, StatusCode::BAD_REQUEST);
    let submit = json!({"installation": acme, "link": false, "issue_id": issue,
        "fields": {"title": "Checkout fails again", "team": "ENG"}});
    assert_eq!(olga.call_json_fn(SubmitIssueLink::PATH, submit.clone()).await.status, StatusCode::NOT_FOUND);
    let answer = sam.call_json_fn(SubmitIssueLink::PATH, submit).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let outcome: Value = serde_json::from_str(&answer.body).unwrap();
    // The issue has a ticket already (issue.created opened IB-1): Sentry's answer.
    assert_eq!(outcome["status"], 409, "{outcome}");
    assert_eq!(outcome["message"], "this Sentry issue is linked to IB-1 already");
    let log = sam.call_server_fn(LoadComponentRequests::PATH).await.body;
    assert!(log.contains("issue-link:create") && log.contains("select:assignees"), "{log}");
    assert_eq!(olga.call_server_fn(LoadComponentRequests::PATH).await.body, "[]");
});
