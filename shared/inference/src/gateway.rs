//! One call through the gateway: the client's request (in the format of the endpoint it
//! called) → the alias's route → the provider's format → the provider, falling back to
//! the alias's fallback when the provider fails → the reply in the client's format, whole
//! or as a stream of SSE frames, with the tokens used.
//!
//! Same-format calls forward the client's JSON with only `model` replaced, so fields this
//! gateway does not model (thinking, cache control, logprobs, …) still reach the provider
//! and come back; cross-format calls go through `crate::translate` and
//! `crate::stream`.

use std::collections::VecDeque;
use std::time::Duration;

use crate::stream::{AnthropicToOpenAi, Chunk, Event, OpenAiToAnthropic, Tokens};
use crate::translate::{self, TranslateError};
use crate::{Catalog, ProviderKind, Route, UnknownModel, anthropic, openai};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::provider::{MAX_RETRY_WAIT, ProviderError, Providers};
use crate::sse::SseReader;

/// The format of the endpoint a client called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Anthropic,
    Openai,
}

impl Format {
    fn of(kind: ProviderKind) -> Format {
        match kind {
            ProviderKind::Anthropic => Format::Anthropic,
            ProviderKind::Openai => Format::Openai,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The body is not a valid request of the endpoint's format.
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    UnknownModel(#[from] UnknownModel),
    #[error(transparent)]
    Untranslatable(#[from] TranslateError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The provider answered 2xx with a body that is not its format.
    #[error("provider `{provider}` sent a response that could not be read: {reason}")]
    BadUpstream { provider: String, reason: String },
}

/// What the client gets back.
pub enum Reply {
    /// The whole response, in the client's format.
    Json(Value),
    /// SSE frames in the client's format, ready to write; the tokens arrive on the
    /// receiver as the last frame is yielded (or when the stream is dropped: then the
    /// counts so far).
    Stream {
        frames: BoxStream<'static, Bytes>,
        tokens: oneshot::Receiver<Tokens>,
    },
}

pub struct Outcome {
    pub reply: Reply,
    /// The alias that answered (the fallback's, if the first one failed).
    pub alias: String,
    pub provider_model: String,
    /// For a whole response; a stream's come on its receiver.
    pub tokens: Tokens,
}

pub struct Gateway {
    catalog: Catalog,
    providers: Providers,
}

/// A call parsed and priced, not yet run: what credits need to know before it runs.
pub struct Prepared {
    request: ClientRequest,
    /// The most the call can cost: its output limit (`max_tokens`; for an OpenAI request
    /// without one, `translate::DEFAULT_MAX_TOKENS`, which is then sent, times `n`) and
    /// its input bound (`estimate::InputTokens::bound`), at the dearest price of its alias
    /// and the fallbacks after it.
    pub max_cost_micro: u64,
    /// The longest it can run: every attempt on every alias of the chain taking its
    /// provider's whole timeout and the longest retry wait. A reservation lasts this long.
    pub longest: Duration,
}

/// The largest output a request allows, as billed when a provider sends no counts.
fn output_limit(request: &ClientRequest) -> u64 {
    match &request.parsed {
        Parsed::Anthropic(r) => u64::from(r.max_tokens),
        Parsed::Openai(r) => {
            u64::from(r.max_output().unwrap_or(translate::DEFAULT_MAX_TOKENS))
                * u64::from(r.n.unwrap_or(1).max(1))
        }
    }
}

impl Gateway {
    pub fn new(catalog: Catalog, providers: Providers) -> Self {
        Gateway { catalog, providers }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Whether `provider` can be called (its key was found, or it needs none).
    pub fn has_key(&self, provider: &str) -> bool {
        self.providers.get(provider).is_some_and(|c| c.is_ready())
    }

    /// Runs one call. `body` is the client's JSON, `id` the response id to give it.
    pub async fn call(
        &self,
        format: Format,
        body: Value,
        id: String,
        created: i64,
    ) -> Result<Outcome, GatewayError> {
        let prepared = self.prepare(format, body)?;
        self.run(prepared, id, created).await
    }

    /// Parses and prices a call (400 for a bad body or an unknown model), calling nothing.
    pub fn prepare(&self, format: Format, body: Value) -> Result<Prepared, GatewayError> {
        let request = ClientRequest::parse(format, body)?;
        let input = request.input.bound;
        let output = output_limit(&request);
        let mut max_cost_micro = 0;
        let mut longest = Duration::ZERO;
        let mut next = Some(self.catalog.resolve(request.model())?);
        // Loops were refused when the catalog loaded; the bound is a second guard.
        for _ in 0..16 {
            let Some(route) = next else { break };
            max_cost_micro = max_cost_micro.max(route.alias.price.cost_micro(input, output));
            let p = route.provider;
            longest += (p.connect_timeout + p.timeout + MAX_RETRY_WAIT)
                * (p.max_retries.saturating_add(1));
            next = self.catalog.fallback_of(&route);
        }
        Ok(Prepared {
            request,
            max_cost_micro,
            longest,
        })
    }

    /// Runs a prepared call.
    pub async fn run(
        &self,
        prepared: Prepared,
        id: String,
        created: i64,
    ) -> Result<Outcome, GatewayError> {
        let request = prepared.request;
        let mut route = self.catalog.resolve(request.model())?;
        loop {
            match self.call_route(&request, route, &id, created).await {
                Err(GatewayError::Provider(e)) if e.is_provider_fault() => {
                    match self.catalog.fallback_of(&route) {
                        Some(next) => {
                            tracing::warn!(
                                alias = %route.alias.name,
                                fallback = %next.alias.name,
                                error = %e,
                                "provider failed; trying the fallback alias"
                            );
                            route = next;
                        }
                        None => return Err(GatewayError::Provider(e)),
                    }
                }
                other => return other,
            }
        }
    }

    async fn call_route(
        &self,
        request: &ClientRequest,
        route: Route<'_>,
        id: &str,
        created: i64,
    ) -> Result<Outcome, GatewayError> {
        let client =
            self.providers
                .get(&route.provider.name)
                .ok_or_else(|| ProviderError::Unreachable {
                    provider: route.provider.name.clone(),
                    reason: "no client was built for it".to_owned(),
                })?;
        let upstream = Format::of(route.provider.kind);
        let model = route.alias.model.as_str();
        let body = request.for_provider(upstream, model)?;
        let bytes = Bytes::from(serde_json::to_vec(&body).expect("a Value serialises"));
        let resp = client.send(bytes).await?;
        let alias = route.alias.name.clone();
        let outcome = |reply, tokens| Outcome {
            reply,
            alias: alias.clone(),
            provider_model: model.to_owned(),
            tokens,
        };
        let bad = |reason: String| GatewayError::BadUpstream {
            provider: route.provider.name.clone(),
            reason,
        };
        if request.stream() {
            let (frames, tokens) = stream_reply(
                resp,
                request.format(),
                upstream,
                request.include_usage(),
                id.to_owned(),
                request.model().to_owned(),
                created,
                Estimate {
                    input: request.input.estimate,
                    max_output: output_limit(request),
                },
            );
            return Ok(outcome(Reply::Stream { frames, tokens }, Tokens::default()));
        }
        let raw = resp
            .bytes()
            .await
            .map_err(|e| bad(format!("reading the body: {e}")))?;
        let client_model = request.model();
        // Parsed once; the typed reads below borrow it, checking the provider kept to its
        // format.
        let mut v: Value = serde_json::from_slice(&raw).map_err(|e| bad(e.to_string()))?;
        let (json, tokens) = match (request.format(), upstream) {
            (Format::Anthropic, Format::Anthropic) => {
                let r =
                    anthropic::MessagesResponse::deserialize(&v).map_err(|e| bad(e.to_string()))?;
                let tokens = Tokens::from(&r.usage);
                v["model"] = json!(client_model);
                (v, tokens)
            }
            (Format::Openai, Format::Openai) => {
                let r = openai::ChatResponse::deserialize(&v).map_err(|e| bad(e.to_string()))?;
                let tokens = Tokens::from(&r.usage.unwrap_or_default());
                v["model"] = json!(client_model);
                (v, tokens)
            }
            (Format::Openai, Format::Anthropic) => {
                let r =
                    anthropic::MessagesResponse::deserialize(&v).map_err(|e| bad(e.to_string()))?;
                let tokens = Tokens::from(&r.usage);
                let out = translate::anthropic_response_to_openai(
                    r,
                    id.to_owned(),
                    client_model,
                    created,
                );
                (serde_json::to_value(out).expect("serialisable"), tokens)
            }
            (Format::Anthropic, Format::Openai) => {
                let r = openai::ChatResponse::deserialize(&v).map_err(|e| bad(e.to_string()))?;
                let tokens = Tokens::from(&r.usage.unwrap_or_default());
                let out = translate::openai_response_to_anthropic(r, id.to_owned(), client_model);
                (serde_json::to_value(out).expect("serialisable"), tokens)
            }
        };
        // A reply without counts is billed by its text, never as free.
        let tokens = if tokens == Tokens::default() {
            Tokens {
                input: request.input.estimate,
                output: crate::estimate::tokens(reply_chars(request.format(), &json))
                    .clamp(1, output_limit(request).max(1)),
            }
        } else {
            tokens
        };
        Ok(outcome(Reply::Json(json), tokens))
    }
}

/// Characters of a whole reply's text and tool arguments, in the client's format.
fn reply_chars(format: Format, reply: &Value) -> u64 {
    use crate::estimate::text_chars;
    match format {
        Format::Anthropic => reply["content"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| {
                text_chars(&b["text"]) + b.get("input").map_or(0, |i| i.to_string().len() as u64)
            })
            .sum(),
        Format::Openai => reply["choices"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                text_chars(&c["message"]["content"])
                    + c["message"]["tool_calls"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|t| text_chars(&t["function"]["arguments"]))
                        .sum::<u64>()
            })
            .sum(),
    }
}

/// A stream's counts when the provider sends none (or the client leaves before they come).
#[derive(Debug, Clone, Copy)]
struct Estimate {
    input: u64,
    max_output: u64,
}

/// Characters of text and tool arguments in an Anthropic event.
fn event_chars(event: &Event) -> u64 {
    match event {
        Event::ContentBlockDelta { delta, .. } => match delta {
            crate::stream::Delta::TextDelta { text } => text.chars().count() as u64,
            crate::stream::Delta::InputJsonDelta { partial_json } => partial_json.len() as u64,
            crate::stream::Delta::Other => 0,
        },
        _ => 0,
    }
}

/// Characters of text and tool arguments in an OpenAI chunk.
fn chunk_chars(chunk: &Chunk) -> u64 {
    chunk
        .choices
        .iter()
        .map(|c| {
            c.delta
                .content
                .as_deref()
                .map_or(0, |t| t.chars().count() as u64)
                + c.delta
                    .tool_calls
                    .iter()
                    .flatten()
                    .filter_map(|t| t.function.as_ref()?.arguments.as_ref())
                    .map(|a| a.len() as u64)
                    .sum::<u64>()
        })
        .sum()
}

/// What a client is told when a provider's stream fails: the kind only; the provider's
/// own words go to the log (they may name its hosts).
fn plain_stream_error(kind: &str) -> String {
    let kind = if !kind.is_empty() && kind.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        kind
    } else {
        "api_error"
    };
    format!("the model provider reported an error mid-stream ({kind}); try again")
}

/// The client's request, validated against its format's types and kept as sent.
struct ClientRequest {
    raw: Value,
    parsed: Parsed,
    /// Input tokens estimated and bounded from the request's text.
    input: crate::estimate::InputTokens,
}

enum Parsed {
    Anthropic(anthropic::MessagesRequest),
    Openai(openai::ChatRequest),
}

impl ClientRequest {
    fn parse(format: Format, raw: Value) -> Result<Self, GatewayError> {
        let bad = |e: serde_json::Error| GatewayError::BadRequest(e.to_string());
        let parsed = match format {
            Format::Anthropic => {
                Parsed::Anthropic(anthropic::MessagesRequest::deserialize(&raw).map_err(bad)?)
            }
            Format::Openai => Parsed::Openai(openai::ChatRequest::deserialize(&raw).map_err(bad)?),
        };
        let input = crate::estimate::input_tokens(&raw);
        Ok(ClientRequest { raw, parsed, input })
    }

    fn format(&self) -> Format {
        match self.parsed {
            Parsed::Anthropic(_) => Format::Anthropic,
            Parsed::Openai(_) => Format::Openai,
        }
    }

    fn model(&self) -> &str {
        match &self.parsed {
            Parsed::Anthropic(r) => &r.model,
            Parsed::Openai(r) => &r.model,
        }
    }

    fn stream(&self) -> bool {
        match &self.parsed {
            Parsed::Anthropic(r) => r.stream,
            Parsed::Openai(r) => r.stream,
        }
    }

    /// Whether the client asked for a usage chunk (OpenAI); Anthropic streams always
    /// carry usage.
    fn include_usage(&self) -> bool {
        match &self.parsed {
            Parsed::Anthropic(_) => true,
            Parsed::Openai(r) => r.stream_options.as_ref().is_some_and(|o| o.include_usage),
        }
    }

    /// The body to send to a provider of format `upstream`, calling `model`.
    fn for_provider(&self, upstream: Format, model: &str) -> Result<Value, TranslateError> {
        Ok(match (&self.parsed, upstream) {
            (Parsed::Anthropic(_), Format::Anthropic) => {
                let mut v = self.raw.clone();
                v["model"] = json!(model);
                v
            }
            (Parsed::Openai(r), Format::Openai) => {
                let mut v = self.raw.clone();
                v["model"] = json!(model);
                // The output a call reserved credits for is the output it may produce: a
                // request without a limit gets the one it was priced at.
                if r.max_output().is_none() {
                    v["max_tokens"] = json!(translate::DEFAULT_MAX_TOKENS);
                }
                if r.stream {
                    // Credits need the usage chunk; it is dropped again if the client
                    // did not ask for it.
                    v["stream_options"] = json!({"include_usage": true});
                }
                v
            }
            (Parsed::Openai(r), Format::Anthropic) => {
                serde_json::to_value(translate::openai_to_anthropic(r, model)?)
                    .expect("serialisable")
            }
            (Parsed::Anthropic(r), Format::Openai) => {
                serde_json::to_value(translate::anthropic_to_openai(r, model))
                    .expect("serialisable")
            }
        })
    }
}

/// Per-stream state: reads upstream SSE, writes the client's frames.
struct StreamState {
    upstream: BoxStream<'static, reqwest::Result<Bytes>>,
    reader: SseReader,
    mode: Mode,
    pending: VecDeque<Bytes>,
    tokens: Tokens,
    /// Whether the provider sent its final counts (message_delta's, the usage chunk).
    counted: bool,
    /// Characters of text and tool arguments read from the provider so far.
    output_chars: u64,
    estimate: Estimate,
    done_tx: Option<oneshot::Sender<Tokens>>,
    finished: bool,
}

enum Mode {
    /// Anthropic → Anthropic: events forwarded as they are (message_start's model
    /// replaced by the client's), usage read on the way.
    AnthropicPass {
        model: String,
    },
    /// OpenAI → OpenAI: chunks forwarded with the client's model; the usage chunk (and
    /// the `usage: null` the provider adds to the others once asked) dropped unless the
    /// client asked for usage.
    OpenaiPass {
        include_usage: bool,
        model: String,
    },
    AnthropicToOpenai(AnthropicToOpenAi),
    OpenaiToAnthropic(OpenAiToAnthropic),
}

impl Drop for StreamState {
    fn drop(&mut self) {
        // A client that disconnects drops the stream: report what was used so far.
        if let Some(tx) = self.done_tx.take() {
            let _ = tx.send(self.billed());
        }
    }
}

fn anthropic_frame(event: &Event) -> Bytes {
    let data = serde_json::to_string(event).expect("serialisable");
    Bytes::from(format!("event: {}\ndata: {data}\n\n", event.name()))
}

fn openai_frame(chunk: &Chunk) -> Bytes {
    Bytes::from(format!(
        "data: {}\n\n",
        serde_json::to_string(chunk).expect("serialisable")
    ))
}

const OPENAI_DONE: &[u8] = b"data: [DONE]\n\n";

#[allow(clippy::too_many_arguments)]
fn stream_reply(
    resp: reqwest::Response,
    client: Format,
    upstream: Format,
    include_usage: bool,
    id: String,
    model: String,
    created: i64,
    estimate: Estimate,
) -> (BoxStream<'static, Bytes>, oneshot::Receiver<Tokens>) {
    let (tx, rx) = oneshot::channel();
    let mode = match (client, upstream) {
        (Format::Anthropic, Format::Anthropic) => Mode::AnthropicPass { model },
        (Format::Openai, Format::Openai) => Mode::OpenaiPass {
            include_usage,
            model,
        },
        (Format::Openai, Format::Anthropic) => {
            Mode::AnthropicToOpenai(AnthropicToOpenAi::new(id, model, created, include_usage))
        }
        (Format::Anthropic, Format::Openai) => {
            Mode::OpenaiToAnthropic(OpenAiToAnthropic::new(id, model))
        }
    };
    let state = StreamState {
        upstream: resp.bytes_stream().boxed(),
        reader: SseReader::new(),
        mode,
        pending: VecDeque::new(),
        tokens: Tokens::default(),
        counted: false,
        output_chars: 0,
        estimate,
        done_tx: Some(tx),
        finished: false,
    };
    let frames = futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(frame) = s.pending.pop_front() {
                // The counts go out with the last frame, not after it, so the caller can
                // record the call before the client sees the stream end.
                if s.finished
                    && s.pending.is_empty()
                    && let Some(tx) = s.done_tx.take()
                {
                    let _ = tx.send(s.billed());
                }
                return Some((frame, s));
            }
            if s.finished {
                if let Some(tx) = s.done_tx.take() {
                    let _ = tx.send(s.billed());
                }
                return None;
            }
            match s.upstream.next().await {
                Some(Ok(bytes)) => match s.reader.feed(&bytes) {
                    Ok(events) => {
                        for e in events {
                            s.handle(e.event.as_deref(), &e.data);
                        }
                    }
                    Err(e) => s.fail(&e.to_string()),
                },
                Some(Err(e)) => {
                    // reqwest's text names the provider's URL: the log has it, not the client.
                    tracing::warn!(error = %e, "the provider's stream broke off");
                    s.fail("the model provider's stream broke off; try again");
                }
                None => {
                    if let Some(e) = s.reader.finish() {
                        s.handle(e.event.as_deref(), &e.data);
                    }
                    s.end();
                }
            }
        }
    });
    (frames.boxed(), rx)
}

