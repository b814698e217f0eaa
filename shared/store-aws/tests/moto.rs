//! Checks of the AWS adapters against a moto server:
//!
//! ```text
//! moto_server -p 5055 &
//! AWS_ENDPOINT_URL=http://127.0.0.1:5055 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
//!   AWS_REGION=us-east-1 cargo test -p zerodb-store-aws --test moto
//! ```
//!
//! (`infra/test.sh` sets this up for the whole workspace.) They fail, never skip, when
//! `AWS_ENDPOINT_URL` is unset, so they cannot pass by accident against nothing or, worse,
//! touch a real account. The shared conformance suite in `tests/` is the full test; these
//! cover what only this adapter does (clearing expired items, folding updates, cursors).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use zerodb_domain::store::{
    Blobs, Condition, Cursor, GSI1PK, GSI1SK, Index, Item, Key, Query, Queue, SortKey, StoreError,
    TTL, Table, TxOp, Update, Value,
};
use zerodb_store_aws::{AwsBlobs, AwsClients, AwsQueue, AwsTable, provision};

const NEEDS_MOTO: &str = "needs a moto server: set AWS_ENDPOINT_URL (see the module docs)";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A name no other test run uses, so runs share one moto server.
fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn clients() -> AwsClients {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "{NEEDS_MOTO}"
    );
    AwsClients::from_env().await
}

async fn table() -> AwsTable {
    let c = clients().await;
    let name = unique("t");
    provision::create_table(&c.dynamodb, &name)
        .await
        .expect("create table");
    provision::create_table(&c.dynamodb, &name)
        .await
        .expect("creating twice is fine");
    AwsTable::new(c.dynamodb, name)
}

fn item(pk: &str, sk: &str, attrs: &[(&str, Value)]) -> Item {
    let mut it = Key::new(pk, sk).item();
    for (k, v) in attrs {
        it.insert((*k).to_owned(), v.clone());
    }
    it
}

fn sks(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["SK"].as_str().expect("string SK").to_owned())
        .collect()
}

async fn page_all(t: &AwsTable, q: Query, limit: usize) -> Vec<Item> {
    let mut out = Vec::new();
    let mut cursor = None;
    for _ in 0..10_000 {
        let page = t
            .query(q.clone().limit(limit).after(cursor))
            .await
            .expect("query page");
        assert!(page.items.len() <= limit);
        out.extend(page.items);
        cursor = page.cursor;
        if cursor.is_none() {
            return out;
        }
    }
    panic!("paging does not terminate");
}

#[tokio::test]
async fn conditions_conflict_and_reserved_names_work() {
    let t = table().await;
    let k = Key::new("P", "S");
    t.put(
        item("P", "S", &[("name", "a".into()), ("count", Value::int(1))]),
        Some(Condition::NotExists),
    )
    .await
    .expect("create");
    let again = t.put(item("P", "S", &[]), Some(Condition::NotExists)).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    t.put(
        item("P", "S", &[("count", Value::int(2))]),
        Some(Condition::Equals("count".into(), Value::N("1.0".into()))),
    )
    .await
    .expect("numbers compare by value");
    let stale = t
        .delete(&k, Some(Condition::Equals("count".into(), Value::int(1))))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict)));
    let upd = t
        .update(
            &k,
            vec![
                Update::Add("count".into(), 3),
                Update::Add("count".into(), 1),
                Update::Set("ttl".into(), Value::int(now() + 99)),
            ],
            None,
        )
        .await
        .expect("update");
    assert_eq!(
        upd["count"].as_i64(),
        Some(6),
        "repeated changes to one attribute fold"
    );
    let empty = t
        .update(&Key::new("P", "new"), vec![], None)
        .await
        .expect("empty update creates");
    assert_eq!(empty, Key::new("P", "new").item());
    let missing = t.put(Item::new(), None).await;
    assert!(matches!(missing, Err(StoreError::MissingKey)));
    let big = t
        .put(
            item("P", "big", &[("b", Value::B(vec![0; 401 * 1024]))]),
            None,
        )
        .await;
    assert!(matches!(big, Err(StoreError::TooLarge(_))));
}

