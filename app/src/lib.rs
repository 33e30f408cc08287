//! The issuebridge console: a Leptos app rendered on the server and hydrated
//! in the browser.
//!
//! Pages are thin: they fetch through the server functions in [`api`] and
//! render plain data types from the core crate, so the logic they show (the
//! board's filter, for one) is unit-tested there.

// Leptos views are nested types; the board's cards nest deep enough that the
// WASM release build needs more than the default 128 levels to lay them out.
#![recursion_limit = "256"]

pub mod api;
pub mod document;
pub mod live;
pub mod pages;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::{path, SsrMode};

use document::{page_title, DocumentHead};
use pages::{
    ActivityPage, BoardPage, CodeMappingsPage, ComponentsPage, DeliveriesPage, DeliveryPage, InstallationsPage,
    NotFound, OutboxPage, SettingsPage, TeamsPage, TicketPage,
};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let stylesheet = format!("/pkg/{}.css", options.output_name);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <DocumentHead stylesheet/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    live::provide_live_changes();

    // Runs only in the browser, once the WASM has taken over the page: tests
    // and people can tell a hydrated console from server-rendered HTML.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Title formatter=|page: String| page_title(&page)/>
        <Router>
            <header class="topbar">
                <a class="brand" href="/">"issuebridge"</a>
                <nav aria-label="Console">
                    <A href="/" exact=true>"Board"</A>
                    <A href="/deliveries">"Deliveries"</A>
                    <A href="/outbox">"Outbox"</A>
                    <A href="/installations">"Installations"</A>
                    <A href="/teams">"Teams"</A>
                    <A href="/components">"Components"</A>
                    <A href="/code-mappings">"Code mappings"</A>
                    <A href="/settings">"Settings"</A>
                    <A href="/activity">"Activity"</A>
                </nav>
                <ModeBadge/>
                <ViewerMenu/>
            </header>
            <main>
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=BoardPage/>
                    <Route path=path!("/deliveries") view=DeliveriesPage/>
                    <Route path=path!("/deliveries/:id") view=DeliveryPage/>
                    <Route path=path!("/installations") view=InstallationsPage/>
                    <Route path=path!("/outbox") view=OutboxPage/>
                    <Route path=path!("/tickets/:key") view=TicketPage/>
                    <Route path=path!("/teams") view=TeamsPage/>
                    // Rendered whole before it is sent: its nested loads (the
                    // installations, then each one's issues) streamed out of
                    // order sometimes reached the browser mid-hydration, which
                    // then panicked (seen once in the browser tests here).
                    <Route path=path!("/components") view=ComponentsPage ssr=SsrMode::Async/>
                    <Route path=path!("/code-mappings") view=CodeMappingsPage/>
                    <Route path=path!("/settings") view=SettingsPage/>
                    <Route path=path!("/activity") view=ActivityPage/>
                </Routes>
            </main>
        </Router>
    }
}

/// Tells people at a glance whether they are looking at demo data.
#[component]
fn ModeBadge() -> impl IntoView {
    let info = Resource::new(|| (), |_| api::load_console_info());
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match info.await {
                    Ok(info) if info.demo_mode => {
                        view! { <span class="mode demo" title="No Sentry credentials are configured: sample data, nothing reaches Sentry.">"Demo mode"</span> }.into_any()
                    }
                    Ok(_) => view! { <span class="mode live">"Connected to Sentry"</span> }.into_any(),
                    Err(_) => ().into_any(),
                }
            })}
        </Transition>
    }
}

/// Who is logged in, their organizations, and logout: a plain form, so it
/// works before the WASM loads (and the server checks its origin).
#[component]
fn ViewerMenu() -> impl IntoView {
    let viewer = Resource::new(|| (), |_| api::current_viewer());
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                viewer.await.ok().map(|viewer| {
                    let orgs = if viewer.memberships.is_empty() {
                        if viewer.admin { "all organizations".to_owned() } else { "no organization".to_owned() }
                    } else {
                        viewer.memberships.iter().map(|m| m.org_slug.clone()).collect::<Vec<_>>().join(", ")
                    };
                    let title = format!("{} · {}", viewer.email, orgs);
                    view! {
                        <div class="viewer" data-testid="viewer">
                            <span class="who" title=title>
                                <span class="name">{viewer.name.clone()}</span>
                                {viewer.admin.then(|| view! { <span class="mode admin">"admin"</span> })}
                                <span class="orgs muted">{orgs}</span>
                            </span>
                            <form method="post" action="/auth/logout">
                                <button class="link-button" type="submit">"Log out"</button>
                            </form>
                        </div>
                    }
                })
            })}
        </Transition>
    }
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
