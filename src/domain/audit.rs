//! The audit log's vocabulary, shared by the store and the Activity page.

use serde::{Deserialize, Serialize};

use super::names::named_enum;

/// The actor of changes made with the `issuebridge` command.
pub const COMMAND_LINE: &str = "command line";
/// The actor of changes Sentry made (an uninstall in its settings).
pub const SENTRY: &str = "Sentry";

named_enum! {
    /// What was done.
    pub enum AuditAction ("audit action") {
        Login = "login",
        LoginFailed = "login_failed",
        Logout = "logout",
        LoginLinkCreated = "login_link_created",
        SettingsChanged = "settings_changed",
        Replay = "replay",
        Install = "install",
        Uninstall = "uninstall",
        TeamChanged = "team_changed",
        CodeMappingChanged = "code_mapping_changed",
    }
}

impl AuditAction {
    /// How a person reads it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Login => "logged in",
            Self::LoginFailed => "failed to log in",
            Self::Logout => "logged out",
            Self::LoginLinkCreated => "created a login link",
            Self::SettingsChanged => "changed settings",
            Self::Replay => "replayed deliveries",
            Self::Install => "installed",
            Self::Uninstall => "uninstalled",
            Self::TeamChanged => "changed a team",
            Self::CodeMappingChanged => "changed a code mapping",
        }
    }
}

/// One row of the audit log, as the Activity page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: AuditAction,
    pub org_slug: Option<String>,
    pub installation: Option<String>,
    pub detail: String,
}

/// The Activity page's filters; each is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub action: Option<AuditAction>,
    /// Exact email (or `command line`, `Sentry`).
    pub actor: Option<String>,
    pub org: Option<String>,
}

impl AuditFilter {
    /// Reads the filter from a page's query parameters; unknown values are
    /// dropped rather than refused (a stale link still opens).
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Self {
        let text = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        Self { action: text("action").and_then(|a| a.parse().ok()), actor: text("actor"), org: text("org") }
    }
}

/// A page of the audit log, newest first, and the id to continue below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    pub older: Option<i64>,
}
