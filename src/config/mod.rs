//! One typed configuration, read from the environment.
//!
//! Environment variables rather than a config file, because that is how
//! secrets reach a process on every platform people deploy to; a `.env` file
//! fills them in during development. Every value is parsed here, once, so a
//! bad value stops start-up with a message that names the variable.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use url::Url;

mod secrets;

use secrets::load_or_generate_key;
pub use secrets::{Secret, SecretKey, SecretKeySource};

/// One variable of the public contract, for `--help` and the README.
pub struct EnvVar {
    pub name: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

/// Read by `tracing`'s log filter at start-up rather than by [`Config`]: the
/// logger is set up before the configuration is (and without it for `sim`).
pub const LOG_FILTER_VAR: &str = "RUST_LOG";

/// Every variable issuebridge reads: those [`Config::from_lookup`] asks for
/// and [`LOG_FILTER_VAR`], no more (a test records the parser's questions).
/// `--help` prints this table; tests hold it equal to `--help` and to the
/// README's configuration table.
pub const ENV_VARS: &[EnvVar] = &[
    EnvVar {
        name: "ISSUEBRIDGE_DATA_DIR",
        default: "./data",
        meaning: "Folder for the SQLite database and the generated secret key.",
    },
    EnvVar {
        name: "DATABASE_URL",
        default: "sqlite://<data dir>/issuebridge.db",
        meaning: "sqlite://PATH or postgres://USER@HOST/DB; chosen at run time.",
    },
    EnvVar {
        name: "LEPTOS_SITE_ADDR",
        default: "127.0.0.1:3000",
        meaning: "Address and port to listen on (port 0 picks a free one).",
    },
    EnvVar {
        name: "ISSUEBRIDGE_PUBLIC_URL",
        default: "http://<listening address>",
        meaning: "Base URL that Sentry and browsers reach; http(s), no query.",
    },
    EnvVar {
        name: "ISSUEBRIDGE_SECRET_KEY",
        default: "generated into <data dir>/secret.key",
        meaning: "64 hex digits (32 bytes): encrypts tokens at rest. Required with PostgreSQL.",
    },
    EnvVar {
        name: "ISSUEBRIDGE_SECRET_KEY_PREVIOUS",
        default: "unset",
        meaning: "Earlier keys, comma-separated, during a rotation: they decrypt, never encrypt.",
    },
    EnvVar {
        name: "SENTRY_URL",
        default: "https://sentry.io",
        meaning: "The Sentry to talk to (self-hosted or a region).",
    },
    EnvVar { name: "SENTRY_CLIENT_ID", default: "unset: demo mode", meaning: "The Sentry App's Client ID." },
    EnvVar {
        name: "SENTRY_CLIENT_SECRET",
        default: "unset: demo mode",
        meaning: "The Sentry App's Client Secret: verifies webhooks, exchanges grants.",
    },
    EnvVar {
        name: "SENTRY_CLIENT_SECRET_PREVIOUS",
        default: "unset",
        meaning: "The secret before a rotation; still verifies webhooks.",
    },
    EnvVar {
        name: "SENTRY_INTERNAL_TOKEN",
        default: "unset",
        meaning:
            "Internal integration mode: its token (no OAuth exchange). Needs the next two and SENTRY_CLIENT_ID/SECRET.",
    },
    EnvVar {
        name: "SENTRY_INTERNAL_INSTALLATION",
        default: "unset",
        meaning: "Internal integration mode: its installation uuid.",
    },
    EnvVar {
        name: "SENTRY_INTERNAL_ORG",
        default: "unset",
        meaning: "Internal integration mode: the organization's slug.",
    },
    EnvVar {
        name: "SENTRY_OAUTH_CLIENT_ID",
        default: "unset",
        meaning: "OAuth application people log into the console with, by their Sentry identity.",
    },
    EnvVar { name: "SENTRY_OAUTH_CLIENT_SECRET", default: "unset", meaning: "Secret of that OAuth application." },
    EnvVar {
        name: "ISSUEBRIDGE_ADMINS",
        default: "unset",
        meaning: "Instance administrators' emails, comma-separated: they see everything and may use login links.",
    },
    EnvVar {
        name: "ISSUEBRIDGE_METRICS_TOKEN",
        default: "unset: /metrics is open",
        meaning: "When set, /metrics answers only requests with `Authorization: Bearer <token>`.",
    },
    EnvVar {
        name: "ISSUEBRIDGE_WEBHOOK_MAX_BYTES",
        default: "1048576",
        meaning: "Largest webhook or service-hook body accepted (at least 1024); larger gets 413.",
    },
    EnvVar {
        name: "ISSUEBRIDGE_DEDUPE_WINDOW_SECS",
        default: "3600",
        meaning: "How long a body counts as Sentry's retry of the first copy; the same body later is applied again.",
    },
    EnvVar {
        name: "ISSUEBRIDGE_MAX_IN_FLIGHT",
        default: "1024",
        meaning: "Requests handled at once; past it, an immediate 503 with Retry-After: 1.",
    },
    EnvVar {
        name: "ISSUEBRIDGE_HEADER_TIMEOUT_SECS",
        default: "10",
        meaning: "Time a client has to send a request's head; then the connection is closed.",
    },
    EnvVar {
        name: "ISSUEBRIDGE_REQUEST_TIMEOUT_SECS",
        default: "30",
        meaning: "Time to receive a request's body and answer it; then 408 (body) or 503.",
    },
    EnvVar {
        name: "ISSUEBRIDGE_RATE_LIMIT_PER_MINUTE",
        default: "30",
        meaning: "Per client address: requests a minute to /sentry/setup and the login routes; past it, 429.",
    },
    EnvVar {
        name: "ISSUEBRIDGE_CLIENT_IP_HEADER",
        default: "unset: the peer address",
        meaning: "Behind a proxy: the header (e.g. X-Forwarded-For) whose last address is the client's.",
    },
    EnvVar {
        name: "LEPTOS_SITE_ROOT",
        default: "target/site",
        meaning: "Folder holding the built front end (pkg/, CSS, assets).",
    },
    EnvVar {
        name: "LEPTOS_OUTPUT_NAME",
        default: "issuebridge",
        meaning: "Base name of the front end's files under /pkg.",
    },
    EnvVar { name: "ISSUEBRIDGE_LOG_FORMAT", default: "human", meaning: "human or json (same as --log-format)." },
    EnvVar { name: LOG_FILTER_VAR, default: "info", meaning: "Log filter, e.g. info,issuebridge=debug." },
    EnvVar { name: "LEPTOS_ENV", default: "PROD", meaning: "DEV turns on live reload (set by `cargo leptos watch`)." },
    EnvVar { name: "LEPTOS_RELOAD_PORT", default: "3001", meaning: "Live-reload port in DEV." },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "human" => Ok(Self::Human),
            "json" => Ok(Self::Json),
            other => Err(format!("{other:?} is neither human nor json")),
        }
    }
}

