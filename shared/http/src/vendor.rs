//! Error bodies that vendors' SDKs can read: on endpoints that speak Anthropic's or
//! OpenAI's format, every error response (the endpoint's own, and the shared ones: auth,
//! scope, rate limit, body limit) keeps the ZeroDB envelope and gains that format's
//! `error` object, so the official `anthropic` and `openai` SDKs raise their typed errors
//! (AuthenticationError, RateLimitError, …) with our message.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Largest error body rewritten; ours are far smaller.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Which format an endpoint speaks, from its path.
fn is_anthropic(path: &str) -> bool {
    path == "/v1/messages"
}

/// Middleware (`axum::middleware::from_fn`) for the routes of a vendor format: the
/// Anthropic format on `/v1/messages`, OpenAI's on every other path.
pub async fn error_objects(req: Request, next: Next) -> Response {
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
