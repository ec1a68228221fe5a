//! Xero: `login.xero.com` / `identity.xero.com` (OAuth) and `api.xero.com` (connections, the
//! accounting API), under `/xero`.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use ledgerlink_core::Timestamp;
use serde_json::{Map, Value, json};

use super::api::{self, Caller, Refused, Rejection, Remaining};
use super::faults::{ApiErrorFault, EndpointFault};
use super::http::{
    basic_credentials, bearer, gateway_error_page, header_str, parse_form, retry_after, token_json,
};
use super::oauth::{self, TokenOutcome};
use super::state::{AccessError, ProviderState, Record, TokenError};
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
        .route("/xero/api.xro/2.0/{*path}", any(accounting))
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

/// The accounting API (`api.xro/2.0`): `Organisation`, `Contacts` and `Contacts/{id}`; resource
/// names are case-insensitive, as Xero's are.
async fn accounting(
    State(sim): State<Simulator>,
    method: Method,
    headers: HeaderMap,
    Path(path): Path<String>,
    body: Bytes,
) -> Response {
    let handlers = api::Handlers {
        authenticate: |st: &mut ProviderState, now: Timestamp| authenticate_tenant(st, now, &headers),
        refused: |refused: Refused| rate_limited(refused.limit.xero_problem(), refused.retry_after_secs),
        failed: api_error,
        serve: |st: &mut ProviderState, now: Timestamp, caller: &Caller, remaining: Remaining| {
            let mut response = resource(st, now, &caller.account, &method, path.trim_matches('/'), &body);
            let headers = response.headers_mut();
            headers.insert("X-MinLimit-Remaining", HeaderValue::from(remaining.minute));
            headers.insert("X-DayLimit-Remaining", HeaderValue::from(remaining.day));
            headers.insert("X-AppMinLimit-Remaining", HeaderValue::from(remaining.app_minute));
            response
        },
    };
    api::call(&sim, XERO, handlers).await
}

/// Endpoint faults, the bearer token and the `xero-tenant-id` it must grant.
fn authenticate_tenant(
    st: &mut ProviderState,
    now: Timestamp,
    headers: &HeaderMap,
) -> Result<Caller, Rejection> {
    if let Some(fault) = st.take_endpoint_fault() {
        return Err(api_fault(fault).into());
    }
    let (client, tenant) = match st.authenticate(now, bearer(headers)) {
        Ok(grant) if !grant.connection_removed => (grant.client_id.clone(), grant.account_id.clone()),
        Ok(_) => return Err(forbidden().into()),
        Err(error) => return Err(unauthorized(error).into()),
    };
    let asked = header_str(headers, "xero-tenant-id");
    if !asked.is_some_and(|asked| asked.eq_ignore_ascii_case(&tenant)) || st.account(&tenant).is_none() {
        return Err(forbidden().into());
    }
    Ok(Caller { account: tenant, client })
}

