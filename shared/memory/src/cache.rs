//! A process-local cache of whole namespaces, for a process that is the only writer of
//! its storage (zerodb-local). Recall reads a namespace whole; with the cache it reads
//! decoded memories from RAM instead of re-reading and re-decoding them per query.
//!
//! Bounded by bytes, least recently recalled namespace out first. Sizes are counted from
//! each memory's own strings, metadata and vector (a memory may be 50 bytes or 230 KB), and
//! an empty namespace is never cached: recalling millions of distinct empty namespaces
//! leaves the cache empty.
//!
//! Exactness: every write of the repository updates the cached snapshot in place (insert,
//! replace, delete, vector), and a snapshot filled from storage is only kept if no write
//! touched its namespace while it was being read (a generation number per namespace being
//! filled, held only while a read is in flight). Lambdas do not use it: several instances
//! write the same table.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::Value as Json;

use crate::model::Memory;

/// Bytes of memories cached across all namespaces unless configured
/// (`ZERODB_MEMORY_CACHE_BYTES`).
pub const DEFAULT_BUDGET_BYTES: usize = 256 * 1024 * 1024;

type Snapshot = Arc<Vec<Arc<Memory>>>;

struct Cached {
    /// Newest first (descending id), as a namespace query returns them.
    snapshot: Snapshot,
    bytes: usize,
    /// Its position in `State::lru`.
    tick: u64,
}

/// Reads from storage in flight for a namespace that is not cached.
struct Filling {
    generation: u64,
    readers: usize,
}

#[derive(Default)]
struct State {
    cached: HashMap<String, Cached>,
    /// Cached keys by last use, oldest first.
    lru: BTreeMap<u64, String>,
    filling: HashMap<String, Filling>,
    bytes: usize,
    tick: u64,
}

impl State {
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn evict_to(&mut self, budget: usize) {
        while self.bytes > budget {
            let Some((_, key)) = self.lru.pop_first() else {
                return;
            };
            if let Some(c) = self.cached.remove(&key) {
                self.bytes -= c.bytes;
            }
        }
    }

    fn drop_entry(&mut self, key: &str) {
        if let Some(c) = self.cached.remove(key) {
            self.bytes -= c.bytes;
            self.lru.remove(&c.tick);
        }
    }
}

/// What the cache holds right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub namespaces: usize,
    pub bytes: usize,
    pub budget_bytes: usize,
}

pub struct NamespaceCache {
    budget: usize,
    state: Mutex<State>,
}

/// A read of an uncached namespace in flight: pass it to [`NamespaceCache::fill`] with
/// what storage returned. Dropping it (a cancelled read) forgets the read.
pub struct FillTicket {
    cache: Arc<NamespaceCache>,
    key: String,
    generation: u64,
}

impl Drop for FillTicket {
    fn drop(&mut self) {
        let mut s = self.cache.lock();
        if let Some(f) = s.filling.get_mut(&self.key) {
            f.readers -= 1;
            if f.readers == 0 {
                s.filling.remove(&self.key);
            }
        }
    }
}

