//! ZeroMemory v2: remember, recall, forget, session cleanup and entity profiles.

use axum::Json;
use axum::extract::Path;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use zerodb_domain::namespace::{NamespaceId, NamespaceKind};
use zerodb_domain::{At, DomainError, FieldError, Namespace};
use zerodb_http::{ApiJson, ApiResult, Auth};
use zerodb_memory::model::{MAX_RECALL_LIMIT, MemoryType, Tags};
use zerodb_memory::{MemoryService, RecallQuery};

use crate::wire::*;

/// Remember: store a memory in a namespace.
///
/// Commits and returns at once; the embedding is computed off the request path, and recall
/// finds the memory by meaning immediately either way.
#[utoipa::path(post, path = "/api/v1/public/memory/v2/remember", tag = "memory", request_body = RememberRequest,
    params(("X-Project-ID" = Option<String>, Header, description = "The project this write belongs to, recorded on its `zerodb.memory.stored` event")),
    responses(
        (status = 201, body = RememberResponse),
        (status = 422, description = "Invalid field", body = zerodb_http::error::ValidationErrorBody)
    ))]
pub async fn remember(
    State(svc): State<MemoryService>,
    Auth(caller): Auth,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RememberRequest>,
) -> ApiResult<(StatusCode, Json<RememberResponse>)> {
    // Some clients name their project in a header; it is recorded on the write's event.
    let project = match headers.get("x-project-id").map(|v| v.to_str()) {
        None => None,
        Some(Ok(p)) if p.trim().is_empty() => None,
        Some(Ok(p)) => Some(namespace_id_at(At::header("X-Project-ID"), p.trim())?),
        Some(Err(_)) => {
            return Err(At::header("X-Project-ID")
                .invalid("X-Project-ID must be visible ASCII")
                .into());
        }
    };
    let (new, defaulted) = new_memory(
        &[],
        req.content,
        req.namespace,
        Namespace::Default,
        req.memory_type,
        req.importance,
        req.tags,
        req.entity_id,
        req.metadata,
    )
    .map_err(DomainError::Validation)?;
    let m = svc
        .remember_in(&caller, new, project.as_ref().map(NamespaceId::as_str))
        .await?;
    let suggestion = if defaulted {
        "Memory stored in your private 'default' namespace because the request named none; pass \
         \"namespace\" (session:<id>, project:<id>, user:<id>) to isolate it. Recall it by meaning \
         with /recall."
    } else {
        "Memory stored. You can now recall it by meaning using /recall."
    };
    Ok((
        StatusCode::CREATED,
        Json(RememberResponse {
            memory: m.into(),
            namespace_defaulted: defaulted,
            next_steps: NextSteps {
                action: "recall".into(),
                suggestion: suggestion.into(),
                endpoint: "POST /api/v1/public/memory/v2/recall".into(),
            },
        }),
    ))
}

fn recall_query(req: RecallRequest) -> Result<RecallQuery, DomainError> {
    let mut errors: Vec<FieldError> = Vec::new();
    let filter = req.filter.unwrap_or_default();
    let ns_text = req
        .namespace
        .filter(|n| !n.trim().is_empty())
        .map(|n| (n, "namespace"))
        .or_else(|| {
            filter
                .namespace
                .filter(|n| !n.trim().is_empty())
                .map(|n| (n, "filter"))
        });
    let namespace = match ns_text {
        Some((n, field)) => namespace_at(&[field], &n).map_err(|e| errors.push(e)).ok(),
        None => Some(Namespace::Default),
    };
    let limit = req.limit.unwrap_or(10);
    if !(1..=MAX_RECALL_LIMIT as i64).contains(&limit) {
        errors.push(
            At::body_path(&["limit"])
                .problem(format!("limit must be between 1 and {MAX_RECALL_LIMIT}")),
        );
    }
    if req.query.chars().count() > 10_000 {
        errors.push(At::body_path(&["query"]).problem("query must be at most 10,000 characters"));
    }
    let memory_type = match req.memory_type.or(filter.memory_type) {
        Some(t) => MemoryType::parse(&t)
            .map_err(|m| errors.push(At::body_path(&["memory_type"]).problem(m)))
            .ok(),
        None => None,
    };
    if let Some(mi) = req.min_importance
        && !(mi.is_finite() && (0.0..=1.0).contains(&mi))
    {
        errors.push(
            At::body_path(&["min_importance"]).problem("min_importance must be between 0 and 1"),
        );
    }
    // Every listed tag is compared with every memory read: the list is bounded as a
    // memory's own tags are.
    let (tags, tags_field) = match (req.tags, filter.tags) {
        (Some(t), _) => (t, &["tags"][..]),
        (None, Some(t)) => (t, &["filter", "tags"][..]),
        (None, None) => (Vec::new(), &["tags"][..]),
    };
    let tags = match Tags::new(tags) {
        Ok(t) => t.into_vec(),
        Err(m) => {
            errors.push(At::body_path(tags_field).problem(m));
            Vec::new()
        }
    };
    if !errors.is_empty() {
        return Err(DomainError::Validation(errors));
    }
    Ok(RecallQuery {
        query: req.query,
        namespace: namespace.unwrap_or(Namespace::Default),
        limit: limit as usize,
        memory_type,
        tags,
        entity_id: req
            .entity_id
            .or(filter.entity_id)
            .filter(|e| !e.trim().is_empty()),
        min_importance: req.min_importance,
    })
}

