//! A direct forward pass of the BERT encoder for one short text: the query path of recall.
//!
//! candle runs a forward pass as ~100 tensor ops, each allocating its output, packing the
//! weight matrix for its general matrix product and waking the thread pool. For a batch of
//! long texts that cost is amortised; for one query of a handful of word pieces it is the
//! whole cost (12–26 ms on the development machine while the arithmetic is ~100 MFLOP).
//! Here the same arithmetic runs over the weights as they lie in memory (PyTorch's
//! `out × in` rows, so each output is a dot product of two contiguous rows), in buffers
//! allocated once per call, with the larger products split across the pool's threads.
//! The linear layers are int8 (see `Linear::quantize`), so vectors differ from candle's
//! f32 pass by a cosine of 0.9993 or better for any text with words (tested in
//! tests/tests/memory_meaning.rs and shared/embed/tests/minilm.rs).

use crate::bert::{Config as BertConfig, HiddenAct, PositionEmbeddingType};
use candle_core::DType;
use candle_nn::VarBuilder;

/// Texts of up to this many word pieces take the direct path when embedded alone. The
/// limit keeps the int8 path to query-sized texts; around it the two paths cost about the
/// same (at 126 word pieces: 169 vs 194 ms in one run, 284 vs 234 ms in another, direct
/// first, on a busy machine; `examples/query_latency.rs` prints it).
pub(crate) const DIRECT_MAX_TOKENS: usize = 128;

/// Multiply-adds below which a product runs on one thread: a split costs a few
/// microseconds of waking and joining.
const SPLIT_MIN_WORK: usize = 1 << 17;

/// Lanes of the dot-product accumulators: one 256-bit register of f32. Hidden sizes must be
/// multiples of it (MiniLM's 384 and 1536 are).
const LANES: usize = 8;

pub(crate) struct DirectBert {
    hidden: usize,
    heads: usize,
    eps: f32,
    /// vocab × hidden.
    word: Vec<f32>,
    /// max_positions × hidden.
    position: Vec<f32>,
    /// Token type 0's row: every text here is a single segment.
    token_type0: Vec<f32>,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
}

/// A linear layer with int8 weights: row `o` of the original matrix is `scale[o] ×
/// weight[o]`, rounded to the nearest of 255 steps symmetric around zero.
struct Linear {
    /// out × in, row-major.
    weight: Vec<i8>,
    scale: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

struct Layer {
    /// Query, key and value stacked: one product of 3 × hidden outputs.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

impl DirectBert {
    /// Copies the weights out of `vb` (the same builder candle's `BertModel::load` read).
    /// Returns None for a configuration this path does not cover; candle then serves
    /// every call.
    pub(crate) fn load(vb: &VarBuilder, config: &BertConfig) -> candle_core::Result<Option<Self>> {
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        if config.hidden_act != HiddenAct::Gelu
            || config.position_embedding_type != PositionEmbeddingType::Absolute
            || heads == 0
            || !hidden.is_multiple_of(heads)
            || !hidden.is_multiple_of(LANES)
            || !config.intermediate_size.is_multiple_of(LANES)
        {
            return Ok(None);
        }
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb.clone()
        };
        let read =
            |vb: &VarBuilder, shape: &[usize], name: &str| -> candle_core::Result<Vec<f32>> {
                vb.get(shape.to_vec(), name)?
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()
            };
        let linear =
            |vbs: &[VarBuilder], inputs: usize, outputs: usize| -> candle_core::Result<Linear> {
                let (mut weight, mut bias) = (Vec::new(), Vec::new());
                for vb in vbs {
                    weight.extend(read(vb, &[outputs, inputs], "weight")?);
                    bias.extend(read(vb, &[outputs], "bias")?);
                }
                Ok(Linear::quantize(&weight, bias, inputs))
            };
        let norm = |vb: VarBuilder| -> candle_core::Result<LayerNorm> {
            Ok(LayerNorm {
                gamma: read(&vb, &[hidden], "weight")?,
                beta: read(&vb, &[hidden], "bias")?,
            })
        };

