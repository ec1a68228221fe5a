//! OAuth connections against the provider simulators: the connect flow, and the refresh
//! engine's promise that no token is ever lost.
//!
//! Most tests share one `ManualClock` between the hub and the simulators and drive the engine
//! with `run_due_once`, so token lifetimes pass without sleeping.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Sim, Storage, TestHub};
use ledgerlink_core::{Clock, ManualClock, Timestamp};
use ledgerlink_sandbox::providers::{FaultUpdate, Outage, Provider as SimProvider, RateLimit, Rules};
use reqwest::Method;
use serde_json::{Value, json};

const START: Timestamp = Timestamp::from_millis(1_795_370_400_000);

struct World {
    clock: ManualClock,
    sim: Sim,
    hub: TestHub,
    key: String,
    org: String,
    _storage: Storage,
}

async fn world(backend: common::Backend, rules: Rules) -> World {
    let clock = ManualClock::new(START);
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let sim = Sim::start(shared.clone(), rules.with_auto_approve(true)).await;
    let storage = Storage::new(backend).await;
    let hub = TestHub::start_custom(&storage, &sim.env(), shared, false).await;
    let key = hub.tenant("Acme").await;
    let (_, org) = hub
        .call(
            Method::POST,
            "/v1/organisations",
            &key,
            Some(json!({"name": "Harbour Bakery", "external_id": "cld-1234"})),
        )
        .await;
    World { clock, sim, hub, key, org: org["id"].as_str().unwrap().to_owned(), _storage: storage }
}

impl World {
    /// Creates a connection and walks the consent flow (auto-approved) to the callback.
    async fn connect(&self, provider: &str) -> Value {
        let (status, created) = self
            .hub
            .call(
                Method::POST,
                &format!("/v1/organisations/{}/connections", self.org),
                &self.key,
                Some(json!({"provider": provider})),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["status"], "pending");
        let page = reqwest::get(created["authorize_url"].as_str().unwrap()).await.unwrap();
        assert_eq!(page.url().path(), "/oauth/callback");
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("is now connected"));
        let connection = self.connection(created["id"].as_str().unwrap()).await;
        assert_eq!(connection["status"], "connected", "{connection}");
        connection
    }

    async fn connection(&self, id: &str) -> Value {
        let (status, c) = self.hub.call(Method::GET, &format!("/v1/connections/{id}"), &self.key, None).await;
        assert_eq!(status, 200, "{c}");
        c
    }

    async fn access_token(&self, id: &str) -> (u16, Value) {
        self.hub.call(Method::GET, &format!("/v1/connections/{id}/access-token"), &self.key, None).await
    }

    async fn events(&self, id: &str) -> Vec<String> {
        let (_, events) =
            self.hub.call(Method::GET, &format!("/v1/connections/{id}/events"), &self.key, None).await;
        events["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
    }

    async fn run(&self) {
        self.hub.state.engine.run_due_once().await.unwrap();
    }

    /// Advances the clock in `step`s for `total`, running the engine after each step.
    async fn live_through(&self, total: Duration, step: Duration) {
        let mut passed = Duration::ZERO;
        while passed < total {
            self.clock.advance(step);
            passed += step;
            self.run().await;
        }
    }

    /// Calls the provider's API with what the hub hands out, as an app would.
    async fn call_provider_api(&self, id: &str) -> reqwest::StatusCode {
        let (status, token) = self.access_token(id).await;
        assert_eq!(status, 200, "{token}");
        let connection = self.connection(id).await;
        let base = token["api_base_url"].as_str().unwrap();
        let url = match connection["provider"].as_str().unwrap() {
            "xero" => format!("{base}/Organisation"),
            "quickbooks" => {
                let realm = connection["external_account"]["id"].as_str().unwrap();
                format!("{base}/companyinfo/{realm}")
            }
            _ => format!("{base}/Company"),
        };
        let mut request =
            reqwest::Client::new().get(url).bearer_auth(token["access_token"].as_str().unwrap());
        for (name, value) in token["headers"].as_object().unwrap() {
            request = request.header(name, value.as_str().unwrap());
        }
        request.send().await.unwrap().status()
    }
}

