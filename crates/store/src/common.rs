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

macro_rules! common_queries {
    ($store:ty, $backend:expr) => {
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

pub(crate) use common_queries;
