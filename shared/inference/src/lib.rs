//! The inference gateway's domain: which models this deployment serves (aliases), which
//! provider serves each, what a call costs, and the two wire formats (Anthropic Messages,
//! OpenAI Chat Completions) with the translation between them. No HTTP and no provider
//! clients live here.

pub mod anthropic;
pub mod catalog;
pub mod config;
pub mod openai;
pub mod stream;
pub mod translate;

pub use catalog::{Catalog, Price, ProviderKind, Route, UnknownModel};
pub use config::{ConfigError, ProvidersFile};
