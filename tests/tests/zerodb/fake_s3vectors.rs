//! The S3 Vectors fake checked against moto: one sequence of S3 Vectors calls, made with
//! the SDK (not the adapter, whose own checks would stop the bad requests before they
//! reach a server), against moto's server and against the fake, must get the same answers:
//! the same success or error code and HTTP status, the same keys, data and metadata.
//!
//! What is compared is what both serve. QueryVectors is not (moto has none); the fake's
//! queries are held to brute force by the vectors conformance suite. Where moto is known
//! to differ from S3 Vectors the step is left out or compared loosely, with a comment:
//! - moto 5.2.5 validates almost nothing of a put (batch size, key length, duplicate keys,
//!   metadata size, zero vectors for cosine): those are checked on the fake alone, below;
//! - moto refuses an index of 4,096 dimensions (it checks `< 4096`), S3 Vectors allows it;
//! - moto lists vectors and indexes in insertion order, the fake in key order, S3 Vectors
//!   in none promised: listings are compared as sets;
//! - moto's answers to CreateVectorBucket / CreateIndex carry no ARN: successes are
//!   compared as "ok" there;
//! - `tests/moto_server.py` makes moto refuse a second CreateIndex of one name, keep
//!   `metadataConfiguration` and page ListVectors, as S3 Vectors does; those steps compare
//!   the fake with that patched behaviour.

use std::collections::HashMap;

use aws_sdk_s3vectors::Client;
use aws_sdk_s3vectors::config::http::HttpResponse;
use aws_sdk_s3vectors::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3vectors::types::{
    DataType, DistanceMetric, MetadataConfiguration, PutInputVector, VectorData,
};
use aws_smithy_types::{Document, Number};
use serde_json::{Value, json};
use zerodb_tests::fake_s3vectors;
use zerodb_tests::support::{moto_endpoint, s3vectors_client, unique_name};

/// A call's answer, as far as it is comparable between servers.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Ok(Value),
    Err { code: String, status: u16 },
}

fn outcome<T, E>(r: Result<T, SdkError<E, HttpResponse>>, ok: impl FnOnce(T) -> Value) -> Outcome
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match r {
        Ok(t) => Outcome::Ok(ok(t)),
        Err(e) => Outcome::Err {
            code: e.code().map_or_else(
                || {
                    format!(
                        "no code: {}",
                        aws_sdk_s3vectors::error::DisplayErrorContext(&e)
                    )
                },
                str::to_owned,
            ),
            status: e.raw_response().map_or(0, |r| r.status().as_u16()),
        },
    }
}

fn ok<T>(_: T) -> Value {
    json!("ok")
}

fn to_document(v: &Value) -> Document {
    match v {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => Document::Number(match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Number::PosInt(u),
            (None, Some(i)) => Number::NegInt(i),
            _ => Number::Float(n.as_f64().unwrap_or(0.0)),
        }),
        Value::String(s) => Document::String(s.clone()),
        Value::Array(a) => Document::Array(a.iter().map(to_document).collect()),
        Value::Object(m) => {
            Document::Object(m.iter().map(|(k, v)| (k.clone(), to_document(v))).collect())
        }
    }
}

fn from_document(d: &Document) -> Value {
    match d {
        Document::Null => Value::Null,
        Document::Bool(b) => json!(b),
        Document::Number(Number::PosInt(u)) => json!(u),
        Document::Number(Number::NegInt(i)) => json!(i),
        Document::Number(Number::Float(f)) => json!(f),
        Document::String(s) => json!(s),
        Document::Array(a) => Value::Array(a.iter().map(from_document).collect()),
        Document::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), from_document(v)))
                .collect(),
        ),
    }
}

fn data_json(d: Option<&VectorData>) -> Value {
    match d {
        Some(VectorData::Float32(v)) => json!(v),
        Some(other) => json!(format!("{other:?}")),
        None => Value::Null,
    }
}

fn vector(key: &str, data: &[f32], metadata: Value) -> PutInputVector {
    PutInputVector::builder()
        .key(key)
        .data(VectorData::Float32(data.to_vec()))
        .metadata(to_document(&metadata))
        .build()
        .expect("a vector")
}

fn sorted(mut v: Vec<Value>) -> Value {
    v.sort_by_key(|x| x.to_string());
    Value::Array(v)
}

