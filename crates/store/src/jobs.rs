//! The web connector's side of the store: password credentials of a connection and the durable
//! queue of qbXML jobs for desktop company files.
//!
//! A job is `queued` until a connector asks for work, `in_progress` while it is handed out (its
//! `exchange` is the token in the `postURL` its answer comes back to; an iterator job stays in
//! progress across its pages), then `done`, `failed` or `cancelled`. Every change of a job that
//! is handed out is guarded by its exchange token, so a late or duplicated answer, or two hub
//! instances, can never apply one answer twice.

use async_trait::async_trait;
use ledgerlink_core::Timestamp;

use crate::{Connection, Event, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub tenant_id: String,
    pub connection_id: String,
    /// `queued`, `in_progress`, `done`, `failed` or `cancelled`.
    pub status: String,
    pub priority: i64,
    /// The app's qbXML request document, exactly as given.
    pub request: String,
    /// One full qbXML response document per exchange, in order (JSON array of strings).
    pub responses: String,
    /// Pages of an iterator run not yet complete (JSON array of strings).
    pub pages: String,
    /// Exchanges handed out (and failed ones counted) so far.
    pub attempts: i64,
    /// Times an iterator query started over.
    pub restarts: i64,
    /// The token of the `postURL` while the job is handed out.
    pub exchange: Option<String>,
    /// `first`, `again` (handed out again after a lost answer) or `continue` (an iterator page).
    pub exchange_kind: Option<String>,
    /// The qbXML handed out in the current exchange.
    pub exchange_request: Option<String>,
    pub exchange_sent_at: Option<Timestamp>,
    /// The `state` an immediate repeat GET must carry to continue this job's iterator.
    pub continue_state: Option<String>,
    pub iterator_id: Option<String>,
    /// The `newMessageSetID` of a write job, for qbXML error recovery.
    pub message_set_id: Option<String>,
    /// JSON diagnosis of the last failure.
    pub diagnosis: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// The login of a password connection, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PasswordLogin {
    pub username: String,
    /// An argon2 hash (credentials the hub checks) or an encrypted envelope (ones it sends).
    pub secret: String,
    /// JSON: where to log in (instance URL, tenant or company, branch).
    pub options: Option<String>,
    /// Names the server and user, to find connections sharing one API user.
    pub login_key: Option<String>,
}

/// A connection's login, as the hub checks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    /// An argon2 PHC string.
    pub secret: String,
    pub login_failures: i64,
    pub login_blocked_until: Option<Timestamp>,
}

#[async_trait]
pub trait Jobs: Send + Sync {
    /// Creates a connection with its login and first event, in one transaction.
    async fn create_password_connection(
        &self,
        connection: &Connection,
        event: &Event,
        login: &PasswordLogin,
    ) -> Result<()>;
    /// Replaces a connection's login (and clears its failed-login count).
    async fn set_login(&self, connection_id: &str, login: &PasswordLogin) -> Result<bool>;
    /// The stored login, options included.
    async fn login(&self, connection_id: &str) -> Result<Option<PasswordLogin>>;
    /// Other connections of the tenant with the same login key: `(connection id, organisation id)`.
    async fn shared_logins(
        &self,
        tenant_id: &str,
        login_key: &str,
        except: &str,
    ) -> Result<Vec<(String, String)>>;
    async fn credentials(&self, connection_id: &str) -> Result<Option<Credentials>>;
    /// Records a login: success clears the failure count; a failure counts, and blocks further
    /// logins until `block_until` once `block_after` failures in a row are reached.
    async fn record_login(
        &self,
        connection_id: &str,
        ok: bool,
        block_after: i64,
        block_until: Timestamp,
    ) -> Result<()>;

