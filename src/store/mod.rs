//! The one store API the rest of the code uses, over SQLite or PostgreSQL.
//!
//! The backend is chosen at run time from `DATABASE_URL`. Both pools are
//! concrete sqlx pools (not `sqlx::Any`), which keeps native types and lets
//! the session store share them. Every query is written once, in SQL that
//! both dialects accept (`$1` placeholders, `bigint` times), and the
//! [`on_pool!`] macro runs that one text against whichever pool is live.

pub mod sync;
pub mod testing;

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::config::{Backend, DatabaseUrl};
use crate::console::{DeliveryAttempt, DeliveryFilter, DeliverySummary, InstallationSummary};
use crate::domain::{InstallationUuid, OrgSlug, SentryIssueId, TicketId};
use crate::ticket::{TicketStatus, TicketSummary};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Runs the same block against either pool. Each arm is type-checked on its
/// own, so one query text serves both dialects with native types.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("the database holds a value this version cannot read: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True when a write failed only because the row exists already.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Query(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

/// Why `/readyz` says no.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("database unreachable: {0}")]
    Unreachable(sqlx::Error),
    #[error("{missing} migration(s) not applied yet")]
    Unmigrated { missing: usize },
}

#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Store {
    /// Opens a pool without touching the schema; [`Store::migrate`] does that.
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, StoreError> {
        let connect_error = |source| StoreError::Connect { url: url.to_string(), source };
        match url.backend() {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url.expose())
                    .map_err(connect_error)?
                    .create_if_missing(true)
                    // WAL lets the console read while the worker writes.
                    // FULL syncs the WAL at every commit, so an acknowledged
                    // delivery survives a power cut, not only a crash; the
                    // inbox's group commit makes that one fsync per batch
                    // rather than per request.
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5))
                    // Checkpoints run in the background (below), never in
                    // the commit that happens to cross the threshold: that
                    // commit's requests would wait for the whole checkpoint.
                    .pragma("wal_autocheckpoint", "0");
                if let Some(parent) = options.get_filename().parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .map_err(|source| StoreError::CreateDir { path: parent.display().to_string(), source })?;
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                spawn_checkpointer(pool.clone());
                Ok(Self::Sqlite(pool))
            }
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(url.expose()).map_err(connect_error)?;
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                Ok(Self::Postgres(pool))
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self {
            Self::Sqlite(_) => &SQLITE_MIGRATIONS,
            Self::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    /// Applies every embedded migration not yet applied. Safe to run from
    /// several instances at once: sqlx takes an advisory lock on PostgreSQL.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool| self.migrator().run(pool).await)?;
        Ok(())
    }

    /// The versions this binary knows, in order.
    pub fn known_migrations(&self) -> Vec<i64> {
        self.migrator().iter().map(|m| m.version).collect()
    }

    /// The versions the database has applied successfully.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let exists = self.migration_table_exists().await?;
        if !exists {
            return Ok(Vec::new());
        }
        let sql = "select version from _sqlx_migrations where success = true order by version";
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql).fetch_all(pool).await)?)
    }

    async fn migration_table_exists(&self) -> Result<bool, StoreError> {
        let count: i64 = match self {
            Self::Sqlite(pool) => {
                sqlx::query_scalar("select count(*) from sqlite_master where type = 'table' and name = '_sqlx_migrations'")
                    .fetch_one(pool)
                    .await?
            }
            Self::Postgres(pool) => {
                sqlx::query_scalar("select count(*) from information_schema.tables where table_schema = current_schema() and table_name = '_sqlx_migrations'")
                    .fetch_one(pool)
                    .await?
            }
        };
        Ok(count > 0)
    }

    /// Reachable and at the schema this binary expects.
    pub async fn readiness(&self) -> Result<(), NotReady> {
        on_pool!(self, |pool| sqlx::query_scalar::<_, i32>("select 1").fetch_one(pool).await)
            .map_err(NotReady::Unreachable)?;
        let applied = match self.applied_migrations().await {
            Ok(applied) => applied,
            Err(StoreError::Query(e)) => return Err(NotReady::Unreachable(e)),
            Err(_) => Vec::new(),
        };
        let missing = self.known_migrations().iter().filter(|v| !applied.contains(v)).count();
        if missing > 0 {
            return Err(NotReady::Unmigrated { missing });
        }
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }

    // ----- installations -----

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
            .bind(&new.status)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// Records a verified installation and its (sealed) tokens in one
    /// statement, so an installation is never stored without them.
    pub async fn install_with_tokens(&self, new: &NewInstallation, tokens: &SealedTokens) -> Result<(), StoreError> {
        let now = now_ms();
        let sql = "insert into installation (uuid, org_slug, org_id, app_slug, status, access_token, refresh_token, token_expires_at, created_at, updated_at)
                   values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
                   on conflict (uuid) do update set
                       org_slug = excluded.org_slug,
                       org_id = coalesce(excluded.org_id, installation.org_id),
                       app_slug = coalesce(excluded.app_slug, installation.app_slug),
                       status = excluded.status,
                       access_token = excluded.access_token,
                       refresh_token = excluded.refresh_token,
                       token_expires_at = excluded.token_expires_at,
                       updated_at = excluded.updated_at";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(new.uuid.as_str())
            .bind(new.org_slug.as_str())
            .bind(new.org_id)
            .bind(new.app_slug.as_deref())
            .bind(&new.status)
            .bind(&tokens.access_token)
            .bind(&tokens.refresh_token)
            .bind(tokens.expires_at_ms)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// Internal integration mode: the installation and its long-lived token
    /// come from configuration; there is no refresh token and no expiry.
    pub async fn install_internal(&self, new: &NewInstallation, sealed_token: &[u8]) -> Result<(), StoreError> {
        let sql = "insert into installation (uuid, org_slug, app_slug, status, access_token, created_at, updated_at)
                   values ($1, $2, $3, 'installed', $4, $5, $5)
                   on conflict (uuid) do update set
                       org_slug = excluded.org_slug,
                       app_slug = excluded.app_slug,
                       status = 'installed',
                       access_token = excluded.access_token,
                       refresh_token = null,
                       token_expires_at = null,
                       updated_at = excluded.updated_at";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(new.uuid.as_str())
            .bind(new.org_slug.as_str())
            .bind(new.app_slug.as_deref())
            .bind(sealed_token)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    pub async fn installation(&self, uuid: &InstallationUuid) -> Result<Option<InstallationRecord>, StoreError> {
        let sql = "select uuid, org_slug, app_slug, status, access_token, refresh_token, token_expires_at
                   from installation where uuid = $1";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, InstallationRecord>(sql)
            .bind(uuid.as_str())
            .fetch_optional(pool)
            .await)?)
    }

    /// Reads an installation's record for a token change; the change is
    /// applied by [`InstallationForUpdate::finish`]. On PostgreSQL the row
    /// stays locked (`for update`) until then, so instances sharing the
    /// database refresh a token once between them; dropping the guard
    /// without finishing rolls back. SQLite serves a single instance, whose
    /// per-installation lock already serialises this; holding SQLite's write
    /// lock across a call to Sentry would stall every other writer.
    pub async fn installation_for_update(&self, uuid: &InstallationUuid) -> Result<InstallationForUpdate, StoreError> {
        const SELECT: &str = "select uuid, org_slug, app_slug, status, access_token, refresh_token, token_expires_at
                              from installation where uuid = $1";
        match self {
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let record = sqlx::query_as::<_, InstallationRecord>(&format!("{SELECT} for update"))
                    .bind(uuid.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                Ok(InstallationForUpdate { record, uuid: uuid.clone(), guard: UpdateGuard::Postgres(tx) })
            }
            Self::Sqlite(pool) => {
                let record =
                    sqlx::query_as::<_, InstallationRecord>(SELECT).bind(uuid.as_str()).fetch_optional(pool).await?;
                Ok(InstallationForUpdate { record, uuid: uuid.clone(), guard: UpdateGuard::Sqlite(pool.clone()) })
            }
        }
    }

    /// The uninstall policy: the tokens go at once, the links between
    /// tickets and the organization's Sentry issues go too (they point at
    /// issues we can no longer reach), and the tickets stay, with their
    /// comments, as the team's record. The installation row is kept, marked
    /// `deleted`, so the tickets keep their organization. Returns whether
    /// the installation was known.
    pub async fn uninstall(&self, uuid: &InstallationUuid) -> Result<bool, StoreError> {
        let now = now_ms();
        let known = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("delete from ticket_link where installation_uuid = $1")
                .bind(uuid.as_str())
                .execute(&mut *tx)
                .await?;
            let updated = sqlx::query(
                "update installation set status = 'deleted', access_token = null, refresh_token = null,
                        token_expires_at = null, updated_at = $2
                 where uuid = $1",
            )
            .bind(uuid.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok::<_, sqlx::Error>(updated > 0)
        })?;
        Ok(known)
    }

    pub async fn list_installations(&self) -> Result<Vec<InstallationSummary>, StoreError> {
        let sql = "select i.uuid, i.org_slug, i.app_slug, i.status, i.created_at,
                          (select count(*) from ticket t where t.installation_uuid = i.uuid) as tickets
                   from installation i
                   order by i.org_slug, i.uuid";
        let rows = on_pool!(self, |pool| sqlx::query_as::<_, InstallationRow>(sql).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn count_installations(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, i64>("select count(*) from installation")
            .fetch_one(pool)
            .await)?)
    }

    // ----- tickets -----

    pub async fn create_ticket(&self, new: &NewTicket) -> Result<TicketId, StoreError> {
        let now = now_ms();
        let sql =
            "insert into ticket (installation_uuid, title, description, status, assignee_email, created_at, updated_at)
                   values ($1, $2, $3, $4, $5, $6, $6)
                   returning id";
        let id = on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql)
            .bind(new.installation.as_str())
            .bind(&new.title)
            .bind(&new.description)
            .bind(new.status.as_str())
            .bind(new.assignee_email.as_deref())
            .bind(now)
            .fetch_one(pool)
            .await)?;
        Ok(TicketId(id))
    }

    /// Links a Sentry issue to a ticket. A Sentry issue belongs to one ticket
    /// per installation: linking it again is refused as a unique violation.
    pub async fn link_issue(&self, ticket: TicketId, link: &NewIssueLink) -> Result<(), StoreError> {
        let sql = "insert into ticket_link (installation_uuid, sentry_issue_id, ticket_id, short_id, title, web_url, project_slug, created_at)
                   values ($1, $2, $3, $4, $5, $6, $7, $8)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(link.installation.as_str())
            .bind(link.issue_id.as_str())
            .bind(ticket.0)
            .bind(link.short_id.as_deref())
            .bind(link.title.as_deref())
            .bind(link.web_url.as_deref())
            .bind(link.project_slug.as_deref())
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// The board: most recently changed first.
    pub async fn list_tickets(&self, limit: i64) -> Result<Vec<TicketSummary>, StoreError> {
        let sql =
            "select t.id, t.title, t.status, t.assignee_email, i.org_slug, t.updated_at, t.occurrences, t.severity,
                          (select l.short_id from ticket_link l where l.ticket_id = t.id
                           order by l.created_at, l.sentry_issue_id limit 1) as sentry_short_id,
                          (select count(*) from ticket_link l where l.ticket_id = t.id) as linked_issues
                   from ticket t
                   join installation i on i.uuid = t.installation_uuid
                   order by t.updated_at desc, t.id desc
                   limit $1";
        let rows = on_pool!(self, |pool| sqlx::query_as::<_, TicketRow>(sql).bind(limit).fetch_all(pool).await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Replaces an installation's settings.
    pub async fn set_installation_settings(
        &self,
        uuid: &InstallationUuid,
        settings: &crate::sync::InstallationSettings,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(settings).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sql = "update installation set settings = $2, updated_at = $3 where uuid = $1";
        let changed = on_pool!(self, |pool| sqlx::query(sql)
            .bind(uuid.as_str())
            .bind(&json)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(changed == 1)
    }

    /// An installation's settings; the defaults for one not known.
    pub async fn installation_settings(
        &self,
        uuid: &InstallationUuid,
    ) -> Result<crate::sync::InstallationSettings, StoreError> {
        let sql = "select settings from installation where uuid = $1";
        let text =
            on_pool!(self, |pool| sqlx::query_scalar::<_, String>(sql).bind(uuid.as_str()).fetch_optional(pool).await)?;
        Ok(text.map(|t| crate::sync::InstallationSettings::from_json(&t)).unwrap_or_default())
    }

    /// A comment written in issuebridge, not yet known to Sentry.
    pub async fn add_console_comment(&self, ticket: TicketId, author: &str, body: &str) -> Result<i64, StoreError> {
        let sql = "insert into comment (ticket_id, origin, author, body, created_at, updated_at)
                   values ($1, 'console', $2, $3, $4, $4) returning id";
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql)
            .bind(ticket.0)
            .bind(author)
            .bind(body)
            .bind(now_ms())
            .fetch_one(pool)
            .await)?)
    }

    /// Records the id Sentry gave a comment we posted, unless its echo came
    /// back first and recorded it already.
    pub async fn set_comment_sentry_id(&self, comment: i64, sentry_id: &str) -> Result<(), StoreError> {
        let sql = "update comment set sentry_comment_id = $2 where id = $1 and sentry_comment_id is null";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(comment)
            .bind(sentry_id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// A ticket's comments, oldest first, deleted ones included (marked).
    pub async fn ticket_comments(&self, ticket: TicketId) -> Result<Vec<CommentRecord>, StoreError> {
        let sql = "select id, sentry_comment_id, origin, author, body, created_at, deleted_at
                   from comment where ticket_id = $1 order by created_at, id";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, CommentRecord>(sql).bind(ticket.0).fetch_all(pool).await)?)
    }

    /// The first Sentry issue linked to a ticket, with its organization.
    pub async fn first_link(&self, ticket: TicketId) -> Result<Option<LinkedIssue>, StoreError> {
        let sql = "select l.installation_uuid, i.org_slug, l.sentry_issue_id
                   from ticket_link l join installation i on i.uuid = l.installation_uuid
                   where l.ticket_id = $1 order by l.created_at, l.sentry_issue_id limit 1";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, LinkedIssue>(sql).bind(ticket.0).fetch_optional(pool).await)?)
    }

    /// One ticket as the sync left it.
    pub async fn ticket_record(&self, ticket: TicketId) -> Result<Option<TicketRecord>, StoreError> {
        let sql = "select id, installation_uuid, title, description, status, assignee_email, source, metric_alert_id,
                          severity, occurrences
                   from ticket where id = $1";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, TicketRecord>(sql).bind(ticket.0).fetch_optional(pool).await)?)
    }

    /// The ticket a Sentry issue is linked to, in an installation.
    pub async fn ticket_for_issue(&self, installation: &str, issue: &str) -> Result<Option<TicketId>, StoreError> {
        let sql = "select ticket_id from ticket_link where installation_uuid = $1 and sentry_issue_id = $2";
        let id = on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql)
            .bind(installation)
            .bind(issue)
            .fetch_optional(pool)
            .await)?;
        Ok(id.map(TicketId))
    }

    /// A Sentry issue as the sync recorded it.
    pub async fn sentry_issue(&self, installation: &str, issue: &str) -> Result<Option<SentryIssueRecord>, StoreError> {
        let sql = "select issue_id, short_id, title, status, assignee, event_count
                   from sentry_issue where installation_uuid = $1 and issue_id = $2";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, SentryIssueRecord>(sql)
            .bind(installation)
            .bind(issue)
            .fetch_optional(pool)
            .await)?)
    }

    /// Writes deliveries in one transaction. A delivery whose dedupe key is
    /// stored already is not written again; the stored one counts it.
    pub async fn insert_deliveries(&self, deliveries: &[NewDelivery]) -> Result<Vec<DeliveryInsert>, StoreError> {
        const DUPLICATE: &str = "update delivery set duplicate_count = duplicate_count + 1, last_duplicate_at = $2
                                 where dedupe_key = $1
                                 returning id";
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let _turn = self.write_turn().await;
        let outcomes = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // One statement for the whole batch: the rows whose key is new
            // come back with their ids; the others are duplicates.
            let mut insert = sqlx::QueryBuilder::new(
                "insert into delivery (received_at, source, request_id, resource, action, installation_uuid,
                                       dedupe_key, headers, body, state) ",
            );
            insert.push_values(deliveries, |mut row, d| {
                row.push_bind(d.received_at_ms)
                    .push_bind(d.source)
                    .push_bind(d.request_id.as_deref())
                    .push_bind(d.resource.as_str())
                    .push_bind(d.action.as_deref())
                    .push_bind(d.installation.as_deref())
                    .push_bind(d.dedupe_key.as_str())
                    .push_bind(d.headers.as_str())
                    .push_bind(d.body.as_slice())
                    .push_bind(d.state);
            });
            insert.push(" on conflict (dedupe_key) do nothing returning id, dedupe_key");
            let stored: Vec<(i64, String)> = insert.build_query_as().fetch_all(&mut *tx).await?;
            let mut new_ids: std::collections::HashMap<String, i64> =
                stored.into_iter().map(|(id, key)| (key, id)).collect();
            let mut outcomes = Vec::with_capacity(deliveries.len());
            for d in deliveries {
                // The first occurrence of a new key is the stored one.
                let outcome = match new_ids.remove(&d.dedupe_key) {
                    Some(id) => DeliveryInsert::Stored(id),
                    None => {
                        let id: i64 = sqlx::query_scalar(DUPLICATE)
                            .bind(&d.dedupe_key)
                            .bind(d.received_at_ms)
                            .fetch_one(&mut *tx)
                            .await?;
                        DeliveryInsert::Duplicate(id)
                    }
                };
                outcomes.push(outcome);
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(outcomes)
        })?;
        Ok(outcomes)
    }

    /// Claims up to `limit` deliveries that are due, for `lease_ms`: a
    /// worker that dies mid-way leaves them to be claimed again when the
    /// lease runs out. On PostgreSQL, instances skip each other's claims
    /// (`for update skip locked`), so each delivery is processed by one of
    /// them.
    pub async fn claim_deliveries(&self, limit: i64, lease_ms: i64) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let now = now_ms();
        let lock = match self {
            Self::Postgres(_) => " for update skip locked",
            Self::Sqlite(_) => "",
        };
        // Two small index walks, new deliveries by (state, id) and due
        // retries and lapsed claims by (state, next_attempt_at), so a claim
        // costs the same with a backlog of a hundred thousand as with none.
        let sql = format!(
            "update delivery set state = 'processing', attempts = attempts + 1, next_attempt_at = $1
             where id in (
                 select id from (select id from delivery where state = 'pending'
                                 order by id limit $3{lock}) as fresh
                 union all
                 select id from (select id from delivery
                                 where state in ('retry', 'processing') and next_attempt_at <= $2
                                 order by id limit $3{lock}) as due
                 order by id
                 limit $3)
             returning id, received_at, resource, action, installation_uuid, headers, body, attempts"
        );
        let _turn = self.write_turn().await;
        let mut claimed = on_pool!(self, |pool| sqlx::query_as::<_, ClaimedDelivery>(&sql)
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        claimed.sort_by_key(|d| d.id);
        Ok(claimed)
    }

    /// Frees the claims a dead run of this server left behind. Only SQLite:
    /// it serves one instance, so a claim found at start-up cannot belong to
    /// a live worker. On PostgreSQL other instances may hold claims; theirs
    /// run out with their lease. Returns how many were freed.
    pub async fn release_orphaned_claims(&self) -> Result<u64, StoreError> {
        let Self::Sqlite(pool) = self else { return Ok(0) };
        let _turn = self.write_turn().await;
        let sql = "update delivery set state = 'retry', next_attempt_at = 0 where state = 'processing'";
        Ok(sqlx::query(sql).execute(pool).await?.rows_affected())
    }

    /// Records how processing a claimed delivery went (for deliveries
    /// applied outside a [`sync::SyncTx`]).
    pub async fn finish_delivery(
        &self,
        delivery: &ClaimedDelivery,
        outcome: &DeliveryOutcome,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_sync().await?;
        let finished = sync::FinishedDelivery { id: delivery.id, attempt: delivery.attempts, outcome, note: None };
        tx.finish_deliveries(&[finished]).await?;
        tx.commit().await
    }

    /// Puts deliveries back in the queue so the worker applies them again
    /// (handlers are idempotent). Deliveries that cannot be processed (not
    /// JSON) or are being processed are left as they are. Returns how many
    /// were requeued.
    ///
    /// A range is requeued a few thousand ids at a time, each in its own
    /// short write, so the inbox is never held up for long.
    pub async fn requeue_deliveries(&self, which: &Replay) -> Result<u64, StoreError> {
        const CHUNK: i64 = 5_000;
        // The console's replayable states, and `pending` (already queued:
        // resetting its attempts is harmless).
        let states: Vec<String> =
            crate::console::REPLAYABLE_STATES.iter().chain(&["pending"]).map(|state| format!("'{state}'")).collect();
        let base = format!(
            "update delivery set state = 'pending', attempts = 0, next_attempt_at = null, last_error = null
             where state in ({})",
            states.join(", ")
        );
        let (condition, from, to) = match which {
            Replay::One(id) => ("id = $1 and $2 = $2", *id, 0),
            Replay::Between { from_ms, to_ms } => ("received_at >= $1 and received_at < $2", *from_ms, *to_ms),
            Replay::Dead => ("state = 'dead' and $1 = $1 and $2 = $2", 0, 0),
        };
        let (low, high) = match which {
            Replay::One(id) => (Some(*id), Some(*id)),
            _ => {
                let bounds = format!("select min(id), max(id) from delivery where {condition}");
                on_pool!(self, |pool| sqlx::query_as::<_, (Option<i64>, Option<i64>)>(&bounds)
                    .bind(from)
                    .bind(to)
                    .fetch_one(pool)
                    .await)?
            }
        };
        let (Some(low), Some(high)) = (low, high) else { return Ok(0) };
        let chunk = format!("{base} and {condition} and id >= $3 and id < $4");
        let mut count = 0;
        let mut start = low;
        while start <= high {
            let _turn = self.write_turn().await;
            count += on_pool!(self, |pool| sqlx::query(&chunk)
                .bind(from)
                .bind(to)
                .bind(start)
                .bind(start + CHUNK)
                .execute(pool)
                .await
                .map(|done| done.rows_affected()))?;
            start += CHUNK;
        }
        Ok(count)
    }

    pub async fn add_service_hook(&self, hook: &NewServiceHook) -> Result<(), StoreError> {
        let sql = "insert into service_hook (id, installation_uuid, project_slug, url, events, secret, created_at)
                   values ($1, $2, $3, $4, $5, $6, $7)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(&hook.id)
            .bind(hook.installation.as_str())
            .bind(&hook.project_slug)
            .bind(&hook.url)
            .bind(&hook.events)
            .bind(hook.sealed_secret.as_slice())
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// The hook that sends `guid`, and the hooks that have not said their
    /// guid yet (one of them may be it).
    pub async fn service_hook_candidates(&self, guid: &str) -> Result<Vec<ServiceHookRecord>, StoreError> {
        let sql = "select id, installation_uuid, project_slug, secret, guid from service_hook
                   where guid = $1 or guid is null
                   order by guid is null, created_at";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, ServiceHookRecord>(sql).bind(guid).fetch_all(pool).await)?)
    }

    pub async fn set_service_hook_guid(&self, id: &str, guid: &str) -> Result<(), StoreError> {
        let sql = "update service_hook set guid = $2 where id = $1 and guid is null";
        on_pool!(self, |pool| sqlx::query(sql).bind(id).bind(guid).execute(pool).await.map(|d| d.rows_affected()))?;
        Ok(())
    }

    pub async fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>, StoreError> {
        let sql = "select id, received_at, source, resource, action, installation_uuid, request_id, headers, body,
                          state, duplicate_count, attempts, last_error, note, processed_at
                   from delivery where id = $1";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, DeliveryRecord>(sql).bind(id).fetch_optional(pool).await)?)
    }

    /// The newest deliveries first, filtered.
    ///
    /// Paged by id (keyset), not by offset, so a page deep in a million rows
    /// costs what the first one does. The SQL names only the filters that
    /// are set, so each combination gets its own plan and index (a generic
    /// `$1 is null or …` plan could use none of them).
    pub async fn recent_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<DeliverySummary>, StoreError> {
        let filter = &query.filter;
        let rows = on_pool!(self, |pool| {
            let mut sql = sqlx::QueryBuilder::new(
                "select id, received_at, resource, action, installation_uuid, state, attempts, duplicate_count,
                        last_error, note
                 from delivery where 1 = 1",
            );
            if let Some(resource) = &filter.resource {
                sql.push(" and resource = ").push_bind(resource.as_str());
            }
            if let Some(action) = &filter.action {
                sql.push(" and action = ").push_bind(action.as_str());
            }
            if let Some(state) = &filter.state {
                sql.push(" and state = ").push_bind(state.as_str());
            }
            if let Some(installation) = &filter.installation {
                sql.push(" and installation_uuid = ").push_bind(installation.as_str());
            }
            if let Some(from) = filter.from_ms {
                sql.push(" and received_at >= ").push_bind(from);
            }
            if let Some(to) = filter.to_ms {
                sql.push(" and received_at < ").push_bind(to);
            }
            if let Some(before) = query.before_id {
                sql.push(" and id < ").push_bind(before);
            }
            sql.push(" order by id desc limit ").push_bind(query.limit);
            sql.build_query_as::<DeliveryRow>().fetch_all(pool).await
        })?;
        Ok(rows
            .into_iter()
            .map(|r| DeliverySummary {
                id: r.id,
                received_at_ms: r.received_at,
                resource: r.resource,
                action: r.action,
                installation: r.installation_uuid,
                state: r.state,
                attempts: r.attempts,
                duplicates: r.duplicate_count,
                last_error: r.last_error,
                note: r.note,
            })
            .collect())
    }

    /// Every processing attempt of a delivery, oldest first.
    pub async fn delivery_attempts(&self, id: i64) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let sql =
            "select attempt, finished_at, outcome, error from delivery_attempt where delivery_id = $1 order by id";
        let rows = on_pool!(self, |pool| sqlx::query_as::<_, (i64, i64, String, Option<String>)>(sql)
            .bind(id)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(attempt, finished_at_ms, outcome, error)| DeliveryAttempt {
                attempt,
                finished_at_ms,
                outcome,
                error,
            })
            .collect())
    }

    /// Whether a delivery with this dedupe key is stored.
    pub async fn has_delivery(&self, dedupe_key: &str) -> Result<bool, StoreError> {
        let sql = "select count(*) from delivery where dedupe_key = $1";
        let count = on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql).bind(dedupe_key).fetch_one(pool).await)?;
        Ok(count > 0)
    }

    pub async fn count_deliveries(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, i64>("select count(*) from delivery").fetch_one(pool).await)?)
    }
}

