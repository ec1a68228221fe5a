//! Fault switches: what the next calls to a simulated provider should suffer.

use serde::{Deserialize, Serialize};

use super::{ControlError, Provider};

/// The fault switches currently set on one provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Faults {
    /// The next N token-endpoint calls are processed (tokens rotate and are stored as issued)
    /// and their response is then lost: the connection closes before any byte of it is sent.
    pub drop_next_token_responses: u32,
    /// Every token-endpoint response is held this long after processing.
    pub token_delay_ms: u64,
    /// Token and API calls answer this status with the provider's error body.
    pub outage: Option<Outage>,
    /// Token and API calls are rate limited (429, or MYOB's 403 `RateLimitError`).
    pub rate_limit: Option<RateLimit>,
    /// The next N successful refreshes answer without a `refresh_token`; nothing rotates.
    pub omit_refresh_token_next: u32,
    /// The next consent approval links this existing account instead of creating one.
    pub next_account: Option<String>,
    /// Overrides [`super::Rules::auto_approve`] for this provider.
    pub auto_approve: Option<bool>,
    /// Every admitted data-API call is held this long, counted as in flight, before it answers.
    pub api_delay_ms: u64,
    /// The next data-API calls answer with this provider's error body for a status and code.
    pub api_error: Option<ApiErrorFault>,
    /// Overrides [`super::Rules::enforce_api_rate_limits`] for this provider.
    pub enforce_api_rate_limits: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    pub status: u16,
    /// How many calls fail; absent means until the faults are cleared.
    #[serde(default)]
    pub count: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub retry_after_secs: u64,
    /// How many calls are refused; absent means until the faults are cleared.
    #[serde(default)]
    pub count: Option<u32>,
}

/// Data-API calls answer with the provider's own error body for `status` (and `code`, where
/// the provider has several bodies for one status). What `code` selects is listed per provider
/// in the [module docs](super); an unknown status or code gets the provider's generic error
/// body for the status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiErrorFault {
    /// 400-599; QuickBooks also takes 200 with a `code` (its Fault inside an HTTP 200).
    pub status: u16,
    #[serde(default)]
    pub code: Option<String>,
    /// How many calls fail; absent means until the faults are cleared.
    #[serde(default)]
    pub count: Option<u32>,
}

/// A change to the fault switches: fields left out keep their current value.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultUpdate {
    pub drop_next_token_responses: Option<u32>,
    pub token_delay_ms: Option<u64>,
    pub outage: Option<Outage>,
    pub rate_limit: Option<RateLimit>,
    pub omit_refresh_token_next: Option<u32>,
    pub next_account: Option<String>,
    pub auto_approve: Option<bool>,
    pub api_delay_ms: Option<u64>,
    /// A `count` of 0 clears the fault.
    pub api_error: Option<ApiErrorFault>,
    pub enforce_api_rate_limits: Option<bool>,
}

/// A fault that answers a call in place of the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EndpointFault {
    Outage(u16),
    RateLimited { retry_after_secs: u64 },
}

impl Faults {
    /// Applies `update` to `provider`'s switches, or nothing when a value is invalid; account
    /// ids are checked by the caller, which knows the accounts.
    pub(crate) fn apply(&mut self, provider: Provider, update: FaultUpdate) -> Result<(), ControlError> {
        if let Some(outage) = &update.outage
            && !(400..=599).contains(&outage.status)
        {
            return Err(ControlError::InvalidValue(format!(
                "outage.status must be an HTTP error status (400-599), got {}",
                outage.status
            )));
        }
        if let Some(error) = &update.api_error {
            validate_api_error(provider, error)?;
        }
        if let Some(n) = update.drop_next_token_responses {
            self.drop_next_token_responses = n;
        }
        if let Some(ms) = update.token_delay_ms {
            self.token_delay_ms = ms;
        }
        if let Some(outage) = update.outage {
            self.outage = (outage.count != Some(0)).then_some(outage);
        }
        if let Some(limit) = update.rate_limit {
            self.rate_limit = (limit.count != Some(0)).then_some(limit);
        }
        if let Some(n) = update.omit_refresh_token_next {
            self.omit_refresh_token_next = n;
        }
        if let Some(account) = update.next_account {
            self.next_account = Some(account);
        }
        if let Some(auto) = update.auto_approve {
            self.auto_approve = Some(auto);
        }
        if let Some(ms) = update.api_delay_ms {
            self.api_delay_ms = ms;
        }
        if let Some(error) = update.api_error {
            self.api_error = (error.count != Some(0)).then_some(error);
        }
        if let Some(enforce) = update.enforce_api_rate_limits {
            self.enforce_api_rate_limits = Some(enforce);
        }
        Ok(())
    }

    /// The `api_error` answering the current data-API call, if any, counting it down.
    pub(crate) fn take_api_error(&mut self) -> Option<ApiErrorFault> {
        let error = self.api_error.as_mut()?;
        let taken = error.clone();
        if let Some(count) = &mut error.count {
            *count -= 1;
            if *count == 0 {
                self.api_error = None;
            }
        }
        Some(taken)
    }

    /// The fault that answers the current call, if any, counting it down. An outage wins over
    /// a rate limit, as a provider that is down does not count requests.
    pub(crate) fn take_endpoint_fault(&mut self) -> Option<EndpointFault> {
        if let Some(outage) = &mut self.outage {
            let fault = EndpointFault::Outage(outage.status);
            if let Some(count) = &mut outage.count {
                *count -= 1;
                if *count == 0 {
                    self.outage = None;
                }
            }
            return Some(fault);
        }
        if let Some(limit) = &mut self.rate_limit {
            let fault = EndpointFault::RateLimited { retry_after_secs: limit.retry_after_secs };
            if let Some(count) = &mut limit.count {
                *count -= 1;
                if *count == 0 {
                    self.rate_limit = None;
                }
            }
            return Some(fault);
        }
        None
    }

