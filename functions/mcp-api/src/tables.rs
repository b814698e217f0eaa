//! Table operations on [`zerodb_projects::Tables`], with database-api's checks and
//! table shape: `zerodb:read` to read, `zerodb:write` to write, then the project gate.

use database_api::tables::{QueryRows, SortSpec, parse_query, view};
use serde::Deserialize;
use serde_json::{Value, json};
use zerodb_domain::{At, DomainError};
use zerodb_projects::schema::{Schema, check_table_name};
use zerodb_projects::tables::PAGE_BYTES;
use zerodb_projects::{Access, Project};

use crate::McpApi;
use crate::rpc::{Call, Window, in_params, param};

async fn project(
    s: &McpApi,
    c: &Call<'_>,
    id: &str,
    access: Access,
) -> Result<Project, DomainError> {
    s.tables.project(c.caller, id, access).await
}

fn to_value(v: impl serde::Serialize) -> Result<Value, DomainError> {
    serde_json::to_value(v).map_err(|e| DomainError::Unexpected(e.into()))
}

#[derive(Deserialize)]
struct Create {
    project_id: String,
    table_name: String,
    #[serde(default)]
    schema_definition: Option<Value>,
    #[serde(default)]
    indexes: Option<Value>,
    #[serde(default)]
    description: Option<String>,
}

/// The schema of `schema_definition` (field → type) and `indexes`, its problems at the
/// param they are in.
fn schema(fields: Option<Value>, indexes: Option<Value>) -> Result<Schema, DomainError> {
    let doc = json!({
        "fields": fields.unwrap_or_else(|| json!({})),
        "indexes": indexes.unwrap_or_else(|| json!([])),
    });
    Schema::parse(&doc).map_err(|(path, msg)| {
        let mut parts = path.split('.').filter(|p| !p.is_empty());
        let mut at = match parts.next() {
            Some("indexes") => param("indexes"),
            _ => param("schema_definition"),
        };
        for p in parts {
            at = match p.parse::<usize>() {
                Ok(i) if path.starts_with("indexes") => at.index(i),
                _ => at.field(p),
            };
        }
        at.invalid(msg)
    })
}

/// `create_table`.
pub async fn create(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: Create = c.params()?;
    check_table_name(&req.table_name).map_err(|m| param("table_name").invalid(m))?;
    let schema = schema(req.schema_definition, req.indexes)?;
    let description = req.description.map(|d| d.chars().take(500).collect());
    let p = project(s, c, &req.project_id, Access::Write).await?;
    let d = s
        .tables
        .create(&p, &req.table_name, schema, description)
        .await?;
    to_value(view(&d))
}

#[derive(Deserialize)]
struct List {
    project_id: String,
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    limit: Option<i64>,
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    offset: Option<i64>,
}

/// `list_tables`.
pub async fn list(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: List = c.params()?;
    let w = Window::parse(req.limit, req.offset, 100_000)?;
    let p = project(s, c, &req.project_id, Access::Read).await?;
    let all = s.tables.list(&p).await?;
    let tables: Vec<_> = all.iter().skip(w.offset).take(w.limit).map(view).collect();
    Ok(
        json!({"tables": to_value(tables)?, "total": all.len(), "limit": w.limit, "offset": w.offset}),
    )
}

#[derive(Deserialize)]
struct One {
    project_id: String,
    table_name: String,
}

/// `get_table`, by name or id.
pub async fn get(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: One = c.params()?;
    let p = project(s, c, &req.project_id, Access::Read).await?;
    to_value(view(&s.tables.get(&p, &req.table_name).await?))
}

/// `delete_table`: the client sends no confirmation; the operation is one.
pub async fn drop(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: One = c.params()?;
    let p = project(s, c, &req.project_id, Access::Write).await?;
    let d = s.tables.get(&p, &req.table_name).await?;
    let rows_deleted = s.tables.drop_table(&p, &d).await?;
    Ok(
        json!({"status": "success", "table_name": d.name, "deleted": true, "rows_deleted": rows_deleted}),
    )
}

#[derive(Deserialize)]
struct Insert {
    project_id: String,
    table_name: String,
    rows: Vec<Value>,
}

