//! The Reckon Web Connector's two endpoints (seed 003), authenticated with the connection's
//! Basic Auth credentials rather than an API key: `GET /webconnector/reckon?id=&state=` and the
//! `postURL`, `POST /webconnector/reckon/result?id=&exchange=`. Protocol logic: [`crate::webconnector`].

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ledgerlink_core::Provider;
use ledgerlink_store::Connection;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use crate::AppState;
use crate::webconnector::{self, Callback, ExchangeError};

/// Wrong logins in a row before a connection's web connector login is refused for a while.
const BLOCK_AFTER: i64 = 5;
const BLOCK_FOR: Duration = Duration::from_secs(60);

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PollParams {
    /// The connection id (`webconnector.connection_id`).
    pub id: Option<String>,
    /// The `state` of the previous POST's answer on an immediate repeat; blank on a scheduled one.
    pub state: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResultParams {
    /// The connection id.
    pub id: Option<String>,
    /// The exchange the answer belongs to.
    pub exchange: Option<String>,
}

/// The RWC asks for work (Basic Auth). Answers `{"postURL", "qbXMLRequest", "tryAgainIn"}`;
/// an empty `qbXMLRequest` when there is nothing to do.
#[utoipa::path(get, path = "/webconnector/reckon", tag = "web connector", security(), params(PollParams),
    responses((status = 200, description = "`{\"postURL\", \"qbXMLRequest\", \"tryAgainIn\"}`"),
        (status = 401, description = "wrong credentials", body = ErrorBody),
        (status = 429, description = "too many wrong logins: wait", body = ErrorBody)))]
pub async fn poll(
    State(state): State<AppState>,
    Query(params): Query<PollParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let conn = authenticate(&state, params.id.as_deref(), &headers).await?;
    let handout = webconnector::next_work(&state, &conn, params.state.as_deref().unwrap_or(""))
        .await
        .map_err(|e| ApiError::internal(format!("{e:#}")))?;
    Ok(Json(handout).into_response())
}

/// The RWC posts the qbXML result (Basic Auth) with `{"qbXMLResponse", "connectorId",
/// "errorCode", "errorMsg"}`; answers `{"repeatCommunication", "state"}`.
#[utoipa::path(post, path = "/webconnector/reckon/result", tag = "web connector", security(), params(ResultParams),
    responses((status = 200, description = "`{\"repeatCommunication\", \"state\"}`"),
        (status = 400, description = "malformed JSON or qbXML, or responses that do not match the exchange; nothing changed", body = ErrorBody),
        (status = 401, description = "wrong credentials; the exchange stays open", body = ErrorBody),
        (status = 409, description = "no open exchange has this postURL", body = ErrorBody)))]
pub async fn result(
    State(state): State<AppState>,
    Query(params): Query<ResultParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let exchange = params.exchange.filter(|e| !e.is_empty()).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the postURL lacks its `exchange` parameter",
        )
    })?;
    let conn = authenticate(&state, params.id.as_deref(), &headers).await?;
    let callback: Callback = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body must be JSON {{\"qbXMLResponse\", \"connectorId\", \"errorCode\", \"errorMsg\"}}: {e}"),
        )
    })?;
    match webconnector::receive(&state, &conn, &exchange, callback).await {
        Ok(answer) => Ok(Json(answer).into_response()),
        Err(ExchangeError::BadRequest(message)) => {
            tracing::warn!(connection_id = %conn.id, %message, "refused a web connector answer");
            Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_qbxml_response", message))
        }
        Err(ExchangeError::UnknownExchange(message)) => {
            Err(ApiError::new(StatusCode::CONFLICT, "unknown_exchange", message))
        }
        Err(ExchangeError::Internal(error)) => Err(ApiError::internal(format!("{error:#}"))),
    }
}

/// Checks the Basic Auth credentials of connection `id`, throttling repeated failures. An
/// unknown id answers exactly like a wrong password.
async fn authenticate(
    state: &AppState,
    id: Option<&str>,
    headers: &HeaderMap,
) -> Result<Connection, ApiError> {
    let refused = || {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "wrong web connector username or password")
    };
    let id = id.filter(|id| ledgerlink_core::id::is_well_formed("con", id)).ok_or_else(refused)?;
    let Some(credentials) = state.store.credentials(id).await? else { return Err(refused()) };
    let now = state.clock.now();
    if let Some(until) = credentials.login_blocked_until.filter(|until| *until > now) {
        let wait = (until.as_millis() - now.as_millis()).div_euclid(1000) + 1;
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failed_logins",
            format!("too many wrong logins for this connection; try again in {wait} s"),
        ));
    }
    let presented = basic_credentials(headers);
    let ok = match &presented {
        Some((user, password)) => {
            crate::passwords::same(user, &credentials.username)
                & crate::passwords::verify(&credentials.secret, password).await
        }
        None => false,
    };
    if credentials.login_failures > 0 || !ok {
        state.store.record_login(id, ok, BLOCK_AFTER, now.saturating_add(BLOCK_FOR)).await?;
    }
    if !ok {
        tracing::warn!(connection_id = id, "wrong web connector login");
        return Err(refused());
    }
    let conn = state.store.connection_by_id(id).await?.ok_or_else(refused)?;
    if conn.provider != Provider::Reckon.as_str() {
        return Err(refused());
    }
    Ok(conn)
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// `WWW-Authenticate` on 401s from these endpoints, so clients know to send Basic Auth.
pub fn challenge(mut response: Response) -> Response {
    if response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"ledgerlink web connector\""),
        );
    }
    response
}
