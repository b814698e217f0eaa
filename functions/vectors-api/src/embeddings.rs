//! Text in, vectors stored and searched: langchain-zerodb's `…/embeddings/embed-and-store`
//! (each text embedded with the server's embedder and kept as the vector's `document`)
//! and `…/embeddings/search` (results with `document`, `metadata`, `similarity`), and
//! seed 004's `POST /v1/public/embeddings/search` on the default project.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use zerodb_domain::{At, DomainError};
use zerodb_http::{ApiJson, ApiResult, Auth};
use zerodb_projects::vectors::{Search, check_filter};
use zerodb_projects::{Access, Project, ProjectVectors, Projects};

use crate::project::{HitView, hit, threshold, top_k};
use crate::{default_project, namespace, project};

#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbedAndStore {
    /// 1–100 texts of at most 16 Ki characters.
    pub texts: Vec<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    /// One metadata object per text (or none).
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub metadata_list: Option<Vec<Value>>,
    /// Ids for the vectors; made when absent.
    #[serde(default)]
    pub ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stored {
    pub success: bool,
    pub vector_ids: Vec<String>,
    pub vectors_stored: usize,
    pub embeddings_generated: usize,
    pub model: String,
    pub dimensions: usize,
    pub namespace: String,
}

/// Embeds texts and stores them with their vectors, in a project (`zerodb:write`).
pub async fn store_texts(
    v: &ProjectVectors,
    p: &Project,
    ns: &str,
    texts: Vec<String>,
    metadata: Option<Vec<Value>>,
    ids: Option<Vec<String>>,
) -> Result<Stored, DomainError> {
    let n = texts.len();
    let u = v.store_texts(p, ns, texts, metadata, ids, "embed").await?;
    Ok(Stored {
        success: true,
        vectors_stored: u.ids.len(),
        vector_ids: u.ids,
        embeddings_generated: n,
        model: v.embedder().name().to_owned(),
        dimensions: u.dimension,
        namespace: u.namespace,
    })
}

/// Embeds texts with the server's embedder and stores each with its vector
/// (`zerodb:write`); the text comes back as a result's `document`.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/embeddings/embed-and-store", tag = "vectors",
    params(("project_id" = String, Path)), request_body = EmbedAndStore,
    responses((status = 200, body = Stored)))]
pub async fn embed_and_store(
    State(projects): State<Projects>,
    State(v): State<ProjectVectors>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiJson(req): ApiJson<EmbedAndStore>,
) -> ApiResult<Json<Stored>> {
    let ns = namespace(req.namespace, At::body("namespace"))?;
    let p = project(&projects, &caller, &pid, Access::Write).await?;
    Ok(Json(
        store_texts(&v, &p, &ns, req.texts, req.metadata_list, req.ids).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TextSearch {
    /// The text to search for by meaning.
    pub query: String,
    /// 1–100, default 10.
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Also `limit`, as some clients name it.
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub top_k: Option<i64>,
    /// Leave out results below this similarity (−1 to 1).
    #[serde(default)]
    pub threshold: Option<f32>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TextResults {
    pub results: Vec<HitView>,
    pub total: usize,
    pub total_results: usize,
    pub query: String,
    pub namespace: String,
    pub model: String,
}

/// Searches a namespace by the meaning of a text.
pub async fn search_text(
    v: &ProjectVectors,
    p: &Project,
    ns: &str,
    req: TextSearch,
) -> Result<TextResults, DomainError> {
    let k = top_k(req.limit.or(req.top_k), 10, At::body("limit"))?;
    let threshold = threshold(req.threshold, At::body("threshold"))?;
    if let Some(f) = &req.filter {
        check_filter(f, &At::body("filter"))?;
    }
    if req.query.trim().is_empty() {
        return Err(At::body("query").invalid("query is a text to search for; it is empty"));
    }
    let vector = v.embed_one(&req.query, &At::body("query")).await?;
    let (hits, _) = v
        .search(
            p,
            ns,
            Search {
                vector,
                top_k: k,
                filter: req.filter,
                include_values: false,
                threshold,
            },
        )
        .await?;
    let results: Vec<HitView> = hits.into_iter().map(|h| hit(h, true)).collect();
    Ok(TextResults {
        total: results.len(),
        total_results: results.len(),
        results,
        query: req.query,
        namespace: ns.to_owned(),
        model: v.embedder().name().to_owned(),
    })
}

/// Searches a project's namespace by the meaning of a text (`zerodb:read`).
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/embeddings/search", tag = "vectors",
    params(("project_id" = String, Path)), request_body = TextSearch,
    responses((status = 200, body = TextResults)))]
pub async fn search(
    State(projects): State<Projects>,
    State(v): State<ProjectVectors>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiJson(req): ApiJson<TextSearch>,
) -> ApiResult<Json<TextResults>> {
    let ns = namespace(req.namespace.clone(), At::body("namespace"))?;
    let p = project(&projects, &caller, &pid, Access::Read).await?;
    Ok(Json(search_text(&v, &p, &ns, req).await?))
}

/// Seed 004's search by text, on the default project (or `X-Project-ID`).
#[utoipa::path(post, path = "/v1/public/embeddings/search", tag = "vectors", request_body = TextSearch,
    params(("X-Project-ID" = Option<String>, Header, description = "The project; default: the account's first")),
    responses((status = 200, body = TextResults)))]
pub async fn public_search(
    State(projects): State<Projects>,
    State(v): State<ProjectVectors>,
    Auth(caller): Auth,
    headers: HeaderMap,
    ApiJson(req): ApiJson<TextSearch>,
) -> ApiResult<Json<TextResults>> {
    let ns = namespace(req.namespace.clone(), At::body("namespace"))?;
    let p = default_project(&projects, &caller, &headers, Access::Read).await?;
    Ok(Json(search_text(&v, &p, &ns, req).await?))
}
