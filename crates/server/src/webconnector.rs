//! The Reckon Web Connector's "web application": `GET /webconnector/reckon` hands out qbXML work
//! and `POST /webconnector/reckon/result?id=…&exchange=…` (the `postURL`) takes the answer.
//!
//! One exchange carries one job (one message set) at a time. The hub stamps each request with a
//! `requestID` of its own and accepts an answer only at the exchange's `postURL` and only if
//! every response carries one of those ids. What happens next:
//!
//! - **Iterators.** A job may hold one query with `iterator="Start"`. While pages remain, the
//!   answer asks for an immediate repeat (`repeatCommunication: true`) with a `state` naming the
//!   continuation; the repeat GET gets `iterator="Continue"`. The RWC keeps an iterator only
//!   inside one SDK session (an immediate repeat, same connection and company file, within
//!   30 s), so a continuation that arrives any other way, or a 3391 "iterator not valid", starts
//!   the query over from `Start`, discarding the pages so far: a done job never holds missing or
//!   duplicated records. After `webconnector.max_restarts` restarts the job fails.
//! - **Lost answers.** A GET from a connection whose previous exchange got no (accepted) POST
//!   hands the same work out again. A write job (Add, Mod, …) carries a `newMessageSetID`; handed
//!   out again it also carries `oldMessageSetID` with the same value, so Reckon Accounts answers
//!   with the stored response of a set it already applied instead of applying it twice (qbXML
//!   error recovery).
//! - **Connector errors.** An `errorCode`/`errorMsg` puts the job back in the queue, counts an
//!   attempt and gives the connection a diagnosis; after `webconnector.max_attempts` the job fails
//!   with an alert (`job.failed`).
//! - **Bad input.** Malformed JSON or qbXML, or responses that do not match the exchange, are
//!   refused with 400 and leave the job and its exchange as they were.
//!
//! Everything lives in the database, so a GET served by one hub instance and its POST by another
//! work alike.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ledgerlink_core::{ConnectionStatus, Diagnosis, Timestamp};
use ledgerlink_qbxml::{
    IteratorChange, IteratorMode, MessageSetId, RequestDocument, RequestId, ResponseDocument, StatusClass,
};
use ledgerlink_store::{Connection, ConnectionChange, Event, Guard, Job};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::AppState;

pub const ENDPOINT_PATH: &str = "/webconnector/reckon";
pub const RESULT_PATH: &str = "/webconnector/reckon/result";

/// How long the RWC keeps an SDK session (and its iterators) open after the last qbXML.
pub const ITERATOR_WINDOW: Duration = Duration::from_secs(30);

/// What the GET answers: the seed's `{"postURL","qbXMLRequest","tryAgainIn"}`.
#[derive(Debug, Serialize)]
pub struct Handout {
    #[serde(rename = "postURL")]
    pub post_url: String,
    #[serde(rename = "qbXMLRequest")]
    pub qbxml_request: String,
    #[serde(rename = "tryAgainIn")]
    pub try_again_in: i64,
}

/// The POST body: `{"qbXMLResponse","connectorId","errorCode","errorMsg"}`.
#[derive(Debug, Deserialize)]
pub struct Callback {
    #[serde(rename = "qbXMLResponse", default)]
    pub qbxml_response: String,
    #[serde(rename = "connectorId", default)]
    pub connector_id: String,
    #[serde(rename = "errorCode", default)]
    pub error_code: String,
    #[serde(rename = "errorMsg", default)]
    pub error_msg: String,
}

/// What the POST answers: `{"repeatCommunication","state"}`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct CallbackAnswer {
    #[serde(rename = "repeatCommunication")]
    pub repeat_communication: bool,
    pub state: String,
}

