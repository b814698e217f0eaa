//! This group's errors on the wire: the ZeroDB envelope (`detail`, `error_code`) every
//! endpoint returns, plus the `error` object of the endpoint's own format, so the official
//! `anthropic` and `openai` SDKs raise their typed errors (RateLimitError, …) from it.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use zerodb_domain::DomainError;
use zerodb_http::ApiError;
use zerodb_http::error::envelope;

use crate::gateway::GatewayError;
use crate::provider::ProviderError;

/// Largest error body the format layer rewrites; ours are far smaller.
const MAX_ERROR_BODY: usize = 64 * 1024;

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

impl InferenceError {
    /// The error code a usage record keeps.
    pub fn code(&self) -> &'static str {
        match self {
            InferenceError::Api(_) => "API_ERROR",
            InferenceError::Gateway(e) => gateway_status(e).1,
        }
    }
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
            ProviderError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "PROVIDER_TIMEOUT", None),
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

/// Which format an endpoint speaks, from its path.
fn is_anthropic(path: &str) -> bool {
    path == "/v1/messages"
}

/// Middleware on this group's routes: adds the format's `error` object to every error
/// response (the gateway's, and the shared ones: auth, scope, rate limit, body limit).
pub async fn format_errors(req: Request, next: Next) -> Response {
    let anthropic = is_anthropic(req.uri().path());
    let resp = next.run(req).await;
    if resp.status().is_success() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "error body unreadable").into_response();
    };
    let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let message = match obj.get("detail") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let code = obj
        .get("error_code")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let status = parts.status.as_u16();
    if anthropic {
        obj.insert("type".into(), json!("error"));
        obj.insert(
            "error".into(),
            json!({"type": anthropic_type(status), "message": message}),
        );
    } else {
        obj.insert(
            "error".into(),
            json!({"message": message, "type": openai_type(status), "param": null, "code": code.to_ascii_lowercase()}),
        );
    }
    let bytes = serde_json::to_vec(&obj).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

/// Anthropic's error types (docs.anthropic.com, "Errors").
fn anthropic_type(status: u16) -> &'static str {
    match status {
        400 | 405 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// OpenAI's error types.
fn openai_type(status: u16) -> &'static str {
    match status {
        400 | 405 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "insufficient_quota",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        _ => "server_error",
    }
}
