//! What `serve --sandbox` adds to the hub, so a newcomer can follow the README without setup.
//!
//! Today that is a demo tenant, created once per database. Its API key is kept encrypted (like
//! every secret at rest) so each sandbox start can print it again. The provider simulators are
//! mounted here with the OAuth issue.

use anyhow::Context;
use ledgerlink_core::SecretString;
use ledgerlink_store::Tenant;

use crate::AppState;

const TENANT_ID_SETTING: &str = "sandbox.tenant_id";
const API_KEY_SETTING: &str = "sandbox.api_key";
const API_KEY_CONTEXT: &str = "setting:sandbox.api_key";

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
