//! The storage conformance suite: one set of checks every adapter must pass, so the
//! embedded store behaves as DynamoDB, S3 and SQS do and repositories need no second copy.
//! `tests/conformance_embedded.rs` and `tests/conformance_aws.rs` run each case.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use zerodb_domain::store::{
    Blobs, Condition, Cursor, GSI1PK, GSI1SK, Index, Item, Key, Query, Queue, SortKey, StoreError,
    TTL, Table, TxOp, Update, Value,
};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
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
        .map(|i| i["SK"].as_str().expect("SK is a string").to_owned())
        .collect()
}

pub async fn put_get_delete_round_trip_every_value_type(t: Arc<dyn Table>) {
    let mut nested = std::collections::BTreeMap::new();
    nested.insert(
        "inner".to_owned(),
        Value::L(vec![Value::int(1), Value::S("x".into()), Value::Null]),
    );
    let original = item(
        "P#types",
        "S#1",
        &[
            ("s", Value::S("héllo ✓".into())),
            ("n", Value::N("3.25".into())),
            ("b", Value::B(vec![0, 1, 2, 255])),
            ("t", Value::Bool(true)),
            ("z", Value::Null),
            ("m", Value::M(nested)),
        ],
    );
    t.put(original.clone(), None).await.expect("put");
    let got = t
        .get(&Key::new("P#types", "S#1"))
        .await
        .expect("get")
        .expect("item exists");
    assert_eq!(got["s"], original["s"]);
    assert_eq!(got["n"].as_f64(), Some(3.25));
    assert_eq!(got["b"], original["b"]);
    assert_eq!(got["t"], Value::Bool(true));
    assert_eq!(got["m"], original["m"]);
    let old = t
        .delete(&Key::new("P#types", "S#1"), None)
        .await
        .expect("delete");
    assert_eq!(old.map(|o| o["s"].clone()), Some(original["s"].clone()));
    assert!(
        t.get(&Key::new("P#types", "S#1"))
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        t.delete(&Key::new("P#types", "S#1"), None)
            .await
            .expect("delete missing")
            .is_none()
    );
}

pub async fn conditional_writes_conflict_and_write_nothing(t: Arc<dyn Table>) {
    let k = Key::new("P#cond", "S#1");
    t.put(
        item("P#cond", "S#1", &[("v", Value::int(1))]),
        Some(Condition::NotExists),
    )
    .await
    .expect("first create");
    let again = t
        .put(
            item("P#cond", "S#1", &[("v", Value::int(2))]),
            Some(Condition::NotExists),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict)),
        "second create must conflict: {again:?}"
    );
    assert_eq!(
        t.get(&k).await.unwrap().unwrap()["v"].as_i64(),
        Some(1),
        "a failed put writes nothing"
    );

    // Optimistic concurrency on a version number.
    t.put(
        item("P#cond", "S#1", &[("v", Value::int(2))]),
        Some(Condition::Equals("v".into(), Value::int(1))),
    )
    .await
    .expect("matching version");
    let stale = t
        .put(
            item("P#cond", "S#1", &[("v", Value::int(3))]),
            Some(Condition::Equals("v".into(), Value::int(1))),
        )
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict)));

    let upd = t
        .update(
            &Key::new("P#cond", "S#missing"),
            vec![Update::Set("v".into(), Value::int(1))],
            Some(Condition::Exists),
        )
        .await;
    assert!(
        matches!(upd, Err(StoreError::Conflict)),
        "update of a missing item under Exists must conflict"
    );
    assert!(
        t.get(&Key::new("P#cond", "S#missing"))
            .await
            .unwrap()
            .is_none()
    );

    let del = t
        .delete(&k, Some(Condition::Equals("v".into(), Value::int(99))))
        .await;
    assert!(matches!(del, Err(StoreError::Conflict)));
    assert!(
        t.get(&k).await.unwrap().is_some(),
        "a failed delete removes nothing"
    );

    let guarded = t
        .put(
            item("P#cond", "S#1", &[("v", Value::int(5))]),
            Some(Condition::All(vec![
                Condition::Exists,
                Condition::AttributeNotExists("locked".into()),
            ])),
        )
        .await;
    assert!(
        guarded.is_ok(),
        "All(Exists, AttributeNotExists) holds: {guarded:?}"
    );
}

