//! One simulated provider's state: client apps, accounts, codes, grants and their tokens, fault
//! switches and counters.
//!
//! Everything here is synchronous and O(1) per call (token lookups are hash lookups), so a
//! handler can lock it, do its work and unlock before any `.await`.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use ledgerlink_core::Timestamp;
use serde_json::{Map, Value, json};

use super::api::ApiUsage;
use super::faults::{EndpointFault, Faults};
use super::rules::{Rotation, Rules, whole_seconds};
use super::stats::{AccountInfo, GrantStats, ProviderStats};
use super::{ControlError, Provider, tokens};

/// An app registered with a simulated provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientApp {
    pub client_id: String,
    pub client_secret: String,
    /// Redirect URIs the consent flow accepts, compared exactly; empty accepts any absolute URL.
    pub redirect_uris: Vec<String>,
}

/// Why a token-endpoint call failed, as the OAuth `error` code it answers with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    #[error("invalid_client")]
    InvalidClient,
    /// The reason is for logs only: providers answer a bare `invalid_grant`.
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
}

impl TokenError {
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnsupportedGrantType => "unsupported_grant_type",
        }
    }
}

/// Why a bearer token was refused by a data API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AccessError {
    /// Never issued, revoked, or no `Authorization: Bearer` at all.
    Unknown,
    Expired(Timestamp),
}

/// A successful token response, before each provider dresses it in its own JSON.
#[derive(Clone, Debug)]
pub(crate) struct IssuedTokens {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: Option<String>,
    pub refresh_expires_in: Option<u64>,
    pub scope: String,
    pub id_token: Option<String>,
    pub user_id: String,
    pub username: String,
}

/// What the consent flow asks for; validated by the authorize endpoint.
#[derive(Clone, Debug)]
pub(crate) struct ConsentRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub code_challenge: Option<String>,
}

pub(crate) struct Account {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
    pub user_id: String,
    pub username: String,
    /// Xero's organisation short code, MYOB's serial number.
    pub code: String,
    /// Xero contacts, QuickBooks customers, MYOB customer contacts, oldest first.
    pub records: Vec<Record>,
    grants: Vec<u64>,
}

/// A contact or customer kept in an account; each provider renders it in its own shape.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    /// A UUID (Xero, MYOB) or a small decimal number (QuickBooks).
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// QuickBooks' `SyncToken`, MYOB's `RowVersion`.
    pub version: u64,
    /// What the client sent, kept as sent (the provider's generated fields win).
    pub fields: Map<String, Value>,
}

/// The contacts every new account starts with.
const SEED_CONTACTS: [&str; 3] = ["Harbour Cafe", "Kowhai Joinery", "Summit Plumbing"];

struct PendingCode {
    request: ConsentRequest,
    account_id: String,
    expires_at: Timestamp,
}

pub(crate) struct Grant {
    pub id: u64,
    pub client_id: String,
    pub account_id: String,
    pub scope: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub auth_event_id: String,
    pub connection_id: String,
    /// Xero's `DELETE /connections/{id}`: tokens live on but reach no tenant.
    pub connection_removed: bool,
    pub revoked: bool,
    pub superseded_by: Option<u64>,
    refresh_expired: bool,
    current_refresh: Option<String>,
    refresh_issued_at: Option<Timestamp>,
    refresh_expires_at: Option<Timestamp>,
    /// Xero only: superseded values still inside their grace period, with when they were
    /// superseded. Bounded by the number of refreshes within one grace period.
    superseded: Vec<(String, Timestamp)>,
    /// Access tokens not yet known to be expired, oldest first, so they can be pruned.
    access_tokens: VecDeque<(String, Timestamp)>,
    refreshes: u64,
    in_flight_refreshes: u32,
}

#[derive(Clone, Copy)]
struct RefreshEntry {
    grant: u64,
    superseded_at: Option<Timestamp>,
}

#[derive(Clone, Copy)]
struct AccessEntry {
    grant: u64,
    expires_at: Timestamp,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub token_requests: u64,
    pub code_exchanges: u64,
    pub refreshes: u64,
    pub invalid_grants: u64,
    pub invalid_clients: u64,
    pub dropped_responses: u64,
    pub outage_responses: u64,
    pub rate_limited_responses: u64,
    pub api_requests: u64,
    pub api_error_responses: u64,
    pub max_concurrent_refreshes_per_grant: u32,
    pub concurrent_refresh_violations: u64,
}

