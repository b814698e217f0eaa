//! Keys, tokens, errors and tenancy, through the full router, on both storage backends.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;
use zerodb_domain::store::{Key, Query};
use zerodb_tests::support::{Backend, TestApp};

fn bearer(k: &str) -> String {
    format!("Bearer {k}")
}

const SEED_SCOPES: [&str; 3] = [
    "memory:write:session/run-42",
    "memory:read:session/run-42",
    "inference:call",
];

/// Seed 000 steps 1 and 6: root key as Bearer creates a scoped key with a TTL, the key
/// works, the root key revokes it, and its next request is refused with AUTH_003.
async fn seed_steps_1_and_6_create_use_and_revoke_a_scoped_key(b: Backend) {
    let app = TestApp::new(b).await;
    let r = app
        .post(
            "/api/v1/auth/keys",
            &bearer(&app.root_key),
            json!({"name": "research-agent-run-42", "ttl_seconds": 3600, "scopes": SEED_SCOPES}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let key = r.body["key"].as_str().unwrap().to_owned();
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(
        key.starts_with("sk_") && key.len() >= 3 + 22,
        "a key of at least 128 random bits"
    );
    assert!(key.starts_with(r.body["prefix"].as_str().unwrap()));
    assert_eq!(r.body["name"], "research-agent-run-42");
    assert_eq!(r.body["scopes"], json!(SEED_SCOPES));
    let created =
        chrono::DateTime::parse_from_rfc3339(r.body["created_at"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(r.body["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_seconds(), 3600);

    // The agent's key works (X-API-Key, as the seed's agent headers send it).
    let ok = app
        .call(Method::POST, "/api/v1/auth/token", Some(&key), None)
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);

    let del = app
        .delete(&format!("/api/v1/auth/keys/{id}"), &bearer(&app.root_key))
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert!(del.raw.is_empty());

    let after = app
        .call(Method::POST, "/api/v1/auth/token", Some(&key), None)
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.code(), "AUTH_003");
    assert!(after.body["detail"].as_str().unwrap().contains("revoked"));
    // As Bearer too.
    assert_eq!(
        app.call(
            Method::POST,
            "/api/v1/auth/token",
            Some(&bearer(&key)),
            None
        )
        .await
        .code(),
        "AUTH_003"
    );

    let shown = app
        .get(&format!("/api/v1/auth/keys/{id}"), &app.root_key)
        .await;
    assert_eq!(shown.body["status"], "revoked");
    assert!(shown.body["revoked_at"].is_string());
    // Revoking again is a no-op, still 204.
    assert_eq!(
        app.delete(&format!("/api/v1/auth/keys/{id}"), &app.root_key)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
}

async fn expired_key_is_rejected_with_auth_002(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.create_key(&["inference:call"], Some(60)).await;
    assert_eq!(
        app.call(Method::POST, "/api/v1/auth/token", Some(&key), None)
            .await
            .status,
        StatusCode::OK
    );
    app.clock.advance_secs(59);
    assert_eq!(
        app.call(Method::POST, "/api/v1/auth/token", Some(&key), None)
            .await
            .status,
        StatusCode::OK
    );
    app.clock.advance_secs(1);
    let r = app
        .call(Method::POST, "/api/v1/auth/token", Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "AUTH_002");
}

async fn unknown_missing_and_forged_credentials_are_rejected(b: Backend) {
    let app = TestApp::new(b).await;
    let unknown = app
        .get(
            "/api/v1/auth/keys",
            "sk_notARealKeyAtAllnotARealKeyAtAll0123456789",
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::UNAUTHORIZED, "AUTH_001")
    );
    assert_eq!(unknown.headers["www-authenticate"], "Bearer");
    let missing = app.call(Method::GET, "/api/v1/auth/keys", None, None).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::UNAUTHORIZED, "AUTH_001")
    );
    assert!(
        missing.body["detail"]
            .as_str()
            .unwrap()
            .contains("X-API-Key")
    );
    let junk = app.get("/api/v1/auth/keys", "hello").await;
    assert_eq!(junk.code(), "AUTH_001");
    // A token signed with another secret.
    let forged = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJ6ZXJvZGIiLCJzdWIiOiJrZXlfeCIsImFjY3QiOiJhY2N0X3giLCJzY29wZXMiOlsiKjoqIl0sImlhdCI6MSwiZXhwIjo5OTk5OTk5OTk5LCJqdGkiOiJ4In0.c2lnbmF0dXJlLW5vdC12YWxpZA";
    let r = app.get("/api/v1/auth/keys", &bearer(forged)).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "AUTH_003"));
}

