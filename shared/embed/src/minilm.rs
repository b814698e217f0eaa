//! all-MiniLM-L6-v2 in process: candle's BERT on the CPU, mean pooling over the attention
//! mask, then L2 normalisation — the Transformer → Pooling(mean) → Normalize pipeline that
//! the model's modules.json declares for sentence-transformers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::bert::{Bert as BertModel, Config as BertConfig};
use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use tokenizers::{Tokenizer, TruncationParams};

use crate::direct::{DIRECT_MAX_TOKENS, DirectBert};
use crate::{EmbedError, Embedder, MAX_TEXT_BYTES, check_count, clip, l2_normalize};

/// Files `MiniLmEmbedder::load` needs in its directory (`infra/fetch-model.sh` puts them there).
pub const MINILM_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

const NAME: &str = "all-MiniLM-L6-v2";

/// Used when the directory has no sentence_bert_config.json: the model's training length.
const DEFAULT_MAX_TOKENS: usize = 256;

/// Bytes of a long text tokenised first (see `Model::tokenize`): 256 word pieces of
/// English take 1–2 KB.
const FIRST_TOKENIZE_WINDOW: usize = 4096;

/// Texts per forward pass. Larger batches gain little on two cores and grow the attention
/// tensors (batch × heads × len²) quickly.
const MAX_BATCH_TEXTS: usize = 32;

/// Padded tokens per forward pass: with texts sorted by length, a batch of long texts is
/// cut short so one pass never holds more than ~25 MB of attention scores.
const MAX_BATCH_TOKENS: usize = 2048;

/// Sets `RAYON_NUM_THREADS` to the number of available cores unless it is already set, and
/// returns the thread count candle now uses for inference.
///
/// Why: with the variable unset, candle 0.11 works out its thread count on EVERY matrix
/// product by parsing /proc/cpuinfo (`num_cpus::get_physical`, uncached) — about 40 times
/// per forward pass. Measured on the 2-core development machine, a short query's p50 goes
/// from 7.6–9.1 ms to 5.0–6.4 ms once the variable is set.
///
/// # Safety
///
/// It calls `std::env::set_var`, so no other thread may be running, not even one that
/// only reads the environment from C: call it first thing in `main`, before a tokio
/// runtime (or anything else that spawns threads) is built.
pub unsafe fn set_default_inference_threads() -> usize {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY: the caller guarantees no other thread exists yet.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", cores.to_string()) };
    }
    candle_core::utils::get_num_threads()
}

/// The async runtime of a process that runs the model: sets the inference thread count
/// (see [`set_default_inference_threads`]), then builds a multi-threaded tokio runtime.
///
/// # Safety
/// As for [`set_default_inference_threads`]: call it first thing in `main`, before any
/// other thread exists.
pub unsafe fn model_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    // SAFETY: passed on to the caller.
    unsafe { set_default_inference_threads() };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// The all-MiniLM-L6-v2 sentence-embedding model, loaded once and shared: clones are cheap
/// and every clone uses the same weights.
#[derive(Clone)]
pub struct MiniLmEmbedder {
    model: Arc<Model>,
    /// Whether a lone short text may take the direct path (see `direct.rs`).
    direct: bool,
}

struct Model {
    bert: BertModel,
    /// None when the configuration is one the direct path does not cover.
    direct: Option<DirectBert>,
    tokenizer: Tokenizer,
    device: Device,
    dims: usize,
    max_tokens: usize,
    pad_id: u32,
    sep_id: u32,
}

impl std::fmt::Debug for MiniLmEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLmEmbedder")
            .field("dims", &self.model.dims)
            .field("max_tokens", &self.model.max_tokens)
            .finish_non_exhaustive()
    }
}

/// The parts of sentence_bert_config.json and 1_Pooling/config.json that change results.
#[derive(serde::Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

#[derive(serde::Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

