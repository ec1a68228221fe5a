//! Every shared qbXML fixture through the parsers, the rewriter and a mutation storm.

use ledgerlink_qbxml::{
    IteratorChange, IteratorMode, MessageSetId, OnError, ParseErrorKind, QbxmlVersion, RecordId,
    RequestBuilder, RequestDocument, RequestId, RequestKind, ResponseDocument, Severity, StatusClass,
    list_id_or_txn_id,
};

macro_rules! fixture {
    ($path:literal) => {
        ($path, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/", $path)))
    };
}

const REQUESTS: &[(&str, &str)] = &[
    fixture!("requests/account_query_rq.xml"),
    fixture!("requests/customer_add_rq.xml"),
    fixture!("requests/customer_query_iterator_rq.xml"),
    fixture!("requests/customer_query_rq.xml"),
    fixture!("requests/estimate_add_rq.xml"),
    fixture!("requests/invoice_add_rq.xml"),
    fixture!("requests/item_inventory_add_rq.xml"),
    fixture!("requests/purchase_order_query_rq.xml"),
    fixture!("requests/receive_payment_add_rq.xml"),
    fixture!("requests/receive_payment_query_rq.xml"),
    fixture!("requests/sales_receipt_add_rq.xml"),
];

const RESPONSES: &[(&str, &str)] = &[
    fixture!("responses/account_query_rs.xml"),
    fixture!("responses/customer_add_rs.xml"),
    fixture!("responses/customer_query_rs.xml"),
    fixture!("responses/customer_query_terator_rs.xml"),
    fixture!("responses/item_inventory_add_rs.xml"),
    fixture!("responses/purchase_order_query_rs.xml"),
    fixture!("responses/receive_payment_query_rs.xml"),
    fixture!("responses/sales_receipt_add_rs.xml"),
];

fn fixture_dir(kind: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(kind)
}

fn request(path: &str) -> &'static str {
    REQUESTS.iter().find(|(p, _)| p.ends_with(path)).unwrap().1
}

fn response(path: &str) -> &'static str {
    RESPONSES.iter().find(|(p, _)| p.ends_with(path)).unwrap().1
}

fn id(value: &str) -> RequestId {
    RequestId::new(value).unwrap()
}

