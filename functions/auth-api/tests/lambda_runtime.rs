//! The real `auth-api` Lambda binary, driven through a fake Lambda Runtime API with
//! HttpApi (payload v2) events, on moto's DynamoDB/S3/SQS: proves `main.rs` wires config,
//! clients and router as deployed, and prints how long its init phase took.

use std::collections::VecDeque;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use zerodb_domain::auth::{AuthService, AuthSettings};
use zerodb_domain::clock::SystemClock;
use zerodb_store_aws::{AwsClients, AwsTable, provision};

#[derive(Clone)]
struct Fake {
    events: Arc<Mutex<VecDeque<(String, Value)>>>,
    first_poll: Arc<Mutex<Option<Instant>>>,
    out: mpsc::UnboundedSender<(String, Value)>,
}

async fn next(State(f): State<Fake>) -> (HeaderMap, String) {
    f.first_poll
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now);
    let item = f.events.lock().unwrap().pop_front();
    let Some((id, event)) = item else {
        // No more work: hold the poll open, as Lambda does between invocations.
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
        "arn:aws:lambda:us-east-1:123456789012:function:auth-api"
            .parse()
            .unwrap(),
    );
    h.insert(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000".parse().unwrap(),
    );
    (h, event.to_string())
}

async fn respond(State(f): State<Fake>, Path(id): Path<String>, body: String) -> StatusCode {
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    f.out.send((id, v)).ok();
    StatusCode::ACCEPTED
}

async fn error(State(f): State<Fake>, Path(id): Path<String>, body: String) -> StatusCode {
    f.out.send((id, json!({"runtime_error": body}))).ok();
    StatusCode::ACCEPTED
}

async fn init_error(State(f): State<Fake>, body: String) -> StatusCode {
    f.out
        .send(("init".to_owned(), json!({"runtime_error": body})))
        .ok();
    StatusCode::ACCEPTED
}

fn http_event(
    method: &str,
    path: &str,
    route_key: &str,
    headers: Value,
    body: Option<Value>,
) -> Value {
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "req", "routeKey": route_key, "stage": "$default", "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_binary_serves_http_api_events_against_dynamodb() {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL is not set: run ./infra/test.sh, which starts moto");
    let c = AwsClients::from_env().await;
    let suffix = zerodb_domain::ids::time_ordered_id();
    let (table, bucket) = (format!("lt-{suffix}"), format!("lb-{suffix}"));
    provision::create_table(&c.dynamodb, &table).await.unwrap();
    provision::create_bucket(&c.s3, &bucket).await.unwrap();
    let queue = provision::create_queue(&c.sqs, &format!("lq-{suffix}"), None)
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
    let account = auth.create_account("lambda").await.unwrap();
    let root = account.root_key.expose().to_owned();

    let (tx, mut rx) = mpsc::unbounded_channel();
    let events = VecDeque::from([
        (
            "1".to_owned(),
            http_event(
                "GET",
                "/api/v1/health",
                "GET /api/v1/health",
                json!({}),
                None,
            ),
        ),
        (
            "2".to_owned(),
            http_event(
                "POST",
                "/api/v1/auth/keys",
                "POST /api/v1/auth/keys",
                json!({"authorization": format!("Bearer {root}"), "content-type": "application/json"}),
                Some(
                    json!({"name": "from-lambda", "ttl_seconds": 3600, "scopes": ["memory:read:session/run-42"]}),
                ),
            ),
        ),
        (
            "3".to_owned(),
            http_event("GET", "/api/v1/elsewhere", "$default", json!({}), None),
        ),
        (
            "4".to_owned(),
            http_event("GET", "/openapi.json", "GET /openapi.json", json!({}), None),
        ),
    ]);
    let fake = Fake {
        events: Arc::new(Mutex::new(events)),
        first_poll: Arc::default(),
        out: tx,
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(respond),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let runtime_api = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_auth-api"))
        .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "auth-api")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("ZERODB_TABLE", &table)
        .env("ZERODB_BUCKET", &bucket)
        .env("ZERODB_EVENTS_QUEUE_URL", &queue)
        .env(
            "ZERODB_JWT_SECRET",
            "a-test-signing-secret-of-at-least-32-bytes",
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start auth-api");

    let mut replies = std::collections::BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while replies.len() < 4 {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((id, v))) => {
                replies.insert(id, v);
            }
            _ => break,
        }
    }
    child.kill().ok();
    child.wait().ok();
    let init = fake
        .first_poll
        .lock()
        .unwrap()
        .map(|t| t.duration_since(started));
    eprintln!("auth-api init: process start to first invocation poll = {init:?}");
    assert_eq!(replies.len(), 4, "every invocation answered: {replies:?}");

    let body = |id: &str| -> Value {
        serde_json::from_str(replies[id]["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
    };
    assert_eq!(replies["1"]["statusCode"], 200);
    assert_eq!(body("1")["status"], "healthy");
    assert_eq!(replies["2"]["statusCode"], 201, "{:?}", replies["2"]);
    assert!(body("2")["key"].as_str().unwrap().starts_with("sk_"));
    assert_eq!(body("2")["scopes"], json!(["memory:read:session/run-42"]));
    assert_eq!(replies["3"]["statusCode"], 404);
    assert_eq!(body("3")["error_code"], "API_404");
    assert_eq!(replies["4"]["statusCode"], 200);
    assert!(body("4")["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(body("4")["paths"]["/api/v1/auth/keys"].is_object());
}

#[test]
fn missing_configuration_fails_init_naming_every_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_auth-api"))
        .env_remove("ZERODB_TABLE")
        .env_remove("ZERODB_BUCKET")
        .env_remove("ZERODB_EVENTS_QUEUE_URL")
        .env("ZERODB_JWT_SECRET", "short")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .expect("run auth-api");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    for name in [
        "ZERODB_TABLE",
        "ZERODB_BUCKET",
        "ZERODB_EVENTS_QUEUE_URL",
        "ZERODB_JWT_SECRET must be at least 32 bytes",
    ] {
        assert!(text.contains(name), "stderr should name {name}: {text}");
    }
}