pub(crate) struct ProviderState {
    pub provider: Provider,
    pub clients: HashMap<String, ClientApp>,
    pub faults: Faults,
    pub counters: Counters,
    pub api: ApiUsage,
    accounts: HashMap<String, Account>,
    account_order: Vec<String>,
    codes: HashMap<String, PendingCode>,
    code_expiry: VecDeque<(Timestamp, String)>,
    grants: HashMap<u64, Grant>,
    next_grant: u64,
    refresh_index: HashMap<String, RefreshEntry>,
    access_index: HashMap<String, AccessEntry>,
}

impl ProviderState {
    pub(crate) fn new(provider: Provider, client: ClientApp) -> Self {
        Self {
            provider,
            clients: HashMap::from([(client.client_id.clone(), client)]),
            faults: Faults::default(),
            counters: Counters::default(),
            api: ApiUsage::default(),
            accounts: HashMap::new(),
            account_order: Vec::new(),
            codes: HashMap::new(),
            code_expiry: VecDeque::new(),
            grants: HashMap::new(),
            next_grant: 1,
            refresh_index: HashMap::new(),
            access_index: HashMap::new(),
        }
    }

    /// The fault answering this call in place of the provider, if any, counted.
    pub(crate) fn take_endpoint_fault(&mut self) -> Option<EndpointFault> {
        let fault = self.faults.take_endpoint_fault();
        match fault {
            Some(EndpointFault::Outage(_)) => self.counters.outage_responses += 1,
            Some(EndpointFault::RateLimited { .. }) => self.counters.rate_limited_responses += 1,
            None => {}
        }
        fault
    }

    pub(crate) fn grant_public_id(&self, grant: u64) -> String {
        format!("{}-grant-{grant}", self.provider.as_str())
    }

    fn parse_grant_id(&self, public: &str) -> Option<u64> {
        public.strip_prefix(self.provider.as_str())?.strip_prefix("-grant-")?.parse().ok()
    }

    /// Client authentication; `None` secret means none was presented.
    pub(crate) fn authenticate_client(
        &self,
        client_id: &str,
        secret: Option<&str>,
    ) -> Result<(), TokenError> {
        match (self.clients.get(client_id), secret) {
            (Some(app), Some(secret)) if app.client_secret == secret => Ok(()),
            _ => Err(TokenError::InvalidClient),
        }
    }

    // ---- accounts ----

