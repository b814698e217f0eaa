//! The events worker: the one consumer of the events queue, dispatching each write event
//! to every handler that wants it. Today that is embedding new memories in batches (the
//! `auto_embed` path of seed 002) and purging dropped tables and deleted projects a page
//! at a time; the hook executor joins this list. It runs as the
//! SQS-triggered `events-worker` Lambda, and as a task of zerodb-local.

use std::sync::Arc;

use zerodb_domain::Context;
use zerodb_domain::events::{Dispatcher, EventHandler, EventSink};
use zerodb_domain::queues::QueueName;
use zerodb_domain::work::Worker;
use zerodb_memory::worker::EmbedNewMemories;
use zerodb_projects::purge::{self, Purge};

/// The handlers of write events, over the process's services.
pub async fn handlers(ctx: &Context) -> anyhow::Result<Vec<Arc<dyn EventHandler>>> {
    Ok(vec![
        Arc::new(EmbedNewMemories(zerodb_memory::shared(ctx).await?)),
        Arc::new(Purge::new(ctx.stores(), ctx.events().clone())),
        Arc::new(PurgeProjectMemory::new(
            zerodb_memory::shared(ctx).await?,
            ctx.events().clone(),
        )),
    ])
}

/// Memories forgotten per purge event before the rest is handed to the next one.
pub const MEMORY_PURGE_BUDGET: usize = 5000;

/// A deleted project's memories (namespace `project:<id>`), forgotten through the memory
/// service so its indexes and caches forget them too: at most `budget` per event, then
/// the event is sent again (stage `memory`, which only this handler takes) while
/// memories remain.
pub struct PurgeProjectMemory {
    pub memory: zerodb_memory::MemoryService,
    pub events: EventSink,
    pub budget: usize,
}

impl PurgeProjectMemory {
    pub fn new(memory: zerodb_memory::MemoryService, events: EventSink) -> Self {
        PurgeProjectMemory {
            memory,
            events,
            budget: MEMORY_PURGE_BUDGET,
        }
    }
}

#[async_trait::async_trait]
impl EventHandler for PurgeProjectMemory {
    fn name(&self) -> &'static str {
        "purge project memory"
    }

    fn wants(&self, e: &zerodb_domain::events::Event) -> bool {
        // The whole project's purge (a dropped table's names a table): its first event,
        // and this handler's own continuations, never the table purge's.
        e.event == purge::PURGE_EVENT
            && e.data.get("table").is_none_or(|t| t.is_null())
            && matches!(purge::stage(e), None | Some(purge::STAGE_MEMORY))
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
            let (forgotten, more) = self
                .memory
                .forget_where_bounded(&owner, &ns, &[], self.budget)
                .await?;
            done += forgotten;
            if more {
                tracing::info!(project_id = %project, forgotten, "memory purge goes on in another event");
                // Unsent, the rest would never be forgotten: fail, so this event is
                // delivered again.
                self.events
                    .send(vec![purge::continuation(e, purge::STAGE_MEMORY)])
                    .await
                    .map_err(|err| {
                        zerodb_domain::DomainError::Unexpected(anyhow::anyhow!(
                            "the memory purge of project {project} could not hand on its remaining work: {err}"
                        ))
                    })?;
            }
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
