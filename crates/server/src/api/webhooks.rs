//! Webhook subscriptions: `POST/GET /v1/webhooks`, `GET/DELETE /v1/webhooks/{id}` and the
//! delivery log `GET /v1/webhooks/{id}/deliveries`. Delivery itself is [`crate::webhooks`].

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ledgerlink_store::{Delivery, WebhookSubscription};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiQuery, AuthTenant, Page, PageParams};
use crate::AppState;
use crate::alerts::PUBLISHED;
use crate::webhooks::{new_secret, secret_context};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where events are POSTed: an absolute http:// or https:// URL.
    pub url: String,
    /// Event types to receive; absent means all of them.
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    /// The event types sent; `null` means all.
    pub events: Option<Vec<String>>,
    /// `active`, or `disabled` after deliveries failed for the whole retry schedule.
    pub status: &'static str,
    pub disabled_at: Option<String>,
    pub disabled_reason: Option<String>,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The signing secret (`whsec_…`), shown once. Verify each delivery's `webhook-signature`
    /// with it, per the Standard Webhooks specification.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    /// The `webhook-id` header: the same on every attempt of this delivery.
    pub id: String,
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// `pending` (waiting or retrying), `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    /// The receiver's HTTP status at the last attempt, if it answered.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl WebhookView {
    fn from_row(s: WebhookSubscription) -> Self {
        Self {
            events: s.events.as_deref().and_then(|e| serde_json::from_str(e).ok()),
            status: if s.disabled_at.is_some() { "disabled" } else { "active" },
            disabled_at: s.disabled_at.map(|t| t.to_rfc3339()),
            disabled_reason: s.disabled_reason,
            created_at: s.created_at.to_rfc3339(),
            id: s.id,
            url: s.url,
        }
    }
}

impl DeliveryView {
    fn from_row(d: Delivery) -> Self {
        Self {
            payload: serde_json::from_str(&d.payload).unwrap_or_default(),
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at.map(|t| t.to_rfc3339()),
            last_attempt_at: d.last_attempt_at.map(|t| t.to_rfc3339()),
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at.to_rfc3339(),
            delivered_at: d.delivered_at.map(|t| t.to_rfc3339()),
        }
    }
}

fn parse_url(value: &str) -> Result<String, ApiError> {
    let url = url::Url::parse(value.trim())
        .map_err(|e| ApiError::invalid(format!("`url` must be an absolute http:// or https:// URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ApiError::invalid("`url` must be an absolute http:// or https:// URL"));
    }
    if value.len() > 2000 {
        return Err(ApiError::invalid("`url` must be at most 2000 characters"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::invalid("`url` must not contain credentials; deliveries are signed instead"));
    }
    Ok(url.to_string())
}

fn parse_events(events: Option<Vec<String>>) -> Result<Option<Vec<String>>, ApiError> {
    let Some(mut events) = events else { return Ok(None) };
    if events.is_empty() {
        return Err(ApiError::invalid("`events` must list at least one event type, or be left out for all"));
    }
    for event in &events {
        if !PUBLISHED.contains(&event.as_str()) {
            return Err(ApiError::invalid(format!(
                "`events`: unknown event type {event:?}; known types: {}",
                PUBLISHED.join(", ")
            )));
        }
    }
    events.sort();
    events.dedup();
    Ok(Some(events))
}

async fn load(state: &AppState, tenant_id: &str, id: &str) -> Result<WebhookSubscription, ApiError> {
    if !ledgerlink_core::id::is_well_formed("whk", id) {
        return Err(ApiError::not_found("webhook"));
    }
    state.store.subscription(tenant_id, id).await?.ok_or_else(|| ApiError::not_found("webhook"))
}

/// Subscribe an endpoint to events. The answer holds the signing secret, shown only here.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = CreatedWebhook), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let url = parse_url(&body.url)?;
    let events = parse_events(body.events)?;
    let now = state.clock.now();
    let id = ledgerlink_core::id::generate("whk", now.as_millis());
    let secret = new_secret();
    let sub = WebhookSubscription {
        secret: state.keys.encrypt_secret(&secret.clone().into(), &secret_context(&id)),
        id,
        tenant_id: tenant.id.clone(),
        url,
        events: events.map(|e| serde_json::to_string(&e).expect("strings serialise")),
        created_at: now,
        disabled_at: None,
        disabled_reason: None,
    };
    state.store.create_subscription(&sub).await?;
    tracing::info!(subscription_id = %sub.id, url = %sub.url, "webhook subscription created");
    Ok((StatusCode::CREATED, Json(CreatedWebhook { webhook: WebhookView::from_row(sub), secret })))
}

/// The tenant's webhook subscriptions (without their secrets).
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", params(PageParams),
    responses((status = 200, body = Page<WebhookView>)))]
pub async fn list(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<WebhookView>>, ApiError> {
    let (after, limit) = page.validate("whk")?;
    let rows = state.store.list_subscriptions(&tenant.id, after, limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |s| s.id.clone(), WebhookView::from_row)))
}

/// One subscription: whether it is active, or disabled and why.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks",
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(WebhookView::from_row(load(&state, &tenant.id, &id).await?)))
}

/// Unsubscribe: pending deliveries to this endpoint are dropped with it.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let sub = load(&state, &tenant.id, &id).await?;
    if !state.store.delete_subscription(&tenant.id, &sub.id).await? {
        return Err(ApiError::not_found("webhook"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Enable a disabled subscription again (after fixing the receiver): deliveries that failed
/// are retried from the start of the schedule, in order.
#[utoipa::path(post, path = "/v1/webhooks/{id}/enable", tag = "webhooks",
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody),
        (status = 409, description = "the subscription is not disabled", body = ErrorBody)))]
pub async fn enable(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let sub = load(&state, &tenant.id, &id).await?;
    if !state.store.enable_subscription(&tenant.id, &sub.id, state.clock.now()).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "webhook_active",
            "the subscription is not disabled",
        ));
    }
    tracing::info!(subscription_id = %sub.id, "webhook subscription enabled again");
    Ok(Json(WebhookView::from_row(load(&state, &tenant.id, &id).await?)))
}

/// The subscription's delivery log, oldest first: every event sent or waiting, its attempts
/// and the receiver's last answer.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks", params(PageParams),
    responses((status = 200, body = Page<DeliveryView>), (status = 404, body = ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<DeliveryView>>, ApiError> {
    let sub = load(&state, &tenant.id, &id).await?;
    let (after, limit) = page.validate("msg")?;
    let rows = state.store.list_deliveries(&tenant.id, &sub.id, after, limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |d| d.id.clone(), DeliveryView::from_row)))
}
