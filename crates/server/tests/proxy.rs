//! The test button and the API proxy against the simulators: every response code of seed 001
//! diagnosed, providers' rate limits respected by queueing, `Retry-After` honoured, one refresh
//! on a 401, answers passed through unchanged.
//!
//! These run on the system clock: the proxy's queues wait in real time, as the providers' limits
//! do.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Sim, Storage, TestHub};
use ledgerlink_core::SystemClock;
use ledgerlink_sandbox::providers::{ApiErrorFault, FaultUpdate, Provider as SimProvider, RateLimit, Rules};
use reqwest::Method;
use serde_json::{Value, json};

struct World {
    sim: Sim,
    hub: TestHub,
    key: String,
    org: String,
    _storage: Storage,
}

async fn world(extra: &[(&str, &str)]) -> World {
    let sim = Sim::start(Arc::new(SystemClock), Rules::default().with_auto_approve(true)).await;
    let storage = Storage::new(common::Backend::Sqlite).await;
    let mut env = sim.env();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let hub = TestHub::start_custom(&storage, &env, Arc::new(SystemClock), false).await;
    let key = hub.tenant("Acme").await;
    let (_, org) =
        hub.call(Method::POST, "/v1/organisations", &key, Some(json!({"name": "Harbour Bakery"}))).await;
    World { sim, hub, key, org: org["id"].as_str().unwrap().to_owned(), _storage: storage }
}

impl World {
    async fn connect(&self, provider: &str) -> String {
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
        let page = reqwest::get(created["authorize_url"].as_str().unwrap()).await.unwrap();
        assert_eq!(page.status(), 200);
        created["id"].as_str().unwrap().to_owned()
    }

    async fn test(&self, id: &str) -> Value {
        let (status, result) =
            self.hub.call(Method::POST, &format!("/v1/connections/{id}/test"), &self.key, None).await;
        assert_eq!(status, 200, "{result}");
        result
    }

    fn fail_api(&self, provider: SimProvider, status: u16, code: Option<&str>) {
        let fault = ApiErrorFault { status, code: code.map(Into::into), count: None };
        self.sim
            .sim
            .set_faults(provider, FaultUpdate { api_error: Some(fault), ..Default::default() })
            .unwrap();
    }

