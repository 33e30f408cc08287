//! The command line: `serve` (the default), `migrate`, and `--help` with
//! every environment variable.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use issuebridge::config::{self, Config, LogFormat, Mode, SecretKeySource, ENV_VARS};
use issuebridge::domain::access::OrgScope;
use issuebridge::domain::audit::{AuditAction, COMMAND_LINE};
use issuebridge::store::{NewAuditEvent, Replay, Store};

use crate::startup::{shutdown_signal, Application};
use crate::telemetry;

/// issuebridge: a Sentry App that links Sentry issues to a fast ticket board.
#[derive(Parser, Debug)]
#[command(name = "issuebridge", version)]
pub struct Cli {
    /// Log format: human or json [overrides ISSUEBRIDGE_LOG_FORMAT]
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Apply migrations and serve the console, Sentry's callbacks and the
    /// operations endpoints (the default command).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Process stored deliveries again: one, those received in a time
    /// range, or every dead one. A running issuebridge's worker applies them.
    Replay(ReplayArgs),
    /// Show or change what an installation does with Sentry's webhooks:
    /// whether new issues open tickets, the status mapping, the user mapping.
    Settings(SettingsArgs),
    /// Print a single-use link, valid for ten minutes, that logs an
    /// instance administrator (named by ISSUEBRIDGE_ADMINS) into the
    /// console: for deployments without an OAuth application.
    LoginLink(LoginLinkArgs),
    /// Register a project service hook, so Sentry sends that project's raw
    /// events (event.created, event.alert) to /sentry/service-hook.
    #[command(subcommand)]
    Hooks(HooksCommand),
    /// Print the UI-component schema to paste into the Sentry App's Schema
    /// field (the same document /sentry/schema.json serves).
    Schema,
    /// List and change an installation's teams and their members.
    #[command(subcommand)]
    Teams(TeamsCommand),
    /// List and change an installation's code mappings, which turn stack
    /// frames into links to the code.
    #[command(subcommand)]
    Mappings(MappingsCommand),
    /// Retire old encryption keys: seal every stored token and hook secret
    /// again with ISSUEBRIDGE_SECRET_KEY, after which the keys in
    /// ISSUEBRIDGE_SECRET_KEY_PREVIOUS can be removed. Safe while serving.
    Reseal,
    /// Run a simulated Sentry, to try issuebridge (or develop against it)
    /// without a Sentry account; it prints the variables to point
    /// issuebridge at it and an install link.
    Sim(SimArgs),
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum HooksCommand {
    /// Register a hook on a project of an installation's organization.
    Register {
        /// The installation (its organization owns the project).
        #[arg(long)]
        installation: String,
        /// The project's slug.
        #[arg(long)]
        project: String,
        /// Events to receive.
        #[arg(long, value_delimiter = ',', default_value = "event.created,event.alert")]
        events: Vec<String>,
    },
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum TeamsCommand {
    /// List the teams, their keys and members.
    List {
        #[arg(long)]
        installation: String,
    },
    /// Make a team; its tickets are numbered KEY-1, KEY-2…
    Add {
        #[arg(long)]
        installation: String,
        /// 2 to 10 letters and digits, starting with a letter (ENG).
        #[arg(long)]
        key: String,
        #[arg(long)]
        name: String,
    },
    /// Rename a team (its key stays).
    Rename {
        #[arg(long)]
        installation: String,
        #[arg(long)]
        team: String,
        #[arg(long)]
        name: String,
    },
    /// Add a member, by email.
    AddMember {
        #[arg(long)]
        installation: String,
        #[arg(long)]
        team: String,
        #[arg(long)]
        email: String,
    },
    /// Remove a member.
    RemoveMember {
        #[arg(long)]
        installation: String,
        #[arg(long)]
        team: String,
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum MappingsCommand {
    /// List the code mappings.
    List {
        #[arg(long)]
        installation: String,
    },
    /// Add a mapping, or replace the one with the same project and stack root.
    Add {
        #[arg(long)]
        installation: String,
        /// The Sentry project's slug.
        #[arg(long)]
        project: String,
        /// The start of frames' paths this mapping covers (may be empty).
        #[arg(long, default_value = "")]
        stack_root: String,
        /// Where those files are in the repository (may be empty).
        #[arg(long, default_value = "")]
        source_root: String,
        /// github, gitlab, bitbucket or template.
        #[arg(long)]
        provider: String,
        /// The repository's address, or for `template` a URL with {path},
        /// {line} and {branch}.
        #[arg(long)]
        repo: String,
        #[arg(long, default_value = "main")]
        branch: String,
    },
    /// Delete a mapping by id.
    Remove {
        #[arg(long)]
        installation: String,
        #[arg(long)]
        id: i64,
    },
}

#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct LoginLinkArgs {
    /// The administrator's email, as listed in ISSUEBRIDGE_ADMINS.
    #[arg(long)]
    pub email: String,
}

#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct ReplayArgs {
    /// The delivery with this id.
    #[arg(long)]
    pub id: Option<i64>,
    /// Deliveries received from this time on (RFC 3339); with --until.
    #[arg(long, requires = "until", value_name = "TIME")]
    pub since: Option<String>,
    /// ... and before this time (RFC 3339).
    #[arg(long, requires = "since", value_name = "TIME")]
    pub until: Option<String>,
    /// Every delivery parked as dead.
    #[arg(long)]
    pub dead: bool,
}

#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct SettingsArgs {
    /// The installation's uuid.
    pub installation: String,
    /// Open a ticket for every new Sentry issue (issue.created): on or off.
    #[arg(long, value_name = "on|off", value_parser = parse_switch)]
    pub new_issues: Option<bool>,
    /// Map a Sentry issue status to a ticket status, e.g. resolved=done,
    /// ignored=wont_do, unresolved=todo (statuses: todo, in_progress,
    /// done, wont_do). Repeatable.
    #[arg(long = "status", value_name = "SENTRY=TICKET")]
    pub statuses: Vec<String>,
    /// Assign tickets to TO when Sentry assigns FROM (emails); an empty TO
    /// removes the mapping. Repeatable.
    #[arg(long = "map-user", value_name = "FROM=TO")]
    pub users: Vec<String>,
}

fn parse_switch(text: &str) -> Result<bool, String> {
    match text {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        other => Err(format!("{other:?} is neither on nor off")),
    }
}

#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct SimArgs {
    /// Address for the simulated Sentry to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: std::net::SocketAddr,
    /// The Sentry App's client id (random when not given).
    #[arg(long)]
    pub client_id: Option<String>,
    /// The Sentry App's client secret (random when not given).
    #[arg(long)]
    pub client_secret: Option<String>,
    /// Install the app into this organization at start-up.
    #[arg(long, default_value = "acme")]
    pub org: String,
    /// issuebridge's public URL, for the install link.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub app_url: url::Url,
}

