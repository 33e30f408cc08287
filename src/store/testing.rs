//! Fresh databases for tests, one per test, on both backends.
//!
//! SQLite lives in a temporary folder. PostgreSQL gets a uniquely named
//! database on the server at `ISSUEBRIDGE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped when the test ends.
//! Without a server the PostgreSQL half of a test is skipped, and said so
//! on stderr past the test runner's capture, except under `CI=true`, where
//! a missing server fails the test: CI must prove both.

use sqlx::{Connection, PgConnection};

use crate::config::DatabaseUrl;
use crate::domain::time::now_ms;

use super::{on_pool, NewInstallation, Store, StoreError};

/// Records `uuid` as installed in `org`, without tokens: enough for the
/// worker to apply deliveries addressed to it, which never call Sentry.
pub async fn add_installed(store: &super::Store, uuid: &str, org: &str) -> Result<(), super::StoreError> {
    let parse = |what: &str, e: crate::domain::ids::InvalidId| super::StoreError::Corrupt(format!("{what}: {e}"));
    store
        .upsert_installation(&super::NewInstallation {
            uuid: crate::domain::ids::InstallationUuid::parse(uuid).map_err(|e| parse("installation", e))?,
            org_slug: crate::domain::ids::OrgSlug::parse(org).map_err(|e| parse("organization", e))?,
            org_id: None,
            app_slug: None,
            status: crate::domain::installation::InstallationStatus::Installed,
        })
        .await
}

impl Store {
    /// Records an installation, or refreshes its organization and status if it
    /// is known already. Tokens are not touched here.
    pub async fn upsert_installation(&self, new: &NewInstallation) -> Result<(), StoreError> {
        let now = now_ms();
        let sql = "insert into installation (uuid, org_slug, org_id, app_slug, status, created_at, updated_at)
                   values ($1, $2, $3, $4, $5, $6, $6)
                   on conflict (uuid) do update set
                       org_slug = excluded.org_slug,
                       org_id = coalesce(excluded.org_id, installation.org_id),
                       app_slug = coalesce(excluded.app_slug, installation.app_slug),
                       status = excluded.status,
                       updated_at = excluded.updated_at";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(new.uuid.as_str())
            .bind(new.org_slug.as_str())
            .bind(new.org_id)
            .bind(new.app_slug.as_deref())
            .bind(new.status.as_str())
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }
}

/// A pending `issue.created` webhook delivery keyed and bodied `key`,
/// received now: a row for tests about the inbox, not about its payload.
pub fn pending_delivery(key: &str) -> super::NewDelivery {
    super::NewDelivery {
        received_at_ms: now_ms(),
        source: "webhook",
        request_id: None,
        resource: "issue".into(),
        action: Some("created".into()),
        installation: None,
        dedupe_key: key.into(),
        headers: "{}".into(),
        body: key.as_bytes().to_vec(),
        state: crate::domain::deliveries::DeliveryState::Pending,
    }
}

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub struct TestDatabase {
    pub url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<PostgresDrop>,
}

struct PostgresDrop {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = DatabaseUrl::sqlite_file(&dir.path().join("test.db"));
        Self { url, _dir: Some(dir), postgres: None }
    }

    /// `None` means "skip": no server here and not under CI.
    pub async fn postgres() -> Option<Self> {
        let admin_url = std::env::var("ISSUEBRIDGE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let mut admin = match PgConnection::connect(&admin_url).await {
            Ok(conn) => conn,
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("PostgreSQL at {admin_url} is unreachable and CI=true requires it: {e}")
            }
            Err(e) => {
                report_skip(&admin_url, &e);
                return None;
            }
        };
        let name = format!("issuebridge_test_{}", random_suffix());
        sqlx::query(&format!("create database {name}")).execute(&mut admin).await.expect("create a test database");
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_url).expect("a valid admin URL");
        url.set_path(&name);
        let url = DatabaseUrl::parse(url.as_str()).expect("a postgres URL");
        Some(Self { url, _dir: None, postgres: Some(PostgresDrop { admin_url, name }) })
    }
}

