//! The store test suite. Every test runs against both backends: SQLite in a temporary
//! directory, and PostgreSQL on a throwaway cluster.

use std::sync::Arc;

use ledgerlink_core::{Timestamp, id};
use ledgerlink_store::{
    ConnectOptions, Connection, ConnectionChange, ConnectionFilter, DatabaseUrl, Event, Guard, OAuthState,
    Organisation, Store, StoreError, Tenant, TokenWrite, User,
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
