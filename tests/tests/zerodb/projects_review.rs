//! Fixes of the projects/database security review, on both storage backends where storage
//! is involved: the default project is adopted, never made by a read; deleted projects
//! live under their own prefix; zerodb-local offers instant-db only on loopback; RLHF
//! interactions are bounded in stored bytes; event and RLHF pages stop before a Lambda's
//! 6 MB response limit; the purge fails rather than drops its continuation and forgets a
//! project's memories a bounded number at a time; the memory batch routes check the
//! scope before the project.

use std::sync::Arc;

use http::{Request, StatusCode};
use serde_json::{Value, json};
use zerodb_domain::events::{Dispatcher, Event, EventHandler, EventSink};
use zerodb_domain::queues::QueueName;
use zerodb_domain::store::{Message, Query, Queue, StoreError, Update, Value as V};
use zerodb_domain::{Settings, keys};
use zerodb_tests::on_both_backends;
use zerodb_tests::support::{Backend, TestApp};

fn account_default(item: &zerodb_domain::store::Item) -> Option<String> {
    item.get("default_project")
        .and_then(V::as_str)
        .map(str::to_owned)
}

async fn account_record(app: &TestApp, account_id: &str) -> zerodb_domain::store::Item {
    app.stores
        .table
        .get(&keys::account(account_id))
        .await
        .unwrap()
        .unwrap()
}