impl CallbackAnswer {
    fn done() -> Self {
        Self { repeat_communication: false, state: String::new() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// Refused without touching anything: the message says what was wrong.
    #[error("{0}")]
    BadRequest(String),
    /// No open exchange has this token (answered already, or never handed out).
    #[error("{0}")]
    UnknownExchange(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<ledgerlink_store::StoreError> for ExchangeError {
    fn from(error: ledgerlink_store::StoreError) -> Self {
        Self::Internal(error.into())
    }
}

/// A URL-safe random token: exchange tokens and iterator `state`s.
fn token() -> String {
    let mut bytes = [0u8; 18];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn endpoint_url(state: &AppState) -> String {
    format!("{}{ENDPOINT_PATH}", state.config.public_base())
}

fn post_url(state: &AppState, connection_id: &str, exchange: &str) -> String {
    format!("{}{RESULT_PATH}?id={connection_id}&exchange={exchange}", state.config.public_base())
}

fn request_id(job: &Job, index: usize) -> RequestId {
    RequestId::new(format!("{}-{index}", job.id)).expect("job ids are short and plain")
}

/// The message set id of a write job: 23 characters at most, from the job id's random end.
fn message_set_id(job: &Job) -> MessageSetId {
    let tail: String = job.id.chars().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
    MessageSetId::new(format!("ll-{tail}")).expect("a short plain id")
}

/// Checks an app's qbXML before it is queued: it must parse, and an iterator query must be the
/// document's only request (the hub continues it page by page).
pub fn validate(qbxml: &str) -> Result<(), String> {
    let doc =
        RequestDocument::parse(qbxml).map_err(|e| format!("`qbxml` is not a valid qbXML request: {e}"))?;
    let iterators = doc.requests().iter().filter(|r| r.iterator().is_some()).count();
    if iterators > 0 && doc.requests().len() > 1 {
        return Err("`qbxml`: a query with an iterator must be the only request of its document".into());
    }
    if let Some(r) = doc.requests().iter().find(|r| r.iterator().is_some_and(|m| m != IteratorMode::Start)) {
        return Err(format!(
            "`qbxml`: {} must use iterator=\"Start\"; the hub continues the iterator itself",
            r.name()
        ));
    }
    if let Some(id) = doc.new_message_set_id()
        && let Err(e) = MessageSetId::new(id)
    {
        return Err(format!("`qbxml`: newMessageSetID: {e}"));
    }
    if doc.old_message_set_id().is_some() {
        return Err("`qbxml`: oldMessageSetID is set by the hub when it re-sends a write".into());
    }
    Ok(())
}

/// Answers a GET: the next piece of work for this connection, or an empty `qbXMLRequest`.
pub async fn next_work(state: &AppState, conn: &Connection, repeat_state: &str) -> anyhow::Result<Handout> {
    let now = state.clock.now();
    let empty = Handout {
        post_url: post_url(state, &conn.id, "none"),
        qbxml_request: String::new(),
        try_again_in: 0,
    };
    if conn.status == ConnectionStatus::Paused.as_str() {
        return Ok(empty);
    }
    if conn.status == ConnectionStatus::Pending.as_str() {
        mark_connected(state, conn, now).await?;
    }
    let limits = HandOutLimits {
        max_attempts: state.config.webconnector.max_attempts as i64,
        max_restarts: state.config.webconnector.max_restarts as i64,
    };
    // Each round either hands a job out or finishes one (failed); a few rounds cover a queue
    // head of failing jobs, and the bound keeps a job another instance holds from spinning here.
    for _ in 0..16 {
        let stored = match state.store.active_job(&conn.id).await? {
            Some(job) => {
                let kind = if job.continue_state.as_deref().is_some_and(|s| s == repeat_state)
                    && job.updated_at.saturating_add(ITERATOR_WINDOW) >= now
                {
                    Kind::Continue
                } else if job.continue_state.is_some() {
                    Kind::Restart
                } else {
                    Kind::Again
                };
                let previous_exchange = job.exchange.clone();
                let (job, events) = prepare(conn, job, kind, limits, now);
                let stored = match (&previous_exchange, job.status.as_str()) {
                    (Some(exchange), "failed") => state.store.finish_job(&job, exchange, &events).await?,
                    _ => {
                        let stored = state.store.update_job(&job, previous_exchange.as_deref()).await?;
                        if stored && !events.is_empty() {
                            state.store.insert_events(&events).await?;
                        }
                        stored
                    }
                };
                if !stored {
                    // Another GET of this connection got there first (two connectors, or a retry).
                    return Ok(empty);
                }
                job
            }
            None => {
                let take = |job: Job| prepare(conn, job, Kind::First, limits, now);
                match state.store.hand_out_next(&conn.id, &take).await? {
                    Some(job) => job,
                    None => return Ok(empty),
                }
            }
        };
        if stored.status == "failed" {
            state.metrics.inc("ledgerlink_jobs_total", &[("outcome", "failed")]);
            tracing::warn!(connection_id = %conn.id, job_id = %stored.id, "qbXML job failed");
            continue;
        }
        let (Some(exchange), Some(qbxml)) = (stored.exchange, stored.exchange_request) else {
            anyhow::bail!("job {} was stored in progress without its exchange", stored.id);
        };
        tracing::info!(
            connection_id = %conn.id, job_id = %stored.id,
            exchange = stored.exchange_kind.as_deref().unwrap_or(""), "handed out qbXML"
        );
        return Ok(Handout {
            post_url: post_url(state, &conn.id, &exchange),
            qbxml_request: qbxml,
            try_again_in: 0,
        });
    }
    Ok(empty)
}

#[derive(Clone, Copy)]
struct HandOutLimits {
    max_attempts: i64,
    max_restarts: i64,
}

/// What to store when `job` goes out as `kind`: in progress with a new exchange and the qbXML to
/// send; or failed, with its `job.failed` event, when it may not go out again (attempts or
/// restarts spent) or its document no longer renders.
fn prepare(
    conn: &Connection,
    mut job: Job,
    kind: Kind,
    limits: HandOutLimits,
    now: Timestamp,
) -> (Job, Vec<Event>) {
    if kind == Kind::Restart {
        job.restarts += 1;
        job.pages = "[]".into();
        job.iterator_id = None;
        job.continue_state = None;
        if job.restarts > limits.max_restarts {
            let diagnosis =
                Diagnosis::qbxml_status(3391, "the iterator kept becoming invalid before the last page");
            return failed(conn, job, &diagnosis, now);
        }
    }
    if kind != Kind::Continue {
        job.attempts += 1;
        if job.attempts > limits.max_attempts {
            let diagnosis =
                job.diagnosis.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_else(|| {
                    Diagnosis::webconnector_error("", "the connector never answered this request")
                });
            return failed(conn, job, &diagnosis, now);
        }
    }
    if job.message_set_id.is_none() {
        // A write's message set id is fixed before its first hand-out (the app's own, if it set
        // one), so a re-send can ask about exactly that set.
        job.message_set_id = write_message_set_id(&job);
    }
    let qbxml = match render(&job, kind) {
        Ok(qbxml) => qbxml,
        Err(message) => {
            let diagnosis = Diagnosis::lookup(
                ledgerlink_core::Provider::Reckon,
                None,
                Some("qbxml_error"),
                Some(message),
            );
            return failed(conn, job, &diagnosis, now);
        }
    };
    job.status = "in_progress".into();
    job.exchange = Some(token());
    job.exchange_kind = Some(kind.as_str().into());
    job.exchange_request = Some(qbxml);
    job.exchange_sent_at = Some(now);
    if kind != Kind::Continue {
        job.continue_state = None;
    }
    job.updated_at = now;
    (job, Vec::new())
}

/// The job failed for good, with its `job.failed` event.
fn failed(conn: &Connection, mut job: Job, diagnosis: &Diagnosis, now: Timestamp) -> (Job, Vec<Event>) {
    job.status = "failed".into();
    job.diagnosis = serde_json::to_string(diagnosis).ok();
    job.pages = "[]".into();
    job.iterator_id = None;
    job.continue_state = None;
    clear_exchange(&mut job, now);
    job.finished_at = Some(now);
    let event = job_event(conn, &job, "job.failed", Some(diagnosis), now);
    (job, vec![event])
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    First,
    Again,
    Continue,
    Restart,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::First => "first",
            Kind::Again => "again",
            Kind::Continue => "continue",
            Kind::Restart => "restart",
        }
    }
}

/// The message set id a write job goes out with: the app's `newMessageSetID`, or one made from
/// the job id. `None` for read-only jobs (and documents that no longer parse).
fn write_message_set_id(job: &Job) -> Option<String> {
    let doc = RequestDocument::parse(&job.request).ok()?;
    if doc.is_read_only() {
        return None;
    }
    Some(doc.new_message_set_id().map_or_else(|| message_set_id(job).as_str().to_owned(), str::to_owned))
}

/// The qbXML to hand out: the app's document with the hub's requestIDs, and the iterator and
/// message-set attributes this exchange needs.
fn render(job: &Job, kind: Kind) -> Result<String, String> {
    let doc = RequestDocument::parse(&job.request).map_err(|e| e.to_string())?;
    let mut rewrite = doc.rewrite();
    for (index, request) in doc.requests().iter().enumerate() {
        rewrite.set_request_id(index, &request_id(job, index)).map_err(|e| e.to_string())?;
        if request.iterator().is_some() {
            let change = match (kind, job.iterator_id.as_deref()) {
                (Kind::Continue, Some(id)) => IteratorChange::Continue(id),
                _ => IteratorChange::Start,
            };
            rewrite.set_iterator(index, change).map_err(|e| e.to_string())?;
        }
    }
    if let Some(id) = &job.message_set_id {
        let id = MessageSetId::new(id.clone()).map_err(|e| e.to_string())?;
        rewrite.set_new_message_set_id(&id);
        if kind == Kind::Again {
            rewrite.set_old_message_set_id(&id);
        }
    }
    Ok(rewrite.finish())
}

/// Answers a POST to `postURL`.
pub async fn receive(
    state: &AppState,
    conn: &Connection,
    exchange: &str,
    callback: Callback,
) -> Result<CallbackAnswer, ExchangeError> {
    let now = state.clock.now();
    let Some(mut job) = state.store.job_by_exchange(exchange).await? else {
        return Err(ExchangeError::UnknownExchange(
            "no open exchange has this postURL: it was answered already or never handed out".into(),
        ));
    };
    if job.connection_id != conn.id {
        return Err(ExchangeError::UnknownExchange("this postURL belongs to another connection".into()));
    }
    if !callback.connector_id.is_empty() && callback.connector_id != conn.id {
        return Err(ExchangeError::BadRequest(format!(
            "connectorId {:?} is not this connection ({})",
            callback.connector_id, conn.id
        )));
    }
    if !callback.error_code.trim().is_empty() || !callback.error_msg.trim().is_empty() {
        let diagnosis = Diagnosis::webconnector_error(callback.error_code.trim(), callback.error_msg.trim());
        set_connection_error(state, conn, &diagnosis, now).await?;
        job.diagnosis = Some(serde_json::to_string(&diagnosis).map_err(anyhow::Error::from)?);
        tracing::warn!(connection_id = %conn.id, job_id = %job.id, error_code = %callback.error_code, error_msg = %callback.error_msg, "the web connector reported an error");
        if job.attempts >= state.config.webconnector.max_attempts as i64 {
            fail(state, conn, &mut job, diagnosis, Some(exchange), now).await?;
        } else {
            requeue(&mut job, now);
            if !state.store.update_job(&job, Some(exchange)).await? {
                return Err(ExchangeError::UnknownExchange("this exchange was answered meanwhile".into()));
            }
        }
        return Ok(CallbackAnswer::done());
    }
    let doc = ResponseDocument::parse(&callback.qbxml_response).map_err(|e| {
        ExchangeError::BadRequest(format!("`qbXMLResponse` is not a valid qbXML response: {e}"))
    })?;
    let sent = RequestDocument::parse(job.exchange_request.as_deref().unwrap_or_default())
        .map_err(|e| anyhow::anyhow!("the stored exchange does not parse: {e}"))?;
    let expected: Vec<String> =
        sent.requests().iter().filter_map(|r| r.request_id().map(str::to_owned)).collect();
    for response in doc.responses() {
        match response.request_id() {
            Some(id) if expected.iter().any(|e| e == id) => {}
            other => {
                return Err(ExchangeError::BadRequest(format!(
                    "{} has requestID {:?}, which this exchange did not send (expected one of {})",
                    response.name(),
                    other.unwrap_or(""),
                    expected.join(", ")
                )));
            }
        }
    }
    if doc.responses().is_empty() {
        return Err(ExchangeError::BadRequest(
            "`qbXMLResponse` holds no response to the requests sent".into(),
        ));
    }
    let raw = callback.qbxml_response.clone();
    let iterating = sent.requests().iter().any(|r| r.iterator().is_some());
    let first_error = doc.responses().iter().find(|r| r.status_code().class() == StatusClass::Error);
    if let Some(error) = first_error {
        let code = error.status_code();
        let diagnosis = Diagnosis::qbxml_status(i64::from(code.0), error.status_message().unwrap_or(""));
        if iterating && code.is_iterator_invalid() {
            // Start over: the pages so far are dropped, and the repeat GET begins again.
            job.restarts += 1;
            job.pages = "[]".into();
            job.iterator_id = None;
            if job.restarts > state.config.webconnector.max_restarts as i64 {
                fail(state, conn, &mut job, diagnosis, Some(exchange), now).await?;
                return Ok(repeat_if_more(state, conn).await?);
            }
            // In progress with no exchange: the next GET hands the query out from `Start`.
            job.continue_state = None;
            clear_exchange(&mut job, now);
            job.attempts -= 1; // the restart is not the connector's failure
            if !state.store.update_job(&job, Some(exchange)).await? {
                return Err(ExchangeError::UnknownExchange("this exchange was answered meanwhile".into()));
            }
            tracing::info!(job_id = %job.id, restarts = job.restarts, "the iterator became invalid; starting the query over");
            return Ok(CallbackAnswer { repeat_communication: true, state: String::new() });
        }
        if code.is_retryable() && job.attempts < state.config.webconnector.max_attempts as i64 {
            job.diagnosis = Some(serde_json::to_string(&diagnosis).map_err(anyhow::Error::from)?);
            requeue(&mut job, now);
            if !state.store.update_job(&job, Some(exchange)).await? {
                return Err(ExchangeError::UnknownExchange("this exchange was answered meanwhile".into()));
            }
            return Ok(CallbackAnswer::done());
        }
        job.responses = push_json(&job.pages, &raw);
        job.pages = "[]".into();
        fail(state, conn, &mut job, diagnosis, Some(exchange), now).await?;
        return Ok(repeat_if_more(state, conn).await?);
    }
    let more = iterating && doc.responses().iter().any(|r| r.has_more_pages());
    if more {
        let iterator_id = doc.responses().iter().find_map(|r| r.iterator_id().map(str::to_owned));
        job.pages = push_json(&job.pages, &raw);
        job.iterator_id = iterator_id;
        let next = token();
        job.continue_state = Some(next.clone());
        clear_exchange(&mut job, now);
        if !state.store.update_job(&job, Some(exchange)).await? {
            return Err(ExchangeError::UnknownExchange("this exchange was answered meanwhile".into()));
        }
        return Ok(CallbackAnswer { repeat_communication: true, state: next });
    }
    job.responses = push_json(&job.pages, &raw);
    job.pages = "[]".into();
    job.status = "done".into();
    job.diagnosis = None;
    job.iterator_id = None;
    job.continue_state = None;
    clear_exchange(&mut job, now);
    job.finished_at = Some(now);
    let event = job_event(conn, &job, "job.completed", None, now);
    if !state.store.finish_job(&job, exchange, &[event]).await? {
        return Err(ExchangeError::UnknownExchange("this exchange was answered meanwhile".into()));
    }
    state.metrics.inc("ledgerlink_jobs_total", &[("outcome", "done")]);
    if conn.last_error.is_some() {
        clear_connection_error(state, conn, now).await?;
    }
    tracing::info!(connection_id = %conn.id, job_id = %job.id, "qbXML job done");
    Ok(repeat_if_more(state, conn).await?)
}

/// More queued work: ask for an immediate repeat, so the queue drains in one scheduled cycle.
async fn repeat_if_more(state: &AppState, conn: &Connection) -> anyhow::Result<CallbackAnswer> {
    let queued = state.store.queued_jobs(&conn.id).await?;
    Ok(CallbackAnswer { repeat_communication: queued > 0, state: String::new() })
}

fn push_json(array: &str, item: &str) -> String {
    let mut items: Vec<String> = serde_json::from_str(array).unwrap_or_default();
    items.push(item.to_owned());
    serde_json::to_string(&items).expect("strings serialise")
}

fn clear_exchange(job: &mut Job, now: Timestamp) {
    job.exchange = None;
    job.exchange_kind = None;
    job.exchange_request = None;
    job.exchange_sent_at = None;
    job.updated_at = now;
}

/// Back in the queue; an iterator run starts over when it is handed out again.
fn requeue(job: &mut Job, now: Timestamp) {
    job.status = "queued".into();
    job.pages = "[]".into();
    job.iterator_id = None;
    job.continue_state = None;
    clear_exchange(job, now);
}

async fn fail(
    state: &AppState,
    conn: &Connection,
    job: &mut Job,
    diagnosis: Diagnosis,
    expected_exchange: Option<&str>,
    now: Timestamp,
) -> anyhow::Result<()> {
    let (done, events) = failed(conn, job.clone(), &diagnosis, now);
    *job = done;
    let stored = match expected_exchange {
        Some(exchange) => state.store.finish_job(job, exchange, &events).await?,
        None => {
            // Not handed out at the moment: guard on "no exchange".
            state.store.update_job(job, None).await? && {
                state.store.insert_events(&events).await?;
                true
            }
        }
    };
    if stored {
        state.metrics.inc("ledgerlink_jobs_total", &[("outcome", "failed")]);
        tracing::warn!(connection_id = %conn.id, job_id = %job.id, category = %diagnosis.category, "qbXML job failed");
    }
    Ok(())
}

fn job_event(
    conn: &Connection,
    job: &Job,
    kind: &str,
    diagnosis: Option<&Diagnosis>,
    now: Timestamp,
) -> Event {
    let detail = json!({"job": {"id": job.id, "status": job.status, "attempts": job.attempts}, "diagnosis": diagnosis});
    Event::of(conn, kind, &conn.status, None, Some(detail.to_string()), now)
}

async fn mark_connected(state: &AppState, conn: &Connection, now: Timestamp) -> anyhow::Result<()> {
    let change = ConnectionChange {
        status: ConnectionStatus::Connected.as_str().into(),
        ..ConnectionChange::keep(conn, now)
    };
    let event =
        Event::of(conn, "connection.connected", ConnectionStatus::Connected.as_str(), None, None, now);
    state.store.update_connection(&conn.id, Guard::Any, &change, &[event]).await?;
    Ok(())
}

async fn set_connection_error(
    state: &AppState,
    conn: &Connection,
    diagnosis: &Diagnosis,
    now: Timestamp,
) -> anyhow::Result<()> {
    let change = ConnectionChange {
        last_error: Some(Some(serde_json::to_string(diagnosis)?)),
        ..ConnectionChange::keep(conn, now)
    };
    state.store.update_connection(&conn.id, Guard::Any, &change, &[]).await?;
    Ok(())
}

async fn clear_connection_error(state: &AppState, conn: &Connection, now: Timestamp) -> anyhow::Result<()> {
    let change = ConnectionChange { last_error: Some(None), ..ConnectionChange::keep(conn, now) };
    state.store.update_connection(&conn.id, Guard::Any, &change, &[]).await?;
    Ok(())
}
