//! A simulated MYOB Acumatica instance: password logins with cookie sessions, the licence's
//! API limits, lockouts, and the 2023.1.3 upgrade that resets weak passwords (seed 002).
//!
//! One [`Instance`] holds the tenants, API users and sessions; [`router`] serves it under its
//! base path ([`InstanceRules::base_path`], `/acumatica` by default, `/AcumaticaERP` like an
//! on-premises site), plus a control API at `/_control/acumatica`, so it merges with
//! [`crate::providers::router`]. [`Instance::url`] is the `instance_url` to configure the hub
//! with, from any base URL. Time comes from the injected [`Clock`]: sessions end after the idle
//! timeout and passwords expire on a `ManualClock` without sleeping.
//!
//! # The instance (relative to its URL)
//!
//! - `POST /entity/auth/login` with JSON (or a form) `{"name", "password", "tenant" | "company",
//!   "branch"?, "locale"?}` → 204 with the cookies `ASP.NET_SessionId` and `.ASPXAUTH` (and
//!   `UserBranch`, `Locale`). Every later request must carry both session cookies. Without a
//!   tenant, a single-tenant instance signs in to it; with several, the tenant is unknown. A
//!   login carrying the `ASP.NET_SessionId` of a live session re-authenticates that session and
//!   takes no new licence slot. Malformed bodies, a missing name or password, or both `tenant`
//!   and `company` → 400 `{"message"}`.
//! - A failed login → HTTP 500 `{"message": "An error has occurred.", "exceptionMessage",
//!   "exceptionType", "stackTrace": null}`, checked in this order (texts in [`messages`]):
//!
//!   | cause | `exceptionMessage` | `exceptionType` |
//!   | --- | --- | --- |
//!   | unknown tenant | `A proper company ID cannot be determined for the request.` | `PX.Data.PXUndefinedCompanyException` |
//!   | unknown user in the tenant | `Error: Invalid credentials. Please try again.` | `PX.Data.PXException` |
//!   | user locked (any password) | `Error: Your account is locked. Please contact your system administrator.` | same |
//!   | wrong password | `Error: Invalid credentials. Please try again.`; the lockout threshold's wrong password locks the user | same |
//!   | must change the password | `You need to change your password. Sign in by using your browser to set a new password.` | same |
//!   | password expired | `Error: Your password has expired. Sign in by using your browser to set a new password.` | same |
//!   | branch not the user's | `Error: You do not have access to the branch '…'.` | same |
//!   | licence's API users all signed in, or the `login_limit` fault | `API Login Limit` | same |
//!
//!   A successful login resets the user's lockout counter; a locked user stays locked until
//!   unlocked through the control API.
//! - `POST /entity/auth/logout` → 204, ends the session; idempotent, and 204 without a cookie.
//!   Exempt from the licence's request limits, so a client can always free its slot.
//! - `GET /entity` → `{"version": {"acumaticaBuildVersion"}, "endpoints": [{"name", "version",
//!   "href"}]}`, no session needed.
//! - The `Default` endpoint at any `n.n.n` version (e.g. `/entity/Default/22.200.001/`), with a
//!   session (else 401 `{"message": "Authorization has been denied for this request."}`):
//!   - `GET Customer` (`$top`, `$skip`, `$filter` of `Field eq 'value'` joined by `and` on
//!     `CustomerID`, `CustomerName`, `Status`, `CustomerClass`; other filters 400) → a JSON
//!     array of records in the `{"CustomerID": {"value": "C000001"}, …}` field style, with
//!     `id` and `rowNumber`;
//!   - `GET Customer/{CustomerID or id}` → the record, or 404;
//!   - `PUT Customer` → creates or updates (by `id`, else `CustomerID`; a new record without
//!     `CustomerID` is numbered) and answers 200 with the record; no `CustomerName` on a new
//!     record → 422 with Acumatica's error body;
//!   - `GET Company` and `GET Branch`: harmless reads for a connection test (the session's
//!     tenant and branch; the user's branches).
//!
//!   Each tenant starts with three customers; what is created is kept. Other entities → 404.
//!
//! Logins and entity requests are counted in flight per API user and for the instance, held
//! `request_delay_ms`, and refused with 429 `{"message"}` by the `rate_limit` fault or the
//! licence's limits ([`InstanceRules::max_concurrent_requests`],
//! [`InstanceRules::requests_per_minute`]). The `outage` fault answers logins, logouts and
//! entity requests with a gateway's HTML page.
//!
//! # Control API (no auth; JSON)
//!
//! - `GET|POST|DELETE /_control/acumatica/faults`: read, change ([`FaultUpdate`]), clear.
//! - `GET /_control/acumatica/stats`: [`InstanceStats`].
//! - `GET|POST /_control/acumatica/users`: list (`{"data": [...]}`), create ([`NewUser`]:
//!   `{"name", "password", "tenant", "branch"?: "MAIN" | ["MAIN", …],
//!   "change_password_on_next_login"?}`) → 201 [`UserStats`]. The tenant is created with its
//!   first user.
//! - `GET /_control/acumatica/users/{name}`: [`UserStats`].
//! - `POST /_control/acumatica/users/{name}/unlock` (also resets the lockout counter), `…/lock`,
//!   `…/expire-password`, `…/password` (`{"password", "change_password_on_next_login"?}`: what
//!   an administrator sets on the Users form) → [`UserStats`].
//! - `POST /_control/acumatica/upgrade` (`{"version"?}`, 2023.1.3 by default) → [`Upgrade`]:
//!   the site restarts (every session ends) and, from 2023.1.3 on, every user whose password
//!   fails the policy gets a new random one, listed in `reset_passwords` as an administrator
//!   would see it.
//!
//! Errors are `{"error": {"code", "message"}}`: unknown user 404, a user name taken 409,
//! malformed JSON or an unknown field 400, invalid values 422 (the message names the field and
//! the rule, e.g. each policy rule a password fails once the version enforces the policy).
//!
//! ## Fault switches (`POST …/faults`; fields left out keep their value)
//!
//! | field | effect |
//! | --- | --- |
//! | `request_delay_ms`: ms | every admitted login and entity request is held this long, counted in flight |
//! | `outage`: `{"status": 400-599, "count"?}` | logins, logouts and entity requests answer this status |
//! | `login_limit`: `{"count"?}` | logins with valid credentials answer "API Login Limit" |
//! | `rate_limit`: `{"retry_after_secs"?, "count"?}` | logins and entity requests answer 429 (`Retry-After` only when given) |
//!
//! A `count` is how many requests suffer it; absent means until cleared, 0 clears it.