impl NamespaceCache {
    pub fn new(budget_bytes: usize) -> Self {
        NamespaceCache {
            budget: budget_bytes,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change (each change
        // swaps in a whole new snapshot and its size together), so a poisoned lock is safe
        // to keep using.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached snapshot (now the most recently used) and its bytes, or a ticket to
    /// `fill` after reading storage.
    pub fn get(self: &Arc<Self>, key: &str) -> Result<(Snapshot, usize), FillTicket> {
        let mut s = self.lock();
        let tick = s.next_tick();
        if let Some(c) = s.cached.get_mut(key) {
            let old = std::mem::replace(&mut c.tick, tick);
            let found = (c.snapshot.clone(), c.bytes);
            s.lru.remove(&old);
            s.lru.insert(tick, key.to_owned());
            return Ok(found);
        }
        let f = s.filling.entry(key.to_owned()).or_insert(Filling {
            generation: 0,
            readers: 0,
        });
        f.readers += 1;
        let generation = f.generation;
        Err(FillTicket {
            cache: self.clone(),
            key: key.to_owned(),
            generation,
        })
    }

    /// Keeps a snapshot read from storage, unless a write happened since the ticket was
    /// taken, it is empty, or it alone exceeds the budget; evicts the least recently used
    /// namespaces to make room.
    pub fn fill(&self, ticket: FillTicket, memories: Vec<Arc<Memory>>) {
        if memories.is_empty() {
            return;
        }
        let bytes: usize = memories.iter().map(|m| memory_bytes(m)).sum();
        if bytes > self.budget {
            return;
        }
        let mut s = self.lock();
        let unchanged = s
            .filling
            .get(&ticket.key)
            .is_some_and(|f| f.generation == ticket.generation);
        if !unchanged || s.cached.contains_key(&ticket.key) {
            return;
        }
        let tick = s.next_tick();
        s.lru.insert(tick, ticket.key.clone());
        s.cached.insert(
            ticket.key.clone(),
            Cached {
                snapshot: Arc::new(memories),
                bytes,
                tick,
            },
        );
        s.bytes += bytes;
        s.evict_to(self.budget);
    }

    /// Applies a committed write to the namespace's snapshot, if one is cached, and makes
    /// reads of it in flight discard what they read. `change` returns how many bytes it
    /// added (negative: removed), so a write costs its own memory's size, not a walk of
    /// the namespace; the snapshot is copied only if a recall still holds it.
    fn apply(&self, key: &str, change: impl FnOnce(&mut Vec<Arc<Memory>>) -> isize) {
        let mut s = self.lock();
        if let Some(f) = s.filling.get_mut(key) {
            f.generation += 1;
        }
        let Some(c) = s.cached.get_mut(key) else {
            return;
        };
        let v = Arc::make_mut(&mut c.snapshot);
        let delta = change(v);
        let empty = v.is_empty();
        let old = c.bytes;
        c.bytes = old.saturating_add_signed(delta);
        let new = c.bytes;
        s.bytes = s.bytes - old + new;
        if empty {
            s.drop_entry(key);
        }
        s.evict_to(self.budget);
    }

    /// A new or replaced memory, kept in newest-first order.
    pub fn put(&self, key: &str, m: &Memory) {
        let m = Arc::new(m.clone());
        self.apply(key, |v| {
            let added = memory_bytes(&m) as isize;
            match v.binary_search_by(|x| m.id.cmp(&x.id)) {
                Ok(i) => {
                    let old: Arc<Memory> = std::mem::replace(&mut v[i], m);
                    added - memory_bytes(&old) as isize
                }
                Err(i) => {
                    v.insert(i, m);
                    added
                }
            }
        });
    }

    pub fn remove(&self, key: &str, id: &str) {
        self.apply(key, |v| match v.binary_search_by(|x| id.cmp(&x.id)) {
            Ok(i) => -(memory_bytes(&v.remove(i)) as isize),
            Err(_) => 0,
        });
    }

    /// A vector saved for the memory with this content.
    pub fn set_vector(&self, key: &str, m: &Memory, vector: &crate::vector::StoredVector) {
        self.apply(key, |v| match v.binary_search_by(|x| m.id.cmp(&x.id)) {
            Ok(i) if v[i].content_hash == m.content_hash => {
                let x = Arc::make_mut(&mut v[i]);
                let before = memory_bytes(x) as isize;
                x.vector = Some(vector.clone());
                memory_bytes(x) as isize - before
            }
            _ => 0,
        });
    }

    pub fn stats(&self) -> CacheStats {
        let s = self.lock();
        CacheStats {
            namespaces: s.cached.len(),
            bytes: s.bytes,
            budget_bytes: self.budget,
        }
    }
}

/// What one cached memory costs in RAM, roughly but from its real sizes: the record, its
/// strings, tags, metadata and vector, and the pointer to it.
pub fn memory_bytes(m: &Memory) -> usize {
    const STRING: usize = std::mem::size_of::<String>();
    std::mem::size_of::<Memory>()
        + 2 * std::mem::size_of::<usize>() // the Arc's counts
        + std::mem::size_of::<Arc<Memory>>()
        + m.id.len()
        + m.content.len()
        + m.content_hash.len()
        + m.tags.iter().map(|t| STRING + t.len()).sum::<usize>()
        + m.entity_id.as_ref().map_or(0, String::len)
        + m.metadata
            .iter()
            .map(|(k, v)| STRING + k.len() + json_bytes(v))
            .sum::<usize>()
        + m.vector
            .as_ref()
            .map_or(0, |v| v.model.len() + v.bytes.len())
}

fn json_bytes(v: &Json) -> usize {
    std::mem::size_of::<Json>()
        + match v {
            Json::String(s) => s.len(),
            Json::Array(a) => a.iter().map(json_bytes).sum(),
            Json::Object(o) => o
                .iter()
                .map(|(k, v)| std::mem::size_of::<String>() + k.len() + json_bytes(v))
                .sum(),
            _ => 0,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerodb_domain::Namespace;

    fn memory(id: &str, content: &str) -> Arc<Memory> {
        Arc::new(Memory {
            id: id.to_owned(),
            namespace: Namespace::parse("global").unwrap(),
            content: content.to_owned(),
            memory_type: Default::default(),
            importance: 0.5,
            tags: Vec::new(),
            entity_id: None,
            metadata: Default::default(),
            created_at: 0,
            updated_at: 0,
            content_hash: String::new(),
            vector: None,
        })
    }

    fn fill(cache: &Arc<NamespaceCache>, key: &str, memories: Vec<Arc<Memory>>) {
        match cache.get(key) {
            Ok(_) => panic!("{key} was cached already"),
            Err(ticket) => cache.fill(ticket, memories),
        }
    }

    #[test]
    fn sizes_count_the_content() {
        let small = memory_bytes(&memory("m1", "x"));
        let big = memory_bytes(&memory("m1", &"x".repeat(230_000)));
        assert_eq!(big - small, 229_999);
    }

    #[test]
    fn empty_namespaces_are_not_cached_and_leave_nothing_behind() {
        let cache = Arc::new(NamespaceCache::new(1 << 20));
        for i in 0..10_000 {
            fill(&cache, &format!("ns{i}"), Vec::new());
        }
        let s = cache.lock();
        assert_eq!((s.cached.len(), s.filling.len(), s.lru.len()), (0, 0, 0));
    }

    #[test]
    fn the_least_recently_used_namespace_goes_first_and_bytes_stay_in_budget() {
        let one = memory_bytes(&memory("m1", &"x".repeat(1000)));
        let cache = Arc::new(NamespaceCache::new(3 * one));
        for key in ["a", "b", "c"] {
            fill(&cache, key, vec![memory("m1", &"x".repeat(1000))]);
        }
        assert!(cache.get("a").is_ok(), "a recalled again: now the newest");
        fill(&cache, "d", vec![memory("m1", &"x".repeat(1000))]);
        assert!(cache.get("b").is_err(), "b was the least recently used");
        assert!(cache.get("a").is_ok() && cache.get("c").is_ok() && cache.get("d").is_ok());
        assert!(cache.stats().bytes <= 3 * one);
        // A namespace larger than the whole budget is served, not cached.
        fill(&cache, "huge", vec![memory("m1", &"x".repeat(4 * one))]);
        assert!(cache.get("huge").is_err());
        // Growing a cached namespace past the budget evicts.
        cache.put("a", &memory("m2", &"y".repeat(1000)));
        cache.put("a", &memory("m3", &"y".repeat(1000)));
        assert!(cache.stats().bytes <= 3 * one, "{:?}", cache.stats());
    }

    /// The byte count a write adjusts by its own memory's size stays what counting the
    /// whole snapshot gives.
    #[test]
    fn bytes_follow_puts_replacements_removals_and_vectors() {
        let cache = Arc::new(NamespaceCache::new(1 << 20));
        fill(&cache, "a", vec![memory("m5", "five"), memory("m1", "one")]);
        cache.put("a", &memory("m3", &"three".repeat(50)));
        cache.put("a", &memory("m5", "five again, longer"));
        cache.remove("a", "m1");
        cache.remove("a", "m9");
        let mut m3 = Memory::clone(&memory("m3", &"three".repeat(50)));
        let v = crate::vector::StoredVector::encode("lexical", &[0.5; 8]);
        cache.set_vector("a", &m3, &v);
        m3.vector = Some(v);
        let Ok((snapshot, bytes)) = cache.get("a") else {
            panic!("cached")
        };
        let ids: Vec<&str> = snapshot.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["m5", "m3"]);
        assert!(snapshot[1].vector.is_some());
        let counted: usize = snapshot.iter().map(|m| memory_bytes(m)).sum();
        assert_eq!((cache.stats().bytes, bytes), (counted, counted));
        // Emptied, the namespace leaves the cache and its bytes with it.
        cache.remove("a", "m5");
        cache.remove("a", "m3");
        assert_eq!(
            cache.stats(),
            CacheStats {
                namespaces: 0,
                bytes: 0,
                budget_bytes: 1 << 20
            }
        );
    }

    #[test]
    fn a_write_during_a_fill_discards_the_fill() {
        let cache = Arc::new(NamespaceCache::new(1 << 20));
        let Err(ticket) = cache.get("a") else {
            panic!("empty cache")
        };
        cache.put("a", &memory("m2", "new"));
        cache.fill(ticket, vec![memory("m1", "old")]);
        assert!(cache.get("a").is_err());
    }
}
