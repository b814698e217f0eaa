//! Requests and responses between the Anthropic and OpenAI formats, for a client of one
//! format calling a provider of the other. Tool use is the part gateways most often get
//! wrong, so it is spelled out: Anthropic's `tool_use` blocks are OpenAI's `tool_calls`
//! (input object ↔ arguments JSON text), and Anthropic's `tool_result` blocks inside a
//! user turn are OpenAI's `tool` messages, which must come straight after the assistant
//! turn that called them.

use serde_json::{Value, json};

use crate::anthropic as a;
use crate::openai as o;

/// Output limit sent to an Anthropic provider when an OpenAI client set none (the
/// Messages API requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// A request that cannot be expressed in the provider's format; the client gets a 400
/// with this text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct TranslateError(pub String);

fn bad(msg: impl Into<String>) -> TranslateError {
    TranslateError(msg.into())
}

/// An OpenAI-format request for an Anthropic provider, calling `model` (the provider's id).
pub fn openai_to_anthropic(
    req: &o::ChatRequest,
    model: &str,
) -> Result<a::MessagesRequest, TranslateError> {
    if req.n.is_some_and(|n| n != 1) {
        return Err(bad(
            "n: only 1 choice per request is supported for this model",
        ));
    }
    let mut system: Vec<String> = Vec::new();
    let mut messages: Vec<a::Message> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let (role, blocks) = match m.role {
            o::Role::System | o::Role::Developer => {
                if let Some(c) = &m.content {
                    system.push(c.text());
                }
                continue;
            }
            o::Role::User => (a::Role::User, user_blocks(m.content.as_ref(), i)?),
            o::Role::Assistant => {
                let mut blocks = Vec::new();
                if let Some(c) = &m.content {
                    let text = c.text();
                    if !text.is_empty() {
                        blocks.push(a::Block::Text { text });
                    }
                }
                for call in m.tool_calls.iter().flatten() {
                    let input = parse_arguments(&call.function.arguments).ok_or_else(|| {
                        bad(format!(
                            "messages[{i}].tool_calls: arguments of `{}` are not a JSON object",
                            call.function.name
                        ))
                    })?;
                    blocks.push(a::Block::ToolUse {
                        id: call.id.clone(),
                        name: call.function.name.clone(),
                        input,
                    });
                }
                (a::Role::Assistant, blocks)
            }
            o::Role::Tool => {
                let id = m.tool_call_id.clone().ok_or_else(|| {
                    bad(format!("messages[{i}]: a tool message needs tool_call_id"))
                })?;
                let text = m.content.as_ref().map(|c| c.text()).unwrap_or_default();
                (
                    a::Role::User,
                    vec![a::Block::ToolResult {
                        tool_use_id: id,
                        content: Some(a::Content::Text(text)),
                        is_error: None,
                    }],
                )
            }
        };
        if blocks.is_empty() {
            continue;
        }
        // Anthropic wants user and assistant turns to alternate: consecutive turns of one
        // role (several tool results, a tool result then a user note) become one.
        match messages.last_mut() {
            Some(last) if last.role == role => {
                let mut merged = last.content.blocks();
                merged.extend(blocks);
                last.content = a::Content::Blocks(merged);
            }
            _ => messages.push(a::Message {
                role,
                content: a::Content::Blocks(blocks),
            }),
        }
    }
    let mut system = system.join("\n\n");
    if let Some(format) = &req.response_format {
        // The Messages API has no JSON mode; the instruction is the portable equivalent.
        match format.get("type").and_then(Value::as_str) {
            Some("json_object") => push_line(
                &mut system,
                "Respond with a single JSON object and nothing else.",
            ),
            Some("json_schema") => {
                let schema = format
                    .pointer("/json_schema/schema")
                    .map(Value::to_string)
                    .unwrap_or_else(|| "{}".to_owned());
                push_line(
                    &mut system,
                    &format!(
                        "Respond with a single JSON object matching this JSON Schema and nothing else: {schema}"
                    ),
                );
            }
            _ => {}
        }
    }
    let tools = req.tools.as_ref().map(|tools| {
        tools
            .iter()
            .map(|t| a::Tool {
                name: t.function.name.clone(),
                description: t.function.description.clone(),
                input_schema: t
                    .function
                    .parameters
                    .clone()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            })
            .collect()
    });
    let no_parallel = req.parallel_tool_calls == Some(false);
    let tool_choice = match &req.tool_choice {
        None if no_parallel && req.tools.is_some() => Some(a::ToolChoice::Auto {
            disable_parallel_tool_use: Some(true),
        }),
        None => None,
        Some(o::ToolChoice::Mode(mode)) => Some(match mode.as_str() {
            "auto" => a::ToolChoice::Auto {
                disable_parallel_tool_use: no_parallel.then_some(true),
            },
            "required" => a::ToolChoice::Any {
                disable_parallel_tool_use: no_parallel.then_some(true),
            },
            "none" => a::ToolChoice::None,
            other => {
                return Err(bad(format!(
                    "tool_choice: `{other}` is not one of auto, none, required or {{\"type\": \"function\", \"function\": {{\"name\": …}}}}"
                )));
            }
        }),
        Some(o::ToolChoice::Named(named)) => Some(a::ToolChoice::Tool {
            name: named.function.name.clone(),
            disable_parallel_tool_use: no_parallel.then_some(true),
        }),
    };
    Ok(a::MessagesRequest {
        model: model.to_owned(),
        max_tokens: req.max_output().unwrap_or(DEFAULT_MAX_TOKENS),
        messages,
        system: (!system.is_empty()).then_some(a::System::Text(system)),
        tools,
        tool_choice,
        // OpenAI's range is 0–2, Anthropic's 0–1.
        temperature: req.temperature.map(|t| t.clamp(0.0, 1.0)),
        top_p: req.top_p,
        top_k: None,
        stop_sequences: req.stop.clone().map(o::Stop::into_vec),
        metadata: req.user.clone().map(|u| a::Metadata { user_id: Some(u) }),
        stream: req.stream,
    })
}

