//! Project memory, ainative-python's `zerodb.memory`, under
//! `/api/v1/projects/{project_id}/database/memory`: create, list, get, update, delete,
//! search, bulk create and related memories. Every memory lives in the namespace
//! `project:<project_id>`, and every route first passes the project gate (the caller's
//! project, not deleted, not suspended for writes).
//!
//! The client's fields map onto the memory model (README, "Project memory"): `priority`
//! is the memory's importance (low 0.25, medium 0.5, high 0.75, critical 1.0; read back
//! as the nearest), and `title`, `user_id` and `expires_at` are kept in `metadata` under
//! those names, lifted out of it again in every answer. An expired memory is hidden from
//! these routes (it is not deleted).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json_};
use utoipa::{IntoParams, ToSchema};
use zerodb_domain::auth::Principal;
use zerodb_domain::namespace::{NamespaceId, NamespaceKind};
use zerodb_domain::scope::{Permission, Service};
use zerodb_domain::{At, DomainError, FieldError, Loc, Namespace, Problems};
use zerodb_http::{ApiJson, ApiQuery, ApiResult, Auth};
use zerodb_memory::model::{
    Content, Importance, MAX_BATCH, MAX_RECALL_LIMIT, MemoryPatch, MemoryType, NewMemory, Tags,
    check_metadata, rfc3339_ms,
};
use zerodb_memory::{Memory, MemoryService, RecallQuery};
use zerodb_projects::{Access, Projects};

use crate::wire::new_memory;

/// Most memories one bulk create takes (seed 003's batch bound).
pub const MAX_BULK: usize = MAX_BATCH;
/// Most characters of a title or a user id.
const MAX_TITLE_CHARS: usize = 500;
const MAX_USER_ID_CHARS: usize = 256;
/// The title ainative-python sends when its caller gives none.
const DEFAULT_TITLE: &str = "Memory Entry";
/// Metadata keys holding the client's fields the memory model has no place for.
const TITLE: &str = "title";
const USER_ID: &str = "user_id";
const EXPIRES_AT: &str = "expires_at";
const LIFTED: [&str; 3] = [TITLE, USER_ID, EXPIRES_AT];

/// ainative-python's four priorities, kept as the memory's importance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Priority {
    Low,
    Medium,
    High,
    Critical,
}

impl Priority {
    const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Medium,
        Priority::High,
        Priority::Critical,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }

    fn parse(s: &str) -> Result<Priority, String> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown priority '{s}': use low, medium, high or critical"))
    }

    fn importance(self) -> Importance {
        let v = match self {
            Priority::Low => 0.25,
            Priority::Medium => 0.5,
            Priority::High => 0.75,
            Priority::Critical => 1.0,
        };
        Importance::new(v).unwrap_or(Importance::DEFAULT)
    }

    /// The nearest priority of any importance (a memory written through another route
    /// may hold any value in 0–1).
    fn of(importance: f64) -> Priority {
        match importance {
            i if i < 0.375 => Priority::Low,
            i if i < 0.625 => Priority::Medium,
            i if i < 0.875 => Priority::High,
            _ => Priority::Critical,
        }
    }
}

/// The project's namespace, once the caller may `access` it: the memory scope on
/// `project:<project_id>` first (403; a key without it learns nothing of the project),
/// then the gate (404 `PROJECT_NOT_FOUND` for another account's, a deleted or an unknown
/// project; 403 `PROJECT_SUSPENDED` for a write to a suspended one).
pub(crate) async fn enter(
    projects: &Projects,
    caller: &Principal,
    project_id: &str,
    access: Access,
) -> Result<Namespace, DomainError> {
    // No project has an id that is not a namespace id.
    let ns = NamespaceId::parse(project_id)
        .map(|id| Namespace::Scoped(NamespaceKind::Project, id))
        .map_err(|_| zerodb_projects::project::not_found())?;
    let permission = match access {
        Access::Read => Permission::Read,
        Access::Write => Permission::Write,
    };
    caller.require(Service::Memory, permission, Some(&ns))?;
    projects.gate(caller, project_id, access).await?;
    Ok(ns)
}

