//! `ledgerlink bench …`: throughput and memory figures, each printed with the baseline measured
//! in the same run, so a noisy machine moves both.
//!
//! `bench refresh` mints grants at a simulated Xero on loopback, measures how fast a plain HTTP
//! client at the same concurrency can refresh them (the simulator's raw capacity), then how fast
//! the hub's refresh engine refreshes the same number of stored connections, all due at once,
//! with its real durable storage (SQLite with `synchronous=FULL`, or PostgreSQL). It also starts
//! a hub process over a database of idle connections and reads its resident memory.

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
