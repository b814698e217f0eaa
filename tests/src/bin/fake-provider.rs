//! The fake LLM provider (`zerodb_tests::fake_provider`) as a process, for the Python SDK
//! tests and benchmarks: `fake-provider [--addr 127.0.0.1:0]` prints
//! `ready http://HOST:PORT` once bound, then serves until killed.

use std::io::Write;
use std::net::SocketAddr;

use zerodb_tests::fake_provider::FakeProvider;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr: SocketAddr = match args.as_slice() {
        [] => "127.0.0.1:0".parse()?,
        [flag, addr] if flag == "--addr" => addr.parse()?,
        _ => anyhow::bail!("usage: fake-provider [--addr HOST:PORT]"),
    };
    let fake = FakeProvider::start(addr).await?;
    // The caller reads this line to learn the port; flushed, as stdout is a pipe.
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {}", fake.base_url())?;
    out.flush()?;
    drop(out);
    fake.serve_forever().await;
    Ok(())
}