/// An instant as clients send it: RFC 3339, or Python's `isoformat()` of a naive
/// datetime (no offset, read as UTC), or a bare date. Milliseconds since the epoch.
fn parse_instant(s: &str) -> Result<i64, String> {
    use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
    let t = s.trim();
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(d.timestamp_millis());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(n.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_time(NaiveTime::MIN).and_utc().timestamp_millis());
    }
    Err(format!(
        "expires_at '{s}' is not a date and time: send ISO 8601, e.g. 2030-01-31T12:00:00Z"
    ))
}

fn meta_str<'a>(m: &'a Map<String, Json_>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Json_::as_str)
}

/// Whether a memory has not expired at `now` (milliseconds).
fn live(m: &Memory, now: i64) -> bool {
    meta_str(&m.metadata, EXPIRES_AT)
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
        .is_none_or(|e| e.timestamp_millis() > now)
}

fn gone(id: &str) -> DomainError {
    DomainError::NotFound(format!("memory '{id}' not found in this project"))
}

fn check_title(at: At, t: &str) -> Result<String, FieldError> {
    let n = t.chars().count();
    if n > MAX_TITLE_CHARS {
        return Err(at.problem(format!(
            "title is {n} characters; at most {MAX_TITLE_CHARS} are allowed"
        )));
    }
    Ok(t.trim().to_owned())
}

fn check_user_id(at: At, u: &str) -> Result<String, FieldError> {
    let u = u.trim();
    if u.is_empty() || u.chars().count() > MAX_USER_ID_CHARS {
        return Err(at.problem(format!("user_id must be 1-{MAX_USER_ID_CHARS} characters")));
    }
    Ok(u.to_owned())
}

fn check_expiry(at: At, e: &str, now: i64) -> Result<String, FieldError> {
    let ms = parse_instant(e).map_err(|m| at.clone().problem(m))?;
    if ms <= now {
        return Err(at.problem(format!(
            "expires_at {} is in the past: the memory would be gone at once",
            rfc3339_ms(ms)
        )));
    }
    Ok(rfc3339_ms(ms))
}

/// `POST …/database/memory`, and each item of `…/bulk`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateMemory {
    /// The text to remember (1–50,000 characters).
    #[schema(min_length = 1, max_length = 50000, pattern = r"\S")]
    pub content: String,
    /// Default "Memory Entry"; at most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub title: Option<String>,
    /// At most 50, each 1–128 characters.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub tags: Option<Vec<String>>,
    /// `low`, `medium` (default; also when empty), `high` or `critical`: the memory's importance.
    #[serde(default)]
    #[schema(pattern = "^(low|medium|high|critical)?$")]
    pub priority: Option<String>,
    /// Free-form JSON object (≤ 32 KB with title, user_id and expires_at).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Json_>>,
    /// The user the memory belongs to (1–256 characters); list and search filter by it.
    #[serde(default)]
    #[schema(max_length = 256)]
    pub user_id: Option<String>,
    /// ISO 8601 (no offset: UTC), in the future; the memory is hidden once it passes.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// `episodic` (default), `semantic`, `procedural` or `working`.
    #[serde(default)]
    #[schema(pattern = "^(episodic|semantic|procedural|working)$")]
    pub memory_type: Option<String>,
}