        let emb = vb.pp("embeddings");
        let token_types = read(
            &emb,
            &[config.type_vocab_size, hidden],
            "token_type_embeddings.weight",
        )?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let layer = vb.pp(format!("encoder.layer.{i}"));
            let attention = layer.pp("attention");
            let qkv = [
                attention.pp("self.query"),
                attention.pp("self.key"),
                attention.pp("self.value"),
            ];
            layers.push(Layer {
                qkv: linear(&qkv, hidden, hidden)?,
                attention_out: linear(&[attention.pp("output.dense")], hidden, hidden)?,
                attention_norm: norm(attention.pp("output.LayerNorm"))?,
                intermediate: linear(
                    &[layer.pp("intermediate.dense")],
                    hidden,
                    config.intermediate_size,
                )?,
                output: linear(
                    &[layer.pp("output.dense")],
                    config.intermediate_size,
                    hidden,
                )?,
                output_norm: norm(layer.pp("output.LayerNorm"))?,
            });
        }
        Ok(Some(DirectBert {
            hidden,
            heads,
            eps: config.layer_norm_eps as f32,
            word: read(&emb, &[config.vocab_size, hidden], "word_embeddings.weight")?,
            position: read(
                &emb,
                &[config.max_position_embeddings, hidden],
                "position_embeddings.weight",
            )?,
            token_type0: token_types[..hidden].to_vec(),
            embeddings_norm: norm(emb.pp("LayerNorm"))?,
            layers,
        }))
    }

    /// Mean of the last hidden states over all tokens of `ids` (not normalised). Run it
    /// inside the rayon pool that should share the work (candle's, see `minilm.rs`).
    pub(crate) fn pooled(&self, ids: &[u32]) -> candle_core::Result<Vec<f32>> {
        let h = self.hidden;
        let m = ids.len();
        if m == 0 || m * h > self.position.len() {
            candle_core::bail!("{m} tokens do not fit the position table");
        }
        let mut x = vec![0f32; m * h];
        for (t, &id) in ids.iter().enumerate() {
            let id = id as usize;
            let Some(word) = self.word.get(id * h..(id + 1) * h) else {
                candle_core::bail!("token id {id} is outside the vocabulary");
            };
            let position = &self.position[t * h..(t + 1) * h];
            for (i, out) in x[t * h..(t + 1) * h].iter_mut().enumerate() {
                *out = word[i] + self.token_type0[i] + position[i];
            }
        }
        self.embeddings_norm.apply(&mut x, h, self.eps);

        let inter = self.layers.first().map_or(0, |l| l.intermediate.outputs);
        let mut qkv = vec![0f32; m * 3 * h];
        let mut context = vec![0f32; m * h];
        let mut projected = vec![0f32; m * h];
        let mut wide = vec![0f32; m * inter];
        let mut scores = vec![0f32; m];
        // The column-major products of every linear layer, sized for the widest.
        let mut scratch = Vec::with_capacity(m * (3 * h).max(inter));
        let head_dim = h / self.heads;
        let scale = 1.0 / (head_dim as f32).sqrt();
        for layer in &self.layers {
            layer.qkv.apply(&x, m, &mut qkv, &mut scratch);
            // Self-attention, head by head: a few thousand multiply-adds per head for a
            // short text, so plain loops.
            for head in 0..self.heads {
                let offset = head * head_dim;
                for i in 0..m {
                    let q = &qkv[i * 3 * h + offset..][..head_dim];
                    let mut max = f32::NEG_INFINITY;
                    for (j, s) in scores.iter_mut().enumerate() {
                        let k = &qkv[j * 3 * h + h + offset..][..head_dim];
                        *s = dot(q, k) * scale;
                        max = max.max(*s);
                    }
                    let mut sum = 0f32;
                    for s in scores.iter_mut() {
                        *s = (*s - max).exp();
                        sum += *s;
                    }
                    let out = &mut context[i * h + offset..][..head_dim];
                    out.fill(0.0);
                    for (j, s) in scores.iter().enumerate() {
                        let v = &qkv[j * 3 * h + 2 * h + offset..][..head_dim];
                        let p = s / sum;
                        for (o, v) in out.iter_mut().zip(v) {
                            *o += p * v;
                        }
                    }
                }
            }
            layer
                .attention_out
                .apply(&context, m, &mut projected, &mut scratch);
            add_assign(&mut x, &projected);
            layer.attention_norm.apply(&mut x, h, self.eps);

            layer.intermediate.apply(&x, m, &mut wide, &mut scratch);
            wide.iter_mut().for_each(|v| *v = gelu_erf(*v));
            layer.output.apply(&wide, m, &mut projected, &mut scratch);
            add_assign(&mut x, &projected);
            layer.output_norm.apply(&mut x, h, self.eps);
        }

        let mut pooled = vec![0f32; h];
        for row in x.chunks_exact(h) {
            add_assign(&mut pooled, row);
        }
        let inv = 1.0 / m as f32;
        pooled.iter_mut().for_each(|v| *v *= inv);
        Ok(pooled)
    }

