//! An in-process fake of Amazon S3 Vectors speaking its REST-JSON wire protocol, for the
//! AWS vectors adapter's tests and for the full app on the AWS backend (moto has no
//! QueryVectors).
//!
//! Operations (each `POST /<Operation>` with a JSON body, as the SDK sends them):
//! CreateVectorBucket, GetVectorBucket, CreateIndex, GetIndex, ListIndexes, DeleteIndex,
//! PutVectors, GetVectors, ListVectors, DeleteVectors, QueryVectors. Everything is kept in
//! memory; queries are exact (every vector's distance, by `zerodb_domain::vectors::
//! distance`), filters are evaluated by `zerodb_domain::filter` over the filterable
//! metadata (non-filterable keys are invisible to a filter).
//!
//! Requests are validated as S3 Vectors documents it, with the limits of
//! `zerodb_domain::vectors`: a missing bucket or index is `NotFoundException` (404), an
//! existing one `ConflictException` (409), a bad request `ValidationException` (400), the
//! index quota `ServiceQuotaExceededException` (402). Errors are in the shape the SDK
//! parses and moto also sends: an `x-amzn-errortype` header and a body of `__type` and
//! `message`. Signatures are not checked.
//!
//! `spawn()` starts one server per process on a thread of its own with its own runtime,
//! so it keeps serving whichever test runtime calls it and outlives each of them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use zerodb_domain::filter::Filter;
use zerodb_domain::vectors::{
    IndexSpec, MAX_DELETE, MAX_DIMENSION, MAX_GET, MAX_KEY_CHARS, MAX_LIST,
    MAX_NON_FILTERABLE_KEYS, MAX_PUT, MAX_TOP_K, Metric, VectorError, check_metadata, distance,
    valid_index_name,
};

/// S3 Vectors' indexes per vector bucket.
pub const MAX_INDEXES_PER_BUCKET: usize = 10_000;
/// S3 Vectors' request size limit.
pub const MAX_REQUEST_BYTES: usize = 20 * 1024 * 1024;
/// The fake's account and region, in ARNs.
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

static URL: OnceLock<String> = OnceLock::new();

/// The base URL of this process's fake (started on first use); give it to an S3 Vectors
/// client as its endpoint URL.
pub async fn spawn() -> String {
    url()
}

/// [`spawn`], from synchronous code.
pub fn url() -> String {
    URL.get_or_init(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the fake's address");
        std::thread::Builder::new()
            .name("fake-s3vectors".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the fake's runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                    axum::serve(listener, router())
                        .await
                        .expect("the fake serves");
                });
            })
            .expect("the fake's thread");
        format!("http://{addr}")
    })
    .clone()
}

/// The fake's routes over fresh, empty state (for serving it elsewhere).
pub fn router() -> Router {
    Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(Arc::new(Mutex::new(Fake::default())))
}

#[derive(Default)]
struct Fake {
    buckets: HashMap<String, Bucket>,
}

struct Bucket {
    name: String,
    created: f64,
    indexes: BTreeMap<String, Index>,
}

struct Index {
    spec: IndexSpec,
    created: f64,
    vectors: BTreeMap<String, Stored>,
}

#[derive(Clone)]
struct Stored {
    data: Vec<f32>,
    metadata: Map<String, Value>,
}

/// An error as S3 Vectors sends it.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [
                ("x-amzn-errortype", self.code),
                (header::CONTENT_TYPE.as_str(), "application/json"),
            ],
            json!({"__type": self.code, "message": self.message}).to_string(),
        )
            .into_response()
    }
}

fn validation(message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "ValidationException",
        message: message.into(),
    }
}

fn not_found(what: &str) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "NotFoundException",
        message: format!("The specified {what} could not be found"),
    }
}

fn conflict(message: &str) -> ApiError {
    ApiError {
        status: StatusCode::CONFLICT,
        code: "ConflictException",
        message: message.to_owned(),
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as f64 / 1000.0)
        .unwrap_or(0.0)
}

fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3vectors:{REGION}:{ACCOUNT}:bucket/{bucket}")
}

fn index_arn(bucket: &str, index: &str) -> String {
    format!("{}/index/{index}", bucket_arn(bucket))
}

type Body = Map<String, Value>;

fn opt_str<'a>(body: &'a Body, name: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(validation(format!("'{name}' must be a string"))),
    }
}

