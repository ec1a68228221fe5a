//! The diagnosis knowledge base: what each provider's documented answers mean, as data.
//!
//! One table per provider and one for failures below HTTP ([`NETWORK`], provider `"any"`). Each
//! [`Entry`] says, for a status and code, what happened (`summary`) and what a person who is
//! not a developer can do about it (`action`). [`lookup`] always finds an entry, falling back
//! from the exact code to the status, its class and finally a generic "unexpected answer", so
//! every failure the hub sees can be explained. The tables are served as they are at
//! `GET /v1/diagnoses`.
//!
//! Codes are the provider's own (`ValidationException`, QuickBooks fault `6240`, MYOB
//! `RateLimitError`, qbXML status `3200`) where it has one. Otherwise they are the hub's names:
//! `http_<status>` for "any answer with this status", `http_4xx`/`http_5xx` for the class, and
//! snake_case names for conditions the hub recognises from text (`account_locked`,
//! `begin_session_timeout`).
//!
//! Sources: the providers' error references (linked from each diagnosis), Xero's rate-limit
//! guide, and the seeds (Xero's response-code table of seed 001, socket error 11001, the
//! 120-second timeouts of seed 000, MYOB Acumatica's 2023.1.3 password policy of seed 002).

use serde::Serialize;

use crate::Provider;
use crate::diagnosis::{Links, links};

/// One documented answer and what it means.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    /// `xero`, `quickbooks`, `myob`, `acumatica`, `reckon`, or `any` for network failures.
    pub provider: &'static str,
    /// The HTTP status the answer comes with, when there is one.
    pub http_status: Option<u16>,
    pub code: &'static str,
    /// One of [`CATEGORIES`]. The categories that need a person double as disconnect reasons.
    pub category: &'static str,
    /// Whether the same request can succeed later without anyone acting.
    pub retryable: bool,
    /// What happened, in one sentence.
    pub summary: &'static str,
    /// What a person (not a developer) can do about it.
    pub action: &'static str,
}

impl Entry {
    /// The provider this entry belongs to; `None` for provider-independent (network) entries.
    pub fn provider(&self) -> Option<Provider> {
        self.provider.parse().ok()
    }
}

/// The serialised form of an entry (`GET /v1/diagnoses`), with the provider's links.
#[derive(Serialize)]
struct EntryView<'a> {
    provider: &'a str,
    http_status: Option<u16>,
    code: &'a str,
    category: &'a str,
    retryable: bool,
    summary: &'a str,
    action: &'a str,
    links: Option<Links>,
}

impl Serialize for Entry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        EntryView {
            provider: self.provider,
            http_status: self.http_status,
            code: self.code,
            category: self.category,
            retryable: self.retryable,
            summary: self.summary,
            action: self.action,
            links: self.provider().map(links),
        }
        .serialize(serializer)
    }
}

/// Every category an entry may have.
pub const CATEGORIES: &[&str] = &[
    // A person must act; these double as the connection's disconnect reason.
    "authorization_revoked",
    "refresh_token_expired",
    "superseded_by_duplicate_link",
    // A second link refused by `duplicate_policy = "reject"`.
    "duplicate_link",
    "insufficient_permission",
    "credentials_rejected",
    "account_locked",
    "api_user_limit_reached",
    "configuration_error",
    "subscription_changed",
    // Transient: the hub retries by itself.
    "rate_limited",
    "provider_unavailable",
    "provider_error",
    "network",
    "timeout",
    "token_expired",
    "session_expired",
    "record_in_use",
    "iterator_invalid",
    "not_processed",
    // About one request rather than the connection.
    "bad_request",
    "not_found",
    "conflict",
    "precondition_failed",
    "no_match",
    "warning",
    // The consent page.
    "access_denied",
    "unexpected_response",
];

/// The code of each provider's catch-all entry.
pub const UNEXPECTED: &str = "unexpected_response";

/// `{other_organisation}` and `{linked_at}` in the `superseded_by_duplicate_link` entries.
pub const PLACEHOLDER_OTHER_ORGANISATION: &str = "{other_organisation}";
pub const PLACEHOLDER_LINKED_AT: &str = "{linked_at}";

macro_rules! table {
    ($provider:literal: $( ($status:expr, $code:literal, $category:literal, $retryable:expr, $summary:literal, $action:literal $(,)?) ),* $(,)?) => {
        &[ $( Entry {
            provider: $provider,
            http_status: $status,
            code: $code,
            category: $category,
            retryable: $retryable,
            summary: $summary,
            action: $action,
        } ),* ]
    };
}