/// A variable that could not be used, and why. Shown to the operator as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

impl ConfigError {
    fn new(var: &'static str, problem: impl Into<String>) -> Self {
        Self { var, problem: problem.into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// A database URL whose backend is known. `Display` and `Debug` hide the
/// password, so the URL can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: String,
    backend: Backend,
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let backend = if raw.starts_with("sqlite:") {
            Backend::Sqlite
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Url::parse(raw).map_err(|e| format!("is not a valid URL ({e})"))?;
            Backend::Postgres
        } else {
            return Err("must start with sqlite: or postgres://".to_owned());
        };
        if backend == Backend::Sqlite && raw.contains(":memory:") {
            // Every pooled connection would get its own empty database.
            return Err("an in-memory SQLite database cannot be shared by a pool; use a file".to_owned());
        }
        Ok(Self { url: raw.to_owned(), backend })
    }

    pub fn sqlite_file(path: &Path) -> Self {
        Self { url: format!("sqlite://{}", path.display()), backend: Backend::Sqlite }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The full URL, password included: only for connecting.
    pub fn expose(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Url::parse(&self.url) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("redacted"));
                f.write_str(url.as_str())
            }
            _ => f.write_str(&self.url),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// The Sentry App's own credentials (Developer Settings → the app).
#[derive(Debug, Clone)]
pub struct AppCredentials {
    pub client_id: String,
    pub client_secret: Secret,
    /// Kept for the rotation window: webhooks signed with it still verify.
    pub previous_client_secret: Option<Secret>,
}

/// Internal integration mode: Sentry made the installation and its token
/// when the integration was created, so there is nothing to exchange.
#[derive(Debug, Clone)]
pub struct InternalIntegration {
    pub token: Secret,
    pub installation: crate::domain::ids::InstallationUuid,
    pub org_slug: crate::domain::ids::OrgSlug,
}

/// An OAuth application used only to log people into the console.
#[derive(Debug, Clone)]
pub struct OAuthCredentials {
    pub client_id: String,
    pub client_secret: Secret,
}

/// How long console sessions last, and how often a person's Sentry
/// memberships are asked again. Not read from the environment: the defaults
/// suit every deployment; tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused this long ends.
    pub idle_timeout_secs: i64,
    /// A session ends this long after login, however much it is used.
    pub absolute_timeout_secs: i64,
    /// Memberships older than this are asked of Sentry again on the next
    /// request, so someone removed from an organization loses access.
    pub membership_refresh_secs: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 12 * 60 * 60,
            absolute_timeout_secs: 7 * 24 * 60 * 60,
            membership_refresh_secs: 5 * 60,
        }
    }
}

