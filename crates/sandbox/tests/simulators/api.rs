//! The data APIs a proxy forwards to: more paths, concurrency counting, the providers' limits,
//! latency, and each provider's documented error bodies through the `api_error` fault.

use std::time::{Duration, Instant};

use ledgerlink_sandbox::providers::{ApiErrorFault, FaultUpdate, Provider, Rules};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::support::{Connected, Sandbox};

const XERO: Provider = Provider::Xero;
const QBO: Provider = Provider::QuickBooks;
const MYOB: Provider = Provider::Myob;

/// The provider's simplest account-scoped path.
fn simple_path(provider: Provider, connected: &Connected) -> String {
    match provider {
        Provider::Xero => "Organisation".into(),
        Provider::QuickBooks => format!("companyinfo/{}", connected.account_id),
        Provider::Myob => "Company".into(),
    }
}

/// Sends `n` GETs of the simple path at once and waits for them all.
async fn concurrent_calls(
    sandbox: &Sandbox,
    provider: Provider,
    connected: &Connected,
    n: usize,
) -> Vec<Response> {
    let mut calls = JoinSet::new();
    for _ in 0..n {
        calls.spawn(sandbox.api(provider, Method::GET, connected, &simple_path(provider, connected)).send());
    }
    let mut responses = Vec::with_capacity(n);
    while let Some(response) = calls.join_next().await {
        responses.push(response.unwrap().unwrap());
    }
    responses
}

fn count(responses: &[Response], status: StatusCode) -> usize {
    responses.iter().filter(|r| r.status() == status).count()
}

/// Polls until `check` holds, for up to two seconds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---- concurrency, latency and limits ----

#[tokio::test]
async fn a_sixth_concurrent_xero_call_for_one_tenant_gets_429_concurrent() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let connected = sandbox.connect(XERO).await;
    // Held long enough that all eight are in flight together, even on a busy machine.
    sandbox.set_faults(XERO, json!({"api_delay_ms": 1_000, "enforce_api_rate_limits": true})).await;

    let responses = concurrent_calls(&sandbox, XERO, &connected, 8).await;
    assert_eq!((count(&responses, StatusCode::OK), count(&responses, StatusCode::TOO_MANY_REQUESTS)), (5, 3));
    for refused in responses.iter().filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS) {
        assert_eq!(refused.headers()["retry-after"], "1");
        assert_eq!(refused.headers()["x-rate-limit-problem"], "concurrent");
    }

    let stats = sandbox.stats(XERO).await;
    assert_eq!(stats["max_concurrent_api_calls"], 5);
    assert_eq!(stats["api_calls_in_flight"], 0);
    assert_eq!(stats["rate_limited_responses"], 3);
    let account = sandbox.sim.account(XERO, &connected.account_id).unwrap();
    assert_eq!(
        (account.api_requests, account.max_concurrent_api_calls, account.api_calls_in_flight),
        (8, 5, 0)
    );
}

#[tokio::test]
async fn without_enforcement_concurrent_calls_are_held_and_counted_but_all_succeed() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let connected = sandbox.connect(QBO).await;
    let other = sandbox.connect(QBO).await;
    sandbox.sim.set_faults(QBO, FaultUpdate { api_delay_ms: Some(1_000), ..Default::default() }).unwrap();

    let started = Instant::now();
    let (mine, theirs) = tokio::join!(
        concurrent_calls(&sandbox, QBO, &connected, 12),
        concurrent_calls(&sandbox, QBO, &other, 3)
    );
    assert!(started.elapsed() >= Duration::from_millis(1_000), "every call was held a second");
    assert_eq!(count(&mine, StatusCode::OK) + count(&theirs, StatusCode::OK), 15);

    let stats = sandbox.sim.stats(QBO);
    assert_eq!(stats.max_concurrent_api_calls, 12, "the peak is per account, not the sum");
    assert_eq!(stats.api_calls_in_flight, 0);
    assert_eq!(sandbox.sim.account(QBO, &other.account_id).unwrap().max_concurrent_api_calls, 3);
}

