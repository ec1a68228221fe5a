//! MYOB AccountRight / MYOB Business: `secure.myob.com` (OAuth) and `api.myob.com/accountright`
//! (company files), under `/myob`.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ledgerlink_core::Timestamp;
use serde_json::json;

use super::faults::EndpointFault;
use super::http::{bearer, gateway_error_page, header_str, parse_form, retry_after, token_json};
use super::oauth::{self, TokenOutcome};
use super::state::{Account, ProviderState};
use super::{Provider, Simulator};

const MYOB: Provider = Provider::Myob;

pub(super) fn routes() -> Router<Simulator> {
    Router::new()
        .route("/myob/oauth2/account/authorize", get(authorize))
        .route("/myob/oauth2/account/authorize/decision", post(decision))
        .route("/myob/oauth2/v1/authorize", post(token))
        .route("/myob/oauth2/v1/authorize/", post(token))
        .route("/myob/accountright", get(company_files))
        .route("/myob/accountright/", get(company_files))
        .route("/myob/accountright/{business}/Company", get(company))
}

async fn authorize(State(sim): State<Simulator>, Query(params): Query<HashMap<String, String>>) -> Response {
    oauth::authorize(&sim, MYOB, &params)
}

async fn decision(State(sim): State<Simulator>, body: Bytes) -> Response {
    oauth::decision(&sim, MYOB, &parse_form(&body))
}

/// MYOB's token endpoint takes the client credentials in the form body, not by Basic auth.
async fn token(State(sim): State<Simulator>, body: Bytes) -> Response {
    let form = parse_form(&body);
    let client = form.get("client_id").map(|id| (id.clone(), form.get("client_secret").cloned()));
    let call = oauth::token_call(&sim, MYOB, client, &form).await;
    if call.lost {
        return super::http::lost_response();
    }
    match call.outcome {
        TokenOutcome::Fault(EndpointFault::Outage(status)) => gateway_error_page(status),
        TokenOutcome::Fault(fault @ EndpointFault::RateLimited { .. }) => api_fault(fault),
        // Credentials come in the body, so a bad client is a 400 like the other OAuth errors.
        TokenOutcome::Failed(error) => token_json(StatusCode::BAD_REQUEST, json!({"error": error.code()})),
        TokenOutcome::Issued(t) => {
            let mut body = json!({
                "access_token": t.access_token,
                "token_type": "bearer",
                // A string, as MYOB sends it.
                "expires_in": t.expires_in.to_string(),
                "scope": t.scope,
                "user": {"uid": t.user_id, "username": t.username},
            });
            if let Some(refresh) = t.refresh_token {
                body["refresh_token"] = json!(refresh);
            }
            token_json(StatusCode::OK, body)
        }
    }
}

/// MYOB's error document. `ErrorCode` is null where MYOB documents none.
fn errors(status: StatusCode, name: &str, message: &str, code: Option<u32>) -> Response {
    let body = json!({
        "Errors": [{
            "Name": name,
            "Message": message,
            "AdditionalDetails": "",
            "ErrorCode": code,
            "Severity": "Error",
        }],
        "Information": "Warning, error messages have not been finalised in this release and may change",
    });
    (status, axum::Json(body)).into_response()
}

fn api_fault(fault: EndpointFault) -> Response {
    match fault {
        EndpointFault::Outage(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            match status {
                StatusCode::GATEWAY_TIMEOUT => errors(
                    status,
                    "GatewayTimeout",
                    "Connection to the API has timed out. Maximum call time is 120 seconds",
                    None,
                ),
                _ => errors(status, "ServiceUnavailable", "The service is temporarily unavailable", None),
            }
        }
        // MYOB answers its rate limits with 403, not 429.
        EndpointFault::RateLimited { retry_after_secs } => {
            let mut response = errors(
                StatusCode::FORBIDDEN,
                "RateLimitError",
                "API key has exceeded the daily rate limit",
                None,
            );
            retry_after(&mut response, retry_after_secs);
            response
        }
    }
}

fn invalid_token() -> Response {
    errors(
        StatusCode::UNAUTHORIZED,
        "OAuthTokenIsInvalid",
        "The supplied OAuth token (Bearer) is not valid",
        Some(31001),
    )
}

/// Why a company-file call is refused before it reaches a company file.
enum Refusal {
    Fault(EndpointFault),
    DeveloperInactive,
    InvalidToken,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Fault(fault) => api_fault(fault),
            Self::DeveloperInactive => {
                errors(StatusCode::FORBIDDEN, "DeveloperInactive", "API key is missing or inactive", None)
            }
            Self::InvalidToken => invalid_token(),
        }
    }
}

/// The checks every company-file call passes: faults, the API key, the bearer token.
/// Returns the account the token grants.
fn admit<'a>(st: &'a mut ProviderState, now: Timestamp, headers: &HeaderMap) -> Result<&'a Account, Refusal> {
    st.counters.api_requests += 1;
    if let Some(fault) = st.take_endpoint_fault() {
        return Err(Refusal::Fault(fault));
    }
    if !header_str(headers, "x-myobapi-key").is_some_and(|key| st.clients.contains_key(key)) {
        return Err(Refusal::DeveloperInactive);
    }
    let grant = st.authenticate(now, bearer(headers)).map_err(|_| Refusal::InvalidToken)?;
    st.account(&grant.account_id).ok_or(Refusal::InvalidToken)
}

async fn company_files(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Response {
    // The `Uri` of each file is absolute, built from how this request reached us.
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let base = format!("http://{host}{}", uri.path().trim_end_matches('/'));
    sim.with_state(MYOB, |st, _, now| {
        let account = match admit(st, now, &headers) {
            Ok(account) => account,
            Err(refusal) => return refusal.into_response(),
        };
        axum::Json(json!([{
            "Id": account.id,
            "Name": account.name,
            "LibraryPath": account.name,
            "ProductVersion": "2024.1",
            "ProductLevel": {"Code": 20, "Name": "Standard"},
            "CheckedOutDate": null,
            "CheckedOutBy": null,
            "Uri": format!("{base}/{}", account.id),
            "Country": "AU",
            "LauncherId": account.user_id,
            "SerialNumber": account.code,
        }]))
        .into_response()
    })
}

async fn company(State(sim): State<Simulator>, headers: HeaderMap, Path(business): Path<String>) -> Response {
    sim.with_state(MYOB, |st, _, now| {
        let account = match admit(st, now, &headers) {
            Ok(account) => account,
            Err(refusal) => return refusal.into_response(),
        };
        if !account.id.eq_ignore_ascii_case(&business) {
            return errors(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "The user does not have access to this company file",
                None,
            );
        }
        axum::Json(json!({
            "CompanyName": account.name,
            "SerialNumber": account.code,
            "ABN": "53 004 085 616",
            "Address": "1 Demo Street\r\nMelbourne VIC 3000",
            "PhoneNumber": "03 9000 0000",
            "EmailAddress": account.username,
        }))
        .into_response()
    })
}
