//! What the control API and [`super::Simulator::stats`] report.

use ledgerlink_core::Timestamp;
use serde::Serialize;

use super::Provider;

/// Counters of one simulated provider since it started.
#[derive(Clone, Debug, Serialize)]
pub struct ProviderStats {
    pub provider: Provider,
    /// Every call to the token endpoint, whatever its outcome.
    pub token_requests: u64,
    /// Authorization codes exchanged for tokens.
    pub code_exchanges: u64,
    /// Successful `grant_type=refresh_token` calls.
    pub refreshes: u64,
    pub invalid_grants: u64,
    pub invalid_clients: u64,
    /// Token responses lost on purpose (`drop_next_token_responses`).
    pub dropped_responses: u64,
    /// Calls answered by the `outage` fault.
    pub outage_responses: u64,
    /// Calls answered by the `rate_limit` fault or refused by an enforced API limit.
    pub rate_limited_responses: u64,
    /// Calls to the data APIs, discovery calls (connections, userinfo, company files) included.
    pub api_requests: u64,
    /// Data-API calls in flight now, across all accounts.
    pub api_calls_in_flight: u32,
    /// The most data-API calls ever in flight at once for any one account.
    pub max_concurrent_api_calls: u32,
    /// Data-API calls answered by the `api_error` fault.
    pub api_error_responses: u64,
    /// The most refresh calls ever in flight at once for any one grant (the hub must keep 1).
    pub max_concurrent_refreshes_per_grant: u32,
    /// Refresh calls that arrived while another refresh of the same grant was in flight.
    pub concurrent_refresh_violations: u64,
    pub grants: Vec<GrantStats>,
}

/// One grant: the tokens an app holds for one external account from one consent.
#[derive(Clone, Debug, Serialize)]
pub struct GrantStats {
    pub grant_id: String,
    pub client_id: String,
    pub account_id: String,
    pub account_name: String,
    pub created_at: Timestamp,
    pub refreshes: u64,
    /// Revoked by the app, by the control API, or superseded by a later link of its account.
    pub revoked: bool,
    /// The grant that superseded this one when the same account was linked again.
    pub superseded_by: Option<String>,
    pub refresh_token_expired: bool,
    /// When the current refresh token value was issued; `None` without `offline_access`.
    pub current_refresh_token_issued_at: Option<Timestamp>,
}

/// An external account: a Xero organisation, a QuickBooks company, a MYOB company file.
#[derive(Clone, Debug, Serialize)]
pub struct AccountInfo {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
    /// Ids of the grants ever made for this account, oldest first.
    pub grants: Vec<String>,
    /// Data-API calls that named this account and got past authentication, including those
    /// refused by a limit or answered by a fault.
    pub api_requests: u64,
    /// This account's data-API calls in flight now.
    pub api_calls_in_flight: u32,
    /// The most of this account's data-API calls ever in flight at once.
    pub max_concurrent_api_calls: u32,
}
