//! The vectors API on both storage backends (the embedded engine; on AWS, the S3 Vectors
//! adapter over the fake, since moto has no QueryVectors): ainative-python's upsert /
//! search / get / delete / metadata / stats, seed 003's batch upsert, ainative-agent's
//! `/public/vectors`, text embedding and search, limits (+1 → 422, nothing written),
//! events, tenancy and the purge of a deleted project's indexes.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use zerodb_tests::on_both_backends;
use zerodb_tests::support::{Backend, TestApp};

fn base(pid: &str) -> String {
    format!("/api/v1/projects/{pid}/database/vectors")
}

fn ids(results: &Value) -> Vec<String> {
    results
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {results}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn stats(app: &TestApp, pid: &str) -> Value {
    let r = app
        .get(&format!("{}/stats", base(pid)), &app.root_key)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn vectors_stored(app: &TestApp, pid: &str) -> i64 {
    let r = app
        .get(&format!("/v1/public/projects/{pid}"), &app.root_key)
        .await;
    r.body["usage"]["vectors_stored"].as_i64().unwrap()
}

/// Four vectors in `docs`: a, b close together; c orthogonal; d opposite a.
async fn four(app: &TestApp, pid: &str) {
    let r = app
        .put(
            &base(pid),
            &app.root_key,
            json!({"namespace": "docs", "items": [
                {"id": "a", "vector": [1.0, 0.0, 0.0, 0.0], "metadata": {"genre": "drama", "year": 2020, "tags": ["x", "y"]}},
                {"id": "b", "vector": [0.9, 0.1, 0.0, 0.0], "metadata": {"genre": "comedy", "year": 2022}},
                {"id": "c", "vector": [0.0, 1.0, 0.0, 0.0], "metadata": {"genre": "drama", "year": 2024}, "document": "the c text"},
                {"id": "d", "vector": [-1.0, 0.0, 0.0, 0.0]},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["upserted_count"], 4);
    assert_eq!(r.body["inserted"], 4);
    assert_eq!(r.body["dimension"], 4);
}

async fn search(app: &TestApp, pid: &str, body: Value) -> Value {
    let r = app
        .post(
            &format!("{}/search", base(pid)),
            &app.root_key,
            body.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{body} → {}", r.body);
    r.body
}

async fn upsert_search_get_update_and_delete(backend: Backend) {
    let app = TestApp::new(backend).await;
    let pid = app.project("vec").await;
    four(&app, &pid).await;
    // Nearest first, with cosine similarity.
    let s = search(
        &app,
        &pid,
        json!({"vector": [1.0, 0.0, 0.0, 0.0], "namespace": "docs", "top_k": 3}),
    )
    .await;
    assert_eq!(ids(&s["results"]), ["a", "b", "c"]);
    let sims: Vec<f64> = s["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["similarity"].as_f64().unwrap())
        .collect();
    assert!(
        (sims[0] - 1.0).abs() < 1e-4 && (sims[2]).abs() < 1e-4,
        "{sims:?}"
    );
    assert_eq!(s["results"][0]["metadata"]["genre"], "drama");
    assert!(s["results"][0].get("values").is_none());
    // Filters use the tables API's operators; lists match by element.
    let f = |filter: Value| json!({"vector": [1.0, 0.0, 0.0, 0.0], "namespace": "docs", "filter": filter});
    assert_eq!(
        ids(&search(&app, &pid, f(json!({"genre": "drama"}))).await["results"]),
        ["a", "c"]
    );
    assert_eq!(
        ids(&search(&app, &pid, f(json!({"year": {"$gte": 2022}}))).await["results"]),
        ["b", "c"]
    );
    assert_eq!(
        ids(&search(
            &app,
            &pid,
            f(json!({"$or": [{"genre": "comedy"}, {"tags": "y"}]}))
        )
        .await["results"]),
        ["a", "b"]
    );
    assert_eq!(
        ids(&search(&app, &pid, f(json!({"genre": {"$in": ["none"]}}))).await["results"]),
        Vec::<String>::new()
    );
    // Values on request; a threshold drops the far ones; documents come back.
    let s = search(&app, &pid, json!({"vector": [0.0, 1.0, 0.0, 0.0], "namespace": "docs", "include_values": true, "threshold": 0.5})).await;
    assert_eq!(ids(&s["results"]), ["c"]);
    assert_eq!(s["results"][0]["values"], json!([0.0, 1.0, 0.0, 0.0]));
    assert_eq!(s["results"][0]["document"], "the c text");
    // Get by ids, in the order asked, missing ones left out.
    let g = app
        .get(
            &format!(
                "{}?ids=c,zz,a&namespace=docs&include_values=true",
                base(&pid)
            ),
            &app.root_key,
        )
        .await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.body);
    assert_eq!(ids(&g.body["vectors"]), ["c", "a"]);
    assert_eq!(g.body["vectors"][1]["values"], json!([1.0, 0.0, 0.0, 0.0]));
    // Without ids: a listing, paged.
    let l = app
        .get(
            &format!("{}?namespace=docs&limit=3", base(&pid)),
            &app.root_key,
        )
        .await;
    assert_eq!(l.body["count"], 3);
    let next = l.body["next_cursor"].as_str().expect("a cursor").to_owned();
    let l2 = app
        .get(
            &format!("{}?namespace=docs&limit=3&cursor={next}", base(&pid)),
            &app.root_key,
        )
        .await;
    let mut all = ids(&l.body["vectors"]);
    all.extend(ids(&l2.body["vectors"]));
    all.sort();
    assert_eq!(all, ["a", "b", "c", "d"]);
    // Metadata merges; null removes a key; the vector and document stay.
    let m = app
        .patch(
            &format!("{}/c/metadata", base(&pid)),
            &app.root_key,
            json!({"namespace": "docs", "metadata": {"year": null, "rating": 5}}),
        )
        .await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.body);
    assert_eq!(m.body["metadata"], json!({"genre": "drama", "rating": 5}));
    assert_eq!(m.body["document"], "the c text");
    assert_eq!(
        ids(&search(&app, &pid, f(json!({"rating": 5}))).await["results"]),
        ["c"]
    );
    let missing = app
        .patch(
            &format!("{}/nope/metadata", base(&pid)),
            &app.root_key,
            json!({"namespace": "docs", "metadata": {}}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // Stats and the project's usage count what is stored; an upsert of an existing id
    // replaces it and is not counted twice.
    assert_eq!(stats(&app, &pid).await["total_vectors"], 4);
    let r = app
        .put(
            &base(&pid),
            &app.root_key,
            json!({"namespace": "docs", "items": [{"id": "a", "vector": [0.0, 0.0, 1.0, 0.0]}]}),
        )
        .await;
    assert_eq!(
        (r.body["inserted"].clone(), r.body["updated"].clone()),
        (json!(0), json!(1))
    );
    let s = stats(&app, &pid).await;
    assert_eq!(s["total_vectors"], 4);
    assert_eq!(s["namespaces"][0]["dimension"], 4);
    assert_eq!(vectors_stored(&app, &pid).await, 4);
    // Deletes: by ids, by filter, all.
    let d = app
        .delete_with(
            &base(&pid),
            &app.root_key,
            json!({"namespace": "docs", "ids": ["a", "zz"]}),
        )
        .await;
    assert_eq!(d.body["deleted_count"], 1, "{}", d.body);
    let d = app
        .delete_with(
            &base(&pid),
            &app.root_key,
            json!({"namespace": "docs", "filter": {"genre": "comedy"}}),
        )
        .await;
    assert_eq!(d.body["deleted_count"], 1, "{}", d.body);
    assert_eq!(stats(&app, &pid).await["total_vectors"], 2);
    assert_eq!(
        ids(&search(
            &app,
            &pid,
            json!({"vector": [1.0, 0.0, 0.0, 0.0], "namespace": "docs"})
        )
        .await["results"]),
        ["c", "d"]
    );
    let d = app
        .delete_with(
            &base(&pid),
            &app.root_key,
            json!({"namespace": "docs", "delete_all": true}),
        )
        .await;
    assert_eq!(d.body["deleted_count"], 2, "{}", d.body);
    assert_eq!(stats(&app, &pid).await["namespace_count"], 0);
    assert_eq!(vectors_stored(&app, &pid).await, 0);
    // An emptied namespace takes vectors of a new size.
    let r = app
        .put(
            &base(&pid),
            &app.root_key,
            json!({"namespace": "docs", "items": [{"vector": [1.0, 2.0]}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["ids"][0].as_str().unwrap().starts_with("vec_"));
}

async fn limits_refuse_with_422_and_write_nothing(backend: Backend) {
    let app = TestApp::with_settings(
        backend,
        &[
            ("ZERODB_VECTOR_NAMESPACES_PER_ACCOUNT", "2"),
            ("ZERODB_VECTORS_PER_PROJECT", "6"),
        ],
    )
    .await;
    let pid = app.project("lim").await;
    four(&app, &pid).await;
    let key = &app.root_key;
    let v = |n: usize| json!(vec![0.5; n]);
    let refused: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::PUT,
            base(&pid),
            json!({"namespace": "docs", "items": (0..1001).map(|_| json!({"vector": [1.0, 0.0, 0.0, 0.0]})).collect::<Vec<_>>()}),
            "1–1000",
        ),
        (
            Method::PUT,
            base(&pid),
            json!({"namespace": "docs", "items": []}),
            "1–1000",
        ),
        (
            Method::PUT,
            base(&pid),
            json!({"namespace": "docs", "items": [{"id": "z", "vector": [1.0, 0.0, 0.0]}]}),
            "holds vectors of 4",
        ),
        (
            Method::PUT,
            base(&pid),
            json!({"namespace": "big", "items": [{"vector": v(4097)}]}),
            "at most 4096",
        ),
        (
            Method::PUT,
            base(&pid),
            json!({"namespace": "docs", "items": [{"vector": [1e39, 0.0, 0.0, 0.0]}]}),
            "finite",
        ),
        (
            Method::PUT,
            base(&pid),
            json!({"namespace": "docs", "items": [{"vector": [1.0, 0.0, 0.0, 0.0], "metadata": {"a": {"b": 1}}}]}),
            "strings, numbers",
        ),
        (
            Method::PUT,
            base(&pid),
            json!({"namespace": "docs", "items": [{"vector": [1.0, 0.0, 0.0, 0.0], "metadata": {"a": "x".repeat(2100)}}]}),
            "2048",
        ),
        (
            Method::PUT,
            base(&pid),
            json!({"namespace": "docs", "items": [{"id": "x".repeat(1025), "vector": [1.0, 0.0, 0.0, 0.0]}]}),
            "1024",
        ),
        (
            Method::PUT,
            base(&pid),
            json!({"namespace": "docs", "items": [{"id": "q", "vector": [1.0, 0.0, 0.0, 0.0]}, {"id": "q", "vector": [1.0, 0.0, 0.0, 0.0]}]}),
            "twice",
        ),
        (
            Method::PUT,
            base(&pid),
            json!({"namespace": "bad ns!", "items": [{"vector": [1.0]}]}),
            "namespace",
        ),
        (
            Method::POST,
            format!("{}/search", base(&pid)),
            json!({"namespace": "docs", "vector": [1.0, 0.0, 0.0, 0.0], "top_k": 101}),
            "1–100",
        ),
        (
            Method::POST,
            format!("{}/search", base(&pid)),
            json!({"namespace": "docs", "vector": [1.0, 0.0]}),
            "holds vectors of 4",
        ),
        (
            Method::POST,
            format!("{}/search", base(&pid)),
            json!({"namespace": "docs", "vector": [1.0, 0.0, 0.0, 0.0], "filter": {"a": {"$near": 1}}}),
            "$near",
        ),
        (
            Method::DELETE,
            base(&pid),
            json!({"namespace": "docs", "ids": (0..501).map(|i| format!("i{i}")).collect::<Vec<_>>()}),
            "1–500",
        ),
        (
            Method::DELETE,
            base(&pid),
            json!({"namespace": "docs"}),
            "exactly one",
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{pid}/embeddings/embed-and-store"),
            json!({"texts": (0..101).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
            "1–100",
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{pid}/embeddings/embed-and-store"),
            json!({"texts": ["é".repeat(16 * 1024 + 1)]}),
            "32768",
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{pid}/embeddings/embed-and-store"),
            json!({"texts": ["a", "b"], "metadata_list": [{}]}),
            "one per text",
        ),
        (
            Method::POST,
            format!("{}/upsert-batch", base(&pid)),
            json!({"vectors": [{"id": "n1", "vector_embedding": [1.0, 0.0], "namespace": "docs"}]}),
            "holds vectors of 4",
        ),
    ];
    for (m, path, body, says) in refused {
        let r = app.call(m.clone(), &path, Some(key), Some(body)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{m} {path}: {}",
            r.body
        );
        assert!(
            r.body.to_string().contains(says),
            "{m} {path}: {} lacks {says:?}",
            r.body
        );
    }
    let g = app
        .get(
            &format!(
                "{}?ids={}&namespace=docs",
                base(&pid),
                (0..101)
                    .map(|i| format!("i{i}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            key,
        )
        .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", g.body);
    // Nothing of any refused call was written.
    assert_eq!(stats(&app, &pid).await["total_vectors"], 4);
    assert_eq!(stats(&app, &pid).await["namespace_count"], 1);
    // An empty filter would delete everything: that is delete_all's job.
    let d = app
        .delete_with(&base(&pid), key, json!({"namespace": "docs", "filter": {}}))
        .await;
    assert_eq!(d.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", d.body);
    // Vectors per project: 4 stored, 2 more fit, a third does not (replacing does).
    let r = app
        .put(&base(&pid), key, json!({"namespace": "docs", "items": [{"id": "e", "vector": [1.0, 1.0, 0.0, 0.0]}, {"id": "f", "vector": [1.0, 1.0, 1.0, 0.0]}]}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .put(
            &base(&pid),
            key,
            json!({"namespace": "docs", "items": [{"id": "g", "vector": [1.0, 1.0, 1.0, 1.0]}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.to_string().contains("limit of 6"), "{}", r.body);
    let r = app
        .put(
            &base(&pid),
            key,
            json!({"namespace": "docs", "items": [{"id": "f", "vector": [0.0, 1.0, 1.0, 0.0]}]}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "a replacement adds nothing: {}",
        r.body
    );
    assert_eq!(stats(&app, &pid).await["total_vectors"], 6);
    app.delete_with(
        &base(&pid),
        key,
        json!({"namespace": "docs", "ids": ["e", "f"]}),
    )
    .await;
    // Namespaces per account (all its projects): the second is made, the third refused.
    let ok = app
        .put(
            &base(&pid),
            key,
            json!({"namespace": "two", "items": [{"vector": [1.0]}]}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let other = app.project("other").await;
    let three = json!({"namespace": "three", "items": [{"vector": [1.0]}]});
    let third = app.put(&base(&other), key, three.clone()).await;
    assert_eq!(
        third.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        third.body
    );
    assert!(
        third.body.to_string().contains("its limit of 2"),
        "{}",
        third.body
    );
    // Deleting a namespace frees its slot.
    let d = app
        .delete_with(
            &base(&pid),
            key,
            json!({"namespace": "two", "delete_all": true}),
        )
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let third = app.put(&base(&other), key, three).await;
    assert_eq!(third.status, StatusCode::OK, "{}", third.body);
    // A batch naming more than 20 namespaces is refused whole.
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"vector_embedding": [1.0], "namespace": format!("n{i}")}))
        .collect();
    let r = app
        .post(
            &format!("{}/upsert-batch", base(&pid)),
            key,
            json!({"vectors": many}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.to_string().contains("at most 20"), "{}", r.body);
    // …and one making more namespaces than the account has room for, before any write.
    let two: Vec<Value> = (0..2)
        .map(|i| json!({"vector_embedding": [1.0], "namespace": format!("m{i}")}))
        .collect();
    let r = app
        .post(
            &format!("{}/upsert-batch", base(&pid)),
            key,
            json!({"vectors": two}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(stats(&app, &pid).await["namespace_count"], 1);
}

async fn seed_batch_upserts_into_each_named_namespace(backend: Backend) {
    let app = TestApp::new(backend).await;
    let pid = app.project("batch").await;
    let r = app
        .post(
            &format!("{}/upsert-batch", base(&pid)),
            &app.root_key,
            json!({"vectors": [
                {"id": "vec-001", "vector_embedding": [0.021, -0.043, 0.118], "namespace": "documents", "metadata": {"source": "upload", "doc_id": "doc-42"}},
                {"id": "vec-002", "vector_embedding": [0.5, 0.5, 0.5], "namespace": "documents"},
                {"id": "vec-003", "vector_embedding": [1.0, 0.0], "namespace": "small"},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["upserted_count"], 3);
    let s = stats(&app, &pid).await;
    assert_eq!(s["total_vectors"], 3);
    let dims: Vec<(String, i64)> = s["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["namespace"].as_str().unwrap().to_owned(),
                n["dimension"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(dims, [("documents".to_owned(), 3), ("small".to_owned(), 2)]);
    let g = app
        .get(
            &format!("{}?ids=vec-001&namespace=documents", base(&pid)),
            &app.root_key,
        )
        .await;
    assert_eq!(
        g.body["vectors"][0]["metadata"],
        json!({"source": "upload", "doc_id": "doc-42"})
    );
    // Two sizes in one namespace of one batch: refused whole.
    let r = app
        .post(
            &format!("{}/upsert-batch", base(&pid)),
            &app.root_key,
            json!({"vectors": [
                {"id": "n1", "vector_embedding": [1.0, 0.0, 0.0], "namespace": "new"},
                {"id": "n2", "vector_embedding": [1.0, 0.0], "namespace": "new"},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(stats(&app, &pid).await["namespace_count"], 2);
}

async fn the_agent_form_and_text_search(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    // No project yet: reads find nothing, and make nothing.
    assert_eq!(
        app.get("/api/v1/public/vectors/stats", key).await.body,
        json!({"count": 0, "dimensions": 0, "namespace": "default"})
    );
    let s = app
        .post(
            "/api/v1/public/vectors/search",
            key,
            json!({"vector": [1.0, 0.0]}),
        )
        .await;
    assert_eq!(s.body, json!([]));
    // Texts embedded and stored (the default project is made by the first write).
    let pid = app.project("agent").await;
    let r = app
        .post(
            &format!("/api/v1/projects/{pid}/embeddings/embed-and-store"),
            key,
            json!({"texts": ["the cat sat on the mat", "stock markets fell sharply today", "a recipe for lemon cake"],
                   "namespace": "default", "metadata_list": [{"topic": "pets"}, {"topic": "finance"}, {"topic": "food"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["vector_ids"].as_array().unwrap().len(), 3);
    assert_eq!(r.body["dimensions"], 384);
    let found = app
        .post(&format!("/api/v1/projects/{pid}/embeddings/search"), key, json!({"query": "markets and stock prices", "limit": 2, "threshold": 0.1, "namespace": "default"}))
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(
        found.body["results"][0]["document"],
        "stock markets fell sharply today"
    );
    assert_eq!(
        found.body["results"][0]["metadata"],
        json!({"topic": "finance"})
    );
    assert!(found.body["results"][0]["similarity"].as_f64().unwrap() > 0.1);
    // Seed 004's form, on the default project (the account's only one).
    let seed = app
        .post(
            "/v1/public/embeddings/search",
            key,
            json!({"query": "lemon cake"}),
        )
        .await;
    assert_eq!(seed.status, StatusCode::OK, "{}", seed.body);
    assert_eq!(
        seed.body["results"][0]["document"],
        "a recipe for lemon cake"
    );
    // The agent's form reaches the same namespace: stats, search by text, by vector.
    let st = app.get("/api/v1/public/vectors/stats", key).await;
    assert_eq!(st.body["count"], 3);
    assert_eq!(st.body["dimensions"], 384);
    let s = app
        .post(
            "/api/v1/public/vectors/search",
            key,
            json!({"query": "cat on a mat", "limit": 1}),
        )
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    assert_eq!(s.body[0]["metadata"], json!({"topic": "pets"}));
    assert!(s.body[0]["score"].as_f64().unwrap() > 0.0);
    let mut v = vec![0.0; 384];
    v[7] = 1.0;
    let put = app
        .put(
            "/api/v1/public/vectors/",
            key,
            json!({"id": "mine", "values": v, "metadata": {"k": "v"}}),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let got = app.get("/api/v1/public/vectors/mine", key).await;
    assert_eq!(got.body["values"].as_array().unwrap().len(), 384);
    assert_eq!(got.body["metadata"], json!({"k": "v"}));
    let s = app
        .post(
            "/api/v1/public/vectors/search",
            key,
            json!({"vector": v, "limit": 1}),
        )
        .await;
    assert_eq!(s.body[0]["id"], "mine");
    assert!((s.body[0]["score"].as_f64().unwrap() - 1.0).abs() < 1e-4);
    let bad = app
        .put(
            "/api/v1/public/vectors/",
            key,
            json!({"id": "short", "values": [1.0, 2.0]}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.delete("/api/v1/public/vectors/mine", key).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/public/vectors/mine", key).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete("/api/v1/public/vectors/mine", key).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/public/vectors/stats", key).await.body["count"],
        3
    );
}

async fn writes_announce_vectors_after_commit(backend: Backend) {
    let app = TestApp::new(backend).await;
    let pid = app.project("ev").await;
    app.drain_events().await;
    app.put(
        &base(&pid),
        &app.root_key,
        json!({"items": [{"id": "one", "vector": [1.0, 0.0]}]}),
    )
    .await;
    app.put(
        &base(&pid),
        &app.root_key,
        json!({"items": [{"vector": [1.0, 0.0]}, {"vector": [0.0, 1.0]}]}),
    )
    .await;
    let events: Vec<Value> = app
        .drain_events()
        .await
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    let one = events
        .iter()
        .find(|e| e["event"] == "zerodb.vector.stored")
        .expect("vector.stored");
    assert_eq!(one["channel"], "zerodb");
    assert_eq!(
        one["data"],
        json!({"vector_id": "one", "project_id": pid, "namespace": "default", "source": "api", "user_id": app.account_id})
    );
    let batch = events
        .iter()
        .find(|e| e["event"] == "zerodb.vector.batch_stored")
        .expect("batch_stored");
    assert_eq!(batch["data"]["count"], 2);
    assert_eq!(batch["data"]["project_id"], pid.as_str());
    assert_eq!(batch["data"]["user_id"], app.account_id.as_str());
}

async fn another_account_reaches_nothing_and_scopes_hold(backend: Backend) {
    let app = TestApp::new(backend).await;
    let pid = app.project("mine").await;
    four(&app, &pid).await;
    let other = app.new_account("other").await;
    let b = base(&pid);
    let reqs: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::PUT,
            b.clone(),
            Some(
                json!({"namespace": "docs", "items": [{"id": "a", "vector": [0.0, 0.0, 0.0, 1.0]}]}),
            ),
        ),
        (
            Method::POST,
            format!("{b}/search"),
            Some(json!({"namespace": "docs", "vector": [1.0, 0.0, 0.0, 0.0]})),
        ),
        (Method::GET, format!("{b}?ids=a&namespace=docs"), None),
        (
            Method::DELETE,
            b.clone(),
            Some(json!({"namespace": "docs", "delete_all": true})),
        ),
        (
            Method::PATCH,
            format!("{b}/a/metadata"),
            Some(json!({"namespace": "docs", "metadata": {"x": 1}})),
        ),
        (Method::GET, format!("{b}/stats"), None),
        (
            Method::POST,
            format!("{b}/upsert-batch"),
            Some(
                json!({"vectors": [{"id": "a", "vector_embedding": [1.0, 0.0, 0.0, 0.0], "namespace": "docs"}]}),
            ),
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{pid}/embeddings/embed-and-store"),
            Some(json!({"texts": ["x"], "namespace": "t"})),
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{pid}/embeddings/search"),
            Some(json!({"query": "x", "namespace": "docs"})),
        ),
    ];
    for (m, path, body) in reqs {
        let r = app.call(m.clone(), &path, Some(&other), body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m} {path}: {}", r.body);
        assert_eq!(r.code(), "PROJECT_NOT_FOUND", "{m} {path}");
    }
    for (m, path) in [
        (Method::GET, "/api/v1/public/vectors/a"),
        (Method::GET, "/api/v1/public/vectors/stats"),
        (Method::DELETE, "/api/v1/public/vectors/a"),
    ] {
        let req = http::Request::builder()
            .method(m.clone())
            .uri(path)
            .header("x-api-key", other.as_str())
            .header("x-project-id", pid.as_str())
            .body(axum::body::Body::empty())
            .unwrap();
        let r = app.send(req).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m} {path}: {}", r.body);
    }
    // The other account's own default project is another namespace altogether.
    let theirs = app
        .post(
            "/api/v1/public/vectors/search",
            &other,
            json!({"vector": [1.0, 0.0, 0.0, 0.0]}),
        )
        .await;
    assert_eq!(theirs.body, json!([]));
    // Everything is still there, unchanged, for the owner.
    let s = search(
        &app,
        &pid,
        json!({"vector": [1.0, 0.0, 0.0, 0.0], "namespace": "docs", "top_k": 1}),
    )
    .await;
    assert_eq!(ids(&s["results"]), ["a"]);
    assert_eq!(s["results"][0]["metadata"]["genre"], "drama");
    // Scopes: a reader searches and cannot write; a memory key reaches no vectors.
    let (_, reader) = app.create_key(&["zerodb:read"], None).await;
    let (_, memory) = app.create_key(&["memory:read", "memory:write"], None).await;
    let r = app
        .post(
            &format!("{b}/search"),
            &reader,
            json!({"namespace": "docs", "vector": [1.0, 0.0, 0.0, 0.0]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let w = app
        .put(
            &b,
            &reader,
            json!({"namespace": "docs", "items": [{"vector": [1.0, 0.0, 0.0, 0.0]}]}),
        )
        .await;
    assert_eq!(w.status, StatusCode::FORBIDDEN, "{}", w.body);
    let m = app.get(&format!("{b}/stats"), &memory).await;
    assert_eq!(m.status, StatusCode::FORBIDDEN, "{}", m.body);
    assert_eq!(stats(&app, &pid).await["total_vectors"], 4);
}

async fn a_deleted_projects_indexes_are_purged(backend: Backend) {
    let app = TestApp::new(backend).await;
    let pid = app.project("gone").await;
    four(&app, &pid).await;
    let index = app
        .stores
        .table
        .get(&zerodb_domain::keys::vector_namespace(&pid, "docs"))
        .await
        .unwrap()
        .unwrap()["index"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        app.stores
            .vectors
            .get_index(&index)
            .await
            .unwrap()
            .is_some()
    );
    let d = app
        .delete(&format!("/api/v1/projects/{pid}"), &app.root_key)
        .await;
    assert!(d.status.is_success(), "{}", d.body);
    let gone = app
        .get(&format!("{}/stats", base(&pid)), &app.root_key)
        .await;
    assert_eq!(
        gone.status,
        StatusCode::NOT_FOUND,
        "a deleted project is not found"
    );
    app.run_worker().await;
    assert!(
        app.stores
            .vectors
            .get_index(&index)
            .await
            .unwrap()
            .is_none(),
        "the index is deleted"
    );
}

async fn a_namespace_deleted_halfway_is_finished_by_the_next_write(backend: Backend) {
    use zerodb_domain::store::{Update, Value as V};
    let app = TestApp::new(backend).await;
    let pid = app.project("half").await;
    four(&app, &pid).await;
    let key = zerodb_domain::keys::vector_namespace(&pid, "docs");
    let old_index = app.stores.table.get(&key).await.unwrap().unwrap()["index"]
        .as_str()
        .unwrap()
        .to_owned();
    // A delete_all that marked the namespace and stopped (its index delete failed).
    app.stores
        .table
        .update(
            &key,
            vec![Update::Set("deleting".into(), V::Bool(true))],
            None,
        )
        .await
        .unwrap();
    // Reads see nothing; the vectors are not counted as stored.
    let s = search(
        &app,
        &pid,
        json!({"vector": [1.0, 0.0, 0.0, 0.0], "namespace": "docs"}),
    )
    .await;
    assert_eq!(s["results"], json!([]));
    assert_eq!(stats(&app, &pid).await["namespace_count"], 0);
    // The next write finishes the deletion, then makes a new namespace (a new index,
    // so nothing of the old one comes back), of a new size.
    let r = app
        .put(
            &base(&pid),
            &app.root_key,
            json!({"namespace": "docs", "items": [{"id": "a", "vector": [1.0, 2.0]}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["inserted"], 1);
    assert!(
        app.stores
            .vectors
            .get_index(&old_index)
            .await
            .unwrap()
            .is_none()
    );
    let new_index = app.stores.table.get(&key).await.unwrap().unwrap()["index"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_index, old_index);
    let g = app
        .get(
            &format!("{}?ids=a,b,c&namespace=docs", base(&pid)),
            &app.root_key,
        )
        .await;
    assert_eq!(ids(&g.body["vectors"]), ["a"]);
    assert_eq!(stats(&app, &pid).await["total_vectors"], 1);
    assert_eq!(vectors_stored(&app, &pid).await, 1);
    // A delete of the agent's form never makes a project; a write-only key may not read
    // a vector back through the metadata route.
    let other = app.new_account("none").await;
    let r = app.delete("/api/v1/public/vectors/x", &other).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let listed = app.get("/api/v1/projects", &other).await;
    assert!(
        listed.body.to_string().contains("\"total\":0"),
        "{}",
        listed.body
    );
    let (_, writer) = app.create_key(&["zerodb:write"], None).await;
    let r = app
        .patch(
            &format!("{}/a/metadata", base(&pid)),
            &writer,
            json!({"namespace": "docs", "metadata": {}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
}

async fn answers_stay_under_five_mib(backend: Backend) {
    // 200 vectors of 4,096 dimensions with 30 KB documents: ~17 MB with values.
    let app = TestApp::new(backend).await;
    let pid = app.project("big").await;
    let doc = "d".repeat(30_000);
    let items: Vec<Value> = (0..200)
        .map(|i| {
            let mut v = vec![0.001f32; 4096];
            v[i % 4096] = 1.0;
            json!({"id": format!("v{i:03}"), "vector": v, "document": doc})
        })
        .collect();
    for chunk in items.chunks(50) {
        let r = app
            .put(
                &base(&pid),
                &app.root_key,
                json!({"namespace": "big", "items": chunk}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    // A listing with values pages by size, and its cursor goes on where it stopped.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = format!(
            "{}?namespace=big&limit=1000&include_values=true",
            base(&pid)
        );
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&url, &app.root_key).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(
            r.raw.len() <= 5 * 1024 * 1024 + 4096,
            "{} bytes",
            r.raw.len()
        );
        seen.extend(ids(&r.body["vectors"]));
        pages += 1;
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert!(pages > 2, "{pages} pages");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 200, "every vector once");
    // A search with values is cut to fit, and says so.
    let mut q = vec![0.001f32; 4096];
    q[0] = 1.0;
    let s = search(
        &app,
        &pid,
        json!({"vector": q, "namespace": "big", "top_k": 100, "include_values": true}),
    )
    .await;
    assert_eq!(s["truncated"], true);
    assert!(s["results"].as_array().unwrap().len() < 100);
    assert_eq!(s["results"][0]["id"], "v000");
    // By ids: refused with a message that says how to ask.
    let all: Vec<String> = (0..100).map(|i| format!("v{i:03}")).collect();
    let g = app
        .get(
            &format!("{}?namespace=big&ids={}", base(&pid), all.join(",")),
            &app.root_key,
        )
        .await;
    assert_eq!(g.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", g.body);
    assert!(g.body.to_string().contains("include_values=false"));
}

on_both_backends!(
    upsert_search_get_update_and_delete,
    limits_refuse_with_422_and_write_nothing,
    seed_batch_upserts_into_each_named_namespace,
    the_agent_form_and_text_search,
    writes_announce_vectors_after_commit,
    another_account_reaches_nothing_and_scopes_hold,
    a_deleted_projects_indexes_are_purged,
    a_namespace_deleted_halfway_is_finished_by_the_next_write,
    answers_stay_under_five_mib,
);
