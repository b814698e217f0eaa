//! The security endpoint group: quarantine of untrusted content before an agent reads it.

pub mod quarantine;

use utoipa::OpenApi;
use zerodb_http::{AppState, Routes};

/// This group's routes.
pub fn routes() -> Routes {
    Routes::new().post("/api/v1/public/security/quarantine", quarantine::quarantine)
}

#[derive(OpenApi)]
#[openapi(
    paths(quarantine::quarantine),
    components(schemas(
        quarantine::QuarantineRequest,
        quarantine::QuarantineResponse,
        quarantine::FindingView
    ))
)]
struct SecurityDoc;

/// This group's part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    SecurityDoc::openapi()
}

/// What the Lambda function serves (health and unknown routes are auth-api's).
pub fn lambda_routes() -> Routes {
    routes()
}

/// The Lambda function's router.
pub fn router(state: AppState) -> axum::Router {
    lambda_routes().into_router(state)
}
