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
//!
//! Tickets opened in the transaction get their team's numbers last, just
//! before it commits ([`ApplyTx::number_new_tickets`]). Taking a number
//! locks the team's row until the commit; taken when the ticket opened, a
//! worker batch held it for the whole batch, and every other transaction
//! that opens a ticket in that team (the other worker loops, the sidebar's
//! create) queued behind it.

use std::collections::{BTreeMap, HashMap};

use sqlx::{Postgres, Sqlite, Transaction};

use super::conn::on_conn;
use super::teams::{TeamChoice, TeamError};
use super::{Store, StoreError};
use crate::domain::ids::TicketId;
use crate::domain::team::{TeamKey, TicketKey};

/// A write transaction on either backend, with the tickets it opened that
/// await their numbers.
pub struct ApplyTx {
    tx: Tx,
    unnumbered: Vec<Unnumbered>,
    /// How many of `unnumbered` there were when the delivery's savepoint
    /// began: rolling back to it forgets the ones opened since.
    unnumbered_at_savepoint: usize,
    /// Each installation's default team, read once per transaction (a
    /// batch opens many tickets in it); forgotten when a savepoint is
    /// rolled back, which may have undone the team's creation.
    default_teams: HashMap<String, (i64, TeamKey)>,
}

/// On SQLite the transaction holds the database file's write gate until it
/// ends, so other writers of the board queue behind it rather than sleeping
/// in SQLite's busy handler.
pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>, super::WriteTurn, std::sync::Arc<super::WriteGate>),
    Postgres(Transaction<'static, Postgres>),
}

/// A ticket opened in this transaction, in its team, with no number yet.
struct Unnumbered {
    ticket: TicketId,
    team_id: i64,
    team: TeamKey,
}

/// A ticket numbered at the end of its transaction: the key it showed
/// until then ([`unnumbered_key`]) and the one it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbered {
    pub ticket: TicketId,
    pub was: TicketKey,
    pub key: TicketKey,
}

/// What a ticket opened in the running transaction is called until it is
/// numbered: its team and minus its id (`IB--42`), which no numbered
/// ticket can be. Notes written meanwhile are corrected with [`Renames`].
pub(crate) fn unnumbered_key(team: TeamKey, ticket: TicketId) -> TicketKey {
    TicketKey { team, number: -ticket.0 }
}

/// The stand-in keys of numbered tickets and the keys they took, longest
/// stand-in first, so `IB--12` cannot match inside `IB--123`. Made once
/// per transaction, applied to each of its notes.
pub struct Renames(Vec<(String, String)>);

impl Renames {
    pub fn new(numbered: &[Numbered]) -> Self {
        let mut keys: Vec<(String, String)> = numbered.iter().map(|n| (n.was.to_string(), n.key.to_string())).collect();
        keys.sort_by_key(|(was, _)| std::cmp::Reverse(was.len()));
        Self(keys)
    }

    /// `text` with every stand-in key replaced by the key it took.
    pub fn apply(&self, text: &str) -> String {
        if self.0.is_empty() || !text.contains("--") {
            return text.to_owned();
        }
        self.0.iter().fold(text.to_owned(), |text, (was, key)| text.replace(was.as_str(), key))
    }
}

impl Store {
    /// Opens the worker's write transaction. On SQLite it takes the
    /// database file's write lock at once: a deferred transaction that read
    /// first could not upgrade once another connection had written (a
    /// session, say), and would fail instead of waiting. Not with `BEGIN
    /// IMMEDIATE`, which would lock the inbox file too and hold up every
    /// acknowledgement until the transaction ends.
    pub async fn begin_apply(&self) -> Result<ApplyTx, StoreError> {
        self.begin_apply_when(false).await
    }

    /// [`Store::begin_apply`] for a writer in the background, which lets
    /// the worker's transaction run on for a while
    /// ([`super::WriteGate::enter_patiently`]).
    pub(crate) async fn begin_apply_patiently(&self) -> Result<ApplyTx, StoreError> {
        self.begin_apply_when(true).await
    }

