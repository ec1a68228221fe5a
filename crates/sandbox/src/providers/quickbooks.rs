//! QuickBooks Online: `appcenter.intuit.com` (consent), `oauth.platform.intuit.com` (tokens),
//! `developer.api.intuit.com` (revoke), `accounts.platform.intuit.com` (userinfo) and
//! `quickbooks.api.intuit.com/v3` (the accounting API), under `/quickbooks`.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use ledgerlink_core::Timestamp;
use serde_json::{Value, json};

use super::api::{self, Caller, Refused, Rejection, Remaining};
use super::faults::{ApiErrorFault, EndpointFault};
use super::http::{basic_credentials, bearer, gateway_error_page, parse_form, retry_after, token_json};
use super::oauth::{self, TokenOutcome};
use super::state::{AccessError, ProviderState, Record, TokenError};
use super::{Provider, Simulator, tokens};

const QBO: Provider = Provider::QuickBooks;

pub(super) fn routes() -> Router<Simulator> {
    Router::new()
        .route("/quickbooks/connect/oauth2", get(authorize))
        .route("/quickbooks/connect/oauth2/decision", post(decision))
        .route("/quickbooks/oauth2/v1/tokens/bearer", post(token))
        .route("/quickbooks/v2/oauth2/tokens/revoke", post(revoke))
        .route("/quickbooks/v1/openid_connect/userinfo", get(userinfo))
        .route("/quickbooks/v3/company/{realm}/{*rest}", any(company))
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

/// The accounting API's error document, `{"Fault": {"Error": [{…}], "type"}, "time"}`.
struct Fault {
    status: StatusCode,
    kind: &'static str,
    code: String,
    message: String,
    detail: String,
}

impl Fault {
    /// Faults raised before the request reaches the company (authentication, authorization,
    /// throttling) pack their name, code and status into `Message`.
    fn gateway(status: StatusCode, kind: &'static str, code: &str, name: &str, detail: &str) -> Self {
        let digits = code.trim_start_matches('0');
        let message = format!("message={name}; errorCode={digits:0>6}; statusCode={}", status.as_u16());
        Self { status, kind, code: code.to_owned(), message, detail: detail.to_owned() }
    }

    fn validation(code: &str, message: &str, detail: &str) -> Self {
        Self::with_kind(StatusCode::BAD_REQUEST, "ValidationFault", code, message, detail)
    }

    fn with_kind(status: StatusCode, kind: &'static str, code: &str, message: &str, detail: &str) -> Self {
        Self { status, kind, code: code.to_owned(), message: message.to_owned(), detail: detail.to_owned() }
    }

    fn render(self, sim: &Simulator) -> Response {
        let status = self.status;
        self.render_with_status(sim, status)
    }

    /// QuickBooks can send a Fault with HTTP 200; clients must look inside successful bodies.
    fn render_with_status(self, sim: &Simulator, status: StatusCode) -> Response {
        let body = json!({
            "Fault": {
                "Error": [{"Message": self.message, "Detail": self.detail, "code": self.code}],
                "type": self.kind,
            },
            "time": sim.now().to_rfc3339(),
        });
        let mut response = (status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert("WWW-Authenticate", HeaderValue::from_static("Bearer realm=\"Intuit\""));
        }
        response
    }
}

fn authentication_failed(detail: &str) -> Fault {
    Fault::gateway(StatusCode::UNAUTHORIZED, "AUTHENTICATION", "3200", "AuthenticationFailed", detail)
}

fn authorization_failed() -> Fault {
    Fault::gateway(StatusCode::FORBIDDEN, "AUTHORIZATION", "3100", "ApplicationAuthorizationFailed", "")
}

/// 10 concurrent calls or 500 a minute per realm; Intuit sends no `Retry-After` with it.
fn throttled() -> Fault {
    Fault::gateway(
        StatusCode::TOO_MANY_REQUESTS,
        "SERVICE",
        "003001",
        "ThrottleExceeded",
        "The request limit was reached.",
    )
}

fn object_not_found(what: &str) -> Fault {
    Fault::validation(
        "610",
        "Object Not Found",
        &format!(
            "Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, vendors or employees.{what}"
        ),
    )
}

fn system_fault(status: StatusCode, code: &str) -> Fault {
    Fault::with_kind(
        status,
        "SystemFault",
        code,
        "An application error has occurred while processing your request",
        "System Failure Error: An unexpected error occurred while accessing or saving your data. Please wait a few minutes and try again. If the problem persists, contact customer support.",
    )
}

/// The fault a documented error code answers with; `None` for codes not simulated.
fn documented_fault(code: &str) -> Option<Fault> {
    let fault = match code.trim_start_matches('0') {
        "3200" => authentication_failed("Token revoked"),
        "3100" => authorization_failed(),
        "3001" => throttled(),
        "610" => object_not_found(""),
        "5010" => Fault::validation(
            "5010",
            "Stale Object Error",
            "Stale Object Error : You and Demo User were working on this at the same time. Demo User finished before you did, so your work was not saved.",
        ),
        "6000" => Fault::validation(
            "6000",
            "A business validation error has occurred while processing your request",
            "Business Validation Error: Transaction date is prior to start date for inventory item",
        ),
        "6240" => duplicate_name(),
        _ => return None,
    };
    Some(fault)
}

fn duplicate_name() -> Fault {
    Fault::validation(
        "6240",
        "Duplicate Name Exists Error",
        "The name supplied already exists. : Another customer, vendor or employee is already using this name. Please use a different name.",
    )
}

/// The `api_error` fault. Without a code a status gets its usual fault (400 → 6000); a code
/// with another status than its own, or an unknown one, gets the generic fault for the status.
fn api_error(sim: &Simulator, error: &ApiErrorFault) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = error.code.clone().or_else(|| {
        let usual = match error.status {
            400 => "6000",
            401 => "3200",
            403 => "3100",
            429 => "003001",
            _ => return None,
        };
        Some(usual.to_owned())
    });
    let documented = code.as_deref().and_then(documented_fault);
    match documented {
        Some(fault) if status == StatusCode::OK => fault.render_with_status(sim, status),
        Some(fault) if fault.status == status => fault.render(sim),
        _ => match (status.is_server_error(), code.as_deref()) {
            (true, code) => system_fault(status, code.unwrap_or("10000")).render(sim),
            (false, code) => Fault::with_kind(
                status,
                "ValidationFault",
                code.unwrap_or("2010"),
                "Request has invalid or unsupported property",
                "",
            )
            .render(sim),
        },
    }
}

