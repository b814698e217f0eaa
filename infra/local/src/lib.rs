//! zerodb-local: every endpoint group in one process on embedded storage, plus the
//! operator commands (`accounts create`) that also serve AWS deployments.

pub mod cli;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use inference_api::accounting::CreditPolicy;
use inference_api::{Inference, RecordWrites};
use zerodb_domain::auth::{AuthService, AuthSettings, NewAccount};
use zerodb_domain::clock::{Clock, SystemClock};
use zerodb_domain::rate::RateCounting;
use zerodb_domain::store::{Stores, Table};
use zerodb_embed::Embedder;
use zerodb_http::{AppState, Routes};
use zerodb_memory::MemoryService;
use zerodb_store_embedded::{EmbeddedStore, QueueConfig};

/// Name of the file holding the first account's root key.
pub const ROOT_KEY_FILE: &str = "root-key";
const JWT_SECRET_FILE: &str = "jwt-secret";

pub mod worker;

/// Every group's routes (later issues add theirs here).
fn group_routes() -> Routes {
    auth_api::routes()
        .merge(memory_api::routes())
        .merge(security_api::routes())
        .merge(inference_api::routes())
}

/// The OpenAPI document of every group.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    zerodb_http::openapi::document([
        auth_api::openapi(),
        memory_api::openapi(),
        security_api::openapi(),
        inference_api::openapi(),
    ])
}

/// The services handlers reach through request extensions.
#[derive(Clone)]
pub struct Services {
    pub memory: MemoryService,
    pub inference: Arc<Inference>,
}

impl Services {
    /// Memory on `embedder`; inference on the built-in aliases, keys from the
    /// environment, credits unlimited.
    pub fn new(state: &AppState, embedder: Arc<dyn Embedder>) -> Self {
        Self::with_inference(state, embedder, &InferenceConfig::default())
            .expect("the built-in catalog needs no file")
    }

    pub fn with_inference(
        state: &AppState,
        embedder: Arc<dyn Embedder>,
        config: &InferenceConfig,
    ) -> anyhow::Result<Self> {
        let catalog = inference_api::catalog(config.providers.as_deref())?;
        let inference = Inference::build(
            state,
            catalog,
            inference_api::env_key,
            config.credits,
            // One long-running process: no call waits for its record's synced write.
            RecordWrites::Background,
        )?;
        Ok(Services {
            memory: memory_api::service(state, embedder),
            inference: Arc::new(inference),
        })
    }
}

/// The inference gateway's settings.
#[derive(Debug, Clone)]
pub struct InferenceConfig {
    /// The providers TOML (`--providers`); the built-in aliases alone without one.
    pub providers: Option<PathBuf>,
    pub credits: CreditPolicy,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        InferenceConfig {
            providers: None,
            credits: CreditPolicy::Unlimited,
        }
    }
}

/// Every router zerodb-local serves, bound to its state and services.
pub fn router(state: AppState, services: Services) -> axum::Router {
    all_routes()
        .into_router(state)
        .layer(axum::Extension(services.memory))
        .layer(axum::Extension(services.inference))
}

/// The embedder zerodb-local uses: from the `ZERODB_EMBEDDER*` variables; with none set,
/// MiniLM from `ZERODB_MINILM_DIR` or the cache `./infra/fetch-model.sh` fills; with no
/// model anywhere, the lexical fallback (and a warning that recall then matches words,
/// not meaning).
pub fn local_embedder() -> anyhow::Result<Arc<dyn Embedder>> {
    let default_dir = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|c| c.join("zerodb/models/all-MiniLM-L6-v2"))
        .filter(|d| d.join("model.safetensors").is_file())
        .map(|d| d.display().to_string());
    let config = zerodb_embed::EmbedderConfig::from_lookup(|name| {
        std::env::var(name).ok().or_else(|| {
            (name == "ZERODB_MINILM_DIR")
                .then(|| default_dir.clone())
                .flatten()
        })
    })?;
    if matches!(config, zerodb_embed::EmbedderConfig::Lexical { .. })
        && std::env::var("ZERODB_EMBEDDER").is_err()
    {
        tracing::warn!(
            "no embedding model found: recall falls back to word matching, not meaning. Run ./infra/fetch-model.sh (or set ZERODB_MINILM_DIR, or ZERODB_EMBEDDER=http)"
        );
    }
    Ok(config.build()?)
}

/// Everything zerodb-local serves.
pub fn all_routes() -> Routes {
    let json = openapi_document().to_pretty_json().unwrap_or_default();
    group_routes()
        .merge(zerodb_http::health::routes())
        .merge(zerodb_http::openapi::routes(json))
}

/// Settings of a local server.
#[derive(Clone)]
pub struct LocalConfig {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub rate_limit_per_minute: u32,
    pub embedder: Arc<dyn Embedder>,
    pub inference: InferenceConfig,
}

/// Embedded storage opened on a data directory.
pub struct LocalStack {
    pub store: Arc<EmbeddedStore>,
    pub stores: Stores,
}

