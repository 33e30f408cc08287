//! One connection type for both backends, so a query that is needed both
//! from the pool and inside the worker's transaction is written once.
//!
//! vaultwarden's `DbConn` does the same over an enum: each arm is typed for
//! its own database, so one SQL text runs with native types on either.

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection};

use super::apply_tx::Tx;
use super::{ApplyTx, Store, StoreError};

/// A borrowed connection of either backend: a pooled one or a transaction's.
pub enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl<'c> From<&'c mut SqliteConnection> for Conn<'c> {
    fn from(c: &'c mut SqliteConnection) -> Self {
        Conn::Sqlite(c)
    }
}

impl<'c> From<&'c mut PgConnection> for Conn<'c> {
    fn from(c: &'c mut PgConnection) -> Self {
        Conn::Postgres(c)
    }
}

impl Conn<'_> {
    /// The same connection, lent to a call that takes a `Conn` of its own.
    pub fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Conn::Sqlite(c) => Conn::Sqlite(c),
            Conn::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// Runs the same block against either backend's connection.
macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::conn::Conn::Sqlite($c) => $body,
            $crate::store::conn::Conn::Postgres($c) => $body,
        }
    };
}
pub(crate) use on_conn;

/// A connection taken from the pool, returned to it when dropped.
pub enum PooledConn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl PooledConn {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(c) => Conn::Sqlite(c),
            Self::Postgres(c) => Conn::Postgres(c),
        }
    }
}

impl Store {
    /// A connection from the pool, for a query shared with [`ApplyTx`].
    pub(crate) async fn acquire(&self) -> Result<PooledConn, StoreError> {
        Ok(match self {
            Store::Sqlite(pool) => PooledConn::Sqlite(pool.acquire().await?),
            Store::Postgres(pool) => PooledConn::Postgres(pool.acquire().await?),
        })
    }
}

impl ApplyTx {
    /// The transaction's connection.
    pub fn conn(&mut self) -> Conn<'_> {
        match self.tx() {
            Tx::Sqlite(tx, ..) => Conn::Sqlite(tx),
            Tx::Postgres(tx) => Conn::Postgres(tx),
        }
    }
}
