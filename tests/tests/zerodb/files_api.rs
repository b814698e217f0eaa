//! A project's files on both storage backends: inline upload, metadata, download, list by
//! prefix a page at a time, delete (record, bytes and counters); uploads through an
//! upload URL (this server's signed URL on the embedded store, S3's presigned URL on
//! moto) and downloads through one; expired and altered URLs refused; every size limit
//! +1 → 413/422 with nothing written; scopes, another account, a suspended project;
//! `zerodb.file.uploaded`; the project's usage; ainative-agent's `/public/files/` form;
//! the storage calls each route makes; and the files-api Lambda binary on moto.

use base64::Engine;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use zerodb_tests::on_both_backends;
use zerodb_tests::support::{Backend, Reply, TestApp};

fn files(pid: &str) -> String {
    format!("/api/v1/projects/{pid}/database/files")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `n` bytes that are not all the same.
fn content(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn upload(app: &TestApp, pid: &str, name: &str, bytes: &[u8]) -> Value {
    let r = app
        .post(
            &files(pid),
            &app.root_key,
            json!({"file_name": name, "content_base64": b64(bytes), "content_type": "text/plain", "metadata": {"k": name}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn usage(app: &TestApp, pid: &str) -> Value {
    let r = app
        .get(&format!("/v1/public/projects/{pid}"), &app.root_key)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["usage"].clone()
}

/// Sends raw bytes (or nothing) to a URL: this server's own through the router, anything
/// else (S3's, on moto) over HTTP.
async fn fetch(
    app: &TestApp,
    method: Method,
    url: &str,
    body: Option<Vec<u8>>,
) -> (StatusCode, Vec<u8>) {
    if let Some(path) = url.strip_prefix("http://localhost") {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(axum::body::Body::from(body.unwrap_or_default()))
            .unwrap();
        let r = app.send(req).await;
        return (r.status, r.raw);
    }
    fetch_url(method, url, body).await
}

/// Sends raw bytes (or nothing) to a URL over HTTP.
async fn fetch_url(method: Method, url: &str, body: Option<Vec<u8>>) -> (StatusCode, Vec<u8>) {
    let client = reqwest::Client::new();
    let mut req = client.request(
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
        url,
    );
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = req.send().await.expect("send to the presigned URL");
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    (status, resp.bytes().await.unwrap().to_vec())
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn files_round_trip_and_list_by_prefix_a_page_at_a_time(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = app.project("files").await;
    let a = content(10_000, 1);
    let up = upload(&app, &pid, "docs/a.txt", &a).await;
    for (field, want) in [
        ("name", json!("docs/a.txt")),
        ("file_name", json!("docs/a.txt")),
        ("size", json!(10_000)),
        ("size_bytes", json!(10_000)),
        ("content_type", json!("text/plain")),
        ("status", json!("stored")),
        ("metadata", json!({"k": "docs/a.txt"})),
        ("project_id", json!(pid)),
    ] {
        assert_eq!(up[field], want, "{field}: {up}");
    }
    assert_eq!(
        up["checksum"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&a))
    );
    assert!(up["created_at"].as_str().unwrap().ends_with('Z'));
    let id = up["id"].as_str().unwrap().to_owned();
    upload(&app, &pid, "docs/b.txt", &content(5_000, 2)).await;
    upload(&app, &pid, "img/c.png", &content(5_000, 3)).await;

    let meta = app.get(&format!("{}/{id}", files(&pid)), key).await;
    assert_eq!(meta.status, StatusCode::OK);
    assert_eq!(meta.body, up);
    let dl = app
        .get(&format!("{}/{id}/download", files(&pid)), key)
        .await;
    assert_eq!(dl.status, StatusCode::OK);
    assert_eq!(dl.raw, a);
    assert_eq!(dl.headers["content-type"], "text/plain");
    assert_eq!(dl.headers["x-content-type-options"], "nosniff");
    assert!(
        dl.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"a.txt\"")
    );

    // By prefix, one at a time: every page but the last hands on a cursor.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let q = match &cursor {
            Some(c) => format!("?prefix=docs/&limit=1&cursor={c}"),
            None => "?prefix=docs/&limit=1".into(),
        };
        let page = app.get(&format!("{}{q}", files(&pid)), key).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        seen.extend(names(&page.body["files"]));
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["docs/a.txt", "docs/b.txt"]);
    // A cursor goes on only where it came from: another prefix or project is a 422.
    let first = app
        .get(&format!("{}?prefix=docs/&limit=1", files(&pid)), key)
        .await;
    let c = first.body["next_cursor"].as_str().unwrap().to_owned();
    let elsewhere = app.project("elsewhere").await;
    for path in [
        format!("{}?prefix=img/&cursor={c}", files(&pid)),
        format!("{}?cursor={c}", files(&elsewhere)),
    ] {
        let r = app.get(&path, key).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            r.body
        );
    }
    let all = app.get(&files(&pid), key).await;
    assert_eq!(
        names(&all.body["files"]),
        ["docs/a.txt", "docs/b.txt", "img/c.png"]
    );
    assert_eq!(all.body["count"], 3);
    let none = app.get(&format!("{}?prefix=zzz", files(&pid)), key).await;
    assert_eq!(none.body["files"], json!([]));

    let u = usage(&app, &pid).await;
    assert_eq!(u["files_stored"], 3);
    assert_eq!(u["storage_bytes"], 20_000);
    assert!(u["storage_mb"].as_f64().unwrap() >= 0.019, "{u}");

    // Delete: the record, the bytes, the counters.
    let d = app.delete(&format!("{}/{id}", files(&pid)), key).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    assert_eq!(d.body["deleted"], true);
    for path in [
        format!("{}/{id}", files(&pid)),
        format!("{}/{id}/download", files(&pid)),
    ] {
        let r = app.get(&path, key).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.code(), "FILE_NOT_FOUND");
    }
    assert_eq!(
        app.delete(&format!("{}/{id}", files(&pid)), key)
            .await
            .code(),
        "FILE_NOT_FOUND"
    );
    let blob = zerodb_projects::files::blob_key(&pid, &id);
    assert!(
        app.stores.blobs.head(&blob).await.unwrap().is_none(),
        "the bytes are gone"
    );
    let u = usage(&app, &pid).await;
    assert_eq!(u["files_stored"], 2);
    assert_eq!(u["storage_bytes"], 10_000);
    assert_eq!(
        names(&app.get(&files(&pid), key).await.body["files"]),
        ["docs/b.txt", "img/c.png"]
    );
    // Ids that are not ours name no file.
    for bad in ["..%2F..%2Fx", "a%20b", &"x".repeat(65)] {
        let r = app.get(&format!("{}/{bad}", files(&pid)), key).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}: {}", r.body);
    }
}

