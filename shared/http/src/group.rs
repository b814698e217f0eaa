//! An endpoint group as one value: its name, the Lambda binary that serves it on AWS, its
//! routes (typed state, checked at compile time), their OpenAPI operations and index,
//! and how its state is built from the process [`Context`]. zerodb-local, the OpenAPI
//! document, the contract tests and the Lambda harness all work from these values.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::openapi::OpenApi;
use zerodb_domain::Context;

use crate::error::ApiError;
use crate::extract::MAX_BODY_BYTES;
use crate::routes::{RouteInfo, Routes};

type Bind =
    dyn Fn(Context) -> Pin<Box<dyn Future<Output = anyhow::Result<Router>> + Send>> + Send + Sync;

/// One endpoint group.
#[derive(Clone)]
pub struct Group {
    name: &'static str,
    binary: &'static str,
    index: Vec<RouteInfo>,
    doc: OpenApi,
    bind: Arc<Bind>,
}

impl Group {
    /// A group of `routes` over the state `S` that `state` builds from the context (once
    /// per router; services it takes from the context are shared).
    pub fn new<S, F, Fut>(
        name: &'static str,
        binary: &'static str,
        routes: Routes<S>,
        state: F,
    ) -> Self
    where
        S: Clone + Send + Sync + 'static,
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<S>> + Send + 'static,
    {
        let (router, doc, index) = routes.into_parts();
        Group {
            name,
            binary,
            index,
            doc,
            bind: Arc::new(move |ctx| {
                let router = router.clone();
                let state = state(ctx);
                Box::pin(async move { Ok(router.with_state(state.await?)) })
            }),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The Lambda binary (and `template.yaml` function) that serves this group on AWS.
    pub fn binary(&self) -> &'static str {
        self.binary
    }

    /// Every route, with its handler.
    pub fn routes(&self) -> &[RouteInfo] {
        &self.index
    }

    /// This group's part of the OpenAPI document.
    pub fn openapi(&self) -> &OpenApi {
        &self.doc
    }

    /// The group's router, its state built from `ctx`; without the fallbacks and layers
    /// [`serve`] adds once around every group it serves.
    pub async fn router(&self, ctx: &Context) -> anyhow::Result<Router> {
        (self.bind)(ctx.clone())
            .await
            .map_err(|e| e.context(format!("building the {} endpoint group", self.name)))
    }
}

/// One router serving `groups` (all of them in zerodb-local; one function's in a
/// Lambda), with what every deployment needs around them: JSON 404 and 405, the body
/// limit, and a panic guard that answers 500 without internals.
pub async fn serve(groups: &[Group], ctx: &Context) -> anyhow::Result<Router> {
    let mut router = Router::new();
    for g in groups {
        router = router.merge(g.router(ctx).await?);
    }
    Ok(finish(router))
}

fn finish(router: Router) -> Router {
    router
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
}
