//! `ledgerlink bench …`: throughput and memory figures, each printed with the baseline measured
//! in the same run, so a noisy machine moves both.
//!
//! `bench refresh` mints grants at a simulated Xero on loopback, measures how fast a plain HTTP
//! client at the same concurrency can refresh them (the simulator's raw capacity), then how fast
//! the hub's refresh engine refreshes the same number of stored connections, all due at once,
//! with its real durable storage (SQLite with `synchronous=FULL`, or PostgreSQL). It also starts
//! a hub process over a database of idle connections and reads its resident memory.
//!
//! `bench webconnector` queues qbXML jobs through the API of an in-process hub with its real
//! durable storage, then plays several Reckon Web Connectors over loopback HTTP (GET for work,
//! POST a 100-record `CustomerQueryRs`) and counts exchanges per second, beside the same client
//! loop against a trivial server that answers the same JSON without storage. It then measures
//! the qbXML response parser against a bare quick-xml event loop over the same document.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ledgerlink_core::{Clock, ConnectionStatus, SecretString, SystemClock, id};
use ledgerlink_sandbox::providers::{self as sim, Rules, Simulator};
use ledgerlink_store::{Connection, Organisation};

use crate::config::{Config, Sources};
use crate::engine::token_context;

#[derive(Clone, Debug)]
pub struct RefreshBench {
    pub connections: usize,
    pub concurrency: usize,
    pub idle_connections: usize,
    pub database_url: Option<String>,
}