    async fn create_job(&self, job: &Job) -> Result<()>;
    async fn job(&self, tenant_id: &str, id: &str) -> Result<Option<Job>>;
    async fn job_by_exchange(&self, exchange: &str) -> Result<Option<Job>>;
    async fn list_jobs(
        &self,
        tenant_id: &str,
        connection_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Job>>;
    /// The job the connection is in the middle of, if any.
    async fn active_job(&self, connection_id: &str) -> Result<Option<Job>>;
    /// Takes the next queued job (highest priority, then oldest) when none is in progress, lets
    /// `prepare` turn it into what to store (handed out, or failed with its events), and stores
    /// that in the same transaction: two instances never take the same job, and a hand-out costs
    /// one commit. Returns the stored job.
    async fn hand_out_next(
        &self,
        connection_id: &str,
        prepare: &(dyn Fn(Job) -> (Job, Vec<Event>) + Send + Sync),
    ) -> Result<Option<Job>>;
    /// Stores `job` if its exchange is still `expected_exchange` (`None`: not handed out).
    async fn update_job(&self, job: &Job, expected_exchange: Option<&str>) -> Result<bool>;
    /// Stores `job` with its events (job.completed, job.failed) under the same guard.
    async fn finish_job(&self, job: &Job, expected_exchange: &str, events: &[Event]) -> Result<bool>;
    /// Cancels a queued job; false if it is not queued (handed out, finished or gone).
    async fn cancel_job(&self, tenant_id: &str, id: &str, now: Timestamp) -> Result<bool>;
    async fn queued_jobs(&self, connection_id: &str) -> Result<i64>;
}

macro_rules! job_queries {
    ($store:ty, $row:ty) => {
        #[async_trait::async_trait]
        impl $crate::jobs::Jobs for $store {
            async fn create_password_connection(
                &self,
                c: &$crate::Connection,
                event: &$crate::Event,
                login: &$crate::jobs::PasswordLogin,
            ) -> $crate::Result<()> {
                let mut tx = self.pool.begin().await?;
                insert_connection(&mut *tx, c, Some(login)).await?;
                insert_event(&mut *tx, event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn set_login(&self, connection_id: &str, login: &$crate::jobs::PasswordLogin) -> $crate::Result<bool> {
                let result = sqlx::query(
                    "UPDATE connections SET username = $2, secret = $3, options = COALESCE($4, options),
                        login_key = COALESCE($5, login_key), login_failures = 0, login_blocked_until = NULL
                     WHERE id = $1",
                )
                .bind(connection_id)
                .bind(&login.username)
                .bind(&login.secret)
                .bind(&login.options)
                .bind(&login.login_key)
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() == 1)
            }

            async fn login(&self, connection_id: &str) -> $crate::Result<Option<$crate::jobs::PasswordLogin>> {
                let row: Option<(Option<String>, Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
                    "SELECT username, secret, options, login_key FROM connections WHERE id = $1",
                )
                .bind(connection_id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.and_then(|(username, secret, options, login_key)| {
                    Some($crate::jobs::PasswordLogin { username: username?, secret: secret?, options, login_key })
                }))
            }

            async fn shared_logins(
                &self,
                tenant_id: &str,
                login_key: &str,
                except: &str,
            ) -> $crate::Result<Vec<(String, String)>> {
                Ok(sqlx::query_as(
                    "SELECT id, organisation_id FROM connections WHERE tenant_id = $1 AND login_key = $2 AND id <> $3
                     ORDER BY id",
                )
                .bind(tenant_id)
                .bind(login_key)
                .bind(except)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn credentials(&self, connection_id: &str) -> $crate::Result<Option<$crate::jobs::Credentials>> {
                let row: Option<(Option<String>, Option<String>, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT username, secret, login_failures, login_blocked_until FROM connections WHERE id = $1",
                )
                .bind(connection_id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.and_then(|(username, secret, failures, blocked)| {
                    Some($crate::jobs::Credentials {
                        username: username?,
                        secret: secret?,
                        login_failures: failures,
                        login_blocked_until: blocked.map(ledgerlink_core::Timestamp::from_millis),
                    })
                }))
            }

            async fn record_login(
                &self,
                connection_id: &str,
                ok: bool,
                block_after: i64,
                block_until: ledgerlink_core::Timestamp,
            ) -> $crate::Result<()> {
                if ok {
                    sqlx::query(
                        "UPDATE connections SET login_failures = 0, login_blocked_until = NULL
                         WHERE id = $1 AND login_failures <> 0",
                    )
                    .bind(connection_id)
                    .execute(&self.pool)
                    .await?;
                } else {
                    sqlx::query(
                        "UPDATE connections SET login_failures = login_failures + 1,
                            login_blocked_until = CASE WHEN login_failures + 1 >= $2 THEN $3 ELSE login_blocked_until END
                         WHERE id = $1",
                    )
                    .bind(connection_id)
                    .bind(block_after)
                    .bind(block_until.as_millis())
                    .execute(&self.pool)
                    .await?;
                }
                Ok(())
            }

            async fn create_job(&self, j: &$crate::jobs::Job) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO qbxml_jobs (id, tenant_id, connection_id, status, priority, request, responses, pages,
                        attempts, restarts, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(&j.id)
                .bind(&j.tenant_id)
                .bind(&j.connection_id)
                .bind(&j.status)
                .bind(j.priority)
                .bind(&j.request)
                .bind(&j.responses)
                .bind(&j.pages)
                .bind(j.attempts)
                .bind(j.restarts)
                .bind(j.created_at.as_millis())
                .bind(j.updated_at.as_millis())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn job(&self, tenant_id: &str, id: &str) -> $crate::Result<Option<$crate::jobs::Job>> {
                let row: Option<$row> = sqlx::query("SELECT * FROM qbxml_jobs WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(job_from_row).transpose()?)
            }

            async fn job_by_exchange(&self, exchange: &str) -> $crate::Result<Option<$crate::jobs::Job>> {
                let row: Option<$row> = sqlx::query("SELECT * FROM qbxml_jobs WHERE exchange = $1")
                    .bind(exchange)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(job_from_row).transpose()?)
            }

            async fn list_jobs(
                &self,
                tenant_id: &str,
                connection_id: &str,
                after: Option<&str>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::jobs::Job>> {
                let rows: Vec<$row> = sqlx::query(
                    "SELECT * FROM qbxml_jobs WHERE tenant_id = $1 AND connection_id = $2 AND id > $3
                     ORDER BY id LIMIT $4",
                )
                .bind(tenant_id)
                .bind(connection_id)
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(job_from_row).collect::<Result<_, _>>()?)
            }

            async fn active_job(&self, connection_id: &str) -> $crate::Result<Option<$crate::jobs::Job>> {
                let row: Option<$row> = sqlx::query(
                    "SELECT * FROM qbxml_jobs WHERE connection_id = $1 AND status = 'in_progress'
                     ORDER BY updated_at LIMIT 1",
                )
                .bind(connection_id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.as_ref().map(job_from_row).transpose()?)
            }

            async fn hand_out_next(
                &self,
                connection_id: &str,
                prepare: &(dyn Fn($crate::jobs::Job) -> ($crate::jobs::Job, Vec<$crate::Event>) + Send + Sync),
            ) -> $crate::Result<Option<$crate::jobs::Job>> {
                let mut tx = self.pool.begin().await?;
                // Lock the connection's row first: hand-outs of one connection queue up here, so
                // two instances cannot both see "nothing in progress" and take two jobs.
                sqlx::query("UPDATE connections SET login_failures = login_failures WHERE id = $1")
                    .bind(connection_id)
                    .execute(&mut *tx)
                    .await?;
                let row: Option<$row> = sqlx::query(
                    "SELECT * FROM qbxml_jobs
                     WHERE connection_id = $1 AND status = 'queued'
                       AND NOT EXISTS (SELECT 1 FROM qbxml_jobs a WHERE a.connection_id = $1 AND a.status = 'in_progress')
                     ORDER BY priority DESC, created_at, id LIMIT 1",
                )
                .bind(connection_id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(queued) = row.as_ref().map(job_from_row).transpose()? else {
                    tx.commit().await?;
                    return Ok(None);
                };
                let (job, events) = prepare(queued);
                if !write_job(&mut *tx, &job, None).await? {
                    tx.rollback().await?;
                    return Ok(None);
                }
                for event in &events {
                    insert_event(&mut *tx, event).await?;
                }
                tx.commit().await?;
                Ok(Some(job))
            }

            async fn update_job(
                &self,
                j: &$crate::jobs::Job,
                expected_exchange: Option<&str>,
            ) -> $crate::Result<bool> {
                let mut tx = self.pool.begin().await?;
                let ok = write_job(&mut *tx, j, expected_exchange).await?;
                tx.commit().await?;
                Ok(ok)
            }

            async fn finish_job(
                &self,
                j: &$crate::jobs::Job,
                expected_exchange: &str,
                events: &[$crate::Event],
            ) -> $crate::Result<bool> {
                let mut tx = self.pool.begin().await?;
                if !write_job(&mut *tx, j, Some(expected_exchange)).await? {
                    tx.rollback().await?;
                    return Ok(false);
                }
                for event in events {
                    insert_event(&mut *tx, event).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn cancel_job(
                &self,
                tenant_id: &str,
                id: &str,
                now: ledgerlink_core::Timestamp,
            ) -> $crate::Result<bool> {
                let result = sqlx::query(
                    "UPDATE qbxml_jobs SET status = 'cancelled', updated_at = $3, finished_at = $3
                     WHERE tenant_id = $1 AND id = $2 AND status = 'queued'",
                )
                .bind(tenant_id)
                .bind(id)
                .bind(now.as_millis())
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() == 1)
            }

            async fn queued_jobs(&self, connection_id: &str) -> $crate::Result<i64> {
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM qbxml_jobs WHERE connection_id = $1 AND status IN ('queued', 'in_progress')",
                )
                .bind(connection_id)
                .fetch_one(&self.pool)
                .await?)
            }
        }

        async fn write_job<'e, E>(
            executor: E,
            j: &$crate::jobs::Job,
            expected_exchange: Option<&str>,
        ) -> Result<bool, sqlx::Error>
        where
            E: sqlx::Executor<'e, Database = <$row as sqlx::Row>::Database>,
        {
            let result = sqlx::query(
                "UPDATE qbxml_jobs SET status = $3, responses = $4, pages = $5, attempts = $6, restarts = $7,
                    exchange = $8, exchange_kind = $9, exchange_request = $10, exchange_sent_at = $11,
                    continue_state = $12, iterator_id = $13, message_set_id = $14, diagnosis = $15,
                    updated_at = $16, finished_at = $17
                 WHERE id = $1 AND (exchange = $2 OR (exchange IS NULL AND $2 IS NULL))",
            )
            .bind(&j.id)
            .bind(expected_exchange)
            .bind(&j.status)
            .bind(&j.responses)
            .bind(&j.pages)
            .bind(j.attempts)
            .bind(j.restarts)
            .bind(&j.exchange)
            .bind(&j.exchange_kind)
            .bind(&j.exchange_request)
            .bind(j.exchange_sent_at.map(|t| t.as_millis()))
            .bind(&j.continue_state)
            .bind(&j.iterator_id)
            .bind(&j.message_set_id)
            .bind(&j.diagnosis)
            .bind(j.updated_at.as_millis())
            .bind(j.finished_at.map(|t| t.as_millis()))
            .execute(executor)
            .await?;
            Ok(result.rows_affected() == 1)
        }

        fn job_from_row(row: &$row) -> Result<$crate::jobs::Job, sqlx::Error> {
            use sqlx::Row;
            Ok($crate::jobs::Job {
                id: row.try_get("id")?,
                tenant_id: row.try_get("tenant_id")?,
                connection_id: row.try_get("connection_id")?,
                status: row.try_get("status")?,
                priority: row.try_get("priority")?,
                request: row.try_get("request")?,
                responses: row.try_get("responses")?,
                pages: row.try_get("pages")?,
                attempts: row.try_get("attempts")?,
                restarts: row.try_get("restarts")?,
                exchange: row.try_get("exchange")?,
                exchange_kind: row.try_get("exchange_kind")?,
                exchange_request: row.try_get("exchange_request")?,
                exchange_sent_at: opt_ts_at(row, "exchange_sent_at")?,
                continue_state: row.try_get("continue_state")?,
                iterator_id: row.try_get("iterator_id")?,
                message_set_id: row.try_get("message_set_id")?,
                diagnosis: row.try_get("diagnosis")?,
                created_at: ledgerlink_core::Timestamp::from_millis(row.try_get("created_at")?),
                updated_at: ledgerlink_core::Timestamp::from_millis(row.try_get("updated_at")?),
                finished_at: opt_ts_at(row, "finished_at")?,
            })
        }
    };
}

pub(crate) use job_queries;
