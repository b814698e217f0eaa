//! Tables and rows under `/api/v1/projects/{project_id}/database/tables` (ainative-python's
//! `zerodb.tables` calls): create with an optional schema, list, get, drop (with
//! `confirm`), insert, query, update and delete by filter.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use zerodb_domain::auth::Principal;
use zerodb_domain::clock::rfc3339_secs;
use zerodb_domain::{At, DomainError};
use zerodb_http::{ApiJson, ApiQuery, ApiResult, Auth, OptionalJson};
use zerodb_projects::filter::{Projection, Sort};
use zerodb_projects::schema::Schema;
use zerodb_projects::tables::{RowQuery, TableDef};
use zerodb_projects::{Access, Project, Tables};

/// The project a route acts on, after the scope check.
pub async fn project(
    t: &Tables,
    caller: &Principal,
    id: &str,
    access: Access,
) -> Result<Project, DomainError> {
    t.project(caller, id, access).await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateTable {
    /// Letters, digits, `_` and `-`, starting with a letter; at most 64.
    #[serde(default)]
    pub table_name: Option<String>,
    /// The same, as ainative-agent names it.
    #[serde(default)]
    pub name: Option<String>,
    /// `{"fields": {"email": "string", "age": "number"}, "indexes": ["email"]}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A table as clients read it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TableView {
    pub id: String,
    pub table_id: String,
    pub table_name: String,
    pub name: String,
    pub description: String,
    #[schema(value_type = Object)]
    pub schema: Value,
    pub indexes: Vec<String>,
    pub row_count: i64,
    pub size_bytes: i64,
    pub created_at: String,
}

pub fn view(d: &TableDef) -> TableView {
    let schema = d.schema();
    TableView {
        id: d.id.clone(),
        table_id: d.id.clone(),
        table_name: d.name.clone(),
        name: d.name.clone(),
        description: d.description.clone().unwrap_or_default(),
        schema: schema.to_json(),
        indexes: schema.indexes.clone(),
        row_count: d.row_count.max(0),
        size_bytes: d.bytes.max(0),
        created_at: rfc3339_secs(d.created_at),
    }
}

/// Parses a create body into (name, schema, description).
pub fn parse_create(req: CreateTable) -> Result<(String, Schema, Option<String>), DomainError> {
    let (name, at) = match (req.table_name, req.name) {
        (Some(n), _) => (n, "table_name"),
        (None, Some(n)) => (n, "name"),
        (None, None) => {
            return Err(At::body("table_name")
                .problem_of("field required", "value_error.missing")
                .into());
        }
    };
    zerodb_projects::schema::check_table_name(&name).map_err(|m| At::body(at).invalid(m))?;
    let schema =
        Schema::parse(req.schema.as_ref().unwrap_or(&Value::Null)).map_err(|(path, msg)| {
            let mut a = At::body("schema");
            for p in path.split('.').filter(|p| !p.is_empty()) {
                a = a.field(p);
            }
            a.invalid(msg)
        })?;
    let description = req.description.map(|d| d.chars().take(500).collect());
    Ok((name, schema, description))
}

/// Creates a table (`zerodb:write`); 409 `TABLE_EXISTS` when the name is taken.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/database/tables", tag = "tables",
    params(("project_id" = String, Path)), request_body = CreateTable,
    responses((status = 201, body = TableView),
        (status = 409, description = "TABLE_EXISTS", body = zerodb_http::ErrorBody)))]
pub async fn create(
    State(t): State<Tables>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiJson(req): ApiJson<CreateTable>,
) -> ApiResult<(StatusCode, Json<TableView>)> {
    let (name, schema, description) = parse_create(req)?;
    let p = project(&t, &caller, &pid, Access::Write).await?;
    let d = t.create(&p, &name, schema, description).await?;
    Ok((StatusCode::CREATED, Json(view(&d))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// 1–1000, default 100.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000, value_type = Option<i64>)]
    pub limit: Option<usize>,
    #[serde(default)]
    #[param(minimum = 0, maximum = 100000, value_type = Option<i64>)]
    pub offset: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TableList {
    pub tables: Vec<TableView>,
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
}

/// The project's tables, by name (`zerodb:read`).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/database/tables", tag = "tables",
    params(("project_id" = String, Path), Page),
    responses((status = 200, body = TableList)))]
pub async fn list(
    State(t): State<Tables>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiQuery(q): ApiQuery<Page>,
) -> ApiResult<Json<TableList>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(At::query("limit").invalid("limit is 1–1000").into());
    }
    let offset = q.offset.unwrap_or(0);
    if offset > 100_000 {
        return Err(At::query("offset").invalid("offset is 0–100,000").into());
    }
    let p = project(&t, &caller, &pid, Access::Read).await?;
    let all = t.list(&p).await?;
    let total = all.len();
    let tables = all.iter().skip(offset).take(limit).map(view).collect();
    Ok(Json(TableList {
        tables,
        total,
        limit,
        offset,
    }))
}

