//! The instance's own paths: `/entity/auth/login`, `/entity/auth/logout`, `/entity` and the
//! contract-based entity API, relative to the instance's base path.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ledgerlink_core::Timestamp;
use serde_json::{Value, json};

use super::Instance;
use super::entities::EntityError;
use super::messages;
use super::state::{Credentials, LoginFailure, Opened, Refusal, SessionCookies, State as InstanceState};

/// The endpoint versions `GET /entity` lists (any `n.n.n` version of `Default` is served).
const ENDPOINT_VERSIONS: [&str; 3] = ["22.200.001", "20.200.001", "18.200.001"];

pub(super) fn routes() -> Router<Instance> {
    Router::new()
        .route("/entity/auth/login", post(login))
        .route("/entity/auth/logout", post(logout))
        .route("/entity", get(endpoints))
        .route("/entity/", get(endpoints))
        .route("/entity/{endpoint}/{version}/{entity}", get(list).put(put))
        .route("/entity/{endpoint}/{version}/{entity}/{*key}", get(get_one))
}

// Responses -------------------------------------------------------------------------------

/// Acumatica's error body: what a failed login (HTTP 500) and a refused record carry.
fn exception(status: StatusCode, message: &str, exception_type: &str) -> Response {
    let body = json!({
        "message": "An error has occurred.",
        "exceptionMessage": message,
        "exceptionType": exception_type,
        "stackTrace": null,
    });
    (status, Json(body)).into_response()
}

/// ASP.NET Web API's short error body.
fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({"message": text}))).into_response()
}

/// What a client sees while the site is down: a gateway's HTML page, not Acumatica's JSON.
fn gateway_error_page(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
    let page = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
    );
    (status, [(header::CONTENT_TYPE, "text/html")], page).into_response()
}

fn refused(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Outage(status) => gateway_error_page(status),
        Refusal::Unauthorized => message(StatusCode::UNAUTHORIZED, messages::NOT_AUTHORIZED),
        Refusal::RateLimited(retry_after) => {
            let mut response = message(StatusCode::TOO_MANY_REQUESTS, messages::REQUEST_LIMIT);
            if let Some(secs) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
    }
}

impl IntoResponse for EntityError {
    fn into_response(self) -> Response {
        match self {
            Self::BadRequest(text) => message(StatusCode::BAD_REQUEST, &text),
            Self::Invalid(text) => exception(StatusCode::UNPROCESSABLE_ENTITY, &text, messages::PX_EXCEPTION),
            Self::NotFound => message(StatusCode::NOT_FOUND, "No entity satisfies the condition."),
            Self::UnknownResource => {
                message(StatusCode::NOT_FOUND, "No HTTP resource was found that matches the request URI.")
            }
            Self::MethodNotAllowed(method) => message(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("The requested resource does not support http method '{method}'."),
            ),
        }
    }
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// 204 with the cookies Acumatica sets on a login; `ASP.NET_SessionId` and `.ASPXAUTH` are the
/// session, and every later request must carry both.
fn signed_in(opened: &Opened) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookie(
        &mut response,
        &format!("ASP.NET_SessionId={}; path=/; HttpOnly; SameSite=Lax", opened.session_id),
    );
    set_cookie(&mut response, &format!("UserBranch={}; path=/", opened.branch_number));
    set_cookie(&mut response, "Locale=Culture=en-US; path=/");
    set_cookie(&mut response, &format!(".ASPXAUTH={}; path=/; HttpOnly", opened.ticket));
    response
}

// Requests --------------------------------------------------------------------------------

fn session_cookies(headers: &HeaderMap) -> SessionCookies {
    let mut cookies = SessionCookies::default();
    let values = headers.get_all(header::COOKIE).into_iter().filter_map(|v| v.to_str().ok());
    for pair in values.flat_map(|v| v.split(';')) {
        let Some((name, value)) = pair.trim().split_once('=') else { continue };
        let value = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
        match name.trim() {
            "ASP.NET_SessionId" => cookies.session_id = value,
            ".ASPXAUTH" => cookies.ticket = value,
            _ => {}
        }
    }
    cookies
}

/// The login body, as JSON or a form (both documented); the error is the 400's message.
fn parse_credentials(headers: &HeaderMap, body: &[u8]) -> Result<Credentials, String> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    let fields: HashMap<String, String> = if form {
        url::form_urlencoded::parse(body).into_owned().collect()
    } else {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("The request body is not valid JSON: {e}"))?;
        let Value::Object(object) = value else {
            return Err("The request body must be a JSON object.".into());
        };
        let mut fields = HashMap::new();
        for (name, value) in object {
            match value {
                Value::Null => {}
                Value::String(text) => {
                    fields.insert(name, text);
                }
                _ => return Err(format!("The field '{name}' must be a string.")),
            }
        }
        fields
    };
    let (Some(name), Some(password)) = (fields.get("name"), fields.get("password")) else {
        return Err("The name and password of the user are required.".into());
    };
    let tenant = fields.get("tenant").filter(|t| !t.trim().is_empty());
    let company = fields.get("company").filter(|c| !c.trim().is_empty());
    if tenant.is_some() && company.is_some() {
        return Err("The company and tenant parameters cannot be specified at the same time.".into());
    }
    Ok(Credentials {
        name: name.clone(),
        password: password.clone(),
        tenant: tenant.or(company).cloned(),
        branch: fields.get("branch").cloned(),
    })
}

