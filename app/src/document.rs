//! What every issuebridge page shares, the console's and the standalone
//! ones: the document head, the title's form, and [`MessagePage`], the page
//! people's browsers get outside the console app (the end of an
//! installation, a browser-facing error).
//!
//! Standalone pages are rendered once on the server, with no script:
//! nothing on them is interactive, and they are not part of the app's router.

use leptos::prelude::*;

/// The stylesheet of pages rendered without the server's options (an
/// error's `IntoResponse` has none): cargo-leptos' output under the default
/// output name. The console's shell links the configured one.
pub const STANDALONE_STYLESHEET: &str = "/pkg/issuebridge.css";

/// A page's title in the browser tab.
pub fn page_title(page: &str) -> String {
    format!("{page} · issuebridge")
}

/// The head's first children, the same on every page: encoding, viewport,
/// stylesheet and icon.
#[component]
pub fn DocumentHead(#[prop(into)] stylesheet: String) -> impl IntoView {
    view! {
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <link rel="stylesheet" href=stylesheet/>
        <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
    }
}

/// A link out of a standalone page, drawn as a button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageLink {
    pub href: String,
    pub label: String,
}

/// A whole document that tells a person one thing: a heading, a sentence,
/// and perhaps where to go next. Every text is escaped by Leptos.
#[component]
pub fn MessagePage(
    #[prop(into)] title: String,
    #[prop(into)] message: String,
    #[prop(optional_no_strip)] link: Option<PageLink>,
) -> impl IntoView {
    let tab_title = page_title(&title);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <DocumentHead stylesheet=STANDALONE_STYLESHEET/>
                <title>{tab_title}</title>
            </head>
            <body>
                <header class="topbar">
                    <span class="brand">"issuebridge"</span>
                </header>
                <main>
                    <section class="page">
                        <h1>{title}</h1>
                        <p>{message}</p>
                        {link.map(|PageLink { href, label }| view! { <p><a class="button" href=href>{label}</a></p> })}
                    </section>
                </main>
            </body>
        </html>
    }
}
