//! zerodb-local's events worker: drains the events queue in batches and hands them to the
//! same handler the SQS-triggered Lambda runs, so memories are embedded off the request
//! path here too.

use std::sync::Arc;
use std::time::Duration;

use zerodb_domain::store::Queue;
use zerodb_memory::MemoryService;

/// Messages handled per call (one model call embeds their memories). Small enough that a
/// batch takes a fraction of a second on two cores, so the worker yields to requests
/// quickly.
const BATCH: usize = 40;
/// zerodb-local shares its cores between requests and the model. While memories are
/// being written the worker waits (up to `MAX_DEFER`), so a burst of writes is not slowed
/// by embedding; recall embeds whatever is still pending, so waiting loses nothing.
const QUIET: Duration = Duration::from_millis(250);
const MAX_DEFER: Duration = Duration::from_secs(30);
/// How long a message stays hidden while a batch is handled; unacknowledged, it returns.
const VISIBILITY_SECS: u32 = 120;
/// Pause when the queue is empty. The worker is an optimisation (recall embeds whatever
/// is pending), so a short delay costs nothing but idle reads.
const IDLE: Duration = Duration::from_millis(200);

pub async fn run(queue: Arc<dyn Queue>, memory: MemoryService) {
    loop {
        let deferring = std::time::Instant::now();
        while memory.millis_since_last_write() < QUIET.as_millis() as i64
            && deferring.elapsed() < MAX_DEFER
        {
            tokio::time::sleep(QUIET).await;
        }
        let mut messages = Vec::new();
        while messages.len() < BATCH {
            match queue.receive(10, VISIBILITY_SECS).await {
                Ok(m) if m.is_empty() => break,
                Ok(mut m) => messages.append(&mut m),
                Err(e) => {
                    tracing::warn!(error = %e, "receiving events failed");
                    break;
                }
            }
        }
        if messages.is_empty() {
            tokio::time::sleep(IDLE).await;
            continue;
        }
        let bodies: Vec<String> = messages.iter().map(|m| m.body.clone()).collect();
        match zerodb_memory::worker::process(&memory, &bodies).await {
            Ok(stored) => {
                tracing::debug!(events = bodies.len(), stored, "events handled");
                for m in &messages {
                    if let Err(e) = queue.delete(&m.receipt).await {
                        tracing::warn!(error = %e, "acknowledging an event failed; it will be handled again");
                    }
                }
            }
            // Left unacknowledged: the messages come back after the visibility timeout,
            // and dead-letter after repeated failures.
            Err(e) => tracing::warn!(error = %e, events = bodies.len(), "handling events failed"),
        }
    }
}
