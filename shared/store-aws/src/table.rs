//! `Table` over one DynamoDB table (PK/SK, index GSI1 on GSI1PK/GSI1SK, TTL on `ttl`).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Delete, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update as TxUpdate,
};
use zerodb_domain::store::{
    Condition, Cursor, GSI1_NAME, GSI1PK, GSI1SK, Index, Item, Key, MAX_ITEM_BYTES,
    MAX_TRANSACTION_ITEMS, PK, Page, Query, SK, StoreError, Table, TxOp, Update, Value, is_expired,
    item_size,
};

use crate::convert::{RawItem, from_raw, key_raw, raw_is_expired, string_attrs, to_raw};
use crate::error::{Failure, backend, classify, is_size_message};
use crate::expr::{Expr, normalize_sort, normalize_updates, sort_matches};

/// Default and largest page of a query.
const MAX_PAGE: usize = 1000;
/// Query requests one page may make while skipping expired items, so a partition full
/// of not-yet-deleted expired items cannot hold a request open indefinitely.
const MAX_QUERY_REQUESTS: usize = 10;
/// Times a write retries after clearing an expired item that blocked it.
const PURGE_ATTEMPTS: usize = 3;
/// Times a transaction is retried after losing a race with another transaction.
const CONFLICT_RETRIES: u32 = 3;

const PRIMARY_KEYS: &[&str] = &[PK, SK];
const GSI1_KEYS: &[&str] = &[PK, SK, GSI1PK, GSI1SK];

/// The `Table` port over DynamoDB.
#[derive(Debug, Clone)]
pub struct AwsTable {
    client: Client,
    table: String,
}

impl AwsTable {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        AwsTable {
            client,
            table: table_name.into(),
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// Deletes an item only while it is still expired, so a concurrent rewrite survives.
    async fn purge_expired(&self, key: &Key) -> Result<(), StoreError> {
        let mut x = Expr::new(now());
        let cond = x.expired();
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_raw(key)))
            .condition_expression(cond)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => match classify(&e) {
                Failure::ConditionFailed(_) => Ok(()),
                Failure::Throttled => Err(self.throttled("DeleteItem")),
                _ => Err(backend("DynamoDB", "DeleteItem", e)),
            },
        }
    }

    fn throttled(&self, op: &'static str) -> StoreError {
        tracing::warn!(table = %self.table, op, "DynamoDB is throttling");
        StoreError::Throttled
    }

    fn put_op(
        &self,
        item: &Item,
        condition: Option<&Condition>,
        now: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut x = Expr::new(now);
        let cond = condition.and_then(|c| x.condition(c));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_raw(item)))
            .set_condition_expression(cond)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn update_op(
        &self,
        key: &Key,
        updates: &[Update],
        condition: Option<&Condition>,
        now: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut x = Expr::new(now);
        let expr = x.update(updates);
        let cond = guarded(&mut x, condition);
        let update = TxUpdate::builder()
            .table_name(&self.table)
            .set_key(Some(key_raw(key)))
            .update_expression(expr)
            .condition_expression(cond)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn delete_op(
        &self,
        key: &Key,
        condition: Option<&Condition>,
        now: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut x = Expr::new(now);
        let cond = condition.and_then(|c| x.condition(c));
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_raw(key)))
            .set_condition_expression(cond)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    fn check_op(
        &self,
        key: &Key,
        condition: &Condition,
        now: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut x = Expr::new(now);
        // A ConditionCheck must carry an expression even when the condition is empty.
        let cond = x.condition(condition).unwrap_or_else(|| x.always());
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key_raw(key)))
            .condition_expression(cond)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    fn transact_items(&self, ops: &[TxOp], now: i64) -> Result<Vec<TransactWriteItem>, StoreError> {
        ops.iter()
            .map(|op| match op {
                TxOp::Put { item, condition } => self.put_op(item, condition.as_ref(), now),
                TxOp::Update {
                    key,
                    updates,
                    condition,
                } => self.update_op(key, updates, condition.as_ref(), now),
                TxOp::Delete { key, condition } => self.delete_op(key, condition.as_ref(), now),
                TxOp::Check { key, condition } => self.check_op(key, condition, now),
            })
            .collect()
    }

    /// Decodes a client's cursor into the ExclusiveStartKey of this query, refusing one
    /// that cannot have come from it (DynamoDB would reject it less clearly).
    fn start_key(
        &self,
        cursor: &Cursor,
        q: &Query,
        keys: &KeyNames,
    ) -> Result<RawItem, StoreError> {
        let attrs = cursor.decode().ok_or(StoreError::BadCursor)?;
        let shaped = attrs.len() == keys.all.len()
            && keys
                .all
                .iter()
                .all(|k| attrs.get(*k).is_some_and(|v| !v.is_empty()))
            && attrs.get(keys.pk).is_some_and(|p| *p == q.partition)
            && attrs.get(keys.sk).is_some_and(|s| sort_matches(&q.sort, s));
        if !shaped {
            return Err(StoreError::BadCursor);
        }
        Ok(attrs
            .into_iter()
            .map(|(k, v)| (k, AttributeValue::S(v)))
            .collect())
    }
}

