//! The vectors endpoint group: ainative-python's `/api/v1/projects/{project_id}/database/
//! vectors` (upsert, search, get, delete by ids / filter / all, metadata update, stats)
//! and seed 003's `upsert-batch`; ainative-agent's `/api/v1/public/vectors/…` on the
//! default project; langchain-zerodb's `/embeddings/embed-and-store` and
//! `/embeddings/search`, and seed 004's `/v1/public/embeddings/search`.

pub mod embeddings;
pub mod project;
pub mod public;

use axum::extract::FromRef;
use zerodb_domain::Context;
use zerodb_domain::auth::Principal;
use zerodb_domain::{At, DomainError};
use zerodb_http::{Group, Routes};
use zerodb_projects::{Access, Project, ProjectVectors, Projects};

/// What the vector handlers reach.
#[derive(Clone, FromRef)]
pub struct VectorsApi {
    pub ctx: Context,
    pub projects: Projects,
    pub vectors: ProjectVectors,
}

/// The project a `/projects/{id}/…` route acts on, after the scope check.
pub async fn project(
    projects: &Projects,
    caller: &Principal,
    id: &str,
    access: Access,
) -> Result<Project, DomainError> {
    zerodb_projects::tables::require(caller, access)?;
    projects.gate(caller, id, access).await
}

/// The project of a `/public/…` route: `X-Project-ID`, else the account's default.
pub async fn default_project(
    projects: &Projects,
    caller: &Principal,
    headers: &axum::http::HeaderMap,
    access: Access,
) -> Result<Project, DomainError> {
    zerodb_projects::tables::require(caller, access)?;
    let named = zerodb_http::extract::named_project(headers)?;
    projects.default_gate(caller, named, access).await
}

/// A namespace as sent (default `default`), checked.
pub fn namespace(ns: Option<String>, at: At) -> Result<String, DomainError> {
    let ns = ns.unwrap_or_else(|| zerodb_projects::vectors::DEFAULT_NAMESPACE.to_owned());
    zerodb_projects::vectors::check_namespace(&ns).map_err(|m| at.invalid(m))?;
    Ok(ns)
}

/// The vectors group.
pub fn group() -> Group {
    let routes = Routes::authenticated(zerodb_http::routes!(
        project::upsert,
        project::search,
        project::get,
        project::delete,
        project::update_metadata,
        project::stats,
        project::upsert_batch,
        public::upsert,
        public::search,
        public::stats,
        public::get,
        public::delete,
        embeddings::embed_and_store,
        embeddings::search,
        embeddings::public_search,
    ))
    .responding::<zerodb_http::openapi::DataErrors>();
    Group::new("vectors", "vectors-api", routes, |ctx| async move {
        let memory = zerodb_memory::shared(&ctx).await?;
        Ok(VectorsApi {
            projects: zerodb_projects::projects(&ctx).await?,
            vectors: zerodb_projects::vectors(&ctx, memory.embedder().clone()).await?,
            ctx,
        })
    })
}
