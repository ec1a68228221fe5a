//! The users, tenants, sessions and counters of one instance, and the rules a login goes
//! through. Everything here runs under the instance's lock: O(1) or O(sessions) bookkeeping,
//! never an `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};

use ledgerlink_core::Timestamp;

use super::entities::Customers;
use super::faults::Faults;
use super::rules::{self, InstanceRules, compare_versions, parse_version, password_policy_failures};
use super::stats::{InstanceStats, ResetPassword, Upgrade, UserStats};
use super::{ControlError, NewUser, messages, random};

/// Names of users and tenants compare without regard to case, as Acumatica's logins do.
fn key(name: &str) -> String {
    name.trim().to_lowercase()
}

pub(crate) struct User {
    name: String,
    password: String,
    /// The key of the user's tenant.
    tenant: String,
    branches: Vec<String>,
    locked: bool,
    consecutive_failures: u32,
    failed_logins: u64,
    successful_logins: u64,
    logouts: u64,
    requests: u64,
    in_flight: u32,
    max_in_flight: u32,
    password_set_at: Timestamp,
    must_change_password: bool,
    /// Expired by an administrator (the control API), whatever the password lifetime.
    password_expired: bool,
}

impl User {
    fn password_expired(&self, rules: &InstanceRules, now: Timestamp) -> bool {
        self.password_expired
            || rules
                .password_lifetime
                .is_some_and(|lifetime| now >= self.password_set_at.saturating_add(lifetime))
    }

    fn set_password(&mut self, password: &str, now: Timestamp) {
        password.clone_into(&mut self.password);
        self.password_set_at = now;
        self.password_expired = false;
        self.must_change_password = false;
    }
}

pub(crate) struct Tenant {
    pub id: String,
    pub name: String,
    pub customers: Customers,
}

pub(crate) struct Session {
    /// `ASP.NET_SessionId`.
    id: String,
    /// `.ASPXAUTH`.
    ticket: String,
    /// The key of the signed-in user.
    user: String,
    branch: String,
    last_used: Timestamp,
}

#[derive(Default)]
pub(crate) struct Counters {
    requests: u64,
    login_requests: u64,
    logout_requests: u64,
    entity_requests: u64,
    successful_logins: u64,
    failed_logins: u64,
    login_limit_refusals: u64,
    lockouts: u64,
    logouts: u64,
    max_open_sessions: u32,
    expired_sessions: u64,
    terminated_sessions: u64,
    max_requests_in_flight: u32,
    max_concurrent_requests: u32,
    rate_limited_responses: u64,
    unauthorized_responses: u64,
    outage_responses: u64,
}

/// What a login sends.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub name: String,
    pub password: String,
    /// `tenant` or `company`.
    pub tenant: Option<String>,
    pub branch: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("name", &self.name)
            .field("password", &"[redacted]")
            .field("tenant", &self.tenant)
            .field("branch", &self.branch)
            .finish()
    }
}

/// A session a login opened (or re-authenticated).
pub(crate) struct Opened {
    pub session_id: String,
    pub ticket: String,
    /// 1-based position of the branch among the user's: the `UserBranch` cookie.
    pub branch_number: usize,
}

/// A login's user (key), branch, and the branch's 1-based number among the user's.
type Checked = (String, String, usize);

/// Why a login opened no session; each is an HTTP 500 with an `exceptionMessage`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LoginFailure {
    InvalidCredentials,
    UnknownTenant,
    Locked,
    PasswordExpired,
    PasswordChangeRequired,
    ApiLoginLimit,
    BranchNotAllowed(String),
}

impl LoginFailure {
    pub(crate) fn message(&self) -> String {
        match self {
            Self::InvalidCredentials => messages::INVALID_CREDENTIALS.into(),
            Self::UnknownTenant => messages::UNKNOWN_TENANT.into(),
            Self::Locked => messages::ACCOUNT_LOCKED.into(),
            Self::PasswordExpired => messages::PASSWORD_EXPIRED.into(),
            Self::PasswordChangeRequired => messages::PASSWORD_CHANGE_REQUIRED.into(),
            Self::ApiLoginLimit => messages::API_LOGIN_LIMIT.into(),
            Self::BranchNotAllowed(branch) => messages::branch_not_allowed(branch),
        }
    }

