//! The handlers: `POST /v1/messages` (Anthropic), `POST /api/v1/chat/completions` and
//! `/v1/chat/completions` (OpenAI), `GET /v1/models`, `GET /api/v1/usage`.
//!
//! A call: scope `inference:call` → the request parsed and priced → its largest possible
//! cost reserved from the account's credits (402 before any provider is called) → the
//! gateway → the reply, whole or streamed as SSE → a usage record with its cost, charged
//! as the reservation is released.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;
use utoipa::{IntoParams, ToSchema};
use zerodb_domain::auth::Principal;
use zerodb_domain::scope::{Permission, Service};
use zerodb_domain::store::Cursor;
use zerodb_domain::{At, DomainError};
use zerodb_http::{ApiError, ApiQuery, Auth};
use zerodb_inference::stream::Tokens;

use zerodb_inference::Inference;
use zerodb_inference::accounting::{self, micro_to_usd};
use zerodb_inference::gateway::{Format, GatewayError, Reply};

use crate::error::InferenceError;

/// Errors of a call, besides the auth ones (see the README's Inference section).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum CallErrors {
    /// Invalid request, or unknown model (the message names the aliases).
    #[response(status = 400)]
    BadRequest(zerodb_http::ErrorBody),
    /// Credits spent (INSUFFICIENT_CREDITS).
    #[response(status = 402)]
    PaymentRequired(zerodb_http::ErrorBody),
    /// Body over 6 MB.
    #[response(status = 413)]
    TooLarge(zerodb_http::ErrorBody),
    /// The provider failed (PROVIDER_ERROR, PROVIDER_AUTH_FAILED).
    #[response(status = 502)]
    BadGateway(zerodb_http::ErrorBody),
    /// The provider has no API key configured (PROVIDER_NOT_CONFIGURED).
    #[response(status = 503)]
    Unavailable(zerodb_http::ErrorBody),
    /// The provider did not answer in time (PROVIDER_TIMEOUT).
    #[response(status = 504)]
    Timeout(zerodb_http::ErrorBody),
}

/// The raw body: a JSON object checked by the gateway against the endpoint's format, so
/// the errors name the format's fields.
pub struct RawBody(Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        zerodb_http::extract::body_bytes(req, state)
            .await
            .map(RawBody)
    }
}

/// Anthropic Messages API: create a message (`"stream": true` for SSE events).
///
/// Any alias works here, whichever provider serves it: requests, responses, tool use and
/// streams are translated when the provider speaks OpenAI's format.
#[utoipa::path(post, path = "/v1/messages", tag = "inference",
    request_body(content = Object, description = "An Anthropic Messages API request: model (an alias), max_tokens, messages, [system], [tools], [stream], …"),
    responses(
        (status = 200, description = "The message, or with `stream` an SSE stream of Anthropic events", body = Object),
        CallErrors))]
pub async fn messages(
    State(inf): State<Arc<Inference>>,
    Auth(caller): Auth,
    RawBody(body): RawBody,
) -> Result<Response, InferenceError> {
    call(inf, caller, Format::Anthropic, body).await
}

/// OpenAI Chat Completions API: create a chat completion (`"stream": true` for SSE
/// chunks ending with `data: [DONE]`).
#[utoipa::path(post, path = "/api/v1/chat/completions", tag = "inference",
    request_body(content = Object, description = "An OpenAI Chat Completions request: model (an alias), messages, [tools], [stream], [stream_options], …"),
    responses(
        (status = 200, description = "The completion, or with `stream` an SSE stream of chunks", body = Object),
        CallErrors))]
pub async fn chat_completions(
    State(inf): State<Arc<Inference>>,
    Auth(caller): Auth,
    RawBody(body): RawBody,
) -> Result<Response, InferenceError> {
    call(inf, caller, Format::Openai, body).await
}

/// The same endpoint where OpenAI's SDK looks for it (`base_url=<server>/v1`).
#[utoipa::path(post, path = "/v1/chat/completions", tag = "inference",
    request_body(content = Object, description = "As `POST /api/v1/chat/completions`"),
    responses(
        (status = 200, description = "As `POST /api/v1/chat/completions`", body = Object),
        CallErrors))]
