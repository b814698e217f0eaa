//! A process-local cache of whole namespaces, for a process that is the only writer of
//! its storage (zerodb-local). Recall reads a namespace whole; with the cache it reads
//! decoded memories from RAM instead of re-reading and re-decoding them per query.
//!
//! Exactness: every write of the repository updates the cached snapshot in place (insert,
//! replace, delete, vector), and a snapshot filled from storage is only kept if no write
//! touched its namespace while it was being read (a generation number per namespace).
//! Lambdas do not use it: several instances write the same table.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::model::Memory;

/// Cached memories across all namespaces before the cache starts over, about 1 KB each.
const MAX_CACHED: usize = 500_000;

type Snapshot = Arc<Vec<Arc<Memory>>>;

#[derive(Default)]
struct Entry {
    generation: u64,
    /// Newest first (descending id), as a namespace query returns them.
    snapshot: Option<Snapshot>,
}

#[derive(Default)]
pub struct NamespaceCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl NamespaceCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave a half-applied change (each change
        // swaps in a whole new snapshot), so a poisoned lock is safe to keep using.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached snapshot, or the generation to pass to `fill` after reading storage.
    pub fn get(&self, key: &str) -> Result<Snapshot, u64> {
        let mut map = self.lock();
        let e = map.entry(key.to_owned()).or_default();
        e.snapshot.clone().ok_or(e.generation)
    }

    /// Keeps a snapshot read from storage, unless a write happened since `generation`.
    pub fn fill(&self, key: &str, generation: u64, memories: Vec<Arc<Memory>>) {
        let mut map = self.lock();
        let cached: usize = map
            .values()
            .filter_map(|e| e.snapshot.as_ref().map(|s| s.len()))
            .sum();
        if cached + memories.len() > MAX_CACHED {
            for e in map.values_mut() {
                e.snapshot = None;
            }
        }
        let e = map.entry(key.to_owned()).or_default();
        if e.generation == generation {
            e.snapshot = Some(Arc::new(memories));
        }
    }

    /// Applies a committed write to the namespace's snapshot, if one is cached.
    fn apply(&self, key: &str, change: impl FnOnce(&mut Vec<Arc<Memory>>)) {
        let mut map = self.lock();
        let e = map.entry(key.to_owned()).or_default();
        e.generation += 1;
        if let Some(s) = &e.snapshot {
            let mut next = Vec::clone(s);
            change(&mut next);
            e.snapshot = Some(Arc::new(next));
        }
    }

    /// A new or replaced memory, kept in newest-first order.
    pub fn put(&self, key: &str, m: &Memory) {
        let m = Arc::new(m.clone());
        self.apply(key, |v| match v.binary_search_by(|x| m.id.cmp(&x.id)) {
            Ok(i) => v[i] = m,
            Err(i) => v.insert(i, m),
        });
    }

    pub fn remove(&self, key: &str, id: &str) {
        self.apply(key, |v| v.retain(|x| x.id != id));
    }

    /// A vector saved for the memory with this content.
    pub fn set_vector(&self, key: &str, m: &Memory, vector: &crate::vector::StoredVector) {
        self.apply(key, |v| {
            if let Some(x) = v
                .iter_mut()
                .find(|x| x.id == m.id && x.content_hash == m.content_hash)
            {
                Arc::make_mut(x).vector = Some(vector.clone());
            }
        });
    }
}