/// The same calls against one server, in vector bucket `bucket` (a fresh name); the
/// answers in order, named.
async fn scenario(c: &Client, bucket: &str) -> Vec<(&'static str, Outcome)> {
    let bucket = bucket.to_owned();
    let missing_bucket = format!("{bucket}-missing");
    let mut out = Vec::new();

    let create_bucket = || c.create_vector_bucket().vector_bucket_name(&bucket).send();
    out.push(("create bucket", outcome(create_bucket().await, ok)));
    out.push(("create bucket again", outcome(create_bucket().await, ok)));
    out.push((
        "get bucket",
        outcome(
            c.get_vector_bucket()
                .vector_bucket_name(&bucket)
                .send()
                .await,
            |o| {
                let b = o.vector_bucket.expect("a bucket");
                json!([b.vector_bucket_name, b.vector_bucket_arn])
            },
        ),
    ));
    out.push((
        "get a missing bucket",
        outcome(
            c.get_vector_bucket()
                .vector_bucket_name(&missing_bucket)
                .send()
                .await,
            ok,
        ),
    ));

    let create_index = |name: &'static str, dim: i32, metric: DistanceMetric| {
        c.create_index()
            .vector_bucket_name(&bucket)
            .index_name(name)
            .data_type(DataType::Float32)
            .dimension(dim)
            .distance_metric(metric)
    };
    let body_only = MetadataConfiguration::builder()
        .non_filterable_metadata_keys("body")
        .build()
        .expect("a metadata configuration");
    out.push((
        "create index",
        outcome(
            create_index("docs", 3, DistanceMetric::Cosine)
                .metadata_configuration(body_only.clone())
                .send()
                .await,
            ok,
        ),
    ));
    out.push((
        "create the index again (patched moto)",
        outcome(
            create_index("docs", 3, DistanceMetric::Cosine).send().await,
            ok,
        ),
    ));
    out.push((
        "create an index of dimension 0",
        outcome(
            create_index("zero", 0, DistanceMetric::Cosine).send().await,
            ok,
        ),
    ));
    out.push((
        "create an index of dimension 5000",
        outcome(
            create_index("huge", 5000, DistanceMetric::Cosine)
                .send()
                .await,
            ok,
        ),
    ));
    out.push((
        "create an index in a missing bucket",
        outcome(
            c.create_index()
                .vector_bucket_name(&missing_bucket)
                .index_name("docs")
                .data_type(DataType::Float32)
                .dimension(3)
                .distance_metric(DistanceMetric::Cosine)
                .send()
                .await,
            ok,
        ),
    ));
    out.push((
        "create another index",
        outcome(
            create_index("other", 2, DistanceMetric::Euclidean)
                .send()
                .await,
            ok,
        ),
    ));
    let get_index = |name: &'static str| {
        c.get_index()
            .vector_bucket_name(&bucket)
            .index_name(name)
            .send()
    };
    let index_json = |o: aws_sdk_s3vectors::operation::get_index::GetIndexOutput| {
        let i = o.index.expect("an index");
        json!({
            "bucket": i.vector_bucket_name,
            "name": i.index_name,
            "arn": i.index_arn,
            "dataType": i.data_type.as_str(),
            "dimension": i.dimension,
            "metric": i.distance_metric.as_str(),
            "nonFilterable": i.metadata_configuration.map(|m| m.non_filterable_metadata_keys),
        })
    };
    out.push(("get index", outcome(get_index("docs").await, index_json)));
    out.push((
        "get the other index",
        outcome(get_index("other").await, index_json),
    ));
    out.push(("get a missing index", outcome(get_index("nope").await, ok)));
    out.push((
        "list indexes",
        outcome(
            c.list_indexes().vector_bucket_name(&bucket).send().await,
            |o| {
                sorted(
                    o.indexes
                        .into_iter()
                        .map(|i| json!([i.index_name, i.index_arn]))
                        .collect(),
                )
            },
        ),
    ));

    let put = |index: &'static str, vectors: Vec<PutInputVector>| {
        c.put_vectors()
            .vector_bucket_name(&bucket)
            .index_name(index)
            .set_vectors(Some(vectors))
            .send()
    };
    out.push((
        "put a wrong dimension",
        outcome(
            put(
                "docs",
                vec![
                    vector("ok", &[1.0, 2.0, 3.0], json!({})),
                    vector("short", &[1.0, 2.0], json!({})),
                ],
            )
            .await,
            ok,
        ),
    ));
    out.push((
        "put",
        outcome(
            put(
                "docs",
                vec![
                    vector(
                        "a",
                        &[0.1, -2.5, 3.25],
                        json!({"genre": "drama", "year": 2001, "score": 4.5, "tags": ["x", "y"], "ok": true, "body": "long"}),
                    ),
                    vector("b", &[1.0, 1.0, 1.0], json!({"genre": "comedy"})),
                    vector("c", &[1e-20, 7.0, -0.5], json!({})),
                ],
            )
            .await,
            ok,
        ),
    ));
    let get = |keys: &[&str], data: bool, metadata: bool| {
        c.get_vectors()
            .vector_bucket_name(&bucket)
            .index_name("docs")
            .set_keys(Some(keys.iter().map(|k| k.to_string()).collect()))
            .return_data(data)
            .return_metadata(metadata)
            .send()
    };
    let got_json = |o: aws_sdk_s3vectors::operation::get_vectors::GetVectorsOutput| {
        sorted(
            o.vectors
                .into_iter()
                .map(|v| {
                    json!({
                        "key": v.key,
                        "data": data_json(v.data.as_ref()),
                        "metadata": v.metadata.as_ref().map(from_document),
                    })
                })
                .collect(),
        )
    };
    out.push((
        "get with data and metadata, a key missing",
        outcome(get(&["a", "c", "zz"], true, true).await, got_json),
    ));
    out.push((
        "get keys only",
        outcome(get(&["a", "b"], false, false).await, got_json),
    ));
    out.push((
        "get metadata only",
        outcome(get(&["b"], false, true).await, got_json),
    ));
    out.push(("list every page", list_all(c, &bucket, "docs").await));

    out.push((
        "put replaces whole",
        outcome(
            put(
                "docs",
                vec![vector("b", &[2.0, 0.0, 1.0], json!({"new": 1}))],
            )
            .await,
            ok,
        ),
    ));
    out.push((
        "get the replaced vector",
        outcome(get(&["b"], true, true).await, got_json),
    ));
    out.push((
        "delete, a key missing",
        outcome(
            c.delete_vectors()
                .vector_bucket_name(&bucket)
                .index_name("docs")
                .keys("a")
                .keys("zz")
                .send()
                .await,
            ok,
        ),
    ));
    out.push((
        "get after the delete",
        outcome(get(&["a", "b", "c"], false, false).await, got_json),
    ));

    // Every vector operation on a missing index.
    out.push((
        "put on a missing index",
        outcome(
            put("nope", vec![vector("a", &[1.0, 2.0, 3.0], json!({}))]).await,
            ok,
        ),
    ));
    out.push((
        "get on a missing index",
        outcome(
            c.get_vectors()
                .vector_bucket_name(&bucket)
                .index_name("nope")
                .keys("a")
                .send()
                .await,
            ok,
        ),
    ));
    out.push((
        "list on a missing index",
        outcome(
            c.list_vectors()
                .vector_bucket_name(&bucket)
                .index_name("nope")
                .send()
                .await,
            ok,
        ),
    ));
    out.push((
        "delete on a missing index",
        outcome(
            c.delete_vectors()
                .vector_bucket_name(&bucket)
                .index_name("nope")
                .keys("a")
                .send()
                .await,
            ok,
        ),
    ));

    let delete_index = || {
        c.delete_index()
            .vector_bucket_name(&bucket)
            .index_name("other")
            .send()
    };
    out.push(("delete an index", outcome(delete_index().await, ok)));
    out.push(("delete it again", outcome(delete_index().await, ok)));
    out.push((
        "get the deleted index",
        outcome(get_index("other").await, ok),
    ));
    out.push((
        "list indexes after the delete",
        outcome(
            c.list_indexes().vector_bucket_name(&bucket).send().await,
            |o| sorted(o.indexes.into_iter().map(|i| json!(i.index_name)).collect()),
        ),
    ));
    out
}

