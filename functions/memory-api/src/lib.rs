//! The memory endpoint group: ZeroMemory v2 (remember, recall, forget, session cleanup,
//! profiles), the knowledge graph, the project-scoped batch memory operations, and
//! OpenAI-format embeddings from the memory embedder (this function holds the model).

pub mod batch;
pub mod embeddings;
pub mod graph;
pub mod memory;
pub mod wire;

use axum::extract::FromRef;
use zerodb_domain::Context;
use zerodb_http::{Group, Routes};
use zerodb_memory::MemoryService;

/// What the memory handlers reach: the credential check, and the memory service.
#[derive(Clone, FromRef)]
pub struct MemoryApi {
    pub ctx: Context,
    pub memory: MemoryService,
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
        batch::upsert,
        batch::delete,
        batch::update,
    ));
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
        memory.merge(embeddings),
        |ctx| async move {
            Ok(MemoryApi {
                memory: zerodb_memory::shared(&ctx).await?,
                ctx,
            })
        },
    )
}
