//! The alert side of the store: events waiting for the alert pipeline, webhook subscriptions
//! and their durable delivery outbox, the email outbox, and the queries behind duplicate-link
//! detection and the metrics.
//!
//! Every row two hub instances could both act on is claimed with a lease (`lease_owner`,
//! `lease_expires_at`), like refresh leases; handing events to the pipeline is one transaction
//! that marks them dispatched, so each event fans out once however many instances run.

use async_trait::async_trait;
use ledgerlink_core::Timestamp;

use crate::{Connection, Event, Result};

/// A tenant's webhook endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookSubscription {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    /// A JSON array of event types; `None` means every type.
    pub events: Option<String>,
    /// The encrypted `whsec_…` signing secret.
    pub secret: String,
    pub created_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
    pub disabled_reason: Option<String>,
}

/// One event for one subscription: the outbox row and, once done, the delivery log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The `webhook-id`: the same on every attempt.
    pub id: String,
    pub subscription_id: String,
    pub tenant_id: String,
    pub event_id: String,
    pub event_type: String,
    /// Deliveries with the same key (a connection id) go out one at a time, in `event_seq` order.
    pub ordering_key: String,
    pub event_seq: i64,
    pub payload: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub last_attempt_at: Option<Timestamp>,
    /// The receiver's HTTP status of the last attempt, if it answered.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

impl Delivery {
    pub fn new(
        subscription_id: &str,
        tenant_id: &str,
        event_id: &str,
        event_type: &str,
        ordering: (&str, i64),
        payload: String,
        now: Timestamp,
    ) -> Self {
        Self {
            id: ledgerlink_core::id::generate("msg", now.as_millis()),
            subscription_id: subscription_id.into(),
            tenant_id: tenant_id.into(),
            event_id: event_id.into(),
            event_type: event_type.into(),
            ordering_key: ordering.0.into(),
            event_seq: ordering.1,
            payload,
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: Some(now),
            last_attempt_at: None,
            last_status: None,
            last_error: None,
            created_at: now,
            delivered_at: None,
        }
    }
}

/// The outcome of one attempt at sending an outbox row (a webhook delivery or an email).
#[derive(Clone, Debug)]
pub struct Attempt {
    /// `pending` (retry at `next_attempt_at`), `delivered` / `sent`, or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub attempted_at: Timestamp,
    /// The receiver's HTTP status (webhooks).
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
}

/// An email waiting to go (or gone) to an organisation's users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEmail {
    pub id: String,
    pub tenant_id: String,
    pub connection_id: String,
    /// The event that opened the incident: one email per incident.
    pub event_id: String,
    /// JSON `[{"name", "email"}]`.
    pub recipients: String,
    pub subject: String,
    pub body: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}

/// What one event fans out to, committed together with marking the event dispatched.
#[derive(Clone, Debug, Default)]
pub struct Dispatch {
    pub event_id: String,
    pub deliveries: Vec<Delivery>,
    pub email: Option<OutboxEmail>,
}

/// A connection holding an external account, with its organisation: a duplicate-link row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkedConnection {
    pub connection_id: String,
    pub organisation_id: String,
    pub organisation_name: String,
    pub organisation_external_id: Option<String>,
    pub provider: String,
    pub external_account_id: String,
    pub external_account_name: Option<String>,
    pub status: String,
    pub linked_at: Option<Timestamp>,
}

#[async_trait]
pub trait Alerts: Send + Sync {
    /// Events not yet handed to the alert pipeline, oldest first, with their sequence number.
    async fn undispatched_events(&self, limit: u32) -> Result<Vec<(i64, Event)>>;
    /// Marks events dispatched and stores what they fan out to, in one transaction. Returns
    /// the ids this call marked: an event another instance marked first is skipped whole.
    async fn commit_dispatch(&self, now: Timestamp, batch: &[Dispatch]) -> Result<Vec<String>>;
    /// Appends timeline events to their connections.
    async fn insert_events(&self, events: &[Event]) -> Result<()>;

