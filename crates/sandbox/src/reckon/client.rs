//! The desktop side of the Reckon Web Connector: one connection's communication cycles.
//!
//! A cycle starts with a GET whose `state` is blank. Each GET that carries qbXML is processed
//! against the company file and answered by a POST to `postURL`; a POST answered with
//! `repeatCommunication: true` is followed at once by another GET carrying the returned
//! `state`, unless the next scheduled event is 60 seconds or less away. A GET without qbXML
//! ends the cycle, and its `tryAgainIn` may move the next communication.
//!
//! The SDK session (and so every qbXML iterator) survives from one exchange to the next only
//! when the qbXML arrives on a repeat GET of the same connection within the iterator window
//! (30 seconds) of the previous qbXML's processing finishing, on the same company file, and
//! nobody opened another session on that file in between.
//!
//! Time comes from the injected [`Clock`]: windows and schedule decisions read it, so a
//! `ManualClock` moved by a test (or by a fake web application while it answers) walks through
//! them without sleeping. Only [`Client::run`] and the `post_delay` fault wait in real time.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ledgerlink_core::{Clock, SecretString, SystemClock, Timestamp};
use ledgerlink_qbxml::{IteratorMode, RequestDocument};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::company::{SessionId, SharedCompanyFile};
use super::wire::{CallbackRequest, CallbackResponse, InitiateResponse};

/// The settings of one RWC connection.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The web application's "initiate communication" URL; the client appends
    /// `?id={connection_id}&state={state}` by plain concatenation, as the RWC does.
    pub endpoint: String,
    /// The connection id, sent as `id` and as `connectorId`.
    pub connection_id: String,
    /// Basic Auth username sent on every GET and POST.
    pub username: String,
    /// Basic Auth password.
    pub password: SecretString,
    /// Time between scheduled communications (whole minutes in the real RWC).
    pub schedule: Duration,
    /// How long after processing qbXML the SDK session stays usable for a repeat GET
    /// (30 seconds in the RWC).
    pub iterator_window: Duration,
    /// A repeat or `tryAgainIn` that falls this close to the next scheduled event is ignored
    /// (60 seconds in the RWC).
    pub schedule_margin: Duration,
    /// The company file the connection is set up with (shown in logs).
    pub company_file_path: String,
    /// Per-request HTTP timeout (100 seconds, the .NET default).
    pub http_timeout: Duration,
    /// A guard the real RWC does not have: a cycle stops after this many GETs, so a web
    /// application that always asks to repeat cannot spin a test forever.
    pub max_exchanges_per_cycle: u32,
}

impl ClientConfig {
    /// The RWC's defaults: a 5-minute schedule, the 30-second iterator window and the
    /// 60-second margin before scheduled events.
    pub fn new(
        endpoint: impl Into<String>,
        connection_id: impl Into<String>,
        username: impl Into<String>,
        password: SecretString,
    ) -> Self {
        ClientConfig {
            endpoint: endpoint.into(),
            connection_id: connection_id.into(),
            username: username.into(),
            password,
            schedule: Duration::from_secs(5 * 60),
            iterator_window: Duration::from_secs(30),
            schedule_margin: Duration::from_secs(60),
            company_file_path: String::new(),
            http_timeout: Duration::from_secs(100),
            max_exchanges_per_cycle: 1_000,
        }
    }
}