/// A create body as a new memory of `ns`; problems are located under `body`.
fn new_project_memory(
    req: CreateMemory,
    ns: &Namespace,
    now: i64,
) -> Result<NewMemory, Vec<FieldError>> {
    let mut p = Problems::default();
    let mut metadata = req.metadata.unwrap_or_default();
    // Each lifted field comes from its own field, else from the same key of metadata.
    let title = req
        .title
        .or_else(|| meta_str(&metadata, TITLE).map(str::to_owned));
    let title = match title.filter(|t| !t.trim().is_empty()) {
        Some(t) => check_title(At::body(TITLE), &t).map_err(|e| p.push(e)).ok(),
        None => Some(DEFAULT_TITLE.to_owned()),
    };
    let user_id = req
        .user_id
        .or_else(|| meta_str(&metadata, USER_ID).map(str::to_owned))
        .filter(|u| !u.trim().is_empty())
        .and_then(|u| {
            check_user_id(At::body(USER_ID), &u)
                .map_err(|e| p.push(e))
                .ok()
        });
    let expires_at = req
        .expires_at
        .or_else(|| meta_str(&metadata, EXPIRES_AT).map(str::to_owned))
        .filter(|e| !e.trim().is_empty())
        .and_then(|e| {
            check_expiry(At::body(EXPIRES_AT), &e, now)
                .map_err(|e| p.push(e))
                .ok()
        });
    let importance = match req.priority.filter(|p| !p.trim().is_empty()) {
        Some(pr) => p
            .check(At::body("priority"), Priority::parse(&pr))
            .map(Priority::importance),
        None => Some(Priority::Medium.importance()),
    };
    if let Some(t) = title {
        metadata.insert(TITLE.into(), Json_::String(t));
    }
    if let Some(u) = user_id {
        metadata.insert(USER_ID.into(), Json_::String(u));
    }
    if let Some(e) = expires_at {
        metadata.insert(EXPIRES_AT.into(), Json_::String(e));
    }
    // The namespace is named, so a `metadata.namespace` cannot move the memory.
    let made = new_memory(
        &[],
        req.content,
        Some(ns.to_string()),
        ns.clone(),
        req.memory_type,
        importance.map(Importance::get),
        req.tags,
        None,
        Some(metadata),
    );
    match made {
        Ok((new, _)) if p.is_empty() => Ok(new),
        Ok(_) => Err(p.into_vec()),
        Err(errs) => {
            let mut all = p.into_vec();
            all.extend(errs);
            Err(all)
        }
    }
}

/// A project memory as ainative-python reads it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProjectMemory {
    pub id: String,
    /// The same as `id`.
    pub memory_id: String,
    pub project_id: String,
    pub content: String,
    /// Empty for a memory written through another route without one.
    pub title: String,
    pub tags: Vec<String>,
    /// `low`, `medium`, `high` or `critical`: the nearest to `importance`.
    pub priority: String,
    /// 0–1.
    pub importance: f64,
    pub memory_type: String,
    /// `project:<project_id>`.
    pub namespace: String,
    /// Absent when none was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// RFC 3339; absent when the memory does not expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The client's metadata (title, user_id and expires_at are the fields above).
    #[schema(value_type = Object)]
    pub metadata: Map<String, Json_>,
    pub created_at: String,
    pub updated_at: String,
    /// Whether its embedding has been computed yet (search finds it either way).
    pub embedded: bool,
}

fn view(m: Memory, project_id: &str) -> ProjectMemory {
    let mut metadata = m.metadata;
    // Only strings are the fields; anything else under those keys stays the client's.
    let mut lift = |key: &str| match metadata.remove(key) {
        Some(Json_::String(s)) => Some(s),
        Some(other) => {
            metadata.insert(key.to_owned(), other);
            None
        }
        None => None,
    };
    let title = lift(TITLE).unwrap_or_default();
    let user_id = lift(USER_ID);
    let expires_at = lift(EXPIRES_AT);
    ProjectMemory {
        memory_id: m.id.clone(),
        id: m.id,
        project_id: project_id.to_owned(),
        content: m.content,
        title,
        tags: m.tags,
        priority: Priority::of(m.importance).as_str().to_owned(),
        importance: m.importance,
        memory_type: m.memory_type.as_str().to_owned(),
        namespace: m.namespace.to_string(),
        user_id,
        expires_at,
        metadata,
        created_at: rfc3339_ms(m.created_at),
        updated_at: rfc3339_ms(m.updated_at),
        embedded: m.vector.is_some(),
    }
}

/// Creates a memory in the project.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/database/memory", tag = "project-memory",
    params(("project_id" = String, Path)),
    request_body = CreateMemory,
    responses((status = 201, body = ProjectMemory),
        (status = 404, description = "PROJECT_NOT_FOUND", body = zerodb_http::ErrorBody),
        (status = 422, description = "Invalid field", body = zerodb_http::error::ValidationErrorBody)))]
pub async fn create(
    State(svc): State<MemoryService>,
    State(projects): State<Projects>,
    Auth(caller): Auth,
    Path(project_id): Path<String>,
    ApiJson(req): ApiJson<CreateMemory>,
) -> ApiResult<(StatusCode, Json<ProjectMemory>)> {
    let new = new_project_memory(req, &project_namespace(&project_id), svc.now_millis())
        .map_err(DomainError::Validation)?;
    let ns = enter(&projects, &caller, &project_id, Access::Write).await?;
    let new = NewMemory {
        namespace: ns,
        ..new
    };
    let m = svc.remember_in(&caller, new, Some(&project_id)).await?;
    Ok((StatusCode::CREATED, Json(view(m, &project_id))))
}

