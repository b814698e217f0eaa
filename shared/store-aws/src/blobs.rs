//! `Blobs` over one S3 bucket.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use zerodb_domain::store::{Blob, BlobMeta, BlobPage, Blobs, StoreError};

/// Largest page S3 lists in one request.
const MAX_LIST: usize = 1000;

/// The `Blobs` port over S3.
#[derive(Debug, Clone)]
pub struct AwsBlobs {
    client: Client,
    bucket: String,
}

impl AwsBlobs {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        AwsBlobs {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn error<E>(&self, op: &'static str, err: SdkError<E, HttpResponse>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        // S3 signals throttling with a 503 SlowDown, which no operation models as a type.
        if err.as_service_error().and_then(ProvideErrorMetadata::code) == Some("SlowDown") {
            tracing::warn!(bucket = %self.bucket, op, "S3 is throttling");
            return StoreError::Throttled;
        }
        StoreError::Backend(anyhow::Error::new(err).context(format!("S3 {op} failed")))
    }
}

fn size(len: Option<i64>) -> u64 {
    len.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

#[async_trait]
impl Blobs for AwsBlobs {
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: Option<&str>,
    ) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .set_content_type(content_type.map(str::to_owned))
            .send()
            .await
            .map_err(|e| self.error("PutObject", e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Blob>, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => {
                return Ok(None);
            }
            Err(e) => return Err(self.error("GetObject", e)),
        };
        let content_type = out.content_type.clone();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| {
                StoreError::Backend(anyhow::Error::new(e).context("reading an S3 object body"))
            })?
            .into_bytes()
            .to_vec();
        let meta = BlobMeta {
            key: key.to_owned(),
            size: bytes.len() as u64,
            content_type,
        };
        Ok(Some(Blob { meta, bytes }))
    }

    async fn head(&self, key: &str) -> Result<Option<BlobMeta>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(BlobMeta {
                key: key.to_owned(),
                size: size(out.content_length),
                content_type: out.content_type,
            })),
            Err(e) if matches!(e.as_service_error(), Some(HeadObjectError::NotFound(_))) => {
                Ok(None)
            }
            Err(e) => Err(self.error("HeadObject", e)),
        }
    }

    /// Listing reports no content type: S3 does not return it without a HEAD per object.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<BlobPage, StoreError> {
        let limit = limit.clamp(1, MAX_LIST);
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(after.map(str::to_owned))
            .max_keys(i32::try_from(limit).unwrap_or(1000))
            .send()
            .await
            .map_err(|e| self.error("ListObjectsV2", e))?;
        let objects: Vec<BlobMeta> = out
            .contents()
            .iter()
            .filter_map(|o| {
                Some(BlobMeta {
                    key: o.key()?.to_owned(),
                    size: size(o.size()),
                    content_type: None,
                })
            })
            .collect();
        let cursor = if out.is_truncated() == Some(true) {
            objects.last().map(|o| o.key.clone())
        } else {
            None
        };
        Ok(BlobPage { objects, cursor })
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error("DeleteObject", e))?;
        Ok(())
    }

    async fn presign_get(
        &self,
        key: &str,
        expires_secs: u64,
    ) -> Result<Option<String>, StoreError> {
        let config =
            PresigningConfig::expires_in(Duration::from_secs(expires_secs)).map_err(|e| {
                StoreError::Backend(anyhow::Error::new(e).context("presigning an S3 download"))
            })?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            // Saved, never rendered: whatever type the bytes were sent with, a browser
            // following the link does not run them as a page of this bucket.
            .response_content_disposition("attachment")
            .presigned(config)
            .await
            .map_err(|e| self.error("GetObject (presign)", e))?;
        Ok(Some(req.uri().to_owned()))
    }

    /// With `size`, `Content-Length` is one of the signed headers, so S3 refuses a body of
    /// any other length (a presigned PUT cannot otherwise bound what is sent). The content
    /// type is not signed: the uploader may send any, and the file's record keeps its own.
    async fn presign_put(
        &self,
        key: &str,
        size: Option<u64>,
        expires_secs: u64,
    ) -> Result<Option<String>, StoreError> {
        let config =
            PresigningConfig::expires_in(Duration::from_secs(expires_secs)).map_err(|e| {
                StoreError::Backend(anyhow::Error::new(e).context("presigning an S3 upload"))
            })?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .set_content_length(size.and_then(|n| i64::try_from(n).ok()))
            .presigned(config)
            .await
            .map_err(|e| self.error("PutObject (presign)", e))?;
        Ok(Some(req.uri().to_owned()))
    }
}
