//! Storage ports: the three primitives ZeroDB deploys on (DynamoDB-, S3- and SQS-shaped),
//! as traits with no AWS types, so repositories are written once over them.
//!
//! Semantics every adapter must honour (proven by the conformance suite in `tests/`):
//! - items are maps of attributes; `PK`/`SK` are the primary key, `GSI1PK`/`GSI1SK` the
//!   one secondary index, `ttl` (epoch seconds) the expiry attribute;
//! - an item whose `ttl` has passed is never returned by `get` or `query`, because
//!   DynamoDB deletes expired items lazily (up to days late);
//! - string keys order by their UTF-8 bytes, as DynamoDB orders them;
//! - items are limited to 400 KB and transactions to 100 operations, DynamoDB's limits.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::queues::{QueueName, QueueSpec};

/// Partition key attribute name.
pub const PK: &str = "PK";
/// Sort key attribute name.
pub const SK: &str = "SK";
/// Secondary index partition key attribute name.
pub const GSI1PK: &str = "GSI1PK";
/// Secondary index sort key attribute name.
pub const GSI1SK: &str = "GSI1SK";
/// Expiry attribute (epoch seconds), DynamoDB's TTL attribute.
pub const TTL: &str = "ttl";
/// Name of the secondary index in DynamoDB and in the SAM template.
pub const GSI1_NAME: &str = "GSI1";
/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// DynamoDB's transaction size limit.
pub const MAX_TRANSACTION_ITEMS: usize = 100;
/// DynamoDB's limit on a transaction's total size.
pub const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;

/// A transaction's size as DynamoDB counts it, near enough to refuse the same ones: the
/// items put, the values updated, the keys.
pub fn transaction_size(ops: &[TxOp]) -> usize {
    ops.iter()
        .map(|op| match op {
            TxOp::Put { item, .. } => item_size(item),
            TxOp::Update { key, updates, .. } => {
                key.pk.len()
                    + key.sk.len()
                    + updates
                        .iter()
                        .map(|u| match u {
                            Update::Set(a, v) => a.len() + v.approx_size(),
                            Update::Remove(a) => a.len(),
                            Update::Add(a, _) => a.len() + 8,
                        })
                        .sum::<usize>()
            }
            TxOp::Delete { key, .. } | TxOp::Check { key, .. } => key.pk.len() + key.sk.len(),
        })
        .sum()
}

/// One attribute value, DynamoDB's type system without the set types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    S(String),
    /// A number kept in its decimal text form, as DynamoDB does.
    N(String),
    B(Vec<u8>),
    Bool(bool),
    Null,
    L(Vec<Value>),
    M(BTreeMap<String, Value>),
}

impl Value {
    pub fn int(n: i64) -> Self {
        Value::N(n.to_string())
    }
    pub fn float(n: f64) -> Self {
        Value::N(n.to_string())
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::S(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::N(n) => n
                .parse()
                .ok()
                .or_else(|| n.parse::<f64>().ok().map(|f| f as i64)),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::N(n) => n.parse().ok(),
            _ => None,
        }
    }
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::B(b) => Some(b),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::L(l) => Some(l),
            _ => None,
        }
    }

    /// Equality as DynamoDB evaluates it: numbers compare by value, not by spelling.
    pub fn same_as(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::N(a), Value::N(b)) => match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => x == y,
                _ => a == b,
            },
            _ => self == other,
        }
    }

    /// Size as DynamoDB counts it, close enough to enforce the 400 KB limit the same way.
    pub fn approx_size(&self) -> usize {
        match self {
            Value::S(s) | Value::N(s) => s.len(),
            Value::B(b) => b.len(),
            Value::Bool(_) | Value::Null => 1,
            Value::L(l) => 3 + l.iter().map(|v| 1 + v.approx_size()).sum::<usize>(),
            Value::M(m) => {
                3 + m
                    .iter()
                    .map(|(k, v)| 1 + k.len() + v.approx_size())
                    .sum::<usize>()
            }
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::S(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::S(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::int(n)
    }
}

/// An item: attribute name to value, ordered so encodings are deterministic.
pub type Item = BTreeMap<String, Value>;

/// Item size as DynamoDB counts it (names plus values).
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.approx_size()).sum()
}

/// Primary key of an item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Key {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// Reads the primary key out of an item.
    pub fn of(item: &Item) -> Option<Key> {
        Some(Key {
            pk: item.get(PK)?.as_str()?.to_owned(),
            sk: item.get(SK)?.as_str()?.to_owned(),
        })
    }

    /// Starts an item with this key.
    pub fn item(&self) -> Item {
        let mut item = Item::new();
        item.insert(PK.into(), Value::S(self.pk.clone()));
        item.insert(SK.into(), Value::S(self.sk.clone()));
        item
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}|{}", self.pk, self.sk)
    }
}

