//! The one error shape of the API: `{"error": {"code": "...", "message": "..."}}`.
//!
//! Internal failures are logged in full and answered with an opaque message that carries only
//! the request id, so nothing about the database or a secret leaks to callers.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ledgerlink_core::Diagnosis;
use ledgerlink_core::domain::ValidationError;
use ledgerlink_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// What went wrong at the provider, when the error is about a connection.
    pub diagnosis: Option<Box<Diagnosis>>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// Present when the error concerns a connection's health (e.g. 409 on a disconnected
    /// connection).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub diagnosis: Option<Diagnosis>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `malformed_json`, `validation_failed`, `unauthorized`,
    /// `not_found`, `conflict`, `payload_too_large`, `unsupported_media_type`,
    /// `method_not_allowed`, `internal`, `unavailable`.
    pub code: String,
    /// For people: says what was wrong and, for invalid input, which field and rule.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), diagnosis: None }
    }

    pub fn with_diagnosis(mut self, diagnosis: Diagnosis) -> Self {
        self.diagnosis = Some(Box::new(diagnosis));
        self
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", message)
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the hub's log has the details under this request's x-request-id",
        )
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        Self::invalid(error.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(message) => Self::new(StatusCode::CONFLICT, "conflict", message),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail { code: self.code.to_owned(), message: self.message },
            diagnosis: self.diagnosis.map(|d| *d),
        };
        (self.status, Json(body)).into_response()
    }
}