/// A number compared with a constant (a balance covering a debit) and an attribute's
/// presence, in updates and transactions: what a credit reservation is made of.
pub async fn numeric_and_presence_conditions(t: Arc<dyn Table>) {
    let k = Key::new("P#num", "S#1");
    t.put(item("P#num", "S#1", &[("avail", Value::int(10))]), None)
        .await
        .unwrap();
    let debit = |n: i64| {
        let (t, k) = (t.clone(), k.clone());
        async move {
            t.update(
                &k,
                vec![
                    Update::Add("avail".into(), -n),
                    Update::Set(format!("hold_{n}"), Value::int(n)),
                ],
                Some(Condition::AtLeast("avail".into(), n)),
            )
            .await
        }
    };
    assert!(debit(4).await.is_ok(), "10 covers 4");
    assert!(
        debit(6).await.is_ok(),
        "6 covers 6: at least, not more than"
    );
    assert!(
        matches!(debit(1).await, Err(StoreError::Conflict)),
        "0 does not cover 1"
    );
    let got = t.get(&k).await.unwrap().unwrap();
    assert_eq!(got.get("avail").and_then(Value::as_i64), Some(0));
    assert!(
        !got.contains_key("hold_1"),
        "a refused update writes nothing"
    );
    // An absent number is no balance at all.
    assert!(matches!(
        t.update(
            &k,
            vec![Update::Add("x".into(), 1)],
            Some(Condition::AtLeast("missing".into(), 0))
        )
        .await,
        Err(StoreError::Conflict)
    ));
    // Presence, in a transaction: the hold is released once, never twice.
    let release = |name: &'static str| TxOp::Update {
        key: k.clone(),
        updates: vec![Update::Remove(name.into()), Update::Add("avail".into(), 4)],
        condition: Some(Condition::AttributeExists(name.into())),
    };
    t.transact(vec![release("hold_4")]).await.unwrap();
    assert!(matches!(
        t.transact(vec![release("hold_4")]).await,
        Err(StoreError::Conflict)
    ));
    let got = t.get(&k).await.unwrap().unwrap();
    assert_eq!(got.get("avail").and_then(Value::as_i64), Some(4));
    assert!(!got.contains_key("hold_4"));
    assert!(got.contains_key("hold_6"));
}

pub async fn update_sets_removes_and_adds(t: Arc<dyn Table>) {
    let k = Key::new("P#upd", "counter");
    let first = t
        .update(
            &k,
            vec![
                Update::Add("count".into(), 1),
                Update::Set("name".into(), "x".into()),
            ],
            None,
        )
        .await
        .expect("create by update");
    assert_eq!(first["count"].as_i64(), Some(1));
    assert_eq!(first["PK"].as_str(), Some("P#upd"));
    let second = t
        .update(
            &k,
            vec![
                Update::Add("count".into(), 41),
                Update::Remove("name".into()),
            ],
            None,
        )
        .await
        .expect("increment");
    assert_eq!(second["count"].as_i64(), Some(42));
    assert!(!second.contains_key("name"));

    // Concurrent increments are atomic.
    let mut handles = Vec::new();
    for _ in 0..20 {
        let t = t.clone();
        let k = k.clone();
        handles.push(tokio::spawn(async move {
            t.update(&k, vec![Update::Add("count".into(), 1)], None)
                .await
        }));
    }
    for h in handles {
        h.await.expect("join").expect("increment");
    }
    assert_eq!(
        t.get(&k).await.unwrap().unwrap()["count"].as_i64(),
        Some(62)
    );
}

