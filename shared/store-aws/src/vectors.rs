//! The `Vectors` port on Amazon S3 Vectors: one vector bucket (the adapter's), one S3
//! Vectors index per port index, each call one S3 Vectors request (a `put` whose index
//! spec is not cached yet makes two: GetIndex, then PutVectors).
//!
//! The port's checks (`check_put`, the batch and page limits, index names) run here before
//! anything is sent, so a request S3 Vectors would refuse is refused with the same error
//! kind without a round trip, and the embedded adapter refuses the same calls.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_s3vectors::Client;
use aws_sdk_s3vectors::config::http::HttpResponse;
use aws_sdk_s3vectors::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3vectors::types::{
    DataType, DistanceMetric, MetadataConfiguration, PutInputVector, VectorData,
};
use aws_smithy_types::{Document, Number};
use serde_json::{Map, Value};
use zerodb_domain::filter::Filter;
use zerodb_domain::vectors::{
    Fetched, IndexSpec, ListPage, MAX_DELETE, MAX_DIMENSION, MAX_GET, MAX_LIST,
    MAX_NON_FILTERABLE_KEYS, MAX_TOP_K, Match, Metric, VectorError, VectorItem, VectorQuery,
    Vectors, check_key, check_put, valid_index_name,
};

/// Index specs held at most; the cache is emptied when it would grow past this (a process
/// touches few indexes, and a miss costs one GetIndex).
const SPEC_CACHE_MAX: usize = 1024;

/// The `Vectors` port over one S3 Vectors vector bucket.
///
/// `put` needs the index's spec (dimension, non-filterable keys) to run `check_put`. Specs
/// are immutable once an index exists, so they are cached per index name, filled by
/// `create_index`, `get_index` and the first `put`, and dropped by `delete_index` and by
/// any NotFound or validation error on that index. A spec can only go stale when another
/// process deletes the index and creates one of the same name with another spec; S3
/// Vectors still validates every put itself, so a stale spec costs at most a less precise
/// local check, and the error that follows drops it. Reads, lists, deletes and queries
/// never need the spec.
pub struct AwsVectors {
    client: Client,
    bucket: String,
    specs: Mutex<HashMap<String, IndexSpec>>,
}

impl AwsVectors {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        AwsVectors {
            client,
            bucket: bucket.into(),
            specs: Mutex::new(HashMap::new()),
        }
    }

    /// The vector bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn cached(&self, index: &str) -> Option<IndexSpec> {
        self.specs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(index)
            .cloned()
    }

    fn remember(&self, spec: &IndexSpec) {
        let mut specs = self.specs.lock().unwrap_or_else(|e| e.into_inner());
        if specs.len() >= SPEC_CACHE_MAX && !specs.contains_key(&spec.name) {
            specs.clear();
        }
        specs.insert(spec.name.clone(), spec.clone());
    }

    fn forget(&self, index: &str) {
        self.specs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(index);
    }

    /// The spec `put` checks against: cached, or read with GetIndex.
    async fn spec(&self, index: &str) -> Result<IndexSpec, VectorError> {
        if let Some(spec) = self.cached(index) {
            return Ok(spec);
        }
        self.get_index(index)
            .await?
            .ok_or_else(|| VectorError::NoSuchIndex(index.to_owned()))
    }

    /// Maps a failed call: by the error's code, which every S3 Vectors operation shares.
    fn error<E>(&self, op: &'static str, index: &str, err: SdkError<E, HttpResponse>) -> VectorError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let service = err.as_service_error();
        let code = service.and_then(ProvideErrorMetadata::code);
        let message = service
            .and_then(ProvideErrorMetadata::message)
            .unwrap_or("no message")
            .to_owned();
        match code {
            // A missing vector bucket is a deployment error, not a missing index: loud.
            Some("NotFoundException") if !is_bucket_message(&message) => {
                self.forget(index);
                VectorError::NoSuchIndex(index.to_owned())
            }
            Some("ConflictException") if op == "CreateIndex" => {
                VectorError::IndexExists(index.to_owned())
            }
            Some("ValidationException") => {
                // The index may have been replaced since its spec was cached.
                self.forget(index);
                VectorError::Invalid(message)
            }
            Some("ServiceQuotaExceededException") => VectorError::LimitReached(message),
            Some(
                "TooManyRequestsException"
                | "ThrottlingException"
                | "ServiceUnavailableException"
                | "SlowDown",
            ) => {
                tracing::warn!(bucket = %self.bucket, index, op, "S3 Vectors is throttling");
                VectorError::Throttled
            }
            _ => VectorError::Backend(
                anyhow::Error::new(err).context(format!("S3 Vectors {op} on index {index} failed")),
            ),
        }
    }
}