/// Xero: the rows of seed 001's table, the `Detail` codes of its problem documents, the values
/// of `X-Rate-Limit-Problem`, and its token endpoint's OAuth errors.
pub static XERO: &[Entry] = table!["xero":
    (Some(400), "http_400", "bad_request", false,
        "Xero rejected the request as invalid (Bad Request): a validation exception occurred.",
        "Correct the details named in the message below and try again; if you cannot tell what is wrong, contact the app's support."),
    (Some(400), "ValidationException", "bad_request", false,
        "Xero refused the data because it failed validation (for example a missing contact, an unknown account code or a locked period).",
        "Correct the details named in the message below, in the app or in Xero, and try again."),
    (Some(400), "PostDataInvalidException", "bad_request", false,
        "Xero could not read the data the app sent (PostDataInvalidException).",
        "Contact the app's support with the details below; nobody in the organisation needs to change anything in Xero."),
    (Some(401), "http_401", "authorization_revoked", false,
        "Xero did not accept this connection's authorisation credentials.",
        "Ask a user of the organisation to reconnect Xero."),
    (Some(401), "AuthenticationUnsuccessful", "authorization_revoked", false,
        "Xero did not accept this connection's access token (AuthenticationUnsuccessful): the connection was removed or its authorisation is no longer valid.",
        "Ask a user of the organisation to reconnect Xero."),
    (Some(401), "TokenExpired", "token_expired", true,
        "The access token sent to Xero had expired (access tokens last 30 minutes).",
        "Nothing to do: the hub refreshes the token and tries again by itself."),
    (Some(403), "http_403", "insufficient_permission", false,
        "The Xero user who authorised this connection lacks the Standard or Adviser role, so Xero refuses access to this data.",
        "Ask a Xero user with the Standard or Adviser role (Business and accounting access) to reconnect Xero."),
    (Some(404), "http_404", "not_found", false,
        "The resource asked for cannot be found in Xero.",
        "Check that the record still exists in Xero; if testing the connection fails this way, ask a user of the organisation to reconnect Xero."),
    (Some(412), "http_412", "precondition_failed", false,
        "Xero refused the request because one or more conditions in its header fields were not met.",
        "Contact the app's support with the details below; nobody in the organisation needs to change anything in Xero."),
    (Some(429), "http_429", "rate_limited", true,
        "Xero's API rate limit for this organisation and app has been exceeded.",
        "Nothing to do: the hub waits as long as Xero asks and retries by itself."),
    (Some(429), "minute", "rate_limited", true,
        "This organisation made more than 60 Xero API calls in one minute through the app.",
        "Nothing to do: the hub waits as long as Xero asks and retries by itself."),
    (Some(429), "day", "rate_limited", true,
        "This organisation used up its 5,000 Xero API calls for the day through the app.",
        "Nothing to do: calls resume when Xero's daily limit resets; if this happens often, ask the app's support to sync less often."),
    (Some(429), "concurrent", "rate_limited", true,
        "More than 5 calls to this organisation's Xero were in progress at the same time.",
        "Nothing to do: the hub waits a moment and retries by itself."),
    (Some(429), "appminute", "rate_limited", true,
        "The app made more than 10,000 Xero API calls in one minute across all of its organisations.",
        "Nothing to do: the hub waits as long as Xero asks and retries by itself; if this happens often, contact the app's support."),
    (Some(500), "http_500", "provider_error", true,
        "Xero had an unhandled error while processing the request.",
        "Nothing to do: the hub retries by itself; if it persists, check Xero's status page or contact Xero developer support."),
    (Some(503), "http_503", "provider_unavailable", true,
        "Xero is temporarily unavailable or the organisation is offline, typically during a scheduled outage.",
        "Nothing to do: the hub retries by itself; Xero's status page shows planned outages."),
    (None, "dns", "network", false,
        "The host name of the Xero API could not be found (socket error 11001, host not found).",
        "Check that the API base URL is https://api.xero.com/api.xro/2.0/ and that this server can reach the internet."),
    (Some(400), "invalid_grant", "authorization_revoked", false,
        "Xero no longer accepts this connection's authorisation: it was revoked, expired after 60 days without use, or replaced by a newer link to the same organisation.",
        "Ask a user of the organisation to reconnect Xero."),
    (None, "refresh_token_expired", "refresh_token_expired", false,
        "Xero's authorisation for this connection expired because it went unused for 60 days.",
        "Ask a user of the organisation to reconnect Xero."),
    (Some(409), "duplicate_link", "duplicate_link", false,
        "This Xero organisation is already linked to {other_organisation}; the hub's duplicate policy refuses a second link, because Xero would keep only the newest one working.",
        "Use the existing link of {other_organisation}, or remove it there first and then connect Xero here again."),
    (Some(400), "superseded_by_duplicate_link", "superseded_by_duplicate_link", false,
        "Xero no longer accepts this connection because the same Xero organisation was linked to {other_organisation} at {linked_at}, and that newer link replaced this one's authorisation.",
        "Decide which organisation should hold this Xero link; to keep it here, ask a user of this organisation to reconnect Xero and remove the link from {other_organisation}."),
    (None, "invalid_client", "configuration_error", true,
        "Xero rejected the hub's client id or client secret (invalid_client).",
        "Contact the app's support: the Xero client id and secret in the hub's configuration must be corrected, after which the connection resumes by itself."),
    (None, "unauthorized_client", "configuration_error", false,
        "Xero does not allow the hub's app to use this kind of authorisation (unauthorized_client).",
        "Contact the app's support: the app's registration with Xero must be corrected."),
    (None, "access_denied", "access_denied", false,
        "The user did not authorise access on the Xero consent page.",
        "Ask the user to connect Xero again and choose Allow access."),
    (None, "http_4xx", "unexpected_response", false,
        "Xero refused the request for a reason the hub does not recognise.",
        "Contact the app's support with the details below; if it concerns the connection itself, ask a user of the organisation to reconnect Xero."),
    (None, "http_5xx", "provider_unavailable", true,
        "Xero answered with a server error: it is down or in maintenance.",
        "Nothing to do: the hub retries by itself; Xero's status page shows current incidents."),
    (None, "unexpected_response", "unexpected_response", true,
        "Xero gave an answer the hub did not expect.",
        "If this persists, contact the app's support or Xero developer support with the details below."),
];