pub async fn oversized_items_are_refused(t: Arc<dyn Table>) {
    let big = item("P#big", "S", &[("blob", Value::B(vec![7u8; 401 * 1024]))]);
    assert!(matches!(
        t.put(big, None).await,
        Err(StoreError::TooLarge(_))
    ));
    let fits = item("P#big", "S", &[("blob", Value::B(vec![7u8; 300 * 1024]))]);
    t.put(fits, None).await.expect("a 300 KB item fits");
}

async fn seed_partition(t: &Arc<dyn Table>, pk: &str, n: usize) {
    // Written through transactions of 100 (DynamoDB's most) so the AWS run stays quick.
    let mut ops = Vec::new();
    for i in 0..n {
        let mut it = item(pk, &format!("ITEM#{i:04}"), &[("i", Value::int(i as i64))]);
        it.insert(GSI1PK.into(), Value::S(format!("{pk}#IDX")));
        // Many ties on the index sort key, so index paging must break ties exactly.
        it.insert(GSI1SK.into(), Value::S(format!("G#{:03}", i % 100)));
        ops.push(TxOp::Put {
            item: it,
            condition: None,
        });
        if ops.len() == 100 {
            t.transact(std::mem::take(&mut ops))
                .await
                .expect("seed batch");
        }
    }
    if !ops.is_empty() {
        t.transact(ops).await.expect("seed batch");
    }
}

async fn page_all(t: &Arc<dyn Table>, q: Query, limit: usize) -> (Vec<Item>, usize) {
    let mut out = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = t
            .query(q.clone().limit(limit).after(cursor))
            .await
            .expect("query page");
        pages += 1;
        assert!(
            page.items.len() <= limit,
            "page of {} exceeds limit {limit}",
            page.items.len()
        );
        out.extend(page.items);
        cursor = page.cursor;
        if cursor.is_none() {
            return (out, pages);
        }
        assert!(pages < 10_000, "paging does not terminate");
    }
}

pub async fn query_by_prefix_and_range_in_both_directions(t: Arc<dyn Table>) {
    seed_partition(&t, "P#q", 30).await;
    t.put(item("P#q", "OTHER#1", &[]), None).await.unwrap();
    t.put(item("P#q2", "ITEM#0000", &[]), None).await.unwrap();

    let fwd = t
        .query(Query::partition("P#q").begins_with("ITEM#"))
        .await
        .unwrap();
    assert_eq!(
        fwd.items.len(),
        30,
        "prefix query sees only its prefix in its partition"
    );
    assert_eq!(
        sks(&fwd.items).first().map(String::as_str),
        Some("ITEM#0000")
    );
    let back = t
        .query(
            Query::partition("P#q")
                .begins_with("ITEM#")
                .backward()
                .limit(3),
        )
        .await
        .unwrap();
    assert_eq!(
        sks(&back.items),
        vec!["ITEM#0029", "ITEM#0028", "ITEM#0027"]
    );
    assert!(back.cursor.is_some(), "more items remain after a full page");

    let between = t
        .query(
            Query::partition("P#q").sort(SortKey::Between("ITEM#0010".into(), "ITEM#0012".into())),
        )
        .await
        .unwrap();
    assert_eq!(
        sks(&between.items),
        vec!["ITEM#0010", "ITEM#0011", "ITEM#0012"],
        "BETWEEN is inclusive"
    );
    let gt = t
        .query(
            Query::partition("P#q")
                .sort(SortKey::Gt("ITEM#0027".into()))
                .limit(10),
        )
        .await
        .unwrap();
    assert_eq!(sks(&gt.items), vec!["ITEM#0028", "ITEM#0029", "OTHER#1"]);
    let le = t
        .query(Query::partition("P#q").sort(SortKey::Le("ITEM#0001".into())))
        .await
        .unwrap();
    assert_eq!(sks(&le.items), vec!["ITEM#0000", "ITEM#0001"]);
    let lt_back = t
        .query(
            Query::partition("P#q")
                .sort(SortKey::Lt("ITEM#0002".into()))
                .backward(),
        )
        .await
        .unwrap();
    assert_eq!(sks(&lt_back.items), vec!["ITEM#0001", "ITEM#0000"]);
    let ge = t
        .query(Query::partition("P#q").sort(SortKey::Ge("OTHER#1".into())))
        .await
        .unwrap();
    assert_eq!(sks(&ge.items), vec!["OTHER#1"]);
    let none = t.query(Query::partition("P#nothing")).await.unwrap();
    assert!(none.items.is_empty() && none.cursor.is_none());
}

