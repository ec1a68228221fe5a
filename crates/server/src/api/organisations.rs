//! Organisations — a tenant's customer businesses — and the users to contact about them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ledgerlink_core::domain::{Email, ExternalId, OrganisationName, PersonName};
use ledgerlink_core::id;
use ledgerlink_store::{Organisation, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiQuery, AuthTenant, Page, PageParams, double_option};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganisation {
    /// Display name, 1–200 characters.
    pub name: String,
    /// Your system's id for this organisation (e.g. `cld-1234`); unique within your tenant.
    #[serde(default)]
    pub external_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganisation {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// A new external id, or null to remove it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, nullable)]
    pub external_id: Option<Option<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct OrganisationView {
    pub id: String,
    pub name: String,
    pub external_id: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub updated_at: String,
}

impl From<Organisation> for OrganisationView {
    fn from(org: Organisation) -> Self {
        Self {
            id: org.id,
            name: org.name,
            external_id: org.external_id,
            created_at: org.created_at.to_rfc3339(),
            updated_at: org.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    pub email: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub organisation_id: String,
    pub name: String,
    pub email: String,
    pub created_at: String,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            organisation_id: user.organisation_id,
            name: user.name,
            email: user.email,
            created_at: user.created_at.to_rfc3339(),
        }
    }
}

fn external_id(value: Option<String>) -> Result<Option<String>, ApiError> {
    Ok(value.map(|v| ExternalId::parse("external_id", &v)).transpose()?.map(ExternalId::into_inner))
}

/// Loads an organisation of this tenant; ids of other tenants are simply not found.
async fn load(state: &AppState, tenant_id: &str, id: &str) -> Result<Organisation, ApiError> {
    if !id::is_well_formed("org", id) {
        return Err(ApiError::not_found("organisation"));
    }
    state.store.organisation(tenant_id, id).await?.ok_or_else(|| ApiError::not_found("organisation"))
}

/// Create an organisation.
#[utoipa::path(post, path = "/v1/organisations", tag = "organisations", request_body = CreateOrganisation,
    responses(
        (status = 201, body = OrganisationView),
        (status = 409, description = "external_id already used by another organisation of this tenant", body = ErrorBody),
        (status = 422, description = "invalid field", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    ApiJson(body): ApiJson<CreateOrganisation>,
) -> Result<(StatusCode, Json<OrganisationView>), ApiError> {
    let name = OrganisationName::parse("name", &body.name)?;
    let now = state.clock.now();
    let org = Organisation {
        id: id::generate("org", now.as_millis()),
        tenant_id: tenant.id,
        name: name.into_inner(),
        external_id: external_id(body.external_id)?,
        created_at: now,
        updated_at: now,
    };
    state.store.create_organisation(&org).await?;
    Ok((StatusCode::CREATED, Json(org.into())))
}

/// List organisations, oldest first.
#[utoipa::path(get, path = "/v1/organisations", tag = "organisations", params(PageParams),
    responses((status = 200, body = Page<OrganisationView>)))]
pub async fn list(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<OrganisationView>>, ApiError> {
    let (after, limit) = page.validate("org")?;
    let rows = state.store.list_organisations(&tenant.id, after, limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |o| o.id.clone(), Into::into)))
}

/// Get one organisation.
#[utoipa::path(get, path = "/v1/organisations/{id}", tag = "organisations",
    responses((status = 200, body = OrganisationView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
) -> Result<Json<OrganisationView>, ApiError> {
    Ok(Json(load(&state, &tenant.id, &id).await?.into()))
}

/// Change an organisation's name or external id. Absent fields are left as they are.
#[utoipa::path(patch, path = "/v1/organisations/{id}", tag = "organisations", request_body = UpdateOrganisation,
    responses((status = 200, body = OrganisationView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateOrganisation>,
) -> Result<Json<OrganisationView>, ApiError> {
    let mut org = load(&state, &tenant.id, &id).await?;
    let before = org.clone();
    match body.name {
        Some(Some(name)) => org.name = OrganisationName::parse("name", &name)?.into_inner(),
        Some(None) => {
            return Err(ApiError::invalid("`name` cannot be null; leave it out to keep the current name"));
        }
        None => {}
    }
    if let Some(value) = body.external_id {
        org.external_id = external_id(value)?;
    }
    if org == before {
        return Ok(Json(org.into()));
    }
    org.updated_at = state.clock.now();
    if !state.store.update_organisation(&org).await? {
        return Err(ApiError::not_found("organisation"));
    }
    Ok(Json(org.into()))
}

/// Delete an organisation with its users and connections (their grants are revoked at the
/// provider where it can be).
#[utoipa::path(delete, path = "/v1/organisations/{id}", tag = "organisations",
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    load(&state, &tenant.id, &id).await?;
    // Its connections go with it: revoke their grants first, as deleting a connection does.
    let filter =
        ledgerlink_store::ConnectionFilter { organisation_id: Some(id.clone()), ..Default::default() };
    let mut after: Option<String> = None;
    loop {
        let page = state.store.list_connections(&tenant.id, &filter, after.as_deref(), 200).await?;
        for conn in &page {
            crate::connections::revoke(&state, conn).await;
        }
        match page.last() {
            Some(last) if page.len() == 200 => after = Some(last.id.clone()),
            _ => break,
        }
    }
    if !state.store.delete_organisation(&tenant.id, &id).await? {
        return Err(ApiError::not_found("organisation"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Add a person to contact when one of the organisation's connections breaks.
#[utoipa::path(post, path = "/v1/organisations/{id}/users", tag = "organisations", request_body = CreateUser,
    responses((status = 201, body = UserView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn add_user(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let org = load(&state, &tenant.id, &id).await?;
    let name = PersonName::parse("name", &body.name)?;
    let email = Email::parse("email", &body.email)?;
    let now = state.clock.now();
    let user = User {
        id: id::generate("usr", now.as_millis()),
        tenant_id: tenant.id,
        organisation_id: org.id,
        name: name.into_inner(),
        email: email.as_str().to_owned(),
        created_at: now,
    };
    state.store.add_user(&user).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// List an organisation's users.
#[utoipa::path(get, path = "/v1/organisations/{id}/users", tag = "organisations", params(PageParams),
    responses((status = 200, body = Page<UserView>), (status = 404, body = ErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Page<UserView>>, ApiError> {
    let org = load(&state, &tenant.id, &id).await?;
    let (after, limit) = page.validate("usr")?;
    let rows = state.store.list_users(&tenant.id, &org.id, after, limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |u| u.id.clone(), Into::into)))
}

/// Remove a user from an organisation.
#[utoipa::path(delete, path = "/v1/organisations/{id}/users/{user_id}", tag = "organisations",
    responses((status = 204, description = "removed"), (status = 404, body = ErrorBody)))]
pub async fn remove_user(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let org = load(&state, &tenant.id, &id).await?;
    if !state.store.remove_user(&tenant.id, &org.id, &user_id).await? {
        return Err(ApiError::not_found("user"));
    }
    Ok(StatusCode::NO_CONTENT)
}