#[test]
fn the_test_lists_cover_every_fixture_file_on_disk() {
    for (kind, listed) in [("requests", REQUESTS), ("responses", RESPONSES)] {
        let mut on_disk: Vec<String> = std::fs::read_dir(fixture_dir(kind))
            .unwrap()
            .map(|entry| format!("{kind}/{}", entry.unwrap().file_name().to_string_lossy()))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = listed.iter().map(|(p, _)| p.to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
    }
}

/// What one request fixture really says.
struct RequestFacts {
    file: &'static str,
    version: &'static str,
    on_error: OnError,
    name: &'static str,
    kind: RequestKind,
    request_id: Option<&'static str>,
    iterator: Option<IteratorMode>,
}

const fn rq(
    file: &'static str,
    version: &'static str,
    name: &'static str,
    kind: RequestKind,
    request_id: Option<&'static str>,
) -> RequestFacts {
    RequestFacts { file, version, on_error: OnError::StopOnError, name, kind, request_id, iterator: None }
}

#[test]
fn every_request_fixture_parses_with_its_real_name_version_and_request_id() {
    use RequestKind::{Add, Query};
    let expected = [
        rq("account_query_rq.xml", "2.0", "AccountQueryRq", Query, Some("16")),
        rq("customer_add_rq.xml", "2.0", "CustomerAddRq", Add, Some("15")),
        RequestFacts {
            on_error: OnError::ContinueOnError,
            iterator: Some(IteratorMode::Start),
            ..rq("customer_query_iterator_rq.xml", "5.0", "CustomerQueryRq", Query, Some("1"))
        },
        rq("customer_query_rq.xml", "5.0", "CustomerQueryRq", Query, Some("Q3VzdG9tZXJRdWVyeXwyODk2")),
        rq("estimate_add_rq.xml", "6.0", "EstimateAddRq", Add, Some("2")),
        rq("invoice_add_rq.xml", "2.0", "InvoiceAddRq", Add, Some("2")),
        rq(
            "item_inventory_add_rq.xml",
            "7.0",
            "ItemInventoryAddRq",
            Add,
            Some("SXRlbUludmVudG9yeUFkZHwxNTA="),
        ),
        RequestFacts {
            iterator: Some(IteratorMode::Start),
            ..rq(
                "purchase_order_query_rq.xml",
                "8.0",
                "PurchaseOrderQueryRq",
                Query,
                Some("UHVyY2hhc2VPcmRlckltcG9ydHwx"),
            )
        },
        rq("receive_payment_add_rq.xml", "2.1", "ReceivePaymentAddRq", Add, None),
        rq(
            "receive_payment_query_rq.xml",
            "8.0",
            "ReceivePaymentQueryRq",
            Query,
            Some("UmVjZWl2ZVBheW1lbnRRdWVyeXwyNDg0LTEyNjM0OTkyMzE="),
        ),
        rq("sales_receipt_add_rq.xml", "7.0", "SalesReceiptAddRq", Add, Some("U2FsZXNSZWNlaXB0QWRkfDE2NDY2")),
    ];
    assert_eq!(expected.len(), REQUESTS.len());
    for facts in expected {
        let RequestFacts { file, version, on_error, name, kind, request_id, iterator } = facts;
        let xml = request(file);
        let doc = RequestDocument::parse(xml).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(doc.version().to_string(), version, "{file}");
        assert_eq!(doc.on_error(), on_error, "{file}");
        assert_eq!(doc.requests().len(), 1, "{file}");
        let rq = &doc.requests()[0];
        assert_eq!(rq.name(), name, "{file}");
        assert_eq!(rq.kind(), kind, "{file}");
        assert_eq!(rq.request_id(), request_id, "{file}");
        assert_eq!(rq.iterator(), iterator, "{file}");
        assert_eq!(rq.iterator_id(), None, "{file}");
        assert_eq!(doc.is_read_only(), kind == RequestKind::Query, "{file}");
        assert_eq!(doc.new_message_set_id(), None, "{file}");
        // The span is the element, from its start tag to its end tag, as written.
        assert_eq!(&xml[rq.span()], rq.raw(), "{file}");
        assert!(rq.raw().starts_with(&format!("<{name}")), "{file}");
        assert!(rq.raw().ends_with(&format!("</{name}>")), "{file}");
    }
}

#[test]
fn the_iterator_fixtures_start_iterators_on_qbxml_five_or_later() {
    for file in ["customer_query_iterator_rq.xml", "purchase_order_query_rq.xml"] {
        let doc = RequestDocument::parse(request(file)).unwrap();
        assert!(doc.version().supports_iterators(), "{file}");
        assert_eq!(doc.requests()[0].iterator(), Some(IteratorMode::Start));
    }
}

/// What one response fixture really says.
struct ResponseFacts {
    file: &'static str,
    name: &'static str,
    request_id: &'static str,
    remaining: Option<u32>,
    iterator_id: Option<&'static str>,
    record_ids: &'static [&'static str],
}

const fn rs(
    file: &'static str,
    name: &'static str,
    request_id: &'static str,
    record_ids: &'static [&'static str],
) -> ResponseFacts {
    ResponseFacts { file, name, request_id, remaining: None, iterator_id: None, record_ids }
}

