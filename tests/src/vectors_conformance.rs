//! The vectors conformance suite: the checks every `Vectors` adapter must pass, so the
//! embedded adapter, the AWS adapter and the S3 Vectors fake behave as S3 Vectors does.
//! `tests/tests/zerodb/vectors_conformance.rs` runs each case on each backend with
//! [`vectors_conformance_cases!`](crate::vectors_conformance_cases); the query cases run
//! only where queries are served (moto has no QueryVectors).
//!
//! Each case works on indexes of its own, created here with unique names.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use zerodb_domain::vectors::{
    Fetched, IndexSpec, MAX_DELETE, MAX_GET, MAX_LIST, MAX_PUT, MAX_TOP_K, Match, Metric,
    VectorError, VectorItem, VectorQuery, Vectors, distance,
};

/// A fresh index name, valid for S3 Vectors (lowercase, 29 characters).
pub fn index_name() -> String {
    format!("vx-{}", zerodb_domain::ids::time_ordered_id())
}

/// Creates an index with a fresh name.
async fn new_index(
    v: &dyn Vectors,
    dimension: usize,
    metric: Metric,
    non_filterable: &[&str],
) -> String {
    let spec = IndexSpec {
        name: index_name(),
        dimension,
        metric,
        non_filterable: non_filterable.iter().map(|s| s.to_string()).collect(),
    };
    v.create_index(&spec).await.expect("create index");
    spec.name
}

fn meta(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => panic!("metadata must be an object, not {other}"),
    }
}

fn item(key: &str, data: Vec<f32>, metadata: Value) -> VectorItem {
    VectorItem {
        key: key.to_owned(),
        data,
        metadata: meta(metadata),
    }
}

fn keys(ks: &[&str]) -> Vec<String> {
    ks.iter().map(|k| k.to_string()).collect()
}

fn by_key(fetched: Vec<Fetched>) -> BTreeMap<String, Fetched> {
    fetched.into_iter().map(|f| (f.key.clone(), f)).collect()
}

fn match_keys(matches: &[Match]) -> BTreeSet<String> {
    matches.iter().map(|m| m.key.clone()).collect()
}

/// A small deterministic generator (splitmix64), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In [-1, 1).
    fn unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn vector(&mut self, dimension: usize) -> Vec<f32> {
        (0..dimension).map(|_| self.unit()).collect()
    }
}

fn assert_invalid<T: std::fmt::Debug>(r: Result<T, VectorError>, what: &str) {
    match r {
        Err(VectorError::Invalid(_)) => {}
        other => panic!("{what}: expected Invalid, got {other:?}"),
    }
}

fn assert_no_such_index<T: std::fmt::Debug>(r: Result<T, VectorError>, what: &str) {
    match r {
        Err(VectorError::NoSuchIndex(_)) => {}
        other => panic!("{what}: expected NoSuchIndex, got {other:?}"),
    }
}

/// Every key of an index, paging with `limit`; asserts each page's size and no repeats.
async fn list_all(v: &dyn Vectors, index: &str, limit: usize) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let page = v
            .list(index, cursor.as_deref(), limit, false, false)
            .await
            .expect("list");
        assert!(
            page.vectors.len() <= limit,
            "a page of {} for a limit of {limit}",
            page.vectors.len()
        );
        for f in page.vectors {
            assert!(f.data.is_none() && f.metadata.is_none(), "not asked for");
            assert!(seen.insert(f.key.clone()), "{} listed twice", f.key);
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return seen,
        }
    }
    panic!("the listing did not end after 100 pages");
}

// ---------------------------------------------------------------------------------------
// Indexes, put, get, delete, list (every backend).

