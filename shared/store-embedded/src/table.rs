//! The DynamoDB-shaped `Table` over the `items` table.
//!
//! Key attributes are also kept in columns (`pk`, `sk`, `gsi1pk`, `gsi1sk`, `ttl`) so
//! SQLite's B-trees answer key lookups, partition ranges and index queries, while the
//! whole item sits in `data` in the binary form of `codec`. Writes are checked and encoded
//! on the caller's task where possible, so the writer thread only does the SQL.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params};
use zerodb_domain::store::{
    Condition, Cursor, GSI1PK, GSI1SK, Index, Item, Key, MAX_ITEM_BYTES, MAX_TRANSACTION_ITEMS, PK,
    Page, Query, SK, SortKey, StoreError, TTL, Table, TxOp, Update, Value, item_size,
};

use crate::Inner;
use crate::codec::{decode_item, encode_item};
use crate::conn::backend;

/// Most items in one page, and the page size when the query names none.
pub const MAX_PAGE_ITEMS: usize = 1000;
/// Expired items removed per sweep transaction, so a large sweep never holds the write
/// lock for long.
const SWEEP_BATCH: usize = 500;
/// DynamoDB's limits on key sizes and attribute nesting, enforced so the embedded store
/// refuses what DynamoDB would.
const MAX_PARTITION_KEY_BYTES: usize = 2048;
const MAX_SORT_KEY_BYTES: usize = 1024;
const MAX_NESTING: usize = 32;

const UPSERT: &str =
    "INSERT INTO items(pk, sk, gsi1pk, gsi1sk, ttl, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT(pk, sk) DO UPDATE SET gsi1pk = excluded.gsi1pk, gsi1sk = excluded.gsi1sk,
     ttl = excluded.ttl, data = excluded.data";
const SELECT_ONE: &str = "SELECT ttl, data FROM items WHERE pk = ?1 AND sk = ?2";
const SELECT_TTL: &str = "SELECT ttl FROM items WHERE pk = ?1 AND sk = ?2";
const DELETE_ONE: &str = "DELETE FROM items WHERE pk = ?1 AND sk = ?2";
const DELETE_RETURNING: &str = "DELETE FROM items WHERE pk = ?1 AND sk = ?2 RETURNING ttl, data";