fn is_bucket_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("bucket") && !m.contains("index")
}

fn metric_of(m: Metric) -> DistanceMetric {
    match m {
        Metric::Cosine => DistanceMetric::Cosine,
        Metric::Euclidean => DistanceMetric::Euclidean,
    }
}

fn invalid(msg: impl Into<String>) -> VectorError {
    VectorError::Invalid(msg.into())
}

/// JSON to the SDK's document type; integers stay integers.
pub(crate) fn to_document(v: &Value) -> Document {
    match v {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => Document::Number(if let Some(u) = n.as_u64() {
            Number::PosInt(u)
        } else if let Some(i) = n.as_i64() {
            Number::NegInt(i)
        } else {
            Number::Float(n.as_f64().unwrap_or(0.0))
        }),
        Value::String(s) => Document::String(s.clone()),
        Value::Array(a) => Document::Array(a.iter().map(to_document).collect()),
        Value::Object(m) => {
            Document::Object(m.iter().map(|(k, v)| (k.clone(), to_document(v))).collect())
        }
    }
}

/// Largest integer an f64 holds exactly (2^53).
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// The SDK's document type to JSON. A float with no fractional part comes back as an
/// integer: S3 Vectors may store every number as a double, and an integer put must read
/// back as the same JSON value.
pub(crate) fn from_document(d: &Document) -> Value {
    match d {
        Document::Null => Value::Null,
        Document::Bool(b) => Value::Bool(*b),
        Document::Number(Number::PosInt(u)) => Value::from(*u),
        Document::Number(Number::NegInt(i)) => Value::from(*i),
        Document::Number(Number::Float(f)) => {
            if f.is_finite() && f.fract() == 0.0 && f.abs() <= EXACT_INT {
                Value::from(*f as i64)
            } else {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
        }
        Document::String(s) => Value::String(s.clone()),
        Document::Array(a) => Value::Array(a.iter().map(from_document).collect()),
        Document::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), from_document(v)))
                .collect(),
        ),
    }
}

