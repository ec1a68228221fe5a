//! Request documents submitted by apps: validated, described, and kept as the original text.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use quick_xml::events::{BytesPI, BytesStart, Event};

use crate::envelope::{OnError, QbxmlVersion};
use crate::error::{ParseError, ParseErrorKind};
use crate::rewrite::Rewrite;
use crate::scan::{AttrSpan, Scanner, is_blank};

/// What a request does, from its element name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// `…QueryRq` (including `HostQueryRq`, `CompanyQueryRq`, reports): reads only.
    Query,
    /// `…AddRq`.
    Add,
    /// `…ModRq`.
    Mod,
    /// `…DelRq` (`ListDelRq`, `TxnDelRq`, `DataExtDelRq`).
    Delete,
    /// `…VoidRq` (`TxnVoidRq`).
    Void,
    /// Anything else (`ListMergeRq`, …). Treated as a write: assuming a request is harmless to
    /// repeat is the mistake that duplicates invoices.
    Other,
}

impl RequestKind {
    /// Classifies a request element name such as `CustomerQueryRq`.
    pub fn of(name: &str) -> Self {
        let stem = name.strip_suffix("Rq").unwrap_or(name);
        if stem.ends_with("Query") {
            RequestKind::Query
        } else if stem.ends_with("Add") {
            RequestKind::Add
        } else if stem.ends_with("Mod") {
            RequestKind::Mod
        } else if stem.ends_with("Del") {
            RequestKind::Delete
        } else if stem.ends_with("Void") {
            RequestKind::Void
        } else {
            RequestKind::Other
        }
    }

    /// Safe to send twice.
    pub fn is_read_only(self) -> bool {
        self == RequestKind::Query
    }

    /// Changes the company file (or might): must not be applied twice.
    pub fn is_write(self) -> bool {
        !self.is_read_only()
    }
}

/// The `iterator` attribute of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IteratorMode {
    Start,
    Continue,
    Stop,
}

impl IteratorMode {
    pub fn as_str(self) -> &'static str {
        match self {
            IteratorMode::Start => "Start",
            IteratorMode::Continue => "Continue",
            IteratorMode::Stop => "Stop",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "Start" => Some(IteratorMode::Start),
            "Continue" => Some(IteratorMode::Continue),
            "Stop" => Some(IteratorMode::Stop),
            _ => None,
        }
    }
}

impl fmt::Display for IteratorMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the attributes the hub rewrites sit on a request's start tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RequestAttrSpans {
    pub(crate) request_id: Option<AttrSpan>,
    pub(crate) iterator: Option<AttrSpan>,
    pub(crate) iterator_id: Option<AttrSpan>,
}

/// One `…Rq` element of a request document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestElement<'a> {
    name: &'a str,
    kind: RequestKind,
    request_id: Option<Cow<'a, str>>,
    iterator: Option<IteratorMode>,
    iterator_id: Option<Cow<'a, str>>,
    span: Range<usize>,
    raw: &'a str,
    /// Where new attributes go: after the last attribute, or after the name.
    pub(crate) insert_at: usize,
    pub(crate) attrs: RequestAttrSpans,
}

impl<'a> RequestElement<'a> {
    /// The element name, e.g. `CustomerQueryRq`.
    pub fn name(&self) -> &'a str {
        self.name
    }

    pub fn kind(&self) -> RequestKind {
        self.kind
    }

    /// `requestID`, entities expanded.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    pub fn iterator(&self) -> Option<IteratorMode> {
        self.iterator
    }

    /// `iteratorID`, entities expanded.
    pub fn iterator_id(&self) -> Option<&str> {
        self.iterator_id.as_deref()
    }

    /// Byte range of the whole element (start tag to end tag) in the document.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The element exactly as written.
    pub fn raw(&self) -> &'a str {
        self.raw
    }
}

