//! zerodb-local's entry point; everything lives in the library.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    zerodb_http::telemetry::init();
    zerodb_local::cli::run().await
}