pub async fn indexes_create_get_delete(v: Arc<dyn Vectors>) {
    let spec = IndexSpec {
        name: index_name(),
        dimension: 8,
        metric: Metric::Cosine,
        non_filterable: vec!["body".into(), "title".into()],
    };
    v.create_index(&spec).await.expect("create");
    assert_eq!(
        v.get_index(&spec.name).await.expect("get"),
        Some(spec.clone())
    );

    let twice = v.create_index(&spec).await;
    assert!(
        matches!(twice, Err(VectorError::IndexExists(ref n)) if *n == spec.name),
        "creating it again: {twice:?}"
    );
    let other_shape = IndexSpec {
        dimension: 3,
        ..spec.clone()
    };
    assert!(matches!(
        v.create_index(&other_shape).await,
        Err(VectorError::IndexExists(_))
    ));
    // The failed creates changed nothing.
    assert_eq!(
        v.get_index(&spec.name).await.expect("get"),
        Some(spec.clone())
    );

    let plain = IndexSpec {
        name: index_name(),
        dimension: 3,
        metric: Metric::Euclidean,
        non_filterable: vec![],
    };
    v.create_index(&plain).await.expect("create euclidean");
    assert_eq!(
        v.get_index(&plain.name).await.expect("get"),
        Some(plain.clone())
    );

    assert_eq!(v.get_index(&index_name()).await.expect("get missing"), None);

    v.put(&spec.name, vec![item("a", vec![1.0; 8], json!({}))])
        .await
        .expect("put");
    v.delete_index(&spec.name).await.expect("delete");
    assert_eq!(v.get_index(&spec.name).await.expect("get deleted"), None);
    v.delete_index(&spec.name).await.expect("delete again");
    v.delete_index(&index_name())
        .await
        .expect("delete one never created");
    assert_eq!(
        v.get_index(&plain.name).await.expect("the other index"),
        Some(plain.clone()),
        "deleting one index leaves the others"
    );

    // A new index of the old name starts empty, with its own spec.
    let again = IndexSpec {
        dimension: 2,
        metric: Metric::Euclidean,
        non_filterable: vec![],
        ..spec.clone()
    };
    v.create_index(&again).await.expect("create again");
    assert_eq!(
        v.get_index(&again.name).await.expect("get"),
        Some(again.clone())
    );
    assert!(list_all(&*v, &again.name, 10).await.is_empty());
    v.put(&again.name, vec![item("b", vec![1.0, 2.0], json!({}))])
        .await
        .expect("a put of the new dimension");
}

pub async fn create_index_refuses_invalid_specs(v: Arc<dyn Vectors>) {
    let ok = IndexSpec {
        name: index_name(),
        dimension: 4,
        metric: Metric::Cosine,
        non_filterable: vec![],
    };
    for name in ["ab", "Upper-case", "-leading", "trailing-", "under_score"] {
        let spec = IndexSpec {
            name: name.to_owned(),
            ..ok.clone()
        };
        assert_invalid(v.create_index(&spec).await, &format!("index name {name:?}"));
    }
    for dimension in [0, 4097] {
        let spec = IndexSpec {
            dimension,
            ..ok.clone()
        };
        assert_invalid(
            v.create_index(&spec).await,
            &format!("dimension {dimension}"),
        );
    }
    let spec = IndexSpec {
        non_filterable: (0..11).map(|i| format!("k{i}")).collect(),
        ..ok.clone()
    };
    assert_invalid(v.create_index(&spec).await, "11 non-filterable keys");
    assert_eq!(v.get_index(&ok.name).await.expect("get"), None);

    let ten = IndexSpec {
        non_filterable: (0..10).map(|i| format!("k{i}")).collect(),
        ..ok.clone()
    };
    v.create_index(&ten).await.expect("10 non-filterable keys");
    assert_eq!(v.get_index(&ten.name).await.expect("get"), Some(ten));
}

pub async fn operations_on_a_missing_index_are_no_such_index(v: Arc<dyn Vectors>) {
    let missing = index_name();
    assert_no_such_index(
        v.put(&missing, vec![item("a", vec![1.0, 2.0], json!({}))])
            .await,
        "put",
    );
    assert_no_such_index(v.get(&missing, &keys(&["a"]), true, true).await, "get");
    assert_no_such_index(v.delete(&missing, &keys(&["a"])).await, "delete");
    assert_no_such_index(v.list(&missing, None, 10, false, false).await, "list");
}

