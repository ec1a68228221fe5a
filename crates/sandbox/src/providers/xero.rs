//! Xero: `login.xero.com` / `identity.xero.com` (OAuth) and `api.xero.com` (connections, the
//! accounting API), under `/xero`.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use ledgerlink_core::Timestamp;
use serde_json::json;

use super::faults::EndpointFault;
use super::http::{
    basic_credentials, bearer, gateway_error_page, header_str, parse_form, retry_after, token_json,
};
use super::oauth::{self, TokenOutcome};
use super::state::{AccessError, TokenError};
use super::{Provider, Simulator, tokens};

const XERO: Provider = Provider::Xero;

pub(super) fn routes() -> Router<Simulator> {
    Router::new()
        .route("/xero/identity/connect/authorize", get(authorize))
        .route("/xero/identity/connect/authorize/decision", post(decision))
        .route("/xero/identity/connect/token", post(token))
        .route("/xero/identity/connect/revocation", post(revocation))
        .route("/xero/connections", get(connections))
        .route("/xero/connections/{id}", delete(delete_connection))
        .route("/xero/api.xro/2.0/Organisation", get(organisation))
}

async fn authorize(State(sim): State<Simulator>, Query(params): Query<HashMap<String, String>>) -> Response {
    oauth::authorize(&sim, XERO, &params)
}

async fn decision(State(sim): State<Simulator>, body: Bytes) -> Response {
    oauth::decision(&sim, XERO, &parse_form(&body))
}

async fn token(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    let client = basic_credentials(&headers).map(|(id, secret)| (id, Some(secret)));
    let call = oauth::token_call(&sim, XERO, client, &parse_form(&body)).await;
    if call.lost {
        return super::http::lost_response();
    }
    match call.outcome {
        TokenOutcome::Fault(fault) => identity_fault(fault),
        TokenOutcome::Failed(error) => oauth_error(&error),
        TokenOutcome::Issued(t) => {
            let mut body = json!({
                "access_token": t.access_token,
                "expires_in": t.expires_in,
                "token_type": "Bearer",
                "scope": t.scope,
            });
            if let Some(id_token) = t.id_token {
                body["id_token"] = json!(id_token);
            }
            if let Some(refresh) = t.refresh_token {
                body["refresh_token"] = json!(refresh);
            }
            token_json(StatusCode::OK, body)
        }
    }
}

fn oauth_error(error: &TokenError) -> Response {
    // Client authentication is by the Authorization header, so a failure is a 401 (RFC 6749).
    let status = match error {
        TokenError::InvalidClient => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    };
    token_json(status, json!({"error": error.code()}))
}

/// Faults on the identity server: gateway pages for outages, a bare 429 with Xero's headers.
fn identity_fault(fault: EndpointFault) -> Response {
    match fault {
        EndpointFault::Outage(status) => gateway_error_page(status),
        EndpointFault::RateLimited { retry_after_secs } => rate_limited("minute", retry_after_secs),
    }
}

fn rate_limited(problem: &'static str, retry_after_secs: u64) -> Response {
    let mut response = StatusCode::TOO_MANY_REQUESTS.into_response();
    retry_after(&mut response, retry_after_secs);
    response.headers_mut().insert("X-Rate-Limit-Problem", HeaderValue::from_static(problem));
    response
}

/// Xero's API errors are RFC 7807-like problem documents.
fn problem(status: StatusCode, detail: &str) -> Response {
    let body = json!({
        "Type": null,
        "Title": status.canonical_reason().unwrap_or("Error"),
        "Status": status.as_u16(),
        "Detail": detail,
        "Instance": tokens::uuid(),
        "Extensions": {},
    });
    (status, axum::Json(body)).into_response()
}

fn api_fault(fault: EndpointFault) -> Response {
    match fault {
        EndpointFault::Outage(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            problem(status, "The Xero API is temporarily unavailable. Please try again later.")
        }
        EndpointFault::RateLimited { retry_after_secs } => rate_limited("minute", retry_after_secs),
    }
}

fn unauthorized(error: AccessError) -> Response {
    match error {
        AccessError::Unknown => problem(StatusCode::UNAUTHORIZED, "AuthenticationUnsuccessful"),
        AccessError::Expired(at) => problem(
            StatusCode::UNAUTHORIZED,
            &format!("TokenExpired: token expired at {}", xero_expiry_time(at)),
        ),
    }
}

fn forbidden() -> Response {
    problem(StatusCode::FORBIDDEN, "AuthenticationUnsuccessful")
}

/// `MM/dd/yyyy HH:mm:ss` (UTC), as in Xero's `TokenExpired` detail.
fn xero_expiry_time(at: Timestamp) -> String {
    let iso = at.to_rfc3339(); // 2026-11-22T18:00:00.123Z
    format!("{}/{}/{} {}", &iso[5..7], &iso[8..10], &iso[0..4], &iso[11..19])
}

/// `2019-07-09T23:40:30.1833130`: Xero's connection dates have seven decimals and no zone.
fn connection_time(at: Timestamp) -> String {
    let iso = at.to_rfc3339();
    format!("{}0000", iso.trim_end_matches('Z'))
}

/// `/Date(1574275974000)/`: the accounting API's own JSON date form.
fn ms_date(at: Timestamp) -> String {
    format!("/Date({})/", at.as_millis())
}

