//! Extractors that turn bad requests into the API's error shape: the tenant behind the bearer
//! key, JSON bodies, query strings and pagination.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use ledgerlink_core::secret::ApiKey;
use ledgerlink_store::Tenant;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use crate::AppState;

/// The tenant whose API key authorised this request.
pub struct AuthTenant(pub Tenant);

impl FromRequestParts<AppState> for AuthTenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("missing API key: send `Authorization: Bearer <api key>`")
        })?;
        let presented = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <api key>`"))?;
        let tenant = state
            .store
            .tenant_by_api_key_hash(&ApiKey::from_presented(presented).hash())
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
        tracing::Span::current().record("tenant_id", tenant.id.as_str());
        Ok(Self(tenant))
    }
}

/// A JSON body: malformed JSON is 400, well-formed JSON of the wrong shape is 422 naming the
/// field, too large is 413.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let detail = rejection.body_text();
    match rejection {
        JsonRejection::JsonSyntaxError(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {}", strip(&detail)),
        ),
        JsonRejection::JsonDataError(_) => {
            ApiError::invalid(format!("the body does not fit this endpoint: {}", strip(&detail)))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => payload_too_large(),
        other => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", other.body_text()),
    }
}

pub fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the body is larger than the hub accepts (max_body_size)",
    )
}

/// axum prefixes its messages with generic text; keep the part that names the problem.
fn strip(detail: &str) -> &str {
    detail
        .trim_start_matches("Failed to parse the request body as JSON: ")
        .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
}

/// A query string; a bad parameter is 422 naming it.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::invalid(format!(
                "invalid query parameter: {}",
                e.body_text().trim_start_matches("Failed to deserialize query string: ")
            ))),
            Err(other) => Err(ApiError::invalid(other.body_text())),
        }
    }
}

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 200;

/// `?limit=&cursor=` on every list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// How many items to return, 1–200 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    /// Validated `(after, limit)`; `prefix` is the id prefix the cursor must carry.
    pub fn validate(&self, prefix: &str) -> Result<(Option<&str>, u32), ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ApiError::invalid(format!(
                "`limit` must be between 1 and {MAX_PAGE_SIZE} (got {limit})"
            )));
        }
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(c) if ledgerlink_core::id::is_well_formed(prefix, c) => Some(c),
            Some(_) => {
                return Err(ApiError::invalid(
                    "`cursor` must be a `next_cursor` value returned by this list",
                ));
            }
        };
        Ok((after, limit))
    }
}

/// Every list answers `{"data": [...], "next_cursor": "…" | null}`.
#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// `rows` was fetched with `limit + 1` to learn whether another page exists; each kept row
    /// becomes a view with `view`, and the last one's `id` is the cursor.
    pub fn from_rows<R>(
        mut rows: Vec<R>,
        limit: u32,
        id: impl Fn(&R) -> String,
        view: impl FnMut(R) -> T,
    ) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(id) } else { None };
        Self { data: rows.into_iter().map(view).collect(), next_cursor }
    }
}

/// For PATCH bodies: tells "absent" (`None`) from "null" (`Some(None)`).
pub fn double_option<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}
