//! Deliveries: every signed request Sentry sent, as received, with how
//! processing it went (the delivery log and the worker's queue).

use super::access::push_org_scope;
use super::conn::{on_conn, Conn};
use super::ApplyTx;
use super::{on_pool, Store, StoreError};
use crate::domain::access::OrgScope;
use crate::domain::deliveries::{
    DeliveryAttempt, DeliveryDetail, DeliveryFilter, DeliveryShown, DeliveryState, DeliverySummary,
};
use crate::domain::ids::InstallationUuid;
use crate::domain::time::now_ms;

/// Appends the condition that keeps a delivery query to the installations
/// of `scope`'s organizations. Deliveries of no known installation fall
/// outside every scope but [`OrgScope::Everything`] (administrators).
macro_rules! push_delivery_scope {
    ($sql:expr, $scope:expr) => {
        if !matches!($scope, OrgScope::Everything) {
            $sql.push(" and installation_uuid in (select uuid from installation where 1 = 1");
            push_org_scope!($sql, "org_id", "org_slug", $scope);
            $sql.push(")");
        }
    };
}

/// Appends which deliveries a replay means (one, a time range, or every
/// dead one), within `scope`: the one condition that sizing a replay and
/// running it share.
macro_rules! push_replay_target {
    ($query:expr, $which:expr, $scope:expr) => {{
        match *$which {
            Replay::One(id) => $query.push("id = ").push_bind(id),
            Replay::Between { from_ms, to_ms } => {
                $query.push("received_at >= ").push_bind(from_ms).push(" and received_at < ").push_bind(to_ms)
            }
            Replay::Dead => $query.push("state = ").push_bind(DeliveryState::Dead.as_str()),
        };
        push_delivery_scope!($query, $scope);
    }};
}

/// Appends `state in (…) and ` for the states a replay takes: the console's
/// replayable ones, and `pending` (already queued: resetting its attempts
/// is harmless).
macro_rules! push_replayable_states {
    ($query:expr) => {{
        $query.push("state in (");
        let mut states = $query.separated(", ");
        for state in DeliveryState::REPLAYABLE.iter().chain(&[DeliveryState::Pending]) {
            states.push_bind(state.as_str());
        }
        $query.push(") and ");
    }};
}

/// Appends the rows of `$deliveries` to a multi-row insert and runs it in
/// `$tx`: the rows whose dedupe key is new come back as `(id, key)`.
macro_rules! insert_new_deliveries {
    ($tx:expr, $deliveries:expr) => {{
        let mut insert = sqlx::QueryBuilder::new(
            "insert into delivery (received_at, source, request_id, resource, action, installation_uuid,
                                   dedupe_key, headers, body, state) ",
        );
        insert.push_values($deliveries, |mut row, d: &NewDelivery| {
            row.push_bind(d.received_at_ms)
                .push_bind(d.source)
                .push_bind(d.request_id.as_deref())
                .push_bind(d.resource.as_str())
                .push_bind(d.action.as_deref())
                .push_bind(d.installation.as_ref().map(InstallationUuid::as_str))
                .push_bind(d.dedupe_key.as_str())
                .push_bind(d.headers.as_str())
                .push_bind(d.body.as_slice())
                .push_bind(d.state.as_str());
        });
        insert.push(" on conflict (dedupe_key) do nothing returning id, dedupe_key");
        // Its text differs with the batch's size: not kept among each
        // connection's prepared statements, where it would push out the
        // worker's (a hundred a connection), each copy used once or twice.
        let stored: Vec<(i64, String)> = insert.build_query_as().persistent(false).fetch_all(&mut *$tx).await?;
        stored
    }};
}

/// How long a delivery's body marks later copies as Sentry's retries of it,
/// unless configured otherwise: Sentry retries three times, five minutes
/// apart (docs/sentry-protocol.md §1.5).
pub const DEFAULT_DEDUPE_WINDOW_MS: i64 = 60 * 60 * 1000;

impl Store {
    /// [`Store::insert_deliveries_within`] the default window.
    pub async fn insert_deliveries(&self, deliveries: &[NewDelivery]) -> Result<Vec<DeliveryInsert>, StoreError> {
        self.insert_deliveries_within(deliveries, DEFAULT_DEDUPE_WINDOW_MS).await
    }

