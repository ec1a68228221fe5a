//! Fault switches, counters and the control API.

use std::time::{Duration, Instant};

use ledgerlink_sandbox::providers::{FaultUpdate, Provider, Rules};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Sandbox, error_code};

const XERO: Provider = Provider::Xero;
const QBO: Provider = Provider::QuickBooks;
const MYOB: Provider = Provider::Myob;

/// Sends a refresh and reads the whole body: the outcome a client ends up with.
async fn refresh_to_completion(sandbox: &Sandbox, provider: Provider, token: &str) -> reqwest::Result<Value> {
    let response =
        sandbox.token(provider, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await?;
    response.error_for_status()?.json().await
}

#[tokio::test]
async fn a_dropped_response_still_rotates_the_token_and_the_client_gets_only_an_error() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let old = sandbox.connect(XERO).await.refresh_token.unwrap();
    sandbox.set_faults(XERO, json!({"drop_next_token_responses": 1})).await;

    let lost = sandbox.token(XERO, &[("grant_type", "refresh_token"), ("refresh_token", &old)]).await;
    let error = lost.expect_err("the connection closes before any response");
    assert!(error.is_request() && !error.is_status() && !error.is_timeout(), "{error:?}");

    let stats = sandbox.stats(XERO).await;
    assert_eq!(stats["dropped_responses"], 1);
    assert_eq!(stats["refreshes"], 1, "the refresh was processed");
    let rotated = sandbox.sim.current_refresh_token(XERO, "xero-grant-1").unwrap();
    assert_ne!(rotated, old, "the token rotated although the client never saw the new one");

    // Xero's grace period is what saves a client that retries with the token it still has.
    let retried = refresh_to_completion(&sandbox, XERO, &old).await.unwrap();
    assert!(retried["refresh_token"].is_string());
    assert_eq!(sandbox.faults_json(XERO).await["drop_next_token_responses"], 0);
}

#[tokio::test]
async fn after_a_dropped_myob_response_the_old_token_is_already_dead() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let old = sandbox.connect(MYOB).await.refresh_token.unwrap();
    sandbox
        .sim
        .set_faults(MYOB, FaultUpdate { drop_next_token_responses: Some(1), ..Default::default() })
        .unwrap();

    assert!(refresh_to_completion(&sandbox, MYOB, &old).await.is_err());
    let retry = sandbox.refresh(MYOB, &old).await;
    assert_eq!(error_code(retry).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
    assert!(sandbox.sim.current_refresh_token(MYOB, "myob-grant-1").is_some());
}

#[tokio::test]
async fn omitting_the_refresh_token_keeps_the_old_one_valid() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let token = sandbox.connect(MYOB).await.refresh_token.unwrap();
    sandbox.set_faults(MYOB, json!({"omit_refresh_token_next": 2})).await;

    for _ in 0..2 {
        let body = sandbox.refresh_ok(MYOB, &token).await;
        assert!(body.get("refresh_token").is_none(), "{body}");
        assert!(body["access_token"].is_string());
        assert!(sandbox.sim.is_current_refresh_token(MYOB, &token));
    }
    let body = sandbox.refresh_ok(MYOB, &token).await;
    assert_ne!(body["refresh_token"].as_str().unwrap(), token, "rotation resumes after the two omissions");
}

#[tokio::test]
async fn two_concurrent_refreshes_of_one_grant_are_counted_as_a_violation() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let token = sandbox.connect(XERO).await.refresh_token.unwrap();
    sandbox.set_faults(XERO, json!({"token_delay_ms": 300})).await;

    let (a, b) = tokio::join!(sandbox.refresh(XERO, &token), sandbox.refresh(XERO, &token));
    // Both succeed: the second uses the token the first just superseded, within grace.
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    let stats = sandbox.stats(XERO).await;
    assert_eq!(stats["max_concurrent_refreshes_per_grant"], 2);
    assert_eq!(stats["concurrent_refresh_violations"], 1);
}

#[tokio::test]
async fn sequential_refreshes_keep_the_concurrency_peak_at_one() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let mut token = sandbox.connect(MYOB).await.refresh_token.unwrap();
    let other = sandbox.connect(MYOB).await.refresh_token.unwrap();
    sandbox.set_faults(MYOB, json!({"token_delay_ms": 150})).await;

    let started = Instant::now();
    // Another grant refreshing at the same time is no violation.
    let (mine, theirs) = tokio::join!(sandbox.refresh_ok(MYOB, &token), sandbox.refresh_ok(MYOB, &other));
    assert!(theirs["refresh_token"].is_string());
    token = mine["refresh_token"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        token = sandbox.refresh_ok(MYOB, &token).await["refresh_token"].as_str().unwrap().to_owned();
    }
    assert!(started.elapsed() >= Duration::from_millis(450), "each response was held 150 ms");

    let stats = sandbox.stats(MYOB).await;
    assert_eq!(stats["max_concurrent_refreshes_per_grant"], 1);
    assert_eq!(stats["concurrent_refresh_violations"], 0);
    assert_eq!(stats["refreshes"], 4);
    assert_eq!(stats["grants"][0]["refreshes"], 3);
}

