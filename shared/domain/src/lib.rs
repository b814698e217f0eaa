//! ZeroDB's domain: validated types, rules and repositories, over storage ports.
//! No HTTP and no AWS types live here.

pub mod auth;
pub mod clock;
pub mod context;
pub mod error;
pub mod events;
pub mod filter;
pub mod ids;
pub mod item;
pub mod keys;
pub mod namespace;
pub mod queues;
pub mod rate;
pub mod scope;
pub mod store;
pub mod vectors;
pub mod work;

pub use context::{Context, Deployment, Settings};
pub use error::{At, AuthFailure, DomainError, FieldError, Loc, Problems, Refusal};
pub use namespace::Namespace;
