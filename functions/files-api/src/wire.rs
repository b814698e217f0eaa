//! What both forms of the file routes share: the file as clients read it, the checks of
//! a name, type, metadata and inline content, the URL of a link, and the response that
//! carries a file's bytes.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use zerodb_domain::clock::rfc3339_secs;
use zerodb_domain::{At, DomainError, Problems};
use zerodb_projects::files::{
    DEFAULT_URL_SECS, FileRecord, FileUrl, Files, Link, MAX_URL_SECS, NewFile, check_content_type,
    check_metadata, check_name,
};

/// Where this server serves the URLs it signs itself.
pub const SIGNED_PATH: &str = "/api/v1/public/files/signed";

/// A file as clients read it: ainative-agent's `FileRecord` (`id, name, content_type,
/// size, created_at`), the MCP names (`file_id, file_name, file_size, checksum`) and
/// seed 002's (`size_bytes`). No string field is ever null.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileView {
    pub id: String,
    pub file_id: String,
    pub name: String,
    pub file_name: String,
    pub content_type: String,
    /// Bytes stored (0 while pending).
    pub size: i64,
    pub size_bytes: i64,
    pub file_size: i64,
    /// `stored`, or `pending` until its bytes are uploaded.
    pub status: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// SHA-256 of the bytes (hex) where they passed through the API; "" otherwise.
    pub checksum: String,
    pub project_id: String,
    pub created_at: String,
    pub updated_at: String,
}

pub fn view(r: &FileRecord) -> FileView {
    FileView {
        id: r.id.clone(),
        file_id: r.id.clone(),
        name: r.name.clone(),
        file_name: r.name.clone(),
        content_type: r.content_type.clone(),
        size: r.size,
        size_bytes: r.size,
        file_size: r.size,
        status: r.status.as_str().to_owned(),
        metadata: r.metadata(),
        checksum: r.sha256.clone().unwrap_or_default(),
        project_id: r.project_id.clone(),
        created_at: rfc3339_secs(r.created_at),
        updated_at: rfc3339_secs(r.updated_at),
    }
}

/// A URL for a file's bytes.
#[derive(Debug, Serialize, ToSchema)]
pub struct UrlView {
    pub url: String,
    /// `GET` to download a stored file, `PUT` to upload a pending one's bytes.
    pub method: String,
    pub file_id: String,
    pub expires_in: u64,
    pub expires_at: String,
}

pub fn url_view(
    file_id: &str,
    u: FileUrl,
    expires_in: u64,
    headers: &HeaderMap,
    uri: &Uri,
) -> UrlView {
    UrlView {
        url: link_url(u.link, headers, uri),
        method: u.method.as_str().to_owned(),
        file_id: file_id.to_owned(),
        expires_in,
        expires_at: rfc3339_secs(u.expires_at),
    }
}

/// The file's name, type and metadata, every problem reported at once. `file_name` and
/// `name` are the same field as the two families of clients spell it.
pub fn new_file(
    files: &Files,
    file_name: Option<String>,
    name: Option<String>,
    content_type: Option<String>,
    metadata: Option<Value>,
) -> Result<NewFile, DomainError> {
    let mut problems = Problems::default();
    let (name, at) = match (file_name, name) {
        (Some(n), _) => (Some(n), "file_name"),
        (None, Some(n)) => (Some(n), "name"),
        (None, None) => (None, "file_name"),
    };
    match &name {
        None => problems.push(At::body(at).problem_of("field required", "value_error.missing")),
        Some(n) => {
            problems.check(At::body(at), check_name(n, files.limits().name_bytes));
        }
    }
    let content_type = problems.check(
        At::body("content_type"),
        check_content_type(content_type.as_deref()),
    );
    let metadata = problems.check(At::body("metadata"), check_metadata(metadata));
    problems.into_result()?;
    Ok(NewFile {
        name: name.unwrap_or_default(),
        content_type: content_type.unwrap_or_default(),
        metadata: metadata.unwrap_or_default(),
    })
}

