//! Benchmark of the embedded `Vectors` adapter (SQLite rows + in-memory int8 first pass +
//! exact f32 re-rank) at 10,000, 100,000 and 1,000,000 vectors of 384 dimensions:
//! upsert throughput in puts of 500 (every commit synced, as zerodb-local opens the store),
//! load time and resident memory of the search copy after reopening, query p50/p95 at
//! top 10 without and with metadata filters, recall@10 against an exact f32 brute force,
//! and that brute force's own latency (an AVX2 f32 scan on the same two threads) as the
//! baseline. Prints figures; asserts nothing (the tests do).
//!
//! The data is clustered like sentence embeddings: unit vectors around `n / 500` topic
//! directions (cosine ≈ 0.78 to their topic, ≈ 0.6 between two of a topic), a fifth of
//! them paraphrases of an earlier vector (cosine ≈ 0.995); queries are paraphrases of
//! stored vectors. Vectors, queries and the exact top 10 are written to
//! `target/bench-vectors/n<N>/{vectors,queries,topics,truth}.npy` for
//! `tests/bench/vectors_compare.py`, which runs Qdrant's and Chroma's embedded modes on
//! the same data.
//!
//! Run: `RAYON_NUM_THREADS=2 cargo run --profile perf -p zerodb-tests --bin bench-vectors [N ...]`
//! (default sizes 10000 100000 1000000).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde_json::{Map, Value, json};
use zerodb_domain::vectors::{IndexSpec, MAX_PUT, Metric, VectorItem, VectorQuery, Vectors};
use zerodb_store_embedded::{EmbeddedStore, OpenOptions};

const DIM: usize = 384;
const QUERIES: usize = 200;
const WARMUP: usize = 10;
const LANGS: [&str; 4] = ["en", "de", "fr", "es"];

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn normal(&mut self) -> f32 {
        let u = ((self.next() >> 11) as f64 / (1u64 << 53) as f64).max(1e-300);
        let v = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

/// `n` unit vectors (flat) and each one's topic.
fn generate(n: usize) -> (Vec<f32>, Vec<u32>) {
    let topics = (n / 500).max(20);
    let mut rng = Rng(0xC0FFEE);
    let centers: Vec<Vec<f32>> = (0..topics)
        .map(|_| {
            let mut c: Vec<f32> = (0..DIM).map(|_| rng.normal()).collect();
            normalize(&mut c);
            c
        })
        .collect();
    const CHUNK: usize = 10_000;
    let spread = 0.8 / (DIM as f32).sqrt();
    let para = 0.1 / (DIM as f32).sqrt();
    let parts: Vec<(Vec<f32>, Vec<u32>)> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut rng = Rng(c as u64 * 7919 + 1);
            let len = CHUNK.min(n - c * CHUNK);
            let (mut data, mut topic) = (Vec::with_capacity(len * DIM), Vec::with_capacity(len));
            for i in 0..len {
                let (mut v, t): (Vec<f32>, u32) = if i > 0 && rng.below(5) == 0 {
                    let j = rng.below(i);
                    let base = &data[j * DIM..(j + 1) * DIM];
                    (
                        base.iter().map(|x| x + para * rng.normal()).collect(),
                        topic[j],
                    )
                } else {
                    let t = rng.below(topics);
                    (
                        centers[t]
                            .iter()
                            .map(|x| x + spread * rng.normal())
                            .collect(),
                        t as u32,
                    )
                };
                normalize(&mut v);
                data.extend_from_slice(&v);
                topic.push(t);
            }
            (data, topic)
        })
        .collect();
    let mut data = Vec::with_capacity(n * DIM);
    let mut topic = Vec::with_capacity(n);
    for (d, t) in parts {
        data.extend_from_slice(&d);
        topic.extend_from_slice(&t);
    }
    (data, topic)
}

