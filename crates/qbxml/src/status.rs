//! `statusCode`, `statusSeverity` and `statusMessage`, and what they mean for the hub.
//!
//! The code decides; the severity is only informative. QuickBooks documents the code ranges
//! (0–499 info, 500–999 warning, 1000 and up error) and responses have been seen whose severity
//! disagrees with the range, so nothing here looks at severity to classify.

use std::borrow::Cow;
use std::fmt;

/// A qbXML `statusCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(pub i32);

/// The meaning of a status code's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusClass {
    /// 0: processed.
    Ok,
    /// 1: a query matched nothing. A success that returns no records.
    NoMatch,
    /// 2–499: other informational codes; processed.
    Info,
    /// 500–999: processed, but the result may not be what was asked for.
    Warning,
    /// 1000 and up (and anything negative): not processed, no data.
    Error,
}

impl StatusCode {
    pub const OK: StatusCode = StatusCode(0);
    pub const NO_MATCH: StatusCode = StatusCode(1);
    /// Error recovery: nothing was saved for the `oldMessageSetID` asked about.
    pub const NO_CLEARED_STATE: StatusCode = StatusCode(600);
    /// "The request has not been processed": an earlier request in a `stopOnError` set failed,
    /// so this one was never attempted.
    pub const NOT_PROCESSED: StatusCode = StatusCode(3231);
    /// The `iteratorID` is unknown to this session (the session ended or the iterator expired).
    pub const ITERATOR_INVALID: StatusCode = StatusCode(3391);
    /// First and last of the "record in use / could not be saved" codes that clear up when the
    /// user closes the record or another session lets go of it.
    pub const RECORD_IN_USE_FIRST: StatusCode = StatusCode(3170);
    pub const RECORD_IN_USE_LAST: StatusCode = StatusCode(3180);

    pub fn class(self) -> StatusClass {
        match self.0 {
            0 => StatusClass::Ok,
            1 => StatusClass::NoMatch,
            2..=499 => StatusClass::Info,
            500..=999 => StatusClass::Warning,
            _ => StatusClass::Error,
        }
    }

    /// QuickBooks processed the request (ok, no match, info or warning).
    pub fn is_success(self) -> bool {
        self.class() != StatusClass::Error
    }

    /// A query that found nothing; still a success.
    pub fn is_no_match(self) -> bool {
        self == Self::NO_MATCH
    }

    pub fn is_warning(self) -> bool {
        self.class() == StatusClass::Warning
    }

    pub fn is_error(self) -> bool {
        self.class() == StatusClass::Error
    }

    /// The iterator this request continued no longer exists: restart the query from the start.
    pub fn is_iterator_invalid(self) -> bool {
        self == Self::ITERATOR_INVALID
    }

    /// The record was in use or could not be saved right now (3170–3180).
    pub fn is_record_in_use(self) -> bool {
        (Self::RECORD_IN_USE_FIRST..=Self::RECORD_IN_USE_LAST).contains(&self)
    }

    /// The request was skipped because an earlier one in its message set failed.
    pub fn is_not_processed(self) -> bool {
        self == Self::NOT_PROCESSED
    }

    /// Sending the same request again later may succeed: the record was in use, or the request
    /// was never attempted. An invalid iterator is not in this set: repeating a `Continue` with
    /// the same `iteratorID` fails again; the query must restart.
    pub fn is_retryable(self) -> bool {
        self.is_record_in_use() || self.is_not_processed()
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// `statusSeverity` as written by QuickBooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    Info,
    Warn,
    Error,
    /// Anything else; kept so an odd value does not fail the whole response.
    Other,
}

impl Severity {
    /// Reads `Info`/`Warn`/`Error` (any case; `Warning` too).
    pub fn parse(value: &str) -> Self {
        if value.eq_ignore_ascii_case("info") {
            Severity::Info
        } else if value.eq_ignore_ascii_case("warn") || value.eq_ignore_ascii_case("warning") {
            Severity::Warn
        } else if value.eq_ignore_ascii_case("error") {
            Severity::Error
        } else {
            Severity::Other
        }
    }
}

/// The status attributes of one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status<'a> {
    pub code: StatusCode,
    pub severity: Option<Severity>,
    pub message: Option<Cow<'a, str>>,
}

