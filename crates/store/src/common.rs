//! The queries both backends share, written once.
//!
//! SQLite and PostgreSQL accept the same SQL for everything here (`$n` parameters, `RETURNING`,
//! `ON CONFLICT`), but sqlx gives each backend its own pool and row types, so the shared code
//! is a macro expanded into each backend's `impl Store`. Backend-specific methods are inherent
//! methods of the backend (`open`, `migrate_inner`, `close_inner`).

/// Maps a unique-constraint violation to [`crate::StoreError::Conflict`] with `message`.
pub(crate) fn conflict_or(err: sqlx::Error, message: impl FnOnce() -> String) -> crate::StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => crate::StoreError::Conflict(message()),
        _ => crate::StoreError::Database(err),
    }
}

/// Rows per `UPDATE … FROM (VALUES …)` statement. Only these sizes are used, so the handful of
/// statement texts stay in the prepared-statement cache instead of being prepared again for
/// every batch size; 128 rows × 20 parameters is far below both backends' limits.
const CHUNK_SIZES: [usize; 5] = [128, 32, 8, 2, 1];

/// The largest allowed chunk that fits in `remaining` changes.
pub(crate) fn chunk_len(remaining: usize) -> usize {
    CHUNK_SIZES.into_iter().find(|size| *size <= remaining).unwrap_or(1)
}

/// The batched update of [`crate::Store::apply_changes`] for `rows` changes. Each `VALUES` row
/// carries one change and its guard; `RETURNING` names the rows the guards let through. The
/// same text works on SQLite (3.33+) and PostgreSQL, except the placeholders: SQLite gets
/// anonymous `?`, because binding numbered ones makes sqlx look each name up in a list that SQLite
/// walks from the start (quadratic in the 2,560 parameters of a full chunk — most of the hub's
/// time in the refresh benchmark before this).
pub(crate) fn batch_update_sql(rows: usize, backend: crate::Backend) -> String {
    const COLUMNS: usize = 20;
    let mut values = String::with_capacity(rows * 100);
    for row in 0..rows {
        if row > 0 {
            values.push_str(", ");
        }
        values.push('(');
        for column in 0..COLUMNS {
            if column > 0 {
                values.push_str(", ");
            }
            match backend {
                crate::Backend::Sqlite => values.push('?'),
                crate::Backend::Postgres => values.push_str(&format!("${}", row * COLUMNS + column + 1)),
            }
        }
        values.push(')');
    }
    format!(
        "WITH v (target, owner, version, status, reason, now, set_error, error, access_token, access_issued_at,
                 access_expires_at, refresh_token, refresh_token_obtained_at, scope, account_id, account_name,
                 next_refresh_at, failures, clear_inflight, release_lease) AS (VALUES {values})
         UPDATE connections AS c SET
            status = v.status,
            reason = v.reason,
            status_since = CASE WHEN c.status <> v.status THEN v.now ELSE c.status_since END,
            connected_at = CASE WHEN v.status = 'connected' AND c.status <> 'connected' THEN v.now ELSE c.connected_at END,
            linked_at = CASE WHEN v.account_id IS NULL THEN c.linked_at ELSE v.now END,
            last_error = CASE WHEN v.set_error THEN v.error ELSE c.last_error END,
            access_token = COALESCE(v.access_token, c.access_token),
            access_issued_at = COALESCE(v.access_issued_at, c.access_issued_at),
            access_expires_at = COALESCE(v.access_expires_at, c.access_expires_at),
            refresh_token = COALESCE(v.refresh_token, c.refresh_token),
            refresh_token_obtained_at = COALESCE(v.refresh_token_obtained_at, c.refresh_token_obtained_at),
            scope = COALESCE(v.scope, c.scope),
            token_version = c.token_version + (CASE WHEN v.access_token IS NULL THEN 0 ELSE 1 END),
            external_account_id = COALESCE(v.account_id, c.external_account_id),
            external_account_name = COALESCE(v.account_name, c.external_account_name),
            next_refresh_at = v.next_refresh_at,
            failures = v.failures,
            inflight_refresh_token = CASE WHEN v.clear_inflight THEN NULL ELSE c.inflight_refresh_token END,
            inflight_since = CASE WHEN v.clear_inflight THEN NULL ELSE c.inflight_since END,
            lease_owner = CASE WHEN v.release_lease THEN NULL ELSE c.lease_owner END,
            lease_expires_at = CASE WHEN v.release_lease THEN NULL ELSE c.lease_expires_at END,
            updated_at = v.now
         FROM v
         WHERE c.id = v.target AND (v.owner = '' OR c.lease_owner = v.owner OR c.token_version = v.version)
         RETURNING id"
    )
}

