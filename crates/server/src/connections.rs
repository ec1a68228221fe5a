//! Connections: creating them, the OAuth authorisation round trip, reconnecting, deleting.
//!
//! The OAuth `state` is 32 random bytes, stored only as a hash, bound to one connection,
//! single use and expiring after `oauth_state_ttl`. Where the provider supports PKCE (Xero)
//! the verifier is kept encrypted beside it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ledgerlink_core::{ConnectionStatus, Diagnosis, Provider, SecretString, id};
use ledgerlink_providers::{CallbackParams, Pkce};
use ledgerlink_store::{
    Connection, ConnectionChange, Event, Guard, LinkedConnection, OAuthState, Organisation,
};
use rand::RngCore;

use crate::AppState;
use crate::config::DuplicatePolicy;
use crate::engine::token_context;

/// Why an authorisation could not complete; each maps to a page the user sees.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("this link is missing its state parameter")]
    MissingState,
    #[error("this link has expired or was already used")]
    UnknownState,
    #[error("the connection this link belongs to no longer exists")]
    ConnectionGone,
    #[error("{}", .0.summary)]
    Provider(Box<Diagnosis>, Box<Connection>),
    /// `duplicate_policy = "reject"` refused the link: another organisation holds the account.
    #[error("{}", .0.summary)]
    Duplicate(Box<Diagnosis>, Box<Connection>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub fn new_connection(
    state: &AppState,
    org: &Organisation,
    provider: Provider,
    redirect_url: Option<String>,
) -> Connection {
    let now = state.clock.now();
    Connection {
        id: id::generate("con", now.as_millis()),
        tenant_id: org.tenant_id.clone(),
        organisation_id: org.id.clone(),
        provider: provider.as_str().into(),
        status: ConnectionStatus::Pending.as_str().into(),
        reason: None,
        status_since: now,
        external_account_id: None,
        external_account_name: None,
        last_error: None,
        redirect_url,
        access_token: None,
        access_issued_at: None,
        access_expires_at: None,
        refresh_token: None,
        refresh_token_obtained_at: None,
        scope: None,
        token_version: 0,
        next_refresh_at: None,
        failures: 0,
        inflight_refresh_token: None,
        inflight_since: None,
        lease_owner: None,
        lease_expires_at: None,
        created_at: now,
        updated_at: now,
        connected_at: None,
        linked_at: None,
    }
}

/// A timeline entry for `conn`, stamped now.
pub fn event(
    conn: &Connection,
    kind: &str,
    status: &str,
    detail: Option<serde_json::Value>,
    state: &AppState,
) -> Event {
    Event::of(conn, kind, status, None, detail.map(|d| d.to_string()), state.clock.now())
}

fn hash_state(state: &str) -> String {
    ledgerlink_core::secret::sha256_hex(state.as_bytes())
}

/// Issues a fresh single-use `state` for the connection and returns the provider's authorize
/// URL. Older states of the connection stop working.
pub async fn authorize_url(
    state: &AppState,
    conn: &Connection,
    provider: Provider,
) -> anyhow::Result<String> {
    let client = state.providers.oauth(provider).map_err(anyhow::Error::msg)?;
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    let oauth_state = URL_SAFE_NO_PAD.encode(raw);
    let pkce = client.uses_pkce().then(Pkce::generate);
    let now = state.clock.now();
    let redirect_uri = state.config.redirect_uri();
    state
        .store
        .insert_oauth_state(&OAuthState {
            state_hash: hash_state(&oauth_state),
            connection_id: conn.id.clone(),
            code_verifier: pkce
                .as_ref()
                .map(|p| state.keys.encrypt_secret(&p.verifier, &verifier_context(&conn.id))),
            redirect_uri: redirect_uri.clone(),
            expires_at: now.saturating_add(state.config.oauth_state_ttl),
            created_at: now,
        })
        .await?;
    Ok(client
        .authorize_url(&oauth_state, &redirect_uri, pkce.as_ref().map(|p| p.challenge.as_str()))
        .to_string())
}

fn verifier_context(connection_id: &str) -> String {
    format!("connection:{connection_id}:pkce_verifier")
}

/// Finishes an authorisation: checks the state, exchanges the code, finds the linked account,
/// stores the tokens and marks the connection connected.
pub async fn complete(state: &AppState, params: &CallbackParams) -> Result<Connection, CallbackError> {
    let raw_state = params.state.as_deref().filter(|s| !s.is_empty()).ok_or(CallbackError::MissingState)?;
    let stored = state
        .store
        .take_oauth_state(&hash_state(raw_state))
        .await
        .map_err(anyhow::Error::from)?
        .ok_or(CallbackError::UnknownState)?;
    if stored.expires_at <= state.clock.now() {
        return Err(CallbackError::UnknownState);
    }
    let conn = state
        .store
        .connection_by_id(&stored.connection_id)
        .await
        .map_err(anyhow::Error::from)?
        .ok_or(CallbackError::ConnectionGone)?;
    let provider: Provider = conn.provider.parse().map_err(anyhow::Error::msg)?;

    if let Some(error) = params.error.as_deref().filter(|e| !e.is_empty()) {
        let diagnosis = Diagnosis::access_denied(provider, error, params.error_description.as_deref());
        return Err(fail(state, conn, diagnosis).await);
    }
    let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) else {
        let diagnosis = Diagnosis::unexpected(
            provider,
            None,
            None,
            Some("the provider redirected back without a code".into()),
        );
        return Err(fail(state, conn, diagnosis).await);
    };
    let client = state.providers.oauth(provider).map_err(anyhow::Error::msg)?;
    let verifier = match &stored.code_verifier {
        Some(sealed) => Some(
            state.keys.decrypt_secret(sealed, &verifier_context(&conn.id)).map_err(anyhow::Error::from)?,
        ),
        None => None,
    };
    let tokens = match client.exchange_code(code, &stored.redirect_uri, verifier.as_ref()).await {
        Ok(tokens) => tokens,
        Err(error) => return Err(fail(state, conn, error.diagnosis(provider)).await),
    };
    let account = match client.discover_account(&tokens.access_token, params).await {
        Ok(account) => account,
        Err(error) => return Err(fail(state, conn, error.diagnosis(provider)).await),
    };
    if tokens.refresh_token.is_none() {
        tracing::warn!(connection_id = %conn.id, provider = %provider, "the provider issued no refresh token; the connection will end when the access token expires");
    }
    let holders: Vec<LinkedConnection> = state
        .store
        .linked_elsewhere(&conn.tenant_id, provider.as_str(), &account.id, &conn.id)
        .await
        .map_err(anyhow::Error::from)?
        .into_iter()
        .filter(|o| {
            o.organisation_id != conn.organisation_id && matches!(o.status.as_str(), "connected" | "degraded")
        })
        .collect();
    if !holders.is_empty() && state.config.duplicate_policy == DuplicatePolicy::Reject {
        let diagnosis = Diagnosis::duplicate_rejected(provider, &describe(&holders[0]));
        let failed = fail(state, conn, diagnosis).await;
        return Err(match failed {
            CallbackError::Provider(diagnosis, conn) => CallbackError::Duplicate(diagnosis, conn),
            other => other,
        });
    }
    let now = state.clock.now();
    let mut change = state.engine.connected_change(&conn.id, provider, tokens, now);
    change.external_account = Some((account.id.clone(), account.name.clone()));
    let detail = serde_json::json!({"external_account": {"id": account.id, "name": account.name}});
    let mut events =
        vec![event(&conn, "connection.connected", ConnectionStatus::Connected.as_str(), Some(detail), state)];
    // A reconnect that mends a broken connection is also its recovery.
    if matches!(conn.status.as_str(), "disconnected" | "degraded") {
        events.push(event(&conn, "connection.recovered", ConnectionStatus::Connected.as_str(), None, state));
    }
    let mut others_events = Vec::new();
    if !holders.is_empty() {
        let organisation = state
            .store
            .organisation(&conn.tenant_id, &conn.organisation_id)
            .await
            .map_err(anyhow::Error::from)?
            .ok_or(CallbackError::ConnectionGone)?;
        let newcomer = LinkedConnection {
            connection_id: conn.id.clone(),
            organisation_id: organisation.id.clone(),
            organisation_name: organisation.name.clone(),
            organisation_external_id: organisation.external_id.clone(),
            provider: provider.as_str().into(),
            external_account_id: account.id.clone(),
            external_account_name: account.name.clone(),
            status: ConnectionStatus::Connected.as_str().into(),
            linked_at: Some(now),
        };
        let detail = serde_json::json!({"duplicate_of": holders.iter().map(link_json).collect::<Vec<_>>()});
        events.push(event(
            &conn,
            "connection.duplicate_detected",
            ConnectionStatus::Connected.as_str(),
            Some(detail),
            state,
        ));
        for holder in &holders {
            if let Some(other) = state
                .store
                .connection(&conn.tenant_id, &holder.connection_id)
                .await
                .map_err(anyhow::Error::from)?
            {
                let detail = serde_json::json!({"duplicate_of": [link_json(&newcomer)]});
                others_events.push(event(
                    &other,
                    "connection.duplicate_detected",
                    &other.status,
                    Some(detail),
                    state,
                ));
            }
        }
        tracing::warn!(
            connection_id = %conn.id, provider = %provider, external_account = %account.id,
            other_connections = holders.iter().map(|h| h.connection_id.as_str()).collect::<Vec<_>>().join(","),
            "the same account is linked by another organisation"
        );
    }
    // A reconnect replaces whatever a refresh in flight would store: its lease is dropped and
    // the token version moves on.
    state
        .store
        .update_connection(&conn.id, Guard::Any, &change, &events)
        .await
        .map_err(anyhow::Error::from)?;
    state.store.insert_events(&others_events).await.map_err(anyhow::Error::from)?;
    state.engine.wake();
    tracing::info!(connection_id = %conn.id, provider = %provider, external_account = %account.id, "connection authorised");
    let conn = state
        .store
        .connection_by_id(&conn.id)
        .await
        .map_err(anyhow::Error::from)?
        .ok_or(CallbackError::ConnectionGone)?;
    Ok(conn)
}

