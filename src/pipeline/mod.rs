//! The webhook pipeline: a signed delivery is written to the durable
//! [`inbox`] before it is acknowledged; the [`worker`] claims stored
//! deliveries and hands them to [`apply`]; [`retry`] decides what happens
//! to one that failed.

pub mod apply;
pub mod inbox;
pub mod retry;
pub mod worker;
