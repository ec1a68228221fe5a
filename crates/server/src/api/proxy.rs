//! `POST /v1/connections/{id}/test` (the seed's "Connect" button) and the API proxy
//! `/v1/connections/{id}/proxy/{path}`.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ledgerlink_core::{Diagnosis, ExternalAccount, Provider};
use ledgerlink_providers::ProviderError;
use ledgerlink_store::Connection;
use serde::Serialize;
use tokio::time::Instant;
use utoipa::ToSchema;

use super::connections::load;
use super::error::{ApiError, ErrorBody};
use super::extract::AuthTenant;
use crate::AppState;
use crate::proxy::{Limits, safe_path};

/// The header carrying the diagnosis of a failed proxied call (JSON, ASCII-only).
pub const DIAGNOSIS_HEADER: &str = "ledgerlink-diagnosis";

/// How often one proxied request is sent again after the provider said "too many requests".
const RATE_LIMIT_RETRIES: u32 = 3;

/// Request headers never forwarded: hop-by-hop ones, and the app's credentials for the hub.
const DROPPED_REQUEST_HEADERS: &[&str] = &[
    "host",
    "authorization",
    "cookie",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "x-request-id",
    "xero-tenant-id",
    "x-myobapi-key",
    "x-myobapi-version",
];
const DROPPED_RESPONSE_HEADERS: &[&str] =
    &["connection", "keep-alive", "transfer-encoding", "content-length", "set-cookie", "trailer", "upgrade"];

#[derive(Serialize, ToSchema)]
pub struct TestResult {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub diagnosis: Option<Diagnosis>,
}

/// A provider's answer, passed on as it came, with its diagnosis when it is a failure.
struct Forwarded {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    diagnosis: Option<Diagnosis>,
}

/// Test the connection with one live, harmless call (Xero `Organisation`, QuickBooks
/// `CompanyInfo`, MYOB company file `Company`): `{"ok": true}` or the diagnosis.
#[utoipa::path(post, path = "/v1/connections/{id}/test", tag = "connections",
    responses((status = 200, body = TestResult), (status = 404, body = ErrorBody),
        (status = 409, description = "not authorised yet", body = ErrorBody)))]
pub async fn test(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
) -> Result<Json<TestResult>, ApiError> {
    let conn = load(&state, &tenant.id, &id).await?;
    let provider: Provider = conn.provider.parse().map_err(ApiError::internal)?;
    let diagnosis = if provider == Provider::Acumatica {
        crate::acumatica::test(&state, &conn).await.map_err(|e| ApiError::internal(format!("{e:#}")))?
    } else {
        oauth_test(&state, &conn, provider).await?
    };
    let result = TestResult { ok: diagnosis.is_none(), diagnosis };
    let outcome = if result.ok { "ok" } else { "failed" };
    state
        .metrics
        .inc("ledgerlink_connection_tests_total", &[("provider", provider.as_str()), ("result", outcome)]);
    tracing::info!(
        connection_id = %conn.id, provider = %provider, ok = result.ok,
        category = result.diagnosis.as_ref().map(|d| d.category.as_str()).unwrap_or(""), "connection tested"
    );
    Ok(Json(result))
}

/// One harmless call through the proxy's machinery, without its retries: the diagnosis of a
/// failure (also when the connection is disconnected), `None` when it answered.
async fn oauth_test(
    state: &AppState,
    conn: &Connection,
    provider: Provider,
) -> Result<Option<Diagnosis>, ApiError> {
    if !provider.is_oauth() {
        return Err(ApiError::invalid(format!(
            "testing {} connections is not available in this version of the hub yet",
            provider.display_name()
        )));
    }
    let path = match provider {
        Provider::Xero => "Organisation".to_owned(),
        Provider::QuickBooks => {
            format!("companyinfo/{}", conn.external_account_id.as_deref().unwrap_or_default())
        }
        _ => "Company".to_owned(),
    };
    let request = Request {
        method: Method::GET,
        path: &path,
        query: None,
        headers: &HeaderMap::new(),
        body: Bytes::new(),
    };
    match forward(state, conn, provider, request, Retries::None).await {
        Ok(forwarded) => Ok(forwarded.diagnosis),
        // The test ran, or found the connection broken: the answer is the diagnosis.
        Err(error) => match error.diagnosis.clone() {
            Some(diagnosis) if error.status != StatusCode::CONFLICT || conn.status == "disconnected" => {
                Ok(Some(*diagnosis))
            }
            _ => Err(error),
        },
    }
}