/// The columns a claim returns: everything but the access token, which a refresh never reads
/// (and which, as a JWT, is the widest column).
macro_rules! claim_returning {
    () => {
        " RETURNING id, tenant_id, organisation_id, provider, status, reason, status_since,
            external_account_id, external_account_name, last_error, redirect_url,
            CAST(NULL AS TEXT) AS access_token, access_issued_at, access_expires_at, refresh_token,
            refresh_token_obtained_at, scope, token_version, next_refresh_at, failures, inflight_refresh_token,
            inflight_since, lease_owner, lease_expires_at, created_at, updated_at, connected_at, linked_at"
    };
}

macro_rules! common_queries {
    ($store:ty, $backend:expr, $row:ty, $skip_locked:literal) => {
        #[async_trait::async_trait]
        impl $crate::Store for $store {
            fn backend(&self) -> $crate::Backend {
                $backend
            }

            async fn migrate(&self) -> $crate::Result<Vec<i64>> {
                self.migrate_inner().await
            }

            async fn schema_version(&self) -> $crate::Result<i64> {
                let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(version.unwrap_or(0))
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            async fn setting(&self, key: &str) -> $crate::Result<Option<String>> {
                Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn insert_setting_if_absent(
                &self,
                key: &str,
                value: &str,
                now: ledgerlink_core::Timestamp,
            ) -> $crate::Result<String> {
                sqlx::query("INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING")
                    .bind(key)
                    .bind(value)
                    .bind(now.as_millis())
                    .execute(&self.pool)
                    .await?;
                Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                    .bind(key)
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn create_tenant(&self, tenant: &$crate::Tenant, api_key_hash: &str) -> $crate::Result<()> {
                sqlx::query("INSERT INTO tenants (id, name, api_key_hash, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(&tenant.id)
                    .bind(&tenant.name)
                    .bind(api_key_hash)
                    .bind(tenant.created_at.as_millis())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| $crate::common::conflict_or(e, || "a tenant with this id or API key exists".into()))?;
                Ok(())
            }

            async fn tenant(&self, id: &str) -> $crate::Result<Option<$crate::Tenant>> {
                let row: Option<(String, String, i64)> =
                    sqlx::query_as("SELECT id, name, created_at FROM tenants WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.map(tenant_from_row))
            }

            async fn tenant_by_api_key_hash(&self, api_key_hash: &str) -> $crate::Result<Option<$crate::Tenant>> {
                let row: Option<(String, String, i64)> =
                    sqlx::query_as("SELECT id, name, created_at FROM tenants WHERE api_key_hash = $1")
                        .bind(api_key_hash)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.map(tenant_from_row))
            }

            async fn create_organisation(&self, org: &$crate::Organisation) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO organisations (id, tenant_id, name, external_id, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&org.id)
                .bind(&org.tenant_id)
                .bind(&org.name)
                .bind(&org.external_id)
                .bind(org.created_at.as_millis())
                .bind(org.updated_at.as_millis())
                .execute(&self.pool)
                .await
                .map_err(|e| $crate::common::conflict_or(e, || external_id_taken(&org.external_id)))?;
                Ok(())
            }

            async fn organisation(&self, tenant_id: &str, id: &str) -> $crate::Result<Option<$crate::Organisation>> {
                let row: Option<OrganisationRow> = sqlx::query_as(
                    "SELECT id, tenant_id, name, external_id, created_at, updated_at
                     FROM organisations WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(organisation_from_row))
            }

            async fn list_organisations(
                &self,
                tenant_id: &str,
                after: Option<&str>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::Organisation>> {
                let rows: Vec<OrganisationRow> = sqlx::query_as(
                    "SELECT id, tenant_id, name, external_id, created_at, updated_at
                     FROM organisations WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(tenant_id)
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(organisation_from_row).collect())
            }

            async fn update_organisation(&self, org: &$crate::Organisation) -> $crate::Result<bool> {
                let result = sqlx::query(
                    "UPDATE organisations SET name = $3, external_id = $4, updated_at = $5
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(&org.tenant_id)
                .bind(&org.id)
                .bind(&org.name)
                .bind(&org.external_id)
                .bind(org.updated_at.as_millis())
                .execute(&self.pool)
                .await
                .map_err(|e| $crate::common::conflict_or(e, || external_id_taken(&org.external_id)))?;
                Ok(result.rows_affected() == 1)
            }

            async fn delete_organisation(&self, tenant_id: &str, id: &str) -> $crate::Result<bool> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "DELETE FROM email_outbox WHERE status = 'pending' AND connection_id IN
                        (SELECT id FROM connections WHERE tenant_id = $1 AND organisation_id = $2)",
                )
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM organisation_users WHERE tenant_id = $1 AND organisation_id = $2")
                    .bind(tenant_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let result = sqlx::query("DELETE FROM organisations WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(result.rows_affected() == 1)
            }

            async fn add_user(&self, user: &$crate::User) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO organisation_users (id, tenant_id, organisation_id, name, email, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&user.id)
                .bind(&user.tenant_id)
                .bind(&user.organisation_id)
                .bind(&user.name)
                .bind(&user.email)
                .bind(user.created_at.as_millis())
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    $crate::common::conflict_or(e, || format!("this organisation already has a user with email {}", user.email))
                })?;
                Ok(())
            }

            async fn list_users(
                &self,
                tenant_id: &str,
                organisation_id: &str,
                after: Option<&str>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::User>> {
                let rows: Vec<(String, String, String, String, String, i64)> = sqlx::query_as(
                    "SELECT id, tenant_id, organisation_id, name, email, created_at FROM organisation_users
                     WHERE tenant_id = $1 AND organisation_id = $2 AND id > $3 ORDER BY id LIMIT $4",
                )
                .bind(tenant_id)
                .bind(organisation_id)
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, tenant_id, organisation_id, name, email, created_at)| $crate::User {
                        id,
                        tenant_id,
                        organisation_id,
                        name,
                        email,
                        created_at: ledgerlink_core::Timestamp::from_millis(created_at),
                    })
                    .collect())
            }

            async fn remove_user(&self, tenant_id: &str, organisation_id: &str, user_id: &str) -> $crate::Result<bool> {
                let result = sqlx::query(
                    "DELETE FROM organisation_users WHERE tenant_id = $1 AND organisation_id = $2 AND id = $3",
                )
                .bind(tenant_id)
                .bind(organisation_id)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() == 1)
            }

            async fn create_connection(&self, c: &$crate::Connection, event: &$crate::Event) -> $crate::Result<()> {
                let mut tx = self.pool.begin().await?;
                insert_connection(&mut *tx, c, None).await?;
                insert_event(&mut *tx, event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn connection(&self, tenant_id: &str, id: &str) -> $crate::Result<Option<$crate::Connection>> {
                let row: Option<$row> = sqlx::query("SELECT * FROM connections WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(connection_from_row).transpose()?)
            }

            async fn connection_by_id(&self, id: &str) -> $crate::Result<Option<$crate::Connection>> {
                let row: Option<$row> = sqlx::query("SELECT * FROM connections WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(connection_from_row).transpose()?)
            }

            async fn list_connections(
                &self,
                tenant_id: &str,
                filter: &$crate::ConnectionFilter,
                after: Option<&str>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::Connection>> {
                let rows: Vec<$row> = sqlx::query(
                    "SELECT * FROM connections WHERE tenant_id = $1 AND id > $2
                       AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR provider = $4)
                       AND ($5 IS NULL OR organisation_id = $5)
                     ORDER BY id LIMIT $6",
                )
                .bind(tenant_id)
                .bind(after.unwrap_or(""))
                .bind(&filter.status)
                .bind(&filter.provider)
                .bind(&filter.organisation_id)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(connection_from_row).collect::<Result<_, _>>()?)
            }

            async fn delete_connection(&self, tenant_id: &str, id: &str) -> $crate::Result<bool> {
                let mut tx = self.pool.begin().await?;
                // Emails not sent yet would be about a connection that no longer exists.
                sqlx::query("DELETE FROM email_outbox WHERE connection_id = $1 AND status = 'pending'")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                for table in ["oauth_states", "connection_events"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE connection_id = $1"))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                let result = sqlx::query("DELETE FROM connections WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if result.rows_affected() == 1 {
                    tx.commit().await?;
                    Ok(true)
                } else {
                    tx.rollback().await?;
                    Ok(false)
                }
            }

            async fn update_connection(
                &self,
                id: &str,
                guard: $crate::Guard<'_>,
                change: &$crate::ConnectionChange,
                events: &[$crate::Event],
            ) -> $crate::Result<bool> {
                let applied = self.apply_changes(&[$crate::PendingChange { id, guard, change, events }]).await?;
                Ok(applied[0])
            }

            async fn apply_changes(&self, batch: &[$crate::PendingChange<'_>]) -> $crate::Result<Vec<bool>> {
                let mut tx = self.pool.begin().await?;
                let mut applied = Vec::with_capacity(batch.len());
                let mut rest = batch;
                while !rest.is_empty() {
                    let (chunk, tail) = rest.split_at($crate::common::chunk_len(rest.len()));
                    applied.extend(apply_chunk(&mut *tx, chunk).await?);
                    rest = tail;
                }
                tx.commit().await?;
                Ok(applied)
            }

            async fn import_connections(&self, connections: &[$crate::Connection]) -> $crate::Result<()> {
                let mut tx = self.pool.begin().await?;
                for c in connections {
                    sqlx::query(
                        "INSERT INTO connections (id, tenant_id, organisation_id, provider, status, reason, status_since,
                            external_account_id, external_account_name, last_error, redirect_url, access_token,
                            access_issued_at, access_expires_at, refresh_token, refresh_token_obtained_at, scope,
                            token_version, next_refresh_at, failures, created_at, updated_at, connected_at, linked_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
                            $20, $21, $22, $23, $24)",
                    )
                    .bind(&c.id)
                    .bind(&c.tenant_id)
                    .bind(&c.organisation_id)
                    .bind(&c.provider)
                    .bind(&c.status)
                    .bind(&c.reason)
                    .bind(c.status_since.as_millis())
                    .bind(&c.external_account_id)
                    .bind(&c.external_account_name)
                    .bind(&c.last_error)
                    .bind(&c.redirect_url)
                    .bind(&c.access_token)
                    .bind(c.access_issued_at.map(|t| t.as_millis()))
                    .bind(c.access_expires_at.map(|t| t.as_millis()))
                    .bind(&c.refresh_token)
                    .bind(c.refresh_token_obtained_at.map(|t| t.as_millis()))
                    .bind(&c.scope)
                    .bind(c.token_version)
                    .bind(c.next_refresh_at.map(|t| t.as_millis()))
                    .bind(c.failures)
                    .bind(c.created_at.as_millis())
                    .bind(c.updated_at.as_millis())
                    .bind(c.connected_at.map(|t| t.as_millis()))
                    .bind(c.linked_at.map(|t| t.as_millis()))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_events(
                &self,
                tenant_id: &str,
                connection_id: &str,
                after: Option<&str>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::Event>> {
                let rows: Vec<(String, String, String, String, String, Option<String>, Option<String>, i64)> =
                    sqlx::query_as(
                        "SELECT id, tenant_id, connection_id, type, status, reason, detail, created_at
                         FROM connection_events
                         WHERE tenant_id = $1 AND connection_id = $2
                           AND seq > COALESCE((SELECT seq FROM connection_events WHERE id = $3), 0)
                         ORDER BY seq LIMIT $4",
                    )
                    .bind(tenant_id)
                    .bind(connection_id)
                    .bind(after.unwrap_or(""))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, tenant_id, connection_id, kind, status, reason, detail, created_at)| $crate::Event {
                        id,
                        tenant_id,
                        connection_id,
                        kind,
                        status,
                        reason,
                        detail,
                        created_at: ledgerlink_core::Timestamp::from_millis(created_at),
                    })
                    .collect())
            }

            async fn insert_oauth_state(&self, state: &$crate::OAuthState) -> $crate::Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM oauth_states WHERE connection_id = $1")
                    .bind(&state.connection_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO oauth_states (state_hash, connection_id, code_verifier, redirect_uri, expires_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&state.state_hash)
                .bind(&state.connection_id)
                .bind(&state.code_verifier)
                .bind(&state.redirect_uri)
                .bind(state.expires_at.as_millis())
                .bind(state.created_at.as_millis())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn take_oauth_state(&self, state_hash: &str) -> $crate::Result<Option<$crate::OAuthState>> {
                let row: Option<(String, String, Option<String>, String, i64, i64)> = sqlx::query_as(
                    "DELETE FROM oauth_states WHERE state_hash = $1
                     RETURNING state_hash, connection_id, code_verifier, redirect_uri, expires_at, created_at",
                )
                .bind(state_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(state_hash, connection_id, code_verifier, redirect_uri, expires_at, created_at)| {
                    $crate::OAuthState {
                        state_hash,
                        connection_id,
                        code_verifier,
                        redirect_uri,
                        expires_at: ledgerlink_core::Timestamp::from_millis(expires_at),
                        created_at: ledgerlink_core::Timestamp::from_millis(created_at),
                    }
                }))
            }

            async fn heartbeat(&self, instance: &str, now: ledgerlink_core::Timestamp) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO hub_instances (id, started_at, heartbeat_at) VALUES ($1, $2, $2)
                     ON CONFLICT (id) DO UPDATE SET heartbeat_at = $2",
                )
                .bind(instance)
                .bind(now.as_millis())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn claim_due(
                &self,
                instance: &str,
                now: ledgerlink_core::Timestamp,
                lease_until: ledgerlink_core::Timestamp,
                alive_since: ledgerlink_core::Timestamp,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::Connection>> {
                let rows: Vec<$row> = sqlx::query(concat!(
                    "UPDATE connections SET lease_owner = $1, lease_expires_at = $2,
                        inflight_refresh_token = COALESCE(inflight_refresh_token, refresh_token),
                        inflight_since = COALESCE(inflight_since, $3)
                     WHERE id IN (
                        SELECT id FROM connections
                        WHERE next_refresh_at IS NOT NULL AND next_refresh_at <= $3
                          AND (lease_owner IS NULL OR lease_expires_at < $3
                               OR lease_owner NOT IN (SELECT id FROM hub_instances WHERE heartbeat_at >= $4))
                        ORDER BY next_refresh_at LIMIT $5 ",
                    $skip_locked,
                    ")",
                    claim_returning!()
                ))
                .bind(instance)
                .bind(lease_until.as_millis())
                .bind(now.as_millis())
                .bind(alive_since.as_millis())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(connection_from_row).collect::<Result<_, _>>()?)
            }

            async fn claim(
                &self,
                id: &str,
                instance: &str,
                now: ledgerlink_core::Timestamp,
                lease_until: ledgerlink_core::Timestamp,
                alive_since: ledgerlink_core::Timestamp,
            ) -> $crate::Result<Option<$crate::Connection>> {
                let row: Option<$row> = sqlx::query(concat!(
                    "UPDATE connections SET lease_owner = $1, lease_expires_at = $2,
                        inflight_refresh_token = COALESCE(inflight_refresh_token, refresh_token),
                        inflight_since = COALESCE(inflight_since, $3)
                     WHERE id = $5
                       AND (lease_owner IS NULL OR lease_expires_at < $3
                            OR lease_owner NOT IN (SELECT id FROM hub_instances WHERE heartbeat_at >= $4))",
                    claim_returning!()
                ))
                .bind(instance)
                .bind(lease_until.as_millis())
                .bind(now.as_millis())
                .bind(alive_since.as_millis())
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.as_ref().map(connection_from_row).transpose()?)
            }

            async fn purge_expired(
                &self,
                now: ledgerlink_core::Timestamp,
                instances_dead_since: ledgerlink_core::Timestamp,
            ) -> $crate::Result<(u64, u64)> {
                let states = sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
                    .bind(now.as_millis())
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                let instances = sqlx::query("DELETE FROM hub_instances WHERE heartbeat_at < $1")
                    .bind(instances_dead_since.as_millis())
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok((states, instances))
            }

            async fn release_all_leases(&self) -> $crate::Result<u64> {
                let result = sqlx::query(
                    "UPDATE connections SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner IS NOT NULL",
                )
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected())
            }

            async fn next_refresh_due(&self) -> $crate::Result<Option<ledgerlink_core::Timestamp>> {
                let due: Option<i64> = sqlx::query_scalar(
                    "SELECT MIN(next_refresh_at) FROM connections WHERE next_refresh_at IS NOT NULL",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok(due.map(ledgerlink_core::Timestamp::from_millis))
            }
        }

        /// Guarded changes in one statement (`UPDATE … FROM` a `VALUES` list, which SQLite and
        /// PostgreSQL both accept), then the events of those that applied.
        async fn apply_chunk(
            conn: &mut <<$row as sqlx::Row>::Database as sqlx::Database>::Connection,
            chunk: &[$crate::PendingChange<'_>],
        ) -> Result<Vec<bool>, sqlx::Error> {
            let sql = $crate::common::batch_update_sql(chunk.len(), $backend);
            let mut query = sqlx::query_scalar::<_, String>(&sql);
            for pending in chunk {
                let change = pending.change;
                let (owner, version) = match pending.guard {
                    $crate::Guard::Any => ("", -1),
                    $crate::Guard::LeaseHeldBy(owner) => (owner, -1),
                    $crate::Guard::LeaseHeldByOrVersion(owner, version) => (owner, version),
                };
                let tokens = change.tokens.as_ref();
                let (account_id, account_name) = match &change.external_account {
                    Some((id, name)) => (Some(id.as_str()), name.as_deref()),
                    None => (None, None),
                };
                query = query
                    .bind(pending.id)
                    .bind(owner)
                    .bind(version)
                    .bind(change.status.as_str())
                    .bind(change.reason.as_deref())
                    .bind(change.now.as_millis())
                    .bind(change.last_error.is_some())
                    .bind(change.last_error.as_ref().and_then(|e| e.as_deref()))
                    .bind(tokens.map(|t| t.access_token.as_str()))
                    .bind(tokens.map(|t| t.access_issued_at.as_millis()))
                    .bind(tokens.map(|t| t.access_expires_at.as_millis()))
                    .bind(tokens.and_then(|t| t.refresh_token.as_deref()))
                    .bind(tokens.and_then(|t| t.refresh_token_obtained_at).map(|t| t.as_millis()))
                    .bind(tokens.and_then(|t| t.scope.as_deref()))
                    .bind(account_id)
                    .bind(account_name)
                    .bind(change.next_refresh_at.map(|t| t.as_millis()))
                    .bind(change.failures)
                    .bind(change.clear_inflight)
                    .bind(change.release_lease);
            }
            let updated: std::collections::HashSet<String> = query.fetch_all(&mut *conn).await?.into_iter().collect();
            let mut applied = Vec::with_capacity(chunk.len());
            for pending in chunk {
                let ok = updated.contains(pending.id);
                if ok {
                    for event in pending.events {
                        insert_event(&mut *conn, event).await?;
                    }
                }
                applied.push(ok);
            }
            Ok(applied)
        }

        /// A new connection row, with the login of a password connection.
        async fn insert_connection<'e, E>(
            executor: E,
            c: &$crate::Connection,
            login: Option<&$crate::jobs::PasswordLogin>,
        ) -> Result<(), sqlx::Error>
        where
            E: sqlx::Executor<'e, Database = <$row as sqlx::Row>::Database>,
        {
            sqlx::query(
                "INSERT INTO connections (id, tenant_id, organisation_id, provider, status, reason, status_since,
                    redirect_url, created_at, updated_at, external_account_id, external_account_name,
                    username, secret, options, login_key)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            )
            .bind(&c.id)
            .bind(&c.tenant_id)
            .bind(&c.organisation_id)
            .bind(&c.provider)
            .bind(&c.status)
            .bind(&c.reason)
            .bind(c.status_since.as_millis())
            .bind(&c.redirect_url)
            .bind(c.created_at.as_millis())
            .bind(c.updated_at.as_millis())
            .bind(&c.external_account_id)
            .bind(&c.external_account_name)
            .bind(login.map(|l| l.username.as_str()))
            .bind(login.map(|l| l.secret.as_str()))
            .bind(login.and_then(|l| l.options.as_deref()))
            .bind(login.and_then(|l| l.login_key.as_deref()))
            .execute(executor)
            .await?;
            Ok(())
        }

        async fn insert_event<'e, E>(executor: E, event: &$crate::Event) -> Result<(), sqlx::Error>
        where
            E: sqlx::Executor<'e, Database = <$row as sqlx::Row>::Database>,
        {
            sqlx::query(
                "INSERT INTO connection_events (id, tenant_id, connection_id, type, status, reason, detail, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&event.id)
            .bind(&event.tenant_id)
            .bind(&event.connection_id)
            .bind(&event.kind)
            .bind(&event.status)
            .bind(&event.reason)
            .bind(&event.detail)
            .bind(event.created_at.as_millis())
            .execute(executor)
            .await?;
            Ok(())
        }

        fn connection_from_row(row: &$row) -> Result<$crate::Connection, sqlx::Error> {
            use sqlx::Row;
            let ts = |column: &str| -> Result<ledgerlink_core::Timestamp, sqlx::Error> {
                Ok(ledgerlink_core::Timestamp::from_millis(row.try_get::<i64, _>(column)?))
            };
            Ok($crate::Connection {
                id: row.try_get("id")?,
                tenant_id: row.try_get("tenant_id")?,
                organisation_id: row.try_get("organisation_id")?,
                provider: row.try_get("provider")?,
                status: row.try_get("status")?,
                reason: row.try_get("reason")?,
                status_since: ts("status_since")?,
                external_account_id: row.try_get("external_account_id")?,
                external_account_name: row.try_get("external_account_name")?,
                last_error: row.try_get("last_error")?,
                redirect_url: row.try_get("redirect_url")?,
                access_token: row.try_get("access_token")?,
                access_issued_at: opt_ts_at(row, "access_issued_at")?,
                access_expires_at: opt_ts_at(row, "access_expires_at")?,
                refresh_token: row.try_get("refresh_token")?,
                refresh_token_obtained_at: opt_ts_at(row, "refresh_token_obtained_at")?,
                scope: row.try_get("scope")?,
                token_version: row.try_get("token_version")?,
                next_refresh_at: opt_ts_at(row, "next_refresh_at")?,
                failures: row.try_get("failures")?,
                inflight_refresh_token: row.try_get("inflight_refresh_token")?,
                inflight_since: opt_ts_at(row, "inflight_since")?,
                lease_owner: row.try_get("lease_owner")?,
                lease_expires_at: opt_ts_at(row, "lease_expires_at")?,
                created_at: ts("created_at")?,
                updated_at: ts("updated_at")?,
                connected_at: opt_ts_at(row, "connected_at")?,
                linked_at: opt_ts_at(row, "linked_at")?,
            })
        }

        /// A nullable millisecond column as a timestamp.
        fn opt_ts_at(row: &$row, column: &str) -> Result<Option<ledgerlink_core::Timestamp>, sqlx::Error> {
            use sqlx::Row;
            Ok(row.try_get::<Option<i64>, _>(column)?.map(ledgerlink_core::Timestamp::from_millis))
        }

        type OrganisationRow = (String, String, String, Option<String>, i64, i64);

        fn organisation_from_row(row: OrganisationRow) -> $crate::Organisation {
            let (id, tenant_id, name, external_id, created_at, updated_at) = row;
            $crate::Organisation {
                id,
                tenant_id,
                name,
                external_id,
                created_at: ledgerlink_core::Timestamp::from_millis(created_at),
                updated_at: ledgerlink_core::Timestamp::from_millis(updated_at),
            }
        }

        fn tenant_from_row((id, name, created_at): (String, String, i64)) -> $crate::Tenant {
            $crate::Tenant { id, name, created_at: ledgerlink_core::Timestamp::from_millis(created_at) }
        }

        fn external_id_taken(external_id: &Option<String>) -> String {
            format!(
                "another organisation of this tenant already has external_id {:?}",
                external_id.as_deref().unwrap_or_default()
            )
        }
    };
}

pub(crate) use {claim_returning, common_queries};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_batch_splits_into_allowed_chunks_that_add_up() {
        for total in 1..=600 {
            let mut rest = total;
            let mut chunks = Vec::new();
            while rest > 0 {
                let len = chunk_len(rest);
                assert!(CHUNK_SIZES.contains(&len) && len <= rest, "{total}: {len}");
                chunks.push(len);
                rest -= len;
            }
            assert_eq!(chunks.iter().sum::<usize>(), total);
            // The worst remainder under 128 is 3×32 + 3×8 + 3×2 + 1: ten statements.
            assert!(chunks.len() <= total / 128 + 10, "{total} took {} statements", chunks.len());
        }
    }

    #[test]
    fn the_batch_statement_numbers_every_parameter_once() {
        let sql = batch_update_sql(3, crate::Backend::Postgres);
        assert!(sql.contains("$60") && !sql.contains("$61"), "{sql}");
        assert!(sql.contains("RETURNING id"));
        let sqlite = batch_update_sql(3, crate::Backend::Sqlite);
        assert_eq!(sqlite.matches('?').count(), 60);
        assert!(!sqlite.contains('$'));
    }
}
