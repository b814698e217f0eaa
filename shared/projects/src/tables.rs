//! NoSQL tables of a project: definitions in the project's catalogue, rows in a
//! partition of their own, and each declared index as a partition of
//! `<encoded value>#<row id>` entries holding a copy of the row (DynamoDB's "projection
//! ALL"), so a query on an indexed field is one range read of that partition. Any other
//! filter scans the rows a page at a time, within a stated budget.
//!
//! Writes are transactions of at most 100 operations: a chunk of rows with their index
//! entries and the table's counters (`row_count`, `bytes`), so the counters never drift
//! from the rows they count. A row carries a version; updates and deletes are conditional
//! on it, so a concurrent change is re-read, never lost.

use std::sync::Arc;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use zerodb_domain::auth::Principal;
use zerodb_domain::clock::Clock;
use zerodb_domain::events::EventSink;
use zerodb_domain::item::{from_item, to_item};
use zerodb_domain::scope::{Permission, Service};
use zerodb_domain::store::{
    Condition, Item, Key, Query, SortKey, StoreError, Table, TxOp, Update, Value as V,
};
use zerodb_domain::{At, Context, DomainError, Refusal, Settings, ids, keys};

use crate::filter::{Change, Filter, FilterError, Projection, Sort};
use crate::project::{Access, Project, Projects};
use crate::schema::{self, Schema};

/// Counter attributes of a table's definition.
pub const ROW_COUNT: &str = "row_count";
pub const BYTES: &str = "bytes";
const TABLE_ID: &str = "id";
const DOC: &str = "d";
const VERSION: &str = "v";
const ROW_BYTES: &str = "b";
const ROW_ID: &str = "rid";

/// Limits of the table routes, read once at start.
#[derive(Debug, Clone)]
pub struct TableLimits {
    /// Rows per insert call (ainative-python's documented 1,000).
    pub insert_rows: usize,
    /// Largest row, as JSON.
    pub row_bytes: usize,
    /// Most rows (and bytes) one query may read before it is refused as too broad.
    pub scan_rows: usize,
    pub scan_bytes: usize,
    /// Most rows one update or delete may change.
    pub write_rows: usize,
    /// Most tables per project.
    pub tables: usize,
    /// Largest page of rows a query returns.
    pub page_rows: usize,
    /// Most index entries one row may have (list values index every element).
    pub entries_per_row: usize,
}

impl Default for TableLimits {
    fn default() -> Self {
        TableLimits {
            insert_rows: 1000,
            row_bytes: 64 * 1024,
            scan_rows: 200_000,
            scan_bytes: 256 * 1024 * 1024,
            write_rows: 10_000,
            tables: 500,
            page_rows: 1000,
            entries_per_row: 40,
        }
    }
}

impl TableLimits {
    pub fn from_settings(s: &Settings) -> Result<Self, String> {
        let d = TableLimits::default();
        Ok(TableLimits {
            insert_rows: s.whole_number("ZERODB_TABLE_INSERT_ROWS", d.insert_rows, 1)?,
            row_bytes: s
                .whole_number("ZERODB_TABLE_ROW_BYTES", d.row_bytes, 256)?
                .min(300 * 1024),
            scan_rows: s.whole_number("ZERODB_TABLE_SCAN_ROWS", d.scan_rows, 1)?,
            scan_bytes: s.whole_number("ZERODB_TABLE_SCAN_BYTES", d.scan_bytes, 1024)?,
            write_rows: s.whole_number("ZERODB_TABLE_WRITE_ROWS", d.write_rows, 1)?,
            tables: s.whole_number("ZERODB_TABLES_PER_PROJECT", d.tables, 1)?,
            page_rows: d.page_rows,
            entries_per_row: d.entries_per_row,
        })
    }
}

/// A table's definition and counters, as stored in the project's catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The schema as JSON text.
    pub schema: String,
    pub created_at: i64,
    #[serde(default)]
    pub row_count: i64,
    #[serde(default)]
    pub bytes: i64,
}

impl TableDef {
    pub fn schema(&self) -> Schema {
        serde_json::from_str(&self.schema).unwrap_or_default()
    }
}

/// What a query asks for.
#[derive(Debug, Clone, Default)]
pub struct RowQuery {
    pub filter: Option<Value>,
    pub sort: Sort,
    pub projection: Projection,
    pub limit: usize,
    pub offset: usize,
}

/// A query's answer.
#[derive(Debug, Clone)]
pub struct RowPage {
    pub rows: Vec<Value>,
    pub total: usize,
    /// `index:<field>`, `scan`, or `count` (the table's counter answered).
    pub plan: String,
    /// Rows read to answer.
    pub examined: usize,
    /// The page stopped short of `limit` at its byte budget (more rows follow).
    pub truncated: bool,
}

/// An update's outcome.
#[derive(Debug, Clone, Default)]
pub struct Updated {
    pub matched: usize,
    pub modified: usize,
    pub upserted_id: Option<String>,
}

/// One candidate row: its id, stored text and version. Kept as text: a parsed document
/// takes many times its size in memory.
struct Cand {
    id: String,
    text: String,
    version: i64,
    bytes: i64,
}

/// How a query finds its candidates.
#[derive(Debug, Clone, PartialEq)]
enum Plan {
    Scan,
    /// The rows with these ids, read by key.
    Ids(Vec<String>),
    /// Range reads of index `n` (on `field`), one per key range.
    Index {
        n: usize,
        field: String,
        ranges: Vec<SortKey>,
    },
}

