//! Inference: which models this deployment serves (aliases), which provider serves each,
//! what a call costs, the two wire formats (Anthropic Messages, OpenAI Chat Completions)
//! with the translation between them — and the service that calls providers through
//! them: the provider client, the gateway, credits and usage records. HTTP handlers live
//! in `functions/inference-api`.

pub mod accounting;
pub mod anthropic;
pub mod catalog;
pub mod config;
pub mod estimate;
pub mod gateway;
pub mod keys;
pub mod openai;
pub mod provider;
pub mod service;
pub mod sse;
pub mod stream;
pub mod translate;

pub use catalog::{Catalog, Price, ProviderKind, Route, UnknownModel};
pub use config::{ConfigError, ProvidersFile};
pub use service::{Inference, RecordWrites, shared};