#[tokio::test]
async fn a_client_hanging_up_mid_delay_leaves_nothing_in_flight() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let connected = sandbox.connect(XERO).await;
    sandbox.set_faults(XERO, json!({"api_delay_ms": 10_000})).await;

    let call = tokio::spawn(sandbox.api(XERO, Method::GET, &connected, "Contacts").send());
    eventually("the call is in flight", || sandbox.sim.stats(XERO).api_calls_in_flight == 1).await;
    call.abort();
    eventually("the call has left", || sandbox.sim.stats(XERO).api_calls_in_flight == 0).await;
    let account = sandbox.sim.account(XERO, &connected.account_id).unwrap();
    assert_eq!((account.api_calls_in_flight, account.max_concurrent_api_calls), (0, 1));
}

#[tokio::test]
async fn an_eleventh_concurrent_quickbooks_call_gets_the_throttle_fault() {
    let sandbox = Sandbox::start(Rules::default().with_auto_approve(true)).await;
    let connected = sandbox.connect(QBO).await;
    sandbox.set_faults(QBO, json!({"api_delay_ms": 1_000})).await;

    let responses = concurrent_calls(&sandbox, QBO, &connected, 11).await;
    assert_eq!(count(&responses, StatusCode::OK), 10);
    let refused = responses.into_iter().find(|r| r.status() == StatusCode::TOO_MANY_REQUESTS).unwrap();
    assert!(refused.headers().contains_key("intuit_tid"));
    let body: Value = refused.json().await.unwrap();
    let error = &body["Fault"]["Error"][0];
    assert_eq!(error["Message"], "message=ThrottleExceeded; errorCode=003001; statusCode=429");
    assert_eq!(error["Detail"], "The request limit was reached.");
    assert_eq!(error["code"], "003001");
    assert_eq!(body["Fault"]["type"], "SERVICE");
    assert!(body["time"].is_string());
    assert_eq!(sandbox.sim.stats(QBO).max_concurrent_api_calls, 10);
}

#[tokio::test]
async fn a_ninth_myob_call_within_a_second_gets_403_rate_limit_error() {
    let sandbox = Sandbox::start(Rules::default().with_auto_approve(true)).await;
    let connected = sandbox.connect(MYOB).await;

    let responses = concurrent_calls(&sandbox, MYOB, &connected, 9).await;
    assert_eq!(count(&responses, StatusCode::OK), 8);
    let refused = responses.into_iter().find(|r| r.status() == StatusCode::FORBIDDEN).unwrap();
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["Errors"][0],
        json!({
            "Name": "RateLimitError",
            "Message": "API key has exceeded the per-second rate limit",
            "AdditionalDetails": "Header: x-myobapi-key",
            "ErrorCode": null,
            "Severity": "Error",
        })
    );
    assert_eq!(sandbox.sim.stats(MYOB).rate_limited_responses, 1);

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, _) = sandbox.api_json(MYOB, Method::GET, &connected, "Company", None).await;
    assert_eq!(status, StatusCode::OK, "the window rolls on in real time");
}

#[tokio::test]
async fn the_fault_switch_turns_enforcement_off_whatever_the_rules_say() {
    let sandbox = Sandbox::start(Rules::default().with_auto_approve(true)).await;
    let connected = sandbox.connect(MYOB).await;
    sandbox.set_faults(MYOB, json!({"enforce_api_rate_limits": false})).await;
    let responses = concurrent_calls(&sandbox, MYOB, &connected, 12).await;
    assert_eq!(count(&responses, StatusCode::OK), 12);
    assert_eq!(sandbox.faults_json(MYOB).await["enforce_api_rate_limits"], false);
}

// ---- new paths ----

