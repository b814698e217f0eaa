//! Token counts from a request's text, for what a provider did not count and for what a
//! call may cost before it runs.
//!
//! Two figures. The **estimate** (about four characters a token, as the providers' own
//! rules of thumb say) bills a reply that came without counts. The **bound** is what a
//! call's credit reservation holds, so it must not be exceeded by what the provider later
//! bills: no tokenizer makes more tokens of a text than it has UTF-8 bytes, so text counts
//! a token a byte (every string of the request, keys of tool schemas included); an image
//! counts as the most a provider bills for one after resizing it, and a document (a PDF,
//! a file, audio) as a whole context window. The provider's own counts replace both
//! whenever it sends them.

use serde_json::Value;

/// Characters per token assumed by the estimate.
const CHARS_PER_TOKEN: u64 = 4;
/// Tokens each message adds for its role and framing.
const PER_MESSAGE: u64 = 4;
/// An image in the estimate (a medium image) and in the bound (providers resize larger
/// images to about 1.15 megapixels, some 1,600 tokens; OpenAI's tiles stay under 2,000).
const IMAGE_ESTIMATE: u64 = 1_000;
const IMAGE_BOUND: u64 = 2_000;
/// A document, file or audio part: a few pages in the estimate; in the bound, a whole
/// context window, since its size in tokens cannot be told from its bytes.
const DOCUMENT_ESTIMATE: u64 = 3_000;
const DOCUMENT_BOUND: u64 = 200_000;

/// Tokens for `chars` characters of text (rounded up), as the estimate counts them.
pub fn tokens(chars: u64) -> u64 {
    chars.div_ceil(CHARS_PER_TOKEN)
}

/// A request's input tokens, estimated and bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InputTokens {
    /// What the request most likely costs (billing when the provider sent no counts).
    pub estimate: u64,
    /// The most it can cost (what a reservation holds).
    pub bound: u64,
}

#[derive(Default)]
struct Tally {
    chars: u64,
    bytes: u64,
    images: u64,
    documents: u64,
}

impl Tally {
    fn text(&mut self, s: &str) {
        self.chars += s.chars().count() as u64;
        self.bytes += s.len() as u64;
    }

    fn walk(&mut self, v: &Value) {
        match v {
            Value::String(s) => self.text(s),
            Value::Array(items) => items.iter().for_each(|i| self.walk(i)),
            Value::Object(fields) => match fields.get("type").and_then(Value::as_str) {
                // Content parts whose payload is not text: counted by kind, their base64
                // or URL left out.
                Some("image" | "image_url" | "input_image") => self.images += 1,
                Some("document" | "file" | "input_file" | "input_audio") => self.documents += 1,
                _ => {
                    for (k, v) in fields {
                        // Keys are text the model reads in tool schemas and metadata.
                        self.text(k);
                        self.walk(v);
                    }
                }
            },
            _ => {}
        }
    }
}

/// Characters of text in a JSON value: every string, keys left out (for a reply's text).
pub fn text_chars(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.chars().count() as u64,
        Value::Array(items) => items.iter().map(text_chars).sum(),
        Value::Object(fields) => fields.values().map(text_chars).sum(),
        _ => 0,
    }
}

/// The input tokens of a request (either format): its system prompt, messages, tool
/// definitions and tool choice; at least 1.
pub fn input_tokens(request: &Value) -> InputTokens {
    let messages = request["messages"].as_array().map_or(0, Vec::len) as u64;
    let mut t = Tally::default();
    for field in [
        "system",
        "messages",
        "tools",
        "tool_choice",
        "functions",
        "response_format",
    ] {
        if let Some(v) = request.get(field) {
            t.walk(v);
        }
    }
    let framing = PER_MESSAGE * messages;
    InputTokens {
        estimate: (tokens(t.chars)
            + framing
            + IMAGE_ESTIMATE * t.images
            + DOCUMENT_ESTIMATE * t.documents)
            .max(1),
        bound: (t.bytes + framing + IMAGE_BOUND * t.images + DOCUMENT_BOUND * t.documents).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_counts_and_image_payloads_count_by_kind() {
        let req = json!({"system": "be brief", "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A".repeat(100_000)}}
            ]}
        ]});
        // Strings "be brief" 8, "user" 4, "text" 4, "what is this" 12; keys "role" 4,
        // "content" 7, "type" 4, "text" 4: 47 characters, all ASCII.
        let t = input_tokens(&req);
        assert_eq!(t.estimate, 47u64.div_ceil(4) + 4 + IMAGE_ESTIMATE);
        assert_eq!(t.bound, 47 + 4 + IMAGE_BOUND);
        assert_eq!(tokens(0), 0);
        assert_eq!(tokens(5), 2);
    }

    #[test]
    fn the_bound_holds_for_text_a_tokenizer_splits_finely() {
        // CJK is about a token a character, and three bytes each: the bound covers it
        // where four characters a token would not.
        let text = "日本語のテキスト".repeat(1000);
        let req = json!({"messages": [{"role": "user", "content": text}]});
        let t = input_tokens(&req);
        assert!(t.bound >= 8000, "{t:?}");
        // A tool schema's property named "data" is text the model reads, and counts.
        let tools = json!({"messages": [], "tools": [{"name": "t", "input_schema": {"type": "object",
            "properties": {"data": {"type": "string", "description": "x".repeat(4000)}}}}]});
        assert!(input_tokens(&tools).bound >= 4000);
        // A document may fill a context window.
        let doc = json!({"messages": [{"role": "user", "content": [{"type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "tiny"}}]}]});
        assert!(input_tokens(&doc).bound >= DOCUMENT_BOUND);
    }
}
