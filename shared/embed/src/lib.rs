//! Text embeddings for recall-by-meaning: one `Embedder` trait, three providers (MiniLM in
//! process, an OpenAI-compatible HTTP service, a lexical fallback) and the configuration
//! that picks one.
//!
//! Every provider returns L2-normalised vectors, so cosine similarity is a dot product
//! ([`dot`]). Memories are embedded in batches off the request path; a recall embeds its one
//! query inline, so single short texts are kept fast (see `src/bin/bench-embed.rs`).
//! No provider panics on any text: empty, huge, emoji or control characters.

mod bert;
mod config;
mod direct;
mod error;
mod http;
mod lexical;
mod minilm;

use async_trait::async_trait;

pub use config::{ConfigError, DEFAULT_LEXICAL_DIMS, EmbedderConfig, from_env};
pub use error::EmbedError;
pub use http::HttpEmbedder;
pub use lexical::LexicalEmbedder;
pub use minilm::{MINILM_FILES, MiniLmEmbedder, model_runtime, set_default_inference_threads};

/// At most this many texts in one `embed` call. Callers batch far below it; the cap stops a
/// bug upstream from turning into one unbounded allocation.
pub const MAX_TEXTS_PER_CALL: usize = 4096;

/// Texts are cut to their first this-many bytes (at a character boundary) before
/// tokenising. MiniLM reads at most 256 word pieces, which ordinary text fits in a few KiB,
/// so the cut changes nothing real; it bounds the cost of a megabyte pasted into a memory.
pub const MAX_TEXT_BYTES: usize = 32 * 1024;

/// Turns texts into vectors for similarity search.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// Stable identifier stored next to every vector ("all-MiniLM-L6-v2", "lexical-v1",
    /// "http:<model>"): vectors from different embedders must never be compared.
    fn name(&self) -> &str;

    /// Length of every vector this embedder returns.
    fn dims(&self) -> usize;

    /// One L2-normalised vector per text, in input order. A text that carries nothing to
    /// embed may yield the zero vector (the lexical embedder does for an empty text), which
    /// scores 0 against everything.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Dot product; for the unit vectors embedders return, the cosine similarity.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Scales `v` to unit length in place. Returns false (leaving `v` untouched) when `v` has no
/// direction: all zeros, or any non-finite component.
pub fn l2_normalize(v: &mut [f32]) -> bool {
    // f64 accumulation: 384+ squares in f32 lose enough bits to show in tests at 1e-6.
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return false;
    }
    let inv = (1.0 / norm) as f32;
    v.iter_mut().for_each(|x| *x *= inv);
    true
}

/// `text` cut to at most `max` bytes, ending on a character boundary.
pub(crate) fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Refuses calls with more than [`MAX_TEXTS_PER_CALL`] texts.
pub(crate) fn check_count(texts: &[String]) -> Result<(), EmbedError> {
    if texts.len() > MAX_TEXTS_PER_CALL {
        return Err(EmbedError::TooManyInputs {
            got: texts.len(),
            max: MAX_TEXTS_PER_CALL,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("héllo", 2), "h");
        assert_eq!(clip("héllo", 3), "hé");
        assert_eq!(clip("🚀🚀", 5), "🚀");
        assert_eq!(clip("abc", 10), "abc");
        assert_eq!(clip("", 0), "");
    }

    #[test]
    fn normalize_handles_degenerate_vectors() {
        let mut zero = vec![0.0; 4];
        assert!(!l2_normalize(&mut zero));
        let mut nan = vec![1.0, f32::NAN];
        assert!(!l2_normalize(&mut nan));
        let mut v = vec![3.0, 4.0];
        assert!(l2_normalize(&mut v));
        assert!((dot(&v, &v) - 1.0).abs() < 1e-6);
        assert_eq!(v, vec![0.6, 0.8]);
    }
}
