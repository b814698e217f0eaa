//! Vector and semantic-search operations on the vectors service (the one
//! `/database/vectors` and `/embeddings` use): `upsert_vector`, `batch_upsert_vectors`,
//! `search_vectors`, `get_vector`, `list_vectors`, `delete_vector`, `vector_stats`,
//! `embed_and_store`, `semantic_search`. `get_vector` and `delete_vector` name no
//! namespace: the vector is looked for in `default` first, then in the project's other
//! namespaces.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use zerodb_domain::{At, DomainError};
use zerodb_projects::vectors::{
    DEFAULT_NAMESPACE, NewVector, Search, StoredVector, check_document, check_filter, check_id,
    check_metadata, check_namespace, check_vector,
};
use zerodb_projects::{Access, Project, ProjectVectors};

use crate::McpApi;
use crate::rpc::{Call, bounded, in_params, param};

/// The vectors service (built with the memory embedder on first use).
async fn service(s: &McpApi) -> Result<ProjectVectors, DomainError> {
    let e = crate::embeddings::embedder(s).await?;
    Ok(zerodb_projects::vectors(&s.ctx, e).await?)
}

async fn project(
    s: &McpApi,
    c: &Call<'_>,
    id: &str,
    access: Access,
) -> Result<Project, DomainError> {
    s.tables.project(c.caller, id, access).await
}

fn namespace(ns: Option<String>) -> Result<String, DomainError> {
    let ns = ns.unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
    check_namespace(&ns).map_err(|m| param("namespace").invalid(m))?;
    Ok(ns)
}

fn view(v: StoredVector) -> Value {
    json!({
        "vector_id": v.id,
        "id": v.id,
        "embedding": v.values,
        "document": v.document.unwrap_or_default(),
        "metadata": v.metadata,
        "namespace": v.namespace,
    })
}

fn one(
    embedding: &[f64],
    document: Option<String>,
    metadata: Option<Map<String, Value>>,
    id: Option<String>,
    at: At,
) -> Result<NewVector, DomainError> {
    let vector_at = at.clone().field("embedding");
    let vector = check_vector(embedding, &vector_at)?;
    let metadata = metadata.unwrap_or_default();
    check_metadata(&metadata, &at.clone().field("metadata"))?;
    if let Some(d) = &document {
        check_document(d, &at.clone().field("document"))?;
    }
    if let Some(id) = &id {
        check_id(id, &at.clone().field("vector_id"))?;
    }
    Ok(NewVector {
        id,
        vector,
        metadata,
        document,
        at,
        vector_at,
    })
}

#[derive(Deserialize)]
struct Upsert {
    project_id: String,
    embedding: Vec<f64>,
    #[serde(default)]
    document: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    vector_id: Option<String>,
}

/// `upsert_vector` (`zerodb:write`).
pub async fn upsert(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: Upsert = c.params()?;
    let ns = namespace(req.namespace)?;
    let item = one(
        &req.embedding,
        req.document,
        req.metadata,
        req.vector_id,
        At::body("params"),
    )?;
    let p = project(s, c, &req.project_id, Access::Write).await?;
    let u = service(s)
        .await?
        .upsert(&p, &ns, vec![item], "mcp")
        .await
        .map_err(|e| in_params(e, &[]))?;
    Ok(
        json!({"vector_id": u.ids[0], "status": "success", "namespace": ns, "dimension": u.dimension}),
    )
}

