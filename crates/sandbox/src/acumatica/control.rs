//! The control API: users, the upgrade, fault switches and counters, under
//! `/_control/acumatica`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{ControlError, FaultUpdate, Instance, NewUser};

pub(super) fn routes() -> Router<Instance> {
    Router::new()
        .route("/_control/acumatica/faults", get(faults).post(set_faults).delete(clear_faults))
        .route("/_control/acumatica/stats", get(stats))
        .route("/_control/acumatica/users", get(users).post(create_user))
        .route("/_control/acumatica/users/{name}", get(user))
        .route("/_control/acumatica/users/{name}/unlock", post(unlock))
        .route("/_control/acumatica/users/{name}/lock", post(lock))
        .route("/_control/acumatica/users/{name}/password", post(set_password))
        .route("/_control/acumatica/users/{name}/expire-password", post(expire_password))
        .route("/_control/acumatica/upgrade", post(upgrade))
}

/// Parses a JSON body; an empty body reads as `{}`.
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ControlError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| ControlError::MalformedBody(e.to_string()))
}

async fn faults(State(instance): State<Instance>) -> Response {
    Json(instance.faults()).into_response()
}

async fn set_faults(State(instance): State<Instance>, body: Bytes) -> Result<Response, ControlError> {
    let update: FaultUpdate = parse_body(&body)?;
    Ok(Json(instance.set_faults(update)?).into_response())
}

async fn clear_faults(State(instance): State<Instance>) -> Response {
    instance.clear_faults();
    Json(instance.faults()).into_response()
}

async fn stats(State(instance): State<Instance>) -> Response {
    Json(instance.stats()).into_response()
}

async fn users(State(instance): State<Instance>) -> Response {
    Json(json!({"data": instance.users()})).into_response()
}

async fn user(State(instance): State<Instance>, Path(name): Path<String>) -> Result<Response, ControlError> {
    let user = instance.user(&name).ok_or(ControlError::UnknownUser(name))?;
    Ok(Json(user).into_response())
}

async fn create_user(State(instance): State<Instance>, body: Bytes) -> Result<Response, ControlError> {
    let new: NewUser = parse_body(&body)?;
    let user = instance.create_user(new)?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// The user's state after an action.
fn user_after(instance: &Instance, name: String) -> Result<Response, ControlError> {
    let user = instance.user(&name).ok_or(ControlError::UnknownUser(name))?;
    Ok(Json(user).into_response())
}

async fn unlock(
    State(instance): State<Instance>,
    Path(name): Path<String>,
) -> Result<Response, ControlError> {
    instance.unlock(&name)?;
    user_after(&instance, name)
}

async fn lock(State(instance): State<Instance>, Path(name): Path<String>) -> Result<Response, ControlError> {
    instance.lock(&name)?;
    user_after(&instance, name)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
    #[serde(default)]
    change_password_on_next_login: bool,
}

async fn set_password(
    State(instance): State<Instance>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ControlError> {
    let new: NewPassword = parse_body(&body)?;
    instance.set_password(&name, &new.password)?;
    if new.change_password_on_next_login {
        instance.require_password_change(&name)?;
    }
    user_after(&instance, name)
}

async fn expire_password(
    State(instance): State<Instance>,
    Path(name): Path<String>,
) -> Result<Response, ControlError> {
    instance.expire_password(&name)?;
    user_after(&instance, name)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpgradeRequest {
    version: Option<String>,
}

async fn upgrade(State(instance): State<Instance>, body: Bytes) -> Result<Response, ControlError> {
    let request: UpgradeRequest = parse_body(&body)?;
    let upgrade = match request.version {
        Some(version) => instance.upgrade_to(&version)?,
        None => instance.upgrade_report(),
    };
    Ok(Json(upgrade).into_response())
}
