//! Benchmark of the embedded store as zerodb-local opens it (every commit synced): put
//! throughput with one writer (a commit per put: the baseline) and with many concurrent
//! writers (group commit), and point-read throughput. Prints figures; asserts nothing.
//!
//! Run: `cargo run --profile perf -p zerodb-tests --bin bench-store`

use std::sync::Arc;
use std::time::Instant;

use zerodb_domain::store::{Key, Table, Value};

async fn puts(table: Arc<dyn Table>, writers: usize, per_writer: usize, tag: &str) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let table = table.clone();
        let tag = tag.to_owned();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let mut item = Key::new(format!("P#{tag}"), format!("{w:03}#{i:06}")).item();
                item.insert(
                    "content".into(),
                    Value::S("Alice prefers dark mode and vim keybindings".into()),
                );
                item.insert("importance".into(), Value::float(0.8));
                table.put(item, None).await.expect("put");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    (writers * per_writer) as f64 / start.elapsed().as_secs_f64()
}

async fn gets(table: Arc<dyn Table>, readers: usize, per_reader: usize, tag: &str) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for r in 0..readers {
        let table = table.clone();
        let tag = tag.to_owned();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_reader {
                let key = Key::new(format!("P#{tag}"), format!("{:03}#{:06}", r % 64, i % 500));
                table.get(&key).await.expect("get").expect("present");
            }
        }));
    }
    for t in tasks {
        t.await.expect("reader");
    }
    (readers * per_reader) as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let table = zerodb_store_embedded::EmbeddedStore::open(dir.path())?.table();
    println!("embedded store, synchronous=FULL, on this machine's disk");
    let serial = puts(table.clone(), 1, 2_000, "serial").await;
    println!(
        "{:<44} {:>10.0} puts/s   (baseline: one commit per put)",
        "1 writer", serial
    );
    for writers in [8usize, 64] {
        let rate = puts(
            table.clone(),
            writers,
            32_000 / writers,
            &format!("w{writers}"),
        )
        .await;
        println!(
            "{:<44} {:>10.0} puts/s   {:>5.1}x baseline (group commit)",
            format!("{writers} concurrent writers"),
            rate,
            rate / serial
        );
    }
    let one = gets(table.clone(), 1, 20_000, "w64").await;
    println!("{:<44} {:>10.0} gets/s", "1 reader", one);
    let many = gets(table.clone(), 32, 2_000, "w64").await;
    println!(
        "{:<44} {:>10.0} gets/s   {:>5.1}x one reader",
        "32 concurrent readers",
        many,
        many / one
    );
    Ok(())
}
