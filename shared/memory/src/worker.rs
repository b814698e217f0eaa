//! The event handler that embeds new memories: the memories that
//! `zeromemory.remembered` / `zerodb.memory.stored` events name, in one model call per
//! account. It runs on the events dispatcher, in the events-worker Lambda and in
//! zerodb-local alike.

use std::collections::BTreeMap;

use zerodb_domain::events::{Event, EventHandler};
use zerodb_domain::{DomainError, Namespace};

use crate::service::{MemoryService, embedding_target};

/// While memories were written this recently, zerodb-local's worker waits: a burst of
/// writes is not slowed by embedding, and recall embeds whatever is still pending.
const QUIET_MILLIS: i64 = 250;

/// Embeds the memories new-memory events name.
pub struct EmbedNewMemories(pub MemoryService);

#[async_trait::async_trait]
impl EventHandler for EmbedNewMemories {
    fn name(&self) -> &'static str {
        "embed new memories"
    }

    fn wants(&self, event: &Event) -> bool {
        embedding_target(event).is_some()
    }

    /// Embeds in one model call per account; an error retries the whole batch (the work
    /// is idempotent, so retrying what already succeeded costs only time).
    async fn handle(&self, events: &[&Event]) -> Result<usize, DomainError> {
        let mut by_account: BTreeMap<String, Vec<(Namespace, String)>> = BTreeMap::new();
        for event in events {
            if let Some((account, ns, id)) = embedding_target(event) {
                let targets = by_account.entry(account).or_default();
                if !targets.iter().any(|(_, i)| *i == id) {
                    targets.push((ns, id));
                }
            }
        }
        let mut stored = 0;
        for (account, targets) in by_account {
            stored += self.0.embed_pending(&account, &targets).await?;
        }
        Ok(stored)
    }

    fn busy(&self) -> bool {
        self.0.millis_since_last_write() < QUIET_MILLIS
    }
}