/// The namespace a project id names, for validating a body before the gate (an id that
/// names none fails the gate with 404 anyway).
fn project_namespace(project_id: &str) -> Namespace {
    NamespaceId::parse(project_id)
        .map(|id| Namespace::Scoped(NamespaceKind::Project, id))
        .unwrap_or(Namespace::Default)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Memories to skip, 0–50,000 (default 0).
    #[param(minimum = 0, maximum = 50000)]
    pub offset: Option<i64>,
    /// Only this user's memories.
    pub user_id: Option<String>,
    /// Comma-separated: only memories carrying every one.
    pub tags: Option<String>,
    /// Only memories of this priority (empty: any).
    #[param(pattern = "^(low|medium|high|critical)?$")]
    pub priority: Option<String>,
    /// Only memories whose content or title holds every word of it (any case).
    pub search: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemoryPage {
    /// Newest first.
    pub memories: Vec<ProjectMemory>,
    /// How many on this page.
    pub count: usize,
    pub limit: usize,
    pub offset: usize,
    /// More follow: ask again with `offset + count`.
    pub has_more: bool,
}

/// Words of a text search, lowercased.
fn words(q: &str) -> Vec<String> {
    q.split_whitespace().map(str::to_lowercase).collect()
}

/// Whether a memory's content or title holds every word.
fn has_words(m: &Memory, words: &[String]) -> bool {
    if words.is_empty() {
        return true;
    }
    let mut text = m.content.to_lowercase();
    if let Some(t) = meta_str(&m.metadata, TITLE) {
        text.push(' ');
        text.push_str(&t.to_lowercase());
    }
    words.iter().all(|w| text.contains(w.as_str()))
}

fn of_user(m: &Memory, user: Option<&str>) -> bool {
    user.is_none_or(|u| meta_str(&m.metadata, USER_ID) == Some(u))
}

fn ranged(
    at: At,
    v: Option<i64>,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, FieldError> {
    match v {
        None => Ok(default),
        Some(n) if n >= 0 && range.contains(&(n as usize)) => Ok(n as usize),
        Some(n) => Err(at.problem(format!(
            "must be between {} and {}, got {n}",
            range.start(),
            range.end()
        ))),
    }
}

/// Lists the project's memories, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/database/memory", tag = "project-memory",
    params(("project_id" = String, Path), ListParams),
    responses((status = 200, body = MemoryPage),
        (status = 404, description = "PROJECT_NOT_FOUND", body = zerodb_http::ErrorBody),
        (status = 422, description = "Invalid parameter", body = zerodb_http::error::ValidationErrorBody)))]
pub async fn list(
    State(svc): State<MemoryService>,
    State(projects): State<Projects>,
    Auth(caller): Auth,
    Path(project_id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult<Json<MemoryPage>> {
    let mut p = Problems::default();
    let limit = ranged(At::query("limit"), q.limit, 100, 1..=1000)
        .map_err(|e| p.push(e))
        .ok();
    let offset = ranged(At::query("offset"), q.offset, 0, 0..=50_000)
        .map_err(|e| p.push(e))
        .ok();
    let tags: Vec<String> = q
        .tags
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let tags = p
        .check(At::query("tags"), Tags::new(tags))
        .map(Tags::into_vec);
    let priority = match q
        .priority
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(s) => p.check(At::query("priority"), Priority::parse(s)).map(Some),
        None => Some(None),
    };
    let search = words(q.search.as_deref().unwrap_or_default());
    if search.len() > 100 {
        p.push(At::query("search").problem("search holds at most 100 words"));
    }
    let user = q.user_id.filter(|u| !u.trim().is_empty());
    let (Some(limit), Some(offset), Some(tags), Some(priority), true) =
        (limit, offset, tags, priority, p.is_empty())
    else {
        return Err(DomainError::Validation(p.into_vec()).into());
    };
    let ns = enter(&projects, &caller, &project_id, Access::Read).await?;
    let now = svc.now_millis();
    let keep = |m: &Memory| {
        live(m, now)
            && of_user(m, user.as_deref())
            && m.has_all_tags(&tags)
            && priority.is_none_or(|pr| Priority::of(m.importance) == pr)
            && has_words(m, &search)
    };
    let page = svc.list_in(&caller, &ns, &keep, offset, limit).await?;
    let memories: Vec<ProjectMemory> = page
        .memories
        .into_iter()
        .map(|m| view(m, &project_id))
        .collect();
    Ok(Json(MemoryPage {
        count: memories.len(),
        memories,
        limit,
        offset,
        has_more: page.has_more,
    }))
}

/// One memory of the project.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/database/memory/{memory_id}", tag = "project-memory",
    params(("project_id" = String, Path), ("memory_id" = String, Path)),
    responses((status = 200, body = ProjectMemory),
        (status = 404, description = "PROJECT_NOT_FOUND, or no such memory in the project (API_404)", body = zerodb_http::ErrorBody)))]
