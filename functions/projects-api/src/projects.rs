//! Project routes in both wire forms. Seed 004 (`/v1/public/projects`): uppercase
//! statuses, `{items, total, limit, offset}`, a `usage` block on read, `INVALID_API_KEY`
//! for a bad key. ainative-python (`/api/v1/projects`): lowercase statuses, `metadata`
//! and `config` objects, and the lifecycle routes.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use zerodb_domain::clock::rfc3339_secs;
use zerodb_domain::{At, DomainError, Problems};
use zerodb_http::{ApiJson, ApiQuery, ApiResult, Auth, OptionalJson};
use zerodb_projects::project::{
    NewProject, ProjectPatch, Transition, Usage, check_description, check_name,
};
use zerodb_projects::{Project, Projects, Status, Tier};

/// Seed 004's create body (ainative-python's adds `metadata` and `config`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateProject {
    /// 1–100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// At most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// free, starter, pro or enterprise (default free).
    #[serde(default)]
    pub tier: Option<String>,
    /// Default true.
    #[serde(default)]
    pub database_enabled: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Map<String, Value>>,
}

/// A project as both forms show it; `status` is always present.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProjectView {
    pub id: String,
    /// The same id, for clients that read `project_id`.
    pub project_id: String,
    pub name: String,
    /// May be null.
    pub description: Option<String>,
    /// ACTIVE, SUSPENDED or DELETED (lowercase on `/api/v1/projects`).
    pub status: String,
    pub tier: String,
    pub database_enabled: bool,
    #[schema(value_type = Object)]
    pub metadata: Value,
    #[schema(value_type = Object)]
    pub config: Value,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageView>,
}

/// Seed 004's usage block, from counters kept as data is written.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageView {
    pub vectors_stored: i64,
    pub tables_created: i64,
    pub events_logged: i64,
    pub storage_mb: f64,
    pub rows_stored: i64,
    pub files_stored: i64,
    pub rlhf_interactions: i64,
    pub storage_bytes: i64,
}

impl From<Usage> for UsageView {
    fn from(u: Usage) -> Self {
        UsageView {
            storage_mb: u.storage_mb(),
            vectors_stored: u.vectors_stored,
            tables_created: u.tables_created,
            events_logged: u.events_logged,
            rows_stored: u.rows_stored,
            files_stored: u.files_stored,
            rlhf_interactions: u.rlhf_interactions,
            storage_bytes: u.storage_bytes,
        }
    }
}

fn object(text: &Option<String>) -> Value {
    text.as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_else(|| Value::Object(Map::new()))
}

/// Which wire form a response is in.
#[derive(Clone, Copy)]
enum Form {
    Seed,
    Python,
}

fn view(p: Project, form: Form, usage: Option<Usage>) -> ProjectView {
    ProjectView {
        project_id: p.id.clone(),
        status: match form {
            Form::Seed => p.status.as_str(),
            Form::Python => p.status.lower(),
        }
        .to_owned(),
        metadata: object(&p.metadata),
        config: object(&p.config),
        id: p.id,
        name: p.name,
        description: p.description,
        tier: p.tier.as_str().to_owned(),
        database_enabled: p.database_enabled,
        created_at: rfc3339_secs(p.created_at),
        updated_at: rfc3339_secs(p.updated_at),
        usage: usage.map(UsageView::from),
    }
}

fn parse_new(req: CreateProject) -> Result<NewProject, DomainError> {
    // An unknown tier is seed 004's 400 INVALID_TIER, before the 422s.
    let tier = match req.tier.as_deref() {
        None => Tier::Free,
        Some(t) => Tier::parse(t)?,
    };
    let mut problems = Problems::default();
    let name = problems.check(At::body("name"), check_name(&req.name));
    let description = match req.description {
        Some(d) => problems.check(At::body("description"), check_description(&d)),
        None => None,
    };
    let size = |m: &Option<Map<String, Value>>, field: &str, problems: &mut Problems| {
        let text = m.as_ref().map(|m| Value::Object(m.clone()).to_string());
        if text.as_ref().is_some_and(|t| t.len() > 16 * 1024) {
            problems.push(At::body(field).problem(format!("{field} is over 16 KB as JSON")));
        }
        text
    };
    let metadata = size(&req.metadata, "metadata", &mut problems);
    let config = size(&req.config, "config", &mut problems);
    problems.into_result()?;
    Ok(NewProject {
        name: name.unwrap_or_default(),
        description: description.filter(|d| !d.is_empty()),
        tier,
        database_enabled: req.database_enabled.unwrap_or(true),
        metadata,
        config,
    })
}

