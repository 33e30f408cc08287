//! Each organization's Sentry members by email, to send a ticket's assignee
//! as Sentry's `assignedTo: "user:<id>"`.
//!
//! Cached per installation for [`FRESH_FOR`]: an assignee change costs one
//! listing of members the first time, not every time. An email not found in
//! a listing older than [`RECHECK_AFTER`] asks Sentry again, so someone who
//! just joined is found.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::ids::{InstallationUuid, OrgSlug};
use crate::installations::tokens::{with_token, ApiCallError};
use crate::AppState;

const FRESH_FOR: Duration = Duration::from_secs(5 * 60);
const RECHECK_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct MemberCache {
    by_installation: Mutex<HashMap<String, Listing>>,
}

#[derive(Debug, Clone)]
struct Listing {
    fetched: Instant,
    /// Lower-case email → Sentry user id.
    users: HashMap<String, String>,
}

impl MemberCache {
    /// The Sentry user id of the member with this email, if there is one.
    pub async fn user_id(
        &self,
        state: &AppState,
        installation: &InstallationUuid,
        org: &OrgSlug,
        email: &str,
    ) -> Result<Option<String>, ApiCallError> {
        let email = email.trim().to_lowercase();
        let cached = self.lock().get(installation.as_str()).cloned();
        if let Some(listing) = &cached {
            let age = listing.fetched.elapsed();
            if let Some(id) = listing.users.get(&email).filter(|_| age < FRESH_FOR) {
                return Ok(Some(id.clone()));
            }
            if age < RECHECK_AFTER {
                return Ok(None);
            }
        }
        let client = state.sentry.as_deref().ok_or(crate::installations::tokens::TokenError::NotConfigured)?;
        let members =
            with_token(state, installation, |token| async move { client.list_members(&token, org).await }).await?;
        let users: HashMap<String, String> = members
            .into_iter()
            .filter_map(|member| {
                let user = member.user?;
                let email = user.email.or(member.email)?;
                Some((email.trim().to_lowercase(), user.id))
            })
            .collect();
        let found = users.get(&email).cloned();
        self.lock().insert(installation.as_str().to_owned(), Listing { fetched: Instant::now(), users });
        Ok(found)
    }

    /// Forgets an installation's members (its organization changed).
    pub fn forget(&self, installation: &InstallationUuid) {
        self.lock().remove(installation.as_str());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Listing>> {
        self.by_installation.lock().unwrap_or_else(|p| p.into_inner())
    }
}