/// QuickBooks Online: `Fault` codes, the HTTP statuses of its error reference, and OAuth errors.
pub static QUICKBOOKS: &[Entry] = table!["quickbooks":
    (Some(400), "http_400", "bad_request", false,
        "QuickBooks Online rejected the request as invalid.",
        "Correct the details named in the message below and try again; if you cannot tell what is wrong, contact the app's support."),
    (Some(401), "http_401", "authorization_revoked", false,
        "QuickBooks Online did not accept this connection's authorisation: it was revoked or is no longer valid.",
        "Ask a user of the organisation to reconnect QuickBooks Online."),
    (Some(401), "3200", "authorization_revoked", false,
        "QuickBooks Online did not accept this connection's access token (AuthenticationFailed, 3200): the connection was revoked or its authorisation is no longer valid.",
        "Ask a user of the organisation to reconnect QuickBooks Online."),
    (Some(401), "token_expired", "token_expired", true,
        "The access token sent to QuickBooks Online had expired (access tokens last one hour).",
        "Nothing to do: the hub refreshes the token and tries again by itself."),
    (Some(401), "120", "insufficient_permission", false,
        "QuickBooks Online refused access (Authorization Failure, 120): the user who connected the company no longer has access to it.",
        "Ask a current admin user of the QuickBooks Online company to reconnect QuickBooks Online."),
    (Some(403), "http_403", "insufficient_permission", false,
        "QuickBooks Online refused access to this resource.",
        "Ask an admin user of the QuickBooks Online company to reconnect QuickBooks Online; if it persists, contact the app's support."),
    (Some(403), "3100", "insufficient_permission", false,
        "QuickBooks Online refused the app access to this company (ApplicationAuthorizationFailed, 3100): the user who connected it may no longer be an admin, or the company is not the one authorised.",
        "Ask an admin user of the QuickBooks Online company to reconnect QuickBooks Online."),
    (Some(404), "http_404", "not_found", false,
        "The resource asked for cannot be found in QuickBooks Online.",
        "Check that the record still exists in QuickBooks Online; if testing the connection fails this way, ask a user of the organisation to reconnect QuickBooks Online."),
    (Some(400), "610", "not_found", false,
        "Something the request refers to was not found in QuickBooks Online or has been made inactive (Object Not Found, 610).",
        "In QuickBooks Online, make the customer, vendor, item or account named below active again (or choose another one), then try again."),
    (Some(400), "5010", "conflict", false,
        "The record was changed in QuickBooks Online after the app last read it (Stale Object Error, 5010).",
        "Nothing to change in QuickBooks Online: the app must read the record again and repeat the change; if it keeps happening, contact the app's support."),
    (Some(400), "6000", "bad_request", false,
        "QuickBooks Online refused the change because it breaks one of its business rules (6000).",
        "Correct the details named in the message below, in the app or in QuickBooks Online, and try again."),
    (Some(400), "6190", "subscription_changed", false,
        "QuickBooks Online refused the change because the company's subscription has ended, was cancelled or has a billing problem (Invalid Company Status, 6190).",
        "Ask an admin user of the company to renew or fix the QuickBooks Online subscription; the connection works again once it is active."),
    (Some(400), "6240", "conflict", false,
        "The name is already used by another customer, vendor or employee in QuickBooks Online (Duplicate Name Exists, 6240).",
        "Use a different name, or rename or reuse the existing record in QuickBooks Online, then try again."),
    (Some(200), "fault_in_200", "bad_request", false,
        "QuickBooks Online reported an error (a Fault) inside an otherwise successful HTTP 200 answer, so the request was not carried out.",
        "Check the message below; if you cannot tell what is wrong, contact the app's support with it."),
    (Some(429), "http_429", "rate_limited", true,
        "QuickBooks Online is throttling requests for this company: more than 500 a minute or more than 10 at once.",
        "Nothing to do: the hub waits and retries by itself."),
    (Some(429), "3001", "rate_limited", true,
        "QuickBooks Online is throttling requests for this company (ThrottleExceeded, 003001): more than 500 a minute or more than 10 at once.",
        "Nothing to do: the hub waits and retries by itself."),
    (Some(500), "http_500", "provider_error", true,
        "QuickBooks Online had an error while processing the request.",
        "Nothing to do: the hub retries by itself; if it persists, check the Intuit developer status page or contact Intuit developer support."),
    (Some(503), "http_503", "provider_unavailable", true,
        "QuickBooks Online is temporarily unavailable.",
        "Nothing to do: the hub retries by itself; the Intuit developer status page shows current incidents."),
    (Some(400), "invalid_grant", "authorization_revoked", false,
        "QuickBooks Online no longer accepts this connection's authorisation: it was revoked, expired after 100 days without use, or replaced by a newer link to the same company.",
        "Ask a user of the organisation to reconnect QuickBooks Online."),
    (None, "refresh_token_expired", "refresh_token_expired", false,
        "QuickBooks Online's authorisation for this connection expired because it went unused for 100 days.",
        "Ask a user of the organisation to reconnect QuickBooks Online."),
    (Some(409), "duplicate_link", "duplicate_link", false,
        "This QuickBooks Online company is already linked to {other_organisation}; the hub's duplicate policy refuses a second link, because QuickBooks Online would keep only the newest one working.",
        "Use the existing link of {other_organisation}, or remove it there first and then connect QuickBooks Online here again."),
    (Some(400), "superseded_by_duplicate_link", "superseded_by_duplicate_link", false,
        "QuickBooks Online no longer accepts this connection because the same company was linked to {other_organisation} at {linked_at}, and that newer link replaced this one's authorisation.",
        "Decide which organisation should hold this QuickBooks Online link; to keep it here, ask a user of this organisation to reconnect QuickBooks Online and remove the link from {other_organisation}."),
    (None, "invalid_client", "configuration_error", true,
        "QuickBooks Online rejected the hub's client id or client secret (invalid_client).",
        "Contact the app's support: the QuickBooks Online client id and secret in the hub's configuration must be corrected, after which the connection resumes by itself."),
    (None, "unauthorized_client", "configuration_error", false,
        "QuickBooks Online does not allow the hub's app to use this kind of authorisation (unauthorized_client).",
        "Contact the app's support: the app's registration with Intuit must be corrected."),
    (None, "access_denied", "access_denied", false,
        "The user did not authorise access on the QuickBooks Online consent page.",
        "Ask the user to connect QuickBooks Online again and choose Connect on the consent page."),
    (None, "http_4xx", "unexpected_response", false,
        "QuickBooks Online refused the request for a reason the hub does not recognise.",
        "Contact the app's support with the details below; if it concerns the connection itself, ask a user of the organisation to reconnect QuickBooks Online."),
    (None, "http_5xx", "provider_unavailable", true,
        "QuickBooks Online answered with a server error: it is down or in maintenance.",
        "Nothing to do: the hub retries by itself; the Intuit developer status page shows current incidents."),
    (None, "unexpected_response", "unexpected_response", true,
        "QuickBooks Online gave an answer the hub did not expect.",
        "If this persists, contact the app's support or Intuit developer support with the details below."),
];

