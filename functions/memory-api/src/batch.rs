//! Batch memory operations of seed 003, under `/api/v1/projects/{project_id}/database`:
//! upsert, delete and update, up to 500 items each, with a result per item. Each checks
//! the memory write scope on the project's namespace, `project:<project_id>`, first (a
//! key without it learns nothing of the account's projects: 403 whatever the id), then
//! passes the project gate (the caller's project, not deleted, not suspended). A record
//! that names no namespace lives in the project's namespace.

use axum::Json;
use axum::extract::Path;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json_};
use utoipa::ToSchema;
use zerodb_domain::auth::Principal;
use zerodb_domain::{At, DomainError, Namespace, Problems};
use zerodb_http::{ApiJson, ApiResult, Auth};
use zerodb_memory::model::{
    Content, Importance, MAX_BATCH, MemoryPatch, MemoryType, Tags, check_metadata,
};
use zerodb_memory::{ItemOutcome, MemoryService};
use zerodb_projects::{Access, Projects};

use crate::wire::new_memory;

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpsertRecord {
    /// An existing memory's id to replace it; omitted, a new memory is inserted.
    #[serde(default)]
    pub id: Option<String>,
    pub content: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub memory_type: Option<String>,
    #[serde(default)]
    pub importance: Option<f64>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub entity_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Json_>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpsertRequest {
    /// 1–500 records.
    #[schema(min_items = 1, max_items = 500)]
    pub records: Vec<Json_>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteRequest {
    /// 1–500 memory ids.
    #[schema(min_items = 1, max_items = 500)]
    pub ids: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateRecord {
    pub id: String,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub memory_type: Option<String>,
    #[serde(default)]
    pub importance: Option<f64>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Json_>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateRequest {
    /// 1–500 partial updates.
    #[schema(min_items = 1, max_items = 500)]
    pub updates: Vec<Json_>,
}

/// One item's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemResult {
    /// Position in the request.
    pub index: usize,
    pub id: Option<String>,
    /// `inserted`, `updated`, `deleted`, `not_found` or `failed`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    pub inserted: usize,
    pub updated: usize,
    pub deleted: usize,
    pub not_found: usize,
    pub failed: usize,
    pub results: Vec<ItemResult>,
}

fn summarize(outcomes: Vec<ItemOutcome>) -> BatchResult {
    let mut r = BatchResult {
        inserted: 0,
        updated: 0,
        deleted: 0,
        not_found: 0,
        failed: 0,
        results: Vec::with_capacity(outcomes.len()),
    };
    for (index, o) in outcomes.into_iter().enumerate() {
        let (id, status, error) = match o {
            ItemOutcome::Inserted(id) => {
                r.inserted += 1;
                (Some(id), "inserted", None)
            }
            ItemOutcome::Updated(id) => {
                r.updated += 1;
                (Some(id), "updated", None)
            }
            ItemOutcome::Deleted(id) => {
                r.deleted += 1;
                (Some(id), "deleted", None)
            }
            ItemOutcome::NotFound(id) => {
                r.not_found += 1;
                (Some(id), "not_found", None)
            }
            ItemOutcome::Failed { id, error } => {
                r.failed += 1;
                (id, "failed", Some(error))
            }
        };
        r.results.push(ItemResult {
            index,
            id,
            status: status.into(),
            error,
        });
    }
    r
}

/// The project's namespace, once the caller may write it (scope first, then the gate).
async fn enter(
    projects: &Projects,
    caller: &Principal,
    project_id: &str,
) -> Result<Namespace, DomainError> {
    crate::project_memory::enter(projects, caller, project_id, Access::Write).await
}

fn check_count(field: &str, n: usize, what: &str) -> Result<(), DomainError> {
    if n == 0 {
        return Err(At::body_path(&[field]).invalid(format!("send at least one {what}")));
    }
    if n > MAX_BATCH {
        return Err(At::body_path(&[field]).invalid(format!(
            "a batch holds at most {MAX_BATCH} {what}s; got {n}: split it into several requests"
        )));
    }
    Ok(())
}

/// Parses one item of a batch; a malformed item fails alone, not the batch.
fn item<T: serde::de::DeserializeOwned>(v: Json_) -> Result<T, String> {
    if !v.is_object() {
        return Err("each item must be a JSON object, e.g. {\"content\": ...}".into());
    }
    let bytes = serde_json::to_vec(&v).map_err(|e| e.to_string())?;
    zerodb_http::extract::parse_json::<T>(&bytes).map_err(|e| match e {
        DomainError::Validation(errs) => Problems::summary(&errs)
            .replacen("body.", "", usize::MAX)
            .replacen("body: ", "", 1),
        other => other.to_string(),
    })
}

/// Insert or replace up to 500 memory records.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/database/memory/batch/upsert", tag = "memory-batch",
    params(("project_id" = String, Path, description = "The project; records without a namespace go to `project:<project_id>`")),
    request_body = UpsertRequest,
    responses((status = 200, body = BatchResult),
        (status = 404, description = "PROJECT_NOT_FOUND", body = zerodb_http::ErrorBody),
        (status = 422, description = "Empty or over 500 records", body = zerodb_http::error::ValidationErrorBody)))]
pub async fn upsert(
    State(svc): State<MemoryService>,
    State(projects): State<Projects>,
    Auth(caller): Auth,
    Path(project_id): Path<String>,
    ApiJson(req): ApiJson<UpsertRequest>,
) -> ApiResult<Json<BatchResult>> {
    let ns = enter(&projects, &caller, &project_id).await?;
    check_count("records", req.records.len(), "record")?;
    let records = req
        .records
        .into_iter()
        .map(|v| {
            let r: UpsertRecord = item(v)?;
            new_memory(
                &[],
                r.content,
                r.namespace,
                ns.clone(),
                r.memory_type,
                r.importance,
                r.tags,
                r.entity_id,
                r.metadata,
            )
            .map(|(new, _)| (r.id, new))
            .map_err(|e| Problems::summary(&e).replacen("body.", "", usize::MAX))
        })
        .collect();
    Ok(Json(summarize(svc.batch_upsert(&caller, records).await?)))
}

/// Delete up to 500 memories by id.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/database/memory/batch/delete", tag = "memory-batch",
    params(("project_id" = String, Path, description = "The project")),
    request_body = DeleteRequest,
    responses((status = 200, body = BatchResult),
        (status = 404, description = "PROJECT_NOT_FOUND", body = zerodb_http::ErrorBody),
        (status = 422, description = "Empty or over 500 ids", body = zerodb_http::error::ValidationErrorBody)))]