/// `insert_rows`: every row is checked before any is written (a bad one is a 422 at
/// `["body", "params", "rows", i, field]`), so `failed` is always 0.
pub async fn insert(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: Insert = c.params()?;
    let p = project(s, c, &req.project_id, Access::Write).await?;
    let d = s.tables.get(&p, &req.table_name).await?;
    let ids = s.tables.insert(&p, &d, req.rows, param("rows")).await?;
    Ok(json!({
        "inserted": ids.len(),
        "inserted_count": ids.len(),
        "failed": 0,
        "row_ids": ids,
    }))
}

#[derive(Deserialize)]
struct Query {
    project_id: String,
    table_name: String,
    #[serde(default)]
    filters: Option<Value>,
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    limit: Option<i64>,
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    offset: Option<i64>,
    #[serde(default)]
    sort_by: Option<String>,
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    projection: Option<Value>,
}

/// `query_rows`: a Mongo-style filter, `sort_by` with `order`, a page of at most 1000.
pub async fn query(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: Query = c.params()?;
    let dir = match req.order.as_deref().map(str::trim) {
        None | Some("") => 1,
        Some(o) if o.eq_ignore_ascii_case("asc") => 1,
        Some(o) if o.eq_ignore_ascii_case("desc") => -1,
        Some(_) => return Err(param("order").invalid("order is asc or desc")),
    };
    let q = QueryRows {
        filter: req.filters,
        filters: None,
        sort: req
            .sort_by
            .filter(|f| !f.is_empty())
            .map(|f| SortSpec(vec![(f, json!(dir))])),
        projection: req.projection,
        limit: req.limit,
        offset: req.offset,
    };
    let q = parse_query(q, s.tables.limits().page_rows, At::body_root())
        .map_err(|e| in_params(e, &[("sort", "sort_by")]))?;
    let p = project(s, c, &req.project_id, Access::Read).await?;
    let d = s.tables.get(&p, &req.table_name).await?;
    let (limit, offset) = (q.limit, q.offset);
    let page = s
        .tables
        .query(&p, &d, q, param("filters"), PAGE_BYTES)
        .await?;
    Ok(json!({
        "has_more": page.truncated || offset + page.rows.len() < page.total,
        "rows": page.rows,
        "total": page.total,
        "limit": limit,
        "offset": offset,
        "plan": page.plan,
    }))
}

#[derive(Deserialize)]
struct Update {
    project_id: String,
    table_name: String,
    #[serde(default)]
    filters: Option<Value>,
    updates: Value,
}

/// `update_rows`: `$set`, `$inc`, `$unset` (a plain object is a `$set`) on every match.
pub async fn update(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: Update = c.params()?;
    let p = project(s, c, &req.project_id, Access::Write).await?;
    let d = s.tables.get(&p, &req.table_name).await?;
    let u = s
        .tables
        .update(
            &p,
            &d,
            req.filters.as_ref(),
            &req.updates,
            false,
            (param("filters"), param("updates")),
        )
        .await?;
    Ok(json!({
        "updated": u.modified,
        "matched": u.matched,
        "modified_count": u.modified,
        "matched_count": u.matched,
    }))
}

#[derive(Deserialize)]
struct DeleteRows {
    project_id: String,
    table_name: String,
    #[serde(default)]
    filters: Option<Value>,
    #[serde(default)]
    limit: Option<usize>,
}

/// `delete_rows`: `filters` is required (`{}` is every row).
pub async fn delete_rows(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: DeleteRows = c.params()?;
    let Some(filter) = req.filters else {
        return Err(param("filters")
            .problem_of(
                "field required: {} deletes every row",
                "value_error.missing",
            )
            .into());
    };
    let p = project(s, c, &req.project_id, Access::Write).await?;
    let d = s.tables.get(&p, &req.table_name).await?;
    let n = s
        .tables
        .delete_rows(
            &p,
            &d,
            Some(&filter),
            req.limit.unwrap_or(0),
            param("filters"),
        )
        .await?;
    Ok(json!({"deleted": n, "deleted_count": n}))
}
