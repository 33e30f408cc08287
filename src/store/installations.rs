//! Installations: an organization's copy of the app, its status, its
//! (sealed) tokens and its settings.

use sqlx::SqlitePool;

use super::access::{insert_audit, push_org_scope, NewAuditEvent};
use super::conn::{on_conn, Conn};
use super::{on_pool, ApplyTx, Store, StoreError};
use crate::domain::access::OrgScope;
use crate::domain::deliveries::InstallationSummary;
use crate::domain::ids::{InstallationUuid, OrgSlug};
use crate::domain::installation::InstallationStatus;
use crate::domain::ticket_rules::InstallationSettings;
use crate::domain::time::now_ms;

/// The one read of an installation, for the pool, a token change and the
/// worker's transaction alike.
const SELECT_INSTALLATION: &str =
    "select uuid, org_slug, org_id, app_slug, status, access_token, refresh_token, token_expires_at, settings
     from installation where uuid = $1";

async fn find(conn: Conn<'_>, uuid: &str) -> Result<Option<InstallationRecord>, StoreError> {
    Ok(on_conn!(conn, |c| sqlx::query_as::<_, InstallationRecord>(SELECT_INSTALLATION)
        .bind(uuid)
        .fetch_optional(c)
        .await)?)
}

impl Store {
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
            .bind(new.status.as_str())
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
                   values ($1, $2, $3, $6, $4, $5, $5)
                   on conflict (uuid) do update set
                       org_slug = excluded.org_slug,
                       app_slug = excluded.app_slug,
                       status = excluded.status,
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
            .bind(InstallationStatus::Installed.as_str())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    pub async fn installation(&self, uuid: &InstallationUuid) -> Result<Option<InstallationRecord>, StoreError> {
        find(self.acquire().await?.conn(), uuid.as_str()).await
    }

    /// Reads an installation's record for a token change; the change is
    /// applied by [`InstallationForUpdate::finish`]. On PostgreSQL the row
    /// stays locked (`for update`) until then, so instances sharing the
    /// database refresh a token once between them; dropping the guard
    /// without finishing rolls back. SQLite serves a single instance, whose
    /// per-installation lock already serialises this; holding SQLite's write
    /// lock across a call to Sentry would stall every other writer.
    pub async fn installation_for_update(&self, uuid: &InstallationUuid) -> Result<InstallationForUpdate, StoreError> {
        match self {
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let record = sqlx::query_as::<_, InstallationRecord>(&format!("{SELECT_INSTALLATION} for update"))
                    .bind(uuid.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                Ok(InstallationForUpdate { record, uuid: uuid.clone(), guard: UpdateGuard::Postgres(tx) })
            }
            Self::Sqlite(pool) => {
                let record = self.installation(uuid).await?;
                Ok(InstallationForUpdate { record, uuid: uuid.clone(), guard: UpdateGuard::Sqlite(pool.clone()) })
            }
        }
    }

    /// The uninstall policy: the tokens go at once, the links between
    /// tickets and the organization's Sentry issues go too (they point at
    /// issues we can no longer reach), and the tickets stay, with their
    /// comments, as the team's record. The installation row is kept, marked
    /// `deleted`, so the tickets keep their organization. Returns whether
    /// the installation was known. `audit` is written in the same
    /// transaction, if the installation was known.
    pub async fn uninstall(&self, uuid: &InstallationUuid, audit: &NewAuditEvent) -> Result<bool, StoreError> {
        let now = now_ms();
        let _turn = self.write_turn().await;
        let known = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("delete from ticket_link where installation_uuid = $1")
                .bind(uuid.as_str())
                .execute(&mut *tx)
                .await?;
            let updated = sqlx::query(
                "update installation set status = $3, access_token = null, refresh_token = null,
                        token_expires_at = null, updated_at = $2
                 where uuid = $1",
            )
            .bind(uuid.as_str())
            .bind(now)
            .bind(InstallationStatus::Deleted.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated > 0 {
                insert_audit(super::conn::Conn::from(&mut *tx), audit).await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(updated > 0)
        })?;
        Ok(known)
    }