/// Why a cycle, or a step of it, failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not set up the HTTP client: {0}")]
    Setup(String),
    #[error("{method} {url} failed: {message}")]
    Transport { method: &'static str, url: String, message: String },
    #[error("{method} {url} answered 401: the web application refused the username or password")]
    Unauthorized { method: &'static str, url: String },
    #[error("{method} {url} answered HTTP {status}: {body}")]
    Http { method: &'static str, url: String, status: u16, body: String },
    #[error("{method} {url} answered something the RWC cannot use: {message}")]
    Protocol { method: &'static str, url: String, message: String },
}

/// How a cycle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleEnd {
    /// A GET answered with an empty `qbXMLRequest`.
    NoWork,
    /// A POST answered `repeatCommunication: false`.
    Finished,
    /// A POST asked for a repeat 60 seconds or less before the next scheduled event.
    RepeatIgnoredNearSchedule,
    /// The `drop_next_posts` fault swallowed the POST.
    PostDropped,
    /// [`ClientConfig::max_exchanges_per_cycle`] GETs were made.
    ExchangeLimit,
}

/// What became of a non-zero `tryAgainIn` (the last one of the cycle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryAgainIn {
    /// Zero or absent every time: nothing to decide.
    NotAsked,
    /// It came with a qbXML request, which was processed instead.
    IgnoredRequestProvided { minutes: i64 },
    /// It would land 60 seconds or less from the next scheduled event.
    IgnoredNearSchedule { minutes: i64 },
    /// The next communication happens at `at` instead of on the schedule.
    Honoured { minutes: i64, at: Timestamp },
}

/// What one communication cycle did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleReport {
    pub started_at: Timestamp,
    /// GETs answered.
    pub exchanges: u32,
    /// qbXML documents run against the company file.
    pub qbxml_processed: u32,
    /// POSTs sent and answered.
    pub posts: u32,
    /// GETs made because a POST asked to repeat.
    pub repeats: u32,
    /// POSTs that carried an `errorCode` (a fault, or qbXML the SDK could not read).
    pub error_posts: u32,
    /// POSTs swallowed by the `drop_next_posts` fault.
    pub dropped_posts: u32,
    /// SDK sessions begun (a repeat within the window reuses the open one).
    pub sessions_begun: u32,
    pub end: CycleEnd,
    pub try_again_in: TryAgainIn,
    /// The next scheduled event: `started_at` + schedule.
    pub next_scheduled_at: Timestamp,
    /// When the next cycle starts: the next scheduled event, or an honoured `tryAgainIn`.
    pub next_communication_at: Timestamp,
}

/// Faults to inject into a client, changeable while it runs (clones share them).
#[derive(Debug, Clone, Default)]
pub struct ClientFaults(Arc<Mutex<FaultState>>);

/// The fault switches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultState {
    /// The next n exchanges process their qbXML (so writes are applied) but never POST; the
    /// cycle ends there, as when the RWC or the network dies at that moment.
    pub drop_next_posts: u32,
    /// The next n exchanges POST `error_code`/`error_msg` instead of processing the qbXML.
    pub error_next_exchanges: u32,
    pub error_code: String,
    pub error_msg: String,
    /// The next exchange that continues an iterator finds every iterator gone (3391).
    pub invalidate_iterators: bool,
    /// Held before every POST (real time).
    pub post_delay: Duration,
}

impl ClientFaults {
    pub fn drop_next_posts(&self, n: u32) {
        self.update(|f| f.drop_next_posts = n);
    }

    /// E.g. `("0x80040408", "Could not access Reckon Accounts")` or
    /// `("0x80040420", "BeginSession timeout")`.
    pub fn fail_next_exchanges(&self, n: u32, error_code: impl Into<String>, error_msg: impl Into<String>) {
        let (code, msg) = (error_code.into(), error_msg.into());
        self.update(|f| {
            f.error_next_exchanges = n;
            f.error_code = code;
            f.error_msg = msg;
        });
    }

    pub fn invalidate_iterators(&self) {
        self.update(|f| f.invalidate_iterators = true);
    }

    pub fn set_post_delay(&self, delay: Duration) {
        self.update(|f| f.post_delay = delay);
    }

    pub fn clear(&self) {
        self.update(|f| *f = FaultState::default());
    }

    pub fn snapshot(&self) -> FaultState {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, change: impl FnOnce(&mut FaultState)) {
        change(&mut self.lock());
    }

    fn take_error(&self) -> Option<(String, String)> {
        let mut f = self.lock();
        (f.error_next_exchanges > 0).then(|| {
            f.error_next_exchanges -= 1;
            (f.error_code.clone(), f.error_msg.clone())
        })
    }

