//! The real `issuebridge` binary: its CLI, configuration errors, `migrate`,
//! and `serve` with a graceful stop on SIGTERM.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use issuebridge::config::ENV_VARS;
use issuebridge::on_both_stores;
use issuebridge::store::testing::TestDatabase;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::helpers::TEST_SECRET_KEY;

const BIN: &str = env!("CARGO_BIN_EXE_issuebridge");

/// A clean environment: only what the test sets, run from an empty folder so
/// that no stray `.env` is read.
fn issuebridge(dir: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    command.env_clear().current_dir(dir).env("ISSUEBRIDGE_DATA_DIR", dir);
    command.kill_on_drop(true);
    command
}

#[tokio::test]
async fn help_documents_every_command_and_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = issuebridge(dir.path()).arg("--help").output().await.unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "serve",
        "migrate",
        "reseal",
        "replay",
        "settings",
        "hooks",
        "schema",
        "teams",
        "mappings",
        "sim",
        "--log-format",
        "demo mode",
    ] {
        assert!(help.contains(expected), "--help lacks {expected}:\n{help}");
    }
    let listed = help_variables(&help);
    let help_vars: BTreeMap<&str, &str> =
        listed.iter().map(|(name, default)| (name.as_str(), default.as_str())).collect();
    assert_eq!(help_vars.len(), listed.len(), "--help lists a variable twice:\n{help}");
    // ENV_VARS is held equal to what the parser reads (config's tests), so
    // this holds --help to the parser too.
    let code: BTreeMap<&str, &str> = ENV_VARS.iter().map(|var| (var.name, var.default)).collect();
    assert_eq!(help_vars, code, "--help's variables and defaults differ from ENV_VARS:\n{help}");
}

/// The variables `--help` lists after "Environment", each with its default.
fn help_variables(help: &str) -> Vec<(String, String)> {
    let heading = "Environment (also read from ./.env):\n";
    let section = &help[help.find(heading).expect("an Environment section") + heading.len()..];
    let mut vars: Vec<(String, String)> = Vec::new();
    for line in section.lines().map(str::trim).take_while(|line| !line.is_empty()) {
        match line.strip_prefix("[default: ").and_then(|rest| rest.strip_suffix(']')) {
            Some(default) => vars.last_mut().expect("a default follows its variable").1 = default.to_owned(),
            None => vars.push((line.split_whitespace().next().unwrap_or_default().to_owned(), String::new())),
        }
    }
    vars
}

#[tokio::test]
async fn a_bad_value_stops_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = issuebridge(dir.path()).env("LEPTOS_SITE_ADDR", "everywhere").output().await.unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("configuration error: LEPTOS_SITE_ADDR: \"everywhere\" is not an address"), "{stderr}");
}

on_both_stores!(migrate_applies_migrations_and_is_idempotent, |db: TestDatabase| async move {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let output = issuebridge(dir.path())
            .arg("migrate")
            .env("DATABASE_URL", db.url.expose())
            .env("ISSUEBRIDGE_SECRET_KEY", TEST_SECRET_KEY)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
        let count = crate::helpers::migration_count();
        let expected = format!("is migrated: {count} migration(s) applied, latest version {count}");
        assert!(stdout.contains(&expected), "{stdout}");
    }
});

on_both_stores!(serve_announces_its_address_and_stops_cleanly_on_sigterm, |db: TestDatabase| async move {
    let dir = tempfile::tempdir().unwrap();
    let mut child = issuebridge(dir.path())
        .args(["serve", "--log-format", "json"])
        .env("DATABASE_URL", db.url.expose())
        .env("ISSUEBRIDGE_SECRET_KEY", TEST_SECRET_KEY)
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), stdout.next_line())
        .await
        .expect("ready within a minute")
        .unwrap()
        .expect("a line on stdout");
    assert!(line.starts_with("issuebridge is ready: console at http://127.0.0.1:"), "{line}");
    assert!(line.contains("demo mode"), "{line}");
    let base = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().trim_end_matches('/').to_owned();

    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);

    let status = std::process::Command::new("kill").args(["-TERM", &child.id().unwrap().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("exits").unwrap();
    assert!(exit.success(), "exit status {exit:?}");

    // --log-format json: every log line is one JSON object with a level.
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).await.unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(value.get("level").is_some(), "{line}");
    }
    assert!(stderr.contains("stopped"));
});