/// Where the message set's own attributes sit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageSetTag<'a> {
    /// Where new attributes go: after the last attribute.
    pub(crate) insert_at: usize,
    pub(crate) new_message_set_id: Option<(Cow<'a, str>, AttrSpan)>,
    pub(crate) old_message_set_id: Option<(Cow<'a, str>, AttrSpan)>,
}

/// A validated qbXML request document that still is, byte for byte, the text it came from.
///
/// ```
/// use ledgerlink_qbxml::{RequestDocument, RequestId, RequestKind};
///
/// let xml = r#"<?xml version="1.0"?><?qbxml version="6.1"?><QBXML><QBXMLMsgsRq onError="continueOnError"><CustomerQueryRq><FullName>Café Müller</FullName></CustomerQueryRq></QBXMLMsgsRq></QBXML>"#;
/// let doc = RequestDocument::parse(xml)?;
/// assert_eq!(doc.requests()[0].name(), "CustomerQueryRq");
/// assert_eq!(doc.requests()[0].kind(), RequestKind::Query);
///
/// let mut rewrite = doc.rewrite();
/// rewrite.set_request_id(0, &RequestId::new("job-7.0")?)?;
/// assert_eq!(
///     rewrite.finish(),
///     xml.replace("<CustomerQueryRq>", r#"<CustomerQueryRq requestID="job-7.0">"#)
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestDocument<'a> {
    xml: &'a str,
    version: QbxmlVersion,
    on_error: OnError,
    pub(crate) message_set: MessageSetTag<'a>,
    requests: Vec<RequestElement<'a>>,
}

impl<'a> RequestDocument<'a> {
    /// Validates `xml` as a qbXML request document: optional XML declaration, a
    /// `<?qbxml version="X.Y"?>`, `<QBXML>` holding one `<QBXMLMsgsRq onError="…">` holding one
    /// or more `…Rq` elements, all well-formed.
    pub fn parse(xml: &'a str) -> Result<Self, ParseError> {
        Parser { scan: Scanner::new(xml) }.document()
    }

    /// The document text, unchanged.
    pub fn as_str(&self) -> &'a str {
        self.xml
    }

    pub fn version(&self) -> QbxmlVersion {
        self.version
    }

    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    pub fn new_message_set_id(&self) -> Option<&str> {
        self.message_set.new_message_set_id.as_ref().map(|(v, _)| v.as_ref())
    }

    pub fn old_message_set_id(&self) -> Option<&str> {
        self.message_set.old_message_set_id.as_ref().map(|(v, _)| v.as_ref())
    }

    /// The requests, in document order (never empty).
    pub fn requests(&self) -> &[RequestElement<'a>] {
        &self.requests
    }

    /// Every request only reads, so the whole document is safe to send twice.
    pub fn is_read_only(&self) -> bool {
        self.requests.iter().all(|r| r.kind.is_read_only())
    }

    /// Starts an attribute rewrite of this document.
    pub fn rewrite(&self) -> Rewrite<'_, 'a> {
        Rewrite::new(self)
    }
}

struct Parser<'a> {
    scan: Scanner<'a>,
}

impl<'a> Parser<'a> {
    fn err(&self, at: usize, kind: ParseErrorKind) -> ParseError {
        self.scan.error_at(at, kind)
    }

