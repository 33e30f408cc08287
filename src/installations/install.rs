//! Completing an installation: exchange the grant code, verify, store.
//!
//! Two paths lead here with the same code: the browser's redirect to
//! `/sentry/setup`, and the `installation.created` webhook. Whichever comes
//! second finds the code spent; it then finds the installation stored and
//! reports success instead of an error. Nothing is stored until Sentry has
//! both handed out the tokens and accepted the verification, so a failure
//! never leaves half an installation behind.

use crate::crypto::TokenCipher;
use crate::domain::ids::{InstallationUuid, InvalidId, OrgSlug};
use crate::domain::installation::InstallationStatus;
use crate::sentry::api::{SentryError, TokenGrant};
use crate::store::{NewInstallation, SealedTokens, StoreError};
use crate::AppState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallOutcome {
    Installed {
        org_slug: String,
    },
    /// The other path got there first.
    AlreadyInstalled {
        org_slug: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("issuebridge has no Sentry App credentials configured")]
    NotConfigured,
    #[error("Sentry did not accept the installation code: {0}")]
    CodeRejected(String),
    #[error("Sentry refused issuebridge's client id and secret (SENTRY_CLIENT_ID, SENTRY_CLIENT_SECRET): {0}")]
    BadCredentials(String),
    #[error("Sentry does not know this installation")]
    UnknownInstallation,
    #[error("Sentry could not be reached; try installing again in a moment ({0})")]
    SentryUnavailable(String),
    #[error("Sentry did not accept the verification of the installation: {0}")]
    VerifyFailed(String),
    #[error("Sentry's answer could not be understood: {0}")]
    BadAnswer(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn complete_install(
    state: &AppState,
    installation: &InstallationUuid,
    code: &str,
) -> Result<InstallOutcome, InstallError> {
    let client = state.sentry.as_ref().ok_or(InstallError::NotConfigured)?;
    let _guard = state.locks.lock(installation.as_str()).await;

    if let Some(existing) = state.store.installation(installation).await? {
        if existing.is_installed_with_tokens() {
            return Ok(InstallOutcome::AlreadyInstalled { org_slug: existing.org_slug });
        }
    }

    let grant = match client.exchange_grant(installation, code).await {
        Ok(grant) => grant,
        Err(SentryError::Refused { status: 404, .. }) => return Err(InstallError::UnknownInstallation),
        Err(SentryError::Refused { detail, .. }) if detail.contains("Client ID / Secret") => {
            return Err(InstallError::BadCredentials(detail))
        }
        Err(SentryError::Refused { detail, .. }) => {
            // Another instance may have spent the code a moment ago.
            if let Some(existing) = state.store.installation(installation).await? {
                if existing.is_installed_with_tokens() {
                    return Ok(InstallOutcome::AlreadyInstalled { org_slug: existing.org_slug });
                }
            }
            return Err(InstallError::CodeRejected(non_empty(detail)));
        }
        Err(SentryError::Unavailable(why)) => return Err(InstallError::SentryUnavailable(why)),
        Err(SentryError::BadResponse(why)) => return Err(InstallError::BadAnswer(why)),
    };

    let details = client.verify_installation(installation, &grant.token).await.map_err(|e| match e {
        SentryError::Unavailable(why) => InstallError::SentryUnavailable(why),
        other => InstallError::VerifyFailed(other.to_string()),
    })?;
    // The redirect's orgSlug is unauthenticated; Sentry's answer is not.
    let org_slug =
        OrgSlug::parse(&details.organization.slug).map_err(|e: InvalidId| InstallError::BadAnswer(e.to_string()))?;
    let org_id = details.organization.id.as_ref().and_then(|id| id.as_i64().or_else(|| id.as_str()?.parse().ok()));

    let record = NewInstallation {
        uuid: installation.clone(),
        org_slug: org_slug.clone(),
        org_id,
        app_slug: Some(details.app.slug),
        status: InstallationStatus::Installed,
    };
    state.store.install_with_tokens(&record, &seal(&state.cipher, installation, &grant)).await?;
    tracing::info!(installation = %installation, org = %org_slug, "installed");
    Ok(InstallOutcome::Installed { org_slug: org_slug.to_string() })
}

/// The parts of an `installation.created` / `installation.deleted` webhook
/// that installing needs; everything else in the payload is ignored.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct InstallationWebhook {
    pub action: String,
    pub data: InstallationWebhookData,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct InstallationWebhookData {
    pub installation: InstallationWebhookInstallation,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct InstallationWebhookInstallation {
    pub uuid: InstallationUuid,
    /// Present while the grant has not been exchanged yet.
    #[serde(default)]
    pub code: Option<String>,
}

/// `installation.created`: the install path for apps without a Redirect
/// URL, and the second path for those with one. Whichever of the two comes
/// second finds the installation done.
pub async fn installation_created(
    state: &AppState,
    event: &InstallationWebhook,
) -> Result<InstallOutcome, InstallError> {
    let installation = &event.data.installation;
    match installation.code.as_deref() {
        Some(code) => complete_install(state, &installation.uuid, code).await,
        None => match state.store.installation(&installation.uuid).await? {
            Some(existing) if existing.is_installed_with_tokens() => {
                Ok(InstallOutcome::AlreadyInstalled { org_slug: existing.org_slug })
            }
            _ => Err(InstallError::CodeRejected("the webhook carries no grant code".to_owned())),
        },
    }
}

/// Where each sealed token belongs: the context binds it to its row.
pub fn token_context(installation: &InstallationUuid, field: &str) -> String {
    format!("installation/{installation}/{field}")
}

pub fn seal(cipher: &TokenCipher, installation: &InstallationUuid, grant: &TokenGrant) -> SealedTokens {
    SealedTokens {
        access_token: cipher.seal(grant.token.expose().as_bytes(), &token_context(installation, "access_token")),
        refresh_token: cipher
            .seal(grant.refresh_token.expose().as_bytes(), &token_context(installation, "refresh_token")),
        expires_at_ms: grant.expires_at_ms,
    }
}

/// Sentry sometimes sends an empty `detail` (docs/sentry-protocol.md §2.2).
fn non_empty(detail: String) -> String {
    if detail.trim().is_empty() {
        "no reason given".to_owned()
    } else {
        detail
    }
}

/// Internal integration mode: records the configured installation and its
/// token at start-up (again on every start, so a new token in the
/// environment takes over).
pub async fn register_internal(state: &AppState) -> Result<(), StoreError> {
    let Some(internal) = state.config.internal.as_ref() else { return Ok(()) };
    let sealed =
        state.cipher.seal(internal.token.expose().as_bytes(), &token_context(&internal.installation, "access_token"));
    let record = NewInstallation {
        uuid: internal.installation.clone(),
        org_slug: internal.org_slug.clone(),
        org_id: None,
        app_slug: Some("internal-integration".to_owned()),
        status: InstallationStatus::Installed,
    };
    state.store.install_internal(&record, &sealed).await?;
    tracing::info!(installation = %internal.installation, org = %internal.org_slug, "internal integration registered");
    Ok(())
}
