//! The one Lambda harness: every function's `main` is a call to one of these.
//!
//! In the init phase, once: configuration from the environment (every problem named at
//! once), one AWS SDK configuration, the stores on DynamoDB/S3/SQS and the secret store,
//! the [`Context`]; then the function's groups (or worker) built on it. Then the runtime
//! loop: [`run_http`] for API Gateway HTTP API events, [`run_streaming`] for a Function
//! URL in `RESPONSE_STREAM` mode, [`run_sqs`] for an SQS trigger with partial batch
//! failures. The `_on` forms take a runtime the caller built (the model's, for functions
//! that embed).

pub mod config;

use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use tokio::runtime::Runtime;
use zerodb_domain::Context;
use zerodb_domain::context::{Deployment, Parts, Secrets, Settings};
use zerodb_domain::store::Message;
use zerodb_domain::work::{BatchHandler, Worker};
use zerodb_http::Group;

pub use lambda_http::Error;

use crate::config::{ConfigError, JwtSource, LambdaConfig};

/// The context of a Lambda function, built once in its init phase. A function that
/// serves HTTP (`verifies_tokens`) reads its token key here, from Secrets Manager when
/// configured so; a worker gets a random one.
pub async fn context(verifies_tokens: bool) -> Result<Context, Error> {
    let settings = Settings::from_env();
    let mut config = LambdaConfig::from_settings(&settings, verifies_tokens)?;
    let sdk = zerodb_store_aws::sdk_config().await;
    let secrets = Arc::new(zerodb_store_aws::AwsSecrets::new(&sdk));
    config.auth.jwt_secret = match config.jwt {
        JwtSource::Value(v) => v,
        JwtSource::Unused => zerodb_domain::ids::random_base62(64).into_bytes(),
        JwtSource::SecretsManager(id) => {
            let value = secrets.get(&id).await.ok_or_else(|| {
                ConfigError(vec![format!(
                    "the token key ZERODB_JWT_SECRET_ID={id} could not be read from Secrets Manager (the log says why)"
                )])
            })?;
            if let Some(problem) = zerodb_domain::auth::jwt_secret_problem(value.as_bytes()) {
                return Err(ConfigError(vec![format!("the secret {id}: {problem}")]).into());
            }
            value.into_bytes()
        }
    };
    let r = &config.resources;
    Ok(Context::new(Parts {
        stores: zerodb_store_aws::stores(
            &sdk,
            &r.table,
            &r.bucket,
            &r.vector_bucket,
            &r.queue_urls,
        ),
        clock: Arc::new(zerodb_domain::clock::SystemClock),
        auth: config.auth,
        settings,
        deployment: Deployment::Lambda,
        secrets,
    }))
}

fn runtime() -> Result<Runtime, Error> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn router(groups: &[Group]) -> Result<axum::Router, Error> {
    zerodb_http::telemetry::init();
    let ctx = context(true).await?;
    Ok(zerodb_http::serve(groups, &ctx)
        .await?
        .layer(axum::middleware::map_request(client_addr)))
}

/// API Gateway's `sourceIp` as the request's [`zerodb_http::ClientAddr`], for limits
/// per source address.
async fn client_addr(mut req: axum::extract::Request) -> axum::extract::Request {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    let ip = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => {
            c.http.source_ip.as_deref().and_then(|s| s.parse().ok())
        }
        _ => None,
    };
    if let Some(ip) = ip {
        req.extensions_mut().insert(zerodb_http::ClientAddr(ip));
    }
    req
}

/// Serves `groups` to API Gateway HTTP API (payload v2) events.
pub fn run_http(groups: Vec<Group>) -> Result<(), Error> {
    run_http_on(runtime()?, groups)
}

pub fn run_http_on(runtime: Runtime, groups: Vec<Group>) -> Result<(), Error> {
    runtime.block_on(async {
        let app = router(&groups).await?;
        lambda_http::run(app).await
    })
}

/// Serves `groups` behind a Function URL with `InvokeMode: RESPONSE_STREAM`, so bodies
/// (SSE events) reach the client as they are written; HTTP API events work too.
pub fn run_streaming(groups: Vec<Group>) -> Result<(), Error> {
    runtime()?.block_on(async {
        let app = router(&groups).await?;
        lambda_http::run_with_streaming_response(app).await
    })
}

/// Runs `worker` on its queue's SQS trigger, reporting the messages to retry
/// (`ReportBatchItemFailures`).
pub fn run_sqs(worker: Worker) -> Result<(), Error> {
    run_sqs_on(runtime()?, worker)
}

pub fn run_sqs_on(runtime: Runtime, worker: Worker) -> Result<(), Error> {
    runtime.block_on(async {
        zerodb_http::telemetry::init();
        let ctx = context(false).await?;
        let handler = worker.handler(&ctx).await?;
        let handler = &*handler;
        lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
            Ok::<_, Error>(sqs_batch(handler, event.payload).await)
        }))
        .await
    })
}

/// One SQS batch through a handler: the messages it names go back as batch item
/// failures, so SQS retries only those.
pub async fn sqs_batch(handler: &dyn BatchHandler, event: SqsEvent) -> SqsBatchResponse {
    let messages: Vec<Message> = event
        .records
        .into_iter()
        .map(|r| Message {
            receive_count: r
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
            id: r.message_id.unwrap_or_default(),
            receipt: r.receipt_handle.unwrap_or_default(),
            body: r.body.unwrap_or_default(),
        })
        .collect();
    let failed = handler.handle(&messages).await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}
