//! The real `inference-api` Lambda binary on lambda_http's streaming runner, driven
//! through a fake Lambda Runtime API with Function URL (payload v2) events, on moto's
//! DynamoDB, with a small fake Anthropic provider: proves `main.rs` wires the providers
//! file, credits, the table and the router as deployed, that responses go back in
//! streaming mode (prelude, eight NUL bytes, then the SSE events), and that the usage
//! record is written before an invocation ends (a frozen Lambda runs nothing after).

use std::collections::VecDeque;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use zerodb_domain::auth::{AuthService, AuthSettings};
use zerodb_domain::clock::SystemClock;
use zerodb_store_aws::{AwsClients, AwsTable, provision};

/// What the function sent back for one invocation.
#[derive(Debug)]
struct Reply {
    streaming: bool,
    prelude: Value,
    body: String,
}

#[derive(Clone)]
struct Runtime {
    events: Arc<Mutex<VecDeque<(String, Value)>>>,
    out: mpsc::UnboundedSender<(String, Reply)>,
}

async fn next(State(r): State<Runtime>) -> (HeaderMap, String) {
    let item = r.events.lock().unwrap().pop_front();
    let Some((id, event)) = item else {
        std::future::pending::<()>().await;
        unreachable!()
    };
    let mut h = HeaderMap::new();
    h.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
    h.insert(
        "lambda-runtime-deadline-ms",
        "9999999999999".parse().unwrap(),
    );
    h.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:inference-api"
            .parse()
            .unwrap(),
    );
    (h, event.to_string())
}

/// A streamed response is `<prelude JSON>` + 8 NUL bytes + the body.
async fn respond(
    State(r): State<Runtime>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let streaming = headers
        .get("lambda-runtime-function-response-mode")
        .is_some_and(|v| v == "streaming");
    let split = body.windows(8).position(|w| w == [0u8; 8]);
    let (prelude, rest) = match split {
        Some(i) => (&body[..i], &body[i + 8..]),
        None => (&body[..], &b""[..]),
    };
    let reply = Reply {
        streaming,
        prelude: serde_json::from_slice(prelude).unwrap_or(Value::Null),
        body: String::from_utf8_lossy(rest).into_owned(),
    };
    r.out.send((id, reply)).ok();
    StatusCode::ACCEPTED
}

async fn error(State(r): State<Runtime>, Path(id): Path<String>, body: String) -> StatusCode {
    let reply = Reply {
        streaming: false,
        prelude: json!({"runtime_error": body}),
        body: String::new(),
    };
    r.out.send((id, reply)).ok();
    StatusCode::ACCEPTED
}

/// The provider: Anthropic's Messages API, whole or streamed, echoing the last message.
async fn provider(
    headers: HeaderMap,
    axum::Json(b): axum::Json<Value>,
) -> axum::response::Response {
    assert_eq!(
        headers["x-api-key"], "provider-key",
        "the key from the environment"
    );
    // Content is a string, or (translated from OpenAI's format) a list of blocks.
    let content = &b["messages"].as_array().unwrap().last().unwrap()["content"];
    let said = match content.as_str() {
        Some(t) => t.to_owned(),
        None => content
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|block| block["text"].as_str())
            .collect(),
    };
    let text = format!("echo: {said}");
    if b["stream"] == true {
        let ev = |v: Value| format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap());
        let frames = [
            ev(
                json!({"type": "message_start", "message": {"id": "msg_up", "type": "message", "role": "assistant", "model": b["model"], "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 3, "output_tokens": 1}}}),
            ),
            ev(
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            ev(
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
            ),
            ev(json!({"type": "content_block_stop", "index": 0})),
            ev(
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 4}}),
            ),
            ev(json!({"type": "message_stop"})),
        ];
        return ([("content-type", "text/event-stream")], frames.concat()).into_response();
    }
    axum::Json(json!({"id": "msg_up", "type": "message", "role": "assistant", "model": b["model"],
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 3, "output_tokens": 4}}))
    .into_response()
}

