//! Schema migrations. Each backend has its own SQL files (the dialects differ in types and
//! locking); both describe the same schema, and the same store test suite runs on both.
//!
//! The runner records applied versions in `schema_migrations`, applies each pending migration
//! in its own transaction, and refuses to run against a database that a newer ledgerlink has
//! migrated (an old binary must not write into a schema it does not know).

use crate::{Result, StoreError};

#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migrations {
    ($dir:literal: $($version:literal $name:literal),* $(,)?) => {
        &[$(Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../migrations/", $dir, "/", $name, ".sql")),
        }),*]
    };
}

pub(crate) const SQLITE: &[Migration] = migrations!("sqlite": 1 "0001_tenants_and_organisations", 2 "0002_connections", 3 "0003_lease_index",
        4 "0004_alerts",
        5 "0005_webconnector",
        6 "0006_password_logins");
pub(crate) const POSTGRES: &[Migration] = migrations!("postgres": 1 "0001_tenants_and_organisations", 2 "0002_connections", 3 "0003_lease_index",
        4 "0004_alerts",
        5 "0005_webconnector",
        6 "0006_password_logins");

pub(crate) const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

/// The migrations still to apply, or an error when the database is ahead of this build.
pub(crate) fn pending<'a>(known: &'a [Migration], applied: &[i64]) -> Result<Vec<&'a Migration>> {
    let newest_known = known.last().map_or(0, |m| m.version);
    if let Some(unknown) = applied.iter().find(|v| **v > newest_known) {
        return Err(StoreError::Migration(format!(
            "the database has schema version {unknown}, newer than this ledgerlink build knows \
             (up to {newest_known}); run the newer ledgerlink, or restore a matching backup"
        )));
    }
    Ok(known.iter().filter(|m| !applied.contains(&m.version)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_know_the_same_versions_in_order() {
        let versions = |ms: &[Migration]| ms.iter().map(|m| (m.version, m.name)).collect::<Vec<_>>();
        assert_eq!(versions(SQLITE), versions(POSTGRES));
        assert!(SQLITE.windows(2).all(|w| w[0].version < w[1].version));
    }

    #[test]
    fn a_database_ahead_of_this_build_is_refused() {
        let err = pending(SQLITE, &[1, 999]).unwrap_err();
        assert!(err.to_string().contains("999"), "{err}");
        assert!(pending(SQLITE, &[]).unwrap().len() == SQLITE.len());
    }
}