    fn take_drop(&self) -> bool {
        let mut f = self.lock();
        let drop = f.drop_next_posts > 0;
        if drop {
            f.drop_next_posts -= 1;
        }
        drop
    }

    fn take_invalidate(&self) -> bool {
        std::mem::take(&mut self.lock().invalidate_iterators)
    }
}

/// The SDK session this connection last processed qbXML in.
#[derive(Debug, Clone, Copy)]
struct OpenSession {
    id: SessionId,
    finished_at: Timestamp,
}

/// One simulated RWC connection to a web application.
pub struct Client {
    config: ClientConfig,
    company: SharedCompanyFile,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    faults: ClientFaults,
    session: Option<OpenSession>,
    next_communication_at: Option<Timestamp>,
}

impl Client {
    /// A client on the system clock.
    pub fn new(config: ClientConfig, company: SharedCompanyFile) -> Result<Self, ClientError> {
        Self::with_clock(config, company, Arc::new(SystemClock))
    }

    pub fn with_clock(
        config: ClientConfig,
        company: SharedCompanyFile,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .user_agent(concat!(
                "ReckonWebConnector/1.0.1.0 (ledgerlink-sandbox/",
                env!("CARGO_PKG_VERSION"),
                ")"
            ))
            .build()
            .map_err(|err| ClientError::Setup(err.to_string()))?;
        Ok(Client {
            config,
            company,
            clock,
            http,
            faults: ClientFaults::default(),
            session: None,
            next_communication_at: None,
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn company(&self) -> &SharedCompanyFile {
        &self.company
    }

    /// The fault switches (a handle: changes apply to the running client).
    pub fn faults(&self) -> ClientFaults {
        self.faults.clone()
    }

    /// When [`Client::run`] starts the next cycle; `None` before the first.
    pub fn next_communication_at(&self) -> Option<Timestamp> {
        self.next_communication_at
    }

    /// Runs communication cycles until `shutdown`: the first at once, then each when the
    /// schedule (or an honoured `tryAgainIn`) says. Failed cycles are logged and the schedule
    /// carries on, as the RWC does.
    pub async fn run(&mut self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                // Errors are logged by the cycle itself.
                _ = self.run_cycle() => {}
            }
            let due = self.next_communication_at.unwrap_or_else(|| self.clock.now());
            loop {
                let wait = millis_between(due, self.clock.now());
                if wait <= 0 {
                    break;
                }
                // Re-read the clock at least every second, so a manual clock can be moved on.
                let step = Duration::from_millis(wait.min(1_000) as u64);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(step) => {}
                }
            }
        }
    }

    /// One communication cycle, starting now with a blank `state`.
    pub async fn run_cycle(&mut self) -> Result<CycleReport, ClientError> {
        let started_at = self.clock.now();
        let next_scheduled_at = started_at.saturating_add(self.config.schedule);
        self.next_communication_at = Some(next_scheduled_at);
        let mut report = CycleReport {
            started_at,
            exchanges: 0,
            qbxml_processed: 0,
            posts: 0,
            repeats: 0,
            error_posts: 0,
            dropped_posts: 0,
            sessions_begun: 0,
            end: CycleEnd::NoWork,
            try_again_in: TryAgainIn::NotAsked,
            next_scheduled_at,
            next_communication_at: next_scheduled_at,
        };
        let result = self.exchanges(&mut report).await;
        // The RWC closes its SDK session when the cycle is over; a new cycle opens a new one.
        if let Some(open) = self.session.take() {
            self.company.lock().unwrap_or_else(PoisonError::into_inner).end_session(open.id);
        }
        if let TryAgainIn::Honoured { at, .. } = report.try_again_in {
            report.next_communication_at = at;
        }
        self.next_communication_at = Some(report.next_communication_at);
        let connection = self.config.connection_id.as_str();
        match result {
            Ok(()) => {
                info!(
                    connection,
                    exchanges = report.exchanges,
                    processed = report.qbxml_processed,
                    posts = report.posts,
                    repeats = report.repeats,
                    error_posts = report.error_posts,
                    dropped_posts = report.dropped_posts,
                    end = ?report.end,
                    try_again_in = ?report.try_again_in,
                    next = %report.next_communication_at.to_rfc3339(),
                    "RWC communication cycle finished"
                );
                Ok(report)
            }
            Err(err) => {
                error!(
                    connection,
                    exchanges = report.exchanges,
                    posts = report.posts,
                    next = %report.next_communication_at.to_rfc3339(),
                    error = %err,
                    "RWC communication cycle failed"
                );
                Err(err)
            }
        }
    }

