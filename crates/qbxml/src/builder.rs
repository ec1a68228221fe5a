//! Request documents the hub writes itself: read-only probes on first contact and iterator
//! pages of a query an app submitted earlier.

use crate::envelope::{MessageSetId, OnError, QbxmlVersion, RequestId};
use crate::request::RequestElement;
use crate::rewrite::{IteratorChange, RewriteError, render_request};
use crate::scan::escape_attr;

/// Builds a qbXML request document.
///
/// ```
/// use ledgerlink_qbxml::{QbxmlVersion, RequestBuilder, RequestDocument, RequestId};
///
/// let xml = RequestBuilder::new(QbxmlVersion::RECKON)
///     .host_query(&RequestId::new("host")?)
///     .company_query(&RequestId::new("company")?)
///     .build()?;
/// let doc = RequestDocument::parse(&xml)?;
/// assert_eq!(doc.requests()[1].name(), "CompanyQueryRq");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    version: QbxmlVersion,
    on_error: OnError,
    new_message_set_id: Option<MessageSetId>,
    old_message_set_id: Option<MessageSetId>,
    requests: Vec<String>,
}

impl RequestBuilder {
    /// An empty message set with `onError="stopOnError"`.
    pub fn new(version: QbxmlVersion) -> Self {
        RequestBuilder {
            version,
            on_error: OnError::StopOnError,
            new_message_set_id: None,
            old_message_set_id: None,
            requests: Vec::new(),
        }
    }

    pub fn on_error(mut self, on_error: OnError) -> Self {
        self.on_error = on_error;
        self
    }

    pub fn new_message_set_id(mut self, id: MessageSetId) -> Self {
        self.new_message_set_id = Some(id);
        self
    }

    pub fn old_message_set_id(mut self, id: MessageSetId) -> Self {
        self.old_message_set_id = Some(id);
        self
    }

    /// `<HostQueryRq/>`: which product and qbXML versions are on the other end.
    pub fn host_query(self, request_id: &RequestId) -> Self {
        self.empty_request("HostQueryRq", request_id)
    }

    /// `<CompanyQueryRq/>`: which company file is open.
    pub fn company_query(self, request_id: &RequestId) -> Self {
        self.empty_request("CompanyQueryRq", request_id)
    }

    fn empty_request(mut self, name: &str, request_id: &RequestId) -> Self {
        let mut element = format!("<{name} requestID=\"");
        escape_attr(request_id.as_str(), &mut element);
        element.push_str("\"/>");
        self.requests.push(element);
        self
    }

    /// A query from an earlier document, content unchanged, with a new `requestID` and the
    /// given iterator attributes (e.g. [`IteratorChange::Start`] to restart it cleanly).
    pub fn stored_query(
        mut self,
        query: &RequestElement<'_>,
        request_id: &RequestId,
        iterator: IteratorChange<'_>,
    ) -> Result<Self, RewriteError> {
        self.requests.push(render_request(query, request_id, iterator)?);
        Ok(self)
    }

    /// The next page of an iterating query: `iterator="Continue"` with `iteratorID`.
    pub fn continue_iterator(
        self,
        query: &RequestElement<'_>,
        iterator_id: &str,
        request_id: &RequestId,
    ) -> Result<Self, RewriteError> {
        self.stored_query(query, request_id, IteratorChange::Continue(iterator_id))
    }

    /// Releases an iterator the hub no longer needs: `iterator="Stop"` with `iteratorID`.
    pub fn stop_iterator(
        self,
        query: &RequestElement<'_>,
        iterator_id: &str,
        request_id: &RequestId,
    ) -> Result<Self, RewriteError> {
        self.stored_query(query, request_id, IteratorChange::Stop(iterator_id))
    }

    /// The document text.
    pub fn build(self) -> Result<String, RewriteError> {
        if self.requests.is_empty() {
            return Err(RewriteError::EmptyMessageSet);
        }
        let mut xml = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<?qbxml version=\"{}\"?>\n<QBXML>\n  <QBXMLMsgsRq onError=\"{}\"",
            self.version, self.on_error
        );
        for (name, id) in
            [("newMessageSetID", &self.new_message_set_id), ("oldMessageSetID", &self.old_message_set_id)]
        {
            if let Some(id) = id {
                xml.push_str(&format!(" {name}=\""));
                escape_attr(id.as_str(), &mut xml);
                xml.push('"');
            }
        }
        xml.push_str(">\n");
        for request in &self.requests {
            xml.push_str("    ");
            xml.push_str(request);
            xml.push('\n');
        }
        xml.push_str("  </QBXMLMsgsRq>\n</QBXML>\n");
        Ok(xml)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{IteratorMode, RequestDocument, RequestKind};