    /// Writes deliveries. A delivery whose dedupe key was stored less than
    /// `dedupe_window_ms` before it arrived is a retry: it is not written
    /// again, and the stored one counts it. After the window the same body
    /// is a new delivery (an issue resolved, reopened and resolved again can
    /// send identical bodies): the old row keeps its key with its id
    /// appended, out of the new one's way.
    ///
    /// The batch's new rows are one statement in a transaction of its own:
    /// a single statement is atomic, and without `BEGIN` and `COMMIT` the
    /// usual batch costs one round trip to the database instead of three
    /// (every acknowledgement waits for it). Only keys seen before take a
    /// transaction, after it.
    pub async fn insert_deliveries_within(
        &self,
        deliveries: &[NewDelivery],
        dedupe_window_ms: i64,
    ) -> Result<Vec<DeliveryInsert>, StoreError> {
        // A copy within the window is counted on the stored delivery.
        const DUPLICATE: &str = "update delivery set duplicate_count = duplicate_count + 1, last_duplicate_at = $2
                                 where dedupe_key = $1 and received_at >= $3
                                 returning id";
        // One older than the window frees the key for the new delivery.
        const RETIRE: &str = "update delivery set dedupe_key = dedupe_key || '@' || cast(id as text)
                              where dedupe_key = $1";
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let _turn = self.inbox_turn().await;
        let outcomes = on_pool!(self, |pool| {
            let mut conn = pool.acquire().await?;
            // The rows whose key is new come back with their ids; the
            // first occurrence of a new key is the stored one.
            let stored = insert_new_deliveries!(conn, deliveries);
            let mut new_ids: std::collections::HashMap<String, i64> =
                stored.into_iter().map(|(id, key)| (key, id)).collect();
            let mut outcomes: Vec<Option<DeliveryInsert>> =
                deliveries.iter().map(|d| new_ids.remove(&d.dedupe_key).map(DeliveryInsert::Stored)).collect();
            if outcomes.iter().any(Option::is_none) {
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                for (d, outcome) in deliveries.iter().zip(&mut outcomes).filter(|(_, o)| o.is_none()) {
                    // Seen before (rare): a retry, or the same body after
                    // the window. On PostgreSQL another instance may be
                    // retiring or inserting the same key at once, hence a
                    // few turns.
                    for _ in 0..3 {
                        let retry: Option<i64> = sqlx::query_scalar(DUPLICATE)
                            .bind(&d.dedupe_key)
                            .bind(d.received_at_ms)
                            .bind(d.received_at_ms.saturating_sub(dedupe_window_ms))
                            .fetch_optional(&mut *tx)
                            .await?;
                        if let Some(id) = retry {
                            *outcome = Some(DeliveryInsert::Duplicate(id));
                            break;
                        }
                        sqlx::query(RETIRE).bind(&d.dedupe_key).execute(&mut *tx).await?;
                        if let Some((id, _)) = insert_new_deliveries!(tx, std::slice::from_ref(d)).pop() {
                            *outcome = Some(DeliveryInsert::Stored(id));
                            break;
                        }
                    }
                }
                tx.commit().await?;
            }
            outcomes.into_iter().map(|o| o.ok_or(sqlx::Error::RowNotFound)).collect::<Result<Vec<_>, _>>()
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
            "update delivery set state = $4, attempts = attempts + 1, next_attempt_at = $1
             where id in (
                 select id from (select id from delivery where state = $5
                                 order by id limit $3{lock}) as fresh
                 union all
                 select id from (select id from delivery
                                 where state in ($6, $4) and next_attempt_at <= $2
                                 order by id limit $3{lock}) as due
                 order by id
                 limit $3)
             returning id, received_at, resource, action, installation_uuid, headers, body, attempts"
        );
        let _turn = self.inbox_turn().await;
        let mut claimed = on_pool!(self, |pool| sqlx::query_as::<_, ClaimedDelivery>(&sql)
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit)
            .bind(DeliveryState::Processing.as_str())
            .bind(DeliveryState::Pending.as_str())
            .bind(DeliveryState::Retry.as_str())
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
        let _turn = self.inbox_turn().await;
        let sql = "update delivery set state = $1, next_attempt_at = 0 where state = $2";
        let query = sqlx::query(sql).bind(DeliveryState::Retry.as_str()).bind(DeliveryState::Processing.as_str());
        Ok(query.execute(pool).await?.rows_affected())
    }

    /// Records how processing a claimed delivery went (for deliveries
    /// applied outside an [`ApplyTx`]).
    pub async fn finish_delivery(
        &self,
        delivery: &ClaimedDelivery,
        outcome: &DeliveryOutcome,
    ) -> Result<(), StoreError> {
        let finished = FinishedDelivery { id: delivery.id, attempt: delivery.attempts, outcome, note: None };
        self.finish_deliveries(&[finished]).await
    }

    /// Records how deliveries went, in a transaction of its own: on SQLite
    /// one that writes the inbox file only.
    pub async fn finish_deliveries(&self, finished: &[FinishedDelivery<'_>]) -> Result<(), StoreError> {
        if finished.is_empty() {
            return Ok(());
        }
        let _turn = self.inbox_turn().await;
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            write_outcomes((&mut *tx).into(), finished).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })
    }

