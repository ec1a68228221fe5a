use ledgerlink_sandbox::providers::{Provider, Rules};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{DAY, MINUTE, REDIRECT_URI, STATE, Sandbox, error_code, location, query_param};

const XERO: Provider = Provider::Xero;

fn auto() -> Rules {
    Rules::default().with_auto_approve(true)
}

#[tokio::test]
async fn the_code_flow_with_pkce_yields_xero_tokens_and_a_tenant() {
    let sandbox = Sandbox::start(auto()).await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let callback =
        sandbox.approve(XERO, &[("code_challenge", challenge), ("code_challenge_method", "S256")]).await;
    assert!(callback.as_str().starts_with("https://app.example.com/oauth/callback?tenant=t1&code="));
    assert_eq!(query_param(&callback, "state").as_deref(), Some(STATE));

    let response = sandbox.exchange(XERO, &callback, &[("code_verifier", verifier)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store, no-cache, max-age=0");
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["expires_in"], 1800);
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile email accounting.settings offline_access");
    assert!(tokens["refresh_token"].is_string());
    assert_eq!(tokens["id_token"].as_str().unwrap().split('.').count(), 3);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(access.split('.').count(), 3, "Xero access tokens are JWTs");

    let connections: Value = sandbox
        .http
        .get(&sandbox.urls(XERO).connections_url)
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let connection = &connections[0];
    assert_eq!(connections.as_array().unwrap().len(), 1);
    assert_eq!(connection["tenantType"], "ORGANISATION");
    assert_eq!(connection["tenantName"], "Demo Company 1");
    for field in ["id", "authEventId", "tenantId", "createdDateUtc", "updatedDateUtc"] {
        assert!(connection[field].is_string(), "{field} missing from {connection}");
    }

    let tenant = connection["tenantId"].as_str().unwrap();
    let response = sandbox.call_api(XERO, access, tenant).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-minlimit-remaining"], "59");
    assert_eq!(response.headers()["x-daylimit-remaining"], "4999");
    assert_eq!(response.headers()["x-appminlimit-remaining"], "9999");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["Organisations"][0]["OrganisationID"], tenant);
    assert_eq!(body["Organisations"][0]["Name"], "Demo Company 1");
}

#[tokio::test]
async fn a_wrong_pkce_verifier_or_redirect_uri_is_an_invalid_grant() {
    let sandbox = Sandbox::start(auto()).await;
    let pkce = [
        ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        ("code_challenge_method", "S256"),
    ];

    let callback = sandbox.approve(XERO, &pkce).await;
    let response = sandbox.exchange(XERO, &callback, &[("code_verifier", "not-the-verifier")]).await;
    assert_eq!(error_code(response).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));

    let callback = sandbox.approve(XERO, &pkce).await;
    let response = sandbox.exchange(XERO, &callback, &[]).await;
    assert_eq!(error_code(response).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));

    let callback = sandbox.approve(XERO, &[]).await;
    let code = query_param(&callback, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", "https://other.example.com/cb"),
    ];
    let response = sandbox.token(XERO, &form).await.unwrap();
    assert_eq!(error_code(response).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
}

#[tokio::test]
async fn an_authorization_code_works_once_and_expires_after_five_minutes() {
    let sandbox = Sandbox::start(auto()).await;
    let callback = sandbox.approve(XERO, &[]).await;
    assert_eq!(sandbox.exchange(XERO, &callback, &[]).await.status(), StatusCode::OK);
    let reused = sandbox.exchange(XERO, &callback, &[]).await;
    assert_eq!(error_code(reused).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));

    let callback = sandbox.approve(XERO, &[]).await;
    sandbox.advance(5 * MINUTE);
    let late = sandbox.exchange(XERO, &callback, &[]).await;
    assert_eq!(error_code(late).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
}

#[tokio::test]
async fn missing_or_wrong_client_credentials_are_an_invalid_client() {
    let sandbox = Sandbox::start(auto()).await;
    let callback = sandbox.approve(XERO, &[]).await;
    let code = query_param(&callback, "code").unwrap();
    let form =
        [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT_URI)];
    let token_url = &sandbox.urls(XERO).token_url;

    let response = sandbox.http.post(token_url).form(&form).send().await.unwrap();
    assert_eq!(error_code(response).await, (StatusCode::UNAUTHORIZED, "invalid_client".into()));
    let client_id = &sandbox.urls(XERO).client_id;
    let response =
        sandbox.http.post(token_url).basic_auth(client_id, Some("wrong")).form(&form).send().await.unwrap();
    assert_eq!(error_code(response).await, (StatusCode::UNAUTHORIZED, "invalid_client".into()));
}