    /// Bytes of weights this path keeps (in addition to candle's copy).
    pub(crate) fn weight_bytes(&self) -> usize {
        let layer_bytes: usize = self
            .layers
            .iter()
            .map(|l| {
                [&l.qkv, &l.attention_out, &l.intermediate, &l.output]
                    .iter()
                    .map(|lin| lin.weight.len() + 4 * (lin.scale.len() + lin.bias.len()))
                    .sum::<usize>()
                    + 4 * 4 * self.hidden
            })
            .sum();
        layer_bytes + 4 * (self.word.len() + self.position.len() + 3 * self.hidden)
    }
}

impl LayerNorm {
    /// Normalises each `h`-wide row of `x` in place (mean removed, biased variance), as
    /// candle's and PyTorch's LayerNorm do.
    fn apply(&self, x: &mut [f32], h: usize, eps: f32) {
        for row in x.chunks_exact_mut(h) {
            let mean = row.iter().sum::<f32>() / h as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
            let inv = 1.0 / (var + eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(&self.gamma).zip(&self.beta) {
                *v = (*v - mean) * inv * g + b;
            }
        }
    }
}

impl Linear {
    /// Quantises `weight` (out × `inputs`, row-major) row by row.
    ///
    /// Why int8: one query streams every weight through the cores once, and with only a
    /// handful of tokens per weight the product waits on memory, not arithmetic (the
    /// profile's hottest instruction was a weight load). A quarter of f32's bytes is a
    /// quarter of that wait; activations stay f32, so the only error is the weights'
    /// rounding (measured against candle's f32 pass by the `query_latency` example and a test).
    fn quantize(weight: &[f32], bias: Vec<f32>, inputs: usize) -> Linear {
        let outputs = bias.len();
        let mut q = Vec::with_capacity(weight.len());
        let mut scale = Vec::with_capacity(outputs);
        for row in weight.chunks_exact(inputs) {
            let max = row.iter().fold(0f32, |m, w| m.max(w.abs()));
            let s = if max > 0.0 { max / 127.0 } else { 1.0 };
            q.extend(
                row.iter()
                    .map(|w| (w / s).round().clamp(-127.0, 127.0) as i8),
            );
            scale.push(s);
        }
        Linear {
            weight: q,
            scale,
            bias,
            inputs,
            outputs,
        }
    }

    /// `y = x · Wᵀ + b` for `m` rows of `x`. `scratch` is reused across calls.
    fn apply(&self, x: &[f32], m: usize, y: &mut [f32], scratch: &mut Vec<f32>) {
        debug_assert_eq!(x.len(), m * self.inputs);
        debug_assert_eq!(y.len(), m * self.outputs);
        // Outputs are computed column-major (all tokens of output 0, then output 1, …) so
        // that a thread's share is one contiguous slice; then transposed into `y`.
        scratch.resize(m * self.outputs, 0.0);
        let columns = &mut scratch[..];
        self.columns(x, m, 0, columns);
        for (o, column) in columns.chunks_exact(m).enumerate() {
            let (scale, bias) = (self.scale[o], self.bias[o]);
            for (t, v) in column.iter().enumerate() {
                y[t * self.outputs + o] = v * scale + bias;
            }
        }
    }

