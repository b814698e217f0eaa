//! The zerodb-mcp RPC bridge (`POST /api/v1/public/zerodb/mcp/execute`) on both storage
//! backends: every served operation round-trips with 200 and the keys the client
//! documents; an operation not served (or unknown) is a 422 naming it; bad params are
//! 422s at `["body", "params", <key>]`; another account's project is 404
//! `PROJECT_NOT_FOUND` in every area; a read-only key reads and cannot write.

use base64::Engine;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zerodb_tests::on_both_backends;
use zerodb_tests::support::{Backend, Reply, TestApp};

const EXECUTE: &str = "/api/v1/public/zerodb/mcp/execute";
const OPERATIONS: &str = "/api/v1/public/zerodb/mcp/operations";

async fn op(app: &TestApp, key: &str, operation: &str, params: Value) -> Reply {
    app.post(
        EXECUTE,
        key,
        json!({"operation": operation, "params": params}),
    )
    .await
}

/// Runs an operation that must succeed (200, as the client requires) and returns its
/// result.
async fn ok(app: &TestApp, key: &str, operation: &str, params: Value) -> Value {
    let r = op(app, key, operation, params.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{operation} {params}: {}", r.body);
    r.body
}

/// The location of a 422's first problem.
fn loc(r: &Reply) -> Value {
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "expected a 422: {}",
        r.body
    );
    r.body["detail"][0]["loc"].clone()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn new_project(app: &TestApp, name: &str) -> String {
    let p = ok(
        app,
        &app.root_key,
        "create_project",
        json!({"name": name, "tier": "free"}),
    )
    .await;
    p["project_id"].as_str().unwrap().to_owned()
}

/// The bytes at a URL: this server's signed route through the router, S3's (moto) over
/// HTTP.
async fn fetch(app: &TestApp, url: &str) -> (StatusCode, Vec<u8>) {
    if let Some(path) = url.strip_prefix("http://localhost") {
        let req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let r = app.send(req).await;
        return (r.status, r.raw);
    }
    let resp = reqwest::get(url).await.expect("GET the presigned URL");
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    (status, resp.bytes().await.unwrap().to_vec())
}

async fn projects_round_trip(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let p = ok(
        &app,
        key,
        "create_project",
        json!({"name": "AI Assistant", "tier": "pro", "description": "docs search",
               "settings": {"vector_dimensions": 384}}),
    )
    .await;
    for k in ["project_id", "name", "tier", "created_at"] {
        assert!(p.get(k).is_some(), "create_project answers {k}: {p}");
    }
    assert_eq!(
        (p["name"].clone(), p["tier"].clone()),
        (json!("AI Assistant"), json!("pro"))
    );
    assert!(p.get("api_key").is_none(), "no key is minted: {p}");
    let pid = p["project_id"].as_str().unwrap().to_owned();

    let g = ok(&app, key, "get_project", json!({"project_id": pid})).await;
    assert_eq!(g["settings"], json!({"vector_dimensions": 384}));
    assert_eq!(g["description"], "docs search");
    assert_eq!(g["status"], "active");
    // The same project through the REST route.
    let rest = app.get(&format!("/api/v1/projects/{pid}"), key).await;
    assert_eq!(rest.body["config"], json!({"vector_dimensions": 384}));

    app.clock.advance_secs(1);
    new_project(&app, "second").await;
    let l = ok(
        &app,
        key,
        "list_projects",
        json!({"limit": 100, "offset": 0}),
    )
    .await;
    assert_eq!(l["total"], 2);
    assert_eq!(l["projects"][0]["project_id"], pid.as_str());
    let l = ok(&app, key, "list_projects", json!({"limit": 1, "offset": 1})).await;
    assert_eq!(
        (l["total"].clone(), l["projects"][0]["name"].clone()),
        (json!(2), json!("second"))
    );
    let l = ok(&app, key, "list_projects", json!({"tier": "pro"})).await;
    assert_eq!(l["total"], 1);
    // No params at all is `{}`.
    let r = app
        .post(EXECUTE, key, json!({"operation": "list_projects"}))
        .await;
    assert_eq!(
        (r.status, r.body["total"].clone()),
        (StatusCode::OK, json!(2))
    );

    let u = ok(
        &app,
        key,
        "update_project",
        json!({"project_id": pid, "name": "Renamed", "settings": {"enable_quantum": false}}),
    )
    .await;
    assert_eq!(u["updated_fields"], json!(["name", "settings"]));
    assert!(u["updated_at"].is_string());
    let g = ok(&app, key, "get_project", json!({"project_id": pid})).await;
    assert_eq!(
        (g["name"].clone(), g["settings"].clone()),
        (json!("Renamed"), json!({"enable_quantum": false}))
    );

    ok(
        &app,
        key,
        "create_table",
        json!({"project_id": pid, "table_name": "t", "schema_definition": {"k": "integer"}, "indexes": []}),
    )
    .await;
    ok(
        &app,
        key,
        "insert_rows",
        json!({"project_id": pid, "table_name": "t", "rows": [{"k": 1}, {"k": 2}]}),
    )
    .await;
    let s = ok(&app, key, "get_project_stats", json!({"project_id": pid})).await;
    assert_eq!(s["project_id"], pid.as_str());
    assert_eq!(s["tables"], json!({"total": 1, "total_rows": 2}));
    assert_eq!(s["vectors"]["total"], 0);
    assert_eq!(s["files"]["total"], 0);

    let d = ok(
        &app,
        key,
        "delete_project",
        json!({"project_id": pid, "confirm": true}),
    )
    .await;
    assert_eq!(d["status"], "success");
    assert_eq!(d["deleted_items"]["tables"], 1);
    assert_eq!(d["deleted_items"]["rows"], 2);
    let r = op(&app, key, "get_project", json!({"project_id": pid})).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "PROJECT_NOT_FOUND")
    );
    let l = ok(&app, key, "list_projects", json!({})).await;
    assert_eq!(l["total"], 1);
}

