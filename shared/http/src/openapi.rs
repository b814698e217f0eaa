//! The OpenAPI 3.1 document: generated from the handlers' annotations, merged across
//! endpoint groups, and served at `/openapi.json`.

use axum::http::header;
use bytes::Bytes;
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::error::{ErrorBody, ValidationErrorBody};
use crate::routes::Routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ZeroDB (self-hosted)",
        description = "Scoped credentials, agent memory, quarantine, inference and agent state. \
Errors are `{detail, error_code}`; 422 lists `{loc, msg, type}`; 429 carries `Retry-After`."
    ),
    paths(crate::health::health, crate::health::public_health, openapi_json),
    components(schemas(ErrorBody, ValidationErrorBody, crate::health::Health)),
    modifiers(&Security)
)]
struct Base;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT or API key")
                    .build(),
            ),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
#[allow(dead_code)]
fn openapi_json() {}

/// The base document (health, meta, shared schemas) merged with each group's.
pub fn document(
    groups: impl IntoIterator<Item = utoipa::openapi::OpenApi>,
) -> utoipa::openapi::OpenApi {
    let mut doc = Base::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    for g in groups {
        doc.merge(g);
    }
    doc
}

/// Serves a document rendered once at start.
pub fn routes(json: impl Into<Bytes>) -> Routes {
    let json: Bytes = json.into();
    Routes::new().get("/openapi.json", move || {
        let json = json.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], json) }
    })
}

/// Responses every authenticated operation may give; list `AuthErrors` in an
/// operation's `responses(...)`.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum AuthErrors {
    /// Missing or unknown (AUTH_001), expired (AUTH_002) or revoked (AUTH_003) credential.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The credential lacks a scope (PERM_001).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// Rate limit exceeded (RATE_LIMIT_EXCEEDED); see `Retry-After`.
    #[response(status = 429)]
    TooManyRequests(ErrorBody),
}