mod api;
mod control;
mod entities;
mod faults;
pub mod messages;
mod random;
mod rules;
mod state;
mod stats;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ledgerlink_core::{Clock, Timestamp};
use serde::{Deserialize, Deserializer};

pub use faults::{FaultUpdate, Faults, LoginLimit, Outage, RateLimit};
pub use rules::{
    DEFAULT_VERSION, InstanceRules, POLICY_VERSION, UPGRADE_VERSION, password_policy_failures, policy_applies,
};
pub use stats::{InstanceStats, ResetPassword, Upgrade, UserStats};

use state::State;

/// The endpoint and version [`Instance::entity_url`] points at.
pub const DEFAULT_ENDPOINT: &str = "Default/22.200.001";

/// What the control API and the `Instance` control methods refuse.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no acumatica user named {0:?}")]
    UnknownUser(String),
    #[error("an acumatica user named {0:?} already exists")]
    UserExists(String),
    #[error("malformed JSON body: {0}")]
    MalformedBody(String),
    #[error("{0}")]
    InvalidValue(String),
}

impl ControlError {
    fn code(&self) -> &'static str {
        match self {
            Self::UnknownUser(_) => "unknown_user",
            Self::UserExists(_) => "user_exists",
            Self::MalformedBody(_) => "malformed_json",
            Self::InvalidValue(_) => "invalid_value",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::UnknownUser(_) => StatusCode::NOT_FOUND,
            Self::UserExists(_) => StatusCode::CONFLICT,
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

/// An API user as an administrator creates it on the Users form.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    pub password: String,
    #[serde(alias = "company")]
    pub tenant: String,
    /// The branches the user may sign in to (`MAIN` when none); the first is the default.
    #[serde(default, rename = "branch", alias = "branches", deserialize_with = "one_or_many")]
    pub branches: Vec<String>,
    /// The first login answers "You need to change your password…".
    #[serde(default)]
    pub change_password_on_next_login: bool,
}

impl NewUser {
    pub fn new(name: &str, password: &str, tenant: &str) -> Self {
        Self {
            name: name.into(),
            password: password.into(),
            tenant: tenant.into(),
            branches: Vec::new(),
            change_password_on_next_login: false,
        }
    }