async fn tables_round_trip(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = new_project(&app, "db").await;
    let t = ok(
        &app,
        key,
        "create_table",
        json!({"project_id": pid, "table_name": "users",
               "schema_definition": {"user_id": "string", "email": "string", "age": "integer", "tags": "array"},
               "indexes": ["email", "age"]}),
    )
    .await;
    for k in ["table_id", "table_name", "schema", "created_at"] {
        assert!(t.get(k).is_some(), "create_table answers {k}: {t}");
    }
    assert_eq!(t["indexes"], json!(["email", "age"]));
    assert_eq!(t["schema"]["fields"]["age"], "integer");
    let r = op(
        &app,
        key,
        "create_table",
        json!({"project_id": pid, "table_name": "users", "schema_definition": {}}),
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "TABLE_EXISTS"));

    let rows: Vec<Value> = (0..10)
        .map(|i| json!({"user_id": format!("u{i}"), "email": format!("u{i}@x.io"), "age": 18 + i * 5}))
        .collect();
    let ins = ok(
        &app,
        key,
        "insert_rows",
        json!({"project_id": pid, "table_name": "users", "rows": rows}),
    )
    .await;
    assert_eq!(
        (ins["inserted"].clone(), ins["failed"].clone()),
        (json!(10), json!(0))
    );
    assert_eq!(ins["row_ids"].as_array().unwrap().len(), 10);

    let q = ok(
        &app,
        key,
        "query_rows",
        json!({"project_id": pid, "table_name": "users", "filters": {"age": {"$gte": 40}},
               "limit": 2, "offset": 0, "sort_by": "age", "order": "desc"}),
    )
    .await;
    assert_eq!(q["total"], 5);
    assert_eq!(q["limit"], 2);
    assert_eq!(q["has_more"], true);
    let ages: Vec<i64> = q["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["age"].as_i64().unwrap())
        .collect();
    assert_eq!(ages, vec![63, 58]);
    assert_eq!(q["plan"], "index:age");
    // The client's defaults: filters {} and no sort.
    let q = ok(
        &app,
        key,
        "query_rows",
        json!({"project_id": pid, "table_name": "users", "filters": {}, "limit": 100, "offset": 0}),
    )
    .await;
    assert_eq!(
        (q["total"].clone(), q["rows"].as_array().unwrap().len()),
        (json!(10), 10)
    );

    let u = ok(
        &app,
        key,
        "update_rows",
        json!({"project_id": pid, "table_name": "users", "filters": {"age": {"$lt": 30}}, "updates": {"verified": true}}),
    )
    .await;
    assert_eq!(u["updated"], 3);
    let q = ok(
        &app,
        key,
        "query_rows",
        json!({"project_id": pid, "table_name": "users", "filters": {"verified": true}}),
    )
    .await;
    assert_eq!(q["total"], 3);

    let d = ok(
        &app,
        key,
        "delete_rows",
        json!({"project_id": pid, "table_name": "users", "filters": {"email": "u3@x.io"}}),
    )
    .await;
    assert_eq!(d["deleted"], 1);

    ok(
        &app,
        key,
        "create_table",
        json!({"project_id": pid, "table_name": "logs", "schema_definition": {"msg": "string"}}),
    )
    .await;
    let l = ok(
        &app,
        key,
        "list_tables",
        json!({"project_id": pid, "limit": 100, "offset": 0}),
    )
    .await;
    assert_eq!(l["total"], 2);
    let names: Vec<&str> = l["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["table_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["logs", "users"]);
    let users = l["tables"][1].clone();
    assert_eq!(users["row_count"], 9);
    assert!(users["table_id"].is_string());

    let g = ok(
        &app,
        key,
        "get_table",
        json!({"project_id": pid, "table_name": "users"}),
    )
    .await;
    assert_eq!(
        (g["row_count"].clone(), g["indexes"].clone()),
        (json!(9), json!(["email", "age"]))
    );
    // By id too.
    let by_id = ok(
        &app,
        key,
        "get_table",
        json!({"project_id": pid, "table_name": g["table_id"]}),
    )
    .await;
    assert_eq!(by_id["table_name"], "users");

    let d = ok(
        &app,
        key,
        "delete_table",
        json!({"project_id": pid, "table_name": "users"}),
    )
    .await;
    assert_eq!(
        (d["status"].clone(), d["rows_deleted"].clone()),
        (json!("success"), json!(9))
    );
    let r = op(
        &app,
        key,
        "get_table",
        json!({"project_id": pid, "table_name": "users"}),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "TABLE_NOT_FOUND")
    );
}