pub async fn put_then_get_round_trips_data_and_metadata(v: Arc<dyn Vectors>) {
    let index = new_index(&*v, 16, Metric::Cosine, &["body"]).await;
    let mut rng = Rng(7);
    let mut awkward = rng.vector(16);
    // Values whose decimal forms are long, tiny, large and negative: each must come back
    // as the same f32.
    awkward[..6].copy_from_slice(&[0.1, -123.456_79, 1.0e-30, 3.402_823e38, 1.0 / 3.0, -0.0]);
    let full = json!({
        "s": "héllo ✓ \"quoted\"",
        "i": 42,
        "neg": -7,
        "big": 1_234_567_890_123_i64,
        "f": 2.5,
        "small": 0.001,
        "yes": true,
        "no": false,
        "tags": ["a", "b", "c d"],
        "body": "a long text, stored but not filterable",
    });
    let items = vec![
        item("full", awkward.clone(), full.clone()),
        item("some", rng.vector(16), json!({"s": "x"})),
        item("none", rng.vector(16), json!({})),
        item("k/with:odd chars é", rng.vector(16), json!({"n": 1})),
    ];
    v.put(&index, items.clone()).await.expect("put");

    let wanted: Vec<String> = items
        .iter()
        .map(|i| i.key.clone())
        .chain(["missing".to_owned()])
        .collect();
    let got = by_key(v.get(&index, &wanted, true, true).await.expect("get"));
    assert_eq!(
        got.keys().cloned().collect::<BTreeSet<_>>(),
        items.iter().map(|i| i.key.clone()).collect(),
        "missing keys are left out"
    );
    for it in &items {
        let f = &got[&it.key];
        let data = f.data.as_ref().expect("data asked for");
        assert_eq!(data.len(), it.data.len());
        for (a, b) in data.iter().zip(&it.data) {
            assert_eq!(
                a.to_bits() & 0x7fff_ffff,
                b.to_bits() & 0x7fff_ffff,
                "{}: {a} for {b}",
                it.key
            );
        }
        // A vector put with no metadata reads back with none (an empty object).
        assert_eq!(
            f.metadata.clone().unwrap_or_default(),
            it.metadata,
            "{}: metadata",
            it.key
        );
    }
    assert_eq!(got["full"].metadata, Some(meta(full.clone())));

    let bare = by_key(
        v.get(&index, &keys(&["full", "some"]), false, false)
            .await
            .expect("get keys only"),
    );
    assert_eq!(bare.len(), 2);
    assert!(
        bare.values()
            .all(|f| f.data.is_none() && f.metadata.is_none())
    );

    let data_only = v
        .get(&index, &keys(&["full"]), true, false)
        .await
        .expect("get data");
    assert_eq!(data_only.len(), 1);
    assert!(data_only[0].data.is_some() && data_only[0].metadata.is_none());
    let meta_only = v
        .get(&index, &keys(&["full"]), false, true)
        .await
        .expect("get metadata");
    assert_eq!(meta_only.len(), 1);
    assert!(meta_only[0].data.is_none());
    assert_eq!(meta_only[0].metadata, Some(meta(full)));

    assert!(
        v.get(&index, &keys(&["nope", "nada"]), true, true)
            .await
            .expect("get only missing keys")
            .is_empty()
    );
}

pub async fn put_replaces_a_vector_whole(v: Arc<dyn Vectors>) {
    let index = new_index(&*v, 3, Metric::Euclidean, &[]).await;
    v.put(
        &index,
        vec![
            item("k", vec![1.0, 2.0, 3.0], json!({"a": 1, "b": "x"})),
            item("other", vec![0.0, 0.0, 1.0], json!({"a": 5})),
        ],
    )
    .await
    .expect("put");
    v.put(
        &index,
        vec![item("k", vec![4.0, 5.0, 6.0], json!({"c": true}))],
    )
    .await
    .expect("put again");
    let got = by_key(
        v.get(&index, &keys(&["k", "other"]), true, true)
            .await
            .expect("get"),
    );
    assert_eq!(got["k"].data, Some(vec![4.0, 5.0, 6.0]));
    assert_eq!(
        got["k"].metadata,
        Some(meta(json!({"c": true}))),
        "metadata replaced, not merged"
    );
    assert_eq!(got["other"].metadata, Some(meta(json!({"a": 5}))));
    assert_eq!(list_all(&*v, &index, 10).await.len(), 2);
}

