//! The memory-api Lambda: configuration, storage clients and the embedder built once in
//! the init phase.

use std::sync::Arc;

fn main() -> Result<(), lambda_http::Error> {
    // SAFETY: first thing in main, before the runtime or anything else starts a thread.
    unsafe { zerodb_embed::model_runtime() }?.block_on(run())
}

async fn run() -> Result<(), lambda_http::Error> {
    zerodb_http::telemetry::init();
    let config = zerodb_http::config::LambdaConfig::from_env()?;
    let embedder = zerodb_embed::from_env()?;
    let stores = zerodb_store_aws::connect(
        &config.resources.table,
        &config.resources.bucket,
        &config.resources.events_queue_url,
    )
    .await;
    let clock = Arc::new(zerodb_domain::clock::SystemClock);
    let state = zerodb_http::AppState::new(stores, clock, &config.auth);
    let memory = memory_api::service(&state, embedder);
    lambda_http::run(memory_api::router(state, memory)).await
}
