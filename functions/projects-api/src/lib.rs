//! The projects endpoint group: seed 004's `/v1/public/projects`, the `/api/v1/projects`
//! form ainative-python calls (same records, lowercase statuses, PATCH, status changes,
//! delete, statistics, transitions), and `POST /api/v1/public/instant-db`.

pub mod instant;
pub mod projects;

use axum::extract::FromRef;
use zerodb_domain::Context;
use zerodb_http::{Group, Routes};
use zerodb_projects::Projects;

/// What the project handlers reach.
#[derive(Clone, FromRef)]
pub struct ProjectsApi {
    pub ctx: Context,
    pub projects: Projects,
}

/// The projects group.
pub fn group() -> Group {
    // Seed 004's routes answer an unknown key with its INVALID_API_KEY code.
    let seed = Routes::authenticated(zerodb_http::routes!(
        projects::create,
        projects::list,
        projects::get,
    ))
    .route_layer(axum::middleware::from_fn(projects::invalid_api_key))
    .responding::<zerodb_http::openapi::DataErrors>();
    let api = Routes::authenticated(zerodb_http::routes!(
        projects::create_v1,
        projects::list_v1,
        projects::get_v1,
        projects::update_v1,
        projects::delete_v1,
        projects::set_status_v1,
        projects::statistics_v1,
        projects::transitions_v1,
    ))
    .responding::<zerodb_http::openapi::DataErrors>();
    let open = Routes::public(zerodb_http::routes!(instant::instant_db))
        .responding::<zerodb_http::openapi::DataErrors>();
    Group::new(
        "projects",
        "projects-api",
        seed.merge(api).merge(open),
        |ctx| async move {
            Ok(ProjectsApi {
                projects: zerodb_projects::projects(&ctx).await?,
                ctx,
            })
        },
    )
}
