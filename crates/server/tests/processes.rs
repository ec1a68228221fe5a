//! Whole hub processes: killed mid-refresh, and three of them sharing one PostgreSQL.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Receiver, ServeProcess, Sim, run_cli, verify_standard_webhook};
use ledgerlink_core::SystemClock;
use ledgerlink_sandbox::providers::{FaultUpdate, Provider as SimProvider, Rules};
use serde_json::{Value, json};

fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn fast_rules(access: Duration) -> Rules {
    let mut rules = Rules::fast().with_xero_grace_period(Duration::from_secs(120));
    for p in SimProvider::ALL {
        rules = rules
            .with_access_token_lifetime(p, access)
            .with_refresh_token_lifetime(p, Duration::from_secs(900));
    }
    rules
}

async fn tenant_key(env: &[(String, String)], dir: &std::path::Path) -> String {
    let output = run_cli(&["tenant", "create", "Acme", "--json"], &refs(env), dir);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    created["api_key"].as_str().unwrap().to_owned()
}

async fn api(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Creates a connection through `base` and completes its consent (auto-approved).
async fn connect(client: &reqwest::Client, base: &str, key: &str, org: &str, provider: &str) -> String {
    let (status, created) = api(
        client,
        reqwest::Method::POST,
        format!("{base}/v1/organisations/{org}/connections"),
        key,
        Some(json!({"provider": provider})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let page = client.get(created["authorize_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(page.status(), 200, "{}", page.text().await.unwrap());
    created["id"].as_str().unwrap().to_owned()
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_between_sending_a_refresh_and_storing_it_recovers_after_restart() {
    let sim = Sim::start(Arc::new(SystemClock), fast_rules(Duration::from_secs(4))).await;
    let dir = tempfile::tempdir().unwrap();
    let env = sim.env();
    let key = tenant_key(&env, dir.path()).await;
    let mut hub = ServeProcess::start(&[], &refs(&env), dir.path()).await;
    let client = reqwest::Client::new();
    let (_, org) = api(
        &client,
        reqwest::Method::POST,
        format!("{}/v1/organisations", hub.base),
        &key,
        Some(json!({"name": "A"})),
    )
    .await;
    let id = connect(&client, &hub.base, &key, org["id"].as_str().unwrap(), "xero").await;

    // The next refresh is processed by Xero (the token rotates) but its answer is held back…
    sim.sim
        .set_faults(SimProvider::Xero, FaultUpdate { token_delay_ms: Some(5_000), ..Default::default() })
        .unwrap();
    let requests = sim.sim.stats(SimProvider::Xero).token_requests;
    wait_until("the hub sends a refresh", Duration::from_secs(15), || async {
        sim.sim.stats(SimProvider::Xero).token_requests > requests
    })
    .await;
    // …and the hub dies before it arrives.
    hub.child.kill().unwrap();
    hub.child.wait().unwrap();
    sim.sim.clear_faults(SimProvider::Xero);
    let refreshes_before_restart = sim.sim.stats(SimProvider::Xero).refreshes;

    let mut hub = ServeProcess::start(&[], &refs(&env), dir.path()).await;
    let token_url = format!("{}/v1/connections/{id}/access-token", hub.base);
    wait_until("the restarted hub recovers the connection", Duration::from_secs(30), || async {
        sim.sim.stats(SimProvider::Xero).refreshes > refreshes_before_restart + 1
    })
    .await;
    let (status, token) = api(&client, reqwest::Method::GET, token_url, &key, None).await;
    assert_eq!(status, 200, "{token}");
    let (_, connection) =
        api(&client, reqwest::Method::GET, format!("{}/v1/connections/{id}", hub.base), &key, None).await;
    assert_eq!(connection["status"], "connected", "{connection}");
    let stats = sim.sim.stats(SimProvider::Xero);
    assert_eq!(stats.invalid_grants, 0, "the old refresh token was retried inside Xero's grace period");
    assert!(hub.stderr().contains("outcome was unknown"), "{}", hub.stderr());
    assert!(hub.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_in_the_outbox_of_a_killed_hub_are_delivered_after_restart_and_alerts_are_logged() {
    let sim = Sim::start(Arc::new(SystemClock), fast_rules(Duration::from_secs(3))).await;
    let dir = tempfile::tempdir().unwrap();
    let env = sim.env();
    let key = tenant_key(&env, dir.path()).await;
    let mut hub = ServeProcess::start(&["--log-format", "json"], &refs(&env), dir.path()).await;
    let client = reqwest::Client::new();
    // The receiver's port is chosen now but nothing listens yet: deliveries are refused.
    let port = common::free_port();
    let hook_url = format!("http://127.0.0.1:{port}/hooks");
    let (status, sub) = api(
        &client,
        reqwest::Method::POST,
        format!("{}/v1/webhooks", hub.base),
        &key,
        Some(json!({"url": hook_url})),
    )
    .await;
    assert_eq!(status, 201, "{sub}");
    let secret = sub["secret"].as_str().unwrap().to_owned();
    let (_, org) = api(
        &client,
        reqwest::Method::POST,
        format!("{}/v1/organisations", hub.base),
        &key,
        Some(json!({"name": "Harbour Bakery", "external_id": "cld-1234"})),
    )
    .await;
    let id = connect(&client, &hub.base, &key, org["id"].as_str().unwrap(), "xero").await;
    let (_, connection) =
        api(&client, reqwest::Method::GET, format!("{}/v1/connections/{id}", hub.base), &key, None).await;
    let account = connection["external_account"]["id"].as_str().unwrap().to_owned();
    // Revoked at Xero: the next refresh (within seconds) disconnects, with an alert.
    sim.sim.revoke_account(SimProvider::Xero, &account).unwrap();
    let log_url = format!("{}/v1/webhooks/{}/deliveries", hub.base, sub["id"].as_str().unwrap());
    wait_until("both events were tried once", Duration::from_secs(30), || async {
        let (_, log) = api(&client, reqwest::Method::GET, log_url.clone(), &key, None).await;
        log["data"].as_array().is_some_and(|d| d.len() == 2 && d[0]["attempts"].as_i64() >= Some(1))
    })
    .await;
    let alert = hub
        .stdout()
        .lines()
        .chain(hub.stderr().lines())
        .find(|l| l.contains("ledgerlink alert"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no alert line:\n{}\n{}", hub.stdout(), hub.stderr()));
    let alert: Value = serde_json::from_str(&alert).unwrap();
    let fields = &alert; // `--log-format json` flattens the fields into the object.
    assert!(fields["message"].as_str().unwrap().starts_with("ledgerlink alert"), "{alert}");
    assert_eq!(fields["connection_id"], id.as_str());
    assert_eq!(fields["organisation_external_id"], "cld-1234");
    assert_eq!(fields["provider"], "xero");
    assert_eq!(fields["external_account_id"], account.as_str());
    assert_eq!(fields["status"], "disconnected");
    assert_eq!(fields["reason"], "authorization_revoked");
    assert!(fields["provider_error"].as_str().unwrap().contains("invalid_grant"), "{alert}");

    hub.child.kill().unwrap();
    hub.child.wait().unwrap();
    let receiver = Receiver::serve(tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap());
    let hub = ServeProcess::start(&[], &refs(&env), dir.path()).await;
    wait_until("the restarted hub delivers both events", Duration::from_secs(45), || async {
        receiver.received().len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = receiver.received();
    let types: Vec<Value> = got.iter().map(|r| r.json()["type"].clone()).collect();
    assert_eq!(
        types,
        [json!("connection.connected"), json!("connection.disconnected")],
        "once each, in order"
    );
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    for delivery in &got {
        verify_standard_webhook(&secret, delivery, now).unwrap();
    }
    drop(hub);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hubs_on_one_postgres_refresh_1000_connections_without_overlap_or_loss() {
    let sim = Sim::start(Arc::new(SystemClock), fast_rules(Duration::from_secs(10))).await;
    let database = ledgerlink_testkit::postgres_database().await;
    let mut env = sim.env();
    env.push(("LEDGERLINK_DATABASE_URL".into(), database));
    env.push(("LEDGERLINK_ENCRYPTION_KEY".into(), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into()));
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let key = tenant_key(&env, dirs[0].path()).await;
    let mut hubs = Vec::new();
    for dir in &dirs {
        hubs.push(ServeProcess::start(&[], &refs(&env), dir.path()).await);
    }
    let bases: Vec<String> = hubs.iter().map(|h| h.base.clone()).collect();
    let client = reqwest::Client::new();
    let (_, org) = api(
        &client,
        reqwest::Method::POST,
        format!("{}/v1/organisations", bases[0]),
        &key,
        Some(json!({"name": "A"})),
    )
    .await;
    let org = org["id"].as_str().unwrap().to_owned();

    // 1,000 connections, created and authorised through all three hubs.
    let mut ids = Vec::new();
    for chunk in (0..1000).collect::<Vec<usize>>().chunks(25) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|i| {
                let (client, base, key, org) =
                    (client.clone(), bases[i % 3].clone(), key.clone(), org.clone());
                let provider = ["xero", "quickbooks", "myob"][i % 3];
                tokio::spawn(async move { connect(&client, &base, &key, &org, provider).await })
            })
            .collect();
        for task in tasks {
            ids.push(task.await.unwrap());
        }
    }
    // Several token lifetimes with all three engines competing for every connection.
    tokio::time::sleep(Duration::from_secs(35)).await;

    for provider in SimProvider::ALL {
        let stats = sim.sim.stats(provider);
        assert_eq!(
            stats.concurrent_refresh_violations, 0,
            "{provider}: a connection was refreshed concurrently"
        );
        assert!(stats.max_concurrent_refreshes_per_grant <= 1, "{provider}");
        assert_eq!(stats.invalid_grants, 0, "{provider}: a refresh token was lost");
        let idle: Vec<_> = stats.grants.iter().filter(|g| g.refreshes < 2).collect();
        assert!(idle.is_empty(), "{provider}: {} grants were refreshed fewer than twice", idle.len());
    }
    for status in ["disconnected", "degraded", "pending"] {
        let (_, list) = api(
            &client,
            reqwest::Method::GET,
            format!("{}/v1/connections?status={status}", bases[1]),
            &key,
            None,
        )
        .await;
        assert_eq!(list["data"], json!([]), "no connection is {status}");
    }
    for (i, id) in ids.iter().enumerate().step_by(20) {
        let (status, token) = api(
            &client,
            reqwest::Method::GET,
            format!("{}/v1/connections/{id}/access-token", bases[i % 3]),
            &key,
            None,
        )
        .await;
        assert_eq!(status, 200, "{token}");
    }
    for hub in &mut hubs {
        assert!(hub.terminate().success(), "{}", hub.stderr());
    }
}
