//! A client for OpenAI-compatible embedding services (`POST {base_url}/embeddings`):
//! OpenAI itself, and self-hosted servers that speak the same API (vLLM, Ollama, TEI...).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{EmbedError, Embedder, MAX_TEXT_BYTES, check_count, clip, l2_normalize};

/// Time allowed to open a connection (TCP and TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for a whole request, answer included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Texts per request: under every common provider's limit (OpenAI takes 2048), and small
/// enough that one slow request does not hold a whole backlog.
const MAX_TEXTS_PER_REQUEST: usize = 256;

/// How much of an error answer is kept in `EmbedError::Http`.
const ERROR_BODY_CHARS: usize = 300;

/// Embeddings from an OpenAI-compatible HTTP service.
#[derive(Clone)]
pub struct HttpEmbedder {
    client: reqwest::Client,
    url: String,
    model: String,
    name: String,
    api_key: Option<String>,
    dims: usize,
    timeout: Duration,
}

impl std::fmt::Debug for HttpEmbedder {
    // By hand, so the API key can never reach a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpEmbedder")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("dims", &self.dims)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    input: &'a [&'a str],
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    index: usize,
    embedding: Vec<f32>,
}

impl HttpEmbedder {
    /// A client for `{base_url}/embeddings` (e.g. `https://api.openai.com/v1`) and `model`,
    /// whose vectors have `dims` dimensions; `api_key` is sent as a Bearer token. Timeouts
    /// are [`DEFAULT_CONNECT_TIMEOUT`] and [`DEFAULT_TIMEOUT`].
    pub fn new(
        base_url: impl Into<String>,
        model: impl Into<String>,
        api_key: Option<String>,
        dims: usize,
    ) -> Result<Self, EmbedError> {
        let base_url = base_url.into();
        let model = model.into();
        let client = client(DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT)?;
        Ok(HttpEmbedder {
            client,
            url: format!("{}/embeddings", base_url.trim_end_matches('/')),
            name: format!("http:{model}"),
            model,
            api_key: api_key.filter(|k| !k.is_empty()),
            dims,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same client with other timeouts.
    pub fn with_timeouts(mut self, connect: Duration, total: Duration) -> Result<Self, EmbedError> {
        self.client = client(connect, total)?;
        self.timeout = total;
        Ok(self)
    }

    async fn request(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let started = Instant::now();
        let mut req = self.client.post(&self.url).json(&Request {
            model: &self.model,
            input: texts,
        });
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| self.transport_error(e))?;
        tracing::debug!(
            embedder = %self.name,
            texts = texts.len(),
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "embedding request"
        );
        if !status.is_success() {
            return Err(EmbedError::Http {
                status: status.as_u16(),
                body: self.error_excerpt(&body),
            });
        }
        let parsed: Response = serde_json::from_slice(&body)
            .map_err(|e| EmbedError::BadResponse(format!("not an embeddings answer: {e}")))?;
        self.vectors(parsed, texts.len())
    }

    /// Checks the answer has exactly one vector of `dims` per text, and puts them in input
    /// order (`index`), normalised.
    fn vectors(&self, resp: Response, expected: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        if resp.data.len() != expected {
            return Err(EmbedError::BadResponse(format!(
                "{} vectors for {expected} texts",
                resp.data.len()
            )));
        }
        let mut out: Vec<Option<Vec<f32>>> = vec![None; expected];
        for item in resp.data {
            let Item {
                index,
                mut embedding,
            } = item;
            if embedding.len() != self.dims {
                return Err(EmbedError::BadResponse(format!(
                    "vector {index} has {} dimensions, expected {} (check ZERODB_EMBEDDINGS_DIMS)",
                    embedding.len(),
                    self.dims
                )));
            }
            if !l2_normalize(&mut embedding) {
                return Err(EmbedError::BadResponse(format!(
                    "vector {index} is zero or not finite"
                )));
            }
            match out.get_mut(index) {
                Some(slot @ None) => *slot = Some(embedding),
                Some(Some(_)) => {
                    return Err(EmbedError::BadResponse(format!(
                        "index {index} appears twice"
                    )));
                }
                None => {
                    return Err(EmbedError::BadResponse(format!(
                        "index {index} out of range for {expected} texts"
                    )));
                }
            }
        }
        // Exactly `expected` items, all distinct and in range: every slot is filled.
        Ok(out.into_iter().flatten().collect())
    }

    fn transport_error(&self, e: reqwest::Error) -> EmbedError {
        if e.is_timeout() {
            EmbedError::Timeout(self.timeout)
        } else {
            // Without the URL: it is in the configuration, and reqwest's text repeats it.
            EmbedError::Transport(e.without_url().to_string())
        }
    }

    /// The start of an error answer, with the API key blanked out (some services echo
    /// part or all of a rejected key).
    fn error_excerpt(&self, body: &[u8]) -> String {
        let mut text: String = String::from_utf8_lossy(body)
            .chars()
            .take(ERROR_BODY_CHARS)
            .collect();
        if let Some(key) = self.api_key.as_deref().filter(|k| k.len() >= 4) {
            text = text.replace(key, "<redacted>");
        }
        text
    }
}

fn client(connect: Duration, total: Duration) -> Result<reqwest::Client, EmbedError> {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .timeout(total)
        .build()
        .map_err(|e| EmbedError::Transport(format!("building the HTTP client: {e}")))
}

#[async_trait]
impl Embedder for HttpEmbedder {
    fn name(&self) -> &str {
        &self.name
    }

    fn dims(&self) -> usize {
        self.dims
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        check_count(texts)?;
        // OpenAI refuses an empty string in `input`; a space embeds as "nothing" instead.
        let inputs: Vec<&str> = texts
            .iter()
            .map(|t| match clip(t, MAX_TEXT_BYTES) {
                "" => " ",
                t => t,
            })
            .collect();
        let mut out = Vec::with_capacity(texts.len());
        for chunk in inputs.chunks(MAX_TEXTS_PER_REQUEST) {
            out.extend(self.request(chunk).await?);
        }
        Ok(out)
    }
}
