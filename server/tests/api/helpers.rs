use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use issuebridge::config::Config;
use issuebridge::store::testing::TestDatabase;
use issuebridge::AppState;
use issuebridge_server::startup::{leptos_options, prepare_state, router};
use tower::ServiceExt;

/// The instance administrator every test app has (`ISSUEBRIDGE_ADMINS`).
pub const TEST_ADMIN: &str = "admin@issuebridge.test";

pub const TEST_SECRET_KEY: &str = "4242424242424242424242424242424242424242424242424242424242424242";

/// A router over a fresh, migrated store seeded with the demo data, as
/// `issuebridge serve` builds it.
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub data_dir: tempfile::TempDir,
    _db: TestDatabase,
}

/// The variables a test starts from; `extra` adds or overrides.
pub fn test_config(db: &TestDatabase, data_dir: &std::path::Path, extra: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("ISSUEBRIDGE_DATA_DIR".into(), data_dir.display().to_string()),
        ("DATABASE_URL".into(), db.url.expose().to_owned()),
        ("ISSUEBRIDGE_SECRET_KEY".into(), TEST_SECRET_KEY.into()),
        ("LEPTOS_SITE_ADDR".into(), "127.0.0.1:0".into()),
        ("LEPTOS_SITE_ROOT".into(), data_dir.join("site").display().to_string()),
        ("ISSUEBRIDGE_ADMINS".into(), TEST_ADMIN.into()),
        // Every request of a test comes from one address (none, through
        // the router): the rate-limit tests set their own allowance.
        ("ISSUEBRIDGE_RATE_LIMIT_PER_MINUTE".into(), "1000000".into()),
    ]);
    for (name, value) in extra {
        vars.insert((*name).into(), (*value).into());
    }
    Config::from_lookup(|name| vars.get(name).cloned()).expect("a valid test configuration")
}

pub async fn spawn_app(db: TestDatabase) -> TestApp {
    spawn_app_with(db, &[]).await
}

pub async fn spawn_app_with(db: TestDatabase, extra: &[(&str, &str)]) -> TestApp {
    spawn_app_tuned(db, extra, |_| {}).await
}

/// [`spawn_app_with`], with the configuration changed by `tune` first
/// (what the environment does not set, such as the session policy).
pub async fn spawn_app_tuned(db: TestDatabase, extra: &[(&str, &str)], tune: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let mut config = test_config(&db, data_dir.path(), extra);
    tune(&mut config);
    let options = leptos_options(&config, config.site_addr);
    let state = prepare_state(config).await.expect("a prepared state");
    TestApp { router: router(state.clone(), options), state, data_dir, _db: db }
}

pub struct Answer {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub headers: HeaderMap,
    pub body: String,
    /// The body as sent, for the binary or compressed ones.
    pub bytes: Bytes,
}

impl TestApp {
    pub async fn send(&self, request: Request<Body>) -> Answer {
        answer(&self.router, request).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Request::get(path).body(Body::empty()).unwrap()).await
    }
}

impl TestApp {
    /// This site's origin, as a browser on its pages sends it.
    pub fn origin(&self) -> String {
        let url = self.state.config.public_url_or(self.state.config.site_addr);
        url.origin().ascii_serialization()
    }

    /// A browser logged in as the instance administrator, through a login
    /// link as `issuebridge login-link` makes one.
    pub async fn admin(&self) -> Browser<'_> {
        let token = format!("test-link-{}", rand_token());
        let expires = issuebridge::domain::time::now_ms() + 60_000;
        let hash = issuebridge_server::auth::login_link_hash(&token);
        self.state.store.add_login_link(&hash, TEST_ADMIN, expires).await.unwrap();
        let mut browser = Browser { app: self, cookie: None };
        let answer = browser.post_form(&format!("/auth/link/{token}"), "").await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "the login link logs in: {}", answer.body);
        assert!(browser.cookie.is_some(), "a session cookie");
        browser
    }

    /// A browser logged in through the simulated Sentry's OAuth provider as
    /// the person with `email` (the simulator's Jane, Sam or Olga), the way
    /// a person's browser goes: `/auth/login`, Sentry's consent page, the
    /// callback. Panics if any step fails.
    pub async fn login_as(&self, email: &str) -> Browser<'_> {
        let mut browser = Browser { app: self, cookie: None };
        let back = browser.consent_as(email, "/").await;
        let answer = browser.get(&path_and_query(&back)).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "the callback logs in: {}", answer.body);
        assert_eq!(answer.headers["location"], "/");
        browser
    }

    /// A browser with no session.
    pub fn anonymous(&self) -> Browser<'_> {
        Browser { app: self, cookie: None }
    }
}

