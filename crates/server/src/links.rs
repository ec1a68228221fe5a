//! Signed reconnect links for alert emails: `{public_url}/reconnect/{connection_id}?expires=…&sig=…`.
//!
//! Opening one starts a fresh authorisation of that connection and redirects to the provider,
//! without an API key: the HMAC over the connection id and expiry (keyed with a random secret
//! kept encrypted in the database, shared by every instance) is the authority. A link only ever
//! starts an authorisation of its own connection, and works for 7 days.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use ledgerlink_core::{SecretString, Timestamp};
use ledgerlink_store::Connection;
use rand::RngCore;
use sha2::Sha256;

use crate::AppState;

pub const LINK_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
const SETTING: &str = "reconnect_link_key";

/// The reconnect link for an email: the app's own page when `alerts.reconnect_url` is set,
/// otherwise a signed link to the hub.
pub async fn reconnect_link(state: &AppState, conn: &Connection, now: Timestamp) -> anyhow::Result<String> {
    if let Some(template) = &state.config.alerts.reconnect_url {
        return Ok(template
            .replace("{connection_id}", &conn.id)
            .replace("{organisation_id}", &conn.organisation_id));
    }
    let expires = now.saturating_add(LINK_LIFETIME).as_millis();
    let sig = signature(state, &conn.id, expires).await?;
    Ok(format!("{}/reconnect/{}?expires={expires}&sig={sig}", state.config.public_base(), conn.id))
}

/// Whether `sig` is this hub's signature of the link and the link has not expired.
pub async fn verify(state: &AppState, connection_id: &str, expires: i64, sig: &str) -> anyhow::Result<bool> {
    if expires < state.clock.now().as_millis() {
        return Ok(false);
    }
    let Ok(given) = URL_SAFE_NO_PAD.decode(sig) else { return Ok(false) };
    let mut mac = Hmac::<Sha256>::new_from_slice(key(state).await?.expose().as_bytes())?;
    mac.update(format!("{connection_id}.{expires}").as_bytes());
    Ok(mac.verify_slice(&given).is_ok())
}

async fn signature(state: &AppState, connection_id: &str, expires: i64) -> anyhow::Result<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key(state).await?.expose().as_bytes())?;
    mac.update(format!("{connection_id}.{expires}").as_bytes());
    Ok(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// The signing key, created on first use. Whichever instance writes it first wins.
async fn key(state: &AppState) -> anyhow::Result<SecretString> {
    let sealed = match state.store.setting(SETTING).await? {
        Some(sealed) => sealed,
        None => {
            let mut bytes = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut bytes);
            let fresh = SecretString::from(URL_SAFE_NO_PAD.encode(bytes));
            let sealed = state.keys.encrypt_secret(&fresh, SETTING);
            state.store.insert_setting_if_absent(SETTING, &sealed, state.clock.now()).await?
        }
    };
    Ok(state.keys.decrypt_secret(&sealed, SETTING)?)
}
