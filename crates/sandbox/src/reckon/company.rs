//! A fake Reckon Accounts company file that answers qbXML the way the desktop SDK does.
//!
//! One call to [`CompanyFile::process`] is one `ProcessRequest`: the whole request document is
//! read and checked first (a document the SDK cannot read fails as a whole, with its HRESULT,
//! and nothing is applied), then each request runs in order under the message set's `onError`,
//! and a full response document comes back with every request's `requestID` echoed.
//!
//! Iterators live in the SDK session that created them. Reckon Accounts keeps one session open
//! at a time, so [`CompanyFile::begin_session`] ends the previous one and its iterators with it;
//! that is how another connection's activity on the same file breaks an iterator.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};

use ledgerlink_core::Timestamp;
use ledgerlink_qbxml::{IteratorMode, OnError, RequestDocument, RequestElement, StatusCode};
use rand::Rng;
use rand::rngs::StdRng;
use serde::Serialize;

use super::records::{
    self, CompanyInfo, CompanyOptions, Customer, IdSource, Invoice, InvoiceLine, Item, parse_money,
};
use super::xml::{Element, XmlWriter, escape_attr};

/// A company file several simulated connections (and a test) can use at once.
pub type SharedCompanyFile = Arc<Mutex<CompanyFile>>;

/// The HRESULT the SDK's request processor raises for a document it cannot read.
pub const HRESULT_PARSE_ERROR: &str = "0x80040400";
/// Its message, as the QuickBooks-family SDK words it (Reckon Accounts keeps the wording).
pub const PARSE_ERROR_MESSAGE: &str = "QuickBooks found an error when parsing the provided XML text stream.";

/// The special `oldMessageSetID` that forgets every saved message set.
const CLEAR_ALL_MESSAGE_SETS: &str = "ClearAllMessageSets";
/// How many saved message-set responses the file keeps (oldest forgotten first).
const SAVED_MESSAGE_SETS: usize = 256;
/// qbXML names are at most 41 characters.
const MAX_NAME_CHARS: usize = 41;

/// The versions `HostQueryRs` reports; Reckon documents its SDK as "max SDK version 13".
const SUPPORTED_VERSIONS: &[&str] = &[
    "1.0", "1.1", "2.0", "2.1", "3.0", "4.0", "4.1", "5.0", "6.0", "6.1", "7.0", "8.0", "9.0", "10.0",
    "11.0", "12.0", "13.0",
];

/// An SDK session on the file. Iterators belong to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session-{}", self.0)
    }
}

/// The error the SDK raises instead of answering: no response document, an HRESULT and a
/// message, which the RWC puts in `errorCode`/`errorMsg`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message} ({detail})")]
pub struct SdkError {
    /// E.g. [`HRESULT_PARSE_ERROR`].
    pub code: String,
    /// E.g. [`PARSE_ERROR_MESSAGE`].
    pub message: String,
    /// What exactly was wrong, for logs (the SDK itself does not say).
    pub detail: String,
}

impl SdkError {
    fn parse(detail: impl Into<String>) -> Self {
        SdkError {
            code: HRESULT_PARSE_ERROR.into(),
            message: PARSE_ERROR_MESSAGE.into(),
            detail: detail.into(),
        }
    }
}

/// Counters, so tests can tell what was applied and how often.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompanyStats {
    /// Request documents processed (not replayed from a saved message set, not rejected).
    pub message_sets_processed: u64,
    /// Requests run (each `…Rq`; those skipped with 3231 are not counted).
    pub requests_processed: u64,
    /// Requests answered 3231 because an earlier one failed under `stopOnError`.
    pub requests_not_processed: u64,
    pub customers_added: u64,
    pub invoices_added: u64,
    /// Documents refused with [`HRESULT_PARSE_ERROR`].
    pub parse_errors: u64,
    /// Documents answered with a saved response (`oldMessageSetID`), nothing applied.
    pub message_sets_replayed: u64,
    pub sessions_opened: u64,
    pub iterators_started: u64,
    /// Pages served to `iterator="Continue"`.
    pub iterator_continuations: u64,
    /// Continuations answered 3391.
    pub invalid_iterators: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueryKind {
    Customer,
    Item,
    Invoice,
}

/// What a query matched: record keys (ListIDs or TxnIDs) in result order, plus the keys asked
/// for by ListID/FullName/TxnID/RefNumber that do not exist.
struct Matches {
    keys: Vec<String>,
    missing: Vec<String>,
}

#[derive(Debug)]
struct IteratorState {
    kind: QueryKind,
    keys: Vec<String>,
    position: usize,
}

#[derive(Debug)]
struct Session {
    id: SessionId,
    owner: String,
    iterators: HashMap<String, IteratorState>,
}

/// One `…Rs` element in the making.
struct Rs {
    name: String,
    request_id: Option<String>,
    code: i32,
    severity: &'static str,
    message: String,
    iterator: Option<(usize, String)>,
    body: String,
}

impl Rs {
    fn new(rq_name: &str, request_id: Option<&str>) -> Self {
        let stem = rq_name.strip_suffix("Rq").unwrap_or(rq_name);
        Rs {
            name: format!("{stem}Rs"),
            request_id: request_id.map(str::to_owned),
            code: 0,
            severity: "Info",
            message: "Status OK".into(),
            iterator: None,
            body: String::new(),
        }
    }

    fn status(mut self, code: i32, message: impl Into<String>) -> Self {
        self.code = code;
        self.severity = match StatusCode(code).class() {
            ledgerlink_qbxml::StatusClass::Warning => "Warn",
            ledgerlink_qbxml::StatusClass::Error => "Error",
            _ => "Info",
        };
        self.message = message.into();
        self
    }

    fn is_error(&self) -> bool {
        StatusCode(self.code).is_error()
    }

    fn write(&self, out: &mut String) {
        out.push_str("    <");
        out.push_str(&self.name);
        if let Some(id) = &self.request_id {
            out.push_str(" requestID=\"");
            escape_attr(id, out);
            out.push('"');
        }
        out.push_str(&format!(
            " statusCode=\"{}\" statusSeverity=\"{}\" statusMessage=\"",
            self.code, self.severity
        ));
        escape_attr(&self.message, out);
        out.push('"');
        if let Some((remaining, id)) = &self.iterator {
            out.push_str(&format!(" iteratorRemainingCount=\"{remaining}\" iteratorID=\""));
            escape_attr(id, out);
            out.push('"');
        }
        if self.body.is_empty() {
            out.push_str(" />\n");
        } else {
            out.push_str(">\n");
            out.push_str(&self.body);
            out.push_str("    </");
            out.push_str(&self.name);
            out.push_str(">\n");
        }
    }
}

