//! Configuration: one TOML file, overridden by `LEDGERLINK_*` environment variables, overridden
//! by command-line flags.
//!
//! [`keys()`] is the single list of every key with its default and meaning. It drives the
//! environment overrides, `ledgerlink config example` and the documented example file, so the
//! documentation cannot drift from what the hub reads. Wrong values fail at start with the key,
//! where it was set, and what was expected.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ledgerlink_core::SecretString;
use ledgerlink_store::DatabaseUrl;
use serde::Deserialize;

/// One configuration key: its dotted path, default (as TOML, `None` for "unset"), and meaning.
pub struct Key {
    pub path: &'static str,
    pub default: Option<&'static str>,
    pub kind: Kind,
    pub doc: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Integer,
    StringList,
}

macro_rules! provider_keys {
    ($p:literal, $name:literal, authorize = $auth:literal, token = $token:literal, connections = $conn:literal,
     api = $api:literal, revoke = $revoke:literal, scopes = $scopes:literal) => {
        [
            Key {
                path: concat!("providers.", $p, ".client_id"),
                default: None,
                kind: Kind::String,
                doc: concat!("OAuth client id of your ", $name, " app."),
            },
            Key {
                path: concat!("providers.", $p, ".client_secret"),
                default: None,
                kind: Kind::String,
                doc: concat!(
                    "OAuth client secret of your ",
                    $name,
                    " app (prefer the environment variable)."
                ),
            },
            Key {
                path: concat!("providers.", $p, ".authorize_url"),
                default: Some(concat!("\"", $auth, "\"")),
                kind: Kind::String,
                doc: "Where users are sent to approve access.",
            },
            Key {
                path: concat!("providers.", $p, ".token_url"),
                default: Some(concat!("\"", $token, "\"")),
                kind: Kind::String,
                doc: "The OAuth token endpoint (code exchange and refresh).",
            },
            Key {
                path: concat!("providers.", $p, ".connections_url"),
                default: Some(concat!("\"", $conn, "\"")),
                kind: Kind::String,
                doc: "Where the hub discovers which account a grant reaches.",
            },
            Key {
                path: concat!("providers.", $p, ".api_base_url"),
                default: Some(concat!("\"", $api, "\"")),
                kind: Kind::String,
                doc: "Base URL of the accounting API.",
            },
            Key {
                path: concat!("providers.", $p, ".revoke_url"),
                default: Some(concat!("\"", $revoke, "\"")),
                kind: Kind::String,
                doc: "Where grants are revoked when a connection is deleted (empty: the provider has none).",
            },
            Key {
                path: concat!("providers.", $p, ".scopes"),
                default: Some(concat!("\"", $scopes, "\"")),
                kind: Kind::String,
                doc: "OAuth scopes to request, separated by spaces.",
            },
        ]
    };
}

