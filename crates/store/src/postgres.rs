//! The PostgreSQL backend, for production and for several hub instances sharing one database.
//!
//! Connecting retries for a while (a database that starts after the hub is normal in container
//! deployments), then fails with a message that names the server without its password.

use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

use crate::common::{claim_returning, common_queries};
use crate::jobs::job_queries;
use crate::migrate::{self, CREATE_TABLE};
use crate::outbox::{alert_queries, linked_columns, subscription_columns};
use crate::{Backend, ConnectOptions, DatabaseUrl, Result, StoreError};

/// Held for the duration of a migration so that instances starting together migrate once.
const MIGRATION_LOCK: i64 = 0x6c65_6467_6572; // "ledger"

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &DatabaseUrl, options: &ConnectOptions) -> Result<Self> {
        let DatabaseUrl::Postgres(secret) = url else {
            return Err(StoreError::Migration("PostgresStore::connect needs a postgres:// URL".into()));
        };
        let connect_options: PgConnectOptions = secret.expose().parse().map_err(|source| {
            StoreError::Unavailable { url: url.redacted(), waited: Duration::ZERO, source }
        })?;
        // Probe with single connections: the pool would retry refused connections silently
        // until its acquire timeout, hiding the reason.
        let started = Instant::now();
        loop {
            match sqlx::PgConnection::connect_with(&connect_options).await {
                Ok(probe) => {
                    let _ = probe.close().await;
                    break;
                }
                Err(error) if is_transient(&error) && started.elapsed() < options.connect_timeout => {
                    tracing::warn!(url = %url, %error, "PostgreSQL is not reachable yet; retrying");
                    let remaining = options.connect_timeout.saturating_sub(started.elapsed());
                    tokio::time::sleep(remaining.min(Duration::from_millis(500))).await;
                }
                Err(source) => {
                    return Err(StoreError::Unavailable {
                        url: url.redacted(),
                        waited: started.elapsed(),
                        source,
                    });
                }
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy_with(connect_options);
        Ok(Self { pool })
    }

    async fn migrate_inner(&self) -> Result<Vec<i64>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(MIGRATION_LOCK).execute(&mut *tx).await?;
        sqlx::query(CREATE_TABLE).execute(&mut *tx).await?;
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations").fetch_all(&mut *tx).await?;
        let mut done = Vec::new();
        for migration in migrate::pending(migrate::POSTGRES, &applied)? {
            sqlx::Executor::execute(&mut *tx, migration.sql)
                .await
                .map_err(|e| StoreError::Migration(format!("{}: {e}", migration.name)))?;
            sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                .bind(migration.version)
                .bind(migration.name)
                .bind(ledgerlink_core::Clock::now(&ledgerlink_core::SystemClock).as_millis())
                .execute(&mut *tx)
                .await?;
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "applied PostgreSQL migration"
            );
            done.push(migration.version);
        }
        tx.commit().await?;
        Ok(done)
    }
}

/// Failures worth waiting out: the server is not listening yet, or is still starting up.
fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        // 57P03: cannot_connect_now ("the database system is starting up").
        sqlx::Error::Database(db) => db.code().as_deref() == Some("57P03"),
        _ => false,
    }
}

common_queries!(PostgresStore, Backend::Postgres, sqlx::postgres::PgRow, "FOR UPDATE SKIP LOCKED");
alert_queries!(PostgresStore, sqlx::postgres::PgRow, "FOR UPDATE SKIP LOCKED");
job_queries!(PostgresStore, sqlx::postgres::PgRow);
