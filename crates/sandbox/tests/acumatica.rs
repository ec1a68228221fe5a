//! The simulated MYOB Acumatica instance over real HTTP, mounted under `/sandbox` as the hub
//! mounts the simulators, with a manual clock, spoken to like the hub would: login, work,
//! always log out.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ledgerlink_core::{Diagnosis, ManualClock, Timestamp};
use ledgerlink_sandbox::acumatica::{Instance, InstanceRules, NewUser, messages, router};
use ledgerlink_sandbox::providers::{self, Rules, Simulator};
use reqwest::header::{COOKIE, HeaderMap, RETRY_AFTER, SET_COOKIE};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};

const MINUTE: Duration = Duration::from_secs(60);
const STRONG: &str = "Str0ng-Enough-Pass";

struct Site {
    instance: Instance,
    clock: ManualClock,
    http: Client,
    /// Where the router is mounted: `http://127.0.0.1:port/sandbox`.
    base: String,
}

/// The session cookies a login set, ready to send back.
#[derive(Clone, Debug)]
struct Session {
    cookie: String,
}

impl Site {
    async fn start(rules: InstanceRules) -> Self {
        let clock = ManualClock::new(Timestamp::from_millis(1_795_370_400_000));
        let instance = Instance::new(Arc::new(clock.clone()), rules);
        let app = Router::new().nest("/sandbox", router(instance.clone()));
        Self::serve(instance, clock, app).await
    }

    async fn serve(instance: Instance, clock: ManualClock, app: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve the sandbox") });
        Self { instance, clock, http: Client::new(), base: format!("http://{addr}/sandbox") }
    }

    /// A site with one API user `api` (strong password) in tenant `Company`.
    async fn with_user(rules: InstanceRules) -> Self {
        let site = Self::start(rules).await;
        site.instance.create_user(NewUser::new("api", STRONG, "Company")).unwrap();
        site
    }

    fn url(&self) -> String {
        self.instance.url(&self.base)
    }

    async fn login_body(&self, body: Value, session: Option<&Session>) -> Response {
        let mut request = self.http.post(format!("{}/entity/auth/login", self.url())).json(&body);
        if let Some(session) = session {
            request = request.header(COOKIE, &session.cookie);
        }
        request.send().await.unwrap()
    }

    async fn login(&self, name: &str, password: &str) -> Response {
        self.login_body(json!({"name": name, "password": password, "tenant": "Company"}), None).await
    }

