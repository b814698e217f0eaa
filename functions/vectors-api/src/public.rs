//! ainative-agent's vectors, `/api/v1/public/vectors/…` (the trailing slash of the
//! upsert exactly as it sends it; `stats` is matched before `{id}`): the `default`
//! namespace of the account's default project unless `X-Project-ID` names another.
//! Search takes a vector or a text (`query`, embedded with the memory embedder) and
//! answers a bare array.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use zerodb_domain::{At, DomainError, Refusal};
use zerodb_http::{ApiJson, ApiResult, Auth};
use zerodb_projects::vectors::{DEFAULT_NAMESPACE, Search, check_filter, check_vector};
use zerodb_projects::{Access, ProjectVectors, Projects};

use crate::default_project;
use crate::project::{new_vector, top_k};

#[derive(Debug, Deserialize, ToSchema)]
pub struct PublicUpsert {
    /// At most 1,024 characters.
    pub id: String,
    /// 1–4,096 numbers.
    pub values: Vec<f64>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicUpserted {
    pub id: String,
    pub upserted: bool,
    pub namespace: String,
}

/// Stores one vector by id (`zerodb:write`); emits `zerodb.vector.stored`.
#[utoipa::path(put, path = "/api/v1/public/vectors/", tag = "vectors", request_body = PublicUpsert,
    params(("X-Project-ID" = Option<String>, Header, description = "The project; default: the account's first")),
    responses((status = 200, body = PublicUpserted)))]