#[derive(Deserialize)]
struct BatchItem {
    embedding: Vec<f64>,
    #[serde(default)]
    document: Option<String>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    vector_id: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct Batch {
    project_id: String,
    vectors: Vec<Value>,
    #[serde(default)]
    namespace: Option<String>,
}

/// `batch_upsert_vectors` (`zerodb:write`): up to 1,000, all checked before any is
/// written (so `failed` is always 0: a bad vector is a 422 naming it).
pub async fn batch_upsert(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: Batch = c.params()?;
    let ns = namespace(req.namespace)?;
    let max = zerodb_projects::vectors::MAX_UPSERT;
    if req.vectors.is_empty() || req.vectors.len() > max {
        return Err(param("vectors").invalid(format!(
            "{} vectors sent; one call stores 1–{max}",
            req.vectors.len()
        )));
    }
    let mut items = Vec::with_capacity(req.vectors.len());
    for (i, v) in req.vectors.into_iter().enumerate() {
        let at = param("vectors").index(i);
        let it: BatchItem = serde_json::from_value(v)
            .map_err(|e| at.clone().invalid(format!("not a vector: {e}")))?;
        items.push(one(
            &it.embedding,
            it.document,
            it.metadata,
            it.vector_id.or(it.id),
            at,
        )?);
    }
    let p = project(s, c, &req.project_id, Access::Write).await?;
    let u = service(s)
        .await?
        .upsert(&p, &ns, items, "mcp")
        .await
        .map_err(|e| in_params(e, &[]))?;
    Ok(json!({
        "total": u.ids.len(), "successful": u.ids.len(), "failed": 0, "errors": [],
        "vector_ids": u.ids, "inserted": u.inserted, "updated": u.updated, "namespace": ns,
    }))
}

#[derive(Deserialize)]
struct SearchParams {
    project_id: String,
    query_vector: Vec<f64>,
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    limit: Option<i64>,
    #[serde(default)]
    threshold: Option<f32>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    filter: Option<Value>,
    #[serde(default)]
    filter_metadata: Option<Value>,
}

fn threshold(t: Option<f32>, default: f32) -> Result<f32, DomainError> {
    let t = t.unwrap_or(default);
    if !(-1.0..=1.0).contains(&t) {
        return Err(param("threshold").invalid("threshold is a similarity from -1 to 1"));
    }
    Ok(t)
}

fn hits(hits: Vec<zerodb_projects::vectors::Hit>) -> Vec<Value> {
    hits.into_iter()
        .map(|h| {
            json!({
                "vector_id": h.id, "id": h.id, "similarity": h.similarity, "score": h.similarity,
                "document": h.document.unwrap_or_default(), "metadata": h.metadata, "namespace": h.namespace,
            })
        })
        .collect()
}

/// `search_vectors` (`zerodb:read`): the nearest vectors at or above `threshold`
/// (default 0.7, the client's).
pub async fn search(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: SearchParams = c.params()?;
    let ns = namespace(req.namespace)?;
    let vector = check_vector(&req.query_vector, &param("query_vector"))?;
    let limit = bounded(
        req.limit,
        "limit",
        10,
        1,
        100,
        "limit is 1–100 (S3 Vectors' top-k)",
    )?;
    let threshold = threshold(req.threshold, 0.7)?;
    let filter = req.filter.or(req.filter_metadata);
    if let Some(f) = &filter {
        check_filter(f, &param("filter"))?;
    }
    let p = project(s, c, &req.project_id, Access::Read).await?;
    let found = service(s)
        .await?
        .search(
            &p,
            &ns,
            Search {
                vector,
                top_k: limit,
                filter,
                include_values: false,
                threshold: Some(threshold),
            },
        )
        .await
        .map_err(|e| in_params(e, &[("vector", "query_vector")]))?
        .0;
    let results = hits(found);
    Ok(json!({"total": results.len(), "results": results, "namespace": ns}))
}

#[derive(Deserialize)]
struct ById {
    project_id: String,
    vector_id: String,
    #[serde(default)]
    namespace: Option<String>,
}

/// The namespaces to look for a vector in: the one named, else `default` then the rest.
async fn where_to_look(
    v: &ProjectVectors,
    p: &Project,
    named: Option<String>,
) -> Result<Vec<String>, DomainError> {
    if let Some(ns) = named {
        return Ok(vec![namespace(Some(ns))?]);
    }
    let mut all: Vec<String> = v
        .namespaces(p)
        .await?
        .into_iter()
        .map(|n| n.namespace)
        .collect();
    all.sort_by_key(|n| n != DEFAULT_NAMESPACE);
    Ok(all)
}

fn not_found(id: &str) -> DomainError {
    DomainError::coded(
        zerodb_domain::Refusal::NotFound,
        "VECTOR_NOT_FOUND",
        format!("no vector {id:?} in this project"),
    )
}

/// `get_vector` (`zerodb:read`).
pub async fn get(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: ById = c.params()?;
    check_id(&req.vector_id, &param("vector_id"))?;
    let p = project(s, c, &req.project_id, Access::Read).await?;
    let v = service(s).await?;
    for ns in where_to_look(&v, &p, req.namespace).await? {
        if let Some(found) = v
            .get(&p, &ns, std::slice::from_ref(&req.vector_id), true)
            .await?
            .0
            .pop()
        {
            return Ok(view(found));
        }
    }
    Err(not_found(&req.vector_id))
}

/// `delete_vector` (`zerodb:write`).
pub async fn delete(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: ById = c.params()?;
    check_id(&req.vector_id, &param("vector_id"))?;
    let p = project(s, c, &req.project_id, Access::Write).await?;
    let v = service(s).await?;
    for ns in where_to_look(&v, &p, req.namespace).await? {
        if v.delete_ids(&p, &ns, std::slice::from_ref(&req.vector_id))
            .await?
            > 0
        {
            return Ok(json!({"status": "success", "vector_id": req.vector_id, "namespace": ns}));
        }
    }
    Err(not_found(&req.vector_id))
}

#[derive(Deserialize)]
struct ListParams {
    project_id: String,
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    limit: Option<i64>,
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    offset: Option<i64>,
    #[serde(default)]
    namespace: Option<String>,
}

/// `list_vectors` (`zerodb:read`): one namespace's vectors by offset (≤ 10,000).
pub async fn list(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: ListParams = c.params()?;
    let ns = namespace(req.namespace)?;
    let limit = bounded(req.limit, "limit", 100, 1, 1000, "limit is 1–1000")?;
    let offset = bounded(req.offset, "offset", 0, 0, 10_000, "offset is 0–10000")?;
    let p = project(s, c, &req.project_id, Access::Read).await?;
    let v = service(s).await?;
    let page = v
        .list_offset(&p, &ns, limit, offset)
        .await
        .map_err(|e| in_params(e, &[]))?;
    let total = v
        .namespace(&p, &ns)
        .await?
        .map(|n| n.vector_count)
        .unwrap_or(0);
    let vectors: Vec<Value> = page.into_iter().map(view).collect();
    Ok(
        json!({"vectors": vectors, "total": total, "limit": limit, "offset": offset, "namespace": ns}),
    )
}

#[derive(Deserialize)]
struct StatsParams {
    project_id: String,
    #[serde(default)]
    namespace: Option<String>,
}

/// `vector_stats` (`zerodb:read`).
pub async fn stats(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: StatsParams = c.params()?;
    let ns = req.namespace.map(|n| namespace(Some(n))).transpose()?;
    let p = project(s, c, &req.project_id, Access::Read).await?;
    let v = service(s).await?;
    let list = match ns {
        Some(ns) => v.namespace(&p, &ns).await?.into_iter().collect(),
        None => v.namespaces(&p).await?,
    };
    let total: i64 = list.iter().map(|n| n.vector_count).sum();
    // f32 values: 4 bytes a dimension.
    let bytes: i64 = list
        .iter()
        .map(|n| n.vector_count * n.dimension as i64 * 4)
        .sum();
    Ok(json!({
        "total_vectors": total,
        "dimensions": list.first().map(|n| n.dimension).unwrap_or(0),
        "namespaces": list.iter().map(|n| n.namespace.clone()).collect::<Vec<_>>(),
        "by_namespace": list.iter().map(|n| json!({"namespace": n.namespace, "vector_count": n.vector_count, "dimension": n.dimension})).collect::<Vec<_>>(),
        "storage_size_mb": bytes as f64 / (1024.0 * 1024.0),
    }))
}

#[derive(Deserialize)]
struct EmbedAndStore {
    project_id: String,
    texts: Vec<String>,
    #[serde(default)]
    metadata_list: Option<Vec<Value>>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

/// `embed_and_store` (`zerodb:write`): each text embedded and stored as its vector's
/// document.
pub async fn embed_and_store(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: EmbedAndStore = c.params()?;
    let ns = namespace(req.namespace)?;
    let p = project(s, c, &req.project_id, Access::Write).await?;
    let v = service(s).await?;
    crate::embeddings::check_model(v.embedder().as_ref(), req.model.as_deref())?;
    let started = std::time::Instant::now();
    let n = req.texts.len();
    let u = v
        .store_texts(&p, &ns, req.texts, req.metadata_list, None, "mcp")
        .await
        .map_err(|e| in_params(e, &[]))?;
    Ok(json!({
        "success": true, "vectors_stored": u.ids.len(), "vector_ids": u.ids, "embeddings_generated": n,
        "model": v.embedder().name(), "dimensions": u.dimension, "namespace": ns,
        "processing_time_ms": started.elapsed().as_secs_f64() * 1000.0,
    }))
}

#[derive(Deserialize)]
struct Semantic {
    project_id: String,
    query: String,
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    limit: Option<i64>,
    #[serde(default)]
    threshold: Option<f32>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    filter_metadata: Option<Value>,
}

/// `semantic_search` (`zerodb:read`): a text's nearest stored texts, at or above
/// `threshold` (default 0.7).
pub async fn semantic_search(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: Semantic = c.params()?;
    let ns = namespace(req.namespace)?;
    let limit = bounded(
        req.limit,
        "limit",
        10,
        1,
        100,
        "limit is 1–100 (S3 Vectors' top-k)",
    )?;
    let threshold = threshold(req.threshold, 0.7)?;
    if req.query.trim().is_empty() {
        return Err(param("query").invalid("query is a text to search for; it is empty"));
    }
    if let Some(f) = &req.filter_metadata {
        check_filter(f, &param("filter_metadata"))?;
    }
    let p = project(s, c, &req.project_id, Access::Read).await?;
    let v = service(s).await?;
    crate::embeddings::check_model(v.embedder().as_ref(), req.model.as_deref())?;
    let started = std::time::Instant::now();
    let vector = v.embed_one(&req.query, &param("query")).await?;
    let found = v
        .search(
            &p,
            &ns,
            Search {
                vector,
                top_k: limit,
                filter: req.filter_metadata,
                include_values: false,
                threshold: Some(threshold),
            },
        )
        .await
        .map_err(|e| in_params(e, &[("vector", "query")]))?
        .0;
    let results = hits(found);
    Ok(json!({
        "total_results": results.len(), "results": results, "query": req.query,
        "model": v.embedder().name(), "namespace": ns,
        "processing_time_ms": started.elapsed().as_secs_f64() * 1000.0,
    }))
}
