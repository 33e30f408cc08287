//! What the console shows besides tickets, shared by server and browser.

use serde::{Deserialize, Serialize};

/// One installation as the Installations page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationSummary {
    pub uuid: String,
    pub org_slug: String,
    pub app_slug: Option<String>,
    pub status: String,
    pub created_at_ms: i64,
    pub tickets: i64,
}

/// The configuration as the Settings page shows it: never a secret, only
/// whether one is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleInfo {
    pub version: String,
    pub demo_mode: bool,
    pub database: String,
    pub public_url: String,
    pub sentry_url: String,
    pub app_client_id: Option<String>,
    pub previous_secret_set: bool,
    pub login_configured: bool,
    pub deliveries: i64,
}

/// One row of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverySummary {
    pub id: i64,
    pub received_at_ms: i64,
    pub resource: String,
    pub action: Option<String>,
    pub installation: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub duplicates: i64,
    pub last_error: Option<String>,
}

/// One page of the delivery log; `older` continues below it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliverySummary>,
    pub older: Option<i64>,
}
