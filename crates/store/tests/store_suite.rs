//! The store test suite. Every test runs against both backends: SQLite in a temporary
//! directory, and PostgreSQL on a throwaway cluster.

use std::sync::Arc;

use ledgerlink_core::{Timestamp, id};
use ledgerlink_store::{ConnectOptions, DatabaseUrl, Organisation, Store, StoreError, Tenant, User};

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
