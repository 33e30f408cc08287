//! The board's server functions.

use issuebridge::domain::ticket::TicketSummary;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::ssr;

/// The board shows at most this many tickets; paging comes with search.
pub const BOARD_LIMIT: i64 = 500;

#[server]
pub async fn list_tickets() -> Result<Vec<TicketSummary>, ServerFnError> {
    let state = ssr::state()?;
    state.store.list_tickets(BOARD_LIMIT).await.map_err(|e| ssr::store_failed("load tickets", e))
}