#[tokio::test]
async fn a_xero_contact_created_with_put_is_listed_and_can_be_renamed_with_post() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let connected = sandbox.connect(XERO).await;

    let (status, list) = sandbox.api_json(XERO, Method::GET, &connected, "Contacts", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((list["Status"].as_str(), list["ProviderName"].as_str()), (Some("OK"), Some("ledgerlink")));
    assert!(list["Id"].is_string() && list["DateTimeUTC"].as_str().unwrap().starts_with("/Date("));
    let seeded = list["Contacts"].as_array().unwrap().len();
    assert!(seeded >= 2, "each organisation starts with a few contacts");

    let new =
        json!({"Contacts": [{"Name": "Clearwater Plumbing", "EmailAddress": "hello@clearwater.example"}]});
    let (status, created) = sandbox.api_json(XERO, Method::PUT, &connected, "Contacts", Some(new)).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let contact = &created["Contacts"][0];
    let id = contact["ContactID"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    assert_eq!(contact["Name"], "Clearwater Plumbing");
    assert_eq!(contact["EmailAddress"], "hello@clearwater.example");
    assert_eq!(contact["ContactStatus"], "ACTIVE");

    let (_, list) = sandbox.api_json(XERO, Method::GET, &connected, "contacts", None).await;
    let contacts = list["Contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), seeded + 1);
    assert!(contacts.iter().any(|c| c["ContactID"] == id.as_str()));

    let rename = json!({"ContactID": id, "Name": "Clearwater Plumbing Ltd"});
    let (status, renamed) = sandbox.api_json(XERO, Method::POST, &connected, "Contacts", Some(rename)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(renamed["Contacts"][0]["ContactID"], id.as_str());
    let (_, one) = sandbox.api_json(XERO, Method::GET, &connected, &format!("Contacts/{id}"), None).await;
    assert_eq!(one["Contacts"][0]["Name"], "Clearwater Plumbing Ltd");
    assert_eq!(one["Contacts"][0]["EmailAddress"], "hello@clearwater.example", "POST merges fields");
}

#[tokio::test]
async fn xero_refuses_a_contact_without_a_name_or_with_a_taken_one_as_a_validation_exception() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let connected = sandbox.connect(XERO).await;
    let (_, list) = sandbox.api_json(XERO, Method::GET, &connected, "Contacts", None).await;
    let taken = list["Contacts"][0]["Name"].clone();

    let body =
        json!({"Contacts": [{"Name": "Fine Name"}, {"EmailAddress": "x@example.com"}, {"Name": taken}]});
    let (status, error) = sandbox.api_json(XERO, Method::POST, &connected, "Contacts", Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["ErrorNumber"], 10);
    assert_eq!(error["Type"], "ValidationException");
    let elements = error["Elements"].as_array().unwrap();
    assert_eq!(elements.len(), 2, "only the invalid contacts: {error}");
    assert!(elements[1]["ValidationErrors"][0]["Message"].as_str().unwrap().contains("already assigned"));
    let (_, after) = sandbox.api_json(XERO, Method::GET, &connected, "Contacts", None).await;
    assert_eq!(after["Contacts"], list["Contacts"], "nothing was saved");

    let response =
        sandbox.api(XERO, Method::PUT, &connected, "Contacts").body("{not json").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.json::<Value>().await.unwrap()["Type"], "PostDataInvalidException");
}

#[tokio::test]
async fn xero_answers_unknown_resources_with_its_plain_404_and_writes_to_organisation_with_501() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let connected = sandbox.connect(XERO).await;
    for path in ["Invoicez", "Contacts/00000000-0000-4000-8000-000000000000", "Contacts/a/b"] {
        let response = sandbox.api(XERO, Method::GET, &connected, path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.text().await.unwrap(), "The resource you're looking for cannot be found");
    }
    let (status, body) =
        sandbox.api_json(XERO, Method::POST, &connected, "Organisation", Some(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(body["Type"], "ApiMethodNotImplementedException");
}

#[tokio::test]
async fn new_xero_paths_authenticate_like_organisation() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let connected = sandbox.connect(XERO).await;
    let url = format!("{}/Contacts", sandbox.urls(XERO).api_base_url);

    let response = sandbox.http.get(&url).bearer_auth(&connected.access_token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "no xero-tenant-id");
    let response = sandbox
        .http
        .get(&url)
        .bearer_auth("made-up")
        .header("xero-tenant-id", &connected.account_id)
        .send()
        .await;
    let body: Value = response.unwrap().json().await.unwrap();
    assert_eq!(
        (body["Status"].as_u64(), body["Detail"].as_str()),
        (Some(401), Some("AuthenticationUnsuccessful"))
    );
    sandbox.advance(Duration::from_secs(2));
    let (status, body) = sandbox.api_json(XERO, Method::GET, &connected, "Contacts", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["Detail"].as_str().unwrap().starts_with("TokenExpired"));
}

#[tokio::test]
async fn a_quickbooks_customer_created_with_post_is_found_by_query() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let connected = sandbox.connect(QBO).await;

    let (status, all) = sandbox
        .api_json(QBO, Method::GET, &connected, "query?query=select%20*%20from%20Customer", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let seeded = all["QueryResponse"]["Customer"].as_array().unwrap().len();
    assert_eq!(all["QueryResponse"]["startPosition"], 1);
    assert_eq!(all["QueryResponse"]["maxResults"], seeded);
    assert!(all["time"].is_string());

    let new = json!({"DisplayName": "Clearwater Plumbing", "PrimaryEmailAddr": {"Address": "a@b.example"}});
    let (status, created) =
        sandbox.api_json(QBO, Method::POST, &connected, "customer", Some(new.clone())).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let customer = &created["Customer"];
    let id = customer["Id"].as_str().unwrap().to_owned();
    assert_eq!(
        (customer["DisplayName"].as_str(), customer["SyncToken"].as_str()),
        (Some("Clearwater Plumbing"), Some("0"))
    );
    assert_eq!(customer["PrimaryEmailAddr"]["Address"], "a@b.example");

    let query = sandbox
        .api(QBO, Method::GET, &connected, "query")
        .query(&[("query", "SELECT * FROM Customer WHERE DisplayName = 'Clearwater Plumbing'")]);
    let found: Value = query.send().await.unwrap().json().await.unwrap();
    assert_eq!(found["QueryResponse"]["Customer"][0]["Id"], id.as_str());
    assert_eq!(found["QueryResponse"]["maxResults"], 1);
    let count = sandbox
        .api(QBO, Method::GET, &connected, "query")
        .query(&[("query", "select count(*) from Customer")]);
    let count: Value = count.send().await.unwrap().json().await.unwrap();
    assert_eq!(count["QueryResponse"]["totalCount"], seeded + 1);
    let (_, one) = sandbox.api_json(QBO, Method::GET, &connected, &format!("customer/{id}"), None).await;
    assert_eq!(one["Customer"]["DisplayName"], "Clearwater Plumbing");

    let (status, duplicate) = sandbox.api_json(QBO, Method::POST, &connected, "customer", Some(new)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(duplicate["Fault"]["Error"][0]["code"], "6240");
    assert_eq!(duplicate["Fault"]["type"], "ValidationFault");
}

#[tokio::test]
async fn quickbooks_answers_bad_queries_unknown_paths_and_other_realms_with_faults() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let connected = sandbox.connect(QBO).await;
    let other = sandbox.connect(QBO).await;
    let fault = |body: &Value| (body["Fault"]["Error"][0]["code"].clone(), body["Fault"]["type"].clone());

    let (status, body) =
        sandbox.api_json(QBO, Method::GET, &connected, "query?query=selec%20nothing", None).await;
    assert_eq!((status, fault(&body)), (StatusCode::BAD_REQUEST, (json!("4000"), json!("ValidationFault"))));
    let (_, body) =
        sandbox.api_json(QBO, Method::GET, &connected, "query?query=select%20*%20from%20Invoice", None).await;
    assert_eq!(body["QueryResponse"], json!({}), "known entities without records are empty");
    let (status, body) = sandbox.api_json(QBO, Method::GET, &connected, "widgets/1", None).await;
    assert_eq!((status, fault(&body)), (StatusCode::BAD_REQUEST, (json!("500"), json!("ValidationFault"))));
    assert_eq!(body["Fault"]["Error"][0]["Message"], "Unsupported Operation");
    let (status, body) = sandbox.api_json(QBO, Method::GET, &connected, "customer/999", None).await;
    assert_eq!((status, fault(&body).0), (StatusCode::BAD_REQUEST, json!("610")));

    let mine_elsewhere = Connected { account_id: other.account_id.clone(), ..connected };
    let (status, body) = sandbox
        .api_json(QBO, Method::GET, &mine_elsewhere, "query?query=select%20*%20from%20Customer", None)
        .await;
    assert_eq!((status, fault(&body)), (StatusCode::FORBIDDEN, (json!("3100"), json!("AUTHORIZATION"))));
}

#[tokio::test]
async fn a_myob_customer_created_with_post_answers_201_with_its_location_and_is_listed() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let connected = sandbox.connect(MYOB).await;

    let (status, list) = sandbox.api_json(MYOB, Method::GET, &connected, "Contact/Customer", None).await;
    assert_eq!(status, StatusCode::OK);
    let seeded = list["Items"].as_array().unwrap().len();
    assert_eq!((list["Count"].as_u64(), &list["NextPageLink"]), (Some(seeded as u64), &Value::Null));

    let new = json!({"CompanyName": "Clearwater Plumbing", "IsIndividual": false, "Notes": "VIP"});
    let response =
        sandbox.api(MYOB, Method::POST, &connected, "Contact/Customer").json(&new).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let file_url = format!("{}/{}", sandbox.urls(MYOB).api_base_url, connected.account_id);
    assert!(location.starts_with(&format!("{file_url}/Contact/Customer/")), "{location}");
    assert!(response.text().await.unwrap().is_empty());

    let (_, list) = sandbox.api_json(MYOB, Method::GET, &connected, "Contact/Customer", None).await;
    assert_eq!(list["Count"], seeded + 1);
    let created = list["Items"].as_array().unwrap().iter().find(|c| c["URI"] == location.as_str()).unwrap();
    assert_eq!(
        (created["CompanyName"].as_str(), created["Notes"].as_str()),
        (Some("Clearwater Plumbing"), Some("VIP"))
    );
    assert!(created["UID"].is_string() && created["RowVersion"].is_string());
    let one: Value = sandbox
        .http
        .get(&location)
        .bearer_auth(&connected.access_token)
        .header("x-myobapi-key", &sandbox.urls(MYOB).client_id)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["UID"], created["UID"]);

    let (status, body) =
        sandbox.api_json(MYOB, Method::POST, &connected, "Contact/Customer", Some(json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["Errors"][0]["AdditionalDetails"], "CompanyName");
    let (status, body) = sandbox.api_json(MYOB, Method::GET, &connected, "Sale/Widget", None).await;
    assert_eq!(
        (status, body["Errors"][0]["Name"].as_str()),
        (StatusCode::NOT_FOUND, Some("ResourceNotFound"))
    );
}

