//! The refresh engine: keeps every OAuth connection's tokens fresh and never loses one.
//!
//! DESIGN.md's rules, and where each lives:
//! 1. Refresh ahead, scaled to the lifetime, with jitter — [`RefreshPolicy::next_refresh_at`].
//! 2. Keep-alive of idle refresh tokens — the same, bounded by the provider's idle lifetime.
//! 3. Single flight across instances — a lease in the database per connection ([`Store::claim_due`],
//!    `FOR UPDATE SKIP LOCKED` on PostgreSQL), held by an instance that heartbeats; the row is
//!    re-read after the claim. Within one process an in-memory set adds a second guard.
//! 4. Write-ahead — the claim itself copies the refresh token to an in-flight marker before the
//!    token endpoint is called; the result and the cleared marker commit together. A marker
//!    older than the claim means "outcome unknown": the same refresh token is retried, which
//!    Xero honours for 30 minutes. Results are committed in groups by one writer task (one
//!    transaction, one fsync, for every refresh that finished meanwhile).
//! 5. Never drop a refresh token — a response without one keeps the stored one.
//! 6. Classify — `invalid_grant` disconnects; timeouts, network errors and 5xx degrade and back
//!    off (capped at 15 s once the access token is expiring); 429 waits `Retry-After`. Backoff
//!    is per connection, so one broken connection cannot storm a provider or starve others.
//! 7. Timeouts — the provider HTTP client uses `provider_timeout` (120 s by default).
//! 8. [`RefreshEngine::access_token`] joins a refresh in flight (here or in another instance)
//!    instead of racing it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ledgerlink_core::crypto::KeyRing;
use ledgerlink_core::refresh::RefreshPolicy;
use ledgerlink_core::{
    Clock, ConnectionStatus, Diagnosis, DisconnectReason, Provider, SecretString, Timestamp, id,
};
use ledgerlink_providers::ProviderError;
use ledgerlink_store::{
    Connection, ConnectionChange, Event, Guard, LinkedConnection, PendingChange, Store, TokenWrite,
};
use rand::Rng;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::providers::ProviderRegistry;

/// How often an instance proves it is alive, and how stale a heartbeat may get before the
/// instance's leases are taken over.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
pub const LIVENESS_WINDOW: Duration = Duration::from_secs(5);

/// Rows per claim statement.
const CLAIM_BATCH: usize = 256;

/// After this many consecutive transient failures a connection turns amber even if its access
/// token is still good.
const DEGRADE_AFTER_FAILURES: i64 = 3;

pub fn token_context(connection_id: &str, field: &str) -> String {
    format!("connection:{connection_id}:{field}")
}

pub struct RefreshEngine {
    store: Arc<dyn Store>,
    keys: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
    providers: Arc<ProviderRegistry>,
    config: Arc<Config>,
    policy: RefreshPolicy,
    /// This process's id in `hub_instances`; leases are held in its name.
    instance: String,
    /// Connections this process is refreshing right now.
    in_flight: Mutex<HashSet<String>>,
    /// Woken whenever a refresh finishes here, so waiters re-read the row.
    finished: Notify,
    /// Woken when a connection becomes due sooner than the loop expects (a new connection).
    wake: Notify,
    /// The group-commit writer of refresh results.
    writer: mpsc::Sender<Write>,
    /// This process's counters (served at `/metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// A result waiting to be committed by the writer.
struct Write {
    id: String,
    /// `None`: the lease holder only; `Some(v)`: or anyone if the token version is still `v`.
    version: Option<i64>,
    change: ConnectionChange,
    events: Vec<Event>,
    done: oneshot::Sender<anyhow::Result<bool>>,
}

/// What [`RefreshEngine::access_token`] hands an app.
#[derive(Debug)]
pub struct AccessToken {
    pub token: SecretString,
    pub expires_at: Timestamp,
    pub connection: Connection,
}

#[derive(Debug)]
pub enum AccessTokenError {
    /// Red: a person must act.
    Disconnected(Connection),
    /// Not authorised yet, or paused.
    NotReady(Connection),
    /// The token expired and refreshing it keeps failing for now.
    Unavailable(Connection),
    Internal(anyhow::Error),
}

impl RefreshEngine {
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
        providers: Arc<ProviderRegistry>,
        config: Arc<Config>,
    ) -> Self {
        let instance = id::generate("hub", clock.now().as_millis());
        let (writer, queue) = mpsc::channel(4096);
        tokio::spawn(write_loop(Arc::clone(&store), instance.clone(), queue));
        Self {
            store,
            keys,
            clock,
            providers,
            config,
            policy: RefreshPolicy::default(),
            instance,
            in_flight: Mutex::new(HashSet::new()),
            finished: Notify::new(),
            wake: Notify::new(),
            writer,
            metrics: Arc::default(),
        }
    }

