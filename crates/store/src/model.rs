//! Rows as Rust types. Validation happened before a value got here.

use ledgerlink_core::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organisation {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub external_id: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    pub organisation_id: String,
    pub name: String,
    pub email: String,
    pub created_at: Timestamp,
}