pub async fn put_refuses_invalid_batches_and_writes_none_of_them(v: Arc<dyn Vectors>) {
    let index = new_index(&*v, 4, Metric::Cosine, &["body"]).await;
    let good = |i: usize| {
        item(
            &format!("good-{i}"),
            vec![1.0, 0.5, 0.25, i as f32],
            json!({"n": i}),
        )
    };
    let long = "x".repeat(2100);
    let bad_batches: Vec<(&str, Vec<VectorItem>)> = vec![
        (
            "a wrong dimension",
            vec![good(0), item("short", vec![1.0, 2.0, 3.0], json!({}))],
        ),
        (
            "NaN",
            vec![
                good(1),
                item("nan", vec![1.0, f32::NAN, 0.0, 0.0], json!({})),
            ],
        ),
        (
            "infinity",
            vec![
                good(2),
                item("inf", vec![1.0, f32::INFINITY, 0.0, 0.0], json!({})),
            ],
        ),
        ("a key given twice", vec![good(3), good(4), good(3)]),
        (
            "more than MAX_PUT vectors",
            (0..MAX_PUT + 1).map(|i| good(100 + i)).collect(),
        ),
        (
            "a key over 1024 characters",
            vec![good(5), item(&"k".repeat(1025), vec![1.0; 4], json!({}))],
        ),
        (
            "filterable metadata over 2 KB",
            vec![good(6), item("fat", vec![1.0; 4], json!({"tag": long}))],
        ),
    ];
    let mut written = Vec::new();
    for (what, batch) in bad_batches {
        written.extend(batch.iter().map(|i| i.key.clone()));
        assert_invalid(v.put(&index, batch).await, what);
    }
    assert!(
        list_all(&*v, &index, 1000).await.is_empty(),
        "nothing was written"
    );
    for chunk in written.chunks(MAX_GET) {
        let chunk: Vec<String> = chunk.iter().filter(|k| k.len() <= 1024).cloned().collect();
        assert!(
            v.get(&index, &chunk, false, false)
                .await
                .expect("get")
                .is_empty()
        );
    }

    // The same bytes under the non-filterable key, and a key of exactly 1024 characters,
    // are accepted.
    let accepted = vec![
        item("fat", vec![1.0; 4], json!({"body": long, "tag": "short"})),
        item(&"k".repeat(1024), vec![1.0, 2.0, 3.0, 4.0], json!({})),
    ];
    v.put(&index, accepted.clone()).await.expect("put accepted");
    let got = by_key(
        v.get(&index, &keys(&["fat"]), false, true)
            .await
            .expect("get"),
    );
    assert_eq!(got["fat"].metadata, Some(accepted[0].metadata.clone()));
    assert_eq!(list_all(&*v, &index, 1000).await.len(), 2);
}

pub async fn delete_removes_only_the_given_keys(v: Arc<dyn Vectors>) {
    let index = new_index(&*v, 2, Metric::Euclidean, &[]).await;
    let items: Vec<VectorItem> = (0..5)
        .map(|i| item(&format!("k{i}"), vec![i as f32, 1.0], json!({"i": i})))
        .collect();
    v.put(&index, items).await.expect("put");
    v.delete(&index, &keys(&["k1", "k3", "missing"]))
        .await
        .expect("delete, a missing key included");
    let left = by_key(
        v.get(&index, &keys(&["k0", "k1", "k2", "k3", "k4"]), false, false)
            .await
            .expect("get"),
    );
    assert_eq!(
        left.keys().cloned().collect::<Vec<_>>(),
        keys(&["k0", "k2", "k4"])
    );
    assert_eq!(
        list_all(&*v, &index, 2).await,
        keys(&["k0", "k2", "k4"]).into_iter().collect()
    );
    v.delete(&index, &keys(&["k1"]))
        .await
        .expect("deleting a deleted key");
}

