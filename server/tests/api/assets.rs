//! The console's static files and compression: precompressed copies chosen
//! by `Accept-Encoding`, revalidation, and gzip for rendered pages.
//!
//! The store plays no part in any of it, so SQLite alone is enough. The
//! site root is each test's own folder with stand-in files: nothing depends
//! on `make front` having run.

use std::io::Read;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use issuebridge::store::testing::TestDatabase;

use crate::helpers::{spawn_app, Answer, TestApp};

const WASM: &str = "/pkg/issuebridge.wasm";

/// Stand-ins for `make front`'s output: the WASM and its brotli and gzip
/// copies, each recognisable and each smaller than the one before.
const PLAIN: &str = "the wasm, uncompressed, as wasm-bindgen wrote it";
const BROTLI: &str = "the wasm in brotli";
const GZIP: &str = "the wasm in gzip, a bit longer";

async fn app_with_wasm() -> TestApp {
    let app = spawn_app(TestDatabase::sqlite()).await;
    let pkg = app.data_dir.path().join("site/pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("issuebridge.wasm"), PLAIN).unwrap();
    std::fs::write(pkg.join("issuebridge.wasm.br"), BROTLI).unwrap();
    std::fs::write(pkg.join("issuebridge.wasm.gz"), GZIP).unwrap();
    app
}

async fn get_with(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    app.send(request.body(Body::empty()).unwrap()).await
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.to_str().unwrap())
}

#[tokio::test]
async fn the_wasm_goes_precompressed_to_clients_that_accept_it() {
    let app = app_with_wasm().await;
    for (accepted, encoding, body) in [
        (Some("br"), Some("br"), BROTLI),
        (Some("gzip"), Some("gzip"), GZIP),
        // Brotli first when both are as welcome, as browsers send them.
        (Some("gzip, deflate, br, zstd"), Some("br"), BROTLI),
        (Some("br;q=0, gzip"), Some("gzip"), GZIP),
        (Some("deflate"), None, PLAIN),
        (None, None, PLAIN),
    ] {
        let headers: Vec<_> = accepted.map(|accepted| ("accept-encoding", accepted)).into_iter().collect();
        let answer = get_with(&app, WASM, &headers).await;
        assert_eq!(answer.status, StatusCode::OK, "accepting {accepted:?}");
        assert_eq!(header(&answer.headers, "content-encoding"), encoding, "accepting {accepted:?}");
        assert_eq!(answer.body, body, "accepting {accepted:?}");
        assert_eq!(answer.content_type.as_deref(), Some("application/wasm"), "accepting {accepted:?}");
        // A cache in between must keep one copy per encoding.
        assert_eq!(header(&answer.headers, "vary"), Some("accept-encoding"), "accepting {accepted:?}");
    }
    assert!(BROTLI.len() < GZIP.len() && GZIP.len() < PLAIN.len());
}

#[tokio::test]
async fn assets_are_revalidated_and_answered_304_until_they_change() {
    let app = app_with_wasm().await;
    let wasm = app.data_dir.path().join("site/pkg/issuebridge.wasm");
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options().write(true).open(&wasm).unwrap().set_modified(an_hour_ago).unwrap();

    let first = get_with(&app, WASM, &[]).await;
    assert_eq!(first.status, StatusCode::OK);
    // Fixed names: the browser keeps the file but asks again at each use.
    assert_eq!(header(&first.headers, "cache-control"), Some("no-cache"));
    let last_modified = header(&first.headers, "last-modified").expect("a Last-Modified date").to_owned();

    let again = get_with(&app, WASM, &[("if-modified-since", &last_modified)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.bytes.is_empty());
    assert_eq!(header(&again.headers, "cache-control"), Some("no-cache"));

    // A new build writes the file again: the same question now gets it.
    std::fs::write(&wasm, "the next build's wasm").unwrap();
    let rebuilt = get_with(&app, WASM, &[("if-modified-since", &last_modified)]).await;
    assert_eq!(rebuilt.status, StatusCode::OK);
    assert_eq!(rebuilt.body, "the next build's wasm");
}

#[tokio::test]
async fn split_files_named_by_their_content_are_kept_for_good() {
    let app = app_with_wasm().await;
    let pkg = app.data_dir.path().join("site/pkg");
    // As `make front` names a page's split-out file, and as it would be
    // without the hash (or with one that is not lowercase hex).
    for name in ["split___teams_view_45.0123456789abcdef.wasm", "chunk_12.wasm", "chunk_13.0123456789ABCDEF.wasm"] {
        std::fs::write(pkg.join(name), "a split file").unwrap();
        std::fs::write(pkg.join(format!("{name}.br")), "split, in brotli").unwrap();
    }
    let hashed = get_with(&app, "/pkg/split___teams_view_45.0123456789abcdef.wasm", &[("accept-encoding", "br")]).await;
    assert_eq!(hashed.status, StatusCode::OK);
    assert_eq!(hashed.body, "split, in brotli");
    assert_eq!(header(&hashed.headers, "cache-control"), Some("public, max-age=31536000, immutable"));
    assert_eq!(header(&hashed.headers, "vary"), Some("accept-encoding"));
    for unhashed in ["/pkg/chunk_12.wasm", "/pkg/chunk_13.0123456789ABCDEF.wasm", WASM] {
        let answer = get_with(&app, unhashed, &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{unhashed}");
        assert_eq!(header(&answer.headers, "cache-control"), Some("no-cache"), "{unhashed}");
    }
    // A hashed name that is not there is the 404 page, not cached.
    let missing = get_with(&app, "/pkg/chunk_14.0123456789abcdef.wasm", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(header(&missing.headers, "cache-control"), Some("no-store"));
}

#[tokio::test]
async fn a_missing_asset_is_the_consoles_404_page_without_cache_headers() {
    let app = app_with_wasm().await;
    for path in ["/pkg/no-such-file.js", "/pkg", "/pkg/"] {
        let answer = get_with(&app, path, &[]).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert!(answer.body.contains("Not found"), "{path}: {}", answer.body);
        // Never cached, unlike the files that exist.
        assert_eq!(header(&answer.headers, "cache-control"), Some("no-store"), "{path}");
    }
}

#[tokio::test]
async fn pages_are_gzipped_and_small_answers_are_not() {
    let app = spawn_app(TestDatabase::sqlite()).await;
    let cookie = app.admin().await.cookie.unwrap();
    let page = get_with(&app, "/", &[("accept-encoding", "gzip, br"), ("cookie", &cookie)]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(header(&page.headers, "content-encoding"), Some("gzip"));
    let mut html = String::new();
    flate2::read::GzDecoder::new(&page.bytes[..]).read_to_string(&mut html).unwrap();
    assert!(html.contains("<title>Board · issuebridge</title>"), "{html}");
    assert!(page.bytes.len() < html.len());

    let plain = get_with(&app, "/", &[("cookie", &cookie)]).await;
    assert_eq!(header(&plain.headers, "content-encoding"), None);
    assert!(plain.body.contains("<title>Board · issuebridge</title>"));

    // An acknowledgement-sized answer is not worth an encoder.
    let small = get_with(&app, "/healthz", &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&small.headers, "content-encoding"), None);
    assert_eq!(small.body, r#"{"status":"ok"}"#);
}