fn req_str<'a>(body: &'a Body, name: &str) -> Result<&'a str, ApiError> {
    opt_str(body, name)?.ok_or_else(|| {
        validation(format!(
            "1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

fn opt_int(body: &Body, name: &str) -> Result<Option<i64>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| validation(format!("'{name}' must be an integer"))),
    }
}

fn opt_bool(body: &Body, name: &str) -> Result<bool, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(validation(format!("'{name}' must be a boolean"))),
    }
}

fn in_range(name: &str, v: i64, lo: usize, hi: usize) -> Result<usize, ApiError> {
    if v < lo as i64 || v > hi as i64 {
        return Err(validation(format!(
            "1 validation error detected. Value at '/{name}' failed to satisfy constraint: Member must be between {lo} and {hi}, inclusive"
        )));
    }
    Ok(v as usize)
}

fn keys_param(body: &Body, max: usize) -> Result<Vec<String>, ApiError> {
    let Some(Value::Array(keys)) = body.get("keys") else {
        return Err(validation("'keys' must be a list of strings"));
    };
    in_range("keys", keys.len() as i64, 1, max)?;
    keys.iter()
        .map(|k| match k {
            Value::String(s) => {
                check_key(s)?;
                Ok(s.clone())
            }
            _ => Err(validation("'keys' must be a list of strings")),
        })
        .collect()
}

fn check_key(key: &str) -> Result<(), ApiError> {
    let n = key.chars().count();
    if n == 0 || n > MAX_KEY_CHARS {
        return Err(validation(format!(
            "1 validation error detected. Value with length {n} at '/key' failed to satisfy constraint: Member must have length between 1 and {MAX_KEY_CHARS}, inclusive"
        )));
    }
    Ok(())
}

/// A vector's `float32` values: every one a finite number within f32's range.
fn float32(v: Option<&Value>, what: &str) -> Result<Vec<f32>, ApiError> {
    let Some(Value::Array(values)) = v.and_then(|d| d.get("float32")) else {
        return Err(validation(format!("{what}: 'float32' data is required")));
    };
    values
        .iter()
        .map(|x| {
            x.as_f64()
                .filter(|f| f.is_finite() && f.abs() <= f32::MAX as f64)
                .map(|f| f as f32)
                .ok_or_else(|| {
                    validation(format!(
                        "{what}: vector data must contain only valid floating-point values"
                    ))
                })
        })
        .collect()
}

/// (bucket, index) a request names, by `vectorBucketName` and `indexName` or `indexArn`.
fn index_names(body: &Body) -> Result<(String, String), ApiError> {
    match opt_str(body, "indexArn")? {
        Some(arn) => {
            let (bucket, index) = arn
                .split_once(":bucket/")
                .and_then(|(_, rest)| rest.split_once("/index/"))
                .ok_or_else(|| validation("Invalid index ARN"))?;
            Ok((bucket.to_owned(), index.to_owned()))
        }
        None => Ok((
            req_str(body, "vectorBucketName")?.to_owned(),
            req_str(body, "indexName")?.to_owned(),
        )),
    }
}

fn metric_name(m: Metric) -> &'static str {
    m.as_str()
}

impl Fake {
    fn bucket(&self, name: &str) -> Result<&Bucket, ApiError> {
        self.buckets
            .get(name)
            .ok_or_else(|| not_found("vector bucket"))
    }

    fn bucket_mut(&mut self, name: &str) -> Result<&mut Bucket, ApiError> {
        self.buckets
            .get_mut(name)
            .ok_or_else(|| not_found("vector bucket"))
    }

    /// The index a request names, by `vectorBucketName` and `indexName` or `indexArn`.
    fn index_of(&mut self, body: &Body) -> Result<&mut Index, ApiError> {
        let (bucket, index) = index_names(body)?;
        // A request for an index of a missing bucket is told the index is missing, as
        // moto does.
        self.buckets
            .get_mut(&bucket)
            .and_then(|b| b.indexes.get_mut(&index))
            .ok_or_else(|| not_found("index"))
    }

    fn call(&mut self, op: &str, body: &Body) -> Result<Value, ApiError> {
        match op {
            "CreateVectorBucket" => self.create_vector_bucket(body),
            "GetVectorBucket" => self.get_vector_bucket(body),
            "CreateIndex" => self.create_index(body),
            "GetIndex" => self.get_index(body),
            "ListIndexes" => self.list_indexes(body),
            "DeleteIndex" => self.delete_index(body),
            "PutVectors" => self.put_vectors(body),
            "GetVectors" => self.get_vectors(body),
            "ListVectors" => self.list_vectors(body),
            "DeleteVectors" => self.delete_vectors(body),
            "QueryVectors" => self.query_vectors(body),
            other => Err(ApiError {
                status: StatusCode::NOT_FOUND,
                code: "UnknownOperationException",
                message: format!("the S3 Vectors fake does not serve {other}"),
            }),
        }
    }

