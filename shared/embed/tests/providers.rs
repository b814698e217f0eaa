//! The lexical fallback and the HTTP client (against a fake OpenAI-compatible server run
//! inside the test); neither needs the model.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use zerodb_embed::{EmbedError, Embedder, HttpEmbedder, LexicalEmbedder, dot};

fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

fn assert_unit(v: &[f32]) {
    let norm = dot(v, v).sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
}

// ---- lexical ---------------------------------------------------------------------------

#[tokio::test]
async fn lexical_is_deterministic_and_unit_length() {
    let e = LexicalEmbedder::new(384);
    assert_eq!(e.name(), "lexical-v1");
    assert_eq!(e.dims(), 384);
    let texts = strings(&["Alice prefers dark mode", "Alice prefers dark mode", "vim"]);
    let v = e.embed(&texts).await.expect("embed");
    assert_eq!(v[0], v[1]);
    assert_eq!(
        v[0],
        LexicalEmbedder::new(384).embed_one("Alice prefers dark mode")
    );
    for x in &v {
        assert_eq!(x.len(), 384);
        assert_unit(x);
    }
}

#[tokio::test]
async fn lexical_scores_shared_words_above_none() {
    let e = LexicalEmbedder::new(384);
    let v = e
        .embed(&strings(&[
            "which editor keybindings does Alice prefer",
            "Alice prefers vim keybindings in her editor",
            "Dentist appointment on Tuesday at 3pm",
            "Quarterly revenue grew by twelve percent",
        ]))
        .await
        .expect("embed");
    let shared = dot(&v[0], &v[1]);
    assert!(shared > 0.3, "shared words score {shared}");
    for other in &v[2..] {
        assert!(
            shared > dot(&v[0], other) + 0.2,
            "{shared} vs {}",
            dot(&v[0], other)
        );
    }
    // Case and plural forms still meet.
    let a = e.embed_one("KEYBINDING preference");
    let b = e.embed_one("keybindings preferences");
    assert!(dot(&a, &b) > 0.8, "{}", dot(&a, &b));
}

#[tokio::test]
async fn lexical_takes_any_input() {
    let e = LexicalEmbedder::new(64);
    let huge = "lorem ipsum dolor sit amet ".repeat(4000);
    let v = e
        .embed(&strings(&[
            "",
            "  ...!?  ",
            &huge,
            "🚀🔥 emoji",
            "\u{0}\u{1b}[31m\u{7f}",
        ]))
        .await
        .expect("embed");
    // No words: the zero vector, which matches nothing.
    assert!(v[0].iter().all(|x| *x == 0.0));
    assert!(v[1].iter().all(|x| *x == 0.0));
    assert_unit(&v[2]);
    assert_unit(&v[3]);
    assert_unit(&v[4]); // the escape sequence leaves the word "31m"
    assert!(e.embed(&[]).await.expect("empty call").is_empty());
    assert_eq!(LexicalEmbedder::new(0).dims(), 1);
}

// ---- HTTP --------------------------------------------------------------------------------

#[derive(Default)]
struct Seen {
    requests: Vec<Value>,
    auth: Vec<Option<String>>,
}

type Shared = Arc<Mutex<Seen>>;

/// A fake `/v1/embeddings` whose behaviour is chosen by the requested model's name.
async fn fake(State(seen): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    {
        let mut s = seen.lock().expect("lock");
        s.requests.push(body.clone());
        s.auth.push(auth);
    }
    let inputs = body["input"].as_array().cloned().unwrap_or_default();
    let n = inputs.len();
    // Vector i points mostly along axis i % 4, with length 10 (not normalised).
    let vector = |i: usize| -> Vec<f32> {
        let mut v = vec![0.0f32; 4];
        v[i % 4] = 8.0;
        v[(i + 1) % 4] = 6.0;
        v
    };
    match body["model"].as_str().unwrap_or("") {
        "reversed" => {
            let data: Vec<Value> = (0..n)
                .rev()
                .map(|i| json!({"object": "embedding", "index": i, "embedding": vector(i)}))
                .collect();
            Json(json!({"object": "list", "data": data, "model": "reversed",
                        "usage": {"prompt_tokens": 1, "total_tokens": 1}}))
            .into_response()
        }
        "fail-500" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "upstream exploded; key was sk-test-secret-123",
        )
            .into_response(),
        "unauthorized" => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "Incorrect API key provided"}})),
        )
            .into_response(),
        "bad-json" => (StatusCode::OK, "{\"data\": [ {\"index\": 0, \"embedd").into_response(),
        "html" => (StatusCode::OK, "<html>proxy login</html>").into_response(),
        "too-few" => Json(json!({"data": [{"index": 0, "embedding": vector(0)}]})).into_response(),
        "wrong-dims" => {
            let data: Vec<Value> = (0..n)
                .map(|i| json!({"index": i, "embedding": [1.0, 2.0]}))
                .collect();
            Json(json!({"data": data})).into_response()
        }
        "duplicate-index" => {
            let data: Vec<Value> = (0..n)
                .map(|_| json!({"index": 0, "embedding": vector(0)}))
                .collect();
            Json(json!({"data": data})).into_response()
        }
        "zero-vector" => {
            let data: Vec<Value> = (0..n)
                .map(|i| json!({"index": i, "embedding": [0.0, 0.0, 0.0, 0.0]}))
                .collect();
            Json(json!({"data": data})).into_response()
        }
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Json(json!({"data": []})).into_response()
        }
        _ => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// Starts the fake server; returns its base URL (`http://127.0.0.1:PORT/v1`).
