//! Builds apps and stores on either backend. The AWS backend needs moto's server, which
//! the README's test command starts and names in `AWS_ENDPOINT_URL`; without it the AWS
//! tests fail loudly rather than skip.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use zerodb_domain::auth::AuthSettings;
use zerodb_domain::clock::ManualClock;
use zerodb_domain::context::{NoSecrets, Parts};
use zerodb_domain::queues::QueueName;
use zerodb_domain::store::{Blobs, Queue, Stores, Table};
use zerodb_domain::{Context, Deployment, Settings};
use zerodb_inference::accounting::CreditPolicy;
use zerodb_inference::{Inference, RecordWrites};
use zerodb_memory::MemoryService;
use zerodb_store_aws::{AwsBlobs, AwsClients, AwsQueue, AwsTable, provision};
use zerodb_store_embedded::{EmbeddedStore, OpenOptions, QueueConfig, SyncMode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Aws,
}

/// Keeps a test's storage alive (the temporary directory of an embedded store).
pub struct Guard {
    _dir: Option<tempfile::TempDir>,
}

/// The moto endpoint, or a panic that says how to run the suite.
pub fn moto_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL is not set: the AWS adapter tests run against moto's server; run the suite with ./infra/test.sh, which starts it")
    })
}

static AWS: tokio::sync::OnceCell<AwsClients> = tokio::sync::OnceCell::const_new();

pub async fn aws_clients() -> AwsClients {
    moto_endpoint();
    AWS.get_or_init(|| async {
        // moto accepts any credentials; set them only when the caller has not.
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ] {
            if std::env::var_os(k).is_none() {
                // SAFETY: set before any other thread reads these variables (inside the
                // one-time initialiser, before the SDK loads its configuration).
                unsafe { std::env::set_var(k, v) };
            }
        }
        AwsClients::from_env().await
    })
    .await
    .clone()
}

/// A unique, DNS-safe name for per-test AWS resources.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", zerodb_domain::ids::time_ordered_id())
}

pub async fn fresh_table(backend: Backend) -> (Arc<dyn Table>, Guard) {
    let (stores, guard) = fresh_stores(backend).await;
    (stores.table, guard)
}

pub async fn fresh_blobs(backend: Backend) -> (Arc<dyn Blobs>, Guard) {
    let (stores, guard) = fresh_stores(backend).await;
    (stores.blobs, guard)
}

/// A queue that dead-letters into the returned second queue after `max_receives`.
pub async fn fresh_queue_with_dlq(
    backend: Backend,
    max_receives: u32,
) -> (Arc<dyn Queue>, Arc<dyn Queue>, Guard) {
    match backend {
        Backend::Embedded => {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = EmbeddedStore::open_with(
                dir.path(),
                OpenOptions {
                    sync: SyncMode::Normal,
                    readers: 2,
                },
            )
            .expect("open store");
            let q = store.queue(
                "jobs",
                QueueConfig {
                    max_receives: Some(max_receives),
                    dead_letter: Some("jobs-dlq".into()),
                },
            );
            let dlq = store.queue(
                "jobs-dlq",
                QueueConfig {
                    max_receives: None,
                    dead_letter: None,
                },
            );
            (q, dlq, Guard { _dir: Some(dir) })
        }
        Backend::Aws => {
            let c = aws_clients().await;
            let dlq_url = provision::create_queue(&c.sqs, &unique_name("dlq"), None)
                .await
                .expect("create dlq");
            let url =
                provision::create_queue(&c.sqs, &unique_name("q"), Some((&dlq_url, max_receives)))
                    .await
                    .expect("create queue");
            (
                Arc::new(AwsQueue::new(c.sqs.clone(), url)),
                Arc::new(AwsQueue::new(c.sqs, dlq_url)),
                Guard { _dir: None },
            )
        }
    }
}

