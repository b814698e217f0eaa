//! The embedded store end to end: group commit under concurrency, isolation of failed
//! jobs, several stores (as several processes would) on one directory, crash safety, and
//! the behaviour beyond the shared conformance suite.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use zerodb_domain::store::{
    Condition, Cursor, GSI1PK, GSI1SK, Index, Item, Key, Query, SortKey, StoreError, TTL, Table,
    TxOp, Update, Value,
};
use zerodb_store_embedded::{EmbeddedStore, OpenOptions, QueueConfig, SyncMode};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn item(pk: &str, sk: &str, attrs: &[(&str, Value)]) -> Item {
    let mut it = Key::new(pk, sk).item();
    for (k, v) in attrs {
        it.insert((*k).to_owned(), v.clone());
    }
    it
}

async fn count(t: &Arc<dyn Table>, pk: &str) -> usize {
    let mut n = 0;
    let mut cursor = None;
    loop {
        let page = t.query(Query::partition(pk).after(cursor)).await.unwrap();
        n += page.items.len();
        cursor = page.cursor;
        if cursor.is_none() {
            return n;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_puts_are_all_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let t = store.table();
    let handles: Vec<_> = (0..200)
        .map(|i| {
            let t = t.clone();
            tokio::spawn(async move {
                t.put(
                    item("P#many", &format!("{i:03}"), &[("i", Value::int(i))]),
                    None,
                )
                .await
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap().unwrap();
    }
    assert_eq!(count(&t, "P#many").await, 200);
    drop((t, store));
    // Acknowledged means committed: a fresh open sees every item.
    let again = EmbeddedStore::open(dir.path()).unwrap().table();
    assert_eq!(count(&again, "P#many").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicting_writes_fail_alone_among_concurrent_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let t = store.table();
    for i in (0..100).step_by(2) {
        t.put(
            item("P#mix", &format!("{i:03}"), &[("old", Value::Bool(true))]),
            None,
        )
        .await
        .unwrap();
    }
    // Even keys exist already, so half of these conditional creates conflict; they are
    // sent together so they share group commits with the ones that succeed.
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let t = t.clone();
            tokio::spawn(async move {
                let r = t
                    .put(
                        item("P#mix", &format!("{i:03}"), &[("new", Value::Bool(true))]),
                        Some(Condition::NotExists),
                    )
                    .await;
                (i, r)
            })
        })
        .collect();
    for h in handles {
        let (i, r) = h.await.unwrap();
        if i % 2 == 0 {
            assert!(matches!(r, Err(StoreError::Conflict)), "{i}: {r:?}");
        } else {
            r.unwrap();
        }
    }
    let all = t.query(Query::partition("P#mix")).await.unwrap().items;
    assert_eq!(all.len(), 100);
    for (i, it) in all.iter().enumerate() {
        let expected = if i % 2 == 0 { "old" } else { "new" };
        assert!(it.contains_key(expected) && it.len() == 3, "{i}: {it:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_directory_both_write() {
    let dir = tempfile::tempdir().unwrap();
    let a = EmbeddedStore::open(dir.path()).unwrap();
    let b = EmbeddedStore::open(dir.path()).unwrap();
    let (ta, tb) = (a.table(), b.table());
    let mut handles = Vec::new();
    for i in 0..100 {
        for (name, t) in [("a", ta.clone()), ("b", tb.clone())] {
            handles.push(tokio::spawn(async move {
                t.put(item("P#shared", &format!("{name}{i:03}"), &[]), None)
                    .await?;
                t.update(
                    &Key::new("P#shared", "counter"),
                    vec![Update::Add("n".into(), 1)],
                    None,
                )
                .await
            }));
        }
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    // Each store reads the other's writes, and no increment was lost between them.
    for t in [&ta, &tb] {
        assert_eq!(count(t, "P#shared").await, 201);
        assert_eq!(
            t.get(&Key::new("P#shared", "counter"))
                .await
                .unwrap()
                .unwrap()["n"]
                .as_i64(),
            Some(200)
        );
    }
    let qa = a.queue("jobs", QueueConfig::default());
    let qb = b.queue("jobs", QueueConfig::default());
    qa.send_batch((0..10).map(|i| i.to_string()).collect())
        .await
        .unwrap();
    let (ra, rb) = tokio::join!(qa.receive(10, 30), qb.receive(10, 30));
    let got: Vec<_> = ra
        .unwrap()
        .into_iter()
        .chain(rb.unwrap())
        .map(|m| m.body)
        .collect();
    let unique: BTreeSet<_> = got.iter().collect();
    assert_eq!(
        (got.len(), unique.len()),
        (10, 10),
        "each message went to exactly one receiver"
    );
}

/// The child half of `two_processes_write_one_directory`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_process_child_writer() {
    let Ok(dir) = std::env::var("ZERODB_MP_DIR") else {
        return;
    };
    let t = EmbeddedStore::open(std::path::Path::new(&dir))
        .unwrap()
        .table();
    increment_from(&t, "child").await;
}

async fn increment_from(t: &Arc<dyn Table>, who: &str) {
    let handles: Vec<_> = (0..200)
        .map(|i| {
            let t = t.clone();
            let sk = format!("{who}{i:03}");
            tokio::spawn(async move {
                t.put(item("P#mp", &sk, &[]), None).await?;
                t.update(
                    &Key::new("P#mp", "counter"),
                    vec![Update::Add("n".into(), 1)],
                    None,
                )
                .await
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap().unwrap();
    }
}

/// Another process (the operator CLI, in production) writing while this one does: the
/// SQLite file lock serializes the two writers and no write is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_write_one_directory() {
    let dir = tempfile::tempdir().unwrap();
    let t = EmbeddedStore::open(dir.path()).unwrap().table();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "multi_process_child_writer", "--test-threads=1"])
        .env("ZERODB_MP_DIR", dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    increment_from(&t, "parent").await;
    assert!(
        child.wait().unwrap().success(),
        "the child process wrote without error"
    );
    assert_eq!(count(&t, "P#mp").await, 401);
    assert_eq!(
        t.get(&Key::new("P#mp", "counter")).await.unwrap().unwrap()["n"].as_i64(),
        Some(400)
    );
}

/// The child half of `acknowledged_writes_survive_kill_9`: writes until killed, printing
/// the sort key of each write once it is acknowledged.
#[tokio::test]
async fn crash_child_writer() {
    let Ok(dir) = std::env::var("ZERODB_CRASH_DIR") else {
        return;
    };
    use std::io::Write;
    let t = EmbeddedStore::open(std::path::Path::new(&dir))
        .unwrap()
        .table();
    let mut out = std::io::stdout();
    for i in 0.. {
        let sk = format!("{i:08}");
        t.put(item("P#crash", &sk, &[("v", Value::B(vec![1; 512]))]), None)
            .await
            .unwrap();
        writeln!(out, "ACK {sk}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ZERODB_CRASH_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while acked.len() < 300 {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(sk) = line.strip_prefix("ACK ") {
                    acked.push(sk.to_owned());
                }
            }
            _ => break,
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no checkpoint, no clean close
    child.wait().unwrap();
    assert_eq!(acked.len(), 300, "the child wrote");
    let t = EmbeddedStore::open(dir.path()).unwrap().table();
    for sk in &acked {
        assert!(
            t.get(&Key::new("P#crash", sk.as_str()))
                .await
                .unwrap()
                .is_some(),
            "acknowledged {sk} was lost"
        );
    }
}

#[tokio::test]
async fn expired_items_are_swept_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open_with(
        dir.path(),
        OpenOptions {
            sync: SyncMode::Normal,
            readers: 2,
        },
    )
    .unwrap();
    let t = store.table();
    for chunk in 0..12 {
        let ops = (0..100)
            .map(|i| TxOp::Put {
                item: item(
                    "P#sweep",
                    &format!("{chunk:02}{i:03}"),
                    &[(TTL, Value::int(now() - 5))],
                ),
                condition: None,
            })
            .collect();
        t.transact(ops).await.unwrap();
    }
    t.put(
        item("P#sweep", "live", &[(TTL, Value::int(now() + 3600))]),
        None,
    )
    .await
    .unwrap();
    t.put(item("P#sweep", "forever", &[]), None).await.unwrap();
    assert_eq!(store.sweep_expired().await.unwrap(), 1200);
    assert_eq!(store.sweep_expired().await.unwrap(), 0);
    assert_eq!(count(&t, "P#sweep").await, 2);
}

#[tokio::test]
async fn transactions_refuse_two_operations_on_one_item_and_bad_items() {
    let dir = tempfile::tempdir().unwrap();
    let t = EmbeddedStore::open(dir.path()).unwrap().table();
    let twice = vec![
        TxOp::Put {
            item: item("P", "a", &[]),
            condition: None,
        },
        TxOp::Check {
            key: Key::new("P", "a"),
            condition: Condition::NotExists,
        },
    ];
    assert!(matches!(
        t.transact(twice).await,
        Err(StoreError::Backend(_))
    ));
    let mut keyless = Item::new();
    keyless.insert("PK".into(), Value::S("P".into()));
    let missing = vec![
        TxOp::Put {
            item: item("P", "b", &[]),
            condition: None,
        },
        TxOp::Put {
            item: keyless,
            condition: None,
        },
    ];
    assert!(matches!(
        t.transact(missing).await,
        Err(StoreError::MissingKey)
    ));
    let huge = item("P", "c", &[("x", Value::B(vec![0; 500 * 1024]))]);
    assert!(matches!(
        t.transact(vec![TxOp::Put {
            item: huge,
            condition: None
        }])
        .await,
        Err(StoreError::TooLarge(_))
    ));
    // An update that would grow an item past the limit fails inside the transaction.
    t.put(
        item("P", "d", &[("x", Value::B(vec![0; 300 * 1024]))]),
        None,
    )
    .await
    .unwrap();
    let grow = vec![
        TxOp::Put {
            item: item("P", "e", &[]),
            condition: None,
        },
        TxOp::Update {
            key: Key::new("P", "d"),
            updates: vec![Update::Set("y".into(), Value::B(vec![0; 200 * 1024]))],
            condition: None,
        },
    ];
    assert!(matches!(
        t.transact(grow).await,
        Err(StoreError::TooLarge(_))
    ));
    assert!(t.get(&Key::new("P", "b")).await.unwrap().is_none());
    assert!(
        t.get(&Key::new("P", "e")).await.unwrap().is_none(),
        "nothing of a failed transaction is written"
    );
    assert!(t.transact(vec![]).await.is_ok());
}

#[tokio::test]
async fn updates_refuse_non_numbers_and_key_changes() {
    let dir = tempfile::tempdir().unwrap();
    let t = EmbeddedStore::open(dir.path()).unwrap().table();
    let k = Key::new("P#u", "1");
    t.put(item("P#u", "1", &[("s", Value::S("text".into()))]), None)
        .await
        .unwrap();
    assert!(matches!(
        t.update(&k, vec![Update::Add("s".into(), 1)], None).await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        t.update(&k, vec![Update::Set("SK".into(), "2".into())], None)
            .await,
        Err(StoreError::Backend(_))
    ));
    assert_eq!(
        t.get(&k).await.unwrap().unwrap()["s"],
        Value::S("text".into())
    );
    // Setting index keys and a ttl through an update moves the item into the index and
    // makes it expire.
    t.update(
        &k,
        vec![
            Update::Set(GSI1PK.into(), "G".into()),
            Update::Set(GSI1SK.into(), "1".into()),
        ],
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        t.query(Query::partition("G").on(Index::Gsi1))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    t.update(
        &k,
        vec![Update::Set(TTL.into(), Value::int(now() - 1))],
        None,
    )
    .await
    .unwrap();
    assert!(t.get(&k).await.unwrap().is_none());
    assert!(
        t.query(Query::partition("G").on(Index::Gsi1))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn queries_handle_unusual_keys_and_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let t = EmbeddedStore::open(dir.path()).unwrap().table();
    // Byte order, not locale order: "Z" < "a" < "ab" < "a\u{10FFFF}" < "é" < "\u{10FFFF}".
    for sk in ["a", "Z", "é", "\u{10FFFF}", "ab", "a\u{10FFFF}"] {
        t.put(item("P#o", sk, &[]), None).await.unwrap();
    }
    let all: Vec<String> = t
        .query(Query::partition("P#o"))
        .await
        .unwrap()
        .items
        .iter()
        .map(|i| i["SK"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(all, ["Z", "a", "ab", "a\u{10FFFF}", "é", "\u{10FFFF}"]);
    let with_a = t
        .query(Query::partition("P#o").begins_with("a"))
        .await
        .unwrap();
    assert_eq!(with_a.items.len(), 3);
    let max = t
        .query(Query::partition("P#o").begins_with("\u{10FFFF}"))
        .await
        .unwrap();
    assert_eq!(max.items.len(), 1);

    // A cursor must come from a query of the same partition and index.
    let page = t.query(Query::partition("P#o").limit(2)).await.unwrap();
    let cursor = page.cursor.clone().unwrap();
    assert!(matches!(
        t.query(Query::partition("P#other").after(Some(cursor.clone())))
            .await,
        Err(StoreError::BadCursor)
    ));
    assert!(matches!(
        t.query(Query::partition("P#o").on(Index::Gsi1).after(Some(cursor)))
            .await,
        Err(StoreError::BadCursor)
    ));
    let foreign = Cursor::encode(&[("x".to_owned(), "y".to_owned())].into_iter().collect());
    assert!(matches!(
        t.query(Query::partition("P#o").after(Some(foreign))).await,
        Err(StoreError::BadCursor)
    ));
    let bad = Cursor::from_client("e30").unwrap(); // "{}"
    assert!(matches!(
        t.query(Query::partition("P#o").after(Some(bad))).await,
        Err(StoreError::BadCursor)
    ));
    // A page exactly at the end carries no cursor.
    let exact = t.query(Query::partition("P#o").limit(6)).await.unwrap();
    assert!(exact.items.len() == 6 && exact.cursor.is_none());
    let capped = t
        .query(Query::partition("P#o").limit(100_000))
        .await
        .unwrap();
    assert_eq!(capped.items.len(), 6);
    // Bounds in the wrong order match nothing, as the AWS adapter answers them.
    assert!(
        t.query(Query::partition("P#o").sort(SortKey::Between("b".into(), "a".into())))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn blobs_list_by_prefix_and_hold_large_values() {
    let dir = tempfile::tempdir().unwrap();
    let b = EmbeddedStore::open(dir.path()).unwrap().blobs();
    let big: Vec<u8> = (0..5_000_000u32).map(|i| i as u8).collect();
    b.put("big", big.clone(), Some("application/octet-stream"))
        .await
        .unwrap();
    assert_eq!(b.get("big").await.unwrap().unwrap().bytes, big);
    assert_eq!(b.head("big").await.unwrap().unwrap().size, 5_000_000);
    for i in 0..25 {
        b.put(&format!("p/{i:02}"), vec![i], None).await.unwrap();
    }
    let mut keys = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = b.list("p/", after.as_deref(), 10).await.unwrap();
        keys.extend(page.objects.into_iter().map(|o| o.key));
        after = page.cursor;
        if after.is_none() {
            break;
        }
    }
    assert_eq!(
        keys,
        (0..25).map(|i| format!("p/{i:02}")).collect::<Vec<_>>()
    );
    assert!(
        b.list("", None, 1000)
            .await
            .unwrap()
            .objects
            .iter()
            .any(|o| o.key == "big")
    );
    assert!(b.put("", vec![], None).await.is_err());
}

#[tokio::test]
async fn queues_are_separate_and_validate_their_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let a = store.queue("a", QueueConfig::default());
    let b = store.queue("b", QueueConfig::default());
    let ids = a.send_batch(vec!["1".into(), "2".into()]).await.unwrap();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 2);
    assert!(
        b.receive(10, 30).await.unwrap().is_empty(),
        "queues do not share messages"
    );
    let got = a.receive(10, 30).await.unwrap();
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["1", "2"],
        "send order"
    );
    assert_eq!(got.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), ids);
    assert!(
        b.delete(&got[0].receipt).await.is_ok(),
        "another queue's receipt deletes nothing"
    );
    assert!(b.change_visibility(&got[0].receipt, 0).await.is_err());
    assert!(a.send_batch(vec![]).await.is_err());
    assert!(a.receive(0, 30).await.is_err());
    assert!(a.receive(11, 30).await.is_err());
    assert!(a.change_visibility("no-such-receipt", 0).await.is_err());
    a.delete("no-such-receipt").await.unwrap();
    // A zero visibility timeout leaves messages visible, yet one receive returns each once.
    a.change_visibility(&got[0].receipt, 0).await.unwrap();
    a.change_visibility(&got[1].receipt, 0).await.unwrap();
    let again = a.receive(10, 0).await.unwrap();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|m| m.receive_count == 2));
}

#[tokio::test]
async fn dead_lettered_messages_reach_their_queue_and_keep_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let q = store.queue(
        "work",
        QueueConfig {
            max_receives: Some(2),
            dead_letter: Some("work-dlq".into()),
        },
    );
    let dlq = store.queue("work-dlq", QueueConfig::default());
    q.send_batch(vec!["x".into(), "y".into(), "z".into()])
        .await
        .unwrap();
    for n in 1..=2 {
        let got = q.receive(10, 0).await.unwrap();
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|m| m.receive_count == n));
    }
    q.send_batch(vec!["fresh".into()]).await.unwrap();
    // The third receive moves x, y, z and still delivers the fresh message.
    let got = q.receive(10, 30).await.unwrap();
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["fresh"]
    );
    let dead = dlq.receive(10, 30).await.unwrap();
    assert_eq!(
        dead.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["x", "y", "z"]
    );
    assert!(dead.iter().all(|m| m.receive_count == 1));
}

#[tokio::test]
async fn reads_of_missing_or_invalid_keys() {
    let dir = tempfile::tempdir().unwrap();
    let t = EmbeddedStore::open(dir.path()).unwrap().table();
    assert!(t.get(&Key::new("P", "none")).await.unwrap().is_none());
    assert!(
        t.get(&Key::new("", "x")).await.is_err(),
        "DynamoDB refuses empty key values"
    );
    assert!(t.put(item("P", "", &[]), None).await.is_err());
    let mut gsi_not_string = item("P", "g", &[]);
    gsi_not_string.insert(GSI1PK.into(), Value::int(1));
    gsi_not_string.insert(GSI1SK.into(), Value::S("s".into()));
    assert!(t.put(gsi_not_string, None).await.is_err());
}

/// Every sort condition, in both directions, paged with several limits, against the
/// same selection done in memory: each page boundary and tie must land exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_queries_match_an_in_memory_model() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open_with(
        dir.path(),
        OpenOptions {
            sync: SyncMode::Normal,
            readers: 2,
        },
    )
    .unwrap();
    let t = store.table();
    // Sort keys with shared prefixes, non-ASCII and the largest code point; index sort
    // keys with many ties spread over two table partitions.
    let sks: Vec<String> = (0..120)
        .map(|i| match i % 4 {
            0 => format!("a{i:03}"),
            1 => format!("ab{i:03}"),
            2 => format!("é{i:03}"),
            _ => format!("a\u{10FFFF}{i:03}"),
        })
        .collect();
    let mut model = Vec::new();
    for (i, sk) in sks.iter().enumerate() {
        let pk = if i % 3 == 0 { "P#m1" } else { "P#m2" };
        let mut it = item(pk, sk, &[]);
        it.insert(GSI1PK.into(), Value::S("G#m".into()));
        it.insert(GSI1SK.into(), Value::S(format!("g{}", i % 5)));
        if i % 7 == 0 {
            it.insert(TTL.into(), Value::int(now() - 1));
        } else {
            model.push(it.clone());
        }
        t.put(it, None).await.unwrap();
    }
    let sorts = [
        SortKey::Any,
        SortKey::BeginsWith("a".into()),
        SortKey::BeginsWith("ab".into()),
        SortKey::BeginsWith("a\u{10FFFF}".into()),
        SortKey::Between("a010".into(), "ab061".into()),
        SortKey::Gt("ab".into()),
        SortKey::Ge("g2".into()),
        SortKey::Lt("é".into()),
        SortKey::Le("g3".into()),
        SortKey::Between("g1".into(), "g3".into()),
    ];
    let s = |it: &Item, k: &str| it[k].as_str().unwrap().to_owned();
    for index in [Index::Primary, Index::Gsi1] {
        for sort in &sorts {
            for forward in [true, false] {
                let (partition, col) = match index {
                    Index::Primary => ("P#m2", "SK"),
                    Index::Gsi1 => ("G#m", GSI1SK),
                };
                let matches = |v: &str| match sort {
                    SortKey::Any => true,
                    SortKey::BeginsWith(p) => v.starts_with(p.as_str()),
                    SortKey::Between(a, b) => a.as_str() <= v && v <= b.as_str(),
                    SortKey::Gt(x) => v > x.as_str(),
                    SortKey::Ge(x) => v >= x.as_str(),
                    SortKey::Lt(x) => v < x.as_str(),
                    SortKey::Le(x) => v <= x.as_str(),
                };
                let mut expected: Vec<(String, String, String)> = model
                    .iter()
                    .filter(|it| match index {
                        Index::Primary => s(it, "PK") == partition,
                        Index::Gsi1 => true,
                    })
                    .filter(|it| matches(&s(it, col)))
                    .map(|it| match index {
                        Index::Primary => (s(it, "SK"), String::new(), String::new()),
                        Index::Gsi1 => (s(it, GSI1SK), s(it, "PK"), s(it, "SK")),
                    })
                    .collect();
                expected.sort();
                if !forward {
                    expected.reverse();
                }
                for limit in [1, 3, 1000] {
                    let mut q = Query::partition(partition)
                        .on(index)
                        .sort(sort.clone())
                        .limit(limit);
                    q.forward = forward;
                    let mut got = Vec::new();
                    let mut cursor = None;
                    loop {
                        let page = t.query(q.clone().after(cursor)).await.unwrap();
                        assert!(page.items.len() <= limit);
                        got.extend(page.items.iter().map(|it| match index {
                            Index::Primary => (s(it, "SK"), String::new(), String::new()),
                            Index::Gsi1 => (s(it, GSI1SK), s(it, "PK"), s(it, "SK")),
                        }));
                        cursor = page.cursor;
                        if cursor.is_none() {
                            break;
                        }
                    }
                    assert_eq!(
                        got, expected,
                        "{index:?} {sort:?} forward={forward} limit={limit}"
                    );
                }
            }
        }
    }
}