/// The attributes a query reads its keys from.
struct KeyNames {
    pk: &'static str,
    sk: &'static str,
    /// Every attribute of the index's position (LastEvaluatedKey).
    all: &'static [&'static str],
}

impl KeyNames {
    fn of(index: Index) -> Self {
        match index {
            Index::Primary => KeyNames {
                pk: PK,
                sk: SK,
                all: PRIMARY_KEYS,
            },
            Index::Gsi1 => KeyNames {
                pk: GSI1PK,
                sk: GSI1SK,
                all: GSI1_KEYS,
            },
        }
    }
}

#[async_trait]
impl Table for AwsTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        if check_key(key).is_err() {
            return Ok(None);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_raw(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| match classify(&e) {
                Failure::Throttled => self.throttled("GetItem"),
                _ => backend("DynamoDB", "GetItem", e),
            })?;
        let now = now();
        Ok(out.item.map(from_raw).filter(|item| !is_expired(item, now)))
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), StoreError> {
        let size = check_item(&item)?;
        let mut x = Expr::new(now());
        let cond = condition.as_ref().and_then(|c| x.condition(c));
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_raw(&item)))
            .set_condition_expression(cond)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => Err(match classify(&e) {
                Failure::ConditionFailed(_) => StoreError::Conflict,
                Failure::Throttled => self.throttled("PutItem"),
                Failure::TooLarge => StoreError::TooLarge(size.max(MAX_ITEM_BYTES + 1)),
                Failure::Other => backend("DynamoDB", "PutItem", e),
            }),
        }
    }

    async fn update(
        &self,
        key: &Key,
        updates: Vec<Update>,
        condition: Option<Condition>,
    ) -> Result<Item, StoreError> {
        let updates = check_updates(key, updates)?;
        for _ in 0..PURGE_ATTEMPTS {
            let now = now();
            let mut x = Expr::new(now);
            let expr = x.update(&updates);
            let cond = guarded(&mut x, condition.as_ref());
            let res = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_raw(key)))
                .update_expression(expr)
                .condition_expression(cond)
                .set_expression_attribute_names(x.names())
                .set_expression_attribute_values(x.values())
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let err = match res {
                Ok(out) => return Ok(out.attributes.map(from_raw).unwrap_or_else(|| key.item())),
                Err(e) => e,
            };
            match classify(&err) {
                // The guard failed on an item DynamoDB has not yet deleted: the update must
                // start from nothing, so the stale item goes first.
                Failure::ConditionFailed(Some(old)) if raw_is_expired(&old, now) => {
                    tracing::debug!(table = %self.table, "clearing an expired item before updating");
                    self.purge_expired(key).await?;
                }
                Failure::ConditionFailed(_) => return Err(StoreError::Conflict),
                Failure::Throttled => return Err(self.throttled("UpdateItem")),
                Failure::TooLarge => {
                    return Err(StoreError::TooLarge(
                        update_size(key, &updates).max(MAX_ITEM_BYTES + 1),
                    ));
                }
                Failure::Other => return Err(backend("DynamoDB", "UpdateItem", err)),
            }
        }
        // Expired items keep reappearing under this key; let the caller retry later.
        Err(self.throttled("UpdateItem"))
    }

    async fn delete(
        &self,
        key: &Key,
        condition: Option<Condition>,
    ) -> Result<Option<Item>, StoreError> {
        check_key(key)?;
        let now = now();
        let mut x = Expr::new(now);
        let cond = condition.as_ref().and_then(|c| x.condition(c));
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_raw(key)))
            .set_condition_expression(cond)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match res {
            Ok(out) => Ok(out
                .attributes
                .map(from_raw)
                .filter(|old| !is_expired(old, now))),
            Err(e) => Err(match classify(&e) {
                Failure::ConditionFailed(_) => StoreError::Conflict,
                Failure::Throttled => self.throttled("DeleteItem"),
                Failure::TooLarge | Failure::Other => backend("DynamoDB", "DeleteItem", e),
            }),
        }
    }

    async fn query(&self, q: Query) -> Result<Page, StoreError> {
        let keys = KeyNames::of(q.index);
        let mut start = q
            .cursor
            .as_ref()
            .map(|c| self.start_key(c, &q, &keys))
            .transpose()?;
        let limit = q.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
        // Keys are never empty strings, so an empty partition holds nothing (and DynamoDB
        // would refuse the empty key value).
        let Some(sort) = normalize_sort(&q.sort).filter(|_| !q.partition.is_empty()) else {
            return Ok(Page::default());
        };
        let index_name = (q.index == Index::Gsi1).then_some(GSI1_NAME);
        let mut items: Vec<Item> = Vec::new();
        // DynamoDB's Limit counts items before the expiry filter; ask for what is missing
        // and read further (more each time) only when expired items were skipped.
        let mut request_limit = limit;
        for request in 1..=MAX_QUERY_REQUESTS {
            let now = now();
            let mut x = Expr::new(now);
            let key_cond = x.key_condition(keys.pk, keys.sk, &q.partition, &sort);
            let filter = x.not_expired();
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index_name.map(str::to_owned))
                .key_condition_expression(key_cond)
                .filter_expression(filter)
                .set_expression_attribute_names(x.names())
                .set_expression_attribute_values(x.values())
                .scan_index_forward(q.forward)
                // Index reads cannot be strongly consistent in DynamoDB.
                .consistent_read(q.index == Index::Primary)
                .limit(i32::try_from(request_limit).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| match classify(&e) {
                    Failure::Throttled => self.throttled("Query"),
                    _ => backend("DynamoDB", "Query", e),
                })?;
            items.extend(
                out.items
                    .unwrap_or_default()
                    .into_iter()
                    .map(from_raw)
                    .filter(|i| !is_expired(i, now)),
            );
            let more = out.last_evaluated_key.filter(|k| !k.is_empty());
            if items.len() >= limit {
                let truncated = items.len() > limit;
                items.truncate(limit);
                let cursor = if truncated || more.is_some() {
                    Some(item_cursor(items.last(), &keys)?)
                } else {
                    None
                };
                return Ok(Page { items, cursor });
            }
            let Some(last_key) = more else {
                return Ok(Page {
                    items,
                    cursor: None,
                });
            };
            if request == MAX_QUERY_REQUESTS {
                return Ok(Page {
                    items,
                    cursor: Some(raw_cursor(&last_key)?),
                });
            }
            start = Some(last_key);
            request_limit = (request_limit * 2)
                .min(MAX_PAGE)
                .max(limit.saturating_sub(items.len()));
        }
        Ok(Page {
            items,
            cursor: None,
        })
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), StoreError> {
        if ops.len() > MAX_TRANSACTION_ITEMS {
            return Err(StoreError::TooManyOperations(ops.len()));
        }
        if ops.is_empty() {
            return Ok(());
        }
        // Refused here as the embedded store refuses it, rather than as DynamoDB's
        // untyped ValidationException.
        let size = zerodb_domain::store::transaction_size(&ops);
        if size > zerodb_domain::store::MAX_TRANSACTION_BYTES {
            return Err(StoreError::TransactionTooLarge(size));
        }
        let ops = check_transaction(ops)?;
        let mut purges = 0;
        let mut conflicts = 0;
        loop {
            let now = now();
            let items = self.transact_items(&ops, now)?;
            let res = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                // Makes the SDK's own retries idempotent: a retry of a commit whose reply
                // was lost must not fail its conditions against its own writes.
                .client_request_token(request_token())
                .send()
                .await;
            let err = match res {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let reasons = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    c.cancellation_reasons().to_vec()
                }
                _ => {
                    return Err(match classify(&err) {
                        Failure::Throttled => self.throttled("TransactWriteItems"),
                        Failure::TooLarge => StoreError::TooLarge(MAX_ITEM_BYTES + 1),
                        _ => backend("DynamoDB", "TransactWriteItems", err),
                    });
                }
            };
            let expired = expired_update_keys(&ops, &reasons, now);
            if !expired.is_empty() && purges < PURGE_ATTEMPTS {
                purges += 1;
                tracing::debug!(table = %self.table, count = expired.len(), "clearing expired items before a transaction");
                for key in expired {
                    self.purge_expired(key).await?;
                }
                continue;
            }
            let has = |code: &str| reasons.iter().any(|r| r.code() == Some(code));
            if has("ConditionalCheckFailed") {
                return Err(StoreError::Conflict);
            }
            if has("TransactionConflict") {
                if conflicts < CONFLICT_RETRIES {
                    conflicts += 1;
                    tokio::time::sleep(backoff(conflicts)).await;
                    continue;
                }
                return Err(self.throttled("TransactWriteItems"));
            }
            if has("ThrottlingError")
                || has("ProvisionedThroughputExceeded")
                || has("RequestLimitExceeded")
            {
                return Err(self.throttled("TransactWriteItems"));
            }
            if reasons.iter().any(|r| {
                r.code() == Some("ValidationError") && r.message().is_some_and(is_size_message)
            }) {
                return Err(StoreError::TooLarge(MAX_ITEM_BYTES + 1));
            }
            return Err(backend("DynamoDB", "TransactWriteItems", err));
        }
    }
}