/// Fresh, empty storage on the chosen backend.
pub async fn fresh_stores(backend: Backend) -> (Stores, Guard) {
    match backend {
        Backend::Embedded => {
            let dir = tempfile::tempdir().expect("temp dir");
            // Tests do not need power-loss durability; the crash test uses the default.
            let store = EmbeddedStore::open_with(
                dir.path(),
                OpenOptions {
                    sync: SyncMode::Normal,
                    readers: 2,
                },
            )
            .expect("open store");
            // Every queue as its spec declares it, dead-letter queue included.
            (store.stores(), Guard { _dir: Some(dir) })
        }
        Backend::Aws => {
            let c = aws_clients().await;
            let table = unique_name("zt");
            provision::create_table(&c.dynamodb, &table)
                .await
                .expect("create table");
            let bucket = unique_name("zb");
            provision::create_bucket(&c.s3, &bucket)
                .await
                .expect("create bucket");
            let urls = provision::create_queues(&c.sqs, &unique_name("zq"))
                .await
                .expect("create queues");
            let stores = Stores {
                table: Arc::new(AwsTable::new(c.dynamodb.clone(), table)),
                blobs: Arc::new(AwsBlobs::new(c.s3.clone(), bucket)),
                queues: zerodb_domain::store::Queues::new(|spec| {
                    Arc::new(AwsQueue::new(c.sqs.clone(), urls[&spec.name].clone()))
                }),
                // On the S3 Vectors fake: moto has no QueryVectors.
                vectors: fake_vectors().await,
            };
            (stores, Guard { _dir: None })
        }
    }
}

/// Where a vectors conformance run stores its indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorsBackend {
    /// The embedded adapter, in a temporary data directory.
    Embedded,
    /// The AWS adapter on moto's server (which has no QueryVectors).
    Moto,
    /// The AWS adapter on the S3 Vectors fake of this crate (every operation).
    Fake,
}

/// A vectors port on fresh storage of the chosen backend.
pub async fn fresh_vectors(
    backend: VectorsBackend,
) -> (Arc<dyn zerodb_domain::vectors::Vectors>, Guard) {
    match backend {
        VectorsBackend::Embedded => {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = EmbeddedStore::open_with(
                dir.path(),
                OpenOptions {
                    sync: SyncMode::Normal,
                    readers: 2,
                },
            )
            .expect("open store");
            (store.vectors(), Guard { _dir: Some(dir) })
        }
        VectorsBackend::Moto => {
            let client = s3vectors_client(&moto_endpoint()).await;
            let bucket = unique_name("zv");
            provision::create_vector_bucket(&client, &bucket)
                .await
                .expect("create vector bucket on moto");
            (
                Arc::new(zerodb_store_aws::AwsVectors::new(client, bucket)),
                Guard { _dir: None },
            )
        }
        VectorsBackend::Fake => (fake_vectors().await, Guard { _dir: None }),
    }
}

/// The AWS vectors adapter on a fresh vector bucket of this process's S3 Vectors fake.
async fn fake_vectors() -> Arc<dyn zerodb_domain::vectors::Vectors> {
    let client = s3vectors_client(&crate::fake_s3vectors::spawn().await).await;
    let bucket = unique_name("zv");
    provision::create_vector_bucket(&client, &bucket)
        .await
        .expect("create vector bucket on the fake");
    Arc::new(zerodb_store_aws::AwsVectors::new(client, bucket))
}

/// An S3 Vectors client on `endpoint` (moto's or the fake's), with test credentials and
/// region, whatever the environment holds.
pub async fn s3vectors_client(endpoint: &str) -> aws_sdk_s3vectors::Client {
    use aws_sdk_s3vectors::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_s3vectors::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "zerodb-tests"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_s3vectors::Client::from_conf(config)
}

/// A response, decoded.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body
            .get("error_code")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// A full app (every group zerodb-local serves) on fresh storage, with a clock the
/// test moves and one account whose root key it holds.
pub struct TestApp {
    pub router: Router,
    pub ctx: Context,
    /// The memory service the groups use (set with [`TestApp::set_memory`]).
    pub memory: MemoryService,
    /// The inference service the groups use (set with [`TestApp::set_inference`]).
    pub inference: Arc<Inference>,
    pub clock: Arc<ManualClock>,
    pub stores: Stores,
    pub root_key: String,
    pub account_id: String,
    /// The table's call counter, when built with [`TestApp::counting`].
    pub counter: Option<Arc<CountingTable>>,
    _guard: Guard,
}