/// MYOB AccountRight and MYOB Business: response codes and `Errors[].Name` values.
pub static MYOB: &[Entry] = table!["myob":
    (Some(400), "http_400", "bad_request", false,
        "MYOB did not accept the request: a value or a required header was missing or invalid.",
        "Correct the details named in the message below and try again; if you cannot tell what is wrong, contact the app's support."),
    (Some(401), "http_401", "authorization_revoked", false,
        "MYOB did not accept this connection: its authorisation was revoked, or the company file username and password are no longer accepted.",
        "Ask a user of the organisation to reconnect MYOB, signing in to the company file with a current username and password."),
    (Some(403), "http_403", "insufficient_permission", false,
        "MYOB refused access: the company file user lacks permission for this data, or the app's API key is not allowed.",
        "Ask an administrator of the company file to give the MYOB user access to this area, then reconnect MYOB; if it persists, contact the app's support."),
    (Some(403), "RateLimitError", "rate_limited", true,
        "MYOB is limiting the app's requests (RateLimitError): more than 8 a second, or the daily quota, was exceeded.",
        "Nothing to do: the hub waits and retries by itself; if this happens daily, contact the app's support."),
    (Some(404), "http_404", "not_found", false,
        "The resource asked for cannot be found in the MYOB company file.",
        "Check that the record still exists in MYOB; if testing the connection fails this way, ask a user of the organisation to reconnect MYOB."),
    (Some(409), "http_409", "conflict", false,
        "The record was changed in MYOB after the app last read it (its RowVersion no longer matches).",
        "Nothing to change in MYOB: the app must read the record again and repeat the change; if it keeps happening, contact the app's support."),
    (Some(410), "http_410", "subscription_changed", false,
        "The MYOB company file is no longer available where this connection expects it: it was removed, moved or replaced.",
        "Ask a user of the organisation to reconnect MYOB and choose the company file again."),
    (Some(418), "http_418", "subscription_changed", false,
        "The MYOB company file was upgraded (for example from Essentials to the new MYOB Business), so this connection no longer reaches it.",
        "Ask a user of the organisation to reconnect MYOB and choose the upgraded company file."),
    (Some(423), "http_423", "provider_unavailable", true,
        "The MYOB company file is locked while an upgrade is in progress.",
        "Nothing to do: the hub retries by itself once the upgrade has finished."),
    (Some(500), "http_500", "provider_error", true,
        "MYOB had an error while processing the request.",
        "Nothing to do: the hub retries by itself; if it persists, check MYOB's status page or contact MYOB developer support."),
    (Some(503), "http_503", "provider_unavailable", true,
        "MYOB is temporarily unavailable.",
        "Nothing to do: the hub retries by itself; MYOB's status page shows current incidents."),
    (Some(504), "http_504", "timeout", true,
        "MYOB gave up on the request after its 120-second limit (gateway timeout).",
        "Nothing to do: the hub retries by itself; if it keeps happening, contact the app's support."),
    (Some(400), "invalid_grant", "authorization_revoked", false,
        "MYOB no longer accepts this connection's authorisation: it was revoked, expired after a period without use, or replaced by a newer link to the same account.",
        "Ask a user of the organisation to reconnect MYOB."),
    (None, "refresh_token_expired", "refresh_token_expired", false,
        "MYOB's authorisation for this connection expired because it went unused for too long (about 7 days, which MYOB does not document).",
        "Ask a user of the organisation to reconnect MYOB."),
    (Some(409), "duplicate_link", "duplicate_link", false,
        "This MYOB company file is already linked to {other_organisation}; the hub's duplicate policy refuses a second link, because MYOB would keep only the newest one working.",
        "Use the existing link of {other_organisation}, or remove it there first and then connect MYOB here again."),
    (Some(400), "superseded_by_duplicate_link", "superseded_by_duplicate_link", false,
        "MYOB no longer accepts this connection because the same MYOB account was linked to {other_organisation} at {linked_at}, and that newer link replaced this one's authorisation.",
        "Decide which organisation should hold this MYOB link; to keep it here, ask a user of this organisation to reconnect MYOB and remove the link from {other_organisation}."),
    (None, "invalid_client", "configuration_error", true,
        "MYOB rejected the hub's client id (API key) or client secret (invalid_client).",
        "Contact the app's support: the MYOB API key and secret in the hub's configuration must be corrected, after which the connection resumes by itself."),
    (None, "unauthorized_client", "configuration_error", false,
        "MYOB does not allow the hub's app to use this kind of authorisation (unauthorized_client).",
        "Contact the app's support: the app's registration with MYOB must be corrected."),
    (None, "access_denied", "access_denied", false,
        "The user did not authorise access on the MYOB sign-in page.",
        "Ask the user to connect MYOB again and allow access."),
    (None, "http_4xx", "unexpected_response", false,
        "MYOB refused the request for a reason the hub does not recognise.",
        "Contact the app's support with the details below; if it concerns the connection itself, ask a user of the organisation to reconnect MYOB."),
    (None, "http_5xx", "provider_unavailable", true,
        "MYOB answered with a server error: it is down or in maintenance.",
        "Nothing to do: the hub retries by itself; MYOB's status page shows current incidents."),
    (None, "unexpected_response", "unexpected_response", true,
        "MYOB gave an answer the hub did not expect.",
        "If this persists, contact the app's support or MYOB developer support with the details below."),
];

