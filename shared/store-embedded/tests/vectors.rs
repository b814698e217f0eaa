//! The embedded `Vectors` adapter against an exact f32 brute force: keys and distances of
//! every query equal the reference's, for both metrics, with and without filters, after
//! overwrites and deletes and after reopening the store; the port's checks; listing;
//! deleting an index. (Recall on clustered data is a unit test of `vectors.rs`.)

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use zerodb_domain::filter::Filter;
use zerodb_domain::vectors::*;
use zerodb_store_embedded::{EmbeddedStore, OpenOptions, SyncMode};

fn open(dir: &Path) -> Arc<dyn Vectors> {
    EmbeddedStore::open_with(
        dir,
        OpenOptions {
            sync: SyncMode::Normal,
            readers: 2,
        },
    )
    .expect("open store")
    .vectors()
}

/// splitmix64: deterministic data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A standard normal (Box–Muller).
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.unit().max(1e-300), self.unit());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }

    fn vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.normal()).collect()
    }
}

/// What the index should hold: key → (data, filterable metadata, whole metadata).
#[derive(Default)]
struct Model {
    vectors: BTreeMap<String, (Vec<f32>, Map<String, Value>)>,
    non_filterable: Vec<String>,
}

impl Model {
    fn put(&mut self, items: &[VectorItem]) {
        for i in items {
            self.vectors
                .insert(i.key.clone(), (i.data.clone(), i.metadata.clone()));
        }
    }

    fn delete(&mut self, keys: &[String]) {
        for k in keys {
            self.vectors.remove(k);
        }
    }

    /// The exact answer: every vector's f32 distance, filtered on its filterable metadata.
    fn query(&self, metric: Metric, q: &VectorQuery) -> Vec<(String, f32)> {
        let filter = q.filter.as_ref().map(|f| Filter::parse(f).expect("filter"));
        let mut all: Vec<(f32, String)> = self
            .vectors
            .iter()
            .filter(|(_, (_, meta))| {
                filter.as_ref().is_none_or(|f| {
                    let mut visible = meta.clone();
                    visible.retain(|k, _| !self.non_filterable.contains(k));
                    f.matches(&Value::Object(visible))
                })
            })
            .map(|(k, (data, _))| (distance(metric, data, &q.vector), k.clone()))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        all.truncate(q.top_k);
        all.into_iter().map(|(d, k)| (k, d)).collect()
    }
}

fn item(rng: &mut Rng, key: String, dim: usize) -> VectorItem {
    let mut metadata = Map::new();
    metadata.insert("group".into(), json!(rng.below(5)));
    metadata.insert(
        "kind".into(),
        json!(["fact", "note", "event"][rng.below(3)]),
    );
    if rng.below(3) == 0 {
        metadata.insert("tags".into(), json!(["red", "blue"][..1 + rng.below(2)]));
    }
    metadata.insert("text".into(), json!(format!("long text of {key}")));
    VectorItem {
        key,
        data: rng.vector(dim),
        metadata,
    }
}

