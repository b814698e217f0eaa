//! Seed 003's batch query: `POST /api/v1/projects/{project_id}/database/batch/query`.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use zerodb_http::{ApiJson, ApiResult, Auth};
use zerodb_projects::batch::{BatchOp, MAX_OPERATIONS, run};
use zerodb_projects::{Access, Tables};

use crate::tables::{QueryRows, parse_query};

#[derive(Debug, Deserialize, ToSchema)]
pub struct BatchQuery {
    /// 1–50 `{table, filters, limit, offset, sort, projection}`.
    #[schema(min_items = 1, max_items = 50)]
    pub operations: Vec<Value>,
    /// Run side by side (default true).
    #[serde(default)]
    pub parallel: Option<bool>,
    /// Skip the operations after the first failure (in order; default false).
    #[serde(default)]
    pub stop_on_error: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpResult {
    pub index: usize,
    pub table: String,
    /// `ok`, `error` or `skipped`.
    pub status: String,
    pub success: bool,
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Value>,
    pub total: usize,
    pub count: usize,
    /// More rows than `count` follow: the batch's 5 MiB answer gives each operation an
    /// equal share.
    pub has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchQueryResult {
    pub results: Vec<OpResult>,
    pub succeeded: usize,
    pub failed: usize,
    pub skipped: usize,
}

#[derive(Debug, Deserialize)]
struct Operation {
    table: String,
    #[serde(flatten)]
    query: QueryRows,
}

/// Up to 50 table queries (`zerodb:read`), one result per operation in the order sent.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/database/batch/query", tag = "tables",
    params(("project_id" = String, Path)), request_body = BatchQuery,
    responses((status = 200, body = BatchQueryResult),
        (status = 422, body = zerodb_http::error::ValidationErrorBody)))]
pub async fn query(
    State(t): State<Tables>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiJson(req): ApiJson<BatchQuery>,
) -> ApiResult<Json<BatchQueryResult>> {
    let page_rows = t.limits().page_rows;
    let ops = crate::batch_items(
        req.operations,
        "operations",
        MAX_OPERATIONS,
        "a query",
        |op: Operation, at| {
            Ok(BatchOp {
                query: parse_query(op.query, page_rows, at)?,
                table: op.table,
            })
        },
    )?;
    let tables: Vec<String> = ops.iter().map(|o| o.table.clone()).collect();
    let p = t.project(&caller, &pid, Access::Read).await?;
    let outcomes = run(
        &t,
        &p,
        ops,
        req.parallel.unwrap_or(true),
        req.stop_on_error.unwrap_or(false),
    )
    .await;
    let (mut ok, mut failed, mut skipped) = (0, 0, 0);
    let results = outcomes
        .into_iter()
        .zip(tables)
        .enumerate()
        .map(|(index, (o, table))| match o {
            Some(Ok(page)) => {
                ok += 1;
                OpResult {
                    index,
                    table,
                    status: "ok".into(),
                    success: true,
                    count: page.rows.len(),
                    total: page.total,
                    has_more: page.truncated,
                    rows: page.rows,
                    error: None,
                    error_code: None,
                }
            }
            Some(Err(e)) => {
                failed += 1;
                let (code, msg) = describe(&e);
                OpResult {
                    index,
                    table,
                    status: "error".into(),
                    success: false,
                    rows: vec![],
                    total: 0,
                    count: 0,
                    has_more: false,
                    error: Some(msg),
                    error_code: Some(code),
                }
            }
            None => {
                skipped += 1;
                OpResult {
                    index,
                    table,
                    status: "skipped".into(),
                    success: false,
                    rows: vec![],
                    total: 0,
                    count: 0,
                    has_more: false,
                    error: None,
                    error_code: None,
                }
            }
        })
        .collect();
    Ok(Json(BatchQueryResult {
        results,
        succeeded: ok,
        failed,
        skipped,
    }))
}

/// An operation's failure as a code and message (no internals).
fn describe(e: &zerodb_domain::DomainError) -> (String, String) {
    use zerodb_domain::DomainError as E;
    match e {
        E::Coded { code, detail, .. } => ((*code).to_owned(), detail.clone()),
        E::Validation(v) => (
            "VALIDATION_ERROR".into(),
            zerodb_domain::Problems::summary(v),
        ),
        E::NotFound(m) => ("API_404".into(), m.clone()),
        E::Forbidden(m) => ("PERM_001".into(), m.clone()),
        E::Unavailable { .. } => (
            "SERVICE_UNAVAILABLE".into(),
            "storage is busy; retry".into(),
        ),
        _ => ("INTERNAL_ERROR".into(), "internal error".into()),
    }
}