/// Forward a request to the provider's API for this connection's account. The answer is the
/// provider's, unchanged; failures carry the diagnosis in the `ledgerlink-diagnosis` header.
/// Requests wait their turn under the provider's limits instead of failing.
#[utoipa::path(method(get, post, put, patch, delete), path = "/v1/connections/{id}/proxy/{path}", tag = "connections",
    params(("id" = String, Path, description = "the connection"),
        ("path" = String, Path, description = "the API path below the account's API base, e.g. `Contacts` (Xero), `query` (QuickBooks), `Contact/Customer` (MYOB)")),
    responses((status = 200, description = "the provider's answer, passed through"),
        (status = 409, description = "disconnected or not yet authorised", body = ErrorBody),
        (status = 429, description = "waited longer than provider_timeout for a turn", body = ErrorBody),
        (status = 502, description = "the provider could not be reached", body = ErrorBody)))]
pub async fn proxy(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path((id, path)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let conn = load(&state, &tenant.id, &id).await?;
    let provider: Provider = conn.provider.parse().map_err(ApiError::internal)?;
    if !provider.is_oauth() && provider != Provider::Acumatica {
        return Err(ApiError::invalid(format!(
            "{} connections have no API to proxy",
            provider.display_name()
        )));
    }
    if !safe_path(&path) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            "the proxied path must stay below the account's API base (no `.` or `..` segments)",
        ));
    }
    let forwarded = if provider == Provider::Acumatica {
        forward_acumatica(&state, &conn, method, &path, uri.query(), &headers, body).await?
    } else {
        let request = Request { method, path: &path, query: uri.query(), headers: &headers, body };
        forward(&state, &conn, provider, request, Retries::RateLimitsAnd401).await?
    };
    let class = format!("{}xx", forwarded.status.as_u16() / 100);
    state
        .metrics
        .inc("ledgerlink_proxy_requests_total", &[("provider", provider.as_str()), ("status", &class)]);
    let mut response = (forwarded.status, forwarded.body).into_response();
    for (name, value) in &forwarded.headers {
        if !DROPPED_RESPONSE_HEADERS.contains(&name.as_str()) {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    if let Some(diagnosis) = &forwarded.diagnosis
        && let Ok(value) = HeaderValue::from_str(&ascii_json(diagnosis))
    {
        response.headers_mut().insert(HeaderName::from_static(DIAGNOSIS_HEADER), value);
    }
    Ok(response)
}

/// One MYOB Acumatica call: log in, forward below the instance URL, log out.
async fn forward_acumatica(
    state: &AppState,
    conn: &Connection,
    method: Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Forwarded, ApiError> {
    let mut target = path.to_owned();
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        target.push('?');
        target.push_str(query);
    }
    let mut forwarded_headers = HeaderMap::new();
    for (name, value) in headers {
        if !DROPPED_REQUEST_HEADERS.contains(&name.as_str()) {
            forwarded_headers.append(name.clone(), value.clone());
        }
    }
    let answer = crate::acumatica::call(state, conn, method, &target, &forwarded_headers, body.to_vec())
        .await
        .map_err(|e| ApiError::internal(format!("{e:#}")))?;
    match answer {
        Ok(answer) => {
            let diagnosis = answer.diagnosis();
            Ok(Forwarded {
                status: StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY),
                headers: answer.headers,
                body: Bytes::from(answer.body),
                diagnosis,
            })
        }
        Err(diagnosis) => {
            let status = match diagnosis.category.as_str() {
                "credentials_rejected" | "account_locked" | "configuration_error" => StatusCode::CONFLICT,
                "rate_limited" | "api_user_limit_reached" => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::BAD_GATEWAY,
            };
            Err(ApiError::new(status, "provider_login_failed", diagnosis.summary.clone())
                .with_diagnosis(diagnosis))
        }
    }
}