#[tokio::test]
async fn without_offline_access_no_refresh_token_is_issued() {
    let sandbox = Sandbox::start(auto()).await;
    let callback = sandbox.approve(XERO, &[("scope", "openid accounting.settings")]).await;
    let tokens: Value = sandbox.exchange(XERO, &callback, &[]).await.json().await.unwrap();
    assert!(tokens["access_token"].is_string());
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
}

#[tokio::test]
async fn a_superseded_refresh_token_works_within_the_grace_period_and_fails_after_it() {
    let sandbox = Sandbox::start(auto()).await;
    let first = sandbox.connect(XERO).await.refresh_token.unwrap();

    let second = sandbox.refresh_ok(XERO, &first).await["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first, "Xero rotates on every refresh");
    assert!(sandbox.sim.is_current_refresh_token(XERO, &second));
    assert!(!sandbox.sim.is_current_refresh_token(XERO, &first));

    // As after a lost response: the client retries with the token it still has.
    sandbox.advance(29 * MINUTE);
    let third = sandbox.refresh_ok(XERO, &first).await["refresh_token"].as_str().unwrap().to_owned();
    assert!(third != first && third != second, "a reuse within grace rotates again");
    assert!(sandbox.sim.is_current_refresh_token(XERO, &third));

    sandbox.advance(2 * MINUTE);
    let expired = sandbox.refresh(XERO, &first).await;
    assert_eq!(error_code(expired).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
    // `second` was superseded two minutes ago, so it is still in its own grace period.
    assert_eq!(sandbox.refresh(XERO, &second).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_refresh_token_unused_for_sixty_days_expires() {
    let sandbox = Sandbox::start(auto()).await;
    let token = sandbox.connect(XERO).await.refresh_token.unwrap();
    sandbox.advance(59 * DAY);
    let token = sandbox.refresh_ok(XERO, &token).await["refresh_token"].as_str().unwrap().to_owned();
    sandbox.advance(60 * DAY);
    let response = sandbox.refresh(XERO, &token).await;
    assert_eq!(error_code(response).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
}

#[tokio::test]
async fn an_expired_or_unknown_access_token_gets_xeros_401_problem() {
    let sandbox = Sandbox::start(auto()).await;
    let connected = sandbox.connect(XERO).await;
    sandbox.advance(30 * MINUTE);
    let response = sandbox.call_api(XERO, &connected.access_token, &connected.account_id).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["Title"], "Unauthorized");
    assert_eq!(body["Status"], 401);
    assert!(body["Type"].is_null() && body["Extensions"] == json!({}) && body["Instance"].is_string());
    assert_eq!(body["Detail"], "TokenExpired: token expired at 11/22/2026 18:30:00");

    let response = sandbox.call_api(XERO, "made-up", &connected.account_id).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["Detail"], "AuthenticationUnsuccessful");
}

#[tokio::test]
async fn a_missing_or_foreign_tenant_id_is_forbidden() {
    let sandbox = Sandbox::start(auto()).await;
    let mine = sandbox.connect(XERO).await;
    let other = sandbox.connect(XERO).await;
    assert_ne!(mine.account_id, other.account_id);

    let response = sandbox.call_api(XERO, &mine.access_token, &other.account_id).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["Title"].as_str(), body["Detail"].as_str()),
        (Some("Forbidden"), Some("AuthenticationUnsuccessful"))
    );

    let url = format!("{}/Organisation", sandbox.urls(XERO).api_base_url);
    let response = sandbox.http.get(url).bearer_auth(&mine.access_token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_the_whole_grant() {
    let sandbox = Sandbox::start(auto()).await;
    let connected = sandbox.connect(XERO).await;
    let refresh = connected.refresh_token.unwrap();
    let urls = sandbox.urls(XERO);
    let revoke_url = urls.revoke_url.as_deref().unwrap();

    let unauthenticated = sandbox.http.post(revoke_url).form(&[("token", &refresh)]).send().await.unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sandbox.refresh(XERO, &refresh).await.status(), StatusCode::OK, "nothing was revoked yet");

    let current = sandbox.sim.current_refresh_token(XERO, "xero-grant-1").unwrap();
    let response = sandbox
        .http
        .post(revoke_url)
        .basic_auth(&urls.client_id, Some(&urls.client_secret))
        .form(&[("token", &current)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    for token in [&refresh, &current] {
        let response = sandbox.refresh(XERO, token).await;
        assert_eq!(error_code(response).await, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
    }
    let api = sandbox.call_api(XERO, &connected.access_token, &connected.account_id).await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sandbox.stats(XERO).await["grants"][0]["revoked"], true);
}

#[tokio::test]
async fn the_consent_page_offers_allow_and_deny_and_deny_returns_access_denied() {
    let sandbox = Sandbox::start(Rules::default()).await;
    let authorize = sandbox.authorize_url(XERO, &[]);
    let response = sandbox.http.get(authorize.clone()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = response.text().await.unwrap();
    assert!(page.contains(">Allow access</button>") && page.contains(">Deny</button>"), "{page}");
    assert!(page.contains("Demo Company 1"));
    assert!(page.contains("action=\"authorize/decision\""));
    // The redirect URI's own query survives the round trip through hidden fields.
    assert!(page.contains("value=\"https://app.example.com/oauth/callback?tenant=t1\""));

    // The form's relative action, resolved as a browser would.
    let decision = authorize.join("authorize/decision").unwrap();
    assert!(decision.path().ends_with("/sandbox/xero/identity/connect/authorize/decision"));
    let fields: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();

    let mut deny = fields.clone();
    deny.push(("decision".into(), "deny".into()));
    let response = sandbox.http.post(decision.clone()).form(&deny).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let callback = location(&response);
    assert_eq!(query_param(&callback, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&callback, "state").as_deref(), Some(STATE));
    assert_eq!(query_param(&callback, "code"), None);

    let mut allow = fields;
    allow.push(("decision".into(), "allow".into()));
    let response = sandbox.http.post(decision).form(&allow).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let callback = location(&response);
    assert_eq!(sandbox.exchange(XERO, &callback, &[]).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_authorize_requests_get_an_error_page_and_no_redirect() {
    let sandbox = Sandbox::start(auto()).await;
    for overrides in [
        vec![("redirect_uri", "")],
        vec![("redirect_uri", "not a url")],
        vec![("client_id", "someone-else")],
        vec![("response_type", "token")],
        vec![("scope", "")],
        vec![("code_challenge", "abc"), ("code_challenge_method", "plain")],
    ] {
        let response = sandbox.http.get(sandbox.authorize_url(XERO, &overrides)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{overrides:?}");
        assert!(response.headers().get("location").is_none());
        assert!(response.text().await.unwrap().contains("Sorry, something went wrong"));
    }
}

#[tokio::test]
async fn a_rate_limit_answers_429_with_retry_after_and_the_problem_header() {
    let sandbox = Sandbox::start(auto()).await;
    let connected = sandbox.connect(XERO).await;
    sandbox.set_faults(XERO, json!({"rate_limit": {"retry_after_secs": 42, "count": 2}})).await;

    let api = sandbox.call_api(XERO, &connected.access_token, &connected.account_id).await;
    assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(api.headers()["retry-after"], "42");
    assert_eq!(api.headers()["x-rate-limit-problem"], "minute");
    let token = sandbox.refresh(XERO, connected.refresh_token.as_deref().unwrap()).await;
    assert_eq!(token.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(token.headers()["retry-after"], "42");

    let api = sandbox.call_api(XERO, &connected.access_token, &connected.account_id).await;
    assert_eq!(api.status(), StatusCode::OK, "the limit was for two calls");
    assert_eq!(sandbox.stats(XERO).await["rate_limited_responses"], 2);
}

#[tokio::test]
async fn the_sixty_first_call_for_a_tenant_in_a_minute_is_refused_when_limits_are_enforced() {
    let sandbox = Sandbox::start(auto()).await;
    let connected = sandbox.connect(XERO).await;
    for _ in 0..60 {
        let response = sandbox.call_api(XERO, &connected.access_token, &connected.account_id).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = sandbox.call_api(XERO, &connected.access_token, &connected.account_id).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["x-rate-limit-problem"], "minute");
    let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));

    sandbox.advance(MINUTE);
    let response = sandbox.call_api(XERO, &connected.access_token, &connected.account_id).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn deleting_the_connection_leaves_the_token_reaching_no_tenant() {
    let sandbox = Sandbox::start(auto()).await;
    let connected = sandbox.connect(XERO).await;
    let connections_url = &sandbox.urls(XERO).connections_url;
    let list: Value = sandbox
        .http
        .get(connections_url)
        .bearer_auth(&connected.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = list[0]["id"].as_str().unwrap();
    let response = sandbox
        .http
        .delete(format!("{connections_url}/{id}"))
        .bearer_auth(&connected.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let list: Value = sandbox
        .http
        .get(connections_url)
        .bearer_auth(&connected.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));
    let api = sandbox.call_api(XERO, &connected.access_token, &connected.account_id).await;
    assert_eq!(api.status(), StatusCode::FORBIDDEN);
}
