//! Working on tickets: editing, comments, unlinking, and the Outbox view.
//!
//! Every function finds the ticket within the person's organizations (a
//! ticket of another answers as one that does not exist), makes its change
//! through one store call (the change, its history and its outbox rows in
//! one transaction), wakes the outbox sender and tells open consoles.

use issuebridge::domain::outbox::{OutboxItem, OutboxState, TicketEdit};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::ssr;

/// The Outbox view: rows and how many are in each state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxListing {
    pub items: Vec<OutboxItem>,
    pub counts: Vec<(OutboxState, i64)>,
    /// The id to ask for the next (older) page with, if there is one.
    pub older: Option<i64>,
}

#[cfg(feature = "ssr")]
mod inner {
    use issuebridge::domain::outbox::LiveChange;
    use issuebridge::store::ticket_edit::{EditError, TicketRef};
    use leptos::prelude::*;

    use super::ssr;

    /// The ticket, if the person's organizations hold it.
    pub async fn ticket(
        installation: &str,
        key: &str,
    ) -> Result<(issuebridge::AppState, TicketRef, String), ServerFnError> {
        let state = ssr::state()?;
        let viewer = ssr::viewer()?;
        let Ok(key) = key.parse() else { return Err(ssr::not_found("ticket")) };
        let found = state
            .store
            .ticket_ref(&viewer.read_scope(), installation, &key)
            .await
            .map_err(|e| ssr::store_failed("find the ticket", e))?;
        let ticket = found.ok_or_else(|| ssr::not_found("ticket"))?;
        Ok((state, ticket, viewer.email))
    }

    pub fn refused(error: EditError) -> ServerFnError {
        match error {
            EditError::Invalid(message) => ssr::refuse(http::StatusCode::BAD_REQUEST, message),
            EditError::NotFound(what) => ssr::not_found(what),
            EditError::Store(e) => ssr::store_failed("change the ticket", e),
        }
    }

    /// Wakes the sender and tells open consoles.
    pub async fn changed(state: &issuebridge::AppState, ticket: &TicketRef, key: String) {
        state.outbox_ready.notify_one();
        let change = LiveChange { installation_uuid: ticket.installation_uuid.clone(), tickets: vec![key] };
        state.live.publish(change).await;
    }
}

/// Changes a ticket's title, description, status, assignee or team; Sentry
/// hears of what it should. Returns the ticket's identifier after the
/// change (a new team gives a new one).
#[server(input = leptos::server_fn::codec::Json)]
pub async fn update_ticket(installation: String, key: String, edit: TicketEdit) -> Result<String, ServerFnError> {
    let edit = edit.checked().map_err(|message| ssr::refuse(http::StatusCode::BAD_REQUEST, message))?;
    let (state, ticket, actor) = inner::ticket(&installation, &key).await?;
    let edited = state.store.edit_ticket(&ticket, &edit, &actor).await.map_err(inner::refused)?;
    let key = edited.key.to_string();
    if !edited.changes.is_empty() {
        inner::changed(&state, &ticket, key.clone()).await;
    }
    Ok(key)
}

/// A comment written here, posted to the ticket's first linked Sentry issue.
#[server(input = leptos::server_fn::codec::Json)]
pub async fn add_comment(installation: String, key: String, text: String) -> Result<(), ServerFnError> {
    let text = issuebridge::domain::outbox::comment_text(&text)
        .map_err(|message| ssr::refuse(http::StatusCode::BAD_REQUEST, message))?;
    let (state, ticket, actor) = inner::ticket(&installation, &key).await?;
    state.store.add_ticket_comment(ticket.id, &actor, &text).await.map_err(inner::refused)?;
    inner::changed(&state, &ticket, key).await;
    Ok(())
}

/// Edits (`text`) or deletes (no `text`) one's own comment; administrators
/// may change anyone's.
#[server(input = leptos::server_fn::codec::Json)]
pub async fn change_comment(
    installation: String,
    key: String,
    comment: i64,
    text: Option<String>,
) -> Result<(), ServerFnError> {
    let text = text
        .map(|t| issuebridge::domain::outbox::comment_text(&t))
        .transpose()
        .map_err(|message| ssr::refuse(http::StatusCode::BAD_REQUEST, message))?;
    let admin = ssr::viewer()?.admin;
    let (state, ticket, actor) = inner::ticket(&installation, &key).await?;
    state
        .store
        .change_ticket_comment(&ticket, comment, &actor, admin, text.as_deref())
        .await
        .map_err(inner::refused)?;
    inner::changed(&state, &ticket, key).await;
    Ok(())
}

/// Unlinks a Sentry issue from the ticket.
#[server(input = leptos::server_fn::codec::Json)]
pub async fn unlink_issue(installation: String, key: String, issue: String) -> Result<(), ServerFnError> {
    let (state, ticket, actor) = inner::ticket(&installation, &key).await?;
    state.store.unlink_ticket_issue(&ticket, &issue, &actor).await.map_err(inner::refused)?;
    inner::changed(&state, &ticket, key).await;
    Ok(())
}

/// Rows of the outbox in the person's organizations, newest first.
pub const OUTBOX_PAGE: i64 = 100;

#[server(input = leptos::server_fn::codec::Json)]
pub async fn load_outbox(
    state_filter: Option<OutboxState>,
    before: Option<i64>,
) -> Result<OutboxListing, ServerFnError> {
    use issuebridge::store::outbox::OutboxQuery;
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let scope = viewer.read_scope();
    let query = OutboxQuery { state: state_filter, ticket: None, before, limit: OUTBOX_PAGE + 1 };
    let rows = state.store.outbox_items(&scope, &query).await.map_err(|e| ssr::store_failed("load the outbox", e))?;
    let (items, older) = ssr::page_of(rows, OUTBOX_PAGE, |row| row.id);
    let counts = state.store.outbox_counts(&scope).await.map_err(|e| ssr::store_failed("count the outbox", e))?;
    Ok(OutboxListing { items, counts, older })
}

/// Sends a failed or skipped row again.
#[server]
pub async fn retry_outbox(id: i64) -> Result<(), ServerFnError> {
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    let retried = state
        .store
        .retry_outbox(&viewer.read_scope(), id)
        .await
        .map_err(|e| ssr::store_failed("retry the change", e))?;
    if !retried {
        return Err(ssr::not_found("failed change"));
    }
    state.outbox_ready.notify_one();
    Ok(())
}