/// What a request may take before the server stops waiting for it, and
/// how many it takes at once (README, "Operations").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLimits {
    pub max_in_flight: usize,
    pub header_timeout: std::time::Duration,
    pub request_timeout: std::time::Duration,
    /// Per client, on the routes that call Sentry or log people in.
    pub rate_per_minute: u32,
    /// Lower-case header name whose last address is the client's.
    pub client_ip_header: Option<String>,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_in_flight: 1024,
            header_timeout: std::time::Duration::from_secs(10),
            request_timeout: std::time::Duration::from_secs(30),
            rate_per_minute: 30,
            client_ip_header: None,
        }
    }
}

/// A header name as HTTP allows it (RFC 9110 token), lower-cased.
fn header_name(raw: &str) -> Result<String, String> {
    let valid = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if valid {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(format!("{raw:?} is not a header name"))
    }
}

/// Demo mode runs on sample data with no Sentry to talk to; it is chosen when no
/// Sentry App credentials are configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Demo,
    Sentry,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub site_addr: SocketAddr,
    /// `None` until the listener is bound, when it defaults to that address.
    pub public_url: Option<Url>,
    pub secret_key: SecretKey,
    pub secret_key_source: SecretKeySource,
    /// Keys from before a rotation: they open old ciphertexts only.
    pub previous_secret_keys: Vec<SecretKey>,
    pub sentry_url: Url,
    pub app: Option<AppCredentials>,
    pub internal: Option<InternalIntegration>,
    pub oauth: Option<OAuthCredentials>,
    /// Instance administrators, lower-case emails.
    pub admins: Vec<String>,
    /// Bearer token `/metrics` requires, if set.
    pub metrics_token: Option<Secret>,
    pub session: SessionPolicy,
    pub site_root: PathBuf,
    pub output_name: String,
    pub log_format: LogFormat,
    pub webhook_max_bytes: usize,
    /// How long a delivery's body marks later copies as retries.
    pub dedupe_window_ms: i64,
    pub limits: RequestLimits,
    /// `LEPTOS_ENV=DEV`: the page connects to cargo-leptos' reload socket.
    pub live_reload: bool,
    pub reload_port: u16,
}

