//! Latency of embedding one short query with MiniLM, the floor of a recall.
//!
//! `ZERODB_MINILM_DIR=… RAYON_NUM_THREADS=N cargo run --profile perf -p zerodb-embed --example query_latency`

use std::time::Instant;

use zerodb_embed::Embedder;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::var("ZERODB_MINILM_DIR")?;
    let embedder = zerodb_embed::MiniLmEmbedder::load(std::path::Path::new(&dir))?;
    let queries = [
        "editor preferences",
        "what did the team decide about pricing",
        "renewable energy storage trends 2026",
    ];
    for i in 0..10 {
        embedder.embed(&[format!("warm up {i}")]).await?;
    }
    let mut times: Vec<f64> = Vec::new();
    for i in 0..200 {
        let q = format!("{} {i}", queries[i % queries.len()]);
        let t = Instant::now();
        embedder.embed(&[q]).await?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "threads {}: one query p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        candle_core::utils::get_num_threads(),
        times[times.len() / 2],
        times[times.len() * 95 / 100],
        times[times.len() - 1]
    );
    Ok(())
}