fn resource(
    st: &mut ProviderState,
    now: Timestamp,
    tenant: &str,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Response {
    let segments: Vec<&str> = path.split('/').collect();
    let (resource, id) = match segments.as_slice() {
        [resource] => (*resource, None),
        [resource, id] => (*resource, Some(*id)),
        _ => return not_found(),
    };
    let get = *method == Method::GET;
    if resource.eq_ignore_ascii_case("Organisation") && id.is_none() {
        return if get { organisation(st, now, tenant) } else { not_implemented() };
    }
    if !resource.eq_ignore_ascii_case("Contacts") {
        return not_found();
    }
    match (id, method) {
        (None, _) if get => list_contacts(st, now, tenant),
        (Some(id), _) if get => {
            let contact =
                st.account(tenant).and_then(|a| a.records.iter().find(|r| r.id.eq_ignore_ascii_case(id)));
            match contact {
                Some(contact) => envelope(now, "Contacts", vec![contact_json(contact)]),
                None => not_found(),
            }
        }
        (None, &Method::PUT) => save_contacts(st, now, tenant, body, Save::Create),
        (None, &Method::POST) => save_contacts(st, now, tenant, body, Save::CreateOrUpdate),
        (Some(id), &Method::POST) => save_contacts(st, now, tenant, body, Save::Update(id)),
        _ => not_implemented(),
    }
}

/// The accounting API's response envelope around a list of `key`.
fn envelope(now: Timestamp, key: &str, items: Vec<Value>) -> Response {
    let mut body = json!({
        "Id": tokens::uuid(),
        "Status": "OK",
        "ProviderName": "ledgerlink",
        "DateTimeUTC": ms_date(now),
    });
    body[key] = Value::Array(items);
    axum::Json(body).into_response()
}

fn organisation(st: &ProviderState, now: Timestamp, tenant: &str) -> Response {
    let Some(account) = st.account(tenant) else { return forbidden() };
    let organisation = json!({
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
    });
    envelope(now, "Organisations", vec![organisation])
}

fn contact_json(record: &Record) -> Value {
    let mut contact = record.fields.clone();
    let generated = [
        ("ContactID", json!(record.id)),
        ("ContactStatus", json!("ACTIVE")),
        ("Name", json!(record.name)),
        ("UpdatedDateUTC", json!(ms_date(record.updated_at))),
        ("HasAttachments", json!(false)),
    ];
    for (key, value) in generated {
        contact.insert(key.to_owned(), value);
    }
    for (key, value) in [("Addresses", json!([])), ("Phones", json!([])), ("IsSupplier", json!(false))] {
        contact.entry(key).or_insert(value);
    }
    contact.entry("IsCustomer").or_insert(json!(false));
    Value::Object(contact)
}

fn list_contacts(st: &ProviderState, now: Timestamp, tenant: &str) -> Response {
    let contacts =
        st.account(tenant).map(|a| a.records.iter().map(contact_json).collect()).unwrap_or_default();
    envelope(now, "Contacts", contacts)
}

/// What a `Contacts` write may do: `PUT` only creates; `POST` also updates by `ContactID`.
#[derive(Clone, Copy)]
enum Save<'a> {
    Create,
    CreateOrUpdate,
    /// `POST Contacts/{id}`.
    Update(&'a str),
}

/// A contact that passed validation, about to be saved.
struct Planned {
    /// The contact to update; `None` creates one.
    id: Option<String>,
    name: String,
    fields: Map<String, Value>,
}

/// `PUT`/`POST Contacts`: `{"Contacts": [{"Name": …}, …]}` or a single contact object. Like
/// Xero (with `summarizeErrors` left on), one invalid contact fails the whole request.
fn save_contacts(
    st: &mut ProviderState,
    now: Timestamp,
    tenant: &str,
    body: &[u8],
    save: Save<'_>,
) -> Response {
    let contacts = match parse_contacts(body) {
        Ok(contacts) => contacts,
        Err(message) => return post_data_invalid(&message),
    };
    let Some(account) = st.account(tenant) else { return forbidden() };
    let find = |id: &str| account.records.iter().find(|r| r.id.eq_ignore_ascii_case(id));
    let mut planned: Vec<Planned> = Vec::with_capacity(contacts.len());
    let mut invalid = Vec::new();
    for mut fields in contacts {
        let id = match save {
            Save::Create => None,
            Save::CreateOrUpdate => fields.remove("ContactID").and_then(|v| v.as_str().map(str::to_owned)),
            Save::Update(id) => Some(id.to_owned()),
        };
        let existing = match id.as_deref().map(find) {
            Some(None) => return not_found(),
            Some(Some(record)) => Some(record),
            None => None,
        };
        let given = fields.get("Name").and_then(Value::as_str).map(str::trim).filter(|n| !n.is_empty());
        let Some(name) = given.map(str::to_owned).or_else(|| existing.map(|r| r.name.clone())) else {
            invalid.push(with_validation_error(fields, "The contact name must be specified.".into()));
            continue;
        };
        let taken = account.records.iter().any(|r| {
            r.name.eq_ignore_ascii_case(&name) && Some(r.id.as_str()) != existing.map(|e| e.id.as_str())
        }) || planned.iter().any(|p| p.name.eq_ignore_ascii_case(&name));
        if taken {
            let message = format!(
                "The contact name {name} is already assigned to another contact. The contact name must be unique across all active contacts."
            );
            invalid.push(with_validation_error(fields, message));
            continue;
        }
        planned.push(Planned { id: existing.map(|r| r.id.clone()), name, fields });
    }
    if !invalid.is_empty() {
        return validation_exception(invalid);
    }
    let mut saved = Vec::with_capacity(planned.len());
    for Planned { id, name, fields } in planned {
        let record = match id {
            Some(id) => st.record_mut(tenant, &id).map(|record| {
                record.name = name;
                record.fields.extend(fields);
                record.updated_at = now;
                record.version += 1;
                &*record
            }),
            None => st.add_record(tenant, now, name, fields),
        };
        saved.extend(record.map(contact_json));
    }
    envelope(now, "Contacts", saved)
}

fn with_validation_error(mut contact: Map<String, Value>, message: String) -> Value {
    contact.insert("ValidationErrors".into(), json!([{"Message": message}]));
    Value::Object(contact)
}

fn parse_contacts(body: &[u8]) -> Result<Vec<Map<String, Value>>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let Value::Object(mut object) = value else { return Err("expected a JSON object".into()) };
    let list = match object.remove("Contacts") {
        Some(Value::Array(list)) => list,
        Some(_) => return Err("Contacts must be an array".into()),
        None => vec![Value::Object(object)],
    };
    list.into_iter()
        .map(|item| match item {
            Value::Object(contact) => Ok(contact),
            _ => Err("each contact must be a JSON object".into()),
        })
        .collect()
}

