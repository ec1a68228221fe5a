//! Alerts end to end against the provider simulators: webhooks through receiver outages,
//! signatures checked by a verifier written from the spec, disabling after the retry schedule,
//! one email per incident on a local SMTP server, duplicate links, prolonged degradation,
//! metrics.
//!
//! The hub and the simulators share a `ManualClock`; the tests drive the engine, the
//! dispatcher and the senders by hand, so hours of retry schedule pass without sleeping.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Receiver, Sim, Storage, TestHub, verify_standard_webhook};
use ledgerlink_core::{Clock, ManualClock, Timestamp};
use ledgerlink_sandbox::providers::{FaultUpdate, Outage, Provider as SimProvider, Rules};
use ledgerlink_server::webhooks::{RETRY_SCHEDULE, Sender};
use ledgerlink_server::{alerts, email};
use ledgerlink_testkit::smtp::SmtpServer;
use reqwest::Method;
use serde_json::{Value, json};

const START: Timestamp = Timestamp::from_millis(1_795_370_400_000);
/// Longer than any provider's access token: the next engine run refreshes.
const PAST_EXPIRY: Duration = Duration::from_secs(61 * 60);

struct World {
    clock: ManualClock,
    sim: Sim,
    hub: TestHub,
    key: String,
    sender: Sender,
    _storage: Storage,
}

async fn world(backend: common::Backend, env: &[(&str, &str)]) -> World {
    let clock = ManualClock::new(START);
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let sim = Sim::start(shared.clone(), Rules::default().with_auto_approve(true)).await;
    let storage = Storage::new(backend).await;
    let mut all = sim.env();
    all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let hub = TestHub::start_custom(&storage, &all, shared, false).await;
    let key = hub.tenant("Acme").await;
    let sender = Sender::new(Duration::from_secs(5)).unwrap();
    World { clock, sim, hub, key, sender, _storage: storage }
}