/// A context with Lambda's semantics (no namespace cache, nothing after a response), no
/// settings and no secret store, over `stores`.
pub fn context_of(
    stores: Stores,
    clock: Arc<dyn zerodb_domain::clock::Clock>,
    auth: AuthSettings,
) -> Context {
    context_with_settings(stores, clock, auth, Settings::default())
}

/// [`context_of`] with these settings.
pub fn context_with_settings(
    stores: Stores,
    clock: Arc<dyn zerodb_domain::clock::Clock>,
    auth: AuthSettings,
    settings: Settings,
) -> Context {
    Context::new(Parts {
        stores,
        clock,
        auth,
        settings,
        deployment: Deployment::Lambda,
        secrets: Arc::new(NoSecrets),
    })
}

/// The context of a test app: rate counts in the table, so the shared (Lambda)
/// behaviour runs on both backends.
pub fn test_context(stores: Stores, clock: Arc<ManualClock>, per_minute: u32) -> Context {
    test_context_with(stores, clock, per_minute, Default::default())
}

/// [`test_context`] with these account limits (budget, key cap).
pub fn test_context_with(
    stores: Stores,
    clock: Arc<ManualClock>,
    per_minute: u32,
    limits: zerodb_domain::auth::AuthLimits,
) -> Context {
    test_context_settings(stores, clock, per_minute, limits, Settings::default())
}

fn test_context_settings(
    stores: Stores,
    clock: Arc<ManualClock>,
    per_minute: u32,
    limits: zerodb_domain::auth::AuthLimits,
    settings: Settings,
) -> Context {
    context_with_settings(
        stores,
        clock,
        AuthSettings {
            jwt_secret: b"test-secret-test-secret-test-secret!".to_vec(),
            rate_limit_per_minute: per_minute,
            rate_counting: zerodb_domain::rate::RateCounting::Shared,
            limits,
        },
        settings,
    )
}

/// The memory service tests use: recall's vector write-back runs before it answers, so
/// tests see it happen and moto (which breaks under concurrent transactions) never races
/// it.
pub fn test_memory(ctx: &Context, embedder: Arc<dyn zerodb_embed::Embedder>) -> MemoryService {
    MemoryService::new(
        ctx.stores().table.clone(),
        ctx.events().clone(),
        embedder,
        ctx.clock().clone(),
    )
    .with_inline_writeback()
}

/// The inference service tests use by default: the built-in aliases with keys from the
/// environment, unlimited credits, records written in the background (so usage reads wait
/// for them, as in zerodb-local).
pub async fn test_inference(ctx: &Context) -> Arc<Inference> {
    let catalog = zerodb_inference::Catalog::builtin();
    let keys =
        zerodb_inference::keys::provider_keys(&catalog, &Settings::from_env(), &NoSecrets, None)
            .await;
    Arc::new(
        Inference::build(
            ctx,
            catalog,
            |p| keys.get(&p.name).cloned(),
            CreditPolicy::Unlimited,
            RecordWrites::Background,
        )
        .expect("the built-in catalog needs no file"),
    )
}

impl TestApp {
    pub async fn new(backend: Backend) -> Self {
        Self::with_rate_limit(backend, 0).await
    }

    pub async fn with_rate_limit(backend: Backend, per_minute: u32) -> Self {
        Self::with_limits(backend, per_minute, Default::default()).await
    }

    /// An app with this per-key budget and these account limits.
    pub async fn with_limits(
        backend: Backend,
        per_minute: u32,
        limits: zerodb_domain::auth::AuthLimits,
    ) -> Self {
        Self::build(
            backend,
            per_minute,
            limits,
            Arc::new(zerodb_embed::LexicalEmbedder::new(384)),
            Settings::default(),
            false,
        )
        .await
    }

    /// An app whose process settings are these (limits of the groups, instant-db).
    pub async fn with_settings(backend: Backend, pairs: &[(&str, &str)]) -> Self {
        Self::build(
            backend,
            0,
            Default::default(),
            Arc::new(zerodb_embed::LexicalEmbedder::new(384)),
            Settings::from_pairs(pairs.iter().copied()),
            false,
        )
        .await
    }

