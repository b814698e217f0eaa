//! Credits and usage records, in the table (keys in `zerodb_domain::keys`):
//! - `ACCT#<account>` / `CREDITS`: `spent_micro` and `granted_micro` (micro-credits; one
//!   credit is one US dollar at the catalog's list prices).
//! - `USAGE#<account>` / `<created ms, 13 digits>#<time-ordered id>`: one record per call,
//!   expiring after `USAGE_RETENTION_DAYS`.
//!
//! A call is refused (402) when the balance is spent, before any provider is called. Its
//! cost is known only when it ends, so concurrent calls may together overshoot the last
//! credits by one call each; the balance then goes negative and further calls are refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use zerodb_domain::DomainError;
use zerodb_domain::clock::Clock;
use zerodb_domain::item::{from_item, to_item};
use zerodb_domain::keys;
use zerodb_domain::store::{Cursor, Query, StoreError, Table, TxOp, Update, Value};

pub const USAGE_RETENTION_DAYS: i64 = 90;

/// Micro-credits in a credit (one US dollar at list prices).
pub const MICRO_PER_USD: f64 = 1_000_000.0;

/// Dollars (credits) to micro-credits, rounded; the one conversion every input uses.
pub fn usd_to_micro(usd: f64) -> u64 {
    (usd * MICRO_PER_USD).round() as u64
}

pub fn micro_to_usd(micro: i64) -> f64 {
    micro as f64 / MICRO_PER_USD
}

/// How credits are granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditPolicy {
    /// No balance is kept or checked (zerodb-local's default).
    Unlimited,
    /// Every account starts with this many micro-credits; top-ups add to it.
    Grant(u64),
}

impl CreditPolicy {
    /// From a number of credits (`ZERODB_CREDITS_USD`); `None` is unlimited.
    pub fn from_credits(credits: Option<&str>) -> Result<Self, String> {
        let Some(text) = credits.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(CreditPolicy::Unlimited);
        };
        match text.parse::<f64>() {
            Ok(c) if c.is_finite() && c >= 0.0 => Ok(CreditPolicy::Grant(usd_to_micro(c))),
            _ => Err(format!(
                "ZERODB_CREDITS_USD must be a non-negative number of credits (US dollars), e.g. 5 or 0.25; got {text:?}"
            )),
        }
    }
}

/// An account's credits, in micro-credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    /// Granted in all; `None` when this deployment does not limit credits.
    pub granted_micro: Option<i64>,
    pub spent_micro: i64,
}

/// One call, as recorded (and stored: this is the item's shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub id: String,
    /// The key that made the call (a token's minting key).
    pub key_id: String,
    /// `anthropic` (`/v1/messages`) or `openai` (chat completions).
    pub endpoint: String,
    /// The alias that answered (a fallback's, if the first failed); the model as sent when
    /// it named no alias.
    pub alias: String,
    /// The provider's model id; empty when no provider was called.
    pub provider_model: String,
    pub stream: bool,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_micro: u64,
    /// Milliseconds from the request to the end of the response (the last event of a
    /// stream).
    pub latency_ms: u64,
    /// The HTTP status the client got (a stream's is 200 even if it ended in an error
    /// event).
    pub status: u16,
    /// The error code, when the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// RFC 3339, milliseconds.
    pub created_at: String,
}

/// Credits and usage over one table.
#[derive(Clone)]
pub struct Accounting {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    policy: CreditPolicy,
    /// Per account, held shared by each of its background record writes in flight;
    /// `written` takes it exclusively, so a usage read or credit check that follows a
    /// call waits for that call's record (and cost) to be in the table. Per account, so
    /// no tenant waits on another's writes.
    writing: Writing,
}

type Writing = Arc<Mutex<HashMap<String, Arc<tokio::sync::RwLock<()>>>>>;

/// An account's record write in flight: `check` for that account waits until it drops.
pub struct Writes {
    writing: Writing,
    account: String,
    guard: Option<tokio::sync::OwnedRwLockReadGuard<()>>,
}

impl Drop for Writes {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            let lock = tokio::sync::OwnedRwLockReadGuard::rwlock(&guard).clone();
            drop(guard);
            forget_if_idle(&self.writing, &self.account, &lock);
        }
    }
}

/// Drops the account's lock from the map when `lock` (one clone, the caller's) and the
/// map's own are the only ones left, so the map holds only accounts with writes in flight.
fn forget_if_idle(writing: &Writing, account: &str, lock: &Arc<tokio::sync::RwLock<()>>) {
    let mut map = writing.lock().unwrap_or_else(|p| p.into_inner());
    if map
        .get(account)
        .is_some_and(|l| Arc::ptr_eq(l, lock) && Arc::strong_count(lock) == 2)
    {
        map.remove(account);
    }
}

