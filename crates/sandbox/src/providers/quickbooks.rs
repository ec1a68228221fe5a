//! QuickBooks Online: `appcenter.intuit.com` (consent), `oauth.platform.intuit.com` (tokens),
//! `developer.api.intuit.com` (revoke), `accounts.platform.intuit.com` (userinfo) and
//! `quickbooks.api.intuit.com/v3` (the accounting API), under `/quickbooks`.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::faults::EndpointFault;
use super::http::{basic_credentials, bearer, gateway_error_page, parse_form, retry_after, token_json};
use super::oauth::{self, TokenOutcome};
use super::state::{AccessError, TokenError};
use super::{Provider, Simulator, tokens};

const QBO: Provider = Provider::QuickBooks;

pub(super) fn routes() -> Router<Simulator> {
    Router::new()
        .route("/quickbooks/connect/oauth2", get(authorize))
        .route("/quickbooks/connect/oauth2/decision", post(decision))
        .route("/quickbooks/oauth2/v1/tokens/bearer", post(token))
        .route("/quickbooks/v2/oauth2/tokens/revoke", post(revoke))
        .route("/quickbooks/v1/openid_connect/userinfo", get(userinfo))
        .route("/quickbooks/v3/company/{realm}/companyinfo/{id}", get(company_info))
}

/// Every Intuit response carries a transaction id support can trace.
fn with_tid(mut response: Response) -> Response {
    if let Ok(tid) = HeaderValue::from_str(&format!("1-{}-{}", tokens::hex(8), tokens::hex(24))) {
        response.headers_mut().insert("intuit_tid", tid);
    }
    response
}

async fn authorize(State(sim): State<Simulator>, Query(params): Query<HashMap<String, String>>) -> Response {
    oauth::authorize(&sim, QBO, &params)
}

async fn decision(State(sim): State<Simulator>, body: Bytes) -> Response {
    oauth::decision(&sim, QBO, &parse_form(&body))
}

async fn token(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    let client = basic_credentials(&headers).map(|(id, secret)| (id, Some(secret)));
    let call = oauth::token_call(&sim, QBO, client, &parse_form(&body)).await;
    if call.lost {
        return super::http::lost_response();
    }
    with_tid(match call.outcome {
        TokenOutcome::Fault(EndpointFault::Outage(status)) => gateway_error_page(status),
        TokenOutcome::Fault(fault @ EndpointFault::RateLimited { .. }) => api_fault(fault, &sim),
        TokenOutcome::Failed(error) => oauth_error(&error),
        TokenOutcome::Issued(t) => {
            let mut body = json!({
                "token_type": "bearer",
                "access_token": t.access_token,
                "expires_in": t.expires_in,
            });
            if let Some(refresh) = t.refresh_token {
                body["refresh_token"] = json!(refresh);
                body["x_refresh_token_expires_in"] = json!(t.refresh_expires_in);
            }
            if let Some(id_token) = t.id_token {
                body["id_token"] = json!(id_token);
            }
            token_json(StatusCode::OK, body)
        }
    })
}

fn oauth_error(error: &TokenError) -> Response {
    let status = match error {
        TokenError::InvalidClient => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    };
    token_json(status, json!({"error": error.code()}))
}

/// The accounting API's error document.
fn fault(
    sim: &Simulator,
    status: StatusCode,
    kind: &str,
    code: &str,
    message: &str,
    detail: &str,
) -> Response {
    let body = json!({
        "Fault": {
            "Error": [{
                "Message": format!("message={message}; errorCode={:0>6}; statusCode={}", code, status.as_u16()),
                "Detail": detail,
                "code": code,
            }],
            "type": kind,
        },
        "time": sim.now().to_rfc3339(),
    });
    (status, axum::Json(body)).into_response()
}

fn api_fault(f: EndpointFault, sim: &Simulator) -> Response {
    match f {
        EndpointFault::Outage(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let reason = status.canonical_reason().unwrap_or("Service Unavailable");
            fault(sim, status, "SystemFault", "10000", reason, "An application error has occurred.")
        }
        EndpointFault::RateLimited { retry_after_secs } => {
            let mut response = fault(
                sim,
                StatusCode::TOO_MANY_REQUESTS,
                "SERVICE",
                "3001",
                "ThrottleExceeded",
                "The request limit was reached.",
            );
            retry_after(&mut response, retry_after_secs);
            response
        }
    }
}

