//! What every data-API call goes through, whatever the provider: counting per external account
//! (requests, calls in flight and their peak), the providers' published limits, the
//! `api_delay_ms` hold and the `api_error` fault. Each provider module authenticates the call,
//! renders refusals and errors in its own shapes, and serves the resource.
//!
//! Limits, per provider:
//!
//! | | concurrent | rolling windows |
//! | --- | --- | --- |
//! | Xero | 5 per tenant | 60/min and 5000/day per tenant, 10 000/min per app |
//! | QuickBooks | 10 per realm | 500/min per realm |
//! | MYOB | — | 8 per second per API key |
//!
//! Minute and day windows run on the injected [`ledgerlink_core::Clock`], so a `ManualClock`
//! walks past them. The one-second window runs on tokio's monotonic clock: a client paces
//! itself in real time there, and a clock that never moves would refuse it forever. Only
//! admitted calls count towards a window; a refused call takes nothing from the quota.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use axum::response::Response;
use ledgerlink_core::Timestamp;

use super::faults::ApiErrorFault;
use super::state::ProviderState;
use super::{Provider, Simulator};

const SECOND_MS: i64 = 1_000;
const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// Who a data-API call is for, once authenticated.
pub(crate) struct Caller {
    /// The external account: Xero tenant, QuickBooks realm, MYOB company file.
    pub account: String,
    /// What app-wide limits are counted by: the client id (Xero), the API key (MYOB).
    pub client: String,
}

/// The response that ends a call before it reaches the resource (boxed: responses are large).
pub(crate) struct Rejection(Box<Response>);

impl From<Response> for Rejection {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

/// A limit a call ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    Concurrent,
    Second,
    Minute,
    Day,
    AppMinute,
}

impl Limit {
    /// Xero's `X-Rate-Limit-Problem` value (Xero has no per-second limit).
    pub(crate) fn xero_problem(self) -> &'static str {
        match self {
            Self::Concurrent => "concurrent",
            Self::Second | Self::Minute => "minute",
            Self::Day => "day",
            Self::AppMinute => "appminute",
        }
    }
}

/// A call refused by an enforced limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    pub limit: Limit,
    /// When the limit lets a call through again (at least 1 s).
    pub retry_after_secs: u64,
}

/// What is left of Xero's windows after this call (its `X-*Limit-Remaining` headers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Remaining {
    pub minute: u32,
    pub day: u32,
    pub app_minute: u32,
}

/// A call past the limits: now in flight until its [`InFlight`] guard drops.
pub(crate) struct Admitted {
    pub remaining: Remaining,
    pub delay: Duration,
    /// The `api_error` fault answering this call instead of the resource.
    pub error: Option<ApiErrorFault>,
}

/// A provider's published limits; `None` where it documents none.
#[derive(Clone, Copy)]
struct Limits {
    concurrent_per_account: Option<u32>,
    per_account_minute: Option<u32>,
    per_account_day: Option<u32>,
    per_client_minute: Option<u32>,
    per_client_second: Option<u32>,
}

impl Limits {
    fn of(provider: Provider) -> Self {
        let none = Self {
            concurrent_per_account: None,
            per_account_minute: None,
            per_account_day: None,
            per_client_minute: None,
            per_client_second: None,
        };
        match provider {
            Provider::Xero => Self {
                concurrent_per_account: Some(5),
                per_account_minute: Some(60),
                per_account_day: Some(5000),
                per_client_minute: Some(10_000),
                ..none
            },
            Provider::QuickBooks => {
                Self { concurrent_per_account: Some(10), per_account_minute: Some(500), ..none }
            }
            Provider::Myob => Self { per_client_second: Some(8), ..none },
        }
    }
}

/// Timestamps (ms) of the calls a rolling window admitted, oldest first. Keeps at most as many
/// as the limit: one more could never change an answer.
#[derive(Default)]
struct Window {
    hits: VecDeque<i64>,
}

