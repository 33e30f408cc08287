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
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let config = test_config(&db, data_dir.path(), extra);
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

    /// Calls a Leptos server function without arguments, as the browser does.
    pub async fn call_server_fn(&self, path: &str) -> Answer {
        let request = Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::empty())
            .unwrap();
        self.send(request).await
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
    let sim = issuebridge_server::sim::Simulator::start(Default::default()).await.expect("start the simulator");
    let base = sim.base_url().to_string();
    let mut vars = vec![
        ("SENTRY_URL", base.as_str()),
        ("SENTRY_CLIENT_ID", sim.app().client_id.as_str()),
        ("SENTRY_CLIENT_SECRET", sim.app().client_secret.as_str()),
        ("ISSUEBRIDGE_PUBLIC_URL", "http://issuebridge.test"),
    ];
    vars.extend_from_slice(extra);
    (spawn_app_with(db, &vars).await, sim)
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
    let mut builder = Request::post(signed.url.path());
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
