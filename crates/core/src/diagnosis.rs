//! Diagnoses: every failure the hub sees, said in the provider's terms and in a person's.
//!
//! A [`Diagnosis`] carries the provider's own status and code (for the developer) and a
//! one-line summary with an action a non-technical person can take. The summary, action,
//! category and retryability come from the [`knowledge`](crate::knowledge) base; what the
//! provider actually said (its status, code, message, and details such as a URL or a wait)
//! goes in the `http_status`, `provider_code` and `provider_message` fields.

use serde::{Deserialize, Serialize};

use crate::Provider;
use crate::knowledge::{self, Entry};

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
    /// A diagnosis from a knowledge-base entry and what the provider actually said. The links
    /// are always the connection's provider's, even for a provider-independent entry.
    pub fn from_entry(
        provider: Provider,
        entry: &Entry,
        http_status: Option<u16>,
        provider_code: Option<String>,
        provider_message: Option<String>,
    ) -> Self {
        Self {
            provider: provider.as_str().into(),
            http_status,
            provider_code,
            provider_message: provider_message.map(|m| truncate(&m, 500)),
            category: entry.category.into(),
            retryable: entry.retryable,
            summary: entry.summary.into(),
            action: entry.action.into(),
            links: links(provider),
        }
    }

    /// The diagnosis of an answer, by [`knowledge::lookup`]; `code` is reported as the
    /// provider's code.
    pub fn lookup(
        provider: Provider,
        http_status: Option<u16>,
        code: Option<&str>,
        provider_message: Option<String>,
    ) -> Self {
        let entry = knowledge::lookup(provider, http_status, code);
        Self::from_entry(provider, entry, http_status, code.map(Into::into), provider_message)
    }

    pub fn with_http(mut self, status: Option<u16>, code: Option<String>, message: Option<String>) -> Self {
        self.http_status = status;
        self.provider_code = code;
        self.provider_message = message.map(|m| truncate(&m, 500));
        self
    }

    /// The refresh token was refused (OAuth providers): the grant was revoked, expired, or
    /// replaced.
    pub fn invalid_grant(provider: Provider) -> Self {
        Self::lookup(provider, Some(400), Some("invalid_grant"), None)
    }

    /// The older of two links to the same account lost its grant to the newer one
    /// (`superseded_by_duplicate_link`), naming the other organisation and when it linked.
    pub fn superseded(provider: Provider, other_organisation: &str, linked_at: &str) -> Self {
        let entry = knowledge::lookup(provider, Some(400), Some("superseded_by_duplicate_link"));
        let fill = |text: &str| {
            text.replace(knowledge::PLACEHOLDER_OTHER_ORGANISATION, other_organisation)
                .replace(knowledge::PLACEHOLDER_LINKED_AT, linked_at)
        };
        let mut d = Self::from_entry(provider, entry, entry.http_status, Some("invalid_grant".into()), None);
        d.summary = fill(&d.summary);
        d.action = fill(&d.action);
        d
    }

    /// `duplicate_policy = "reject"` refused a link: `other_organisation` holds the account.
    pub fn duplicate_rejected(provider: Provider, other_organisation: &str) -> Self {
        let entry = knowledge::lookup(provider, Some(409), Some("duplicate_link"));
        let mut d = Self::from_entry(provider, entry, None, Some("duplicate_link".into()), None);
        d.summary = d.summary.replace(knowledge::PLACEHOLDER_OTHER_ORGANISATION, other_organisation);
        d.action = d.action.replace(knowledge::PLACEHOLDER_OTHER_ORGANISATION, other_organisation);
        d
    }

    /// The consent page came back with `error` instead of a code: usually the user pressed
    /// "Deny" (`access_denied`).
    pub fn access_denied(provider: Provider, error: &str, description: Option<&str>) -> Self {
        let entry = knowledge::find(provider, None, error)
            .unwrap_or_else(|| knowledge::lookup(provider, None, Some("access_denied")));
        Self::from_entry(provider, entry, None, Some(error.into()), description.map(Into::into))
    }

    /// The hub's own client id or secret was refused.
    pub fn invalid_client(provider: Provider, status: u16) -> Self {
        Self::lookup(provider, Some(status), Some("invalid_client"), None)
    }

    /// The provider's rate limit (Xero and QuickBooks 429, MYOB 403 `RateLimitError`). The wait
    /// goes in `provider_message`.
    pub fn rate_limited(provider: Provider, status: u16, retry_after_secs: Option<u64>) -> Self {
        let limits = || knowledge::table(provider).iter().filter(|e| e.category == "rate_limited");
        let entry = limits()
            .find(|e| e.http_status == Some(status) && e.code.starts_with("http_"))
            .or_else(|| limits().find(|e| e.http_status == Some(status)))
            .or_else(|| limits().next())
            .unwrap_or_else(|| knowledge::lookup(provider, Some(status), None));
        let wait = retry_after_secs.map(|s| format!("The provider asked to retry after {s} s."));
        Self::from_entry(provider, entry, Some(status), None, wait)
    }

    /// A 5xx from the provider.
    pub fn provider_unavailable(provider: Provider, status: u16, message: Option<String>) -> Self {
        let mut entry = knowledge::lookup(provider, Some(status), None);
        if !matches!(entry.category, "provider_unavailable" | "provider_error" | "timeout") {
            entry = knowledge::lookup(provider, Some(500), Some("http_5xx"));
        }
        Self::from_entry(provider, entry, Some(status), None, message)
    }

    /// An answer the hub did not expect to meet where it met it; the knowledge base still
    /// explains it if it can.
    pub fn unexpected(
        provider: Provider,
        status: Option<u16>,
        code: Option<String>,
        message: Option<String>,
    ) -> Self {
        let entry = knowledge::lookup(provider, status, code.as_deref());
        Self::from_entry(provider, entry, status, code, message)
    }

    /// A failure below HTTP; the URL goes in `provider_message`.
    pub fn network(provider: Provider, failure: NetworkFailure, url: &str) -> Self {
        let entry = knowledge::lookup(provider, None, Some(failure.code()));
        Self::from_entry(provider, entry, None, Some(failure.code().into()), Some(url.into()))
    }

    /// A qbXML `statusCode` other than 0 from Reckon Accounts.
    pub fn qbxml_status(code: i64, message: &str) -> Self {
        let entry = knowledge::find(Provider::Reckon, None, &code.to_string()).unwrap_or_else(|| {
            let name = match code {
                3170..=3180 => "record_in_use",
                0..=999 => "qbxml_warning",
                _ => "qbxml_error",
            };
            knowledge::lookup(Provider::Reckon, None, Some(name))
        });
        Self::from_entry(Provider::Reckon, entry, None, Some(code.to_string()), non_empty(message))
    }

    /// The Reckon Web Connector's `errorCode`/`errorMsg`, classified by the message's text.
    pub fn webconnector_error(error_code: &str, error_msg: &str) -> Self {
        let text = error_msg.to_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
        let name = if text.contains("company file")
            && has(&["mismatch", "does not match", "doesn't match", "different", "not the same"])
        {
            "company_file_mismatch"
        } else if has(&["beginsession", "begin session"]) && has(&["timeout", "timed out"]) {
            "begin_session_timeout"
        } else if has(&[
            "could not access",
            "cannot access",
            "can't access",
            "could not start",
            "unable to access",
        ]) {
            "could_not_access_company"
        } else {
            "webconnector_error"
        };
        let entry = knowledge::lookup(Provider::Reckon, None, Some(name));
        let code = non_empty(error_code).unwrap_or_else(|| name.into());
        Self::from_entry(Provider::Reckon, entry, None, Some(code), non_empty(error_msg))
    }

    /// A failed MYOB Acumatica login (`POST /entity/auth/login`), classified by the
    /// `exceptionMessage` of its error body.
    pub fn acumatica_login(status: u16, exception_message: &str) -> Self {
        let text = exception_message.to_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
        let name = if has(&["api login limit", "login limit"]) {
            Some("api_login_limit")
        } else if has(&[
            "company id cannot be determined",
            "company cannot be determined",
            "unknown company",
            "tenant",
        ]) {
            Some("unknown_tenant")
        } else if text.contains("branch") && has(&["access", "not found", "does not exist"]) {
            Some("branch_not_allowed")
        } else if has(&["locked"]) && !has(&["record", "document"]) {
            // A locked record in a data call is not a locked user.
            Some("account_locked")
        } else if text.contains("password") && has(&["expired"]) {
            Some("password_expired")
        } else if text.contains("password")
            && has(&[
                "must be changed",
                "must change",
                "change your password",
                "change the password",
                "change password",
            ])
        {
            Some("password_change_required")
        } else if has(&[
            "invalid credentials",
            "username or password",
            "user name or password",
            "login or password",
            "invalid login",
        ]) {
            Some("invalid_credentials")
        } else {
            None
        };
        let provider = Provider::Acumatica;
        let message = non_empty(exception_message);
        match name {
            Some(name) => {
                let entry = knowledge::lookup(provider, Some(status), Some(name));
                Self::from_entry(provider, entry, Some(status), Some(name.into()), message)
            }
            None => Self::lookup(provider, Some(status), None, message),
        }
    }
}

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
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

    #[test]
    fn an_invalid_grant_is_authorization_revoked_for_every_oauth_provider() {
        for p in Provider::OAUTH {
            let d = Diagnosis::invalid_grant(p);
            assert_eq!((d.category.as_str(), d.http_status), ("authorization_revoked", Some(400)), "{p}");
            assert!(d.action.contains(&format!("reconnect {}", p.display_name())), "{p}: {}", d.action);
        }
    }

    #[test]
    fn network_failures_keep_the_url_out_of_the_summary_and_the_links_of_the_connection() {
        let url = "https://myob.example/accountright";
        let d = Diagnosis::network(Provider::Myob, NetworkFailure::Dns, url);
        assert!(d.summary.contains("11001") && !d.summary.contains(url));
        assert_eq!(d.provider_message.as_deref(), Some(url));
        assert_eq!(d.links, links(Provider::Myob), "a shared entry still carries MYOB's links");
        let timeout = Diagnosis::network(Provider::QuickBooks, NetworkFailure::Timeout, url);
        assert_eq!((timeout.category.as_str(), timeout.retryable), ("timeout", true));
        assert!(timeout.action.contains("120 seconds"));
        let lost = Diagnosis::network(Provider::Xero, NetworkFailure::ConnectionLost, url);
        assert!(lost.retryable && lost.category == "network");
    }

    #[test]
    fn rate_limits_find_each_providers_own_entry_and_keep_the_wait_as_a_detail() {
        let xero = Diagnosis::rate_limited(Provider::Xero, 429, Some(42));
        assert_eq!((xero.category.as_str(), xero.retryable), ("rate_limited", true));
        assert!(!xero.summary.contains("42"));
        assert!(xero.provider_message.unwrap().contains("42 s"));
        let myob = Diagnosis::rate_limited(Provider::Myob, 403, None);
        assert_eq!(myob.category, "rate_limited", "MYOB's 403 RateLimitError, not a permission problem");
        assert!(myob.summary.contains("RateLimitError"));
    }

    #[test]
    fn outages_are_transient_whatever_the_5xx() {
        for status in [500, 502, 503, 504] {
            for p in Provider::ALL {
                let d = Diagnosis::provider_unavailable(p, status, None);
                assert!(d.retryable, "{p} {status}");
                assert_eq!(d.http_status, Some(status));
            }
        }
        assert_eq!(
            Diagnosis::provider_unavailable(Provider::Xero, 503, None).category,
            "provider_unavailable"
        );
        assert_eq!(Diagnosis::provider_unavailable(Provider::Myob, 504, None).category, "timeout");
    }

    #[test]
    fn a_denied_consent_says_the_user_did_not_authorise_and_other_errors_say_what_they_are() {
        let d = Diagnosis::access_denied(Provider::Myob, "access_denied", Some("The user denied"));
        assert_eq!(
            (d.category.as_str(), d.provider_code.as_deref()),
            ("access_denied", Some("access_denied"))
        );
        assert!(d.summary.contains("did not authorise"));
        assert_eq!(d.provider_message.as_deref(), Some("The user denied"));
        let d = Diagnosis::access_denied(Provider::Xero, "unauthorized_client", None);
        assert_eq!(d.category, "configuration_error");
    }

    #[test]
    fn the_hubs_refused_client_credentials_are_a_configuration_error() {
        let d = Diagnosis::invalid_client(Provider::QuickBooks, 401);
        assert_eq!((d.category.as_str(), d.http_status), ("configuration_error", Some(401)));
        assert_eq!(d.provider_code.as_deref(), Some("invalid_client"));
    }

    #[test]
    fn a_superseded_link_names_the_other_organisation_and_when_it_linked() {
        let d = Diagnosis::superseded(Provider::Xero, "Acme Ltd (cld-1234)", "2024-05-01T10:00:00Z");
        assert_eq!(d.category, "superseded_by_duplicate_link");
        assert!(!d.retryable);
        assert!(d.summary.contains("Acme Ltd (cld-1234)") && d.summary.contains("2024-05-01T10:00:00Z"));
        assert!(!d.summary.contains('{') && !d.action.contains('{'), "{} {}", d.summary, d.action);
        assert_eq!(d.provider_code.as_deref(), Some("invalid_grant"));
    }

    #[test]
    fn qbxml_status_codes_map_to_their_entries_and_ranges() {
        let cases = [
            (1, "no_match", false),
            (3100, "conflict", false),
            (3120, "not_found", false),
            (3140, "bad_request", false),
            (3170, "record_in_use", true),
            (3176, "record_in_use", true),
            (3180, "record_in_use", true),
            (3200, "conflict", false),
            (3391, "iterator_invalid", true),
            (530, "warning", false),
            (1000, "bad_request", false),
            (9999, "bad_request", false),
        ];
        for (code, category, retryable) in cases {
            let d = Diagnosis::qbxml_status(code, "the message");
            assert_eq!((d.category.as_str(), d.retryable), (category, retryable), "{code}");
            assert_eq!(d.provider, "reckon");
            assert_eq!(d.http_status, None);
            assert_eq!(d.provider_code, Some(code.to_string()));
            assert_eq!(d.provider_message.as_deref(), Some("the message"));
        }
        assert!(Diagnosis::qbxml_status(3200, "").summary.contains("edit sequence"));
        assert!(Diagnosis::qbxml_status(1001, "x").summary.contains("did not process"));
    }

    #[test]
    fn web_connector_errors_are_classified_by_their_message() {
        let cases = [
            ("0x80040408", "Could not access Reckon Accounts.", "could_not_access_company"),
            ("QBWC1048", "BeginSession timeout", "begin_session_timeout"),
            (
                "",
                "The company file open is different from the one this application was set up with.",
                "company_file_mismatch",
            ),
            ("42", "Something odd happened", "webconnector_error"),
        ];
        for (code, message, entry) in cases {
            let d = Diagnosis::webconnector_error(code, message);
            let expected = knowledge::lookup(Provider::Reckon, None, Some(entry));
            assert_eq!(d.summary, expected.summary, "{message}");
            assert_eq!(d.provider_message.as_deref(), Some(message));
            let code = if code.is_empty() { entry } else { code };
            assert_eq!(d.provider_code.as_deref(), Some(code));
        }
        assert!(Diagnosis::webconnector_error("1", "BeginSession timeout").retryable);
        assert!(!Diagnosis::webconnector_error("1", "company file mismatch").retryable);
    }

    #[test]
    fn acumatica_login_failures_are_classified_by_their_exception_message() {
        let cases = [
            ("Invalid credentials. Please try again.", "invalid_credentials", "credentials_rejected", false),
            (
                "Your account is locked. Please contact your system administrator.",
                "account_locked",
                "account_locked",
                false,
            ),
            ("API Login Limit", "api_login_limit", "api_user_limit_reached", true),
            ("Your password has expired.", "password_expired", "credentials_rejected", false),
            (
                "You must change your password before you can log in.",
                "password_change_required",
                "credentials_rejected",
                false,
            ),
        ];
        for (message, code, category, retryable) in cases {
            let d = Diagnosis::acumatica_login(500, message);
            assert_eq!(d.provider_code.as_deref(), Some(code), "{message}");
            assert_eq!((d.category.as_str(), d.retryable), (category, retryable), "{message}");
            assert_eq!(d.http_status, Some(500));
            assert_eq!(d.provider_message.as_deref(), Some(message));
        }
        let d = Diagnosis::acumatica_login(500, "Invalid credentials. Please try again.");
        assert!(d.action.contains("14-character"));
        let locked = Diagnosis::acumatica_login(500, "User is locked out");
        assert!(locked.action.contains("Users form"));
        // Unrecognised text falls back to the status: a server error, retried.
        let d = Diagnosis::acumatica_login(500, "Object reference not set to an instance of an object.");
        assert_eq!((d.category.as_str(), d.retryable), ("provider_error", true));
        assert_eq!(Diagnosis::acumatica_login(429, "").category, "rate_limited");
    }

    #[test]
    fn a_diagnosis_has_the_contracts_fields() {
        let v = serde_json::to_value(Diagnosis::lookup(Provider::Xero, Some(403), None, None)).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "action",
                "category",
                "http_status",
                "links",
                "provider",
                "provider_code",
                "provider_message",
                "retryable",
                "summary"
            ]
        );
        assert_eq!(v["category"], "insufficient_permission");
    }
}
