//! Response documents from QuickBooks/Reckon: one streaming pass that describes each `…Rs`
//! element and keeps its raw text, borrowed from the input, along with where each of its
//! records is, so reading the records does not tokenise the text again.

use std::borrow::Cow;
use std::fmt;
use std::iter::FusedIterator;
use std::ops::Range;
use std::sync::Arc;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::error::{ParseError, ParseErrorKind};
use crate::scan::{Scanner, is_blank, text_in};
use crate::status::{Severity, Status, StatusCode};

/// The attributes of `QBXMLMsgsRs`, present when the request used error recovery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseMessageSet<'a> {
    pub new_message_set_id: Option<Cow<'a, str>>,
    /// `messageSetStatusCode`: the status of the message set as a whole.
    pub status_code: Option<StatusCode>,
}

/// One `…Rs` element.
#[derive(Clone, PartialEq, Eq)]
pub struct Response<'a> {
    name: &'a str,
    request_id: Option<Cow<'a, str>>,
    status: Status<'a>,
    iterator_remaining_count: Option<u32>,
    iterator_id: Option<Cow<'a, str>>,
    /// The records, found by the parse. Shared so that [`Records`] can outlive the borrow of
    /// the response, as it could when it was a reader over `raw`.
    records: Arc<[Record<'a>]>,
    span: Range<usize>,
    raw: &'a str,
}

// By hand to leave the record table out: it repeats `raw`, record by record.
impl fmt::Debug for Response<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("name", &self.name)
            .field("request_id", &self.request_id)
            .field("status", &self.status)
            .field("iterator_remaining_count", &self.iterator_remaining_count)
            .field("iterator_id", &self.iterator_id)
            .field("record_count", &self.record_count())
            .field("span", &self.span)
            .field("raw", &self.raw)
            .finish()
    }
}

impl<'a> Response<'a> {
    /// The element name, e.g. `CustomerQueryRs`.
    pub fn name(&self) -> &'a str {
        self.name
    }

    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    pub fn status(&self) -> &Status<'a> {
        &self.status
    }

    pub fn status_code(&self) -> StatusCode {
        self.status.code
    }

    pub fn status_severity(&self) -> Option<Severity> {
        self.status.severity
    }

    pub fn status_message(&self) -> Option<&str> {
        self.status.message.as_deref()
    }

    /// `iteratorRemainingCount`: records still to come after this page.
    pub fn iterator_remaining_count(&self) -> Option<u32> {
        self.iterator_remaining_count
    }

    pub fn iterator_id(&self) -> Option<&str> {
        self.iterator_id.as_deref()
    }

    /// An iterator page with more pages after it.
    pub fn has_more_pages(&self) -> bool {
        self.iterator_remaining_count.is_some_and(|n| n > 0)
    }

    /// How many direct children named `…Ret` (the returned records) the element has.
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// Byte range of the element in the document.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The element exactly as QuickBooks wrote it.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The returned records (direct `…Ret` children), each as raw XML.
    pub fn records(&self) -> Records<'a> {
        Records { records: Arc::clone(&self.records), next: 0 }
    }
}

/// A whole response document, parsed in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseDocument<'a> {
    xml: &'a str,
    message_set: ResponseMessageSet<'a>,
    responses: Vec<Response<'a>>,
}

impl<'a> ResponseDocument<'a> {
    /// Reads `<QBXML><QBXMLMsgsRs …>` and every response in it.
    pub fn parse(xml: &'a str) -> Result<Self, ParseError> {
        let mut reader = ResponseReader::new(xml)?;
        let mut responses = Vec::new();
        for response in reader.by_ref() {
            responses.push(response?);
        }
        Ok(ResponseDocument { xml, message_set: reader.message_set, responses })
    }

