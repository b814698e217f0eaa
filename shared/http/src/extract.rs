//! Request extractors that turn every client mistake into a 4xx that says what to fix:
//! JSON bodies (422 with `{loc, msg, type}`), query strings, and credentials.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use zerodb_domain::auth::{Credential, Principal};
use zerodb_domain::{At, AuthFailure, Context, DomainError, Loc};

use crate::error::ApiError;

/// Largest body any endpoint reads: Lambda's 6 MB payload limit.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// A JSON body; every parse failure is a 422 naming the field.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// A JSON body that may be absent (clients POST with `Content-Type: application/json`
/// and no body); an empty body gives `T::default()`.
#[derive(Debug, Clone)]
pub struct OptionalJson<T>(pub T);

/// The whole body: 413 past the size limit, 408 past zerodb-local's body deadline.
pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state)
        .await
        .map_err(|e| match crate::deadline::timed_out(&e) {
            Some(after) => ApiError::BodyTimedOut(after),
            None => ApiError::PayloadTooLarge(MAX_BODY_BYTES),
        })
}

/// Parses JSON, mapping serde's errors to `{loc, msg, type}`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DomainError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let mut loc: Vec<Loc> = vec![Loc::from("body")];
        for seg in err.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => loc.push(Loc::Index(*index)),
                serde_path_to_error::Segment::Map { key } => loc.push(Loc::Field(key.clone())),
                serde_path_to_error::Segment::Enum { variant } => {
                    loc.push(Loc::Field(variant.clone()))
                }
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        let inner = err.into_inner();
        let text = inner.to_string();
        // serde_json appends " at line L column C"; keep it only for syntax errors.
        let bare = text.split(" at line ").next().unwrap_or(&text).to_owned();
        let e = if inner.is_syntax() || inner.is_eof() {
            At::segments(loc).problem_of(
                format!("body is not valid JSON: {text}"),
                "value_error.jsondecode",
            )
        } else if let Some(field) = bare
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'))
        {
            loc.push(Loc::Field(field.to_owned()));
            At::segments(loc).problem_of("field required", "value_error.missing")
        } else if bare.starts_with("invalid type")
            || bare.starts_with("invalid value")
            || bare.starts_with("invalid length")
        {
            At::segments(loc).problem_of(bare, "type_error")
        } else {
            At::segments(loc).problem_of(bare, "value_error")
        };
        DomainError::from(e)
    })
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(DomainError::from(At::body_root().problem_of(
                "request body is required: send a JSON object",
                "value_error.missing",
            ))
            .into());
        }
        require_object(&bytes)?;
        Ok(ApiJson(parse_json(&bytes)?))
    }
}

/// Every request body of this API is a JSON object. serde would otherwise also accept a
/// struct written as an array of its fields (`[null, null]`), which no client means.
fn require_object(bytes: &[u8]) -> Result<(), DomainError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(()),
        _ => Err(At::body_root()
            .problem_of(
                "request body must be a JSON object, e.g. {\"name\": ...}",
                "type_error.dict",
            )
            .into()),
    }
}

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        // No body, or JSON null, means "no options".
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() || trimmed == b"null" {
            return Ok(OptionalJson(T::default()));
        }
        require_object(trimmed)?;
        Ok(OptionalJson(parse_json(trimmed)?))
    }
}

/// An optional integer that also accepts a number with no fractional part (`570.0`),
/// which JSON Schema counts as an integer and some JSON encoders emit.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::Deserialize;
    use serde::de::Error;
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Some(i)),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
            _ => Err(D::Error::custom(format!(
                "invalid type: expected a whole number, found {n}"
            ))),
        },
    }
}

/// Query-string parameters; a bad one is a 422 naming it.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded_deserializer(q);
        de.map(ApiQuery).map_err(|msg| {
            DomainError::from(At::segments(vec![Loc::from("query")]).problem(msg)).into()
        })
    }
}