impl Config {
    /// Reads the process environment, after a `.env` file in the working
    /// directory if there is one (development only; real deployments set
    /// variables).
    pub fn from_env() -> Result<Self, ConfigError> {
        load_dotenv();
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any source of variables; tests pass a
    /// map instead of touching the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // An empty value counts as unset: `.env` files often carry `NAME=`.
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let data_dir = PathBuf::from(get("ISSUEBRIDGE_DATA_DIR").unwrap_or_else(|| "./data".into()));

        let database_url = match get("DATABASE_URL") {
            Some(raw) => DatabaseUrl::parse(&raw).map_err(|p| ConfigError::new("DATABASE_URL", p))?,
            None => DatabaseUrl::sqlite_file(&data_dir.join("issuebridge.db")),
        };

        let site_addr = match get("LEPTOS_SITE_ADDR") {
            Some(raw) => raw.trim().parse().map_err(|_| {
                ConfigError::new("LEPTOS_SITE_ADDR", format!("{raw:?} is not an address like 127.0.0.1:3000"))
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
        };

        let public_url = get("ISSUEBRIDGE_PUBLIC_URL")
            .map(|raw| parse_base_url(&raw).map_err(|p| ConfigError::new("ISSUEBRIDGE_PUBLIC_URL", p)))
            .transpose()?;

        let sentry_url = parse_base_url(&get("SENTRY_URL").unwrap_or_else(|| "https://sentry.io".into()))
            .and_then(|url| {
                if url.scheme() == "http" && !is_loopback(&url) {
                    Err(format!(
                        "{url} is plain http: the app's secret and every token would cross the network \
                         readable; use https (plain http is accepted on loopback only)"
                    ))
                } else {
                    Ok(url)
                }
            })
            .map_err(|p| ConfigError::new("SENTRY_URL", p))?;

        let app = match (get("SENTRY_CLIENT_ID"), get("SENTRY_CLIENT_SECRET")) {
            (Some(client_id), Some(secret)) => Some(AppCredentials {
                client_id: client_id.trim().to_owned(),
                client_secret: Secret::new(secret.trim()),
                previous_client_secret: get("SENTRY_CLIENT_SECRET_PREVIOUS").map(|s| Secret::new(s.trim())),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new("SENTRY_CLIENT_SECRET", "must be set when SENTRY_CLIENT_ID is"))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new("SENTRY_CLIENT_ID", "must be set when SENTRY_CLIENT_SECRET is"))
            }
        };
        if app.is_none() && get("SENTRY_CLIENT_SECRET_PREVIOUS").is_some() {
            return Err(ConfigError::new(
                "SENTRY_CLIENT_SECRET_PREVIOUS",
                "needs SENTRY_CLIENT_ID and SENTRY_CLIENT_SECRET",
            ));
        }

        let internal =
            match (get("SENTRY_INTERNAL_TOKEN"), get("SENTRY_INTERNAL_INSTALLATION"), get("SENTRY_INTERNAL_ORG")) {
                (None, None, None) => None,
                (Some(token), Some(installation), Some(org)) => {
                    if app.is_none() {
                        return Err(ConfigError::new(
                            "SENTRY_INTERNAL_TOKEN",
                            "needs SENTRY_CLIENT_ID and SENTRY_CLIENT_SECRET too (the secret verifies webhooks)",
                        ));
                    }
                    Some(InternalIntegration {
                        token: Secret::new(token.trim()),
                        installation: crate::domain::ids::InstallationUuid::parse(&installation)
                            .map_err(|e| ConfigError::new("SENTRY_INTERNAL_INSTALLATION", e.to_string()))?,
                        org_slug: crate::domain::ids::OrgSlug::parse(org.trim())
                            .map_err(|e| ConfigError::new("SENTRY_INTERNAL_ORG", e.to_string()))?,
                    })
                }
                (token, installation, _) => {
                    let missing = if token.is_none() {
                        "SENTRY_INTERNAL_TOKEN"
                    } else if installation.is_none() {
                        "SENTRY_INTERNAL_INSTALLATION"
                    } else {
                        "SENTRY_INTERNAL_ORG"
                    };
                    return Err(ConfigError::new(
                        missing,
                        "internal integration mode needs all three SENTRY_INTERNAL_* variables",
                    ));
                }
            };

        let oauth = match (get("SENTRY_OAUTH_CLIENT_ID"), get("SENTRY_OAUTH_CLIENT_SECRET")) {
            (Some(client_id), Some(secret)) => Some(OAuthCredentials {
                client_id: client_id.trim().to_owned(),
                client_secret: Secret::new(secret.trim()),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "SENTRY_OAUTH_CLIENT_SECRET",
                    "must be set when SENTRY_OAUTH_CLIENT_ID is",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "SENTRY_OAUTH_CLIENT_ID",
                    "must be set when SENTRY_OAUTH_CLIENT_SECRET is",
                ))
            }
        };

        let admins = match get("ISSUEBRIDGE_ADMINS") {
            Some(raw) => raw
                .split(',')
                .map(|email| email.trim().to_lowercase())
                .filter(|email| !email.is_empty())
                .map(|email| {
                    if email.contains('@') && !email.chars().any(char::is_whitespace) {
                        Ok(email)
                    } else {
                        Err(ConfigError::new("ISSUEBRIDGE_ADMINS", format!("{email:?} is not an email address")))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let metrics_token = get("ISSUEBRIDGE_METRICS_TOKEN").map(|token| Secret::new(token.trim()));

        let log_format = match get("ISSUEBRIDGE_LOG_FORMAT") {
            Some(raw) => raw.parse().map_err(|p| ConfigError::new("ISSUEBRIDGE_LOG_FORMAT", p))?,
            None => LogFormat::Human,
        };

        let webhook_max_bytes = match get("ISSUEBRIDGE_WEBHOOK_MAX_BYTES") {
            Some(raw) => raw.trim().parse::<usize>().ok().filter(|n| *n >= 1024).ok_or_else(|| {
                ConfigError::new(
                    "ISSUEBRIDGE_WEBHOOK_MAX_BYTES",
                    format!("{raw:?} is not a size of at least 1024 bytes"),
                )
            })?,
            None => 1 << 20,
        };

        let count = |name: &'static str, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(raw) => raw.trim().parse::<u64>().ok().filter(|n| (min..=max).contains(n)).ok_or_else(|| {
                    ConfigError::new(name, format!("{raw:?} is not a whole number from {min} to {max}"))
                }),
            }
        };
        let dedupe_window_ms = count("ISSUEBRIDGE_DEDUPE_WINDOW_SECS", 3600, 60, 30 * 24 * 3600)? as i64 * 1000;
        let limits = RequestLimits {
            max_in_flight: count("ISSUEBRIDGE_MAX_IN_FLIGHT", 1024, 1, 1 << 20)? as usize,
            header_timeout: std::time::Duration::from_secs(count("ISSUEBRIDGE_HEADER_TIMEOUT_SECS", 10, 1, 3600)?),
            request_timeout: std::time::Duration::from_secs(count("ISSUEBRIDGE_REQUEST_TIMEOUT_SECS", 30, 1, 3600)?),
            rate_per_minute: count("ISSUEBRIDGE_RATE_LIMIT_PER_MINUTE", 30, 1, 1 << 20)? as u32,
            client_ip_header: match get("ISSUEBRIDGE_CLIENT_IP_HEADER") {
                None => None,
                Some(raw) => {
                    Some(header_name(raw.trim()).map_err(|p| ConfigError::new("ISSUEBRIDGE_CLIENT_IP_HEADER", p))?)
                }
            },
        };

        let live_reload = match get("LEPTOS_ENV").as_deref().map(str::trim) {
            None | Some("PROD") | Some("prod") | Some("production") => false,
            Some("DEV") | Some("dev") | Some("development") => true,
            Some(other) => return Err(ConfigError::new("LEPTOS_ENV", format!("{other:?} is neither DEV nor PROD"))),
        };
        let reload_port = match get("LEPTOS_RELOAD_PORT") {
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|_| ConfigError::new("LEPTOS_RELOAD_PORT", format!("{raw:?} is not a port number")))?,
            None => 3001,
        };

