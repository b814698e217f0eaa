//! Memory records in the Table, in the key design production uses:
//!
//! | Item | PK | SK | GSI1PK / GSI1SK |
//! |---|---|---|---|
//! | memory | `MEM#<account>#<namespace>` | `M#<memory id>` | `MENT#<account>#<entity>` / `<memory id>` (when it names an entity) |
//! | id pointer | `MEMID#<account>#<memory id>` | `MEMID` | – |
//!
//! One partition per namespace: recall and session cleanup read exactly the memories they
//! need, newest first (ids are time-ordered), a page at a time. The pointer finds a memory
//! from its id alone (forget by id, batch update) with one strongly consistent read; it is
//! written and deleted in the same transaction as the memory, so neither exists without
//! the other.

use std::sync::Arc;

use serde_json::{Map, Value as Json};
use zerodb_domain::Namespace;
use zerodb_domain::store::{
    Condition, Cursor, GSI1PK, GSI1SK, Index, Item, Key, Query, StoreError, Table, TxOp, Update,
    Value,
};

use zerodb_domain::keys;

use crate::model::{Memory, MemoryType};
use crate::vector::StoredVector;

/// Items per query page: enough to fill DynamoDB's 1 MB page with small memories.
pub const DEFAULT_PAGE: usize = 1000;

pub fn partition(account: &str, ns: &Namespace) -> String {
    keys::memory_partition(account, &ns.to_string())
}
fn memory_key(account: &str, ns: &Namespace, id: &str) -> Key {
    keys::memory(account, &ns.to_string(), id)
}
fn pointer_key(account: &str, id: &str) -> Key {
    keys::memory_pointer(account, id)
}
fn entity_partition(account: &str, entity_norm: &str) -> String {
    keys::memory_entity_index(account, entity_norm)
}

fn s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// A memory as a Table item.
pub fn to_item(account: &str, m: &Memory) -> Item {
    let mut item = memory_key(account, &m.namespace, &m.id).item();
    item.insert("id".into(), Value::S(m.id.clone()));
    item.insert("ns".into(), Value::S(m.namespace.to_string()));
    item.insert("content".into(), Value::S(m.content.clone()));
    item.insert("ch".into(), Value::S(m.content_hash.clone()));
    item.insert("type".into(), Value::S(m.memory_type.as_str().into()));
    item.insert("imp".into(), Value::float(m.importance));
    item.insert(
        "tags".into(),
        Value::L(m.tags.iter().cloned().map(Value::S).collect()),
    );
    if let Some(e) = &m.entity_id {
        item.insert("ent".into(), Value::S(e.clone()));
        item.insert(
            GSI1PK.into(),
            Value::S(entity_partition(account, &crate::model::normalize_name(e))),
        );
        item.insert(GSI1SK.into(), Value::S(m.id.clone()));
    }
    if !m.metadata.is_empty() {
        item.insert(
            "meta".into(),
            Value::S(Json::Object(m.metadata.clone()).to_string()),
        );
    }
    item.insert("at".into(), Value::int(m.created_at));
    item.insert("upd".into(), Value::int(m.updated_at));
    if let Some(v) = &m.vector {
        item.insert("vec".into(), Value::B(v.bytes.clone()));
        item.insert("vm".into(), Value::S(v.model.clone()));
    }
    item
}

/// Reads a memory item; `None` for anything that is not one (never panics on old or
/// foreign items).
pub fn from_item(item: &Item) -> Option<Memory> {
    let namespace = Namespace::parse(&s(item, "ns")?).ok()?;
    let metadata = s(item, "meta")
        .and_then(|t| serde_json::from_str::<Map<String, Json>>(&t).ok())
        .unwrap_or_default();
    let vector = match (item.get("vec").and_then(Value::as_bytes), s(item, "vm")) {
        (Some(b), Some(model)) => Some(StoredVector {
            model,
            bytes: b.to_vec(),
        }),
        _ => None,
    };
    Some(Memory {
        id: s(item, "id")?,
        namespace,
        content: s(item, "content")?,
        memory_type: s(item, "type")
            .and_then(|t| MemoryType::parse(&t).ok())
            .unwrap_or_default(),
        importance: item.get("imp").and_then(Value::as_f64).unwrap_or(0.5),
        tags: item
            .get("tags")
            .and_then(Value::as_list)
            .map(|l| {
                l.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        entity_id: s(item, "ent"),
        metadata,
        created_at: item.get("at").and_then(Value::as_i64).unwrap_or(0),
        updated_at: item.get("upd").and_then(Value::as_i64).unwrap_or(0),
        content_hash: s(item, "ch").unwrap_or_default(),
        vector,
    })
}

/// Every item a query returns, page after page, up to `max`.
pub(crate) async fn query_all(
    table: &dyn Table,
    query: Query,
    max: usize,
) -> Result<Vec<Item>, StoreError> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = table.query(query.clone().after(cursor)).await?;
        out.extend(page.items);
        if out.len() >= max || page.cursor.is_none() {
            out.truncate(max);
            return Ok(out);
        }
        cursor = page.cursor;
    }
}