    fn create_vector_bucket(&mut self, body: &Body) -> Result<Value, ApiError> {
        let name = req_str(body, "vectorBucketName")?;
        in_range("vectorBucketName", name.len() as i64, 3, 63)?;
        let ok = name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
            && name.as_bytes()[0].is_ascii_alphanumeric()
            && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
        if !ok {
            return Err(validation("Invalid vector bucket name"));
        }
        if self.buckets.contains_key(name) {
            return Err(conflict(
                "A vector bucket with the specified name already exists",
            ));
        }
        self.buckets.insert(
            name.to_owned(),
            Bucket {
                name: name.to_owned(),
                created: now(),
                indexes: BTreeMap::new(),
            },
        );
        Ok(json!({"vectorBucketArn": bucket_arn(name)}))
    }

    fn get_vector_bucket(&mut self, body: &Body) -> Result<Value, ApiError> {
        let name = match opt_str(body, "vectorBucketArn")? {
            Some(arn) => arn
                .split_once(":bucket/")
                .map(|(_, n)| n)
                .ok_or_else(|| validation("Invalid vector bucket ARN"))?,
            None => req_str(body, "vectorBucketName")?,
        };
        let b = self.bucket(name)?;
        Ok(json!({"vectorBucket": {
            "vectorBucketName": b.name,
            "vectorBucketArn": bucket_arn(&b.name),
            "creationTime": b.created,
            "encryptionConfiguration": {"sseType": "AES256"},
        }}))
    }

