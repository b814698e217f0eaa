//! ainative-python's vectors, `/api/v1/projects/{project_id}/database/vectors`: upsert
//! (`PUT {namespace, items: [{vector, id, metadata}]}`), search, get by ids, delete by
//! ids / filter / all (a body on the DELETE), metadata update and stats; and seed 003's
//! `POST …/upsert-batch {vectors: [{id, vector_embedding, namespace, metadata}]}`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use zerodb_domain::{At, DomainError};
use zerodb_http::{ApiJson, ApiQuery, ApiResult, Auth};
use zerodb_projects::vectors::{
    Hit, MAX_BATCH_NAMESPACES, NamespaceStats, NewVector, Search, StoredVector, check_filter,
    check_metadata, check_vector,
};
use zerodb_projects::{Access, ProjectVectors, Projects};

use crate::{namespace, project};

/// One vector of an upsert.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VectorIn {
    /// 1–4,096 numbers; every vector of a namespace has the size of its first.
    pub vector: Vec<f64>,
    /// Made when absent; at most 1,024 characters.
    #[serde(default)]
    pub id: Option<String>,
    /// Strings, numbers, booleans and lists of them; 2 KB as JSON at most.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// Text kept with the vector and returned as `document`.
    #[serde(default)]
    pub document: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Upsert {
    #[serde(default)]
    pub namespace: Option<String>,
    /// 1–1,000 vectors.
    #[schema(min_items = 1, max_items = 1000)]
    pub items: Vec<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UpsertView {
    pub upserted_count: usize,
    pub inserted: usize,
    pub updated: usize,
    pub ids: Vec<String>,
    pub vector_ids: Vec<String>,
    pub namespace: String,
    pub dimension: usize,
}

/// A checked vector from its JSON, at `at`.
pub fn new_vector(
    vector: &[f64],
    id: Option<String>,
    metadata: Option<Map<String, Value>>,
    document: Option<String>,
    at: At,
    vector_field: &str,
) -> Result<NewVector, DomainError> {
    let vector_at = at.clone().field(vector_field);
    let vector = check_vector(vector, &vector_at)?;
    let metadata = metadata.unwrap_or_default();
    check_metadata(&metadata, &at.clone().field("metadata"))?;
    Ok(NewVector {
        id,
        vector,
        metadata,
        document,
        at,
        vector_at,
    })
}

/// The items of a request (`field`), each read as a `T` and checked where it stands.
pub fn items<T: serde::de::DeserializeOwned>(
    values: Vec<Value>,
    field: &str,
    kind: &str,
    mut check: impl FnMut(T, At) -> Result<NewVector, DomainError>,
) -> Result<Vec<NewVector>, DomainError> {
    use zerodb_projects::vectors::MAX_UPSERT;
    if values.is_empty() || values.len() > MAX_UPSERT {
        return Err(At::body(field).invalid(format!(
            "{} {field} sent; one call stores 1–{MAX_UPSERT}",
            values.len()
        )));
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let at = At::body(field).index(i);
            let one: T = serde_json::from_value(v)
                .map_err(|e| at.clone().invalid(format!("not {kind}: {e}")))?;
            check(one, at)
        })
        .collect()
}

pub fn upserted(u: zerodb_projects::vectors::Upserted) -> UpsertView {
    UpsertView {
        upserted_count: u.ids.len(),
        inserted: u.inserted,
        updated: u.updated,
        vector_ids: u.ids.clone(),
        ids: u.ids,
        namespace: u.namespace,
        dimension: u.dimension,
    }
}

/// Stores vectors in a namespace (`zerodb:write`), replacing those with the same id;
/// emits `zerodb.vector.stored` (one) or `zerodb.vector.batch_stored` (more).
#[utoipa::path(put, path = "/api/v1/projects/{project_id}/database/vectors", tag = "vectors",
    params(("project_id" = String, Path)), request_body = Upsert,
    responses((status = 200, body = UpsertView)))]
