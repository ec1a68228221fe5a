use ledgerlink_sandbox::providers::{Provider, Rules};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{MINUTE, STATE, Sandbox, error_code, query_param};

const MYOB: Provider = Provider::Myob;

fn auto() -> Rules {
    Rules::default().with_auto_approve(true)
}

#[tokio::test]
async fn the_code_flow_returns_a_business_id_and_expires_in_as_a_string() {
    let sandbox = Sandbox::start(auto()).await;
    let callback = sandbox.approve(MYOB, &[]).await;
    let business = query_param(&callback, "businessId").expect("businessId on the callback");
    assert_eq!(business.len(), 36);
    assert_eq!(query_param(&callback, "state").as_deref(), Some(STATE));

    let tokens: Value = sandbox.exchange(MYOB, &callback, &[]).await.json().await.unwrap();
    assert_eq!(tokens["expires_in"], "1200", "MYOB sends expires_in as a JSON string");
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["scope"], "sme-company-file");
    assert!(tokens["refresh_token"].is_string());
    assert!(tokens["user"]["uid"].is_string() && tokens["user"]["username"].is_string());
}

#[tokio::test]
async fn the_token_endpoint_wants_client_credentials_in_the_form() {
    let sandbox = Sandbox::start(auto()).await;
    let callback = sandbox.approve(MYOB, &[]).await;
    let code = query_param(&callback, "code").unwrap();
    let urls = sandbox.urls(MYOB);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", crate::support::REDIRECT_URI),
        ("client_id", urls.client_id.as_str()),
        ("client_secret", "wrong"),
    ];
    let response = sandbox.http.post(&urls.token_url).form(&form).send().await.unwrap();
    assert_eq!(error_code(response).await, (StatusCode::BAD_REQUEST, "invalid_client".into()));
}

#[tokio::test]
async fn the_old_refresh_token_fails_at_once_after_a_refresh() {
    let sandbox = Sandbox::start(auto()).await;
    let first = sandbox.connect(MYOB).await.refresh_token.unwrap();
    let second = sandbox.refresh_ok(MYOB, &first).await["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    let stale = sandbox.refresh(MYOB, &first).await;
    assert_eq!(error_code(stale).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
    assert_eq!(sandbox.refresh(MYOB, &second).await.status(), StatusCode::OK);
    assert_eq!(sandbox.stats(MYOB).await["invalid_grants"], 1);
}

#[tokio::test]
async fn the_company_file_list_links_each_file_under_the_requested_base() {
    let sandbox = Sandbox::start(auto()).await;
    let connected = sandbox.connect(MYOB).await;
    let urls = sandbox.urls(MYOB);
    let files: Value = sandbox
        .http
        .get(&urls.connections_url)
        .bearer_auth(&connected.access_token)
        .header("x-myobapi-key", &urls.client_id)
        .header("x-myobapi-version", "v2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file = &files[0];
    assert_eq!(file["Id"], connected.account_id.as_str());
    assert_eq!(file["Name"], "Demo Business 1");
    assert_eq!(file["Uri"], format!("{}/{}", urls.api_base_url, connected.account_id));

    let company: Value = sandbox
        .http
        .get(format!("{}/Company", file["Uri"].as_str().unwrap()))
        .bearer_auth(&connected.access_token)
        .header("x-myobapi-key", &urls.client_id)
        .header("x-myobapi-version", "v2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(company["CompanyName"], "Demo Business 1");
    assert!(company["SerialNumber"].is_string());
}

#[tokio::test]
async fn a_missing_api_key_is_developer_inactive_and_a_bad_token_is_oauth_token_is_invalid() {
    let sandbox = Sandbox::start(auto()).await;
    let connected = sandbox.connect(MYOB).await;
    let company_url = format!("{}/{}/Company", sandbox.urls(MYOB).api_base_url, connected.account_id);

    let response = sandbox.http.get(&company_url).bearer_auth(&connected.access_token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["Errors"][0]["Name"], "DeveloperInactive");

    let response = sandbox.call_api(MYOB, "not-a-token", &connected.account_id).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    let error = &body["Errors"][0];
    assert_eq!(error["Name"], "OAuthTokenIsInvalid");
    assert_eq!(error["Message"], "The supplied OAuth token (Bearer) is not valid");
    assert_eq!(error["ErrorCode"], 31001);
    assert_eq!(error["Severity"], "Error");
    assert_eq!(error["AdditionalDetails"], "");

    sandbox.advance(20 * MINUTE);
    let response = sandbox.call_api(MYOB, &connected.access_token, &connected.account_id).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "access tokens live 20 minutes");
}

#[tokio::test]
async fn a_rate_limit_is_a_403_rate_limit_error_not_a_429() {
    let sandbox = Sandbox::start(auto()).await;
    let connected = sandbox.connect(MYOB).await;
    sandbox.set_faults(MYOB, json!({"rate_limit": {"retry_after_secs": 1, "count": 1}})).await;
    let response = sandbox.call_api(MYOB, &connected.access_token, &connected.account_id).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["Errors"][0]["Name"], "RateLimitError");
    let response = sandbox.call_api(MYOB, &connected.access_token, &connected.account_id).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_outage_of_504_answers_a_gateway_timeout_error() {
    let sandbox = Sandbox::start(auto()).await;
    let connected = sandbox.connect(MYOB).await;
    sandbox.set_faults(MYOB, json!({"outage": {"status": 504}})).await;
    for _ in 0..2 {
        let response = sandbox.call_api(MYOB, &connected.access_token, &connected.account_id).await;
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["Errors"][0]["Name"], "GatewayTimeout");
    }
    let token = sandbox.refresh(MYOB, connected.refresh_token.as_deref().unwrap()).await;
    assert_eq!(token.status(), StatusCode::GATEWAY_TIMEOUT, "an outage without a count lasts until cleared");
}

#[tokio::test]
async fn a_revoked_account_gets_invalid_grant_on_refresh_and_401_from_the_api() {
    let sandbox = Sandbox::start(auto()).await;
    let connected = sandbox.connect(MYOB).await;
    let url = sandbox.control_url(&format!("myob/accounts/{}/revoke", connected.account_id));
    let response = sandbox.http.post(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["revoked_grants"], 1);

    let refresh = sandbox.refresh(MYOB, connected.refresh_token.as_deref().unwrap()).await;
    assert_eq!(error_code(refresh).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
    let api = sandbox.call_api(MYOB, &connected.access_token, &connected.account_id).await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
}