#[test]
fn every_response_fixture_parses_with_its_real_status_and_records() {
    let expected = [
        rs("account_query_rs.xml", "AccountQueryRs", "52", &["80000020-1209525941", "8000001E-1203476531"]),
        rs("customer_add_rs.xml", "CustomerAddRs", "15", &["F540000-1197683154"]),
        rs("customer_query_rs.xml", "CustomerQueryRs", "Q3VzdG9tZXJRdWVyeXwyODk2", &["10006-1211236622"]),
        ResponseFacts {
            remaining: Some(18),
            iterator_id: Some("{eb05f701-e727-472f-8ade-6753c4f67a46}"),
            ..rs("customer_query_terator_rs.xml", "CustomerQueryRs", "1", &["110000-1232697602"])
        },
        rs(
            "item_inventory_add_rs.xml",
            "ItemInventoryAddRs",
            "SXRlbUludmVudG9yeUFkZHwxNTA=",
            &["8000085A-1231522945"],
        ),
        ResponseFacts {
            remaining: Some(0),
            iterator_id: Some("{ee76b904-7ef8-4b83-9841-63d4715a273b}"),
            ..rs(
                "purchase_order_query_rs.xml",
                "PurchaseOrderQueryRs",
                "UHVyY2hhc2VPcmRlckltcG9ydHwx",
                &["30-1285640333"],
            )
        },
        rs(
            "receive_payment_query_rs.xml",
            "ReceivePaymentQueryRs",
            "UmVjZWl2ZVBheW1lbnRRdWVyeXwyNDg0LTEyNjM0OTkyMzE=",
            &["2484-1263499231"],
        ),
        rs(
            "sales_receipt_add_rs.xml",
            "SalesReceiptAddRs",
            "U2FsZXNSZWNlaXB0QWRkfDE2NDY2",
            &["141CA5-1231522949"],
        ),
    ];
    assert_eq!(expected.len(), RESPONSES.len());
    for facts in expected {
        let ResponseFacts { file, name, request_id, remaining, iterator_id, record_ids } = facts;
        let xml = response(file);
        let doc = ResponseDocument::parse(xml).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(doc.message_set().new_message_set_id, None, "{file}");
        assert_eq!(doc.message_set().status_code, None, "{file}");
        assert_eq!(doc.responses().len(), 1, "{file}");
        let rs = &doc.responses()[0];
        assert_eq!(rs.name(), name, "{file}");
        assert_eq!(rs.request_id(), Some(request_id), "{file}");
        assert_eq!(rs.status_code().0, 0, "{file}");
        assert_eq!(rs.status().class(), StatusClass::Ok, "{file}");
        assert_eq!(rs.status_severity(), Some(Severity::Info), "{file}");
        assert_eq!(rs.status_message(), Some("Status OK"), "{file}");
        assert!(rs.status().severity_agrees_with_code(), "{file}");
        assert_eq!(rs.iterator_remaining_count(), remaining, "{file}");
        assert_eq!(rs.iterator_id(), iterator_id, "{file}");
        assert_eq!(rs.record_count(), record_ids.len(), "{file}");

        assert_eq!(&xml[rs.span()], rs.raw(), "{file}");
        assert!(rs.raw().starts_with(&format!("<{name}")), "{file}");
        assert!(rs.raw().ends_with(&format!("</{name}>")), "{file}");

        let ids: Vec<String> =
            rs.records().map(|record| record.list_id_or_txn_id().unwrap().as_str().to_owned()).collect();
        assert_eq!(ids, record_ids, "{file}");
        for record in rs.records() {
            assert!(record.name().ends_with("Ret"), "{file}");
            assert!(rs.raw().contains(record.raw()), "{file}");
            assert!(record.raw().ends_with(&format!("</{}>", record.name())), "{file}");
        }
    }
}

#[test]
fn nested_ret_elements_are_not_counted_as_records() {
    // AccountRet holds a TaxLineInfoRet; PurchaseOrderRet holds a line and three DataExtRets.
    let accounts = ResponseDocument::parse(response("account_query_rs.xml")).unwrap();
    assert_eq!(accounts.responses()[0].raw().matches("Ret>").count() / 2, 3);
    assert_eq!(accounts.responses()[0].record_count(), 2);

    let orders = ResponseDocument::parse(response("purchase_order_query_rs.xml")).unwrap();
    assert_eq!(orders.responses()[0].record_count(), 1);
    let record = orders.responses()[0].records().next().unwrap();
    assert_eq!(record.name(), "PurchaseOrderRet");
    assert_eq!(record.raw().matches("<DataExtRet>").count(), 3);
}

