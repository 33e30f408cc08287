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

    /// Every hook that may have sent `guid`, most likely first: the hook
    /// known by it, then those that have not said their guid yet, then
    /// the rest (a guid is not signed, so it only says where to look first).
    pub async fn service_hook_candidates(&self, guid: &str) -> Result<Vec<ServiceHookRecord>, StoreError> {
        let sql = "select id, installation_uuid, project_slug, secret, guid from service_hook
                   order by case when guid = $1 then 0 when guid is null then 1 else 2 end, created_at";
        Ok(on_pool!(self, |pool| sqlx::query_as::<_, ServiceHookRecord>(sql).bind(guid).fetch_all(pool).await)?)
    }

    /// Remembers that hook `id` sends `guid`, taking the guid from any hook
    /// that claimed it before (the guid is unique; the one whose secret
    /// verified is the one that sends it).
    pub async fn set_service_hook_guid(&self, id: &str, guid: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("update service_hook set guid = null where guid = $1 and id <> $2")
                .bind(guid)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("update service_hook set guid = $2 where id = $1")
                .bind(id)
                .bind(guid)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })?;
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
