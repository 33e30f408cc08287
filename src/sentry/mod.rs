//! Sentry's side of the wire: how it serializes and signs what it sends.
//!
//! Both directions use this module: the app verifies what Sentry sent, and
//! the simulator produces bytes that Sentry itself would produce (docs/sentry-protocol.md
//! §1.3), so the tests exercise the very encoding a real Sentry uses.

#[cfg(feature = "server")]
pub mod api;
#[cfg(feature = "server")]
pub mod jwt;
pub mod payload;
pub mod signature;
pub mod wire;
