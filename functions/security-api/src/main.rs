//! The security-api Lambda: configuration and storage clients (for credentials) built once
//! in the init phase.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    zerodb_http::telemetry::init();
    let config = zerodb_http::config::LambdaConfig::from_env()?;
    let stores = zerodb_store_aws::connect(
        &config.resources.table,
        &config.resources.bucket,
        &config.resources.events_queue_url,
    )
    .await;
    let clock = Arc::new(zerodb_domain::clock::SystemClock);
    let state = zerodb_http::AppState::new(stores, clock, &config.auth);
    lambda_http::run(security_api::router(state)).await
}
