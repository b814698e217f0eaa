//! This group's errors on the wire: the ZeroDB envelope (`detail`, `error_code`) every
//! endpoint returns; `zerodb_http::vendor::error_objects` then adds the `error` object of
//! the endpoint's own format, so the official `anthropic` and `openai` SDKs raise their
//! typed errors (RateLimitError, …) from it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use zerodb_domain::DomainError;
use zerodb_http::ApiError;
use zerodb_http::error::envelope;

use zerodb_inference::gateway::GatewayError;
use zerodb_inference::provider::ProviderError;

#[derive(Debug)]
pub enum InferenceError {
    Api(ApiError),
    Gateway(GatewayError),
}

impl From<DomainError> for InferenceError {
    fn from(e: DomainError) -> Self {
        InferenceError::Api(e.into())
    }
}

impl From<zerodb_domain::store::StoreError> for InferenceError {
    fn from(e: zerodb_domain::store::StoreError) -> Self {
        InferenceError::Api(e.into())
    }
}

impl From<GatewayError> for InferenceError {
    fn from(e: GatewayError) -> Self {
        InferenceError::Gateway(e)
    }
}

/// The error code a gateway failure answers with (kept in its usage record).
pub fn code_of(e: &GatewayError) -> &'static str {
    gateway_status(e).1
}

/// Status, error code and the Retry-After to send, per gateway failure.
fn gateway_status(e: &GatewayError) -> (StatusCode, &'static str, Option<u64>) {
    match e {
        GatewayError::BadRequest(_) | GatewayError::Untranslatable(_) => {
            (StatusCode::BAD_REQUEST, "INVALID_REQUEST", None)
        }
        GatewayError::UnknownModel(_) => (StatusCode::BAD_REQUEST, "MODEL_NOT_FOUND", None),
        GatewayError::BadUpstream { .. } => (StatusCode::BAD_GATEWAY, "PROVIDER_ERROR", None),
        GatewayError::Provider(p) => match p {
            ProviderError::Status {
                status: 429,
                retry_after,
                ..
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                "API_429",
                Some(retry_after.unwrap_or(1)),
            ),
            // The deployment's key was refused: not the caller's credential.
            ProviderError::Status {
                status: 401 | 403, ..
            } => (StatusCode::BAD_GATEWAY, "PROVIDER_AUTH_FAILED", None),
            ProviderError::Status { status, .. } if (400..500).contains(status) => {
                (StatusCode::BAD_REQUEST, "PROVIDER_REJECTED", None)
            }
            ProviderError::Status { .. } | ProviderError::Unreachable { .. } => {
                (StatusCode::BAD_GATEWAY, "PROVIDER_ERROR", None)
            }
            ProviderError::Timeout { .. } => {
                (StatusCode::GATEWAY_TIMEOUT, "PROVIDER_TIMEOUT", None)
            }
            ProviderError::NoKey { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "PROVIDER_NOT_CONFIGURED",
                None,
            ),
        },
    }
}

impl IntoResponse for InferenceError {
    fn into_response(self) -> Response {
        match self {
            InferenceError::Api(e) => e.into_response(),
            InferenceError::Gateway(e) => {
                let (status, code, retry_after) = gateway_status(&e);
                let detail = match &e {
                    GatewayError::BadRequest(m) => format!("invalid request body: {m}"),
                    other => other.to_string(),
                };
                if status.is_server_error() {
                    tracing::warn!(error_code = code, error = %e, "inference call failed");
                }
                let mut resp = envelope(status, code, detail);
                if let Some(secs) = retry_after {
                    resp.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
                }
                resp
            }
        }
    }
}
