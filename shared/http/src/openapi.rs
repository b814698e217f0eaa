//! The OpenAPI 3.1 document: generated from the handlers' annotations, merged across
//! endpoint groups, and served at `/openapi.json`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use bytes::Bytes;
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::error::{ErrorBody, ValidationErrorBody};
use crate::routes;
use crate::routes::Routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ZeroDB (self-hosted)",
        description = "Scoped credentials, agent memory, quarantine, inference and agent state. \
Errors are `{detail, error_code}`; 422 lists `{loc, msg, type}`; 429 carries `Retry-After`."
    ),
    components(schemas(ErrorBody, ValidationErrorBody)),
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

/// The rendered document, served as is.
#[derive(Clone)]
pub struct OpenApiJson(pub Bytes);

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json(State(OpenApiJson(json)): State<OpenApiJson>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], json)
}

/// The base document (info, security schemes, shared schemas) merged with each group's.
pub fn document<'a>(
    groups: impl IntoIterator<Item = &'a utoipa::openapi::OpenApi>,
) -> utoipa::openapi::OpenApi {
    let mut doc = Base::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    for g in groups {
        doc.merge(g.clone());
    }
    doc
}

/// Health and the document itself: public routes that touch no storage, served by
/// whichever function answers for the API as a whole (auth-api on AWS).
pub fn meta_routes() -> Routes<OpenApiJson> {
    Routes::public(routes!(
        crate::health::health,
        crate::health::public_health,
        openapi_json
    ))
}

/// Responses every authenticated operation may give; [`Routes::authenticated`] adds them
/// to each of its operations.
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

/// Responses every route on a project's data may give; groups add them with
/// [`Routes::responding`].
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum DataErrors {
    /// A refusal with its own code (INVALID_TIER, PROJECT_LIMIT_EXCEEDED, QUERY_TOO_BROAD, …).
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// PROJECT_NOT_FOUND (also another account's project), TABLE_NOT_FOUND, API_404.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// TABLE_EXISTS, ROW_EXISTS, or a concurrent change.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// Over the request body limit.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// Validation failed: `{loc, msg, type}` per problem.
    #[response(status = 422)]
    Invalid(ValidationErrorBody),
}