    pub(crate) fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.get(id)
    }

    /// Adds a record to the account with the provider's kind of id; `None` without the account.
    pub(crate) fn add_record(
        &mut self,
        account_id: &str,
        now: Timestamp,
        name: String,
        fields: Map<String, Value>,
    ) -> Option<&Record> {
        let provider = self.provider;
        let account = self.accounts.get_mut(account_id)?;
        let id = match provider {
            Provider::QuickBooks => (account.records.len() + 1).to_string(),
            Provider::Xero | Provider::Myob => tokens::uuid(),
        };
        account.records.push(Record { id, name, created_at: now, updated_at: now, version: 0, fields });
        account.records.last()
    }

    pub(crate) fn record_mut(&mut self, account_id: &str, record_id: &str) -> Option<&mut Record> {
        let account = self.accounts.get_mut(account_id)?;
        account.records.iter_mut().find(|r| r.id.eq_ignore_ascii_case(record_id))
    }

    /// The name the next new account will get, for the consent page.
    pub(crate) fn next_account_name(&self) -> String {
        self.provider.account_name(self.account_order.len() + 1)
    }

    pub(crate) fn create_account(&mut self, now: Timestamp, name: Option<String>) -> &Account {
        let serial = self.account_order.len() + 1;
        let id = loop {
            let id = match self.provider {
                Provider::QuickBooks => tokens::digits(16),
                Provider::Xero | Provider::Myob => tokens::uuid(),
            };
            if !self.accounts.contains_key(&id) {
                break id;
            }
        };
        let code = match self.provider {
            Provider::Xero => format!("!{}", tokens::alphanumeric(5)),
            _ => tokens::digits(12),
        };
        let account = Account {
            id: id.clone(),
            name: name.unwrap_or_else(|| self.provider.account_name(serial)),
            created_at: now,
            user_id: tokens::uuid(),
            username: format!("demo.user{serial}@example.com"),
            code,
            records: Vec::new(),
            grants: Vec::new(),
        };
        self.account_order.push(id.clone());
        self.accounts.insert(id.clone(), account);
        for name in SEED_CONTACTS {
            self.add_record(&id, now, name.to_owned(), Map::new());
        }
        self.accounts.get(&id).unwrap_or_else(|| unreachable!("the account was just inserted"))
    }

    pub(crate) fn accounts(&self) -> Vec<AccountInfo> {
        self.account_order
            .iter()
            .filter_map(|id| self.accounts.get(id))
            .map(|a| self.account_info(a))
            .collect()
    }

    pub(crate) fn account_info(&self, account: &Account) -> AccountInfo {
        let usage = self.api.account(&account.id);
        AccountInfo {
            id: account.id.clone(),
            name: account.name.clone(),
            created_at: account.created_at,
            grants: account.grants.iter().map(|g| self.grant_public_id(*g)).collect(),
            api_requests: usage.requests,
            api_calls_in_flight: usage.in_flight,
            max_concurrent_api_calls: usage.max_in_flight,
        }
    }

    // ---- consent and codes ----

    /// The user approved: link the requested (or a new) account and mint a single-use code.
    pub(crate) fn approve(
        &mut self,
        now: Timestamp,
        rules: &Rules,
        request: ConsentRequest,
    ) -> (String, String) {
        let account_id = match self.faults.next_account.take() {
            Some(id) if self.accounts.contains_key(&id) => id,
            _ => self.create_account(now, None).id.clone(),
        };
        while let Some((expires_at, _)) = self.code_expiry.front() {
            if *expires_at > now {
                break;
            }
            if let Some((_, code)) = self.code_expiry.pop_front() {
                self.codes.remove(&code);
            }
        }
        let code = tokens::authorization_code(self.provider);
        let expires_at = now.saturating_add(rules.authorization_code_lifetime);
        self.code_expiry.push_back((expires_at, code.clone()));
        self.codes.insert(code.clone(), PendingCode { request, account_id: account_id.clone(), expires_at });
        (code, account_id)
    }

    /// `grant_type=authorization_code`.
    pub(crate) fn exchange_code(
        &mut self,
        now: Timestamp,
        rules: &Rules,
        client_id: &str,
        form: &HashMap<String, String>,
    ) -> Result<IssuedTokens, TokenError> {
        let code = form.get("code").ok_or(TokenError::InvalidRequest("code is missing"))?;
        // Removed before any check: a code is burnt by its first use, right or wrong.
        let pending = self.codes.remove(code).ok_or(TokenError::InvalidGrant("unknown or used code"))?;
        if pending.request.client_id != client_id {
            return Err(TokenError::InvalidGrant("code issued to another client"));
        }
        if now >= pending.expires_at {
            return Err(TokenError::InvalidGrant("code expired"));
        }
        if form.get("redirect_uri") != Some(&pending.request.redirect_uri) {
            return Err(TokenError::InvalidGrant("redirect_uri differs from the authorize request"));
        }
        if let Some(challenge) = &pending.request.code_challenge {
            let verifier =
                form.get("code_verifier").ok_or(TokenError::InvalidGrant("code_verifier missing"))?;
            if tokens::pkce_s256(verifier) != *challenge {
                return Err(TokenError::InvalidGrant("code_verifier does not match the challenge"));
            }
        }
        let grant = self.create_grant(now, rules, pending);
        self.counters.code_exchanges += 1;
        Ok(self.issue(now, rules, grant, IssueRefresh::Current))
    }

    fn create_grant(&mut self, now: Timestamp, rules: &Rules, pending: PendingCode) -> u64 {
        let id = self.next_grant;
        self.next_grant += 1;
        let offline = match self.provider {
            Provider::Xero => pending.request.scope.split_whitespace().any(|s| s == "offline_access"),
            Provider::QuickBooks | Provider::Myob => true,
        };
        let mut grant = Grant {
            id,
            client_id: pending.request.client_id,
            account_id: pending.account_id.clone(),
            scope: pending.request.scope,
            created_at: now,
            updated_at: now,
            auth_event_id: tokens::uuid(),
            connection_id: tokens::uuid(),
            connection_removed: false,
            revoked: false,
            superseded_by: None,
            refresh_expired: false,
            current_refresh: None,
            refresh_issued_at: None,
            refresh_expires_at: None,
            superseded: Vec::new(),
            access_tokens: VecDeque::new(),
            refreshes: 0,
            in_flight_refreshes: 0,
        };
        if offline {
            let token = self.new_refresh_value(now, rules, &mut grant);
            self.refresh_index.insert(token, RefreshEntry { grant: id, superseded_at: None });
        }
        // Linking an account again from the same app supersedes the earlier grant: its tokens
        // stop working, which is how the seed's "same account, two organisations" breaks.
        let earlier: Vec<u64> = self
            .accounts
            .get(&pending.account_id)
            .map(|a| a.grants.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|g| self.grants.get(g).is_some_and(|g| !g.revoked && g.client_id == grant.client_id))
            .collect();
        for old in earlier {
            self.revoke_grant(old, Some(id));
        }
        if let Some(account) = self.accounts.get_mut(&pending.account_id) {
            account.grants.push(id);
        }
        self.grants.insert(id, grant);
        tracing::debug!(provider = %self.provider, grant = id, "sandbox grant created");
        id
    }

    fn new_refresh_value(&self, now: Timestamp, rules: &Rules, grant: &mut Grant) -> String {
        let expires_at = now.saturating_add(rules.refresh_token_lifetime(self.provider));
        let token = tokens::refresh_token(self.provider, expires_at.as_millis() / 1000);
        grant.current_refresh = Some(token.clone());
        grant.refresh_issued_at = Some(now);
        grant.refresh_expires_at = Some(expires_at);
        token
    }

    // ---- refresh ----

    /// Records a refresh call arriving for the grant `refresh_token` belongs to, if any.
    pub(crate) fn begin_refresh(&mut self, refresh_token: &str) -> Option<u64> {
        let grant_id = self.refresh_index.get(refresh_token)?.grant;
        let grant = self.grants.get_mut(&grant_id)?;
        if grant.in_flight_refreshes > 0 {
            self.counters.concurrent_refresh_violations += 1;
        }
        grant.in_flight_refreshes += 1;
        let peak = &mut self.counters.max_concurrent_refreshes_per_grant;
        *peak = (*peak).max(grant.in_flight_refreshes);
        Some(grant_id)
    }

    pub(crate) fn end_refresh(&mut self, grant_id: u64) {
        if let Some(grant) = self.grants.get_mut(&grant_id) {
            grant.in_flight_refreshes = grant.in_flight_refreshes.saturating_sub(1);
        }
    }

    /// `grant_type=refresh_token`, with each provider's rotation rule.
    pub(crate) fn refresh(
        &mut self,
        now: Timestamp,
        rules: &Rules,
        client_id: &str,
        form: &HashMap<String, String>,
    ) -> Result<IssuedTokens, TokenError> {
        let token =
            form.get("refresh_token").ok_or(TokenError::InvalidRequest("refresh_token is missing"))?;
        let entry =
            *self.refresh_index.get(token).ok_or(TokenError::InvalidGrant("unknown refresh token"))?;
        let grant = self.grants.get(&entry.grant).ok_or(TokenError::InvalidGrant("unknown grant"))?;
        if grant.revoked || grant.refresh_expired {
            return Err(TokenError::InvalidGrant("grant revoked or expired"));
        }
        if grant.client_id != client_id {
            return Err(TokenError::InvalidGrant("refresh token issued to another client"));
        }
        match (entry.superseded_at, rules.rotation(self.provider)) {
            (None, _) => {
                if grant.refresh_expires_at.is_some_and(|at| now >= at) {
                    return Err(TokenError::InvalidGrant("refresh token expired"));
                }
            }
            (Some(at), Rotation::EveryRefreshWithGrace(grace)) if now < at.saturating_add(grace) => {}
            (Some(_), _) => {
                self.refresh_index.remove(token);
                return Err(TokenError::InvalidGrant("refresh token superseded"));
            }
        }

        let omit = self.faults.take_omit_refresh_token();
        if !omit {
            self.rotate(now, rules, entry.grant);
        }
        let grant = self.grants.get_mut(&entry.grant).ok_or(TokenError::InvalidGrant("unknown grant"))?;
        grant.refreshes += 1;
        grant.updated_at = now;
        self.counters.refreshes += 1;
        let refresh = if omit { IssueRefresh::Omit } else { IssueRefresh::Current };
        Ok(self.issue(now, rules, entry.grant, refresh))
    }

    fn rotate(&mut self, now: Timestamp, rules: &Rules, grant_id: u64) {
        let provider = self.provider;
        let Some(grant) = self.grants.get_mut(&grant_id) else { return };
        let index = &mut self.refresh_index;
        match rules.rotation(provider) {
            Rotation::EveryRefreshWithGrace(grace) => {
                grant.superseded.retain(|(token, at)| {
                    let live = now < at.saturating_add(grace);
                    if !live {
                        index.remove(token);
                    }
                    live
                });
                if let Some(current) = grant.current_refresh.take() {
                    if let Some(entry) = index.get_mut(&current) {
                        entry.superseded_at = Some(now);
                    }
                    grant.superseded.push((current, now));
                }
            }
            Rotation::EveryRefresh => {
                if let Some(current) = grant.current_refresh.take() {
                    index.remove(&current);
                }
            }
            Rotation::ValueChangesAfter(interval) => {
                let young = grant.refresh_issued_at.is_some_and(|at| now < at.saturating_add(interval));
                if young {
                    return;
                }
                if let Some(current) = grant.current_refresh.take() {
                    index.remove(&current);
                }
            }
        }
        let expires_at = now.saturating_add(rules.refresh_token_lifetime(provider));
        let token = tokens::refresh_token(provider, expires_at.as_millis() / 1000);
        grant.current_refresh = Some(token.clone());
        grant.refresh_issued_at = Some(now);
        grant.refresh_expires_at = Some(expires_at);
        index.insert(token, RefreshEntry { grant: grant_id, superseded_at: None });
    }

    /// Mints an access token for the grant and assembles the response fields.
    fn issue(&mut self, now: Timestamp, rules: &Rules, grant_id: u64, refresh: IssueRefresh) -> IssuedTokens {
        let provider = self.provider;
        let lifetime = rules.access_token_lifetime(provider);
        let expires_at = now.saturating_add(lifetime);
        let (user_id, username) = self
            .grants
            .get(&grant_id)
            .and_then(|g| self.accounts.get(&g.account_id))
            .map(|a| (a.user_id.clone(), a.username.clone()))
            .unwrap_or_default();
        let Some(grant) = self.grants.get_mut(&grant_id) else {
            unreachable!("issue() is only called for a grant that exists")
        };
        let access_token = match provider {
            Provider::Xero => xero_access_token(grant, &user_id, now, expires_at),
            _ => tokens::opaque_access_token(provider),
        };
        // Old access tokens stay valid until they expire, as JWTs do; prune the dead ones.
        while let Some((token, at)) = grant.access_tokens.front() {
            if *at > now {
                break;
            }
            self.access_index.remove(token);
            grant.access_tokens.pop_front();
        }
        grant.access_tokens.push_back((access_token.clone(), expires_at));
        self.access_index.insert(access_token.clone(), AccessEntry { grant: grant_id, expires_at });

        let (refresh_token, refresh_expires_in) = match refresh {
            IssueRefresh::Omit => (None, None),
            IssueRefresh::Current => (
                grant.current_refresh.clone(),
                grant.refresh_expires_at.map(|at| whole_seconds(millis_between(now, at))),
            ),
        };
        let openid = grant.scope.split_whitespace().any(|s| s == "openid");
        let id_token = (openid && provider != Provider::Myob)
            .then(|| id_token(provider, grant, &user_id, &username, now, expires_at));
        IssuedTokens {
            access_token,
            expires_in: whole_seconds(lifetime),
            refresh_token,
            refresh_expires_in,
            scope: grant.scope.clone(),
            id_token,
            user_id,
            username,
        }
    }

    // ---- data API authentication ----

    pub(crate) fn authenticate(
        &self,
        now: Timestamp,
        access_token: Option<&str>,
    ) -> Result<&Grant, AccessError> {
        let entry = access_token.and_then(|t| self.access_index.get(t)).ok_or(AccessError::Unknown)?;
        let grant = self.grants.get(&entry.grant).filter(|g| !g.revoked).ok_or(AccessError::Unknown)?;
        if now >= entry.expires_at {
            return Err(AccessError::Expired(entry.expires_at));
        }
        Ok(grant)
    }

    pub(crate) fn grant_mut(&mut self, id: u64) -> Option<&mut Grant> {
        self.grants.get_mut(&id)
    }

    // ---- revocation and expiry ----

    fn revoke_grant(&mut self, id: u64, superseded_by: Option<u64>) {
        let Some(grant) = self.grants.get_mut(&id) else { return };
        grant.revoked = true;
        grant.superseded_by = grant.superseded_by.or(superseded_by);
        for token in
            grant.current_refresh.take().into_iter().chain(grant.superseded.drain(..).map(|(t, _)| t))
        {
            self.refresh_index.remove(&token);
        }
        for (token, _) in grant.access_tokens.drain(..) {
            self.access_index.remove(&token);
        }
        tracing::debug!(provider = %self.provider, grant = id, superseded_by, "sandbox grant revoked");
    }

    /// Revokes the grant a token belongs to. Refresh tokens always count (including a Xero one
    /// in its grace period); access tokens only where the provider accepts them (QuickBooks).
    pub(crate) fn revoke_by_token(&mut self, token: &str, accept_access_tokens: bool) -> bool {
        let grant = match self.refresh_index.get(token) {
            Some(entry) => Some(entry.grant),
            None if accept_access_tokens => self.access_index.get(token).map(|e| e.grant),
            None => None,
        };
        grant.inspect(|g| self.revoke_grant(*g, None)).is_some()
    }

    fn account_grants(&self, account_id: &str) -> Result<Vec<u64>, ControlError> {
        let account = self.accounts.get(account_id).ok_or_else(|| ControlError::UnknownAccount {
            provider: self.provider,
            id: account_id.to_owned(),
        })?;
        Ok(account
            .grants
            .iter()
            .copied()
            .filter(|g| self.grants.get(g).is_some_and(|g| !g.revoked))
            .collect())
    }

    /// Revokes every live grant of the account; returns how many.
    pub(crate) fn revoke_account(&mut self, account_id: &str) -> Result<usize, ControlError> {
        let grants = self.account_grants(account_id)?;
        for grant in &grants {
            self.revoke_grant(*grant, None);
        }
        Ok(grants.len())
    }

    /// Expires the refresh tokens of every live grant of the account now (access tokens live on
    /// until their own expiry); returns how many grants.
    pub(crate) fn expire_refresh_tokens(
        &mut self,
        now: Timestamp,
        account_id: &str,
    ) -> Result<usize, ControlError> {
        let grants = self.account_grants(account_id)?;
        for id in &grants {
            if let Some(grant) = self.grants.get_mut(id) {
                grant.refresh_expired = true;
                grant.refresh_expires_at = Some(now);
                for token in
                    grant.current_refresh.take().into_iter().chain(grant.superseded.drain(..).map(|(t, _)| t))
                {
                    self.refresh_index.remove(&token);
                }
            }
        }
        Ok(grants.len())
    }

    // ---- inspection ----

    pub(crate) fn current_refresh_token(&self, public_grant_id: &str) -> Option<String> {
        let grant = self.grants.get(&self.parse_grant_id(public_grant_id)?)?;
        if grant.revoked || grant.refresh_expired {
            return None;
        }
        grant.current_refresh.clone()
    }

    /// True when `token` is the newest refresh token of a live grant and not expired.
    pub(crate) fn is_current_refresh_token(&self, now: Timestamp, token: &str) -> bool {
        let Some(entry) = self.refresh_index.get(token) else { return false };
        let Some(grant) = self.grants.get(&entry.grant) else { return false };
        entry.superseded_at.is_none()
            && !grant.revoked
            && !grant.refresh_expired
            && grant.current_refresh.as_deref() == Some(token)
            && grant.refresh_expires_at.is_none_or(|at| now < at)
    }

    pub(crate) fn stats(&self) -> ProviderStats {
        let mut grants: Vec<&Grant> = self.grants.values().collect();
        grants.sort_by_key(|g| g.id);
        let c = &self.counters;
        ProviderStats {
            provider: self.provider,
            token_requests: c.token_requests,
            code_exchanges: c.code_exchanges,
            refreshes: c.refreshes,
            invalid_grants: c.invalid_grants,
            invalid_clients: c.invalid_clients,
            dropped_responses: c.dropped_responses,
            outage_responses: c.outage_responses,
            rate_limited_responses: c.rate_limited_responses,
            api_requests: c.api_requests,
            api_calls_in_flight: self.api.in_flight(),
            max_concurrent_api_calls: self.api.max_concurrent(),
            api_error_responses: c.api_error_responses,
            max_concurrent_refreshes_per_grant: c.max_concurrent_refreshes_per_grant,
            concurrent_refresh_violations: c.concurrent_refresh_violations,
            grants: grants
                .into_iter()
                .map(|g| GrantStats {
                    grant_id: self.grant_public_id(g.id),
                    client_id: g.client_id.clone(),
                    account_id: g.account_id.clone(),
                    account_name: self
                        .accounts
                        .get(&g.account_id)
                        .map(|a| a.name.clone())
                        .unwrap_or_default(),
                    created_at: g.created_at,
                    refreshes: g.refreshes,
                    revoked: g.revoked,
                    superseded_by: g.superseded_by.map(|s| self.grant_public_id(s)),
                    refresh_token_expired: g.refresh_expired,
                    current_refresh_token_issued_at: g
                        .refresh_issued_at
                        .filter(|_| g.current_refresh.is_some()),
                })
                .collect(),
        }
    }
}

