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
/// Bytes (UTF-8) of one text to embed or store as a document: with the 2 KB of
/// filterable metadata it stays inside S3 Vectors' 40 KB of metadata per vector.
pub const MAX_TEXT_BYTES: usize = 32 * 1024;
/// The metadata key a vector's document is kept under (declared non-filterable, so
/// it does not count against the 2 KB of filterable metadata).
pub const DOCUMENT_KEY: &str = "zerodb_document";
/// Longest namespace name.
pub const MAX_NAMESPACE_CHARS: usize = 128;
/// Vectors a delete-by-filter reads in one call; more is said in its answer.
pub const MAX_FILTER_SCAN: usize = 20_000;
/// Time a delete-by-filter works before answering `complete: false`.
pub const FILTER_DELETE_SECS: u64 = 10;
/// Namespaces one request may write to (seed 003's batch names one per vector).
pub const MAX_BATCH_NAMESPACES: usize = 20;
/// The account attribute counting its namespaces (every project's).
const ACCOUNT_NAMESPACES: &str = "vector_namespaces";
/// Deepest offset a listing skips to.
pub const MAX_OFFSET: usize = 10_000;

/// Limits from settings.
#[derive(Debug, Clone)]
pub struct VectorLimits {
    /// Namespaces per account, all its projects together
    /// (`ZERODB_VECTOR_NAMESPACES_PER_ACCOUNT`, default 100): each is an index, and a
    /// vector bucket holds 10,000 for every tenant of a deployment, so this is sized
    /// against the bucket (100 accounts at the default fill one).
    pub namespaces_per_account: usize,
    /// Vectors per project (`ZERODB_VECTORS_PER_PROJECT`, default 1,000,000).
    pub vectors_per_project: usize,
}

impl Default for VectorLimits {
    fn default() -> Self {
        VectorLimits {
            namespaces_per_account: 100,
            vectors_per_project: 1_000_000,
        }
    }
}

