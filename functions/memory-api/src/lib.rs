//! The memory endpoint group: ZeroMemory v2 (remember, recall, forget, session cleanup,
//! profiles), the knowledge graph, project memory (every `/database/memory` route of a
//! project: ainative-python's and seed 003's batch operations), and OpenAI-format
//! embeddings from the memory embedder (this function holds the model).

pub mod batch;
pub mod embeddings;
pub mod graph;
pub mod memory;
pub mod project_memory;
pub mod wire;

use axum::extract::FromRef;
use zerodb_domain::Context;
use zerodb_http::{Group, Routes};
use zerodb_memory::MemoryService;
use zerodb_projects::Projects;

/// What the memory handlers reach: the credential check, the memory service, and the
/// project service for the gate of project memory.
#[derive(Clone, FromRef)]
pub struct MemoryApi {
    pub ctx: Context,
    pub memory: MemoryService,
    pub projects: Projects,
}

/// The memory group.
pub fn group() -> Group {
    let memory = Routes::authenticated(zerodb_http::routes!(
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
    ));
    // Routes on a project's data share its refusals (PROJECT_NOT_FOUND, 422s, …).
    let project = Routes::authenticated(zerodb_http::routes!(
        batch::upsert,
        batch::delete,
        batch::update,
        project_memory::create,
        project_memory::list,
        project_memory::search,
        project_memory::bulk,
        project_memory::get,
        project_memory::update,
        project_memory::delete,
        project_memory::related,
    ))
    .responding::<zerodb_http::openapi::DataErrors>();
    // OpenAI's format: errors also carry its `error` object, so its SDK raises typed errors.
    let embeddings = Routes::authenticated(zerodb_http::routes!(
        embeddings::embeddings,
        embeddings::embeddings_v1
    ))
    .route_layer(axum::middleware::from_fn(
        zerodb_http::vendor::error_objects,
    ));
    Group::new(
        "memory",
        "memory-api",
        memory.merge(project).merge(embeddings),
        |ctx| async move {
            Ok(MemoryApi {
                memory: zerodb_memory::shared(&ctx).await?,
                projects: zerodb_projects::projects(&ctx).await?,
                ctx,
            })
        },
    )
}
