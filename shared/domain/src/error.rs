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

/// Where in a request a problem is, the one way every group says "422 at loc":
/// `At::body("name")`, `At::query("limit")`, `At::path("session_id")`,
/// `At::header("X-Project-ID")`, deeper with `.field("tags")` and `.index(3)`; then
/// `.invalid(msg)` for the error itself, or `.problem(msg)` to collect several.
#[derive(Debug, Clone, PartialEq)]
pub struct At(Vec<Loc>);

impl At {
    fn under(root: &str, name: &str) -> At {
        At(vec![Loc::from(root), Loc::from(name)])
    }
    /// The body as a whole.
    pub fn body_root() -> At {
        At(vec![Loc::from("body")])
    }
    pub fn body(field: &str) -> At {
        At::under("body", field)
    }
    pub fn query(name: &str) -> At {
        At::under("query", name)
    }
    pub fn path(name: &str) -> At {
        At::under("path", name)
    }
    pub fn header(name: &str) -> At {
        At::under("header", name)
    }
    /// A body location written as field names (`["records", "3", "content"]`).
    pub fn body_path(path: &[&str]) -> At {
        let mut at = At::body_root();
        at.0.extend(path.iter().map(|p| Loc::from(*p)));
        at
    }
    /// A location given segment by segment (a parser's path into a document).
    pub fn segments(loc: Vec<Loc>) -> At {
        At(loc)
    }
    pub fn field(mut self, name: &str) -> At {
        self.0.push(Loc::from(name));
        self
    }
    pub fn index(mut self, i: usize) -> At {
        self.0.push(Loc::Index(i));
        self
    }
    /// A `value_error` here, to collect with others.
    pub fn problem(self, msg: impl Into<String>) -> FieldError {
        self.problem_of(msg, "value_error")
    }
    /// A problem of a named kind (`value_error.missing`, `type_error`, ...).
    pub fn problem_of(self, msg: impl Into<String>, kind: &str) -> FieldError {
        FieldError {
            loc: self.0,
            msg: msg.into(),
            kind: kind.into(),
        }
    }
    /// The 422 for one problem here.
    pub fn invalid(self, msg: impl Into<String>) -> DomainError {
        DomainError::Validation(vec![self.problem(msg)])
    }
}

/// Every problem of a request, collected before refusing it, so a client fixes them in
/// one round.
#[derive(Debug, Default)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    /// The value, or `None` with its problem noted at `at`.
    pub fn check<T>(&mut self, at: At, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(m) => {
                self.0.push(at.problem(m));
                None
            }
        }
    }
    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Ok when there were none; else the 422 listing them all.
    pub fn into_result(self) -> Result<(), DomainError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Validation(self.0))
        }
    }
    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }
    /// One line for a list of problems (`records.3.content: ...; ...`), for per-item
    /// results of batch operations.
    pub fn summary(errors: &[FieldError]) -> String {
        errors
            .iter()
            .map(|e| {
                let loc: Vec<String> = e
                    .loc
                    .iter()
                    .map(|l| match l {
                        Loc::Field(f) => f.clone(),
                        Loc::Index(i) => i.to_string(),
                    })
                    .collect();
                format!("{}: {}", loc.join("."), e.msg)
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl From<FieldError> for DomainError {
    fn from(e: FieldError) -> Self {
        DomainError::Validation(vec![e])
    }
}

/// The class of a coded refusal, which the HTTP layer turns into a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400: the request names something that cannot be (an unknown tier, a limit).
    BadRequest,
    /// 403: the resource refuses this operation in its current state.
    Forbidden,
    /// 404.
    NotFound,
    /// 409.
    Conflict,
    /// 413: more bytes than the limit.
    TooLarge,
}

impl DomainError {
    pub fn coded(kind: Refusal, code: &'static str, detail: impl Into<String>) -> Self {
        DomainError::Coded {
            kind,
            code,
            detail: detail.into(),
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
    /// A refusal the API names with a code of its own (seed 004's `INVALID_TIER`,
    /// `PROJECT_LIMIT_EXCEEDED`, `PROJECT_NOT_FOUND`, …).
    #[error("{detail}")]
    Coded {
        kind: Refusal,
        code: &'static str,
        detail: String,
    },
    /// Storage is throttling; the client should retry.
    #[error("service busy")]
    Unavailable { retry_after_secs: u64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Throttled => DomainError::Unavailable {
                retry_after_secs: 1,
            },
            StoreError::BadCursor => At::query("cursor").invalid(
                "cursor is not one this API issued; pass next_cursor from the previous page unchanged",
            ),
            StoreError::TooLarge(n) => At::body_root().invalid(format!(
                    "record is {n} bytes once stored, over the 400 KB limit; send less content"
                ),
            ),
            other => DomainError::Unexpected(anyhow::Error::new(other)),
        }
    }
}