#[test]
fn record_ids_come_from_the_record_not_from_its_references() {
    // A payment's first ListID is inside CustomerRef, and a TxnID sits in AppliedToTxnRet.
    let payments = ResponseDocument::parse(response("receive_payment_query_rs.xml")).unwrap();
    let record = payments.responses()[0].records().next().unwrap();
    assert_eq!(record.list_id_or_txn_id(), Some(RecordId::TxnId("2484-1263499231".into())));
    assert_eq!(list_id_or_txn_id(record.raw()), record.list_id_or_txn_id());

    let customers = ResponseDocument::parse(response("customer_query_rs.xml")).unwrap();
    let record = customers.responses()[0].records().next().unwrap();
    assert_eq!(record.list_id_or_txn_id(), Some(RecordId::ListId("10006-1211236622".into())));
}

#[test]
fn the_iterator_response_says_whether_more_pages_follow() {
    let first = ResponseDocument::parse(response("customer_query_terator_rs.xml")).unwrap();
    assert!(first.responses()[0].has_more_pages());
    let last = ResponseDocument::parse(response("purchase_order_query_rs.xml")).unwrap();
    assert!(!last.responses()[0].has_more_pages());
    assert!(last.responses()[0].iterator_id().is_some());
}

#[test]
fn fixture_responses_answer_the_fixture_requests_with_the_same_request_id() {
    let pairs = [
        ("customer_add_rq.xml", "customer_add_rs.xml"),
        ("customer_query_rq.xml", "customer_query_rs.xml"),
        ("customer_query_iterator_rq.xml", "customer_query_terator_rs.xml"),
        ("item_inventory_add_rq.xml", "item_inventory_add_rs.xml"),
        ("purchase_order_query_rq.xml", "purchase_order_query_rs.xml"),
        ("receive_payment_query_rq.xml", "receive_payment_query_rs.xml"),
        ("sales_receipt_add_rq.xml", "sales_receipt_add_rs.xml"),
    ];
    for (rq_file, rs_file) in pairs {
        let rq = RequestDocument::parse(request(rq_file)).unwrap();
        let rs = ResponseDocument::parse(response(rs_file)).unwrap();
        let asked = &rq.requests()[0];
        let answer = rs.find(asked.request_id().unwrap()).unwrap();
        assert_eq!(answer.name().strip_suffix("Rs"), asked.name().strip_suffix("Rq"), "{rq_file}");
    }
    // The account query fixtures come from different exchanges.
    let rq = RequestDocument::parse(request("account_query_rq.xml")).unwrap();
    let rs = ResponseDocument::parse(response("account_query_rs.xml")).unwrap();
    assert!(rs.find(rq.requests()[0].request_id().unwrap()).is_none());
}

/// Checks that `after` is `before` with exactly one region replaced, and returns that region
/// (old text, new text).
fn single_change<'a>(before: &'a str, after: &'a str) -> (&'a str, &'a str) {
    let prefix = before.bytes().zip(after.bytes()).take_while(|(a, b)| a == b).count();
    let suffix =
        before[prefix..].bytes().rev().zip(after[prefix..].bytes().rev()).take_while(|(a, b)| a == b).count();
    (&before[prefix..before.len() - suffix], &after[prefix..after.len() - suffix])
}

#[test]
fn setting_a_request_id_changes_only_that_attribute_in_every_fixture() {
    for (file, xml) in REQUESTS {
        let doc = RequestDocument::parse(xml).unwrap();
        let mut rewrite = doc.rewrite();
        rewrite.set_request_id(0, &id("hub-42")).unwrap();
        let out = rewrite.finish();
        let expected = match doc.requests()[0].request_id() {
            // Replaced in place: only the value differs.
            Some(previous) => xml.replacen(&format!("requestID=\"{previous}\""), "requestID=\"hub-42\"", 1),
            // Added after the last attribute (here: after the name).
            None => {
                let name = doc.requests()[0].name();
                xml.replacen(&format!("<{name}>"), &format!("<{name} requestID=\"hub-42\">"), 1)
            }
        };
        assert_eq!(out, expected, "{file}");
        let reparsed = RequestDocument::parse(&out).unwrap();
        assert_eq!(reparsed.requests()[0].request_id(), Some("hub-42"), "{file}");
        assert_eq!(reparsed.requests()[0].name(), doc.requests()[0].name(), "{file}");
        // Everything outside the start tag is the same bytes.
        let before_tag = &xml[..doc.requests()[0].span().start];
        assert!(out.starts_with(before_tag), "{file}");
        let content_start = doc.requests()[0].raw().find('>').unwrap() + 1;
        let after_tag = &xml[doc.requests()[0].span().start + content_start..];
        assert!(out.ends_with(after_tag), "{file}");
    }
}

