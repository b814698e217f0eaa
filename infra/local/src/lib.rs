//! zerodb-local: every endpoint group in one process on embedded storage, its workers as
//! tasks, plus the operator commands (`accounts create`, `credits add`, `routes`) that
//! also serve AWS deployments.
//!
//! [`groups`] and [`workers`] are the one list of what this deployment serves: the
//! OpenAPI document, the route index, the contract tests and this server iterate them.

pub mod cli;
pub mod serve;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use zerodb_domain::auth::{AuthService, AuthSettings, NewAccount};
use zerodb_domain::clock::{Clock, SystemClock};
use zerodb_domain::context::{NoSecrets, Parts};
use zerodb_domain::rate::RateCounting;
use zerodb_domain::store::{Stores, Table};
use zerodb_domain::work::Worker;
use zerodb_domain::{Context, Deployment, Settings};
use zerodb_http::{Group, RouteInfo};
use zerodb_store_embedded::EmbeddedStore;

/// Name of the file holding the first account's root key.
pub const ROOT_KEY_FILE: &str = "root-key";
const JWT_SECRET_FILE: &str = "jwt-secret";

/// Every endpoint group. A new group is one line here (plus its crate, its Cargo.toml
/// entries and its function in template.yaml).
pub fn groups() -> Vec<Group> {
    vec![
        auth_api::group(),
        memory_api::group(),
        security_api::group(),
        inference_api::group(),
        projects_api::group(),
        database_api::group(),
        files_api::group(),
        mcp_api::group(),
        vectors_api::group(),
    ]
}

/// Every queue consumer, run here as tasks.
pub fn workers() -> Vec<Worker> {
    vec![events_worker::worker()]
}

/// The OpenAPI document of every group, health and the document itself.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    // The meta group's operations do not depend on the document it serves.
    let mut all = groups();
    all.push(auth_api::meta(""));
    zerodb_http::openapi::document(all.iter().map(Group::openapi))
}

/// Every group zerodb-local serves: the groups, and health with the generated document.
pub fn served_groups() -> Vec<Group> {
    let json = openapi_document().to_pretty_json().unwrap_or_default();
    let mut all = groups();
    all.push(auth_api::meta(json));
    all
}

/// Every route with its handler, in path order: the one-hop map from an endpoint to its
/// code (`zerodb-local routes`).
pub fn route_index() -> Vec<(&'static str, RouteInfo)> {
    let mut out: Vec<(&'static str, RouteInfo)> = served_groups()
        .iter()
        .flat_map(|g| g.routes().iter().map(move |r| (g.name(), r.clone())))
        .collect();
    out.sort_by(|a, b| (&a.1.path, &a.1.method).cmp(&(&b.1.path, &b.1.method)));
    out
}

/// One router serving every group over `ctx`.
pub async fn router(ctx: &Context) -> anyhow::Result<axum::Router> {
    zerodb_http::serve(&served_groups(), ctx).await
}

/// The settings of a local process: the environment, with the model
/// `./infra/fetch-model.sh` caches as the default `ZERODB_MINILM_DIR` when one is there.
/// (instant-db's default depends on the address served: [`instant_db_default`].)
pub fn local_settings() -> Settings {
    let settings = Settings::from_env();
    if settings.get("ZERODB_MINILM_DIR").is_some() {
        return settings;
    }
    let cached = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|c| c.join("zerodb/models/all-MiniLM-L6-v2"))
        .filter(|d| d.join("model.safetensors").is_file());
    match cached {
        Some(dir) => settings.with("ZERODB_MINILM_DIR", dir.display().to_string()),
        None => settings,
    }
}

/// `settings` with instant-db's default for a server listening on `addr`: on when only
/// this machine can reach it (a loopback address), so local clients provision
/// themselves; off on any other address (`0.0.0.0`, a LAN address), where it would let
/// anyone who reaches the port create accounts. An explicit `ZERODB_INSTANT_DB` wins.
pub fn instant_db_default(settings: Settings, addr: SocketAddr) -> Settings {
    if settings.get("ZERODB_INSTANT_DB").is_some() {
        return settings;
    }
    let loopback = addr.ip().to_canonical().is_loopback();
    settings.with("ZERODB_INSTANT_DB", if loopback { "on" } else { "off" })
}

/// Settings of a local server.
#[derive(Clone)]
pub struct LocalConfig {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub rate_limit_per_minute: u32,
    /// Everything else the groups read (embedder, providers, credits, ...).
    pub settings: Settings,
}

