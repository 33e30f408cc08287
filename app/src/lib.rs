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
use leptos_router::{path, Lazy, LazyRoute, SsrMode};

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
                    <Route path=path!("/deliveries") view={Lazy::<Deliveries>::new()}/>
                    <Route path=path!("/deliveries/:id") view={Lazy::<Delivery>::new()}/>
                    <Route path=path!("/installations") view={Lazy::<Installations>::new()}/>
                    <Route path=path!("/outbox") view={Lazy::<Outbox>::new()}/>
                    <Route path=path!("/tickets/:key") view={Lazy::<Ticket>::new()}/>
                    <Route path=path!("/teams") view={Lazy::<Teams>::new()}/>
                    // Rendered whole before it is sent: its nested loads (the
                    // installations, then each one's issues) streamed out of
                    // order sometimes reached the browser mid-hydration, which
                    // then panicked (seen once in the browser tests here).
                    <Route path=path!("/components") view={Lazy::<Components>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/code-mappings") view={Lazy::<CodeMappings>::new()}/>
                    <Route path=path!("/settings") view={Lazy::<Settings>::new()}/>
                    <Route path=path!("/activity") view={Lazy::<Activity>::new()}/>
                </Routes>
            </main>
        </Router>
    }
}

/// Every page but the board is split out of the front end's main module:
/// `make front` cuts each group below into a WASM file of its own
/// (wasm-split), which the browser fetches the first time one of its pages
/// is shown. The board, where the console opens, stays in the main module,
/// so a first visit downloads only what the board needs (issue 12: at most
/// 300 KB on the wire). Pages are split in groups, not one by one: code
/// that two split files share goes to a file of its own, and ten pages
/// split one by one made 145 such files, up to 80 of them requested by
/// one visit (BENCHMARKS.md).
macro_rules! split_pages {
    ($($group:ident ($preload:ident): $($route:ident => $page:ident),+;)+) => {
        /// A page drawn by one of the split-out groups.
        #[derive(Clone, Copy, Debug)]
        #[repr(u8)]
        enum SplitPage {
            $($($route,)+)+
        }

        $(
            #[lazy]
            fn $group(page: SplitPage) -> AnyView {
                match page {
                    $(SplitPage::$route => view! { <$page/> }.into_any(),)+
                    #[allow(unreachable_patterns)]
                    other => unreachable!("{other:?} is in another group"),
                }
            }

            $(
                #[derive(Clone, Copy)]
                struct $route;

                impl LazyRoute for $route {
                    // The page loads its own data once its code is here.
                    fn data() -> Self {
                        $route
                    }

                    async fn view(_this: Self) -> AnyView {
                        $group(SplitPage::$route).await
                    }

                    // Hydrating a page the visit landed on waits for this:
                    // it fetches the group's files (`#[lazy]` makes a
                    // `__preload_<group>` function for it).
                    async fn preload() {
                        #[cfg(feature = "hydrate")]
                        $preload().await;
                    }
                }
            )+
        )+
    };
}

split_pages! {
    // What came in and went out: the logs a person reads.
    log_pages (__preload_log_pages): Deliveries => DeliveriesPage, Delivery => DeliveryPage, Outbox => OutboxPage, Activity => ActivityPage;
    // What an organization's admin sets up.
    admin_pages (__preload_admin_pages): Installations => InstallationsPage, Teams => TeamsPage, CodeMappings => CodeMappingsPage, Settings => SettingsPage;
    // Where Sentry's links to a ticket land.
    ticket_page (__preload_ticket_page): Ticket => TicketPage;
    components_page (__preload_components_page): Components => ComponentsPage;
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
    // Asynchronous hydration (what `leptos::mount::hydrate_lazy` does): a
    // page split out of the main module (`split_pages!`) is fetched before
    // its part of the document hydrates. Only then does the body say the
    // console works, so tests and people can tell a working page from
    // server-rendered HTML (or one whose page code is still on its way).
    wasm_bindgen_futures::spawn_local(async {
        let Some(body) = document().body() else { return };
        leptos::mount::hydrate_from_async(body.clone(), App).await.forget();
        let _ = body.set_attribute("data-hydrated", "true");
    });
}