    async fn create_subscription(&self, subscription: &WebhookSubscription) -> Result<()>;
    async fn subscription(&self, tenant_id: &str, id: &str) -> Result<Option<WebhookSubscription>>;
    async fn list_subscriptions(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<WebhookSubscription>>;
    /// The tenant's subscriptions that are not disabled.
    async fn active_subscriptions(&self, tenant_id: &str) -> Result<Vec<WebhookSubscription>>;
    async fn delete_subscription(&self, tenant_id: &str, id: &str) -> Result<bool>;
    /// Disables a subscription; false when it already was (or is gone).
    async fn disable_subscription(&self, id: &str, now: Timestamp, reason: &str) -> Result<bool>;
    /// Enables a disabled subscription again: its failed deliveries are retried from the start
    /// of the schedule, its waiting ones go out now. False if it is not disabled (or not found).
    async fn enable_subscription(&self, tenant_id: &str, id: &str, now: Timestamp) -> Result<bool>;

    /// Adds deliveries; one that exists for the same subscription and event is left alone.
    async fn enqueue_deliveries(&self, deliveries: &[Delivery]) -> Result<()>;
    /// Leases due deliveries of enabled subscriptions, only the first pending one of each
    /// (subscription, ordering key).
    async fn claim_deliveries(
        &self,
        instance: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Delivery>>;
    /// Records an attempt; false when the lease was lost meanwhile.
    async fn finish_delivery(&self, instance: &str, id: &str, attempt: &Attempt) -> Result<bool>;
    async fn list_deliveries(
        &self,
        tenant_id: &str,
        subscription_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Delivery>>;

    async fn claim_emails(
        &self,
        instance: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxEmail>>;
    /// Records an attempt (`sent_at` is its time when `status` is `sent`); false when the lease
    /// was lost meanwhile.
    async fn finish_email(&self, instance: &str, id: &str, attempt: &Attempt) -> Result<bool>;
    async fn emails_of_connection(&self, tenant_id: &str, connection_id: &str) -> Result<Vec<OutboxEmail>>;

    /// Other connections of the tenant that hold the same external account.
    async fn linked_elsewhere(
        &self,
        tenant_id: &str,
        provider: &str,
        external_account_id: &str,
        except_connection: &str,
    ) -> Result<Vec<LinkedConnection>>;
    /// Every connection of the tenant whose external account more than one organisation
    /// holds, grouped by (provider, account) and ordered by link time.
    async fn duplicates(&self, tenant_id: &str) -> Result<Vec<LinkedConnection>>;
    /// Connections degraded since before `cutoff` with no `connection.still_degraded` event
    /// since they became degraded.
    async fn degraded_unalerted(&self, cutoff: Timestamp, limit: u32) -> Result<Vec<Connection>>;
    /// (provider, status, count) over all connections.
    async fn connection_counts(&self) -> Result<Vec<(String, String, i64)>>;
    /// Pending webhook deliveries and pending emails.
    async fn outbox_depth(&self) -> Result<(i64, i64)>;
    /// Forgets finished deliveries and emails created before `before`: (deliveries, emails).
    async fn purge_outbox(&self, before: Timestamp) -> Result<(u64, u64)>;
}

macro_rules! alert_queries {
    ($store:ty, $row:ty, $skip_locked:literal) => {
        #[async_trait::async_trait]
        impl $crate::outbox::Alerts for $store {
            async fn undispatched_events(&self, limit: u32) -> $crate::Result<Vec<(i64, $crate::Event)>> {
                let rows: Vec<(i64, String, String, String, String, String, Option<String>, Option<String>, i64)> =
                    sqlx::query_as(
                        "SELECT seq, id, tenant_id, connection_id, type, status, reason, detail, created_at
                         FROM connection_events WHERE dispatched_at IS NULL ORDER BY seq LIMIT $1",
                    )
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(seq, id, tenant_id, connection_id, kind, status, reason, detail, created_at)| {
                        let event = $crate::Event {
                            id,
                            tenant_id,
                            connection_id,
                            kind,
                            status,
                            reason,
                            detail,
                            created_at: ledgerlink_core::Timestamp::from_millis(created_at),
                        };
                        (seq, event)
                    })
                    .collect())
            }

            async fn commit_dispatch(
                &self,
                now: ledgerlink_core::Timestamp,
                batch: &[$crate::outbox::Dispatch],
            ) -> $crate::Result<Vec<String>> {
                let mut tx = self.pool.begin().await?;
                let mut marked = Vec::new();
                for dispatch in batch {
                    let done = sqlx::query(
                        "UPDATE connection_events SET dispatched_at = $2 WHERE id = $1 AND dispatched_at IS NULL",
                    )
                    .bind(&dispatch.event_id)
                    .bind(now.as_millis())
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 0 {
                        continue;
                    }
                    for delivery in &dispatch.deliveries {
                        insert_delivery(&mut *tx, delivery).await?;
                    }
                    if let Some(email) = &dispatch.email {
                        insert_email(&mut *tx, email).await?;
                    }
                    marked.push(dispatch.event_id.clone());
                }
                tx.commit().await?;
                Ok(marked)
            }

            async fn insert_events(&self, events: &[$crate::Event]) -> $crate::Result<()> {
                let mut tx = self.pool.begin().await?;
                for event in events {
                    insert_event(&mut *tx, event).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn create_subscription(&self, s: &$crate::outbox::WebhookSubscription) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO webhook_subscriptions (id, tenant_id, url, events, secret, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&s.id)
                .bind(&s.tenant_id)
                .bind(&s.url)
                .bind(&s.events)
                .bind(&s.secret)
                .bind(s.created_at.as_millis())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn subscription(
                &self,
                tenant_id: &str,
                id: &str,
            ) -> $crate::Result<Option<$crate::outbox::WebhookSubscription>> {
                let row: Option<SubscriptionRow> = sqlx::query_as(concat!(
                    subscription_columns!(),
                    " FROM webhook_subscriptions WHERE tenant_id = $1 AND id = $2"
                ))
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(subscription_from_row))
            }

            async fn list_subscriptions(
                &self,
                tenant_id: &str,
                after: Option<&str>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::outbox::WebhookSubscription>> {
                let rows: Vec<SubscriptionRow> = sqlx::query_as(concat!(
                    subscription_columns!(),
                    " FROM webhook_subscriptions WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                ))
                .bind(tenant_id)
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(subscription_from_row).collect())
            }

            async fn active_subscriptions(
                &self,
                tenant_id: &str,
            ) -> $crate::Result<Vec<$crate::outbox::WebhookSubscription>> {
                let rows: Vec<SubscriptionRow> = sqlx::query_as(concat!(
                    subscription_columns!(),
                    " FROM webhook_subscriptions WHERE tenant_id = $1 AND disabled_at IS NULL ORDER BY id"
                ))
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(subscription_from_row).collect())
            }

            async fn delete_subscription(&self, tenant_id: &str, id: &str) -> $crate::Result<bool> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM webhook_deliveries WHERE tenant_id = $1 AND subscription_id = $2")
                    .bind(tenant_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let result = sqlx::query("DELETE FROM webhook_subscriptions WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(result.rows_affected() == 1)
            }

            async fn disable_subscription(
                &self,
                id: &str,
                now: ledgerlink_core::Timestamp,
                reason: &str,
            ) -> $crate::Result<bool> {
                let result = sqlx::query(
                    "UPDATE webhook_subscriptions SET disabled_at = $2, disabled_reason = $3
                     WHERE id = $1 AND disabled_at IS NULL",
                )
                .bind(id)
                .bind(now.as_millis())
                .bind(reason)
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() == 1)
            }

            async fn enable_subscription(
                &self,
                tenant_id: &str,
                id: &str,
                now: ledgerlink_core::Timestamp,
            ) -> $crate::Result<bool> {
                let mut tx = self.pool.begin().await?;
                let enabled = sqlx::query(
                    "UPDATE webhook_subscriptions SET disabled_at = NULL, disabled_reason = NULL
                     WHERE tenant_id = $1 AND id = $2 AND disabled_at IS NOT NULL",
                )
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if enabled {
                    sqlx::query(
                        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $2
                         WHERE subscription_id = $1 AND status IN ('pending', 'failed')",
                    )
                    .bind(id)
                    .bind(now.as_millis())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(enabled)
            }

            async fn enqueue_deliveries(&self, deliveries: &[$crate::outbox::Delivery]) -> $crate::Result<()> {
                let mut tx = self.pool.begin().await?;
                for delivery in deliveries {
                    insert_delivery(&mut *tx, delivery).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn claim_deliveries(
                &self,
                instance: &str,
                now: ledgerlink_core::Timestamp,
                lease_until: ledgerlink_core::Timestamp,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::outbox::Delivery>> {
                let rows: Vec<$row> = sqlx::query(concat!(
                    "UPDATE webhook_deliveries SET lease_owner = $1, lease_expires_at = $2
                     WHERE id IN (
                        SELECT d.id FROM webhook_deliveries d
                        WHERE d.status = 'pending' AND d.next_attempt_at <= $3
                          AND (d.lease_owner IS NULL OR d.lease_expires_at < $3)
                          AND d.subscription_id IN (SELECT id FROM webhook_subscriptions WHERE disabled_at IS NULL)
                          AND NOT EXISTS (
                            SELECT 1 FROM webhook_deliveries p
                            WHERE p.subscription_id = d.subscription_id AND p.ordering_key = d.ordering_key
                              AND p.status = 'pending'
                              AND (p.event_seq < d.event_seq OR (p.event_seq = d.event_seq AND p.id < d.id)))
                        ORDER BY d.next_attempt_at LIMIT $4 ",
                    $skip_locked,
                    ") RETURNING *"
                ))
                .bind(instance)
                .bind(lease_until.as_millis())
                .bind(now.as_millis())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(delivery_from_row).collect::<Result<_, _>>()?)
            }

            async fn finish_delivery(
                &self,
                instance: &str,
                id: &str,
                a: &$crate::outbox::Attempt,
            ) -> $crate::Result<bool> {
                let delivered = (a.status == "delivered").then_some(a.attempted_at.as_millis());
                let result = sqlx::query(
                    "UPDATE webhook_deliveries SET status = $3, attempts = $4, next_attempt_at = $5,
                        last_attempt_at = $6, last_status = $7, last_error = $8, delivered_at = $9,
                        lease_owner = NULL, lease_expires_at = NULL
                     WHERE id = $1 AND lease_owner = $2",
                )
                .bind(id)
                .bind(instance)
                .bind(&a.status)
                .bind(a.attempts)
                .bind(a.next_attempt_at.map(|t| t.as_millis()))
                .bind(a.attempted_at.as_millis())
                .bind(a.last_status)
                .bind(&a.last_error)
                .bind(delivered)
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() == 1)
            }

            async fn list_deliveries(
                &self,
                tenant_id: &str,
                subscription_id: &str,
                after: Option<&str>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::outbox::Delivery>> {
                let rows: Vec<$row> = sqlx::query(
                    "SELECT * FROM webhook_deliveries WHERE tenant_id = $1 AND subscription_id = $2 AND id > $3
                     ORDER BY id LIMIT $4",
                )
                .bind(tenant_id)
                .bind(subscription_id)
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(delivery_from_row).collect::<Result<_, _>>()?)
            }

            async fn claim_emails(
                &self,
                instance: &str,
                now: ledgerlink_core::Timestamp,
                lease_until: ledgerlink_core::Timestamp,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::outbox::OutboxEmail>> {
                let rows: Vec<$row> = sqlx::query(concat!(
                    "UPDATE email_outbox SET lease_owner = $1, lease_expires_at = $2
                     WHERE id IN (
                        SELECT id FROM email_outbox
                        WHERE status = 'pending' AND next_attempt_at <= $3
                          AND (lease_owner IS NULL OR lease_expires_at < $3)
                        ORDER BY next_attempt_at LIMIT $4 ",
                    $skip_locked,
                    ") RETURNING *"
                ))
                .bind(instance)
                .bind(lease_until.as_millis())
                .bind(now.as_millis())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(email_from_row).collect::<Result<_, _>>()?)
            }

            async fn finish_email(
                &self,
                instance: &str,
                id: &str,
                a: &$crate::outbox::Attempt,
            ) -> $crate::Result<bool> {
                let sent_at = (a.status == "sent").then_some(a.attempted_at.as_millis());
                let result = sqlx::query(
                    "UPDATE email_outbox SET status = $3, attempts = $4, next_attempt_at = $5, last_error = $6,
                        sent_at = $7, lease_owner = NULL, lease_expires_at = NULL
                     WHERE id = $1 AND lease_owner = $2",
                )
                .bind(id)
                .bind(instance)
                .bind(&a.status)
                .bind(a.attempts)
                .bind(a.next_attempt_at.map(|t| t.as_millis()))
                .bind(&a.last_error)
                .bind(sent_at)
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() == 1)
            }

            async fn emails_of_connection(
                &self,
                tenant_id: &str,
                connection_id: &str,
            ) -> $crate::Result<Vec<$crate::outbox::OutboxEmail>> {
                let rows: Vec<$row> = sqlx::query(
                    "SELECT * FROM email_outbox WHERE tenant_id = $1 AND connection_id = $2 ORDER BY created_at, id",
                )
                .bind(tenant_id)
                .bind(connection_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(email_from_row).collect::<Result<_, _>>()?)
            }

            async fn linked_elsewhere(
                &self,
                tenant_id: &str,
                provider: &str,
                external_account_id: &str,
                except_connection: &str,
            ) -> $crate::Result<Vec<$crate::outbox::LinkedConnection>> {
                let rows: Vec<LinkedRow> = sqlx::query_as(concat!(
                    linked_columns!(),
                    " WHERE c.tenant_id = $1 AND c.provider = $2 AND c.external_account_id = $3 AND c.id <> $4
                     ORDER BY c.linked_at IS NULL, c.linked_at, c.id"
                ))
                .bind(tenant_id)
                .bind(provider)
                .bind(external_account_id)
                .bind(except_connection)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(linked_from_row).collect())
            }

            async fn duplicates(&self, tenant_id: &str) -> $crate::Result<Vec<$crate::outbox::LinkedConnection>> {
                let rows: Vec<LinkedRow> = sqlx::query_as(concat!(
                    linked_columns!(),
                    " WHERE c.tenant_id = $1 AND (c.provider, c.external_account_id) IN (
                        SELECT provider, external_account_id FROM connections
                        WHERE tenant_id = $1 AND external_account_id IS NOT NULL
                        GROUP BY provider, external_account_id HAVING COUNT(DISTINCT organisation_id) > 1)
                     ORDER BY c.provider, c.external_account_id, c.linked_at IS NULL, c.linked_at, c.id"
                ))
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(linked_from_row).collect())
            }

            async fn degraded_unalerted(
                &self,
                cutoff: ledgerlink_core::Timestamp,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::Connection>> {
                let rows: Vec<$row> = sqlx::query(
                    "SELECT * FROM connections c WHERE c.status = 'degraded' AND c.status_since < $1
                       AND NOT EXISTS (SELECT 1 FROM connection_events e WHERE e.connection_id = c.id
                            AND e.type = 'connection.still_degraded' AND e.created_at >= c.status_since)
                     ORDER BY c.status_since LIMIT $2",
                )
                .bind(cutoff.as_millis())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(connection_from_row).collect::<Result<_, _>>()?)
            }

            async fn connection_counts(&self) -> $crate::Result<Vec<(String, String, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT provider, status, COUNT(*) FROM connections GROUP BY provider, status ORDER BY provider, status",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn outbox_depth(&self) -> $crate::Result<(i64, i64)> {
                let deliveries: i64 =
                    sqlx::query_scalar(
                        "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'
                           AND subscription_id IN (SELECT id FROM webhook_subscriptions WHERE disabled_at IS NULL)",
                    )
                        .fetch_one(&self.pool)
                        .await?;
                let emails: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM email_outbox WHERE status = 'pending'")
                    .fetch_one(&self.pool)
                    .await?;
                Ok((deliveries, emails))
            }

            async fn purge_outbox(&self, before: ledgerlink_core::Timestamp) -> $crate::Result<(u64, u64)> {
                let deliveries =
                    sqlx::query("DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < $1")
                        .bind(before.as_millis())
                        .execute(&self.pool)
                        .await?
                        .rows_affected();
                let emails = sqlx::query("DELETE FROM email_outbox WHERE status <> 'pending' AND created_at < $1")
                    .bind(before.as_millis())
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok((deliveries, emails))
            }
        }

        async fn insert_delivery<'e, E>(executor: E, d: &$crate::outbox::Delivery) -> Result<(), sqlx::Error>
        where
            E: sqlx::Executor<'e, Database = <$row as sqlx::Row>::Database>,
        {
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, subscription_id, tenant_id, event_id, event_type, ordering_key,
                    event_seq, payload, status, attempts, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (subscription_id, event_id) DO NOTHING",
            )
            .bind(&d.id)
            .bind(&d.subscription_id)
            .bind(&d.tenant_id)
            .bind(&d.event_id)
            .bind(&d.event_type)
            .bind(&d.ordering_key)
            .bind(d.event_seq)
            .bind(&d.payload)
            .bind(&d.status)
            .bind(d.attempts)
            .bind(d.next_attempt_at.map(|t| t.as_millis()))
            .bind(d.created_at.as_millis())
            .execute(executor)
            .await?;
            Ok(())
        }

        async fn insert_email<'e, E>(executor: E, m: &$crate::outbox::OutboxEmail) -> Result<(), sqlx::Error>
        where
            E: sqlx::Executor<'e, Database = <$row as sqlx::Row>::Database>,
        {
            sqlx::query(
                "INSERT INTO email_outbox (id, tenant_id, connection_id, event_id, recipients, subject, body, status,
                    attempts, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(&m.id)
            .bind(&m.tenant_id)
            .bind(&m.connection_id)
            .bind(&m.event_id)
            .bind(&m.recipients)
            .bind(&m.subject)
            .bind(&m.body)
            .bind(&m.status)
            .bind(m.attempts)
            .bind(m.next_attempt_at.map(|t| t.as_millis()))
            .bind(m.created_at.as_millis())
            .execute(executor)
            .await?;
            Ok(())
        }

        type SubscriptionRow = (String, String, String, Option<String>, String, i64, Option<i64>, Option<String>);

        fn subscription_from_row(row: SubscriptionRow) -> $crate::outbox::WebhookSubscription {
            let (id, tenant_id, url, events, secret, created_at, disabled_at, disabled_reason) = row;
            $crate::outbox::WebhookSubscription {
                id,
                tenant_id,
                url,
                events,
                secret,
                created_at: ledgerlink_core::Timestamp::from_millis(created_at),
                disabled_at: disabled_at.map(ledgerlink_core::Timestamp::from_millis),
                disabled_reason,
            }
        }

        type LinkedRow =
            (String, String, String, Option<String>, String, String, Option<String>, String, Option<i64>);

        fn linked_from_row(row: LinkedRow) -> $crate::outbox::LinkedConnection {
            let (
                connection_id,
                organisation_id,
                organisation_name,
                organisation_external_id,
                provider,
                external_account_id,
                external_account_name,
                status,
                linked_at,
            ) = row;
            $crate::outbox::LinkedConnection {
                connection_id,
                organisation_id,
                organisation_name,
                organisation_external_id,
                provider,
                external_account_id,
                external_account_name,
                status,
                linked_at: linked_at.map(ledgerlink_core::Timestamp::from_millis),
            }
        }

        fn delivery_from_row(row: &$row) -> Result<$crate::outbox::Delivery, sqlx::Error> {
            use sqlx::Row;
            Ok($crate::outbox::Delivery {
                id: row.try_get("id")?,
                subscription_id: row.try_get("subscription_id")?,
                tenant_id: row.try_get("tenant_id")?,
                event_id: row.try_get("event_id")?,
                event_type: row.try_get("event_type")?,
                ordering_key: row.try_get("ordering_key")?,
                event_seq: row.try_get("event_seq")?,
                payload: row.try_get("payload")?,
                status: row.try_get("status")?,
                attempts: row.try_get("attempts")?,
                next_attempt_at: opt_ts_at(row, "next_attempt_at")?,
                last_attempt_at: opt_ts_at(row, "last_attempt_at")?,
                last_status: row.try_get("last_status")?,
                last_error: row.try_get("last_error")?,
                created_at: ledgerlink_core::Timestamp::from_millis(row.try_get("created_at")?),
                delivered_at: opt_ts_at(row, "delivered_at")?,
            })
        }

        fn email_from_row(row: &$row) -> Result<$crate::outbox::OutboxEmail, sqlx::Error> {
            use sqlx::Row;
            Ok($crate::outbox::OutboxEmail {
                id: row.try_get("id")?,
                tenant_id: row.try_get("tenant_id")?,
                connection_id: row.try_get("connection_id")?,
                event_id: row.try_get("event_id")?,
                recipients: row.try_get("recipients")?,
                subject: row.try_get("subject")?,
                body: row.try_get("body")?,
                status: row.try_get("status")?,
                attempts: row.try_get("attempts")?,
                next_attempt_at: opt_ts_at(row, "next_attempt_at")?,
                last_error: row.try_get("last_error")?,
                created_at: ledgerlink_core::Timestamp::from_millis(row.try_get("created_at")?),
                sent_at: opt_ts_at(row, "sent_at")?,
            })
        }
    };
}

macro_rules! subscription_columns {
    () => {
        "SELECT id, tenant_id, url, events, secret, created_at, disabled_at, disabled_reason"
    };
}

macro_rules! linked_columns {
    () => {
        "SELECT c.id, c.organisation_id, o.name, o.external_id, c.provider, c.external_account_id,
            c.external_account_name, c.status, c.linked_at
         FROM connections c JOIN organisations o ON o.id = c.organisation_id"
    };
}

pub(crate) use {alert_queries, linked_columns, subscription_columns};
