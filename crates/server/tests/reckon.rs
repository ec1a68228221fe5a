//! The web connector end to end: the hub against the simulated Reckon Web Connector and its
//! generated company file (`ledgerlink_sandbox::reckon`), as a user's desktop would run them.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{Storage, TestHub};
use ledgerlink_core::{SecretString, SystemClock};
use ledgerlink_sandbox::reckon::{Client, ClientConfig, CompanyFile, CompanyOptions, SharedCompanyFile};
use reqwest::Method;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

const CUSTOMERS_BY_TENS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<?qbxml version="6.1"?>
<QBXML>
  <QBXMLMsgsRq onError="stopOnError">
    <CustomerQueryRq iterator="Start">
      <MaxReturned>10</MaxReturned>
      <ActiveStatus>ActiveOnly</ActiveStatus>
    </CustomerQueryRq>
  </QBXMLMsgsRq>
</QBXML>"#;

fn customer_add(name: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<?qbxml version="6.1"?>
<QBXML>
  <QBXMLMsgsRq onError="stopOnError">
    <CustomerAddRq>
      <CustomerAdd>
        <Name>{name}</Name>
        <CompanyName>{name}</CompanyName>
      </CustomerAdd>
    </CustomerAddRq>
  </QBXMLMsgsRq>
</QBXML>"#
    )
}

struct Desktop {
    key: String,
    id: String,
    company: SharedCompanyFile,
    client: Client,
}

async fn connect(hub: &TestHub) -> Desktop {
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
    let id = conn["webconnector"]["connection_id"].as_str().unwrap().to_owned();
    let endpoint = conn["webconnector"]["endpoint_url"].as_str().unwrap().to_owned();
    let company = CompanyFile::generate(&CompanyOptions::default()).shared();
    let config = ClientConfig::new(endpoint, id.clone(), "bakery", SecretString::from(PASSWORD.to_owned()));
    let client = Client::new(config, company.clone()).unwrap();
    Desktop { key, id, company, client }
}

async fn queue(hub: &TestHub, d: &Desktop, qbxml: &str) -> String {
    let (status, created) = hub
        .call(Method::POST, &format!("/v1/connections/{}/qbxml", d.id), &d.key, Some(json!({"qbxml": qbxml})))
        .await;
    assert_eq!(status, 202, "{created}");
    created["job_id"].as_str().unwrap().to_owned()
}

async fn job(hub: &TestHub, d: &Desktop, id: &str) -> Value {
    let (status, job) = hub.call(Method::GET, &format!("/v1/jobs/{id}"), &d.key, None).await;
    assert_eq!(status, 200, "{job}");
    job
}

/// Every customer `ListID` across a job's response pages.
fn list_ids(job: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for page in job["responses"].as_array().unwrap() {
        let page = page.as_str().unwrap();
        for chunk in page.split("<CustomerRet>").skip(1) {
            let id = chunk.split("<ListID>").nth(1).unwrap().split("</ListID>").next().unwrap();
            ids.push(id.to_owned());
        }
    }
    ids
}

