//! Building the router and running the server, shared by `main` and tests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::{middleware, Router};
use issuebridge::config::{Config, Mode};
use issuebridge::store::Store;
use issuebridge::AppState;
use issuebridge_app::{shell, App};
use leptos::config::{Env, LeptosOptions};
use leptos::prelude::{provide_context, use_context};
use leptos_axum::{generate_route_list, AxumRouteListing, ErrorHandler, LeptosRoutes};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::auth::guard::{self, SiteOrigin};
use crate::auth::identity::SentryIdentity;
use crate::auth::sessions::ConsoleSessions;
use crate::limits::ClientRateLimit;
use crate::metrics::{self, Metrics};
use crate::state::ServerState;
use crate::{assets, auth, limits, ops, page_stream, sentry_ui, setup, webhook};

/// How long requests in flight may take to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Leptos options from our configuration, so that `LEPTOS_*` variables are
/// read in one place.
pub fn leptos_options(config: &Config, bound: SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name(config.output_name.clone())
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(bound)
        .env(if config.live_reload { Env::DEV } else { Env::PROD })
        .reload_port(u32::from(config.reload_port))
        .build()
}

/// The console's routes, generated once per process.
///
/// Generating them renders the app with resource loading suppressed by a
/// process-wide flag (leptos_server's `SuppressResourceLoad`); a resource
/// first polled by another request while that flag is up never wakes
/// (leptos issue #4773). Generating once, before any router exists, keeps
/// the two from ever overlapping, however many routers a process builds.
fn console_routes() -> Vec<AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// Every route issuebridge serves.
///
/// Three kinds, each behind its own layers:
/// - operations (`/healthz`, `/readyz`, `/metrics`): no session, any host
///   name (probes reach them by other names);
/// - Sentry's (`/sentry/*`): signed, no session;
/// - the browser's (the console's pages and server functions, the login
///   routes): a session (the console needs a person), this site's origin
///   for state changes.
///
/// Everything a browser may open must be addressed to this site's host
/// (against DNS rebinding). Operations and Sentry's signed webhooks answer
/// any host: they hold no cookie's authority and nothing to read, and a
/// well-signed delivery must not be refused because a proxy renamed the
/// host. Every response gets the security headers.
pub fn router(app: AppState, leptos_options: LeptosOptions) -> Router {
    let metrics = Arc::new(Metrics::default());
    let public_url = app.config.public_url_or(leptos_options.site_addr);
    let identity = app.login.as_ref().and_then(|provider| match SentryIdentity::new(provider, &public_url) {
        Ok(identity) => Some(Arc::new(identity)),
        Err(error) => {
            tracing::error!(%error, "console login through Sentry is not available");
            None
        }
    });
    let site = SiteOrigin::new(&public_url);
    let state = ServerState { app, leptos_options, metrics: metrics.clone(), site: site.clone(), identity };

    // Server functions and pages find the application state, the person
    // (put in the request by the session guard) and, on pages, the CSP
    // nonce of the inline hydration script in the Leptos context.
    let dispatch = sentry_ui::console_dispatch(&state);
    let provide_request_context = {
        let app = state.app.clone();
        let live_reload = state.app.config.live_reload;
        move || {
            provide_context(app.clone());
            provide_context(dispatch.clone());
            if let Some(parts) = use_context::<axum::http::request::Parts>() {
                if let Some(viewer) = parts.extensions.get::<issuebridge::domain::access::Viewer>() {
                    provide_context(viewer.clone());
                }
            }
            if let (Some(nonce), Some(response)) =
                (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
            {
                if let Ok(policy) = axum::http::HeaderValue::from_str(&guard::page_csp(&nonce, live_reload)) {
                    response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, policy);
                }
            }
        }
    };
    let render_shell = {
        let options = state.leptos_options.clone();
        move || shell(options.clone())
    };

    let sessions = ConsoleSessions::new(&state.app.store).layer(&state.app.config, site.https());
    let console = Router::new()
        .leptos_routes_with_context(&state, console_routes(), provide_request_context.clone(), render_shell)
        .route(crate::live::LIVE_PATH, axum::routing::get(crate::live::events))
        .route_layer(middleware::from_fn(guard::malformed_calls_are_bad_requests))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard::require_viewer));
    let rate_limit = ClientRateLimit::new(&state.app.config.limits);
    let browser = Router::new()
        .merge(auth::router(rate_limit.clone()))
        .merge(sentry_ui::stacktrace_router())
        .merge(console)
        .layer(middleware::from_fn_with_state(state.clone(), guard::same_origin))
        .layer(sessions);
    let this_site = Router::new()
        .merge(setup::router(rate_limit))
        .merge(browser)
        // Static files from the site root; anything else renders the
        // console's 404 page.
        .fallback_service(assets::static_files(
            &state.leptos_options.site_root,
            ErrorHandler::new_with_context(provide_request_context, shell, state.leptos_options.clone()),
        ))
        // A page its client leaves unread is still rendered to its end, so
        // Leptos frees it (page_stream.rs).
        .layer(middleware::map_response(page_stream::finish_abandoned_pages))
        .layer(middleware::from_fn_with_state(state.clone(), guard::allowed_host));

    let limits = state.app.config.limits.clone();
    let routes = Router::new()
        .merge(ops::router())
        .merge(webhook::router(state.app.config.webhook_max_bytes))
        .merge(sentry_ui::router())
        .merge(this_site);
    limits::bounded(routes, &limits)
        .layer(middleware::from_fn_with_state(state.clone(), guard::security_headers))
        .layer(assets::compression())
        .layer(middleware::from_fn_with_state(metrics, metrics::track))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Connects to the store, applies migrations, registers an internal