/// 400 with Xero's `ApiException` for validation errors; `elements` carry `ValidationErrors`.
fn validation_exception(elements: Vec<Value>) -> Response {
    let body = json!({
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": elements,
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

fn post_data_invalid(detail: &str) -> Response {
    let body = json!({
        "ErrorNumber": 14,
        "Type": "PostDataInvalidException",
        "Message": format!("JSON for post data was invalid, {detail}"),
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// Xero answers unknown resources and ids with a bare line of text, not JSON.
fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "The resource you're looking for cannot be found").into_response()
}

fn not_implemented() -> Response {
    let body = json!({
        "ErrorNumber": 20,
        "Type": "ApiMethodNotImplementedException",
        "Message": "The Api Method called is not implemented",
    });
    (StatusCode::NOT_IMPLEMENTED, axum::Json(body)).into_response()
}

/// The `api_error` fault: Xero's body for each status of its HTTP response code table.
fn api_error(error: &ApiErrorFault) -> Response {
    let code = error.code.as_deref();
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match error.status {
        400 => validation_exception(vec![json!({
            "ValidationErrors": [{"Message": code.unwrap_or("Email address must be valid.")}],
        })]),
        401 => problem(status, code.unwrap_or("AuthenticationUnsuccessful")),
        403 => problem(status, code.unwrap_or("AuthorizationUnsuccessful")),
        404 => not_found(),
        412 => problem(
            status,
            code.unwrap_or("One or more conditions given in the request header fields were invalid"),
        ),
        429 => match code {
            Some("concurrent") => rate_limited("concurrent", 1),
            Some("day") => rate_limited("day", 3600),
            Some("appminute") => rate_limited("appminute", 60),
            _ => rate_limited("minute", 60),
        },
        500 => {
            let body = json!({
                "ErrorNumber": 500,
                "Type": "UnknownErrorException",
                "Message": "An error occurred in Xero. Check the API Status page http://status.developer.xero.com for current service status. Contact the API support team at api@xero.com for more assistance.",
            });
            (status, axum::Json(body)).into_response()
        }
        501 => not_implemented(),
        // When the API or an organisation is offline, Xero answers in plain text.
        503 => {
            let text = match code {
                Some("organisation_offline") => "Organisation is offline",
                Some("unavailable") => "The Xero API is temporarily unavailable",
                _ => "The Xero API is currently offline for maintenance",
            };
            (status, text).into_response()
        }
        _ => problem(status, status.canonical_reason().unwrap_or("Error")),
    }
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