/// Counts an admitted request as in flight until dropped, however the request ends (a client
/// hanging up mid-delay included).
struct InFlight {
    instance: Instance,
    user: Option<String>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.instance.with_state(|st, _, _| st.end_request(self.user.as_deref()));
    }
}

async fn hold(delay_ms: u64) {
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
}

// Sign in and out -------------------------------------------------------------------------

async fn login(State(instance): State<Instance>, headers: HeaderMap, body: Bytes) -> Response {
    let cookies = session_cookies(&headers);
    let credentials = parse_credentials(&headers, &body);
    let name = credentials.as_ref().ok().map(|c| c.name.clone());
    let admission = instance.with_state(|st, rules, now| st.admit_login(rules, now, name.as_deref()));
    let admitted = match admission {
        Ok(admitted) => admitted,
        Err(refusal) => return refused(refusal),
    };
    let _in_flight = InFlight { instance: instance.clone(), user: admitted.user };
    let credentials = match credentials {
        Ok(credentials) => credentials,
        Err(text) => return message(StatusCode::BAD_REQUEST, &text),
    };
    hold(admitted.delay_ms).await;
    let outcome = instance
        .with_state(|st, rules, now| st.login(rules, now, &credentials, cookies.session_id.as_deref()));
    match outcome {
        Ok(opened) => signed_in(&opened),
        Err(failure) => login_failed(&failure),
    }
}

fn login_failed(failure: &LoginFailure) -> Response {
    exception(StatusCode::INTERNAL_SERVER_ERROR, &failure.message(), failure.exception_type())
}

