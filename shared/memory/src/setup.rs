//! How a process gets its memory service: one per process, from the context's settings,
//! shared by the memory API and the embedding worker (so zerodb-local's namespace cache
//! sees the vectors the worker writes).

use std::sync::Arc;

use zerodb_domain::{Context, Deployment};
use zerodb_embed::{Embedder, EmbedderConfig};

use crate::{MemoryService, RecallLimits};

/// A whole-number setting, or its default when unset; a value that is not one stops the
/// process at start with the setting's name.
fn count(settings: &zerodb_domain::Settings, name: &str, default: usize) -> anyhow::Result<usize> {
    settings
        .whole_number(name, default, 0)
        .map_err(anyhow::Error::msg)
}

/// The embedder of the process, from `ZERODB_EMBEDDER` and its variables (see the
/// memory API's README); with none set, MiniLM from `ZERODB_MINILM_DIR` if it holds the
/// model, else the lexical fallback, said loudly.
pub async fn embedder(ctx: &Context) -> anyhow::Result<Arc<dyn Embedder>> {
    ctx.service(|ctx| async move {
        let settings = ctx.settings();
        let config = EmbedderConfig::from_lookup(settings.lookup())?;
        if matches!(config, EmbedderConfig::Lexical { .. }) && settings.get("ZERODB_EMBEDDER").is_none()
        {
            tracing::warn!(
                "no embedding model found: recall falls back to word matching, not meaning. Run ./infra/fetch-model.sh (or set ZERODB_MINILM_DIR, or ZERODB_EMBEDDER=http)"
            );
        }
        // Loading MiniLM reads ~90 MB: off the async workers.
        Ok(tokio::task::spawn_blocking(move || config.build()).await??)
    })
    .await
}

/// The memory service of the process. Locally (one process, the only writer of its
/// data) it caches whole namespaces for recall and sends events without making the
/// write wait; on Lambda it does neither.
pub async fn shared(ctx: &Context) -> anyhow::Result<MemoryService> {
    ctx.service(|ctx| async move {
        let settings = ctx.settings();
        let defaults = RecallLimits::default();
        let limits = RecallLimits {
            max_scan: count(settings, "ZERODB_RECALL_MAX_SCAN", defaults.max_scan)?,
            max_scan_bytes: count(
                settings,
                "ZERODB_RECALL_MAX_SCAN_BYTES",
                defaults.max_scan_bytes,
            )?,
            inline_embed: count(
                settings,
                "ZERODB_RECALL_INLINE_EMBED",
                defaults.inline_embed,
            )?,
        };
        let cache_bytes = count(
            settings,
            "ZERODB_MEMORY_CACHE_BYTES",
            crate::cache::DEFAULT_BUDGET_BYTES,
        )?;
        let svc = MemoryService::new(
            ctx.stores().table.clone(),
            ctx.events().clone(),
            embedder(&ctx).await?,
            ctx.clock().clone(),
        )
        .with_recall_limits(limits);
        Ok(match ctx.deployment() {
            Deployment::Local => svc
                .with_namespace_cache_bytes(cache_bytes)
                .with_detached_events(),
            Deployment::Lambda => svc,
        })
    })
    .await
}
