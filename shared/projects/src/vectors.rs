//! A project's vectors, in namespaces: each namespace is one index of the `Vectors` port
//! (an S3 Vectors index on AWS, S3 Vectors' own advice being an index per tenant), with
//! its dimension fixed by its first vector and recorded, with a count, in the project's
//! catalogue. Writes emit `zerodb.vector.stored` / `zerodb.vector.batch_stored` after
//! they commit. Text is embedded with the process's embedder (the memory one), and a
//! text stored with its vector comes back as `document`.
//!
//! Counts: a put first asks the engine which of its keys exist (one get per 100), so
//! `count` and the project's `vectors` counter move by the vectors really added. Two
//! writers adding the same new key at the same instant can both count it; the counter
//! is then one high until that key is deleted (and counted down once).

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use zerodb_domain::clock::Clock;
use zerodb_domain::events::EventSink;
use zerodb_domain::filter::Filter;
use zerodb_domain::item::{from_item, to_item};
use zerodb_domain::store::{Condition, Query, StoreError, Table, TxOp, Update, Value as V};
use zerodb_domain::vectors::{
    self as port, Fetched, IndexSpec, MAX_DELETE, MAX_GET, MAX_LIST, MAX_PUT, MAX_TOP_K, Metric,
    VectorError, VectorItem, VectorQuery, Vectors,
};
use zerodb_domain::{At, Context, DomainError, Refusal, Settings, ids, keys};
use zerodb_embed::Embedder;

use crate::project::{Project, STAT_VECTORS, count};

/// The namespace of a request that names none.
pub const DEFAULT_NAMESPACE: &str = "default";
/// Vectors one upsert takes (written to the engine 500 at a time).
pub const MAX_UPSERT: usize = 1000;
/// Texts one embedding call takes: each costs a model pass.
pub const MAX_TEXTS: usize = 100;
/// Characters of one text to embed or store as a document.
pub const MAX_TEXT_CHARS: usize = 16 * 1024;
/// The metadata key a vector's document is kept under (declared non-filterable, so
/// it does not count against the 2 KB of filterable metadata).
pub const DOCUMENT_KEY: &str = "zerodb_document";
/// Longest namespace name.
pub const MAX_NAMESPACE_CHARS: usize = 128;
/// Vectors a delete-by-filter reads in one call; more is said in its answer.
pub const MAX_FILTER_SCAN: usize = 100_000;
/// Deepest offset a listing skips to.
pub const MAX_OFFSET: usize = 10_000;

/// Limits from settings.
#[derive(Debug, Clone)]
pub struct VectorLimits {
    /// Namespaces per project (`ZERODB_VECTOR_NAMESPACES_PER_PROJECT`, default 100): a
    /// vector bucket holds 10,000 indexes for every tenant of a deployment.
    pub namespaces_per_project: usize,
}

impl Default for VectorLimits {
    fn default() -> Self {
        VectorLimits {
            namespaces_per_project: 100,
        }
    }
}

impl VectorLimits {
    pub fn from_settings(s: &Settings) -> Result<Self, String> {
        Ok(VectorLimits {
            namespaces_per_project: s.whole_number(
                "ZERODB_VECTOR_NAMESPACES_PER_PROJECT",
                100usize,
                1,
            )?,
        })
    }
}

/// A namespace as recorded in the project's catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamespaceRecord {
    pub namespace: String,
    /// The engine's index.
    pub index: String,
    pub dimension: usize,
    pub metric: Metric,
    /// Vectors stored (kept by `Update::Add`).
    #[serde(default)]
    pub count: i64,
    /// Epoch milliseconds.
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: i64,
}

/// A vector to store, checked by [`check_vector`] and [`check_metadata`].
#[derive(Debug, Clone)]
pub struct NewVector {
    pub id: Option<String>,
    pub vector: Vec<f32>,
    pub metadata: Map<String, Value>,
    pub document: Option<String>,
    /// Where it came from in the request, for errors found against the namespace.
    pub at: At,
    /// Where its vector came from (the item's `vector`, `embedding`, …, or the text it
    /// was embedded from).
    pub vector_at: At,
}

