//! The simulated Reckon Web Connector client against a minimal fake web application: the
//! protocol's shapes, its timing rules (with a manual clock, so nothing sleeps for real), SDK
//! sessions and iterators, and the fault switches.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ledgerlink_core::{Clock, ManualClock, SecretString, SystemClock, Timestamp};
use ledgerlink_qbxml::ResponseDocument;
use ledgerlink_sandbox::reckon::{
    CallbackRequest, CallbackResponse, Client, ClientConfig, ClientError, CompanyFile, CompanyOptions,
    CycleEnd, InitiateResponse, SharedCompanyFile, TryAgainIn,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const USER: &str = "rwc-user";
const PASSWORD: &str = "s3cret pässword";
const START: Timestamp = Timestamp::from_millis(1_795_370_400_000);

// ---------------------------------------------------------------------------------------------
// The fake web application
// ---------------------------------------------------------------------------------------------

/// What the fake app hands out on a GET.
#[derive(Clone, Default)]
enum Work {
    #[default]
    None,
    Qbxml(String),
    /// A template whose `{ITERATOR}` becomes the `iteratorID` of the connection's last POST.
    ContinueLast(String),
}

/// One exchange as the fake app plays it: the GET's answer, then the POST's.
#[derive(Clone, Default)]
struct Turn {
    work: Work,
    try_again_in: i64,
    repeat: bool,
    state: String,
    /// Moved on the manual clock before the POST is answered ("the app took this long").
    advance_before_answer: Duration,
    /// The POST's answer waits for this gate.
    hold: Option<Arc<Gate>>,
}

impl Turn {
    fn work(xml: impl Into<String>) -> Self {
        Turn { work: Work::Qbxml(xml.into()), ..Turn::default() }
    }

    fn repeat(mut self, state: &str) -> Self {
        self.repeat = true;
        self.state = state.to_owned();
        self
    }
}

#[derive(Default)]
struct Gate {
    arrived: Notify,
    release: Notify,
}

#[derive(Debug, Clone)]
struct SeenGet {
    id: Option<String>,
    state: Option<String>,
    raw_query: String,
    credentials: Option<(String, String)>,
    content_type: Option<String>,
}

#[derive(Debug, Clone)]
struct SeenPost {
    connection: String,
    credentials: Option<(String, String)>,
    content_type: Option<String>,
    body: CallbackRequest,
}

#[derive(Default)]
struct AppState {
    base: String,
    turns: HashMap<String, VecDeque<Turn>>,
    current: HashMap<String, Turn>,
    gets: Vec<SeenGet>,
    posts: Vec<SeenPost>,
    refused: u32,
}

#[derive(Clone)]
struct FakeApp {
    state: Arc<Mutex<AppState>>,
    clock: ManualClock,
    endpoint: String,
}

impl FakeApp {
    async fn start(clock: ManualClock) -> Self {
        let state = Arc::new(Mutex::new(AppState::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        state.lock().unwrap().base = base.clone();
        let app = FakeApp { state, clock, endpoint: format!("{base}/webconnector/reckon") };
        let router = Router::new()
            .route("/webconnector/reckon", get(initiate))
            .route("/callback/{connection}", post(callback))
            .with_state(app.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve the fake app") });
        app
    }

    fn queue(&self, connection: &str, turns: impl IntoIterator<Item = Turn>) {
        self.state.lock().unwrap().turns.entry(connection.to_owned()).or_default().extend(turns);
    }

    fn gets(&self) -> Vec<SeenGet> {
        self.state.lock().unwrap().gets.clone()
    }

    fn posts(&self) -> Vec<SeenPost> {
        self.state.lock().unwrap().posts.clone()
    }

    fn refused(&self) -> u32 {
        self.state.lock().unwrap().refused
    }
}

fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn authorised(credentials: &Option<(String, String)>) -> bool {
    credentials.as_ref().is_some_and(|(u, p)| u == USER && p == PASSWORD)
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn initiate(State(app): State<FakeApp>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let raw_query = query.unwrap_or_default();
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(raw_query.as_bytes()).into_owned().collect();
    let seen = SeenGet {
        id: params.get("id").cloned(),
        state: params.get("state").cloned(),
        raw_query,
        credentials: credentials(&headers),
        content_type: content_type(&headers),
    };
    let mut state = app.state.lock().unwrap();
    let ok = authorised(&seen.credentials);
    let connection = seen.id.clone().unwrap_or_default();
    state.gets.push(seen);
    if !ok {
        state.refused += 1;
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Some(turn) = state.turns.get_mut(&connection).and_then(VecDeque::pop_front) else {
        return axum::Json(InitiateResponse::default()).into_response();
    };
    let qbxml = match &turn.work {
        Work::None => String::new(),
        Work::Qbxml(xml) => xml.clone(),
        Work::ContinueLast(template) => {
            let last =
                state.posts.iter().rev().find(|p| p.connection == connection).expect("an earlier POST");
            let doc = ResponseDocument::parse(&last.body.qbxml_response).expect("a response document");
            let id = doc.responses()[0].iterator_id().expect("an iterator id").to_owned();
            template.replace("{ITERATOR}", &id)
        }
    };
    let answer = InitiateResponse {
        post_url: format!("{}/callback/{connection}", state.base),
        qbxml_request: qbxml,
        try_again_in: turn.try_again_in,
    };
    state.current.insert(connection, turn);
    axum::Json(answer).into_response()
}

async fn callback(
    State(app): State<FakeApp>,
    Path(connection): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: CallbackRequest = serde_json::from_str(&body).expect("the documented callback JSON");
    let seen = SeenPost {
        connection: connection.clone(),
        credentials: credentials(&headers),
        content_type: content_type(&headers),
        body,
    };
    let turn = {
        let mut state = app.state.lock().unwrap();
        if !authorised(&seen.credentials) {
            state.refused += 1;
            return StatusCode::UNAUTHORIZED.into_response();
        }
        state.posts.push(seen);
        state.current.remove(&connection).unwrap_or_default()
    };
    if let Some(gate) = &turn.hold {
        gate.arrived.notify_one();
        gate.release.notified().await;
    }
    app.clock.advance(turn.advance_before_answer);
    axum::Json(CallbackResponse { repeat_communication: turn.repeat, state: turn.state }).into_response()
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

struct Setup {
    app: FakeApp,
    clock: ManualClock,
    company: SharedCompanyFile,
}

async fn setup() -> Setup {
    let clock = ManualClock::new(START);
    let app = FakeApp::start(clock.clone()).await;
    let company = CompanyFile::generate(&CompanyOptions::default()).shared();
    Setup { app, clock, company }
}

impl Setup {
    fn config(&self, connection: &str) -> ClientConfig {
        let mut config = ClientConfig::new(&self.app.endpoint, connection, USER, SecretString::new(PASSWORD));
        config.schedule = Duration::from_secs(10 * 60);
        config.company_file_path = self.company.lock().unwrap().path().to_owned();
        config
    }

    fn client(&self, connection: &str) -> Client {
        self.client_with(self.config(connection))
    }

    fn client_with(&self, config: ClientConfig) -> Client {
        Client::with_clock(config, self.company.clone(), Arc::new(self.clock.clone())).expect("a client")
    }
}

fn fixture(name: &str) -> String {
    let path = format!("{}/../qbxml/tests/fixtures/requests/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// The seed's own example request.
const COMPANY_QUERY: &str = r#"<?xml version="1.0"?><?qbxml version="6.1"?><QBXML><QBXMLMsgsRq onError="continueOnError"><CompanyQueryRq /></QBXMLMsgsRq></QBXML>"#;

fn doc(body: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><?qbxml version="6.1"?><QBXML><QBXMLMsgsRq onError="stopOnError">{body}</QBXMLMsgsRq></QBXML>"#
    )
}

/// The iterator fixture, ten customers a page.
fn customers_start() -> String {
    fixture("customer_query_iterator_rq.xml")
        .replace("<MaxReturned>5</MaxReturned>", "<MaxReturned>10</MaxReturned>")
}

fn customers_continue() -> Work {
    Work::ContinueLast(
        customers_start().replace(r#"iterator="Start""#, r#"iterator="Continue" iteratorID="{ITERATOR}""#),
    )
}

/// (statusCode, records, iteratorRemainingCount) of the first response of a POST.
fn first_response(post: &SeenPost) -> (i32, usize, Option<u32>) {
    let doc = ResponseDocument::parse(&post.body.qbxml_response)
        .unwrap_or_else(|err| panic!("{err}: {:?}", post.body.qbxml_response));
    let rs = &doc.responses()[0];
    (rs.status_code().0, rs.record_count(), rs.iterator_remaining_count())
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn get_and_post_have_the_documented_shapes_with_basic_auth_on_both() {
    let s = setup().await;
    s.app.queue("conn-1", [Turn::work(COMPANY_QUERY)]);
    let report = s.client("conn-1").run_cycle().await.expect("a cycle");

    assert_eq!((report.exchanges, report.qbxml_processed, report.posts, report.repeats), (1, 1, 1, 0));
    assert_eq!(report.end, CycleEnd::Finished);
    let gets = s.app.gets();
    assert_eq!(gets.len(), 1);
    assert_eq!(gets[0].raw_query, "id=conn-1&state=");
    assert_eq!(gets[0].credentials, Some((USER.to_owned(), PASSWORD.to_owned())));
    assert_eq!(gets[0].content_type.as_deref(), Some("application/json"));

    let posts = s.app.posts();
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(post.credentials, Some((USER.to_owned(), PASSWORD.to_owned())));
    assert_eq!(post.content_type.as_deref(), Some("application/json"));
    assert_eq!(post.body.connector_id, "conn-1");
    assert_eq!((post.body.error_code.as_str(), post.body.error_msg.as_str()), ("", ""));
    assert!(post.body.qbxml_response.starts_with("<?xml version=\"1.0\" ?>\n<QBXML>\n  <QBXMLMsgsRs>"));
    let doc = ResponseDocument::parse(&post.body.qbxml_response).unwrap();
    assert_eq!(doc.responses()[0].name(), "CompanyQueryRs");
    assert_eq!(doc.responses()[0].status_message(), Some("Status OK"));
    assert_eq!(doc.responses()[0].records().next().unwrap().name(), "CompanyRet");
}

#[tokio::test]
async fn the_state_comes_back_on_the_repeat_and_scheduled_cycles_send_it_blank() {
    let s = setup().await;
    s.app.queue(
        "conn-1",
        [
            Turn::work(doc(r#"<HostQueryRq requestID="h"/>"#)).repeat("after-host.1"),
            Turn::work(COMPANY_QUERY).repeat("after-company.2"),
            Turn::default(),
        ],
    );
    let mut client = s.client("conn-1");
    let report = client.run_cycle().await.unwrap();
    assert_eq!((report.exchanges, report.posts, report.repeats), (3, 2, 2));
    assert_eq!(report.end, CycleEnd::NoWork);

    s.clock.advance(Duration::from_secs(10 * 60));
    client.run_cycle().await.unwrap();
    let states: Vec<_> =
        s.app.gets().into_iter().map(|g| g.state.unwrap_or_else(|| "<absent>".into())).collect();
    assert_eq!(states, ["", "after-host.1", "after-company.2", ""]);
    let posts = s.app.posts();
    let doc = ResponseDocument::parse(&posts[0].body.qbxml_response).unwrap();
    assert_eq!(doc.responses()[0].request_id(), Some("h"));
}

#[tokio::test]
async fn thirty_five_customers_ten_at_a_time_arrive_through_one_iterator_in_one_cycle() {
    let s = setup().await;
    s.app.queue(
        "conn-1",
        [
            Turn::work(customers_start()).repeat("page-1"),
            Turn { work: customers_continue(), ..Turn::default() }.repeat("page-2"),
            Turn { work: customers_continue(), ..Turn::default() }.repeat("page-3"),
            Turn { work: customers_continue(), ..Turn::default() },
        ],
    );
    let report = s.client("conn-1").run_cycle().await.unwrap();
    assert_eq!((report.exchanges, report.posts, report.repeats, report.sessions_begun), (4, 4, 3, 1));

    let posts = s.app.posts();
    let pages: Vec<_> = posts.iter().map(first_response).collect();
    assert_eq!(pages, [(0, 10, Some(25)), (0, 10, Some(15)), (0, 10, Some(5)), (0, 5, Some(0))]);
    let mut ids = Vec::new();
    for post in &posts {
        let doc = ResponseDocument::parse(&post.body.qbxml_response).unwrap();
        assert_eq!(doc.responses()[0].request_id(), Some("1"));
        ids.extend(doc.responses()[0].records().map(|r| r.list_id_or_txn_id().unwrap().as_str().to_owned()));
    }
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!((ids.len(), distinct.len()), (35, 35));
    let xml: String = posts.iter().map(|p| p.body.qbxml_response.as_str()).collect();
    assert!(xml.contains("<Name>Café Müller</Name>") && xml.contains("<Name>Zoë Dvořák</Name>"));
}

#[tokio::test]
async fn an_iterator_does_not_survive_into_the_next_scheduled_cycle() {
    let s = setup().await;
    s.app.queue("conn-1", [Turn::work(customers_start())]);
    let mut client = s.client("conn-1");
    client.run_cycle().await.unwrap();
    s.clock.advance(Duration::from_secs(10 * 60));
    s.app.queue("conn-1", [Turn { work: customers_continue(), ..Turn::default() }]);
    let report = client.run_cycle().await.unwrap();
    assert_eq!(report.sessions_begun, 1);

    let posts = s.app.posts();
    assert_eq!(first_response(&posts[0]), (0, 10, Some(25)));
    assert_eq!(first_response(&posts[1]), (3391, 0, None));
    let doc = ResponseDocument::parse(&posts[1].body.qbxml_response).unwrap();
    assert_eq!(doc.responses()[0].status_severity(), Some(ledgerlink_qbxml::Severity::Error));
}

#[tokio::test]
async fn an_iterator_lasts_thirty_seconds_after_processing_and_no_longer() {
    for (delay, expected) in [(Duration::from_secs(30), 0), (Duration::from_secs(31), 3391)] {
        let s = setup().await;
        s.app.queue(
            "conn-1",
            [
                Turn { advance_before_answer: delay, ..Turn::work(customers_start()).repeat("more") },
                Turn { work: customers_continue(), ..Turn::default() },
            ],
        );
        let report = s.client("conn-1").run_cycle().await.unwrap();
        assert_eq!(report.repeats, 1);
        assert_eq!(report.sessions_begun, if expected == 0 { 1 } else { 2 });
        assert_eq!(first_response(&s.app.posts()[1]).0, expected, "after {delay:?}");
    }
}

#[tokio::test]
async fn a_shorter_iterator_window_comes_from_the_config() {
    let s = setup().await;
    let mut config = s.config("conn-1");
    config.iterator_window = Duration::from_secs(2);
    s.app.queue(
        "conn-1",
        [
            Turn {
                advance_before_answer: Duration::from_secs(3),
                ..Turn::work(customers_start()).repeat("more")
            },
            Turn { work: customers_continue(), ..Turn::default() },
        ],
    );
    s.client_with(config).run_cycle().await.unwrap();
    assert_eq!(first_response(&s.app.posts()[1]).0, 3391);
}

#[tokio::test]
async fn another_connection_using_the_same_file_invalidates_the_iterator() {
    let s = setup().await;
    let gate = Arc::new(Gate::default());
    s.app.queue(
        "conn-a",
        [
            Turn { hold: Some(gate.clone()), ..Turn::work(customers_start()).repeat("more") },
            Turn { work: customers_continue(), ..Turn::default() },
        ],
    );
    s.app.queue("conn-b", [Turn::work(COMPANY_QUERY)]);
    let mut a = s.client("conn-a");
    let mut b = s.client("conn-b");

    let a_cycle = tokio::spawn(async move { a.run_cycle().await });
    // While conn-a's first POST waits for its answer, conn-b runs a cycle on the same file.
    gate.arrived.notified().await;
    let b_report = b.run_cycle().await.unwrap();
    assert_eq!(b_report.sessions_begun, 1);
    gate.release.notify_one();
    let a_report = a_cycle.await.unwrap().unwrap();

    assert_eq!(a_report.repeats, 1);
    assert_eq!(a_report.sessions_begun, 2);
    let a_posts: Vec<_> = s.app.posts().into_iter().filter(|p| p.connection == "conn-a").collect();
    assert_eq!(first_response(&a_posts[0]), (0, 10, Some(25)));
    assert_eq!(first_response(&a_posts[1]).0, 3391);
}

#[tokio::test]
async fn try_again_in_counts_only_without_work_and_away_from_the_schedule() {
    let cases: [(i64, bool, TryAgainIn); 7] = [
        (0, false, TryAgainIn::NotAsked),
        (3, false, TryAgainIn::Honoured { minutes: 3, at: START.saturating_add(Duration::from_secs(180)) }),
        (3, true, TryAgainIn::IgnoredRequestProvided { minutes: 3 }),
        // Lands exactly 60 s before the next scheduled event (10 minutes after the start).
        (9, false, TryAgainIn::IgnoredNearSchedule { minutes: 9 }),
        (10, false, TryAgainIn::IgnoredNearSchedule { minutes: 10 }),
        (11, false, TryAgainIn::IgnoredNearSchedule { minutes: 11 }),
        // Past the scheduled event by more than 60 s: it replaces it.
        (12, false, TryAgainIn::Honoured { minutes: 12, at: START.saturating_add(Duration::from_secs(720)) }),
    ];
    for (minutes, with_work, expected) in cases {
        let s = setup().await;
        let turn = if with_work { Turn::work(COMPANY_QUERY) } else { Turn::default() };
        s.app.queue("conn-1", [Turn { try_again_in: minutes, ..turn }]);
        let mut client = s.client("conn-1");
        let report = client.run_cycle().await.unwrap();
        assert_eq!(report.try_again_in, expected, "tryAgainIn {minutes}, work {with_work}");
        let scheduled = START.saturating_add(Duration::from_secs(600));
        assert_eq!(report.next_scheduled_at, scheduled);
        let next = match expected {
            TryAgainIn::Honoured { at, .. } => at,
            _ => scheduled,
        };
        assert_eq!(report.next_communication_at, next);
        assert_eq!(client.next_communication_at(), Some(next));
        assert_eq!(report.posts, u32::from(with_work));
    }
}

#[tokio::test]
async fn a_repeat_sixty_seconds_or_less_before_the_schedule_is_ignored() {
    for (taken, repeated) in [(Duration::from_secs(9 * 60), false), (Duration::from_secs(9 * 60 - 1), true)] {
        let s = setup().await;
        s.app.queue(
            "conn-1",
            [
                Turn { advance_before_answer: taken, ..Turn::work(COMPANY_QUERY).repeat("again") },
                Turn::default(),
            ],
        );
        let report = s.client("conn-1").run_cycle().await.unwrap();
        let gets = s.app.gets();
        if repeated {
            assert_eq!((report.repeats, gets.len(), report.end), (1, 2, CycleEnd::NoWork));
            assert_eq!(gets[1].state.as_deref(), Some("again"));
        } else {
            assert_eq!((report.repeats, gets.len()), (0, 1));
            assert_eq!(report.end, CycleEnd::RepeatIgnoredNearSchedule);
        }
    }
}

#[tokio::test]
async fn a_dropped_post_leaves_the_add_applied() {
    let s = setup().await;
    s.app.queue("conn-1", [Turn::work(fixture("customer_add_rq.xml"))]);
    let mut client = s.client("conn-1");
    client.faults().drop_next_posts(1);
    let report = client.run_cycle().await.unwrap();

    assert_eq!((report.exchanges, report.posts, report.dropped_posts), (1, 0, 1));
    assert_eq!(report.end, CycleEnd::PostDropped);
    assert!(s.app.posts().is_empty());
    let company = s.company.lock().unwrap();
    assert_eq!(company.stats().customers_added, 1);
    assert!(company.customer_named("20706 - Eastern XYZ University").is_some());
    assert_eq!(client.faults().snapshot().drop_next_posts, 0);
}

#[tokio::test]
async fn message_set_recovery_answers_a_lost_add_without_applying_it_again() {
    let s = setup().await;
    let add = |set_ids: &str| {
        fixture("customer_add_rq.xml").replace(
            r#"<QBXMLMsgsRq onError="stopOnError">"#,
            &format!(r#"<QBXMLMsgsRq onError="stopOnError" {set_ids}>"#),
        )
    };
    s.app.queue("conn-1", [Turn::work(add(r#"newMessageSetID="job-7""#))]);
    let mut client = s.client("conn-1");
    client.faults().drop_next_posts(1);
    client.run_cycle().await.unwrap();
    assert!(s.app.posts().is_empty());

    // The app never saw the answer: it asks again with the message set's id as oldMessageSetID.
    s.clock.advance(Duration::from_secs(600));
    s.app.queue("conn-1", [Turn::work(add(r#"oldMessageSetID="job-7" newMessageSetID="job-7""#))]);
    client.run_cycle().await.unwrap();

    let posts = s.app.posts();
    assert_eq!(posts.len(), 1);
    let doc = ResponseDocument::parse(&posts[0].body.qbxml_response).unwrap();
    assert_eq!(doc.message_set().new_message_set_id.as_deref(), Some("job-7"));
    let rs = &doc.responses()[0];
    assert_eq!((rs.name(), rs.request_id(), rs.status_code().0), ("CustomerAddRs", Some("15"), 0));
    let company = s.company.lock().unwrap();
    let added = company.customer_named("20706 - Eastern XYZ University").unwrap();
    assert!(posts[0].body.qbxml_response.contains(&format!("<ListID>{}</ListID>", added.list_id)));
    assert_eq!(company.stats().customers_added, 1);
    assert_eq!(company.stats().message_sets_replayed, 1);
    assert_eq!(company.saved_message_set("job-7"), Some(posts[0].body.qbxml_response.as_str()));
}

#[tokio::test]
async fn an_injected_error_is_posted_instead_of_processing() {
    let s = setup().await;
    s.app.queue("conn-1", [Turn::work(fixture("customer_add_rq.xml")), Turn::work(COMPANY_QUERY)]);
    let mut client = s.client("conn-1");
    client.faults().fail_next_exchanges(1, "0x80040408", "Could not access Reckon Accounts");
    let report = client.run_cycle().await.unwrap();
    assert_eq!((report.posts, report.error_posts, report.qbxml_processed), (1, 1, 0));
    let post = &s.app.posts()[0];
    assert_eq!(
        post.body,
        CallbackRequest {
            qbxml_response: String::new(),
            connector_id: "conn-1".into(),
            error_code: "0x80040408".into(),
            error_msg: "Could not access Reckon Accounts".into(),
        }
    );
    assert_eq!(s.company.lock().unwrap().stats().requests_processed, 0);

    // Only the next one: the following cycle processes normally.
    s.clock.advance(Duration::from_secs(600));
    let report = client.run_cycle().await.unwrap();
    assert_eq!((report.error_posts, report.qbxml_processed), (0, 1));
    assert_eq!(s.app.posts()[1].body.error_code, "");
}

#[tokio::test]
async fn unreadable_qbxml_is_posted_as_the_sdk_parse_error() {
    let s = setup().await;
    s.app.queue(
        "conn-1",
        [Turn::work(
            "<?qbxml version=\"6.1\"?><QBXML><QBXMLMsgsRq onError=\"stopOnError\"><CustomerQueryRq>",
        )],
    );
    let report = s.client("conn-1").run_cycle().await.unwrap();
    assert_eq!(report.error_posts, 1);
    let body = &s.app.posts()[0].body;
    assert_eq!(body.qbxml_response, "");
    assert_eq!(body.error_code, "0x80040400");
    assert_eq!(body.error_msg, "QuickBooks found an error when parsing the provided XML text stream.");
}

#[tokio::test]
async fn the_invalidate_iterators_fault_breaks_the_next_continuation() {
    let s = setup().await;
    s.app.queue(
        "conn-1",
        [
            Turn::work(customers_start()).repeat("more"),
            Turn { work: customers_continue(), ..Turn::default() },
        ],
    );
    let mut client = s.client("conn-1");
    client.faults().invalidate_iterators();
    let report = client.run_cycle().await.unwrap();
    assert_eq!(report.sessions_begun, 1, "the session itself survives");
    let posts = s.app.posts();
    assert_eq!(first_response(&posts[0]), (0, 10, Some(25)));
    assert_eq!(first_response(&posts[1]).0, 3391);
    assert!(!client.faults().snapshot().invalidate_iterators);
}

#[tokio::test]
async fn wrong_credentials_end_the_cycle_with_an_error() {
    let s = setup().await;
    s.app.queue("conn-1", [Turn::work(COMPANY_QUERY)]);
    let mut config = s.config("conn-1");
    config.password = SecretString::new("wrong");
    let mut client = s.client_with(config);
    let err = client.run_cycle().await.unwrap_err();
    assert!(matches!(err, ClientError::Unauthorized { method: "GET", .. }), "{err}");
    assert_eq!(s.app.refused(), 1);
    assert!(s.app.posts().is_empty());
    assert_eq!(s.company.lock().unwrap().stats().message_sets_processed, 0);
    // The schedule carries on.
    assert_eq!(client.next_communication_at(), Some(START.saturating_add(Duration::from_secs(600))));
}

#[tokio::test]
async fn run_keeps_to_the_schedule_until_shut_down() {
    let clock = ManualClock::new(START);
    let app = FakeApp::start(clock).await;
    let company = CompanyFile::generate(&CompanyOptions::default()).shared();
    let mut config = ClientConfig::new(&app.endpoint, "conn-1", USER, SecretString::new(PASSWORD));
    config.schedule = Duration::from_millis(100);
    config.schedule_margin = Duration::ZERO;
    app.queue("conn-1", [Turn::work(COMPANY_QUERY)]);
    let mut client = Client::with_clock(config, company, Arc::new(SystemClock)).unwrap();

    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let started = SystemClock.now();
    let run = tokio::spawn(async move { client.run(stop).await });
    tokio::time::sleep(Duration::from_millis(450)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), run).await.expect("run stops").unwrap();

    // A cycle at once, then one every 100 ms, each a scheduled one with a blank state.
    let states: Vec<_> = app.gets().into_iter().map(|g| g.state).collect();
    assert!(states.len() >= 3, "{states:?} after {} ms", SystemClock.now().as_millis() - started.as_millis());
    assert!(states.iter().all(|s| s.as_deref() == Some("")), "{states:?}");
    assert_eq!(app.posts().len(), 1);
}
