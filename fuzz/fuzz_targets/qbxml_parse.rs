//! Arbitrary bytes through both qbXML parsers and the rewriter: never a panic, and a rewrite of
//! a valid request document is itself valid.
//!
//! `fuzz/run` (part of `scripts/test`) runs it on the stable toolchain, seeded with
//! `crates/qbxml/tests/fixtures/*/`; `LEDGERLINK_FUZZ_SECONDS=600 fuzz/run` fuzzes for longer.

#![no_main]

use ledgerlink_qbxml::{
    IteratorChange, MessageSetId, RequestDocument, RequestId, ResponseDocument, bench_support,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    if let Ok(doc) = RequestDocument::parse(&text) {
        let request_id = RequestId::new("fuzz-1").expect("valid id");
        let set_id = MessageSetId::new("fuzz-set").expect("valid id");
        let mut rewrite = doc.rewrite();
        rewrite.set_new_message_set_id(&set_id);
        for (i, request) in doc.requests().iter().enumerate() {
            rewrite.set_request_id(i, &request_id).expect("index in range");
            if request.kind().is_read_only() {
                rewrite.set_iterator(i, IteratorChange::Continue("{fuzz}")).expect("a query");
            }
        }
        let out = rewrite.finish();
        let again = RequestDocument::parse(&out).expect("a rewrite of a valid document is valid");
        assert_eq!(again.requests().len(), doc.requests().len());
        assert_eq!(again.new_message_set_id(), Some("fuzz-set"));

        let mut only_first = doc.rewrite();
        only_first.retain_only(0).expect("there is a first request");
        RequestDocument::parse(&only_first.finish()).expect("one request is still a document");
    }

    if let Ok(doc) = ResponseDocument::parse(&text) {
        for response in doc.responses() {
            assert_eq!(response.records().count(), response.record_count());
            for record in response.records() {
                let _ = record.list_id_or_txn_id();
            }
        }
    }

    let _ = bench_support::bare_event_count(&text);
});