/// ainative-agent's form: register `{name, content_type, size}`, get the URL (a PUT while
/// pending), PUT the bytes, then metadata, JSON download, list (a bare array), delete.
async fn the_agent_form_registers_then_uploads_to_its_url(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let bytes = content(3_000, 7);
    let r = app
        .post(
            "/api/v1/public/files/",
            key,
            json!({"name": "notes/n1.md", "content_type": "text/markdown", "size": 3000}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["size"], 0);
    assert_eq!(r.body["checksum"], "", "no null strings");
    let dl = app
        .get(&format!("/api/v1/public/files/{id}/download"), key)
        .await;
    assert_eq!(dl.status, StatusCode::CONFLICT);
    assert_eq!(dl.code(), "FILE_NOT_UPLOADED");

    let u = app
        .get(
            &format!("/api/v1/public/files/{id}/url?expires_in=600"),
            key,
        )
        .await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.body);
    assert_eq!(u.body["method"], "PUT");
    assert_eq!(u.body["expires_in"], 600);
    let put_url = u.body["url"].as_str().unwrap().to_owned();
    match backend {
        Backend::Embedded => assert!(
            put_url.starts_with("http://localhost/api/v1/public/files/signed/"),
            "{put_url}"
        ),
        Backend::Aws => assert!(
            put_url.contains("X-Amz-Signature="),
            "S3's presigned URL: {put_url}"
        ),
    }
    let (status, _) = fetch(&app, Method::PUT, &put_url, Some(bytes.clone())).await;
    assert_eq!(status, StatusCode::OK);

    // Reading the file sees the bytes arrived (on S3, by looking).
    let meta = app.get(&format!("/api/v1/public/files/{id}"), key).await;
    assert_eq!(meta.body["status"], "stored", "{}", meta.body);
    assert_eq!(meta.body["size"], 3000);
    let dl = app
        .get(&format!("/api/v1/public/files/{id}/download"), key)
        .await;
    assert_eq!(dl.status, StatusCode::OK, "{}", dl.body);
    assert_eq!(dl.body["content_base64"], b64(&bytes));
    assert_eq!(dl.body["inline"], true);
    assert_eq!(dl.body["name"], "notes/n1.md");
    // And its URL is now a download.
    let u = app
        .get(&format!("/api/v1/public/files/{id}/url"), key)
        .await;
    assert_eq!(u.body["method"], "GET");
    let (status, got) = fetch(&app, Method::GET, u.body["url"].as_str().unwrap(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, bytes);

    let inline = app
        .post(
            "/api/v1/public/files/",
            key,
            json!({"name": "notes/n2.md", "content_base64": b64(b"hello")}),
        )
        .await;
    assert_eq!(inline.status, StatusCode::CREATED, "{}", inline.body);
    assert_eq!(inline.body["status"], "stored");
    assert_eq!(inline.body["content_type"], "application/octet-stream");
    let list = app
        .get("/api/v1/public/files/?prefix=notes/&limit=10", key)
        .await;
    assert_eq!(names(&list.body), ["notes/n1.md", "notes/n2.md"]);
    let page = app.get("/api/v1/public/files/?limit=1", key).await;
    assert_eq!(names(&page.body).len(), 1);
    let next = page.headers["x-next-cursor"].to_str().unwrap().to_owned();
    let rest = app
        .get(&format!("/api/v1/public/files/?limit=5&cursor={next}"), key)
        .await;
    assert_eq!(names(&rest.body), ["notes/n2.md"]);

    // The same files through the project form, in the default project.
    let projects = app.get("/v1/public/projects", key).await;
    let pid = projects.body["items"][0]["id"].as_str().unwrap().to_owned();
    let mine = app.get(&files(&pid), key).await;
    assert_eq!(mine.body["count"], 2);
    let d = app.delete(&format!("/api/v1/public/files/{id}"), key).await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.body["deleted"], true);
    assert_eq!(
        names(&app.get("/api/v1/public/files/", key).await.body),
        ["notes/n2.md"]
    );
    assert_eq!(usage(&app, &pid).await["files_stored"], 1);
}

