//! The wasm-safe domain: types and pure rules that the server and the
//! console in the browser share, so both agree by construction.

pub mod access;
pub mod audit;
pub mod deliveries;
pub mod ids;
pub mod installation;
pub mod names;
pub mod outbox;
pub mod settings;
pub mod team;
pub mod ticket;
pub mod ticket_rules;
pub mod time;
pub mod webhooks;