pub async fn get(
    State(svc): State<MemoryService>,
    State(projects): State<Projects>,
    Auth(caller): Auth,
    Path((project_id, memory_id)): Path<(String, String)>,
) -> ApiResult<Json<ProjectMemory>> {
    let ns = enter(&projects, &caller, &project_id, Access::Read).await?;
    let m = svc
        .get_in(&caller, &ns, &memory_id)
        .await
        .map_err(|e| match e {
            DomainError::NotFound(_) => gone(&memory_id),
            other => other,
        })?;
    if !live(&m, svc.now_millis()) {
        return Err(gone(&memory_id).into());
    }
    Ok(Json(view(m, &project_id)))
}

/// `PATCH …/database/memory/{memory_id}`: what to change.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateMemory {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 50000, pattern = r"\S")]
    pub content: Option<String>,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub title: Option<String>,
    /// Replaces the tags.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    #[schema(pattern = "^(low|medium|high|critical)$")]
    pub priority: Option<String>,
    /// Replaces the client's metadata (title, user_id and expires_at stay unless it
    /// names them).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Json_>>,
    #[serde(default)]
    #[schema(pattern = "^(episodic|semantic|procedural|working)$")]
    pub memory_type: Option<String>,
}

/// Updates a memory of the project: only the fields sent change.
#[utoipa::path(patch, path = "/api/v1/projects/{project_id}/database/memory/{memory_id}", tag = "project-memory",
    params(("project_id" = String, Path), ("memory_id" = String, Path)),
    request_body = UpdateMemory,
    responses((status = 200, body = ProjectMemory),
        (status = 404, description = "PROJECT_NOT_FOUND, or no such memory in the project (API_404)", body = zerodb_http::ErrorBody),
        (status = 422, description = "Invalid field, or nothing to update", body = zerodb_http::error::ValidationErrorBody)))]