impl StreamState {
    /// The counts to bill: the provider's when it sent its final ones; else, as far as
    /// the stream went, the larger of its partial counts and an estimate from the
    /// request's text and the text read from the provider (output at most the request's
    /// limit).
    fn billed(&self) -> Tokens {
        if self.counted && self.tokens != Tokens::default() {
            return self.tokens;
        }
        let output = crate::estimate::tokens(self.output_chars).min(self.estimate.max_output);
        Tokens {
            input: self.tokens.input.max(self.estimate.input),
            output: self.tokens.output.max(output),
        }
    }

    /// Takes in an Anthropic event's text and whether it carries the final counts.
    fn saw_event(&mut self, event: &Event) {
        self.output_chars += event_chars(event);
        if matches!(event, Event::MessageDelta { usage: Some(_), .. }) {
            self.counted = true;
        }
    }

    fn handle(&mut self, _event: Option<&str>, data: &str) {
        if self.finished {
            return;
        }
        if data == "[DONE]" {
            self.end();
            return;
        }
        match &mut self.mode {
            Mode::AnthropicPass { model } => {
                if let Ok(event) = serde_json::from_str::<Event>(data) {
                    self.tokens.observe(&event);
                    let done = matches!(event, Event::MessageStop | Event::Error { .. });
                    let name = event.name();
                    // Only message_start names the model, and an error's message is
                    // the provider's own (logged, not passed on); every other event goes
                    // on as the provider wrote it.
                    let frame = match &event {
                        Event::MessageStart { .. } => {
                            let mut v: Value = serde_json::from_str(data).unwrap_or_default();
                            v["message"]["model"] = json!(model);
                            format!("event: {name}\ndata: {v}\n\n")
                        }
                        Event::Error { error } => {
                            tracing::warn!(kind = %error.kind, message = %error.message, "the provider's stream ended in an error");
                            let plain = Event::Error {
                                error: crate::stream::ErrorBody {
                                    kind: error.kind.clone(),
                                    message: plain_stream_error(&error.kind),
                                },
                            };
                            String::from_utf8_lossy(&anthropic_frame(&plain)).into_owned()
                        }
                        _ => format!("event: {name}\ndata: {data}\n\n"),
                    };
                    self.saw_event(&event);
                    self.pending.push_back(Bytes::from(frame));
                    if done {
                        self.finished = true;
                    }
                }
            }
            Mode::OpenaiPass {
                include_usage,
                model,
            } => {
                let Ok(mut v) = serde_json::from_str::<Value>(data) else {
                    return;
                };
                let Ok(chunk) = Chunk::deserialize(&v) else {
                    return;
                };
                self.output_chars += chunk_chars(&chunk);
                self.counted |= chunk.usage.is_some();
                if let Some(u) = &chunk.usage {
                    self.tokens = Tokens::from(u);
                }
                if !*include_usage {
                    if chunk.choices.is_empty() && chunk.usage.is_some() {
                        return;
                    }
                    if let Some(obj) = v.as_object_mut() {
                        obj.remove("usage");
                    }
                }
                v["model"] = json!(model);
                self.pending
                    .push_back(Bytes::from(format!("data: {v}\n\n")));
            }
            Mode::AnthropicToOpenai(t) => {
                let Ok(event) = serde_json::from_str::<Event>(data) else {
                    return;
                };
                let stop = matches!(event, Event::MessageStop);
                let (chars, counted) = (
                    event_chars(&event),
                    matches!(event, Event::MessageDelta { usage: Some(_), .. }),
                );
                self.output_chars += chars;
                self.counted |= counted;
                match t.event(event) {
                    Ok(chunks) => {
                        self.tokens = t.tokens();
                        for c in &chunks {
                            self.pending.push_back(openai_frame(c));
                        }
                        if stop {
                            self.pending.push_back(Bytes::from_static(OPENAI_DONE));
                            self.finished = true;
                        }
                    }
                    Err(e) => {
                        self.tokens = t.tokens();
                        tracing::warn!(kind = %e.kind, message = %e.message, "the provider's stream ended in an error");
                        self.fail(&plain_stream_error(&e.kind));
                    }
                }
            }
            Mode::OpenaiToAnthropic(t) => {
                if let Ok(chunk) = serde_json::from_str::<Chunk>(data) {
                    self.output_chars += chunk_chars(&chunk);
                    self.counted |= chunk.usage.is_some();
                    for e in t.chunk(chunk) {
                        self.pending.push_back(anthropic_frame(&e));
                    }
                    self.tokens = t.tokens();
                }
            }
        }
    }