/// The `Table` port over the embedded database.
pub struct EmbeddedTable {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn invalid(msg: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(anyhow!("{msg}"))
}

fn live(ttl: Option<i64>, now: i64) -> bool {
    ttl.is_none_or(|t| t > now)
}

fn check_key(key: &Key) -> Result<(), StoreError> {
    if key.pk.is_empty() || key.sk.is_empty() {
        return Err(invalid("key attributes cannot be empty strings"));
    }
    if key.pk.len() > MAX_PARTITION_KEY_BYTES {
        return Err(invalid(format_args!(
            "partition key is over {MAX_PARTITION_KEY_BYTES} bytes"
        )));
    }
    if key.sk.len() > MAX_SORT_KEY_BYTES {
        return Err(invalid(format_args!(
            "sort key is over {MAX_SORT_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

fn nesting_ok(value: &Value, depth: usize) -> bool {
    if depth > MAX_NESTING {
        return false;
    }
    match value {
        Value::L(list) => list.iter().all(|v| nesting_ok(v, depth + 1)),
        Value::M(map) => map.values().all(|v| nesting_ok(v, depth + 1)),
        _ => true,
    }
}

/// An item checked and encoded for the `items` table.
struct Row {
    key: Key,
    gsi: Option<(String, String)>,
    ttl: Option<i64>,
    data: Vec<u8>,
}

impl Row {
    fn of(item: &Item) -> Result<Row, StoreError> {
        let key = Key::of(item).ok_or(StoreError::MissingKey)?;
        check_key(&key)?;
        // Depth first: `item_size` recurses without a bound.
        if !item.values().all(|v| nesting_ok(v, 1)) {
            return Err(invalid(format_args!(
                "item nests deeper than {MAX_NESTING} levels"
            )));
        }
        let size = item_size(item);
        if size > MAX_ITEM_BYTES {
            return Err(StoreError::TooLarge(size));
        }
        let index_key = |name: &str| -> Result<Option<String>, StoreError> {
            match item.get(name) {
                None => Ok(None),
                Some(Value::S(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(Value::S(_)) => Err(invalid(format_args!(
                    "index key {name} cannot be an empty string"
                ))),
                Some(_) => Err(invalid(format_args!("index key {name} must be a string"))),
            }
        };
        // As in DynamoDB, an item is in the index only when it has both index keys.
        let gsi = match (index_key(GSI1PK)?, index_key(GSI1SK)?) {
            (Some(p), Some(s)) => Some((p, s)),
            _ => None,
        };
        // The same reading of `ttl` as `is_expired`, so SQL filters agree with it.
        let ttl = item.get(TTL).and_then(Value::as_i64);
        Ok(Row {
            key,
            gsi,
            ttl,
            data: encode_item(item, size),
        })
    }

    fn write(&self, conn: &Connection) -> Result<(), StoreError> {
        let (gpk, gsk) = match &self.gsi {
            Some((p, s)) => (Some(p.as_str()), Some(s.as_str())),
            None => (None, None),
        };
        conn.prepare_cached(UPSERT)
            .and_then(|mut s| {
                s.execute(params![
                    self.key.pk,
                    self.key.sk,
                    gpk,
                    gsk,
                    self.ttl,
                    self.data
                ])
            })
            .map_err(backend)?;
        Ok(())
    }
}

/// Whether evaluating the condition needs the item's attributes, not just its existence.
fn needs_attributes(c: &Condition) -> bool {
    match c {
        Condition::NotExists | Condition::Exists => false,
        Condition::Equals(..)
        | Condition::AttributeNotExists(_)
        | Condition::AttributeExists(_)
        | Condition::AtLeast(..) => true,
        Condition::All(all) => all.iter().any(needs_attributes),
    }
}

fn holds(c: &Condition, current: Option<&Item>) -> bool {
    match c {
        Condition::NotExists => current.is_none(),
        Condition::Exists => current.is_some(),
        Condition::Equals(attr, v) => current
            .and_then(|i| i.get(attr))
            .is_some_and(|x| x.same_as(v)),
        Condition::AttributeNotExists(attr) => current.is_none_or(|i| !i.contains_key(attr)),
        Condition::AttributeExists(attr) => current.is_some_and(|i| i.contains_key(attr)),
        Condition::AtLeast(attr, n) => current
            .and_then(|i| i.get(attr))
            .and_then(Value::as_i64)
            .is_some_and(|x| x >= *n),
        Condition::All(all) => all.iter().all(|c| holds(c, current)),
    }
}

fn blob<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r [u8], StoreError> {
    row.get_ref(i)
        .and_then(|v| Ok(v.as_blob()?))
        .map_err(backend)
}

/// The live item under `key`, if any (an expired one is absent).
fn load_live(conn: &Connection, key: &Key, now: i64) -> Result<Option<Item>, StoreError> {
    let mut stmt = conn.prepare_cached(SELECT_ONE).map_err(backend)?;
    let mut rows = stmt.query(params![key.pk, key.sk]).map_err(backend)?;
    let Some(row) = rows.next().map_err(backend)? else {
        return Ok(None);
    };
    let ttl: Option<i64> = row.get(0).map_err(backend)?;
    if !live(ttl, now) {
        return Ok(None);
    }
    let data = blob(row, 1)?;
    Ok(Some(decode_item(data, key.pk.clone(), key.sk.clone())?))
}

/// Fails with `Conflict` unless the condition holds for the live item under `key`.
fn check(conn: &Connection, key: &Key, condition: &Condition, now: i64) -> Result<(), StoreError> {
    let ok = if needs_attributes(condition) {
        holds(condition, load_live(conn, key, now)?.as_ref())
    } else {
        let ttl: Option<Option<i64>> = conn
            .prepare_cached(SELECT_TTL)
            .and_then(|mut s| {
                s.query_row(params![key.pk, key.sk], |r| r.get(0))
                    .optional()
            })
            .map_err(backend)?;
        let exists = ttl.is_some_and(|t| live(t, now));
        // Only existence matters here, so an empty stand-in item is enough.
        holds(condition, exists.then(Item::new).as_ref())
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

fn check_update_target(updates: &[Update]) -> Result<(), StoreError> {
    for u in updates {
        let (Update::Set(attr, _) | Update::Remove(attr) | Update::Add(attr, _)) = u;
        if attr == PK || attr == SK {
            return Err(invalid(format_args!(
                "cannot update {attr}: it is part of the key"
            )));
        }
    }
    Ok(())
}

fn add_number(current: &str, delta: i64) -> Result<Value, StoreError> {
    if let Ok(n) = current.parse::<i128>() {
        return n
            .checked_add(i128::from(delta))
            .map(|sum| Value::N(sum.to_string()))
            .ok_or_else(|| invalid("number overflow in ADD"));
    }
    match current.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Value::float(f + delta as f64)),
        _ => Err(invalid("ADD on an attribute that is not a valid number")),
    }
}

fn apply(item: &mut Item, updates: Vec<Update>) -> Result<(), StoreError> {
    for u in updates {
        match u {
            Update::Set(attr, v) => {
                item.insert(attr, v);
            }
            Update::Remove(attr) => {
                item.remove(&attr);
            }
            Update::Add(attr, delta) => {
                let next = match item.get(&attr) {
                    None => Value::int(delta),
                    Some(Value::N(n)) => add_number(n, delta)?,
                    Some(_) => {
                        return Err(invalid(format_args!(
                            "ADD on {attr}, which is not a number"
                        )));
                    }
                };
                item.insert(attr, next);
            }
        }
    }
    Ok(())
}

fn update_in(
    conn: &Connection,
    key: &Key,
    updates: Vec<Update>,
    condition: Option<&Condition>,
    now: i64,
) -> Result<Item, StoreError> {
    let current = load_live(conn, key, now)?;
    if let Some(c) = condition
        && !holds(c, current.as_ref())
    {
        return Err(StoreError::Conflict);
    }
    let mut item = current.unwrap_or_else(|| key.item());
    apply(&mut item, updates)?;
    Row::of(&item)?.write(conn)?;
    Ok(item)
}

fn delete_in(
    conn: &Connection,
    key: &Key,
    condition: Option<&Condition>,
    now: i64,
) -> Result<Option<Item>, StoreError> {
    if let Some(c) = condition {
        let current = load_live(conn, key, now)?;
        if !holds(c, current.as_ref()) {
            return Err(StoreError::Conflict);
        }
        conn.prepare_cached(DELETE_ONE)
            .and_then(|mut s| s.execute(params![key.pk, key.sk]))
            .map_err(backend)?;
        return Ok(current);
    }
    let mut stmt = conn.prepare_cached(DELETE_RETURNING).map_err(backend)?;
    let mut rows = stmt.query(params![key.pk, key.sk]).map_err(backend)?;
    let old = match rows.next().map_err(backend)? {
        Some(row) => {
            let ttl: Option<i64> = row.get(0).map_err(backend)?;
            if live(ttl, now) {
                let data = blob(row, 1)?;
                Some(decode_item(data, key.pk.clone(), key.sk.clone())?)
            } else {
                None
            }
        }
        None => None,
    };
    // Step to the end so the DELETE is complete before the statement is reset.
    while rows.next().map_err(backend)?.is_some() {}
    Ok(old)
}

/// A transaction operation checked and encoded ahead of the writer thread.
enum Op {
    Put(Row, Option<Condition>),
    Update(Key, Vec<Update>, Option<Condition>),
    Delete(Key, Option<Condition>),
    Check(Key, Condition),
}

fn prepare_ops(ops: Vec<TxOp>) -> Result<Vec<Op>, StoreError> {
    if ops.len() > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::TooManyOperations(ops.len()));
    }
    let size = zerodb_domain::store::transaction_size(&ops);
    if size > zerodb_domain::store::MAX_TRANSACTION_BYTES {
        return Err(StoreError::TransactionTooLarge(size));
    }
    let mut keys = HashSet::with_capacity(ops.len());
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let op = match op {
            TxOp::Put { item, condition } => Op::Put(Row::of(&item)?, condition),
            TxOp::Update {
                key,
                updates,
                condition,
            } => {
                check_key(&key)?;
                check_update_target(&updates)?;
                Op::Update(key, updates, condition)
            }
            TxOp::Delete { key, condition } => {
                check_key(&key)?;
                Op::Delete(key, condition)
            }
            TxOp::Check { key, condition } => {
                check_key(&key)?;
                Op::Check(key, condition)
            }
        };
        let key = match &op {
            Op::Put(row, _) => &row.key,
            Op::Update(key, ..) | Op::Delete(key, _) | Op::Check(key, _) => key,
        };
        // DynamoDB refuses a transaction touching one item twice; so do we, rather than
        // give the operations an order DynamoDB would not.
        if !keys.insert(key.clone()) {
            return Err(invalid(format_args!(
                "transaction has more than one operation on {key}"
            )));
        }
        out.push(op);
    }
    Ok(out)
}

fn transact_in(conn: &Connection, ops: Vec<Op>, now: i64) -> Result<(), StoreError> {
    // Keys are distinct, so checking each condition just before its own write sees the
    // same state as DynamoDB checking them all up front; any failure rolls back the
    // job's savepoint, which undoes the earlier operations.
    for op in ops {
        match op {
            Op::Put(row, condition) => {
                if let Some(c) = &condition {
                    check(conn, &row.key, c, now)?;
                }
                row.write(conn)?;
            }
            Op::Update(key, updates, condition) => {
                update_in(conn, &key, updates, condition.as_ref(), now)?;
            }
            Op::Delete(key, condition) => {
                if let Some(c) = &condition {
                    check(conn, &key, c, now)?;
                }
                conn.prepare_cached(DELETE_ONE)
                    .and_then(|mut s| s.execute(params![key.pk, key.sk]))
                    .map_err(backend)?;
            }
            Op::Check(key, condition) => check(conn, &key, &condition, now)?,
        }
    }
    Ok(())
}

/// The smallest string above every string starting with `prefix` (in UTF-8 byte order,
/// which is code point order), or `None` when no such bound exists.
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Where a cursor says the previous page stopped.
struct After {
    pk: String,
    sk: String,
    gsi1sk: Option<String>,
}

fn read_cursor(cursor: &Cursor, index: Index, partition: &str) -> Result<After, StoreError> {
    let mut attrs = cursor.decode().ok_or(StoreError::BadCursor)?;
    let mut take = |name: &str| attrs.remove(name).ok_or(StoreError::BadCursor);
    let pk = take(PK)?;
    let sk = take(SK)?;
    let (own_partition, gsi1sk) = match index {
        Index::Primary => (pk.clone(), None),
        Index::Gsi1 => (take(GSI1PK)?, Some(take(GSI1SK)?)),
    };
    // A cursor from another partition's query cannot mean a position in this one.
    if own_partition != partition {
        return Err(StoreError::BadCursor);
    }
    Ok(After { pk, sk, gsi1sk })
}

fn cursor_of(item: &Item, index: Index) -> Result<Cursor, StoreError> {
    let names: &[&str] = match index {
        Index::Primary => &[PK, SK],
        Index::Gsi1 => &[PK, SK, GSI1PK, GSI1SK],
    };
    let mut attrs = BTreeMap::new();
    for name in names {
        let value = item
            .get(*name)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("returned item lacks its key"))?;
        attrs.insert((*name).to_owned(), value.to_owned());
    }
    Ok(Cursor::encode(&attrs))
}

/// The smallest string above `s`: `s` followed by NUL, in byte order.
fn successor(s: &str) -> String {
    let mut next = String::with_capacity(s.len() + 1);
    next.push_str(s);
    next.push('\0');
    next
}

/// The scanned key range, as tuples of the index columns (`[sk]`, or
/// `[gsi1sk, pk, sk]` for the index): `lo` inclusive, `hi` exclusive. Every condition
/// (sort key and cursor alike) is folded into one lower and one upper bound here, because
/// SQLite seeks on only one bound per side and would otherwise filter, not seek: paging
/// deep into a large partition would rescan it from the start on every page.
#[derive(Default)]
struct Range {
    lo: Option<Vec<String>>,
    hi: Option<Vec<String>>,
}

impl Range {
    fn of_sort(sort: &SortKey) -> Result<Range, StoreError> {
        let one = |s: String| Some(vec![s]);
        Ok(match sort {
            SortKey::Any => Range::default(),
            SortKey::BeginsWith(prefix) => Range {
                lo: one(prefix.clone()),
                hi: prefix_end(prefix).map(|e| vec![e]),
            },
            // Bounds in the wrong order match nothing (lo ≥ successor(hi)), as the AWS
            // adapter answers them.
            SortKey::Between(lo, hi) => Range {
                lo: one(lo.clone()),
                hi: one(successor(hi)),
            },
            SortKey::Gt(v) => Range {
                lo: one(successor(v)),
                hi: None,
            },
            SortKey::Ge(v) => Range {
                lo: one(v.clone()),
                hi: None,
            },
            SortKey::Lt(v) => Range {
                lo: None,
                hi: one(v.clone()),
            },
            SortKey::Le(v) => Range {
                lo: None,
                hi: one(successor(v)),
            },
        })
    }

    /// Widens sort-key bounds to index tuples: `g` becomes `(g, "", "")`, the first
    /// tuple with that index sort key.
    fn widen(&mut self, arity: usize) {
        for bound in [&mut self.lo, &mut self.hi].into_iter().flatten() {
            bound.resize(arity, String::new());
        }
    }

    fn raise_lo(&mut self, to: Vec<String>) {
        if self.lo.as_ref().is_none_or(|lo| to > *lo) {
            self.lo = Some(to);
        }
    }

    fn lower_hi(&mut self, to: Vec<String>) {
        if self.hi.as_ref().is_none_or(|hi| to < *hi) {
            self.hi = Some(to);
        }
    }
}

/// The SQL and parameters of one query page (fetching one row more than the page, to
/// learn cheaply whether another page follows).
fn query_sql(
    q: &Query,
    after: Option<&After>,
    fetch: usize,
    now: i64,
) -> Result<(String, Vec<SqlValue>), StoreError> {
    let (pcol, cols, order) = match q.index {
        Index::Primary => ("pk", "sk", ["sk"].as_slice()),
        // Index order is (gsi1sk, pk, sk): the table key breaks ties exactly.
        Index::Gsi1 => (
            "gsi1pk",
            "(gsi1sk, pk, sk)",
            ["gsi1sk", "pk", "sk"].as_slice(),
        ),
    };
    let mut range = Range::of_sort(&q.sort)?;
    range.widen(order.len());
    if let Some(after) = after {
        let mut at = match (q.index, &after.gsi1sk) {
            (Index::Gsi1, Some(g)) => vec![g.clone(), after.pk.clone(), after.sk.clone()],
            _ => vec![after.sk.clone()],
        };
        if q.forward {
            if let Some(last) = at.last_mut() {
                *last = successor(last);
            }
            range.raise_lo(at);
        } else {
            range.lower_hi(at);
        }
    }
    let mut sql =
        format!("SELECT pk, sk, data FROM items WHERE {pcol} = ?1 AND (ttl IS NULL OR ttl > ?2)");
    let mut args = vec![SqlValue::Text(q.partition.clone()), SqlValue::Integer(now)];
    for (op, bound) in [(">=", range.lo), ("<", range.hi)] {
        let Some(bound) = bound else { continue };
        let first = args.len() + 1;
        let marks: Vec<String> = (first..first + bound.len())
            .map(|i| format!("?{i}"))
            .collect();
        args.extend(bound.into_iter().map(SqlValue::Text));
        if marks.len() == 1 {
            sql.push_str(&format!(" AND {cols} {op} {}", marks[0]));
        } else {
            sql.push_str(&format!(" AND {cols} {op} ({})", marks.join(", ")));
        }
    }
    let dir = if q.forward { "ASC" } else { "DESC" };
    let order: Vec<String> = order.iter().map(|c| format!("{c} {dir}")).collect();
    sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
    args.push(SqlValue::Integer(fetch as i64));
    sql.push_str(&format!(" LIMIT ?{}", args.len()));
    Ok((sql, args))
}

fn query_in(
    conn: &Connection,
    q: &Query,
    after: Option<&After>,
    now: i64,
) -> Result<Page, StoreError> {
    let limit = q.limit.unwrap_or(MAX_PAGE_ITEMS).clamp(1, MAX_PAGE_ITEMS);
    let (sql, args) = query_sql(q, after, limit + 1, now)?;
    let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(args))
        .map_err(backend)?;
    let mut items = Vec::with_capacity(limit.min(64));
    let mut more = false;
    while let Some(row) = rows.next().map_err(backend)? {
        if items.len() == limit {
            more = true;
            break;
        }
        let pk: String = row.get(0).map_err(backend)?;
        let sk: String = row.get(1).map_err(backend)?;
        let data = blob(row, 2)?;
        items.push(decode_item(data, pk, sk)?);
    }
    let cursor = match (more, items.last()) {
        (true, Some(last)) => Some(cursor_of(last, q.index)?),
        _ => None,
    };
    Ok(Page { items, cursor })
}

/// Deletes expired items in bounded transactions, as DynamoDB's TTL sweeper does;
/// returns how many went. Reads never depend on it: expired items are hidden anyway.
pub(crate) async fn sweep_expired(inner: &Inner) -> Result<usize, StoreError> {
    let mut total = 0;
    loop {
        let now = now_secs();
        let removed = inner
            .writer
            .write(move |conn| {
                conn.prepare_cached(
                    "DELETE FROM items WHERE (pk, sk) IN
                         (SELECT pk, sk FROM items WHERE ttl IS NOT NULL AND ttl <= ?1 LIMIT ?2)",
                )
                .and_then(|mut s| s.execute(params![now, SWEEP_BATCH as i64]))
                .map_err(backend)
            })
            .await?;
        total += removed;
        if removed < SWEEP_BATCH {
            break;
        }
    }
    if total > 0 {
        tracing::debug!(removed = total, "swept expired items");
    }
    Ok(total)
}

impl EmbeddedTable {
    /// See [`crate::EmbeddedStore::sweep_expired`].
    pub async fn sweep_expired(&self) -> Result<usize, StoreError> {
        sweep_expired(&self.inner).await
    }
}

#[async_trait]
impl Table for EmbeddedTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        check_key(key)?;
        let key = key.clone();
        self.inner
            .readers
            .read(move |conn| load_live(conn, &key, now_secs()))
            .await
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), StoreError> {
        let row = Row::of(&item)?;
        drop(item);
        self.inner
            .writer
            .write(move |conn| {
                if let Some(c) = &condition {
                    check(conn, &row.key, c, now_secs())?;
                }
                row.write(conn)
            })
            .await
    }

    async fn update(
        &self,
        key: &Key,
        updates: Vec<Update>,
        condition: Option<Condition>,
    ) -> Result<Item, StoreError> {
        check_key(key)?;
        check_update_target(&updates)?;
        let key = key.clone();
        self.inner
            .writer
            .write(move |conn| update_in(conn, &key, updates, condition.as_ref(), now_secs()))
            .await
    }

    async fn delete(
        &self,
        key: &Key,
        condition: Option<Condition>,
    ) -> Result<Option<Item>, StoreError> {
        check_key(key)?;
        let key = key.clone();
        self.inner
            .writer
            .write(move |conn| delete_in(conn, &key, condition.as_ref(), now_secs()))
            .await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        if query.partition.is_empty() {
            return Err(invalid("the partition key of a query cannot be empty"));
        }
        let after = query
            .cursor
            .as_ref()
            .map(|c| read_cursor(c, query.index, &query.partition))
            .transpose()?;
        self.inner
            .readers
            .read(move |conn| query_in(conn, &query, after.as_ref(), now_secs()))
            .await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), StoreError> {
        let ops = prepare_ops(ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        self.inner
            .writer
            .write(move |conn| transact_in(conn, ops, now_secs()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_string_after_the_prefix_range() {
        assert_eq!(prefix_end("ITEM#").as_deref(), Some("ITEM$"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_end("\u{10FFFF}\u{10FFFF}"), None);
        assert_eq!(prefix_end(""), None);
        // Every string with the prefix sorts below the bound, byte-wise.
        for s in ["ab", "ab\u{10FFFF}\u{10FFFF}", "abzzz", "ab\u{7F}"] {
            assert!(s.as_bytes() < prefix_end("ab").unwrap().as_bytes());
        }
    }

    #[test]
    fn add_keeps_integers_exact_and_handles_decimals() {
        assert_eq!(add_number("41", 1).unwrap(), Value::N("42".into()));
        assert_eq!(
            add_number("99999999999999999999999999", 1).unwrap(),
            Value::N("100000000000000000000000000".into())
        );
        assert_eq!(add_number("1.5", 1).unwrap().as_f64(), Some(2.5));
        assert!(add_number("abc", 1).is_err());
        assert!(add_number("NaN", 1).is_err());
    }

    #[test]
    fn conditions_treat_absent_items_as_dynamodb_does() {
        let mut item = Key::new("p", "s").item();
        item.insert("v".into(), Value::N("1.0".into()));
        let present = Some(&item);
        assert!(
            holds(&Condition::Equals("v".into(), Value::int(1)), present),
            "numbers compare by value"
        );
        assert!(!holds(&Condition::Equals("v".into(), Value::int(1)), None));
        assert!(holds(&Condition::AttributeNotExists("v".into()), None));
        assert!(!holds(&Condition::AttributeNotExists("v".into()), present));
        assert!(holds(&Condition::All(vec![]), None));
        assert!(!holds(
            &Condition::All(vec![Condition::Exists, Condition::NotExists]),
            present
        ));
    }

    #[test]
    fn rows_refuse_what_dynamodb_refuses() {
        let mut no_sk = Item::new();
        no_sk.insert(PK.into(), Value::S("p".into()));
        assert!(matches!(Row::of(&no_sk), Err(StoreError::MissingKey)));
        let mut numeric_key = Key::new("p", "s").item();
        numeric_key.insert(SK.into(), Value::int(1));
        assert!(matches!(Row::of(&numeric_key), Err(StoreError::MissingKey)));
        let mut deep = Value::Null;
        for _ in 0..40 {
            deep = Value::L(vec![deep]);
        }
        let mut nested = Key::new("p", "s").item();
        nested.insert("d".into(), deep);
        assert!(matches!(Row::of(&nested), Err(StoreError::Backend(_))));
        let mut bad_index = Key::new("p", "s").item();
        bad_index.insert(GSI1PK.into(), Value::int(3));
        assert!(matches!(Row::of(&bad_index), Err(StoreError::Backend(_))));
        let mut sparse = Key::new("p", "s").item();
        sparse.insert(GSI1PK.into(), Value::S("g".into()));
        assert!(
            Row::of(&sparse).unwrap().gsi.is_none(),
            "an item with one index key is not indexed"
        );
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str, args: &[SqlValue]) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    /// Every page must be a range scan of one B-tree with no sort step, or paging large
    /// partitions would cost a scan of the whole partition per page.
    #[test]
    fn queries_are_index_range_scans_without_sorting() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(crate::conn::SCHEMA).unwrap();
        let after = After {
            pk: "p".into(),
            sk: "s".into(),
            gsi1sk: Some("g".into()),
        };
        for index in [Index::Primary, Index::Gsi1] {
            for forward in [true, false] {
                let mut q = Query::partition("p").on(index).begins_with("x");
                q.forward = forward;
                let (sql, args) = query_sql(&q, Some(&after), 11, 0).unwrap();
                let p = plan(&conn, &sql, &args);
                assert!(
                    !p.contains("TEMP B-TREE") && !p.contains("SCAN"),
                    "{index:?} forward={forward}: {p}"
                );
                // Both ends of the range bound the seek, the cursor's included.
                let seek = match index {
                    Index::Primary => "USING PRIMARY KEY (pk=? AND sk>? AND sk<?)",
                    Index::Gsi1 => {
                        "USING INDEX items_gsi1 (gsi1pk=? AND (gsi1sk,pk,sk)>(?,?,?) AND (gsi1sk,pk,sk)<(?,?,?))"
                    }
                };
                assert!(p.contains(seek), "{index:?} forward={forward}: {p}");
            }
        }
        let sweep = plan(
            &conn,
            "DELETE FROM items WHERE (pk, sk) IN (SELECT pk, sk FROM items WHERE ttl IS NOT NULL AND ttl <= ?1 LIMIT ?2)",
            &[SqlValue::Integer(0), SqlValue::Integer(1)],
        );
        assert!(sweep.contains("items_ttl"), "{sweep}");
    }
}
