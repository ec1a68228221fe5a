//! What the control API and [`super::Instance::stats`] report.

use std::collections::BTreeMap;

use ledgerlink_core::Timestamp;
use serde::Serialize;

/// Counters of one simulated instance since it started.
#[derive(Clone, Debug, Serialize)]
pub struct InstanceStats {
    pub version: String,
    /// Every request to the instance: logins, logouts and entity requests (not the control API).
    pub requests: u64,
    pub login_requests: u64,
    pub logout_requests: u64,
    /// Requests under `/entity/{endpoint}/{version}/…`, refused ones included.
    pub entity_requests: u64,
    pub successful_logins: u64,
    /// Logins that read the credentials and opened no session, whatever the reason (wrong
    /// password, unknown user or tenant, locked, expired, "API Login Limit"); not those
    /// answered by the `outage` or `rate_limit` faults or a licence rate limit.
    pub failed_logins: u64,
    /// Failed logins answered "API Login Limit".
    pub login_limit_refusals: u64,
    /// Users locked by the lockout threshold (not by the control API).
    pub lockouts: u64,
    /// Logout requests that ended a live session.
    pub logouts: u64,
    /// Sessions open now. A client that always logs out leaves 0.
    pub open_sessions: u32,
    /// The most sessions ever open at once.
    pub max_open_sessions: u32,
    /// Sessions ended by the idle timeout.
    pub expired_sessions: u64,
    /// Sessions ended by an upgrade (the site restarts).
    pub terminated_sessions: u64,
    /// Logins and entity requests in flight now.
    pub requests_in_flight: u32,
    /// The most logins and entity requests ever in flight at once, across users.
    pub max_requests_in_flight: u32,
    /// The most ever in flight at once for any one API user.
    pub max_concurrent_requests: u32,
    /// 429s: the `rate_limit` fault and the licence's request limits.
    pub rate_limited_responses: u64,
    /// Entity requests answered 401 (no session, or one that ended).
    pub unauthorized_responses: u64,
    /// Requests answered by the `outage` fault.
    pub outage_responses: u64,
    /// Users locked now, by name.
    pub locked_users: Vec<String>,
    /// Every user, by name.
    pub users: BTreeMap<String, UserStats>,
}

/// One API user.
#[derive(Clone, Debug, Serialize)]
pub struct UserStats {
    pub name: String,
    pub tenant: String,
    /// The branches the user may sign in to; the first is used when a login names none.
    pub branches: Vec<String>,
    pub locked: bool,
    /// Logins naming this user that opened no session (see [`InstanceStats::failed_logins`]).
    pub failed_logins: u64,
    /// Wrong passwords since the last successful login or unlock: the lockout counter.
    pub consecutive_failed_logins: u32,
    pub successful_logins: u64,
    /// Logouts that ended one of this user's sessions.
    pub logouts: u64,
    pub open_sessions: u32,
    /// Logins and entity requests of this user that were admitted or refused after
    /// authentication.
    pub requests: u64,
    pub requests_in_flight: u32,
    /// The most of this user's logins and entity requests ever in flight at once.
    pub max_concurrent_requests: u32,
    /// Whether the current password meets the 2023.1.3 policy.
    pub password_meets_policy: bool,
    pub password_changed_at: Timestamp,
    /// The next login answers "You need to change your password…".
    pub must_change_password: bool,
    pub password_expired: bool,
}

/// What the `upgrade` control action did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Upgrade {
    pub previous_version: String,
    pub version: String,
    /// Users whose password failed the policy, with the new password an administrator sees.
    pub reset_passwords: Vec<ResetPassword>,
    /// Sessions the restart ended.
    pub ended_sessions: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResetPassword {
    pub name: String,
    pub tenant: String,
    pub password: String,
}