/// The update's own condition behind a guard that fails on an expired item, so the
/// caller can clear it and start the item afresh.
fn guarded(x: &mut Expr, condition: Option<&Condition>) -> String {
    let live = x.not_expired();
    match condition.and_then(|c| x.condition(c)) {
        Some(c) => format!("{live} AND {c}"),
        None => live,
    }
}

/// Keys of updates whose guard failed on an expired item.
fn expired_update_keys<'a>(
    ops: &'a [TxOp],
    reasons: &[CancellationReason],
    now: i64,
) -> Vec<&'a Key> {
    ops.iter()
        .zip(reasons)
        .filter_map(|(op, r)| match op {
            TxOp::Update { key, .. }
                if r.code() == Some("ConditionalCheckFailed")
                    && r.item().is_some_and(|old| raw_is_expired(old, now)) =>
            {
                Some(key)
            }
            _ => None,
        })
        .collect()
}

/// DynamoDB refuses empty strings as key values, so such a key names no item.
fn check_key(key: &Key) -> Result<(), StoreError> {
    if key.pk.is_empty() || key.sk.is_empty() {
        Err(StoreError::MissingKey)
    } else {
        Ok(())
    }
}

/// Validates an item to be written, returning its size.
fn check_item(item: &Item) -> Result<usize, StoreError> {
    check_key(&Key::of(item).ok_or(StoreError::MissingKey)?)?;
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::TooLarge(size));
    }
    Ok(size)
}