/// A delivery as received, before anything is done with it.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub received_at_ms: i64,
    /// `webhook` or `service_hook`.
    pub source: &'static str,
    pub request_id: Option<String>,
    pub resource: String,
    pub action: Option<String>,
    /// Kept as sent, even for installations not known (yet).
    pub installation: Option<String>,
    pub dedupe_key: String,
    /// The headers that matter, as a JSON object; never a secret.
    pub headers: String,
    /// The raw bytes exactly as signed.
    pub body: Vec<u8>,
    /// `pending`, `ignored` (a resource we do not handle) or `invalid`
    /// (not JSON).
    pub state: &'static str,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    received_at: i64,
    resource: String,
    action: Option<String>,
    installation_uuid: Option<String>,
    state: String,
    attempts: i64,
    duplicate_count: i64,
    last_error: Option<String>,
    note: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub received_at: i64,
    pub resource: String,
    pub action: Option<String>,
    pub installation_uuid: Option<String>,
    /// The kept headers, a JSON object.
    pub headers: String,
    pub body: Vec<u8>,
    /// Including this one.
    pub attempts: i64,
}

#[derive(Debug, Clone)]
pub struct NewServiceHook {
    /// Sentry's id for the hook.
    pub id: String,
    pub installation: InstallationUuid,
    pub project_slug: String,
    pub url: String,
    /// JSON list of the subscribed events.
    pub events: String,
    pub sealed_secret: Vec<u8>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServiceHookRecord {
    pub id: String,
    pub installation_uuid: String,
    pub project_slug: String,
    pub secret: Vec<u8>,
    pub guid: Option<String>,
}

/// A page of the delivery log: optional filters, and the id to continue
/// below.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryQuery {
    pub filter: DeliveryFilter,
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Which deliveries to process again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    One(i64),
    /// Received in `[from_ms, to_ms)`.
    Between {
        from_ms: i64,
        to_ms: i64,
    },
    /// Every delivery parked as dead.
    Dead,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Processed,
    Retry {
        after_ms: i64,
        error: String,
    },
    /// Given up: retrying cannot help, or the attempts ran out.
    Dead {
        error: String,
    },
    /// Nothing to do: an action we do not handle, or an installation that
    /// was uninstalled. Kept, like every delivery.
    Ignored,
}