const CORE_KEYS: &[Key] = &[
    Key {
        path: "listen",
        default: Some("\"127.0.0.1:8080\""),
        kind: Kind::String,
        doc: "Address and port the HTTP server binds.",
    },
    Key {
        path: "public_url",
        default: None,
        kind: Kind::String,
        doc: "The hub's address as users and providers reach it; redirect URIs and web connector postURLs are built from it. Default: http://<listen>.",
    },
    Key {
        path: "data_dir",
        default: Some("\"./ledgerlink-data\""),
        kind: Kind::String,
        doc: "Directory for the SQLite database and the generated encryption key file. Created if missing.",
    },
    Key {
        path: "database_url",
        default: None,
        kind: Kind::String,
        doc: "postgres://user:password@host/db to use PostgreSQL instead of SQLite (the default: data_dir/ledgerlink.db). Several hub instances may share one PostgreSQL.",
    },
    Key {
        path: "database_connect_timeout",
        default: Some("\"30s\""),
        kind: Kind::String,
        doc: "How long to keep retrying a PostgreSQL that is not up yet before giving up at start. A duration: \"500ms\", \"30s\", \"2m\".",
    },
    Key {
        path: "provider_timeout",
        default: Some("\"120s\""),
        kind: Kind::String,
        doc: "Timeout of every request to a provider. Enterprise proxies cut requests at 30-60 s; 120 s lets slow renewals finish.",
    },
    Key {
        path: "encryption_key",
        default: None,
        kind: Kind::String,
        doc: "32 random bytes in base64 (openssl rand -base64 32) that encrypt tokens and passwords at rest. Default: a key file created in data_dir on first run (mode 0600). All instances sharing a database need the same key.",
    },
    Key {
        path: "old_encryption_keys",
        default: Some("[]"),
        kind: Kind::StringList,
        doc: "Previous encryption keys, still used to decrypt values written before a rotation. In the environment: comma-separated.",
    },
    Key {
        path: "log_format",
        default: Some("\"text\""),
        kind: Kind::String,
        doc: "\"text\" for people, \"json\" (one object per line) for log shippers such as Splunk or Sumo Logic.",
    },
    Key {
        path: "log_level",
        default: Some("\"info\""),
        kind: Kind::String,
        doc: "Log filter: a level (error, warn, info, debug, trace) or tracing directives such as \"info,ledgerlink_server=debug\".",
    },
    Key {
        path: "max_body_size",
        default: Some("1048576"),
        kind: Kind::Integer,
        doc: "Largest accepted request body, in bytes; larger bodies get 413.",
    },
    Key {
        path: "shutdown_timeout",
        default: Some("\"30s\""),
        kind: Kind::String,
        doc: "On SIGTERM or Ctrl-C, how long in-flight requests may take to finish before the hub exits.",
    },
    Key {
        path: "oauth_state_ttl",
        default: Some("\"1h\""),
        kind: Kind::String,
        doc: "How long an authorize_url stays usable. Each one works once.",
    },
    Key {
        path: "refresh_concurrency",
        default: Some("64"),
        kind: Kind::Integer,
        doc: "How many token refreshes one hub process runs at the same time.",
    },
    Key {
        path: "duplicate_policy",
        default: Some("\"warn\""),
        kind: Kind::String,
        doc: "When an organisation links an account another organisation's connection already holds: \"warn\" links it, flags both connections and sends connection.duplicate_detected; \"reject\" refuses the link with 409 naming the other organisation.",
    },
];

const ALERT_KEYS: &[Key] = &[
    Key {
        path: "alerts.degraded_after",
        default: Some("\"1h\""),
        kind: Kind::String,
        doc: "A connection degraded (amber) for longer than this raises an alert (connection.still_degraded), once per incident.",
    },
    Key {
        path: "alerts.reconnect_url",
        default: None,
        kind: Kind::String,
        doc: "The reconnect link in alert emails: a URL of your app with {connection_id} and {organisation_id} placeholders. Default: a signed link to the hub itself, {public_url}/reconnect/{connection_id}?…, that starts a new authorisation.",
    },
    Key {
        path: "webconnector.max_attempts",
        default: Some("5"),
        kind: Kind::Integer,
        doc: "How many times a qbXML job is handed to the Reckon Web Connector (lost answers and errorCode replies count) before it fails with an alert.",
    },
    Key {
        path: "webconnector.max_restarts",
        default: Some("3"),
        kind: Kind::Integer,
        doc: "How many times an iterator query may start over (its iterator became invalid) before the job fails.",
    },
    Key {
        path: "webhooks.timeout",
        default: Some("\"15s\""),
        kind: Kind::String,
        doc: "How long a webhook receiver may take to answer one delivery before the attempt counts as failed.",
    },
    Key {
        path: "smtp.url",
        default: None,
        kind: Kind::String,
        doc: "The SMTP server for alert emails: smtp://user:password@host:587?tls=required (STARTTLS), smtps://user:password@host:465 (TLS), or smtp://host:25 (plain, local relays only). Unset: no emails.",
    },
    Key {
        path: "smtp.from",
        default: Some("\"ledgerlink <ledgerlink@localhost>\""),
        kind: Kind::String,
        doc: "The From address of alert emails.",
    },
    Key {
        path: "smtp.timeout",
        default: Some("\"30s\""),
        kind: Kind::String,
        doc: "How long one SMTP exchange may take.",
    },
];

