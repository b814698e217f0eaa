//! The knowledge graph: entities, edges, neighbours, traversal, statistics, and `relate`
//! in both of the wire forms clients send. The graph is account-wide, so reading it needs
//! `memory:read` and changing it `memory:write` without a namespace restriction. Every read
//! is bounded: entity lists are pages (the next page's cursor in `X-Next-Cursor`), a
//! traversal stops at its caps and says so, statistics read kept counts.

use axum::Json;
use axum::extract::Path;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use zerodb_domain::auth::Principal;
use zerodb_domain::scope::Permission;
use zerodb_domain::store::Cursor;
use zerodb_domain::{At, DomainError};
use zerodb_http::{ApiJson, ApiQuery, ApiResult, Auth};
use zerodb_memory::graph::{
    DEFAULT_ENTITY_TYPE, MAX_ALIASES, MAX_HOPS, check_confidence, check_name, check_predicate,
    check_properties, require_graph,
};
use zerodb_memory::{Entity, MemoryService};

use crate::wire::*;

fn can(caller: &Principal, p: Permission) -> Result<(), DomainError> {
    require_graph(caller, p)
}

/// The response header carrying the next page's cursor; absent on the last page.
pub const NEXT_CURSOR: &str = "x-next-cursor";
/// Most predicates a traversal's `predicate_filter` may list.
pub const MAX_PREDICATE_FILTER: usize = 50;

/// Set (`true`) on a neighbour list that a bound cut short.
pub const TRUNCATED: &str = "x-truncated";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntityParams {
    /// Only entities of this type.
    #[serde(rename = "type")]
    #[param(rename = "type", max_length = 64)]
    pub entity_type: Option<String>,
    /// Page size, 1–1000 (default 100). A page filtered by `type` may hold fewer, even
    /// none, while more follow: read on until `X-Next-Cursor` is absent.
    #[param(minimum = 1, maximum = 1000, value_type = Option<i64>)]
    pub limit: Option<i64>,
    /// `X-Next-Cursor` of the previous page, unchanged.
    #[param(pattern = r"^[A-Za-z0-9_-]*$", max_length = 2048)]
    pub cursor: Option<String>,
}

fn entity_views(entities: Vec<Entity>) -> Vec<EntityView> {
    entities.into_iter().map(EntityView::from).collect()
}

async fn list(
    svc: MemoryService,
    caller: Principal,
    p: EntityParams,
) -> ApiResult<(HeaderMap, Json<Vec<EntityView>>)> {
    can(&caller, Permission::Read)?;
    if p.entity_type
        .as_ref()
        .is_some_and(|t| t.chars().count() > 64)
    {
        return Err(At::query("type")
            .invalid("type must be at most 64 characters")
            .into());
    }
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(At::query("limit")
            .invalid("limit must be between 1 and 1000")
            .into());
    }
    // An empty cursor (`?cursor=`) means the first page.
    let cursor = p
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(Cursor::from_client)
        .transpose()
        .map_err(DomainError::from)?;
    let (entities, next) = svc
        .graph()
        .list_entities(
            &caller.account_id,
            p.entity_type.as_deref().filter(|t| !t.is_empty()),
            limit as usize,
            cursor,
        )
        .await?;
    let mut headers = HeaderMap::new();
    if let Some(c) = next
        && let Ok(v) = HeaderValue::from_str(c.as_str())
    {
        headers.insert(NEXT_CURSOR, v);
    }
    Ok((headers, Json(entity_views(entities))))
}

/// Entities of the account's graph (with how many memories name each), a page at a time.
#[utoipa::path(get, path = "/api/v1/public/memory/v2/entities", tag = "graph", params(EntityParams),
    responses((status = 200, body = Vec<EntityView>,
            headers(("X-Next-Cursor" = String, description = "Pass as `cursor` for the next page; absent on the last page"))),
        (status = 422, description = "Bad limit or cursor", body = zerodb_http::error::ValidationErrorBody)))]
pub async fn entities(
    State(svc): State<MemoryService>,
    Auth(caller): Auth,
    ApiQuery(p): ApiQuery<EntityParams>,
) -> ApiResult<(HeaderMap, Json<Vec<EntityView>>)> {
    list(svc, caller, p).await
}

/// Entities of the account's graph (the graph client's path), a page at a time.
#[utoipa::path(get, path = "/api/v1/public/memory/v2/graph/entities", tag = "graph", params(EntityParams),
    responses((status = 200, body = Vec<EntityView>,
            headers(("X-Next-Cursor" = String, description = "Pass as `cursor` for the next page; absent on the last page"))),
        (status = 422, description = "Bad limit or cursor", body = zerodb_http::error::ValidationErrorBody)))]
pub async fn list_entities(
    State(svc): State<MemoryService>,
    Auth(caller): Auth,
    ApiQuery(p): ApiQuery<EntityParams>,
) -> ApiResult<(HeaderMap, Json<Vec<EntityView>>)> {
    list(svc, caller, p).await
}