/// Normalises updates and refuses what DynamoDB would refuse less clearly.
fn check_updates(key: &Key, updates: Vec<Update>) -> Result<Vec<Update>, StoreError> {
    check_key(key)?;
    let updates = normalize_updates(updates);
    if let Some(attr) = updates
        .iter()
        .map(update_attr)
        .find(|a| *a == PK || *a == SK)
    {
        return Err(StoreError::Backend(anyhow::anyhow!(
            "an update may not change the key attribute {attr}"
        )));
    }
    let size = update_size(key, &updates);
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::TooLarge(size));
    }
    Ok(updates)
}

fn update_attr(u: &Update) -> &str {
    match u {
        Update::Set(a, _) | Update::Remove(a) | Update::Add(a, _) => a,
    }
}

/// A lower bound of the item's size after the update: its key and what the update sets.
fn update_size(key: &Key, updates: &[Update]) -> usize {
    let mut item = key.item();
    for u in updates {
        match u {
            Update::Set(a, v) => {
                item.insert(a.clone(), v.clone());
            }
            Update::Add(a, n) => {
                item.insert(a.clone(), Value::int(*n));
            }
            Update::Remove(_) => {}
        }
    }
    item_size(&item)
}

/// Validates a transaction and folds every `Check` into the other operation on the same
/// item, if any: DynamoDB refuses a transaction naming one item twice, and since all its
/// conditions see the state before the transaction, an added condition is equivalent.
/// Two writes to one item have no such equivalent and are refused before sending.
fn check_transaction(ops: Vec<TxOp>) -> Result<Vec<TxOp>, StoreError> {
    let mut by_key: HashMap<Key, usize> = HashMap::new();
    let mut out: Vec<TxOp> = Vec::with_capacity(ops.len());
    for op in ops {
        let (key, op) = match op {
            TxOp::Put { item, condition } => {
                check_item(&item)?;
                let key = Key::of(&item).ok_or(StoreError::MissingKey)?;
                (key, TxOp::Put { item, condition })
            }
            TxOp::Update {
                key,
                updates,
                condition,
            } => {
                let updates = check_updates(&key, updates)?;
                (
                    key.clone(),
                    TxOp::Update {
                        key,
                        updates,
                        condition,
                    },
                )
            }
            TxOp::Delete { key, condition } => {
                check_key(&key)?;
                (key.clone(), TxOp::Delete { key, condition })
            }
            TxOp::Check { key, condition } => {
                check_key(&key)?;
                (key.clone(), TxOp::Check { key, condition })
            }
        };
        let Some(&at) = by_key.get(&key) else {
            by_key.insert(key, out.len());
            out.push(op);
            continue;
        };
        let merged = match (std::mem::replace(&mut out[at], placeholder()), op) {
            (mut write, TxOp::Check { condition, .. })
            | (TxOp::Check { condition, .. }, mut write) => {
                add_condition(&mut write, condition);
                write
            }
            _ => {
                return Err(StoreError::Backend(anyhow::anyhow!(
                    "a transaction may not write one item twice"
                )));
            }
        };
        out[at] = merged;
    }
    Ok(out)
}

