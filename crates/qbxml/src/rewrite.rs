//! Attribute rewriting by splicing: the hub changes `requestID`, iterator and message-set
//! attributes and nothing else, so every other byte of an app's document goes out as it came
//! in (version, `onError`, whitespace, non-ASCII text, entity escapes).

use std::ops::Range;

use crate::envelope::{MessageSetId, RequestId};
use crate::request::{IteratorMode, RequestDocument, RequestElement};
use crate::scan::{AttrSpan, escape_attr, is_xml_space};

/// A rewrite the hub may not make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("there is no request {index}; the document has {count}")]
    NoSuchRequest { index: usize, count: usize },
    #[error("<{0}> is not a query, so it cannot use an iterator")]
    IteratorOnNonQuery(String),
    #[error("an iteratorID must not be empty")]
    EmptyIteratorId,
    #[error("a message set needs at least one request")]
    EmptyMessageSet,
}

/// What to do to a query's `iterator`/`iteratorID` attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IteratorChange<'x> {
    /// `iterator="Start"`, no `iteratorID`: begin (or restart) the query.
    Start,
    /// `iterator="Continue" iteratorID="…"`: the next page.
    Continue(&'x str),
    /// `iterator="Stop" iteratorID="…"`: release the iterator early.
    Stop(&'x str),
    /// Neither attribute: a plain query.
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    MessageSet,
    Request(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attr {
    RequestId,
    Iterator,
    IteratorId,
    NewMessageSetId,
    OldMessageSetId,
}

impl Attr {
    fn name(self) -> &'static str {
        match self {
            Attr::RequestId => "requestID",
            Attr::Iterator => "iterator",
            Attr::IteratorId => "iteratorID",
            Attr::NewMessageSetId => "newMessageSetID",
            Attr::OldMessageSetId => "oldMessageSetID",
        }
    }
}

/// A pending attribute edit; `None` removes the attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Edit {
    target: Target,
    attr: Attr,
    value: Option<String>,
}

/// A change to the text: replace `range` (absolute offsets) with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Splice {
    range: Range<usize>,
    text: String,
}

/// Pending attribute changes to a [`RequestDocument`]; [`Rewrite::finish`] applies them.
#[derive(Debug, Clone)]
pub struct Rewrite<'d, 'a> {
    doc: &'d RequestDocument<'a>,
    edits: Vec<Edit>,
    retain: Option<usize>,
}

impl<'d, 'a> Rewrite<'d, 'a> {
    pub(crate) fn new(doc: &'d RequestDocument<'a>) -> Self {
        Rewrite { doc, edits: Vec::new(), retain: None }
    }

    fn request(&self, index: usize) -> Result<&'d RequestElement<'a>, RewriteError> {
        self.doc
            .requests()
            .get(index)
            .ok_or(RewriteError::NoSuchRequest { index, count: self.doc.requests().len() })
    }

    fn push(&mut self, target: Target, attr: Attr, value: Option<String>) {
        // The last word on an attribute wins.
        self.edits.retain(|e| !(e.target == target && e.attr == attr));
        self.edits.push(Edit { target, attr, value });
    }

    /// Sets (or replaces) `requestID` on request `index`.
    pub fn set_request_id(&mut self, index: usize, id: &RequestId) -> Result<&mut Self, RewriteError> {
        self.request(index)?;
        self.push(Target::Request(index), Attr::RequestId, Some(id.as_str().to_owned()));
        Ok(self)
    }

    /// Sets the iterator attributes of query `index`.
    pub fn set_iterator(
        &mut self,
        index: usize,
        change: IteratorChange<'_>,
    ) -> Result<&mut Self, RewriteError> {
        let request = self.request(index)?;
        for (attr, value) in iterator_edits(request, change)? {
            self.push(Target::Request(index), attr, value);
        }
        Ok(self)
    }

    /// Sets `newMessageSetID` on `QBXMLMsgsRq`, turning on QuickBooks' error recovery.
    pub fn set_new_message_set_id(&mut self, id: &MessageSetId) -> &mut Self {
        self.push(Target::MessageSet, Attr::NewMessageSetId, Some(id.as_str().to_owned()));
        self
    }

    /// Sets `oldMessageSetID` on `QBXMLMsgsRq`: asks about a set whose response was lost.
    pub fn set_old_message_set_id(&mut self, id: &MessageSetId) -> &mut Self {
        self.push(Target::MessageSet, Attr::OldMessageSetId, Some(id.as_str().to_owned()));
        self
    }

