//! The S3-shaped `Blobs` over the `blobs` table (a rowid table, so large values sit in
//! overflow pages without bloating the key B-tree).

use std::sync::Arc;

use anyhow::anyhow;
use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, params};
use zerodb_domain::store::{Blob, BlobMeta, BlobPage, Blobs, StoreError};

use crate::Inner;
use crate::conn::backend;
use crate::table::prefix_end;

/// S3's key length limit and its page size cap, enforced the same way here.
const MAX_KEY_BYTES: usize = 1024;
const MAX_LIST: usize = 1000;

/// The `Blobs` port over the embedded database.
pub struct EmbeddedBlobs {
    pub(crate) inner: Arc<Inner>,
}

fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(StoreError::Backend(anyhow!(
            "object keys are 1 to {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

fn meta(key: String, size: i64, content_type: Option<String>) -> BlobMeta {
    BlobMeta {
        key,
        size: u64::try_from(size).unwrap_or(0),
        content_type,
    }
}

#[async_trait]
impl Blobs for EmbeddedBlobs {
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: Option<&str>,
    ) -> Result<(), StoreError> {
        check_key(key)?;
        let key = key.to_owned();
        let content_type = content_type.map(str::to_owned);
        self.inner
            .writer
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO blobs(key, content_type, data) VALUES (?1, ?2, ?3)
                     ON CONFLICT(key) DO UPDATE SET content_type = excluded.content_type, data = excluded.data",
                )
                .and_then(|mut s| s.execute(params![key, content_type, bytes]))
                .map_err(backend)?;
                Ok(())
            })
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<Blob>, StoreError> {
        let key = key.to_owned();
        self.inner
            .readers
            .read(move |conn| {
                conn.prepare_cached("SELECT content_type, data FROM blobs WHERE key = ?1")
                    .and_then(|mut s| {
                        s.query_row([&key], |r| {
                            Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Vec<u8>>(1)?))
                        })
                        .optional()
                    })
                    .map_err(backend)
                    .map(|found| {
                        found.map(|(content_type, bytes)| Blob {
                            meta: meta(key, bytes.len() as i64, content_type),
                            bytes,
                        })
                    })
            })
            .await
    }

    async fn head(&self, key: &str) -> Result<Option<BlobMeta>, StoreError> {
        let key = key.to_owned();
        self.inner
            .readers
            .read(move |conn| {
                // length() of a BLOB reads the record header, not the value itself.
                conn.prepare_cached("SELECT length(data), content_type FROM blobs WHERE key = ?1")
                    .and_then(|mut s| {
                        s.query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
                            .optional()
                    })
                    .map_err(backend)
                    .map(|found| found.map(|(size, content_type)| meta(key, size, content_type)))
            })
            .await
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<BlobPage, StoreError> {
        let limit = limit.clamp(1, MAX_LIST);
        let mut sql =
            String::from("SELECT key, length(data), content_type FROM blobs WHERE key >= ?1");
        let mut args = vec![SqlValue::Text(prefix.to_owned())];
        if let Some(end) = prefix_end(prefix) {
            args.push(SqlValue::Text(end));
            sql.push_str(&format!(" AND key < ?{}", args.len()));
        }
        if let Some(after) = after {
            args.push(SqlValue::Text(after.to_owned()));
            sql.push_str(&format!(" AND key > ?{}", args.len()));
        }
        args.push(SqlValue::Integer(limit as i64 + 1));
        sql.push_str(&format!(" ORDER BY key LIMIT ?{}", args.len()));
        self.inner
            .readers
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
                let mut objects = stmt
                    .query_map(rusqlite::params_from_iter(args), |r| {
                        Ok(meta(r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(backend)?;
                let cursor = if objects.len() > limit {
                    objects.truncate(limit);
                    objects.last().map(|o| o.key.clone())
                } else {
                    None
                };
                Ok(BlobPage { objects, cursor })
            })
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.inner
            .writer
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM blobs WHERE key = ?1")
                    .and_then(|mut s| s.execute([&key]))
                    .map_err(backend)?;
                Ok(())
            })
            .await
    }
}
