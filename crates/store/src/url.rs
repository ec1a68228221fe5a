//! The database URL: which backend, and where. Printing it never shows a password.

use std::fmt;
use std::path::{Path, PathBuf};

use ledgerlink_core::SecretString;

#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A `postgres://` URL, which may hold a password.
    Postgres(SecretString),
}

impl DatabaseUrl {
    /// The embedded default: `ledgerlink.db` in the data directory.
    pub fn sqlite_in(data_dir: &Path) -> Self {
        Self::Sqlite(data_dir.join("ledgerlink.db"))
    }

    pub fn parse(value: &str) -> Result<Self, String> {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            let parsed = ::url::Url::parse(value).map_err(|e| format!("not a valid PostgreSQL URL: {e}"))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err("a PostgreSQL URL needs a host, e.g. postgres://user@localhost/ledgerlink".into());
            }
            Ok(Self::Postgres(SecretString::new(value)))
        } else if let Some(path) = value.strip_prefix("sqlite://").or_else(|| value.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err(
                    "a SQLite URL needs a file path, e.g. sqlite:///var/lib/ledgerlink/ledgerlink.db".into(),
                );
            }
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else {
            Err("expected a URL starting with postgres://, postgresql:// or sqlite://".into())
        }
    }

    /// The URL with any password replaced by `[redacted]`, for logs and errors.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(secret) => match ::url::Url::parse(secret.expose()) {
                Ok(mut url) => {
                    if url.password().is_some() {
                        let _ = url.set_password(Some("[redacted]"));
                    }
                    // Query parameters may carry a password too (`?password=`).
                    if url.query().is_some() {
                        url.set_query(Some("[redacted]"));
                    }
                    url.to_string()
                }
                Err(_) => "postgres://[unparseable URL]".into(),
            },
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_passwords_never_print() {
        let url = DatabaseUrl::parse("postgres://hub:s3cret@db.internal:5432/ledgerlink").unwrap();
        let shown = format!("{url} {url:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.internal:5432/ledgerlink"));
        let query = DatabaseUrl::parse("postgres://hub@db/ll?password=s3cret").unwrap();
        assert!(!query.to_string().contains("s3cret"));
    }

    #[test]
    fn sqlite_and_postgres_urls_are_told_apart() {
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/x.db").unwrap(),
            DatabaseUrl::Sqlite("/tmp/x.db".into())
        );
        assert!(matches!(DatabaseUrl::parse("postgresql://u@h/d").unwrap(), DatabaseUrl::Postgres(_)));
    }

    #[test]
    fn other_urls_are_refused_with_the_expected_forms() {
        let err = DatabaseUrl::parse("mysql://u@h/d").unwrap_err();
        assert!(err.contains("postgres://"), "{err}");
        assert!(DatabaseUrl::parse("sqlite://").is_err());
        assert!(DatabaseUrl::parse("postgres://").is_err());
    }
}