#[derive(Clone, Copy)]
enum IssueRefresh {
    /// Answer with the grant's current refresh token.
    Current,
    /// The `omit_refresh_token_next` fault: answer without one.
    Omit,
}

fn millis_between(from: Timestamp, to: Timestamp) -> Duration {
    Duration::from_millis(to.as_millis().saturating_sub(from.as_millis()).max(0) as u64)
}

fn seconds(at: Timestamp) -> i64 {
    at.as_millis() / 1000
}

fn xero_access_token(grant: &Grant, user_id: &str, now: Timestamp, expires_at: Timestamp) -> String {
    let header = json!({"alg": "RS256", "kid": "1CAF8E66772D6DC028D6726FD0261581570EFC19", "typ": "JWT"});
    let claims = json!({
        "nbf": seconds(now),
        "exp": seconds(expires_at),
        "iss": "https://identity.xero.com",
        "aud": "https://identity.xero.com/resources",
        "client_id": grant.client_id,
        "sub": user_id.replace('-', ""),
        "auth_time": seconds(grant.created_at),
        "xero_userid": user_id,
        "global_session_id": grant.auth_event_id.replace('-', ""),
        "jti": tokens::hex(32),
        "authentication_event_id": grant.auth_event_id,
        "scope": grant.scope.split_whitespace().collect::<Vec<_>>(),
    });
    tokens::unsigned_jwt(&header, &claims)
}

fn id_token(
    provider: Provider,
    grant: &Grant,
    user_id: &str,
    username: &str,
    now: Timestamp,
    expires_at: Timestamp,
) -> String {
    let issuer = match provider {
        Provider::Xero => "https://identity.xero.com",
        _ => "https://oauth.platform.intuit.com/op/v1",
    };
    let header = json!({"alg": "RS256", "kid": "sandbox", "typ": "JWT"});
    let claims = json!({
        "nbf": seconds(now),
        "iat": seconds(now),
        "exp": seconds(expires_at),
        "iss": issuer,
        "aud": grant.client_id,
        "sub": user_id,
        "auth_time": seconds(grant.created_at),
        "email": username,
        "preferred_username": username,
        "given_name": "Demo",
        "family_name": "User",
    });
    tokens::unsigned_jwt(&header, &claims)
}