async fn revocation(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    let form = parse_form(&body);
    let client = basic_credentials(&headers);
    sim.with_state(XERO, |st, _, _| {
        let authenticated =
            client.as_ref().is_some_and(|(id, secret)| st.authenticate_client(id, Some(secret)).is_ok());
        if !authenticated {
            return oauth_error(&TokenError::InvalidClient);
        }
        let Some(token) = form.get("token") else {
            return oauth_error(&TokenError::InvalidRequest("token is missing"));
        };
        // RFC 7009: an unknown token is not an error.
        st.revoke_by_token(token, false);
        StatusCode::OK.into_response()
    })
}

async fn connections(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    sim.with_state(XERO, |st, _, now| {
        st.counters.api_requests += 1;
        if let Some(fault) = st.take_endpoint_fault() {
            return api_fault(fault);
        }
        let grant = match st.authenticate(now, bearer(&headers)) {
            Ok(grant) => grant,
            Err(error) => return unauthorized(error),
        };
        let wanted_event = params.get("authEventId");
        let list: Vec<_> = (!grant.connection_removed
            && wanted_event.is_none_or(|e| *e == grant.auth_event_id))
        .then(|| st.account(&grant.account_id))
        .flatten()
        .map(|account| {
            json!({
                "id": grant.connection_id,
                "authEventId": grant.auth_event_id,
                "tenantId": account.id,
                "tenantType": "ORGANISATION",
                "tenantName": account.name,
                "createdDateUtc": connection_time(grant.created_at),
                "updatedDateUtc": connection_time(grant.updated_at),
            })
        })
        .into_iter()
        .collect();
        axum::Json(list).into_response()
    })
}

async fn delete_connection(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    sim.with_state(XERO, |st, _, now| {
        st.counters.api_requests += 1;
        let grant = match st.authenticate(now, bearer(&headers)) {
            Ok(grant) if grant.connection_id == id && !grant.connection_removed => grant.id,
            Ok(_) => return problem(StatusCode::NOT_FOUND, "Connection not found"),
            Err(error) => return unauthorized(error),
        };
        if let Some(grant) = st.grant_mut(grant) {
            grant.connection_removed = true;
        }
        StatusCode::NO_CONTENT.into_response()
    })
}

async fn organisation(State(sim): State<Simulator>, headers: HeaderMap) -> Response {
    sim.with_state(XERO, |st, rules, now| {
        st.counters.api_requests += 1;
        if let Some(fault) = st.take_endpoint_fault() {
            return api_fault(fault);
        }
        let (client_id, tenant) = match st.authenticate(now, bearer(&headers)) {
            Ok(grant) if !grant.connection_removed => (grant.client_id.clone(), grant.account_id.clone()),
            Ok(_) => return forbidden(),
            Err(error) => return unauthorized(error),
        };
        let asked = header_str(&headers, "xero-tenant-id");
        if !asked.is_some_and(|asked| asked.eq_ignore_ascii_case(&tenant)) {
            return forbidden();
        }
        let limits = st.limits.hit(now, &tenant, &client_id);
        if rules.enforce_api_rate_limits
            && let Some((problem, retry)) = limits.exceeded
        {
            st.counters.rate_limited_responses += 1;
            return rate_limited(problem, retry);
        }
        let Some(account) = st.account(&tenant) else { return forbidden() };
        let body = json!({
            "Id": tokens::uuid(),
            "Status": "OK",
            "ProviderName": "ledgerlink",
            "DateTimeUTC": ms_date(now),
            "Organisations": [{
                "OrganisationID": account.id,
                "APIKey": "",
                "Name": account.name,
                "LegalName": account.name,
                "PaysTax": true,
                "Version": "NZ",
                "OrganisationType": "COMPANY",
                "BaseCurrency": "NZD",
                "CountryCode": "NZ",
                "IsDemoCompany": false,
                "OrganisationStatus": "ACTIVE",
                "FinancialYearEndDay": 31,
                "FinancialYearEndMonth": 3,
                "SalesTaxBasis": "PAYMENTS",
                "SalesTaxPeriod": "TWOMONTHS",
                "DefaultSalesTax": "Tax Exclusive",
                "DefaultPurchasesTax": "Tax Exclusive",
                "CreatedDateUTC": ms_date(account.created_at),
                "OrganisationEntityType": "COMPANY",
                "Timezone": "NEWZEALANDSTANDARDTIME",
                "ShortCode": account.code,
                "Edition": "BUSINESS",
                "Class": "PREMIUM",
                "Addresses": [],
                "Phones": [],
                "ExternalLinks": [],
                "PaymentTerms": {},
            }],
        });
        let mut response = axum::Json(body).into_response();
        let headers = response.headers_mut();
        headers.insert("X-MinLimit-Remaining", HeaderValue::from(limits.minute_remaining));
        headers.insert("X-DayLimit-Remaining", HeaderValue::from(limits.day_remaining));
        headers.insert("X-AppMinLimit-Remaining", HeaderValue::from(limits.app_minute_remaining));
        response
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_and_connection_times_use_xeros_formats() {
        let at = Timestamp::from_millis(1_795_370_400_123); // 2026-11-22T18:00:00.123Z
        assert_eq!(xero_expiry_time(at), "11/22/2026 18:00:00");
        assert_eq!(connection_time(at), "2026-11-22T18:00:00.1230000");
        assert_eq!(ms_date(at), "/Date(1795370400123)/");
    }
}
