//! qbXML for the Reckon Web Connector: the hub's view of the documents it passes between apps
//! and desktop company files.
//!
//! This crate owns the qbXML envelope (`<?qbxml version?>`, `onError`, message-set ids),
//! validation of app-submitted request documents, attribute rewriting that leaves every other
//! byte alone (the hub sets only `requestID`, iterator and message-set attributes), the few
//! requests the hub writes itself, a streaming reader for response documents that keeps each
//! response's raw XML, and what status codes mean. It is pure: no I/O, no async, no unsafe, and
//! every input gives a `Result`, never a panic, so it can be fuzzed.
//!
//! The pipeline for one job is: app text → [`RequestDocument::parse`] → [`Rewrite`] →
//! qbXML sent to the connector → [`ResponseDocument::parse`] → [`Status`] decides what next.
//!
//! # Layout
//!
//! - `envelope`: [`QbxmlVersion`], [`OnError`], [`RequestId`], [`MessageSetId`].
//! - `request`: [`RequestDocument`] and its [`RequestElement`]s, [`RequestKind`],
//!   [`IteratorMode`].
//! - `rewrite`: [`Rewrite`], splicing attributes into the original text.
//! - `builder`: [`RequestBuilder`] for host/company probes and iterator pages.
//! - `response`: [`ResponseDocument`], the streaming [`ResponseReader`], [`Response`],
//!   [`Record`].
//! - `status`: [`StatusCode`], [`StatusClass`], [`Severity`], [`Status`].
//! - `error`: [`ParseError`] with its [`Position`].
//! - `scan`: the shared layer over quick-xml (private).
//! - [`bench_support`]: a bare quick-xml loop to measure the parser against.

pub mod bench_support;
mod builder;
mod envelope;
mod error;
mod request;
mod response;
mod rewrite;
mod scan;
mod status;

pub use builder::RequestBuilder;
pub use envelope::{InvalidId, InvalidVersion, MessageSetId, OnError, QbxmlVersion, Region, RequestId};
pub use error::{ParseError, ParseErrorKind, Position};
pub use request::{IteratorMode, RequestDocument, RequestElement, RequestKind};
pub use response::{
    Record, RecordId, Records, Response, ResponseDocument, ResponseMessageSet, ResponseReader,
    list_id_or_txn_id,
};
pub use rewrite::{IteratorChange, Rewrite, RewriteError};
pub use status::{Severity, Status, StatusClass, StatusCode};
