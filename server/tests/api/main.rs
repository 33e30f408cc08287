//! Black-box tests of the server: one integration binary, a fresh database
//! per test, each test on SQLite and on PostgreSQL.

mod access;
mod assets;
mod at_rest;
mod binary;
mod components;
mod console;
mod driver;
mod fuzz;
mod helpers;
mod install;
mod lifecycle;
mod limits;
mod oauth;
mod ops;
mod outbound;
mod sentry_api;
mod sync;
mod tokens;
mod webhook;