fn id(connection: &Value) -> String {
    connection["id"].as_str().unwrap().to_owned()
}

async fn stored(world: &World, id: &str) -> ledgerlink_store::Connection {
    world.hub.state.store.connection_by_id(id).await.unwrap().unwrap()
}

on_both_backends! {
    async fn every_provider_connects_and_its_token_calls_the_api(backend: Backend) {
        let w = world(backend, Rules::default()).await;
        for provider in ["xero", "quickbooks", "myob"] {
            let c = w.connect(provider).await;
            let account = &c["external_account"];
            assert!(account["id"].as_str().is_some_and(|id| !id.is_empty()), "{c}");
            assert!(account["name"].as_str().is_some(), "the account's name is discovered: {c}");
            assert_eq!(w.call_provider_api(&id(&c)).await, 200, "{provider}");
            assert_eq!(w.events(&id(&c)).await, ["connection.created", "connection.connected"]);
        }
        let (_, token) = w.access_token(&id(&w.connect("xero").await)).await;
        assert!(token["headers"]["xero-tenant-id"].is_string());
        w.hub.stop().await;
    }

    async fn tokens_stay_valid_over_many_lifetimes(backend: Backend) {
        let w = world(backend, Rules::default()).await;
        let connections = [w.connect("xero").await, w.connect("quickbooks").await, w.connect("myob").await];
        // 26 hours in 4-minute steps: 52 Xero lifetimes, 78 MYOB ones, and QuickBooks' daily
        // refresh-token change.
        for _ in 0..6 {
            w.live_through(Duration::from_secs(260 * 60), Duration::from_secs(4 * 60)).await;
            for c in &connections {
                assert_eq!(w.call_provider_api(&id(c)).await, 200, "{}", c["provider"]);
            }
        }
        for provider in SimProvider::ALL {
            let stats = w.sim.sim.stats(provider);
            assert_eq!(stats.invalid_grants, 0, "{provider}");
            assert!(stats.refreshes >= 20, "{provider} refreshed {} times", stats.refreshes);
            assert_eq!(stats.max_concurrent_refreshes_per_grant, 1);
        }
        for c in &connections {
            assert_eq!(w.connection(&id(c)).await["status"], "connected");
        }
        w.hub.stop().await;
    }

    async fn a_lost_refresh_response_is_recovered_with_the_same_token(backend: Backend) {
        let w = world(backend, Rules::default()).await;
        for provider in ["xero", "quickbooks"] {
            let c = w.connect(provider).await;
            let sim_provider = if provider == "xero" { SimProvider::Xero } else { SimProvider::QuickBooks };
            w.sim.sim.set_faults(sim_provider, FaultUpdate { drop_next_token_responses: Some(1), ..Default::default() }).unwrap();
            let before = stored(&w, &id(&c)).await;
            w.clock.set(before.next_refresh_at.unwrap());
            w.run().await;
            let after = stored(&w, &id(&c)).await;
            assert!(after.inflight_refresh_token.is_some(), "the outcome is unknown: the marker stays");
            assert_eq!(after.refresh_token, before.refresh_token, "nothing was stored from the lost answer");
            assert_eq!(w.sim.sim.stats(sim_provider).dropped_responses, 1);
            // The retry uses the same refresh token, which the provider still honours.
            w.live_through(Duration::from_secs(30), Duration::from_secs(1)).await;
            let recovered = stored(&w, &id(&c)).await;
            assert_eq!(recovered.inflight_refresh_token, None);
            assert!(recovered.token_version > before.token_version);
            assert_eq!(recovered.status, "connected");
            assert_eq!(w.sim.sim.stats(sim_provider).invalid_grants, 0);
            assert_eq!(w.call_provider_api(&id(&c)).await, 200);
        }
        w.hub.stop().await;
    }

    async fn an_outage_longer_than_the_token_lifetime_degrades_then_recovers_and_never_disconnects(backend: Backend) {
        let w = world(backend, Rules::default()).await;
        let c = w.connect("xero").await;
        w.sim.sim.set_faults(SimProvider::Xero, FaultUpdate { outage: Some(Outage { status: 503, count: None }), ..Default::default() }).unwrap();
        let mut saw_degraded = false;
        for _ in 0..(45 * 60 / 5) {
            w.clock.advance(Duration::from_secs(5));
            w.run().await;
            let status = w.connection(&id(&c)).await["status"].as_str().unwrap().to_owned();
            assert_ne!(status, "disconnected", "an outage never disconnects");
            saw_degraded |= status == "degraded";
        }
        assert!(saw_degraded, "amber once the token expired");
        let degraded = w.connection(&id(&c)).await;
        assert_eq!(degraded["status"], "degraded");
        assert_eq!(degraded["last_error"]["category"], "provider_unavailable");
        assert_eq!(degraded["last_error"]["http_status"], 503);
        // Per-connection backoff: no storm while the provider is down (at most one try every
        // 7.5 s once the token has expired).
        let tries = w.sim.sim.stats(SimProvider::Xero).outage_responses;
        assert!(tries < 45 * 60 / 7, "{tries} attempts in 45 minutes");
        let (status, body) = w.access_token(&id(&c)).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["diagnosis"]["category"], "provider_unavailable");

        w.sim.sim.clear_faults(SimProvider::Xero);
        w.live_through(Duration::from_secs(16), Duration::from_secs(1)).await;
        assert_eq!(w.connection(&id(&c)).await["status"], "connected", "healthy within seconds of the cause going away");
        let events = w.events(&id(&c)).await;
        assert!(events.ends_with(&["connection.degraded".to_owned(), "connection.recovered".to_owned()]), "{events:?}");
        assert_eq!(w.call_provider_api(&id(&c)).await, 200);
        w.hub.stop().await;
    }

    async fn a_revoked_grant_disconnects_with_a_diagnosis_and_is_not_retried(backend: Backend) {
        let w = world(backend, Rules::default()).await;
        let c = w.connect("xero").await;
        let account = c["external_account"]["id"].as_str().unwrap();
        w.sim.sim.revoke_account(SimProvider::Xero, account).unwrap();
        w.live_through(Duration::from_secs(30 * 60), Duration::from_secs(60)).await;
        let gone = w.connection(&id(&c)).await;
        assert_eq!(gone["status"], "disconnected");
        assert_eq!(gone["reason"], "authorization_revoked");
        assert_eq!(gone["last_error"]["provider_code"], "invalid_grant");
        assert_eq!(gone["last_error"]["retryable"], false);
        assert!(gone["last_error"]["action"].as_str().unwrap().contains("reconnect"));
        let (status, body) = w.access_token(&id(&c)).await;
        assert_eq!(status, 409);
        assert_eq!(body["error"]["code"], "connection_disconnected");
        assert_eq!(body["diagnosis"]["provider_code"], "invalid_grant");
        assert!(w.events(&id(&c)).await.contains(&"connection.disconnected".to_owned()));
        let requests = w.sim.sim.stats(SimProvider::Xero).token_requests;
        w.live_through(Duration::from_secs(6 * 3600), Duration::from_secs(600)).await;
        assert_eq!(w.sim.sim.stats(SimProvider::Xero).token_requests, requests, "rejected grants are not retried");
        w.hub.stop().await;
    }

    async fn fifty_concurrent_access_token_calls_at_expiry_make_one_refresh(backend: Backend) {
        let w = world(backend, Rules::default()).await;
        let c = w.connect("xero").await;
        w.clock.advance(Duration::from_secs(31 * 60));
        w.sim.sim.set_faults(SimProvider::Xero, FaultUpdate { token_delay_ms: Some(300), ..Default::default() }).unwrap();
        let before = w.sim.sim.stats(SimProvider::Xero).refreshes;
        let calls = (0..50).map(|_| {
            let client = w.hub.client.clone();
            let url = w.hub.url(&format!("/v1/connections/{}/access-token", id(&c)));
            let key = w.key.clone();
            tokio::spawn(async move {
                let response = client.get(url).bearer_auth(key).send().await.unwrap();
                (response.status().as_u16(), response.json::<Value>().await.unwrap())
            })
        });
        let mut tokens = std::collections::HashSet::new();
        for call in calls.collect::<Vec<_>>() {
            let (status, body) = call.await.unwrap();
            assert_eq!(status, 200, "{body}");
            tokens.insert(body["access_token"].as_str().unwrap().to_owned());
        }
        let stats = w.sim.sim.stats(SimProvider::Xero);
        assert_eq!(stats.refreshes - before, 1, "exactly one refresh");
        assert_eq!(stats.max_concurrent_refreshes_per_grant, 1);
        assert_eq!(tokens.len(), 1, "every caller got the new token");
        w.hub.stop().await;
    }
}

