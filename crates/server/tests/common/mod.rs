//! Test helpers: an in-process hub on a random port with its own database, and the real
//! `ledgerlink` binary run as a child process.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledgerlink_server::config::{Config, Sources};
use ledgerlink_server::{AppState, hub};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a hub keeps its state; reused to restart a hub on the same data.
pub struct Storage {
    pub dir: tempfile::TempDir,
    pub database_url: Option<String>,
}

impl Storage {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(ledgerlink_testkit::postgres_database().await),
        };
        Self { dir, database_url }
    }

    pub fn config(&self, extra: &[(&str, &str)]) -> Config {
        let owned: Vec<(String, String)> =
            extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.config_owned(&owned)
    }

    pub fn config_owned(&self, extra: &[(String, String)]) -> Config {
        let mut env: std::collections::BTreeMap<String, String> = [
            ("LEDGERLINK_LISTEN".to_string(), "127.0.0.1:0".to_string()),
            ("LEDGERLINK_DATA_DIR".into(), self.dir.path().join("data").display().to_string()),
        ]
        .into();
        if let Some(url) = &self.database_url {
            env.insert("LEDGERLINK_DATABASE_URL".into(), url.clone());
        }
        for (k, v) in extra {
            env.insert(k.clone(), v.clone());
        }
        Config::load(&Sources { env, ..Default::default() }).unwrap()
    }
}

pub struct TestHub {
    pub base: String,
    pub state: AppState,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestHub {
    pub async fn start(storage: &Storage) -> Self {
        Self::start_with(storage, &[]).await
    }

    pub async fn start_with(storage: &Storage, extra: &[(&str, &str)]) -> Self {
        let owned: Vec<(String, String)> =
            extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self::start_custom(storage, &owned, Arc::new(ledgerlink_core::SystemClock), true).await
    }

    /// A hub with the given clock; `background: false` leaves the refresh engine to the test
    /// (`state.engine.run_due_once()`), which keeps manual-clock tests deterministic.
    pub async fn start_custom(
        storage: &Storage,
        extra: &[(String, String)],
        clock: Arc<dyn ledgerlink_core::Clock>,
        background: bool,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut extra = extra.to_vec();
        extra.push(("LEDGERLINK_PUBLIC_URL".into(), base.clone()));
        let state = hub::build_with_clock(storage.config_owned(&extra), clock).await.unwrap();
        let shutdown = CancellationToken::new();
        let server = if background {
            tokio::spawn(ledgerlink_server::run(listener, state.clone(), shutdown.clone()))
        } else {
            tokio::spawn(ledgerlink_server::serve_api(listener, state.clone(), shutdown.clone()))
        };
        Self { base, state, client: reqwest::Client::new(), shutdown, server }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.server.await.unwrap().unwrap();
        self.state.store.close().await;
    }

    /// A new tenant's API key.
    pub async fn tenant(&self, name: &str) -> String {
        let (_, key) =
            ledgerlink_server::tenants::create(&*self.state.store, &*self.state.clock, name).await.unwrap();
        key.expose().to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let json =
            if text.is_empty() { serde_json::Value::Null } else { serde_json::from_str(&text).unwrap() };
        (status, json)
    }
}

/// Expands one async test body into a SQLite and a PostgreSQL test.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($backend:ident: Backend) $body:block)*) => {
        $(async fn $name($backend: common::Backend) $body)*

        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::$name(super::common::Backend::Sqlite).await })*
        }

        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::$name(super::common::Backend::Postgres).await })*
        }
    };
}

/// The `ledgerlink` binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ledgerlink"))
}