    /// An app whose table counts the calls every request makes ([`TestApp::counter`]).
    pub async fn counting(backend: Backend) -> Self {
        Self::build(
            backend,
            0,
            Default::default(),
            Arc::new(zerodb_embed::LexicalEmbedder::new(384)),
            Settings::default(),
            true,
        )
        .await
    }

    /// An app whose memory service uses this embedder.
    pub async fn with_embedder(
        backend: Backend,
        embedder: Arc<dyn zerodb_embed::Embedder>,
    ) -> Self {
        Self::build(
            backend,
            0,
            Default::default(),
            embedder,
            Settings::default(),
            false,
        )
        .await
    }

    async fn build(
        backend: Backend,
        per_minute: u32,
        limits: zerodb_domain::auth::AuthLimits,
        embedder: Arc<dyn zerodb_embed::Embedder>,
        settings: Settings,
        count: bool,
    ) -> Self {
        let (mut stores, guard) = fresh_stores(backend).await;
        let counter = count.then(|| CountingTable::new(stores.table.clone()));
        if let Some(c) = &counter {
            stores.table = c.clone();
        }
        let clock = Arc::new(ManualClock::starting_now());
        let ctx =
            test_context_settings(stores.clone(), clock.clone(), per_minute, limits, settings);
        let memory = test_memory(&ctx, embedder);
        ctx.provide(memory.clone());
        let inference = test_inference(&ctx).await;
        ctx.provide(inference.clone());
        let router = zerodb_local::router(&ctx).await.expect("router");
        let account = zerodb_local::create_account(stores.table.clone(), "test")
            .await
            .expect("create account");
        TestApp {
            router,
            ctx,
            memory,
            inference,
            clock,
            stores,
            root_key: account.root_key.expose().to_owned(),
            account_id: account.account_id,
            counter,
            _guard: guard,
        }
    }

    /// Serves with this memory service from now on.
    pub async fn set_memory(&mut self, memory: MemoryService) {
        self.ctx.provide(memory.clone());
        self.memory = memory;
        self.router = zerodb_local::router(&self.ctx).await.expect("router");
    }

    /// Serves with this inference service from now on.
    pub async fn set_inference(&mut self, inference: Inference) {
        let inference = Arc::new(inference);
        self.ctx.provide(inference.clone());
        self.inference = inference;
        self.router = zerodb_local::router(&self.ctx).await.expect("router");
    }

    /// Receives and acknowledges every message on the events queue; returns their bodies.
    pub async fn drain_events(&self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let events = self.stores.queue(QueueName::Events);
            let msgs = events.receive(10, 30).await.expect("receive");
            if msgs.is_empty() {
                return out;
            }
            for m in msgs {
                events.delete(&m.receipt).await.expect("delete");
                out.push(m.body);
            }
        }
    }

    /// Another account on the same storage; returns its root key.
    pub async fn new_account(&self, name: &str) -> String {
        let account = zerodb_local::create_account(self.stores.table.clone(), name)
            .await
            .expect("create account");
        account.root_key.expose().to_owned()
    }

    /// Sends one request; `auth` is sent as `X-API-Key` unless it starts with "Bearer ".
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(a) = auth {
            req = match a.strip_prefix("Bearer ") {
                Some(_) => req.header("authorization", a),
                None => req.header("x-api-key", a),
            };
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        self.send(req).await
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("router is infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let raw = resp
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            raw,
        }
    }

    pub async fn get(&self, path: &str, auth: &str) -> Reply {
        self.call(Method::GET, path, Some(auth), None).await
    }
    pub async fn post(&self, path: &str, auth: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(auth), Some(body)).await
    }
    pub async fn delete(&self, path: &str, auth: &str) -> Reply {
        self.call(Method::DELETE, path, Some(auth), None).await
    }
    pub async fn put(&self, path: &str, auth: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(auth), Some(body)).await
    }
    pub async fn patch(&self, path: &str, auth: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(auth), Some(body)).await
    }
    pub async fn delete_with(&self, path: &str, auth: &str, body: Value) -> Reply {
        self.call(Method::DELETE, path, Some(auth), Some(body))
            .await
    }

    /// Creates a project with the root key; returns its id.
    pub async fn project(&self, name: &str) -> String {
        let r = self
            .post(
                "/api/v1/projects",
                &self.root_key,
                serde_json::json!({"name": name}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "create project: {}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// Runs the events worker's handlers on every queued event until the queue is empty
    /// (the purge sends itself again while work remains); returns the events seen.
    pub async fn run_worker(&self) -> Vec<zerodb_domain::events::Event> {
        let handler = events_worker::worker()
            .handler(&self.ctx)
            .await
            .expect("events worker");
        let queue = self.stores.queue(QueueName::Events).clone();
        let mut seen = Vec::new();
        loop {
            let msgs = queue.receive(10, 30).await.expect("receive");
            if msgs.is_empty() {
                return seen;
            }
            let failed = handler.handle(&msgs).await;
            assert!(failed.is_empty(), "the worker failed on {failed:?}");
            for m in msgs {
                queue.delete(&m.receipt).await.expect("delete");
                if let Ok(e) = serde_json::from_str(&m.body) {
                    seen.push(e);
                }
            }
        }
    }

    /// Creates a key with the root key and returns (id, secret).
    pub async fn create_key(&self, scopes: &[&str], ttl: Option<i64>) -> (String, String) {
        let mut body = serde_json::json!({"name": "test key", "scopes": scopes});
        if let Some(t) = ttl {
            body["ttl_seconds"] = t.into();
        }
        let r = self
            .post(
                "/api/v1/auth/keys",
                &format!("Bearer {}", self.root_key),
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "create key: {:?}", r.body);
        (
            r.body["id"].as_str().unwrap().to_owned(),
            r.body["key"].as_str().unwrap().to_owned(),
        )
    }
}

/// Generates one `#[tokio::test]` per backend for each listed async test body
/// `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::support::Backend::Embedded).await }
            )*
        }
        mod aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::support::Backend::Aws).await }
            )*
        }
    };
}