#[tokio::test]
async fn a_429_is_honoured_before_retrying() {
    let w = world(common::Backend::Sqlite, Rules::default()).await;
    let c = w.connect("xero").await;
    w.sim
        .sim
        .set_faults(
            SimProvider::Xero,
            FaultUpdate {
                rate_limit: Some(RateLimit { retry_after_secs: 120, count: Some(1) }),
                ..Default::default()
            },
        )
        .unwrap();
    w.clock.set(stored(&w, &id(&c)).await.next_refresh_at.unwrap());
    w.run().await;
    let limited = stored(&w, &id(&c)).await;
    assert_eq!(limited.next_refresh_at, Some(w.clock.now().saturating_add(Duration::from_secs(120))));
    assert_eq!(limited.inflight_refresh_token, None, "a 429 was not processed: no unknown outcome");
    let requests = w.sim.sim.stats(SimProvider::Xero).token_requests;
    w.live_through(Duration::from_secs(119), Duration::from_secs(1)).await;
    assert_eq!(w.sim.sim.stats(SimProvider::Xero).token_requests, requests, "nothing before Retry-After");
    w.live_through(Duration::from_secs(2), Duration::from_secs(1)).await;
    let refreshed = stored(&w, &id(&c)).await;
    assert!(refreshed.token_version > limited.token_version);
    assert_eq!(w.connection(&id(&c)).await["last_error"], Value::Null);
    w.hub.stop().await;
}

