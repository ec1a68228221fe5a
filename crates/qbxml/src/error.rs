//! Errors: parse errors carry the position where the document went wrong.

use std::fmt;

/// Where in a document something was found: a byte offset plus a 1-based line and column
/// (the column counts characters, not bytes, so it matches what an editor shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// Byte offset from the start of the document.
    pub offset: usize,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text`. Offsets past the end are clamped to the end.
    pub fn locate(text: &str, offset: usize) -> Self {
        let bytes = text.as_bytes();
        let offset = offset.min(bytes.len());
        let before = &bytes[..offset];
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        // Count UTF-8 lead bytes only, so "日本" is two columns, not six.
        let column = 1 + before[line_start..].iter().filter(|&&b| (b & 0xC0) != 0x80).count();
        Position { offset, line, column }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {} (byte {})", self.line, self.column, self.offset)
    }
}

/// A qbXML document that could not be read, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at {position}")]
pub struct ParseError {
    /// What is wrong.
    pub kind: ParseErrorKind,
    /// Where it is wrong.
    pub position: Position,
}

impl ParseError {
    pub(crate) fn new(text: &str, offset: usize, kind: ParseErrorKind) -> Self {
        ParseError { kind, position: Position::locate(text, offset) }
    }
}

/// What is wrong with a qbXML document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// Not well-formed XML (reported by the XML reader).
    #[error("malformed XML: {0}")]
    Xml(String),
    /// An attribute is malformed, duplicated or has a bad entity reference.
    #[error("bad attribute on <{element}>: {message}")]
    InvalidAttribute { element: String, message: String },
    /// Text with a bad entity reference.
    #[error("bad text inside <{element}>: {message}")]
    InvalidText { element: String, message: String },
    /// The document has no root element.
    #[error("the document is empty: no <QBXML> element")]
    Empty,
    /// `<?xml ...?>` appears somewhere other than the very start.
    #[error("the XML declaration must come first")]
    MisplacedDeclaration,
    /// qbXML has no DTD; refusing one also refuses entity tricks.
    #[error("a DOCTYPE is not allowed in qbXML")]
    DoctypeNotAllowed,
    /// A request document without `<?qbxml version="X.Y"?>` before `<QBXML>`.
    #[error("missing <?qbxml version=\"X.Y\"?> before <QBXML>")]
    MissingQbxmlVersion,
    /// Two `<?qbxml?>` instructions.
    #[error("more than one <?qbxml?> processing instruction")]
    DuplicateQbxmlVersion,
    /// `<?qbxml?>` found after the root element started.
    #[error("<?qbxml?> must come before <QBXML>")]
    MisplacedQbxmlVersion,
    /// The `version` of `<?qbxml?>` is missing or not `X.Y` (optionally `CA`/`UK` prefixed).
    #[error("invalid qbXML version {0:?}: expected X.Y, e.g. \"6.1\"")]
    InvalidQbxmlVersion(String),
    /// An element that does not belong where it was found.
    #[error("expected {expected} inside {parent}, found <{found}>")]
    UnexpectedElement { parent: String, expected: &'static str, found: String },
    /// Text, CDATA or a processing instruction where only elements may appear.
    #[error("unexpected {what} inside {parent}")]
    UnexpectedContent { parent: String, what: &'static str },
    /// Something other than whitespace, comments or processing instructions after the root.
    #[error("unexpected content after the root element")]
    ContentAfterRoot,
    /// The document ended inside an element.
    #[error("<{0}> is never closed")]
    Unclosed(String),
    /// `QBXMLMsgsRq` without `onError`.
    #[error("<QBXMLMsgsRq> needs an onError attribute")]
    MissingOnError,
    /// `onError` is not one of the three allowed values.
    #[error("invalid onError {0:?}: expected stopOnError, continueOnError or rollbackOnError")]
    InvalidOnError(String),
    /// `<QBXML>` without the message set it must contain.
    #[error("<QBXML> contains no <{0}>")]
    MissingMessageSet(&'static str),
    /// `QBXMLMsgsRq` with no requests in it.
    #[error("<QBXMLMsgsRq> contains no requests")]
    NoRequests,
    /// A second message set where qbXML allows one.
    #[error("more than one <{0}>")]
    DuplicateMessageSet(String),
    /// A response without `statusCode`.
    #[error("<{0}> has no statusCode")]
    MissingStatusCode(String),
    /// A numeric attribute that is not an integer.
    #[error("{attribute}={value:?} on <{element}> is not an integer")]
    InvalidNumber { element: String, attribute: &'static str, value: String },
    /// `iterator` is not `Start`, `Continue` or `Stop`.
    #[error("invalid iterator {value:?} on <{element}>: expected Start, Continue or Stop")]
    InvalidIterator { element: String, value: String },
    /// `iterator="Continue"`/`"Stop"` without the `iteratorID` it continues.
    #[error("<{0}> continues or stops an iterator but has no iteratorID")]
    MissingIteratorId(String),
    /// `iteratorID` on a request that is not continuing or stopping an iterator.
    #[error("<{0}> has an iteratorID but no iterator=\"Continue\" or \"Stop\"")]
    UnexpectedIteratorId(String),
    /// Iterators exist only for queries.
    #[error("<{0}> is not a query, so it cannot use an iterator")]
    IteratorOnNonQuery(String),
}
