//! Embedding operations on the memory embedder (the one recall compares against, so a
//! vector made here matches those the server makes): `generate_embeddings` and
//! `list_embedding_models`. The model is loaded on the first call that needs it.

use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Value, json};
use zerodb_domain::scope::{Permission, Service};
use zerodb_domain::{DomainError, Problems};
use zerodb_embed::Embedder;

use crate::McpApi;
use crate::rpc::{Call, param};

/// The model the client asks for unless told otherwise; served by this server's
/// embedder (its answer names the embedder actually used).
pub const CLIENT_DEFAULT_MODEL: &str = "BAAI/bge-small-en-v1.5";
/// Texts per call (the client's own limit).
pub const MAX_TEXTS: usize = 100;
/// Longest text, in characters (as `POST /api/v1/embeddings`); the model reads its first
/// 256 word pieces.
pub const MAX_TEXT_CHARS: usize = 32_000;

/// The embedder of this process: the memory service's.
pub async fn embedder(s: &McpApi) -> Result<Arc<dyn Embedder>, DomainError> {
    let memory = zerodb_memory::shared(&s.ctx).await?;
    Ok(memory.embedder().clone())
}

/// Whether `model` names this server's embedder (its name, with or without an
/// `ainative/` prefix, or the client's default).
fn serves(e: &dyn Embedder, model: &str) -> bool {
    let m = model.trim();
    let m = m.strip_prefix("ainative/").unwrap_or(m);
    m.is_empty() || m == e.name() || m == CLIENT_DEFAULT_MODEL
}

/// A 422 when `model` names an embedder this server does not run.
pub fn check_model(e: &dyn Embedder, model: Option<&str>) -> Result<(), DomainError> {
    match model {
        Some(m) if !serves(e, m) => Err(param("model").invalid(format!(
            "unknown embedding model `{}`: this server embeds with `{}` (also served as `{CLIENT_DEFAULT_MODEL}`, the client's default)",
            m.chars().take(80).collect::<String>(),
            e.name()
        ))),
        _ => Ok(()),
    }
}

#[derive(Deserialize)]
struct Generate {
    texts: Vec<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    normalize: Option<bool>,
}

/// `generate_embeddings` (`zerodb:read`): unit-length vectors, one per text, in order.
pub async fn generate(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: Generate = c.params()?;
    c.caller.require(Service::Zerodb, Permission::Read, None)?;
    let mut problems = Problems::default();
    if req.texts.is_empty() || req.texts.len() > MAX_TEXTS {
        problems.push(param("texts").problem(format!(
            "texts has {} texts; send 1 to {MAX_TEXTS}",
            req.texts.len()
        )));
    }
    if let Some((i, t)) = req
        .texts
        .iter()
        .enumerate()
        .find(|(_, t)| t.len() > MAX_TEXT_CHARS && t.chars().count() > MAX_TEXT_CHARS)
    {
        problems.push(param("texts").index(i).problem(format!(
            "texts[{i}] is {} characters, over {MAX_TEXT_CHARS}; split it",
            t.chars().count()
        )));
    }
    problems.into_result()?;
    let e = embedder(s).await?;
    check_model(e.as_ref(), req.model.as_deref())?;
    let started = Instant::now();
    let vectors = e
        .embed(&req.texts)
        .await
        .map_err(|err| DomainError::Unexpected(anyhow::anyhow!("embedding failed: {err}")))?;
    Ok(json!({
        "embeddings": vectors,
        "model": e.name(),
        "requested_model": req.model.unwrap_or_else(|| CLIENT_DEFAULT_MODEL.to_owned()),
        "dimensions": e.dims(),
        "count": vectors.len(),
        // Every vector is unit length, whatever `normalize` says.
        "normalized": true,
        "normalize_requested": req.normalize.unwrap_or(true),
        "processing_time_ms": started.elapsed().as_secs_f64() * 1000.0,
        "cost_usd": 0.0,
    }))
}

/// `list_embedding_models` (`zerodb:read`): a list, as the client documents it.
pub async fn models(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    c.caller.require(Service::Zerodb, Permission::Read, None)?;
    let e = embedder(s).await?;
    Ok(json!([{
        "id": e.name(),
        "dimensions": e.dims(),
        "description": "This server's embedder: the vectors recall and semantic search compare against",
        "aliases": [CLIENT_DEFAULT_MODEL],
        "default": true,
        "loaded": true,
        "cost_per_1k": 0.0,
    }]))
}