impl Window {
    /// Forgets calls older than `span`; returns how many are left.
    fn count(&mut self, now: i64, span: i64) -> u32 {
        while self.hits.front().is_some_and(|at| *at <= now - span) {
            self.hits.pop_front();
        }
        self.hits.len() as u32
    }

    /// Whole seconds until the oldest call leaves the window.
    fn retry_after(&self, now: i64, span: i64) -> u64 {
        let wait = self.hits.front().map_or(0, |oldest| oldest + span - now);
        (wait.max(1) as u64).div_ceil(1000)
    }

    fn record(&mut self, now: i64, cap: u32) {
        self.hits.push_back(now);
        while self.hits.len() > cap as usize {
            self.hits.pop_front();
        }
    }
}

#[derive(Default)]
struct AccountUsage {
    requests: u64,
    in_flight: u32,
    max_in_flight: u32,
    minute: Window,
    day: Window,
}

#[derive(Default)]
struct ClientUsage {
    minute: Window,
    second: Window,
}

/// One external account's counters, for stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AccountCounts {
    pub requests: u64,
    pub in_flight: u32,
    pub max_in_flight: u32,
}

/// The data-API traffic of one provider.
#[derive(Default)]
pub(crate) struct ApiUsage {
    accounts: HashMap<String, AccountUsage>,
    clients: HashMap<String, ClientUsage>,
    in_flight: u32,
    max_concurrent: u32,
}

impl ApiUsage {
    /// Counts a call and lets it in, or refuses it when `enforce` and a limit is reached.
    /// `clock_ms` is the injected clock, `monotonic_ms` tokio's.
    fn admit(
        &mut self,
        provider: Provider,
        enforce: bool,
        caller: &Caller,
        clock_ms: i64,
        monotonic_ms: i64,
    ) -> Result<Remaining, Refused> {
        let limits = Limits::of(provider);
        let account = self.accounts.entry(caller.account.clone()).or_default();
        let client = self.clients.entry(caller.client.clone()).or_default();
        account.requests += 1;

        if enforce
            && let Some(max) = limits.concurrent_per_account
            && account.in_flight >= max
        {
            return Err(Refused { limit: Limit::Concurrent, retry_after_secs: 1 });
        }
        // In the order a refusal names them: the longest wait first.
        let mut windows = [
            (Limit::Day, limits.per_account_day, &mut account.day, clock_ms, DAY_MS),
            (Limit::AppMinute, limits.per_client_minute, &mut client.minute, clock_ms, MINUTE_MS),
            (Limit::Minute, limits.per_account_minute, &mut account.minute, clock_ms, MINUTE_MS),
            (Limit::Second, limits.per_client_second, &mut client.second, monotonic_ms, SECOND_MS),
        ];
        let mut counts = [0u32; 4];
        for (i, (limit, max, window, now, span)) in windows.iter_mut().enumerate() {
            let Some(max) = *max else { continue };
            counts[i] = window.count(*now, *span);
            if enforce && counts[i] >= max {
                return Err(Refused { limit: *limit, retry_after_secs: window.retry_after(*now, *span) });
            }
        }
        for (i, (_, max, window, now, _)) in windows.iter_mut().enumerate() {
            if let Some(max) = *max {
                window.record(*now, max);
                counts[i] += 1;
            }
        }

        account.in_flight += 1;
        account.max_in_flight = account.max_in_flight.max(account.in_flight);
        self.max_concurrent = self.max_concurrent.max(account.in_flight);
        self.in_flight += 1;
        let left = |max: Option<u32>, count: u32| max.unwrap_or(0).saturating_sub(count);
        Ok(Remaining {
            day: left(limits.per_account_day, counts[0]),
            app_minute: left(limits.per_client_minute, counts[1]),
            minute: left(limits.per_account_minute, counts[2]),
        })
    }

    fn end(&mut self, account: &str) {
        if let Some(usage) = self.accounts.get_mut(account) {
            usage.in_flight = usage.in_flight.saturating_sub(1);
        }
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight
    }

