//! Sentry's UI components (docs/sentry-protocol.md §3): the rules an app's
//! `schema` must follow, issuebridge's own schema, what Sentry sends to its
//! endpoints, alert-rule settings and stacktrace links by code mappings.
//! Wasm-safe, so the console draws and checks its forms with the very
//! definitions Sentry is given.

pub mod alert_action;
pub mod definition;
#[cfg(feature = "server")]
pub mod dispatch;
pub mod log;
pub mod requests;
pub mod schema;
pub mod stacktrace;