    pub(crate) fn exception_type(&self) -> &'static str {
        match self {
            Self::UnknownTenant => messages::PX_UNDEFINED_COMPANY_EXCEPTION,
            _ => messages::PX_EXCEPTION,
        }
    }
}

/// Why a request is answered before it reaches a login or an entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Outage(u16),
    Unauthorized,
    /// With the `Retry-After` to send, if any.
    RateLimited(Option<u64>),
}

/// A request let in: in flight until [`State::end_request`].
pub(crate) struct Admitted {
    /// The key of the user it is counted for, if known.
    pub user: Option<String>,
    /// The key of the session's tenant (entity requests).
    pub tenant: Option<String>,
    pub delay_ms: u64,
}

/// The cookies a request carries that name a session.
#[derive(Clone, Debug, Default)]
pub(crate) struct SessionCookies {
    pub session_id: Option<String>,
    pub ticket: Option<String>,
}

pub(crate) struct State {
    version: String,
    /// By the key of their name.
    users: BTreeMap<String, User>,
    /// By the key of their name.
    tenants: BTreeMap<String, Tenant>,
    /// By `ASP.NET_SessionId`.
    sessions: HashMap<String, Session>,
    pub faults: Faults,
    counters: Counters,
    /// When the admitted requests of the last minute arrived (ms, injected clock).
    minute: VecDeque<i64>,
    in_flight: u32,
}

impl State {
    pub(crate) fn new(version: &str) -> Self {
        Self {
            version: version.trim().to_owned(),
            users: BTreeMap::new(),
            tenants: BTreeMap::new(),
            sessions: HashMap::new(),
            faults: Faults::default(),
            counters: Counters::default(),
            minute: VecDeque::new(),
            in_flight: 0,
        }
    }

    pub(crate) fn version(&self) -> &str {
        &self.version
    }

    /// Ends the sessions idle for `timeout`; an expired session counts as closed.
    pub(crate) fn expire_sessions(&mut self, rules: &InstanceRules, now: Timestamp) {
        let before = self.sessions.len();
        self.sessions.retain(|_, s| now < s.last_used.saturating_add(rules.session_idle_timeout));
        self.counters.expired_sessions += (before - self.sessions.len()) as u64;
    }

    // Users -------------------------------------------------------------------------------

    pub(crate) fn create_user(&mut self, now: Timestamp, new: NewUser) -> Result<(), ControlError> {
        let name = new.name.trim();
        let tenant = new.tenant.trim();
        if name.is_empty() {
            return Err(ControlError::InvalidValue("name must not be empty".into()));
        }
        if tenant.is_empty() {
            return Err(ControlError::InvalidValue("tenant must not be empty".into()));
        }
        if self.users.contains_key(&key(name)) {
            return Err(ControlError::UserExists(name.to_owned()));
        }
        self.check_password("password", &new.password)?;
        let mut branches: Vec<String> = Vec::new();
        for branch in new.branches.iter().map(|b| b.trim()) {
            if branch.is_empty() {
                return Err(ControlError::InvalidValue("branch names must not be empty".into()));
            }
            if !branches.iter().any(|b| b.eq_ignore_ascii_case(branch)) {
                branches.push(branch.to_owned());
            }
        }
        if branches.is_empty() {
            branches.push("MAIN".into());
        }
        let tenant_key = key(tenant);
        self.tenants.entry(tenant_key.clone()).or_insert_with(|| Tenant {
            id: random::uuid(),
            name: tenant.to_owned(),
            customers: Customers::new(now),
        });
        let user = User {
            name: name.to_owned(),
            password: new.password,
            tenant: tenant_key,
            branches,
            locked: false,
            consecutive_failures: 0,
            failed_logins: 0,
            successful_logins: 0,
            logouts: 0,
            requests: 0,
            in_flight: 0,
            max_in_flight: 0,
            password_set_at: now,
            must_change_password: new.change_password_on_next_login,
            password_expired: false,
        };
        self.users.insert(key(name), user);
        Ok(())
    }

    /// Refuses an empty password, and one that fails the policy once the version enforces it.
    fn check_password(&self, field: &str, password: &str) -> Result<(), ControlError> {
        if password.is_empty() {
            return Err(ControlError::InvalidValue(format!("{field} must not be empty")));
        }
        let failures = password_policy_failures(password);
        if rules::policy_applies(&self.version) && !failures.is_empty() {
            return Err(ControlError::InvalidValue(format!(
                "{field} does not meet the password policy of version {}: it needs {}",
                self.version,
                failures.join(", ")
            )));
        }
        Ok(())
    }