    fn document(mut self) -> Result<RequestDocument<'a>, ParseError> {
        let mut version = None;
        let (root_start, root) = loop {
            let (at, event) = self.scan.next()?;
            match event {
                Event::Decl(_) if at == self.scan.start() => {}
                Event::Decl(_) => return Err(self.err(at, ParseErrorKind::MisplacedDeclaration)),
                Event::PI(pi) if pi.target() == b"qbxml" => {
                    if version.is_some() {
                        return Err(self.err(at, ParseErrorKind::DuplicateQbxmlVersion));
                    }
                    version = Some(self.version(&pi, at)?);
                }
                Event::PI(_) | Event::Comment(_) => {}
                Event::Text(text) if is_blank(&text) => {}
                Event::Text(_) | Event::CData(_) => {
                    return Err(self.err(at, unexpected_content("the prolog", "text")));
                }
                Event::DocType(_) => return Err(self.err(at, ParseErrorKind::DoctypeNotAllowed)),
                Event::Start(tag) => break (at, tag),
                Event::Empty(tag) => {
                    let name = self.scan.name(&tag);
                    let kind = if name == "QBXML" {
                        ParseErrorKind::MissingMessageSet("QBXMLMsgsRq")
                    } else {
                        unexpected_element("the document", "<QBXML>", name)
                    };
                    return Err(self.err(at, kind));
                }
                Event::End(_) => {
                    return Err(self.err(at, unexpected_content("the prolog", "end tag")));
                }
                Event::Eof => return Err(self.err(at, ParseErrorKind::Empty)),
            }
        };
        let root_name = self.scan.name(&root);
        if root_name != "QBXML" {
            return Err(self.err(root_start, unexpected_element("the document", "<QBXML>", root_name)));
        }
        let version = version.ok_or_else(|| self.err(root_start, ParseErrorKind::MissingQbxmlVersion))?;