impl DeliveryOutcome {
    /// The delivery's state, next attempt, error and processing time.
    pub(crate) fn columns(&self, now: i64) -> (&'static str, Option<i64>, Option<&str>, Option<i64>) {
        match self {
            Self::Processed => ("processed", None, None, Some(now)),
            Self::Ignored => ("ignored", None, None, Some(now)),
            Self::Retry { after_ms, error } => ("retry", Some(now + after_ms), Some(error.as_str()), None),
            Self::Dead { error } => ("dead", None, Some(error.as_str()), None),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryInsert {
    Stored(i64),
    /// The same delivery was stored before (a retry); its id.
    Duplicate(i64),
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRecord {
    pub id: i64,
    pub received_at: i64,
    pub source: String,
    pub resource: String,
    pub action: Option<String>,
    pub installation_uuid: Option<String>,
    pub request_id: Option<String>,
    pub headers: String,
    pub body: Vec<u8>,
    pub state: String,
    pub duplicate_count: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub note: Option<String>,
    pub processed_at: Option<i64>,
}

/// What a token refresh leaves behind.
#[derive(Debug, Clone)]
pub enum TokenWrite {
    Keep,
    Replace(SealedTokens),
    /// The tokens are dead and cannot be renewed: drop them and wait for a
    /// person to re-authorize.
    NeedsReauth,
}

/// An installation read for a token change; see
/// [`Store::installation_for_update`].
pub struct InstallationForUpdate {
    pub record: Option<InstallationRecord>,
    uuid: InstallationUuid,
    guard: UpdateGuard,
}

enum UpdateGuard {
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(SqlitePool),
}

impl InstallationForUpdate {
    /// Applies `write` and releases the row.
    pub async fn finish(self, write: &TokenWrite) -> Result<(), StoreError> {
        const UPDATE: &str = "update installation set access_token = $2, refresh_token = $3, token_expires_at = $4,
                                     status = $5, updated_at = $6
                              where uuid = $1";
        let (access, refresh, expires, status) = match write {
            TokenWrite::Keep => (None, None, None, None),
            TokenWrite::Replace(t) => (
                Some(t.access_token.as_slice()),
                Some(t.refresh_token.as_slice()),
                Some(t.expires_at_ms),
                Some("installed"),
            ),
            // Dead tokens are purged, not kept.
            TokenWrite::NeedsReauth => (None, None, None, Some("needs_reauth")),
        };
        let uuid = self.uuid.as_str();
        // One statement for either executor; each expansion is typed for
        // its own database.
        macro_rules! update {
            ($executor:expr) => {
                if let Some(status) = status {
                    sqlx::query(UPDATE)
                        .bind(uuid)
                        .bind(access)
                        .bind(refresh)
                        .bind(expires)
                        .bind(status)
                        .bind(now_ms())
                        .execute($executor)
                        .await?;
                }
            };
        }
        match self.guard {
            UpdateGuard::Postgres(mut tx) => {
                update!(&mut *tx);
                tx.commit().await?;
            }
            UpdateGuard::Sqlite(pool) => update!(&pool),
        }
        Ok(())
    }
}

/// SQLite lets one connection write at a time. A writer that finds the lock
/// taken waits in SQLite's busy handler, which sleeps in steps that grow to
/// 100 ms, so an acknowledgement could wait a whole step after the lock was
/// already free. The busy writers (the inbox and the worker) queue on this
/// gate instead and go the moment the previous one is done. One gate per
/// database file, shared by every pool on it in the process.
fn sqlite_write_gate(pool: &SqlitePool) -> Arc<tokio::sync::Mutex<()>> {
    static GATES: OnceLock<std::sync::Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let file = pool.connect_options().get_filename().to_path_buf();
    let mut gates = GATES.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    gates.entry(file).or_default().clone()
}

impl Store {
    /// Waits for the SQLite write gate (see [`sqlite_write_gate`]); nothing
    /// to wait for on PostgreSQL, which has row locks.
    async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self {
            Self::Sqlite(pool) => Some(sqlite_write_gate(pool).lock_owned().await),
            Self::Postgres(_) => None,
        }
    }
}

/// Copies the WAL back into the database every second without blocking
/// writers (PASSIVE), so the WAL stays small while no commit pays for it.
/// Stops when the pool is closed.
fn spawn_checkpointer(pool: SqlitePool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if pool.is_closed() {
                return;
            }
            if let Err(error) = sqlx::query("pragma wal_checkpoint(PASSIVE)").execute(&pool).await {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(%error, "WAL checkpoint failed");
            }
        }
    });
}