    fn user_mut(&mut self, name: &str) -> Result<&mut User, ControlError> {
        self.users.get_mut(&key(name)).ok_or_else(|| ControlError::UnknownUser(name.to_owned()))
    }

    /// Unlocks the user and resets its lockout counter.
    pub(crate) fn unlock(&mut self, name: &str) -> Result<(), ControlError> {
        let user = self.user_mut(name)?;
        user.locked = false;
        user.consecutive_failures = 0;
        Ok(())
    }

    pub(crate) fn lock(&mut self, name: &str) -> Result<(), ControlError> {
        self.user_mut(name)?.locked = true;
        Ok(())
    }

    /// An administrator sets the password (the Users form's Reset Password): it is no longer
    /// expired, and must be changed on next login only when asked. A lock stays.
    pub(crate) fn set_password(
        &mut self,
        now: Timestamp,
        name: &str,
        password: &str,
        change_on_next_login: bool,
    ) -> Result<(), ControlError> {
        self.user_mut(name)?;
        self.check_password("password", password)?;
        let user = self.user_mut(name)?;
        user.set_password(password, now);
        user.must_change_password = change_on_next_login;
        Ok(())
    }

    pub(crate) fn require_password_change(&mut self, name: &str) -> Result<(), ControlError> {
        self.user_mut(name)?.must_change_password = true;
        Ok(())
    }

    pub(crate) fn expire_password(&mut self, name: &str) -> Result<(), ControlError> {
        self.user_mut(name)?.password_expired = true;
        Ok(())
    }

    /// Moves the instance to `version`. The site restarts (every session ends) and, from
    /// 2023.1.3 on, every user whose password fails the policy gets a new random one.
    pub(crate) fn upgrade(&mut self, now: Timestamp, version: &str) -> Result<Upgrade, ControlError> {
        let version = version.trim();
        let target = parse_version(version).ok_or_else(|| {
            ControlError::InvalidValue(format!(
                "version must be dotted numbers like 2023.1.3, got {version:?}"
            ))
        })?;
        if let Some(current) = parse_version(&self.version)
            && compare_versions(&target, &current).is_lt()
        {
            return Err(ControlError::InvalidValue(format!(
                "version must not be older than the instance's {}, got {version}",
                self.version
            )));
        }
        let previous_version = std::mem::replace(&mut self.version, version.to_owned());
        let ended_sessions = self.sessions.len() as u32;
        self.sessions.clear();
        self.counters.terminated_sessions += u64::from(ended_sessions);
        let mut reset_passwords = Vec::new();
        if rules::policy_applies(&self.version) {
            for user in self.users.values_mut() {
                if password_policy_failures(&user.password).is_empty() {
                    continue;
                }
                let password = rules::generate_password();
                user.set_password(&password, now);
                let tenant = self.tenants.get(&user.tenant).map_or_else(String::new, |t| t.name.clone());
                reset_passwords.push(ResetPassword { name: user.name.clone(), tenant, password });
            }
        }
        tracing::debug!(%previous_version, version = %self.version, reset = reset_passwords.len(), "sandbox acumatica upgrade");
        Ok(Upgrade { previous_version, version: self.version.clone(), reset_passwords, ended_sessions })
    }

    // Requests ----------------------------------------------------------------------------

    /// Counts the request in flight for `user` (a key) and the instance.
    fn begin_request(&mut self, user: Option<&str>) {
        self.in_flight += 1;
        self.counters.max_requests_in_flight = self.counters.max_requests_in_flight.max(self.in_flight);
        if let Some(user) = user.and_then(|u| self.users.get_mut(u)) {
            user.in_flight += 1;
            user.max_in_flight = user.max_in_flight.max(user.in_flight);
            self.counters.max_concurrent_requests = self.counters.max_concurrent_requests.max(user.in_flight);
        }
    }

    pub(crate) fn end_request(&mut self, user: Option<&str>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(user) = user.and_then(|u| self.users.get_mut(u)) {
            user.in_flight = user.in_flight.saturating_sub(1);
        }
    }