/// The project form's upload URL, and this server's own signed URLs refusing what their
/// signature does not allow (the embedded store cannot presign).
async fn upload_urls_take_the_declared_bytes_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = app.project("big").await;
    let bytes = content(2_000, 9);
    let t = app
        .post(
            &format!("{}/upload-url", files(&pid)),
            key,
            json!({"file_name": "big.bin", "size_bytes": 2000, "expires_in": 300}),
        )
        .await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
    assert_eq!(t.body["method"], "PUT");
    assert_eq!(t.body["max_size_bytes"], 2000);
    let id = t.body["file_id"].as_str().unwrap().to_owned();
    let url = t.body["upload_url"].as_str().unwrap().to_owned();
    let r = app
        .post(&format!("{}/{id}/complete", files(&pid)), key, json!({}))
        .await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "nothing uploaded yet: {}",
        r.body
    );
    assert_eq!(r.code(), "FILE_NOT_UPLOADED");
    app.drain_events().await;

    if backend == Backend::Embedded {
        let token = url.rsplit('/').next().unwrap().to_owned();
        let signed = |t: &str| format!("http://localhost/api/v1/public/files/signed/{t}");
        // Altered: a payload with another file, or a changed signature.
        let (payload, mac) = token.split_once('.').unwrap();
        let mut other = mac.as_bytes().to_vec();
        other[3] = if other[3] == b'A' { b'B' } else { b'A' };
        let forged = format!("{payload}.{}", String::from_utf8(other).unwrap());
        for bad in [
            forged.as_str(),
            "nonsense",
            &format!(
                "{}.{mac}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"1|a|b|c|PUT|99999999999")
            ),
        ] {
            let r = app
                .send(
                    Request::put(signed(bad).strip_prefix("http://localhost").unwrap())
                        .body(axum::body::Body::from(bytes.clone()))
                        .unwrap(),
                )
                .await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{bad}: {}", r.body);
            assert_eq!(r.code(), "SIGNED_URL_INVALID");
        }
        // A PUT URL does not download.
        let (status, _) = fetch(&app, Method::GET, &url, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // Not the declared size: 422, nothing stored.
        let r = app
            .send(
                Request::put(url.strip_prefix("http://localhost").unwrap())
                    .body(axum::body::Body::from(vec![1u8; 1999]))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(
            app.get(&format!("{}/{id}", files(&pid)), key).await.body["status"],
            "pending"
        );
        // Expired.
        app.clock.advance_secs(301);
        let (status, body) = fetch(&app, Method::PUT, &url, Some(bytes.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(String::from_utf8_lossy(&body).contains("SIGNED_URL_EXPIRED"));
        let fresh = app.get(&format!("{}/{id}/url", files(&pid)), key).await;
        assert_eq!(fresh.body["method"], "PUT");
        let url = fresh.body["url"].as_str().unwrap().to_owned();
        let (status, body) = fetch(&app, Method::PUT, &url, Some(bytes.clone())).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        // Once.
        let (status, body) = fetch(&app, Method::PUT, &url, Some(bytes.clone())).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(String::from_utf8_lossy(&body).contains("FILE_ALREADY_UPLOADED"));
    } else {
        // The declared size is signed: S3 takes a body of that length only.
        assert!(
            url.to_ascii_lowercase()
                .contains("x-amz-signedheaders=content-length%3bhost"),
            "{url}"
        );
        let (status, _) = fetch(&app, Method::PUT, &url, Some(bytes.clone())).await;
        assert_eq!(status, StatusCode::OK);
        let r = app
            .post(&format!("{}/{id}/complete", files(&pid)), key, json!({}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["status"], "stored");
        // Completing again changes nothing.
        let again = app
            .post(&format!("{}/{id}/complete", files(&pid)), key, json!({}))
            .await;
        assert_eq!(again.body, r.body);
    }
    let meta = app.get(&format!("{}/{id}", files(&pid)), key).await;
    assert_eq!(meta.body["status"], "stored");
    assert_eq!(meta.body["size"], 2000);
    let dl = app
        .get(&format!("{}/{id}/download", files(&pid)), key)
        .await;
    assert_eq!(dl.raw, bytes);
    let u = usage(&app, &pid).await;
    assert_eq!(u["files_stored"], 1);
    assert_eq!(u["storage_bytes"], 2000);
    // Announced once.
    let uploaded: Vec<Value> = app
        .drain_events()
        .await
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap())
        .filter(|e| e["event"] == "zerodb.file.uploaded")
        .collect();
    assert_eq!(uploaded.len(), 1, "{uploaded:?}");
    assert_eq!(uploaded[0]["data"]["file_id"], id);
    assert_eq!(uploaded[0]["data"]["size_bytes"], 2000);
}

/// Files larger than a Lambda response: the project form's download redirects to S3, the
/// agent form's JSON download carries a URL instead of the bytes.
async fn large_downloads_go_by_url(backend: Backend) {
    let app = TestApp::with_settings(backend, &[("ZERODB_FILE_INLINE_MAX_BYTES", "1000")]).await;
    let key = &app.root_key;
    let pid = app.project("large").await;
    let bytes = content(1_500, 4);
    let t = app
        .post(
            &format!("{}/upload-url", files(&pid)),
            key,
            json!({"file_name": "l.bin"}),
        )
        .await;
    let id = t.body["file_id"].as_str().unwrap().to_owned();
    let (status, _) = fetch(
        &app,
        Method::PUT,
        t.body["upload_url"].as_str().unwrap(),
        Some(bytes.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // The account's first project is its default one, which the agent form acts on.
    let r = app
        .get(&format!("/api/v1/public/files/{id}/download"), key)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["inline"], false);
    assert_eq!(r.body["content_base64"], "");
    let (status, got) = fetch(&app, Method::GET, r.body["url"].as_str().unwrap(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, bytes);
    let dl = app
        .get(&format!("{}/{id}/download", files(&pid)), key)
        .await;
    match backend {
        // zerodb-local has no response limit: the bytes come as they are.
        Backend::Embedded => assert_eq!(dl.raw, bytes),
        Backend::Aws => {
            assert_eq!(dl.status, StatusCode::TEMPORARY_REDIRECT);
            let (status, got) = fetch(
                &app,
                Method::GET,
                dl.headers["location"].to_str().unwrap(),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(got, bytes);
        }
    }
}

fn assert_refused(r: &Reply, status: StatusCode, mentions: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let text = r.body.to_string();
    assert!(text.contains(mentions), "names {mentions}: {text}");
}

async fn limits_plus_one_are_refused_and_write_nothing(backend: Backend) {
    let app = TestApp::with_settings(
        backend,
        &[
            ("ZERODB_FILE_INLINE_MAX_BYTES", "1000"),
            ("ZERODB_FILE_MAX_BYTES", "5000"),
            ("ZERODB_FILE_NAME_MAX_BYTES", "50"),
        ],
    )
    .await;
    let key = &app.root_key;
    let pid = app.project("limits").await;
    let post = |body: Value| {
        let path = files(&pid);
        let app = &app;
        async move { app.post(&path, &app.root_key, body).await }
    };
    upload(&app, &pid, "ok", &content(1000, 0)).await;
    let r = post(json!({"file_name": "over", "content_base64": b64(&content(1001, 0))})).await;
    assert_refused(&r, StatusCode::PAYLOAD_TOO_LARGE, "1000 bytes");
    assert_eq!(r.code(), "FILE_TOO_LARGE");
    let r = post(json!({"file_name": "n".repeat(51), "content_base64": b64(b"x")})).await;
    assert_refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "the limit is 50");
    assert_eq!(r.body["detail"][0]["loc"], json!(["body", "file_name"]));
    let r = post(json!({"file_name": "m", "content_base64": b64(b"x"), "metadata": {"k": "v".repeat(16 * 1024)}})).await;
    assert_refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "16384");
    let r = post(json!({"file_name": "c", "content_base64": b64(b"abc"), "checksum": "00"})).await;
    assert_refused(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "checksum does not match",
    );
    let r = post(json!({"file_name": "b", "content_base64": "***"})).await;
    assert_refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "not base64");
    let r = post(json!({"file_name": "t", "content_base64": "", "content_type": "nonsense"})).await;
    assert_refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "MIME type");
    let r = post(json!({"content_base64": ""})).await;
    assert_eq!(r.body["detail"][0]["loc"], json!(["body", "file_name"]));
    let url = format!("{}/upload-url", files(&pid));
    let r = app
        .post(&url, key, json!({"file_name": "big", "size_bytes": 5001}))
        .await;
    assert_refused(&r, StatusCode::PAYLOAD_TOO_LARGE, "5000 bytes");
    let r = app
        .post(
            "/api/v1/public/files/",
            key,
            json!({"name": "big", "size": 5001}),
        )
        .await;
    assert_refused(&r, StatusCode::PAYLOAD_TOO_LARGE, "5000 bytes");
    let r = app
        .post(&url, key, json!({"file_name": "neg", "size_bytes": -1}))
        .await;
    assert_refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "size");
    for e in [0, 604_801] {
        let r = app
            .post(&url, key, json!({"file_name": "e", "expires_in": e}))
            .await;
        assert_refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "expires_in");
    }
    for q in ["limit=0", "limit=1001", "limit=x", "cursor=garbage"] {
        let r = app.get(&format!("{}?{q}", files(&pid)), key).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{q}: {}",
            r.body
        );
    }
    // An upload URL with no declared size takes up to the limit, and no more.
    let t = app.post(&url, key, json!({"file_name": "open"})).await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
    assert_eq!(t.body["max_size_bytes"], 5000);
    let id = t.body["file_id"].as_str().unwrap().to_owned();
    let put_url = t.body["upload_url"].as_str().unwrap().to_owned();
    let (status, body) = fetch(&app, Method::PUT, &put_url, Some(content(5001, 0))).await;
    match backend {
        Backend::Embedded => {
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
            assert!(String::from_utf8_lossy(&body).contains("5000 bytes"));
        }
        Backend::Aws => {
            // S3 cannot bound an unsized presigned PUT: the bytes are refused (and
            // deleted) when they are seen.
            assert_eq!(status, StatusCode::OK);
            let r = app
                .post(&format!("{}/{id}/complete", files(&pid)), key, json!({}))
                .await;
            assert_refused(&r, StatusCode::PAYLOAD_TOO_LARGE, "5000 bytes");
        }
    }
    let blob = zerodb_projects::files::blob_key(&pid, &id);
    assert!(
        app.stores.blobs.head(&blob).await.unwrap().is_none(),
        "nothing kept"
    );
    assert_eq!(
        app.get(&format!("{}/{id}", files(&pid)), key).await.body["status"],
        "pending"
    );
    let (status, _) = fetch(&app, Method::PUT, &put_url, Some(content(5000, 0))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.get(&format!("{}/{id}", files(&pid)), key).await.body["size"],
        5000
    );
    // Only what was accepted was written.
    let all = app.get(&files(&pid), key).await;
    assert_eq!(names(&all.body["files"]), ["ok", "open"]);
    let u = usage(&app, &pid).await;
    assert_eq!(u["files_stored"], 2);
    assert_eq!(u["storage_bytes"], 6000);
}