fn url_event(method: &str, path: &str, headers: Value, body: Option<Value>) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous", "apiId": "url", "domainName": "url.lambda-url.us-east-1.on.aws",
            "domainPrefix": "url",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "req", "routeKey": "$default", "stage": "$default", "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_binary_streams_sse_through_the_runtime_and_records_usage_before_it_ends() {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL is not set: run ./infra/test.sh, which starts moto");
    let c = AwsClients::from_env().await;
    let suffix = zerodb_domain::ids::time_ordered_id();
    let (table, bucket) = (format!("it-{suffix}"), format!("ib-{suffix}"));
    provision::create_table(&c.dynamodb, &table).await.unwrap();
    provision::create_bucket(&c.s3, &bucket).await.unwrap();
    let queue = provision::create_queue(&c.sqs, &format!("iq-{suffix}"), None)
        .await
        .unwrap();
    let auth = AuthService::new(
        Arc::new(AwsTable::new(c.dynamodb.clone(), table.clone())),
        Arc::new(SystemClock),
        &AuthSettings {
            jwt_secret: vec![0; 32],
            rate_limit_per_minute: 0,
            rate_counting: Default::default(),
        },
    );
    let root = auth
        .create_account("lambda")
        .await
        .unwrap()
        .root_key
        .expose()
        .to_owned();

    let provider_addr = serve(Router::new().route("/v1/messages", post(provider))).await;
    let key = json!({"x-api-key": root, "content-type": "application/json"});
    let ask = |stream: bool| json!({"model": "fake", "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "count to three"}]});
    let (tx, mut rx) = mpsc::unbounded_channel();
    let events = VecDeque::from([
        (
            "1".to_owned(),
            url_event("POST", "/v1/messages", key.clone(), Some(ask(true))),
        ),
        (
            "2".to_owned(),
            url_event(
                "POST",
                "/v1/chat/completions",
                key.clone(),
                Some(
                    json!({"model": "ainative/fake", "messages": [{"role": "user", "content": "count to three"}]}),
                ),
            ),
        ),
        (
            "3".to_owned(),
            url_event("GET", "/api/v1/usage", key.clone(), None),
        ),
    ]);
    let runtime = Runtime {
        events: Arc::new(Mutex::new(events)),
        out: tx,
    };
    let runtime_addr = serve(
        Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .with_state(runtime),
    )
    .await;

    let providers = format!(
        "[providers.up]\nkind = \"anthropic\"\nbase_url = \"http://{provider_addr}\"\napi_key_env = \"UP_KEY\"\n\n[aliases]\nfake = {{ provider = \"up\", model = \"claude-up\", price = {{ input = 1, output = 1 }} }}\n"
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_inference-api"))
        .env("AWS_LAMBDA_RUNTIME_API", &runtime_addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "inference-api")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("ZERODB_TABLE", &table)
        .env("ZERODB_BUCKET", &bucket)
        .env("ZERODB_EVENTS_QUEUE_URL", &queue)
        .env(
            "ZERODB_JWT_SECRET",
            "a-test-signing-secret-of-at-least-32-bytes",
        )
        .env("ZERODB_PROVIDERS_TOML", &providers)
        .env("UP_KEY", "provider-key")
        .env("ZERODB_CREDITS_USD", "5")
        .env("ZERODB_PROVIDER_KEYS_SECRET", "")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start inference-api");

    let mut replies = std::collections::BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while replies.len() < 3 {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((id, r))) => {
                replies.insert(id, r);
            }
            _ => break,
        }
    }
    child.kill().ok();
    child.wait().ok();
    assert_eq!(replies.len(), 3, "every invocation answered: {replies:?}");

    // 1: SSE, streamed, in Anthropic's event grammar, naming the alias.
    let r = &replies["1"];
    assert!(r.streaming, "response mode streaming: {r:?}");
    assert_eq!(r.prelude["statusCode"], 200, "{r:?}");
    assert!(
        r.prelude["headers"]["content-type"]
            .as_str()
            .unwrap()
            .starts_with("text/event-stream"),
        "{r:?}"
    );
    assert!(r.body.starts_with("event: message_start\n"), "{}", r.body);
    assert!(
        r.body.contains(r#""text":"echo: count to three""#),
        "{}",
        r.body
    );
    assert!(r.body.contains(r#""model":"fake""#) && !r.body.contains("claude-up"));
    assert!(
        r.body.trim_end().ends_with(r#"{"type":"message_stop"}"#),
        "{}",
        r.body
    );

    // 2: a whole OpenAI-format reply, translated from the Anthropic provider.
    let r = &replies["2"];
    assert_eq!(r.prelude["statusCode"], 200, "{r:?}");
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "echo: count to three"
    );
    assert_eq!(v["usage"]["total_tokens"], 7);

    // 3: both calls were recorded, with their cost taken from the 5 credits, before their
    // invocations ended.
    let r = &replies["3"];
    assert_eq!(r.prelude["statusCode"], 200, "{r:?}");
    let u: Value = serde_json::from_str(&r.body).unwrap();
    let records = u["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{u}");
    for rec in records {
        assert_eq!(rec["alias"], "fake");
        assert_eq!(rec["provider_model"], "claude-up");
        assert_eq!(rec["input_tokens"], 3, "{rec}");
        assert_eq!(rec["output_tokens"], 4, "{rec}");
    }
    assert_eq!(records[0]["endpoint"], "openai");
    assert_eq!(records[1]["stream"], true);
    assert_eq!(u["credits"]["limited"], true);
    // 7 tokens at one credit per million each, twice.
    assert_eq!(u["credits"]["spent_usd"], 0.000014, "{u}");
}
