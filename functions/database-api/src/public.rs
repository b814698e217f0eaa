//! ainative-agent's tables, `/api/v1/public/tables/…` (trailing slashes exactly as it
//! sends them): the account's default project unless `X-Project-ID` names another;
//! lists come back as bare arrays, the filter of a query as JSON in the query string,
//! and the row delete's filter in the DELETE's body.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use zerodb_domain::auth::Principal;
use zerodb_domain::{At, DomainError};
use zerodb_http::{ApiJson, ApiQuery, ApiResult, Auth};
use zerodb_projects::filter::Projection;
use zerodb_projects::tables::RowQuery;
use zerodb_projects::{Access, Project, Tables};

use crate::tables::{
    CreateTable, DeleteRows, DeletedRows, InsertRows, Inserted, TableView, UpdateRows, UpdatedView,
    inserted, parse_create, update_in, view,
};

/// The project these routes act on.
pub async fn project(
    t: &Tables,
    caller: &Principal,
    headers: &HeaderMap,
    access: Access,
) -> Result<Project, DomainError> {
    zerodb_projects::tables::require(caller, access)?;
    let named = zerodb_http::extract::named_project(headers)?;
    t.projects().default_gate(caller, named, access).await
}

/// Creates a table in the default project.
#[utoipa::path(post, path = "/api/v1/public/tables/", tag = "tables", request_body = CreateTable,
    params(("X-Project-ID" = Option<String>, Header, description = "The project; default: the account's first")),
    responses((status = 201, body = TableView)))]
pub async fn create(
    State(t): State<Tables>,
    Auth(caller): Auth,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateTable>,
) -> ApiResult<(StatusCode, Json<TableView>)> {
    let (name, schema, description) = parse_create(req)?;
    let p = project(&t, &caller, &headers, Access::Write).await?;
    Ok((
        StatusCode::CREATED,
        Json(view(&t.create(&p, &name, schema, description).await?)),
    ))
}

/// The default project's tables, as an array.
#[utoipa::path(get, path = "/api/v1/public/tables/", tag = "tables",
    responses((status = 200, body = Vec<TableView>)))]
pub async fn list(
    State(t): State<Tables>,
    Auth(caller): Auth,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<TableView>>> {
    let p = match project(&t, &caller, &headers, Access::Read).await {
        Ok(p) => p,
        // An account with no project yet has no tables.
        Err(DomainError::Coded {
            code: "PROJECT_NOT_FOUND",
            ..
        }) if !headers.contains_key("x-project-id") => {
            return Ok(Json(vec![]));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Json(t.list(&p).await?.iter().map(view).collect()))
}

/// One table.
#[utoipa::path(get, path = "/api/v1/public/tables/{name}", tag = "tables", params(("name" = String, Path)),
    responses((status = 200, body = TableView)))]
pub async fn get(
    State(t): State<Tables>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<TableView>> {
    let p = project(&t, &caller, &headers, Access::Read).await?;
    Ok(Json(view(&t.get(&p, &name).await?)))
}

/// Drops a table (ainative-agent's delete sends no confirmation; calling it is one).
#[utoipa::path(delete, path = "/api/v1/public/tables/{name}", tag = "tables", params(("name" = String, Path)),
    responses((status = 200, body = crate::tables::Dropped)))]
pub async fn drop(
    State(t): State<Tables>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<crate::tables::Dropped>> {
    let p = project(&t, &caller, &headers, Access::Write).await?;
    let d = t.get(&p, &name).await?;
    let rows_deleted = t.drop_table(&p, &d).await?;
    Ok(Json(crate::tables::Dropped {
        table_name: d.name,
        deleted: true,
        rows_deleted,
    }))
}

/// Inserts rows.
#[utoipa::path(post, path = "/api/v1/public/tables/{name}/rows", tag = "tables", params(("name" = String, Path)),
    request_body = InsertRows, responses((status = 201, body = Inserted)))]