/// The writes that create a memory: the record and its id pointer, both new.
fn insert_ops(account: &str, m: &Memory) -> [TxOp; 2] {
    let mut pointer = pointer_key(account, &m.id).item();
    pointer.insert("ns".into(), Value::S(m.namespace.to_string()));
    [
        TxOp::Put {
            item: to_item(account, m),
            condition: Some(Condition::NotExists),
        },
        TxOp::Put {
            item: pointer,
            condition: Some(Condition::NotExists),
        },
    ]
}

/// The memory repository of one deployment.
#[derive(Clone)]
pub struct MemoryRepo {
    table: Arc<dyn Table>,
    page: usize,
    cache: Option<Arc<crate::cache::NamespaceCache>>,
}

impl MemoryRepo {
    pub fn new(table: Arc<dyn Table>) -> Self {
        MemoryRepo {
            table,
            page: DEFAULT_PAGE,
            cache: None,
        }
    }

    /// Stores a new memory and its id pointer, atomically, and counts it on the entity it
    /// names.
    pub async fn insert(&self, account: &str, m: &Memory) -> Result<(), StoreError> {
        self.table.transact(insert_ops(account, m).to_vec()).await?;
        self.cached(account, &m.namespace, |c, k| c.put(k, m));
        if let Some(e) = &m.entity_id {
            self.count_on_entity(account, e, 1).await;
        }
        Ok(())
    }

    /// Moves an entity's memory count (kept on the entity so listing entities reads no
    /// memories). After the memory's own write, not in its transaction: a batch's
    /// transaction is full of memories, and DynamoDB refuses two operations on one item
    /// (many memories naming one entity) in a transaction. A failure here is logged, and
    /// the memory stands.
    pub(crate) async fn count_on_entity(&self, account: &str, entity: &str, delta: i64) {
        let graph = crate::graph::GraphRepo::new(self.table.clone());
        if let Err(e) = graph.add_memory_count(account, entity, delta).await {
            tracing::warn!(error = %e, "moving an entity's memory count failed");
        }
    }

    /// The same repository keeping whole namespaces in memory (see `cache.rs`): only for
    /// a process that is the only writer of its storage.
    pub fn with_cache(mut self, budget_bytes: usize) -> Self {
        self.cache = Some(Arc::new(crate::cache::NamespaceCache::new(budget_bytes)));
        self
    }

    /// What the namespace cache holds, when there is one.
    pub fn cache_stats(&self) -> Option<crate::cache::CacheStats> {
        self.cache.as_ref().map(|c| c.stats())
    }

    fn cached(
        &self,
        account: &str,
        ns: &Namespace,
        change: impl FnOnce(&crate::cache::NamespaceCache, &str),
    ) {
        if let Some(c) = &self.cache {
            change(c, &partition(account, ns));
        }
    }

    /// The same repository reading `page` items per query (tests page through small
    /// pages without writing thousands of items).
    pub fn with_page_size(mut self, page: usize) -> Self {
        self.page = page.max(1);
        self
    }

    /// Inserts many new memories, up to 50 (and about 3 MB) to a transaction, a few
    /// transactions at once. Returns one result per memory; a transaction that fails
    /// (an id already taken) is retried one memory at a time, so one bad record fails alone.
    pub async fn insert_many(
        &self,
        account: &str,
        memories: &[Memory],
    ) -> Result<Vec<Result<(), String>>, StoreError> {
        use futures::StreamExt;
        // DynamoDB caps a transaction at 100 operations and 4 MB.
        const TX_BYTES: usize = 3 * 1024 * 1024;
        let mut chunks: Vec<std::ops::Range<usize>> = Vec::new();
        let (mut start, mut bytes) = (0, 0);
        for (i, m) in memories.iter().enumerate() {
            let size = m.content.len() + 1024;
            if i > start && (i - start == 50 || bytes + size > TX_BYTES) {
                chunks.push(start..i);
                start = i;
                bytes = 0;
            }
            bytes += size;
        }
        if start < memories.len() {
            chunks.push(start..memories.len());
        }
        let results: Vec<Result<Vec<Result<(), String>>, StoreError>> =
            futures::stream::iter(chunks)
                .map(|range| {
                    let (repo, account) = (self.clone(), account.to_owned());
                    let batch: Vec<Memory> = memories[range].to_vec();
                    async move { repo.insert_chunk(&account, &batch).await }
                })
                // One transaction at a time: moto (the tests' DynamoDB) copies the whole
                // table per transaction and breaks under concurrent ones, and 10 sequential
                // transactions per 500 records cost DynamoDB little.
                .buffered(1)
                .collect()
                .await;
        let mut out = Vec::with_capacity(memories.len());
        for r in results {
            out.extend(r?);
        }
        Ok(out)
    }