#[tokio::test]
async fn expired_items_are_absent_everywhere() {
    let t = table().await;
    let past = now() - 5;
    for sk in ["a", "b", "c", "d"] {
        t.put(
            item("P", sk, &[(TTL, Value::int(past)), ("old", true.into())]),
            None,
        )
        .await
        .expect("put");
    }
    t.put(item("P", "live", &[(TTL, Value::int(now() + 3600))]), None)
        .await
        .expect("put");
    t.put(
        item("P", "odd", &[(TTL, Value::S("not a number".into()))]),
        None,
    )
    .await
    .expect("put");
    assert!(t.get(&Key::new("P", "a")).await.expect("get").is_none());
    let page = t
        .query(Query::partition("P").limit(1))
        .await
        .expect("query");
    assert_eq!(
        sks(&page.items),
        vec!["live"],
        "a page skips expired items to fill up"
    );
    assert!(page.cursor.is_some());
    let rest = t
        .query(Query::partition("P").after(page.cursor))
        .await
        .expect("query");
    assert_eq!(
        sks(&rest.items),
        vec!["odd"],
        "a non-numeric ttl never expires"
    );

    t.put(item("P", "a", &[]), Some(Condition::NotExists))
        .await
        .expect("NotExists over expired");
    let exists = t
        .update(
            &Key::new("P", "b"),
            vec![Update::Add("n".into(), 1)],
            Some(Condition::Exists),
        )
        .await;
    assert!(matches!(exists, Err(StoreError::Conflict)));
    let fresh = t
        .update(
            &Key::new("P", "b"),
            vec![Update::Add("n".into(), 1)],
            Some(Condition::AttributeNotExists("old".into())),
        )
        .await
        .expect("update over expired");
    assert_eq!(
        fresh,
        item("P", "b", &[("n", Value::int(1))]),
        "starts from just the key"
    );
    assert!(
        t.delete(&Key::new("P", "c"), None)
            .await
            .expect("delete")
            .is_none()
    );
    let eq = t
        .delete(
            &Key::new("P", "d"),
            Some(Condition::Equals("old".into(), true.into())),
        )
        .await;
    assert!(
        matches!(eq, Err(StoreError::Conflict)),
        "Equals fails on an expired item"
    );

    // In a transaction too: the expired item under an update is cleared and retried.
    t.put(
        item("P", "tx", &[(TTL, Value::int(past)), ("old", true.into())]),
        None,
    )
    .await
    .expect("put");
    t.transact(vec![
        TxOp::Update {
            key: Key::new("P", "tx"),
            updates: vec![Update::Add("n".into(), 2)],
            condition: None,
        },
        TxOp::Check {
            key: Key::new("P", "d"),
            condition: Condition::NotExists,
        },
    ])
    .await
    .expect("transaction over expired items");
    assert_eq!(
        t.get(&Key::new("P", "tx")).await.expect("get"),
        Some(item("P", "tx", &[("n", Value::int(2))]))
    );
}

async fn seed(t: &AwsTable, pk: &str, n: usize, expired_every: Option<usize>) {
    let mut ops = Vec::new();
    for i in 0..n {
        let mut it = item(pk, &format!("ITEM#{i:04}"), &[("i", Value::int(i as i64))]);
        it.insert(GSI1PK.into(), Value::S(format!("{pk}#IDX")));
        it.insert(GSI1SK.into(), Value::S(format!("G#{:03}", i % 100)));
        if expired_every.is_some_and(|e| i % e == 0) {
            it.insert(TTL.into(), Value::int(now() - 5));
        }
        ops.push(TxOp::Put {
            item: it,
            condition: None,
        });
        if ops.len() == 25 {
            t.transact(std::mem::take(&mut ops)).await.expect("seed");
        }
    }
    if !ops.is_empty() {
        t.transact(ops).await.expect("seed");
    }
}