    fn create_index(&mut self, body: &Body) -> Result<Value, ApiError> {
        let bucket_name = req_str(body, "vectorBucketName")?;
        let name = req_str(body, "indexName")?;
        if !valid_index_name(name) {
            return Err(validation(format!("Invalid index name: {name}")));
        }
        if req_str(body, "dataType")? != "float32" {
            return Err(validation(
                "1 validation error detected. Value at '/dataType' failed to satisfy constraint: Member must satisfy enum value set: [float32]",
            ));
        }
        let dimension = opt_int(body, "dimension")?.ok_or_else(|| {
            validation(
                "Value null at 'dimension' failed to satisfy constraint: Member must not be null",
            )
        })?;
        let dimension = in_range("dimension", dimension, 1, MAX_DIMENSION)?;
        let metric = match req_str(body, "distanceMetric")? {
            "cosine" => Metric::Cosine,
            "euclidean" => Metric::Euclidean,
            _ => {
                return Err(validation(
                    "1 validation error detected. Value at '/distanceMetric' failed to satisfy constraint: Member must satisfy enum value set: [euclidean, cosine]",
                ));
            }
        };
        let non_filterable = match body.get("metadataConfiguration") {
            None | Some(Value::Null) => Vec::new(),
            Some(config) => {
                let Some(Value::Array(keys)) = config.get("nonFilterableMetadataKeys") else {
                    return Err(validation(
                        "metadataConfiguration.nonFilterableMetadataKeys is required",
                    ));
                };
                in_range(
                    "metadataConfiguration/nonFilterableMetadataKeys",
                    keys.len() as i64,
                    1,
                    MAX_NON_FILTERABLE_KEYS,
                )?;
                keys.iter()
                    .map(|k| match k.as_str() {
                        Some(s) if (1..=63).contains(&s.len()) => Ok(s.to_owned()),
                        _ => Err(validation(
                            "a non-filterable metadata key is a string of 1 to 63 characters",
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        let bucket = self.bucket_mut(bucket_name)?;
        if bucket.indexes.contains_key(name) {
            return Err(conflict("An index with the specified name already exists"));
        }
        if bucket.indexes.len() >= MAX_INDEXES_PER_BUCKET {
            return Err(ApiError {
                status: StatusCode::PAYMENT_REQUIRED,
                code: "ServiceQuotaExceededException",
                message: format!("A vector bucket holds at most {MAX_INDEXES_PER_BUCKET} indexes"),
            });
        }
        bucket.indexes.insert(
            name.to_owned(),
            Index {
                spec: IndexSpec {
                    name: name.to_owned(),
                    dimension,
                    metric,
                    non_filterable,
                },
                created: now(),
                vectors: BTreeMap::new(),
            },
        );
        Ok(json!({"indexArn": index_arn(bucket_name, name)}))
    }

    fn get_index(&mut self, body: &Body) -> Result<Value, ApiError> {
        let (bucket, _) = index_names(body)?;
        let index = self.index_of(body)?;
        let mut out = json!({
            "vectorBucketName": bucket,
            "indexName": index.spec.name,
            "indexArn": index_arn(&bucket, &index.spec.name),
            "creationTime": index.created,
            "dataType": "float32",
            "dimension": index.spec.dimension,
            "distanceMetric": metric_name(index.spec.metric),
        });
        if !index.spec.non_filterable.is_empty() {
            out["metadataConfiguration"] =
                json!({"nonFilterableMetadataKeys": index.spec.non_filterable});
        }
        Ok(json!({"index": out}))
    }

    fn list_indexes(&mut self, body: &Body) -> Result<Value, ApiError> {
        let limit = match opt_int(body, "maxResults")? {
            Some(n) => in_range("maxResults", n, 1, 500)?,
            None => 500,
        };
        let prefix = opt_str(body, "prefix")?.unwrap_or("").to_owned();
        let after = opt_str(body, "nextToken")?.map(decode_token).transpose()?;
        let bucket = self.bucket(req_str(body, "vectorBucketName")?)?;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut names = bucket
            .indexes
            .range::<String, _>((lower, Bound::Unbounded))
            .filter(|(n, _)| n.starts_with(&prefix));
        let page: Vec<_> = names.by_ref().take(limit).collect();
        let more = names.next().is_some();
        let mut out = json!({"indexes": page.iter().map(|(n, i)| json!({
            "vectorBucketName": bucket.name,
            "indexName": n,
            "indexArn": index_arn(&bucket.name, n),
            "creationTime": i.created,
        })).collect::<Vec<_>>()});
        if more && let Some((last, _)) = page.last() {
            out["nextToken"] = json!(encode_token(last));
        }
        Ok(out)
    }

    fn delete_index(&mut self, body: &Body) -> Result<Value, ApiError> {
        let (bucket, index) = index_names(body)?;
        self.buckets
            .get_mut(&bucket)
            .and_then(|b| b.indexes.remove(&index))
            .ok_or_else(|| not_found("index"))?;
        Ok(json!({}))
    }

    fn put_vectors(&mut self, body: &Body) -> Result<Value, ApiError> {
        let index = self.index_of(body)?;
        let Some(Value::Array(vectors)) = body.get("vectors") else {
            return Err(validation("'vectors' must be a list"));
        };
        in_range("vectors", vectors.len() as i64, 1, MAX_PUT)?;
        let mut seen = HashSet::new();
        let mut batch = Vec::with_capacity(vectors.len());
        for v in vectors {
            let key = v
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| validation("every vector needs a 'key'"))?;
            check_key(key)?;
            if !seen.insert(key) {
                return Err(validation(format!("Duplicate key '{key}' in the request")));
            }
            let what = format!("Invalid record for key '{key}'");
            let data = float32(v.get("data"), &what)?;
            if data.len() != index.spec.dimension {
                return Err(validation(format!(
                    "{what}: vector must have length {}, but has length {}",
                    index.spec.dimension,
                    data.len()
                )));
            }
            if index.spec.metric == Metric::Cosine && data.iter().all(|x| *x == 0.0) {
                return Err(validation(format!(
                    "{what}: a zero vector is not allowed for the cosine distance metric"
                )));
            }
            let metadata = match v.get("metadata") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(m)) => m.clone(),
                Some(_) => return Err(validation(format!("{what}: metadata must be an object"))),
            };
            check_metadata(&index.spec, &metadata).map_err(|e| match e {
                VectorError::Invalid(m) => validation(format!("{what}: {m}")),
                other => validation(format!("{what}: {other}")),
            })?;
            batch.push((key.to_owned(), Stored { data, metadata }));
        }
        index.vectors.extend(batch);
        Ok(json!({}))
    }

    fn get_vectors(&mut self, body: &Body) -> Result<Value, ApiError> {
        let index = self.index_of(body)?;
        let keys = keys_param(body, MAX_GET)?;
        let (data, metadata) = (
            opt_bool(body, "returnData")?,
            opt_bool(body, "returnMetadata")?,
        );
        let out: Vec<Value> = keys
            .iter()
            .filter_map(|k| index.vectors.get(k).map(|v| output(k, v, data, metadata)))
            .collect();
        Ok(json!({"vectors": out}))
    }

    fn list_vectors(&mut self, body: &Body) -> Result<Value, ApiError> {
        let limit = match opt_int(body, "maxResults")? {
            Some(n) => in_range("maxResults", n, 1, MAX_LIST)?,
            None => 500,
        };
        let after = opt_str(body, "nextToken")?.map(decode_token).transpose()?;
        if body.get("segmentCount").is_some_and(|v| !v.is_null()) {
            return Err(validation("the S3 Vectors fake does not segment listings"));
        }
        let (data, metadata) = (
            opt_bool(body, "returnData")?,
            opt_bool(body, "returnMetadata")?,
        );
        let index = self.index_of(body)?;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rest = index.vectors.range::<String, _>((lower, Bound::Unbounded));
        let page: Vec<_> = rest.by_ref().take(limit).collect();
        let more = rest.next().is_some();
        let mut out = json!({
            "vectors": page.iter().map(|(k, v)| output(k, v, data, metadata)).collect::<Vec<_>>()
        });
        if more && let Some((last, _)) = page.last() {
            out["nextToken"] = json!(encode_token(last));
        }
        Ok(out)
    }

    fn delete_vectors(&mut self, body: &Body) -> Result<Value, ApiError> {
        let index = self.index_of(body)?;
        let keys = keys_param(body, MAX_DELETE)?;
        for k in keys {
            index.vectors.remove(&k);
        }
        Ok(json!({}))
    }

    fn query_vectors(&mut self, body: &Body) -> Result<Value, ApiError> {
        let index = self.index_of(body)?;
        let top_k = opt_int(body, "topK")?.ok_or_else(|| {
            validation("Value null at 'topK' failed to satisfy constraint: Member must not be null")
        })?;
        let top_k = in_range("topK", top_k, 1, MAX_TOP_K)?;
        let query = float32(body.get("queryVector"), "queryVector")?;
        if query.len() != index.spec.dimension {
            return Err(validation(format!(
                "Query vector must have length {}, but has length {}",
                index.spec.dimension,
                query.len()
            )));
        }
        let filter =
            match body.get("filter") {
                None | Some(Value::Null) => None,
                Some(f) => Some(Filter::parse(f).map_err(|e| {
                    validation(format!("Invalid filter at '{}': {}", e.path, e.msg))
                })?),
            };
        let (with_metadata, with_distance) = (
            opt_bool(body, "returnMetadata")?,
            opt_bool(body, "returnDistance")?,
        );
        let metric = index.spec.metric;
        let mut hits: Vec<(f32, &String, &Stored)> = index
            .vectors
            .iter()
            .filter(|(_, v)| {
                filter.as_ref().is_none_or(|f| {
                    let mut visible = v.metadata.clone();
                    for k in &index.spec.non_filterable {
                        visible.remove(k);
                    }
                    f.matches(&Value::Object(visible))
                })
            })
            .map(|(k, v)| (distance(metric, &query, &v.data), k, v))
            .collect();
        hits.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        hits.truncate(top_k);
        let vectors: Vec<Value> = hits
            .into_iter()
            .map(|(d, k, v)| {
                let mut o = json!({"key": k});
                if with_distance {
                    o["distance"] = json!(d);
                }
                if with_metadata {
                    o["metadata"] = Value::Object(v.metadata.clone());
                }
                o
            })
            .collect();
        Ok(json!({"vectors": vectors, "distanceMetric": metric_name(metric)}))
    }
}

fn output(key: &str, v: &Stored, data: bool, metadata: bool) -> Value {
    let mut o = json!({"key": key});
    if data {
        o["data"] = json!({"float32": v.data});
    }
    if metadata {
        o["metadata"] = Value::Object(v.metadata.clone());
    }
    o
}

/// A page token: the last key returned, hex-encoded (opaque to clients).
fn encode_token(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(token: &str) -> Result<String, ApiError> {
    let bad = || validation("Invalid nextToken");
    if !token.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
        .collect::<Result<Vec<u8>, _>>()?;
    String::from_utf8(bytes).map_err(|_| bad())
}

async fn handle(State(fake): State<Arc<Mutex<Fake>>>, uri: Uri, body: Bytes) -> Response {
    let op = uri.path().trim_start_matches('/').to_owned();
    let parsed: Body = if body.is_empty() {
        Map::new()
    } else {
        match serde_json::from_slice(&body) {
            Ok(Value::Object(m)) => m,
            _ => {
                return ApiError {
                    status: StatusCode::BAD_REQUEST,
                    code: "SerializationException",
                    message: "the request body is not a JSON object".into(),
                }
                .into_response();
            }
        }
    };
    let result = fake
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .call(&op, &parsed);
    match result {
        Ok(v) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            v.to_string(),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}