/// MYOB Acumatica: login failures (recognised from `exceptionMessage`) and HTTP statuses.
pub static ACUMATICA: &[Entry] = table!["acumatica":
    (None, "invalid_credentials", "credentials_rejected", false,
        "MYOB Acumatica rejected the API user's name or password.",
        "Enter the API user's current password in the hub; after a MYOB Acumatica upgrade (2023.1.3 and later) the password may have been reset to meet the 14-character policy. The hub does not retry until then, so the account does not get locked."),
    (None, "account_locked", "account_locked", false,
        "MYOB Acumatica has locked the API user, usually after repeated failed logins.",
        "Ask a MYOB Acumatica administrator to unlock the user on the Users form, then update the credentials in the hub."),
    (None, "api_login_limit", "api_user_limit_reached", true,
        "MYOB Acumatica refused the login because the licence's limit of API users signed in at once is reached (API Login Limit).",
        "Nothing to do if it clears: the hub logs out after every use and retries. If it persists, ask an administrator to check which other integrations stay signed in, and give each app its own API user."),
    (None, "unknown_tenant", "configuration_error", false,
        "MYOB Acumatica does not know the tenant (company) the hub logs in to.",
        "Check the tenant name saved in the hub against the one on the MYOB Acumatica sign-in page, then update the connection."),
    (None, "branch_not_allowed", "configuration_error", false,
        "The API user may not sign in to the branch saved in the hub.",
        "Ask a MYOB Acumatica administrator to give the API user access to that branch, or change the branch in the hub."),
    (None, "password_expired", "credentials_rejected", false,
        "The API user's password has expired in MYOB Acumatica.",
        "Ask a MYOB Acumatica administrator to set a new password for the API user (at least 14 characters with upper and lower case letters and a digit or symbol), then enter it in the hub."),
    (None, "password_change_required", "credentials_rejected", false,
        "MYOB Acumatica requires the API user to change its password before it can log in.",
        "Sign in to MYOB Acumatica once as the API user and set a new password (at least 14 characters with upper and lower case letters and a digit or symbol), then enter it in the hub."),
    (Some(401), "http_401", "session_expired", true,
        "The MYOB Acumatica session expired or was closed.",
        "Nothing to do: the hub logs in again by itself."),
    (Some(403), "http_403", "insufficient_permission", false,
        "MYOB Acumatica refused access: the API user's role does not allow this.",
        "Ask a MYOB Acumatica administrator to give the API user's role access to this screen or entity."),
    (Some(404), "http_404", "not_found", false,
        "The record or endpoint asked for cannot be found in MYOB Acumatica.",
        "Check that the record still exists; if testing the connection fails this way, check the instance URL saved in the hub."),
    (Some(429), "http_429", "rate_limited", true,
        "MYOB Acumatica is limiting requests under its licence (requests per minute or requests at once).",
        "Nothing to do: the hub waits and retries by itself; if it happens often, ask an administrator about the licence's API limits."),
    (Some(500), "http_500", "provider_error", true,
        "MYOB Acumatica had an error while processing the request.",
        "Nothing to do: the hub retries by itself; if it persists, contact the app's support with the details below."),
    (Some(503), "http_503", "provider_unavailable", true,
        "MYOB Acumatica is temporarily unavailable, for example during maintenance or an upgrade.",
        "Nothing to do: the hub retries by itself."),
    (None, "http_4xx", "unexpected_response", false,
        "MYOB Acumatica refused the request for a reason the hub does not recognise.",
        "Contact the app's support with the details below."),
    (None, "http_5xx", "provider_unavailable", true,
        "MYOB Acumatica answered with a server error: it is down or in maintenance.",
        "Nothing to do: the hub retries by itself."),
    (None, "unexpected_response", "unexpected_response", true,
        "MYOB Acumatica gave an answer the hub did not expect.",
        "If this persists, contact the app's support with the details below."),
];

