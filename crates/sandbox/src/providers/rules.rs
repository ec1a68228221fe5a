//! Token lifetimes and rotation rules, with the real providers' values as defaults.

use std::time::Duration;

use super::Provider;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// How the simulated providers issue, rotate and expire tokens.
///
/// `Rules::default()` mirrors the real services; [`Rules::fast`] shrinks every lifetime to
/// seconds so tests and demos can walk through expiry, grace and rotation quickly.
#[derive(Clone, Debug)]
pub struct Rules {
    pub xero: XeroRules,
    pub quickbooks: QuickBooksRules,
    pub myob: MyobRules,
    /// How long an authorization code can be exchanged (all providers).
    pub authorization_code_lifetime: Duration,
    /// Approve consent at once by redirect instead of showing the consent page.
    pub auto_approve: bool,
    /// Enforce the providers' published data-API limits the way they do: Xero 5 concurrent,
    /// 60/min and 5000/day per tenant and 10 000/min per app (429 with `Retry-After` and
    /// `X-Rate-Limit-Problem`); QuickBooks 10 concurrent and 500/min per realm (429, fault
    /// 003001); MYOB 8/s per API key (403 `RateLimitError`). Calls are counted either way, and
    /// Xero's `X-*Limit-Remaining` headers sent. The `enforce_api_rate_limits` fault switch
    /// overrides this per provider at run time.
    pub enforce_api_rate_limits: bool,
}

#[derive(Clone, Debug)]
pub struct XeroRules {
    /// 30 minutes (`expires_in: 1800`).
    pub access_token_lifetime: Duration,
    /// A refresh token not used for this long expires: 60 days.
    pub refresh_token_idle_lifetime: Duration,
    /// How long a superseded refresh token stays usable: 30 minutes.
    pub grace_period: Duration,
}

#[derive(Clone, Debug)]
pub struct QuickBooksRules {
    /// 3600 s.
    pub access_token_lifetime: Duration,
    /// 100 days from the issue of the current value (`x_refresh_token_expires_in`).
    pub refresh_token_lifetime: Duration,
    /// A refresh within this long of the current value's issue returns the same value: 24 h.
    pub rotation_interval: Duration,
}

#[derive(Clone, Debug)]
pub struct MyobRules {
    /// 1200 s, sent as the JSON string `"1200"`.
    pub access_token_lifetime: Duration,
    /// Not documented by MYOB; one week is assumed.
    pub refresh_token_lifetime: Duration,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            xero: XeroRules {
                access_token_lifetime: 30 * MINUTE,
                refresh_token_idle_lifetime: 60 * DAY,
                grace_period: 30 * MINUTE,
            },
            quickbooks: QuickBooksRules {
                access_token_lifetime: HOUR,
                refresh_token_lifetime: 100 * DAY,
                rotation_interval: 24 * HOUR,
            },
            myob: MyobRules { access_token_lifetime: 20 * MINUTE, refresh_token_lifetime: 7 * DAY },
            authorization_code_lifetime: 5 * MINUTE,
            auto_approve: false,
            enforce_api_rate_limits: true,
        }
    }
}

impl Rules {
    /// Lifetimes in seconds, consent approved automatically, API limits not enforced (turn them
    /// on per provider with the `enforce_api_rate_limits` fault switch): access
    /// tokens live 2 s, Xero's grace is 5 s, QuickBooks changes its refresh token value after 1 s,
    /// refresh tokens expire after 120 s without use.
    pub fn fast() -> Self {
        let access = Duration::from_secs(2);
        let refresh = Duration::from_secs(120);
        Self {
            xero: XeroRules {
                access_token_lifetime: access,
                refresh_token_idle_lifetime: refresh,
                grace_period: Duration::from_secs(5),
            },
            quickbooks: QuickBooksRules {
                access_token_lifetime: access,
                refresh_token_lifetime: refresh,
                rotation_interval: Duration::from_secs(1),
            },
            myob: MyobRules { access_token_lifetime: access, refresh_token_lifetime: refresh },
            authorization_code_lifetime: 5 * MINUTE,
            auto_approve: true,
            enforce_api_rate_limits: false,
        }
    }

    pub fn with_auto_approve(mut self, auto_approve: bool) -> Self {
        self.auto_approve = auto_approve;
        self
    }

    pub fn with_api_rate_limits(mut self, enforce: bool) -> Self {
        self.enforce_api_rate_limits = enforce;
        self
    }

    pub fn with_access_token_lifetime(mut self, provider: Provider, lifetime: Duration) -> Self {
        match provider {
            Provider::Xero => self.xero.access_token_lifetime = lifetime,
            Provider::QuickBooks => self.quickbooks.access_token_lifetime = lifetime,
            Provider::Myob => self.myob.access_token_lifetime = lifetime,
        }
        self
    }

    /// Xero: the idle lifetime; QuickBooks and MYOB: the lifetime from issue.
    pub fn with_refresh_token_lifetime(mut self, provider: Provider, lifetime: Duration) -> Self {
        match provider {
            Provider::Xero => self.xero.refresh_token_idle_lifetime = lifetime,
            Provider::QuickBooks => self.quickbooks.refresh_token_lifetime = lifetime,
            Provider::Myob => self.myob.refresh_token_lifetime = lifetime,
        }
        self
    }

    pub fn with_xero_grace_period(mut self, grace: Duration) -> Self {
        self.xero.grace_period = grace;
        self
    }

    pub fn with_quickbooks_rotation_interval(mut self, interval: Duration) -> Self {
        self.quickbooks.rotation_interval = interval;
        self
    }

    pub fn access_token_lifetime(&self, provider: Provider) -> Duration {
        match provider {
            Provider::Xero => self.xero.access_token_lifetime,
            Provider::QuickBooks => self.quickbooks.access_token_lifetime,
            Provider::Myob => self.myob.access_token_lifetime,
        }
    }

    pub fn refresh_token_lifetime(&self, provider: Provider) -> Duration {
        match provider {
            Provider::Xero => self.xero.refresh_token_idle_lifetime,
            Provider::QuickBooks => self.quickbooks.refresh_token_lifetime,
            Provider::Myob => self.myob.refresh_token_lifetime,
        }
    }

    pub(crate) fn rotation(&self, provider: Provider) -> Rotation {
        match provider {
            Provider::Xero => Rotation::EveryRefreshWithGrace(self.xero.grace_period),
            Provider::QuickBooks => Rotation::ValueChangesAfter(self.quickbooks.rotation_interval),
            Provider::Myob => Rotation::EveryRefresh,
        }
    }
}

/// What happens to the refresh token on a successful refresh.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rotation {
    /// Xero: a new value each time; the superseded one stays usable for the grace period.
    EveryRefreshWithGrace(Duration),
    /// MYOB: a new value each time; the old one dies at once.
    EveryRefresh,
    /// QuickBooks: the same value until it is this old, then a new one and only that is valid.
    ValueChangesAfter(Duration),
}

/// Whole seconds for `expires_in`, rounding up so a sub-second lifetime never reads as 0.
pub(crate) fn whole_seconds(duration: Duration) -> u64 {
    duration.as_millis().div_ceil(1000) as u64
}
