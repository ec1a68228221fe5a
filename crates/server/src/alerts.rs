//! The alert pipeline: every published event of a connection's timeline becomes, exactly once,
//!
//! - the `ledgerlink alert` log line (for disconnections, prolonged degradation and duplicate
//!   links: what Splunk or Sumo Logic alert on),
//! - a delivery in each matching webhook subscription's outbox ([`crate::webhooks`]),
//! - for a disconnection, one email to the organisation's users ([`crate::email`]).
//!
//! Events are written in the same transaction as the status change they record, so nothing is
//! lost if the hub stops; [`dispatch_once`] hands them over in one transaction that marks them
//! dispatched, so several instances never fan one event out twice. The dispatcher also raises
//! `connection.still_degraded` for connections amber for longer than `alerts.degraded_after`.

use std::collections::HashMap;
use std::time::Duration;

use ledgerlink_core::{Diagnosis, Provider, Timestamp};
use ledgerlink_store::{Connection, Delivery, Dispatch, Event, Organisation, WebhookSubscription};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::AppState;

/// The event types sent to webhook subscribers (and accepted in a subscription's `events`).
pub const PUBLISHED: &[&str] = &[
    "connection.connected",
    "connection.degraded",
    "connection.still_degraded",
    "connection.disconnected",
    "connection.recovered",
    "connection.duplicate_detected",
    "connection.authorization_failed",
    "job.completed",
    "job.failed",
    "webhook.disabled",
];

/// The event types that raise an alert: the log line, and for disconnections the email.
const ALERTING: &[&str] =
    &["connection.disconnected", "connection.still_degraded", "connection.duplicate_detected"];

/// How often the pipeline looks for new events and due deliveries.
const TICK: Duration = Duration::from_secs(1);
const BATCH: u32 = 200;
/// How long finished deliveries and emails stay in the delivery log.
const KEEP_LOG: Duration = Duration::from_secs(30 * 24 * 3600);

/// Runs the dispatcher, the webhook sender and the email sender until `shutdown`.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            () = shutdown.cancelled() => return,
        }
        if let Err(error) = dispatch_once(&state).await {
            tracing::warn!(error = format!("{error:#}"), "alert dispatcher failed; retrying");
        }
        if ticks.is_multiple_of(30)
            && let Err(error) = raise_still_degraded(&state).await
        {
            tracing::warn!(error = format!("{error:#}"), "checking for prolonged degradation failed");
        }
        if ticks.is_multiple_of(3600) {
            let before = Timestamp::from_millis(state.clock.now().as_millis() - KEEP_LOG.as_millis() as i64);
            match state.store.purge_outbox(before).await {
                Ok((0, 0)) => {}
                Ok((deliveries, emails)) => {
                    tracing::debug!(deliveries, emails, "forgot old deliveries and emails")
                }
                Err(error) => tracing::warn!(%error, "purging the delivery log failed"),
            }
        }
        ticks += 1;
    }
}

/// Hands every undispatched event to the pipeline; returns how many this call dispatched.
pub async fn dispatch_once(state: &AppState) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let events = state.store.undispatched_events(BATCH).await?;
        if events.is_empty() {
            return Ok(total);
        }
        let now = state.clock.now();
        let mut subscriptions: HashMap<String, Vec<WebhookSubscription>> = HashMap::new();
        let mut batch = Vec::with_capacity(events.len());
        let mut alerts = Vec::new();
        for (seq, event) in &events {
            let mut dispatch = Dispatch { event_id: event.id.clone(), ..Dispatch::default() };
            if PUBLISHED.contains(&event.kind.as_str())
                && let Some(context) = Context::load(state, event).await?
            {
                if !subscriptions.contains_key(&event.tenant_id) {
                    let subs = state.store.active_subscriptions(&event.tenant_id).await?;
                    subscriptions.insert(event.tenant_id.clone(), subs);
                }
                let payload = context.payload(event).to_string();
                for sub in &subscriptions[&event.tenant_id] {
                    if wants(sub, &event.kind) {
                        dispatch.deliveries.push(Delivery::new(
                            &sub.id,
                            &event.tenant_id,
                            &event.id,
                            &event.kind,
                            (&event.connection_id, *seq),
                            payload.clone(),
                            now,
                        ));
                    }
                }
                if event.kind == "connection.disconnected" {
                    dispatch.email = crate::email::compose(state, &context, event, now).await?;
                }
                if ALERTING.contains(&event.kind.as_str()) {
                    alerts.push((event.id.clone(), context, event.clone()));
                }
            }
            batch.push(dispatch);
        }
        let marked = state.store.commit_dispatch(now, &batch).await?;
        for (event_id, context, event) in &alerts {
            if marked.contains(event_id) {
                log_alert(state, context, event);
            }
        }
        total += marked.len();
    }
}

/// Whether a subscription takes events of `kind`.
pub fn wants(sub: &WebhookSubscription, kind: &str) -> bool {
    match &sub.events {
        None => true,
        Some(json) => {
            serde_json::from_str::<Vec<String>>(json).is_ok_and(|types| types.iter().any(|t| t == kind))
        }
    }
}

