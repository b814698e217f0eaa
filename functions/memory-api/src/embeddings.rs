//! `POST /api/v1/embeddings`: OpenAI's embeddings API, served by the memory embedder, so
//! the vectors a client computes are the ones recall compares against. Served by the
//! memory function (which already holds the model), in OpenAI's format and error bodies.

use axum::Json;
use axum::extract::State;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zerodb_domain::scope::{Permission, Service};
use zerodb_domain::{At, DomainError};
use zerodb_http::{ApiJson, ApiResult, Auth};
use zerodb_memory::MemoryService;

/// Most texts in one request (OpenAI's own limit).
pub const MAX_INPUTS: usize = 2048;
/// Longest text accepted, in characters; the model reads its first 256 word pieces.
pub const MAX_INPUT_CHARS: usize = 32_000;

#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbeddingsRequest {
    /// A text or a list of texts (token-id arrays are not accepted: send text).
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
    /// The embedder's name (`GET` it from an error message, or see the README), e.g.
    /// `all-MiniLM-L6-v2`; an `ainative/` prefix is stripped.
    pub model: String,
    /// `float` (the default) or `base64` (little-endian f32, what OpenAI's SDK asks for).
    pub encoding_format: Option<String>,
    /// Must equal the embedder's dimensions when given (vectors are not truncated).
    pub dimensions: Option<u32>,
    /// Ignored; accepted because OpenAI's clients send it.
    pub user: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingView {
    /// `embedding`.
    pub object: &'static str,
    pub index: usize,
    /// Floats, or a base64 string when `encoding_format` is `base64`.
    #[schema(value_type = Object)]
    pub embedding: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingsUsage {
    /// Whitespace-separated words in the inputs (no credits are charged for embeddings).
    pub prompt_tokens: usize,
    pub total_tokens: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingsResponse {
    /// `list`.
    pub object: &'static str,
    pub data: Vec<EmbeddingView>,
    pub model: String,
    pub usage: EmbeddingsUsage,
}

fn texts_of(input: serde_json::Value) -> Result<Vec<String>, DomainError> {
    let texts = match input {
        serde_json::Value::String(s) => vec![s],
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                _ => Err(At::body("input").invalid("input must be a string or a list of strings; token ids are not accepted, send the text",
                )),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(At::body("input").invalid("input must be a string or a list of strings",
            ));
        }
    };
    if texts.is_empty() || texts.len() > MAX_INPUTS {
        return Err(At::body("input").invalid(format!(
            "input has {} texts; send 1 to {MAX_INPUTS}",
            texts.len()
        )));
    }
    if let Some((i, t)) = texts
        .iter()
        .enumerate()
        .find(|(_, t)| t.len() > MAX_INPUT_CHARS && t.chars().count() > MAX_INPUT_CHARS)
    {
        return Err(At::body("input").invalid(format!(
            "input[{i}] is {} characters, over {MAX_INPUT_CHARS}; split it",
            t.chars().count()
        )));
    }
    Ok(texts)
}

/// Embeddings (OpenAI format) from the memory embedder.
///
/// Needs `inference:call`.
#[utoipa::path(post, path = "/api/v1/embeddings", tag = "inference",
    request_body = EmbeddingsRequest,
    responses(
        (status = 200, body = EmbeddingsResponse),
        (status = 422, description = "Bad input, unknown model or dimensions", body = zerodb_http::error::ValidationErrorBody)
    ))]
pub async fn embeddings(
    State(svc): State<MemoryService>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<EmbeddingsRequest>,
) -> ApiResult<Json<EmbeddingsResponse>> {
    caller.require(Service::Inference, Permission::Call, None)?;
    let embedder = svc.embedder();
    let model = req.model.strip_prefix("ainative/").unwrap_or(&req.model);
    if model != embedder.name() {
        return Err(At::body("model")
            .invalid(format!(
                "unknown embedding model `{}`: this deployment embeds with `{}`",
                req.model,
                embedder.name()
            ))
            .into());
    }
    if let Some(d) = req.dimensions
        && d as usize != embedder.dims()
    {
        return Err(At::body("dimensions")
            .invalid(format!(
                "`{}` gives {} dimensions; omit dimensions or send {}",
                embedder.name(),
                embedder.dims(),
                embedder.dims()
            ))
            .into());
    }
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(At::body("encoding_format")
                .invalid(format!(
                    "encoding_format must be `float` or `base64`; got {other:?}"
                ))
                .into());
        }
    };
    let texts = texts_of(req.input)?;
    let words: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
    let vectors = embedder
        .embed(&texts)
        .await
        .map_err(|e| DomainError::Unexpected(anyhow::anyhow!("embedding failed: {e}")))?;
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| EmbeddingView {
            object: "embedding",
            index,
            embedding: if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                serde_json::json!(v)
            },
        })
        .collect();
    Ok(Json(EmbeddingsResponse {
        object: "list",
        data,
        model: embedder.name().to_owned(),
        usage: EmbeddingsUsage {
            prompt_tokens: words,
            total_tokens: words,
        },
    }))
}

/// The same endpoint where OpenAI's SDK looks for it (`base_url=<server>/v1`).
#[utoipa::path(post, path = "/v1/embeddings", tag = "inference",
    request_body = EmbeddingsRequest,
    responses(
        (status = 200, body = EmbeddingsResponse),
        (status = 422, description = "Bad input, unknown model or dimensions", body = zerodb_http::error::ValidationErrorBody)
    ))]
pub async fn embeddings_v1(
    svc: State<MemoryService>,
    auth: Auth,
    req: ApiJson<EmbeddingsRequest>,
) -> ApiResult<Json<EmbeddingsResponse>> {
    embeddings(svc, auth, req).await
}