/// Reckon Accounts (desktop): qbXML `statusCode` values, and the Reckon Web Connector's errors.
pub static RECKON: &[Entry] = table!["reckon":
    (None, "1", "no_match", false,
        "The query matched no records in the Reckon Accounts company file.",
        "Nothing to do: this is information, not a failure."),
    (None, "500", "not_found", false,
        "Reckon Accounts processed the query, but one or more of the records asked for could not be found.",
        "Check that the records named below still exist in the company file."),
    (None, "3100", "conflict", false,
        "The name is already used by another record in the Reckon Accounts company file (status 3100).",
        "Use a different name, or rename or reuse the existing record in Reckon Accounts, then try again."),
    (None, "3120", "not_found", false,
        "A record named in the request cannot be found in the Reckon Accounts company file (status 3120).",
        "Check that the record named below exists in Reckon Accounts (or create it), then try again."),
    (None, "3140", "bad_request", false,
        "The request refers to an account, customer, item or other record that is not valid in the Reckon Accounts company file (status 3140).",
        "Check the record named below in Reckon Accounts (it may be missing or inactive), then try again."),
    (None, "record_in_use", "record_in_use", true,
        "Reckon Accounts could not save the record because it is open or in use elsewhere (status 3170 to 3180).",
        "Close the record in Reckon Accounts if someone has it open; the hub sends the request again at the next run."),
    (None, "3200", "conflict", false,
        "The record changed in Reckon Accounts after the app last read it: its edit sequence is out of date (status 3200).",
        "Nothing to change in Reckon Accounts: the app must read the record again and repeat the change."),
    (None, "3231", "not_processed", true,
        "Reckon Accounts did not process this request because an earlier request in the same batch failed (status 3231).",
        "Fix the earlier failure reported for this job; this request can then be sent again."),
    (None, "3260", "insufficient_permission", false,
        "The Reckon Accounts user the Web Connector signs in as lacks permission for this action (status 3260).",
        "Ask the company file's administrator to give that user the access needed in Reckon Accounts."),
    (None, "3391", "iterator_invalid", true,
        "The query's iterator was no longer valid in Reckon Accounts (status 3391): too much time passed between pages, or the session ended.",
        "Nothing to do: the hub restarts the query from the beginning by itself."),
    (None, "qbxml_warning", "warning", false,
        "Reckon Accounts processed the request with a warning: the result may not be exactly what was asked for.",
        "Check the message below; if the result looks wrong, contact the app's support."),
    (None, "qbxml_error", "bad_request", false,
        "Reckon Accounts did not process the request and returned an error.",
        "Check the message below; if you cannot tell what is wrong, contact the app's support with it."),
    (None, "could_not_access_company", "provider_unavailable", true,
        "The Reckon Web Connector could not access Reckon Accounts or the company file.",
        "On the computer running the Reckon Web Connector, make sure Reckon Accounts is installed and the company file can be opened; the Web Connector tries again at its next scheduled run."),
    (None, "begin_session_timeout", "timeout", true,
        "Reckon Accounts did not start a session for the Reckon Web Connector in time (BeginSession timeout).",
        "Close any dialogue box open in Reckon Accounts on that computer and make sure no one is doing a long task such as a backup; the Web Connector tries again at its next scheduled run."),
    (None, "company_file_mismatch", "configuration_error", false,
        "The company file open in Reckon Accounts is not the one this connection was set up with.",
        "Open the company file this connection was set up with, or set up the Reckon Web Connector again for the file you want to use."),
    (None, "exchange_timeout", "timeout", true,
        "The Reckon Web Connector took work but never sent the result back.",
        "Nothing to do: the hub hands the same work out again at the Web Connector's next run; if it keeps happening, check that the computer stays on and online."),
    (None, "webconnector_error", "provider_error", true,
        "The Reckon Web Connector reported an error while exchanging work with Reckon Accounts.",
        "Check the Reckon Web Connector on that computer for a message; it tries again at its next scheduled run. If it persists, contact the app's support with the details below."),
    (None, "unexpected_response", "unexpected_response", true,
        "The Reckon Web Connector gave an answer the hub did not expect.",
        "If this persists, contact the app's support with the details below."),
];

/// Failures below HTTP, the same for every provider.
pub static NETWORK: &[Entry] = table!["any":
    (None, "dns", "network", false,
        "The provider's host name could not be found (socket error 11001, host not found).",
        "Check the API base URL in the settings for typing mistakes, and that this server can reach the internet and resolve names."),
    (None, "connection_refused", "network", true,
        "The provider's server refused the connection.",
        "Check the API URL and port in the settings and any firewall or proxy in between; the hub retries by itself."),
    (None, "tls", "network", true,
        "A secure (TLS) connection to the provider could not be established.",
        "Check this server's clock and certificate store, and any proxy that inspects secure traffic; the hub retries by itself."),
    (None, "timeout", "timeout", true,
        "The provider did not answer in time.",
        "Nothing to do: the hub retries by itself. If it keeps happening, make sure any proxy in between allows requests to run for at least 120 seconds."),
    (None, "connection_lost", "network", true,
        "The connection dropped before the provider's answer arrived, so the request may or may not have been carried out.",
        "Nothing to do: the hub retries by itself in a way that is safe either way."),
];

/// The last resort when a provider's table lacks its catch-all; the tests make sure none does.
static FALLBACK: Entry = Entry {
    provider: "any",
    http_status: None,
    code: UNEXPECTED,
    category: "unexpected_response",
    retryable: true,
    summary: "The provider gave an answer the hub did not expect.",
    action: "If this persists, contact the app's support with the details below.",
};

pub fn table(provider: Provider) -> &'static [Entry] {
    match provider {
        Provider::Xero => XERO,
        Provider::QuickBooks => QUICKBOOKS,
        Provider::Myob => MYOB,
        Provider::Acumatica => ACUMATICA,
        Provider::Reckon => RECKON,
    }
}

/// Every entry: the providers' tables in [`Provider::ALL`] order, then [`NETWORK`].
pub fn entries() -> impl Iterator<Item = &'static Entry> {
    Provider::ALL.into_iter().flat_map(table).chain(NETWORK)
}

/// The entry for a specific code: the provider's entry with this status and code, else its
/// entry with this code at any status, else the network entry with this code.
pub fn find(provider: Provider, http_status: Option<u16>, code: &str) -> Option<&'static Entry> {
    let table = table(provider);
    let same_code = |e: &&Entry| e.code.eq_ignore_ascii_case(code);
    table
        .iter()
        .filter(same_code)
        .find(|e| e.http_status == http_status)
        .or_else(|| table.iter().find(same_code))
        .or_else(|| NETWORK.iter().find(same_code))
}