const XERO_KEYS: [Key; 8] = provider_keys!(
    "xero",
    "Xero",
    authorize = "https://login.xero.com/identity/connect/authorize",
    token = "https://identity.xero.com/connect/token",
    connections = "https://api.xero.com/connections",
    api = "https://api.xero.com/api.xro/2.0",
    revoke = "https://identity.xero.com/connect/revocation",
    scopes =
        "openid profile email offline_access accounting.settings accounting.transactions accounting.contacts"
);
const QUICKBOOKS_KEYS: [Key; 8] = provider_keys!(
    "quickbooks",
    "QuickBooks Online",
    authorize = "https://appcenter.intuit.com/connect/oauth2",
    token = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
    connections = "https://accounts.platform.intuit.com/v1/openid_connect/userinfo",
    api = "https://quickbooks.api.intuit.com/v3",
    revoke = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
    scopes = "com.intuit.quickbooks.accounting"
);
const MYOB_KEYS: [Key; 8] = provider_keys!(
    "myob",
    "MYOB",
    authorize = "https://secure.myob.com/oauth2/account/authorize",
    token = "https://secure.myob.com/oauth2/v1/authorize",
    connections = "https://api.myob.com/accountright/",
    api = "https://api.myob.com/accountright",
    revoke = "",
    scopes = "CompanyFile"
);
const MYOB_API_KEY: Key = Key {
    path: "providers.myob.api_key",
    default: None,
    kind: Kind::String,
    doc: "MYOB developer key, sent as x-myobapi-key (defaults to the client id, which is what MYOB issues).",
};

/// Every configuration key, in documentation order.
pub fn keys() -> impl Iterator<Item = &'static Key> {
    CORE_KEYS
        .iter()
        .chain(ALERT_KEYS)
        .chain(&XERO_KEYS)
        .chain(&QUICKBOOKS_KEYS)
        .chain(&MYOB_KEYS)
        .chain(std::iter::once(&MYOB_API_KEY))
}

/// The environment variable that overrides a key: `providers.xero.client_id` →
/// `LEDGERLINK_PROVIDERS_XERO_CLIENT_ID`.
pub fn env_var(path: &str) -> String {
    format!("LEDGERLINK_{}", path.replace('.', "_").to_uppercase())
}

