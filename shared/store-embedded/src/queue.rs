//! The SQS-shaped `Queue` over the `messages` table.
//!
//! Receiving changes rows (receive count, receipt, visibility), so it runs on the writer
//! thread inside a transaction: two processes, or two tasks, can never receive the same
//! message within its visibility timeout.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use zerodb_domain::ids::{random_base62, time_ordered_id};
use zerodb_domain::store::{Message, Queue, StoreError};

use crate::Inner;
use crate::conn::backend;

/// SQS's batch limits, for sends and receives alike.
const MAX_BATCH: usize = 10;
/// SQS's longest visibility timeout (12 hours).
const MAX_VISIBILITY_SECS: u32 = 43_200;

/// How a queue redrives messages that keep failing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueConfig {
    /// Receives after which the next receive moves the message to `dead_letter`.
    pub max_receives: Option<u32>,
    /// Name of the dead-letter queue, another queue in the same store.
    pub dead_letter: Option<String>,
}

/// The `Queue` port over the embedded database: one named queue.
pub struct EmbeddedQueue {
    pub(crate) inner: Arc<Inner>,
    pub(crate) name: Arc<str>,
    pub(crate) config: QueueConfig,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn invalid(msg: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(anyhow!("{msg}"))
}

fn check_visibility(secs: u32) -> Result<(), StoreError> {
    if secs > MAX_VISIBILITY_SECS {
        return Err(invalid(format_args!(
            "visibility timeout is at most {MAX_VISIBILITY_SECS} seconds"
        )));
    }
    Ok(())
}

/// Receives up to `max` messages in send order, dead-lettering on the way the ones
/// already received `max_receives` times.
fn receive_in(
    conn: &Connection,
    queue: &str,
    config: &QueueConfig,
    max: usize,
    visibility_secs: u32,
) -> Result<Vec<Message>, StoreError> {
    let now = now_ms();
    let visible_at = now + i64::from(visibility_secs) * 1000;
    let redrive = match (config.max_receives, config.dead_letter.as_deref()) {
        (Some(limit), Some(dlq)) => Some((i64::from(limit), dlq)),
        _ => None,
    };
    let mut out = Vec::with_capacity(max);
    // Rows handed out or moved are passed by sequence number, so a zero visibility
    // timeout cannot return one message twice in one call.
    let mut last_seq = 0i64;
    'scan: loop {
        let candidates: Vec<(i64, String, String, i64)> = conn
            .prepare_cached(
                "SELECT seq, id, body, receive_count FROM messages
                 WHERE queue = ?1 AND seq > ?2 AND visible_at_ms <= ?3 ORDER BY seq LIMIT ?4",
            )
            .and_then(|mut s| {
                s.query_map(
                    params![queue, last_seq, now, (max - out.len()) as i64],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?
                .collect()
            })
            .map_err(backend)?;
        if candidates.is_empty() {
            break;
        }
        for (seq, id, body, count) in candidates {
            last_seq = seq;
            if let Some((limit, dlq)) = redrive
                && count >= limit
            {
                conn.prepare_cached(
                    "UPDATE messages SET queue = ?2, receive_count = 0, visible_at_ms = ?3, receipt = NULL
                         WHERE seq = ?1",
                )
                .and_then(|mut s| s.execute(params![seq, dlq, now]))
                .map_err(backend)?;
                tracing::info!(queue, dead_letter = dlq, message = %id, "message moved to the dead-letter queue");
                continue;
            }
            let receipt = random_base62(32);
            let count = count + 1;
            conn.prepare_cached(
                "UPDATE messages SET receive_count = ?2, receipt = ?3, visible_at_ms = ?4 WHERE seq = ?1",
            )
            .and_then(|mut s| s.execute(params![seq, count, receipt, visible_at]))
            .map_err(backend)?;
            out.push(Message {
                id,
                receipt,
                body,
                receive_count: u32::try_from(count).unwrap_or(u32::MAX),
            });
            if out.len() == max {
                break 'scan;
            }
        }
    }
    Ok(out)
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn send_batch(&self, bodies: Vec<String>) -> Result<Vec<String>, StoreError> {
        if bodies.is_empty() || bodies.len() > MAX_BATCH {
            return Err(invalid(format_args!(
                "a batch holds 1 to {MAX_BATCH} messages, not {}",
                bodies.len()
            )));
        }
        let queue = Arc::clone(&self.name);
        let ids: Vec<String> = bodies.iter().map(|_| time_ordered_id()).collect();
        let answer = ids.clone();
        self.inner
            .writer
            .write(move |conn| {
                let now = now_ms();
                let mut stmt = conn
                    .prepare_cached(
                        "INSERT INTO messages(queue, id, body, visible_at_ms, receive_count) VALUES (?1, ?2, ?3, ?4, 0)",
                    )
                    .map_err(backend)?;
                for (id, body) in ids.iter().zip(&bodies) {
                    stmt.execute(params![&*queue, id, body, now]).map_err(backend)?;
                }
                Ok(())
            })
            .await?;
        Ok(answer)
    }

    async fn receive(&self, max: usize, visibility_secs: u32) -> Result<Vec<Message>, StoreError> {
        if !(1..=MAX_BATCH).contains(&max) {
            return Err(invalid(format_args!(
                "receive asks for 1 to {MAX_BATCH} messages, not {max}"
            )));
        }
        check_visibility(visibility_secs)?;
        // Idle pollers are the common case: answer them from a reader, without a trip
        // through the writer's transaction.
        let queue = Arc::clone(&self.name);
        let any_visible = self
            .inner
            .readers
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT 1 FROM messages WHERE queue = ?1 AND visible_at_ms <= ?2 LIMIT 1",
                )
                .and_then(|mut s| {
                    s.query_row(params![&*queue, now_ms()], |_| Ok(()))
                        .optional()
                })
                .map(|found| found.is_some())
                .map_err(backend)
            })
            .await?;
        if !any_visible {
            return Ok(Vec::new());
        }
        let queue = Arc::clone(&self.name);
        let config = self.config.clone();
        self.inner
            .writer
            .write(move |conn| receive_in(conn, &queue, &config, max, visibility_secs))
            .await
    }

    async fn delete(&self, receipt: &str) -> Result<(), StoreError> {
        let queue = Arc::clone(&self.name);
        let receipt = receipt.to_owned();
        self.inner
            .writer
            .write(move |conn| {
                // A stale or unknown receipt deletes nothing and is not an error, as in SQS
                // for a message already deleted.
                conn.prepare_cached("DELETE FROM messages WHERE receipt = ?1 AND queue = ?2")
                    .and_then(|mut s| s.execute(params![receipt, &*queue]))
                    .map_err(backend)?;
                Ok(())
            })
            .await
    }

    async fn change_visibility(
        &self,
        receipt: &str,
        visibility_secs: u32,
    ) -> Result<(), StoreError> {
        check_visibility(visibility_secs)?;
        let queue = Arc::clone(&self.name);
        let receipt = receipt.to_owned();
        self.inner
            .writer
            .write(move |conn| {
                let visible_at = now_ms() + i64::from(visibility_secs) * 1000;
                let changed = conn
                    .prepare_cached(
                        "UPDATE messages SET visible_at_ms = ?3 WHERE receipt = ?1 AND queue = ?2",
                    )
                    .and_then(|mut s| s.execute(params![receipt, &*queue, visible_at]))
                    .map_err(backend)?;
                if changed == 0 {
                    return Err(invalid("receipt does not match a message in flight"));
                }
                Ok(())
            })
            .await
    }
}