fn rand_token() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::thread_rng().gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `/path?query` of a URL, as a request line carries it.
pub fn path_and_query(url: &url::Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// A browser: it keeps the session cookie it is given, and sends this
/// site's `Origin` with every POST, as the console's pages do.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    pub cookie: Option<String>,
}

impl Browser<'_> {
    pub async fn send(&mut self, mut request: Request<Body>) -> Answer {
        if let Some(cookie) = &self.cookie {
            request.headers_mut().insert("cookie", cookie.parse().unwrap());
        }
        let answer = self.app.send(request).await;
        if let Some(set) = answer.headers.get("set-cookie").and_then(|v| v.to_str().ok()) {
            let pair = set.split(';').next().unwrap_or_default().to_owned();
            // An emptied cookie (logout) is dropped.
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        answer
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        self.send(Request::get(path).body(Body::empty()).unwrap()).await
    }

    /// A POST from this site's pages: with this site's `Origin`.
    async fn post(&mut self, path: &str, content_type: &str, body: String) -> Answer {
        let origin = self.app.origin();
        let request = Request::post(path)
            .header("content-type", content_type)
            .header("origin", origin)
            .body(Body::from(body))
            .unwrap();
        self.send(request).await
    }

    /// A form POST from this site's pages.
    pub async fn post_form(&mut self, path: &str, body: &str) -> Answer {
        self.post(path, "application/x-www-form-urlencoded", body.to_owned()).await
    }

    /// Calls a Leptos server function with form-encoded arguments.
    pub async fn call_server_fn(&mut self, path: &str) -> Answer {
        self.post_form(path, "").await
    }

    /// Calls a Leptos server function whose arguments travel as JSON.
    pub async fn call_json_fn(&mut self, path: &str, arguments: serde_json::Value) -> Answer {
        self.post(path, "application/json", arguments.to_string()).await
    }

    /// Starts a login and answers the simulated Sentry's consent page as
    /// the person with `email`: returns where Sentry sends the browser back
    /// (the callback, with its code and state).
    pub async fn consent_as(&mut self, email: &str, next: &str) -> url::Url {
        let start = self
            .get(&format!(
                "/auth/login?next={}",
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            ))
            .await;
        assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
        let authorize = url::Url::parse(start.headers["location"].to_str().unwrap()).unwrap();
        let sim = self.app.state.login.as_ref().expect("a login provider").base_url.clone();
        let user_id = match email {
            "jane@example.com" => "1",
            "sam@example.com" => "2",
            "olga@other.example" => "3",
            other => panic!("the simulator has no {other}"),
        };
        let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
        form.push(("user".into(), user_id.into()));
        let decision = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(sim.join("/oauth/authorize/").unwrap())
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(decision.status().is_redirection(), "{}", decision.status());
        url::Url::parse(decision.headers()["location"].to_str().unwrap()).unwrap()
    }
}

pub async fn answer(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.expect("the router always answers");
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = response.into_body().collect().await.expect("a body").to_bytes();
    Answer { status, content_type, headers, body: String::from_utf8_lossy(&bytes).into_owned(), bytes }
}

/// An app connected to a fresh simulated Sentry, as a real deployment would
/// be to sentry.io.
pub async fn spawn_app_with_sim(db: TestDatabase) -> (TestApp, issuebridge_server::sim::Simulator) {
    spawn_app_with_sim_and(db, &[]).await
}

pub async fn spawn_app_with_sim_and(
    db: TestDatabase,
    extra: &[(&str, &str)],
) -> (TestApp, issuebridge_server::sim::Simulator) {
    spawn_app_with_sim_tuned(db, extra, |_| {}).await
}

