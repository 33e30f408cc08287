//! Pages for people's browsers outside the console app, as HTTP answers:
//! the console's look ([`MessagePage`]), rendered by Leptos, which escapes
//! every text.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use issuebridge_app::document::{MessagePage, PageLink};
use leptos::prelude::*;

/// The page for a browser-facing error: a title and a sentence. Both are
/// shown as given, so they must be written for the person reading them;
/// the cause (a source chain, a query, a path) belongs in the log.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    message_page(status, title, message, None)
}

/// A page that says one thing, with perhaps a link onwards.
pub fn message_page(status: StatusCode, title: &str, message: &str, link: Option<PageLink>) -> Response {
    let html = view! { <MessagePage title message link/> }.to_html();
    (status, Html(html)).into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::header;
    use http_body_util::BodyExt;

    use super::*;

    async fn body(response: Response) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn an_error_page_keeps_its_status_and_escapes_its_texts() {
        let response =
            error_page(StatusCode::BAD_GATEWAY, "<b>Sentry</b> & co", r#"It said "<script>alert(1)</script>"."#);
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let html = body(response).await;
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(html.contains("<h1>&lt;b&gt;Sentry&lt;/b&gt; &amp; co</h1>"), "{html}");
        assert!(html.contains("<title>&lt;b&gt;Sentry&lt;/b&gt; &amp; co · issuebridge</title>"), "{html}");
        assert!(html.contains(r#"It said "&lt;script&gt;alert(1)&lt;/script&gt;"."#), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains(r#"class="button""#), "an error page links nowhere: {html}");
    }

    #[tokio::test]
    async fn a_message_page_links_onwards_with_an_escaped_address() {
        let link = PageLink { href: r#"https://example.com/?a="><script>"#.to_owned(), label: "Open".to_owned() };
        let html = body(message_page(StatusCode::OK, "Done", "All set.", Some(link))).await;
        assert!(html.contains(r#"href="https://example.com/?a=&quot;&gt;&lt;script&gt;""#), "{html}");
        assert!(html.contains(r#"class="button">Open</a>"#), "{html}");
        assert!(!html.contains("<script"), "{html}");
    }
}
