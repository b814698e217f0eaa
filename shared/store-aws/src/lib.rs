//! The storage ports over AWS: `Table` on DynamoDB, `Blobs` on S3, `Queue` on SQS, and
//! the `Secrets` port on Secrets Manager.
//!
//! Clients come from the standard AWS environment (credentials, region and, for local
//! emulators such as moto, `AWS_ENDPOINT_URL`).

mod blobs;
mod convert;
mod error;
mod expr;
pub mod provision;
mod queue;
mod secrets;
mod table;
mod vectors;

pub use blobs::AwsBlobs;
pub use queue::AwsQueue;
pub use secrets::AwsSecrets;
pub use table::AwsTable;
pub use vectors::AwsVectors;

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use zerodb_domain::queues::QueueName;
use zerodb_domain::store::{Queues, Stores};

/// The three SDK clients, built once per process and cloned freely (a clone shares the
/// connection pool).
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3vectors: aws_sdk_s3vectors::Client,
}

impl AwsClients {
    /// Loads the AWS configuration from the environment once and builds every client.
    pub async fn from_env() -> Self {
        Self::from_config(&sdk_config().await)
    }

    pub fn from_config(config: &SdkConfig) -> Self {
        // Emulators serve buckets under the path, not as virtual-host subdomains.
        let custom_endpoint =
            config.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(custom_endpoint)
            .build();
        AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sqs: aws_sdk_sqs::Client::new(config),
            s3vectors: aws_sdk_s3vectors::Client::new(config),
        }
    }
}

/// The AWS configuration from the environment, loaded once per process.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// The storage a Lambda function runs on, over clients built once from `sdk` in the init
/// phase, so no request pays for configuration loading or a TLS handshake setup. Every
/// queue of `QueueName::ALL` must have its URL in `queue_urls`.
pub fn stores(
    sdk: &SdkConfig,
    table: &str,
    bucket: &str,
    vector_bucket: &str,
    queue_urls: &BTreeMap<QueueName, String>,
) -> Stores {
    let clients = AwsClients::from_config(sdk);
    Stores {
        table: Arc::new(AwsTable::new(clients.dynamodb, table)),
        blobs: Arc::new(AwsBlobs::new(clients.s3, bucket)),
        vectors: Arc::new(AwsVectors::new(clients.s3vectors, vector_bucket)),
        queues: Queues::new(|spec| {
            Arc::new(AwsQueue::new(
                clients.sqs.clone(),
                queue_urls.get(&spec.name).cloned().unwrap_or_default(),
            ))
        }),
    }
}