        let mut body = None;
        loop {
            let (at, event) = self.scan.next()?;
            match event {
                Event::Start(tag) | Event::Empty(tag) if body.is_some() => {
                    let name = self.scan.name(&tag);
                    let kind = if name == "QBXMLMsgsRq" {
                        ParseErrorKind::DuplicateMessageSet(name.to_owned())
                    } else {
                        unexpected_element("<QBXML>", "<QBXMLMsgsRq>", name)
                    };
                    return Err(self.err(at, kind));
                }
                Event::Start(tag) => body = Some(self.message_set(&tag, at)?),
                Event::Empty(tag) => {
                    let name = self.scan.name(&tag);
                    let kind = if name == "QBXMLMsgsRq" {
                        ParseErrorKind::NoRequests
                    } else {
                        unexpected_element("<QBXML>", "<QBXMLMsgsRq>", name)
                    };
                    return Err(self.err(at, kind));
                }
                Event::End(_) => break,
                Event::Eof => {
                    return Err(self.err(root_start, ParseErrorKind::Unclosed("QBXML".into())));
                }
                other => self.structural_filler(&other, at, "<QBXML>")?,
            }
        }
        let (on_error, message_set, requests) =
            body.ok_or_else(|| self.err(root_start, ParseErrorKind::MissingMessageSet("QBXMLMsgsRq")))?;
        self.scan.expect_end_of_document()?;
        Ok(RequestDocument { xml: self.scan.xml(), version, on_error, message_set, requests })
    }

    /// Whitespace, comments and foreign processing instructions may sit between structural
    /// elements; nothing else may.
    fn structural_filler(&self, event: &Event<'a>, at: usize, parent: &str) -> Result<(), ParseError> {
        let kind = match event {
            Event::Comment(_) => return Ok(()),
            Event::Text(text) if is_blank(text) => return Ok(()),
            Event::PI(pi) if pi.target() == b"qbxml" => ParseErrorKind::MisplacedQbxmlVersion,
            Event::PI(_) => return Ok(()),
            Event::Text(_) => unexpected_content(parent, "text"),
            Event::CData(_) => unexpected_content(parent, "CDATA"),
            Event::Decl(_) => ParseErrorKind::MisplacedDeclaration,
            Event::DocType(_) => ParseErrorKind::DoctypeNotAllowed,
            Event::Start(_) | Event::Empty(_) | Event::End(_) | Event::Eof => {
                unexpected_content(parent, "markup")
            }
        };
        Err(self.err(at, kind))
    }

    fn version(&self, pi: &BytesPI<'a>, at: usize) -> Result<QbxmlVersion, ParseError> {
        let mut value = None;
        for attr in pi.attributes() {
            let attr =
                attr.map_err(|err| self.err(at, ParseErrorKind::InvalidQbxmlVersion(err.to_string())))?;
            if attr.key.as_ref() == b"version" {
                value = Some(String::from_utf8_lossy(&attr.value).into_owned());
            }
        }
        let value = value.unwrap_or_default();
        value.parse().map_err(|_| self.err(at, ParseErrorKind::InvalidQbxmlVersion(value)))
    }

    #[allow(clippy::type_complexity)]
    fn message_set(
        &mut self,
        tag: &BytesStart<'a>,
        tag_start: usize,
    ) -> Result<(OnError, MessageSetTag<'a>, Vec<RequestElement<'a>>), ParseError> {
        let name = self.scan.name(tag);
        if name != "QBXMLMsgsRq" {
            return Err(self.err(tag_start, unexpected_element("<QBXML>", "<QBXMLMsgsRq>", name)));
        }
        let mut on_error = None;
        let mut set = MessageSetTag {
            insert_at: tag_start + 1 + name.len(),
            new_message_set_id: None,
            old_message_set_id: None,
        };
        let scan = &self.scan;
        scan.for_each_attr(tag, tag_start, name, |attr| {
            let value = attr.value(scan, name)?;
            set.insert_at = attr.span.whole.end;
            match attr.key {
                "onError" => {
                    on_error = Some(OnError::parse(&value).ok_or_else(|| {
                        scan.error_at(
                            attr.span.value.start,
                            ParseErrorKind::InvalidOnError(value.clone().into_owned()),
                        )
                    })?);
                }
                "newMessageSetID" => set.new_message_set_id = Some((value, attr.span)),
                "oldMessageSetID" => set.old_message_set_id = Some((value, attr.span)),
                _ => {}
            }
            Ok(())
        })?;
        let on_error = on_error.ok_or_else(|| self.err(tag_start, ParseErrorKind::MissingOnError))?;

        let mut requests = Vec::new();
        loop {
            let (at, event) = self.scan.next()?;
            match event {
                Event::Start(tag) => {
                    let mut request = self.request(&tag, at)?;
                    let end = self.scan.skip_element(request.name, at, true)?;
                    request.span = at..end;
                    request.raw = &self.scan.xml()[at..end];
                    requests.push(request);
                }
                Event::Empty(tag) => {
                    let mut request = self.request(&tag, at)?;
                    let end = self.scan.position();
                    request.span = at..end;
                    request.raw = &self.scan.xml()[at..end];
                    requests.push(request);
                }
                Event::End(_) => break,
                Event::Eof => {
                    return Err(self.err(tag_start, ParseErrorKind::Unclosed(name.to_owned())));
                }
                other => self.structural_filler(&other, at, "<QBXMLMsgsRq>")?,
            }
        }
        if requests.is_empty() {
            return Err(self.err(tag_start, ParseErrorKind::NoRequests));
        }
        Ok((on_error, set, requests))
    }

    /// Reads a request's start tag; the caller fills in the span.
    fn request(&self, tag: &BytesStart<'a>, tag_start: usize) -> Result<RequestElement<'a>, ParseError> {
        let scan = &self.scan;
        let name = scan.name(tag);
        if name.len() <= 2 || !name.ends_with("Rq") {
            return Err(
                self.err(tag_start, unexpected_element("<QBXMLMsgsRq>", "a request element (…Rq)", name))
            );
        }
        let mut request = RequestElement {
            name,
            kind: RequestKind::of(name),
            request_id: None,
            iterator: None,
            iterator_id: None,
            span: tag_start..tag_start,
            raw: "",
            insert_at: tag_start + 1 + name.len(),
            attrs: RequestAttrSpans::default(),
        };
        scan.for_each_attr(tag, tag_start, name, |attr| {
            let value = attr.value(scan, name)?;
            request.insert_at = attr.span.whole.end;
            match attr.key {
                "requestID" => {
                    request.request_id = Some(value);
                    request.attrs.request_id = Some(attr.span);
                }
                "iterator" => {
                    request.iterator = Some(IteratorMode::parse(&value).ok_or_else(|| {
                        scan.error_at(
                            attr.span.value.start,
                            ParseErrorKind::InvalidIterator {
                                element: name.to_owned(),
                                value: value.clone().into_owned(),
                            },
                        )
                    })?);
                    request.attrs.iterator = Some(attr.span);
                }
                "iteratorID" => {
                    request.iterator_id = Some(value);
                    request.attrs.iterator_id = Some(attr.span);
                }
                _ => {}
            }
            Ok(())
        })?;

        let owned = || name.to_owned();
        let problem = match (request.iterator, &request.iterator_id) {
            (Some(_), _) if !request.kind.is_read_only() => Some(ParseErrorKind::IteratorOnNonQuery(owned())),
            (Some(IteratorMode::Continue | IteratorMode::Stop), None) => {
                Some(ParseErrorKind::MissingIteratorId(owned()))
            }
            (None | Some(IteratorMode::Start), Some(_)) => {
                Some(ParseErrorKind::UnexpectedIteratorId(owned()))
            }
            _ => None,
        };
        match problem {
            Some(kind) => Err(self.err(tag_start, kind)),
            None => Ok(request),
        }
    }
}

