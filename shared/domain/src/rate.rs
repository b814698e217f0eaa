//! Request budgets: a fixed one-minute window per API key (its tokens share it) and one
//! per account (every key it minted shares it, so minting keys does not multiply the
//! budget). Two counters: in the table, shared by every Lambda instance; or in process
//! memory, exact when one process serves every request (as zerodb-local does) and free
//! of a durable write per request.
//!
//! Only a request whose credential checked out is counted (see `auth`), so an unknown
//! or malformed key costs no write and no memory here: what is counted is bounded by
//! the keys that exist.

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

/// Counters in memory for the current window only. A new window replaces the map
/// whole, so nothing is ever swept entry by entry under the lock, and the map holds at
/// most one entry per key and account that made a request this minute.
#[derive(Default)]
pub struct MemoryCounter(Mutex<Window>);

#[derive(Default)]
struct Window {
    start: i64,
    counts: HashMap<String, u64>,
}

impl MemoryCounter {
    /// Buckets counted in the current window (for tests of the memory bound).
    pub fn len(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counts
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl RateCounter for MemoryCounter {
    async fn hit(&self, bucket: &str, window_start: i64) -> Result<u64, StoreError> {
        let old;
        let count = {
            let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
            // A late request from the previous window counts into the current one.
            old = (window_start > w.start).then(|| {
                w.start = window_start;
                std::mem::take(&mut w.counts)
            });
            let n = match w.counts.get_mut(bucket) {
                Some(n) => n,
                None => w.counts.entry(bucket.to_owned()).or_insert(0),
            };
            *n += 1;
            *n
        };
        // The last window's map is freed after the lock is released.
        drop(old);
        Ok(count)
    }
}

/// A budget of `per_minute` requests per key and `account_per_minute` per account; 0
/// turns either off.
pub struct RateLimiter {
    counter: Arc<dyn RateCounter>,
    per_minute: u32,
    account_per_minute: u32,
}

impl RateLimiter {
    pub fn new(counter: Arc<dyn RateCounter>, per_minute: u32, account_per_minute: u32) -> Self {
        RateLimiter {
            counter,
            per_minute,
            account_per_minute,
        }
    }

    /// Counts a request against its key's and its account's budgets (concurrently: one
    /// round trip of latency); 429 with the seconds left in the window once either is
    /// spent.
    pub async fn check(
        &self,
        key_bucket: &str,
        account: &str,
        now: i64,
    ) -> Result<(), DomainError> {
        let window = now - now.rem_euclid(WINDOW_SECS);
        let (key_over, account_over) = tokio::join!(
            self.spent(self.per_minute, key_bucket, window),
            self.spent(self.account_per_minute, account, window)
        );
        if key_over? || account_over? {
            let retry_after = (window + WINDOW_SECS - now).max(1) as u64;
            return Err(DomainError::RateLimited {
                retry_after_secs: retry_after,
            });
        }
        Ok(())
    }

    async fn spent(&self, limit: u32, bucket: &str, window: i64) -> Result<bool, StoreError> {
        if limit == 0 {
            return Ok(false);
        }
        Ok(self.counter.hit(bucket, window).await? > u64::from(limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 10 s into a window (1_699_999_980 is a multiple of 60).
    const T: i64 = 1_699_999_990;

    fn limited(r: Result<(), DomainError>) -> Option<u64> {
        match r {
            Err(DomainError::RateLimited { retry_after_secs }) => Some(retry_after_secs),
            Ok(()) => None,
            Err(other) => panic!("expected 429 or ok, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn memory_budget_resets_each_window_and_buckets_are_separate() {
        let limiter = RateLimiter::new(Arc::new(MemoryCounter::default()), 2, 0);
        limiter.check("a", "acct", T).await.unwrap();
        limiter.check("a", "acct", T + 1).await.unwrap();
        assert_eq!(limited(limiter.check("a", "acct", T + 2).await), Some(48));
        limiter
            .check("b", "acct", T + 2)
            .await
            .expect("another key has its own budget");
        limiter
            .check("a", "acct", T + 50)
            .await
            .expect("the next window starts afresh");
    }

    #[tokio::test]
    async fn an_account_budget_bounds_all_its_keys_together() {
        let limiter = RateLimiter::new(Arc::new(MemoryCounter::default()), 100, 3);
        for key in ["a", "b", "c"] {
            limiter.check(key, "acct", T).await.unwrap();
        }
        assert!(limited(limiter.check("d", "acct", T).await).is_some());
        limiter
            .check("e", "other", T)
            .await
            .expect("another account has its own budget");
    }

    #[tokio::test]
    async fn zero_means_unlimited() {
        let limiter = RateLimiter::new(Arc::new(MemoryCounter::default()), 0, 0);
        for _ in 0..1000 {
            limiter.check("a", "acct", 0).await.unwrap();
        }
    }

    #[tokio::test]
    async fn memory_counts_hold_the_current_window_only() {
        let counter = Arc::new(MemoryCounter::default());
        let limiter = RateLimiter::new(counter.clone(), 10, 0);
        for i in 0..1000 {
            limiter.check(&format!("k{i}"), "acct", T).await.unwrap();
        }
        assert_eq!(counter.len(), 1000);
        limiter.check("k0", "acct", T + 60).await.unwrap();
        assert_eq!(counter.len(), 1, "a new window drops the last one's counts");
    }
}
