//! The control API: fault switches, counters and account actions, under `/_control/{provider}`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{ControlError, FaultUpdate, Provider, Simulator};

pub(super) fn routes() -> Router<Simulator> {
    Router::new()
        .route("/_control/{provider}/faults", get(faults).post(set_faults).delete(clear_faults))
        .route("/_control/{provider}/stats", get(stats))
        .route("/_control/{provider}/accounts", get(accounts).post(create_account))
        .route("/_control/{provider}/accounts/{account}/revoke", post(revoke_account))
        .route("/_control/{provider}/accounts/{account}/expire-refresh-tokens", post(expire_refresh_tokens))
}

/// Parses a JSON body; an empty body reads as `{}`.
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ControlError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| ControlError::MalformedBody(e.to_string()))
}

async fn faults(
    State(sim): State<Simulator>,
    Path(provider): Path<String>,
) -> Result<Response, ControlError> {
    let provider: Provider = provider.parse()?;
    Ok(Json(sim.faults(provider)).into_response())
}

async fn set_faults(
    State(sim): State<Simulator>,
    Path(provider): Path<String>,
    body: Bytes,
) -> Result<Response, ControlError> {
    let provider: Provider = provider.parse()?;
    let update: FaultUpdate = parse_body(&body)?;
    Ok(Json(sim.set_faults(provider, update)?).into_response())
}

async fn clear_faults(
    State(sim): State<Simulator>,
    Path(provider): Path<String>,
) -> Result<Response, ControlError> {
    let provider: Provider = provider.parse()?;
    sim.clear_faults(provider);
    Ok(Json(sim.faults(provider)).into_response())
}

async fn stats(State(sim): State<Simulator>, Path(provider): Path<String>) -> Result<Response, ControlError> {
    let provider: Provider = provider.parse()?;
    Ok(Json(sim.stats(provider)).into_response())
}

async fn accounts(
    State(sim): State<Simulator>,
    Path(provider): Path<String>,
) -> Result<Response, ControlError> {
    let provider: Provider = provider.parse()?;
    Ok(Json(json!({"data": sim.accounts(provider)})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    name: Option<String>,
}

async fn create_account(
    State(sim): State<Simulator>,
    Path(provider): Path<String>,
    body: Bytes,
) -> Result<Response, ControlError> {
    let provider: Provider = provider.parse()?;
    let new: NewAccount = parse_body(&body)?;
    let account = sim.create_account(provider, new.name.as_deref().map(str::trim).filter(|n| !n.is_empty()));
    Ok((StatusCode::CREATED, Json(account)).into_response())
}

async fn revoke_account(
    State(sim): State<Simulator>,
    Path((provider, account)): Path<(String, String)>,
) -> Result<Response, ControlError> {
    let provider: Provider = provider.parse()?;
    let grants = sim.revoke_account(provider, &account)?;
    Ok(Json(json!({"account_id": account, "revoked_grants": grants})).into_response())
}

async fn expire_refresh_tokens(
    State(sim): State<Simulator>,
    Path((provider, account)): Path<(String, String)>,
) -> Result<Response, ControlError> {
    let provider: Provider = provider.parse()?;
    let grants = sim.expire_refresh_tokens(provider, &account)?;
    Ok(Json(json!({"account_id": account, "expired_grants": grants})).into_response())
}