    async fn insert_chunk(
        &self,
        account: &str,
        batch: &[Memory],
    ) -> Result<Vec<Result<(), String>>, StoreError> {
        {
            let ops = batch.iter().flat_map(|m| insert_ops(account, m)).collect();
            match self.table.transact(ops).await {
                Ok(()) => {
                    for m in batch {
                        self.cached(account, &m.namespace, |c, k| c.put(k, m));
                    }
                    let mut per_entity: std::collections::BTreeMap<String, i64> =
                        Default::default();
                    for e in batch.iter().filter_map(|m| m.entity_id.as_deref()) {
                        *per_entity
                            .entry(crate::model::normalize_name(e))
                            .or_default() += 1;
                    }
                    for (e, n) in per_entity {
                        self.count_on_entity(account, &e, n).await;
                    }
                    Ok(vec![Ok(()); batch.len()])
                }
                Err(StoreError::Conflict) => {
                    let mut one_by_one = Vec::with_capacity(batch.len());
                    for m in batch {
                        one_by_one.push(match self.insert(account, m).await {
                            Ok(()) => Ok(()),
                            Err(StoreError::Conflict) => {
                                Err(format!("memory id '{}' is already taken", m.id))
                            }
                            Err(e) => return Err(e),
                        });
                    }
                    Ok(one_by_one)
                }
                Err(e) => Err(e),
            }
        }
    }

    /// Replaces a memory that exists (batch upsert and update).
    pub async fn replace(&self, account: &str, m: &Memory) -> Result<(), StoreError> {
        self.table
            .put(to_item(account, m), Some(Condition::Exists))
            .await?;
        self.cached(account, &m.namespace, |c, k| c.put(k, m));
        Ok(())
    }

    /// The namespace a memory id lives in, if the id is this account's.
    pub async fn locate(&self, account: &str, id: &str) -> Result<Option<Namespace>, StoreError> {
        Ok(self
            .table
            .get(&pointer_key(account, id))
            .await?
            .and_then(|i| s(&i, "ns"))
            .and_then(|ns| Namespace::parse(&ns).ok()))
    }

    pub async fn get(
        &self,
        account: &str,
        ns: &Namespace,
        id: &str,
    ) -> Result<Option<Memory>, StoreError> {
        Ok(self
            .table
            .get(&memory_key(account, ns, id))
            .await?
            .as_ref()
            .and_then(from_item))
    }

    /// Finds a memory by id alone: pointer, then record.
    pub async fn find(&self, account: &str, id: &str) -> Result<Option<Memory>, StoreError> {
        match self.locate(account, id).await? {
            Some(ns) => self.get(account, &ns, id).await,
            None => Ok(None),
        }
    }

    /// Deletes memories and their pointers, 16 at a time; returns how many were there.
    /// Not one transaction: the record goes first, so a failure can only leave a pointer
    /// to nothing, which reads as "not found". Plain deletes also cost DynamoDB half the
    /// write units of transactional ones.
    pub async fn delete_many(
        &self,
        account: &str,
        targets: &[(Namespace, String)],
    ) -> Result<usize, StoreError> {
        use futures::StreamExt;
        let results: Vec<Result<bool, StoreError>> = futures::stream::iter(targets.to_vec())
            .map(|(ns, id)| {
                let (repo, account) = (self.clone(), account.to_owned());
                async move { repo.delete(&account, &ns, &id).await }
            })
            .buffered(16)
            .collect()
            .await;
        let mut deleted = 0;
        for r in results {
            deleted += usize::from(r?);
        }
        Ok(deleted)
    }

