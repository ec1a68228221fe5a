//! Data-API answers read the way each provider writes its errors, and turned into diagnoses.
//!
//! - QuickBooks Online: a `Fault` document (JSON, with either capitalisation, or XML), which
//!   can arrive with HTTP 200; its `code` picks the entry.
//! - Xero: `ApiException` documents (JSON or XML) whose `Type` picks the entry and whose
//!   validation messages are the detail; problem documents (`Title`, `Detail`) whose `Detail`
//!   starts with a code such as `TokenExpired`; `X-Rate-Limit-Problem` on a 429.
//! - MYOB: `{"Errors":[{"Name", "Message", ...}]}`; a 403 named `RateLimitError` is a rate
//!   limit, any other 403 a permission problem.
//! - MYOB Acumatica: `{"message", "exceptionMessage", "exceptionType"}`, classified by
//!   `exceptionMessage` (a locked user, the API login limit, rejected credentials).
//!
//! Everything else falls back to the status, via the knowledge base.

use std::time::{Duration, SystemTime};

use ledgerlink_core::{Diagnosis, Provider, knowledge};
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::error::parse_retry_after;

/// The diagnosis of a data-API answer; `None` when it succeeded.
pub fn api_response(provider: Provider, status: u16, headers: &HeaderMap, body: &[u8]) -> Option<Diagnosis> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let succeeded = (200..300).contains(&status) || status == 304;
    match provider {
        // QuickBooks may report a failure inside a 200.
        Provider::QuickBooks => quickbooks(status, headers, body, json.as_ref(), succeeded),
        _ if succeeded => None,
        Provider::Xero => Some(xero(status, headers, body, json.as_ref())),
        Provider::Myob => Some(myob(status, headers, body, json.as_ref())),
        Provider::Acumatica => Some(acumatica(status, headers, body, json.as_ref())),
        Provider::Reckon => Some(by_status(provider, status, headers, body)),
    }
}