fn push_line(text: &mut String, line: &str) {
    if !text.is_empty() {
        text.push_str("\n\n");
    }
    text.push_str(line);
}

fn user_blocks(
    content: Option<&o::MessageContent>,
    i: usize,
) -> Result<Vec<a::Block>, TranslateError> {
    Ok(match content {
        None => Vec::new(),
        Some(o::MessageContent::Text(t)) => vec![a::Block::Text { text: t.clone() }],
        Some(o::MessageContent::Parts(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                match p {
                    o::Part::Text { text } => blocks.push(a::Block::Text { text: text.clone() }),
                    o::Part::ImageUrl { image_url } => blocks.push(a::Block::Image {
                        source: image_source(&image_url.url).ok_or_else(|| {
                            bad(format!(
                                "messages[{i}].content[{j}].image_url.url must be an http(s) URL or a base64 data: URL"
                            ))
                        })?,
                    }),
                    o::Part::Other => {
                        return Err(bad(format!(
                            "messages[{i}].content[{j}]: only text and image_url parts can be sent to this model"
                        )));
                    }
                }
            }
            blocks
        }
    })
}

/// `data:<media type>;base64,<data>` or an http(s) URL.
fn image_source(url: &str) -> Option<a::ImageSource> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (media_type, data) = rest.split_once(";base64,")?;
        return Some(a::ImageSource::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        });
    }
    (url.starts_with("https://") || url.starts_with("http://")).then(|| a::ImageSource::Url {
        url: url.to_owned(),
    })
}