/// A fake Reckon Accounts company file.
#[derive(Debug)]
pub struct CompanyFile {
    path: String,
    info: CompanyInfo,
    customers: Vec<Customer>,
    items: Vec<Item>,
    invoices: Vec<Invoice>,
    ids: IdSource,
    rng: StdRng,
    session: Option<Session>,
    next_session: u64,
    saved_message_sets: HashMap<String, String>,
    saved_order: VecDeque<String>,
    stats: CompanyStats,
}

impl CompanyFile {
    /// A new file, generated deterministically from `options.seed`.
    pub fn generate(options: &CompanyOptions) -> Self {
        let generated = records::generate(options);
        CompanyFile {
            path: options.path.clone(),
            info: generated.company,
            customers: generated.customers,
            items: generated.items,
            invoices: generated.invoices,
            ids: generated.ids,
            rng: generated.rng,
            session: None,
            next_session: 1,
            saved_message_sets: HashMap::new(),
            saved_order: VecDeque::new(),
            stats: CompanyStats::default(),
        }
    }

    /// Wraps the file for sharing between clients.
    pub fn shared(self) -> SharedCompanyFile {
        Arc::new(Mutex::new(self))
    }

    /// The `*.QBW` path the file is known by.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn company_name(&self) -> &str {
        &self.info.name
    }

    /// Every customer, active or not, in creation order.
    pub fn customers(&self) -> &[Customer] {
        &self.customers
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }

    pub fn invoices(&self) -> &[Invoice] {
        &self.invoices
    }

    /// A customer by name (names are unique ignoring case, as in the product).
    pub fn customer_named(&self, name: &str) -> Option<&Customer> {
        self.customers.iter().find(|c| c.name.to_lowercase() == name.to_lowercase())
    }

    pub fn stats(&self) -> &CompanyStats {
        &self.stats
    }

    /// The response saved for a message set sent with `newMessageSetID`.
    pub fn saved_message_set(&self, id: &str) -> Option<&str> {
        self.saved_message_sets.get(id).map(String::as_str)
    }

    /// Opens an SDK session for `owner` (a connection id). The file has one session at a time:
    /// the previous one ends, and every iterator it held is gone.
    pub fn begin_session(&mut self, owner: &str) -> SessionId {
        let id = SessionId(self.next_session);
        self.next_session += 1;
        self.stats.sessions_opened += 1;
        self.session = Some(Session { id, owner: owner.to_owned(), iterators: HashMap::new() });
        id
    }

    /// Ends `id` if it is still the open session.
    pub fn end_session(&mut self, id: SessionId) {
        if self.is_current_session(id) {
            self.session = None;
        }
    }

    /// Whether `id` is the open session (no one has opened another since).
    pub fn is_current_session(&self, id: SessionId) -> bool {
        self.session.as_ref().is_some_and(|s| s.id == id)
    }

    /// The open session and who opened it.
    pub fn current_session(&self) -> Option<(SessionId, &str)> {
        self.session.as_ref().map(|s| (s.id, s.owner.as_str()))
    }

    /// Forgets every iterator of the open session, as Reckon Accounts does when it hits an
    /// unexpected error: the next `Continue` gets 3391.
    pub fn invalidate_iterators(&mut self) {
        if let Some(session) = &mut self.session {
            session.iterators.clear();
        }
    }

    /// Processes a qbXML request document in the open session (opening one if there is none)
    /// and returns the response document, or the SDK error for a document it cannot read.
    pub fn process(&mut self, xml: &str, now: Timestamp) -> Result<String, SdkError> {
        let doc = match RequestDocument::parse(xml) {
            Ok(doc) => doc,
            Err(err) => return Err(self.parse_error(err.to_string())),
        };
        let requests = match self.check(&doc) {
            Ok(requests) => requests,
            Err(detail) => return Err(self.parse_error(detail)),
        };

        let mut set_status = None;
        match doc.old_message_set_id() {
            Some(CLEAR_ALL_MESSAGE_SETS) => {
                self.saved_message_sets.clear();
                self.saved_order.clear();
            }
            Some(old) => {
                if let Some(saved) = self.saved_message_sets.get(old) {
                    // The set was applied before: answer what it answered then, apply nothing.
                    self.stats.message_sets_replayed += 1;
                    return Ok(saved.clone());
                }
                set_status = Some(StatusCode::NO_CLEARED_STATE.0);
            }
            None => {}
        }
        if doc.new_message_set_id().is_some() && set_status.is_none() {
            set_status = Some(0);
        }

        if self.session.is_none() {
            self.begin_session("sdk");
        }
        let now_secs = now.as_millis().div_euclid(1000);
        let mut responses = Vec::with_capacity(requests.len());
        let mut stopped = false;
        for (request, element) in doc.requests().iter().zip(&requests) {
            if stopped {
                self.stats.requests_not_processed += 1;
                responses.push(
                    Rs::new(request.name(), request.request_id())
                        .status(StatusCode::NOT_PROCESSED.0, "The request has not been processed."),
                );
                continue;
            }
            self.stats.requests_processed += 1;
            let rs = self.run(request, element, now_secs);
            stopped = rs.is_error() && doc.on_error() == OnError::StopOnError;
            responses.push(rs);
        }
        self.stats.message_sets_processed += 1;

        let mut out = String::from("<?xml version=\"1.0\" ?>\n<QBXML>\n  <QBXMLMsgsRs");
        if let Some(new) = doc.new_message_set_id() {
            out.push_str(" newMessageSetID=\"");
            escape_attr(new, &mut out);
            out.push('"');
        }
        if let Some(code) = set_status {
            out.push_str(&format!(" messageSetStatusCode=\"{code}\""));
        }
        out.push_str(">\n");
        for rs in &responses {
            rs.write(&mut out);
        }
        out.push_str("  </QBXMLMsgsRs>\n</QBXML>\n");

        if let Some(new) = doc.new_message_set_id() {
            self.save_message_set(new, &out);
        }
        Ok(out)
    }

    fn parse_error(&mut self, detail: String) -> SdkError {
        self.stats.parse_errors += 1;
        SdkError::parse(detail)
    }

    fn save_message_set(&mut self, id: &str, response: &str) {
        if self.saved_message_sets.insert(id.to_owned(), response.to_owned()).is_none() {
            self.saved_order.push_back(id.to_owned());
            if self.saved_order.len() > SAVED_MESSAGE_SETS
                && let Some(oldest) = self.saved_order.pop_front()
            {
                self.saved_message_sets.remove(&oldest);
            }
        }
    }

    /// What the SDK's schema check would refuse before running anything.
    fn check(&self, doc: &RequestDocument<'_>) -> Result<Vec<Element>, String> {
        if doc.on_error() == OnError::RollbackOnError {
            return Err("onError=\"rollbackOnError\" is not supported".into());
        }
        let mut elements = Vec::with_capacity(doc.requests().len());
        for request in doc.requests() {
            if request.iterator().is_some() && !doc.version().supports_iterators() {
                return Err(format!("qbXML {} has no iterators ({})", doc.version(), request.name()));
            }
            let element =
                Element::parse(request.raw()).map_err(|err| format!("{}: {err}", request.name()))?;
            match request.name() {
                "CustomerAddRq" => {
                    let add = element.child("CustomerAdd").ok_or("CustomerAddRq without CustomerAdd")?;
                    add.text_of("Name").ok_or("CustomerAdd without Name")?;
                }
                "InvoiceAddRq" => {
                    let add = element.child("InvoiceAdd").ok_or("InvoiceAddRq without InvoiceAdd")?;
                    let customer = add.child("CustomerRef").ok_or("InvoiceAdd without CustomerRef")?;
                    if customer.text_of("ListID").is_none() && customer.text_of("FullName").is_none() {
                        return Err("CustomerRef without ListID or FullName".into());
                    }
                }
                _ => {}
            }
            elements.push(element);
        }
        Ok(elements)
    }

    fn run(&mut self, request: &RequestElement<'_>, element: &Element, now: i64) -> Rs {
        let rs = Rs::new(request.name(), request.request_id());
        match request.name() {
            "HostQueryRq" => self.host_query(rs),
            "CompanyQueryRq" => self.company_query(rs),
            "CustomerQueryRq" => self.query(rs, QueryKind::Customer, request, element),
            "ItemQueryRq" => self.query(rs, QueryKind::Item, request, element),
            "InvoiceQueryRq" => self.query(rs, QueryKind::Invoice, request, element),
            "CustomerAddRq" => self.customer_add(rs, element, now),
            "InvoiceAddRq" => self.invoice_add(rs, element, now),
            _ if request.kind().is_read_only() => match request.iterator() {
                // A list this file keeps nothing in.
                Some(IteratorMode::Continue | IteratorMode::Stop) => {
                    self.invalid_iterator(rs, request.iterator_id().unwrap_or_default())
                }
                Some(IteratorMode::Start) => {
                    let id = self.iterator_id();
                    let mut rs = no_match(rs);
                    rs.iterator = Some((0, id));
                    rs
                }
                None => no_match(rs),
            },
            _ => rs.status(1030, "This request is not supported by this implementation."),
        }
    }

    fn host_query(&self, mut rs: Rs) -> Rs {
        let mut w = XmlWriter::new(3);
        w.open("HostRet")
            .leaf("ProductName", "Reckon Accounts Premier 2023")
            .leaf("MajorVersion", "32")
            .leaf("MinorVersion", "0");
        for version in SUPPORTED_VERSIONS {
            w.leaf("SupportedQBXMLVersion", version);
        }
        w.leaf("IsAutomaticLogin", "false").leaf("QBFileMode", "SingleUser").close("HostRet");
        rs.body = w.finish();
        rs
    }

    fn company_query(&self, mut rs: Rs) -> Rs {
        let mut w = XmlWriter::new(3);
        w.open("CompanyRet")
            .leaf("IsSampleCompany", "false")
            .leaf("CompanyName", &self.info.name)
            .leaf("LegalCompanyName", &self.info.name)
            .group("Address", &self.info.address)
            .group("LegalAddress", &self.info.address)
            .leaf("Phone", &self.info.phone)
            .leaf("Email", &self.info.email)
            .leaf("FirstMonthFiscalYear", "July")
            .leaf("FirstMonthIncomeTaxYear", "July")
            .close("CompanyRet");
        rs.body = w.finish();
        rs
    }

    /// Customer, item and invoice queries, with or without an iterator.
    fn query(&mut self, rs: Rs, kind: QueryKind, request: &RequestElement<'_>, element: &Element) -> Rs {
        let max = element.text_of("MaxReturned").and_then(|m| m.parse::<usize>().ok());
        let include_lines = element.text_of("IncludeLineItems") == Some("true");
        match request.iterator() {
            Some(IteratorMode::Continue) => {
                let id = request.iterator_id().unwrap_or_default();
                self.continue_iterator(rs, kind, id, max, include_lines)
            }
            Some(IteratorMode::Stop) => {
                let id = request.iterator_id().unwrap_or_default();
                let removed = self.session.as_mut().and_then(|s| s.iterators.remove(id));
                match removed {
                    Some(_) => {
                        let mut rs = rs;
                        rs.iterator = Some((0, id.to_owned()));
                        rs
                    }
                    None => self.invalid_iterator(rs, id),
                }
            }
            Some(IteratorMode::Start) => {
                let matches = self.matches(kind, element);
                self.stats.iterators_started += 1;
                let id = self.iterator_id();
                let page_len = max.unwrap_or(usize::MAX).min(matches.keys.len());
                let remaining = matches.keys.len() - page_len;
                let page: Vec<String> = matches.keys[..page_len].to_vec();
                if remaining > 0
                    && let Some(session) = &mut self.session
                {
                    session
                        .iterators
                        .insert(id.clone(), IteratorState { kind, keys: matches.keys, position: page_len });
                }
                let mut rs = self.answer(rs, kind, &page, &matches.missing, include_lines);
                rs.iterator = Some((remaining, id));
                rs
            }
            None => {
                let matches = self.matches(kind, element);
                let page_len = max.unwrap_or(usize::MAX).min(matches.keys.len());
                self.answer(rs, kind, &matches.keys[..page_len], &matches.missing, include_lines)
            }
        }
    }

    fn continue_iterator(
        &mut self,
        rs: Rs,
        kind: QueryKind,
        id: &str,
        max: Option<usize>,
        lines: bool,
    ) -> Rs {
        let Some(session) = &mut self.session else {
            return self.invalid_iterator(rs, id);
        };
        let Some(state) = session.iterators.get_mut(id).filter(|s| s.kind == kind) else {
            return self.invalid_iterator(rs, id);
        };
        let end = state.position.saturating_add(max.unwrap_or(usize::MAX)).min(state.keys.len());
        let page = state.keys[state.position..end].to_vec();
        state.position = end;
        let remaining = state.keys.len() - end;
        if remaining == 0 {
            // Used up: the iterator is gone, as in the SDK.
            session.iterators.remove(id);
        }
        self.stats.iterator_continuations += 1;
        let mut rs = self.answer(rs, kind, &page, &[], lines);
        rs.iterator = Some((remaining, id.to_owned()));
        rs
    }

    fn invalid_iterator(&mut self, rs: Rs, id: &str) -> Rs {
        self.stats.invalid_iterators += 1;
        rs.status(
            StatusCode::ITERATOR_INVALID.0,
            format!("The iterator \"{id}\" is not valid: it does not exist in this session or has expired."),
        )
    }

    /// A GUID-style iterator id, e.g. `{eb05f701-e727-472f-8ade-6753c4f67a46}`.
    fn iterator_id(&mut self) -> String {
        let rng = &mut self.rng;
        format!(
            "{{{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}}}",
            rng.r#gen::<u32>(),
            rng.r#gen::<u16>(),
            rng.gen_range(0..0x1000u16),
            0x8000 | rng.gen_range(0..0x4000u16),
            rng.r#gen::<u64>() & 0xffff_ffff_ffff
        )
    }

    /// Writes the records for `keys` and picks the status.
    fn answer(&self, mut rs: Rs, kind: QueryKind, keys: &[String], missing: &[String], lines: bool) -> Rs {
        let mut w = XmlWriter::new(3);
        let mut written = 0;
        for key in keys {
            match kind {
                QueryKind::Customer => {
                    if let Some(c) = self.customers.iter().find(|c| &c.list_id == key) {
                        c.write(&mut w);
                        written += 1;
                    }
                }
                QueryKind::Item => {
                    if let Some(i) = self.items.iter().find(|i| &i.list_id == key) {
                        i.write(&mut w);
                        written += 1;
                    }
                }
                QueryKind::Invoice => {
                    if let Some(i) = self.invoices.iter().find(|i| &i.txn_id == key) {
                        i.write(&mut w, lines);
                        written += 1;
                    }
                }
            }
        }
        rs.body = w.finish();
        if let Some(first) = missing.first() {
            rs.status(
                500,
                format!(
                    "The query request has not been fully completed. There was a required element (\"{first}\") that could not be found in QuickBooks."
                ),
            )
        } else if written == 0 {
            no_match(rs)
        } else {
            rs
        }
    }

    fn matches(&self, kind: QueryKind, rq: &Element) -> Matches {
        match kind {
            QueryKind::Customer => list_matches(
                rq,
                self.customers.iter().map(|c| ListEntry {
                    list_id: &c.list_id,
                    name: &c.name,
                    is_active: c.is_active,
                    modified: c.time_modified,
                }),
            ),
            QueryKind::Item => list_matches(
                rq,
                self.items.iter().map(|i| ListEntry {
                    list_id: &i.list_id,
                    name: &i.name,
                    is_active: i.is_active,
                    modified: i.time_modified,
                }),
            ),
            QueryKind::Invoice => self.invoice_matches(rq),
        }
    }

    fn invoice_matches(&self, rq: &Element) -> Matches {
        let txn_ids = rq.texts_of("TxnID");
        let ref_numbers = rq.texts_of("RefNumber");
        if !txn_ids.is_empty() || !ref_numbers.is_empty() {
            let mut keys = Vec::new();
            let mut missing = Vec::new();
            for id in txn_ids {
                match self.invoices.iter().find(|i| i.txn_id == id) {
                    Some(i) => keys.push(i.txn_id.clone()),
                    None => missing.push(id.to_owned()),
                }
            }
            for number in ref_numbers {
                let found: Vec<_> = self.invoices.iter().filter(|i| i.ref_number == number).collect();
                if found.is_empty() {
                    missing.push(number.to_owned());
                }
                keys.extend(found.into_iter().map(|i| i.txn_id.clone()));
            }
            return Matches { keys, missing };
        }
        let entity = rq.child("EntityFilter");
        let entity_id = entity.and_then(|e| e.text_of("ListID"));
        let entity_name = entity.and_then(|e| e.text_of("FullName")).map(str::to_lowercase);
        let txn_dates = rq.child("TxnDateRangeFilter");
        let from_date = txn_dates.and_then(|f| f.text_of("FromTxnDate"));
        let to_date = txn_dates.and_then(|f| f.text_of("ToTxnDate"));
        let modified = rq.child("ModifiedDateRangeFilter");
        let from_modified = modified.and_then(|f| f.text_of("FromModifiedDate"));
        let to_modified = modified.and_then(|f| f.text_of("ToModifiedDate"));
        let paid = rq.text_of("PaidStatus").unwrap_or("All");
        let keys = self
            .invoices
            .iter()
            .filter(|i| entity_id.is_none_or(|id| i.customer_list_id == id))
            .filter(|i| entity_name.as_ref().is_none_or(|n| i.customer_name.to_lowercase() == *n))
            .filter(|i| from_date.is_none_or(|d| i.txn_date.as_str() >= d))
            .filter(|i| to_date.is_none_or(|d| i.txn_date.as_str() <= d))
            .filter(|i| in_modified_range(i.time_modified, from_modified, to_modified))
            .filter(|i| match paid {
                "PaidOnly" => i.is_paid(),
                "NotPaidOnly" => !i.is_paid(),
                _ => true,
            })
            .map(|i| i.txn_id.clone())
            .collect();
        Matches { keys, missing: Vec::new() }
    }

    fn customer_add(&mut self, mut rs: Rs, rq: &Element, now: i64) -> Rs {
        let Some(add) = rq.child("CustomerAdd") else {
            return rs.status(1000, "There has been an internal error when processing the request.");
        };
        let name = add.text_of("Name").unwrap_or_default().to_owned();
        if name.chars().count() > MAX_NAME_CHARS {
            return rs.status(3070, format!("The string \"{name}\" in the field \"Name\" is too long."));
        }
        if self.customer_named(&name).is_some() {
            return rs.status(3100, format!("The name \"{name}\" of the list element is already in use."));
        }
        let text = |field: &str| add.text_of(field).map(str::to_owned);
        let address = |field: &str| {
            add.child(field)
                .map(|a| {
                    a.children
                        .iter()
                        .filter(|c| !c.text.trim().is_empty())
                        .map(|c| (c.name.clone(), c.text.trim().to_owned()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let customer = Customer {
            list_id: self.ids.list_id(now),
            is_active: add.text_of("IsActive") != Some("false"),
            company_name: text("CompanyName"),
            first_name: text("FirstName"),
            last_name: text("LastName"),
            bill_address: address("BillAddress"),
            ship_address: address("ShipAddress"),
            phone: text("Phone"),
            alt_phone: text("AltPhone"),
            fax: text("Fax"),
            email: text("Email"),
            contact: text("Contact"),
            balance_cents: 0,
            name,
            time_created: now,
            time_modified: now,
        };
        let mut w = XmlWriter::new(3);
        customer.write(&mut w);
        rs.body = w.finish();
        self.customers.push(customer);
        self.stats.customers_added += 1;
        rs
    }

    fn invoice_add(&mut self, mut rs: Rs, rq: &Element, now: i64) -> Rs {
        let Some(add) = rq.child("InvoiceAdd") else {
            return rs.status(1000, "There has been an internal error when processing the request.");
        };
        let customer_ref = add.child("CustomerRef");
        let by_id = customer_ref.and_then(|r| r.text_of("ListID"));
        let by_name = customer_ref.and_then(|r| r.text_of("FullName"));
        let customer = match (by_id, by_name) {
            (Some(id), _) => self.customers.iter().position(|c| c.list_id == id),
            (None, Some(name)) => {
                self.customers.iter().position(|c| c.name.to_lowercase() == name.to_lowercase())
            }
            (None, None) => None,
        };
        let Some(customer) = customer else {
            let wanted = by_id.or(by_name).unwrap_or_default();
            return rs.status(3140, invalid_reference("Customer", wanted, "Invoice"));
        };

        let created = now;
        let txn_id = self.ids.txn_id(created);
        let mut lines = Vec::new();
        for line in add.children_named("InvoiceLineAdd") {
            let item_ref = line.child("ItemRef");
            let item_id = item_ref.and_then(|r| r.text_of("ListID"));
            let item_name = item_ref.and_then(|r| r.text_of("FullName"));
            let item = match (item_id, item_name) {
                (Some(id), _) => self.items.iter().find(|i| i.list_id == id),
                (None, Some(name)) => {
                    self.items.iter().find(|i| i.name.to_lowercase() == name.to_lowercase())
                }
                (None, None) => None,
            };
            let item = match (item, item_id.or(item_name)) {
                (Some(item), _) => Some(item),
                (None, Some(wanted)) => {
                    return rs.status(3140, invalid_reference("Item", wanted, "Invoice line"));
                }
                // A description-only line.
                (None, None) => None,
            };
            let quantity = line.text_of("Quantity").map(str::to_owned);
            let rate_cents = line.text_of("Rate").and_then(parse_money).or(item.map(|i| i.price_cents));
            let amount_cents = match line.text_of("Amount").and_then(parse_money) {
                Some(amount) => amount,
                None => {
                    let qty: f64 = quantity.as_deref().and_then(|q| q.parse().ok()).unwrap_or(1.0);
                    (qty * rate_cents.unwrap_or(0) as f64).round() as i64
                }
            };
            lines.push(InvoiceLine {
                txn_line_id: self.ids.txn_id(created),
                item_list_id: item.map(|i| i.list_id.clone()).unwrap_or_default(),
                item_name: item.map(|i| i.name.clone()).unwrap_or_default(),
                description: line.text_of("Desc").map(str::to_owned).or(item.map(|i| i.description.clone())),
                quantity,
                rate_cents,
                amount_cents,
            });
        }

        let txn_date = add.text_of("TxnDate").map(str::to_owned).unwrap_or_else(|| records::date(now));
        let ref_number = match add.text_of("RefNumber") {
            Some(number) => number.to_owned(),
            None => {
                let number = self.ids.next_ref_number.to_string();
                self.ids.next_ref_number += 1;
                number
            }
        };
        let bill_address: Vec<(String, String)> = match add.child("BillAddress") {
            Some(a) => a
                .children
                .iter()
                .filter(|c| !c.text.trim().is_empty())
                .map(|c| (c.name.clone(), c.text.trim().to_owned()))
                .collect(),
            None => self.customers[customer].bill_address.clone(),
        };
        let invoice = Invoice {
            txn_id,
            txn_number: self.ids.next_txn_number,
            customer_list_id: self.customers[customer].list_id.clone(),
            customer_name: self.customers[customer].name.clone(),
            due_date: add.text_of("DueDate").map(str::to_owned).unwrap_or_else(|| txn_date.clone()),
            txn_date,
            ref_number,
            po_number: add.text_of("PONumber").map(str::to_owned),
            memo: add.text_of("Memo").map(str::to_owned),
            bill_address,
            lines,
            applied_cents: 0,
            time_created: created,
            time_modified: created,
        };
        self.ids.next_txn_number += 1;
        self.customers[customer].balance_cents += invoice.balance_remaining_cents();
        self.customers[customer].time_modified = now;
        let mut w = XmlWriter::new(3);
        invoice.write(&mut w, true);
        rs.body = w.finish();
        self.invoices.push(invoice);
        self.stats.invoices_added += 1;
        rs
    }
}

fn no_match(rs: Rs) -> Rs {
    rs.status(1, "A query request did not find a matching object in QuickBooks")
}

fn invalid_reference(list: &str, wanted: &str, object: &str) -> String {
    format!(
        "There is an invalid reference to QuickBooks {list} \"{wanted}\" in the {object}. QuickBooks error message: Invalid argument.  The specified record does not exist in the list."
    )
}

/// What list queries filter on.
struct ListEntry<'a> {
    list_id: &'a str,
    name: &'a str,
    is_active: bool,
    modified: i64,
}

/// `ListID`s or `FullName`s (each reported missing when absent, active or not), else the
/// filters: `ActiveStatus` (default `ActiveOnly`), `NameFilter`, `FromModifiedDate` and
/// `ToModifiedDate`. Results are in name order, as the product lists them.
fn list_matches<'a>(rq: &Element, entries: impl Iterator<Item = ListEntry<'a>>) -> Matches {
    let entries: Vec<ListEntry<'a>> = entries.collect();
    let ids = rq.texts_of("ListID");
    let names = rq.texts_of("FullName");
    if !ids.is_empty() || !names.is_empty() {
        let mut keys = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            match entries.iter().find(|e| e.list_id == id) {
                Some(e) => keys.push(e.list_id.to_owned()),
                None => missing.push(id.to_owned()),
            }
        }
        for name in names {
            match entries.iter().find(|e| e.name.to_lowercase() == name.to_lowercase()) {
                Some(e) => keys.push(e.list_id.to_owned()),
                None => missing.push(name.to_owned()),
            }
        }
        return Matches { keys, missing };
    }
    let active = rq.text_of("ActiveStatus").unwrap_or("ActiveOnly");
    let name_filter = rq.child("NameFilter").map(|f| {
        (
            f.text_of("MatchCriterion").unwrap_or("StartsWith").to_owned(),
            f.text_of("Name").unwrap_or("").to_lowercase(),
        )
    });
    // qbXML 2.x-6.x put these in the query itself; later versions wrap them in a range filter.
    let range = rq.child("ModifiedDateRangeFilter").unwrap_or(rq);
    let from = range.text_of("FromModifiedDate");
    let to = range.text_of("ToModifiedDate");
    let mut found: Vec<&ListEntry<'a>> = entries
        .iter()
        .filter(|e| match active {
            "All" => true,
            "InactiveOnly" => !e.is_active,
            _ => e.is_active,
        })
        .filter(|e| {
            name_filter.as_ref().is_none_or(|(criterion, wanted)| {
                let name = e.name.to_lowercase();
                match criterion.as_str() {
                    "Contains" => name.contains(wanted.as_str()),
                    "EndsWith" => name.ends_with(wanted.as_str()),
                    _ => name.starts_with(wanted.as_str()),
                }
            })
        })
        .filter(|e| in_modified_range(e.modified, from, to))
        .collect();
    found.sort_by_key(|e| e.name.to_lowercase());
    Matches { keys: found.into_iter().map(|e| e.list_id.to_owned()).collect(), missing: Vec::new() }
}

/// Compares the local date and time (`YYYY-MM-DDTHH:MM:SS`, any offset ignored): close enough
/// for a simulator, and exact for dates written the way the SDK writes them.
fn in_modified_range(modified: i64, from: Option<&str>, to: Option<&str>) -> bool {
    let at = records::datetime(modified);
    let at = &at[..19];
    let cut = |s: &str| s.get(..19.min(s.len())).unwrap_or(s).to_owned();
    from.is_none_or(|f| at >= cut(f).as_str()) && to.is_none_or(|t| at <= cut(t).as_str())
}

#[cfg(test)]
mod tests {
    use ledgerlink_qbxml::{ResponseDocument, Severity};

    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_795_370_400_000);

    fn file() -> CompanyFile {
        CompanyFile::generate(&CompanyOptions::default())
    }

    fn doc(on_error: &str, body: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?>\n<?qbxml version=\"6.1\"?>\n<QBXML>\n<QBXMLMsgsRq onError=\"{on_error}\">\n{body}\n</QBXMLMsgsRq>\n</QBXML>"
        )
    }

    fn fixture(name: &str) -> String {
        let path = format!("{}/../qbxml/tests/fixtures/requests/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
    }

    fn statuses(xml: &str) -> Vec<(String, Option<String>, i32)> {
        let doc = ResponseDocument::parse(xml).unwrap_or_else(|err| panic!("{err}\n{xml}"));
        doc.responses()
            .iter()
            .map(|r| (r.name().to_owned(), r.request_id().map(str::to_owned), r.status_code().0))
            .collect()
    }

    #[test]
    fn host_and_company_queries_answer_with_status_ok_and_echo_request_ids() {
        let mut file = file();
        let xml = file
            .process(
                &doc(
                    "continueOnError",
                    r#"<HostQueryRq requestID="h"/><CompanyQueryRq requestID="c"></CompanyQueryRq>"#,
                ),
                NOW,
            )
            .unwrap();
        assert!(xml.starts_with("<?xml version=\"1.0\" ?>\n<QBXML>\n  <QBXMLMsgsRs>\n"), "{xml}");
        assert_eq!(
            statuses(&xml),
            [("HostQueryRs".into(), Some("h".into()), 0), ("CompanyQueryRs".into(), Some("c".into()), 0)]
        );
        let parsed = ResponseDocument::parse(&xml).unwrap();
        assert_eq!(parsed.responses()[0].status_severity(), Some(Severity::Info));
        assert_eq!(parsed.responses()[0].status_message(), Some("Status OK"));
        assert!(xml.contains("<SupportedQBXMLVersion>13.0</SupportedQBXMLVersion>"));
        assert!(xml.contains(&format!("<CompanyName>{}</CompanyName>", file.company_name())));
    }

    #[test]
    fn a_customer_query_by_full_name_finds_non_ascii_names_and_reports_missing_ones() {
        let mut file = file();
        let xml = file
            .process(
                &doc(
                    "stopOnError",
                    "<CustomerQueryRq requestID=\"q\"><FullName>café müller</FullName></CustomerQueryRq>",
                ),
                NOW,
            )
            .unwrap();
        assert_eq!(statuses(&xml)[0].2, 0);
        assert!(xml.contains("<Name>Café Müller</Name>"), "{xml}");

        let xml = file.process(&fixture("customer_query_rq.xml"), NOW).unwrap();
        let response = ResponseDocument::parse(&xml).unwrap();
        let rs = &response.responses()[0];
        assert_eq!(rs.request_id(), Some("Q3VzdG9tZXJRdWVyeXwyODk2"));
        assert_eq!(rs.status_code(), StatusCode(500));
        assert_eq!(rs.status_severity(), Some(Severity::Warn));
        assert!(rs.status_message().unwrap().contains("(\"Keith Palmer\")"));
    }

    #[test]
    fn queries_that_match_nothing_answer_status_one() {
        let mut file = file();
        let xml = file
            .process(
                &doc("stopOnError", "<CustomerQueryRq requestID=\"n\"><NameFilter><MatchCriterion>StartsWith</MatchCriterion><Name>zzz</Name></NameFilter></CustomerQueryRq><AccountQueryRq requestID=\"a\"/>"),
                NOW,
            )
            .unwrap();
        assert_eq!(statuses(&xml).iter().map(|s| s.2).collect::<Vec<_>>(), [1, 1]);
        assert!(
            xml.contains("statusMessage=\"A query request did not find a matching object in QuickBooks\"")
        );
    }

    #[test]
    fn active_status_selects_active_inactive_or_all_customers() {
        let mut file = file();
        let count = |file: &mut CompanyFile, status: &str| {
            let xml = file
                .process(
                    &doc(
                        "stopOnError",
                        &format!("<CustomerQueryRq><ActiveStatus>{status}</ActiveStatus></CustomerQueryRq>"),
                    ),
                    NOW,
                )
                .unwrap();
            ResponseDocument::parse(&xml).unwrap().responses()[0].record_count()
        };
        assert_eq!(count(&mut file, "ActiveOnly"), 35);
        assert_eq!(count(&mut file, "InactiveOnly"), 2);
        assert_eq!(count(&mut file, "All"), 37);
    }

    #[test]
    fn an_iterator_pages_through_every_customer_once() {
        let mut file = file();
        file.begin_session("conn-1");
        let start = doc(
            "continueOnError",
            "<CustomerQueryRq requestID=\"p1\" iterator=\"Start\"><MaxReturned>10</MaxReturned></CustomerQueryRq>",
        );
        let xml = file.process(&start, NOW).unwrap();
        let first = ResponseDocument::parse(&xml).unwrap();
        let rs = &first.responses()[0];
        assert_eq!(rs.record_count(), 10);
        assert_eq!(rs.iterator_remaining_count(), Some(25));
        let id = rs.iterator_id().unwrap().to_owned();
        assert!(id.starts_with('{') && id.ends_with('}') && id.len() == 38, "{id}");
        let mut seen: Vec<String> =
            rs.records().map(|r| r.list_id_or_txn_id().unwrap().as_str().to_owned()).collect();
        let mut remaining = 25;
        while remaining > 0 {
            let page = doc(
                "continueOnError",
                &format!(
                    "<CustomerQueryRq requestID=\"p\" iterator=\"Continue\" iteratorID=\"{id}\"><MaxReturned>10</MaxReturned></CustomerQueryRq>"
                ),
            );
            let xml = file.process(&page, NOW).unwrap();
            let parsed = ResponseDocument::parse(&xml).unwrap();
            let rs = &parsed.responses()[0];
            assert_eq!(rs.status_code(), StatusCode::OK);
            remaining = rs.iterator_remaining_count().unwrap();
            seen.extend(rs.records().map(|r| r.list_id_or_txn_id().unwrap().as_str().to_owned()));
        }
        let distinct: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!((seen.len(), distinct.len()), (35, 35));

        // Used up: continuing again is an invalid iterator.
        let again = doc(
            "continueOnError",
            &format!(
                "<CustomerQueryRq requestID=\"late\" iterator=\"Continue\" iteratorID=\"{id}\"><MaxReturned>10</MaxReturned></CustomerQueryRq>"
            ),
        );
        let xml = file.process(&again, NOW).unwrap();
        assert_eq!(statuses(&xml)[0], ("CustomerQueryRs".into(), Some("late".into()), 3391));
        assert!(xml.contains("statusSeverity=\"Error\""));
        assert_eq!(file.stats().invalid_iterators, 1);
    }

    #[test]
    fn a_new_session_ends_the_iterators_of_the_previous_one() {
        let mut file = file();
        let first = file.begin_session("conn-1");
        let xml = file
            .process(
                &doc(
                    "stopOnError",
                    "<InvoiceQueryRq iterator=\"Start\"><MaxReturned>5</MaxReturned></InvoiceQueryRq>",
                ),
                NOW,
            )
            .unwrap();
        let parsed = ResponseDocument::parse(&xml).unwrap();
        let id = parsed.responses()[0].iterator_id().unwrap().to_owned();
        let second = file.begin_session("conn-2");
        assert!(!file.is_current_session(first));
        assert!(file.is_current_session(second));
        let cont = doc(
            "stopOnError",
            &format!(
                "<InvoiceQueryRq iterator=\"Continue\" iteratorID=\"{id}\"><MaxReturned>5</MaxReturned></InvoiceQueryRq>"
            ),
        );
        assert_eq!(statuses(&file.process(&cont, NOW).unwrap())[0].2, 3391);
    }

    #[test]
    fn adding_a_customer_twice_is_a_duplicate_name_error() {
        let mut file = file();
        let xml = file.process(&fixture("customer_add_rq.xml"), NOW).unwrap();
        assert_eq!(statuses(&xml)[0], ("CustomerAddRs".into(), Some("15".into()), 0));
        assert!(xml.contains("<Name>20706 - Eastern XYZ University</Name>"));
        assert!(xml.contains("<City>Storrs-Mansfield</City>"));
        let xml = file.process(&fixture("customer_add_rq.xml"), NOW).unwrap();
        assert_eq!(statuses(&xml)[0].2, 3100);
        assert!(xml.contains(
            "statusMessage=\"The name &quot;20706 - Eastern XYZ University&quot; of the list element is already in use.\""
        ));
        assert_eq!(file.stats().customers_added, 1);
        assert_eq!(file.customers().len(), 38);
    }

    #[test]
    fn stop_on_error_skips_the_rest_and_continue_on_error_does_not() {
        let body = "<CustomerAddRq requestID=\"1\"><CustomerAdd><Name>Café Müller</Name></CustomerAdd></CustomerAddRq>\
             <CustomerAddRq requestID=\"2\"><CustomerAdd><Name>Ngā Hau Joinery</Name></CustomerAdd></CustomerAddRq>";
        let mut file = file();
        let xml = file.process(&doc("stopOnError", body), NOW).unwrap();
        assert_eq!(statuses(&xml).iter().map(|s| s.2).collect::<Vec<_>>(), [3100, 3231]);
        assert!(xml.contains("statusMessage=\"The request has not been processed.\""));
        assert!(file.customer_named("Ngā Hau Joinery").is_none());

        let xml = file.process(&doc("continueOnError", body), NOW).unwrap();
        assert_eq!(statuses(&xml).iter().map(|s| s.2).collect::<Vec<_>>(), [3100, 0]);
        assert!(file.customer_named("Ngā Hau Joinery").is_some());
        assert_eq!(file.stats().requests_not_processed, 1);
    }

    #[test]
    fn invoices_reference_customers_and_items_by_name_or_id() {
        let mut file = file();
        let before = file.customer_named("Zoë Dvořák").unwrap().balance_cents;
        let add = doc(
            "stopOnError",
            "<InvoiceAddRq requestID=\"inv\"><InvoiceAdd><CustomerRef><FullName>Zoë Dvořák</FullName></CustomerRef>\
             <RefNumber>A-1</RefNumber><Memo>Crème brûlée</Memo>\
             <InvoiceLineAdd><ItemRef><FullName>Consulting</FullName></ItemRef><Quantity>2</Quantity><Rate>150</Rate></InvoiceLineAdd>\
             <InvoiceLineAdd><ItemRef><FullName>Freight</FullName></ItemRef><Amount>12.5</Amount></InvoiceLineAdd>\
             </InvoiceAdd></InvoiceAddRq>",
        );
        let xml = file.process(&add, NOW).unwrap();
        assert_eq!(statuses(&xml)[0].2, 0, "{xml}");
        assert!(xml.contains("<Subtotal>312.50</Subtotal>"), "{xml}");
        assert!(xml.contains("<Memo>Crème brûlée</Memo>"));
        assert_eq!(file.customer_named("Zoë Dvořák").unwrap().balance_cents, before + 31_250);

        // The fixture names a customer this file does not have.
        let xml = file.process(&fixture("invoice_add_rq.xml"), NOW).unwrap();
        assert_eq!(statuses(&xml)[0].2, 3140);
        assert!(
            xml.contains("invalid reference to QuickBooks Customer &quot;F560000-1197683156&quot;"),
            "{xml}"
        );
        assert_eq!(file.stats().invoices_added, 1);

        let query = doc(
            "stopOnError",
            "<InvoiceQueryRq><RefNumber>A-1</RefNumber><IncludeLineItems>true</IncludeLineItems></InvoiceQueryRq>",
        );
        let xml = file.process(&query, NOW).unwrap();
        assert_eq!(xml.matches("<InvoiceLineRet>").count(), 2);
    }

    #[test]
    fn message_set_recovery_returns_the_saved_response_without_applying_again() {
        let mut file = file();
        let add = |set: &str| {
            format!(
                "<?qbxml version=\"13.0\"?><QBXML><QBXMLMsgsRq onError=\"stopOnError\" {set}><CustomerAddRq requestID=\"r1\"><CustomerAdd><Name>Åsa Nilsson</Name></CustomerAdd></CustomerAddRq></QBXMLMsgsRq></QBXML>"
            )
        };
        let first = file.process(&add("newMessageSetID=\"set-1\""), NOW).unwrap();
        let parsed = ResponseDocument::parse(&first).unwrap();
        assert_eq!(parsed.message_set().new_message_set_id.as_deref(), Some("set-1"));
        assert_eq!(parsed.message_set().status_code, Some(StatusCode(0)));
        assert_eq!(parsed.responses()[0].status_code(), StatusCode::OK);

        let again = file.process(&add("oldMessageSetID=\"set-1\" newMessageSetID=\"set-1\""), NOW).unwrap();
        assert_eq!(again, first);
        assert_eq!(file.stats().customers_added, 1);
        assert_eq!(file.stats().message_sets_replayed, 1);

        // Nothing saved under that id: processed, and said so.
        let unknown = file.process(&add("oldMessageSetID=\"set-0\""), NOW).unwrap();
        let parsed = ResponseDocument::parse(&unknown).unwrap();
        assert_eq!(parsed.message_set().status_code, Some(StatusCode::NO_CLEARED_STATE));
        assert_eq!(parsed.responses()[0].status_code(), StatusCode(3100));

        file.process(&add("oldMessageSetID=\"ClearAllMessageSets\""), NOW).unwrap();
        assert!(file.saved_message_set("set-1").is_none());
    }

    #[test]
    fn documents_the_sdk_cannot_read_fail_whole_with_the_parse_hresult() {
        let mut file = file();
        let bad = [
            "<?qbxml version=\"6.1\"?><QBXML><QBXMLMsgsRq onError=\"stopOnError\"><CustomerQueryRq>"
                .to_owned(),
            "not xml".to_owned(),
            doc("rollbackOnError", "<HostQueryRq/>"),
            doc(
                "stopOnError",
                "<HostQueryRq/><CustomerAddRq><CustomerAdd><FirstName>x</FirstName></CustomerAdd></CustomerAddRq>",
            ),
            fixture("customer_add_rq.xml").replace(
                "<CustomerAddRq requestID=\"15\">",
                "<CustomerAddRq requestID=\"15\" iterator=\"Start\">",
            ),
            fixture("customer_query_iterator_rq.xml").replace("version=\"5.0\"", "version=\"4.1\""),
        ];
        for xml in bad {
            let err = file.process(&xml, NOW).unwrap_err();
            assert_eq!(err.code, "0x80040400", "{xml}");
            assert_eq!(err.message, PARSE_ERROR_MESSAGE);
        }
        assert_eq!(file.stats().parse_errors, 6);
        assert_eq!(file.stats().requests_processed, 0);
    }

    #[test]
    fn the_iterator_fixture_is_answered_like_the_recorded_response() {
        let mut file = file();
        let xml = file.process(&fixture("customer_query_iterator_rq.xml"), NOW).unwrap();
        let parsed = ResponseDocument::parse(&xml).unwrap();
        let rs = &parsed.responses()[0];
        assert_eq!(rs.request_id(), Some("1"));
        assert_eq!(rs.record_count(), 5);
        assert_eq!(rs.iterator_remaining_count(), Some(30));
    }
}