fn unexpected_element(parent: &str, expected: &'static str, found: &str) -> ParseErrorKind {
    ParseErrorKind::UnexpectedElement { parent: parent.to_owned(), expected, found: found.to_owned() }
}

fn unexpected_content(parent: &str, what: &'static str) -> ParseErrorKind {
    ParseErrorKind::UnexpectedContent { parent: parent.to_owned(), what }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<?qbxml version="6.1"?>
<QBXML>
  <QBXMLMsgsRq onError="stopOnError">
{body}
  </QBXMLMsgsRq>
</QBXML>
"#
        )
    }

    fn error_kind(xml: &str) -> ParseErrorKind {
        RequestDocument::parse(xml).unwrap_err().kind
    }

    #[test]
    fn request_kinds_come_from_the_element_name() {
        let table = [
            ("CustomerQueryRq", RequestKind::Query),
            ("HostQueryRq", RequestKind::Query),
            ("CompanyQueryRq", RequestKind::Query),
            ("GeneralSummaryReportQueryRq", RequestKind::Query),
            ("InvoiceAddRq", RequestKind::Add),
            ("CustomerModRq", RequestKind::Mod),
            ("ListDelRq", RequestKind::Delete),
            ("TxnDelRq", RequestKind::Delete),
            ("TxnVoidRq", RequestKind::Void),
            ("ListMergeRq", RequestKind::Other),
        ];
        for (name, kind) in table {
            assert_eq!(RequestKind::of(name), kind, "{name}");
            assert_eq!(kind.is_read_only(), kind == RequestKind::Query);
        }
    }

    #[test]
    fn a_message_set_with_several_requests_is_described_in_order() {
        let xml = doc(r#"    <HostQueryRq requestID="a"/>
    <CompanyQueryRq requestID="b" ></CompanyQueryRq>
    <CustomerQueryRq iterator="Continue" iteratorID="{x-1}"><MaxReturned>5</MaxReturned></CustomerQueryRq>
    <InvoiceAddRq><InvoiceAdd><Memo>Fish &amp; chips</Memo></InvoiceAdd></InvoiceAddRq>"#);
        let doc = RequestDocument::parse(&xml).unwrap();
        let names: Vec<_> = doc.requests().iter().map(|r| r.name()).collect();
        assert_eq!(names, ["HostQueryRq", "CompanyQueryRq", "CustomerQueryRq", "InvoiceAddRq"]);
        let ids: Vec<_> = doc.requests().iter().map(|r| r.request_id()).collect();
        assert_eq!(ids, [Some("a"), Some("b"), None, None]);
        let customers = &doc.requests()[2];
        assert_eq!(customers.iterator(), Some(IteratorMode::Continue));
        assert_eq!(customers.iterator_id(), Some("{x-1}"));
        assert!(!doc.is_read_only());
        assert_eq!(doc.version(), QbxmlVersion::RECKON);
        assert_eq!(doc.on_error(), OnError::StopOnError);
        for request in doc.requests() {
            assert_eq!(&xml[request.span()], request.raw());
            assert!(request.raw().starts_with(&format!("<{}", request.name())));
            assert!(request.raw().ends_with('>'));
        }
    }

    #[test]
    fn the_xml_declaration_is_optional_but_the_qbxml_version_is_not() {
        let without_decl = r#"<?qbxml version="6.1"?><QBXML><QBXMLMsgsRq onError="continueOnError"><CompanyQueryRq /></QBXMLMsgsRq></QBXML>"#;
        let doc = RequestDocument::parse(without_decl).unwrap();
        assert_eq!(doc.on_error(), OnError::ContinueOnError);
        assert_eq!(doc.requests()[0].name(), "CompanyQueryRq");

        let without_pi = r#"<?xml version="1.0"?><QBXML><QBXMLMsgsRq onError="continueOnError"><CompanyQueryRq /></QBXMLMsgsRq></QBXML>"#;
        assert_eq!(error_kind(without_pi), ParseErrorKind::MissingQbxmlVersion);
    }

    #[test]
    fn message_set_ids_and_a_byte_order_mark_are_understood() {
        let xml = "\u{feff}<?xml version=\"1.0\"?><?qbxml version=\"CA3.0\"?><QBXML><QBXMLMsgsRq onError=\"rollbackOnError\" newMessageSetID=\"n1\" oldMessageSetID=\"o&amp;1\"><CustomerAddRq/></QBXMLMsgsRq></QBXML>";
        let doc = RequestDocument::parse(xml).unwrap();
        assert_eq!(doc.on_error(), OnError::RollbackOnError);
        assert_eq!(doc.new_message_set_id(), Some("n1"));
        assert_eq!(doc.old_message_set_id(), Some("o&1"));
        assert_eq!(doc.version().to_string(), "CA3.0");
    }

    #[test]
    fn structural_mistakes_are_named() {
        let table: Vec<(String, ParseErrorKind)> = vec![
            (String::new(), ParseErrorKind::Empty),
            ("   \n".into(), ParseErrorKind::Empty),
            (
                r#"<?qbxml version="six"?><QBXML/>"#.into(),
                ParseErrorKind::InvalidQbxmlVersion("six".into()),
            ),
            (
                r#"<?qbxml?><QBXML/>"#.into(),
                ParseErrorKind::InvalidQbxmlVersion(String::new()),
            ),
            (
                r#"<?qbxml version="6.1"?><?qbxml version="6.1"?><QBXML/>"#.into(),
                ParseErrorKind::DuplicateQbxmlVersion,
            ),
            (
                r#"<?qbxml version="6.1"?><QBXML/>"#.into(),
                ParseErrorKind::MissingMessageSet("QBXMLMsgsRq"),
            ),
            (
                r#"<?qbxml version="6.1"?><QBXML></QBXML>"#.into(),
                ParseErrorKind::MissingMessageSet("QBXMLMsgsRq"),
            ),
            (
                r#"<?qbxml version="6.1"?><QBXML><QBXMLMsgsRq onError="stopOnError"/></QBXML>"#
                    .into(),
                ParseErrorKind::NoRequests,
            ),
            (
                r#"<?qbxml version="6.1"?><QBXML><QBXMLMsgsRq onError="stopOnError"> </QBXMLMsgsRq></QBXML>"#
                    .into(),
                ParseErrorKind::NoRequests,
            ),
            (
                r#"<?qbxml version="6.1"?><QBXML><QBXMLMsgsRq><HostQueryRq/></QBXMLMsgsRq></QBXML>"#
                    .into(),
                ParseErrorKind::MissingOnError,
            ),
            (
                r#"<?qbxml version="6.1"?><QBXML><QBXMLMsgsRq onError="ignore"><HostQueryRq/></QBXMLMsgsRq></QBXML>"#
                    .into(),
                ParseErrorKind::InvalidOnError("ignore".into()),
            ),
            (
                r#"<?qbxml version="6.1"?><QBXMLMsgsRq onError="stopOnError"><HostQueryRq/></QBXMLMsgsRq>"#
                    .into(),
                unexpected_element("the document", "<QBXML>", "QBXMLMsgsRq"),
            ),
            (
                doc("<Customer/>"),
                unexpected_element("<QBXMLMsgsRq>", "a request element (…Rq)", "Customer"),
            ),
            (doc("hello"), unexpected_content("<QBXMLMsgsRq>", "text")),
            (
                doc(r#"<CustomerAddRq iterator="Start"/>"#),
                ParseErrorKind::IteratorOnNonQuery("CustomerAddRq".into()),
            ),
            (
                doc(r#"<CustomerQueryRq iterator="Continue"/>"#),
                ParseErrorKind::MissingIteratorId("CustomerQueryRq".into()),
            ),
            (
                doc(r#"<CustomerQueryRq iteratorID="{1}"/>"#),
                ParseErrorKind::UnexpectedIteratorId("CustomerQueryRq".into()),
            ),
            (
                doc(r#"<CustomerQueryRq iterator="Next"/>"#),
                ParseErrorKind::InvalidIterator {
                    element: "CustomerQueryRq".into(),
                    value: "Next".into(),
                },
            ),
            (
                r#"<!DOCTYPE QBXML><?qbxml version="6.1"?><QBXML/>"#.into(),
                ParseErrorKind::DoctypeNotAllowed,
            ),
            (
                format!("{}<QBXML/>", doc("<HostQueryRq/>")),
                ParseErrorKind::ContentAfterRoot,
            ),
        ];
        for (xml, expected) in table {
            assert_eq!(error_kind(&xml), expected, "{xml}");
        }
    }

    #[test]
    fn errors_point_at_the_line_and_column_of_the_problem() {
        let xml = doc("    <CustomerQueryRq>\n      <FullName>Café Müller</Name>\n    </CustomerQueryRq>");
        let err = RequestDocument::parse(&xml).unwrap_err();
        assert!(matches!(err.kind, ParseErrorKind::Xml(_)), "{err}");
        assert_eq!(err.position.line, 6);
        // Characters, not bytes: "é" and "ü" are one column each.
        assert_eq!(err.position.column, 28, "{err}");
        assert_eq!(&xml[err.position.offset..err.position.offset + 7], "</Name>");
        assert!(err.to_string().contains("line 6, column 28"), "{err}");
    }

    #[test]
    fn bad_entities_in_text_or_attributes_are_rejected() {
        let text = RequestDocument::parse(&doc("<CustomerAddRq><Name>A &bogus; B</Name></CustomerAddRq>"))
            .unwrap_err();
        assert!(matches!(text.kind, ParseErrorKind::InvalidText { .. }), "{text}");
        let attr = RequestDocument::parse(&doc(r#"<CustomerAddRq requestID="a&b"/>"#)).unwrap_err();
        assert!(matches!(attr.kind, ParseErrorKind::InvalidAttribute { .. }), "{attr}");
    }

    #[test]
    fn unclosed_elements_are_reported_where_they_open() {
        let xml = r#"<?qbxml version="6.1"?><QBXML><QBXMLMsgsRq onError="stopOnError"><CustomerQueryRq><FullName>x</FullName>"#;
        let err = RequestDocument::parse(xml).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::Unclosed("CustomerQueryRq".into()));
        assert_eq!(err.position.offset, xml.find("<CustomerQueryRq").unwrap());
    }
}