/// Says that a PostgreSQL half is skipped, where people see it: the test
/// runner captures `eprintln!` and shows it only for failing tests, and a
/// skipped half is reported as passed. A write to the stderr handle itself
/// is not captured. The reason once per run, then one line per test (the
/// runner names each test's thread after it).
fn report_skip(admin_url: &str, error: &sqlx::Error) {
    use std::io::Write;
    static EXPLAINED: std::sync::Once = std::sync::Once::new();
    let mut stderr = std::io::stderr().lock();
    EXPLAINED.call_once(|| {
        let _ = writeln!(
            stderr,
            "warning: PostgreSQL at {admin_url} is unreachable ({error}): PostgreSQL halves are skipped and reported \
             as passed (CI=true makes them fail)"
        );
    });
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let _ = writeln!(stderr, "warning: {test}: the PostgreSQL half was skipped");
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(pg) = self.postgres.take() else { return };
        // Drop runs inside the test's runtime, which cannot block on itself:
        // drop the database from a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    if let Ok(mut admin) = PgConnection::connect(&pg.admin_url).await {
                        let _ = sqlx::query(&format!("drop database if exists {} with (force)", pg.name))
                            .execute(&mut admin)
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..12).map(|_| char::from(b'a' + rng.gen_range(0..26))).collect()
}

/// Declares one test per backend from an async function that takes a
/// [`TestDatabase`]:
///
/// ```ignore
/// issuebridge::on_both_stores!(lists_tickets, |db| async move { … });
/// ```
#[macro_export]
macro_rules! on_both_stores {
    ($name:ident, $test:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::store::testing::TestDatabase::sqlite();
                ($test)(db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::store::testing::TestDatabase::postgres().await {
                    ($test)(db).await;
                }
            }
        }
    };
}

/// Words the benchmark's ticket titles are made of: common enough that a
/// search finds many, varied enough that it must narrow.
pub const TITLE_WORDS: [&str; 24] = [
    "TypeError",
    "checkout",
    "payment",
    "timeout",
    "undefined",
    "invoice",
    "cart",
    "null",
    "KeyError",
    "database",
    "connection",
    "reset",
    "slow",
    "query",
    "webhook",
    "render",
    "login",
    "session",
    "upload",
    "image",
    "price",
    "currency",
    "export",
    "report",
];

/// `count` tickets in the installation's default team, numbered from its
/// next number, with titles of three [`TITLE_WORDS`] and a number, inserted
/// a thousand at a time (the search index follows, by its triggers on
/// SQLite, by its index on PostgreSQL). For the benchmark.
pub async fn seed_tickets(store: &super::Store, installation: &str, count: i64) -> Result<(), super::StoreError> {
    use super::TeamChoice;
    store.ensure_default_team(installation).await?;
    let now = now_ms();
    let mut made = 0;
    while made < count {
        let batch = (count - made).min(1000);
        let mut tx = store.begin_apply().await?;
        let (team, first) = super::teams::take_ticket_number(tx.conn(), installation, &TeamChoice::Default)
            .await
            .map_err(|e| super::StoreError::Corrupt(e.to_string()))?;
        let first_number = first.number;
        let key = first.team.to_string();
        // Built in each arm: a query builder is typed by its database.
        super::conn::on_conn!(tx.conn(), |c| {
            let mut sql = sqlx::QueryBuilder::new(
                "insert into ticket (installation_uuid, title, description, status, source, occurrences, created_at,
                                     updated_at, team_id, number, identifier) ",
            );
            sql.push_values(0..batch, |mut row, i| {
                let n = made + i;
                let number = first_number + i;
                let w = |k: i64| TITLE_WORDS[((n * 7 + k * 13) % TITLE_WORDS.len() as i64) as usize];
                row.push_bind(installation.to_owned())
                    .push_bind(format!("{} {} in {} #{n}", w(0), w(1), w(2)))
                    .push_bind("")
                    .push_bind("todo")
                    .push_bind("console")
                    .push_bind(0_i64)
                    .push_bind(now + n)
                    .push_bind(now + n)
                    .push_bind(team)
                    .push_bind(number)
                    .push_bind(format!("{key}-{number}"));
            });
            sql.build().execute(c).await.map(|_| ())
        })?;
        // The team's counter moves past the whole batch.
        let bump = "update team set next_number = next_number + $2 where id = $1";
        super::conn::on_conn!(tx.conn(), |c| sqlx::query(bump)
            .bind(team)
            .bind(batch - 1)
            .execute(c)
            .await
            .map(|_| ()))?;
        tx.commit().await?;
        made += batch;
    }
    Ok(())
}
