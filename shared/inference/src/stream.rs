//! Streams between the two formats: Anthropic's typed events (message_start,
//! content_block_start/delta/stop, message_delta, message_stop, ping, error) and OpenAI's
//! `chat.completion.chunk`s. Each translator is a small state machine fed one upstream
//! event at a time; it also keeps the token counts, which credits are charged from.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::anthropic as a;
use crate::translate::{finish_reason, stop_reason};

/// One Anthropic server-sent event (the SSE `event:` name is its `type`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    MessageStart {
        message: Value,
    },
    ContentBlockStart {
        index: usize,
        content_block: Value,
    },
    ContentBlockDelta {
        index: usize,
        delta: Delta,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<DeltaUsage>,
    },
    MessageStop,
    Ping,
    Error {
        error: ErrorBody,
    },
}

impl Event {
    /// The SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
            Event::Ping => "ping",
            Event::Error { .. } => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Delta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    /// Thinking and signature deltas; passed over when translating.
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct MessageDeltaBody {
    #[serde(default)]
    pub stop_reason: Option<a::StopReason>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct DeltaUsage {
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ErrorBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

/// One OpenAI stream chunk.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Chunk {
    #[serde(default)]
    pub id: String,
    #[serde(default = "chunk_object")]
    pub object: String,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<crate::openai::Usage>,
}

fn chunk_object() -> String {
    "chat.completion.chunk".to_owned()
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ChunkChoice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub delta: ChunkDelta,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct ChunkDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ToolCallDelta {
    pub index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionDelta>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct FunctionDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// Tokens a call used (for a stream: as far as it has gone).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
}

impl From<&a::Usage> for Tokens {
    fn from(u: &a::Usage) -> Self {
        Tokens {
            input: u.total_input(),
            output: u.output_tokens,
        }
    }
}

impl From<&crate::openai::Usage> for Tokens {
    fn from(u: &crate::openai::Usage) -> Self {
        Tokens {
            input: u.prompt_tokens,
            output: u.completion_tokens,
        }
    }
}

impl Tokens {
    /// Takes in the usage an Anthropic event carries: message_start's counts, then
    /// message_delta's output count (cumulative) and input count where the API sends it.
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::MessageStart { message } => {
                let usage: a::Usage =
                    serde_json::from_value(message["usage"].clone()).unwrap_or_default();
                *self = Tokens::from(&usage);
            }
            Event::MessageDelta { usage: Some(u), .. } => {
                self.output = u.output_tokens;
                if let Some(input) = u.input_tokens {
                    self.input = self.input.max(input);
                }
            }
            _ => {}
        }
    }
}

/// An Anthropic provider's events, as OpenAI chunks for an OpenAI client.
pub struct AnthropicToOpenAi {
    id: String,
    model: String,
    created: i64,
    include_usage: bool,
    /// Anthropic block index → OpenAI tool-call index.
    tool_of_block: HashMap<usize, usize>,
    tokens: Tokens,
}

impl AnthropicToOpenAi {
    /// `model` is the alias the client asked for; `include_usage` is its
    /// `stream_options.include_usage`.
    pub fn new(id: String, model: String, created: i64, include_usage: bool) -> Self {
        AnthropicToOpenAi {
            id,
            model,
            created,
            include_usage,
            tool_of_block: HashMap::new(),
            tokens: Tokens::default(),
        }
    }

    pub fn tokens(&self) -> Tokens {
        self.tokens
    }