/// Paraphrases of stored vectors (cosine ≈ 0.96 to their source).
fn queries(data: &[f32], n: usize) -> Vec<Vec<f32>> {
    let mut rng = Rng(0xBEEF);
    let noise = 0.3 / (DIM as f32).sqrt();
    (0..QUERIES)
        .map(|_| {
            let j = rng.below(n);
            let mut q: Vec<f32> = data[j * DIM..(j + 1) * DIM]
                .iter()
                .map(|x| x + noise * rng.normal())
                .collect();
            normalize(&mut q);
            q
        })
        .collect()
}

/// Writes a little-endian `.npy` (format 1.0) of `shape`.
fn write_npy(path: &Path, descr: &str, shape: &[usize], bytes: &[u8]) -> anyhow::Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n', padded to 64 bytes.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat(total.div_ceil(64) * 64 - total));
    header.push('\n');
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    f.write_all(bytes)?;
    f.flush()?;
    Ok(())
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Dot products of `q` with each vector of `chunk`, eight lanes at a time.
#[inline(always)]
fn dots_lanes(chunk: &[f32], q: &[f32], out: &mut Vec<f32>) {
    for v in chunk.chunks_exact(DIM) {
        let mut acc = [0f32; 16];
        for (a, b) in v.chunks_exact(16).zip(q.chunks_exact(16)) {
            for j in 0..16 {
                acc[j] += a[j] * b[j];
            }
        }
        out.push(acc.iter().sum());
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dots_avx2(chunk: &[f32], q: &[f32], out: &mut Vec<f32>) {
    dots_lanes(chunk, q, out)
}

fn dots(chunk: &[f32], q: &[f32], out: &mut Vec<f32>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe { dots_avx2(chunk, q, out) };
        return;
    }
    dots_lanes(chunk, q, out)
}

/// The exact top `k` by cosine distance (1 − dot of unit vectors) among the vectors
/// `keep` admits: the f32 brute force, split across rayon's threads.
fn exact(
    data: &[f32],
    q: &[f32],
    k: usize,
    keep: &(dyn Fn(usize) -> bool + Sync),
) -> Vec<(f32, usize)> {
    const CHUNK: usize = 8192;
    let mut best: Vec<(f32, usize)> = data
        .par_chunks(CHUNK * DIM)
        .enumerate()
        .flat_map_iter(|(c, chunk)| {
            let mut d = Vec::with_capacity(CHUNK);
            dots(chunk, q, &mut d);
            let mut local: Vec<(f32, usize)> = d
                .into_iter()
                .enumerate()
                .map(|(i, dot)| (1.0 - dot, c * CHUNK + i))
                .filter(|(_, i)| keep(*i))
                .collect();
            if local.len() > k {
                local.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
                local.truncate(k);
            }
            local
        })
        .collect();
    best.sort_by(|a, b| a.0.total_cmp(&b.0));
    best.truncate(k);
    best
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

/// p50 and p95 in ms.
fn p50_p95(mut t: Vec<Duration>) -> (f64, f64) {
    t.sort();
    (pct(&t, 0.50), pct(&t, 0.95))
}

/// Recall@10 of `got` (keys `v<i>`) against `truth`; a result tied with the 10th to f32
/// rounding counts as found.
fn recall(got: &[(String, f32)], truth: &[(f32, usize)]) -> usize {
    let tenth = truth.last().map_or(f32::MAX, |t| t.0) + 1e-6;
    got.iter()
        .filter(|(k, d)| {
            let i: usize = k[1..].parse().unwrap();
            truth.iter().any(|t| t.1 == i) || *d <= tenth
        })
        .count()
}

fn open(dir: &Path) -> anyhow::Result<Arc<dyn Vectors>> {
    Ok(EmbeddedStore::open_with(dir, OpenOptions::default())?.vectors())
}

struct Row {
    n: usize,
    put_rate: f64,
    put_p50: f64,
    load_s: f64,
    rss_mib: f64,
    db_mib: f64,
    p50: f64,
    p95: f64,
    recall: f64,
    brute_p50: f64,
    brute_p95: f64,
    lang_p50: f64,
    lang_p95: f64,
    lang_recall: f64,
    topic_p50: f64,
    topic_p95: f64,
    topic_recall: f64,
}

async fn run(n: usize, out: &Path) -> anyhow::Result<Row> {
    let started = Instant::now();
    let (data, topics) = generate(n);
    let qs = queries(&data, n);
    let dir = out.join(format!("n{n}"));
    std::fs::create_dir_all(&dir)?;
    write_npy(
        &dir.join("vectors.npy"),
        "<f4",
        &[n, DIM],
        &f32_bytes(&data),
    )?;
    let flat_q: Vec<f32> = qs.iter().flatten().copied().collect();
    write_npy(
        &dir.join("queries.npy"),
        "<f4",
        &[QUERIES, DIM],
        &f32_bytes(&flat_q),
    )?;
    let topic_bytes: Vec<u8> = topics.iter().flat_map(|t| t.to_le_bytes()).collect();
    write_npy(&dir.join("topics.npy"), "<u4", &[n], &topic_bytes)?;
    eprintln!(
        "n={n}: data generated and written in {:.1?}",
        started.elapsed()
    );

    // The exact f32 brute force: ground truth and the baseline latency.
    let lang_of = |i: usize| i % LANGS.len();
    let mut truth = Vec::new();
    let mut brute_t = Vec::new();
    for q in &qs {
        let t = Instant::now();
        truth.push(exact(&data, q, 10, &|_| true));
        brute_t.push(t.elapsed());
    }
    let truth_bytes: Vec<u8> = truth
        .iter()
        .flat_map(|t| t.iter().flat_map(|(_, i)| (*i as i64).to_le_bytes()))
        .collect();
    write_npy(&dir.join("truth.npy"), "<i8", &[QUERIES, 10], &truth_bytes)?;
    let (brute_p50, brute_p95) = p50_p95(brute_t);

    let db = tempfile::tempdir_in(out)?;
    let spec = IndexSpec {
        name: "bench".into(),
        dimension: DIM,
        metric: Metric::Cosine,
        non_filterable: vec![],
    };
    let mut put_t = Vec::new();
    {
        let v = open(db.path())?;
        v.create_index(&spec).await?;
        let t = Instant::now();
        for start in (0..n).step_by(MAX_PUT) {
            let items: Vec<VectorItem> = (start..(start + MAX_PUT).min(n))
                .map(|i| {
                    let mut metadata = Map::new();
                    metadata.insert("topic".into(), json!(topics[i]));
                    metadata.insert("lang".into(), json!(LANGS[lang_of(i)]));
                    VectorItem {
                        key: format!("v{i}"),
                        data: data[i * DIM..(i + 1) * DIM].to_vec(),
                        metadata,
                    }
                })
                .collect();
            let one = Instant::now();
            v.put("bench", items).await?;
            put_t.push(one.elapsed());
        }
        let elapsed = t.elapsed();
        eprintln!("n={n}: put in {elapsed:.1?}");
    }
    let put_total: Duration = put_t.iter().sum();
    let put_rate = n as f64 / put_total.as_secs_f64();
    let (put_p50, _) = p50_p95(put_t);
    let db_mib = std::fs::read_dir(db.path())?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum::<u64>() as f64
        / (1 << 20) as f64;

    // Reopened: the first query loads the search copy.
    let v = open(db.path())?;
    let rss_before = rss_bytes();
    let t = Instant::now();
    let search = |vector: Vec<f32>, filter: Option<Value>| VectorQuery {
        vector,
        top_k: 10,
        filter,
        return_metadata: false,
    };
    v.query("bench", &search(qs[0].clone(), None)).await?;
    let load_s = t.elapsed().as_secs_f64();
    let rss_mib = (rss_bytes().saturating_sub(rss_before)) as f64 / (1 << 20) as f64;

    let measure = |filter: Option<Value>, keep: Box<dyn Fn(usize) -> bool + Sync>| {
        let v = Arc::clone(&v);
        let (data, qs, truth) = (&data, &qs, &truth);
        async move {
            for q in qs.iter().take(WARMUP) {
                v.query("bench", &search(q.clone(), filter.clone())).await?;
            }
            let (mut times, mut hits) = (Vec::new(), 0);
            for (i, q) in qs.iter().enumerate() {
                let t = Instant::now();
                let got = v.query("bench", &search(q.clone(), filter.clone())).await?;
                times.push(t.elapsed());
                let got: Vec<(String, f32)> =
                    got.into_iter().map(|m| (m.key, m.distance)).collect();
                let want = if filter.is_none() {
                    truth[i].clone()
                } else {
                    exact(data, q, 10, &*keep)
                };
                hits += recall(&got, &want);
            }
            let (p50, p95) = p50_p95(times);
            anyhow::Ok((p50, p95, hits as f64 / (10 * QUERIES) as f64))
        }
    };
    let (p50, p95, recall_all) = measure(None, Box::new(|_| true)).await?;
    // A quarter of the vectors match.
    let (lang_p50, lang_p95, lang_recall) = measure(
        Some(json!({"lang": "de"})),
        Box::new(move |i| lang_of(i) == 1),
    )
    .await?;
    // One topic in 20 (5% of the vectors) by `$in` over their numbers: a selective filter.
    let wanted: Vec<u32> = (0..(n / 500).max(20) as u32).step_by(20).collect();
    let topics_ref = topics.clone();
    let wanted_ref = wanted.clone();
    let (topic_p50, topic_p95, topic_recall) = measure(
        Some(json!({"topic": {"$in": wanted}})),
        Box::new(move |i| wanted_ref.contains(&topics_ref[i])),
    )
    .await?;
    drop(v);
    drop(db);
    let row = Row {
        n,
        put_rate,
        put_p50,
        load_s,
        rss_mib,
        db_mib,
        p50,
        p95,
        recall: recall_all,
        brute_p50,
        brute_p95,
        lang_p50,
        lang_p95,
        lang_recall,
        topic_p50,
        topic_p95,
        topic_recall,
    };
    eprintln!("n={n}: done in {:.1?}", started.elapsed());
    Ok(row)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let sizes: Vec<usize> = match std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<Vec<_>, _>>()?
    {
        s if s.is_empty() => vec![10_000, 100_000, 1_000_000],
        s => s,
    };
    let out = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/bench-vectors"
    ));
    std::fs::create_dir_all(&out)?;
    println!(
        "embedded Vectors adapter, {DIM} dims, cosine, top 10, {QUERIES} queries, synchronous=FULL, rayon threads {}",
        rayon::current_num_threads()
    );
    let mut rows = Vec::new();
    for n in sizes {
        let r = run(n, &out).await?;
        println!(
            "n={:>9}  put {:>8.0} vec/s (p50 {:.1} ms per 500)  load {:.2} s  RSS +{:.0} MiB ({:.0} B/vector)  db {:.0} MiB",
            r.n,
            r.put_rate,
            r.put_p50,
            r.load_s,
            r.rss_mib,
            r.rss_mib * (1 << 20) as f64 / r.n as f64,
            r.db_mib
        );
        println!(
            "             query p50 {:.2} ms p95 {:.2} ms recall@10 {:.4} | f32 brute force p50 {:.2} ms p95 {:.2} ms ({:.1}x) | lang=de p50 {:.2} p95 {:.2} recall {:.4} | topic $in p50 {:.2} p95 {:.2} recall {:.4}",
            r.p50,
            r.p95,
            r.recall,
            r.brute_p50,
            r.brute_p95,
            r.brute_p50 / r.p50,
            r.lang_p50,
            r.lang_p95,
            r.lang_recall,
            r.topic_p50,
            r.topic_p95,
            r.topic_recall
        );
        rows.push(r);
    }
    println!();
    println!(
        "| vectors | put vec/s | load s | RSS MiB | query p50 ms | p95 ms | recall@10 | f32 brute p50 ms | filter 25% p50/p95 ms | filter 5% p50/p95 ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.0} | {:.2} | {:.0} | {:.2} | {:.2} | {:.4} | {:.2} | {:.2} / {:.2} | {:.2} / {:.2} |",
            r.n,
            r.put_rate,
            r.load_s,
            r.rss_mib,
            r.p50,
            r.p95,
            r.recall,
            r.brute_p50,
            r.lang_p50,
            r.lang_p95,
            r.topic_p50,
            r.topic_p95
        );
    }
    Ok(())
}
