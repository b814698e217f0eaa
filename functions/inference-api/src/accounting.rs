//! Credits and usage records, in the table:
//! - `ACCT#<account>` / `CREDITS`: `spent_micro` and `granted_micro` (micro-credits; one
//!   credit is one US dollar at the catalog's list prices).
//! - `USAGE#<account>` / `<created ms, 13 digits>#<time-ordered id>`: one record per call, expiring
//!   after `USAGE_RETENTION_DAYS`.
//!
//! A call is refused (402) when the balance is spent, before any provider is called. Its
//! cost is known only when it ends, so concurrent calls may together overshoot the last
//! credits by one call each; the balance then goes negative and further calls are refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use utoipa::ToSchema;
use zerodb_domain::DomainError;
use zerodb_domain::clock::Clock;
use zerodb_domain::store::{Cursor, Item, Key, Query, StoreError, TTL, Table, TxOp, Update, Value};

pub const USAGE_RETENTION_DAYS: i64 = 90;
const CREDITS_SK: &str = "CREDITS";

fn credits_key(account: &str) -> Key {
    Key::new(format!("ACCT#{account}"), CREDITS_SK)
}

fn usage_pk(account: &str) -> String {
    format!("USAGE#{account}")
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
            Ok(c) if c.is_finite() && c >= 0.0 => {
                Ok(CreditPolicy::Grant((c * 1_000_000.0).round() as u64))
            }
            _ => Err(format!(
                "ZERODB_CREDITS_USD must be a non-negative number of credits (US dollars), e.g. 5 or 0.25; got {text:?}"
            )),
        }
    }
}

/// An account's credits, as `GET /api/v1/usage` shows them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Credits {
    /// False when this deployment does not limit credits.
    pub limited: bool,
    /// Credits granted in total (US dollars at list prices); null when unlimited.
    pub granted_usd: Option<f64>,
    pub spent_usd: f64,
    /// What is left; null when unlimited. May be slightly negative: a call's cost is known
    /// only when it ends.
    pub remaining_usd: Option<f64>,
}

/// One call, as recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
    pub cost_usd: f64,
    /// Milliseconds from the request to the end of the response (the last event of a
    /// stream).
    pub latency_ms: u64,
    /// The HTTP status the client got (a stream's is 200 even if it ended in an error
    /// event).
    pub status: u16,
    /// The error code, when the call failed.
    pub error_code: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// Credits and usage over one table.
#[derive(Clone)]
pub struct Accounting {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    policy: CreditPolicy,
    /// Costs of calls that have answered but whose records are still being written, by
    /// account: counted as spent by `check`, so a call that follows another sees its cost.
    pending: Arc<Mutex<HashMap<String, u64>>>,
}

/// A cost counted as spent until dropped (after its record is written).
pub struct Pending {
    pending: Arc<Mutex<HashMap<String, u64>>>,
    account: String,
    micro: u64,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = map.get_mut(&self.account) {
            *v = v.saturating_sub(self.micro);
            if *v == 0 {
                map.remove(&self.account);
            }
        }
    }
}

fn micro_to_usd(micro: i64) -> f64 {
    micro as f64 / 1_000_000.0
}

