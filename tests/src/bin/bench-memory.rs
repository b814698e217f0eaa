//! Benchmark: memory on zerodb-local. Remember throughput at concurrency 1 and 32 (against
//! the unauthenticated health endpoint measured in the same run as a baseline), table calls
//! per request, and recall latency (p50/p95, query embedding included) over 10,000
//! memories in one namespace, and the first recalls right after 5,000 remembers into one
//! namespace (the worker still embedding them). Prints figures; asserts nothing (the tests
//! do that).
//!
//! Run: `ZERODB_MINILM_DIR="$(./infra/fetch-model.sh)" cargo run --profile perf -p zerodb-tests --bin bench-memory`

use std::time::{Duration, Instant};

use serde_json::json;
use zerodb_domain::auth::AuthSettings;
use zerodb_domain::rate::RateCounting;
use zerodb_domain::store::Stores;
use zerodb_tests::support::CountingTable;

const SUBJECTS: &[&str] = &[
    "Alice",
    "Bob",
    "The billing service",
    "Our CI pipeline",
    "The mobile app",
    "Priya",
    "The data team",
    "The staging cluster",
    "Marco",
    "The search index",
    "The onboarding flow",
    "Customer support",
    "The release train",
    "Kenji",
    "The payments API",
    "The design system",
];
const FACTS: &[&str] = &[
    "prefers dark mode and vim keybindings",
    "moved the weekly sync to Thursday afternoons",
    "runs on PostgreSQL 16 with nightly backups",
    "needs the quarterly report by the end of March",
    "switched from Jenkins to GitHub Actions last spring",
    "is allergic to peanuts and avoids shellfish",
    "caches embeddings in Redis with a one-day expiry",
    "deploys to three regions behind a global load balancer",
    "has a budget of forty thousand dollars this year",
    "reported latency spikes after the last upgrade",
    "writes commit messages in the imperative mood",
    "keeps feature flags in LaunchDarkly",
    "flies to Lisbon for the conference in May",
    "uses Terraform for every piece of infrastructure",
    "asked for concise answers without bullet points",
    "is blocked on the security review of the new login flow",
];
const QUERIES: &[&str] = &[
    "editor settings",
    "meeting schedule changes",
    "which database do we use",
    "report deadline",
    "continuous integration tooling",
    "food allergies",
    "caching strategy",
    "multi-region deployment",
    "yearly spending limit",
    "performance regression",
    "commit style guide",
    "feature toggles",
    "travel plans",
    "infrastructure as code",
    "answer formatting preferences",
    "what is blocking the login work",
];

struct Stats {
    rps: f64,
    p50: Duration,
    p95: Duration,
    calls_per_req: f64,
}

