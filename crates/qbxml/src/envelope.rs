//! The envelope around requests: the `<?qbxml version?>`, `onError`, and the identifiers the
//! hub puts on requests (`requestID`) and message sets (`newMessageSetID`/`oldMessageSetID`).

use std::fmt;
use std::str::FromStr;

/// Which national edition of the qbXML spec a version belongs to (the `CA`/`UK` prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Region {
    /// No prefix: the US spec, which Reckon Accounts also speaks (e.g. `"6.1"`).
    #[default]
    Us,
    /// `CA` prefix, e.g. `"CA3.0"`.
    Canada,
    /// `UK` prefix, e.g. `"UK3.0"`.
    UnitedKingdom,
}

impl Region {
    fn prefix(self) -> &'static str {
        match self {
            Region::Us => "",
            Region::Canada => "CA",
            Region::UnitedKingdom => "UK",
        }
    }
}

/// The version in `<?qbxml version="X.Y"?>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QbxmlVersion {
    region: Region,
    major: u16,
    minor: u16,
}

impl QbxmlVersion {
    /// `6.1`: the version in the Reckon Web Connector's own examples.
    pub const RECKON: QbxmlVersion = QbxmlVersion::new(6, 1);

    /// A US-spec version `major.minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        QbxmlVersion { region: Region::Us, major, minor }
    }

    /// A version of a national edition of the spec.
    pub const fn with_region(region: Region, major: u16, minor: u16) -> Self {
        QbxmlVersion { region, major, minor }
    }

    pub fn region(self) -> Region {
        self.region
    }

    pub fn major(self) -> u16 {
        self.major
    }

    pub fn minor(self) -> u16 {
        self.minor
    }

    /// Whether query iterators exist in this version (they arrived in US qbXML 5.0).
    pub fn supports_iterators(self) -> bool {
        self.region == Region::Us && self.major >= 5
    }
}

impl fmt::Display for QbxmlVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}.{}", self.region.prefix(), self.major, self.minor)
    }
}

/// A `version` that is not `X.Y`, `CAX.Y` or `UKX.Y`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid qbXML version {0:?}: expected X.Y, e.g. \"6.1\"")]
pub struct InvalidVersion(pub String);

impl FromStr for QbxmlVersion {
    type Err = InvalidVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidVersion(s.to_owned());
        let (region, rest) = if let Some(rest) = s.strip_prefix("CA") {
            (Region::Canada, rest)
        } else if let Some(rest) = s.strip_prefix("UK") {
            (Region::UnitedKingdom, rest)
        } else {
            (Region::Us, s)
        };
        let (major, minor) = rest.split_once('.').ok_or_else(invalid)?;
        let number = |part: &str| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            part.parse::<u16>().map_err(|_| invalid())
        };
        Ok(QbxmlVersion::with_region(region, number(major)?, number(minor)?))
    }
}

/// What QuickBooks does with the rest of a message set when one request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnError {
    /// Stop; earlier requests stay applied, later ones come back with status 3231.
    StopOnError,
    /// Carry on with the next request.
    ContinueOnError,
    /// Undo the whole set. Part of the spec, though QuickBooks desktop documentation says it
    /// rejects it; kept as written so the hub never rewrites an app's choice.
    RollbackOnError,
}

impl OnError {
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::StopOnError => "stopOnError",
            OnError::ContinueOnError => "continueOnError",
            OnError::RollbackOnError => "rollbackOnError",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "stopOnError" => Some(OnError::StopOnError),
            "continueOnError" => Some(OnError::ContinueOnError),
            "rollbackOnError" => Some(OnError::RollbackOnError),
            _ => None,
        }
    }
}

impl fmt::Display for OnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An identifier the hub may not put on a request or message set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidId {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} is {len} characters; qbXML allows at most {max}")]
    TooLong { what: &'static str, len: usize, max: usize },
}

fn check_id(value: &str, what: &'static str, max: usize) -> Result<(), InvalidId> {
    let len = value.chars().count();
    if len == 0 {
        Err(InvalidId::Empty { what })
    } else if len > max {
        Err(InvalidId::TooLong { what, len, max })
    } else {
        Ok(())
    }
}

/// A `requestID` value: 1 to 50 characters (QuickBooks answers longer ones with status 1060).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    pub const MAX_CHARS: usize = 50;

    pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
        let value = value.into();
        check_id(&value, "requestID", Self::MAX_CHARS)?;
        Ok(RequestId(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A `newMessageSetID`/`oldMessageSetID` value: 1 to 23 characters.
///
/// With `newMessageSetID` on a message set that writes, QuickBooks keeps its outcome; a hub
/// that lost the response asks again with `oldMessageSetID` instead of re-sending the writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageSetId(String);

impl MessageSetId {
    pub const MAX_CHARS: usize = 23;

    pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
        let value = value.into();
        check_id(&value, "message set ID", Self::MAX_CHARS)?;
        Ok(MessageSetId(value))
    }

    /// The special `oldMessageSetID` that clears every recovery record of the application.
    pub fn clear_all() -> Self {
        MessageSetId("ClearAllMessageSets".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageSetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_print_back_the_same() {
        for text in ["6.1", "2.0", "13.0", "CA3.0", "UK2.1"] {
            let version: QbxmlVersion = text.parse().unwrap();
            assert_eq!(version.to_string(), text);
        }
        assert_eq!("6.1".parse::<QbxmlVersion>().unwrap(), QbxmlVersion::RECKON);
    }

    #[test]
    fn malformed_versions_are_rejected() {
        for text in ["", "6", "6.", ".1", "6.1.2", "v6.1", "AU6.1", "6.x", " 6.1", "+6.1"] {
            assert!(text.parse::<QbxmlVersion>().is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn iterators_need_qbxml_five_or_later() {
        assert!(!QbxmlVersion::new(4, 1).supports_iterators());
        assert!(QbxmlVersion::new(5, 0).supports_iterators());
        assert!(QbxmlVersion::RECKON.supports_iterators());
    }

    #[test]
    fn request_ids_are_limited_to_fifty_characters() {
        assert!(RequestId::new("x".repeat(50)).is_ok());
        assert_eq!(
            RequestId::new("é".repeat(51)),
            Err(InvalidId::TooLong { what: "requestID", len: 51, max: 50 })
        );
        assert!(matches!(RequestId::new(""), Err(InvalidId::Empty { .. })));
    }

    #[test]
    fn message_set_ids_are_limited_to_twenty_three_characters() {
        assert!(MessageSetId::new("a".repeat(23)).is_ok());
        assert!(MessageSetId::new("a".repeat(24)).is_err());
        assert_eq!(MessageSetId::clear_all().as_str(), "ClearAllMessageSets");
    }
}