/// Seed 004 names a bad key `INVALID_API_KEY` on its routes.
pub async fn invalid_api_key(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    if resp.status() != StatusCode::UNAUTHORIZED {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let mut v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("error_code".into(), "INVALID_API_KEY".into());
    }
    let bytes = serde_json::to_vec(&v).unwrap_or_default();
    let mut resp = Response::from_parts(parts, Body::from(bytes));
    resp.headers_mut()
        .remove(axum::http::header::CONTENT_LENGTH);
    resp
}

/// Creates a project (`zerodb:admin`, which a root key holds).
#[utoipa::path(post, path = "/v1/public/projects", tag = "projects", request_body = CreateProject,
    responses((status = 201, body = ProjectView),
        (status = 400, description = "INVALID_TIER or PROJECT_LIMIT_EXCEEDED", body = zerodb_http::ErrorBody),
        (status = 422, body = zerodb_http::error::ValidationErrorBody)))]
pub async fn create(
    State(svc): State<Projects>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<CreateProject>,
) -> ApiResult<(StatusCode, Json<ProjectView>)> {
    let p = svc.create(&caller, parse_new(req)?).await?;
    Ok((StatusCode::CREATED, Json(view(p, Form::Seed, None))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1–1000, default 100.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000, value_type = Option<i64>)]
    pub limit: Option<usize>,
    /// 0–100,000, default 0.
    #[serde(default)]
    #[param(minimum = 0, maximum = 100000, value_type = Option<i64>)]
    pub offset: Option<usize>,
    /// ACTIVE, SUSPENDED or DELETED (either case); deleted projects are listed only
    /// when asked for.
    #[serde(default)]
    pub status: Option<String>,
    /// Sent by ainative-python; ignored (projects belong to the key's account).
    #[serde(default)]
    pub organization_id: Option<String>,
}

/// Seed 004's list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectList {
    pub items: Vec<ProjectView>,
    /// The same list, for clients that read `projects`.
    pub projects: Vec<ProjectView>,
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
}

async fn list_in(
    svc: &Projects,
    caller: &zerodb_domain::auth::Principal,
    q: ListParams,
    form: Form,
) -> ApiResult<Json<ProjectList>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(At::query("limit").invalid("limit is 1–1000").into());
    }
    let offset = q.offset.unwrap_or(0);
    if offset > 100_000 {
        return Err(At::query("offset").invalid("offset is 0–100,000").into());
    }
    let status = match q.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            At::query("status").invalid("status is ACTIVE, SUSPENDED or DELETED")
        })?),
    };
    let all = svc.list(caller, status).await?;
    let total = all.len();
    let items: Vec<ProjectView> = all
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|p| view(p, form, None))
        .collect();
    let projects = items.clone();
    Ok(Json(ProjectList {
        items,
        projects,
        total,
        limit,
        offset,
    }))
}

/// The account's projects, oldest first (`zerodb:read`).
#[utoipa::path(get, path = "/v1/public/projects", tag = "projects", params(ListParams),
    responses((status = 200, body = ProjectList)))]
pub async fn list(
    State(svc): State<Projects>,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult<Json<ProjectList>> {
    list_in(&svc, &caller, q, Form::Seed).await
}

/// One project with its usage (`zerodb:read`); another account's id is 404.
#[utoipa::path(get, path = "/v1/public/projects/{project_id}", tag = "projects",
    params(("project_id" = String, Path)),
    responses((status = 200, body = ProjectView),
        (status = 404, description = "PROJECT_NOT_FOUND", body = zerodb_http::ErrorBody)))]
pub async fn get(
    State(svc): State<Projects>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ProjectView>> {
    get_in(&svc, &caller, &id, Form::Seed).await
}

async fn get_in(
    svc: &Projects,
    caller: &zerodb_domain::auth::Principal,
    id: &str,
    form: Form,
) -> ApiResult<Json<ProjectView>> {
    let p = svc.get(caller, id).await?;
    let usage = svc.usage(&p).await?;
    Ok(Json(view(p, form, Some(usage))))
}

/// ainative-python's create.
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = CreateProject,
    responses((status = 201, body = ProjectView),
        (status = 400, description = "INVALID_TIER or PROJECT_LIMIT_EXCEEDED", body = zerodb_http::ErrorBody)))]
pub async fn create_v1(
    State(svc): State<Projects>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<CreateProject>,
) -> ApiResult<(StatusCode, Json<ProjectView>)> {
    let p = svc.create(&caller, parse_new(req)?).await?;
    Ok((StatusCode::CREATED, Json(view(p, Form::Python, None))))
}

/// ainative-python's list (statuses lowercase).
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", params(ListParams),
    responses((status = 200, body = ProjectList)))]
pub async fn list_v1(
    State(svc): State<Projects>,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult<Json<ProjectList>> {
    list_in(&svc, &caller, q, Form::Python).await
}

/// ainative-python's read, with usage.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}", tag = "projects",
    params(("project_id" = String, Path)),
    responses((status = 200, body = ProjectView),
        (status = 404, description = "PROJECT_NOT_FOUND", body = zerodb_http::ErrorBody)))]
