//! Effects that must happen once (counting an event, opening a ticket),
//! keyed, so a replayed delivery changes nothing twice.

use super::conn::on_conn;
use super::{ApplyTx, StoreError};
use crate::domain::time::now_ms;

impl ApplyTx {
    /// Writes an effect's key; true if it was not written before, i.e. the
    /// effect is to happen now.
    pub async fn claim_effect(&mut self, installation: &str, key: &str, delivery: i64) -> Result<bool, StoreError> {
        let sql = "insert into applied_effect (installation_uuid, effect_key, delivery_id, created_at)
                   values ($1, $2, $3, $4) on conflict do nothing";
        let written = on_conn!(self.conn(), |conn| sqlx::query(sql)
            .bind(installation)
            .bind(key)
            .bind(delivery)
            .bind(now_ms())
            .execute(conn)
            .await
            .map(|d| d.rows_affected()))?;
        Ok(written == 1)
    }
}