pub async fn update(
    State(svc): State<MemoryService>,
    State(projects): State<Projects>,
    Auth(caller): Auth,
    Path((project_id, memory_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<UpdateMemory>,
) -> ApiResult<Json<ProjectMemory>> {
    let mut p = Problems::default();
    let content = req
        .content
        .and_then(|c| p.check(At::body("content"), Content::new(c)));
    let memory_type = req
        .memory_type
        .and_then(|t| p.check(At::body("memory_type"), MemoryType::parse(&t)));
    let importance = req.priority.and_then(|pr| {
        p.check(At::body("priority"), Priority::parse(&pr))
            .map(Priority::importance)
    });
    let tags = req
        .tags
        .and_then(|t| p.check(At::body("tags"), Tags::new(t)));
    let title = req
        .title
        .and_then(|t| check_title(At::body(TITLE), &t).map_err(|e| p.push(e)).ok())
        .map(|t| {
            if t.is_empty() {
                DEFAULT_TITLE.to_owned()
            } else {
                t
            }
        });
    let metadata = req.metadata;
    p.into_result()?;
    if content.is_none()
        && memory_type.is_none()
        && importance.is_none()
        && tags.is_none()
        && title.is_none()
        && metadata.is_none()
    {
        return Err(At::body_root()
            .invalid("nothing to update: send content, title, tags, priority or metadata")
            .into());
    }
    let ns = enter(&projects, &caller, &project_id, Access::Write).await?;
    let now = svc.now_millis();
    let changed = svc
        .update_in(&caller, &ns, &memory_id, |old| {
            if !live(old, now) {
                return Err(gone(&memory_id));
            }
            let metadata = match (metadata, title) {
                (None, None) => None,
                (given, title) => {
                    let mut meta = given.unwrap_or_else(|| old.metadata.clone());
                    // The lifted fields stay unless the new metadata names them.
                    for key in LIFTED {
                        if !meta.contains_key(key)
                            && let Some(v) = old.metadata.get(key)
                        {
                            meta.insert(key.to_owned(), v.clone());
                        }
                    }
                    let mut p = Problems::default();
                    if let Some(t) = title {
                        meta.insert(TITLE.into(), Json_::String(t));
                    } else if let Some(t) = meta_str(&meta, TITLE)
                        && let Err(e) = check_title(At::body_path(&["metadata", TITLE]), t)
                    {
                        p.push(e);
                    }
                    if let Some(u) = meta_str(&meta, USER_ID)
                        && let Err(e) = check_user_id(At::body_path(&["metadata", USER_ID]), u)
                    {
                        p.push(e);
                    }
                    p.check(At::body("metadata"), check_metadata(&meta));
                    p.into_result()?;
                    Some(meta)
                }
            };
            Ok(MemoryPatch {
                content,
                memory_type,
                importance,
                tags,
                metadata,
            })
        })
        .await
        .map_err(|e| match e {
            DomainError::NotFound(_) => gone(&memory_id),
            other => other,
        })?;
    Ok(Json(view(changed, &project_id)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedMemory {
    pub id: String,
    pub memory_id: String,
    pub deleted: bool,
}

/// Deletes a memory of the project; answers with a JSON body (ainative-agent cannot read
/// an empty 200).
#[utoipa::path(delete, path = "/api/v1/projects/{project_id}/database/memory/{memory_id}", tag = "project-memory",
    params(("project_id" = String, Path), ("memory_id" = String, Path)),
    responses((status = 200, body = DeletedMemory),
        (status = 404, description = "PROJECT_NOT_FOUND, or no such memory in the project (API_404)", body = zerodb_http::ErrorBody)))]
pub async fn delete(
    State(svc): State<MemoryService>,
    State(projects): State<Projects>,
    Auth(caller): Auth,
    Path((project_id, memory_id)): Path<(String, String)>,
) -> ApiResult<Json<DeletedMemory>> {
    let ns = enter(&projects, &caller, &project_id, Access::Write).await?;
    svc.forget_in(&caller, &ns, &memory_id)
        .await
        .map_err(|e| match e {
            DomainError::NotFound(_) => gone(&memory_id),
            other => other,
        })?;
    Ok(Json(DeletedMemory {
        id: memory_id.clone(),
        memory_id,
        deleted: true,
    }))
}

/// `POST …/database/memory/search`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SearchRequest {
    /// What to look for (at most 10,000 characters); empty or `*` lists newest first.
    #[schema(max_length = 10000)]
    pub query: String,
    /// 1–1000, default 10.
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// True (default): by meaning, ranked as recall ranks. False: memories whose content
    /// or title holds every word of the query, newest first.
    #[serde(default)]
    pub semantic: Option<bool>,
    /// Only this user's memories.
    #[serde(default)]
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScoredMemory {
    #[serde(flatten)]
    pub memory: ProjectMemory,
    /// The ranking score, 0–1 (1 for a text match).
    pub score: f64,
    /// Cosine similarity with the query, 0–1 (1 for a text match).
    pub similarity: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// Best first.
    pub results: Vec<ScoredMemory>,
    /// The same list.
    pub memories: Vec<ScoredMemory>,
    pub total: usize,
    pub query: String,
    pub semantic: bool,
}

fn scored(found: zerodb_memory::Recalled, project_id: &str) -> Vec<ScoredMemory> {
    found
        .results
        .into_iter()
        .map(|s| ScoredMemory {
            memory: view(s.memory, project_id),
            score: s.score,
            similarity: s.similarity,
        })
        .collect()
}

fn recall_of(query: String, ns: Namespace, limit: usize) -> RecallQuery {
    RecallQuery {
        query,
        namespace: ns,
        limit,
        memory_type: None,
        tags: Vec::new(),
        entity_id: None,
        min_importance: None,
    }
}

/// Searches the project's memories, by meaning or by words.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/database/memory/search", tag = "project-memory",
    params(("project_id" = String, Path)),
    request_body = SearchRequest,
    responses((status = 200, body = SearchResponse),
        (status = 404, description = "PROJECT_NOT_FOUND", body = zerodb_http::ErrorBody),
        (status = 422, description = "Invalid field", body = zerodb_http::error::ValidationErrorBody)))]
pub async fn search(
    State(svc): State<MemoryService>,
    State(projects): State<Projects>,
    Auth(caller): Auth,
    Path(project_id): Path<String>,
    ApiJson(req): ApiJson<SearchRequest>,
) -> ApiResult<Json<SearchResponse>> {
    let mut p = Problems::default();
    let limit = ranged(At::body("limit"), req.limit, 10, 1..=MAX_RECALL_LIMIT)
        .map_err(|e| p.push(e))
        .ok();
    if req.query.chars().count() > 10_000 {
        p.push(At::body("query").problem("query must be at most 10,000 characters"));
    }
    let (Some(limit), true) = (limit, p.is_empty()) else {
        return Err(DomainError::Validation(p.into_vec()).into());
    };
    let ns = enter(&projects, &caller, &project_id, Access::Read).await?;
    let now = svc.now_millis();
    let user = req.user_id.filter(|u| !u.trim().is_empty());
    let semantic = req.semantic.unwrap_or(true);
    let results = if semantic {
        let keep = |m: &Memory| live(m, now) && of_user(m, user.as_deref());
        let q = recall_of(req.query.clone(), ns, limit);
        scored(svc.recall_where(&caller, &q, &keep).await?, &project_id)
    } else {
        let terms = words(if req.query.trim() == "*" {
            ""
        } else {
            &req.query
        });
        let keep = |m: &Memory| live(m, now) && of_user(m, user.as_deref()) && has_words(m, &terms);
        svc.list_in(&caller, &ns, &keep, 0, limit)
            .await?
            .memories
            .into_iter()
            .map(|m| ScoredMemory {
                memory: view(m, &project_id),
                score: 1.0,
                similarity: 1.0,
            })
            .collect()
    };
    Ok(Json(SearchResponse {
        total: results.len(),
        memories: results.clone(),
        results,
        query: req.query,
        semantic,
    }))
}

/// `POST …/database/memory/bulk`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BulkRequest {
    /// 1–500 memories, each as `POST …/database/memory` takes it.
    #[schema(min_items = 1, max_items = 500, value_type = Vec<CreateMemory>)]
    pub memories: Vec<Json_>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkItemError {
    /// Position in the request.
    pub index: usize,
    pub error: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResponse {
    pub created: usize,
    pub failed: usize,
    /// The memories created, in request order.
    pub memories: Vec<ProjectMemory>,
    /// Memories storage refused (none in the usual case).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<BulkItemError>,
}

/// A problem of one bulk item, located under `body.memories.<index>`.
fn under_item(mut e: FieldError, index: usize) -> FieldError {
    let rest = if e.loc.first() == Some(&Loc::from("body")) {
        e.loc.split_off(1)
    } else {
        std::mem::take(&mut e.loc)
    };
    e.loc = vec![Loc::from("body"), Loc::from("memories"), Loc::Index(index)];
    e.loc.extend(rest);
    e
}

/// Creates up to 500 memories in the project. Every one is checked first: any problem
/// refuses the whole request (422 naming each, under `memories.<index>`) and nothing is
/// written.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/database/memory/bulk", tag = "project-memory",
    params(("project_id" = String, Path)),
    request_body = BulkRequest,
    responses((status = 201, body = BulkResponse),
        (status = 404, description = "PROJECT_NOT_FOUND", body = zerodb_http::ErrorBody),
        (status = 422, description = "Empty, over 500 memories, or an invalid one; nothing written", body = zerodb_http::error::ValidationErrorBody)))]
