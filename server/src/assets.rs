//! What the console's pages load (the WASM, its JS glue, the stylesheet,
//! the favicon) and how every answer travels: precompressed files with
//! revalidation, and gzip for what is rendered per request.

use std::convert::Infallible;

use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, VARY};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower::Service;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;

/// Below this many bytes an answer fits in one packet compressed or not:
/// webhook acknowledgements stay as they are, and cost no encoder.
const COMPRESS_ABOVE_BYTES: u16 = 1024;

/// Files under `site_root`, sent as the brotli or gzip copy made at build
/// time (`make front` writes `<file>.br` and `<file>.gz`) when the client
/// accepts one, else as they are. Anything else, a directory or a method
/// other than GET and HEAD goes to `not_found` (the console's 404 page).
///
/// The main names are fixed (`/pkg/issuebridge.wasm`, `.js`, `.css`), so a
/// browser must ask again at each visit: `no-cache` with `Last-Modified`
/// (the file's date, which `make front` renews at each build; a deployment
/// must not set every file to one fixed date) turns that into a body-less
/// 304 until the front end changes. Hashed names with
/// `immutable` would save even that round trip, but Leptos finds the hashes
/// in a `hash.txt` beside the running executable, not in the site root: the
/// tests, `cargo run` and a deployed binary would each need their own copy,
/// and a missing one makes the page ask for files that are not there.
/// The pages split out of the main module are another matter: `make front`
/// names each of their files by a hash of its content, so a browser may
/// keep them for good (see [`named_by_content`]).
pub fn static_files<F>(site_root: &str, not_found: F) -> Router
where
    F: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    F::Future: Send + 'static,
{
    let files = ServeDir::new(site_root)
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(false)
        .call_fallback_on_method_not_allowed(true)
        .fallback(not_found);
    Router::new().fallback_service(files).layer(middleware::from_fn(cache_headers))
}

/// Cache headers for a file that was found (in full, in part or not
/// modified); the 404 page keeps its own.
async fn cache_headers(request: Request, next: Next) -> Response {
    let cache_control =
        if named_by_content(request.uri().path()) { "public, max-age=31536000, immutable" } else { "no-cache" };
    let mut response = next.run(request).await;
    let status = response.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache_control));
        // The body depends on Accept-Encoding, and tower-http's ServeDir
        // says so only from 0.7 on (tower-http#692); Leptos holds us on 0.6.
        headers.append(VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// Whether a path names a split-out WASM file by its content, as `make front`
/// renames them: `<name>.<the first 16 hex digits of its SHA-256>.wasm`.
/// Another build's file has another name, so this one never changes.
fn named_by_content(path: &str) -> bool {
    let Some((_, hash)) = path.strip_suffix(".wasm").and_then(|stem| stem.rsplit_once('.')) else {
        return false;
    };
    hash.len() == 16 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Gzip for answers rendered per request (pages, server functions,
/// `/metrics`) and for files that have no precompressed copy. Answers that
/// already carry a `Content-Encoding` (the precompressed files) pass as they
/// are. A streamed page arrives in one piece rather than as its parts
/// resolve, since the encoder holds its output until the page ends; the
/// console's parts come from the local store, so the wait is short.
///
/// Measured on the board: the demo's pages are 2 to 8 KB, but a full board
/// (500 tickets, its limit) is about 325 KB of HTML and 12 KB gzipped, for
/// about 5 ms of one core. Brotli would gain little more on the fly and
/// cost far more time; it is kept for the files compressed once, at build
/// time.
pub fn compression() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new().no_br().no_deflate().no_zstd().compress_when(
        SizeAbove::new(COMPRESS_ABOVE_BYTES)
            .and(NotForContentType::GRPC)
            .and(NotForContentType::IMAGES)
            .and(NotForContentType::SSE),
    )
}