fn serde_urlencoded_deserializer<T: DeserializeOwned>(q: &str) -> Result<T, String> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{q}")
            .parse()
            .map_err(|_| "malformed query string".to_owned())?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|e| e.body_text())
}

/// `X-Project-ID`, when sent: the project a route without one in its path acts on
/// (ainative-agent's `/public/...` routes; zerodb-mem0 sends it too). Sent but blank or
/// not text is a 422.
pub fn named_project(headers: &HeaderMap) -> Result<Option<&str>, DomainError> {
    match headers.get("x-project-id") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Some)
            .ok_or_else(|| At::header("X-Project-ID").invalid("X-Project-ID is a project id")),
    }
}

/// The address a request came from, where the runtime knows it (zerodb-local's TCP
/// peer, API Gateway's `sourceIp` on Lambda), put in the request's extensions by the
/// server. Absent when a test drives the router directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::IpAddr);

/// The authenticated caller; extracting it checks the credential and counts the request
/// against the key's rate limit.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

/// Finds the credential: a Bearer value that parses as a JWT is a token; otherwise an
/// API key from `X-API-Key` or, failing that, from `Authorization: Bearer` (the seeds'
/// examples and several official clients send keys that way).
pub fn credential(headers: &HeaderMap) -> Option<Credential<'_>> {
    let api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|v| !v.is_empty());
    match (bearer.map(Credential::classify), api_key) {
        (Some(token @ Credential::Token(_)), _) => Some(token),
        (_, Some(key)) => Some(Credential::ApiKey(key)),
        (Some(key), None) => Some(key),
        (None, None) => None,
    }
}

/// Any group state that holds the process [`Context`] can authenticate.
impl<S> FromRequestParts<S> for Auth
where
    S: Send + Sync,
    Context: FromRef<S>,
{
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let cred =
            credential(&parts.headers).ok_or(DomainError::Unauthenticated(AuthFailure::Missing))?;
        let ctx = Context::from_ref(state);
        Ok(Auth(ctx.auth().authorize_request(cred).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerodb_domain::FieldError;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        scopes: Vec<String>,
        ttl_seconds: Option<i64>,
    }

    fn err_of(json: &str) -> FieldError {
        match parse_json::<Body>(json.as_bytes()) {
            Err(DomainError::Validation(mut v)) => v.remove(0),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn missing_fields_are_named_in_loc() {
        let e = err_of(r#"{"scopes": []}"#);
        assert_eq!(
            serde_json::to_value(&e.loc).unwrap(),
            serde_json::json!(["body", "name"])
        );
        assert_eq!(e.kind, "value_error.missing");
    }

    #[test]
    fn wrong_types_point_at_the_element() {
        let e = err_of(r#"{"name": "x", "scopes": ["a", 5]}"#);
        assert_eq!(
            serde_json::to_value(&e.loc).unwrap(),
            serde_json::json!(["body", "scopes", 1])
        );
        assert_eq!(e.kind, "type_error");
    }

    #[test]
    fn broken_json_is_a_decode_error() {
        let e = err_of(r#"{"name": "#);
        assert_eq!(e.kind, "value_error.jsondecode");
    }

    #[test]
    fn bearer_jwt_wins_otherwise_x_api_key_then_bearer_key() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "sk_a".parse().unwrap());
        h.insert(header::AUTHORIZATION, "Bearer sk_b".parse().unwrap());
        assert!(matches!(credential(&h), Some(Credential::ApiKey("sk_a"))));
        h.insert(
            header::AUTHORIZATION,
            "Bearer eyJh.eyJz.c2ln".parse().unwrap(),
        );
        assert!(matches!(credential(&h), Some(Credential::Token(_))));
        h.remove("x-api-key");
        h.insert(header::AUTHORIZATION, "Bearer sk_b".parse().unwrap());
        assert!(matches!(credential(&h), Some(Credential::ApiKey("sk_b"))));
        assert!(credential(&HeaderMap::new()).is_none());
    }
}
