//! Alert emails to an organisation's users: one per disconnection (an incident), saying what
//! broke, what to do and where to reconnect, sent over SMTP from a durable outbox.
//!
//! The email is composed when the disconnection event is dispatched (so it names the users of
//! that moment) and stored with the event's id, which is unique: a retrying refresh, a second
//! instance or a restart cannot send it twice. Sending retries temporary SMTP failures over
//! hours; a permanent refusal (an unknown mailbox) is logged and not retried.

use std::time::Duration;

use ledgerlink_core::Timestamp;
use ledgerlink_store::{Attempt, Event, OutboxEmail};
use serde_json::json;

use crate::AppState;
use crate::alerts::{Context, diagnosis_of};
use crate::mailer::{Email, MailError, Mailer, MailerConfig, Recipient};

/// Waits between attempts after a temporary failure.
const RETRIES: [Duration; 6] = [
    Duration::from_secs(30),
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(6 * 3600),
];

/// The email for a disconnection, or `None` when SMTP is not configured or the organisation
/// has no users to tell.
pub async fn compose(
    state: &AppState,
    context: &Context,
    event: &Event,
    now: Timestamp,
) -> anyhow::Result<Option<OutboxEmail>> {
    if state.config.smtp.url.is_none() {
        return Ok(None);
    }
    let org = &context.organisation;
    let users = state.store.list_users(&org.tenant_id, &org.id, None, 500).await?;
    if users.is_empty() {
        tracing::info!(connection_id = %context.connection.id, organisation_id = %org.id, "no users to email about the disconnection");
        return Ok(None);
    }
    let recipients: Vec<_> = users.iter().map(|u| json!({"name": u.name, "email": u.email})).collect();
    let provider = context.provider_name();
    let account = context.connection.external_account_name.as_deref().unwrap_or("your account");
    let diagnosis = diagnosis_of(event);
    let (summary, action) = match &diagnosis {
        Some(d) => (d.summary.clone(), d.action.clone()),
        None => (
            format!("{provider} stopped accepting this connection."),
            format!("Reconnect {provider} with the link below."),
        ),
    };
    let link = crate::links::reconnect_link(state, &context.connection, now).await?;
    let mut body = format!(
        "Hello,\n\n\
         The connection between {org_name} and {provider} ({account}) stopped working on {when}.\n\n\
         What happened: {summary}\n\n\
         What to do: {action}\n\n\
         Reconnect here: {link}\n",
        org_name = org.name,
        when = event.created_at.to_rfc3339(),
    );
    if let Some(d) = &diagnosis {
        body.push_str("\nDetails for support:\n");
        let code = [d.http_status.map(|s| format!("HTTP {s}")), d.provider_code.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
        if !code.is_empty() {
            body.push_str(&format!("  {provider} answered: {code}\n"));
        }
        if let Some(message) = &d.provider_message {
            body.push_str(&format!("  Message: {message}\n"));
        }
        body.push_str(&format!(
            "  Connection: {}\n  {provider} status page: {}\n  {provider} support: {}\n",
            context.connection.id, d.links.status, d.links.support
        ));
    }
    body.push_str(&format!(
        "\nYou receive this because you are listed as a contact of {}. One email is sent per incident.\n",
        org.name
    ));
    Ok(Some(OutboxEmail {
        id: ledgerlink_core::id::generate("eml", now.as_millis()),
        tenant_id: org.tenant_id.clone(),
        connection_id: context.connection.id.clone(),
        event_id: event.id.clone(),
        recipients: serde_json::Value::Array(recipients).to_string(),
        subject: format!("Action needed: {provider} is disconnected for {}", org.name),
        body,
        status: "pending".into(),
        attempts: 0,
        next_attempt_at: Some(now),
        last_error: None,
        created_at: now,
        sent_at: None,
    }))
}

/// Sends the emails due now through `mailer`.
pub async fn send_due(state: &AppState, mailer: &Mailer) -> anyhow::Result<usize> {
    let now = state.clock.now();
    let lease = now.saturating_add(state.config.smtp.timeout + Duration::from_secs(30));
    let due = state.store.claim_emails(state.engine.instance(), now, lease, 16).await?;
    for email in &due {
        let recipients: Vec<Recipient> = serde_json::from_str::<Vec<serde_json::Value>>(&email.recipients)?
            .into_iter()
            .map(|r| Recipient {
                name: r["name"].as_str().unwrap_or_default().to_owned(),
                email: r["email"].as_str().unwrap_or_default().to_owned(),
            })
            .collect();
        let message = Email { to: recipients, subject: email.subject.clone(), text: email.body.clone() };
        let attempts = email.attempts + 1;
        let result = mailer.send(&message).await;
        let attempted_at = state.clock.now();
        let (status, next_attempt_at, last_error) = match result {
            Ok(()) => ("sent", None, None),
            Err(MailError::Transient(e)) => {
                match usize::try_from(attempts - 1).ok().and_then(|i| RETRIES.get(i)) {
                    Some(wait) => ("pending", Some(attempted_at.saturating_add(*wait)), Some(e)),
                    None => ("failed", None, Some(e)),
                }
            }
            Err(e @ (MailError::Permanent(_) | MailError::Config(_))) => {
                ("failed", None, Some(e.to_string()))
            }
        };
        let outcome = if status == "pending" { "retry" } else { status };
        state.metrics.inc("ledgerlink_emails_total", &[("outcome", outcome)]);
        if let Some(error) = &last_error {
            tracing::warn!(email_id = %email.id, connection_id = %email.connection_id, attempts, status, error, "alert email not sent");
        } else {
            tracing::info!(email_id = %email.id, connection_id = %email.connection_id, "alert email sent");
        }
        let attempt = Attempt {
            status: status.into(),
            attempts,
            next_attempt_at,
            attempted_at,
            last_status: None,
            last_error,
        };
        state.store.finish_email(state.engine.instance(), &email.id, &attempt).await?;
    }
    Ok(due.len())
}

/// The mailer for the configured SMTP server, if there is one.
pub fn mailer(state: &AppState) -> anyhow::Result<Option<Mailer>> {
    let Some(url) = &state.config.smtp.url else { return Ok(None) };
    let config = MailerConfig {
        url: url.expose().to_owned(),
        from: state.config.smtp.from.clone(),
        timeout: state.config.smtp.timeout,
    };
    Mailer::new(&config).map(Some).map_err(|e| anyhow::anyhow!("smtp: {e}"))
}
