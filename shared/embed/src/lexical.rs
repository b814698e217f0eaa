//! The fallback embedder for when no model is available: feature hashing of words and
//! character trigrams. It matches texts that SHARE WORDS (or parts of words), not texts
//! that mean the same thing: "editor preferences" finds "preferred editor" but not
//! "Alice likes vim". Recall-by-meaning needs MiniLM or an embedding service.

use async_trait::async_trait;

use crate::{EmbedError, Embedder, MAX_TEXT_BYTES, check_count, clip, l2_normalize};

const NAME: &str = "lexical-v1";

/// A word's trigrams together weigh half as much as the word itself: whole-word matches
/// dominate, and trigrams let "keybinding" meet "keybindings" or a typo.
const TRIGRAM_SHARE: f32 = 0.5;

/// Deterministic lexical embedder. Vectors are stable across runs, machines and Rust
/// versions (the hash is spelled out here), so they can be stored.
#[derive(Debug, Clone)]
pub struct LexicalEmbedder {
    dims: usize,
}

impl LexicalEmbedder {
    /// `dims` buckets (at least 1; 256–1024 is sensible).
    pub fn new(dims: usize) -> Self {
        LexicalEmbedder { dims: dims.max(1) }
    }

    /// The vector of one text; the zero vector when the text has no words.
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0.0f32; self.dims];
        let mut trigram = String::new();
        for word in words(clip(text, MAX_TEXT_BYTES)) {
            let stem = stem(&word);
            self.add(&mut v, b'w', stem, 1.0);

            // Trigrams of the word with boundary marks, so prefixes and suffixes count.
            let chars: Vec<char> = std::iter::once('<')
                .chain(word.chars())
                .chain(std::iter::once('>'))
                .collect();
            let n = chars.len().saturating_sub(2);
            if n == 0 {
                continue;
            }
            let weight = TRIGRAM_SHARE / (n as f32).sqrt();
            for w in chars.windows(3) {
                trigram.clear();
                trigram.extend(w);
                self.add(&mut v, b't', &trigram, weight);
            }
        }
        l2_normalize(&mut v);
        v
    }

    /// Adds `weight` to the feature's bucket with the feature's sign; signs make collisions
    /// cancel on average instead of piling up.
    fn add(&self, v: &mut [f32], kind: u8, feature: &str, weight: f32) {
        let h = hash(kind, feature);
        let bucket = (h % self.dims as u64) as usize;
        let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
        v[bucket] += sign * weight;
    }
}

/// Lowercased words: runs of letters and digits. Any other visible character that is not
/// ASCII punctuation (an emoji, a symbol) is a word of its own, so "🚀" still matches "🚀".
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    let mut chars = text.chars().peekable();
    std::iter::from_fn(move || {
        loop {
            let c = chars.next()?;
            if c.is_alphanumeric() {
                let mut word: String = c.to_lowercase().collect();
                while let Some(&next) = chars.peek() {
                    if !next.is_alphanumeric() {
                        break;
                    }
                    word.extend(next.to_lowercase());
                    chars.next();
                }
                return Some(word);
            }
            if !c.is_whitespace() && !c.is_control() && !c.is_ascii_punctuation() {
                return Some(c.to_string());
            }
        }
    })
}

/// Light English suffix stripping so plural and tense forms share a feature: a plural "s"
/// first, then one of "ing", "ed", "ly". Deliberately crude (no dictionary): "keybindings"
/// and "keybinding" both become "keybind", "preferred" becomes "preferr".
fn stem(word: &str) -> &str {
    if !word.is_ascii() {
        return word;
    }
    let mut w = word;
    if let Some(rest) = w.strip_suffix('s')
        && rest.len() >= 3
        && !rest.ends_with('s')
    {
        w = rest;
    }
    for suffix in ["ing", "ed", "ly"] {
        if let Some(rest) = w.strip_suffix(suffix)
            && rest.len() >= 3
        {
            return rest;
        }
    }
    w
}

/// FNV-1a over a kind byte and the feature, finished with splitmix64's mixer so that both
/// the low bits (bucket) and the top bit (sign) are well spread.
fn hash(kind: u8, feature: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::iter::once(kind).chain(feature.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[async_trait]
impl Embedder for LexicalEmbedder {
    fn name(&self) -> &str {
        NAME
    }

    fn dims(&self) -> usize {
        self.dims
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        check_count(texts)?;
        // Microseconds per text: cheaper inline than a hop to a blocking thread.
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_and_lowercase() {
        let w: Vec<String> = words("Alice's VIM-keybindings, café 🚀!\u{0}\t42").collect();
        assert_eq!(w, ["alice", "s", "vim", "keybindings", "café", "🚀", "42"]);
    }

    #[test]
    fn stems_are_crude_but_stable() {
        assert_eq!(stem("preferences"), "preference");
        assert_eq!(stem("prefers"), "prefer");
        assert_eq!(stem("class"), "class");
        assert_eq!(stem("bus"), "bus");
        assert_eq!(stem("naïves"), "naïves");
        assert_eq!(stem("keybindings"), "keybind");
        assert_eq!(stem("keybinding"), "keybind");
        assert_eq!(stem("sing"), "sing");
    }

    #[test]
    fn hash_is_pinned() {
        // Stored vectors depend on these values: changing the hash means a new NAME.
        // (Expected value computed independently in Python from the same definition.)
        assert_ne!(hash(b'w', "vim"), hash(b't', "vim"));
        assert_eq!(hash(b'w', "vim"), 0x1506_b03e_5e2f_b75e);
    }
}