/// "organisation Acme (cld-1234)": how the holder of a duplicate link is named.
pub fn describe(link: &LinkedConnection) -> String {
    format!(
        "organisation {} ({})",
        link.organisation_name,
        link.organisation_external_id.as_deref().unwrap_or(&link.organisation_id),
    )
}

fn link_json(link: &LinkedConnection) -> serde_json::Value {
    serde_json::json!({
        "connection_id": link.connection_id,
        "organisation_id": link.organisation_id,
        "organisation_external_id": link.organisation_external_id,
        "organisation_name": link.organisation_name,
        "status": link.status,
        "linked_at": link.linked_at.map(|t| t.to_rfc3339()),
    })
}

/// Records a failed authorisation: the connection keeps its status, with the diagnosis.
async fn fail(state: &AppState, conn: Connection, diagnosis: Diagnosis) -> CallbackError {
    let json = match serde_json::to_string(&diagnosis) {
        Ok(json) => json,
        Err(e) => return CallbackError::Internal(e.into()),
    };
    let change =
        ConnectionChange { last_error: Some(Some(json)), ..ConnectionChange::keep(&conn, state.clock.now()) };
    let events = [event(
        &conn,
        "connection.authorization_failed",
        &conn.status,
        Some(serde_json::json!({"diagnosis": diagnosis})),
        state,
    )];
    if let Err(e) = state.store.update_connection(&conn.id, Guard::Any, &change, &events).await {
        return CallbackError::Internal(e.into());
    }
    tracing::warn!(connection_id = %conn.id, provider = %conn.provider, category = %diagnosis.category, "authorisation failed");
    CallbackError::Provider(Box::new(diagnosis), Box::new(conn))
}

/// Revokes the grant at the provider, best effort: deleting a connection must not depend on
/// the provider being up.
pub async fn revoke(state: &AppState, conn: &Connection) {
    let Ok(provider) = conn.provider.parse::<Provider>() else { return };
    let (Ok(client), Some(sealed)) = (state.providers.oauth(provider), &conn.refresh_token) else { return };
    let token: SecretString = match state
        .keys
        .decrypt_secret(sealed, &token_context(&conn.id, "refresh_token"))
    {
        Ok(token) => token,
        Err(error) => {
            tracing::warn!(connection_id = %conn.id, %error, "cannot decrypt the refresh token to revoke it");
            return;
        }
    };
    if let Err(error) = client.revoke(&token).await {
        tracing::warn!(connection_id = %conn.id, provider = %provider, %error, "revoking at the provider failed; deleting anyway");
    }
}