pub async fn list_pages_through_1200_vectors_exactly_once(v: Arc<dyn Vectors>) {
    let index = new_index(&*v, 4, Metric::Euclidean, &[]).await;
    let all: Vec<String> = (0..1200).map(|i| format!("v{i:04}")).collect();
    for chunk in all.chunks(MAX_PUT) {
        let items = chunk
            .iter()
            .enumerate()
            .map(|(i, k)| item(k, vec![i as f32, 1.0, 2.0, 3.0], json!({})))
            .collect();
        v.put(&index, items).await.expect("put");
    }
    let seen = list_all(&*v, &index, 500).await;
    assert_eq!(seen.len(), 1200);
    assert_eq!(seen, all.iter().cloned().collect());

    // Data and metadata on a page when asked.
    let page = v
        .list(&index, None, 3, true, true)
        .await
        .expect("list with data");
    assert_eq!(page.vectors.len(), 3);
    assert!(page.cursor.is_some());
    for f in &page.vectors {
        assert_eq!(f.data.as_ref().map(Vec::len), Some(4));
        assert_eq!(f.metadata.clone().unwrap_or_default(), Map::new());
    }
}

pub async fn batch_and_page_limits_are_refused(v: Arc<dyn Vectors>) {
    let index = new_index(&*v, 2, Metric::Cosine, &[]).await;
    let many = |n: usize| (0..n).map(|i| format!("k{i}")).collect::<Vec<_>>();
    assert_invalid(
        v.get(&index, &many(MAX_GET + 1), false, false).await,
        "a get of MAX_GET + 1 keys",
    );
    v.get(&index, &many(MAX_GET), false, false)
        .await
        .expect("a get of MAX_GET keys");
    assert_invalid(
        v.delete(&index, &many(MAX_DELETE + 1)).await,
        "a delete of MAX_DELETE + 1 keys",
    );
    v.delete(&index, &many(MAX_DELETE))
        .await
        .expect("a delete of MAX_DELETE keys");
    assert_invalid(
        v.list(&index, None, MAX_LIST + 1, false, false).await,
        "a page of MAX_LIST + 1",
    );
    v.list(&index, None, MAX_LIST, false, false)
        .await
        .expect("a page of MAX_LIST");
}

// ---------------------------------------------------------------------------------------
// Queries (where served).

fn query(
    vector: Vec<f32>,
    top_k: usize,
    filter: Option<Value>,
    return_metadata: bool,
) -> VectorQuery {
    VectorQuery {
        vector,
        top_k,
        filter,
        return_metadata,
    }
}

async fn exact_top_k(v: Arc<dyn Vectors>, metric: Metric, seed: u64) {
    const DIM: usize = 64;
    let index = new_index(&*v, DIM, metric, &[]).await;
    let mut rng = Rng(seed);
    let stored: Vec<(String, Vec<f32>)> = (0..300)
        .map(|i| (format!("p{i:03}"), rng.vector(DIM)))
        .collect();
    v.put(
        &index,
        stored
            .iter()
            .map(|(k, d)| item(k, d.clone(), json!({})))
            .collect(),
    )
    .await
    .expect("put");
    let by_key: BTreeMap<&str, &Vec<f32>> = stored.iter().map(|(k, d)| (k.as_str(), d)).collect();
    for (round, k) in [(0, 10), (1, 1), (2, MAX_TOP_K), (3, 37), (4, 10)] {
        let q = if round == 4 {
            // A stored vector itself: it is its own nearest, at distance 0.
            stored[123].1.clone()
        } else {
            rng.vector(DIM)
        };
        let mut brute: Vec<(f32, &str)> = stored
            .iter()
            .map(|(key, d)| (distance(metric, &q, d), key.as_str()))
            .collect();
        brute.sort_by(|a, b| a.0.total_cmp(&b.0));
        let got = v
            .query(&index, &query(q.clone(), k, None, false))
            .await
            .expect("query");
        assert_eq!(got.len(), k, "round {round}: top {k}");
        for (i, m) in got.iter().enumerate() {
            assert!(
                (m.distance - brute[i].0).abs() < 1e-4,
                "round {round}, rank {i}: distance {} where brute force has {} ({})",
                m.distance,
                brute[i].0,
                brute[i].1
            );
            let own = distance(metric, &q, by_key[m.key.as_str()]);
            assert!(
                (m.distance - own).abs() < 1e-4,
                "round {round}: {} reported at {} but is at {own}",
                m.key,
                m.distance
            );
            assert!(m.metadata.is_none(), "metadata not asked for");
        }
        // Every vector clearly inside the top k is returned (near ties at the edge may
        // fall either way).
        let edge = brute[k - 1].0;
        let returned = match_keys(&got);
        for (d, key) in &brute[..k] {
            if *d < edge - 1e-4 {
                assert!(
                    returned.contains(*key),
                    "round {round}: {key} at {d} is missing"
                );
            }
        }
        if round == 4 {
            assert_eq!(got[0].key, stored[123].0);
            assert!(got[0].distance.abs() < 1e-4);
        }
    }
}