pub async fn cursor_pages_through_1000_items_without_loss_or_repeat(t: Arc<dyn Table>) {
    seed_partition(&t, "P#page", 1000).await;
    for backward in [false, true] {
        let mut q = Query::partition("P#page").begins_with("ITEM#");
        if backward {
            q = q.backward();
        }
        // Pages of 23: 44 of them each way, every one ending on a cursor; moto answers
        // each query in tens of milliseconds, so 143 pages of 7 took 50 s.
        let (items, pages) = page_all(&t, q, 23).await;
        let got = sks(&items);
        let unique: BTreeSet<_> = got.iter().cloned().collect();
        assert_eq!(
            got.len(),
            1000,
            "every item exactly once (backward={backward})"
        );
        assert_eq!(unique.len(), 1000, "no item repeated (backward={backward})");
        assert!(pages >= 44, "pages honour the limit");
        let mut sorted = got.clone();
        sorted.sort();
        if backward {
            sorted.reverse();
        }
        assert_eq!(
            got, sorted,
            "pages are in sort-key order (backward={backward})"
        );
    }
}

pub async fn secondary_index_query_pages_exactly(t: Arc<dyn Table>) {
    seed_partition(&t, "P#gsi", 1000).await;
    let q = Query::partition("P#gsi#IDX")
        .on(Index::Gsi1)
        .sort(SortKey::Between("G#010".into(), "G#019".into()));
    // The index is eventually consistent in DynamoDB; the seed is complete once a read
    // sees all of it, which on a single node is immediate.
    let (items, _) = page_all(&t, q, 9).await;
    assert_eq!(items.len(), 100, "10 index keys x 10 items each");
    let unique: BTreeSet<_> = sks(&items).into_iter().collect();
    assert_eq!(
        unique.len(),
        100,
        "ties on the index sort key do not repeat or drop items"
    );
    let gsks: Vec<&str> = items.iter().map(|i| i[GSI1SK].as_str().unwrap()).collect();
    assert!(gsks.windows(2).all(|w| w[0] <= w[1]), "index order");
    let back = t
        .query(
            Query::partition("P#gsi#IDX")
                .on(Index::Gsi1)
                .backward()
                .limit(1),
        )
        .await
        .unwrap();
    assert_eq!(back.items[0][GSI1SK].as_str(), Some("G#099"));

    // A page cut short by its reader goes on from the item it stopped at, on both keys.
    for (q, index) in [
        (Query::partition("P#gsi#IDX").on(Index::Gsi1), Index::Gsi1),
        (Query::partition("P#gsi"), Index::Primary),
    ] {
        let first = t.query(q.clone().limit(10)).await.unwrap();
        let cut = Cursor::after(&first.items[3], index).expect("key attributes");
        let next = t.query(q.clone().limit(3).after(Some(cut))).await.unwrap();
        assert_eq!(sks(&next.items), sks(&first.items[4..7]), "{index:?}");
    }
    // Bounds in the wrong order match nothing (DynamoDB would refuse the request).
    let none = t
        .query(Query::partition("P#gsi").sort(SortKey::Between("b".into(), "a".into())))
        .await
        .unwrap();
    assert!(none.items.is_empty());
}