    /// The `rate_limit` fault, then the licence's limits: requests in flight, then per minute.
    /// Only admitted requests count towards the minute.
    fn rate_limited(&mut self, rules: &InstanceRules, now: Timestamp) -> Option<Option<u64>> {
        let refused = if let Some(retry_after) = self.faults.take_rate_limit() {
            Some(retry_after)
        } else if rules.max_concurrent_requests.is_some_and(|max| self.in_flight >= max) {
            Some(None)
        } else if let Some(max) = rules.requests_per_minute {
            let now_ms = now.as_millis();
            while self.minute.front().is_some_and(|at| *at <= now_ms - 60_000) {
                self.minute.pop_front();
            }
            if self.minute.len() >= max as usize {
                Some(None)
            } else {
                self.minute.push_back(now_ms);
                None
            }
        } else {
            None
        };
        if refused.is_some() {
            self.counters.rate_limited_responses += 1;
        }
        refused
    }

    fn outage(&mut self) -> Result<(), Refusal> {
        match self.faults.take_outage() {
            Some(status) => {
                self.counters.outage_responses += 1;
                Err(Refusal::Outage(status))
            }
            None => Ok(()),
        }
    }

    /// A login request, before its credentials are read. `name` is counted as the user when
    /// such a user exists.
    pub(crate) fn admit_login(
        &mut self,
        rules: &InstanceRules,
        now: Timestamp,
        name: Option<&str>,
    ) -> Result<Admitted, Refusal> {
        self.counters.requests += 1;
        self.counters.login_requests += 1;
        self.outage()?;
        let user = name.map(key).filter(|k| self.users.contains_key(k));
        if let Some(user) = user.as_ref().and_then(|u| self.users.get_mut(u)) {
            user.requests += 1;
        }
        if let Some(retry_after) = self.rate_limited(rules, now) {
            return Err(Refusal::RateLimited(retry_after));
        }
        self.begin_request(user.as_deref());
        Ok(Admitted { user, tenant: None, delay_ms: self.faults.request_delay_ms })
    }

    /// An entity request: its session, then the limits.
    pub(crate) fn admit_entity(
        &mut self,
        rules: &InstanceRules,
        now: Timestamp,
        cookies: &SessionCookies,
    ) -> Result<Admitted, Refusal> {
        self.counters.requests += 1;
        self.counters.entity_requests += 1;
        self.outage()?;
        let Some(session) = self.session_mut(cookies) else {
            self.counters.unauthorized_responses += 1;
            return Err(Refusal::Unauthorized);
        };
        session.last_used = now;
        let user_key = session.user.clone();
        let mut tenant = None;
        if let Some(user) = self.users.get_mut(&user_key) {
            user.requests += 1;
            tenant = Some(user.tenant.clone());
        }
        if let Some(retry_after) = self.rate_limited(rules, now) {
            return Err(Refusal::RateLimited(retry_after));
        }
        self.begin_request(Some(&user_key));
        Ok(Admitted { user: Some(user_key), tenant, delay_ms: self.faults.request_delay_ms })
    }

    /// A logout request: only an outage stops it (signing out is exempt from the licence's
    /// request limits, so a client can always free its slot).
    pub(crate) fn admit_logout(&mut self) -> Result<(), Refusal> {
        self.counters.requests += 1;
        self.counters.logout_requests += 1;
        self.outage()
    }

    /// The live session both cookies name.
    fn session_mut(&mut self, cookies: &SessionCookies) -> Option<&mut Session> {
        let (Some(id), Some(ticket)) = (&cookies.session_id, &cookies.ticket) else { return None };
        self.sessions.get_mut(id).filter(|s| &s.ticket == ticket)
    }

    pub(crate) fn tenant_mut(&mut self, tenant: &str) -> Option<&mut Tenant> {
        self.tenants.get_mut(tenant)
    }

    /// A user's branches, for the `Branch` entity.
    pub(crate) fn user_branches(&self, user: &str) -> Vec<String> {
        self.users.get(user).map(|u| u.branches.clone()).unwrap_or_default()
    }

    /// `GET /entity` (the endpoint list): counted, and answered by an outage like the rest.
    pub(crate) fn admit_discovery(&mut self) -> Result<(), Refusal> {
        self.counters.requests += 1;
        self.outage()
    }

    // Logins ------------------------------------------------------------------------------