fn placeholder() -> TxOp {
    TxOp::Check {
        key: Key::new("", ""),
        condition: Condition::All(Vec::new()),
    }
}

fn add_condition(op: &mut TxOp, extra: Condition) {
    let slot = match op {
        TxOp::Put { condition, .. }
        | TxOp::Update { condition, .. }
        | TxOp::Delete { condition, .. } => condition,
        TxOp::Check { condition, .. } => {
            *condition = Condition::All(vec![
                std::mem::replace(condition, Condition::All(Vec::new())),
                extra,
            ]);
            return;
        }
    };
    *slot = Some(match slot.take() {
        Some(c) => Condition::All(vec![c, extra]),
        None => extra,
    });
}

/// A cursor resuming right after `item`.
fn item_cursor(item: Option<&Item>, keys: &KeyNames) -> Result<Cursor, StoreError> {
    let attrs = item
        .and_then(|i| string_attrs(i, keys.all))
        .ok_or_else(|| {
            StoreError::Backend(anyhow::anyhow!(
                "a queried item lacks the string key attributes of its index"
            ))
        })?;
    Ok(Cursor::encode(&attrs))
}

/// A cursor from DynamoDB's LastEvaluatedKey.
fn raw_cursor(key: &RawItem) -> Result<Cursor, StoreError> {
    let attrs: Option<BTreeMap<String, String>> = key
        .iter()
        .map(|(k, v)| v.as_s().ok().map(|s| (k.clone(), s.clone())))
        .collect();
    attrs.map(|a| Cursor::encode(&a)).ok_or_else(|| {
        StoreError::Backend(anyhow::anyhow!(
            "DynamoDB returned a non-string LastEvaluatedKey"
        ))
    })
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Backend(anyhow::Error::new(e).context("building a DynamoDB transaction item"))
}

