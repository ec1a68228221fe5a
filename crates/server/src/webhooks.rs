//! Webhook delivery per the Standard Webhooks specification (<https://www.standardwebhooks.com>).
//!
//! Each delivery is a `POST` of the event's JSON with three headers:
//!
//! - `webhook-id`: the delivery id, the same on every attempt (receivers deduplicate on it);
//! - `webhook-timestamp`: the attempt's time in Unix seconds;
//! - `webhook-signature`: `v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed
//!   with the base64-decoded part of the subscription's `whsec_…` secret.
//!
//! Any 2xx answer counts as delivered. After a failure the delivery waits 5 s, 30 s, 2 min,
//! 10 min, 30 min, 2 h, 5 h, 10 h and 10 h between attempts (about 28 hours in all); when the
//! last one fails the subscription is disabled, with an alert and a `webhook.disabled` event to
//! the tenant's other subscriptions. Deliveries of one connection go out one at a time, in
//! event order: a later event waits while an earlier one is retried.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use ledgerlink_core::Timestamp;
use ledgerlink_store::{Attempt, Delivery, WebhookSubscription};
use rand::RngCore;
use serde_json::json;
use sha2::Sha256;
use tokio::task::JoinSet;

use crate::AppState;

/// The waits between attempts, after the first.
pub const RETRY_SCHEDULE: [Duration; 9] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

const CLAIM_BATCH: u32 = 32;
/// How much of a receiver's error body is kept in the delivery log.
const KEPT_BODY: usize = 300;

/// A new signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// The `webhook-signature` value for one attempt.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> anyhow::Result<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap_or(secret))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key)?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

pub fn secret_context(subscription_id: &str) -> String {
    format!("webhook:{subscription_id}:secret")
}

/// Sends due deliveries.
pub struct Sender {
    client: reqwest::Client,
}

impl Sender {
    pub fn new(timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ledgerlink-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client })
    }

    /// Attempts every delivery due now (the heads of their queues); returns how many were tried.
    pub async fn deliver_due(&self, state: &AppState) -> anyhow::Result<usize> {
        let mut tried = 0;
        loop {
            let now = state.clock.now();
            let lease = now.saturating_add(state.config.webhooks.timeout + Duration::from_secs(30));
            let claimed =
                state.store.claim_deliveries(state.engine.instance(), now, lease, CLAIM_BATCH).await?;
            if claimed.is_empty() {
                return Ok(tried);
            }
            tried += claimed.len();
            let mut attempts = JoinSet::new();
            for delivery in claimed {
                let client = self.client.clone();
                let state = state.clone();
                attempts.spawn(async move { attempt(&client, &state, delivery).await });
            }
            while let Some(result) = attempts.join_next().await {
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::warn!(error = format!("{error:#}"), "recording a webhook attempt failed")
                    }
                    Err(error) => tracing::error!(%error, "a webhook attempt panicked"),
                }
            }
        }
    }
}