        let (secret_key, secret_key_source) = match get("ISSUEBRIDGE_SECRET_KEY") {
            Some(raw) => (
                SecretKey::parse_hex(&raw).map_err(|p| ConfigError::new("ISSUEBRIDGE_SECRET_KEY", p))?,
                SecretKeySource::Environment,
            ),
            // Several instances share one PostgreSQL database and must share
            // the key too; a key generated on one machine would strand the
            // tokens it encrypted.
            None if database_url.backend() == Backend::Postgres => {
                return Err(ConfigError::new(
                    "ISSUEBRIDGE_SECRET_KEY",
                    "must be set when DATABASE_URL is PostgreSQL, so that every instance shares it",
                ))
            }
            None => load_or_generate_key(&data_dir)?,
        };

        let previous_secret_keys = match get("ISSUEBRIDGE_SECRET_KEY_PREVIOUS") {
            Some(raw) => raw
                .split(',')
                .filter(|part| !part.trim().is_empty())
                .map(SecretKey::parse_hex)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|p| ConfigError::new("ISSUEBRIDGE_SECRET_KEY_PREVIOUS", format!("each key {p}")))?,
            None => Vec::new(),
        };

        Ok(Self {
            data_dir,
            database_url,
            site_addr,
            public_url,
            secret_key,
            secret_key_source,
            previous_secret_keys,
            sentry_url,
            app,
            internal,
            oauth,
            admins,
            metrics_token,
            session: SessionPolicy::default(),
            site_root: PathBuf::from(get("LEPTOS_SITE_ROOT").unwrap_or_else(|| "target/site".into())),
            output_name: get("LEPTOS_OUTPUT_NAME").unwrap_or_else(|| "issuebridge".into()),
            log_format,
            webhook_max_bytes,
            dedupe_window_ms,
            limits,
            live_reload,
            reload_port,
        })
    }

    pub fn mode(&self) -> Mode {
        if self.app.is_some() {
            Mode::Sentry
        } else {
            Mode::Demo
        }
    }

    /// Outside demo mode, a key file beside the database means that a copy
    /// of the data folder (a backup, a snapshot) holds every token and the
    /// key that opens them: worth a warning at every start.
    pub fn secret_key_warning(&self) -> Option<String> {
        let path = match (&self.secret_key_source, self.mode()) {
            (SecretKeySource::File(path) | SecretKeySource::Generated(path), Mode::Sentry) => path,
            _ => return None,
        };
        Some(format!(
            "the key that encrypts Sentry tokens is the file {}, beside the database: whoever copies the data \
             folder can read every token. Set ISSUEBRIDGE_SECRET_KEY from a secret store instead (to the \
             file's contents, or to a new key with the file's as ISSUEBRIDGE_SECRET_KEY_PREVIOUS and then \
             `issuebridge reseal`)",
            path.display()
        ))
    }

    /// Whether `email` names an instance administrator (case-insensitively).
    pub fn is_admin(&self, email: &str) -> bool {
        let email = email.trim().to_lowercase();
        self.admins.iter().any(|admin| *admin == email)
    }

    /// The base URL others reach us at, falling back to the bound address.
    pub fn public_url_or(&self, bound: SocketAddr) -> Url {
        self.public_url.clone().unwrap_or_else(|| {
            let host = if bound.ip().is_unspecified() { "127.0.0.1".to_owned() } else { bound.ip().to_string() };
            let host = if bound.is_ipv6() && host != "127.0.0.1" { format!("[{host}]") } else { host };
            Url::parse(&format!("http://{host}:{}", bound.port())).expect("an address always makes a URL")
        })
    }
}

/// Fills unset variables from `./.env`, if there is one. Variables already
/// set win, so production settings are never overridden by a stray file.
pub fn load_dotenv() {
    let _ = dotenvy::dotenv();
}