impl VectorLimits {
    pub fn from_settings(s: &Settings) -> Result<Self, String> {
        let d = Self::default();
        Ok(VectorLimits {
            namespaces_per_account: s.whole_number(
                "ZERODB_VECTOR_NAMESPACES_PER_ACCOUNT",
                d.namespaces_per_account,
                1,
            )?,
            vectors_per_project: s.whole_number(
                "ZERODB_VECTORS_PER_PROJECT",
                d.vectors_per_project,
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
    /// Set by a `delete_all` under way: writes refuse it, reads see nothing, and the
    /// next write (or `delete_all`) finishes the deletion first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
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
    if d.len() > MAX_TEXT_BYTES {
        return Err(at.clone().invalid(format!(
            "{} bytes as UTF-8; a document or text has at most {MAX_TEXT_BYTES}",
            d.len()
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

/// The engine index of one incarnation of a project's namespace: a hash, so no name a
/// client chooses can reach another project's index and every name fits S3 Vectors'
/// rules; the nonce makes a namespace deleted and made again a new index, so nothing
/// of the old one (a write racing the delete, a spec an instance cached) reaches it.
pub fn index_name(project_id: &str, namespace: &str, nonce: &str) -> String {
    let mut h = Sha256::new();
    for part in [project_id, namespace, nonce] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("zv-{}", &hex::encode(h.finalize())[..40])
}

/// The 409 of a write that raced a `delete_all` of its namespace.
fn deleted_meanwhile(ns: &str) -> DomainError {
    DomainError::Conflict(format!(
        "namespace \"{ns}\" was deleted while this request ran; send it again to write to a new namespace of that name"
    ))
}

/// JSON bytes a vector takes in an answer (values, metadata, document, id).
pub fn answer_bytes(
    values: Option<&[f32]>,
    metadata: &Map<String, Value>,
    document: Option<&str>,
    id: &str,
) -> usize {
    let values = values.map(|v| v.len() * 14).unwrap_or(0);
    let metadata = serde_json::to_string(metadata)
        .map(|t| t.len())
        .unwrap_or(0);
    let document = document.map(crate::project::json_string_bytes).unwrap_or(0);
    values + metadata + document + 2 * crate::project::json_string_bytes(id) + 160
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
        VectorError::NoSuchIndex(_) => DomainError::Conflict(
            "the namespace was deleted while this request ran; send it again".into(),
        ),
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
        self.embedder.embed(texts).await.map_err(|e| {
            tracing::warn!(error = %e, "embedding failed");
            DomainError::Unavailable {
                retry_after_secs: 1,
            }
        })
    }

    /// Embeds one text (a query).
    pub async fn embed_one(&self, text: &str, at: &At) -> Result<Vec<f32>, DomainError> {
        Ok(self
            .embed(std::slice::from_ref(&text.to_owned()), at)
            .await?
            .pop()
            .unwrap_or_default())
    }

    /// Embeds 1–100 texts and stores each with its vector, as the vector's document,
    /// with one metadata object per text (or none) and one id per text (or none made).
    /// A namespace of vectors of another size is refused before any text is embedded.
    pub async fn store_texts(
        &self,
        p: &Project,
        ns: &str,
        texts: Vec<String>,
        metadata: Option<Vec<Value>>,
        ids: Option<Vec<String>>,
        source: &str,
    ) -> Result<Upserted, DomainError> {
        let metadata = metadata.unwrap_or_default();
        if !metadata.is_empty() && metadata.len() != texts.len() {
            return Err(At::body("metadata_list").invalid(format!(
                "{} metadata objects for {} texts; send one per text, or none",
                metadata.len(),
                texts.len()
            )));
        }
        if let Some(ids) = &ids
            && ids.len() != texts.len()
        {
            return Err(At::body("ids").invalid(format!(
                "{} ids for {} texts; send one per text, or none",
                ids.len(),
                texts.len()
            )));
        }
        let mut metas = Vec::with_capacity(texts.len());
        for (i, m) in metadata.into_iter().enumerate() {
            let at = At::body("metadata_list").index(i);
            let m: Map<String, Value> = match m {
                Value::Object(m) => m,
                Value::Null => Map::new(),
                _ => return Err(at.invalid("each metadata is a JSON object")),
            };
            check_metadata(&m, &at)?;
            metas.push(m);
        }
        if let Some(d) = self.dimension(p, ns).await?
            && d != self.embedder.dims()
        {
            return Err(At::body("namespace").invalid(format!(
                "namespace \"{ns}\" holds vectors of {d} dimensions; this server's texts embed to {}: store texts in another namespace",
                self.embedder.dims()
            )));
        }
        let vectors = self.embed(&texts, &At::body("texts")).await?;
        let mut ids = ids.map(|v| v.into_iter());
        let items: Vec<NewVector> = texts
            .into_iter()
            .zip(vectors)
            .enumerate()
            .map(|(i, (text, vector))| NewVector {
                id: ids.as_mut().and_then(Iterator::next),
                vector,
                metadata: metas.get(i).cloned().unwrap_or_default(),
                document: Some(text),
                at: At::body("texts").index(i),
                vector_at: At::body("texts").index(i),
            })
            .collect();
        self.upsert(p, ns, items, source).await
    }

    async fn record(&self, p: &Project, ns: &str) -> Result<Option<NamespaceRecord>, DomainError> {
        match self.table.get(&keys::vector_namespace(&p.id, ns)).await? {
            Some(item) => Ok(Some(from_item(item)?)),
            None => Ok(None),
        }
    }

    /// The namespace's record if it holds vectors (not being deleted).
    async fn live(&self, p: &Project, ns: &str) -> Result<Option<NamespaceRecord>, DomainError> {
        Ok(self.record(p, ns).await?.filter(|r| !r.deleting))
    }

    /// The namespace's record, made (with its index) by the first write. A namespace is
    /// counted against its account in the transaction that makes its record.
    async fn ensure(
        &self,
        p: &Project,
        ns: &str,
        dimension: usize,
    ) -> Result<NamespaceRecord, DomainError> {
        for _ in 0..4 {
            if let Some(r) = self.record(p, ns).await? {
                if r.deleting {
                    self.finish_delete(p, &r).await?;
                    continue;
                }
                return Ok(r);
            }
            let account_key = keys::account(&p.account_id);
            let account = self
                .table
                .get(&account_key)
                .await?
                .ok_or_else(|| DomainError::NotFound("account not found".into()))?;
            let used = account.get(ACCOUNT_NAMESPACES).and_then(V::as_i64);
            let limit = self.limits.namespaces_per_account;
            if used.unwrap_or(0) >= limit as i64 {
                return Err(At::body("namespace").invalid(format!(
                    "this account has {} vector namespaces, its limit of {limit} (every project's together); store into one of them or delete one (DELETE …/database/vectors {{\"namespace\": …, \"delete_all\": true}})",
                    used.unwrap_or(0)
                )));
            }
            let now = self.clock.now().timestamp_millis();
            let rec = NamespaceRecord {
                namespace: ns.to_owned(),
                index: index_name(&p.id, ns, &ids::random_base62(16)),
                dimension,
                metric: Metric::Cosine,
                count: 0,
                created_at: now,
                updated_at: now,
                deleting: false,
            };
            let unchanged = match used {
                Some(n) => Condition::Equals(ACCOUNT_NAMESPACES.into(), V::int(n)),
                None => Condition::AttributeNotExists(ACCOUNT_NAMESPACES.into()),
            };
            let ops = vec![
                TxOp::Put {
                    item: to_item(&keys::vector_namespace(&p.id, ns), &rec, None)?,
                    condition: Some(Condition::NotExists),
                },
                TxOp::Update {
                    key: account_key,
                    updates: vec![Update::Set(
                        ACCOUNT_NAMESPACES.into(),
                        V::int(used.unwrap_or(0) + 1),
                    )],
                    condition: Some(Condition::All(vec![Condition::Exists, unchanged])),
                },
            ];
            match self.table.transact(ops).await {
                Ok(()) => {
                    self.create_index(&rec).await?;
                    return Ok(rec);
                }
                // Another request made this namespace, or another of the account's, at
                // the same moment: read again.
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(DomainError::Conflict(
            "the account's namespaces changed during the request; retry".into(),
        ))
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

    /// Moves the namespace's count and the project's by `n`, unless the namespace is
    /// gone or being deleted (its vectors go with it, and its count with them).
    async fn add_count(
        &self,
        p: &Project,
        rec: &NamespaceRecord,
        n: i64,
    ) -> Result<(), DomainError> {
        let now = self.clock.now().timestamp_millis();
        let mut ops = vec![TxOp::Update {
            key: keys::vector_namespace(&p.id, &rec.namespace),
            updates: vec![
                Update::Add("count".into(), n),
                Update::Set("updated_at".into(), V::int(now)),
            ],
            condition: Some(Condition::All(vec![
                Condition::Equals("index".into(), V::S(rec.index.clone())),
                Condition::AttributeNotExists("deleting".into()),
            ])),
        }];
        if n != 0 {
            ops.push(count(&p.id, &[(STAT_VECTORS, n)]));
        }
        match self.table.transact(ops).await {
            Ok(()) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The project's vectors (its counter; never below 0).
    async fn project_vectors(&self, p: &Project) -> Result<i64, DomainError> {
        Ok(self
            .table
            .get(&keys::project_stats(&p.id))
            .await?
            .map(|item| crate::project::number(&item, STAT_VECTORS).max(0))
            .unwrap_or(0))
    }

    /// Checks what does not need the namespace: ids unique, each vector the size of the
    /// first and not all zeros, documents and metadata within S3 Vectors' limits.
    fn check_items(items: &[NewVector]) -> Result<(), DomainError> {
        let dimension = items[0].vector.len();
        let mut seen = HashSet::with_capacity(items.len());
        for it in items {
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
            if it.vector.len() != dimension {
                return Err(it.vector_at.clone().invalid(format!(
                    "{} dimensions, where this request's first vector has {dimension}; one namespace holds vectors of one size",
                    it.vector.len()
                )));
            }
            if it.vector.iter().all(|x| *x == 0.0) {
                return Err(zero_vector(&it.vector_at));
            }
        }
        Ok(())
    }

    /// A namespace's dimension, if it exists (for checks before work is done).
    pub async fn dimension(&self, p: &Project, ns: &str) -> Result<Option<usize>, DomainError> {
        Ok(self.live(p, ns).await?.map(|r| r.dimension))
    }

    /// Whether the account can make `new` more namespaces (checked again, atomically,
    /// as each is made).
    pub async fn check_room(&self, p: &Project, new: usize) -> Result<(), DomainError> {
        if new == 0 {
            return Ok(());
        }
        let used = self
            .table
            .get(&keys::account(&p.account_id))
            .await?
            .and_then(|a| a.get(ACCOUNT_NAMESPACES).and_then(V::as_i64))
            .unwrap_or(0)
            .max(0) as usize;
        let limit = self.limits.namespaces_per_account;
        if used + new > limit {
            return Err(At::body("vectors").invalid(format!(
                "this request makes {new} new namespaces; the account has {used} of its {limit}"
            )));
        }
        Ok(())
    }

    /// Stores up to 1,000 vectors in a namespace (made by the first), replacing any with
    /// the same id; ids are made for vectors sent without one. Everything is checked
    /// before anything is written.
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
        Self::check_items(&items)?;
        let dimension = items[0].vector.len();
        if let Some(rec) = self.live(p, ns).await?
            && rec.dimension != dimension
        {
            return Err(Self::dimension_error(&rec, dimension, &items[0].vector_at));
        }
        let stored = self.project_vectors(p).await?;
        let limit = self.limits.vectors_per_project as i64;
        if stored + items.len() as i64 > limit {
            // Vectors with ids may replace stored ones (counted below, once the engine
            // says which exist); vectors without are all new.
            let new = items.iter().filter(|i| i.id.is_none()).count() as i64;
            if stored + new > limit {
                return Err(At::body_root().invalid(format!(
                    "project {} holds {stored} vectors, its limit of {limit}; delete some or use another project",
                    p.id
                )));
            }
        }
        let rec = self.ensure(p, ns, dimension).await?;
        if rec.dimension != dimension {
            return Err(Self::dimension_error(&rec, dimension, &items[0].vector_at));
        }
        let mut prepared = Vec::with_capacity(items.len());
        for it in items {
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
        let spec = IndexSpec {
            name: rec.index.clone(),
            dimension: rec.dimension,
            metric: rec.metric,
            non_filterable: vec![DOCUMENT_KEY.to_owned()],
        };
        for chunk in prepared.chunks(MAX_PUT) {
            port::check_put(&spec, chunk).map_err(engine)?;
        }
        let ids: Vec<String> = prepared.iter().map(|v| v.key.clone()).collect();
        let before = self.existing(&rec.index, &ids).await?;
        let inserted = ids.len() - before.len();
        if stored + inserted as i64 > limit {
            return Err(At::body_root().invalid(format!(
                "project {} holds {stored} vectors and this adds {inserted}: over its limit of {limit}; delete some or use another project",
                p.id
            )));
        }
        let mut rest = prepared;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(MAX_PUT));
            let chunk = std::mem::replace(&mut rest, tail);
            let added = chunk.iter().filter(|v| !before.contains(&v.key)).count() as i64;
            match self.vectors.put(&rec.index, chunk.clone()).await {
                Ok(()) => {}
                // The index was lost while its record stands (its creation cut short):
                // make it again, once, if the record is still this one.
                Err(VectorError::NoSuchIndex(_)) => match self.record(p, ns).await? {
                    Some(now) if now.index == rec.index && !now.deleting => {
                        self.create_index(&rec).await?;
                        self.vectors.put(&rec.index, chunk).await.map_err(engine)?;
                    }
                    _ => return Err(deleted_meanwhile(ns)),
                },
                Err(e) => return Err(engine(e)),
            }
            // Counted as each chunk lands, so a failure later counts what was written.
            self.add_count(p, &rec, added).await?;
        }
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

    /// The nearest vectors of a namespace (none when it holds none yet), as many as fit
    /// one answer ([`crate::project::ANSWER_BYTES`]); `true` when some were left out.
    pub async fn search(
        &self,
        p: &Project,
        ns: &str,
        q: Search,
    ) -> Result<(Vec<Hit>, bool), DomainError> {
        check_namespace(ns).map_err(|m| At::body("namespace").invalid(m))?;
        if q.top_k == 0 || q.top_k > MAX_TOP_K {
            return Err(
                At::body("top_k").invalid(format!("top_k is 1–{MAX_TOP_K}, not {}", q.top_k))
            );
        }
        let Some(rec) = self.live(p, ns).await? else {
            return Ok((Vec::new(), false));
        };
        if q.vector.len() != rec.dimension {
            return Err(Self::dimension_error(
                &rec,
                q.vector.len(),
                &At::body("vector"),
            ));
        }
        if q.vector.iter().all(|x| *x == 0.0) {
            return Err(zero_vector(&At::body("vector")));
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
            let got = match self.vectors.get(&rec.index, &keys, true, false).await {
                Ok(g) => g,
                Err(VectorError::NoSuchIndex(_)) => Vec::new(),
                Err(e) => return Err(engine(e)),
            };
            let mut by_key: std::collections::HashMap<String, Vec<f32>> = got
                .into_iter()
                .filter_map(|f| f.data.map(|d| (f.key, d)))
                .collect();
            for h in &mut hits {
                h.values = by_key.remove(&h.id);
            }
        }
        let kept = fit(&hits, |h| {
            answer_bytes(
                h.values.as_deref(),
                &h.metadata,
                h.document.as_deref(),
                &h.id,
            )
        });
        let cut = kept < hits.len();
        hits.truncate(kept);
        Ok((hits, cut))
    }

    /// Up to 100 vectors by id, in the order asked (missing ones left out), as many as
    /// fit one answer; `true` when some were left out.
    pub async fn get(
        &self,
        p: &Project,
        ns: &str,
        ids: &[String],
        values: bool,
    ) -> Result<(Vec<StoredVector>, bool), DomainError> {
        if ids.len() > MAX_GET {
            return Err(At::query("ids").invalid(format!(
                "{} ids; one call reads at most {MAX_GET}",
                ids.len()
            )));
        }
        for id in ids {
            check_id(id, &At::query("ids"))?;
        }
        let Some(rec) = self.live(p, ns).await? else {
            return Ok((Vec::new(), false));
        };
        if ids.is_empty() {
            return Ok((Vec::new(), false));
        }
        let got = match self.vectors.get(&rec.index, ids, values, true).await {
            Ok(g) => g,
            Err(VectorError::NoSuchIndex(_)) => Vec::new(),
            Err(e) => return Err(engine(e)),
        };
        let mut by_key: std::collections::HashMap<String, Fetched> =
            got.into_iter().map(|f| (f.key.clone(), f)).collect();
        let mut out: Vec<StoredVector> = ids
            .iter()
            .filter_map(|id| by_key.remove(id))
            .map(|f| stored(ns, f))
            .collect();
        let kept = fit(&out, stored_bytes);
        let cut = kept < out.len();
        out.truncate(kept);
        Ok((out, cut))
    }

    /// One page of a namespace's vectors (in the engine's order), after `cursor`: at most
    /// `limit`, and no more than fit one answer. The cursor names the engine's page and
    /// how many of it were already returned, so a page cut for size goes on where it
    /// stopped.
    pub async fn list(
        &self,
        p: &Project,
        ns: &str,
        limit: usize,
        cursor: Option<&str>,
        values: bool,
    ) -> Result<(Vec<StoredVector>, Option<String>), DomainError> {
        let bad = || {
            At::query("cursor")
                .invalid("cursor is not one this API issued; pass next_cursor from the previous page unchanged")
        };
        let (skip, page_limit, engine_cursor) = match cursor {
            None => (0, limit.clamp(1, MAX_LIST), None),
            Some(c) => {
                let mut parts = c.splitn(3, '~');
                let skip: usize = parts.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
                let page: usize = parts.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
                let rest = parts.next().ok_or_else(bad)?;
                if page == 0 || page > MAX_LIST || skip >= page {
                    return Err(bad());
                }
                (skip, page, (!rest.is_empty()).then(|| rest.to_owned()))
            }
        };
        let Some(rec) = self.live(p, ns).await? else {
            return Ok((Vec::new(), None));
        };
        let page = match self
            .vectors
            .list(
                &rec.index,
                engine_cursor.as_deref(),
                page_limit,
                values,
                true,
            )
            .await
        {
            Ok(page) => page,
            Err(VectorError::NoSuchIndex(_)) => return Ok((Vec::new(), None)),
            Err(VectorError::Invalid(_)) => return Err(bad()),
            Err(e) => return Err(engine(e)),
        };
        let all: Vec<StoredVector> = page
            .vectors
            .into_iter()
            .skip(skip)
            .map(|f| stored(ns, f))
            .collect();
        let kept = fit(&all, stored_bytes).max(1).min(all.len());
        let next = if kept < all.len() {
            Some(format!(
                "{}~{page_limit}~{}",
                skip + kept,
                engine_cursor.unwrap_or_default()
            ))
        } else {
            page.cursor.map(|c| format!("0~{page_limit}~{c}"))
        };
        let mut out = all;
        out.truncate(kept);
        Ok((out, next))
    }

    /// `limit` vectors after skipping `offset` (≤ 10,000), for clients that page by
    /// offset (values not included).
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
        let limit = limit.clamp(1, MAX_LIST);
        let mut skipped = 0;
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let (page, next) = self.list(p, ns, MAX_LIST, cursor.as_deref(), false).await?;
            for v in page {
                if skipped < offset {
                    skipped += 1;
                } else if out.len() < limit {
                    out.push(v);
                }
            }
            let full = fit(&out, stored_bytes) < out.len();
            match next {
                Some(c) if out.len() < limit && !full => cursor = Some(c),
                _ => {
                    let kept = fit(&out, stored_bytes).max(1).min(out.len());
                    out.truncate(kept);
                    return Ok(out);
                }
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
        for id in ids {
            check_id(id, &At::body("ids"))?;
        }
        let Some(rec) = self.live(p, ns).await? else {
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
        self.add_count(p, &rec, -(doomed.len() as i64)).await?;
        Ok(doomed.len())
    }

    /// Deletes the vectors whose metadata match `filter` (not empty: `delete_all`
    /// deletes everything), a page at a time, reading at most 20,000 vectors or working
    /// 10 s; returns (deleted, whether the whole namespace was read).
    pub async fn delete_filter(
        &self,
        p: &Project,
        ns: &str,
        filter: &Value,
    ) -> Result<(usize, bool), DomainError> {
        check_filter(filter, &At::body("filter"))?;
        if filter.as_object().is_some_and(Map::is_empty) {
            return Err(At::body("filter").invalid(
                "an empty filter matches every vector; send delete_all: true to delete the whole namespace",
            ));
        }
        let parsed = Filter::parse(filter).map_err(|e| At::body("filter").invalid(e.msg))?;
        let Some(rec) = self.live(p, ns).await? else {
            return Ok((0, true));
        };
        let started = std::time::Instant::now();
        let mut cursor: Option<String> = None;
        let mut read = 0;
        let mut deleted = 0;
        loop {
            let page = match self
                .vectors
                .list(&rec.index, cursor.as_deref(), MAX_DELETE, false, true)
                .await
            {
                Ok(page) => page,
                Err(VectorError::NoSuchIndex(_)) => return Ok((deleted, true)),
                Err(e) => return Err(engine(e)),
            };
            read += page.vectors.len();
            let doomed: Vec<String> = page
                .vectors
                .into_iter()
                .filter(|f| {
                    let mut m = f.metadata.clone().unwrap_or_default();
                    m.remove(DOCUMENT_KEY);
                    parsed.matches(&Value::Object(m))
                })
                .map(|f| f.key)
                .collect();
            if !doomed.is_empty() {
                match self.vectors.delete(&rec.index, &doomed).await {
                    Ok(()) | Err(VectorError::NoSuchIndex(_)) => {}
                    Err(e) => return Err(engine(e)),
                }
                self.add_count(p, &rec, -(doomed.len() as i64)).await?;
                deleted += doomed.len();
            }
            let out_of_budget =
                read >= MAX_FILTER_SCAN || started.elapsed().as_secs() >= FILTER_DELETE_SECS;
            match page.cursor {
                // A page whose vectors were deleted moves the listing: read from the
                // start again (those deleted are gone from it).
                Some(c) if !out_of_budget => {
                    cursor = if doomed.is_empty() { Some(c) } else { cursor };
                }
                Some(_) => return Ok((deleted, false)),
                None => return Ok((deleted, true)),
            }
        }
    }

    /// Deletes a namespace and every vector in it; returns how many it held. The record
    /// is marked first (writes then refuse it), the index deleted, then the record: a
    /// failure on the way leaves the mark, and the next write or delete finishes it.
    pub async fn delete_all(&self, p: &Project, ns: &str) -> Result<i64, DomainError> {
        let Some(rec) = self.record(p, ns).await? else {
            return Ok(0);
        };
        if !rec.deleting {
            let marked = self
                .table
                .update(
                    &keys::vector_namespace(&p.id, ns),
                    vec![Update::Set("deleting".into(), V::Bool(true))],
                    Some(Condition::Equals("index".into(), V::S(rec.index.clone()))),
                )
                .await;
            match marked {
                Ok(_) => {}
                Err(StoreError::Conflict) => return Ok(0),
                Err(e) => return Err(e.into()),
            }
        }
        self.finish_delete(p, &rec).await
    }

    /// Deletes a marked namespace's index, then its record, its count and its slot in
    /// the account (idempotent: a second caller finds nothing left to do).
    async fn finish_delete(&self, p: &Project, rec: &NamespaceRecord) -> Result<i64, DomainError> {
        match self.vectors.delete_index(&rec.index).await {
            Ok(()) | Err(VectorError::NoSuchIndex(_)) => {}
            Err(e) => return Err(engine(e)),
        }
        // The count is final once marked (writes no longer add to it): read it now.
        let Some(now) = self.record(p, &rec.namespace).await? else {
            return Ok(0);
        };
        if now.index != rec.index {
            return Ok(0);
        }
        let ops = vec![
            TxOp::Delete {
                key: keys::vector_namespace(&p.id, &rec.namespace),
                condition: Some(Condition::Equals("index".into(), V::S(rec.index.clone()))),
            },
            count(&p.id, &[(STAT_VECTORS, -now.count.max(0))]),
            TxOp::Update {
                key: keys::account(&p.account_id),
                updates: vec![Update::Add(ACCOUNT_NAMESPACES.into(), -1)],
                condition: Some(Condition::Exists),
            },
        ];
        match self.table.transact(ops).await {
            Ok(()) => Ok(now.count.max(0)),
            Err(StoreError::Conflict) => Ok(0),
            Err(e) => Err(e.into()),
        }
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
        let rec = self.live(p, ns).await?.ok_or_else(missing)?;
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
        match self
            .vectors
            .put(
                &rec.index,
                vec![VectorItem {
                    key: id.to_owned(),
                    data: data.clone(),
                    metadata: written,
                }],
            )
            .await
        {
            Ok(()) => {}
            Err(VectorError::NoSuchIndex(_)) => return Err(missing()),
            Err(e) => return Err(engine(e)),
        }
        Ok(StoredVector {
            id: id.to_owned(),
            namespace: ns.to_owned(),
            metadata,
            document,
            values: Some(data),
        })
    }

    /// The project's namespaces (those not being deleted), by name.
    pub async fn namespaces(&self, p: &Project) -> Result<Vec<NamespaceStats>, DomainError> {
        let page = self
            .table
            .query(
                Query::partition(keys::database_partition(&p.id))
                    .begins_with(keys::VECTOR_NAMESPACE_PREFIX)
                    .limit(self.limits.namespaces_per_account + 1),
            )
            .await?;
        let mut out = Vec::new();
        for item in page.items {
            let r: NamespaceRecord = from_item(item)?;
            if !r.deleting {
                out.push(ns_stats(r));
            }
        }
        Ok(out)
    }

    /// One namespace's figures, if it exists.
    pub async fn namespace(
        &self,
        p: &Project,
        ns: &str,
    ) -> Result<Option<NamespaceStats>, DomainError> {
        Ok(self.live(p, ns).await?.map(ns_stats))
    }
}

fn ns_stats(r: NamespaceRecord) -> NamespaceStats {
    NamespaceStats {
        namespace: r.namespace,
        vector_count: r.count.max(0),
        dimension: r.dimension,
        metric: r.metric,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

fn stored_bytes(v: &StoredVector) -> usize {
    answer_bytes(
        v.values.as_deref(),
        &v.metadata,
        v.document.as_deref(),
        &v.id,
    )
}

/// How many of `items`, in order, fit one answer.
fn fit<T>(items: &[T], size: impl Fn(&T) -> usize) -> usize {
    let mut total = 0;
    for (i, it) in items.iter().enumerate() {
        total += size(it);
        if total > crate::project::ANSWER_BYTES {
            return i;
        }
    }
    items.len()
}

/// Deletes the indexes of a deleted project's namespaces with their records, freeing
/// their slots in the account; for the purge.
pub async fn purge_indexes(
    table: &Arc<dyn Table>,
    vectors: &Arc<dyn Vectors>,
    account_id: &str,
    project_id: &str,
) -> Result<(), DomainError> {
    loop {
        let page = table
            .query(
                Query::partition(keys::database_partition(project_id))
                    .begins_with(keys::VECTOR_NAMESPACE_PREFIX)
                    .limit(100),
            )
            .await?;
        if page.items.is_empty() {
            return Ok(());
        }
        for item in page.items {
            let Some(key) = zerodb_domain::store::Key::of(&item) else {
                continue;
            };
            if let Some(index) = item.get("index").and_then(V::as_str) {
                match vectors.delete_index(index).await {
                    Ok(()) | Err(VectorError::NoSuchIndex(_)) => {}
                    Err(e) => return Err(engine(e)),
                }
            }
            let ops = vec![
                TxOp::Delete {
                    key,
                    condition: None,
                },
                TxOp::Update {
                    key: keys::account(account_id),
                    updates: vec![Update::Add(ACCOUNT_NAMESPACES.into(), -1)],
                    condition: Some(Condition::Exists),
                },
            ];
            match table.transact(ops).await {
                // The account itself is gone: nothing to free.
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_are_valid_and_distinct() {
        let a = index_name("proj_1", "default", "n");
        let b = index_name("proj_1", "other", "n");
        let c = index_name("proj_2", "default", "n");
        assert!(port::valid_index_name(&a), "{a}");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, index_name("proj_1", "default", "m"), "a new incarnation");
        // The separator keeps ("p", "1x") and ("p1", "x") apart.
        assert_ne!(index_name("p", "1x", "n"), index_name("p1", "x", "n"));
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