/// A write condition, the subset of DynamoDB condition expressions the repositories use.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// No (live) item has this key: `attribute_not_exists(PK)`.
    NotExists,
    /// A live item has this key: `attribute_exists(PK)`.
    Exists,
    /// The attribute exists and equals the value.
    Equals(String, Value),
    /// The attribute is absent.
    AttributeNotExists(String),
    /// The attribute is present.
    AttributeExists(String),
    /// The attribute is a number at least this (a balance that covers an amount), so a
    /// debit is one conditional write with no read before it.
    AtLeast(String, i64),
    /// Every condition holds.
    All(Vec<Condition>),
}

/// One change to one attribute in an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Set(String, Value),
    Remove(String),
    /// Adds to a number, treating an absent attribute as zero (DynamoDB `ADD`).
    Add(String, i64),
}

/// Which key the query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Index {
    #[default]
    Primary,
    /// `GSI1PK`/`GSI1SK`: eventually consistent in DynamoDB, as it is there.
    Gsi1,
}

/// Sort-key condition of a query.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SortKey {
    #[default]
    Any,
    BeginsWith(String),
    /// Inclusive on both ends, as DynamoDB's `BETWEEN`.
    Between(String, String),
    Gt(String),
    Ge(String),
    Lt(String),
    Le(String),
}

/// A query of one partition.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    pub index: Index,
    pub partition: String,
    pub sort: SortKey,
    /// Ascending sort-key order when true.
    pub forward: bool,
    /// Most items to return in this page (the adapter may cap it).
    pub limit: Option<usize>,
    /// Where the previous page stopped, exactly as the adapter returned it.
    pub cursor: Option<Cursor>,
}

impl Query {
    pub fn partition(partition: impl Into<String>) -> Self {
        Query {
            partition: partition.into(),
            forward: true,
            ..Default::default()
        }
    }
    pub fn on(mut self, index: Index) -> Self {
        self.index = index;
        self
    }
    pub fn sort(mut self, sort: SortKey) -> Self {
        self.sort = sort;
        self
    }
    pub fn begins_with(self, prefix: impl Into<String>) -> Self {
        self.sort(SortKey::BeginsWith(prefix.into()))
    }
    pub fn backward(mut self) -> Self {
        self.forward = false;
        self
    }
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.cursor = cursor;
        self
    }
}

/// An opaque position in a query, safe to hand to API clients (base64url text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    /// Encodes the key attributes of the last item read (adapters only).
    pub fn encode(key_attrs: &BTreeMap<String, String>) -> Cursor {
        let json = serde_json::to_vec(key_attrs).unwrap_or_default();
        Cursor(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
    }

    /// Decodes a cursor; `None` when a client sent something we never issued.
    pub fn decode(&self) -> Option<BTreeMap<String, String>> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&self.0)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The position just after `item` in a query of `index`: what an adapter returns when
    /// a page ends at that item, so a caller that stops inside a page (a byte budget)
    /// goes on from there. `None` when the item lacks the index's key attributes.
    pub fn after(item: &Item, index: Index) -> Option<Cursor> {
        let names: &[&str] = match index {
            Index::Primary => &[PK, SK],
            Index::Gsi1 => &[PK, SK, GSI1PK, GSI1SK],
        };
        let mut attrs = BTreeMap::new();
        for n in names {
            attrs.insert((*n).to_owned(), item.get(*n)?.as_str()?.to_owned());
        }
        Some(Cursor::encode(&attrs))
    }

    pub fn from_client(text: &str) -> Result<Cursor, StoreError> {
        let c = Cursor(text.to_owned());
        c.decode().map(|_| c).ok_or(StoreError::BadCursor)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One page of a query.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Item>,
    /// Present when more items may follow.
    pub cursor: Option<Cursor>,
}

/// One operation of an all-or-nothing transaction.
#[derive(Debug, Clone)]
pub enum TxOp {
    Put {
        item: Item,
        condition: Option<Condition>,
    },
    Update {
        key: Key,
        updates: Vec<Update>,
        condition: Option<Condition>,
    },
    Delete {
        key: Key,
        condition: Option<Condition>,
    },
    Check {
        key: Key,
        condition: Condition,
    },
}

/// Errors of every storage port.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A condition did not hold; nothing was written.
    #[error("condition failed")]
    Conflict,
    #[error("item is {0} bytes, over the 400 KB item limit")]
    TooLarge(usize),
    #[error("transaction has {0} operations, over the limit of 100")]
    TooManyOperations(usize),
    #[error("transaction is {0} bytes, over the 4 MB transaction limit")]
    TransactionTooLarge(usize),
    #[error("invalid pagination cursor")]
    BadCursor,
    #[error("item has no string PK and SK")]
    MissingKey,
    /// The backend is throttling; retry later.
    #[error("storage is throttling requests")]
    Throttled,
    #[error(transparent)]
    Backend(#[from] anyhow::Error),
}

