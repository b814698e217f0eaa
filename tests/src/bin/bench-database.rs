//! Benchmark: the project database over TCP on zerodb-local's stack (embedded storage,
//! every commit synced): row insert throughput with and without declared indexes, and
//! queries at 100,000 rows by an indexed field and by the same field unindexed (a scan),
//! against the unauthenticated health route measured in the same run; file upload and
//! download of 1 MB and 50 MB against the Blobs store written directly. Prints figures;
//! asserts nothing (the tests do).
//!
//! Run: `cargo run --profile perf -p zerodb-tests --bin bench-database`
//! (`BENCH_ROWS` changes the table size, default 100,000.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zerodb_domain::auth::AuthSettings;
use zerodb_domain::rate::RateCounting;
use zerodb_domain::store::Stores;
use zerodb_tests::support::CountingTable;

struct Server {
    base: String,
    key: String,
    counting: Arc<CountingTable>,
    blobs: Arc<dyn zerodb_domain::store::Blobs>,
    _dir: tempfile::TempDir,
}

async fn serve() -> anyhow::Result<Server> {
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
    let ctx = zerodb_local::local_context(stores, settings, zerodb_domain::Settings::default());
    let blobs = stack.stores.blobs.clone();
    let app = zerodb_http::serve(
        &[
            projects_api::group(),
            database_api::group(),
            files_api::group(),
            auth_api::meta("{}"),
        ],
        &ctx,
    )
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(Server {
        base,
        key: account.root_key.expose().to_owned(),
        counting,
        blobs,
        _dir: dir,
    })
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1000.0
}

