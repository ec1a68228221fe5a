//! Baselines for `ledgerlink bench webconnector`: the cost of a bare quick-xml pass over the
//! same bytes, to compare [`ResponseDocument::parse`](crate::ResponseDocument::parse) against.

use quick_xml::Reader;
use quick_xml::events::Event;

/// Reads every event of `xml` with quick-xml's default configuration (the one the parsers use)
/// and returns how many there were, stopping at the first error.
pub fn bare_event_count(xml: &str) -> usize {
    let mut reader = Reader::from_str(xml);
    let mut count = 0;
    loop {
        match reader.read_event() {
            Ok(Event::Eof) | Err(_) => return count,
            Ok(_) => count += 1,
        }
    }
}

/// Parses `xml` as a response document and returns the number of records, so a benchmark can
/// keep the result alive; `0` on error.
pub fn parsed_record_count(xml: &str) -> usize {
    crate::ResponseDocument::parse(xml)
        .map(|doc| doc.responses().iter().map(|r| r.record_count()).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bare_loop_counts_every_event() {
        // decl, start, text, empty, end
        assert_eq!(bare_event_count("<?xml version=\"1.0\"?><a>x<b/></a>"), 5);
        assert_eq!(bare_event_count(""), 0);
    }

    #[test]
    fn the_parsed_count_sums_records_over_responses() {
        let xml = r#"<QBXML><QBXMLMsgsRs><AQueryRs statusCode="0"><ARet/><ARet/></AQueryRs><BQueryRs statusCode="0"><BRet/></BQueryRs></QBXMLMsgsRs></QBXML>"#;
        assert_eq!(parsed_record_count(xml), 3);
        assert_eq!(parsed_record_count("<QBXML>"), 0);
    }
}