    fn proxy(&self, id: &str, path: &str) -> reqwest::RequestBuilder {
        self.hub
            .client
            .get(self.hub.url(&format!("/v1/connections/{id}/proxy/{path}")))
            .bearer_auth(&self.key)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_button_diagnoses_every_response_code_of_seed_001() {
    let w = world(&[]).await;
    let id = w.connect("xero").await;
    assert_eq!(w.test(&id).await, json!({"ok": true}));
    for (status, category, retryable) in [
        (400, "bad_request", false),
        (401, "authorization_revoked", false),
        (403, "insufficient_permission", false),
        (404, "not_found", false),
        (412, "precondition_failed", false),
        (429, "rate_limited", true),
        (500, "provider_error", true),
        (503, "provider_unavailable", true),
    ] {
        if status == 429 {
            // Xero's own 429, with a short Retry-After so the rest of the test need not wait.
            let limit = RateLimit { retry_after_secs: 1, count: None };
            w.sim
                .sim
                .set_faults(SimProvider::Xero, FaultUpdate { rate_limit: Some(limit), ..Default::default() })
                .unwrap();
        } else {
            w.fail_api(SimProvider::Xero, status, None);
        }
        let result = w.test(&id).await;
        w.sim.sim.clear_faults(SimProvider::Xero);
        assert_eq!(result["ok"], false, "{status}: {result}");
        let d = &result["diagnosis"];
        assert_eq!(d["http_status"], status, "{d}");
        assert_eq!(d["category"], category, "{status}: {d}");
        assert_eq!(d["retryable"], retryable, "{status}: {d}");
        assert_eq!(d["provider"], "xero");
        assert!(!d["summary"].as_str().unwrap().is_empty() && !d["action"].as_str().unwrap().is_empty());
        assert_eq!(d["links"]["status"], "https://status.developer.xero.com/");
    }
    let (_, kb) = w.hub.call(Method::GET, "/v1/diagnoses", &w.key, None).await;
    let entry = kb["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["provider"] == "xero" && e["http_status"] == 403)
        .unwrap();
    assert!(entry["action"].as_str().unwrap().contains("Standard or Adviser"), "{entry}");
    assert_eq!(w.test(&id).await, json!({"ok": true}), "fine again once the fault is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_does_not_resolve_is_socket_error_11001_with_the_url_to_check() {
    let sim = Sim::start(Arc::new(SystemClock), Rules::default().with_auto_approve(true)).await;
    let storage = Storage::new(common::Backend::Sqlite).await;
    let mut env = sim.env();
    for (k, v) in &mut env {
        if k == "LEDGERLINK_PROVIDERS_XERO_API_BASE_URL" {
            *v = "http://api.xero.invalid/api.xro/2.0".into();
        }
    }
    let hub = TestHub::start_custom(&storage, &env, Arc::new(SystemClock), false).await;
    let key = hub.tenant("Acme").await;
    let (_, org) = hub.call(Method::POST, "/v1/organisations", &key, Some(json!({"name": "A"}))).await;
    let w = World { sim, hub, key, org: org["id"].as_str().unwrap().to_owned(), _storage: storage };
    let id = w.connect("xero").await;
    let result = w.test(&id).await;
    assert_eq!(result["ok"], false);
    let d = &result["diagnosis"];
    assert_eq!(d["provider_code"], "dns", "{d}");
    assert!(d["summary"].as_str().unwrap().contains("11001"), "{d}");
    assert!(d["action"].as_str().unwrap().contains("API base URL"), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickbooks_and_myob_failures_are_told_apart() {
    let w = world(&[]).await;
    let qbo = w.connect("quickbooks").await;
    let myob = w.connect("myob").await;
    assert_eq!(w.test(&qbo).await["ok"], true);
    assert_eq!(w.test(&myob).await["ok"], true);

    // QuickBooks can answer a Fault with HTTP 200: passed through as 200, diagnosed anyway.
    w.fail_api(SimProvider::QuickBooks, 200, Some("6000"));
    let response = w.proxy(&qbo, "query?query=select%20*%20from%20Customer").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let diagnosis: Value =
        serde_json::from_str(response.headers()["ledgerlink-diagnosis"].to_str().unwrap()).unwrap();
    assert_eq!(diagnosis["provider_code"], "6000", "{diagnosis}");
    let body: Value = response.json().await.unwrap();
    assert!(body["Fault"].is_object(), "the provider's body, unchanged: {body}");
    w.sim.sim.clear_faults(SimProvider::QuickBooks);
    for (code, category) in [("3100", "insufficient_permission"), ("610", "not_found"), ("5010", "conflict")]
    {
        let status = if code == "3100" { 403 } else { 400 };
        w.fail_api(SimProvider::QuickBooks, status, Some(code));
        let d = w.test(&qbo).await["diagnosis"].clone();
        w.sim.sim.clear_faults(SimProvider::QuickBooks);
        assert_eq!(d["provider_code"], code, "{d}");
        assert_eq!(d["category"], category, "{code}: {d}");
    }

    // MYOB: 403 means a permission problem, unless the body says RateLimitError.
    w.fail_api(SimProvider::Myob, 403, None);
    let d = w.test(&myob).await["diagnosis"].clone();
    assert_eq!(d["category"], "insufficient_permission", "{d}");
    let rate_limited = ApiErrorFault { status: 403, code: Some("RateLimitError".into()), count: Some(1) };
    w.sim
        .sim
        .set_faults(SimProvider::Myob, FaultUpdate { api_error: Some(rate_limited), ..Default::default() })
        .unwrap();
    let d = w.test(&myob).await["diagnosis"].clone();
    assert_eq!(d["category"], "rate_limited", "one test is one call: {d}");
    w.sim
        .sim
        .set_faults(
            SimProvider::Myob,
            FaultUpdate {
                api_error: Some(ApiErrorFault {
                    status: 403,
                    code: Some("RateLimitError".into()),
                    count: Some(1),
                }),
                ..Default::default()
            },
        )
        .unwrap();
    let response = w.proxy(&myob, "Company").send().await.unwrap();
    assert_eq!(response.status(), 200, "the proxy waits a rate limit out");
    for (status, category) in [(418, "subscription_changed"), (423, "provider_unavailable"), (504, "timeout")]
    {
        w.fail_api(SimProvider::Myob, status, None);
        let d = w.test(&myob).await["diagnosis"].clone();
        w.sim.sim.clear_faults(SimProvider::Myob);
        assert_eq!(d["http_status"], status, "{d}");
        assert_eq!(d["category"], category, "{status}: {d}");
    }
}

/// Fires `n` proxied GETs at once and checks every one succeeds.
async fn burst(w: &World, id: &str, path: &str, n: usize) -> Duration {
    let started = Instant::now();
    let calls: Vec<_> = (0..n).map(|_| w.proxy(id, path).send()).collect();
    for response in futures_join(calls).await {
        let response = response.unwrap();
        let status = response.status();
        assert_eq!(status, 200, "{}", response.text().await.unwrap());
    }
    started.elapsed()
}

async fn futures_join<F: std::future::Future + Send + 'static>(futures: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_queues_within_each_providers_published_limits() {
    let w = world(&[]).await;
    let xero = w.connect("xero").await;
    let qbo = w.connect("quickbooks").await;
    let myob = w.connect("myob").await;
    for p in SimProvider::ALL {
        w.sim
            .sim
            .set_faults(
                p,
                FaultUpdate {
                    api_delay_ms: Some(300),
                    enforce_api_rate_limits: Some(true),
                    ..Default::default()
                },
            )
            .unwrap();
    }
    burst(&w, &xero, "Contacts", 20).await;
    let xero_stats = w.sim.sim.stats(SimProvider::Xero);
    assert_eq!(xero_stats.max_concurrent_api_calls, 5, "Xero: 5 in flight per organisation");
    assert_eq!(xero_stats.rate_limited_responses, 0, "queued, never refused");

    burst(&w, &qbo, "query?query=select%20*%20from%20Customer", 30).await;
    let qbo_stats = w.sim.sim.stats(SimProvider::QuickBooks);
    assert_eq!(qbo_stats.max_concurrent_api_calls, 10, "QuickBooks: 10 in flight per company");
    assert_eq!(qbo_stats.rate_limited_responses, 0);

    let took = burst(&w, &myob, "Contact/Customer", 20).await;
    let myob_stats = w.sim.sim.stats(SimProvider::Myob);
    assert_eq!(myob_stats.rate_limited_responses, 0, "MYOB: 8 per second, never exceeded");
    assert!(took >= Duration::from_secs(2), "20 calls at 8/s take over 2 s: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_honours_retry_after_refreshes_once_on_401_and_passes_answers_through() {
    let w = world(&[]).await;
    let xero = w.connect("xero").await;

    // A POST goes through with its body, and the provider's answer comes back unchanged.
    let created = w
        .hub
        .client
        .post(w.hub.url(&format!("/v1/connections/{xero}/proxy/Contacts")))
        .bearer_auth(&w.key)
        .json(&json!({"Contacts": [{"Name": "Café Zoë"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    assert!(created.headers().contains_key("x-minlimit-remaining"), "provider headers pass through");
    let listed: Value = w.proxy(&xero, "Contacts").send().await.unwrap().json().await.unwrap();
    assert!(listed["Contacts"].as_array().unwrap().iter().any(|c| c["Name"] == "Café Zoë"), "{listed}");

    // 429 with Retry-After: waited out, then the call succeeds.
    let limit = RateLimit { retry_after_secs: 1, count: Some(1) };
    w.sim
        .sim
        .set_faults(SimProvider::Xero, FaultUpdate { rate_limit: Some(limit), ..Default::default() })
        .unwrap();
    let started = Instant::now();
    let response = w.proxy(&xero, "Organisation").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was honoured");

    // A 401: one refresh, then the call succeeds with the new token.
    let refreshes = w.sim.sim.stats(SimProvider::Xero).refreshes;
    let unauthorised = ApiErrorFault { status: 401, code: None, count: Some(1) };
    w.sim
        .sim
        .set_faults(SimProvider::Xero, FaultUpdate { api_error: Some(unauthorised), ..Default::default() })
        .unwrap();
    assert_eq!(w.proxy(&xero, "Organisation").send().await.unwrap().status(), 200);
    assert_eq!(w.sim.sim.stats(SimProvider::Xero).refreshes, refreshes + 1);

    // Still 401 after the refresh: passed through with the diagnosis.
    w.fail_api(SimProvider::Xero, 401, None);
    let response = w.proxy(&xero, "Organisation").send().await.unwrap();
    assert_eq!(response.status(), 401);
    let diagnosis: Value =
        serde_json::from_str(response.headers()["ledgerlink-diagnosis"].to_str().unwrap()).unwrap();
    assert_eq!(diagnosis["category"], "authorization_revoked", "{diagnosis}");
    assert_eq!(
        w.sim.sim.stats(SimProvider::Xero).refreshes,
        refreshes + 2,
        "one refresh per call, not a loop"
    );
    w.sim.sim.clear_faults(SimProvider::Xero);

    // Paths cannot leave the account's part of the API.
    let response = w.proxy(&xero, "a%2f%2e%2e%2fconnections").send().await.unwrap();
    assert_eq!(response.status(), 400);
    // Another tenant cannot use the connection.
    let other = w.hub.tenant("Other").await;
    let response = w
        .hub
        .client
        .get(w.hub.url(&format!("/v1/connections/{xero}/proxy/Organisation")))
        .bearer_auth(other)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
