//! The fake provider itself, lightly: its default reply whole and streamed on both routes,
//! its auth check and its request counts, so that a failing gateway test is not the fake's
//! doing. The binary's `ready` line is checked once, as the Python tests depend on it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use zerodb_tests::fake_provider::FakeProvider;

async fn post(url: String, headers: &[(&str, &str)], body: Value) -> (u16, String) {
    let mut req = reqwest::Client::new().post(url).json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("send");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

const ANTHROPIC: &[(&str, &str)] = &[("x-api-key", "k"), ("anthropic-version", "2023-06-01")];
const OPENAI: &[(&str, &str)] = &[("authorization", "Bearer k")];

#[tokio::test]
async fn echoes_whole_and_streamed_on_both_routes_and_counts_requests() {
    let fake = FakeProvider::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let a = format!("{}/v1/messages", fake.base_url_anthropic());
    let o = format!("{}/chat/completions", fake.base_url_openai());
    let msgs = json!([{"role": "user", "content": "hello there"}]);

    let (status, body) = post(
        a.clone(),
        ANTHROPIC,
        json!({"model": "echo-1", "max_tokens": 9, "system": "be brief", "messages": msgs}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["content"][0]["text"], "echo: hello there");
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 4, "output_tokens": 3})
    );

    let (status, body) = post(
        a.clone(),
        ANTHROPIC,
        json!({"model": "echo-1", "max_tokens": 9, "stream": true, "messages": msgs}),
    )
    .await;
    assert_eq!(status, 200);
    let deltas: String = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter_map(|e| e["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(deltas, "echo: hello there");
    assert!(body.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));

    let (status, body) = post(
        o.clone(),
        OPENAI,
        json!({"model": "echo-1", "messages": msgs}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "echo: hello there"
    );
    assert_eq!(body["usage"]["total_tokens"], 5);

    let (status, body) = post(
        o.clone(),
        OPENAI,
        json!({"model": "echo-1", "stream": true, "stream_options": {"include_usage": true},
               "messages": msgs}),
    )
    .await;
    assert_eq!(status, 200);
    let chunks: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "echo: hello there");
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 3);
    assert!(body.ends_with("data: [DONE]\n\n"));

    let (status, body) = post(o, &[], json!({"model": "echo-1", "messages": msgs})).await;
    assert_eq!(status, 401);
    assert!(body.contains("invalid_api_key"), "{body}");

    // The 401 was refused before the model was read: four requests counted.
    assert_eq!(fake.stats().requests("echo-1"), 4);
    fake.stats().reset();
    assert_eq!(fake.stats().requests("echo-1"), 0);
}

#[test]
fn the_binary_prints_one_ready_line_with_its_url() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-provider"))
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start fake-provider");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.starts_with("ready http://127.0.0.1:"), "{line}");
}