    async fn exchanges(&mut self, report: &mut CycleReport) -> Result<(), ClientError> {
        let mut state = String::new();
        let mut repeat = false;
        loop {
            if report.exchanges >= self.config.max_exchanges_per_cycle {
                warn!(connection = %self.config.connection_id, "the cycle reached its exchange limit");
                report.end = CycleEnd::ExchangeLimit;
                return Ok(());
            }
            if repeat {
                report.repeats += 1;
            }
            let answer = self.get(&state).await?;
            let received_at = self.clock.now();
            report.exchanges += 1;

            if answer.qbxml_request.trim().is_empty() {
                if answer.try_again_in > 0 {
                    report.try_again_in =
                        self.try_again(answer.try_again_in, received_at, report.next_scheduled_at);
                }
                report.end = CycleEnd::NoWork;
                return Ok(());
            }
            if answer.try_again_in > 0 {
                report.try_again_in = TryAgainIn::IgnoredRequestProvided { minutes: answer.try_again_in };
            }
            if answer.post_url.trim().is_empty() {
                return Err(ClientError::Protocol {
                    method: "GET",
                    url: self.get_url(&state),
                    message: "a qbXMLRequest came without a postURL".into(),
                });
            }

            let callback = match self.faults.take_error() {
                Some((error_code, error_msg)) => {
                    debug!(connection = %self.config.connection_id, %error_code, "answering with an injected error");
                    report.error_posts += 1;
                    CallbackRequest {
                        qbxml_response: String::new(),
                        connector_id: self.config.connection_id.clone(),
                        error_code,
                        error_msg,
                    }
                }
                None => match self.process(&answer.qbxml_request, repeat, received_at, report) {
                    Ok(response) => CallbackRequest {
                        qbxml_response: response,
                        connector_id: self.config.connection_id.clone(),
                        error_code: String::new(),
                        error_msg: String::new(),
                    },
                    Err(err) => {
                        warn!(connection = %self.config.connection_id, error = %err, "the SDK refused the qbXML");
                        report.error_posts += 1;
                        CallbackRequest {
                            qbxml_response: String::new(),
                            connector_id: self.config.connection_id.clone(),
                            error_code: err.code,
                            error_msg: err.message,
                        }
                    }
                },
            };

            if self.faults.take_drop() {
                warn!(connection = %self.config.connection_id, "dropping the POST (fault)");
                report.dropped_posts += 1;
                report.end = CycleEnd::PostDropped;
                return Ok(());
            }
            let delay = self.faults.snapshot().post_delay;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let reply = self.post(&answer.post_url, &callback).await?;
            report.posts += 1;
            if !reply.repeat_communication {
                report.end = CycleEnd::Finished;
                return Ok(());
            }
            let until_scheduled = millis_between(report.next_scheduled_at, self.clock.now());
            if until_scheduled <= self.config.schedule_margin.as_millis() as i64 {
                debug!(connection = %self.config.connection_id, until_scheduled, "repeat ignored: the schedule is near");
                report.end = CycleEnd::RepeatIgnoredNearSchedule;
                return Ok(());
            }
            state = reply.state;
            repeat = true;
        }
    }

