//! The MiniLM embedder on the real all-MiniLM-L6-v2 weights. These tests need the model
//! and FAIL (never skip) without it: `./infra/test.sh` fetches it, or run
//! `export ZERODB_MINILM_DIR="$(./infra/fetch-model.sh)"` first.

use std::path::PathBuf;
use std::sync::OnceLock;

use zerodb_embed::{Embedder, MiniLmEmbedder, dot};

fn model_dir() -> PathBuf {
    match std::env::var_os("ZERODB_MINILM_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => panic!(
            "ZERODB_MINILM_DIR is not set, and the MiniLM tests need the model: run \
             ./infra/test.sh, or `export ZERODB_MINILM_DIR=\"$(./infra/fetch-model.sh)\"` \
             and run the tests again"
        ),
    }
}

fn model() -> &'static MiniLmEmbedder {
    static MODEL: OnceLock<MiniLmEmbedder> = OnceLock::new();
    MODEL.get_or_init(|| {
        MiniLmEmbedder::load(&model_dir()).unwrap_or_else(|e| {
            panic!("loading the model failed ({e}); run ./infra/fetch-model.sh or ./infra/test.sh")
        })
    })
}

async fn embed(texts: &[&str]) -> Vec<Vec<f32>> {
    let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
    model().embed(&texts).await.expect("embed")
}

async fn embed_one(text: &str) -> Vec<f32> {
    embed(&[text]).await.remove(0)
}

/// One text through candle's batched (f32) pass, not the direct int8 path a lone short
/// text takes: what a batch must equal exactly.
async fn embed_one_batched(text: &str) -> Vec<f32> {
    model()
        .batched_only()
        .embed(&[text.to_owned()])
        .await
        .expect("embed")
        .remove(0)
}

