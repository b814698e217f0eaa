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
    /// A call that reached (or tried) a provider and failed; `names_settings` lets the
    /// message name the variable or secret to set (zerodb-local).
    Provider {
        error: GatewayError,
        names_settings: bool,
    },
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

/// What the client is told about a failure. The request's own mistakes are named; a
/// provider's failure gets a plain message only: its URL, its body and the deployment's
/// variable and secret names go to the log (`names_settings`: the variable or secret to
/// set may be named, for zerodb-local's operator).
fn client_detail(e: &GatewayError, names_settings: bool) -> String {
    match e {
        GatewayError::BadRequest(m) => format!("invalid request body: {m}"),
        GatewayError::UnknownModel(_) | GatewayError::Untranslatable(_) => e.to_string(),
        GatewayError::BadUpstream { .. } => {
            "The model provider sent a reply that could not be read; try again later".to_owned()
        }
        GatewayError::Provider(p) => match p {
            ProviderError::Status { status: 429, .. } => {
                "The model provider is rate limiting this deployment; retry after the Retry-After seconds".to_owned()
            }
            ProviderError::Status {
                status: 401 | 403, ..
            } => "The model provider refused this deployment's API key; the deployment's operator has to check it".to_owned(),
            ProviderError::Status { status, .. } if (400..500).contains(status) => format!(
                "The model provider rejected the request (HTTP {status}); check its parameters (max_tokens, messages, tools) against the model's limits"
            ),
            ProviderError::Status { status, .. } => {
                format!("The model provider failed (HTTP {status}); try again later")
            }
            ProviderError::Unreachable { .. } => {
                "The model provider could not be reached; try again later".to_owned()
            }
            ProviderError::Timeout { seconds, .. } => format!(
                "The model provider did not answer within {seconds} s; try again, or ask for fewer tokens"
            ),
            ProviderError::NoKey { .. } if names_settings => p.to_string(),
            ProviderError::NoKey { .. } => {
                "This model's provider has no API key configured on this deployment; the deployment's operator has to add it".to_owned()
            }
        },
    }
}

impl IntoResponse for InferenceError {
    fn into_response(self) -> Response {
        let (e, names_settings) = match self {
            InferenceError::Api(e) => return e.into_response(),
            InferenceError::Gateway(e) => (e, false),
            InferenceError::Provider {
                error,
                names_settings,
            } => (error, names_settings),
        };
        let (status, code, retry_after) = gateway_status(&e);
        let detail = client_detail(&e, names_settings);
        // The provider's own words (and URL, and what is unset) are for the operator.
        if matches!(
            e,
            GatewayError::Provider(_) | GatewayError::BadUpstream { .. }
        ) {
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