async fn tokens_carry_account_and_scopes_and_expire(b: Backend) {
    let app = TestApp::new(b).await;
    let r = app
        .post(
            "/api/v1/auth/token",
            &app.root_key,
            json!({"ttl_seconds": 120}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["token_type"], "bearer");
    assert_eq!(r.body["expires_in"], 120);
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(token.split('.').count(), 3);

    // The token acts for the account: it can mint keys the root key could.
    let created = app
        .post(
            "/api/v1/auth/keys",
            &bearer(&token),
            json!({"name": "via token", "ttl_seconds": 60, "scopes": ["memory:read"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    // But a token is bounded by its own lifetime.
    let too_long = app
        .post(
            "/api/v1/auth/keys",
            &bearer(&token),
            json!({"name": "x", "ttl_seconds": 600, "scopes": ["memory:read"]}),
        )
        .await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A narrowed token holds only what it asked for.
    let narrow = app
        .post(
            "/api/v1/auth/token",
            &app.root_key,
            json!({"scopes": ["memory:read"]}),
        )
        .await;
    assert_eq!(narrow.body["scopes"], json!(["memory:read"]));
    let nt = narrow.body["access_token"].as_str().unwrap().to_owned();
    let denied = app
        .post(
            "/api/v1/auth/keys",
            &bearer(&nt),
            json!({"name": "x", "ttl_seconds": 60, "scopes": ["inference:call"]}),
        )
        .await;
    assert_eq!(
        (denied.status, denied.code()),
        (StatusCode::FORBIDDEN, "PERM_001")
    );
    // A JWT is not accepted in X-API-Key (credentials are recognised by form).
    assert_eq!(
        app.get("/api/v1/auth/keys", &token).await.code(),
        "AUTH_001"
    );

    app.clock.advance_secs(121);
    let expired = app.get("/api/v1/auth/keys", &bearer(&token)).await;
    assert_eq!(
        (expired.status, expired.code()),
        (StatusCode::UNAUTHORIZED, "AUTH_002")
    );
}

async fn invalid_requests_get_422_naming_the_field(b: Backend) {
    let app = TestApp::new(b).await;
    let k = &app.root_key;
    let cases = [
        (
            json!({"name": "x", "scopes": ["memory:write", "storage:read"]}),
            json!(["body", "scopes", 1]),
            "storage:read",
        ),
        (
            json!({"name": "x", "scopes": ["memory"]}),
            json!(["body", "scopes", 0]),
            "memory",
        ),
        (
            json!({"scopes": ["memory:read"]}),
            json!(["body", "name"]),
            "field required",
        ),
        (
            json!({"name": "", "scopes": ["memory:read"]}),
            json!(["body", "name"]),
            "empty",
        ),
        (
            json!({"name": "a".repeat(129), "scopes": ["memory:read"]}),
            json!(["body", "name"]),
            "128",
        ),
        (
            json!({"name": "x"}),
            json!(["body", "scopes"]),
            "field required",
        ),
        (
            json!({"name": "x", "scopes": []}),
            json!(["body", "scopes"]),
            "at least one",
        ),
        (
            json!({"name": "x", "scopes": ["memory:read"], "ttl_seconds": 0}),
            json!(["body", "ttl_seconds"]),
            "between 1",
        ),
        (
            json!({"name": "x", "scopes": ["memory:read"], "ttl_seconds": "soon"}),
            json!(["body", "ttl_seconds"]),
            "invalid type",
        ),
    ];
    for (body, loc, needle) in cases {
        let r = app.post("/api/v1/auth/keys", k, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {:?}",
            r.body
        );
        let d = &r.body["detail"][0];
        assert_eq!(d["loc"], loc, "{body}");
        assert!(d["msg"].as_str().unwrap().contains(needle), "{body}: {d}");
        assert!(d["type"].is_string());
    }
    let not_json = app
        .send(
            http::Request::post("/api/v1/auth/keys")
                .header("x-api-key", k.as_str())
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{\"name\": "))
                .unwrap(),
        )
        .await;
    assert_eq!(not_json.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(not_json.body["detail"][0]["type"], "value_error.jsondecode");
    let empty = app
        .call(Method::POST, "/api/v1/auth/keys", Some(k), None)
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad_limit = app.get("/api/v1/auth/keys?limit=0", k).await;
    assert_eq!(bad_limit.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad_cursor = app.get("/api/v1/auth/keys?cursor=%21%21", k).await;
    assert_eq!(bad_cursor.status, StatusCode::UNPROCESSABLE_ENTITY);
    let not_number = app.get("/api/v1/auth/keys?limit=ten", k).await;
    assert_eq!(not_number.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn a_key_can_only_mint_scopes_it_holds_and_not_outlive_itself(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, agent) = app
        .create_key(
            &[
                "zerodb:write",
                "memory:write:session/*",
                "memory:read:session/run-42",
            ],
            Some(3600),
        )
        .await;
    let ok = app
        .post(
            "/api/v1/auth/keys",
            &agent,
            json!({"name": "child", "ttl_seconds": 600, "scopes": ["memory:write:session/run-43"]}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.body);
    for scope in [
        "memory:read:session/run-43",
        "memory:write",
        "inference:call",
        "memory:write:global",
        "*:*",
    ] {
        let r = app
            .post(
                "/api/v1/auth/keys",
                &agent,
                json!({"name": "x", "ttl_seconds": 60, "scopes": [scope]}),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "PERM_001"),
            "{scope}"
        );
        assert!(r.body["detail"].as_str().unwrap().contains(scope));
    }
    let forever = app
        .post(
            "/api/v1/auth/keys",
            &agent,
            json!({"name": "x", "scopes": ["memory:write:session/a"]}),
        )
        .await;
    assert_eq!(forever.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        forever.body["detail"][0]["loc"],
        json!(["body", "ttl_seconds"])
    );
    let longer = app
        .post(
            "/api/v1/auth/keys",
            &agent,
            json!({"name": "x", "ttl_seconds": 7200, "scopes": ["memory:write:session/a"]}),
        )
        .await;
    assert_eq!(longer.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Minting needs zerodb:write, listing zerodb:read: this key holds only the first.
    let mine = app.get("/api/v1/auth/keys", &agent).await;
    assert_eq!(
        (mine.status, mine.code()),
        (StatusCode::FORBIDDEN, "PERM_001")
    );
    assert!(
        mine.body["detail"]
            .as_str()
            .unwrap()
            .contains("zerodb:read")
    );
}

async fn listing_pages_and_never_shows_secrets(b: Backend) {
    let app = TestApp::new(b).await;
    let mut secrets = Vec::new();
    for _ in 0..5 {
        secrets.push(app.create_key(&["memory:read"], None).await.1);
    }
    let mut seen = Vec::new();
    let mut url = "/api/v1/auth/keys?limit=2".to_owned();
    loop {
        let r = app.get(&url, &app.root_key).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let text = String::from_utf8(r.raw.clone()).unwrap();
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "a listing must never carry a secret"
            );
        }
        assert!(!text.contains(&app.root_key));
        for k in r.body["keys"].as_array().unwrap() {
            assert!(k.get("key").is_none() && k.get("hash").is_none());
            seen.push(k["id"].as_str().unwrap().to_owned());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => url = format!("/api/v1/auth/keys?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "five keys and the root key, each once");
    let unique: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 6);
}

async fn secrets_are_stored_only_as_sha256(b: Backend) {
    let app = TestApp::new(b).await;
    let (id, secret) = app.create_key(&["memory:read"], Some(600)).await;
    let hash = hex::encode(sha2::Sha256::digest(secret.as_bytes()));
    let by_hash = app
        .stores
        .table
        .get(&Key::new(format!("APIKEY#{hash}"), "APIKEY"))
        .await
        .unwrap()
        .expect("found by its hash");
    let listed = app
        .stores
        .table
        .query(Query::partition(format!("ACCT#{}", app.account_id)))
        .await
        .unwrap();
    let all: Vec<_> = listed
        .items
        .iter()
        .chain(std::iter::once(&by_hash))
        .collect();
    let dump = format!("{all:?}");
    assert!(dump.contains(&id));
    assert!(!dump.contains(&secret), "the secret must not be stored");
    assert!(!dump.contains(&secret[3..]), "not even without its prefix");
    assert!(!dump.contains(&app.root_key));
}

async fn another_account_cannot_list_read_or_revoke_keys(b: Backend) {
    let app = TestApp::new(b).await;
    let (a_key_id, a_key) = app.create_key(&["memory:read"], None).await;
    let b_root = app.new_account("tenant-b").await;

    let list = app.get("/api/v1/auth/keys", &b_root).await;
    assert_eq!(list.status, StatusCode::OK);
    let ids: Vec<&str> = list.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "B sees only its own root key");
    assert!(!ids.contains(&a_key_id.as_str()));

    let get = app
        .get(&format!("/api/v1/auth/keys/{a_key_id}"), &b_root)
        .await;
    assert_eq!((get.status, get.code()), (StatusCode::NOT_FOUND, "API_404"));
    let del = app
        .delete(&format!("/api/v1/auth/keys/{a_key_id}"), &b_root)
        .await;
    assert_eq!((del.status, del.code()), (StatusCode::NOT_FOUND, "API_404"));
    // A's key still works, and A still sees it active.
    assert_eq!(
        app.call(Method::POST, "/api/v1/auth/token", Some(&a_key), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/api/v1/auth/keys/{a_key_id}"), &app.root_key)
            .await
            .body["status"],
        "active"
    );
    // A token minted by B is bound to B's account too.
    let t = app
        .post("/api/v1/auth/token", &b_root, json!({}))
        .await
        .body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.get(&format!("/api/v1/auth/keys/{a_key_id}"), &bearer(&t))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn rate_limit_answers_429_with_retry_after_then_recovers(b: Backend) {
    let app = TestApp::with_rate_limit(b, 5).await;
    // Another key has its own budget; creating it and minting a token spend two of the
    // root key's five. It may list the keys it minted (none), which is what it calls.
    let (_, other) = app.create_key(&["zerodb:read"], None).await;
    let token = app
        .post("/api/v1/auth/token", &app.root_key, json!({}))
        .await
        .body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        assert_eq!(
            app.get("/api/v1/auth/keys", &app.root_key).await.status,
            StatusCode::OK
        );
    }
    let limited = app.get("/api/v1/auth/keys", &app.root_key).await;
    assert_eq!(
        (limited.status, limited.code()),
        (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED")
    );
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("integer Retry-After");
    assert!((1..=60).contains(&retry));
    // A token spends its key's budget, so minting tokens is no way around the limit.
    assert_eq!(
        app.get("/api/v1/auth/keys", &bearer(&token)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        app.get("/api/v1/auth/keys", &other).await.status,
        StatusCode::OK
    );
    app.clock.advance_secs(retry as i64);
    assert_eq!(
        app.get("/api/v1/auth/keys", &app.root_key).await.status,
        StatusCode::OK
    );
    // Unknown keys are refused as such, not counted into anyone's budget.
    let unknown = app
        .get(
            "/api/v1/auth/keys",
            "sk_unknownunknownunknownunknownunknownunknown00",
        )
        .await;
    assert_eq!(unknown.code(), "AUTH_001");
}

async fn unknown_routes_and_methods_answer_json(b: Backend) {
    let app = TestApp::new(b).await;
    let r = app.get("/api/v1/nope", &app.root_key).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "API_404"));
    let m = app
        .call(Method::PUT, "/api/v1/auth/keys", Some(&app.root_key), None)
        .await;
    assert_eq!(m.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(m.body["error_code"], "METHOD_NOT_ALLOWED");
    for path in ["/api/v1/health", "/api/v1/public/health"] {
        let h = app.call(Method::GET, path, None, None).await;
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(h.body["status"], "healthy");
    }
    let doc = app.call(Method::GET, "/openapi.json", None, None).await;
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"));
    let _: Value = doc.body;
}

fn token_of(r: &zerodb_tests::support::Reply) -> String {
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

/// The case: the root key mints a child, then exchanges itself for a token
/// narrowed to `memory:read:session/x`. That token must not list, read or revoke the
/// child: key management is judged on the token's own scopes, never its key's.
async fn a_narrowed_token_has_only_its_own_management_rights(b: Backend) {
    let app = TestApp::new(b).await;
    let (child_id, child) = app.create_key(&["memory:read"], None).await;
    let narrow = token_of(
        &app.post(
            "/api/v1/auth/token",
            &app.root_key,
            json!({"scopes": ["memory:read:session/x"]}),
        )
        .await,
    );
    let t = bearer(&narrow);
    let one = format!("/api/v1/auth/keys/{child_id}");
    for r in [
        app.get("/api/v1/auth/keys", &t).await,
        app.get(&one, &t).await,
        app.delete(&one, &t).await,
    ] {
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "PERM_001"),
            "{:?}",
            r.body
        );
        assert!(r.body["detail"].as_str().unwrap().contains("zerodb:admin"));
    }
    assert_eq!(
        app.call(Method::POST, "/api/v1/auth/token", Some(&child), None)
            .await
            .status,
        StatusCode::OK,
        "the child was not revoked"
    );

    // `zerodb:read` lists and reads the keys the credential's key minted, but does not
    // revoke them; `zerodb:write` does.
    let reader = bearer(&token_of(
        &app.post(
            "/api/v1/auth/token",
            &app.root_key,
            json!({"scopes": ["zerodb:read"]}),
        )
        .await,
    ));
    let listed = app.get("/api/v1/auth/keys", &reader).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    let ids: Vec<&str> = listed.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [child_id.as_str()],
        "its own key was not minted by itself"
    );
    assert_eq!(app.get(&one, &reader).await.status, StatusCode::OK);
    let r = app.delete(&one, &reader).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "PERM_001"));
    assert!(r.body["detail"].as_str().unwrap().contains("zerodb:write"));
    let writer = bearer(&token_of(
        &app.post(
            "/api/v1/auth/token",
            &app.root_key,
            json!({"scopes": ["zerodb:write"]}),
        )
        .await,
    ));
    assert_eq!(
        app.delete(&one, &writer).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call(Method::POST, "/api/v1/auth/token", Some(&child), None)
            .await
            .code(),
        "AUTH_003"
    );
}

/// Revoking a key revokes what it minted, and what those minted (through keys and
/// tokens alike); its siblings stay; every view names its minter.
async fn revoking_a_key_revokes_every_key_below_it(b: Backend) {
    let app = TestApp::new(b).await;
    let mint = |auth: String, name: &'static str| {
        let app = &app;
        async move {
            let r = app
                .post(
                    "/api/v1/auth/keys",
                    &auth,
                    // A token's keys expire no later than it does (15 minutes).
                    json!({"name": name, "ttl_seconds": 600, "scopes": ["memory:read", "zerodb:write"]}),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{name}: {:?}", r.body);
            (
                r.body["id"].as_str().unwrap().to_owned(),
                r.body["key"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (a_id, a) = mint(bearer(&app.root_key), "a").await;
    let (sibling_id, sibling) = mint(bearer(&app.root_key), "sibling").await;
    let (b_id, b_key) = mint(a.clone(), "b").await;
    let a_token = token_of(&app.post("/api/v1/auth/token", &a, json!({})).await);
    let (bt_id, bt) = mint(bearer(&a_token), "b via a's token").await;
    let (c_id, c) = mint(b_key.clone(), "c").await;

    let shown = app
        .get(&format!("/api/v1/auth/keys/{c_id}"), &app.root_key)
        .await;
    assert_eq!(shown.body["created_by"], json!(b_id));
    let listed = app.get("/api/v1/auth/keys", &app.root_key).await;
    let by: std::collections::BTreeMap<String, Value> = listed.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_owned(),
                k["created_by"].clone(),
            )
        })
        .collect();
    assert_eq!(by[&a_id], by[&sibling_id], "both minted by the root key");
    assert!(by[&a_id].is_string());
    assert_eq!(by[&b_id], json!(a_id));
    assert_eq!(by[&bt_id], json!(a_id), "a token mints as its key");

    let del = app
        .delete(&format!("/api/v1/auth/keys/{a_id}"), &app.root_key)
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{:?}", del.body);
    for (name, key) in [("a", &a), ("b", &b_key), ("b via token", &bt), ("c", &c)] {
        let r = app
            .call(Method::POST, "/api/v1/auth/token", Some(key), None)
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "AUTH_003"),
            "{name} must be revoked with its ancestor"
        );
    }
    for id in [&b_id, &bt_id, &c_id] {
        let v = app
            .get(&format!("/api/v1/auth/keys/{id}"), &app.root_key)
            .await;
        assert_eq!(v.body["status"], "revoked", "{id}");
    }
    assert_eq!(
        app.call(Method::POST, "/api/v1/auth/token", Some(&sibling), None)
            .await
            .status,
        StatusCode::OK,
        "a sibling is not below the revoked key"
    );
    assert_eq!(
        app.get(&format!("/api/v1/auth/keys/{sibling_id}"), &app.root_key)
            .await
            .body["status"],
        "active"
    );
}

/// A token outlives its key's revocation (it is verified without a read), but it can no
/// longer mint keys.
async fn a_token_whose_key_was_revoked_cannot_mint_keys(b: Backend) {
    let app = TestApp::new(b).await;
    let (id, key) = app.create_key(&["memory:read", "zerodb:write"], None).await;
    let token = token_of(&app.post("/api/v1/auth/token", &key, json!({})).await);
    let del = app
        .delete(&format!("/api/v1/auth/keys/{id}"), &app.root_key)
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let r = app
        .post(
            "/api/v1/auth/keys",
            &bearer(&token),
            json!({"name": "late", "ttl_seconds": 60, "scopes": ["memory:read"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "AUTH_003"),
        "{:?}",
        r.body
    );
    let listed = app.get("/api/v1/auth/keys", &app.root_key).await;
    assert_eq!(
        listed.body["keys"].as_array().unwrap().len(),
        2,
        "the root key and the revoked one, nothing minted after: {:?}",
        listed.body
    );
}

/// Minting keys is key management: it needs `zerodb:write` on the presented credential,
/// so a leaked narrow key cannot fill the account's key cap (seed 000: such a key's
/// holder "can only read and write to session/run-42").
async fn minting_needs_zerodb_write_on_the_credential_itself(b: Backend) {
    let app = TestApp::new(b).await;
    let body = json!({"name": "x", "ttl_seconds": 60, "scopes": ["memory:read:session/run-42"]});
    let (_, narrow) = app
        .create_key(
            &["memory:read:session/run-42", "memory:write:session/run-42"],
            Some(3600),
        )
        .await;
    let r = app.post("/api/v1/auth/keys", &narrow, body.clone()).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "PERM_001"));
    assert!(
        r.body["detail"].as_str().unwrap().contains("zerodb:write"),
        "{:?}",
        r.body
    );
    // A token narrowed from a key that may mint cannot, unless it keeps the scope.
    let (_, minter) = app
        .create_key(&["zerodb:write", "memory:read"], Some(3600))
        .await;
    let narrowed = token_of(
        &app.post(
            "/api/v1/auth/token",
            &minter,
            json!({"scopes": ["memory:read"]}),
        )
        .await,
    );
    let r = app
        .post("/api/v1/auth/keys", &bearer(&narrowed), body.clone())
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let kept = token_of(
        &app.post(
            "/api/v1/auth/token",
            &minter,
            json!({"scopes": ["zerodb:write", "memory:read"]}),
        )
        .await,
    );
    let r = app.post("/api/v1/auth/keys", &bearer(&kept), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

/// Nothing can be minted below a revoked key, however deep: a key whose grandparent is
/// revoked (its sweep not yet reaching it) cannot mint. And keys nest at most 16 deep.
async fn nothing_is_minted_below_a_revoked_key_and_trees_are_bounded(b: Backend) {
    let app = TestApp::new(b).await;
    let scopes = json!(["zerodb:write", "memory:read"]);
    let mut chain: Vec<(String, String)> = Vec::new();
    let mut minter = app.root_key.clone();
    for depth in 1..=zerodb_domain::auth::MAX_KEY_DEPTH {
        let r = app
            .post(
                "/api/v1/auth/keys",
                &minter,
                json!({"name": format!("level {depth}"), "scopes": scopes}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "level {depth}: {:?}", r.body);
        let id = r.body["id"].as_str().unwrap().to_owned();
        minter = r.body["key"].as_str().unwrap().to_owned();
        chain.push((id, minter.clone()));
    }
    let r = app
        .post(
            "/api/v1/auth/keys",
            &minter,
            json!({"name": "too deep", "scopes": scopes}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("16 levels"),
        "{:?}",
        r.body
    );
    // Revoke level 1's record directly, as a revocation does before its sweep reaches
    // the keys below: level 3 still authenticates, but cannot mint.
    let (level1, _) = &chain[0];
    app.stores
        .table
        .update(
            &zerodb_domain::keys::account_key(&app.account_id, level1),
            vec![zerodb_domain::store::Update::Set(
                "revoked_at".into(),
                zerodb_domain::store::Value::int(1),
            )],
            None,
        )
        .await
        .unwrap();
    let (_, level3) = &chain[2];
    let r = app
        .post(
            "/api/v1/auth/keys",
            level3,
            json!({"name": "late", "scopes": scopes}),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "AUTH_003"),
        "{:?}",
        r.body
    );
}

/// An account holds at most the configured number of unrevoked keys; revoking one, or
/// one expiring, makes room again.
async fn keys_per_account_are_capped(b: Backend) {
    let limits = zerodb_domain::auth::AuthLimits {
        max_keys_per_account: 3,
        ..Default::default()
    };
    let app = TestApp::with_limits(b, 0, limits).await;
    let (first, _) = app.create_key(&["memory:read"], None).await;
    app.create_key(&["memory:read"], Some(60)).await;
    let body = json!({"name": "one too many", "scopes": ["memory:read"]});
    let refused = app
        .post("/api/v1/auth/keys", &app.root_key, body.clone())
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "CONFLICT"),
        "{:?}",
        refused.body
    );
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("ZERODB_MAX_KEYS_PER_ACCOUNT = 3") && detail.contains("revoke"),
        "{detail}"
    );
    // Another account has its own cap.
    let other = app.new_account("other").await;
    let r = app.post("/api/v1/auth/keys", &other, body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED);

    assert_eq!(
        app.delete(&format!("/api/v1/auth/keys/{first}"), &app.root_key)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = app
        .post("/api/v1/auth/keys", &app.root_key, body.clone())
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "a revoked key frees its place"
    );
    assert_eq!(
        app.post("/api/v1/auth/keys", &app.root_key, body.clone())
            .await
            .status,
        StatusCode::CONFLICT
    );
    app.clock.advance_secs(61);
    let r = app.post("/api/v1/auth/keys", &app.root_key, body).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "an expired key frees its place: {:?}",
        r.body
    );
}

/// Minting keys does not multiply the budget: the account's is shared by all its keys
/// and their tokens.
async fn an_account_budget_bounds_all_its_keys(b: Backend) {
    let limits = zerodb_domain::auth::AuthLimits {
        account_rate_limit_per_minute: 6,
        ..Default::default()
    };
    let app = TestApp::with_limits(b, 100, limits).await;
    let mut keys = vec![app.root_key.clone()];
    for _ in 0..3 {
        keys.push(app.create_key(&["memory:read"], None).await.1);
    }
    // Three spent minting; three more across fresh keys, each far under its own budget.
    for k in &keys[1..] {
        let r = app
            .call(Method::POST, "/api/v1/auth/token", Some(k), None)
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    for k in &keys {
        let r = app
            .call(Method::POST, "/api/v1/auth/token", Some(k), None)
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED"),
            "the account's budget is spent, whichever key asks"
        );
        assert!(r.headers.contains_key("retry-after"));
    }
    let other = app.new_account("other").await;
    assert_eq!(
        app.call(Method::POST, "/api/v1/auth/token", Some(&other), None)
            .await
            .status,
        StatusCode::OK,
        "another account has its own budget"
    );
    app.clock.advance_secs(60);
    assert_eq!(
        app.call(Method::POST, "/api/v1/auth/token", Some(&keys[3]), None)
            .await
            .status,
        StatusCode::OK
    );
}

/// A request with a well-formed but unknown key is refused after one read and writes no
/// rate counter (on AWS every such request used to write one).
async fn an_unknown_key_writes_no_rate_counter(b: Backend) {
    use zerodb_domain::clock::Clock;
    let app = TestApp::with_rate_limit(b, 100).await;
    let unknown = format!("sk_{}", zerodb_domain::ids::random_base62(43));
    let r = app.get("/api/v1/auth/keys", &unknown).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "AUTH_001"));
    let hash = hex::encode(sha2::Sha256::digest(unknown.as_bytes()));
    let now = app.clock.epoch_secs();
    for window in [now - now.rem_euclid(60), now - now.rem_euclid(60) - 60] {
        let counter = app
            .stores
            .table
            .get(&Key::new(
                format!("RATE#{}", &hash[..32]),
                window.to_string(),
            ))
            .await
            .unwrap();
        assert!(
            counter.is_none(),
            "an unknown key left a counter: {counter:?}"
        );
    }
    // A known key is counted, so the probe above looks where counters are.
    let ok = app.get("/api/v1/auth/keys", &app.root_key).await;
    assert_eq!(ok.status, StatusCode::OK);
    let root_hash = hex::encode(sha2::Sha256::digest(app.root_key.as_bytes()));
    let counted = app
        .stores
        .table
        .get(&Key::new(
            format!("RATE#{}", &root_hash[..32]),
            (now - now.rem_euclid(60)).to_string(),
        ))
        .await
        .unwrap();
    assert!(counted.is_some());
}

zerodb_tests::on_both_backends!(
    minting_needs_zerodb_write_on_the_credential_itself,
    nothing_is_minted_below_a_revoked_key_and_trees_are_bounded,
    a_narrowed_token_has_only_its_own_management_rights,
    revoking_a_key_revokes_every_key_below_it,
    a_token_whose_key_was_revoked_cannot_mint_keys,
    keys_per_account_are_capped,
    an_account_budget_bounds_all_its_keys,
    an_unknown_key_writes_no_rate_counter,
    seed_steps_1_and_6_create_use_and_revoke_a_scoped_key,
    expired_key_is_rejected_with_auth_002,
    unknown_missing_and_forged_credentials_are_rejected,
    tokens_carry_account_and_scopes_and_expire,
    invalid_requests_get_422_naming_the_field,
    a_key_can_only_mint_scopes_it_holds_and_not_outlive_itself,
    listing_pages_and_never_shows_secrets,
    secrets_are_stored_only_as_sha256,
    another_account_cannot_list_read_or_revoke_keys,
    rate_limit_answers_429_with_retry_after_then_recovers,
    unknown_routes_and_methods_answer_json,
);

/// Storage calls per authenticated request, measured through a counting table: with
/// shared counting (Lambda) one strongly consistent read of the key, then the key's and
/// the account's counter updates, concurrently; with in-process counting (zerodb-local)
/// the read alone.
async fn table_calls_for_one_request(
    counting_mode: zerodb_domain::rate::RateCounting,
    bearer_token: bool,
) -> u64 {
    use std::sync::Arc;
    use tower::ServiceExt;
    use zerodb_domain::auth::AuthSettings;
    use zerodb_domain::store::Stores;
    let (stores, _guard) = zerodb_tests::support::fresh_stores(Backend::Embedded).await;
    let counting = zerodb_tests::support::CountingTable::new(stores.table.clone());
    let account = zerodb_local::create_account(stores.table.clone(), "count")
        .await
        .unwrap();
    let stores = Stores {
        table: counting.clone(),
        ..stores
    };
    let settings = AuthSettings {
        jwt_secret: vec![7; 32],
        rate_limit_per_minute: 100,
        rate_counting: counting_mode,
        limits: Default::default(),
    };
    let ctx = zerodb_tests::support::context_of(
        stores,
        Arc::new(zerodb_domain::clock::SystemClock),
        settings,
    );
    let app = zerodb_http::serve(&[auth_api::group()], &ctx)
        .await
        .unwrap();
    let send = |auth: (&'static str, String)| {
        let app = app.clone();
        async move {
            let req = http::Request::post("/api/v1/auth/token")
                .header(auth.0, auth.1)
                .body(axum::body::Body::empty())
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            resp
        }
    };
    let first = send(("x-api-key", account.root_key.expose().to_owned())).await;
    let cred = if bearer_token {
        let body = http_body_util::BodyExt::collect(first.into_body())
            .await
            .unwrap()
            .to_bytes();
        let token = serde_json::from_slice::<Value>(&body).unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        ("authorization", format!("Bearer {token}"))
    } else {
        ("x-api-key", account.root_key.expose().to_owned())
    };
    counting.take();
    send(cred).await;
    counting.take()
}

#[tokio::test]
async fn an_api_key_request_costs_one_read_and_two_counter_updates_when_counts_are_shared() {
    assert_eq!(
        table_calls_for_one_request(zerodb_domain::rate::RateCounting::Shared, false).await,
        3
    );
}

#[tokio::test]
async fn a_token_request_costs_two_counter_updates_and_no_key_read() {
    assert_eq!(
        table_calls_for_one_request(zerodb_domain::rate::RateCounting::Shared, true).await,
        2
    );
}

#[tokio::test]
async fn in_process_counting_leaves_one_read_per_key_request_and_none_per_token() {
    assert_eq!(
        table_calls_for_one_request(zerodb_domain::rate::RateCounting::InProcess, false).await,
        1
    );
    assert_eq!(
        table_calls_for_one_request(zerodb_domain::rate::RateCounting::InProcess, true).await,
        0
    );
}
