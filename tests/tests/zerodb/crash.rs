//! Crash safety: a child process writes and acknowledges items, is killed with SIGKILL
//! mid-stream, the store is reopened, and every acknowledged item must be there.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use zerodb_domain::store::{Key, Query, Table};
use zerodb_tests::support::{aws_clients, unique_name};

/// Runs the writer until `target` acks, kills it, and returns the acknowledged ids.
fn write_until_killed(args: &[&str], target: usize) -> BTreeSet<u64> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash-writer"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start crash-writer");
    let mut acked = BTreeSet::new();
    let stdout = child.stdout.take().expect("stdout");
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read ack");
        let n: u64 = line
            .strip_prefix("ack ")
            .and_then(|n| n.parse().ok())
            .expect("ack line");
        acked.insert(n);
        if acked.len() >= target {
            break;
        }
    }
    // Child::kill sends SIGKILL on Unix: no destructors, no flush, no clean close.
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reap");
    assert!(!status.success(), "the writer was killed, not finished");
    assert!(
        acked.len() >= target,
        "writer stopped early after {} acks",
        acked.len()
    );
    acked
}

async fn assert_all_present(table: Arc<dyn Table>, acked: &BTreeSet<u64>) {
    for n in acked {
        let got = table
            .get(&Key::new("CRASH", format!("{n:08}")))
            .await
            .expect("get");
        assert!(got.is_some(), "acknowledged item {n} was lost in the crash");
    }
    // And the partition reads back whole (no torn pages).
    let page = table
        .query(Query::partition("CRASH").limit(1000))
        .await
        .expect("query");
    assert!(!page.items.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_keeps_every_acknowledged_write_after_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_str().expect("utf-8 path").to_owned();
    let acked = tokio::task::spawn_blocking(move || write_until_killed(&["embedded", &path], 2000))
        .await
        .expect("writer");
    let store = zerodb_store_embedded::EmbeddedStore::open(dir.path()).expect("reopen after crash");
    assert_all_present(store.table(), &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_table_keeps_every_acknowledged_write_after_sigkill() {
    let c = aws_clients().await;
    let name = unique_name("crash");
    zerodb_store_aws::provision::create_table(&c.dynamodb, &name)
        .await
        .expect("create table");
    let n2 = name.clone();
    let acked = tokio::task::spawn_blocking(move || write_until_killed(&["aws", &n2], 300))
        .await
        .expect("writer");
    assert_all_present(
        Arc::new(zerodb_store_aws::AwsTable::new(c.dynamodb, name)),
        &acked,
    )
    .await;
}

/// zerodb-local on `data`, its base URL once it is ready.
fn start_local(data: &std::path::Path) -> (std::process::Child, String) {
    let mut child = Command::new(zerodb_tests::workspace_bin("zerodb-local"))
        .env("ZERODB_ADDR", "127.0.0.1:0")
        .env("ZERODB_DATA_DIR", data)
        .env("ZERODB_EMBEDDER", "lexical")
        .env("ZERODB_RATE_LIMIT_PER_MINUTE", "0")
        .env_remove("ZERODB_JWT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run zerodb-local");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut base = None;
    for line in lines.by_ref() {
        let line = line.expect("zerodb-local's output");
        if let Some((_, rest)) = line.split_once("listening on ") {
            base = Some(rest.trim().to_owned());
        }
        if line.starts_with("ready") {
            break;
        }
    }
    // Keep reading its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, base.expect("zerodb-local printed its address"))
}

/// The server as a whole, not only the store: remembers acknowledged (201) by zerodb-local
/// while sixteen clients keep writing survive a SIGKILL of the process, and the restarted
/// server recalls every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zerodb_local_keeps_every_acknowledged_remember_after_sigkill() {
    use futures::StreamExt;
    const TARGET: usize = 800;
    const NAMESPACES: usize = 4;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (mut child, base) = start_local(&data);
    let key = std::fs::read_to_string(data.join("root-key"))
        .unwrap()
        .trim()
        .to_owned();
    let client = reqwest::Client::new();
    let acked = Arc::new(std::sync::Mutex::new(Vec::<(usize, String)>::new()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Writers run until the process dies under them; the first TARGET acks stop the test.
    let writers = futures::stream::iter(0..usize::MAX)
        .take_until({
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        })
        .map(|i| {
            let (client, base, key, acked, stop_tx) = (
                client.clone(),
                base.clone(),
                key.clone(),
                acked.clone(),
                stop_tx.clone(),
            );
            async move {
                let ns = i % NAMESPACES;
                let sent = client
                    .post(format!("{base}/api/v1/public/memory/v2/remember"))
                    .header("x-api-key", &key)
                    .json(&serde_json::json!({
                        "content": format!("crash memory {i}"),
                        "namespace": format!("project:crash{ns}"),
                    }))
                    .send()
                    .await;
                let Ok(resp) = sent else { return };
                if resp.status() != 201 {
                    return;
                }
                let Ok(body) = resp.json::<serde_json::Value>().await else {
                    return;
                };
                let mut a = acked.lock().unwrap();
                a.push((ns, body["id"].as_str().unwrap().to_owned()));
                if a.len() >= TARGET {
                    stop_tx.send_replace(true);
                }
            }
        })
        .buffer_unordered(16)
        .for_each(|()| async {});
    let killer = async {
        let mut rx = stop_rx.clone();
        let _ = rx.wait_for(|s| *s).await;
        // Child::kill is SIGKILL: requests are in flight, nothing is flushed or closed.
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), async {
        tokio::join!(writers, killer)
    })
    .await
    .expect("the writers reached their target");
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= TARGET);

    let (mut child, base) = start_local(&data);
    let mut stored = std::collections::HashSet::new();
    for ns in 0..NAMESPACES {
        let r = client
            .post(format!("{base}/api/v1/public/memory/v2/recall"))
            .header("x-api-key", &key)
            .json(&serde_json::json!({"query": "*", "namespace": format!("project:crash{ns}"), "limit": 1000}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        let results = body["results"].as_array().unwrap();
        assert!(results.len() < 1000, "a page holds the whole namespace");
        stored.extend(results.iter().map(|m| m["id"].as_str().unwrap().to_owned()));
    }
    child.kill().ok();
    child.wait().ok();
    let lost: Vec<_> = acked
        .iter()
        .filter(|(_, id)| !stored.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged memories lost: {lost:?}",
        lost.len()
    );
}
