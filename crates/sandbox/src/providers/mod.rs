//! Simulated Xero, QuickBooks Online and MYOB (AccountRight / Business) OAuth providers.
//!
//! One [`Simulator`] holds all three; [`router`] serves them, plus a control API, under paths
//! that mirror the real hosts (`/xero/identity/connect/token`, `/quickbooks/v3/company/…`,
//! `/myob/accountright/…`). The hub mounts the router under `/sandbox`; tests serve it alone.
//! [`Simulator::endpoints`] lists the URLs to configure the hub with, from any base URL.
//!
//! Each provider keeps its real token rules ([`Rules`]): Xero rotates refresh tokens on every
//! refresh and honours the superseded one for 30 minutes; QuickBooks changes the value about
//! daily and only the latest works; MYOB rotates without grace. Time comes from the injected
//! [`Clock`], so a `ManualClock` walks through lifetimes without sleeping.
//!
//! Fault switches ([`Faults`]) lose token responses after processing them, delay them, answer
//! outages and rate limits with each provider's bodies, omit refresh tokens, link the next
//! consent to an existing account, slow data-API calls down and fail them with each provider's
//! documented errors. Counters ([`ProviderStats`]) include the peak number of concurrent
//! refreshes of one grant, which the hub must keep at 1, and the peak number of data-API calls
//! in flight for one account, which a proxy must keep within the provider's limit.
//!
//! # Data APIs
//!
//! Relative to each `api_base_url`, authenticated like the real ones (the bearer token; Xero's
//! `xero-tenant-id`; MYOB's `x-myobapi-key`, while `x-myobapi-version` is not checked), with
//! each provider's own 401 body for an unknown or expired token:
//!
//! | provider | paths |
//! | --- | --- |
//! | Xero | `Organisation` (GET; writes 501); `Contacts` (GET; PUT creates; POST creates, or updates by `ContactID`); `Contacts/{id}` (GET; POST updates); anything else 404 with Xero's line of plain text |
//! | QuickBooks | `company/{realm}/companyinfo/{realm}`; `…/query` (GET `?query=`, or POST with the query as the body): `select * \| count(*) from Customer [where Field = 'value'] [orderby …] [startposition n] [maxresults n]`, other entities empty; `…/customer` (POST), `…/customer/{id}` (GET); anything else 400 "Unsupported Operation" |
//! | MYOB | `{business}/Company` (GET); `{business}/Contact/Customer` (GET `{"Items","NextPageLink","Count"}`; POST answers 201 with `Location`); `…/Contact/Customer/{uid}` (GET); anything else 404 |
//!
//! Every account starts with three contacts (customers); what is created is kept, so a later
//! list shows it. Each of these calls, once authenticated, is counted for its account
//! ([`AccountInfo`]), checked against the provider's published limits (enforced when
//! [`Rules::enforce_api_rate_limits`], or the `enforce_api_rate_limits` switch, says so: Xero
//! 5 concurrent, 60/min and 5000/day per tenant → 429 with `Retry-After` and
//! `X-Rate-Limit-Problem`; QuickBooks 10 concurrent and 500/min per realm → 429 fault 003001;
//! MYOB 8 per second per API key → 403 `RateLimitError`), held `api_delay_ms` while counted in
//! flight, then answered by the `api_error` fault if one is set, else by the resource. The
//! discovery calls (Xero's connections, QuickBooks' userinfo, MYOB's company file list) only
//! count towards `api_requests` and answer the `outage` and `rate_limit` faults.
//!
//! # Control API (no auth; JSON; `{provider}` is `xero`, `quickbooks` or `myob`)
//!
//! - `GET|POST|DELETE /_control/{provider}/faults`: read, change ([`FaultUpdate`]), clear.
//! - `GET /_control/{provider}/stats`: [`ProviderStats`].
//! - `GET|POST /_control/{provider}/accounts`: list accounts, create one (`{"name"?}`).
//! - `POST /_control/{provider}/accounts/{id}/revoke`: revoke every grant of the account.
//! - `POST /_control/{provider}/accounts/{id}/expire-refresh-tokens`: their refresh tokens
//!   expire now.
//!
//! Errors are `{"error": {"code", "message"}}`: unknown provider or account 404, malformed
//! JSON or an unknown field 400, invalid values 422 (the message names the field and the rule).
//!
//! ## Fault switches (`POST …/faults`; fields left out keep their value)
//!
//! | field | effect |
//! | --- | --- |
//! | `drop_next_token_responses`: n | the next n token calls are processed, then their response is lost |
//! | `token_delay_ms`: ms | token responses are held this long |
//! | `outage`: `{"status": 400-599, "count"?}` | token and API calls answer this status |
//! | `rate_limit`: `{"retry_after_secs", "count"?}` | token and API calls are rate limited |
//! | `omit_refresh_token_next`: n | the next n refreshes answer without a refresh token |
//! | `next_account`: id | the next consent links this existing account |
//! | `auto_approve`: bool | overrides [`Rules::auto_approve`] |
//! | `api_delay_ms`: ms | every admitted data-API call is held this long, counted in flight |
//! | `api_error`: `{"status", "code"?, "count"?}` | the next `count` data-API calls (absent: until cleared; 0 clears it) answer with the error below |
//! | `enforce_api_rate_limits`: bool | overrides [`Rules::enforce_api_rate_limits`] for this provider |
//!
//! `api_error.status` is 400-599, or 200 with a `code` for QuickBooks (its Fault inside an HTTP
//! 200). What `code` selects, and what a status alone answers:
//!
//! - **Xero**: 400 `ValidationException` (`code`: the validation message); 401, 403 and 412
//!   problem documents (`code`: the `Detail`; defaults `AuthenticationUnsuccessful`,
//!   `AuthorizationUnsuccessful`, the precondition message); 404 plain text; 429 with
//!   `X-Rate-Limit-Problem` = `code` (`minute` by default, `Retry-After: 60`; `appminute` 60;
//!   `day` 3600; `concurrent` 1); 500 `UnknownErrorException`; 501
//!   `ApiMethodNotImplementedException`; 503 plain text (`code`: `maintenance` by default,
//!   `unavailable`, `organisation_offline`); any other status a problem document.
//! - **QuickBooks**: `code` 3200 (401 `AuthenticationFailed`), 3100 (403), 3001 or 003001 (429
//!   `ThrottleExceeded`), 610 (`Object Not Found`), 5010 (`Stale Object Error`), 6000 (business
//!   validation), 6240 (`Duplicate Name Exists Error`) with their own status, or 200; a status
//!   alone: 400 → 6000, 401 → 3200, 403 → 3100, 429 → 003001. Any other combination: a
//!   `ValidationFault` (4xx, code 2010 unless given) or `SystemFault` (5xx, code 10000 unless
//!   given) at that status.
//! - **MYOB**: `code` is the error's `Name`: 401 `OAuthTokenIsInvalid`; 403 `AccessDenied`
//!   (default), `RateLimitError` or `DeveloperInactive`; 404 `ResourceNotFound`; 409
//!   `ConcurrencyViolation` (a stale `RowVersion`); 410 `CompanyFileGone`; 418
//!   `CompanyFileUpgraded`; 423 `CompanyFileUpgradeInProgress`; 503 `ServiceUnavailable`; 504
//!   `GatewayTimeout`. Anything else: `{"Errors": [{"Name": code or the status's reason}]}`.
//!
//! ## Counters (`GET …/stats`, [`Simulator::stats`]; accounts: [`Simulator::account`])
//!
//! Besides the token counters: `api_requests`, `api_calls_in_flight` (now),
//! `max_concurrent_api_calls` (the peak for any one account), `rate_limited_responses` (the
//! `rate_limit` fault and enforced limits), `api_error_responses`; per account
//! `api_requests`, `api_calls_in_flight` and `max_concurrent_api_calls`.