    /// Checks the credentials and opens a session, or says why not. A login inside a live
    /// session (its `ASP.NET_SessionId` cookie) re-authenticates that session and needs no
    /// new licence slot.
    pub(crate) fn login(
        &mut self,
        rules: &InstanceRules,
        now: Timestamp,
        credentials: &Credentials,
        cookie_session: Option<&str>,
    ) -> Result<Opened, LoginFailure> {
        let (user_key, branch, branch_number) = match self.check_credentials(rules, now, credentials) {
            Ok(checked) => checked,
            Err((failure, user)) => return Err(self.refuse(failure, user.as_deref())),
        };
        let reused = cookie_session.filter(|id| self.sessions.contains_key(*id)).map(str::to_owned);
        if reused.is_none() {
            let forced = self.faults.take_login_limit();
            let full = rules.max_api_sessions.is_some_and(|max| self.sessions.len() >= max as usize);
            if forced || full {
                return Err(self.refuse(LoginFailure::ApiLoginLimit, Some(&user_key)));
            }
        }
        let session_id = reused.unwrap_or_else(random::session_id);
        let ticket = random::forms_ticket();
        let session = Session {
            id: session_id.clone(),
            ticket: ticket.clone(),
            user: user_key.clone(),
            branch,
            last_used: now,
        };
        self.sessions.insert(session_id.clone(), session);
        self.counters.successful_logins += 1;
        self.counters.max_open_sessions = self.counters.max_open_sessions.max(self.sessions.len() as u32);
        if let Some(user) = self.users.get_mut(&user_key) {
            user.successful_logins += 1;
            user.consecutive_failures = 0;
        }
        Ok(Opened { session_id, ticket, branch_number })
    }

