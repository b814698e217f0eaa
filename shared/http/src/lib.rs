//! What every endpoint group shares: state, the error envelope, extractors, the route
//! recorder, health, OpenAPI and configuration.

pub mod config;
pub mod error;
pub mod extract;
pub mod health;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod telemetry;
pub mod vendor;

pub use error::{ApiError, ApiResult, ErrorBody};
pub use extract::{ApiJson, ApiQuery, Auth, OptionalJson};
pub use routes::{RouteInfo, Routes};
pub use state::AppState;
