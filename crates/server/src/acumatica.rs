//! MYOB Acumatica password connections: where to log in, the password kept encrypted, and what
//! each login's outcome does to the connection.
//!
//! Every use is one session — log in, one call, log out — under a per-API-user limit of calls at
//! once, so the licence's API-user and request limits hold however many connections share the
//! hub. What a failure means (seed 002):
//!
//! - rejected credentials → `disconnected` / `credentials_rejected`; the hub never logs in with
//!   those credentials again by itself (repeated attempts are how API users get locked), until
//!   `PUT /v1/connections/{id}/credentials` stores new ones;
//! - "locked" → `disconnected` / `account_locked`, with the action to unlock the user;
//! - "API Login Limit", 429, timeouts, 5xx → `degraded`; the next call tries again;
//! - a host that does not resolve → `disconnected` / `configuration_error` (check the URL).

use std::time::Duration;

use ledgerlink_core::{ConnectionStatus, Diagnosis, DisconnectReason, Provider, SecretString, Timestamp};
use ledgerlink_providers::acumatica::{AcumaticaClient, AcumaticaLogin, Answer};
use ledgerlink_store::{Connection, ConnectionChange, Event, Guard};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::proxy::Limits;

/// A harmless read for the test button.
pub const TEST_PATH: &str = "entity/Default/22.200.001/Customer?$top=1";

/// Calls at once per API user (the licence limits concurrent API requests).
const CONCURRENT_PER_USER: usize = 2;

/// Where and how to log in, stored as the connection's options.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Options {
    pub instance_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

/// Names an instance and API user, whatever the case or trailing slash.
pub fn login_key(instance_url: &str, username: &str) -> String {
    let normalised = format!(
        "{}\n{}",
        instance_url.trim().trim_end_matches('/').to_lowercase(),
        username.trim().to_lowercase()
    );
    ledgerlink_core::secret::sha256_hex(normalised.as_bytes())
}

pub fn password_context(connection_id: &str) -> String {
    format!("connection:{connection_id}:password")
}

/// The external account: the instance and tenant (or company).
pub fn account_of(options: &Options) -> (String, Option<String>) {
    let place = options.tenant.as_deref().or(options.company.as_deref());
    let id = match place {
        Some(place) => format!("{}#{place}", options.instance_url.trim_end_matches('/')),
        None => options.instance_url.trim_end_matches('/').to_owned(),
    };
    (id, place.map(str::to_owned))
}

async fn login_of(state: &AppState, conn: &Connection) -> anyhow::Result<(AcumaticaLogin, String)> {
    let stored = state
        .store
        .login(&conn.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("connection {} has no stored login", conn.id))?;
    let options: Options = serde_json::from_str(stored.options.as_deref().unwrap_or("{}"))?;
    let password: SecretString = state.keys.decrypt_secret(&stored.secret, &password_context(&conn.id))?;
    let login = AcumaticaLogin {
        instance_url: url::Url::parse(&options.instance_url)?,
        username: stored.username,
        password,
        tenant: options.tenant,
        company: options.company,
        branch: options.branch,
    };
    Ok((login, stored.login_key.unwrap_or_default()))
}

/// One call to the connection's instance: log in, send, log out. A refusal to log in, or a
/// connection whose credentials were rejected, answers the diagnosis.
pub async fn call(
    state: &AppState,
    conn: &Connection,
    method: reqwest::Method,
    path_and_query: &str,
    headers: &reqwest::header::HeaderMap,
    body: Vec<u8>,
) -> anyhow::Result<Result<Answer, Diagnosis>> {
    if conn.status == ConnectionStatus::Disconnected.as_str() {
        // Never retry rejected credentials by ourselves: that is how API users get locked.
        let diagnosis =
            conn.last_error.as_deref().and_then(|e| serde_json::from_str(e).ok()).unwrap_or_else(|| {
                Diagnosis::lookup(Provider::Acumatica, None, Some("invalid_credentials"), None)
            });
        return Ok(Err(diagnosis));
    }
    let (login, key) = login_of(state, conn).await?;
    let limits =
        Limits { concurrent: CONCURRENT_PER_USER, per_window: usize::MAX, window: Duration::from_secs(60) };
    let deadline = tokio::time::Instant::now() + state.config.provider_timeout;
    let Some(_slot) = state.proxy.limiter.acquire(&format!("acumatica:{key}"), limits, deadline).await else {
        return Ok(Err(Diagnosis::lookup(Provider::Acumatica, Some(429), None, None)));
    };
    let client = AcumaticaClient::new(state.proxy.client.clone());
    let outcome = match client.open(&login).await {
        Ok(session) => {
            let answer = session.send(method, path_and_query, headers, body).await;
            session.close().await;
            answer
        }
        Err(diagnosis) => Err(diagnosis),
    };
    match &outcome {
        Ok(answer) if answer.status < 400 || answer.status == 404 => record_success(state, conn).await?,
        Ok(answer) => {
            if let Some(diagnosis) = answer.diagnosis() {
                record_failure(state, conn, &diagnosis).await?;
            }
        }
        Err(diagnosis) => record_failure(state, conn, diagnosis).await?,
    }
    Ok(outcome)
}