on_both_backends! {
    async fn thirty_five_customers_come_through_an_iterator_exactly_once_each(backend: Backend) {
        let storage = Storage::new(backend).await;
        let hub = TestHub::start_custom(&storage, &[], Arc::new(SystemClock), false).await;
        let mut d = connect(&hub).await;
        let job_id = queue(&hub, &d, CUSTOMERS_BY_TENS).await;
        let report = d.client.run_cycle().await.unwrap();
        assert_eq!(report.posts, 4, "four pages in one cycle: {report:?}");
        let done = job(&hub, &d, &job_id).await;
        assert_eq!(done["status"], "done", "{done}");
        let ids = list_ids(&done);
        assert_eq!(ids.len(), 35, "{ids:?}");
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 35, "no customer twice");
        let expected: HashSet<String> =
            d.company.lock().unwrap().customers().iter().filter(|c| c.is_active).map(|c| c.list_id.clone()).collect();
        assert_eq!(ids.into_iter().collect::<HashSet<_>>(), expected);

        // Again, with the iterator invalidated part way: the query starts over and the result
        // is still every customer once.
        let job_id = queue(&hub, &d, CUSTOMERS_BY_TENS).await;
        d.client.faults().invalidate_iterators();
        d.client.run_cycle().await.unwrap();
        let done = job(&hub, &d, &job_id).await;
        assert_eq!(done["status"], "done", "{done}");
        assert!(done["restarts"].as_i64().unwrap() >= 1, "{done}");
        let ids = list_ids(&done);
        assert_eq!(ids.len(), 35);
        assert_eq!(ids.into_iter().collect::<HashSet<_>>(), expected);
        hub.stop().await;
    }

    async fn a_lost_post_of_an_add_does_not_create_the_customer_twice(backend: Backend) {
        let storage = Storage::new(backend).await;
        let hub = TestHub::start_custom(&storage, &[], Arc::new(SystemClock), false).await;
        let mut d = connect(&hub).await;
        let job_id = queue(&hub, &d, &customer_add("Boulangerie Émile")).await;
        d.client.faults().drop_next_posts(1);
        d.client.run_cycle().await.unwrap();
        assert_eq!(d.company.lock().unwrap().stats().customers_added, 1, "applied, but the answer was lost");
        assert_eq!(job(&hub, &d, &job_id).await["status"], "in_progress");
        d.client.run_cycle().await.unwrap();
        let done = job(&hub, &d, &job_id).await;
        assert_eq!(done["status"], "done", "{done}");
        let stats = d.company.lock().unwrap().stats().clone();
        assert_eq!(stats.customers_added, 1, "not applied twice");
        assert_eq!(stats.message_sets_replayed, 1, "the stored answer of the first try came back");
        assert!(done["responses"][0].as_str().unwrap().contains("Boulangerie Émile"), "{done}");
        hub.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_errors_lose_no_job_and_the_queue_drains_in_one_cycle() {
    let storage = Storage::new(common::Backend::Sqlite).await;
    let hub = TestHub::start_custom(&storage, &[], Arc::new(SystemClock), false).await;
    let mut d = connect(&hub).await;
    let jobs = [
        queue(&hub, &d, CUSTOMERS_BY_TENS).await,
        queue(&hub, &d, &customer_add("Zoë's Café")).await,
        queue(&hub, &d, &customer_add("Harbour Fish Co")).await,
    ];
    d.client.faults().fail_next_exchanges(2, "0x80040408", "Could not access Reckon Accounts");
    let first = d.client.run_cycle().await.unwrap();
    assert_eq!(first.error_posts, 1, "{first:?}");
    let (_, conn) = hub.call(Method::GET, &format!("/v1/connections/{}", d.id), &d.key, None).await;
    assert_eq!(conn["last_error"]["provider"], "reckon", "{conn}");
    d.client.run_cycle().await.unwrap();
    let last = d.client.run_cycle().await.unwrap();
    assert!(last.posts >= 6, "all the work in one cycle: {last:?}");
    for id in &jobs {
        assert_eq!(job(&hub, &d, id).await["status"], "done");
    }
    assert_eq!(d.company.lock().unwrap().stats().customers_added, 2);
    let (_, conn) = hub.call(Method::GET, &format!("/v1/connections/{}", d.id), &d.key, None).await;
    assert!(conn["last_error"].is_null(), "cleared once work succeeds: {conn}");
    hub.stop().await;
}

/// Two hub processes on one PostgreSQL behind a load balancer that alternates between them:
/// every GET and its POST land on different hubs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_served_by_one_hub_process_and_its_post_by_another_work_together() {
    let database = ledgerlink_testkit::postgres_database().await;
    let balancer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", balancer.local_addr().unwrap());
    let env = [
        ("LEDGERLINK_DATABASE_URL", database.as_str()),
        ("LEDGERLINK_PUBLIC_URL", public.as_str()),
        ("LEDGERLINK_ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
    ];
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let created = common::run_cli(&["tenant", "create", "Acme", "--json"], &env, dirs[0].path());
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let key =
        serde_json::from_slice::<Value>(&created.stdout).unwrap()["api_key"].as_str().unwrap().to_owned();
    let mut hubs = Vec::new();
    for dir in &dirs {
        hubs.push(common::ServeProcess::start(&[], &env, dir.path()).await);
    }
    let backends: Vec<String> = hubs.iter().map(|h| h.base.clone()).collect();
    let served = Arc::new(std::sync::Mutex::new(Vec::<usize>::new()));
    tokio::spawn(round_robin(balancer, backends, served.clone()));

    let hub = Front { base: public.clone(), client: reqwest::Client::new() };
    let (_, org) =
        hub.call(Method::POST, "/v1/organisations", &key, Some(json!({"name": "Harbour Bakery"}))).await;
    let (_, conn) = hub
        .call(
            Method::POST,
            &format!("/v1/organisations/{}/connections", org["id"].as_str().unwrap()),
            &key,
            Some(json!({"provider": "reckon", "username": "bakery", "password": PASSWORD})),
        )
        .await;
    let id = conn["id"].as_str().unwrap().to_owned();
    let (_, created) = hub
        .call(
            Method::POST,
            &format!("/v1/connections/{id}/qbxml"),
            &key,
            Some(json!({"qbxml": CUSTOMERS_BY_TENS})),
        )
        .await;
    let company = CompanyFile::generate(&CompanyOptions::default()).shared();
    let config = ClientConfig::new(
        conn["webconnector"]["endpoint_url"].as_str().unwrap(),
        id.clone(),
        "bakery",
        SecretString::from(PASSWORD.to_owned()),
    );
    let mut client = Client::new(config, company).unwrap();
    served.lock().unwrap().clear();
    let report = client.run_cycle().await.unwrap();
    assert_eq!(report.posts, 4, "{report:?}");
    let order = served.lock().unwrap().clone();
    assert!(order.len() >= 8 && order.windows(2).all(|w| w[0] != w[1]), "alternating hubs: {order:?}");
    let (_, done) =
        hub.call(Method::GET, &format!("/v1/jobs/{}", created["job_id"].as_str().unwrap()), &key, None).await;
    assert_eq!(done["status"], "done", "{done}");
    let ids = list_ids(&done);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 35);
    assert_eq!(ids.len(), 35);
    for hub in &mut hubs {
        assert!(hub.terminate().success(), "{}", hub.stderr());
    }
}

struct Front {
    base: String,
    client: reqwest::Client,
}

impl Front {
    async fn call(&self, method: Method, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }
}

/// A tiny HTTP load balancer: each request goes to the next backend in turn.
async fn round_robin(
    listener: tokio::net::TcpListener,
    backends: Vec<String>,
    served: Arc<std::sync::Mutex<Vec<usize>>>,
) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let (backends, next, client, served) =
            (backends.clone(), next.clone(), client.clone(), served.clone());
        async move {
            let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % backends.len();
            served.lock().unwrap().push(index);
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let url = format!(
                "{}{}",
                backends[index],
                parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
            );
            let mut forwarded = client.request(parts.method, url).body(body);
            for (name, value) in &parts.headers {
                if name != "host" {
                    forwarded = forwarded.header(name, value);
                }
            }
            let response = forwarded.send().await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response.bytes().await.unwrap();
            let mut out = axum::response::Response::new(axum::body::Body::from(bytes));
            *out.status_mut() = status;
            for (name, value) in &headers {
                if name != "content-length" && name != "transfer-encoding" {
                    out.headers_mut().insert(name, value.clone());
                }
            }
            out
        }
    });
    axum::serve(listener, app).await.unwrap();
}
