//! The event envelope of seed 002 (`id`, `event`, `channel`, `data`, `timestamp`), sent
//! on the Queue after a write commits (a failed send never fails the write), and the
//! dispatcher that hands each event to the handlers that want it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, rfc3339};
use crate::store::Queue;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub event: String,
    pub channel: String,
    pub data: serde_json::Value,
    pub timestamp: String,
}

/// Publishes events after commit, logging and counting failures instead of returning them.
#[derive(Clone)]
pub struct EventSink {
    queue: Arc<dyn Queue>,
    clock: Arc<dyn Clock>,
    failures: Arc<std::sync::atomic::AtomicU64>,
}

impl EventSink {
    pub fn new(queue: Arc<dyn Queue>, clock: Arc<dyn Clock>) -> Self {
        EventSink {
            queue,
            clock,
            failures: Arc::default(),
        }
    }

    fn bodies(&self, events: Vec<(String, String, serde_json::Value)>) -> Vec<String> {
        let now = rfc3339(self.clock.now());
        events
            .into_iter()
            .filter_map(|(event, channel, data)| {
                serde_json::to_string(&Event {
                    id: crate::ids::prefixed_id("evt"),
                    event,
                    channel,
                    data,
                    timestamp: now.clone(),
                })
                .ok()
            })
            .collect()
    }

    /// Sends the events (in batches of ten); never fails the caller.
    pub async fn emit(&self, events: Vec<(String, String, serde_json::Value)>) {
        let bodies = self.bodies(events);
        for chunk in bodies.chunks(10) {
            if let Err(e) = self.queue.send_batch(chunk.to_vec()).await {
                let total = self
                    .failures
                    .fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed)
                    + chunk.len() as u64;
                tracing::warn!(error = %e, lost = chunk.len(), total_failures = total, "event send failed; the write stands");
            }
        }
    }

    /// Sends the events (in batches of ten) and returns the first failure, for a caller
    /// whose work is lost unless the event is sent: a worker handing the rest of its work
    /// to another event fails (so its own event is delivered again) rather than dropping
    /// it. Batches before a failed one stay sent.
    pub async fn send(
        &self,
        events: Vec<(String, String, serde_json::Value)>,
    ) -> Result<(), crate::store::StoreError> {
        let bodies = self.bodies(events);
        for chunk in bodies.chunks(10) {
            self.queue.send_batch(chunk.to_vec()).await?;
        }
        Ok(())
    }

    /// Events that could not be sent since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// One consumer of write events: the embedding of new memories today, the hook executor
/// next. Handlers are idempotent by event: a batch is retried whole for every handler
/// that failed on it, so one that succeeded may see the same events again.
#[async_trait::async_trait]
pub trait EventHandler: Send + Sync {
    /// Its name, in logs.
    fn name(&self) -> &'static str;
    /// Whether it has work for this event.
    fn wants(&self, event: &Event) -> bool;
    /// Handles the events it wants from one batch; returns how many units of work it did
    /// (for the log). An error retries all of them.
    async fn handle(&self, events: &[&Event]) -> Result<usize, crate::DomainError>;
    /// See [`crate::work::BatchHandler::busy`].
    fn busy(&self) -> bool {
        false
    }
}

/// The events queue's one consumer: decodes each message once and hands every handler
/// the events it wants, so adding a consumer never means a second reader stealing
/// messages from the same queue.
pub struct Dispatcher {
    handlers: Vec<Arc<dyn EventHandler>>,
}

impl Dispatcher {
    pub fn new(handlers: Vec<Arc<dyn EventHandler>>) -> Self {
        Dispatcher { handlers }
    }
}

#[async_trait::async_trait]
impl crate::work::BatchHandler for Dispatcher {
    async fn handle(&self, batch: &[crate::store::Message]) -> Vec<String> {
        let mut events = Vec::with_capacity(batch.len());
        for m in batch {
            match serde_json::from_str::<Event>(&m.body) {
                Ok(e) => events.push((m.id.as_str(), e)),
                // Retrying a message that is not an event cannot help.
                Err(e) => {
                    tracing::warn!(error = %e, message = %m.id, "skipping a queue message that is not an event")
                }
            }
        }
        let mut failed: Vec<String> = Vec::new();
        for handler in &self.handlers {
            let (ids, wanted): (Vec<&str>, Vec<&Event>) = events
                .iter()
                .filter(|(_, e)| handler.wants(e))
                .map(|(id, e)| (*id, e))
                .unzip();
            if wanted.is_empty() {
                continue;
            }
            match handler.handle(&wanted).await {
                Ok(done) => {
                    tracing::info!(
                        handler = handler.name(),
                        events = wanted.len(),
                        done,
                        "events handled"
                    )
                }
                Err(e) => {
                    tracing::error!(handler = handler.name(), events = wanted.len(), error = %e, "handling events failed; they will be retried");
                    for id in ids {
                        if !failed.iter().any(|f| f == id) {
                            failed.push(id.to_owned());
                        }
                    }
                }
            }
        }
        failed
    }

    fn busy(&self) -> bool {
        self.handlers.iter().any(|h| h.busy())
    }
}