async fn scopes_tenancy_and_suspension_decide_who_may_do_what(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = app.project("guarded").await;
    let up = upload(&app, &pid, "secret.txt", b"top secret").await;
    let id = up["id"].as_str().unwrap().to_owned();
    let f = files(&pid);

    // Scopes: a reader reads and cannot write; zerodb scopes do not reach files.
    let (_, reader) = app.create_key(&["file:read"], None).await;
    let (_, database) = app.create_key(&["zerodb:read", "zerodb:write"], None).await;
    assert_eq!(
        app.get(&format!("{f}/{id}/download"), &reader).await.raw,
        b"top secret"
    );
    let r = app
        .post(&f, &reader, json!({"file_name": "x", "content_base64": ""}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "PERM_001");
    assert_eq!(
        app.delete(&format!("{f}/{id}"), &reader).await.code(),
        "PERM_001"
    );
    for path in [
        f.clone(),
        format!("{f}/{id}"),
        format!("{f}/{id}/download"),
        "/api/v1/public/files/".into(),
    ] {
        let r = app.get(&path, &database).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(r.code(), "PERM_001");
    }

    // Another account: the project is not found, nor the file by its id, nor in a list.
    let other = app.new_account("other").await;
    // B has a project of its own (a read never makes one).
    let r = app
        .post("/api/v1/projects", &other, json!({"name": "b's"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let reqs: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, f.clone(), None),
        (
            Method::POST,
            f.clone(),
            Some(json!({"file_name": "x", "content_base64": ""})),
        ),
        (Method::GET, format!("{f}/{id}"), None),
        (Method::GET, format!("{f}/{id}/download"), None),
        (Method::GET, format!("{f}/{id}/url"), None),
        (Method::POST, format!("{f}/{id}/complete"), None),
        (Method::DELETE, format!("{f}/{id}"), None),
        (
            Method::POST,
            format!("{f}/upload-url"),
            Some(json!({"file_name": "x"})),
        ),
    ];
    for (m, path, body) in reqs {
        let r = app.call(m.clone(), &path, Some(&other), body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m} {path}: {}", r.body);
        assert_eq!(r.code(), "PROJECT_NOT_FOUND");
    }
    for path in [
        format!("/api/v1/public/files/{id}"),
        format!("/api/v1/public/files/{id}/download"),
    ] {
        let r = app.get(&path, &other).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            r.code(),
            "FILE_NOT_FOUND",
            "B's own default project has no such file"
        );
        let req = Request::get(path.as_str())
            .header("x-api-key", other.as_str())
            .header("x-project-id", pid.as_str())
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(app.send(req).await.code(), "PROJECT_NOT_FOUND");
    }
    assert_eq!(
        app.get("/api/v1/public/files/", &other).await.body,
        json!([])
    );
    assert_eq!(
        app.get(&format!("{f}/{id}"), key).await.status,
        StatusCode::OK,
        "still there"
    );

    // Suspended: reads go on, writes stop (an upload URL issued before too).
    let pending = app
        .post(
            &format!("{f}/upload-url"),
            key,
            json!({"file_name": "later"}),
        )
        .await;
    let put_url = pending.body["upload_url"].as_str().unwrap().to_owned();
    let r = app
        .put(
            &format!("/api/v1/projects/{pid}/status"),
            key,
            json!({"status": "suspended"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .post(&f, key, json!({"file_name": "x", "content_base64": ""}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "PROJECT_SUSPENDED");
    assert_eq!(
        app.post(&format!("{f}/upload-url"), key, json!({"file_name": "y"}))
            .await
            .code(),
        "PROJECT_SUSPENDED"
    );
    assert_eq!(
        app.delete(&format!("{f}/{id}"), key).await.code(),
        "PROJECT_SUSPENDED"
    );
    if backend == Backend::Embedded {
        let (status, body) = fetch(&app, Method::PUT, &put_url, Some(b"late".to_vec())).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(String::from_utf8_lossy(&body).contains("PROJECT_SUSPENDED"));
    }
    assert_eq!(
        app.get(&format!("{f}/{id}/download"), key).await.raw,
        b"top secret"
    );
    assert_eq!(
        names(&app.get(&f, key).await.body["files"]),
        ["later", "secret.txt"]
    );
    let u = app.get(&format!("{f}/{id}/url"), key).await;
    assert_eq!(u.status, StatusCode::OK, "a download URL is a read");
}

async fn uploads_announce_zerodb_file_uploaded(backend: Backend) {
    let app = TestApp::new(backend).await;
    let pid = app.project("ev").await;
    app.drain_events().await;
    let up = upload(&app, &pid, "e.txt", b"12345").await;
    let events: Vec<Value> = app
        .drain_events()
        .await
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    let uploaded: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "zerodb.file.uploaded")
        .collect();
    assert_eq!(uploaded.len(), 1);
    assert_eq!(uploaded[0]["channel"], "zerodb");
    assert_eq!(
        uploaded[0]["data"],
        json!({"file_id": up["id"], "project_id": pid, "file_name": "e.txt", "content_type": "text/plain",
               "size_bytes": 5, "user_id": app.account_id})
    );
    // Registering (no bytes yet) and deleting announce nothing of the kind.
    app.post(
        &format!("{}/upload-url", files(&pid)),
        &app.root_key,
        json!({"file_name": "p"}),
    )
    .await;
    app.delete(
        &format!("{}/{}", files(&pid), up["id"].as_str().unwrap()),
        &app.root_key,
    )
    .await;
    assert!(
        !app.drain_events()
            .await
            .iter()
            .any(|b| b.contains("zerodb.file.uploaded"))
    );
}

/// A name is the name index's sort key: up to DynamoDB's 1,024 bytes of it, any script.
async fn names_up_to_the_key_limit_are_stored_and_listed(backend: Backend) {
    let app = TestApp::new(backend).await;
    let pid = app.project("names").await;
    let longest = format!("ü/{}", "ü".repeat(510)) + "x";
    assert_eq!(longest.len(), 1024);
    let up = upload(&app, &pid, &longest, b"abc").await;
    assert_eq!(up["name"], longest.as_str());
    let list = app
        .get(&format!("{}?prefix=%C3%BC/", files(&pid)), &app.root_key)
        .await;
    assert_eq!(names(&list.body["files"]), [longest.as_str()]);
    let r = app
        .post(
            &files(&pid),
            &app.root_key,
            json!({"file_name": format!("{longest}y"), "content_base64": ""}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.to_string().contains("the limit is 1024"));
}

/// An upload URL can be used again until it expires (S3 cannot revoke one): bytes that
/// are no longer the record's are never read into memory or served, an upload URL lives
/// an hour at most, a used one is refused before its body is read, and names that could
/// show as another are refused.
async fn replaced_bytes_are_not_served_and_upload_urls_are_short_lived(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = &app.root_key;
    let pid = app.project("replaced").await;
    let f = upload(&app, &pid, "a.txt", b"hello").await;
    let id = f["id"].as_str().unwrap().to_owned();
    // As if the upload URL were used again after the file was stored.
    let blob = format!("{}{id}", zerodb_projects::purge::file_blob_prefix(&pid));
    app.stores
        .blobs
        .put(&blob, content(50_000, 3), Some("text/html"))
        .await
        .unwrap();
    let r = app
        .get(&format!("{}/{id}/download", files(&pid)), key)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "FILE_BYTES_CHANGED");
    let t = app
        .post(
            &format!("{}/upload-url", files(&pid)),
            key,
            json!({"file_name": "b.bin", "size_bytes": 4, "expires_in": 604800}),
        )
        .await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
    assert_eq!(
        t.body["expires_in"].as_u64().map(|s| s <= 3600),
        Some(true),
        "{}",
        t.body
    );
    let url = t.body["upload_url"].as_str().unwrap().to_owned();
    if backend == Backend::Embedded {
        let (status, _) = fetch(&app, Method::PUT, &url, Some(b"1234".to_vec())).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = fetch(&app, Method::PUT, &url, Some(content(1_000_000, 1))).await;
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    let r = app
        .post(
            &files(&pid),
            key,
            json!({"file_name": "invoice\u{202e}fdp.exe", "content_base64": b64(b"x")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
}

on_both_backends!(
    replaced_bytes_are_not_served_and_upload_urls_are_short_lived,
    names_up_to_the_key_limit_are_stored_and_listed,
    files_round_trip_and_list_by_prefix_a_page_at_a_time,
    the_agent_form_registers_then_uploads_to_its_url,
    upload_urls_take_the_declared_bytes_once,
    large_downloads_go_by_url,
    limits_plus_one_are_refused_and_write_nothing,
    scopes_tenancy_and_suspension_decide_who_may_do_what,
    uploads_announce_zerodb_file_uploaded,
);

/// Storage calls per request, each one DynamoDB request on AWS: the credential (one
/// read, one rate-counter write), the project (one read; the public form reads the
/// account first), then the route's own. Blob calls (S3) are not counted here.
#[tokio::test]
async fn storage_calls_per_file_route() {
    let app = TestApp::counting(Backend::Embedded).await;
    let key = app.root_key.clone();
    let counter = app.counter.clone().unwrap();
    let pid = app.project("calls").await;
    let f = files(&pid);
    let up = upload(&app, &pid, "a.txt", b"abc").await;
    let id = up["id"].as_str().unwrap().to_owned();
    let pending = app
        .post(&format!("{f}/upload-url"), &key, json!({"file_name": "p"}))
        .await;
    let pending_id = pending.body["file_id"].as_str().unwrap().to_owned();
    let put_url = pending.body["upload_url"].as_str().unwrap().to_owned();
    let cases: Vec<(&str, Method, String, Option<Value>, u64)> = vec![
        (
            "upload inline: record and counters in one transaction",
            Method::POST,
            f.clone(),
            Some(json!({"file_name": "b", "content_base64": "YQ=="})),
            4,
        ),
        (
            "upload URL: the pending record",
            Method::POST,
            format!("{f}/upload-url"),
            Some(json!({"file_name": "c"})),
            4,
        ),
        ("metadata", Method::GET, format!("{f}/{id}"), None, 4),
        (
            "metadata of a pending file (its bytes looked for in S3)",
            Method::GET,
            format!("{f}/{pending_id}"),
            None,
            4,
        ),
        (
            "download",
            Method::GET,
            format!("{f}/{id}/download"),
            None,
            4,
        ),
        (
            "list (one query of the name index)",
            Method::GET,
            format!("{f}?prefix=a"),
            None,
            4,
        ),
        (
            "download URL",
            Method::GET,
            format!("{f}/{id}/url"),
            None,
            4,
        ),
        (
            "upload URL of a pending file (+ the write gate)",
            Method::GET,
            format!("{f}/{pending_id}/url"),
            None,
            5,
        ),
        (
            "public: list (+ the account's default project)",
            Method::GET,
            "/api/v1/public/files/".into(),
            None,
            5,
        ),
        (
            "public: register",
            Method::POST,
            "/api/v1/public/files/".into(),
            Some(json!({"name": "d"})),
            5,
        ),
        (
            "public: JSON download",
            Method::GET,
            format!("/api/v1/public/files/{id}/download"),
            None,
            5,
        ),
        (
            "delete: record and counters in one transaction",
            Method::DELETE,
            format!("{f}/{id}"),
            None,
            5,
        ),
    ];
    for (name, method, path, body, expected) in cases {
        counter.take();
        let r = app.call(method, &path, Some(&key), body).await;
        assert!(r.status.is_success(), "{name}: {} {}", r.status, r.body);
        assert_eq!(counter.take(), expected, "{name}");
    }
    // The signed PUT takes no credential: the project, the record, one transaction.
    counter.take();
    let (status, _) = fetch(&app, Method::PUT, &put_url, Some(b"xyz".to_vec())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(counter.take(), 3, "signed PUT");
    let u = app.get(&format!("{f}/{pending_id}/url"), &key).await;
    counter.take();
    let (status, got) = fetch(&app, Method::GET, u.body["url"].as_str().unwrap(), None).await;
    assert_eq!(
        (status, got.as_slice()),
        (StatusCode::OK, b"xyz".as_slice())
    );
    assert_eq!(counter.take(), 2, "signed GET: the project, the record");
}

/// The files-api Lambda binary, started by its real `main` against the fake Runtime API
/// on moto: an inline upload through API Gateway's event, and a registered file whose
/// bytes go to the S3 presigned URL the function signs with its own credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_uploads_inline_and_signs_s3_urls() {
    use std::time::Duration;
    use zerodb_tests::lambda::{FakeRuntime, http_api_event};
    use zerodb_tests::support::{aws_clients, unique_name};

    let c = aws_clients().await;
    let (table, bucket) = (unique_name("ft"), unique_name("fb"));
    zerodb_store_aws::provision::create_table(&c.dynamodb, &table)
        .await
        .unwrap();
    zerodb_store_aws::provision::create_bucket(&c.s3, &bucket)
        .await
        .unwrap();
    let queues = zerodb_store_aws::provision::create_queues(&c.sqs, &unique_name("fq"))
        .await
        .unwrap();
    let aws_table = std::sync::Arc::new(zerodb_store_aws::AwsTable::new(
        c.dynamodb.clone(),
        table.clone(),
    ));
    let account = zerodb_local::create_account(aws_table, "lambda")
        .await
        .unwrap();
    let mut env = vec![
        ("ZERODB_TABLE".to_owned(), table),
        ("ZERODB_BUCKET".to_owned(), bucket),
        ("ZERODB_VECTOR_BUCKET".to_owned(), "unused".to_owned()),
        (
            "ZERODB_JWT_SECRET".to_owned(),
            "a-files-signing-secret-of-at-least-32-bytes".to_owned(),
        ),
    ];
    for (q, url) in &queues {
        env.push((q.spec().url_env.to_owned(), url.clone()));
    }
    let headers =
        json!({"x-api-key": account.root_key.expose(), "content-type": "application/json"});
    let invoke = |events: Vec<(&'static str, Value)>| {
        let env = env.clone();
        async move {
            let n = events.len();
            let mut runtime = FakeRuntime::start("files-api", events).await;
            let mut child = runtime.spawn("files-api", &env);
            let replies = runtime.replies(n, Duration::from_secs(90)).await;
            child.kill().ok();
            child.wait().ok();
            assert_eq!(
                replies.len(),
                n,
                "files-api answered every invocation: {replies:?}"
            );
            replies
        }
    };
    let route = "ANY /api/v1/public/files/";
    let r = invoke(vec![
        (
            "1",
            http_api_event(
                "POST",
                "/api/v1/public/files/",
                route,
                headers.clone(),
                Some(json!({"name": "inline.txt", "content_base64": b64(b"hello lambda")})),
            ),
        ),
        (
            "2",
            http_api_event(
                "POST",
                "/api/v1/public/files/",
                route,
                headers.clone(),
                Some(json!({"name": "direct.bin", "size": 11})),
            ),
        ),
    ])
    .await;
    assert_eq!(r["1"].status(), 201, "{:?}", r["1"]);
    assert_eq!(r["1"].json()["size"], 12);
    assert_eq!(r["2"].status(), 201, "{:?}", r["2"]);
    let id = r["2"].json()["id"].as_str().unwrap().to_owned();
    let proxy = "ANY /api/v1/public/files/{proxy+}";
    let r = invoke(vec![(
        "3",
        http_api_event(
            "GET",
            &format!("/api/v1/public/files/{id}/url"),
            proxy,
            headers.clone(),
            None,
        ),
    )])
    .await;
    assert_eq!(r["3"].status(), 200, "{:?}", r["3"]);
    let url = r["3"].json()["url"].as_str().unwrap().to_owned();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let (status, _) = fetch_url(Method::PUT, &url, Some(b"hello bytes".to_vec())).await;
    assert_eq!(status, StatusCode::OK);
    let r = invoke(vec![(
        "4",
        http_api_event(
            "GET",
            &format!("/api/v1/public/files/{id}/download"),
            proxy,
            headers,
            None,
        ),
    )])
    .await;
    assert_eq!(r["4"].status(), 200, "{:?}", r["4"]);
    assert_eq!(r["4"].json()["content_base64"], b64(b"hello bytes"));
}
