//! The vectors port on Amazon S3 Vectors (stub until built).
pub struct AwsVectors {
    client: aws_sdk_s3vectors::Client,
    bucket: String,
}
impl AwsVectors {
    pub fn new(client: aws_sdk_s3vectors::Client, bucket: impl Into<String>) -> Self {
        AwsVectors {
            client,
            bucket: bucket.into(),
        }
    }
}
use async_trait::async_trait;
use zerodb_domain::vectors::*;

fn unbuilt() -> VectorError {
    VectorError::Backend(anyhow::anyhow!("vectors adapter not built yet"))
}

#[async_trait]
impl Vectors for AwsVectors {
    async fn create_index(&self, _spec: &IndexSpec) -> Result<(), VectorError> {
        Err(unbuilt())
    }
    async fn get_index(&self, _name: &str) -> Result<Option<IndexSpec>, VectorError> {
        Err(unbuilt())
    }
    async fn delete_index(&self, _name: &str) -> Result<(), VectorError> {
        Err(unbuilt())
    }
    async fn put(&self, _index: &str, _items: Vec<VectorItem>) -> Result<(), VectorError> {
        Err(unbuilt())
    }
    async fn get(
        &self,
        _index: &str,
        _keys: &[String],
        _data: bool,
        _metadata: bool,
    ) -> Result<Vec<Fetched>, VectorError> {
        Err(unbuilt())
    }
    async fn delete(&self, _index: &str, _keys: &[String]) -> Result<(), VectorError> {
        Err(unbuilt())
    }
    async fn list(
        &self,
        _index: &str,
        _cursor: Option<&str>,
        _limit: usize,
        _data: bool,
        _metadata: bool,
    ) -> Result<ListPage, VectorError> {
        Err(unbuilt())
    }
    async fn query(&self, _index: &str, _query: &VectorQuery) -> Result<Vec<Match>, VectorError> {
        Err(unbuilt())
    }
}