async fn attempt(client: &reqwest::Client, state: &AppState, delivery: Delivery) -> anyhow::Result<()> {
    let Some(sub) = state.store.subscription(&delivery.tenant_id, &delivery.subscription_id).await? else {
        return Ok(());
    };
    let secret = state.keys.decrypt_secret(&sub.secret, &secret_context(&sub.id))?;
    let now = state.clock.now();
    let timestamp = now.as_millis().div_euclid(1000);
    let signature = sign(secret.expose(), &delivery.id, timestamp, &delivery.payload)?;
    let sent = client
        .post(&sub.url)
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.payload.clone())
        .send()
        .await;
    let (ok, status, error) = match sent {
        Ok(response) => {
            let status = response.status();
            if status.is_success() {
                (true, Some(i64::from(status.as_u16())), None)
            } else {
                let body = response.text().await.unwrap_or_default();
                let kept: String = body.chars().take(KEPT_BODY).collect();
                (false, Some(i64::from(status.as_u16())), Some(format!("HTTP {status}: {kept}")))
            }
        }
        Err(error) => (false, None, Some(transport_error(&error))),
    };
    let attempts = delivery.attempts + 1;
    let outcome = if ok { "delivered" } else { "failed" };
    state.metrics.inc("ledgerlink_webhook_deliveries_total", &[("outcome", outcome)]);
    let finished = state.clock.now();
    let record = if ok {
        Attempt {
            status: "delivered".into(),
            attempts,
            next_attempt_at: None,
            attempted_at: finished,
            last_status: status,
            last_error: None,
        }
    } else {
        let next = next_after(finished, attempts);
        Attempt {
            status: if next.is_some() { "pending" } else { "failed" }.into(),
            attempts,
            next_attempt_at: next,
            attempted_at: finished,
            last_status: status,
            last_error: error.clone(),
        }
    };
    if !state.store.finish_delivery(state.engine.instance(), &delivery.id, &record).await? {
        tracing::warn!(delivery_id = %delivery.id, "a webhook delivery's lease was lost during the attempt");
        return Ok(());
    }
    if !ok {
        tracing::info!(
            delivery_id = %delivery.id, subscription_id = %sub.id, attempts,
            error = error.as_deref().unwrap_or(""), "webhook delivery failed; will retry"
        );
    }
    if record.status == "failed" {
        disable(state, &sub, &format!("{attempts} attempts over the retry schedule failed")).await?;
    }
    Ok(())
}

fn transport_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the connection failed"
    };
    format!("{kind}: {error}")
}

/// Disables a subscription whose deliveries keep failing: an alert line, and a
/// `webhook.disabled` event to the tenant's other subscriptions that want it.
pub async fn disable(state: &AppState, sub: &WebhookSubscription, reason: &str) -> anyhow::Result<()> {
    let now = state.clock.now();
    if !state.store.disable_subscription(&sub.id, now, reason).await? {
        return Ok(());
    }
    crate::alerts::log_subscription_disabled(state, sub, reason);
    let event_id = ledgerlink_core::id::generate("evt", now.as_millis());
    let payload = json!({
        "type": "webhook.disabled",
        "timestamp": now.to_rfc3339(),
        "data": {"event_id": event_id, "subscription": {"id": sub.id, "url": sub.url}, "reason": reason},
    })
    .to_string();
    let others: Vec<Delivery> = state
        .store
        .active_subscriptions(&sub.tenant_id)
        .await?
        .into_iter()
        .filter(|other| crate::alerts::wants(other, "webhook.disabled"))
        .map(|other| {
            Delivery::new(
                &other.id,
                &sub.tenant_id,
                &event_id,
                "webhook.disabled",
                (&sub.id, 0),
                payload.clone(),
                now,
            )
        })
        .collect();
    state.store.enqueue_deliveries(&others).await?;
    Ok(())
}

/// When to try again after the `attempts`-th failed attempt; `None` once the schedule is spent.
pub fn next_after(failed_at: Timestamp, attempts: i64) -> Option<Timestamp> {
    usize::try_from(attempts - 1)
        .ok()
        .and_then(|i| RETRY_SCHEDULE.get(i))
        .map(|w| failed_at.saturating_add(*w))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference libraries.
    #[test]
    fn signatures_match_the_specs_reference_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_carry_32_random_bytes() {
        let a = new_secret();
        assert!(a.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&a[6..]).unwrap().len(), 32);
        assert_ne!(a, new_secret());
    }

    #[test]
    fn the_schedule_spans_more_than_a_day_then_stops() {
        let total: Duration = RETRY_SCHEDULE.iter().sum();
        assert!(total > Duration::from_secs(24 * 3600), "{total:?}");
        let t0 = Timestamp::from_millis(0);
        assert_eq!(next_after(t0, 1), Some(Timestamp::from_millis(5_000)));
        assert_eq!(next_after(t0, 9), Some(Timestamp::from_millis(36_000_000)));
        assert_eq!(next_after(t0, 10), None);
    }
}
