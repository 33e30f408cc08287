//! Ticket descriptions are Markdown, rendered to HTML on the server.
//!
//! Rendered here rather than in the browser so the console's WASM does not
//! carry a Markdown parser. "Safely" means: raw HTML in the text is shown as
//! text, never passed through, and links and images keep only `http`,
//! `https`, `mailto` or relative destinations, so nothing a description says
//! can run script in the console. pulldown-cmark escapes everything else.

use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag};

/// The description as HTML that is safe to insert into the page.
pub fn render(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        // Raw HTML becomes visible text.
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Link { link_type, dest_url: safe_url(dest_url), title, id })
        }
        Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Image { link_type, dest_url: safe_url(dest_url), title, id })
        }
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

/// A destination a browser may follow without running anything: other
/// schemes (`javascript:`, `data:`, `vbscript:`…) become `#`.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.trim_start().to_ascii_lowercase();
    let scheme_end = lower.find([':', '/', '?', '#']);
    let has_scheme = scheme_end.is_some_and(|at| lower.as_bytes()[at] == b':');
    if !has_scheme || ["http:", "https:", "mailto:"].iter().any(|s| lower.starts_with(s)) {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn markdown_becomes_html() {
        let html = render("# Crash\n\n**Bold** and `code`\n\n- one\n- two");
        assert!(html.contains("<h1>Crash</h1>"), "{html}");
        assert!(html.contains("<strong>Bold</strong>"));
        assert!(html.contains("<code>code</code>"));
        assert!(html.contains("<li>one</li>"));
    }

    #[test]
    fn raw_html_and_script_links_cannot_run() {
        let html = render("<script>alert(1)</script>\n\nhi <img src=x onerror=alert(1)>");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
        for evil in ["javascript:alert(1)", "JAVASCRIPT:alert(1)", " javascript:x", "data:text/html,x", "vbscript:x"] {
            let html = render(&format!("[x]({evil}) ![y]({evil})"));
            assert!(!html.to_ascii_lowercase().contains("script:") && !html.contains("data:"), "{evil}: {html}");
        }
        let html = render("[ok](https://example.com/a?b) [rel](/tickets/ENG-1) [mail](mailto:a@b.c)");
        assert!(html.contains(r#"href="https://example.com/a?b""#), "{html}");
        assert!(html.contains(r#"href="/tickets/ENG-1""#));
        assert!(html.contains(r#"href="mailto:a@b.c""#));
    }
}
