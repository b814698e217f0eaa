//! Requests with random keys under load: 20,000 of them leave no storage write (in the
//! Lambda's shared counting, through the router) and no growth of zerodb-local's
//! resident memory beyond a small bound (the real binary, on loopback).

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use http::StatusCode;
use zerodb_tests::support::Backend;

const REQUESTS: usize = 20_000;
const CONCURRENCY: usize = 16;
/// Resident memory zerodb-local may gain over 20,000 refused requests, after a warm-up:
/// allocator noise, not a structure that grows with them (a counter entry per unknown
/// key, as before, is about 100 bytes each: 2 MB here).
const RSS_BOUND_KIB: u64 = 1024;

fn random_key() -> String {
    format!("sk_{}", zerodb_domain::ids::random_base62(43))
}

/// The Lambda's mode (counts in the table): 20,000 unknown keys, each refused with
/// AUTH_001 after one read, and not one write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_random_keys_write_nothing_with_shared_counting() {
    use tower::ServiceExt;
    let (stores, _guard) = zerodb_tests::support::fresh_stores(Backend::Embedded).await;
    zerodb_local::create_account(stores.table.clone(), "load")
        .await
        .unwrap();
    let counting = zerodb_tests::support::CountingTable::new(stores.table.clone());
    let stores = zerodb_domain::store::Stores {
        table: counting.clone(),
        ..stores
    };
    let ctx = zerodb_tests::support::context_of(
        stores,
        Arc::new(zerodb_domain::clock::SystemClock),
        zerodb_domain::auth::AuthSettings {
            jwt_secret: vec![7; 32],
            rate_limit_per_minute: 100,
            rate_counting: zerodb_domain::rate::RateCounting::Shared,
            limits: Default::default(),
        },
    );
    let app = zerodb_http::serve(&[auth_api::group()], &ctx)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let refused = futures::stream::iter(0..REQUESTS)
        .map(|_| {
            let app = app.clone();
            async move {
                let req = http::Request::get("/api/v1/auth/keys")
                    .header("x-api-key", random_key())
                    .body(axum::body::Body::empty())
                    .unwrap();
                app.oneshot(req).await.unwrap().status()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .filter(|s| futures::future::ready(*s == StatusCode::UNAUTHORIZED))
        .count()
        .await;
    assert_eq!(refused, REQUESTS);
    assert_eq!(counting.writes.load(Ordering::Relaxed), 0);
    eprintln!(
        "{REQUESTS} random keys through the router in {:?}, 0 writes",
        started.elapsed()
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// The database files' sizes and contents; the `-shm` index is left out, since readers
/// write their read marks there.
fn stored_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().to_string_lossy().into_owned();
            (e.file_type().ok()?.is_file() && !name.ends_with("-shm"))
                .then(|| (name, std::fs::read(e.path()).unwrap_or_default()))
        })
        .collect();
    files.sort();
    files
}

async fn hammer(client: &reqwest::Client, base: &str, n: usize) -> usize {
    futures::stream::iter(0..n)
        .map(|_| {
            let client = client.clone();
            let url = format!("{base}/api/v1/auth/keys");
            async move {
                client
                    .get(url)
                    .header("x-api-key", random_key())
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .filter(|s| futures::future::ready(*s == 401))
        .count()
        .await
}

/// zerodb-local (in-process counting): 20,000 unknown keys, after a warm-up of 2,000,
/// grow its resident memory by less than [`RSS_BOUND_KIB`] and change no stored byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_random_keys_leave_zerodb_local_memory_and_storage_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(zerodb_tests::workspace_bin("zerodb-local"))
        .env("ZERODB_ADDR", "127.0.0.1:0")
        .env("ZERODB_DATA_DIR", &data)
        .env("ZERODB_EMBEDDER", "lexical")
        .env("ZERODB_RATE_LIMIT_PER_MINUTE", "6000")
        .env_remove("ZERODB_JWT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run zerodb-local");
    let pid = child.id();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut base = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split_once("listening on ").map(|(_, r)| r.to_owned()) {
            base = Some(rest.trim().to_owned());
        }
        if line.starts_with("ready") {
            break;
        }
    }
    let base = base.expect("zerodb-local printed its address");
    // Keep reading its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    assert_eq!(hammer(&client, &base, 2_000).await, 2_000);
    let before_rss = rss_kib(pid);
    let before_files = stored_bytes(&data);
    let started = std::time::Instant::now();
    let refused = hammer(&client, &base, REQUESTS).await;
    let took = started.elapsed();
    let after_rss = rss_kib(pid);
    let after_files = stored_bytes(&data);
    child.kill().ok();
    child.wait().ok();

    assert_eq!(refused, REQUESTS, "every random key is refused with 401");
    eprintln!(
        "zerodb-local: {REQUESTS} random keys in {took:?}; RSS {before_rss} -> {after_rss} KiB"
    );
    assert!(
        after_rss.saturating_sub(before_rss) < RSS_BOUND_KIB,
        "RSS grew from {before_rss} to {after_rss} KiB"
    );
    assert!(!before_files.is_empty());
    assert!(
        before_files == after_files,
        "a stored byte changed: {:?}",
        after_files
            .iter()
            .map(|(n, b)| (n, b.len()))
            .collect::<Vec<_>>()
    );
}
