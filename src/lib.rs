//! issuebridge's core: the types every part of the system agrees on, and
//! the services the server runs.
//!
//! The folders are the layers (docs/architecture.md draws them):
//! - [`domain`]: wasm-safe types and pure rules, shared with the console in
//!   the browser;
//! - [`components`]: Sentry's UI-component schema rules (wasm-safe);
//! - [`sentry`]: Sentry's side of the wire (signatures, payloads) and, on
//!   the server, its API client;
//! - [`store`]: the one store over SQLite or PostgreSQL;
//! - [`pipeline`]: webhooks from the durable inbox to applied changes;
//! - [`installations`]: installing, tokens, uninstalling, service hooks;
//! - [`outbound`]: what issuebridge sends back to Sentry.
//!
//! The always-on part compiles to `wasm32-unknown-unknown`, so the console
//! uses the very same types as the server. Everything that needs a
//! database, the file system or a network sits behind the `server` feature.

pub mod components;
pub mod domain;
pub mod sentry;

#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod crypto;
#[cfg(feature = "server")]
pub mod demo;
#[cfg(feature = "testing")]
pub mod fuzz;
#[cfg(feature = "server")]
pub mod installations;
#[cfg(feature = "server")]
pub mod live;
#[cfg(feature = "server")]
pub mod markdown;
#[cfg(feature = "server")]
pub mod outbound;
#[cfg(feature = "server")]
pub mod pipeline;
#[cfg(feature = "server")]
pub mod state;
#[cfg(feature = "server")]
pub mod store;

#[cfg(feature = "server")]
pub use state::{AppState, LoginProvider};
