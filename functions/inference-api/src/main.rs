//! The inference-api Lambda, behind a Function URL with `InvokeMode: RESPONSE_STREAM` so
//! SSE events reach the client as the provider sends them. Configuration, the AWS
//! clients, provider keys and provider HTTP clients are all built once, in the init phase.

use std::sync::Arc;

use inference_api::accounting::CreditPolicy;
use inference_api::{Inference, RecordWrites};
use zerodb_inference::catalog::Provider;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    zerodb_http::telemetry::init();
    let config = zerodb_http::config::LambdaConfig::from_env()?;
    let credits = CreditPolicy::from_credits(std::env::var("ZERODB_CREDITS_USD").ok().as_deref())?;
    let nonempty = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let catalog = match nonempty("ZERODB_PROVIDERS_TOML") {
        Some(text) => inference_api::catalog_from_text(&text, "ZERODB_PROVIDERS_TOML")?,
        None => inference_api::catalog(
            nonempty("ZERODB_PROVIDERS")
                .map(std::path::PathBuf::from)
                .as_deref(),
        )?,
    };
    let stores = zerodb_store_aws::connect(
        &config.resources.table,
        &config.resources.bucket,
        &config.resources.events_queue_url,
    )
    .await;
    let aws = aws_config::load_from_env().await;
    let secrets = inference_api::secrets::provider_keys(
        &catalog,
        &aws_sdk_secretsmanager::Client::new(&aws),
        nonempty("ZERODB_PROVIDER_KEYS_SECRET").as_deref(),
    )
    .await;
    let key_of = |p: &Provider| inference_api::env_key(p).or_else(|| secrets.get(&p.name).cloned());
    let clock = Arc::new(zerodb_domain::clock::SystemClock);
    let state = zerodb_http::AppState::new(stores, clock, &config.auth);
    let inference = Inference::build(&state, catalog, key_of, credits, RecordWrites::Inline)?;
    lambda_http::run_with_streaming_response(inference_api::router(state, Arc::new(inference)))
        .await
}