#[test]
fn message_set_ids_are_spliced_into_every_fixture_without_other_changes() {
    for (file, xml) in REQUESTS {
        let doc = RequestDocument::parse(xml).unwrap();
        let mut rewrite = doc.rewrite();
        rewrite.set_new_message_set_id(&MessageSetId::new("ms-1").unwrap());
        let out = rewrite.finish();
        let (old, new) = single_change(xml, &out);
        assert_eq!(old, "", "{file}");
        assert_eq!(new, " newMessageSetID=\"ms-1\"", "{file}");
        assert!(out.contains("onError=\"") && out.contains(" newMessageSetID=\"ms-1\">"));
        let reparsed = RequestDocument::parse(&out).unwrap();
        assert_eq!(reparsed.new_message_set_id(), Some("ms-1"), "{file}");
        assert_eq!(reparsed.on_error(), doc.on_error(), "{file}");
    }
}

#[test]
fn continuing_the_fixture_iterators_changes_only_iterator_attributes() {
    for file in ["customer_query_iterator_rq.xml", "purchase_order_query_rq.xml"] {
        let xml = request(file);
        let doc = RequestDocument::parse(xml).unwrap();
        let mut rewrite = doc.rewrite();
        rewrite.set_iterator(0, IteratorChange::Continue("{eb05f701-e727-472f-8ade-6753c4f67a46}")).unwrap();
        let out = rewrite.finish();
        let expected = xml.replacen(
            "iterator=\"Start\"",
            "iterator=\"Continue\" iteratorID=\"{eb05f701-e727-472f-8ade-6753c4f67a46}\"",
            1,
        );
        assert_eq!(out, expected, "{file}");
    }
}

#[test]
fn rewriting_keeps_non_ascii_text_and_entity_escapes_byte_for_byte() {
    let xml = request("customer_add_rq.xml")
        .replace("Keith Palmer", "Café Müller ÄÖÜ 日本")
        .replace("Eastern XYZ University", "Smith &amp; Söhne &lt;GmbH&gt; &#x65E5;");
    let doc = RequestDocument::parse(&xml).unwrap();
    let mut rewrite = doc.rewrite();
    rewrite
        .set_request_id(0, &id("ü-1"))
        .unwrap()
        .set_new_message_set_id(&MessageSetId::new("set-日本").unwrap());
    let out = rewrite.finish();
    let expected = xml
        .replace("requestID=\"15\"", "requestID=\"ü-1\"")
        .replace("onError=\"stopOnError\"", "onError=\"stopOnError\" newMessageSetID=\"set-日本\"");
    assert_eq!(out, expected);
    assert!(out.contains("<Contact>Café Müller ÄÖÜ 日本</Contact>"));
    assert!(out.contains("<Addr1>Smith &amp; Söhne &lt;GmbH&gt; &#x65E5;</Addr1>"));
}

#[test]
fn a_fixture_query_can_be_continued_by_the_builder_at_the_apps_version() {
    let doc = RequestDocument::parse(request("purchase_order_query_rq.xml")).unwrap();
    let xml = RequestBuilder::new(doc.version())
        .continue_iterator(&doc.requests()[0], "{ee76b904-7ef8-4b83-9841-63d4715a273b}", &id("p2"))
        .unwrap()
        .build()
        .unwrap();
    let page = RequestDocument::parse(&xml).unwrap();
    assert_eq!(page.version(), QbxmlVersion::new(8, 0));
    let query = &page.requests()[0];
    assert_eq!(query.iterator(), Some(IteratorMode::Continue));
    assert_eq!(query.request_id(), Some("p2"));
    // The commented-out filter and the rest of the body travel unchanged.
    assert!(query.raw().contains("<!--<ModifiedDateRangeFilter>"));
    assert!(query.raw().contains("<MaxReturned>10</MaxReturned>"));
}