pub async fn refresh(options: RefreshBench) -> anyhow::Result<()> {
    if options.connections == 0 || options.concurrency == 0 {
        bail!("--connections and --concurrency must be at least 1");
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let simulator =
        Simulator::new(clock.clone(), Rules::default().with_auto_approve(true).with_api_rate_limits(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let router = sim::router(simulator.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let endpoints = Simulator::endpoints(&base).xero;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let n = options.connections;
    let dir = tempfile::tempdir().context("Failed to create a temporary directory")?;
    let backend = options.database_url.as_deref().map_or("SQLite (WAL, synchronous=FULL)", |_| "PostgreSQL");
    println!("ledgerlink bench refresh: {n} connections, concurrency {}, {backend}", options.concurrency);

    let started = Instant::now();
    let tokens = mint(&http, &endpoints, 2 * n, options.concurrency).await?;
    println!(
        "  minted {} grants at the simulated Xero in {:.1} s",
        tokens.len(),
        started.elapsed().as_secs_f64()
    );
    let (for_baseline, for_hub) = tokens.split_at(n);

    // The simulator's raw capacity: a plain client, same concurrency, same loopback.
    let started = Instant::now();
    let ok = raw_refreshes(&http, &endpoints, for_baseline, options.concurrency).await?;
    let raw_secs = started.elapsed().as_secs_f64();
    if ok != n {
        bail!("the baseline refreshed only {ok} of {n} grants");
    }
    let raw_rate = n as f64 / raw_secs;
    println!("  simulator raw capacity (plain client): {raw_rate:>9.0} refreshes/s ({n} in {raw_secs:.2} s)");

    // The hub: stored connections, all due now, refreshed by a `ledgerlink serve` process of its
    // own, so its speed and memory are its own and not the simulator's.
    let mut env = vec![
        ("LEDGERLINK_DATA_DIR".to_owned(), dir.path().join("hub").display().to_string()),
        ("LEDGERLINK_REFRESH_CONCURRENCY".into(), options.concurrency.to_string()),
        ("LEDGERLINK_LOG_LEVEL".into(), "warn".into()),
        ("LEDGERLINK_PROVIDERS_XERO_CLIENT_ID".into(), endpoints.client_id.clone()),
        ("LEDGERLINK_PROVIDERS_XERO_CLIENT_SECRET".into(), endpoints.client_secret.clone()),
        ("LEDGERLINK_PROVIDERS_XERO_TOKEN_URL".into(), endpoints.token_url.clone()),
    ];
    if let Some(url) = &options.database_url {
        env.push(("LEDGERLINK_DATABASE_URL".into(), url.clone()));
    }
    let config = Config::load(&Sources { env: env.iter().cloned().collect(), ..Default::default() })?;
    let state = crate::hub::build_with_clock(config, clock.clone()).await?;
    let org = owner(&state).await?;
    let now = clock.now();
    for chunk in for_hub.chunks(5_000) {
        let rows: Vec<Connection> = chunk
            .iter()
            .map(|refresh| {
                let mut c = connection_row(&state, &org, now);
                let refresh = SecretString::new(refresh.clone());
                c.refresh_token =
                    Some(state.keys.encrypt_secret(&refresh, &token_context(&c.id, "refresh_token")));
                c.access_token = Some(state.keys.encrypt(b"expired", &token_context(&c.id, "access_token")));
                c
            })
            .collect();
        state.store.import_connections(&rows).await?;
    }
    state.store.close().await;
    drop(state);

    let (refreshes_before, invalid_before) = simulator.refresh_counts(sim::Provider::Xero);
    let started = Instant::now();
    let mut hub = HubProcess::start(&env).await?;
    loop {
        let (refreshes, invalid) = simulator.refresh_counts(sim::Provider::Xero);
        let done = (refreshes - refreshes_before) as usize;
        if done >= n {
            break;
        }
        if invalid > invalid_before {
            bail!("the simulator refused {} refreshes", invalid - invalid_before);
        }
        if started.elapsed() > Duration::from_secs(3600) {
            bail!("the hub refreshed only {done} of {n} connections in an hour");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let hub_secs = started.elapsed().as_secs_f64();
    let hub_peak = peak_rss_kib(&hub.pid.to_string());
    hub.stop().await;
    let stats = simulator.stats(sim::Provider::Xero);
    let hub_rate = n as f64 / hub_secs;
    println!("  hub (ledgerlink serve, from start):    {hub_rate:>9.0} refreshes/s ({n} in {hub_secs:.2} s)");
    println!("  ratio hub / raw capacity:              {:>9.2} (goal >= 0.5)", hub_rate / raw_rate);
    println!(
        "  concurrent refreshes of one grant:     {:>9} (must be 1); invalid_grant answers: {}",
        stats.max_concurrent_refreshes_per_grant,
        stats.invalid_grants - invalid_before
    );
    println!("  peak RSS of the hub process during the run: {}", mib(hub_peak));

    if options.idle_connections > 0 {
        idle_rss(options.idle_connections, dir.path(), options.database_url.as_deref()).await?;
    }
    Ok(())
}

/// Creates `count` grants through the consent flow (auto-approved) and the code exchange.
async fn mint(
    http: &reqwest::Client,
    endpoints: &sim::ProviderEndpoints,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<String>> {
    let redirect = "http://127.0.0.1/bench/callback";
    let authorize = format!(
        "{}?response_type=code&client_id={}&redirect_uri={}&scope=offline_access%20accounting.transactions&state=bench",
        endpoints.authorize_url,
        endpoints.client_id,
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    let work = (0..count).map(|_| {
        let (http, authorize, endpoints) = (http.clone(), authorize.clone(), endpoints.clone());
        async move {
            let consent = http.get(&authorize).send().await?;
            let location = consent
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .context("no redirect from consent")?;
            let code = url::Url::parse(location)?
                .query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
                .context("no code in the redirect")?;
            let tokens: serde_json::Value = http
                .post(&endpoints.token_url)
                .basic_auth(&endpoints.client_id, Some(&endpoints.client_secret))
                .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", redirect)])
                .send()
                .await?
                .json()
                .await?;
            tokens["refresh_token"].as_str().map(str::to_owned).context("no refresh token")
        }
    });
    run_concurrently(work, concurrency).await.into_iter().collect()
}

async fn raw_refreshes(
    http: &reqwest::Client,
    endpoints: &sim::ProviderEndpoints,
    tokens: &[String],
    concurrency: usize,
) -> anyhow::Result<usize> {
    let work = tokens.iter().map(|token| {
        let (http, endpoints, token) = (http.clone(), endpoints.clone(), token.clone());
        async move {
            let response = http
                .post(&endpoints.token_url)
                .basic_auth(&endpoints.client_id, Some(&endpoints.client_secret))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", token.as_str())])
                .send()
                .await?;
            let ok = response.status().is_success();
            let _ = response.bytes().await?;
            anyhow::Ok(ok)
        }
    });
    let results = run_concurrently(work, concurrency).await;
    Ok(results.into_iter().filter(|r| matches!(r, Ok(true))).count())
}

/// Runs futures with at most `limit` in flight, keeping their order.
async fn run_concurrently<F, T>(work: impl Iterator<Item = F>, limit: usize) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let semaphore = Arc::new(tokio::sync::Semaphore::new(limit));
    let mut tasks = Vec::new();
    for future in work {
        let permit = Arc::clone(&semaphore).acquire_owned().await.expect("never closed");
        tasks.push(tokio::spawn(async move {
            let out = future.await;
            drop(permit);
            out
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.expect("bench task panicked"));
    }
    out
}

async fn owner(state: &crate::AppState) -> anyhow::Result<Organisation> {
    let (tenant, _) = crate::tenants::create(&*state.store, &*state.clock, "Bench").await?;
    let now = state.clock.now();
    let org = Organisation {
        id: id::generate("org", now.as_millis()),
        tenant_id: tenant.id.clone(),
        name: "Bench".into(),
        external_id: None,
        created_at: now,
        updated_at: now,
    };
    state.store.create_organisation(&org).await?;
    Ok(org)
}

/// A connected Xero connection of `org`, due for a refresh at `now`.
fn connection_row(
    state: &crate::AppState,
    org: &Organisation,
    now: ledgerlink_core::Timestamp,
) -> Connection {
    Connection {
        status: ConnectionStatus::Connected.as_str().into(),
        status_since: now,
        external_account_id: Some(id::generate("acct", now.as_millis())),
        external_account_name: Some("Bench Company".into()),
        access_issued_at: Some(now),
        access_expires_at: Some(now),
        refresh_token_obtained_at: Some(now),
        scope: Some("offline_access".into()),
        token_version: 1,
        next_refresh_at: Some(now),
        connected_at: Some(now),
        linked_at: Some(now),
        ..crate::connections::new_connection(state, org, ledgerlink_core::Provider::Xero, None)
    }
}

/// Fills a database with `count` idle connections, starts `ledgerlink serve` on it, and reads
/// the process's resident memory once it has settled.
async fn idle_rss(count: usize, dir: &std::path::Path, database_url: Option<&str>) -> anyhow::Result<()> {
    let data_dir = dir.join("idle");
    let mut env = vec![
        ("LEDGERLINK_DATA_DIR".to_owned(), data_dir.display().to_string()),
        ("LEDGERLINK_LOG_LEVEL".into(), "warn".into()),
    ];
    if let Some(url) = database_url {
        // A separate schema would be cleaner; a PostgreSQL run reuses the database and adds rows.
        env.push(("LEDGERLINK_DATABASE_URL".into(), url.to_owned()));
    }
    let config = Config::load(&Sources { env: env.iter().cloned().collect(), ..Default::default() })?;
    let state = crate::hub::build(config).await?;
    let org = owner(&state).await?;
    let now = state.clock.now();
    let later = now.saturating_add(Duration::from_secs(24 * 3600));
    // Realistic sizes: a Xero access token is a JWT of about 1.2 KB.
    let sealed_refresh = state.keys.encrypt(&[b'r'; 64], "bench");
    let sealed_access = state.keys.encrypt(&[b'a'; 1200], "bench");
    let started = Instant::now();
    let mut written = 0;
    while written < count {
        let chunk = (count - written).min(10_000);
        let rows: Vec<Connection> = (0..chunk)
            .map(|_| {
                let mut c = connection_row(&state, &org, now);
                c.refresh_token = Some(sealed_refresh.clone());
                c.access_token = Some(sealed_access.clone());
                c.access_expires_at = Some(later);
                c.next_refresh_at = Some(later);
                c
            })
            .collect();
        state.store.import_connections(&rows).await?;
        written += chunk;
    }
    state.store.close().await;
    println!("  stored {count} idle connections in {:.1} s", started.elapsed().as_secs_f64());

    let mut hub = HubProcess::start(&env).await?;
    // Let the engine loop and the heartbeat run a few rounds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pid = hub.pid.to_string();
    println!(
        "  idle hub holding {count} stored connections: RSS {} (peak {}; goal < 200 MB)",
        mib(rss_kib(&pid)),
        mib(peak_rss_kib(&pid))
    );
    hub.stop().await;
    Ok(())
}

/// `ledgerlink serve` as a child process on a free loopback port.
struct HubProcess {
    child: tokio::process::Child,
    pid: u32,
}

impl HubProcess {
    async fn start(env: &[(String, String)]) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .envs(env.iter().cloned())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("Failed to start the hub process")?;
        let pid = child.id().context("the hub process has no pid")?;
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = client.get(format!("http://127.0.0.1:{port}/healthz")).send().await
                && r.status().is_success()
            {
                return Ok(Self { child, pid });
            }
            if Instant::now() > deadline {
                bail!("the hub process did not become ready in 120 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(&mut self) {
        let _ = tokio::process::Command::new("kill").args(["-TERM", &self.pid.to_string()]).status().await;
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.is_err() {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}

fn status_field(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn rss_kib(pid: &str) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

fn peak_rss_kib(pid: &str) -> Option<u64> {
    status_field(pid, "VmHWM:")
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "unknown".into(), |k| format!("{:.1} MB", k as f64 / 1024.0))
}

// ---------------------------------------------------------------------------------------------
// bench webconnector

#[derive(Clone, Debug)]
pub struct WebconnectorBench {
    pub jobs: usize,
    pub concurrency: usize,
    /// Seconds each parser is timed for.
    pub parse_seconds: f64,
    pub database_url: Option<String>,
}

/// Stands for the `requestID` in the request and response templates.
const REQUEST_ID_SLOT: &str = "ledgerlink-bench-request-id";
const CUSTOMERS_PER_RESPONSE: usize = 100;
const BENCH_USERNAME: &str = "bench";
const BENCH_PASSWORD: &str = "bench password, not a secret";

/// What an app queues: all active customers, at most 100, no iterator.
fn customer_query(request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<?qbxml version=\"13.0\"?>\n<QBXML>\n  \
         <QBXMLMsgsRq onError=\"stopOnError\">\n    <CustomerQueryRq requestID=\"{request_id}\">\n      \
         <MaxReturned>{CUSTOMERS_PER_RESPONSE}</MaxReturned>\n      <ActiveStatus>ActiveOnly</ActiveStatus>\n    \
         </CustomerQueryRq>\n  </QBXMLMsgsRq>\n</QBXML>\n"
    )
}

/// A text with one `requestID` slot, filled in per exchange.
#[derive(Clone, Debug)]
struct Template {
    head: String,
    tail: String,
}

impl Template {
    fn new(text: &str) -> anyhow::Result<Self> {
        let (head, tail) = text.split_once(REQUEST_ID_SLOT).context("the template has no requestID slot")?;
        if tail.contains(REQUEST_ID_SLOT) {
            bail!("the template has more than one requestID slot");
        }
        Ok(Self { head: head.to_owned(), tail: tail.to_owned() })
    }

    fn fill(&self, request_id: &str) -> String {
        let mut out = String::with_capacity(self.head.len() + request_id.len() + self.tail.len());
        out.push_str(&self.head);
        out.push_str(request_id);
        out.push_str(&self.tail);
        out
    }
}

/// The answer a Reckon Accounts file gives to [`customer_query`]: 100 `CustomerRet` from the
/// sandbox's generated company file, exactly as the desktop simulator writes them.
fn customer_query_response() -> anyhow::Result<String> {
    let options = ledgerlink_sandbox::reckon::CompanyOptions {
        customers: CUSTOMERS_PER_RESPONSE,
        inactive_customers: 0,
        invoices: 0,
        ..Default::default()
    };
    let mut company = ledgerlink_sandbox::reckon::CompanyFile::generate(&options);
    let now = ledgerlink_core::Timestamp::from_millis(1_795_370_400_000);
    let xml = company
        .process(&customer_query(REQUEST_ID_SLOT), now)
        .map_err(|e| anyhow::anyhow!("the simulated company file refused the query: {e:?}"))?;
    let records = ledgerlink_qbxml::bench_support::parsed_record_count(&xml);
    if records != CUSTOMERS_PER_RESPONSE {
        bail!("the simulated company file returned {records} customers, not {CUSTOMERS_PER_RESPONSE}");
    }
    Ok(xml)
}

/// The desktop end of one Reckon connection, as the benchmark client plays it.
#[derive(Clone, Debug)]
struct Desk {
    endpoint: String,
    connection_id: String,
    /// The POST body around the `requestID`: `{"qbXMLResponse": "…", "connectorId": …}`,
    /// JSON-escaped once so the client spends its time on HTTP, as the real one would.
    body: Arc<Template>,
}

impl Desk {
    fn new(endpoint: String, connection_id: String, response: &str) -> anyhow::Result<Self> {
        let json = serde_json::to_string(&ledgerlink_sandbox::reckon::CallbackRequest {
            qbxml_response: response.to_owned(),
            connector_id: connection_id.clone(),
            error_code: String::new(),
            error_msg: String::new(),
        })?;
        Ok(Self { endpoint, connection_id, body: Arc::new(Template::new(&json)?) })
    }
}

#[derive(Default)]
struct DeskRun {
    exchanges: usize,
    get: Vec<Duration>,
    post: Vec<Duration>,
}

/// The RWC's loop for one connection: GET, answer, POST, and again at once while the web
/// application asks for a repeat. One exchange at a time, as the RWC does.
async fn drive(http: reqwest::Client, desk: Desk) -> anyhow::Result<DeskRun> {
    let mut run = DeskRun::default();
    let mut state = String::new();
    loop {
        let url = format!("{}?id={}&state={state}", desk.endpoint, desk.connection_id);
        let started = Instant::now();
        let response = http.get(&url).basic_auth(BENCH_USERNAME, Some(BENCH_PASSWORD)).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        run.get.push(started.elapsed());
        if !status.is_success() {
            bail!("GET {url} answered {status}: {}", String::from_utf8_lossy(&body));
        }
        let handout: ledgerlink_sandbox::reckon::InitiateResponse =
            serde_json::from_slice(&body).context("Failed to read the GET's answer")?;
        if handout.qbxml_request.is_empty() {
            return Ok(run);
        }
        let request_id = handout
            .qbxml_request
            .split_once("requestID=\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(id, _)| id)
            .context("the handed-out qbXML has no requestID")?;
        let answer = desk.body.fill(request_id);
        let started = Instant::now();
        let response = http
            .post(&handout.post_url)
            .basic_auth(BENCH_USERNAME, Some(BENCH_PASSWORD))
            .header("Content-Type", "application/json")
            .body(answer)
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        run.post.push(started.elapsed());
        if !status.is_success() {
            bail!("POST {} answered {status}: {}", handout.post_url, String::from_utf8_lossy(&body));
        }
        let answer: ledgerlink_sandbox::reckon::CallbackResponse =
            serde_json::from_slice(&body).context("Failed to read the POST's answer")?;
        run.exchanges += 1;
        if !answer.repeat_communication {
            return Ok(run);
        }
        state = answer.state;
    }
}

struct DriveFigures {
    exchanges: usize,
    secs: f64,
    get: Vec<Duration>,
    post: Vec<Duration>,
}

impl DriveFigures {
    fn rate(&self) -> f64 {
        self.exchanges as f64 / self.secs
    }

    fn print(&self, label: &str) {
        println!("  {label:<38}{:>9.0} exchanges/s ({} in {:.2} s)", self.rate(), self.exchanges, self.secs);
        println!(
            "    latency: GET p50 {}, p99 {}; POST p50 {}, p99 {}",
            millis(percentile(&self.get, 0.50)),
            millis(percentile(&self.get, 0.99)),
            millis(percentile(&self.post, 0.50)),
            millis(percentile(&self.post, 0.99)),
        );
    }
}

/// Every desk's loop at once, until each has no more work.
async fn drive_all(http: &reqwest::Client, desks: &[Desk]) -> anyhow::Result<DriveFigures> {
    let started = Instant::now();
    let tasks: Vec<_> = desks.iter().map(|desk| tokio::spawn(drive(http.clone(), desk.clone()))).collect();
    let mut figures = DriveFigures { exchanges: 0, secs: 0.0, get: Vec::new(), post: Vec::new() };
    for task in tasks {
        let run = task.await.context("a client loop panicked")??;
        figures.exchanges += run.exchanges;
        figures.get.extend(run.get);
        figures.post.extend(run.post);
    }
    figures.secs = started.elapsed().as_secs_f64();
    Ok(figures)
}

fn percentile(samples: &[Duration], q: f64) -> Option<Duration> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let last = sorted.len().checked_sub(1)?;
    sorted.get(((last as f64) * q).round() as usize).copied()
}

fn millis(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{:.2} ms", d.as_secs_f64() * 1000.0))
}

pub async fn webconnector(options: WebconnectorBench) -> anyhow::Result<()> {
    if options.jobs == 0 || options.concurrency == 0 {
        bail!("--jobs and --concurrency must be at least 1");
    }
    if !(options.parse_seconds > 0.0 && options.parse_seconds.is_finite()) {
        bail!("--parse-seconds must be a positive number");
    }
    let (n, c) = (options.jobs, options.concurrency);
    let backend = options.database_url.as_deref().map_or("SQLite (WAL, synchronous=FULL)", |_| "PostgreSQL");
    println!("ledgerlink bench webconnector: {n} jobs, concurrency {c}, {backend}");
    let response = customer_query_response()?;
    println!(
        "  each answer: CustomerQueryRs with {CUSTOMERS_PER_RESPONSE} CustomerRet, {:.1} KB (sandbox company file)",
        response.len() as f64 / 1024.0
    );
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;

    // Baseline: the same client loop against a server that answers the same JSON from memory.
    // It is quick, so it runs the same jobs again until it has run for a second.
    let mut raw = DriveFigures { exchanges: 0, secs: 0.0, get: Vec::new(), post: Vec::new() };
    let mut passes = 0;
    while passes == 0 || (raw.secs < 1.0 && passes < 20) {
        let baseline = Baseline::start(n, c).await?;
        let desks = (0..c)
            .map(|i| Desk::new(baseline.endpoint.clone(), format!("con_bench{i}"), &response))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let pass = drive_all(&http, &desks).await?;
        baseline.shutdown.cancel();
        if pass.exchanges != n {
            bail!("the baseline exchanged {} of {n} jobs", pass.exchanges);
        }
        raw.exchanges += pass.exchanges;
        raw.secs += pass.secs;
        raw.get.extend(pass.get);
        raw.post.extend(pass.post);
        passes += 1;
    }
    raw.print("baseline (same JSON, no storage):");

    // The hub: an in-process `serve` with its durable storage, set up through its own API.
    let dir = tempfile::tempdir().context("Failed to create a temporary directory")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let mut env = vec![
        ("LEDGERLINK_DATA_DIR".to_owned(), dir.path().join("hub").display().to_string()),
        ("LEDGERLINK_PUBLIC_URL".into(), base.clone()),
        ("LEDGERLINK_LOG_LEVEL".into(), "warn".into()),
    ];
    if let Some(url) = &options.database_url {
        env.push(("LEDGERLINK_DATABASE_URL".into(), url.clone()));
    }
    let config = Config::load(&Sources { env: env.into_iter().collect(), ..Default::default() })?;
    let state = crate::hub::build(config).await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(crate::run(listener, state.clone(), shutdown.clone()));
    let result = hub_exchanges(&state, &http, &base, n, c, &response).await;
    shutdown.cancel();
    let _ = server.await;
    state.store.close().await;
    let (hub, done) = result?;
    hub.print("hub (GET + POST, durable):");
    println!("  {:<38}{:>9.3}", "ratio hub / baseline:", hub.rate() / raw.rate());
    println!("  {:<38}{done:>9} of {n} (must be all)", "jobs done holding their response:");

    parser_throughput(response, options.parse_seconds).await
}

/// Sets the hub up through its API, queues `n` jobs over `c` connections, exchanges them all,
/// and checks in the store that every job is done with its answer.
async fn hub_exchanges(
    state: &crate::AppState,
    http: &reqwest::Client,
    base: &str,
    n: usize,
    c: usize,
    response: &str,
) -> anyhow::Result<(DriveFigures, usize)> {
    let (tenant, key) = crate::tenants::create(&*state.store, &*state.clock, "Bench").await?;
    let key = key.expose().to_owned();
    let api = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        let request = http.request(method, format!("{base}{path}")).bearer_auth(&key).json(&body);
        async move {
            let response = request.send().await?;
            let status = response.status();
            let body: serde_json::Value = response.json().await?;
            if !status.is_success() {
                bail!("{status}: {body}");
            }
            anyhow::Ok(body)
        }
    };
    let org = api(reqwest::Method::POST, "/v1/organisations", serde_json::json!({"name": "Bench"}))
        .await
        .context("Failed to create the organisation")?;
    let org_id = org["id"].as_str().context("no organisation id")?;
    let mut desks = Vec::with_capacity(c);
    for _ in 0..c {
        let conn = api(
            reqwest::Method::POST,
            &format!("/v1/organisations/{org_id}/connections"),
            serde_json::json!({"provider": "reckon", "username": BENCH_USERNAME, "password": BENCH_PASSWORD}),
        )
        .await
        .context("Failed to create a reckon connection")?;
        let id = conn["id"].as_str().context("no connection id")?.to_owned();
        let endpoint =
            conn["webconnector"]["endpoint_url"].as_str().context("no web connector endpoint")?.to_owned();
        desks.push(Desk::new(endpoint, id, response)?);
    }

    let started = Instant::now();
    let query = customer_query("1");
    let work = (0..n).map(|i| {
        let path = format!("/v1/connections/{}/qbxml", desks[i % c].connection_id);
        let request = api(reqwest::Method::POST, &path, serde_json::json!({"qbxml": query}));
        async move { request.await.context("Failed to queue a job") }
    });
    for queued in run_concurrently(work, 16).await {
        queued?;
    }
    println!("  queued {n} jobs through the API in {:.1} s", started.elapsed().as_secs_f64());

    let figures = drive_all(http, &desks).await?;

    // Every job must be done and hold exactly the answer to its own requestID.
    let template = Template::new(response)?;
    let mut done = 0;
    let mut wrong = Vec::new();
    for desk in &desks {
        let mut after: Option<String> = None;
        loop {
            let page = state.store.list_jobs(&tenant.id, &desk.connection_id, after.as_deref(), 100).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for job in &page {
                let responses: Vec<String> = serde_json::from_str(&job.responses).unwrap_or_default();
                let expected = template.fill(&format!("{}-0", job.id));
                if job.status == "done" && responses.len() == 1 && responses[0] == expected {
                    done += 1;
                } else {
                    wrong.push(format!("{} ({}, {} responses)", job.id, job.status, responses.len()));
                }
            }
        }
    }
    if done != n || !wrong.is_empty() {
        bail!(
            "only {done} of {n} jobs are done holding their response; {} are not, e.g. {:?}",
            wrong.len(),
            wrong.iter().take(5).collect::<Vec<_>>()
        );
    }
    if figures.exchanges != n {
        bail!("{} exchanges for {n} jobs", figures.exchanges);
    }
    Ok((figures, done))
}

/// A web application that answers the RWC's two calls with the same JSON as the hub, from
/// memory: no storage, no qbXML parsing, no password hashing.
struct Baseline {
    endpoint: String,
    shutdown: tokio_util::sync::CancellationToken,
}

struct BaselineState {
    base: String,
    request: Template,
    /// Jobs left per connection id.
    remaining: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    next: std::sync::atomic::AtomicU64,
}

#[derive(serde::Deserialize)]
struct BaselineParams {
    id: Option<String>,
    exchange: Option<String>,
}

impl Baseline {
    async fn start(jobs: usize, connections: usize) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let remaining = (0..connections)
            .map(|i| (format!("con_bench{i}"), jobs / connections + usize::from(i < jobs % connections)))
            .collect();
        let state = Arc::new(BaselineState {
            base: base.clone(),
            request: Template::new(&customer_query(REQUEST_ID_SLOT))?,
            remaining: std::sync::Mutex::new(remaining),
            next: std::sync::atomic::AtomicU64::new(1),
        });
        let router = axum::Router::new()
            .route(crate::webconnector::ENDPOINT_PATH, axum::routing::get(baseline_poll))
            .route(crate::webconnector::RESULT_PATH, axum::routing::post(baseline_result))
            .with_state(state);
        let shutdown = tokio_util::sync::CancellationToken::new();
        let stopping = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, router).with_graceful_shutdown(stopping.cancelled_owned()).await
        });
        Ok(Self { endpoint: format!("{base}{}", crate::webconnector::ENDPOINT_PATH), shutdown })
    }
}

async fn baseline_poll(
    axum::extract::State(state): axum::extract::State<Arc<BaselineState>>,
    axum::extract::Query(params): axum::extract::Query<BaselineParams>,
    headers: axum::http::HeaderMap,
) -> Result<axum::Json<crate::webconnector::Handout>, axum::http::StatusCode> {
    use axum::http::StatusCode;
    if !headers.contains_key("authorization") {
        return Err(StatusCode::UNAUTHORIZED);
    }
    let id = params.id.unwrap_or_default();
    let left = state.remaining.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&id).copied();
    let (exchange, qbxml_request) = match left {
        None => return Err(StatusCode::UNAUTHORIZED),
        Some(0) => ("none".to_owned(), String::new()),
        Some(_) => {
            let n = state.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (format!("x{n}"), state.request.fill(&format!("job_{n:026}-0")))
        }
    };
    Ok(axum::Json(crate::webconnector::Handout {
        post_url: format!("{}{}?id={id}&exchange={exchange}", state.base, crate::webconnector::RESULT_PATH),
        qbxml_request,
        try_again_in: 0,
    }))
}

async fn baseline_result(
    axum::extract::State(state): axum::extract::State<Arc<BaselineState>>,
    axum::extract::Query(params): axum::extract::Query<BaselineParams>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<axum::Json<crate::webconnector::CallbackAnswer>, axum::http::StatusCode> {
    use axum::http::StatusCode;
    if !headers.contains_key("authorization") {
        return Err(StatusCode::UNAUTHORIZED);
    }
    let callback: crate::webconnector::Callback =
        serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
    if callback.qbxml_response.is_empty() || params.exchange.as_deref().is_none_or(|e| e == "none") {
        return Err(StatusCode::BAD_REQUEST);
    }
    let id = params.id.unwrap_or_default();
    let mut remaining = state.remaining.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let left = remaining.get_mut(&id).ok_or(StatusCode::UNAUTHORIZED)?;
    *left = left.saturating_sub(1);
    Ok(axum::Json(crate::webconnector::CallbackAnswer {
        repeat_communication: *left > 0,
        state: String::new(),
    }))
}

/// The qbXML response parser beside a bare quick-xml event loop over the same bytes: rounds
/// of each in turn, so a noisy neighbour slows all three alike.
async fn parser_throughput(xml: String, seconds: f64) -> anyhow::Result<()> {
    use ledgerlink_qbxml::bench_support::{bare_event_count, parsed_record_count};

    fn parse_and_read_records(xml: &str) -> usize {
        let Ok(doc) = ledgerlink_qbxml::ResponseDocument::parse(xml) else { return 0 };
        let mut records = 0;
        for response in doc.responses() {
            for record in response.records() {
                records += usize::from(!record.raw().is_empty());
            }
        }
        records
    }

    let timed = tokio::task::spawn_blocking(move || {
        let kinds: [fn(&str) -> usize; 3] = [bare_event_count, parsed_record_count, parse_and_read_records];
        // Warm-up, and a check that each does the whole job.
        let counts = kinds.map(|f| f(&xml));
        const ROUNDS: u32 = 10;
        let slice = Duration::from_secs_f64(seconds / f64::from(ROUNDS));
        let mut totals = [(0u64, Duration::ZERO); 3];
        for _ in 0..ROUNDS {
            for (kind, total) in kinds.iter().zip(totals.iter_mut()) {
                let started = Instant::now();
                let mut iterations = 0u64;
                while started.elapsed() < slice {
                    std::hint::black_box(kind(std::hint::black_box(&xml)));
                    iterations += 1;
                }
                total.0 += iterations;
                total.1 += started.elapsed();
            }
        }
        let mb_per_s = totals.map(|(iterations, time)| {
            iterations as f64 * xml.len() as f64 / time.as_secs_f64() / 1_000_000.0
        });
        (counts, mb_per_s, xml.len())
    })
    .await
    .context("the parser benchmark panicked")?;
    let ([events, parsed, read], [bare, parse, parse_read], size) = timed;
    if parsed != CUSTOMERS_PER_RESPONSE || read != CUSTOMERS_PER_RESPONSE {
        bail!("the parser found {parsed} records and read {read}, not {CUSTOMERS_PER_RESPONSE}");
    }
    println!("  qbXML parser, the same answer ({size} bytes, {events} quick-xml events):");
    println!("  {:<38}{bare:>9.1} MB/s", "bare quick-xml event loop:");
    println!("  {:<38}{parse:>9.1} MB/s ({:.2} of bare)", "ResponseDocument::parse:", parse / bare);
    println!("  {:<38}{parse_read:>9.1} MB/s", "parse + read every record:");
    println!("  {:<38}{:>9.2} (goal >= 0.7)", "ratio parser / bare quick-xml:", parse_read / bare);
    Ok(())
}
