//! The store on both backends: every query runs against SQLite in a temp
//! folder and against a real PostgreSQL server.

use issuebridge::config::Backend;
use issuebridge::domain::access::OrgScope;
use issuebridge::domain::deliveries::DeliveryState;
use issuebridge::domain::ids::{InstallationUuid, OrgSlug, SentryIssueId};
use issuebridge::domain::installation::InstallationStatus;
use issuebridge::domain::ticket::TicketStatus;
use issuebridge::on_both_stores;
use issuebridge::store::testing::{pending_delivery as delivery, TestDatabase};
use issuebridge::store::{NewInstallation, NewIssueLink, NewTicket, Store};

const INSTALLATION: &str = "a8e5d37a-1b2c-4d5e-8f90-123456789abc";
/// Two installations the delivery log tells apart.
const ACME_INSTALLATION: &str = "0ac3e000-0000-4000-8000-000000000001";
const OTHER_INSTALLATION: &str = "07be2000-0000-4000-8000-000000000002";

async fn migrated(db: &TestDatabase) -> Store {
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

fn installation() -> NewInstallation {
    NewInstallation {
        uuid: InstallationUuid::parse(INSTALLATION).unwrap(),
        org_slug: OrgSlug::parse("acme").unwrap(),
        org_id: Some(34),
        app_slug: Some("issuebridge".into()),
        status: InstallationStatus::Installed,
    }
}

fn ticket(title: &str, status: TicketStatus) -> NewTicket {
    NewTicket {
        installation: InstallationUuid::parse(INSTALLATION).unwrap(),
        title: title.into(),
        description: String::new(),
        status,
        assignee_email: None,
    }
}

fn link(issue: &str, short: &str) -> NewIssueLink {
    NewIssueLink {
        installation: InstallationUuid::parse(INSTALLATION).unwrap(),
        issue_id: SentryIssueId::parse(issue).unwrap(),
        short_id: Some(short.into()),
        title: None,
        web_url: None,
        project_slug: None,
    }
}

fn migration_files(dialect: &str) -> Vec<String> {
    let dir = format!("{}/migrations/{dialect}", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn both_dialects_have_the_same_migration_versions() {
    assert_eq!(migration_files("sqlite"), migration_files("postgres"));
    assert!(!migration_files("sqlite").is_empty());
}

on_both_stores!(migrations_apply_once_and_readiness_follows, |db: TestDatabase| async move {
    let store = Store::connect(&db.url).await.unwrap();
    assert!(store.applied_migrations().await.unwrap().is_empty());
    assert!(store.readiness().await.is_err());
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.applied_migrations().await.unwrap(), store.known_migrations());
    assert_eq!(store.known_migrations().len(), migration_files("sqlite").len());
    store.readiness().await.unwrap();
    let expected = if db.url.expose().starts_with("sqlite") { Backend::Sqlite } else { Backend::Postgres };
    assert_eq!(store.backend(), expected);
});

on_both_stores!(tickets_list_newest_first_with_their_links, |db: TestDatabase| async move {
    let store = migrated(&db).await;
    store.upsert_installation(&installation()).await.unwrap();
    let first = store.create_ticket(&ticket("first", TicketStatus::Todo)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = store.create_ticket(&ticket("second", TicketStatus::Done)).await.unwrap();
    store.link_issue(second, &link("100", "WEB-1")).await.unwrap();
    store.link_issue(second, &link("101", "WEB-2")).await.unwrap();

    let board = store.list_tickets(&OrgScope::Everything, 10).await.unwrap();
    assert_eq!(board.iter().map(|t| t.id).collect::<Vec<_>>(), vec![second, first]);
    assert_eq!(board[0].status, TicketStatus::Done);
    assert_eq!(board[0].org_slug, "acme");
    assert_eq!(board[0].linked_issues, 2);
    assert_eq!(board[0].sentry_short_id.as_deref(), Some("WEB-1"));
    assert_eq!(board[1].linked_issues, 0);
    assert_eq!(board[1].sentry_short_id, None);
    assert_eq!(store.list_tickets(&OrgScope::Everything, 1).await.unwrap().len(), 1);
});

on_both_stores!(a_sentry_issue_links_to_one_ticket_per_installation, |db: TestDatabase| async move {
    let store = migrated(&db).await;
    store.upsert_installation(&installation()).await.unwrap();
    let a = store.create_ticket(&ticket("a", TicketStatus::Todo)).await.unwrap();
    let b = store.create_ticket(&ticket("b", TicketStatus::Todo)).await.unwrap();
    store.link_issue(a, &link("42", "API-1")).await.unwrap();
    let err = store.link_issue(b, &link("42", "API-1")).await.unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
});

on_both_stores!(tickets_need_a_known_installation, |db: TestDatabase| async move {
    let store = migrated(&db).await;
    // Foreign keys are enforced on SQLite too (they are off by default there).
    assert!(store.create_ticket(&ticket("orphan", TicketStatus::Todo)).await.is_err());
    assert!(store.list_tickets(&OrgScope::Everything, 10).await.unwrap().is_empty());
});

on_both_stores!(installations_upsert_without_duplicates, |db: TestDatabase| async move {
    let store = migrated(&db).await;
    store.upsert_installation(&installation()).await.unwrap();
    let mut again = installation();
    again.status = InstallationStatus::Pending;
    again.org_id = None;
    store.upsert_installation(&again).await.unwrap();
    let listed = store.list_installations(&OrgScope::Everything).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, "pending");
    assert_eq!(listed[0].org_slug, "acme");
    assert_eq!(listed[0].app_slug.as_deref(), Some("issuebridge"));
});

on_both_stores!(demo_tickets_are_seeded_with_their_links, |db: TestDatabase| async move {
    let store = migrated(&db).await;
    store.upsert_installation(&installation()).await.unwrap();
    issuebridge::demo::seed_tickets(&store, &InstallationUuid::parse(INSTALLATION).unwrap()).await.unwrap();
    let board = store.list_tickets(&OrgScope::Everything, 100).await.unwrap();
    assert_eq!(board.len(), 4);
    assert!(board.iter().all(|t| t.linked_issues == 1));
    let installations = store.list_installations(&OrgScope::Everything).await.unwrap();
    assert_eq!(installations.len(), 1);
    assert_eq!(installations[0].tickets, 4);
    assert_eq!(store.count_deliveries().await.unwrap(), 0);
});

#[tokio::test]
async fn sqlite_creates_the_database_folder_with_wal_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let url = issuebridge::config::DatabaseUrl::sqlite_file(&dir.path().join("nested/deeper/ib.db"));
    let store = Store::connect(&url).await.unwrap();
    let Store::Sqlite(pool) = &store else { panic!("a SQLite store") };
    let mode: String = sqlx::query_scalar("pragma journal_mode").fetch_one(pool).await.unwrap();
    assert_eq!(mode, "wal");
    let foreign_keys: i64 = sqlx::query_scalar("pragma foreign_keys").fetch_one(pool).await.unwrap();
    assert_eq!(foreign_keys, 1);
    assert!(dir.path().join("nested/deeper/ib.db").exists());
}

on_both_stores!(a_batch_stores_new_deliveries_once_and_counts_repeats, |db: TestDatabase| async move {
    use issuebridge::store::DeliveryInsert::{Duplicate, Stored};
    let store = migrated(&db).await;
    let first = store.insert_deliveries(&[delivery("a"), delivery("a"), delivery("b")]).await.unwrap();
    let (Stored(a), Duplicate(a_again), Stored(b)) = (first[0], first[1], first[2]) else { panic!("{first:?}") };
    assert_eq!(a, a_again);
    assert_ne!(a, b);
    let second = store.insert_deliveries(&[delivery("b"), delivery("c")]).await.unwrap();
    assert!(matches!(second[..], [Duplicate(id), Stored(_)] if id == b));
    assert_eq!(store.count_deliveries().await.unwrap(), 3);
    assert_eq!(store.delivery(a).await.unwrap().unwrap().duplicate_count, 1);
    assert_eq!(store.delivery(b).await.unwrap().unwrap().duplicate_count, 1);
    assert!(store.insert_deliveries(&[]).await.unwrap().is_empty());
});

on_both_stores!(the_delivery_log_filters_and_pages_by_id, |db: TestDatabase| async move {
    use issuebridge::domain::deliveries::DeliveryFilter;
    use issuebridge::store::DeliveryQuery;
    let store = migrated(&db).await;
    let mut batch = Vec::new();
    for n in 0..7 {
        let mut d = delivery(&format!("key-{n}"));
        d.resource = if n % 2 == 0 { "issue".into() } else { "comment".into() };
        d.action = Some(if n < 4 { "created".into() } else { "resolved".into() });
        let uuid = if n == 6 { OTHER_INSTALLATION } else { ACME_INSTALLATION };
        d.installation = Some(InstallationUuid::parse(uuid).unwrap());
        d.received_at_ms = 1_000_000 + n * 1000;
        batch.push(d);
    }
    store.insert_deliveries(&batch).await.unwrap();
    let all = store
        .recent_deliveries(&DeliveryQuery { scope: OrgScope::Everything, limit: 100, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(all.len(), 7);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");

    let issues = DeliveryQuery {
        filter: DeliveryFilter { resource: Some("issue".into()), ..Default::default() },
        limit: 2,
        scope: OrgScope::Everything,
        ..Default::default()
    };
    let first = store.recent_deliveries(&issues).await.unwrap();
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|d| d.resource == "issue"));
    let next = DeliveryQuery { before_id: Some(first[1].id), ..issues.clone() };
    let second = store.recent_deliveries(&next).await.unwrap();
    assert_eq!(second.len(), 2);
    assert!(second[0].id < first[1].id);
    let dead = DeliveryQuery {
        filter: DeliveryFilter { state: Some(DeliveryState::Dead), ..Default::default() },
        limit: 10,
        scope: OrgScope::Everything,
        ..Default::default()
    };
    assert!(store.recent_deliveries(&dead).await.unwrap().is_empty());

    let matching = |filter: DeliveryFilter| {
        let store = store.clone();
        async move {
            let page = store
                .recent_deliveries(&DeliveryQuery { scope: OrgScope::Everything, filter, limit: 100, before_id: None })
                .await
                .unwrap();
            page.into_iter().map(|d| d.received_at_ms).collect::<Vec<_>>()
        }
    };
    let resolved_issues =
        DeliveryFilter { resource: Some("issue".into()), action: Some("resolved".into()), ..Default::default() };
    assert_eq!(matching(resolved_issues).await, vec![1_006_000, 1_004_000]);
    let other = DeliveryFilter { installation: Some(OTHER_INSTALLATION.into()), ..Default::default() };
    assert_eq!(matching(other).await, vec![1_006_000]);
    let window = DeliveryFilter { from_ms: Some(1_002_000), to_ms: Some(1_004_000), ..Default::default() };
    assert_eq!(matching(window).await, vec![1_003_000, 1_002_000], "from inclusive, to exclusive");
});
