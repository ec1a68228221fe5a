//! Validated inputs. Each type can only hold a value that passed its rules, so code past the
//! API edge never re-checks them.

use std::fmt;

/// An input that broke a rule; `field` is the JSON field name the caller used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {rule}")]
pub struct ValidationError {
    pub field: &'static str,
    pub rule: String,
}

impl ValidationError {
    pub fn new(field: &'static str, rule: impl Into<String>) -> Self {
        Self { field, rule: rule.into() }
    }
}

fn clean_text(field: &'static str, value: &str, max_chars: usize) -> Result<String, ValidationError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    let chars = trimmed.chars().count();
    if chars > max_chars {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max_chars} characters (got {chars})"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters such as newlines or tabs",
        ));
    }
    Ok(trimmed.to_owned())
}

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// Trims surrounding whitespace, then checks the rules. `field` names the input in
            /// the error.
            pub fn parse(field: &'static str, value: &str) -> Result<Self, ValidationError> {
                clean_text(field, value, $max).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_newtype!(
    /// An organisation's display name: 1–200 characters, no control characters.
    OrganisationName,
    200
);
text_newtype!(
    /// The id the tenant's own system gives an organisation (the seed's `group_id`, such as
    /// `cld-1234`): 1–200 characters, no control characters; unique within a tenant.
    ExternalId,
    200
);
text_newtype!(
    /// A person's name: 1–200 characters, no control characters.
    PersonName,
    200
);
text_newtype!(
    /// A tenant's name: 1–200 characters, no control characters.
    TenantName,
    200
);

/// An email address, checked for shape (one `@`, a dotted domain, no spaces) and stored as
/// given apart from a lower-cased domain. Deliverability is the mail server's business.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &'static str, value: &str) -> Result<Self, ValidationError> {
        let value = value.trim();
        let rule = |rule: &str| {
            Err(ValidationError::new(
                field,
                format!("must be an email address such as name@example.com: {rule}"),
            ))
        };
        if value.len() > 254 {
            return rule("it is longer than 254 characters");
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return rule("it contains whitespace");
        }
        let Some((local, domain)) = value.split_once('@') else {
            return rule("it has no `@`");
        };
        if local.is_empty() || domain.contains('@') {
            return rule("it needs exactly one `@` with a name before it");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 || labels.iter().any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-')) {
            return rule("the part after `@` is not a domain name");
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_must_not_be_blank() {
        assert_eq!(OrganisationName::parse("name", "  Harbour Bakery ").unwrap().as_str(), "Harbour Bakery");
        let err = OrganisationName::parse("name", "   ").unwrap_err();
        assert_eq!(err.to_string(), "`name` must not be empty");
    }

    #[test]
    fn names_keep_non_ascii_text_and_count_characters_not_bytes() {
        let name = "Café Müller 日本".to_owned();
        assert_eq!(OrganisationName::parse("name", &name).unwrap().as_str(), name);
        assert!(OrganisationName::parse("name", &"é".repeat(200)).is_ok());
        let err = OrganisationName::parse("name", &"é".repeat(201)).unwrap_err();
        assert!(err.rule.contains("at most 200"), "{err}");
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(ExternalId::parse("external_id", "cld-1\n234").is_err());
        assert!(ExternalId::parse("external_id", "cld-1234").is_ok());
    }

    #[test]
    fn emails_are_checked_for_shape() {
        assert_eq!(Email::parse("email", "Ana@Example.COM").unwrap().as_str(), "Ana@example.com");
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "a b@example.com",
            "a@b@example.com",
            "ana@-x.com",
        ] {
            let err = Email::parse("email", bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad}");
        }
    }
}
