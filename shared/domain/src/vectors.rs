//! The `Vectors` port: S3 Vectors-shaped indexes of fixed dimension and metric, with put /
//! get / delete / list by key and a top-k query by vector with a metadata filter.
//!
//! The semantics are Amazon S3 Vectors' (the AWS adapter passes calls through); the
//! embedded adapter and the test fake follow them, and one conformance suite
//! (`tests/src/vectors_conformance.rs`) holds all three to it. The limits below are
//! S3 Vectors' own, checked by every adapter so a call that works locally works on AWS.

use async_trait::async_trait;
use serde_json::{Map, Value};

/// Dimensions of a vector: 1 ..= 4,096.
pub const MAX_DIMENSION: usize = 4096;
/// Vectors per `put` (S3 Vectors' PutVectors).
pub const MAX_PUT: usize = 500;
/// Keys per `get` (GetVectors).
pub const MAX_GET: usize = 100;
/// Keys per `delete` (DeleteVectors).
pub const MAX_DELETE: usize = 500;
/// Results per `query` (QueryVectors' topK).
pub const MAX_TOP_K: usize = 100;
/// Vectors per `list` page (ListVectors' maxResults).
pub const MAX_LIST: usize = 1000;
/// A vector key: 1 ..= 1,024 characters.
pub const MAX_KEY_CHARS: usize = 1024;
/// All of a vector's metadata, as JSON.
pub const MAX_METADATA_BYTES: usize = 40 * 1024;
/// The filterable part of a vector's metadata (every key not declared non-filterable).
pub const MAX_FILTERABLE_METADATA_BYTES: usize = 2 * 1024;
/// Metadata keys per vector.
pub const MAX_METADATA_KEYS: usize = 50;
/// Keys an index may declare non-filterable.
pub const MAX_NON_FILTERABLE_KEYS: usize = 10;

/// How an index compares vectors; fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Distance = 1 − cosine similarity (0 for the same direction, 2 for opposite).
    Cosine,
    /// Distance = the Euclidean (L2) distance.
    Euclidean,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Euclidean => "euclidean",
        }
    }
}

/// An index as created: name (3–63 characters of `a-z 0-9 - .`, starting and ending with
/// a letter or digit), dimension and metric, and the metadata keys stored but not
/// filterable (for long text such as a document).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    pub name: String,
    pub dimension: usize,
    pub metric: Metric,
    pub non_filterable: Vec<String>,
}

/// A vector to write: a `put` of an existing key replaces it whole.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorItem {
    pub key: String,
    pub data: Vec<f32>,
    pub metadata: Map<String, Value>,
}

/// A vector as read back: data and metadata only when asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub key: String,
    pub data: Option<Vec<f32>>,
    pub metadata: Option<Map<String, Value>>,
}

/// One page of a listing, in no particular order; `cursor` is present when more follow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListPage {
    pub vectors: Vec<Fetched>,
    pub cursor: Option<String>,
}

/// A query: the `top_k` nearest vectors to `vector` among those whose metadata match
/// `filter` (S3 Vectors' filter document: `$eq $ne $gt $gte $lt $lte $in $nin $exists
/// $and $or` and implicit equality over metadata keys; a list-valued key matches when
/// any element does).
#[derive(Debug, Clone, PartialEq)]
pub struct VectorQuery {
    pub vector: Vec<f32>,
    pub top_k: usize,
    pub filter: Option<Value>,
    pub return_metadata: bool,
}

/// One result of a query, nearest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub key: String,
    /// As the index's [`Metric`] defines it; smaller is nearer.
    pub distance: f32,
    pub metadata: Option<Map<String, Value>>,
}

/// Errors of the vectors port.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("no vector index named {0}")]
    NoSuchIndex(String),
    #[error("a vector index named {0} already exists")]
    IndexExists(String),
    /// The engine refused the request's content (a wrong dimension, a bad filter, a
    /// limit above); the message says which.
    #[error("{0}")]
    Invalid(String),
    /// A quota of the engine was reached (indexes per bucket, for one).
    #[error("{0}")]
    LimitReached(String),
    #[error("the vector engine is throttling requests")]
    Throttled,
    #[error(transparent)]
    Backend(#[from] anyhow::Error),
}

/// S3 Vectors-shaped vector indexes.
#[async_trait]
pub trait Vectors: Send + Sync {
    /// Creates an index; `IndexExists` if one has that name.
    async fn create_index(&self, spec: &IndexSpec) -> Result<(), VectorError>;
    async fn get_index(&self, name: &str) -> Result<Option<IndexSpec>, VectorError>;
    /// Deletes an index and every vector in it; deleting a missing index succeeds.
    async fn delete_index(&self, name: &str) -> Result<(), VectorError>;
    /// Writes up to [`MAX_PUT`] vectors, all or none; a key given twice is `Invalid`.
    async fn put(&self, index: &str, items: Vec<VectorItem>) -> Result<(), VectorError>;
    /// Up to [`MAX_GET`] keys; missing keys are left out, the rest in no set order.
    async fn get(
        &self,
        index: &str,
        keys: &[String],
        data: bool,
        metadata: bool,
    ) -> Result<Vec<Fetched>, VectorError>;
    /// Up to [`MAX_DELETE`] keys; missing keys are no error.
    async fn delete(&self, index: &str, keys: &[String]) -> Result<(), VectorError>;
    /// Up to `limit` (≤ [`MAX_LIST`]) vectors after `cursor`.
    async fn list(
        &self,
        index: &str,
        cursor: Option<&str>,
        limit: usize,
        data: bool,
        metadata: bool,
    ) -> Result<ListPage, VectorError>;
    /// The nearest vectors, nearest first (ties in any order).
    async fn query(&self, index: &str, query: &VectorQuery) -> Result<Vec<Match>, VectorError>;
}

