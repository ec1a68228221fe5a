//! The provider simulators over real HTTP, as the hub would use them.

mod api;
mod faults;
mod myob;
mod quickbooks;
mod support;
mod xero;
