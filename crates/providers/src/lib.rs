//! Clients for the accounting providers, and the mapping of their answers into
//! [`ledgerlink_core::Diagnosis`] values.
//!
//! # Layout
//!
//! - [`oauth`]: the OAuth 2.0 code flow, refresh and revocation for Xero, QuickBooks Online and
//!   MYOB, with each provider's quirks (client authentication, `expires_in` as a string,
//!   discovery of the linked account, the headers an app needs).
//! - [`error`]: [`ProviderError`], which says whether a failure is permanent, transient, rate
//!   limited, or of unknown outcome — the distinction the refresh engine lives by.
//! - [`classify`]: data-API answers read the way each provider writes its errors (QuickBooks
//!   faults, even inside a 200; Xero `ApiException`s and rate-limit headers; MYOB's 403
//!   `RateLimitError`; Acumatica's login failures) and turned into diagnoses.
//!
//! - [`acumatica`]: MYOB Acumatica's password sessions: log in, work, always log out; and the
//!   2023.1.3 password policy.

pub mod acumatica;
pub mod classify;
pub mod error;
pub mod oauth;

pub use acumatica::{AcumaticaClient, AcumaticaLogin, password_policy_failures};
pub use classify::{api_response, is_rate_limited};
pub use error::ProviderError;
pub use oauth::{CallbackParams, OAuthClient, OAuthEndpoints, Pkce, TokenSet};
