//! The store test suite. Every test runs against both backends: SQLite in a temporary
//! directory, and PostgreSQL on a throwaway cluster.

use std::sync::Arc;

use ledgerlink_core::{Timestamp, id};
use ledgerlink_store::{
    Attempt, ConnectOptions, Connection, ConnectionChange, ConnectionFilter, DatabaseUrl, Delivery, Dispatch,
    Event, Guard, LinkedConnection, OAuthState, Organisation, OutboxEmail, PendingChange, Store, StoreError,
    Tenant, TokenWrite, User, WebhookSubscription,
};

struct Fixture {
    store: Arc<dyn Store>,
    url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::sqlite_in(dir.path());
    let store = ledgerlink_store::connect(&url, &ConnectOptions::default()).await.unwrap();
    Fixture { store, url, _dir: Some(dir) }
}

async fn postgres() -> Fixture {
    let url = DatabaseUrl::parse(&ledgerlink_testkit::postgres_database().await).unwrap();
    let store = ledgerlink_store::connect(&url, &ConnectOptions::default()).await.unwrap();
    Fixture { store, url, _dir: None }
}

/// Expands one test body into a `sqlite` and a `postgres` test.
macro_rules! on_both_backends {
    ($(async fn $name:ident($fixture:ident: Fixture) $body:block)*) => {
        $(async fn $name($fixture: Fixture) $body)*

        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(super::sqlite().await).await })*
        }

        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(super::postgres().await).await })*
        }
    };
}

const T0: Timestamp = Timestamp::from_millis(1_795_370_400_000);

async fn tenant(store: &dyn Store, name: &str) -> Tenant {
    let tenant = Tenant { id: id::generate("ten", T0.as_millis()), name: name.into(), created_at: T0 };
    store.create_tenant(&tenant, &format!("hash-of-{}", tenant.id)).await.unwrap();
    tenant
}

fn organisation(tenant: &Tenant, name: &str, external_id: Option<&str>) -> Organisation {
    Organisation {
        id: id::generate("org", T0.as_millis()),
        tenant_id: tenant.id.clone(),
        name: name.into(),
        external_id: external_id.map(Into::into),
        created_at: T0,
        updated_at: T0,
    }
}

fn user(org: &Organisation, email: &str) -> User {
    User {
        id: id::generate("usr", T0.as_millis()),
        tenant_id: org.tenant_id.clone(),
        organisation_id: org.id.clone(),
        name: "Ana Lima".into(),
        email: email.into(),
        created_at: T0,
    }
}

fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_millis(T0.as_millis() + offset_ms)
}

fn event(c: &Connection, kind: &str, created_at: Timestamp) -> Event {
    Event {
        id: id::generate("evt", created_at.as_millis()),
        tenant_id: c.tenant_id.clone(),
        connection_id: c.id.clone(),
        kind: kind.into(),
        status: c.status.clone(),
        reason: None,
        detail: None,
        created_at,
    }
}

async fn connection(store: &dyn Store, org: &Organisation, provider: &str) -> Connection {
    let c = Connection {
        id: id::generate("con", T0.as_millis()),
        tenant_id: org.tenant_id.clone(),
        organisation_id: org.id.clone(),
        provider: provider.into(),
        status: "pending".into(),
        reason: None,
        status_since: T0,
        external_account_id: None,
        external_account_name: None,
        last_error: None,
        redirect_url: None,
        access_token: None,
        access_issued_at: None,
        access_expires_at: None,
        refresh_token: None,
        refresh_token_obtained_at: None,
        scope: None,
        token_version: 0,
        next_refresh_at: None,
        failures: 0,
        inflight_refresh_token: None,
        inflight_since: None,
        lease_owner: None,
        lease_expires_at: None,
        created_at: T0,
        updated_at: T0,
        connected_at: None,
        linked_at: None,
    };
    store.create_connection(&c, &event(&c, "connection.created", T0)).await.unwrap();
    c
}

fn connect(now: Timestamp, due: Timestamp, refresh: &str) -> ConnectionChange {
    ConnectionChange {
        status: "connected".into(),
        reason: None,
        last_error: Some(None),
        tokens: Some(TokenWrite {
            access_token: format!("sealed-access-{}", now.as_millis()),
            access_issued_at: now,
            access_expires_at: at(now.as_millis() - T0.as_millis() + 1_800_000),
            refresh_token: Some(refresh.into()),
            refresh_token_obtained_at: Some(now),
            scope: Some("offline_access".into()),
        }),
        external_account: Some(("tenant-1".into(), Some("Demo Company".into()))),
        next_refresh_at: Some(due),
        failures: 0,
        clear_inflight: true,
        release_lease: true,
        now,
    }
}

async fn org_of(store: &dyn Store) -> Organisation {
    let acme = tenant(store, "Acme").await;
    let org = organisation(&acme, "Harbour Bakery", None);
    store.create_organisation(&org).await.unwrap();
    org
}

/// Sets the connection's status at `now` through `apply_changes`, linking `account` when given.
async fn set_status(store: &dyn Store, c: &Connection, status: &str, account: Option<&str>, now: Timestamp) {
    let mut change = ConnectionChange::keep(c, now);
    change.status = status.into();
    change.external_account = account.map(|a| (a.into(), Some(format!("Books {a}"))));
    let batch = [PendingChange { id: &c.id, guard: Guard::Any, change: &change, events: &[] }];
    assert_eq!(store.apply_changes(&batch).await.unwrap(), vec![true]);
}

async fn subscription(store: &dyn Store, tenant_id: &str, url: &str) -> WebhookSubscription {
    let s = WebhookSubscription {
        id: id::generate("whs", T0.as_millis()),
        tenant_id: tenant_id.into(),
        url: url.into(),
        events: None,
        secret: "sealed-whsec".into(),
        created_at: T0,
        disabled_at: None,
        disabled_reason: None,
    };
    store.create_subscription(&s).await.unwrap();
    s
}

/// A delivery of a fresh event to `sub`, due at `T0`.
fn delivery(sub: &WebhookSubscription, ordering_key: &str, seq: i64) -> Delivery {
    let event_id = id::generate("evt", T0.as_millis());
    let payload = format!("{{\"seq\":{seq}}}");
    Delivery::new(&sub.id, &sub.tenant_id, &event_id, "connection.degraded", (ordering_key, seq), payload, T0)
}

/// An email attempt at `now`: `sent`, or `pending` again at `retry_at` after `error`.
fn mail(now: Timestamp, attempts: i64, retry_at: Option<Timestamp>, error: Option<&str>) -> Attempt {
    Attempt {
        status: if retry_at.is_some() { "pending" } else { "sent" }.into(),
        attempts,
        next_attempt_at: retry_at,
        attempted_at: now,
        last_status: None,
        last_error: error.map(Into::into),
    }
}

/// The outcome of an attempt at `now`: delivered, or answered 503 and retried at `retry_at`.
fn attempt(now: Timestamp, attempts: i64, retry_at: Option<Timestamp>) -> Attempt {
    Attempt {
        status: if retry_at.is_some() { "pending" } else { "delivered" }.into(),
        attempts,
        next_attempt_at: retry_at,
        attempted_at: now,
        last_status: Some(if retry_at.is_some() { 503 } else { 200 }),
        last_error: retry_at.map(|_| "HTTP 503".into()),
    }
}

