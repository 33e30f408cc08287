//! The console's end of the live feed (`GET /api/live`, server-sent
//! events): one connection for the whole console, opened once the page has
//! hydrated, and a counter that pages read to load again what they show.

use leptos::prelude::*;

/// Counts the changes the feed announced; a page that reads it reloads when
/// it moves. `installation` is the last change's ("" when the feed fell
/// behind and anything may have changed).
#[derive(Debug, Clone, Copy)]
pub struct LiveChanges {
    pub count: ReadSignal<u64>,
    pub installation: ReadSignal<String>,
}

/// The counter for pages; it stays at 0 without the feed (server rendering).
pub fn use_live_changes() -> LiveChanges {
    use_context::<LiveChanges>().unwrap_or_else(|| {
        let (count, _) = signal(0);
        let (installation, _) = signal(String::new());
        LiveChanges { count, installation }
    })
}

/// Opens the feed (in the browser) and provides its counter to the pages.
/// Bursts (a batch of webhooks) are gathered for a moment, so a page loads
/// once, not once per change.
pub fn provide_live_changes() {
    let (count, set_count) = signal(0u64);
    let (installation, set_installation) = signal(String::new());
    provide_context(LiveChanges { count, installation });
    #[cfg(not(feature = "hydrate"))]
    let _ = (set_count, set_installation);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        use std::cell::Cell;
        use std::rc::Rc;
        use wasm_bindgen::prelude::*;
        use wasm_bindgen::JsCast;

        let Ok(source) = web_sys::EventSource::new("/api/live") else { return };
        let waiting = Rc::new(Cell::new(false));
        let on_change = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let data = event.data().as_string().unwrap_or_default();
            let change = serde_json::from_str::<issuebridge::domain::outbox::LiveChange>(&data).ok();
            set_installation.set(change.map(|c| c.installation_uuid).unwrap_or_default());
            if waiting.replace(true) {
                return;
            }
            let waiting = waiting.clone();
            set_timeout(
                move || {
                    waiting.set(false);
                    set_count.update(|n| *n += 1);
                },
                std::time::Duration::from_millis(150),
            );
        });
        let _ = source.add_event_listener_with_callback("change", on_change.as_ref().unchecked_ref());
        // The console keeps one feed for as long as it is open.
        on_change.forget();
        std::mem::forget(source);
    });
}
