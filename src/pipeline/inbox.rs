//! The durable inbox: every signed delivery is written before it is
//! acknowledged, and concurrent deliveries share one transaction.
//!
//! Requests hand their delivery to one writer task and wait for its word.
//! The writer takes whatever has queued up while the previous batch was
//! committing and writes it all in one transaction: one fsync for many
//! deliveries under load, and no waiting at all when it is quiet.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::store::{DeliveryInsert, NewDelivery, Store, StoreError};

/// Most deliveries written by one transaction.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<DeliveryInsert, String>>;

#[derive(Debug, Clone)]
pub struct Inbox {
    queue: mpsc::Sender<(NewDelivery, Reply)>,
    /// When the writer last wrote a batch, in ms since `started` (never:
    /// `i64::MIN`): the worker yields to the inbox while deliveries are
    /// arriving. A monotonic clock, so a step of the wall clock cannot make
    /// the inbox look busy.
    last_write_ms: Arc<AtomicI64>,
    started: Instant,
}

fn millis_since(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("the store could not take the delivery: {0}")]
    Store(String),
    #[error("the inbox is shut down")]
    Closed,
}

impl Inbox {
    /// Starts the writer task on the current runtime. A body stored less
    /// than `dedupe_window_ms` before is a retry of it.
    pub fn start(store: Store, dedupe_window_ms: i64) -> Self {
        let (queue, mut incoming) = mpsc::channel::<(NewDelivery, Reply)>(4 * MAX_BATCH);
        let started = Instant::now();
        let last_write_ms = Arc::new(AtomicI64::new(i64::MIN));
        let last_write = last_write_ms.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while incoming.recv_many(&mut batch, MAX_BATCH).await > 0 {
                last_write.store(millis_since(started), Ordering::Relaxed);
                let (deliveries, replies): (Vec<NewDelivery>, Vec<Reply>) = batch.drain(..).unzip();
                match store.insert_deliveries_within(&deliveries, dedupe_window_ms).await {
                    Ok(outcomes) => {
                        for (reply, outcome) in replies.into_iter().zip(outcomes) {
                            let _ = reply.send(Ok(outcome));
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, batch = deliveries.len(), "inbox write failed");
                        let message = error.to_string();
                        for reply in replies {
                            let _ = reply.send(Err(message.clone()));
                        }
                    }
                }
            }
        });
        Self { queue, last_write_ms, started }
    }

    /// Whether deliveries arrived within the last `window_ms`.
    pub fn active_within(&self, window_ms: i64) -> bool {
        millis_since(self.started).saturating_sub(self.last_write_ms.load(Ordering::Relaxed)) < window_ms
    }

    /// Returns once the delivery is durable (or known as a duplicate).
    pub async fn submit(&self, delivery: NewDelivery) -> Result<DeliveryInsert, InboxError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send((delivery, reply)).await.map_err(|_| InboxError::Closed)?;
        match answer.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(message)) => Err(InboxError::Store(message)),
            Err(_) => Err(InboxError::Closed),
        }
    }
}

impl From<StoreError> for InboxError {
    fn from(error: StoreError) -> Self {
        Self::Store(error.to_string())
    }
}