pub async fn chat_completions_v1(
    inf: State<Arc<Inference>>,
    auth: Auth,
    body: RawBody,
) -> Result<Response, InferenceError> {
    chat_completions(inf, auth, body).await
}

/// A call runs on a task of its own, to its end: a client that leaves before the answer
/// (zerodb-local sees it go; API Gateway never drops an invocation) does not cancel what
/// was asked of the provider half way, so the call is still recorded with the provider's
/// counts and its reservation settled, not left to lapse. A stream's client leaving later
/// is handled by the stream itself (`FinishGuard`).
async fn call(
    inf: Arc<Inference>,
    caller: Principal,
    format: Format,
    body: Bytes,
) -> Result<Response, InferenceError> {
    match tokio::spawn(run_call(inf, caller, format, body)).await {
        Ok(answer) => answer,
        // A panic in the call goes on up, to the layer that answers it with a 500.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

async fn run_call(
    inf: Arc<Inference>,
    caller: Principal,
    format: Format,
    body: Bytes,
) -> Result<Response, InferenceError> {
    let started = Instant::now();
    caller.require(Service::Inference, Permission::Call, None)?;
    let json: Value = serde_json::from_slice(&body)
        .map_err(|e| GatewayError::BadRequest(format!("the body is not JSON: {e}")))?;
    let sent_model = json
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let stream = json.get("stream") == Some(&Value::Bool(true));
    let (id, endpoint) = match format {
        Format::Anthropic => (zerodb_domain::ids::prefixed_id("msg"), "anthropic"),
        Format::Openai => (zerodb_domain::ids::prefixed_id("chatcmpl"), "openai"),
    };
    let prepared = inf.gateway.prepare(format, json)?;
    let created = inf.accounting.clock().now().timestamp();
    let expires = created + prepared.longest.as_secs() as i64 + HOLD_MARGIN_SECS;
    let hold = inf
        .accounting
        .reserve(&caller.account_id, &id, prepared.max_cost_micro, expires)
        .await?;
    let mut record = accounting::UsageRecord {
        id: id.clone(),
        key_id: caller.key_id.clone(),
        endpoint: endpoint.to_owned(),
        alias: sent_model.clone(),
        provider_model: String::new(),
        stream,
        input_tokens: 0,
        output_tokens: 0,
        cost_micro: 0,
        latency_ms: 0,
        status: 200,
        error_code: None,
        created_at: String::new(),
    };
    let outcome = match inf.gateway.run(prepared, id, created).await {
        Ok(o) => o,
        // Calls that reached a provider are recorded; requests refused before (bad body,
        // unknown model) are not calls.
        Err(e @ (GatewayError::Provider(_) | GatewayError::BadUpstream { .. })) => {
            if let Ok(route) = inf.gateway.catalog().resolve(&sent_model) {
                record.alias = route.alias.name.clone();
                record.provider_model = route.alias.model.clone();
            }
            record.error_code = Some(crate::error::code_of(&e).to_owned());
            let resp = InferenceError::Provider {
                error: e,
                names_settings: inf.names_settings(),
            }
            .into_response();
            record.status = resp.status().as_u16();
            record.latency_ms = started.elapsed().as_millis() as u64;
            // Nothing was produced: the record costs nothing and the hold goes back.
            inf.write_record(caller.account_id, record, Tokens::default(), hold)
                .await;
            return Ok(resp);
        }
        Err(e) => {
            // Refused before any provider was called (a request it cannot translate).
            if let Some(hold) = &hold
                && let Err(err) = inf.accounting.release(&caller.account_id, hold).await
            {
                tracing::error!(error = %err, "credit hold not released; it lapses at its expiry");
            }
            return Err(e.into());
        }
    };
    record.alias = outcome.alias.clone();
    record.provider_model = outcome.provider_model.clone();
    match outcome.reply {
        Reply::Json(v) => {
            record.latency_ms = started.elapsed().as_millis() as u64;
            inf.write_record(caller.account_id, record, outcome.tokens, hold)
                .await;
            Ok(axum::Json(v).into_response())
        }
        Reply::Stream { frames, tokens } => {
            let finish = Finish {
                inf,
                account: caller.account_id,
                record,
                started,
                tokens,
                hold,
            };
            Ok(sse_response(frames, finish))
        }
    }
}

/// Seconds a reservation outlives the longest its call can run (clock skew between
/// Lambda instances, the settle's own write).
const HOLD_MARGIN_SECS: i64 = 60;

/// What to do when a stream ends: record its usage and settle its hold.
struct Finish {
    inf: Arc<Inference>,
    account: String,
    record: accounting::UsageRecord,
    started: Instant,
    tokens: oneshot::Receiver<Tokens>,
    hold: Option<accounting::Hold>,
}

impl Finish {
    async fn run(mut self, tokens: Option<Tokens>, in_flight: Option<accounting::Writes>) {
        let tokens = match tokens {
            Some(t) => t,
            None => (&mut self.tokens).await.unwrap_or_default(),
        };
        self.record.latency_ms = self.started.elapsed().as_millis() as u64;
        self.inf
            .write_record_in_flight(self.account, self.record, tokens, self.hold, in_flight)
            .await;
    }
}

/// Records on drop when the stream did not run to its end (the client went away).
struct FinishGuard(Option<Finish>);

impl Drop for FinishGuard {
    fn drop(&mut self) {
        // Outside a runtime (a process shutting down) there is nothing left to run it on.
        // The client left: the gateway has already sent the counts as far as the stream
        // went (an estimate from its text where the provider sent none), and dropping the
        // upstream stopped the provider. The write is marked in flight before this
        // returns, so a usage read or call that follows waits for it.
        if let (Some(f), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            let in_flight = f.inf.in_flight_now(&f.account);
            rt.spawn(f.run(None, in_flight));
        }
    }
}

struct Relay {
    frames: futures::stream::BoxStream<'static, Bytes>,
    finish: FinishGuard,
}

/// The frames as they come; the usage record is written (or, in the background, begun)
/// just before the last one (the gateway sends the counts with it), so when a client has
/// seen `message_stop` or `[DONE]`, `GET /api/v1/usage` shows the call.
fn sse_response(frames: futures::stream::BoxStream<'static, Bytes>, finish: Finish) -> Response {
    let relay = Relay {
        frames,
        finish: FinishGuard(Some(finish)),
    };
    let body = futures::stream::unfold(relay, |mut r| async move {
        let Some(frame) = r.frames.next().await else {
            if let Some(f) = r.finish.0.take() {
                f.run(None, None).await;
            }
            return None;
        };
        let last = r.finish.0.as_mut().and_then(|f| f.tokens.try_recv().ok());
        if let Some(tokens) = last
            && let Some(f) = r.finish.0.take()
        {
            f.run(Some(tokens), None).await;
        }
        Some((Ok::<_, std::convert::Infallible>(frame), r))
    });
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies (nginx) must pass events on as they come.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// One entry of the model list, readable by both SDKs' `models.list()`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelView {
    /// The alias to send as `model`.
    pub id: String,
    /// `model` (OpenAI).
    pub object: &'static str,
    /// `model` (Anthropic).
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub display_name: String,
    /// The provider serving it.
    pub owned_by: String,
    /// Unix seconds (OpenAI).
    pub created: i64,
    /// RFC 3339 (Anthropic).
    pub created_at: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// `list`.
    pub object: &'static str,
    pub data: Vec<ModelView>,
    pub has_more: bool,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
}

/// The aliases this deployment serves (OpenAI's and Anthropic's list formats at once).
#[utoipa::path(get, path = "/v1/models", tag = "inference",
    responses((status = 200, body = ModelList)))]
