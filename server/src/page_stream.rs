//! Console pages that a client leaves before reading them to the end.
//!
//! Leptos renders a page as a stream and frees the page's reactive owner
//! (its arena, its resources' data) in the stream's last step
//! (`owner.unset_with_forced_cleanup()`, leptos_integration_utils 0.8).
//! When a client goes away first (a tab closed or navigated on, a `HEAD`, a
//! client that reads only the status), hyper drops the stream before that
//! step, and three of the page's tasks wait for ever, holding it: about
//! 210 KB for each full board, for good (`make soak`'s first instance went
//! from 62 to 633 MB in ten minutes: its client reads only the status of
//! each page). No Leptos setting avoids it, hence this wrapper.
//!
//! So a streamed HTML answer that is dropped unfinished is run to its end
//! in a task of its own, which throws the rest away: Leptos then frees the
//! page as it does for a page read whole.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes, HttpBody};
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use futures_util::{Stream, StreamExt};

/// How long a page nobody reads may take to finish. One that takes longer
/// is dropped as it is.
const FINISH_WITHIN: Duration = Duration::from_secs(30);

/// Middleware (`map_response`): a streamed HTML answer gets a body that is
/// run to its end even when the client does not read it. Answers whose
/// length is known (whole in memory) and other types pass as they are.
pub async fn finish_abandoned_pages(response: Response) -> Response {
    let html = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if !html || response.body().size_hint().exact().is_some() {
        return response;
    }
    response.map(|body| Body::from_stream(RunToTheEnd { rest: Some(body.into_data_stream()) }))
}

/// A page's body that, dropped before its end, finishes in the background.
struct RunToTheEnd {
    /// `None` once the stream has ended.
    rest: Option<BodyDataStream>,
}

impl Stream for RunToTheEnd {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(rest) = self.rest.as_mut() else { return Poll::Ready(None) };
        let next = rest.poll_next_unpin(cx);
        if matches!(next, Poll::Ready(None)) {
            self.rest = None;
        }
        next
    }
}

impl Drop for RunToTheEnd {
    fn drop(&mut self) {
        let Some(mut rest) = self.rest.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let finished = async { while let Some(Ok(_)) = rest.next().await {} };
            if tokio::time::timeout(FINISH_WITHIN, finished).await.is_err() {
                tracing::warn!("a page its client left did not finish rendering in time; its memory may stay");
            }
        });
    }
}