    fn chunk(&self, delta: ChunkDelta, finish: Option<&str>) -> Chunk {
        self.frame(
            vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish.map(str::to_owned),
            }],
            None,
        )
    }

    fn frame(&self, choices: Vec<ChunkChoice>, usage: Option<crate::openai::Usage>) -> Chunk {
        Chunk {
            id: self.id.clone(),
            object: chunk_object(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
        }
    }

    /// The chunks for one upstream event. An `error` event is returned as `Err` with its
    /// message: the caller ends the stream with it.
    pub fn event(&mut self, event: Event) -> Result<Vec<Chunk>, ErrorBody> {
        self.tokens.observe(&event);
        Ok(match event {
            Event::MessageStart { .. } => {
                vec![self.chunk(
                    ChunkDelta {
                        role: Some("assistant".to_owned()),
                        content: Some(String::new()),
                        tool_calls: None,
                    },
                    None,
                )]
            }
            Event::ContentBlockStart {
                index,
                content_block,
            } => match content_block.get("type").and_then(Value::as_str) {
                Some("tool_use") => {
                    let tool = self.tool_of_block.len();
                    self.tool_of_block.insert(index, tool);
                    vec![self.chunk(
                        ChunkDelta {
                            tool_calls: Some(vec![ToolCallDelta {
                                index: tool,
                                id: content_block["id"].as_str().map(str::to_owned),
                                kind: Some("function".to_owned()),
                                function: Some(FunctionDelta {
                                    name: content_block["name"].as_str().map(str::to_owned),
                                    arguments: Some(String::new()),
                                }),
                            }]),
                            ..ChunkDelta::default()
                        },
                        None,
                    )]
                }
                Some("text") => match content_block["text"].as_str() {
                    Some(text) if !text.is_empty() => vec![self.chunk(
                        ChunkDelta {
                            content: Some(text.to_owned()),
                            ..ChunkDelta::default()
                        },
                        None,
                    )],
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            },
            Event::ContentBlockDelta { index, delta } => match delta {
                Delta::TextDelta { text } => vec![self.chunk(
                    ChunkDelta {
                        content: Some(text),
                        ..ChunkDelta::default()
                    },
                    None,
                )],
                Delta::InputJsonDelta { partial_json } => match self.tool_of_block.get(&index) {
                    Some(&tool) => vec![self.chunk(
                        ChunkDelta {
                            tool_calls: Some(vec![ToolCallDelta {
                                index: tool,
                                id: None,
                                kind: None,
                                function: Some(FunctionDelta {
                                    name: None,
                                    arguments: Some(partial_json),
                                }),
                            }]),
                            ..ChunkDelta::default()
                        },
                        None,
                    )],
                    None => Vec::new(),
                },
                Delta::Other => Vec::new(),
            },
            Event::MessageDelta { delta, .. } => {
                vec![self.chunk(
                    ChunkDelta::default(),
                    finish_reason(delta.stop_reason).or(Some("stop")),
                )]
            }
            Event::MessageStop => {
                if self.include_usage {
                    // OpenAI's usage chunk: last, with no choices.
                    vec![self.frame(
                        Vec::new(),
                        Some(crate::openai::Usage {
                            prompt_tokens: self.tokens.input,
                            completion_tokens: self.tokens.output,
                            total_tokens: self.tokens.input + self.tokens.output,
                        }),
                    )]
                } else {
                    Vec::new()
                }
            }
            Event::ContentBlockStop { .. } | Event::Ping => Vec::new(),
            Event::Error { error } => return Err(error),
        })
    }
}

/// An OpenAI-compatible provider's chunks, as Anthropic events for an Anthropic client.
pub struct OpenAiToAnthropic {
    id: String,
    model: String,
    started: bool,
    /// Index and kind of the block being written, if any.
    open: Option<(usize, OpenBlock)>,
    next_block: usize,
    /// OpenAI tool-call index → Anthropic block index.
    block_of_tool: HashMap<usize, usize>,
    stop: Option<a::StopReason>,
    tokens: Tokens,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Text,
    Tool,
}

impl OpenAiToAnthropic {
    /// `model` is the alias the client asked for.
    pub fn new(id: String, model: String) -> Self {
        OpenAiToAnthropic {
            id,
            model,
            started: false,
            open: None,
            next_block: 0,
            block_of_tool: HashMap::new(),
            stop: None,
            tokens: Tokens::default(),
        }
    }

    pub fn tokens(&self) -> Tokens {
        self.tokens
    }

    /// message_start and the ping Anthropic sends after it, once.
    fn start(&mut self, out: &mut Vec<Event>) {
        if self.started {
            return;
        }
        self.started = true;
        out.push(Event::MessageStart {
            message: json!({
                "id": self.id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {"input_tokens": self.tokens.input, "output_tokens": 0}
            }),
        });
        out.push(Event::Ping);
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        if let Some((index, _)) = self.open.take() {
            out.push(Event::ContentBlockStop { index });
        }
    }

    fn open(&mut self, kind: OpenBlock, block: Value, out: &mut Vec<Event>) -> usize {
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((index, kind));
        out.push(Event::ContentBlockStart {
            index,
            content_block: block,
        });
        index
    }

    /// The events for one upstream chunk.
    pub fn chunk(&mut self, chunk: Chunk) -> Vec<Event> {
        let mut out = Vec::new();
        if let Some(u) = &chunk.usage {
            self.tokens = Tokens::from(u);
        }
        self.start(&mut out);
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                let index = match self.open {
                    Some((i, OpenBlock::Text)) => i,
                    _ => self.open(
                        OpenBlock::Text,
                        json!({"type": "text", "text": ""}),
                        &mut out,
                    ),
                };
                out.push(Event::ContentBlockDelta {
                    index,
                    delta: Delta::TextDelta { text },
                });
            }
            for call in choice.delta.tool_calls.into_iter().flatten() {
                let function = call.function.unwrap_or_default();
                let index = match self.block_of_tool.get(&call.index) {
                    Some(&i) => i,
                    None => {
                        let i = self.open(
                            OpenBlock::Tool,
                            json!({
                                "type": "tool_use",
                                "id": call.id.clone().unwrap_or_else(|| format!("toolu_{}_{}", self.id, call.index)),
                                "name": function.name.clone().unwrap_or_default(),
                                "input": {}
                            }),
                            &mut out,
                        );
                        self.block_of_tool.insert(call.index, i);
                        i
                    }
                };
                if let Some(args) = function.arguments.filter(|a| !a.is_empty()) {
                    out.push(Event::ContentBlockDelta {
                        index,
                        delta: Delta::InputJsonDelta { partial_json: args },
                    });
                }
            }
            if let Some(finish) = choice.finish_reason {
                self.stop = stop_reason(Some(&finish));
            }
        }
        out
    }

    /// The closing events, once the upstream stream has ended: the open block's stop,
    /// message_delta with the stop reason and usage, message_stop.
    pub fn finish(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        self.start(&mut out);
        self.close(&mut out);
        out.push(Event::MessageDelta {
            delta: MessageDeltaBody {
                stop_reason: Some(self.stop.unwrap_or(a::StopReason::EndTurn)),
                stop_sequence: None,
            },
            usage: Some(DeltaUsage {
                output_tokens: self.tokens.output,
                input_tokens: Some(self.tokens.input),
            }),
        });
        out.push(Event::MessageStop);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(v: Value) -> Event {
        serde_json::from_value(v).expect("valid event")
    }

    /// What Anthropic streams for "text, then two tool calls".
    fn anthropic_events() -> Vec<Event> {
        [
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 21, "output_tokens": 1}}}),
            json!({"type": "ping"}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Check"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ing."}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {}}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": \"Pa"}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "ris\"}"}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_b", "name": "time", "input": {}}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"tz\":\"CET\"}"}}),
            json!({"type": "content_block_stop", "index": 2}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 40}}),
            json!({"type": "message_stop"}),
        ]
        .into_iter()
        .map(ev)
        .collect()
    }

    /// The message an OpenAI SDK assembles from chunks: text, calls (id, name, args),
    /// finish reason, usage.
    type Assembled = (
        String,
        Vec<(String, String, String)>,
        Option<String>,
        Option<crate::openai::Usage>,
    );

    fn assemble_openai(chunks: &[Chunk]) -> Assembled {
        let (mut text, mut calls, mut finish, mut usage) = (
            String::new(),
            Vec::<(String, String, String)>::new(),
            None,
            None,
        );
        for c in chunks {
            assert!(!c.id.is_empty(), "every chunk has an id");
            assert_eq!(c.object, "chat.completion.chunk");
            if c.usage.is_some() {
                usage = c.usage;
            }
            for choice in &c.choices {
                text.push_str(choice.delta.content.as_deref().unwrap_or(""));
                for t in choice.delta.tool_calls.iter().flatten() {
                    if t.index == calls.len() {
                        calls.push(Default::default());
                    }
                    let call = &mut calls[t.index];
                    if let Some(id) = &t.id {
                        call.0 = id.clone();
                    }
                    if let Some(f) = &t.function {
                        call.1.push_str(f.name.as_deref().unwrap_or(""));
                        call.2.push_str(f.arguments.as_deref().unwrap_or(""));
                    }
                }
                if choice.finish_reason.is_some() {
                    finish = choice.finish_reason.clone();
                }
            }
        }
        (text, calls, finish, usage)
    }

    #[test]
    fn anthropic_events_become_openai_chunks_with_tool_call_deltas_and_usage() {
        let mut t = AnthropicToOpenAi::new("chatcmpl-1".into(), "claude-sonnet".into(), 7, true);
        let mut chunks = Vec::new();
        for e in anthropic_events() {
            chunks.extend(t.event(e).unwrap());
        }
        let (text, calls, finish, usage) = assemble_openai(&chunks);
        assert_eq!(text, "Checking.");
        assert_eq!(calls.len(), 2);
        assert_eq!(
            (calls[0].0.as_str(), calls[0].1.as_str()),
            ("toolu_a", "weather")
        );
        let args: Value = serde_json::from_str(&calls[0].2).unwrap();
        assert_eq!(args, json!({"city": "Paris"}));
        assert_eq!(
            (
                calls[1].0.as_str(),
                calls[1].1.as_str(),
                calls[1].2.as_str()
            ),
            ("toolu_b", "time", "{\"tz\":\"CET\"}")
        );
        assert_eq!(finish.as_deref(), Some("tool_calls"));
        assert_eq!(
            usage,
            Some(crate::openai::Usage {
                prompt_tokens: 21,
                completion_tokens: 40,
                total_tokens: 61
            })
        );
        // The usage chunk is last and has no choices, as OpenAI sends it.
        assert!(chunks.last().unwrap().choices.is_empty());
        assert_eq!(
            chunks[0].choices[0].delta.role.as_deref(),
            Some("assistant")
        );
        assert_eq!(
            t.tokens(),
            Tokens {
                input: 21,
                output: 40
            }
        );

        // Without include_usage no usage chunk, but the tokens are still counted.
        let mut t = AnthropicToOpenAi::new("c".into(), "m".into(), 7, false);
        let mut chunks = Vec::new();
        for e in anthropic_events() {
            chunks.extend(t.event(e).unwrap());
        }
        assert!(
            chunks
                .iter()
                .all(|c| c.usage.is_none() && !c.choices.is_empty())
        );
        assert_eq!(t.tokens().output, 40);

        let err = t
            .event(ev(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})))
            .unwrap_err();
        assert_eq!(err.kind, "overloaded_error");
    }

    fn chunk(v: Value) -> Chunk {
        serde_json::from_value(v).expect("valid chunk")
    }

    /// What an OpenAI-compatible server streams for "text, then two parallel tool calls".
    fn openai_chunks() -> Vec<Chunk> {
        let c = |choices: Value| json!({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices});
        vec![
            chunk(c(
                json!([{"index": 0, "delta": {"role": "assistant", "content": ""}}]),
            )),
            chunk(c(json!([{"index": 0, "delta": {"content": "Check"}}]))),
            chunk(c(json!([{"index": 0, "delta": {"content": "ing."}}]))),
            chunk(c(
                json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "weather", "arguments": ""}}]}}]),
            )),
            chunk(c(
                json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": "}}]}}]),
            )),
            chunk(c(
                json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}}]),
            )),
            chunk(c(
                json!([{"index": 0, "delta": {"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "time", "arguments": "{\"tz\":\"CET\"}"}}]}}]),
            )),
            chunk(c(
                json!([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]),
            )),
            chunk(
                json!({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [], "usage": {"prompt_tokens": 21, "completion_tokens": 40, "total_tokens": 61}}),
            ),
        ]
    }

    /// The message the Anthropic SDK assembles from events, checking the event grammar:
    /// message_start first, every delta inside a started and unstopped block.
    fn assemble_anthropic(events: &[Event]) -> (Vec<Value>, Option<a::StopReason>, DeltaUsage) {
        let mut content: Vec<Value> = Vec::new();
        let mut open: Option<usize> = None;
        let (mut stop, mut usage) = (None, DeltaUsage::default());
        assert!(matches!(events.first(), Some(Event::MessageStart { .. })));
        assert!(matches!(events.last(), Some(Event::MessageStop)));
        let mut json_parts: HashMap<usize, String> = HashMap::new();
        for e in events {
            match e {
                Event::ContentBlockStart {
                    index,
                    content_block,
                } => {
                    assert_eq!(
                        open, None,
                        "a block starts only after the previous one stopped"
                    );
                    assert_eq!(*index, content.len(), "blocks are numbered in order");
                    content.push(content_block.clone());
                    open = Some(*index);
                }
                Event::ContentBlockDelta { index, delta } => {
                    assert_eq!(open, Some(*index), "delta inside the open block");
                    match delta {
                        Delta::TextDelta { text } => {
                            let t = content[*index]["text"].as_str().unwrap().to_owned() + text;
                            content[*index]["text"] = json!(t);
                        }
                        Delta::InputJsonDelta { partial_json } => {
                            json_parts.entry(*index).or_default().push_str(partial_json)
                        }
                        Delta::Other => {}
                    }
                }
                Event::ContentBlockStop { index } => {
                    assert_eq!(open, Some(*index));
                    open = None;
                    if let Some(j) = json_parts.remove(index) {
                        content[*index]["input"] = serde_json::from_str(&j).unwrap();
                    }
                }
                Event::MessageDelta { delta, usage: u } => {
                    assert_eq!(open, None, "message_delta after the last block stopped");
                    stop = delta.stop_reason;
                    usage = u.unwrap();
                }
                _ => {}
            }
        }
        (content, stop, usage)
    }

    #[test]
    fn openai_chunks_become_anthropic_events_with_input_json_deltas() {
        let mut t = OpenAiToAnthropic::new("msg_1".into(), "llama-3.3-70b".into());
        let mut events = Vec::new();
        for c in openai_chunks() {
            events.extend(t.chunk(c));
        }
        events.extend(t.finish());
        assert_eq!(events[1], Event::Ping);
        let (content, stop, usage) = assemble_anthropic(&events);
        assert_eq!(
            content,
            vec![
                json!({"type": "text", "text": "Checking."}),
                json!({"type": "tool_use", "id": "call_a", "name": "weather", "input": {"city": "Paris"}}),
                json!({"type": "tool_use", "id": "call_b", "name": "time", "input": {"tz": "CET"}}),
            ]
        );
        assert_eq!(stop, Some(a::StopReason::ToolUse));
        assert_eq!(
            usage,
            DeltaUsage {
                output_tokens: 40,
                input_tokens: Some(21)
            }
        );
        let names: Vec<&str> = events.iter().map(Event::name).collect();
        assert_eq!(
            &names[..3],
            ["message_start", "ping", "content_block_start"]
        );
        assert_eq!(&names[names.len() - 2..], ["message_delta", "message_stop"]);
    }

    #[test]
    fn an_empty_upstream_stream_still_makes_a_well_formed_message() {
        let mut t = OpenAiToAnthropic::new("msg_1".into(), "m".into());
        let events = t.finish();
        let (content, stop, _) = assemble_anthropic(&events);
        assert!(content.is_empty());
        assert_eq!(stop, Some(a::StopReason::EndTurn));
    }

    #[test]
    fn a_stream_survives_the_round_trip_through_both_translators() {
        let mut to_openai = AnthropicToOpenAi::new("c".into(), "m".into(), 1, true);
        let mut to_anthropic = OpenAiToAnthropic::new("msg".into(), "m".into());
        let mut events = Vec::new();
        for e in anthropic_events() {
            for c in to_openai.event(e).unwrap() {
                events.extend(to_anthropic.chunk(c));
            }
        }
        events.extend(to_anthropic.finish());
        let (content, stop, usage) = assemble_anthropic(&events);
        let (original, original_stop, _) = assemble_anthropic(&anthropic_events());
        assert_eq!(content, original);
        assert_eq!(stop, original_stop);
        assert_eq!(
            usage,
            DeltaUsage {
                output_tokens: 40,
                input_tokens: Some(21)
            }
        );
    }
}
