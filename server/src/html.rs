//! Escaping for the few pages written as HTML text rather than by Leptos.

/// Text made safe for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}
