//! The inference gateway's domain: which models this deployment serves (aliases), which
//! provider serves each, and what a call costs. No HTTP and no provider clients live here.

pub mod catalog;
pub mod config;

pub use catalog::{Catalog, Price, ProviderKind, Route, UnknownModel};
pub use config::{ConfigError, ProvidersFile};
