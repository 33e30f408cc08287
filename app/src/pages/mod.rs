mod activity;
mod board;
mod components;
mod deliveries;
mod installations;
mod outbox;
mod settings;
mod teams;
mod ticket;

pub use activity::ActivityPage;
pub use board::{BoardPage, TicketBoard};
pub use components::ComponentsPage;
pub use deliveries::{DeliveriesPage, DeliveryPage};
pub use installations::InstallationsPage;
pub use outbox::{OutboxPage, OutboxTable};
pub use settings::SettingsPage;
pub use teams::{CodeMappingsPage, TeamsPage};
pub use ticket::TicketPage;

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn NotFound() -> impl IntoView {
    // Unknown paths reach the server's fallback, which answers 404.
    view! {
        <Title text="Not found"/>
        <section class="page">
            <h1>"Not found"</h1>
            <p>"There is no page here. " <a href="/">"Back to the board"</a></p>
        </section>
    }
}

/// The frame the simpler pages share: the title (in the tab and as the
/// heading) and a placeholder while the page's data loads.
#[component]
fn Page(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <Title text=title/>
        <section class="page">
            <header class="page-head"><h1>{title}</h1></header>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>{children()}</Suspense>
        </section>
    }
}

/// A demo-mode action: a button, and a line that reports how it went.
#[component]
fn DemoAction(
    label: &'static str,
    on_click: Callback<()>,
    #[prop(into)] pending: Signal<bool>,
    #[prop(into)] message: Signal<String>,
) -> impl IntoView {
    view! {
        <div class="actions">
            <button class="button" on:click=move |_| on_click.run(()) disabled=move || pending.get()>{label}</button>
            <span class="muted" role="status">{move || message.get()}</span>
        </div>
    }
}

/// What a finished server action says: its success text, or the error.
fn outcome_text<T>(value: Option<Result<T, ServerFnError>>, success: impl Fn(T) -> String) -> String {
    match value {
        Some(Ok(value)) => success(value),
        Some(Err(error)) => error.to_string(),
        None => String::new(),
    }
}

/// A load error as a person should read it.
#[component]
fn LoadError(error: ServerFnError) -> impl IntoView {
    let message = match error {
        ServerFnError::ServerError(message) => message,
        other => other.to_string(),
    };
    view! { <p class="error" role="alert">{message}</p> }
}
