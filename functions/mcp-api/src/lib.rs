//! The zerodb-mcp RPC bridge: `POST /api/v1/public/zerodb/mcp/execute`
//! `{"operation", "params"}` runs one operation of the `zerodb-mcp` client (projects,
//! vectors, tables, files, events, RLHF, embeddings) on the same domain services as the REST
//! routes, and `GET /api/v1/public/zerodb/mcp/operations` lists the operations served.
//! An operation not served is a 422 naming it (never a 404 or 5xx, which the client
//! retries).

pub mod catalog;
pub mod embeddings;
pub mod events;
pub mod files;
pub mod projects;
pub mod rlhf;
pub mod rpc;
pub mod tables;
pub mod vectors;

use axum::extract::FromRef;
use serde_json::Value;
use zerodb_domain::{Context, DomainError};
use zerodb_http::{Group, Routes};
use zerodb_projects::events::ProjectEvents;
use zerodb_projects::files::Files;
use zerodb_projects::rlhf::Rlhf;
use zerodb_projects::{Projects, Tables};

use crate::rpc::Call;

/// What the operations reach. The embedder is not here: it is the memory service's,
/// loaded on the first `generate_embeddings` (most calls never need the model).
#[derive(Clone, FromRef)]
pub struct McpApi {
    pub ctx: Context,
    pub projects: Projects,
    pub tables: Tables,
    pub events: ProjectEvents,
    pub rlhf: Rlhf,
    pub files: Files,
}

/// Runs one operation: one match arm per operation served (the list
/// [`catalog::OPERATIONS`] describes them for `GET …/operations`). Anything else is
/// [`rpc::not_served`].
pub async fn dispatch(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    match c.operation {
        // projects
        "create_project" => projects::create(s, c).await,
        "get_project" => projects::get(s, c).await,
        "get_project_stats" => projects::stats(s, c).await,
        "list_projects" => projects::list(s, c).await,
        "update_project" => projects::update(s, c).await,
        "delete_project" => projects::delete(s, c).await,
        // tables
        "create_table" => tables::create(s, c).await,
        "list_tables" => tables::list(s, c).await,
        "get_table" => tables::get(s, c).await,
        "delete_table" => tables::drop(s, c).await,
        "insert_rows" => tables::insert(s, c).await,
        "query_rows" => tables::query(s, c).await,
        "update_rows" => tables::update(s, c).await,
        "delete_rows" => tables::delete_rows(s, c).await,
        // files
        "upload_file" => files::upload(s, c).await,
        "download_file" => files::download(s, c).await,
        "list_files" => files::list(s, c).await,
        "get_file_metadata" => files::metadata(s, c).await,
        "delete_file" => files::delete(s, c).await,
        "generate_presigned_url" => files::presigned_url(s, c).await,
        // events
        "create_event" => events::create(s, c).await,
        "list_events" => events::list(s, c).await,
        // RLHF
        "rlhf_collect_interaction" => rlhf::collect_interaction(s, c).await,
        "rlhf_get_session_interactions" => rlhf::session_interactions(s, c).await,
        // vectors
        "upsert_vector" => vectors::upsert(s, c).await,
        "batch_upsert_vectors" => vectors::batch_upsert(s, c).await,
        "search_vectors" => vectors::search(s, c).await,
        "get_vector" => vectors::get(s, c).await,
        "list_vectors" => vectors::list(s, c).await,
        "delete_vector" => vectors::delete(s, c).await,
        "vector_stats" => vectors::stats(s, c).await,
        "embed_and_store" => vectors::embed_and_store(s, c).await,
        "semantic_search" => vectors::semantic_search(s, c).await,
        // embeddings
        "generate_embeddings" => embeddings::generate(s, c).await,
        "list_embedding_models" => embeddings::models(s, c).await,
        other => Err(rpc::not_served(other)),
    }
}

/// The MCP bridge group.
pub fn group() -> Group {
    let routes = Routes::authenticated(zerodb_http::routes!(rpc::execute, rpc::operations))
        .responding::<zerodb_http::openapi::DataErrors>();
    Group::new("mcp", "mcp-api", routes, |ctx| async move {
        let retention =
            ProjectEvents::retention_days(ctx.settings()).map_err(anyhow::Error::msg)?;
        Ok(McpApi {
            projects: zerodb_projects::projects(&ctx).await?,
            tables: zerodb_projects::tables(&ctx).await?,
            events: ProjectEvents::new(&ctx, retention),
            rlhf: Rlhf::new(&ctx),
            files: zerodb_projects::files::shared(&ctx).await?,
            ctx,
        })
    })
}
