//! `GET /api/live`: the live feed as server-sent events, for the console's
//! open boards and ticket pages (`issuebridge::live`).
//!
//! Behind the session guard like every console route. Each change names an
//! installation; a person hears only of installations of their
//! organizations (asked once per installation per connection, so a stream
//! costs one lookup per installation, not one per change).

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use futures_util::Stream;
use issuebridge::domain::access::{OrgRef, Viewer};
use issuebridge::domain::ids::InstallationUuid;
use issuebridge::domain::outbox::LiveChange;
use tokio::sync::broadcast::error::RecvError;

use crate::state::ServerState;

pub const LIVE_PATH: &str = "/api/live";

/// How long one stream lasts before the browser must connect again: the
/// interval at which memberships are asked again.
const STREAM_FOR: Duration = Duration::from_secs(5 * 60);

const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// The event's name, which the console listens for.
pub const CHANGE_EVENT: &str = "change";

pub async fn events(
    State(state): State<ServerState>,
    Extension(viewer): Extension<Viewer>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let feed = Watcher {
        receiver: state.app.live.subscribe(),
        store: state.app.store.clone(),
        viewer,
        visible: HashMap::new(),
    };
    let changes = futures_util::stream::unfold(feed, |mut feed| async move {
        let change = feed.next().await?;
        let event = Event::default().event(CHANGE_EVENT).json_data(&change).unwrap_or_default();
        Some((Ok(event), feed))
    });
    // First, how soon to connect again after the stream ends (the console
    // loads everything again when it does, for what it missed meanwhile).
    let hello = Event::default().event("hello").retry(RECONNECT_AFTER).data("");
    let stream = futures_util::StreamExt::chain(futures_util::stream::once(async { Ok(hello) }), changes);
    // A stream ends after a while; the browser's EventSource connects again
    // at once and passes the session guard anew, so a person whose
    // memberships changed (or whose session ended) stops hearing.
    let stream = futures_util::StreamExt::take_until(stream, tokio::time::sleep(STREAM_FOR));
    // A comment line now and then keeps proxies from closing a quiet stream.
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(20)))
}

struct Watcher {
    receiver: tokio::sync::broadcast::Receiver<LiveChange>,
    store: issuebridge::store::Store,
    viewer: Viewer,
    /// Installation → whether the person may see it.
    visible: HashMap<String, bool>,
}

impl Watcher {
    /// The next change this person may hear of; `None` when the feed ends.
    async fn next(&mut self) -> Option<LiveChange> {
        loop {
            match self.receiver.recv().await {
                Ok(change) => {
                    if self.may_see(&change.installation_uuid).await {
                        return Some(change);
                    }
                }
                // Fell behind: say "everything may have changed" (an empty
                // installation), and the page loads all again.
                Err(RecvError::Lagged(_)) => {
                    return Some(LiveChange { installation_uuid: String::new(), tickets: Vec::new() })
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    async fn may_see(&mut self, installation: &str) -> bool {
        if let Some(known) = self.visible.get(installation) {
            return *known;
        }
        let visible = match InstallationUuid::parse(installation) {
            Ok(uuid) => match self.store.installation(&uuid).await {
                Ok(Some(record)) => self.viewer.can_see(OrgRef::new(record.org_id, &record.org_slug)),
                Ok(None) => false,
                Err(error) => {
                    tracing::warn!(%error, "live feed could not look up an installation");
                    return false;
                }
            },
            Err(_) => false,
        };
        self.visible.insert(installation.to_owned(), visible);
        visible
    }
}
