//! The inference endpoint group over HTTP, on both storage backends (credits and usage
//! records live in the table), against the fake provider: scope, credits, usage records,
//! tenant isolation, rate limits, error bodies in each format, streams.

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use zerodb_domain::DomainError;
use zerodb_inference::accounting::{CreditPolicy, UsageRecord};
use zerodb_inference::service::catalog_from_text;
use zerodb_inference::{Inference, RecordWrites};
use zerodb_tests::fake_provider::FakeProvider;
use zerodb_tests::on_both_backends;
use zerodb_tests::support::{Backend, Reply, TestApp};

/// An app whose gateway has `a-echo` on the fake's Anthropic side and `o-echo` on its
/// OpenAI side (`pricey`: the same at 1,000,000 credits per million tokens, i.e. one
/// credit per token), with `credits`.
async fn app_with(backend: Backend, rate: u32, credits: CreditPolicy) -> (TestApp, FakeProvider) {
    let fake = FakeProvider::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut app = if rate > 0 {
        TestApp::with_rate_limit(backend, rate).await
    } else {
        TestApp::new(backend).await
    };
    let toml = format!(
        r#"
        [providers.fa]
        kind = "anthropic"
        base_url = "{}"
        api_key_env = "FAKE_PROVIDER_KEY_FOR_RUST_TESTS"
        [providers.fo]
        kind = "openai"
        base_url = "{}"
        api_key_env = "FAKE_PROVIDER_KEY_FOR_RUST_TESTS"
        max_retries = 0
        [aliases]
        a-echo = {{ provider = "fa", model = "echo-1" }}
        o-echo = {{ provider = "fo", model = "echo-1" }}
        o-429 = {{ provider = "fo", model = "rate-limited" }}
        pricey = {{ provider = "fo", model = "echo-1", price = {{ input = 1000000, output = 1000000 }} }}
        gated = {{ provider = "fo", model = "gated", price = {{ input = 1000000, output = 1000000 }} }}
        a-endless = {{ provider = "fa", model = "endless", price = {{ input = 1000000, output = 1000000 }} }}
        a-no-usage = {{ provider = "fa", model = "no-usage", price = {{ input = 1000000, output = 1000000 }} }}
        o-no-usage = {{ provider = "fo", model = "no-usage", price = {{ input = 1000000, output = 1000000 }} }}
        a-leaky = {{ provider = "fa", model = "leaky-error" }}
        o-leaky = {{ provider = "fo", model = "leaky-error" }}
        "#,
        fake.base_url_anthropic(),
        fake.base_url_openai()
    );
    let catalog = catalog_from_text(&toml, "test").unwrap();
    let inference = Inference::build(
        &app.ctx,
        catalog,
        |_| Some("fake-key".to_owned()),
        credits,
        // zerodb-local's mode: the usage reads below must wait for the writes.
        RecordWrites::Background,
    )
    .unwrap();
    app.set_inference(inference).await;
    (app, fake)
}

async fn app(backend: Backend) -> (TestApp, FakeProvider) {
    app_with(backend, 0, CreditPolicy::Unlimited).await
}

fn anthropic_body(model: &str, text: &str) -> Value {
    json!({"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": text}]})
}

