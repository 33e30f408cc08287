//! The worker's batch transaction: many deliveries applied in one
//! transaction (one fsync on SQLite).
//!
//! The writes themselves live with their kind of data (tickets, comments,
//! Sentry issues, effects, deliveries) as `impl ApplyTx` blocks. This file
//! opens and ends the transaction and offers a savepoint for the careful
//! path, where each delivery of a run that failed once is redone in its own
//! savepoint, so one that fails rolls back alone while the others commit.
//! Effects that must happen once carry a key ([`ApplyTx::claim_effect`])
//! written in the same transaction, which is what makes a replay change
//! nothing twice.

use sqlx::{Postgres, Sqlite, Transaction};

use super::conn::on_conn;
use super::{Store, StoreError};

/// A write transaction on either backend. On SQLite it holds the write
/// gate until it ends, so the inbox queues behind it rather than sleeping
/// in SQLite's busy handler.
pub enum ApplyTx {
    Sqlite(Transaction<'static, Sqlite>, tokio::sync::OwnedMutexGuard<()>),
    Postgres(Transaction<'static, Postgres>),
}

impl Store {
    /// Opens the worker's write transaction. On SQLite it takes the write
    /// lock at once (`BEGIN IMMEDIATE`): a deferred transaction that read
    /// first could not upgrade while the inbox writes, and would fail
    /// instead of waiting.
    pub async fn begin_apply(&self) -> Result<ApplyTx, StoreError> {
        Ok(match self {
            Store::Sqlite(pool) => {
                let turn = super::sqlite_write_gate(pool).lock_owned().await;
                ApplyTx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?, turn)
            }
            Store::Postgres(pool) => ApplyTx::Postgres(pool.begin().await?),
        })
    }
}

/// The guard of an ordered update: the row's `<prefix>_at` and
/// `<prefix>_delivery` (the last applied change) are not newer than the
/// change in parameters `$at` and `$delivery` (see [`ChangeOrder`]).
pub(crate) fn unless_newer(prefix: &str, at: u8, delivery: u8) -> String {
    format!(
        "({prefix}_at is null or {prefix}_at < ${at} or ({prefix}_at = ${at} and {prefix}_delivery <= ${delivery}))"
    )
}

impl ApplyTx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            ApplyTx::Sqlite(tx, _turn) => tx.commit().await?,
            ApplyTx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Undoes everything the transaction did.
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self {
            ApplyTx::Sqlite(tx, _turn) => tx.rollback().await?,
            ApplyTx::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }

    async fn execute(&mut self, sql: &str) -> Result<(), StoreError> {
        on_conn!(self.conn(), |conn| sqlx::query(sql).execute(conn).await.map(|_| ()))?;
        Ok(())
    }

    /// Starts the savepoint one delivery's changes live in.
    pub async fn savepoint(&mut self) -> Result<(), StoreError> {
        self.execute("savepoint delivery").await
    }

    /// Keeps the delivery's changes.
    pub async fn release(&mut self) -> Result<(), StoreError> {
        self.execute("release savepoint delivery").await
    }

    /// Undoes the delivery's changes, keeping the rest of the batch.
    pub async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        self.execute("rollback to savepoint delivery").await?;
        self.execute("release savepoint delivery").await
    }
}
