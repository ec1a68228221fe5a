//! Creating tenants: the platforms that use the hub. Used by `ledgerlink tenant create` and
//! by the sandbox.

use ledgerlink_core::domain::TenantName;
use ledgerlink_core::secret::ApiKey;
use ledgerlink_core::{Clock, id};
use ledgerlink_store::{Store, Tenant};

/// Creates a tenant and returns it with its API key — the only time the key exists in clear.
pub async fn create(store: &dyn Store, clock: &dyn Clock, name: &str) -> anyhow::Result<(Tenant, ApiKey)> {
    let name = TenantName::parse("NAME", name)?;
    let now = clock.now();
    let tenant =
        Tenant { id: id::generate("ten", now.as_millis()), name: name.into_inner(), created_at: now };
    let key = ApiKey::generate();
    store.create_tenant(&tenant, &key.hash()).await?;
    Ok((tenant, key))
}
