//! The resources Sentry sends webhooks about, and the actions of each: the
//! one list that intake, worker, handlers, README and console derive from.

use super::names::named_enum;

named_enum! {
    /// A delivery's resource, as the `Sentry-Hook-Resource` header names it
    /// (`service_hook` for project service hooks, which have no such header).
    pub enum Resource ("resource") {
        Installation = "installation",
        Issue = "issue",
        Error = "error",
        Comment = "comment",
        EventAlert = "event_alert",
        MetricAlert = "metric_alert",
        ServiceHook = "service_hook",
    }
}

impl Resource {
    /// The actions issuebridge applies (docs/sentry-protocol.md §1.7);
    /// others are kept as `ignored`.
    pub fn actions(self) -> &'static [&'static str] {
        match self {
            Self::Installation => &["created", "deleted"],
            Self::Issue => &["created", "resolved", "ignored", "archived", "unresolved", "assigned"],
            Self::Comment => &["created", "updated", "deleted"],
            Self::Error => &["created"],
            Self::EventAlert => &["triggered"],
            Self::MetricAlert => &["open", "warning", "critical", "resolved"],
            Self::ServiceHook => &["event.created", "event.alert"],
        }
    }

    /// Whether it comes to `/sentry/webhook` (service hooks have a route
    /// of their own, and a webhook claiming to be one is not processed).
    pub fn arrives_as_webhook(self) -> bool {
        self != Self::ServiceHook
    }

    /// Whether `body` carries this resource's payload: the key Sentry puts
    /// under `data` for it (docs/sentry-protocol.md §1.7).
    /// `Sentry-Hook-Resource` is not covered by the signature, so a body
    /// captured from one webhook could otherwise be posted again under
    /// every other resource name.
    pub fn carried_by(self, body: &serde_json::Value) -> bool {
        let data = |key: &str| body.get("data").and_then(|data| data.get(key)).is_some_and(|v| !v.is_null());
        match self {
            Self::Installation => data("installation"),
            Self::Issue => data("issue"),
            Self::Error => data("error"),
            Self::Comment => data("comment_id"),
            Self::EventAlert => data("event"),
            Self::MetricAlert => data("metric_alert"),
            // The raw event, with no envelope; its own route checks it.
            Self::ServiceHook => true,
        }
    }

    /// The resource of a webhook delivery, if it is one issuebridge
    /// processes.
    pub fn of_webhook(header: &str) -> Option<Self> {
        header.parse::<Self>().ok().filter(|resource| resource.arrives_as_webhook())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_service_hooks_need_their_own_route() {
        for resource in Resource::ALL {
            assert_eq!(resource.as_str().parse::<Resource>(), Ok(*resource));
            assert!(!resource.actions().is_empty());
        }
        assert_eq!(Resource::of_webhook("issue"), Some(Resource::Issue));
        assert_eq!(Resource::of_webhook("service_hook"), None);
        assert_eq!(Resource::of_webhook("seer"), None);
    }

    #[test]
    fn each_resource_is_recognised_by_its_payload_and_no_other() {
        let bodies = [
            (Resource::Installation, r#"{"data":{"installation":{"uuid":"x"}}}"#),
            (Resource::Issue, r#"{"data":{"issue":{"id":"1"}}}"#),
            (Resource::Error, r#"{"data":{"error":{"event_id":"e"}}}"#),
            (Resource::Comment, r#"{"data":{"comment_id":1,"issue_id":2}}"#),
            (Resource::EventAlert, r#"{"data":{"event":{},"triggered_rule":"r"}}"#),
            (Resource::MetricAlert, r#"{"data":{"metric_alert":{"id":"1"}}}"#),
        ];
        for (resource, body) in bodies {
            let body: serde_json::Value = serde_json::from_str(body).unwrap();
            for (other, _) in bodies {
                assert_eq!(other.carried_by(&body), other == resource, "{other} in a {resource} body");
            }
        }
        assert!(!Resource::Issue.carried_by(&serde_json::json!({"data": {"issue": null}})));
        assert!(!Resource::Issue.carried_by(&serde_json::json!({"issue": {}})));
    }
}
