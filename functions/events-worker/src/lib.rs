//! The events worker: the one consumer of the events queue, dispatching each write event
//! to every handler that wants it. Today that is embedding new memories in batches (the
//! `auto_embed` path of seed 002) and purging dropped tables and deleted projects a page
//! at a time; the hook executor joins this list. It runs as the
//! SQS-triggered `events-worker` Lambda, and as a task of zerodb-local.

use std::sync::Arc;

use zerodb_domain::Context;
use zerodb_domain::events::{Dispatcher, EventHandler};
use zerodb_domain::queues::QueueName;
use zerodb_domain::work::Worker;
use zerodb_memory::worker::EmbedNewMemories;
use zerodb_projects::purge::Purge;

/// The handlers of write events, over the process's services.
pub async fn handlers(ctx: &Context) -> anyhow::Result<Vec<Arc<dyn EventHandler>>> {
    Ok(vec![
        Arc::new(EmbedNewMemories(zerodb_memory::shared(ctx).await?)),
        Arc::new(Purge {
            table: ctx.stores().table.clone(),
            blobs: ctx.stores().blobs.clone(),
            events: ctx.events().clone(),
        }),
    ])
}

/// The worker of the events queue.
pub fn worker() -> Worker {
    Worker::new(
        "events",
        "events-worker",
        QueueName::Events,
        |ctx| async move { Ok(Dispatcher::new(handlers(&ctx).await?)) },
    )
}
