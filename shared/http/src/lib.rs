//! What every endpoint group shares: the group value and the route declaration that
//! builds it, the error envelope, extractors, health, OpenAPI and telemetry.

pub mod deadline;
pub mod error;
pub mod extract;
pub mod group;
pub mod health;
pub mod openapi;
pub mod routes;
pub mod telemetry;
pub mod vendor;

pub use error::{ApiError, ApiResult, ErrorBody};
pub use extract::{ApiJson, ApiQuery, Auth, ClientAddr, OptionalJson};
pub use group::{Group, serve};
pub use routes::{RouteInfo, RouteSet, Routes};
pub use zerodb_domain::Context;

#[doc(hidden)]
pub mod __private {
    pub use utoipa_axum;
}
