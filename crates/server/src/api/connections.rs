//! Connections: `POST /v1/organisations/{id}/connections`, `GET /v1/connections…`, the access
//! token, reconnect, delete, the timeline, and the providers' redirect to `/oauth/callback`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use ledgerlink_core::{ConnectionStatus, Diagnosis, Provider};
use ledgerlink_providers::CallbackParams;
use ledgerlink_store::{Connection, ConnectionFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiQuery, AuthTenant, Page, PageParams};
use crate::AppState;
use crate::connections::{self, CallbackError};
use crate::engine::AccessTokenError;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnection {
    /// `xero`, `quickbooks` or `myob` (OAuth), or `reckon` (the Reckon Web Connector).
    pub provider: String,
    /// OAuth: where to send the user's browser after the provider's consent page, with
    /// `?connection_id=…&status=…` appended. Without it the hub shows a short page.
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// `reckon`: the username the user will type into the Reckon Web Connector.
    #[serde(default)]
    pub username: Option<String>,
    /// `reckon`: the password the user will type into the Reckon Web Connector (stored only as
    /// an argon2 hash). `acumatica`: the API user's password (stored encrypted).
    #[serde(default)]
    pub password: Option<String>,
    /// `acumatica`: the instance's URL, path included (`https://x.example.com/AcumaticaERP`).
    #[serde(default)]
    pub instance_url: Option<String>,
    /// `acumatica`: the tenant to log in to (or `company`, its older name).
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
    /// `acumatica`: the branch to log in to.
    #[serde(default)]
    pub branch: Option<String>,
    /// `acumatica`: accept a password that fails MYOB Acumatica's 2023.1.3 policy (older
    /// instances).
    #[serde(default)]
    pub allow_weak_password: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCredentials {
    /// The API user's current password, exactly as set in MYOB Acumatica.
    pub password: String,
    /// A different API user, if it changed.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub allow_weak_password: bool,
}

#[derive(Serialize, ToSchema)]
pub struct WebConnectorView {
    /// The "Endpoint URL for GET" of the Reckon Web Connector connection.
    pub endpoint_url: String,
    /// The RWC's "Connection Id".
    pub connection_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct ExternalAccountView {
    pub id: String,
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ConnectionView {
    pub id: String,
    pub organisation_id: String,
    pub provider: String,
    /// `pending`, `connected` (green), `degraded` (amber), `disconnected` (red) or `paused`.
    pub status: String,
    /// Why a person must act; set when `disconnected`.
    pub reason: Option<String>,
    pub external_account: Option<ExternalAccountView>,
    /// The latest failure, diagnosed.
    #[schema(value_type = Option<Object>)]
    pub last_error: Option<Diagnosis>,
    /// Human-readable warnings (a duplicate link, a shared API user).
    pub warnings: Vec<String>,
    /// Other organisations' connections holding the same external account.
    pub duplicate_of: Vec<super::duplicates::LinkView>,
    pub created_at: String,
    pub updated_at: String,
    /// Since when the connection has had its current status.
    pub status_since: String,
    pub connected_at: Option<String>,
    pub access_token_expires_at: Option<String>,
    pub next_refresh_at: Option<String>,
    /// Present on creation and reconnect: where to send the user to authorise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorize_url: Option<String>,
    /// Reckon: what to enter in the Reckon Web Connector's connection settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webconnector: Option<WebConnectorView>,
}

impl ConnectionView {
    pub fn from_row(c: Connection) -> Self {
        let last_error = c.last_error.as_deref().and_then(|json| serde_json::from_str(json).ok());
        Self {
            external_account: c
                .external_account_id
                .map(|id| ExternalAccountView { id, name: c.external_account_name }),
            id: c.id,
            organisation_id: c.organisation_id,
            provider: c.provider,
            status: c.status,
            reason: c.reason,
            last_error,
            warnings: Vec::new(),
            duplicate_of: Vec::new(),
            created_at: c.created_at.to_rfc3339(),
            updated_at: c.updated_at.to_rfc3339(),
            status_since: c.status_since.to_rfc3339(),
            connected_at: c.connected_at.map(|t| t.to_rfc3339()),
            access_token_expires_at: c.access_expires_at.map(|t| t.to_rfc3339()),
            next_refresh_at: c.next_refresh_at.map(|t| t.to_rfc3339()),
            authorize_url: None,
            webconnector: None,
        }
    }

    /// Adds what depends on the hub's address: the web connector settings of a Reckon connection.
    fn with_context(mut self, state: &AppState) -> Self {
        if self.provider == Provider::Reckon.as_str() {
            self.webconnector = Some(WebConnectorView {
                endpoint_url: crate::webconnector::endpoint_url(state),
                connection_id: self.id.clone(),
            });
        }
        self
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuthorizeUrl {
    pub authorize_url: String,
}

#[derive(Serialize, ToSchema)]
pub struct AccessTokenView {
    pub access_token: String,
    pub expires_at: String,
    /// Headers the provider needs besides `Authorization`, e.g. `xero-tenant-id`.
    pub headers: BTreeMap<String, String>,
    /// The API base for this account (QuickBooks and MYOB put the company in the path).
    pub api_base_url: String,
}

#[derive(Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    /// e.g. `connection.connected`, `connection.degraded`, `connection.disconnected`.
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub diagnosis: Option<Diagnosis>,
    #[schema(value_type = Option<Object>)]
    pub external_account: Option<serde_json::Value>,
    /// On `connection.duplicate_detected`: the other organisations' connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub duplicate_of: Option<serde_json::Value>,
    pub created_at: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    pub status: Option<String>,
    pub provider: Option<String>,
    pub organisation_id: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub(crate) async fn load(state: &AppState, tenant_id: &str, id: &str) -> Result<Connection, ApiError> {
    if !ledgerlink_core::id::is_well_formed("con", id) {
        return Err(ApiError::not_found("connection"));
    }
    state.store.connection(tenant_id, id).await?.ok_or_else(|| ApiError::not_found("connection"))
}

fn parse_redirect_url(value: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    let url = url::Url::parse(value.trim())
        .map_err(|_| ApiError::invalid("`redirect_url` must be an absolute http:// or https:// URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || value.len() > 2000 {
        return Err(ApiError::invalid(
            "`redirect_url` must be an absolute http:// or https:// URL of at most 2000 characters",
        ));
    }
    Ok(Some(url.to_string()))
}

/// Create a connection for an organisation. OAuth providers answer with the `authorize_url`
/// to send the user to; the connection is `pending` until they approve.
#[utoipa::path(post, path = "/v1/organisations/{id}/connections", tag = "connections", request_body = CreateConnection,
    responses((status = 201, body = ConnectionView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(org_id): Path<String>,
    ApiJson(body): ApiJson<CreateConnection>,
) -> Result<(StatusCode, Json<ConnectionView>), ApiError> {
    let org = if ledgerlink_core::id::is_well_formed("org", &org_id) {
        state.store.organisation(&tenant.id, &org_id).await?
    } else {
        None
    };
    let org = org.ok_or_else(|| ApiError::not_found("organisation"))?;
    let provider: Provider =
        body.provider.parse().map_err(|rule| ApiError::invalid(format!("`provider` {rule}")))?;
    if provider == Provider::Reckon {
        return create_reckon(&state, &org, body).await;
    }
    if provider == Provider::Acumatica {
        return create_acumatica(&state, &org, body).await;
    }
    if body.username.is_some() || body.password.is_some() {
        return Err(ApiError::invalid(format!(
            "`username` and `password` are for reckon connections; {provider} connects through OAuth"
        )));
    }
    if !provider.is_oauth() {
        return Err(ApiError::invalid(format!(
            "`provider` {provider}: {} connections are not available in this version of the hub yet",
            provider.display_name()
        )));
    }
    state
        .providers
        .oauth(provider)
        .map_err(|message| ApiError::invalid(format!("`provider` {provider}: {message}")))?;
    let redirect_url = parse_redirect_url(body.redirect_url)?;
    let conn = connections::new_connection(&state, &org, provider, redirect_url);
    let created = connections::event(&conn, "connection.created", &conn.status, None, &state);
    state.store.create_connection(&conn, &created).await?;
    let authorize_url =
        connections::authorize_url(&state, &conn, provider).await.map_err(ApiError::internal)?;
    let mut view = ConnectionView::from_row(conn);
    view.authorize_url = Some(authorize_url);
    Ok((StatusCode::CREATED, Json(view)))
}

/// A Reckon connection: the credentials the Reckon Web Connector will send, checked and hashed.
async fn create_reckon(
    state: &AppState,
    org: &ledgerlink_store::Organisation,
    body: CreateConnection,
) -> Result<(StatusCode, Json<ConnectionView>), ApiError> {
    if body.redirect_url.is_some() {
        return Err(ApiError::invalid("`redirect_url` is for OAuth connections; reckon has no consent page"));
    }
    let username = body.username.unwrap_or_default();
    let username = username.trim();
    if username.is_empty()
        || username.chars().count() > 100
        || username.chars().any(|c| c.is_control() || c == ':')
    {
        return Err(ApiError::invalid(
            "`username` is required for reckon: 1 to 100 characters, without `:` or control characters",
        ));
    }
    let password = body.password.unwrap_or_default();
    if password.chars().count() < 12
        || password.chars().count() > 200
        || password.chars().any(char::is_control)
    {
        return Err(ApiError::invalid(
            "`password` is required for reckon: 12 to 200 characters, without control characters",
        ));
    }
    let secret = crate::passwords::hash(&password).map_err(ApiError::internal)?;
    let conn = connections::new_connection(state, org, Provider::Reckon, None);
    let created = connections::event(&conn, "connection.created", &conn.status, None, state);
    let login =
        ledgerlink_store::PasswordLogin { username: username.to_owned(), secret, ..Default::default() };
    state.store.create_password_connection(&conn, &created, &login).await?;
    tracing::info!(connection_id = %conn.id, "reckon connection created");
    Ok((StatusCode::CREATED, Json(ConnectionView::from_row(conn).with_context(state))))
}

fn check_acumatica_password(password: &str, allow_weak: bool) -> Result<(), ApiError> {
    if password.is_empty() || password.chars().count() > 256 {
        return Err(ApiError::invalid(
            "`password` is required: the API user's password, at most 256 characters",
        ));
    }
    let failed = ledgerlink_providers::password_policy_failures(password);
    if !failed.is_empty() && !allow_weak {
        return Err(ApiError::invalid(format!(
            "`password` does not meet MYOB Acumatica's password policy (version 2023.1.3 and later): it needs {}. \
             Set a compliant password for the API user in MYOB Acumatica and enter the same one here, or send \
             \"allow_weak_password\": true for an older instance",
            failed.join(", ")
        )));
    }
    Ok(())
}

fn check_acumatica_username(username: &str) -> Result<(), ApiError> {
    if username.trim().is_empty() || username.chars().count() > 100 || username.chars().any(char::is_control)
    {
        return Err(ApiError::invalid(
            "`username` is required: the API user's login name, 1 to 100 characters",
        ));
    }
    Ok(())
}

/// A MYOB Acumatica connection: checked against the password policy, stored (password
/// encrypted), then tested with one login, one read and one logout.
async fn create_acumatica(
    state: &AppState,
    org: &ledgerlink_store::Organisation,
    body: CreateConnection,
) -> Result<(StatusCode, Json<ConnectionView>), ApiError> {
    if body.redirect_url.is_some() {
        return Err(ApiError::invalid(
            "`redirect_url` is for OAuth connections; acumatica logs in with a password",
        ));
    }
    let raw_url = body.instance_url.as_deref().unwrap_or_default().trim();
    let url = url::Url::parse(raw_url).map_err(|_| {
        ApiError::invalid("`instance_url` is required: the instance's https:// address, e.g. https://x.example.com/AcumaticaERP")
    })?;
    let loopback = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || url.host_str() == Some("localhost");
    if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) || url.host_str().is_none() {
        return Err(ApiError::invalid(
            "`instance_url` must be an https:// URL (plain http:// only on loopback), e.g. https://x.example.com/AcumaticaERP",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ApiError::invalid("`instance_url` must not have a query or fragment"));
    }
    let username = body.username.unwrap_or_default();
    check_acumatica_username(&username)?;
    let password = body.password.unwrap_or_default();
    check_acumatica_password(&password, body.allow_weak_password)?;
    if body.tenant.is_some() && body.company.is_some() {
        return Err(ApiError::invalid("give `tenant` or `company` (its older name), not both"));
    }
    let name = |field: &str, value: Option<String>| -> Result<Option<String>, ApiError> {
        let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        if value.chars().count() > 100 || value.chars().any(char::is_control) {
            return Err(ApiError::invalid(format!(
                "`{field}` must be at most 100 characters, without control characters"
            )));
        }
        Ok(Some(value))
    };
    let options = crate::acumatica::Options {
        instance_url: url.as_str().trim_end_matches('/').to_owned(),
        tenant: name("tenant", body.tenant)?,
        company: name("company", body.company)?,
        branch: name("branch", body.branch)?,
    };
    let mut conn = connections::new_connection(state, org, Provider::Acumatica, None);
    let (account_id, account_name) = crate::acumatica::account_of(&options);
    conn.external_account_id = Some(account_id);
    conn.external_account_name = account_name;
    let login = ledgerlink_store::PasswordLogin {
        username: username.trim().to_owned(),
        secret: state.keys.encrypt_secret(&password.into(), &crate::acumatica::password_context(&conn.id)),
        login_key: Some(crate::acumatica::login_key(&options.instance_url, username.trim())),
        options: Some(serde_json::to_string(&options).map_err(ApiError::internal)?),
    };
    let created = connections::event(&conn, "connection.created", &conn.status, None, state);
    state.store.create_password_connection(&conn, &created, &login).await?;
    tracing::info!(connection_id = %conn.id, "acumatica connection created; testing it");
    crate::acumatica::test(state, &conn).await.map_err(|e| ApiError::internal(format!("{e:#}")))?;
    let mut view =
        ConnectionView::from_row(load(state, &conn.tenant_id, &conn.id).await?).with_context(state);
    super::duplicates::annotate(state, &conn.tenant_id, &mut view).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Store the API user's current password (after a MYOB Acumatica upgrade reset it, say), test
/// it, and enable the connection again: the seed's "Enable Connection" step, done for the user.
#[utoipa::path(put, path = "/v1/connections/{id}/credentials", tag = "connections", request_body = UpdateCredentials,
    responses((status = 200, body = ConnectionView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_credentials(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateCredentials>,
) -> Result<Json<ConnectionView>, ApiError> {
    let conn = load(&state, &tenant.id, &id).await?;
    if conn.provider != Provider::Acumatica.as_str() {
        return Err(ApiError::invalid(format!(
            "credentials are updated for acumatica connections; this one is {}",
            conn.provider
        )));
    }
    check_acumatica_password(&body.password, body.allow_weak_password)?;
    let stored = state.store.login(&conn.id).await?.ok_or_else(|| ApiError::internal("no stored login"))?;
    let username = match body.username {
        Some(username) => {
            check_acumatica_username(&username)?;
            username.trim().to_owned()
        }
        None => stored.username.clone(),
    };
    let options: crate::acumatica::Options =
        serde_json::from_str(stored.options.as_deref().unwrap_or("{}")).map_err(ApiError::internal)?;
    let login = ledgerlink_store::PasswordLogin {
        secret: state
            .keys
            .encrypt_secret(&body.password.into(), &crate::acumatica::password_context(&conn.id)),
        login_key: Some(crate::acumatica::login_key(&options.instance_url, &username)),
        username,
        options: None,
    };
    state.store.set_login(&conn.id, &login).await?;
    let now = state.clock.now();
    let conn =
        crate::acumatica::credentials_replaced(&state, &conn, now).await.map_err(ApiError::internal)?;
    crate::acumatica::test(&state, &conn).await.map_err(|e| ApiError::internal(format!("{e:#}")))?;
    let mut view = ConnectionView::from_row(load(&state, &tenant.id, &id).await?).with_context(&state);
    super::duplicates::annotate(&state, &tenant.id, &mut view).await?;
    Ok(Json(view))
}

/// Get a connection: its status (green, amber, red), reason, linked account and last diagnosis.
#[utoipa::path(get, path = "/v1/connections/{id}", tag = "connections",
    responses((status = 200, body = ConnectionView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let mut view = ConnectionView::from_row(load(&state, &tenant.id, &id).await?).with_context(&state);
    super::duplicates::annotate(&state, &tenant.id, &mut view).await?;
    Ok(Json(view))
}

/// List connections, filtered by status, provider or organisation.
#[utoipa::path(get, path = "/v1/connections", tag = "connections", params(ListParams),
    responses((status = 200, body = Page<ConnectionView>), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Page<ConnectionView>>, ApiError> {
    let page = PageParams { limit: params.limit, cursor: params.cursor };
    let (after, limit) = page.validate("con")?;
    if let Some(status) = &params.status {
        status.parse::<ConnectionStatus>().map_err(|rule| ApiError::invalid(format!("`status` {rule}")))?;
    }
    if let Some(provider) = &params.provider {
        provider.parse::<Provider>().map_err(|rule| ApiError::invalid(format!("`provider` {rule}")))?;
    }
    let filter = ConnectionFilter {
        status: params.status,
        provider: params.provider,
        organisation_id: params.organisation_id,
    };
    let rows = state.store.list_connections(&tenant.id, &filter, after, limit + 1).await?;
    let mut page =
        Page::from_rows(rows, limit, |c| c.id.clone(), |c| ConnectionView::from_row(c).with_context(&state));
    for view in &mut page.data {
        super::duplicates::annotate(&state, &tenant.id, view).await?;
    }
    Ok(Json(page))
}

/// A valid access token for the connection, refreshed first if it is about to expire (joining
/// a refresh already under way). 409 with the diagnosis when the connection is disconnected.
#[utoipa::path(get, path = "/v1/connections/{id}/access-token", tag = "connections",
    responses((status = 200, body = AccessTokenView), (status = 404, body = ErrorBody),
        (status = 409, description = "disconnected or not yet authorised", body = ErrorBody),
        (status = 503, description = "the token expired and the provider cannot be reached for now", body = ErrorBody)))]
pub async fn access_token(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
) -> Result<Json<AccessTokenView>, ApiError> {
    let conn = load(&state, &tenant.id, &id).await?;
    let provider: Provider = conn.provider.parse().map_err(ApiError::internal)?;
    let token = token_or_error(state.engine.access_token(&conn.id).await, provider)?;
    let account = ledgerlink_core::ExternalAccount {
        id: token.connection.external_account_id.clone().unwrap_or_default(),
        name: token.connection.external_account_name.clone(),
    };
    let client = state.providers.oauth(provider).map_err(ApiError::internal)?;
    Ok(Json(AccessTokenView {
        access_token: token.token.expose().to_owned(),
        expires_at: token.expires_at.to_rfc3339(),
        headers: client.api_headers(&account),
        api_base_url: client.account_api_base(&account),
    }))
}

/// The token, or the API error for a connection that cannot give one: 409 with the diagnosis
/// when disconnected, 409 before authorisation, 503 while refreshing keeps failing.
pub(crate) fn token_or_error(
    result: Result<crate::engine::AccessToken, AccessTokenError>,
    provider: Provider,
) -> Result<crate::engine::AccessToken, ApiError> {
    match result {
        Ok(token) => Ok(token),
        Err(AccessTokenError::Disconnected(conn)) => {
            let diagnosis = diagnosis_of(&conn).unwrap_or_else(|| Diagnosis::invalid_grant(provider));
            Err(ApiError::new(StatusCode::CONFLICT, "connection_disconnected", diagnosis.summary.clone())
                .with_diagnosis(diagnosis))
        }
        Err(AccessTokenError::NotReady(conn)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "connection_not_ready",
            format!(
                "the connection is {}: it has no token until a user authorises it (see authorize_url / reconnect)",
                conn.status
            ),
        )),
        Err(AccessTokenError::Unavailable(conn)) => {
            let mut error = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "provider_unavailable",
                "the access token expired and refreshing it is failing for now; the hub keeps retrying",
            );
            if let Some(diagnosis) = diagnosis_of(&conn) {
                error = error.with_diagnosis(diagnosis);
            }
            Err(error)
        }
        Err(AccessTokenError::Internal(e)) => Err(ApiError::internal(format!("{e:#}"))),
    }
}

fn diagnosis_of(conn: &Connection) -> Option<Diagnosis> {
    conn.last_error.as_deref().and_then(|json| serde_json::from_str(json).ok())
}

/// Start a new authorisation for an existing OAuth connection; it keeps its id and history.
#[utoipa::path(post, path = "/v1/connections/{id}/reconnect", tag = "connections",
    responses((status = 200, body = AuthorizeUrl), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reconnect(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
) -> Result<Json<AuthorizeUrl>, ApiError> {
    let conn = load(&state, &tenant.id, &id).await?;
    let provider: Provider = conn.provider.parse().map_err(ApiError::internal)?;
    if !provider.is_oauth() {
        return Err(ApiError::invalid(format!(
            "{} connections are not reconnected through OAuth",
            provider.display_name()
        )));
    }
    state.providers.oauth(provider).map_err(ApiError::invalid)?;
    let authorize_url =
        connections::authorize_url(&state, &conn, provider).await.map_err(ApiError::internal)?;
    let started = connections::event(&conn, "connection.reconnect_started", &conn.status, None, &state);
    let change = ledgerlink_store::ConnectionChange::keep(&conn, state.clock.now());
    state.store.update_connection(&conn.id, ledgerlink_store::Guard::Any, &change, &[started]).await?;
    Ok(Json(AuthorizeUrl { authorize_url }))
}

/// Pause a Reckon connection, like the Reckon Web Connector's own "Paused" status: the hub hands
/// out no work (jobs stay queued) until it is resumed.
#[utoipa::path(post, path = "/v1/connections/{id}/pause", tag = "connections",
    responses((status = 200, body = ConnectionView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn pause(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    set_paused(&state, &tenant.id, &id, true).await
}

/// Resume a paused Reckon connection: the next poll of the Reckon Web Connector gets work again.
#[utoipa::path(post, path = "/v1/connections/{id}/resume", tag = "connections",
    responses((status = 200, body = ConnectionView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    set_paused(&state, &tenant.id, &id, false).await
}

async fn set_paused(
    state: &AppState,
    tenant_id: &str,
    id: &str,
    paused: bool,
) -> Result<Json<ConnectionView>, ApiError> {
    let conn = load(state, tenant_id, id).await?;
    if conn.provider != Provider::Reckon.as_str() {
        return Err(ApiError::invalid(
            "only reckon connections can be paused: an OAuth connection must keep renewing its tokens",
        ));
    }
    let is_paused = conn.status == ConnectionStatus::Paused.as_str();
    if paused != is_paused {
        let (status, kind) = if paused {
            (ConnectionStatus::Paused.as_str(), "connection.paused")
        } else if conn.connected_at.is_some() {
            (ConnectionStatus::Connected.as_str(), "connection.resumed")
        } else {
            (ConnectionStatus::Pending.as_str(), "connection.resumed")
        };
        let change = ledgerlink_store::ConnectionChange {
            status: status.into(),
            ..ledgerlink_store::ConnectionChange::keep(&conn, state.clock.now())
        };
        let event = connections::event(&conn, kind, status, None, state);
        state.store.update_connection(&conn.id, ledgerlink_store::Guard::Any, &change, &[event]).await?;
    }
    Ok(Json(ConnectionView::from_row(load(state, tenant_id, id).await?).with_context(state)))
}

/// Delete a connection: the grant is revoked at the provider where it can be, then the
/// connection and its timeline are removed.
#[utoipa::path(delete, path = "/v1/connections/{id}", tag = "connections",
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let conn = load(&state, &tenant.id, &id).await?;
    connections::revoke(&state, &conn).await;
    if !state.store.delete_connection(&tenant.id, &conn.id).await? {
        return Err(ApiError::not_found("connection"));
    }
    tracing::info!(connection_id = %conn.id, provider = %conn.provider, "connection deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The connection's timeline, oldest first.
#[utoipa::path(get, path = "/v1/connections/{id}/events", tag = "connections", params(PageParams),
    responses((status = 200, body = Page<EventView>), (status = 404, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<EventView>>, ApiError> {
    let conn = load(&state, &tenant.id, &id).await?;
    let (after, limit) = page.validate("evt")?;
    let rows = state.store.list_events(&tenant.id, &conn.id, after, limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |e| e.id.clone(), EventView::from_row)))
}

impl EventView {
    fn from_row(e: ledgerlink_store::Event) -> Self {
        let detail: serde_json::Value =
            e.detail.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default();
        Self {
            id: e.id,
            kind: e.kind,
            status: e.status,
            reason: e.reason,
            diagnosis: serde_json::from_value(detail["diagnosis"].clone()).ok(),
            external_account: detail.get("external_account").cloned(),
            duplicate_of: detail.get("duplicate_of").cloned(),
            created_at: e.created_at.to_rfc3339(),
        }
    }
}

/// Where providers send the user back. Protected by the single-use `state`, not an API key.
#[utoipa::path(get, path = "/oauth/callback", tag = "connections", security(),
    responses((status = 200, description = "an HTML page saying what happened"), (status = 302, description = "to the connection's redirect_url"),
        (status = 400, description = "unknown, used or expired state")))]
pub async fn callback(
    State(state): State<AppState>,
    query: Result<Query<CallbackParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(params)) = query else {
        return page(
            StatusCode::BAD_REQUEST,
            "This link is not valid",
            "The address is malformed. Start the connection again from the app.",
        );
    };
    match connections::complete(&state, &params).await {
        Ok(conn) => {
            let name = conn.external_account_name.clone().unwrap_or_else(|| "the account".into());
            let provider =
                conn.provider.parse::<Provider>().map(|p| p.display_name()).unwrap_or("the provider");
            if let Some(url) = &conn.redirect_url {
                return back_to_app(url, &conn, None);
            }
            page(
                StatusCode::OK,
                "Connected",
                &format!("{provider} ({name}) is now connected. You can close this window."),
            )
        }
        Err(CallbackError::Provider(diagnosis, conn)) => {
            if let Some(url) = &conn.redirect_url {
                return back_to_app(
                    url,
                    &conn,
                    diagnosis.provider_code.as_deref().or(Some(&diagnosis.category)),
                );
            }
            page(StatusCode::OK, "Not connected", &format!("{} {}", diagnosis.summary, diagnosis.action))
        }
        Err(CallbackError::Duplicate(diagnosis, conn)) => {
            if let Some(url) = &conn.redirect_url {
                return back_to_app(url, &conn, Some("duplicate_link"));
            }
            page(
                StatusCode::CONFLICT,
                "Already linked elsewhere",
                &format!("{} {}", diagnosis.summary, diagnosis.action),
            )
        }
        Err(
            e @ (CallbackError::MissingState | CallbackError::UnknownState | CallbackError::ConnectionGone),
        ) => page(
            StatusCode::BAD_REQUEST,
            "This link cannot be used",
            &format!("{}. Start the connection again from the app.", capitalise(&e.to_string())),
        ),
        Err(CallbackError::Internal(error)) => {
            tracing::error!(error = format!("{error:#}"), "completing an authorisation failed");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The hub could not finish connecting. Try again in a moment.",
            )
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkParams {
    pub expires: Option<i64>,
    pub sig: Option<String>,
}

/// The reconnect link of alert emails: checks the signature, starts a new authorisation of the
/// connection and sends the browser to the provider.
#[utoipa::path(get, path = "/reconnect/{id}", tag = "connections", security(), params(LinkParams),
    responses((status = 303, description = "to the provider's consent page"),
        (status = 400, description = "an invalid or expired link")))]
pub async fn reconnect_link(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<LinkParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let invalid = || {
        page(
            StatusCode::BAD_REQUEST,
            "This link cannot be used",
            "The reconnect link is invalid or has expired. Ask for a new one, or reconnect from the app.",
        )
    };
    let Ok(Query(LinkParams { expires: Some(expires), sig: Some(sig) })) = query else { return invalid() };
    if !ledgerlink_core::id::is_well_formed("con", &id) {
        return invalid();
    }
    let started = async {
        if !crate::links::verify(&state, &id, expires, &sig).await? {
            return Ok(None);
        }
        let Some(conn) = state.store.connection_by_id(&id).await? else { return Ok(None) };
        let provider: Provider = conn.provider.parse().map_err(anyhow::Error::msg)?;
        if !provider.is_oauth() {
            return Ok(None);
        }
        let url = connections::authorize_url(&state, &conn, provider).await?;
        let started = connections::event(&conn, "connection.reconnect_started", &conn.status, None, &state);
        let change = ledgerlink_store::ConnectionChange::keep(&conn, state.clock.now());
        state.store.update_connection(&conn.id, ledgerlink_store::Guard::Any, &change, &[started]).await?;
        anyhow::Ok(Some(url))
    };
    match started.await {
        Ok(Some(url)) => Redirect::to(&url).into_response(),
        Ok(None) => invalid(),
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "starting a reconnect from an email link failed");
            page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Try the link again in a moment.")
        }
    }
}

fn back_to_app(url: &str, conn: &Connection, error: Option<&str>) -> Response {
    let Ok(mut target) = url::Url::parse(url) else {
        // Validated when the connection was created; cannot happen.
        return page(StatusCode::OK, "Done", "You can close this window.");
    };
    {
        let mut query = target.query_pairs_mut();
        query.append_pair("connection_id", &conn.id).append_pair("status", &conn.status);
        if let Some(error) = error {
            query.append_pair("error", error);
        }
    }
    Redirect::to(target.as_str()).into_response()
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let escape =
        |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · ledgerlink</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head><body style=\"font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;line-height:1.5\">\
         <h1>{title}</h1><p>{message}</p></body></html>",
        title = escape(title),
        message = escape(message)
    );
    (status, Html(body)).into_response()
}