    /// Counts down `drop_next_token_responses`; true when this response is to be lost.
    pub(crate) fn take_drop(&mut self) -> bool {
        let drop = self.drop_next_token_responses > 0;
        self.drop_next_token_responses = self.drop_next_token_responses.saturating_sub(1);
        drop
    }

    /// Counts down `omit_refresh_token_next`; true when this refresh answers without one.
    pub(crate) fn take_omit_refresh_token(&mut self) -> bool {
        let omit = self.omit_refresh_token_next > 0;
        self.omit_refresh_token_next = self.omit_refresh_token_next.saturating_sub(1);
        omit
    }
}

fn validate_api_error(provider: Provider, error: &ApiErrorFault) -> Result<(), ControlError> {
    let invalid = |message: String| Err(ControlError::InvalidValue(message));
    if error.code.as_deref().is_some_and(|code| code.trim().is_empty()) {
        return invalid("api_error.code must not be empty; leave it out for the status's usual body".into());
    }
    match (provider, error.status, &error.code) {
        (_, 400..=599, _) | (Provider::QuickBooks, 200, Some(_)) => Ok(()),
        (Provider::QuickBooks, 200, None) => invalid(
            "api_error.code is required with status 200: it names the QuickBooks Fault sent inside the HTTP 200"
                .into(),
        ),
        (Provider::QuickBooks, status @ 201..=399, _) => invalid(format!(
            "api_error.status must be 200 (with a code) or 400-599 for quickbooks, got {status}"
        )),
        (_, status @ 200..=399, _) => invalid(format!(
            "api_error.status must be 400-599 for {provider} (only QuickBooks answers errors with an HTTP 200), got {status}"
        )),
        (_, status, _) => {
            invalid(format!("api_error.status must be an HTTP status from 200 to 599, got {status}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counted_outage_ends_after_its_count() {
        let mut faults = Faults::default();
        faults
            .apply(
                Provider::Xero,
                FaultUpdate { outage: Some(Outage { status: 503, count: Some(2) }), ..Default::default() },
            )
            .unwrap();
        assert_eq!(faults.take_endpoint_fault(), Some(EndpointFault::Outage(503)));
        assert_eq!(faults.take_endpoint_fault(), Some(EndpointFault::Outage(503)));
        assert_eq!(faults.take_endpoint_fault(), None);
    }

    #[test]
    fn an_uncounted_rate_limit_lasts_until_cleared() {
        let mut faults = Faults::default();
        faults
            .apply(
                Provider::Xero,
                FaultUpdate {
                    rate_limit: Some(RateLimit { retry_after_secs: 7, count: None }),
                    ..Default::default()
                },
            )
            .unwrap();
        for _ in 0..10 {
            assert_eq!(
                faults.take_endpoint_fault(),
                Some(EndpointFault::RateLimited { retry_after_secs: 7 })
            );
        }
    }

    #[test]
    fn an_outage_status_outside_the_error_range_is_refused() {
        let mut faults = Faults::default();
        let result = faults.apply(
            Provider::Xero,
            FaultUpdate { outage: Some(Outage { status: 200, count: None }), ..Default::default() },
        );
        assert!(matches!(result, Err(ControlError::InvalidValue(_))));
        assert_eq!(faults, Faults::default());
    }

    fn api_error(status: u16, code: Option<&str>, count: Option<u32>) -> FaultUpdate {
        let code = code.map(str::to_owned);
        FaultUpdate { api_error: Some(ApiErrorFault { status, code, count }), ..Default::default() }
    }

    #[test]
    fn a_counted_api_error_ends_after_its_count_and_a_zero_count_clears_it() {
        let mut faults = Faults::default();
        faults.apply(Provider::Myob, api_error(409, None, Some(2))).unwrap();
        assert_eq!(faults.take_api_error().map(|e| e.status), Some(409));
        assert_eq!(faults.take_api_error().map(|e| e.status), Some(409));
        assert_eq!(faults.take_api_error(), None);

        faults.apply(Provider::Myob, api_error(504, None, None)).unwrap();
        faults.apply(Provider::Myob, api_error(504, None, Some(0))).unwrap();
        assert_eq!(faults.api_error, None);
    }

    #[test]
    fn only_quickbooks_takes_an_api_error_with_status_200_and_only_with_a_code() {
        let refused = |provider, update| {
            let mut faults = Faults::default();
            match faults.apply(provider, update) {
                Err(ControlError::InvalidValue(message)) => message,
                other => panic!("expected a refusal, got {other:?}"),
            }
        };
        assert!(Faults::default().apply(Provider::QuickBooks, api_error(200, Some("6240"), None)).is_ok());
        assert!(
            refused(Provider::QuickBooks, api_error(200, None, None)).contains("api_error.code is required")
        );
        assert!(
            refused(Provider::Xero, api_error(200, Some("x"), None)).contains("must be 400-599 for xero")
        );
        assert!(refused(Provider::Myob, api_error(600, None, None)).contains("from 200 to 599, got 600"));
        assert!(refused(Provider::Myob, api_error(99, None, None)).contains("got 99"));
        assert!(refused(Provider::Xero, api_error(400, Some(" "), None)).contains("must not be empty"));
    }
}