pub fn open_stack(data_dir: &Path) -> anyhow::Result<LocalStack> {
    let store = EmbeddedStore::open(data_dir)
        .with_context(|| format!("opening the data directory {}", data_dir.display()))?;
    let stores = Stores {
        table: store.table(),
        blobs: store.blobs(),
        events: store.queue(
            "events",
            QueueConfig {
                max_receives: Some(5),
                dead_letter: Some("events-dlq".into()),
            },
        ),
    };
    Ok(LocalStack { store, stores })
}

/// Writes a secret file readable only by its owner, atomically (temp file + rename), so
/// a crash never leaves half a key behind.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The token-signing secret: `ZERODB_JWT_SECRET` if set, else one generated on first
/// start and kept (0600) in the data directory so tokens survive restarts.
pub fn jwt_secret(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(s) = std::env::var("ZERODB_JWT_SECRET") {
        let mut problems = Vec::new();
        zerodb_http::config::check_jwt_secret(s.as_bytes(), &mut problems);
        anyhow::ensure!(problems.is_empty(), "{}", problems.join("; "));
        return Ok(s.into_bytes());
    }
    let path = data_dir.join(JWT_SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => Ok(s.trim().as_bytes().to_vec()),
        _ => {
            let secret = zerodb_domain::ids::random_base62(64);
            write_private(&path, &secret)?;
            Ok(secret.into_bytes())
        }
    }
}

/// Creates an account on any table and returns its root key (printed once by the CLI).
pub async fn create_account(table: Arc<dyn Table>, name: &str) -> anyhow::Result<NewAccount> {
    // Account creation never signs tokens, so the signing secret is irrelevant here.
    let settings = AuthSettings {
        jwt_secret: vec![0; 32],
        rate_limit_per_minute: 0,
        rate_counting: RateCounting::Shared,
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let auth = AuthService::new(table, clock, &settings);
    auth.create_account(name)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    /// Set on the first start only: the root key that was also written to `root-key`.
    pub new_root_key: Option<String>,
    /// Name of the embedder recall uses.
    pub embedder: String,
    /// Providers of the inference gateway, each with whether its key was found.
    pub providers: Vec<(String, bool)>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops accepting, finishes in-flight requests, and returns.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.task.await.context("server task")?
    }
}

/// Opens storage, bootstraps the first account if needed, binds and serves until
/// `stop` (or, from the CLI, a signal).
pub async fn start(config: LocalConfig) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let stack = open_stack(&config.data_dir)?;
    let settings = AuthSettings {
        jwt_secret: jwt_secret(&config.data_dir)?,
        rate_limit_per_minute: config.rate_limit_per_minute,
        // One process serves every request: an in-memory count is exact and spares
        // a durable write per request.
        rate_counting: RateCounting::InProcess,
    };

    let root_key_path = config.data_dir.join(ROOT_KEY_FILE);
    let new_root_key = if root_key_path.exists() {
        None
    } else {
        let account = create_account(stack.stores.table.clone(), "local").await?;
        write_private(&root_key_path, &format!("{}\n", account.root_key.expose()))?;
        Some(account.root_key.expose().to_owned())
    };

    let state = AppState::new(stack.stores.clone(), Arc::new(SystemClock), &settings);
    let mut services =
        Services::with_inference(&state, config.embedder.clone(), &config.inference)?;
    // This process is the only writer of its data directory, so whole namespaces can be
    // cached for recall, and events can be sent without making the write wait.
    services.memory = services
        .memory
        .with_namespace_cache()
        .with_detached_events();
    let providers = services
        .inference
        .gateway
        .catalog()
        .providers()
        .map(|p| (p.name.clone(), services.inference.gateway.has_key(&p.name)))
        .collect();
    let app = router(state, services.clone());
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding {}", config.addr))?;
    let addr = listener.local_addr()?;
    // SSE events are small writes: with Nagle on, each waits for the previous one's ACK,
    // which a client's delayed-ACK timer holds for up to 40 ms.
    let listener = {
        use axum::serve::ListenerExt;
        listener.tap_io(|tcp| {
            // Best effort: a socket that refuses is only slower.
            tcp.set_nodelay(true).ok();
        })
    };

    // Expired items are hidden on read; this reclaims their space, as DynamoDB's TTL does.
    let store = stack.store.clone();
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = store.sweep_expired().await {
                tracing::warn!(error = %e, "expired-item sweep failed");
            }
        }
    });

    // The events worker: what an SQS-triggered Lambda does in AWS, as a task here.
    let events_worker = tokio::spawn(worker::run(
        stack.stores.events.clone(),
        services.memory.clone(),
    ));

    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
        sweeper.abort();
        events_worker.abort();
        served.context("serving")
    });
    Ok(Running {
        addr,
        new_root_key,
        embedder: config.embedder.name().to_owned(),
        providers,
        shutdown: tx,
        task,
    })
}