pub async fn query_top_k_is_exact_for_cosine(v: Arc<dyn Vectors>) {
    exact_top_k(v, Metric::Cosine, 11).await;
}

pub async fn query_top_k_is_exact_for_euclidean(v: Arc<dyn Vectors>) {
    exact_top_k(v, Metric::Euclidean, 12).await;
}

pub async fn query_refuses_invalid_requests(v: Arc<dyn Vectors>) {
    let index = new_index(&*v, 3, Metric::Cosine, &[]).await;
    v.put(&index, vec![item("a", vec![1.0, 2.0, 3.0], json!({}))])
        .await
        .expect("put");
    assert_invalid(
        v.query(
            &index,
            &query(vec![1.0, 0.0, 0.0], MAX_TOP_K + 1, None, false),
        )
        .await,
        "top_k over MAX_TOP_K",
    );
    assert_invalid(
        v.query(&index, &query(vec![1.0, 0.0, 0.0], 0, None, false))
            .await,
        "top_k 0",
    );
    assert_invalid(
        v.query(&index, &query(vec![1.0, 0.0], 5, None, false))
            .await,
        "a query vector of the wrong dimension",
    );
    assert_invalid(
        v.query(
            &index,
            &query(
                vec![1.0, 0.0, 0.0],
                5,
                Some(json!({"a": {"$regex": "x"}})),
                false,
            ),
        )
        .await,
        "an unknown filter operator",
    );
    assert_no_such_index(
        v.query(&index_name(), &query(vec![1.0, 0.0, 0.0], 5, None, false))
            .await,
        "a query of a missing index",
    );
}

/// The metadata of filter case `i`: every key present on every vector but `opt`.
fn filter_metadata(i: usize) -> Value {
    let genres = ["drama", "comedy", "horror"];
    let mut m = json!({
        "genre": genres[i % 3],
        "year": 2000 + i,
        "score": i as f64 + 0.5,
        "tags": [format!("t{}", i % 4), format!("t{}", (i + 1) % 4)],
        "flag": i.is_multiple_of(2),
    });
    if i.is_multiple_of(4) {
        m["opt"] = json!("here");
    }
    m
}