    pub fn as_str(&self) -> &'a str {
        self.xml
    }

    pub fn message_set(&self) -> &ResponseMessageSet<'a> {
        &self.message_set
    }

    pub fn responses(&self) -> &[Response<'a>] {
        &self.responses
    }

    /// The response to the request with this `requestID`.
    pub fn find(&self, request_id: &str) -> Option<&Response<'a>> {
        self.responses.iter().find(|r| r.request_id() == Some(request_id))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReaderState {
    Responses,
    Done,
}

/// Streams the responses of a document one at a time, without collecting them.
///
/// Construction reads up to the `QBXMLMsgsRs` start tag; iteration yields each response, then
/// checks the rest of the document. After an error the iterator ends.
pub struct ResponseReader<'a> {
    scan: Scanner<'a>,
    root_start: usize,
    set_start: usize,
    message_set: ResponseMessageSet<'a>,
    state: ReaderState,
}

impl<'a> ResponseReader<'a> {
    pub fn new(xml: &'a str) -> Result<Self, ParseError> {
        let mut scan = Scanner::new(xml);
        let (root_start, root) = loop {
            let (at, event) = scan.next()?;
            match event {
                Event::Decl(_) if at == scan.start() => {}
                Event::PI(_) | Event::Comment(_) => {}
                Event::Text(text) if is_blank(&text) => {}
                Event::Start(tag) => break (at, tag),
                Event::Eof => return Err(scan.error_at(at, ParseErrorKind::Empty)),
                Event::Empty(tag) if scan.name(&tag) == "QBXML" => {
                    return Err(scan.error_at(at, ParseErrorKind::MissingMessageSet("QBXMLMsgsRs")));
                }
                other => return Err(misplaced(&scan, &other, at, "the document", "<QBXML>")),
            }
        };
        if scan.name(&root) != "QBXML" {
            return Err(
                scan.error_at(root_start, unexpected_element("the document", "<QBXML>", scan.name(&root)))
            );
        }
        loop {
            let (at, event) = scan.next()?;
            let empty = matches!(event, Event::Empty(_));
            match event {
                Event::Start(tag) | Event::Empty(tag) if scan.name(&tag) == "QBXMLMsgsRs" => {
                    let message_set = read_message_set(&scan, &tag, at)?;
                    let mut reader = ResponseReader {
                        scan,
                        root_start,
                        set_start: at,
                        message_set,
                        state: ReaderState::Responses,
                    };
                    if empty {
                        reader.finish_root()?;
                        reader.state = ReaderState::Done;
                    }
                    return Ok(reader);
                }
                Event::End(_) => {
                    return Err(scan.error_at(root_start, ParseErrorKind::MissingMessageSet("QBXMLMsgsRs")));
                }
                Event::Eof => {
                    return Err(scan.error_at(root_start, ParseErrorKind::Unclosed("QBXML".into())));
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::Text(text) if is_blank(&text) => {}
                other => return Err(misplaced(&scan, &other, at, "<QBXML>", "<QBXMLMsgsRs>")),
            }
        }
    }

    /// The `QBXMLMsgsRs` attributes (known as soon as the reader exists).
    pub fn message_set(&self) -> &ResponseMessageSet<'a> {
        &self.message_set
    }

    fn next_response(&mut self) -> Result<Option<Response<'a>>, ParseError> {
        loop {
            let (at, event) = self.scan.next()?;
            match event {
                Event::Start(tag) => {
                    let mut response = read_response_start(&self.scan, &tag, at)?;
                    let end = self.read_records(&mut response, at)?;
                    response.span = at..end;
                    response.raw = &self.scan.xml()[at..end];
                    return Ok(Some(response));
                }
                Event::Empty(tag) => {
                    let mut response = read_response_start(&self.scan, &tag, at)?;
                    let end = self.scan.position();
                    response.span = at..end;
                    response.raw = &self.scan.xml()[at..end];
                    return Ok(Some(response));
                }
                Event::End(_) => {
                    self.finish_root()?;
                    return Ok(None);
                }
                Event::Eof => {
                    return Err(self
                        .scan
                        .error_at(self.set_start, ParseErrorKind::Unclosed("QBXMLMsgsRs".into())));
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::Text(text) if is_blank(&text) => {}
                other => {
                    return Err(misplaced(
                        &self.scan,
                        &other,
                        at,
                        "<QBXMLMsgsRs>",
                        "a response element (…Rs)",
                    ));
                }
            }
        }
    }

