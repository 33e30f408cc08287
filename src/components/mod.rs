//! Sentry's UI components (docs/sentry-protocol.md §3): the rules an app's
//! `schema` must follow. Wasm-safe, so the console can check a schema too.
//! The issue-link, select, alert-rule-action and stacktrace-link endpoints
//! that issuebridge's own schema will name are not built yet.

pub mod schema;
