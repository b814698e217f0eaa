//! Benchmark: auth-checked requests per second and latency of zerodb-local's HTTP stack,
//! against an unauthenticated baseline measured in the same run. Prints figures; it
//! asserts nothing (the tests do that).
//!
//! Run: `cargo run --release -p zerodb-tests --bin bench-auth`

use std::sync::Arc;
use std::time::{Duration, Instant};

use zerodb_domain::auth::AuthSettings;
use zerodb_domain::rate::RateCounting;
use zerodb_domain::store::Stores;
use zerodb_tests::support::CountingTable;

#[derive(Clone)]
struct Stats {
    rps: f64,
    p50: Duration,
    p99: Duration,
    calls_per_req: f64,
}

async fn run(
    client: &reqwest::Client,
    url: &str,
    headers: &reqwest::header::HeaderMap,
    method: reqwest::Method,
    concurrency: usize,
    total: usize,
    counter: &CountingTable,
) -> Stats {
    counter.take();
    let per_task = total / concurrency;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, headers, method) = (
            client.clone(),
            url.to_owned(),
            headers.clone(),
            method.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_task);
            for _ in 0..per_task {
                let t = Instant::now();
                let resp = client
                    .request(method.clone(), &url)
                    .headers(headers.clone())
                    .send()
                    .await
                    .expect("request");
                let status = resp.status();
                resp.bytes().await.expect("body");
                assert!(status.is_success(), "benchmark request failed: {status}");
                lat.push(t.elapsed());
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
        p99: pct(0.99),
        calls_per_req: counter.take() as f64 / all.len() as f64,
    }
}

/// A server on fresh embedded storage (as zerodb-local runs) with the chosen counting.
async fn serve(
    rate_counting: RateCounting,
) -> anyhow::Result<(String, String, Arc<CountingTable>, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let stack = zerodb_local::open_stack(dir.path())?;
    let counting = CountingTable::new(stack.stores.table.clone());
    let stores = Stores {
        table: counting.clone(),
        ..stack.stores.clone()
    };
    // The limit stays on (counting is part of every request's cost) but high enough not
    // to refuse the benchmark.
    let settings = AuthSettings {
        jwt_secret: zerodb_domain::ids::random_base62(64).into_bytes(),
        rate_limit_per_minute: u32::MAX,
        rate_counting,
        limits: zerodb_domain::auth::AuthLimits::unlimited(),
    };
    let account = zerodb_local::create_account(stores.table.clone(), "bench").await?;
    let ctx = zerodb_local::local_context(stores, settings, zerodb_domain::Settings::default());
    let app = zerodb_http::serve(&[auth_api::group(), auth_api::meta("{}")], &ctx).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((base, account.root_key.expose().to_owned(), counting, dir))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    println!(
        "zerodb-local auth benchmark: {total} requests per row at concurrency 32 ({} at 1),",
        total / 4
    );
    println!(
        "client and server in one process on this machine; embedded storage with every commit synced."
    );
    for (mode, label) in [
        (
            RateCounting::InProcess,
            "rate counts in process (zerodb-local)",
        ),
        (
            RateCounting::Shared,
            "rate counts in the table (as the Lambdas count them)",
        ),
    ] {
        let (base, root_key, counting, _dir) = serve(mode).await?;
        let mut root = reqwest::header::HeaderMap::new();
        root.insert("x-api-key", root_key.parse()?);
        let created: serde_json::Value = client
            .post(format!("{base}/api/v1/auth/keys"))
            .headers(root.clone())
            .json(&serde_json::json!({"name": "bench", "scopes": ["memory:read"]}))
            .send()
            .await?
            .json()
            .await?;
        let key_id = created["id"].as_str().expect("id").to_owned();
        let token: serde_json::Value = client
            .post(format!("{base}/api/v1/auth/token"))
            .headers(root.clone())
            .send()
            .await?
            .json()
            .await?;
        let mut jwt = reqwest::header::HeaderMap::new();
        jwt.insert(
            "authorization",
            format!("Bearer {}", token["access_token"].as_str().expect("token")).parse()?,
        );
        let none = reqwest::header::HeaderMap::new();

        println!();
        println!("{label}");
        println!(
            "{:<52} {:>4} {:>10} {:>9} {:>9} {:>8} {:>11}",
            "scenario", "conc", "req/s", "p50 ms", "p99 ms", "vs base", "table/req"
        );
        for conc in [1usize, 32] {
            let n = if conc == 1 { total / 4 } else { total };
            let base_stats = run(
                &client,
                &format!("{base}/api/v1/health"),
                &none,
                reqwest::Method::GET,
                conc,
                n,
                &counting,
            )
            .await;
            let rows = [
                (
                    "GET /api/v1/health (no auth: baseline)",
                    format!("{base}/api/v1/health"),
                    none.clone(),
                    reqwest::Method::GET,
                ),
                (
                    "GET /api/v1/auth/keys/{id} (API key)",
                    format!("{base}/api/v1/auth/keys/{key_id}"),
                    root.clone(),
                    reqwest::Method::GET,
                ),
                (
                    "GET /api/v1/auth/keys/{id} (JWT)",
                    format!("{base}/api/v1/auth/keys/{key_id}"),
                    jwt.clone(),
                    reqwest::Method::GET,
                ),
                (
                    "POST /api/v1/auth/token (API key, signs a JWT)",
                    format!("{base}/api/v1/auth/token"),
                    root.clone(),
                    reqwest::Method::POST,
                ),
            ];
            for (name, url, headers, method) in rows {
                let s = if name.contains("baseline") {
                    base_stats.clone()
                } else {
                    run(&client, &url, &headers, method, conc, n, &counting).await
                };
                println!(
                    "{:<52} {:>4} {:>10.0} {:>9.3} {:>9.3} {:>7.2}x {:>11.2}",
                    name,
                    conc,
                    s.rps,
                    s.p50.as_secs_f64() * 1e3,
                    s.p99.as_secs_f64() * 1e3,
                    s.rps / base_stats.rps,
                    s.calls_per_req
                );
            }
        }
    }
    Ok(())
}