/// An absolute http(s) URL with no query or fragment; the trailing slash is
/// dropped so paths can be appended with `/…`.
/// Whether `url` names this machine (`localhost`, 127.0.0.0/8, `::1`).
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn parse_base_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL ({e})"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("{raw:?} must be an http or https URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{raw:?} must not have a query or fragment"));
    }
    let trimmed = url.as_str().trim_end_matches('/').to_owned();
    Url::parse(&trimmed).map_err(|e| format!("{raw:?} is not a URL ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::{BTreeSet, HashMap};

    fn config_with(dir: &Path, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        config_asking(dir, vars, |_| {})
    }

    /// `config_with`, telling `asked` every name the parser looks up.
    fn config_asking(dir: &Path, vars: &[(&str, &str)], asked: impl Fn(&str)) -> Result<Config, ConfigError> {
        let mut map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        map.entry("ISSUEBRIDGE_DATA_DIR".into()).or_insert_with(|| dir.display().to_string());
        Config::from_lookup(|name| {
            asked(name);
            map.get(name).cloned()
        })
    }

    #[test]
    fn env_vars_lists_exactly_the_variables_issuebridge_reads() {
        let dir = tempfile::tempdir().unwrap();
        let key = "11".repeat(32);
        let (id, secret) = (("SENTRY_CLIENT_ID", "id"), ("SENTRY_CLIENT_SECRET", "secret"));
        // Between them these take every branch that reads a variable. Each
        // must parse: an error would leave the reads after it unrecorded.
        let inputs: &[&[(&str, &str)]] = &[
            // Demo defaults: the key is generated into the data folder.
            &[],
            // A public Sentry App, rotating its client secret.
            &[id, secret, ("SENTRY_CLIENT_SECRET_PREVIOUS", "old")],
            // Internal integration mode.
            &[
                id,
                secret,
                ("SENTRY_INTERNAL_TOKEN", "tok"),
                ("SENTRY_INTERNAL_INSTALLATION", "7a485448-a9e2-4c85-8a3c-4f44175783c9"),
                ("SENTRY_INTERNAL_ORG", "acme"),
            ],
            // PostgreSQL with its required key, rotating that key.
            &[
                ("DATABASE_URL", "postgres://u@localhost/db"),
                ("ISSUEBRIDGE_SECRET_KEY", &key),
                ("ISSUEBRIDGE_SECRET_KEY_PREVIOUS", &key),
            ],
            // Every other setting away from its default.
            &[
                ("LEPTOS_SITE_ADDR", "0.0.0.0:8080"),
                ("ISSUEBRIDGE_PUBLIC_URL", "https://ib.example.com"),
                ("SENTRY_URL", "https://de.sentry.io"),
                ("SENTRY_OAUTH_CLIENT_ID", "oauth-id"),
                ("SENTRY_OAUTH_CLIENT_SECRET", "oauth-secret"),
                ("ISSUEBRIDGE_ADMINS", "Ada@Example.com, bob@example.com"),
                ("ISSUEBRIDGE_METRICS_TOKEN", "scrape-me"),
                ("ISSUEBRIDGE_LOG_FORMAT", "json"),
                ("ISSUEBRIDGE_WEBHOOK_MAX_BYTES", "4096"),
                ("LEPTOS_ENV", "DEV"),
                ("LEPTOS_RELOAD_PORT", "3002"),
                ("LEPTOS_SITE_ROOT", "site"),
                ("LEPTOS_OUTPUT_NAME", "ib"),
            ],
        ];
        let asked = RefCell::new(BTreeSet::new());
        for vars in inputs {
            config_asking(dir.path(), vars, |name| {
                asked.borrow_mut().insert(name.to_owned());
            })
            .unwrap_or_else(|e| panic!("{vars:?} must parse: {e}"));
        }
        let mut read = asked.into_inner();
        read.insert(LOG_FILTER_VAR.to_owned());

        let documented: BTreeSet<String> = ENV_VARS.iter().map(|var| var.name.to_owned()).collect();
        assert_eq!(documented.len(), ENV_VARS.len(), "ENV_VARS names a variable twice");
        let undocumented: Vec<_> = read.difference(&documented).collect();
        let never_read: Vec<_> = documented.difference(&read).collect();
        assert!(
            undocumented.is_empty() && never_read.is_empty(),
            "read but missing from ENV_VARS: {undocumented:?}; in ENV_VARS but never read: {never_read:?}"
        );
    }

    #[test]
    fn defaults_run_out_of_the_box_in_demo_mode() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_with(dir.path(), &[]).unwrap();
        assert_eq!(config.mode(), Mode::Demo);
        assert_eq!(config.site_addr.to_string(), "127.0.0.1:3000");
        assert_eq!(config.database_url.backend(), Backend::Sqlite);
        assert!(config.database_url.expose().ends_with("issuebridge.db"));
        assert_eq!(config.sentry_url.as_str(), "https://sentry.io/");
        assert!(matches!(config.secret_key_source, SecretKeySource::Generated(_)));
        assert_eq!(config.public_url_or(config.site_addr).as_str(), "http://127.0.0.1:3000/");
        // A restart reads the generated key back (secrets.rs tests the file itself).
        let restarted = config_with(dir.path(), &[]).unwrap();
        assert_eq!(restarted.secret_key, config.secret_key);
        assert!(matches!(restarted.secret_key_source, SecretKeySource::File(_)));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let dir = tempfile::tempdir().unwrap();
        let cases: &[(&str, &str)] = &[
            ("DATABASE_URL", "mysql://localhost/x"),
            ("DATABASE_URL", "sqlite::memory:"),
            ("LEPTOS_SITE_ADDR", "localhost"),
            ("ISSUEBRIDGE_PUBLIC_URL", "ftp://example.com"),
            ("ISSUEBRIDGE_PUBLIC_URL", "https://example.com/?a=b"),
            ("ISSUEBRIDGE_SECRET_KEY", "abc"),
            ("ISSUEBRIDGE_SECRET_KEY", "00"),
            ("SENTRY_URL", "not a url"),
            ("ISSUEBRIDGE_LOG_FORMAT", "xml"),
            ("LEPTOS_ENV", "staging"),
            ("ISSUEBRIDGE_SECRET_KEY_PREVIOUS", "beef"),
            ("LEPTOS_RELOAD_PORT", "70000"),
            ("ISSUEBRIDGE_WEBHOOK_MAX_BYTES", "12"),
            ("ISSUEBRIDGE_ADMINS", "ada@example.com, not an email"),
            ("SENTRY_URL", "http://sentry.example.com"),
            ("SENTRY_URL", "http://10.0.0.5:9000"),
            ("ISSUEBRIDGE_DEDUPE_WINDOW_SECS", "5"),
            ("ISSUEBRIDGE_MAX_IN_FLIGHT", "0"),
            ("ISSUEBRIDGE_HEADER_TIMEOUT_SECS", "soon"),
            ("ISSUEBRIDGE_REQUEST_TIMEOUT_SECS", "-1"),
            ("ISSUEBRIDGE_RATE_LIMIT_PER_MINUTE", "0"),
            ("ISSUEBRIDGE_CLIENT_IP_HEADER", "x forwarded for"),
        ];
        for (var, value) in cases {
            let err = config_with(dir.path(), &[(var, value)]).unwrap_err();
            assert_eq!(err.var, *var, "{var}={value} blamed {err}");
            assert!(err.to_string().starts_with(var));
        }
    }

    #[test]
    fn plain_http_reaches_sentry_only_on_this_machine() {
        let dir = tempfile::tempdir().unwrap();
        for allowed in
            ["http://127.0.0.1:9000", "http://localhost:8000", "http://[::1]:9000", "https://sentry.example.com"]
        {
            let config = config_with(dir.path(), &[("SENTRY_URL", allowed)]).unwrap();
            assert_eq!(config.sentry_url.as_str().trim_end_matches('/'), allowed);
        }
        let refused = config_with(dir.path(), &[("SENTRY_URL", "http://sentry.internal")]).unwrap_err();
        assert!(refused.problem.contains("use https"), "{refused}");
    }

    #[test]
    fn limits_have_defaults_and_can_be_tuned() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_with(dir.path(), &[]).unwrap();
        assert_eq!(config.limits, RequestLimits::default());
        assert_eq!(config.dedupe_window_ms, 3_600_000);
        let tuned = config_with(
            dir.path(),
            &[
                ("ISSUEBRIDGE_MAX_IN_FLIGHT", "64"),
                ("ISSUEBRIDGE_HEADER_TIMEOUT_SECS", "3"),
                ("ISSUEBRIDGE_REQUEST_TIMEOUT_SECS", "9"),
                ("ISSUEBRIDGE_RATE_LIMIT_PER_MINUTE", "120"),
                ("ISSUEBRIDGE_CLIENT_IP_HEADER", "X-Real-IP"),
                ("ISSUEBRIDGE_DEDUPE_WINDOW_SECS", "600"),
            ],
        )
        .unwrap();
        assert_eq!(
            tuned.limits,
            RequestLimits {
                max_in_flight: 64,
                header_timeout: std::time::Duration::from_secs(3),
                request_timeout: std::time::Duration::from_secs(9),
                rate_per_minute: 120,
                client_ip_header: Some("x-real-ip".into()),
            }
        );
        assert_eq!(tuned.dedupe_window_ms, 600_000);
    }

    #[test]
    fn a_key_file_beside_the_database_is_warned_about_outside_demo_mode() {
        let dir = tempfile::tempdir().unwrap();
        let sentry = [("SENTRY_CLIENT_ID", "id"), ("SENTRY_CLIENT_SECRET", "secret")];
        assert_eq!(config_with(dir.path(), &[]).unwrap().secret_key_warning(), None, "demo mode");
        let warning = config_with(dir.path(), &sentry).unwrap().secret_key_warning().expect("a warning");
        assert!(warning.contains("secret.key") && warning.contains("ISSUEBRIDGE_SECRET_KEY"), "{warning}");
        let key = ("ISSUEBRIDGE_SECRET_KEY", "00".repeat(32));
        let from_env = config_with(dir.path(), &[sentry[0], sentry[1], (key.0, key.1.as_str())]).unwrap();
        assert_eq!(from_env.secret_key_warning(), None);
    }

    #[test]
    fn credentials_come_in_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let err = config_with(dir.path(), &[("SENTRY_CLIENT_ID", "abc")]).unwrap_err();
        assert_eq!(err.var, "SENTRY_CLIENT_SECRET");
        let err = config_with(dir.path(), &[("SENTRY_OAUTH_CLIENT_SECRET", "s")]).unwrap_err();
        assert_eq!(err.var, "SENTRY_OAUTH_CLIENT_ID");
        let config = config_with(
            dir.path(),
            &[
                ("SENTRY_CLIENT_ID", "abc"),
                ("SENTRY_CLIENT_SECRET", "s3cret"),
                ("SENTRY_CLIENT_SECRET_PREVIOUS", "old"),
            ],
        )
        .unwrap();
        assert_eq!(config.mode(), Mode::Sentry);
        let app = config.app.unwrap();
        assert_eq!(app.client_secret.expose(), "s3cret");
        assert_eq!(app.previous_client_secret.unwrap().expose(), "old");
    }

    #[test]
    fn internal_mode_needs_all_three_and_the_app_secret() {
        let dir = tempfile::tempdir().unwrap();
        let app = [("SENTRY_CLIENT_ID", "id"), ("SENTRY_CLIENT_SECRET", "secret")];
        let internal = [
            ("SENTRY_INTERNAL_TOKEN", "tok"),
            ("SENTRY_INTERNAL_INSTALLATION", "7a485448-a9e2-4c85-8a3c-4f44175783c9"),
            ("SENTRY_INTERNAL_ORG", "acme"),
        ];
        let all: Vec<_> = app.iter().chain(&internal).copied().collect();
        let config = config_with(dir.path(), &all).unwrap();
        assert_eq!(config.internal.unwrap().org_slug.as_str(), "acme");
        assert_eq!(config_with(dir.path(), &internal).unwrap_err().var, "SENTRY_INTERNAL_TOKEN");
        let partial: Vec<_> = app.iter().chain(&internal[..2]).copied().collect();
        assert_eq!(config_with(dir.path(), &partial).unwrap_err().var, "SENTRY_INTERNAL_ORG");
        let mut bad = all.clone();
        bad[3] = ("SENTRY_INTERNAL_INSTALLATION", "nope");
        assert_eq!(config_with(dir.path(), &bad).unwrap_err().var, "SENTRY_INTERNAL_INSTALLATION");
    }

    #[test]
    fn empty_values_count_as_unset() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_with(dir.path(), &[("SENTRY_CLIENT_ID", ""), ("SENTRY_CLIENT_SECRET", " ")]).unwrap();
        assert_eq!(config.mode(), Mode::Demo);
    }

    #[test]
    fn postgres_requires_an_explicit_key() {
        let dir = tempfile::tempdir().unwrap();
        let err = config_with(dir.path(), &[("DATABASE_URL", "postgres://u@localhost/db")]).unwrap_err();
        assert_eq!(err.var, "ISSUEBRIDGE_SECRET_KEY");
        let key = "11".repeat(32);
        let config =
            config_with(dir.path(), &[("DATABASE_URL", "postgres://u@localhost/db"), ("ISSUEBRIDGE_SECRET_KEY", &key)])
                .unwrap();
        assert_eq!(config.secret_key_source, SecretKeySource::Environment);
        assert!(!dir.path().join("secret.key").exists());
    }

    #[test]
    fn secrets_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_with(
            dir.path(),
            &[
                ("SENTRY_CLIENT_ID", "abc"),
                ("SENTRY_CLIENT_SECRET", "topsecretvalue"),
                ("DATABASE_URL", "postgres://user:hunter2@db.example/issuebridge"),
                ("ISSUEBRIDGE_SECRET_KEY", &"ab".repeat(32)),
            ],
        )
        .unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("topsecretvalue"));
        assert!(!printed.contains("hunter2"));
        assert!(!printed.contains(&"ab".repeat(32)));
        assert!(config.database_url.to_string().contains("user:redacted@db.example"));
    }

    #[test]
    fn admins_are_emails_compared_without_case() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_with(dir.path(), &[("ISSUEBRIDGE_ADMINS", " Ada@Example.com ,bob@example.com,")]).unwrap();
        assert_eq!(config.admins, ["ada@example.com", "bob@example.com"]);
        assert!(config.is_admin("ADA@example.com"));
        assert!(!config.is_admin("eve@example.com"));
        assert!(config_with(dir.path(), &[]).unwrap().admins.is_empty());
    }

    #[test]
    fn public_url_loses_its_trailing_slash() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_with(dir.path(), &[("ISSUEBRIDGE_PUBLIC_URL", "https://ib.example.com/base/")]).unwrap();
        assert_eq!(config.public_url.unwrap().as_str(), "https://ib.example.com/base");
    }
}
