//! Everything the hub remembers, behind one [`Store`] trait with two backends chosen by the
//! database URL: SQLite (the embedded default, one file under `data_dir`) and PostgreSQL (for
//! production and for several hub instances sharing state).
//!
//! # Layout
//!
//! - [`model`]: the rows as Rust types.
//! - [`url`]: [`DatabaseUrl`], which redacts its password when printed.
//! - [`migrate`]: the migration runner; each backend has its own SQL under `migrations/`.
//! - `sqlite` / `postgres`: the backends. Queries both dialects accept are written once
//!   (`common_queries!`); what differs (connecting, pragmas, locking) lives in each backend.
//!
//! Every query that touches a tenant's data filters by `tenant_id`: isolation is enforced here,
//! not only in the API.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ledgerlink_core::Timestamp;

mod common;
pub mod jobs;
pub mod migrate;
pub mod model;
pub mod outbox;
mod postgres;
mod sqlite;
pub mod url;

pub use jobs::{Credentials, Job, Jobs, PasswordLogin};
pub use model::*;
pub use outbox::{Alerts, Attempt, Delivery, Dispatch, LinkedConnection, OutboxEmail, WebhookSubscription};
pub use url::DatabaseUrl;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken; the message says which, in API terms.
    #[error("{0}")]
    Conflict(String),
    #[error("could not reach the database at {url} after trying for {waited:?}: {source}")]
    Unavailable {
        url: String,
        waited: Duration,
        #[source]
        source: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which backend a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to open a store.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// How long to keep retrying a database that is not up yet (PostgreSQL only).
    pub connect_timeout: Duration,
    /// Pool size for PostgreSQL. SQLite always uses one connection: one writer, no lock errors.
    pub max_connections: u32,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(30), max_connections: 10 }
    }
}

/// Opens the store the URL names and brings its schema up to date.
pub async fn connect(url: &DatabaseUrl, options: &ConnectOptions) -> Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match url {
        DatabaseUrl::Sqlite(path) => Arc::new(SqliteStore::open(path).await?),
        DatabaseUrl::Postgres(_) => Arc::new(PostgresStore::connect(url, options).await?),
    };
    store.migrate().await?;
    Ok(store)
}

/// What the hub stores. Methods taking a `tenant_id` never see another tenant's rows.
#[async_trait]
pub trait Store: Alerts + Jobs + Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Applies pending migrations; returns the versions applied now.
    async fn migrate(&self) -> Result<Vec<i64>>;

    /// The highest applied migration version.
    async fn schema_version(&self) -> Result<i64>;

    async fn close(&self);

    // Settings.
    async fn setting(&self, key: &str) -> Result<Option<String>>;
    /// Inserts the setting unless one exists; returns the value now stored.
    async fn insert_setting_if_absent(&self, key: &str, value: &str, now: Timestamp) -> Result<String>;

    // Tenants.
    async fn create_tenant(&self, tenant: &Tenant, api_key_hash: &str) -> Result<()>;
    async fn tenant(&self, id: &str) -> Result<Option<Tenant>>;
    async fn tenant_by_api_key_hash(&self, api_key_hash: &str) -> Result<Option<Tenant>>;

    // Organisations.
    /// Fails with [`StoreError::Conflict`] when the tenant already uses the `external_id`.
    async fn create_organisation(&self, organisation: &Organisation) -> Result<()>;
    async fn organisation(&self, tenant_id: &str, id: &str) -> Result<Option<Organisation>>;
    /// Ordered by id; `after` is the last id of the previous page.
    async fn list_organisations(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Organisation>>;
    /// Writes name and external id; `None` when the organisation does not exist.
    async fn update_organisation(&self, organisation: &Organisation) -> Result<bool>;
    /// Removes the organisation and its users.
    async fn delete_organisation(&self, tenant_id: &str, id: &str) -> Result<bool>;

    // Organisation users (the people to contact when a connection breaks).
    /// Fails with [`StoreError::Conflict`] when the organisation already has that email.
    async fn add_user(&self, user: &User) -> Result<()>;
    async fn list_users(
        &self,
        tenant_id: &str,
        organisation_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<User>>;
    async fn remove_user(&self, tenant_id: &str, organisation_id: &str, user_id: &str) -> Result<bool>;

    // Connections.
    /// Inserts the connection with its first timeline event.
    async fn create_connection(&self, connection: &Connection, event: &Event) -> Result<()>;
    async fn connection(&self, tenant_id: &str, id: &str) -> Result<Option<Connection>>;
    /// For workers, which act for every tenant.
    async fn connection_by_id(&self, id: &str) -> Result<Option<Connection>>;
    async fn list_connections(
        &self,
        tenant_id: &str,
        filter: &ConnectionFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Connection>>;
    async fn delete_connection(&self, tenant_id: &str, id: &str) -> Result<bool>;
    /// Applies `change` and appends `events` atomically, if `guard` allows; returns whether it
    /// did.
    async fn update_connection(
        &self,
        id: &str,
        guard: Guard<'_>,
        change: &ConnectionChange,
        events: &[Event],
    ) -> Result<bool>;
    /// Applies many guarded changes in one transaction (one commit, one fsync); returns which
    /// applied.
    async fn apply_changes(&self, batch: &[PendingChange<'_>]) -> Result<Vec<bool>>;
    /// Inserts complete connection rows (tokens already encrypted) in one transaction: for
    /// moving connections in from another system, and for benchmarks.
    async fn import_connections(&self, connections: &[Connection]) -> Result<()>;
    /// The connection's timeline, oldest first; `after` is an event id.
    async fn list_events(
        &self,
        tenant_id: &str,
        connection_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Event>>;

    // OAuth states.
    /// Stores a new state and forgets the connection's older ones.
    async fn insert_oauth_state(&self, state: &OAuthState) -> Result<()>;
    /// Removes and returns the state (single use), expired or not.
    async fn take_oauth_state(&self, state_hash: &str) -> Result<Option<OAuthState>>;

    // Refresh leases.
    /// Records that `instance` is alive.
    async fn heartbeat(&self, instance: &str, now: Timestamp) -> Result<()>;
    /// Claims up to `limit` connections due for a refresh whose lease is free, expired, or held
    /// by an instance whose last heartbeat is older than `alive_since`, and returns them.
    ///
    /// The claim is also the write-ahead step: each claimed row's current refresh token is
    /// copied to the in-flight marker (unless a marker from an earlier, unfinished refresh is
    /// there, which then stands), in the same statement and before any request is sent.
    /// The returned rows leave out the access token (`None`): a refresh does not read it.
    async fn claim_due(
        &self,
        instance: &str,
        now: Timestamp,
        lease_until: Timestamp,
        alive_since: Timestamp,
        limit: u32,
    ) -> Result<Vec<Connection>>;
    /// Claims one connection's lease on the same terms, due or not.
    async fn claim(
        &self,
        id: &str,
        instance: &str,
        now: Timestamp,
        lease_until: Timestamp,
        alive_since: Timestamp,
    ) -> Result<Option<Connection>>;
    /// Housekeeping: deletes OAuth states that expired before `now` and instances whose last
    /// heartbeat is older than `instances_dead_since`; returns how many of each went.
    async fn purge_expired(&self, now: Timestamp, instances_dead_since: Timestamp) -> Result<(u64, u64)>;
    /// Frees every lease (SQLite start: this is the only process).
    async fn release_all_leases(&self) -> Result<u64>;
    /// The earliest `next_refresh_at` of any connection.
    async fn next_refresh_due(&self) -> Result<Option<Timestamp>>;
}
