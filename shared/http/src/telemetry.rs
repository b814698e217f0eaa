//! Tracing setup: JSON lines in Lambda (CloudWatch parses them), compact text locally.
//! Level from `RUST_LOG`, default `info`.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr so command output on stdout (keys, documents) stays clean; Lambda
    // sends both streams to CloudWatch.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests build several apps) is harmless, so its error is ignored.
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        builder
            .json()
            .with_current_span(false)
            .without_time()
            .with_ansi(false)
            .try_init()
            .ok();
    } else {
        builder.compact().try_init().ok();
    }
}