fn openai_body(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// `openai_body` asking for at most `max_tokens`: a call reserves its largest cost, so a
/// test with limited credits states it.
fn openai_capped(model: &str, text: &str, max_tokens: u32) -> Value {
    let mut b = openai_body(model, text);
    b["max_tokens"] = json!(max_tokens);
    b
}

/// What `openai_capped(_, "one two three four", 5)` reserves at one credit per token: its
/// input bound, a token a byte of its text ("role", "user", "content" and the content, 33
/// bytes) plus 4 for the message, and its 5 output tokens.
const CAPPED_RESERVES: f64 = 42.0;
/// What it costs: the fake counts 4 words in and 5 out ("echo: one two three four").
const CAPPED_COSTS: f64 = 9.0;

async fn messages(app: &TestApp, key: &str, body: Value) -> Reply {
    app.post("/v1/messages", key, body).await
}

async fn chat(app: &TestApp, key: &str, body: Value) -> Reply {
    app.post("/api/v1/chat/completions", &format!("Bearer {key}"), body)
        .await
}

async fn usage(app: &TestApp, key: &str) -> Value {
    let r = app.get("/api/v1/usage", key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn both_formats_reach_both_provider_kinds_and_each_call_is_recorded(backend: Backend) {
    let (app, _fake) = app(backend).await;
    let (key_id, key) = app.create_key(&["inference:call"], None).await;
    for alias in ["a-echo", "ainative/o-echo"] {
        let r = messages(&app, &key, anthropic_body(alias, "three little words")).await;
        assert_eq!(r.status, StatusCode::OK, "{alias}: {}", r.body);
        assert_eq!(r.body["content"][0]["text"], "echo: three little words");
        assert_eq!(r.body["model"], alias);
        assert!(r.body["id"].as_str().unwrap().starts_with("msg"));
        let r = chat(&app, &key, openai_body(alias, "three little words")).await;
        assert_eq!(r.status, StatusCode::OK, "{alias}: {}", r.body);
        assert_eq!(
            r.body["choices"][0]["message"]["content"],
            "echo: three little words"
        );
        // The fake counts words: 3 in, 4 out.
        assert_eq!(r.body["usage"]["prompt_tokens"], 3, "{}", r.body);
        assert_eq!(r.body["usage"]["completion_tokens"], 4);
    }
    let u = usage(&app, &key).await;
    let records = u["records"].as_array().unwrap();
    assert_eq!(records.len(), 4, "{u}");
    // Newest first: the last call was chat on o-echo.
    assert_eq!(records[0]["endpoint"], "openai");
    assert_eq!(records[0]["alias"], "o-echo");
    assert_eq!(records[0]["provider_model"], "echo-1");
    assert_eq!(records[0]["input_tokens"], 3);
    assert_eq!(records[0]["output_tokens"], 4);
    assert_eq!(records[0]["status"], 200);
    assert_eq!(records[0]["key_id"], key_id.as_str());
    assert_eq!(records[3]["endpoint"], "anthropic");
    assert_eq!(records[3]["alias"], "a-echo");
    assert_eq!(u["credits"]["limited"], false);
    // The list is paged.
    let r = app.get("/api/v1/usage?limit=3", &key).await;
    assert_eq!(r.body["records"].as_array().unwrap().len(), 3);
    let cursor = r.body["next_cursor"].as_str().unwrap().to_owned();
    let r = app
        .get(&format!("/api/v1/usage?limit=3&cursor={cursor}"), &key)
        .await;
    assert_eq!(r.body["records"].as_array().unwrap().len(), 1, "{}", r.body);
    assert_eq!(r.body["records"][0]["alias"], "a-echo");
}

async fn a_key_without_inference_call_is_refused_before_any_provider_call(backend: Backend) {
    let (app, fake) = app(backend).await;
    let (_, key) = app.create_key(&["memory:read", "memory:write"], None).await;
    let r = messages(&app, &key, anthropic_body("a-echo", "hi")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.code(), "PERM_001");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("inference:call")
    );
    // Anthropic's error object, for its SDK.
    assert_eq!(r.body["type"], "error");
    assert_eq!(r.body["error"]["type"], "permission_error");
    let r = chat(&app, &key, openai_body("o-echo", "hi")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"]["type"], "permission_error");
    assert_eq!(r.body["error"]["code"], "perm_001");
    let r = app.get("/api/v1/usage", &key).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(fake.stats().requests("echo-1"), 0);
    // No credential at all: 401 in both formats.
    let r = app
        .call(
            Method::POST,
            "/v1/messages",
            None,
            Some(anthropic_body("a-echo", "hi")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"]["type"], "authentication_error");
}

async fn another_tenant_cannot_read_usage_or_spend_credits(backend: Backend) {
    let (app, _fake) = app_with(backend, 0, CreditPolicy::Grant(50_000_000)).await;
    let other = app.new_account("other").await;
    let r = chat(
        &app,
        &app.root_key,
        openai_capped("pricey", "one two three four", 5),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mine = usage(&app, &app.root_key).await;
    assert_eq!(mine["records"].as_array().unwrap().len(), 1);
    // 4 words in, 5 out, at one credit per token.
    assert_eq!(mine["records"][0]["cost_usd"], 9.0);
    assert_eq!(mine["credits"]["spent_usd"], 9.0);
    assert_eq!(mine["credits"]["remaining_usd"], 41.0);
    let theirs = usage(&app, &other).await;
    assert_eq!(theirs["records"], json!([]), "{theirs}");
    assert_eq!(theirs["credits"]["spent_usd"], 0.0);
    assert_eq!(theirs["credits"]["remaining_usd"], 50.0);
    // A cursor from one account's listing reads nothing of it from the other.
    let r = app.get("/api/v1/usage?limit=1", &app.root_key).await;
    assert_eq!(r.body["records"].as_array().unwrap().len(), 1);
}

async fn spent_credits_give_402_before_the_provider_is_called(backend: Backend) {
    // 56 credits: each call reserves 42 and costs 9. Two calls leave 38, less than the
    // next call's 42: it is refused before the provider is called, and the balance never
    // goes below zero. With max_tokens 1 it reserves 38, which fits.
    let (app, fake) = app_with(backend, 0, CreditPolicy::Grant(56_000_000)).await;
    let body = openai_capped("pricey", "one two three four", 5);
    for _ in 0..2 {
        let r = chat(&app, &app.root_key, body.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    assert_eq!(fake.stats().requests("echo-1"), 2);
    let r = chat(&app, &app.root_key, body.clone()).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "INSUFFICIENT_CREDITS");
    assert_eq!(r.body["error"]["type"], "insufficient_quota");
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("max_tokens"),
        "says what to lower: {detail}"
    );
    // A smaller max_tokens fits what is left.
    let r = chat(
        &app,
        &app.root_key,
        openai_capped("pricey", "one two three four", 1),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = messages(&app, &app.root_key, anthropic_body("a-echo", "hi")).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "a cheap alias still fits: {}",
        r.body
    );
    assert_eq!(fake.stats().requests("echo-1"), 4);
    let u = usage(&app, &app.root_key).await;
    let remaining = u["credits"]["remaining_usd"].as_f64().unwrap();
    assert!(remaining >= 0.0, "{u}");
    assert_eq!(u["credits"]["reserved_usd"], 0.0, "{u}");
    // Spend the rest, then anything is refused, in both formats.
    app.inference
        .accounting
        .record(
            &app.account_id,
            UsageRecord {
                cost_micro: (remaining * 1e6) as u64,
                ..record("use_rest", 0)
            },
        )
        .await
        .unwrap();
    let r = messages(&app, &app.root_key, anthropic_body("a-echo", "hi")).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(r.body["error"]["type"], "billing_error");
    assert_eq!(
        fake.stats().requests("echo-1"),
        4,
        "no provider call once spent"
    );
    // A top-up lets calls through again.
    app.inference
        .accounting
        .add_credits(&app.account_id, 20_000_000)
        .await
        .unwrap();
    let r = messages(&app, &app.root_key, anthropic_body("a-echo", "hi")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// A record as a test writes it directly: `cost_micro` charged.
fn record(id: &str, cost_micro: u64) -> UsageRecord {
    UsageRecord {
        id: id.into(),
        key_id: "key_1".into(),
        endpoint: "openai".into(),
        alias: "pricey".into(),
        provider_model: "echo-1".into(),
        stream: false,
        input_tokens: 4,
        output_tokens: 6,
        cost_micro,
        latency_ms: 1,
        status: 200,
        error_code: None,
        created_at: String::new(),
    }
}

/// Credits are reserved before the provider is called: of six calls sent at once with
/// credits for two reservations, two reach the provider (held there until the other four
/// have been answered) and four are refused; the account never spends more than it was
/// granted. Without reservations all six would wait at the provider and the test would
/// time out.
async fn concurrent_calls_cannot_spend_more_than_the_credits(backend: Backend) {
    use futures::StreamExt;
    const GRANTED: f64 = 100.0;
    // Two reservations fit in GRANTED, three do not.
    const _: () = assert!(CAPPED_RESERVES * 2.0 <= GRANTED && CAPPED_RESERVES * 3.0 > GRANTED);
    let (app, fake) = app_with(backend, 0, CreditPolicy::Grant(100_000_000)).await;
    let body = openai_capped("gated", "one two three four", 5);
    let mut calls: futures::stream::FuturesUnordered<_> = (0..6)
        .map(|_| chat(&app, &app.root_key, body.clone()))
        .collect();
    let deadline = tokio::time::sleep(std::time::Duration::from_secs(60));
    tokio::pin!(deadline);
    let mut replies = Vec::new();
    let mut arrived = fake.stats().gated();
    let mut opened = false;
    // The calls are driven all along (the two that reserved must still reach the
    // provider); the gate opens once four have been answered and two wait there.
    loop {
        tokio::select! {
            r = calls.next() => match r {
                Some(r) => replies.push(r),
                None => break,
            },
            _ = arrived.wait_for(|n| *n >= 2), if !opened && replies.len() >= 4 => {
                fake.stats().open_gate();
                opened = true;
            }
            _ = &mut deadline => panic!(
                "four calls refused while two wait at the provider: after 60 s, {} at the gate and these answers: {:?}",
                *fake.stats().gated().borrow(),
                replies.iter().map(|r: &zerodb_tests::support::Reply| (r.status.as_u16(), r.body.to_string())).collect::<Vec<_>>()
            ),
        }
    }
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(
        statuses,
        [402, 402, 402, 402, 200, 200],
        "{:?}",
        replies.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    assert_eq!(fake.stats().requests("gated"), 2);
    let u = usage(&app, &app.root_key).await;
    assert_eq!(u["credits"]["spent_usd"], 2.0 * CAPPED_COSTS, "{u}");
    assert_eq!(u["credits"]["reserved_usd"], 0.0, "every hold settled: {u}");
    assert_eq!(
        u["credits"]["remaining_usd"],
        GRANTED - 2.0 * CAPPED_COSTS,
        "{u}"
    );
}

/// A hold whose process died (never settled) stops holding once it expires: the next
/// reservation it stands in the way of gives it back. If its call settles after all, the
/// cost alone is charged; the hold is never given back twice.
async fn an_expired_hold_is_given_back_once(backend: Backend) {
    let (app, _fake) = app_with(backend, 0, CreditPolicy::Grant(10_000_000)).await;
    let acc = &app.inference.accounting;
    let (a, now) = (&app.account_id, acc.clock().now().timestamp());
    let dead = acc
        .reserve(a, "call_dead", 8_000_000, now + 60)
        .await
        .unwrap()
        .unwrap();
    let refused = acc.reserve(a, "call_2", 8_000_000, now + 60).await;
    assert!(
        matches!(refused, Err(DomainError::InsufficientCredits(_))),
        "{refused:?}"
    );
    app.clock.advance_secs(61);
    let live = acc
        .reserve(a, "call_3", 8_000_000, now + 600)
        .await
        .expect("the dead call's hold expired and went back")
        .unwrap();
    // The dead call settles late: 1 credit charged, its expired hold not given back again.
    acc.settle(
        a,
        UsageRecord {
            cost_micro: 1_000_000,
            ..record("use_dead", 0)
        },
        Some(&dead),
    )
    .await
    .unwrap();
    acc.settle(
        a,
        UsageRecord {
            cost_micro: 2_000_000,
            ..record("use_3", 0)
        },
        Some(&live),
    )
    .await
    .unwrap();
    let b = acc.balance(a).await.unwrap();
    assert_eq!((b.spent_micro, b.reserved_micro), (3_000_000, 0));
    assert_eq!(b.available_micro(), Some(7_000_000));
    // What the next reservation may take agrees with the balance: 7 credits, not 8 or 15.
    assert!(
        acc.reserve(a, "call_4", 7_000_001, now + 600)
            .await
            .is_err()
    );
    assert!(
        acc.reserve(a, "call_5", 7_000_000, now + 600)
            .await
            .unwrap()
            .is_some()
    );
}

/// A client that leaves a whole (not streamed) call while the provider works does not
/// cancel its recording: the call ends, is billed with the provider's counts, and its
/// reservation is settled rather than left to lapse.
async fn a_client_that_leaves_a_whole_call_is_still_billed(backend: Backend) {
    let (app, fake) = app_with(backend, 0, CreditPolicy::Grant(100_000_000)).await;
    let call = chat(
        &app,
        &app.root_key,
        openai_capped("gated", "one two three four", 5),
    );
    let mut arrived = fake.stats().gated();
    tokio::select! {
        r = call => panic!("answered before the provider was let answer: {:?}", r.body),
        // The client goes away (its request is dropped) once the provider has the call.
        r = arrived.wait_for(|n| *n >= 1) => { r.unwrap(); }
    }
    fake.stats().open_gate();
    // The call finishes on its own; its record lands shortly after.
    let mut u = Value::Null;
    for _ in 0..500 {
        u = usage(&app, &app.root_key).await;
        if !u["records"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let records = u["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "the call was not recorded: {u}");
    assert_eq!(records[0]["input_tokens"], 4, "{u}");
    assert_eq!(records[0]["output_tokens"], 5, "{u}");
    assert_eq!(u["credits"]["spent_usd"], CAPPED_COSTS, "{u}");
    assert_eq!(u["credits"]["reserved_usd"], 0.0, "the hold settled: {u}");
}

/// A client that leaves a stream is billed for what the provider sent until it left
/// (estimated from the text read, the provider having sent no final counts), never for
/// nothing; the rest of its reservation goes back.
async fn a_stream_left_early_is_billed_for_what_was_produced(backend: Backend) {
    use futures::StreamExt;
    use tower::ServiceExt;
    let (app, fake) = app_with(backend, 0, CreditPolicy::Grant(2_000_000_000)).await;
    let mut body = anthropic_body("a-endless", "keep talking");
    body["max_tokens"] = json!(1000);
    body["stream"] = json!(true);
    let req = http::Request::post("/v1/messages")
        .header("x-api-key", &app.root_key)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut frames = resp.into_body().into_data_stream();
    let mut seen = String::new();
    while seen.matches("tick").count() < 10 {
        let chunk = frames.next().await.expect("more frames").unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let ticks = seen.matches("tick").count() as u64;
    drop(frames);
    let u = usage(&app, &app.root_key).await;
    let r = &u["records"][0];
    assert_eq!(r["stream"], true, "{u}");
    // "tick " is five characters: at least as many tokens as the client saw, estimated
    // at four characters a token, and no more than max_tokens.
    let out = r["output_tokens"].as_u64().unwrap();
    assert!(
        out >= (ticks * 5).div_ceil(4) && out <= 1000,
        "{ticks} ticks -> {r}"
    );
    assert!(r["input_tokens"].as_u64().unwrap() >= 2, "{r}");
    let cost = r["cost_usd"].as_f64().unwrap();
    assert!(cost > 0.0, "{r}");
    assert_eq!(u["credits"]["spent_usd"], cost, "{u}");
    assert_eq!(u["credits"]["reserved_usd"], 0.0, "the hold settled: {u}");
    // The provider's stream was dropped with the client's.
    let mut cancelled = false;
    for _ in 0..200 {
        if fake.stats().cancelled() == 1 {
            cancelled = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(cancelled, "the provider's stream was not dropped");
}

/// A provider that sends no counts does not make a call free: it is billed by an
/// estimate from the request's text and the reply's, whole or streamed.
async fn a_reply_without_counts_is_billed_by_its_text(backend: Backend) {
    let (app, _fake) = app(backend).await;
    let k = &app.root_key;
    let text = "please repeat these seven words back";
    let r = chat(&app, k, openai_body("o-no-usage", text)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = messages(&app, k, anthropic_body("a-no-usage", text)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut b = openai_body("o-no-usage", text);
    b["stream"] = json!(true);
    b["stream_options"] = json!({"include_usage": true});
    let r = chat(&app, k, b).await;
    assert_eq!(r.status, StatusCode::OK);
    let u = usage(&app, k).await;
    let records = u["records"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{u}");
    // The reply, "echo: please repeat these seven words back", is 42 characters: 11 tokens.
    for r in records {
        assert_eq!(r["output_tokens"], 11, "{r}");
        assert!(r["input_tokens"].as_u64().unwrap() >= 9, "{r}");
        assert!(r["cost_usd"].as_f64().unwrap() > 0.0, "{r}");
    }
}

/// A provider's failure reaches a deployment's client as a code and a plain message:
/// never the provider's URL, its body, a secret id or a variable name (those are
/// logged). zerodb-local's own operator is told which variable to set.
async fn provider_failures_name_nothing_of_the_deployment(backend: Backend) {
    let (app, _fake) = app(backend).await;
    let k = &app.root_key;
    let mut streamed = anthropic_body("a-leaky", "hi");
    streamed["stream"] = json!(true);
    for r in [
        chat(&app, k, openai_body("o-leaky", "hi")).await,
        messages(&app, k, anthropic_body("a-leaky", "hi")).await,
        messages(&app, k, streamed).await,
    ] {
        assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
        assert_eq!(r.code(), "PROVIDER_ERROR");
        let text = String::from_utf8_lossy(&r.raw).into_owned();
        for leak in zerodb_tests::fake_provider::LEAKY_MARKERS {
            assert!(!text.contains(leak), "{leak} reached the client: {text}");
        }
        assert!(text.contains("try again later"), "{text}");
    }
    // A provider without a key: the deployment's client is not told the variable's name.
    let toml = "[providers.nokey]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key_env = \"ZERODB_TEST_UNSET_KEY_VAR\"\n[aliases]\nk = { provider = \"nokey\", model = \"m\" }\n";
    for (local, named) in [(false, false), (true, true)] {
        let mut app = TestApp::new(backend).await;
        let inference = Inference::build(
            &app.ctx,
            catalog_from_text(toml, "test").unwrap(),
            |_| None,
            CreditPolicy::Unlimited,
            RecordWrites::Inline,
        )
        .unwrap()
        .naming_settings(local);
        app.set_inference(inference).await;
        let r = chat(&app, &app.root_key.clone(), openai_body("k", "hi")).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
        let detail = r.body["detail"].as_str().unwrap();
        assert_eq!(
            detail.contains("ZERODB_TEST_UNSET_KEY_VAR"),
            named,
            "{detail}"
        );
    }
}

async fn a_credit_check_waits_for_the_accounts_record_writes_and_no_one_elses(backend: Backend) {
    // zerodb-local writes a call's record after answering; the next call's reservation
    // must still count it. Hold a write in flight, start the reservation, land the write
    // (all 10 credits), release it: the reservation must see the balance spent.
    let (app, _fake) = app_with(backend, 0, CreditPolicy::Grant(10_000_000)).await;
    let accounting = app.inference.accounting.clone();
    let far = accounting.clock().now().timestamp() + 3600;
    let in_flight = accounting.writing(&app.account_id).await;
    // Another account's reservation is not held up by this one's write.
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        accounting.reserve("acct_someone_else", "call_other", 1, far),
    )
    .await
    .expect("another account's check waited on this account's write")
    .expect("another account has credits");
    let check = tokio::spawn({
        let accounting = accounting.clone();
        let account = app.account_id.clone();
        async move { accounting.reserve(&account, "call_next", 1, far).await }
    });
    accounting
        .record(&app.account_id, record("use_inflight", 10_000_000))
        .await
        .unwrap();
    drop(in_flight);
    let checked = check.await.unwrap();
    assert!(
        matches!(checked, Err(DomainError::InsufficientCredits(_))),
        "the check read the balance before the write in flight landed: {checked:?}"
    );
}

async fn the_per_key_rate_limit_applies_with_retry_after(backend: Backend) {
    let (app, _fake) = app_with(backend, 2, CreditPolicy::Unlimited).await;
    for _ in 0..2 {
        let r = messages(&app, &app.root_key, anthropic_body("a-echo", "hi")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = messages(&app, &app.root_key, anthropic_body("a-echo", "hi")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.code(), "RATE_LIMIT_EXCEEDED");
    assert_eq!(r.body["error"]["type"], "rate_limit_error");
    let secs: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
}

async fn provider_errors_map_to_statuses_and_are_recorded(backend: Backend) {
    let (app, _fake) = app(backend).await;
    let r = chat(&app, &app.root_key, openai_body("o-429", "hi")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.code(), "API_429");
    assert_eq!(r.headers["retry-after"], "30");
    assert_eq!(r.body["error"]["type"], "rate_limit_error");
    // Bad bodies say what is wrong, in 4xx.
    let r = messages(
        &app,
        &app.root_key,
        json!({"model": "a-echo", "messages": []}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("max_tokens"));
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
    let r = messages(&app, &app.root_key, anthropic_body("gpt-9", "hi")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["detail"].as_str().unwrap().contains("a-echo"));
    let r = app
        .send(
            http::Request::post("/v1/messages")
                .header("x-api-key", &app.root_key)
                .body(axum::body::Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("not JSON"));
    // The provider failure is a call, recorded; the refused requests are not.
    let u = usage(&app, &app.root_key).await;
    let records = u["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{u}");
    assert_eq!(records[0]["status"], 429);
    assert_eq!(records[0]["error_code"], "API_429");
    assert_eq!(records[0]["provider_model"], "rate-limited");
}

async fn streams_are_sse_in_the_clients_format_and_recorded_when_they_end(backend: Backend) {
    let (app, _fake) = app(backend).await;
    let mut body = anthropic_body("o-echo", "stream me please");
    body["stream"] = json!(true);
    let r = messages(&app, &app.root_key, body).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = String::from_utf8(r.raw.clone()).unwrap();
    assert!(text.starts_with("event: message_start\n"), "{text}");
    assert!(text.contains("event: message_stop"), "{text}");
    let mut body = openai_body("a-echo", "stream me please");
    body["stream"] = json!(true);
    let r = chat(&app, &app.root_key, body).await;
    let text = String::from_utf8(r.raw.clone()).unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    for line in text.lines().filter(|l| l.starts_with("data: {")) {
        let chunk: Value = serde_json::from_str(&line[6..]).unwrap();
        assert!(
            chunk["id"].as_str().is_some_and(|id| !id.is_empty()),
            "{line}"
        );
    }
    let u = usage(&app, &app.root_key).await;
    let records = u["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{u}");
    for r in records {
        assert_eq!(r["stream"], true);
        assert_eq!(r["input_tokens"], 3, "{r}");
        assert_eq!(r["output_tokens"], 4, "{r}");
    }
}

async fn models_lists_the_aliases_in_both_formats(backend: Backend) {
    let (app, _fake) = app(backend).await;
    for path in ["/v1/models", "/api/v1/models"] {
        let r = app.get(path, &app.root_key).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["object"], "list");
        let ids: Vec<&str> = r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        for want in ["claude-sonnet", "llama-3.3-70b", "a-echo", "o-echo"] {
            assert!(ids.contains(&want), "{want} in {ids:?}");
        }
        assert_eq!(r.body["data"][0]["type"], "model");
    }
}

on_both_backends!(
    both_formats_reach_both_provider_kinds_and_each_call_is_recorded,
    a_key_without_inference_call_is_refused_before_any_provider_call,
    another_tenant_cannot_read_usage_or_spend_credits,
    spent_credits_give_402_before_the_provider_is_called,
    concurrent_calls_cannot_spend_more_than_the_credits,
    a_stream_left_early_is_billed_for_what_was_produced,
    a_client_that_leaves_a_whole_call_is_still_billed,
    an_expired_hold_is_given_back_once,
    a_reply_without_counts_is_billed_by_its_text,
    provider_failures_name_nothing_of_the_deployment,
    a_credit_check_waits_for_the_accounts_record_writes_and_no_one_elses,
    the_per_key_rate_limit_applies_with_retry_after,
    provider_errors_map_to_statuses_and_are_recorded,
    streams_are_sse_in_the_clients_format_and_recorded_when_they_end,
    models_lists_the_aliases_in_both_formats,
    embeddings_come_from_the_memory_embedder_as_floats_or_base64,
);

#[test]
fn credit_grants_parse_or_say_what_to_write() {
    assert_eq!(
        CreditPolicy::from_credits(None),
        Ok(CreditPolicy::Unlimited)
    );
    assert_eq!(
        CreditPolicy::from_credits(Some("0.25")),
        Ok(CreditPolicy::Grant(250_000))
    );
    let err = CreditPolicy::from_credits(Some("lots")).unwrap_err();
    assert!(err.contains("ZERODB_CREDITS_USD"), "{err}");
    assert!(CreditPolicy::from_credits(Some("-1")).is_err());
}

/// Provider keys in Secrets Manager (moto): a provider's own secret (the key itself, or
/// `{"api_key": …}`), and the bundle for the built-in providers, by provider name.
#[tokio::test]
async fn provider_keys_are_read_from_secrets_manager() {
    let endpoint = zerodb_tests::support::moto_endpoint();
    // moto's dummy credentials, set once for this process.
    zerodb_tests::support::aws_clients().await;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .load()
        .await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let own = zerodb_tests::support::unique_name("own-key");
    let bundle = zerodb_tests::support::unique_name("bundle");
    for (name, value) in [
        (&own, r#"{"api_key": "sk-own"}"#),
        (&bundle, r#"{"anthropic": "sk-ant", "nim": "sk-nim"}"#),
    ] {
        client
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .unwrap();
    }
    let catalog = catalog_from_text(
        &format!(
            r#"
            [providers.mine]
            kind = "openai"
            base_url = "http://127.0.0.1:9/v1"
            api_key_secret = "{own}"
            [providers.missing]
            kind = "openai"
            base_url = "http://127.0.0.1:9/v1"
            api_key_secret = "no-such-secret"
            "#
        ),
        "test",
    )
    .unwrap();
    let keys = zerodb_inference::keys::provider_keys(
        &catalog,
        &zerodb_domain::Settings::default(),
        &zerodb_store_aws::AwsSecrets::new(&config),
        Some(&bundle),
    )
    .await;
    assert_eq!(keys.get("mine").map(String::as_str), Some("sk-own"));
    assert_eq!(keys.get("anthropic").map(String::as_str), Some("sk-ant"));
    assert_eq!(keys.get("nim").map(String::as_str), Some("sk-nim"));
    // Unreadable secrets and providers the bundle leaves out get no key (their calls
    // then fail with 503 naming what to set), and nothing else fails.
    assert!(!keys.contains_key("missing"));
    assert!(!keys.contains_key("cerebras"));
}

async fn embeddings_come_from_the_memory_embedder_as_floats_or_base64(backend: Backend) {
    let (app, _fake) = app(backend).await;
    let model = app.memory.embedder().name().to_owned();
    let texts = json!(["the deploy window is Tuesday", "dark mode everywhere"]);
    let r = app
        .post(
            "/api/v1/embeddings",
            &app.root_key,
            json!({"model": model, "input": texts}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["object"], "list");
    assert_eq!(r.body["model"], model.as_str());
    assert_eq!(r.body["usage"]["prompt_tokens"], 8);
    let floats: Vec<Vec<f32>> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| serde_json::from_value(d["embedding"].clone()).unwrap())
        .collect();
    assert_eq!(floats.len(), 2);
    // The same vectors memory recall compares against.
    let direct = app
        .memory
        .embedder()
        .embed(&["the deploy window is Tuesday".to_owned()])
        .await
        .unwrap();
    assert_eq!(floats[0], direct[0]);
    // base64: little-endian f32, as OpenAI's SDK decodes it.
    let r = app
        .post(
            "/api/v1/embeddings",
            &app.root_key,
            json!({"model": format!("ainative/{model}"), "input": "the deploy window is Tuesday", "encoding_format": "base64"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(r.body["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(decoded, floats[0]);
    // Mistakes say what to send, with OpenAI's error object.
    let r = app
        .post(
            "/api/v1/embeddings",
            &app.root_key,
            json!({"model": "text-embedding-3-small", "input": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&model),
        "{}",
        r.body
    );
    let r = app
        .post(
            "/api/v1/embeddings",
            &app.root_key,
            json!({"model": model, "input": [[1, 2, 3]]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("send the text")
    );
    let r = app
        .post(
            "/api/v1/embeddings",
            &app.root_key,
            json!({"model": model, "input": []}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, key) = app.create_key(&["memory:read"], None).await;
    let r = app
        .post(
            "/api/v1/embeddings",
            &key,
            json!({"model": model, "input": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "PERM_001");
}

/// Storage calls per inference call, as the Lambda makes them (rate counts in the table,
/// credits limited, usage written inline): each is one DynamoDB request on AWS.
#[tokio::test]
async fn an_inference_call_costs_four_table_calls_with_limited_credits() {
    use tower::ServiceExt;
    let fake = FakeProvider::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (stores, _guard) = zerodb_tests::support::fresh_stores(Backend::Embedded).await;
    let account = zerodb_local::create_account(stores.table.clone(), "count")
        .await
        .unwrap();
    let counting = zerodb_tests::support::CountingTable::new(stores.table.clone());
    let stores = zerodb_domain::store::Stores {
        table: counting.clone(),
        ..stores
    };
    let ctx = zerodb_tests::support::context_of(
        stores,
        Arc::new(zerodb_domain::clock::SystemClock),
        zerodb_domain::auth::AuthSettings {
            jwt_secret: vec![7; 32],
            rate_limit_per_minute: 100,
            rate_counting: zerodb_domain::rate::RateCounting::Shared,
            // The per-key counter only, so the count below is the one it states.
            limits: zerodb_domain::auth::AuthLimits {
                account_rate_limit_per_minute: 0,
                ..Default::default()
            },
        },
    );
    let catalog = catalog_from_text(
        &format!(
            "[providers.fo]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key_env = \"UNUSED\"\n[aliases]\no-echo = {{ provider = \"fo\", model = \"echo-1\" }}\n",
            fake.base_url_openai()
        ),
        "test",
    )
    .unwrap();
    let inference = Inference::build(
        &ctx,
        catalog,
        |_| Some("fake-key".to_owned()),
        CreditPolicy::Grant(5_000_000),
        // The Lambda's mode, so the count includes the record's write.
        RecordWrites::Inline,
    )
    .unwrap();
    ctx.provide(Arc::new(inference));
    let app = zerodb_http::serve(&[inference_api::group()], &ctx)
        .await
        .unwrap();
    let call = || {
        let req = http::Request::post("/v1/chat/completions")
            .header("x-api-key", account.root_key.expose())
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                openai_body("o-echo", "count my calls").to_string(),
            ))
            .unwrap();
        app.clone().oneshot(req)
    };
    counting.take();
    // An account's first reservation also sets its balance from the grant: a read and a
    // guarded write, once.
    assert_eq!(call().await.unwrap().status(), StatusCode::OK);
    assert_eq!(counting.take(), 7);
    assert_eq!(call().await.unwrap().status(), StatusCode::OK);
    // Key read + rate counter (auth); the reservation, one conditional write; the usage
    // record with its cost and the hold's release, in one transaction.
    assert_eq!(counting.take(), 4);
}
