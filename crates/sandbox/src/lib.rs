//! Simulators that behave like the real services, so the hub's code that passes against them
//! works against the real ones: the Xero, QuickBooks Online and MYOB OAuth providers with their
//! token lifetimes, rotation, grace periods, error bodies and fault switches. They serve
//! `ledgerlink serve --sandbox`, the tests and the benchmarks.
//!
//! # Layout
//!
//! - [`providers`]: the [`providers::Simulator`] and its axum [`providers::router`].
//!   - `providers::state`: accounts, grants and tokens of one provider; the rotation rules.
//!   - `providers::oauth`: the code flow the providers share (consent page, token endpoint
//!     bookkeeping, faults and concurrency counting).
//!   - `providers::api`: what every data-API call shares (counting per account, the providers'
//!     limits, the `api_delay_ms` hold, the `api_error` fault).
//!   - `providers::{xero, quickbooks, myob}`: each provider's paths and JSON shapes.
//!   - `providers::control`: the `/_control/{provider}/…` API for faults and counters.
//!
//! - [`reckon`]: the Reckon Web Connector desktop client ([`reckon::Client`]) and a generated
//!   Reckon Accounts company file ([`reckon::CompanyFile`]) answering qbXML like the SDK;
//!   `ledgerlink simulate reckon` runs them ([`reckon::run_cli`]).
//!
//! - [`acumatica`]: a MYOB Acumatica instance ([`acumatica::Instance`]) with password logins,
//!   cookie sessions, lockouts, the licence's API limits and the 2023.1.3 password reset; its
//!   axum [`acumatica::router`] merges with the providers' and has its own control API.

pub mod acumatica;
pub mod providers;
pub mod reckon;