fn api_fault(f: EndpointFault, sim: &Simulator) -> Response {
    match f {
        EndpointFault::Outage(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            system_fault(status, "10000").render(sim)
        }
        EndpointFault::RateLimited { retry_after_secs } => {
            let mut response = throttled().render(sim);
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
    authentication_failed(&detail).render(sim)
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

/// The accounting API for one realm: `companyinfo/{id}`, `query` (GET `?query=` or POST
/// text), `customer` (POST) and `customer/{id}`. Always answers JSON.
async fn company(
    State(sim): State<Simulator>,
    method: Method,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path((realm, rest)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let request =
        Request { method, path: rest.trim_matches('/').to_owned(), params, body, uri: uri.to_string() };
    let handlers = api::Handlers {
        authenticate: |st: &mut ProviderState, now: Timestamp| {
            authenticate_realm(&sim, st, now, &headers, &realm)
        },
        refused: |_: Refused| throttled().render(&sim),
        failed: |error: &ApiErrorFault| api_error(&sim, error),
        serve: |st: &mut ProviderState, now: Timestamp, caller: &Caller, _: Remaining| {
            resource(st, now, &caller.account, &request).unwrap_or_else(|fault| fault.render(&sim))
        },
    };
    with_tid(api::call(&sim, QBO, handlers).await)
}

struct Request {
    method: Method,
    /// After `/v3/company/{realm}/`.
    path: String,
    params: HashMap<String, String>,
    body: Bytes,
    uri: String,
}

/// Endpoint faults, the bearer token and the realm it must grant.
fn authenticate_realm(
    sim: &Simulator,
    st: &mut ProviderState,
    now: Timestamp,
    headers: &HeaderMap,
    realm: &str,
) -> Result<Caller, Rejection> {
    if let Some(f) = st.take_endpoint_fault() {
        return Err(api_fault(f, sim).into());
    }
    let grant = st.authenticate(now, bearer(headers)).map_err(|error| unauthorized(sim, error))?;
    if grant.account_id != realm || st.account(realm).is_none() {
        return Err(authorization_failed().render(sim).into());
    }
    Ok(Caller { account: realm.to_owned(), client: grant.client_id.clone() })
}

fn resource(
    st: &mut ProviderState,
    now: Timestamp,
    realm: &str,
    request: &Request,
) -> Result<Response, Fault> {
    let segments: Vec<String> = request.path.split('/').map(str::to_ascii_lowercase).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let original_id = request.path.split('/').nth(1).unwrap_or_default();
    let method = &request.method;
    match segments.as_slice() {
        ["companyinfo", id] if method == Method::GET => company_info(st, now, realm, id),
        ["query"] if method == Method::GET => {
            query(st, now, realm, request.params.get("query").map_or("", String::as_str))
        }
        ["query"] if method == Method::POST => query(st, now, realm, &String::from_utf8_lossy(&request.body)),
        ["customer"] if method == Method::POST => create_customer(st, now, realm, &request.body),
        ["customer", _] if method == Method::GET => {
            let customer = st.account(realm).and_then(|a| a.records.iter().find(|r| r.id == original_id));
            let customer = customer.ok_or_else(|| object_not_found(&format!(" (Customer {original_id})")))?;
            Ok(axum::Json(json!({"Customer": customer_json(customer), "time": now.to_rfc3339()}))
                .into_response())
        }
        _ => Err(Fault::validation(
            "500",
            "Unsupported Operation",
            &format!(
                "Operation Could not find resource for relative : /v3/company/{realm}/{} of full path: {} is not supported.",
                request.path, request.uri
            ),
        )),
    }
}

fn company_info(st: &ProviderState, now: Timestamp, realm: &str, id: &str) -> Result<Response, Fault> {
    let account = st
        .account(realm)
        .filter(|_| id == realm)
        .ok_or_else(|| object_not_found(&format!(" (CompanyInfo {id})")))?;
    let created = account.created_at.to_rfc3339();
    Ok(axum::Json(json!({
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
    .into_response())
}

fn customer_json(record: &Record) -> Value {
    let mut customer = record.fields.clone();
    let generated = [
        ("Id", json!(record.id)),
        ("SyncToken", json!(record.version.to_string())),
        ("DisplayName", json!(record.name)),
        ("FullyQualifiedName", json!(record.name)),
        ("Active", json!(true)),
        ("Balance", json!(0)),
        ("BalanceWithJobs", json!(0)),
        ("Job", json!(false)),
        ("domain", json!("QBO")),
        ("sparse", json!(false)),
        (
            "MetaData",
            json!({"CreateTime": record.created_at.to_rfc3339(), "LastUpdatedTime": record.updated_at.to_rfc3339()}),
        ),
    ];
    for (key, value) in generated {
        customer.insert(key.to_owned(), value);
    }
    let defaults = [
        ("PrintOnCheckName", json!(record.name)),
        ("Taxable", json!(false)),
        ("BillWithParent", json!(false)),
        ("PreferredDeliveryMethod", json!("Print")),
        ("IsProject", json!(false)),
        ("CurrencyRef", json!({"value": "USD", "name": "United States Dollar"})),
    ];
    for (key, value) in defaults {
        customer.entry(key).or_insert(value);
    }
    Value::Object(customer)
}

/// `POST customer`: the display name is `DisplayName`, else built from the name fields;
/// display names are unique per company, as QuickBooks requires.
fn create_customer(
    st: &mut ProviderState,
    now: Timestamp,
    realm: &str,
    body: &[u8],
) -> Result<Response, Fault> {
    let mut fields = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => fields,
        Ok(_) | Err(_) => {
            return Err(Fault::validation(
                "2010",
                "Request has invalid or unsupported property",
                "Property Name:Unexpected character (the body is not a JSON object) specified is unsupported or invalid",
            ));
        }
    };
    for generated in ["Id", "SyncToken", "MetaData", "domain", "sparse"] {
        fields.remove(generated);
    }
    let text = |key: &str| fields.get(key).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty());
    let person =
        [text("GivenName"), text("MiddleName"), text("FamilyName")].into_iter().flatten().collect::<Vec<_>>();
    let name = text("DisplayName")
        .map(str::to_owned)
        .or_else(|| (!person.is_empty()).then(|| person.join(" ")))
        .or_else(|| text("CompanyName").map(str::to_owned))
        .ok_or_else(|| {
            Fault::validation(
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter DisplayName is missing in the request",
            )
        })?;
    let taken =
        st.account(realm).is_some_and(|a| a.records.iter().any(|r| r.name.eq_ignore_ascii_case(&name)));
    if taken {
        return Err(duplicate_name());
    }
    let customer = st.add_record(realm, now, name, fields).map(customer_json);
    Ok(axum::Json(json!({"Customer": customer, "time": now.to_rfc3339()})).into_response())
}

/// Entities a query may name; only customers are kept, the others are always empty.
const ENTITIES: [&str; 14] = [
    "Customer",
    "Account",
    "Bill",
    "Class",
    "CompanyInfo",
    "Department",
    "Employee",
    "Estimate",
    "Invoice",
    "Item",
    "Payment",
    "SalesReceipt",
    "TaxCode",
    "Vendor",
];

/// `SELECT * | COUNT(*) FROM Entity [WHERE Field = 'value'] [ORDERBY …] [STARTPOSITION n]
/// [MAXRESULTS n]`, the subset of QuickBooks' query language the simulator understands.
fn query(st: &ProviderState, now: Timestamp, realm: &str, text: &str) -> Result<Response, Fault> {
    let parsed = parse_query(text).map_err(|detail| {
        Fault::validation("4000", "Error parsing query", &format!("QueryParserError: {detail}"))
    })?;
    let Some(entity) = ENTITIES.iter().find(|e| e.eq_ignore_ascii_case(&parsed.entity)) else {
        return Err(Fault::validation(
            "4001",
            "Invalid query",
            &format!("QueryValidationError: Unsupported entity: {}", parsed.entity),
        ));
    };
    let customers: Vec<Value> = match *entity {
        "Customer" => {
            st.account(realm).map(|a| a.records.iter().map(customer_json).collect()).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let matching: Vec<Value> = customers
        .into_iter()
        .filter(|c| {
            parsed.filter.as_ref().is_none_or(|(field, value)| {
                let found = c.get(field.as_str()).or_else(|| {
                    c.as_object()
                        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(field)))
                        .map(|(_, v)| v)
                });
                match found {
                    Some(Value::String(s)) => s.eq_ignore_ascii_case(value),
                    Some(other) => other.to_string().eq_ignore_ascii_case(value),
                    None => false,
                }
            })
        })
        .collect();
    let response = if parsed.count {
        json!({"QueryResponse": {"totalCount": matching.len()}, "time": now.to_rfc3339()})
    } else {
        let page: Vec<Value> = matching.into_iter().skip(parsed.start - 1).take(parsed.max).collect();
        if page.is_empty() {
            json!({"QueryResponse": {}, "time": now.to_rfc3339()})
        } else {
            let mut response = json!({"startPosition": parsed.start, "maxResults": page.len()});
            response[*entity] = Value::Array(page);
            json!({"QueryResponse": response, "time": now.to_rfc3339()})
        }
    };
    Ok(axum::Json(response).into_response())
}

#[derive(Debug, PartialEq, Eq)]
struct ParsedQuery {
    entity: String,
    count: bool,
    filter: Option<(String, String)>,
    start: usize,
    max: usize,
}

/// Words, `=`, and `'quoted values'` (with `\'` for a quote inside).
fn query_tokens(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '=' => tokens.push("=".to_owned()),
            '\'' => {
                let mut value = String::from("'");
                loop {
                    match chars.next() {
                        Some('\\') => value.extend(chars.next()),
                        Some('\'') => break,
                        Some(c) => value.push(c),
                        None => return Err("unterminated quoted value".into()),
                    }
                }
                tokens.push(value);
            }
            c => {
                let mut word = String::from(c);
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || next == '=' || next == '\'' {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                tokens.push(word);
            }
        }
    }
    Ok(tokens)
}

fn parse_query(text: &str) -> Result<ParsedQuery, String> {
    let tokens = query_tokens(text)?;
    let mut tokens = tokens.iter().map(String::as_str).peekable();
    let keyword = |token: Option<&str>, expected: &str| match token {
        Some(t) if t.eq_ignore_ascii_case(expected) => Ok(()),
        _ => Err(format!("expected {expected}")),
    };
    keyword(tokens.next(), "select")?;
    let mut projection = Vec::new();
    while let Some(token) = tokens.next_if(|t| !t.eq_ignore_ascii_case("from")) {
        projection.push(token);
    }
    keyword(tokens.next(), "from")?;
    let entity = tokens.next().ok_or("the entity is missing")?.to_owned();
    let count = projection.first().is_some_and(|p| p.eq_ignore_ascii_case("count(*)"));
    if projection.is_empty() {
        return Err("nothing to select".into());
    }
    let mut parsed = ParsedQuery { entity, count, filter: None, start: 1, max: 100 };
    while let Some(token) = tokens.next() {
        let number = |token: Option<&str>| {
            token
                .and_then(|t| t.parse::<usize>().ok())
                .filter(|n| *n > 0)
                .ok_or(format!("{token:?} after a paging keyword is not a positive number"))
        };
        match token.to_ascii_lowercase().as_str() {
            "where" => {
                let field = tokens.next().ok_or("the WHERE field is missing")?;
                keyword(tokens.next(), "=").map_err(|_| "only = conditions are supported".to_owned())?;
                let value = tokens.next().ok_or("the WHERE value is missing")?;
                let value = value.strip_prefix('\'').unwrap_or(value);
                parsed.filter = Some((field.to_owned(), value.to_owned()));
            }
            "orderby" => {
                tokens.next().ok_or("the ORDERBY field is missing")?;
                tokens.next_if(|t| t.eq_ignore_ascii_case("asc") || t.eq_ignore_ascii_case("desc"));
            }
            "startposition" => parsed.start = number(tokens.next())?,
            "maxresults" => parsed.max = number(tokens.next())?.min(1000),
            other => return Err(format!("Encountered \" \"{other}\"\" was not expected")),
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_with_filters_paging_and_quotes() {
        let parsed = parse_query(
            "select * from Customer where DisplayName = 'O\\'Brien Ltd' orderby Id desc STARTPOSITION 2 maxResults 5",
        )
        .unwrap();
        assert_eq!(
            parsed,
            ParsedQuery {
                entity: "Customer".into(),
                count: false,
                filter: Some(("DisplayName".into(), "O'Brien Ltd".into())),
                start: 2,
                max: 5,
            }
        );
        assert!(parse_query("SELECT COUNT(*) FROM customer").unwrap().count);
        assert!(parse_query("select from Customer").is_err());
        assert!(parse_query("select * Customer").is_err());
        assert!(parse_query("select * from Customer where Id > '3'").is_err());
        assert!(parse_query("select * from Customer maxresults 0").is_err());
    }
}
