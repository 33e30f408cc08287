//! What happens to a delivery that could not be applied: tried again after
//! a backoff, or parked as dead once retrying cannot help.

use crate::store::{ClaimedDelivery, DeliveryOutcome};

/// Attempts before a delivery is parked as dead.
pub const MAX_ATTEMPTS: i64 = 8;

/// A failure that may pass: tried again after a backoff, or parked as dead
/// once the attempts run out.
pub fn retry_or_give_up(delivery: &ClaimedDelivery, error: String) -> DeliveryOutcome {
    if delivery.attempts < MAX_ATTEMPTS {
        DeliveryOutcome::Retry { after_ms: backoff_ms(delivery.attempts), error }
    } else {
        DeliveryOutcome::Dead { error: format!("gave up after {} attempts: {error}", delivery.attempts) }
    }
}

/// 1 s, 2 s, 4 s … (capped at 10 minutes, which [`MAX_ATTEMPTS`] never
/// reaches: the last retry waits 64 s, about two minutes after the first).
pub fn backoff_ms(attempts: i64) -> i64 {
    (1000i64 << attempts.clamp(1, 20).saturating_sub(1)).min(600_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff_ms(1), 1000);
        assert_eq!(backoff_ms(2), 2000);
        assert_eq!(backoff_ms(4), 8000);
        assert_eq!(backoff_ms(30), 600_000);
    }

    #[test]
    fn failures_are_retried_until_the_attempts_run_out() {
        let delivery = |attempts| ClaimedDelivery {
            id: 1,
            received_at: 0,
            resource: "issue".into(),
            action: None,
            installation_uuid: None,
            headers: "{}".into(),
            body: Vec::new(),
            attempts,
        };
        assert_eq!(
            retry_or_give_up(&delivery(3), "busy".into()),
            DeliveryOutcome::Retry { after_ms: 4000, error: "busy".into() }
        );
        assert_eq!(
            retry_or_give_up(&delivery(MAX_ATTEMPTS), "busy".into()),
            DeliveryOutcome::Dead { error: "gave up after 8 attempts: busy".into() }
        );
    }
}
