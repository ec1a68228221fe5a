//! Startup: turn a [`Config`] into an [`AppState`] — check the data directory, load or create
//! the encryption key, open and migrate the store, and confirm the key matches the database.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use ledgerlink_core::crypto::{EncryptionKey, KeyRing};
use ledgerlink_core::{Clock, SystemClock};
use ledgerlink_store::{ConnectOptions, DatabaseUrl};

use crate::{AppState, Config};

/// Held (with an exclusive lock) by the `serve` process that owns a SQLite database.
pub const LOCK_FILE: &str = "serve.lock";

/// In SQLite mode exactly one `serve` may run on a database: the refresh engine's single-flight
/// guarantee rests on it. The lock is released when the returned file is dropped, also when the
/// process dies.
pub fn lock_sqlite(config: &Config) -> anyhow::Result<Option<std::fs::File>> {
    let DatabaseUrl::Sqlite(path) = &config.database_url else { return Ok(None) };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(&config.data_dir);
    prepare_data_dir(dir)?;
    let lock_path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("Failed to open the lock file {}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another `ledgerlink serve` is already using {} (it holds {}). Stop it first; to run several hubs, \
             share a PostgreSQL database (database_url) instead of a SQLite file.",
            path.display(),
            lock_path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("Failed to lock {}", lock_path.display()))
        }
    }
}

/// The key file created in `data_dir` when no `encryption_key` is configured.
pub const KEY_FILE: &str = "encryption.key";

/// The setting that proves the configured key is the one this database's secrets use.
const KEY_CHECK_SETTING: &str = "encryption.check";
const KEY_CHECK_CONTEXT: &str = "setting:encryption.check";
const KEY_CHECK_PLAINTEXT: &[u8] = b"ledgerlink encryption key check";

pub async fn build(config: Config) -> anyhow::Result<AppState> {
    build_with_clock(config, Arc::new(SystemClock)).await
}

pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    prepare_data_dir(&config.data_dir)?;
    let keys = load_keys(&config)?;
    let options =
        ConnectOptions { connect_timeout: config.database_connect_timeout, ..ConnectOptions::default() };
    // A SQLite file configured outside data_dir needs its own directory checked.
    if let DatabaseUrl::Sqlite(path) = &config.database_url
        && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty() && *p != config.data_dir)
    {
        prepare_data_dir(parent)?;
    }
    let store = ledgerlink_store::connect(&config.database_url, &options)
        .await
        .with_context(|| format!("Failed to open the database {}", config.database_url))?;
    check_key_matches_database(&*store, &keys, &*clock).await?;
    let config = Arc::new(config);
    let keys = Arc::new(keys);
    let providers = Arc::new(crate::providers::ProviderRegistry::from_config(&config)?);
    let engine = Arc::new(crate::engine::RefreshEngine::new(
        Arc::clone(&store),
        Arc::clone(&keys),
        Arc::clone(&clock),
        Arc::clone(&providers),
        Arc::clone(&config),
    ));
    if let Some(url) = &config.smtp.url {
        let smtp = crate::mailer::MailerConfig {
            url: url.expose().to_owned(),
            from: config.smtp.from.clone(),
            timeout: config.smtp.timeout,
        };
        crate::mailer::Mailer::new(&smtp).map_err(|e| anyhow::anyhow!("configuration error: `smtp`: {e}"))?;
    }
    let metrics = Arc::clone(&engine.metrics);
    let proxy = Arc::new(crate::proxy::Proxy::new(config.provider_timeout)?);
    Ok(AppState { store, config, clock, keys, providers, engine, metrics, proxy, extra_routes: None })
}

/// Creates the directory if needed and proves it is writable, so a bad `data_dir` fails at
/// start with its path rather than later with a database error.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("data_dir {} exists but is not a directory", dir.display());
    }
    // Only the hub's user needs to read the database and the key file.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("Failed to create data_dir {}", dir.display()))?;
    let probe = dir.join(format!(".write-test-{}", std::process::id()));
    fs::write(&probe, b"ok").with_context(|| format!("data_dir {} is not writable", dir.display()))?;
    fs::remove_file(&probe).with_context(|| format!("data_dir {} is not writable", dir.display()))?;
    fs::read_dir(dir).with_context(|| format!("data_dir {} is not readable", dir.display()))?;
    Ok(())
}

fn load_keys(config: &Config) -> anyhow::Result<KeyRing> {
    let older = config
        .old_encryption_keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            EncryptionKey::from_base64(k.expose())
                .with_context(|| format!("old_encryption_keys[{i}] is invalid"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let primary = match &config.encryption_key {
        Some(key) => EncryptionKey::from_base64(key.expose()).context("encryption_key is invalid")?,
        None => key_from_file(&config.data_dir.join(KEY_FILE))?,
    };
    Ok(KeyRing::new(primary, older))
}

/// Reads the key file, creating it (mode 0600, never overwritten) on first run.
fn key_from_file(path: &PathBuf) -> anyhow::Result<EncryptionKey> {
    if !path.exists() {
        let (key, text) = EncryptionKey::generate();
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("Failed to create the key file {}", path.display()))?;
        file.write_all(format!("{}\n", text.expose()).as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("Failed to write the key file {}", path.display()))?;
        tracing::info!(path = %path.display(), key_id = key.id(), "created a new encryption key file; back it up with the database");
        return Ok(key);
    }
    let mode = fs::metadata(path)
        .with_context(|| format!("Failed to read {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "the key file is readable by other users; run chmod 600 on it");
    }
    let text = fs::read_to_string(path)
        .with_context(|| format!("Failed to read the key file {}", path.display()))?;
    EncryptionKey::from_base64(&text).with_context(|| format!("the key file {} is invalid", path.display()))
}

async fn check_key_matches_database(
    store: &dyn ledgerlink_store::Store,
    keys: &KeyRing,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let fresh = keys.encrypt(KEY_CHECK_PLAINTEXT, KEY_CHECK_CONTEXT);
    let stored = store.insert_setting_if_absent(KEY_CHECK_SETTING, &fresh, clock.now()).await?;
    match keys.decrypt(&stored, KEY_CHECK_CONTEXT) {
        Ok(plain) if plain == KEY_CHECK_PLAINTEXT => Ok(()),
        _ => {
            let stored_id = stored.split('.').nth(1).unwrap_or("unknown");
            bail!(
                "the encryption key does not match this database: its secrets were encrypted with key id {stored_id}, \
                 but the configured key has id {}. Configure the original key (encryption_key, or the key file in \
                 data_dir), or list it in old_encryption_keys when rotating.",
                keys.primary_id()
            )
        }
    }
}
