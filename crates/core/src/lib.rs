//! The domain of ledgerlink, free of I/O: what every other crate agrees on.
//!
//! # Layout
//!
//! - [`id`]: prefixed random identifiers (`ten_…`, `org_…`, `usr_…`).
//! - [`time`]: [`Timestamp`] and the injected [`Clock`], so expiry, leases and backoff are
//!   tested without sleeping.
//! - [`secret`]: [`SecretString`], which never prints itself, and API keys.
//! - [`crypto`]: the AEAD envelope that encrypts secrets at rest, with key ids for rotation.
//! - [`domain`]: parse-don't-validate inputs (organisation names, external ids, emails).
//! - [`provider`]: the accounting packages and their documented token rules.
//! - [`connection`]: connection statuses (green, amber, red) and disconnect reasons.
//! - [`diagnosis`]: failures said in the provider's terms and a person's.
//! - [`knowledge`]: the diagnosis knowledge base, one table of documented answers per provider.
//! - [`refresh`]: when to refresh a token and how long to back off.

pub mod connection;
pub mod crypto;
pub mod diagnosis;
pub mod domain;
pub mod id;
pub mod knowledge;
pub mod provider;
pub mod refresh;
pub mod secret;
pub mod time;

pub use connection::{ConnectionStatus, DisconnectReason, ExternalAccount};
pub use diagnosis::Diagnosis;
pub use provider::Provider;
pub use secret::SecretString;
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