    /// Fills `out` (outputs `first..first + out.len() / m`, each `m` tokens wide),
    /// splitting the range in two on the rayon pool while the work is large enough.
    fn columns(&self, x: &[f32], m: usize, first: usize, out: &mut [f32]) {
        let outputs = out.len() / m;
        if outputs >= 2 * 16 && outputs * m * self.inputs >= 2 * SPLIT_MIN_WORK {
            let half = outputs / 2;
            let (a, b) = out.split_at_mut(half * m);
            rayon::join(
                || self.columns(x, m, first, a),
                || self.columns(x, m, first + half, b),
            );
            return;
        }
        let k = self.inputs;
        let rows = &self.weight[first * k..(first + outputs) * k];
        kernel(rows, k, x, m, out);
    }
}

/// `out[o * m + t] = dot(rows[o], x[t])` for every weight row `o` and token `t`.
fn kernel(rows: &[i8], k: usize, x: &[f32], m: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has the features the function is compiled for (checked above).
            unsafe { avx2::kernel(rows, k, x, m, out) };
            return;
        }
    }
    kernel_generic(rows, k, x, m, out);
}

/// One dot product at a time, in LANES independent sums that the compiler turns into
/// vector registers (NEON on Graviton, SSE on an x86 without AVX2).
fn kernel_generic(rows: &[i8], k: usize, x: &[f32], m: usize, out: &mut [f32]) {
    for (row, out) in rows.chunks_exact(k).zip(out.chunks_exact_mut(m)) {
        for (xt, o) in x.chunks_exact(k).zip(out.iter_mut()) {
            let mut acc = [0f32; LANES];
            for (w, xc) in row.chunks_exact(LANES).zip(xt.chunks_exact(LANES)) {
                for l in 0..LANES {
                    acc[l] += f32::from(w[l]) * xc[l];
                }
            }
            *o = acc.iter().sum();
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::LANES;

    /// Tiles of two weight rows × four tokens in eight 256-bit accumulators: each loaded
    /// chunk serves two or four multiply-adds, so the loop is bound by arithmetic rather
    /// than by loads. Leftover rows and tokens go one dot product at a time.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn kernel(rows: &[i8], k: usize, x: &[f32], m: usize, out: &mut [f32]) {
        assert!(k.is_multiple_of(LANES) && x.len() >= m * k && out.len() * k == rows.len() * m);
        let n = rows.len() / k;
        let w = rows.as_ptr();
        let xp = x.as_ptr();
        let mut o = 0;
        while o + 2 <= n {
            let mut t = 0;
            while t + 4 <= m {
                // SAFETY: rows o, o+1 < n and tokens t..t+4 <= m, each k long, lie inside
                // the slices (asserted above); unaligned loads.
                unsafe {
                    let (w0, w1) = (w.add(o * k), w.add((o + 1) * k));
                    let xs = [
                        xp.add(t * k),
                        xp.add((t + 1) * k),
                        xp.add((t + 2) * k),
                        xp.add((t + 3) * k),
                    ];
                    let mut a = [_mm256_setzero_ps(); 8];
                    let mut c = 0;
                    while c < k {
                        let wa = widen(w0.add(c));
                        let wb = widen(w1.add(c));
                        for j in 0..4 {
                            let xv = _mm256_loadu_ps(xs[j].add(c));
                            a[j] = _mm256_fmadd_ps(wa, xv, a[j]);
                            a[4 + j] = _mm256_fmadd_ps(wb, xv, a[4 + j]);
                        }
                        c += LANES;
                    }
                    for j in 0..4 {
                        out[o * m + t + j] = hsum(a[j]);
                        out[(o + 1) * m + t + j] = hsum(a[4 + j]);
                    }
                }
                t += 4;
            }
            for t in t..m {
                out[o * m + t] = dot(rows, o, x, t, k);
                out[(o + 1) * m + t] = dot(rows, o + 1, x, t, k);
            }
            o += 2;
        }
        if o < n {
            for t in 0..m {
                out[o * m + t] = dot(rows, o, x, t, k);
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    fn dot(rows: &[i8], o: usize, x: &[f32], t: usize, k: usize) -> f32 {
        let (row, xt) = (&rows[o * k..(o + 1) * k], &x[t * k..(t + 1) * k]);
        let mut acc = _mm256_setzero_ps();
        for (wc, xc) in row.chunks_exact(LANES).zip(xt.chunks_exact(LANES)) {
            // SAFETY: both chunks hold exactly LANES floats.
            unsafe {
                acc = _mm256_fmadd_ps(widen(wc.as_ptr()), _mm256_loadu_ps(xc.as_ptr()), acc);
            }
        }
        hsum(acc)
    }

    /// Eight int8 weights at `p` as eight f32 lanes.
    ///
    /// # Safety
    /// `p` must point at 8 readable bytes.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn widen(p: *const i8) -> __m256 {
        // SAFETY: the caller guarantees 8 readable bytes; the load is unaligned.
        unsafe { _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(p.cast()))) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let pair = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let pair = _mm_add_ps(pair, _mm_movehl_ps(pair, pair));
        let one = _mm_add_ss(pair, _mm_shuffle_ps::<0b01>(pair, pair));
        _mm_cvtss_f32(one)
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn add_assign(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}

/// The exact (erf) GELU, as candle's `gelu_erf` and BERT's "gelu".
fn gelu_erf(v: f32) -> f32 {
    0.5 * v * (1.0 + candle_core::cpu::erf::erf_f32(v * std::f32::consts::FRAC_1_SQRT_2))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random floats in [-1, 1).
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// Every token count (tiles of four and leftovers), odd and even output counts, and
    /// sizes that split across threads: the kernels equal a plain product with the
    /// dequantised weights, and those stay within half a step of the originals.
    #[test]
    fn linear_matches_a_plain_product_of_the_dequantised_weights() {
        for (inputs, outputs) in [(8, 1), (16, 3), (384, 384), (384, 1536), (1536, 385)] {
            let weight = noise(inputs * outputs, inputs as u64 * 31 + outputs as u64);
            let bias = noise(outputs, 7);
            let lin = Linear::quantize(&weight, bias.clone(), inputs);
            for (o, row) in weight.chunks_exact(inputs).enumerate() {
                for (i, w) in row.iter().enumerate() {
                    let back = f32::from(lin.weight[o * inputs + i]) * lin.scale[o];
                    assert!((back - w).abs() <= lin.scale[o] / 2.0 + 1e-7);
                }
            }
            for m in [1, 2, 3, 4, 5, 9, 17] {
                let x = noise(m * inputs, m as u64);
                let mut y = vec![0f32; m * outputs];
                lin.apply(&x, m, &mut y, &mut Vec::new());
                let mut generic = vec![0f32; m * outputs];
                kernel_generic(&lin.weight, inputs, &x, m, &mut generic);
                for t in 0..m {
                    for o in 0..outputs {
                        let exact: f64 = (0..inputs)
                            .map(|i| {
                                f64::from(lin.weight[o * inputs + i])
                                    * f64::from(lin.scale[o])
                                    * f64::from(x[t * inputs + i])
                            })
                            .sum::<f64>()
                            + f64::from(bias[o]);
                        let got = f64::from(y[t * outputs + o]);
                        let tol = 1e-4 * (1.0 + exact.abs());
                        assert!(
                            (got - exact).abs() < tol,
                            "{inputs}x{outputs} m={m} t={t} o={o}: {got} vs {exact}"
                        );
                        let g = f64::from(generic[o * m + t] * lin.scale[o] + bias[o]);
                        assert!((g - exact).abs() < tol, "generic kernel: {g} vs {exact}");
                    }
                }
            }
        }
    }

    #[test]
    fn gelu_and_layer_norm_match_their_definitions() {
        assert_eq!(gelu_erf(0.0), 0.0);
        assert!((gelu_erf(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu_erf(-1.0) + 0.158_655_3).abs() < 1e-6);
        let norm = LayerNorm {
            gamma: vec![2.0; 4],
            beta: vec![1.0; 4],
        };
        let mut x = vec![1.0, 2.0, 3.0, 4.0];
        norm.apply(&mut x, 4, 0.0);
        // mean 2.5, variance 1.25: (x − 2.5) / √1.25 × 2 + 1.
        let expected = [-1.683_281_6, 0.105_572_8, 1.894_427_2, 3.683_281_6];
        for (a, b) in x.iter().zip(expected) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