async fn run<F, Fut>(concurrency: usize, total: usize, counter: &CountingTable, f: F) -> Stats
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    counter.take();
    let per_task = total / concurrency;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_task);
            for i in 0..per_task {
                let s = Instant::now();
                f(t * per_task + i).await;
                lat.push(s.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let elapsed = start.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Stats {
        rps: all.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p95: pct(0.95),
        calls_per_req: counter.take() as f64 / all.len() as f64,
    }
}

fn content(i: usize) -> String {
    format!(
        "{} {} (note {i})",
        SUBJECTS[i % SUBJECTS.len()],
        FACTS[(i / SUBJECTS.len()) % FACTS.len()]
    )
}

fn row(name: &str, conc: usize, s: &Stats, base: Option<&Stats>) {
    println!(
        "{:<44} {:>4} {:>9.0} {:>8.2} {:>8.2} {:>8} {:>9.2}",
        name,
        conc,
        s.rps,
        s.p50.as_secs_f64() * 1e3,
        s.p95.as_secs_f64() * 1e3,
        base.map_or("-".to_owned(), |b| format!("{:.2}x", s.rps / b.rps)),
        s.calls_per_req
    );
}

fn main() -> anyhow::Result<()> {
    // SAFETY: first thing in main, before any thread exists (as zerodb-local does).
    unsafe { zerodb_embed::set_default_inference_threads() };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let stack = zerodb_local::open_stack(dir.path())?;
    let counting = CountingTable::new(stack.stores.table.clone());
    let stores = Stores {
        table: counting.clone(),
        ..stack.stores.clone()
    };
    let settings = AuthSettings {
        jwt_secret: zerodb_domain::ids::random_base62(64).into_bytes(),
        rate_limit_per_minute: u32::MAX,
        rate_counting: RateCounting::InProcess,
        limits: zerodb_domain::auth::AuthLimits::unlimited(),
    };
    let account = zerodb_local::create_account(stores.table.clone(), "bench").await?;
    // As zerodb-local builds it: its settings (the cached model), its memory service
    // (namespace cache, detached events), its workers running in the background.
    let ctx = zerodb_local::local_context(stores.clone(), settings, zerodb_local::local_settings());
    let memory = zerodb_memory::shared(&ctx).await?;
    let embedder = memory.embedder().clone();
    let app = zerodb_local::router(&ctx).await?;
    zerodb_local::spawn_workers(&ctx).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let key = account.root_key.expose().to_owned();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;

    let n: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16_000);
    println!(
        "zerodb-local memory benchmark; embedder {} ({} dims); client and server in one process, every commit synced.",
        embedder.name(),
        embedder.dims()
    );
    println!(
        "{:<44} {:>4} {:>9} {:>8} {:>8} {:>8} {:>9}",
        "scenario", "conc", "req/s", "p50 ms", "p95 ms", "vs base", "table/req"
    );
    let conc_list: &[usize] = if std::env::var_os("BENCH_SKIP_REMEMBER").is_some() {
        &[]
    } else {
        &[1, 32]
    };
    for &conc in conc_list {
        let total = if conc == 1 { n / 8 } else { n };
        let health = {
            let (c, b) = (client.clone(), base.clone());
            run(conc, total, &counting, move |_| {
                let (c, b) = (c.clone(), b.clone());
                async move {
                    let r = c
                        .get(format!("{b}/api/v1/health"))
                        .send()
                        .await
                        .expect("health");
                    assert!(r.status().is_success());
                }
            })
            .await
        };
        row(
            "GET /api/v1/health (no auth: baseline)",
            conc,
            &health,
            None,
        );
        let offset = conc * 1_000_000;
        let remember = {
            let (c, b, k) = (client.clone(), base.clone(), key.clone());
            run(conc, total, &counting, move |i| {
                let (c, b, k) = (c.clone(), b.clone(), k.clone());
                async move {
                    let r = c
                        .post(format!("{b}/api/v1/public/memory/v2/remember"))
                        .header("x-api-key", k)
                        .json(&json!({"content": content(offset + i), "namespace": "project:bench", "importance": 0.6, "tags": ["bench"]}))
                        .send()
                        .await
                        .expect("remember");
                    assert_eq!(r.status().as_u16(), 201);
                }
            })
            .await
        };
        row("POST /v2/remember", conc, &remember, Some(&health));
    }

    // A recall right after a bulk write: 5,000 remembers into one namespace (32 clients),
    // then one recall while the worker is still embedding the backlog.
    {
        let bulk = 5_000;
        let t = Instant::now();
        let (c, b, k) = (client.clone(), base.clone(), key.clone());
        run(32, bulk, &counting, move |i| {
            let (c, b, k) = (c.clone(), b.clone(), k.clone());
            async move {
                let r = c
                    .post(format!("{b}/api/v1/public/memory/v2/remember"))
                    .header("x-api-key", k)
                    .json(&json!({"content": content(2_000_000 + i), "namespace": "project:bulk"}))
                    .send()
                    .await
                    .expect("remember");
                assert_eq!(r.status().as_u16(), 201);
            }
        })
        .await;
        println!();
        println!(
            "bulk write: {bulk} remembers into project:bulk in {:.2} s (32 clients)",
            t.elapsed().as_secs_f64()
        );
        for (i, q) in ["which database do we use", "food allergies"]
            .iter()
            .enumerate()
        {
            let t = Instant::now();
            let r = client
                .post(format!("{base}/api/v1/public/memory/v2/recall"))
                .header("x-api-key", &key)
                .json(&json!({"query": q, "namespace": "project:bulk", "limit": 10}))
                .send()
                .await?;
            let took = t.elapsed();
            let body: serde_json::Value = r.json().await?;
            println!(
                "recall {} right after it: {:.0} ms ({} of the 5,000 not embedded yet, ranked by their words)",
                i + 1,
                took.as_secs_f64() * 1e3,
                body["not_embedded"]
            );
        }
    }

    // Recall over 10,000 memories in one namespace, loaded through the batch route of a
    // project (it passes the project gate).
    let project: serde_json::Value = client
        .post(format!("{base}/api/v1/projects"))
        .header("x-api-key", &key)
        .json(&json!({"name": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    let project_id = project["id"].as_str().unwrap_or_default().to_owned();
    let memories = 10_000;
    let load = Instant::now();
    for chunk in (0..memories).collect::<Vec<_>>().chunks(500) {
        let records: Vec<_> = chunk
            .iter()
            .map(|&i| json!({"content": content(i), "namespace": "project:recall"}))
            .collect();
        let r = client
            .post(format!(
                "{base}/api/v1/projects/{project_id}/database/memory/batch/upsert"
            ))
            .header("x-api-key", &key)
            .json(&json!({"records": records}))
            .send()
            .await?;
        assert!(r.status().is_success());
    }
    println!();
    println!(
        "loaded {memories} memories into project:recall in {:.2} s (batch upsert, 500 per request)",
        load.elapsed().as_secs_f64()
    );
    // The worker embeds in the background once writes stop; wait for it (a benchmark may
    // poll), then time recall in the steady state.
    let ns = zerodb_domain::Namespace::parse("project:recall").unwrap();
    loop {
        let all = memory
            .repo()
            .scan(&account.account_id, &ns, memories)
            .await?;
        let pending = all.iter().filter(|m| m.vector.is_none()).count();
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "background embedding of the 10,000 loaded memories (and the remember backlog) finished {:.1} s after loading",
        load.elapsed().as_secs_f64()
    );
    // Where a recall's time goes: reading the namespace, then embedding the query.
    let t = Instant::now();
    for _ in 0..5 {
        memory
            .repo()
            .scan(&account.account_id, &ns, memories)
            .await?;
    }
    println!(
        "reading the 10,000 memories (10 query pages): {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3 / 5.0
    );
    let t = Instant::now();
    for i in 0..20 {
        embedder
            .embed(&[format!("{} {i}", QUERIES[i % QUERIES.len()])])
            .await?;
    }
    println!(
        "embedding one query: {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3 / 20.0
    );
    let texts: Vec<String> = (0..256).map(content).collect();
    let t = Instant::now();
    embedder.embed(&texts).await?;
    println!(
        "embedding 256 memories in one call: {:.0} per second",
        256.0 / t.elapsed().as_secs_f64()
    );
    for conc in [1usize, 4] {
        let total = 400;
        let stats = {
            let (c, b, k) = (client.clone(), base.clone(), key.clone());
            run(conc, total, &counting, move |i| {
                let (c, b, k) = (c.clone(), b.clone(), k.clone());
                async move {
                    // A different query text each time: the query embedding is part of it.
                    let q = format!("{} {}", QUERIES[i % QUERIES.len()], i);
                    let r = c
                        .post(format!("{b}/api/v1/public/memory/v2/recall"))
                        .header("x-api-key", k)
                        .json(&json!({"query": q, "namespace": "project:recall", "limit": 10}))
                        .send()
                        .await
                        .expect("recall");
                    assert!(r.status().is_success());
                    r.bytes().await.expect("body");
                }
            })
            .await
        };
        row(
            "POST /v2/recall (10,000 memories, limit 10)",
            conc,
            &stats,
            None,
        );
    }
    Ok(())
}
