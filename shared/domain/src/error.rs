//! The domain's error kinds, meaningful to callers; the HTTP layer maps them to the
//! API's envelope in one place.

use serde::Serialize;

use crate::store::StoreError;

/// Why a credential was refused; each has its own error code in seed 000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credential was sent.
    Missing,
    /// The key or token is not one we issued (AUTH_001).
    Unknown,
    /// The key or token has expired (AUTH_002).
    Expired,
    /// The key was revoked (AUTH_003).
    Revoked,
    /// The token is malformed or its signature does not verify (AUTH_003).
    InvalidToken,
}

/// One segment of a validation error's location: a field name or a list index.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Loc {
    Field(String),
    Index(usize),
}

impl From<&str> for Loc {
    fn from(s: &str) -> Self {
        Loc::Field(s.to_owned())
    }
}
impl From<usize> for Loc {
    fn from(i: usize) -> Self {
        Loc::Index(i)
    }
}

/// One problem with a request, in the `{loc, msg, type}` form clients parse.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    pub loc: Vec<Loc>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl FieldError {
    /// A problem with a body field: `loc` is `["body", ...path]`.
    pub fn body(path: impl IntoIterator<Item = Loc>, msg: impl Into<String>, kind: &str) -> Self {
        let mut loc = vec![Loc::from("body")];
        loc.extend(path);
        FieldError {
            loc,
            msg: msg.into(),
            kind: kind.into(),
        }
    }
    pub fn at(loc: Vec<Loc>, msg: impl Into<String>, kind: &str) -> Self {
        FieldError {
            loc,
            msg: msg.into(),
            kind: kind.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("authentication failed: {0:?}")]
    Unauthenticated(AuthFailure),
    /// The credential is valid but lacks a scope (PERM_001).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("invalid request")]
    Validation(Vec<FieldError>),
    #[error("rate limit exceeded")]
    RateLimited { retry_after_secs: u64 },
    /// The account's credits are spent (402 INSUFFICIENT_CREDITS).
    #[error("{0}")]
    InsufficientCredits(String),
    /// Storage is throttling; the client should retry.
    #[error("service busy")]
    Unavailable { retry_after_secs: u64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl DomainError {
    pub fn invalid(loc: Vec<Loc>, msg: impl Into<String>) -> Self {
        DomainError::Validation(vec![FieldError::at(loc, msg, "value_error")])
    }
}

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Throttled => DomainError::Unavailable {
                retry_after_secs: 1,
            },
            StoreError::BadCursor => DomainError::invalid(
                vec![Loc::from("query"), Loc::from("cursor")],
                "cursor is not one this API issued; pass next_cursor from the previous page unchanged",
            ),
            StoreError::TooLarge(n) => DomainError::invalid(
                vec![Loc::from("body")],
                format!(
                    "record is {n} bytes once stored, over the 400 KB limit; send less content"
                ),
            ),
            other => DomainError::Unexpected(anyhow::Error::new(other)),
        }
    }
}
