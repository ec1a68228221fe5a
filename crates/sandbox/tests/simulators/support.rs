//! Serves the simulators on a random port, mounted under `/sandbox` as the hub mounts them,
//! with a manual clock, and speaks to them like a hub would.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ledgerlink_core::{ManualClock, Timestamp};
use ledgerlink_sandbox::providers::{Endpoints, Provider, ProviderEndpoints, Rules, Simulator, router};
use reqwest::redirect::Policy;
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use url::Url;

pub const REDIRECT_URI: &str = "https://app.example.com/oauth/callback?tenant=t1";
pub const STATE: &str = "st-42";

pub struct Sandbox {
    pub sim: Simulator,
    pub clock: ManualClock,
    pub http: Client,
    pub endpoints: Endpoints,
}

/// What a successful code flow leaves the client with.
pub struct Connected {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub account_id: String,
    pub body: Value,
}

pub fn default_scope(provider: Provider) -> &'static str {
    match provider {
        Provider::Xero => "openid profile email accounting.settings offline_access",
        Provider::QuickBooks => "com.intuit.quickbooks.accounting",
        Provider::Myob => "sme-company-file",
    }
}

impl Sandbox {
    pub async fn start(rules: Rules) -> Self {
        let clock = ManualClock::new(Timestamp::from_millis(1_795_370_400_000));
        let sim = Simulator::new(Arc::new(clock.clone()), rules);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
        let addr = listener.local_addr().expect("local address");
        let app = Router::new().nest("/sandbox", router(sim.clone()));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve the sandbox") });
        let http = Client::builder().redirect(Policy::none()).build().expect("build a client");
        let endpoints = Simulator::endpoints(&format!("http://{addr}/sandbox/"));
        Self { sim, clock, http, endpoints }
    }

    pub fn urls(&self, provider: Provider) -> &ProviderEndpoints {
        self.endpoints.get(provider)
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub fn control_url(&self, path: &str) -> String {
        let base = self.urls(Provider::Xero).authorize_url.split("/xero/").next().unwrap().to_owned();
        format!("{base}/_control/{path}")
    }

    /// The authorize URL with the usual parameters; `overrides` replace or add (an empty value
    /// removes the parameter).
    pub fn authorize_url(&self, provider: Provider, overrides: &[(&str, &str)]) -> Url {
        let client_id = self.urls(provider).client_id.clone();
        let mut params: Vec<(String, String)> = vec![
            ("response_type".into(), "code".into()),
            ("client_id".into(), client_id),
            ("redirect_uri".into(), REDIRECT_URI.into()),
            ("scope".into(), default_scope(provider).into()),
            ("state".into(), STATE.into()),
        ];
        for (name, value) in overrides {
            params.retain(|(n, _)| n != name);
            if !value.is_empty() {
                params.push(((*name).into(), (*value).into()));
            }
        }
        let mut url = Url::parse(&self.urls(provider).authorize_url).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        url
    }

    /// Follows an auto-approved authorize request to the app's callback URL.
    pub async fn approve(&self, provider: Provider, overrides: &[(&str, &str)]) -> Url {
        let response = self.http.get(self.authorize_url(provider, overrides)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND, "authorize should redirect at once");
        location(&response)
    }

    /// A token-endpoint call with the client authentication the provider expects.
    pub async fn token(&self, provider: Provider, form: &[(&str, &str)]) -> reqwest::Result<Response> {
        let urls = self.urls(provider);
        let request = self.http.post(&urls.token_url);
        match provider {
            Provider::Myob => {
                let mut form = form.to_vec();
                form.push(("client_id", &urls.client_id));
                form.push(("client_secret", &urls.client_secret));
                request.form(&form).send().await
            }
            _ => request.basic_auth(&urls.client_id, Some(&urls.client_secret)).form(form).send().await,
        }
    }

    pub async fn exchange(&self, provider: Provider, callback: &Url, extra: &[(&str, &str)]) -> Response {
        let code = query_param(callback, "code").expect("a code on the callback");
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
        ];
        form.extend_from_slice(extra);
        self.token(provider, &form).await.unwrap()
    }

