//! Project memory (ainative-python's `zerodb.memory`, seed 003's batch routes) on both
//! storage backends: the round trip of every route, the field mapping, the project gate
//! (unknown, another account's, suspended and deleted projects), tenancy, the bulk bound,
//! expiry, scopes, and bad input answered with 422s.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use zerodb_tests::on_both_backends;
use zerodb_tests::support::{Backend, Reply, TestApp};

fn base(project_id: &str) -> String {
    format!("/api/v1/projects/{project_id}/database/memory")
}

async fn new_project(app: &TestApp, key: &str, name: &str) -> String {
    let r = app
        .post("/api/v1/projects", key, json!({"name": name}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "create project: {}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn patch(app: &TestApp, path: &str, key: &str, body: Value) -> Reply {
    app.call(Method::PATCH, path, Some(key), Some(body)).await
}

async fn set_status(app: &TestApp, project_id: &str, status: &str) {
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/projects/{project_id}/status"),
            Some(&app.root_key),
            Some(json!({"status": status})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "set status: {}", r.body);
}

async fn create(app: &TestApp, key: &str, project_id: &str, body: Value) -> Value {
    let r = app.post(&base(project_id), key, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "create: {}", r.body);
    r.body
}

fn contents(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap_or_else(|| panic!("a list: {items}"))
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}

async fn every_route_round_trips(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = new_project(&app, key, "memory round trip").await;
    let url = base(&pid);

    // Create, as ainative-python sends it.
    let m = create(
        &app,
        key,
        &pid,
        json!({"content": "The cat sat on the mat", "title": "Cat", "tags": ["pets", "home"],
               "priority": "high", "metadata": {"source": "test"}, "user_id": "u1",
               "expires_at": "2999-01-01T00:00:00"}),
    )
    .await;
    let id = m["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("mem_"), "{m}");
    assert_eq!(m["memory_id"], m["id"]);
    assert_eq!(m["project_id"], pid.as_str());
    assert_eq!(m["namespace"], format!("project:{pid}"));
    assert_eq!(m["title"], "Cat");
    assert_eq!(m["priority"], "high");
    assert_eq!(m["importance"], 0.75);
    assert_eq!(m["tags"], json!(["pets", "home"]));
    assert_eq!(m["user_id"], "u1");
    assert_eq!(m["expires_at"], "2999-01-01T00:00:00.000Z");
    assert_eq!(
        m["metadata"],
        json!({"source": "test"}),
        "the fields are lifted out"
    );
    // The defaults: title "Memory Entry", priority medium.
    let plain = create(
        &app,
        key,
        &pid,
        json!({"content": "A cat is sleeping on the mat"}),
    )
    .await;
    assert_eq!(plain["title"], "Memory Entry");
    assert_eq!(plain["priority"], "medium");
    assert!(plain.get("user_id").is_none() && plain.get("expires_at").is_none());

    // Get.
    let r = app.get(&format!("{url}/{id}"), key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["content"], "The cat sat on the mat");
    assert_eq!(r.body["title"], "Cat");

    // Bulk: three more, one of them another user's.
    let r = app
        .post(
            &format!("{url}/bulk"),
            key,
            json!({"memories": [
                {"content": "Quarterly revenue grew by ten percent", "priority": "critical", "tags": ["finance"]},
                {"content": "The dog chased the cat around the mat", "user_id": "u2"},
                {"content": "Invoices are due on the first of the month", "priority": "low"},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        (r.body["created"].clone(), r.body["failed"].clone()),
        (json!(3), json!(0))
    );
    assert_eq!(r.body["memories"][0]["priority"], "critical");
    assert_eq!(r.body["memories"][1]["user_id"], "u2");

    // List: newest first, paged, filtered.
    let r = app.get(&format!("{url}?limit=100&offset=0"), key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["count"], 5);
    assert_eq!(r.body["has_more"], false);
    assert_eq!(
        contents(&r.body["memories"])[0],
        "Invoices are due on the first of the month"
    );
    let r = app.get(&format!("{url}?limit=2&offset=1"), key).await;
    assert_eq!(
        contents(&r.body["memories"]),
        [
            "The dog chased the cat around the mat",
            "Quarterly revenue grew by ten percent"
        ]
    );
    assert_eq!(r.body["has_more"], true);
    let r = app.get(&format!("{url}?tags=pets,home"), key).await;
    assert_eq!(contents(&r.body["memories"]), ["The cat sat on the mat"]);
    let r = app.get(&format!("{url}?priority=critical"), key).await;
    assert_eq!(
        contents(&r.body["memories"]),
        ["Quarterly revenue grew by ten percent"]
    );
    let r = app.get(&format!("{url}?user_id=u2"), key).await;
    assert_eq!(
        contents(&r.body["memories"]),
        ["The dog chased the cat around the mat"]
    );
    let r = app
        .get(&format!("{url}?search=CAT%20mat&limit=10"), key)
        .await;
    assert_eq!(r.body["count"], 3, "{}", r.body);

    // Update: only what is sent changes; the title stays when metadata is replaced.
    let r = patch(
        &app,
        &format!("{url}/{id}"),
        key,
        json!({"content": "The cat sat on the warm mat", "priority": "low", "metadata": {"mood": "sleepy"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["content"], "The cat sat on the warm mat");
    assert_eq!(r.body["priority"], "low");
    assert_eq!(r.body["importance"], 0.25);
    assert_eq!(r.body["title"], "Cat");
    assert_eq!(r.body["user_id"], "u1");
    assert_eq!(r.body["metadata"], json!({"mood": "sleepy"}));
    assert_eq!(r.body["tags"], json!(["pets", "home"]));
    let r = patch(
        &app,
        &format!("{url}/{id}"),
        key,
        json!({"title": "Warm cat"}),
    )
    .await;
    assert_eq!(r.body["title"], "Warm cat");
    assert_eq!(r.body["metadata"], json!({"mood": "sleepy"}));

    // Search: by meaning (ranked), by words, by user.
    let r = app
        .post(
            &format!("{url}/search"),
            key,
            json!({"query": "cat on a mat", "limit": 10, "semantic": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["results"], r.body["memories"]);
    let found = contents(&r.body["results"]);
    assert!(found[0].contains("cat"), "{found:?}");
    assert!(r.body["results"][0]["score"].as_f64().unwrap() > 0.0);
    let r = app
        .post(
            &format!("{url}/search"),
            key,
            json!({"query": "invoices", "semantic": false}),
        )
        .await;
    assert_eq!(
        contents(&r.body["results"]),
        ["Invoices are due on the first of the month"]
    );
    let r = app
        .post(
            &format!("{url}/search"),
            key,
            json!({"query": "cat", "user_id": "u2"}),
        )
        .await;
    assert_eq!(
        contents(&r.body["results"]),
        ["The dog chased the cat around the mat"]
    );

    // Related: by meaning, the memory itself left out.
    let r = app.get(&format!("{url}/{id}/related?limit=2"), key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let related = contents(&r.body["memories"]);
    assert_eq!(related.len(), 2, "{related:?}");
    assert!(!related.contains(&"The cat sat on the warm mat".to_owned()));
    assert!(related.iter().all(|c| c.contains("cat")), "{related:?}");

    // The memories are the namespace's: v2 recall finds them there.
    let r = app
        .post(
            "/api/v1/public/memory/v2/recall",
            key,
            json!({"query": "*", "namespace": format!("project:{pid}"), "limit": 100}),
        )
        .await;
    assert_eq!(r.body["total"], 5, "{}", r.body);

    // Delete answers with a body; the memory is gone.
    let r = app.delete(&format!("{url}/{id}"), key).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["deleted"], true);
    assert_eq!(r.body["id"], id.as_str());
    let r = app.get(&format!("{url}/{id}"), key).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.delete(&format!("{url}/{id}"), key).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.get(&format!("{url}/{id}/related"), key).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn batch_routes_pass_the_project_gate(backend: Backend) {
    let app = TestApp::new(backend).await;
    let a = &app.root_key;
    let b = app.new_account("b").await;
    let pid = new_project(&app, a, "batch").await;
    let records = json!({"records": [{"content": "seed 003 record", "importance": 0.8}]});
    for project in ["proj_unknown", "not%20a%20project!", pid.as_str()] {
        let who = if project == pid { &b } else { a };
        for (op, body) in [
            ("upsert", records.clone()),
            ("delete", json!({"ids": ["mem_x"]})),
            (
                "update",
                json!({"updates": [{"id": "mem_x", "importance": 0.1}]}),
            ),
        ] {
            let r = app
                .post(&format!("{}/batch/{op}", base(project)), who, body)
                .await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{project} {op}: {}",
                r.body
            );
            assert_eq!(r.code(), "PROJECT_NOT_FOUND", "{project} {op}");
        }
    }
    // The owner's batch works, into the project's namespace.
    let r = app
        .post(&format!("{}/batch/upsert", base(&pid)), a, records)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["inserted"], 1);
    let listed = app.get(&base(&pid), a).await;
    assert_eq!(contents(&listed.body["memories"]), ["seed 003 record"]);
    assert_eq!(listed.body["memories"][0]["priority"], "high");
}

async fn another_account_cannot_reach_project_memory(backend: Backend) {
    let app = TestApp::new(backend).await;
    let a = &app.root_key;
    let b = app.new_account("b").await;
    let pa = new_project(&app, a, "a's").await;
    let pb = new_project(&app, &b, "b's").await;
    let m = create(&app, a, &pa, json!({"content": "a's secret plan"})).await;
    let id = m["id"].as_str().unwrap();
    // Every route of A's project answers B as if it did not exist.
    let url = base(&pa);
    for r in [
        app.post(&url, &b, json!({"content": "x"})).await,
        app.get(&url, &b).await,
        app.get(&format!("{url}/{id}"), &b).await,
        patch(&app, &format!("{url}/{id}"), &b, json!({"title": "x"})).await,
        app.delete(&format!("{url}/{id}"), &b).await,
        app.post(&format!("{url}/search"), &b, json!({"query": "plan"}))
            .await,
        app.post(
            &format!("{url}/bulk"),
            &b,
            json!({"memories": [{"content": "x"}]}),
        )
        .await,
        app.get(&format!("{url}/{id}/related"), &b).await,
    ] {
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
        assert_eq!(r.code(), "PROJECT_NOT_FOUND", "{}", r.body);
    }
    // Through B's own project, A's memory id is nobody's.
    let url = base(&pb);
    for r in [
        app.get(&format!("{url}/{id}"), &b).await,
        patch(&app, &format!("{url}/{id}"), &b, json!({"title": "x"})).await,
        app.delete(&format!("{url}/{id}"), &b).await,
        app.get(&format!("{url}/{id}/related"), &b).await,
    ] {
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
        assert_eq!(r.code(), "API_404", "{}", r.body);
        assert!(!r.body.to_string().contains("secret"), "{}", r.body);
    }
    let r = app.get(&url, &b).await;
    assert_eq!(r.body["count"], 0);
    let r = app.get(&format!("{}/{id}", base(&pa)), a).await;
    assert_eq!(r.body["content"], "a's secret plan", "untouched");
}

async fn a_suspended_project_is_read_only(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = new_project(&app, key, "suspended").await;
    let url = base(&pid);
    let m = create(&app, key, &pid, json!({"content": "kept while suspended"})).await;
    let id = m["id"].as_str().unwrap();
    set_status(&app, &pid, "suspended").await;
    for r in [
        app.post(&url, key, json!({"content": "x"})).await,
        patch(&app, &format!("{url}/{id}"), key, json!({"title": "x"})).await,
        app.delete(&format!("{url}/{id}"), key).await,
        app.post(
            &format!("{url}/bulk"),
            key,
            json!({"memories": [{"content": "x"}]}),
        )
        .await,
        app.post(
            &format!("{url}/batch/upsert"),
            key,
            json!({"records": [{"content": "x"}]}),
        )
        .await,
        app.post(&format!("{url}/batch/delete"), key, json!({"ids": [id]}))
            .await,
    ] {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        assert_eq!(r.code(), "PROJECT_SUSPENDED", "{}", r.body);
    }
    let r = app.get(&format!("{url}/{id}"), key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.get(&url, key).await;
    assert_eq!(contents(&r.body["memories"]), ["kept while suspended"]);
    let r = app
        .post(&format!("{url}/search"), key, json!({"query": "kept"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.get(&format!("{url}/{id}/related"), key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // A project whose database is off has no memory routes.
    let r = app
        .post(
            "/v1/public/projects",
            key,
            json!({"name": "no database", "database_enabled": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let off = r.body["id"].as_str().unwrap();
    let r = app.get(&base(off), key).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.code(), "DATABASE_DISABLED");
    // Active again: writable. Deleted: gone.
    set_status(&app, &pid, "active").await;
    let r = patch(&app, &format!("{url}/{id}"), key, json!({"title": "back"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.delete(&format!("/api/v1/projects/{pid}"), key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.get(&format!("{url}/{id}"), key).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "PROJECT_NOT_FOUND");
}

async fn a_bulk_over_500_writes_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = new_project(&app, key, "bulk").await;
    let url = base(&pid);
    let many: Vec<Value> = (0..501)
        .map(|i| json!({"content": format!("memory {i}")}))
        .collect();
    let r = app
        .post(&format!("{url}/bulk"), key, json!({"memories": many}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["detail"][0]["loc"], json!(["body", "memories"]));
    assert!(
        r.body["detail"][0]["msg"].as_str().unwrap().contains("500"),
        "{}",
        r.body
    );
    // One bad memory refuses them all, each problem named.
    let r = app
        .post(
            &format!("{url}/bulk"),
            key,
            json!({"memories": [{"content": "fine"}, {"content": "x", "priority": "urgent"}, 7, {"title": "no content"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let locs: Vec<Value> = r.body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["loc"].clone())
        .collect();
    assert_eq!(
        locs,
        [
            json!(["body", "memories", 1, "priority"]),
            json!(["body", "memories", 2]),
            json!(["body", "memories", 3, "content"]),
        ]
    );
    let r = app.get(&url, key).await;
    assert_eq!(r.body["count"], 0, "nothing written: {}", r.body);
    let r = app
        .post(&format!("{url}/bulk"), key, json!({"memories": []}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

on_both_backends!(
    every_route_round_trips,
    batch_routes_pass_the_project_gate,
    another_account_cannot_reach_project_memory,
    a_suspended_project_is_read_only,
    a_bulk_over_500_writes_nothing,
);

/// Bad input is a 422 naming the field (or a 404 for an id that names nothing), never a
/// 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_422_naming_the_field() {
    let app = TestApp::new(Backend::Embedded).await;
    let key = &app.root_key;
    let pid = new_project(&app, key, "bad input").await;
    let url = base(&pid);
    let m = create(&app, key, &pid, json!({"content": "target"})).await;
    let id = m["id"].as_str().unwrap();
    let long = "t".repeat(501);
    let many_tags: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    let posts = [
        (url.clone(), json!({"content": ""}), vec!["body", "content"]),
        (
            url.clone(),
            json!({"content": "x", "priority": "urgent"}),
            vec!["body", "priority"],
        ),
        (
            url.clone(),
            json!({"content": "x", "expires_at": "tomorrow"}),
            vec!["body", "expires_at"],
        ),
        (
            url.clone(),
            json!({"content": "x", "expires_at": "2001-01-01T00:00:00Z"}),
            vec!["body", "expires_at"],
        ),
        (
            url.clone(),
            json!({"content": "x", "title": long}),
            vec!["body", "title"],
        ),
        (
            url.clone(),
            json!({"content": "x", "tags": many_tags}),
            vec!["body", "tags"],
        ),
        (
            url.clone(),
            json!({"content": "x", "metadata": "not an object"}),
            vec!["body", "metadata"],
        ),
        (url.clone(), json!({"content": "x", "user_id": " "}), vec![]),
        (
            url.clone(),
            json!({"content": "x", "memory_type": "long-term"}),
            vec!["body", "memory_type"],
        ),
        (
            url.clone(),
            json!({"content": "x", "metadata": {"big": "x".repeat(40_000)}}),
            vec!["body", "metadata"],
        ),
        (
            format!("{url}/search"),
            json!({"query": "x", "limit": 5000}),
            vec!["body", "limit"],
        ),
        (
            format!("{url}/search"),
            json!({"query": "x", "limit": 0}),
            vec!["body", "limit"],
        ),
        (
            format!("{url}/search"),
            json!({"limit": 3}),
            vec!["body", "query"],
        ),
        (
            format!("{url}/search"),
            json!({"query": "x".repeat(10_001)}),
            vec!["body", "query"],
        ),
        (
            format!("{url}/bulk"),
            json!({"memories": "x"}),
            vec!["body", "memories"],
        ),
    ];
    for (path, body, loc) in posts {
        let r = app.post(&path, key, body.clone()).await;
        if loc.is_empty() {
            // A blank user id is no user id.
            assert_eq!(r.status, StatusCode::CREATED, "{body}: {}", r.body);
            continue;
        }
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
        assert_eq!(r.body["detail"][0]["loc"], json!(loc), "{}", r.body);
    }
    for q in [
        "limit=0",
        "limit=1001",
        "offset=-1",
        "limit=abc",
        "priority=urgent",
        "offset=50001",
    ] {
        let r = app.get(&format!("{url}?{q}"), key).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{q}: {}",
            r.body
        );
    }
    let r = app
        .get(&format!("{url}?tags={}", many_tags_query()), key)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = app.get(&format!("{url}/{id}/related?limit=0"), key).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    for body in [
        json!({}),
        json!({"content": " "}),
        json!({"priority": "none"}),
        json!({"metadata": {"big": "x".repeat(40_000)}}),
    ] {
        let r = patch(&app, &format!("{url}/{id}"), key, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
    }
    // Ids that name nothing are 404s, whatever their form.
    for bad in [
        "nope",
        "mem_",
        "mem_00000000000000000000000000",
        "%E2%9C%93",
    ] {
        let r = app.get(&format!("{url}/{bad}"), key).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}: {}", r.body);
        let r = patch(&app, &format!("{url}/{bad}"), key, json!({"title": "x"})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}: {}", r.body);
        let r = app.delete(&format!("{url}/{bad}"), key).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}: {}", r.body);
    }
}

fn many_tags_query() -> String {
    (0..51)
        .map(|i| format!("t{i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// An expired memory is hidden from every project route; v2 recall still holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_memory_is_hidden() {
    let app = TestApp::new(Backend::Embedded).await;
    let key = &app.root_key;
    let pid = new_project(&app, key, "expiry").await;
    let url = base(&pid);
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let m = create(
        &app,
        key,
        &pid,
        json!({"content": "fleeting cat thought", "expires_at": soon}),
    )
    .await;
    let id = m["id"].as_str().unwrap();
    create(&app, key, &pid, json!({"content": "lasting cat thought"})).await;
    let r = app.get(&url, key).await;
    assert_eq!(r.body["count"], 2);
    app.clock.advance_secs(2 * 3600);
    let r = app.get(&url, key).await;
    assert_eq!(contents(&r.body["memories"]), ["lasting cat thought"]);
    let r = app.get(&format!("{url}/{id}"), key).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            &format!("{url}/search"),
            key,
            json!({"query": "cat thought"}),
        )
        .await;
    assert_eq!(contents(&r.body["results"]), ["lasting cat thought"]);
    let r = patch(&app, &format!("{url}/{id}"), key, json!({"title": "x"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Deleting it still works.
    let r = app.delete(&format!("{url}/{id}"), key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// The memory scopes apply to the project's namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_scopes_apply_to_the_project_namespace() {
    let app = TestApp::new(Backend::Embedded).await;
    let key = &app.root_key;
    let pid = new_project(&app, key, "scoped").await;
    let other = new_project(&app, key, "other").await;
    let url = base(&pid);
    let (_, reader) = app
        .create_key(&[&format!("memory:read:project/{pid}")], None)
        .await;
    let (_, writer) = app
        .create_key(
            &[
                &format!("memory:read:project/{pid}"),
                &format!("memory:write:project/{pid}"),
            ],
            None,
        )
        .await;
    let m = create(
        &app,
        &writer,
        &pid,
        json!({"content": "written by a scoped key"}),
    )
    .await;
    let id = m["id"].as_str().unwrap();
    let r = app.get(&format!("{url}/{id}"), &reader).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.post(&url, &reader, json!({"content": "x"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app.delete(&format!("{url}/{id}"), &reader).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // Another project of the same account is another namespace.
    let r = app.get(&base(&other), &writer).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app
        .post(&base(&other), &writer, json!({"content": "x"}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // A memory of another namespace of the account is not the project's.
    let r = app
        .post(
            "/api/v1/public/memory/v2/remember",
            key,
            json!({"content": "session note", "namespace": "session:s1"}),
        )
        .await;
    let sid = r.body["id"].as_str().unwrap();
    let r = app.get(&format!("{url}/{sid}"), key).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.delete(&format!("{url}/{sid}"), key).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            "/api/v1/public/memory/v2/recall",
            key,
            json!({"query": "*", "namespace": "session:s1"}),
        )
        .await;
    assert_eq!(r.body["total"], 1, "left alone: {}", r.body);
}

/// Storage calls per route, counted (each is one DynamoDB request on AWS), the gate's
/// read of the project record included; the credential check is not counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_route_makes_few_storage_calls() {
    use std::sync::Arc;
    use zerodb_tests::support::{CountingTable, test_context, test_memory};
    let mut app = TestApp::new(Backend::Embedded).await;
    let key = app.root_key.clone();
    let key = &key;
    let pid = new_project(&app, key, "counted").await;
    let counting = CountingTable::new(app.stores.table.clone());
    let mut stores = app.stores.clone();
    stores.table = counting.clone();
    let counted = test_context(stores, app.clock.clone(), 0);
    let memory = test_memory(&counted, Arc::new(zerodb_embed::LexicalEmbedder::new(384)));
    app.ctx.provide(zerodb_projects::Projects::new(
        &counted,
        zerodb_projects::ProjectLimits::default(),
    ));
    app.set_memory(memory).await;
    let url = base(&pid);
    let mut calls = Vec::new();
    counting.take();
    let m = create(
        &app,
        key,
        &pid,
        json!({"content": "the cat sat on the mat", "title": "t"}),
    )
    .await;
    calls.push(("create", counting.take()));
    let id = m["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("{url}/bulk"),
            key,
            json!({"memories": [{"content": "a cat"}, {"content": "a dog"}, {"content": "a mat"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    calls.push(("bulk of 3", counting.take()));
    app.get(&format!("{url}/{id}"), key).await;
    calls.push(("get", counting.take()));
    app.get(&url, key).await;
    calls.push(("list", counting.take()));
    patch(
        &app,
        &format!("{url}/{id}"),
        key,
        json!({"priority": "high"}),
    )
    .await;
    calls.push(("update", counting.take()));
    // The first search embeds the pending memories and saves their vectors (one write
    // each); later ones read the namespace only.
    app.post(&format!("{url}/search"), key, json!({"query": "cat"}))
        .await;
    counting.take();
    app.post(&format!("{url}/search"), key, json!({"query": "cat"}))
        .await;
    calls.push(("search", counting.take()));
    app.get(&format!("{url}/{id}/related"), key).await;
    calls.push(("related", counting.take()));
    let r = app
        .post(
            &format!("{url}/batch/upsert"),
            key,
            json!({"records": [{"content": "seed 003"}]}),
        )
        .await;
    assert_eq!(r.body["inserted"], 1);
    calls.push(("batch upsert of 1", counting.take()));
    let r = app.delete(&format!("{url}/{id}"), key).await;
    assert_eq!(r.status, StatusCode::OK);
    calls.push(("delete", counting.take()));
    println!("storage calls per route: {calls:?}");
    assert_eq!(
        calls,
        [
            ("create", 2),
            ("bulk of 3", 2),
            ("get", 2),
            ("list", 2),
            ("update", 3),
            ("search", 2),
            ("related", 3),
            ("batch upsert of 1", 2),
            ("delete", 4),
        ]
    );
}