impl MiniLmEmbedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir` (plus, when
    /// present, the sentence-transformers files that set the token limit and pooling), then
    /// runs one warm-up pass so the first real query does not pay for page faults and
    /// thread start-up. Blocks for 150–400 ms: call it at start-up, or from
    /// `tokio::task::spawn_blocking` inside a runtime.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let started = Instant::now();
        let load_err = |reason: String| EmbedError::ModelLoad {
            path: dir.to_path_buf(),
            reason,
        };
        let missing: Vec<&str> = MINILM_FILES
            .iter()
            .copied()
            .filter(|f| !dir.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            return Err(load_err(format!(
                "missing {} (run ./infra/fetch-model.sh)",
                missing.join(", ")
            )));
        }
        let read = |name: &str| -> Result<Vec<u8>, EmbedError> {
            std::fs::read(dir.join(name)).map_err(|e| load_err(format!("reading {name}: {e}")))
        };

        let config: BertConfig = serde_json::from_slice(&read("config.json")?)
            .map_err(|e| load_err(format!("config.json: {e}")))?;

        let max_tokens = optional_json::<SentenceBertConfig>(dir, "sentence_bert_config.json")?
            .and_then(|c| c.max_seq_length)
            .unwrap_or(DEFAULT_MAX_TOKENS)
            .min(config.max_position_embeddings);
        // [CLS] and [SEP] take two places; fewer than one more would embed nothing.
        if max_tokens < 3 {
            return Err(load_err(format!(
                "max_seq_length {max_tokens} is too small"
            )));
        }
        if let Some(pooling) = optional_json::<PoolingConfig>(dir, "1_Pooling/config.json")?
            && !pooling.pooling_mode_mean_tokens
        {
            return Err(load_err(
                "1_Pooling/config.json asks for a pooling other than mean, which this loader does not implement".into(),
            ));
        }

        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| load_err(format!("tokenizer.json: {e}")))?;
        // The tokenizer.json shipped with the model truncates and pads to 128; the model is
        // used with 256 (sentence_bert_config.json), and padding is done per batch below.
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|e| load_err(format!("tokenizer truncation: {e}")))?;
        tokenizer.with_padding(None);
        let sep_id = tokenizer
            .token_to_id("[SEP]")
            .ok_or_else(|| load_err("tokenizer.json has no [SEP] token".into()))?;
        let pad_id = u32::try_from(config.pad_token_id)
            .map_err(|_| load_err("config.json pad_token_id is out of range".into()))?;

        let device = Device::Cpu;
        let weights = read("model.safetensors")?;
        let vb = VarBuilder::from_slice_safetensors(&weights, DType::F32, &device)
            .map_err(|e| load_err(format!("model.safetensors: {e}")))?;
        let bert = BertModel::load(vb.clone(), &config)
            .map_err(|e| load_err(format!("model.safetensors does not fit config.json: {e}")))?;
        let direct = DirectBert::load(&vb, &config)
            .map_err(|e| load_err(format!("model.safetensors (direct path): {e}")))?;
        // The weights were copied into tensors; the file's bytes are no longer needed.
        drop(vb);
        drop(weights);

        let embedder = MiniLmEmbedder {
            model: Arc::new(Model {
                bert,
                direct,
                tokenizer,
                device,
                dims: config.hidden_size,
                max_tokens,
                pad_id,
                sep_id,
            }),
            direct: true,
        };
        embedder
            .embed_blocking(&["warm-up"])
            .map_err(|e| load_err(format!("warm-up pass: {e}")))?;
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            tracing::info!(
                "RAYON_NUM_THREADS is unset, so candle re-reads /proc/cpuinfo on every matrix \
                 product and each query takes a few ms longer; set it, or call \
                 zerodb_embed::set_default_inference_threads() first thing in main"
            );
        }
        tracing::info!(
            embedder = NAME,
            dims = config.hidden_size,
            threads = candle_core::utils::get_num_threads(),
            max_tokens,
            direct_path_mb = embedder
                .model
                .direct
                .as_ref()
                .map_or(0, |d| d.weight_bytes() >> 20),
            load_ms = started.elapsed().as_millis() as u64,
            "embedding model loaded"
        );
        Ok(embedder)
    }

    /// The same model (shared weights) with every text going through candle's batched
    /// forward pass, never the direct one: the reference the direct path is checked and
    /// measured against.
    pub fn batched_only(&self) -> Self {
        MiniLmEmbedder {
            model: Arc::clone(&self.model),
            direct: false,
        }
    }

    /// Word pieces per text, [CLS] and [SEP] included; longer texts are truncated.
    pub fn max_tokens(&self) -> usize {
        self.model.max_tokens
    }

    /// The word-piece ids the model sees for `text`: [CLS], the text's pieces (truncated),
    /// [SEP]. For diagnostics and tests.
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        self.model.tokenize(clip(text, MAX_TEXT_BYTES))
    }

    /// Embeds, blocking the calling thread until done (the work runs on candle's thread
    /// pool). For code already off the async runtime (a batch worker, a benchmark); async
    /// callers use [`Embedder::embed`], which waits on a blocking thread instead.
    pub fn embed_blocking<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.model.embed_in_pool(texts, self.direct)
    }
}

fn optional_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    name: &str,
) -> Result<Option<T>, EmbedError> {
    let path: PathBuf = dir.join(name);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(EmbedError::ModelLoad {
                path: dir.to_path_buf(),
                reason: format!("reading {name}: {e}"),
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| EmbedError::ModelLoad {
            path: dir.to_path_buf(),
            reason: format!("{name}: {e}"),
        })
}

impl Model {
    /// Runs [`Model::embed`] on candle's own rayon pool. candle splits matrix products and
    /// element-wise ops across that pool; called from outside it, each of the ~100 ops of
    /// a forward pass hands its work to a pool thread and sleeps until woken, while from
    /// inside, the calling thread does its share. Measured (short query, p50): 8.6–10.6 ms
    /// → 7.6–9.1 ms, and 6.3–7.0 → 5.0–6.4 ms with RAYON_NUM_THREADS set.
    fn embed_in_pool<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        direct: bool,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        candle_core::utils::with_threadpool(|| self.embed(texts, direct))
    }

    fn embed<S: AsRef<str>>(&self, texts: &[S], direct: bool) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids = Vec::with_capacity(texts.len());
        for text in texts {
            ids.push(self.tokenize(clip(text.as_ref(), MAX_TEXT_BYTES))?);
        }
        // A lone short text (a recall's query) skips candle's per-op overheads.
        if let ([only], Some(model), true) = (ids.as_slice(), &self.direct, direct)
            && only.len() <= DIRECT_MAX_TOKENS
        {
            let mut v = model
                .pooled(only)
                .map_err(|e| EmbedError::Inference(e.to_string()))?;
            self.unit(&mut v).map_err(EmbedError::Inference)?;
            return Ok(vec![v]);
        }

        // Sorting by length puts texts of similar length in one batch, so little of each
        // forward pass is spent on padding; results go back to their input positions.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); ids.len()];
        let mut start = 0;
        while start < order.len() {
            let mut end = start + 1;
            while end < order.len()
                && end - start < MAX_BATCH_TEXTS
                && (end - start + 1) * ids[order[end]].len() <= MAX_BATCH_TOKENS
            {
                end += 1;
            }
            let batch: Vec<&[u32]> = order[start..end]
                .iter()
                .map(|&i| ids[i].as_slice())
                .collect();
            let vectors = self
                .forward(&batch)
                .map_err(|e| EmbedError::Inference(e.to_string()))?;
            for (&i, v) in order[start..end].iter().zip(vectors) {
                out[i] = v;
            }
            start = end;
        }
        Ok(out)
    }

    /// Word-piece ids of `text` (already clipped to MAX_TEXT_BYTES), truncated to
    /// `max_tokens`.
    ///
    /// Only the first ~1–2 KB of ordinary text fit in 256 pieces, yet tokenising all 32 KiB
    /// of a pasted document costs ~18 ms. So a prefix is tried first, cut just before a
    /// whitespace so every word in it is whole: word pieces never cross whitespace, so if
    /// the prefix alone fills `max_tokens`, the full text's first pieces are the same ones.
    /// Otherwise a four-times larger prefix is tried, up to the whole text.
    fn tokenize(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        let mut window = FIRST_TOKENIZE_WINDOW;
        while window < text.len() {
            let prefix = clip(text, window);
            // Only the whitespace BERT's normaliser keeps as a separator: it deletes other
            // control characters, joining the words around them.
            if let Some(cut) = prefix.rfind([' ', '\n', '\t', '\r']) {
                let ids = self.encode(&prefix[..cut])?;
                if ids.len() >= self.max_tokens {
                    return Ok(ids);
                }
            }
            window *= 4;
        }
        self.encode(text)
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        let encoding = self
            .tokenizer
            .encode_fast(text, true)
            .map_err(|e| EmbedError::Inference(format!("tokenizer: {e}")))?;
        let mut ids = encoding.get_ids().to_vec();
        // The tokenizer truncates already; this guards the position-embedding table
        // against a tokenizer.json whose post-processor adds more than expected.
        if ids.len() > self.max_tokens {
            ids.truncate(self.max_tokens - 1);
            ids.push(self.sep_id);
        }
        Ok(ids)
    }

    /// One forward pass over texts of similar length: right-padded ids, mean pooling over
    /// the real tokens, unit length.
    fn forward(&self, batch: &[&[u32]]) -> candle_core::Result<Vec<Vec<f32>>> {
        let rows = batch.len();
        let len = batch.iter().map(|s| s.len()).max().unwrap_or(0);
        let padded = batch.iter().any(|s| s.len() < len);
        let mut flat = Vec::with_capacity(rows * len);
        for seq in batch {
            flat.extend_from_slice(seq);
            flat.resize(flat.len() + len - seq.len(), self.pad_id);
        }
        let input_ids = Tensor::from_vec(flat, (rows, len), &self.device)?;
        let token_type_ids = input_ids.zeros_like()?;

        let pooled = if padded {
            let mut mask = Vec::with_capacity(rows * len);
            for seq in batch {
                mask.resize(mask.len() + seq.len(), 1u32);
                mask.resize(mask.len() + len - seq.len(), 0u32);
            }
            let mask = Tensor::from_vec(mask, (rows, len), &self.device)?;
            let hidden = self
                .bert
                .forward(&input_ids, &token_type_ids, Some(&mask))?;
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            // Every text has at least [CLS] and [SEP], so no count is zero.
            summed.broadcast_div(&mask.sum(1)?)?
        } else {
            // No padding: every position counts, and the mask multiply is skipped (this is
            // the path of a single query).
            self.bert
                .forward(&input_ids, &token_type_ids, None)?
                .mean(1)?
        };

        let mut vectors = pooled.to_vec2::<f32>()?;
        for v in &mut vectors {
            self.unit(v).map_err(candle_core::Error::msg)?;
        }
        Ok(vectors)
    }

    /// Makes a pooled vector (from either forward pass) unit length, after checking it
    /// has the model's dimensions.
    fn unit(&self, v: &mut [f32]) -> Result<(), String> {
        if v.len() != self.dims {
            return Err(format!(
                "model produced {} dimensions, expected {}",
                v.len(),
                self.dims
            ));
        }
        if !l2_normalize(v) {
            return Err("model produced a zero or non-finite embedding".to_owned());
        }
        Ok(())
    }
}

#[async_trait]
impl Embedder for MiniLmEmbedder {
    fn name(&self) -> &str {
        NAME
    }

    fn dims(&self) -> usize {
        self.model.dims
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        check_count(texts)?;
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // spawn_blocking needs owned data; clipping while copying means a huge text costs
        // at most MAX_TEXT_BYTES here.
        let owned: Vec<String> = texts
            .iter()
            .map(|t| clip(t, MAX_TEXT_BYTES).to_owned())
            .collect();
        let model = Arc::clone(&self.model);
        let direct = self.direct;
        let started = Instant::now();
        // Inference is CPU-bound for milliseconds: on a blocking thread it never stalls the
        // runtime's workers. A panic inside the model surfaces here as an error, not a crash.
        let vectors = tokio::task::spawn_blocking(move || model.embed_in_pool(&owned, direct))
            .await
            .map_err(|e| EmbedError::Inference(format!("embedding task failed: {e}")))??;
        tracing::debug!(
            embedder = NAME,
            texts = texts.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "embedded"
        );
        Ok(vectors)
    }
}