    pub async fn refresh(&self, provider: Provider, refresh_token: &str) -> Response {
        self.token(provider, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)])
            .await
            .unwrap()
    }

    /// Refreshes and returns the new tokens, asserting success.
    pub async fn refresh_ok(&self, provider: Provider, refresh_token: &str) -> Value {
        let response = self.refresh(provider, refresh_token).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// The whole code flow with auto-approval.
    pub async fn connect(&self, provider: Provider) -> Connected {
        let callback = self.approve(provider, &[]).await;
        let response = self.exchange(provider, &callback, &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        let access_token = body["access_token"].as_str().unwrap().to_owned();
        let account_id = match provider {
            Provider::Xero => {
                let connections: Value = self
                    .http
                    .get(&self.urls(provider).connections_url)
                    .bearer_auth(&access_token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                connections[0]["tenantId"].as_str().unwrap().to_owned()
            }
            Provider::QuickBooks => query_param(&callback, "realmId").unwrap(),
            Provider::Myob => query_param(&callback, "businessId").unwrap(),
        };
        Connected {
            access_token,
            refresh_token: body["refresh_token"].as_str().map(str::to_owned),
            account_id,
            body,
        }
    }

    /// The provider's simplest authenticated data call (organisation / company info / company).
    pub async fn call_api(&self, provider: Provider, access_token: &str, account_id: &str) -> Response {
        let urls = self.urls(provider);
        let request = match provider {
            Provider::Xero => self
                .http
                .get(format!("{}/Organisation", urls.api_base_url))
                .header("xero-tenant-id", account_id),
            Provider::QuickBooks => self
                .http
                .get(format!("{}/company/{account_id}/companyinfo/{account_id}", urls.api_base_url))
                .header("Accept", "application/json"),
            Provider::Myob => self
                .http
                .get(format!("{}/{account_id}/Company", urls.api_base_url))
                .header("x-myobapi-key", &urls.client_id)
                .header("x-myobapi-version", "v2"),
        };
        request.bearer_auth(access_token).send().await.unwrap()
    }

    /// A data-API request for `path` under the connected account (Xero: `api.xro/2.0/{path}`;
    /// QuickBooks: `v3/company/{realm}/{path}`; MYOB: `accountright/{business}/{path}`), with
    /// the bearer token and the headers each provider needs.
    pub fn api(
        &self,
        provider: Provider,
        method: Method,
        connected: &Connected,
        path: &str,
    ) -> RequestBuilder {
        let urls = self.urls(provider);
        let account = &connected.account_id;
        let request = match provider {
            Provider::Xero => self
                .http
                .request(method, format!("{}/{path}", urls.api_base_url))
                .header("xero-tenant-id", account),
            Provider::QuickBooks => self
                .http
                .request(method, format!("{}/company/{account}/{path}", urls.api_base_url))
                .header("Accept", "application/json"),
            Provider::Myob => self
                .http
                .request(method, format!("{}/{account}/{path}", urls.api_base_url))
                .header("x-myobapi-key", &urls.client_id)
                .header("x-myobapi-version", "v2"),
        };
        request.bearer_auth(&connected.access_token)
    }

    /// Sends `api(…)` and returns the status and the body as JSON (`Null` when it is not JSON).
    pub async fn api_json(
        &self,
        provider: Provider,
        method: Method,
        connected: &Connected,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.api(provider, method, connected, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Changes fault switches through the control API; returns the refusal's status and body.
    pub async fn try_set_faults(&self, provider: Provider, faults: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.control_url(&format!("{provider}/faults")))
            .json(&faults)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    pub async fn set_faults(&self, provider: Provider, faults: Value) {
        let response = self
            .http
            .post(self.control_url(&format!("{provider}/faults")))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
    }

    pub async fn faults_json(&self, provider: Provider) -> Value {
        let response = self.http.get(self.control_url(&format!("{provider}/faults"))).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    pub async fn stats(&self, provider: Provider) -> Value {
        let response = self.http.get(self.control_url(&format!("{provider}/stats"))).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

pub fn location(response: &Response) -> Url {
    let location = response.headers().get("location").expect("a Location header").to_str().unwrap();
    Url::parse(location).expect("an absolute Location")
}

pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(n, _)| n == name).map(|(_, v)| v.into_owned())
}

pub async fn error_code(response: Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap_or_default().to_owned())
}

pub const MINUTE: Duration = Duration::from_secs(60);
pub const HOUR: Duration = Duration::from_secs(3600);
pub const DAY: Duration = Duration::from_secs(86_400);