pub async fn transactions_are_all_or_nothing(t: Arc<dyn Table>) {
    t.put(item("P#tx", "exists", &[("v", Value::int(1))]), None)
        .await
        .unwrap();
    t.put(item("P#tx", "guard", &[("v", Value::int(1))]), None)
        .await
        .unwrap();
    // The last operation's condition fails, so none of the three may take effect.
    let failing = vec![
        TxOp::Put {
            item: item("P#tx", "a", &[]),
            condition: None,
        },
        TxOp::Update {
            key: Key::new("P#tx", "exists"),
            updates: vec![Update::Add("v".into(), 1)],
            condition: None,
        },
        TxOp::Check {
            key: Key::new("P#tx", "absent"),
            condition: Condition::Exists,
        },
    ];
    assert!(matches!(
        t.transact(failing).await,
        Err(StoreError::Conflict)
    ));
    assert!(
        t.get(&Key::new("P#tx", "a")).await.unwrap().is_none(),
        "no put from a failed transaction"
    );
    assert_eq!(
        t.get(&Key::new("P#tx", "exists")).await.unwrap().unwrap()["v"].as_i64(),
        Some(1),
        "no update either"
    );

    t.transact(vec![
        TxOp::Put {
            item: item("P#tx", "a", &[]),
            condition: Some(Condition::NotExists),
        },
        TxOp::Update {
            key: Key::new("P#tx", "exists"),
            updates: vec![Update::Add("v".into(), 1)],
            condition: Some(Condition::Exists),
        },
        TxOp::Check {
            key: Key::new("P#tx", "guard"),
            condition: Condition::Equals("v".into(), Value::int(1)),
        },
        TxOp::Delete {
            key: Key::new("P#tx", "gone"),
            condition: None,
        },
    ])
    .await
    .expect("a transaction whose conditions hold commits");
    assert!(t.get(&Key::new("P#tx", "a")).await.unwrap().is_some());
    assert_eq!(
        t.get(&Key::new("P#tx", "exists")).await.unwrap().unwrap()["v"].as_i64(),
        Some(2)
    );

    let too_many: Vec<TxOp> = (0..101)
        .map(|i| TxOp::Put {
            item: item("P#tx", &format!("m{i}"), &[]),
            condition: None,
        })
        .collect();
    assert!(matches!(
        t.transact(too_many).await,
        Err(StoreError::TooManyOperations(101))
    ));
    // DynamoDB's 4 MB per transaction: eleven items of 390 KB each are refused whole.
    let big = "x".repeat(390 * 1024);
    let too_big: Vec<TxOp> = (0..11)
        .map(|i| TxOp::Put {
            item: item(
                "P#txbig",
                &format!("b{i}"),
                &[("blob", Value::S(big.clone()))],
            ),
            condition: None,
        })
        .collect();
    assert!(matches!(
        t.transact(too_big).await,
        Err(StoreError::TransactionTooLarge(n)) if n > 4 * 1024 * 1024
    ));
    assert!(t.get(&Key::new("P#txbig", "b0")).await.unwrap().is_none());
}