mod api;
mod control;
mod faults;
mod http;
mod myob;
mod oauth;
mod quickbooks;
mod rules;
mod state;
mod stats;
mod tokens;
mod xero;

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ledgerlink_core::{Clock, Timestamp};
use serde::Serialize;

pub use faults::{ApiErrorFault, FaultUpdate, Faults, Outage, RateLimit};
pub use rules::{MyobRules, QuickBooksRules, Rules, XeroRules};
pub use state::ClientApp;
pub use stats::{AccountInfo, GrantStats, ProviderStats};

use state::ProviderState;

/// A simulated provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Xero,
    QuickBooks,
    Myob,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Xero, Provider::QuickBooks, Provider::Myob];

    /// The path segment and JSON name: `xero`, `quickbooks`, `myob`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Xero => "xero",
            Self::QuickBooks => "quickbooks",
            Self::Myob => "myob",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn display_name(self) -> &'static str {
        match self {
            Self::Xero => "Xero",
            Self::QuickBooks => "QuickBooks Online",
            Self::Myob => "MYOB",
        }
    }

    fn account_noun(self) -> &'static str {
        match self {
            Self::Xero => "organisation",
            Self::QuickBooks => "company",
            Self::Myob => "company file",
        }
    }

    fn account_name(self, serial: usize) -> String {
        match self {
            Self::Xero => format!("Demo Company {serial}"),
            Self::QuickBooks => format!("Sandbox Company {serial}"),
            Self::Myob => format!("Demo Business {serial}"),
        }
    }

    /// The consent forms' action, relative to the authorize URL so it works under any mount.
    fn decision_action(self) -> &'static str {
        match self {
            Self::Xero | Self::Myob => "authorize/decision",
            Self::QuickBooks => "oauth2/decision",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = ControlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| ControlError::UnknownProvider(s.to_owned()))
    }
}

