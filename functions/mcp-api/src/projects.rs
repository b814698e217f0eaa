//! Project operations on [`Projects`], as projects-api serves them: creating and deleting
//! take `zerodb:admin` (a root key holds it), reading `zerodb:read`, updating
//! `zerodb:write`; another account's project is 404 `PROJECT_NOT_FOUND`. The client's
//! `settings` are the project's `config` object.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use zerodb_domain::clock::rfc3339_secs;
use zerodb_domain::{DomainError, Problems};
use zerodb_projects::project::{NewProject, ProjectPatch, Usage, check_description, check_name};
use zerodb_projects::{Project, Status, Tier};

use crate::McpApi;
use crate::rpc::{Call, Window, param};

/// Largest `settings`, as JSON (projects-api's limit on `config`).
const MAX_SETTINGS_BYTES: usize = 16 * 1024;

fn object(text: &Option<String>) -> Value {
    text.as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_else(|| Value::Object(Map::new()))
}

/// A project as the operations answer it.
pub fn view(p: &Project) -> Value {
    json!({
        "project_id": p.id,
        "id": p.id,
        "name": p.name,
        "description": p.description.clone().unwrap_or_default(),
        "tier": p.tier.as_str(),
        "status": p.status.lower(),
        "settings": object(&p.config),
        "metadata": object(&p.metadata),
        "database_enabled": p.database_enabled,
        "created_at": rfc3339_secs(p.created_at),
        "updated_at": rfc3339_secs(p.updated_at),
    })
}

fn usage_view(u: &Usage) -> Value {
    json!({
        "vectors_stored": u.vectors_stored,
        "tables_created": u.tables_created,
        "rows_stored": u.rows_stored,
        "files_stored": u.files_stored,
        "events_logged": u.events_logged,
        "rlhf_interactions": u.rlhf_interactions,
        "storage_bytes": u.storage_bytes,
        "storage_mb": u.storage_mb(),
    })
}

fn tier(t: &str, problems: &mut Problems) -> Option<Tier> {
    // A 422 at the param (seed 004's 400 INVALID_TIER would be retried by the client).
    match Tier::parse(t) {
        Ok(t) => Some(t),
        Err(_) => {
            problems.push(param("tier").problem(format!(
                "tier '{}' is not one of free, starter, pro, enterprise",
                t.chars().take(40).collect::<String>()
            )));
            None
        }
    }
}

fn settings(s: Option<Map<String, Value>>, problems: &mut Problems) -> Option<String> {
    let text = s.map(|m| Value::Object(m).to_string());
    if text.as_ref().is_some_and(|t| t.len() > MAX_SETTINGS_BYTES) {
        problems.push(param("settings").problem("settings is over 16 KB as JSON"));
    }
    text
}

#[derive(Deserialize)]
struct Create {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    settings: Option<Map<String, Value>>,
}

/// `create_project`. No `api_key` in the answer: see the README.
pub async fn create(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: Create = c.params()?;
    let mut problems = Problems::default();
    let name = problems.check(param("name"), check_name(&req.name));
    let description = req
        .description
        .and_then(|d| problems.check(param("description"), check_description(&d)));
    let tier = match req.tier.as_deref() {
        None => Some(Tier::Free),
        Some(t) => tier(t, &mut problems),
    };
    let config = settings(req.settings, &mut problems);
    problems.into_result()?;
    let p = s
        .projects
        .create(
            c.caller,
            NewProject {
                name: name.unwrap_or_default(),
                description: description.filter(|d| !d.is_empty()),
                tier: tier.unwrap_or(Tier::Free),
                database_enabled: true,
                metadata: None,
                config,
            },
        )
        .await?;
    Ok(view(&p))
}

#[derive(Deserialize)]
struct One {
    project_id: String,
}

/// `get_project`: the project with its usage.
pub async fn get(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: One = c.params()?;
    let p = s.projects.get(c.caller, &req.project_id).await?;
    let usage = s.projects.usage(&p).await?;
    let mut v = view(&p);
    v["usage"] = usage_view(&usage);
    Ok(v)
}