pub async fn expired_items_are_never_returned(t: Arc<dyn Table>) {
    let past = now() - 10;
    let future = now() + 3600;
    t.put(item("P#ttl", "dead", &[(TTL, Value::int(past))]), None)
        .await
        .unwrap();
    t.put(item("P#ttl", "live", &[(TTL, Value::int(future))]), None)
        .await
        .unwrap();
    t.put(item("P#ttl", "forever", &[]), None).await.unwrap();
    assert!(
        t.get(&Key::new("P#ttl", "dead")).await.unwrap().is_none(),
        "get hides an expired item"
    );
    assert!(t.get(&Key::new("P#ttl", "live")).await.unwrap().is_some());
    let all = t.query(Query::partition("P#ttl")).await.unwrap();
    assert_eq!(
        sks(&all.items),
        vec!["forever", "live"],
        "query hides expired items"
    );
    let one = t.query(Query::partition("P#ttl").limit(1)).await.unwrap();
    assert_eq!(
        sks(&one.items),
        vec!["forever"],
        "a limited page is filled with live items"
    );

    // An expired item counts as absent for conditions and updates.
    t.put(
        item("P#ttl", "dead", &[("v", Value::int(1))]),
        Some(Condition::NotExists),
    )
    .await
    .expect("NotExists holds over an expired item");
    t.put(
        item(
            "P#ttl",
            "dead2",
            &[(TTL, Value::int(past)), ("old", Value::Bool(true))],
        ),
        None,
    )
    .await
    .unwrap();
    let exists = t
        .update(
            &Key::new("P#ttl", "dead2"),
            vec![Update::Set("v".into(), Value::int(1))],
            Some(Condition::Exists),
        )
        .await;
    assert!(
        matches!(exists, Err(StoreError::Conflict)),
        "Exists fails over an expired item"
    );
    let fresh = t
        .update(
            &Key::new("P#ttl", "dead2"),
            vec![Update::Add("n".into(), 1)],
            None,
        )
        .await
        .unwrap();
    assert_eq!(fresh["n"].as_i64(), Some(1));
    assert!(
        !fresh.contains_key("old") && !fresh.contains_key(TTL),
        "update of an expired item starts from nothing: {fresh:?}"
    );
    t.put(item("P#ttl", "dead3", &[(TTL, Value::int(past))]), None)
        .await
        .unwrap();
    assert!(
        t.delete(&Key::new("P#ttl", "dead3"), None)
            .await
            .unwrap()
            .is_none(),
        "delete returns no expired item"
    );
}

pub async fn paging_skips_interleaved_expired_items_without_losing_live_ones(t: Arc<dyn Table>) {
    let past = now() - 10;
    let mut ops = Vec::new();
    for i in 0..300 {
        let mut it = item("P#mix", &format!("ITEM#{i:04}"), &[]);
        it.insert(GSI1PK.into(), Value::S("P#mix#IDX".into()));
        it.insert(GSI1SK.into(), Value::S(format!("G#{:03}", i % 50)));
        if i % 3 == 0 {
            it.insert(TTL.into(), Value::int(past));
        }
        ops.push(TxOp::Put {
            item: it,
            condition: None,
        });
        if ops.len() == 100 {
            t.transact(std::mem::take(&mut ops))
                .await
                .expect("seed batch");
        }
    }
    for (q, limit) in [
        (Query::partition("P#mix"), 7),
        (Query::partition("P#mix").backward(), 7),
        (Query::partition("P#mix#IDX").on(Index::Gsi1).backward(), 4),
    ] {
        let (items, _) = page_all(&t, q.clone(), limit).await;
        let unique: BTreeSet<_> = sks(&items).into_iter().collect();
        assert_eq!(items.len(), 200, "every live item once ({q:?})");
        assert_eq!(unique.len(), 200, "no repeats ({q:?})");
        assert!(
            items.iter().all(|i| !i.contains_key(TTL)),
            "no expired item returned ({q:?})"
        );
    }
}

pub async fn transactions_treat_expired_items_as_absent(t: Arc<dyn Table>) {
    let past = now() - 10;
    t.put(
        item(
            "P#txttl",
            "tx",
            &[(TTL, Value::int(past)), ("old", Value::Bool(true))],
        ),
        None,
    )
    .await
    .unwrap();
    t.put(item("P#txttl", "gone", &[(TTL, Value::int(past))]), None)
        .await
        .unwrap();
    t.transact(vec![
        TxOp::Update {
            key: Key::new("P#txttl", "tx"),
            updates: vec![Update::Add("n".into(), 2)],
            condition: None,
        },
        TxOp::Check {
            key: Key::new("P#txttl", "gone"),
            condition: Condition::NotExists,
        },
        TxOp::Put {
            item: item("P#txttl", "new", &[]),
            condition: Some(Condition::NotExists),
        },
    ])
    .await
    .expect("conditions over expired items hold as over absent ones");
    let got = t
        .get(&Key::new("P#txttl", "tx"))
        .await
        .unwrap()
        .expect("written");
    assert_eq!(got["n"].as_i64(), Some(2));
    assert!(
        !got.contains_key("old") && !got.contains_key(TTL),
        "the update started from nothing: {got:?}"
    );
}