/// Milliseconds since the Unix epoch, the store's one time unit.
pub fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

#[derive(Debug, Clone)]
pub struct NewInstallation {
    pub uuid: InstallationUuid,
    pub org_slug: OrgSlug,
    pub org_id: Option<i64>,
    pub app_slug: Option<String>,
    pub status: String,
}

/// Tokens as they are stored: sealed by [`crate::crypto::TokenCipher`].
#[derive(Debug, Clone)]
pub struct SealedTokens {
    pub access_token: Vec<u8>,
    pub refresh_token: Vec<u8>,
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InstallationRecord {
    pub uuid: String,
    pub org_slug: String,
    pub app_slug: Option<String>,
    pub status: String,
    pub access_token: Option<Vec<u8>>,
    pub refresh_token: Option<Vec<u8>>,
    pub token_expires_at: Option<i64>,
}

impl InstallationRecord {
    pub fn is_installed_with_tokens(&self) -> bool {
        self.status == "installed" && self.access_token.is_some() && self.refresh_token.is_some()
    }

    /// An internal integration's token: no refresh token, no expiry.
    pub fn is_internal(&self) -> bool {
        self.access_token.is_some() && self.refresh_token.is_none() && self.token_expires_at.is_none()
    }
}

#[derive(sqlx::FromRow)]
struct InstallationRow {
    uuid: String,
    org_slug: String,
    app_slug: Option<String>,
    status: String,
    created_at: i64,
    tickets: i64,
}

impl From<InstallationRow> for InstallationSummary {
    fn from(row: InstallationRow) -> Self {
        Self {
            uuid: row.uuid,
            org_slug: row.org_slug,
            app_slug: row.app_slug,
            status: row.status,
            created_at_ms: row.created_at,
            tickets: row.tickets,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CommentRecord {
    pub id: i64,
    pub sentry_comment_id: Option<String>,
    /// `sentry` or `console`.
    pub origin: String,
    pub author: Option<String>,
    pub body: String,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LinkedIssue {
    pub installation_uuid: String,
    pub org_slug: String,
    pub sentry_issue_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketRecord {
    pub id: i64,
    pub installation_uuid: String,
    pub title: String,
    pub description: String,
    pub status: String,
    pub assignee_email: Option<String>,
    pub source: String,
    pub metric_alert_id: Option<String>,
    pub severity: Option<String>,
    pub occurrences: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SentryIssueRecord {
    pub issue_id: String,
    pub short_id: Option<String>,
    pub title: Option<String>,
    pub status: Option<String>,
    pub assignee: Option<String>,
    pub event_count: i64,
}

#[derive(Debug, Clone)]
pub struct NewTicket {
    pub installation: InstallationUuid,
    pub title: String,
    pub description: String,
    pub status: TicketStatus,
    pub assignee_email: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewIssueLink {
    pub installation: InstallationUuid,
    pub issue_id: SentryIssueId,
    pub short_id: Option<String>,
    pub title: Option<String>,
    pub web_url: Option<String>,
    pub project_slug: Option<String>,
}

#[derive(sqlx::FromRow)]
struct TicketRow {
    id: i64,
    title: String,
    status: String,
    assignee_email: Option<String>,
    org_slug: String,
    updated_at: i64,
    sentry_short_id: Option<String>,
    linked_issues: i64,
    occurrences: i64,
    severity: Option<String>,
}

impl TryFrom<TicketRow> for TicketSummary {
    type Error = StoreError;
    fn try_from(row: TicketRow) -> Result<Self, StoreError> {
        let status = row.status.parse().map_err(|e| StoreError::Corrupt(format!("ticket {}: {e}", row.id)))?;
        Ok(Self {
            id: TicketId(row.id),
            title: row.title,
            status,
            assignee: row.assignee_email,
            org_slug: row.org_slug,
            sentry_short_id: row.sentry_short_id,
            linked_issues: row.linked_issues,
            updated_at_ms: row.updated_at,
            occurrences: row.occurrences,
            severity: row.severity,
        })
    }
}
