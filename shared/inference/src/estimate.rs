//! Token estimates from text, for what a provider did not count: a reply without usage, a
//! stream its client left before the provider's counts came, and the input part of a
//! call's reservation. About four characters a token, as the providers' own rules of
//! thumb say; the provider's own counts replace these whenever it sends them.

use serde_json::Value;

/// Characters per token assumed.
const CHARS_PER_TOKEN: u64 = 4;
/// Tokens each message adds for its role and framing.
const PER_MESSAGE: u64 = 4;

/// Tokens for `chars` characters of text (rounded up).
pub fn tokens(chars: u64) -> u64 {
    chars.div_ceil(CHARS_PER_TOKEN)
}

/// Characters of text in a JSON value: every string, keys left out, and image or file
/// payloads (base64 `data`, `url`s) left out (providers price images by size, not bytes).
pub fn text_chars(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.chars().count() as u64,
        Value::Array(items) => items.iter().map(text_chars).sum(),
        Value::Object(fields) => fields
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "data" | "url" | "image_url" | "source"))
            .map(|(_, v)| text_chars(v))
            .sum(),
        _ => 0,
    }
}

/// The input tokens of a request (either format) from its system prompt, messages and
/// tool definitions; at least 1.
pub fn input_tokens(request: &Value) -> u64 {
    let messages = request["messages"].as_array().map_or(0, Vec::len) as u64;
    let chars = text_chars(&request["system"])
        + text_chars(&request["messages"])
        + text_chars(&request["tools"]);
    (tokens(chars) + PER_MESSAGE * messages).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_counts_and_image_payloads_do_not() {
        let req = json!({"system": "be brief", "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A".repeat(100_000)}}
            ]}
        ]});
        // "be brief" 8 + "user" 4 + "text" 4 + "what is this" 12 + "image" 5 = 33 chars.
        assert_eq!(input_tokens(&req), 33u64.div_ceil(4) + 4);
        assert_eq!(tokens(0), 0);
        assert_eq!(tokens(5), 2);
    }
}
