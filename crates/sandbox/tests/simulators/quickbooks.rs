use ledgerlink_sandbox::providers::{Provider, Rules};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{DAY, HOUR, STATE, Sandbox, error_code, location, query_param};

const QBO: Provider = Provider::QuickBooks;

fn auto() -> Rules {
    Rules::default().with_auto_approve(true)
}

#[tokio::test]
async fn the_code_flow_returns_a_realm_id_and_intuits_token_fields() {
    let sandbox = Sandbox::start(auto()).await;
    let callback = sandbox.approve(QBO, &[]).await;
    let realm = query_param(&callback, "realmId").expect("realmId on the callback");
    assert!(realm.len() >= 15 && realm.chars().all(|c| c.is_ascii_digit()), "{realm}");
    assert_eq!(query_param(&callback, "state").as_deref(), Some(STATE));

    let response = sandbox.exchange(QBO, &callback, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("intuit_tid"));
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["x_refresh_token_expires_in"], 8_640_000);
    assert!(tokens["refresh_token"].as_str().unwrap().starts_with("AB11"));
    let access = tokens["access_token"].as_str().unwrap();

    let response = sandbox.call_api(QBO, access, &realm).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["CompanyInfo"]["CompanyName"], "Sandbox Company 1");
    assert!(body["CompanyInfo"]["Id"].is_string() && body["time"].is_string());

    let userinfo: Value = sandbox
        .http
        .get(&sandbox.urls(QBO).connections_url)
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(userinfo["sub"].is_string() && userinfo["email"].is_string(), "{userinfo}");
}

#[tokio::test]
async fn a_refresh_within_a_day_keeps_the_value_and_a_later_one_replaces_it_at_once() {
    let sandbox = Sandbox::start(auto()).await;
    let first = sandbox.connect(QBO).await.refresh_token.unwrap();

    sandbox.advance(23 * HOUR);
    let tokens = sandbox.refresh_ok(QBO, &first).await;
    assert_eq!(tokens["refresh_token"], first.as_str(), "same value within 24 h of its issue");
    // The value's 100 days run from its issue, 23 hours ago.
    assert_eq!(tokens["x_refresh_token_expires_in"], 8_640_000 - 23 * 3600);
    assert_eq!(sandbox.refresh_ok(QBO, &first).await["refresh_token"], first.as_str());

    sandbox.advance(HOUR);
    let tokens = sandbox.refresh_ok(QBO, &first).await;
    let second = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(tokens["x_refresh_token_expires_in"], 8_640_000);

    let stale = sandbox.refresh(QBO, &first).await;
    assert_eq!(error_code(stale).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
    assert_eq!(sandbox.refresh_ok(QBO, &second).await["refresh_token"], second.as_str());
}

#[tokio::test]
async fn a_refresh_token_value_lives_one_hundred_days() {
    let sandbox = Sandbox::start(auto()).await;
    let token = sandbox.connect(QBO).await.refresh_token.unwrap();
    sandbox.advance(100 * DAY);
    let response = sandbox.refresh(QBO, &token).await;
    assert_eq!(error_code(response).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
}

#[tokio::test]
async fn an_expired_access_token_gets_an_authentication_fault_3200() {
    let sandbox = Sandbox::start(auto()).await;
    let connected = sandbox.connect(QBO).await;
    sandbox.advance(HOUR);
    let response = sandbox.call_api(QBO, &connected.access_token, &connected.account_id).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    let error = &body["Fault"]["Error"][0];
    assert_eq!(body["Fault"]["type"], "AUTHENTICATION");
    assert_eq!(error["code"], "3200");
    assert_eq!(error["Message"], "message=AuthenticationFailed; errorCode=003200; statusCode=401");
    assert!(error["Detail"].as_str().unwrap().starts_with("Token expired: "));
    assert!(body["time"].is_string());
}

#[tokio::test]
async fn a_realm_the_token_does_not_grant_gets_an_authorization_fault_3100() {
    let sandbox = Sandbox::start(auto()).await;
    let mine = sandbox.connect(QBO).await;
    let other = sandbox.connect(QBO).await;
    let response = sandbox.call_api(QBO, &mine.access_token, &other.account_id).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["Fault"]["Error"][0]["code"], "3100");
    assert!(
        body["Fault"]["Error"][0]["Message"].as_str().unwrap().contains("ApplicationAuthorizationFailed")
    );
}

#[tokio::test]
async fn revoking_with_the_access_token_ends_the_grant() {
    let sandbox = Sandbox::start(auto()).await;
    let connected = sandbox.connect(QBO).await;
    let urls = sandbox.urls(QBO);
    let response = sandbox
        .http
        .post(urls.revoke_url.as_deref().unwrap())
        .basic_auth(&urls.client_id, Some(&urls.client_secret))
        .json(&json!({"token": connected.access_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let refresh = sandbox.refresh(QBO, connected.refresh_token.as_deref().unwrap()).await;
    assert_eq!(error_code(refresh).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
    let api = sandbox.call_api(QBO, &connected.access_token, &connected.account_id).await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_rate_limit_answers_429_with_a_throttle_fault_and_retry_after() {
    let sandbox = Sandbox::start(auto()).await;
    let connected = sandbox.connect(QBO).await;
    sandbox.set_faults(QBO, json!({"rate_limit": {"retry_after_secs": 60}})).await;
    for _ in 0..3 {
        let response = sandbox.call_api(QBO, &connected.access_token, &connected.account_id).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "60");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["Fault"]["Error"][0]["code"], "003001", "Intuit sends the throttle code zero-padded");
        assert!(body["Fault"]["Error"][0]["Message"].as_str().unwrap().contains("errorCode=003001"));
    }
    let response = sandbox.http.delete(sandbox.control_url("quickbooks/faults")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = sandbox.call_api(QBO, &connected.access_token, &connected.account_id).await;
    assert_eq!(response.status(), StatusCode::OK, "clearing the faults ends the rate limit");
}

#[tokio::test]
async fn an_outage_answers_token_and_api_calls_with_its_status_then_recovers() {
    let sandbox = Sandbox::start(auto()).await;
    let connected = sandbox.connect(QBO).await;
    let refresh = connected.refresh_token.unwrap();
    sandbox.set_faults(QBO, json!({"outage": {"status": 503, "count": 2}})).await;

    let token = sandbox.refresh(QBO, &refresh).await;
    assert_eq!(token.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(token.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let api = sandbox.call_api(QBO, &connected.access_token, &connected.account_id).await;
    assert_eq!(api.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = api.json().await.unwrap();
    assert!(body["Fault"]["Error"][0]["code"].is_string());

    assert!(sandbox.sim.is_current_refresh_token(QBO, &refresh), "an outage changes no token");
    assert_eq!(sandbox.refresh(QBO, &refresh).await.status(), StatusCode::OK);
    let stats = sandbox.stats(QBO).await;
    assert_eq!(stats["outage_responses"], 2);
    assert_eq!(stats["refreshes"], 1);
}

#[tokio::test]
async fn the_deny_button_returns_access_denied_without_a_realm() {
    let sandbox = Sandbox::start(Rules::default()).await;
    let authorize = sandbox.authorize_url(QBO, &[]);
    let page = sandbox.http.get(authorize.clone()).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("action=\"oauth2/decision\"") && page.contains("Deny"));
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    form.push(("decision".into(), "deny".into()));
    let response =
        sandbox.http.post(authorize.join("oauth2/decision").unwrap()).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let callback = location(&response);
    assert_eq!(query_param(&callback, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&callback, "realmId"), None);
}
