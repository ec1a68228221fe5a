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
//!
//! Providers, connection statuses, the diagnosis knowledge base and the refresh policy join this
//! crate with the OAuth and diagnosis issues.

pub mod crypto;
pub mod domain;
pub mod id;
pub mod secret;
pub mod time;

pub use secret::SecretString;
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