    /// This process's id: the name leases (refresh, webhook, email) are held under.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Commits `change` through the group-commit writer; returns whether the guard allowed it.
    async fn commit(
        &self,
        id: &str,
        version: Option<i64>,
        change: ConnectionChange,
        events: Vec<Event>,
    ) -> anyhow::Result<bool> {
        let (done, applied) = oneshot::channel();
        let write = Write { id: id.to_owned(), version, change, events, done };
        self.writer.send(write).await.map_err(|_| anyhow::anyhow!("the refresh writer stopped"))?;
        applied.await.map_err(|_| anyhow::anyhow!("the refresh writer stopped"))?
    }

    /// Tells the loop that something became due.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn lease_until(&self, now: Timestamp) -> Timestamp {
        now.saturating_add(self.config.provider_timeout + Duration::from_secs(30))
    }

    fn alive_since(&self, now: Timestamp) -> Timestamp {
        Timestamp::from_millis(now.as_millis() - LIVENESS_WINDOW.as_millis() as i64)
    }

    /// Runs until `shutdown`: heartbeats, claims due connections and refreshes them with at
    /// most `refresh_concurrency` in flight.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        if self.store.backend() == ledgerlink_store::Backend::Sqlite {
            // SQLite means one hub process (`serve` holds the data directory's lock file): any
            // lease in the file belongs to a previous run.
            match self.store.release_all_leases().await {
                Ok(0) => {}
                Ok(freed) => tracing::info!(freed, "reclaimed refresh leases left by a previous run"),
                Err(error) => tracing::error!(%error, "cannot reclaim leases left by a previous run"),
            }
        }
        let permits = Arc::new(Semaphore::new(self.config.refresh_concurrency));
        let heartbeat = tokio::spawn(Arc::clone(&self).heartbeat_loop(shutdown.clone()));
        // A claimer keeps a queue of claimed rows filled (up to two batches ahead), so claiming
        // never leaves a permit idle; the dispatcher below starts a refresh whenever a permit is
        // free. One claim statement serves a whole batch.
        // Claims are sized for the database, not for the provider concurrency: a claim statement
        // costs about the same for 16 rows as for 256, and claiming is what keeps permits busy.
        let batch = CLAIM_BATCH;
        let (queue, mut claimed) = mpsc::channel::<(Connection, Timestamp)>(batch * 2);
        let claimer = tokio::spawn(Arc::clone(&self).claim_loop(queue, batch, shutdown.clone()));
        loop {
            let next = tokio::select! {
                next = claimed.recv() => next,
                () = shutdown.cancelled() => None,
            };
            let Some((conn, claimed_at)) = next else { break };
            let permit = tokio::select! {
                permit = Arc::clone(&permits).acquire_owned() => permit.expect("never closed"),
                () = shutdown.cancelled() => {
                    self.release(&conn, claimed_at).await;
                    break;
                }
            };
            let engine = Arc::clone(&self);
            tokio::spawn(async move { engine.refresh_claimed(conn, claimed_at, Some(permit)).await });
        }
        // Stop the claimer (it can reserve no more room), then hand back what was claimed but
        // not started, including anything it queued on its way out.
        claimed.close();
        let _ = claimer.await;
        while let Some((conn, claimed_at)) = claimed.recv().await {
            self.release(&conn, claimed_at).await;
        }
        // Let refreshes in flight store their results; an interrupted one is recovered by the
        // write-ahead marker at the next start.
        let all = self.config.refresh_concurrency as u32;
        let _ = tokio::time::timeout(self.config.shutdown_timeout, permits.acquire_many(all)).await;
        heartbeat.abort();
    }

    async fn claim_loop(
        self: Arc<Self>,
        queue: mpsc::Sender<(Connection, Timestamp)>,
        batch: usize,
        shutdown: CancellationToken,
    ) {
        while !shutdown.is_cancelled() {
            // Room for a whole batch first: claimed rows always have a place in the queue, so
            // they never wait long for a permit and never have to be handed back.
            let slots = tokio::select! {
                slots = queue.reserve_many(batch) => match slots {
                    Ok(slots) => slots,
                    Err(_) => return, // The dispatcher has stopped.
                },
                () = shutdown.cancelled() => return,
            };
            let claimed = match self.claim_batch(batch as u32).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::error!(%error, "refresh engine: cannot claim due connections; retrying");
                    Vec::new()
                }
            };
            let full_batch = claimed.len() == batch;
            for (slot, row) in slots.zip(claimed) {
                slot.send(row);
            }
            if full_batch {
                continue;
            }
            let pause = self.pause_until_next_due().await;
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.wake.notified() => {}
                () = shutdown.cancelled() => {}
            }
        }
    }

    async fn heartbeat_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(HEARTBEAT_INTERVAL);
        let mut beats: u64 = 0;
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let now = self.clock.now();
                    if let Err(error) = self.store.heartbeat(&self.instance, now).await {
                        tracing::warn!(%error, "refresh engine: heartbeat failed");
                    }
                    // About once a minute: forget expired OAuth states and instances gone a day.
                    if beats.is_multiple_of(60) {
                        let dead_since = Timestamp::from_millis(now.as_millis() - 24 * 3600 * 1000);
                        match self.store.purge_expired(now, dead_since).await {
                            Ok((0, 0)) => {}
                            Ok((states, instances)) => tracing::debug!(states, instances, "purged expired OAuth states and dead instances"),
                            Err(error) => tracing::warn!(%error, "housekeeping failed"),
                        }
                    }
                    beats += 1;
                }
                () = shutdown.cancelled() => return,
            }
        }
    }

    async fn pause_until_next_due(&self) -> Duration {
        let max = Duration::from_secs(1);
        match self.store.next_refresh_due().await {
            Ok(Some(due)) => {
                let wait = due.as_millis() - self.clock.now().as_millis();
                Duration::from_millis(wait.clamp(10, max.as_millis() as i64) as u64)
            }
            _ => max,
        }
    }

    async fn claim_batch(&self, limit: u32) -> anyhow::Result<Vec<(Connection, Timestamp)>> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_due(&self.instance, now, self.lease_until(now), self.alive_since(now), limit)
            .await?;
        Ok(claimed.into_iter().map(|c| (c, now)).collect())
    }

    /// Refreshes every connection due now and waits for the results: the deterministic
    /// "run once" that tests drive with a manual clock.
    pub async fn run_due_once(self: &Arc<Self>) -> anyhow::Result<usize> {
        // No heartbeat task runs here, and a manual clock may have jumped: prove we are alive.
        self.store.heartbeat(&self.instance, self.clock.now()).await?;
        let mut done = 0;
        loop {
            let claimed = self.claim_batch(CLAIM_BATCH as u32).await?;
            if claimed.is_empty() {
                return Ok(done);
            }
            done += claimed.len();
            let tasks: Vec<_> = claimed
                .into_iter()
                .map(|(conn, claimed_at)| {
                    let engine = Arc::clone(self);
                    tokio::spawn(async move { engine.refresh_claimed(conn, claimed_at, None).await })
                })
                .collect();
            for task in tasks {
                task.await?;
            }
        }
    }

    /// Refreshes a connection whose lease this instance holds, then releases the lease.
    ///
    /// `permit` bounds the requests in flight to providers; it is returned as soon as the
    /// provider has answered, so storing the result (batched) does not hold it.
    async fn refresh_claimed(
        &self,
        conn: Connection,
        claimed_at: Timestamp,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let Some(_guard) = self.begin(&conn.id) else {
            // Already refreshing here (possible only when the clock jumps past a lease).
            return;
        };
        let id = conn.id.clone();
        if let Err(error) = self.refresh_leased(&conn, claimed_at, permit).await {
            tracing::error!(connection_id = %id, error = format!("{error:#}"), "refresh failed internally");
            self.release(&conn, claimed_at).await;
        }
    }

    fn begin(&self, id: &str) -> Option<InFlight<'_>> {
        let mut set = self.in_flight.lock().expect("in-flight set poisoned");
        set.insert(id.to_owned()).then(|| InFlight { engine: self, id: id.to_owned() })
    }

    /// Frees the lease without refreshing. A marker set by this very claim is cleared: no
    /// request went out.
    async fn release(&self, conn: &Connection, claimed_at: Timestamp) {
        let mut change = unchanged(conn, self.clock.now());
        change.clear_inflight = conn.inflight_since == Some(claimed_at);
        if let Err(error) = self.commit(&conn.id, None, change, Vec::new()).await {
            tracing::warn!(connection_id = %conn.id, %error, "cannot release a refresh lease; it expires by itself");
        }
    }

    async fn refresh_leased(
        &self,
        conn: &Connection,
        claimed_at: Timestamp,
        permit: Option<OwnedSemaphorePermit>,
    ) -> anyhow::Result<()> {
        let id = conn.id.as_str();
        let status: ConnectionStatus = conn.status.parse().map_err(anyhow::Error::msg)?;
        let provider: Provider = conn.provider.parse().map_err(anyhow::Error::msg)?;
        if !status.is_live() || conn.next_refresh_at.is_none_or(|due| due > claimed_at) {
            self.release(conn, claimed_at).await;
            return Ok(());
        }
        let client = match self.providers.oauth(provider) {
            Ok(client) => client,
            Err(message) => {
                let diagnosis =
                    Diagnosis::unexpected(provider, None, Some("not_configured".into()), Some(message));
                return self.record_transient(conn, provider, diagnosis, None, true).await;
            }
        };
        // A marker older than this claim belongs to a refresh whose outcome is unknown.
        let outcome_was_unknown = conn.inflight_since.is_some_and(|since| since < claimed_at);
        let Some(sealed) = conn.inflight_refresh_token.clone().or_else(|| conn.refresh_token.clone()) else {
            let diagnosis = Diagnosis::invalid_grant(provider);
            return self.disconnect(conn, DisconnectReason::AuthorizationRevoked, diagnosis).await;
        };
        let refresh_token = self.keys.decrypt_secret(&sealed, &token_context(id, "refresh_token"))?;
        if outcome_was_unknown {
            tracing::info!(connection_id = id, provider = %provider, "retrying a refresh whose outcome was unknown with the same refresh token");
        }
        let answer = client.refresh(&refresh_token).await;
        drop(permit);
        match answer {
            Ok(tokens) => self.store_tokens(conn, provider, tokens).await,
            Err(error) => self.record_failure(conn, provider, error, outcome_was_unknown).await,
        }
    }

    async fn store_tokens(
        &self,
        conn: &Connection,
        provider: Provider,
        tokens: ledgerlink_providers::TokenSet,
    ) -> anyhow::Result<()> {
        let now = self.clock.now();
        self.metrics.inc("ledgerlink_refreshes_total", &[("provider", provider.as_str())]);
        let change = self.connected_change(&conn.id, provider, tokens, now);
        let mut events = Vec::new();
        if conn.status != ConnectionStatus::Connected.as_str() {
            events.push(Self::event(
                conn,
                "connection.recovered",
                ConnectionStatus::Connected,
                None,
                None,
                now,
            ));
        }
        // Stored if we still hold the lease, or if nobody stored newer tokens meanwhile (the
        // lease was taken over but the new holder has not finished): never lose fresh tokens.
        let logged = !events.is_empty();
        if self.commit(&conn.id, Some(conn.token_version), change, events).await? {
            if logged {
                tracing::info!(connection_id = %conn.id, provider = %provider, "connection recovered");
            }
        } else {
            tracing::warn!(connection_id = %conn.id, "another instance stored newer tokens; discarding this refresh's result");
        }
        Ok(())
    }

    /// The change that stores fresh tokens and schedules the next refresh.
    pub fn connected_change(
        &self,
        connection_id: &str,
        provider: Provider,
        tokens: ledgerlink_providers::TokenSet,
        now: Timestamp,
    ) -> ConnectionChange {
        let lifetime = tokens.expires_in.unwrap_or_else(|| provider.access_token_lifetime());
        let expires_at = now.saturating_add(lifetime);
        let next = self.policy.next_refresh_at(
            now,
            expires_at,
            provider.refresh_token_idle_lifetime(),
            rand::thread_rng().r#gen::<f64>(),
        );
        let refresh_token = tokens
            .refresh_token
            .as_ref()
            .map(|t| self.keys.encrypt_secret(t, &token_context(connection_id, "refresh_token")));
        ConnectionChange {
            status: ConnectionStatus::Connected.as_str().into(),
            reason: None,
            last_error: Some(None),
            tokens: Some(TokenWrite {
                access_token: self
                    .keys
                    .encrypt_secret(&tokens.access_token, &token_context(connection_id, "access_token")),
                access_issued_at: now,
                access_expires_at: expires_at,
                refresh_token_obtained_at: refresh_token.as_ref().map(|_| now),
                refresh_token,
                scope: tokens.scope,
            }),
            external_account: None,
            next_refresh_at: Some(next),
            failures: 0,
            clear_inflight: true,
            release_lease: true,
            now,
        }
    }

    async fn record_failure(
        &self,
        conn: &Connection,
        provider: Provider,
        error: ProviderError,
        outcome_was_unknown: bool,
    ) -> anyhow::Result<()> {
        let mut diagnosis = error.diagnosis(provider);
        self.metrics.inc(
            "ledgerlink_refresh_failures_total",
            &[("provider", provider.as_str()), ("category", diagnosis.category.as_str())],
        );
        if error.is_permanent() {
            if outcome_was_unknown {
                diagnosis.summary.push_str(
                    " An earlier refresh's answer was lost, and the provider no longer accepts the token it replaced.",
                );
            }
            if let Some(newer) = self.newer_link_elsewhere(conn).await? {
                let mut superseded = Diagnosis::superseded(
                    provider,
                    &crate::connections::describe(&newer),
                    &newer.linked_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                );
                superseded.http_status = diagnosis.http_status;
                superseded.provider_code = diagnosis.provider_code.clone();
                superseded.provider_message = diagnosis.provider_message.clone();
                return self.disconnect(conn, DisconnectReason::SupersededByDuplicateLink, superseded).await;
            }
            let reason = match (provider.refresh_token_idle_lifetime(), conn.refresh_token_obtained_at) {
                (Some(idle), Some(obtained)) if self.clock.now() >= obtained.saturating_add(idle) => {
                    DisconnectReason::RefreshTokenExpired
                }
                _ => DisconnectReason::AuthorizationRevoked,
            };
            return self.disconnect(conn, reason, diagnosis).await;
        }
        if let Some(wait) = error.retry_after() {
            return self.record_transient(conn, provider, diagnosis, Some(wait), true).await;
        }
        // Keep the marker when the provider may have processed the refresh.
        self.record_transient(conn, provider, diagnosis, None, !error.outcome_unknown()).await
    }

    /// The most recent link of the same external account by another organisation, made after
    /// this connection's own link: what a refused grant most likely means.
    async fn newer_link_elsewhere(&self, conn: &Connection) -> anyhow::Result<Option<LinkedConnection>> {
        let (Some(account), Some(linked_at)) = (&conn.external_account_id, conn.linked_at) else {
            return Ok(None);
        };
        let others = self.store.linked_elsewhere(&conn.tenant_id, &conn.provider, account, &conn.id).await?;
        Ok(others
            .into_iter()
            .filter(|o| {
                o.organisation_id != conn.organisation_id && o.linked_at.is_some_and(|t| t > linked_at)
            })
            .max_by_key(|o| o.linked_at))
    }

    async fn record_transient(
        &self,
        conn: &Connection,
        provider: Provider,
        diagnosis: Diagnosis,
        retry_after: Option<Duration>,
        clear_inflight: bool,
    ) -> anyhow::Result<()> {
        let now = self.clock.now();
        let failures = if retry_after.is_some() { conn.failures } else { conn.failures + 1 };
        let wait = retry_after.unwrap_or_else(|| {
            self.policy.backoff(
                failures as u32,
                now,
                conn.access_expires_at,
                rand::thread_rng().r#gen::<f64>(),
            )
        });
        let token_expired = conn.access_expires_at.is_none_or(|exp| exp <= now);
        let degrade = token_expired || failures >= DEGRADE_AFTER_FAILURES;
        let status = if degrade {
            ConnectionStatus::Degraded
        } else {
            conn.status.parse().unwrap_or(ConnectionStatus::Connected)
        };
        let mut events = Vec::new();
        if status == ConnectionStatus::Degraded && conn.status != ConnectionStatus::Degraded.as_str() {
            events.push(Self::event(conn, "connection.degraded", status, None, Some(&diagnosis), now));
            tracing::warn!(
                connection_id = %conn.id, provider = %provider, category = %diagnosis.category,
                retry_in_ms = wait.as_millis() as u64, "connection degraded: refreshing keeps failing"
            );
        }
        let change = ConnectionChange {
            status: status.as_str().into(),
            reason: None,
            last_error: Some(Some(serde_json::to_string(&diagnosis)?)),
            tokens: None,
            external_account: None,
            next_refresh_at: Some(now.saturating_add(wait)),
            failures,
            clear_inflight,
            release_lease: true,
            now,
        };
        self.commit(&conn.id, None, change, events).await?;
        Ok(())
    }

    async fn disconnect(
        &self,
        conn: &Connection,
        reason: DisconnectReason,
        diagnosis: Diagnosis,
    ) -> anyhow::Result<()> {
        let now = self.clock.now();
        let event = Self::event(
            conn,
            "connection.disconnected",
            ConnectionStatus::Disconnected,
            Some(reason),
            Some(&diagnosis),
            now,
        );
        let change = ConnectionChange {
            status: ConnectionStatus::Disconnected.as_str().into(),
            reason: Some(reason.as_str().into()),
            last_error: Some(Some(serde_json::to_string(&diagnosis)?)),
            tokens: None,
            external_account: None,
            next_refresh_at: None,
            failures: conn.failures + 1,
            clear_inflight: true,
            release_lease: true,
            now,
        };
        if self.commit(&conn.id, None, change, vec![event]).await? {
            tracing::warn!(
                connection_id = %conn.id, organisation_id = %conn.organisation_id, provider = %conn.provider,
                reason = reason.as_str(), provider_code = diagnosis.provider_code.as_deref().unwrap_or(""),
                "connection disconnected: a person must reconnect it"
            );
        }
        Ok(())
    }

    fn event(
        conn: &Connection,
        kind: &str,
        status: ConnectionStatus,
        reason: Option<DisconnectReason>,
        diagnosis: Option<&Diagnosis>,
        now: Timestamp,
    ) -> Event {
        let detail = diagnosis.map(|d| serde_json::json!({ "diagnosis": d }).to_string());
        Event::of(conn, kind, status.as_str(), reason.map(DisconnectReason::as_str), detail, now)
    }

    /// A valid access token for `id`, refreshing first if it is expired or about to be —
    /// joining a refresh already in flight here or in another instance rather than racing it.
    pub async fn access_token(&self, id: &str) -> Result<AccessToken, AccessTokenError> {
        self.access_token_replacing(id, None).await
    }

    /// Like [`Self::access_token`], but a token of version `rejected` (one the provider just
    /// answered 401 to) counts as expired: the connection is refreshed once, unless another
    /// refresh already replaced that token.
    pub async fn access_token_replacing(
        &self,
        id: &str,
        rejected: Option<i64>,
    ) -> Result<AccessToken, AccessTokenError> {
        let deadline = tokio::time::Instant::now() + self.config.provider_timeout + Duration::from_secs(10);
        let mut attempted = false;
        loop {
            let finished = self.finished.notified();
            let conn = match self.store.connection_by_id(id).await {
                Ok(Some(conn)) => conn,
                Ok(None) => {
                    return Err(AccessTokenError::Internal(anyhow::anyhow!("connection {id} vanished")));
                }
                Err(e) => return Err(AccessTokenError::Internal(e.into())),
            };
            let status: ConnectionStatus = conn.status.parse().unwrap_or(ConnectionStatus::Pending);
            match status {
                ConnectionStatus::Disconnected => return Err(AccessTokenError::Disconnected(conn)),
                ConnectionStatus::Pending | ConnectionStatus::Paused => {
                    return Err(AccessTokenError::NotReady(conn));
                }
                ConnectionStatus::Connected | ConnectionStatus::Degraded => {}
            }
            let now = self.clock.now();
            let (Some(sealed), Some(issued), Some(expires)) =
                (&conn.access_token, conn.access_issued_at, conn.access_expires_at)
            else {
                return Err(AccessTokenError::NotReady(conn));
            };
            let usable = expires > now;
            let stale = rejected == Some(conn.token_version);
            if (!stale && !self.policy.needs_refresh_now(now, issued, expires)) || (attempted && usable) {
                let token = self
                    .keys
                    .decrypt_secret(sealed, &token_context(id, "access_token"))
                    .map_err(|e| AccessTokenError::Internal(e.into()))?;
                return Ok(AccessToken { token, expires_at: expires, connection: conn });
            }
            if attempted && conn.lease_owner.is_none() {
                // We refreshed (or waited for a refresh) and the token is still expired.
                return Err(AccessTokenError::Unavailable(conn));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AccessTokenError::Unavailable(conn));
            }
            // Start the refresh ourselves if nobody holds it; otherwise wait for the holder.
            if let Some(_guard) = self.begin(id) {
                let claimed = self
                    .store
                    .claim(id, &self.instance, now, self.lease_until(now), self.alive_since(now))
                    .await
                    .map_err(|e| AccessTokenError::Internal(e.into()))?;
                if let Some(mut conn) = claimed {
                    // The claim returns the row as it is now: another refresh may have finished
                    // between our read and our claim.
                    let fresh = match (conn.access_issued_at, conn.access_expires_at) {
                        (Some(issued), Some(expires)) => {
                            !self.policy.needs_refresh_now(now, issued, expires)
                                && rejected != Some(conn.token_version)
                        }
                        _ => false,
                    };
                    if fresh {
                        self.release(&conn, now).await;
                        continue;
                    }
                    attempted = true;
                    // Due now, whatever the schedule said.
                    conn.next_refresh_at = Some(now);
                    if let Err(error) = self.refresh_leased(&conn, now, None).await {
                        tracing::error!(
                            connection_id = id,
                            error = format!("{error:#}"),
                            "refresh failed internally"
                        );
                        self.release(&conn, now).await;
                    }
                    continue;
                }
            }
            attempted = true;
            tokio::select! {
                () = finished => {}
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }
}

