//! The per-batch handler of the events worker: embeds the memories that
//! `zeromemory.remembered` / `zerodb.memory.stored` events name, in one model call per
//! account. The SQS-triggered Lambda and zerodb-local's in-process task both call it.

use std::collections::BTreeMap;

use zerodb_domain::events::Event;
use zerodb_domain::{DomainError, Namespace};

use crate::service::{MemoryService, embedding_target};

/// Handles a batch of event bodies; returns how many embeddings it stored. Bodies that
/// are not events, or events it has no work for, are skipped: retrying them cannot help.
/// An error means the whole batch should be retried.
pub async fn process(svc: &MemoryService, bodies: &[String]) -> Result<usize, DomainError> {
    let mut by_account: BTreeMap<String, Vec<(Namespace, String)>> = BTreeMap::new();
    for body in bodies {
        match serde_json::from_str::<Event>(body) {
            Ok(event) => {
                if let Some((account, ns, id)) = embedding_target(&event) {
                    let targets = by_account.entry(account).or_default();
                    if !targets.iter().any(|(_, i)| *i == id) {
                        targets.push((ns, id));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "skipping a queue message that is not an event"),
        }
    }
    let mut stored = 0;
    for (account, targets) in by_account {
        stored += svc.embed_pending(&account, &targets).await?;
    }
    Ok(stored)
}