/// Decodes inline content: base64, standard or URL-safe alphabet, padded or not, line
/// breaks ignored; then its size against the inline limit (413) and, when a SHA-256 was
/// sent with it, the bytes against that (422).
pub fn decode_content(
    files: &Files,
    text: &str,
    checksum: Option<&str>,
    at: At,
) -> Result<Vec<u8>, DomainError> {
    let cleaned: String;
    let text = if text.bytes().any(|b| b.is_ascii_whitespace()) {
        cleaned = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        cleaned.as_str()
    } else {
        text
    };
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let alphabet = if text.contains(['-', '_']) {
        &base64::alphabet::URL_SAFE
    } else {
        &base64::alphabet::STANDARD
    };
    let bytes = GeneralPurpose::new(alphabet, config)
        .decode(text)
        .map_err(|e| {
            at.clone()
                .invalid(format!("content_base64 is not base64: {e}"))
        })?;
    files.check_inline(bytes.len() as u64)?;
    if let Some(sum) = checksum.map(str::trim).filter(|s| !s.is_empty()) {
        let actual = hex::encode(Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(sum) {
            return Err(At::body("checksum").invalid(format!(
                "checksum does not match the content: its SHA-256 is {actual}"
            )));
        }
    }
    Ok(bytes)
}

/// A URL's lifetime: 1 s to 7 days, 1 hour unless asked.
pub fn expires_in(asked: Option<i64>, at: At) -> Result<u64, DomainError> {
    match asked {
        None => Ok(DEFAULT_URL_SECS),
        Some(n) if (1..=MAX_URL_SECS as i64).contains(&n) => Ok(n as u64),
        Some(_) => Err(at.invalid(format!("expires_in is 1–{MAX_URL_SECS} seconds (7 days)"))),
    }
}

/// A list's page size: 1–1000, 100 unless asked.
pub fn page_limit(asked: Option<usize>) -> Result<usize, DomainError> {
    let limit = asked.unwrap_or(100);
    if !(1..=zerodb_projects::files::MAX_PAGE).contains(&limit) {
        return Err(At::query("limit").invalid("limit is 1–1000"));
    }
    Ok(limit)
}

/// A name prefix to list by: what a name may hold, possibly nothing.
pub fn prefix(files: &Files, p: Option<String>) -> Result<Option<String>, DomainError> {
    match p.filter(|p| !p.is_empty()) {
        None => Ok(None),
        Some(p) => {
            check_name(&p, files.limits().name_bytes)
                .map_err(|m| At::query("prefix").invalid(m.replace("file name", "prefix")))?;
            Ok(Some(p))
        }
    }
}

/// This server's address as the client reached it, for the URLs it signs: `Host` (or
/// the HTTP/2 authority), `https` when a proxy says the client used it.
pub fn base_url(headers: &HeaderMap, uri: &Uri) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        })
        .unwrap_or("localhost");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// A link as a URL: the store's own, or this server's signed route.
pub fn link_url(link: Link, headers: &HeaderMap, uri: &Uri) -> String {
    match link {
        Link::Direct(u) => u,
        Link::Signed(token) => format!("{}{SIGNED_PATH}/{token}", base_url(headers, uri)),
    }
}

pub use zerodb_http::extract::named_project;

/// `attachment` with the name's last segment, ASCII and RFC 5987 forms.
fn disposition(name: &str) -> HeaderValue {
    let base = name
        .rsplit('/')
        .next()
        .filter(|b| !b.is_empty())
        .unwrap_or("file");
    let ascii: String = base
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() || c == ' ') && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(base.len());
    for b in base.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// A file's bytes as a download: its content type, as an attachment that browsers
/// neither sniff nor run (uploaded HTML must not run on the API's origin).
pub fn bytes_response(r: &FileRecord, bytes: Vec<u8>) -> Response {
    let content_type = HeaderValue::from_str(&r.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition(&r.name)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; sandbox"),
            ),
        ],
        Body::from(bytes),
    )
        .into_response()
}

/// A redirect to where the bytes are (S3, for files too large for a Lambda response).
pub fn redirect(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(location) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        Err(_) => zerodb_http::ApiError::from(DomainError::Unexpected(anyhow::anyhow!(
            "a presigned URL is not a header value"
        )))
        .into_response(),
    }
}