#[tokio::test]
async fn next_account_links_an_existing_account_and_supersedes_its_older_grant() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let first = sandbox.connect(XERO).await;
    sandbox.set_faults(XERO, json!({"next_account": first.account_id})).await;
    let second = sandbox.connect(XERO).await;
    assert_eq!(second.account_id, first.account_id, "the same organisation, linked twice");

    let stale = sandbox.refresh(XERO, first.refresh_token.as_deref().unwrap()).await;
    assert_eq!(error_code(stale).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
    let api = sandbox.call_api(XERO, &first.access_token, &first.account_id).await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        sandbox.refresh(XERO, second.refresh_token.as_deref().unwrap()).await.status(),
        StatusCode::OK
    );

    let stats = sandbox.stats(XERO).await;
    let grants = stats["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 2);
    assert_eq!(grants[0]["account_name"], "Demo Company 1");
    assert_eq!(grants[0]["superseded_by"], "xero-grant-2");
    assert_eq!(grants[0]["revoked"], true);
    assert_eq!(grants[1]["account_id"], first.account_id.as_str());
    assert!(grants[1]["current_refresh_token_issued_at"].is_string());

    // A third consent without next_account gets a new organisation again.
    assert_ne!(sandbox.connect(XERO).await.account_id, first.account_id);
}

#[tokio::test]
async fn the_consent_page_names_the_account_next_account_will_link() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let account = sandbox.sim.create_account(QBO, Some("Harbour Cafe <Ltd>"));
    sandbox.set_faults(QBO, json!({"auto_approve": false, "next_account": account.id})).await;
    let page = sandbox.http.get(sandbox.authorize_url(QBO, &[])).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("your existing company <strong>Harbour Cafe &lt;Ltd&gt;</strong>"), "{page}");
}

#[tokio::test]
async fn expired_refresh_tokens_get_invalid_grant_while_the_access_token_lives_on() {
    let sandbox = Sandbox::start(Rules::default().with_auto_approve(true)).await;
    let connected = sandbox.connect(QBO).await;
    let url =
        sandbox.control_url(&format!("quickbooks/accounts/{}/expire-refresh-tokens", connected.account_id));
    let response = sandbox.http.post(url).send().await.unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["expired_grants"], 1);

    let refresh = sandbox.refresh(QBO, connected.refresh_token.as_deref().unwrap()).await;
    assert_eq!(error_code(refresh).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
    let api = sandbox.call_api(QBO, &connected.access_token, &connected.account_id).await;
    assert_eq!(api.status(), StatusCode::OK);
    assert_eq!(sandbox.stats(QBO).await["grants"][0]["refresh_token_expired"], true);
}

#[tokio::test]
async fn fast_rules_expire_access_tokens_in_seconds() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let connected = sandbox.connect(QBO).await;
    assert_eq!(connected.body["expires_in"], 2);
    sandbox.advance(Duration::from_secs(2));
    let api = sandbox.call_api(QBO, &connected.access_token, &connected.account_id).await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    let fresh = sandbox.refresh_ok(QBO, connected.refresh_token.as_deref().unwrap()).await;
    assert_ne!(
        fresh["refresh_token"],
        connected.refresh_token.as_deref().unwrap(),
        "rotation interval is 1 s"
    );
}

#[tokio::test]
async fn the_control_api_rejects_unknown_providers_malformed_json_and_unknown_accounts() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let http = &sandbox.http;

    let response = http.get(sandbox.control_url("sage/stats")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "unknown_provider");

    let response = http
        .post(sandbox.control_url("xero/faults"))
        .header("content-type", "application/json")
        .body("{\"drop_next_token_responses\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "malformed_json");

    let response =
        http.post(sandbox.control_url("xero/faults")).json(&json!({"drop_next": 1})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "unknown switches are typos, not no-ops");

    let response = http
        .post(sandbox.control_url("xero/faults"))
        .json(&json!({"outage": {"status": 200}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let response = http
        .post(sandbox.control_url("xero/faults"))
        .json(&json!({"next_account": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = http.post(sandbox.control_url("myob/accounts/nope/revoke")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "unknown_account");
    assert_eq!(sandbox.faults_json(XERO).await["outage"], Value::Null, "refused updates change nothing");
}

#[tokio::test]
async fn accounts_can_be_created_and_listed_through_the_control_api() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let response = sandbox
        .http
        .post(sandbox.control_url("myob/accounts"))
        .json(&json!({"name": "Clearwater Plumbing"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    sandbox.set_faults(MYOB, json!({"next_account": created["id"]})).await;
    let connected = sandbox.connect(MYOB).await;
    assert_eq!(connected.account_id, created["id"].as_str().unwrap());

    let list: Value =
        sandbox.http.get(sandbox.control_url("myob/accounts")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["data"][0]["name"], "Clearwater Plumbing");
    assert_eq!(list["data"][0]["grants"], json!(["myob-grant-1"]));
}

#[tokio::test]
async fn many_grants_refreshing_at_once_are_no_violation() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let mut tokens = Vec::new();
    for _ in 0..100 {
        tokens.push(sandbox.connect(XERO).await.refresh_token.unwrap());
    }
    let urls = sandbox.urls(XERO).clone();
    let mut calls = tokio::task::JoinSet::new();
    for token in tokens {
        let (http, urls) = (sandbox.http.clone(), urls.clone());
        calls.spawn(async move {
            let form = [("grant_type", "refresh_token"), ("refresh_token", token.as_str())];
            let request = http.post(&urls.token_url).basic_auth(&urls.client_id, Some(&urls.client_secret));
            request.form(&form).send().await.map(|r| r.status())
        });
    }
    while let Some(status) = calls.join_next().await {
        assert_eq!(status.unwrap().unwrap(), StatusCode::OK);
    }
    let stats = sandbox.stats(XERO).await;
    assert_eq!(stats["refreshes"], 100);
    assert_eq!(stats["max_concurrent_refreshes_per_grant"], 1);
    assert_eq!(stats["concurrent_refresh_violations"], 0);
}