/// Create an entity, or update the type, aliases and properties of the one with that name.
#[utoipa::path(post, path = "/api/v1/public/memory/v2/graph/entity", tag = "graph", request_body = EntityRequest,
    responses((status = 201, body = EntityView),
        (status = 422, description = "Invalid field", body = zerodb_http::error::ValidationErrorBody)))]
pub async fn create_entity(
    State(svc): State<MemoryService>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<EntityRequest>,
) -> ApiResult<(StatusCode, Json<EntityView>)> {
    can(&caller, Permission::Write)?;
    let name = check_name("name", &req.name)?;
    let etype = req
        .entity_type
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| DEFAULT_ENTITY_TYPE.to_owned());
    if etype.chars().count() > 64 {
        return Err(At::body_path(&["type"])
            .invalid("type must be at most 64 characters")
            .into());
    }
    let aliases = req.aliases.unwrap_or_default();
    if aliases.len() > MAX_ALIASES {
        return Err(At::body_path(&["aliases"])
            .invalid(format!("at most {MAX_ALIASES} aliases"))
            .into());
    }
    let aliases = aliases
        .iter()
        .map(|a| check_name("aliases", a))
        .collect::<Result<Vec<_>, _>>()?;
    let props = req.properties.unwrap_or_default();
    check_properties("properties", &props)?;
    let e = svc
        .graph()
        .upsert_entity(
            &caller.account_id,
            &name,
            &etype,
            &aliases,
            &props,
            svc.now_millis(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(EntityView::from(e))))
}

async fn add_edge(
    svc: &MemoryService,
    caller: &Principal,
    source: (&str, &str),
    target: (&str, &str),
    predicate: (&str, &str),
    confidence: Option<f64>,
    props: Option<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<(StatusCode, Json<EdgeView>)> {
    can(caller, Permission::Write)?;
    let mut errors = Vec::new();
    let src = check_name(source.0, source.1)
        .map_err(|e| errors.push(e))
        .ok();
    let dst = check_name(target.0, target.1)
        .map_err(|e| errors.push(e))
        .ok();
    let pred = check_predicate(predicate.0, predicate.1)
        .map_err(|e| errors.push(e))
        .ok();
    let conf = check_confidence("confidence", confidence.unwrap_or(1.0))
        .map_err(|e| errors.push(e))
        .ok();
    let props = props.unwrap_or_default();
    if let Err(e) = check_properties("properties", &props) {
        errors.push(e);
    }
    let (Some(src), Some(dst), Some(pred), Some(conf)) = (src, dst, pred, conf) else {
        let fields = errors
            .into_iter()
            .flat_map(|e| match e {
                DomainError::Validation(v) => v,
                _ => Vec::new(),
            })
            .collect();
        return Err(DomainError::Validation(fields).into());
    };
    if !errors.is_empty() {
        return Err(errors.remove(0).into());
    }
    let g = svc.graph();
    let now = svc.now_millis();
    let account = &caller.account_id;
    let source = match g.resolve(account, &src).await? {
        Some(e) => e,
        None => g.ensure_entity(account, &src, now).await?,
    };
    let target = match g.resolve(account, &dst).await? {
        Some(e) => e,
        None => g.ensure_entity(account, &dst, now).await?,
    };
    let edge = g
        .add_edge(account, &source, &target, &pred, conf, &props, now)
        .await?;
    Ok((StatusCode::CREATED, Json(edge.into())))
}

/// Create an edge `source -predicate-> target` (entities by name or id, created if missing).
#[utoipa::path(post, path = "/api/v1/public/memory/v2/graph/edge", tag = "graph", request_body = EdgeRequest,
    responses((status = 201, body = EdgeView),
        (status = 422, description = "Invalid field", body = zerodb_http::error::ValidationErrorBody)))]
pub async fn create_edge(
    State(svc): State<MemoryService>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<EdgeRequest>,
) -> ApiResult<(StatusCode, Json<EdgeView>)> {
    add_edge(
        &svc,
        &caller,
        ("source", &req.source),
        ("target", &req.target),
        ("predicate", &req.predicate),
        req.confidence,
        req.properties,
    )
    .await
}

/// Relate two entities: `{source_id, target_id, relationship_type}` or
/// `{subject, predicate, object}`.
#[utoipa::path(post, path = "/api/v1/public/memory/v2/relate", tag = "graph", request_body = RelateRequest,
    responses((status = 201, body = EdgeView),
        (status = 422, description = "Neither form complete, or an invalid field", body = zerodb_http::error::ValidationErrorBody)))]
