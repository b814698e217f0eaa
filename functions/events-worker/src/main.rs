//! The events-worker Lambda: storage clients and the embedder built once in the init phase.

use std::sync::Arc;

use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};

fn main() -> Result<(), lambda_runtime::Error> {
    // SAFETY: first thing in main, before the runtime or anything else starts a thread.
    unsafe { zerodb_embed::model_runtime() }?.block_on(run())
}

async fn run() -> Result<(), lambda_runtime::Error> {
    zerodb_http::telemetry::init();
    let config = zerodb_http::config::LambdaConfig::from_env()?;
    let embedder = zerodb_embed::from_env()?;
    let stores = zerodb_store_aws::connect(
        &config.resources.table,
        &config.resources.bucket,
        &config.resources.events_queue_url,
    )
    .await;
    let clock: Arc<dyn zerodb_domain::clock::Clock> = Arc::new(zerodb_domain::clock::SystemClock);
    let events = zerodb_domain::events::EventSink::new(stores.events.clone(), clock.clone());
    let memory = zerodb_memory::MemoryService::new(stores.table.clone(), events, embedder, clock);
    let memory = &memory;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        Ok::<_, lambda_runtime::Error>(events_worker::handle(memory, event.payload).await)
    }))
    .await
}