/// Outside demo mode, a key file beside the database is warned about at
/// start-up (SQLite only: PostgreSQL requires the key from the environment).
#[tokio::test]
async fn serve_warns_about_a_key_file_beside_the_database_outside_demo_mode() {
    for (mode, sentry) in [("demo", false), ("sentry", true)] {
        let dir = tempfile::tempdir().unwrap();
        let mut command = issuebridge(dir.path());
        command.args(["serve", "--log-format", "json"]).env("LEPTOS_SITE_ADDR", "127.0.0.1:0");
        if sentry {
            command
                .env("SENTRY_URL", "http://127.0.0.1:9")
                .env("SENTRY_CLIENT_ID", "id")
                .env("SENTRY_CLIENT_SECRET", "secret");
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        line_starting(&mut stdout, "issuebridge is ready").await;
        std::process::Command::new("kill").args(["-TERM", &child.id().unwrap().to_string()]).status().unwrap();
        let _ = child.wait().await;
        let mut stderr = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).await.unwrap();
        let warned = stderr.lines().any(|line| line.contains("WARN") && line.contains("beside the database"));
        assert_eq!(warned, sentry, "{mode} mode:\n{stderr}");
    }
}

/// Reads lines from a child's stdout until one starts with `prefix`.
async fn line_starting(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>, prefix: &str) -> String {
    loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("output within a minute")
            .unwrap()
            .expect("more output");
        if line.starts_with(prefix) {
            return line;
        }
    }
}