#[tokio::test]
async fn new_myob_paths_need_the_api_key_and_a_token_for_that_file() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let connected = sandbox.connect(MYOB).await;
    let other = sandbox.connect(MYOB).await;
    let url = format!("{}/{}/Contact/Customer", sandbox.urls(MYOB).api_base_url, connected.account_id);

    let response = sandbox.http.get(&url).bearer_auth(&connected.access_token).send().await.unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["Errors"][0]["Name"], "DeveloperInactive");
    let elsewhere = Connected { account_id: other.account_id.clone(), ..connected };
    let (status, body) = sandbox.api_json(MYOB, Method::GET, &elsewhere, "Contact/Customer", None).await;
    assert_eq!((status, body["Errors"][0]["Name"].as_str()), (StatusCode::FORBIDDEN, Some("AccessDenied")));
}

// ---- api_error ----

/// Sets a one-shot `api_error` and returns what the next simple call answers.
async fn fail_once(sandbox: &Sandbox, provider: Provider, connected: &Connected, error: Value) -> Response {
    let mut error = error;
    error["count"] = json!(1);
    sandbox.set_faults(provider, json!({ "api_error": error })).await;
    let path = simple_path(provider, connected);
    let response = sandbox.api(provider, Method::GET, connected, &path).send().await.unwrap();
    let next = sandbox.api(provider, Method::GET, connected, &path).send().await.unwrap();
    assert_eq!(next.status(), StatusCode::OK, "the fault was for one call");
    response
}

