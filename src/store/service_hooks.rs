//! Project service hooks and their sealed secrets.

use super::{on_pool, Store, StoreError};
use crate::domain::ids::InstallationUuid;
use crate::domain::time::now_ms;

impl Store {
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
