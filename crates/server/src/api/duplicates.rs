//! Duplicate links (`GET /v1/duplicates`, and the `duplicate_of` and `warnings` of a
//! connection) and the diagnosis knowledge base (`GET /v1/diagnoses`).

use axum::Json;
use axum::extract::State;
use ledgerlink_core::Provider;
use ledgerlink_store::LinkedConnection;
use serde::Serialize;
use utoipa::ToSchema;

use super::connections::{ConnectionView, ExternalAccountView};
use super::error::ApiError;
use super::extract::AuthTenant;
use crate::AppState;

#[derive(Clone, Serialize, ToSchema)]
pub struct LinkView {
    #[serde(rename = "id")]
    pub connection_id: String,
    pub organisation_id: String,
    pub organisation_external_id: Option<String>,
    pub organisation_name: String,
    pub status: String,
    /// When this connection linked the account.
    pub linked_at: Option<String>,
}

impl LinkView {
    pub fn from_row(l: &LinkedConnection) -> Self {
        Self {
            connection_id: l.connection_id.clone(),
            organisation_id: l.organisation_id.clone(),
            organisation_external_id: l.organisation_external_id.clone(),
            organisation_name: l.organisation_name.clone(),
            status: l.status.clone(),
            linked_at: l.linked_at.map(|t| t.to_rfc3339()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DuplicateView {
    pub provider: String,
    pub external_account: ExternalAccountView,
    /// Every connection holding the account, oldest link first.
    pub connections: Vec<LinkView>,
}

#[derive(Serialize, ToSchema)]
pub struct DuplicateList {
    pub data: Vec<DuplicateView>,
}

/// External accounts linked by more than one organisation: only the newest link of most
/// providers keeps working, so the others fail with `superseded_by_duplicate_link`.
#[utoipa::path(get, path = "/v1/duplicates", tag = "connections",
    responses((status = 200, body = DuplicateList)))]
pub async fn list(
    State(state): State<AppState>,
    AuthTenant(tenant): AuthTenant,
) -> Result<Json<DuplicateList>, ApiError> {
    // Only OAuth grants replace each other; password logins to one instance are the shared-user
    // warning's business.
    let rows: Vec<LinkedConnection> = state
        .store
        .duplicates(&tenant.id)
        .await?
        .into_iter()
        .filter(|row| row.provider.parse::<Provider>().is_ok_and(Provider::is_oauth))
        .collect();
    let mut data: Vec<DuplicateView> = Vec::new();
    for row in &rows {
        match data.last_mut() {
            Some(group)
                if group.provider == row.provider && group.external_account.id == row.external_account_id =>
            {
                group.connections.push(LinkView::from_row(row));
            }
            _ => data.push(DuplicateView {
                provider: row.provider.clone(),
                external_account: ExternalAccountView {
                    id: row.external_account_id.clone(),
                    name: row.external_account_name.clone(),
                },
                connections: vec![LinkView::from_row(row)],
            }),
        }
    }
    Ok(Json(DuplicateList { data }))
}

/// Fills a connection's `duplicate_of` and its warning: other organisations' connections that
/// hold the same external account.
pub async fn annotate(state: &AppState, tenant_id: &str, view: &mut ConnectionView) -> Result<(), ApiError> {
    if view.provider == Provider::Acumatica.as_str() {
        return annotate_shared_login(state, tenant_id, view).await;
    }
    if !view.provider.parse::<Provider>().is_ok_and(Provider::is_oauth) {
        return Ok(());
    }
    let Some(account) = &view.external_account else { return Ok(()) };
    let others = state.store.linked_elsewhere(tenant_id, &view.provider, &account.id, &view.id).await?;
    let others: Vec<&LinkedConnection> =
        others.iter().filter(|o| o.organisation_id != view.organisation_id).collect();
    if others.is_empty() {
        return Ok(());
    }
    let provider = view.provider.parse::<Provider>().map(Provider::display_name).unwrap_or("the provider");
    let account_name = account.name.clone().unwrap_or_else(|| account.id.clone());
    for other in &others {
        view.warnings.push(format!(
            "The same {provider} account ({account_name}) is also linked by organisation {} ({}), connection {}, \
             since {}. {provider} keeps only the newest link working: the older one will be disconnected.",
            other.organisation_name,
            other.organisation_external_id.as_deref().unwrap_or(&other.organisation_id),
            other.connection_id,
            other.linked_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "an unknown time".into()),
        ));
    }
    view.duplicate_of = others.into_iter().map(LinkView::from_row).collect();
    Ok(())
}

/// MYOB advises one API user per integration: a password reset or a lockout of a shared user
/// breaks every connection that uses it, and their sessions count against one user's limits.
async fn annotate_shared_login(
    state: &AppState,
    tenant_id: &str,
    view: &mut ConnectionView,
) -> Result<(), ApiError> {
    let Some(login) = state.store.login(&view.id).await? else { return Ok(()) };
    let Some(key) = login.login_key else { return Ok(()) };
    let others = state.store.shared_logins(tenant_id, &key, &view.id).await?;
    if others.is_empty() {
        return Ok(());
    }
    let list: Vec<String> =
        others.iter().map(|(id, org)| format!("connection {id} of organisation {org}")).collect();
    view.warnings.push(format!(
        "The MYOB Acumatica API user {:?} on this instance also serves {}. Give each connection its own API \
         user: a password reset or a lockout of a shared user breaks all of them, and their sessions share \
         one user's limits.",
        login.username,
        list.join(", ")
    ));
    Ok(())
}

#[derive(Serialize, ToSchema)]
pub struct DiagnosisList {
    /// Every known failure: `{"provider", "http_status", "code", "category", "retryable",
    /// "summary", "action", "links"}`. Failures below HTTP have provider `any`.
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<&'static ledgerlink_core::knowledge::Entry>,
}

/// The diagnosis knowledge base: every failure the hub can name, with what it means and what a
/// person can do about it.
#[utoipa::path(get, path = "/v1/diagnoses", tag = "connections",
    responses((status = 200, body = DiagnosisList)))]
pub async fn diagnoses(AuthTenant(_tenant): AuthTenant) -> Json<DiagnosisList> {
    Json(DiagnosisList { data: ledgerlink_core::knowledge::entries().collect() })
}
