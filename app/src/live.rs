//! The console's end of the live feed (`GET /api/live`, server-sent
//! events): one connection for the whole console, opened once the page has
//! hydrated, and a counter that pages read to load again what they show.

use leptos::prelude::*;

/// How long a burst of changes is gathered before pages load again.
#[cfg(feature = "hydrate")]
const GATHER_MS: f64 = 150.0;
/// The least time between two loads while changes keep coming.
#[cfg(feature = "hydrate")]
const AT_MOST_EVERY_MS: f64 = 1000.0;

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
        // A burst is gathered for [`GATHER_MS`]; under a steady stream of
        // changes (a flood of webhooks) pages load at most once per
        // [`AT_MOST_EVERY_MS`], so open consoles do not hammer the server.
        let waiting = Rc::new(Cell::new(false));
        let last_fired = Rc::new(Cell::new(f64::MIN));
        let on_change = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let data = event.data().as_string().unwrap_or_default();
            let change = serde_json::from_str::<issuebridge::domain::outbox::LiveChange>(&data).ok();
            set_installation.set(change.map(|c| c.installation_uuid).unwrap_or_default());
            if waiting.replace(true) {
                return;
            }
            let now = js_sys::Date::now();
            let wait = GATHER_MS.max(last_fired.get() + AT_MOST_EVERY_MS - now);
            let (waiting, last_fired) = (waiting.clone(), last_fired.clone());
            set_timeout(
                move || {
                    waiting.set(false);
                    last_fired.set(js_sys::Date::now());
                    set_count.update(|n| *n += 1);
                },
                std::time::Duration::from_millis(wait as u64),
            );
        });
        let _ = source.add_event_listener_with_callback("change", on_change.as_ref().unchecked_ref());
        // The feed reconnects after a stream ends (the server ends them now
        // and then) or the network drops; what changed meanwhile was not
        // heard, so pages load again.
        let opened_before = Rc::new(Cell::new(false));
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            if opened_before.replace(true) {
                set_count.update(|n| *n += 1);
            }
        });
        let _ = source.add_event_listener_with_callback("open", on_open.as_ref().unchecked_ref());
        on_open.forget();
        // The console keeps one feed for as long as it is open.
        on_change.forget();
        std::mem::forget(source);
    });
}