/// Recall: the memories of a namespace that best match a query by meaning.
#[utoipa::path(post, path = "/api/v1/public/memory/v2/recall", tag = "memory", request_body = RecallRequest,
    responses(
        (status = 200, body = RecallResponse),
        (status = 422, description = "Invalid field", body = zerodb_http::error::ValidationErrorBody)
    ))]
pub async fn recall(
    State(svc): State<MemoryService>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<RecallRequest>,
) -> ApiResult<Json<RecallResponse>> {
    let q = recall_query(req)?;
    let found = svc.recall(&caller, &q).await?;
    let results: Vec<RecalledMemory> = found
        .results
        .into_iter()
        .map(|s| RecalledMemory {
            memory: s.memory.into(),
            score: s.score,
            similarity: s.similarity,
        })
        .collect();
    let memories = results.clone();
    Ok(Json(RecallResponse {
        total: results.len(),
        results,
        memories,
        namespace: q.namespace.to_string(),
        not_embedded: found.not_embedded,
    }))
}

/// Forget one memory by id.
#[utoipa::path(delete, path = "/api/v1/public/memory/v2/forget/{memory_id}", tag = "memory",
    params(("memory_id" = String, Path, description = "The memory's id (`mem_…`)")),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 404, description = "No such memory in this account (API_404)", body = zerodb_http::ErrorBody)
    ))]
pub async fn forget_one(
    State(svc): State<MemoryService>,
    Auth(caller): Auth,
    Path(memory_id): Path<String>,
) -> ApiResult<StatusCode> {
    svc.forget_id(&caller, &memory_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Forget by id, by namespace, or by `filter {namespace, tags}`.
///
/// Returns how many memories were deleted; forgetting what is already gone deletes 0.
#[utoipa::path(post, path = "/api/v1/public/memory/v2/forget", tag = "memory", request_body = ForgetRequest,
    responses(
        (status = 200, body = DeletedCount),
        (status = 422, description = "None or several of memory_id, namespace, filter", body = zerodb_http::error::ValidationErrorBody)
    ))]
pub async fn forget(
    State(svc): State<MemoryService>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<ForgetRequest>,
) -> ApiResult<Json<DeletedCount>> {
    let given = [
        req.memory_id.is_some(),
        req.namespace.is_some(),
        req.filter.is_some(),
    ]
    .iter()
    .filter(|g| **g)
    .count();
    if given != 1 {
        return Err(At::body_path(&[])
            .invalid("send exactly one of memory_id, namespace, or filter {namespace, tags}")
            .into());
    }
    if let Some(id) = req.memory_id {
        return match svc.forget_id(&caller, &id).await {
            Ok(()) => Ok(Json(DeletedCount {
                deleted: 1,
                namespace: None,
            })),
            Err(DomainError::NotFound(_)) => Ok(Json(DeletedCount {
                deleted: 0,
                namespace: None,
            })),
            Err(e) => Err(e.into()),
        };
    }
    let (ns_text, tags, field) = match (req.namespace, req.filter) {
        (Some(ns), _) => (Some(ns), Vec::new(), "namespace"),
        (None, Some(f)) => (f.namespace, f.tags.unwrap_or_default(), "filter"),
        (None, None) => unreachable!("exactly one form was given"),
    };
    let ns_text = ns_text.filter(|n| !n.trim().is_empty()).ok_or_else(|| {
        At::body_path(&[field, "namespace"]).invalid("name the namespace to forget in")
    })?;
    let ns = namespace_at(&[field], &ns_text).map_err(DomainError::from)?;
    let tags = Tags::new(tags)
        .map_err(|m| At::body_path(&[field, "tags"]).invalid(m))?
        .into_vec();
    let deleted = svc.forget_where(&caller, &ns, &tags).await?;
    Ok(Json(DeletedCount {
        deleted,
        namespace: Some(ns.to_string()),
    }))
}

/// Delete a session: every memory of `session:{session_id}`, however many. Idempotent.
#[utoipa::path(delete, path = "/api/v1/public/memory/session/{session_id}", tag = "memory",
    params(("session_id" = String, Path, description = "The session id (1–128 of letters, digits, `._@-`)")),
    responses(
        (status = 200, body = DeletedCount),
        (status = 422, description = "Malformed session id", body = zerodb_http::error::ValidationErrorBody)
    ))]
pub async fn delete_session(
    State(svc): State<MemoryService>,
    Auth(caller): Auth,
    Path(session_id): Path<String>,
) -> ApiResult<Json<DeletedCount>> {
    let id = namespace_id_at(At::path("session_id"), &session_id)?;
    let ns = Namespace::Scoped(NamespaceKind::Session, id);
    let deleted = svc.forget_where(&caller, &ns, &[]).await?;
    Ok(Json(DeletedCount {
        deleted,
        namespace: Some(ns.to_string()),
    }))
}

/// An entity's profile: its preferences, behaviours and facts, from its memories.
#[utoipa::path(get, path = "/api/v1/public/memory/v2/profile/{entity_id}", tag = "memory",
    params(("entity_id" = String, Path, description = "The entity the memories name in `entity_id`")),
    responses(
        (status = 200, body = ProfileView)
    ))]
pub async fn profile(
    State(svc): State<MemoryService>,
    Auth(caller): Auth,
    Path(entity_id): Path<String>,
) -> ApiResult<Json<ProfileView>> {
    let p = svc.profile(&caller, &entity_id).await?;
    Ok(Json(ProfileView {
        entity_id: p.entity_id,
        preferences: p.preferences,
        behaviors: p.behaviors,
        facts: p.facts,
        summary: p.summary,
        memory_count: p.memory_count,
    }))
}