impl Status<'_> {
    /// Classified by code only; see the module docs.
    pub fn class(&self) -> StatusClass {
        self.code.class()
    }

    pub fn is_success(&self) -> bool {
        self.code.is_success()
    }

    pub fn is_iterator_invalid(&self) -> bool {
        self.code.is_iterator_invalid()
    }

    pub fn is_retryable(&self) -> bool {
        self.code.is_retryable()
    }

    /// Whether the severity says what the code's range says: worth a log line when not.
    pub fn severity_agrees_with_code(&self) -> bool {
        match (self.severity, self.code.class()) {
            (None | Some(Severity::Other), _) => false,
            (Some(Severity::Info), StatusClass::Ok | StatusClass::NoMatch | StatusClass::Info) => true,
            (Some(Severity::Warn), StatusClass::Warning) => true,
            (Some(Severity::Error), StatusClass::Error) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified_by_their_documented_ranges() {
        let table = [
            (0, StatusClass::Ok, true),
            (1, StatusClass::NoMatch, true),
            (2, StatusClass::Info, true),
            (499, StatusClass::Info, true),
            (500, StatusClass::Warning, true),
            (530, StatusClass::Warning, true),
            (600, StatusClass::Warning, true),
            (999, StatusClass::Warning, true),
            (1000, StatusClass::Error, false),
            (3100, StatusClass::Error, false),
            (3170, StatusClass::Error, false),
            (3391, StatusClass::Error, false),
            (9001, StatusClass::Error, false),
            (-1, StatusClass::Error, false),
        ];
        for (code, class, success) in table {
            let code = StatusCode(code);
            assert_eq!(code.class(), class, "{code}");
            assert_eq!(code.is_success(), success, "{code}");
            assert_eq!(code.is_error(), !success, "{code}");
        }
    }

    #[test]
    fn only_record_in_use_and_not_processed_codes_are_retryable() {
        let table = [
            (0, false),
            (1, false),
            (500, false),
            (1000, false),
            (3169, false),
            (3170, true),
            (3175, true),
            (3176, true),
            (3180, true),
            (3181, false),
            (3200, false),
            (3231, true),
            (3391, false),
        ];
        for (code, retryable) in table {
            assert_eq!(StatusCode(code).is_retryable(), retryable, "{code}");
        }
    }

    #[test]
    fn severity_does_not_change_what_a_code_means() {
        let iterator_gone = Status { code: StatusCode(3391), severity: Some(Severity::Info), message: None };
        assert!(iterator_gone.is_iterator_invalid());
        assert!(!iterator_gone.is_success());
        assert!(!iterator_gone.severity_agrees_with_code());

        let no_match = Status {
            code: StatusCode(1),
            severity: Some(Severity::Warn),
            message: Some("A query request did not find a matching object".into()),
        };
        assert!(no_match.is_success());
        assert!(no_match.code.is_no_match());
        assert!(!no_match.severity_agrees_with_code());

        let ok = Status { code: StatusCode::OK, severity: Some(Severity::Info), message: None };
        assert!(ok.severity_agrees_with_code());
    }

    #[test]
    fn severity_words_are_read_in_any_case() {
        let table = [
            ("Info", Severity::Info),
            ("INFO", Severity::Info),
            ("Warn", Severity::Warn),
            ("WARNING", Severity::Warn),
            ("Error", Severity::Error),
            ("Fatal", Severity::Other),
            ("", Severity::Other),
        ];
        for (text, severity) in table {
            assert_eq!(Severity::parse(text), severity, "{text}");
        }
    }
}
