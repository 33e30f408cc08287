//! Comments written in issuebridge, posted to the ticket's Sentry issue.
//!
//! The comment is stored first, without a Sentry id, then posted. Sentry
//! answers with the comment's id and also sends it back as a
//! `comment.created` webhook, in either order. Whichever comes second finds
//! the comment already there (by id, or by its text while the id is not
//! known yet) and adds nothing: the echo is recognised, never duplicated.

use crate::domain::ids::{InstallationUuid, OrgSlug, SentryIssueId, TicketId};
use crate::installations::tokens::{with_token, ApiCallError};
use crate::store::StoreError;
use crate::AppState;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    /// Posted to Sentry, which gave it this id.
    ToSentry { comment: i64, sentry_id: String },
    /// The ticket has no Sentry issue: kept here only.
    LocalOnly { comment: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum CommentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored here; Sentry did not take it.
    #[error("the comment was kept but Sentry did not take it: {0}")]
    Sentry(#[from] ApiCallError),
    #[error("the ticket's link names an invalid {0}")]
    BadLink(String),
    #[error("no Sentry is configured to post to")]
    NotConfigured,
}

pub async fn post_comment(
    state: &AppState,
    ticket: TicketId,
    author: &str,
    body: &str,
) -> Result<Posted, CommentError> {
    let comment = state.store.add_console_comment(ticket, author, body).await?;
    let Some(link) = state.store.first_link(ticket).await? else {
        return Ok(Posted::LocalOnly { comment });
    };
    let installation =
        InstallationUuid::parse(&link.installation_uuid).map_err(|_| CommentError::BadLink("installation".into()))?;
    let org = OrgSlug::parse(&link.org_slug).map_err(|_| CommentError::BadLink("organization".into()))?;
    let issue = SentryIssueId::parse(&link.sentry_issue_id).map_err(|_| CommentError::BadLink("issue".into()))?;
    let client = state.sentry.as_deref().ok_or(CommentError::NotConfigured)?;
    let posted = with_token(state, &installation, |token| {
        let (org, issue) = (&org, &issue);
        async move { client.add_comment(&token, org, issue, body).await }
    })
    .await?;
    state.store.set_comment_sentry_id(comment, &posted.id).await?;
    Ok(Posted::ToSentry { comment, sentry_id: posted.id })
}