    /// Reads the content of a response, noting where each record starts and ends. This is the
    /// hot loop: it only tracks depth and looks at names one level down.
    fn read_records(&mut self, response: &mut Response<'a>, tag_start: usize) -> Result<usize, ParseError> {
        let xml = self.scan.xml();
        let mut records = Vec::new();
        // The record being read, if the element open one level down is one: where its start
        // tag begins, and its name.
        let mut open: Option<(usize, &'a str)> = None;
        let mut depth = 1usize;
        loop {
            // Where the next event starts: text is never skipped, so nothing lies between.
            let at = self.scan.position();
            match self.scan.next_event()? {
                Event::Start(tag) => {
                    if depth == 1 && is_record(&tag) {
                        open = Some((at, self.scan.name(&tag)));
                    }
                    depth += 1;
                }
                Event::Empty(tag) => {
                    if depth == 1 && is_record(&tag) {
                        let raw = xml.get(at..self.scan.position()).unwrap_or_default();
                        records.push(Record { name: self.scan.name(&tag), raw });
                    }
                }
                Event::End(_) => {
                    depth -= 1;
                    if depth == 1
                        && let Some((start, name)) = open.take()
                    {
                        let raw = xml.get(start..self.scan.position()).unwrap_or_default();
                        records.push(Record { name, raw });
                    }
                    if depth == 0 {
                        response.records = records.into();
                        return Ok(self.scan.position());
                    }
                }
                Event::Eof => {
                    return Err(self
                        .scan
                        .error_at(tag_start, ParseErrorKind::Unclosed(response.name.to_owned())));
                }
                Event::DocType(_) => {
                    return Err(self.scan.error_at_last("<!DOCTYPE", ParseErrorKind::DoctypeNotAllowed));
                }
                Event::Decl(_) => {
                    return Err(self.scan.error_at_last("<?xml", ParseErrorKind::MisplacedDeclaration));
                }
                Event::Text(_) | Event::CData(_) | Event::Comment(_) | Event::PI(_) => {}
            }
        }
    }

    /// After `</QBXMLMsgsRs>`: `</QBXML>` and nothing but whitespace, comments and PIs.
    fn finish_root(&mut self) -> Result<(), ParseError> {
        loop {
            let (at, event) = self.scan.next()?;
            match event {
                Event::End(_) => break,
                Event::Eof => {
                    return Err(self
                        .scan
                        .error_at(self.root_start, ParseErrorKind::Unclosed("QBXML".into())));
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::Text(text) if is_blank(&text) => {}
                Event::Start(tag) | Event::Empty(tag) if self.scan.name(&tag) == "QBXMLMsgsRs" => {
                    return Err(self
                        .scan
                        .error_at(at, ParseErrorKind::DuplicateMessageSet("QBXMLMsgsRs".into())));
                }
                other => return Err(misplaced(&self.scan, &other, at, "<QBXML>", "</QBXML>")),
            }
        }
        self.scan.expect_end_of_document()
    }
}

impl<'a> Iterator for ResponseReader<'a> {
    type Item = Result<Response<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state == ReaderState::Done {
            return None;
        }
        match self.next_response() {
            Ok(Some(response)) => Some(Ok(response)),
            Ok(None) => {
                self.state = ReaderState::Done;
                None
            }
            Err(err) => {
                self.state = ReaderState::Done;
                Some(Err(err))
            }
        }
    }
}

fn is_record(tag: &BytesStart<'_>) -> bool {
    tag.name().as_ref().ends_with(b"Ret")
}

fn read_message_set<'a>(
    scan: &Scanner<'a>,
    tag: &BytesStart<'a>,
    tag_start: usize,
) -> Result<ResponseMessageSet<'a>, ParseError> {
    let mut set = ResponseMessageSet::default();
    scan.for_each_attr(tag, tag_start, "QBXMLMsgsRs", |attr| {
        match attr.key {
            "newMessageSetID" => set.new_message_set_id = Some(attr.value(scan, "QBXMLMsgsRs")?),
            "messageSetStatusCode" => {
                let value = attr.value(scan, "QBXMLMsgsRs")?;
                set.status_code = Some(StatusCode(parse_number(
                    scan,
                    &value,
                    attr.span.value.start,
                    "QBXMLMsgsRs",
                    "messageSetStatusCode",
                )?));
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(set)
}

/// Reads a response's start tag; the caller fills in the span and records.
fn read_response_start<'a>(
    scan: &Scanner<'a>,
    tag: &BytesStart<'a>,
    tag_start: usize,
) -> Result<Response<'a>, ParseError> {
    let name = scan.name(tag);
    if name.len() <= 2 || !name.ends_with("Rs") {
        return Err(
            scan.error_at(tag_start, unexpected_element("<QBXMLMsgsRs>", "a response element (…Rs)", name))
        );
    }
    let mut code = None;
    let mut response = Response {
        name,
        request_id: None,
        status: Status { code: StatusCode::OK, severity: None, message: None },
        iterator_remaining_count: None,
        iterator_id: None,
        records: Arc::default(),
        span: tag_start..tag_start,
        raw: "",
    };
    scan.for_each_attr(tag, tag_start, name, |attr| {
        match attr.key {
            "requestID" => response.request_id = Some(attr.value(scan, name)?),
            "statusCode" => {
                let value = attr.value(scan, name)?;
                code = Some(parse_number(scan, &value, attr.span.value.start, name, "statusCode")?);
            }
            "statusSeverity" => {
                response.status.severity = Some(Severity::parse(&attr.value(scan, name)?));
            }
            "statusMessage" => response.status.message = Some(attr.value(scan, name)?),
            "iteratorRemainingCount" => {
                let value = attr.value(scan, name)?;
                response.iterator_remaining_count =
                    Some(parse_number(scan, &value, attr.span.value.start, name, "iteratorRemainingCount")?);
            }
            "iteratorID" => response.iterator_id = Some(attr.value(scan, name)?),
            _ => {}
        }
        Ok(())
    })?;
    response.status.code = StatusCode(
        code.ok_or_else(|| scan.error_at(tag_start, ParseErrorKind::MissingStatusCode(name.to_owned())))?,
    );
    Ok(response)
}

fn parse_number<T: std::str::FromStr>(
    scan: &Scanner<'_>,
    value: &str,
    at: usize,
    element: &str,
    attribute: &'static str,
) -> Result<T, ParseError> {
    value.parse().map_err(|_| {
        scan.error_at(
            at,
            ParseErrorKind::InvalidNumber { element: element.to_owned(), attribute, value: value.to_owned() },
        )
    })
}

fn unexpected_element(parent: &str, expected: &'static str, found: &str) -> ParseErrorKind {
    ParseErrorKind::UnexpectedElement { parent: parent.to_owned(), expected, found: found.to_owned() }
}

/// The error for an event that has no place where it was found.
fn misplaced(
    scan: &Scanner<'_>,
    event: &Event<'_>,
    at: usize,
    parent: &str,
    expected: &'static str,
) -> ParseError {
    let kind = match event {
        Event::Start(tag) | Event::Empty(tag) => {
            unexpected_element(parent, expected, &String::from_utf8_lossy(tag.name().as_ref()))
        }
        Event::Decl(_) => ParseErrorKind::MisplacedDeclaration,
        Event::DocType(_) => ParseErrorKind::DoctypeNotAllowed,
        Event::CData(_) => ParseErrorKind::UnexpectedContent { parent: parent.to_owned(), what: "CDATA" },
        _ => ParseErrorKind::UnexpectedContent { parent: parent.to_owned(), what: "text" },
    };
    scan.error_at(at, kind)
}

/// One returned record (a `…Ret` child of a response), as raw XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    name: &'a str,
    raw: &'a str,
}