    /// The installations of the organizations in `scope`.
    pub async fn list_installations(&self, scope: &OrgScope) -> Result<Vec<InstallationSummary>, StoreError> {
        let rows = on_pool!(self, |pool| {
            let mut sql = sqlx::QueryBuilder::new(
                "select i.uuid, i.org_slug, i.org_id, i.app_slug, i.status, i.created_at,
                        (select count(*) from ticket t where t.installation_uuid = i.uuid) as tickets
                 from installation i where 1 = 1",
            );
            push_org_scope!(sql, "i.org_id", "i.org_slug", scope);
            sql.push(" order by i.org_slug, i.uuid");
            sql.build_query_as::<InstallationRow>().fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Replaces an installation's settings, and records who did it in the
    /// same transaction.
    pub async fn set_installation_settings(
        &self,
        uuid: &InstallationUuid,
        settings: &InstallationSettings,
        audit: &NewAuditEvent,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(settings).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sql = "update installation set settings = $2, updated_at = $3 where uuid = $1";
        let _turn = self.write_turn().await;
        let changed = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(sql)
                .bind(uuid.as_str())
                .bind(&json)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 1 {
                insert_audit(super::conn::Conn::from(&mut *tx), audit).await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(changed)
        })?;
        Ok(changed == 1)
    }

    /// An installation's settings; the defaults for one not known.
    pub async fn installation_settings(&self, uuid: &InstallationUuid) -> Result<InstallationSettings, StoreError> {
        Ok(self.installation(uuid).await?.map(|record| record.settings()).unwrap_or_default())
    }
}

impl ApplyTx {
    /// The installation a delivery is for, read in the batch's transaction.
    pub async fn installation(&mut self, uuid: &str) -> Result<Option<InstallationRecord>, StoreError> {
        find(self.conn(), uuid).await
    }
}

#[derive(Debug, Clone)]
pub struct NewInstallation {
    pub uuid: InstallationUuid,
    pub org_slug: OrgSlug,
    pub org_id: Option<i64>,
    pub app_slug: Option<String>,
    pub status: InstallationStatus,
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
    /// Sentry's organization id, when Sentry told it: what access goes by,
    /// since a slug can be renamed and then taken by another organization.
    pub org_id: Option<i64>,
    pub app_slug: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: InstallationStatus,
    pub access_token: Option<Vec<u8>>,
    pub refresh_token: Option<Vec<u8>>,
    pub token_expires_at: Option<i64>,
    /// The installation's settings as stored (JSON); see [`Self::settings`].
    pub settings: String,
}

impl InstallationRecord {
    /// The settings in force: stored text that does not parse gives the
    /// defaults (see [`InstallationSettings::from_json`]).
    pub fn settings(&self) -> InstallationSettings {
        InstallationSettings::from_json(&self.settings)
    }

    pub fn is_installed_with_tokens(&self) -> bool {
        self.status == InstallationStatus::Installed && self.access_token.is_some() && self.refresh_token.is_some()
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
    org_id: Option<i64>,
    app_slug: Option<String>,
    #[sqlx(try_from = "String")]
    status: InstallationStatus,
    created_at: i64,
    tickets: i64,
}

impl From<InstallationRow> for InstallationSummary {
    fn from(row: InstallationRow) -> Self {
        Self {
            uuid: row.uuid,
            org_slug: row.org_slug,
            org_id: row.org_id,
            app_slug: row.app_slug,
            status: row.status,
            created_at_ms: row.created_at,
            tickets: row.tickets,
        }
    }
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
                Some(InstallationStatus::Installed.as_str()),
            ),
            // Dead tokens are purged, not kept.
            TokenWrite::NeedsReauth => (None, None, None, Some(InstallationStatus::NeedsReauth.as_str())),
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

/// A value sealed with the token cipher, where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealedValue {
    /// `column` is `access_token` or `refresh_token`.
    InstallationToken {
        installation: String,
        column: &'static str,
        sealed: Vec<u8>,
    },
    ServiceHookSecret {
        hook: String,
        sealed: Vec<u8>,
    },
}

impl SealedValue {
    pub fn sealed(&self) -> &[u8] {
        match self {
            Self::InstallationToken { sealed, .. } | Self::ServiceHookSecret { sealed, .. } => sealed,
        }
    }

    /// Where it is, for the operator.
    pub fn describe(&self) -> String {
        match self {
            Self::InstallationToken { installation, column, .. } => format!("installation {installation} {column}"),
            Self::ServiceHookSecret { hook, .. } => format!("service hook {hook} secret"),
        }
    }
}

impl Store {
    /// Every sealed value the store holds.
    pub async fn sealed_values(&self) -> Result<Vec<SealedValue>, StoreError> {
        type TokenRow = (String, Option<Vec<u8>>, Option<Vec<u8>>);
        let tokens = "select uuid, access_token, refresh_token from installation
                      where access_token is not null or refresh_token is not null order by uuid";
        let hooks = "select id, secret from service_hook order by id";
        let (tokens, hooks): (Vec<TokenRow>, Vec<(String, Vec<u8>)>) = on_pool!(self, |pool| (
            sqlx::query_as(tokens).fetch_all(pool).await?,
            sqlx::query_as(hooks).fetch_all(pool).await?
        ));
        let mut values = Vec::new();
        for (installation, access, refresh) in tokens {
            for (column, sealed) in [("access_token", access), ("refresh_token", refresh)] {
                if let Some(sealed) = sealed {
                    values.push(SealedValue::InstallationToken { installation: installation.clone(), column, sealed });
                }
            }
        }
        values.extend(hooks.into_iter().map(|(hook, sealed)| SealedValue::ServiceHookSecret { hook, sealed }));
        Ok(values)
    }

    /// Replaces `value` by `resealed`, if the store still holds `value` as
    /// read (a token refreshed meanwhile is left as the refresh wrote it).
    pub async fn replace_sealed_value(&self, value: &SealedValue, resealed: &[u8]) -> Result<bool, StoreError> {
        let (sql, key) = match value {
            SealedValue::InstallationToken { installation, column: "access_token", .. } => {
                ("update installation set access_token = $1 where uuid = $2 and access_token = $3", installation)
            }
            SealedValue::InstallationToken { installation, .. } => {
                ("update installation set refresh_token = $1 where uuid = $2 and refresh_token = $3", installation)
            }
            SealedValue::ServiceHookSecret { hook, .. } => {
                ("update service_hook set secret = $1 where id = $2 and secret = $3", hook)
            }
        };
        let _turn = self.write_turn().await;
        let changed = on_pool!(self, |pool| sqlx::query(sql)
            .bind(resealed)
            .bind(key.as_str())
            .bind(value.sealed())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(changed == 1)
    }
}