#[tokio::test]
async fn xero_api_errors_answer_each_status_of_its_response_code_table() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let c = sandbox.connect(XERO).await;

    let r = fail_once(&sandbox, XERO, &c, json!({"status": 400})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["ErrorNumber"].as_u64(), body["Type"].as_str()),
        (Some(10), Some("ValidationException"))
    );
    assert_eq!(body["Message"], "A validation exception occurred");
    assert!(body["Elements"][0]["ValidationErrors"][0]["Message"].is_string());

    let r = fail_once(
        &sandbox,
        XERO,
        &c,
        json!({"status": 400, "code": "Invoice not of valid status for modification"}),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["Elements"][0]["ValidationErrors"][0]["Message"],
        "Invoice not of valid status for modification"
    );

    for (status, title, detail) in [
        (401, "Unauthorized", "AuthenticationUnsuccessful"),
        (403, "Forbidden", "AuthorizationUnsuccessful"),
        (
            412,
            "Precondition Failed",
            "One or more conditions given in the request header fields were invalid",
        ),
    ] {
        let r = fail_once(&sandbox, XERO, &c, json!({"status": status})).await;
        assert_eq!(r.status().as_u16(), status);
        let body: Value = r.json().await.unwrap();
        assert_eq!((body["Title"].as_str(), body["Status"].as_u64()), (Some(title), Some(u64::from(status))));
        assert_eq!(body["Detail"], detail);
        assert!(body["Instance"].is_string() && body["Type"].is_null());
    }

    let r = fail_once(&sandbox, XERO, &c, json!({"status": 404})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.text().await.unwrap(), "The resource you're looking for cannot be found");

    let r = fail_once(&sandbox, XERO, &c, json!({"status": 429})).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["x-rate-limit-problem"], "minute");
    assert_eq!(r.headers()["retry-after"], "60");
    let r = fail_once(&sandbox, XERO, &c, json!({"status": 429, "code": "day"})).await;
    assert_eq!(r.headers()["x-rate-limit-problem"], "day");

    let r = fail_once(&sandbox, XERO, &c, json!({"status": 500})).await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["Type"], "UnknownErrorException");
    assert!(body["Message"].as_str().unwrap().starts_with("An error occurred in Xero."));

    let r = fail_once(&sandbox, XERO, &c, json!({"status": 503})).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.text().await.unwrap(), "The Xero API is currently offline for maintenance");
    let r = fail_once(&sandbox, XERO, &c, json!({"status": 503, "code": "organisation_offline"})).await;
    assert_eq!(r.text().await.unwrap(), "Organisation is offline");

    let r = fail_once(&sandbox, XERO, &c, json!({"status": 502})).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!((body["Status"].as_u64(), body["Title"].as_str()), (Some(502), Some("Bad Gateway")));

    let stats = sandbox.stats(XERO).await;
    assert_eq!(stats["api_error_responses"], 12);
    assert_eq!(stats["rate_limited_responses"], 0, "a 429 from api_error is an error fault, not a limit");
}