/// A `Table` that counts the calls it forwards: storage calls per request are measured,
/// not guessed (each is one DynamoDB request on AWS).
pub struct CountingTable {
    inner: Arc<dyn Table>,
    pub calls: std::sync::atomic::AtomicU64,
    /// The writes among them (put, update, delete, transact), never reset.
    pub writes: std::sync::atomic::AtomicU64,
}

impl CountingTable {
    pub fn new(inner: Arc<dyn Table>) -> Arc<Self> {
        Arc::new(CountingTable {
            inner,
            calls: Default::default(),
            writes: Default::default(),
        })
    }
    pub fn take(&self) -> u64 {
        self.calls.swap(0, std::sync::atomic::Ordering::SeqCst)
    }
    fn tick(&self) {
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    fn wrote(&self) {
        self.tick();
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[async_trait::async_trait]
impl Table for CountingTable {
    async fn get(
        &self,
        key: &zerodb_domain::store::Key,
    ) -> Result<Option<zerodb_domain::store::Item>, zerodb_domain::store::StoreError> {
        self.tick();
        self.inner.get(key).await
    }
    async fn put(
        &self,
        item: zerodb_domain::store::Item,
        c: Option<zerodb_domain::store::Condition>,
    ) -> Result<(), zerodb_domain::store::StoreError> {
        self.wrote();
        self.inner.put(item, c).await
    }
    async fn update(
        &self,
        key: &zerodb_domain::store::Key,
        u: Vec<zerodb_domain::store::Update>,
        c: Option<zerodb_domain::store::Condition>,
    ) -> Result<zerodb_domain::store::Item, zerodb_domain::store::StoreError> {
        self.wrote();
        self.inner.update(key, u, c).await
    }
    async fn delete(
        &self,
        key: &zerodb_domain::store::Key,
        c: Option<zerodb_domain::store::Condition>,
    ) -> Result<Option<zerodb_domain::store::Item>, zerodb_domain::store::StoreError> {
        self.wrote();
        self.inner.delete(key, c).await
    }
    async fn query(
        &self,
        q: zerodb_domain::store::Query,
    ) -> Result<zerodb_domain::store::Page, zerodb_domain::store::StoreError> {
        self.tick();
        self.inner.query(q).await
    }
    async fn transact(
        &self,
        ops: Vec<zerodb_domain::store::TxOp>,
    ) -> Result<(), zerodb_domain::store::StoreError> {
        self.wrote();
        self.inner.transact(ops).await
    }
}