fn assert_unit(v: &[f32]) {
    assert!(v.iter().all(|x| x.is_finite()), "non-finite component");
    let norm = dot(v, v).sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Candidates sorted by similarity to `query`, best first.
async fn rank(query: &str, candidates: &[&str]) -> Vec<(String, f32)> {
    let q = embed_one(query).await;
    let vs = embed(candidates).await;
    let mut scored: Vec<(String, f32)> = candidates
        .iter()
        .zip(&vs)
        .map(|(c, v)| (c.to_string(), dot(&q, v)))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored
}

#[tokio::test]
async fn vectors_have_384_unit_dimensions() {
    assert_eq!(model().dims(), 384);
    assert_eq!(model().name(), "all-MiniLM-L6-v2");
    assert_eq!(model().max_tokens(), 256);
    for v in embed(&["hello world", "Alice prefers dark mode", "x"]).await {
        assert_eq!(v.len(), 384);
        assert_unit(&v);
    }
    assert!(embed(&[]).await.is_empty());
}

#[tokio::test]
async fn embedding_is_deterministic() {
    let a = embed_one("The quick brown fox jumps over the lazy dog").await;
    let b = embed_one("The quick brown fox jumps over the lazy dog").await;
    assert_eq!(a, b);
}

#[tokio::test]
async fn batch_equals_one_by_one() {
    // Lengths from 2 to ~60 tokens, shuffled, so the batch is sorted, split and padded.
    let long = "word ".repeat(50);
    let texts = [
        "short",
        long.as_str(),
        "Alice prefers dark mode and vim keybindings",
        "",
        "Dentist appointment on Tuesday at 3pm, remember to bring the insurance card",
        "🚀",
        "A medium sized sentence about the quarterly revenue of the company.",
    ];
    let batch = embed(&texts).await;
    assert_eq!(batch.len(), texts.len());
    for (text, v) in texts.iter().zip(&batch) {
        let single = embed_one_batched(text).await;
        let diff = max_abs_diff(v, &single);
        assert!(
            diff < 1e-5,
            "text {text:?}: batch differs from single by {diff}"
        );
    }
}

#[tokio::test]
async fn larger_batches_keep_input_order() {
    // 70 texts: more than one forward pass, and input order differs from length order.
    let texts: Vec<String> = (0..70)
        .map(|i| format!("memory number {i} {}", "detail ".repeat((i * 7) % 23)))
        .collect();
    let batch = model().embed(&texts).await.expect("embed");
    for i in [0, 1, 33, 69] {
        let single = embed_one_batched(&texts[i]).await;
        assert!(
            max_abs_diff(&batch[i], &single) < 1e-5,
            "text {i} out of place"
        );
    }
}

#[tokio::test]
async fn editor_preferences_find_alice() {
    let memories = [
        "Dentist appointment on Tuesday at 3pm",
        "Quarterly revenue grew 12 percent compared to last year",
        "Alice prefers dark mode and vim keybindings",
        "Flight to Lisbon departs Friday at 7am from gate 22",
        "The office plants need watering twice a week",
        "Invoice 4471 was paid by bank transfer",
    ];
    let ranked = rank("editor preferences", &memories).await;
    assert_eq!(
        ranked[0].0, "Alice prefers dark mode and vim keybindings",
        "ranking: {ranked:?}"
    );
    // A real margin over the unrelated memories, not a coin flip.
    assert!(ranked[0].1 - ranked[1].1 > 0.1, "ranking: {ranked:?}");
}

#[tokio::test]
async fn paraphrases_rank_their_partner_first() {
    // Pairs sharing no content word: only meaning can connect them.
    let pairs = [
        (
            "How do I reset my password?",
            "I forgot my login credentials and cannot sign in",
        ),
        (
            "The car needs new tires",
            "The automobile's wheels are worn out and should be replaced",
        ),
        (
            "She is allergic to peanuts",
            "Eating nuts gives her a severe reaction",
        ),
        (
            "He enjoys cooking Italian food",
            "Making pasta and risotto is his favourite hobby",
        ),
        (
            "The server crashed last night",
            "Our backend went down overnight",
        ),
        (
            "Bob is learning to play the guitar",
            "He takes weekly lessons on a six-string instrument",
        ),
        (
            "It is raining heavily outside",
            "There is a downpour out there right now",
        ),
    ];
    let distractors = [
        "Quarterly revenue grew 12 percent compared to last year",
        "Flight to Lisbon departs Friday at 7am",
        "The office plants need watering twice a week",
    ];
    let candidates: Vec<&str> = pairs
        .iter()
        .map(|(_, b)| *b)
        .chain(distractors.iter().copied())
        .collect();
    let mut failures = Vec::new();
    for (query, partner) in pairs {
        let ranked = rank(query, &candidates).await;
        if ranked[0].0 != partner {
            failures.push(format!("{query:?} → {ranked:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "partners not ranked first:\n{}",
        failures.join("\n")
    );
}

/// Reference values from `tests/minilm_reference.py`: an independent float64 numpy BERT
/// forward pass (mean pooling, L2 normalisation) over the same model.safetensors, with a
/// pure-Python BERT tokenizer that agrees with tokenizer.json. Regenerate with:
/// `python3 shared/embed/tests/minilm_reference.py "$(./infra/fetch-model.sh)"` (needs
/// numpy, safetensors and tokenizers in a throwaway venv; see the script).
const REFERENCE: [(&str, &[u32], [f32; 16]); 3] = [
    (
        "Alice prefers dark mode and vim keybindings.",
        &[
            101, 5650, 19233, 2601, 5549, 1998, 6819, 2213, 3145, 8428, 4667, 2015, 1012, 102,
        ],
        [
            0.038888, -0.066195, -0.0513052, 0.0513167, -0.0615503, 0.0283407, 0.0292485,
            -0.0229921, 0.0693328, 0.084612, 0.0462666, 0.0124117, 0.021877, -0.0676674, 0.0776563,
            0.0694228,
        ],
    ),
    (
        "The quarterly revenue grew by 12 percent!",
        &[101, 1996, 12174, 6599, 3473, 2011, 2260, 3867, 999, 102],
        [
            0.0701315,
            0.00830541,
            -0.0312618,
            -0.0266837,
            0.00287519,
            -0.00979013,
            -0.0348783,
            0.0224101,
            -0.055406,
            0.0402803,
            0.0680035,
            0.133584,
            -0.0359992,
            -0.000881691,
            -0.0200964,
            -0.0102055,
        ],
    ),
    (
        "Café naïve résumé, CO₂ and emoji 🚀 too?",
        &[
            101, 7668, 15743, 13746, 1010, 20190, 1998, 7861, 29147, 2072, 100, 2205, 1029, 102,
        ],
        [
            -0.108211,
            -0.042129,
            0.0728051,
            0.0518696,
            0.0831974,
            0.00384432,
            0.0178571,
            -0.0198178,
            -0.00582439,
            -0.107169,
            0.0400792,
            -0.0736331,
            0.0155909,
            -0.0109935,
            0.0518534,
            -0.00383273,
        ],
    ),
];
/// cos(0,1), cos(0,2), cos(1,2) from the same script.
const REFERENCE_COS: [f32; 3] = [0.017473, 0.131219, 0.104128];

/// The pairwise cosines of the three reference texts' vectors, against the reference's.
fn assert_reference_cosines(got: &[Vec<f32>], tolerance: f32) {
    let cos = [
        dot(&got[0], &got[1]),
        dot(&got[0], &got[2]),
        dot(&got[1], &got[2]),
    ];
    for (c, r) in cos.iter().zip(REFERENCE_COS) {
        assert!(
            (c - r).abs() < tolerance,
            "cosines {cos:?} vs reference {REFERENCE_COS:?}"
        );
    }
}

#[tokio::test]
async fn matches_independent_reference() {
    let texts: Vec<&str> = REFERENCE.iter().map(|r| r.0).collect();
    let got = embed(&texts).await;
    for ((text, ids, dims), v) in REFERENCE.iter().zip(&got) {
        assert_eq!(
            model().token_ids(text).expect("tokenize"),
            *ids,
            "tokens of {text:?}"
        );
        let diff = max_abs_diff(&v[..16], dims);
        assert!(
            diff < 1e-3,
            "{text:?}: differs from the reference by {diff}"
        );
    }
    assert_reference_cosines(&got, 1e-3);
}

/// A lone short text takes the direct path (int8 weights): still close to the independent
/// reference, though not to its last digits.
#[tokio::test]
async fn a_lone_text_stays_close_to_the_independent_reference() {
    let mut got = Vec::new();
    for (text, _, dims) in REFERENCE.iter() {
        let v = embed_one(text).await;
        assert_unit(&v);
        let diff = max_abs_diff(&v[..16], dims);
        assert!(
            diff < 1e-2,
            "{text:?}: differs from the reference by {diff}"
        );
        let batched = embed_one_batched(text).await;
        assert!(
            dot(&v, &batched) > 0.999,
            "{text:?}: direct and batched passes disagree"
        );
        got.push(v);
    }
    assert_reference_cosines(&got, 5e-3);
}

#[tokio::test]
async fn long_texts_are_truncated_to_256_word_pieces() {
    let long: String = (0..600).map(|i| format!("topic{} ", i % 50)).collect();
    let ids = model().token_ids(&long).expect("tokenize");
    assert_eq!(ids.len(), 256);
    assert_eq!(ids[0], 101, "[CLS] first");
    assert_eq!(ids[255], 102, "[SEP] kept last");
    // Whatever comes after the cut changes nothing.
    let a = embed_one(&long).await;
    let b = embed_one(&format!(
        "{long} and a completely different ending about volcanoes"
    ))
    .await;
    assert!(max_abs_diff(&a, &b) < 1e-6);
    assert_unit(&a);
}

#[test]
fn long_texts_tokenize_as_if_whole() {
    // The embedder tokenises a prefix of a long text first; its pieces must be exactly
    // those of tokenising the whole (clipped) text, which is done here directly.
    let mut whole = tokenizers::Tokenizer::from_file(model_dir().join("tokenizer.json"))
        .expect("tokenizer.json");
    whole
        .with_truncation(Some(tokenizers::TruncationParams {
            max_length: 256,
            ..Default::default()
        }))
        .expect("truncation");
    whole.with_padding(None);
    let clip = |t: &str| -> String {
        let mut end = t.len().min(zerodb_embed::MAX_TEXT_BYTES);
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        t[..end].to_string()
    };
    let texts = [
        "lorem ipsum dolor sit amet, consectetur adipiscing elit ".repeat(1800),
        format!(
            "{}{}",
            " ".repeat(5000),
            "some words after a lot of blank ".repeat(300)
        ),
        format!("{} {}", "x".repeat(10_000), "word ".repeat(400)),
        "fn main(){let x=vec![1,2,3];println!(\"{x:?}\");}\n".repeat(400),
        "日本語のテキストは空白なしで続きます。".repeat(600),
        "ab\u{b}cd\u{c}ef gh\u{85}ij ".repeat(1000),
        "naïve café résumé\r\n\ttabbed ".repeat(700),
        "https://example.com/a/b?c=d&e=f#g ".repeat(500),
        "supercalifragilisticexpialidocious ".repeat(40),
        // Adversarial: 253 one-piece words, then a word joined across a vertical tab (which
        // the normaliser deletes) and long enough to become [UNK]. Cutting the prefix at the
        // tab would make piece 254 "xx" instead of [UNK].
        format!("{}xx\u{b}{} tail", "a ".repeat(253), "y".repeat(4000)),
    ];
    for text in &texts {
        let expected = whole
            .encode_fast(clip(text).as_str(), true)
            .expect("encode")
            .get_ids()
            .to_vec();
        let got = model().token_ids(text).expect("tokenize");
        assert_eq!(
            got,
            expected,
            "text starting {:?}",
            text.chars().take(30).collect::<String>()
        );
    }
}

#[tokio::test]
async fn odd_inputs_never_panic() {
    let huge = "lorem ipsum dolor sit amet ".repeat(4000); // ~108 KB
    let one_word = "x".repeat(100_000);
    let texts = [
        "",
        "   \n\t  ",
        huge.as_str(),
        one_word.as_str(),
        "🚀🔥👩‍👩‍👧‍👦 emoji only 🇵🇹",
        "\u{0}\u{1}\u{7}\u{1b}[31mred\u{1b}[0m\u{7f}\u{feff}",
        "\u{fffd}\u{fffd} \u{301}\u{301} lone combining marks",
        "مرحبا بالعالم and 日本語のテキスト and ελληνικά",
        "\u{202e}reversed\u{202c}",
        "[CLS] [SEP] [PAD] [MASK] [UNK]",
    ];
    let got = embed(&texts).await;
    assert_eq!(got.len(), texts.len());
    for v in &got {
        assert_eq!(v.len(), 384);
        assert_unit(v);
    }
}

#[tokio::test]
async fn too_many_texts_is_an_error_not_a_panic() {
    let texts = vec![String::from("x"); zerodb_embed::MAX_TEXTS_PER_CALL + 1];
    let err = model().embed(&texts).await.unwrap_err();
    assert!(
        matches!(err, zerodb_embed::EmbedError::TooManyInputs { .. }),
        "{err}"
    );
}

#[test]
fn loading_a_directory_without_the_model_names_the_missing_files() {
    let dir = std::env::temp_dir();
    let err = MiniLmEmbedder::load(&dir.join("no-such-model-dir")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("model.safetensors") && text.contains("fetch-model.sh"),
        "{text}"
    );
}