pub async fn query_filters_with_every_operator(v: Arc<dyn Vectors>) {
    let index = new_index(&*v, 4, Metric::Cosine, &[]).await;
    let mut rng = Rng(5);
    let n = 12;
    v.put(
        &index,
        (0..n)
            .map(|i| item(&format!("f{i:02}"), rng.vector(4), filter_metadata(i)))
            .collect(),
    )
    .await
    .expect("put");
    let genre = |i: usize| ["drama", "comedy", "horror"][i % 3];
    let year = |i: usize| 2000 + i;
    let tags = |i: usize| [i % 4, (i + 1) % 4];
    type Case = (Value, Box<dyn Fn(usize) -> bool>);
    let cases: Vec<Case> = vec![
        (
            json!({"genre": "drama"}),
            Box::new(move |i| genre(i) == "drama"),
        ),
        (
            json!({"genre": {"$eq": "comedy"}}),
            Box::new(move |i| genre(i) == "comedy"),
        ),
        (
            json!({"genre": {"$ne": "drama"}}),
            Box::new(move |i| genre(i) != "drama"),
        ),
        (
            json!({"year": {"$gt": 2005}}),
            Box::new(move |i| year(i) > 2005),
        ),
        (
            json!({"year": {"$gte": 2005}}),
            Box::new(move |i| year(i) >= 2005),
        ),
        (
            json!({"year": {"$lt": 2003}}),
            Box::new(move |i| year(i) < 2003),
        ),
        (
            json!({"year": {"$lte": 2003}}),
            Box::new(move |i| year(i) <= 2003),
        ),
        (
            json!({"score": {"$gt": 4.0}}),
            Box::new(|i| i as f64 + 0.5 > 4.0),
        ),
        (
            json!({"genre": {"$in": ["drama", "horror"]}}),
            Box::new(move |i| genre(i) != "comedy"),
        ),
        (
            json!({"genre": {"$nin": ["drama"]}}),
            Box::new(move |i| genre(i) != "drama"),
        ),
        (
            json!({"opt": {"$exists": true}}),
            Box::new(|i| i.is_multiple_of(4)),
        ),
        (json!({"opt": {"$exists": false}}), Box::new(|i| i % 4 != 0)),
        (json!({"flag": false}), Box::new(|i| i % 2 == 1)),
        (
            json!({"$and": [{"genre": "drama"}, {"year": {"$gt": 2003}}]}),
            Box::new(move |i| genre(i) == "drama" && year(i) > 2003),
        ),
        (
            json!({"$or": [{"genre": "horror"}, {"flag": true}]}),
            Box::new(move |i| genre(i) == "horror" || i.is_multiple_of(2)),
        ),
        (
            json!({"genre": "drama", "flag": true}),
            Box::new(move |i| genre(i) == "drama" && i.is_multiple_of(2)),
        ),
        // A list-valued key matches when any element does.
        (
            json!({"tags": "t1"}),
            Box::new(move |i| tags(i).contains(&1)),
        ),
        (
            json!({"tags": {"$in": ["t3", "t9"]}}),
            Box::new(move |i| tags(i).contains(&3)),
        ),
        (json!({"genre": "nothing"}), Box::new(|_| false)),
    ];
    let q = rng.vector(4);
    for (filter, expect) in cases {
        let got = v
            .query(
                &index,
                &query(q.clone(), MAX_TOP_K, Some(filter.clone()), false),
            )
            .await
            .unwrap_or_else(|e| panic!("query with {filter}: {e}"));
        let want: BTreeSet<String> = (0..n)
            .filter(|i| expect(*i))
            .map(|i| format!("f{i:02}"))
            .collect();
        assert_eq!(match_keys(&got), want, "filter {filter}");
        for w in got.windows(2) {
            assert!(
                w[0].distance <= w[1].distance,
                "nearest first, with {filter}"
            );
        }
    }
    // A filter narrows before the top k is taken: the one match is found however far.
    let got = v
        .query(
            &index,
            &query(q.clone(), 1, Some(json!({"year": 2011})), false),
        )
        .await
        .expect("query");
    assert_eq!(match_keys(&got), ["f11".to_owned()].into_iter().collect());
}

pub async fn query_returns_metadata_only_when_asked(v: Arc<dyn Vectors>) {
    let index = new_index(&*v, 3, Metric::Euclidean, &["body"]).await;
    let m = json!({"title": "t", "n": 3, "tags": ["x", "y"], "body": "long text"});
    v.put(
        &index,
        vec![
            item("a", vec![1.0, 0.0, 0.0], m.clone()),
            item("b", vec![0.0, 1.0, 0.0], json!({})),
        ],
    )
    .await
    .expect("put");
    let without = v
        .query(&index, &query(vec![1.0, 0.0, 0.0], 5, None, false))
        .await
        .expect("query");
    assert_eq!(without.len(), 2);
    assert!(without.iter().all(|m| m.metadata.is_none()));
    let with = v
        .query(&index, &query(vec![1.0, 0.0, 0.0], 5, None, true))
        .await
        .expect("query with metadata");
    assert_eq!(with[0].key, "a");
    assert!(with[0].distance.abs() < 1e-6);
    assert!(
        (with[1].distance - 2f32.sqrt()).abs() < 1e-4,
        "euclidean distance"
    );
    assert_eq!(
        with[0].metadata,
        Some(meta(m)),
        "non-filterable keys are returned too"
    );
    assert_eq!(with[1].metadata.clone().unwrap_or_default(), Map::new());
}