/// Claims due deliveries for `instance` at `now`, leased until `until`; their ids, sorted.
async fn claim_ids(store: &dyn Store, instance: &str, now: Timestamp, until: Timestamp) -> Vec<String> {
    let mut ids: Vec<String> =
        store.claim_deliveries(instance, now, until, 10).await.unwrap().into_iter().map(|d| d.id).collect();
    ids.sort();
    ids
}

fn email(c: &Connection, event_id: &str, subject: &str) -> OutboxEmail {
    OutboxEmail {
        id: id::generate("eml", T0.as_millis()),
        tenant_id: c.tenant_id.clone(),
        connection_id: c.id.clone(),
        event_id: event_id.into(),
        recipients: r#"[{"name":"Ana Lima","email":"ana@example.com"}]"#.into(),
        subject: subject.into(),
        body: "Please reconnect.".into(),
        status: "pending".into(),
        attempts: 0,
        next_attempt_at: Some(T0),
        last_error: None,
        created_at: T0,
        sent_at: None,
    }
}

/// Claims due emails for `instance` at `now`, leased until `until`; their ids, sorted.
async fn claim_email_ids(store: &dyn Store, instance: &str, now: Timestamp, until: Timestamp) -> Vec<String> {
    let mut ids: Vec<String> =
        store.claim_emails(instance, now, until, 10).await.unwrap().into_iter().map(|m| m.id).collect();
    ids.sort();
    ids
}

async fn degraded_ids(store: &dyn Store, cutoff: Timestamp) -> Vec<String> {
    store.degraded_unalerted(cutoff, 10).await.unwrap().into_iter().map(|c| c.id).collect()
}

