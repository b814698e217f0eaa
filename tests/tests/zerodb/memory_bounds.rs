//! The bounds on one recall's work, on both storage backends: it embeds at most its bound
//! of pending memories (newest first) and says how many it left to the worker, who are
//! still found by their words; concurrent recalls embed a pending memory once; and
//! zerodb-local's namespace cache stays within its bytes and keeps nothing for empty
//! namespaces.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::StatusCode;
use serde_json::json;
use tokio::sync::{Semaphore, watch};
use zerodb_domain::Namespace;
use zerodb_domain::auth::Principal;
use zerodb_domain::scope::ScopeSet;
use zerodb_embed::{EmbedError, Embedder, LexicalEmbedder};
use zerodb_memory::model::{Content, Importance, MemoryType, NewMemory, Tags};
use zerodb_memory::{MemoryService, RecallLimits, RecallQuery};
use zerodb_tests::on_both_backends;
use zerodb_tests::support::{Backend, TestApp};

const V2: &str = "/api/v1/public/memory/v2";

/// The lexical embedder, counting how often it was asked for each text; calls of more
/// than one text wait at a gate while it is closed.
struct Counting {
    inner: LexicalEmbedder,
    texts: Mutex<HashMap<String, usize>>,
    calls: watch::Sender<usize>,
    gate: Semaphore,
}

impl Counting {
    fn new(open: bool) -> Arc<Self> {
        Arc::new(Counting {
            inner: LexicalEmbedder::new(384),
            texts: Mutex::default(),
            calls: watch::channel(0).0,
            gate: Semaphore::new(if open { Semaphore::MAX_PERMITS } else { 0 }),
        })
    }

    fn times(&self, text: &str) -> usize {
        self.texts.lock().unwrap().get(text).copied().unwrap_or(0)
    }

    fn total(&self) -> usize {
        self.texts.lock().unwrap().values().sum()
    }

    async fn calls_reach(&self, n: usize) {
        self.calls.subscribe().wait_for(|c| *c >= n).await.unwrap();
    }
}

#[async_trait::async_trait]
impl Embedder for Counting {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn dims(&self) -> usize {
        self.inner.dims()
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        {
            let mut seen = self.texts.lock().unwrap();
            for t in texts {
                *seen.entry(t.clone()).or_default() += 1;
            }
        }
        self.calls.send_modify(|c| *c += 1);
        if texts.len() > 1 {
            let _pass = self.gate.acquire().await.unwrap();
        }
        self.inner.embed(texts).await
    }
}

fn root(account: &str) -> Principal {
    Principal {
        account_id: account.into(),
        key_id: "bounds".into(),
        scopes: ScopeSet::root(),
        expires_at: None,
        via_token: false,
        rate_bucket: "bounds".into(),
    }
}

fn new_memory(ns: &Namespace, text: String) -> NewMemory {
    NewMemory {
        content: Content::new(text).unwrap(),
        namespace: ns.clone(),
        memory_type: MemoryType::Semantic,
        importance: Importance::DEFAULT,
        tags: Tags::default(),
        entity_id: None,
        metadata: Default::default(),
    }
}

fn query(ns: &Namespace, q: &str) -> RecallQuery {
    RecallQuery {
        query: q.into(),
        namespace: ns.clone(),
        limit: 5,
        memory_type: None,
        tags: Vec::new(),
        entity_id: None,
        min_importance: None,
    }
}

/// A memory service over the app's storage with this embedder (write-back before the
/// answer, as the tests' default).
fn service(app: &TestApp, embedder: Arc<dyn Embedder>) -> MemoryService {
    zerodb_tests::support::test_memory(&app.ctx, embedder)
}

