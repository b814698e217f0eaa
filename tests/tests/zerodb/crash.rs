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
