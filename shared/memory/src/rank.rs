//! Ranking for recall. A memory's score is
//!
//! ```text
//! score = 0.70 · similarity + 0.15 · lexical + 0.10 · importance + 0.05 · recency
//! ```
//!
//! - `similarity`: cosine of the query's and the memory's embeddings, clamped to [0, 1];
//! - `lexical`: the share of the query's distinct terms (lowercased, stop words dropped,
//!   light suffix stemming) that occur in the memory;
//! - `importance`: as stored, 0–1;
//! - `recency`: 0.5^(age / 30 days), 1 for a memory written now.
//!
//! Meaning dominates; exact words break near-ties (names, codes, ids that embeddings blur);
//! importance and recency order otherwise equal memories. The weights sum to 1, so a
//! score is in [0, 1].

use std::collections::HashSet;

pub const W_SIMILARITY: f64 = 0.70;
pub const W_LEXICAL: f64 = 0.15;
pub const W_IMPORTANCE: f64 = 0.10;
pub const W_RECENCY: f64 = 0.05;
/// Half-life of the recency term.
pub const RECENCY_HALF_LIFE_DAYS: f64 = 30.0;

const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "do", "does", "did", "for", "from",
    "has", "have", "had", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "of",
    "on", "or", "our", "so", "that", "the", "their", "them", "they", "this", "to", "was", "we",
    "were", "what", "when", "where", "which", "who", "whom", "why", "will", "with", "you", "your",
    "about", "can", "should", "would", "could", "there", "these", "those", "any", "all",
];

/// Crude English stemming: enough that "prefers", "preferred" and "preferring" meet.
fn stem(word: &str) -> String {
    let w = word;
    for suffix in ["ingly", "edly", "ing", "ies", "ied", "ed", "es", "ly", "s"] {
        if let Some(base) = w.strip_suffix(suffix)
            && base.chars().count() >= 3
        {
            return match suffix {
                "ies" | "ied" => format!("{base}y"),
                _ => base.to_owned(),
            };
        }
    }
    w.to_owned()
}

/// The distinct terms of a text.
pub fn terms(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

/// A query's terms, prepared for matching against many texts.
pub struct QueryTerms {
    terms: Vec<String>,
    /// First characters of the terms: a word starting with anything else cannot match,
    /// which rules out most words without lowercasing or stemming them.
    firsts: Vec<char>,
}

impl QueryTerms {
    pub fn new(query: &str) -> Self {
        let mut terms: Vec<String> = terms(query).into_iter().collect();
        terms.truncate(64);
        let firsts = terms.iter().filter_map(|t| t.chars().next()).collect();
        QueryTerms { terms, firsts }
    }

    /// Share of the query's terms found in `text`.
    pub fn lexical(&self, text: &str) -> f64 {
        if self.terms.is_empty() {
            return 0.0;
        }
        let mut hits = 0u64;
        for w in text.split(|c: char| !c.is_alphanumeric()) {
            let Some(first) = w.chars().next() else {
                continue;
            };
            if !first.to_lowercase().any(|c| self.firsts.contains(&c)) {
                continue;
            }
            let s = stem(&w.to_lowercase());
            for (i, t) in self.terms.iter().enumerate() {
                if *t == s {
                    hits |= 1 << i;
                }
            }
        }
        f64::from(hits.count_ones()) / self.terms.len() as f64
    }
}

pub fn recency(age_ms: i64) -> f64 {
    let days = (age_ms.max(0) as f64) / 86_400_000.0;
    0.5f64.powf(days / RECENCY_HALF_LIFE_DAYS)
}

/// The score without its lexical part; adding `W_LEXICAL · lexical` completes it.
pub fn base_score(similarity: f64, importance: f64, recency: f64) -> f64 {
    W_SIMILARITY * similarity.clamp(0.0, 1.0)
        + W_IMPORTANCE * importance.clamp(0.0, 1.0)
        + W_RECENCY * recency.clamp(0.0, 1.0)
}

/// Indices of the `k` best candidates by full score, best first, computing the (costly)
/// lexical term only for candidates that could still reach the top `k`: a candidate whose
/// base score plus the largest possible lexical bonus stays below the k-th best base score
/// cannot enter. Returns (index, score).
pub fn top_k(bases: &[f64], k: usize, lexical_of: impl Fn(usize) -> f64) -> Vec<(usize, f64)> {
    if k == 0 || bases.is_empty() {
        return Vec::new();
    }
    // The k-th best base score, found in linear time (no full sort of every memory).
    let mut sorted: Vec<f64> = bases.to_vec();
    let kth = (k - 1).min(sorted.len() - 1);
    let (_, kth_base, _) = sorted.select_nth_unstable_by(kth, |a, b| b.total_cmp(a));
    let kth_base = *kth_base;
    let mut scored: Vec<(usize, f64)> = (0..bases.len())
        .filter(|&i| bases[i] + W_LEXICAL >= kth_base)
        .map(|i| (i, bases[i] + W_LEXICAL * lexical_of(i)))
        .collect();
    // Ties keep the earlier (newer) memory first.
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain form of the lexical term, the reference `QueryTerms::lexical` must match.
    fn lexical(query_terms: &HashSet<String>, text: &str) -> f64 {
        if query_terms.is_empty() {
            return 0.0;
        }
        let found = terms(text);
        let hits = query_terms.iter().filter(|t| found.contains(*t)).count();
        hits as f64 / query_terms.len() as f64
    }

    #[test]
    fn terms_drop_stop_words_and_stem() {
        let t = terms("What does Alice prefer? She prefers VIM keybindings!");
        assert!(t.contains("prefer"));
        assert!(t.contains("keybinding"));
        assert!(t.contains("vim"));
        assert!(!t.contains("what"));
        assert!(!t.contains("does"));
    }

    #[test]
    fn lexical_is_the_share_of_query_terms_found() {
        let q = terms("dark mode editor");
        assert!((lexical(&q, "Alice likes dark mode") - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(lexical(&terms("the of"), "anything"), 0.0);
    }

    #[test]
    fn prepared_query_terms_agree_with_the_plain_form() {
        for (q, t) in [
            ("dark mode editor", "Alice likes dark mode"),
            ("Prefers VIM", "she prefers vim keybindings"),
            ("Ünïcode Straße", "über straße"),
            ("the of", "anything"),
            ("battery costs", "Battery storage costs dropped"),
        ] {
            let plain = lexical(&terms(q), t);
            assert!(
                (QueryTerms::new(q).lexical(t) - plain).abs() < 1e-12,
                "{q} / {t}"
            );
        }
    }

    #[test]
    fn recency_halves_every_thirty_days() {
        assert!((recency(0) - 1.0).abs() < 1e-12);
        assert!((recency(30 * 86_400_000) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn pruned_top_k_equals_exhaustive_ranking() {
        // Pseudo-random bases and lexical scores; pruning must not change the answer.
        let mut x: u64 = 42;
        let mut rnd = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let bases: Vec<f64> = (0..2000).map(|_| rnd() * 0.85).collect();
        let lex: Vec<f64> = (0..2000).map(|_| rnd()).collect();
        for k in [1, 5, 10, 100] {
            let got = top_k(&bases, k, |i| lex[i]);
            let mut all: Vec<(usize, f64)> = (0..bases.len())
                .map(|i| (i, bases[i] + W_LEXICAL * lex[i]))
                .collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            all.truncate(k);
            assert_eq!(got, all, "k = {k}");
        }
    }
}
