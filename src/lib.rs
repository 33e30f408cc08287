//! issuebridge's core: the types every part of the system agrees on.
//!
//! The always-on part compiles to `wasm32-unknown-unknown`, so the console in
//! the browser uses the very same types as the server. Everything that needs
//! a database, the file system or a network sits behind the `server` feature.

pub mod console;
pub mod domain;
pub mod sentry;
pub mod sync;
pub mod ticket;
pub mod time;

#[cfg(feature = "server")]
pub mod apply;
#[cfg(feature = "server")]
pub mod comments;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod crypto;
#[cfg(feature = "server")]
pub mod demo;
#[cfg(feature = "server")]
pub mod hooks;
#[cfg(feature = "server")]
pub mod inbox;
#[cfg(feature = "server")]
pub mod install;
#[cfg(feature = "server")]
pub mod locks;
#[cfg(feature = "server")]
pub mod state;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
pub mod tokens;
#[cfg(feature = "server")]
pub mod worker;

#[cfg(feature = "server")]
pub use state::AppState;
