//! The outbox sender: claims each Sentry issue's oldest pending row, decides
//! what it means now, and sends it through the API client.
//!
//! Deciding at send time is what keeps the two sides converging: a status
//! or assignee row whose field changed again since (here, or in Sentry
//! through a webhook) is superseded instead of sent, so an old change never
//! overwrites a newer one; a comment sends its current text. Sentry being
//! unreachable (connection errors, timeouts, 5xx, a 429 the client's own
//! retries could not wait out) keeps the row pending with a growing delay,
//! and its issue's later rows wait behind it, so order is kept. A refusal
//! for good (another 4xx, an uninstalled installation) fails the row, says
//! so on the ticket, and lets the issue's later rows go.

use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use serde_json::json;

use crate::domain::ids::{InstallationUuid, OrgSlug, SentryIssueId};
use crate::domain::installation::InstallationStatus;
use crate::domain::outbox::{LiveChange, OutboxKind};
use crate::domain::ticket::ticket_page;
use crate::installations::tokens::{with_token, ApiCallError, TokenError};
use crate::sentry::api::{ExternalIssueLink, SentryClient, SentryError};
use crate::store::outbox::{FinishedRow, OutboxOutcome, OutboxRow};
use crate::store::{InstallationRecord, StoreError};
use crate::AppState;

/// How the sender paces itself.
#[derive(Debug, Clone, Copy)]
pub struct OutboxPolicy {
    /// The first wait after Sentry could not be reached; doubled each time.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// How long a claim lasts; longer than the client's own retries of one
    /// call can take, so a slow send is never sent twice.
    pub lease: Duration,
    /// Rows claimed at once (each of a different issue), sent side by side.
    pub batch: i64,
    /// How often an idle sender looks for rows that no wake-up announced
    /// (another instance's, or a retry coming due).
    pub idle_poll: Duration,
}

impl Default for OutboxPolicy {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(5 * 60),
            lease: Duration::from_secs(10 * 60),
            batch: 32,
            idle_poll: Duration::from_secs(1),
        }
    }
}