/// A commented TOML file listing every key with its default: `ledgerlink config example`.
pub fn example() -> String {
    let mut out = String::from(
        "# ledgerlink configuration: every key with its default.\n\
         # Generated by `ledgerlink config example`. Each key can also be set by the environment\n\
         # variable named after it (LEDGERLINK_ + the key path in capitals, dots as underscores),\n\
         # and some by flags (`ledgerlink serve --help`). Flags beat the environment, which beats this file.\n",
    );
    let mut section = "";
    for key in keys() {
        let (table, name) = key.path.rsplit_once('.').unwrap_or(("", key.path));
        if table != section {
            out.push_str(&format!("\n[{table}]\n"));
            section = table;
        }
        out.push('\n');
        for line in wrap(key.doc, 96) {
            out.push_str(&format!("# {line}\n"));
        }
        out.push_str(&format!("# Environment: {}\n", env_var(key.path)));
        match key.default {
            Some(default) => out.push_str(&format!("# {name} = {default}\n")),
            None => out.push_str(&format!("# {name} =\n")),
        }
    }
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("never empty");
        if !line.is_empty() && line.len() + word.len() + 1 > width {
            lines.push(word.to_owned());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The hub's settled configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub public_url: url::Url,
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub database_connect_timeout: Duration,
    pub provider_timeout: Duration,
    pub encryption_key: Option<SecretString>,
    pub old_encryption_keys: Vec<SecretString>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub max_body_size: usize,
    pub shutdown_timeout: Duration,
    pub oauth_state_ttl: Duration,
    pub refresh_concurrency: usize,
    pub duplicate_policy: DuplicatePolicy,
    pub alerts: AlertsConfig,
    pub webhooks: WebhooksConfig,
    pub webconnector: WebConnectorConfig,
    pub smtp: SmtpConfig,
    pub providers: Providers,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConnectorConfig {
    #[serde(deserialize_with = "concurrency")]
    pub max_attempts: usize,
    pub max_restarts: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DuplicatePolicy {
    Warn,
    Reject,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    #[serde(deserialize_with = "positive_duration")]
    pub degraded_after: Duration,
    #[serde(default, deserialize_with = "reconnect_template")]
    pub reconnect_url: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    #[serde(deserialize_with = "positive_duration")]
    pub timeout: Duration,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// May hold a password: never printed.
    #[serde(default)]
    pub url: Option<SecretString>,
    pub from: String,
    #[serde(deserialize_with = "positive_duration")]
    pub timeout: Duration,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Providers {
    pub xero: ProviderConfig,
    pub quickbooks: ProviderConfig,
    pub myob: ProviderConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    #[serde(deserialize_with = "http_url")]
    pub authorize_url: url::Url,
    #[serde(deserialize_with = "http_url")]
    pub token_url: url::Url,
    #[serde(deserialize_with = "http_url")]
    pub connections_url: url::Url,
    #[serde(deserialize_with = "http_url")]
    pub api_base_url: url::Url,
    #[serde(default, deserialize_with = "optional_http_url")]
    pub revoke_url: Option<url::Url>,
    #[serde(default)]
    pub api_key: Option<SecretString>,
    pub scopes: String,
}

/// The file as written, before defaults; unknown keys are errors (they are usually typos).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(deserialize_with = "socket_addr")]
    listen: SocketAddr,
    #[serde(default, deserialize_with = "optional_http_url")]
    public_url: Option<url::Url>,
    data_dir: PathBuf,
    #[serde(default, deserialize_with = "optional_database_url")]
    database_url: Option<DatabaseUrl>,
    #[serde(deserialize_with = "duration")]
    database_connect_timeout: Duration,
    #[serde(deserialize_with = "positive_duration")]
    provider_timeout: Duration,
    #[serde(default)]
    encryption_key: Option<SecretString>,
    old_encryption_keys: Vec<SecretString>,
    log_format: LogFormat,
    log_level: String,
    #[serde(deserialize_with = "body_size")]
    max_body_size: usize,
    #[serde(deserialize_with = "duration")]
    shutdown_timeout: Duration,
    #[serde(deserialize_with = "positive_duration")]
    oauth_state_ttl: Duration,
    #[serde(deserialize_with = "concurrency")]
    refresh_concurrency: usize,
    duplicate_policy: DuplicatePolicy,
    alerts: AlertsConfig,
    webhooks: WebhooksConfig,
    webconnector: WebConnectorConfig,
    smtp: SmtpConfig,
    providers: Providers,
}

/// Where configuration comes from, in increasing precedence after the defaults.
#[derive(Default, Debug, Clone)]
pub struct Sources {
    pub file: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    /// Flag values by key path, e.g. `("listen", "127.0.0.1:0")`.
    pub flags: Vec<(&'static str, String)>,
}

impl Sources {
    /// The process environment's `LEDGERLINK_*` variables.
    pub fn with_process_env(mut self) -> Self {
        self.env = std::env::vars().filter(|(k, _)| k.starts_with("LEDGERLINK_")).collect();
        self
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

impl Config {
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        let mut table = defaults();
        let mut origin: BTreeMap<String, String> = BTreeMap::new();

        if let Some(path) = &sources.file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
            let file: toml::Table = text
                .parse()
                .map_err(|e| ConfigError(format!("config file {} is not valid TOML: {e}", path.display())))?;
            merge(&mut table, file, "", &mut origin, &format!("in {}", path.display()));
        }
        for key in keys() {
            let var = env_var(key.path);
            if let Some(raw) = sources.env.get(&var) {
                let value = env_value(key, raw)
                    .map_err(|rule| ConfigError(format!("`{}` (set by {var}): {rule}", key.path)))?;
                set_path(&mut table, key.path, value);
                origin.insert(key.path.to_owned(), format!("set by {var}"));
            }
        }
        for (path, raw) in &sources.flags {
            set_path(&mut table, path, toml::Value::String(raw.clone()));
            origin.insert((*path).to_owned(), format!("set by --{}", path.replace('_', "-")));
        }

        let file: FileConfig = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            let place = origin.get(&path).map(|o| format!(" ({o})")).unwrap_or_default();
            let message = e.into_inner().to_string();
            let message = message.trim_start_matches("TOML parse error at line 1, column 1\n|\n").trim();
            if path == "." {
                ConfigError(message.to_owned())
            } else {
                ConfigError(format!("`{path}`{place}: {message}"))
            }
        })?;
        Ok(file.settle())
    }

    /// Unset `LEDGERLINK_*` variables that name no key: they are almost always typos.
    pub fn unknown_env_vars(sources: &Sources) -> Vec<String> {
        let known: Vec<String> =
            keys().map(|k| env_var(k.path)).chain(["LEDGERLINK_CONFIG".into()]).collect();
        sources
            .env
            .keys()
            .filter(|k| !known.contains(k) && !k.starts_with("LEDGERLINK_TEST_"))
            .cloned()
            .collect()
    }
}

impl FileConfig {
    fn settle(self) -> Config {
        let public_url = self.public_url.unwrap_or_else(|| {
            url::Url::parse(&format!("http://{}", self.listen)).expect("a socket address makes a valid URL")
        });
        let database_url = self.database_url.unwrap_or_else(|| DatabaseUrl::sqlite_in(&self.data_dir));
        Config {
            listen: self.listen,
            public_url,
            data_dir: self.data_dir,
            database_url,
            database_connect_timeout: self.database_connect_timeout,
            provider_timeout: self.provider_timeout,
            encryption_key: self.encryption_key,
            old_encryption_keys: self.old_encryption_keys,
            log_format: self.log_format,
            log_level: self.log_level,
            max_body_size: self.max_body_size,
            shutdown_timeout: self.shutdown_timeout,
            oauth_state_ttl: self.oauth_state_ttl,
            refresh_concurrency: self.refresh_concurrency,
            duplicate_policy: self.duplicate_policy,
            alerts: self.alerts,
            webhooks: self.webhooks,
            webconnector: self.webconnector,
            smtp: self.smtp,
            providers: self.providers,
        }
    }
}

impl Providers {
    pub fn get(&self, provider: ledgerlink_core::Provider) -> Option<&ProviderConfig> {
        match provider {
            ledgerlink_core::Provider::Xero => Some(&self.xero),
            ledgerlink_core::Provider::QuickBooks => Some(&self.quickbooks),
            ledgerlink_core::Provider::Myob => Some(&self.myob),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, provider: ledgerlink_core::Provider) -> Option<&mut ProviderConfig> {
        match provider {
            ledgerlink_core::Provider::Xero => Some(&mut self.xero),
            ledgerlink_core::Provider::QuickBooks => Some(&mut self.quickbooks),
            ledgerlink_core::Provider::Myob => Some(&mut self.myob),
            _ => None,
        }
    }
}

impl Config {
    /// The redirect URI registered with every provider.
    pub fn redirect_uri(&self) -> String {
        format!("{}/oauth/callback", self.public_base())
    }

    /// `public_url` without a trailing slash, ready for `format!("{}/path")`.
    pub fn public_base(&self) -> &str {
        self.public_url.as_str().trim_end_matches('/')
    }
}

fn defaults() -> toml::Table {
    let mut table = toml::Table::new();
    for key in keys() {
        if let Some(default) = key.default {
            let value: toml::Table = format!("v = {default}").parse().expect("defaults are valid TOML");
            let value = value["v"].clone();
            // An empty URL default means "none": leave it unset.
            if value.as_str() != Some("") {
                set_path(&mut table, key.path, value);
            }
        }
    }
    table
}

fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().expect("non-empty path");
    let mut current = table;
    for part in parts {
        current = current
            .entry(part)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .expect("configuration sections are tables");
    }
    current.insert(last.to_owned(), value);
}

fn merge(
    into: &mut toml::Table,
    from: toml::Table,
    prefix: &str,
    origin: &mut BTreeMap<String, String>,
    place: &str,
) {
    for (key, value) in from {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(incoming)) => {
                merge(existing, incoming, &path, origin, place);
            }
            (_, value) => {
                into.insert(key, value);
                origin.insert(path, place.to_owned());
            }
        }
    }
}

