//! What issuebridge tells Sentry: the two-way sync (docs/sync.md).
//!
//! Console changes write outbox rows in their own transaction
//! ([`crate::store::ticket_edit`]); the worker writes one for each ticket it
//! opens by itself (the external-issue link). [`sender`] drains them in
//! order per Sentry issue through the API client; [`members`] finds the
//! Sentry user behind an assignee's email.

pub mod members;
pub mod sender;
