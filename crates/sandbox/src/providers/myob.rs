//! MYOB AccountRight / MYOB Business: `secure.myob.com` (OAuth) and `api.myob.com/accountright`
//! (company files), under `/myob`.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use ledgerlink_core::Timestamp;
use serde_json::{Value, json};

use super::api::{self, Caller, Refused, Rejection, Remaining};
use super::faults::{ApiErrorFault, EndpointFault};
use super::http::{bearer, gateway_error_page, header_str, parse_form, retry_after, token_json};
use super::oauth::{self, TokenOutcome};
use super::state::{ProviderState, Record};
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
        .route("/myob/accountright/{business}/{*rest}", any(company_file))
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
    errors_with_details(status, name, message, "", code)
}

fn errors_with_details(
    status: StatusCode,
    name: &str,
    message: &str,
    details: &str,
    code: Option<u32>,
) -> Response {
    let body = json!({
        "Errors": [{
            "Name": name,
            "Message": message,
            "AdditionalDetails": details,
            "ErrorCode": code,
            "Severity": "Error",
        }],
        "Information": "Warning, error messages have not been finalised in this release and may change",
    });
    (status, axum::Json(body)).into_response()
}

/// The errors the `api_error` fault answers with, by status and `Name` (its `code`); the first
/// of a status is what the status alone selects. 409-423 follow MYOB's response code list; their
/// names are not documented and are the simulator's.
const DOCUMENTED: [(u16, &str, &str, &str, Option<u32>); 11] = [
    (401, "OAuthTokenIsInvalid", "The supplied OAuth token (Bearer) is not valid", "", Some(31001)),
    (403, "AccessDenied", "The user does not have access to this company file", "", None),
    (403, "RateLimitError", "API key has exceeded the per-second rate limit", "Header: x-myobapi-key", None),
    (403, "DeveloperInactive", "API key is missing or inactive", "", None),
    (404, "ResourceNotFound", "The requested resource could not be found", "", None),
    (
        409,
        "ConcurrencyViolation",
        "The RowVersion supplied does not match the record's current version: it was changed after you read it",
        "RowVersion",
        None,
    ),
    (410, "CompanyFileGone", "The company file is no longer available", "", None),
    (
        418,
        "CompanyFileUpgraded",
        "This company file has been upgraded and can no longer be reached through this API",
        "",
        None,
    ),
    (
        423,
        "CompanyFileUpgradeInProgress",
        "The company file is being upgraded; try again once it has finished",
        "",
        None,
    ),
    (503, "ServiceUnavailable", "The service is temporarily unavailable", "", None),
    (
        504,
        "GatewayTimeout",
        "Connection to the API has timed out. Maximum call time is 120 seconds",
        "",
        None,
    ),
];

fn documented(status: u16, name: Option<&str>) -> Option<Response> {
    let (status, name, message, details, code) = DOCUMENTED
        .iter()
        .find(|(s, n, ..)| *s == status && name.is_none_or(|name| name.eq_ignore_ascii_case(n)))?;
    let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Some(errors_with_details(status, name, message, details, *code))
}

/// The `api_error` fault: a documented error, or a generic one named after the status.
fn api_error(error: &ApiErrorFault) -> Response {
    documented(error.status, error.code.as_deref()).unwrap_or_else(|| {
        let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let reason = status.canonical_reason().unwrap_or("Error");
        let name = error.code.clone().unwrap_or_else(|| reason.replace([' ', '-', '\''], ""));
        errors(status, &name, reason, None)
    })
}

/// 8 calls in any second per API key. MYOB answers its rate limits with 403, not 429.
fn per_second_limit() -> Response {
    documented(403, Some("RateLimitError")).unwrap_or_else(|| StatusCode::FORBIDDEN.into_response())
}

