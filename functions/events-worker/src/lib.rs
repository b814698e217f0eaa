//! The events worker: an SQS-triggered Lambda that handles write events off the request
//! path. Today that is embedding new memories in batches (the `auto_embed` path of seed
//! 002); zerodb-local runs the same handler from its embedded queue.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use zerodb_memory::MemoryService;

/// Handles one SQS batch. The batch is embedded in one model call, so on failure every
/// message is reported failed and retried (then dead-lettered after the queue's limit);
/// the work is idempotent, so retrying what already succeeded costs only time.
pub async fn handle(memory: &MemoryService, event: SqsEvent) -> SqsBatchResponse {
    let bodies: Vec<String> = event
        .records
        .iter()
        .map(|r| r.body.clone().unwrap_or_default())
        .collect();
    let mut response = SqsBatchResponse::default();
    match zerodb_memory::worker::process(memory, &bodies).await {
        Ok(stored) => tracing::info!(events = bodies.len(), stored, "events handled"),
        Err(e) => {
            tracing::error!(error = %e, events = bodies.len(), "handling events failed; the batch will be retried");
            response.batch_item_failures = event
                .records
                .iter()
                .filter_map(|r| r.message_id.clone())
                .map(|id| {
                    let mut f = BatchItemFailure::default();
                    f.item_identifier = id;
                    f
                })
                .collect();
        }
    }
    response
}
