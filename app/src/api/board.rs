//! The board's server functions.

use issuebridge::domain::ticket::TicketSummary;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::ssr;

/// The board shows at most this many tickets; paging comes with search.
pub const BOARD_LIMIT: i64 = 500;

/// The tickets of the person's organizations.
#[server]
pub async fn list_tickets() -> Result<Vec<TicketSummary>, ServerFnError> {
    let state = ssr::state()?;
    let viewer = ssr::viewer()?;
    state.store.list_tickets(&viewer.read_scope(), BOARD_LIMIT).await.map_err(|e| ssr::store_failed("load tickets", e))
}