impl World {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.hub.call(method, path, &self.key, body).await
    }

    async fn organisation(&self, name: &str, external_id: &str) -> String {
        let (status, org) = self
            .call(Method::POST, "/v1/organisations", Some(json!({"name": name, "external_id": external_id})))
            .await;
        assert_eq!(status, 201, "{org}");
        org["id"].as_str().unwrap().to_owned()
    }

    async fn connect(&self, org: &str, provider: &str) -> Value {
        let (status, created) = self
            .call(
                Method::POST,
                &format!("/v1/organisations/{org}/connections"),
                Some(json!({"provider": provider})),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let page = reqwest::get(created["authorize_url"].as_str().unwrap()).await.unwrap();
        assert_eq!(page.status(), 200, "{}", page.text().await.unwrap());
        let connection = self.connection(created["id"].as_str().unwrap()).await;
        assert_eq!(connection["status"], "connected", "{connection}");
        connection
    }

    async fn connection(&self, id: &str) -> Value {
        let (status, c) = self.call(Method::GET, &format!("/v1/connections/{id}"), None).await;
        assert_eq!(status, 200, "{c}");
        c
    }

    async fn subscribe(&self, url: &str, events: Option<&[&str]>) -> (String, String) {
        let mut body = json!({"url": url});
        if let Some(events) = events {
            body["events"] = json!(events);
        }
        let (status, created) = self.call(Method::POST, "/v1/webhooks", Some(body)).await;
        assert_eq!(status, 201, "{created}");
        (created["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned())
    }

    /// Refreshes what is due, fans events out and attempts due deliveries.
    async fn pump(&self) {
        self.hub.state.engine.run_due_once().await.unwrap();
        alerts::dispatch_once(&self.hub.state).await.unwrap();
        self.sender.deliver_due(&self.hub.state).await.unwrap();
    }

    /// Revokes the account at the provider and lets the hub find out.
    async fn revoke_and_refresh(&self, provider: SimProvider, account: &str) {
        self.sim.sim.revoke_account(provider, account).unwrap();
        self.clock.advance(PAST_EXPIRY);
        self.pump().await;
    }

    fn now_secs(&self) -> i64 {
        self.clock.now().as_millis() / 1000
    }
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

fn account(v: &Value) -> &str {
    v["external_account"]["id"].as_str().unwrap()
}

on_both_backends! {
    async fn webhooks_outlast_a_receiver_outage_and_arrive_once_each_in_order(backend: Backend) {
        let w = world(backend, &[]).await;
        let receiver = Receiver::start().await;
        receiver.set_down(true);
        let (sub, secret) = w.subscribe(&receiver.url, None).await;
        let org = w.organisation("Harbour Bakery", "cld-1234").await;
        let xero = w.connect(&org, "xero").await;
        let qbo = w.connect(&org, "quickbooks").await;
        w.revoke_and_refresh(SimProvider::Xero, account(&xero)).await;
        assert_eq!(w.connection(id(&xero)).await["status"], "disconnected");

        // Down through the first attempts of the retry schedule: 0 s, 5 s, 30 s.
        for wait in &RETRY_SCHEDULE[..2] {
            w.clock.advance(*wait);
            w.pump().await;
        }
        assert!(receiver.received().is_empty());
        receiver.set_down(false);
        w.clock.advance(RETRY_SCHEDULE[2]);
        w.pump().await;
        let delivered_at = w.now_secs();
        w.clock.advance(Duration::from_secs(3600));
        w.pump().await;

        let got = receiver.received();
        let ids: std::collections::HashSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), got.len(), "each delivery once: {got:?}");
        let of = |conn: &Value| -> Vec<String> {
            got.iter()
                .map(|r| r.json())
                .filter(|b| b["data"]["connection"]["id"] == conn["id"])
                .map(|b| b["type"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(of(&xero), ["connection.connected", "connection.disconnected"], "in order: {got:?}");
        assert_eq!(of(&qbo), ["connection.connected"]);
        for delivery in &got {
            verify_standard_webhook(&secret, delivery, delivered_at).unwrap();
        }
        let disconnected = got.iter().map(|r| r.json()).find(|b| b["type"] == "connection.disconnected").unwrap();
        assert_eq!(disconnected["data"]["organisation"]["external_id"], "cld-1234");
        assert_eq!(disconnected["data"]["connection"]["reason"], "authorization_revoked");
        assert_eq!(disconnected["data"]["diagnosis"]["provider_code"], "invalid_grant");
        assert!(disconnected["data"]["diagnosis"]["action"].as_str().unwrap().contains("reconnect"));

        // The delivery log has every attempt.
        let (status, log) = w.call(Method::GET, &format!("/v1/webhooks/{sub}/deliveries"), None).await;
        assert_eq!(status, 200, "{log}");
        let log = log["data"].as_array().unwrap();
        assert_eq!(log.len(), 3);
        assert!(log.iter().all(|d| d["status"] == "delivered"), "{log:?}");
        assert_eq!(log.iter().map(|d| d["attempts"].as_i64().unwrap()).max(), Some(4));
        assert!(log.iter().any(|d| d["last_status"] == 204));
    }

    async fn a_duplicate_link_is_flagged_and_explains_the_older_links_disconnection(backend: Backend) {
        let w = world(backend, &[]).await;
        let first = w.organisation("Harbour Bakery", "cld-1111").await;
        let second = w.organisation("Harbour Bakery Holdings", "cld-2222").await;
        let older = w.connect(&first, "xero").await;
        w.clock.advance(Duration::from_secs(60));
        w.sim.sim
            .set_faults(SimProvider::Xero, FaultUpdate { next_account: Some(account(&older).into()), ..Default::default() })
            .unwrap();
        let newer = w.connect(&second, "xero").await;
        assert_eq!(account(&newer), account(&older));

        let older_view = w.connection(id(&older)).await;
        assert_eq!(older_view["duplicate_of"][0]["id"], id(&newer), "{older_view}");
        assert_eq!(older_view["duplicate_of"][0]["organisation_external_id"], "cld-2222");
        assert!(older_view["warnings"][0].as_str().unwrap().contains("cld-2222"), "{older_view}");
        let newer_view = w.connection(id(&newer)).await;
        assert_eq!(newer_view["duplicate_of"][0]["id"], id(&older));

        let (_, dups) = w.call(Method::GET, "/v1/duplicates", None).await;
        let dups = dups["data"].as_array().unwrap();
        assert_eq!(dups.len(), 1, "{dups:?}");
        assert_eq!(dups[0]["provider"], "xero");
        assert_eq!(dups[0]["external_account"]["id"], account(&older));
        let linked: Vec<&str> = dups[0]["connections"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(linked, [id(&older), id(&newer)], "oldest link first");
        assert!(dups[0]["connections"][0]["linked_at"].is_string());

        for c in [&older, &newer] {
            let (_, events) = w.call(Method::GET, &format!("/v1/connections/{}/events", id(c)), None).await;
            let detected = events["data"].as_array().unwrap().iter().find(|e| e["type"] == "connection.duplicate_detected").cloned().unwrap();
            assert!(detected["duplicate_of"][0]["organisation_external_id"].is_string(), "{detected}");
        }

        // The provider kept only the newer link: the older one's next refresh is refused.
        w.clock.advance(PAST_EXPIRY);
        w.pump().await;
        let gone = w.connection(id(&older)).await;
        assert_eq!(gone["status"], "disconnected", "{gone}");
        assert_eq!(gone["reason"], "superseded_by_duplicate_link");
        let summary = gone["last_error"]["summary"].as_str().unwrap();
        assert!(summary.contains("Harbour Bakery Holdings") && summary.contains("cld-2222"), "{summary}");
        assert_eq!(gone["last_error"]["provider_code"], "invalid_grant");
        assert_eq!(w.connection(id(&newer)).await["status"], "connected");
    }
}

#[tokio::test]
async fn the_reject_policy_refuses_a_second_link_naming_the_other_organisation() {
    let w = world(common::Backend::Sqlite, &[("LEDGERLINK_DUPLICATE_POLICY", "reject")]).await;
    let first = w.organisation("Harbour Bakery", "cld-1111").await;
    let second = w.organisation("Other Bakery", "cld-2222").await;
    let older = w.connect(&first, "xero").await;
    w.sim
        .sim
        .set_faults(
            SimProvider::Xero,
            FaultUpdate { next_account: Some(account(&older).into()), ..Default::default() },
        )
        .unwrap();
    let (_, created) = w
        .call(
            Method::POST,
            &format!("/v1/organisations/{second}/connections"),
            Some(json!({"provider": "xero"})),
        )
        .await;
    let page = reqwest::get(created["authorize_url"].as_str().unwrap()).await.unwrap();
    assert_eq!(page.status(), 409);
    let text = page.text().await.unwrap();
    assert!(text.contains("Harbour Bakery") && text.contains("cld-1111"), "{text}");
    let refused = w.connection(id(&created)).await;
    assert_eq!(refused["status"], "pending");
    assert!(refused["external_account"].is_null());
    assert_eq!(refused["last_error"]["category"], "duplicate_link", "{refused}");
}

#[tokio::test]
async fn a_subscription_failing_for_the_whole_schedule_is_disabled_and_says_so() {
    let w = world(common::Backend::Sqlite, &[]).await;
    let dead = Receiver::start().await;
    dead.set_down(true);
    let watcher = Receiver::start().await;
    let (dead_id, _) = w.subscribe(&dead.url, None).await;
    let (_, watcher_secret) = w.subscribe(&watcher.url, Some(&["webhook.disabled"])).await;
    let org = w.organisation("Harbour Bakery", "cld-1234").await;
    w.connect(&org, "xero").await;
    w.pump().await;
    for wait in RETRY_SCHEDULE {
        let (_, sub) = w.call(Method::GET, &format!("/v1/webhooks/{dead_id}"), None).await;
        assert_eq!(sub["status"], "active", "still retrying");
        w.clock.advance(wait);
        w.pump().await;
    }
    let (_, sub) = w.call(Method::GET, &format!("/v1/webhooks/{dead_id}"), None).await;
    assert_eq!(sub["status"], "disabled", "{sub}");
    assert!(sub["disabled_reason"].as_str().unwrap().contains("10 attempts"));
    let (_, log) = w.call(Method::GET, &format!("/v1/webhooks/{dead_id}/deliveries"), None).await;
    assert_eq!(log["data"][0]["status"], "failed");
    assert_eq!(log["data"][0]["attempts"], 10);
    assert_eq!(log["data"][0]["last_status"], 503);

    // Fixed and enabled again: the failed delivery goes out after all.
    dead.set_down(false);
    let (status, sub) = w.call(Method::POST, &format!("/v1/webhooks/{dead_id}/enable"), None).await;
    assert_eq!(status, 200, "{sub}");
    assert_eq!(sub["status"], "active");
    w.pump().await;
    assert_eq!(dead.received().len(), 1);
    let (status, _) = w.call(Method::POST, &format!("/v1/webhooks/{dead_id}/enable"), None).await;
    assert_eq!(status, 409);

    let got = watcher.received();
    assert_eq!(got.len(), 1, "only the event it subscribed to: {got:?}");
    let event = got[0].json();
    assert_eq!(event["type"], "webhook.disabled");
    assert_eq!(event["data"]["subscription"]["id"], dead_id.as_str());
    verify_standard_webhook(&watcher_secret, &got[0], w.now_secs()).unwrap();
}

#[tokio::test]
async fn a_disconnection_emails_the_organisations_users_once_per_incident() {
    let smtp = SmtpServer::start().await;
    let w = world(
        common::Backend::Sqlite,
        &[("LEDGERLINK_SMTP_URL", &smtp.url()), ("LEDGERLINK_SMTP_FROM", "Hub <hub@example.com>")],
    )
    .await;
    let mailer = email::mailer(&w.hub.state).unwrap().unwrap();
    let org = w.organisation("Boulangerie Émile", "cld-1234").await;
    for (name, email) in [("Ana Owner", "ana@example.com"), ("Zoë Bookkeeper", "zoe@example.com")] {
        let (status, _) = w
            .call(
                Method::POST,
                &format!("/v1/organisations/{org}/users"),
                Some(json!({"name": name, "email": email})),
            )
            .await;
        assert_eq!(status, 201);
    }
    let xero = w.connect(&org, "xero").await;
    w.revoke_and_refresh(SimProvider::Xero, account(&xero)).await;
    // The SMTP server refuses for a while: the email waits and is retried.
    smtp.set_failing(true);
    email::send_due(&w.hub.state, &mailer).await.unwrap();
    assert!(smtp.messages().is_empty());
    smtp.set_failing(false);
    w.clock.advance(Duration::from_secs(31));
    email::send_due(&w.hub.state, &mailer).await.unwrap();
    // More failing refreshes and dispatches: still one email.
    w.clock.advance(PAST_EXPIRY);
    w.pump().await;
    email::send_due(&w.hub.state, &mailer).await.unwrap();

    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "one per incident");
    let mail = &mails[0];
    let mut to = mail.to.clone();
    to.sort();
    assert_eq!(to, ["ana@example.com", "zoe@example.com"]);
    let subject = mail.subject().unwrap();
    assert!(subject.contains("Xero") && subject.contains("Boulangerie Émile"), "{subject}");
    let body = mail.body_text();
    assert!(body.contains("What happened:") && body.contains("What to do:"), "{body}");
    assert!(body.to_lowercase().contains("reconnect"), "{body}");
    let link = body.lines().find_map(|l| l.strip_prefix("Reconnect here: ")).unwrap().trim().to_owned();
    assert!(link.starts_with(&w.hub.base), "{link}");

    // The link starts a new authorisation (auto-approved here) and reconnects the same connection.
    let page = reqwest::get(&link).await.unwrap();
    assert_eq!(page.status(), 200, "{}", page.text().await.unwrap());
    assert_eq!(w.connection(id(&xero)).await["status"], "connected");
    let (_, events) = w.call(Method::GET, &format!("/v1/connections/{}/events", id(&xero)), None).await;
    let types: Vec<&str> =
        events["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(
        types.ends_with(&["connection.reconnect_started", "connection.connected", "connection.recovered"]),
        "{types:?}"
    );
    // A tampered link does nothing.
    let tampered = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let bad = tampered.get(link.replace("sig=", "sig=x")).send().await.unwrap();
    assert_eq!(bad.status(), 400);

    // A new incident is a new email.
    let again = w.connection(id(&xero)).await;
    w.revoke_and_refresh(SimProvider::Xero, account(&again)).await;
    email::send_due(&w.hub.state, &mailer).await.unwrap();
    assert_eq!(smtp.messages().len(), 2);
}

#[tokio::test]
async fn a_connection_degraded_longer_than_the_threshold_alerts_once() {
    let w = world(common::Backend::Sqlite, &[("LEDGERLINK_ALERTS_DEGRADED_AFTER", "1h")]).await;
    let receiver = Receiver::start().await;
    w.subscribe(
        &receiver.url,
        Some(&["connection.degraded", "connection.still_degraded", "connection.recovered"]),
    )
    .await;
    let org = w.organisation("Harbour Bakery", "cld-1234").await;
    let xero = w.connect(&org, "xero").await;
    w.sim
        .sim
        .set_faults(
            SimProvider::Xero,
            FaultUpdate { outage: Some(Outage { status: 503, count: None }), ..Default::default() },
        )
        .unwrap();
    w.clock.advance(PAST_EXPIRY);
    w.pump().await;
    assert_eq!(w.connection(id(&xero)).await["status"], "degraded");
    for _ in 0..8 {
        w.clock.advance(Duration::from_secs(10 * 60));
        w.pump().await;
        alerts::raise_still_degraded(&w.hub.state).await.unwrap();
        w.pump().await;
    }
    w.sim.sim.clear_faults(SimProvider::Xero);
    w.clock.advance(Duration::from_secs(60));
    w.pump().await;
    w.pump().await;
    let types: Vec<String> =
        receiver.received().iter().map(|r| r.json()["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(types, ["connection.degraded", "connection.still_degraded", "connection.recovered"]);
}

#[tokio::test]
async fn webhook_requests_with_bad_values_get_clear_errors() {
    let w = world(common::Backend::Sqlite, &[]).await;
    for (body, needle) in [
        (json!({"url": "ftp://example.com/x"}), "http"),
        (json!({"url": "not a url"}), "url"),
        (json!({"url": "https://user:pw@example.com/"}), "credentials"),
        (json!({"url": "https://example.com/", "events": []}), "at least one"),
        (json!({"url": "https://example.com/", "events": ["connection.exploded"]}), "connection.exploded"),
    ] {
        let (status, error) = w.call(Method::POST, "/v1/webhooks", Some(body)).await;
        assert_eq!(status, 422, "{error}");
        assert!(error["error"]["message"].as_str().unwrap().contains(needle), "{error}");
    }
    let (status, _) =
        w.call(Method::POST, "/v1/webhooks", Some(json!({"url": "https://example.com/", "extra": 1}))).await;
    assert_eq!(status, 422, "an unknown field is named");
    let (status, _) = w.call(Method::GET, "/v1/webhooks/whk_nope", None).await;
    assert_eq!(status, 404);
    // Another tenant's subscription is invisible.
    let (sub, _) = w.subscribe("https://example.com/hooks", None).await;
    let other = w.hub.tenant("Other").await;
    let (status, _) = w.hub.call(Method::GET, &format!("/v1/webhooks/{sub}"), &other, None).await;
    assert_eq!(status, 404);
    let (status, list) = w.call(Method::GET, "/v1/webhooks", None).await;
    assert_eq!(status, 200);
    assert!(list["data"][0].get("secret").is_none(), "the secret is shown only at creation");
    let (status, _) = w.call(Method::DELETE, &format!("/v1/webhooks/{sub}"), None).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn metrics_count_connections_by_provider_and_status() {
    let w = world(common::Backend::Sqlite, &[]).await;
    let org = w.organisation("Harbour Bakery", "cld-1234").await;
    let xero = w.connect(&org, "xero").await;
    w.connect(&org, "quickbooks").await;
    w.revoke_and_refresh(SimProvider::Xero, account(&xero)).await;
    let text = reqwest::get(w.hub.url("/metrics")).await.unwrap().text().await.unwrap();
    for line in [
        "ledgerlink_connections{provider=\"xero\",status=\"disconnected\"} 1",
        "ledgerlink_connections{provider=\"xero\",status=\"connected\"} 0",
        "ledgerlink_connections{provider=\"quickbooks\",status=\"connected\"} 1",
        "ledgerlink_refresh_failures_total{provider=\"xero\",category=\"authorization_revoked\"} 1",
        "ledgerlink_alerts_total{type=\"connection.disconnected\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
    }
}

#[tokio::test]
async fn a_bad_smtp_url_stops_the_hub_at_start_without_showing_the_password() {
    let storage = Storage::new(common::Backend::Sqlite).await;
    for url in ["ftp://user:hunter22@mail.example.com", "smtp://user:hunter22@/nohost"] {
        let config = storage.config(&[("LEDGERLINK_SMTP_URL", url)]);
        let error = match ledgerlink_server::hub::build(config).await {
            Ok(_) => panic!("{url} was accepted"),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains("smtp"), "{error}");
        assert!(!error.contains("hunter22"), "{error}");
    }
}