impl OutboxPolicy {
    /// When a row that failed `attempts` times in a row goes again.
    fn retry_at(&self, attempts: i64) -> i64 {
        use rand::Rng;
        let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(20);
        let ceiling = self.base_delay.saturating_mul(2u32.saturating_pow(exponent)).min(self.max_delay);
        let wait = ceiling.mul_f64(rand::thread_rng().gen_range(0.5..=1.0));
        crate::domain::time::now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Sends one claim's worth of rows; returns how many it claimed. The rows
/// (each of a different issue) go side by side; their outcomes are recorded
/// together, in one transaction.
pub async fn run_once(state: &AppState) -> Result<usize, StoreError> {
    let policy = state.outbox_policy;
    let lease_ms = i64::try_from(policy.lease.as_millis()).unwrap_or(i64::MAX);
    let rows = state.store.claim_outbox(policy.batch, lease_ms).await?;
    let claimed = rows.len();
    if claimed == 0 {
        return Ok(0);
    }
    // A batch is mostly about a few installations: read each once.
    let mut installations = Installations::new();
    for row in &rows {
        if !installations.contains_key(&row.installation_uuid) {
            let record = match InstallationUuid::parse(&row.installation_uuid) {
                Ok(uuid) => state.store.installation(&uuid).await?,
                Err(_) => None,
            };
            installations.insert(row.installation_uuid.clone(), record);
        }
    }
    let installations = &installations;
    let finished: Vec<FinishedRow> = stream::iter(rows)
        .map(|row| async move {
            let (outcome, issue_status) = send(state, installations, &row).await;
            match &outcome {
                OutboxOutcome::Failed { error } => {
                    tracing::warn!(row = row.id, kind = %row.kind, %error, "Sentry refused an outbox row")
                }
                OutboxOutcome::Retry { error, .. } => {
                    tracing::info!(row = row.id, kind = %row.kind, %error, "outbox row will be retried")
                }
                _ => {}
            }
            FinishedRow { row, outcome, issue_status }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    state.store.finish_outbox(&finished).await?;
    let mut changed: Vec<&str> = finished.iter().map(|f| f.row.installation_uuid.as_str()).collect();
    changed.sort_unstable();
    changed.dedup();
    for installation in changed {
        state.live.publish(LiveChange { installation_uuid: installation.to_owned(), tickets: Vec::new() }).await;
    }
    Ok(claimed)
}

/// The installations of a batch's rows, by uuid (`None`: not known here).
type Installations = std::collections::HashMap<String, Option<InstallationRecord>>;

/// Runs until `shutdown` changes, waking when a change is queued here or
/// every [`OutboxPolicy::idle_poll`].
pub async fn run(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        let idle = match run_once(&state).await {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => {
                tracing::error!(%error, "outbox sender could not reach the store");
                true
            }
        };
        if idle {
            tokio::select! {
                () = state.outbox_ready.notified() => {}
                () = tokio::time::sleep(state.outbox_policy.idle_poll) => {}
                _ = shutdown.changed() => {}
            }
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// What sending one row came to, and the issue's status if Sentry told it.
async fn send(state: &AppState, installations: &Installations, row: &OutboxRow) -> (OutboxOutcome, Option<String>) {
    let mut issue_status = None;
    match try_send(state, installations, row, &mut issue_status).await {
        Ok(outcome) => (outcome, issue_status),
        Err(failure) => (failure.into_outcome(state, row), None),
    }
}

/// Why a row was not sent.
#[derive(Debug)]
enum SendError {
    Api(ApiCallError),
    Store(StoreError),
    /// The row or what it names cannot be sent, ever.
    Broken(String),
}

impl From<ApiCallError> for SendError {
    fn from(e: ApiCallError) -> Self {
        Self::Api(e)
    }
}

impl From<StoreError> for SendError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl SendError {
    fn into_outcome(self, state: &AppState, row: &OutboxRow) -> OutboxOutcome {
        // Not before Sentry's rate limit (`Retry-After`) lets calls go again.
        let rate_limited_ms = state
            .sentry
            .as_deref()
            .and_then(SentryClient::rate_limited_for)
            .map_or(0, |wait| crate::domain::time::now_ms() + i64::try_from(wait.as_millis()).unwrap_or(0));
        let retry = |error: String| OutboxOutcome::Retry {
            at_ms: state.outbox_policy.retry_at(row.attempts).max(rate_limited_ms),
            error,
        };
        match self {
            Self::Store(e) => retry(format!("the store failed: {e}")),
            Self::Broken(error) => OutboxOutcome::Failed { error },
            Self::Api(ApiCallError::Sentry(SentryError::Unavailable(e))) => {
                retry(format!("Sentry could not be reached: {e}"))
            }
            Self::Api(ApiCallError::Sentry(SentryError::Refused { status: 404, .. })) => OutboxOutcome::Failed {
                error: "Sentry answered 404: the issue (or what the change names) no longer exists there".into(),
            },
            Self::Api(ApiCallError::Sentry(e)) => OutboxOutcome::Failed { error: e.to_string() },
            Self::Api(ApiCallError::Token(TokenError::SentryUnavailable(e))) => {
                retry(format!("Sentry could not be reached to refresh the token: {e}"))
            }
            Self::Api(ApiCallError::Token(TokenError::Store(e))) => retry(format!("the store failed: {e}")),
            Self::Api(ApiCallError::Token(e)) => OutboxOutcome::Failed { error: e.to_string() },
        }
    }
}

/// The issue, installation and client a row is sent with.
struct Target<'a> {
    client: &'a SentryClient,
    installation: InstallationUuid,
    org: OrgSlug,
    issue: SentryIssueId,
    settings: crate::domain::ticket_rules::InstallationSettings,
}

async fn try_send(
    state: &AppState,
    installations: &Installations,
    row: &OutboxRow,
    issue_status: &mut Option<String>,
) -> Result<OutboxOutcome, SendError> {
    let kind: OutboxKind = row.kind.parse().map_err(|e| SendError::Broken(format!("{e}")))?;
    let installation = InstallationUuid::parse(&row.installation_uuid)
        .map_err(|_| SendError::Broken("the row names an invalid installation".into()))?;
    let Some(record) = installations.get(&row.installation_uuid).cloned().flatten() else {
        return Err(SendError::Broken("the installation is not known here".into()));
    };
    match record.status {
        InstallationStatus::Installed => {}
        InstallationStatus::Deleted => return Err(SendError::Broken("the installation was uninstalled".into())),
        other => return Err(SendError::Broken(format!("the installation is {other}, not installed"))),
    }
    // Without a token there is nothing to send with; a person must install
    // the app again (asking the token service would only say so, slowly).
    if record.access_token.is_none() {
        return Err(SendError::Broken("the installation has no token; install the app again".into()));
    }
    let client = state.sentry.as_deref().ok_or(SendError::Api(ApiCallError::Token(TokenError::NotConfigured)))?;
    let target = Target {
        client,
        org: OrgSlug::parse(&record.org_slug).map_err(|_| SendError::Broken("invalid organization".into()))?,
        issue: SentryIssueId::parse(&row.sentry_issue_id).map_err(|_| SendError::Broken("invalid issue id".into()))?,
        settings: record.settings(),
        installation,
    };
    let Some(ticket) = state.store.sync_ticket(row.ticket_id, &row.sentry_issue_id).await? else {
        return Ok(OutboxOutcome::Superseded { why: "the ticket no longer exists".into() });
    };
    let newer = |at: Option<i64>| at.is_some_and(|at| at > row.change_at);
    let unlinked = || OutboxOutcome::Superseded { why: "the issue is no longer linked to the ticket".into() };
    match kind {
        OutboxKind::Status => {
            if newer(ticket.status_at) {
                return Ok(OutboxOutcome::Superseded { why: "a newer status change came after it".into() });
            }
            if !ticket.linked {
                return Ok(unlinked());
            }
            let status = target.settings.status_mapping.issue_status_for(ticket.status);
            let update = json!({ "status": status.as_str() });
            let answer = update_issue(state, &target, &update).await?;
            *issue_status = Some(if answer.status.is_empty() { status.as_str().to_owned() } else { answer.status });
            Ok(OutboxOutcome::Sent { sentry_ref: None })
        }
        OutboxKind::Assignee => {
            if newer(ticket.assignee_at) {
                return Ok(OutboxOutcome::Superseded { why: "a newer assignment came after it".into() });
            }
            if !ticket.linked {
                return Ok(unlinked());
            }
            let assigned_to = match &ticket.assignee {
                None => String::new(),
                Some(email) => {
                    let sentry_email = target.settings.sentry_email_for(email);
                    let found = state.members.user_id(state, &target.installation, &target.org, &sentry_email).await?;
                    match found {
                        Some(user) => format!("user:{user}"),
                        None => {
                            return Ok(OutboxOutcome::Skipped {
                                why: format!(
                                    "Sentry's assignee left as it was: no member of {} has the email {sentry_email} (map it under Settings → user mapping)",
                                    target.org
                                ),
                            })
                        }
                    }
                }
            };
            update_issue(state, &target, &json!({ "assignedTo": assigned_to })).await?;
            Ok(OutboxOutcome::Sent { sentry_ref: None })
        }
        OutboxKind::CommentCreated | OutboxKind::CommentUpdated | OutboxKind::CommentDeleted => {
            send_comment(state, &target, row, kind).await
        }
        OutboxKind::LinkExternal => {
            if !ticket.linked {
                return Ok(unlinked());
            }
            let issue_id = target
                .issue
                .as_str()
                .parse::<i64>()
                .map_err(|_| SendError::Broken("Sentry issue ids are numbers; this one is not".into()))?;
            let mut web_url = state.config.public_url.clone().ok_or_else(|| {
                SendError::Broken("ISSUEBRIDGE_PUBLIC_URL is not set, so Sentry cannot link to the ticket".into())
            })?;
            let page = ticket_page(&ticket.key, target.installation.as_str());
            let (path, query) = page.split_once('?').unwrap_or((page.as_str(), ""));
            web_url.set_path(path);
            web_url.set_query(Some(query));
            let link = ExternalIssueLink {
                issue_id,
                web_url: web_url.to_string(),
                project: ticket.key.team.to_string(),
                identifier: ticket.key.to_string(),
            };
            let (client, installation) = (target.client, &target.installation);
            let made = with_token(state, installation, |token| {
                let link = &link;
                async move { client.link_external_issue(&token, installation, link).await }
            })
            .await?;
            Ok(OutboxOutcome::Sent { sentry_ref: Some(made.id) })
        }
        OutboxKind::UnlinkExternal => {
            let found = state
                .store
                .external_link_ref(target.installation.as_str(), target.issue.as_str(), row.ticket_id)
                .await?;
            let Some(external) = found else {
                return Ok(OutboxOutcome::Skipped { why: "no link in Sentry's sidebar to remove".into() });
            };
            let (client, installation) = (target.client, &target.installation);
            let removed = with_token(state, installation, |token| {
                let external = &external;
                async move { client.unlink_external_issue(&token, installation, external).await }
            })
            .await;
            gone_is_done(removed)
        }
    }
}

async fn update_issue(
    state: &AppState,
    target: &Target<'_>,
    update: &serde_json::Value,
) -> Result<crate::sentry::api::Issue, ApiCallError> {
    let (client, org, issue) = (target.client, &target.org, &target.issue);
    with_token(
        state,
        &target.installation,
        |token| async move { client.update_issue(&token, org, issue, update).await },
    )
    .await
}

/// A delete that finds nothing to delete did what it was for.
fn gone_is_done(result: Result<(), ApiCallError>) -> Result<OutboxOutcome, SendError> {
    match result {
        Ok(()) | Err(ApiCallError::Sentry(SentryError::Refused { status: 404, .. })) => {
            Ok(OutboxOutcome::Sent { sentry_ref: None })
        }
        Err(e) => Err(e.into()),
    }
}

async fn send_comment(
    state: &AppState,
    target: &Target<'_>,
    row: &OutboxRow,
    kind: OutboxKind,
) -> Result<OutboxOutcome, SendError> {
    let id = serde_json::from_str::<serde_json::Value>(&row.payload)
        .ok()
        .and_then(|payload| payload.get("comment")?.as_i64())
        .ok_or_else(|| SendError::Broken("the row names no comment".into()))?;
    let Some(comment) = state.store.sync_comment(id).await? else {
        return Ok(OutboxOutcome::Superseded { why: "the comment no longer exists".into() });
    };
    let (client, org, issue) = (target.client, &target.org, &target.issue);
    match kind {
        OutboxKind::CommentCreated => {
            if comment.deleted_at.is_some() {
                return Ok(OutboxOutcome::Superseded { why: "deleted before Sentry heard of it".into() });
            }
            if let Some(known) = comment.sentry_comment_id {
                return Ok(OutboxOutcome::Sent { sentry_ref: Some(known) });
            }
            let body = comment.body.as_str();
            let posted = with_token(state, &target.installation, |token| async move {
                client.add_comment(&token, org, issue, body).await
            })
            .await;
            match posted {
                Ok(posted) => {
                    state.store.set_comment_sentry_id(id, &posted.id).await?;
                    Ok(OutboxOutcome::Sent { sentry_ref: Some(posted.id) })
                }
                // Sent before, and the answer was lost (a crash between the
                // two, then the lease ran out): the comment is there, and its
                // webhook gives it its id (recognised by its text).
                Err(ApiCallError::Sentry(SentryError::Refused { status: 400, detail }))
                    if detail.contains("already posted") =>
                {
                    Ok(OutboxOutcome::Sent { sentry_ref: None })
                }
                Err(e) => Err(e.into()),
            }
        }
        OutboxKind::CommentUpdated => {
            if comment.deleted_at.is_some() {
                return Ok(OutboxOutcome::Superseded { why: "the comment was deleted since".into() });
            }
            let Some(sentry_id) = comment.sentry_comment_id else {
                return Ok(OutboxOutcome::Skipped {
                    why: "the comment never reached Sentry, so its edit cannot".into(),
                });
            };
            let (body, sentry_id) = (comment.body.as_str(), sentry_id.as_str());
            with_token(state, &target.installation, |token| async move {
                client.update_comment(&token, org, issue, sentry_id, body).await
            })
            .await?;
            Ok(OutboxOutcome::Sent { sentry_ref: None })
        }
        _ => {
            let Some(sentry_id) = comment.sentry_comment_id else {
                return Ok(OutboxOutcome::Skipped {
                    why: "the comment never reached Sentry; nothing to delete".into(),
                });
            };
            let sentry_id = sentry_id.as_str();
            let removed = with_token(state, &target.installation, |token| async move {
                client.delete_comment(&token, org, issue, sentry_id).await
            })
            .await;
            gone_is_done(removed)
        }
    }
}
