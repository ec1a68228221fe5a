//! The embedded backend: one SQLite file, in WAL mode.
//!
//! The pool holds a single connection. SQLite allows one writer at a time, and a pool of
//! several would turn that into "database is locked" errors under load; one connection with
//! short transactions serialises writes without errors, and WAL keeps the file consistent if
//! the process dies mid-write. `synchronous=FULL` makes every commit survive a power cut too: a
//! stored refresh token must never roll back. The refresh engine groups its commits, so the
//! fsync per commit costs little.

use std::path::Path;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::common::{claim_returning, common_queries};
use crate::jobs::job_queries;
use crate::migrate::{self, CREATE_TABLE};
use crate::outbox::{alert_queries, linked_columns, subscription_columns};
use crate::{Backend, Result, StoreError};

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`. The directory must exist.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // A 16 MB page cache: enough for the hot pages of a busy hub, small enough that a hub
            // holding a million connections stays lean. It only grows with pages touched.
            .pragma("cache_size", "-16384")
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Unavailable {
                url: format!("sqlite://{}", path.display()),
                waited: Duration::ZERO,
                source,
            })?;
        Ok(Self { pool })
    }

    async fn migrate_inner(&self) -> Result<Vec<i64>> {
        sqlx::query(CREATE_TABLE).execute(&self.pool).await?;
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations").fetch_all(&self.pool).await?;
        let mut done = Vec::new();
        for migration in migrate::pending(migrate::SQLITE, &applied)? {
            let mut tx = self.pool.begin().await?;
            sqlx::Executor::execute(&mut *tx, migration.sql)
                .await
                .map_err(|e| StoreError::Migration(format!("{}: {e}", migration.name)))?;
            sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                .bind(migration.version)
                .bind(migration.name)
                .bind(ledgerlink_core::Clock::now(&ledgerlink_core::SystemClock).as_millis())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version = migration.version, name = migration.name, "applied SQLite migration");
            done.push(migration.version);
        }
        Ok(done)
    }
}

common_queries!(SqliteStore, Backend::Sqlite, sqlx::sqlite::SqliteRow, "");
alert_queries!(SqliteStore, sqlx::sqlite::SqliteRow, "");
job_queries!(SqliteStore, sqlx::sqlite::SqliteRow);