/// Metadata as the port returns it: an object (empty when the vector has none).
fn metadata_of(d: Option<&Document>) -> Map<String, Value> {
    match d.map(from_document) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn data_of(d: Option<&VectorData>) -> Result<Option<Vec<f32>>, VectorError> {
    match d {
        None => Ok(None),
        Some(VectorData::Float32(v)) => Ok(Some(v.clone())),
        Some(other) => Err(VectorError::Backend(anyhow::anyhow!(
            "S3 Vectors returned vector data of an unknown type: {other:?}"
        ))),
    }
}

#[async_trait]
impl Vectors for AwsVectors {
    async fn create_index(&self, spec: &IndexSpec) -> Result<(), VectorError> {
        if !valid_index_name(&spec.name) {
            return Err(invalid(format!(
                "{:?} is not a valid index name: 3 to 63 of a-z 0-9 - . starting and ending with a letter or digit",
                spec.name
            )));
        }
        if spec.dimension == 0 || spec.dimension > MAX_DIMENSION {
            return Err(invalid(format!(
                "an index has 1 to {MAX_DIMENSION} dimensions, not {}",
                spec.dimension
            )));
        }
        if spec.non_filterable.len() > MAX_NON_FILTERABLE_KEYS {
            return Err(invalid(format!(
                "an index declares at most {MAX_NON_FILTERABLE_KEYS} non-filterable keys, not {}",
                spec.non_filterable.len()
            )));
        }
        if spec.non_filterable.iter().any(|k| k.is_empty()) {
            return Err(invalid("a non-filterable metadata key is empty"));
        }
        let metadata = if spec.non_filterable.is_empty() {
            None
        } else {
            Some(
                MetadataConfiguration::builder()
                    .set_non_filterable_metadata_keys(Some(spec.non_filterable.clone()))
                    .build()
                    .map_err(|e| VectorError::Backend(e.into()))?,
            )
        };
        self.client
            .create_index()
            .vector_bucket_name(&self.bucket)
            .index_name(&spec.name)
            .data_type(DataType::Float32)
            .dimension(spec.dimension as i32)
            .distance_metric(metric_of(spec.metric))
            .set_metadata_configuration(metadata)
            .send()
            .await
            .map_err(|e| self.error("CreateIndex", &spec.name, e))?;
        tracing::info!(
            bucket = %self.bucket,
            index = %spec.name,
            dimension = spec.dimension,
            metric = spec.metric.as_str(),
            "created vector index"
        );
        self.remember(spec);
        Ok(())
    }

    async fn get_index(&self, name: &str) -> Result<Option<IndexSpec>, VectorError> {
        if !valid_index_name(name) {
            return Ok(None);
        }
        let out = match self
            .client
            .get_index()
            .vector_bucket_name(&self.bucket)
            .index_name(name)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return match self.error("GetIndex", name, e) {
                    VectorError::NoSuchIndex(_) => Ok(None),
                    other => Err(other),
                };
            }
        };
        let Some(index) = out.index else {
            return Err(VectorError::Backend(anyhow::anyhow!(
                "S3 Vectors GetIndex returned no index for {name}"
            )));
        };
        let metric = match index.distance_metric {
            DistanceMetric::Cosine => Metric::Cosine,
            DistanceMetric::Euclidean => Metric::Euclidean,
            other => {
                return Err(VectorError::Backend(anyhow::anyhow!(
                    "index {name} has a distance metric this adapter does not know: {other}"
                )));
            }
        };
        let spec = IndexSpec {
            name: index.index_name,
            dimension: usize::try_from(index.dimension).unwrap_or(0),
            metric,
            non_filterable: index
                .metadata_configuration
                .map(|m| m.non_filterable_metadata_keys)
                .unwrap_or_default(),
        };
        self.remember(&spec);
        Ok(Some(spec))
    }

    async fn delete_index(&self, name: &str) -> Result<(), VectorError> {
        self.forget(name);
        if !valid_index_name(name) {
            return Ok(());
        }
        match self
            .client
            .delete_index()
            .vector_bucket_name(&self.bucket)
            .index_name(name)
            .send()
            .await
        {
            Ok(_) => {
                tracing::info!(bucket = %self.bucket, index = name, "deleted vector index");
                Ok(())
            }
            Err(e) => match self.error("DeleteIndex", name, e) {
                VectorError::NoSuchIndex(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn put(&self, index: &str, items: Vec<VectorItem>) -> Result<(), VectorError> {
        if !valid_index_name(index) {
            return Err(VectorError::NoSuchIndex(index.to_owned()));
        }
        let spec = self.spec(index).await?;
        check_put(&spec, &items)?;
        let count = items.len();
        let vectors = items
            .into_iter()
            .map(|item| {
                PutInputVector::builder()
                    .key(item.key)
                    .data(VectorData::Float32(item.data))
                    .metadata(Document::Object(
                        item.metadata
                            .iter()
                            .map(|(k, v)| (k.clone(), to_document(v)))
                            .collect(),
                    ))
                    .build()
                    .map_err(|e| VectorError::Backend(e.into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.client
            .put_vectors()
            .vector_bucket_name(&self.bucket)
            .index_name(index)
            .set_vectors(Some(vectors))
            .send()
            .await
            .map_err(|e| self.error("PutVectors", index, e))?;
        tracing::debug!(bucket = %self.bucket, index, count, "put vectors");
        Ok(())
    }

    async fn get(
        &self,
        index: &str,
        keys: &[String],
        data: bool,
        metadata: bool,
    ) -> Result<Vec<Fetched>, VectorError> {
        if keys.len() > MAX_GET {
            return Err(invalid(format!(
                "a get takes at most {MAX_GET} keys, not {}",
                keys.len()
            )));
        }
        if !valid_index_name(index) {
            return Err(VectorError::NoSuchIndex(index.to_owned()));
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        for key in keys {
            check_key(key)?;
        }
        let out = self
            .client
            .get_vectors()
            .vector_bucket_name(&self.bucket)
            .index_name(index)
            .set_keys(Some(keys.to_vec()))
            .return_data(data)
            .return_metadata(metadata)
            .send()
            .await
            .map_err(|e| self.error("GetVectors", index, e))?;
        out.vectors
            .into_iter()
            .map(|v| {
                Ok(Fetched {
                    data: if data {
                        data_of(v.data.as_ref())?
                    } else {
                        None
                    },
                    metadata: metadata.then(|| metadata_of(v.metadata.as_ref())),
                    key: v.key,
                })
            })
            .collect()
    }

    async fn delete(&self, index: &str, keys: &[String]) -> Result<(), VectorError> {
        if keys.len() > MAX_DELETE {
            return Err(invalid(format!(
                "a delete takes at most {MAX_DELETE} keys, not {}",
                keys.len()
            )));
        }
        if !valid_index_name(index) {
            return Err(VectorError::NoSuchIndex(index.to_owned()));
        }
        if keys.is_empty() {
            return Ok(());
        }
        for key in keys {
            check_key(key)?;
        }
        self.client
            .delete_vectors()
            .vector_bucket_name(&self.bucket)
            .index_name(index)
            .set_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(|e| self.error("DeleteVectors", index, e))?;
        tracing::debug!(bucket = %self.bucket, index, count = keys.len(), "deleted vectors");
        Ok(())
    }

    async fn list(
        &self,
        index: &str,
        cursor: Option<&str>,
        limit: usize,
        data: bool,
        metadata: bool,
    ) -> Result<ListPage, VectorError> {
        if limit == 0 || limit > MAX_LIST {
            return Err(invalid(format!(
                "a list page holds 1 to {MAX_LIST} vectors, not {limit}"
            )));
        }
        if !valid_index_name(index) {
            return Err(VectorError::NoSuchIndex(index.to_owned()));
        }
        let out = self
            .client
            .list_vectors()
            .vector_bucket_name(&self.bucket)
            .index_name(index)
            .max_results(limit as i32)
            .set_next_token(cursor.filter(|c| !c.is_empty()).map(str::to_owned))
            .return_data(data)
            .return_metadata(metadata)
            .send()
            .await
            .map_err(|e| self.error("ListVectors", index, e))?;
        let vectors = out
            .vectors
            .into_iter()
            .map(|v| {
                Ok(Fetched {
                    data: if data {
                        data_of(v.data.as_ref())?
                    } else {
                        None
                    },
                    metadata: metadata.then(|| metadata_of(v.metadata.as_ref())),
                    key: v.key,
                })
            })
            .collect::<Result<Vec<_>, VectorError>>()?;
        Ok(ListPage {
            vectors,
            cursor: out.next_token.filter(|t| !t.is_empty()),
        })
    }

    async fn query(&self, index: &str, query: &VectorQuery) -> Result<Vec<Match>, VectorError> {
        if query.top_k == 0 || query.top_k > MAX_TOP_K {
            return Err(invalid(format!(
                "a query returns 1 to {MAX_TOP_K} vectors, not {}",
                query.top_k
            )));
        }
        if let Some(at) = query.vector.iter().position(|x| !x.is_finite()) {
            return Err(invalid(format!(
                "query vector value {at} is not a finite number"
            )));
        }
        // The filter's syntax is checked here so a bad one is `Invalid` with a path, as
        // on the embedded adapter; an empty filter is sent as none.
        let filter = match &query.filter {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) if m.is_empty() => None,
            Some(f) => {
                Filter::parse(f).map_err(|e| {
                    invalid(if e.path.is_empty() {
                        format!("filter: {}", e.msg)
                    } else {
                        format!("filter at {}: {}", e.path, e.msg)
                    })
                })?;
                Some(to_document(f))
            }
        };
        if !valid_index_name(index) {
            return Err(VectorError::NoSuchIndex(index.to_owned()));
        }
        let out = self
            .client
            .query_vectors()
            .vector_bucket_name(&self.bucket)
            .index_name(index)
            .top_k(query.top_k as i32)
            .query_vector(VectorData::Float32(query.vector.clone()))
            .set_filter(filter)
            .return_metadata(query.return_metadata)
            .return_distance(true)
            .send()
            .await
            .map_err(|e| self.error("QueryVectors", index, e))?;
        out.vectors
            .into_iter()
            .map(|v| {
                let distance = v.distance.ok_or_else(|| {
                    VectorError::Backend(anyhow::anyhow!(
                        "S3 Vectors QueryVectors returned no distance for a match in {index}"
                    ))
                })?;
                Ok(Match {
                    distance,
                    metadata: query
                        .return_metadata
                        .then(|| metadata_of(v.metadata.as_ref())),
                    key: v.key,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_round_trip_json_keeping_integers() {
        let v = json!({"s": "x", "i": 3, "n": -4, "f": 2.5, "b": true, "l": ["a", "b"], "z": null});
        assert_eq!(from_document(&to_document(&v)), v);
        assert_eq!(
            from_document(&Document::Number(Number::Float(7.0))),
            json!(7)
        );
        assert_eq!(
            from_document(&Document::Number(Number::Float(0.1))),
            json!(0.1)
        );
    }
}
