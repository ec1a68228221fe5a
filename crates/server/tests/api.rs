//! The v1 API end to end over HTTP, on both store backends.

mod common;

use common::{Storage, TestHub};
use reqwest::Method;
use serde_json::{Value, json};

async fn hub(backend: common::Backend) -> (Storage, TestHub) {
    let storage = Storage::new(backend).await;
    let hub = TestHub::start(&storage).await;
    (storage, hub)
}

async fn create_org(hub: &TestHub, key: &str, body: Value) -> Value {
    let (status, org) = hub.call(Method::POST, "/v1/organisations", key, Some(body)).await;
    assert_eq!(status, 201, "{org}");
    org
}

async fn raw_post(
    hub: &TestHub,
    path: &str,
    key: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = hub.client.post(hub.url(path)).bearer_auth(key).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error body: {body}"))
}

fn error_message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_else(|| panic!("not an error body: {body}"))
}

on_both_backends! {
    async fn an_organisation_can_be_created_read_updated_and_deleted(backend: Backend) {
        let (_storage, hub) = hub(backend).await;
        let key = hub.tenant("Acme").await;
        let org = create_org(&hub, &key, json!({"name": "Harbour Bakery", "external_id": "cld-1234"})).await;
        assert!(org["id"].as_str().unwrap().starts_with("org_"));
        assert_eq!(org["name"], "Harbour Bakery");
        assert_eq!(org["external_id"], "cld-1234");
        assert!(org["created_at"].as_str().unwrap().ends_with('Z'));
        let path = format!("/v1/organisations/{}", org["id"].as_str().unwrap());

        let (status, fetched) = hub.call(Method::GET, &path, &key, None).await;
        assert_eq!((status, &fetched), (200, &org));

        let (status, renamed) = hub.call(Method::PATCH, &path, &key, Some(json!({"name": "Harbour Bakery Ltd"}))).await;
        assert_eq!(status, 200, "{renamed}");
        assert_eq!(renamed["name"], "Harbour Bakery Ltd");
        assert_eq!(renamed["external_id"], "cld-1234", "absent fields are left alone");

        let (status, cleared) = hub.call(Method::PATCH, &path, &key, Some(json!({"external_id": null}))).await;
        assert_eq!(status, 200);
        assert_eq!(cleared["external_id"], Value::Null);

        let (status, _) = hub.call(Method::DELETE, &path, &key, None).await;
        assert_eq!(status, 204);
        let (status, body) = hub.call(Method::GET, &path, &key, None).await;
        assert_eq!((status, error_code(&body)), (404, "not_found"));
        hub.stop().await;
    }

    async fn lists_are_paginated_with_a_cursor(backend: Backend) {
        let (_storage, hub) = hub(backend).await;
        let key = hub.tenant("Acme").await;
        let mut created = Vec::new();
        for i in 0..5 {
            created.push(create_org(&hub, &key, json!({"name": format!("Org {i}")})).await["id"].as_str().unwrap().to_owned());
        }
        let mut seen = Vec::new();
        let mut path = "/v1/organisations?limit=2".to_owned();
        loop {
            let (status, page) = hub.call(Method::GET, &path, &key, None).await;
            assert_eq!(status, 200, "{page}");
            let data = page["data"].as_array().unwrap();
            assert!(data.len() <= 2);
            seen.extend(data.iter().map(|o| o["id"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/v1/organisations?limit=2&cursor={cursor}"),
                None => break,
            }
        }
        created.sort();
        assert_eq!(seen, created, "every organisation exactly once, in id order");
        hub.stop().await;
    }

    async fn another_tenants_ids_answer_not_found(backend: Backend) {
        let (_storage, hub) = hub(backend).await;
        let acme = hub.tenant("Acme").await;
        let intruder = hub.tenant("Intruder").await;
        let org = create_org(&hub, &acme, json!({"name": "Harbour Bakery", "external_id": "cld-1"})).await;
        let id = org["id"].as_str().unwrap().to_owned();
        let (_, user) = hub.call(Method::POST, &format!("/v1/organisations/{id}/users"), &acme,
            Some(json!({"name": "Ana", "email": "ana@example.com"}))).await;
        let user_id = user["id"].as_str().unwrap();

        let attempts = [
            (Method::GET, format!("/v1/organisations/{id}"), None),
            (Method::PATCH, format!("/v1/organisations/{id}"), Some(json!({"name": "Mine now"}))),
            (Method::DELETE, format!("/v1/organisations/{id}"), None),
            (Method::GET, format!("/v1/organisations/{id}/users"), None),
            (Method::POST, format!("/v1/organisations/{id}/users"), Some(json!({"name": "Eve", "email": "eve@example.com"}))),
            (Method::DELETE, format!("/v1/organisations/{id}/users/{user_id}"), None),
        ];
        for (method, path, body) in attempts {
            let (status, response) = hub.call(method.clone(), &path, &intruder, body).await;
            assert_eq!(status, 404, "{method} {path}: {response}");
            assert_eq!(error_message(&response), "organisation not found", "no hint that it exists");
        }
        let (_, list) = hub.call(Method::GET, "/v1/organisations", &intruder, None).await;
        assert_eq!(list["data"], json!([]));
        // The same external id is free for the other tenant.
        create_org(&hub, &intruder, json!({"name": "Other", "external_id": "cld-1"})).await;

        let (status, unchanged) = hub.call(Method::GET, &format!("/v1/organisations/{id}"), &acme, None).await;
        assert_eq!((status, unchanged), (200, org));
        let (_, users) = hub.call(Method::GET, &format!("/v1/organisations/{id}/users"), &acme, None).await;
        assert_eq!(users["data"].as_array().unwrap().len(), 1);
        hub.stop().await;
    }

    async fn a_duplicate_external_id_is_a_conflict(backend: Backend) {
        let (_storage, hub) = hub(backend).await;
        let key = hub.tenant("Acme").await;
        create_org(&hub, &key, json!({"name": "A", "external_id": "cld-7"})).await;
        let (status, body) = hub.call(Method::POST, "/v1/organisations", &key, Some(json!({"name": "B", "external_id": "cld-7"}))).await;
        assert_eq!((status, error_code(&body)), (409, "conflict"));
        assert!(error_message(&body).contains("cld-7"));
        let b = create_org(&hub, &key, json!({"name": "B"})).await;
        let (status, _) = hub.call(Method::PATCH, &format!("/v1/organisations/{}", b["id"].as_str().unwrap()), &key,
            Some(json!({"external_id": "cld-7"}))).await;
        assert_eq!(status, 409);
        hub.stop().await;
    }

    async fn users_are_added_listed_and_removed(backend: Backend) {
        let (_storage, hub) = hub(backend).await;
        let key = hub.tenant("Acme").await;
        let org = create_org(&hub, &key, json!({"name": "Harbour Bakery"})).await;
        let users = format!("/v1/organisations/{}/users", org["id"].as_str().unwrap());
        let (status, ana) = hub.call(Method::POST, &users, &key, Some(json!({"name": "Ana Lima", "email": "ana@Example.com"}))).await;
        assert_eq!(status, 201, "{ana}");
        assert_eq!(ana["email"], "ana@example.com");
        assert_eq!(ana["organisation_id"], org["id"]);
        let (status, body) = hub.call(Method::POST, &users, &key, Some(json!({"name": "Ana again", "email": "ana@example.com"}))).await;
        assert_eq!((status, error_code(&body)), (409, "conflict"));
        let (status, body) = hub.call(Method::POST, &users, &key, Some(json!({"name": "Ben", "email": "ben"}))).await;
        assert_eq!(status, 422);
        assert!(error_message(&body).contains("`email`"), "{body}");

        let (_, list) = hub.call(Method::GET, &users, &key, None).await;
        assert_eq!(list["data"].as_array().unwrap().len(), 1);
        let (status, _) = hub.call(Method::DELETE, &format!("{users}/{}", ana["id"].as_str().unwrap()), &key, None).await;
        assert_eq!(status, 204);
        let (status, _) = hub.call(Method::DELETE, &format!("{users}/{}", ana["id"].as_str().unwrap()), &key, None).await;
        assert_eq!(status, 404);
        hub.stop().await;
    }

    async fn bad_input_gets_a_clear_error_and_leaves_data_untouched(backend: Backend) {
        let (_storage, hub) = hub(backend).await;
        let key = hub.tenant("Acme").await;
        let org = create_org(&hub, &key, json!({"name": "Harbour Bakery", "external_id": "cld-1"})).await;
        let path = format!("/v1/organisations/{}", org["id"].as_str().unwrap());

        // (body, content type, status, code, words the message must contain)
        type Case<'a> = (Vec<u8>, Option<&'a str>, u16, &'a str, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (b"{\"name\": ".to_vec(), Some("application/json"), 400, "malformed_json", vec!["JSON"]),
            (b"not json".to_vec(), Some("application/json"), 400, "malformed_json", vec![]),
            (b"{\"name\": 5}".to_vec(), Some("application/json"), 422, "validation_failed", vec!["name", "string"]),
            (b"{\"nmae\": \"x\"}".to_vec(), Some("application/json"), 422, "validation_failed", vec!["nmae"]),
            (b"{\"name\": \"x\", \"extra\": 1}".to_vec(), Some("application/json"), 422, "validation_failed", vec!["extra"]),
            (b"{}".to_vec(), Some("application/json"), 422, "validation_failed", vec!["name"]),
            (b"[]".to_vec(), Some("application/json"), 422, "validation_failed", vec![]),
            (b"{\"name\": \"   \"}".to_vec(), Some("application/json"), 422, "validation_failed", vec!["`name`", "empty"]),
            (b"{\"name\": \"a\\nb\"}".to_vec(), Some("application/json"), 422, "validation_failed", vec!["control"]),
            (format!("{{\"name\": \"{}\"}}", "x".repeat(201)).into_bytes(), Some("application/json"), 422, "validation_failed", vec!["200"]),
            (b"{\"name\": \"x\", \"external_id\": \"\"}".to_vec(), Some("application/json"), 422, "validation_failed", vec!["external_id"]),
            (b"{\"name\": \"x\"}".to_vec(), None, 415, "unsupported_media_type", vec!["Content-Type"]),
            (b"{\"name\": \"x\"}".to_vec(), Some("text/plain"), 415, "unsupported_media_type", vec![]),
        ];
        for (body, content_type, status, code, words) in cases {
            let shown = String::from_utf8_lossy(&body).into_owned();
            let (got, response) = raw_post(&hub, "/v1/organisations", &key, content_type, body).await;
            assert_eq!((got, error_code(&response)), (status, code), "{shown}: {response}");
            for word in words {
                assert!(error_message(&response).contains(word), "{shown}: {response} should mention {word}");
            }
        }
        // The same rules on PATCH, and nothing changed.
        for body in [json!({"name": ""}), json!({"name": null}), json!({"external_id": 7}), json!({"nam": "x"})] {
            let (status, response) = hub.call(Method::PATCH, &path, &key, Some(body.clone())).await;
            assert_eq!(status, 422, "{body}: {response}");
        }
        let (_, after) = hub.call(Method::GET, &path, &key, None).await;
        assert_eq!(after, org);
        let (_, list) = hub.call(Method::GET, "/v1/organisations", &key, None).await;
        assert_eq!(list["data"].as_array().unwrap().len(), 1, "no bad request created anything");

        for query in ["limit=0", "limit=201", "limit=abc", "cursor=nonsense", "colour=red"] {
            let (status, response) = hub.call(Method::GET, &format!("/v1/organisations?{query}"), &key, None).await;
            assert_eq!((status, error_code(&response)), (422, "validation_failed"), "{query}: {response}");
        }
        hub.stop().await;
    }

    async fn an_oversized_body_is_refused_with_413(backend: Backend) {
        let (_storage, hub) = hub(backend).await;
        let key = hub.tenant("Acme").await;
        let big = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
        let (status, response) = raw_post(&hub, "/v1/organisations", &key, Some("application/json"), big.into_bytes()).await;
        assert_eq!((status, error_code(&response)), (413, "payload_too_large"));
        // On a new connection: the server closes the one whose body it refused to read, and a
        // pooled client may not have noticed yet.
        let list: Value = reqwest::Client::new()
            .get(hub.url("/v1/organisations"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["data"], json!([]));
        hub.stop().await;
    }

    async fn missing_or_wrong_api_keys_are_401(backend: Backend) {
        let (_storage, hub) = hub(backend).await;
        let key = hub.tenant("Acme").await;
        let no_key = hub.client.get(hub.url("/v1/organisations")).send().await.unwrap();
        assert_eq!(no_key.status(), 401);
        let body: Value = no_key.json().await.unwrap();
        assert_eq!(error_code(&body), "unauthorized");
        assert!(error_message(&body).contains("Bearer"));
        for header in ["Bearer llk_wrong", "Basic dXNlcjpwYXNz", "Bearer ", &key, &format!("Token {key}")] {
            let response = hub.client.get(hub.url("/v1/organisations")).header("authorization", header).send().await.unwrap();
            assert_eq!(response.status(), 401, "{header}");
        }
        let (status, _) = hub.call(Method::GET, "/v1/organisations", &key, None).await;
        assert_eq!(status, 200);
        hub.stop().await;
    }

    async fn data_and_api_keys_survive_a_restart(backend: Backend) {
        let storage = Storage::new(backend).await;
        let hub = TestHub::start(&storage).await;
        let key = hub.tenant("Acme").await;
        let org = create_org(&hub, &key, json!({"name": "Café Müller", "external_id": "cld-9"})).await;
        hub.stop().await;

        let hub = TestHub::start(&storage).await;
        let (status, fetched) = hub.call(Method::GET, &format!("/v1/organisations/{}", org["id"].as_str().unwrap()), &key, None).await;
        assert_eq!((status, fetched), (200, org));
        hub.stop().await;
    }

    async fn a_different_encryption_key_is_refused_at_start(backend: Backend) {
        let storage = Storage::new(backend).await;
        TestHub::start(&storage).await.stop().await;
        let other_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let err = ledgerlink_server::hub::build(storage.config(&[("LEDGERLINK_ENCRYPTION_KEY", other_key)]))
            .await
            .err()
            .expect("a different key must be refused");
        let message = format!("{err:#}");
        assert!(message.contains("does not match this database"), "{message}");
        // Rotating properly (new key, old one listed) is accepted.
        let old = std::fs::read_to_string(storage.dir.path().join("data").join(ledgerlink_server::hub::KEY_FILE)).unwrap();
        let rotated = storage.config(&[("LEDGERLINK_ENCRYPTION_KEY", other_key), ("LEDGERLINK_OLD_ENCRYPTION_KEYS", old.trim())]);
        ledgerlink_server::hub::build(rotated).await.unwrap().store.close().await;
    }
}

#[tokio::test]
async fn health_openapi_and_unknown_routes_need_no_key_and_answer_json() {
    let (_storage, hub) = hub(common::Backend::Sqlite).await;
    let health = hub.client.get(hub.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().get("x-request-id").unwrap().to_str().unwrap().starts_with("req_"));
    assert_eq!(health.json::<Value>().await.unwrap(), json!({"status": "ok"}));

    let doc: Value = hub.client.get(hub.url("/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/v1/organisations", &["post", "get"][..]),
        ("/v1/organisations/{id}", &["get", "patch", "delete"]),
        ("/v1/organisations/{id}/users", &["post", "get"]),
        ("/v1/organisations/{id}/users/{user_id}", &["delete"]),
        ("/healthz", &["get"]),
    ] {
        for method in methods {
            assert!(paths[path][method].is_object(), "{method} {path} is documented");
        }
    }
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());

    let missing = hub.client.get(hub.url("/v2/nothing")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(error_code(&missing.json::<Value>().await.unwrap()), "not_found");
    let wrong_method = hub.client.put(hub.url("/v1/organisations")).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(error_code(&wrong_method.json::<Value>().await.unwrap()), "method_not_allowed");
    hub.stop().await;
}

#[tokio::test]
async fn every_documented_route_is_served() {
    // The document comes from the router, so each documented path must reach a handler (401 for
    // want of a key), never the 404 fallback.
    let (_storage, hub) = hub(common::Backend::Sqlite).await;
    let doc = ledgerlink_server::api::openapi_document();
    for (path, item) in doc.paths.paths {
        let concrete = path
            .replace("{id}", "org_00000000000000000000000000")
            .replace("{user_id}", "usr_00000000000000000000000000");
        for (method, present) in [
            (Method::GET, item.get.is_some()),
            (Method::POST, item.post.is_some()),
            (Method::PATCH, item.patch.is_some()),
            (Method::DELETE, item.delete.is_some()),
        ] {
            if present {
                let response = hub.client.request(method.clone(), hub.url(&concrete)).send().await.unwrap();
                // The OAuth callback and email reconnect links need no key and refuse a request
                // without their `state` or signature.
                let unsigned = path == "/oauth/callback" || path.starts_with("/reconnect/");
                // The web connector's endpoints take Basic Auth; the postURL needs its exchange.
                let expected: &[u16] = if unsigned {
                    &[400]
                } else if path.starts_with("/webconnector/") {
                    &[400, 401]
                } else {
                    &[200, 401]
                };
                assert!(
                    expected.contains(&response.status().as_u16()),
                    "{method} {concrete} answered {}",
                    response.status()
                );
            }
        }
    }
    hub.stop().await;
}

#[tokio::test]
async fn a_callers_request_id_is_echoed_and_an_unsafe_one_replaced() {
    let (_storage, hub) = hub(common::Backend::Sqlite).await;
    let echoed = hub.client.get(hub.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
    let replaced =
        hub.client.get(hub.url("/healthz")).header("x-request-id", "evil\" value").send().await.unwrap();
    assert!(replaced.headers()["x-request-id"].to_str().unwrap().starts_with("req_"));
    hub.stop().await;
}