/// Runs queries of several shapes against the index and the model and compares them.
async fn check_queries(
    v: &dyn Vectors,
    index: &str,
    metric: Metric,
    model: &Model,
    rng: &mut Rng,
    dim: usize,
) {
    let filters = [
        None,
        Some(json!({"group": 3})),
        Some(json!({"kind": {"$in": ["note", "event"]}, "group": {"$gte": 2}})),
        Some(json!({"tags": "blue"})),
        // Matches a handful only: the true nearest among them must come back.
        Some(json!({"$and": [{"group": 0}, {"kind": "event"}, {"tags": {"$exists": true}}]})),
        // Non-filterable keys are not visible to filters.
        Some(json!({"text": {"$exists": true}})),
    ];
    for (n, filter) in filters.iter().enumerate() {
        for top_k in [1, 7, 30, 100] {
            let mut vector = rng.vector(dim);
            if n % 2 == 1 {
                // Near an existing vector, as real queries are.
                if let Some((_, (data, _))) = model
                    .vectors
                    .iter()
                    .nth(rng.below(model.vectors.len().max(1)))
                {
                    vector = data.iter().map(|x| x + 0.1 * rng.normal()).collect();
                }
            }
            let q = VectorQuery {
                vector,
                top_k,
                filter: filter.clone(),
                return_metadata: top_k == 7,
            };
            let got = v.query(index, &q).await.expect("query");
            let want = model.query(metric, &q);
            let got_pairs: Vec<(String, f32)> =
                got.iter().map(|m| (m.key.clone(), m.distance)).collect();
            assert_eq!(
                got_pairs, want,
                "{metric:?} top_k {top_k} filter {filter:?}"
            );
            for m in &got {
                if q.return_metadata {
                    assert_eq!(m.metadata.as_ref(), Some(&model.vectors[&m.key].1));
                } else {
                    assert!(m.metadata.is_none());
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_equal_an_exact_brute_force_through_writes_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    // 24 dimensions: not a multiple of the kernel's 16 lanes.
    let dim = 24;
    let mut rng = Rng(7);
    for metric in [Metric::Cosine, Metric::Euclidean] {
        let index = format!("idx-{}", metric.as_str());
        let mut model = Model {
            non_filterable: vec!["text".into()],
            ..Model::default()
        };
        {
            let v = open(dir.path());
            v.create_index(&IndexSpec {
                name: index.clone(),
                dimension: dim,
                metric,
                non_filterable: vec!["text".into()],
            })
            .await
            .unwrap();
            let mut n = 0;
            for batch in [500, 300, 1] {
                let items: Vec<VectorItem> = (0..batch)
                    .map(|_| {
                        n += 1;
                        item(&mut rng, format!("k{n:05}"), dim)
                    })
                    .collect();
                model.put(&items);
                v.put(&index, items).await.unwrap();
            }
            // A zero vector: refused by a cosine index (it has no direction), a point
            // like any other for euclidean.
            let zero = VectorItem {
                key: "zero".into(),
                data: vec![0.0; dim],
                metadata: Map::new(),
            };
            if metric == Metric::Cosine {
                assert!(matches!(
                    v.put(&index, vec![zero]).await,
                    Err(VectorError::Invalid(_))
                ));
            } else {
                model.put(std::slice::from_ref(&zero));
                v.put(&index, vec![zero]).await.unwrap();
            }
            check_queries(&*v, &index, metric, &model, &mut rng, dim).await;

            // Overwrites (new data and metadata) and deletes, some of missing keys.
            let over: Vec<VectorItem> = (0..150)
                .map(|i| item(&mut rng, format!("k{:05}", 1 + i * 5), dim))
                .collect();
            model.put(&over);
            v.put(&index, over).await.unwrap();
            let gone: Vec<String> = (0..120)
                .map(|i| format!("k{:05}", 3 + i * 7))
                .chain(["absent".to_string()])
                .collect();
            model.delete(&gone);
            v.delete(&index, &gone).await.unwrap();
            check_queries(&*v, &index, metric, &model, &mut rng, dim).await;
        }
        // Reopened: the search copy is rebuilt from the database.
        let v = open(dir.path());
        check_queries(&*v, &index, metric, &model, &mut rng, dim).await;
        // Writes after a load.
        let mut more: Vec<VectorItem> = (0..40)
            .map(|i| item(&mut rng, format!("m{i:03}"), dim))
            .collect();
        more.extend((0..40).map(|i| item(&mut rng, format!("k{:05}", 2 + i * 11), dim)));
        model.put(&more);
        v.put(&index, more).await.unwrap();
        let gone: Vec<String> = (0..60).map(|i| format!("k{:05}", 4 + i * 13)).collect();
        model.delete(&gone);
        v.delete(&index, &gone).await.unwrap();
        check_queries(&*v, &index, metric, &model, &mut rng, dim).await;
        // get agrees with the model.
        let keys: Vec<String> = model
            .vectors
            .keys()
            .take(90)
            .cloned()
            .chain(["nope".into()])
            .collect();
        let got = v.get(&index, &keys, true, true).await.unwrap();
        assert_eq!(got.len(), 90);
        for f in got {
            let (data, meta) = &model.vectors[&f.key];
            assert_eq!(f.data.as_ref(), Some(data));
            assert_eq!(f.metadata.as_ref(), Some(meta));
        }
    }
}

fn invalid<T: std::fmt::Debug>(r: Result<T, VectorError>) -> String {
    match r {
        Err(VectorError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn the_ports_checks_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let v = open(dir.path());
    let spec = IndexSpec {
        name: "checks".into(),
        dimension: 4,
        metric: Metric::Cosine,
        non_filterable: vec!["body".into()],
    };
    v.create_index(&spec).await.unwrap();
    assert!(matches!(
        v.create_index(&spec).await,
        Err(VectorError::IndexExists(n)) if n == "checks"
    ));
    assert_eq!(v.get_index("checks").await.unwrap(), Some(spec.clone()));
    assert_eq!(v.get_index("other").await.unwrap(), None);
    for bad in [
        IndexSpec {
            name: "ab".into(),
            ..spec.clone()
        },
        IndexSpec {
            name: "Upper".into(),
            ..spec.clone()
        },
        IndexSpec {
            name: "zero".into(),
            dimension: 0,
            ..spec.clone()
        },
        IndexSpec {
            name: "huge".into(),
            dimension: MAX_DIMENSION + 1,
            ..spec.clone()
        },
        IndexSpec {
            name: "many".into(),
            non_filterable: (0..11).map(|i| format!("k{i}")).collect(),
            ..spec.clone()
        },
    ] {
        invalid(v.create_index(&bad).await);
    }
    let ok = |key: &str| VectorItem {
        key: key.into(),
        data: vec![1.0, 2.0, 3.0, 4.0],
        metadata: Map::new(),
    };
    let missing = "missing";
    assert!(matches!(
        v.put(missing, vec![ok("a")]).await,
        Err(VectorError::NoSuchIndex(_))
    ));
    assert!(matches!(
        v.get(missing, &["a".into()], true, true).await,
        Err(VectorError::NoSuchIndex(_))
    ));
    assert!(matches!(
        v.delete(missing, &["a".into()]).await,
        Err(VectorError::NoSuchIndex(_))
    ));
    assert!(matches!(
        v.list(missing, None, 10, false, false).await,
        Err(VectorError::NoSuchIndex(_))
    ));
    let q = VectorQuery {
        vector: vec![1.0, 0.0, 0.0, 0.0],
        top_k: 3,
        filter: None,
        return_metadata: false,
    };
    assert!(matches!(
        v.query(missing, &q).await,
        Err(VectorError::NoSuchIndex(_))
    ));
    v.delete_index(missing).await.unwrap();

    // A refused put writes nothing, whichever vector is at fault.
    let mut wrong_dim = ok("bad");
    wrong_dim.data.pop();
    let mut nan = ok("nan");
    nan.data[2] = f32::NAN;
    let mut big = ok("big");
    big.metadata.insert("x".into(), json!("y".repeat(3000)));
    let mut big_but_stored = ok("body");
    big_but_stored
        .metadata
        .insert("body".into(), json!("y".repeat(30_000)));
    for (bad, what) in [
        (wrong_dim, "dimensions"),
        (nan, "finite"),
        (big, "filterable metadata"),
        (ok(&"k".repeat(MAX_KEY_CHARS + 1)), "key"),
        (ok(""), "key"),
        (ok("a"), "twice"),
    ] {
        let msg = invalid(v.put("checks", vec![ok("a"), ok("b"), bad]).await);
        assert!(msg.contains(what), "{msg}");
    }
    invalid(v.put("checks", vec![]).await);
    invalid(
        v.put(
            "checks",
            (0..MAX_PUT + 1).map(|i| ok(&format!("k{i}"))).collect(),
        )
        .await,
    );
    let page = v.list("checks", None, 10, false, false).await.unwrap();
    assert!(page.vectors.is_empty(), "nothing written");
    // Non-filterable metadata may be large.
    v.put(
        "checks",
        vec![big_but_stored, ok(&"k".repeat(MAX_KEY_CHARS))],
    )
    .await
    .unwrap();

    invalid(v.get("checks", &[], true, true).await);
    invalid(
        v.get("checks", &vec!["a".to_string(); MAX_GET + 1], true, true)
            .await,
    );
    invalid(v.delete("checks", &[]).await);
    invalid(
        v.delete("checks", &vec!["a".to_string(); MAX_DELETE + 1])
            .await,
    );
    invalid(v.list("checks", None, MAX_LIST + 1, false, false).await);
    invalid(v.list("checks", Some("%%%"), 10, false, false).await);
    for bad in [
        VectorQuery {
            top_k: 0,
            ..q.clone()
        },
        VectorQuery {
            top_k: MAX_TOP_K + 1,
            ..q.clone()
        },
        VectorQuery {
            vector: vec![1.0; 3],
            ..q.clone()
        },
        VectorQuery {
            vector: vec![f32::INFINITY, 0.0, 0.0, 0.0],
            ..q.clone()
        },
        VectorQuery {
            filter: Some(json!({"a": {"$bogus": 1}})),
            ..q.clone()
        },
        VectorQuery {
            filter: Some(json!([1])),
            ..q.clone()
        },
    ] {
        invalid(v.query("checks", &bad).await);
    }
    // Duplicate keys in a get come back once; a zero query is at distance 1 from all.
    let got = v
        .get("checks", &["body".into(), "body".into()], false, true)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].metadata.as_ref().unwrap()["body"]
            .as_str()
            .unwrap()
            .len(),
        30_000
    );
    assert!(got[0].data.is_none());
    let zero = VectorQuery {
        vector: vec![0.0; 4],
        ..q.clone()
    };
    for m in v.query("checks", &zero).await.unwrap() {
        assert_eq!(m.distance, 1.0);
    }
}

#[tokio::test]
async fn listing_pages_through_every_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let v = open(dir.path());
    v.create_index(&IndexSpec {
        name: "list".into(),
        dimension: 3,
        metric: Metric::Euclidean,
        non_filterable: vec![],
    })
    .await
    .unwrap();
    let mut rng = Rng(3);
    let mut keys = HashSet::new();
    for b in 0..5 {
        let items: Vec<VectorItem> = (0..469)
            .map(|i| VectorItem {
                key: format!("{}-{b}-{i}", rng.next() % 100_000),
                data: rng.vector(3),
                metadata: Map::from_iter([("b".to_string(), json!(b))]),
            })
            .collect();
        keys.extend(items.iter().map(|i| i.key.clone()));
        v.put("list", items).await.unwrap();
    }
    for limit in [1000, 7] {
        let (mut seen, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let page = v
                .list("list", cursor.as_deref(), limit, limit == 7, true)
                .await
                .unwrap();
            assert!(page.vectors.len() <= limit);
            for f in &page.vectors {
                assert_eq!(f.data.is_some(), limit == 7);
                assert!(f.metadata.as_ref().unwrap().contains_key("b"));
            }
            seen.extend(page.vectors.into_iter().map(|f| f.key));
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len(), keys.len(), "limit {limit}");
        assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), keys);
    }
}

#[tokio::test]
async fn deleting_an_index_removes_its_vectors() {
    let dir = tempfile::tempdir().unwrap();
    {
        let v = open(dir.path());
        let spec = IndexSpec {
            name: "gone".into(),
            dimension: 2,
            metric: Metric::Cosine,
            non_filterable: vec![],
        };
        v.create_index(&spec).await.unwrap();
        let keep = IndexSpec {
            name: "kept".into(),
            ..spec.clone()
        };
        v.create_index(&keep).await.unwrap();
        let items = |n: usize, tag: &str| -> Vec<VectorItem> {
            (0..n)
                .map(|i| VectorItem {
                    key: format!("{tag}{i}"),
                    data: vec![1.0 + i as f32, 2.0],
                    metadata: Map::new(),
                })
                .collect()
        };
        // More than one purge batch.
        for b in 0..13 {
            v.put("gone", items(500, &format!("g{b}-"))).await.unwrap();
        }
        v.put("kept", items(10, "k")).await.unwrap();
        let q = VectorQuery {
            vector: vec![1.0, 2.0],
            top_k: 5,
            filter: None,
            return_metadata: false,
        };
        assert_eq!(v.query("gone", &q).await.unwrap().len(), 5);
        v.delete_index("gone").await.unwrap();
        assert!(matches!(
            v.query("gone", &q).await,
            Err(VectorError::NoSuchIndex(_))
        ));
        assert_eq!(v.get_index("gone").await.unwrap(), None);
        // Recreated under the same name: empty.
        v.create_index(&spec).await.unwrap();
        assert!(v.query("gone", &q).await.unwrap().is_empty());
        assert!(
            v.list("gone", None, 10, false, false)
                .await
                .unwrap()
                .vectors
                .is_empty()
        );
        assert_eq!(v.query("kept", &q).await.unwrap().len(), 5);
    }
    let db = rusqlite::Connection::open(dir.path().join(zerodb_store_embedded::DB_FILE)).unwrap();
    let rows: i64 = db
        .query_row("SELECT count(*) FROM vectors", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 10, "only the kept index's vectors remain");
}
