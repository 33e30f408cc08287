//! Console access in the store: the SQL that scopes a query to what a
//! person may see, single-use login links, and the audit log.

use super::conn::{on_conn, Conn};
use super::{on_pool, Store, StoreError};
use crate::domain::access::OrgScope;
use crate::domain::audit::{AuditAction, AuditEvent, AuditFilter};
use crate::domain::time::now_ms;

/// Appends the condition that keeps a query to the scope's organizations:
/// an installation whose organization id is known matches by that id (a
/// slug can be renamed and then taken by another organization); one whose
/// id is not known, by its slug. Nothing for [`OrgScope::Everything`], and a
/// condition that is never true for a scope of no organization. Every
/// console query that returns an organization's data goes through it.
macro_rules! push_org_scope {
    ($sql:expr, $id_column:expr, $slug_column:expr, $scope:expr) => {
        match $scope {
            $crate::domain::access::OrgScope::Everything => {}
            $crate::domain::access::OrgScope::Orgs(orgs) if orgs.is_empty() => {
                $sql.push(" and 1 = 0");
            }
            $crate::domain::access::OrgScope::Orgs(orgs) => {
                $sql.push(" and (");
                let ids: Vec<i64> = orgs.iter().filter_map(|org| org.id).collect();
                if !ids.is_empty() {
                    $sql.push($id_column).push(" in (");
                    let mut list = $sql.separated(", ");
                    for id in ids {
                        list.push_bind(id);
                    }
                    $sql.push(") or ");
                }
                $sql.push("(").push($id_column).push(" is null and ").push($slug_column).push(" in (");
                let mut list = $sql.separated(", ");
                for org in orgs {
                    list.push_bind(org.slug.clone());
                }
                $sql.push(")))");
            }
        }
    };
}
pub(crate) use push_org_scope;

/// A row of the audit log about to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    /// An email, or [`crate::domain::audit::COMMAND_LINE`].
    pub actor: String,
    pub action: AuditAction,
    pub org_slug: Option<String>,
    pub installation: Option<String>,
    pub detail: String,
}

impl NewAuditEvent {
    pub fn new(actor: impl Into<String>, action: AuditAction, detail: impl Into<String>) -> Self {
        Self { actor: actor.into(), action, org_slug: None, installation: None, detail: detail.into() }
    }

    /// About one installation, in one organization.
    pub fn about(mut self, org_slug: impl Into<String>, installation: impl Into<String>) -> Self {
        self.org_slug = Some(org_slug.into());
        self.installation = Some(installation.into());
        self
    }
}

/// The one insert of an audit row, for the pool and for a change's own
/// transaction alike.
pub(crate) async fn insert_audit(conn: Conn<'_>, event: &NewAuditEvent) -> Result<(), StoreError> {
    let sql = "insert into audit_event (at, actor, action, org_slug, installation_uuid, detail)
               values ($1, $2, $3, $4, $5, $6)";
    on_conn!(conn, |c| sqlx::query(sql)
        .bind(now_ms())
        .bind(&event.actor)
        .bind(event.action.as_str())
        .bind(event.org_slug.as_deref())
        .bind(event.installation.as_deref())
        .bind(&event.detail)
        .execute(c)
        .await
        .map(|_| ()))?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: i64,
    actor: String,
    action: String,
    org_slug: Option<String>,
    installation_uuid: Option<String>,
    detail: String,
}

/// What a person may read of the audit log: their organizations' rows and
/// their own rows that belong to no organization (their logins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReader {
    pub scope: OrgScope,
    pub email: String,
}

impl Store {
    /// Records something done that changed nothing else (a login, a
    /// logout); changes record theirs in their own transaction.
    pub async fn record_audit(&self, event: &NewAuditEvent) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        insert_audit(self.acquire().await?.conn(), event).await
    }

    /// The newest rows first, below `before` if given, as `reader` may
    /// see them.
    pub async fn audit_events(
        &self,
        reader: &AuditReader,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = on_pool!(self, |pool| {
            let mut sql = sqlx::QueryBuilder::new(
                "select id, at, actor, action, org_slug, installation_uuid, detail from audit_event where 1 = 1",
            );
            if let OrgScope::Orgs(orgs) = &reader.scope {
                sql.push(" and ((org_slug is null and actor = ").push_bind(reader.email.clone()).push(")");
                if !orgs.is_empty() {
                    sql.push(" or org_slug in (");
                    let mut list = sql.separated(", ");
                    for org in orgs {
                        list.push_bind(org.slug.clone());
                    }
                    sql.push(")");
                }
                sql.push(")");
            }
            if let Some(action) = filter.action {
                sql.push(" and action = ").push_bind(action.as_str());
            }
            if let Some(actor) = &filter.actor {
                sql.push(" and actor = ").push_bind(actor.clone());
            }
            if let Some(org) = &filter.org {
                sql.push(" and org_slug = ").push_bind(org.clone());
            }
            if let Some(before) = before {
                sql.push(" and id < ").push_bind(before);
            }
            sql.push(" order by id desc limit ").push_bind(limit);
            sql.build_query_as::<AuditRow>().fetch_all(pool).await
        })?;
        rows.into_iter()
            .map(|row| {
                Ok(AuditEvent {
                    id: row.id,
                    at_ms: row.at,
                    actor: row.actor,
                    action: row
                        .action
                        .parse()
                        .map_err(|e| StoreError::Corrupt(format!("audit row {}: {e}", row.id)))?,
                    org_slug: row.org_slug,
                    installation: row.installation_uuid,
                    detail: row.detail,
                })
            })
            .collect()
    }

    /// Records a new login; its id goes into the person's session.
    pub async fn start_login(&self, id: &str, email: &str) -> Result<(), StoreError> {
        let sql = "insert into console_login (id, email, started_at) values ($1, $2, $3)";
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| sqlx::query(sql).bind(id).bind(email).bind(now_ms()).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Whether the login is known and not ended.
    pub async fn login_is_active(&self, id: &str) -> Result<bool, StoreError> {
        let sql = "select count(*) from console_login where id = $1 and ended_at is null";
        let count = on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql).bind(id).fetch_one(pool).await)?;
        Ok(count == 1)
    }

    /// Ends a login for good, whatever becomes of its session record.
    pub async fn end_login(&self, id: &str) -> Result<(), StoreError> {
        let sql = "update console_login set ended_at = $2 where id = $1 and ended_at is null";
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| sqlx::query(sql).bind(id).bind(now_ms()).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Keeps a login link: only the hash of its secret is stored.
    pub async fn add_login_link(&self, token_hash: &str, email: &str, expires_at_ms: i64) -> Result<(), StoreError> {
        let sql = "insert into login_link (token_hash, email, created_at, expires_at) values ($1, $2, $3, $4)";
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(token_hash)
            .bind(email)
            .bind(now_ms())
            .bind(expires_at_ms)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Spends a login link: returns its email if the link exists, is
    /// unspent and has not expired, and marks it spent in the same
    /// statement, so two clicks cannot both log in.
    pub async fn spend_login_link(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        let now = now_ms();
        let sql = "update login_link set used_at = $2
                   where token_hash = $1 and used_at is null and expires_at > $2
                   returning email";
        let _turn = self.write_turn().await;
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, String>(sql)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await)?)
    }

    /// Whether a login link is still usable, without spending it (the page
    /// that asks for the click).
    pub async fn login_link_email(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        let sql = "select email from login_link where token_hash = $1 and used_at is null and expires_at > $2";
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, String>(sql)
            .bind(token_hash)
            .bind(now_ms())
            .fetch_optional(pool)
            .await)?)
    }
}