    /// Puts deliveries back in the queue so the worker applies them again
    /// (handlers are idempotent). Deliveries that cannot be processed (not
    /// JSON) or are being processed are left as they are. Returns how many
    /// were requeued.
    ///
    /// A range is requeued a few thousand ids at a time, each in its own
    /// short write, so the inbox is never held up for long.
    ///
    /// Only deliveries of the installations in `scope` are requeued.
    pub async fn requeue_deliveries(&self, which: &Replay, scope: &OrgScope) -> Result<u64, StoreError> {
        const CHUNK: i64 = 5_000;
        let (low, high) = match which {
            Replay::One(id) => (Some(*id), Some(*id)),
            _ => on_pool!(self, |pool| {
                let mut bounds = sqlx::QueryBuilder::new("select min(id), max(id) from delivery where ");
                push_replay_target!(bounds, which, scope);
                bounds.build_query_as::<(Option<i64>, Option<i64>)>().fetch_one(pool).await
            })?,
        };
        let (Some(low), Some(high)) = (low, high) else { return Ok(0) };
        let mut count = 0;
        let mut start = low;
        while start <= high {
            let _turn = self.inbox_turn().await;
            count += on_pool!(self, |pool| {
                let mut requeue = sqlx::QueryBuilder::new("update delivery set state = ");
                requeue
                    .push_bind(DeliveryState::Pending.as_str())
                    .push(", attempts = 0, next_attempt_at = null, last_error = null where ");
                push_replayable_states!(requeue);
                push_replay_target!(requeue, which, scope);
                requeue.push(" and id >= ").push_bind(start).push(" and id < ").push_bind(start + CHUNK);
                requeue.build().execute(pool).await.map(|done| done.rows_affected())
            })?;
            start += CHUNK;
        }
        Ok(count)
    }

    /// How many deliveries [`Store::requeue_deliveries`] would requeue, so
    /// that a person sees a replay's size before it runs.
    pub async fn replay_size(&self, which: &Replay, scope: &OrgScope) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool| {
            let mut count = sqlx::QueryBuilder::new("select count(*) from delivery where ");
            push_replayable_states!(count);
            push_replay_target!(count, which, scope);
            count.build_query_scalar::<i64>().fetch_one(pool).await
        })?)
    }

    /// One delivery, if it is in `scope`: another organization's delivery
    /// answers as if it did not exist.
    pub async fn delivery_in(&self, scope: &OrgScope, id: i64) -> Result<Option<DeliveryRecord>, StoreError> {
        Ok(on_pool!(self, |pool| {
            let mut sql = sqlx::QueryBuilder::new(
                "select id, received_at, source, resource, action, installation_uuid, request_id, headers, body,
                        state, duplicate_count, attempts, last_error, note, processed_at
                 from delivery where id = ",
            );
            sql.push_bind(id);
            push_delivery_scope!(sql, scope);
            sql.build_query_as::<DeliveryRecord>().fetch_optional(pool).await
        })?)
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
            if let Some(state) = filter.state {
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
            push_delivery_scope!(sql, &query.scope);
            sql.push(" order by id desc limit ").push_bind(query.limit);
            sql.build_query_as::<DeliverySummary>().fetch_all(pool).await
        })?;
        Ok(rows)
    }

    /// Every processing attempt of a delivery, oldest first.
    pub async fn delivery_attempts(&self, id: i64) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let sql =
            "select attempt, finished_at, outcome, error from delivery_attempt where delivery_id = $1 order by id";
        let rows = on_pool!(self, |pool| sqlx::query_as::<_, (i64, i64, String, Option<String>)>(sql)
            .bind(id)
            .fetch_all(pool)
            .await)?;
        rows.into_iter()
            .map(|(attempt, finished_at_ms, outcome, error)| {
                let outcome = outcome.parse().map_err(|e| StoreError::Corrupt(format!("delivery {id}: {e}")))?;
                Ok(DeliveryAttempt { attempt, finished_at_ms, outcome, error })
            })
            .collect()
    }
}

#[cfg(feature = "testing")]
impl Store {
    /// Every stored delivery, whoever's.
    pub async fn count_deliveries(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar::<_, i64>("select count(*) from delivery").fetch_one(pool).await)?)
    }

    /// One delivery, whoever's it is.
    pub async fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>, StoreError> {
        self.delivery_in(&OrgScope::Everything, id).await
    }

    /// Whether a delivery with this dedupe key is stored.
    pub async fn has_delivery(&self, dedupe_key: &str) -> Result<bool, StoreError> {
        let sql = "select count(*) from delivery where dedupe_key = $1";
        let count = on_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql).bind(dedupe_key).fetch_one(pool).await)?;
        Ok(count > 0)
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
    /// Kept even for installations not known (yet); parsed at intake, so
    /// an upper-case uuid finds its installation.
    pub installation: Option<InstallationUuid>,
    pub dedupe_key: String,
    /// The headers that matter, as a JSON object; never a secret.
    pub headers: String,
    /// The raw bytes exactly as signed.
    pub body: Vec<u8>,
    /// `pending`, `ignored` (a resource we do not handle) or `invalid`
    /// (not JSON).
    pub state: DeliveryState,
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

