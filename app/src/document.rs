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
    view! {
        <StandalonePage title=title.clone()>
            <section class="page">
                <h1>{title}</h1>
                <p>{message}</p>
                {link.map(|PageLink { href, label }| view! { <p><a class="button" href=href>{label}</a></p> })}
            </section>
        </StandalonePage>
    }
}

/// The document around a standalone page: the head, the brand bar, and
/// `children` as the main content. No script: nothing on it is interactive.
#[component]
pub fn StandalonePage(#[prop(into)] title: String, children: Children) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <DocumentHead stylesheet=STANDALONE_STYLESHEET/>
                <title>{page_title(&title)}</title>
            </head>
            <body>
                <header class="topbar">
                    <span class="brand">"issuebridge"</span>
                </header>
                <main>{children()}</main>
            </body>
        </html>
    }
}

/// What the login page offers, as the server's configuration allows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoginOptions {
    /// `/auth/login?next=…`, when an OAuth application (or demo mode's
    /// simulated Sentry) is there to log in with.
    pub sentry_href: Option<String>,
    /// Demo mode: the simulated Sentry offers several people.
    pub demo: bool,
    /// Instance administrators are configured: login links work.
    pub login_links: bool,
    /// Why the last attempt failed, for the person.
    pub error: Option<String>,
}

/// The page people without a session land on. With neither an OAuth
/// application nor administrators configured it explains how to set one up
/// and offers nothing else: the console fails closed.
#[component]
pub fn LoginPage(options: LoginOptions) -> impl IntoView {
    let LoginOptions { sentry_href, demo, login_links, error } = options;
    let nothing_configured = sentry_href.is_none() && !login_links;
    view! {
        <StandalonePage title="Log in">
                    <section class="page login">
                        <h1>"Log in"</h1>
                        {error.map(|error| view! { <p class="error" role="alert">{error}</p> })}
                        {sentry_href.map(|href| view! {
                            <p>"issuebridge shows you the installations of the Sentry organizations you belong to."</p>
                            <p><a class="button" href=href>"Log in with Sentry"</a></p>
                        })}
                        {demo.then(|| view! {
                            <p class="muted">
                                "Demo mode: the simulated Sentry lets you choose who you are: Jane Doe owns demo-org, Sam Member is a plain member of it, and Olga Other belongs to another organization."
                            </p>
                        })}
                        {login_links.then(|| view! {
                            <p class="muted">
                                "Instance administrators can also log in without Sentry: run "
                                <code>"issuebridge login-link --email you@example.com"</code>
                                " on the server and open the link it prints (single use, valid for ten minutes)."
                            </p>
                        })}
                        {nothing_configured.then(|| view! {
                            <p>"Nobody can log in yet: this issuebridge has no way to tell who you are. Set one of these and restart it:"</p>
                            <ul>
                                <li>
                                    <code>"SENTRY_OAUTH_CLIENT_ID"</code>" and "<code>"SENTRY_OAUTH_CLIENT_SECRET"</code>
                                    ": an OAuth application registered in Sentry (User Settings → API → Applications) whose redirect URI is this site's "
                                    <code>"/auth/callback"</code>"; people then log in with their Sentry identity."
                                </li>
                                <li>
                                    <code>"ISSUEBRIDGE_ADMINS"</code>
                                    ": administrators' emails; "<code>"issuebridge login-link --email …"</code>" then prints a link that logs one in."
                                </li>
                            </ul>
                        })}
                    </section>
        </StandalonePage>
    }
}

/// The page a login link opens: one button, so that a link previewer
/// fetching the address does not spend it.
#[component]
pub fn LoginLinkPage(#[prop(into)] email: String, #[prop(into)] action: String) -> impl IntoView {
    view! {
        <StandalonePage title="Log in">
                    <section class="page login">
                        <h1>"Log in as an administrator"</h1>
                        <p>"This link logs " <strong>{email}</strong> " in, once."</p>
                        <form method="post" action=action>
                            <button class="button" type="submit">"Log in"</button>
                        </form>
                    </section>
        </StandalonePage>
    }
}