/// Runs `ledgerlink` to completion with only the given `LEDGERLINK_*` variables.
pub fn run_cli(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> std::process::Output {
    let mut command = Command::new(binary());
    command.args(args).current_dir(cwd).stdin(Stdio::null());
    clear_ledgerlink_env(&mut command);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn clear_ledgerlink_env(command: &mut Command) {
    for (key, _) in std::env::vars() {
        if key.starts_with("LEDGERLINK_") {
            command.env_remove(key);
        }
    }
}

/// `ledgerlink serve` as a child process, its output captured in files.
pub struct ServeProcess {
    pub child: Child,
    pub base: String,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl ServeProcess {
    pub async fn start(args: &[&str], env: &[(&str, &str)], dir: &Path) -> Self {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let stdout_path = dir.join(format!("serve-{port}.out"));
        let stderr_path = dir.join(format!("serve-{port}.err"));
        let mut command = Command::new(binary());
        command
            .arg("serve")
            .args(args)
            .args(["--listen", &listen])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        clear_ledgerlink_env(&mut command);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut process = Self {
            child: command.spawn().unwrap(),
            base: format!("http://{listen}"),
            stdout_path,
            stderr_path,
        };
        process.wait_ready().await;
        process
    }

    async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("ledgerlink serve exited early ({status}):\n{}", self.stderr());
            }
            if let Ok(r) = client.get(format!("{}/healthz", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("ledgerlink serve did not become ready:\n{}", self.stderr());
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "ledgerlink did not stop within 30 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The provider simulators served on their own port, as the real providers would be.
pub struct Sim {
    pub sim: ledgerlink_sandbox::providers::Simulator,
    pub base: String,
}

impl Sim {
    pub async fn start(
        clock: Arc<dyn ledgerlink_core::Clock>,
        rules: ledgerlink_sandbox::providers::Rules,
    ) -> Self {
        let sim = ledgerlink_sandbox::providers::Simulator::new(clock, rules);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = ledgerlink_sandbox::providers::router(sim.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { sim, base }
    }

    /// `LEDGERLINK_PROVIDERS_*` variables pointing every OAuth provider at this simulator.
    pub fn env(&self) -> Vec<(String, String)> {
        let endpoints = ledgerlink_sandbox::providers::Simulator::endpoints(&self.base);
        let mut env = Vec::new();
        for (name, e) in
            [("XERO", &endpoints.xero), ("QUICKBOOKS", &endpoints.quickbooks), ("MYOB", &endpoints.myob)]
        {
            let mut set = |key: &str, value: &str| {
                env.push((format!("LEDGERLINK_PROVIDERS_{name}_{key}"), value.to_owned()))
            };
            set("CLIENT_ID", &e.client_id);
            set("CLIENT_SECRET", &e.client_secret);
            set("AUTHORIZE_URL", &e.authorize_url);
            set("TOKEN_URL", &e.token_url);
            set("CONNECTIONS_URL", &e.connections_url);
            set("API_BASE_URL", &e.api_base_url);
            set("REVOKE_URL", e.revoke_url.as_deref().unwrap_or(""));
        }
        env
    }
}

/// A webhook receiver: records every POST, and answers 503 while it is "down".
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    received: Arc<std::sync::Mutex<Vec<Received>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener)
    }

    /// Serves on an already bound listener (to come up on a port chosen earlier).
    pub fn serve(listener: tokio::net::TcpListener) -> Self {
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let receiver = Self { url, received: Arc::default(), down: Arc::default() };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    if state.down.load(std::sync::atomic::Ordering::SeqCst) {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let header = |name: &str| {
                        headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
                    };
                    state.received.lock().unwrap().push(Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body,
                    });
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// Verifies a delivery as a receiver would, written from the Standard Webhooks specification
/// (not with the hub's code): the signed content is `{webhook-id}.{webhook-timestamp}.{body}`,
/// the key is the base64-decoded part of the secret after `whsec_`, the header lists
/// space-separated `v1,<base64 HMAC-SHA256>` signatures of which one must match, and the
/// timestamp must be within five minutes of `now_secs`.
pub fn verify_standard_webhook(secret: &str, delivery: &Received, now_secs: i64) -> Result<(), String> {
    use base64::Engine as _;
    use hmac::Mac as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(secret.strip_prefix("whsec_").ok_or("the secret lacks the whsec_ prefix")?)
        .map_err(|e| format!("secret is not base64: {e}"))?;
    let timestamp: i64 = delivery.timestamp.parse().map_err(|_| "webhook-timestamp is not an integer")?;
    if (now_secs - timestamp).abs() > 300 {
        return Err(format!("timestamp {timestamp} is too far from now ({now_secs})"));
    }
    if delivery.id.is_empty() {
        return Err("no webhook-id".into());
    }
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", delivery.id, delivery.timestamp, delivery.body).as_bytes());
    let expected = mac.finalize().into_bytes();
    for candidate in delivery.signature.split(' ') {
        let Some(("v1", encoded)) = candidate.split_once(',') else { continue };
        let Ok(given) = b64.decode(encoded) else { continue };
        // Constant-time comparison.
        if given.len() == expected.len()
            && given.iter().zip(expected.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
        {
            return Ok(());
        }
    }
    Err(format!("no v1 signature in {:?} matches", delivery.signature))
}
