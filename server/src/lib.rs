//! The issuebridge server: the HTTP surface, console hosting and the CLI.
//!
//! `main.rs` only calls [`cli::run`]. Everything it wires up is a library
//! function, so the integration tests build exactly the router that runs in
//! production ([`startup::router`]) and start exactly the same server
//! ([`startup::Application`]).

pub mod assets;
pub mod auth;
pub mod cli;
pub mod demo;
pub mod error;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod ops;
pub mod page;
pub mod page_stream;
pub mod sentry_ui;
pub mod setup;
pub mod signed;
pub mod sim;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod webhook;