/// A page of the delivery log: optional filters, and the id to continue
/// below.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryQuery {
    /// Whose deliveries; the default is nobody's.
    pub scope: OrgScope,
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
        let (state, next_attempt, error, processed_at) = match self {
            Self::Processed => (DeliveryState::Processed, None, None, Some(now)),
            Self::Ignored => (DeliveryState::Ignored, None, None, Some(now)),
            Self::Retry { after_ms, error } => (DeliveryState::Retry, Some(now + after_ms), Some(error.as_str()), None),
            Self::Dead { error } => (DeliveryState::Dead, None, Some(error.as_str()), None),
        };
        (state.as_str(), next_attempt, error, processed_at)
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
    #[sqlx(try_from = "String")]
    pub state: DeliveryState,
    pub duplicate_count: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub note: Option<String>,
    pub processed_at: Option<i64>,
}

impl DeliveryRecord {
    /// The delivery as a row of the log.
    pub fn summary(&self) -> DeliverySummary {
        DeliverySummary {
            id: self.id,
            received_at_ms: self.received_at,
            resource: self.resource.clone(),
            action: self.action.clone(),
            installation: self.installation_uuid.clone(),
            state: self.state,
            attempts: self.attempts,
            duplicates: self.duplicate_count,
            last_error: self.last_error.clone(),
            note: self.note.clone(),
        }
    }

    /// The delivery in full, as the log's detail view shows it.
    pub fn detail(&self, attempts: Vec<DeliveryAttempt>) -> DeliveryDetail {
        DeliveryDetail::new(DeliveryShown {
            summary: self.summary(),
            source: self.source.clone(),
            request_id: self.request_id.clone(),
            headers_json: &self.headers,
            body: &self.body,
            processed_at_ms: self.processed_at,
            attempts,
        })
    }
}

impl ApplyTx {
    /// Records how deliveries went and commits. On PostgreSQL the outcomes
    /// are written in the transaction: one commit. On SQLite the
    /// deliveries live in the inbox file, which this transaction must not
    /// lock (acknowledgements would wait for it), so they are written after
    /// the commit, in a transaction of their own; if the process stops
    /// between the two, the deliveries are applied again, which changes
    /// nothing twice (see [`super::inbox_file`]).
    pub async fn commit_finishing(
        mut self,
        store: &Store,
        finished: &[FinishedDelivery<'_>],
    ) -> Result<(), StoreError> {
        if self.writes_inbox_apart() {
            self.commit().await?;
            store.finish_deliveries(finished).await
        } else {
            write_outcomes(self.conn(), finished).await?;
            self.commit().await
        }
    }
}

/// Each delivery's state and note, and an attempt row each, in two
/// statements however many there are.
async fn write_outcomes(conn: Conn<'_>, finished: &[FinishedDelivery<'_>]) -> Result<(), StoreError> {
    if finished.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let rows: Vec<_> = finished.iter().map(|f| (f, f.outcome.columns(now))).collect();
    on_conn!(conn, |conn| {
        // `values` names its columns column1, column2, … in both dialects.
        let mut update = sqlx::QueryBuilder::new(
            "update delivery set state = v.column2, next_attempt_at = v.column3, last_error = v.column4,
                    processed_at = v.column5, note = v.column6
             from (",
        );
        update.push_values(&rows, |mut row, (f, (state, next_attempt, error, processed_at))| {
            row.push_bind(f.id)
                .push_bind(*state)
                .push_bind(*next_attempt)
                .push_bind(*error)
                .push_bind(*processed_at)
                .push_bind(f.note);
        });
        update.push(") as v where delivery.id = v.column1");
        // Sized by the batch, so not kept prepared (as the inbox's insert).
        update.build().persistent(false).execute(&mut *conn).await?;
        let mut attempts = sqlx::QueryBuilder::new(
            "insert into delivery_attempt (delivery_id, attempt, finished_at, outcome, error) ",
        );
        attempts.push_values(&rows, |mut row, (f, (state, _, error, _))| {
            row.push_bind(f.id).push_bind(f.attempt).push_bind(now).push_bind(*state).push_bind(*error);
        });
        attempts.build().persistent(false).execute(&mut *conn).await.map(|_| ())
    })?;
    Ok(())
}

/// How processing one claimed delivery ended.
#[derive(Debug, Clone)]
pub struct FinishedDelivery<'a> {
    pub id: i64,
    /// Counted from 1, as the claim counted it.
    pub attempt: i64,
    pub outcome: &'a DeliveryOutcome,
    pub note: Option<&'a str>,
}