pub async fn get_v1(
    State(svc): State<Projects>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ProjectView>> {
    get_in(&svc, &caller, &id, Form::Python).await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateProject {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Map<String, Value>>,
}

/// Changes a project's name, description, metadata or config (`zerodb:write`).
#[utoipa::path(patch, path = "/api/v1/projects/{project_id}", tag = "projects",
    params(("project_id" = String, Path)), request_body = UpdateProject,
    responses((status = 200, body = ProjectView)))]
pub async fn update_v1(
    State(svc): State<Projects>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateProject>,
) -> ApiResult<Json<ProjectView>> {
    let mut problems = Problems::default();
    let name = match req.name {
        Some(n) => problems.check(At::body("name"), check_name(&n)),
        None => None,
    };
    let description = match req.description {
        Some(d) => problems.check(At::body("description"), check_description(&d)),
        None => None,
    };
    let metadata = req.metadata.map(|m| Value::Object(m).to_string());
    let config = req.config.map(|m| Value::Object(m).to_string());
    for (field, t) in [("metadata", &metadata), ("config", &config)] {
        if t.as_ref().is_some_and(|t| t.len() > 16 * 1024) {
            problems.push(At::body(field).problem(format!("{field} is over 16 KB as JSON")));
        }
    }
    problems.into_result()?;
    let p = svc
        .update(
            &caller,
            &id,
            ProjectPatch {
                name,
                description,
                metadata,
                config,
            },
        )
        .await?;
    Ok(Json(view(p, Form::Python, None)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StatusChange {
    /// active, suspended or deleted (either case).
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Moves a project along its lifecycle (`zerodb:admin`): ACTIVE ↔ SUSPENDED, either →
/// DELETED (terminal).
#[utoipa::path(put, path = "/api/v1/projects/{project_id}/status", tag = "projects",
    params(("project_id" = String, Path)), request_body = StatusChange,
    responses((status = 200, body = ProjectView)))]
pub async fn set_status_v1(
    State(svc): State<Projects>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<StatusChange>,
) -> ApiResult<Json<ProjectView>> {
    let to = Status::parse(&req.status).ok_or_else(|| {
        At::body("status").invalid(format!(
            "status '{}' is not one of active, suspended, deleted",
            req.status.chars().take(40).collect::<String>()
        ))
    })?;
    let reason = req.reason.map(|r| r.chars().take(500).collect());
    let p = svc.set_status(&caller, &id, to, reason).await?;
    Ok(Json(view(p, Form::Python, None)))
}

/// What a delete answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub id: String,
    pub status: String,
    pub deleted: bool,
    /// The project's data is removed in the background, a page at a time.
    pub message: String,
}

/// Soft-deletes a project (`zerodb:admin`): 404 everywhere from now on; its data is
/// removed afterwards.
#[utoipa::path(delete, path = "/api/v1/projects/{project_id}", tag = "projects",
    params(("project_id" = String, Path)),
    responses((status = 200, body = Deleted)))]
pub async fn delete_v1(
    State(svc): State<Projects>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    OptionalJson(_): OptionalJson<Value>,
) -> ApiResult<Json<Deleted>> {
    let p = svc.set_status(&caller, &id, Status::Deleted, None).await?;
    Ok(Json(Deleted {
        id: p.id,
        status: "deleted".into(),
        deleted: true,
        message: "project deleted; its data is being removed".into(),
    }))
}

/// ainative-python's statistics: the usage counters.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/statistics", tag = "projects",
    params(("project_id" = String, Path)),
    responses((status = 200, body = UsageView)))]
pub async fn statistics_v1(
    State(svc): State<Projects>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<UsageView>> {
    let p = svc.get(&caller, &id).await?;
    Ok(Json(svc.usage(&p).await?.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionView {
    pub id: String,
    /// Null for the creation.
    pub from: Option<String>,
    pub to: String,
    /// The key that made the change.
    pub by: String,
    pub at: String,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionList {
    pub project_id: String,
    pub transitions: Vec<TransitionView>,
}

impl From<Transition> for TransitionView {
    fn from(t: Transition) -> Self {
        TransitionView {
            id: t.id,
            from: t.from.map(|s| s.as_str().to_owned()),
            to: t.to.as_str().to_owned(),
            by: t.by,
            at: rfc3339_secs(t.at),
            reason: t.reason,
        }
    }
}

/// Every status change of a project, oldest first: who, when, from, to.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/transitions", tag = "projects",
    params(("project_id" = String, Path)),
    responses((status = 200, body = TransitionList)))]
pub async fn transitions_v1(
    State(svc): State<Projects>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let ts = svc.transitions(&caller, &id).await?;
    Ok(Json(TransitionList {
        project_id: id,
        transitions: ts.into_iter().map(Into::into).collect(),
    }))
}