    /// The upstream stream ended: close the client's stream properly.
    fn end(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        match &mut self.mode {
            Mode::OpenaiPass { .. } | Mode::AnthropicToOpenai(_) => {
                self.pending.push_back(Bytes::from_static(OPENAI_DONE));
            }
            Mode::OpenaiToAnthropic(t) => {
                for e in t.finish() {
                    self.pending.push_back(anthropic_frame(&e));
                }
                self.tokens = t.tokens();
            }
            Mode::AnthropicPass { .. } => {}
        }
    }

    /// The stream failed after it started: the status line is gone, so the error goes
    /// in the stream, as each format does it.
    fn fail(&mut self, message: &str) {
        if self.finished {
            return;
        }
        self.finished = true;
        let frame = match &self.mode {
            Mode::AnthropicPass { .. } | Mode::OpenaiToAnthropic(_) => {
                anthropic_frame(&Event::Error {
                    error: crate::stream::ErrorBody {
                        kind: "api_error".to_owned(),
                        message: message.to_owned(),
                    },
                })
            }
            Mode::OpenaiPass { .. } | Mode::AnthropicToOpenai(_) => Bytes::from(format!(
                "data: {}\n\n",
                json!({"error": {"message": message, "type": "api_error", "code": "upstream_error"}})
            )),
        };
        self.pending.push_back(frame);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::ProvidersFile;
    use crate::catalog::KeySource;
    use axum::Json;
    use axum::response::IntoResponse;
    use axum::routing::post;

    use super::*;
    use crate::provider::ProviderClient;

    /// The text of the last user turn, in either format.
    fn last_user_text(body: &Value) -> String {
        let m = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .unwrap();
        match &m["content"] {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
            _ => String::new(),
        }
    }

    fn sse(frames: Vec<String>) -> axum::response::Response {
        ([("content-type", "text/event-stream")], frames.concat()).into_response()
    }

    /// Anthropic side: answers "echo: <text>", or a `lookup` tool call when tools are given.
    async fn anthropic(Json(body): Json<Value>) -> axum::response::Response {
        let text = format!("echo: {}", last_user_text(&body));
        let tool = body.get("tools").is_some();
        if body["stream"] == true {
            let ev = |v: Value| format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap());
            let mut f = vec![
                ev(
                    json!({"type": "message_start", "message": {"id": "msg_up", "type": "message", "role": "assistant", "model": body["model"], "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 11, "output_tokens": 1}}}),
                ),
                ev(json!({"type": "ping"})),
            ];
            if tool {
                f.push(ev(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}})));
                f.push(ev(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"q\": "}})));
                f.push(ev(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "\"x\"}"}})));
            } else {
                f.push(ev(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})));
                for piece in text.split_inclusive(' ') {
                    f.push(ev(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})));
                }
            }
            f.push(ev(json!({"type": "content_block_stop", "index": 0})));
            f.push(ev(json!({"type": "message_delta", "delta": {"stop_reason": if tool {"tool_use"} else {"end_turn"}, "stop_sequence": null}, "usage": {"output_tokens": 5}})));
            f.push(ev(json!({"type": "message_stop"})));
            return sse(f);
        }
        let content = if tool {
            json!([{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}}])
        } else {
            json!([{"type": "text", "text": text}])
        };
        Json(json!({"id": "msg_up", "type": "message", "role": "assistant", "model": body["model"], "content": content,
            "stop_reason": if tool {"tool_use"} else {"end_turn"}, "stop_sequence": null, "usage": {"input_tokens": 11, "output_tokens": 5}})).into_response()
    }

    /// OpenAI side, same behaviour.
    async fn openai(Json(body): Json<Value>) -> axum::response::Response {
        let text = format!("echo: {}", last_user_text(&body));
        let tool = body.get("tools").is_some();
        if body["stream"] == true {
            let c = |choices: Value| {
                format!(
                    "data: {}\n\n",
                    json!({"id": "up", "object": "chat.completion.chunk", "created": 1, "model": body["model"], "choices": choices})
                )
            };
            let mut f = vec![c(
                json!([{"index": 0, "delta": {"role": "assistant", "content": ""}}]),
            )];
            if tool {
                f.push(c(json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\": "}}]}}])));
                f.push(c(json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"x\"}"}}]}}])));
            } else {
                for piece in text.split_inclusive(' ') {
                    f.push(c(json!([{"index": 0, "delta": {"content": piece}}])));
                }
            }
            f.push(c(json!([{"index": 0, "delta": {}, "finish_reason": if tool {"tool_calls"} else {"stop"}}])));
            if body["stream_options"]["include_usage"] == true {
                f.push(format!("data: {}\n\n", json!({"id": "up", "object": "chat.completion.chunk", "created": 1, "model": body["model"], "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}})));
            }
            f.push("data: [DONE]\n\n".to_owned());
            return sse(f);
        }
        let message = if tool {
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\": \"x\"}"}}]})
        } else {
            json!({"role": "assistant", "content": text})
        };
        Json(json!({"id": "up", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": if tool {"tool_calls"} else {"stop"}}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}})).into_response()
    }

    async fn overloaded() -> axum::response::Response {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": {"message": "overloaded"}})),
        )
            .into_response()
    }

    /// A gateway whose `a` alias is on the fake Anthropic side, `o` on the OpenAI side, and
    /// `down` on a provider that always answers 503, falling back to `o`.
    async fn gateway() -> Gateway {
        let app = axum::Router::new()
            .route("/anthropic/v1/messages", post(anthropic))
            .route("/openai/v1/chat/completions", post(openai))
            .route("/down/v1/chat/completions", post(overloaded));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let file = ProvidersFile::parse(&format!(
            r#"
            [providers.fa]
            kind = "anthropic"
            base_url = "http://{addr}/anthropic"
            [providers.fo]
            kind = "openai"
            base_url = "http://{addr}/openai/v1"
            [providers.down]
            kind = "openai"
            base_url = "http://{addr}/down/v1"
            max_retries = 0
            [aliases]
            a = {{ provider = "fa", model = "claude-up" }}
            o = {{ provider = "fo", model = "llama-up" }}
            down = {{ provider = "down", model = "x", fallback = "o" }}
            "#
        ))
        .unwrap();
        let catalog = Catalog::with_file(file).unwrap();
        let clients = catalog
            .providers()
            .map(|p| {
                let key = (p.key != KeySource::None).then(|| "test-key".to_owned());
                let mut p = p.clone();
                p.timeout = Duration::from_secs(10);
                ProviderClient::new(p, key).unwrap()
            })
            .collect::<Vec<_>>();
        Gateway::new(catalog, Providers::new(clients))
    }

    fn anthropic_body(model: &str, stream: bool, tools: bool) -> Value {
        let mut b = json!({"model": model, "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "hello there"}]});
        if tools {
            b["tools"] = json!([{"name": "lookup", "input_schema": {"type": "object"}}]);
        }
        b
    }

    fn openai_body(model: &str, stream: bool, tools: bool) -> Value {
        let mut b = json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hello there"}]});
        if stream {
            b["stream_options"] = json!({"include_usage": true});
        }
        if tools {
            b["tools"] = json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]);
        }
        b
    }

    async fn whole(g: &Gateway, format: Format, body: Value) -> (Value, Outcome) {
        let mut out = g.call(format, body, "resp_1".into(), 5).await.unwrap();
        let Reply::Json(v) = std::mem::replace(&mut out.reply, Reply::Json(Value::Null)) else {
            panic!("expected a whole response");
        };
        (v, out)
    }

    async fn streamed(g: &Gateway, format: Format, body: Value) -> (String, Tokens) {
        let out = g.call(format, body, "resp_1".into(), 5).await.unwrap();
        let Reply::Stream { frames, tokens } = out.reply else {
            panic!("expected a stream");
        };
        let bytes: Vec<Bytes> = frames.collect().await;
        let text = bytes
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        (text, tokens.await.unwrap())
    }

    #[tokio::test]
    async fn both_formats_against_both_provider_kinds_whole_responses() {
        let g = gateway().await;
        for alias in ["a", "o"] {
            let (v, out) = whole(&g, Format::Anthropic, anthropic_body(alias, false, false)).await;
            assert_eq!(v["content"][0]["text"], "echo: hello there", "{alias}: {v}");
            assert_eq!(v["model"], alias);
            assert_eq!(
                out.tokens,
                Tokens {
                    input: 11,
                    output: 5
                }
            );
            let (v, _) = whole(&g, Format::Anthropic, anthropic_body(alias, false, true)).await;
            assert_eq!(v["stop_reason"], "tool_use");
            assert_eq!(v["content"][0]["input"], json!({"q": "x"}), "{alias}: {v}");

            let (v, out) = whole(&g, Format::Openai, openai_body(alias, false, false)).await;
            assert_eq!(
                v["choices"][0]["message"]["content"], "echo: hello there",
                "{alias}: {v}"
            );
            assert_eq!(
                out.tokens,
                Tokens {
                    input: 11,
                    output: 5
                }
            );
            let (v, _) = whole(&g, Format::Openai, openai_body(alias, false, true)).await;
            assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
            let args: Value = serde_json::from_str(
                v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(args, json!({"q": "x"}), "{alias}: {v}");
        }
    }

    #[tokio::test]
    async fn both_formats_against_both_provider_kinds_streamed() {
        let g = gateway().await;
        for alias in ["a", "o"] {
            let (text, tokens) =
                streamed(&g, Format::Anthropic, anthropic_body(alias, true, false)).await;
            assert!(
                text.starts_with("event: message_start\n"),
                "{alias}: {text}"
            );
            // The provider's model id never reaches the client, pass-through or not.
            assert!(
                !text.contains("claude-up") && !text.contains("llama-up"),
                "{alias}: {text}"
            );
            assert!(
                text.contains(&format!(r#""model":"{alias}""#)),
                "{alias}: {text}"
            );
            assert!(
                text.trim_end().ends_with(r#""type":"message_stop"}"#),
                "{alias}: {text}"
            );
            assert!(
                text.contains(r#""text":"echo: ""#) && text.contains(r#""text":"there""#),
                "{alias}: {text}"
            );
            assert_eq!(
                tokens,
                Tokens {
                    input: 11,
                    output: 5
                },
                "{alias}"
            );
            let (text, _) =
                streamed(&g, Format::Anthropic, anthropic_body(alias, true, true)).await;
            assert!(
                text.contains(r#""type":"input_json_delta""#)
                    && text.contains(r#""stop_reason":"tool_use""#),
                "{alias}: {text}"
            );

            let (text, tokens) =
                streamed(&g, Format::Openai, openai_body(alias, true, false)).await;
            assert!(
                !text.contains("claude-up") && !text.contains("llama-up"),
                "{alias}: {text}"
            );
            assert!(text.ends_with("data: [DONE]\n\n"), "{alias}: {text}");
            assert_eq!(text.matches("data: [DONE]").count(), 1);
            assert!(text.contains(r#""content":"echo: ""#), "{alias}: {text}");
            assert!(
                text.contains(r#""prompt_tokens":11"#),
                "usage chunk when asked: {alias}: {text}"
            );
            assert_eq!(
                tokens,
                Tokens {
                    input: 11,
                    output: 5
                },
                "{alias}"
            );
            let (text, _) = streamed(&g, Format::Openai, openai_body(alias, true, true)).await;
            assert!(
                text.contains(r#""tool_calls":[{"#)
                    && text.contains(r#""finish_reason":"tool_calls""#),
                "{alias}: {text}"
            );
            assert!(
                text.contains(r#""arguments":"{\"q\": ""#)
                    && text.contains(r#""arguments":"\"x\"}""#),
                "argument deltas in order: {alias}: {text}"
            );

            // Not asked for: no usage chunk reaches the client, yet the tokens are counted.
            let mut body = openai_body(alias, true, false);
            body.as_object_mut().unwrap().remove("stream_options");
            let (text, tokens) = streamed(&g, Format::Openai, body).await;
            assert!(!text.contains("prompt_tokens"), "{alias}: {text}");
            assert_eq!(
                tokens,
                Tokens {
                    input: 11,
                    output: 5
                },
                "{alias}"
            );
        }
    }

    #[tokio::test]
    async fn a_failing_provider_falls_back_and_unknown_models_are_named() {
        let g = gateway().await;
        let (v, out) = whole(&g, Format::Anthropic, anthropic_body("down", false, false)).await;
        assert_eq!(v["content"][0]["text"], "echo: hello there");
        assert_eq!(out.alias, "o");
        assert_eq!(out.provider_model, "llama-up");

        let err = g
            .call(
                Format::Openai,
                openai_body("gpt-9", false, false),
                "x".into(),
                1,
            )
            .await
            .err()
            .unwrap();
        assert!(matches!(err, GatewayError::UnknownModel(_)));
        assert!(err.to_string().contains("claude-sonnet"), "{err}");
        let err = g
            .call(
                Format::Anthropic,
                json!({"model": "a", "messages": []}),
                "x".into(),
                1,
            )
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("max_tokens"), "{err}");
    }
}
