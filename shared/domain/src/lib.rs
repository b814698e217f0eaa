//! ZeroDB's domain: validated types, rules and repositories, over storage ports.
//! No HTTP and no AWS types live here.

pub mod auth;
pub mod clock;
pub mod error;
pub mod events;
pub mod ids;
pub mod namespace;
pub mod rate;
pub mod scope;
pub mod store;

pub use error::{AuthFailure, DomainError, FieldError, Loc};
pub use namespace::Namespace;
