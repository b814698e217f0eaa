//! A fake LLM provider speaking both the Anthropic Messages API and OpenAI chat completions,
//! for the gateway's tests and benchmarks: deterministic replies and token counts, and
//! failure behaviours chosen by the request's model id.
//!
//! Routes: `POST /anthropic/v1/messages` (base_url `http://HOST:PORT/anthropic`),
//! `POST /openai/v1/chat/completions` (base_url `http://HOST:PORT/openai/v1`),
//! `GET /stats` → `{"requests": {"<model>": n}, "cancelled": n}`, `POST /stats/reset`.
//!
//! Models (the same on both routes, each in its route's wire format):
//! - anything not below (e.g. `echo-1`): `echo: <last user text>`; with `tools`, a call of
//!   the first tool with `{"query": <last user text>}`; after a tool result,
//!   `tool said: <result text>`. Input tokens are the words of every message and the
//!   system prompt (at least 1), output tokens the words of the reply (7 for a tool call).
//! - `rate-limited`: 429, `Retry-After: 30`. `busy-once`: per route and model, odd requests
//!   get 429 with `Retry-After: 1`, even ones succeed. `server-error`: 500.
//! - `leaky-error`: 500 whose message names an internal URL, a secret id and a variable
//!   (`LEAKY_MARKERS`), as a misconfigured upstream might: none of it may reach a client.
//! - `no-usage`: as `echo-1` but the reply carries no counts (OpenAI: no `usage`, and no
//!   usage chunk even when asked; Anthropic: zero counts in the whole reply).
//! - `gated`: as `echo-1`, answered only once the test opens the gate
//!   (`Stats::open_gate`); `Stats::gated` counts the requests waiting at it.
//! - `slow`: answers after 30 s. `cut`: half a body (or, streamed, the first text delta),
//!   then the connection is dropped. `endless`: a `tick ` delta every 20 ms until the
//!   client goes away, which is counted in `cancelled`.
//!
//! Nothing is logged per request and nothing waits unless the model says so: latency
//! benchmarks run through this.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// How long `slow` waits before answering: far past any timeout a test configures.
pub const SLOW_DELAY: Duration = Duration::from_secs(30);
/// Interval between `endless`'s deltas.
pub const TICK: Duration = Duration::from_millis(20);
/// Pause before `cut` drops the connection, so that hyper has flushed what went before
/// (an error from the body aborts the connection, and with it any unwritten bytes).
const CUT_PAUSE: Duration = Duration::from_millis(20);
/// Output tokens reported for a tool call.
pub const TOOL_CALL_TOKENS: u64 = 7;
/// Ids of the (single) tool call a reply makes.
pub const ANTHROPIC_TOOL_ID: &str = "toolu_fake1";
pub const OPENAI_TOOL_ID: &str = "call_fake1";

/// Pieces of `leaky-error`'s message that must never reach a deployment's client.
pub const LEAKY_MARKERS: [&str; 4] = [
    "internal-llm.corp.example",
    "arn:aws:secretsmanager",
    "NIM_API_KEY",
    "sk-live-",
];

/// `gated`'s gate: closed until opened; counts arrivals.
struct Gate {
    open: tokio::sync::watch::Sender<bool>,
    arrived: tokio::sync::watch::Sender<u64>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            open: tokio::sync::watch::channel(false).0,
            arrived: tokio::sync::watch::channel(0).0,
        }
    }
}

/// What the fake has been asked, shared by the handlers and whoever started it.
#[derive(Default)]
pub struct Stats {
    gate: Gate,
    requests: Mutex<HashMap<String, u64>>,
    /// `busy-once`'s counters, per (route, model): alternation is per route so that one
    /// route's test does not shift the other's.
    busy: Mutex<HashMap<(Api, String), u64>>,
    cancelled: AtomicU64,
    /// Message ids; not reset, so ids stay unique for the life of the process.
    ids: AtomicU64,
}

impl Stats {
    /// Requests seen for a provider model id.
    pub fn requests(&self, model: &str) -> u64 {
        self.requests
            .lock()
            .unwrap()
            .get(model)
            .copied()
            .unwrap_or(0)
    }