    fn id(value: &str) -> RequestId {
        RequestId::new(value).unwrap()
    }

    #[test]
    fn first_contact_probes_are_a_valid_read_only_document() {
        let xml = RequestBuilder::new(QbxmlVersion::RECKON)
            .on_error(OnError::ContinueOnError)
            .host_query(&id("probe-host"))
            .company_query(&id("probe-company"))
            .build()
            .unwrap();
        let doc = RequestDocument::parse(&xml).unwrap();
        assert_eq!(doc.version().to_string(), "6.1");
        assert_eq!(doc.on_error(), OnError::ContinueOnError);
        assert!(doc.is_read_only());
        let found: Vec<_> = doc.requests().iter().map(|r| (r.name(), r.request_id())).collect();
        assert_eq!(found, [("HostQueryRq", Some("probe-host")), ("CompanyQueryRq", Some("probe-company"))]);
    }

    #[test]
    fn a_stored_query_continues_with_its_content_untouched() {
        let stored = r#"<?qbxml version="6.1"?><QBXML><QBXMLMsgsRq onError="stopOnError"><CustomerQueryRq requestID="j1" iterator="Start"><MaxReturned>50</MaxReturned><NameFilter><MatchCriterion>StartsWith</MatchCriterion><Name>Café &amp; Co</Name></NameFilter></CustomerQueryRq></QBXMLMsgsRq></QBXML>"#;
        let original = RequestDocument::parse(stored).unwrap();
        let query = &original.requests()[0];
        let xml = RequestBuilder::new(original.version())
            .continue_iterator(query, "{eb05f701-e727}", &id("j1-p2"))
            .unwrap()
            .build()
            .unwrap();
        let doc = RequestDocument::parse(&xml).unwrap();
        let page = &doc.requests()[0];
        assert_eq!(page.request_id(), Some("j1-p2"));
        assert_eq!(page.iterator(), Some(IteratorMode::Continue));
        assert_eq!(page.iterator_id(), Some("{eb05f701-e727}"));
        assert_eq!(
            page.raw(),
            query.raw().replace(
                r#"requestID="j1" iterator="Start""#,
                r#"requestID="j1-p2" iterator="Continue" iteratorID="{eb05f701-e727}""#
            )
        );
    }

    #[test]
    fn message_set_ids_appear_on_the_message_set() {
        let xml = RequestBuilder::new(QbxmlVersion::new(13, 0))
            .new_message_set_id(MessageSetId::new("n-2").unwrap())
            .old_message_set_id(MessageSetId::new("n-1").unwrap())
            .company_query(&id("c"))
            .build()
            .unwrap();
        let doc = RequestDocument::parse(&xml).unwrap();
        assert_eq!(doc.new_message_set_id(), Some("n-2"));
        assert_eq!(doc.old_message_set_id(), Some("n-1"));
    }

    #[test]
    fn an_empty_message_set_is_refused() {
        assert_eq!(RequestBuilder::new(QbxmlVersion::RECKON).build(), Err(RewriteError::EmptyMessageSet));
    }

    #[test]
    fn writes_cannot_be_continued() {
        let stored = r#"<?qbxml version="6.1"?><QBXML><QBXMLMsgsRq onError="stopOnError"><CustomerAddRq/></QBXMLMsgsRq></QBXML>"#;
        let doc = RequestDocument::parse(stored).unwrap();
        assert_eq!(doc.requests()[0].kind(), RequestKind::Add);
        let err = RequestBuilder::new(QbxmlVersion::RECKON)
            .continue_iterator(&doc.requests()[0], "{1}", &id("x"))
            .unwrap_err();
        assert_eq!(err, RewriteError::IteratorOnNonQuery("CustomerAddRq".into()));
    }
}