/// Tool-call arguments as Anthropic's `input` object. Models sometimes send an empty
/// string for a call without arguments.
pub fn parse_arguments(arguments: &str) -> Option<Value> {
    if arguments.trim().is_empty() {
        return Some(json!({}));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

/// An Anthropic-format request for an OpenAI-compatible provider, calling `model`.
pub fn anthropic_to_openai(req: &a::MessagesRequest, model: &str) -> o::ChatRequest {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = &req.system {
        let text = system.text();
        if !text.is_empty() {
            messages.push(text_message(o::Role::System, text));
        }
    }
    for m in &req.messages {
        let blocks = m.content.blocks();
        match m.role {
            a::Role::Assistant => {
                let text = a::join_text(&blocks);
                let calls = tool_calls(&blocks);
                messages.push(o::ChatMessage {
                    role: o::Role::Assistant,
                    content: (!text.is_empty() || calls.is_empty())
                        .then_some(o::MessageContent::Text(text)),
                    tool_calls: (!calls.is_empty()).then_some(calls),
                    tool_call_id: None,
                    name: None,
                });
            }
            a::Role::User => {
                // Tool results first: OpenAI wants them right after the calling turn.
                let mut parts = Vec::new();
                for b in blocks {
                    match b {
                        a::Block::ToolResult {
                            tool_use_id,
                            content,
                            is_error,
                        } => {
                            let mut text = match &content {
                                Some(a::Content::Text(t)) => t.clone(),
                                Some(a::Content::Blocks(bs)) => a::join_text(bs),
                                None => String::new(),
                            };
                            if is_error == Some(true) {
                                text = format!("Error: {text}");
                            }
                            messages.push(o::ChatMessage {
                                role: o::Role::Tool,
                                content: Some(o::MessageContent::Text(text)),
                                tool_calls: None,
                                tool_call_id: Some(tool_use_id),
                                name: None,
                            });
                        }
                        a::Block::Text { text } => parts.push(o::Part::Text { text }),
                        a::Block::Image { source } => parts.push(o::Part::ImageUrl {
                            image_url: o::ImageUrl {
                                url: match source {
                                    a::ImageSource::Base64 { media_type, data } => {
                                        format!("data:{media_type};base64,{data}")
                                    }
                                    a::ImageSource::Url { url } => url,
                                },
                                detail: None,
                            },
                        }),
                        a::Block::ToolUse { .. } | a::Block::Other => {}
                    }
                }
                if parts.is_empty() {
                    continue;
                }
                let content = match parts.as_slice() {
                    [o::Part::Text { text }] => o::MessageContent::Text(text.clone()),
                    _ => o::MessageContent::Parts(parts),
                };
                messages.push(o::ChatMessage {
                    role: o::Role::User,
                    content: Some(content),
                    tool_calls: None,
                    tool_call_id: None,
                    name: None,
                });
            }
        }
    }
    let tools = req.tools.as_ref().map(|tools| {
        tools
            .iter()
            .map(|t| o::Tool {
                kind: "function".to_owned(),
                function: o::FunctionDef {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    parameters: Some(t.input_schema.clone()),
                },
            })
            .collect()
    });
    let tool_choice = req.tool_choice.as_ref().map(|c| match c {
        a::ToolChoice::Auto { .. } => o::ToolChoice::Mode("auto".to_owned()),
        a::ToolChoice::Any { .. } => o::ToolChoice::Mode("required".to_owned()),
        a::ToolChoice::None => o::ToolChoice::Mode("none".to_owned()),
        a::ToolChoice::Tool { name, .. } => o::ToolChoice::Named(o::NamedToolChoice {
            kind: "function".to_owned(),
            function: o::NamedFunction { name: name.clone() },
        }),
    });
    o::ChatRequest {
        model: model.to_owned(),
        messages,
        parallel_tool_calls: req
            .tool_choice
            .as_ref()
            .filter(|c| c.disables_parallel())
            .map(|_| false),
        tools,
        tool_choice,
        temperature: req.temperature,
        top_p: req.top_p,
        max_tokens: Some(req.max_tokens),
        max_completion_tokens: None,
        stop: req.stop_sequences.clone().map(o::Stop::Many),
        response_format: None,
        n: None,
        user: req.metadata.as_ref().and_then(|m| m.user_id.clone()),
        stream: req.stream,
        // Usage arrives only when asked for; credits depend on it.
        stream_options: req.stream.then_some(o::StreamOptions {
            include_usage: true,
        }),
    }
}

/// The `tool_use` blocks of an Anthropic turn as OpenAI `tool_calls` (input object →
/// arguments JSON text).
fn tool_calls(blocks: &[a::Block]) -> Vec<o::ToolCall> {
    blocks
        .iter()
        .filter_map(|b| match b {
            a::Block::ToolUse { id, name, input } => Some(o::ToolCall {
                id: id.clone(),
                kind: "function".to_owned(),
                function: o::FunctionCall {
                    name: name.clone(),
                    arguments: input.to_string(),
                },
            }),
            _ => None,
        })
        .collect()
}

fn text_message(role: o::Role, text: String) -> o::ChatMessage {
    o::ChatMessage {
        role,
        content: Some(o::MessageContent::Text(text)),
        tool_calls: None,
        tool_call_id: None,
        name: None,
    }
}

/// OpenAI's `finish_reason` for an Anthropic stop reason.
pub fn finish_reason(stop: Option<a::StopReason>) -> Option<&'static str> {
    stop.map(|s| match s {
        a::StopReason::EndTurn | a::StopReason::StopSequence | a::StopReason::PauseTurn => "stop",
        a::StopReason::MaxTokens => "length",
        a::StopReason::ToolUse => "tool_calls",
        a::StopReason::Refusal => "content_filter",
    })
}

/// Anthropic's stop reason for an OpenAI `finish_reason`.
pub fn stop_reason(finish: Option<&str>) -> Option<a::StopReason> {
    finish.map(|f| match f {
        "length" => a::StopReason::MaxTokens,
        "tool_calls" | "function_call" => a::StopReason::ToolUse,
        "content_filter" => a::StopReason::Refusal,
        _ => a::StopReason::EndTurn,
    })
}

/// An Anthropic response as an OpenAI client expects it; `model` is the alias the client
/// asked for.
pub fn anthropic_response_to_openai(
    resp: a::MessagesResponse,
    id: String,
    model: &str,
    created: i64,
) -> o::ChatResponse {
    let text = a::join_text(&resp.content);
    let calls = tool_calls(&resp.content);
    let input = resp.usage.total_input();
    o::ChatResponse {
        id,
        object: "chat.completion".to_owned(),
        created,
        model: model.to_owned(),
        choices: vec![o::Choice {
            index: 0,
            message: o::ResponseMessage {
                role: "assistant".to_owned(),
                content: (!text.is_empty() || calls.is_empty()).then_some(text),
                tool_calls: (!calls.is_empty()).then_some(calls),
            },
            finish_reason: finish_reason(resp.stop_reason).map(str::to_owned),
        }],
        usage: Some(o::Usage {
            prompt_tokens: input,
            completion_tokens: resp.usage.output_tokens,
            total_tokens: input + resp.usage.output_tokens,
        }),
    }
}

/// An OpenAI response as an Anthropic client expects it; `model` is the alias the client
/// asked for. Tool-call arguments that are not a JSON object (a model's mistake) arrive
/// as `{"arguments": "<the text>"}` rather than being lost.
pub fn openai_response_to_anthropic(
    resp: o::ChatResponse,
    id: String,
    model: &str,
) -> a::MessagesResponse {
    let choice = resp.choices.into_iter().next();
    let mut content = Vec::new();
    let mut finish = None;
    if let Some(choice) = choice {
        finish = choice.finish_reason;
        if let Some(text) = choice.message.content.filter(|t| !t.is_empty()) {
            content.push(a::Block::Text { text });
        }
        for call in choice.message.tool_calls.into_iter().flatten() {
            let input = parse_arguments(&call.function.arguments)
                .unwrap_or_else(|| json!({"arguments": call.function.arguments}));
            content.push(a::Block::ToolUse {
                id: call.id,
                name: call.function.name,
                input,
            });
        }
    }
    let usage = resp.usage.unwrap_or_default();
    a::MessagesResponse {
        id,
        kind: "message".to_owned(),
        role: a::Role::Assistant,
        model: model.to_owned(),
        content,
        stop_reason: stop_reason(finish.as_deref()),
        stop_sequence: None,
        usage: a::Usage {
            input_tokens: usage.prompt_tokens,
            output_tokens: usage.completion_tokens,
            cache_creation_input_tokens: None,
            cache_read_input_tokens: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(v: Value) -> o::ChatRequest {
        serde_json::from_value(v).expect("valid OpenAI request")
    }

    fn messages(v: Value) -> a::MessagesRequest {
        serde_json::from_value(v).expect("valid Anthropic request")
    }

    /// A whole tool-use conversation in OpenAI form, as the SDK sends it.
    fn openai_tool_conversation() -> o::ChatRequest {
        chat(json!({
            "model": "claude-sonnet",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": "Checking both.", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "24C"}]},
                {"role": "user", "content": [
                    {"type": "text", "text": "And this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
                ]}
            ],
            "tools": [{"type": "function", "function": {"name": "weather", "description": "Current weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
            "tool_choice": "required",
            "parallel_tool_calls": false,
            "max_completion_tokens": 300,
            "max_tokens": 100,
            "temperature": 1.6,
            "stop": "END",
            "user": "u-1"
        }))
    }

    #[test]
    fn an_openai_tool_conversation_becomes_alternating_anthropic_turns() {
        let req =
            openai_to_anthropic(&openai_tool_conversation(), "claude-sonnet-4-20250514").unwrap();
        assert_eq!(req.model, "claude-sonnet-4-20250514");
        assert_eq!(
            req.system,
            Some(a::System::Text("Be brief.\n\nUse tools.".into()))
        );
        assert_eq!(
            req.max_tokens, 300,
            "max_completion_tokens wins over max_tokens"
        );
        assert_eq!(
            req.temperature,
            Some(1.0),
            "OpenAI's 0–2 clamped to Anthropic's 0–1"
        );
        assert_eq!(req.stop_sequences, Some(vec!["END".to_owned()]));
        assert_eq!(req.metadata.unwrap().user_id.as_deref(), Some("u-1"));
        assert_eq!(
            req.tool_choice,
            Some(a::ToolChoice::Any {
                disable_parallel_tool_use: Some(true)
            })
        );
        let tools = req.tools.unwrap();
        assert_eq!(tools[0].name, "weather");
        assert_eq!(tools[0].input_schema["required"], json!(["city"]));

        let roles: Vec<a::Role> = req.messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, [a::Role::User, a::Role::Assistant, a::Role::User]);
        assert_eq!(
            req.messages[1].content.blocks(),
            vec![
                a::Block::Text {
                    text: "Checking both.".into()
                },
                a::Block::ToolUse {
                    id: "call_1".into(),
                    name: "weather".into(),
                    input: json!({"city": "Paris"})
                },
                a::Block::ToolUse {
                    id: "call_2".into(),
                    name: "weather".into(),
                    input: json!({"city": "Rome"})
                },
            ]
        );
        // Both tool results and the next user message share one user turn, results first.
        assert_eq!(
            req.messages[2].content.blocks(),
            vec![
                a::Block::ToolResult {
                    tool_use_id: "call_1".into(),
                    content: Some(a::Content::Text("18C".into())),
                    is_error: None
                },
                a::Block::ToolResult {
                    tool_use_id: "call_2".into(),
                    content: Some(a::Content::Text("24C".into())),
                    is_error: None
                },
                a::Block::Text {
                    text: "And this?".into()
                },
                a::Block::Image {
                    source: a::ImageSource::Base64 {
                        media_type: "image/png".into(),
                        data: "iVBORw0KGgo=".into()
                    }
                },
            ]
        );
    }

    #[test]
    fn openai_requests_anthropic_cannot_take_are_refused_with_the_field() {
        let cases = [
            (json!({"model": "m", "messages": [], "n": 2}), "n:"),
            (
                json!({"model": "m", "messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1,"}}]}]}),
                "messages[0].tool_calls",
            ),
            (
                json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}),
                "tool_call_id",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]}),
                "messages[0].content[0].image_url.url",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}),
                "only text and image_url",
            ),
            (
                json!({"model": "m", "messages": [], "tool_choice": "sometimes"}),
                "tool_choice",
            ),
        ];
        for (body, expected) in cases {
            let err = openai_to_anthropic(&chat(body.clone()), "x")
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{body}: {err}");
        }
    }

    #[test]
    fn defaults_and_json_mode_reach_anthropic() {
        let req = openai_to_anthropic(
            &chat(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
                "tool_choice": {"type": "function", "function": {"name": "lookup"}},
                "stream": true})),
            "p",
        )
        .unwrap();
        assert_eq!(req.max_tokens, DEFAULT_MAX_TOKENS);
        assert!(req.stream);
        let system = req.system.unwrap().text();
        assert!(
            system.contains("JSON Schema") && system.contains(r#"{"type":"object"}"#),
            "{system}"
        );
        assert_eq!(
            req.tool_choice,
            Some(a::ToolChoice::Tool {
                name: "lookup".into(),
                disable_parallel_tool_use: None
            })
        );
        // Empty arguments are a call without arguments.
        assert_eq!(parse_arguments(""), Some(json!({})));
        assert_eq!(parse_arguments("\"text\""), None);
    }

    fn anthropic_tool_conversation() -> a::MessagesRequest {
        messages(json!({
            "model": "llama-3.3-70b",
            "max_tokens": 256,
            "system": [{"type": "text", "text": "Be brief."}],
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18C"}]},
                    {"type": "text", "text": "Thanks"}
                ]}
            ],
            "tools": [{"name": "weather", "description": "Current weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
            "temperature": 0.2,
            "top_k": 5,
            "stop_sequences": ["END"],
            "metadata": {"user_id": "u-1"},
            "stream": true
        }))
    }

    #[test]
    fn an_anthropic_tool_conversation_becomes_openai_messages() {
        let req = anthropic_to_openai(
            &anthropic_tool_conversation(),
            "meta/llama-3.3-70b-instruct",
        );
        let wire = serde_json::to_value(&req).unwrap();
        assert_eq!(
            wire["messages"],
            json!([
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}
                ]},
                {"role": "tool", "content": "18C", "tool_call_id": "toolu_1"},
                {"role": "user", "content": "Thanks"}
            ])
        );
        assert_eq!(wire["model"], "meta/llama-3.3-70b-instruct");
        assert_eq!(wire["max_tokens"], 256);
        assert_eq!(wire["tool_choice"], "auto");
        assert_eq!(wire["parallel_tool_calls"], false);
        assert_eq!(
            wire["tools"][0]["function"]["parameters"]["properties"]["city"]["type"],
            "string"
        );
        assert_eq!(wire["stop"], json!(["END"]));
        assert_eq!(wire["user"], "u-1");
        assert_eq!(wire["stream"], true);
        assert_eq!(wire["stream_options"], json!({"include_usage": true}));
        assert!(wire.get("top_k").is_none(), "no top_k in Chat Completions");
    }

    #[test]
    fn a_tool_conversation_survives_the_round_trip() {
        let original = anthropic_tool_conversation();
        let back = openai_to_anthropic(&anthropic_to_openai(&original, "x"), "y").unwrap();
        assert_eq!(back.system.unwrap().text(), "Be brief.");
        assert_eq!(back.tools, original.tools);
        assert_eq!(back.stop_sequences, original.stop_sequences);
        assert_eq!(back.max_tokens, original.max_tokens);
        assert_eq!(back.messages.len(), original.messages.len());
        for (b, o) in back.messages.iter().zip(&original.messages) {
            assert_eq!(b.role, o.role);
            let flatten = |blocks: Vec<a::Block>| -> Vec<a::Block> {
                blocks
                    .into_iter()
                    .map(|b| match b {
                        a::Block::ToolResult {
                            tool_use_id,
                            content,
                            is_error,
                        } => a::Block::ToolResult {
                            tool_use_id,
                            content: content.map(|c| a::Content::Text(a::join_text(&c.blocks()))),
                            is_error,
                        },
                        other => other,
                    })
                    .collect()
            };
            assert_eq!(flatten(b.content.blocks()), flatten(o.content.blocks()));
        }
        assert_eq!(
            back.tool_choice,
            Some(a::ToolChoice::Auto {
                disable_parallel_tool_use: Some(true)
            })
        );
    }

    #[test]
    fn responses_translate_with_tool_calls_stop_reasons_and_usage() {
        let resp: a::MessagesResponse = serde_json::from_value(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_9", "name": "weather", "input": {"city": "Rome", "units": ["c"]}}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 5}
        }))
        .unwrap();
        let out =
            anthropic_response_to_openai(resp, "chatcmpl-1".into(), "claude-sonnet", 1_700_000_000);
        let wire = serde_json::to_value(&out).unwrap();
        assert_eq!(wire["model"], "claude-sonnet");
        assert_eq!(wire["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(wire["choices"][0]["message"]["content"], "Let me check.");
        let call = &wire["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["id"], "toolu_9");
        assert_eq!(call["type"], "function");
        let args: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"city": "Rome", "units": ["c"]}));
        assert_eq!(
            wire["usage"],
            json!({"prompt_tokens": 15, "completion_tokens": 7, "total_tokens": 22})
        );

        let resp: o::ChatResponse = serde_json::from_value(json!({
            "id": "x", "object": "chat.completion", "created": 1, "model": "meta/llama",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
                "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}},
                    {"id": "call_b", "type": "function", "function": {"name": "broken", "arguments": "{\"city\":"}}
                ]}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}
        }))
        .unwrap();
        let out = openai_response_to_anthropic(resp, "msg_2".into(), "llama-3.3-70b");
        assert_eq!(out.stop_reason, Some(a::StopReason::ToolUse));
        assert_eq!(out.model, "llama-3.3-70b");
        assert_eq!(
            out.content,
            vec![
                a::Block::ToolUse {
                    id: "call_a".into(),
                    name: "weather".into(),
                    input: json!({"city": "Oslo"})
                },
                a::Block::ToolUse {
                    id: "call_b".into(),
                    name: "broken".into(),
                    input: json!({"arguments": "{\"city\":"})
                },
            ]
        );
        assert_eq!((out.usage.input_tokens, out.usage.output_tokens), (12, 4));

        for (finish, stop) in [
            ("stop", a::StopReason::EndTurn),
            ("length", a::StopReason::MaxTokens),
            ("content_filter", a::StopReason::Refusal),
        ] {
            assert_eq!(stop_reason(Some(finish)), Some(stop));
        }
        assert_eq!(
            finish_reason(Some(a::StopReason::MaxTokens)),
            Some("length")
        );
        assert_eq!(
            finish_reason(Some(a::StopReason::StopSequence)),
            Some("stop")
        );
    }
}