#[tokio::test]
async fn paging_returns_every_item_once() {
    let t = table().await;
    seed(&t, "P", 1000, None).await;
    for backward in [false, true] {
        let mut q = Query::partition("P").begins_with("ITEM#");
        if backward {
            q = q.backward();
        }
        let got = sks(&page_all(&t, q, 7).await);
        let mut want: Vec<String> = (0..1000).map(|i| format!("ITEM#{i:04}")).collect();
        if backward {
            want.reverse();
        }
        assert_eq!(got, want, "backward={backward}");
    }
    let idx = page_all(&t, Query::partition("P#IDX").on(Index::Gsi1), 7).await;
    assert_eq!(idx.len(), 1000);
    assert_eq!(
        sks(&idx).into_iter().collect::<BTreeSet<_>>().len(),
        1000,
        "index ties neither repeat nor drop"
    );
    let gsks: Vec<&str> = idx
        .iter()
        .map(|i| i[GSI1SK].as_str().expect("GSI1SK"))
        .collect();
    assert!(gsks.windows(2).all(|w| w[0] <= w[1]));

    // Expired items scattered through the partition are skipped without losing live ones.
    seed(&t, "X", 300, Some(3)).await;
    let live = page_all(&t, Query::partition("X"), 7).await;
    assert_eq!(live.len(), 200);
    assert_eq!(sks(&live).into_iter().collect::<BTreeSet<_>>().len(), 200);
    let live_idx = page_all(&t, Query::partition("X#IDX").on(Index::Gsi1).backward(), 4).await;
    assert_eq!(live_idx.len(), 200);

    let between = t
        .query(Query::partition("P").sort(SortKey::Between("ITEM#0010".into(), "ITEM#0012".into())))
        .await
        .expect("q");
    assert_eq!(
        sks(&between.items),
        vec!["ITEM#0010", "ITEM#0011", "ITEM#0012"]
    );
    let reversed = t
        .query(Query::partition("P").sort(SortKey::Between("b".into(), "a".into())))
        .await
        .expect("q");
    assert!(reversed.items.is_empty());

    let page = t.query(Query::partition("P").limit(2)).await.expect("q");
    let foreign = t.query(Query::partition("Q").after(page.cursor)).await;
    assert!(
        matches!(foreign, Err(StoreError::BadCursor)),
        "a cursor of another partition is refused"
    );
    let garbage = Cursor::encode(&[("x".to_owned(), "y".to_owned())].into());
    assert!(matches!(
        t.query(Query::partition("P").after(Some(garbage))).await,
        Err(StoreError::BadCursor)
    ));
}

#[tokio::test]
async fn transactions_roll_back() {
    let t = table().await;
    t.put(item("P", "exists", &[("v", Value::int(1))]), None)
        .await
        .expect("put");
    let failing = vec![
        TxOp::Put {
            item: item("P", "a", &[]),
            condition: None,
        },
        TxOp::Update {
            key: Key::new("P", "exists"),
            updates: vec![Update::Add("v".into(), 1)],
            condition: None,
        },
        TxOp::Check {
            key: Key::new("P", "absent"),
            condition: Condition::Exists,
        },
    ];
    assert!(matches!(
        t.transact(failing).await,
        Err(StoreError::Conflict)
    ));
    assert!(t.get(&Key::new("P", "a")).await.expect("get").is_none());
    assert_eq!(
        t.get(&Key::new("P", "exists"))
            .await
            .expect("get")
            .expect("item")["v"]
            .as_i64(),
        Some(1)
    );
    let many: Vec<TxOp> = (0..101)
        .map(|i| TxOp::Delete {
            key: Key::new("P", format!("{i}")),
            condition: None,
        })
        .collect();
    assert!(matches!(
        t.transact(many).await,
        Err(StoreError::TooManyOperations(101))
    ));
    t.transact(vec![
        TxOp::Put {
            item: item("P", "a", &[]),
            condition: Some(Condition::NotExists),
        },
        TxOp::Update {
            key: Key::new("P", "exists"),
            updates: vec![Update::Add("v".into(), 1)],
            condition: Some(Condition::Exists),
        },
        TxOp::Delete {
            key: Key::new("P", "gone"),
            condition: None,
        },
        TxOp::Check {
            key: Key::new("P", "x"),
            condition: Condition::All(vec![]),
        },
    ])
    .await
    .expect("commit");
    assert_eq!(
        t.get(&Key::new("P", "exists"))
            .await
            .expect("get")
            .expect("item")["v"]
            .as_i64(),
        Some(2)
    );
}