/// `issuebridge sim` and `issuebridge serve` as two processes: the app
/// installs into the simulated Sentry through the printed link.
#[tokio::test]
async fn the_sim_command_lets_serve_install_against_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = issuebridge(dir.path())
        .args(["sim", "--listen", "127.0.0.1:0", "--org", "acme", "--client-id", "cid", "--client-secret", "csecret"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut sim_out = BufReader::new(sim.stdout.take().unwrap()).lines();
    let sim_url =
        line_starting(&mut sim_out, "simulated Sentry at ").await.trim_start_matches("simulated Sentry at ").to_owned();
    let env_line = line_starting(&mut sim_out, "point issuebridge at it with: ").await;
    assert!(env_line.contains("SENTRY_CLIENT_ID=cid SENTRY_CLIENT_SECRET=csecret"), "{env_line}");
    let printed = |name: &str| {
        env_line.split_whitespace().find_map(|pair| pair.strip_prefix(&format!("{name}="))).unwrap().to_owned()
    };
    let (oauth_id, oauth_secret) = (printed("SENTRY_OAUTH_CLIENT_ID"), printed("SENTRY_OAUTH_CLIENT_SECRET"));
    let link = line_starting(&mut sim_out, "install into acme: open ").await;
    let query = link.split_once('?').unwrap().1.to_owned();

    let mut app = issuebridge(dir.path())
        .arg("serve")
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("SENTRY_URL", &sim_url)
        .env("SENTRY_CLIENT_ID", "cid")
        .env("SENTRY_CLIENT_SECRET", "csecret")
        .env("SENTRY_OAUTH_CLIENT_ID", &oauth_id)
        .env("SENTRY_OAUTH_CLIENT_SECRET", &oauth_secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut app_out = BufReader::new(app.stdout.take().unwrap()).lines();
    let ready = line_starting(&mut app_out, "issuebridge is ready").await;
    assert!(ready.contains("connected to Sentry"), "{ready}");
    let base = ready.split_whitespace().find(|w| w.starts_with("http://")).unwrap().trim_end_matches('/').to_owned();

    let page = reqwest::get(format!("{base}/sentry/setup?{query}")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("installed in the Sentry organization acme"));

    // A person logs into the console through the simulated Sentry, over
    // real sockets: the app's login, Sentry's consent, the callback.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cookie_of = |response: &reqwest::Response| {
        response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned()
    };
    let start = http.get(format!("{base}/auth/login")).send().await.unwrap();
    let pending = cookie_of(&start);
    let authorize = url::Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    let mut consent: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    consent.push(("user".into(), "1".into()));
    let decision = http.post(authorize.join("/oauth/authorize/").unwrap()).form(&consent).send().await.unwrap();
    let callback = decision.headers()["location"].to_str().unwrap().to_owned();
    let landed = http.get(&callback).header("cookie", &pending).send().await.unwrap();
    assert_eq!(landed.status(), 303);
    let session = cookie_of(&landed);
    let board = http.get(format!("{base}/installations")).header("cookie", &session).send().await.unwrap();
    assert_eq!(board.status(), 200);
    let html = board.text().await.unwrap();
    assert!(html.contains("Jane Doe") && html.contains("acme"), "{html}");

    // A service hook for a project, registered from the command line.
    let installation =
        url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "installationId").unwrap().1.into_owned();
    let hooks = issuebridge(dir.path())
        .args(["hooks", "register", "--installation", &installation, "--project", "web"])
        .env("SENTRY_URL", &sim_url)
        .env("SENTRY_CLIENT_ID", "cid")
        .env("SENTRY_CLIENT_SECRET", "csecret")
        .output()
        .await
        .unwrap();
    assert!(hooks.status.success(), "{}", String::from_utf8_lossy(&hooks.stderr));
    assert!(String::from_utf8_lossy(&hooks.stdout).contains("registered service hook"));

    for child in [&mut app, &mut sim] {
        std::process::Command::new("kill").args(["-TERM", &child.id().unwrap().to_string()]).status().unwrap();
        let exit = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.unwrap().unwrap();
        assert!(exit.success(), "{exit:?}");
    }
}

#[tokio::test]
async fn replay_takes_exactly_one_selection() {
    let dir = tempfile::tempdir().unwrap();
    let output = issuebridge(dir.path()).args(["replay", "--dead"]).output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("requeued 0 deliveries"));
    let none = issuebridge(dir.path()).arg("replay").output().await.unwrap();
    assert_eq!(none.status.code(), Some(2));
    let half = issuebridge(dir.path()).args(["replay", "--since", "2026-01-01T00:00:00Z"]).output().await.unwrap();
    assert_eq!(half.status.code(), Some(2));
    let bad =
        issuebridge(dir.path()).args(["replay", "--since", "yesterday", "--until", "today"]).output().await.unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an RFC 3339 time"));
}

/// Starts `issuebridge serve` in connected mode on `db`; returns the child
/// and its base URL.
async fn start_server(dir: &std::path::Path, db: &TestDatabase) -> (tokio::process::Child, String) {
    let mut child = issuebridge(dir)
        .arg("serve")
        .env("DATABASE_URL", db.url.expose())
        .env("ISSUEBRIDGE_SECRET_KEY", TEST_SECRET_KEY)
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("SENTRY_URL", "http://127.0.0.1:9")
        .env("SENTRY_CLIENT_ID", "crash")
        .env("SENTRY_CLIENT_SECRET", "crash-secret")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = line_starting(&mut out, "issuebridge is ready").await;
    let base = ready.split_whitespace().find(|w| w.starts_with("http://")).unwrap().trim_end_matches('/').to_owned();
    (child, base)
}

const CRASH_INSTALLATION: &str = "7a485448-a9e2-4c85-8a3c-4f44175783c9";

