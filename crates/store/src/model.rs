//! Rows as Rust types. Validation happened before a value got here.

use ledgerlink_core::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organisation {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub external_id: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    pub organisation_id: String,
    pub name: String,
    pub email: String,
    pub created_at: Timestamp,
}

/// A connection row. Token columns hold encrypted envelopes, never plain tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub id: String,
    pub tenant_id: String,
    pub organisation_id: String,
    pub provider: String,
    pub status: String,
    pub reason: Option<String>,
    pub status_since: Timestamp,
    pub external_account_id: Option<String>,
    pub external_account_name: Option<String>,
    /// The latest diagnosis, as JSON.
    pub last_error: Option<String>,
    pub redirect_url: Option<String>,
    pub access_token: Option<String>,
    pub access_issued_at: Option<Timestamp>,
    pub access_expires_at: Option<Timestamp>,
    pub refresh_token: Option<String>,
    pub refresh_token_obtained_at: Option<Timestamp>,
    pub scope: Option<String>,
    /// Bumped each time new tokens are stored.
    pub token_version: i64,
    pub next_refresh_at: Option<Timestamp>,
    /// Consecutive failed refreshes.
    pub failures: i64,
    /// The write-ahead marker: a refresh was sent with this refresh token and its outcome is
    /// not stored yet.
    pub inflight_refresh_token: Option<String>,
    pub inflight_since: Option<Timestamp>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub connected_at: Option<Timestamp>,
    /// When the callback last linked the external account.
    pub linked_at: Option<Timestamp>,
}

/// Filters of `GET /v1/connections`.
#[derive(Clone, Debug, Default)]
pub struct ConnectionFilter {
    pub status: Option<String>,
    pub provider: Option<String>,
    pub organisation_id: Option<String>,
}

/// A pending OAuth authorisation, found again by the hash of its `state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthState {
    pub state_hash: String,
    pub connection_id: String,
    /// The encrypted PKCE verifier, where the provider uses PKCE.
    pub code_verifier: Option<String>,
    pub redirect_uri: String,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
}

/// One entry of a connection's timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub tenant_id: String,
    pub connection_id: String,
    /// e.g. `connection.connected`, `connection.degraded`.
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
    /// JSON with the diagnosis or other context.
    pub detail: Option<String>,
    pub created_at: Timestamp,
}

impl Event {
    /// A new timeline entry of `conn`; `detail` is JSON context (a diagnosis, the linked account).
    pub fn of(
        conn: &Connection,
        kind: &str,
        status: &str,
        reason: Option<&str>,
        detail: Option<String>,
        now: Timestamp,
    ) -> Self {
        Self {
            id: ledgerlink_core::id::generate("evt", now.as_millis()),
            tenant_id: conn.tenant_id.clone(),
            connection_id: conn.id.clone(),
            kind: kind.into(),
            status: status.into(),
            reason: reason.map(Into::into),
            detail,
            created_at: now,
        }
    }
}

/// New tokens to store (already encrypted).
#[derive(Clone, Debug, Default)]
pub struct TokenWrite {
    pub access_token: String,
    pub access_issued_at: Timestamp,
    pub access_expires_at: Timestamp,
    /// `None` keeps the refresh token already stored.
    pub refresh_token: Option<String>,
    pub refresh_token_obtained_at: Option<Timestamp>,
    pub scope: Option<String>,
}

/// A change to a connection, applied with its events in one transaction.
#[derive(Clone, Debug)]
pub struct ConnectionChange {
    pub status: String,
    pub reason: Option<String>,
    /// `Some(None)` clears the last error; `None` leaves it.
    pub last_error: Option<Option<String>>,
    pub tokens: Option<TokenWrite>,
    pub external_account: Option<(String, Option<String>)>,
    pub next_refresh_at: Option<Timestamp>,
    pub failures: i64,
    pub clear_inflight: bool,
    pub release_lease: bool,
    pub now: Timestamp,
}

impl ConnectionChange {
    /// A change that keeps the connection as it is (status, reason, error, schedule, marker and
    /// lease): the base for changing one thing, or for appending events.
    pub fn keep(conn: &Connection, now: Timestamp) -> Self {
        Self {
            status: conn.status.clone(),
            reason: conn.reason.clone(),
            last_error: None,
            tokens: None,
            external_account: None,
            next_refresh_at: conn.next_refresh_at,
            failures: conn.failures,
            clear_inflight: false,
            release_lease: false,
            now,
        }
    }
}

/// Who may apply a change: anyone, or only the holder of the refresh lease.
#[derive(Clone, Copy, Debug)]
pub enum Guard<'a> {
    Any,
    LeaseHeldBy(&'a str),
    /// The lease holder, or anyone if no newer tokens were stored since `token_version`.
    LeaseHeldByOrVersion(&'a str, i64),
}

/// One change of a batch given to [`crate::Store::apply_changes`].
#[derive(Clone, Copy, Debug)]
pub struct PendingChange<'a> {
    pub id: &'a str,
    pub guard: Guard<'a>,
    pub change: &'a ConnectionChange,
    pub events: &'a [Event],
}
