//! The projects group on both storage backends: seed 004's routes and error codes, the
//! ainative-python form over the same records, the lifecycle with its recorded
//! transitions, per-tier limits, tenancy, the purge of a deleted project's data, and
//! instant-db.

use http::StatusCode;
use serde_json::{Value, json};
use zerodb_tests::on_both_backends;
use zerodb_tests::support::{Backend, TestApp};

async fn seed_004_routes_answer_as_written(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    // test_project_status_field, step by step.
    let r = app
        .post("/v1/public/projects", key, json!({"name": "Test Project"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let created = r.body;
    assert_eq!(created["status"], "ACTIVE");
    assert_eq!(created["tier"], "free");
    assert_eq!(created["database_enabled"], true);
    assert!(created["description"].is_null());
    assert!(created["id"].as_str().unwrap().starts_with("proj_"));
    for f in ["created_at", "updated_at"] {
        assert!(chrono::DateTime::parse_from_rfc3339(created[f].as_str().unwrap()).is_ok());
    }
    let id = created["id"].as_str().unwrap();
    let r = app
        .post(
            "/v1/public/projects",
            key,
            json!({"name": "Autonomous Fintech Agents", "description": "CrewAI agents", "tier": "pro", "database_enabled": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["tier"], "pro");
    assert_eq!(r.body["database_enabled"], false);

    let list = app.get("/v1/public/projects?limit=10&offset=0", key).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["total"], 2);
    assert_eq!(list.body["limit"], 10);
    assert_eq!(list.body["offset"], 0);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for p in items {
        assert!(["ACTIVE", "SUSPENDED", "DELETED"].contains(&p["status"].as_str().unwrap()));
    }
    assert_eq!(items[0]["id"], id, "oldest first");
    let page = app.get("/v1/public/projects?limit=1&offset=1", key).await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(page.body["total"], 2);

    let got = app.get(&format!("/v1/public/projects/{id}"), key).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["status"], "ACTIVE");
    let usage = &got.body["usage"];
    for f in ["vectors_stored", "tables_created", "events_logged"] {
        assert_eq!(usage[f], 0, "{f}");
    }
    assert_eq!(usage["storage_mb"], 0.0);

    // The seed's error bodies.
    let r = app
        .post(
            "/v1/public/projects",
            key,
            json!({"name": "x", "tier": "gold"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "INVALID_TIER");
    assert_eq!(
        r.body["detail"],
        "Invalid tier specified. Must be one of: free, starter, pro, enterprise"
    );
    let r = app
        .post(
            "/v1/public/projects",
            key,
            json!({"description": "no name"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["detail"][0]["loc"], json!(["body", "name"]));
    assert_eq!(r.body["detail"][0]["msg"], "field required");
    assert_eq!(r.body["detail"][0]["type"], "value_error.missing");
    let r = app
        .post("/v1/public/projects", key, json!({"name": "n".repeat(101)}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            "/v1/public/projects",
            key,
            json!({"name": "ok", "description": "d".repeat(501)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["detail"][0]["loc"], json!(["body", "description"]));
    let r = app
        .get(
            "/v1/public/projects",
            "sk_not_a_real_key_at_all_000000000000",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "INVALID_API_KEY");
    assert_eq!(r.body["detail"], "Invalid API key");
    let r = app.get("/v1/public/projects/proj_01nothere", key).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "PROJECT_NOT_FOUND");
    assert_eq!(r.body["detail"], "Project not found");
    let r = app.get("/v1/public/projects?status=ARCHIVED", key).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn the_python_form_reads_the_same_records(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let r = app
        .post(
            "/api/v1/projects",
            key,
            json!({"name": "py", "description": "", "metadata": {"team": "a"}, "config": {}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["metadata"]["team"], "a");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let seed = app.get(&format!("/v1/public/projects/{id}"), key).await;
    assert_eq!(seed.body["status"], "ACTIVE", "one record, two spellings");
    let r = app
        .patch(
            &format!("/api/v1/projects/{id}"),
            key,
            json!({"name": "renamed", "metadata": {"team": "b"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "renamed");
    let list = app
        .get("/api/v1/projects?limit=100&offset=0&status=active", key)
        .await;
    assert_eq!(list.body["projects"][0]["name"], "renamed");
    assert_eq!(list.body["items"][0]["status"], "active");
    let stats = app
        .get(&format!("/api/v1/projects/{id}/statistics"), key)
        .await;
    assert_eq!(stats.status, StatusCode::OK);
    assert_eq!(stats.body["tables_created"], 0);
}

async fn the_lifecycle_is_recorded_and_enforced(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let id = app.project("life").await;
    let status = |s: &str| json!({"status": s, "reason": "maintenance"});
    let r = app
        .put(
            &format!("/api/v1/projects/{id}/status"),
            key,
            status("suspended"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "suspended");
    // Suspended: reads work, writes are refused with a code that says why.
    let tables = format!("/api/v1/projects/{id}/database/tables");
    assert_eq!(app.get(&tables, key).await.status, StatusCode::OK);
    let r = app.post(&tables, key, json!({"table_name": "t"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "PROJECT_SUSPENDED");
    let r = app
        .post(
            &format!("/api/v1/projects/{id}/database/events"),
            key,
            json!({"topic": "a", "event_payload": {}}),
        )
        .await;
    assert_eq!(r.code(), "PROJECT_SUSPENDED");
    // The same status again changes nothing and records nothing.
    app.put(
        &format!("/api/v1/projects/{id}/status"),
        key,
        status("SUSPENDED"),
    )
    .await;
    let r = app
        .put(
            &format!("/api/v1/projects/{id}/status"),
            key,
            status("archived"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .put(
            &format!("/api/v1/projects/{id}/status"),
            key,
            status("active"),
        )
        .await;
    assert_eq!(r.body["status"], "active");
    assert_eq!(
        app.post(&tables, key, json!({"table_name": "t"}))
            .await
            .status,
        StatusCode::CREATED
    );

    let t = app
        .get(&format!("/api/v1/projects/{id}/transitions"), key)
        .await;
    let ts = t.body["transitions"].as_array().unwrap();
    let steps: Vec<(Value, Value)> = ts
        .iter()
        .map(|t| (t["from"].clone(), t["to"].clone()))
        .collect();
    assert_eq!(
        steps,
        vec![
            (Value::Null, json!("ACTIVE")),
            (json!("ACTIVE"), json!("SUSPENDED")),
            (json!("SUSPENDED"), json!("ACTIVE")),
        ]
    );
    assert_eq!(ts[1]["reason"], "maintenance");
    assert!(
        ts.iter()
            .all(|t| t["by"].as_str().unwrap().starts_with("key_"))
    );

    // Status changes are events, after commit.
    let events = app.drain_events().await;
    assert!(
        events
            .iter()
            .any(|e| e.contains("zerodb.project.status_changed") && e.contains("SUSPENDED")),
        "{events:?}"
    );

    // Deleted: 404 everywhere, out of the list unless asked for, terminal.
    let r = app.delete(&format!("/api/v1/projects/{id}"), key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for path in [
        format!("/v1/public/projects/{id}"),
        format!("/api/v1/projects/{id}"),
        tables.clone(),
        format!("/api/v1/projects/{id}/database/events"),
    ] {
        let r = app.get(&path, key).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.code(), "PROJECT_NOT_FOUND", "{path}");
    }
    let r = app
        .put(
            &format!("/api/v1/projects/{id}/status"),
            key,
            status("active"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/v1/public/projects", key).await.body["total"], 0);
    let deleted = app.get("/v1/public/projects?status=DELETED", key).await;
    assert_eq!(deleted.body["items"][0]["status"], "DELETED");
}

async fn project_scopes_are_checked(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = app.project("scoped").await;
    let (_, reader) = app.create_key(&["zerodb:read"], None).await;
    let (_, writer) = app.create_key(&["zerodb:read", "zerodb:write"], None).await;
    let (_, memory_only) = app.create_key(&["memory:read"], None).await;
    let r = app
        .post("/v1/public/projects", &writer, json!({"name": "x"}))
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "creating takes zerodb:admin"
    );
    assert_eq!(r.code(), "PERM_001");
    assert_eq!(
        app.get(&format!("/v1/public/projects/{id}"), &reader)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/v1/public/projects", &memory_only).await.status,
        StatusCode::FORBIDDEN
    );
    let r = app
        .put(
            &format!("/api/v1/projects/{id}/status"),
            &writer,
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.delete(&format!("/api/v1/projects/{id}"), &writer)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = app
        .patch(
            &format!("/api/v1/projects/{id}"),
            &reader,
            json!({"name": "y"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .patch(
            &format!("/api/v1/projects/{id}"),
            &writer,
            json!({"name": "y"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

async fn another_account_sees_no_project_of_this_one(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = app.project("mine").await;
    let other = app.new_account("other").await;
    assert_eq!(
        app.get("/v1/public/projects", &other).await.body["total"],
        0
    );
    for path in [
        format!("/v1/public/projects/{id}"),
        format!("/api/v1/projects/{id}"),
        format!("/api/v1/projects/{id}/statistics"),
        format!("/api/v1/projects/{id}/transitions"),
    ] {
        let r = app.get(&path, &other).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.code(), "PROJECT_NOT_FOUND");
    }
    let r = app
        .patch(
            &format!("/api/v1/projects/{id}"),
            &other,
            json!({"name": "stolen"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .put(
            &format!("/api/v1/projects/{id}/status"),
            &other,
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.delete(&format!("/api/v1/projects/{id}"), &other)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let mine = app
        .get(&format!("/v1/public/projects/{id}"), &app.root_key)
        .await;
    assert_eq!(mine.body["name"], "mine");
    assert_eq!(mine.body["status"], "ACTIVE");
}

async fn the_tier_limit_holds_and_deleting_frees_a_slot(backend: Backend) {
    let app = TestApp::with_settings(backend, &[("ZERODB_PROJECT_LIMIT_FREE", "2")]).await;
    let key = &app.root_key;
    let a = app.project("a").await;
    app.project("b").await;
    let r = app
        .post("/v1/public/projects", key, json!({"name": "c"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "PROJECT_LIMIT_EXCEEDED");
    assert_eq!(
        r.body["detail"],
        "Project limit exceeded for your account tier. Current limit: 2 projects."
    );
    assert_eq!(
        app.get("/v1/public/projects", key).await.body["total"],
        2,
        "nothing written"
    );
    app.delete(&format!("/api/v1/projects/{a}"), key).await;
    assert_eq!(
        app.post("/v1/public/projects", key, json!({"name": "c"}))
            .await
            .status,
        StatusCode::CREATED
    );
}

async fn a_deleted_project_is_purged_by_the_worker(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let id = app.project("purged").await;
    let keep = app.project("kept").await;
    for pid in [&id, &keep] {
        let base = format!("/api/v1/projects/{pid}/database");
        app.post(
            &format!("{base}/tables"),
            key,
            json!({"table_name": "t", "schema": {"indexes": ["k"]}}),
        )
        .await;
        let r = app
            .post(
                &format!("{base}/tables/t/rows"),
                key,
                json!({"rows": [{"k": 1}, {"k": 2}, {"k": 3}]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        app.post(
            &format!("{base}/events"),
            key,
            json!({"topic": "a.b", "event_payload": {"n": 1}}),
        )
        .await;
        app.post(
            &format!("{base}/rlhf/interactions"),
            key,
            json!({"prompt": "p", "response": "r"}),
        )
        .await;
        let r = app
            .post(
                "/api/v1/public/memory/v2/remember",
                key,
                json!({"content": "a project fact", "namespace": format!("project:{pid}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    app.drain_events().await;

    assert_eq!(
        app.delete(&format!("/api/v1/projects/{id}"), key)
            .await
            .status,
        StatusCode::OK
    );
    // The request left the data; the worker removes it.
    let partitions = |pid: &str| {
        vec![
            zerodb_domain::keys::database_partition(pid),
            zerodb_domain::keys::events_partition(pid),
            zerodb_domain::keys::rlhf_partition(pid),
        ]
    };
    let count = |pk: String| {
        let table = app.stores.table.clone();
        async move {
            table
                .query(zerodb_domain::store::Query::partition(pk))
                .await
                .unwrap()
                .items
                .len()
        }
    };
    let mut before = 0;
    for pk in partitions(&id) {
        before += count(pk).await;
    }
    assert!(before > 0);
    let seen = app.run_worker().await;
    assert!(
        seen.iter()
            .any(|e| e.event == zerodb_projects::purge::PURGE_EVENT)
    );
    for pk in partitions(&id) {
        assert_eq!(count(pk.clone()).await, 0, "{pk} purged");
    }
    for (pid, left) in [(&id, 0), (&keep, 1)] {
        let r = app
            .post(
                "/api/v1/public/memory/v2/recall",
                key,
                json!({"query": "*", "namespace": format!("project:{pid}"), "limit": 10}),
            )
            .await;
        assert_eq!(
            r.body["results"].as_array().map_or(0, Vec::len),
            left,
            "{pid}: {}",
            r.body
        );
    }
    let kept = app.get(&format!("/v1/public/projects/{keep}"), key).await;
    assert_eq!(kept.body["usage"]["tables_created"], 1, "{}", kept.body);
    assert_eq!(kept.body["usage"]["events_logged"], 1);
    let r = app
        .post(
            &format!("/api/v1/projects/{keep}/database/tables/t/query"),
            key,
            json!({"limit": 10}),
        )
        .await;
    assert_eq!(r.body["total"], 3, "the other project's rows stay");
}

async fn instant_db_provisions_an_account_when_enabled(backend: Backend) {
    let off = TestApp::new(backend).await;
    let r = off
        .call(
            http::Method::POST,
            "/api/v1/public/instant-db",
            None,
            Some(json!({"source": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "INSTANT_DB_DISABLED");

    let app = TestApp::with_settings(
        backend,
        &[
            ("ZERODB_INSTANT_DB", "on"),
            ("ZERODB_INSTANT_DB_PER_ADDRESS", "2"),
        ],
    )
    .await;
    let r = app
        .call(
            http::Method::POST,
            "/api/v1/public/instant-db",
            None,
            Some(json!({"name": "opencode-memory", "agree_terms": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let key = r.body["api_key"].as_str().unwrap().to_owned();
    let pid = r.body["project_id"].as_str().unwrap().to_owned();
    let expires =
        chrono::DateTime::parse_from_rfc3339(r.body["expires_at"].as_str().unwrap()).unwrap();
    let hours = (expires.timestamp() - zerodb_domain::clock::Clock::epoch_secs(&*app.clock)) as f64
        / 3600.0;
    assert!((71.9..=72.1).contains(&hours), "{hours}");
    assert!(r.body["claim_url"].as_str().unwrap().contains(&pid));
    assert_eq!(r.body["mcp"]["env_vars"]["ZERODB_API_KEY"], key.as_str());
    // The key works on its project and its memory, and not on another account's.
    let got = app.get(&format!("/v1/public/projects/{pid}"), &key).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["status"], "ACTIVE");
    let r = app
        .post(
            "/api/v1/public/memory/v2/remember",
            &key,
            json!({"content": "hello", "namespace": format!("project:{pid}")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        app.get("/v1/public/projects", &app.root_key).await.body["total"],
        0
    );
    // A per-address limit (tests have no address: one bucket for all).
    app.call(http::Method::POST, "/api/v1/public/instant-db", None, None)
        .await;
    let r = app
        .call(http::Method::POST, "/api/v1/public/instant-db", None, None)
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.get("retry-after").is_some());
    // It expires after 72 hours.
    app.clock.advance_secs(72 * 3600 + 1);
    assert_eq!(
        app.get(&format!("/v1/public/projects/{pid}"), &key)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

on_both_backends!(
    seed_004_routes_answer_as_written,
    the_python_form_reads_the_same_records,
    the_lifecycle_is_recorded_and_enforced,
    project_scopes_are_checked,
    another_account_sees_no_project_of_this_one,
    the_tier_limit_holds_and_deleting_frees_a_slot,
    a_deleted_project_is_purged_by_the_worker,
    instant_db_provisions_an_account_when_enabled,
);
