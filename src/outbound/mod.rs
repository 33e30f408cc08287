//! What issuebridge sends back to Sentry. Today: comments written here,
//! posted to the ticket's Sentry issue. The two-way sync (status, assignee,
//! the external-issue link, through an outbox) belongs here too.

pub mod comments;