fn api_fault(fault: EndpointFault) -> Response {
    match fault {
        EndpointFault::Outage(status) => {
            documented(status, None).filter(|_| matches!(status, 503 | 504)).unwrap_or_else(|| {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                errors(status, "ServiceUnavailable", "The service is temporarily unavailable", None)
            })
        }
        EndpointFault::RateLimited { retry_after_secs } => {
            let mut response = errors_with_details(
                StatusCode::FORBIDDEN,
                "RateLimitError",
                "API key has exceeded the daily rate limit",
                "Header: x-myobapi-key",
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

/// The checks every call past the OAuth server passes: faults, the API key (`x-myobapi-key`;
/// `x-myobapi-version` is not checked), the bearer token. Returns the account the token grants
/// and the API key.
fn admit(st: &mut ProviderState, now: Timestamp, headers: &HeaderMap) -> Result<(String, String), Refusal> {
    if let Some(fault) = st.take_endpoint_fault() {
        return Err(Refusal::Fault(fault));
    }
    let key = header_str(headers, "x-myobapi-key").filter(|key| st.clients.contains_key(*key));
    let key = key.ok_or(Refusal::DeveloperInactive)?.to_owned();
    let grant = st.authenticate(now, bearer(headers)).map_err(|_| Refusal::InvalidToken)?;
    let account = st.account(&grant.account_id).ok_or(Refusal::InvalidToken)?;
    Ok((account.id.clone(), key))
}

/// Where company files live as this request reached us, e.g.
/// `http://127.0.0.1:8080/sandbox/myob/accountright`: the `Uri`s MYOB returns are absolute.
fn accountright_base(headers: &HeaderMap, uri: &Uri) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let path = uri.path();
    let prefix = path.find("/myob/accountright").map_or("/myob/accountright", |at| &path[..at + 18]);
    format!("http://{host}{prefix}")
}

async fn company_files(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let base = accountright_base(&headers, &uri);
    sim.with_state(MYOB, |st, _, now| {
        st.counters.api_requests += 1;
        let account = match admit(st, now, &headers) {
            Ok((account, _)) => st.account(&account),
            Err(refusal) => return refusal.into_response(),
        };
        let Some(account) = account else { return invalid_token() };
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

/// One company file's API: `Company`, `Contact/Customer` and `Contact/Customer/{uid}`.
async fn company_file(
    State(sim): State<Simulator>,
    method: Method,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path((business, rest)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let file_url = format!("{}/{business}", accountright_base(&headers, &uri));
    let handlers = api::Handlers {
        authenticate: |st: &mut ProviderState, now: Timestamp| {
            let (account, key) = admit(st, now, &headers).map_err(|r| Rejection::from(r.into_response()))?;
            if !account.eq_ignore_ascii_case(&business) {
                return Err(documented(403, Some("AccessDenied")).unwrap_or_else(invalid_token).into());
            }
            Ok(Caller { account, client: key })
        },
        refused: |_: Refused| per_second_limit(),
        failed: api_error,
        serve: |st: &mut ProviderState, now: Timestamp, caller: &Caller, _: Remaining| {
            resource(st, now, &caller.account, &method, rest.trim_matches('/'), &body, &file_url)
        },
    };
    api::call(&sim, MYOB, handlers).await
}

fn resource(
    st: &mut ProviderState,
    now: Timestamp,
    business: &str,
    method: &Method,
    path: &str,
    body: &[u8],
    file_url: &str,
) -> Response {
    let lower = path.to_ascii_lowercase();
    let segments: Vec<&str> = lower.split('/').collect();
    let get = *method == Method::GET;
    let Some(account) = st.account(business) else { return invalid_token() };
    match segments.as_slice() {
        ["company"] if get => axum::Json(json!({
            "CompanyName": account.name,
            "SerialNumber": account.code,
            "ABN": "53 004 085 616",
            "Address": "1 Demo Street\r\nMelbourne VIC 3000",
            "PhoneNumber": "03 9000 0000",
            "EmailAddress": account.username,
        }))
        .into_response(),
        ["contact", "customer"] if get => {
            let items: Vec<Value> = account.records.iter().map(|r| customer_json(r, file_url)).collect();
            let count = items.len();
            axum::Json(json!({"Items": items, "NextPageLink": null, "Count": count})).into_response()
        }
        ["contact", "customer"] if *method == Method::POST => {
            create_customer(st, now, business, body, file_url)
        }
        ["contact", "customer", uid] if get => {
            match account.records.iter().find(|r| r.id.eq_ignore_ascii_case(uid)) {
                Some(record) => axum::Json(customer_json(record, file_url)).into_response(),
                None => documented(404, None).unwrap_or_else(|| StatusCode::NOT_FOUND.into_response()),
            }
        }
        ["company"] | ["contact", "customer"] | ["contact", "customer", _] => errors(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The requested resource does not support this HTTP method",
            None,
        ),
        _ => documented(404, None).unwrap_or_else(|| StatusCode::NOT_FOUND.into_response()),
    }
}

fn customer_json(record: &Record, file_url: &str) -> Value {
    let mut customer = record.fields.clone();
    let individual = customer.get("IsIndividual").and_then(Value::as_bool).unwrap_or(false);
    let generated = [
        ("UID", json!(record.id)),
        ("IsIndividual", json!(individual)),
        ("IsActive", json!(true)),
        ("CurrentBalance", json!(0.0)),
        ("LastModified", json!(record.updated_at.to_rfc3339())),
        ("URI", json!(format!("{file_url}/Contact/Customer/{}", record.id))),
        ("RowVersion", json!(record.version.to_string())),
    ];
    for (key, value) in generated {
        customer.insert(key.to_owned(), value);
    }
    if !individual {
        customer.insert("CompanyName".to_owned(), json!(record.name));
    }
    for key in ["CompanyName", "FirstName", "LastName", "Addresses", "Notes", "Identifiers", "PhotoURI"] {
        customer.entry(key).or_insert(Value::Null);
    }
    customer.entry("DisplayID").or_insert(json!("*None"));
    Value::Object(customer)
}

/// `POST Contact/Customer`: 201 with the new customer's `Location` and no body, as MYOB does.
fn create_customer(
    st: &mut ProviderState,
    now: Timestamp,
    business: &str,
    body: &[u8],
    file_url: &str,
) -> Response {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return errors(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            "The request body is not a valid JSON object",
            None,
        );
    };
    for generated in ["UID", "URI", "RowVersion", "LastModified"] {
        fields.remove(generated);
    }
    let text = |key: &str| fields.get(key).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty());
    let individual = fields.get("IsIndividual").and_then(Value::as_bool).unwrap_or(false);
    let name = if individual {
        text("LastName")
            .map(|last| text("FirstName").map_or_else(|| last.to_owned(), |first| format!("{last}, {first}")))
    } else {
        text("CompanyName").map(str::to_owned)
    };
    let Some(name) = name else {
        let field = if individual { "LastName" } else { "CompanyName" };
        return errors_with_details(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            "CommonRules_StringRequired",
            field,
            Some(1000),
        );
    };
    let Some(uid) = st.add_record(business, now, name, fields).map(|r| r.id.clone()) else {
        return invalid_token();
    };
    let location = format!("{file_url}/Contact/Customer/{uid}");
    let mut response = StatusCode::CREATED.into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}