on_both_stores!(acknowledged_deliveries_survive_a_sigkill, |db: TestDatabase| async move {
    use issuebridge::sentry::signature::sign;
    use issuebridge::store::testing::add_installed;
    use issuebridge::store::Store;
    let dir = tempfile::tempdir().unwrap();
    // The deliveries' installation is known, so the worker applies them
    // (each issue.created opens a ticket) while the burst goes on.
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    add_installed(&store, CRASH_INSTALLATION, "acme").await.unwrap();
    let (mut server, base) = start_server(dir.path(), &db).await;
    let client = reqwest::Client::new();
    let body = |n: usize| {
        format!(
            r#"{{"action":"created","installation":{{"uuid":"{CRASH_INSTALLATION}"}},"data":{{"issue":{{"id":"{n}","title":"Crash {n}"}}}},"actor":{{"type":"application","id":"sentry","name":"Sentry"}}}}"#
        )
    };
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    let (acked, finished) = (std::sync::Arc::new(AtomicUsize::new(0)), std::sync::Arc::new(AtomicUsize::new(0)));
    // Set just before the kill: each send notes whether its answer (or the
    // lack of one) came before it.
    let killed = std::sync::Arc::new(AtomicBool::new(false));
    let sends = (0..600).map(|n| {
        let (client, url, body) = (client.clone(), format!("{base}/sentry/webhook"), body(n));
        let (acked, finished, killed) = (acked.clone(), finished.clone(), killed.clone());
        tokio::spawn(async move {
            let signature = sign(b"crash-secret", body.as_bytes());
            let answer = client
                .post(url)
                .header("content-type", "application/json")
                .header("sentry-hook-resource", "issue")
                .header("sentry-hook-signature", signature)
                .body(body.clone())
                .send()
                .await;
            let status = answer.map(|r| r.status().as_u16()).unwrap_or(0);
            if status == 200 {
                acked.fetch_add(1, SeqCst);
            }
            finished.fetch_add(1, SeqCst);
            (body, status, killed.load(SeqCst))
        })
    });
    let sends: Vec<_> = sends.collect();
    // Kill the server without warning in the middle of the burst. The
    // deadline only bounds a failing run: a server answering anything but
    // 200 never gets there.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while acked.load(SeqCst) < 150 && finished.load(SeqCst) < 600 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    killed.store(true, SeqCst);
    let acked_before_kill = acked.load(SeqCst);
    std::process::Command::new("kill").args(["-KILL", &server.id().unwrap().to_string()]).status().unwrap();
    let _ = server.wait().await;
    let mut acknowledged = Vec::new();
    let (mut answered_before_kill, mut cut_by_kill) = (Vec::new(), 0);
    for send in sends {
        let (body, status, after_kill) = send.await.unwrap();
        if status == 200 {
            acknowledged.push(body);
        }
        match (after_kill, status) {
            (false, status) => answered_before_kill.push(status),
            (true, 0) => cut_by_kill += 1,
            (true, _) => {}
        }
    }
    // The kill came after real acknowledgements, with sends still in flight.
    assert!(acked_before_kill >= 150, "only {acked_before_kill} deliveries were acknowledged before the kill");
    assert!(
        answered_before_kill.iter().all(|status| *status == 200),
        "before the kill every send is acknowledged: {answered_before_kill:?}"
    );
    assert!(answered_before_kill.len() < 600, "the burst was over before the kill");
    assert!(cut_by_kill > 0, "no send was in flight when the server died");

    // On PostgreSQL the dead worker's claims run out with their lease (a
    // minute); let that minute pass. SQLite frees them at start-up.
    if let Store::Postgres(pool) = &store {
        sqlx::query("update delivery set next_attempt_at = 0 where state = 'processing'").execute(pool).await.unwrap();
    }

    // Restarted on the same store: every acknowledged delivery is there...
    let (mut restarted, _) = start_server(dir.path(), &db).await;
    for body in &acknowledged {
        let key = issuebridge_server::webhook::dedupe_key("webhook", body.as_bytes());
        assert!(store.has_delivery(&key).await.unwrap(), "an acknowledged delivery was lost");
    }
    // ... and is applied exactly once in effect: one ticket per issue.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let count = |sql: &'static str| {
        let store = store.clone();
        async move {
            match &store {
                Store::Sqlite(pool) => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap(),
                Store::Postgres(pool) => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap(),
            }
        }
    };
    // Waits while work is left, so a delivery that ended otherwise than
    // processed fails the assertion below at once, not the deadline.
    while count("select count(*) from delivery where state in ('pending', 'processing', 'retry')").await > 0 {
        assert!(std::time::Instant::now() < deadline, "the restarted worker did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count("select count(*) from delivery where state <> 'processed'").await, 0, "all processed");
    let stored = store.count_deliveries().await.unwrap();
    assert_eq!(count("select count(*) from ticket where source = 'issue'").await, stored, "one ticket per delivery");
    assert_eq!(count("select count(*) from ticket_link").await, stored);
    for body in &acknowledged {
        let issue = serde_json::from_str::<serde_json::Value>(body).unwrap()["data"]["issue"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(store.ticket_for_issue(CRASH_INSTALLATION, &issue).await.unwrap().is_some(), "issue {issue}");
    }
    eprintln!(
        "{} of 600 acknowledged ({acked_before_kill} before the kill, {cut_by_kill} cut by it), all stored and applied once",
        acknowledged.len()
    );
    store.close().await;
    std::process::Command::new("kill").args(["-TERM", &restarted.id().unwrap().to_string()]).status().unwrap();
    assert!(restarted.wait().await.unwrap().success());
});

on_both_stores!(settings_are_shown_and_changed_from_the_command_line, |db: TestDatabase| async move {
    use issuebridge::domain::ids::InstallationUuid;
    use issuebridge::domain::ticket::TicketStatus;
    use issuebridge::store::testing::add_installed;
    use issuebridge::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let uuid = InstallationUuid::parse("6a4d3b1c-0000-4000-8000-000000000001").unwrap();
    add_installed(&store, uuid.as_str(), "acme").await.unwrap();
    let run = |args: &[&str]| {
        let mut command = issuebridge(dir.path());
        command.arg("settings").arg(uuid.as_str()).args(args);
        command.env("DATABASE_URL", db.url.expose()).env("ISSUEBRIDGE_SECRET_KEY", TEST_SECRET_KEY);
        async move { command.output().await.unwrap() }
    };
    let shown = run(&[]).await;
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    assert!(String::from_utf8_lossy(&shown.stdout).contains(r#""open_ticket_on_new_issue": true"#));

    let changed =
        run(&["--new-issues", "off", "--status", "ignored=done", "--map-user", "Ada@Sentry.io=ada@acme.io"]).await;
    assert!(changed.status.success(), "{}", String::from_utf8_lossy(&changed.stderr));
    let settings = store.installation_settings(&uuid).await.unwrap();
    assert!(!settings.open_ticket_on_new_issue);
    assert_eq!(settings.status_mapping.ignored, TicketStatus::Done);
    assert_eq!(settings.map_email("ada@sentry.io"), "ada@acme.io");

    let refused = run(&["--status", "closed=done"]).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a Sentry issue status"));
    assert_eq!(store.installation_settings(&uuid).await.unwrap(), settings, "nothing changed");
});

on_both_stores!(login_link_prints_a_single_use_link_for_administrators_only, |db: TestDatabase| async move {
    let dir = tempfile::tempdir().unwrap();
    let run = |email: &str| {
        let mut command = issuebridge(dir.path());
        command
            .args(["login-link", "--email", email])
            .env("DATABASE_URL", db.url.expose())
            .env("ISSUEBRIDGE_SECRET_KEY", TEST_SECRET_KEY)
            .env("ISSUEBRIDGE_PUBLIC_URL", "https://ib.example.com")
            .env("ISSUEBRIDGE_ADMINS", "root@example.com");
        command.output()
    };
    let refused = run("eve@example.com").await.unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not an instance administrator"));

    let made = run("Root@Example.com").await.unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let link = String::from_utf8(made.stdout).unwrap();
    let link = url::Url::parse(link.trim()).expect("one link on stdout");
    assert!(link.as_str().starts_with("https://ib.example.com/auth/link/"), "{link}");

    // The printed link logs the administrator in, once, on a server over
    // the same database.
    let app = crate::helpers::spawn_app_with(
        db,
        &[("ISSUEBRIDGE_PUBLIC_URL", "https://ib.example.com"), ("ISSUEBRIDGE_ADMINS", "root@example.com")],
    )
    .await;
    let mut browser = app.anonymous();
    let used = browser.post_form(link.path(), "").await;
    assert_eq!(used.status, axum::http::StatusCode::SEE_OTHER, "{}", used.body);
    assert_eq!(browser.get("/").await.status, axum::http::StatusCode::OK);
    let again = app.anonymous().post_form(link.path(), "").await;
    assert_eq!(again.status, axum::http::StatusCode::NOT_FOUND);
    // The command line's act is in the audit log.
    let reader = issuebridge::store::AuditReader {
        scope: issuebridge::domain::access::OrgScope::Everything,
        email: String::new(),
    };
    let events = app.state.store.audit_events(&reader, &Default::default(), None, 10).await.unwrap();
    assert!(events.iter().any(|e| e.actor == "command line" && e.detail == "for root@example.com"), "{events:?}");
});

#[tokio::test]
async fn schema_prints_the_schema_sentry_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let output = issuebridge(dir.path()).arg("schema").output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed, issuebridge::components::definition::schema());
}

on_both_stores!(teams_and_code_mappings_are_managed_from_the_command_line, |db: TestDatabase| async move {
    use issuebridge::store::testing::add_installed;
    use issuebridge::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let uuid = "6a4d3b1c-0000-4000-8000-000000000001";
    add_installed(&store, uuid, "acme").await.unwrap();
    let run = |args: &[&str]| {
        let mut command = issuebridge(dir.path());
        command.args(args).args(["--installation", uuid]);
        command.env("DATABASE_URL", db.url.expose()).env("ISSUEBRIDGE_SECRET_KEY", TEST_SECRET_KEY);
        async move { command.output().await.unwrap() }
    };
    let ok = |output: std::process::Output| {
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    ok(run(&["teams", "add", "--key", "eng", "--name", "Engineering"]).await);
    ok(run(&["teams", "add-member", "--team", "ENG", "--email", "Ada@Acme.example"]).await);
    let listed = ok(run(&["teams", "list"]).await);
    assert!(listed.contains("IB\tIssues (default)"), "{listed}");
    assert!(listed.contains("ENG\tEngineering\tada@acme.example"), "{listed}");
    let refused = run(&["teams", "add", "--key", "2x", "--name", "Bad"]).await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("team key"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let added = ok(run(&[
        "mappings",
        "add",
        "--project",
        "web",
        "--stack-root",
        "src",
        "--provider",
        "github",
        "--repo",
        "https://github.com/acme/web",
    ])
    .await);
    assert!(added.contains("web\tsrc/ -> /\tgithub https://github.com/acme/web @ main"), "{added}");
    let refused =
        run(&["mappings", "add", "--project", "web", "--provider", "github", "--repo", "javascript:alert(1)"]).await;
    assert!(!refused.status.success());
    let id = store.code_mappings(uuid, None).await.unwrap()[0].id.to_string();
    ok(run(&["mappings", "remove", "--id", &id]).await);
    assert!(store.code_mappings(uuid, None).await.unwrap().is_empty());
    let events = store
        .audit_events(
            &issuebridge::store::AuditReader {
                scope: issuebridge::domain::access::OrgScope::Everything,
                email: String::new(),
            },
            &Default::default(),
            None,
            10,
        )
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.detail == "made team ENG"), "{events:?}");
});