    pub(crate) fn max_concurrent(&self) -> u32 {
        self.max_concurrent
    }

    pub(crate) fn account(&self, account: &str) -> AccountCounts {
        self.accounts.get(account).map_or_else(AccountCounts::default, |usage| AccountCounts {
            requests: usage.requests,
            in_flight: usage.in_flight,
            max_in_flight: usage.max_in_flight,
        })
    }
}

impl ProviderState {
    /// Admits an authenticated call (limits enforced per the rules or the fault override) and
    /// takes the faults that shape it. Counts refusals as rate limited.
    fn admit_api_call(
        &mut self,
        enforce_by_rule: bool,
        caller: &Caller,
        clock_ms: i64,
        monotonic_ms: i64,
    ) -> Result<Admitted, Refused> {
        let enforce = self.faults.enforce_api_rate_limits.unwrap_or(enforce_by_rule);
        match self.api.admit(self.provider, enforce, caller, clock_ms, monotonic_ms) {
            Err(refused) => {
                self.counters.rate_limited_responses += 1;
                tracing::debug!(provider = %self.provider, account = %caller.account, ?refused, "sandbox API limit");
                Err(refused)
            }
            Ok(remaining) => {
                let error = self.faults.take_api_error();
                if error.is_some() {
                    self.counters.api_error_responses += 1;
                }
                Ok(Admitted { remaining, delay: Duration::from_millis(self.faults.api_delay_ms), error })
            }
        }
    }
}

/// How one provider answers each stage of a data-API call.
pub(crate) struct Handlers<Auth, Refuse, Fail, Serve> {
    /// Endpoint faults, the bearer token, the tenant: who the call is for, or the refusal.
    pub authenticate: Auth,
    /// An enforced limit refused the call.
    pub refused: Refuse,
    /// The `api_error` fault answers the call.
    pub failed: Fail,
    /// The resource itself.
    pub serve: Serve,
}

/// Runs one data-API call through authentication, limits, the delay and the error fault.
pub(crate) async fn call<Auth, Refuse, Fail, Serve>(
    sim: &Simulator,
    provider: Provider,
    handlers: Handlers<Auth, Refuse, Fail, Serve>,
) -> Response
where
    Auth: FnOnce(&mut ProviderState, Timestamp) -> Result<Caller, Rejection>,
    Refuse: FnOnce(Refused) -> Response,
    Fail: FnOnce(&ApiErrorFault) -> Response,
    Serve: FnOnce(&mut ProviderState, Timestamp, &Caller, Remaining) -> Response,
{
    let Handlers { authenticate, refused, failed, serve } = handlers;
    let monotonic_ms = sim.monotonic_ms();
    let admission = sim.with_state(provider, |st, rules, now| {
        st.counters.api_requests += 1;
        let caller = authenticate(st, now)?;
        match st.admit_api_call(rules.enforce_api_rate_limits, &caller, now.as_millis(), monotonic_ms) {
            Ok(admitted) => Ok((caller, admitted)),
            Err(refusal) => Err(Rejection::from(refused(refusal))),
        }
    });
    let (caller, admitted) = match admission {
        Ok(admitted) => admitted,
        Err(Rejection(response)) => return *response,
    };
    // Built outside the lock (dropping it takes the lock) and before the first await, so the
    // call leaves the count however it ends, a client hanging up mid-delay included.
    let _in_flight = InFlight { sim: sim.clone(), provider, account: caller.account.clone() };
    if !admitted.delay.is_zero() {
        tokio::time::sleep(admitted.delay).await;
    }
    if let Some(error) = &admitted.error {
        return failed(error);
    }
    sim.with_state(provider, |st, _, now| serve(st, now, &caller, admitted.remaining))
}

/// Counts a data-API call as in flight for its account until dropped.
struct InFlight {
    sim: Simulator,
    provider: Provider,
    account: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.sim.with_state(self.provider, |st, _, _| st.api.end(&self.account));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(account: &str) -> Caller {
        Caller { account: account.into(), client: "app".into() }
    }

