//! Pending memories a recall of this process is embedding right now, so a concurrent
//! recall of the same namespace waits for that embedding instead of computing it again.
//!
//! A claim lives from the moment a recall takes it until the vector it computed is saved
//! (or the recall is dropped, or its embedding failed): while it lives, a later recall reads
//! the vector from it; once it is gone, the vector is in storage (and the namespace cache).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::vector::StoredVector;

/// (namespace partition, memory id, content hash): a vector belongs to one content.
pub type ClaimKey = (String, String, String);

type Slot = watch::Receiver<Option<StoredVector>>;

/// The claims of one process.
#[derive(Default)]
pub struct Inflight {
    claims: Mutex<HashMap<ClaimKey, Slot>>,
}

/// One memory of a claim request: the caller embeds it and publishes the vector, or waits
/// for the recall that claimed it first.
pub enum Claim {
    Mine(watch::Sender<Option<StoredVector>>),
    Theirs(Slot),
}

/// Releases a recall's claims when dropped.
pub struct ClaimGuard {
    owner: Arc<Inflight>,
    keys: Vec<ClaimKey>,
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        let mut claims = self.owner.lock();
        for k in &self.keys {
            claims.remove(k);
        }
    }
}

impl Inflight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClaimKey, Slot>> {
        // Every change is one insert or remove: a poisoned lock holds a consistent map.
        self.claims.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims each key not claimed yet; one answer per key, in order.
    pub fn claim(self: &Arc<Self>, keys: Vec<ClaimKey>) -> (Vec<Claim>, ClaimGuard) {
        let mut mine = Vec::new();
        let mut claims = self.lock();
        let answers = keys
            .into_iter()
            .map(|k| match claims.get(&k) {
                Some(slot) => Claim::Theirs(slot.clone()),
                None => {
                    let (tx, rx) = watch::channel(None);
                    claims.insert(k.clone(), rx);
                    mine.push(k);
                    Claim::Mine(tx)
                }
            })
            .collect();
        drop(claims);
        (
            answers,
            ClaimGuard {
                owner: self.clone(),
                keys: mine,
            },
        )
    }

    /// How many memories are claimed right now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The vector the claiming recall computed; `None` if it failed or was dropped first.
pub async fn wait(mut slot: Slot) -> Option<StoredVector> {
    slot.wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|v| v.clone())
}