/// Marks a connection as in flight in this process until dropped.
struct InFlight<'a> {
    engine: &'a RefreshEngine,
    id: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.engine.in_flight.lock().expect("in-flight set poisoned").remove(&self.id);
        self.engine.finished.notify_waiters();
    }
}

/// A change that leaves the connection as it is and frees its lease.
fn unchanged(conn: &Connection, now: Timestamp) -> ConnectionChange {
    ConnectionChange { release_lease: true, ..ConnectionChange::keep(conn, now) }
}

/// Commits refresh results in groups: everything that finished while the previous commit was
/// being written goes into the next transaction (one fsync for all of them).
async fn write_loop(store: Arc<dyn Store>, instance: String, mut queue: mpsc::Receiver<Write>) {
    let mut batch = Vec::with_capacity(256);
    while queue.recv_many(&mut batch, 256).await > 0 {
        let pending: Vec<PendingChange<'_>> = batch
            .iter()
            .map(|w| PendingChange {
                id: &w.id,
                guard: match w.version {
                    Some(version) => Guard::LeaseHeldByOrVersion(&instance, version),
                    None => Guard::LeaseHeldBy(&instance),
                },
                change: &w.change,
                events: &w.events,
            })
            .collect();
        let result = store.apply_changes(&pending).await;
        drop(pending);
        match result {
            Ok(applied) => {
                for (write, applied) in batch.drain(..).zip(applied) {
                    let _ = write.done.send(Ok(applied));
                }
            }
            Err(error) => {
                let message = error.to_string();
                for write in batch.drain(..) {
                    let _ =
                        write.done.send(Err(anyhow::anyhow!("storing a refresh result failed: {message}")));
                }
            }
        }
    }
}