    async fn login_ok(&self, name: &str, password: &str) -> Session {
        let response = self.login(name, password).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "login of {name}");
        Session { cookie: cookies(response.headers()) }
    }

    async fn logout(&self, session: Option<&Session>) -> StatusCode {
        let mut request = self.http.post(format!("{}/entity/auth/logout", self.url()));
        if let Some(session) = session {
            request = request.header(COOKIE, &session.cookie);
        }
        request.send().await.unwrap().status()
    }

    /// An entity request relative to `Default/22.200.001`.
    async fn entity(
        &self,
        method: Method,
        session: Option<&Session>,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let url = format!("{}/{path}", self.instance.entity_url(&self.base));
        let mut request = self.http.request(method, url);
        if let Some(session) = session {
            request = request.header(COOKIE, &session.cookie);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn get(&self, session: Option<&Session>, path: &str) -> Response {
        self.entity(Method::GET, session, path, None).await
    }

    async fn control(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let url = format!("{}/{path}", Instance::control_url(&self.base));
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn stats(&self) -> Value {
        let (status, stats) = self.control(Method::GET, "stats", None).await;
        assert_eq!(status, StatusCode::OK);
        stats
    }
}

/// `name=value` of every cookie set, as one `Cookie` header.
fn cookies(headers: &HeaderMap) -> String {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The status, `exceptionMessage` and `exceptionType` of a failed login.
async fn exception(response: Response) -> (StatusCode, String, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "An error has occurred.", "{body}");
    let text = |field: &str| body[field].as_str().unwrap_or_default().to_owned();
    (status, text("exceptionMessage"), text("exceptionType"))
}

/// How the hub reads a failed login: (category, retryable, provider code).
fn diagnose(status: StatusCode, message: &str) -> (String, bool, String) {
    let d = Diagnosis::acumatica_login(status.as_u16(), message);
    (d.category, d.retryable, d.provider_code.unwrap_or_default())
}

#[tokio::test]
async fn a_login_sets_the_session_cookies_and_a_logout_ends_the_session() {
    let site = Site::start(InstanceRules::default()).await;
    let (status, user) = site
        .control(
            Method::POST,
            "users",
            Some(json!({"name": "OcerraAPI", "password": "ocerra123", "tenant": "Company", "branch": ["HQ", "EAST"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!((user["name"].as_str(), user["tenant"].as_str()), (Some("OcerraAPI"), Some("Company")));
    assert_eq!(user["branches"], json!(["HQ", "EAST"]));
    assert!(user.get("password").is_none(), "the control API never shows a password");

    let response = site
        .login_body(
            json!({"name": "ocerraapi", "password": "ocerra123", "tenant": "company", "branch": "east"}),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let set: Vec<String> =
        response.headers().get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    for name in ["ASP.NET_SessionId=", ".ASPXAUTH="] {
        let cookie = set.iter().find(|c| c.starts_with(name)).unwrap_or_else(|| panic!("{name} in {set:?}"));
        assert!(cookie.contains("HttpOnly") && cookie.contains("path=/"), "{cookie}");
    }
    assert!(set.iter().any(|c| c.starts_with("UserBranch=2;")), "the second branch: {set:?}");
    let session = Session { cookie: cookies(response.headers()) };

    let customers: Value = site.get(Some(&session), "Customer").await.json().await.unwrap();
    assert_eq!(customers.as_array().unwrap().len(), 3);
    assert_eq!(customers[0]["CustomerID"]["value"], "C000001");
    let company: Value = site.get(Some(&session), "Company").await.json().await.unwrap();
    assert_eq!(
        (company[0]["CompanyName"]["value"].as_str(), company[0]["Branch"]["value"].as_str()),
        (Some("Company"), Some("EAST"))
    );

    // Both cookies make the session: one alone, or none, is not signed in.
    let ticket_only = session.cookie.split("; ").find(|c| c.starts_with(".ASPXAUTH=")).unwrap().to_owned();
    let unauthorized = site.get(Some(&Session { cookie: ticket_only }), "Customer").await;
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    let body: Value = unauthorized.json().await.unwrap();
    assert_eq!(body["message"], messages::NOT_AUTHORIZED);
    assert_eq!(site.get(None, "Customer").await.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(site.logout(Some(&session)).await, StatusCode::NO_CONTENT);
    assert_eq!(site.get(Some(&session), "Customer").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(site.logout(Some(&session)).await, StatusCode::NO_CONTENT, "logging out twice is harmless");
    assert_eq!(site.logout(None).await, StatusCode::NO_CONTENT, "and so is logging out without a session");

    let stats = site.stats().await;
    assert_eq!(stats["successful_logins"], 1);
    assert_eq!((stats["logouts"].as_u64(), stats["logout_requests"].as_u64()), (Some(1), Some(3)));
    assert_eq!((stats["open_sessions"].as_u64(), stats["max_open_sessions"].as_u64()), (Some(0), Some(1)));
    assert_eq!(stats["unauthorized_responses"], 3);
    assert_eq!(stats["users"]["OcerraAPI"]["requests"], 3, "the login and two reads");
}

#[tokio::test]
async fn a_wrong_password_is_refused_in_words_the_hub_reads_as_rejected_credentials() {
    let site = Site::with_user(InstanceRules::default()).await;
    let (status, message, kind) = exception(site.login("api", "not-the-password").await).await;
    assert_eq!(
        (status, message.as_str(), kind.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, messages::INVALID_CREDENTIALS, "PX.Data.PXException")
    );
    assert_eq!(
        diagnose(status, &message),
        ("credentials_rejected".into(), false, "invalid_credentials".into())
    );

    // An unknown user reads the same, and counts for nobody.
    let (_, unknown, _) = exception(site.login("nobody", STRONG).await).await;
    assert_eq!(unknown, messages::INVALID_CREDENTIALS);

    let stats = site.stats().await;
    assert_eq!(stats["failed_logins"], 2);
    let user = &stats["users"]["api"];
    assert_eq!(
        (user["failed_logins"].as_u64(), user["consecutive_failed_logins"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(user["locked"], false);
}

#[tokio::test]
async fn the_tenant_must_be_known_and_is_needed_once_there_are_several() {
    let site = Site::with_user(InstanceRules::default()).await;
    let wrong_tenant =
        site.login_body(json!({"name": "api", "password": STRONG, "company": "Elsewhere"}), None).await;
    let (status, message, kind) = exception(wrong_tenant).await;
    assert_eq!((status, message.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, messages::UNKNOWN_TENANT));
    assert_eq!(kind, "PX.Data.PXUndefinedCompanyException");

    let no_tenant = json!({"name": "api", "password": STRONG});
    let only = site.login_body(no_tenant.clone(), None).await;
    assert_eq!(only.status(), StatusCode::NO_CONTENT, "a single-tenant instance needs no tenant");
    assert_eq!(site.logout(Some(&Session { cookie: cookies(only.headers()) })).await, StatusCode::NO_CONTENT);

    site.instance.create_user(NewUser::new("other", STRONG, "Second Co")).unwrap();
    let (_, message, _) = exception(site.login_body(no_tenant, None).await).await;
    assert_eq!(message, messages::UNKNOWN_TENANT);
    // A user of another tenant is unknown in this one.
    let (_, message, _) = exception(site.login("other", STRONG).await).await;
    assert_eq!(message, messages::INVALID_CREDENTIALS);

    let both = site
        .login_body(
            json!({"name": "api", "password": STRONG, "tenant": "Company", "company": "Company"}),
            None,
        )
        .await;
    assert_eq!(both.status(), StatusCode::BAD_REQUEST);
    let branch = site
        .login_body(json!({"name": "api", "password": STRONG, "tenant": "Company", "branch": "EAST"}), None)
        .await;
    let (_, message, _) = exception(branch).await;
    assert_eq!(message, messages::branch_not_allowed("EAST"));
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_user_until_an_administrator_unlocks_it() {
    let site = Site::with_user(InstanceRules::default()).await;
    // A successful login resets the counter.
    for _ in 0..4 {
        exception(site.login("api", "wrong").await).await;
    }
    let session = site.login_ok("api", STRONG).await;
    site.logout(Some(&session)).await;
    assert_eq!(site.stats().await["users"]["api"]["consecutive_failed_logins"], 0);

    for attempt in 1..=5 {
        let (_, message, _) = exception(site.login("api", "wrong").await).await;
        assert_eq!(message, messages::INVALID_CREDENTIALS, "attempt {attempt}");
    }
    let (status, message, _) = exception(site.login("api", STRONG).await).await;
    assert_eq!(message, messages::ACCOUNT_LOCKED, "the right password no longer helps");
    assert!(message.contains("Your account is locked"), "seed 002's words");
    assert_eq!(diagnose(status, &message), ("account_locked".into(), false, "account_locked".into()));

    let stats = site.stats().await;
    assert_eq!(stats["locked_users"], json!(["api"]));
    assert_eq!(
        (stats["lockouts"].as_u64(), stats["users"]["api"]["failed_logins"].as_u64()),
        (Some(1), Some(10))
    );

    // Locked stays locked, whatever the clock says.
    site.clock.advance(24 * 60 * MINUTE);
    let (_, message, _) = exception(site.login("api", STRONG).await).await;
    assert_eq!(message, messages::ACCOUNT_LOCKED);

    let (status, user) = site.control(Method::POST, "users/API/unlock", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (user["locked"].as_bool(), user["consecutive_failed_logins"].as_u64()),
        (Some(false), Some(0))
    );
    let session = site.login_ok("api", STRONG).await;
    assert_eq!(site.logout(Some(&session)).await, StatusCode::NO_CONTENT);
    assert_eq!(site.stats().await["locked_users"], json!([]));
}

#[tokio::test]
async fn the_licence_refuses_a_login_beyond_its_api_users_with_api_login_limit() {
    let site = Site::with_user(InstanceRules::trial()).await;
    let first = site.login_ok("api", STRONG).await;
    let second = site.login_ok("api", STRONG).await;
    let (status, message, _) = exception(site.login("api", STRONG).await).await;
    assert_eq!((status, message.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, messages::API_LOGIN_LIMIT));
    assert_eq!(diagnose(status, &message), ("api_user_limit_reached".into(), true, "api_login_limit".into()));

    // A login inside a live session takes no new slot.
    let again =
        site.login_body(json!({"name": "api", "password": STRONG, "tenant": "Company"}), Some(&first)).await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    let first = Session { cookie: cookies(again.headers()) };
    assert_eq!(site.get(Some(&first), "Customer").await.status(), StatusCode::OK);

    assert_eq!(site.logout(Some(&second)).await, StatusCode::NO_CONTENT);
    let third = site.login_ok("api", STRONG).await;

    // The fault refuses logins whatever the free slots.
    site.logout(Some(&first)).await;
    site.logout(Some(&third)).await;
    let (status, _) = site.control(Method::POST, "faults", Some(json!({"login_limit": {"count": 1}}))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, message, _) = exception(site.login("api", STRONG).await).await;
    assert_eq!(message, messages::API_LOGIN_LIMIT);
    let last = site.login_ok("api", STRONG).await;
    site.logout(Some(&last)).await;

    let stats = site.stats().await;
    assert_eq!(
        (stats["login_limit_refusals"].as_u64(), stats["max_open_sessions"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(stats["open_sessions"], 0);
    assert_eq!(
        stats["users"]["api"]["consecutive_failed_logins"], 0,
        "a licence refusal is not a wrong password"
    );
}

#[tokio::test]
async fn the_upgrade_to_2023_1_3_resets_a_weak_password_and_keeps_a_strong_one() {
    let site = Site::with_user(InstanceRules::default()).await;
    site.instance.create_user(NewUser::new("OcerraAPI", "ocerra123", "Company")).unwrap();
    let open = site.login_ok("OcerraAPI", "ocerra123").await;

    let (status, upgrade) = site.control(Method::POST, "upgrade", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (upgrade["previous_version"].as_str(), upgrade["version"].as_str()),
        (Some("2023.1.2"), Some("2023.1.3"))
    );
    assert_eq!(upgrade["ended_sessions"], 1, "the site restarts");
    let reset = upgrade["reset_passwords"].as_array().unwrap();
    assert_eq!(reset.len(), 1, "only the weak password is reset: {upgrade}");
    assert_eq!(
        (reset[0]["name"].as_str(), reset[0]["tenant"].as_str()),
        (Some("OcerraAPI"), Some("Company"))
    );
    let new_password = reset[0]["password"].as_str().unwrap().to_owned();
    assert!(new_password.len() >= 14);

    assert_eq!(site.get(Some(&open), "Customer").await.status(), StatusCode::UNAUTHORIZED);
    let (status, message, _) = exception(site.login("OcerraAPI", "ocerra123").await).await;
    assert_eq!(diagnose(status, &message).0, "credentials_rejected", "the old password stops working");
    for (name, password) in [("OcerraAPI", new_password.as_str()), ("api", STRONG)] {
        let session = site.login_ok(name, password).await;
        assert_eq!(site.logout(Some(&session)).await, StatusCode::NO_CONTENT);
    }

    // From now on the policy holds: the administrator must pick a strong password.
    let (status, error) =
        site.control(Method::POST, "users/OcerraAPI/password", Some(json!({"password": "ocerra123"}))).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_value"))
    );
    assert!(error["error"]["message"].as_str().unwrap().contains("at least 14 characters"), "{error}");
    let chosen = "Ocerra-Api-2024!";
    let (status, user) =
        site.control(Method::POST, "users/OcerraAPI/password", Some(json!({"password": chosen}))).await;
    assert_eq!((status, user["password_meets_policy"].as_bool()), (StatusCode::OK, Some(true)));
    let session = site.login_ok("OcerraAPI", chosen).await;
    site.logout(Some(&session)).await;

    let endpoints: Value =
        site.http.get(format!("{}/entity", site.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(endpoints["version"]["acumaticaBuildVersion"], "2023.1.3");
    assert!(site.instance.upgrade().is_empty(), "a second upgrade has nothing to reset");
    let stats = site.stats().await;
    assert_eq!((stats["terminated_sessions"].as_u64(), stats["open_sessions"].as_u64()), (Some(1), Some(0)));
}

#[tokio::test]
async fn the_licence_request_limits_and_the_rate_limit_fault_answer_429() {
    let site = Site::with_user(InstanceRules::default().with_requests_per_minute(Some(3))).await;
    let session = site.login_ok("api", STRONG).await;
    assert_eq!(site.get(Some(&session), "Customer").await.status(), StatusCode::OK);
    assert_eq!(site.get(Some(&session), "Customer?$top=1").await.status(), StatusCode::OK);
    let limited = site.get(Some(&session), "Customer").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().get(RETRY_AFTER).is_none(), "Acumatica documents no Retry-After");

    site.clock.advance(MINUTE);
    assert_eq!(site.get(Some(&session), "Customer").await.status(), StatusCode::OK);

    let fault = json!({"rate_limit": {"retry_after_secs": 7, "count": 1}});
    assert_eq!(site.control(Method::POST, "faults", Some(fault)).await.0, StatusCode::OK);
    site.clock.advance(MINUTE);
    let limited = site.get(Some(&session), "Customer").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()[RETRY_AFTER], "7");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(diagnose(StatusCode::TOO_MANY_REQUESTS, body["message"].as_str().unwrap()).0, "rate_limited");
    assert_eq!(site.get(Some(&session), "Customer").await.status(), StatusCode::OK);

    // Signing out is never refused by the limits.
    for expected in [StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS] {
        assert_eq!(site.get(Some(&session), "Customer").await.status(), expected);
    }
    assert_eq!(site.logout(Some(&session)).await, StatusCode::NO_CONTENT);
    let stats = site.stats().await;
    assert_eq!(
        (stats["rate_limited_responses"].as_u64(), stats["open_sessions"].as_u64()),
        (Some(3), Some(0))
    );
}

#[tokio::test]
async fn requests_in_flight_are_counted_per_api_user_and_limited_by_the_licence() {
    let site = Site::start(InstanceRules::default().with_max_concurrent_requests(Some(3))).await;
    for name in ["a", "b"] {
        site.instance.create_user(NewUser::new(name, STRONG, "Company")).unwrap();
    }
    let a = site.login_ok("a", STRONG).await;
    let b = site.login_ok("b", STRONG).await;
    site.control(Method::POST, "faults", Some(json!({"request_delay_ms": 600}))).await;

    let held = async {
        tokio::join!(
            site.get(Some(&a), "Customer"),
            site.get(Some(&a), "Customer"),
            site.get(Some(&b), "Customer")
        )
    };
    let late = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        site.get(Some(&b), "Customer").await
    };
    let ((first, second, third), fourth) = tokio::join!(held, late);
    for response in [first, second, third] {
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(
        fourth.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a fourth request in flight is over the licence"
    );

    site.control(Method::DELETE, "faults", None).await;
    site.logout(Some(&a)).await;
    site.logout(Some(&b)).await;
    let stats = site.stats().await;
    assert_eq!(stats["users"]["a"]["max_concurrent_requests"], 2);
    assert_eq!(stats["users"]["b"]["max_concurrent_requests"], 1);
    assert_eq!(
        (stats["max_concurrent_requests"].as_u64(), stats["max_requests_in_flight"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!((stats["requests_in_flight"].as_u64(), stats["open_sessions"].as_u64()), (Some(0), Some(0)));
}

#[tokio::test]
async fn open_sessions_return_to_zero_after_a_well_behaved_client_logs_out() {
    let site = Site::start(InstanceRules::default()).await;
    let names = ["one", "two", "three"];
    for name in names {
        site.instance.create_user(NewUser::new(name, STRONG, "Company")).unwrap();
    }
    let work = |name: &'static str| {
        let site = &site;
        async move {
            for _ in 0..3 {
                let session = site.login_ok(name, STRONG).await;
                assert_eq!(site.get(Some(&session), "Customer").await.status(), StatusCode::OK);
                assert_eq!(site.logout(Some(&session)).await, StatusCode::NO_CONTENT);
            }
        }
    };
    tokio::join!(work(names[0]), work(names[1]), work(names[2]));
    let stats = site.stats().await;
    assert_eq!((stats["open_sessions"].as_u64(), stats["logouts"].as_u64()), (Some(0), Some(9)));
    let peak = stats["max_open_sessions"].as_u64().unwrap();
    assert!((1..=3).contains(&peak), "{peak}");
    for name in names {
        assert_eq!(stats["users"][name]["open_sessions"], 0);
        assert_eq!(stats["users"][name]["logouts"], 3);
    }
}

#[tokio::test]
async fn an_idle_session_expires_on_the_clock_and_counts_as_closed() {
    let site = Site::with_user(InstanceRules::default()).await;
    let session = site.login_ok("api", STRONG).await;
    // Each request starts the idle timeout again.
    for _ in 0..2 {
        site.clock.advance(9 * MINUTE);
        assert_eq!(site.get(Some(&session), "Customer").await.status(), StatusCode::OK);
    }
    site.clock.advance(10 * MINUTE);
    assert_eq!(site.stats().await["open_sessions"], 0, "expired sessions count as closed");
    assert_eq!(site.get(Some(&session), "Customer").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(site.logout(Some(&session)).await, StatusCode::NO_CONTENT);
    let stats = site.stats().await;
    assert_eq!((stats["expired_sessions"].as_u64(), stats["logouts"].as_u64()), (Some(1), Some(0)));
}

#[tokio::test]
async fn expired_passwords_and_passwords_to_change_are_told_apart() {
    let rules = InstanceRules::default().with_password_lifetime(Some(90 * 24 * 60 * MINUTE));
    let site = Site::start(rules).await;
    site.instance
        .create_user(NewUser::new("api", STRONG, "Company").with_password_change_on_next_login())
        .unwrap();
    let (status, message, _) = exception(site.login("api", STRONG).await).await;
    assert_eq!(message, messages::PASSWORD_CHANGE_REQUIRED);
    assert_eq!(
        diagnose(status, &message),
        ("credentials_rejected".into(), false, "password_change_required".into())
    );

    site.instance.set_password("api", "Another-Str0ng-One").unwrap();
    let session = site.login_ok("api", "Another-Str0ng-One").await;
    site.logout(Some(&session)).await;

    site.clock.advance(90 * 24 * 60 * MINUTE);
    let (status, message, _) = exception(site.login("api", "Another-Str0ng-One").await).await;
    assert_eq!(message, messages::PASSWORD_EXPIRED);
    assert_eq!(diagnose(status, &message), ("credentials_rejected".into(), false, "password_expired".into()));
    assert_eq!(site.stats().await["users"]["api"]["password_expired"], true);

    let (status, _) =
        site.control(Method::POST, "users/api/password", Some(json!({"password": "Third-Str0ng-One"}))).await;
    assert_eq!(status, StatusCode::OK);
    let session = site.login_ok("api", "Third-Str0ng-One").await;
    site.logout(Some(&session)).await;
    let (status, _) = site.control(Method::POST, "users/api/expire-password", None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, message, _) = exception(site.login("api", "Third-Str0ng-One").await).await;
    assert_eq!(message, messages::PASSWORD_EXPIRED);
}

#[tokio::test]
async fn the_entity_api_reads_and_writes_customers_in_the_value_field_style() {
    let site = Site::with_user(InstanceRules::default()).await;
    site.instance.create_user(NewUser::new("other", STRONG, "Second Co")).unwrap();
    let session = site.login_ok("api", STRONG).await;

    let created = site
        .entity(
            Method::PUT,
            Some(&session),
            "Customer",
            Some(json!({"CustomerName": {"value": "Dune Surf"}})),
        )
        .await;
    assert_eq!(created.status(), StatusCode::OK);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["CustomerID"]["value"], "C000004");
    let id = created["id"].as_str().unwrap().to_owned();

    let update = json!({"CustomerID": {"value": "C000004"}, "Status": {"value": "On Hold"}});
    let updated: Value =
        site.entity(Method::PUT, Some(&session), "Customer", Some(update)).await.json().await.unwrap();
    assert_eq!(
        (updated["id"].as_str(), updated["Status"]["value"].as_str()),
        (Some(id.as_str()), Some("On Hold"))
    );
    for key in ["C000004", id.as_str()] {
        let record: Value = site.get(Some(&session), &format!("Customer/{key}")).await.json().await.unwrap();
        assert_eq!(record["CustomerName"]["value"], "Dune Surf");
    }
    let filtered: Value =
        site.get(Some(&session), "Customer?$filter=Status eq 'On Hold'").await.json().await.unwrap();
    assert_eq!(filtered.as_array().unwrap().len(), 1);
    let page: Value = site.get(Some(&session), "Customer?$top=2&$skip=2").await.json().await.unwrap();
    assert_eq!(page.as_array().unwrap().len(), 2);

    assert_eq!(site.get(Some(&session), "Customer/NOPE").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(site.get(Some(&session), "Invoice").await.status(), StatusCode::NOT_FOUND);
    let nameless = site
        .entity(Method::PUT, Some(&session), "Customer", Some(json!({"Status": {"value": "Active"}})))
        .await;
    let (status, message, _) = exception(nameless).await;
    assert_eq!(
        (status, message.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "Error: 'Customer Name' cannot be empty.")
    );
    let branches: Value = site.get(Some(&session), "Branch").await.json().await.unwrap();
    assert_eq!(branches[0]["BranchID"]["value"], "MAIN");

    // Each tenant has its own records.
    let other =
        site.login_body(json!({"name": "other", "password": STRONG, "tenant": "Second Co"}), None).await;
    let other = Session { cookie: cookies(other.headers()) };
    let theirs: Value = site.get(Some(&other), "Customer").await.json().await.unwrap();
    assert_eq!(theirs.as_array().unwrap().len(), 3);
    site.logout(Some(&other)).await;
    site.logout(Some(&session)).await;
}

#[tokio::test]
async fn an_outage_answers_logins_logouts_and_entity_requests_with_a_gateway_page() {
    let site = Site::with_user(InstanceRules::default()).await;
    let session = site.login_ok("api", STRONG).await;
    let (status, faults) =
        site.control(Method::POST, "faults", Some(json!({"outage": {"status": 503, "count": 3}}))).await;
    assert_eq!((status, faults["outage"]["status"].as_u64()), (StatusCode::OK, Some(503)));
    let login = site.login("api", STRONG).await;
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(login.text().await.unwrap().contains("<html>"));
    assert_eq!(site.get(Some(&session), "Customer").await.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(site.logout(Some(&session)).await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(site.stats().await["open_sessions"], 1, "a logout that never arrived leaves the session open");
    assert_eq!(site.logout(Some(&session)).await, StatusCode::NO_CONTENT);
    let stats = site.stats().await;
    assert_eq!((stats["outage_responses"].as_u64(), stats["failed_logins"].as_u64()), (Some(3), Some(0)));
}

#[tokio::test]
async fn the_control_api_refuses_what_it_cannot_do_with_the_providers_error_shape() {
    let site = Site::with_user(InstanceRules::default()).await;
    let cases = [
        (Method::POST, "users/ghost/unlock", None, StatusCode::NOT_FOUND, "unknown_user"),
        (Method::GET, "users/ghost", None, StatusCode::NOT_FOUND, "unknown_user"),
        (
            Method::POST,
            "users",
            Some(json!({"name": "API", "password": "x", "tenant": "Company"})),
            StatusCode::CONFLICT,
            "user_exists",
        ),
        (
            Method::POST,
            "users",
            Some(json!({"name": "", "password": "x", "tenant": "Co"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            Method::POST,
            "users",
            Some(json!({"name": "x", "password": "x"})),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            Method::POST,
            "faults",
            Some(json!({"outage": {"status": 200}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
        (
            Method::POST,
            "faults",
            Some(json!({"drop_everything": true})),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            Method::POST,
            "upgrade",
            Some(json!({"version": "2020.1.1"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let (got, error) = site.control(method, path, body).await;
        assert_eq!((got, error["error"]["code"].as_str()), (status, Some(code)), "{path}: {error}");
    }
    let (status, faults) = site.control(Method::POST, "faults", Some(json!({"request_delay_ms": 5}))).await;
    assert_eq!((status, faults["request_delay_ms"].as_u64()), (StatusCode::OK, Some(5)));
    let (_, faults) = site.control(Method::DELETE, "faults", None).await;
    assert_eq!(faults["request_delay_ms"], 0);
    let (status, users) = site.control(Method::GET, "users", None).await;
    assert_eq!((status, users["data"][0]["name"].as_str()), (StatusCode::OK, Some("api")));
}

#[tokio::test]
async fn an_on_premises_path_is_served_beside_the_oauth_providers() {
    let clock = ManualClock::new(Timestamp::from_millis(1_795_370_400_000));
    let instance =
        Instance::new(Arc::new(clock.clone()), InstanceRules::default().with_base_path("AcumaticaERP/"));
    instance.create_user(NewUser::new("api", STRONG, "Company")).unwrap();
    let simulator = Simulator::new(Arc::new(clock.clone()), Rules::fast());
    let app = Router::new().nest("/sandbox", router(instance.clone()).merge(providers::router(simulator)));
    let site = Site::serve(instance, clock, app).await;

    assert_eq!(site.url(), format!("{}/AcumaticaERP", site.base));
    assert_eq!(site.instance.url("http://x.example.com/"), "http://x.example.com/AcumaticaERP");
    let session = site.login_ok("api", STRONG).await;
    assert_eq!(site.get(Some(&session), "Customer").await.status(), StatusCode::OK);
    site.logout(Some(&session)).await;

    let endpoints: Value =
        site.http.get(format!("{}/entity", site.url())).send().await.unwrap().json().await.unwrap();
    let href = endpoints["endpoints"][0]["href"].as_str().unwrap();
    assert_eq!(href, "/sandbox/AcumaticaERP/entity/Default/22.200.001/");

    assert_eq!(site.stats().await["successful_logins"], 1);
    let xero = site.http.get(format!("{}/_control/xero/stats", site.base)).send().await.unwrap();
    assert_eq!(xero.status(), StatusCode::OK, "the providers' control API still answers");
}
