//! What `serve --sandbox` adds to the hub, so a newcomer can follow the README without any
//! provider account.
//!
//! - A demo tenant, created once per database. Its API key is kept encrypted (like every secret
//!   at rest) so each sandbox start can print it again.
//! - The simulated Xero, QuickBooks Online and MYOB providers, mounted at `/sandbox`, with
//!   real token lifetimes, rotation and grace rules, a consent page, and fault switches under
//!   `/sandbox/_control/{provider}/…`. Every provider without its own `client_id` is pointed at
//!   them; configured providers are left alone.

use std::sync::Arc;

use anyhow::Context;
use ledgerlink_core::{Clock, SecretString};
use ledgerlink_sandbox::providers::{self as sim, Rules, Simulator};
use ledgerlink_store::Tenant;

use crate::AppState;
use crate::config::Config;

const TENANT_ID_SETTING: &str = "sandbox.tenant_id";
const API_KEY_SETTING: &str = "sandbox.api_key";
const API_KEY_CONTEXT: &str = "setting:sandbox.api_key";

/// Where the simulators are mounted.
pub const MOUNT: &str = "/sandbox";

/// Points every provider without a `client_id` at the simulators; returns the router to mount.
pub fn attach_simulators(config: &mut Config, clock: Arc<dyn Clock>) -> anyhow::Result<axum::Router> {
    let simulator = Simulator::new(clock.clone(), Rules::default());
    let endpoints = Simulator::endpoints(&format!("{}{MOUNT}", config.public_base()));
    for (provider, sim_provider) in [
        (ledgerlink_core::Provider::Xero, sim::Provider::Xero),
        (ledgerlink_core::Provider::QuickBooks, sim::Provider::QuickBooks),
        (ledgerlink_core::Provider::Myob, sim::Provider::Myob),
    ] {
        let settings = config.providers.get_mut(provider).expect("OAuth providers have settings");
        if settings.client_id.is_some() {
            continue;
        }
        let urls = endpoints.get(sim_provider);
        let parse = |u: &str| url::Url::parse(u).with_context(|| format!("sandbox URL {u}"));
        settings.client_id = Some(urls.client_id.clone());
        settings.client_secret = Some(SecretString::new(urls.client_secret.clone()));
        settings.authorize_url = parse(&urls.authorize_url)?;
        settings.token_url = parse(&urls.token_url)?;
        settings.connections_url = parse(&urls.connections_url)?;
        settings.api_base_url = parse(&urls.api_base_url)?;
        settings.revoke_url = urls.revoke_url.as_deref().map(parse).transpose()?;
    }
    let acumatica = ledgerlink_sandbox::acumatica::Instance::new(
        clock,
        ledgerlink_sandbox::acumatica::InstanceRules::default(),
    );
    // A demo API user, as an administrator would create one (an old-style password: the
    // instance starts before 2023.1.3, so `POST /sandbox/_control/acumatica/upgrade` replays the
    // seed's incident).
    acumatica
        .create_user(ledgerlink_sandbox::acumatica::NewUser::new(
            ACUMATICA_USER,
            ACUMATICA_PASSWORD,
            "Company",
        ))
        .map_err(|e| anyhow::anyhow!("sandbox Acumatica user: {e}"))?;
    let routes = sim::router(simulator).merge(ledgerlink_sandbox::acumatica::router(acumatica));
    Ok(axum::Router::new().nest(MOUNT, routes))
}

/// The sandbox's MYOB Acumatica API user (at `{public_url}/sandbox/acumatica`, tenant `Company`).
pub const ACUMATICA_USER: &str = "ledgerlink-api";
pub const ACUMATICA_PASSWORD: &str = "sandbox2022";

/// Returns the sandbox tenant and its API key, creating them on first use.
pub async fn ensure_demo_tenant(state: &AppState) -> anyhow::Result<(Tenant, SecretString)> {
    let store = &*state.store;
    if let (Some(id), Some(sealed)) =
        (store.setting(TENANT_ID_SETTING).await?, store.setting(API_KEY_SETTING).await?)
    {
        let tenant =
            store.tenant(&id).await?.context("the sandbox tenant recorded in settings no longer exists")?;
        let key = state
            .keys
            .decrypt_secret(&sealed, API_KEY_CONTEXT)
            .context("Failed to decrypt the sandbox API key")?;
        return Ok((tenant, key));
    }
    let (tenant, key) = crate::tenants::create(store, &*state.clock, "Sandbox").await?;
    let key = SecretString::new(key.expose());
    let now = state.clock.now();
    store
        .insert_setting_if_absent(API_KEY_SETTING, &state.keys.encrypt_secret(&key, API_KEY_CONTEXT), now)
        .await?;
    store.insert_setting_if_absent(TENANT_ID_SETTING, &tenant.id, now).await?;
    tracing::info!(tenant_id = %tenant.id, "created the sandbox tenant");
    Ok((tenant, key))
}
