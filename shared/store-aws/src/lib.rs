//! The storage ports over AWS: `Table` on DynamoDB, `Blobs` on S3, `Queue` on SQS.
//!
//! Clients come from the standard AWS environment (credentials, region and, for local
//! emulators such as moto, `AWS_ENDPOINT_URL`).

mod blobs;
mod convert;
mod error;
mod expr;
pub mod provision;
mod queue;
mod table;

pub use blobs::AwsBlobs;
pub use queue::AwsQueue;
pub use table::AwsTable;

use aws_config::{BehaviorVersion, SdkConfig};

/// The three SDK clients, built once per process and cloned freely (a clone shares the
/// connection pool).
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    /// Loads the AWS configuration from the environment once and builds every client.
    pub async fn from_env() -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self::from_config(&config)
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
        }
    }
}

/// The storage a Lambda function runs on: the clients are built once, here, in the init
/// phase, so no request pays for configuration loading or a TLS handshake setup.
pub async fn connect(
    table: &str,
    bucket: &str,
    events_queue_url: &str,
) -> zerodb_domain::store::Stores {
    let clients = AwsClients::from_env().await;
    zerodb_domain::store::Stores {
        table: std::sync::Arc::new(AwsTable::new(clients.dynamodb, table)),
        blobs: std::sync::Arc::new(AwsBlobs::new(clients.s3, bucket)),
        events: std::sync::Arc::new(AwsQueue::new(clients.sqs, events_queue_url)),
    }
}
