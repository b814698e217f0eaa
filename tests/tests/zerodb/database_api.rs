//! The project database on both storage backends: tables with schemas and indexes,
//! Mongo-style queries (index and scan giving the same answers), updates and deletes by
//! filter, events, RLHF, batch queries, ainative-agent's `/public/tables` form, seed
//! 003's limits (+1 → 422, nothing written), tenancy, and the storage calls each route
//! makes.

use http::StatusCode;
use serde_json::{Value, json};
use zerodb_tests::on_both_backends;
use zerodb_tests::support::{Backend, TestApp};

fn base(pid: &str) -> String {
    format!("/api/v1/projects/{pid}/database")
}

async fn users(app: &TestApp, pid: &str, name: &str, indexed: bool) {
    let schema = if indexed {
        json!({"fields": {"email": "string", "name": "string", "age": "number"}, "indexes": ["email", "age", "tags"]})
    } else {
        json!({"fields": {"email": "string", "name": "string", "age": "number"}})
    };
    let r = app
        .post(
            &format!("{}/tables", base(pid)),
            &app.root_key,
            json!({"table_name": name, "schema": schema}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let rows: Vec<Value> = (0..12)
        .map(|i| {
            json!({"email": format!("u{i}@x.io"), "name": format!("user {i}"), "age": 18 + i * 3,
                   "tags": if i % 2 == 0 { json!(["even", "all"]) } else { json!(["odd", "all"]) },
                   "addr": {"city": if i < 6 { "Oslo" } else { "Lima" }}})
        })
        .collect();
    let r = app
        .post(
            &format!("{}/tables/{name}/rows", base(pid)),
            &app.root_key,
            json!({"rows": rows}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["inserted_count"], 12);
}

async fn query(app: &TestApp, pid: &str, table: &str, body: Value) -> Value {
    let r = app
        .post(
            &format!("{}/tables/{table}/query", base(pid)),
            &app.root_key,
            body.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{body} → {}", r.body);
    r.body
}

fn names(b: &Value) -> Vec<String> {
    b["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

async fn tables_answer_queries_the_same_by_index_and_by_scan(backend: Backend) {
    let app = TestApp::new(backend).await;
    let pid = app.project("db").await;
    users(&app, &pid, "indexed", true).await;
    users(&app, &pid, "plain", false).await;
    let t = app
        .get(&format!("{}/tables/indexed", base(&pid)), &app.root_key)
        .await;
    assert_eq!(t.body["row_count"], 12);
    assert_eq!(t.body["schema"]["indexes"], json!(["email", "age", "tags"]));
    let list = app
        .get(&format!("{}/tables", base(&pid)), &app.root_key)
        .await;
    assert_eq!(list.body["total"], 2);
    let cases = [
        (json!({"age": {"$gte": 30}}), "index:age"),
        (json!({"age": {"$gt": 30, "$lte": 45}}), "index:age"),
        (json!({"age": {"$lt": 24}}), "index:age"),
        (json!({"email": "u3@x.io"}), "index:email"),
        (
            json!({"email": {"$in": ["u1@x.io", "u4@x.io", "nobody"]}}),
            "index:email",
        ),
        (json!({"tags": "even"}), "index:tags"),
        (
            json!({"name": {"$ne": "user 1"}, "age": {"$exists": true}}),
            "scan",
        ),
        (json!({"addr.city": "Lima"}), "scan"),
        (json!({"$or": [{"age": 18}, {"name": "user 11"}]}), "scan"),
        (json!({"name": {"$nin": ["user 2", "user 3"]}}), "scan"),
        (
            json!({"missing": {"$exists": false}, "age": {"$lte": 21}}),
            "index:age",
        ),
    ];
    for (filter, plan) in cases {
        let body = json!({"filter": filter, "sort": {"age": -1}, "limit": 100});
        let a = query(&app, &pid, "indexed", body.clone()).await;
        let b = query(&app, &pid, "plain", body).await;
        assert_eq!(a["plan"], plan, "{filter}");
        assert_eq!(b["plan"], "scan");
        assert_eq!(names(&a), names(&b), "{filter}: index and scan agree");
        assert_eq!(a["total"], b["total"]);
    }
    // ainative-python's example: age ≥ 25, sorted descending, 10 at most.
    let r = query(
        &app,
        &pid,
        "indexed",
        json!({"filter": {"age": {"$gte": 25}}, "sort": {"age": -1}, "limit": 3}),
    )
    .await;
    assert_eq!(names(&r), ["user 11", "user 10", "user 9"]);
    assert_eq!(r["total"], 9, "27, 30, … 51");
    assert_eq!(r["has_more"], true);
    let r = query(
        &app,
        &pid,
        "indexed",
        json!({"filter": {"age": {"$gte": 25}}, "sort": {"age": 1}, "limit": 2, "offset": 2}),
    )
    .await;
    assert_eq!(names(&r), ["user 5", "user 6"]);
    // Count: limit 0 answers only the total.
    let r = query(&app, &pid, "plain", json!({"limit": 0})).await;
    assert_eq!(
        (r["total"].clone(), r["rows"].as_array().unwrap().len()),
        (json!(12), 0)
    );
    let r = query(
        &app,
        &pid,
        "plain",
        json!({"filter": {"addr.city": "Oslo"}, "limit": 0}),
    )
    .await;
    assert_eq!(r["total"], 6);
    // Projection, and a sort on two fields in the order written.
    let r = query(
        &app,
        &pid,
        "plain",
        json!({"filter": {"email": "u2@x.io"}, "projection": {"name": 1, "_id": 0}}),
    )
    .await;
    assert_eq!(r["rows"], json!([{"name": "user 2"}]));
    let r = query(
        &app,
        &pid,
        "plain",
        json!({"sort": {"addr.city": 1, "age": -1}, "limit": 2}),
    )
    .await;
    assert_eq!(names(&r), ["user 11", "user 10"]);
}

async fn updates_and_deletes_by_filter_keep_indexes_true(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = app.project("db").await;
    users(&app, &pid, "u", true).await;
    let rows = format!("{}/tables/u/rows", base(&pid));
    let r = app
        .put(&rows, key, json!({"filter": {"email": "u1@x.io"}, "update": {"$set": {"age": 99, "vip": true}, "$inc": {"logins": 2}}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (
            r.body["matched_count"].clone(),
            r.body["modified_count"].clone()
        ),
        (json!(1), json!(1))
    );
    // The index sees the new value, not the old.
    let r = query(&app, &pid, "u", json!({"filter": {"age": 99}})).await;
    assert_eq!(r["plan"], "index:age");
    assert_eq!(names(&r), ["user 1"]);
    assert_eq!(r["rows"][0]["logins"], 2);
    assert_eq!(
        query(&app, &pid, "u", json!({"filter": {"age": 21}})).await["total"],
        0
    );
    let r = app.put(&rows, key, json!({"filter": {"vip": true}, "update": {"$inc": {"logins": 1}, "$unset": {"vip": ""}}})).await;
    assert_eq!(r.body["modified_count"], 1);
    let r = query(&app, &pid, "u", json!({"filter": {"email": "u1@x.io"}})).await;
    assert_eq!(r["rows"][0]["logins"], 3);
    assert!(r["rows"][0].get("vip").is_none());
    // Upsert inserts from the filter's equalities and the update.
    let r = app
        .put(&rows, key, json!({"filter": {"email": "new@x.io"}, "update": {"$set": {"name": "new", "age": 1}}, "upsert": true}))
        .await;
    assert!(r.body["upserted_id"].is_string(), "{}", r.body);
    let r = query(&app, &pid, "u", json!({"filter": {"email": "new@x.io"}})).await;
    assert_eq!(r["rows"][0]["age"], 1);
    // A change that breaks the schema is refused whole.
    let r = app
        .put(
            &rows,
            key,
            json!({"filter": {}, "update": {"$set": {"age": "old"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        query(
            &app,
            &pid,
            "u",
            json!({"filter": {"age": "old"}, "limit": 0})
        )
        .await["total"],
        0
    );
    // Delete by filter, through the index, and the counters follow.
    let r = app
        .delete_with(&rows, key, json!({"filter": {"age": {"$lt": 30}}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["deleted_count"], 4,
        "18, 24, 27 and the upserted 1 (21 became 99)"
    );
    assert_eq!(
        query(
            &app,
            &pid,
            "u",
            json!({"filter": {"age": {"$lt": 30}}, "limit": 0})
        )
        .await["total"],
        0
    );
    assert_eq!(
        query(
            &app,
            &pid,
            "u",
            json!({"filter": {"tags": "all"}, "limit": 0})
        )
        .await["total"],
        9
    );
    let t = app.get(&format!("{}/tables/u", base(&pid)), key).await;
    assert_eq!(t.body["row_count"], 9);
    let r = app
        .delete_with(&rows, key, json!({"filter": {"tags": "all"}, "limit": 3}))
        .await;
    assert_eq!(r.body["deleted_count"], 3);
    let r = app.delete_with(&rows, key, json!({})).await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no filter is not 'everything'"
    );
}

async fn bad_rows_and_limits_write_nothing(backend: Backend) {
    let app = TestApp::with_settings(
        backend,
        &[
            ("ZERODB_TABLE_INSERT_ROWS", "5"),
            ("ZERODB_TABLE_ROW_BYTES", "300"),
        ],
    )
    .await;
    let key = &app.root_key;
    let pid = app.project("db").await;
    let b = base(&pid);
    app.post(&format!("{b}/tables"), key, json!({"table_name": "t", "schema": {"fields": {"age": {"type": "integer", "required": true}}}})).await;
    let rows = format!("{b}/tables/t/rows");
    let r = app
        .post(&rows, key, json!({"rows": [{"age": 1}, {"age": "x"}]}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.body["detail"][0]["loc"],
        json!(["body", "rows", 1, "age"]),
        "names the row and field"
    );
    let r = app
        .post(
            &rows,
            key,
            json!({"rows": [{"age": 1}, {"name": "no age"}]}),
        )
        .await;
    assert_eq!(
        r.body["detail"][0]["loc"],
        json!(["body", "rows", 1, "age"])
    );
    let r = app
        .post(
            &rows,
            key,
            json!({"rows": (0..6).map(|i| json!({"age": i})).collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("at most 5")
    );
    let r = app
        .post(
            &rows,
            key,
            json!({"rows": [{"age": 1, "blob": "x".repeat(400)}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("300 bytes")
    );
    let r = app
        .post(
            &rows,
            key,
            json!({"rows": [{"id": "a", "age": 1}, {"id": "a", "age": 2}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get(&format!("{b}/tables/t"), key).await.body["row_count"],
        0,
        "nothing was written"
    );
    // Ids given are kept; a second insert of one is a conflict, not a 5xx.
    assert_eq!(
        app.post(&rows, key, json!({"rows": [{"id": "a", "age": 1}]}))
            .await
            .status,
        StatusCode::CREATED
    );
    let r = app
        .post(&rows, key, json!({"rows": [{"id": "a", "age": 2}]}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Filters say what is wrong, and where.
    let r = app
        .post(
            &format!("{b}/tables/t/query"),
            key,
            json!({"filter": {"age": {"$regex": "1"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.body["detail"][0]["loc"],
        json!(["body", "filter", "age", "$regex"])
    );
    let r = app
        .post(&format!("{b}/tables/t/query"), key, json!({"limit": 1001}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    for (body, field) in [
        (json!({"table_name": "9lives"}), "table_name"),
        (
            json!({"table_name": "ok", "schema": {"fields": {"a": "blob"}}}),
            "schema",
        ),
    ] {
        let r = app.post(&format!("{b}/tables"), key, body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["detail"][0]["loc"][1], field);
    }
    let r = app
        .post(&format!("{b}/tables"), key, json!({"table_name": "t"}))
        .await;
    assert_eq!(r.code(), "TABLE_EXISTS");
    let r = app.get(&format!("{b}/tables/nope"), key).await;
    assert_eq!(r.code(), "TABLE_NOT_FOUND");
    // Dropping needs a confirmation.
    let r = app.delete(&format!("{b}/tables/t"), key).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .delete_with(&format!("{b}/tables/t"), key, json!({"confirm": true}))
        .await;
    assert_eq!(r.body["rows_deleted"], 1);
    assert_eq!(
        app.get(&format!("{b}/tables/t"), key).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn events_publish_list_and_limit(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = app.project("ev").await;
    let b = base(&pid);
    let r = app
        .post(
            &format!("{b}/events"),
            key,
            json!({"topic": "agent.task.completed", "event_payload": {"task_id": "t0"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let events: Vec<Value> = (1..=100)
        .map(|i| json!({"topic": if i % 2 == 0 { "agent.task.completed" } else { "user.action" }, "event_payload": {"n": i}}))
        .collect();
    let r = app
        .post(&format!("{b}/events/batch"), key, json!({"events": events}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["published"], 100);
    let mut too_many = events.clone();
    too_many.push(json!({"topic": "x", "event_payload": {}}));
    let r = app
        .post(
            &format!("{b}/events/batch"),
            key,
            json!({"events": too_many}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("1–100")
    );
    let r = app.post(&format!("{b}/events/batch"), key, json!({"events": [{"topic": "ok", "event_payload": {}}, {"topic": "bad topic!", "event_payload": {}}]})).await;
    assert_eq!(
        r.body["detail"][0]["loc"],
        json!(["body", "events", 1, "topic"])
    );
    // Newest first, by topic, paged.
    let all = app.get(&format!("{b}/events?limit=1000"), key).await;
    assert_eq!(
        all.body["count"], 101,
        "nothing of the refused batches was written"
    );
    let topic = app
        .get(
            &format!("{b}/events?topic=agent.task.completed&limit=30"),
            key,
        )
        .await;
    assert_eq!(topic.body["count"], 30);
    assert!(
        topic.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["topic"] == "agent.task.completed")
    );
    let cursor = topic.body["next_cursor"].as_str().unwrap();
    let rest = app
        .get(
            &format!("{b}/events?topic=agent.task.completed&limit=30&cursor={cursor}"),
            key,
        )
        .await;
    assert_eq!(rest.body["count"], 21);
    assert!(rest.body["next_cursor"].is_null());
    let future = app
        .get(&format!("{b}/events?since=2999-01-01T00:00:00Z"), key)
        .await;
    assert_eq!(future.body["count"], 0);
    let usage = app.get(&format!("/v1/public/projects/{pid}"), key).await;
    assert_eq!(usage.body["usage"]["events_logged"], 101);
    let bus = app.drain_events().await;
    let published: Vec<Value> = bus
        .iter()
        .filter_map(|b| serde_json::from_str::<Value>(b).ok())
        .filter(|e| e["event"] == "zerodb.event.published")
        .collect();
    assert_eq!(published.len(), 101);
    let d = &published[0]["data"];
    assert!(d["event_id"].is_string() && d["topic"].is_string());
    assert_eq!(d["project_id"], pid.as_str());
    assert_eq!(d["user_id"], app.account_id.as_str());
}

async fn rlhf_logs_lists_and_limits(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = app.project("rl").await;
    let b = base(&pid);
    let one = |i: usize| json!({"prompt": format!("q{i}"), "response": format!("a{i}"), "metadata": {"model": if i % 3 == 0 { "qwen-coder-32b" } else { "other" }}});
    let n = if backend == Backend::Embedded {
        1000
    } else {
        120
    };
    let r = app
        .post(
            &format!("{b}/rlhf/interactions/batch"),
            key,
            json!({"interactions": (0..n).map(one).collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["logged"], n);
    let r = app
        .post(
            &format!("{b}/rlhf/interactions/batch"),
            key,
            json!({"interactions": (0..1001).map(one).collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            &format!("{b}/rlhf/interactions"),
            key,
            json!({"prompt": "p", "response": "r", "feedback": {"rating": 5}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["feedback"]["rating"], 5);
    let r = app
        .post(
            &format!("{b}/rlhf/interactions"),
            key,
            json!({"prompt": "p"}),
        )
        .await;
    assert_eq!(r.body["detail"][0]["loc"], json!(["body", "response"]));
    let filter = urlencode(r#"{"metadata.model":"qwen-coder-32b"}"#);
    let r = app
        .get(
            &format!("{b}/rlhf/interactions?limit=7&filter={filter}"),
            key,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["count"], 7);
    assert!(
        r.body["interactions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["metadata"]["model"] == "qwen-coder-32b")
    );
    let all = app
        .get(&format!("{b}/rlhf/interactions?limit=1000"), key)
        .await;
    assert_eq!(all.body["count"], (n + 1).min(1000));
    assert_eq!(
        app.get(&format!("/v1/public/projects/{pid}"), key)
            .await
            .body["usage"]["rlhf_interactions"],
        n + 1
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn batch_query_runs_up_to_fifty(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = app.project("bq").await;
    users(&app, &pid, "agents", true).await;
    let b = base(&pid);
    let ops = json!([
        {"table": "agents", "filters": {"age": {"$gte": 40}}, "limit": 10},
        {"table": "missing", "filters": {}},
        {"table": "agents", "filters": {"addr.city": "Oslo"}, "limit": 2, "sort": {"age": -1}},
    ]);
    let r = app
        .post(
            &format!("{b}/batch/query"),
            key,
            json!({"operations": ops, "parallel": true, "stop_on_error": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let res = r.body["results"].as_array().unwrap();
    assert_eq!(res[0]["total"], 4);
    assert_eq!(res[1]["error_code"], "TABLE_NOT_FOUND");
    assert_eq!(res[2]["rows"][0]["name"], "user 5");
    assert_eq!(
        (r.body["succeeded"].clone(), r.body["failed"].clone()),
        (json!(2), json!(1))
    );
    let r = app
        .post(
            &format!("{b}/batch/query"),
            key,
            json!({"operations": ops, "parallel": false, "stop_on_error": true}),
        )
        .await;
    assert_eq!(r.body["results"][2]["status"], "skipped");
    let fifty: Vec<Value> = (0..50)
        .map(|_| json!({"table": "agents", "filters": {"email": "u1@x.io"}}))
        .collect();
    let r = app
        .post(
            &format!("{b}/batch/query"),
            key,
            json!({"operations": fifty}),
        )
        .await;
    assert_eq!(r.body["succeeded"], 50);
    let mut fifty_one = fifty.clone();
    fifty_one.push(json!({"table": "agents"}));
    let r = app
        .post(
            &format!("{b}/batch/query"),
            key,
            json!({"operations": fifty_one}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("1–50")
    );
}

async fn the_agent_form_uses_the_default_project_or_the_named_one(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let r = app
        .post(
            "/api/v1/public/tables/",
            key,
            json!({"name": "notes", "schema": {"fields": {"n": "number"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["name"], "notes");
    let projects = app.get("/v1/public/projects", key).await;
    assert_eq!(projects.body["total"], 1, "the default project was made");
    let pid = projects.body["items"][0]["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            "/api/v1/public/tables/notes/rows",
            key,
            json!({"rows": [{"n": 1}, {"n": 2}, {"n": 3}]}),
        )
        .await;
    assert_eq!(r.body["inserted_count"], 3);
    let filter = urlencode(r#"{"n":{"$gte":2}}"#);
    let r = app
        .get(
            &format!("/api/v1/public/tables/notes/rows?filter={filter}&sort=-n&limit=10"),
            key,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ns: Vec<i64> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, [3, 2]);
    let r = app
        .put(
            "/api/v1/public/tables/notes/rows",
            key,
            json!({"filter": {"n": 1}, "updates": {"n": 10}}),
        )
        .await;
    assert_eq!(r.body["modified_count"], 1);
    let r = app
        .delete_with(
            "/api/v1/public/tables/notes/rows",
            key,
            json!({"filter": {"n": 10}}),
        )
        .await;
    assert_eq!(r.body["deleted_count"], 1);
    let list = app.get("/api/v1/public/tables/", key).await;
    assert_eq!(list.body[0]["row_count"], 2);
    // The same table through the project form.
    let r = query(&app, &pid, "notes", json!({})).await;
    assert_eq!(r["total"], 2);
    // X-Project-ID names another project.
    let other = app.project("other").await;
    let req = http::Request::get("/api/v1/public/tables/")
        .header("x-api-key", key.as_str())
        .header("x-project-id", other.as_str())
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(app.send(req).await.body, json!([]));
    assert_eq!(
        app.delete("/api/v1/public/tables/notes", key).await.status,
        StatusCode::OK
    );
}

async fn another_account_reaches_nothing_of_this_project(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = app.project("mine").await;
    users(&app, &pid, "t", true).await;
    app.post(
        &format!("{}/events", base(&pid)),
        key,
        json!({"topic": "a", "event_payload": {}}),
    )
    .await;
    let other = app.new_account("other").await;
    let b = base(&pid);
    let reqs: Vec<(http::Method, String, Option<Value>)> = vec![
        (http::Method::GET, format!("{b}/tables"), None),
        (http::Method::GET, format!("{b}/tables/t"), None),
        (
            http::Method::POST,
            format!("{b}/tables"),
            Some(json!({"table_name": "x"})),
        ),
        (
            http::Method::POST,
            format!("{b}/tables/t/rows"),
            Some(json!({"rows": [{"a": 1}]})),
        ),
        (
            http::Method::POST,
            format!("{b}/tables/t/query"),
            Some(json!({})),
        ),
        (
            http::Method::PUT,
            format!("{b}/tables/t/rows"),
            Some(json!({"filter": {}, "update": {"$set": {"x": 1}}})),
        ),
        (
            http::Method::DELETE,
            format!("{b}/tables/t/rows"),
            Some(json!({"filter": {}})),
        ),
        (
            http::Method::DELETE,
            format!("{b}/tables/t"),
            Some(json!({"confirm": true})),
        ),
        (http::Method::GET, format!("{b}/events"), None),
        (
            http::Method::POST,
            format!("{b}/events"),
            Some(json!({"topic": "a", "event_payload": {}})),
        ),
        (http::Method::GET, format!("{b}/rlhf/interactions"), None),
        (
            http::Method::POST,
            format!("{b}/rlhf/interactions"),
            Some(json!({"prompt": "p", "response": "r"})),
        ),
        (
            http::Method::POST,
            format!("{b}/batch/query"),
            Some(json!({"operations": [{"table": "t"}]})),
        ),
    ];
    for (m, path, body) in reqs {
        let r = app.call(m.clone(), &path, Some(&other), body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m} {path}: {}", r.body);
        assert_eq!(r.code(), "PROJECT_NOT_FOUND");
    }
    let req = http::Request::get("/api/v1/public/tables/t/rows")
        .header("x-api-key", other.as_str())
        .header("x-project-id", pid.as_str())
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(app.send(req).await.status, StatusCode::NOT_FOUND);
    // Everything is still there for the owner.
    assert_eq!(
        query(&app, &pid, "t", json!({"limit": 0})).await["total"],
        12
    );
    assert_eq!(app.get(&format!("{b}/events"), key).await.body["count"], 1);
    // Scopes: a reader reads, and cannot write; a memory key cannot read tables.
    let (_, reader) = app.create_key(&["zerodb:read"], None).await;
    let (_, memory) = app.create_key(&["memory:read", "memory:write"], None).await;
    assert_eq!(
        app.post(&format!("{b}/tables/t/query"), &reader, json!({}))
            .await
            .status,
        StatusCode::OK
    );
    let r = app
        .post(
            &format!("{b}/tables/t/rows"),
            &reader,
            json!({"rows": [{"a": 1}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "PERM_001");
    assert_eq!(
        app.get(&format!("{b}/tables"), &memory).await.status,
        StatusCode::FORBIDDEN
    );
}

async fn row_inserts_announce_each_row(backend: Backend) {
    let app = TestApp::new(backend).await;
    let pid = app.project("ev").await;
    app.post(
        &format!("{}/tables", base(&pid)),
        &app.root_key,
        json!({"table_name": "t"}),
    )
    .await;
    app.drain_events().await;
    let r = app
        .post(
            &format!("{}/tables/t/rows", base(&pid)),
            &app.root_key,
            json!({"rows": [{"id": "r1"}, {"id": "r2"}]}),
        )
        .await;
    assert_eq!(r.body["ids"], json!(["r1", "r2"]));
    let events: Vec<Value> = app
        .drain_events()
        .await
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    let rows: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "zerodb.table.row_inserted")
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["channel"], "zerodb");
    assert_eq!(
        rows[0]["data"],
        json!({"table_name": "t", "row_id": "r1", "project_id": pid, "user_id": app.account_id})
    );
}

async fn large_writes_fit_dynamodbs_transactions(backend: Backend) {
    // 70 rows (and 70 events) of 60 KB: 4.2 MB, over DynamoDB's 4 MB per transaction,
    // so they must be split by bytes as well as by count; all are written.
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = app.project("big").await;
    let b = base(&pid);
    app.post(&format!("{b}/tables"), key, json!({"table_name": "t"}))
        .await;
    let blob = "x".repeat(60 * 1024);
    let rows: Vec<Value> = (0..70).map(|i| json!({"i": i, "blob": blob})).collect();
    let r = app
        .post(&format!("{b}/tables/t/rows"), key, json!({"rows": rows}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        app.get(&format!("{b}/tables/t"), key).await.body["row_count"],
        70
    );
    let events: Vec<Value> = (0..70)
        .map(|i| json!({"topic": "big", "event_payload": {"i": i, "blob": blob}}))
        .collect();
    let r = app
        .post(&format!("{b}/events/batch"), key, json!({"events": events}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        app.get(&format!("{b}/events?limit=100"), key).await.body["count"],
        70
    );
    // A row writes itself and a copy per index entry: 40 entries of a 10 KB row fit
    // (410 KB), 41 entries do not, nor 11 copies of a 60 KB row (660 KB, over 512 KiB).
    app.post(
        &format!("{b}/tables"),
        key,
        json!({"table_name": "lists", "schema": {"indexes": ["tags"]}}),
    )
    .await;
    let small = "y".repeat(10 * 1024);
    let tags = |n: usize| -> Vec<String> { (0..n).map(|i| format!("t{i}")).collect() };
    let r = app
        .post(
            &format!("{b}/tables/lists/rows"),
            key,
            json!({"rows": [{"tags": tags(40), "blob": small}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let found = query(
        &app,
        &pid,
        "lists",
        json!({"filter": {"tags": "t39"}, "projection": {"tags": 1}}),
    )
    .await;
    assert_eq!(
        (found["plan"].clone(), found["total"].clone()),
        (json!("index:tags"), json!(1))
    );
    for row in [
        json!({"tags": tags(41)}),
        json!({"tags": tags(10), "blob": blob}),
    ] {
        let r = app
            .post(
                &format!("{b}/tables/lists/rows"),
                key,
                json!({"rows": [row]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert!(
            r.body["detail"][0]["msg"]
                .as_str()
                .unwrap()
                .contains("index entries")
        );
    }
    assert_eq!(
        app.get(&format!("{b}/tables/lists"), key).await.body["row_count"],
        1
    );
}

async fn reads_are_bounded_and_plans_answer_exactly(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = app.project("bounds").await;
    let b = base(&pid);
    // Strings near the index's cut (360 bytes, on character boundaries): indexed ranges
    // answer as a scan does.
    for (t, schema) in [("ix", json!({"indexes": ["name"]})), ("plain", json!({}))] {
        app.post(
            &format!("{b}/tables"),
            key,
            json!({"table_name": t, "schema": schema}),
        )
        .await;
        let long = "a".repeat(360);
        let rows = json!({"rows": [
            {"id": "n1", "name": format!("{long}b")},
            {"id": "n2", "name": "b"},
            {"id": "n3", "name": format!("{}€zzz", "a".repeat(358))},
            {"id": "n4", "name": "a".repeat(357)},
            {"id": "n5", "name": "a"},
        ]});
        assert_eq!(
            app.post(&format!("{b}/tables/{t}/rows"), key, rows)
                .await
                .status,
            StatusCode::CREATED
        );
    }
    let ids = |r: &Value| -> Vec<String> {
        let mut v: Vec<String> = r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    for filter in [
        json!({"name": {"$gt": "a".repeat(360)}}),
        json!({"name": {"$gte": format!("{}b", "a".repeat(358))}}),
        json!({"name": {"$lt": format!("{}b", "a".repeat(358))}}),
        json!({"name": {"$lte": "a".repeat(359)}}),
        json!({"name": {"$gt": "a", "$lt": "a".repeat(400)}}),
        json!({"name": format!("{}b", "a".repeat(360))}),
    ] {
        let a = query(&app, &pid, "ix", json!({"filter": filter, "limit": 10})).await;
        let s = query(&app, &pid, "plain", json!({"filter": filter, "limit": 10})).await;
        assert_eq!(a["plan"], "index:name");
        assert_eq!(ids(&a), ids(&s), "{filter}");
    }
    // Bounds in the wrong order match nothing (they were a 500 on the embedded store).
    let r = query(
        &app,
        &pid,
        "ix",
        json!({"filter": {"name": {"$gt": "b", "$lt": "a"}}}),
    )
    .await;
    assert_eq!(r["total"], 0);
    // A row is found by its id without reading the table.
    let r = query(&app, &pid, "plain", json!({"filter": {"_id": "n2"}})).await;
    assert_eq!(
        (r["plan"].clone(), ids(&r)),
        (json!("id"), vec!["n2".to_owned()])
    );
    let r = query(
        &app,
        &pid,
        "plain",
        json!({"filter": {"id": {"$in": ["n1", "n5", "nope"]}, "name": "a"}}),
    )
    .await;
    assert_eq!(ids(&r), vec!["n5".to_owned()]);
    // Offsets, $in lists, dotted paths and nesting have limits that say so.
    let r = app
        .post(
            &format!("{b}/tables/plain/query"),
            key,
            json!({"offset": 10_001}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let many: Vec<i64> = (0..600).collect();
    let r = app
        .post(
            &format!("{b}/tables/plain/query"),
            key,
            json!({"filter": {"a": {"$in": many}, "b": {"$nin": many}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("at most 1000"),
        "{}",
        r.body
    );
    let deep_path = vec!["a"; 17].join(".");
    let r = app
        .put(
            &format!("{b}/tables/plain/rows"),
            key,
            json!({"filter": {"id": "n2"}, "update": {"$set": {deep_path: 1}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut deep = json!(1);
    for _ in 0..33 {
        deep = json!({"x": deep});
    }
    let r = app
        .post(
            &format!("{b}/tables/plain/rows"),
            key,
            json!({"rows": [{"deep": deep}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("deeper"),
        "{}",
        r.body
    );
    // A page stops at about 5 MiB of rows (a Lambda answers at most 6 MB) and says more
    // follow.
    app.post(&format!("{b}/tables"), key, json!({"table_name": "big"}))
        .await;
    let blob = "x".repeat(60 * 1024);
    for half in 0..2 {
        let rows: Vec<Value> = (0..50)
            .map(|i| json!({"i": half * 50 + i, "blob": blob}))
            .collect();
        assert_eq!(
            app.post(&format!("{b}/tables/big/rows"), key, json!({"rows": rows}))
                .await
                .status,
            StatusCode::CREATED
        );
    }
    for body in [
        json!({"limit": 100}),
        json!({"limit": 100, "sort": {"i": 1}}),
        json!({"limit": 100, "filter": {"i": {"$gte": 0}}}),
    ] {
        let r = query(&app, &pid, "big", body.clone()).await;
        let n = r["rows"].as_array().unwrap().len();
        assert!((60..100).contains(&n), "{body}: {n} rows");
        assert_eq!(
            (r["total"].clone(), r["has_more"].clone()),
            (json!(100), json!(true)),
            "{body}"
        );
        assert!(r.to_string().len() < 6_000_000);
    }
}

on_both_backends!(
    reads_are_bounded_and_plans_answer_exactly,
    large_writes_fit_dynamodbs_transactions,
    tables_answer_queries_the_same_by_index_and_by_scan,
    updates_and_deletes_by_filter_keep_indexes_true,
    bad_rows_and_limits_write_nothing,
    events_publish_list_and_limit,
    rlhf_logs_lists_and_limits,
    batch_query_runs_up_to_fifty,
    the_agent_form_uses_the_default_project_or_the_named_one,
    another_account_reaches_nothing_of_this_project,
    row_inserts_announce_each_row,
);

/// Storage calls per request, each one DynamoDB request on AWS: the credential (one
/// read, one rate-counter write), the project (one read), then the route's own. Every
/// route of the projects and database groups, on a small table (one page).
#[tokio::test]
async fn storage_calls_per_route() {
    use http::Method;
    let app = TestApp::counting(Backend::Embedded).await;
    let key = app.root_key.clone();
    let counter = app.counter.clone().unwrap();
    let pid = app.project("calls").await;
    let b = base(&pid);
    let p = format!("/api/v1/projects/{pid}");
    let rows = |n: usize| json!({"rows": (0..n).map(|i| json!({"k": i})).collect::<Vec<_>>()});
    // (route, method, path, body, expected calls)
    let cases: Vec<(&str, Method, String, Option<Value>, u64)> = vec![
        (
            "create project",
            Method::POST,
            "/v1/public/projects".into(),
            Some(json!({"name": "x"})),
            4,
        ), // auth 2, account 1, tx 1
        (
            "list projects",
            Method::GET,
            "/v1/public/projects".into(),
            None,
            3,
        ),
        (
            "get project (usage)",
            Method::GET,
            format!("/v1/public/projects/{pid}"),
            None,
            4,
        ),
        (
            "patch project",
            Method::PATCH,
            p.clone(),
            Some(json!({"name": "y"})),
            4,
        ),
        (
            "statistics",
            Method::GET,
            format!("{p}/statistics"),
            None,
            4,
        ),
        (
            "transitions",
            Method::GET,
            format!("{p}/transitions"),
            None,
            4,
        ),
        (
            "create table",
            Method::POST,
            format!("{b}/tables"),
            Some(json!({"table_name": "t", "schema": {"indexes": ["k"]}})),
            5,
        ), // + table count, put
        ("list tables", Method::GET, format!("{b}/tables"), None, 4),
        ("get table", Method::GET, format!("{b}/tables/t"), None, 4),
        (
            "insert 10 rows (1 index): one transaction",
            Method::POST,
            format!("{b}/tables/t/rows"),
            Some(rows(10)),
            5,
        ),
        (
            "insert 60 rows (1 index): two transactions",
            Method::POST,
            format!("{b}/tables/t/rows"),
            Some(json!({"rows": (100..160).map(|i| json!({"k": i})).collect::<Vec<_>>()})),
            6,
        ),
        (
            "query by index",
            Method::POST,
            format!("{b}/tables/t/query"),
            Some(json!({"filter": {"k": 3}})),
            5,
        ),
        (
            "query by scan (one page)",
            Method::POST,
            format!("{b}/tables/t/query"),
            Some(json!({"filter": {"other": 3}})),
            5,
        ),
        (
            "count (the table's counter)",
            Method::POST,
            format!("{b}/tables/t/query"),
            Some(json!({"limit": 0})),
            4,
        ),
        (
            "update 1 row by index",
            Method::PUT,
            format!("{b}/tables/t/rows"),
            Some(json!({"filter": {"k": 3}, "update": {"$set": {"k": 1003}}})),
            7,
        ), // + index read, row tx, counters
        (
            "delete 1 row by index",
            Method::DELETE,
            format!("{b}/tables/t/rows"),
            Some(json!({"filter": {"k": 4}})),
            6,
        ), // + index read, one tx
        (
            "batch query (2 operations)",
            Method::POST,
            format!("{b}/batch/query"),
            Some(
                json!({"operations": [{"table": "t", "filters": {"k": 1}}, {"table": "t", "filters": {"k": 2}}]}),
            ),
            7,
        ),
        (
            "publish event",
            Method::POST,
            format!("{b}/events"),
            Some(json!({"topic": "a", "event_payload": {}})),
            4,
        ),
        (
            "publish 100 events",
            Method::POST,
            format!("{b}/events/batch"),
            Some(
                json!({"events": (0..100).map(|_| json!({"topic": "a", "event_payload": {}})).collect::<Vec<_>>()}),
            ),
            5,
        ),
        ("list events", Method::GET, format!("{b}/events"), None, 4),
        (
            "list events of a topic",
            Method::GET,
            format!("{b}/events?topic=a"),
            None,
            4,
        ),
        (
            "log interaction",
            Method::POST,
            format!("{b}/rlhf/interactions"),
            Some(json!({"prompt": "p", "response": "r"})),
            4,
        ),
        (
            "list interactions",
            Method::GET,
            format!("{b}/rlhf/interactions"),
            None,
            4,
        ),
        (
            "drop table",
            Method::DELETE,
            format!("{b}/tables/t"),
            Some(json!({"confirm": true})),
            5,
        ),
        (
            "public: list tables (default project)",
            Method::GET,
            "/api/v1/public/tables/".into(),
            None,
            5,
        ), // + account read
        (
            "suspend project",
            Method::PUT,
            format!("{p}/status"),
            Some(json!({"status": "suspended"})),
            4,
        ),
        ("delete project", Method::DELETE, p.clone(), None, 5),
    ];
    let mut seen = Vec::new();
    for (name, method, path, body, expected) in cases {
        counter.take();
        let r = app.call(method, &path, Some(&key), body).await;
        assert!(r.status.is_success(), "{name}: {} {}", r.status, r.body);
        let n = counter.take();
        seen.push((name, n));
        assert_eq!(n, expected, "{name}");
    }
    println!("storage calls per request: {seen:#?}");
}