/// One table, by name or id (`zerodb:read`).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/database/tables/{table}", tag = "tables",
    params(("project_id" = String, Path), ("table" = String, Path, description = "Name or id")),
    responses((status = 200, body = TableView),
        (status = 404, description = "TABLE_NOT_FOUND or PROJECT_NOT_FOUND", body = zerodb_http::ErrorBody)))]
pub async fn get(
    State(t): State<Tables>,
    Auth(caller): Auth,
    Path((pid, table)): Path<(String, String)>,
) -> ApiResult<Json<TableView>> {
    let p = project(&t, &caller, &pid, Access::Read).await?;
    Ok(Json(view(&t.get(&p, &table).await?)))
}

#[derive(Debug, Default, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Confirm {
    /// Must be true: dropping a table removes every row.
    #[serde(default)]
    pub confirm: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Dropped {
    pub table_name: String,
    pub deleted: bool,
    /// Rows the table held; they are removed in the background.
    pub rows_deleted: i64,
}

/// Drops a table (`zerodb:write`); needs `{"confirm": true}` (or `?confirm=true`).
#[utoipa::path(delete, path = "/api/v1/projects/{project_id}/database/tables/{table}", tag = "tables",
    params(("project_id" = String, Path), ("table" = String, Path), Confirm), request_body(content = Option<Confirm>, description = "`{\"confirm\": true}`, or `?confirm=true`"),
    responses((status = 200, body = Dropped)))]