impl Accounting {
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>, policy: CreditPolicy) -> Self {
        Accounting {
            table,
            clock,
            policy,
            writing: Arc::default(),
        }
    }

    /// Marks a record write of `account` in flight until the returned guard drops
    /// (after the write). Taken before the call answers, so any later call sees it.
    pub async fn writing(&self, account: &str) -> Writes {
        let lock = self
            .writing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(account.to_owned())
            .or_default()
            .clone();
        Writes {
            writing: self.writing.clone(),
            account: account.to_owned(),
            guard: Some(lock.read_owned().await),
        }
    }

    /// Returns once every record write of `account` in flight when called has landed.
    pub async fn written(&self, account: &str) {
        let lock = self
            .writing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(account)
            .cloned();
        if let Some(lock) = lock {
            drop(lock.write().await);
            forget_if_idle(&self.writing, account, &lock);
        }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// 402 INSUFFICIENT_CREDITS when the account has none left. One read when credits are
    /// limited, none otherwise.
    pub async fn check(&self, account: &str) -> Result<(), DomainError> {
        let CreditPolicy::Grant(_) = self.policy else {
            return Ok(());
        };
        // Waiting here, not adding the costs in flight to a balance read beside them: the
        // read cannot tell whether a write that lands during it is counted already.
        self.written(account).await;
        let balance = self.balance(account).await?;
        let spent = balance.spent_micro;
        match balance.granted_micro {
            Some(granted) if granted - spent <= 0 => {
                Err(DomainError::InsufficientCredits(format!(
                    "This account's inference credits are spent ({:.6} of {:.6} used); add credits (`zerodb-local credits add`) before calling again",
                    micro_to_usd(spent),
                    micro_to_usd(granted)
                )))
            }
            _ => Ok(()),
        }
    }

    pub async fn balance(&self, account: &str) -> Result<Balance, StoreError> {
        let item = self.table.get(&keys::credits(account)).await?;
        let read = |attr: &str| {
            item.as_ref()
                .and_then(|i| i.get(attr))
                .and_then(Value::as_i64)
                .unwrap_or(0)
        };
        Ok(Balance {
            granted_micro: match self.policy {
                CreditPolicy::Unlimited => None,
                CreditPolicy::Grant(base) => Some(base as i64 + read("granted_micro")),
            },
            spent_micro: read("spent_micro"),
        })
    }

    /// Adds credits to an account (an operator's top-up).
    pub async fn add_credits(&self, account: &str, micro: u64) -> Result<(), StoreError> {
        let delta = i64::try_from(micro).map_err(|_| StoreError::TooLarge(0))?;
        self.table
            .update(
                &keys::credits(account),
                vec![Update::Add("granted_micro".into(), delta)],
                None,
            )
            .await
            .map(|_| ())
    }

    /// Writes the record and deducts its cost, together (one transaction).
    pub async fn record(&self, account: &str, mut record: UsageRecord) -> Result<(), StoreError> {
        let now = self.clock.now();
        record.created_at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        // Time-ordered, and monotonic within a process: calls in the same millisecond
        // still list newest first.
        let key = keys::usage(
            account,
            now.timestamp_millis(),
            &zerodb_domain::ids::time_ordered_id(),
        );
        let expires = now.timestamp() + USAGE_RETENTION_DAYS * 24 * 3600;
        let item = to_item(&key, &record, Some(expires))?;
        let cost = record.cost_micro;
        if cost == 0 {
            return self.table.put(item, None).await;
        }
        self.table
            .transact(vec![
                TxOp::Put {
                    item,
                    condition: None,
                },
                TxOp::Update {
                    key: keys::credits(account),
                    updates: vec![Update::Add("spent_micro".into(), cost as i64)],
                    condition: None,
                },
            ])
            .await
    }

    /// An account's records, newest first.
    pub async fn list(
        &self,
        account: &str,
        limit: usize,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<UsageRecord>, Option<Cursor>), StoreError> {
        let page = self
            .table
            .query(
                Query::partition(keys::usage_partition(account))
                    .backward()
                    .limit(limit)
                    .after(cursor),
            )
            .await?;
        let records = page
            .items
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        Ok((records, page.cursor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerodb_domain::store::{Item, Key};

    /// Records written before the serde bridge (attribute by attribute) still read.
    #[test]
    fn a_record_in_the_earlier_hand_written_layout_still_reads() {
        let mut item: Item = Key::new("USAGE#acct_1", "0001700000000000#01hx").item();
        for (k, v) in [
            ("id", Value::S("use_1".into())),
            ("key_id", Value::S("key_1".into())),
            ("endpoint", Value::S("anthropic".into())),
            ("alias", Value::S("claude-haiku".into())),
            ("provider_model", Value::S("claude-3-5-haiku".into())),
            ("stream", Value::Bool(true)),
            ("input_tokens", Value::N("11".into())),
            ("output_tokens", Value::N("7".into())),
            ("cost_micro", Value::N("42".into())),
            ("latency_ms", Value::N("130".into())),
            ("status", Value::N("200".into())),
            ("created_at", Value::S("2026-01-01T00:00:00.000Z".into())),
            ("ttl", Value::N("1800000000".into())),
        ] {
            item.insert(k.into(), v);
        }
        let r: UsageRecord = from_item(item.clone()).unwrap();
        assert_eq!(r.cost_micro, 42);
        assert_eq!(r.error_code, None);
        assert!(r.stream);
        // And writing it gives the same attributes back.
        let again = to_item(
            &Key::new("USAGE#acct_1", "0001700000000000#01hx"),
            &r,
            Some(1_800_000_000),
        )
        .unwrap();
        assert_eq!(again, item);
    }

    #[test]
    fn dollars_convert_to_micro_credits_once() {
        assert_eq!(usd_to_micro(0.25), 250_000);
        assert_eq!(
            CreditPolicy::from_credits(Some("5")),
            Ok(CreditPolicy::Grant(5_000_000))
        );
        assert!(CreditPolicy::from_credits(Some("-1")).is_err());
        assert_eq!(
            CreditPolicy::from_credits(None),
            Ok(CreditPolicy::Unlimited)
        );
    }
}