/// The table service.
#[derive(Clone)]
pub struct Tables {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    events: EventSink,
    projects: Projects,
    limits: Arc<TableLimits>,
}

fn filter_error(root: At, e: FilterError) -> DomainError {
    let mut at = root;
    for part in e.path.split('.').filter(|p| !p.is_empty()) {
        at = at.field(part);
    }
    at.invalid(e.msg)
}

fn table_not_found(name: &str) -> DomainError {
    DomainError::coded(
        Refusal::NotFound,
        "TABLE_NOT_FOUND",
        format!(
            "Table '{}' not found in this project",
            name.chars().take(80).collect::<String>()
        ),
    )
}

fn too_broad(what: &str, plan: &Plan) -> DomainError {
    let hint = match plan {
        Plan::Scan => {
            "declare an index on a field you filter by (schema.indexes), or narrow the filter"
        }
        _ => "narrow the indexed condition",
    };
    DomainError::coded(
        Refusal::BadRequest,
        "QUERY_TOO_BROAD",
        format!("this query would take more than {what}; {hint}"),
    )
}

/// Most rows a query may skip.
pub const MAX_OFFSET: usize = 10_000;
/// Bytes of row text one request keeps at once (sorted pages, rows to change).
pub const KEEP_BYTES: usize = 64 * 1024 * 1024;
/// Bytes one update may write, rows and index copies together.
pub const WRITE_BYTES: usize = 64 * 1024 * 1024;
/// Bytes one row may write with its index copies.
pub const ROW_WRITE_BYTES: usize = 512 * 1024;
/// Rows of JSON nest at most this deep.
pub const MAX_DEPTH: usize = 32;
/// A page of rows holds about this many bytes at most: a Lambda response carries 6 MB.
pub const PAGE_BYTES: usize = 5 * 1024 * 1024;
/// Work one query may do before it is refused.
const QUERY_TIME: std::time::Duration = std::time::Duration::from_secs(20);

impl Tables {
    pub fn new(ctx: &Context, projects: Projects, limits: TableLimits) -> Self {
        Tables {
            table: ctx.stores().table.clone(),
            clock: ctx.clock().clone(),
            events: ctx.events().clone(),
            projects,
            limits: Arc::new(limits),
        }
    }

    pub fn limits(&self) -> &TableLimits {
        &self.limits
    }

    pub fn projects(&self) -> &Projects {
        &self.projects
    }

    /// The project a table route acts on, with the scope its access needs.
    pub async fn project(
        &self,
        caller: &Principal,
        project_id: &str,
        access: Access,
    ) -> Result<Project, DomainError> {
        require(caller, access)?;
        self.projects.gate(caller, project_id, access).await
    }