pub async fn delete(
    State(svc): State<MemoryService>,
    State(projects): State<Projects>,
    Auth(caller): Auth,
    Path(project_id): Path<String>,
    ApiJson(req): ApiJson<DeleteRequest>,
) -> ApiResult<Json<BatchResult>> {
    enter(&projects, &caller, &project_id).await?;
    check_count("ids", req.ids.len(), "id")?;
    Ok(Json(summarize(svc.batch_delete(&caller, req.ids).await?)))
}

fn patch(r: UpdateRecord) -> Result<(String, MemoryPatch), (Option<String>, String)> {
    let mut p = Problems::default();
    let content = r
        .content
        .and_then(|c| p.check(At::body_path(&["content"]), Content::new(c)));
    let memory_type = r
        .memory_type
        .and_then(|t| p.check(At::body_path(&["memory_type"]), MemoryType::parse(&t)));
    let importance = r
        .importance
        .and_then(|i| p.check(At::body_path(&["importance"]), Importance::new(i)));
    let tags = r
        .tags
        .and_then(|t| p.check(At::body_path(&["tags"]), Tags::new(t)));
    if let Some(m) = &r.metadata {
        p.check(At::body_path(&["metadata"]), check_metadata(m));
    }
    let patch = MemoryPatch {
        content,
        memory_type,
        importance,
        tags,
        metadata: r.metadata,
    };
    match p.into_result() {
        Err(DomainError::Validation(e)) => Err((
            Some(r.id),
            Problems::summary(&e).replacen("body.", "", usize::MAX),
        )),
        Err(other) => Err((Some(r.id), other.to_string())),
        Ok(()) if patch.is_empty() => Err((
            Some(r.id),
            "nothing to update: send content, memory_type, importance, tags or metadata".into(),
        )),
        Ok(()) => Ok((r.id, patch)),
    }
}

/// Partially update up to 500 memories by id.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/database/memory/batch/update", tag = "memory-batch",
    params(("project_id" = String, Path, description = "The project")),
    request_body = UpdateRequest,
    responses((status = 200, body = BatchResult),
        (status = 404, description = "PROJECT_NOT_FOUND", body = zerodb_http::ErrorBody),
        (status = 422, description = "Empty or over 500 updates", body = zerodb_http::error::ValidationErrorBody)))]
pub async fn update(
    State(svc): State<MemoryService>,
    State(projects): State<Projects>,
    Auth(caller): Auth,
    Path(project_id): Path<String>,
    ApiJson(req): ApiJson<UpdateRequest>,
) -> ApiResult<Json<BatchResult>> {
    enter(&projects, &caller, &project_id).await?;
    check_count("updates", req.updates.len(), "update")?;
    let updates = req
        .updates
        .into_iter()
        .map(|v| {
            let r: UpdateRecord = item(v).map_err(|e| (None, e))?;
            patch(r)
        })
        .collect();
    Ok(Json(summarize(svc.batch_update(&caller, updates).await?)))
}