    /// The user's key, branch and its number, or the failure and the user it is counted for.
    fn check_credentials(
        &mut self,
        rules: &InstanceRules,
        now: Timestamp,
        credentials: &Credentials,
    ) -> Result<Checked, (LoginFailure, Option<String>)> {
        let tenant = match credentials.tenant.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            Some(name) => key(name),
            // Without a tenant, only a single-tenant instance knows where to sign in.
            None if self.tenants.len() == 1 => self.tenants.keys().next().cloned().unwrap_or_default(),
            None => return Err((LoginFailure::UnknownTenant, None)),
        };
        if !self.tenants.contains_key(&tenant) {
            return Err((LoginFailure::UnknownTenant, None));
        }
        let user_key = key(&credentials.name);
        let Some(user) = self.users.get_mut(&user_key).filter(|u| u.tenant == tenant) else {
            return Err((LoginFailure::InvalidCredentials, None));
        };
        if user.locked {
            return Err((LoginFailure::Locked, Some(user_key)));
        }
        if user.password != credentials.password {
            user.consecutive_failures += 1;
            let threshold = rules.lockout_threshold.filter(|t| *t > 0);
            if threshold.is_some_and(|t| user.consecutive_failures >= t) {
                user.locked = true;
                self.counters.lockouts += 1;
                tracing::debug!(user = %user.name, "sandbox acumatica user locked");
            }
            return Err((LoginFailure::InvalidCredentials, Some(user_key)));
        }
        if user.must_change_password {
            return Err((LoginFailure::PasswordChangeRequired, Some(user_key)));
        }
        if user.password_expired(rules, now) {
            return Err((LoginFailure::PasswordExpired, Some(user_key)));
        }
        let wanted = credentials.branch.as_deref().map(str::trim).filter(|b| !b.is_empty());
        let index = match wanted {
            None => 0,
            Some(wanted) => match user.branches.iter().position(|b| b.eq_ignore_ascii_case(wanted)) {
                Some(index) => index,
                None => return Err((LoginFailure::BranchNotAllowed(wanted.to_owned()), Some(user_key))),
            },
        };
        let branch = user.branches.get(index).cloned().unwrap_or_default();
        Ok((user_key, branch, index + 1))
    }

    fn refuse(&mut self, failure: LoginFailure, user: Option<&str>) -> LoginFailure {
        self.counters.failed_logins += 1;
        if failure == LoginFailure::ApiLoginLimit {
            self.counters.login_limit_refusals += 1;
        }
        if let Some(user) = user.and_then(|u| self.users.get_mut(u)) {
            user.failed_logins += 1;
        }
        failure
    }

    /// Ends the session either cookie names; true when one was live.
    pub(crate) fn logout(&mut self, cookies: &SessionCookies) -> bool {
        let id =
            cookies.session_id.as_ref().filter(|id| self.sessions.contains_key(*id)).cloned().or_else(|| {
                let ticket = cookies.ticket.as_ref()?;
                self.sessions.values().find(|s| &s.ticket == ticket).map(|s| s.id.clone())
            });
        let Some(session) = id.and_then(|id| self.sessions.remove(&id)) else { return false };
        self.counters.logouts += 1;
        if let Some(user) = self.users.get_mut(&session.user) {
            user.logouts += 1;
        }
        true
    }

    // Reports -----------------------------------------------------------------------------

    fn user_stats_by_key(&self, user_key: &str, rules: &InstanceRules, now: Timestamp) -> Option<UserStats> {
        let user = self.users.get(user_key)?;
        Some(UserStats {
            name: user.name.clone(),
            tenant: self.tenants.get(&user.tenant).map_or_else(String::new, |t| t.name.clone()),
            branches: user.branches.clone(),
            locked: user.locked,
            failed_logins: user.failed_logins,
            consecutive_failed_logins: user.consecutive_failures,
            successful_logins: user.successful_logins,
            logouts: user.logouts,
            open_sessions: self.sessions.values().filter(|s| s.user == user_key).count() as u32,
            requests: user.requests,
            requests_in_flight: user.in_flight,
            max_concurrent_requests: user.max_in_flight,
            password_meets_policy: password_policy_failures(&user.password).is_empty(),
            password_changed_at: user.password_set_at,
            must_change_password: user.must_change_password,
            password_expired: user.password_expired(rules, now),
        })
    }

    pub(crate) fn user_stats(&self, rules: &InstanceRules, now: Timestamp, name: &str) -> Option<UserStats> {
        self.user_stats_by_key(&key(name), rules, now)
    }

    pub(crate) fn stats(&self, rules: &InstanceRules, now: Timestamp) -> InstanceStats {
        let c = &self.counters;
        let users: BTreeMap<String, UserStats> = self
            .users
            .keys()
            .filter_map(|k| self.user_stats_by_key(k, rules, now))
            .map(|u| (u.name.clone(), u))
            .collect();
        InstanceStats {
            version: self.version.clone(),
            requests: c.requests,
            login_requests: c.login_requests,
            logout_requests: c.logout_requests,
            entity_requests: c.entity_requests,
            successful_logins: c.successful_logins,
            failed_logins: c.failed_logins,
            login_limit_refusals: c.login_limit_refusals,
            lockouts: c.lockouts,
            logouts: c.logouts,
            open_sessions: self.sessions.len() as u32,
            max_open_sessions: c.max_open_sessions,
            expired_sessions: c.expired_sessions,
            terminated_sessions: c.terminated_sessions,
            requests_in_flight: self.in_flight,
            max_requests_in_flight: c.max_requests_in_flight,
            max_concurrent_requests: c.max_concurrent_requests,
            rate_limited_responses: c.rate_limited_responses,
            unauthorized_responses: c.unauthorized_responses,
            outage_responses: c.outage_responses,
            locked_users: users.values().filter(|u| u.locked).map(|u| u.name.clone()).collect(),
            users,
        }
    }

    /// The session's branch (for the `Company` entity).
    pub(crate) fn session_branch(&self, cookies: &SessionCookies) -> Option<String> {
        let id = cookies.session_id.as_ref()?;
        self.sessions.get(id).map(|s| s.branch.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_000_000);

    fn state_with(user: &str, password: &str) -> State {
        let mut state = State::new("2023.1.2");
        state.create_user(NOW, NewUser::new(user, password, "Company")).unwrap();
        state
    }

    fn credentials(name: &str, password: &str) -> Credentials {
        Credentials {
            name: name.into(),
            password: password.into(),
            tenant: Some("company".into()),
            branch: None,
        }
    }

    #[test]
    fn a_wrong_password_counts_towards_the_lockout_and_a_success_resets_it() {
        let rules = InstanceRules::default();
        let mut state = state_with("OcerraAPI", "weak");
        for _ in 0..4 {
            let failure = state.login(&rules, NOW, &credentials("ocerraapi", "wrong"), None).err();
            assert_eq!(failure, Some(LoginFailure::InvalidCredentials));
        }
        assert!(state.login(&rules, NOW, &credentials("OCERRAAPI", "weak"), None).is_ok());
        let user = state.user_stats(&rules, NOW, "OcerraAPI").unwrap();
        assert_eq!((user.failed_logins, user.consecutive_failed_logins, user.locked), (4, 0, false));
    }

    #[test]
    fn the_fifth_wrong_password_locks_and_then_even_the_right_one_is_refused() {
        let rules = InstanceRules::default();
        let mut state = state_with("api", "weak");
        for _ in 0..5 {
            assert_eq!(
                state.login(&rules, NOW, &credentials("api", "x"), None).err(),
                Some(LoginFailure::InvalidCredentials)
            );
        }
        assert_eq!(
            state.login(&rules, NOW, &credentials("api", "weak"), None).err(),
            Some(LoginFailure::Locked)
        );
        state.unlock("API").unwrap();
        assert!(state.login(&rules, NOW, &credentials("api", "weak"), None).is_ok());
    }

    #[test]
    fn a_login_in_a_live_session_reuses_its_licence_slot() {
        let rules = InstanceRules::default().with_max_api_sessions(Some(1));
        let mut state = state_with("api", "weak");
        let first = state.login(&rules, NOW, &credentials("api", "weak"), None).unwrap();
        let again = state.login(&rules, NOW, &credentials("api", "weak"), Some(&first.session_id)).unwrap();
        assert_eq!(again.session_id, first.session_id);
        assert_ne!(again.ticket, first.ticket);
        assert_eq!(
            state.login(&rules, NOW, &credentials("api", "weak"), None).err(),
            Some(LoginFailure::ApiLoginLimit)
        );
        assert_eq!(state.stats(&rules, NOW).open_sessions, 1);
    }

    #[test]
    fn sessions_expire_after_the_idle_timeout() {
        let rules = InstanceRules::default();
        let mut state = state_with("api", "weak");
        let opened = state.login(&rules, NOW, &credentials("api", "weak"), None).unwrap();
        state.expire_sessions(&rules, NOW.saturating_add(Duration::from_secs(599)));
        assert_eq!(state.stats(&rules, NOW).open_sessions, 1);
        state.expire_sessions(&rules, NOW.saturating_add(Duration::from_secs(600)));
        let stats = state.stats(&rules, NOW);
        assert_eq!((stats.open_sessions, stats.expired_sessions), (0, 1));
        let cookies = SessionCookies { session_id: Some(opened.session_id), ticket: Some(opened.ticket) };
        assert!(!state.logout(&cookies), "an expired session is already closed");
    }

    #[test]
    fn passwords_expire_after_their_lifetime() {
        let rules = InstanceRules::default().with_password_lifetime(Some(Duration::from_secs(3600)));
        let mut state = state_with("api", "weak");
        let later = NOW.saturating_add(Duration::from_secs(3600));
        assert_eq!(
            state.login(&rules, later, &credentials("api", "weak"), None).err(),
            Some(LoginFailure::PasswordExpired)
        );
        state.set_password(later, "api", "fresh", false).unwrap();
        assert!(state.login(&rules, later, &credentials("api", "fresh"), None).is_ok());
    }

    #[test]
    fn an_upgrade_to_2023_1_3_resets_weak_passwords_and_ends_sessions() {
        let rules = InstanceRules::default();
        let mut state = state_with("weak", "password1");
        state.create_user(NOW, NewUser::new("strong", "Str0ng-Password-123", "Company")).unwrap();
        state.login(&rules, NOW, &credentials("strong", "Str0ng-Password-123"), None).unwrap();
        let upgrade = state.upgrade(NOW, "2023.1.3").unwrap();
        assert_eq!(upgrade.previous_version, "2023.1.2");
        assert_eq!(upgrade.ended_sessions, 1);
        assert_eq!(upgrade.reset_passwords.len(), 1);
        assert_eq!(upgrade.reset_passwords[0].name, "weak");
        assert_eq!(upgrade.reset_passwords[0].tenant, "Company");
        assert!(password_policy_failures(&upgrade.reset_passwords[0].password).is_empty());
        assert!(matches!(
            state.set_password(NOW, "weak", "short", false),
            Err(ControlError::InvalidValue(_))
        ));
        assert!(matches!(state.upgrade(NOW, "2022.1.1"), Err(ControlError::InvalidValue(_))));
        assert!(matches!(state.upgrade(NOW, "next"), Err(ControlError::InvalidValue(_))));
    }
}