    /// Deletes one memory; false when it was not there.
    pub async fn delete(
        &self,
        account: &str,
        ns: &Namespace,
        id: &str,
    ) -> Result<bool, StoreError> {
        let old = self
            .table
            .delete(&memory_key(account, ns, id), None)
            .await?;
        self.cached(account, ns, |c, k| c.remove(k, id));
        self.table.delete(&pointer_key(account, id), None).await?;
        if let Some(e) = old.as_ref().and_then(|i| s(i, "ent")) {
            self.count_on_entity(account, &e, -1).await;
        }
        Ok(old.is_some())
    }

    /// One page of a namespace, newest first.
    pub async fn page(
        &self,
        account: &str,
        ns: &Namespace,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<Memory>, Option<Cursor>), StoreError> {
        let page = self
            .table
            .query(
                Query::partition(partition(account, ns))
                    .begins_with(keys::MEMORY_PREFIX)
                    .backward()
                    .limit(self.page)
                    .after(cursor),
            )
            .await?;
        Ok((
            page.items.iter().filter_map(from_item).collect(),
            page.cursor,
        ))
    }

    /// Every memory of a namespace, newest first, up to `max` (from the cache when
    /// there is one).
    pub async fn scan(
        &self,
        account: &str,
        ns: &Namespace,
        max: usize,
    ) -> Result<Vec<Arc<Memory>>, StoreError> {
        self.scan_bounded(account, ns, max, usize::MAX).await
    }

    /// As [`MemoryRepo::scan`], stopping once the memories read hold `max_bytes` (as the
    /// cache counts them; the memory that crosses the bound is the last one kept).
    pub async fn scan_bounded(
        &self,
        account: &str,
        ns: &Namespace,
        max: usize,
        max_bytes: usize,
    ) -> Result<Vec<Arc<Memory>>, StoreError> {
        let key = partition(account, ns);
        let mut bytes = 0usize;
        let mut within = |m: &Memory| {
            let fits = bytes < max_bytes;
            bytes = bytes.saturating_add(crate::cache::memory_bytes(m));
            fits
        };
        let ticket = match &self.cache {
            Some(c) => match c.get(&key) {
                Ok((snapshot, bytes)) => {
                    let newest = snapshot.iter().take(max);
                    // Sizes are summed only when the namespace may not fit.
                    return Ok(if bytes <= max_bytes {
                        newest.cloned().collect()
                    } else {
                        newest.take_while(|m| within(m)).cloned().collect()
                    });
                }
                Err(ticket) => Some(ticket),
            },
            None => None,
        };
        let mut out = Vec::new();
        let mut cursor = None;
        let complete = 'read: loop {
            let (items, next) = self.page(account, ns, cursor).await?;
            for m in items {
                if out.len() >= max || !within(&m) {
                    break 'read false;
                }
                out.push(Arc::new(m));
            }
            match next {
                Some(c) => cursor = Some(c),
                None => break true,
            }
        };
        if let (Some(c), Some(ticket), true) = (&self.cache, ticket, complete) {
            c.fill(ticket, out.clone());
        }
        Ok(out)
    }

    /// Memories about an entity (any namespace), newest first, up to `max`. Read from the
    /// secondary index, so on DynamoDB a memory written a moment ago may be missing.
    pub async fn by_entity(
        &self,
        account: &str,
        entity_norm: &str,
        max: usize,
    ) -> Result<Vec<Memory>, StoreError> {
        let q = Query::partition(entity_partition(account, entity_norm))
            .on(Index::Gsi1)
            .backward()
            .limit(self.page);
        Ok(query_all(self.table.as_ref(), q, max)
            .await?
            .iter()
            .filter_map(from_item)
            .collect())
    }

    /// Stores an embedding, only if the memory still holds the content it was computed
    /// for (a concurrent update or delete wins). False when the memory changed or is gone.
    pub async fn set_vector(
        &self,
        account: &str,
        m: &Memory,
        v: StoredVector,
    ) -> Result<bool, StoreError> {
        let saved = v.clone();
        let r = self
            .table
            .update(
                &memory_key(account, &m.namespace, &m.id),
                vec![
                    Update::Set("vec".into(), Value::B(v.bytes.clone())),
                    Update::Set("vm".into(), Value::S(v.model.clone())),
                ],
                Some(Condition::Equals(
                    "ch".into(),
                    Value::S(m.content_hash.clone()),
                )),
            )
            .await;
        match r {
            Ok(_) => {
                self.cached(account, &m.namespace, |c, k| c.set_vector(k, m, &saved));
                Ok(true)
            }
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
