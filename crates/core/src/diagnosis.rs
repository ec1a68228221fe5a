//! Diagnoses: every failure the hub sees, said in the provider's terms and in a person's.
//!
//! A [`Diagnosis`] carries the provider's own status and code (for the developer) and a
//! one-line summary with an action a non-technical person can take. The full knowledge base
//! of documented codes arrives with the diagnosis issue; the constructors here cover what the
//! refresh engine and the OAuth flow meet.

use serde::{Deserialize, Serialize};

use crate::Provider;

/// Where a person looks next: the provider's error reference, status page and support.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    pub errors: String,
    pub status: String,
    pub support: String,
}

/// The links of seed 000 (and the providers' current pages for the same things).
pub fn links(provider: Provider) -> Links {
    let (errors, status, support) = match provider {
        Provider::Xero => (
            "https://developer.xero.com/documentation/api/http-response-codes/",
            "https://status.developer.xero.com/",
            "https://developer.xero.com/contact-xero-developer-platform-support/",
        ),
        Provider::QuickBooks => (
            "https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes",
            "https://status.developer.intuit.com/",
            "https://help.developer.intuit.com/s/contactsupport",
        ),
        Provider::Myob => (
            "https://developer.myob.com/api/accountright/api-overview/error-codes/",
            "https://status.myob.com/",
            "https://developer.myob.com/contact/",
        ),
        Provider::Acumatica => (
            "https://help.acumatica.com/",
            "https://status.myob.com/",
            "https://www.myob.com/au/support/contact-us",
        ),
        Provider::Reckon => {
            ("https://help.reckon.com/", "https://status.reckon.com/", "mailto:apisupport@reckon.com")
        }
    };
    Links { errors: errors.into(), status: status.into(), support: support.into() }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub provider: String,
    pub http_status: Option<u16>,
    pub provider_code: Option<String>,
    pub provider_message: Option<String>,
    pub category: String,
    pub retryable: bool,
    pub summary: String,
    pub action: String,
    pub links: Links,
}

/// A failure below HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkFailure {
    /// The host name does not resolve (Windows socket error 11001).
    Dns,
    ConnectionRefused,
    Tls,
    Timeout,
    /// The connection dropped before a response arrived: the request may or may not have been
    /// processed.
    ConnectionLost,
}

impl NetworkFailure {
    pub fn code(self) -> &'static str {
        match self {
            Self::Dns => "dns",
            Self::ConnectionRefused => "connection_refused",
            Self::Tls => "tls",
            Self::Timeout => "timeout",
            Self::ConnectionLost => "connection_lost",
        }
    }
}

impl Diagnosis {
    fn new(provider: Provider, category: &str, retryable: bool, summary: String, action: String) -> Self {
        Self {
            provider: provider.as_str().into(),
            http_status: None,
            provider_code: None,
            provider_message: None,
            category: category.into(),
            retryable,
            summary,
            action,
            links: links(provider),
        }
    }

    pub fn with_http(mut self, status: Option<u16>, code: Option<String>, message: Option<String>) -> Self {
        self.http_status = status;
        self.provider_code = code;
        self.provider_message = message.map(|m| truncate(&m, 500));
        self
    }

    /// The refresh token was refused: the grant was revoked, expired, or replaced.
    pub fn invalid_grant(provider: Provider) -> Self {
        let name = provider.display_name();
        Self::new(
            provider,
            "authorization_revoked",
            false,
            format!(
                "{name} no longer accepts this connection's authorisation: it was revoked, expired \
                 after long disuse, or replaced by a newer link to the same account."
            ),
            format!("Ask a user of the organisation to reconnect {name} (use the reconnect link)."),
        )
        .with_http(Some(400), Some("invalid_grant".into()), None)
    }

    /// The user pressed "Deny" (or closed the consent page with an error).
    pub fn access_denied(provider: Provider, error: &str, description: Option<&str>) -> Self {
        let name = provider.display_name();
        Self::new(
            provider,
            "access_denied",
            false,
            format!("The user did not authorise access on the {name} consent page."),
            format!("Ask the user to connect {name} again and choose to allow access."),
        )
        .with_http(None, Some(error.into()), description.map(Into::into))
    }

