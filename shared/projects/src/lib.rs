//! Projects and the project database (seed 004, seed 003's table, event and RLHF
//! operations): the project lifecycle, the gate every project route passes, tables
//! with Mongo-style queries over declared indexes, published events, RLHF logs, batch
//! queries, and the purge that removes a deleted project's data a page at a time.

pub mod batch;
pub mod events;
pub mod files;
pub use zerodb_domain::filter;
pub mod project;
pub mod purge;
pub mod rlhf;
pub mod schema;
pub mod tables;
pub mod vectors;

pub use project::{Access, Project, ProjectLimits, Projects, Status, Tier};
pub use tables::{TableLimits, Tables};
pub use vectors::{ProjectVectors, VectorLimits};

use zerodb_domain::Context;

/// The project service of this process, built once from its settings.
pub async fn projects(ctx: &Context) -> anyhow::Result<Projects> {
    ctx.service(|ctx| async move {
        let limits = ProjectLimits::from_settings(ctx.settings()).map_err(anyhow::Error::msg)?;
        Ok(Projects::new(&ctx, limits))
    })
    .await
}

/// The table service of this process.
pub async fn tables(ctx: &Context) -> anyhow::Result<Tables> {
    let projects = projects(ctx).await?;
    ctx.service(|ctx| async move {
        let limits = TableLimits::from_settings(ctx.settings()).map_err(anyhow::Error::msg)?;
        Ok(Tables::new(&ctx, projects, limits))
    })
    .await
}

/// The vector service of this process, embedding text with `embedder` (the memory
/// service's, so one model serves both).
pub async fn vectors(
    ctx: &Context,
    embedder: std::sync::Arc<dyn zerodb_embed::Embedder>,
) -> anyhow::Result<ProjectVectors> {
    ctx.service(|ctx| async move {
        let limits = VectorLimits::from_settings(ctx.settings()).map_err(anyhow::Error::msg)?;
        Ok(ProjectVectors::new(&ctx, embedder, limits))
    })
    .await
}
