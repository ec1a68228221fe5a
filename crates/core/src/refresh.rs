//! When to refresh a token, and how long to wait after a failure. Pure arithmetic: the caller
//! passes the time and a random number, so every rule is tested without sleeping.

use std::time::Duration;

use crate::Timestamp;

#[derive(Clone, Debug)]
pub struct RefreshPolicy {
    /// Refresh when less than this share of the access token's lifetime remains…
    pub lead_fraction: f64,
    /// …but never earlier than this before expiry.
    pub max_lead: Duration,
    /// Up to this share of the lead is taken off at random, so tokens issued together do not
    /// all refresh in the same instant.
    pub jitter_fraction: f64,
    /// Refresh tokens are exercised after this share of their idle lifetime, at the latest.
    pub keepalive_fraction: f64,
    /// First retry delay after a transient failure; doubles per consecutive failure.
    pub backoff_base: Duration,
    /// Longest retry delay while the access token is still good for a while.
    pub backoff_cap: Duration,
    /// Longest retry delay once the access token has expired or is about to: the connection
    /// must come back within seconds of the cause going away.
    pub backoff_cap_expiring: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            lead_fraction: 0.25,
            max_lead: Duration::from_secs(5 * 60),
            jitter_fraction: 0.2,
            keepalive_fraction: 0.25,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(5 * 60),
            backoff_cap_expiring: Duration::from_secs(15),
        }
    }
}

impl RefreshPolicy {
    /// How long before expiry the refresh should happen, without jitter.
    pub fn lead(&self, lifetime: Duration) -> Duration {
        lifetime.mul_f64(self.lead_fraction).min(self.max_lead)
    }

    /// When to refresh next, given a fresh access token. `random` is uniform in `[0, 1)`.
    pub fn next_refresh_at(
        &self,
        now: Timestamp,
        access_expires_at: Timestamp,
        refresh_idle_lifetime: Option<Duration>,
        random: f64,
    ) -> Timestamp {
        let lifetime = Duration::from_millis((access_expires_at.as_millis() - now.as_millis()).max(0) as u64);
        let lead = self.lead(lifetime);
        let jitter = lead.mul_f64(self.jitter_fraction * random.clamp(0.0, 1.0));
        let ahead = lead + jitter;
        let mut due = Timestamp::from_millis(access_expires_at.as_millis() - ahead.as_millis() as i64);
        if let Some(idle) = refresh_idle_lifetime {
            due = due.min(now.saturating_add(idle.mul_f64(self.keepalive_fraction)));
        }
        due.max(now)
    }

    /// Whether a caller asking for the access token should wait for a refresh rather than take
    /// the current one: it has expired, or so little of it is left that the caller could not
    /// use it.
    pub fn needs_refresh_now(&self, now: Timestamp, issued_at: Timestamp, expires_at: Timestamp) -> bool {
        let lifetime = (expires_at.as_millis() - issued_at.as_millis()).max(0);
        let remaining = expires_at.as_millis() - now.as_millis();
        // A tenth of the lifetime, at most a minute: enough for one API call.
        let threshold = (lifetime / 10).min(60_000);
        remaining <= threshold
    }

    /// Delay before the next attempt after `failures` consecutive transient failures (1 for the
    /// first). `random` is uniform in `[0, 1)`; the delay is spread over its upper half.
    pub fn backoff(
        &self,
        failures: u32,
        now: Timestamp,
        access_expires_at: Option<Timestamp>,
        random: f64,
    ) -> Duration {
        let exponent = failures.saturating_sub(1).min(20);
        let raw = self.backoff_base.saturating_mul(1u32 << exponent);
        let expiring = access_expires_at.is_none_or(|exp| {
            exp.as_millis() - now.as_millis() <= self.backoff_cap_expiring.as_millis() as i64 * 2
        });
        let cap = if expiring { self.backoff_cap_expiring } else { self.backoff_cap };
        let capped = raw.min(cap);
        capped.mul_f64(0.5 + 0.5 * random.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_000_000_000);
    const MIN: u64 = 60_000;

    fn at(offset_ms: i64) -> Timestamp {
        Timestamp::from_millis(NOW.as_millis() + offset_ms)
    }

    #[test]
    fn a_thirty_minute_token_refreshes_five_minutes_ahead() {
        let p = RefreshPolicy::default();
        let due = p.next_refresh_at(NOW, at(30 * MIN as i64), None, 0.0);
        assert_eq!(due, at(25 * MIN as i64));
        let jittered = p.next_refresh_at(NOW, at(30 * MIN as i64), None, 0.999);
        assert!(jittered < due && jittered >= at(24 * MIN as i64), "jitter takes up to 20% of the lead");
    }

    #[test]
    fn short_lived_tokens_refresh_at_a_quarter_of_their_life() {
        let p = RefreshPolicy::default();
        assert_eq!(p.next_refresh_at(NOW, at(4_000), None, 0.0), at(3_000));
        assert_eq!(p.next_refresh_at(NOW, at(3_600_000), None, 0.0), at(3_300_000));
    }

    #[test]
    fn long_lived_tokens_are_still_exercised_before_the_refresh_token_idles_out() {
        let p = RefreshPolicy::default();
        let year = 365 * 24 * 60 * MIN as i64;
        let idle = Duration::from_secs(60 * 24 * 3600);
        let due = p.next_refresh_at(NOW, at(year), Some(idle), 0.0);
        assert_eq!(due, NOW.saturating_add(Duration::from_secs(15 * 24 * 3600)));
    }

    #[test]
    fn an_expired_token_is_due_now() {
        let p = RefreshPolicy::default();
        assert_eq!(p.next_refresh_at(NOW, at(-5_000), None, 0.5), NOW);
        assert!(p.needs_refresh_now(NOW, at(-30 * MIN as i64), at(-1)));
    }

    #[test]
    fn callers_wait_only_when_little_of_the_token_is_left() {
        let p = RefreshPolicy::default();
        let issued = at(-29 * MIN as i64);
        assert!(!p.needs_refresh_now(NOW, at(-20 * MIN as i64), at(10 * MIN as i64)));
        assert!(p.needs_refresh_now(NOW, issued, at(59_000)));
        assert!(!p.needs_refresh_now(NOW, issued, at(61_000)));
        // A 4-second token: wait only in its last 400 ms.
        assert!(!p.needs_refresh_now(NOW, at(-3_000), at(1_000)));
        assert!(p.needs_refresh_now(NOW, at(-3_700), at(300)));
    }

    #[test]
    fn backoff_doubles_and_is_capped_lower_once_the_token_is_expiring() {
        let p = RefreshPolicy::default();
        let healthy = Some(at(20 * MIN as i64));
        assert_eq!(p.backoff(1, NOW, healthy, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(4, NOW, healthy, 1.0), Duration::from_secs(8));
        assert_eq!(p.backoff(30, NOW, healthy, 1.0), Duration::from_secs(300));
        assert_eq!(p.backoff(30, NOW, Some(at(-1)), 1.0), Duration::from_secs(15));
        assert_eq!(p.backoff(30, NOW, None, 1.0), Duration::from_secs(15));
        assert_eq!(p.backoff(30, NOW, Some(at(-1)), 0.0), Duration::from_millis(7_500));
    }
}