/// What an upsert did.
#[derive(Debug, Clone, Serialize)]
pub struct Upserted {
    pub ids: Vec<String>,
    pub inserted: usize,
    pub updated: usize,
    pub namespace: String,
    pub dimension: usize,
}

/// A stored vector as read back.
#[derive(Debug, Clone, Serialize)]
pub struct StoredVector {
    pub id: String,
    pub namespace: String,
    pub metadata: Map<String, Value>,
    pub document: Option<String>,
    pub values: Option<Vec<f32>>,
}

/// One search result, nearest first.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub id: String,
    pub namespace: String,
    /// 1 − cosine distance: 1 for the same direction.
    pub similarity: f32,
    pub distance: f32,
    pub metadata: Map<String, Value>,
    pub document: Option<String>,
    pub values: Option<Vec<f32>>,
}

/// A search.
#[derive(Debug, Clone)]
pub struct Search {
    pub vector: Vec<f32>,
    pub top_k: usize,
    pub filter: Option<Value>,
    pub include_values: bool,
    /// Results below this similarity are left out.
    pub threshold: Option<f32>,
}

/// A namespace's figures.
#[derive(Debug, Clone, Serialize)]
pub struct NamespaceStats {
    pub namespace: String,
    pub vector_count: i64,
    pub dimension: usize,
    pub metric: Metric,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The vectors of every project, over the `Vectors` port.
#[derive(Clone)]
pub struct ProjectVectors {
    table: Arc<dyn Table>,
    vectors: Arc<dyn Vectors>,
    clock: Arc<dyn Clock>,
    sink: EventSink,
    embedder: Arc<dyn Embedder>,
    limits: VectorLimits,
}

/// A namespace's name: 1–128 characters of letters, digits and `. _ - : / @`.
pub fn check_namespace(ns: &str) -> Result<(), String> {
    if ns.is_empty() || ns.chars().count() > MAX_NAMESPACE_CHARS {
        return Err(format!(
            "namespace is 1–{MAX_NAMESPACE_CHARS} characters, e.g. \"default\" or \"docs:v1\""
        ));
    }
    if !ns
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-:/@".contains(&b))
    {
        return Err("namespace holds letters, digits and . _ - : / @ only".into());
    }
    Ok(())
}

/// A vector's values: 1–4,096 finite numbers (as f32).
pub fn check_vector(values: &[f64], at: &At) -> Result<Vec<f32>, DomainError> {
    if values.is_empty() {
        return Err(at.clone().invalid("a vector needs at least one number"));
    }
    if values.len() > port::MAX_DIMENSION {
        return Err(at.clone().invalid(format!(
            "{} dimensions; a vector has at most {}",
            values.len(),
            port::MAX_DIMENSION
        )));
    }
    let mut out = Vec::with_capacity(values.len());
    for (i, x) in values.iter().enumerate() {
        let f = *x as f32;
        if !f.is_finite() {
            return Err(at.clone().index(i).invalid(format!(
                "{x} is not a finite 32-bit number (vectors are stored as float32)"
            )));
        }
        out.push(f);
    }
    Ok(out)
}

/// Vector metadata: S3 Vectors' types (strings, numbers, booleans, lists of them), at
/// most 50 keys, 2 KB as JSON; `zerodb_document` is the document's own key.
pub fn check_metadata(m: &Map<String, Value>, at: &At) -> Result<(), DomainError> {
    for (k, v) in m {
        if k == DOCUMENT_KEY {
            return Err(at.clone().field(k).invalid(format!(
                "{DOCUMENT_KEY} is where this API keeps a vector's document; send the text as `document` instead"
            )));
        }
        let scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
        let ok = match v {
            Value::Array(items) => items.iter().all(scalar),
            other => scalar(other),
        };
        if !ok {
            return Err(at.clone().field(k).invalid(
                "vector metadata holds strings, numbers, booleans and lists of them; store nested data as a string or under flattened keys (a.b)",
            ));
        }
    }
    let spec = IndexSpec {
        name: String::new(),
        dimension: 0,
        metric: Metric::Cosine,
        non_filterable: vec![DOCUMENT_KEY.to_owned()],
    };
    port::check_metadata(&spec, m).map_err(|e| at.clone().invalid(e.to_string()))
}

/// A document's length.
pub fn check_document(d: &str, at: &At) -> Result<(), DomainError> {
    let n = d.chars().count();
    if n > MAX_TEXT_CHARS {
        return Err(at.clone().invalid(format!(
            "{n} characters; a document or text has at most {MAX_TEXT_CHARS}"
        )));
    }
    Ok(())
}

/// A filter over metadata, checked as the tables API checks its filters.
pub fn check_filter(f: &Value, at: &At) -> Result<(), DomainError> {
    if !f.is_object() {
        return Err(at.clone().invalid(
            "filter is a JSON object, e.g. {\"genre\": \"drama\", \"year\": {\"$gte\": 2020}}",
        ));
    }
    Filter::parse(f).map_err(|e| {
        let at = if e.path.is_empty() {
            at.clone()
        } else {
            at.clone().field(&e.path)
        };
        at.invalid(e.msg)
    })?;
    Ok(())
}

/// A vector id given by the client: 1–1,024 characters.
pub fn check_id(id: &str, at: &At) -> Result<(), DomainError> {
    port::check_key(id).map_err(|e| at.clone().invalid(e.to_string()))
}

/// The engine index of a project's namespace: a hash, so no name a client chooses can
/// reach another project's index, and every name fits S3 Vectors' rules.
pub fn index_name(project_id: &str, namespace: &str) -> String {
    let mut h = Sha256::new();
    h.update(project_id.as_bytes());
    h.update([0]);
    h.update(namespace.as_bytes());
    format!("zv-{}", &hex::encode(h.finalize())[..40])
}

/// Cosine similarity has no value for a vector of zeros (S3 Vectors refuses one in a
/// cosine index); a text with nothing to embed makes one.
fn zero_vector(at: &At) -> DomainError {
    at.clone().invalid(
        "every number of this vector is 0: it has no direction, so cosine similarity is undefined; send a vector with at least one non-zero value (or a text with words in it)",
    )
}

fn engine(e: VectorError) -> DomainError {
    match e {
        VectorError::Invalid(m) => At::body_root().invalid(m),
        VectorError::Throttled => DomainError::Unavailable {
            retry_after_secs: 1,
        },
        VectorError::LimitReached(m) => DomainError::coded(
            Refusal::Conflict,
            "VECTOR_ENGINE_LIMIT",
            format!("the vector engine refused: {m}; delete unused namespaces or ask the operator"),
        ),
        other => DomainError::Unexpected(anyhow::Error::new(other)),
    }
}

fn document_of(m: &mut Map<String, Value>) -> Option<String> {
    match m.remove(DOCUMENT_KEY) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn stored(ns: &str, f: Fetched) -> StoredVector {
    let mut metadata = f.metadata.unwrap_or_default();
    let document = document_of(&mut metadata);
    StoredVector {
        id: f.key,
        namespace: ns.to_owned(),
        metadata,
        document,
        values: f.data,
    }
}

impl ProjectVectors {
    pub fn new(ctx: &Context, embedder: Arc<dyn Embedder>, limits: VectorLimits) -> Self {
        ProjectVectors {
            table: ctx.stores().table.clone(),
            vectors: ctx.stores().vectors.clone(),
            clock: ctx.clock().clone(),
            sink: ctx.events().clone(),
            embedder,
            limits,
        }
    }

    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    /// Embeds 1–100 texts (each ≤ 16 Ki characters) with the process's embedder.
    pub async fn embed(&self, texts: &[String], at: &At) -> Result<Vec<Vec<f32>>, DomainError> {
        if texts.is_empty() || texts.len() > MAX_TEXTS {
            return Err(at.clone().invalid(format!(
                "{} texts sent; one call embeds 1–{MAX_TEXTS}",
                texts.len()
            )));
        }
        for (i, t) in texts.iter().enumerate() {
            check_document(t, &at.clone().index(i))?;
        }
        self.embedder
            .embed(texts)
            .await
            .map_err(|e| DomainError::Unexpected(anyhow::anyhow!("embedding failed: {e}")))
    }

    async fn record(&self, p: &Project, ns: &str) -> Result<Option<NamespaceRecord>, DomainError> {
        match self.table.get(&keys::vector_namespace(&p.id, ns)).await? {
            Some(item) => Ok(Some(from_item(item)?)),
            None => Ok(None),
        }
    }

    /// The namespace's record, made (with its index) by the first write.
    async fn ensure(
        &self,
        p: &Project,
        ns: &str,
        dimension: usize,
    ) -> Result<NamespaceRecord, DomainError> {
        if let Some(r) = self.record(p, ns).await? {
            return Ok(r);
        }
        let existing = self.namespaces(p).await?;
        if existing.len() >= self.limits.namespaces_per_project {
            return Err(At::body("namespace").invalid(format!(
                "project {} has {} vector namespaces, its limit; store into one of them or delete one (DELETE …/database/vectors {{\"namespace\": …, \"delete_all\": true}})",
                p.id,
                existing.len()
            )));
        }
        let now = self.clock.now().timestamp_millis();
        let rec = NamespaceRecord {
            namespace: ns.to_owned(),
            index: index_name(&p.id, ns),
            dimension,
            metric: Metric::Cosine,
            count: 0,
            created_at: now,
            updated_at: now,
        };
        let item = to_item(&keys::vector_namespace(&p.id, ns), &rec, None)?;
        match self.table.put(item, Some(Condition::NotExists)).await {
            Ok(()) => {}
            // Another request made it first: use theirs.
            Err(StoreError::Conflict) => {
                return self
                    .record(p, ns)
                    .await?
                    .ok_or_else(|| DomainError::Conflict("namespace changed; retry".into()));
            }
            Err(e) => return Err(e.into()),
        }
        self.create_index(&rec).await?;
        Ok(rec)
    }

    async fn create_index(&self, rec: &NamespaceRecord) -> Result<(), DomainError> {
        let spec = IndexSpec {
            name: rec.index.clone(),
            dimension: rec.dimension,
            metric: rec.metric,
            non_filterable: vec![DOCUMENT_KEY.to_owned()],
        };
        match self.vectors.create_index(&spec).await {
            Ok(()) | Err(VectorError::IndexExists(_)) => Ok(()),
            Err(e) => Err(engine(e)),
        }
    }

    fn dimension_error(rec: &NamespaceRecord, got: usize, at: &At) -> DomainError {
        at.clone().invalid(format!(
            "{got} dimensions, but namespace \"{}\" holds vectors of {} (fixed by its first vector); use another namespace for vectors of another size",
            rec.namespace, rec.dimension
        ))
    }

    /// Which of `keys` the index holds.
    async fn existing(&self, index: &str, ids: &[String]) -> Result<HashSet<String>, DomainError> {
        let mut found = HashSet::new();
        for chunk in ids.chunks(MAX_GET) {
            match self.vectors.get(index, chunk, false, false).await {
                Ok(got) => found.extend(got.into_iter().map(|f| f.key)),
                Err(VectorError::NoSuchIndex(_)) => return Ok(found),
                Err(e) => return Err(engine(e)),
            }
        }
        Ok(found)
    }

    async fn add_count(&self, p: &Project, ns: &str, n: i64) -> Result<(), DomainError> {
        let now = self.clock.now().timestamp_millis();
        let mut ops = vec![TxOp::Update {
            key: keys::vector_namespace(&p.id, ns),
            updates: vec![
                Update::Add("count".into(), n),
                Update::Set("updated_at".into(), V::int(now)),
            ],
            condition: Some(Condition::Exists),
        }];
        if n != 0 {
            ops.push(count(&p.id, &[(STAT_VECTORS, n)]));
        }
        match self.table.transact(ops).await {
            // The namespace was deleted meanwhile: its vectors went with it.
            Ok(()) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores up to 1,000 vectors in a namespace (made by the first), replacing any with
    /// the same id; ids are made for vectors sent without one.
    pub async fn upsert(
        &self,
        p: &Project,
        ns: &str,
        items: Vec<NewVector>,
        source: &str,
    ) -> Result<Upserted, DomainError> {
        check_namespace(ns).map_err(|m| At::body("namespace").invalid(m))?;
        if items.is_empty() || items.len() > MAX_UPSERT {
            return Err(At::body_root().invalid(format!(
                "{} vectors sent; one call stores 1–{MAX_UPSERT}",
                items.len()
            )));
        }
        let dimension = items[0].vector.len();
        let mut seen = HashSet::with_capacity(items.len());
        for it in &items {
            if let Some(id) = &it.id {
                check_id(id, &it.at.clone().field("id"))?;
                if !seen.insert(id.as_str()) {
                    return Err(it.at.clone().field("id").invalid(format!(
                        "id {id:?} appears twice in this request; send each vector once"
                    )));
                }
            }
            if let Some(d) = &it.document {
                check_document(d, &it.at.clone().field("document"))?;
            }
        }
        let rec = self.ensure(p, ns, dimension).await?;
        let mut prepared = Vec::with_capacity(items.len());
        for it in items {
            if it.vector.len() != rec.dimension {
                return Err(Self::dimension_error(&rec, it.vector.len(), &it.vector_at));
            }
            if it.vector.iter().all(|x| *x == 0.0) {
                return Err(zero_vector(&it.vector_at));
            }
            let mut metadata = it.metadata;
            if let Some(d) = it.document {
                metadata.insert(DOCUMENT_KEY.into(), Value::String(d));
            }
            prepared.push(VectorItem {
                key: it.id.unwrap_or_else(|| ids::prefixed_id("vec")),
                data: it.vector,
                metadata,
            });
        }
        let ids: Vec<String> = prepared.iter().map(|v| v.key.clone()).collect();
        let before = self.existing(&rec.index, &ids).await?;
        let mut rest = prepared;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(MAX_PUT));
            let chunk = std::mem::replace(&mut rest, tail);
            match self.vectors.put(&rec.index, chunk.clone()).await {
                Ok(()) => {}
                // The index went with a namespace deleted meanwhile (or its creation was
                // cut short): make it again and write once more.
                Err(VectorError::NoSuchIndex(_)) => {
                    self.create_index(&rec).await?;
                    self.vectors.put(&rec.index, chunk).await.map_err(engine)?;
                }
                Err(e) => return Err(engine(e)),
            }
        }
        let inserted = ids.len() - before.len();
        self.add_count(p, ns, inserted as i64).await?;
        let events = if ids.len() == 1 {
            vec![(
                "zerodb.vector.stored".to_owned(),
                "zerodb".to_owned(),
                json!({"vector_id": ids[0], "project_id": p.id, "namespace": ns, "source": source, "user_id": p.account_id}),
            )]
        } else {
            vec![(
                "zerodb.vector.batch_stored".to_owned(),
                "zerodb".to_owned(),
                json!({"project_id": p.id, "count": ids.len(), "namespace": ns, "source": source, "user_id": p.account_id}),
            )]
        };
        self.sink.emit(events).await;
        Ok(Upserted {
            inserted,
            updated: ids.len() - inserted,
            ids,
            namespace: ns.to_owned(),
            dimension: rec.dimension,
        })
    }

    /// The nearest vectors of a namespace (none when it holds none yet).
    pub async fn search(&self, p: &Project, ns: &str, q: Search) -> Result<Vec<Hit>, DomainError> {
        check_namespace(ns).map_err(|m| At::body("namespace").invalid(m))?;
        if q.top_k == 0 || q.top_k > MAX_TOP_K {
            return Err(
                At::body("top_k").invalid(format!("top_k is 1–{MAX_TOP_K}, not {}", q.top_k))
            );
        }
        let Some(rec) = self.record(p, ns).await? else {
            return Ok(Vec::new());
        };
        if q.vector.len() != rec.dimension {
            return Err(Self::dimension_error(
                &rec,
                q.vector.len(),
                &At::body("vector"),
            ));
        }
        let query = VectorQuery {
            vector: q.vector,
            top_k: q.top_k,
            filter: q.filter,
            return_metadata: true,
        };
        let matches = match self.vectors.query(&rec.index, &query).await {
            Ok(m) => m,
            Err(VectorError::NoSuchIndex(_)) => Vec::new(),
            Err(e) => return Err(engine(e)),
        };
        let mut hits: Vec<Hit> = matches
            .into_iter()
            .map(|m| {
                let mut metadata = m.metadata.unwrap_or_default();
                let document = document_of(&mut metadata);
                Hit {
                    id: m.key,
                    namespace: ns.to_owned(),
                    similarity: 1.0 - m.distance,
                    distance: m.distance,
                    metadata,
                    document,
                    values: None,
                }
            })
            .filter(|h| q.threshold.is_none_or(|t| h.similarity >= t))
            .collect();
        if q.include_values && !hits.is_empty() {
            let keys: Vec<String> = hits.iter().map(|h| h.id.clone()).collect();
            let got = self
                .vectors
                .get(&rec.index, &keys, true, false)
                .await
                .map_err(engine)?;
            let mut by_key: std::collections::HashMap<String, Vec<f32>> = got
                .into_iter()
                .filter_map(|f| f.data.map(|d| (f.key, d)))
                .collect();
            for h in &mut hits {
                h.values = by_key.remove(&h.id);
            }
        }
        Ok(hits)
    }

    /// Up to 100 vectors by id; missing ones are left out.
    pub async fn get(
        &self,
        p: &Project,
        ns: &str,
        ids: &[String],
        values: bool,
    ) -> Result<Vec<StoredVector>, DomainError> {
        if ids.len() > MAX_GET {
            return Err(At::query("ids").invalid(format!(
                "{} ids; one call reads at most {MAX_GET}",
                ids.len()
            )));
        }
        let Some(rec) = self.record(p, ns).await? else {
            return Ok(Vec::new());
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let got = match self.vectors.get(&rec.index, ids, values, true).await {
            Ok(g) => g,
            Err(VectorError::NoSuchIndex(_)) => Vec::new(),
            Err(e) => return Err(engine(e)),
        };
        // In the order asked for.
        let mut by_key: std::collections::HashMap<String, Fetched> =
            got.into_iter().map(|f| (f.key.clone(), f)).collect();
        Ok(ids
            .iter()
            .filter_map(|id| by_key.remove(id))
            .map(|f| stored(ns, f))
            .collect())
    }

    /// One page of a namespace's vectors (in the engine's order), after `cursor`.
    pub async fn list(
        &self,
        p: &Project,
        ns: &str,
        limit: usize,
        cursor: Option<&str>,
        values: bool,
    ) -> Result<(Vec<StoredVector>, Option<String>), DomainError> {
        let Some(rec) = self.record(p, ns).await? else {
            return Ok((Vec::new(), None));
        };
        let page = match self
            .vectors
            .list(&rec.index, cursor, limit.clamp(1, MAX_LIST), values, true)
            .await
        {
            Ok(page) => page,
            Err(VectorError::NoSuchIndex(_)) => return Ok((Vec::new(), None)),
            Err(VectorError::Invalid(m)) => return Err(At::query("cursor").invalid(m)),
            Err(e) => return Err(engine(e)),
        };
        Ok((
            page.vectors.into_iter().map(|f| stored(ns, f)).collect(),
            page.cursor,
        ))
    }

    /// `limit` vectors after skipping `offset` (≤ 10,000), for clients that page by
    /// offset.
    pub async fn list_offset(
        &self,
        p: &Project,
        ns: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<StoredVector>, DomainError> {
        if offset > MAX_OFFSET {
            return Err(At::body("offset").invalid(format!(
                "offset is at most {MAX_OFFSET}; page with a smaller offset"
            )));
        }
        let mut skipped = 0;
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let want = (offset - skipped + limit - out.len()).min(MAX_LIST);
            let (page, next) = self.list(p, ns, want, cursor.as_deref(), false).await?;
            for v in page {
                if skipped < offset {
                    skipped += 1;
                } else if out.len() < limit {
                    out.push(v);
                }
            }
            match next {
                Some(c) if out.len() < limit => cursor = Some(c),
                _ => return Ok(out),
            }
        }
    }

    /// Deletes up to 500 vectors by id; returns how many existed.
    pub async fn delete_ids(
        &self,
        p: &Project,
        ns: &str,
        ids: &[String],
    ) -> Result<usize, DomainError> {
        if ids.is_empty() || ids.len() > MAX_DELETE {
            return Err(At::body("ids").invalid(format!(
                "{} ids; one delete takes 1–{MAX_DELETE}",
                ids.len()
            )));
        }
        let Some(rec) = self.record(p, ns).await? else {
            return Ok(0);
        };
        let existed = self.existing(&rec.index, ids).await?;
        if existed.is_empty() {
            return Ok(0);
        }
        let doomed: Vec<String> = existed.into_iter().collect();
        match self.vectors.delete(&rec.index, &doomed).await {
            Ok(()) | Err(VectorError::NoSuchIndex(_)) => {}
            Err(e) => return Err(engine(e)),
        }
        self.add_count(p, ns, -(doomed.len() as i64)).await?;
        Ok(doomed.len())
    }

    /// Deletes the vectors whose metadata match `filter`, reading at most 100,000 of the
    /// namespace's vectors; returns (deleted, whether the whole namespace was read).
    pub async fn delete_filter(
        &self,
        p: &Project,
        ns: &str,
        filter: &Value,
    ) -> Result<(usize, bool), DomainError> {
        check_filter(filter, &At::body("filter"))?;
        let parsed = Filter::parse(filter).map_err(|e| At::body("filter").invalid(e.msg))?;
        let Some(rec) = self.record(p, ns).await? else {
            return Ok((0, true));
        };
        let mut cursor: Option<String> = None;
        let mut read = 0;
        let mut doomed = Vec::new();
        let complete = loop {
            let page = match self
                .vectors
                .list(&rec.index, cursor.as_deref(), MAX_LIST, false, true)
                .await
            {
                Ok(page) => page,
                Err(VectorError::NoSuchIndex(_)) => break true,
                Err(e) => return Err(engine(e)),
            };
            read += page.vectors.len();
            for f in page.vectors {
                let m = Value::Object(f.metadata.unwrap_or_default());
                if parsed.matches(&m) {
                    doomed.push(f.key);
                }
            }
            match page.cursor {
                Some(c) if read < MAX_FILTER_SCAN => cursor = Some(c),
                Some(_) => break false,
                None => break true,
            }
        };
        for chunk in doomed.chunks(MAX_DELETE) {
            match self.vectors.delete(&rec.index, chunk).await {
                Ok(()) | Err(VectorError::NoSuchIndex(_)) => {}
                Err(e) => return Err(engine(e)),
            }
        }
        self.add_count(p, ns, -(doomed.len() as i64)).await?;
        Ok((doomed.len(), complete))
    }

    /// Deletes a namespace and every vector in it; returns how many it held.
    pub async fn delete_all(&self, p: &Project, ns: &str) -> Result<i64, DomainError> {
        let Some(rec) = self.record(p, ns).await? else {
            return Ok(0);
        };
        // The record first: a write after this makes a new namespace; one racing it finds
        // its index gone and makes it again (see `upsert`).
        let ops = vec![
            TxOp::Delete {
                key: keys::vector_namespace(&p.id, ns),
                condition: Some(Condition::Exists),
            },
            count(&p.id, &[(STAT_VECTORS, -rec.count)]),
        ];
        match self.table.transact(ops).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Ok(0),
            Err(e) => return Err(e.into()),
        }
        self.vectors
            .delete_index(&rec.index)
            .await
            .map_err(engine)?;
        Ok(rec.count)
    }

    /// Merges `metadata` into a stored vector's (a key set to null is removed).
    pub async fn update_metadata(
        &self,
        p: &Project,
        ns: &str,
        id: &str,
        patch: Map<String, Value>,
    ) -> Result<StoredVector, DomainError> {
        let missing = || {
            DomainError::coded(
                Refusal::NotFound,
                "VECTOR_NOT_FOUND",
                format!("no vector {id:?} in namespace \"{ns}\" of project {}", p.id),
            )
        };
        let rec = self.record(p, ns).await?.ok_or_else(missing)?;
        let got = self
            .vectors
            .get(&rec.index, &[id.to_owned()], true, true)
            .await
            .map_err(|e| match e {
                VectorError::NoSuchIndex(_) => missing(),
                e => engine(e),
            })?;
        let f = got.into_iter().next().ok_or_else(missing)?;
        let mut metadata = f.metadata.unwrap_or_default();
        let document = document_of(&mut metadata);
        for (k, v) in patch {
            if v.is_null() {
                metadata.remove(&k);
            } else {
                metadata.insert(k, v);
            }
        }
        check_metadata(&metadata, &At::body("metadata"))?;
        let mut written = metadata.clone();
        if let Some(d) = &document {
            written.insert(DOCUMENT_KEY.into(), Value::String(d.clone()));
        }
        let data = f.data.unwrap_or_default();
        self.vectors
            .put(
                &rec.index,
                vec![VectorItem {
                    key: id.to_owned(),
                    data: data.clone(),
                    metadata: written,
                }],
            )
            .await
            .map_err(engine)?;
        Ok(StoredVector {
            id: id.to_owned(),
            namespace: ns.to_owned(),
            metadata,
            document,
            values: Some(data),
        })
    }

    /// The project's namespaces (at most its limit), by name.
    pub async fn namespaces(&self, p: &Project) -> Result<Vec<NamespaceStats>, DomainError> {
        let page = self
            .table
            .query(
                Query::partition(keys::database_partition(&p.id))
                    .begins_with(keys::VECTOR_NAMESPACE_PREFIX)
                    .limit(self.limits.namespaces_per_project + 1),
            )
            .await?;
        page.items
            .into_iter()
            .map(|item| {
                let r: NamespaceRecord = from_item(item)?;
                Ok(NamespaceStats {
                    namespace: r.namespace,
                    vector_count: r.count.max(0),
                    dimension: r.dimension,
                    metric: r.metric,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                })
            })
            .collect()
    }

    /// One namespace's figures, if it exists.
    pub async fn namespace(
        &self,
        p: &Project,
        ns: &str,
    ) -> Result<Option<NamespaceStats>, DomainError> {
        Ok(self.record(p, ns).await?.map(|r| NamespaceStats {
            namespace: r.namespace,
            vector_count: r.count.max(0),
            dimension: r.dimension,
            metric: r.metric,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }))
    }
}

/// Deletes the engine indexes of a deleted project's namespaces (their records go with
/// the project's catalogue); for the purge.
pub async fn purge_indexes(
    table: &Arc<dyn Table>,
    vectors: &Arc<dyn Vectors>,
    project_id: &str,
) -> Result<(), DomainError> {
    let mut cursor = None;
    loop {
        let page = table
            .query(
                Query::partition(keys::database_partition(project_id))
                    .begins_with(keys::VECTOR_NAMESPACE_PREFIX)
                    .limit(100)
                    .after(cursor),
            )
            .await?;
        for item in page.items {
            if let Some(index) = item.get("index").and_then(V::as_str) {
                vectors.delete_index(index).await.map_err(engine)?;
            }
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_are_valid_and_distinct() {
        let a = index_name("proj_1", "default");
        let b = index_name("proj_1", "other");
        let c = index_name("proj_2", "default");
        assert!(port::valid_index_name(&a), "{a}");
        assert_ne!(a, b);
        assert_ne!(a, c);
        // The separator keeps ("p", "1x") and ("p1", "x") apart.
        assert_ne!(index_name("p", "1x"), index_name("p1", "x"));
    }

    #[test]
    fn metadata_types_and_the_reserved_key() {
        let at = At::body("metadata");
        let ok: Map<String, Value> =
            serde_json::from_value(json!({"a": "x", "b": 1, "c": true, "d": ["x", 2]})).unwrap();
        assert!(check_metadata(&ok, &at).is_ok());
        let nested: Map<String, Value> = serde_json::from_value(json!({"a": {"b": 1}})).unwrap();
        assert!(check_metadata(&nested, &at).is_err());
        let reserved: Map<String, Value> =
            serde_json::from_value(json!({DOCUMENT_KEY: "x"})).unwrap();
        assert!(check_metadata(&reserved, &at).is_err());
    }

    #[test]
    fn vectors_are_finite_float32() {
        let at = At::body("vector");
        assert!(check_vector(&[0.1, 0.2], &at).is_ok());
        assert!(check_vector(&[], &at).is_err());
        assert!(check_vector(&[1e39], &at).is_err());
        assert!(check_vector(&vec![0.0; 4097], &at).is_err());
    }
}
