//! Helper process for the crash test: writes items as fast as it can from 8 concurrent
//! tasks and prints `ack <n>` for each write the store acknowledged, until it is killed.
//! Usage: `crash-writer embedded <dir>` or `crash-writer aws <table>`.

use std::io::Write;
use std::sync::Arc;

use zerodb_domain::store::{Key, Table, Value};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (backend, target) = match args.as_slice() {
        [_, b, t] => (b.as_str(), t.clone()),
        _ => anyhow::bail!("usage: crash-writer embedded <dir> | aws <table>"),
    };
    let table: Arc<dyn Table> = match backend {
        // The default options: every commit synced, as zerodb-local runs.
        "embedded" => {
            zerodb_store_embedded::EmbeddedStore::open(std::path::Path::new(&target))?.table()
        }
        "aws" => {
            let c = zerodb_store_aws::AwsClients::from_env().await;
            Arc::new(zerodb_store_aws::AwsTable::new(c.dynamodb, target))
        }
        other => anyhow::bail!("unknown backend {other}"),
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    for worker in 0..8u64 {
        let table = table.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            for i in 0.. {
                let n = i * 8 + worker;
                let mut item = Key::new("CRASH", format!("{n:08}")).item();
                item.insert("payload".into(), Value::S(format!("item {n}")));
                if table.put(item, None).await.is_ok() && tx.send(n).is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    let mut out = std::io::stdout().lock();
    while let Some(n) = rx.recv().await {
        writeln!(out, "ack {n}")?;
        out.flush()?;
    }
    Ok(())
}