/// How long to wait when the answer is the provider's rate limit (Xero, QuickBooks and
/// Acumatica 429 or QuickBooks fault 3001; MYOB 403 `RateLimitError`): the `Retry-After`
/// header, or without one a wait that fits the limit hit. `None` when it is not a rate limit.
pub fn is_rate_limited(
    provider: Provider,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Duration> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let limited = match provider {
        Provider::Xero | Provider::Acumatica => status == 429,
        Provider::QuickBooks => {
            status == 429
                || quickbooks_fault(json.as_ref(), body).is_some_and(|f| lookup_code(&f.code) == "3001")
        }
        Provider::Myob => {
            status == 429 || (status == 403 && myob_error(json.as_ref()).is_some_and(|e| e.is_rate_limit()))
        }
        Provider::Reckon => false,
    };
    if !limited {
        return None;
    }
    if let Some(wait) = parse_retry_after(header(headers, "retry-after").as_deref(), SystemTime::now()) {
        return Some(wait);
    }
    let text = String::from_utf8_lossy(body).to_lowercase();
    let problem = header(headers, "x-rate-limit-problem").map(|p| p.to_lowercase());
    Some(Duration::from_secs(match provider {
        // Daily quotas: try again in an hour rather than hammering a closed door.
        Provider::Xero if problem.as_deref() == Some("day") => 3600,
        Provider::Myob if text.contains("daily") => 3600,
        // MYOB's other limit is 8 calls a second.
        Provider::Myob => 1,
        _ => 60,
    }))
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// `Retry-After`, for the message of a rate-limit diagnosis.
fn retry_note(headers: &HeaderMap) -> Option<String> {
    header(headers, "retry-after").map(|v| format!("Retry-After: {v}"))
}

fn join(parts: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    let parts: Vec<String> = parts.into_iter().flatten().filter(|p| !p.trim().is_empty()).collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// "Message: Detail", or whichever of the two there is.
fn message_detail(message: Option<String>, detail: Option<String>) -> Option<String> {
    match (message, detail) {
        (Some(m), Some(d)) if m != d => Some(format!("{m}: {d}")),
        (m, d) => m.or(d),
    }
}

/// The body as a message, unless it is empty or an HTML page (a gateway's error page says
/// nothing the status does not).
fn body_text(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let html = text.get(..5).is_some_and(|start| start.eq_ignore_ascii_case("<html"))
        || text.get(..9).is_some_and(|start| start.eq_ignore_ascii_case("<!doctype"));
    (!text.is_empty() && !html).then(|| text.chars().take(500).collect())
}

fn by_status(provider: Provider, status: u16, headers: &HeaderMap, body: &[u8]) -> Diagnosis {
    Diagnosis::lookup(provider, Some(status), None, join([body_text(body), retry_note(headers)]))
}

/// The code to look up only when the provider's table knows it at this very status, so a
/// code seen under one status does not pull in the meaning it has under another (a Xero 403
/// whose detail reads `AuthenticationUnsuccessful` is a permission problem, not a revoked
/// connection).
fn code_at_status(provider: Provider, status: u16, code: Option<&str>) -> Option<&str> {
    code.filter(|c| {
        knowledge::table(provider)
            .iter()
            .any(|e| e.http_status == Some(status) && e.code.eq_ignore_ascii_case(c))
    })
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// A JSON field whatever its capitalisation (QuickBooks writes `Fault` and `fault`).
fn field_ci<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

fn str_ci(value: &Value, key: &str) -> Option<String> {
    match field_ci(value, key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The text of the first `<name ...>…</name>` element after `from`, and where it ends.
fn xml_element<'a>(text: &'a str, name: &str, from: usize) -> Option<(&'a str, usize)> {
    let rest = text.get(from..)?;
    let open = rest.find(&format!("<{name}"))?;
    let after_name = open + name.len() + 1;
    // `<Message>` but not `<MessageId>`.
    if !rest[after_name..].starts_with(['>', ' ', '/']) {
        return xml_element(text, name, from + after_name);
    }
    let start = after_name + rest[after_name..].find('>')? + 1;
    let end = start + rest[start..].find(&format!("</{name}>"))?;
    Some((&rest[start..end], from + end))
}

/// The value of `attr="…"` inside the first `<name …>` tag.
fn xml_attribute<'a>(text: &'a str, name: &str, attr: &str) -> Option<&'a str> {
    let open = text.find(&format!("<{name} "))?;
    let tag = &text[open..open + text[open..].find('>')?];
    let at = tag.find(&format!("{attr}=\""))? + attr.len() + 2;
    tag[at..].split('"').next()
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

// QuickBooks Online ---------------------------------------------------------------------

struct Fault {
    code: String,
    /// "Message: Detail" of every error.
    message: Option<String>,
    /// The first error's `Detail`, which tells an expired token from a revoked one.
    detail: String,
}

/// `003001` and `3001` are the same code.
fn lookup_code(code: &str) -> &str {
    let trimmed = code.trim().trim_start_matches('0');
    if trimmed.is_empty() { "0" } else { trimmed }
}

fn quickbooks_fault(json: Option<&Value>, body: &[u8]) -> Option<Fault> {
    match json {
        Some(json) => {
            let fault = field_ci(json, "Fault")?;
            let errors = field_ci(fault, "Error").and_then(Value::as_array)?;
            let first = errors.first()?;
            let message =
                join(errors.iter().map(|e| message_detail(str_ci(e, "Message"), str_ci(e, "Detail"))));
            Some(Fault {
                code: str_ci(first, "code").unwrap_or_default(),
                message,
                detail: str_ci(first, "Detail").unwrap_or_default(),
            })
        }
        None => {
            let text = String::from_utf8_lossy(body);
            let at = text.find("<Fault")?;
            let text = &text[at..];
            let code = xml_attribute(text, "Error", "code").unwrap_or_default().to_owned();
            let message = xml_element(text, "Message", 0).map(|(m, _)| unescape(m));
            let detail = xml_element(text, "Detail", 0).map(|(d, _)| unescape(d));
            Some(Fault {
                code,
                message: message_detail(message, detail.clone()),
                detail: detail.unwrap_or_default(),
            })
        }
    }
}

fn quickbooks(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    json: Option<&Value>,
    succeeded: bool,
) -> Option<Diagnosis> {
    let provider = Provider::QuickBooks;
    let Some(fault) = quickbooks_fault(json, body) else {
        return (!succeeded).then(|| by_status(provider, status, headers, body));
    };
    let mut code = lookup_code(&fault.code);
    // An expired access token and a revoked connection share fault 3200; the detail differs.
    if code == "3200" && fault.detail.to_lowercase().contains("token expired") {
        code = "token_expired";
    }
    let provider_code = Some(fault.code.clone()).filter(|c| !c.is_empty());
    let entry = if succeeded {
        knowledge::find(provider, Some(status), code)
            .unwrap_or_else(|| knowledge::lookup(provider, Some(status), Some("fault_in_200")))
    } else {
        knowledge::lookup(provider, Some(status), Some(code))
    };
    let note = succeeded.then(|| format!("HTTP {status} with a Fault"));
    let retry = (entry.category == "rate_limited").then(|| retry_note(headers)).flatten();
    Some(Diagnosis::from_entry(
        provider,
        entry,
        Some(status),
        provider_code,
        join([note, fault.message, retry]),
    ))
}

// Xero -----------------------------------------------------------------------------------

fn xero(status: u16, headers: &HeaderMap, body: &[u8], json: Option<&Value>) -> Diagnosis {
    let provider = Provider::Xero;
    if status == 429 {
        let problem = header(headers, "x-rate-limit-problem").map(|p| p.to_lowercase());
        let entry = knowledge::lookup(provider, Some(status), problem.as_deref());
        let message =
            join([problem.as_ref().map(|p| format!("X-Rate-Limit-Problem: {p}")), retry_note(headers)]);
        return Diagnosis::from_entry(provider, entry, Some(status), problem, message);
    }
    if let Some(json) = json {
        // ApiException: {"ErrorNumber", "Type", "Message", "Elements": [{"ValidationErrors": [...]}]}
        if let Some(kind) = str_field(json, "Type").filter(|_| json.get("ErrorNumber").is_some()) {
            let mut messages = Vec::new();
            validation_messages(json, &mut messages);
            let message = if messages.is_empty() {
                str_field(json, "Message").map(str::to_owned)
            } else {
                Some(messages.join("; "))
            };
            return Diagnosis::lookup(provider, Some(status), Some(kind), message);
        }
        // Problem document: {"Title", "Status", "Detail"}, with a code leading the detail.
        let detail = str_field(json, "Detail");
        if detail.is_some() || str_field(json, "Title").is_some() {
            let code = detail.and_then(|d| d.split(':').next()).map(str::trim).filter(|c| is_identifier(c));
            let entry = knowledge::lookup(provider, Some(status), code_at_status(provider, status, code));
            let message = join([str_field(json, "Title").map(str::to_owned), detail.map(str::to_owned)]);
            return Diagnosis::from_entry(provider, entry, Some(status), code.map(str::to_owned), message);
        }
    }
    let text = String::from_utf8_lossy(body);
    if let Some(at) = text.find("<ApiException") {
        let text = &text[at..];
        let kind = xml_element(text, "Type", 0).map(|(t, _)| t.trim().to_owned());
        let mut messages = Vec::new();
        let mut from = 0;
        while let Some((error, end)) = xml_element(text, "ValidationError", from) {
            if let Some((m, _)) = xml_element(error, "Message", 0) {
                messages.push(unescape(m.trim()));
            }
            from = end;
        }
        let message = if messages.is_empty() {
            xml_element(text, "Message", 0).map(|(m, _)| unescape(m.trim()))
        } else {
            Some(messages.join("; "))
        };
        return Diagnosis::lookup(provider, Some(status), kind.as_deref(), message);
    }
    by_status(provider, status, headers, body)
}

/// Every `ValidationErrors[].Message`, however deep (Xero nests them in line items too).
fn validation_messages(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "ValidationErrors" {
                    for error in v.as_array().into_iter().flatten() {
                        if let Some(m) = str_field(error, "Message").filter(|m| !out.iter().any(|o| o == m)) {
                            out.push(m.to_owned());
                        }
                    }
                } else {
                    validation_messages(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| validation_messages(v, out)),
        _ => {}
    }
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

// MYOB -----------------------------------------------------------------------------------

struct MyobError {
    name: Option<String>,
    error_code: Option<String>,
    message: Option<String>,
}

impl MyobError {
    fn is_rate_limit(&self) -> bool {
        self.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case("RateLimitError"))
    }
}

fn myob_error(json: Option<&Value>) -> Option<MyobError> {
    let errors = json?.get("Errors").and_then(Value::as_array)?;
    let first = errors.first()?;
    let message = join(errors.iter().map(|e| match (str_ci(e, "Message"), str_ci(e, "AdditionalDetails")) {
        (Some(m), Some(d)) => Some(format!("{m} ({d})")),
        (m, d) => m.or(d),
    }));
    Some(MyobError { name: str_ci(first, "Name"), error_code: str_ci(first, "ErrorCode"), message })
}

fn myob(status: u16, headers: &HeaderMap, body: &[u8], json: Option<&Value>) -> Diagnosis {
    let provider = Provider::Myob;
    let Some(error) = myob_error(json) else { return by_status(provider, status, headers, body) };
    let entry =
        knowledge::lookup(provider, Some(status), code_at_status(provider, status, error.name.as_deref()));
    let retry = (entry.category == "rate_limited").then(|| retry_note(headers)).flatten();
    let code = error.name.or(error.error_code);
    Diagnosis::from_entry(provider, entry, Some(status), code, join([error.message, retry]))
}

// MYOB Acumatica -------------------------------------------------------------------------

fn acumatica(status: u16, headers: &HeaderMap, body: &[u8], json: Option<&Value>) -> Diagnosis {
    let provider = Provider::Acumatica;
    let Some(json) = json else { return by_status(provider, status, headers, body) };
    let message = str_field(json, "exceptionMessage").or_else(|| str_field(json, "message"));
    let Some(message) = message else { return by_status(provider, status, headers, body) };
    // Login failures come back as 500s told apart only by their text; the same text in
    // any other answer means the same thing.
    let mut d = Diagnosis::acumatica_login(status, message);
    if let Some(kind) = str_field(json, "exceptionType") {
        d.provider_code = Some(kind.to_owned());
    }
    if d.category == "rate_limited" {
        d.provider_message = join([d.provider_message.take(), retry_note(headers)]);
    }
    d
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderName, HeaderValue};
    use serde_json::json;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn classify(provider: Provider, status: u16, h: &[(&str, &str)], body: &str) -> Option<Diagnosis> {
        api_response(provider, status, &headers(h), body.as_bytes())
    }

    #[test]
    fn successful_answers_have_no_diagnosis() {
        for p in Provider::ALL {
            assert_eq!(classify(p, 200, &[], r#"{"Invoices":[]}"#), None, "{p}");
            assert_eq!(classify(p, 204, &[], ""), None, "{p}");
        }
        assert_eq!(classify(Provider::QuickBooks, 200, &[], r#"{"QueryResponse":{},"time":"x"}"#), None);
    }

    #[test]
    fn a_quickbooks_fault_inside_a_200_is_a_failure_with_the_faults_own_code() {
        let body = json!({
            "Fault": {"Error": [{"Message": "A business validation error has occurred while processing your request",
                                  "Detail": "Business Validation Error: You must select a customer for this transaction.",
                                  "code": "6000", "element": ""}],
                      "type": "ValidationFault"},
            "time": "2024-05-01T10:00:00.000-07:00"
        })
        .to_string();
        let d = classify(Provider::QuickBooks, 200, &[], &body).expect("a fault in a 200 is a failure");
        assert_eq!(d.http_status, Some(200));
        assert_eq!(d.provider_code.as_deref(), Some("6000"));
        assert_eq!((d.category.as_str(), d.retryable), ("bad_request", false));
        let message = d.provider_message.unwrap();
        assert!(
            message.contains("HTTP 200 with a Fault") && message.contains("You must select a customer"),
            "{message}"
        );

        // A code the knowledge base does not know: the fault_in_200 entry, still with its code.
        let body = json!({"Fault": {"Error": [{"Message": "Odd", "Detail": "Odd detail", "code": "99999"}], "type": "SystemFault"}})
            .to_string();
        let d = classify(Provider::QuickBooks, 200, &[], &body).unwrap();
        let fault_in_200 = knowledge::lookup(Provider::QuickBooks, Some(200), Some("fault_in_200"));
        assert_eq!(d.summary, fault_in_200.summary);
        assert_eq!(d.provider_code.as_deref(), Some("99999"));
    }

    #[test]
    fn quickbooks_faults_pick_their_entries_by_code() {
        let fault = |status: u16, code: &str, message: &str, detail: &str| {
            let body = json!({"Fault": {"Error": [{"Message": message, "Detail": detail, "code": code}], "type": "X"}});
            classify(Provider::QuickBooks, status, &[("Retry-After", "30")], &body.to_string()).unwrap()
        };
        let d = fault(
            400,
            "6240",
            "Duplicate Name Exists Error",
            "The name supplied already exists. : Another customer is already using this name.",
        );
        assert_eq!(d.category, "conflict");
        assert!(d.summary.contains("Duplicate Name Exists"));
        assert_eq!(
            fault(400, "610", "Object Not Found", "Something you're trying to use has been made inactive.")
                .category,
            "not_found"
        );
        assert_eq!(
            fault(400, "5010", "Stale Object Error", "You and root were working on this at the same time.")
                .category,
            "conflict"
        );
        assert_eq!(
            fault(403, "3100", "ApplicationAuthorizationFailed", "").category,
            "insufficient_permission"
        );
        let revoked = fault(
            401,
            "3200",
            "message=AuthenticationFailed; errorCode=003200; statusCode=401",
            "Token invalid",
        );
        assert_eq!((revoked.category.as_str(), revoked.retryable), ("authorization_revoked", false));
        let expired = fault(
            401,
            "3200",
            "message=AuthenticationFailed; errorCode=003200; statusCode=401",
            "Token expired: 2024-05-01T10:00:00Z",
        );
        assert_eq!((expired.category.as_str(), expired.retryable), ("token_expired", true));
        let throttled = fault(
            429,
            "003001",
            "message=ThrottleExceeded; errorCode=003001; statusCode=429",
            "The request limit was reached.",
        );
        assert_eq!((throttled.category.as_str(), throttled.retryable), ("rate_limited", true));
        assert_eq!(throttled.provider_code.as_deref(), Some("003001"));
        assert!(throttled.provider_message.unwrap().contains("Retry-After: 30"));
    }

    #[test]
    fn quickbooks_lowercase_and_xml_faults_are_read_too() {
        let body = r#"{"warnings":null,"intuitObject":null,"fault":{"error":[{"message":"message=AuthenticationFailed; errorCode=003200; statusCode=401","detail":"Token expired: 1714557600000","code":"3200","element":null}],"type":"AUTHENTICATION"},"report":null,"queryResponse":null,"batchItemResponse":[],"attachableResponse":[],"syncErrorResponse":null,"requestId":null,"time":1714557600000,"status":null,"cdcresponse":[]}"#;
        assert_eq!(classify(Provider::QuickBooks, 401, &[], body).unwrap().category, "token_expired");
        let xml = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="2024-05-01T10:00:00.000-07:00">
  <Fault type="ValidationFault"><Error code="6240" element=""><Message>Duplicate Name Exists Error</Message><Detail>The name supplied already exists. : Another customer is already using this name.</Detail></Error></Fault>
</IntuitResponse>"#;
        let d = classify(Provider::QuickBooks, 400, &[], xml).unwrap();
        assert_eq!((d.category.as_str(), d.provider_code.as_deref()), ("conflict", Some("6240")));
        assert!(d.provider_message.unwrap().contains("Another customer is already using this name"));
        // No fault at all: the status decides, and a gateway's HTML page is not a message.
        let page = classify(Provider::QuickBooks, 503, &[], "<html>Service Unavailable</html>").unwrap();
        assert_eq!(page.category, "provider_unavailable");
        assert_eq!(page.provider_message, None);
    }

    #[test]
    fn a_xero_validation_exception_carries_its_validation_messages() {
        let body = json!({
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": [{
                "Type": "ACCREC",
                "Contact": {"ContactID": "00000000-0000-0000-0000-000000000000", "ValidationErrors": []},
                "LineItems": [{"Description": "Consulting", "ValidationErrors": [{"Message": "Account code '999' is not a valid code for this document."}]}],
                "ValidationErrors": [
                    {"Message": "Email address must be valid."},
                    {"Message": "Account code '999' is not a valid code for this document."}
                ]
            }]
        })
        .to_string();
        let d = classify(Provider::Xero, 400, &[], &body).unwrap();
        assert_eq!(d.provider_code.as_deref(), Some("ValidationException"));
        assert_eq!((d.category.as_str(), d.retryable), ("bad_request", false));
        let message = d.provider_message.unwrap();
        assert!(message.contains("Email address must be valid."), "{message}");
        assert_eq!(message.matches("Account code '999'").count(), 1, "{message}");
        assert!(!d.summary.contains("Email address"), "details stay out of the summary");

        let xml = "<ApiException xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"><ErrorNumber>10</ErrorNumber><Type>ValidationException</Type><Message>A validation exception occurred</Message><Elements><DataContractBase xsi:type=\"Invoice\"><ValidationErrors><ValidationError><Message>Invoice not of valid status for modification</Message></ValidationError></ValidationErrors></DataContractBase></Elements></ApiException>";
        let d = classify(Provider::Xero, 400, &[], xml).unwrap();
        assert_eq!(d.category, "bad_request");
        assert_eq!(d.provider_code.as_deref(), Some("ValidationException"));
        assert_eq!(d.provider_message.as_deref(), Some("Invoice not of valid status for modification"));
    }

    #[test]
    fn a_xero_429_is_told_apart_by_x_rate_limit_problem() {
        let h = [("Retry-After", "27"), ("X-Rate-Limit-Problem", "minute"), ("X-MinLimit-Remaining", "0")];
        let d = classify(Provider::Xero, 429, &h, "").unwrap();
        assert_eq!((d.category.as_str(), d.retryable), ("rate_limited", true));
        assert_eq!(d.provider_code.as_deref(), Some("minute"));
        assert!(d.summary.contains("60"), "{}", d.summary);
        assert!(d.provider_message.unwrap().contains("Retry-After: 27"));
        assert_eq!(is_rate_limited(Provider::Xero, 429, &headers(&h), b""), Some(Duration::from_secs(27)));
        let day = classify(Provider::Xero, 429, &[("X-Rate-Limit-Problem", "day")], "").unwrap();
        assert!(day.summary.contains("5,000"));
        let bare = classify(Provider::Xero, 429, &[], "").unwrap();
        assert_eq!(bare.category, "rate_limited");
        assert_eq!(bare.provider_code, None);
    }

    #[test]
    fn xero_problem_documents_pick_the_entry_of_their_status() {
        let problem = |status: u16, title: &str, detail: &str| {
            let body = json!({"Type": null, "Title": title, "Status": status, "Detail": detail, "Instance": "x", "Extensions": {}});
            classify(Provider::Xero, status, &[], &body.to_string()).unwrap()
        };
        let expired = problem(401, "Unauthorized", "TokenExpired: token expired at 05/01/2024 10:00:00");
        assert_eq!((expired.category.as_str(), expired.retryable), ("token_expired", true));
        assert_eq!(expired.provider_code.as_deref(), Some("TokenExpired"));
        let revoked = problem(401, "Unauthorized", "AuthenticationUnsuccessful");
        assert_eq!(revoked.category, "authorization_revoked");
        assert!(revoked.action.contains("reconnect Xero"));
        // The same word under 403 is still a permission problem.
        let forbidden = problem(403, "Forbidden", "AuthenticationUnsuccessful");
        assert_eq!(forbidden.category, "insufficient_permission");
        assert!(forbidden.action.contains("Standard or Adviser"));
        let offline = problem(
            503,
            "Service Unavailable",
            "The Xero API is temporarily unavailable. Please try again later.",
        );
        assert_eq!((offline.category.as_str(), offline.retryable), ("provider_unavailable", true));
        assert_eq!(
            problem(404, "Not Found", "The resource you're looking for cannot be found").category,
            "not_found"
        );
        let text = classify(Provider::Xero, 412, &[], "Precondition failed").unwrap();
        assert_eq!(text.category, "precondition_failed");
        assert_eq!(text.provider_message.as_deref(), Some("Precondition failed"));
    }

    #[test]
    fn a_myob_403_is_a_rate_limit_only_when_named_so() {
        let errors = |name: &str, message: &str, details: &str| {
            json!({"Errors": [{"Name": name, "Message": message, "AdditionalDetails": details, "ErrorCode": null, "Severity": "Error"}],
                   "Information": "Warning, error messages have not been finalised in this release and may change"})
            .to_string()
        };
        let limited =
            errors("RateLimitError", "API key has exceeded the daily rate limit", "Header: x-myobapi-key");
        let d = classify(Provider::Myob, 403, &[], &limited).unwrap();
        assert_eq!((d.category.as_str(), d.retryable), ("rate_limited", true));
        assert_eq!(d.provider_code.as_deref(), Some("RateLimitError"));
        assert_eq!(
            d.provider_message.as_deref(),
            Some("API key has exceeded the daily rate limit (Header: x-myobapi-key)")
        );
        assert_eq!(
            is_rate_limited(Provider::Myob, 403, &HeaderMap::new(), limited.as_bytes()),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            is_rate_limited(Provider::Myob, 403, &headers(&[("Retry-After", "2")]), limited.as_bytes()),
            Some(Duration::from_secs(2))
        );

        let denied =
            errors("AccessDenied", "Access denied", "The user does not have access to this resource");
        let d = classify(Provider::Myob, 403, &[], &denied).unwrap();
        assert_eq!((d.category.as_str(), d.retryable), ("insufficient_permission", false));
        assert_eq!(d.provider_code.as_deref(), Some("AccessDenied"));
        assert_eq!(is_rate_limited(Provider::Myob, 403, &HeaderMap::new(), denied.as_bytes()), None);

        let timeout = errors("GatewayTimeout", "Connection to the API has timed out", "");
        let d = classify(Provider::Myob, 504, &[], &timeout).unwrap();
        assert_eq!((d.category.as_str(), d.retryable), ("timeout", true));
        assert_eq!(classify(Provider::Myob, 418, &[], "").unwrap().category, "subscription_changed");
        assert!(classify(Provider::Myob, 423, &[], "").unwrap().retryable);
    }

    #[test]
    fn acumatica_login_failures_are_read_from_the_exception_message() {
        let body = |message: &str| {
            json!({"message": "An error has occurred.", "exceptionMessage": message,
                   "exceptionType": "PX.Data.PXException", "stackTrace": null})
            .to_string()
        };
        let locked = classify(
            Provider::Acumatica,
            500,
            &[],
            &body("Your account is locked out. Contact your system administrator."),
        )
        .unwrap();
        assert_eq!((locked.category.as_str(), locked.retryable), ("account_locked", false));
        assert!(locked.action.contains("unlock"));
        assert_eq!(locked.provider_code.as_deref(), Some("PX.Data.PXException"));
        assert_eq!(locked.http_status, Some(500));

        let rejected =
            classify(Provider::Acumatica, 500, &[], &body("Invalid credentials. Please try again.")).unwrap();
        assert_eq!((rejected.category.as_str(), rejected.retryable), ("credentials_rejected", false));
        let limit = classify(Provider::Acumatica, 500, &[], &body("API Login Limit")).unwrap();
        assert_eq!((limit.category.as_str(), limit.retryable), ("api_user_limit_reached", true));
        // A locked record in a data call is not a locked user.
        let record =
            classify(Provider::Acumatica, 500, &[], &body("The record is locked by another user.")).unwrap();
        assert_eq!(record.category, "provider_error");
        assert_eq!(classify(Provider::Acumatica, 401, &[], "").unwrap().category, "session_expired");
        assert_eq!(
            is_rate_limited(Provider::Acumatica, 429, &HeaderMap::new(), b""),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn only_rate_limits_have_a_wait() {
        let qbo_fault = json!({"Fault": {"Error": [{"Message": "ThrottleExceeded", "code": "003001"}], "type": "SERVICE"}}).to_string();
        assert_eq!(
            is_rate_limited(
                Provider::QuickBooks,
                429,
                &headers(&[("Retry-After", "5")]),
                qbo_fault.as_bytes()
            ),
            Some(Duration::from_secs(5))
        );
        assert!(
            is_rate_limited(Provider::QuickBooks, 400, &HeaderMap::new(), qbo_fault.as_bytes()).is_some()
        );
        assert_eq!(is_rate_limited(Provider::Xero, 503, &HeaderMap::new(), b""), None);
        assert_eq!(
            is_rate_limited(Provider::Xero, 429, &headers(&[("X-Rate-Limit-Problem", "day")]), b""),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            is_rate_limited(Provider::Myob, 429, &HeaderMap::new(), b""),
            Some(Duration::from_secs(1))
        );
        assert_eq!(is_rate_limited(Provider::Reckon, 429, &HeaderMap::new(), b""), None);
    }
}