/// What the control API and the `Simulator` control methods refuse.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("unknown provider {0:?}: expected xero, quickbooks or myob")]
    UnknownProvider(String),
    #[error("no {provider} account with id {id:?}")]
    UnknownAccount { provider: Provider, id: String },
    #[error("malformed JSON body: {0}")]
    MalformedBody(String),
    #[error("{0}")]
    InvalidValue(String),
}

impl ControlError {
    fn code(&self) -> &'static str {
        match self {
            Self::UnknownProvider(_) => "unknown_provider",
            Self::UnknownAccount { .. } => "unknown_account",
            Self::MalformedBody(_) => "malformed_json",
            Self::InvalidValue(_) => "invalid_value",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::UnknownProvider(_) | Self::UnknownAccount { .. } => StatusCode::NOT_FOUND,
            Self::MalformedBody(_) => StatusCode::BAD_REQUEST,
            Self::InvalidValue(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code(), "message": self.to_string()}});
        (self.status(), axum::Json(body)).into_response()
    }
}

/// The URLs (and the sandbox's default client credentials) the hub is configured with for one
/// simulated provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProviderEndpoints {
    pub authorize_url: String,
    pub token_url: String,
    /// Xero: the tenant list; QuickBooks: OpenID userinfo; MYOB: the company file list.
    pub connections_url: String,
    pub api_base_url: String,
    /// MYOB has no revocation endpoint.
    pub revoke_url: Option<String>,
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Endpoints {
    pub xero: ProviderEndpoints,
    pub quickbooks: ProviderEndpoints,
    pub myob: ProviderEndpoints,
}

impl Endpoints {
    pub fn get(&self, provider: Provider) -> &ProviderEndpoints {
        match provider {
            Provider::Xero => &self.xero,
            Provider::QuickBooks => &self.quickbooks,
            Provider::Myob => &self.myob,
        }
    }
}

/// The three simulated providers. Cheap to clone: clones share state.
///
/// Each provider's state sits behind its own mutex, held only for O(1) bookkeeping and never
/// across an `.await`.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

struct Inner {
    clock: Arc<dyn Clock>,
    /// The origin of the monotonic time that sub-minute API limits are counted in.
    started: tokio::time::Instant,
    rules: Rules,
    states: [Mutex<ProviderState>; 3],
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator").field("rules", &self.inner.rules).finish_non_exhaustive()
    }
}

impl Simulator {
    pub fn new(clock: Arc<dyn Clock>, rules: Rules) -> Self {
        let state = |p: Provider| Mutex::new(ProviderState::new(p, Self::default_client(p)));
        let states = [state(Provider::Xero), state(Provider::QuickBooks), state(Provider::Myob)];
        let started = tokio::time::Instant::now();
        Self { inner: Arc::new(Inner { clock, started, rules, states }) }
    }

    pub fn rules(&self) -> &Rules {
        &self.inner.rules
    }

    /// The app every simulated provider knows from the start (any redirect URI accepted).
    pub fn default_client(provider: Provider) -> ClientApp {
        ClientApp {
            client_id: format!("sandbox-{provider}-client-id"),
            client_secret: format!("sandbox-{provider}-client-secret"),
            redirect_uris: Vec::new(),
        }
    }

    /// Registers (or replaces) an app, e.g. the client id and secret from the hub's config.
    pub fn register_client(&self, provider: Provider, client: ClientApp) {
        self.with_state(provider, |st, _, _| st.clients.insert(client.client_id.clone(), client));
    }

    /// The URLs of the simulated providers when the router is served at `base`
    /// (e.g. `http://127.0.0.1:8080/sandbox`).
    pub fn endpoints(base: &str) -> Endpoints {
        let base = base.trim_end_matches('/');
        let client = |p: Provider| Self::default_client(p);
        let with_client = |p: Provider, urls: [String; 4], revoke: Option<String>| {
            let [authorize_url, token_url, connections_url, api_base_url] = urls;
            let ClientApp { client_id, client_secret, .. } = client(p);
            ProviderEndpoints {
                authorize_url,
                token_url,
                connections_url,
                api_base_url,
                revoke_url: revoke,
                client_id,
                client_secret,
            }
        };
        Endpoints {
            xero: with_client(
                Provider::Xero,
                [
                    format!("{base}/xero/identity/connect/authorize"),
                    format!("{base}/xero/identity/connect/token"),
                    format!("{base}/xero/connections"),
                    format!("{base}/xero/api.xro/2.0"),
                ],
                Some(format!("{base}/xero/identity/connect/revocation")),
            ),
            quickbooks: with_client(
                Provider::QuickBooks,
                [
                    format!("{base}/quickbooks/connect/oauth2"),
                    format!("{base}/quickbooks/oauth2/v1/tokens/bearer"),
                    format!("{base}/quickbooks/v1/openid_connect/userinfo"),
                    format!("{base}/quickbooks/v3"),
                ],
                Some(format!("{base}/quickbooks/v2/oauth2/tokens/revoke")),
            ),
            myob: with_client(
                Provider::Myob,
                [
                    format!("{base}/myob/oauth2/account/authorize"),
                    format!("{base}/myob/oauth2/v1/authorize"),
                    format!("{base}/myob/accountright/"),
                    format!("{base}/myob/accountright"),
                ],
                None,
            ),
        }
    }