/// Whether `name` is a valid index name (3–63 of `a-z 0-9 - .`, letter or digit at
/// both ends).
pub fn valid_index_name(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// The distance between two vectors of one length under `metric`, in f32 as S3 Vectors
/// computes it; a zero vector is at cosine distance 1 from everything.
pub fn distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::Cosine => {
            let (mut dot, mut na, mut nb) = (0f32, 0f32, 0f32);
            for (x, y) in a.iter().zip(b) {
                dot += x * y;
                na += x * x;
                nb += y * y;
            }
            if na == 0.0 || nb == 0.0 {
                1.0
            } else {
                1.0 - dot / (na.sqrt() * nb.sqrt())
            }
        }
        Metric::Euclidean => a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt(),
    }
}

/// Checks what every adapter checks before writing: the batch size, each key, the
/// dimension, finite values and the metadata limits. The message names the vector.
pub fn check_put(spec: &IndexSpec, items: &[VectorItem]) -> Result<(), VectorError> {
    if items.is_empty() || items.len() > MAX_PUT {
        return Err(VectorError::Invalid(format!(
            "a put takes 1 to {MAX_PUT} vectors, not {}",
            items.len()
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        check_key(&item.key)?;
        if !seen.insert(item.key.as_str()) {
            return Err(VectorError::Invalid(format!(
                "vectors[{i}]: the key {:?} is given twice in one put",
                item.key
            )));
        }
        if item.data.len() != spec.dimension {
            return Err(VectorError::Invalid(format!(
                "vectors[{i}]: {} dimensions where the index has {}",
                item.data.len(),
                spec.dimension
            )));
        }
        if spec.metric == Metric::Cosine && item.data.iter().all(|x| *x == 0.0) {
            return Err(VectorError::Invalid(format!(
                "vectors[{i}]: a zero vector has no direction in a cosine index"
            )));
        }
        if let Some(at) = item.data.iter().position(|x| !x.is_finite()) {
            return Err(VectorError::Invalid(format!(
                "vectors[{i}]: value {at} is not a finite number"
            )));
        }
        check_metadata(spec, &item.metadata).map_err(|e| match e {
            VectorError::Invalid(m) => VectorError::Invalid(format!("vectors[{i}]: {m}")),
            other => other,
        })?;
    }
    Ok(())
}

/// A key's length.
pub fn check_key(key: &str) -> Result<(), VectorError> {
    let n = key.chars().count();
    if n == 0 || n > MAX_KEY_CHARS {
        return Err(VectorError::Invalid(format!(
            "a vector key has 1 to {MAX_KEY_CHARS} characters, not {n}"
        )));
    }
    Ok(())
}

/// Metadata limits: keys, total size, filterable size.
pub fn check_metadata(spec: &IndexSpec, metadata: &Map<String, Value>) -> Result<(), VectorError> {
    if metadata.len() > MAX_METADATA_KEYS {
        return Err(VectorError::Invalid(format!(
            "metadata has {} keys; at most {MAX_METADATA_KEYS}",
            metadata.len()
        )));
    }
    let (mut all, mut filterable) = (2usize, 2usize);
    for (k, v) in metadata {
        let size = k.len() + 4 + serde_json::to_string(v).map(|s| s.len()).unwrap_or(0);
        all += size;
        if !spec.non_filterable.iter().any(|n| n == k) {
            filterable += size;
        }
    }
    if all > MAX_METADATA_BYTES {
        return Err(VectorError::Invalid(format!(
            "metadata is {all} bytes; at most {MAX_METADATA_BYTES}"
        )));
    }
    if filterable > MAX_FILTERABLE_METADATA_BYTES {
        return Err(VectorError::Invalid(format!(
            "filterable metadata is {filterable} bytes; at most {MAX_FILTERABLE_METADATA_BYTES}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_follow_s3_vectors_rules() {
        assert!(valid_index_name("abc"));
        assert!(valid_index_name("v-0a.b9"));
        assert!(!valid_index_name("ab"));
        assert!(!valid_index_name("-ab"));
        assert!(!valid_index_name("ab-"));
        assert!(!valid_index_name("aBc"));
        assert!(!valid_index_name(&"a".repeat(64)));
    }

    #[test]
    fn distances() {
        assert!((distance(Metric::Cosine, &[1.0, 0.0], &[2.0, 0.0])).abs() < 1e-6);
        assert!((distance(Metric::Cosine, &[1.0, 0.0], &[-1.0, 0.0]) - 2.0).abs() < 1e-6);
        assert_eq!(distance(Metric::Cosine, &[0.0, 0.0], &[1.0, 0.0]), 1.0);
        assert!((distance(Metric::Euclidean, &[0.0, 0.0], &[3.0, 4.0]) - 5.0).abs() < 1e-6);
    }
}