    #[test]
    fn xero_refuses_a_sixth_concurrent_call_for_one_tenant_but_not_for_another() {
        let mut usage = ApiUsage::default();
        for _ in 0..5 {
            usage.admit(Provider::Xero, true, &caller("t1"), 0, 0).unwrap();
        }
        let refused = usage.admit(Provider::Xero, true, &caller("t1"), 0, 0).unwrap_err();
        assert_eq!(refused, Refused { limit: Limit::Concurrent, retry_after_secs: 1 });
        usage.admit(Provider::Xero, true, &caller("t2"), 0, 0).unwrap();
        usage.end("t1");
        usage.admit(Provider::Xero, true, &caller("t1"), 0, 0).unwrap();
        assert_eq!(usage.account("t1"), AccountCounts { requests: 7, in_flight: 5, max_in_flight: 5 });
        assert_eq!((usage.in_flight(), usage.max_concurrent()), (6, 5));
    }

    #[test]
    fn without_enforcement_calls_are_counted_but_never_refused() {
        let mut usage = ApiUsage::default();
        for _ in 0..70 {
            usage.admit(Provider::Xero, false, &caller("t1"), 0, 0).unwrap();
        }
        assert_eq!(usage.account("t1").max_in_flight, 70);
        let remaining = usage.admit(Provider::Xero, false, &caller("t1"), 0, 0).unwrap();
        assert_eq!(remaining, Remaining { minute: 0, day: 4929, app_minute: 9929 });
    }

    #[test]
    fn the_minute_window_rolls_rather_than_resetting_on_the_minute() {
        let mut usage = ApiUsage::default();
        let mut call = |at_ms: i64| {
            let result = usage.admit(Provider::Xero, true, &caller("t1"), at_ms, 0);
            usage.end("t1");
            result
        };
        for i in 0..60 {
            call(30_000 + i).unwrap();
        }
        // A fixed window would open again at 60 000; a rolling one waits for the first call
        // to be a minute old.
        let refused = call(60_000).unwrap_err();
        assert_eq!(refused, Refused { limit: Limit::Minute, retry_after_secs: 30 });
        assert_eq!(call(90_000).unwrap().minute, 0, "one call left the window, one came in");
    }

    #[test]
    fn myob_allows_eight_calls_in_any_second_per_api_key() {
        let mut usage = ApiUsage::default();
        let key = |account: &str| Caller { account: account.into(), client: "key-1".into() };
        for i in 0..8 {
            usage.admit(Provider::Myob, true, &key(if i % 2 == 0 { "a" } else { "b" }), 0, 100 + i).unwrap();
        }
        let refused = usage.admit(Provider::Myob, true, &key("c"), 0, 900).unwrap_err();
        assert_eq!(refused, Refused { limit: Limit::Second, retry_after_secs: 1 });
        let other_key = Caller { account: "c".into(), client: "key-2".into() };
        usage.admit(Provider::Myob, true, &other_key, 0, 900).unwrap();
        usage.admit(Provider::Myob, true, &key("c"), 0, 1_100).unwrap();
    }

    #[test]
    fn quickbooks_allows_ten_concurrent_and_five_hundred_a_minute_per_realm() {
        let mut usage = ApiUsage::default();
        for _ in 0..10 {
            usage.admit(Provider::QuickBooks, true, &caller("r1"), 0, 0).unwrap();
        }
        assert_eq!(
            usage.admit(Provider::QuickBooks, true, &caller("r1"), 0, 0).unwrap_err().limit,
            Limit::Concurrent
        );
        for _ in 0..10 {
            usage.end("r1");
        }
        for _ in 10..500 {
            usage.admit(Provider::QuickBooks, true, &caller("r1"), 0, 0).unwrap();
            usage.end("r1");
        }
        let refused = usage.admit(Provider::QuickBooks, true, &caller("r1"), 0, 0).unwrap_err();
        assert_eq!(refused, Refused { limit: Limit::Minute, retry_after_secs: 60 });
    }
}