/// [`spawn_app_with_sim_and`], with the configuration changed by `tune`.
pub async fn spawn_app_with_sim_tuned(
    db: TestDatabase,
    extra: &[(&str, &str)],
    tune: impl FnOnce(&mut Config),
) -> (TestApp, issuebridge_server::sim::Simulator) {
    let sim = issuebridge_server::sim::Simulator::start(Default::default()).await.expect("start the simulator");
    let base = sim.base_url().to_string();
    let mut vars = vec![
        ("SENTRY_URL", base.as_str()),
        ("SENTRY_CLIENT_ID", sim.app().client_id.as_str()),
        ("SENTRY_CLIENT_SECRET", sim.app().client_secret.as_str()),
        ("ISSUEBRIDGE_PUBLIC_URL", "http://issuebridge.test"),
        ("SENTRY_OAUTH_CLIENT_ID", sim.oauth_app().client_id.as_str()),
        ("SENTRY_OAUTH_CLIENT_SECRET", sim.oauth_app().client_secret.as_str()),
    ];
    vars.extend_from_slice(extra);
    (spawn_app_tuned(db, &vars, tune).await, sim)
}

/// A request with the same headers but `body`, signed with `secret`.
pub fn resigned(
    signed: &issuebridge_server::sim::driver::SignedRequest,
    body: &[u8],
    secret: &str,
) -> issuebridge_server::sim::driver::SignedRequest {
    let mut copy = signed.clone();
    copy.body = body.to_vec();
    let signature = issuebridge::sentry::signature::sign(secret.as_bytes(), body);
    for (name, value) in copy.headers.iter_mut() {
        if name == "Sentry-Hook-Signature" {
            *value = signature.clone();
        }
    }
    copy
}

/// A component request with its body as it is now, signed with `secret`
/// in `Sentry-App-Signature`, as Sentry would sign that body.
pub fn resigned_component(
    signed: &issuebridge_server::sim::driver::SignedRequest,
    secret: &str,
) -> issuebridge_server::sim::driver::SignedRequest {
    let mut copy = signed.clone();
    let signature = issuebridge::sentry::signature::sign(secret.as_bytes(), &copy.body);
    for (name, value) in copy.headers.iter_mut() {
        if name == "Sentry-App-Signature" {
            *value = signature.clone();
        }
    }
    copy
}

/// Runs the app's worker and a second instance's, on the same database,
/// side by side until neither finds work; returns how many each claimed.
pub async fn drain_with_two_instances(app: &TestApp) -> (usize, usize) {
    let other = issuebridge_server::startup::prepare_state((*app.state.config).clone()).await.unwrap();
    let (mut a, mut b) = (0, 0);
    loop {
        let (x, y) = tokio::join!(
            issuebridge::pipeline::worker::run_once(&app.state),
            issuebridge::pipeline::worker::run_once(&other)
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        if x + y == 0 {
            return (a, b);
        }
        a += x;
        b += y;
    }
}

/// Where the simulated Sentry sends webhooks.
pub fn webhook_url() -> url::Url {
    url::Url::parse("http://issuebridge.test/sentry/webhook").unwrap()
}

/// The signed request as the router receives it.
pub fn to_request(signed: &issuebridge_server::sim::driver::SignedRequest) -> Request<Body> {
    let mut builder = Request::builder().method(signed.method.as_str()).uri(path_and_query(&signed.url));
    for (name, value) in &signed.headers {
        builder = builder.header(name, value);
    }
    builder.body(Body::from(signed.body.clone())).unwrap()
}

/// Follows Sentry's setup redirect the way a browser would.
pub async fn follow_redirect(
    app: &TestApp,
    sim: &issuebridge_server::sim::Simulator,
    pending: &issuebridge_server::sim::PendingInstall,
) -> Answer {
    let redirect = sim.setup_redirect(&"http://issuebridge.test/sentry/setup".parse().unwrap(), pending);
    app.get(&format!("{}?{}", redirect.path(), redirect.query().unwrap())).await
}

/// How many migrations the binary carries (one file each, numbered from 1).
pub fn migration_count() -> usize {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations/sqlite");
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sql"))
        .count()
}

/// `tests/fixtures/webhooks/<resource>.<action>[.<variant>].json`: name and
/// bytes, issue.created first so the rest find their ticket.
pub fn fixture_corpus() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap()))
        .collect();
    files.sort_by_key(|(name, _)| (!name.starts_with("issue.created"), name.clone()));
    files
}