pub async fn models(
    State(inf): State<Arc<Inference>>,
    Auth(_caller): Auth,
) -> axum::Json<ModelList> {
    // Aliases have no creation date; a fixed one keeps the list stable.
    const EPOCH: i64 = 1_735_689_600;
    let data: Vec<ModelView> = inf
        .gateway
        .catalog()
        .aliases()
        .map(|a| ModelView {
            id: a.name.clone(),
            object: "model",
            kind: "model",
            display_name: a.name.clone(),
            owned_by: a.provider.clone(),
            created: EPOCH,
            created_at: "2025-01-01T00:00:00Z",
        })
        .collect();
    axum::Json(ModelList {
        object: "list",
        first_id: data.first().map(|m| m.id.clone()),
        last_id: data.last().map(|m| m.id.clone()),
        has_more: false,
        data,
    })
}

/// As `GET /v1/models`.
#[utoipa::path(get, path = "/api/v1/models", tag = "inference",
    responses((status = 200, body = ModelList)))]
pub async fn models_api(inf: State<Arc<Inference>>, auth: Auth) -> axum::Json<ModelList> {
    models(inf, auth).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Records per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000, value_type = Option<i64>)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 1024)]
    pub cursor: Option<String>,
}

/// One call, as recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageRecord {
    pub id: String,
    /// The key that made the call (a token's minting key).
    pub key_id: String,
    /// `anthropic` (`/v1/messages`) or `openai` (chat completions).
    pub endpoint: String,
    /// The alias that answered (a fallback's, if the first failed); the model as sent when
    /// it named no alias.
    pub alias: String,
    /// The provider's model id; empty when no provider was called.
    pub provider_model: String,
    pub stream: bool,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    /// Milliseconds from the request to the end of the response (the last event of a
    /// stream).
    pub latency_ms: u64,
    /// The HTTP status the client got (a stream's is 200 even if it ended in an error
    /// event).
    pub status: u16,
    /// The error code, when the call failed.
    pub error_code: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