#[tokio::test]
async fn a_refresh_answer_without_a_refresh_token_keeps_the_old_one() {
    let w = world(common::Backend::Sqlite, Rules::default()).await;
    let c = w.connect("xero").await;
    w.sim
        .sim
        .set_faults(SimProvider::Xero, FaultUpdate { omit_refresh_token_next: Some(1), ..Default::default() })
        .unwrap();
    let before = stored(&w, &id(&c)).await;
    w.clock.set(before.next_refresh_at.unwrap());
    w.run().await;
    let after = stored(&w, &id(&c)).await;
    assert!(after.token_version > before.token_version, "a new access token was stored");
    assert_eq!(after.refresh_token, before.refresh_token, "the refresh token was kept");
    // …and it still works for the next refresh.
    w.clock.set(after.next_refresh_at.unwrap());
    w.run().await;
    let next = stored(&w, &id(&c)).await;
    assert!(next.token_version > after.token_version);
    assert_ne!(next.refresh_token, after.refresh_token);
    assert_eq!(w.sim.sim.stats(SimProvider::Xero).invalid_grants, 0);
    w.hub.stop().await;
}

#[tokio::test]
async fn a_denied_consent_leaves_the_connection_pending_with_a_diagnosis_and_reconnect_keeps_its_id() {
    let w = world(common::Backend::Sqlite, Rules::default()).await;
    let (_, created) = w
        .hub
        .call(
            Method::POST,
            &format!("/v1/organisations/{}/connections", w.org),
            &w.key,
            Some(json!({"provider": "myob"})),
        )
        .await;
    w.sim
        .sim
        .set_faults(SimProvider::Myob, FaultUpdate { auto_approve: Some(false), ..Default::default() })
        .unwrap();
    // The user presses Deny on the consent page: the provider redirects with error=access_denied.
    let authorize = url::Url::parse(created["authorize_url"].as_str().unwrap()).unwrap();
    let state = authorize.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let denied = reqwest::get(format!("{}/oauth/callback?error=access_denied&state={state}", w.hub.base))
        .await
        .unwrap();
    assert_eq!(denied.status(), 200);
    assert!(denied.text().await.unwrap().contains("did not authorise"));
    let pending = w.connection(&id(&created)).await;
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["last_error"]["category"], "access_denied");
    assert_eq!(pending["last_error"]["provider_code"], "access_denied");

    // The state was used up: the same link cannot be replayed.
    let replay = reqwest::get(format!("{}/oauth/callback?code=x&state={state}", w.hub.base)).await.unwrap();
    assert_eq!(replay.status(), 400);

    let (status, again) =
        w.hub.call(Method::POST, &format!("/v1/connections/{}/reconnect", id(&created)), &w.key, None).await;
    assert_eq!(status, 200, "{again}");
    w.sim.sim.clear_faults(SimProvider::Myob);
    let page = reqwest::get(again["authorize_url"].as_str().unwrap()).await.unwrap();
    assert_eq!(page.status(), 200);
    let connected = w.connection(&id(&created)).await;
    assert_eq!(connected["status"], "connected");
    assert_eq!(connected["last_error"], Value::Null);
    assert_eq!(
        w.events(&id(&created)).await,
        [
            "connection.created",
            "connection.authorization_failed",
            "connection.reconnect_started",
            "connection.connected"
        ]
    );
    w.hub.stop().await;
}

