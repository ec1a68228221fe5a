//! The Reckon Web Connector endpoints, driven at the protocol level with the real qbXML
//! fixtures: what the hub hands out, what it accepts, and what it does with lost answers,
//! connector errors, bad input and iterators. The desktop simulator's end-to-end tests are in
//! `reckon.rs`.

mod common;

use std::sync::Arc;

use base64::Engine as _;
use common::{Storage, TestHub};
use ledgerlink_core::SystemClock;
use reqwest::Method;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
const ADD: &str = include_str!("../../qbxml/tests/fixtures/requests/customer_add_rq.xml");
const ADD_RS: &str = include_str!("../../qbxml/tests/fixtures/responses/customer_add_rs.xml");
const ITERATE: &str = include_str!("../../qbxml/tests/fixtures/requests/customer_query_iterator_rq.xml");
const ITERATE_RS: &str = include_str!("../../qbxml/tests/fixtures/responses/customer_query_terator_rs.xml");
const QUERY: &str = include_str!("../../qbxml/tests/fixtures/requests/customer_query_rq.xml");

struct Desk {
    hub: TestHub,
    key: String,
    id: String,
    endpoint: String,
    _storage: Storage,
}

async fn desk(backend: common::Backend, env: &[(&str, &str)]) -> Desk {
    let storage = Storage::new(backend).await;
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let hub = TestHub::start_custom(&storage, &env, Arc::new(SystemClock), false).await;
    let key = hub.tenant("Acme").await;
    let (_, org) =
        hub.call(Method::POST, "/v1/organisations", &key, Some(json!({"name": "Harbour Bakery"}))).await;
    let (status, conn) = hub
        .call(
            Method::POST,
            &format!("/v1/organisations/{}/connections", org["id"].as_str().unwrap()),
            &key,
            Some(json!({"provider": "reckon", "username": "bakery", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 201, "{conn}");
    let endpoint = conn["webconnector"]["endpoint_url"].as_str().unwrap().to_owned();
    Desk { id: conn["id"].as_str().unwrap().to_owned(), hub, key, endpoint, _storage: storage }
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

impl Desk {
    /// The RWC's GET, with the right credentials.
    async fn poll(&self, state: &str) -> Value {
        let (status, body) = self.poll_as(&self.id, "bakery", PASSWORD, state).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn poll_as(&self, id: &str, user: &str, password: &str, state: &str) -> (u16, Value) {
        // Built by plain concatenation, as the RWC does.
        let url = format!("{}?id={id}&state={state}", self.endpoint);
        let response =
            self.hub.client.get(url).header("Authorization", basic(user, password)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, post_url: &str, body: &str) -> (u16, Value) {
        let response = self
            .hub
            .client
            .post(post_url)
            .header("Authorization", basic("bakery", PASSWORD))
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn answer(&self, handout: &Value, qbxml_response: &str) -> (u16, Value) {
        let body =
            json!({"qbXMLResponse": qbxml_response, "connectorId": self.id, "errorCode": "", "errorMsg": ""});
        self.post(handout["postURL"].as_str().unwrap(), &body.to_string()).await
    }

    async fn queue(&self, qbxml: &str, priority: Option<i64>) -> String {
        let mut body = json!({"qbxml": qbxml});
        if let Some(p) = priority {
            body["priority"] = json!(p);
        }
        let (status, created) = self
            .hub
            .call(Method::POST, &format!("/v1/connections/{}/qbxml", self.id), &self.key, Some(body))
            .await;
        assert_eq!(status, 202, "{created}");
        assert_eq!(created["status"], "queued");
        created["job_id"].as_str().unwrap().to_owned()
    }

    async fn job(&self, id: &str) -> Value {
        let (status, job) = self.hub.call(Method::GET, &format!("/v1/jobs/{id}"), &self.key, None).await;
        assert_eq!(status, 200, "{job}");
        job
    }
}

/// The `requestID`s the hub put in a handed-out document.
fn request_ids(qbxml: &str) -> Vec<String> {
    qbxml.split("requestID=\"").skip(1).map(|rest| rest.split('"').next().unwrap().to_owned()).collect()
}

/// A fixture response answering `handout`: its requestID replaced by the hub's.
fn reply(fixture: &str, handout: &Value) -> String {
    let ids = request_ids(handout["qbXMLRequest"].as_str().unwrap());
    let original = request_ids(fixture);
    fixture.replacen(&format!("requestID=\"{}\"", original[0]), &format!("requestID=\"{}\"", ids[0]), 1)
}

fn attribute(qbxml: &str, name: &str) -> Option<String> {
    let start = qbxml.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(qbxml[start..].split('"').next()?.to_owned())
}

on_both_backends! {
    async fn a_job_goes_out_once_and_its_answer_is_matched_by_request_id(backend: Backend) {
        let d = desk(backend, &[]).await;
        assert_eq!(d.poll("").await["qbXMLRequest"], "", "no work yet");
        let (_, conn) = d.hub.call(Method::GET, &format!("/v1/connections/{}", d.id), &d.key, None).await;
        assert_eq!(conn["status"], "connected", "the first contact turns it green");

        let job = d.queue(ADD, None).await;
        let handout = d.poll("").await;
        let sent = handout["qbXMLRequest"].as_str().unwrap();
        assert!(handout["postURL"].as_str().unwrap().starts_with(&d.hub.base), "{handout}");
        assert_eq!(handout["tryAgainIn"], 0);
        let ids = request_ids(sent);
        assert_eq!(ids, [format!("{job}-0")]);
        assert!(ids[0].len() <= 50);
        assert!(attribute(sent, "newMessageSetID").is_some(), "writes carry a message set id: {sent}");
        // Everything but the hub's attributes is the app's text, byte for byte.
        let stripped = sent
            .replace(&format!(" newMessageSetID=\"{}\"", attribute(sent, "newMessageSetID").unwrap()), "")
            .replace(&format!("requestID=\"{}\"", ids[0]), "requestID=\"15\"");
        assert_eq!(stripped, ADD);
        assert_eq!(d.job(&job).await["status"], "in_progress");

        let response = reply(ADD_RS, &handout);
        let (status, answer) = d.answer(&handout, &response).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer, json!({"repeatCommunication": false, "state": ""}));
        let done = d.job(&job).await;
        assert_eq!(done["status"], "done", "{done}");
        assert_eq!(done["responses"], json!([response]));
        // The same answer again is not attached twice.
        let (status, _) = d.answer(&handout, &response).await;
        assert_eq!(status, 409);
        assert_eq!(d.job(&job).await["responses"].as_array().unwrap().len(), 1);
        assert_eq!(d.poll("").await["qbXMLRequest"], "");
    }

    async fn bad_answers_are_refused_and_leave_the_job_as_it_was(backend: Backend) {
        let d = desk(backend, &[]).await;
        let job = d.queue(ADD, None).await;
        let handout = d.poll("").await;
        let post_url = handout["postURL"].as_str().unwrap();
        for (body, needle) in [
            ("{not json", "JSON"),
            (&json!({"qbXMLResponse": "<QBXML><oops", "connectorId": d.id, "errorCode": "", "errorMsg": ""}).to_string()[..], "qbXML"),
            (&json!({"qbXMLResponse": ADD_RS, "connectorId": d.id, "errorCode": "", "errorMsg": ""}).to_string()[..], "requestID"),
            (&json!({"qbXMLResponse": reply(ADD_RS, &handout), "connectorId": "con_someoneelse", "errorCode": "", "errorMsg": ""}).to_string()[..], "connectorId"),
        ] {
            let (status, error) = d.post(post_url, body).await;
            assert_eq!(status, 400, "{error}");
            assert!(error["error"]["message"].as_str().unwrap().contains(needle), "{needle}: {error}");
            let now = d.job(&job).await;
            assert_eq!(now["status"], "in_progress");
            assert_eq!(now["responses"], json!([]));
        }
        // Wrong credentials on the POST: 401, and the exchange stays open.
        let response = d.hub.client.post(post_url).header("Authorization", basic("bakery", "wrong password!"))
            .body(json!({"qbXMLResponse": reply(ADD_RS, &handout), "connectorId": d.id}).to_string()).send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        let (status, _) = d.answer(&handout, &reply(ADD_RS, &handout)).await;
        assert_eq!(status, 200);
        assert_eq!(d.job(&job).await["status"], "done");
    }

    async fn an_iterator_is_continued_within_the_cycle_and_restarted_when_it_cannot_be(backend: Backend) {
        let d = desk(backend, &[]).await;
        let job = d.queue(ITERATE, None).await;
        let first = d.poll("").await;
        let sent = first["qbXMLRequest"].as_str().unwrap();
        assert_eq!(attribute(sent, "iterator").as_deref(), Some("Start"));
        let page1 = reply(ITERATE_RS, &first);
        let (_, answer) = d.answer(&first, &page1).await;
        assert_eq!(answer["repeatCommunication"], true, "{answer}");
        let state = answer["state"].as_str().unwrap().to_owned();
        assert!(!state.is_empty() && state.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));

        // A scheduled GET (blank state) cannot continue: the query starts over, pages dropped.
        let restart = d.poll("").await;
        assert_eq!(attribute(restart["qbXMLRequest"].as_str().unwrap(), "iterator").as_deref(), Some("Start"));
        let (_, answer) = d.answer(&restart, &reply(ITERATE_RS, &restart)).await;
        let state = answer["state"].as_str().unwrap().to_owned();

        // The immediate repeat continues with the iterator's id.
        let next = d.poll(&state).await;
        let sent = next["qbXMLRequest"].as_str().unwrap();
        assert_eq!(attribute(sent, "iterator").as_deref(), Some("Continue"));
        assert_eq!(attribute(sent, "iteratorID").as_deref(), Some("{eb05f701-e727-472f-8ade-6753c4f67a46}"));
        let last = reply(ITERATE_RS, &next).replace("iteratorRemainingCount=\"18\"", "iteratorRemainingCount=\"0\"");
        let (_, answer) = d.answer(&next, &last).await;
        assert_eq!(answer, json!({"repeatCommunication": false, "state": ""}));
        let done = d.job(&job).await;
        assert_eq!(done["status"], "done");
        assert_eq!(done["restarts"], 1);
        let pages = done["responses"].as_array().unwrap();
        assert_eq!(pages.len(), 2, "the restarted run's two pages, not the abandoned one");
        assert_eq!(pages[1], json!(last));

        // 3391 (the iterator became invalid) also starts over, within the same cycle.
        let job = d.queue(ITERATE, None).await;
        let first = d.poll("").await;
        let (_, answer) = d.answer(&first, &reply(ITERATE_RS, &first)).await;
        let next = d.poll(answer["state"].as_str().unwrap()).await;
        let invalid = format!(
            "<?xml version=\"1.0\" ?><QBXML><QBXMLMsgsRs><CustomerQueryRs requestID=\"{}\" statusCode=\"3391\" \
             statusSeverity=\"Error\" statusMessage=\"The iterator is not valid\" /></QBXMLMsgsRs></QBXML>",
            request_ids(next["qbXMLRequest"].as_str().unwrap())[0]
        );
        let (_, answer) = d.answer(&next, &invalid).await;
        assert_eq!(answer["repeatCommunication"], true);
        let again = d.poll(answer["state"].as_str().unwrap()).await;
        assert_eq!(attribute(again["qbXMLRequest"].as_str().unwrap(), "iterator").as_deref(), Some("Start"));
        let only = reply(ITERATE_RS, &again).replace("iteratorRemainingCount=\"18\"", "iteratorRemainingCount=\"0\"");
        d.answer(&again, &only).await;
        let done = d.job(&job).await;
        assert_eq!(done["status"], "done");
        assert_eq!(done["responses"], json!([only]));
    }
}

#[tokio::test]
async fn a_lost_answer_hands_the_write_out_again_with_error_recovery() {
    let d = desk(common::Backend::Sqlite, &[]).await;
    let job = d.queue(ADD, None).await;
    let first = d.poll("").await;
    let sent = first["qbXMLRequest"].as_str().unwrap().to_owned();
    let set = attribute(&sent, "newMessageSetID").unwrap();
    // The POST never arrives; the next GET gets the same work, asking about the lost set.
    let again = d.poll("").await;
    let resent = again["qbXMLRequest"].as_str().unwrap();
    assert_eq!(attribute(resent, "oldMessageSetID").as_deref(), Some(set.as_str()), "{resent}");
    assert_eq!(attribute(resent, "newMessageSetID").as_deref(), Some(set.as_str()));
    assert_ne!(first["postURL"], again["postURL"]);
    assert_eq!(request_ids(resent), request_ids(&sent));
    // A late answer to the first exchange is not attached.
    let (status, _) = d.answer(&first, &reply(ADD_RS, &first)).await;
    assert_eq!(status, 409);
    let (status, _) = d.answer(&again, &reply(ADD_RS, &again)).await;
    assert_eq!(status, 200);
    let done = d.job(&job).await;
    assert_eq!((done["status"].as_str(), done["attempts"].as_i64()), (Some("done"), Some(2)));
}

#[tokio::test]
async fn an_apps_own_message_set_id_is_kept_and_asked_about_when_re_sent() {
    let d = desk(common::Backend::Sqlite, &[]).await;
    let own = ADD.replace(
        "<QBXMLMsgsRq onError=\"stopOnError\">",
        "<QBXMLMsgsRq onError=\"stopOnError\" newMessageSetID=\"app-set-7\">",
    );
    d.queue(&own, None).await;
    let first = d.poll("").await;
    assert_eq!(
        attribute(first["qbXMLRequest"].as_str().unwrap(), "newMessageSetID").as_deref(),
        Some("app-set-7")
    );
    let again = d.poll("").await;
    let resent = again["qbXMLRequest"].as_str().unwrap();
    assert_eq!(attribute(resent, "oldMessageSetID").as_deref(), Some("app-set-7"), "{resent}");
    assert_eq!(attribute(resent, "newMessageSetID").as_deref(), Some("app-set-7"));
    let too_long = ADD.replace(
        "<QBXMLMsgsRq onError=\"stopOnError\">",
        "<QBXMLMsgsRq onError=\"stopOnError\" newMessageSetID=\"a-message-set-id-longer-than-23\">",
    );
    let (status, error) = d
        .hub
        .call(
            Method::POST,
            &format!("/v1/connections/{}/qbxml", d.id),
            &d.key,
            Some(json!({"qbxml": too_long})),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("newMessageSetID"), "{error}");
}

#[tokio::test]
async fn connector_errors_requeue_the_job_then_fail_it_with_a_diagnosis() {
    let d = desk(common::Backend::Sqlite, &[("LEDGERLINK_WEBCONNECTOR_MAX_ATTEMPTS", "2")]).await;
    let job = d.queue(QUERY, None).await;
    for round in 1..=2 {
        let handout = d.poll("").await;
        assert!(!handout["qbXMLRequest"].as_str().unwrap().is_empty(), "round {round}");
        let body = json!({"qbXMLResponse": "", "connectorId": d.id, "errorCode": "0x80040408",
                          "errorMsg": "Could not access Reckon Accounts"});
        let (status, answer) = d.post(handout["postURL"].as_str().unwrap(), &body.to_string()).await;
        assert_eq!(status, 200);
        assert_eq!(answer, json!({"repeatCommunication": false, "state": ""}));
        let (_, conn) = d.hub.call(Method::GET, &format!("/v1/connections/{}", d.id), &d.key, None).await;
        assert_eq!(conn["last_error"]["provider"], "reckon", "{conn}");
        assert!(!conn["last_error"]["action"].as_str().unwrap().is_empty());
    }
    let failed = d.job(&job).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["attempts"], 2);
    assert!(failed["diagnosis"]["summary"].is_string());
    let (_, events) =
        d.hub.call(Method::GET, &format!("/v1/connections/{}/events", d.id), &d.key, None).await;
    assert!(events["data"].as_array().unwrap().iter().any(|e| e["type"] == "job.failed"), "{events}");
    assert_eq!(d.poll("").await["qbXMLRequest"], "");
}

#[tokio::test]
async fn jobs_go_by_priority_then_in_order_and_the_queue_drains_in_one_cycle() {
    let d = desk(common::Backend::Sqlite, &[]).await;
    let a = d.queue(QUERY, None).await;
    let b = d.queue(QUERY, Some(0)).await;
    let urgent = d.queue(QUERY, Some(5)).await;
    let cancelled = d.queue(QUERY, Some(-1)).await;
    let (status, _) = d.hub.call(Method::DELETE, &format!("/v1/jobs/{cancelled}"), &d.key, None).await;
    assert_eq!(status, 204);
    let mut order = Vec::new();
    let mut state = String::new();
    loop {
        let handout = d.poll(&state).await;
        let sent = handout["qbXMLRequest"].as_str().unwrap();
        if sent.is_empty() {
            break;
        }
        let id = request_ids(sent)[0].clone();
        order.push(id.rsplit_once('-').unwrap().0.to_owned());
        let response = format!(
            "<?xml version=\"1.0\" ?><QBXML><QBXMLMsgsRs><CustomerQueryRs requestID=\"{id}\" statusCode=\"1\" \
             statusSeverity=\"Info\" statusMessage=\"A query request did not find a matching object in QuickBooks\" />\
             </QBXMLMsgsRs></QBXML>"
        );
        let (_, answer) = d.answer(&handout, &response).await;
        let more = order.len() < 3;
        assert_eq!(answer["repeatCommunication"], more, "repeat while work remains: {answer}");
        state = answer["state"].as_str().unwrap().to_owned();
    }
    assert_eq!(order, [urgent.clone(), a.clone(), b.clone()]);
    let (status, error) = d.hub.call(Method::DELETE, &format!("/v1/jobs/{a}"), &d.key, None).await;
    assert_eq!(status, 409, "{error}");
    let (_, list) = d.hub.call(Method::GET, &format!("/v1/connections/{}/jobs", d.id), &d.key, None).await;
    let statuses: Vec<&str> =
        list["data"].as_array().unwrap().iter().map(|j| j["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["done", "done", "done", "cancelled"]);
}

#[tokio::test]
async fn an_iterator_that_keeps_breaking_fails_its_job_after_the_restart_limit() {
    let d = desk(common::Backend::Sqlite, &[("LEDGERLINK_WEBCONNECTOR_MAX_RESTARTS", "1")]).await;
    let job = d.queue(ITERATE, None).await;
    let other = d.queue(QUERY, None).await;
    for _ in 0..2 {
        // A first page, then a scheduled (not repeat) GET: the iterator cannot go on.
        let handout = d.poll("").await;
        assert_eq!(
            attribute(handout["qbXMLRequest"].as_str().unwrap(), "iterator").as_deref(),
            Some("Start")
        );
        let (_, answer) = d.answer(&handout, &reply(ITERATE_RS, &handout)).await;
        assert_eq!(answer["repeatCommunication"], true);
    }
    // The second restart is over the limit: the job fails and the next one goes out.
    let next = d.poll("").await;
    assert_eq!(request_ids(next["qbXMLRequest"].as_str().unwrap()), [format!("{other}-0")]);
    let failed = d.job(&job).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["responses"], json!([]), "no partial result");
    assert!(failed["diagnosis"]["summary"].as_str().unwrap().to_lowercase().contains("iterator"), "{failed}");
}

#[tokio::test]
async fn a_paused_connection_gets_no_work_until_it_is_resumed() {
    let d = desk(common::Backend::Sqlite, &[]).await;
    d.poll("").await;
    let job = d.queue(QUERY, None).await;
    let (status, paused) =
        d.hub.call(Method::POST, &format!("/v1/connections/{}/pause", d.id), &d.key, None).await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["status"], "paused");
    assert_eq!(d.poll("").await["qbXMLRequest"], "");
    assert_eq!(d.job(&job).await["status"], "queued");
    let (_, resumed) =
        d.hub.call(Method::POST, &format!("/v1/connections/{}/resume", d.id), &d.key, None).await;
    assert_eq!(resumed["status"], "connected");
    assert!(!d.poll("").await["qbXMLRequest"].as_str().unwrap().is_empty());
    let (_, events) =
        d.hub.call(Method::GET, &format!("/v1/connections/{}/events", d.id), &d.key, None).await;
    let types: Vec<&str> =
        events["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["connection.created", "connection.connected", "connection.paused", "connection.resumed"]
    );
}

#[tokio::test]
async fn credentials_are_checked_hashed_and_throttled() {
    let d = desk(common::Backend::Sqlite, &[]).await;
    let (status, _) = d.poll_as(&d.id, "bakery", "not the password", "").await;
    assert_eq!(status, 401);
    let (status, _) = d.poll_as(&d.id, "someone", PASSWORD, "").await;
    assert_eq!(status, 401);
    let (status, _) = d.poll_as("con_00000000000000000000000000", "bakery", PASSWORD, "").await;
    assert_eq!(status, 401, "an unknown connection looks like a wrong password");
    for _ in 0..3 {
        d.poll_as(&d.id, "bakery", "guess", "").await;
    }
    let (status, error) = d.poll_as(&d.id, "bakery", PASSWORD, "").await;
    assert_eq!(status, 429, "five wrong logins in a row block even the right one for a while: {error}");
    // Nothing under data_dir holds the password in plain text.
    for entry in std::fs::read_dir(d._storage.dir.path().join("data")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()));
    }
}

#[tokio::test]
async fn bad_reckon_requests_get_clear_errors() {
    let d = desk(common::Backend::Sqlite, &[]).await;
    let (_, org) = d.hub.call(Method::POST, "/v1/organisations", &d.key, Some(json!({"name": "B"}))).await;
    let path = format!("/v1/organisations/{}/connections", org["id"].as_str().unwrap());
    for (body, needle) in [
        (json!({"provider": "reckon", "password": PASSWORD}), "username"),
        (json!({"provider": "reckon", "username": "a:b", "password": PASSWORD}), "username"),
        (json!({"provider": "reckon", "username": "bakery", "password": "short"}), "password"),
        (json!({"provider": "xero", "username": "bakery", "password": PASSWORD}), "reckon"),
    ] {
        let (status, error) = d.hub.call(Method::POST, &path, &d.key, Some(body)).await;
        assert_eq!(status, 422, "{error}");
        assert!(error["error"]["message"].as_str().unwrap().contains(needle), "{error}");
    }
    let jobs = format!("/v1/connections/{}/qbxml", d.id);
    for (body, needle) in [
        (json!({"qbxml": "<QBXML>"}), "qbXML"),
        (json!({"qbxml": QUERY, "priority": 1000}), "priority"),
        (
            json!({"qbxml": ITERATE.replace("iterator=\"Start\"", "iterator=\"Continue\" iteratorID=\"x\"")}),
            "Start",
        ),
    ] {
        let (status, error) = d.hub.call(Method::POST, &jobs, &d.key, Some(body)).await;
        assert_eq!(status, 422, "{error}");
        assert!(error["error"]["message"].as_str().unwrap().contains(needle), "{error}");
    }
    let (status, _) = d.hub.call(Method::GET, "/v1/jobs/job_nope", &d.key, None).await;
    assert_eq!(status, 404);
    let other = d.hub.tenant("Other").await;
    let job = d.queue(QUERY, None).await;
    let (status, _) = d.hub.call(Method::GET, &format!("/v1/jobs/{job}"), &other, None).await;
    assert_eq!(status, 404);
}
