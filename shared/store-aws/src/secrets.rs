//! The `Secrets` port on AWS Secrets Manager.

use async_trait::async_trait;
use aws_config::SdkConfig;
use zerodb_domain::context::Secrets;

/// Secrets by id or ARN; reads are made once at start by the services that need them.
pub struct AwsSecrets {
    client: aws_sdk_secretsmanager::Client,
}

impl AwsSecrets {
    pub fn new(sdk: &SdkConfig) -> Self {
        AwsSecrets {
            client: aws_sdk_secretsmanager::Client::new(sdk),
        }
    }
}

#[async_trait]
impl Secrets for AwsSecrets {
    async fn get(&self, id: &str) -> Option<String> {
        match self.client.get_secret_value().secret_id(id).send().await {
            Ok(out) => out.secret_string().map(str::to_owned),
            Err(e) => {
                // The SDK's error names the secret and the reason, never a value.
                tracing::warn!(secret = %id, error = %aws_sdk_secretsmanager::error::DisplayErrorContext(&e), "secret not readable");
                None
            }
        }
    }
}