    /// Streams whose client went away before the stream's end.
    pub fn cancelled(&self) -> u64 {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Requests that have reached `gated`'s gate, as they arrive.
    pub fn gated(&self) -> tokio::sync::watch::Receiver<u64> {
        self.gate.arrived.subscribe()
    }

    /// Lets every `gated` request, waiting or to come, answer.
    pub fn open_gate(&self) {
        self.gate.open.send_replace(true);
    }

    pub fn reset(&self) {
        self.requests.lock().unwrap().clear();
        self.busy.lock().unwrap().clear();
        self.cancelled.store(0, Ordering::SeqCst);
    }

    pub fn to_json(&self) -> Value {
        json!({
            "requests": *self.requests.lock().unwrap(),
            "cancelled": self.cancelled(),
        })
    }

    fn count(&self, model: &str) {
        *self
            .requests
            .lock()
            .unwrap()
            .entry(model.to_owned())
            .or_default() += 1;
    }

    /// The 1-based number of this request among `busy-once`'s on this route.
    fn busy_turn(&self, api: Api, model: &str) -> u64 {
        let mut busy = self.busy.lock().unwrap();
        let n = busy.entry((api, model.to_owned())).or_default();
        *n += 1;
        *n
    }
}

/// A running fake provider; the server stops when this is dropped.
pub struct FakeProvider {
    addr: SocketAddr,
    stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeProvider {
    /// Binds `addr` (port 0 for a free one) and serves in a background task.
    pub async fn start(addr: SocketAddr) -> std::io::Result<FakeProvider> {
        use axum::serve::ListenerExt;
        let stats = Arc::new(Stats::default());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        // Deltas are small writes: without NODELAY, Nagle holds each behind the previous
        // one's ACK and a streamed reply's latency is the peer's delayed-ACK timer.
        let listener = listener.tap_io(|tcp| {
            // Best effort: a socket that refuses is merely slower.
            tcp.set_nodelay(true).ok();
        });
        let app = router(stats.clone());
        let task = tokio::spawn(async move {
            // serve only returns on an accept error it cannot recover from.
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("fake-provider stopped: {e}");
            }
        });
        Ok(FakeProvider { addr, stats, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base_url of an `anthropic` provider (requests go to `{base}/v1/messages`).
    pub fn base_url_anthropic(&self) -> String {
        format!("http://{}/anthropic", self.addr)
    }

    /// The base_url of an `openai` provider (requests go to `{base}/chat/completions`).
    pub fn base_url_openai(&self) -> String {
        format!("http://{}/openai/v1", self.addr)
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Waits on the server task (for the binary, which serves until killed).
    pub async fn serve_forever(mut self) {
        // The task only ends on a fatal accept error, already reported.
        (&mut self.task).await.ok();
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The fake's routes over `stats`, for tests that mount it themselves.
pub fn router(stats: Arc<Stats>) -> Router {
    Router::new()
        .route("/anthropic/v1/messages", post(anthropic))
        .route("/openai/v1/chat/completions", post(openai))
        .route(
            "/stats",
            get(|State(s): State<Arc<Stats>>| async move { axum::Json(s.to_json()) }),
        )
        .route(
            "/stats/reset",
            post(|State(s): State<Arc<Stats>>| async move {
                s.reset();
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(stats)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Api {
    Anthropic,
    OpenAi,
}

async fn anthropic(State(stats): State<Arc<Stats>>, headers: HeaderMap, body: Bytes) -> Response {
    // The real API checks the key first, then the version header (a 400, as it answers).
    if !headers.contains_key("x-api-key") {
        return error(
            Api::Anthropic,
            StatusCode::UNAUTHORIZED,
            "x-api-key header is required",
        );
    }
    if !headers.contains_key("anthropic-version") {
        return error(
            Api::Anthropic,
            StatusCode::BAD_REQUEST,
            "anthropic-version: header is required",
        );
    }
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                Api::Anthropic,
                StatusCode::BAD_REQUEST,
                &format!("invalid JSON: {e}"),
            );
        }
    };
    // The real API refuses a request without max_tokens: a gateway translating from
    // OpenAI, where it is optional, has to supply one.
    if !req["max_tokens"].is_u64() {
        return error(
            Api::Anthropic,
            StatusCode::BAD_REQUEST,
            "max_tokens: Field required",
        );
    }
    respond(Api::Anthropic, stats, &req).await
}

async fn openai(State(stats): State<Arc<Stats>>, headers: HeaderMap, body: Bytes) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer ") && v.len() > "Bearer ".len());
    if !bearer {
        return error(
            Api::OpenAi,
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth.",
        );
    }
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                Api::OpenAi,
                StatusCode::BAD_REQUEST,
                &format!("invalid JSON: {e}"),
            );
        }
    };
    respond(Api::OpenAi, stats, &req).await
}

/// Applies the model's behaviour to a parsed request.
async fn respond(api: Api, stats: Arc<Stats>, req: &Value) -> Response {
    let Some(model) = req["model"].as_str() else {
        return error(api, StatusCode::BAD_REQUEST, "model: Field required");
    };
    if req["messages"].as_array().is_none_or(|m| m.is_empty()) {
        return error(
            api,
            StatusCode::BAD_REQUEST,
            "messages: at least one message is required",
        );
    }
    stats.count(model);
    let stream = req["stream"].as_bool().unwrap_or(false);
    match model {
        "rate-limited" => return rate_limited(api, "30"),
        "server-error" => {
            return error(
                api,
                StatusCode::INTERNAL_SERVER_ERROR,
                "the fake provider failed, as asked",
            );
        }
        "leaky-error" => {
            return error(
                api,
                StatusCode::INTERNAL_SERVER_ERROR,
                "upstream https://internal-llm.corp.example:8443/v1/chat/completions failed: key from arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/nim-key (NIM_API_KEY=sk-live-0123456789) rejected",
            );
        }
        "gated" => {
            stats.gate.arrived.send_modify(|n| *n += 1);
            let mut open = stats.gate.open.subscribe();
            let _ = open.wait_for(|o| *o).await;
        }
        "busy-once" if stats.busy_turn(api, model) % 2 == 1 => return rate_limited(api, "1"),
        "slow" => tokio::time::sleep(SLOW_DELAY).await,
        _ => {}
    }
    let turn = match api {
        Api::Anthropic => Turn::from_anthropic(req),
        Api::OpenAi => Turn::from_openai(req),
    };
    let id = stats.ids.fetch_add(1, Ordering::Relaxed) + 1;
    let reply = Rendered {
        api,
        id: match api {
            Api::Anthropic => format!("msg_fake{id}"),
            Api::OpenAi => format!("chatcmpl-fake{id}"),
        },
        model: model.to_owned(),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        include_usage: req["stream_options"]["include_usage"]
            .as_bool()
            .unwrap_or(false)
            && model != "no-usage",
        no_usage: model == "no-usage",
    };
    if !stream {
        let body = serde_json::to_vec(&reply.whole(&turn)).expect("a Value serialises");
        if model == "cut" {
            let half = body.len() / 2;
            let half = Bytes::from(body).slice(..half);
            return streamed(
                Plan::new(VecDeque::from([half]), Tail::Abort),
                "application/json",
            );
        }
        return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    let frames = reply.frames(&turn);
    let plan = match model {
        "cut" => {
            // Everything up to and including the first text delta, then a dropped
            // connection: no message_stop, no [DONE].
            let upto = frames
                .iter()
                .position(|f| f.is_delta)
                .map_or(frames.len(), |i| i + 1);
            Plan::new(
                frames.into_iter().take(upto).map(|f| f.bytes).collect(),
                Tail::Abort,
            )
        }
        "endless" => {
            let head = frames
                .into_iter()
                .take_while(|f| !f.is_delta)
                .map(|f| f.bytes)
                .collect();
            Plan::new(head, Tail::Tick(reply.text_delta("tick ")))
        }
        _ => Plan::new(frames.into_iter().map(|f| f.bytes).collect(), Tail::End),
    }
    .counting_cancel(stats);
    streamed(plan, "text/event-stream")
}

fn rate_limited(api: Api, retry_after: &'static str) -> Response {
    let mut resp = error(
        api,
        StatusCode::TOO_MANY_REQUESTS,
        "rate limited by the fake provider, as asked",
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(retry_after));
    resp
}

/// An error in the route's own format, with the type the real API gives that status.
fn error(api: Api, status: StatusCode, message: &str) -> Response {
    let body = match api {
        Api::Anthropic => {
            let kind = match status.as_u16() {
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                429 => "rate_limit_error",
                500 => "api_error",
                529 => "overloaded_error",
                _ => "invalid_request_error",
            };
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
        Api::OpenAi => {
            let (kind, code) = match status.as_u16() {
                401 => ("invalid_request_error", Value::from("invalid_api_key")),
                429 => ("rate_limit_error", Value::from("rate_limit_exceeded")),
                s if s >= 500 => ("server_error", Value::Null),
                _ => ("invalid_request_error", Value::Null),
            };
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
        }
    };
    (status, axum::Json(body)).into_response()
}

// -- the conversation, read from either format -------------------------------------------

/// What the fake answers, and the tokens it counts for it.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Text(String),
    /// A call of the named tool with `{"query": query}`.
    Tool {
        name: String,
        query: String,
    },
}

#[derive(Debug, Clone)]
struct Turn {
    answer: Answer,
    input_tokens: u64,
    output_tokens: u64,
}

impl Turn {
    fn new(answer: Answer, input_words: u64) -> Turn {
        let output_tokens = match &answer {
            Answer::Text(t) => words(t),
            Answer::Tool { .. } => TOOL_CALL_TOKENS,
        };
        Turn {
            answer,
            input_tokens: input_words.max(1),
            output_tokens,
        }
    }

    fn decide(
        tools: Option<String>,
        tool_results: Option<String>,
        last_user: String,
        input_words: u64,
    ) -> Turn {
        let answer = match (tool_results, tools) {
            (Some(result), _) => Answer::Text(format!("tool said: {result}")),
            (None, Some(name)) => Answer::Tool {
                name,
                query: last_user,
            },
            (None, None) => Answer::Text(format!("echo: {last_user}")),
        };
        Turn::new(answer, input_words)
    }

    /// Words are counted over text only (text blocks, string contents, tool results):
    /// neither tool calls nor tool definitions, so a conversation counts the same in both
    /// formats and the gateway's translation can be checked by its token counts.
    fn from_anthropic(req: &Value) -> Turn {
        let messages = req["messages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut input = words(&content_text(&req["system"]));
        for m in messages {
            input += words(&content_text(&m["content"]));
            input += words(&anthropic_tool_results(&m["content"]).unwrap_or_default());
        }
        let tool_results = messages
            .last()
            .filter(|m| m["role"] == "user")
            .and_then(|m| anthropic_tool_results(&m["content"]));
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user" && anthropic_tool_results(&m["content"]).is_none())
            .map(|m| content_text(&m["content"]))
            .unwrap_or_default();
        let tool = req["tools"][0]["name"].as_str().map(str::to_owned);
        Turn::decide(tool, tool_results, last_user, input)
    }

    fn from_openai(req: &Value) -> Turn {
        let messages = req["messages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let input = messages
            .iter()
            .map(|m| words(&content_text(&m["content"])))
            .sum();
        // Parallel calls end the conversation with one tool message each.
        let trailing: Vec<String> = messages
            .iter()
            .rev()
            .take_while(|m| m["role"] == "tool")
            .map(|m| content_text(&m["content"]))
            .collect();
        let tool_results = (!trailing.is_empty())
            .then(|| trailing.into_iter().rev().collect::<Vec<_>>().join(" "));
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .map(|m| content_text(&m["content"]))
            .unwrap_or_default();
        let tool = req["tools"][0]["function"]["name"]
            .as_str()
            .map(str::to_owned);
        Turn::decide(tool, tool_results, last_user, input)
    }
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// The text of a content value in either format: a string, or the `text` of its text
/// blocks/parts joined by spaces (tool results are read by [`anthropic_tool_results`]).
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter(|p| p["type"] == "text")
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// The text of an Anthropic content's tool_result blocks, joined; None when it has none.
fn anthropic_tool_results(content: &Value) -> Option<String> {
    let results: Vec<String> = content
        .as_array()?
        .iter()
        .filter(|b| b["type"] == "tool_result")
        .map(|b| content_text(&b["content"]))
        .collect();
    (!results.is_empty()).then(|| results.join(" "))
}

// -- rendering ---------------------------------------------------------------------------

struct Rendered {
    api: Api,
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    /// `no-usage`: the reply carries no counts.
    no_usage: bool,
}

/// One SSE frame; `is_delta` marks a content delta (text or tool arguments), where `cut`
/// and `endless` take over.
struct Frame {
    bytes: Bytes,
    is_delta: bool,
}

impl Rendered {
    /// The arguments of the tool call as the OpenAI wire carries them, in pieces for
    /// streaming (at least two: the key, then the value and the closing brace).
    fn tool_args(query: &str) -> [String; 2] {
        let value = serde_json::to_string(query).expect("a string serialises");
        ["{\"query\": ".to_owned(), format!("{value}}}")]
    }

    fn whole(&self, turn: &Turn) -> Value {
        let (i, o) = match self.no_usage {
            true => (0, 0),
            false => (turn.input_tokens, turn.output_tokens),
        };
        match self.api {
            Api::Anthropic => {
                let (content, stop) = match &turn.answer {
                    Answer::Text(t) => (json!([{"type": "text", "text": t}]), "end_turn"),
                    Answer::Tool { name, query } => (
                        json!([{"type": "tool_use", "id": ANTHROPIC_TOOL_ID, "name": name,
                                "input": {"query": query}}]),
                        "tool_use",
                    ),
                };
                json!({
                    "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                    "content": content, "stop_reason": stop, "stop_sequence": null,
                    "usage": {"input_tokens": i, "output_tokens": o},
                })
            }
            Api::OpenAi => {
                let (message, finish) = match &turn.answer {
                    Answer::Text(t) => (
                        json!({"role": "assistant", "content": t, "refusal": null}),
                        "stop",
                    ),
                    Answer::Tool { name, query } => (
                        json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": [{
                            "id": OPENAI_TOOL_ID, "type": "function",
                            "function": {"name": name, "arguments": Self::tool_args(query).concat()},
                        }]}),
                        "tool_calls",
                    ),
                };
                let mut v = json!({
                    "id": self.id, "object": "chat.completion", "created": self.created,
                    "model": self.model,
                    "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
                    "usage": {"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o},
                });
                if self.no_usage {
                    v.as_object_mut().expect("an object").remove("usage");
                }
                v
            }
        }
    }

    fn frames(&self, turn: &Turn) -> Vec<Frame> {
        match self.api {
            Api::Anthropic => self.anthropic_frames(turn),
            Api::OpenAi => self.openai_frames(turn),
        }
    }

    fn anthropic_frames(&self, turn: &Turn) -> Vec<Frame> {
        let mut out = vec![
            event(
                "message_start",
                &json!({"type": "message_start", "message": {
                    "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    // As the real API: a provisional output count, replaced by message_delta's.
                    "usage": {"input_tokens": turn.input_tokens, "output_tokens": 1},
                }}),
            ),
            // The real API sends pings; a client has to pass over them.
            event("ping", &json!({"type": "ping"})),
        ];
        let stop = match &turn.answer {
            Answer::Text(text) => {
                out.push(event(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}),
                ));
                out.extend(text.split_inclusive(' ').map(|w| delta(self.text_delta(w))));
                "end_turn"
            }
            Answer::Tool { name, query } => {
                out.push(event("content_block_start", &json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "tool_use", "id": ANTHROPIC_TOOL_ID, "name": name, "input": {}}})));
                out.extend(Self::tool_args(query).iter().map(|piece| {
                    delta(
                        event(
                            "content_block_delta",
                            &json!({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "input_json_delta", "partial_json": piece}}),
                        )
                        .bytes,
                    )
                }));
                "tool_use"
            }
        };
        out.push(event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": 0}),
        ));
        out.push(event(
            "message_delta",
            &json!({"type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"output_tokens": turn.output_tokens}}),
        ));
        out.push(event("message_stop", &json!({"type": "message_stop"})));
        out
    }

    fn openai_frames(&self, turn: &Turn) -> Vec<Frame> {
        let mut out = Vec::new();
        let finish = match &turn.answer {
            Answer::Text(text) => {
                out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
                out.extend(text.split_inclusive(' ').map(|w| delta(self.text_delta(w))));
                "stop"
            }
            Answer::Tool { name, query } => {
                let [first, rest] = Self::tool_args(query);
                out.push(delta(
                    self.chunk(
                        json!({"role": "assistant", "content": null, "tool_calls": [{
                    "index": 0, "id": OPENAI_TOOL_ID, "type": "function",
                    "function": {"name": name, "arguments": first}}]}),
                        None,
                    )
                    .bytes,
                ));
                out.push(delta(
                    self.chunk(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": rest}}]}),
                        None,
                    )
                    .bytes,
                ));
                "tool_calls"
            }
        };
        out.push(self.chunk(json!({}), Some(finish)));
        if self.include_usage {
            let (i, o) = (turn.input_tokens, turn.output_tokens);
            out.push(sse_data(&json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": [],
                "usage": {"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o},
            })));
        }
        out.push(Frame {
            bytes: Bytes::from_static(b"data: [DONE]\n\n"),
            is_delta: false,
        });
        out
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Frame {
        let mut chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        // As the real API: with include_usage every chunk carries usage, null until the end.
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        sse_data(&chunk)
    }

    /// A text delta in this route's format (also `endless`'s tick).
    fn text_delta(&self, text: &str) -> Bytes {
        match self.api {
            Api::Anthropic => {
                event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": text}}),
                )
                .bytes
            }
            Api::OpenAi => self.chunk(json!({"content": text}), None).bytes,
        }
    }
}

