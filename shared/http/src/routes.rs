//! A route builder that records every (method, path) it serves, so tests can prove the
//! OpenAPI document and `template.yaml` list exactly the routes the routers serve.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;
use crate::extract::MAX_BODY_BYTES;
use crate::state::AppState;

/// One served route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteInfo {
    pub method: String,
    pub path: String,
}

/// An endpoint group's routes, not yet bound to state.
#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    served: Vec<RouteInfo>,
}

macro_rules! verb {
    ($name:ident, $method:expr, $route:path) => {
        pub fn $name<H, T>(self, path: &str, handler: H) -> Self
        where
            H: Handler<T, AppState>,
            T: 'static,
        {
            self.add($method, path, $route(handler))
        }
    };
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    fn add(
        mut self,
        method: Method,
        path: &str,
        route: axum::routing::MethodRouter<AppState>,
    ) -> Self {
        self.served.push(RouteInfo {
            method: method.as_str().to_owned(),
            path: path.to_owned(),
        });
        self.router = self.router.route(path, route);
        self
    }

    verb!(get, Method::GET, axum::routing::get);
    verb!(post, Method::POST, axum::routing::post);
    verb!(put, Method::PUT, axum::routing::put);
    verb!(patch, Method::PATCH, axum::routing::patch);
    verb!(delete, Method::DELETE, axum::routing::delete);

    /// Combines two groups (zerodb-local serves them all from one router).
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.served.extend(other.served);
        self
    }

    /// Changes the router of the routes added so far (e.g. a `route_layer` that only
    /// this group's routes need); the recorded routes stay as they are.
    pub fn map_router(mut self, f: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Self {
        self.router = f(self.router);
        self
    }

    pub fn served(&self) -> &[RouteInfo] {
        &self.served
    }

    /// Binds state and adds what every deployment needs: JSON 404/405, a body limit,
    /// and a panic guard that answers 500 without internals.
    pub fn into_router(self, state: AppState) -> Router {
        self.router
            .fallback(|| async { ApiError::NoRoute })
            .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(CatchPanicLayer::custom(
                |_panic: Box<dyn std::any::Any + Send>| -> Response {
                    tracing::error!("handler panicked");
                    ApiError::Domain(zerodb_domain::DomainError::Unexpected(anyhow::anyhow!(
                        "handler panicked"
                    )))
                    .into_response()
                },
            ))
            .with_state(state)
    }
}
