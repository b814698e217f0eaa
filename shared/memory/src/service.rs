//! The memory operations, with their scope checks: remember, recall by meaning, forget,
//! session cleanup, batch upsert/update/delete, entity profiles, the operations on one
//! namespace by id (get, list, update, forget, bulk create: project memory), and the
//! embedding of pending memories that runs off the request path.

use std::sync::Arc;

use serde_json::{Value as Json, json};
use zerodb_domain::auth::Principal;
use zerodb_domain::clock::Clock;
use zerodb_domain::events::EventSink;
use zerodb_domain::scope::{Permission, Service};
use zerodb_domain::store::{StoreError, Table};
use zerodb_domain::{DomainError, Namespace};
use zerodb_embed::{Embedder, MAX_TEXTS_PER_CALL};

use crate::inflight::{Claim, Inflight};
use crate::model::{
    Memory, MemoryPatch, MemoryType, NewMemory, content_hash, new_memory_id, normalize_name,
};
use crate::rank;
use crate::repo::MemoryRepo;
use crate::vector::StoredVector;

/// How much work one recall may do, whatever the namespace holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecallLimits {
    /// Most memories one recall reads from a namespace (newest first); older ones are not
    /// considered (`ZERODB_RECALL_MAX_SCAN`).
    pub max_scan: usize,
    /// Most bytes of memories (as held in RAM) one recall reads, newest first, however
    /// large each is (`ZERODB_RECALL_MAX_SCAN_BYTES`).
    pub max_scan_bytes: usize,
    /// Most pending (not yet embedded) memories one recall embeds before it answers, newest
    /// first; the rest are ranked by their words and left to the worker
    /// (`ZERODB_RECALL_INLINE_EMBED`).
    pub inline_embed: usize,
}

impl Default for RecallLimits {
    fn default() -> Self {
        RecallLimits {
            max_scan: 50_000,
            // 50,000 small memories, or 650 of the largest (50,000 characters each): a
            // namespace of large memories cannot make one recall hold gigabytes.
            max_scan_bytes: 128 * 1024 * 1024,
            // About 0.3 s of MiniLM on two cores: a client's last writes are found by
            // meaning at once, and a backlog of thousands costs a recall no more.
            inline_embed: 32,
        }
    }
}

/// What a recall found.
#[derive(Debug, Clone, Default)]
pub struct Recalled {
    /// Best first.
    pub results: Vec<Scored>,
    /// Memories in scope that have no embedding yet (beyond the inline bound, or being
    /// embedded by a recall that failed): ranked by their words, embedded by the worker.
    pub not_embedded: usize,
}

/// What a recall asks for.
#[derive(Debug, Clone)]
pub struct RecallQuery {
    pub query: String,
    pub namespace: Namespace,
    pub limit: usize,
    pub memory_type: Option<MemoryType>,
    pub tags: Vec<String>,
    pub entity_id: Option<String>,
    pub min_importance: Option<f64>,
}

impl RecallQuery {
    /// `*` (or nothing) asks for everything in scope, newest first.
    pub fn is_wildcard(&self) -> bool {
        let q = self.query.trim();
        q.is_empty() || q == "*"
    }

    fn admits(&self, m: &Memory) -> bool {
        self.memory_type.is_none_or(|t| t == m.memory_type)
            && self.min_importance.is_none_or(|min| m.importance >= min)
            && self.entity_id.as_deref().is_none_or(|e| {
                m.entity_id
                    .as_deref()
                    .is_some_and(|me| normalize_name(me) == normalize_name(e))
            })
            && m.has_all_tags(&self.tags)
    }
}

/// One recalled memory.
#[derive(Debug, Clone)]
pub struct Scored {
    pub memory: Memory,
    pub score: f64,
    pub similarity: f64,
}

/// What a batch item came to.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemOutcome {
    Inserted(String),
    Updated(String),
    Deleted(String),
    NotFound(String),
    Failed { id: Option<String>, error: String },
}

/// A page of a namespace ([`MemoryService::list_in`]).
#[derive(Debug, Clone, Default)]
pub struct Listed {
    /// Newest first.
    pub memories: Vec<Memory>,
    /// More admitted memories follow (or the scan bound stopped the listing first).
    pub has_more: bool,
}

/// Facts about one entity, sorted out of its memories.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub entity_id: String,
    pub preferences: Vec<String>,
    pub behaviors: Vec<String>,
    pub facts: Vec<String>,
    pub summary: String,
    pub memory_count: usize,
}

/// The memory service of one deployment; cheap to clone.
#[derive(Clone)]
pub struct MemoryService {
    repo: MemoryRepo,
    graph: crate::graph::GraphRepo,
    events: EventSink,
    embedder: Arc<dyn Embedder>,
    clock: Arc<dyn Clock>,
    inline_writeback: bool,
    detach_events: bool,
    /// When a memory was last written (ms), so a worker sharing the CPU can yield to
    /// foreground writes.
    last_write: Arc<std::sync::atomic::AtomicI64>,
    limits: RecallLimits,
    /// Pending memories being embedded by recalls of this process.
    inflight: Arc<Inflight>,
}