/// Every vector of an index with its data, over pages of 2, as a set.
async fn list_all(c: &Client, bucket: &str, index: &str) -> Outcome {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let r = c
            .list_vectors()
            .vector_bucket_name(bucket)
            .index_name(index)
            .max_results(2)
            .set_next_token(token.clone())
            .return_data(true)
            .send()
            .await;
        let page = match r {
            Ok(p) => p,
            Err(e) => return outcome::<(), _>(Err(e), ok),
        };
        assert!(page.vectors.len() <= 2, "a page of {}", page.vectors.len());
        all.extend(page.vectors.into_iter().map(|v| {
            json!({
                "key": v.key,
                "data": data_json(v.data.as_ref()),
                "metadata": v.metadata.as_ref().map(from_document),
            })
        }));
        token = page.next_token;
        if token.is_none() {
            return Outcome::Ok(sorted(all));
        }
    }
    panic!("the listing did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_answers_as_moto_does() {
    // One bucket name on both servers, so that names and ARNs compare.
    let bucket = unique_name("cmp");
    let moto = scenario(&s3vectors_client(&moto_endpoint()).await, &bucket).await;
    let fake = scenario(
        &s3vectors_client(&fake_s3vectors::spawn().await).await,
        &bucket,
    )
    .await;
    assert_eq!(moto.len(), fake.len());
    for ((step, m), (_, f)) in moto.iter().zip(&fake) {
        assert_eq!(m, f, "{step}: moto answered {m:?}, the fake {f:?}");
    }
    // The scenario does exercise errors on both.
    let errors = |o: &[(&str, Outcome)]| {
        o.iter()
            .filter(|(_, x)| matches!(x, Outcome::Err { .. }))
            .map(|(_, x)| x.clone())
            .collect::<Vec<_>>()
    };
    let codes: HashMap<String, u16> = errors(&fake)
        .into_iter()
        .filter_map(|e| match e {
            Outcome::Err { code, status } => Some((code, status)),
            Outcome::Ok(_) => None,
        })
        .collect();
    assert_eq!(codes.get("NotFoundException"), Some(&404));
    assert_eq!(codes.get("ConflictException"), Some(&409));
    assert_eq!(codes.get("ValidationException"), Some(&400));
}