impl Accounting {
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>, policy: CreditPolicy) -> Self {
        Accounting {
            table,
            clock,
            policy,
            pending: Arc::default(),
        }
    }

    /// Counts `micro` as spent by `account` until the returned guard is dropped.
    pub fn reserve(&self, account: &str, micro: u64) -> Pending {
        *self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(account.to_owned())
            .or_default() += micro;
        Pending {
            pending: self.pending.clone(),
            account: account.to_owned(),
            micro,
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
        let credits = self.credits(account).await?;
        let in_flight = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(account)
            .copied()
            .unwrap_or(0);
        let spent = credits.spent_usd + micro_to_usd(in_flight as i64);
        match credits.granted_usd {
            Some(granted) if granted - spent <= 0.0 => {
                Err(DomainError::InsufficientCredits(format!(
                    "This account's inference credits are spent ({spent:.6} of {granted:.6} used); add credits (`zerodb-local credits add`) before calling again"
                )))
            }
            _ => Ok(()),
        }
    }

    pub async fn credits(&self, account: &str) -> Result<Credits, StoreError> {
        let item = self.table.get(&credits_key(account)).await?;
        let read = |attr: &str| {
            item.as_ref()
                .and_then(|i| i.get(attr))
                .and_then(Value::as_i64)
                .unwrap_or(0)
        };
        let spent = read("spent_micro");
        Ok(match self.policy {
            CreditPolicy::Unlimited => Credits {
                limited: false,
                granted_usd: None,
                spent_usd: micro_to_usd(spent),
                remaining_usd: None,
            },
            CreditPolicy::Grant(base) => {
                let granted = base as i64 + read("granted_micro");
                Credits {
                    limited: true,
                    granted_usd: Some(micro_to_usd(granted)),
                    spent_usd: micro_to_usd(spent),
                    remaining_usd: Some(micro_to_usd(granted - spent)),
                }
            }
        })
    }

    /// Adds credits to an account (an operator's top-up).
    pub async fn add_credits(&self, account: &str, micro: u64) -> Result<(), StoreError> {
        let delta = i64::try_from(micro).map_err(|_| StoreError::TooLarge(0))?;
        self.table
            .update(
                &credits_key(account),
                vec![Update::Add("granted_micro".into(), delta)],
                None,
            )
            .await
            .map(|_| ())
    }

    /// Writes the record and deducts its cost, together (one transaction).
    pub async fn record(
        &self,
        account: &str,
        mut record: UsageRecord,
        cost_micro: u64,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        record.cost_usd = micro_to_usd(cost_micro as i64);
        record.created_at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        // Time-ordered, and monotonic within a process: calls in the same millisecond
        // still list newest first.
        let key = Key::new(
            usage_pk(account),
            format!(
                "{:013}#{}",
                now.timestamp_millis().max(0),
                zerodb_domain::ids::time_ordered_id()
            ),
        );
        let mut item = key.item();
        let mut put = |k: &str, v: Value| {
            item.insert(k.to_owned(), v);
        };
        put("id", record.id.as_str().into());
        put("key_id", record.key_id.as_str().into());
        put("endpoint", record.endpoint.as_str().into());
        put("alias", record.alias.as_str().into());
        put("provider_model", record.provider_model.as_str().into());
        put("stream", record.stream.into());
        put("input_tokens", Value::int(record.input_tokens as i64));
        put("output_tokens", Value::int(record.output_tokens as i64));
        put("cost_micro", Value::int(cost_micro as i64));
        put("latency_ms", Value::int(record.latency_ms as i64));
        put("status", Value::int(i64::from(record.status)));
        if let Some(code) = &record.error_code {
            put("error_code", code.as_str().into());
        }
        put("created_at", record.created_at.as_str().into());
        put(
            TTL,
            Value::int(now.timestamp() + USAGE_RETENTION_DAYS * 24 * 3600),
        );
        if cost_micro == 0 {
            return self.table.put(item, None).await;
        }
        self.table
            .transact(vec![
                TxOp::Put {
                    item,
                    condition: None,
                },
                TxOp::Update {
                    key: credits_key(account),
                    updates: vec![Update::Add("spent_micro".into(), cost_micro as i64)],
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
                Query::partition(usage_pk(account))
                    .backward()
                    .limit(limit)
                    .after(cursor),
            )
            .await?;
        Ok((page.items.iter().map(from_item).collect(), page.cursor))
    }
}

fn from_item(item: &Item) -> UsageRecord {
    let s = |k: &str| {
        item.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let n = |k: &str| item.get(k).and_then(Value::as_i64).unwrap_or(0);
    UsageRecord {
        id: s("id"),
        key_id: s("key_id"),
        endpoint: s("endpoint"),
        alias: s("alias"),
        provider_model: s("provider_model"),
        stream: item.get("stream").and_then(Value::as_bool).unwrap_or(false),
        input_tokens: n("input_tokens").max(0) as u64,
        output_tokens: n("output_tokens").max(0) as u64,
        cost_usd: micro_to_usd(n("cost_micro")),
        latency_ms: n("latency_ms").max(0) as u64,
        status: u16::try_from(n("status")).unwrap_or(0),
        error_code: item
            .get("error_code")
            .and_then(Value::as_str)
            .map(str::to_owned),
        created_at: s("created_at"),
    }
}