pub async fn upsert(
    State(projects): State<Projects>,
    State(v): State<ProjectVectors>,
    Auth(caller): Auth,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PublicUpsert>,
) -> ApiResult<Json<PublicUpserted>> {
    zerodb_projects::vectors::check_id(&req.id, &At::body("id"))?;
    let item = new_vector(
        &req.values,
        Some(req.id.clone()),
        req.metadata,
        None,
        At::body_root(),
        "values",
    )?;
    let p = default_project(&projects, &caller, &headers, Access::Write).await?;
    v.upsert(&p, DEFAULT_NAMESPACE, vec![item], "api").await?;
    Ok(Json(PublicUpserted {
        id: req.id,
        upserted: true,
        namespace: DEFAULT_NAMESPACE.to_owned(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PublicSearch {
    /// 1–100, default 10.
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// A text, embedded with the server's embedder (the namespace must hold vectors of
    /// its size).
    #[serde(default)]
    pub query: Option<String>,
    /// A vector; used when both are sent.
    #[serde(default)]
    pub vector: Option<Vec<f64>>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicHit {
    pub id: String,
    /// Cosine similarity.
    pub score: f32,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

/// The query vector of a search that sent a vector or a text.
pub async fn query_vector(
    v: &ProjectVectors,
    vector: Option<&[f64]>,
    text: Option<&str>,
) -> Result<Vec<f32>, DomainError> {
    match (vector, text) {
        (Some(vec), _) => check_vector(vec, &At::body("vector")),
        (None, Some(t)) if !t.trim().is_empty() => v.embed_one(t, &At::body("query")).await,
        _ => Err(At::body_root().invalid("send `vector` (numbers) or `query` (a text)")),
    }
}

/// The nearest vectors to a vector or a text (`zerodb:read`), as an array.
#[utoipa::path(post, path = "/api/v1/public/vectors/search", tag = "vectors", request_body = PublicSearch,
    params(("X-Project-ID" = Option<String>, Header, description = "The project; default: the account's first")),
    responses((status = 200, body = Vec<PublicHit>)))]
pub async fn search(
    State(projects): State<Projects>,
    State(v): State<ProjectVectors>,
    Auth(caller): Auth,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PublicSearch>,
) -> ApiResult<Json<Vec<PublicHit>>> {
    let top_k = top_k(req.limit, 10, At::body("limit"))?;
    if let Some(f) = &req.filter {
        check_filter(f, &At::body("filter"))?;
    }
    let p = match default_project(&projects, &caller, &headers, Access::Read).await {
        Ok(p) => p,
        // An account with no project yet has no vectors.
        Err(DomainError::Coded {
            code: "PROJECT_NOT_FOUND",
            ..
        }) if !headers.contains_key("x-project-id") => {
            return Ok(Json(vec![]));
        }
        Err(e) => return Err(e.into()),
    };
    let vector = query_vector(&v, req.vector.as_deref(), req.query.as_deref()).await?;
    let (hits, _) = v
        .search(
            &p,
            DEFAULT_NAMESPACE,
            Search {
                vector,
                top_k,
                filter: req.filter,
                include_values: false,
                threshold: None,
            },
        )
        .await?;
    Ok(Json(
        hits.into_iter()
            .map(|h| PublicHit {
                id: h.id,
                score: h.similarity,
                metadata: h.metadata,
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicStats {
    pub count: i64,
    pub dimensions: usize,
    pub namespace: String,
}

/// How many vectors the default namespace holds, and their size (`zerodb:read`).
#[utoipa::path(get, path = "/api/v1/public/vectors/stats", tag = "vectors",
    params(("X-Project-ID" = Option<String>, Header, description = "The project; default: the account's first")),
    responses((status = 200, body = PublicStats)))]
pub async fn stats(
    State(projects): State<Projects>,
    State(v): State<ProjectVectors>,
    Auth(caller): Auth,
    headers: HeaderMap,
) -> ApiResult<Json<PublicStats>> {
    let ns = match default_project(&projects, &caller, &headers, Access::Read).await {
        Ok(p) => v.namespace(&p, DEFAULT_NAMESPACE).await?,
        Err(DomainError::Coded {
            code: "PROJECT_NOT_FOUND",
            ..
        }) if !headers.contains_key("x-project-id") => None,
        Err(e) => return Err(e.into()),
    };
    Ok(Json(PublicStats {
        count: ns.as_ref().map(|n| n.vector_count).unwrap_or(0),
        dimensions: ns.as_ref().map(|n| n.dimension).unwrap_or(0),
        namespace: DEFAULT_NAMESPACE.to_owned(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicVector {
    pub id: String,
    pub values: Vec<f32>,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

fn not_found(id: &str) -> DomainError {
    DomainError::coded(
        Refusal::NotFound,
        "VECTOR_NOT_FOUND",
        format!("no vector {id:?} in the default namespace"),
    )
}

/// One vector by id (`zerodb:read`).
#[utoipa::path(get, path = "/api/v1/public/vectors/{id}", tag = "vectors", params(("id" = String, Path),
    ("X-Project-ID" = Option<String>, Header, description = "The project; default: the account's first")),
    responses((status = 200, body = PublicVector)))]
pub async fn get(
    State(projects): State<Projects>,
    State(v): State<ProjectVectors>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<PublicVector>> {
    zerodb_projects::vectors::check_id(&id, &At::path("id"))?;
    let p = default_project(&projects, &caller, &headers, Access::Read).await?;
    let found = v
        .get(&p, DEFAULT_NAMESPACE, std::slice::from_ref(&id), true)
        .await?
        .0
        .pop()
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(PublicVector {
        id: found.id,
        values: found.values.unwrap_or_default(),
        metadata: found.metadata,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicDeleted {
    pub id: String,
    pub deleted: bool,
}

/// Deletes one vector by id (`zerodb:write`); 404 when there is none.
#[utoipa::path(delete, path = "/api/v1/public/vectors/{id}", tag = "vectors", params(("id" = String, Path),
    ("X-Project-ID" = Option<String>, Header, description = "The project; default: the account's first")),
    responses((status = 200, body = PublicDeleted)))]
pub async fn delete(
    State(projects): State<Projects>,
    State(v): State<ProjectVectors>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<PublicDeleted>)> {
    zerodb_projects::vectors::check_id(&id, &At::path("id"))?;
    // Resolved as a read (a delete never makes the default project), then gated for
    // the write.
    zerodb_projects::tables::require(&caller, Access::Write)?;
    let found = default_project(&projects, &caller, &headers, Access::Read)
        .await
        .map_err(|e| match e {
            DomainError::Coded {
                code: "PROJECT_NOT_FOUND",
                ..
            } if !headers.contains_key("x-project-id") => not_found(&id),
            e => e,
        })?;
    let p = projects.gate(&caller, &found.id, Access::Write).await?;
    if v.delete_ids(&p, DEFAULT_NAMESPACE, std::slice::from_ref(&id))
        .await?
        == 0
    {
        return Err(not_found(&id).into());
    }
    Ok((StatusCode::OK, Json(PublicDeleted { id, deleted: true })))
}
