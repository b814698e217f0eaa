//! Queue workers, one recipe: a [`BatchHandler`] takes a batch of messages and names the
//! ones to retry. The same handler runs as an SQS-triggered Lambda (zerodb-lambda's
//! `run_sqs`, reporting partial batch failures) and as a task of zerodb-local
//! ([`run_local`] over the embedded queue). A [`Worker`] says which queue it consumes and
//! which Lambda binary runs it, and builds its handler from the [`Context`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::context::Context;
use crate::queues::QueueName;
use crate::store::{Message, Queue};

/// Handles batches of one queue's messages.
#[async_trait]
pub trait BatchHandler: Send + Sync {
    /// Handles the batch; returns the ids of the messages that should come back for
    /// another try (after their visibility timeout; dead-lettered after the queue's
    /// limit). A message that can never succeed is not returned: retrying cannot help.
    async fn handle(&self, batch: &[Message]) -> Vec<String>;

    /// True while requests are writing what this handler works on, so a process sharing
    /// its cores with them (zerodb-local) waits a little before the next batch.
    fn busy(&self) -> bool {
        false
    }
}

type Build = dyn Fn(Context) -> Pin<Box<dyn Future<Output = anyhow::Result<Arc<dyn BatchHandler>>> + Send>>
    + Send
    + Sync;

/// One queue consumer: its queue, its Lambda binary, and how its handler is built.
#[derive(Clone)]
pub struct Worker {
    name: &'static str,
    binary: &'static str,
    queue: QueueName,
    build: Arc<Build>,
}

impl Worker {
    pub fn new<F, Fut, H>(
        name: &'static str,
        binary: &'static str,
        queue: QueueName,
        build: F,
    ) -> Self
    where
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<H>> + Send + 'static,
        H: BatchHandler + 'static,
    {
        Worker {
            name,
            binary,
            queue,
            build: Arc::new(move |ctx| {
                let fut = build(ctx);
                Box::pin(async move { Ok(Arc::new(fut.await?) as Arc<dyn BatchHandler>) })
            }),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
    /// The Lambda binary (and `template.yaml` function) that runs it on AWS.
    pub fn binary(&self) -> &'static str {
        self.binary
    }
    pub fn queue(&self) -> QueueName {
        self.queue
    }

    /// Its handler, over the context's services.
    pub async fn handler(&self, ctx: &Context) -> anyhow::Result<Arc<dyn BatchHandler>> {
        (self.build)(ctx.clone()).await
    }
}

/// Messages the local driver hands over per batch: small, so a batch takes a fraction of
/// a second on two cores and the process returns to requests quickly.
const LOCAL_BATCH: usize = 40;
/// How long the local driver waits while its handler is busy, and at most in all.
const QUIET: Duration = Duration::from_millis(250);
const MAX_DEFER: Duration = Duration::from_secs(30);
/// Pause when the queue is empty.
const IDLE: Duration = Duration::from_millis(200);

/// Drains `queue` into `handler` forever, as SQS drives a Lambda: a message the handler
/// names comes back after `visibility_secs` and is dead-lettered after the queue's
/// receive limit; every other message is acknowledged.
pub async fn run_local(
    queue: Arc<dyn Queue>,
    handler: Arc<dyn BatchHandler>,
    visibility_secs: u32,
) {
    loop {
        let deferring = Instant::now();
        while handler.busy() && deferring.elapsed() < MAX_DEFER {
            tokio::time::sleep(QUIET).await;
        }
        let mut batch = Vec::new();
        while batch.len() < LOCAL_BATCH {
            match queue.receive(10, visibility_secs).await {
                Ok(m) if m.is_empty() => break,
                Ok(mut m) => batch.append(&mut m),
                Err(e) => {
                    tracing::warn!(error = %e, "receiving from the queue failed");
                    break;
                }
            }
        }
        if batch.is_empty() {
            tokio::time::sleep(IDLE).await;
            continue;
        }
        let failed = handler.handle(&batch).await;
        for m in batch.iter().filter(|m| !failed.contains(&m.id)) {
            if let Err(e) = queue.delete(&m.receipt).await {
                tracing::warn!(error = %e, "acknowledging a message failed; it will be handled again");
            }
        }
        if !failed.is_empty() {
            tracing::warn!(
                failed = failed.len(),
                batch = batch.len(),
                "messages left for another try"
            );
        }
    }
}
