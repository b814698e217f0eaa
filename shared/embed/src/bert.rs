//! BERT's encoder as sentence-embedding models use it (all-MiniLM-L6-v2 and its kind):
//! embeddings, then self-attention layers, run as candle tensor ops on the CPU. Only the
//! encoder: no pooler, no heads, no dropout (inference), absolute positions. This is the
//! batched pass; `direct.rs` runs one short text without candle's per-op overheads and is
//! checked against this one.
//!
//! Written here rather than taken from candle-transformers, whose hundred-odd models took
//! a minute and a half of every build for the one model used.

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder, embedding, layer_norm, linear};
use serde::Deserialize;

/// The feed-forward activation (`hidden_act` of config.json).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HiddenAct {
    /// GELU with the error function, as PyTorch's default (`gelu`).
    Gelu,
    /// The tanh approximation (`gelu_approximate`).
    GeluApproximate,
    Relu,
}

/// How positions are embedded; sentence-embedding BERTs use absolute positions only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PositionEmbeddingType {
    #[default]
    Absolute,
}

/// The parts of a BERT config.json the encoder reads (other fields are ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: HiddenAct,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub pad_token_id: usize,
    #[serde(default)]
    pub position_embedding_type: PositionEmbeddingType,
    pub model_type: Option<String>,
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// The encoder, with its weights.
pub struct Bert {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_size: usize,
    act: HiddenAct,
}

impl Bert {
    /// Reads the weights under `bert.`, `<model_type>.` or the root, as checkpoints name
    /// them.
    pub fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        let prefix = ["bert", config.model_type.as_deref().unwrap_or("bert")]
            .into_iter()
            .find(|p| vb.contains_tensor(&format!("{p}.embeddings.word_embeddings.weight")));
        let vb = match prefix {
            Some(p) => vb.pp(p),
            None => vb,
        };
        let (h, eps) = (config.hidden_size, config.layer_norm_eps);
        let emb = vb.pp("embeddings");
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let l = vb.pp(format!("encoder.layer.{i}"));
                let attn = l.pp("attention");
                Ok(Layer {
                    query: linear(h, h, attn.pp("self.query"))?,
                    key: linear(h, h, attn.pp("self.key"))?,
                    value: linear(h, h, attn.pp("self.value"))?,
                    attention_out: linear(h, h, attn.pp("output.dense"))?,
                    attention_norm: layer_norm(h, eps, attn.pp("output.LayerNorm"))?,
                    intermediate: linear(h, config.intermediate_size, l.pp("intermediate.dense"))?,
                    output: linear(config.intermediate_size, h, l.pp("output.dense"))?,
                    output_norm: layer_norm(h, eps, l.pp("output.LayerNorm"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Bert {
            word: embedding(config.vocab_size, h, emb.pp("word_embeddings"))?,
            position: embedding(
                config.max_position_embeddings,
                h,
                emb.pp("position_embeddings"),
            )?,
            token_type: embedding(config.type_vocab_size, h, emb.pp("token_type_embeddings"))?,
            embeddings_norm: layer_norm(h, eps, emb.pp("LayerNorm"))?,
            layers,
            heads: config.num_attention_heads,
            head_size: h / config.num_attention_heads,
            act: config.hidden_act,
        })
    }

    /// The last hidden states, `[batch, tokens, hidden]`, of `input_ids` (`[batch,
    /// tokens]`, u32); `mask` (same shape, 1 for a token and 0 for padding) keeps padding
    /// out of every token's attention.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        token_type_ids: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (_, tokens) = input_ids.dims2()?;
        let positions = Tensor::arange(0u32, tokens as u32, input_ids.device())?;
        let x = (self.word.forward(input_ids)? + self.token_type.forward(token_type_ids)?)?
            .broadcast_add(&self.position.forward(&positions)?)?;
        let mut x = self.embeddings_norm.forward(&x)?;
        // Padding gets the lowest score, so softmax gives it no weight: [batch, 1, 1, tokens].
        let bias = match mask {
            Some(m) => {
                let m = m.to_dtype(DType::F32)?.unsqueeze(1)?.unsqueeze(1)?;
                Some(((m.ones_like()? - &m)? * f64::from(f32::MIN))?)
            }
            None => None,
        };
        for layer in &self.layers {
            x = self.layer(layer, &x, bias.as_ref())?;
        }
        Ok(x)
    }

    fn layer(&self, l: &Layer, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let heads = |t: Tensor| -> Result<Tensor> {
            let (b, n, _) = t.dims3()?;
            t.reshape((b, n, self.heads, self.head_size))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = heads(l.query.forward(x)?)?;
        let k = heads(l.key.forward(x)?)?;
        let v = heads(l.value.forward(x)?)?;
        let mut scores = (q.matmul(&k.t()?)? / (self.head_size as f64).sqrt())?;
        if let Some(bias) = bias {
            scores = scores.broadcast_add(bias)?;
        }
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .flatten_from(D::Minus2)?;
        let attended = l
            .attention_norm
            .forward(&(l.attention_out.forward(&context)? + x)?)?;
        let inner = l.intermediate.forward(&attended)?;
        let inner = match self.act {
            HiddenAct::Gelu => inner.gelu_erf()?,
            HiddenAct::GeluApproximate => inner.gelu()?,
            HiddenAct::Relu => inner.relu()?,
        };
        l.output_norm
            .forward(&(l.output.forward(&inner)? + attended)?)
    }
}