fn unauthorized(sim: &Simulator, error: AccessError) -> Response {
    let detail = match error {
        AccessError::Unknown => "Token invalid".to_owned(),
        AccessError::Expired(at) => format!("Token expired: {}", at.to_rfc3339()),
    };
    let mut response =
        fault(sim, StatusCode::UNAUTHORIZED, "AUTHENTICATION", "3200", "AuthenticationFailed", &detail);
    response.headers_mut().insert("WWW-Authenticate", HeaderValue::from_static("Bearer realm=\"Intuit\""));
    response
}

async fn revoke(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    let client = basic_credentials(&headers);
    let token = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("token").and_then(|t| t.as_str()).map(str::to_owned));
    with_tid(sim.with_state(QBO, |st, _, _| {
        let authenticated =
            client.as_ref().is_some_and(|(id, secret)| st.authenticate_client(id, Some(secret)).is_ok());
        if !authenticated {
            return oauth_error(&TokenError::InvalidClient);
        }
        let Some(token) = token else {
            return oauth_error(&TokenError::InvalidRequest("token is missing"));
        };
        // Intuit takes either token and revokes the whole grant.
        st.revoke_by_token(&token, true);
        StatusCode::OK.into_response()
    }))
}

async fn userinfo(State(sim): State<Simulator>, headers: HeaderMap) -> Response {
    with_tid(sim.with_state(QBO, |st, _, now| {
        st.counters.api_requests += 1;
        if let Some(f) = st.take_endpoint_fault() {
            return api_fault(f, &sim);
        }
        let grant = match st.authenticate(now, bearer(&headers)) {
            Ok(grant) => grant,
            Err(error) => return unauthorized(&sim, error),
        };
        let Some(account) = st.account(&grant.account_id) else {
            return unauthorized(&sim, AccessError::Unknown);
        };
        axum::Json(json!({
            "sub": account.user_id,
            "email": account.username,
            "emailVerified": true,
            "givenName": "Demo",
            "familyName": "User",
        }))
        .into_response()
    }))
}

async fn company_info(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path((realm, id)): Path<(String, String)>,
) -> Response {
    with_tid(sim.with_state(QBO, |st, _, now| {
        st.counters.api_requests += 1;
        if let Some(f) = st.take_endpoint_fault() {
            return api_fault(f, &sim);
        }
        let grant = match st.authenticate(now, bearer(&headers)) {
            Ok(grant) => grant,
            Err(error) => return unauthorized(&sim, error),
        };
        if grant.account_id != realm {
            return fault(
                &sim,
                StatusCode::FORBIDDEN,
                "AUTHORIZATION",
                "3100",
                "ApplicationAuthorizationFailed",
                "",
            );
        }
        let Some(account) = st.account(&realm).filter(|_| id == realm) else {
            return fault(
                &sim,
                StatusCode::BAD_REQUEST,
                "ValidationFault",
                "610",
                "Object Not Found",
                &format!("Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, vendors or employees. (CompanyInfo {id})"),
            );
        };
        let created = account.created_at.to_rfc3339();
        axum::Json(json!({
            "CompanyInfo": {
                "CompanyName": account.name,
                "LegalName": account.name,
                "CompanyAddr": {"Id": "1", "Line1": "123 Sierra Way", "City": "San Pablo", "CountrySubDivisionCode": "CA", "PostalCode": "87999"},
                "Country": "US",
                "Email": {"Address": account.username},
                "CompanyStartDate": &created[0..10],
                "FiscalYearStartMonth": "January",
                "SupportedLanguages": "en",
                "NameValue": [{"Name": "OfferingSku", "Value": "QuickBooks Online Plus"}],
                "domain": "QBO",
                "sparse": false,
                "Id": "1",
                "SyncToken": "1",
                "MetaData": {"CreateTime": created, "LastUpdatedTime": created},
            },
            "time": now.to_rfc3339(),
        }))
        .into_response()
    }))
}
