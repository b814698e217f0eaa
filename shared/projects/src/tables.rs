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
}

/// An update's outcome.
#[derive(Debug, Clone, Default)]
pub struct Updated {
    pub matched: usize,
    pub modified: usize,
    pub upserted_id: Option<String>,
}

/// One candidate row: its id, document and version.
struct Cand {
    id: String,
    doc: Value,
    version: i64,
    bytes: i64,
}

/// How a query finds its candidates.
#[derive(Debug, Clone, PartialEq)]
enum Plan {
    Scan,
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

fn too_broad(what: &str, limit: usize, plan: &Plan) -> DomainError {
    let hint = match plan {
        Plan::Scan => "declare an index on a field you filter by (schema.indexes), or narrow the filter",
        Plan::Index { .. } => "narrow the indexed condition",
    };
    DomainError::coded(
        Refusal::BadRequest,
        "QUERY_TOO_BROAD",
        format!("this query would read more than {limit} {what}; {hint}"),
    )
}

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
        let existing = self
            .table
            .query(
                Query::partition(keys::database_partition(&p.id))
                    .begins_with(keys::TABLE_PREFIX)
                    .limit(self.limits.tables + 1),
            )
            .await?;
        if existing.items.len() >= self.limits.tables {
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
        let page = self
            .table
            .query(
                Query::partition(keys::database_partition(&p.id))
                    .begins_with(keys::TABLE_PREFIX)
                    .limit(self.limits.tables + 1),
            )
            .await?;
        page.items
            .into_iter()
            .map(|i| from_item(i).map_err(DomainError::from))
            .collect()
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
                Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(_) => {
                    return Err(here.field("id").invalid(
                        "a row id is a string of 1–256 characters without control characters",
                    ));
                }
            };
            if !seen.insert(id.clone()) {
                return Err(here.field("id").invalid(format!("row id '{id}' appears twice in this call")));
            }
            m.insert("id".into(), Value::String(id.clone()));
            schema
                .check(&m)
                .map_err(|(field, msg)| here.clone().field(&field).invalid(msg))?;
            let doc = Value::Object(m);
            let text = doc.to_string();
            if text.len() > self.limits.row_bytes {
                return Err(here.invalid(format!(
                    "row is {} bytes as JSON; the limit is {} bytes",
                    text.len(),
                    self.limits.row_bytes
                )));
            }
            let entries: usize = schema.indexes.iter().map(|f| schema::entries(&doc, f).len()).sum();
            if entries > self.limits.entries_per_row {
                return Err(here.invalid(format!(
                    "row has {entries} index entries (list values index each element); at most {}",
                    self.limits.entries_per_row
                )));
            }
            // The row and its entries are written together, in one transaction.
            if (1 + entries) * (text.len() + 300) > crate::project::TX_BYTES {
                return Err(here.invalid(format!(
                    "row of {} bytes with {entries} index entries (each a copy of the row) is over {} bytes in all; index fewer list elements or send a smaller row",
                    text.len(),
                    crate::project::TX_BYTES
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
            updates: vec![Update::Add(ROW_COUNT.into(), rows), Update::Add(BYTES.into(), bytes)],
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
                    ops.push(TxOp::Put { item, condition: None });
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
        let mut best: Option<(u8, Plan)> = None;
        let conj = filter.conjuncts();
        for (n, field) in schema.indexes.iter().enumerate() {
            let ops: Vec<&Op> = conj.iter().filter(|(p, _)| p == field).map(|(_, o)| *o).collect();
            for op in &ops {
                let candidate = match op {
                    Op::Eq(v) if !v.is_null() => schema::encode(v).map(|e| {
                        (0, vec![SortKey::BeginsWith(if schema::truncated(v) { e } else { format!("{e}#") })])
                    }),
                    Op::In(vs) if !vs.is_empty() && vs.len() <= 50 && !vs.iter().any(Value::is_null) => vs
                        .iter()
                        .map(|v| {
                            schema::encode(v).map(|e| {
                                SortKey::BeginsWith(if schema::truncated(v) { e } else { format!("{e}#") })
                            })
                        })
                        .collect::<Option<Vec<_>>>()
                        .map(|r| (1, r)),
                    _ => None,
                };
                if let Some((rank, ranges)) = candidate
                    && best.as_ref().is_none_or(|(r, _)| rank < *r)
                {
                    best = Some((rank, Plan::Index { n, field: field.clone(), ranges }));
                }
            }
            if best.is_none()
                && let Some(range) = Self::range(&ops)
            {
                best = Some((2, Plan::Index { n, field: field.clone(), ranges: vec![range] }));
            }
        }
        best.map(|(_, p)| p).unwrap_or(Plan::Scan)
    }

    /// One key range from `$gt/$gte/$lt/$lte` on one field, when they compare values of
    /// one kind (numbers, or strings).
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
            let trunc = schema::truncated(v);
            if is_lower {
                // Strictly above: past every entry of this value ('$' sorts after '#').
                let b = if strict && !trunc { format!("{e}$") } else { e };
                if lower.as_ref().is_none_or(|l| b > *l) {
                    lower = Some(b);
                }
            } else {
                let b = if strict && !trunc { e } else { format!("{e}$") };
                if upper.as_ref().is_none_or(|u| b < *u) {
                    upper = Some(b);
                }
            }
        }
        let k = kind?;
        Some(SortKey::Between(
            lower.unwrap_or_else(|| k.to_string()),
            upper.unwrap_or_else(|| format!("{k}~")),
        ))
    }

    /// Visits every candidate row of the plan that matches the filter, within the scan
    /// budget; `visit` returns false to stop early.
    async fn scan(
        &self,
        p: &Project,
        def: &TableDef,
        plan: &Plan,
        filter: &Filter,
        mut visit: impl FnMut(Cand) -> bool,
    ) -> Result<usize, DomainError> {
        let queries: Vec<Query> = match plan {
            Plan::Scan => vec![Query::partition(keys::rows_partition(&p.id, &def.id))],
            Plan::Index { n, ranges, .. } => ranges
                .iter()
                .map(|r| Query::partition(keys::row_index_partition(&p.id, &def.id, *n)).sort(r.clone()))
                .collect(),
        };
        let multikey = matches!(plan, Plan::Index { ranges, .. } if ranges.len() > 1)
            || matches!(plan, Plan::Index { .. });
        let mut seen = std::collections::HashSet::new();
        let (mut rows, mut bytes) = (0usize, 0usize);
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
                        return Err(too_broad("rows", self.limits.scan_rows, plan));
                    }
                    if bytes > self.limits.scan_bytes {
                        return Err(too_broad("bytes", self.limits.scan_bytes, plan));
                    }
                    let Ok(doc) = serde_json::from_str::<Value>(text) else { continue };
                    if !filter.matches(&doc) {
                        continue;
                    }
                    let id = doc.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
                    // A row with several entries in range (list values) counts once.
                    if multikey && !seen.insert(id.clone()) {
                        continue;
                    }
                    let c = Cand {
                        id,
                        version: item.get(VERSION).and_then(V::as_i64).unwrap_or(1),
                        bytes: text.len() as i64,
                        doc,
                    };
                    if !visit(c) {
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

    /// Runs a query: the rows of the page, and the total that match.
    pub async fn query(
        &self,
        p: &Project,
        def: &TableDef,
        q: RowQuery,
        filter_at: At,
    ) -> Result<RowPage, DomainError> {
        let filter = Self::parse_filter(q.filter.as_ref(), &filter_at)?;
        let schema = def.schema();
        let want = q.offset.saturating_add(q.limit);
        // No filter and no sort: the first rows in id order, and the counter's total.
        if filter == Filter::All && q.sort.is_empty() {
            let mut rows = Vec::new();
            let examined = if want == 0 {
                0
            } else {
                self.scan(p, def, &Plan::Scan, &filter, |c| {
                    rows.push(c.doc);
                    rows.len() < want
                })
                .await?
            };
            let rows = rows.into_iter().skip(q.offset).map(|r| q.projection.apply(r)).collect();
            return Ok(RowPage { rows, total: def.row_count.max(0) as usize, plan: "count".into(), examined });
        }
        let plan = Self::plan(&schema, &filter);
        let mut kept: Vec<Value> = Vec::new();
        let mut total = 0usize;
        let sort = &q.sort;
        let examined = self
            .scan(p, def, &plan, &filter, |c| {
                total += 1;
                if want > 0 {
                    kept.push(c.doc);
                    // Keep memory to the page: trim to the best `want` rows now and then.
                    if !sort.is_empty() && kept.len() >= want.saturating_mul(2).max(1024) {
                        kept.sort_by(|a, b| sort.cmp(a, b));
                        kept.truncate(want);
                    } else if sort.is_empty() && kept.len() > want {
                        kept.truncate(want);
                    }
                }
                true
            })
            .await?;
        if !sort.is_empty() {
            kept.sort_by(|a, b| sort.cmp(a, b));
        }
        let rows = kept
            .into_iter()
            .skip(q.offset)
            .take(q.limit)
            .map(|r| q.projection.apply(r))
            .collect();
        let plan = match plan {
            Plan::Scan => "scan".to_owned(),
            Plan::Index { field, .. } => format!("index:{field}"),
        };
        Ok(RowPage { rows, total, plan, examined })
    }

    /// Every matching row, refused past the write limit before anything is written.
    async fn matching(
        &self,
        p: &Project,
        def: &TableDef,
        filter: &Filter,
        cap: usize,
    ) -> Result<Vec<Cand>, DomainError> {
        let plan = Self::plan(&def.schema(), filter);
        let mut out = Vec::new();
        let mut over = false;
        self.scan(p, def, &plan, filter, |c| {
            if out.len() >= cap {
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
                    "the filter matches more than {cap} rows; one call changes at most {cap}: narrow the filter or repeat with a limit"
                ),
            ));
        }
        Ok(out)
    }

    async fn reread(&self, p: &Project, def: &TableDef, id: &str) -> Result<Option<Cand>, DomainError> {
        let Some(item) = self.table.get(&keys::row(&p.id, &def.id, id)).await? else {
            return Ok(None);
        };
        let text = item.get(DOC).and_then(V::as_str).unwrap_or("{}");
        Ok(serde_json::from_str(text).ok().map(|doc| Cand {
            id: id.to_owned(),
            bytes: text.len() as i64,
            version: item.get(VERSION).and_then(V::as_i64).unwrap_or(1),
            doc,
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
        let new_keys = Self::index_keys(p, def, schema, &old.id, new);
        let mut ops = vec![TxOp::Put {
            item: Self::row_item(p, def, &old.id, text, v),
            condition: Some(Condition::Equals(VERSION.into(), V::int(old.version))),
        }];
        for k in Self::index_keys(p, def, schema, &old.id, &old.doc) {
            if !new_keys.contains(&k) {
                ops.push(TxOp::Delete { key: k, condition: None });
            }
        }
        for item in Self::index_items(p, def, schema, &old.id, new, text, v) {
            ops.push(TxOp::Put { item, condition: None });
        }
        if ops.len() == 1 {
            let TxOp::Put { item, condition } = ops.remove(0) else { unreachable!() };
            return self.table.put(item, condition).await;
        }
        self.table.transact(ops).await
    }

    /// Applies an update to every matching row (`$set`, `$inc`, `$unset`); with
    /// `upsert`, inserts one row when none match. All changed rows are checked against
    /// the schema before any is written.
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
        let matched = self.matching(p, def, &filter, self.limits.write_rows).await?;
        if matched.is_empty() {
            if !upsert {
                return Ok(Updated::default());
            }
            let mut row = Map::new();
            for (path, v) in filter.equalities() {
                crate::filter::set_path(&mut row, path, v.clone());
            }
            change.apply(&mut row).map_err(|e| filter_error(at.1.clone(), e))?;
            let ids = self.insert(p, def, vec![Value::Object(row)], At::body("update")).await?;
            return Ok(Updated { matched: 0, modified: 0, upserted_id: ids.into_iter().next() });
        }
        // Check every new row first: a schema or size failure writes nothing.
        let mut planned = Vec::with_capacity(matched.len());
        for c in matched {
            let new = self.changed(&c, &change, &schema, &at.1)?;
            planned.push((c, new));
        }
        let total = planned.len();
        let results: Vec<Result<(bool, i64), DomainError>> = futures::stream::iter(planned)
            .map(|(c, new)| {
                let (change, schema, filter, at1) = (&change, &schema, &filter, &at.1);
                async move {
                    let (mut c, mut new) = (c, new);
                    for _ in 0..5 {
                        let Some((doc, text)) = new else { return Ok((false, 0)) };
                        match self.rewrite(p, def, schema, &c, &doc, &text).await {
                            Ok(()) => return Ok((true, text.len() as i64 - c.bytes)),
                            Err(StoreError::Conflict) => {
                                // Changed under us: read it again and re-apply, if it
                                // still matches.
                                match self.reread(p, def, &c.id).await? {
                                    Some(fresh) if filter.matches(&fresh.doc) => {
                                        new = self.changed(&fresh, change, schema, at1)?;
                                        c = fresh;
                                    }
                                    _ => return Ok((false, 0)),
                                }
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                    Err(DomainError::Conflict(format!("row {} kept changing during the update; retry", c.id)))
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
            let _ = self
                .table
                .update(
                    &keys::table(&p.id, &def.name),
                    vec![Update::Add(BYTES.into(), delta)],
                    Some(Condition::Equals(TABLE_ID.into(), V::S(def.id.clone()))),
                )
                .await;
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        Ok(Updated { matched: total, modified, upserted_id: None })
    }

    /// The row after the change, as (document, JSON text); `None` when unchanged.
    fn changed(
        &self,
        c: &Cand,
        change: &Change,
        schema: &Schema,
        at: &At,
    ) -> Result<Option<(Value, String)>, DomainError> {
        let Value::Object(mut m) = c.doc.clone() else { return Ok(None) };
        change.apply(&mut m).map_err(|e| filter_error(at.clone(), e))?;
        m.insert("id".into(), Value::String(c.id.clone()));
        schema.check(&m).map_err(|(field, msg)| {
            at.clone().invalid(format!("row {}: {field}: {msg}", c.id))
        })?;
        let doc = Value::Object(m);
        if crate::filter::same(&doc, &c.doc) {
            return Ok(None);
        }
        let text = doc.to_string();
        if text.len() > self.limits.row_bytes {
            return Err(at.clone().invalid(format!(
                "row {} would be {} bytes as JSON; the limit is {} bytes",
                c.id,
                text.len(),
                self.limits.row_bytes
            )));
        }
        let entries: usize = schema.indexes.iter().map(|f| schema::entries(&doc, f).len()).sum();
        if entries > self.limits.entries_per_row
            || (1 + entries) * (text.len() + 300) > crate::project::TX_BYTES
        {
            return Err(at.clone().invalid(format!(
                "row {} would have {entries} index entries of {} bytes each; at most {} entries and {} bytes in all",
                c.id,
                text.len(),
                self.limits.entries_per_row,
                crate::project::TX_BYTES
            )));
        }
        Ok(Some((doc, text)))
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
            self.scan(p, def, &plan, &filter, |c| {
                out.push(c);
                out.len() < cap
            })
            .await?;
            out
        } else {
            self.matching(p, def, &filter, self.limits.write_rows).await?
        };
        let mut deleted = 0usize;
        while !rows.is_empty() {
            let mut ops = Vec::new();
            let mut batch = Vec::new();
            let (mut n, mut bytes) = (0i64, 0i64);
            while let Some(c) = rows.last() {
                let ks = Self::index_keys(p, def, &schema, &c.id, &c.doc);
                if !ops.is_empty() && ops.len() + 2 + ks.len() > zerodb_domain::store::MAX_TRANSACTION_ITEMS {
                    break;
                }
                let Some(c) = rows.pop() else { break };
                ops.push(TxOp::Delete {
                    key: keys::row(&p.id, &def.id, &c.id),
                    condition: Some(Condition::Equals(VERSION.into(), V::int(c.version))),
                });
                ops.extend(ks.into_iter().map(|key| TxOp::Delete { key, condition: None }));
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
                            && filter.matches(&fresh.doc)
                        {
                            let mut ops = vec![TxOp::Delete {
                                key: keys::row(&p.id, &def.id, &fresh.id),
                                condition: Some(Condition::Equals(VERSION.into(), V::int(fresh.version))),
                            }];
                            ops.extend(
                                Self::index_keys(p, def, &schema, &fresh.id, &fresh.doc)
                                    .into_iter()
                                    .map(|key| TxOp::Delete { key, condition: None }),
                            );
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

/// Tables need `zerodb:read` to read and `zerodb:write` to change.
pub fn require(caller: &Principal, access: Access) -> Result<(), DomainError> {
    let perm = match access {
        Access::Read => Permission::Read,
        Access::Write => Permission::Write,
    };
    caller.require(Service::Zerodb, perm, None)
}
