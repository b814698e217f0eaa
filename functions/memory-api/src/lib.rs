//! The memory endpoint group: ZeroMemory v2 (remember, recall, forget, session cleanup,
//! profiles), the knowledge graph, and the project-scoped batch memory operations.
//!
//! Handlers get the `MemoryService` as a request extension, added once by whoever builds
//! the router (this function's `main`, or zerodb-local), so the shared `AppState` does not
//! depend on the memory crates.

pub mod batch;
pub mod embeddings;
pub mod graph;
pub mod memory;
pub mod wire;

use std::sync::Arc;

use axum::Extension;
use utoipa::OpenApi;
use zerodb_embed::Embedder;
use zerodb_http::{AppState, Routes};
use zerodb_memory::MemoryService;

/// The memory service over the state's storage and an embedder.
pub fn service(state: &AppState, embedder: Arc<dyn Embedder>) -> MemoryService {
    MemoryService::new(
        state.stores.table.clone(),
        state.events.clone(),
        embedder,
        state.clock.clone(),
    )
}

const V2: &str = "/api/v1/public/memory/v2";

/// This group's routes.
pub fn routes() -> Routes {
    Routes::new()
        .post(&format!("{V2}/remember"), memory::remember)
        .post(&format!("{V2}/recall"), memory::recall)
        .delete(&format!("{V2}/forget/{{memory_id}}"), memory::forget_one)
        .post(&format!("{V2}/forget"), memory::forget)
        .delete(
            "/api/v1/public/memory/session/{session_id}",
            memory::delete_session,
        )
        .get(&format!("{V2}/profile/{{entity_id}}"), memory::profile)
        .get(&format!("{V2}/entities"), graph::entities)
        .post(&format!("{V2}/relate"), graph::relate)
        .post(&format!("{V2}/graph/entity"), graph::create_entity)
        .get(&format!("{V2}/graph/entities"), graph::list_entities)
        .post(&format!("{V2}/graph/edge"), graph::create_edge)
        .get(&format!("{V2}/graph/neighbors/{{name}}"), graph::neighbors)
        .post(&format!("{V2}/graph/traverse"), graph::traverse)
        .get(&format!("{V2}/graph/stats"), graph::stats)
        .post(
            "/api/v1/projects/{project_id}/database/memory/batch/upsert",
            batch::upsert,
        )
        .post(
            "/api/v1/projects/{project_id}/database/memory/batch/delete",
            batch::delete,
        )
        .post(
            "/api/v1/projects/{project_id}/database/memory/batch/update",
            batch::update,
        )
        .merge(
            Routes::new()
                .post("/api/v1/embeddings", embeddings::embeddings)
                .post("/v1/embeddings", embeddings::embeddings_v1)
                .map_router(|r| {
                    r.route_layer(axum::middleware::from_fn(
                        zerodb_http::vendor::error_objects,
                    ))
                }),
        )
}

#[derive(OpenApi)]
#[openapi(
    paths(
        memory::remember,
        memory::recall,
        memory::forget_one,
        memory::forget,
        memory::delete_session,
        memory::profile,
        graph::entities,
        graph::relate,
        graph::create_entity,
        graph::list_entities,
        graph::create_edge,
        graph::neighbors,
        graph::traverse,
        graph::stats,
        batch::upsert,
        batch::delete,
        batch::update,
        embeddings::embeddings,
        embeddings::embeddings_v1,
    ),
    components(schemas(
        wire::RememberRequest,
        wire::MemoryView,
        wire::RememberResponse,
        wire::NextSteps,
        wire::RecallRequest,
        wire::RecallFilter,
        wire::RecalledMemory,
        wire::RecallResponse,
        wire::ForgetRequest,
        wire::ForgetFilter,
        wire::DeletedCount,
        wire::ProfileView,
        wire::EntityRequest,
        wire::EntityView,
        wire::EdgeRequest,
        wire::RelateRequest,
        wire::EdgeView,
        wire::TraverseRequest,
        wire::OneOrMany,
        wire::PathView,
        wire::StatsView,
        wire::RankedEntity,
        batch::UpsertRequest,
        batch::UpsertRecord,
        batch::DeleteRequest,
        batch::UpdateRequest,
        batch::UpdateRecord,
        batch::BatchResult,
        batch::ItemResult,
        embeddings::EmbeddingsRequest,
        embeddings::EmbeddingsResponse,
        embeddings::EmbeddingView,
        embeddings::EmbeddingsUsage,
    ))
)]
struct MemoryDoc;

/// This group's part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    MemoryDoc::openapi()
}

/// What the Lambda function serves (health and unknown routes are auth-api's).
pub fn lambda_routes() -> Routes {
    routes()
}

/// The Lambda function's router.
pub fn router(state: AppState, memory: MemoryService) -> axum::Router {
    lambda_routes().into_router(state).layer(Extension(memory))
}
