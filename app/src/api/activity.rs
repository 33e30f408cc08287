//! The Activity page's server function: the audit log as the person may
//! read it.

use issuebridge::domain::audit::{AuditFilter, AuditPage};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::ssr;

/// Rows shown per page of the audit log.
pub const ACTIVITY_PAGE: i64 = 50;

/// A page of the audit log, newest first: the person's organizations' rows
/// and their own logins; everything for an instance administrator.
#[server(input = leptos::server_fn::codec::Json)]
pub async fn list_activity(filter: AuditFilter, before: Option<i64>) -> Result<AuditPage, ServerFnError> {
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let reader = issuebridge::store::AuditReader { scope: viewer.read_scope(), email: viewer.email.clone() };
    let events = state
        .store
        .audit_events(&reader, &filter, before, ACTIVITY_PAGE + 1)
        .await
        .map_err(|e| ssr::store_failed("load the activity", e))?;
    let (events, older) = ssr::page_of(events, ACTIVITY_PAGE, |e| e.id);
    Ok(AuditPage { events, older })
}