async fn call(
    c: &reqwest::Client,
    s: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut r = c
        .request(method, format!("{}{path}", s.base))
        .header("x-api-key", &s.key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.expect("request");
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

fn row(i: usize) -> Value {
    // `cat` takes 1,000 values, so each is held by 0.1 % of the rows.
    json!({"cat": format!("c{:03}", (i * 7919) % 1000), "n": i, "text": format!("row {i} with a little text to carry")})
}

/// Inserts `rows` rows in calls of 1,000 from `conc` clients; rows per second.
async fn load(c: &reqwest::Client, s: &Server, path: &str, rows: usize, conc: usize) -> f64 {
    let start = Instant::now();
    let per = rows / conc;
    let mut tasks = Vec::new();
    for t in 0..conc {
        let (c, base, key, path) = (c.clone(), s.base.clone(), s.key.clone(), path.to_owned());
        tasks.push(tokio::spawn(async move {
            for chunk in (t * per..(t + 1) * per).collect::<Vec<_>>().chunks(1000) {
                let rows: Vec<Value> = chunk.iter().map(|&i| row(i)).collect();
                let r = c
                    .post(format!("{base}{path}"))
                    .header("x-api-key", &key)
                    .json(&json!({"rows": rows, "return_ids": false}))
                    .send()
                    .await
                    .expect("insert");
                assert!(r.status().is_success(), "insert: {}", r.status());
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    rows as f64 / start.elapsed().as_secs_f64()
}

async fn latencies(
    c: &reqwest::Client,
    s: &Server,
    path: &str,
    bodies: &[Value],
) -> (Vec<Duration>, f64) {
    s.counting.take();
    let mut lat = Vec::with_capacity(bodies.len());
    for b in bodies {
        let t = Instant::now();
        call(c, s, reqwest::Method::POST, path, Some(b.clone())).await;
        lat.push(t.elapsed());
    }
    let calls = s.counting.take() as f64 / bodies.len() as f64;
    (lat, calls)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .build()?;
    let s = serve().await?;
    let p = call(
        &c,
        &s,
        reqwest::Method::POST,
        "/api/v1/projects",
        Some(json!({"name": "bench"})),
    )
    .await;
    let db = format!("/api/v1/projects/{}/database", p["id"].as_str().unwrap());
    for (name, schema) in [
        ("plain", json!({"fields": {"cat": "string", "n": "number"}})),
        (
            "indexed",
            json!({"fields": {"cat": "string", "n": "number"}, "indexes": ["cat", "n"]}),
        ),
    ] {
        call(
            &c,
            &s,
            reqwest::Method::POST,
            &format!("{db}/tables"),
            Some(json!({"table_name": name, "schema": schema})),
        )
        .await;
    }

    println!(
        "project database on zerodb-local's stack (embedded storage, synced commits), {rows} rows per table;"
    );
    println!("client and server share this machine's cores.");
    println!();
    let mut base = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        c.get(format!("{}/api/v1/health", s.base))
            .send()
            .await?
            .bytes()
            .await?;
        base.push(t.elapsed());
    }
    let base_p50 = pct(&mut base, 0.5);
    println!("baseline GET /api/v1/health: p50 {base_p50:.3} ms");
    println!();
    println!(
        "{:<44} {:>12} {:>10}",
        "insert (calls of 1,000 rows, 4 clients)", "rows/s", "vs plain"
    );
    let plain_rate = load(&c, &s, &format!("{db}/tables/plain/rows"), rows, 4).await;
    println!("{:<44} {:>12.0} {:>9.2}×", "no index", plain_rate, 1.0);
    let ix_rate = load(&c, &s, &format!("{db}/tables/indexed/rows"), rows, 4).await;
    println!(
        "{:<44} {:>12.0} {:>9.2}×",
        "two declared indexes (cat, n)",
        ix_rate,
        ix_rate / plain_rate
    );

    let mut one = Vec::new();
    for i in 0..500 {
        let t = Instant::now();
        call(
            &c,
            &s,
            reqwest::Method::POST,
            &format!("{db}/tables/plain/rows"),
            Some(json!({"rows": [row(rows + i)]})),
        )
        .await;
        one.push(t.elapsed());
    }
    println!(
        "{:<44} p50 {:.3} ms, p95 {:.3} ms",
        "one-row insert, no index",
        pct(&mut one, 0.5),
        pct(&mut one, 0.95)
    );

    println!();
    println!(
        "{:<52} {:>9} {:>9} {:>11} {:>9}",
        "query at this size", "p50 ms", "p95 ms", "table/req", "vs base"
    );
    let eq: Vec<Value> = (0..200)
        .map(|i| json!({"filter": {"cat": format!("c{:03}", (i * 37) % 1000)}, "limit": 10}))
        .collect();
    let (mut l, calls) = latencies(&c, &s, &format!("{db}/tables/indexed/query"), &eq).await;
    let p50 = pct(&mut l, 0.5);
    println!(
        "{:<52} {:>9.3} {:>9.3} {:>11.1} {:>8.0}×",
        "cat = x, indexed (~100 matches, 10 returned)",
        p50,
        pct(&mut l, 0.95),
        calls,
        p50 / base_p50
    );
    let range: Vec<Value> = (0..200).map(|i| json!({"filter": {"n": {"$gte": i * 400, "$lt": i * 400 + 50}}, "sort": {"n": -1}, "limit": 10})).collect();
    let (mut l, calls) = latencies(&c, &s, &format!("{db}/tables/indexed/query"), &range).await;
    let p50 = pct(&mut l, 0.5);
    println!(
        "{:<52} {:>9.3} {:>9.3} {:>11.1} {:>8.0}×",
        "n in [a, a+50), indexed, sorted",
        p50,
        pct(&mut l, 0.95),
        calls,
        p50 / base_p50
    );
    let scan: Vec<Value> = eq.iter().take(20).cloned().collect();
    let (mut l, calls) = latencies(&c, &s, &format!("{db}/tables/plain/query"), &scan).await;
    let p50 = pct(&mut l, 0.5);
    println!(
        "{:<52} {:>9.3} {:>9.3} {:>11.1} {:>8.0}×",
        "cat = x, not indexed (scan of every row)",
        p50,
        pct(&mut l, 0.95),
        calls,
        p50 / base_p50
    );
    let count: Vec<Value> = (0..200).map(|_| json!({"limit": 0})).collect();
    let (mut l, calls) = latencies(&c, &s, &format!("{db}/tables/plain/query"), &count).await;
    println!(
        "{:<52} {:>9.3} {:>9.3} {:>11.1}",
        "count, no filter (the table's counter)",
        pct(&mut l, 0.5),
        pct(&mut l, 0.95),
        calls
    );

    files(&c, &s, &db).await?;
    Ok(())
}

/// Uploads through an upload URL (this server's signed one locally), downloads through
/// the API, each beside the Blobs store written and read directly (the storage floor).
async fn files(c: &reqwest::Client, s: &Server, db: &str) -> anyhow::Result<()> {
    println!();
    println!(
        "{:<40} {:>5} {:>10} {:>10} {:>12}",
        "files", "runs", "p50 ms", "MB/s", "vs storage"
    );
    for (mb, runs) in [(1usize, 20usize), (50, 3)] {
        let bytes: Vec<u8> = (0..mb * 1_000_000).map(|i| (i % 251) as u8).collect();
        let (mut put, mut get, mut floor_put, mut floor_get) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for run in 0..runs {
            let t = Instant::now();
            let ticket = call(c, s, reqwest::Method::POST, &format!("{db}/files/upload-url"),
                Some(json!({"file_name": format!("bench/{mb}mb-{run}.bin"), "content_type": "application/octet-stream", "size_bytes": bytes.len()}))).await;
            let r = c
                .put(ticket["upload_url"].as_str().unwrap())
                .body(bytes.clone())
                .send()
                .await?;
            assert!(r.status().is_success(), "upload: {}", r.status());
            r.bytes().await?;
            put.push(t.elapsed());
            let id = ticket["file_id"].as_str().unwrap();
            let t = Instant::now();
            let r = c
                .get(format!("{}{db}/files/{id}/download", s.base))
                .header("x-api-key", &s.key)
                .send()
                .await?;
            assert!(r.status().is_success(), "download: {}", r.status());
            let got = r.bytes().await?;
            get.push(t.elapsed());
            assert_eq!(got.len(), bytes.len());
            let key = format!("bench-floor/{mb}-{run}");
            let t = Instant::now();
            s.blobs
                .put(&key, bytes.clone(), Some("application/octet-stream"))
                .await?;
            floor_put.push(t.elapsed());
            let t = Instant::now();
            let b = s.blobs.get(&key).await?.expect("blob");
            floor_get.push(t.elapsed());
            assert_eq!(b.bytes.len(), bytes.len());
        }
        for (what, lat, floor) in [
            ("upload (ticket + PUT)", &mut put, &mut floor_put),
            ("download (GET, bytes)", &mut get, &mut floor_get),
        ] {
            let p50 = pct(lat, 0.5);
            let f50 = pct(floor, 0.5);
            println!(
                "{:<40} {:>5} {:>10.1} {:>10.0} {:>11.2}×",
                format!("{what}, {mb} MB"),
                runs,
                p50,
                mb as f64 / (p50 / 1000.0),
                p50 / f50.max(0.001)
            );
        }
    }
    Ok(())
}
