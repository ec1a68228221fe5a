//! qbXML jobs for Reckon connections: `POST /v1/connections/{id}/qbxml`, `GET /v1/jobs/{id}`,
//! `GET /v1/connections/{id}/jobs`, `DELETE /v1/jobs/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ledgerlink_core::{Diagnosis, Provider};
use ledgerlink_store::Job;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::connections::load;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiQuery, AuthTenant, Page, PageParams};
use crate::AppState;

/// Priorities run from -100 (last) to 100 (first); jobs of one priority go first in, first out.
const PRIORITIES: std::ops::RangeInclusive<i64> = -100..=100;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJob {
    /// A qbXML request document (`<?xml …?><?qbxml version="…"?><QBXML><QBXMLMsgsRq …>`). The
    /// hub keeps it as it is, setting only `requestID`, iterator and message-set attributes.
    pub qbxml: String,
    /// -100 to 100, default 0: higher goes first.
    #[serde(default)]
    pub priority: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedJob {
    pub job_id: String,
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct JobView {
    pub id: String,
    pub connection_id: String,
    /// `queued`, `in_progress`, `done`, `failed` or `cancelled`.
    pub status: String,
    pub priority: i64,
    /// One full qbXML response document per exchange, in order; an iterator query's pages
    /// together are the whole result.
    pub responses: Vec<String>,
    #[schema(value_type = Option<Object>)]
    pub diagnosis: Option<Diagnosis>,
    /// Exchanges handed out (lost answers and connector errors count).
    pub attempts: i64,
    /// Times an iterator query started over.
    pub restarts: i64,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

impl JobView {
    fn from_row(j: Job) -> Self {
        Self {
            responses: serde_json::from_str(&j.responses).unwrap_or_default(),
            diagnosis: j.diagnosis.as_deref().and_then(|d| serde_json::from_str(d).ok()),
            id: j.id,
            connection_id: j.connection_id,
            status: j.status,
            priority: j.priority,
            attempts: j.attempts,
            restarts: j.restarts,
            created_at: j.created_at.to_rfc3339(),
            updated_at: j.updated_at.to_rfc3339(),
            finished_at: j.finished_at.map(|t| t.to_rfc3339()),
        }
    }
}

async fn load_job(state: &AppState, tenant_id: &str, id: &str) -> Result<Job, ApiError> {
    if !ledgerlink_core::id::is_well_formed("job", id) {
        return Err(ApiError::not_found("job"));
    }
    state.store.job(tenant_id, id).await?.ok_or_else(|| ApiError::not_found("job"))
}

/// Queue qbXML for the connection's desktop company file; the Reckon Web Connector picks it up
/// on its next cycle.
#[utoipa::path(post, path = "/v1/connections/{id}/qbxml", tag = "web connector", request_body = CreateJob,
    responses((status = 202, body = CreatedJob), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateJob>,
) -> Result<(StatusCode, Json<CreatedJob>), ApiError> {
    let conn = load(&state, &tenant.id, &id).await?;
    if conn.provider != Provider::Reckon.as_str() {
        return Err(ApiError::invalid(format!(
            "qbXML jobs are for reckon connections; this one is {}",
            conn.provider
        )));
    }
    let priority = body.priority.unwrap_or(0);
    if !PRIORITIES.contains(&priority) {
        return Err(ApiError::invalid(format!("`priority` must be between -100 and 100 (got {priority})")));
    }
    crate::webconnector::validate(&body.qbxml).map_err(ApiError::invalid)?;
    let now = state.clock.now();
    let job = Job {
        id: ledgerlink_core::id::generate("job", now.as_millis()),
        tenant_id: tenant.id.clone(),
        connection_id: conn.id.clone(),
        status: "queued".into(),
        priority,
        request: body.qbxml,
        responses: "[]".into(),
        pages: "[]".into(),
        attempts: 0,
        restarts: 0,
        exchange: None,
        exchange_kind: None,
        exchange_request: None,
        exchange_sent_at: None,
        continue_state: None,
        iterator_id: None,
        message_set_id: None,
        diagnosis: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
    };
    state.store.create_job(&job).await?;
    tracing::info!(connection_id = %conn.id, job_id = %job.id, priority, "qbXML job queued");
    Ok((StatusCode::ACCEPTED, Json(CreatedJob { job_id: job.id, status: job.status })))
}

/// A job: its status, and once done the qbXML responses.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "web connector",
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(JobView::from_row(load_job(&state, &tenant.id, &id).await?)))
}

/// Cancel a job that has not been handed out yet.
#[utoipa::path(delete, path = "/v1/jobs/{id}", tag = "web connector",
    responses((status = 204, description = "cancelled"), (status = 404, body = ErrorBody),
        (status = 409, description = "already handed out or finished", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let job = load_job(&state, &tenant.id, &id).await?;
    if state.store.cancel_job(&tenant.id, &job.id, state.clock.now()).await? {
        return Ok(StatusCode::NO_CONTENT);
    }
    let now = load_job(&state, &tenant.id, &id).await?;
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "job_not_queued",
        format!("the job is {}: only queued jobs can be cancelled", now.status),
    ))
}

/// A connection's jobs, oldest first.
#[utoipa::path(get, path = "/v1/connections/{id}/jobs", tag = "web connector", params(PageParams),
    responses((status = 200, body = Page<JobView>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<JobView>>, ApiError> {
    let conn = load(&state, &tenant.id, &id).await?;
    let (after, limit) = page.validate("job")?;
    let rows = state.store.list_jobs(&tenant.id, &conn.id, after, limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |j| j.id.clone(), JobView::from_row)))
}