pub async fn bulk(
    State(svc): State<MemoryService>,
    State(projects): State<Projects>,
    Auth(caller): Auth,
    Path(project_id): Path<String>,
    ApiJson(req): ApiJson<BulkRequest>,
) -> ApiResult<(StatusCode, Json<BulkResponse>)> {
    let n = req.memories.len();
    if n == 0 {
        return Err(At::body("memories")
            .invalid("send at least one memory")
            .into());
    }
    if n > MAX_BULK {
        return Err(At::body("memories")
            .invalid(format!(
                "a bulk create holds at most {MAX_BULK} memories; got {n}: split it into several requests"
            ))
            .into());
    }
    let target = project_namespace(&project_id);
    let now = svc.now_millis();
    let mut news = Vec::with_capacity(n);
    let mut problems: Vec<FieldError> = Vec::new();
    for (index, v) in req.memories.into_iter().enumerate() {
        if !v.is_object() {
            problems.push(At::body("memories").index(index).problem_of(
                "each memory must be a JSON object, e.g. {\"content\": ...}",
                "type_error.dict",
            ));
            continue;
        }
        // Parsed on its own, so a problem names its item.
        let bytes = serde_json::to_vec(&v).unwrap_or_default();
        let parsed = zerodb_http::extract::parse_json::<CreateMemory>(&bytes)
            .map_err(|e| match e {
                DomainError::Validation(errs) => errs,
                other => vec![At::body_root().problem(other.to_string())],
            })
            .and_then(|req| new_project_memory(req, &target, now));
        match parsed {
            Ok(new) => news.push(new),
            Err(errs) => problems.extend(errs.into_iter().map(|e| under_item(e, index))),
        }
    }
    if !problems.is_empty() {
        return Err(DomainError::Validation(problems).into());
    }
    let ns = enter(&projects, &caller, &project_id, Access::Write).await?;
    let news = news
        .into_iter()
        .map(|new| NewMemory {
            namespace: ns.clone(),
            ..new
        })
        .collect();
    let mut out = BulkResponse {
        created: 0,
        failed: 0,
        memories: Vec::with_capacity(n),
        errors: Vec::new(),
    };
    for (index, r) in svc
        .remember_many(&caller, news)
        .await?
        .into_iter()
        .enumerate()
    {
        match r {
            Ok(m) => {
                out.created += 1;
                out.memories.push(view(m, &project_id));
            }
            Err(error) => {
                out.failed += 1;
                out.errors.push(BulkItemError { index, error });
            }
        }
    }
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RelatedParams {
    /// 1–100, default 5.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RelatedResponse {
    /// The memories closest in meaning, best first (the memory itself left out).
    pub memories: Vec<ScoredMemory>,
    /// The same list.
    pub results: Vec<ScoredMemory>,
    pub total: usize,
    pub memory_id: String,
}

/// The project's memories closest in meaning to one of them.
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/database/memory/{memory_id}/related", tag = "project-memory",
    params(("project_id" = String, Path), ("memory_id" = String, Path), RelatedParams),
    responses((status = 200, body = RelatedResponse),
        (status = 404, description = "PROJECT_NOT_FOUND, or no such memory in the project (API_404)", body = zerodb_http::ErrorBody)))]
pub async fn related(
    State(svc): State<MemoryService>,
    State(projects): State<Projects>,
    Auth(caller): Auth,
    Path((project_id, memory_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<RelatedParams>,
) -> ApiResult<Json<RelatedResponse>> {
    let limit = ranged(At::query("limit"), q.limit, 5, 1..=100).map_err(DomainError::from)?;
    let ns = enter(&projects, &caller, &project_id, Access::Read).await?;
    let now = svc.now_millis();
    let m = svc
        .get_in(&caller, &ns, &memory_id)
        .await
        .map_err(|e| match e {
            DomainError::NotFound(_) => gone(&memory_id),
            other => other,
        })?;
    if !live(&m, now) {
        return Err(gone(&memory_id).into());
    }
    let keep = |x: &Memory| x.id != m.id && live(x, now);
    let q = recall_of(m.content.clone(), ns, limit);
    let memories = scored(svc.recall_where(&caller, &q, &keep).await?, &project_id);
    Ok(Json(RelatedResponse {
        total: memories.len(),
        results: memories.clone(),
        memories,
        memory_id,
    }))
}