#[tokio::test]
async fn states_are_bound_to_their_connection_and_expire() {
    let w = world(common::Backend::Sqlite, Rules::default()).await;
    let (_, created) = w
        .hub
        .call(
            Method::POST,
            &format!("/v1/organisations/{}/connections", w.org),
            &w.key,
            Some(json!({"provider": "xero"})),
        )
        .await;
    w.clock.advance(Duration::from_secs(2 * 3600));
    let late = reqwest::get(created["authorize_url"].as_str().unwrap()).await.unwrap();
    assert_eq!(late.status(), 400, "the state expired after oauth_state_ttl");
    assert!(late.text().await.unwrap().contains("expired or was already used"));
    for query in ["", "?state=", "?state=made-up&code=abc"] {
        let response = reqwest::get(format!("{}/oauth/callback{query}", w.hub.base)).await.unwrap();
        assert_eq!(response.status(), 400, "{query}");
    }
    assert_eq!(w.connection(&id(&created)).await["status"], "pending");
    w.hub.stop().await;
}

#[tokio::test]
async fn a_redirect_url_receives_the_user_after_consent() {
    let w = world(common::Backend::Sqlite, Rules::default()).await;
    let (status, created) = w
        .hub
        .call(
            Method::POST,
            &format!("/v1/organisations/{}/connections", w.org),
            &w.key,
            Some(json!({"provider": "quickbooks", "redirect_url": "https://app.example.test/done?x=1"})),
        )
        .await;
    assert_eq!(status, 201);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.url().host_str() == Some("app.example.test") {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }))
        .build()
        .unwrap();
    // Follow the provider's redirect to the hub, but not the hub's to the (unreachable) app.
    let response = client.get(created["authorize_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("https://app.example.test/done?x=1&connection_id=con_"), "{location}");
    assert!(location.ends_with("&status=connected"), "{location}");
    w.hub.stop().await;
}

#[tokio::test]
async fn deleting_a_connection_revokes_the_grant_at_the_provider() {
    let w = world(common::Backend::Sqlite, Rules::default()).await;
    let c = w.connect("xero").await;
    let (status, _) = w.hub.call(Method::DELETE, &format!("/v1/connections/{}", id(&c)), &w.key, None).await;
    assert_eq!(status, 204);
    let grants = w.sim.sim.stats(SimProvider::Xero).grants;
    assert!(grants.iter().all(|g| g.revoked), "{grants:?}");
    let (status, _) = w.hub.call(Method::GET, &format!("/v1/connections/{}", id(&c)), &w.key, None).await;
    assert_eq!(status, 404);
    w.hub.stop().await;
}

#[tokio::test]
async fn deleting_an_organisation_revokes_and_removes_its_connections() {
    let w = world(common::Backend::Sqlite, Rules::default()).await;
    let c = w.connect("quickbooks").await;
    let (status, _) = w.hub.call(Method::DELETE, &format!("/v1/organisations/{}", w.org), &w.key, None).await;
    assert_eq!(status, 204);
    assert!(w.sim.sim.stats(SimProvider::QuickBooks).grants.iter().all(|g| g.revoked));
    let (status, _) = w.hub.call(Method::GET, &format!("/v1/connections/{}", id(&c)), &w.key, None).await;
    assert_eq!(status, 404);
    w.hub.stop().await;
}

#[tokio::test]
async fn bad_connection_requests_get_clear_errors() {
    let w = world(common::Backend::Sqlite, Rules::default()).await;
    let path = format!("/v1/organisations/{}/connections", w.org);
    for (body, needle) in [
        (json!({"provider": "sage"}), "xero, quickbooks"),
        (json!({"provider": "acumatica"}), "instance_url"),
        (json!({"provider": "xero", "redirect_url": "javascript:alert(1)"}), "redirect_url"),
        (json!({"provider": "xero", "redirect_url": "/relative"}), "redirect_url"),
        (json!({"provider": "xero", "colour": "red"}), "colour"),
        (json!({}), "provider"),
    ] {
        let (status, response) = w.hub.call(Method::POST, &path, &w.key, Some(body.clone())).await;
        assert_eq!(status, 422, "{body}: {response}");
        assert!(response["error"]["message"].as_str().unwrap().contains(needle), "{body}: {response}");
    }
    let (status, _) = w
        .hub
        .call(
            Method::POST,
            "/v1/organisations/org_00000000000000000000000000/connections",
            &w.key,
            Some(json!({"provider": "xero"})),
        )
        .await;
    assert_eq!(status, 404);
    for query in ["status=green", "provider=sage", "cursor=x"] {
        let (status, _) = w.hub.call(Method::GET, &format!("/v1/connections?{query}"), &w.key, None).await;
        assert_eq!(status, 422, "{query}");
    }
    let c = w.connect("xero").await;
    let other = w.hub.tenant("Other").await;
    for (method, suffix) in [
        (Method::GET, ""),
        (Method::GET, "/access-token"),
        (Method::GET, "/events"),
        (Method::POST, "/reconnect"),
        (Method::DELETE, ""),
    ] {
        let (status, _) =
            w.hub.call(method.clone(), &format!("/v1/connections/{}{suffix}", id(&c)), &other, None).await;
        assert_eq!(status, 404, "{method} {suffix}");
    }
    let (_, listed) =
        w.hub.call(Method::GET, "/v1/connections?status=connected&provider=xero", &w.key, None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(w.connection(&id(&c)).await["status"], "connected", "nothing above touched it");
    w.hub.stop().await;
}

#[tokio::test]
async fn a_provider_without_credentials_is_refused_with_the_keys_to_set() {
    let storage = Storage::new(common::Backend::Sqlite).await;
    let hub = TestHub::start(&storage).await;
    let key = hub.tenant("Acme").await;
    let (_, org) = hub.call(Method::POST, "/v1/organisations", &key, Some(json!({"name": "A"}))).await;
    let (status, body) = hub
        .call(
            Method::POST,
            &format!("/v1/organisations/{}/connections", org["id"].as_str().unwrap()),
            &key,
            Some(json!({"provider": "xero"})),
        )
        .await;
    assert_eq!(status, 422);
    assert!(body["error"]["message"].as_str().unwrap().contains("providers.xero.client_id"), "{body}");
    hub.stop().await;
}
