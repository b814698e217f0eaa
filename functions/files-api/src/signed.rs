//! The URLs this server signs where the store cannot presign (zerodb-local's embedded
//! store): `PUT` stores a pending file's bytes, `GET` returns a stored file's. No
//! credential: the token in the path names account, project, file, method and expiry
//! under an HMAC-SHA256 (the key derived from the token secret), as S3's presigned URLs
//! do. An upload may be as large as one file may be (`ZERODB_FILE_MAX_BYTES`, default
//! 100 MiB), so this route reads its body itself instead of through the 6 MB limit of
//! every other route; on zerodb-local the body must still arrive within
//! `ZERODB_BODY_TIMEOUT_SECS`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures::StreamExt;
use zerodb_domain::{DomainError, Refusal};
use zerodb_http::{ApiError, ApiResult};
use zerodb_projects::files::{Files, UrlMethod};

use crate::wire::{FileView, bytes_response, view};

/// Most bytes reserved ahead from a `Content-Length`: what a client claims is not
/// trusted to size a buffer.
const MAX_RESERVE: usize = 8 * 1024 * 1024;
/// Most bytes of a refused body read and dropped before answering 413.
const MAX_DRAIN: u64 = 128 * 1024 * 1024;

fn too_large(limit: u64) -> ApiError {
    DomainError::coded(
        Refusal::TooLarge,
        "FILE_TOO_LARGE",
        format!("The body is more than {limit} bytes, the most this upload takes (its declared size, or ZERODB_FILE_MAX_BYTES when none was declared)"),
    )
    .into()
}

/// The whole body, refused with 413 once it passes `limit`. The rest of a refused body is
/// still read (and dropped, up to [`MAX_DRAIN`] bytes) before answering: a client that
/// writes its whole body before reading, as most HTTP clients do, would otherwise see the
/// connection reset instead of the 413. A body past the deadline of zerodb-local is 408.
async fn read_body(body: Body, headers: &HeaderMap, limit: u64) -> ApiResult<Vec<u8>> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit.saturating_add(MAX_DRAIN)) {
        return Err(too_large(limit));
    }
    let mut out = Vec::with_capacity(
        declared
            .map_or(0, |n| n.min(limit) as usize)
            .min(MAX_RESERVE),
    );
    let mut dropped: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(_) if dropped > 0 => return Err(too_large(limit)),
            Err(e) => {
                return Err(match zerodb_http::deadline::timed_out(&e) {
                    Some(after) => ApiError::BodyTimedOut(after),
                    None => DomainError::coded(
                        Refusal::BadRequest,
                        "BODY_INCOMPLETE",
                        "The request body could not be read in full; send it again",
                    )
                    .into(),
                });
            }
        };
        if dropped > 0 || (out.len() + chunk.len()) as u64 > limit {
            out = Vec::new();
            dropped += chunk.len() as u64;
            if dropped > MAX_DRAIN {
                break;
            }
            continue;
        }
        out.extend_from_slice(&chunk);
    }
    if dropped > 0 {
        return Err(too_large(limit));
    }
    Ok(out)
}

/// Stores the bytes of a pending file (the body, as is); emits `zerodb.file.uploaded`.
/// 403 `SIGNED_URL_INVALID` / `SIGNED_URL_EXPIRED`, 413 `FILE_TOO_LARGE`, 409
/// `FILE_ALREADY_UPLOADED`.
#[utoipa::path(put, operation_id = "signed_file_put", path = "/api/v1/public/files/signed/{token}", tag = "files",
    params(("token" = String, Path, description = "As issued in an upload URL")),
    request_body = Vec<u8>,
    responses((status = 200, body = FileView),
        (status = 403, description = "SIGNED_URL_INVALID or SIGNED_URL_EXPIRED", body = zerodb_http::ErrorBody),
        (status = 413, description = "FILE_TOO_LARGE", body = zerodb_http::ErrorBody)))]
pub async fn put(
    State(f): State<Files>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<FileView>> {
    let grant = f.verify(&token, UrlMethod::Put)?;
    // Refused before a byte of the body is read: a used or stale URL costs no memory.
    let (p, r, most) = f.put_allowed(&grant).await?;
    // One byte past the declared size is read, so a body of the wrong size is told so
    // (422) rather than only that it is too large.
    let bytes = read_body(
        body,
        &headers,
        most.saturating_add(1).min(f.limits().max_bytes.max(most)),
    )
    .await?;
    Ok(Json(view(&f.put_signed(p, r, bytes).await?)))
}

/// A stored file's bytes.
#[utoipa::path(get, operation_id = "signed_file_get", path = "/api/v1/public/files/signed/{token}", tag = "files",
    params(("token" = String, Path, description = "As issued in a download URL")),
    responses((status = 200, description = "The bytes", body = Vec<u8>),
        (status = 403, description = "SIGNED_URL_INVALID or SIGNED_URL_EXPIRED", body = zerodb_http::ErrorBody)))]
pub async fn get(State(f): State<Files>, Path(token): Path<String>) -> ApiResult<Response> {
    let grant = f.verify(&token, UrlMethod::Get)?;
    let (r, bytes) = f.get_signed(&grant).await?;
    Ok(bytes_response(&r, bytes))
}
