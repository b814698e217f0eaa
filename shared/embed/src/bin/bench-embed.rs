//! Embedding latency and throughput: one short query (the recall path) and batches of 32
//! short memories (the write-behind path), for MiniLM and the lexical fallback.
//!
//!     ZERODB_MINILM_DIR="$(./infra/fetch-model.sh)" \
//!       cargo run --profile perf -p zerodb-embed --bin bench-embed [-- RUNS] [--keep-env]
//!
//! Like a server should, it calls `set_default_inference_threads` before any thread starts
//! (RAYON_NUM_THREADS = cores unless set); `--keep-env` skips that, to measure without it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use zerodb_embed::{Embedder, LexicalEmbedder, MiniLmEmbedder};

const QUERIES: [&str; 10] = [
    "editor preferences",
    "when is the dentist appointment",
    "what did Alice say about the deadline",
    "flight to Lisbon",
    "favourite programming language",
    "how much revenue last quarter",
    "which database does the project use",
    "user's preferred name",
    "allergies",
    "where does Bob live",
];

const MEMORY: &str =
    "Alice mentioned that she prefers dark mode, vim keybindings and a 4-space indent";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// p50/p95/max of `runs` single-query calls, after a few unmeasured ones.
async fn single(e: &dyn Embedder, runs: usize) -> (Duration, Duration, Duration) {
    for q in QUERIES {
        e.embed(&[q.to_string()]).await.expect("embed");
    }
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let text = vec![QUERIES[i % QUERIES.len()].to_string()];
        let t = Instant::now();
        let v = e.embed(&text).await.expect("embed");
        times.push(t.elapsed());
        std::hint::black_box(v);
    }
    times.sort();
    (
        percentile(&times, 0.5),
        percentile(&times, 0.95),
        times[times.len() - 1],
    )
}

/// Texts per second over `batches` calls of 32 texts each.
async fn batch_throughput(e: &dyn Embedder, texts: &[String], batches: usize) -> f64 {
    e.embed(texts).await.expect("warm-up");
    let t = Instant::now();
    for _ in 0..batches {
        std::hint::black_box(e.embed(texts).await.expect("embed"));
    }
    (batches * texts.len()) as f64 / t.elapsed().as_secs_f64()
}

fn report(name: &str, (p50, p95, max): (Duration, Duration, Duration), runs: usize) {
    println!(
        "{name:<44} p50 {:>8.3} ms   p95 {:>8.3} ms   max {:>8.3} ms   ({runs} runs)",
        ms(p50),
        ms(p95),
        ms(max)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--keep-env") {
        // SAFETY: first thing in main, before the runtime or anything else spawns threads.
        unsafe { zerodb_embed::set_default_inference_threads() };
    }
    let runs: usize = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(200)
        .max(1);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(bench(runs));
}

async fn bench(runs: usize) {
    let short: Vec<String> = (0..32)
        .map(|i| format!("{MEMORY} (note {i}, {})", QUERIES[i % QUERIES.len()]))
        .collect();
    let long_text: String = (0..300).map(|i| format!("{} ", QUERIES[i % 10])).collect();
    let long: Vec<String> = (0..32).map(|i| format!("{i} {long_text}")).collect();
    println!(
        "threads: RAYON_NUM_THREADS={}, available cores {}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into()),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let lexical = LexicalEmbedder::new(384);
    report(
        "lexical: single short query",
        single(&lexical, runs).await,
        runs,
    );
    println!(
        "lexical: batches of 32 short texts            {:>10.0} texts/s",
        batch_throughput(&lexical, &short, 200).await
    );

    let Some(dir) = std::env::var_os("ZERODB_MINILM_DIR").map(PathBuf::from) else {
        eprintln!(
            "ZERODB_MINILM_DIR is not set: run ./infra/fetch-model.sh and point it at the output"
        );
        std::process::exit(2);
    };
    let t = Instant::now();
    let minilm = MiniLmEmbedder::load(&dir).expect("load model");
    println!(
        "minilm: load (with warm-up pass)              {:>10.1} ms",
        ms(t.elapsed())
    );
    let pieces = |texts: &[&str]| -> (usize, usize) {
        let n: Vec<usize> = texts
            .iter()
            .map(|t| minilm.token_ids(t).expect("tokenize").len())
            .collect();
        (
            n.iter().copied().min().unwrap_or(0),
            n.iter().copied().max().unwrap_or(0),
        )
    };
    let short_refs: Vec<&str> = short.iter().map(String::as_str).collect();
    println!(
        "minilm: word pieces per text: queries {:?}, short memories {:?}, long texts {:?}",
        pieces(&QUERIES),
        pieces(&short_refs),
        pieces(&[long_text.as_str()])
    );
    report(
        "minilm: single short query (async embed)",
        single(&minilm, runs).await,
        runs,
    );

    // The same on the calling thread: the difference is the spawn_blocking hop.
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let t = Instant::now();
        std::hint::black_box(
            minilm
                .embed_blocking(&[QUERIES[i % QUERIES.len()]])
                .expect("embed"),
        );
        times.push(t.elapsed());
    }
    times.sort();
    report(
        "minilm: single short query (embed_blocking)",
        (
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            times[runs - 1],
        ),
        runs,
    );

    let long_runs = (runs / 4).max(10);
    let mut times = Vec::with_capacity(long_runs);
    for _ in 0..long_runs {
        let t = Instant::now();
        std::hint::black_box(minilm.embed(&long[..1]).await.expect("embed"));
        times.push(t.elapsed());
    }
    times.sort();
    report(
        "minilm: single 256-piece text",
        (
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            times[long_runs - 1],
        ),
        long_runs,
    );
    // A pasted document: cut to MAX_TEXT_BYTES, tokenised, truncated to 256 pieces.
    let huge = vec!["lorem ipsum dolor sit amet, consectetur adipiscing elit ".repeat(1800)];
    let mut times = Vec::with_capacity(10);
    for _ in 0..10 {
        let t = Instant::now();
        std::hint::black_box(minilm.embed(&huge).await.expect("embed"));
        times.push(t.elapsed());
    }
    times.sort();
    report(
        &format!("minilm: single {} KB text", huge[0].len() / 1000),
        (percentile(&times, 0.5), percentile(&times, 0.95), times[9]),
        10,
    );
    println!(
        "minilm: batches of 32 short texts             {:>10.1} texts/s",
        batch_throughput(&minilm, &short, 10).await
    );
    println!(
        "minilm: batches of 32 texts of 256 pieces     {:>10.1} texts/s",
        batch_throughput(&minilm, &long, 2).await
    );
}
