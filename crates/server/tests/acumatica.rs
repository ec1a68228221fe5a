//! MYOB Acumatica password connections against the simulated instance: the seed's 2023.1.3
//! upgrade incident end to end, the password policy, locked users, the login limit, a shared API
//! user, and sessions that are always closed.

mod common;

use std::sync::Arc;

use common::{Storage, TestHub};
use ledgerlink_core::SystemClock;
use ledgerlink_sandbox::acumatica::{FaultUpdate, Instance, InstanceRules, LoginLimit, NewUser, RateLimit};
use reqwest::Method;
use serde_json::{Value, json};

const OLD_PASSWORD: &str = "ocerra2022";
const USER: &str = "LedgerlinkAPI";

struct World {
    instance: Instance,
    instance_url: String,
    hub: TestHub,
    key: String,
    org: String,
    _storage: Storage,
}

async fn world(backend: common::Backend) -> World {
    let instance =
        Instance::new(Arc::new(SystemClock), InstanceRules::default().with_base_path("/AcumaticaERP"));
    instance.create_user(NewUser::new(USER, OLD_PASSWORD, "Company")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = ledgerlink_sandbox::acumatica::router(instance.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let storage = Storage::new(backend).await;
    let hub = TestHub::start_custom(&storage, &[], Arc::new(SystemClock), false).await;
    let key = hub.tenant("Acme").await;
    let (_, org) =
        hub.call(Method::POST, "/v1/organisations", &key, Some(json!({"name": "Harbour Bakery"}))).await;
    World {
        instance_url: instance.url(&base),
        instance,
        hub,
        key,
        org: org["id"].as_str().unwrap().to_owned(),
        _storage: storage,
    }
}

impl World {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.hub.call(method, path, &self.key, body).await
    }

    async fn create(&self, org: &str, password: &str, extra: Value) -> (u16, Value) {
        let mut body = json!({"provider": "acumatica", "instance_url": self.instance_url, "username": USER,
                              "password": password, "tenant": "Company", "branch": "MAIN"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.call(Method::POST, &format!("/v1/organisations/{org}/connections"), Some(body)).await
    }

    async fn connection(&self, id: &str) -> Value {
        self.call(Method::GET, &format!("/v1/connections/{id}"), None).await.1
    }

    async fn test(&self, id: &str) -> Value {
        let (status, result) = self.call(Method::POST, &format!("/v1/connections/{id}/test"), None).await;
        assert_eq!(status, 200, "{result}");
        result
    }

    async fn events(&self, id: &str) -> Vec<String> {
        let (_, events) = self.call(Method::GET, &format!("/v1/connections/{id}/events"), None).await;
        events["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
    }
}

on_both_backends! {
    async fn after_the_upgrade_resets_the_password_the_hub_tries_once_then_reconnects_with_the_new_one(backend: Backend) {
        let w = world(backend).await;
        let (status, conn) = w.create(&w.org, OLD_PASSWORD, json!({"allow_weak_password": true})).await;
        assert_eq!(status, 201, "{conn}");
        assert_eq!(conn["status"], "connected", "tested at creation: {conn}");
        let id = conn["id"].as_str().unwrap().to_owned();
        assert_eq!(w.test(&id).await, json!({"ok": true}));

        // MYOB Acumatica 2023.1.3: the API user's weak password is reset.
        let reset = w.instance.upgrade();
        let new_password = reset.iter().find(|(name, _)| name == USER).unwrap().1.clone();
        let before = w.instance.user(USER).unwrap().failed_logins;

        // The hub's next use fails: credentials_rejected, once.
        let result = w.test(&id).await;
        assert_eq!(result["ok"], false);
        assert_eq!(result["diagnosis"]["category"], "credentials_rejected", "{result}");
        assert!(result["diagnosis"]["action"].as_str().unwrap().contains("14"), "{result}");
        let broken = w.connection(&id).await;
        assert_eq!((broken["status"].as_str(), broken["reason"].as_str()), (Some("disconnected"), Some("credentials_rejected")));
        // Pressing test again, or calling through the proxy, never logs in with the old password.
        for _ in 0..5 {
            assert_eq!(w.test(&id).await["ok"], false);
            let (status, _) = w.call(Method::GET, &format!("/v1/connections/{id}/proxy/entity/Default/22.200.001/Customer"), None).await;
            assert_eq!(status, 409);
        }
        let user = w.instance.user(USER).unwrap();
        assert_eq!(user.failed_logins - before, 1, "the hub tried once");
        assert!(!user.locked && user.consecutive_failed_logins < 5, "nowhere near the lockout: {user:?}");
        assert!(w.events(&id).await.contains(&"connection.disconnected".to_owned()));

        // The administrator's new password, entered in the hub: connected again.
        let (status, fixed) = w
            .call(Method::PUT, &format!("/v1/connections/{id}/credentials"), Some(json!({"password": new_password})))
            .await;
        assert_eq!(status, 200, "{fixed}");
        assert_eq!(fixed["status"], "connected", "{fixed}");
        assert!(fixed["last_error"].is_null());
        assert!(w.events(&id).await.ends_with(&["connection.credentials_updated".to_owned(), "connection.recovered".to_owned()]));
        assert_eq!(w.test(&id).await, json!({"ok": true}));
        assert_eq!(w.instance.stats().open_sessions, 0);
    }

    async fn a_hundred_operations_some_failing_leave_no_session_open(backend: Backend) {
        let w = world(backend).await;
        let (_, conn) = w.create(&w.org, OLD_PASSWORD, json!({"allow_weak_password": true})).await;
        let id = conn["id"].as_str().unwrap().to_owned();
        let customers = format!("/v1/connections/{id}/proxy/entity/Default/22.200.001/Customer");
        w.instance.set_faults(FaultUpdate { request_delay_ms: Some(20), ..Default::default() }).unwrap();
        let mut statuses = std::collections::BTreeMap::new();
        for i in 0..100 {
            let (status, _) = match i % 5 {
                0 => w.call(Method::GET, &customers, None).await,
                1 => w.call(Method::GET, &format!("{customers}/NO-SUCH-CUSTOMER"), None).await,
                2 => w.call(Method::PUT, &customers, Some(json!({"CustomerClass": {"value": "X"}}))).await,
                3 => {
                    let limit = RateLimit { retry_after_secs: None, count: Some(1) };
                    w.instance.set_faults(FaultUpdate { rate_limit: Some(limit), ..Default::default() }).unwrap();
                    w.call(Method::GET, &customers, None).await
                }
                _ => (w.test(&id).await["ok"].as_bool().map_or(500, |ok| if ok { 200 } else { 299 }), Value::Null),
            };
            *statuses.entry(status).or_insert(0) += 1;
        }
        assert!(statuses.len() >= 3, "a mix of outcomes: {statuses:?}");
        // Ten at once: no more than two of them inside Acumatica at a time for one API user.
        let calls: Vec<_> = (0..10)
            .map(|_| {
                let (client, url, key) = (w.hub.client.clone(), w.hub.url(&customers), w.key.clone());
                tokio::spawn(async move { client.get(url).bearer_auth(key).send().await.unwrap().status() })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap(), 200);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let stats = w.instance.stats();
        assert_eq!(stats.open_sessions, 0, "{stats:?}");
        assert_eq!(stats.successful_logins, stats.logouts, "every login logged out");
        assert!(stats.users[USER].max_concurrent_requests <= 2, "{:?}", stats.users[USER]);
    }
}

#[tokio::test]
async fn a_password_failing_the_2023_1_3_policy_is_refused_naming_each_rule() {
    let w = world(common::Backend::Sqlite).await;
    let (status, error) = w.create(&w.org, "short", json!({})).await;
    assert_eq!(status, 422, "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    for rule in ["14 characters", "upper-case", "number"] {
        assert!(message.contains(rule), "{message}");
    }
    assert!(!message.contains("lower-case"), "only the rules it breaks: {message}");
    let (_, list) = w.call(Method::GET, "/v1/connections", None).await;
    assert_eq!(list["data"], json!([]), "nothing stored");
    assert_eq!(w.instance.stats().login_requests, 0, "nothing tried");
    for (extra, needle) in [
        (json!({"instance_url": "ftp://x"}), "instance_url"),
        (json!({"instance_url": "http://acumatica.example.com/AcumaticaERP"}), "https"),
        (json!({"company": "Company"}), "not both"),
        (json!({"username": ""}), "username"),
        (json!({"branch": "x".repeat(101)}), "branch"),
    ] {
        let (status, error) = w.create(&w.org, "Correct-Horse-Battery-9", extra.clone()).await;
        assert_eq!(status, 422, "{extra}: {error}");
        assert!(error["error"]["message"].as_str().unwrap().contains(needle), "{extra}: {error}");
    }
}

#[tokio::test]
async fn a_wrong_tenant_or_host_is_a_configuration_error_to_fix_in_the_hub() {
    let w = world(common::Backend::Sqlite).await;
    let (status, conn) =
        w.create(&w.org, OLD_PASSWORD, json!({"allow_weak_password": true, "tenant": "Nope"})).await;
    assert_eq!(status, 201, "{conn}");
    assert_eq!(
        (conn["status"].as_str(), conn["reason"].as_str()),
        (Some("disconnected"), Some("configuration_error"))
    );
    assert!(conn["last_error"]["action"].as_str().unwrap().contains("tenant"), "{conn}");
    let (_, conn) = w
        .create(
            &w.org,
            OLD_PASSWORD,
            json!({"allow_weak_password": true, "instance_url": "https://acumatica.invalid/AcumaticaERP"}),
        )
        .await;
    assert_eq!(conn["reason"], "configuration_error", "{conn}");
    assert_eq!(conn["last_error"]["provider_code"], "dns");
}

#[tokio::test]
async fn a_locked_user_says_locked_and_how_to_unlock() {
    let w = world(common::Backend::Sqlite).await;
    let (_, conn) = w.create(&w.org, OLD_PASSWORD, json!({"allow_weak_password": true})).await;
    let id = conn["id"].as_str().unwrap().to_owned();
    w.instance.lock(USER).unwrap();
    let result = w.test(&id).await;
    assert_eq!(result["diagnosis"]["category"], "account_locked", "{result}");
    assert!(result["diagnosis"]["action"].as_str().unwrap().to_lowercase().contains("unlock"));
    let conn = w.connection(&id).await;
    assert_eq!(
        (conn["status"].as_str(), conn["reason"].as_str()),
        (Some("disconnected"), Some("account_locked"))
    );
    w.instance.unlock(USER).unwrap();
    let (status, fixed) = w
        .call(
            Method::PUT,
            &format!("/v1/connections/{id}/credentials"),
            Some(json!({"password": OLD_PASSWORD, "allow_weak_password": true})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(fixed["status"], "connected", "{fixed}");
}

#[tokio::test]
async fn the_api_login_limit_degrades_and_passes() {
    let w = world(common::Backend::Sqlite).await;
    let (_, conn) = w.create(&w.org, OLD_PASSWORD, json!({"allow_weak_password": true})).await;
    let id = conn["id"].as_str().unwrap().to_owned();
    w.instance
        .set_faults(FaultUpdate { login_limit: Some(LoginLimit { count: Some(1) }), ..Default::default() })
        .unwrap();
    let result = w.test(&id).await;
    assert_eq!(result["diagnosis"]["category"], "api_user_limit_reached", "{result}");
    assert_eq!(result["diagnosis"]["retryable"], true);
    assert_eq!(
        w.connection(&id).await["status"],
        "degraded",
        "amber, not red: nothing for a person to do yet"
    );
    assert_eq!(w.test(&id).await, json!({"ok": true}));
    assert_eq!(w.connection(&id).await["status"], "connected");
    assert!(
        w.events(&id).await.ends_with(&["connection.degraded".to_owned(), "connection.recovered".to_owned()])
    );
}

#[tokio::test]
async fn one_api_user_serving_two_connections_is_warned_on_both() {
    let w = world(common::Backend::Sqlite).await;
    let (_, other_org) =
        w.call(Method::POST, "/v1/organisations", Some(json!({"name": "Other Bakery"}))).await;
    let (_, first) = w.create(&w.org, OLD_PASSWORD, json!({"allow_weak_password": true})).await;
    assert!(first["warnings"].as_array().unwrap().is_empty(), "{first}");
    let (_, second) =
        w.create(other_org["id"].as_str().unwrap(), OLD_PASSWORD, json!({"allow_weak_password": true})).await;
    for (conn, other) in [(&first, &second), (&second, &first)] {
        let view = w.connection(conn["id"].as_str().unwrap()).await;
        let warning = view["warnings"][0].as_str().unwrap_or_default();
        assert!(warning.contains(other["id"].as_str().unwrap()) && warning.contains(USER), "{view}");
    }
    let (_, dups) = w.call(Method::GET, "/v1/duplicates", None).await;
    assert_eq!(dups["data"], json!([]), "a shared API user is not an OAuth duplicate link");
}