/// 20 pending memories, a bound of 4: the recall embeds the query and the 4 newest, says
/// 16 are not embedded, still finds the oldest by its words, and once the worker has
/// embedded everything says 0.
async fn a_recall_embeds_at_most_its_bound_and_counts_the_rest(backend: Backend) {
    let counting = Counting::new(true);
    let mut app = TestApp::with_embedder(backend, counting.clone()).await;
    let svc = service(&app, counting.clone()).with_recall_limits(RecallLimits {
        inline_embed: 4,
        ..RecallLimits::default()
    });
    app.set_memory(svc.clone()).await;
    let k = app.root_key.clone();
    let mut ids = Vec::new();
    for i in 0..20 {
        let content = match i {
            0 => "The launch code is ZEBRA-42".to_owned(),
            _ => format!("Weather note {i}: light rain in the afternoon"),
        };
        let r = app
            .post(
                &format!("{V2}/remember"),
                &k,
                json!({"content": content, "namespace": "user:bounds"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }

    let r = app
        .post(
            &format!("{V2}/recall"),
            &k,
            json!({"query": "launch code ZEBRA-42", "namespace": "user:bounds", "limit": 5}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["not_embedded"], 16, "{}", r.body);
    assert_eq!(counting.total(), 5, "the query and the 4 newest memories");
    let top = &r.body["results"][0];
    assert_eq!(top["content"], "The launch code is ZEBRA-42", "{}", r.body);
    assert_eq!(top["embedded"], false, "found by its words: {}", r.body);

    // The newest four are the embedded ones.
    let r = app
        .post(
            &format!("{V2}/recall"),
            &k,
            json!({"query": "*", "namespace": "user:bounds", "limit": 20}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let flags: Vec<bool> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["embedded"].as_bool().unwrap())
        .collect();
    assert_eq!(flags, [vec![true; 4], vec![false; 16]].concat());
    assert_eq!(r.body["not_embedded"], 16);

    // The worker catches up (what the events of these writes ask it to do).
    let ns = Namespace::parse("user:bounds").unwrap();
    let targets: Vec<(Namespace, String)> = ids.iter().map(|id| (ns.clone(), id.clone())).collect();
    assert_eq!(
        svc.embed_pending(&app.account_id, &targets).await.unwrap(),
        16
    );
    let r = app
        .post(
            &format!("{V2}/recall"),
            &k,
            json!({"query": "launch code", "namespace": "user:bounds", "limit": 1}),
        )
        .await;
    assert_eq!(r.body["not_embedded"], 0, "{}", r.body);
    assert_eq!(r.body["results"][0]["embedded"], true);
}

/// Two recalls of one namespace at once: the second finds the pending memories claimed by
/// the first (still embedding, held at the gate), embeds only its query, and waits; every
/// memory is embedded once and both answers use the vectors.
async fn concurrent_recalls_embed_a_pending_memory_once(backend: Backend) {
    let counting = Counting::new(false);
    let app = TestApp::with_embedder(backend, counting.clone()).await;
    let svc = service(&app, counting.clone());
    let caller = root(&app.account_id);
    let ns = Namespace::parse("project:concurrent").unwrap();
    let texts: Vec<String> = (0..10)
        .map(|i| format!("Concurrent memory {i} about solar panels"))
        .collect();
    for t in &texts {
        svc.remember(&caller, new_memory(&ns, t.clone()))
            .await
            .unwrap();
    }
    let first = tokio::spawn({
        let (svc, caller, q) = (svc.clone(), caller.clone(), query(&ns, "solar panels"));
        async move { svc.recall(&caller, &q).await.unwrap() }
    });
    counting.calls_reach(1).await;
    assert_eq!(
        svc.inline_embeddings_in_flight(),
        10,
        "the first recall claimed all ten"
    );
    let second = tokio::spawn({
        let (svc, caller, q) = (svc.clone(), caller.clone(), query(&ns, "panels"));
        async move { svc.recall(&caller, &q).await.unwrap() }
    });
    // The second has claimed (or found claimed) everything once it asks for its query.
    counting.calls_reach(2).await;
    counting.gate.add_permits(Semaphore::MAX_PERMITS);
    let (a, b) = (first.await.unwrap(), second.await.unwrap());
    for t in &texts {
        assert_eq!(counting.times(t), 1, "{t} embedded once");
    }
    assert_eq!(counting.total(), 12, "ten memories and two queries");
    assert_eq!((a.not_embedded, b.not_embedded), (0, 0));
    assert!(b.results.iter().all(|s| s.memory.vector.is_some()));
    assert_eq!(
        svc.inline_embeddings_in_flight(),
        0,
        "claims released once saved"
    );
}

/// Six namespaces of one 30 KB memory each through a 100 KB cache: it never holds more
/// than its bytes (three of them), and recall answers the same from storage for the ones
/// it let go.
async fn the_namespace_cache_stays_within_its_bytes(backend: Backend) {
    const BUDGET: usize = 100 * 1024;
    let app = TestApp::new(backend).await;
    let svc = service(&app, Arc::new(LexicalEmbedder::new(384))).with_namespace_cache_bytes(BUDGET);
    let caller = root(&app.account_id);
    for round in 0..2 {
        for i in 0..6 {
            let ns = Namespace::parse(&format!("project:big{i}")).unwrap();
            if round == 0 {
                let text = format!("big memory {i} ") + &"x".repeat(30_000);
                svc.remember(&caller, new_memory(&ns, text)).await.unwrap();
            }
            let found = svc
                .recall(&caller, &query(&ns, "big memory"))
                .await
                .unwrap();
            assert_eq!(found.results.len(), 1);
            assert!(
                found.results[0]
                    .memory
                    .content
                    .starts_with(&format!("big memory {i} "))
            );
            let stats = svc.cache_stats().unwrap();
            assert!(stats.bytes <= BUDGET, "{stats:?}");
            assert!(stats.namespaces <= 3, "{stats:?}");
        }
    }
    let stats = svc.cache_stats().unwrap();
    assert!(stats.namespaces >= 2, "the cache still caches: {stats:?}");
}

/// A recall reads at most its bytes of a namespace, newest first: ten memories of 10 KB
/// through a 30 KB bound leave the three newest to rank, cached or not.
async fn a_recall_reads_at_most_its_bytes(backend: Backend) {
    let app = TestApp::new(backend).await;
    let caller = root(&app.account_id);
    let ns = Namespace::parse("project:large").unwrap();
    let limits = RecallLimits {
        max_scan_bytes: 30 * 1024,
        ..RecallLimits::default()
    };
    let plain = service(&app, Arc::new(LexicalEmbedder::new(384))).with_recall_limits(limits);
    // A cache holding the whole namespace (filled by an unbounded recall, below), read
    // through the same bound.
    let filler =
        service(&app, Arc::new(LexicalEmbedder::new(384))).with_namespace_cache_bytes(1 << 20);
    let cached = filler.clone().with_recall_limits(limits);
    for i in 0..10 {
        plain
            .remember(
                &caller,
                new_memory(&ns, format!("large {i} {}", "x".repeat(10_000))),
            )
            .await
            .unwrap();
    }
    let mut all = query(&ns, "*");
    all.limit = 100;
    assert_eq!(
        filler.recall(&caller, &all).await.unwrap().results.len(),
        10
    );
    assert_eq!(cached.cache_stats().unwrap().namespaces, 1);
    for svc in [&plain, &cached] {
        let found = svc.recall(&caller, &all).await.unwrap();
        let heads: Vec<&str> = found
            .results
            .iter()
            .map(|s| &s.memory.content[..7])
            .collect();
        assert_eq!(heads, ["large 9", "large 8", "large 7"]);
    }
}

/// A batch upsert into a namespace the cache holds is recalled at once: the cached
/// snapshot takes the new memories as a single remember's does.
async fn a_batch_upsert_into_a_cached_namespace_is_recalled_at_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let svc =
        service(&app, Arc::new(LexicalEmbedder::new(384))).with_namespace_cache_bytes(1 << 20);
    let caller = root(&app.account_id);
    let ns = Namespace::parse("project:batch").unwrap();
    svc.remember(&caller, new_memory(&ns, "the first memory".into()))
        .await
        .unwrap();
    // Cached now.
    assert_eq!(
        svc.recall(&caller, &query(&ns, "*"))
            .await
            .unwrap()
            .results
            .len(),
        1
    );
    assert_eq!(svc.cache_stats().unwrap().namespaces, 1);
    let records = (0..3)
        .map(|i| Ok((None, new_memory(&ns, format!("batch memory {i}")))))
        .collect();
    svc.batch_upsert(&caller, records).await.unwrap();
    let found = svc.recall(&caller, &query(&ns, "*")).await.unwrap();
    let mut texts: Vec<String> = found
        .results
        .iter()
        .map(|s| s.memory.content.clone())
        .collect();
    texts.sort();
    assert_eq!(
        texts,
        [
            "batch memory 0",
            "batch memory 1",
            "batch memory 2",
            "the first memory"
        ]
    );
}

/// 10,000 recalls of distinct empty namespaces leave nothing in the cache. The cache is
/// zerodb-local's (a Lambda has none: other instances write the same table), so this runs
/// on the embedded store it serves from.
#[tokio::test]
async fn recalls_of_empty_namespaces_leave_the_cache_empty() {
    let backend = Backend::Embedded;
    let n = 10_000;
    let app = TestApp::new(backend).await;
    let svc =
        service(&app, Arc::new(LexicalEmbedder::new(384))).with_namespace_cache_bytes(1 << 20);
    let caller = root(&app.account_id);
    let started = std::time::Instant::now();
    for i in 0..n {
        let ns = Namespace::parse(&format!("session:empty{i}")).unwrap();
        let found = svc.recall(&caller, &query(&ns, "anything")).await.unwrap();
        assert!(found.results.is_empty());
    }
    let stats = svc.cache_stats().unwrap();
    assert_eq!((stats.namespaces, stats.bytes), (0, 0), "{stats:?}");
    println!("{n} recalls of empty namespaces: {:?}", started.elapsed());
}

on_both_backends!(
    a_recall_embeds_at_most_its_bound_and_counts_the_rest,
    concurrent_recalls_embed_a_pending_memory_once,
    the_namespace_cache_stays_within_its_bytes,
    a_batch_upsert_into_a_cached_namespace_is_recalled_at_once,
    a_recall_reads_at_most_its_bytes,
);