    pub fn with_branches(mut self, branches: &[&str]) -> Self {
        self.branches = branches.iter().map(|b| (*b).to_owned()).collect();
        self
    }

    pub fn with_password_change_on_next_login(mut self) -> Self {
        self.change_password_on_next_login = true;
        self
    }
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("name", &self.name)
            .field("password", &"[redacted]")
            .field("tenant", &self.tenant)
            .field("branches", &self.branches)
            .field("change_password_on_next_login", &self.change_password_on_next_login)
            .finish()
    }
}

/// `"MAIN"` or `["MAIN", "EAST"]`.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(OneOrMany::One(branch)) => vec![branch],
        Some(OneOrMany::Many(branches)) => branches,
    })
}

/// A simulated MYOB Acumatica instance. Cheap to clone: clones share state.
///
/// The state sits behind one mutex, held only for bookkeeping and never across an `.await`.
#[derive(Clone)]
pub struct Instance {
    inner: Arc<Inner>,
}

struct Inner {
    clock: Arc<dyn Clock>,
    rules: InstanceRules,
    state: Mutex<State>,
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance").field("rules", &self.inner.rules).finish_non_exhaustive()
    }
}

impl Instance {
    pub fn new(clock: Arc<dyn Clock>, rules: InstanceRules) -> Self {
        let state = Mutex::new(State::new(&rules.version));
        Self { inner: Arc::new(Inner { clock, rules, state }) }
    }

    pub fn rules(&self) -> &InstanceRules {
        &self.inner.rules
    }

    /// Where [`router`] serves the instance: `/acumatica`, `/AcumaticaERP`, or empty.
    pub fn base_path(&self) -> String {
        self.inner.rules.normalized_base_path()
    }

    /// The instance URL (what the hub calls `instance_url`) when the router is served at
    /// `base`, e.g. `http://127.0.0.1:8080/sandbox` → `http://127.0.0.1:8080/sandbox/acumatica`.
    pub fn url(&self, base: &str) -> String {
        format!("{}{}", base.trim_end_matches('/'), self.base_path())
    }

    /// The entity API of the `Default/22.200.001` endpoint under `base`.
    pub fn entity_url(&self, base: &str) -> String {
        format!("{}/entity/{DEFAULT_ENDPOINT}", self.url(base))
    }

    /// The control API when the router is served at `base`.
    pub fn control_url(base: &str) -> String {
        format!("{}/_control/acumatica", base.trim_end_matches('/'))
    }

    pub fn version(&self) -> String {
        self.with_state(|st, _, _| st.version().to_owned())
    }

    /// Creates an API user (and its tenant, if new). Once the version enforces the policy, the
    /// password must meet it.
    pub fn create_user(&self, new: NewUser) -> Result<UserStats, ControlError> {
        let name = new.name.trim().to_owned();
        self.with_state(|st, rules, now| {
            st.create_user(now, new)?;
            st.user_stats(rules, now, &name).ok_or(ControlError::UnknownUser(name))
        })
    }