async fn server() -> (String, Shared) {
    let seen: Shared = Arc::default();
    let app = Router::new()
        .route("/v1/embeddings", post(fake))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/v1"), seen)
}

fn client(base: &str, model: &str) -> HttpEmbedder {
    HttpEmbedder::new(base, model, Some("sk-test-secret-123".into()), 4)
        .expect("client")
        .with_timeouts(Duration::from_secs(2), Duration::from_millis(500))
        .expect("client")
}

#[tokio::test]
async fn http_orders_by_index_and_normalises() {
    let (base, seen) = server().await;
    // A trailing slash on the base URL must not double the path separator.
    let e = client(&format!("{base}/"), "reversed");
    assert_eq!(e.name(), "http:reversed");
    assert_eq!(e.dims(), 4);
    let v = e
        .embed(&strings(&["a", "b", "c", ""]))
        .await
        .expect("embed");
    assert_eq!(v.len(), 4);
    assert_eq!(v[0], vec![0.8, 0.6, 0.0, 0.0]);
    assert_eq!(v[1], vec![0.0, 0.8, 0.6, 0.0]);
    assert_eq!(v[2], vec![0.0, 0.0, 0.8, 0.6]);
    assert_eq!(v[3], vec![0.6, 0.0, 0.0, 0.8]);
    let s = seen.lock().expect("lock");
    assert_eq!(s.requests[0]["model"], "reversed");
    // The empty text is sent as a space: OpenAI refuses "".
    assert_eq!(s.requests[0]["input"], json!(["a", "b", "c", " "]));
    assert_eq!(s.auth[0].as_deref(), Some("Bearer sk-test-secret-123"));
    // Debug output never shows the key.
    assert!(!format!("{e:?}").contains("sk-test"));
}

#[tokio::test]
async fn http_splits_large_calls_and_keeps_order() {
    let (base, seen) = server().await;
    let e = client(&base, "reversed");
    let texts: Vec<String> = (0..300).map(|i| format!("text {i}")).collect();
    let v = e.embed(&texts).await.expect("embed");
    assert_eq!(v.len(), 300);
    assert_eq!(v[257][257 % 4], 0.8, "vector 257 in place");
    {
        let s = seen.lock().expect("lock");
        assert_eq!(s.requests.len(), 2, "256 + 44");
        assert_eq!(s.requests[1]["input"][0], "text 256");
    }
    assert!(e.embed(&[]).await.expect("empty").is_empty());
    assert_eq!(
        seen.lock().expect("lock").requests.len(),
        2,
        "no request for no texts"
    );
}

#[tokio::test]
async fn http_without_a_key_sends_no_authorization() {
    let (base, seen) = server().await;
    let e = HttpEmbedder::new(base, "reversed", None, 4).expect("client");
    e.embed(&strings(&["a"])).await.expect("embed");
    assert_eq!(seen.lock().expect("lock").auth[0], None);
}

#[tokio::test]
async fn http_error_status_is_reported_with_the_key_blanked() {
    let (base, _) = server().await;
    match client(&base, "fail-500").embed(&strings(&["a"])).await {
        Err(EmbedError::Http { status, body }) => {
            assert_eq!(status, 500);
            assert!(body.contains("upstream exploded"), "{body}");
            assert!(!body.contains("sk-test-secret"), "key leaked: {body}");
        }
        other => panic!("expected Http error, got {other:?}"),
    }
    let err = client(&base, "unauthorized")
        .embed(&strings(&["a"]))
        .await
        .unwrap_err();
    assert!(matches!(err, EmbedError::Http { status: 401, .. }), "{err}");
}

#[tokio::test]
async fn http_bad_answers_are_errors() {
    let (base, _) = server().await;
    for model in [
        "bad-json",
        "html",
        "too-few",
        "wrong-dims",
        "duplicate-index",
        "zero-vector",
    ] {
        let err = client(&base, model)
            .embed(&strings(&["a", "b"]))
            .await
            .expect_err(model);
        assert!(matches!(err, EmbedError::BadResponse(_)), "{model}: {err}");
    }
}

#[tokio::test]
async fn http_timeout_is_an_error() {
    let (base, _) = server().await;
    let started = std::time::Instant::now();
    let err = client(&base, "slow")
        .embed(&strings(&["a"]))
        .await
        .unwrap_err();
    assert!(matches!(err, EmbedError::Timeout(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "timeout not enforced"
    );
}

#[tokio::test]
async fn http_unreachable_is_an_error() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let err = client(&format!("http://127.0.0.1:{port}/v1"), "reversed")
        .embed(&strings(&["a"]))
        .await
        .unwrap_err();
    assert!(matches!(err, EmbedError::Transport(_)), "{err}");
}
