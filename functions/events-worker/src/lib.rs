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
        Arc::new(PurgeProjectMemory(zerodb_memory::shared(ctx).await?)),
    ])
}

/// A deleted project's memories (namespace `project:<id>`), forgotten through the memory
/// service so its indexes and caches forget them too.
pub struct PurgeProjectMemory(pub zerodb_memory::MemoryService);

#[async_trait::async_trait]
impl EventHandler for PurgeProjectMemory {
    fn name(&self) -> &'static str {
        "purge project memory"
    }

    fn wants(&self, e: &zerodb_domain::events::Event) -> bool {
        // The whole project's purge (a dropped table's names a table).
        e.event == zerodb_projects::purge::PURGE_EVENT && e.data.get("table").is_none_or(|t| t.is_null())
    }

    async fn handle(
        &self,
        events: &[&zerodb_domain::events::Event],
    ) -> Result<usize, zerodb_domain::DomainError> {
        let mut done = 0;
        for e in events {
            let field = |k: &str| e.data.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            let (Some(account), Some(project)) = (field("account_id"), field("project_id")) else {
                continue;
            };
            let Ok(ns) = zerodb_domain::Namespace::parse(&format!("project:{project}")) else {
                continue;
            };
            // The worker acts for the account that deleted the project.
            let owner = zerodb_domain::auth::Principal {
                account_id: account,
                key_id: "purge".into(),
                scopes: zerodb_domain::scope::ScopeSet::root(),
                expires_at: None,
                via_token: false,
                rate_bucket: String::new(),
            };
            done += self.0.forget_where(&owner, &ns, &[]).await?;
        }
        Ok(done)
    }
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