/// Embedded storage opened on a data directory.
pub struct LocalStack {
    pub store: Arc<EmbeddedStore>,
    pub stores: Stores,
}

pub fn open_stack(data_dir: &Path) -> anyhow::Result<LocalStack> {
    let store = EmbeddedStore::open(data_dir)
        .with_context(|| format!("opening the data directory {}", data_dir.display()))?;
    let stores = store.stores();
    Ok(LocalStack { store, stores })
}

/// The context of a local process on `stores`.
pub fn local_context(stores: Stores, auth: AuthSettings, settings: Settings) -> Context {
    Context::new(Parts {
        stores,
        clock: Arc::new(SystemClock),
        auth,
        settings,
        deployment: Deployment::Local,
        secrets: Arc::new(NoSecrets),
    })
}

/// Runs every worker as a task on its queue, as SQS drives its Lambda on AWS.
pub async fn spawn_workers(ctx: &Context) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    for w in workers() {
        let handler = w.handler(ctx).await?;
        let queue = ctx.stores().queue(w.queue()).clone();
        let visibility = w.queue().spec().visibility_timeout_secs;
        tasks.push(tokio::spawn(zerodb_domain::work::run_local(
            queue, handler, visibility,
        )));
    }
    Ok(tasks)
}

/// Writes a secret file readable only by its owner, atomically (temp file + rename), so
/// a crash never leaves half a key behind. The temp file is created with `create_new`
/// (O_EXCL): a file or symlink planted at its name is never followed or written through.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    // Left by a crash between create and rename (or planted): removed, never opened.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", tmp.display())),
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
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
        if let Some(problem) = zerodb_domain::auth::jwt_secret_problem(s.as_bytes()) {
            anyhow::bail!(problem);
        }
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
        limits: Default::default(),
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
    /// Whether `POST /api/v1/public/instant-db` creates accounts ([`instant_db_default`]).
    pub instant_db: bool,
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
    zerodb_store_embedded::create_private_dir(&config.data_dir)?;
    let stack = open_stack(&config.data_dir)?;
    let settings = AuthSettings {
        jwt_secret: jwt_secret(&config.data_dir)?,
        rate_limit_per_minute: config.rate_limit_per_minute,
        // One process serves every request: an in-memory count is exact and spares
        // a durable write per request.
        rate_counting: RateCounting::InProcess,
        limits: {
            let mut problems = Vec::new();
            let limits =
                zerodb_domain::auth::AuthLimits::from_settings(&config.settings, &mut problems);
            if !problems.is_empty() {
                anyhow::bail!(problems.join("; "));
            }
            limits
        },
    };

    let root_key_path = config.data_dir.join(ROOT_KEY_FILE);
    let new_root_key = if root_key_path.exists() {
        None
    } else {
        let account = create_account(stack.stores.table.clone(), "local").await?;
        write_private(&root_key_path, &format!("{}\n", account.root_key.expose()))?;
        Some(account.root_key.expose().to_owned())
    };

    let conn_limits = serve::ConnLimits::from_settings(&config.settings)?;
    let process_settings = instant_db_default(config.settings.clone(), config.addr);
    let instant_db = zerodb_projects::ProjectLimits::from_settings(&process_settings)
        .map_err(anyhow::Error::msg)?
        .instant_db;
    let ctx = local_context(stack.stores.clone(), settings, process_settings);
    let app = router(&ctx).await?;
    let embedder = zerodb_memory::embedder(&ctx).await?.name().to_owned();
    let inference = zerodb_inference::shared(&ctx).await?;
    let providers = inference
        .gateway
        .catalog()
        .providers()
        .map(|p| (p.name.clone(), inference.gateway.has_key(&p.name)))
        .collect();
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding {}", config.addr))?;
    let addr = listener.local_addr()?;

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

    // The workers: what SQS-triggered Lambdas do on AWS, as tasks here.
    let workers = spawn_workers(&ctx).await?;

    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = serve::serve(listener, app, conn_limits, async move {
            let _ = rx.await;
        })
        .await;
        sweeper.abort();
        for w in workers {
            w.abort();
        }
        served.context("serving")
    });
    Ok(Running {
        addr,
        new_root_key,
        embedder,
        providers,
        instant_db,
        shutdown: tx,
        task,
    })
}
