//! Health endpoints: answer without touching storage so load balancers and clients can
//! poll them cheaply.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `healthy` when the process answers.
    pub status: &'static str,
    pub service: &'static str,
    pub version: &'static str,
}

/// Liveness of the API.
#[utoipa::path(get, path = "/api/v1/health", tag = "health", responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "healthy",
        service: "zerodb",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Liveness of the API (the path the official MCP client polls).
#[utoipa::path(get, path = "/api/v1/public/health", tag = "health", responses((status = 200, body = Health)))]
pub async fn public_health() -> Json<Health> {
    health().await
}
