//! The v1 HTTP API.
//!
//! Routes are registered through `utoipa_axum`, which records each handler's OpenAPI
//! description as it mounts the handler: the document at `/v1/openapi.json` is generated from
//! the same code that serves requests and cannot drift from it.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub mod connections;
pub mod duplicates;
pub mod error;
pub mod extract;
pub mod jobs;
pub mod organisations;
pub mod proxy;
pub mod webconnector;
pub mod webhooks;

use error::{ApiError, ErrorBody};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ledgerlink",
        description = "An accounting connection hub: keeps links to Xero, QuickBooks Online, MYOB, \
            MYOB Acumatica and Reckon Accounts alive, diagnoses failures and alerts. \
            Authenticate with `Authorization: Bearer <tenant api key>`. Errors are \
            `{\"error\": {\"code\", \"message\"}}`; lists are `{\"data\": [...], \"next_cursor\"}`."
    ),
    paths(proxy::proxy),
    modifiers(&BearerAuth),
    security(("api_key" = [])),
    tags((name = "organisations", description = "A tenant's customer businesses and the people to contact about them"),
         (name = "connections", description = "Links between organisations and accounting accounts, and their tokens"),
         (name = "web connector", description = "The Reckon Web Connector's endpoints (Basic Auth) and the qbXML job queue"),
         (name = "webhooks", description = "Event subscriptions, signed per the Standard Webhooks specification, and their delivery logs"),
         (name = "operations", description = "Liveness and the API description; no API key needed"))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("api_key", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

pub fn router(state: AppState) -> Router {
    let (api, doc) = openapi_router().split_for_parts();
    let doc = std::sync::Arc::new(doc);
    let extra = state.extra_routes.clone();
    let api = match extra {
        Some(extra) => api.merge(extra.with_state(())),
        None => api,
    };
    api.route("/v1/openapi.json", get(move || std::future::ready(Json(doc.as_ref().clone()))))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_size))
        .layer(axum::middleware::map_response(json_for_bare_errors))
        .layer(axum::middleware::from_fn(basic_auth_challenge))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal("a request handler panicked").into_response()))
        .layer(axum::middleware::from_fn(crate::telemetry::request_context))
        .with_state(state)
}

/// The documented routes. Kept separate so the OpenAPI document can be produced without a
/// running hub (`ledgerlink openapi`).
pub fn openapi_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(organisations::create, organisations::list))
        .routes(routes!(organisations::get, organisations::update, organisations::delete))
        .routes(routes!(organisations::add_user, organisations::list_users))
        .routes(routes!(organisations::remove_user))
        .routes(routes!(connections::create))
        .routes(routes!(connections::list))
        .routes(routes!(connections::get, connections::delete))
        .routes(routes!(connections::access_token))
        .routes(routes!(connections::reconnect))
        .routes(routes!(connections::pause))
        .routes(routes!(connections::update_credentials))
        .routes(routes!(connections::resume))
        .routes(routes!(connections::events))
        .routes(routes!(connections::callback))
        .routes(routes!(connections::reconnect_link))
        .routes(routes!(proxy::test))
        // The proxied path may have several segments: axum's catch-all, documented through
        // `ApiDoc` as `{path}`.
        .route("/v1/connections/{id}/proxy/{*path}", axum::routing::any(proxy::proxy))
        .routes(routes!(duplicates::list))
        .routes(routes!(duplicates::diagnoses))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::get, webhooks::delete))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::enable))
        .routes(routes!(metrics))
        .routes(routes!(jobs::create))
        .routes(routes!(jobs::list))
        .routes(routes!(jobs::get, jobs::cancel))
        .routes(routes!(webconnector::poll))
        .routes(routes!(webconnector::result))
}

/// The OpenAPI document, as served at `/v1/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi_router().into_openapi()
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when the database does not answer.
    status: &'static str,
}

/// Liveness: the hub runs and its database answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(),
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    match state.store.schema_version().await {
        Ok(_) => Ok(Json(Health { status: "ok" })),
        Err(error) => {
            tracing::error!(%error, "health check: the database does not answer");
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the database does not answer"))
        }
    }
}

/// Prometheus metrics: connections by provider and status, refreshes, failures, alerts,
/// webhook deliveries, emails, proxied requests.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(),
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let body = crate::metrics::render(&state).await.map_err(|e| ApiError::internal(format!("{e:#}")))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
        .into_response())
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no such endpoint: {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not supported on {}", uri.path()),
    )
}

/// 401s of the web connector endpoints ask for Basic Auth.
async fn basic_auth_challenge(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let webconnector = request.uri().path().starts_with(crate::webconnector::ENDPOINT_PATH);
    let response = next.run(request).await;
    if webconnector { webconnector::challenge(response) } else { response }
}

/// Layers below the handlers (the body limit) answer with plain text; give them the API's
/// error shape too.
async fn json_for_bare_errors(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return extract::payload_too_large().into_response();
    }
    response
}