/// The variables table that `--help` prints after the commands.
pub fn environment_help() -> String {
    let width = ENV_VARS.iter().map(|v| v.name.len()).max().unwrap_or(0);
    let mut text = String::from("Environment (also read from ./.env):\n");
    for var in ENV_VARS {
        text.push_str(&format!(
            "  {:width$}  {}\n  {:width$}  [default: {}]\n",
            var.name, var.meaning, "", var.default
        ));
    }
    text.push_str("\nWith no SENTRY_CLIENT_ID/SENTRY_CLIENT_SECRET, issuebridge runs in demo mode.");
    text
}

pub fn parse_args() -> Cli {
    let command = Cli::command().after_help(environment_help());
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Exit codes: 0 done, 1 failed while running, 2 bad configuration.
pub fn run() -> ExitCode {
    config::load_dotenv();
    let cli = parse_args();
    if let Some(Command::Replay(args)) = &cli.command {
        let chosen = usize::from(args.id.is_some()) + usize::from(args.since.is_some()) + usize::from(args.dead);
        if chosen != 1 {
            Cli::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "replay takes exactly one of --id, --since/--until, --dead",
                )
                .exit();
        }
    }
    if let Some(Command::Schema) = &cli.command {
        match serde_json::to_string_pretty(&issuebridge::components::definition::schema()) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("issuebridge: {e}");
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Sim(args)) = &cli.command {
        telemetry::init(cli.log_format.unwrap_or(LogFormat::Human));
        return run_simulator(args.clone());
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("issuebridge: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(cli.log_format.unwrap_or(config.log_format));

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("issuebridge: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::Migrate => migrate(config).await,
            Command::Reseal => reseal(config).await,
            Command::Replay(args) => replay(config, args).await,
            Command::Settings(args) => settings(config, args).await,
            Command::LoginLink(args) => login_link(config, &args.email).await,
            Command::Hooks(HooksCommand::Register { installation, project, events }) => {
                register_hook(config, &installation, &project, &events).await
            }
            Command::Teams(command) => teams(config, command).await,
            Command::Mappings(command) => mappings(config, command).await,
            Command::Sim(_) | Command::Schema => unreachable!("handled before the configuration is read"),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("issuebridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    match &config.secret_key_source {
        SecretKeySource::Generated(path) => {
            tracing::warn!(path = %path.display(), "ISSUEBRIDGE_SECRET_KEY is unset: generated a key; keep this file")
        }
        SecretKeySource::File(path) => tracing::info!(path = %path.display(), "secret key read from the data folder"),
        SecretKeySource::Environment => {}
    }
    if let Some(warning) = config.secret_key_warning() {
        tracing::warn!("{warning}");
    }
    tracing::info!(database = %config.database_url, "opening the store");
    let mode = config.mode();
    let app = Application::build(config).await?;
    let mode_text = match mode {
        Mode::Demo => "demo mode: no Sentry credentials are configured",
        Mode::Sentry => "connected to Sentry",
    };
    tracing::info!(address = %app.local_addr(), "listening");
    // On stdout, for people and for scripts that wait for the server.
    println!("issuebridge is ready: console at {} ({mode_text})", app.public_url());
    app.run_until(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn replay(config: Config, args: ReplayArgs) -> anyhow::Result<()> {
    use issuebridge::sentry::api::parse_datetime_ms;
    let time = |text: &str| {
        parse_datetime_ms(text)
            .ok_or_else(|| anyhow::anyhow!("{text:?} is not an RFC 3339 time like 2026-11-27T10:00:00Z"))
    };
    let which = match (args.id, args.since.as_deref(), args.until.as_deref(), args.dead) {
        (Some(id), ..) => Replay::One(id),
        (_, Some(since), Some(until), _) => Replay::Between { from_ms: time(since)?, to_ms: time(until)? },
        _ => Replay::Dead,
    };
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let count = store.requeue_deliveries(&which, &OrgScope::Everything).await?;
    let what = match which {
        Replay::One(id) => format!("delivery {id}"),
        Replay::Between { .. } => format!(
            "the deliveries received from {} until {}",
            args.since.unwrap_or_default(),
            args.until.unwrap_or_default()
        ),
        Replay::Dead => "every dead delivery".to_owned(),
    };
    store
        .record_audit(&NewAuditEvent::new(COMMAND_LINE, AuditAction::Replay, format!("replayed {count}: {what}")))
        .await?;
    println!("requeued {count} deliveries; a running issuebridge applies them");
    store.close().await;
    Ok(())
}

async fn settings(config: Config, args: SettingsArgs) -> anyhow::Result<()> {
    use issuebridge::domain::ticket_rules::IssueStatus;
    let installation = issuebridge::domain::ids::InstallationUuid::parse(&args.installation)?;
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    anyhow::ensure!(store.installation(&installation).await?.is_some(), "no installation {installation} here");
    let mut settings = store.installation_settings(&installation).await?;
    if let Some(on) = args.new_issues {
        settings.open_ticket_on_new_issue = on;
    }
    for pair in &args.statuses {
        let (sentry, ticket) = pair.split_once('=').ok_or_else(|| anyhow::anyhow!("{pair:?} is not SENTRY=TICKET"))?;
        let ticket: issuebridge::domain::ticket::TicketStatus = ticket.trim().parse()?;
        let slot = match IssueStatus::from_action(sentry.trim()) {
            Some(IssueStatus::Resolved) => &mut settings.status_mapping.resolved,
            Some(IssueStatus::Ignored) => &mut settings.status_mapping.ignored,
            Some(IssueStatus::Unresolved) => &mut settings.status_mapping.unresolved,
            None => anyhow::bail!("{sentry:?} is not a Sentry issue status (resolved, ignored, unresolved)"),
        };
        *slot = ticket;
    }
    for pair in &args.users {
        let (from, to) = pair.split_once('=').ok_or_else(|| anyhow::anyhow!("{pair:?} is not FROM=TO"))?;
        let (from, to) = (from.trim().to_lowercase(), to.trim());
        if to.is_empty() {
            settings.user_mapping.remove(&from);
        } else {
            settings.user_mapping.insert(from, to.to_owned());
        }
    }
    let changed = args.new_issues.is_some() || !args.statuses.is_empty() || !args.users.is_empty();
    if changed {
        let before = store.installation_settings(&installation).await?;
        let org = store.installation(&installation).await?.map(|record| record.org_slug).unwrap_or_default();
        let event = NewAuditEvent::new(
            COMMAND_LINE,
            AuditAction::SettingsChanged,
            issuebridge::domain::settings::describe_change(&before, &settings),
        )
        .about(org, installation.as_str());
        store.set_installation_settings(&installation, &settings, &event).await?;
    }
    println!("{}", serde_json::to_string_pretty(&settings)?);
    store.close().await;
    Ok(())
}

/// The store and an installation the command line names, checked.
async fn open_installation(config: &Config, raw: &str) -> anyhow::Result<(Store, String, String)> {
    let uuid = issuebridge::domain::ids::InstallationUuid::parse(raw)?;
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let record = store.installation(&uuid).await?.ok_or_else(|| anyhow::anyhow!("no installation {uuid} here"))?;
    Ok((store, uuid.to_string(), record.org_slug))
}

async fn teams(config: Config, command: TeamsCommand) -> anyhow::Result<()> {
    use issuebridge::domain::team::TeamChange;
    let (installation, change) = match command {
        TeamsCommand::List { installation } => (installation, None),
        TeamsCommand::Add { installation, key, name } => (installation, Some(TeamChange::Add { key, name })),
        TeamsCommand::Rename { installation, team, name } => {
            (installation, Some(TeamChange::Rename { key: team, name }))
        }
        TeamsCommand::AddMember { installation, team, email } => {
            (installation, Some(TeamChange::AddMember { key: team, email }))
        }
        TeamsCommand::RemoveMember { installation, team, email } => {
            (installation, Some(TeamChange::RemoveMember { key: team, email }))
        }
    };
    let (store, uuid, org) = open_installation(&config, &installation).await?;
    if let Some(change) = change {
        let detail = store.change_team(&uuid, &change).await?;
        let event = NewAuditEvent::new(COMMAND_LINE, AuditAction::TeamChanged, detail).about(org, uuid.as_str());
        store.record_audit(&event).await?;
    }
    for team in store.teams_with_default(&uuid).await? {
        let default = if team.is_default { " (default)" } else { "" };
        println!("{}\t{}{default}\t{}", team.key, team.name, team.members.join(", "));
    }
    store.close().await;
    Ok(())
}

async fn mappings(config: Config, command: MappingsCommand) -> anyhow::Result<()> {
    use issuebridge::components::stacktrace::MappingForm;
    let installation = match &command {
        MappingsCommand::List { installation }
        | MappingsCommand::Add { installation, .. }
        | MappingsCommand::Remove { installation, .. } => installation.clone(),
    };
    let (store, uuid, org) = open_installation(&config, &installation).await?;
    let change = match command {
        MappingsCommand::List { .. } => None,
        MappingsCommand::Add { project, stack_root, source_root, provider, repo, branch, .. } => {
            let form = MappingForm { project_slug: project, stack_root, source_root, provider, repo_url: repo, branch };
            let mapping = form.parse()?;
            store.save_code_mapping(&uuid, &mapping).await?;
            Some(format!("mapped {}:{}/ to {}", mapping.project_slug, mapping.stack_root, mapping.repo_url))
        }
        MappingsCommand::Remove { id, .. } => {
            anyhow::ensure!(store.delete_code_mapping(&uuid, id).await?, "no code mapping {id} here");
            Some(format!("deleted code mapping {id}"))
        }
    };
    if let Some(detail) = change {
        let event = NewAuditEvent::new(COMMAND_LINE, AuditAction::CodeMappingChanged, detail).about(org, uuid.as_str());
        store.record_audit(&event).await?;
    }
    for m in store.code_mappings(&uuid, None).await? {
        println!(
            "{}\t{}\t{}/ -> {}/\t{} {} @ {}",
            m.id, m.project_slug, m.stack_root, m.source_root, m.provider, m.repo_url, m.branch
        );
    }
    store.close().await;
    Ok(())
}

/// Prints a login link for an instance administrator; only a hash of its
/// secret is stored.
async fn login_link(config: Config, email: &str) -> anyhow::Result<()> {
    use rand::RngCore;
    anyhow::ensure!(
        config.is_admin(email),
        "{email} is not an instance administrator: add it to ISSUEBRIDGE_ADMINS (comma-separated emails) first"
    );
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let token = hex::encode(secret);
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let expires_at = issuebridge::domain::time::now_ms() + crate::auth::LOGIN_LINK_LIFETIME_MS;
    let email = email.trim().to_lowercase();
    store.add_login_link(&crate::auth::login_link_hash(&token), &email, expires_at).await?;
    store
        .record_audit(&NewAuditEvent::new(COMMAND_LINE, AuditAction::LoginLinkCreated, format!("for {email}")))
        .await?;
    store.close().await;
    let base = config.public_url.clone().unwrap_or_else(|| config.public_url_or(config.site_addr));
    println!("{}", base.join(&format!("/auth/link/{token}"))?);
    eprintln!("Open it within ten minutes; it works once, for {email}.");
    Ok(())
}

async fn register_hook(config: Config, installation: &str, project: &str, events: &[String]) -> anyhow::Result<()> {
    let installation = issuebridge::domain::ids::InstallationUuid::parse(installation)?;
    let state = crate::startup::prepare_state(config).await?;
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    let id = issuebridge::installations::service_hooks::register(&state, &installation, project, &events).await?;
    println!("registered service hook {id} on {project}: Sentry now sends its events to /sentry/service-hook");
    state.store.close().await;
    Ok(())
}

async fn reseal(config: Config) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let cipher = issuebridge::crypto::TokenCipher::new(&config.secret_key, &config.previous_secret_keys);
    let report = issuebridge::installations::keys::reseal_everything(&store, &cipher).await?;
    store.close().await;
    println!("re-sealed {} value(s) with the current key; {} already were", report.resealed, report.current);
    if report.unreadable.is_empty() {
        if !config.previous_secret_keys.is_empty() {
            println!("nothing needs ISSUEBRIDGE_SECRET_KEY_PREVIOUS any more: remove it (console sessions older than the rotation will log in again)");
        }
    } else {
        println!(
            "{} value(s) open with no configured key and were left as they are (configure the key that sealed them and run this again, or install again):",
            report.unreadable.len()
        );
        for value in &report.unreadable {
            println!("  {value}");
        }
    }
    Ok(())
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let applied = store.applied_migrations().await?;
    println!(
        "{} database at {} is migrated: {} migration(s) applied, latest version {}",
        store.backend().name(),
        config.database_url,
        applied.len(),
        applied.last().copied().unwrap_or_default()
    );
    store.close().await;
    Ok(())
}

/// `issuebridge sim`: needs no configuration, so it runs before any is read.
fn run_simulator(args: SimArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("issuebridge: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome: anyhow::Result<()> = runtime.block_on(async {
        let mut app = crate::sim::SimApp::default();
        if let Some(id) = args.client_id {
            app.client_id = id;
        }
        if let Some(secret) = args.client_secret {
            app.client_secret = secret;
        }
        let sim = crate::sim::Simulator::start_on(args.listen, app).await?;
        let pending = sim.create_installation(&args.org);
        let setup = sim.setup_redirect(&args.app_url.join("/sentry/setup")?, &pending);
        println!("simulated Sentry at {}", sim.base_url());
        println!(
            "point issuebridge at it with: SENTRY_URL={} SENTRY_CLIENT_ID={} SENTRY_CLIENT_SECRET={} SENTRY_OAUTH_CLIENT_ID={} SENTRY_OAUTH_CLIENT_SECRET={}",
            sim.base_url(),
            sim.app().client_id,
            sim.app().client_secret,
            sim.oauth_app().client_id,
            sim.oauth_app().client_secret
        );
        println!("install into {}: open {setup}", args.org);
        shutdown_signal().await;
        Ok(())
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("issuebridge sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}