fn require(caller: &Principal, permission: Permission, ns: &Namespace) -> Result<(), DomainError> {
    caller.require(Service::Memory, permission, Some(ns))
}

impl MemoryService {
    pub fn new(
        table: Arc<dyn Table>,
        events: EventSink,
        embedder: Arc<dyn Embedder>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        MemoryService {
            repo: MemoryRepo::new(table.clone()),
            graph: crate::graph::GraphRepo::new(table),
            events,
            embedder,
            clock,
            inline_writeback: false,
            detach_events: false,
            last_write: Arc::default(),
            limits: RecallLimits::default(),
            inflight: Arc::default(),
        }
    }

    /// Bounds the work of each graph read.
    pub fn with_graph_limits(mut self, limits: crate::graph::GraphLimits) -> Self {
        self.graph = self.graph.with_limits(limits);
        self
    }

    /// Bounds the work of each recall.
    pub fn with_recall_limits(mut self, limits: RecallLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn recall_limits(&self) -> RecallLimits {
        self.limits
    }

    /// What the namespace cache holds, when there is one.
    pub fn cache_stats(&self) -> Option<crate::cache::CacheStats> {
        self.repo.cache_stats()
    }

    /// How many pending memories recalls of this process are embedding right now (or have
    /// embedded and not yet saved).
    pub fn inline_embeddings_in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// Makes recall save the vectors it computed before answering, instead of in the
    /// background: for tests that check the write-back, and for emulators that cannot take
    /// concurrent writes.
    pub fn with_inline_writeback(mut self) -> Self {
        self.inline_writeback = true;
        self
    }

    /// Keeps whole namespaces in memory for recall, at most `budget` bytes of memories.
    /// Only for a process that is the only writer of its storage (zerodb-local); see
    /// `cache.rs`.
    pub fn with_namespace_cache_bytes(mut self, budget: usize) -> Self {
        self.repo = self.repo.with_cache(budget);
        self
    }

    /// Sends write events without making the write wait for the send (zerodb-local: the
    /// embedded queue commits them with the next group of writes). Not for Lambda, which
    /// may freeze before a detached send finishes.
    pub fn with_detached_events(mut self) -> Self {
        self.detach_events = true;
        self
    }

    async fn emit(&self, events: Vec<(String, String, Json)>) {
        if events.is_empty() {
            return;
        }
        if self.detach_events {
            let sink = self.events.clone();
            tokio::spawn(async move { sink.emit(events).await });
        } else {
            self.events.emit(events).await;
        }
    }

    /// Reads namespaces `page` memories per query (default 1,000).
    pub fn with_page_size(mut self, page: usize) -> Self {
        self.repo = self.repo.with_page_size(page);
        self
    }

    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    pub fn repo(&self) -> &MemoryRepo {
        &self.repo
    }

    pub fn graph(&self) -> &crate::graph::GraphRepo {
        &self.graph
    }

    pub fn now_millis(&self) -> i64 {
        self.now_ms()
    }

    /// Milliseconds since this process last wrote a memory (large when it never did).
    pub fn millis_since_last_write(&self) -> i64 {
        self.now_ms() - self.last_write.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn touch(&self) {
        self.last_write
            .store(self.now_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    fn build(&self, new: NewMemory, id: String, now: i64) -> Memory {
        let content = new.content.into_string();
        Memory {
            id,
            namespace: new.namespace,
            content_hash: content_hash(&content),
            content,
            memory_type: new.memory_type,
            importance: new.importance.get(),
            tags: new.tags.as_slice().to_vec(),
            entity_id: new.entity_id.map(|e| e.as_str().to_owned()),
            metadata: new.metadata,
            created_at: now,
            updated_at: now,
            vector: None,
        }
    }

    /// Stores a memory and returns it. Commits first, then sends its events; the
    /// embedding is computed later (by the worker, or by the first recall that needs it).
    pub async fn remember(
        &self,
        caller: &Principal,
        new: NewMemory,
    ) -> Result<Memory, DomainError> {
        self.remember_in(caller, new, None).await
    }

    /// As [`MemoryService::remember`], naming the project the write belongs to (the
    /// `X-Project-ID` header) for its `zerodb.memory.stored` event.
    pub async fn remember_in(
        &self,
        caller: &Principal,
        new: NewMemory,
        project: Option<&str>,
    ) -> Result<Memory, DomainError> {
        require(caller, Permission::Write, &new.namespace)?;
        if new.entity_id.is_some() {
            crate::graph::require_entity_write(caller)?;
        }
        self.touch();
        let m = self.build(new, new_memory_id(), self.now_ms());
        // The entity first, so the insert finds it to count the memory on.
        if let Some(e) = &m.entity_id {
            self.graph
                .ensure_entity(&caller.account_id, e, m.created_at)
                .await?;
        }
        self.repo.insert(&caller.account_id, &m).await?;
        tracing::debug!(memory_id = %m.id, namespace = %m.namespace, "memory stored");
        let mut stored = stored_event(caller, &m);
        if let Some(p) = project {
            stored.2["project_id"] = Json::String(p.to_owned());
        }
        self.emit(vec![remembered_event(caller, &m), stored]).await;
        Ok(m)
    }

    /// The best `limit` memories for the query, best first; `*` lists newest first.
    /// The newest pending memories (up to the inline bound) are embedded now, in one batch
    /// with the query, so a client's last writes are found by meaning as soon as
    /// `remember` has returned; older pending ones are ranked by their words (their
    /// lexical share stands in for similarity) until the worker embeds them, and the
    /// answer says how many those were. A pending memory another recall of this process is
    /// embedding is waited for, not embedded again.
    pub async fn recall(
        &self,
        caller: &Principal,
        q: &RecallQuery,
    ) -> Result<Recalled, DomainError> {
        self.recall_where(caller, q, &|_| true).await
    }

    /// As [`MemoryService::recall`], considering only the memories `keep` admits as well
    /// (filters on what the query has no field for: project memory's user and expiry,
    /// "related" leaving out the memory it starts from).
    pub async fn recall_where(
        &self,
        caller: &Principal,
        q: &RecallQuery,
        keep: &(dyn Fn(&Memory) -> bool + Send + Sync),
    ) -> Result<Recalled, DomainError> {
        require(caller, Permission::Read, &q.namespace)?;
        let account = &caller.account_id;
        let mut memories: Vec<Arc<Memory>> = self
            .repo
            .scan_bounded(
                account,
                &q.namespace,
                self.limits.max_scan,
                self.limits.max_scan_bytes,
            )
            .await?
            .into_iter()
            .filter(|m| q.admits(m) && keep(m))
            .collect();
        let name = self.embedder.name().to_owned();
        let dims = self.embedder.dims();
        let embedded = |m: &Memory| m.vector.as_ref().is_some_and(|v| v.usable_for(&name, dims));
        if q.is_wildcard() {
            let not_embedded = memories.iter().filter(|m| !embedded(m)).count();
            memories.truncate(q.limit);
            return Ok(Recalled {
                results: memories
                    .into_iter()
                    .map(|memory| Scored {
                        memory: Arc::unwrap_or_clone(memory),
                        score: 1.0,
                        similarity: 1.0,
                    })
                    .collect(),
                not_embedded,
            });
        }

        // Newest first, as the namespace reads.
        let inline: Vec<usize> = (0..memories.len())
            .filter(|&i| !embedded(&memories[i]))
            .take(self.limits.inline_embed)
            .collect();
        let partition = crate::repo::partition(account, &q.namespace);
        let keys = inline
            .iter()
            .map(|&i| {
                let m = &memories[i];
                (partition.clone(), m.id.clone(), m.content_hash.clone())
            })
            .collect();
        let (claims, guard) = self.inflight.claim(keys);
        let mut mine = Vec::new();
        let mut theirs = Vec::new();
        for (&i, claim) in inline.iter().zip(claims) {
            match claim {
                Claim::Mine(tx) => mine.push((i, tx)),
                Claim::Theirs(slot) => theirs.push((i, slot)),
            }
        }
        let mut texts = Vec::with_capacity(1 + mine.len());
        texts.push(q.query.clone());
        texts.extend(mine.iter().map(|(i, _)| memories[*i].content.clone()));
        // On failure the guard goes with this future: recalls waiting on these claims rank
        // the memories by their words.
        let vectors = self.embed_all(&texts).await?;
        let query_vec = &vectors[0];

        let mut writeback = Vec::with_capacity(mine.len());
        for ((i, tx), v) in mine.into_iter().zip(&vectors[1..]) {
            let stored = StoredVector::encode(&name, v);
            // Published before waiting on anyone else's, so two recalls waiting on each
            // other's claims cannot deadlock.
            tx.send_replace(Some(stored.clone()));
            Arc::make_mut(&mut memories[i]).vector = Some(stored.clone());
            writeback.push((Memory::clone(&memories[i]), stored));
        }
        for (i, slot) in theirs {
            if let Some(v) = crate::inflight::wait(slot).await {
                Arc::make_mut(&mut memories[i]).vector = Some(v);
            }
        }
        if self.inline_writeback {
            save_vectors(&self.repo, account, writeback).await;
            drop(guard);
        } else if !writeback.is_empty() {
            // Saved in the background so the next recall need not embed them again; the
            // answer does not wait on it, and losing it only costs a recomputation. The
            // claims hold the vectors for concurrent recalls until they are saved.
            let repo = self.repo.clone();
            let account = account.clone();
            tokio::spawn(async move {
                save_vectors(&repo, &account, writeback).await;
                drop(guard);
            });
        }

        let now = self.now_ms();
        let qv = crate::vector::QueryVector::new(query_vec);
        let qterms = rank::QueryTerms::new(&q.query);
        let mut not_embedded = 0;
        let sims: Vec<f64> = memories
            .iter()
            .map(|m| match &m.vector {
                Some(v) if v.usable_for(&name, dims) => {
                    f64::from(v.dot_quantized(&qv)).clamp(0.0, 1.0)
                }
                _ => {
                    not_embedded += 1;
                    qterms.lexical(&m.content)
                }
            })
            .collect();
        let bases: Vec<f64> = memories
            .iter()
            .zip(&sims)
            .map(|(m, &s)| rank::base_score(s, m.importance, rank::recency(now - m.created_at)))
            .collect();
        let top = rank::top_k(&bases, q.limit, |i| qterms.lexical(&memories[i].content));
        let mut slots: Vec<Option<Arc<Memory>>> = memories.into_iter().map(Some).collect();
        Ok(Recalled {
            results: top
                .into_iter()
                .filter_map(|(i, score)| {
                    slots[i].take().map(|memory| Scored {
                        memory: Arc::unwrap_or_clone(memory),
                        score,
                        similarity: sims[i],
                    })
                })
                .collect(),
            not_embedded,
        })
    }

    async fn embed_all(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, DomainError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(MAX_TEXTS_PER_CALL) {
            let mut v = self.embedder.embed(chunk).await.map_err(|e| {
                tracing::error!(error = %e, embedder = self.embedder.name(), "embedding failed");
                DomainError::Unavailable {
                    retry_after_secs: 1,
                }
            })?;
            out.append(&mut v);
        }
        Ok(out)
    }

    /// Forgets one memory by id. NotFound when the account has no such memory.
    pub async fn forget_id(&self, caller: &Principal, id: &str) -> Result<(), DomainError> {
        let not_found = || DomainError::NotFound(format!("memory '{id}' not found"));
        if !crate::model::is_memory_id(id) {
            return Err(not_found());
        }
        let ns = self
            .repo
            .locate(&caller.account_id, id)
            .await?
            .ok_or_else(not_found)?;
        // A memory outside the key's scope answers as a missing one: a 403 would confirm
        // it exists and name its namespace.
        require(caller, Permission::Write, &ns).map_err(|_| not_found())?;
        if self.repo.delete(&caller.account_id, &ns, id).await? {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// One memory of a namespace, by id (one read). NotFound when the namespace holds no
    /// memory of that id, whichever namespace of the account it may live in.
    pub async fn get_in(
        &self,
        caller: &Principal,
        ns: &Namespace,
        id: &str,
    ) -> Result<Memory, DomainError> {
        require(caller, Permission::Read, ns)?;
        let not_found = || DomainError::NotFound(format!("memory '{id}' not found"));
        if !crate::model::is_memory_id(id) {
            return Err(not_found());
        }
        self.repo
            .get(&caller.account_id, ns, id)
            .await?
            .ok_or_else(not_found)
    }

    /// A page of a namespace, newest first: of the memories `keep` admits, `limit` after
    /// the first `offset`. Reads a query page at a time and stops as soon as it knows
    /// whether more follow, and after at most the recall scan bound of memories
    /// (`has_more` is then true: the rest was not looked at).
    pub async fn list_in(
        &self,
        caller: &Principal,
        ns: &Namespace,
        keep: &(dyn Fn(&Memory) -> bool + Send + Sync),
        offset: usize,
        limit: usize,
    ) -> Result<Listed, DomainError> {
        require(caller, Permission::Read, ns)?;
        let account = &caller.account_id;
        let mut out = Listed::default();
        let (mut admitted, mut read) = (0usize, 0usize);
        let mut cursor = None;
        loop {
            let (page, next) = self.repo.page(account, ns, cursor).await?;
            for m in page {
                read += 1;
                if read > self.limits.max_scan {
                    out.has_more = true;
                    return Ok(out);
                }
                if !keep(&m) {
                    continue;
                }
                admitted += 1;
                if admitted <= offset {
                    continue;
                }
                if out.memories.len() == limit {
                    out.has_more = true;
                    return Ok(out);
                }
                out.memories.push(m);
            }
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// Changes one memory of a namespace: `change` sees the stored record and says what to
    /// change (it may refuse, or answer NotFound for a record it treats as gone). Changing
    /// the content drops the old embedding. Returns the record as stored.
    pub async fn update_in(
        &self,
        caller: &Principal,
        ns: &Namespace,
        id: &str,
        change: impl FnOnce(&Memory) -> Result<MemoryPatch, DomainError>,
    ) -> Result<Memory, DomainError> {
        require(caller, Permission::Write, ns)?;
        let not_found = || DomainError::NotFound(format!("memory '{id}' not found"));
        if !crate::model::is_memory_id(id) {
            return Err(not_found());
        }
        let mut m = self
            .repo
            .get(&caller.account_id, ns, id)
            .await?
            .ok_or_else(not_found)?;
        let patch = change(&m)?;
        self.touch();
        apply(&mut m, patch, self.now_ms());
        match self.repo.replace(&caller.account_id, &m).await {
            Ok(()) => {}
            // Deleted between our read and write.
            Err(StoreError::Conflict) => {
                return Err(DomainError::NotFound(format!("memory '{id}' not found")));
            }
            Err(e) => return Err(e.into()),
        }
        self.emit(vec![stored_event(caller, &m)]).await;
        Ok(m)
    }

    /// Forgets one memory of a namespace by id: NotFound when the namespace holds no such
    /// memory (one in another namespace of the account is left alone).
    pub async fn forget_in(
        &self,
        caller: &Principal,
        ns: &Namespace,
        id: &str,
    ) -> Result<(), DomainError> {
        require(caller, Permission::Write, ns)?;
        let not_found = || DomainError::NotFound(format!("memory '{id}' not found"));
        if !crate::model::is_memory_id(id) {
            return Err(not_found());
        }
        // The id pointer says where the memory lives; deleting under another namespace
        // would take the pointer of a memory that stays.
        match self.repo.locate(&caller.account_id, id).await? {
            Some(at) if at == *ns => {}
            _ => return Err(not_found()),
        }
        if self.repo.delete(&caller.account_id, ns, id).await? {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// Stores many new memories (bulk create) and returns them, one result per memory in
    /// order. Every scope is checked before anything is written: a refused memory refuses
    /// the whole call. Written up to 50 to a transaction, as batch upsert does.
    pub async fn remember_many(
        &self,
        caller: &Principal,
        news: Vec<NewMemory>,
    ) -> Result<Vec<Result<Memory, String>>, DomainError> {
        for new in &news {
            require(caller, Permission::Write, &new.namespace)?;
            if new.entity_id.is_some() {
                crate::graph::require_entity_write(caller)?;
            }
        }
        self.touch();
        let account = &caller.account_id;
        let now = self.now_ms();
        let memories: Vec<Memory> = news
            .into_iter()
            .map(|new| self.build(new, new_memory_id(), now))
            .collect();
        let mut entities: Vec<String> = memories
            .iter()
            .filter_map(|m| m.entity_id.clone())
            .collect();
        entities.sort_by_key(|e| normalize_name(e));
        entities.dedup_by_key(|e| normalize_name(e));
        for e in &entities {
            self.graph.ensure_entity(account, e, now).await?;
        }
        let written = self.repo.insert_many(account, &memories).await?;
        let mut events = Vec::new();
        let out = memories
            .into_iter()
            .zip(written)
            .map(|(m, ok)| {
                ok.map(|()| {
                    events.push(stored_event(caller, &m));
                    m
                })
            })
            .collect();
        self.emit(events).await;
        Ok(out)
    }

    /// Forgets every memory of a namespace carrying all `tags` (all of them when `tags` is
    /// empty), however many, a page at a time. Returns how many.
    pub async fn forget_where(
        &self,
        caller: &Principal,
        ns: &Namespace,
        tags: &[String],
    ) -> Result<usize, DomainError> {
        self.forget_where_bounded(caller, ns, tags, usize::MAX)
            .await
            .map(|(deleted, _)| deleted)
    }

    /// As [`MemoryService::forget_where`], but forgets at most `max` memories (at least
    /// one); returns how many it forgot and whether any that match may remain, so a
    /// worker can go on in another invocation (a call starts from the namespace's first
    /// memory again: what it forgot is gone).
    pub async fn forget_where_bounded(
        &self,
        caller: &Principal,
        ns: &Namespace,
        tags: &[String],
        max: usize,
    ) -> Result<(usize, bool), DomainError> {
        require(caller, Permission::Write, ns)?;
        let max = max.max(1);
        let account = &caller.account_id;
        let (mut deleted, mut taken) = (0, 0usize);
        let mut cursor = None;
        loop {
            // Deleting while paging is safe: the cursor is a key position, not an offset.
            let (page, next) = self.repo.page(account, ns, cursor).await?;
            let mut targets: Vec<(Namespace, String)> = page
                .into_iter()
                .filter(|m| m.has_all_tags(tags))
                .map(|m| (m.namespace, m.id))
                .collect();
            let room = max - taken;
            let left_in_page = targets.len() > room;
            targets.truncate(room);
            taken += targets.len();
            deleted += self.repo.delete_many(account, &targets).await?;
            if left_in_page {
                return Ok((deleted, true));
            }
            match next {
                Some(_) if taken >= max => return Ok((deleted, true)),
                Some(c) => cursor = Some(c),
                None => return Ok((deleted, false)),
            }
        }
    }

    /// Inserts or replaces up to 500 records; each reports its own outcome. A record with
    /// the `id` of an existing memory replaces it (keeping its creation time); new records
    /// are written many to a transaction.
    pub async fn batch_upsert(
        &self,
        caller: &Principal,
        records: Vec<Result<(Option<String>, NewMemory), String>>,
    ) -> Result<Vec<ItemOutcome>, DomainError> {
        self.touch();
        let account = caller.account_id.clone();
        let now = self.now_ms();
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; records.len()];
        let mut fresh: Vec<(usize, Memory)> = Vec::new();
        let mut events = Vec::new();
        for (index, record) in records.into_iter().enumerate() {
            let (id, new) = match record {
                Ok(r) => r,
                Err(error) => {
                    outcomes[index] = Some(ItemOutcome::Failed { id: None, error });
                    continue;
                }
            };
            let allowed =
                require(caller, Permission::Write, &new.namespace).and_then(|()| {
                    match new.entity_id {
                        Some(_) => crate::graph::require_entity_write(caller),
                        None => Ok(()),
                    }
                });
            if let Err(e) = allowed {
                outcomes[index] = Some(ItemOutcome::Failed {
                    id,
                    error: e.to_string(),
                });
                continue;
            }
            let existing = match &id {
                Some(id) if crate::model::is_memory_id(id) => self.repo.find(&account, id).await?,
                _ => None,
            };
            let outcome = match existing {
                // An id outside the key's scope: refused without naming where it lives.
                Some(old)
                    if require(caller, Permission::Write, &old.namespace).is_err()
                        && require(caller, Permission::Read, &old.namespace).is_err() =>
                {
                    ItemOutcome::Failed {
                        id,
                        error: format!(
                            "memory id '{}' is taken; leave id out to insert a new memory",
                            old.id
                        ),
                    }
                }
                Some(old) if old.namespace != new.namespace => ItemOutcome::Failed {
                    id,
                    error: format!(
                        "memory '{}' lives in namespace '{}'; an upsert cannot move it (delete it and insert a new one)",
                        old.id, old.namespace
                    ),
                },
                Some(old) => {
                    let mut m = self.build(new, old.id.clone(), now);
                    m.created_at = old.created_at;
                    let norm = |e: &Option<String>| e.as_deref().map(normalize_name);
                    let moved = norm(&old.entity_id) != norm(&m.entity_id);
                    if moved && let Some(e) = &m.entity_id {
                        self.graph.ensure_entity(&account, e, now).await?;
                    }
                    match self.repo.replace(&account, &m).await {
                        Ok(()) => {
                            // The record names another entity now: move the count.
                            if moved {
                                if let Some(e) = &old.entity_id {
                                    self.repo.count_on_entity(&account, e, -1).await;
                                }
                                if let Some(e) = &m.entity_id {
                                    self.repo.count_on_entity(&account, e, 1).await;
                                }
                            }
                            events.push(stored_event(caller, &m));
                            ItemOutcome::Updated(m.id)
                        }
                        Err(StoreError::Conflict) => ItemOutcome::Failed {
                            id,
                            error: format!("memory '{}' was deleted meanwhile", old.id),
                        },
                        Err(e) => return Err(e.into()),
                    }
                }
                None => {
                    // A record naming an id we issued keeps it; anything else gets a new one.
                    let given = id.filter(|i| crate::model::is_memory_id(i));
                    fresh.push((
                        index,
                        self.build(new, given.unwrap_or_else(new_memory_id), now),
                    ));
                    continue;
                }
            };
            outcomes[index] = Some(outcome);
        }
        let memories: Vec<Memory> = fresh.iter().map(|(_, m)| m.clone()).collect();
        // Their entities first, so the inserts find them to count the memories on.
        let mut entities: Vec<String> = memories
            .iter()
            .filter_map(|m| m.entity_id.clone())
            .collect();
        entities.sort_by_key(|e| normalize_name(e));
        entities.dedup_by_key(|e| normalize_name(e));
        for e in &entities {
            self.graph.ensure_entity(&account, e, now).await?;
        }
        let written = self.repo.insert_many(&account, &memories).await?;
        for ((index, m), ok) in fresh.into_iter().zip(written) {
            outcomes[index] = Some(match ok {
                Ok(()) => {
                    events.push(stored_event(caller, &m));
                    ItemOutcome::Inserted(m.id)
                }
                Err(error) => ItemOutcome::Failed {
                    id: Some(m.id),
                    error,
                },
            });
        }
        self.emit(events).await;
        Ok(outcomes
            .into_iter()
            .map(|o| o.expect("every record has an outcome"))
            .collect())
    }

    /// Applies partial updates to up to 500 memories by id, 16 at a time. Changing content
    /// drops the old embedding; the new one is computed like any pending memory's.
    pub async fn batch_update(
        &self,
        caller: &Principal,
        updates: Vec<Result<(String, MemoryPatch), (Option<String>, String)>>,
    ) -> Result<Vec<ItemOutcome>, DomainError> {
        use futures::StreamExt;
        let now = self.now_ms();
        let results: Vec<Result<(ItemOutcome, Option<Memory>), DomainError>> =
            futures::stream::iter(updates)
                .map(|u| {
                    let (svc, caller) = (self.clone(), caller.clone());
                    async move {
                        let (id, patch) = match u {
                            Ok(x) => x,
                            Err((id, error)) => {
                                return Ok((ItemOutcome::Failed { id, error }, None));
                            }
                        };
                        svc.update_one(&caller, id, patch, now).await
                    }
                })
                .buffered(16)
                .collect()
                .await;
        let mut outcomes = Vec::with_capacity(results.len());
        let mut events = Vec::new();
        for r in results {
            let (outcome, changed) = r?;
            if let Some(m) = changed {
                events.push(stored_event(caller, &m));
            }
            outcomes.push(outcome);
        }
        self.emit(events).await;
        Ok(outcomes)
    }

    async fn update_one(
        &self,
        caller: &Principal,
        id: String,
        patch: MemoryPatch,
        now: i64,
    ) -> Result<(ItemOutcome, Option<Memory>), DomainError> {
        let account = &caller.account_id;
        let found = if crate::model::is_memory_id(&id) {
            self.repo.find(account, &id).await?
        } else {
            None
        };
        let Some(mut m) = found else {
            return Ok((ItemOutcome::NotFound(id), None));
        };
        // Outside the key's scope reads as missing, so the outcome names no namespace.
        if require(caller, Permission::Write, &m.namespace).is_err() {
            return Ok((ItemOutcome::NotFound(id), None));
        }
        apply(&mut m, patch, now);
        match self.repo.replace(account, &m).await {
            Ok(()) => Ok((ItemOutcome::Updated(id), Some(m))),
            // Deleted between our read and write.
            Err(StoreError::Conflict) => Ok((ItemOutcome::NotFound(id), None)),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes up to 500 memories by id.
    pub async fn batch_delete(
        &self,
        caller: &Principal,
        ids: Vec<String>,
    ) -> Result<Vec<ItemOutcome>, DomainError> {
        use futures::StreamExt;
        let account = &caller.account_id;
        let located: Vec<Result<Option<Namespace>, StoreError>> =
            futures::stream::iter(ids.clone())
                .map(|id| {
                    let (repo, account) = (self.repo.clone(), account.clone());
                    async move {
                        if crate::model::is_memory_id(&id) {
                            repo.locate(&account, &id).await
                        } else {
                            Ok(None)
                        }
                    }
                })
                .buffered(16)
                .collect()
                .await;
        let mut outcomes = Vec::with_capacity(ids.len());
        let mut targets = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (id, ns) in ids.into_iter().zip(located) {
            match ns? {
                None => outcomes.push(ItemOutcome::NotFound(id)),
                Some(_) if !seen.insert(id.clone()) => outcomes.push(ItemOutcome::Deleted(id)),
                // Outside the key's scope reads as missing, naming no namespace.
                Some(ns) => match require(caller, Permission::Write, &ns) {
                    Ok(()) => {
                        targets.push((ns, id.clone()));
                        outcomes.push(ItemOutcome::Deleted(id));
                    }
                    Err(_) => outcomes.push(ItemOutcome::NotFound(id)),
                },
            }
        }
        self.repo.delete_many(account, &targets).await?;
        Ok(outcomes)
    }

    /// An entity's memories, sorted into preferences, behaviours and facts. Only
    /// namespaces the caller may read contribute.
    pub async fn profile(&self, caller: &Principal, entity: &str) -> Result<Profile, DomainError> {
        let memories = self
            .repo
            .by_entity(&caller.account_id, &normalize_name(entity), 1000)
            .await?;
        let mut p = Profile {
            entity_id: entity.to_owned(),
            ..Default::default()
        };
        for m in memories {
            if !caller
                .scopes
                .grants(Service::Memory, Permission::Read, Some(&m.namespace))
            {
                continue;
            }
            p.memory_count += 1;
            match classify(&m) {
                Kind::Preference => p.preferences.push(m.content),
                Kind::Behavior => p.behaviors.push(m.content),
                Kind::Fact => p.facts.push(m.content),
            }
        }
        p.summary = if p.memory_count == 0 {
            format!("No memories about {entity} yet.")
        } else {
            format!(
                "{entity}: {} memories ({} preferences, {} behaviors, {} facts).",
                p.memory_count,
                p.preferences.len(),
                p.behaviors.len(),
                p.facts.len()
            )
        };
        Ok(p)
    }

    /// Embeds the listed memories that still lack a vector from this embedder: the
    /// worker's job for `zeromemory.remembered` / `zerodb.memory.stored` events. Returns
    /// how many vectors it stored.
    pub async fn embed_pending(
        &self,
        account: &str,
        targets: &[(Namespace, String)],
    ) -> Result<usize, DomainError> {
        let name = self.embedder.name().to_owned();
        let dims = self.embedder.dims();
        use futures::StreamExt;
        let found: Vec<Result<Option<Memory>, StoreError>> =
            futures::stream::iter(targets.to_vec())
                .map(|(ns, id)| {
                    let (repo, account) = (self.repo.clone(), account.to_owned());
                    async move { repo.get(&account, &ns, &id).await }
                })
                .buffered(16)
                .collect()
                .await;
        let mut pending = Vec::new();
        for m in found {
            if let Some(m) = m?
                && m.vector.as_ref().is_none_or(|v| !v.usable_for(&name, dims))
            {
                pending.push(m);
            }
        }
        if pending.is_empty() {
            return Ok(0);
        }
        let texts: Vec<String> = pending.iter().map(|m| m.content.clone()).collect();
        let vectors = self.embed_all(&texts).await?;
        let work = pending
            .into_iter()
            .zip(vectors)
            .map(|(m, v)| {
                let stored = StoredVector::encode(&name, &v);
                (m, stored)
            })
            .collect();
        Ok(save_vectors(&self.repo, account, work).await)
    }
}

/// A patch applied to a record: new content drops the embedding made for the old.
fn apply(m: &mut Memory, patch: MemoryPatch, now: i64) {
    if let Some(c) = patch.content {
        m.content = c.into_string();
        m.content_hash = content_hash(&m.content);
        m.vector = None;
    }
    if let Some(t) = patch.memory_type {
        m.memory_type = t;
    }
    if let Some(i) = patch.importance {
        m.importance = i.get();
    }
    if let Some(t) = patch.tags {
        m.tags = t.as_slice().to_vec();
    }
    if let Some(meta) = patch.metadata {
        m.metadata = meta;
    }
    m.updated_at = now;
}

async fn save_vectors(
    repo: &MemoryRepo,
    account: &str,
    work: Vec<(Memory, StoredVector)>,
) -> usize {
    use futures::StreamExt;
    futures::stream::iter(work)
        .map(|(m, v)| {
            let (repo, account) = (repo.clone(), account.to_owned());
            async move {
                match repo.set_vector(&account, &m, v).await {
                    Ok(saved) => saved,
                    Err(e) => {
                        tracing::warn!(error = %e, memory_id = %m.id, "saving an embedding failed; it will be recomputed");
                        false
                    }
                }
            }
        })
        .buffer_unordered(16)
        .filter(|saved| std::future::ready(*saved))
        .count()
        .await
}

enum Kind {
    Preference,
    Behavior,
    Fact,
}

/// Preferences speak of liking and wanting; behaviours of habits and procedures;
/// everything else is a fact.
fn classify(m: &Memory) -> Kind {
    let text = m.content.to_lowercase();
    let has = |words: &[&str]| {
        text.split(|c: char| !c.is_alphanumeric())
            .any(|w| words.contains(&w))
    };
    if has(&[
        "prefer",
        "prefers",
        "preferred",
        "preference",
        "preferences",
        "like",
        "likes",
        "love",
        "loves",
        "favorite",
        "favourite",
        "enjoy",
        "enjoys",
        "dislike",
        "dislikes",
        "hate",
        "hates",
        "want",
        "wants",
    ]) {
        Kind::Preference
    } else if m.memory_type == MemoryType::Procedural
        || has(&[
            "usually",
            "always",
            "often",
            "never",
            "every",
            "daily",
            "weekly",
            "habit",
            "tends",
            "routinely",
            "typically",
        ])
    {
        Kind::Behavior
    } else {
        Kind::Fact
    }
}

fn project_of(ns: &Namespace) -> Json {
    match ns {
        Namespace::Scoped(zerodb_domain::namespace::NamespaceKind::Project, id) => {
            Json::String(id.as_str().to_owned())
        }
        _ => Json::Null,
    }
}

fn remembered_event(caller: &Principal, m: &Memory) -> (String, String, Json) {
    (
        "zeromemory.remembered".into(),
        "zeromemory".into(),
        json!({
            "memory_id": m.id,
            "entity_id": m.entity_id,
            "memory_type": m.memory_type.as_str(),
            "namespace": m.namespace.to_string(),
            "user_id": caller.account_id,
        }),
    )
}

fn stored_event(caller: &Principal, m: &Memory) -> (String, String, Json) {
    (
        "zerodb.memory.stored".into(),
        "zerodb".into(),
        json!({
            "memory_id": m.id,
            "project_id": project_of(&m.namespace),
            "agent_id": caller.key_id,
            "user_id": caller.account_id,
            "namespace": m.namespace.to_string(),
        }),
    )
}

/// The memories an event asks the worker to embed: (account, namespace, memory id).
pub fn embedding_target(
    event: &zerodb_domain::events::Event,
) -> Option<(String, Namespace, String)> {
    if event.event != "zeromemory.remembered" && event.event != "zerodb.memory.stored" {
        return None;
    }
    let d = &event.data;
    Some((
        d.get("user_id")?.as_str()?.to_owned(),
        Namespace::parse(d.get("namespace")?.as_str()?).ok()?,
        d.get("memory_id")?.as_str()?.to_owned(),
    ))
}