pub async fn query_an_empty_index_and_fewer_matches_than_k(v: Arc<dyn Vectors>) {
    let index = new_index(&*v, 3, Metric::Cosine, &[]).await;
    assert!(
        v.query(&index, &query(vec![1.0, 2.0, 3.0], 10, None, true))
            .await
            .expect("query an empty index")
            .is_empty()
    );
    v.put(
        &index,
        vec![
            item("a", vec![1.0, 0.0, 0.0], json!({"g": "x"})),
            item("b", vec![0.0, 1.0, 0.0], json!({"g": "y"})),
            item("c", vec![0.0, 0.0, 1.0], json!({"g": "y"})),
        ],
    )
    .await
    .expect("put");
    let all = v
        .query(&index, &query(vec![1.0, 0.1, 0.0], 10, None, false))
        .await
        .expect("query");
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].key, "a");
    let one = v
        .query(
            &index,
            &query(vec![1.0, 0.1, 0.0], 10, Some(json!({"g": "x"})), false),
        )
        .await
        .expect("query with a filter");
    assert_eq!(match_keys(&one), ["a".to_owned()].into_iter().collect());
}

pub async fn query_sees_deletes_and_overwrites(v: Arc<dyn Vectors>) {
    let index = new_index(&*v, 3, Metric::Euclidean, &[]).await;
    v.put(
        &index,
        vec![
            item("a", vec![10.0, 0.0, 0.0], json!({})),
            item("b", vec![0.0, 0.0, 0.0], json!({})),
            item("c", vec![1.0, 1.0, 1.0], json!({})),
        ],
    )
    .await
    .expect("put");
    let q = vec![0.0, 0.0, 0.0];
    let first = v
        .query(&index, &query(q.clone(), 10, None, false))
        .await
        .expect("query");
    assert_eq!(
        first.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(),
        ["b", "c", "a"]
    );
    assert!((first[1].distance - 3f32.sqrt()).abs() < 1e-4);
    assert!((first[2].distance - 10.0).abs() < 1e-4);

    v.delete(&index, &keys(&["b"])).await.expect("delete");
    v.put(&index, vec![item("a", vec![0.5, 0.0, 0.0], json!({}))])
        .await
        .expect("overwrite");
    let after = v
        .query(&index, &query(q, 10, None, false))
        .await
        .expect("query");
    assert_eq!(
        after.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(),
        ["a", "c"]
    );
    assert!((after[0].distance - 0.5).abs() < 1e-4);
}

/// Generates one `#[tokio::test]` per vectors conformance case, each on the port
/// `$make` returns (an expression of type `impl Future<Output = (Arc<dyn Vectors>, G)>`,
/// `G` kept alive for the test); the query cases only with `query: true`.
#[macro_export]
macro_rules! vectors_conformance_cases {
    (make: $make:expr, query: true) => {
        $crate::vectors_conformance_cases!(make: $make, query: false);
        $crate::vectors_conformance_cases!(@cases $make;
            query_top_k_is_exact_for_cosine,
            query_top_k_is_exact_for_euclidean,
            query_refuses_invalid_requests,
            query_filters_with_every_operator,
            query_returns_metadata_only_when_asked,
            query_an_empty_index_and_fewer_matches_than_k,
            query_sees_deletes_and_overwrites);
    };
    (make: $make:expr, query: false) => {
        $crate::vectors_conformance_cases!(@cases $make;
            indexes_create_get_delete,
            create_index_refuses_invalid_specs,
            operations_on_a_missing_index_are_no_such_index,
            put_then_get_round_trips_data_and_metadata,
            put_replaces_a_vector_whole,
            put_refuses_invalid_batches_and_writes_none_of_them,
            delete_removes_only_the_given_keys,
            list_pages_through_1200_vectors_exactly_once,
            batch_and_page_limits_are_refused);
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (vectors, _guard) = $make.await;
                $crate::vectors_conformance::$case(vectors).await;
            }
        )*
    };
}