    pub fn users(&self) -> Vec<UserStats> {
        self.stats().users.into_values().collect()
    }

    pub fn user(&self, name: &str) -> Option<UserStats> {
        self.with_state(|st, rules, now| st.user_stats(rules, now, name))
    }

    /// Unlocks the user and resets its lockout counter.
    pub fn unlock(&self, name: &str) -> Result<(), ControlError> {
        self.with_state(|st, _, _| st.unlock(name))
    }

    /// Locks the user, as an administrator can.
    pub fn lock(&self, name: &str) -> Result<(), ControlError> {
        self.with_state(|st, _, _| st.lock(name))
    }

    /// An administrator sets the user's password; it no longer counts as expired. A lock
    /// stays. Once the version enforces the policy, the password must meet it.
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), ControlError> {
        self.with_state(|st, _, now| st.set_password(now, name, password, false))
    }

    /// The next login answers "You need to change your password…".
    pub fn require_password_change(&self, name: &str) -> Result<(), ControlError> {
        self.with_state(|st, _, _| st.require_password_change(name))
    }

    /// The user's password has expired, whatever its age.
    pub fn expire_password(&self, name: &str) -> Result<(), ControlError> {
        self.with_state(|st, _, _| st.expire_password(name))
    }

    /// Seed 002's upgrade: to 2023.1.3 (or a restart, if the instance is already there or
    /// later). Returns each reset user with its new password, as an administrator sees them.
    pub fn upgrade(&self) -> Vec<(String, String)> {
        self.upgrade_report().reset_passwords.into_iter().map(|r| (r.name, r.password)).collect()
    }

    /// [`Instance::upgrade`] with the whole report.
    pub fn upgrade_report(&self) -> Upgrade {
        self.with_state(|st, _, now| {
            let target =
                if policy_applies(st.version()) { st.version().to_owned() } else { UPGRADE_VERSION.into() };
            st.upgrade(now, &target)
        })
        .unwrap_or_else(|e| unreachable!("upgrading to the policy version or the current one: {e}"))
    }

    /// Upgrades to `version` (not older than the current one).
    pub fn upgrade_to(&self, version: &str) -> Result<Upgrade, ControlError> {
        self.with_state(|st, _, now| st.upgrade(now, version))
    }

    pub fn faults(&self) -> Faults {
        self.with_state(|st, _, _| st.faults.clone())
    }

    /// Changes the fault switches named in `update`; returns them all.
    pub fn set_faults(&self, update: FaultUpdate) -> Result<Faults, ControlError> {
        self.with_state(|st, _, _| {
            st.faults.apply(update)?;
            Ok(st.faults.clone())
        })
    }

    pub fn clear_faults(&self) {
        self.with_state(|st, _, _| st.faults = Faults::default());
    }

    pub fn stats(&self) -> InstanceStats {
        self.with_state(|st, rules, now| st.stats(rules, now))
    }

    /// Runs `f` on the state under its lock, after ending the sessions idle too long. Never
    /// call it again from inside `f`.
    fn with_state<R>(&self, f: impl FnOnce(&mut State, &InstanceRules, Timestamp) -> R) -> R {
        let now = self.inner.clock.now();
        let rules = &self.inner.rules;
        let mut state = self.inner.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.expire_sessions(rules, now);
        f(&mut state, rules, now)
    }
}

/// Serves the instance under its base path and the control API at `/_control/acumatica`.
/// Merge it with [`crate::providers::router`] to serve both from one mount (e.g. `/sandbox`).
pub fn router(instance: Instance) -> Router {
    let site = api::routes();
    let base = instance.base_path();
    let routes = if base.is_empty() { site } else { Router::new().nest(&base, site) };
    routes.merge(control::routes()).with_state(instance)
}