/// The entry that explains an answer; always finds one.
///
/// In order: the provider's entry with this status and code; with this code at any status;
/// the provider's `http_<status>` entry; the network entry with this code; the provider's
/// `http_4xx`/`http_5xx` entry; the provider's `unexpected_response` entry.
pub fn lookup(provider: Provider, http_status: Option<u16>, code: Option<&str>) -> &'static Entry {
    let table = table(provider);
    let by_code = |network: bool| {
        let code = code?;
        let same_code = |e: &&Entry| e.code.eq_ignore_ascii_case(code);
        if network {
            return NETWORK.iter().find(same_code);
        }
        table
            .iter()
            .filter(same_code)
            .find(|e| e.http_status == http_status)
            .or_else(|| table.iter().find(same_code))
    };
    let named = |name: &str| table.iter().find(|e| e.code == name);
    by_code(false)
        .or_else(|| http_status.and_then(|s| named(&format!("http_{s}"))))
        .or_else(|| by_code(true))
        .or_else(|| match http_status {
            Some(400..=499) => named("http_4xx"),
            Some(500..=599) => named("http_5xx"),
            _ => None,
        })
        .or_else(|| named(UNEXPECTED))
        .unwrap_or(&FALLBACK)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::DisconnectReason;

    #[test]
    fn every_row_of_seed_001s_xero_table_has_a_diagnosis_with_an_action() {
        // (status, code, category, retryable, words the action must contain)
        type Row<'a> = (Option<u16>, Option<&'a str>, &'a str, bool, &'a str);
        let rows: &[Row] = &[
            (Some(400), None, "bad_request", false, "Correct the details"),
            (Some(400), Some("ValidationException"), "bad_request", false, "Correct the details"),
            (Some(401), None, "authorization_revoked", false, "reconnect Xero"),
            (Some(403), None, "insufficient_permission", false, "Standard or Adviser"),
            (Some(404), None, "not_found", false, "reconnect Xero"),
            (Some(412), None, "precondition_failed", false, "app's support"),
            (Some(429), None, "rate_limited", true, "retries by itself"),
            (Some(500), None, "provider_error", true, "retries by itself"),
            (Some(503), None, "provider_unavailable", true, "retries by itself"),
            (None, Some("dns"), "network", false, "https://api.xero.com/api.xro/2.0/"),
        ];
        for &(status, code, category, retryable, action) in rows {
            let e = lookup(Provider::Xero, status, code);
            assert_eq!(e.provider, "xero", "{status:?} {code:?}");
            assert_eq!(e.category, category, "{status:?} {code:?}");
            assert_eq!(e.retryable, retryable, "{status:?} {code:?}");
            assert!(e.action.contains(action), "{status:?} {code:?}: {}", e.action);
        }
        let e = lookup(Provider::Xero, Some(403), None);
        assert!(e.summary.contains("Standard or Adviser"));
        let e = lookup(Provider::Xero, None, Some("dns"));
        assert!(e.summary.contains("11001") && e.action.contains("API base URL"));
        assert!(lookup(Provider::Xero, Some(503), None).summary.contains("offline"));
    }

    #[test]
    fn xero_rate_limit_problems_and_401_details_have_their_own_entries() {
        for problem in ["minute", "day", "concurrent", "appminute"] {
            let e = lookup(Provider::Xero, Some(429), Some(problem));
            assert_eq!((e.code, e.category, e.retryable), (problem, "rate_limited", true));
        }
        assert_eq!(lookup(Provider::Xero, Some(429), Some("Minute")).code, "minute");
        let expired = lookup(Provider::Xero, Some(401), Some("TokenExpired"));
        assert!(expired.retryable);
        let revoked = lookup(Provider::Xero, Some(401), Some("AuthenticationUnsuccessful"));
        assert_eq!((revoked.category, revoked.retryable), ("authorization_revoked", false));
    }

    #[test]
    fn every_entry_is_complete_and_reads_as_sentences() {
        for e in entries() {
            let key = format!("{} {:?} {}", e.provider, e.http_status, e.code);
            assert!(!e.code.is_empty(), "{key}");
            assert!(!e.summary.trim().is_empty() && e.summary.ends_with('.'), "{key}: {}", e.summary);
            assert!(!e.action.trim().is_empty() && e.action.ends_with('.'), "{key}: {}", e.action);
            assert!(!e.summary.contains('\n') && !e.action.contains('\n'), "{key}");
            assert!(!e.action.to_lowercase().contains("partner"), "{key}: say who, not a partner");
            assert!(CATEGORIES.contains(&e.category), "{key}: unknown category {}", e.category);
            assert!(e.provider == "any" || e.provider().is_some(), "{key}");
        }
    }

    #[test]
    fn no_two_entries_share_a_provider_status_and_code() {
        let mut seen = HashSet::new();
        for e in entries() {
            assert!(seen.insert((e.provider, e.http_status, e.code.to_lowercase())), "duplicate {e:?}");
        }
    }

    #[test]
    fn each_table_holds_only_its_provider_and_has_a_catch_all() {
        for p in Provider::ALL {
            assert!(table(p).iter().all(|e| e.provider == p.as_str()), "{p}");
            assert!(table(p).iter().any(|e| e.code == UNEXPECTED), "{p}");
        }
        assert!(NETWORK.iter().all(|e| e.provider == "any" && e.http_status.is_none()));
        assert_eq!(entries().last().map(|e| e.provider), Some("any"));
        assert_eq!(
            entries().count(),
            Provider::ALL.iter().map(|p| table(*p).len()).sum::<usize>() + NETWORK.len()
        );
    }

    #[test]
    fn the_documented_codes_are_all_present() {
        let oauth = [
            "invalid_grant",
            "invalid_client",
            "access_denied",
            "superseded_by_duplicate_link",
            "refresh_token_expired",
        ];
        let mut expected: Vec<(Provider, &str)> = Vec::new();
        for p in Provider::OAUTH {
            expected.extend(oauth.iter().map(|c| (p, *c)));
            expected.extend(["http_500", "http_503"].iter().map(|c| (p, *c)));
        }
        expected.extend(
            [
                "http_400",
                "ValidationException",
                "http_401",
                "TokenExpired",
                "AuthenticationUnsuccessful",
                "http_403",
                "http_404",
                "http_412",
                "http_429",
                "minute",
                "day",
                "concurrent",
                "appminute",
                "dns",
                "unauthorized_client",
            ]
            .map(|c| (Provider::Xero, c)),
        );
        expected.extend(
            ["3200", "3100", "3001", "610", "5010", "6000", "6240", "fault_in_200"]
                .map(|c| (Provider::QuickBooks, c)),
        );
        expected.extend(
            [
                "http_401",
                "RateLimitError",
                "http_403",
                "http_404",
                "http_409",
                "http_410",
                "http_418",
                "http_423",
                "http_504",
            ]
            .map(|c| (Provider::Myob, c)),
        );
        expected.extend(
            [
                "invalid_credentials",
                "account_locked",
                "api_login_limit",
                "password_expired",
                "password_change_required",
                "http_429",
                "http_401",
                "http_500",
                "http_503",
            ]
            .map(|c| (Provider::Acumatica, c)),
        );
        expected.extend(
            [
                "1",
                "3100",
                "3120",
                "3140",
                "record_in_use",
                "3200",
                "3391",
                "qbxml_error",
                "qbxml_warning",
                "could_not_access_company",
                "begin_session_timeout",
                "company_file_mismatch",
                "webconnector_error",
                "exchange_timeout",
            ]
            .map(|c| (Provider::Reckon, c)),
        );
        for (p, code) in expected {
            assert!(table(p).iter().any(|e| e.code == code), "{p} lacks {code}");
        }
        for code in ["dns", "connection_refused", "tls", "timeout", "connection_lost"] {
            assert!(NETWORK.iter().any(|e| e.code == code), "network lacks {code}");
        }
        assert!(NETWORK.iter().find(|e| e.code == "timeout").unwrap().action.contains("120 seconds"));
    }

    #[test]
    fn categories_cover_the_disconnect_reasons_and_the_oauth_specials() {
        for r in DisconnectReason::ALL {
            assert!(CATEGORIES.contains(&r.as_str()), "{r}");
        }
        let specials = [
            ("superseded_by_duplicate_link", "superseded_by_duplicate_link"),
            ("refresh_token_expired", "refresh_token_expired"),
            ("invalid_grant", "authorization_revoked"),
            ("invalid_client", "configuration_error"),
            ("access_denied", "access_denied"),
        ];
        for p in Provider::OAUTH {
            for (code, category) in specials {
                let e = find(p, None, code).unwrap();
                assert_eq!(e.category, category, "{p} {code}");
                if code != "invalid_client" {
                    assert!(!e.retryable, "{p} {code}");
                }
            }
            let superseded = find(p, None, "superseded_by_duplicate_link").unwrap();
            assert!(superseded.summary.contains(PLACEHOLDER_OTHER_ORGANISATION));
            assert!(superseded.summary.contains(PLACEHOLDER_LINKED_AT));
        }
        assert!(find(Provider::Xero, None, "refresh_token_expired").unwrap().summary.contains("60 days"));
        assert!(
            find(Provider::QuickBooks, None, "refresh_token_expired").unwrap().summary.contains("100 days")
        );
        assert!(find(Provider::Myob, None, "refresh_token_expired").unwrap().summary.contains("7 days"));
    }

    #[test]
    fn lookup_falls_back_from_code_to_status_to_class_to_the_catch_all() {
        // Exact status and code.
        assert_eq!(lookup(Provider::Myob, Some(403), Some("RateLimitError")).category, "rate_limited");
        // The code at another status.
        assert_eq!(lookup(Provider::QuickBooks, Some(200), Some("5010")).code, "5010");
        // An unknown code falls to the status.
        assert_eq!(lookup(Provider::Myob, Some(403), Some("SomethingElse")).code, "http_403");
        // The network table by code, for any provider.
        let dns = lookup(Provider::Myob, None, Some("dns"));
        assert_eq!((dns.provider, dns.code), ("any", "dns"));
        // A provider's own network entry wins over the shared one.
        assert_eq!(lookup(Provider::Xero, None, Some("dns")).provider, "xero");
        // The status class.
        assert_eq!(lookup(Provider::Xero, Some(502), None).code, "http_5xx");
        assert_eq!(lookup(Provider::QuickBooks, Some(418), Some("teapot")).code, "http_4xx");
        // Nothing known at all.
        for p in Provider::ALL {
            assert_eq!(lookup(p, None, None).code, UNEXPECTED);
            assert_eq!(lookup(p, Some(302), Some("nope")).code, UNEXPECTED);
            assert_eq!(lookup(p, None, None).provider, p.as_str());
        }
    }

    #[test]
    fn entries_serialise_with_their_links_and_network_entries_without() {
        let e = lookup(Provider::Xero, Some(403), None);
        let v = serde_json::to_value(e).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected =
            ["provider", "http_status", "code", "category", "retryable", "summary", "action", "links"];
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(v["http_status"], 403);
        assert_eq!(v["links"]["status"], "https://status.developer.xero.com/");
        let v = serde_json::to_value(&NETWORK[0]).unwrap();
        assert_eq!(v["provider"], "any");
        assert_eq!(v["links"], serde_json::Value::Null);
        assert_eq!(v["http_status"], serde_json::Value::Null);
    }
}