on_both_backends! {
    async fn migrations_are_applied_once_and_report_the_schema_version(f: Fixture) {
        let version = f.store.schema_version().await.unwrap();
        assert!(version >= 1);
        assert_eq!(f.store.migrate().await.unwrap(), Vec::<i64>::new(), "second run applies nothing");
        assert_eq!(f.store.schema_version().await.unwrap(), version);
    }

    async fn tenants_are_found_by_the_hash_of_their_api_key(f: Fixture) {
        let acme = tenant(&*f.store, "Acme").await;
        let found = f.store.tenant_by_api_key_hash(&format!("hash-of-{}", acme.id)).await.unwrap();
        assert_eq!(found, Some(acme.clone()));
        assert_eq!(f.store.tenant_by_api_key_hash("hash-of-nobody").await.unwrap(), None);
        assert_eq!(f.store.tenant(&acme.id).await.unwrap(), Some(acme));
    }

    async fn organisations_round_trip_with_non_ascii_names(f: Fixture) {
        let acme = tenant(&*f.store, "Acme").await;
        let org = organisation(&acme, "Café Müller 日本", Some("cld-1234"));
        f.store.create_organisation(&org).await.unwrap();
        assert_eq!(f.store.organisation(&acme.id, &org.id).await.unwrap(), Some(org));
    }

    async fn another_tenants_organisation_is_invisible(f: Fixture) {
        let acme = tenant(&*f.store, "Acme").await;
        let other = tenant(&*f.store, "Other").await;
        let org = organisation(&acme, "Harbour Bakery", None);
        f.store.create_organisation(&org).await.unwrap();
        assert_eq!(f.store.organisation(&other.id, &org.id).await.unwrap(), None);
        assert!(f.store.list_organisations(&other.id, None, 50).await.unwrap().is_empty());
        let mut renamed = org.clone();
        renamed.tenant_id = other.id.clone();
        renamed.name = "Stolen".into();
        assert!(!f.store.update_organisation(&renamed).await.unwrap());
        assert!(!f.store.delete_organisation(&other.id, &org.id).await.unwrap());
        assert_eq!(f.store.organisation(&acme.id, &org.id).await.unwrap().unwrap().name, "Harbour Bakery");
    }

    async fn external_ids_are_unique_within_a_tenant_only(f: Fixture) {
        let acme = tenant(&*f.store, "Acme").await;
        let other = tenant(&*f.store, "Other").await;
        f.store.create_organisation(&organisation(&acme, "A", Some("cld-1"))).await.unwrap();
        let err = f.store.create_organisation(&organisation(&acme, "B", Some("cld-1"))).await.unwrap_err();
        assert!(matches!(&err, StoreError::Conflict(m) if m.contains("cld-1")), "{err}");
        f.store.create_organisation(&organisation(&other, "C", Some("cld-1"))).await.unwrap();
        // Organisations without an external id do not collide with each other.
        f.store.create_organisation(&organisation(&acme, "D", None)).await.unwrap();
        f.store.create_organisation(&organisation(&acme, "E", None)).await.unwrap();
        assert_eq!(f.store.list_organisations(&acme.id, None, 50).await.unwrap().len(), 3);
    }

    async fn a_conflicting_update_leaves_the_row_as_it_was(f: Fixture) {
        let acme = tenant(&*f.store, "Acme").await;
        f.store.create_organisation(&organisation(&acme, "A", Some("cld-1"))).await.unwrap();
        let b = organisation(&acme, "B", Some("cld-2"));
        f.store.create_organisation(&b).await.unwrap();
        let mut clash = b.clone();
        clash.external_id = Some("cld-1".into());
        clash.name = "B renamed".into();
        assert!(matches!(f.store.update_organisation(&clash).await, Err(StoreError::Conflict(_))));
        assert_eq!(f.store.organisation(&acme.id, &b.id).await.unwrap(), Some(b));
    }

    async fn pages_of_organisations_cover_every_row_once(f: Fixture) {
        let acme = tenant(&*f.store, "Acme").await;
        let mut ids = Vec::new();
        for i in 0..7 {
            let org = organisation(&acme, &format!("Org {i}"), None);
            f.store.create_organisation(&org).await.unwrap();
            ids.push(org.id);
        }
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = f.store.list_organisations(&acme.id, after.as_deref(), 3).await.unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 3);
            after = page.last().map(|o| o.id.clone());
            seen.extend(page.into_iter().map(|o| o.id));
        }
        ids.sort();
        assert_eq!(seen, ids);
    }

    async fn users_belong_to_one_organisation_and_go_with_it(f: Fixture) {
        let acme = tenant(&*f.store, "Acme").await;
        let org = organisation(&acme, "Harbour Bakery", None);
        f.store.create_organisation(&org).await.unwrap();
        let ana = user(&org, "ana@example.com");
        f.store.add_user(&ana).await.unwrap();
        let dup = f.store.add_user(&user(&org, "ana@example.com")).await.unwrap_err();
        assert!(matches!(&dup, StoreError::Conflict(m) if m.contains("ana@example.com")), "{dup}");
        f.store.add_user(&user(&org, "ben@example.com")).await.unwrap();
        let users = f.store.list_users(&acme.id, &org.id, None, 50).await.unwrap();
        assert_eq!(users.len(), 2);
        assert!(users.contains(&ana));

        assert!(f.store.remove_user(&acme.id, &org.id, &ana.id).await.unwrap());
        assert!(!f.store.remove_user(&acme.id, &org.id, &ana.id).await.unwrap());
        assert!(f.store.delete_organisation(&acme.id, &org.id).await.unwrap());
        assert!(f.store.list_users(&acme.id, &org.id, None, 50).await.unwrap().is_empty());
    }

    async fn settings_keep_their_first_value(f: Fixture) {
        assert_eq!(f.store.setting("k").await.unwrap(), None);
        assert_eq!(f.store.insert_setting_if_absent("k", "first", T0).await.unwrap(), "first");
        assert_eq!(f.store.insert_setting_if_absent("k", "second", T0).await.unwrap(), "first");
        assert_eq!(f.store.setting("k").await.unwrap().as_deref(), Some("first"));
    }


    async fn a_connection_is_created_with_its_first_event_and_filtered_in_lists(f: Fixture) {
        let org = org_of(&*f.store).await;
        let xero = connection(&*f.store, &org, "xero").await;
        let qbo = connection(&*f.store, &org, "quickbooks").await;
        assert_eq!(f.store.connection(&org.tenant_id, &xero.id).await.unwrap(), Some(xero.clone()));
        assert_eq!(f.store.connection("ten_other", &xero.id).await.unwrap(), None);
        let only_qbo = ConnectionFilter { provider: Some("quickbooks".into()), ..Default::default() };
        let listed = f.store.list_connections(&org.tenant_id, &only_qbo, None, 10).await.unwrap();
        assert_eq!(listed, vec![qbo.clone()]);
        let pending = ConnectionFilter { status: Some("pending".into()), organisation_id: Some(org.id.clone()), ..Default::default() };
        assert_eq!(f.store.list_connections(&org.tenant_id, &pending, None, 10).await.unwrap().len(), 2);
        let events = f.store.list_events(&org.tenant_id, &xero.id, None, 10).await.unwrap();
        assert_eq!(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["connection.created"]);
    }

    async fn an_update_stores_tokens_and_events_atomically_and_keeps_the_refresh_token_when_none_is_given(f: Fixture) {
        let org = org_of(&*f.store).await;
        let c = connection(&*f.store, &org, "xero").await;
        let now = at(1_000);
        assert!(f.store.update_connection(&c.id, Guard::Any, &connect(now, at(60_000), "sealed-refresh-1"), &[event(&c, "connection.connected", now)]).await.unwrap());
        let stored = f.store.connection_by_id(&c.id).await.unwrap().unwrap();
        assert_eq!(stored.status, "connected");
        assert_eq!(stored.connected_at, Some(now));
        assert_eq!(stored.status_since, now);
        assert_eq!(stored.token_version, 1);
        assert_eq!(stored.external_account_name.as_deref(), Some("Demo Company"));
        assert_eq!(stored.refresh_token.as_deref(), Some("sealed-refresh-1"));

        let mut without_refresh = connect(at(2_000), at(90_000), "unused");
        without_refresh.tokens.as_mut().unwrap().refresh_token = None;
        without_refresh.external_account = None;
        assert!(f.store.update_connection(&c.id, Guard::Any, &without_refresh, &[]).await.unwrap());
        let stored = f.store.connection_by_id(&c.id).await.unwrap().unwrap();
        assert_eq!(stored.refresh_token.as_deref(), Some("sealed-refresh-1"), "never drop a refresh token");
        assert_eq!(stored.token_version, 2);
        assert_eq!(stored.connected_at, Some(now), "still connected since the first time");
        assert_eq!(stored.external_account_id.as_deref(), Some("tenant-1"));
        let kinds: Vec<String> = f.store.list_events(&org.tenant_id, &c.id, None, 10).await.unwrap().into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["connection.created", "connection.connected"]);
    }

    async fn a_lease_goes_to_one_instance_and_only_its_holder_may_write(f: Fixture) {
        let org = org_of(&*f.store).await;
        let c = connection(&*f.store, &org, "xero").await;
        f.store.update_connection(&c.id, Guard::Any, &connect(T0, at(10_000), "r1"), &[]).await.unwrap();
        let now = at(20_000);
        f.store.heartbeat("hub-a", now).await.unwrap();
        f.store.heartbeat("hub-b", now).await.unwrap();
        let alive_since = at(15_000);
        let lease_until = at(200_000);
        let ids = |v: Vec<Connection>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids(f.store.claim_due("hub-a", now, lease_until, alive_since, 10).await.unwrap()), vec![c.id.clone()]);
        assert!(f.store.claim_due("hub-b", now, lease_until, alive_since, 10).await.unwrap().is_empty());
        assert!(f.store.claim(&c.id, "hub-b", now, lease_until, alive_since).await.unwrap().is_none());
        assert!(!f.store.update_connection(&c.id, Guard::LeaseHeldBy("hub-b"), &connect(now, at(90_000), "r-b"), &[]).await.unwrap());
        assert!(f.store.update_connection(&c.id, Guard::LeaseHeldBy("hub-a"), &connect(now, at(90_000), "r-a"), &[]).await.unwrap());
        let stored = f.store.connection_by_id(&c.id).await.unwrap().unwrap();
        assert_eq!(stored.refresh_token.as_deref(), Some("r-a"));
        assert_eq!(stored.lease_owner, None, "released with the result");
    }

    async fn the_lease_of_an_instance_that_stopped_heartbeating_is_taken_over(f: Fixture) {
        let org = org_of(&*f.store).await;
        let c = connection(&*f.store, &org, "xero").await;
        f.store.update_connection(&c.id, Guard::Any, &connect(T0, at(10_000), "r1"), &[]).await.unwrap();
        f.store.heartbeat("hub-a", at(20_000)).await.unwrap();
        // hub-a claims with a long lease (the provider timeout), then dies.
        assert!(f.store.claim(&c.id, "hub-a", at(20_000), at(200_000), at(15_000)).await.unwrap().is_some());
        f.store.heartbeat("hub-b", at(30_000)).await.unwrap();
        // While hub-a's heartbeat is recent, its lease holds…
        assert!(f.store.claim_due("hub-b", at(22_000), at(202_000), at(17_000), 10).await.unwrap().is_empty());
        // …once it is older than the liveness window, hub-b takes over long before the lease ends.
        let taken = f.store.claim_due("hub-b", at(30_000), at(210_000), at(25_000), 10).await.unwrap();
        assert_eq!(taken.into_iter().map(|c| c.id).collect::<Vec<_>>(), vec![c.id.clone()]);
    }

    async fn a_claim_writes_the_marker_ahead_and_an_older_marker_stands(f: Fixture) {
        let org = org_of(&*f.store).await;
        let c = connection(&*f.store, &org, "xero").await;
        f.store.update_connection(&c.id, Guard::Any, &connect(T0, at(10_000), "r1"), &[]).await.unwrap();
        f.store.heartbeat("hub-a", at(20_000)).await.unwrap();
        let claimed = f.store.claim(&c.id, "hub-a", at(20_000), at(200_000), at(15_000)).await.unwrap().unwrap();
        assert_eq!(claimed.inflight_refresh_token.as_deref(), Some("r1"), "the claim copies the refresh token");
        assert_eq!(claimed.inflight_since, Some(at(20_000)));
        assert_eq!(claimed.lease_owner.as_deref(), Some("hub-a"));
        // The process dies; a restart (SQLite) frees the lease and the marker stays.
        assert_eq!(f.store.release_all_leases().await.unwrap(), 1);
        let stored = f.store.connection_by_id(&c.id).await.unwrap().unwrap();
        assert_eq!((stored.lease_owner, stored.inflight_refresh_token.as_deref()), (None, Some("r1")));
        // The next claim keeps the older marker: its time says the outcome is unknown.
        f.store.heartbeat("hub-b", at(40_000)).await.unwrap();
        let again = f.store.claim_due("hub-b", at(40_000), at(220_000), at(35_000), 10).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].inflight_since, Some(at(20_000)));
        assert_eq!(f.store.next_refresh_due().await.unwrap(), Some(at(10_000)));
    }

    async fn a_batch_of_changes_commits_together_and_reports_each_guard(f: Fixture) {
        let org = org_of(&*f.store).await;
        let a = connection(&*f.store, &org, "xero").await;
        let b = connection(&*f.store, &org, "myob").await;
        for c in [&a, &b] {
            f.store.update_connection(&c.id, Guard::Any, &connect(T0, at(10_000), "r1"), &[]).await.unwrap();
        }
        f.store.heartbeat("hub-a", at(20_000)).await.unwrap();
        assert!(f.store.claim(&a.id, "hub-a", at(20_000), at(200_000), at(15_000)).await.unwrap().is_some());
        let change = connect(at(21_000), at(90_000), "r2");
        let events = [event(&a, "connection.recovered", at(21_000))];
        let batch = [
            ledgerlink_store::PendingChange { id: &a.id, guard: Guard::LeaseHeldBy("hub-a"), change: &change, events: &events },
            // Not leased by hub-a, and its version moved on: refused, and its event not written.
            ledgerlink_store::PendingChange { id: &b.id, guard: Guard::LeaseHeldByOrVersion("hub-a", 0), change: &change, events: &events },
        ];
        assert_eq!(f.store.apply_changes(&batch).await.unwrap(), vec![true, false]);
        assert_eq!(f.store.connection_by_id(&a.id).await.unwrap().unwrap().refresh_token.as_deref(), Some("r2"));
        assert_eq!(f.store.connection_by_id(&b.id).await.unwrap().unwrap().refresh_token.as_deref(), Some("r1"));
        assert!(f.store.list_events(&org.tenant_id, &b.id, None, 10).await.unwrap().iter().all(|e| e.kind != "connection.recovered"));
    }

    async fn imported_connections_keep_every_field(f: Fixture) {
        let org = org_of(&*f.store).await;
        let mut rows = Vec::new();
        for i in 0..3 {
            let mut c = connection(&*f.store, &org, "xero").await;
            f.store.delete_connection(&org.tenant_id, &c.id).await.unwrap();
            c.status = "connected".into();
            c.refresh_token = Some(format!("sealed-{i}"));
            c.next_refresh_at = Some(at(i));
            c.token_version = 7;
            rows.push(c);
        }
        f.store.import_connections(&rows).await.unwrap();
        for row in &rows {
            assert_eq!(f.store.connection_by_id(&row.id).await.unwrap().as_ref(), Some(row));
        }
    }

    async fn an_oauth_state_is_single_use_and_replaces_older_ones(f: Fixture) {
        let org = org_of(&*f.store).await;
        let c = connection(&*f.store, &org, "xero").await;
        let state = |hash: &str| OAuthState {
            state_hash: hash.into(),
            connection_id: c.id.clone(),
            code_verifier: Some("sealed-verifier".into()),
            redirect_uri: "http://hub/oauth/callback".into(),
            expires_at: at(600_000),
            created_at: T0,
        };
        f.store.insert_oauth_state(&state("first")).await.unwrap();
        f.store.insert_oauth_state(&state("second")).await.unwrap();
        assert_eq!(f.store.take_oauth_state("first").await.unwrap(), None, "a reconnect voids the older state");
        assert_eq!(f.store.take_oauth_state("second").await.unwrap(), Some(state("second")));
        assert_eq!(f.store.take_oauth_state("second").await.unwrap(), None, "single use");
    }

    async fn housekeeping_removes_only_expired_states_and_dead_instances(f: Fixture) {
        let org = org_of(&*f.store).await;
        let a = connection(&*f.store, &org, "xero").await;
        let b = connection(&*f.store, &org, "myob").await;
        let state = |c: &Connection, hash: &str, expires_at| OAuthState {
            state_hash: hash.into(),
            connection_id: c.id.clone(),
            code_verifier: None,
            redirect_uri: "http://hub/oauth/callback".into(),
            expires_at,
            created_at: T0,
        };
        f.store.insert_oauth_state(&state(&a, "expired", at(1_000))).await.unwrap();
        f.store.insert_oauth_state(&state(&b, "live", at(9_000))).await.unwrap();
        f.store.heartbeat("dead-hub", at(0)).await.unwrap();
        f.store.heartbeat("live-hub", at(4_000)).await.unwrap();
        assert_eq!(f.store.purge_expired(at(5_000), at(3_000)).await.unwrap(), (1, 1));
        assert_eq!(f.store.take_oauth_state("expired").await.unwrap(), None);
        assert!(f.store.take_oauth_state("live").await.unwrap().is_some());
        // Nothing is left to purge.
        assert_eq!(f.store.purge_expired(at(5_000), at(3_000)).await.unwrap(), (0, 0));
    }

    async fn events_keep_their_order_within_a_millisecond_and_page_by_id(f: Fixture) {
        let org = org_of(&*f.store).await;
        let c = connection(&*f.store, &org, "xero").await;
        let same_ms: Vec<Event> = (0..5).map(|i| event(&c, &format!("e{i}"), at(5))).collect();
        f.store.update_connection(&c.id, Guard::Any, &connect(at(5), at(10_000), "r"), &same_ms).await.unwrap();
        let first = f.store.list_events(&org.tenant_id, &c.id, None, 3).await.unwrap();
        let rest = f.store.list_events(&org.tenant_id, &c.id, Some(&first[2].id), 10).await.unwrap();
        let kinds: Vec<String> = first.into_iter().chain(rest).map(|e| e.kind).collect();
        assert_eq!(kinds, ["connection.created", "e0", "e1", "e2", "e3", "e4"]);
        assert!(f.store.list_events("ten_other", &c.id, None, 10).await.unwrap().is_empty());
    }

    async fn deleting_a_connection_removes_its_timeline_and_states(f: Fixture) {
        let org = org_of(&*f.store).await;
        let c = connection(&*f.store, &org, "xero").await;
        assert!(!f.store.delete_connection("ten_other", &c.id).await.unwrap());
        assert!(f.store.delete_connection(&org.tenant_id, &c.id).await.unwrap());
        assert_eq!(f.store.connection_by_id(&c.id).await.unwrap(), None);
        assert!(f.store.list_events(&org.tenant_id, &c.id, None, 10).await.unwrap().is_empty());
    }

    async fn data_survives_closing_and_reopening_the_store(f: Fixture) {
        let acme = tenant(&*f.store, "Acme").await;
        let org = organisation(&acme, "Harbour Bakery", Some("cld-9"));
        f.store.create_organisation(&org).await.unwrap();
        f.store.close().await;
        let reopened = ledgerlink_store::connect(&f.url, &ConnectOptions::default()).await.unwrap();
        assert_eq!(reopened.organisation(&acme.id, &org.id).await.unwrap(), Some(org));
    }

    async fn each_event_is_dispatched_once_even_when_two_instances_race(f: Fixture) {
        let org = org_of(&*f.store).await;
        let c = connection(&*f.store, &org, "xero").await;
        let created = f.store.list_events(&org.tenant_id, &c.id, None, 1).await.unwrap().remove(0);
        let (a, b) = (event(&c, "connection.a", at(1)), event(&c, "connection.b", at(2)));
        f.store.insert_events(&[a.clone(), b.clone()]).await.unwrap();
        let connected = event(&c, "connection.connected", at(3));
        let change = connect(at(3), at(60_000), "r1");
        let events = [connected.clone()];
        let batch = [PendingChange { id: &c.id, guard: Guard::Any, change: &change, events: &events }];
        assert_eq!(f.store.apply_changes(&batch).await.unwrap(), vec![true]);

        let undispatched = f.store.undispatched_events(10).await.unwrap();
        assert!(undispatched.windows(2).all(|w| w[0].0 < w[1].0), "{undispatched:?}");
        let events: Vec<Event> = undispatched.into_iter().map(|(_, e)| e).collect();
        assert_eq!(events, [created.clone(), a.clone(), b.clone(), connected.clone()]);
        assert_eq!(f.store.undispatched_events(2).await.unwrap().len(), 2);

        let first = subscription(&*f.store, &org.tenant_id, "https://a.example/hook").await;
        let second = subscription(&*f.store, &org.tenant_id, "https://b.example/hook").await;
        let fan_out = |e: &Event, sub: &WebhookSubscription, subject: &str| Dispatch {
            event_id: e.id.clone(),
            deliveries: vec![Delivery::new(
                &sub.id,
                &sub.tenant_id,
                &e.id,
                &e.kind,
                (c.id.as_str(), 1),
                "{}".into(),
                at(10),
            )],
            email: Some(email(&c, &e.id, subject)),
        };
        let on = |sub: &WebhookSubscription| {
            let store = f.store.clone();
            let (tenant_id, sub_id) = (org.tenant_id.clone(), sub.id.clone());
            async move { store.list_deliveries(&tenant_id, &sub_id, None, 10).await.unwrap() }
        };
        let from_a = [fan_out(&created, &first, "from hub-a")];
        assert_eq!(f.store.commit_dispatch(at(10), &from_a).await.unwrap(), [created.id.as_str()]);
        // hub-b read the same event before hub-a marked it: its whole fan-out is dropped.
        let from_b = [fan_out(&created, &second, "from hub-b")];
        assert!(f.store.commit_dispatch(at(11), &from_b).await.unwrap().is_empty());
        assert_eq!(on(&first).await.len(), 1);
        assert!(on(&second).await.is_empty());
        let emails = f.store.emails_of_connection(&org.tenant_id, &c.id).await.unwrap();
        assert_eq!(emails.iter().map(|m| m.subject.as_str()).collect::<Vec<_>>(), ["from hub-a"]);
        // The same event twice in one batch is marked once.
        let twice = [fan_out(&a, &first, "a"), fan_out(&a, &second, "a again")];
        assert_eq!(f.store.commit_dispatch(at(12), &twice).await.unwrap(), [a.id.as_str()]);
        assert!(on(&second).await.is_empty());

        // Two instances commit the same event at the same moment: exactly one fan-out lands.
        let (to_first, to_second) = ([fan_out(&b, &first, "b")], [fan_out(&b, &second, "b")]);
        let (x, y) = tokio::join!(
            f.store.commit_dispatch(at(13), &to_first),
            f.store.commit_dispatch(at(13), &to_second)
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(x.len() + y.len(), 1, "{x:?} {y:?}");
        let winner = if x.is_empty() { &second } else { &first };
        let mut landed = on(&first).await;
        landed.extend(on(&second).await);
        let of_b: Vec<&Delivery> = landed.iter().filter(|d| d.event_id == b.id).collect();
        assert_eq!(of_b.len(), 1);
        assert_eq!(of_b[0].subscription_id, winner.id);

        let unknown = Dispatch { event_id: "evt_unknown".into(), ..Default::default() };
        assert!(f.store.commit_dispatch(at(14), &[unknown]).await.unwrap().is_empty());
        let left = f.store.undispatched_events(10).await.unwrap();
        assert_eq!(left.into_iter().map(|(_, e)| e.id).collect::<Vec<_>>(), [connected.id.as_str()]);
        let nothing = Dispatch { event_id: connected.id.clone(), ..Default::default() };
        assert_eq!(f.store.commit_dispatch(at(15), &[nothing]).await.unwrap(), [connected.id.as_str()]);
        assert!(f.store.undispatched_events(10).await.unwrap().is_empty());
        assert_eq!(f.store.outbox_depth().await.unwrap(), (3, 3));
    }

    async fn deliveries_for_one_connection_go_out_one_at_a_time_in_event_order(f: Fixture) {
        let org = org_of(&*f.store).await;
        let sub = subscription(&*f.store, &org.tenant_id, "https://a.example/hook").await;
        let [d1, d2, d3] = [1, 2, 3].map(|seq| delivery(&sub, "con_a", seq));
        let other = delivery(&sub, "con_b", 7);
        // A key whose head is not due yet: it holds back the rest of its key.
        let mut later = delivery(&sub, "con_c", 4);
        later.next_attempt_at = Some(at(100_000));
        let behind_later = delivery(&sub, "con_c", 5);
        // Enqueued out of order: the sequence number decides, not arrival.
        let all = [d3.clone(), behind_later.clone(), other.clone(), d2.clone(), later.clone(), d1.clone()];
        f.store.enqueue_deliveries(&all).await.unwrap();

        let mut heads = f.store.claim_deliveries("hub-a", at(1_000), at(31_000), 10).await.unwrap();
        heads.sort_by_key(|d| d.event_seq);
        assert_eq!(heads, [d1.clone(), other.clone()], "only the due head of each key");
        // Leased by hub-a: hub-b gets nothing, not even what waits behind the leased heads,
        // and cannot record an attempt.
        assert!(claim_ids(&*f.store, "hub-b", at(2_000), at(32_000)).await.is_empty());
        assert!(!f.store.finish_delivery("hub-b", &d1.id, &attempt(at(2_000), 1, None)).await.unwrap());
        assert!(f.store.finish_delivery("hub-a", &d1.id, &attempt(at(2_000), 1, None)).await.unwrap());
        assert!(f.store.finish_delivery("hub-a", &other.id, &attempt(at(2_000), 1, None)).await.unwrap());
        let late = attempt(at(2_001), 2, None);
        assert!(!f.store.finish_delivery("hub-a", &d1.id, &late).await.unwrap(), "released with the result");
        assert_eq!(claim_ids(&*f.store, "hub-a", at(3_000), at(33_000)).await, [d2.id.as_str()]);

        // d2 gets a 503 and is retried at 60 s: not claimed before, and d3 waits behind it.
        let unavailable = attempt(at(4_000), 1, Some(at(60_000)));
        assert!(f.store.finish_delivery("hub-a", &d2.id, &unavailable).await.unwrap());
        assert!(claim_ids(&*f.store, "hub-a", at(59_999), at(89_999)).await.is_empty());
        assert_eq!(claim_ids(&*f.store, "hub-a", at(60_000), at(90_000)).await, [d2.id.as_str()]);
        // hub-a stalls: its lease holds until 90 s; then hub-b takes over and hub-a's late result is refused.
        assert!(claim_ids(&*f.store, "hub-b", at(90_000), at(120_000)).await.is_empty());
        assert_eq!(claim_ids(&*f.store, "hub-b", at(90_001), at(120_001)).await, [d2.id.as_str()]);
        assert!(!f.store.finish_delivery("hub-a", &d2.id, &attempt(at(90_002), 2, None)).await.unwrap());
        assert!(f.store.finish_delivery("hub-b", &d2.id, &attempt(at(90_003), 2, None)).await.unwrap());
        assert_eq!(claim_ids(&*f.store, "hub-b", at(90_004), at(120_004)).await, [d3.id.as_str()]);
        assert_eq!(claim_ids(&*f.store, "hub-b", at(100_000), at(130_000)).await, [later.id.clone()]);

        let log = f.store.list_deliveries(&org.tenant_id, &sub.id, None, 10).await.unwrap();
        let stored = log.iter().find(|d| d.id == d2.id).unwrap();
        assert_eq!(stored.status, "delivered");
        assert_eq!((stored.attempts, stored.last_status, stored.last_error.as_deref()), (2, Some(200), None));
        assert_eq!((stored.last_attempt_at, stored.delivered_at), (Some(at(90_003)), Some(at(90_003))));
        let pending = log.iter().filter(|d| d.status == "pending").count();
        assert_eq!(pending, 3, "d3, later and the one behind it");
    }

    async fn a_disabled_subscription_gets_nothing_and_disabling_it_again_reports_false(f: Fixture) {
        let org = org_of(&*f.store).await;
        let on = subscription(&*f.store, &org.tenant_id, "https://on.example/hook").await;
        let off = subscription(&*f.store, &org.tenant_id, "https://off.example/hook").await;
        let (to_on, to_off) = (delivery(&on, "con_a", 1), delivery(&off, "con_a", 1));
        f.store.enqueue_deliveries(&[to_on.clone(), to_off.clone()]).await.unwrap();
        assert!(f.store.disable_subscription(&off.id, at(500), "failing for 5 days").await.unwrap());
        assert!(!f.store.disable_subscription(&off.id, at(600), "again").await.unwrap());
        assert!(!f.store.disable_subscription("whs_gone", at(600), "gone").await.unwrap());
        let stored = f.store.subscription(&org.tenant_id, &off.id).await.unwrap().unwrap();
        assert_eq!(stored.disabled_at, Some(at(500)), "the first disable stands");
        assert_eq!(stored.disabled_reason.as_deref(), Some("failing for 5 days"));
        assert_eq!(f.store.active_subscriptions(&org.tenant_id).await.unwrap(), std::slice::from_ref(&on));
        let listed = f.store.list_subscriptions(&org.tenant_id, None, 10).await.unwrap();
        assert_eq!(listed.len(), 2, "still listed");
        assert_eq!(claim_ids(&*f.store, "hub-a", at(1_000), at(31_000)).await, [to_on.id.as_str()]);
        assert!(f.store.finish_delivery("hub-a", &to_on.id, &attempt(at(2_000), 1, None)).await.unwrap());
        assert!(claim_ids(&*f.store, "hub-a", at(40_000), at(70_000)).await.is_empty(), "however late");
    }

    async fn deleting_a_subscription_removes_its_deliveries_and_only_its_tenant_may(f: Fixture) {
        let org = org_of(&*f.store).await;
        let other = tenant(&*f.store, "Other").await;
        let gone = subscription(&*f.store, &org.tenant_id, "https://gone.example/hook").await;
        let kept = subscription(&*f.store, &org.tenant_id, "https://kept.example/hook").await;
        let deliveries =
            [delivery(&gone, "con_a", 1), delivery(&gone, "con_a", 2), delivery(&kept, "con_a", 1)];
        f.store.enqueue_deliveries(&deliveries).await.unwrap();
        assert_eq!(f.store.outbox_depth().await.unwrap(), (3, 0));
        assert!(!f.store.delete_subscription(&other.id, &gone.id).await.unwrap());
        assert_eq!(f.store.list_deliveries(&org.tenant_id, &gone.id, None, 10).await.unwrap().len(), 2);
        assert!(f.store.delete_subscription(&org.tenant_id, &gone.id).await.unwrap());
        assert!(!f.store.delete_subscription(&org.tenant_id, &gone.id).await.unwrap());
        assert_eq!(f.store.subscription(&org.tenant_id, &gone.id).await.unwrap(), None);
        assert!(f.store.list_deliveries(&org.tenant_id, &gone.id, None, 10).await.unwrap().is_empty());
        let left = f.store.list_deliveries(&org.tenant_id, &kept.id, None, 10).await.unwrap();
        assert_eq!(left, [deliveries[2].clone()]);
        assert_eq!(f.store.outbox_depth().await.unwrap(), (1, 0));
    }

    async fn a_delivery_is_enqueued_once_per_event_and_listed_by_id_to_its_tenant_only(f: Fixture) {
        let org = org_of(&*f.store).await;
        let other = tenant(&*f.store, "Other").await;
        let sub = subscription(&*f.store, &org.tenant_id, "https://a.example/hook").await;
        let theirs = subscription(&*f.store, &other.id, "https://other.example/hook").await;
        let first = delivery(&sub, "con_a", 1);
        let mut again = delivery(&sub, "con_a", 1);
        again.event_id = first.event_id.clone();
        again.payload = "{\"second\":true}".into();
        f.store.enqueue_deliveries(std::slice::from_ref(&first)).await.unwrap();
        f.store.enqueue_deliveries(&[again]).await.unwrap();
        let listed = f.store.list_deliveries(&org.tenant_id, &sub.id, None, 10).await.unwrap();
        assert_eq!(listed, std::slice::from_ref(&first), "the first one stands");

        let more: Vec<Delivery> = (2..=5).map(|seq| delivery(&sub, "con_a", seq)).collect();
        f.store.enqueue_deliveries(&more).await.unwrap();
        f.store.enqueue_deliveries(&[delivery(&theirs, "con_z", 1)]).await.unwrap();
        let mut ids: Vec<String> = more.iter().map(|d| d.id.clone()).chain([first.id.clone()]).collect();
        ids.sort();
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = f.store.list_deliveries(&org.tenant_id, &sub.id, after.as_deref(), 2).await.unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 2);
            after = page.last().map(|d| d.id.clone());
            seen.extend(page.into_iter().map(|d| d.id));
        }
        assert_eq!(seen, ids);

        // Another tenant sees neither the subscription nor its log, even knowing their ids.
        assert!(f.store.list_deliveries(&other.id, &sub.id, None, 10).await.unwrap().is_empty());
        assert!(f.store.list_deliveries(&org.tenant_id, &theirs.id, None, 10).await.unwrap().is_empty());
        assert_eq!(f.store.subscription(&other.id, &sub.id).await.unwrap(), None);
        let ours = f.store.list_subscriptions(&org.tenant_id, None, 10).await.unwrap();
        assert_eq!(ours, std::slice::from_ref(&sub));
        assert_eq!(f.store.active_subscriptions(&other.id).await.unwrap(), std::slice::from_ref(&theirs));
    }

    async fn one_email_goes_out_per_incident_under_a_lease(f: Fixture) {
        let org = org_of(&*f.store).await;
        let c = connection(&*f.store, &org, "xero").await;
        let myob = connection(&*f.store, &org, "myob").await;
        let opened = event(&c, "connection.degraded", at(1_000));
        let reminder = event(&c, "connection.still_degraded", at(2_000));
        let elsewhere = event(&myob, "connection.degraded", at(1_000));
        f.store.insert_events(&[opened.clone(), reminder.clone(), elsewhere.clone()]).await.unwrap();
        let dispatch = |e: &Event, m: &OutboxEmail| Dispatch {
            event_id: e.id.clone(),
            deliveries: vec![],
            email: Some(m.clone()),
        };
        let incident = email(&c, &opened.id, "Xero needs reconnecting");
        let myob_email = email(&myob, &elsewhere.id, "MYOB needs reconnecting");
        let batch = [dispatch(&opened, &incident), dispatch(&elsewhere, &myob_email)];
        assert_eq!(f.store.commit_dispatch(at(3_000), &batch).await.unwrap().len(), 2);
        // The reminder belongs to the incident already mailed: its email is ignored.
        let second = dispatch(&reminder, &email(&c, &opened.id, "Still broken"));
        assert_eq!(f.store.commit_dispatch(at(3_000), &[second]).await.unwrap(), [reminder.id.as_str()]);
        let emails = f.store.emails_of_connection(&org.tenant_id, &c.id).await.unwrap();
        assert_eq!(emails, std::slice::from_ref(&incident));
        assert!(f.store.emails_of_connection("ten_other", &c.id).await.unwrap().is_empty());
        assert_eq!(f.store.outbox_depth().await.unwrap(), (0, 2));

        let mut both = vec![incident.id.clone(), myob_email.id.clone()];
        both.sort();
        assert_eq!(claim_email_ids(&*f.store, "hub-a", at(3_000), at(33_000)).await, both);
        assert!(claim_email_ids(&*f.store, "hub-b", at(4_000), at(34_000)).await.is_empty());
        assert!(!f.store.finish_email("hub-b", &incident.id, &mail(at(4_000), 1, None, None)).await.unwrap());
        // The mail server says "try later": retried at 60 s.
        let retry = Some(at(60_000));
        let busy = Some("421 busy");
        assert!(f.store.finish_email("hub-a", &incident.id, &mail(at(4_000), 1, retry, busy)).await.unwrap());
        assert!(f.store.finish_email("hub-a", &myob_email.id, &mail(at(4_000), 1, None, None)).await.unwrap());
        assert_eq!(f.store.outbox_depth().await.unwrap(), (0, 1));
        assert!(claim_email_ids(&*f.store, "hub-a", at(59_999), at(89_999)).await.is_empty());
        assert_eq!(claim_email_ids(&*f.store, "hub-b", at(60_000), at(90_000)).await, [incident.id.as_str()]);
        assert!(claim_email_ids(&*f.store, "hub-a", at(90_000), at(120_000)).await.is_empty(), "hub-b's");
        let taken_over = claim_email_ids(&*f.store, "hub-a", at(90_001), at(120_001)).await;
        assert_eq!(taken_over, [incident.id.as_str()]);
        assert!(!f.store.finish_email("hub-b", &incident.id, &mail(at(90_002), 2, None, None)).await.unwrap());
        assert!(f.store.finish_email("hub-a", &incident.id, &mail(at(90_003), 2, None, None)).await.unwrap());
        let stored = f.store.emails_of_connection(&org.tenant_id, &c.id).await.unwrap().remove(0);
        assert_eq!((stored.status.as_str(), stored.attempts, stored.sent_at), ("sent", 2, Some(at(90_003))));
        assert_eq!(stored.last_error, None);
        assert_eq!(f.store.outbox_depth().await.unwrap(), (0, 0));
        assert_eq!(f.store.emails_of_connection(&org.tenant_id, &myob.id).await.unwrap()[0].status, "sent");
    }

    async fn an_account_linked_by_two_organisations_is_a_duplicate_listed_in_link_order(f: Fixture) {
        let acme = tenant(&*f.store, "Acme").await;
        let bakery = organisation(&acme, "Harbour Bakery", Some("cld-1"));
        let cafe = organisation(&acme, "Café Müller", None);
        let other = tenant(&*f.store, "Other").await;
        let stranger = organisation(&other, "Stranger Ltd", None);
        for org in [&bakery, &cafe, &stranger] {
            f.store.create_organisation(org).await.unwrap();
        }
        let bakery_xero = connection(&*f.store, &bakery, "xero").await;
        let cafe_xero = connection(&*f.store, &cafe, "xero").await;
        let stranger_xero = connection(&*f.store, &stranger, "xero").await;
        // Two connections of one organisation to one account are not a duplicate, and the same
        // account id at another provider is another account.
        let bakery_a = connection(&*f.store, &bakery, "xero").await;
        let bakery_b = connection(&*f.store, &bakery, "xero").await;
        let cafe_myob = connection(&*f.store, &cafe, "myob").await;
        set_status(&*f.store, &stranger_xero, "connected", Some("acct-1"), at(1_000)).await;
        set_status(&*f.store, &cafe_xero, "connected", Some("acct-1"), at(2_000)).await;
        set_status(&*f.store, &bakery_a, "connected", Some("acct-2"), at(3_000)).await;
        set_status(&*f.store, &bakery_b, "connected", Some("acct-2"), at(4_000)).await;
        set_status(&*f.store, &bakery_xero, "connected", Some("acct-1"), at(5_000)).await;
        set_status(&*f.store, &cafe_myob, "connected", Some("acct-2"), at(6_000)).await;
        let ids = |rows: Vec<LinkedConnection>| rows.into_iter().map(|r| r.connection_id).collect::<Vec<_>>();

        let dupes = f.store.duplicates(&acme.id).await.unwrap();
        assert_eq!(ids(dupes.clone()), [cafe_xero.id.clone(), bakery_xero.id.clone()], "in link order");
        let expected = LinkedConnection {
            connection_id: bakery_xero.id.clone(),
            organisation_id: bakery.id.clone(),
            organisation_name: "Harbour Bakery".into(),
            organisation_external_id: Some("cld-1".into()),
            provider: "xero".into(),
            external_account_id: "acct-1".into(),
            external_account_name: Some("Books acct-1".into()),
            status: "connected".into(),
            linked_at: Some(at(5_000)),
        };
        assert_eq!(dupes[1], expected);
        assert!(f.store.duplicates(&other.id).await.unwrap().is_empty(), "only one of its organisations");
        let elsewhere = f.store.linked_elsewhere(&acme.id, "xero", "acct-1", &bakery_xero.id).await.unwrap();
        assert_eq!(ids(elsewhere), [cafe_xero.id.as_str()], "never another tenant's connection");
        let own = f.store.linked_elsewhere(&acme.id, "xero", "acct-2", &bakery_a.id).await.unwrap();
        assert_eq!(ids(own), [bakery_b.id.as_str()]);
        assert!(f.store.linked_elsewhere(&acme.id, "quickbooks", "acct-1", "").await.unwrap().is_empty());

        // A later change without an account keeps the link and its time…
        set_status(&*f.store, &bakery_xero, "degraded", None, at(8_000)).await;
        let stored = f.store.connection_by_id(&bakery_xero.id).await.unwrap().unwrap();
        assert_eq!(stored.external_account_id.as_deref(), Some("acct-1"));
        assert_eq!(stored.linked_at, Some(at(5_000)));
        // …and linking again moves it: the café is now the later link.
        set_status(&*f.store, &cafe_xero, "connected", Some("acct-1"), at(9_000)).await;
        let dupes = f.store.duplicates(&acme.id).await.unwrap();
        assert_eq!(dupes[0].status, "degraded");
        assert_eq!(ids(dupes), [bakery_xero.id.clone(), cafe_xero.id.clone()]);
    }

    async fn a_long_degraded_connection_is_listed_until_a_still_degraded_event_follows(f: Fixture) {
        let org = org_of(&*f.store).await;
        let c = connection(&*f.store, &org, "xero").await;
        let recent = connection(&*f.store, &org, "myob").await;
        let fine = connection(&*f.store, &org, "quickbooks").await;
        set_status(&*f.store, &c, "degraded", None, at(1_000)).await;
        set_status(&*f.store, &recent, "degraded", None, at(50_000)).await;
        set_status(&*f.store, &fine, "connected", None, at(1_000)).await;
        assert_eq!(degraded_ids(&*f.store, at(10_000)).await, [c.id.as_str()]);
        // A reminder from before it degraded, and events of other types since, do not count.
        let before = event(&c, "connection.still_degraded", at(999));
        f.store.insert_events(&[before, event(&c, "connection.degraded", at(1_000))]).await.unwrap();
        assert_eq!(degraded_ids(&*f.store, at(10_000)).await, [c.id.as_str()]);
        f.store.insert_events(&[event(&c, "connection.still_degraded", at(20_000))]).await.unwrap();
        assert!(degraded_ids(&*f.store, at(30_000)).await.is_empty());
        // Staying degraded keeps `status_since`: no second reminder.
        set_status(&*f.store, &c, "degraded", None, at(25_000)).await;
        assert_eq!(f.store.connection_by_id(&c.id).await.unwrap().unwrap().status_since, at(1_000));
        assert!(degraded_ids(&*f.store, at(30_000)).await.is_empty());
        // Recovering and degrading again opens a new incident.
        set_status(&*f.store, &c, "connected", None, at(30_000)).await;
        set_status(&*f.store, &c, "degraded", None, at(40_000)).await;
        assert_eq!(degraded_ids(&*f.store, at(60_000)).await, [c.id.clone(), recent.id.clone()]);
        let first = f.store.degraded_unalerted(at(60_000), 1).await.unwrap();
        assert_eq!(first.into_iter().map(|c| c.id).collect::<Vec<_>>(), [c.id.as_str()]);
    }

    async fn connection_counts_and_outbox_depth_cover_every_tenant(f: Fixture) {
        assert!(f.store.connection_counts().await.unwrap().is_empty());
        assert_eq!(f.store.outbox_depth().await.unwrap(), (0, 0));
        let org = org_of(&*f.store).await;
        let other = tenant(&*f.store, "Other").await;
        let stranger = organisation(&other, "Stranger Ltd", None);
        f.store.create_organisation(&stranger).await.unwrap();
        let a = connection(&*f.store, &org, "xero").await;
        connection(&*f.store, &org, "xero").await;
        let c = connection(&*f.store, &org, "xero").await;
        connection(&*f.store, &org, "myob").await;
        let d = connection(&*f.store, &stranger, "xero").await;
        set_status(&*f.store, &c, "connected", None, at(1)).await;
        set_status(&*f.store, &d, "connected", None, at(1)).await;
        let row = |provider: &str, status: &str, n: i64| (provider.to_string(), status.to_string(), n);
        let expected = [row("myob", "pending", 1), row("xero", "connected", 2), row("xero", "pending", 2)];
        assert_eq!(f.store.connection_counts().await.unwrap(), expected);

        let sub = subscription(&*f.store, &org.tenant_id, "https://a.example/hook").await;
        let theirs = subscription(&*f.store, &other.id, "https://other.example/hook").await;
        let deliveries =
            [delivery(&sub, "con_a", 1), delivery(&sub, "con_b", 1), delivery(&theirs, "con_z", 1)];
        f.store.enqueue_deliveries(&deliveries).await.unwrap();
        let (on_a, on_d) = (event(&a, "connection.degraded", at(2)), event(&d, "connection.degraded", at(2)));
        f.store.insert_events(&[on_a.clone(), on_d.clone()]).await.unwrap();
        let mails = [email(&a, &on_a.id, "A"), email(&d, &on_d.id, "D")];
        let batch: Vec<Dispatch> = [(&on_a, &mails[0]), (&on_d, &mails[1])]
            .into_iter()
            .map(|(e, m)| Dispatch { event_id: e.id.clone(), deliveries: vec![], email: Some(m.clone()) })
            .collect();
        f.store.commit_dispatch(at(3), &batch).await.unwrap();
        assert_eq!(f.store.outbox_depth().await.unwrap(), (3, 2));
        // Leased rows are still waiting; delivered, failed and sent ones are not.
        assert_eq!(claim_ids(&*f.store, "hub-a", at(10), at(30_000)).await.len(), 3);
        assert_eq!(f.store.outbox_depth().await.unwrap(), (3, 2));
        let delivered = attempt(at(11), 1, None);
        assert!(f.store.finish_delivery("hub-a", &deliveries[0].id, &delivered).await.unwrap());
        let gave_up = Attempt { status: "failed".into(), ..attempt(at(11), 9, Some(at(11))) };
        let gave_up = Attempt { next_attempt_at: None, ..gave_up };
        assert!(f.store.finish_delivery("hub-a", &deliveries[1].id, &gave_up).await.unwrap());
        assert_eq!(claim_email_ids(&*f.store, "hub-a", at(12), at(30_000)).await.len(), 2);
        assert!(f.store.finish_email("hub-a", &mails[0].id, &mail(at(13), 1, None, None)).await.unwrap());
        assert_eq!(f.store.outbox_depth().await.unwrap(), (1, 1));
    }
}