/// Raises `connection.still_degraded` once per incident for connections amber too long.
pub async fn raise_still_degraded(state: &AppState) -> anyhow::Result<usize> {
    let now = state.clock.now();
    let cutoff = Timestamp::from_millis(
        now.as_millis() - i64::try_from(state.config.alerts.degraded_after.as_millis()).unwrap_or(i64::MAX),
    );
    let connections = state.store.degraded_unalerted(cutoff, BATCH).await?;
    let events: Vec<Event> = connections
        .iter()
        .map(|c| {
            let detail = json!({
                "degraded_since": c.status_since.to_rfc3339(),
                "diagnosis": c.last_error.as_deref().and_then(|e| serde_json::from_str::<Value>(e).ok()),
            });
            Event::of(c, "connection.still_degraded", &c.status, None, Some(detail.to_string()), now)
        })
        .collect();
    state.store.insert_events(&events).await?;
    Ok(events.len())
}

/// What an event is about: its connection (as now) and organisation.
pub struct Context {
    pub connection: Connection,
    pub organisation: Organisation,
}

impl Context {
    /// `None` when the connection or its organisation is gone (deleted since).
    pub async fn load(state: &AppState, event: &Event) -> anyhow::Result<Option<Self>> {
        let Some(connection) = state.store.connection(&event.tenant_id, &event.connection_id).await? else {
            return Ok(None);
        };
        let Some(organisation) =
            state.store.organisation(&event.tenant_id, &connection.organisation_id).await?
        else {
            return Ok(None);
        };
        Ok(Some(Self { connection, organisation }))
    }

    pub fn provider_name(&self) -> &'static str {
        self.connection.provider.parse::<Provider>().map(Provider::display_name).unwrap_or("the provider")
    }

    /// The webhook body: `{"type", "timestamp", "data": {connection, organisation, diagnosis}}`.
    /// Status and reason are the event's (the connection may have moved on since).
    pub fn payload(&self, event: &Event) -> Value {
        let detail = detail_of(event);
        let c = &self.connection;
        let mut data = json!({
            "event_id": event.id,
            "connection": {
                "id": c.id,
                "provider": c.provider,
                "status": event.status,
                "reason": event.reason,
                "external_account": c.external_account_id.as_ref()
                    .map(|id| json!({"id": id, "name": c.external_account_name})),
            },
            "organisation": {
                "id": self.organisation.id,
                "external_id": self.organisation.external_id,
                "name": self.organisation.name,
            },
            "diagnosis": detail.get("diagnosis").cloned().unwrap_or(Value::Null),
        });
        for extra in ["duplicate_of", "degraded_since", "external_account", "job"] {
            if let Some(value) = detail.get(extra) {
                data[extra] = value.clone();
            }
        }
        json!({"type": event.kind, "timestamp": event.created_at.to_rfc3339(), "data": data})
    }
}

pub fn detail_of(event: &Event) -> Value {
    event.detail.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or(Value::Null)
}

pub fn diagnosis_of(event: &Event) -> Option<Diagnosis> {
    serde_json::from_value(detail_of(event).get("diagnosis")?.clone()).ok()
}

/// The `ledgerlink alert` line: one per alert, every field a log search needs.
fn log_alert(state: &AppState, context: &Context, event: &Event) {
    let c = &context.connection;
    let diagnosis = diagnosis_of(event);
    let d = diagnosis.as_ref();
    let provider_error = d
        .map(|d| {
            [d.http_status.map(|s| s.to_string()), d.provider_code.clone(), d.provider_message.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    state.metrics.inc("ledgerlink_alerts_total", &[("type", event.kind.as_str())]);
    tracing::warn!(
        target: "ledgerlink::alert",
        event = %event.kind,
        event_id = %event.id,
        tenant_id = %c.tenant_id,
        organisation_id = %context.organisation.id,
        organisation_external_id = context.organisation.external_id.as_deref().unwrap_or(""),
        organisation_name = %context.organisation.name,
        connection_id = %c.id,
        provider = %c.provider,
        external_account_id = c.external_account_id.as_deref().unwrap_or(""),
        external_account_name = c.external_account_name.as_deref().unwrap_or(""),
        status = %event.status,
        reason = event.reason.as_deref().unwrap_or(""),
        category = d.map(|d| d.category.as_str()).unwrap_or(""),
        provider_error = %provider_error,
        summary = d.map(|d| d.summary.as_str()).unwrap_or(""),
        action = d.map(|d| d.action.as_str()).unwrap_or(""),
        "ledgerlink alert: {} {} ({}) of organisation {}",
        event.kind,
        c.id,
        context.provider_name(),
        context.organisation.external_id.as_deref().unwrap_or(&context.organisation.id),
    );
}

/// The alert line for a webhook subscription that was disabled.
pub fn log_subscription_disabled(state: &AppState, sub: &WebhookSubscription, reason: &str) {
    state.metrics.inc("ledgerlink_alerts_total", &[("type", "webhook.disabled")]);
    tracing::warn!(
        target: "ledgerlink::alert",
        event = "webhook.disabled",
        tenant_id = %sub.tenant_id,
        subscription_id = %sub.id,
        url = %sub.url,
        reason,
        "ledgerlink alert: webhook.disabled {} ({})",
        sub.id,
        sub.url,
    );
}
