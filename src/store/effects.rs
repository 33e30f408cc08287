//! Effects that must happen once (counting an event, opening a ticket),
//! keyed, so a replayed delivery changes nothing twice.

use std::sync::LazyLock;

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

    /// Writes the key of opening a ticket for a Sentry issue, unless the
    /// issue is linked to a ticket already (then no ticket is to open):
    /// true if the ticket is to be opened now. One statement for the check
    /// and the claim.
    pub async fn claim_effect_unless_linked(
        &mut self,
        installation: &str,
        key: &str,
        delivery: i64,
        issue: &str,
    ) -> Result<bool, StoreError> {
        let written = on_conn!(self.conn(), |conn| sqlx::query(&CLAIM_UNLESS_LINKED)
            .bind(installation)
            .bind(key)
            .bind(delivery)
            .bind(now_ms())
            .bind(issue)
            .execute(conn)
            .await
            .map(|d| d.rows_affected()))?;
        Ok(written == 1)
    }
}

/// The text of [`ApplyTx::claim_effect_unless_linked`]'s statement, made
/// once (it runs for every new issue).
static CLAIM_UNLESS_LINKED: LazyLock<String> =
    LazyLock::new(|| claim_unless_linked_sql(["$1", "$2", "$3", "$4", "$5"]));

/// The statement of [`ApplyTx::claim_effect_unless_linked`], its values
/// named by the placeholders that hold them: the installation, the key,
/// the delivery, the time and the Sentry issue (a query that runs it after
/// another statement shares that statement's parameters).
pub(crate) fn claim_unless_linked_sql([installation, key, delivery, at, issue]: [&str; 5]) -> String {
    format!(
        "insert into applied_effect (installation_uuid, effect_key, delivery_id, created_at)
         select {installation}, {key}, {delivery}, {at}
         where not exists (select 1 from ticket_link where installation_uuid = {installation} and sentry_issue_id = {issue})
         on conflict do nothing"
    )
}
