//! The event envelope of seed 002 (`id`, `event`, `channel`, `data`, `timestamp`), sent
//! on the Queue after a write commits. A failed send never fails the write.

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

    /// Sends the events (in batches of ten); never fails the caller.
    pub async fn emit(&self, events: Vec<(String, String, serde_json::Value)>) {
        let now = rfc3339(self.clock.now());
        let bodies: Vec<String> = events
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
            .collect();
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

    /// Events that could not be sent since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }
}
