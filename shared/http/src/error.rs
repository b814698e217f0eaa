//! The API's error envelope, produced in exactly one place: `{"detail", "error_code"}`,
//! 422 with a list of `{loc, msg, type}`, 429 and 503 with an integer `Retry-After`.
//! A 5xx says nothing internal; the full error chain is logged once, here.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use zerodb_domain::{AuthFailure, DomainError, FieldError, Refusal};

/// The error body every endpoint returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong and how to fix it.
    pub detail: String,
    /// Machine-readable code: AUTH_001–AUTH_003, PERM_001, API_404, RATE_LIMIT_EXCEEDED, …
    pub error_code: String,
}

/// A validation failure (422).
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationErrorBody {
    #[schema(value_type = Vec<Object>)]
    pub detail: Vec<FieldError>,
    /// Always `VALIDATION_ERROR`.
    pub error_code: String,
}

/// Every failure a handler can return.
#[derive(Debug)]
pub enum ApiError {
    Domain(DomainError),
    /// The route exists but not with this method.
    MethodNotAllowed,
    NoRoute,
    PayloadTooLarge(usize),
    /// The body did not arrive in full within this (zerodb-local's body deadline).
    BodyTimedOut(std::time::Duration),
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError::Domain(e)
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::Domain(e.into())
    }
}

impl From<zerodb_domain::store::StoreError> for ApiError {
    fn from(e: zerodb_domain::store::StoreError) -> Self {
        ApiError::Domain(e.into())
    }
}

/// The error body with its status: the one shape every group's errors take.
pub fn envelope(status: StatusCode, code: &str, detail: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            detail: detail.into(),
            error_code: code.to_owned(),
        }),
    )
        .into_response()
}

fn with_retry_after(mut resp: Response, secs: u64) -> Response {
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::NoRoute => envelope(
                StatusCode::NOT_FOUND,
                "API_404",
                "No such endpoint; see /openapi.json for the routes this server serves",
            ),
            ApiError::MethodNotAllowed => envelope(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "This endpoint does not accept that HTTP method; see /openapi.json",
            ),
            ApiError::PayloadTooLarge(limit) => envelope(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!("Request body is over the {limit}-byte limit; send less"),
            ),
            ApiError::BodyTimedOut(after) => envelope(
                StatusCode::REQUEST_TIMEOUT,
                "REQUEST_TIMEOUT",
                format!(
                    "The request body did not arrive within {} s; send it whole, at once",
                    after.as_secs()
                ),
            ),
            ApiError::Domain(e) => domain_response(e),
        }
    }
}

fn domain_response(e: DomainError) -> Response {
    match e {
        DomainError::Unauthenticated(why) => {
            let (code, detail) = match why {
                AuthFailure::Missing => (
                    "AUTH_001",
                    "Missing credentials: send your API key in X-API-Key (or Authorization: Bearer), or a token in Authorization: Bearer",
                ),
                AuthFailure::Unknown => ("AUTH_001", "Invalid API key"),
                AuthFailure::Expired => {
                    ("AUTH_002", "Credential expired: create a new key or token")
                }
                AuthFailure::Revoked => ("AUTH_003", "API key has been revoked"),
                AuthFailure::InvalidToken => (
                    "AUTH_003",
                    "Token is invalid: its signature or claims do not verify",
                ),
            };
            let mut resp = envelope(StatusCode::UNAUTHORIZED, code, detail);
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            resp
        }
        DomainError::Forbidden(detail) => envelope(StatusCode::FORBIDDEN, "PERM_001", detail),
        DomainError::NotFound(detail) => envelope(StatusCode::NOT_FOUND, "API_404", detail),
        DomainError::Conflict(detail) => envelope(StatusCode::CONFLICT, "CONFLICT", detail),
        DomainError::Validation(errors) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(ValidationErrorBody {
                detail: errors,
                error_code: "VALIDATION_ERROR".into(),
            }),
        )
            .into_response(),
        DomainError::RateLimited { retry_after_secs } => with_retry_after(
            envelope(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMIT_EXCEEDED",
                format!("Rate limit exceeded for this key; retry after {retry_after_secs} s"),
            ),
            retry_after_secs,
        ),
        DomainError::Coded { kind, code, detail } => {
            let status = match kind {
                Refusal::BadRequest => StatusCode::BAD_REQUEST,
                Refusal::Forbidden => StatusCode::FORBIDDEN,
                Refusal::NotFound => StatusCode::NOT_FOUND,
                Refusal::Conflict => StatusCode::CONFLICT,
                Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            };
            envelope(status, code, detail)
        }
        DomainError::InsufficientCredits(detail) => {
            envelope(StatusCode::PAYMENT_REQUIRED, "INSUFFICIENT_CREDITS", detail)
        }
        DomainError::Unavailable { retry_after_secs } => with_retry_after(
            envelope(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "Storage is busy; retry shortly",
            ),
            retry_after_secs,
        ),
        DomainError::Unexpected(err) => {
            tracing::error!(error = format!("{err:#}"), "unexpected error");
            envelope(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "Internal server error",
            )
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
