//! An installation's life: completing it ([`install`]), keeping its token
//! fresh ([`tokens`]), removing it ([`uninstall`]), and the project
//! service hooks registered through it ([`service_hooks`]).

pub mod install;
pub mod keys;
pub mod locks;
pub mod service_hooks;
pub mod tokens;
pub mod uninstall;
