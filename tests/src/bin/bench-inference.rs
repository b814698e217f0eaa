//! Benchmark: the inference gateway's added latency and throughput. The same fake provider
//! is called directly and through zerodb-local (over TCP, credits limited so the credit
//! read is on the path, usage records written), alternating request by request so both
//! see the same machine. Whole responses: latency p50/p99 and requests per second at
//! concurrency 1 and 16; streams: time to first byte (the first SSE event) p50/p99.
//! Prints figures; asserts nothing (the tests do that).
//!
//! Run: `cargo run --profile perf -p zerodb-tests --bin bench-inference`

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zerodb_tests::fake_provider::FakeProvider;

const ROUNDS: usize = 2_000;
const WARMUP: usize = 200;
const THROUGHPUT_FOR: Duration = Duration::from_secs(4);

#[derive(Clone)]
struct Target {
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Value,
}

impl Target {
    fn request(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        let mut r = client.post(&self.url).json(&self.body);
        for (k, v) in &self.headers {
            r = r.header(*k, v);
        }
        r
    }
}

/// Latency of one whole call (body read to the end).
async fn whole(client: &reqwest::Client, t: &Target) -> Duration {
    let start = Instant::now();
    let resp = t.request(client).send().await.expect("send");
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.bytes().await.expect("body");
    start.elapsed()
}