pub async fn bad_cursors_are_rejected(t: Arc<dyn Table>) {
    let bad = zerodb_domain::store::Cursor::from_client("not-a-cursor!");
    assert!(matches!(bad, Err(StoreError::BadCursor)));
    // Well-formed text that names no key position is refused by the adapter.
    let mut junk = std::collections::BTreeMap::new();
    junk.insert("foo".to_owned(), "bar".to_owned());
    let r = t
        .query(Query::partition("P#x").after(Some(zerodb_domain::store::Cursor::encode(&junk))))
        .await;
    assert!(matches!(r, Err(StoreError::BadCursor)), "{r:?}");
}

pub async fn blobs_put_get_head_list_delete(b: Arc<dyn Blobs>) {
    b.put(
        "snap/a/1.json",
        b"{\"x\":1}".to_vec(),
        Some("application/json"),
    )
    .await
    .unwrap();
    b.put("snap/a/2.bin", vec![0u8; 100_000], None)
        .await
        .unwrap();
    b.put("snap/b/1.json", b"{}".to_vec(), Some("application/json"))
        .await
        .unwrap();
    b.put("other/1", b"x".to_vec(), None).await.unwrap();

    let got = b
        .get("snap/a/1.json")
        .await
        .unwrap()
        .expect("object exists");
    assert_eq!(got.bytes, b"{\"x\":1}");
    assert_eq!(got.meta.content_type.as_deref(), Some("application/json"));
    let head = b.head("snap/a/2.bin").await.unwrap().expect("head");
    assert_eq!(head.size, 100_000);
    assert!(b.get("snap/none").await.unwrap().is_none());
    assert!(b.head("snap/none").await.unwrap().is_none());

    // Overwrite replaces.
    b.put(
        "snap/a/1.json",
        b"{\"x\":2}".to_vec(),
        Some("application/json"),
    )
    .await
    .unwrap();
    assert_eq!(
        b.get("snap/a/1.json").await.unwrap().unwrap().bytes,
        b"{\"x\":2}"
    );

    let page = b.list("snap/", None, 2).await.unwrap();
    let keys: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, vec!["snap/a/1.json", "snap/a/2.bin"]);
    let cursor = page.cursor.expect("a third object remains");
    let rest = b.list("snap/", Some(&cursor), 2).await.unwrap();
    assert_eq!(
        rest.objects
            .iter()
            .map(|o| o.key.as_str())
            .collect::<Vec<_>>(),
        vec!["snap/b/1.json"]
    );
    assert!(rest.cursor.is_none());

    b.delete("snap/a/1.json").await.unwrap();
    assert!(b.get("snap/a/1.json").await.unwrap().is_none());
    b.delete("snap/a/1.json")
        .await
        .expect("deleting a missing object succeeds");
    assert_eq!(b.list("snap/", None, 100).await.unwrap().objects.len(), 2);
}

pub async fn queue_send_receive_delete(q: Arc<dyn Queue>) {
    let ids = q
        .send_batch(vec!["one".into(), "two".into(), "three".into()])
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    let mut bodies = BTreeSet::new();
    let mut receipts = Vec::new();
    // SQS may return fewer than asked per call; read until all three arrive.
    let deadline = Instant::now() + Duration::from_secs(10);
    while bodies.len() < 3 && Instant::now() < deadline {
        for m in q.receive(10, 30).await.unwrap() {
            assert_eq!(m.receive_count, 1);
            bodies.insert(m.body.clone());
            receipts.push(m.receipt);
        }
    }
    assert_eq!(
        bodies,
        BTreeSet::from(["one".to_owned(), "three".to_owned(), "two".to_owned()])
    );
    assert!(
        q.receive(10, 30).await.unwrap().is_empty(),
        "received messages stay hidden"
    );
    for r in receipts {
        q.delete(&r).await.unwrap();
    }
    assert!(
        q.send_batch((0..11).map(|i| i.to_string()).collect())
            .await
            .is_err(),
        "batches are at most 10"
    );
}

