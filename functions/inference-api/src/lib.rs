//! The inference endpoint group (seed 000 step 4): Anthropic Messages and OpenAI Chat
//! Completions in front of configured providers, with credits and usage records.
//!
//! Handlers get the `Inference` service as a request extension, added once by whoever
//! builds the router (this function's `main`, or zerodb-local).

pub mod accounting;
pub mod api;
pub mod error;
pub mod gateway;
pub mod provider;
pub mod secrets;
pub mod sse;

use std::sync::Arc;

use utoipa::OpenApi;
use zerodb_http::{AppState, Routes};
use zerodb_inference::catalog::{KeySource, Provider};
use zerodb_inference::stream::Tokens;
use zerodb_inference::{Catalog, ProvidersFile};

use crate::accounting::{Accounting, CreditPolicy, UsageRecord};
use crate::gateway::Gateway;
use crate::provider::{ProviderClient, Providers};

/// When a call's usage record (and its cost) is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordWrites {
    /// Before the response ends (a stream's: before its last event). For Lambda, which
    /// may be frozen as soon as it has answered, so nothing may be left running.
    Inline,
    /// On a task of its own, so no call waits for a synced write (zerodb-local, a
    /// long-running process); `GET /api/v1/usage` first waits for the writes in flight,
    /// so a client still reads its own calls.
    Background,
}

/// The gateway and the accounting around it.
pub struct Inference {
    pub gateway: Gateway,
    pub accounting: Accounting,
    writes: RecordWrites,
    /// Held shared by every background write in flight; taken exclusively to wait for
    /// them all.
    in_flight: Arc<tokio::sync::RwLock<()>>,
}

impl Inference {
    pub fn new(gateway: Gateway, accounting: Accounting, writes: RecordWrites) -> Self {
        Inference {
            gateway,
            accounting,
            writes,
            in_flight: Arc::default(),
        }
    }

    /// Returns once every usage record of a call that has answered is written.
    pub async fn settled(&self) {
        if self.writes == RecordWrites::Background {
            drop(self.in_flight.write().await);
        }
    }

    /// The service over `state`'s table, with `catalog`'s providers keyed by `key_of`.
    pub fn build(
        state: &AppState,
        catalog: Catalog,
        key_of: impl Fn(&Provider) -> Option<String>,
        credits: CreditPolicy,
        writes: RecordWrites,
    ) -> anyhow::Result<Self> {
        let providers = providers(&catalog, key_of)?;
        let accounting = Accounting::new(state.stores.table.clone(), state.clock.clone(), credits);
        Ok(Inference::new(
            Gateway::new(catalog, providers),
            accounting,
            writes,
        ))
    }

    /// Prices the call and writes its record, deducting the cost. A failed write is
    /// logged, not returned: the client has its answer already.
    async fn write_record(&self, account: String, mut record: UsageRecord, tokens: Tokens) {
        let cost = self
            .gateway
            .catalog()
            .resolve(&record.alias)
            .map(|r| r.alias.price.cost_micro(tokens.input, tokens.output))
            .unwrap_or(0);
        record.input_tokens = tokens.input;
        record.output_tokens = tokens.output;
        // Taken before the response goes on, so a later usage read waits for the write
        // and a later call's credit check counts the cost.
        let held = match self.writes {
            RecordWrites::Inline => None,
            RecordWrites::Background => Some((
                self.in_flight.clone().read_owned().await,
                self.accounting.reserve(&account, cost),
            )),
        };
        let accounting = self.accounting.clone();
        let write = async move {
            if let Err(e) = accounting.record(&account, record, cost).await {
                tracing::error!(account = %account, error = %e, cost_micro = cost, "usage record not written");
            }
        };
        match held {
            None => write.await,
            Some(in_flight_and_reserved) => {
                tokio::spawn(async move {
                    write.await;
                    drop(in_flight_and_reserved);
                });
            }
        }
    }
}

/// One client per provider of the catalog, with the key `key_of` finds for it.
pub fn providers(
    catalog: &Catalog,
    key_of: impl Fn(&Provider) -> Option<String>,
) -> anyhow::Result<Providers> {
    let clients = catalog
        .providers()
        .map(|p| {
            ProviderClient::new(p.clone(), key_of(p)).map_err(|e| {
                anyhow::anyhow!("building the HTTP client of provider `{}`: {e}", p.name)
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Providers::new(clients))
}

/// The catalog: the built-in aliases, plus the providers file when one is named.
pub fn catalog(providers_file: Option<&std::path::Path>) -> anyhow::Result<Catalog> {
    match providers_file {
        None => Ok(Catalog::builtin()),
        Some(path) => {
            let file = ProvidersFile::read(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            Catalog::with_file(file).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
    }
}

/// The catalog from a providers file's text (the Lambda's `ZERODB_PROVIDERS_TOML`).
pub fn catalog_from_text(text: &str, origin: &str) -> anyhow::Result<Catalog> {
    let file = ProvidersFile::parse(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    Catalog::with_file(file).map_err(|e| anyhow::anyhow!("{origin}: {e}"))
}

/// A key from the environment; secrets are left to the caller that can reach AWS.
pub fn env_key(provider: &Provider) -> Option<String> {
    match &provider.key {
        KeySource::Env(name) => std::env::var(name).ok().filter(|k| !k.is_empty()),
        KeySource::None | KeySource::Secret(_) => None,
    }
}

/// This group's routes.
pub fn routes() -> Routes {
    Routes::new()
        .post("/v1/messages", api::messages)
        .post("/api/v1/chat/completions", api::chat_completions)
        .post("/v1/chat/completions", api::chat_completions_v1)
        .get("/v1/models", api::models)
        .get("/api/v1/models", api::models_api)
        .get("/api/v1/usage", api::usage)
        .map_router(|r| {
            r.route_layer(axum::middleware::from_fn(
                zerodb_http::vendor::error_objects,
            ))
        })
}

#[derive(OpenApi)]
#[openapi(
    paths(
        api::messages,
        api::chat_completions,
        api::chat_completions_v1,
        api::models,
        api::models_api,
        api::usage
    ),
    components(schemas(
        api::ModelList,
        api::ModelView,
        api::UsageResponse,
        accounting::UsageRecord,
        accounting::Credits
    ))
)]
struct InferenceDoc;

/// This group's part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    InferenceDoc::openapi()
}

/// What the Lambda function serves (health and unknown routes are auth-api's).
pub fn lambda_routes() -> Routes {
    routes()
}

/// The Lambda function's router.
pub fn router(state: AppState, inference: Arc<Inference>) -> axum::Router {
    lambda_routes()
        .into_router(state)
        .layer(axum::Extension(inference))
}