/// Time to the first body bytes of a stream; the rest is read so the connection is reused.
async fn first_byte(client: &reqwest::Client, t: &Target) -> Duration {
    let start = Instant::now();
    let mut resp = t.request(client).send().await.expect("send");
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.chunk().await.expect("chunk").expect("a first chunk");
    let ttfb = start.elapsed();
    while resp.chunk().await.expect("chunk").is_some() {}
    ttfb
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// Runs `direct` and `gateway` alternately; returns their sorted samples.
async fn side_by_side(
    client: &reqwest::Client,
    direct: &Target,
    gateway: &Target,
    stream: bool,
) -> (Vec<Duration>, Vec<Duration>) {
    let one = |t: &Target| {
        let t = t.clone();
        let client = client.clone();
        async move {
            if stream {
                first_byte(&client, &t).await
            } else {
                whole(&client, &t).await
            }
        }
    };
    for _ in 0..WARMUP {
        one(direct).await;
        one(gateway).await;
    }
    let (mut d, mut g) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for i in 0..ROUNDS {
        // Alternate which goes first, so neither always follows the other.
        if i % 2 == 0 {
            d.push(one(direct).await);
            g.push(one(gateway).await);
        } else {
            g.push(one(gateway).await);
            d.push(one(direct).await);
        }
    }
    d.sort();
    g.sort();
    (d, g)
}

async fn throughput(client: &reqwest::Client, t: &Target, concurrency: usize) -> f64 {
    let deadline = Instant::now() + THROUGHPUT_FOR;
    let t = Arc::new(t.clone());
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, t) = (client.clone(), t.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    whole(&client, &t).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let start = Instant::now();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("task");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let fake = FakeProvider::start("127.0.0.1:0".parse()?).await?;
    let dir = tempfile::tempdir()?;
    let providers = dir.path().join("providers.toml");
    std::fs::write(
        &providers,
        format!(
            r#"
            [providers.fa]
            kind = "anthropic"
            base_url = "{}"
            api_key_env = "BENCH_FAKE_KEY"
            [providers.fo]
            kind = "openai"
            base_url = "{}"
            api_key_env = "BENCH_FAKE_KEY"
            [aliases]
            a-echo = {{ provider = "fa", model = "echo-1" }}
            o-echo = {{ provider = "fo", model = "echo-1" }}
            "#,
            fake.base_url_anthropic(),
            fake.base_url_openai()
        ),
    )?;
    // SAFETY: set before any thread reads the environment.
    unsafe { std::env::set_var("BENCH_FAKE_KEY", "bench-key") };
    let data = dir.path().join("data");
    let running = zerodb_local::start(zerodb_local::LocalConfig {
        addr: "127.0.0.1:0".parse()?,
        data_dir: data.clone(),
        rate_limit_per_minute: 0,
        settings: {
            let s = zerodb_domain::Settings::from_env()
                .with("ZERODB_EMBEDDER", "lexical")
                .with("ZERODB_PROVIDERS", providers.display().to_string())
                // The account budget would stop a benchmark within its minute.
                .with("ZERODB_ACCOUNT_RATE_LIMIT_PER_MINUTE", "0");
            // Limited, so every call reserves its cost and writes it (set
            // BENCH_UNLIMITED=1 to leave credits out).
            if std::env::var_os("BENCH_UNLIMITED").is_some() {
                s
            } else {
                s.with("ZERODB_CREDITS_USD", "1000000")
            }
        },
    })
    .await?;
    let key = std::fs::read_to_string(data.join(zerodb_local::ROOT_KEY_FILE))?
        .trim()
        .to_owned();
    let gw = format!("http://{}", running.addr);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .build()?;

    let text = "Summarize the key trends in grid-scale battery storage for this quarter.";
    let openai = |model: &str, stream: bool| {
        let mut b = json!({"model": model, "messages": [{"role": "user", "content": text}]});
        if stream {
            b["stream"] = json!(true);
            b["stream_options"] = json!({"include_usage": true});
        }
        b
    };
    let anthropic = |model: &str, stream: bool| json!({"model": model, "max_tokens": 256, "stream": stream, "messages": [{"role": "user", "content": text}]});
    let bearer = |k: &str| vec![("authorization", format!("Bearer {k}"))];
    let direct_openai = |stream| Target {
        url: format!("{}/chat/completions", fake.base_url_openai()),
        headers: bearer("bench-key"),
        body: openai("echo-1", stream),
    };
    let direct_anthropic = |stream| Target {
        url: format!("{}/v1/messages", fake.base_url_anthropic()),
        headers: vec![
            ("x-api-key", "bench-key".to_owned()),
            ("anthropic-version", "2023-06-01".to_owned()),
        ],
        body: anthropic("echo-1", stream),
    };
    let via_openai = |stream| Target {
        url: format!("{gw}/v1/chat/completions"),
        headers: bearer(&key),
        body: openai("o-echo", stream),
    };
    let via_anthropic_to_openai = |stream| Target {
        url: format!("{gw}/v1/messages"),
        headers: vec![
            ("x-api-key", key.clone()),
            ("anthropic-version", "2023-06-01".to_owned()),
        ],
        body: anthropic("o-echo", stream),
    };
    let via_anthropic = |stream| Target {
        url: format!("{gw}/v1/messages"),
        headers: vec![
            ("x-api-key", key.clone()),
            ("anthropic-version", "2023-06-01".to_owned()),
        ],
        body: anthropic("a-echo", stream),
    };

    println!(
        "inference gateway vs the fake provider called directly ({ROUNDS} calls each, alternating; ms)"
    );
    println!(
        "{:<48} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "scenario", "direct50", "gw p50", "direct99", "gw p99", "added p50", "added p99"
    );
    let scenarios: Vec<(&str, Target, Target, bool)> = vec![
        (
            "OpenAI -> OpenAI provider, whole",
            direct_openai(false),
            via_openai(false),
            false,
        ),
        (
            "Anthropic -> Anthropic provider, whole",
            direct_anthropic(false),
            via_anthropic(false),
            false,
        ),
        (
            "Anthropic -> OpenAI provider (translated), whole",
            direct_openai(false),
            via_anthropic_to_openai(false),
            false,
        ),
        (
            "OpenAI -> OpenAI provider, stream TTFB",
            direct_openai(true),
            via_openai(true),
            true,
        ),
        (
            "Anthropic -> OpenAI provider (translated), TTFB",
            direct_openai(true),
            via_anthropic_to_openai(true),
            true,
        ),
    ];
    for (name, direct, gateway, stream) in &scenarios {
        let (d, g) = side_by_side(&client, direct, gateway, *stream).await;
        let (d50, g50, d99, g99) = (pct(&d, 0.5), pct(&g, 0.5), pct(&d, 0.99), pct(&g, 0.99));
        println!(
            "{:<48} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10}",
            name,
            ms(d50),
            ms(g50),
            ms(d99),
            ms(g99),
            ms(g50.saturating_sub(d50)),
            ms(g99.saturating_sub(d99)),
        );
    }
    println!("\nthroughput, whole responses (requests/s; client, gateway and fake share 2 cores)");
    for c in [1, 16] {
        let d = throughput(&client, &direct_openai(false), c).await;
        let g = throughput(&client, &via_openai(false), c).await;
        let t = throughput(&client, &via_anthropic_to_openai(false), c).await;
        println!(
            "  c={c:<3} direct {d:>8.0}   gateway OpenAI {g:>8.0} ({:.2}x)   gateway translated {t:>8.0} ({:.2}x)",
            g / d,
            t / d
        );
    }
    running.stop().await?;
    Ok(())
}
