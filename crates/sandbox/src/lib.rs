//! Simulators that behave like the real services: Xero, QuickBooks Online, MYOB and MYOB
//! Acumatica providers with their token lifetimes, rotation, grace periods and fault switches,
//! and the Reckon Web Connector desktop client with a fake company file.
//!
//! Empty for now: the OAuth issue brings the provider simulators that `serve --sandbox` mounts,
//! the Reckon issue the desktop client behind `ledgerlink simulate reckon`.