    /// Decides a non-zero `tryAgainIn` received with no qbXML at `received_at`.
    fn try_again(&self, minutes: i64, received_at: Timestamp, next_scheduled_at: Timestamp) -> TryAgainIn {
        let at = received_at.saturating_add(Duration::from_secs(minutes.unsigned_abs() * 60));
        let distance = millis_between(at, next_scheduled_at).abs();
        if distance <= self.config.schedule_margin.as_millis() as i64 {
            TryAgainIn::IgnoredNearSchedule { minutes }
        } else {
            TryAgainIn::Honoured { minutes, at }
        }
    }

    /// Runs qbXML against the company file in the right SDK session.
    fn process(
        &mut self,
        xml: &str,
        repeat: bool,
        received_at: Timestamp,
        report: &mut CycleReport,
    ) -> Result<String, super::company::SdkError> {
        let mut company = self.company.lock().unwrap_or_else(PoisonError::into_inner);
        let window = self.config.iterator_window.as_millis() as i64;
        let reusable = self.session.filter(|open| {
            repeat
                && millis_between(received_at, open.finished_at) <= window
                && company.is_current_session(open.id)
        });
        let id = match reusable {
            Some(open) => open.id,
            None => {
                report.sessions_begun += 1;
                company.begin_session(&self.config.connection_id)
            }
        };
        if continues_an_iterator(xml) && self.faults.take_invalidate() {
            company.invalidate_iterators();
        }
        let result = company.process(xml, received_at);
        report.qbxml_processed += 1;
        self.session = Some(OpenSession { id, finished_at: self.clock.now() });
        debug!(
            connection = %self.config.connection_id,
            session = %id,
            reused = reusable.is_some(),
            ok = result.is_ok(),
            "processed qbXML"
        );
        result
    }

    /// Built by plain concatenation, as the RWC builds it.
    fn get_url(&self, state: &str) -> String {
        format!("{}?id={}&state={}", self.config.endpoint, self.config.connection_id, state)
    }

    async fn get(&self, state: &str) -> Result<InitiateResponse, ClientError> {
        let url = self.get_url(state);
        debug!(connection = %self.config.connection_id, state, "GET initiate communication");
        let request = self
            .http
            .get(&url)
            .basic_auth(&self.config.username, Some(self.config.password.expose()))
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json");
        let body = self.send("GET", &url, request).await?;
        serde_json::from_str(&body).map_err(|err| ClientError::Protocol {
            method: "GET",
            url,
            message: format!("not the expected JSON object: {err}"),
        })
    }

    async fn post(&self, url: &str, callback: &CallbackRequest) -> Result<CallbackResponse, ClientError> {
        debug!(connection = %self.config.connection_id, url, error_code = %callback.error_code, "POST callback");
        let request = self
            .http
            .post(url)
            .basic_auth(&self.config.username, Some(self.config.password.expose()))
            .header(ACCEPT, "application/json")
            .json(callback);
        let body = self.send("POST", url, request).await?;
        serde_json::from_str(&body).map_err(|err| ClientError::Protocol {
            method: "POST",
            url: url.to_owned(),
            message: format!("not the expected JSON object: {err}"),
        })
    }

    async fn send(
        &self,
        method: &'static str,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<String, ClientError> {
        let transport = |err: reqwest::Error| ClientError::Transport {
            method,
            url: url.to_owned(),
            message: err.to_string(),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let body = response.text().await.map_err(transport)?;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(ClientError::Unauthorized { method, url: url.to_owned() });
        }
        if !status.is_success() {
            let body: String = body.chars().take(500).collect();
            return Err(ClientError::Http { method, url: url.to_owned(), status: status.as_u16(), body });
        }
        Ok(body)
    }
}

/// Whether any request in the document continues an iterator (unreadable documents do not).
fn continues_an_iterator(xml: &str) -> bool {
    RequestDocument::parse(xml)
        .map(|doc| doc.requests().iter().any(|r| r.iterator() == Some(IteratorMode::Continue)))
        .unwrap_or(false)
}

/// `later - earlier` in milliseconds (negative when `later` is earlier).
fn millis_between(later: Timestamp, earlier: Timestamp) -> i64 {
    later.as_millis().saturating_sub(earlier.as_millis())
}
