//! Compact vectors: one f32 scale and one signed byte per dimension (388 bytes for
//! MiniLM's 384 dimensions, a quarter of f32), so a namespace's records stay small in
//! DynamoDB and a 1 MB query page holds over a thousand of them.
//!
//! For unit vectors the rounding error moves a cosine similarity by well under 0.01
//! (tested below), far less than the gaps ranking depends on.

/// An embedding as stored, with the name of the embedder that made it: vectors of
/// different embedders are never compared.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVector {
    pub model: String,
    /// `scale` (f32, little-endian) then one i8 per dimension.
    pub bytes: Vec<u8>,
}

impl StoredVector {
    /// Quantises a vector: each component becomes round(x / scale) with
    /// scale = max|x| / 127.
    pub fn encode(model: &str, v: &[f32]) -> StoredVector {
        let max = v
            .iter()
            .filter(|x| x.is_finite())
            .fold(0f32, |m, x| m.max(x.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 0.0 };
        let mut bytes = Vec::with_capacity(4 + v.len());
        bytes.extend_from_slice(&scale.to_le_bytes());
        for x in v {
            let q = if scale > 0.0 && x.is_finite() {
                (x / scale).round().clamp(-127.0, 127.0) as i8
            } else {
                0
            };
            bytes.push(q as u8);
        }
        StoredVector {
            model: model.to_owned(),
            bytes,
        }
    }

    pub fn dims(&self) -> usize {
        self.bytes.len().saturating_sub(4)
    }

    fn scale(&self) -> f32 {
        match self.bytes.get(..4) {
            Some(b) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            None => 0.0,
        }
    }

    /// Dot product with a full-precision query vector; 0 when the lengths differ.
    pub fn dot(&self, query: &[f32]) -> f32 {
        if self.dims() != query.len() {
            return 0.0;
        }
        let mut acc = 0f32;
        for (b, q) in self.bytes[4..].iter().zip(query) {
            acc += f32::from(*b as i8) * q;
        }
        acc * self.scale()
    }

    /// Dot product with a query quantised the same way ([`QueryVector`]): integer
    /// multiply-adds, which the compiler vectorises, then one float scale. The query's own
    /// rounding moves the result by about as much as the stored side's (well under 0.01).
    pub fn dot_quantized(&self, q: &QueryVector) -> f32 {
        if self.dims() != q.values.len() {
            return 0.0;
        }
        dot_i8(&self.bytes[4..], &q.values) as f32 * self.scale() * q.scale
    }

    /// Whether this vector was made by `model` for vectors of `dims` dimensions.
    pub fn usable_for(&self, model: &str, dims: usize) -> bool {
        self.model == model && self.dims() == dims
    }
}

/// Σ aᵢ·bᵢ over int8 values (`a` holds them as bytes). A recall runs it once per memory in
/// scope, so on x86 it is compiled a second time for AVX2 (twice the lanes of the SSE2
/// baseline) and picked at run time; the feature check is one cached load.
fn dot_i8(a: &[u8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { dot_i8_avx2(a, b) };
    }
    dot_i8_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_i8_avx2(a: &[u8], b: &[i8]) -> i32 {
    dot_i8_portable(a, b)
}

#[inline(always)]
fn dot_i8_portable(a: &[u8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(a, b)| i32::from(*a as i8) * i32::from(*b))
        .sum()
}

/// A query vector quantised like stored ones, for [`StoredVector::dot_quantized`].
pub struct QueryVector {
    scale: f32,
    values: Vec<i8>,
}

impl QueryVector {
    pub fn new(v: &[f32]) -> Self {
        let stored = StoredVector::encode("", v);
        QueryVector {
            scale: stored.scale(),
            values: stored.bytes[4..].iter().map(|b| *b as i8).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u32, n: usize) -> Vec<f32> {
        // A deterministic pseudo-random direction.
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        let mut v: Vec<f32> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x as f32 / u32::MAX as f32) - 0.5
            })
            .collect();
        let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        v.iter_mut().for_each(|a| *a /= norm);
        v
    }

    #[test]
    fn quantised_dot_products_stay_within_a_hundredth() {
        for s in 1..50 {
            let a = unit(s, 384);
            let b = unit(s + 1000, 384);
            let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let stored = StoredVector::encode("m", &a);
            assert_eq!(stored.bytes.len(), 388);
            assert!((stored.dot(&b) - exact).abs() < 0.01, "seed {s}");
            assert!((stored.dot(&a) - 1.0).abs() < 0.01);
        }
    }

    #[test]
    fn quantised_queries_agree_with_full_precision_ones() {
        for s in 1..50 {
            let a = unit(s, 384);
            let b = unit(s + 500, 384);
            let stored = StoredVector::encode("m", &a);
            let q = QueryVector::new(&b);
            assert!(
                (stored.dot_quantized(&q) - stored.dot(&b)).abs() < 0.01,
                "seed {s}"
            );
        }
        let q = QueryVector::new(&unit(1, 8));
        assert_eq!(
            StoredVector::encode("m", &unit(2, 9)).dot_quantized(&q),
            0.0
        );
    }

    #[test]
    fn degenerate_vectors_score_zero() {
        let zero = StoredVector::encode("m", &[0.0; 8]);
        assert_eq!(zero.dot(&[1.0; 8]), 0.0);
        assert_eq!(zero.dot(&[1.0; 7]), 0.0, "length mismatch");
        let nan = StoredVector::encode("m", &[f32::NAN, 1.0]);
        assert!(nan.dot(&[1.0, 1.0]).is_finite());
    }
}
