//! The project database endpoint group, under `/api/v1/projects/{project_id}/database`:
//! tables and rows (ainative-python's form), published events, RLHF interactions and
//! seed 003's batch query; and ainative-agent's `/api/v1/public/tables/…` form, which
//! acts on the account's default project unless `X-Project-ID` names another.

pub mod batch;
pub mod events;
pub mod public;
pub mod rlhf;
pub mod tables;

use axum::extract::FromRef;
use zerodb_domain::Context;
use zerodb_http::{Group, Routes};
use zerodb_projects::Tables;
use zerodb_projects::events::ProjectEvents;
use zerodb_projects::rlhf::Rlhf;

/// What the database handlers reach.
#[derive(Clone, FromRef)]
pub struct DatabaseApi {
    pub ctx: Context,
    pub tables: Tables,
    pub events: ProjectEvents,
    pub rlhf: Rlhf,
}

/// The database group.
pub fn group() -> Group {
    let routes = Routes::authenticated(zerodb_http::routes!(
        tables::create,
        tables::list,
        tables::get,
        tables::drop,
        tables::insert,
        tables::query,
        tables::update,
        tables::delete_rows,
        events::publish,
        events::publish_batch,
        events::list,
        rlhf::log,
        rlhf::log_batch,
        rlhf::list,
        batch::query,
        public::create,
        public::list,
        public::get,
        public::drop,
        public::insert,
        public::query,
        public::update,
        public::delete_rows,
    ))
    .responding::<zerodb_http::openapi::DataErrors>();
    Group::new("database", "database-api", routes, |ctx| async move {
        let retention = ProjectEvents::retention_days(ctx.settings()).map_err(anyhow::Error::msg)?;
        Ok(DatabaseApi {
            tables: zerodb_projects::tables(&ctx).await?,
            events: ProjectEvents::new(&ctx, retention),
            rlhf: Rlhf::new(&ctx),
            ctx,
        })
    })
}
