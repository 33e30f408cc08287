//! Retiring an encryption key: every value sealed with a previous key
//! (installation tokens, service-hook secrets) is opened and sealed again
//! with the current one, so `ISSUEBRIDGE_SECRET_KEY_PREVIOUS` can be
//! emptied. Console sessions are not re-sealed: they end within a week, and
//! one whose tokens no longer open asks the person to log in again.

use crate::crypto::TokenCipher;
use crate::domain::ids::InstallationUuid;
use crate::store::{SealedValue, Store, StoreError};

/// What a re-seal did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResealReport {
    /// Sealed with a previous key, now sealed with the current one.
    pub resealed: usize,
    /// Sealed with the current key already.
    pub current: usize,
    /// Sealed with no configured key (or damaged): left as they are, named
    /// here so the operator can decide (re-install, or find the old key).
    pub unreadable: Vec<String>,
}

/// Re-seals every value a previous key sealed. Safe to run while servers
/// run: each value is replaced only if it is still the one read (a token
/// refreshed meanwhile is sealed with the current key anyway).
pub async fn reseal_everything(store: &Store, cipher: &TokenCipher) -> Result<ResealReport, StoreError> {
    let mut report = ResealReport::default();
    for value in store.sealed_values().await? {
        let context = context_of(&value);
        match cipher.open(value.sealed(), &context) {
            Err(_) => report.unreadable.push(value.describe()),
            Ok(_) if !cipher.needs_reseal(value.sealed()) => report.current += 1,
            Ok(plain) => {
                let resealed = cipher.seal(&plain, &context);
                if store.replace_sealed_value(&value, &resealed).await? {
                    report.resealed += 1;
                }
            }
        }
    }
    Ok(report)
}

fn context_of(value: &SealedValue) -> String {
    match value {
        SealedValue::InstallationToken { installation, column, .. } => match InstallationUuid::parse(installation) {
            Ok(uuid) => super::install::token_context(&uuid, column),
            Err(_) => format!("installation/{installation}/{column}"),
        },
        SealedValue::ServiceHookSecret { hook, .. } => super::service_hooks::secret_context(hook),
    }
}