/// The identifier of a record: lists have `ListID`, transactions `TxnID`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordId<'a> {
    ListId(Cow<'a, str>),
    TxnId(Cow<'a, str>),
}

impl RecordId<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            RecordId::ListId(id) | RecordId::TxnId(id) => id,
        }
    }
}

impl<'a> Record<'a> {
    /// The element name, e.g. `CustomerRet`.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The record exactly as written.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The record's own `ListID` or `TxnID` (a direct child, so `CustomerRef/ListID` inside an
    /// invoice is not mistaken for the invoice's id).
    pub fn list_id_or_txn_id(&self) -> Option<RecordId<'a>> {
        list_id_or_txn_id(self.raw)
    }
}

/// The `ListID` or `TxnID` that is a direct child of the record element in `record_xml`,
/// whichever comes first; `None` if there is neither or the XML is malformed.
pub fn list_id_or_txn_id(record_xml: &str) -> Option<RecordId<'_>> {
    let mut reader = Reader::from_str(record_xml);
    let mut depth = 0usize;
    loop {
        match reader.read_event().ok()? {
            Event::Start(tag) => {
                depth += 1;
                if depth == 2 {
                    let is_list = match tag.name().as_ref() {
                        b"ListID" => true,
                        b"TxnID" => false,
                        _ => continue,
                    };
                    let Event::Text(text) = reader.read_event().ok()? else {
                        return None;
                    };
                    let id = quick_xml::escape::unescape(text_in(record_xml, &text).trim()).ok()?;
                    return match (id.is_empty(), is_list) {
                        (true, _) => None,
                        (false, true) => Some(RecordId::ListId(id)),
                        (false, false) => Some(RecordId::TxnId(id)),
                    };
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return None;
                }
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// Iterator over the records of one response; see [`Response::records`].
///
/// The parse already found the records, so this only walks the list it made.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    records: Arc<[Record<'a>]>,
    next: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        let record = *self.records.get(self.next)?;
        self.next += 1;
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.records.len().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Records<'_> {}

impl FusedIterator for Records<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::StatusClass;

    const MULTI: &str = r#"<?xml version="1.0" ?>
<QBXML>
  <QBXMLMsgsRs newMessageSetID="set-1" messageSetStatusCode="0">
    <HostQueryRs requestID="h" statusCode="0" statusSeverity="Info" statusMessage="Status OK">
      <HostRet><ProductName>Reckon Accounts Hosted 2023</ProductName><SupportedQBXMLVersion>6.1</SupportedQBXMLVersion></HostRet>
    </HostQueryRs>
    <CustomerQueryRs requestID="c" statusCode="1" statusSeverity="Warn" statusMessage="A query request did not find a matching object in QuickBooks" />
    <InvoiceQueryRs requestID="i" statusCode="0" statusSeverity="Info" statusMessage="Status OK" iteratorRemainingCount="3" iteratorID="{it-1}">
      <InvoiceRet><TxnID>11-1</TxnID><CustomerRef><ListID>80-1</ListID></CustomerRef><Memo>Café &amp; Müller</Memo></InvoiceRet>
      <InvoiceRet><CustomerRef><ListID>80-2</ListID></CustomerRef><TxnID>11-2</TxnID></InvoiceRet>
      <InvoiceRet/>
    </InvoiceQueryRs>
    <CustomerModRs requestID="m" statusCode="3175" statusSeverity="Error" statusMessage="There was an error when modifying a Customer list, element &quot;X&quot;."/>
  </QBXMLMsgsRs>
</QBXML>
"#;

    #[test]
    fn every_response_of_a_message_set_is_described() {
        let doc = ResponseDocument::parse(MULTI).unwrap();
        assert_eq!(
            doc.message_set(),
            &ResponseMessageSet {
                new_message_set_id: Some("set-1".into()),
                status_code: Some(StatusCode::OK),
            }
        );
        let summary: Vec<_> = doc
            .responses()
            .iter()
            .map(|r| (r.name(), r.request_id(), r.status_code().0, r.record_count()))
            .collect();
        assert_eq!(
            summary,
            [
                ("HostQueryRs", Some("h"), 0, 1),
                ("CustomerQueryRs", Some("c"), 1, 0),
                ("InvoiceQueryRs", Some("i"), 0, 3),
                ("CustomerModRs", Some("m"), 3175, 0),
            ]
        );
        let no_match = doc.find("c").unwrap();
        assert!(no_match.status().is_success());
        assert_eq!(no_match.status().class(), StatusClass::NoMatch);
        assert_eq!(no_match.status_severity(), Some(Severity::Warn));

        let in_use = doc.find("m").unwrap();
        assert!(in_use.status().is_retryable());
        assert_eq!(
            in_use.status_message(),
            Some("There was an error when modifying a Customer list, element \"X\".")
        );
    }

    #[test]
    fn raw_response_text_is_kept_byte_for_byte() {
        let doc = ResponseDocument::parse(MULTI).unwrap();
        for response in doc.responses() {
            assert_eq!(&MULTI[response.span()], response.raw());
            assert!(response.raw().starts_with(&format!("<{}", response.name())));
        }
        let invoices = doc.find("i").unwrap();
        assert!(invoices.raw().contains("<Memo>Café &amp; Müller</Memo>"));
        assert!(invoices.raw().ends_with("</InvoiceQueryRs>"));
        assert_eq!(invoices.iterator_id(), Some("{it-1}"));
        assert_eq!(invoices.iterator_remaining_count(), Some(3));
        assert!(invoices.has_more_pages());
    }

    #[test]
    fn records_are_the_direct_ret_children_with_their_own_ids() {
        let doc = ResponseDocument::parse(MULTI).unwrap();
        let invoices = doc.find("i").unwrap();
        let records: Vec<_> = invoices.records().collect();
        assert_eq!(records.len(), invoices.record_count());
        assert!(records.iter().all(|r| r.name() == "InvoiceRet"));
        assert!(records[0].raw().starts_with("<InvoiceRet><TxnID>11-1"));
        assert!(records[0].raw().ends_with("</InvoiceRet>"));
        assert_eq!(records[2].raw(), "<InvoiceRet/>");
        let ids: Vec<_> = records.iter().map(|r| r.list_id_or_txn_id()).collect();
        assert_eq!(ids, [Some(RecordId::TxnId("11-1".into())), Some(RecordId::TxnId("11-2".into())), None]);
        let host = doc.find("h").unwrap();
        assert_eq!(host.records().count(), 1);
        assert_eq!(host.records().next().unwrap().list_id_or_txn_id(), None);
    }

    /// How `records()` used to find the records: a second reader over the response's text.
    fn records_by_retokenising<'a>(raw: &'a str) -> Vec<Record<'a>> {
        let mut reader = Reader::from_str(raw);
        let offset = |reader: &Reader<&[u8]>| usize::try_from(reader.buffer_position()).unwrap();
        let mut records = Vec::new();
        let mut depth = 0usize;
        loop {
            let start = offset(&reader);
            match reader.read_event().unwrap() {
                Event::Start(tag) => {
                    depth += 1;
                    if depth == 2 && is_record(&tag) {
                        reader.read_to_end(tag.name()).unwrap();
                        depth -= 1;
                        let name = text_in(raw, tag.name().as_ref());
                        records.push(Record { name, raw: &raw[start..offset(&reader)] });
                    }
                }
                Event::Empty(tag) if depth == 1 && is_record(&tag) => {
                    let name = text_in(raw, tag.name().as_ref());
                    records.push(Record { name, raw: &raw[start..offset(&reader)] });
                }
                Event::End(_) => {
                    depth -= 1;
                    if depth == 0 {
                        return records;
                    }
                }
                Event::Eof => return records,
                _ => {}
            }
        }
    }

    /// False if `xml` does not parse.
    fn assert_records_as_a_second_reader_finds_them(xml: &str) -> bool {
        let Ok(doc) = ResponseDocument::parse(xml) else { return false };
        for response in doc.responses() {
            let records: Vec<_> = response.records().collect();
            assert_eq!(records, records_by_retokenising(response.raw()), "{xml}");
            assert_eq!(response.records().len(), response.record_count());
        }
        true
    }

    #[test]
    fn the_records_noted_during_the_parse_are_those_a_second_reader_finds() {
        let tricky = [
            MULTI,
            // Same-named nesting, attributes, odd spacing, and markup-like text that is not
            // markup.
            "\u{feff}<QBXML><QBXMLMsgsRs><ARs statusCode=\"0\"><ARet><ARet>x</ARet><BRet/></ARet>\
             <ARet a=\"1\" >y</ARet ><!-- <CRet/> --><![CDATA[<DRet/>]]><?pi <ERet/>?>\
             <ARet\n/>z&amp;<Other><FRet/></Other><GRet></GRet></ARs><BRs statusCode=\"0\"/>\
             </QBXMLMsgsRs></QBXML>",
            "<QBXML><QBXMLMsgsRs><ARs statusCode=\"0\"><Ret/><ret/><XRetY/></ARs></QBXMLMsgsRs></QBXML>",
            "<QBXML><QBXMLMsgsRs><ARs statusCode=\"0\">Café<ÄRet>日本</ÄRet></ARs></QBXMLMsgsRs></QBXML>",
        ];
        for xml in tricky {
            assert!(assert_records_as_a_second_reader_finds_them(xml), "{xml}");
        }
        let doc = ResponseDocument::parse(tricky[1]).unwrap();
        let names: Vec<_> = doc.responses()[0].records().map(|r| r.name()).collect();
        assert_eq!(names, ["ARet", "ARet", "ARet", "GRet"]);

        // Mutations of a valid document: whatever still parses agrees too.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut random = move |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        const PIECES: &[&str] = &["<", ">", "/", "<XRet>", "</XRet>", "<XRet/>", "</InvoiceRet>", "&amp;"];
        let mut parsed = 0;
        for _ in 0..2000 {
            let mut text = MULTI.to_owned();
            for _ in 0..1 + random(3) {
                let mut at = random(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                if random(2) == 0 && at < text.len() {
                    text.remove(at);
                } else {
                    text.insert_str(at, PIECES[random(PIECES.len())]);
                }
            }
            parsed += usize::from(assert_records_as_a_second_reader_finds_them(&text));
        }
        assert!(parsed > 200, "only {parsed} mutants parsed");
    }

    #[test]
    fn records_can_outlive_the_response_they_came_from() {
        let records = {
            let doc = ResponseDocument::parse(MULTI).unwrap();
            doc.find("i").unwrap().records()
        };
        assert_eq!(records.len(), 3);
        assert_eq!(records.map(|r| r.raw()).last(), Some("<InvoiceRet/>"));
    }

    #[test]
    fn the_debug_view_of_a_response_lists_its_fields_not_its_records() {
        let doc = ResponseDocument::parse(MULTI).unwrap();
        let debug = format!("{:?}", doc.find("h").unwrap());
        assert!(debug.starts_with("Response { name: \"HostQueryRs\", request_id: Some(\"h\"), "), "{debug}");
        assert!(debug.contains(", record_count: 1, span: "), "{debug}");
    }

    #[test]
    fn responses_stream_one_at_a_time() {
        let mut reader = ResponseReader::new(MULTI).unwrap();
        assert_eq!(reader.message_set().new_message_set_id.as_deref(), Some("set-1"));
        let first = reader.next().unwrap().unwrap();
        assert_eq!(first.name(), "HostQueryRs");
        assert_eq!(reader.count(), 3);
    }

    #[test]
    fn an_empty_message_set_has_no_responses() {
        let doc = ResponseDocument::parse("<QBXML><QBXMLMsgsRs/></QBXML>").unwrap();
        assert!(doc.responses().is_empty());
    }

    #[test]
    fn responses_that_cannot_be_trusted_are_errors() {
        let wrap = |inner: &str| format!("<QBXML><QBXMLMsgsRs>{inner}</QBXMLMsgsRs></QBXML>");
        let table: Vec<(String, ParseErrorKind)> = vec![
            (
                wrap(r#"<CustomerQueryRs requestID="1"/>"#),
                ParseErrorKind::MissingStatusCode("CustomerQueryRs".into()),
            ),
            (
                wrap(r#"<CustomerQueryRs statusCode="ok"/>"#),
                ParseErrorKind::InvalidNumber {
                    element: "CustomerQueryRs".into(),
                    attribute: "statusCode",
                    value: "ok".into(),
                },
            ),
            (
                wrap(r#"<CustomerQueryRs statusCode="0" iteratorRemainingCount="-1"/>"#),
                ParseErrorKind::InvalidNumber {
                    element: "CustomerQueryRs".into(),
                    attribute: "iteratorRemainingCount",
                    value: "-1".into(),
                },
            ),
            (
                wrap(r#"<CustomerRet/>"#),
                unexpected_element("<QBXMLMsgsRs>", "a response element (…Rs)", "CustomerRet"),
            ),
            (
                "<QBXML><QBXMLMsgsRq onError=\"stopOnError\"/></QBXML>".into(),
                unexpected_element("<QBXML>", "<QBXMLMsgsRs>", "QBXMLMsgsRq"),
            ),
            (
                "<QBXML><QBXMLMsgsRs/><QBXMLMsgsRs/></QBXML>".into(),
                ParseErrorKind::DuplicateMessageSet("QBXMLMsgsRs".into()),
            ),
            ("<QBXML/>".into(), ParseErrorKind::MissingMessageSet("QBXMLMsgsRs")),
            ("".into(), ParseErrorKind::Empty),
            (
                "<QBXML><QBXMLMsgsRs><CustomerQueryRs statusCode=\"0\">".into(),
                ParseErrorKind::Unclosed("CustomerQueryRs".into()),
            ),
            ("<QBXML><QBXMLMsgsRs></QBXMLMsgsRs></QBXML>trailing".into(), ParseErrorKind::ContentAfterRoot),
        ];
        for (xml, expected) in table {
            assert_eq!(ResponseDocument::parse(&xml).unwrap_err().kind, expected, "{xml}");
        }
    }

    #[test]
    fn a_doctype_inside_a_response_is_refused_where_it_starts() {
        let xml = r#"<QBXML><QBXMLMsgsRs><CustomerQueryRs statusCode="0"><!DOCTYPE x></CustomerQueryRs></QBXMLMsgsRs></QBXML>"#;
        let err = ResponseDocument::parse(xml).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::DoctypeNotAllowed);
        assert_eq!(err.position.offset, xml.find("<!DOCTYPE").unwrap());
    }

    #[test]
    fn malformed_xml_inside_a_response_is_reported_with_its_position() {
        let xml = "<QBXML>\n<QBXMLMsgsRs>\n<CustomerQueryRs statusCode=\"0\">\n<CustomerRet><Name>x</Nme></CustomerRet>\n</CustomerQueryRs></QBXMLMsgsRs></QBXML>";
        let err = ResponseDocument::parse(xml).unwrap_err();
        assert!(matches!(err.kind, ParseErrorKind::Xml(_)), "{err}");
        assert_eq!((err.position.line, err.position.column), (4, 21));
    }
}