/// Epoch seconds by the system clock, DynamoDB's TTL reference.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A ClientRequestToken unique to one transaction attempt (at most 36 characters).
fn request_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // RandomState is seeded from OS randomness, so two processes starting the same
    // nanosecond still differ.
    let salt = RandomState::new().hash_one((nanos, n, std::process::id()));
    format!("{nanos:016x}{salt:016x}")
}

/// Exponential backoff with jitter, from 20 ms.
fn backoff(attempt: u32) -> Duration {
    let base = 20u64 << attempt.min(6);
    let jitter = RandomState::new().hash_one(attempt) % base;
    Duration::from_millis(base + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_tokens_fit_and_differ() {
        let (a, b) = (request_token(), request_token());
        assert!(a.len() <= 36 && b.len() <= 36);
        assert_ne!(a, b);
    }

    #[test]
    fn items_are_validated_before_sending() {
        let mut item = Key::new("p", "s").item();
        assert!(check_item(&item).is_ok());
        item.insert("big".into(), Value::B(vec![0; MAX_ITEM_BYTES]));
        assert!(matches!(check_item(&item), Err(StoreError::TooLarge(_))));
        item.remove(PK);
        assert!(matches!(check_item(&item), Err(StoreError::MissingKey)));
    }

    #[test]
    fn checks_fold_into_the_write_on_their_item() {
        let k = Key::new("p", "s");
        let ops = vec![
            TxOp::Check {
                key: k.clone(),
                condition: Condition::Exists,
            },
            TxOp::Update {
                key: k.clone(),
                updates: vec![Update::Add("v".into(), 1)],
                condition: None,
            },
            TxOp::Check {
                key: k.clone(),
                condition: Condition::Equals("v".into(), Value::int(1)),
            },
            TxOp::Delete {
                key: Key::new("p", "other"),
                condition: None,
            },
        ];
        let out = check_transaction(ops).expect("foldable");
        assert_eq!(out.len(), 2);
        let TxOp::Update {
            condition: Some(c), ..
        } = &out[0]
        else {
            panic!("update first: {out:?}")
        };
        assert_eq!(
            *c,
            Condition::All(vec![
                Condition::Exists,
                Condition::Equals("v".into(), Value::int(1))
            ])
        );
        let twice = vec![
            TxOp::Delete {
                key: k.clone(),
                condition: None,
            },
            TxOp::Update {
                key: k,
                updates: vec![],
                condition: None,
            },
        ];
        assert!(matches!(
            check_transaction(twice),
            Err(StoreError::Backend(_))
        ));
    }
}
