//! Per-key request budgets: a fixed one-minute window per bucket, where a bucket is one
//! API key (its tokens share it). Two counters: in the table, shared by every Lambda
//! instance; or in process memory, exact when one process serves every request (as
//! zerodb-local does) and free of a durable write per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::error::DomainError;
use crate::store::{StoreError, TTL, Table, Update, Value};

pub const WINDOW_SECS: i64 = 60;

/// Where request counts live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RateCounting {
    /// In the table, so every instance of every function sees the same count.
    #[default]
    Shared,
    /// In this process only: exact when it serves every request.
    InProcess,
}

/// Counts requests per bucket and window.
#[async_trait]
pub trait RateCounter: Send + Sync {
    /// Counts one request and returns the count in this window so far.
    async fn hit(&self, bucket: &str, window_start: i64) -> Result<u64, StoreError>;
}

/// Counters as table items `RATE#<bucket>` / `<window start>`, expiring with `ttl`.
pub struct TableCounter(pub Arc<dyn Table>);

#[async_trait]
impl RateCounter for TableCounter {
    async fn hit(&self, bucket: &str, window_start: i64) -> Result<u64, StoreError> {
        let item = self
            .0
            .update(
                &crate::keys::rate_counter(bucket, window_start),
                vec![
                    Update::Add("count".into(), 1),
                    Update::Set(TTL.into(), Value::int(window_start + 2 * WINDOW_SECS)),
                ],
                None,
            )
            .await?;
        Ok(item
            .get("count")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .max(0) as u64)
    }
}

/// Counters in memory; old windows are dropped as the map grows.
#[derive(Default)]
pub struct MemoryCounter(Mutex<HashMap<String, (i64, u64)>>);

#[async_trait]
impl RateCounter for MemoryCounter {
    async fn hit(&self, bucket: &str, window_start: i64) -> Result<u64, StoreError> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (w, _)| *w == window_start);
        }
        let entry = map.entry(bucket.to_owned()).or_insert((window_start, 0));
        if entry.0 != window_start {
            *entry = (window_start, 0);
        }
        entry.1 += 1;
        Ok(entry.1)
    }
}

/// A budget of `per_minute` requests per bucket; 0 means unlimited.
pub struct RateLimiter {
    counter: Arc<dyn RateCounter>,
    per_minute: u32,
}

impl RateLimiter {
    pub fn new(counter: Arc<dyn RateCounter>, per_minute: u32) -> Self {
        RateLimiter {
            counter,
            per_minute,
        }
    }

    /// Counts a request; 429 with the seconds left in the window once the budget is spent.
    pub async fn check(&self, bucket: &str, now: i64) -> Result<(), DomainError> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let window = now - now.rem_euclid(WINDOW_SECS);
        let count = self.counter.hit(bucket, window).await?;
        if count > u64::from(self.per_minute) {
            let retry_after = (window + WINDOW_SECS - now).max(1) as u64;
            return Err(DomainError::RateLimited {
                retry_after_secs: retry_after,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_budget_resets_each_window_and_buckets_are_separate() {
        let limiter = RateLimiter::new(Arc::new(MemoryCounter::default()), 2);
        // 10 s into a window (1_699_999_980 is a multiple of 60).
        let t = 1_699_999_990;
        limiter.check("a", t).await.unwrap();
        limiter.check("a", t + 1).await.unwrap();
        match limiter.check("a", t + 2).await {
            Err(DomainError::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 48),
            other => panic!("expected 429, got {other:?}"),
        }
        limiter
            .check("b", t + 2)
            .await
            .expect("another bucket has its own budget");
        limiter
            .check("a", t + 50)
            .await
            .expect("the next window starts afresh");
    }

    #[tokio::test]
    async fn zero_means_unlimited() {
        let limiter = RateLimiter::new(Arc::new(MemoryCounter::default()), 0);
        for _ in 0..1000 {
            limiter.check("a", 0).await.unwrap();
        }
    }
}