fn event(kind: &str, data: &Value) -> Frame {
    Frame {
        bytes: Bytes::from(format!("event: {kind}\ndata: {data}\n\n")),
        is_delta: false,
    }
}

fn sse_data(data: &Value) -> Frame {
    Frame {
        bytes: Bytes::from(format!("data: {data}\n\n")),
        is_delta: false,
    }
}

fn delta(bytes: Bytes) -> Frame {
    Frame {
        bytes,
        is_delta: true,
    }
}

// -- bodies ------------------------------------------------------------------------------

/// How a body ends once its frames are out.
enum Tail {
    End,
    /// An error from the body, so hyper drops the connection mid-message.
    Abort,
    /// This frame every [`TICK`], forever.
    Tick(Bytes),
}

struct Plan {
    frames: VecDeque<Bytes>,
    tail: Tail,
    guard: Option<CancelGuard>,
}

/// Counts a stream in `cancelled` if it is dropped before its end: hyper drops the body
/// when the client's connection goes away.
struct CancelGuard {
    stats: Arc<Stats>,
    finished: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.stats.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Plan {
    fn new(frames: VecDeque<Bytes>, tail: Tail) -> Plan {
        Plan {
            frames,
            tail,
            guard: None,
        }
    }

    fn counting_cancel(mut self, stats: Arc<Stats>) -> Plan {
        self.guard = Some(CancelGuard {
            stats,
            finished: false,
        });
        self
    }

    fn finish(&mut self) {
        if let Some(g) = &mut self.guard {
            g.finished = true;
        }
    }
}

/// A body sent frame by frame as `plan` says.
fn streamed(plan: Plan, content_type: &'static str) -> Response {
    let stream = futures::stream::unfold(plan, |mut p| async move {
        if let Some(frame) = p.frames.pop_front() {
            if p.frames.is_empty() && matches!(p.tail, Tail::End) {
                p.finish();
            }
            return Some((Ok(frame), p));
        }
        match &p.tail {
            Tail::End => None,
            Tail::Abort => {
                tokio::time::sleep(CUT_PAUSE).await;
                p.finish();
                p.tail = Tail::End;
                Some((
                    Err(std::io::Error::other("cut by the fake provider, as asked")),
                    p,
                ))
            }
            Tail::Tick(frame) => {
                let frame = frame.clone();
                tokio::time::sleep(TICK).await;
                Some((Ok(frame), p))
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