#[tokio::test]
async fn quickbooks_api_errors_use_the_documented_codes_and_can_arrive_with_http_200() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let c = sandbox.connect(QBO).await;

    for (status, code, kind, message) in [
        (401, "3200", "AUTHENTICATION", "message=AuthenticationFailed; errorCode=003200; statusCode=401"),
        (
            403,
            "3100",
            "AUTHORIZATION",
            "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
        ),
        (429, "003001", "SERVICE", "message=ThrottleExceeded; errorCode=003001; statusCode=429"),
        (400, "610", "ValidationFault", "Object Not Found"),
        (400, "5010", "ValidationFault", "Stale Object Error"),
        (
            400,
            "6000",
            "ValidationFault",
            "A business validation error has occurred while processing your request",
        ),
        (400, "6240", "ValidationFault", "Duplicate Name Exists Error"),
    ] {
        let r = fail_once(&sandbox, QBO, &c, json!({"status": status, "code": code})).await;
        assert_eq!(r.status().as_u16(), status, "{code}");
        let body: Value = r.json().await.unwrap();
        let error = &body["Fault"]["Error"][0];
        assert_eq!((error["code"].as_str(), body["Fault"]["type"].as_str()), (Some(code), Some(kind)));
        assert_eq!(error["Message"], message);
        assert!(error["Detail"].is_string() && body["time"].is_string());
    }

    // The documented quirk: a Fault inside an HTTP 200.
    let r = fail_once(&sandbox, QBO, &c, json!({"status": 200, "code": "6240"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["Fault"]["Error"][0]["code"], "6240");
    assert!(body.get("CompanyInfo").is_none());

    // A status alone gets its usual fault; an unknown combination the generic one.
    let r = fail_once(&sandbox, QBO, &c, json!({"status": 401})).await;
    assert_eq!(r.json::<Value>().await.unwrap()["Fault"]["Error"][0]["code"], "3200");
    let r = fail_once(&sandbox, QBO, &c, json!({"status": 500})).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["Fault"]["type"].as_str(), body["Fault"]["Error"][0]["code"].as_str()),
        (Some("SystemFault"), Some("10000"))
    );
    let r = fail_once(&sandbox, QBO, &c, json!({"status": 409, "code": "3200"})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(r.json::<Value>().await.unwrap()["Fault"]["type"], "ValidationFault");
    assert_eq!(sandbox.sim.stats(QBO).api_error_responses, 11);
}

