//! An installation's access token, refreshed before it runs out.
//!
//! Refresh is single-flight: a per-installation lock inside the process and,
//! on PostgreSQL, a row lock across instances, so a crowd of requests that
//! all find the token stale causes one refresh. Sentry's refresh tokens work
//! once, so the new pair is stored before anyone uses it. When the refresh
//! token is gone, one manual refresh (a JWT signed with the client secret) is
//! tried; if that fails too, the installation is marked as needing a person
//! to re-authorize it.

use crate::config::Secret;
use crate::crypto::CryptoError;
use crate::domain::ids::InstallationUuid;
use crate::domain::time::now_ms;
use crate::installations::install::{seal, token_context};
use crate::sentry::api::{SentryClient, SentryError, TokenGrant};
use crate::store::{InstallationRecord, StoreError, TokenWrite};
use crate::AppState;

/// Refresh this long before the token's expiry, so a request never starts
/// with a token that dies on the way.
pub const REFRESH_MARGIN_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("issuebridge has no Sentry App credentials configured")]
    NotConfigured,
    #[error("the installation is not installed here")]
    NotInstalled,
    #[error("the installation's authorization was lost; it must be re-authorized in Sentry")]
    NeedsReauth,
    #[error("Sentry could not be reached to refresh the token: {0}")]
    SentryUnavailable(String),
    #[error("a stored token could not be decrypted: {0}")]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A token valid for at least [`REFRESH_MARGIN_MS`], refreshing if needed.
pub async fn access_token(state: &AppState, installation: &InstallationUuid) -> Result<Secret, TokenError> {
    obtain(state, installation, None).await
}

/// Sentry answered 401 to `rejected`: refresh, unless someone already has
/// (then the newer token is returned without another refresh).
pub async fn access_token_after_rejection(
    state: &AppState,
    installation: &InstallationUuid,
    rejected: &Secret,
) -> Result<Secret, TokenError> {
    obtain(state, installation, Some(rejected)).await
}

async fn obtain(
    state: &AppState,
    installation: &InstallationUuid,
    rejected: Option<&Secret>,
) -> Result<Secret, TokenError> {
    let client = state.sentry.as_deref().ok_or(TokenError::NotConfigured)?;
    let _one_at_a_time = state.locks.lock(installation.as_str()).await;
    let mut locked = state.store.installation_for_update(installation).await?;
    let (outcome, write) = decide(state, client, installation, locked.record.take(), rejected).await;
    // Stored before it is returned: a refresh token works once, so a new
    // pair that never reached the store would be lost for good.
    locked.finish(&write).await?;
    outcome
}

async fn decide(
    state: &AppState,
    client: &SentryClient,
    installation: &InstallationUuid,
    record: Option<InstallationRecord>,
    rejected: Option<&Secret>,
) -> (Result<Secret, TokenError>, TokenWrite) {
    let Some(record) = record else { return (Err(TokenError::NotInstalled), TokenWrite::Keep) };
    if record.status == crate::domain::installation::InstallationStatus::NeedsReauth {
        return (Err(TokenError::NeedsReauth), TokenWrite::Keep);
    }
    let internal = record.is_internal();
    let Some(sealed_access) = record.access_token else {
        return (Err(TokenError::NotInstalled), TokenWrite::Keep);
    };
    let open = |sealed: &[u8], field: &str| -> Result<Secret, TokenError> {
        let bytes = state.cipher.open(sealed, &token_context(installation, field))?;
        Ok(Secret::new(String::from_utf8_lossy(&bytes).into_owned()))
    };
    let current = match open(&sealed_access, "access_token") {
        Ok(token) => token,
        Err(e) => return (Err(e), TokenWrite::Keep),
    };
    let fresh = record.token_expires_at.is_some_and(|expires| expires - now_ms() > REFRESH_MARGIN_MS);
    let superseded = rejected.is_some_and(|rejected| !same_secret(rejected, &current));
    if superseded || ((fresh || internal) && rejected.is_none()) {
        return (Ok(current), TokenWrite::Keep);
    }
    let Some(sealed_refresh) = record.refresh_token else {
        // An internal integration's token cannot be refreshed: Sentry
        // refusing it means it was revoked, and a person must configure a
        // new one.
        tracing::error!(%installation, "the internal integration's token was refused");
        return (Err(TokenError::NeedsReauth), TokenWrite::NeedsReauth);
    };

    let refresh_token = match open(&sealed_refresh, "refresh_token") {
        Ok(token) => token,
        Err(e) => return (Err(e), TokenWrite::Keep),
    };
    let grant = match client.refresh(installation, &refresh_token).await {
        Ok(grant) => grant,
        Err(SentryError::Refused { status, detail }) => {
            tracing::warn!(%installation, status, %detail, "refresh token refused; trying a manual refresh");
            match client.manual_refresh(installation).await {
                Ok(grant) => grant,
                Err(SentryError::Unavailable(why)) => {
                    return (Err(TokenError::SentryUnavailable(why)), TokenWrite::Keep)
                }
                Err(error) => {
                    tracing::error!(%installation, %error, "manual refresh failed; the installation needs re-authorization");
                    return (Err(TokenError::NeedsReauth), TokenWrite::NeedsReauth);
                }
            }
        }
        Err(SentryError::Unavailable(why)) => return (Err(TokenError::SentryUnavailable(why)), TokenWrite::Keep),
        Err(SentryError::BadResponse(why)) => return (Err(TokenError::SentryUnavailable(why)), TokenWrite::Keep),
    };
    replace(state, installation, grant)
}

fn replace(
    state: &AppState,
    installation: &InstallationUuid,
    grant: TokenGrant,
) -> (Result<Secret, TokenError>, TokenWrite) {
    tracing::info!(%installation, "token refreshed");
    let sealed = seal(&state.cipher, installation, &grant);
    (Ok(grant.token), TokenWrite::Replace(sealed))
}

/// Compares two tokens without an early exit on the first difference.
fn same_secret(a: &Secret, b: &Secret) -> bool {
    let (a, b) = (a.expose().as_bytes(), b.expose().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Runs `call` with the installation's token; on a 401 it refreshes once
/// (single-flight) and tries again.
pub async fn with_token<T, F, Fut>(
    state: &AppState,
    installation: &InstallationUuid,
    call: F,
) -> Result<T, ApiCallError>
where
    F: Fn(Secret) -> Fut,
    Fut: std::future::Future<Output = Result<T, SentryError>>,
{
    let token = access_token(state, installation).await?;
    match call(token.clone()).await {
        Err(SentryError::Refused { status: 401, .. }) => {
            let renewed = access_token_after_rejection(state, installation, &token).await?;
            Ok(call(renewed).await?)
        }
        other => Ok(other?),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiCallError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Sentry(#[from] SentryError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_content() {
        assert!(same_secret(&Secret::new("abc"), &Secret::new("abc")));
        assert!(!same_secret(&Secret::new("abc"), &Secret::new("abd")));
        assert!(!same_secret(&Secret::new("abc"), &Secret::new("abcd")));
    }
}
