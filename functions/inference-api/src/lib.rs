//! The inference endpoint group (seed 000 step 4): Anthropic Messages and OpenAI Chat
//! Completions in front of configured providers, with credits and usage records. The
//! handlers and wire forms live here; the gateway, provider client and accounting are
//! `zerodb_inference`'s service.

pub mod api;
pub mod error;

use std::sync::Arc;

use axum::extract::FromRef;
use zerodb_domain::Context;
use zerodb_http::{Group, Routes};
use zerodb_inference::Inference;

/// What the inference handlers reach: the credential check and the service.
#[derive(Clone, FromRef)]
pub struct InferenceApi {
    pub ctx: Context,
    pub inference: Arc<Inference>,
}

/// The inference group. Every error also carries the endpoint's own format's `error`
/// object, so the official SDKs raise their typed errors.
pub fn group() -> Group {
    let routes = Routes::authenticated(zerodb_http::routes!(
        api::messages,
        api::chat_completions,
        api::chat_completions_v1,
        api::models,
        api::models_api,
        api::usage
    ))
    .route_layer(axum::middleware::from_fn(
        zerodb_http::vendor::error_objects,
    ));
    Group::new("inference", "inference-api", routes, |ctx| async move {
        Ok(InferenceApi {
            inference: zerodb_inference::shared(&ctx).await?,
            ctx,
        })
    })
}