    pub fn stats(&self, provider: Provider) -> ProviderStats {
        self.with_state(provider, |st, _, _| st.stats())
    }

    /// `(successful refreshes, invalid_grant answers)` without listing every grant: cheap
    /// enough to poll while thousands of grants refresh (benchmarks).
    pub fn refresh_counts(&self, provider: Provider) -> (u64, u64) {
        self.with_state(provider, |st, _, _| (st.counters.refreshes, st.counters.invalid_grants))
    }

    pub fn faults(&self, provider: Provider) -> Faults {
        self.with_state(provider, |st, _, _| st.faults.clone())
    }

    /// Changes the fault switches named in `update`; returns them all.
    pub fn set_faults(&self, provider: Provider, update: FaultUpdate) -> Result<Faults, ControlError> {
        self.with_state(provider, |st, _, _| {
            if let Some(id) = &update.next_account
                && st.account(id).is_none()
            {
                return Err(ControlError::UnknownAccount { provider, id: id.clone() });
            }
            st.faults.apply(provider, update)?;
            Ok(st.faults.clone())
        })
    }

    pub fn clear_faults(&self, provider: Provider) {
        self.with_state(provider, |st, _, _| st.faults = Faults::default());
    }

    /// Creates an external account (named like the consent flow's unless `name` is given), for
    /// example to link it through `next_account`.
    pub fn create_account(&self, provider: Provider, name: Option<&str>) -> AccountInfo {
        self.with_state(provider, |st, _, now| {
            let id = st.create_account(now, name.map(str::to_owned)).id.clone();
            let account = st.account(&id).map(|a| st.account_info(a));
            account.unwrap_or_else(|| unreachable!("the account was just created"))
        })
    }

    pub fn accounts(&self, provider: Provider) -> Vec<AccountInfo> {
        self.with_state(provider, |st, _, _| st.accounts())
    }

    /// One account with its data-API counters, e.g. `max_concurrent_api_calls`.
    pub fn account(&self, provider: Provider, account_id: &str) -> Option<AccountInfo> {
        self.with_state(provider, |st, _, _| st.account(account_id).map(|a| st.account_info(a)))
    }

    /// Revokes every grant of the account (refresh → `invalid_grant`, API → 401); returns how
    /// many were live.
    pub fn revoke_account(&self, provider: Provider, account_id: &str) -> Result<usize, ControlError> {
        self.with_state(provider, |st, _, _| st.revoke_account(account_id))
    }

    /// The account's refresh tokens expire now; returns how many grants were affected.
    pub fn expire_refresh_tokens(&self, provider: Provider, account_id: &str) -> Result<usize, ControlError> {
        self.with_state(provider, |st, _, now| st.expire_refresh_tokens(now, account_id))
    }

    /// The refresh token a grant would accept as current, if it has a live one.
    pub fn current_refresh_token(&self, provider: Provider, grant_id: &str) -> Option<String> {
        self.with_state(provider, |st, _, _| st.current_refresh_token(grant_id))
    }

    /// True when `token` is the newest refresh token of a live grant and has not expired.
    pub fn is_current_refresh_token(&self, provider: Provider, token: &str) -> bool {
        self.with_state(provider, |st, _, now| st.is_current_refresh_token(now, token))
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Milliseconds of tokio's monotonic clock since the simulator started.
    pub(crate) fn monotonic_ms(&self) -> i64 {
        i64::try_from(self.inner.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Runs `f` on one provider's state under its lock. Never call it again from inside `f`.
    fn with_state<R>(
        &self,
        provider: Provider,
        f: impl FnOnce(&mut ProviderState, &Rules, Timestamp) -> R,
    ) -> R {
        let now = self.inner.clock.now();
        let mut state = self.inner.states[provider.index()].lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state, &self.inner.rules, now)
    }
}

/// Serves the three simulated providers and the control API. Mount it anywhere (the hub uses
/// `/sandbox`); every link it renders is relative or derived from the request.
pub fn router(sim: Simulator) -> Router {
    Router::new()
        .merge(xero::routes())
        .merge(quickbooks::routes())
        .merge(myob::routes())
        .merge(control::routes())
        .with_state(sim)
}