fn env_value(key: &Key, raw: &str) -> Result<toml::Value, String> {
    Ok(match key.kind {
        Kind::String => toml::Value::String(raw.to_owned()),
        Kind::Integer => toml::Value::Integer(
            raw.trim().parse().map_err(|_| format!("expected a whole number, got {raw:?}"))?,
        ),
        Kind::StringList => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.into()))
                .collect(),
        ),
    })
}

fn socket_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let raw = String::deserialize(d)?;
    raw.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "expected an address and port such as \"127.0.0.1:8080\", got {raw:?}"
        ))
    })
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let raw = String::deserialize(d)?;
    humantime::parse_duration(raw.trim()).map_err(|_| {
        serde::de::Error::custom(format!(
            "expected a duration such as \"120s\", \"2m\" or \"500ms\", got {raw:?}"
        ))
    })
}

/// A duration that must not be zero: a zero provider timeout fails every call, a zero state
/// lifetime makes every authorize_url dead on arrival.
fn positive_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let value = duration(d)?;
    if value.is_zero() {
        return Err(serde::de::Error::custom("expected a duration longer than zero, such as \"120s\""));
    }
    Ok(value)
}

fn body_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let value = i64::deserialize(d)?;
    if !(1024..=1 << 30).contains(&value) {
        return Err(serde::de::Error::custom(format!(
            "expected a size in bytes between 1024 and 1073741824, got {value}"
        )));
    }
    Ok(value as usize)
}