pub async fn relate(
    State(svc): State<MemoryService>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<RelateRequest>,
) -> ApiResult<(StatusCode, Json<EdgeView>)> {
    match (
        &req.source_id,
        &req.target_id,
        &req.relationship_type,
        &req.subject,
        &req.predicate,
        &req.object,
    ) {
        (Some(s), Some(t), Some(r), _, _, _) => {
            add_edge(
                &svc,
                &caller,
                ("source_id", s),
                ("target_id", t),
                ("relationship_type", r),
                req.confidence,
                req.properties.clone(),
            )
            .await
        }
        (_, _, _, Some(s), Some(p), Some(o)) => {
            add_edge(
                &svc,
                &caller,
                ("subject", s),
                ("object", o),
                ("predicate", p),
                req.confidence,
                req.properties.clone(),
            )
            .await
        }
        _ => Err(At::body_path(&[]).invalid(
            "send either {source_id, target_id, relationship_type} or {subject, predicate, object}",
        )
        .into()),
    }
}

fn not_found(name: &str) -> DomainError {
    DomainError::NotFound(format!(
        "no entity named '{name}'; create it with POST /api/v1/public/memory/v2/graph/entity"
    ))
}

/// Entities one edge away from an entity, in either direction: at most 500, read from
/// at most 1,001 edges each way (`X-Truncated: true` when either bound left some out).
#[utoipa::path(get, path = "/api/v1/public/memory/v2/graph/neighbors/{name}", tag = "graph",
    params(("name" = String, Path, description = "Entity name or id")),
    responses((status = 200, body = Vec<EntityView>,
            headers(("X-Truncated" = String, description = "`true` when a bound cut the list short; absent otherwise"))),
        (status = 404, description = "No such entity (API_404)", body = zerodb_http::ErrorBody)))]
pub async fn neighbors(
    State(svc): State<MemoryService>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<(HeaderMap, Json<Vec<EntityView>>)> {
    can(&caller, Permission::Read)?;
    let g = svc.graph();
    let e = g
        .resolve(&caller.account_id, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    let (found, cut) = g.neighbors(&caller.account_id, &e.canonical_name).await?;
    let mut headers = HeaderMap::new();
    if cut {
        headers.insert(TRUNCATED, HeaderValue::from_static("true"));
    }
    Ok((headers, Json(entity_views(found))))
}

/// Walk the graph from an entity, breadth first, up to `max_hops`.
#[utoipa::path(post, path = "/api/v1/public/memory/v2/graph/traverse", tag = "graph", request_body = TraverseRequest,
    responses((status = 200, body = PathView),
        (status = 404, description = "No such start entity (API_404)", body = zerodb_http::ErrorBody),
        (status = 422, description = "Invalid field", body = zerodb_http::error::ValidationErrorBody)))]
pub async fn traverse(
    State(svc): State<MemoryService>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<TraverseRequest>,
) -> ApiResult<Json<PathView>> {
    can(&caller, Permission::Read)?;
    let hops = req.max_hops.unwrap_or(2);
    if !(1..=MAX_HOPS as i64).contains(&hops) {
        return Err(At::body_path(&["max_hops"])
            .invalid(format!("max_hops must be between 1 and {MAX_HOPS}"))
            .into());
    }
    let predicates = req
        .predicate_filter
        .map(OneOrMany::into_vec)
        .unwrap_or_default();
    // Each is compared with every edge the walk reads: a bounded list of real predicates.
    if predicates.len() > MAX_PREDICATE_FILTER {
        return Err(At::body_path(&["predicate_filter"])
            .invalid(format!(
                "{} predicates given; at most {MAX_PREDICATE_FILTER} are allowed",
                predicates.len()
            ))
            .into());
    }
    let predicates = predicates
        .iter()
        .map(|p| check_predicate("predicate_filter", p))
        .collect::<Result<Vec<_>, _>>()?;
    let start = check_name("start", &req.start)?;
    let g = svc.graph();
    let e = g
        .resolve(&caller.account_id, &start)
        .await?
        .ok_or_else(|| not_found(&start))?;
    let path = g
        .traverse(&caller.account_id, &e, hops as usize, &predicates)
        .await?;
    Ok(Json(PathView {
        nodes: entity_views(path.nodes),
        edges: path.edges.into_iter().map(EdgeView::from).collect(),
        hops: path.hops,
        truncated: path.truncated.is_some(),
        truncated_reason: path.truncated,
    }))
}

/// Counts, density and the best-connected entities.
#[utoipa::path(get, path = "/api/v1/public/memory/v2/graph/stats", tag = "graph",
    responses((status = 200, body = StatsView)))]
pub async fn stats(
    State(svc): State<MemoryService>,
    Auth(caller): Auth,
) -> ApiResult<Json<StatsView>> {
    can(&caller, Permission::Read)?;
    let s = svc.graph().stats(&caller.account_id, 10).await?;
    let (entities, degrees): (Vec<Entity>, Vec<usize>) = s.top_entities.into_iter().unzip();
    Ok(Json(StatsView {
        entity_count: s.entity_count,
        edge_count: s.edge_count,
        density: s.density,
        top_entities: entity_views(entities)
            .into_iter()
            .zip(degrees)
            .map(|(entity, degree)| RankedEntity { entity, degree })
            .collect(),
        top_entities_partial: s.top_entities_partial,
    }))
}
