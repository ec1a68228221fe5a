//! Fault switches: what the next requests to a simulated instance should suffer.

use serde::{Deserialize, Serialize};

use super::ControlError;

/// The fault switches currently set on an instance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Faults {
    /// Every admitted login and entity request is held this long, counted as in flight.
    pub request_delay_ms: u64,
    /// Logins, logouts and entity requests answer this status with a gateway's HTML page.
    pub outage: Option<Outage>,
    /// Logins with valid credentials answer "API Login Limit", as when the licence's API users
    /// are all signed in.
    pub login_limit: Option<LoginLimit>,
    /// Logins and entity requests answer 429, as when the licence's request limits are reached.
    pub rate_limit: Option<RateLimit>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    /// 400-599.
    pub status: u16,
    /// How many requests fail; absent means until the faults are cleared, 0 clears it.
    #[serde(default)]
    pub count: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginLimit {
    /// How many logins are refused; absent means until the faults are cleared, 0 clears it.
    #[serde(default)]
    pub count: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sent as `Retry-After` when given; the real instance documents no such header.
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
    /// How many requests are refused; absent means until the faults are cleared, 0 clears it.
    #[serde(default)]
    pub count: Option<u32>,
}

/// A change to the fault switches: fields left out keep their current value.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultUpdate {
    pub request_delay_ms: Option<u64>,
    pub outage: Option<Outage>,
    pub login_limit: Option<LoginLimit>,
    pub rate_limit: Option<RateLimit>,
}

/// Counts a counted fault down; true when it answers this request. `None` means until cleared.
fn take(count: &mut Option<u32>) -> (bool, bool) {
    match count {
        None => (true, false),
        Some(0) => (false, true),
        Some(n) => {
            *n -= 1;
            (true, *n == 0)
        }
    }
}

impl Faults {
    /// Applies `update`, or nothing when a value is invalid.
    pub(crate) fn apply(&mut self, update: FaultUpdate) -> Result<(), ControlError> {
        if let Some(outage) = &update.outage
            && !(400..=599).contains(&outage.status)
        {
            return Err(ControlError::InvalidValue(format!(
                "outage.status must be an HTTP error status (400-599), got {}",
                outage.status
            )));
        }
        if let Some(ms) = update.request_delay_ms {
            self.request_delay_ms = ms;
        }
        if let Some(outage) = update.outage {
            self.outage = (outage.count != Some(0)).then_some(outage);
        }
        if let Some(limit) = update.login_limit {
            self.login_limit = (limit.count != Some(0)).then_some(limit);
        }
        if let Some(limit) = update.rate_limit {
            self.rate_limit = (limit.count != Some(0)).then_some(limit);
        }
        Ok(())
    }

    /// The outage status answering this request, if any, counting it down.
    pub(crate) fn take_outage(&mut self) -> Option<u16> {
        let outage = self.outage.as_mut()?;
        let status = outage.status;
        let (hit, spent) = take(&mut outage.count);
        if spent {
            self.outage = None;
        }
        hit.then_some(status)
    }

    /// The rate limit answering this request, if any (with its `Retry-After`), counting it down.
    pub(crate) fn take_rate_limit(&mut self) -> Option<Option<u64>> {
        let limit = self.rate_limit.as_mut()?;
        let retry_after = limit.retry_after_secs;
        let (hit, spent) = take(&mut limit.count);
        if spent {
            self.rate_limit = None;
        }
        hit.then_some(retry_after)
    }

    /// True when this login is refused with "API Login Limit", counting the fault down.
    pub(crate) fn take_login_limit(&mut self) -> bool {
        let Some(limit) = self.login_limit.as_mut() else { return false };
        let (hit, spent) = take(&mut limit.count);
        if spent {
            self.login_limit = None;
        }
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counted_fault_ends_after_its_count_and_an_uncounted_one_lasts() {
        let mut faults = Faults::default();
        faults
            .apply(FaultUpdate {
                outage: Some(Outage { status: 503, count: Some(2) }),
                login_limit: Some(LoginLimit { count: None }),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(faults.take_outage(), Some(503));
        assert_eq!(faults.take_outage(), Some(503));
        assert_eq!(faults.take_outage(), None);
        assert_eq!(faults.outage, None);
        for _ in 0..5 {
            assert!(faults.take_login_limit());
        }
    }

    #[test]
    fn a_zero_count_clears_a_fault_and_a_bad_status_changes_nothing() {
        let mut faults = Faults::default();
        let limit = |count| FaultUpdate {
            rate_limit: Some(RateLimit { retry_after_secs: Some(3), count }),
            ..Default::default()
        };
        faults.apply(limit(None)).unwrap();
        assert_eq!(faults.take_rate_limit(), Some(Some(3)));
        faults.apply(limit(Some(0))).unwrap();
        assert_eq!(faults.take_rate_limit(), None);

        let bad = FaultUpdate {
            request_delay_ms: Some(5),
            outage: Some(Outage { status: 200, count: None }),
            ..Default::default()
        };
        assert!(matches!(faults.apply(bad), Err(ControlError::InvalidValue(_))));
        assert_eq!(faults, Faults::default());
    }
}