/// Logged in and answered: green again if it was not.
async fn record_success(state: &AppState, conn: &Connection) -> anyhow::Result<()> {
    if conn.status == ConnectionStatus::Connected.as_str() && conn.last_error.is_none() {
        return Ok(());
    }
    let now = state.clock.now();
    // Pending after new credentials: back from a break if it had worked before.
    let kind = if conn.connected_at.is_some() { "connection.recovered" } else { "connection.connected" };
    let mut events = Vec::new();
    if conn.status != ConnectionStatus::Connected.as_str() {
        events.push(Event::of(conn, kind, ConnectionStatus::Connected.as_str(), None, None, now));
    }
    let change = ConnectionChange {
        status: ConnectionStatus::Connected.as_str().into(),
        reason: None,
        last_error: Some(None),
        ..ConnectionChange::keep(conn, now)
    };
    state.store.update_connection(&conn.id, Guard::Any, &change, &events).await?;
    Ok(())
}

/// What a failure does to the connection.
pub async fn record_failure(
    state: &AppState,
    conn: &Connection,
    diagnosis: &Diagnosis,
) -> anyhow::Result<()> {
    let now = state.clock.now();
    let reason = match diagnosis.category.as_str() {
        "credentials_rejected" => Some(DisconnectReason::CredentialsRejected),
        "account_locked" => Some(DisconnectReason::AccountLocked),
        "configuration_error" => Some(DisconnectReason::ConfigurationError),
        "network" if diagnosis.provider_code.as_deref() == Some("dns") => {
            Some(DisconnectReason::ConfigurationError)
        }
        _ => None,
    };
    let transient = reason.is_none() && diagnosis.retryable;
    let (status, reason) = match (reason, transient) {
        (Some(reason), _) => (ConnectionStatus::Disconnected, Some(reason)),
        (None, true) => (ConnectionStatus::Degraded, None),
        // A failure of one request (a bad record, a missing screen) says nothing about the link.
        (None, false) => return Ok(()),
    };
    let mut events = Vec::new();
    if conn.status != status.as_str() {
        let kind = if status == ConnectionStatus::Disconnected {
            "connection.disconnected"
        } else {
            "connection.degraded"
        };
        let detail = serde_json::json!({"diagnosis": diagnosis}).to_string();
        events.push(Event::of(
            conn,
            kind,
            status.as_str(),
            reason.map(DisconnectReason::as_str),
            Some(detail),
            now,
        ));
    }
    let change = ConnectionChange {
        status: status.as_str().into(),
        reason: reason.map(|r| r.as_str().to_owned()),
        last_error: Some(Some(serde_json::to_string(diagnosis)?)),
        ..ConnectionChange::keep(conn, now)
    };
    state.store.update_connection(&conn.id, Guard::Any, &change, &events).await?;
    tracing::warn!(
        connection_id = %conn.id, provider = "acumatica", category = %diagnosis.category,
        status = status.as_str(), "MYOB Acumatica call failed"
    );
    Ok(())
}

/// The test button: one login, one harmless read, one logout.
pub async fn test(state: &AppState, conn: &Connection) -> anyhow::Result<Option<Diagnosis>> {
    let answer =
        call(state, conn, reqwest::Method::GET, TEST_PATH, &reqwest::header::HeaderMap::new(), Vec::new())
            .await?;
    Ok(match answer {
        Ok(answer) => answer.diagnosis(),
        Err(diagnosis) => Some(diagnosis),
    })
}

/// A new password was stored: the connection may be used (and tested) again.
pub async fn credentials_replaced(
    state: &AppState,
    conn: &Connection,
    now: Timestamp,
) -> anyhow::Result<Connection> {
    let change = ConnectionChange {
        status: ConnectionStatus::Pending.as_str().into(),
        reason: None,
        ..ConnectionChange::keep(conn, now)
    };
    let event = Event::of(
        conn,
        "connection.credentials_updated",
        ConnectionStatus::Pending.as_str(),
        None,
        None,
        now,
    );
    state.store.update_connection(&conn.id, Guard::Any, &change, &[event]).await?;
    state
        .store
        .connection_by_id(&conn.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("connection {} vanished", conn.id))
}