/// `get_project_stats`: the usage counters, grouped as the client documents them.
pub async fn stats(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: One = c.params()?;
    let p = s.projects.get(c.caller, &req.project_id).await?;
    let u = s.projects.usage(&p).await?;
    Ok(json!({
        "project_id": p.id,
        "vectors": {"total": u.vectors_stored},
        "tables": {"total": u.tables_created, "total_rows": u.rows_stored},
        "files": {"total": u.files_stored},
        "events": {"total": u.events_logged},
        "rlhf": {"total_interactions": u.rlhf_interactions},
        "storage_bytes": u.storage_bytes,
        "storage_mb": u.storage_mb(),
        "usage": usage_view(&u),
    }))
}

#[derive(Deserialize)]
struct List {
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    limit: Option<i64>,
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    offset: Option<i64>,
    #[serde(default)]
    tier: Option<String>,
}

/// `list_projects`: live projects, oldest first, optionally of one tier.
pub async fn list(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: List = c.params()?;
    let w = Window::parse(req.limit, req.offset, 100_000)?;
    let mut problems = Problems::default();
    let only = req
        .tier
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .and_then(|t| tier(t, &mut problems));
    problems.into_result()?;
    let mut all = s.projects.list(c.caller, None).await?;
    if let Some(t) = only {
        all.retain(|p| p.tier == t);
    }
    let total = all.len();
    let projects: Vec<Value> = all.iter().skip(w.offset).take(w.limit).map(view).collect();
    Ok(json!({"projects": projects, "total": total, "limit": w.limit, "offset": w.offset}))
}

#[derive(Deserialize)]
struct Update {
    project_id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    settings: Option<Map<String, Value>>,
}

/// `update_project`: name, description and settings; at least one.
pub async fn update(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: Update = c.params()?;
    let mut fields = Vec::new();
    let mut problems = Problems::default();
    let name = req.name.and_then(|n| {
        fields.push("name");
        problems.check(param("name"), check_name(&n))
    });
    let description = req.description.and_then(|d| {
        fields.push("description");
        problems.check(param("description"), check_description(&d))
    });
    if req.settings.is_some() {
        fields.push("settings");
    }
    let config = settings(req.settings, &mut problems);
    if fields.is_empty() {
        problems.push(param("name").problem_of(
            "give at least one of name, description, settings to change",
            "value_error.missing",
        ));
    }
    problems.into_result()?;
    let p = s
        .projects
        .update(
            c.caller,
            &req.project_id,
            ProjectPatch {
                name,
                description,
                metadata: None,
                config,
            },
        )
        .await?;
    Ok(json!({
        "project_id": p.id,
        "updated_fields": fields,
        "updated_at": rfc3339_secs(p.updated_at),
        "project": view(&p),
    }))
}

#[derive(Deserialize)]
struct Delete {
    project_id: String,
    #[serde(default)]
    confirm: Option<bool>,
}

/// `delete_project`: needs `confirm: true`. The project answers 404 from now on; what it
/// held (counted in `deleted_items`) is removed in the background.
pub async fn delete(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: Delete = c.params()?;
    if req.confirm != Some(true) {
        return Err(param("confirm")
            .invalid("deleting a project removes all its data: send confirm: true to go ahead"));
    }
    let p = s.projects.get(c.caller, &req.project_id).await?;
    let u = s.projects.usage(&p).await?;
    let p = s
        .projects
        .set_status(c.caller, &p.id, Status::Deleted, None)
        .await?;
    Ok(json!({
        "status": "success",
        "project_id": p.id,
        "deleted": true,
        "deleted_items": {
            "vectors": u.vectors_stored,
            "tables": u.tables_created,
            "rows": u.rows_stored,
            "files": u.files_stored,
            "events": u.events_logged,
            "rlhf_interactions": u.rlhf_interactions,
        },
        "message": "project deleted; its data is being removed",
    }))
}
