//! Latency of embedding one short query with MiniLM, the floor of a recall: the direct
//! path beside candle's batched forward pass, in the same run, with how far their vectors
//! differ.
//!
//! `ZERODB_MINILM_DIR=… RAYON_NUM_THREADS=N cargo run --profile perf -p zerodb-embed --example query_latency`

use std::time::Instant;

use zerodb_embed::{Embedder, MiniLmEmbedder};

const QUERIES: [&str; 3] = [
    "editor preferences",
    "what did the team decide about pricing",
    "renewable energy storage trends 2026",
];

async fn measure(label: &str, embedder: &MiniLmEmbedder) -> anyhow::Result<Vec<Vec<f32>>> {
    for i in 0..10 {
        embedder.embed(&[format!("warm up {i}")]).await?;
    }
    let mut times: Vec<f64> = Vec::new();
    let mut vectors = Vec::new();
    for i in 0..200 {
        let q = format!("{} {i}", QUERIES[i % QUERIES.len()]);
        let t = Instant::now();
        let v = embedder.embed(&[q]).await?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        vectors.extend(v);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{label:>8}, threads {}: one query p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        candle_core::utils::get_num_threads(),
        times[times.len() / 2],
        times[times.len() * 95 / 100],
        times[times.len() - 1]
    );
    Ok(vectors)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::var("ZERODB_MINILM_DIR")?;
    let embedder = MiniLmEmbedder::load(std::path::Path::new(&dir))?;
    let batched = measure("batched", &embedder.batched_only()).await?;
    let direct = measure("direct", &embedder).await?;
    let (mut max_diff, mut min_cos) = (0f32, 1f32);
    for (a, b) in batched.iter().zip(&direct) {
        for (x, y) in a.iter().zip(b) {
            max_diff = max_diff.max((x - y).abs());
        }
        min_cos = min_cos.min(zerodb_embed::dot(a, b));
    }
    println!("direct vs batched: max |Δ| {max_diff:.2e}, min cosine {min_cos:.7}");
    // Where the direct path stops paying: one text at the length limit it takes.
    let long = "the quarterly review covered pricing hiring and the roadmap ".repeat(12);
    let tokens = embedder.token_ids(&long)?.len().min(126);
    let words: Vec<&str> = long.split(' ').collect();
    let mut text = String::new();
    for w in words {
        if embedder.token_ids(&format!("{text} {w}"))?.len() > tokens {
            break;
        }
        text = format!("{text} {w}");
    }
    for (label, e) in [
        ("batched", embedder.batched_only()),
        ("direct", embedder.clone()),
    ] {
        let t = Instant::now();
        for _ in 0..20 {
            e.embed(&[text.clone()]).await?;
        }
        println!(
            "{label:>8}: one text of {} word pieces {:.2} ms",
            embedder.token_ids(&text)?.len(),
            t.elapsed().as_secs_f64() * 1e3 / 20.0
        );
    }
    Ok(())
}