/// Always 204 (without a session too), unless the site is down.
async fn logout(State(instance): State<Instance>, headers: HeaderMap) -> Response {
    let cookies = session_cookies(&headers);
    let outcome = instance.with_state(|st, _, _| st.admit_logout().map(|()| st.logout(&cookies)));
    if let Err(refusal) = outcome {
        return refused(refusal);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookie(&mut response, ".ASPXAUTH=; expires=Mon, 11-Oct-1999 21:00:00 GMT; path=/; HttpOnly");
    response
}

// The entity API --------------------------------------------------------------------------

/// Who an admitted entity request is for.
struct Caller {
    /// The key of the signed-in user.
    user: String,
    /// The key of the user's tenant.
    tenant: String,
    cookies: SessionCookies,
}

/// Runs an entity request through the session, the limits and the delay, then `serve`.
async fn entity_call(
    instance: &Instance,
    headers: &HeaderMap,
    serve: impl FnOnce(&mut InstanceState, Timestamp, &Caller) -> Result<Value, EntityError>,
) -> Response {
    let cookies = session_cookies(headers);
    let admission = instance.with_state(|st, rules, now| st.admit_entity(rules, now, &cookies));
    let admitted = match admission {
        Ok(admitted) => admitted,
        Err(refusal) => return refused(refusal),
    };
    let user = admitted.user.clone().unwrap_or_default();
    let _in_flight = InFlight { instance: instance.clone(), user: admitted.user };
    hold(admitted.delay_ms).await;
    let caller = Caller { user, tenant: admitted.tenant.unwrap_or_default(), cookies };
    match instance.with_state(|st, _, now| serve(st, now, &caller)) {
        Ok(body) => Json(body).into_response(),
        Err(error) => error.into_response(),
    }
}

/// `Default` and a version such as `22.200.001`.
fn check_endpoint(endpoint: &str, version: &str) -> Result<(), EntityError> {
    let parts: Vec<&str> = version.split('.').collect();
    let version_ok =
        parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if endpoint.eq_ignore_ascii_case("Default") && version_ok {
        Ok(())
    } else {
        Err(EntityError::UnknownResource)
    }
}

fn read_entity(
    st: &mut InstanceState,
    caller: &Caller,
    entity: &str,
    query: &HashMap<String, String>,
) -> Result<Value, EntityError> {
    let branches = st.user_branches(&caller.user);
    let session_branch = st.session_branch(&caller.cookies);
    let tenant = st.tenant_mut(&caller.tenant).ok_or(EntityError::UnknownResource)?;
    match entity {
        "Customer" => tenant.customers.list(query),
        // Harmless reads for a connection test: where the session signed in.
        "Company" => Ok(json!([{
            "id": tenant.id,
            "rowNumber": 1,
            "CompanyID": {"value": tenant.name},
            "CompanyName": {"value": tenant.name},
            "Branch": {"value": session_branch},
            "custom": {},
        }])),
        "Branch" => Ok(Value::Array(
            branches
                .iter()
                .enumerate()
                .map(|(i, branch)| {
                    json!({
                        "rowNumber": i + 1,
                        "BranchID": {"value": branch},
                        "BranchName": {"value": branch},
                        "Active": {"value": true},
                        "custom": {},
                    })
                })
                .collect(),
        )),
        _ => Err(EntityError::UnknownResource),
    }
}

async fn list(
    State(instance): State<Instance>,
    Path((endpoint, version, entity)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    entity_call(&instance, &headers, move |st, _, caller| {
        check_endpoint(&endpoint, &version)?;
        read_entity(st, caller, &entity, &query)
    })
    .await
}

async fn get_one(
    State(instance): State<Instance>,
    Path((endpoint, version, entity, key)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    entity_call(&instance, &headers, move |st, _, caller| {
        check_endpoint(&endpoint, &version)?;
        let tenant = st.tenant_mut(&caller.tenant).ok_or(EntityError::UnknownResource)?;
        match entity.as_str() {
            "Customer" => tenant.customers.get(key.trim_end_matches('/')),
            _ => Err(EntityError::UnknownResource),
        }
    })
    .await
}

async fn put(
    State(instance): State<Instance>,
    Path((endpoint, version, entity)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    entity_call(&instance, &headers, move |st, now, caller| {
        check_endpoint(&endpoint, &version)?;
        let tenant = st.tenant_mut(&caller.tenant).ok_or(EntityError::UnknownResource)?;
        match entity.as_str() {
            "Customer" => {
                let body: Value = serde_json::from_slice(&body).map_err(|e| {
                    EntityError::BadRequest(format!("The request body is not valid JSON: {e}"))
                })?;
                tenant.customers.put(&body, now)
            }
            "Company" | "Branch" => Err(EntityError::MethodNotAllowed("PUT")),
            _ => Err(EntityError::UnknownResource),
        }
    })
    .await
}

/// `GET /entity`: the instance's version and endpoints, with links under its base path.
async fn endpoints(State(instance): State<Instance>, OriginalUri(uri): OriginalUri) -> Response {
    let outcome = instance.with_state(|st, _, _| st.admit_discovery().map(|()| st.version().to_owned()));
    let version = match outcome {
        Ok(version) => version,
        Err(refusal) => return refused(refusal),
    };
    let prefix = uri.path().trim_end_matches('/').trim_end_matches("/entity");
    let endpoints: Vec<Value> = ENDPOINT_VERSIONS
        .iter()
        .map(|v| json!({"name": "Default", "version": v, "href": format!("{prefix}/entity/Default/{v}/")}))
        .collect();
    Json(json!({
        "version": {"acumaticaBuildVersion": version, "databaseVersion": version},
        "endpoints": endpoints,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_session_cookies_are_read_from_one_or_several_headers() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("ASP.NET_SessionId=abc; UserBranch=1"));
        headers.append(header::COOKIE, HeaderValue::from_static(".ASPXAUTH=DEF; Locale=Culture=en-US"));
        let cookies = session_cookies(&headers);
        assert_eq!((cookies.session_id.as_deref(), cookies.ticket.as_deref()), (Some("abc"), Some("DEF")));
    }

    #[test]
    fn a_login_body_may_name_the_tenant_as_company_but_not_both() {
        let json = |body: &str| parse_credentials(&HeaderMap::new(), body.as_bytes());
        let c =
            json(r#"{"name":"api","password":"p","company":"Co","branch":"MAIN","locale":"EN-US"}"#).unwrap();
        assert_eq!((c.tenant.as_deref(), c.branch.as_deref()), (Some("Co"), Some("MAIN")));
        assert!(
            json(r#"{"name":"api","password":"p","company":"Co","tenant":"Co"}"#)
                .unwrap_err()
                .contains("same time")
        );
        assert!(json(r#"{"name":"api"}"#).is_err());
        assert!(json("not json").is_err());
        let mut form = HeaderMap::new();
        form.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        let c = parse_credentials(&form, b"name=api&password=p%26q&tenant=Co").unwrap();
        assert_eq!((c.password.as_str(), c.tenant.as_deref()), ("p&q", Some("Co")));
    }

    #[test]
    fn endpoint_versions_are_dotted_numbers_of_the_default_endpoint() {
        assert!(check_endpoint("Default", "22.200.001").is_ok());
        assert!(check_endpoint("default", "20.200.001").is_ok());
        assert!(check_endpoint("Custom", "22.200.001").is_err());
        assert!(check_endpoint("Default", "latest").is_err());
    }
}