    /// Drops every request but `index` (with the whitespace before each dropped one), e.g. to
    /// continue one query of a multi-request document on its own.
    pub fn retain_only(&mut self, index: usize) -> Result<&mut Self, RewriteError> {
        self.request(index)?;
        self.retain = Some(index);
        Ok(self)
    }

    /// The rewritten document.
    pub fn finish(&self) -> String {
        let xml = self.doc.as_str();
        let mut splices = Vec::new();
        if let Some(keep) = self.retain {
            for (i, request) in self.doc.requests().iter().enumerate() {
                if i != keep {
                    let span = request.span();
                    let leading =
                        xml.as_bytes()[..span.start].iter().rev().take_while(|b| is_xml_space(**b)).count();
                    splices.push(Splice { range: span.start - leading..span.end, text: String::new() });
                }
            }
        }
        for edit in &self.edits {
            let (insert_at, existing) = match edit.target {
                Target::MessageSet => {
                    let set = &self.doc.message_set;
                    let existing = match edit.attr {
                        Attr::NewMessageSetId => set.new_message_set_id.as_ref(),
                        _ => set.old_message_set_id.as_ref(),
                    };
                    (set.insert_at, existing.map(|(_, span)| span))
                }
                Target::Request(i) => {
                    if self.retain.is_some_and(|keep| keep != i) {
                        continue;
                    }
                    let request = &self.doc.requests()[i];
                    (request.insert_at, request_attr(request, edit.attr))
                }
            };
            attr_splice(insert_at, existing, edit.attr, edit.value.as_deref(), &mut splices);
        }
        render(xml, 0, splices)
    }
}

fn request_attr<'r>(request: &'r RequestElement<'_>, attr: Attr) -> Option<&'r AttrSpan> {
    match attr {
        Attr::RequestId => request.attrs.request_id.as_ref(),
        Attr::Iterator => request.attrs.iterator.as_ref(),
        Attr::IteratorId => request.attrs.iterator_id.as_ref(),
        Attr::NewMessageSetId | Attr::OldMessageSetId => None,
    }
}

fn iterator_edits(
    request: &RequestElement<'_>,
    change: IteratorChange<'_>,
) -> Result<[(Attr, Option<String>); 2], RewriteError> {
    if !request.kind().is_read_only() {
        return Err(RewriteError::IteratorOnNonQuery(request.name().to_owned()));
    }
    let with_id = |mode: IteratorMode, id: &str| {
        if id.is_empty() {
            return Err(RewriteError::EmptyIteratorId);
        }
        Ok([(Attr::Iterator, Some(mode.as_str().to_owned())), (Attr::IteratorId, Some(id.to_owned()))])
    };
    match change {
        IteratorChange::Start => {
            Ok([(Attr::Iterator, Some(IteratorMode::Start.as_str().to_owned())), (Attr::IteratorId, None)])
        }
        IteratorChange::Continue(id) => with_id(IteratorMode::Continue, id),
        IteratorChange::Stop(id) => with_id(IteratorMode::Stop, id),
        IteratorChange::Remove => Ok([(Attr::Iterator, None), (Attr::IteratorId, None)]),
    }
}

/// The splice that gives `attr` the value `value` (or removes it) on a tag whose new
/// attributes go at `insert_at`.
fn attr_splice(
    insert_at: usize,
    existing: Option<&AttrSpan>,
    attr: Attr,
    value: Option<&str>,
    splices: &mut Vec<Splice>,
) {
    match (existing, value) {
        (Some(span), Some(value)) => {
            let mut text = String::with_capacity(value.len());
            escape_attr(value, &mut text);
            splices.push(Splice { range: span.value.clone(), text });
        }
        (None, Some(value)) => {
            // After the last attribute (or the name): valid for start and empty tags alike.
            let mut text = format!(" {}=\"", attr.name());
            escape_attr(value, &mut text);
            text.push('"');
            splices.push(Splice { range: insert_at..insert_at, text });
        }
        (Some(span), None) => splices.push(Splice { range: span.whole.clone(), text: String::new() }),
        (None, None) => {}
    }
}