/// JSON with every non-ASCII character escaped, so it fits in a header.
fn ascii_json(diagnosis: &Diagnosis) -> String {
    let json = serde_json::to_string(diagnosis).unwrap_or_default();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// What the app asked the proxy to send.
struct Request<'a> {
    method: Method,
    path: &'a str,
    query: Option<&'a str>,
    headers: &'a HeaderMap,
    body: Bytes,
}

/// Whether a call may be sent again: the proxy waits out rate limits and refreshes once on a
/// 401; the test button makes exactly one call and reports what it got.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retries {
    None,
    RateLimitsAnd401,
}

async fn forward(
    state: &AppState,
    conn: &Connection,
    provider: Provider,
    request: Request<'_>,
    retries: Retries,
) -> Result<Forwarded, ApiError> {
    let Request { method, path, query, headers, body } = request;
    let client = state.providers.oauth(provider).map_err(ApiError::invalid)?;
    let deadline = Instant::now() + state.config.provider_timeout;
    let mut token = super::connections::token_or_error(state.engine.access_token(&conn.id).await, provider)?;
    let account = ExternalAccount {
        id: token.connection.external_account_id.clone().unwrap_or_default(),
        name: token.connection.external_account_name.clone(),
    };
    let mut url = format!("{}/{path}", client.account_api_base(&account));
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(query);
    }
    let limits = Limits::of(provider);
    let key = Limits::key(provider, &account.id);
    let mut refreshed = false;
    let mut rate_limited = 0;
    loop {
        let Some(slot) = state.proxy.limiter.acquire(&key, limits, deadline).await else {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "queued_too_long",
                format!(
                    "waited {:?} for a turn under {}'s rate limits for this account",
                    state.config.provider_timeout,
                    provider.display_name()
                ),
            )
            .with_diagnosis(Diagnosis::rate_limited(provider, 429, None)));
        };
        let mut request = state.proxy.client.request(method.clone(), &url);
        for (name, value) in headers {
            if !DROPPED_REQUEST_HEADERS.contains(&name.as_str()) {
                request = request.header(name, value);
            }
        }
        for (name, value) in client.api_headers(&account) {
            request = request.header(name, value);
        }
        let sent = request.bearer_auth(token.token.expose()).body(body.clone()).send().await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                let diagnosis = ProviderError::from_reqwest(&error, &url).diagnosis(provider);
                let status =
                    if error.is_timeout() { StatusCode::GATEWAY_TIMEOUT } else { StatusCode::BAD_GATEWAY };
                return Err(ApiError::new(status, "provider_unreachable", diagnosis.summary.clone())
                    .with_diagnosis(diagnosis));
            }
        };
        let status = response.status();
        let response_headers = response.headers().clone();
        let answer = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(error) => {
                let diagnosis = ProviderError::from_reqwest(&error, &url).diagnosis(provider);
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "provider_unreachable",
                    diagnosis.summary.clone(),
                )
                .with_diagnosis(diagnosis));
            }
        };
        drop(slot);
        if let Some(wait) = ledgerlink_providers::classify::is_rate_limited(
            provider,
            status.as_u16(),
            &response_headers,
            &answer,
        ) {
            let wait = wait.max(Duration::from_millis(200));
            state.proxy.limiter.pause(&key, limits, wait);
            if retries == Retries::RateLimitsAnd401
                && rate_limited < RATE_LIMIT_RETRIES
                && Instant::now() + wait < deadline
            {
                rate_limited += 1;
                tracing::debug!(connection_id = %conn.id, ?wait, "rate limited by the provider; waiting Retry-After");
                continue;
            }
        } else if status == StatusCode::UNAUTHORIZED && !refreshed && retries == Retries::RateLimitsAnd401 {
            refreshed = true;
            let rejected = token.connection.token_version;
            token = super::connections::token_or_error(
                state.engine.access_token_replacing(&conn.id, Some(rejected)).await,
                provider,
            )?;
            continue;
        }
        let diagnosis = ledgerlink_providers::classify::api_response(
            provider,
            status.as_u16(),
            &response_headers,
            &answer,
        );
        let mut headers = HeaderMap::new();
        for (name, value) in &response_headers {
            headers.append(name.clone(), value.clone());
        }
        return Ok(Forwarded { status, headers, body: answer, diagnosis });
    }
}
