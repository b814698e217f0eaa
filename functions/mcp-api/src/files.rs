//! File operations on [`zerodb_projects::files::Files`], with files-api's checks and file
//! shape: `file:read` / `file:write` (`zerodb:*` scopes do not reach files), then the
//! project gate. Bytes travel inline in base64, up to the inline limit; a size past a
//! limit is a 422 at the param (the client retries a 413).

use base64::Engine;
use files_api::wire::{decode_content, expires_in, new_file, url_view, view};
use serde::Deserialize;
use serde_json::{Value, json};
use zerodb_domain::{DomainError, Refusal};
use zerodb_projects::files::{FileRecord, FileStatus, ensure_stored, require};
use zerodb_projects::{Access, Project};

use crate::McpApi;
use crate::rpc::{Budget, Call, Window, param, window};

/// How much `list_files` reads to count its `total`: 20 pages of up to 1000 records.
const LIST_BUDGET: Budget = Budget {
    calls: 20,
    bytes: 16 * 1024 * 1024,
};

fn to_value(v: impl serde::Serialize) -> Result<Value, DomainError> {
    serde_json::to_value(v).map_err(|e| DomainError::Unexpected(e.into()))
}

/// A 413 of the file service as a 422 at `key`, with the same message.
fn too_large_at(key: &'static str) -> impl Fn(DomainError) -> DomainError {
    move |e| match e {
        DomainError::Coded {
            kind: Refusal::TooLarge,
            detail,
            ..
        } => param(key).invalid(detail),
        e => e,
    }
}

async fn project(
    s: &McpApi,
    c: &Call<'_>,
    id: &str,
    access: Access,
) -> Result<Project, DomainError> {
    s.files.project(c.caller, id, access).await
}

#[derive(Deserialize)]
struct Upload {
    project_id: String,
    #[serde(default)]
    file_name: Option<String>,
    content_base64: String,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    checksum: Option<String>,
}

/// `upload_file`: the bytes in base64 (at most the inline limit, 4 MiB by default), their
/// SHA-256 checked against `checksum` when sent (`sha256:` before it is allowed).
pub async fn upload(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: Upload = c.params()?;
    require(c.caller, Access::Write)?;
    let new = new_file(
        &s.files,
        req.file_name,
        None,
        req.content_type,
        req.metadata,
    )?;
    let checksum = req
        .checksum
        .as_deref()
        .map(|c| c.trim())
        .map(|c| c.strip_prefix("sha256:").unwrap_or(c));
    let bytes = decode_content(
        &s.files,
        &req.content_base64,
        checksum,
        param("content_base64"),
    )
    .map_err(too_large_at("content_base64"))?;
    let p = project(s, c, &req.project_id, Access::Write).await?;
    let r = s
        .files
        .upload(&p, c.caller, new, bytes)
        .await
        .map_err(too_large_at("content_base64"))?;
    to_value(view(&r))
}

#[derive(Deserialize)]
struct One {
    project_id: String,
    file_id: String,
}

/// `download_file`: the bytes in `content_base64` (standard alphabet, padded). A file
/// over the inline limit is a 422 pointing at `generate_presigned_url`; one whose bytes
/// have not arrived, 409 `FILE_NOT_UPLOADED`.
pub async fn download(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: One = c.params()?;
    let p = project(s, c, &req.project_id, Access::Read).await?;
    let r = s.files.get(&p, &req.file_id).await?;
    ensure_stored(&r)?;
    let max = s.files.limits().inline_bytes;
    if r.size as u64 > max {
        return Err(param("file_id").invalid(format!(
            "File {} is {} bytes; download_file carries at most {max} bytes inline (ZERODB_FILE_INLINE_MAX_BYTES): use generate_presigned_url and GET the URL",
            r.id, r.size
        )));
    }
    let bytes = s.files.read(&p, &r).await?;
    let mut v = to_value(view(&r))?;
    v["content_base64"] = base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .into();
    v["encoding"] = "base64".into();
    Ok(v)
}

#[derive(Deserialize)]
struct List {
    project_id: String,
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    limit: Option<i64>,
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    offset: Option<i64>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
}

/// Whether a file is of `wanted` (its whole type, or the type before its parameters:
/// `text/plain` matches `text/plain; charset=utf-8`), in any case.
fn of_type(r: &FileRecord, wanted: &str) -> bool {
    let ct = r.content_type.trim();
    ct.eq_ignore_ascii_case(wanted)
        || ct
            .split(';')
            .next()
            .is_some_and(|base| base.trim().eq_ignore_ascii_case(wanted))
}

/// `list_files`: by name (a `prefix` of it, if given), of one `content_type` if given;
/// `total` counts every match up to 20 pages of the name index.
pub async fn list(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: List = c.params()?;
    require(c.caller, Access::Read)?;
    let w = Window::parse(req.limit, req.offset, zerodb_projects::tables::MAX_OFFSET)?;
    let prefix = files_api::wire::prefix(&s.files, req.prefix)?;
    let wanted = req
        .content_type
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let p = project(s, c, &req.project_id, Access::Read).await?;
    let found = window(
        w,
        LIST_BUDGET,
        |r: &FileRecord| r.name.len() + r.metadata.len() + 300,
        |r: &FileRecord| wanted.as_deref().is_none_or(|t| of_type(r, t)),
        |cursor| s.files.list(&p, prefix.as_deref(), 1000, cursor),
    )
    .await?;
    let files: Vec<_> = found.items.iter().map(view).collect();
    Ok(json!({
        "files": to_value(files)?,
        "total": found.total,
        "total_exact": found.exact,
        "has_more": found.has_more(&w),
        "limit": w.limit,
        "offset": w.offset,
    }))
}

/// `get_file_metadata`.
pub async fn metadata(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: One = c.params()?;
    let p = project(s, c, &req.project_id, Access::Read).await?;
    to_value(view(&s.files.get(&p, &req.file_id).await?))
}

/// `delete_file`: its record, then its bytes.
pub async fn delete(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: One = c.params()?;
    let p = project(s, c, &req.project_id, Access::Write).await?;
    let r = s.files.delete(&p, &req.file_id).await?;
    Ok(json!({"status": "success", "file_id": r.id, "deleted": true}))
}

#[derive(Deserialize)]
struct Url {
    project_id: String,
    file_id: String,
    #[serde(default, deserialize_with = "zerodb_http::extract::whole_number")]
    expires_in: Option<i64>,
}

/// `generate_presigned_url`: a GET URL for a stored file (S3's presigned URL on AWS,
/// one this server signs locally); a pending file's is its PUT URL, which takes
/// `file:write`.
pub async fn presigned_url(s: &McpApi, c: &Call<'_>) -> Result<Value, DomainError> {
    let req: Url = c.params()?;
    let expires = expires_in(req.expires_in, param("expires_in"))?;
    let p = project(s, c, &req.project_id, Access::Read).await?;
    let r = s.files.get(&p, &req.file_id).await?;
    let expires = if r.status == FileStatus::Pending {
        project(s, c, &req.project_id, Access::Write).await?;
        expires.min(zerodb_projects::files::MAX_UPLOAD_URL_SECS)
    } else {
        expires
    };
    let u = s.files.url(&p, &r, expires).await?;
    to_value(url_view(&r.id, u, expires, c.headers, c.uri))
}