impl From<accounting::UsageRecord> for UsageRecord {
    fn from(r: accounting::UsageRecord) -> Self {
        UsageRecord {
            cost_usd: micro_to_usd(r.cost_micro as i64),
            id: r.id,
            key_id: r.key_id,
            endpoint: r.endpoint,
            alias: r.alias,
            provider_model: r.provider_model,
            stream: r.stream,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            latency_ms: r.latency_ms,
            status: r.status,
            error_code: r.error_code,
            created_at: r.created_at,
        }
    }
}

/// An account's credits, as `GET /api/v1/usage` shows them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Credits {
    /// False when this deployment does not limit credits.
    pub limited: bool,
    /// Credits granted in total (US dollars at list prices); null when unlimited.
    pub granted_usd: Option<f64>,
    pub spent_usd: f64,
    /// Held by calls in progress: each call's largest possible cost, until it ends and
    /// is charged what it used.
    pub reserved_usd: f64,
    /// What new calls may still reserve (granted − spent − reserved); null when
    /// unlimited.
    pub remaining_usd: Option<f64>,
}

impl From<accounting::Balance> for Credits {
    fn from(b: accounting::Balance) -> Self {
        Credits {
            limited: b.granted_micro.is_some(),
            granted_usd: b.granted_micro.map(micro_to_usd),
            spent_usd: micro_to_usd(b.spent_micro),
            reserved_usd: micro_to_usd(b.reserved_micro),
            remaining_usd: b.available_micro().map(micro_to_usd),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageResponse {
    /// Newest first.
    pub records: Vec<UsageRecord>,
    pub next_cursor: Option<String>,
    pub credits: Credits,
}

/// This account's inference calls, newest first, and its credits.
///
/// Needs `inference:call` or `inference:read`.
#[utoipa::path(get, path = "/api/v1/usage", tag = "inference",
    params(UsageQuery),
    responses(
        (status = 200, body = UsageResponse),
        (status = 422, description = "Bad limit or cursor", body = zerodb_http::error::ValidationErrorBody)))]
pub async fn usage(
    State(inf): State<Arc<Inference>>,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<axum::Json<UsageResponse>, InferenceError> {
    caller
        .require(Service::Inference, Permission::Read, None)
        .or_else(|_| caller.require(Service::Inference, Permission::Call, None))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(At::query("limit")
            .invalid(format!("limit must be between 1 and 1000; got {limit}"))
            .into());
    }
    let cursor = q
        .cursor
        .as_deref()
        .map(Cursor::from_client)
        .transpose()
        .map_err(DomainError::from)?;
    // Read your own calls: this account's records still being written are waited for.
    inf.accounting.written(&caller.account_id).await;
    let (records, next) = inf
        .accounting
        .list(&caller.account_id, limit as usize, cursor)
        .await?;
    let credits = inf.accounting.balance(&caller.account_id).await?.into();
    Ok(axum::Json(UsageResponse {
        records: records.into_iter().map(UsageRecord::from).collect(),
        next_cursor: next.map(|c| c.as_str().to_owned()),
        credits,
    }))
}
