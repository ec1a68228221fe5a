//! How a provider call failed, classified so callers never guess from strings.

use std::time::Duration;

use ledgerlink_core::diagnosis::NetworkFailure;
use ledgerlink_core::{Diagnosis, Provider};

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The refresh token or code was refused: permanent until a person reconnects.
    #[error("the provider refused the grant (invalid_grant)")]
    InvalidGrant { status: u16, description: Option<String> },
    /// The hub's client id or secret was refused: an operator must fix the configuration.
    #[error("the provider refused the hub's client credentials (HTTP {status})")]
    InvalidClient { status: u16 },
    #[error("rate limited (HTTP {status}), retry after {retry_after:?}")]
    RateLimited { status: u16, retry_after: Option<Duration> },
    /// 5xx: the provider is down or in maintenance.
    #[error("the provider is unavailable (HTTP {status})")]
    Unavailable { status: u16, message: Option<String> },
    #[error("network failure ({}) calling {url}", failure.code())]
    Network { failure: NetworkFailure, url: String },
    /// Any other answer the hub did not expect.
    #[error("unexpected answer from the provider (HTTP {status:?}): {message}")]
    Unexpected { status: Option<u16>, code: Option<String>, message: String },
}

impl ProviderError {
    /// Whether retrying the same request later can succeed without a person acting.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::InvalidGrant { .. })
    }

    /// Whether the request may have been processed even though no usable answer came back.
    /// A refresh in that state must be retried with the same refresh token.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Self::Network { failure, .. } => {
                matches!(failure, NetworkFailure::Timeout | NetworkFailure::ConnectionLost)
            }
            // A gateway error may come after the provider did the work.
            Self::Unavailable { status, .. } => matches!(status, 502 | 504),
            _ => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// What this failure means and what a person can do, from the knowledge base.
    pub fn diagnosis(&self, provider: Provider) -> Diagnosis {
        match self {
            Self::InvalidGrant { status, description } => {
                Diagnosis::lookup(provider, Some(*status), Some("invalid_grant"), description.clone())
            }
            Self::InvalidClient { status } => Diagnosis::invalid_client(provider, *status),
            Self::RateLimited { status, retry_after } => {
                Diagnosis::rate_limited(provider, *status, retry_after.map(|d| d.as_secs()))
            }
            Self::Unavailable { status, message } => {
                Diagnosis::provider_unavailable(provider, *status, message.clone())
            }
            Self::Network { failure, url } => Diagnosis::network(provider, *failure, url),
            Self::Unexpected { status, code, message } => {
                Diagnosis::unexpected(provider, *status, code.clone(), Some(message.clone()))
            }
        }
    }

    /// Classifies a transport error from reqwest.
    pub fn from_reqwest(error: &reqwest::Error, url: &str) -> Self {
        let chain = error_chain(error);
        let failure = if error.is_timeout() {
            NetworkFailure::Timeout
        } else if error.is_connect() {
            if chain.contains("dns error")
                || chain.contains("failed to lookup address")
                || chain.contains("name or service not known")
            {
                NetworkFailure::Dns
            } else if chain.contains("certificate") || chain.contains("tls") || chain.contains("handshake") {
                NetworkFailure::Tls
            } else {
                NetworkFailure::ConnectionRefused
            }
        } else {
            // The request went out and the answer did not come back whole.
            NetworkFailure::ConnectionLost
        };
        Self::Network { failure, url: url.to_owned() }
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out.to_lowercase()
}

/// `Retry-After` as seconds or an HTTP date, capped at an hour so a bad header cannot park a
/// connection for days.
pub fn parse_retry_after(value: Option<&str>, now: std::time::SystemTime) -> Option<Duration> {
    let value = value?.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_rfc3339_weak(value)
            .ok()
            .or_else(|| httpdate(value))
            .and_then(|at| at.duration_since(now).ok())
            .unwrap_or_default(),
    };
    Some(wait.min(Duration::from_secs(3600)))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate(value: &str) -> Option<std::time::SystemTime> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else { return None };
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = months.iter().position(|m| m == month)? + 1;
    let iso = format!("{year}-{month:02}-{day:0>2}T{time}Z");
    humantime::parse_rfc3339(&iso).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn retry_after_accepts_seconds_and_http_dates_and_is_capped() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after(Some("120"), now), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after(Some("Sun, 06 Nov 1994 08:50:37 GMT"), now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after(Some("999999"), now), Some(Duration::from_secs(3600)));
        assert_eq!(parse_retry_after(Some("soon"), SystemTime::now()), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(None, now), None);
    }

    #[test]
    fn only_lost_answers_have_an_unknown_outcome() {
        let lost = ProviderError::Network { failure: NetworkFailure::ConnectionLost, url: "u".into() };
        let refused = ProviderError::Network { failure: NetworkFailure::ConnectionRefused, url: "u".into() };
        assert!(lost.outcome_unknown());
        assert!(!refused.outcome_unknown());
        assert!(ProviderError::Unavailable { status: 504, message: None }.outcome_unknown());
        assert!(!ProviderError::Unavailable { status: 503, message: None }.outcome_unknown());
        assert!(ProviderError::InvalidGrant { status: 400, description: None }.is_permanent());
    }

    #[test]
    fn diagnoses_come_from_the_knowledge_base_with_the_answers_details() {
        let grant = ProviderError::InvalidGrant { status: 400, description: Some("token revoked".into()) };
        let d = grant.diagnosis(Provider::QuickBooks);
        assert_eq!((d.category.as_str(), d.http_status), ("authorization_revoked", Some(400)));
        assert_eq!(d.provider_message.as_deref(), Some("token revoked"));
        assert!(d.action.contains("reconnect QuickBooks Online"));
        let limited = ProviderError::RateLimited { status: 403, retry_after: Some(Duration::from_secs(9)) };
        let d = limited.diagnosis(Provider::Myob);
        assert_eq!(d.category, "rate_limited");
        assert!(d.provider_message.unwrap().contains("9 s"));
        let dns =
            ProviderError::Network { failure: NetworkFailure::Dns, url: "https://api.xero.com/x".into() };
        let d = dns.diagnosis(Provider::Xero);
        assert!(d.action.contains("https://api.xero.com/api.xro/2.0/"));
        assert_eq!(d.provider_message.as_deref(), Some("https://api.xero.com/x"));
        let odd = ProviderError::Unexpected {
            status: Some(400),
            code: Some("unauthorized_client".into()),
            message: String::new(),
        };
        assert_eq!(odd.diagnosis(Provider::Xero).category, "configuration_error");
    }

    #[tokio::test]
    async fn transport_failures_are_classified() {
        let client = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
        // Nothing listens on this port.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/token");
        let err = client.post(&url).send().await.unwrap_err();
        assert!(matches!(
            ProviderError::from_reqwest(&err, &url),
            ProviderError::Network { failure: NetworkFailure::ConnectionRefused, .. }
        ));
        let url = "http://no-such-host.invalid/token";
        let patient = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
        let err = patient.post(url).send().await.unwrap_err();
        assert!(matches!(
            ProviderError::from_reqwest(&err, url),
            ProviderError::Network { failure: NetworkFailure::Dns, .. }
        ));
        // A server that accepts and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let err = client.post(&url).send().await.unwrap_err();
        let classified = ProviderError::from_reqwest(&err, &url);
        assert!(classified.outcome_unknown(), "{classified:?}");
        drop(listener);
    }
}
