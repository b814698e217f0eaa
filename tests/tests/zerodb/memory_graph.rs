//! Bounded graph reads, on both storage backends: entity memory counts kept on the entity
//! (and right under remember and forget), entity lists in pages, traversals capped and
//! saying so, statistics from kept totals; and what a namespace-restricted key may learn
//! or write: nothing about a memory outside its scope, and no graph write through
//! `entity_id`.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};
use zerodb_memory::MemoryService;
use zerodb_memory::graph::GraphLimits;
use zerodb_tests::on_both_backends;
use zerodb_tests::support::{Backend, CountingTable, TestApp};

const V2: &str = "/api/v1/public/memory/v2";

fn url(op: &str) -> String {
    format!("{V2}/{op}")
}

/// Serves the app with a memory service whose storage calls are counted.
async fn counted(app: &mut TestApp) -> Arc<CountingTable> {
    let counting = CountingTable::new(app.stores.table.clone());
    let svc = MemoryService::new(
        counting.clone(),
        app.ctx.events().clone(),
        Arc::new(zerodb_embed::LexicalEmbedder::new(384)),
        app.ctx.clock().clone(),
    )
    .with_inline_writeback();
    app.set_memory(svc).await;
    counting
}

/// A project of the app's account, and its batch memory routes (which pass the project
/// gate).
async fn batch_routes(app: &TestApp) -> (String, String) {
    let r = app
        .post("/api/v1/projects", &app.root_key, json!({"name": "graph"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let pid = r.body["id"].as_str().unwrap().to_owned();
    let batch = format!("/api/v1/projects/{pid}/database/memory/batch");
    (pid, batch)
}

async fn ok(app: &TestApp, path: &str, key: &str, body: Value) -> Value {
    let r = app.post(path, key, body).await;
    assert!(r.status.is_success(), "{path}: {} {}", r.status, r.body);
    r.body
}

/// Every entity across all pages (following `X-Next-Cursor`), name -> memory_count.
async fn all_entities(app: &TestApp, limit: usize) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = app
            .get(
                &format!("{}?limit={limit}&cursor={cursor}", url("entities")),
                &app.root_key,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let page = r.body.as_array().unwrap();
        assert!(page.len() <= limit);
        out.extend(page.iter().map(|e| {
            (
                e["canonical_name"].as_str().unwrap().to_owned(),
                e["memory_count"].as_u64().unwrap(),
            )
        }));
        match r.headers.get("x-next-cursor") {
            Some(c) => cursor = c.to_str().unwrap().to_owned(),
            None => return out,
        }
    }
}

async fn count_of(app: &TestApp, name: &str) -> u64 {
    all_entities(app, 1000)
        .await
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, c)| c)
        .unwrap_or_else(|| panic!("no entity {name}"))
}

async fn listing_entities_reads_no_memories(backend: Backend) {
    let mut app = TestApp::new(backend).await;
    let counting = counted(&mut app).await;
    let k = app.root_key.clone();
    for who in ["ada", "bob", "cy", "dee", "eve"] {
        for i in 0..3 {
            ok(
                &app,
                &url("remember"),
                &k,
                json!({"content": format!("{who} fact {i}"), "entity_id": who, "namespace": "user:x"}),
            )
            .await;
        }
    }
    counting.take();
    let r = app.get(&url("entities"), &k).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_array().unwrap().len(), 5);
    assert!(
        r.body
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["memory_count"] == 3),
        "{}",
        r.body
    );
    // One page read; counting each entity's memories read them all, one query each.
    assert_eq!(counting.take(), 1, "storage calls for GET /v2/entities");
}