/// `text` (which starts at absolute offset `base`) with `splices` applied.
pub(crate) fn render(text: &str, base: usize, mut splices: Vec<Splice>) -> String {
    // Stable: insertions at one offset keep the order they were asked for.
    splices.sort_by_key(|s| (s.range.start, s.range.end));
    let extra: usize = splices.iter().map(|s| s.text.len()).sum();
    let mut out = String::with_capacity(text.len() + extra);
    let mut cursor = base;
    let end = base + text.len();
    for splice in splices {
        let (start, stop) = (splice.range.start, splice.range.end);
        // Spans come from the parser, so they are in range, disjoint and on character
        // boundaries; skip rather than panic should that ever not hold.
        if start < cursor || stop > end {
            continue;
        }
        let (Some(kept), true) = (text.get(cursor - base..start - base), text.is_char_boundary(stop - base))
        else {
            continue;
        };
        out.push_str(kept);
        out.push_str(&splice.text);
        cursor = stop;
    }
    out.push_str(text.get(cursor - base..).unwrap_or_default());
    out
}

/// One stored request, rendered on its own with a new `requestID` and iterator attributes.
pub(crate) fn render_request(
    request: &RequestElement<'_>,
    request_id: &RequestId,
    iterator: IteratorChange<'_>,
) -> Result<String, RewriteError> {
    let mut edits = vec![(Attr::RequestId, Some(request_id.as_str().to_owned()))];
    edits.extend(iterator_edits(request, iterator)?);
    let mut splices = Vec::new();
    for (attr, value) in edits {
        attr_splice(request.insert_at, request_attr(request, attr), attr, value.as_deref(), &mut splices);
    }
    Ok(render(request.raw(), request.span().start, splices))
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP_XML: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<?qbxml version=\"6.1\"?>\r\n<QBXML>\r\n\t<QBXMLMsgsRq onError='continueOnError'>\r\n\t\t<CustomerQueryRq   requestID = 'app-1' >\r\n\t\t\t<FullName>Café Müller ÄÖÜ 日本 &amp; Söhne</FullName>\r\n\t\t</CustomerQueryRq>\r\n\t\t<CustomerAddRq><CustomerAdd><Name>Tom &amp; Jerry &lt;Ltd&gt;</Name></CustomerAdd></CustomerAddRq>\r\n\t</QBXMLMsgsRq>\r\n</QBXML>";

    fn id(value: &str) -> RequestId {
        RequestId::new(value).unwrap()
    }

    #[test]
    fn no_edits_give_back_the_document_unchanged() {
        let doc = RequestDocument::parse(APP_XML).unwrap();
        assert_eq!(doc.rewrite().finish(), APP_XML);
    }

    #[test]
    fn replacing_and_adding_request_ids_touches_only_those_attributes() {
        let doc = RequestDocument::parse(APP_XML).unwrap();
        let mut rewrite = doc.rewrite();
        rewrite.set_request_id(0, &id("hub-1")).unwrap();
        rewrite.set_request_id(1, &id("hub-2")).unwrap();
        let out = rewrite.finish();
        let expected = APP_XML
            .replace("requestID = 'app-1'", "requestID = 'hub-1'")
            .replace("<CustomerAddRq>", "<CustomerAddRq requestID=\"hub-2\">");
        assert_eq!(out, expected);

        let reparsed = RequestDocument::parse(&out).unwrap();
        assert_eq!(reparsed.requests()[0].request_id(), Some("hub-1"));
        assert_eq!(reparsed.requests()[1].request_id(), Some("hub-2"));
    }

    #[test]
    fn values_are_escaped_so_the_result_stays_well_formed() {
        let doc = RequestDocument::parse(APP_XML).unwrap();
        let mut rewrite = doc.rewrite();
        rewrite.set_request_id(0, &id("a'b\"c&<d>")).unwrap();
        let out = rewrite.finish();
        assert!(out.contains("requestID = 'a&apos;b&quot;c&amp;&lt;d&gt;'"), "{out}");
        let reparsed = RequestDocument::parse(&out).unwrap();
        assert_eq!(reparsed.requests()[0].request_id(), Some("a'b\"c&<d>"));
    }

    #[test]
    fn iterator_attributes_are_added_replaced_and_removed() {
        let doc = RequestDocument::parse(APP_XML).unwrap();
        let mut rewrite = doc.rewrite();
        rewrite.set_iterator(0, IteratorChange::Continue("{abc-1}")).unwrap();
        let continued = rewrite.finish();
        assert_eq!(
            continued,
            APP_XML.replace(
                "requestID = 'app-1' >",
                "requestID = 'app-1' iterator=\"Continue\" iteratorID=\"{abc-1}\" >"
            )
        );

        let doc = RequestDocument::parse(&continued).unwrap();
        let mut rewrite = doc.rewrite();
        rewrite.set_iterator(0, IteratorChange::Start).unwrap();
        let restarted = rewrite.finish();
        assert_eq!(
            restarted,
            APP_XML.replace("requestID = 'app-1' >", "requestID = 'app-1' iterator=\"Start\" >")
        );

        let doc = RequestDocument::parse(&restarted).unwrap();
        let mut rewrite = doc.rewrite();
        rewrite.set_iterator(0, IteratorChange::Remove).unwrap();
        assert_eq!(rewrite.finish(), APP_XML);
    }

    #[test]
    fn iterators_cannot_be_put_on_writes() {
        let doc = RequestDocument::parse(APP_XML).unwrap();
        let err = doc.rewrite().set_iterator(1, IteratorChange::Start).map(|_| ()).unwrap_err();
        assert_eq!(err, RewriteError::IteratorOnNonQuery("CustomerAddRq".into()));
        let err = doc.rewrite().set_iterator(0, IteratorChange::Continue("")).map(|_| ()).unwrap_err();
        assert_eq!(err, RewriteError::EmptyIteratorId);
        let err = doc.rewrite().set_request_id(2, &id("x")).map(|_| ()).unwrap_err();
        assert_eq!(err, RewriteError::NoSuchRequest { index: 2, count: 2 });
    }

    #[test]
    fn message_set_ids_go_on_the_message_set() {
        let doc = RequestDocument::parse(APP_XML).unwrap();
        let mut rewrite = doc.rewrite();
        rewrite
            .set_new_message_set_id(&MessageSetId::new("set-9").unwrap())
            .set_old_message_set_id(&MessageSetId::new("set-8").unwrap());
        let out = rewrite.finish();
        assert_eq!(
            out,
            APP_XML.replace(
                "onError='continueOnError'>",
                "onError='continueOnError' newMessageSetID=\"set-9\" oldMessageSetID=\"set-8\">"
            )
        );
        let reparsed = RequestDocument::parse(&out).unwrap();
        assert_eq!(reparsed.new_message_set_id(), Some("set-9"));
        assert_eq!(reparsed.old_message_set_id(), Some("set-8"));

        let mut again = reparsed.rewrite();
        again.set_new_message_set_id(&MessageSetId::new("set-10").unwrap());
        assert_eq!(again.finish(), out.replace("set-9", "set-10"));
    }

    #[test]
    fn the_last_edit_of_an_attribute_wins() {
        let doc = RequestDocument::parse(APP_XML).unwrap();
        let mut rewrite = doc.rewrite();
        rewrite.set_request_id(1, &id("first")).unwrap();
        rewrite.set_request_id(1, &id("second")).unwrap();
        assert_eq!(
            rewrite.finish(),
            APP_XML.replace("<CustomerAddRq>", "<CustomerAddRq requestID=\"second\">")
        );
    }

    #[test]
    fn retaining_one_request_drops_the_others_and_keeps_the_rest() {
        let doc = RequestDocument::parse(APP_XML).unwrap();
        let mut rewrite = doc.rewrite();
        rewrite.retain_only(0).unwrap().set_request_id(1, &id("ignored")).unwrap();
        let out = rewrite.finish();
        let dropped = &APP_XML[doc.requests()[1].span()];
        assert_eq!(out, APP_XML.replace(&format!("\r\n\t\t{dropped}"), ""));
        let reparsed = RequestDocument::parse(&out).unwrap();
        assert_eq!(reparsed.requests().len(), 1);
        assert_eq!(reparsed.requests()[0].name(), "CustomerQueryRq");
    }

    #[test]
    fn empty_request_tags_get_their_attributes_before_the_slash() {
        let xml = r#"<?qbxml version="6.1"?><QBXML><QBXMLMsgsRq onError="stopOnError"><CompanyQueryRq/><HostQueryRq /></QBXMLMsgsRq></QBXML>"#;
        let doc = RequestDocument::parse(xml).unwrap();
        let mut rewrite = doc.rewrite();
        rewrite.set_request_id(0, &id("c")).unwrap();
        rewrite.set_request_id(1, &id("h")).unwrap();
        assert_eq!(
            rewrite.finish(),
            xml.replace("<CompanyQueryRq/>", "<CompanyQueryRq requestID=\"c\"/>")
                .replace("<HostQueryRq />", "<HostQueryRq requestID=\"h\" />")
        );
    }
}
