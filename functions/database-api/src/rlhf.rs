//! RLHF interactions under `/api/v1/projects/{project_id}/database/rlhf/interactions`:
//! log one, log up to 1,000 (seed 003), list newest first with a time window and a
//! Mongo-style filter over `{prompt, response, metadata, feedback}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use zerodb_domain::store::Cursor;
use zerodb_domain::{At, DomainError};
use zerodb_http::{ApiJson, ApiQuery, ApiResult, Auth};
use zerodb_projects::filter::Filter;
use zerodb_projects::rlhf::{MAX_BATCH, NewInteraction, Rlhf, RlhfQuery};
use zerodb_projects::{Access, Tables};

use crate::events::window;

#[derive(Debug, Deserialize, ToSchema)]
pub struct LogInteraction {
    /// At most 100,000 characters.
    pub prompt: String,
    pub response: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// A rating or label (number, string or object).
    #[serde(default)]
    pub feedback: Option<Value>,
}

fn check(i: LogInteraction, at: At) -> Result<NewInteraction, DomainError> {
    NewInteraction::check(i.prompt, i.response, i.metadata, i.feedback, &at)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Logged {
    pub logged: usize,
    pub inserted: usize,
    pub ids: Vec<String>,
}

/// Logs one interaction (`zerodb:write`).
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/database/rlhf/interactions", tag = "rlhf",
    params(("project_id" = String, Path)), request_body = LogInteraction,
    responses((status = 201, body = Object)))]
pub async fn log(
    State(t): State<Tables>,
    State(r): State<Rlhf>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiJson(req): ApiJson<LogInteraction>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let one = check(req, At::body_root())?;
    let p = t.project(&caller, &pid, Access::Write).await?;
    let stored = r.log(&p, vec![one]).await?;
    Ok((StatusCode::CREATED, Json(stored[0].to_json())))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LogBatch {
    /// 1–1,000 `{prompt, response, metadata}`.
    #[schema(min_items = 1, max_items = 1000)]
    pub interactions: Vec<Value>,
}

/// Logs up to 1,000 interactions (`zerodb:write`); one over, or any invalid, writes nothing.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/database/rlhf/interactions/batch", tag = "rlhf",
    params(("project_id" = String, Path)), request_body = LogBatch,
    responses((status = 201, body = Logged),
        (status = 422, body = zerodb_http::error::ValidationErrorBody)))]
pub async fn log_batch(
    State(t): State<Tables>,
    State(r): State<Rlhf>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiJson(req): ApiJson<LogBatch>,
) -> ApiResult<(StatusCode, Json<Logged>)> {
    let checked = crate::batch_items(
        req.interactions,
        "interactions",
        MAX_BATCH,
        "an interaction",
        check,
    )?;
    let p = t.project(&caller, &pid, Access::Write).await?;
    let stored = r.log(&p, checked).await?;
    Ok((
        StatusCode::CREATED,
        Json(Logged {
            logged: stored.len(),
            inserted: stored.len(),
            ids: stored.into_iter().map(|i| i.id).collect(),
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RlhfParams {
    /// RFC 3339 or epoch seconds, inclusive.
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    /// A JSON filter over the interaction, e.g. `{"metadata.model":"qwen-coder-32b"}`.
    #[serde(default)]
    pub filter: Option<String>,
    /// 1–1000, default 100.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000, value_type = Option<i64>)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InteractionList {
    #[schema(value_type = Vec<Object>)]
    pub interactions: Vec<Value>,
    pub count: usize,
    pub next_cursor: Option<String>,
}

/// Interactions newest first (`zerodb:read`).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/database/rlhf/interactions", tag = "rlhf",
    params(("project_id" = String, Path), RlhfParams),
    responses((status = 200, body = InteractionList)))]
pub async fn list(
    State(t): State<Tables>,
    State(r): State<Rlhf>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiQuery(q): ApiQuery<RlhfParams>,
) -> ApiResult<Json<InteractionList>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(At::query("limit").invalid("limit is 1–1000").into());
    }
    let filter = match q.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        None => None,
        Some(f) => {
            let v: Value = serde_json::from_str(f)
                .map_err(|e| At::query("filter").invalid(format!("filter is not JSON: {e}")))?;
            Some(
                Filter::parse(&v)
                    .map_err(|e| At::query("filter").invalid(format!("{}: {}", e.path, e.msg)))?,
            )
        }
    };
    let (since, until) = window(q.since.as_deref(), q.until.as_deref())?;
    let cursor = q.cursor.as_deref().map(Cursor::from_client).transpose()?;
    let p = t.project(&caller, &pid, Access::Read).await?;
    let (items, next) = r
        .list(
            &p,
            RlhfQuery {
                since,
                until,
                filter,
                limit,
                cursor,
            },
        )
        .await?;
    Ok(Json(InteractionList {
        count: items.len(),
        interactions: items.iter().map(|i| i.to_json()).collect(),
        next_cursor: next.map(|c| c.as_str().to_owned()),
    }))
}