async fn memory_counts_stay_right_under_remember_and_forget(backend: Backend) {
    let app = TestApp::new(backend).await;
    let k = &app.root_key;
    let (pid, batch) = batch_routes(&app).await;
    let mut ids = Vec::new();
    for (content, entity) in [
        ("Alice likes tea", "Alice"),
        ("alice runs daily", "alice"),
        ("ALICE  lives in Paris", "ALICE  "),
        ("Bob plays chess", "bob"),
    ] {
        let b = ok(
            &app,
            &url("remember"),
            k,
            json!({"content": content, "entity_id": entity, "namespace": "user:a"}),
        )
        .await;
        ids.push(b["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(count_of(&app, "alice").await, 3);
    assert_eq!(count_of(&app, "bob").await, 1);

    // Batch upsert: inserts counted (several naming one entity in one request)...
    let b = ok(
        &app,
        &format!("{batch}/upsert"),
        k,
        json!({"records": [
            {"content": "Carol a", "entity_id": "carol"},
            {"content": "Carol b", "entity_id": "Carol"},
            {"content": "Bob b", "entity_id": "bob"},
            {"content": "no entity"}
        ]}),
    )
    .await;
    assert_eq!(b["inserted"], 4, "{b}");
    let carol_a = b["results"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(count_of(&app, "carol").await, 2);
    assert_eq!(count_of(&app, "bob").await, 2);
    // ...and a replace naming another entity moves the count.
    let b = ok(
        &app,
        &format!("{batch}/upsert"),
        k,
        json!({"records": [{"id": carol_a, "content": "now about bob", "entity_id": "bob", "namespace": format!("project:{pid}")}]}),
    )
    .await;
    assert_eq!(b["updated"], 1, "{b}");
    assert_eq!(count_of(&app, "carol").await, 1);
    assert_eq!(count_of(&app, "bob").await, 3);
    // An update that leaves the entity alone leaves the count alone.
    ok(
        &app,
        &format!("{batch}/update"),
        k,
        json!({"updates": [{"id": ids[0], "importance": 0.9}]}),
    )
    .await;
    assert_eq!(count_of(&app, "alice").await, 3);

    // Every way of forgetting takes the count down, once.
    let r = app.delete(&url(&format!("forget/{}", ids[0])), k).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.delete(&url(&format!("forget/{}", ids[0])), k).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(count_of(&app, "alice").await, 2);
    let b = ok(&app, &url("forget"), k, json!({"memory_id": ids[1]})).await;
    assert_eq!(b["deleted"], 1);
    assert_eq!(count_of(&app, "alice").await, 1);
    let b = ok(
        &app,
        &format!("{batch}/delete"),
        k,
        json!({"ids": [ids[3], ids[3]]}),
    )
    .await;
    assert_eq!(b["deleted"], 2, "{b}");
    assert_eq!(count_of(&app, "bob").await, 2);
    let b = ok(&app, &url("forget"), k, json!({"namespace": "user:a"})).await;
    assert_eq!(b["deleted"], 1);
    assert_eq!(count_of(&app, "alice").await, 0);
    let b = ok(
        &app,
        &url("forget"),
        k,
        json!({"filter": {"namespace": format!("project:{pid}")}}),
    )
    .await;
    assert_eq!(b["deleted"], 4, "{b}");
    assert_eq!(count_of(&app, "bob").await, 0);
    assert_eq!(count_of(&app, "carol").await, 0);

    // Updating an entity keeps its count and creation time.
    let b = ok(
        &app,
        &url("remember"),
        k,
        json!({"content": "x", "entity_id": "dora"}),
    )
    .await;
    assert_eq!(b["entity_id"], "dora");
    let before = all_entities(&app, 1000).await;
    let r = app
        .post(
            &url("graph/entity"),
            k,
            json!({"name": "Dora", "type": "person"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["memory_count"], 1, "{}", r.body);
    assert_eq!(r.body["entity_type"], "person");
    assert_eq!(all_entities(&app, 1000).await.len(), before.len());
}

async fn entity_lists_are_pages(backend: Backend) {
    let app = TestApp::new(backend).await;
    let k = &app.root_key;
    let names = ["ant", "bee", "cat", "dog", "eel"];
    for n in names {
        let t = if n == "cat" || n == "dog" {
            "mammal"
        } else {
            "other"
        };
        let r = app
            .post(&url("graph/entity"), k, json!({"name": n, "type": t}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    for path in ["entities", "graph/entities"] {
        let r = app.get(&format!("{}?limit=2", url(path)), k).await;
        assert_eq!(r.body.as_array().unwrap().len(), 2, "{path}");
        assert!(
            r.headers.contains_key("x-next-cursor"),
            "{path}: a page says more follow"
        );
    }
    let mut seen: Vec<String> = all_entities(&app, 2)
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    seen.sort();
    assert_eq!(seen, names, "every entity once across the pages");
    // The last page carries no cursor.
    let r = app.get(&format!("{}?limit=10", url("entities")), k).await;
    assert_eq!(r.body.as_array().unwrap().len(), 5);
    assert!(!r.headers.contains_key("x-next-cursor"));
    // A type filter applies within pages; following them finds every match.
    let mut typed = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = app
            .get(
                &format!(
                    "{}?type=mammal&limit=1&cursor={cursor}",
                    url("graph/entities")
                ),
                k,
            )
            .await;
        typed.extend(r.body.as_array().unwrap().iter().map(|e| e["name"].clone()));
        match r.headers.get("x-next-cursor") {
            Some(c) => cursor = c.to_str().unwrap().to_owned(),
            None => break,
        }
    }
    assert_eq!(typed, [json!("cat"), json!("dog")]);
    // A cursor we never issued is a 422 naming it.
    let r = app
        .get(&format!("{}?cursor=bm9wZQ", url("entities")), k)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["detail"][0]["loc"][1], "cursor", "{}", r.body);
}

/// Bounds small enough to reach with a few dozen items on moto; the code paths are the
/// ones the defaults (500 entities, 1,000 edges) take.
const SMALL: GraphLimits = GraphLimits {
    traverse_nodes: 8,
    traverse_edges: 12,
    stats_scan: 1000,
};

/// An app whose graph reads have the `SMALL` bounds.
async fn small_graph(backend: Backend) -> TestApp {
    let mut app = TestApp::new(backend).await;
    let svc = app.memory.clone().with_graph_limits(SMALL);
    app.set_memory(svc).await;
    app
}

async fn traversals_cap_their_edges_and_say_so(backend: Backend) {
    let app = small_graph(backend).await;
    let k = &app.root_key;
    let g = app.memory.graph();
    let acct = &app.account_id;
    let hub = g.ensure_entity(acct, "hub", 0).await.unwrap();
    let leaf = g.ensure_entity(acct, "leaf", 0).await.unwrap();
    // Two entities, more edges between them than a traversal returns, though fewer each
    // way than it reads of one entity: 9 out of the hub and 9 into it.
    let n = SMALL.traverse_edges - 3;
    for i in 0..n {
        for (a, b, p) in [
            (&hub, &leaf, format!("p{i}")),
            (&leaf, &hub, format!("q{i}")),
        ] {
            g.add_edge(acct, a, b, &p, 1.0, &Default::default(), 0)
                .await
                .unwrap();
        }
    }
    let r = app
        .post(
            &url("graph/traverse"),
            k,
            json!({"start": "hub", "max_hops": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["edges"].as_array().unwrap().len(),
        SMALL.traverse_edges
    );
    assert_eq!(r.body["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["truncated"], true);
    let why = r.body["truncated_reason"].as_str().unwrap();
    assert!(why.contains("predicate_filter"), "{why}");
    // Narrowed, the walk is complete and says nothing.
    let r = app
        .post(
            &url("graph/traverse"),
            k,
            json!({"start": "hub", "max_hops": 1, "predicate_filter": ["p3", "Q4"]}),
        )
        .await;
    assert_eq!(r.body["edges"].as_array().unwrap().len(), 2, "{}", r.body);
    assert_eq!(r.body["truncated"], false);
    assert!(r.body.get("truncated_reason").is_none());
    // The totals count each edge once, replaced edges included.
    g.add_edge(acct, &hub, &leaf, "p0", 0.5, &Default::default(), 0)
        .await
        .unwrap();
    let r = app.get(&url("graph/stats"), k).await;
    assert_eq!(r.body["entity_count"], 2);
    assert_eq!(r.body["edge_count"], 2 * n);
    assert_eq!(r.body["top_entities"][0]["degree"], 2 * n);
    assert_eq!(r.body["top_entities_partial"], false);

    // One entity with more edges one way than a walk reads of it: the walk cannot know
    // what lies past them, even filtered, and says so.
    for i in n..=SMALL.traverse_edges + 1 {
        g.add_edge(
            acct,
            &hub,
            &leaf,
            &format!("p{i}"),
            1.0,
            &Default::default(),
            0,
        )
        .await
        .unwrap();
    }
    let r = app
        .post(
            &url("graph/traverse"),
            k,
            json!({"start": "hub", "max_hops": 1, "predicate_filter": ["p3"]}),
        )
        .await;
    assert_eq!(r.body["edges"].as_array().unwrap().len(), 1, "{}", r.body);
    assert_eq!(r.body["truncated"], true);
    let why = r.body["truncated_reason"].as_str().unwrap();
    assert!(why.contains("only the first 13 were read"), "{why}");
}

async fn traversals_and_neighbour_lists_cap_their_entities(backend: Backend) {
    let app = small_graph(backend).await;
    let k = &app.root_key;
    let g = app.memory.graph();
    let acct = &app.account_id;
    let hub = g.ensure_entity(acct, "hub", 0).await.unwrap();
    for i in 0..SMALL.traverse_nodes + 2 {
        let leaf = g
            .ensure_entity(acct, &format!("leaf {i}"), 0)
            .await
            .unwrap();
        g.add_edge(acct, &hub, &leaf, "has", 1.0, &Default::default(), 0)
            .await
            .unwrap();
    }
    let r = app
        .post(
            &url("graph/traverse"),
            k,
            json!({"start": "hub", "max_hops": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let nodes = r.body["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), SMALL.traverse_nodes);
    // Every edge returned joins two returned entities.
    let ids: std::collections::HashSet<&str> =
        nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(
        r.body["edges"].as_array().unwrap().len(),
        SMALL.traverse_nodes - 1
    );
    for e in r.body["edges"].as_array().unwrap() {
        assert!(ids.contains(e["source_id"].as_str().unwrap()));
        assert!(ids.contains(e["target_id"].as_str().unwrap()));
    }
    assert_eq!(r.body["truncated"], true);
    assert!(
        r.body["truncated_reason"]
            .as_str()
            .unwrap()
            .contains(&format!("stopped at {} entities", SMALL.traverse_nodes))
    );
    // Neighbours: the first of them in name order, and a header saying some are left out.
    let r = app.get(&url("graph/neighbors/hub"), k).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let names: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["canonical_name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), SMALL.traverse_nodes);
    assert_eq!(names[..3], ["leaf 0", "leaf 1", "leaf 2"]);
    assert_eq!(r.headers["x-truncated"], "true");
    // A leaf's one neighbour: whole, no header.
    let r = app.get(&url("graph/neighbors/leaf%200"), k).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1, "{}", r.body);
    assert!(r.headers.get("x-truncated").is_none());
}

async fn stats_read_kept_totals(backend: Backend) {
    let mut app = TestApp::new(backend).await;
    let counting = counted(&mut app).await;
    let k = app.root_key.clone();
    for i in 0..12 {
        ok(
            &app,
            &url("graph/edge"),
            &k,
            json!({"source": "center", "target": format!("n{i}"), "predicate": "knows"}),
        )
        .await;
    }
    // A self-loop counts twice on its entity's degree, once in the edge total.
    ok(
        &app,
        &url("graph/edge"),
        &k,
        json!({"source": "n0", "target": "N0", "predicate": "is"}),
    )
    .await;
    counting.take();
    let r = app.get(&url("graph/stats"), &k).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["entity_count"], 13);
    assert_eq!(r.body["edge_count"], 13);
    assert_eq!(r.body["top_entities"][0]["canonical_name"], "center");
    assert_eq!(r.body["top_entities"][0]["degree"], 12);
    assert_eq!(r.body["top_entities"][1]["canonical_name"], "n0");
    assert_eq!(r.body["top_entities"][1]["degree"], 3);
    assert_eq!(r.body["top_entities"].as_array().unwrap().len(), 10);
    // The totals item and one page of entities, whatever the graph holds.
    assert_eq!(counting.take(), 2, "storage calls for GET /graph/stats");
}

async fn restricted_keys_learn_nothing_outside_their_scope(backend: Backend) {
    let app = TestApp::new(backend).await;
    let root = &app.root_key;
    let (pid, batch) = batch_routes(&app).await;
    // The batch routes take the write scope on the project's namespace first.
    let (_, a) = app
        .create_key(
            &[
                "memory:write:session/a",
                "memory:read:session/a",
                &format!("memory:write:project/{pid}"),
            ],
            None,
        )
        .await;
    let other = ok(
        &app,
        &url("remember"),
        root,
        json!({"content": "b's secret", "namespace": "session:b-secret-ns"}),
    )
    .await;
    let id = other["id"].as_str().unwrap();
    let missing = "mem_0000000000000000000000000000";
    // Forget by id: the same 404 as for a memory that does not exist.
    let r = app.delete(&url(&format!("forget/{id}")), &a).await;
    let none = app.delete(&url(&format!("forget/{missing}")), &a).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(r.code(), none.code());
    assert_eq!(
        r.body["detail"].as_str().unwrap().replace(id, "ID"),
        none.body["detail"].as_str().unwrap().replace(missing, "ID")
    );
    let b = ok(&app, &url("forget"), &a, json!({"memory_id": id})).await;
    assert_eq!(b["deleted"], 0);
    // Batch delete and update: not found, like an id that does not exist.
    for (op, body) in [
        ("delete", json!({"ids": [id]})),
        (
            "update",
            json!({"updates": [{"id": id, "importance": 0.1}]}),
        ),
    ] {
        let b = ok(&app, &format!("{batch}/{op}"), &a, body).await;
        assert_eq!(b["not_found"], 1, "{op}: {b}");
        assert!(!b.to_string().contains("b-secret-ns"), "{op}: {b}");
    }
    // Upsert naming that id: refused without saying where it lives.
    let b = ok(
        &app,
        &format!("{batch}/upsert"),
        &a,
        json!({"records": [{"id": id, "content": "mine now", "namespace": "session:a"}]}),
    )
    .await;
    assert_eq!(b["failed"], 1, "{b}");
    assert!(!b.to_string().contains("b-secret-ns"), "{b}");
    // The memory is untouched.
    let r = app
        .post(
            &url("recall"),
            root,
            json!({"query": "*", "namespace": "session:b-secret-ns"}),
        )
        .await;
    assert_eq!(r.body["results"][0]["content"], "b's secret");
    assert_eq!(r.body["results"][0]["importance"], 0.5);
}

async fn entity_id_follows_the_graph_write_rule(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (pid, batch) = batch_routes(&app).await;
    // The batch routes take the write scope on the project's namespace first.
    let (_, a) = app
        .create_key(
            &[
                "memory:write:session/a",
                "memory:read:session/a",
                &format!("memory:write:project/{pid}"),
            ],
            None,
        )
        .await;
    let r = app
        .post(
            &url("remember"),
            &a,
            json!({"content": "about mallory", "namespace": "session:a", "entity_id": "mallory"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.code(), "PERM_001");
    assert!(
        r.body["detail"].as_str().unwrap().contains("entity_id"),
        "{}",
        r.body
    );
    let b = ok(
        &app,
        &format!("{batch}/upsert"),
        &a,
        json!({"records": [{"content": "also mallory", "namespace": "session:a", "entity_id": "mallory"}]}),
    )
    .await;
    assert_eq!(b["failed"], 1, "{b}");
    assert!(
        b["results"][0]["error"]
            .as_str()
            .unwrap()
            .contains("entity_id")
    );
    // Nothing reached the graph, and the memory was not stored either.
    let r = app.get(&url("entities"), &app.root_key).await;
    assert_eq!(r.body, json!([]));
    let r = app
        .post(
            &url("recall"),
            &a,
            json!({"query": "*", "namespace": "session:a"}),
        )
        .await;
    assert_eq!(r.body["total"], 0);
    // Without entity_id the same key writes its namespace; with memory:write, entity_id too.
    let r = app
        .post(
            &url("remember"),
            &a,
            json!({"content": "plain", "namespace": "session:a"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let (_, w) = app.create_key(&["memory:write"], None).await;
    let r = app
        .post(
            &url("remember"),
            &w,
            json!({"content": "about mallory", "namespace": "session:a", "entity_id": "mallory"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(count_of(&app, "mallory").await, 1);
}

on_both_backends!(
    listing_entities_reads_no_memories,
    memory_counts_stay_right_under_remember_and_forget,
    entity_lists_are_pages,
    traversals_cap_their_edges_and_say_so,
    traversals_and_neighbour_lists_cap_their_entities,
    stats_read_kept_totals,
    restricted_keys_learn_nothing_outside_their_scope,
    entity_id_follows_the_graph_write_rule,
);