#[test]
fn responses_are_not_accepted_as_requests_and_vice_versa() {
    for (file, xml) in RESPONSES {
        let err = RequestDocument::parse(xml).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::MissingQbxmlVersion, "{file}");
        assert_eq!(err.position.line, 2, "{file}: points at <QBXML>");
    }
    for (file, xml) in REQUESTS {
        let err = ResponseDocument::parse(xml).unwrap_err();
        assert!(matches!(err.kind, ParseErrorKind::UnexpectedElement { .. }), "{file}: {err}");
        assert_eq!(err.position.line, 4, "{file}: points at <QBXMLMsgsRq>");
    }
}

fn exercise(text: &str) {
    if let Ok(doc) = RequestDocument::parse(text) {
        let mut rewrite = doc.rewrite();
        for (i, rq) in doc.requests().iter().enumerate() {
            rewrite.set_request_id(i, &id("fuzz")).unwrap();
            if rq.kind().is_read_only() {
                rewrite.set_iterator(i, IteratorChange::Continue("{x}")).unwrap();
            }
        }
        rewrite.set_old_message_set_id(&MessageSetId::new("old").unwrap());
        let out = rewrite.finish();
        // A rewrite of a valid document is valid and carries the new ids.
        let reparsed = RequestDocument::parse(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert!(reparsed.requests().iter().all(|r| r.request_id() == Some("fuzz")));
    }
    if let Ok(doc) = ResponseDocument::parse(text) {
        for rs in doc.responses() {
            assert_eq!(rs.records().count(), rs.record_count());
            for record in rs.records() {
                let _ = record.list_id_or_txn_id();
            }
        }
    }
    let _ = ledgerlink_qbxml::bench_support::bare_event_count(text);
}

#[test]
fn every_truncated_prefix_of_every_fixture_is_an_error_not_a_panic() {
    for (file, xml) in REQUESTS.iter().chain(RESPONSES) {
        let complete = xml.rfind("</QBXML>").unwrap() + "</QBXML>".len();
        for len in (0..xml.len()).filter(|&len| xml.is_char_boundary(len)) {
            let prefix = &xml[..len];
            exercise(prefix);
            if len < complete {
                assert!(RequestDocument::parse(prefix).is_err(), "{file}[..{len}]");
                let err = ResponseDocument::parse(prefix).unwrap_err();
                assert!(err.position.offset <= len, "{file}[..{len}]: {err}");
            }
        }
    }
}

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_byte_flips_and_markup_insertions_never_panic() {
    const MARKUP: &[&[u8]] = &[
        b"<",
        b">",
        b"/",
        b"&",
        b"\"",
        b"'",
        b"=",
        b"?",
        b"!",
        b"<![CDATA[",
        b"]]>",
        b"<!--",
        b"-->",
        b"&amp;",
        b"&#0;",
        b"\xC3\xA9",
        b"\xE6\x97\xA5",
        b"\xFF",
        b"<?qbxml version=\"6.1\"?>",
        b" requestID=\"x\"",
        b" iterator=\"Continue\"",
        b"</QBXMLMsgsRq>",
        b"<QBXMLMsgsRs>",
    ];
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    for (_, xml) in REQUESTS.iter().chain(RESPONSES) {
        for _ in 0..300 {
            let mut bytes = xml.as_bytes().to_vec();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len() + 1);
                match rng.below(3) {
                    0 if at < bytes.len() => bytes[at] = rng.next() as u8,
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => {
                        let piece = MARKUP[rng.below(MARKUP.len())];
                        bytes.splice(at..at, piece.iter().copied());
                    }
                }
            }
            exercise(&String::from_utf8_lossy(&bytes));
        }
    }
}