pub async fn upsert(
    State(projects): State<Projects>,
    State(v): State<ProjectVectors>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiJson(req): ApiJson<Upsert>,
) -> ApiResult<Json<UpsertView>> {
    let ns = namespace(req.namespace, At::body("namespace"))?;
    let items = items(req.items, "items", "a vector", |it: VectorIn, at| {
        new_vector(&it.vector, it.id, it.metadata, it.document, at, "vector")
    })?;
    let p = project(&projects, &caller, &pid, Access::Write).await?;
    Ok(Json(upserted(v.upsert(&p, &ns, items, "api").await?)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct VectorSearch {
    /// The query vector, of the namespace's dimension.
    pub vector: Vec<f64>,
    /// 1–100, default 10.
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub top_k: Option<i64>,
    #[serde(default)]
    pub namespace: Option<String>,
    /// Mongo-style filter over metadata (`$eq $ne $gt $gte $lt $lte $in $nin $exists
    /// $and $or`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    #[serde(default = "yes")]
    pub include_metadata: bool,
    #[serde(default)]
    pub include_values: bool,
    /// Leave out results below this similarity (−1 to 1).
    #[serde(default)]
    pub threshold: Option<f32>,
}

fn yes() -> bool {
    true
}

/// One search result.
#[derive(Debug, Serialize, ToSchema)]
pub struct HitView {
    pub id: String,
    pub vector_id: String,
    /// Cosine similarity (1 is the same direction).
    pub score: f32,
    pub similarity: f32,
    pub distance: f32,
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    pub document: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<f32>>,
}

pub fn hit(h: Hit, include_metadata: bool) -> HitView {
    HitView {
        vector_id: h.id.clone(),
        id: h.id,
        score: h.similarity,
        similarity: h.similarity,
        distance: h.distance,
        namespace: h.namespace,
        metadata: include_metadata.then_some(h.metadata),
        document: h.document.unwrap_or_default(),
        values: h.values,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchView {
    pub results: Vec<HitView>,
    pub matches: usize,
    pub namespace: String,
    /// True when results were left out to keep the answer under 5 MiB (ask for fewer,
    /// or without values).
    pub truncated: bool,
}

/// A `top_k`/`limit` as sent (default `default`), checked to 1–100.
pub fn top_k(n: Option<i64>, default: usize, at: At) -> Result<usize, DomainError> {
    let n = n.unwrap_or(default as i64);
    if !(1..=zerodb_domain::vectors::MAX_TOP_K as i64).contains(&n) {
        return Err(at.invalid(format!(
            "{n} results asked for; a search returns 1–{}",
            zerodb_domain::vectors::MAX_TOP_K
        )));
    }
    Ok(n as usize)
}

/// A threshold in −1 ..= 1.
pub fn threshold(t: Option<f32>, at: At) -> Result<Option<f32>, DomainError> {
    match t {
        Some(t) if !(-1.0..=1.0).contains(&t) => {
            Err(at.invalid("threshold is a similarity from -1 to 1"))
        }
        t => Ok(t),
    }
}

/// The nearest vectors of a namespace (`zerodb:read`).
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/database/vectors/search", tag = "vectors",
    params(("project_id" = String, Path)), request_body = VectorSearch,
    responses((status = 200, body = SearchView)))]
pub async fn search(
    State(projects): State<Projects>,
    State(v): State<ProjectVectors>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiJson(req): ApiJson<VectorSearch>,
) -> ApiResult<Json<SearchView>> {
    let ns = namespace(req.namespace, At::body("namespace"))?;
    let vector = check_vector(&req.vector, &At::body("vector"))?;
    let top_k = top_k(req.top_k, 10, At::body("top_k"))?;
    if let Some(f) = &req.filter {
        check_filter(f, &At::body("filter"))?;
    }
    let threshold = threshold(req.threshold, At::body("threshold"))?;
    let p = project(&projects, &caller, &pid, Access::Read).await?;
    let (hits, truncated) = v
        .search(
            &p,
            &ns,
            Search {
                vector,
                top_k,
                filter: req.filter,
                include_values: req.include_values,
                threshold,
            },
        )
        .await?;
    let results: Vec<HitView> = hits
        .into_iter()
        .map(|h| hit(h, req.include_metadata))
        .collect();
    Ok(Json(SearchView {
        matches: results.len(),
        results,
        namespace: ns,
        truncated,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetParams {
    /// Comma-separated ids (≤ 100). Without ids, one page of the namespace is listed.
    #[serde(default)]
    pub ids: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub include_metadata: Option<bool>,
    #[serde(default)]
    pub include_values: Option<bool>,
    /// Page size of a listing: 1–1000, default 100.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000, value_type = Option<i64>)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Sent by ainative-python; the path names the project.
    #[serde(default)]
    pub project_id: Option<String>,
}

/// A vector as read back.
#[derive(Debug, Serialize, ToSchema)]
pub struct VectorView {
    pub id: String,
    pub vector_id: String,
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    pub document: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<f32>>,
}

pub fn vector_view(s: StoredVector, include_metadata: bool) -> VectorView {
    VectorView {
        vector_id: s.id.clone(),
        id: s.id,
        namespace: s.namespace,
        metadata: include_metadata.then_some(s.metadata),
        document: s.document.unwrap_or_default(),
        values: s.values,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VectorList {
    pub vectors: Vec<VectorView>,
    pub count: usize,
    pub namespace: String,
    pub next_cursor: Option<String>,
}

/// Vectors by id, or one page of the namespace (`zerodb:read`).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/database/vectors", tag = "vectors",
    params(("project_id" = String, Path), GetParams),
    responses((status = 200, body = VectorList)))]
pub async fn get(
    State(projects): State<Projects>,
    State(v): State<ProjectVectors>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiQuery(q): ApiQuery<GetParams>,
) -> ApiResult<Json<VectorList>> {
    let ns = namespace(q.namespace, At::query("namespace"))?;
    let include_metadata = q.include_metadata.unwrap_or(true);
    // By ids (ainative-python's `get`), values come back unless refused; a listing
    // leaves them out unless asked for.
    let include_values = q.include_values.unwrap_or(q.ids.is_some());
    let ids: Option<Vec<String>> = q.ids.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    });
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(At::query("limit").invalid("limit is 1–1000").into());
    }
    let p = project(&projects, &caller, &pid, Access::Read).await?;
    let (found, next) = match ids {
        Some(ids) => {
            let (found, truncated) = v.get(&p, &ns, &ids, include_values).await?;
            if truncated {
                return Err(At::query("ids")
                    .invalid(format!(
                        "these {} vectors make an answer over 5 MiB; ask for fewer ids, or include_values=false",
                        ids.len()
                    ))
                    .into());
            }
            (found, None)
        }
        None => {
            v.list(&p, &ns, limit, q.cursor.as_deref(), include_values)
                .await?
        }
    };
    let vectors: Vec<VectorView> = found
        .into_iter()
        .map(|s| vector_view(s, include_metadata))
        .collect();
    Ok(Json(VectorList {
        count: vectors.len(),
        vectors,
        namespace: ns,
        next_cursor: next,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteVectors {
    #[serde(default)]
    pub namespace: Option<String>,
    /// 1–500 ids.
    #[serde(default)]
    pub ids: Option<Vec<String>>,
    /// Deletes the vectors whose metadata match.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    /// Deletes the whole namespace.
    #[serde(default)]
    pub delete_all: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedView {
    pub deleted: bool,
    pub deleted_count: i64,
    pub namespace: String,
    /// False when a delete by filter stopped after reading 100,000 vectors: call again.
    pub complete: bool,
}

/// Deletes vectors by ids, by filter, or all of a namespace (`zerodb:write`); exactly
/// one of `ids`, `filter`, `delete_all: true`.
#[utoipa::path(delete, path = "/api/v1/projects/{project_id}/database/vectors", tag = "vectors",
    params(("project_id" = String, Path)), request_body = DeleteVectors,
    responses((status = 200, body = DeletedView)))]
pub async fn delete(
    State(projects): State<Projects>,
    State(v): State<ProjectVectors>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiJson(req): ApiJson<DeleteVectors>,
) -> ApiResult<Json<DeletedView>> {
    let ns = namespace(req.namespace, At::body("namespace"))?;
    let all = req.delete_all == Some(true);
    let given = [req.ids.is_some(), req.filter.is_some(), all]
        .iter()
        .filter(|x| **x)
        .count();
    if given != 1 {
        return Err(At::body_root()
            .invalid("send exactly one of ids (a list), filter (an object) or delete_all: true")
            .into());
    }
    if let Some(f) = &req.filter {
        check_filter(f, &At::body("filter"))?;
    }
    let p = project(&projects, &caller, &pid, Access::Write).await?;
    let (n, complete) = if all {
        (v.delete_all(&p, &ns).await?, true)
    } else if let Some(ids) = &req.ids {
        (v.delete_ids(&p, &ns, ids).await? as i64, true)
    } else {
        let (n, complete) = v
            .delete_filter(&p, &ns, req.filter.as_ref().unwrap_or(&Value::Null))
            .await?;
        (n as i64, complete)
    };
    Ok(Json(DeletedView {
        deleted: true,
        deleted_count: n,
        namespace: ns,
        complete,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MetadataPatch {
    /// Merged into the vector's metadata; a key set to null is removed.
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// Merges metadata into one vector's (`zerodb:write`).
#[utoipa::path(patch, path = "/api/v1/projects/{project_id}/database/vectors/{vector_id}/metadata", tag = "vectors",
    params(("project_id" = String, Path), ("vector_id" = String, Path)), request_body = MetadataPatch,
    responses((status = 200, body = VectorView)))]
pub async fn update_metadata(
    State(projects): State<Projects>,
    State(v): State<ProjectVectors>,
    Auth(caller): Auth,
    Path((pid, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<MetadataPatch>,
) -> ApiResult<Json<VectorView>> {
    let ns = namespace(req.namespace, At::body("namespace"))?;
    zerodb_projects::vectors::check_id(&id, &At::path("vector_id"))?;
    // The answer is the vector: a key that may write must also be able to read it.
    zerodb_projects::tables::require(&caller, Access::Read)?;
    let p = project(&projects, &caller, &pid, Access::Write).await?;
    let s = v.update_metadata(&p, &ns, &id, req.metadata).await?;
    Ok(Json(vector_view(s, true)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// One namespace; all when absent.
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NamespaceView {
    pub namespace: String,
    pub vector_count: i64,
    pub dimension: usize,
    pub metric: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VectorStats {
    pub project_id: String,
    pub total_vectors: i64,
    pub total_vector_count: i64,
    /// The dimension of the namespace asked for, or of the first namespace (0: none).
    pub dimensions: usize,
    pub dimension: usize,
    pub namespace_count: usize,
    pub namespaces: Vec<NamespaceView>,
}

pub fn stats_view(project_id: &str, list: Vec<NamespaceStats>) -> VectorStats {
    let total: i64 = list.iter().map(|n| n.vector_count).sum();
    let dims = list.first().map(|n| n.dimension).unwrap_or(0);
    VectorStats {
        project_id: project_id.to_owned(),
        total_vectors: total,
        total_vector_count: total,
        dimensions: dims,
        dimension: dims,
        namespace_count: list.len(),
        namespaces: list
            .into_iter()
            .map(|n| NamespaceView {
                namespace: n.namespace,
                vector_count: n.vector_count,
                dimension: n.dimension,
                metric: n.metric.as_str().to_owned(),
            })
            .collect(),
    }
}

/// Counts and dimensions, per namespace (`zerodb:read`).
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/database/vectors/stats", tag = "vectors",
    params(("project_id" = String, Path), StatsParams),
    responses((status = 200, body = VectorStats)))]
pub async fn stats(
    State(projects): State<Projects>,
    State(v): State<ProjectVectors>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiQuery(q): ApiQuery<StatsParams>,
) -> ApiResult<Json<VectorStats>> {
    let ns = q
        .namespace
        .map(|n| namespace(Some(n), At::query("namespace")))
        .transpose()?;
    let p = project(&projects, &caller, &pid, Access::Read).await?;
    let list = match ns {
        Some(ns) => v.namespace(&p, &ns).await?.into_iter().collect(),
        None => v.namespaces(&p).await?,
    };
    Ok(Json(stats_view(&p.id, list)))
}

/// One vector of seed 003's batch.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BatchVector {
    #[serde(default)]
    pub id: Option<String>,
    pub vector_embedding: Vec<f64>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub document: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpsertBatch {
    /// 1–1,000 `{id, vector_embedding, namespace, metadata}`.
    #[schema(min_items = 1, max_items = 1000)]
    pub vectors: Vec<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchView {
    pub success: bool,
    pub upserted_count: usize,
    pub inserted: usize,
    pub updated: usize,
    pub vector_ids: Vec<String>,
    pub namespaces: Vec<String>,
}

/// Seed 003's batch upsert (`zerodb:write`): each vector names its namespace; all are
/// checked before any is written.
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/database/vectors/upsert-batch", tag = "vectors",
    params(("project_id" = String, Path)), request_body = UpsertBatch,
    responses((status = 200, body = BatchView)))]
pub async fn upsert_batch(
    State(projects): State<Projects>,
    State(v): State<ProjectVectors>,
    Auth(caller): Auth,
    Path(pid): Path<String>,
    ApiJson(req): ApiJson<UpsertBatch>,
) -> ApiResult<Json<BatchView>> {
    let mut groups: BTreeMap<String, Vec<NewVector>> = BTreeMap::new();
    let mut order = Vec::new();
    let checked = items(req.vectors, "vectors", "a vector", |it: BatchVector, at| {
        let ns = namespace(it.namespace, at.clone().field("namespace"))?;
        order.push(ns);
        new_vector(
            &it.vector_embedding,
            it.id,
            it.metadata,
            it.document,
            at,
            "vector_embedding",
        )
    })?;
    for (ns, item) in order.into_iter().zip(checked) {
        groups.entry(ns).or_default().push(item);
    }
    if groups.len() > MAX_BATCH_NAMESPACES {
        return Err(At::body("vectors")
            .invalid(format!(
                "these vectors name {} namespaces; one batch writes to at most {MAX_BATCH_NAMESPACES}",
                groups.len()
            ))
            .into());
    }
    // Each namespace's vectors must agree with each other before anything is written.
    for group in groups.values() {
        let d = group[0].vector.len();
        if let Some(bad) = group.iter().find(|n| n.vector.len() != d) {
            return Err(bad
                .at
                .clone()
                .field("vector_embedding")
                .invalid(format!(
                    "{} dimensions, where this namespace's other vectors have {d}",
                    bad.vector.len()
                ))
                .into());
        }
    }
    let p = project(&projects, &caller, &pid, Access::Write).await?;
    // …and with the namespaces they go to, and the account must have room for the
    // new ones, so a batch is refused whole.
    let mut new = 0;
    for (ns, group) in &groups {
        let known = v.namespace(&p, ns).await?;
        new += usize::from(known.is_none());
        if let Some(known) = known
            && known.dimension != group[0].vector.len()
        {
            return Err(group[0]
                .at
                .clone()
                .field("vector_embedding")
                .invalid(format!(
                    "{} dimensions, but namespace \"{ns}\" holds vectors of {}",
                    group[0].vector.len(),
                    known.dimension
                ))
                .into());
        }
    }
    v.check_room(&p, new).await?;
    let mut view = BatchView {
        success: true,
        upserted_count: 0,
        inserted: 0,
        updated: 0,
        vector_ids: Vec::new(),
        namespaces: groups.keys().cloned().collect(),
    };
    for (ns, group) in groups {
        let u = v.upsert(&p, &ns, group, "api").await?;
        view.upserted_count += u.ids.len();
        view.inserted += u.inserted;
        view.updated += u.updated;
        view.vector_ids.extend(u.ids);
    }
    Ok(Json(view))
}