pub async fn drop(
    State(t): State<Tables>,
    Auth(caller): Auth,
    Path((pid, table)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<Confirm>,
    OptionalJson(body): OptionalJson<Confirm>,
) -> ApiResult<Json<Dropped>> {
    if q.confirm != Some(true) && body.confirm != Some(true) {
        return Err(At::body("confirm")
            .invalid("dropping a table deletes every row: send {\"confirm\": true} to go ahead")
            .into());
    }
    let p = project(&t, &caller, &pid, Access::Write).await?;
    let d = t.get(&p, &table).await?;
    let rows_deleted = t.drop_table(&p, &d).await?;
    Ok(Json(Dropped {
        table_name: d.name,
        deleted: true,
        rows_deleted,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct InsertRows {
    /// 1–1,000 row objects; a row's `id` (string) is kept, else one is made.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Value>,
    /// Default true.
    #[serde(default)]
    pub return_ids: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Inserted {
    pub inserted_count: usize,
    /// The rows' ids, in the order sent (omitted when `return_ids` is false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_ids: Option<Vec<String>>,
}

pub fn inserted(ids: Vec<String>, return_ids: bool) -> Inserted {
    Inserted {
        inserted_count: ids.len(),
        row_ids: return_ids.then(|| ids.clone()),
        ids: return_ids.then_some(ids),
    }
}

/// Inserts rows (`zerodb:write`); every row is checked before any is written: a row that
/// breaks the schema is a 422 naming the row and field.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/database/tables/{table}/rows", tag = "tables",
    params(("project_id" = String, Path), ("table" = String, Path)), request_body = InsertRows,
    responses((status = 201, body = Inserted),
        (status = 422, body = zerodb_http::error::ValidationErrorBody)))]
pub async fn insert(
    State(t): State<Tables>,
    Auth(caller): Auth,
    Path((pid, table)): Path<(String, String)>,
    ApiJson(req): ApiJson<InsertRows>,
) -> ApiResult<(StatusCode, Json<Inserted>)> {
    let p = project(&t, &caller, &pid, Access::Write).await?;
    let d = t.get(&p, &table).await?;
    let ids = t.insert(&p, &d, req.rows, At::body("rows")).await?;
    Ok((
        StatusCode::CREATED,
        Json(inserted(ids, req.return_ids.unwrap_or(true))),
    ))
}

/// A sort in any of its spellings, keeping the order fields are written in:
/// `{"age": -1, "name": 1}`, `"-age,name"`, or `[["age", -1], ["name", 1]]`.
#[derive(Debug, Clone, Default, ToSchema)]
#[schema(value_type = Object)]
pub struct SortSpec(pub Vec<(String, Value)>);

impl<'de> Deserialize<'de> for SortSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SortSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sort: {\"field\": 1 or -1, ...} or \"-field,other\"")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<SortSpec, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(SortSpec(out))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<SortSpec, E> {
                Sort::parse_text(s)
                    .map(|s| {
                        SortSpec(
                            s.0.into_iter()
                                .map(|(f, a)| (f, Value::from(if a { 1 } else { -1 })))
                                .collect(),
                        )
                    })
                    .map_err(|e| E::custom(e.msg))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<SortSpec, A::Error> {
                let mut out = Vec::new();
                while let Some((f, d)) = s.next_element::<(String, Value)>()? {
                    out.push((f, d));
                }
                Ok(SortSpec(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<SortSpec, E> {
                Ok(SortSpec::default())
            }
        }
        d.deserialize_any(V)
    }
}

impl SortSpec {
    pub fn parse(self, at: At) -> Result<Sort, DomainError> {
        Sort::from_pairs(self.0).map_err(|e| {
            if e.path.is_empty() {
                at.invalid(e.msg)
            } else {
                at.field(&e.path).invalid(e.msg)
            }
        })
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct QueryRows {
    /// Mongo-style: `{"age": {"$gte": 25}, "status": "active"}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    /// The same, as seed 003's batch names it.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filters: Option<Value>,
    #[serde(default)]
    pub sort: Option<SortSpec>,
    /// `{"name": 1, "email": 1}` or `{"_id": 0}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub projection: Option<Value>,
    /// 0–1000, default 100; 0 returns only `total`. A page also stops at about 5 MiB of
    /// rows (`has_more` then says more follow).
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    #[schema(minimum = 0, maximum = 1000)]
    pub limit: Option<i64>,
    /// 0–10,000.
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    #[schema(minimum = 0, maximum = 10000)]
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RowsPage {
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Value>,
    /// Rows matching the filter, all pages together.
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
    pub has_more: bool,
    /// How the rows were found: `index:<field>`, `scan`, or `count`.
    pub plan: String,
}

/// Validates a query's page, filter, sort and projection (under `at`).
pub fn parse_query(q: QueryRows, max: usize, at: At) -> Result<RowQuery, DomainError> {
    let limit = q.limit.unwrap_or(100);
    if limit < 0 || limit as usize > max {
        return Err(at.field("limit").invalid(format!("limit is 0–{max}")));
    }
    let offset = q.offset.unwrap_or(0);
    if !(0..=zerodb_projects::tables::MAX_OFFSET as i64).contains(&offset) {
        return Err(at.field("offset").invalid(format!(
            "offset is 0–{}; narrow the filter to reach rows further on",
            zerodb_projects::tables::MAX_OFFSET
        )));
    }
    let sort = q.sort.unwrap_or_default().parse(at.clone().field("sort"))?;
    let projection = Projection::parse(q.projection.as_ref().unwrap_or(&Value::Null))
        .map_err(|e| at.clone().field("projection").invalid(e.msg))?;
    Ok(RowQuery {
        filter: q.filter.or(q.filters),
        sort,
        projection,
        limit: limit as usize,
        offset: offset as usize,
    })
}

/// Queries rows (`zerodb:read`): a filter on a declared index reads the index; any other
/// filter scans the table, within a stated budget (`QUERY_TOO_BROAD` past it).
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/database/tables/{table}/query", tag = "tables",
    params(("project_id" = String, Path), ("table" = String, Path)), request_body(content = Option<QueryRows>, description = "Optional: no body is every row, 100 at most"),
    responses((status = 200, body = RowsPage),
        (status = 400, description = "QUERY_TOO_BROAD", body = zerodb_http::ErrorBody)))]
pub async fn query(
    State(t): State<Tables>,
    Auth(caller): Auth,
    Path((pid, table)): Path<(String, String)>,
    OptionalJson(req): OptionalJson<QueryRows>,
) -> ApiResult<Json<RowsPage>> {
    let q = parse_query(req, t.limits().page_rows, At::body_root())?;
    let p = project(&t, &caller, &pid, Access::Read).await?;
    let d = t.get(&p, &table).await?;
    let (limit, offset) = (q.limit, q.offset);
    let page = t
        .query(
            &p,
            &d,
            q,
            At::body("filter"),
            zerodb_projects::tables::PAGE_BYTES,
        )
        .await?;
    Ok(Json(RowsPage {
        has_more: page.truncated || offset + page.rows.len() < page.total,
        rows: page.rows,
        total: page.total,
        limit,
        offset,
        plan: page.plan,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateRows {
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    /// `{"$set": {...}, "$inc": {...}, "$unset": {...}}`; a plain object is a `$set`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub update: Option<Value>,
    /// The same, as ainative-agent names it.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub updates: Option<Value>,
    /// Insert one row when none match (default false).
    #[serde(default)]
    pub upsert: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UpdatedView {
    pub matched_count: usize,
    pub modified_count: usize,
    pub upserted_id: Option<String>,
}

/// Updates every matching row (`zerodb:write`).
#[utoipa::path(put, path = "/api/v1/projects/{project_id}/database/tables/{table}/rows", tag = "tables",
    params(("project_id" = String, Path), ("table" = String, Path)), request_body = UpdateRows,
    responses((status = 200, body = UpdatedView)))]
pub async fn update(
    State(t): State<Tables>,
    Auth(caller): Auth,
    Path((pid, table)): Path<(String, String)>,
    ApiJson(req): ApiJson<UpdateRows>,
) -> ApiResult<Json<UpdatedView>> {
    let p = project(&t, &caller, &pid, Access::Write).await?;
    update_in(&t, &p, &table, req).await.map(Json)
}

pub async fn update_in(
    t: &Tables,
    p: &Project,
    table: &str,
    req: UpdateRows,
) -> ApiResult<UpdatedView> {
    let (change, at) = match (req.update, req.updates) {
        (Some(u), _) => (u, "update"),
        (None, Some(u)) => (u, "updates"),
        (None, None) => {
            return Err(At::body("update")
                .problem_of("field required", "value_error.missing")
                .into());
        }
    };
    let d = t.get(p, table).await?;
    let u = t
        .update(
            p,
            &d,
            req.filter.as_ref(),
            &change,
            req.upsert.unwrap_or(false),
            (At::body("filter"), At::body(at)),
        )
        .await?;
    Ok(UpdatedView {
        matched_count: u.matched,
        modified_count: u.modified,
        upserted_id: u.upserted_id,
    })
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DeleteRows {
    /// Which rows; `{}` is every row.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    /// At most this many (0, the default, is every match).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedRows {
    pub deleted_count: usize,
}

/// Deletes the matching rows (`zerodb:write`); the body is sent with the DELETE.
#[utoipa::path(delete, path = "/api/v1/projects/{project_id}/database/tables/{table}/rows", tag = "tables",
    params(("project_id" = String, Path), ("table" = String, Path)), request_body = DeleteRows,
    responses((status = 200, body = DeletedRows)))]
pub async fn delete_rows(
    State(t): State<Tables>,
    Auth(caller): Auth,
    Path((pid, table)): Path<(String, String)>,
    ApiJson(req): ApiJson<DeleteRows>,
) -> ApiResult<Json<DeletedRows>> {
    if req.filter.is_none() {
        return Err(At::body("filter")
            .problem_of(
                "field required: {} deletes every row",
                "value_error.missing",
            )
            .into());
    }
    let p = project(&t, &caller, &pid, Access::Write).await?;
    let d = t.get(&p, &table).await?;
    let n = t
        .delete_rows(
            &p,
            &d,
            req.filter.as_ref(),
            req.limit.unwrap_or(0),
            At::body("filter"),
        )
        .await?;
    Ok(Json(DeletedRows { deleted_count: n }))
}