async fn project_total(app: &TestApp, key: &str) -> u64 {
    let r = app.get("/v1/public/projects", key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["total"].as_u64().unwrap()
}

/// Item 1: reads never make a project; an account with live projects and no default
/// adopts its oldest (even at its project limit); only a write makes one, and only when
/// the account has none.
async fn the_default_project_is_adopted_and_only_a_write_makes_one(backend: Backend) {
    let app = TestApp::with_settings(backend, &[("ZERODB_PROJECT_LIMIT_FREE", "2")]).await;
    let key = &app.root_key;
    let (_, reader) = app.create_key(&["file:read"], None).await;

    // At the limit, with no default project (an account from before defaults, or whose
    // limit was lowered): a read adopts the oldest project instead of failing with
    // PROJECT_LIMIT_EXCEEDED on a creation.
    let a = app.project("a").await;
    app.clock.advance_secs(1);
    let b = app.project("b").await;
    app.stores
        .table
        .update(
            &keys::account(&app.account_id),
            vec![Update::Remove("default_project".into())],
            None,
        )
        .await
        .unwrap();
    let r = app.get("/api/v1/public/files/", &reader).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, json!([]));
    assert_eq!(
        account_default(&account_record(&app, &app.account_id).await),
        Some(a.clone()),
        "the oldest is adopted"
    );
    assert_eq!(project_total(&app, key).await, 2, "nothing made");

    // The default deleted: the oldest live one is adopted next, not a newer one.
    assert_eq!(
        app.delete(&format!("/api/v1/projects/{a}"), key)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        account_default(&account_record(&app, &app.account_id).await),
        None
    );
    app.clock.advance_secs(1);
    app.project("c").await;
    assert_eq!(
        account_default(&account_record(&app, &app.account_id).await),
        None
    );
    let r = app
        .get("/api/v1/public/files/file_0123456789", &reader)
        .await;
    assert_eq!(r.code(), "FILE_NOT_FOUND", "{}", r.body);
    assert_eq!(
        account_default(&account_record(&app, &app.account_id).await),
        Some(b.clone())
    );
    assert_eq!(project_total(&app, key).await, 2);

    // An account with no project: a read is 404 (the list, an empty list) and makes
    // nothing, whatever the key; the first write makes the default project.
    let other = app.new_account("other").await;
    let (_, other_reader) = {
        let r = app
            .post(
                "/api/v1/auth/keys",
                &format!("Bearer {other}"),
                json!({"name": "r", "scopes": ["file:read"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        (
            r.body["id"].as_str().unwrap().to_owned(),
            r.body["key"].as_str().unwrap().to_owned(),
        )
    };
    for k in [&other_reader, &other] {
        let r = app.get("/api/v1/public/files/", k).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body, json!([]));
        let r = app.get("/api/v1/public/files/file_0123456789", k).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
        assert_eq!(r.code(), "PROJECT_NOT_FOUND");
        let r = app
            .get("/api/v1/public/files/file_0123456789/download", k)
            .await;
        assert_eq!(r.code(), "PROJECT_NOT_FOUND");
    }
    // X-Project-ID naming an unknown project is still a 404, even for the list.
    let req = Request::get("/api/v1/public/files/")
        .header("x-api-key", other.as_str())
        .header("x-project-id", "proj_unknown")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(app.send(req).await.code(), "PROJECT_NOT_FOUND");
    assert_eq!(
        project_total(&app, &other).await,
        0,
        "no read made a project"
    );
    let r = app
        .post(
            "/api/v1/public/files/",
            &other,
            json!({"name": "first.txt"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let listed = app.get("/v1/public/projects", &other).await;
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["items"][0]["name"], "Default project");
    assert_eq!(r.body["project_id"], listed.body["items"][0]["id"]);
    let names: Vec<Value> = app
        .get("/api/v1/public/files/", &other_reader)
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].clone())
        .collect();
    assert_eq!(names, [json!("first.txt")]);
}

/// Item 2: a deleted project's record moves to its own prefix (with its TTL), so the
/// live projects are read without it; it still lists with `status=DELETED`.
async fn a_deleted_project_moves_to_its_own_prefix(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let gone = app.project("gone").await;
    let kept = app.project("kept").await;
    app.drain_events().await;
    app.clock.advance_secs(1);
    assert_eq!(
        app.delete(&format!("/api/v1/projects/{gone}"), key)
            .await
            .status,
        StatusCode::OK
    );

    let live = app
        .stores
        .table
        .get(&keys::project(&app.account_id, &gone))
        .await
        .unwrap();
    assert!(live.is_none(), "the live record is gone: {live:?}");
    let deleted = app
        .stores
        .table
        .get(&keys::deleted_project(&app.account_id, &gone))
        .await
        .unwrap()
        .expect("the deleted record");
    assert_eq!(deleted.get("status").and_then(V::as_str), Some("DELETED"));
    let ttl = deleted
        .get(zerodb_domain::store::TTL)
        .and_then(V::as_i64)
        .unwrap();
    let now = zerodb_domain::clock::Clock::epoch_secs(&*app.clock);
    assert!(
        (29 * 86_400..=31 * 86_400).contains(&(ttl - now)),
        "{}",
        ttl - now
    );
    // Only live projects under PROJ#.
    let page = app
        .stores
        .table
        .query(
            Query::partition(keys::account_partition(&app.account_id))
                .begins_with(keys::PROJECT_PREFIX),
        )
        .await
        .unwrap();
    let ids: Vec<&str> = page
        .items
        .iter()
        .filter_map(|i| i.get("id").and_then(V::as_str))
        .collect();
    assert_eq!(ids, [kept.as_str()]);

    // The routes as before: 404, out of the list, listed when asked for.
    for path in [
        format!("/v1/public/projects/{gone}"),
        format!("/api/v1/projects/{gone}"),
        format!("/api/v1/projects/{gone}/transitions"),
    ] {
        assert_eq!(
            app.get(&path, key).await.code(),
            "PROJECT_NOT_FOUND",
            "{path}"
        );
    }
    let r = app.get("/v1/public/projects", key).await;
    assert_eq!(r.body["total"], 1);
    assert_eq!(r.body["items"][0]["id"], kept.as_str());
    let r = app.get("/v1/public/projects?status=DELETED", key).await;
    assert_eq!(r.body["total"], 1, "{}", r.body);
    assert_eq!(r.body["items"][0]["id"], gone.as_str());
    assert_eq!(r.body["items"][0]["status"], "DELETED");
    let r = app.get("/api/v1/projects?status=deleted", key).await;
    assert_eq!(r.body["items"][0]["status"], "deleted", "{}", r.body);
    let r = app.get("/v1/public/projects?status=ACTIVE", key).await;
    assert_eq!(r.body["total"], 1);
    // Deleting again, or reactivating, finds nothing.
    assert_eq!(
        app.delete(&format!("/api/v1/projects/{gone}"), key)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = app
        .put(
            &format!("/api/v1/projects/{gone}/status"),
            key,
            json!({"status": "active"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The transition is recorded and announced as before.
    let log = app
        .stores
        .table
        .query(Query::partition(keys::project_transition_partition(&gone)))
        .await
        .unwrap();
    let tos: Vec<&str> = log
        .items
        .iter()
        .filter_map(|i| i.get("to").and_then(V::as_str))
        .collect();
    assert_eq!(tos, ["ACTIVE", "DELETED"]);
    let events = app.drain_events().await;
    assert!(
        events
            .iter()
            .any(|e| e.contains("zerodb.project.status_changed") && e.contains("DELETED")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.contains(zerodb_projects::purge::PURGE_EVENT)),
        "{events:?}"
    );
}

/// Item 4: an interaction is bounded in stored bytes (CJK characters are 3 bytes each)
/// before anything of a batch is written.
async fn rlhf_interactions_are_bounded_in_bytes(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = app.project("rlhf").await;
    let base = format!("/api/v1/projects/{pid}/database/rlhf/interactions");
    let cjk = "漢".repeat(100_000);
    assert_eq!(cjk.len(), 300_000);
    // Alone: 600 KB as stored, within the character limit.
    let r = app
        .post(&base, key, json!({"prompt": cjk, "response": cjk}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["detail"][0]["loc"], json!(["body"]));
    let msg = r.body["detail"][0]["msg"].as_str().unwrap();
    assert!(msg.contains("389120 bytes"), "{msg}");
    // Last of a batch whose earlier interactions fill more than one transaction: none
    // is written.
    let ascii = "a".repeat(100_000);
    let mut batch: Vec<Value> = (0..20)
        .map(|i| json!({"prompt": ascii, "response": ascii, "metadata": {"i": i}}))
        .collect();
    batch.push(json!({"prompt": cjk, "response": cjk}));
    let r = app
        .post(
            &format!("{base}/batch"),
            key,
            json!({"interactions": batch}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(
        r.body["detail"][0]["loc"],
        json!(["body", "interactions", 20])
    );
    let r = app.get(&format!("{base}?limit=100"), key).await;
    assert_eq!(r.body["count"], 0, "nothing written");
    let stats = app
        .get(&format!("/api/v1/projects/{pid}/statistics"), key)
        .await;
    assert_eq!(stats.body["rlhf_interactions"], 0, "{}", stats.body);
    // One prompt of 100,000 CJK characters alone fits (300 KB); the character limit
    // stays.
    let r = app
        .post(&base, key, json!({"prompt": cjk, "response": "ok"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post(
            &base,
            key,
            json!({"prompt": "a".repeat(100_001), "response": "ok"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["detail"][0]["loc"], json!(["body", "prompt"]));
}

/// Follows `next_cursor` from `first` until it is null; every page's items.
async fn all_pages(app: &TestApp, first: &str, items: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut url = first.to_owned();
    loop {
        let r = app.get(&url, &app.root_key).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.raw.len() < 6_000_000, "a page of {} bytes", r.raw.len());
        pages.push(r.body[items].as_array().unwrap().clone());
        match r.body["next_cursor"].as_str() {
            Some(c) => url = format!("{first}&cursor={c}"),
            None => return pages,
        }
        assert!(pages.len() < 100, "the cursors go on");
    }
}

/// Item 5: event and RLHF pages stop before 5 MiB of payload, with a cursor that goes on
/// after the last item returned: every item comes back once, newest first.
async fn big_pages_stop_before_the_response_limit(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = app.project("big").await;
    let base = format!("/api/v1/projects/{pid}/database");
    // 100 events of 60 KB, 25 a request (a request carries 6 MB), a second apart.
    let mut published: Vec<(i64, String)> = Vec::new();
    for round in 0..4 {
        let events: Vec<Value> = (0..25)
            .map(|i| json!({"topic": "big.t", "event_payload": {"n": round * 25 + i, "pad": "x".repeat(60 * 1024)}}))
            .collect();
        let r = app
            .post(
                &format!("{base}/events/batch"),
                key,
                json!({"events": events}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        for id in r.body["event_ids"].as_array().unwrap() {
            published.push((round, id.as_str().unwrap().to_owned()));
        }
        app.clock.advance_secs(1);
    }
    // Newest first: later rounds first, and within a round (one millisecond) by id,
    // descending, as the sort key orders them.
    published.sort_by(|a, b| b.cmp(a));
    let expected: Vec<String> = published.into_iter().map(|(_, id)| id).collect();
    for topic in ["", "&topic=big.t"] {
        let pages = all_pages(&app, &format!("{base}/events?limit=1000{topic}"), "events").await;
        assert!(pages.len() > 1, "{topic}: one page of 6 MB");
        assert!(pages[0].len() < 100);
        let ids: Vec<String> = pages
            .iter()
            .flatten()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, expected, "{topic}: all 100 once, newest first");
    }

    // 30 interactions of 200 KB, 10 a request.
    for round in 0..3 {
        let batch: Vec<Value> = (0..10)
            .map(|i| json!({"prompt": "p".repeat(100_000), "response": "r".repeat(100_000), "metadata": {"n": round * 10 + i}}))
            .collect();
        let r = app
            .post(
                &format!("{base}/rlhf/interactions/batch"),
                key,
                json!({"interactions": batch}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        app.clock.advance_secs(1);
    }
    let pages = all_pages(
        &app,
        &format!("{base}/rlhf/interactions?limit=1000"),
        "interactions",
    )
    .await;
    assert!(
        pages.len() > 1 && pages[0].len() < 30,
        "{:?}",
        pages.iter().map(Vec::len).collect::<Vec<_>>()
    );
    let ns: Vec<i64> = pages
        .iter()
        .flatten()
        .map(|i| i["metadata"]["n"].as_i64().unwrap())
        .collect();
    let mut sorted = ns.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, (0..30).collect::<Vec<_>>(), "all 30 once");
    let rounds: Vec<i64> = ns.iter().map(|n| n / 10).collect();
    assert!(
        rounds.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {rounds:?}"
    );
    // With a filter, the same.
    let pages = all_pages(&app, &format!("{base}/rlhf/interactions?limit=1000&filter=%7B%22metadata.n%22%3A%7B%22%24gte%22%3A5%7D%7D"), "interactions").await;
    assert_eq!(pages.iter().map(Vec::len).sum::<usize>(), 25);
}

/// A queue whose sends all fail, as SQS throttling or an outage would.
struct DownQueue;

#[async_trait::async_trait]
impl Queue for DownQueue {
    async fn send_batch(&self, _: Vec<String>) -> Result<Vec<String>, StoreError> {
        Err(StoreError::Backend(anyhow::anyhow!("queue unavailable")))
    }
    async fn receive(&self, _: usize, _: u32) -> Result<Vec<Message>, StoreError> {
        Ok(vec![])
    }
    async fn delete(&self, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn change_visibility(&self, _: &str, _: u32) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A project with rows in an indexed table and `memories` memories; deleted. Returns its
/// id and the purge event the delete sent.
async fn deleted_project_with_data(app: &TestApp, memories: usize) -> (String, Event) {
    let key = &app.root_key;
    let pid = app.project("purged").await;
    let base = format!("/api/v1/projects/{pid}/database");
    app.post(
        &format!("{base}/tables"),
        key,
        json!({"table_name": "t", "schema": {"indexes": ["k"]}}),
    )
    .await;
    let rows: Vec<Value> = (0..12).map(|k| json!({"k": k})).collect();
    let r = app
        .post(&format!("{base}/tables/t/rows"), key, json!({"rows": rows}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    for i in 0..memories {
        let r = app
            .post(
                &format!("{base}/memory"),
                key,
                json!({"content": format!("fact {i}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    app.drain_events().await;
    assert_eq!(
        app.delete(&format!("/api/v1/projects/{pid}"), key)
            .await
            .status,
        StatusCode::OK
    );
    let purge = app
        .drain_events()
        .await
        .into_iter()
        .filter_map(|b| serde_json::from_str::<Event>(&b).ok())
        .find(|e| e.event == zerodb_projects::purge::PURGE_EVENT)
        .expect("the purge event");
    (pid, purge)
}

async fn memories_left(app: &TestApp, pid: &str) -> usize {
    let r = app
        .post(
            "/api/v1/public/memory/v2/recall",
            &app.root_key,
            json!({"query": "*", "namespace": format!("project:{pid}"), "limit": 100}),
        )
        .await;
    r.body["results"].as_array().map_or(0, Vec::len)
}

async fn items_left(app: &TestApp, pid: &str) -> usize {
    let mut n = 0;
    for pk in [
        keys::database_partition(pid),
        keys::rows_partition(pid, "x"),
    ] {
        n += app
            .stores
            .table
            .query(Query::partition(pk))
            .await
            .unwrap()
            .items
            .len();
    }
    n
}

/// Item 6: the purge and the memory purge each go on in events of their own stage,
/// bounded per event, until nothing is left, never setting each other going; and a
/// continuation that cannot be sent fails the handler, so SQS delivers the event again.
async fn the_purge_goes_on_in_bounded_steps_and_never_drops_its_rest(backend: Backend) {
    use events_worker::PurgeProjectMemory;
    use zerodb_projects::purge::{self, Purge};
    let app = TestApp::new(backend).await;
    let (pid, first) = deleted_project_with_data(&app, 7).await;

    // A continuation that cannot be sent is an error, for each handler.
    let down = EventSink::new(Arc::new(DownQueue), app.clock.clone());
    let mut data = Purge::new(&app.stores, down.clone());
    data.budget = 2;
    assert!(
        data.handle(&[&first]).await.is_err(),
        "the table purge's rest is not dropped"
    );
    let mut memory = PurgeProjectMemory::new(app.memory.clone(), down);
    memory.budget = 3;
    assert!(
        memory.handle(&[&first]).await.is_err(),
        "the memory purge's rest is not dropped"
    );
    assert_eq!(
        memories_left(&app, &pid).await,
        4,
        "3 forgotten in that step"
    );

    // Each handler takes the first event and its own continuations only.
    let sink = app.ctx.events().clone();
    let mut data = Purge::new(&app.stores, sink.clone());
    data.budget = 5;
    let mut memory = PurgeProjectMemory::new(app.memory.clone(), sink);
    memory.budget = 3;
    let staged = |stage: &str| {
        let (event, channel, data) = purge::continuation(&first, stage);
        Event {
            id: "e".into(),
            event,
            channel,
            data,
            timestamp: first.timestamp.clone(),
        }
    };
    assert!(data.wants(&first) && memory.wants(&first));
    assert!(data.wants(&staged(purge::STAGE_DATA)) && !memory.wants(&staged(purge::STAGE_DATA)));
    assert!(
        memory.wants(&staged(purge::STAGE_MEMORY)) && !data.wants(&staged(purge::STAGE_MEMORY))
    );

    // The purge delivered again (as SQS would), then its continuations, to the end.
    let dispatcher = Dispatcher::new(vec![Arc::new(data), Arc::new(memory)]);
    let queue = app.stores.queue(QueueName::Events).clone();
    queue
        .send_batch(vec![serde_json::to_string(&first).unwrap()])
        .await
        .unwrap();
    let mut stages: Vec<Option<String>> = Vec::new();
    loop {
        let msgs = queue.receive(10, 30).await.unwrap();
        if msgs.is_empty() {
            break;
        }
        let failed = zerodb_domain::work::BatchHandler::handle(&dispatcher, &msgs).await;
        assert!(failed.is_empty(), "{failed:?}");
        for m in msgs {
            queue.delete(&m.receipt).await.unwrap();
            let e: Event = serde_json::from_str(&m.body).unwrap();
            if e.event == purge::PURGE_EVENT {
                stages.push(purge::stage(&e).map(str::to_owned));
            }
        }
        assert!(stages.len() < 50, "the purge ends: {stages:?}");
    }
    assert_eq!(memories_left(&app, &pid).await, 0);
    assert_eq!(items_left(&app, &pid).await, 0);
    let count = |s: Option<&str>| stages.iter().filter(|x| x.as_deref() == s).count();
    assert_eq!(count(None), 1, "{stages:?}");
    // 4 memories left, 3 an event: one continuation.
    assert_eq!(count(Some(purge::STAGE_MEMORY)), 1, "{stages:?}");
    assert!(count(Some(purge::STAGE_DATA)) >= 2, "{stages:?}");
    assert_eq!(
        stages.len(),
        count(None) + count(Some(purge::STAGE_MEMORY)) + count(Some(purge::STAGE_DATA))
    );
}

/// Item 7: the memory batch routes check the scope on the project's namespace before
/// the project, so a key without it cannot tell the account's projects apart.
async fn memory_batch_routes_check_the_scope_first(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let active = app.project("active").await;
    let suspended = app.project("suspended").await;
    let r = app
        .put(
            &format!("/api/v1/projects/{suspended}/status"),
            key,
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let other = app.new_account("other").await;
    let foreign = {
        let r = app
            .post("/api/v1/projects", &other, json!({"name": "theirs"}))
            .await;
        r.body["id"].as_str().unwrap().to_owned()
    };
    let (_, reader) = app
        .create_key(
            &[
                &format!("memory:read:project/{active}"),
                &format!("memory:read:project/{suspended}"),
            ],
            None,
        )
        .await;
    for pid in [
        active.as_str(),
        suspended.as_str(),
        foreign.as_str(),
        "proj_unknown",
    ] {
        for (op, body) in [
            ("upsert", json!({"records": [{"content": "x"}]})),
            ("delete", json!({"ids": ["mem_x"]})),
            (
                "update",
                json!({"updates": [{"id": "mem_x", "importance": 0.1}]}),
            ),
            ("upsert", json!({"records": []})),
        ] {
            let r = app
                .post(
                    &format!("/api/v1/projects/{pid}/database/memory/batch/{op}"),
                    &reader,
                    body,
                )
                .await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{pid} {op}: {}", r.body);
            assert_eq!(r.code(), "PERM_001", "{pid} {op}: {}", r.body);
        }
    }
    // With the scope, the gate answers as before.
    let (_, writer) = app
        .create_key(&[&format!("memory:write:project/{suspended}")], None)
        .await;
    let r = app
        .post(
            &format!("/api/v1/projects/{suspended}/database/memory/batch/upsert"),
            &writer,
            json!({"records": [{"content": "x"}]}),
        )
        .await;
    assert_eq!(r.code(), "PROJECT_SUSPENDED", "{}", r.body);
    let r = app
        .post(
            &format!("/api/v1/projects/{active}/database/memory/batch/upsert"),
            key,
            json!({"records": [{"content": "x"}]}),
        )
        .await;
    assert_eq!(r.body["inserted"], 1, "{}", r.body);
}

on_both_backends!(
    the_default_project_is_adopted_and_only_a_write_makes_one,
    a_deleted_project_moves_to_its_own_prefix,
    rlhf_interactions_are_bounded_in_bytes,
    big_pages_stop_before_the_response_limit,
    the_purge_goes_on_in_bounded_steps_and_never_drops_its_rest,
    memory_batch_routes_check_the_scope_first,
);

/// Item 3: zerodb-local turns instant-db on by default only on a loopback address; an
/// explicit setting wins.
#[test]
fn instant_db_is_on_by_default_only_on_loopback() {
    let on = |pairs: &[(&str, &str)], addr: &str| {
        let s = zerodb_local::instant_db_default(
            Settings::from_pairs(pairs.iter().copied()),
            addr.parse().unwrap(),
        );
        zerodb_projects::ProjectLimits::from_settings(&s)
            .unwrap()
            .instant_db
    };
    for addr in [
        "127.0.0.1:3000",
        "127.0.0.2:0",
        "[::1]:3000",
        "[::ffff:127.0.0.1]:3000",
    ] {
        assert!(on(&[], addr), "{addr}");
        assert!(!on(&[("ZERODB_INSTANT_DB", "off")], addr), "{addr}");
    }
    for addr in [
        "0.0.0.0:3000",
        "[::]:3000",
        "192.168.1.20:3000",
        "10.0.0.1:80",
    ] {
        assert!(!on(&[], addr), "{addr}");
        assert!(
            on(&[("ZERODB_INSTANT_DB", "on")], addr),
            "{addr}: the operator's choice"
        );
    }
}

/// The server as the CLI starts it (`local_settings`, then `start`), on every interface
/// and on loopback.
#[tokio::test]
async fn zerodb_local_on_every_interface_refuses_instant_db() {
    if std::env::var_os("ZERODB_INSTANT_DB").is_some() {
        // An explicit setting wins, as it should; nothing to test here.
        return;
    }
    async fn serve(dir: &tempfile::TempDir, addr: &str) -> zerodb_local::Running {
        zerodb_local::start(zerodb_local::LocalConfig {
            addr: addr.parse().unwrap(),
            data_dir: dir.path().join("data"),
            rate_limit_per_minute: 0,
            settings: zerodb_local::local_settings().with("ZERODB_EMBEDDER", "lexical"),
        })
        .await
        .unwrap()
    }
    let client = reqwest::Client::new();
    for (addr, status) in [("0.0.0.0:0", 403), ("127.0.0.1:0", 201)] {
        let dir = tempfile::tempdir().unwrap();
        let running = serve(&dir, addr).await;
        assert_eq!(running.instant_db, status == 201, "{addr}");
        let r = client
            .post(format!(
                "http://127.0.0.1:{}/api/v1/public/instant-db",
                running.addr.port()
            ))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{addr}");
        if status == 403 {
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error_code"], "INSTANT_DB_DISABLED");
        }
        running.stop().await.unwrap();
    }
}