#[tokio::test]
async fn blobs_round_trip_and_list() {
    let c = clients().await;
    let bucket = unique("b");
    provision::create_bucket(&c.s3, &bucket)
        .await
        .expect("bucket");
    provision::create_bucket(&c.s3, &bucket)
        .await
        .expect("creating twice is fine");
    let b = AwsBlobs::new(c.s3, bucket);
    b.put("s/a", b"{}".to_vec(), Some("application/json"))
        .await
        .expect("put");
    b.put("s/b", vec![1; 70_000], None).await.expect("put");
    b.put("s/c", vec![], None).await.expect("put");
    b.put("t/a", vec![], None).await.expect("put");
    let got = b.get("s/a").await.expect("get").expect("exists");
    assert_eq!(
        (got.bytes.as_slice(), got.meta.content_type.as_deref()),
        (&b"{}"[..], Some("application/json"))
    );
    assert_eq!(
        b.head("s/b").await.expect("head").map(|m| m.size),
        Some(70_000)
    );
    assert!(b.get("s/none").await.expect("get").is_none());
    assert!(b.head("s/none").await.expect("head").is_none());
    let first = b.list("s/", None, 2).await.expect("list");
    assert_eq!(
        first
            .objects
            .iter()
            .map(|o| o.key.as_str())
            .collect::<Vec<_>>(),
        ["s/a", "s/b"]
    );
    let rest = b
        .list("s/", first.cursor.as_deref(), 2)
        .await
        .expect("list");
    assert_eq!(
        rest.objects
            .iter()
            .map(|o| o.key.as_str())
            .collect::<Vec<_>>(),
        ["s/c"]
    );
    assert!(rest.cursor.is_none());
    let url = b
        .presign_get("s/a", 60)
        .await
        .expect("presign")
        .expect("a URL");
    assert!(url.contains("X-Amz-Signature"), "{url}");
    b.delete("s/a").await.expect("delete");
    b.delete("s/a").await.expect("delete again");
    assert!(b.get("s/a").await.expect("get").is_none());
}

#[tokio::test]
async fn queue_visibility_and_dead_letters() {
    let c = clients().await;
    let dlq_url = provision::create_queue(&c.sqs, &unique("dlq"), None)
        .await
        .expect("dlq");
    let url = provision::create_queue(&c.sqs, &unique("q"), Some((&dlq_url, 2)))
        .await
        .expect("queue");
    let q = AwsQueue::new(c.sqs.clone(), url);
    let dlq = AwsQueue::new(c.sqs, dlq_url);

    let ids = q
        .send_batch((0..10).map(|i| format!("m{i}")).collect())
        .await
        .expect("send");
    assert_eq!(ids.len(), 10);
    assert!(
        q.send_batch((0..11).map(|i| i.to_string()).collect())
            .await
            .is_err()
    );
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 10 && Instant::now() < deadline {
        for m in q.receive(10, 30).await.expect("receive") {
            assert_eq!(m.receive_count, 1);
            seen.insert(m.body.clone());
            q.delete(&m.receipt).await.expect("delete");
        }
    }
    assert_eq!(seen.len(), 10);

    q.send_batch(vec!["job".into()]).await.expect("send");
    let first = q.receive(1, 1).await.expect("receive");
    assert_eq!(first.len(), 1);
    assert!(
        q.receive(1, 30).await.expect("receive").is_empty(),
        "hidden while in flight"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let second = q.receive(1, 30).await.expect("receive");
    assert_eq!(
        second.first().map(|m| m.receive_count),
        Some(2),
        "visible again after the timeout"
    );
    q.change_visibility(&second[0].receipt, 0)
        .await
        .expect("release");
    // The third receive is past the maximum of 2: SQS moves it to the dead-letter queue.
    assert!(q.receive(1, 30).await.expect("receive").is_empty());
    let dead = dlq.receive(1, 30).await.expect("receive dlq");
    assert_eq!(dead.first().map(|m| m.body.as_str()), Some("job"));
}