#[tokio::test]
async fn a_postgres_that_is_down_fails_with_a_clear_message_after_the_timeout() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = DatabaseUrl::parse(&format!("postgres://hub:s3cret@127.0.0.1:{port}/ledgerlink")).unwrap();
    let options =
        ConnectOptions { connect_timeout: std::time::Duration::from_millis(1500), ..Default::default() };
    let started = std::time::Instant::now();
    let err = ledgerlink_store::connect(&url, &options).await.err().expect("must fail");
    let message = err.to_string();
    assert!(started.elapsed() >= std::time::Duration::from_millis(1000), "it retried for a while");
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}

#[tokio::test]
async fn postgres_urls_may_require_tls() {
    // The throwaway cluster has no TLS: requiring it must fail because the *server* refuses,
    // which proves the client side is built in (production databases usually require TLS).
    let url = format!("{}?sslmode=require", ledgerlink_testkit::postgres_database().await);
    let options =
        ConnectOptions { connect_timeout: std::time::Duration::from_millis(500), ..Default::default() };
    let err = ledgerlink_store::connect(&DatabaseUrl::parse(&url).unwrap(), &options)
        .await
        .err()
        .expect("no TLS here");
    let message = err.to_string();
    assert!(!message.contains("without TLS support"), "{message}");
    assert!(message.to_lowercase().contains("tls") || message.to_lowercase().contains("ssl"), "{message}");
}
