//! The security endpoint group: quarantine of untrusted content before an agent reads it.

pub mod quarantine;

use zerodb_http::{Group, Routes};

/// The security group: one authenticated route, no storage but the credential check.
pub fn group() -> Group {
    Group::new(
        "security",
        "security-api",
        Routes::authenticated(zerodb_http::routes!(quarantine::quarantine)),
        |ctx| async move { Ok(ctx) },
    )
}