fn concurrency<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let value = i64::deserialize(d)?;
    if !(1..=4096).contains(&value) {
        return Err(serde::de::Error::custom(format!("expected a number between 1 and 4096, got {value}")));
    }
    Ok(value as usize)
}

fn parse_http_url(raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw.trim())
        .map_err(|e| format!("expected an http:// or https:// URL, got {raw:?} ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("expected an http:// or https:// URL with a host, got {raw:?}"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("expected a URL without ?query or #fragment, got {raw:?}"));
    }
    Ok(url)
}

fn http_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
    parse_http_url(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn optional_http_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<url::Url>, D::Error> {
    let raw = String::deserialize(d)?;
    if raw.trim().is_empty() {
        return Ok(None);
    }
    parse_http_url(&raw).map(Some).map_err(serde::de::Error::custom)
}

/// An http(s) URL once its `{connection_id}` and `{organisation_id}` placeholders are filled.
fn reconnect_template<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let raw = String::deserialize(d)?;
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let filled = raw
        .replace("{connection_id}", "con_00000000000000000000000000")
        .replace("{organisation_id}", "org_00000000000000000000000000");
    parse_http_url(&filled).map_err(serde::de::Error::custom)?;
    Ok(Some(raw.to_owned()))
}

fn optional_database_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DatabaseUrl>, D::Error> {
    let raw = String::deserialize(d)?;
    if raw.trim().is_empty() {
        return Ok(None);
    }
    DatabaseUrl::parse(raw.trim()).map(Some).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(
        file: Option<&str>,
        env: &[(&str, &str)],
        flags: &[(&'static str, &str)],
    ) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledgerlink.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        let sources = Sources {
            file: file.map(|_| path),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            flags: flags.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        };
        Config::load(&sources)
    }

    #[test]
    fn defaults_match_the_design() {
        let config = load(None, &[], &[]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.public_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(config.provider_timeout, Duration::from_secs(120));
        assert_eq!(config.database_url, DatabaseUrl::Sqlite("./ledgerlink-data/ledgerlink.db".into()));
        assert_eq!(config.providers.xero.token_url.as_str(), "https://identity.xero.com/connect/token");
        assert_eq!(config.providers.myob.revoke_url, None);
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let file = "listen = \"127.0.0.1:1000\"\nprovider_timeout = \"10s\"\ndata_dir = \"/tmp/a\"\n";
        let env = [("LEDGERLINK_LISTEN", "127.0.0.1:2000"), ("LEDGERLINK_PROVIDER_TIMEOUT", "20s")];
        let config = load(Some(file), &env, &[("listen", "127.0.0.1:3000")]).unwrap();
        assert_eq!(config.listen.port(), 3000);
        assert_eq!(config.provider_timeout, Duration::from_secs(20));
        assert_eq!(config.data_dir, PathBuf::from("/tmp/a"));
        assert_eq!(config.public_url.as_str(), "http://127.0.0.1:3000/");
    }

    #[test]
    fn nested_provider_keys_come_from_file_and_environment() {
        let file = "[providers.xero]\nclient_id = \"abc\"\ntoken_url = \"http://127.0.0.1:9/token\"\n";
        let env =
            [("LEDGERLINK_PROVIDERS_XERO_CLIENT_SECRET", "shh"), ("LEDGERLINK_OLD_ENCRYPTION_KEYS", "a, b")];
        let config = load(Some(file), &env, &[]).unwrap();
        assert_eq!(config.providers.xero.client_id.as_deref(), Some("abc"));
        assert_eq!(config.providers.xero.client_secret.as_ref().unwrap().expose(), "shh");
        assert_eq!(config.providers.xero.token_url.as_str(), "http://127.0.0.1:9/token");
        assert_eq!(
            config.providers.xero.authorize_url.as_str(),
            "https://login.xero.com/identity/connect/authorize"
        );
        assert_eq!(config.old_encryption_keys.len(), 2);
    }

    #[test]
    fn wrong_values_name_the_key_where_it_was_set_and_what_is_expected() {
        // (file, environment, words the error must contain)
        type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a [&'a str]);
        let cases: &[Case] = &[
            (
                Some("provider_timeout = \"soon\""),
                &[],
                &["`provider_timeout`", "ledgerlink.toml", "\"120s\"", "\"soon\""],
            ),
            (
                None,
                &[("LEDGERLINK_PROVIDER_TIMEOUT", "abc")],
                &["`provider_timeout`", "LEDGERLINK_PROVIDER_TIMEOUT", "duration"],
            ),
            (Some("listen = \"nope\""), &[], &["`listen`", "127.0.0.1:8080", "\"nope\""]),
            (Some("lisen = \"127.0.0.1:1\""), &[], &["lisen", "listen"]),
            (Some("public_url = \"ftp://x\""), &[], &["`public_url`", "http://"]),
            (Some("database_url = \"mysql://x\""), &[], &["`database_url`", "postgres://"]),
            (Some("max_body_size = 3"), &[], &["`max_body_size`", "bytes"]),
            (Some("provider_timeout = \"0s\""), &[], &["`provider_timeout`", "longer than zero"]),
            (None, &[("LEDGERLINK_OAUTH_STATE_TTL", "0ms")], &["`oauth_state_ttl`", "longer than zero"]),
            (
                None,
                &[("LEDGERLINK_MAX_BODY_SIZE", "big")],
                &["`max_body_size`", "LEDGERLINK_MAX_BODY_SIZE", "whole number"],
            ),
            (Some("log_format = \"xml\""), &[], &["`log_format`", "json"]),
            (Some("[providers.xero]\nclient_idd = \"x\""), &[], &["providers.xero", "client_idd"]),
            (Some("[providers.xero]\ntoken_url = \"not a url\""), &[], &["`providers.xero.token_url`"]),
            (Some("listen = "), &[], &["not valid TOML"]),
            (
                None,
                &[("LEDGERLINK_ALERTS_RECONNECT_URL", "app.example.com/{connection_id}")],
                &["`alerts.reconnect_url`", "LEDGERLINK_ALERTS_RECONNECT_URL", "http"],
            ),
            (Some("duplicate_policy = \"ignore\""), &[], &["`duplicate_policy`", "warn"]),
            (None, &[("LEDGERLINK_WEBCONNECTOR_MAX_ATTEMPTS", "0")], &["`webconnector.max_attempts`"]),
        ];
        for (file, env, expected) in cases {
            let err = load(*file, env, &[]).unwrap_err().to_string();
            for needle in *expected {
                assert!(err.contains(needle), "{file:?} {env:?}: {err:?} should mention {needle:?}");
            }
        }
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let sources = Sources { file: Some("/nonexistent/ledgerlink.toml".into()), ..Default::default() };
        let err = Config::load(&sources).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ledgerlink.toml"), "{err}");
    }

    #[test]
    fn every_key_is_read_by_the_hub_and_the_example_parses() {
        // Uncommenting every default in the example must give a valid configuration: this
        // proves each documented key exists with a valid default.
        let uncommented: String = example()
            .lines()
            .filter_map(|l| {
                let l = l.strip_prefix("# ").unwrap_or(l);
                (l.starts_with('[') || (l.contains(" = ") && !l.ends_with('=')) && !l.contains("Environment"))
                    .then(|| format!("{l}\n"))
            })
            .collect();
        let config = load(Some(&uncommented), &[], &[]).unwrap();
        assert_eq!(config.listen.port(), 8080);
        assert_eq!(keys().count(), CORE_KEYS.len() + ALERT_KEYS.len() + 25);
    }

    #[test]
    fn misspelt_environment_variables_are_reported() {
        let sources = Sources {
            env: [
                ("LEDGERLINK_LISTN".to_string(), "x".to_string()),
                ("LEDGERLINK_LISTEN".into(), "x".into()),
            ]
            .into(),
            ..Default::default()
        };
        assert_eq!(Config::unknown_env_vars(&sources), vec!["LEDGERLINK_LISTN".to_string()]);
    }

    #[test]
    fn configuration_never_prints_secrets() {
        let env = [
            ("LEDGERLINK_PROVIDERS_XERO_CLIENT_SECRET", "shh-secret"),
            ("LEDGERLINK_DATABASE_URL", "postgres://u:pw-secret@h/d"),
        ];
        let config = load(None, &env, &[]).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("shh-secret") && !printed.contains("pw-secret"), "{printed}");
    }
}
