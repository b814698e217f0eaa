//! The memory endpoint group, on both storage backends: remember/recall/forget, session
//! cleanup, namespaces and scopes, tenancy, the graph, batch operations, events and the
//! embedding worker.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};
use zerodb_domain::events::Event;
use zerodb_tests::on_both_backends;
use zerodb_tests::support::{Backend, TestApp};

const V2: &str = "/api/v1/public/memory/v2";

fn url(op: &str) -> String {
    format!("{V2}/{op}")
}

async fn remember(app: &TestApp, key: &str, body: Value) -> Value {
    let r = app.post(&url("remember"), key, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "remember: {}", r.body);
    r.body
}

async fn recall(app: &TestApp, key: &str, body: Value) -> Vec<Value> {
    let r = app.post(&url("recall"), key, body).await;
    assert_eq!(r.status, StatusCode::OK, "recall: {}", r.body);
    assert_eq!(r.body["results"], r.body["memories"]);
    assert_eq!(
        r.body["total"].as_u64().unwrap() as usize,
        r.body["results"].as_array().unwrap().len()
    );
    r.body["results"].as_array().unwrap().clone()
}

/// A new project of the account `key` is root of; the batch memory routes pass its gate.
async fn new_project(app: &TestApp, key: &str) -> String {
    let r = app
        .post("/api/v1/projects", key, json!({"name": "memory"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

fn contents(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}

async fn remember_echoes_the_record(backend: Backend) {
    let app = TestApp::new(backend).await;
    let b = remember(
        &app,
        &app.root_key,
        json!({"content": "Research target: renewable energy storage trends 2026.",
               "namespace": "session:run-42", "memory_type": "episodic", "importance": 0.8,
               "tags": ["task-context"], "entity_id": "alice", "metadata": {"source": "test"}}),
    )
    .await;
    assert!(b["id"].as_str().unwrap().starts_with("mem_"));
    assert_eq!(b["id"], b["memory_id"]);
    assert_eq!(
        b["content"],
        "Research target: renewable energy storage trends 2026."
    );
    assert_eq!(b["namespace"], "session:run-42");
    assert_eq!(b["memory_type"], "episodic");
    assert_eq!(b["importance"], 0.8);
    assert_eq!(b["tags"], json!(["task-context"]));
    assert_eq!(b["entity_id"], "alice");
    assert_eq!(b["metadata"], json!({"source": "test"}));
    assert!(b["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(b["namespace_defaulted"], false);
    assert_eq!(b["next_steps"]["action"], "recall");
    assert_eq!(
        b["next_steps"]["endpoint"],
        "POST /api/v1/public/memory/v2/recall"
    );

    // No namespace: the private default, and the response says so; never global.
    let d = remember(
        &app,
        &app.root_key,
        json!({"content": "no namespace given"}),
    )
    .await;
    assert_eq!(d["namespace"], "default");
    assert_eq!(d["namespace_defaulted"], true);
    assert!(
        d["next_steps"]["suggestion"]
            .as_str()
            .unwrap()
            .contains("default")
    );
    assert_eq!(d["memory_type"], "episodic");
    assert_eq!(d["importance"], 0.5);
    // A namespace inside metadata (one client's form) is honoured.
    let m = remember(
        &app,
        &app.root_key,
        json!({"content": "from metadata", "metadata": {"namespace": "project:oc", "tags": ["x"]}}),
    )
    .await;
    assert_eq!(m["namespace"], "project:oc");
    assert_eq!(m["namespace_defaulted"], false);
}

async fn bad_input_is_a_422_naming_the_field(backend: Backend) {
    let app = TestApp::new(backend).await;
    let k = &app.root_key;
    for (body, field, hint) in [
        (
            json!({"content": "x", "importance": 1.5}),
            "importance",
            "between 0 and 1",
        ),
        (
            json!({"content": "x", "memory_type": "long-term"}),
            "memory_type",
            "episodic",
        ),
        (json!({"content": "   "}), "content", "empty"),
        (
            json!({"content": "x", "namespace": "team:x"}),
            "namespace",
            "unknown namespace kind",
        ),
        (
            json!({"content": "x", "namespace": "open code"}),
            "namespace",
            "not a namespace",
        ),
        (json!({"content": "x".repeat(50_001)}), "content", "50000"),
        (json!({"content": "x", "tags": [""]}), "tags", "1-128"),
        (json!({"content": 5}), "content", "invalid type"),
    ] {
        let r = app.post(&url("remember"), k, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
        let d = &r.body["detail"][0];
        assert_eq!(d["loc"][1], field, "{body}: {}", r.body);
        assert!(
            d["msg"].as_str().unwrap().contains(hint),
            "{body}: {}",
            r.body
        );
    }
    for (body, field) in [
        (json!({"query": "x", "limit": 0}), "limit"),
        (json!({"query": "x", "limit": 1001}), "limit"),
        (json!({"query": "x", "min_importance": 2}), "min_importance"),
        (json!({"query": "x", "namespace": "session:"}), "namespace"),
        (json!({"query": "x", "filter": [null, null]}), "filter"),
    ] {
        let r = app.post(&url("recall"), k, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
        assert_eq!(r.body["detail"][0]["loc"][1], field, "{body}");
    }
    let r = app.post(&url("forget"), k, json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("exactly one")
    );
    let r = app.delete("/api/v1/public/memory/session/a%20b", k).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
}

async fn recall_ranks_filters_and_lists(backend: Backend) {
    let app = TestApp::new(backend).await;
    let k = &app.root_key;
    let ns = "project:recall";
    for (content, tags, ty, imp) in [
        (
            "Battery storage costs dropped 40% year over year",
            vec!["energy"],
            "semantic",
            0.9,
        ),
        (
            "The team standup moved to 9:30 on Mondays",
            vec!["schedule"],
            "episodic",
            0.4,
        ),
        (
            "Grid-scale battery installations hit 80 GWh",
            vec!["energy", "grid"],
            "semantic",
            0.6,
        ),
        (
            "Deploy with `sam deploy --guided` the first time",
            vec!["ops"],
            "procedural",
            0.7,
        ),
    ] {
        remember(
            &app,
            k,
            json!({"content": content, "namespace": ns, "tags": tags, "memory_type": ty, "importance": imp}),
        )
        .await;
        // Distinct creation times, so "newest first" is well defined.
        app.clock.advance_secs(1);
    }
    let hits = recall(
        &app,
        k,
        json!({"query": "battery storage costs", "namespace": ns, "limit": 2}),
    )
    .await;
    assert_eq!(hits.len(), 2);
    assert_eq!(
        hits[0]["content"],
        "Battery storage costs dropped 40% year over year"
    );
    assert!(hits[0]["score"].as_f64().unwrap() >= hits[1]["score"].as_f64().unwrap());
    assert!(hits[0]["similarity"].as_f64().unwrap() > 0.0);
    assert_eq!(hits[0]["id"], hits[0]["memory_id"]);

    // `*`: everything, newest first; filter.namespace is the same as namespace.
    let all = recall(
        &app,
        k,
        json!({"query": "*", "filter": {"namespace": ns}, "limit": 100}),
    )
    .await;
    assert_eq!(
        contents(&all),
        [
            "Deploy with `sam deploy --guided` the first time",
            "Grid-scale battery installations hit 80 GWh",
            "The team standup moved to 9:30 on Mondays",
            "Battery storage costs dropped 40% year over year",
        ]
    );
    let tagged = recall(
        &app,
        k,
        json!({"query": "*", "namespace": ns, "tags": ["energy", "grid"]}),
    )
    .await;
    assert_eq!(
        contents(&tagged),
        ["Grid-scale battery installations hit 80 GWh"]
    );
    let proc = recall(
        &app,
        k,
        json!({"query": "deploy", "namespace": ns, "memory_type": "procedural"}),
    )
    .await;
    assert_eq!(proc.len(), 1);
    let important = recall(
        &app,
        k,
        json!({"query": "*", "namespace": ns, "min_importance": 0.65}),
    )
    .await;
    assert_eq!(important.len(), 2);
    // Other namespaces are not searched.
    assert!(
        recall(&app, k, json!({"query": "*", "namespace": "project:other"}))
            .await
            .is_empty()
    );
    assert!(
        recall(&app, k, json!({"query": "battery"}))
            .await
            .is_empty(),
        "default is separate"
    );
}

async fn forget_in_every_wire_form(backend: Backend) {
    let app = TestApp::new(backend).await;
    let k = &app.root_key;
    let a = remember(&app, k, json!({"content": "one", "namespace": "user:u1"})).await;
    let b = remember(&app, k, json!({"content": "two", "namespace": "user:u1"})).await;
    remember(
        &app,
        k,
        json!({"content": "oc 1", "metadata": {"namespace": "project:oc", "tags": ["t1"]}}),
    )
    .await;
    remember(
        &app,
        k,
        json!({"content": "oc 2", "namespace": "project:oc", "tags": ["t2"]}),
    )
    .await;
    remember(
        &app,
        k,
        json!({"content": "oc 3", "namespace": "project:oc", "tags": ["t1", "t2"]}),
    )
    .await;

    let id = a["id"].as_str().unwrap();
    let r = app.delete(&url(&format!("forget/{id}")), k).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.raw.is_empty());
    let r = app.delete(&url(&format!("forget/{id}")), k).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "API_404");

    let r = app
        .post(&url("forget"), k, json!({"memory_id": b["id"]}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["deleted"], 1);
    let r = app
        .post(&url("forget"), k, json!({"memory_id": b["id"]}))
        .await;
    assert_eq!(r.body["deleted"], 0, "forgetting twice is not an error");
    assert!(
        recall(&app, k, json!({"query": "*", "namespace": "user:u1"}))
            .await
            .is_empty()
    );

    // Tags match `tags` or `metadata.tags`; every listed tag must be present.
    let r = app
        .post(
            &url("forget"),
            k,
            json!({"filter": {"namespace": "project:oc", "tags": ["t1"]}}),
        )
        .await;
    assert_eq!(r.body["deleted"], 2, "{}", r.body);
    let left = recall(&app, k, json!({"query": "*", "namespace": "project:oc"})).await;
    assert_eq!(contents(&left), ["oc 2"]);
    let r = app
        .post(&url("forget"), k, json!({"namespace": "project:oc"}))
        .await;
    assert_eq!(r.body["deleted"], 1);
    assert_eq!(r.body["namespace"], "project:oc");
}

async fn session_delete_pages_through_everything(backend: Backend) {
    let mut app = TestApp::new(backend).await;
    // Small pages, so a few hundred memories span several of them (production reads
    // 1,000 per query; the paging logic is the same).
    let memory = app.memory.clone().with_page_size(40);
    app.set_memory(memory).await;
    let k = app.root_key.clone();
    let k = &k;
    let pid = new_project(&app, k).await;
    let total = 230;
    for chunk in (0..total).collect::<Vec<_>>().chunks(100) {
        let records: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"content": format!("note {i}"), "namespace": "session:big"}))
            .collect();
        let r = app
            .post(
                &format!("/api/v1/projects/{pid}/database/memory/batch/upsert"),
                k,
                json!({"records": records}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["inserted"].as_u64().unwrap() as usize, chunk.len());
    }
    let all = recall(
        &app,
        k,
        json!({"query": "*", "namespace": "session:big", "limit": 1000}),
    )
    .await;
    assert_eq!(all.len(), total, "recall reads every page too");
    remember(
        &app,
        k,
        json!({"content": "keep me", "namespace": "session:other"}),
    )
    .await;
    let r = app.delete("/api/v1/public/memory/session/big", k).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["deleted"].as_u64().unwrap() as usize, total);
    assert!(
        recall(
            &app,
            k,
            json!({"query": "*", "namespace": "session:big", "limit": 1000})
        )
        .await
        .is_empty()
    );
    // Idempotent, and other sessions are untouched.
    let r = app.delete("/api/v1/public/memory/session/big", k).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["deleted"], 0);
    assert_eq!(
        recall(&app, k, json!({"query": "*", "namespace": "session:other"}))
            .await
            .len(),
        1
    );
}

async fn scoped_keys_stay_in_their_namespaces(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, a) = app
        .create_key(
            &["memory:write:session/a", "memory:read:session/a"],
            Some(3600),
        )
        .await;
    let ok = app
        .post(
            &url("remember"),
            &a,
            json!({"content": "in a", "namespace": "session:a"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    let id = ok.body["id"].as_str().unwrap().to_owned();
    for ns in [
        Some("session:b"),
        None,
        Some("global"),
        Some("default"),
        Some("project:a"),
    ] {
        let mut body = json!({"content": "escape"});
        if let Some(ns) = ns {
            body["namespace"] = ns.into();
        }
        let r = app.post(&url("remember"), &a, body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "write {ns:?}: {}", r.body);
        assert_eq!(r.code(), "PERM_001");
        let mut body = json!({"query": "*"});
        if let Some(ns) = ns {
            body["namespace"] = ns.into();
        }
        let r = app.post(&url("recall"), &a, body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "read {ns:?}: {}", r.body);
    }
    assert_eq!(
        recall(&app, &a, json!({"query": "*", "namespace": "session:a"}))
            .await
            .len(),
        1
    );
    // Memories elsewhere cannot be forgotten through this key.
    let other = remember(
        &app,
        &app.root_key,
        json!({"content": "b's", "namespace": "session:b"}),
    )
    .await;
    let r = app
        .delete(
            &url(&format!("forget/{}", other["id"].as_str().unwrap())),
            &a,
        )
        .await;
    // As if it did not exist: a 403 would confirm it does, and name its namespace.
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert!(!r.body.to_string().contains("session:b"), "{}", r.body);
    let r = app.delete("/api/v1/public/memory/session/b", &a).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(&url("forget"), &a, json!({"namespace": "session:b"}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let pid = new_project(&app, &app.root_key).await;
    let batch_delete = format!("/api/v1/projects/{pid}/database/memory/batch/delete");
    // The batch routes take the memory write scope on the project's namespace first.
    let r = app
        .post(&batch_delete, &a, json!({"ids": [other["id"]]}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(!r.body.to_string().contains("session:b"), "{}", r.body);
    // With it, an id of another namespace is as if it did not exist.
    let (_, ap) = app
        .create_key(
            &[
                "memory:write:session/a",
                &format!("memory:write:project/{pid}"),
            ],
            Some(3600),
        )
        .await;
    let r = app
        .post(&batch_delete, &ap, json!({"ids": [other["id"]]}))
        .await;
    assert_eq!(
        (r.body["not_found"].clone(), r.body["failed"].clone()),
        (json!(1), json!(0)),
        "{}",
        r.body
    );
    assert!(!r.body.to_string().contains("session:b"), "{}", r.body);
    // The account-wide graph needs an unrestricted memory scope.
    let r = app.get(&url("graph/entities"), &a).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.delete(&url(&format!("forget/{id}")), &a).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    // A wildcard write scope reaches every namespace except global.
    let (_, w) = app.create_key(&["memory:write", "memory:read"], None).await;
    let r = app
        .post(
            &url("remember"),
            &w,
            json!({"content": "g", "namespace": "global"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("memory:write:global")
    );
    let r = app
        .post(
            &url("remember"),
            &w,
            json!({"content": "s", "namespace": "session:zz"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // global needs the explicit scope; then every key of the account reads it.
    let (_, g) = app.create_key(&["memory:write:global"], None).await;
    let r = app
        .post(
            &url("remember"),
            &g,
            json!({"content": "shared fact", "namespace": "global"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        recall(&app, &w, json!({"query": "*", "namespace": "global"}))
            .await
            .len(),
        1
    );
}

async fn accounts_never_see_each_other(backend: Backend) {
    let app = TestApp::new(backend).await;
    let a = &app.root_key;
    let b = app.new_account("other").await;
    let m = remember(
        &app,
        a,
        json!({"content": "A's secret plan", "namespace": "project:x", "entity_id": "alice"}),
    )
    .await;
    let id = m["id"].as_str().unwrap();
    let r = app
        .post(
            &url("graph/edge"),
            a,
            json!({"source": "alice", "target": "acme", "predicate": "works_at"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    assert!(
        recall(
            &app,
            &b,
            json!({"query": "secret plan", "namespace": "project:x"})
        )
        .await
        .is_empty()
    );
    assert!(
        recall(&app, &b, json!({"query": "*", "namespace": "project:x"}))
            .await
            .is_empty()
    );
    let r = app.delete(&url(&format!("forget/{id}")), &b).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(&url("forget"), &b, json!({"namespace": "project:x"}))
        .await;
    assert_eq!(r.body["deleted"], 0);
    let r = app.delete("/api/v1/public/memory/session/x", &b).await;
    assert_eq!(r.body["deleted"], 0);
    let b_project = new_project(&app, &b).await;
    for path in ["batch/delete", "batch/update"] {
        let body = if path == "batch/delete" {
            json!({"ids": [id]})
        } else {
            json!({"updates": [{"id": id, "importance": 0.1}]})
        };
        let r = app
            .post(
                &format!("/api/v1/projects/{b_project}/database/memory/{path}"),
                &b,
                body,
            )
            .await;
        assert_eq!(r.body["not_found"], 1, "{path}: {}", r.body);
    }
    let r = app.get(&url("graph/entities"), &b).await;
    assert_eq!(r.body, json!([]));
    let r = app.get(&url("entities"), &b).await;
    assert_eq!(r.body, json!([]));
    let r = app.get(&url("graph/neighbors/alice"), &b).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.get(&url("profile/alice"), &b).await;
    assert_eq!(r.body["facts"], json!([]));
    assert_eq!(r.body["memory_count"], 0);
    let r = app.get(&url("graph/stats"), &b).await;
    assert_eq!(r.body["entity_count"], 0);

    // A's data is intact.
    assert_eq!(
        recall(&app, a, json!({"query": "*", "namespace": "project:x"}))
            .await
            .len(),
        1
    );
    let r = app.get(&url("graph/neighbors/alice"), a).await;
    assert_eq!(r.body[0]["canonical_name"], "acme");
}

async fn graph_entities_edges_and_walks(backend: Backend) {
    let app = TestApp::new(backend).await;
    let k = &app.root_key;
    let r = app
        .post(&url("graph/entity"), k, json!({"name": "Alice", "type": "person", "aliases": ["Al"], "properties": {"team": "infra"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let alice_id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["canonical_name"], "Alice");
    assert_eq!(r.body["entity_type"], "person");
    assert_eq!(r.body["aliases"], json!(["Al"]));

    let r = app
        .post(
            &url("graph/edge"),
            k,
            json!({"source": "Alice", "target": "Bob", "predicate": "met", "confidence": 0.9}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["source_id"], alice_id);
    assert_eq!(r.body["predicate"], "met");
    assert_eq!(r.body["confidence"], 0.9);
    // relate, in both wire forms; ids and names both resolve.
    let r = app
        .post(&url("relate"), k, json!({"source_id": alice_id, "target_id": "Berlin", "relationship_type": "visited", "confidence": 0.8}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["target"], "Berlin");
    let r = app
        .post(&url("relate"), k, json!({"subject": "Bob", "predicate": "lives_in", "object": "Paris", "confidence": 0.8}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app.post(&url("relate"), k, json!({"subject": "Bob"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    let r = app.get(&url("graph/neighbors/alice"), k).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let names: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["canonical_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Berlin", "Bob"]);
    assert!(r.body[0]["entity_type"].is_string());
    let r = app.get(&url("graph/neighbors/Bob"), k).await;
    assert_eq!(
        r.body.as_array().unwrap().len(),
        2,
        "incoming edges count too"
    );
    let r = app.get(&url("graph/neighbors/nobody"), k).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = app
        .post(
            &url("graph/traverse"),
            k,
            json!({"start": "Alice", "max_hops": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["nodes"].as_array().unwrap().len(), 4, "{}", r.body);
    assert_eq!(r.body["edges"].as_array().unwrap().len(), 3);
    assert_eq!(r.body["hops"], 2);
    let r = app
        .post(
            &url("graph/traverse"),
            k,
            json!({"start": "Alice", "max_hops": 3, "predicate_filter": ["met"]}),
        )
        .await;
    assert_eq!(r.body["nodes"].as_array().unwrap().len(), 2);
    let r = app
        .post(
            &url("graph/traverse"),
            k,
            json!({"start": "Alice", "max_hops": 9}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    let r = app.get(&url("graph/stats"), k).await;
    assert_eq!(r.body["entity_count"], 4);
    assert_eq!(r.body["edge_count"], 3);
    let top = &r.body["top_entities"][0];
    assert!(top["canonical_name"] == "Alice" || top["canonical_name"] == "Bob");
    assert_eq!(top["degree"], 2);

    let r = app
        .get(&format!("{}?type=person", url("graph/entities")), k)
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);

    // Memories naming an entity: counted on it, and sorted into its profile.
    for c in [
        "Alice prefers dark mode and vim keybindings",
        "Alice usually reviews pull requests every morning",
        "Alice works on the storage team",
    ] {
        remember(
            &app,
            k,
            json!({"content": c, "entity_id": "alice", "namespace": "user:alice"}),
        )
        .await;
    }
    let r = app.get(&url("entities"), k).await;
    let alice = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["canonical_name"] == "Alice")
        .unwrap()
        .clone();
    assert_eq!(alice["memory_count"], 3);
    let r = app.get(&url("profile/alice"), k).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["entity_id"], "alice");
    assert_eq!(
        r.body["preferences"],
        json!(["Alice prefers dark mode and vim keybindings"])
    );
    assert_eq!(
        r.body["behaviors"],
        json!(["Alice usually reviews pull requests every morning"])
    );
    assert_eq!(r.body["facts"], json!(["Alice works on the storage team"]));
    assert!(r.body["summary"].as_str().unwrap().contains('3'));
}

async fn batch_upsert_update_delete(backend: Backend) {
    let app = TestApp::new(backend).await;
    let k = &app.root_key;
    let pid = new_project(&app, k).await;
    let ns = format!("project:{pid}");
    let base = format!("/api/v1/projects/{pid}/database/memory/batch");
    let r = app
        .post(&format!("{base}/upsert"), k, json!({"records": [
            {"content": "User prefers concise responses", "memory_type": "semantic", "importance": 0.8, "tags": ["preference"]},
            {"content": "Project uses FastAPI + SQLAlchemy", "memory_type": "semantic", "importance": 0.9, "tags": ["tech-stack"]},
            {"content": "bad", "importance": 7},
            {"nope": true}
        ]}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["inserted"], 2);
    assert_eq!(r.body["failed"], 2);
    assert_eq!(r.body["results"][2]["status"], "failed");
    assert!(
        r.body["results"][2]["error"]
            .as_str()
            .unwrap()
            .contains("importance"),
        "{}",
        r.body
    );
    assert!(
        r.body["results"][3]["error"]
            .as_str()
            .unwrap()
            .contains("content"),
        "{}",
        r.body
    );
    let ids: Vec<String> = (0..2)
        .map(|i| r.body["results"][i]["id"].as_str().unwrap().to_owned())
        .collect();
    // Records without a namespace live in the project's.
    let all = recall(&app, k, json!({"query": "*", "namespace": ns})).await;
    assert_eq!(all.len(), 2);

    // Upsert by id replaces.
    let r = app
        .post(
            &format!("{base}/upsert"),
            k,
            json!({"records": [{"id": ids[0], "content": "User prefers short answers"}]}),
        )
        .await;
    assert_eq!(r.body["updated"], 1, "{}", r.body);

    let r = app
        .post(
            &format!("{base}/update"),
            k,
            json!({"updates": [
                {"id": ids[1], "importance": 0.95, "tags": ["tech-stack", "high-priority"]},
                {"id": "mem_00000000000000000000000000", "importance": 0.1},
                {"id": ids[0]}
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["updated"], 1);
    assert_eq!(r.body["not_found"], 1);
    assert_eq!(r.body["failed"], 1, "an empty update says so");
    let hit = recall(
        &app,
        k,
        json!({"query": "*", "namespace": ns, "tags": ["high-priority"]}),
    )
    .await;
    assert_eq!(hit.len(), 1);
    assert_eq!(hit[0]["importance"], 0.95);
    assert_eq!(hit[0]["content"], "Project uses FastAPI + SQLAlchemy");

    let r = app
        .post(
            &format!("{base}/delete"),
            k,
            json!({"ids": [ids[0], ids[1], "mem_nope"]}),
        )
        .await;
    assert_eq!(r.body["deleted"], 2, "{}", r.body);
    assert_eq!(r.body["not_found"], 1);
    assert!(
        recall(&app, k, json!({"query": "*", "namespace": ns}))
            .await
            .is_empty()
    );

    // Seed 003's limits, with the limit in the message.
    let many: Vec<Value> = (0..501)
        .map(|i| json!({"content": format!("n{i}")}))
        .collect();
    let r = app
        .post(&format!("{base}/upsert"), k, json!({"records": many}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body["detail"][0]["msg"].as_str().unwrap().contains("500"));
    let ids: Vec<String> = (0..501).map(|i| format!("mem_{i}")).collect();
    let r = app
        .post(&format!("{base}/delete"), k, json!({"ids": ids}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let ups: Vec<Value> = (0..501)
        .map(|i| json!({"id": format!("mem_{i}"), "importance": 0.5}))
        .collect();
    let r = app
        .post(&format!("{base}/update"), k, json!({"updates": ups}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(&format!("{base}/upsert"), k, json!({"records": []}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn writes_emit_events_and_the_worker_embeds(backend: Backend) {
    let app = TestApp::new(backend).await;
    let m = remember(&app, &app.root_key, json!({"content": "Alice met Bob at the AI conference in Berlin", "entity_id": "alice", "memory_type": "episodic"})).await;
    let id = m["id"].as_str().unwrap();
    assert_eq!(m["embedded"], false, "remember does not wait on the model");
    let bodies = app.drain_events().await;
    let events: Vec<Event> = bodies
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    let remembered = events
        .iter()
        .find(|e| e.event == "zeromemory.remembered")
        .expect("remembered event");
    assert_eq!(remembered.channel, "zeromemory");
    assert!(remembered.id.starts_with("evt_"));
    assert_eq!(remembered.data["memory_id"], id);
    assert_eq!(remembered.data["entity_id"], "alice");
    assert_eq!(remembered.data["memory_type"], "episodic");
    assert_eq!(remembered.data["namespace"], "default");
    assert_eq!(remembered.data["user_id"], app.account_id.as_str());
    let stored = events
        .iter()
        .find(|e| e.event == "zerodb.memory.stored")
        .expect("stored event");
    assert_eq!(stored.channel, "zerodb");
    assert_eq!(stored.data["memory_id"], id);
    assert_eq!(stored.data["project_id"], Value::Null);

    // X-Project-ID names the project on the event.
    let req = http::Request::post(url("remember"))
        .header("x-api-key", &app.root_key)
        .header("x-project-id", "proj-7")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"content": "with project"}).to_string(),
        ))
        .unwrap();
    assert_eq!(app.send(req).await.status, StatusCode::CREATED);
    let more: Vec<Event> = app
        .drain_events()
        .await
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    let stored = more
        .iter()
        .find(|e| e.event == "zerodb.memory.stored")
        .unwrap();
    assert_eq!(stored.data["project_id"], "proj-7");
    let bad = http::Request::post(url("remember"))
        .header("x-api-key", &app.root_key)
        .header("x-project-id", "a b")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(json!({"content": "x"}).to_string()))
        .unwrap();
    let r = app.send(bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["detail"][0]["loc"][1], "X-Project-ID");

    // The worker's handler embeds the memories the events name.
    let memory = &app.memory;
    let events: Vec<zerodb_domain::events::Event> = bodies
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    let events: Vec<&zerodb_domain::events::Event> = events.iter().collect();
    let handler = zerodb_memory::worker::EmbedNewMemories(memory.clone());
    use zerodb_domain::events::EventHandler;
    assert!(events.iter().all(|e| handler.wants(e)));
    let n = handler.handle(&events).await.unwrap();
    assert_eq!(n, 1);
    let again = handler.handle(&events).await.unwrap();
    assert_eq!(again, 0, "already embedded");
    let found = memory
        .repo()
        .find(&app.account_id, id)
        .await
        .unwrap()
        .unwrap();
    let v = found.vector.expect("vector stored");
    assert_eq!(v.model, "lexical-v1");
    assert_eq!(v.dims(), 384);
    let listed = recall(&app, &app.root_key, json!({"query": "*"})).await;
    let first = listed.iter().find(|m| m["id"] == id).unwrap();
    assert_eq!(first["embedded"], true);
    // Junk on the queue is skipped, not retried forever.
    use zerodb_domain::work::BatchHandler;
    let dispatcher = zerodb_domain::events::Dispatcher::new(vec![Arc::new(
        zerodb_memory::worker::EmbedNewMemories(memory.clone()),
    )]);
    let junk = zerodb_domain::store::Message {
        id: "m-1".into(),
        receipt: "r-1".into(),
        body: "not json".into(),
        receive_count: 1,
    };
    assert!(
        dispatcher.handle(&[junk]).await.is_empty(),
        "nothing to retry"
    );
}

on_both_backends!(
    remember_echoes_the_record,
    bad_input_is_a_422_naming_the_field,
    recall_ranks_filters_and_lists,
    forget_in_every_wire_form,
    session_delete_pages_through_everything,
    scoped_keys_stay_in_their_namespaces,
    accounts_never_see_each_other,
    graph_entities_edges_and_walks,
    batch_upsert_update_delete,
    writes_emit_events_and_the_worker_embeds,
);

/// A queue that always fails: the write must stand anyway.
struct BrokenQueue;

#[async_trait::async_trait]
impl zerodb_domain::store::Queue for BrokenQueue {
    async fn send_batch(
        &self,
        _: Vec<String>,
    ) -> Result<Vec<String>, zerodb_domain::store::StoreError> {
        Err(zerodb_domain::store::StoreError::Backend(anyhow::anyhow!(
            "queue down"
        )))
    }
    async fn receive(
        &self,
        _: usize,
        _: u32,
    ) -> Result<Vec<zerodb_domain::store::Message>, zerodb_domain::store::StoreError> {
        Ok(Vec::new())
    }
    async fn delete(&self, _: &str) -> Result<(), zerodb_domain::store::StoreError> {
        Ok(())
    }
    async fn change_visibility(
        &self,
        _: &str,
        _: u32,
    ) -> Result<(), zerodb_domain::store::StoreError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_failed_event_send_never_fails_the_write() {
    let (mut stores, _guard) = zerodb_tests::support::fresh_stores(Backend::Embedded).await;
    stores.queues.set(
        zerodb_domain::queues::QueueName::Events,
        Arc::new(BrokenQueue),
    );
    let settings = zerodb_domain::auth::AuthSettings {
        jwt_secret: vec![7; 32],
        rate_limit_per_minute: 0,
        rate_counting: zerodb_domain::rate::RateCounting::Shared,
        limits: Default::default(),
    };
    let clock = Arc::new(zerodb_domain::clock::SystemClock);
    let ctx = zerodb_tests::support::context_of(stores.clone(), clock, settings);
    let memory =
        zerodb_tests::support::test_memory(&ctx, Arc::new(zerodb_embed::LexicalEmbedder::new(64)));
    ctx.provide(memory);
    ctx.provide(zerodb_tests::support::test_inference(&ctx).await);
    let app = zerodb_local::router(&ctx).await.unwrap();
    let account = zerodb_local::create_account(stores.table.clone(), "t")
        .await
        .unwrap();
    let key = account.root_key.expose().to_owned();
    let call = |path: &str, body: Value| {
        http::Request::post(path)
            .header("x-api-key", &key)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap()
    };
    use tower::ServiceExt;
    let r = app
        .clone()
        .oneshot(call(&url("remember"), json!({"content": "still stored"})))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(ctx.events().failures(), 2, "both events counted as lost");
    let r = app
        .oneshot(call(&url("recall"), json!({"query": "stored"})))
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(
        &http_body_util::BodyExt::collect(r.into_body())
            .await
            .unwrap()
            .to_bytes(),
    )
    .unwrap();
    assert_eq!(body["results"][0]["content"], "still stored");
}