async fn files_round_trip(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = new_project(&app, "files").await;
    let bytes = b"Hello, World!\nfrom the MCP bridge".to_vec();
    let up = ok(
        &app,
        key,
        "upload_file",
        json!({"project_id": pid, "file_name": "docs/hello.txt", "content_base64": b64(&bytes),
               "content_type": "text/plain", "metadata": {"category": "greeting"}, "checksum": sha(&bytes)}),
    )
    .await;
    for k in [
        "file_id",
        "file_name",
        "content_type",
        "file_size",
        "checksum",
        "created_at",
    ] {
        assert!(up.get(k).is_some(), "upload_file answers {k}: {up}");
    }
    assert_eq!(up["file_size"], bytes.len());
    assert_eq!(up["checksum"], sha(&bytes));
    let fid = up["file_id"].as_str().unwrap().to_owned();
    // `sha256:` before the digest is accepted too.
    ok(
        &app,
        key,
        "upload_file",
        json!({"project_id": pid, "file_name": "data.json", "content_base64": b64(b"{}"),
               "content_type": "application/json", "metadata": {}, "checksum": format!("sha256:{}", sha(b"{}"))}),
    )
    .await;
    ok(
        &app,
        key,
        "upload_file",
        json!({"project_id": pid, "file_name": "docs/notes.txt", "content_base64": b64(b"notes"),
               "content_type": "text/plain; charset=utf-8", "checksum": sha(b"notes")}),
    )
    .await;

    let m = ok(
        &app,
        key,
        "get_file_metadata",
        json!({"project_id": pid, "file_id": fid}),
    )
    .await;
    assert_eq!(m["metadata"], json!({"category": "greeting"}));
    assert_eq!(m["file_name"], "docs/hello.txt");

    let d = ok(
        &app,
        key,
        "download_file",
        json!({"project_id": pid, "file_id": fid}),
    )
    .await;
    let got = base64::engine::general_purpose::STANDARD
        .decode(d["content_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(got, bytes);

    let l = ok(
        &app,
        key,
        "list_files",
        json!({"project_id": pid, "limit": 100, "offset": 0}),
    )
    .await;
    assert_eq!(
        (l["total"].clone(), l["total_exact"].clone()),
        (json!(3), json!(true))
    );
    let l = ok(
        &app,
        key,
        "list_files",
        json!({"project_id": pid, "limit": 1, "offset": 0, "content_type": "text/plain"}),
    )
    .await;
    assert_eq!(l["total"], 2, "text/plain matches its charset form: {l}");
    assert_eq!(l["files"].as_array().unwrap().len(), 1);
    assert_eq!(l["has_more"], true);
    let l = ok(
        &app,
        key,
        "list_files",
        json!({"project_id": pid, "prefix": "docs/"}),
    )
    .await;
    assert_eq!(l["total"], 2);

    let u = ok(
        &app,
        key,
        "generate_presigned_url",
        json!({"project_id": pid, "file_id": fid, "expires_in": 7200}),
    )
    .await;
    assert!(u["expires_at"].is_string(), "{u}");
    let (status, body) = fetch(&app, u["url"].as_str().unwrap()).await;
    assert_eq!((status, body), (StatusCode::OK, bytes.clone()));

    let del = ok(
        &app,
        key,
        "delete_file",
        json!({"project_id": pid, "file_id": fid}),
    )
    .await;
    assert_eq!(del["status"], "success");
    let r = op(
        &app,
        key,
        "get_file_metadata",
        json!({"project_id": pid, "file_id": fid}),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "FILE_NOT_FOUND")
    );
    let l = ok(&app, key, "list_files", json!({"project_id": pid})).await;
    assert_eq!(l["total"], 2);
}

async fn events_rlhf_and_embeddings_round_trip(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = new_project(&app, "events").await;
    let e = ok(
        &app,
        key,
        "create_event",
        json!({"project_id": pid, "event_type": "user.login", "event_data": {"user_id": "u1"}, "source": "sdk"}),
    )
    .await;
    for k in ["event_id", "event_type", "created_at"] {
        assert!(e.get(k).is_some(), "create_event answers {k}: {e}");
    }
    for i in 0..3 {
        ok(
            &app,
            key,
            "create_event",
            json!({"project_id": pid, "event_type": "vector.search", "event_data": {"n": i}}),
        )
        .await;
    }
    let l = ok(
        &app,
        key,
        "list_events",
        json!({"project_id": pid, "limit": 100, "offset": 0}),
    )
    .await;
    assert_eq!(l["total"], 4);
    let l = ok(
        &app,
        key,
        "list_events",
        json!({"project_id": pid, "event_type": "user.login", "start_date": "2000-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(l["total"], 1);
    assert_eq!(l["events"][0]["event_data"], json!({"user_id": "u1"}));
    assert_eq!(l["events"][0]["event_id"], e["event_id"]);
    let l = ok(
        &app,
        key,
        "list_events",
        json!({"project_id": pid, "limit": 2, "offset": 2}),
    )
    .await;
    assert_eq!(
        (l["total"].clone(), l["events"].as_array().unwrap().len()),
        (json!(4), 2)
    );
    // The same events through the REST route.
    let rest = app
        .get(&format!("/api/v1/projects/{pid}/database/events"), key)
        .await;
    assert_eq!(rest.body["count"], 4);

    for (session, input) in [
        ("s1", "What is RLHF?"),
        ("s1", "And PPO?"),
        ("s2", "hi"),
        ("s1", "thanks"),
    ] {
        let i = ok(
            &app,
            key,
            "rlhf_collect_interaction",
            json!({"session_id": session, "project_id": pid, "interaction_type": "query",
                   "user_input": input, "agent_response": "an answer", "context": {"model": "m"}}),
        )
        .await;
        assert!(i["interaction_id"].is_string(), "{i}");
        assert_eq!(i["session_id"], session);
        assert!(i["created_at"].is_string());
    }
    let s = ok(
        &app,
        key,
        "rlhf_get_session_interactions",
        json!({"project_id": pid, "session_id": "s1", "limit": 2, "offset": 0}),
    )
    .await;
    assert_eq!(s["total"], 3);
    assert_eq!(s["interactions"].as_array().unwrap().len(), 2);
    let first = &s["interactions"][0];
    assert_eq!(first["interaction_type"], "query");
    assert_eq!(first["context"], json!({"model": "m"}));
    assert_eq!(first["agent_response"], "an answer");
    let s = ok(
        &app,
        key,
        "rlhf_get_session_interactions",
        json!({"project_id": pid, "session_id": "s2"}),
    )
    .await;
    assert_eq!(s["total"], 1);
    assert_eq!(s["interactions"][0]["user_input"], "hi");

    let g = ok(
        &app,
        key,
        "generate_embeddings",
        json!({"texts": ["Machine learning tutorial", "Python programming guide"],
               "model": "BAAI/bge-small-en-v1.5", "normalize": true}),
    )
    .await;
    let dims = app.memory.embedder().dims();
    assert_eq!(
        (g["count"].clone(), g["dimensions"].clone()),
        (json!(2), json!(dims))
    );
    assert_eq!(g["model"], app.memory.embedder().name());
    let v: Vec<f64> = serde_json::from_value(g["embeddings"][0].clone()).unwrap();
    assert_eq!(v.len(), dims);
    let norm: f64 = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "unit length: {norm}");
    let m = ok(&app, key, "list_embedding_models", json!({})).await;
    assert_eq!(m[0]["id"], app.memory.embedder().name());
    assert_eq!(m[0]["dimensions"], dims);
}

async fn operations_not_served_are_422_naming_them(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let r = app.get(OPERATIONS, key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ops = r.body["operations"].as_array().unwrap().clone();
    assert_eq!(r.body["total"], ops.len());
    let names: Vec<String> = ops
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_owned())
        .collect();
    for n in [
        "create_project",
        "query_rows",
        "upload_file",
        "create_event",
        "generate_embeddings",
    ] {
        assert!(names.contains(&n.to_owned()), "{n} is listed");
    }
    assert!(
        ops.iter()
            .all(|o| o["params"].is_object() && o["scope"].is_string())
    );
    // Every listed operation is dispatched: whatever `{}` gets, it is not "not served".
    for n in &names {
        let r = op(&app, key, n, json!({})).await;
        assert!(
            !(r.status == StatusCode::UNPROCESSABLE_ENTITY
                && r.body["detail"][0]["loc"] == json!(["body", "operation"])),
            "{n} is served: {}",
            r.body
        );
        assert!(r.status.as_u16() < 500, "{n}: {}", r.body);
    }
    for n in [
        "quantum_compress_vector",
        "admin_get_system_stats",
        "enable_database",
        "subscribe_to_events",
        "create_vector_index",
        "rlhf_start_collection",
        "rlhf_stop_collection",
        "get_event",
        "no_such_operation",
    ] {
        let r = op(&app, key, n, json!({"project_id": "proj_x"})).await;
        assert_eq!(loc(&r), json!(["body", "operation"]), "{n}");
        let msg = r.body["detail"][0]["msg"].as_str().unwrap();
        assert!(
            msg.contains(n) && msg.contains("not served") && msg.contains(OPERATIONS),
            "{n}: {msg}"
        );
    }
    // Without a credential: 401, as every route.
    let r = app
        .call(
            Method::POST,
            EXECUTE,
            None,
            Some(json!({"operation": "list_projects", "params": {}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app.call(Method::GET, OPERATIONS, None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

async fn bad_params_are_422_at_their_key(backend: Backend) {
    let app = TestApp::with_settings(backend, &[("ZERODB_FILE_INLINE_MAX_BYTES", "64")]).await;
    let key = &app.root_key;
    let pid = new_project(&app, "strict").await;
    ok(
        &app,
        key,
        "create_table",
        json!({"project_id": pid, "table_name": "people", "schema_definition": {"age": "integer"}}),
    )
    .await;
    let p = |k: &[Value]| {
        let mut v = vec![json!("body"), json!("params")];
        v.extend(k.iter().cloned());
        Value::Array(v)
    };
    let cases: Vec<(&str, Value, Value)> = vec![
        ("get_project", json!({}), p(&[json!("project_id")])),
        (
            "get_project",
            json!({"project_id": 5}),
            p(&[json!("project_id")]),
        ),
        ("create_project", json!({"name": ""}), p(&[json!("name")])),
        (
            "create_project",
            json!({"name": "x", "tier": "platinum"}),
            p(&[json!("tier")]),
        ),
        ("list_projects", json!({"limit": 0}), p(&[json!("limit")])),
        (
            "list_projects",
            json!({"limit": "ten"}),
            p(&[json!("limit")]),
        ),
        (
            "update_project",
            json!({"project_id": pid}),
            p(&[json!("name")]),
        ),
        (
            "delete_project",
            json!({"project_id": pid}),
            p(&[json!("confirm")]),
        ),
        (
            "create_table",
            json!({"project_id": pid, "table_name": "1bad"}),
            p(&[json!("table_name")]),
        ),
        (
            "create_table",
            json!({"project_id": pid, "table_name": "ok", "schema_definition": {"age": "wholenumber"}}),
            p(&[json!("schema_definition"), json!("age")]),
        ),
        (
            "create_table",
            json!({"project_id": pid, "table_name": "ok", "indexes": ["a", "b", "c", "d", "e", "f"]}),
            p(&[json!("indexes")]),
        ),
        (
            "list_tables",
            json!({"project_id": pid, "offset": -1}),
            p(&[json!("offset")]),
        ),
        (
            "insert_rows",
            json!({"project_id": pid, "table_name": "people", "rows": [{"age": 1}, {"age": "old"}]}),
            p(&[json!("rows"), json!(1), json!("age")]),
        ),
        (
            "insert_rows",
            json!({"project_id": pid, "table_name": "people", "rows": (0..1001).map(|i| json!({"age": i})).collect::<Vec<_>>()}),
            p(&[json!("rows")]),
        ),
        (
            "insert_rows",
            json!({"project_id": pid, "table_name": "people", "rows": []}),
            p(&[json!("rows")]),
        ),
        (
            "query_rows",
            json!({"project_id": pid, "table_name": "people", "filters": {"age": {"$regex": "x"}}}),
            p(&[json!("filters"), json!("age"), json!("$regex")]),
        ),
        (
            "query_rows",
            json!({"project_id": pid, "table_name": "people", "limit": 1001}),
            p(&[json!("limit")]),
        ),
        (
            "query_rows",
            json!({"project_id": pid, "table_name": "people", "sort_by": "age", "order": "sideways"}),
            p(&[json!("order")]),
        ),
        (
            "update_rows",
            json!({"project_id": pid, "table_name": "people", "filters": {}}),
            p(&[json!("updates")]),
        ),
        (
            "update_rows",
            json!({"project_id": pid, "table_name": "people", "filters": {}, "updates": {"$push": {"a": 1}}}),
            p(&[json!("updates"), json!("$push")]),
        ),
        (
            "delete_rows",
            json!({"project_id": pid, "table_name": "people"}),
            p(&[json!("filters")]),
        ),
        (
            "upload_file",
            json!({"project_id": pid, "file_name": "a.txt", "content_base64": b64(b"abc"), "checksum": sha(b"abd")}),
            p(&[json!("checksum")]),
        ),
        (
            "upload_file",
            json!({"project_id": pid, "file_name": "a.txt", "content_base64": "%%%"}),
            p(&[json!("content_base64")]),
        ),
        (
            "upload_file",
            json!({"project_id": pid, "file_name": "big.bin", "content_base64": b64(&[7u8; 65])}),
            p(&[json!("content_base64")]),
        ),
        (
            "upload_file",
            json!({"project_id": pid, "content_base64": b64(b"abc")}),
            p(&[json!("file_name")]),
        ),
        (
            "upload_file",
            json!({"project_id": pid, "file_name": "a\nb", "content_base64": b64(b"abc")}),
            p(&[json!("file_name")]),
        ),
        (
            "generate_presigned_url",
            json!({"project_id": pid, "file_id": "file_x", "expires_in": 0}),
            p(&[json!("expires_in")]),
        ),
        (
            "create_event",
            json!({"project_id": pid, "event_type": "bad type!", "event_data": {}}),
            p(&[json!("event_type")]),
        ),
        (
            "create_event",
            json!({"project_id": pid, "event_type": "a.b", "event_data": {"x": "y".repeat(70_000)}}),
            p(&[json!("event_data")]),
        ),
        (
            "list_events",
            json!({"project_id": pid, "start_date": "yesterday"}),
            p(&[json!("start_date")]),
        ),
        (
            "list_events",
            json!({"project_id": pid, "start_date": "2026-02-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}),
            p(&[json!("end_date")]),
        ),
        (
            "rlhf_collect_interaction",
            json!({"session_id": "s", "project_id": pid, "interaction_type": "query", "user_input": "x".repeat(100_001), "agent_response": "y"}),
            p(&[json!("user_input")]),
        ),
        (
            "rlhf_collect_interaction",
            json!({"session_id": "", "project_id": pid, "interaction_type": "query", "user_input": "x", "agent_response": "y"}),
            p(&[json!("session_id")]),
        ),
        (
            "rlhf_get_session_interactions",
            json!({"project_id": pid, "session_id": "s", "limit": 5000}),
            p(&[json!("limit")]),
        ),
        (
            "generate_embeddings",
            json!({"texts": []}),
            p(&[json!("texts")]),
        ),
        (
            "generate_embeddings",
            json!({"texts": vec!["a"; 101]}),
            p(&[json!("texts")]),
        ),
        (
            "generate_embeddings",
            json!({"texts": ["a"], "model": "text-embedding-3-large"}),
            p(&[json!("model")]),
        ),
    ];
    for (operation, params, want) in cases {
        let r = op(&app, key, operation, params.clone()).await;
        assert_eq!(loc(&r), want, "{operation}: {}", r.body);
        assert!(r.body["detail"][0]["msg"].is_string());
    }
    // The envelope itself.
    let r = app.post(EXECUTE, key, json!({"params": {}})).await;
    assert_eq!(loc(&r), json!(["body", "operation"]));
    let r = app
        .post(
            EXECUTE,
            key,
            json!({"operation": "list_projects", "params": [1, 2]}),
        )
        .await;
    assert_eq!(loc(&r), json!(["body", "params"]));
    let r = app.call(Method::POST, EXECUTE, Some(key), None).await;
    assert_eq!(loc(&r), json!(["body"]));
    // A refused write wrote nothing.
    let q = ok(
        &app,
        key,
        "query_rows",
        json!({"project_id": pid, "table_name": "people"}),
    )
    .await;
    assert_eq!(q["total"], 0);
    let l = ok(&app, key, "list_files", json!({"project_id": pid})).await;
    assert_eq!(l["total"], 0);
}

async fn vectors_round_trip(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = new_project(&app, "vec").await;
    let one = ok(&app, key, "upsert_vector", json!({"project_id": pid, "embedding": [1.0, 0.0, 0.0], "document": "one", "metadata": {"k": 1}})).await;
    assert_eq!(one["status"], "success");
    let id = one["vector_id"].as_str().unwrap().to_owned();
    let b = ok(&app, key, "batch_upsert_vectors", json!({"project_id": pid, "namespace": "other", "vectors": [
        {"embedding": [0.0, 1.0], "document": "two"}, {"embedding": [1.0, 1.0], "document": "three", "vector_id": "v3"}]})).await;
    assert_eq!(
        (b["total"].clone(), b["failed"].clone()),
        (json!(2), json!(0))
    );
    // The client's default threshold (0.7) leaves out the orthogonal ones.
    let s = ok(
        &app,
        key,
        "search_vectors",
        json!({"project_id": pid, "namespace": "other", "query_vector": [1.0, 0.0]}),
    )
    .await;
    assert_eq!(s["total"], 1);
    assert_eq!(s["results"][0]["vector_id"], "v3");
    assert_eq!(s["results"][0]["document"], "three");
    // get/delete find a vector in any namespace of the project.
    let g = ok(
        &app,
        key,
        "get_vector",
        json!({"project_id": pid, "vector_id": "v3"}),
    )
    .await;
    assert_eq!(
        (g["namespace"].clone(), g["embedding"].clone()),
        (json!("other"), json!([1.0, 1.0]))
    );
    let g = ok(
        &app,
        key,
        "get_vector",
        json!({"project_id": pid, "vector_id": id}),
    )
    .await;
    assert_eq!(g["metadata"], json!({"k": 1}));
    let l = ok(
        &app,
        key,
        "list_vectors",
        json!({"project_id": pid, "namespace": "other", "limit": 1, "offset": 1}),
    )
    .await;
    assert_eq!(
        (l["total"].clone(), l["vectors"].as_array().unwrap().len()),
        (json!(2), 1)
    );
    let st = ok(&app, key, "vector_stats", json!({"project_id": pid})).await;
    assert_eq!(st["total_vectors"], 3);
    assert_eq!(st["namespaces"], json!(["default", "other"]));
    ok(
        &app,
        key,
        "delete_vector",
        json!({"project_id": pid, "vector_id": "v3"}),
    )
    .await;
    let r = op(
        &app,
        key,
        "delete_vector",
        json!({"project_id": pid, "vector_id": "v3"}),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "VECTOR_NOT_FOUND")
    );
    // Text: stored with the server's embedder, found by its words (lexical here).
    let e = ok(&app, key, "embed_and_store", json!({"project_id": pid, "namespace": "docs", "texts": ["red apples and pears", "fast cars and trucks"], "metadata_list": [{"n": 1}, {"n": 2}]})).await;
    assert_eq!(
        (e["vectors_stored"].clone(), e["dimensions"].clone()),
        (json!(2), json!(384))
    );
    let s = ok(&app, key, "semantic_search", json!({"project_id": pid, "namespace": "docs", "query": "trucks", "threshold": 0.0, "limit": 1})).await;
    assert_eq!(s["results"][0]["document"], "fast cars and trucks");
    // Limits and bad params: 422 at the param.
    for (operation, params, at) in [
        (
            "upsert_vector",
            json!({"project_id": pid, "embedding": [1.0, 0.0]}),
            "embedding",
        ),
        (
            "search_vectors",
            json!({"project_id": pid, "query_vector": [1.0, 0.0, 0.0], "limit": 101}),
            "limit",
        ),
        (
            "batch_upsert_vectors",
            json!({"project_id": pid, "vectors": []}),
            "vectors",
        ),
        (
            "list_vectors",
            json!({"project_id": pid, "offset": 10001}),
            "offset",
        ),
        (
            "embed_and_store",
            json!({"project_id": pid, "texts": ["a"], "model": "gpt-9"}),
            "model",
        ),
        (
            "semantic_search",
            json!({"project_id": pid, "query": "x", "threshold": 2.0}),
            "threshold",
        ),
    ] {
        let r = op(&app, key, operation, params.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{operation} {params}: {}",
            r.body
        );
        assert!(r.body.to_string().contains(at), "{operation}: {}", r.body);
    }
    assert_eq!(
        ok(&app, key, "vector_stats", json!({"project_id": pid})).await["total_vectors"],
        4,
        "one, two and the two texts; nothing refused was written"
    );
}

async fn another_account_finds_nothing_and_a_reader_cannot_write(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = new_project(&app, "a's").await;
    ok(
        &app,
        key,
        "create_table",
        json!({"project_id": pid, "table_name": "t", "schema_definition": {}}),
    )
    .await;
    let fid = ok(
        &app,
        key,
        "upload_file",
        json!({"project_id": pid, "file_name": "a.txt", "content_base64": b64(b"secret"), "checksum": sha(b"secret")}),
    )
    .await["file_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        &app,
        key,
        "create_event",
        json!({"project_id": pid, "event_type": "a.b", "event_data": {}}),
    )
    .await;
    ok(
        &app,
        key,
        "rlhf_collect_interaction",
        json!({"session_id": "s", "project_id": pid, "interaction_type": "q", "user_input": "x", "agent_response": "y"}),
    )
    .await;
    ok(
        &app,
        key,
        "upsert_vector",
        json!({"project_id": pid, "embedding": [1.0, 0.0], "document": "a's", "vector_id": "v1"}),
    )
    .await;

    // Account B: every area answers A's project as not found.
    let other = app.new_account("other").await;
    let b_pid = new_project_with(&app, &other, "b's").await;
    let calls: Vec<(&str, Value)> = vec![
        ("get_project", json!({"project_id": pid})),
        ("get_project_stats", json!({"project_id": pid})),
        ("update_project", json!({"project_id": pid, "name": "mine"})),
        (
            "delete_project",
            json!({"project_id": pid, "confirm": true}),
        ),
        (
            "create_table",
            json!({"project_id": pid, "table_name": "x", "schema_definition": {}}),
        ),
        ("list_tables", json!({"project_id": pid})),
        ("get_table", json!({"project_id": pid, "table_name": "t"})),
        (
            "upsert_vector",
            json!({"project_id": pid, "embedding": [1.0, 0.0], "document": "x"}),
        ),
        (
            "delete_vector",
            json!({"project_id": pid, "vector_id": "v1"}),
        ),
        (
            "embed_and_store",
            json!({"project_id": pid, "texts": ["x"]}),
        ),
        (
            "delete_table",
            json!({"project_id": pid, "table_name": "t"}),
        ),
        (
            "insert_rows",
            json!({"project_id": pid, "table_name": "t", "rows": [{"a": 1}]}),
        ),
        (
            "query_rows",
            json!({"project_id": pid, "table_name": "t", "filters": {}}),
        ),
        (
            "update_rows",
            json!({"project_id": pid, "table_name": "t", "filters": {}, "updates": {"a": 2}}),
        ),
        (
            "delete_rows",
            json!({"project_id": pid, "table_name": "t", "filters": {}}),
        ),
        (
            "upload_file",
            json!({"project_id": pid, "file_name": "b.txt", "content_base64": b64(b"b")}),
        ),
        ("download_file", json!({"project_id": pid, "file_id": fid})),
        ("list_files", json!({"project_id": pid})),
        (
            "get_file_metadata",
            json!({"project_id": pid, "file_id": fid}),
        ),
        ("delete_file", json!({"project_id": pid, "file_id": fid})),
        (
            "generate_presigned_url",
            json!({"project_id": pid, "file_id": fid}),
        ),
        (
            "create_event",
            json!({"project_id": pid, "event_type": "a.b", "event_data": {}}),
        ),
        ("list_events", json!({"project_id": pid})),
        (
            "rlhf_collect_interaction",
            json!({"session_id": "s", "project_id": pid, "interaction_type": "q", "user_input": "x", "agent_response": "y"}),
        ),
        (
            "rlhf_get_session_interactions",
            json!({"project_id": pid, "session_id": "s"}),
        ),
        (
            "upsert_vector",
            json!({"project_id": pid, "embedding": [1.0, 0.0], "document": "x"}),
        ),
        (
            "batch_upsert_vectors",
            json!({"project_id": pid, "vectors": [{"embedding": [1.0, 0.0], "document": "x"}]}),
        ),
        (
            "search_vectors",
            json!({"project_id": pid, "query_vector": [1.0, 0.0]}),
        ),
        ("get_vector", json!({"project_id": pid, "vector_id": "v1"})),
        ("list_vectors", json!({"project_id": pid})),
        (
            "delete_vector",
            json!({"project_id": pid, "vector_id": "v1"}),
        ),
        ("vector_stats", json!({"project_id": pid})),
        (
            "embed_and_store",
            json!({"project_id": pid, "texts": ["x"]}),
        ),
        ("semantic_search", json!({"project_id": pid, "query": "x"})),
    ];
    for (operation, params) in &calls {
        let r = op(&app, &other, operation, params.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::NOT_FOUND, "PROJECT_NOT_FOUND"),
            "{operation}: {}",
            r.body
        );
    }
    let l = ok(&app, &other, "list_projects", json!({})).await;
    assert_eq!(l["total"], 1);
    assert_eq!(l["projects"][0]["project_id"], b_pid.as_str());
    // A's file by its id in B's own project: not found either.
    let r = op(
        &app,
        &other,
        "download_file",
        json!({"project_id": b_pid, "file_id": fid}),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "FILE_NOT_FOUND")
    );
    // And A still has everything.
    let s = ok(&app, key, "get_project_stats", json!({"project_id": pid})).await;
    assert_eq!(
        (s["tables"]["total"].clone(), s["files"]["total"].clone()),
        (json!(1), json!(1))
    );

    // A's vector is A's alone, by id too.
    let r = op(
        &app,
        &other,
        "get_vector",
        json!({"project_id": b_pid, "vector_id": "v1"}),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::NOT_FOUND, "VECTOR_NOT_FOUND")
    );
    let s = ok(&app, key, "vector_stats", json!({"project_id": pid})).await;
    assert_eq!(s["total_vectors"], 1);

    // A read-only key reads, and every write is 403 PERM_001.
    let (_, reader) = app.create_key(&["zerodb:read", "file:read"], None).await;
    for (operation, params) in [
        ("get_project", json!({"project_id": pid})),
        ("list_tables", json!({"project_id": pid})),
        ("query_rows", json!({"project_id": pid, "table_name": "t"})),
        ("list_files", json!({"project_id": pid})),
        ("download_file", json!({"project_id": pid, "file_id": fid})),
        ("list_events", json!({"project_id": pid})),
        (
            "rlhf_get_session_interactions",
            json!({"project_id": pid, "session_id": "s"}),
        ),
        ("list_embedding_models", json!({})),
        (
            "search_vectors",
            json!({"project_id": pid, "query_vector": [1.0, 0.0]}),
        ),
        ("get_vector", json!({"project_id": pid, "vector_id": "v1"})),
        ("vector_stats", json!({"project_id": pid})),
    ] {
        ok(&app, &reader, operation, params).await;
    }
    for (operation, params) in [
        ("create_project", json!({"name": "nope"})),
        ("update_project", json!({"project_id": pid, "name": "nope"})),
        (
            "delete_project",
            json!({"project_id": pid, "confirm": true}),
        ),
        (
            "create_table",
            json!({"project_id": pid, "table_name": "x", "schema_definition": {}}),
        ),
        (
            "insert_rows",
            json!({"project_id": pid, "table_name": "t", "rows": [{"a": 1}]}),
        ),
        (
            "update_rows",
            json!({"project_id": pid, "table_name": "t", "filters": {}, "updates": {"a": 2}}),
        ),
        (
            "delete_rows",
            json!({"project_id": pid, "table_name": "t", "filters": {}}),
        ),
        (
            "delete_table",
            json!({"project_id": pid, "table_name": "t"}),
        ),
        (
            "upload_file",
            json!({"project_id": pid, "file_name": "b.txt", "content_base64": b64(b"b")}),
        ),
        ("delete_file", json!({"project_id": pid, "file_id": fid})),
        (
            "create_event",
            json!({"project_id": pid, "event_type": "a.b", "event_data": {}}),
        ),
        (
            "rlhf_collect_interaction",
            json!({"session_id": "s", "project_id": pid, "interaction_type": "q", "user_input": "x", "agent_response": "y"}),
        ),
    ] {
        let r = op(&app, &reader, operation, params).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "PERM_001"),
            "{operation}: {}",
            r.body
        );
    }
    // zerodb scopes do not reach files.
    let (_, database) = app.create_key(&["zerodb:read", "zerodb:write"], None).await;
    let r = op(&app, &database, "list_files", json!({"project_id": pid})).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "PERM_001"));
    ok(&app, &database, "list_tables", json!({"project_id": pid})).await;
    // Nothing was changed by the refused calls.
    let q = ok(
        &app,
        key,
        "query_rows",
        json!({"project_id": pid, "table_name": "t"}),
    )
    .await;
    assert_eq!(q["total"], 0);
    let g = ok(&app, key, "get_project", json!({"project_id": pid})).await;
    assert_eq!(g["name"], "a's");
}

async fn new_project_with(app: &TestApp, key: &str, name: &str) -> String {
    let p = ok(app, key, "create_project", json!({"name": name})).await;
    p["project_id"].as_str().unwrap().to_owned()
}

on_both_backends!(
    vectors_round_trip,
    projects_round_trip,
    tables_round_trip,
    files_round_trip,
    events_rlhf_and_embeddings_round_trip,
    operations_not_served_are_422_naming_them,
    bad_params_are_422_at_their_key,
    another_account_finds_nothing_and_a_reader_cannot_write,
);