    async fn begin_apply_when(&self, patient: bool) -> Result<ApplyTx, StoreError> {
        Ok(match self {
            Store::Sqlite(pool) => {
                let gate = super::sqlite_board_gate(pool);
                let turn = if patient { gate.enter_patiently().await } else { gate.enter().await };
                let mut tx = pool.begin().await?;
                super::inbox_file::lock_database_file(&mut tx).await?;
                ApplyTx::new(Tx::Sqlite(tx, turn, gate))
            }
            Store::Postgres(pool) => ApplyTx::new(Tx::Postgres(pool.begin().await?)),
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
    fn new(tx: Tx) -> Self {
        Self { tx, unnumbered: Vec::new(), unnumbered_at_savepoint: 0, default_teams: HashMap::new() }
    }

    pub(crate) fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// Whether the transaction is SQLite's, whose deliveries live in
    /// another file than the board (see [`super::inbox_file`]).
    pub(crate) fn writes_inbox_apart(&self) -> bool {
        self.backend() == crate::config::Backend::Sqlite
    }

    /// The database the transaction is in.
    pub(crate) fn backend(&self) -> crate::config::Backend {
        match self.tx {
            Tx::Sqlite(..) => crate::config::Backend::Sqlite,
            Tx::Postgres(_) => crate::config::Backend::Postgres,
        }
    }

    /// Whether another writer of the database file waits for this
    /// transaction to end (only SQLite makes anyone wait).
    pub fn holds_others_up(&self) -> bool {
        match &self.tx {
            Tx::Sqlite(_, _, gate) => gate.others_queued(),
            Tx::Postgres(_) => false,
        }
    }

    /// Numbers the tickets it opened, then commits.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.commit_numbering().await.map(|_| ())
    }

    /// Numbers the tickets it opened, commits, and says what each took.
    pub async fn commit_numbering(mut self) -> Result<Vec<Numbered>, StoreError> {
        let numbered = self.number_new_tickets().await?;
        match self.tx {
            Tx::Sqlite(tx, _turn, _) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(numbered)
    }

    /// Undoes everything the transaction did.
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self.tx {
            Tx::Sqlite(tx, _turn, _) => tx.rollback().await?,
            Tx::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }

    /// Notes that a ticket opened here awaits its number.
    pub(crate) fn awaits_number(&mut self, ticket: TicketId, team_id: i64, team: TeamKey) -> TicketKey {
        self.unnumbered.push(Unnumbered { ticket, team_id, team: team.clone() });
        unnumbered_key(team, ticket)
    }

    /// Gives the tickets opened so far their teams' next numbers, in the
    /// order they opened, one `update team` per team (teams in id order, so
    /// two transactions lock them alike). The team's row stays locked until
    /// the commit, which should follow at once.
    pub async fn number_new_tickets(&mut self) -> Result<Vec<Numbered>, StoreError> {
        let unnumbered = std::mem::take(&mut self.unnumbered);
        self.unnumbered_at_savepoint = 0;
        if unnumbered.is_empty() {
            return Ok(Vec::new());
        }
        let mut by_team: BTreeMap<i64, Vec<Unnumbered>> = BTreeMap::new();
        for ticket in unnumbered {
            by_team.entry(ticket.team_id).or_default().push(ticket);
        }
        let mut numbered = Vec::new();
        for (team_id, mut tickets) in by_team {
            tickets.sort_by_key(|t| t.ticket.0);
            let first = super::teams::take_numbers(self.conn(), team_id, tickets.len() as i64).await?;
            for (number, t) in (first..).zip(tickets) {
                let key = TicketKey { team: t.team.clone(), number };
                numbered.push(Numbered { ticket: t.ticket, was: unnumbered_key(t.team, t.ticket), key });
            }
        }
        on_conn!(self.conn(), |c| {
            // `values` names its columns column1, column2, … in both dialects.
            let mut update =
                sqlx::QueryBuilder::new("update ticket set number = v.column2, identifier = v.column3 from (");
            update.push_values(&numbered, |mut row, n| {
                row.push_bind(n.ticket.0).push_bind(n.key.number).push_bind(n.key.to_string());
            });
            update.push(") as v where ticket.id = v.column1");
            // Sized by the batch, so not kept prepared (as the inbox's insert
            // and the deliveries' outcomes, `super::deliveries`).
            update.build().persistent(false).execute(&mut *c).await.map(|_| ())
        })?;
        Ok(numbered)
    }

    /// The team a ticket opens in (see [`super::teams::team_for_ticket`]).
    pub(crate) async fn team_for_ticket(
        &mut self,
        installation: &str,
        team: &TeamChoice,
    ) -> Result<(i64, TeamKey), TeamError> {
        if *team != TeamChoice::Default {
            return super::teams::team_for_ticket(self.conn(), installation, team).await;
        }
        if let Some(known) = self.default_teams.get(installation) {
            return Ok(known.clone());
        }
        let found = super::teams::team_for_ticket(self.conn(), installation, team).await?;
        self.default_teams.insert(installation.to_owned(), found.clone());
        Ok(found)
    }

    async fn execute(&mut self, sql: &str) -> Result<(), StoreError> {
        on_conn!(self.conn(), |conn| sqlx::query(sql).execute(conn).await.map(|_| ()))?;
        Ok(())
    }

    /// Starts the savepoint one delivery's changes live in.
    pub async fn savepoint(&mut self) -> Result<(), StoreError> {
        self.unnumbered_at_savepoint = self.unnumbered.len();
        self.execute("savepoint delivery").await
    }

    /// Keeps the delivery's changes.
    pub async fn release(&mut self) -> Result<(), StoreError> {
        self.execute("release savepoint delivery").await
    }

    /// Undoes the delivery's changes, keeping the rest of the batch.
    pub async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        self.unnumbered.truncate(self.unnumbered_at_savepoint);
        self.default_teams.clear();
        self.execute("rollback to savepoint delivery").await?;
        self.execute("release savepoint delivery").await
    }
}