    /// Creates a table (`zerodb:write`): 409 when the name is taken.
    pub async fn create(
        &self,
        p: &Project,
        name: &str,
        schema: Schema,
        description: Option<String>,
    ) -> Result<TableDef, DomainError> {
        schema::check_table_name(name).map_err(|m| At::body("table_name").invalid(m))?;
        if self.list(p).await?.len() >= self.limits.tables {
            return Err(DomainError::coded(
                Refusal::BadRequest,
                "TABLE_LIMIT_EXCEEDED",
                format!(
                    "a project holds at most {} tables; delete one first",
                    self.limits.tables
                ),
            ));
        }
        let def = TableDef {
            id: ids::prefixed_id("tbl"),
            name: name.to_owned(),
            description,
            schema: serde_json::to_string(&schema).map_err(anyhow::Error::from)?,
            created_at: self.clock.epoch_secs(),
            row_count: 0,
            bytes: 0,
        };
        match self
            .table
            .put(
                to_item(&keys::table(&p.id, name), &def, None)?,
                Some(Condition::NotExists),
            )
            .await
        {
            Ok(()) => Ok(def),
            Err(StoreError::Conflict) => Err(DomainError::coded(
                Refusal::Conflict,
                "TABLE_EXISTS",
                format!("Table '{name}' already exists in this project"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The project's tables, by name.
    pub async fn list(&self, p: &Project) -> Result<Vec<TableDef>, DomainError> {
        let mut out = Vec::new();
        let mut cursor = None;
        // Pages (a large schema makes a table's item large); bounded by the table limit.
        loop {
            let page = self
                .table
                .query(
                    Query::partition(keys::database_partition(&p.id))
                        .begins_with(keys::TABLE_PREFIX)
                        .limit(self.limits.tables + 1)
                        .after(cursor),
                )
                .await?;
            for i in page.items {
                out.push(from_item(i)?);
            }
            match page.cursor {
                Some(c) if out.len() <= self.limits.tables => cursor = Some(c),
                _ => return Ok(out),
            }
        }
    }

    /// A table by name, or by id (ainative-python passes either).
    pub async fn get(&self, p: &Project, name_or_id: &str) -> Result<TableDef, DomainError> {
        if schema::check_table_name(name_or_id).is_ok()
            && let Some(item) = self.table.get(&keys::table(&p.id, name_or_id)).await?
        {
            return Ok(from_item(item)?);
        }
        if name_or_id.starts_with("tbl_") {
            return self
                .list(p)
                .await?
                .into_iter()
                .find(|t| t.id == name_or_id)
                .ok_or_else(|| table_not_found(name_or_id));
        }
        Err(table_not_found(name_or_id))
    }

    /// Drops a table: its definition goes now, its rows and index entries with the
    /// purge, a page at a time. Returns the rows it held.
    pub async fn drop_table(&self, p: &Project, def: &TableDef) -> Result<i64, DomainError> {
        let old = self
            .table
            .delete(
                &keys::table(&p.id, &def.name),
                Some(Condition::Equals(TABLE_ID.into(), V::S(def.id.clone()))),
            )
            .await;
        match old {
            Ok(Some(item)) => {
                let def: TableDef = from_item(item)?;
                self.events
                    .emit(vec![
                        (
                            "zerodb.table.deleted".into(),
                            "zerodb".into(),
                            json!({"project_id": p.id, "table_name": def.name, "rows_deleted": def.row_count, "user_id": p.account_id}),
                        ),
                        crate::purge::purge_event(&p.account_id, &p.id, Some(&def)),
                    ])
                    .await;
                Ok(def.row_count)
            }
            Ok(None) | Err(StoreError::Conflict) => Err(table_not_found(&def.name)),
            Err(e) => Err(e.into()),
        }
    }

    /// Validates rows into documents with ids: objects, of the schema, within the size
    /// limit, ids unique in the call. Errors name the row (under `at`) and the field.
    fn prepare(
        &self,
        def: &TableDef,
        schema: &Schema,
        rows: Vec<Value>,
        at: &At,
    ) -> Result<Vec<(String, Value, String)>, DomainError> {
        if rows.is_empty() {
            return Err(at.clone().invalid("give at least one row"));
        }
        if rows.len() > self.limits.insert_rows {
            return Err(at.clone().invalid(format!(
                "{} rows sent; at most {} per call",
                rows.len(),
                self.limits.insert_rows
            )));
        }
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(rows.len());
        let mut written = 0usize;
        for (i, row) in rows.into_iter().enumerate() {
            let here = at.clone().index(i);
            let Value::Object(mut m) = row else {
                return Err(here.invalid("a row is a JSON object"));
            };
            if let Some(v) = m.remove("_id")
                && !m.contains_key("id")
            {
                m.insert("id".into(), v);
            }
            let id = match m.get("id") {
                None | Some(Value::Null) => ids::prefixed_id("row"),
                Some(Value::String(s))
                    if !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control) =>
                {
                    s.clone()
                }
                Some(Value::Number(n)) => n.to_string(),
                Some(_) => {
                    return Err(here.field("id").invalid(
                        "a row id is a string of 1–256 characters without control characters",
                    ));
                }
            };
            if !seen.insert(id.clone()) {
                return Err(here
                    .field("id")
                    .invalid(format!("row id '{id}' appears twice in this call")));
            }
            m.insert("id".into(), Value::String(id.clone()));
            schema
                .check(&m)
                .map_err(|(field, msg)| here.clone().field(&field).invalid(msg))?;
            let doc = Value::Object(m);
            let text = self
                .check_row(&doc, schema, &id)
                .map_err(|m| here.clone().invalid(m))?;
            written += (1 + schema
                .indexes
                .iter()
                .map(|f| schema::entries(&doc, f).len())
                .sum::<usize>())
                * text.len();
            if written > WRITE_BYTES {
                return Err(at.clone().invalid(format!(
                    "these rows and their index copies write over {} MiB; send fewer rows",
                    WRITE_BYTES >> 20
                )));
            }
            out.push((id, doc, text));
        }
        let _ = def;
        Ok(out)
    }

    fn row_item(p: &Project, def: &TableDef, id: &str, text: &str, version: i64) -> Item {
        let mut item = keys::row(&p.id, &def.id, id).item();
        item.insert(DOC.into(), V::S(text.to_owned()));
        item.insert(VERSION.into(), V::int(version));
        item.insert(ROW_BYTES.into(), V::int(text.len() as i64));
        item
    }

    fn index_items(
        p: &Project,
        def: &TableDef,
        schema: &Schema,
        id: &str,
        doc: &Value,
        text: &str,
        version: i64,
    ) -> Vec<Item> {
        let mut out = Vec::new();
        for (n, field) in schema.indexes.iter().enumerate() {
            for enc in schema::entries(doc, field) {
                let mut item = keys::row_index(&p.id, &def.id, n, &enc, id).item();
                item.insert(DOC.into(), V::S(text.to_owned()));
                item.insert(VERSION.into(), V::int(version));
                item.insert(ROW_ID.into(), V::S(id.to_owned()));
                out.push(item);
            }
        }
        out
    }

    fn index_keys(p: &Project, def: &TableDef, schema: &Schema, id: &str, doc: &Value) -> Vec<Key> {
        let mut out = Vec::new();
        for (n, field) in schema.indexes.iter().enumerate() {
            for enc in schema::entries(doc, field) {
                out.push(keys::row_index(&p.id, &def.id, n, &enc, id));
            }
        }
        out
    }

    fn counters(p: &Project, def: &TableDef, rows: i64, bytes: i64) -> TxOp {
        TxOp::Update {
            key: keys::table(&p.id, &def.name),
            updates: vec![
                Update::Add(ROW_COUNT.into(), rows),
                Update::Add(BYTES.into(), bytes),
            ],
            condition: Some(Condition::Equals(TABLE_ID.into(), V::S(def.id.clone()))),
        }
    }

    /// Inserts rows (all validated before any is written), in transactions of at most
    /// 100 operations with the table's counters; returns their ids. Emits
    /// `zerodb.table.row_inserted` per row once written.
    pub async fn insert(
        &self,
        p: &Project,
        def: &TableDef,
        rows: Vec<Value>,
        at: At,
    ) -> Result<Vec<String>, DomainError> {
        let schema = def.schema();
        let rows = self.prepare(def, &schema, rows, &at)?;
        let cost = |(_, doc, text): &(String, Value, String)| {
            let copies = 1 + Self::index_keys(p, def, &schema, "", doc).len();
            (copies, copies * (text.len() + 300))
        };
        let mut ids = Vec::with_capacity(rows.len());
        for part in crate::project::transaction_runs(&rows, 1, cost) {
            let mut ops = Vec::with_capacity(part.len() * (1 + schema.indexes.len()) + 1);
            let mut bytes = 0i64;
            for (id, doc, text) in part {
                bytes += text.len() as i64;
                ops.push(TxOp::Put {
                    item: Self::row_item(p, def, id, text, 1),
                    condition: Some(Condition::NotExists),
                });
                for item in Self::index_items(p, def, &schema, id, doc, text, 1) {
                    ops.push(TxOp::Put {
                        item,
                        condition: None,
                    });
                }
            }
            ops.push(Self::counters(p, def, part.len() as i64, bytes));
            match self.table.transact(ops).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => {
                    let done = if ids.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} rows before it were inserted)", ids.len())
                    };
                    return Err(DomainError::coded(
                        Refusal::Conflict,
                        "ROW_EXISTS",
                        format!(
                            "a row with one of the ids in rows {}–{} already exists, or the table was dropped{done}; nothing of those rows was written",
                            ids.len(),
                            ids.len() + part.len() - 1
                        ),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
            let events = part
                .iter()
                .map(|(id, _, _)| {
                    (
                        "zerodb.table.row_inserted".to_owned(),
                        "zerodb".to_owned(),
                        json!({"table_name": def.name, "row_id": id, "project_id": p.id, "user_id": p.account_id}),
                    )
                })
                .collect();
            self.events.emit(events).await;
            ids.extend(part.iter().map(|(id, _, _)| id.clone()));
        }
        Ok(ids)
    }

    fn plan(schema: &Schema, filter: &Filter) -> Plan {
        use crate::filter::Op;
        let conj = filter.conjuncts();
        // Rows are keyed by id: an id's equality reads the row itself.
        for (path, op) in &conj {
            if *path != "id" {
                continue;
            }
            let ids = |vs: &[Value]| -> Vec<String> {
                vs.iter()
                    .filter_map(|v| match v {
                        Value::String(s) => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .collect()
            };
            match op {
                Op::Eq(v) => return Plan::Ids(ids(std::slice::from_ref(v))),
                Op::In(vs) if vs.len() <= 100 => return Plan::Ids(ids(&vs.all)),
                _ => {}
            }
        }
        let mut best: Option<(u8, Plan)> = None;
        for (n, field) in schema.indexes.iter().enumerate() {
            let ops: Vec<&Op> = conj
                .iter()
                .filter(|(p, _)| p == field)
                .map(|(_, o)| *o)
                .collect();
            for op in &ops {
                let candidate = match op {
                    Op::Eq(v) if !v.is_null() => schema::encode(v).map(|e| {
                        (
                            0,
                            vec![SortKey::BeginsWith(if schema::truncated(v) {
                                e
                            } else {
                                format!("{e}#")
                            })],
                        )
                    }),
                    Op::In(vs)
                        if !vs.is_empty() && vs.len() <= 50 && !vs.iter().any(Value::is_null) =>
                    {
                        vs.iter()
                            .map(|v| {
                                schema::encode(v).map(|e| {
                                    SortKey::BeginsWith(if schema::truncated(v) {
                                        e
                                    } else {
                                        format!("{e}#")
                                    })
                                })
                            })
                            .collect::<Option<Vec<_>>>()
                            .map(|r| (1, r))
                    }
                    _ => None,
                };
                if let Some((rank, ranges)) = candidate
                    && best.as_ref().is_none_or(|(r, _)| rank < *r)
                {
                    best = Some((
                        rank,
                        Plan::Index {
                            n,
                            field: field.clone(),
                            ranges,
                        },
                    ));
                }
            }
            if best.is_none()
                && let Some(range) = Self::range(&ops)
            {
                best = Some((
                    2,
                    Plan::Index {
                        n,
                        field: field.clone(),
                        ranges: vec![range],
                    },
                ));
            }
        }
        best.map(|(_, p)| p).unwrap_or(Plan::Scan)
    }

    /// One key range from `$gt/$gte/$lt/$lte` on one field, when they compare values of
    /// one kind (numbers, or strings). Bounds in the wrong order give a range that
    /// matches nothing.
    fn range(ops: &[&crate::filter::Op]) -> Option<SortKey> {
        use crate::filter::Op;
        let mut kind: Option<char> = None;
        let mut lower: Option<String> = None;
        let mut upper: Option<String> = None;
        for op in ops {
            let (v, is_lower, strict) = match op {
                Op::Gt(v) => (v, true, true),
                Op::Gte(v) => (v, true, false),
                Op::Lt(v) => (v, false, true),
                Op::Lte(v) => (v, false, false),
                _ => continue,
            };
            if !(v.is_number() || v.is_string()) {
                return None;
            }
            let e = schema::encode(v)?;
            let k = e.chars().next()?;
            if kind.is_some_and(|x| x != k) {
                return None;
            }
            kind = Some(k);
            // A bound long enough to meet a cut entry is compared by the prefix every
            // such entry keeps; the whole filter is checked on each candidate after.
            let b = match schema::bound_prefix(v) {
                Some(prefix) if is_lower => prefix,
                Some(prefix) => format!("{prefix}~"),
                // Strictly above: past every entry of this value ('$' sorts after '#').
                None if is_lower && strict => format!("{e}$"),
                None if is_lower => e,
                None if strict => e,
                None => format!("{e}$"),
            };
            if is_lower {
                if lower.as_ref().is_none_or(|l| b > *l) {
                    lower = Some(b);
                }
            } else if upper.as_ref().is_none_or(|u| b < *u) {
                upper = Some(b);
            }
        }
        let k = kind?;
        Some(SortKey::Between(
            lower.unwrap_or_else(|| k.to_string()),
            upper.unwrap_or_else(|| format!("{k}~")),
        ))
    }

    /// Visits every candidate row of the plan that matches the filter, within the scan
    /// budget (rows, bytes, time); `visit` gets the row and its parsed document, and
    /// returns false to stop early. The document is dropped after the visit: callers
    /// keep text.
    async fn scan(
        &self,
        p: &Project,
        def: &TableDef,
        plan: &Plan,
        filter: &Filter,
        mut visit: impl FnMut(Cand, &Value) -> bool,
    ) -> Result<usize, DomainError> {
        let started = std::time::Instant::now();
        let mut rows = 0usize;
        if let Plan::Ids(ids) = plan {
            let mut seen = std::collections::HashSet::new();
            for id in ids {
                if !seen.insert(id.as_str()) {
                    continue;
                }
                rows += 1;
                let Some(c) = self.reread(p, def, id).await? else {
                    continue;
                };
                let Ok(doc) = serde_json::from_str::<Value>(&c.text) else {
                    continue;
                };
                if filter.matches(&doc) && !visit(c, &doc) {
                    break;
                }
            }
            return Ok(rows);
        }
        let queries: Vec<Query> = match plan {
            Plan::Index { n, ranges, .. } => ranges
                .iter()
                .map(|r| {
                    Query::partition(keys::row_index_partition(&p.id, &def.id, *n)).sort(r.clone())
                })
                .collect(),
            _ => vec![Query::partition(keys::rows_partition(&p.id, &def.id))],
        };
        let dedupe = matches!(plan, Plan::Index { .. });
        let mut seen = std::collections::HashSet::new();
        let mut bytes = 0usize;
        for q in queries {
            let mut cursor = None;
            loop {
                let page = self
                    .table
                    .query(q.clone().limit(1000).after(cursor))
                    .await?;
                for item in page.items {
                    rows += 1;
                    let text = item.get(DOC).and_then(V::as_str).unwrap_or("{}");
                    bytes += text.len();
                    if rows > self.limits.scan_rows {
                        return Err(too_broad(&format!("{} rows", self.limits.scan_rows), plan));
                    }
                    if bytes > self.limits.scan_bytes {
                        return Err(too_broad(
                            &format!("{} bytes", self.limits.scan_bytes),
                            plan,
                        ));
                    }
                    if rows % 256 == 0 {
                        if started.elapsed() > QUERY_TIME {
                            return Err(too_broad(
                                &format!("{} s of work", QUERY_TIME.as_secs()),
                                plan,
                            ));
                        }
                        // Long scans share the cores with the requests beside them.
                        tokio::task::yield_now().await;
                    }
                    let Ok(doc) = serde_json::from_str::<Value>(text) else {
                        tracing::warn!(project_id = %p.id, table = %def.name, "a stored row is not JSON; skipped");
                        continue;
                    };
                    if !filter.matches(&doc) {
                        continue;
                    }
                    let id = doc
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    // A row with several entries in range (list values) counts once.
                    if dedupe && !seen.insert(id.clone()) {
                        continue;
                    }
                    let c = Cand {
                        id,
                        version: item.get(VERSION).and_then(V::as_i64).unwrap_or(1),
                        bytes: text.len() as i64,
                        text: text.to_owned(),
                    };
                    if !visit(c, &doc) {
                        return Ok(rows);
                    }
                }
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        Ok(rows)
    }

    fn parse_filter(filter: Option<&Value>, at: &At) -> Result<Filter, DomainError> {
        Filter::parse(filter.unwrap_or(&Value::Null)).map_err(|e| filter_error(at.clone(), e))
    }

    /// Runs a query: the rows of the page (at most `page_bytes` of them, `truncated`
    /// when cut short), and the total that match.
    pub async fn query(
        &self,
        p: &Project,
        def: &TableDef,
        q: RowQuery,
        filter_at: At,
        page_bytes: usize,
    ) -> Result<RowPage, DomainError> {
        if q.offset > MAX_OFFSET {
            return Err(filter_at.invalid(format!(
                "offset is at most {MAX_OFFSET}; narrow the filter instead"
            )));
        }
        let filter = Self::parse_filter(q.filter.as_ref(), &filter_at)?;
        let schema = def.schema();
        let want = q.offset.saturating_add(q.limit);
        // No filter and no sort: the first rows in id order, and the counter's total.
        if filter == Filter::All && q.sort.is_empty() {
            let mut page = Page::new(q.limit, page_bytes);
            let mut seen = 0usize;
            let examined = if q.limit == 0 {
                0
            } else {
                self.scan(p, def, &Plan::Scan, &filter, |c, _| {
                    seen += 1;
                    seen <= q.offset || page.push(c.text)
                })
                .await?
            };
            let (rows, truncated) = page.finish(&q.projection);
            return Ok(RowPage {
                rows,
                total: def.row_count.max(0) as usize,
                plan: "count".into(),
                examined,
                truncated,
            });
        }
        let plan = Self::plan(&schema, &filter);
        let sort = &q.sort;
        let mut total = 0usize;
        let mut page = Page::new(q.limit, page_bytes);
        // Sorted: the best `want` rows so far, as their sort keys and text.
        let mut kept: Vec<(Vec<Value>, String)> = Vec::new();
        let mut kept_bytes = 0usize;
        let mut over = false;
        let examined = self
            .scan(p, def, &plan, &filter, |c, doc| {
                total += 1;
                if sort.is_empty() {
                    if total > q.offset {
                        page.push(c.text);
                    }
                    return true;
                }
                if want == 0 {
                    return true;
                }
                kept_bytes += c.text.len();
                kept.push((sort.keys(doc), c.text));
                if kept.len() >= want.saturating_mul(2).max(1024) || kept_bytes > KEEP_BYTES {
                    kept.sort_by(|a, b| sort.cmp_keys(&a.0, &b.0));
                    kept.truncate(want);
                    kept_bytes = kept.iter().map(|k| k.1.len()).sum();
                    if kept_bytes > KEEP_BYTES {
                        over = true;
                        return false;
                    }
                }
                true
            })
            .await?;
        if over {
            return Err(DomainError::coded(
                Refusal::BadRequest,
                "QUERY_TOO_BROAD",
                format!(
                    "the {want} rows up to this page hold over {} MiB; ask for a smaller offset or limit",
                    KEEP_BYTES >> 20
                ),
            ));
        }
        if !sort.is_empty() {
            kept.sort_by(|a, b| sort.cmp_keys(&a.0, &b.0));
            for (_, text) in kept.into_iter().skip(q.offset) {
                if !page.push(text) {
                    break;
                }
            }
        }
        let (rows, truncated) = page.finish(&q.projection);
        let plan = match plan {
            Plan::Scan => "scan".to_owned(),
            Plan::Ids(_) => "id".to_owned(),
            Plan::Index { field, .. } => format!("index:{field}"),
        };
        Ok(RowPage {
            rows,
            total,
            plan,
            examined,
            truncated,
        })
    }

    /// Every matching row, refused past the write limits (rows, bytes) before anything is
    /// written.
    async fn matching(
        &self,
        p: &Project,
        def: &TableDef,
        filter: &Filter,
        cap: usize,
    ) -> Result<Vec<Cand>, DomainError> {
        let plan = Self::plan(&def.schema(), filter);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut over = false;
        self.scan(p, def, &plan, filter, |c, _| {
            bytes += c.text.len();
            if out.len() >= cap || bytes > KEEP_BYTES {
                over = true;
                return false;
            }
            out.push(c);
            true
        })
        .await?;
        if over {
            return Err(DomainError::coded(
                Refusal::BadRequest,
                "TOO_MANY_ROWS",
                format!(
                    "the filter matches more than {cap} rows or {} MiB of them; one call changes at most that: narrow the filter or repeat with a limit",
                    KEEP_BYTES >> 20
                ),
            ));
        }
        Ok(out)
    }

    async fn reread(
        &self,
        p: &Project,
        def: &TableDef,
        id: &str,
    ) -> Result<Option<Cand>, DomainError> {
        let Some(item) = self.table.get(&keys::row(&p.id, &def.id, id)).await? else {
            return Ok(None);
        };
        let text = item.get(DOC).and_then(V::as_str).unwrap_or("{}");
        Ok(Some(Cand {
            id: id.to_owned(),
            bytes: text.len() as i64,
            version: item.get(VERSION).and_then(V::as_i64).unwrap_or(1),
            text: text.to_owned(),
        }))
    }

    /// Rewrites one row with its index entries, conditional on its version.
    async fn rewrite(
        &self,
        p: &Project,
        def: &TableDef,
        schema: &Schema,
        old: &Cand,
        new: &Value,
        text: &str,
    ) -> Result<(), StoreError> {
        let v = old.version + 1;
        let old_doc: Value = serde_json::from_str(&old.text).unwrap_or(Value::Null);
        let new_keys = Self::index_keys(p, def, schema, &old.id, new);
        let mut ops = vec![TxOp::Put {
            item: Self::row_item(p, def, &old.id, text, v),
            condition: Some(Condition::Equals(VERSION.into(), V::int(old.version))),
        }];
        for k in Self::index_keys(p, def, schema, &old.id, &old_doc) {
            if !new_keys.contains(&k) {
                ops.push(TxOp::Delete {
                    key: k,
                    condition: None,
                });
            }
        }
        for item in Self::index_items(p, def, schema, &old.id, new, text, v) {
            ops.push(TxOp::Put {
                item,
                condition: None,
            });
        }
        if ops.len() == 1 {
            let TxOp::Put { item, condition } = ops.remove(0) else {
                unreachable!()
            };
            return self.table.put(item, condition).await;
        }
        self.table.transact(ops).await
    }

    /// Applies an update to every matching row (`$set`, `$inc`, `$unset`); with
    /// `upsert`, inserts one row when none match. All changed rows are checked against
    /// the schema and the write budget before any is written.
    pub async fn update(
        &self,
        p: &Project,
        def: &TableDef,
        filter: Option<&Value>,
        change: &Value,
        upsert: bool,
        at: (At, At),
    ) -> Result<Updated, DomainError> {
        let filter = Self::parse_filter(filter, &at.0)?;
        let change = Change::parse(change).map_err(|e| filter_error(at.1.clone(), e))?;
        let schema = def.schema();
        let matched = self
            .matching(p, def, &filter, self.limits.write_rows)
            .await?;
        if matched.is_empty() {
            if !upsert {
                return Ok(Updated::default());
            }
            let mut row = Map::new();
            for (path, v) in filter.equalities() {
                crate::filter::set_path(&mut row, path, v.clone());
            }
            change
                .apply(&mut row)
                .map_err(|e| filter_error(at.1.clone(), e))?;
            let ids = self
                .insert(p, def, vec![Value::Object(row)], At::body("update"))
                .await?;
            return Ok(Updated {
                matched: 0,
                modified: 0,
                upserted_id: ids.into_iter().next(),
            });
        }
        // Check every new row first: a schema, size or budget failure writes nothing.
        let mut planned = Vec::with_capacity(matched.len());
        let mut written = 0usize;
        for c in matched {
            let new = self.changed(&c, &change, &schema, &at.1)?;
            if let Some((doc, text)) = &new {
                written += (1 + Self::index_keys(p, def, &schema, "", doc).len()) * text.len();
                if written > WRITE_BYTES {
                    return Err(DomainError::coded(
                        Refusal::BadRequest,
                        "TOO_MANY_ROWS",
                        format!(
                            "this update would write over {} MiB (rows and their index copies); narrow the filter",
                            WRITE_BYTES >> 20
                        ),
                    ));
                }
            }
            planned.push((c, new));
        }
        let total = planned.len();
        let results: Vec<Result<(bool, i64), DomainError>> = futures::stream::iter(planned)
            .map(|(c, new)| {
                let (change, schema, filter, at1) = (&change, &schema, &filter, &at.1);
                async move {
                    let (mut c, mut new) = (c, new);
                    for _ in 0..5 {
                        let Some((doc, text)) = new else {
                            return Ok((false, 0));
                        };
                        match self.rewrite(p, def, schema, &c, &doc, &text).await {
                            Ok(()) => return Ok((true, text.len() as i64 - c.bytes)),
                            Err(StoreError::Conflict) => {
                                // Changed under us: read it again and re-apply, if it
                                // still matches.
                                match self.reread(p, def, &c.id).await? {
                                    Some(fresh)
                                        if serde_json::from_str::<Value>(&fresh.text)
                                            .is_ok_and(|d| filter.matches(&d)) =>
                                    {
                                        new = self.changed(&fresh, change, schema, at1)?;
                                        c = fresh;
                                    }
                                    _ => return Ok((false, 0)),
                                }
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                    Err(DomainError::Conflict(format!(
                        "row {} kept changing during the update; retry",
                        c.id
                    )))
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let mut modified = 0;
        let mut delta = 0;
        let mut first_err = None;
        for r in results {
            match r {
                Ok((true, d)) => {
                    modified += 1;
                    delta += d;
                }
                Ok((false, _)) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if delta != 0 {
            // One counter write for the whole update (per-row ones would contend on the
            // table's item); a failure here leaves `bytes` off, never the rows.
            if let Err(e) = self
                .table
                .update(
                    &keys::table(&p.id, &def.name),
                    vec![Update::Add(BYTES.into(), delta)],
                    Some(Condition::Equals(TABLE_ID.into(), V::S(def.id.clone()))),
                )
                .await
            {
                tracing::warn!(error = %e, table = %def.name, delta, "table byte count not updated");
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        Ok(Updated {
            matched: total,
            modified,
            upserted_id: None,
        })
    }

    /// The row after the change, as (document, JSON text); `None` when unchanged.
    fn changed(
        &self,
        c: &Cand,
        change: &Change,
        schema: &Schema,
        at: &At,
    ) -> Result<Option<(Value, String)>, DomainError> {
        let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(&c.text) else {
            return Ok(None);
        };
        let before = Value::Object(m.clone());
        change
            .apply(&mut m)
            .map_err(|e| filter_error(at.clone(), e))?;
        m.insert("id".into(), Value::String(c.id.clone()));
        schema
            .check(&m)
            .map_err(|(field, msg)| at.clone().invalid(format!("row {}: {field}: {msg}", c.id)))?;
        let doc = Value::Object(m);
        if crate::filter::same(&doc, &before) {
            return Ok(None);
        }
        self.check_row(&doc, schema, &c.id)
            .map(|text| Some((doc, text)))
            .map_err(|m| at.clone().invalid(m))
    }

    /// A row's limits, as insert and update check them: its size, nesting and index
    /// copies. The row's JSON text when it passes.
    fn check_row(&self, doc: &Value, schema: &Schema, id: &str) -> Result<String, String> {
        if crate::filter::depth(doc) > MAX_DEPTH {
            return Err(format!("row {id} nests deeper than {MAX_DEPTH} levels"));
        }
        let text = doc.to_string();
        if text.len() > self.limits.row_bytes {
            return Err(format!(
                "row {id} is {} bytes as JSON; the limit is {} bytes",
                text.len(),
                self.limits.row_bytes
            ));
        }
        let entries: usize = schema
            .indexes
            .iter()
            .map(|f| schema::entries(doc, f).len())
            .sum();
        if entries > self.limits.entries_per_row {
            return Err(format!(
                "row {id} has {entries} index entries (list values index each element); at most {}",
                self.limits.entries_per_row
            ));
        }
        // Every entry is a copy of the row: bound what one row writes.
        if (1 + entries) * text.len() > ROW_WRITE_BYTES {
            return Err(format!(
                "row {id} of {} bytes with {entries} index entries (each a copy of the row) writes over {} KiB; index fewer list elements or send a smaller row",
                text.len(),
                ROW_WRITE_BYTES >> 10
            ));
        }
        Ok(text)
    }

    /// Deletes the matching rows (at most `limit` when it is not 0), with their index
    /// entries and the table's counters, in transactions; returns how many went.
    pub async fn delete_rows(
        &self,
        p: &Project,
        def: &TableDef,
        filter: Option<&Value>,
        limit: usize,
        at: At,
    ) -> Result<usize, DomainError> {
        let filter = Self::parse_filter(filter, &at)?;
        let schema = def.schema();
        let mut rows = if limit > 0 {
            let plan = Self::plan(&schema, &filter);
            let mut out = Vec::new();
            let cap = limit.min(self.limits.write_rows);
            let mut bytes = 0usize;
            self.scan(p, def, &plan, &filter, |c, _| {
                bytes += c.text.len();
                out.push(c);
                out.len() < cap && bytes < KEEP_BYTES
            })
            .await?;
            out
        } else {
            self.matching(p, def, &filter, self.limits.write_rows)
                .await?
        };
        let keys_of = |c: &Cand| -> Vec<Key> {
            let doc: Value = serde_json::from_str(&c.text).unwrap_or(Value::Null);
            Self::index_keys(p, def, &schema, &c.id, &doc)
        };
        let mut deleted = 0usize;
        while !rows.is_empty() {
            let mut ops = Vec::new();
            let mut batch = Vec::new();
            let (mut n, mut bytes) = (0i64, 0i64);
            while let Some(c) = rows.last() {
                let ks = keys_of(c);
                if !ops.is_empty()
                    && ops.len() + 2 + ks.len() > zerodb_domain::store::MAX_TRANSACTION_ITEMS
                {
                    break;
                }
                let Some(c) = rows.pop() else { break };
                ops.push(TxOp::Delete {
                    key: keys::row(&p.id, &def.id, &c.id),
                    condition: Some(Condition::Equals(VERSION.into(), V::int(c.version))),
                });
                ops.extend(ks.into_iter().map(|key| TxOp::Delete {
                    key,
                    condition: None,
                }));
                n += 1;
                bytes += c.bytes;
                batch.push(c);
            }
            ops.push(Self::counters(p, def, -n, -bytes));
            match self.table.transact(ops).await {
                Ok(()) => deleted += batch.len(),
                Err(StoreError::Conflict) => {
                    // A row changed (or went) meanwhile: one at a time, as it is now.
                    for c in batch {
                        if let Some(fresh) = self.reread(p, def, &c.id).await?
                            && serde_json::from_str::<Value>(&fresh.text)
                                .is_ok_and(|d| filter.matches(&d))
                        {
                            let mut ops = vec![TxOp::Delete {
                                key: keys::row(&p.id, &def.id, &fresh.id),
                                condition: Some(Condition::Equals(
                                    VERSION.into(),
                                    V::int(fresh.version),
                                )),
                            }];
                            ops.extend(keys_of(&fresh).into_iter().map(|key| TxOp::Delete {
                                key,
                                condition: None,
                            }));
                            ops.push(Self::counters(p, def, -1, -fresh.bytes));
                            match self.table.transact(ops).await {
                                Ok(()) => deleted += 1,
                                Err(StoreError::Conflict) => {}
                                Err(e) => return Err(e.into()),
                            }
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(deleted)
    }
}

/// A page of rows being filled: at most `limit` rows and about `bytes` of their text
/// (a page stops before the row that would pass the bytes, but always holds one).
struct Page {
    texts: Vec<String>,
    limit: usize,
    bytes: usize,
    used: usize,
    truncated: bool,
}

impl Page {
    fn new(limit: usize, bytes: usize) -> Self {
        Page {
            texts: Vec::new(),
            limit,
            bytes,
            used: 0,
            truncated: false,
        }
    }

    /// Adds a row; false once the page is full (the caller may stop).
    fn push(&mut self, text: String) -> bool {
        if self.texts.len() >= self.limit || self.truncated {
            return false;
        }
        if !self.texts.is_empty() && self.used + text.len() > self.bytes {
            self.truncated = true;
            return false;
        }
        self.used += text.len();
        self.texts.push(text);
        self.texts.len() < self.limit
    }

    fn finish(self, projection: &Projection) -> (Vec<Value>, bool) {
        let rows = self
            .texts
            .into_iter()
            .filter_map(|t| serde_json::from_str(&t).ok())
            .map(|r| projection.apply(r))
            .collect();
        (rows, self.truncated)
    }
}

/// Tables need `zerodb:read` to read and `zerodb:write` to change.
pub fn require(caller: &Principal, access: Access) -> Result<(), DomainError> {
    let perm = match access {
        Access::Read => Permission::Read,
        Access::Write => Permission::Write,
    };
    caller.require(Service::Zerodb, perm, None)
}