/// DynamoDB-shaped records.
#[async_trait]
pub trait Table: Send + Sync {
    /// A strongly consistent read of one live item.
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;
    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), StoreError>;
    /// Applies the updates (creating the item if absent) and returns the item as written.
    async fn update(
        &self,
        key: &Key,
        updates: Vec<Update>,
        condition: Option<Condition>,
    ) -> Result<Item, StoreError>;
    /// Deletes and returns the old item, if it was live.
    async fn delete(
        &self,
        key: &Key,
        condition: Option<Condition>,
    ) -> Result<Option<Item>, StoreError>;
    async fn query(&self, query: Query) -> Result<Page, StoreError>;
    /// All operations or none; a failed condition anywhere gives `Conflict`.
    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), StoreError>;
}

/// Metadata of a stored object.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobMeta {
    pub key: String,
    pub size: u64,
    pub content_type: Option<String>,
}

/// An object and its metadata.
#[derive(Debug, Clone)]
pub struct Blob {
    pub meta: BlobMeta,
    pub bytes: Vec<u8>,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct BlobPage {
    pub objects: Vec<BlobMeta>,
    /// Present when more objects follow; pass back as `after`.
    pub cursor: Option<String>,
}

/// S3-shaped objects.
#[async_trait]
pub trait Blobs: Send + Sync {
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: Option<&str>,
    ) -> Result<(), StoreError>;
    async fn get(&self, key: &str) -> Result<Option<Blob>, StoreError>;
    async fn head(&self, key: &str) -> Result<Option<BlobMeta>, StoreError>;
    /// Keys in ascending order.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<BlobPage, StoreError>;
    /// Deleting a missing object succeeds, as in S3.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// A time-limited download URL, where the backend can issue one.
    async fn presign_get(
        &self,
        _key: &str,
        _expires_secs: u64,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    /// A time-limited upload URL (HTTP `PUT` of the object's bytes), where the backend
    /// can issue one; with `size`, the URL accepts a body of exactly that many bytes.
    async fn presign_put(
        &self,
        _key: &str,
        _size: Option<u64>,
        _expires_secs: u64,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
}

/// A received message; `receipt` deletes it or changes its visibility.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub receipt: String,
    pub body: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
}

/// SQS-shaped queue (one queue; its dead-letter policy is its [`QueueSpec`]).
#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends up to 10 bodies (SQS's batch limit), returning their message ids.
    async fn send_batch(&self, bodies: Vec<String>) -> Result<Vec<String>, StoreError>;
    /// Receives up to `max` (≤ 10) messages, hiding them for `visibility_secs`. A message
    /// received more than the queue's maximum goes to its dead-letter queue instead.
    async fn receive(&self, max: usize, visibility_secs: u32) -> Result<Vec<Message>, StoreError>;
    async fn delete(&self, receipt: &str) -> Result<(), StoreError>;
    async fn change_visibility(
        &self,
        receipt: &str,
        visibility_secs: u32,
    ) -> Result<(), StoreError>;
}

/// Whether an item with this `ttl` attribute has expired at `now` (epoch seconds).
pub fn is_expired(item: &Item, now: i64) -> bool {
    item.get(TTL)
        .and_then(Value::as_i64)
        .is_some_and(|ttl| ttl <= now)
}

/// The queues of a deployment, one per [`QueueName`]: built from a function of the spec,
/// so none can be missing.
#[derive(Clone)]
pub struct Queues(BTreeMap<QueueName, std::sync::Arc<dyn Queue>>);

impl Queues {
    pub fn new(mut open: impl FnMut(&'static QueueSpec) -> std::sync::Arc<dyn Queue>) -> Self {
        Queues(
            QueueName::ALL
                .iter()
                .map(|q| (*q, open(q.spec())))
                .collect(),
        )
    }

    pub fn get(&self, name: QueueName) -> &std::sync::Arc<dyn Queue> {
        &self.0[&name]
    }

    /// Replaces one queue (tests: a queue that fails).
    pub fn set(&mut self, name: QueueName, queue: std::sync::Arc<dyn Queue>) {
        self.0.insert(name, queue);
    }
}

/// The storage a deployment runs on, built once at start and shared by every handler.
#[derive(Clone)]
pub struct Stores {
    pub table: std::sync::Arc<dyn Table>,
    pub blobs: std::sync::Arc<dyn Blobs>,
    /// Every queue of [`QueueName::ALL`].
    pub queues: Queues,
    pub vectors: std::sync::Arc<dyn crate::vectors::Vectors>,
}

impl Stores {
    pub fn queue(&self, name: QueueName) -> &std::sync::Arc<dyn Queue> {
        self.queues.get(name)
    }
}
