//! The component request log: the last requests Sentry made to the UI
//! components, for the console, like Sentry's own request log for apps
//! (docs/sentry-protocol.md §1.6). Kept in memory, per process: it is a
//! window for debugging a form, not a record (the audit log is that), and
//! writing it never delays an answer Sentry waits for.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// How many requests the log keeps, across installations.
pub const LOG_CAPACITY: usize = 500;

/// One request Sentry made to a component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentRequest {
    pub at_ms: i64,
    /// `select:tickets`, `issue-link:create`, `alert-rule-action`,
    /// `stacktrace-link`…
    pub component: String,
    pub installation_uuid: Option<String>,
    pub status: u16,
    /// What was asked, in a few words (`query "checkout"`, `ENG-12`).
    pub request: String,
    /// What the answer said to Sentry: its `message`, or a summary.
    pub answer: String,
}

#[derive(Debug, Default)]
pub struct RequestLog {
    entries: Mutex<VecDeque<ComponentRequest>>,
}

impl RequestLog {
    pub fn record(&self, entry: ComponentRequest) {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() == LOG_CAPACITY {
            entries.pop_back();
        }
        entries.push_front(entry);
    }

    /// The newest first, of the installations `visible` keeps.
    pub fn recent(&self, limit: usize, visible: impl Fn(&str) -> bool) -> Vec<ComponentRequest> {
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.iter().filter(|e| e.installation_uuid.as_deref().is_some_and(&visible)).take(limit).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize, installation: &str) -> ComponentRequest {
        ComponentRequest {
            at_ms: n as i64,
            component: "select:teams".into(),
            installation_uuid: Some(installation.into()),
            status: 200,
            request: String::new(),
            answer: String::new(),
        }
    }

    #[test]
    fn keeps_the_newest_and_only_shows_visible_installations() {
        let log = RequestLog::default();
        for n in 0..LOG_CAPACITY + 10 {
            log.record(entry(n, if n % 2 == 0 { "a" } else { "b" }));
        }
        let mine = log.recent(1000, |i| i == "a");
        assert_eq!(mine.len(), LOG_CAPACITY / 2);
        assert_eq!(mine[0].at_ms, (LOG_CAPACITY + 8) as i64, "newest first");
        assert!(mine.iter().all(|e| e.installation_uuid.as_deref() == Some("a")));
        assert_eq!(log.recent(3, |_| true).len(), 3);
    }
}