/// What S3 Vectors refuses and moto does not check, on the fake alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_refuses_what_s3_vectors_refuses() {
    let c = s3vectors_client(&fake_s3vectors::spawn().await).await;
    let bucket = unique_name("refuse");
    c.create_vector_bucket()
        .vector_bucket_name(&bucket)
        .send()
        .await
        .expect("bucket");
    c.create_index()
        .vector_bucket_name(&bucket)
        .index_name("docs")
        .data_type(DataType::Float32)
        .dimension(2)
        .distance_metric(DistanceMetric::Cosine)
        .metadata_configuration(
            MetadataConfiguration::builder()
                .non_filterable_metadata_keys("body")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("index");
    c.create_index()
        .vector_bucket_name(&bucket)
        .index_name("max-dims")
        .data_type(DataType::Float32)
        .dimension(4096)
        .distance_metric(DistanceMetric::Euclidean)
        .send()
        .await
        .expect("an index of 4,096 dimensions");
    let put = |vectors: Vec<PutInputVector>| {
        c.put_vectors()
            .vector_bucket_name(&bucket)
            .index_name("docs")
            .set_vectors(Some(vectors))
            .send()
    };
    let long = "x".repeat(2100);
    let refused: Vec<(&str, Vec<PutInputVector>)> = vec![
        ("no vectors", vec![]),
        (
            "501 vectors",
            (0..501)
                .map(|i| vector(&format!("k{i}"), &[1.0, 2.0], json!({})))
                .collect(),
        ),
        (
            "a key given twice",
            vec![
                vector("a", &[1.0, 2.0], json!({})),
                vector("a", &[1.0, 3.0], json!({})),
            ],
        ),
        (
            "a key of 1,025 characters",
            vec![vector(&"k".repeat(1025), &[1.0, 2.0], json!({}))],
        ),
        (
            "filterable metadata over 2 KB",
            vec![vector("a", &[1.0, 2.0], json!({"tag": long}))],
        ),
        (
            "51 metadata keys",
            vec![vector(
                "a",
                &[1.0, 2.0],
                Value::Object((0..51).map(|i| (format!("m{i}"), json!(i))).collect()),
            )],
        ),
        (
            "a zero vector in a cosine index",
            vec![vector("a", &[0.0, 0.0], json!({}))],
        ),
        ("NaN", vec![vector("a", &[f32::NAN, 1.0], json!({}))]),
    ];
    for (what, vectors) in refused {
        let r = put(vectors).await;
        assert_eq!(
            r.as_ref().err().and_then(|e| e.code()),
            Some("ValidationException"),
            "{what}: {r:?}"
        );
    }
    put(vec![vector(
        "a",
        &[1.0, 2.0],
        json!({"body": long, "tag": "t"}),
    )])
    .await
    .expect("2 KB under the non-filterable key");
    let listed = c
        .list_vectors()
        .vector_bucket_name(&bucket)
        .index_name("docs")
        .send()
        .await
        .expect("list");
    assert_eq!(listed.vectors.len(), 1, "no refused put wrote anything");

    let q = |top_k: i32, filter: Option<Value>| {
        c.query_vectors()
            .vector_bucket_name(&bucket)
            .index_name("docs")
            .top_k(top_k)
            .query_vector(VectorData::Float32(vec![1.0, 2.0]))
            .set_filter(filter.as_ref().map(to_document))
            .return_distance(true)
            .send()
    };
    for (what, r) in [
        ("topK 101", q(101, None).await),
        ("topK 0", q(0, None).await),
        (
            "a bad filter",
            q(5, Some(json!({"tag": {"$near": 1}}))).await,
        ),
    ] {
        assert_eq!(
            r.as_ref().err().and_then(|e| e.code()),
            Some("ValidationException"),
            "{what}: {r:?}"
        );
    }
    let hit = q(5, Some(json!({"tag": "t"}))).await.expect("query");
    assert_eq!(hit.vectors.len(), 1);
    assert!(hit.vectors[0].distance.is_some_and(|d| d.abs() < 1e-6));
    // A non-filterable key is invisible to a filter.
    let none = q(5, Some(json!({"body": {"$exists": true}})))
        .await
        .expect("query");
    assert!(none.vectors.is_empty());
    assert_eq!(
        q(5, None)
            .await
            .map(|o| o.vectors.len())
            .expect("a query with no filter"),
        1
    );
}