/// integration or (in demo mode) starts the simulated Sentry and installs
/// the demo organization, and returns the state every request shares. The
/// tests build their state here too.
pub async fn prepare_state(config: Config) -> anyhow::Result<AppState> {
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await.context("applying migrations")?;
    ConsoleSessions::new(&store).migrate().await.context("creating the console's session table")?;
    let demo = config.mode() == Mode::Demo;
    let state = AppState::new(config, store);
    if demo {
        return crate::demo::start(state).await;
    }
    issuebridge::installations::install::register_internal(&state).await?;
    Ok(state)
}

/// A server that is connected, migrated and bound, but not yet serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    public_url: url::Url,
}

impl Application {
    /// Binds the listening socket and prepares the state
    /// ([`prepare_state`]).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.site_addr)
            .await
            .with_context(|| format!("cannot listen on {} (LEPTOS_SITE_ADDR)", config.site_addr))?;
        let bound = listener.local_addr()?;
        let mut config = config;
        let public_url = config.public_url_or(bound);
        config.public_url = Some(public_url.clone());
        let options = leptos_options(&config, bound);
        let state = prepare_state(config).await?;
        let router = router(state.clone(), options);
        Ok(Self { listener, router, state, public_url })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn public_url(&self) -> &url::Url {
        &self.public_url
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops accepting, lets requests
    /// in flight finish (for at most [`SHUTDOWN_GRACE`]) and closes the store.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        self.run_with_grace(shutdown, SHUTDOWN_GRACE).await
    }

    pub async fn run_with_grace(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        grace: Duration,
    ) -> anyhow::Result<()> {
        // The worker applies stored deliveries; it stops with the server.
        let (stop_worker, worker_stopped) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(issuebridge::pipeline::worker::run(self.state.clone(), worker_stopped.clone()));
        // The outbox sender tells Sentry what changed here; it stops with the server too.
        let sender = tokio::spawn(issuebridge::outbound::sender::run(self.state.clone(), worker_stopped));
        let sessions = ConsoleSessions::new(&self.state.store).clean_up_continuously();
        let header_timeout = self.state.config.limits.header_timeout;
        let outcome = serve_until(self.listener, self.router, shutdown, grace, header_timeout).await;
        let _ = stop_worker.send(true);
        let _ = worker.await;
        let _ = sender.await;
        sessions.abort();
        self.state.store.close().await;
        outcome
    }
}

/// Serves `router` until `shutdown` completes; then stops accepting
/// connections and waits for requests in flight, for at most `grace`.
///
/// hyper's connection builder rather than `axum::serve`, which sets no
/// timer: a client that never finishes its request head would hold its
/// connection forever. Here it has `header_timeout`, for the first request
/// and each one after on a kept-alive connection. Handlers see the peer's
/// address as `ConnectInfo` (the per-client rate limits use it).
pub async fn serve_until(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
    header_timeout: Duration,
) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use tower::ServiceExt;

    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new()).enable_connect_protocol();
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset while
                    // queued: wait a moment rather than spin on the error.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers are small and written whole: send them at once.
        let _ = stream.set_nodelay(true);
        let service = router.clone().map_request(move |request: axum::http::Request<hyper::body::Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            request
        });
        let connection = builder
            .serve_connection_with_upgrades(
                TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            )
            .into_owned();
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    drop(listener);
    tokio::select! {
        () = connections.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(?grace, "requests still in flight after the grace period; stopping anyway");
        }
    }
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