#[tokio::test]
async fn myob_api_errors_answer_its_documented_statuses() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let c = sandbox.connect(MYOB).await;

    for (status, code, name) in [
        (401, None, "OAuthTokenIsInvalid"),
        (403, None, "AccessDenied"),
        (403, Some("RateLimitError"), "RateLimitError"),
        (404, None, "ResourceNotFound"),
        (409, None, "ConcurrencyViolation"),
        (410, None, "CompanyFileGone"),
        (418, None, "CompanyFileUpgraded"),
        (423, None, "CompanyFileUpgradeInProgress"),
        (504, None, "GatewayTimeout"),
        (500, None, "InternalServerError"),
        (400, Some("InvalidTaxCode"), "InvalidTaxCode"),
    ] {
        let r = fail_once(&sandbox, MYOB, &c, json!({"status": status, "code": code})).await;
        assert_eq!(r.status().as_u16(), status, "{name}");
        let body: Value = r.json().await.unwrap();
        let error = &body["Errors"][0];
        assert_eq!(error["Name"], name);
        assert_eq!(error["Severity"], "Error");
        assert!(
            error["Message"].is_string()
                && error.get("AdditionalDetails").is_some()
                && error.get("ErrorCode").is_some()
        );
    }
    let r = fail_once(&sandbox, MYOB, &c, json!({"status": 409})).await;
    assert_eq!(r.json::<Value>().await.unwrap()["Errors"][0]["AdditionalDetails"], "RowVersion");
}

#[tokio::test]
async fn an_api_error_without_a_count_lasts_until_cleared_and_spares_token_calls() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    let c = sandbox.connect(XERO).await;
    let update = FaultUpdate {
        api_error: Some(ApiErrorFault { status: 503, code: None, count: None }),
        ..Default::default()
    };
    sandbox.sim.set_faults(XERO, update).unwrap();
    for path in ["Organisation", "Contacts"] {
        let (status, _) = sandbox.api_json(XERO, Method::GET, &c, path, None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(sandbox.refresh(XERO, c.refresh_token.as_deref().unwrap()).await.status(), StatusCode::OK);
    sandbox.sim.clear_faults(XERO);
    let (status, _) = sandbox.api_json(XERO, Method::GET, &c, "Contacts", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_control_api_explains_invalid_api_errors_with_422() {
    let sandbox = Sandbox::start(Rules::fast()).await;
    for (provider, error, wanted) in [
        (XERO, json!({"status": 600}), "api_error.status must be an HTTP status from 200 to 599, got 600"),
        (XERO, json!({"status": 200, "code": "x"}), "only QuickBooks answers errors with an HTTP 200"),
        (QBO, json!({"status": 200}), "api_error.code is required with status 200"),
        (MYOB, json!({"status": 409, "code": ""}), "api_error.code must not be empty"),
    ] {
        let (status, body) = sandbox.try_set_faults(provider, json!({"api_error": error})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["code"], "invalid_value");
        assert!(body["error"]["message"].as_str().unwrap().contains(wanted), "{body}");
    }
    let (status, _) = sandbox.try_set_faults(XERO, json!({"api_error": {"status": 500, "retry": 1}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown fields are typos");
    assert_eq!(sandbox.faults_json(XERO).await["api_error"], Value::Null);

    sandbox.set_faults(QBO, json!({"api_error": {"status": 200, "code": "6240"}, "api_delay_ms": 25})).await;
    let faults = sandbox.faults_json(QBO).await;
    assert_eq!(faults["api_error"], json!({"status": 200, "code": "6240", "count": null}));
    assert_eq!(faults["api_delay_ms"], 25);
    assert_eq!(faults["enforce_api_rate_limits"], Value::Null, "unset: the rules decide");
}
