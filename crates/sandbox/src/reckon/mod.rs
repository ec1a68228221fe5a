//! The desktop side of the Reckon Web Connector (RWC), simulated: a [`Client`] that polls a
//! web application exactly as Reckon documents the RWC, and a fake Reckon Accounts
//! [`CompanyFile`] that answers the qbXML it is handed the way the desktop SDK does. The hub's
//! web connector endpoints are tested against it; `ledgerlink simulate reckon` runs it
//! ([`run_cli`]).
//!
//! # Layout
//!
//! - `wire`: the JSON of the two calls ([`InitiateResponse`], [`CallbackRequest`],
//!   [`CallbackResponse`]).
//! - `client`: [`Client`] and its [`ClientConfig`], one communication cycle
//!   ([`Client::run_cycle`] → [`CycleReport`]) or the schedule loop ([`Client::run`]), and the
//!   runtime [`ClientFaults`].
//! - `company`: [`CompanyFile`]: SDK sessions, request processing, `onError`, iterators,
//!   message-set error recovery, [`CompanyStats`].
//! - `records`: customers, items and invoices, generated from a seed ([`CompanyOptions`]), and
//!   how each is written.
//! - `xml`: a small element tree for reading requests and a writer for responses (private).
//! - `cli`: [`CliOptions`] and [`run_cli`].
//!
//! # The protocol, as the client plays it
//!
//! `GET {endpoint}?id={connection id}&state={state}` (plain concatenation, Basic Auth,
//! `Content-Type`/`Accept: application/json`; `state` blank on scheduled and `tryAgainIn`
//! cycles) → `{"postURL", "qbXMLRequest", "tryAgainIn"}`. Non-empty qbXML is processed and
//! `POST {postURL}` (Basic Auth) sends `{"qbXMLResponse", "connectorId", "errorCode",
//! "errorMsg"}` → `{"repeatCommunication", "state"}`. A repeat is made at once unless the next
//! scheduled event (cycle start + schedule) is ≤ 60 s away. `tryAgainIn` (minutes, counted from
//! receipt) counts only on a GET without qbXML, when non-zero and not landing within 60 s of
//! the next scheduled event; the schedule then restarts from that retry. HTTP 401 (or any
//! other failure) ends the cycle with a [`ClientError`], logged; the schedule carries on.
//!
//! # What the company file answers
//!
//! A document the SDK cannot read — not well-formed, not qbXML, `rollbackOnError` (which the
//! desktop SDK refuses), a `CustomerAddRq` without `CustomerAdd/Name`, an `InvoiceAddRq`
//! without `CustomerRef`, an iterator in a qbXML version before 5.0 — fails whole, nothing
//! applied, with HRESULT [`HRESULT_PARSE_ERROR`] (`0x80040400`) and [`PARSE_ERROR_MESSAGE`];
//! the client posts them as `errorCode`/`errorMsg` with an empty `qbXMLResponse`, as the RWC
//! reports a Windows exception. Otherwise every request gets a response with its `requestID`:
//!
//! | situation | statusCode | severity | statusMessage |
//! | --- | --- | --- | --- |
//! | done | 0 | Info | `Status OK` |
//! | a query matched nothing | 1 | Info | `A query request did not find a matching object in QuickBooks` |
//! | `ListID`/`FullName`/`TxnID`/`RefNumber` asked for is absent | 500 | Warn | `The query request has not been fully completed. There was a required element ("X") that could not be found in QuickBooks.` (the others are returned) |
//! | duplicate customer name (any case, active or not) | 3100 | Error | `The name "X" of the list element is already in use.` |
//! | customer name over 41 characters | 3070 | Error | `The string "X" in the field "Name" is too long.` |
//! | invoice for an unknown customer / item | 3140 | Error | `There is an invalid reference to QuickBooks Customer "X" in the Invoice. QuickBooks error message: Invalid argument.  The specified record does not exist in the list.` (`Item "X" in the Invoice line`) |
//! | unknown, used-up or other-session `iteratorID` | 3391 | Error | `The iterator "X" is not valid: it does not exist in this session or has expired.` |
//! | after an error under `stopOnError` | 3231 | Error | `The request has not been processed.` |
//! | a write this simulator does not implement | 1030 | Error | `This request is not supported by this implementation.` |
//!
//! Implemented: `HostQueryRq`, `CompanyQueryRq`, `CustomerQueryRq` and `ItemQueryRq`
//! (`ListID`, `FullName`, `MaxReturned`, `ActiveStatus`, `NameFilter`, modified dates; name
//! order), `InvoiceQueryRq` (`TxnID`, `RefNumber`, `MaxReturned`, `EntityFilter`,
//! `TxnDateRangeFilter`, `ModifiedDateRangeFilter`, `PaidStatus`, `IncludeLineItems`),
//! `CustomerAddRq`, `InvoiceAddRq`. Any other query answers 1 (the file keeps nothing in that
//! list). Queries take `iterator="Start"` (→ `iteratorRemainingCount` and `iteratorID`),
//! `"Continue"` (the continuing request's `MaxReturned` sizes the page; an iterator is gone
//! once its remaining count reaches 0) and `"Stop"`.
//!
//! Error recovery: with `newMessageSetID` the response document (carrying `newMessageSetID`
//! and `messageSetStatusCode="0"`) is saved; a later document whose `oldMessageSetID` names a
//! saved set gets that saved response back verbatim and nothing in it is applied. An
//! `oldMessageSetID` with nothing saved is processed normally, answered with
//! `messageSetStatusCode="600"`; `ClearAllMessageSets` forgets every saved set first.

mod cli;
mod client;
mod company;
mod records;
mod wire;
mod xml;

pub use cli::{CliOptions, run_cli};
pub use client::{
    Client, ClientConfig, ClientError, ClientFaults, CycleEnd, CycleReport, FaultState, TryAgainIn,
};
pub use company::{
    CompanyFile, CompanyStats, HRESULT_PARSE_ERROR, PARSE_ERROR_MESSAGE, SdkError, SessionId,
    SharedCompanyFile,
};
pub use records::{CompanyInfo, CompanyOptions, Customer, Invoice, InvoiceLine, Item, ItemKind};
pub use wire::{CallbackRequest, CallbackResponse, InitiateResponse};