    /// The hub's own client id or secret was refused.
    pub fn invalid_client(provider: Provider, status: u16) -> Self {
        let name = provider.display_name();
        Self::new(
            provider,
            "configuration_error",
            true,
            format!("{name} rejected the hub's client id or secret."),
            format!(
                "An operator must check providers.{}.client_id and client_secret in the hub's configuration; \
                 the connection resumes once they are right.",
                provider.as_str()
            ),
        )
        .with_http(Some(status), Some("invalid_client".into()), None)
    }

    pub fn rate_limited(provider: Provider, status: u16, retry_after_secs: Option<u64>) -> Self {
        let name = provider.display_name();
        let wait = retry_after_secs.map(|s| format!(" for {s} s")).unwrap_or_default();
        Self::new(
            provider,
            "rate_limited",
            true,
            format!("{name} is limiting the number of requests; the hub waits{wait} and retries."),
            "Nothing to do: the hub retries by itself. If this persists, reduce how often your app calls the API."
                .into(),
        )
        .with_http(Some(status), None, None)
    }

    /// A 5xx from the provider.
    pub fn provider_unavailable(provider: Provider, status: u16, message: Option<String>) -> Self {
        let name = provider.display_name();
        let links = links(provider);
        Self::new(
            provider,
            "provider_unavailable",
            true,
            format!("{name} answered HTTP {status}: it is down or in maintenance."),
            format!("Nothing to do: the hub retries by itself. {name}'s status page: {}", links.status),
        )
        .with_http(Some(status), None, message)
    }

    /// An answer the hub did not expect (a 4xx other than the known ones, or a body it could
    /// not read).
    pub fn unexpected(
        provider: Provider,
        status: Option<u16>,
        code: Option<String>,
        message: Option<String>,
    ) -> Self {
        let name = provider.display_name();
        Self::new(
            provider,
            "unexpected_response",
            true,
            format!("{name} gave an answer the hub did not expect."),
            format!("If this persists, contact {name} developer support with the details below."),
        )
        .with_http(status, code, message)
    }

    pub fn network(provider: Provider, failure: NetworkFailure, url: &str) -> Self {
        let name = provider.display_name();
        let (summary, action) = match failure {
            NetworkFailure::Dns => (
                format!("The host of {url} could not be found (socket error 11001)."),
                format!("Check the {name} API base URL in the hub's configuration, and the server's DNS."),
            ),
            NetworkFailure::ConnectionRefused => (
                format!("{url} refused the connection."),
                format!("Check the {name} URL in the hub's configuration and any firewall or proxy in between."),
            ),
            NetworkFailure::Tls => (
                format!("A secure (TLS) connection to {url} could not be established."),
                "Check the server's clock and certificate store, and any proxy that inspects TLS.".into(),
            ),
            NetworkFailure::Timeout => (
                format!("{url} did not answer in time."),
                "Nothing to do: the hub retries by itself. If it persists, check proxies that cut long requests."
                    .into(),
            ),
            NetworkFailure::ConnectionLost => (
                format!("The connection to {url} dropped before the answer arrived."),
                "Nothing to do: the hub retries with the same token, which the provider still honours.".into(),
            ),
        };
        let mut d = Self::new(provider, "network", !matches!(failure, NetworkFailure::Dns), summary, action);
        d.provider_code = Some(failure.code().into());
        d
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_grant_is_permanent_and_tells_a_person_to_reconnect() {
        let d = Diagnosis::invalid_grant(Provider::Xero);
        assert!(!d.retryable);
        assert_eq!(d.provider_code.as_deref(), Some("invalid_grant"));
        assert!(d.action.contains("reconnect Xero"));
        assert_eq!(d.links.status, "https://status.developer.xero.com/");
    }

    #[test]
    fn a_dns_failure_points_at_the_base_url() {
        let d = Diagnosis::network(Provider::Xero, NetworkFailure::Dns, "https://api.xero.com/api.xro/2.0/");
        assert!(d.summary.contains("11001") && d.action.contains("API base URL"));
        assert_eq!(d.provider_code.as_deref(), Some("dns"));
    }

    #[test]
    fn long_provider_messages_are_truncated() {
        let d = Diagnosis::unexpected(Provider::Myob, Some(418), None, Some("x".repeat(2000)));
        assert!(d.provider_message.unwrap().chars().count() <= 501);
    }
}