pub async fn insert(
    State(t): State<Tables>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<InsertRows>,
) -> ApiResult<(StatusCode, Json<Inserted>)> {
    let p = project(&t, &caller, &headers, Access::Write).await?;
    let d = t.get(&p, &name).await?;
    let ids = t.insert(&p, &d, req.rows, At::body("rows")).await?;
    Ok((
        StatusCode::CREATED,
        Json(inserted(ids, req.return_ids.unwrap_or(true))),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RowParams {
    /// A JSON filter object, e.g. `{"age":{"$gte":25}}`.
    #[serde(default)]
    pub filter: Option<String>,
    /// 0–1000, default 100.
    #[serde(default)]
    #[param(minimum = 0, maximum = 1000, value_type = Option<i64>)]
    pub limit: Option<usize>,
    #[serde(default)]
    #[param(minimum = 0, maximum = 10000, value_type = Option<i64>)]
    pub offset: Option<usize>,
    /// `age`, `-age`, `age:desc`, comma-separated.
    #[serde(default)]
    pub sort: Option<String>,
}

/// The matching rows, as an array.
#[utoipa::path(get, path = "/api/v1/public/tables/{name}/rows", tag = "tables",
    params(("name" = String, Path), RowParams),
    responses((status = 200, body = Vec<Object>)))]
pub async fn query(
    State(t): State<Tables>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<RowParams>,
) -> ApiResult<Json<Vec<Value>>> {
    let filter = match q.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        None => None,
        Some(f) => Some(
            serde_json::from_str::<Value>(f)
                .map_err(|e| At::query("filter").invalid(format!("filter is not JSON: {e}")))?,
        ),
    };
    let limit = q.limit.unwrap_or(100);
    if limit > t.limits().page_rows {
        return Err(At::query("limit")
            .invalid(format!("limit is 0–{}", t.limits().page_rows))
            .into());
    }
    if q.offset
        .is_some_and(|o| o > zerodb_projects::tables::MAX_OFFSET)
    {
        return Err(At::query("offset")
            .invalid(format!(
                "offset is 0–{}",
                zerodb_projects::tables::MAX_OFFSET
            ))
            .into());
    }
    let sort = match q.sort {
        None => Default::default(),
        Some(s) => zerodb_projects::filter::Sort::parse_text(&s)
            .map_err(|e| At::query("sort").invalid(e.msg))?,
    };
    let p = project(&t, &caller, &headers, Access::Read).await?;
    let d = t.get(&p, &name).await?;
    let page = t
        .query(
            &p,
            &d,
            RowQuery {
                filter,
                sort,
                projection: Projection::Whole,
                limit,
                offset: q.offset.unwrap_or(0),
            },
            At::query("filter"),
            zerodb_projects::tables::PAGE_BYTES,
        )
        .await?;
    Ok(Json(page.rows))
}

/// Updates the matching rows (`{"filter", "updates"}`).
#[utoipa::path(put, path = "/api/v1/public/tables/{name}/rows", tag = "tables", params(("name" = String, Path)),
    request_body = UpdateRows, responses((status = 200, body = UpdatedView)))]
pub async fn update(
    State(t): State<Tables>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<UpdateRows>,
) -> ApiResult<Json<UpdatedView>> {
    let p = project(&t, &caller, &headers, Access::Write).await?;
    update_in(&t, &p, &name, req).await.map(Json)
}

/// Deletes the matching rows (`{"filter"}` in the DELETE's body).
#[utoipa::path(delete, path = "/api/v1/public/tables/{name}/rows", tag = "tables", params(("name" = String, Path)),
    request_body = DeleteRows, responses((status = 200, body = DeletedRows)))]
pub async fn delete_rows(
    State(t): State<Tables>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path(name): Path<String>,
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
    let p = project(&t, &caller, &headers, Access::Write).await?;
    let d = t.get(&p, &name).await?;
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