pub async fn queue_visibility_timeout_hides_then_returns(q: Arc<dyn Queue>) {
    const VISIBILITY: Duration = Duration::from_secs(2);
    q.send_batch(vec!["job".into()]).await.unwrap();
    // Timed from before the call: the timeout starts when the queue hands it out.
    let received_at = Instant::now();
    let first = q.receive(1, VISIBILITY.as_secs() as u32).await.unwrap();
    assert_eq!(first.len(), 1);
    let hidden = q.receive(1, 30).await.unwrap();
    // Only a look taken inside the timeout says anything (a loaded machine may take
    // longer than the timeout between the two calls; it takes milliseconds otherwise).
    if received_at.elapsed() < VISIBILITY {
        assert!(hidden.is_empty(), "hidden during the visibility timeout");
    } else {
        eprintln!("the second receive came after the visibility timeout; not judged");
    }
    // Poll (bounded) until the timeout lapses and the message is delivered again.
    let again = match hidden.into_iter().next() {
        Some(m) => m,
        None => loop {
            let got = q.receive(1, 30).await.unwrap();
            if let Some(m) = got.into_iter().next() {
                break m;
            }
            assert!(
                received_at.elapsed() < Duration::from_secs(15),
                "message never became visible again"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        },
    };
    assert!(
        received_at.elapsed() >= VISIBILITY - Duration::from_millis(100),
        "not visible before its timeout: {:?}",
        received_at.elapsed()
    );
    assert_eq!(again.body, "job");
    assert_eq!(again.receive_count, 2);
    // change_visibility(0) releases it at once.
    q.change_visibility(&again.receipt, 0).await.unwrap();
    let third = q.receive(1, 30).await.unwrap();
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].receive_count, 3);
    q.delete(&third[0].receipt).await.unwrap();
    q.change_visibility(&third[0].receipt, 0).await.ok();
    assert!(
        q.receive(1, 0).await.unwrap().is_empty(),
        "deleted messages are gone"
    );
}

/// `q` must dead-letter into `dlq` after `max_receives` receives.
pub async fn queue_dead_letters_after_max_receives(
    q: Arc<dyn Queue>,
    dlq: Arc<dyn Queue>,
    max_receives: u32,
) {
    q.send_batch(vec!["poison".into()]).await.unwrap();
    for n in 1..=max_receives {
        let got = q.receive(1, 30).await.unwrap();
        assert_eq!(got.len(), 1, "receive #{n} delivers the message");
        assert_eq!(got[0].receive_count, n);
        q.change_visibility(&got[0].receipt, 0).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let dead = loop {
        assert!(
            q.receive(1, 30).await.unwrap().is_empty(),
            "past the maximum the message is not delivered"
        );
        if let Some(m) = dlq.receive(1, 30).await.unwrap().into_iter().next() {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "message never reached the dead-letter queue"
        );
    };
    assert_eq!(dead.body, "poison");
    dlq.delete(&dead.receipt).await.unwrap();
}

/// One test per case, each on a fresh table from `$make` (a future of `(table, guard)`).
#[macro_export]
macro_rules! conformance_cases {
    (table: $make:expr) => {
        $crate::conformance_cases!(@table $make;
            put_get_delete_round_trip_every_value_type,
            conditional_writes_conflict_and_write_nothing,
            numeric_and_presence_conditions,
            update_sets_removes_and_adds,
            oversized_items_are_refused,
            query_by_prefix_and_range_in_both_directions,
            cursor_pages_through_1000_items_without_loss_or_repeat,
            secondary_index_query_pages_exactly,
            transactions_are_all_or_nothing,
            expired_items_are_never_returned,
            paging_skips_interleaved_expired_items_without_losing_live_ones,
            transactions_treat_expired_items_as_absent,
            bad_cursors_are_rejected);
    };
    (@table $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (table, _guard) = $make.await;
                $crate::conformance::$case(table).await;
            }
        )*
    };
}
