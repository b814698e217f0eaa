//! A fake Lambda Runtime API, the one every Lambda binary of the workspace is driven
//! through: it hands out invocation events as AWS does (`/runtime/invocation/next`,
//! held open while there is none), takes responses whole or in streaming mode (prelude,
//! eight NUL bytes, body), and records errors and when the function first polled (the
//! end of its init phase). Events come in the shapes production sends: HTTP API payload
//! v2, Function URL, SQS batches.

use std::collections::{BTreeMap, VecDeque};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// What a function sent back for one invocation.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Sent in `streaming` response mode.
    pub streaming: bool,
    /// The response document (HTTP API / SQS batch response), or a stream's prelude, or
    /// `{"runtime_error": ...}`.
    pub head: Value,
    /// A stream's body; a whole HTTP response's `body`.
    pub body: String,
}

impl Reply {
    pub fn status(&self) -> u64 {
        self.head["statusCode"].as_u64().unwrap_or(0)
    }
    /// The body as JSON (Null if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Clone)]
struct Shared {
    events: Arc<Mutex<VecDeque<(String, Value)>>>,
    first_poll: Arc<Mutex<Option<Instant>>>,
    out: mpsc::UnboundedSender<(String, Reply)>,
    function: String,
}

async fn next(State(s): State<Shared>) -> (HeaderMap, String) {
    s.first_poll
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now);
    let item = s.events.lock().unwrap().pop_front();
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
        format!(
            "arn:aws:lambda:us-east-1:123456789012:function:{}",
            s.function
        )
        .parse()
        .unwrap(),
    );
    h.insert(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000".parse().unwrap(),
    );
    (h, event.to_string())
}

async fn respond(
    State(s): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let streaming = headers
        .get("lambda-runtime-function-response-mode")
        .is_some_and(|v| v == "streaming");
    let reply = if streaming {
        let split = body.windows(8).position(|w| w == [0u8; 8]);
        let (prelude, rest) = match split {
            Some(i) => (&body[..i], &body[i + 8..]),
            None => (&body[..], &b""[..]),
        };
        Reply {
            streaming,
            head: serde_json::from_slice(prelude).unwrap_or(Value::Null),
            body: String::from_utf8_lossy(rest).into_owned(),
        }
    } else {
        let head: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let body = head["body"].as_str().unwrap_or_default().to_owned();
        Reply {
            streaming,
            head,
            body,
        }
    };
    s.out.send((id, reply)).ok();
    StatusCode::ACCEPTED
}

async fn error(State(s): State<Shared>, Path(id): Path<String>, body: String) -> StatusCode {
    let reply = Reply {
        streaming: false,
        head: json!({"runtime_error": body}),
        body: String::new(),
    };
    s.out.send((id, reply)).ok();
    StatusCode::ACCEPTED
}

async fn init_error(State(s): State<Shared>, body: String) -> StatusCode {
    let reply = Reply {
        streaming: false,
        head: json!({"runtime_error": body}),
        body: String::new(),
    };
    s.out.send(("init".to_owned(), reply)).ok();
    StatusCode::ACCEPTED
}

/// A Runtime API for one function, with its invocations queued up front.
pub struct FakeRuntime {
    addr: String,
    shared: Shared,
    replies: mpsc::UnboundedReceiver<(String, Reply)>,
    started: Option<Instant>,
}

impl FakeRuntime {
    /// Serves `function`'s Runtime API on a free port, handing out `events` (id, event)
    /// in order.
    pub async fn start(function: &str, events: Vec<(&str, Value)>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Shared {
            events: Arc::new(Mutex::new(
                events
                    .into_iter()
                    .map(|(id, e)| (id.to_owned(), e))
                    .collect(),
            )),
            first_poll: Arc::default(),
            out: tx,
            function: function.to_owned(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeRuntime {
            addr,
            shared,
            replies: rx,
            started: None,
        }
    }

    /// Starts the function's real binary against this Runtime API, with the variables
    /// Lambda sets and `env`.
    pub fn spawn(&mut self, binary: &str, env: &[(String, String)]) -> Child {
        self.started = Some(Instant::now());
        Command::new(crate::workspace_bin(binary))
            .env("AWS_LAMBDA_RUNTIME_API", &self.addr)
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.shared.function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"))
    }

    /// Waits (at most `timeout`) for `n` replies, by invocation id.
    pub async fn replies(&mut self, n: usize, timeout: Duration) -> BTreeMap<String, Reply> {
        let mut out = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while out.len() < n {
            match tokio::time::timeout_at(deadline, self.replies.recv()).await {
                Ok(Some((id, r))) => {
                    out.insert(id, r);
                }
                _ => break,
            }
        }
        out
    }

    /// From process start to the first poll for work: the function's init phase.
    pub fn init_time(&self) -> Option<Duration> {
        let polled = (*self.shared.first_poll.lock().unwrap())?;
        Some(polled.duration_since(self.started?))
    }
}

/// An API Gateway HTTP API (payload v2) event; `route_key` is the route that matched
/// (`POST /api/v1/auth/keys`, `ANY /api/v1/public/memory/{proxy+}`, `$default`).
pub fn http_api_event(
    method: &str,
    path: &str,
    route_key: &str,
    headers: Value,
    body: Option<Value>,
) -> Value {
    let mut e = json!({
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
    });
    if let Some(proxy) = route_key
        .strip_prefix("ANY ")
        .and_then(|r| r.strip_suffix("/{proxy+}"))
        .and_then(|prefix| path.strip_prefix(prefix))
    {
        e["pathParameters"] = json!({"proxy": proxy.trim_start_matches('/')});
    }
    e
}

/// A Function URL event (payload v2, `routeKey` `$default`).
pub fn function_url_event(method: &str, path: &str, headers: Value, body: Option<Value>) -> Value {
    let mut e = http_api_event(method, path, "$default", headers, body);
    e["requestContext"]["accountId"] = json!("anonymous");
    e["requestContext"]["apiId"] = json!("url");
    e["requestContext"]["domainName"] = json!("url.lambda-url.us-east-1.on.aws");
    e["requestContext"]["domainPrefix"] = json!("url");
    e
}

/// An SQS trigger's event: one record per (message id, receipt handle, body).
pub fn sqs_event(queue_arn: &str, messages: &[(String, String, String)]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, receipt, body)| {
            json!({
                "messageId": id,
                "receiptHandle": receipt,
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1767225600000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1767225600001"
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}
